// Retention policies: which rules are accepted, what each refusal says and names, and the one-line description.
#include "daemon/core/retention.h"

#include "common/errors.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace zerobyte::core {
namespace {

struct Rejection {
  std::string message;
  std::string parameter;
};

// The Error(InvalidArgument) that `call` throws; fails the test if it throws nothing or something else.
Rejection rejection(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
    return {e.what(), e.details().value("parameter", "")};
  }
  ADD_FAILURE() << "expected Error(InvalidArgument), nothing was thrown";
  return {};
}

Rejection withinRejection(const std::string& within) {
  RetentionPolicy policy;
  policy.keepWithin = within;
  return rejection([&] { validateRetention(policy); });
}

RetentionPolicy within(const std::string& duration) {
  RetentionPolicy policy;
  policy.keepWithin = duration;
  return policy;
}

TEST(Retention, EmptyOnlyWithoutAnyRule) {
  EXPECT_TRUE(RetentionPolicy{}.empty());
  RetentionPolicy last;
  last.keepLast = 1;
  EXPECT_FALSE(last.empty());
  RetentionPolicy yearly;
  yearly.keepYearly = 3;
  EXPECT_FALSE(yearly.empty());
  EXPECT_FALSE(within("30d").empty());
  RetentionPolicy tagged;
  tagged.keepTags = {"keep"};
  EXPECT_FALSE(tagged.empty());
}

TEST(Retention, AcceptsEveryRuleAtItsLimits) {
  RetentionPolicy policy;
  policy.keepLast = 1;
  policy.keepHourly = 24;
  policy.keepDaily = 7;
  policy.keepWeekly = 4;
  policy.keepMonthly = 12;
  policy.keepYearly = kMaxRetentionCount;
  policy.keepWithin = "1y6m";
  policy.keepTags = {"keep", "release 1.0", "-starts-with-dash"};
  EXPECT_NO_THROW(validateRetention(policy));
  EXPECT_NO_THROW(requireRetention(policy));
  // A schedule may have no policy: validation alone accepts it.
  EXPECT_NO_THROW(validateRetention(RetentionPolicy{}));
}

TEST(Retention, CountsOfZeroOrAboveTheLimitNameTheRuleAndTheRange) {
  const std::pair<std::optional<unsigned> RetentionPolicy::*, const char*> rules[] = {
      {&RetentionPolicy::keepLast, "keep_last"},       {&RetentionPolicy::keepHourly, "keep_hourly"},
      {&RetentionPolicy::keepDaily, "keep_daily"},     {&RetentionPolicy::keepWeekly, "keep_weekly"},
      {&RetentionPolicy::keepMonthly, "keep_monthly"}, {&RetentionPolicy::keepYearly, "keep_yearly"}};
  for (const auto& [member, name] : rules) {
    for (unsigned count : {0u, kMaxRetentionCount + 1, 4294967295u}) {
      RetentionPolicy policy;
      policy.*member = count;
      const auto refused = rejection([&] { validateRetention(policy); });
      EXPECT_EQ(refused.parameter, name);
      EXPECT_EQ(refused.message, std::string(name) + " " + std::to_string(count) +
                                     " is not valid: give a count from 1 to 100000, or leave " + name + " unset");
    }
    RetentionPolicy one;
    one.*member = 1;
    EXPECT_NO_THROW(requireRetention(one)) << name;
  }
}

TEST(Retention, AcceptsResticDurationsWithUnitsInOrder) {
  for (const char* duration : {"30d", "1y6m", "1y2m3d4h", "12h", "2d12h", "1y", "0y1h", "100000h", "007d"})
    EXPECT_NO_THROW(validateRetention(within(duration))) << duration;
}

TEST(Retention, KeepWithinThatIsNotAResticDurationSaysWhatIsWrong) {
  const std::string rule =
      "; write a duration such as 30d or 1y6m: numbers followed by the units y (years), m (months), d (days) and h "
      "(hours), each unit at most once and in that order, or leave keep_within unset";
  const std::pair<const char*, const char*> cases[] = {
      {"30", "keep_within \"30\" is not valid: the number 30 has no unit"},
      {"d", "keep_within \"d\" is not valid: the unit \"d\" has no number before it"},
      {"1w", "keep_within \"1w\" is not valid: \"w\" after 1 is not one of the units y, m, d, h"},
      {"1D", "keep_within \"1D\" is not valid: \"D\" after 1 is not one of the units y, m, d, h"},
      // restic would take "-1d" as one day into the future and forget everything.
      {"-1d", "keep_within \"-1d\" is not valid: \"-\" is neither a digit nor one of the units y, m, d, h"},
      {"1d 2h", "keep_within \"1d 2h\" is not valid: \" \" is neither a digit nor one of the units y, m, d, h"},
      {"6m1y", "keep_within \"6m1y\" is not valid: the unit \"y\" comes after a smaller unit"},
      {"1d1d", "keep_within \"1d1d\" is not valid: the unit \"d\" appears twice"},
      {"100001d", "keep_within \"100001d\" is not valid: the number 100001 is above 100000"},
      {"99999999999999999999d", "keep_within \"99999999999999999999d\" is not valid: a number has 20 digits; the largest is 100000"},
      // restic reads these as no rule at all and keeps everything.
      {"0d", "keep_within \"0d\" is not valid: all of its numbers are 0, which is no rule at all"},
      {"0y0m0d0h", "keep_within \"0y0m0d0h\" is not valid: all of its numbers are 0, which is no rule at all"},
      {"1d\n", "keep_within \"1d\\n\" is not valid: \"\\n\" is neither a digit nor one of the units y, m, d, h"},
  };
  for (const auto& [duration, reason] : cases) {
    const auto refused = withinRejection(duration);
    EXPECT_EQ(refused.parameter, "keep_within") << duration;
    EXPECT_EQ(refused.message, reason + rule) << duration;
  }
}

TEST(Retention, KeepTagsMustBeValidTags) {
  const std::pair<std::string, const char*> cases[] = {
      {"", "keep_tags: tag \"\" is not valid: it is empty; give 1-128 bytes without ',' or control characters"},
      {"a,b", "keep_tags: tag \"a,b\" is not valid: it contains ','; restic splits tags at commas, so give each tag on its own"},
      {"x\ty", "keep_tags: tag \"x\\ty\" is not valid: it contains the control character \\t; remove it"},
      {std::string(129, 't'), "keep_tags: tag \""},
  };
  for (const auto& [tag, message] : cases) {
    RetentionPolicy policy;
    policy.keepLast = 3;
    policy.keepTags = {"fine", tag};
    const auto refused = rejection([&] { validateRetention(policy); });
    EXPECT_EQ(refused.parameter, "keep_tags");
    EXPECT_EQ(refused.message.rfind(message, 0), 0u) << refused.message;
  }
}

TEST(Retention, RequireRetentionRefusesAnEmptyPolicyAndStillValidates) {
  const auto empty = rejection([] { requireRetention(RetentionPolicy{}); });
  EXPECT_EQ(empty.parameter, "retention");
  EXPECT_EQ(empty.message,
            "the retention policy is empty: set at least one of keep_last, keep_hourly, keep_daily, keep_weekly, "
            "keep_monthly, keep_yearly, keep_within or keep_tags (with no rule, every snapshot would be kept)");
  // An empty keep_tags list and an empty keep_within are no rules either.
  RetentionPolicy blank;
  blank.keepWithin = "";
  blank.keepTags = {};
  EXPECT_EQ(rejection([&] { requireRetention(blank); }).parameter, "retention");
  // A policy with a bad rule is refused for that rule, not for being empty.
  EXPECT_EQ(rejection([] { requireRetention(within("1w")); }).parameter, "keep_within");
  EXPECT_NO_THROW(requireRetention(within("30d")));
}

TEST(Retention, DescribeListsTheRulesInOneLine) {
  RetentionPolicy policy;
  policy.keepLast = 7;
  policy.keepWeekly = 4;
  policy.keepWithin = "30d";
  EXPECT_EQ(describeRetention(policy), "keep the last 7, 4 weekly, within 30d");

  RetentionPolicy every;
  every.keepLast = 1;
  every.keepHourly = 24;
  every.keepDaily = 7;
  every.keepWeekly = 5;
  every.keepMonthly = 12;
  every.keepYearly = 10;
  every.keepWithin = "1y6m";
  every.keepTags = {"keep", "release"};
  EXPECT_EQ(describeRetention(every),
            "keep the last 1, 24 hourly, 7 daily, 5 weekly, 12 monthly, 10 yearly, within 1y6m, tagged \"keep\" or "
            "\"release\"");

  RetentionPolicy daily;
  daily.keepDaily = 14;
  EXPECT_EQ(describeRetention(daily), "keep 14 daily");
  EXPECT_EQ(describeRetention(RetentionPolicy{}), "keep every snapshot");
}

TEST(Retention, DescribeQuotesValuesThatCouldBreakTheLine) {
  RetentionPolicy policy;
  policy.keepTags = {"a\nb"};
  policy.keepWithin = "1d\r";
  EXPECT_EQ(describeRetention(policy), "keep within \"1d\\r\", tagged \"a\\nb\"");
}

}  // namespace
}  // namespace zerobyte::core
