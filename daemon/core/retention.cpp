// Retention policies of schedules: which of a schedule's snapshots `restic forget` keeps.
#include "daemon/core/retention.h"

#include "common/errors.h"
#include "daemon/core/validation.h"

#include <string_view>
#include <utility>

namespace zerobyte::core {
namespace {

// restic's duration units, in the only order accepted here (restic takes any order and a
// repeated unit silently overrides the first one, so "1d1d" would not mean what it says).
constexpr std::string_view kUnits = "ymdh";
// Six digits reach kMaxRetentionCount; more are refused before converting, so nothing overflows.
constexpr size_t kMaxDurationDigits = 6;

constexpr std::string_view kDurationRule =
    "write a duration such as 30d or 1y6m: numbers followed by the units y (years), m (months), d (days) "
    "and h (hours), each unit at most once and in that order";

[[noreturn]] void fail(std::string_view parameter, std::string message) {
  throw Error(ErrorCode::InvalidArgument, std::move(message), {{"parameter", std::string(parameter)}});
}

void checkCount(const std::optional<unsigned>& count, std::string_view parameter) {
  if (!count || (*count >= 1 && *count <= kMaxRetentionCount)) return;
  fail(parameter, std::string(parameter) + " " + std::to_string(*count) + " is not valid: give a count from 1 to " +
                      std::to_string(kMaxRetentionCount) + ", or leave " + std::string(parameter) + " unset");
}

// Why `duration` is not in restic's duration form, or nothing when it is.
std::optional<std::string> durationProblem(std::string_view duration) {
  size_t pos = 0;
  size_t nextUnit = 0;  // index in kUnits of the first unit still allowed
  bool anyNonZero = false;
  while (pos < duration.size()) {
    const size_t digitsStart = pos;
    while (pos < duration.size() && duration[pos] >= '0' && duration[pos] <= '9') ++pos;
    const std::string_view digits = duration.substr(digitsStart, pos - digitsStart);
    if (digits.empty()) {
      const std::string quoted = quoteValue(duration.substr(pos, 1));
      if (kUnits.find(duration[pos]) != std::string_view::npos) return "the unit " + quoted + " has no number before it";
      return quoted + " is neither a digit nor one of the units y, m, d, h";
    }
    if (digits.size() > kMaxDurationDigits)
      return "a number has " + std::to_string(digits.size()) + " digits; the largest is " +
             std::to_string(kMaxRetentionCount);
    unsigned number = 0;
    for (char c : digits) number = number * 10 + static_cast<unsigned>(c - '0');
    if (number > kMaxRetentionCount)
      return "the number " + std::to_string(number) + " is above " + std::to_string(kMaxRetentionCount);
    if (number > 0) anyNonZero = true;
    if (pos == duration.size()) return "the number " + std::string(digits) + " has no unit";
    const char unitChar = duration[pos];
    const size_t unit = kUnits.find(unitChar);
    const std::string quotedUnit = quoteValue(duration.substr(pos, 1));
    if (unit == std::string_view::npos) return quotedUnit + " after " + std::string(digits) + " is not one of the units y, m, d, h";
    if (unit < nextUnit) {
      if (duration.substr(0, pos).find(unitChar) != std::string_view::npos)
        return "the unit " + quotedUnit + " appears twice";
      return "the unit " + quotedUnit + " comes after a smaller unit";
    }
    nextUnit = unit + 1;
    ++pos;
  }
  // restic reads an all-zero duration as no rule at all and then keeps everything.
  if (!anyNonZero) return std::string("all of its numbers are 0, which is no rule at all");
  return std::nullopt;
}

void checkWithin(const std::string& within) {
  if (within.empty()) return;
  if (auto problem = durationProblem(within))
    fail("keep_within", "keep_within " + quoteValue(within) + " is not valid: " + *problem + "; " +
                            std::string(kDurationRule) + ", or leave keep_within unset");
}

void checkTags(const std::vector<std::string>& tags) {
  for (const auto& tag : tags) {
    try {
      validateTag(tag);
    } catch (const Error& e) {
      fail("keep_tags", std::string("keep_tags: ") + e.what());
    }
  }
}

}  // namespace

std::array<RetentionCount, 6> retentionCounts(const RetentionPolicy& policy) {
  return {{{"last", policy.keepLast},
           {"hourly", policy.keepHourly},
           {"daily", policy.keepDaily},
           {"weekly", policy.keepWeekly},
           {"monthly", policy.keepMonthly},
           {"yearly", policy.keepYearly}}};
}

bool RetentionPolicy::empty() const {
  for (const auto& count : retentionCounts(*this))
    if (count.value) return false;
  return keepWithin.empty() && keepTags.empty();
}

void validateRetention(const RetentionPolicy& policy) {
  for (const auto& count : retentionCounts(policy)) checkCount(count.value, "keep_" + std::string(count.name));
  checkWithin(policy.keepWithin);
  checkTags(policy.keepTags);
}

void requireRetention(const RetentionPolicy& policy) {
  validateRetention(policy);
  if (policy.empty())
    fail("retention",
         "the retention policy is empty: set at least one of keep_last, keep_hourly, keep_daily, keep_weekly, "
         "keep_monthly, keep_yearly, keep_within or keep_tags (with no rule, every snapshot would be kept)");
}

std::string describeRetention(const RetentionPolicy& policy) {
  if (policy.empty()) return "keep every snapshot";
  std::vector<std::string> parts;
  for (const auto& [name, value] : retentionCounts(policy)) {
    if (!value) continue;
    parts.push_back(name == "last" ? "the last " + std::to_string(*value) : std::to_string(*value) + " " + std::string(name));
  }
  // Tags, and a duration that did not pass validation, are quoted: no value can break the line.
  if (!policy.keepWithin.empty()) {
    const bool valid = !durationProblem(policy.keepWithin);
    parts.push_back("within " + (valid ? policy.keepWithin : quoteValue(policy.keepWithin)));
  }
  if (!policy.keepTags.empty()) {
    std::string tagged = "tagged ";
    for (size_t i = 0; i < policy.keepTags.size(); ++i) {
      if (i > 0) tagged += " or ";
      tagged += quoteValue(policy.keepTags[i]);
    }
    parts.push_back(std::move(tagged));
  }
  std::string line = "keep ";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) line += ", ";
    line += parts[i];
  }
  return line;
}

}  // namespace zerobyte::core
