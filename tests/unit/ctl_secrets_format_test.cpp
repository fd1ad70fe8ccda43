// How zerobytectl words a password change job: what became of the old key is part of its summary line.
#include "ctl/progress.h"
#include "ctl/record_format.h"

#include <gtest/gtest.h>

namespace zerobyte::ctl {
namespace {

using nlohmann::json;

json changePasswordJob(const std::string& state, const std::string& message) {
  return {{"id", 7},
          {"operation", "change-password"},
          {"state", state},
          {"repository", "main"},
          {"started", "2026-11-22T05:02:00Z"},
          {"finished", "2026-11-22T05:02:04Z"},
          {"message", message}};
}

TEST(ChangePasswordJob, IsDescribedByItsOperationAndRepository) {
  EXPECT_EQ(describeJob(changePasswordJob("running", "")), "change-password main");
}

TEST(ChangePasswordJob, SucceededSummarySaysWhatBecameOfTheOldKey) {
  EXPECT_EQ(jobSummaryLine(changePasswordJob("succeeded", "password changed; the old key 3ea9525f was removed")),
            "Job 7 (change-password main) succeeded in 4s: password changed; the old key 3ea9525f was removed.");
  EXPECT_EQ(jobExitCode(changePasswordJob("succeeded", "")), 0);
}

TEST(ChangePasswordJob, AnOldKeyLeftBehindIsAWarningWithTheWayToRemoveIt) {
  const json job = changePasswordJob("warning", "password changed, but the old key 3ea9525f remains in the repository");
  EXPECT_EQ(jobSummaryLine(job),
            "Job 7 (change-password main) finished with warnings in 4s: password changed, but the old key 3ea9525f "
            "remains in the repository.");
  EXPECT_EQ(jobExitCode(job), 3);
}

}  // namespace
}  // namespace zerobyte::ctl
