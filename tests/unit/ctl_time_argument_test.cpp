// zerobytectl's --since TIME: local dates and times, spans ago, and what is refused.
#include "ctl/time_argument.h"

#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <ctime>

namespace zerobyte::ctl {
namespace {

using zbtest::unit::ScopedEnvironment;

constexpr std::time_t kNow = 1700000000;

class TimeArgument : public ::testing::Test {
 protected:
  // A zone with a fixed offset and none of the host's settings.
  TimeArgument() : m_zone("TZ", "UTC-2") { ::tzset(); }
  ~TimeArgument() override { ::tzset(); }

 private:
  ScopedEnvironment m_zone;
};

TEST_F(TimeArgument, SpansAreBeforeNow) {
  EXPECT_EQ(parseTimeArgument("30s", kNow), kNow - 30);
  EXPECT_EQ(parseTimeArgument("30m", kNow), kNow - 30 * 60);
  EXPECT_EQ(parseTimeArgument("2h", kNow), kNow - 2 * 3600);
  EXPECT_EQ(parseTimeArgument("7d", kNow), kNow - 7 * 86400);
  EXPECT_EQ(parseTimeArgument("1w", kNow), kNow - 7 * 86400);
  EXPECT_EQ(parseTimeArgument("0m", kNow), kNow);
}

TEST_F(TimeArgument, DatesAndTimesAreLocal) {
  // 2023-11-14 00:00 at UTC+2 is 2023-11-13 22:00 UTC.
  EXPECT_EQ(parseTimeArgument("2023-11-14", kNow), 1699912800);
  EXPECT_EQ(parseTimeArgument("2023-11-14 10:30", kNow), 1699912800 + 10 * 3600 + 30 * 60);
  EXPECT_EQ(parseTimeArgument("2023-11-14 10:30:15", kNow), 1699912800 + 10 * 3600 + 30 * 60 + 15);
  EXPECT_EQ(parseTimeArgument("2023-11-14T10:30:15", kNow), 1699912800 + 10 * 3600 + 30 * 60 + 15);
  EXPECT_EQ(parseTimeArgument("2024-02-29", kNow).has_value(), true) << "a leap day exists";
}

TEST_F(TimeArgument, AnythingElseIsRefused) {
  for (const char* bad : {"", "yesterday", "2h ago", "-2h", "2", "h", "2y", "2H", "1.5h", "123456789h", "2023-11-14 ",
                          "2023-11-14 10", "2023-11-14 10:3", "2023-11-14 24:00", "2023-11-14 10:60", "2023-13-01",
                          "2023-00-10", "2023-02-29", "2024-02-30", "2023-04-31", "23-11-14", "2023/11/14",
                          "2023-11-14 10:30:15Z", "2023-11-14 10:30:61"})
    EXPECT_FALSE(parseTimeArgument(bad, kNow).has_value()) << bad;
}

}  // namespace
}  // namespace zerobyte::ctl
