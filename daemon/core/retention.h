// Retention policies of schedules: which of a schedule's snapshots `restic forget` keeps.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::core {

// One schedule's policy, as restic's --keep-* options. An unset count or an empty keepWithin
// is no rule; restic keeps a snapshot that any rule keeps and forgets the rest.
struct RetentionPolicy {
  std::optional<unsigned> keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly;
  // restic's duration relative to the newest snapshot: "30d", "1y6m", "2d12h".
  std::string keepWithin;
  // Snapshots carrying any of these tags are kept whatever their age.
  std::vector<std::string> keepTags;

  // No rule at all: restic would keep every snapshot ("no policy was specified").
  bool empty() const;
};

// The count rules of a policy, in restic's order: `name` follows "keep_" on the wire and
// "--keep-" on restic's command line ("last", "hourly", "daily", "weekly", "monthly", "yearly").
struct RetentionCount {
  std::string_view name;
  std::optional<unsigned> value;
};
std::array<RetentionCount, 6> retentionCounts(const RetentionPolicy& policy);

// Largest count a keep_* rule accepts.
inline constexpr unsigned kMaxRetentionCount = 100000;

// Checks every rule that is set; an empty policy passes (a schedule may keep everything).
// Throws Error(InvalidArgument) with details {"parameter": name}, name being the wire name of
// the rule: keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly
// (a count of 0 or above kMaxRetentionCount), keep_within (not "<number><unit>..." with units
// y, m, d, h each at most once and in that order, numbers up to kMaxRetentionCount, not all 0),
// keep_tags (an entry that is not a valid tag, see validateTag).
void validateRetention(const RetentionPolicy& policy);

// validateRetention, and also refuses an empty policy (parameter "retention"): where a policy is
// applied, an empty one would run `restic forget` to keep everything, which is never what was meant.
void requireRetention(const RetentionPolicy& policy);

// One readable line: "keep the last 7, 4 weekly, within 30d, tagged \"keep\"";
// "keep every snapshot" for an empty policy.
std::string describeRetention(const RetentionPolicy& policy);

}  // namespace zerobyte::core
