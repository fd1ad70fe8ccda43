// When a failed scheduled run is tried again: the schedule's delay, doubling while the repository's server cannot be reached.
#include "daemon/core/retry_policy.h"

#include <gtest/gtest.h>

namespace zerobyte::core {
namespace {

TEST(RetryPolicy, OrdinaryFailuresWaitTheSchedulesDelayEachTime) {
  for (uint32_t attempt = 1; attempt <= 5; ++attempt) EXPECT_EQ(retryDelaySeconds(300, attempt, false), 300u) << attempt;
}

TEST(RetryPolicy, AnUnreachableServerDoublesTheWaitUpToSixHours) {
  EXPECT_EQ(retryDelaySeconds(300, 1, true), 300u);
  EXPECT_EQ(retryDelaySeconds(300, 2, true), 600u);
  EXPECT_EQ(retryDelaySeconds(300, 3, true), 1200u);
  EXPECT_EQ(retryDelaySeconds(300, 4, true), 2400u);
  EXPECT_EQ(retryDelaySeconds(300, 8, true), 6u * 3600);
  EXPECT_EQ(retryDelaySeconds(86400, 1, true), 6u * 3600);
  // No overflow however many attempts a schedule allows.
  EXPECT_EQ(retryDelaySeconds(4000000000u, 1000, true), 6u * 3600);
  EXPECT_EQ(retryDelaySeconds(1, 1000, true), 6u * 3600);
}

}  // namespace
}  // namespace zerobyte::core
