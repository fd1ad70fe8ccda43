// Cron expressions: every syntax and every rejection, and fire times in real time zones across DST changes.
// Expected instants are written out in UTC (checked against zdump), never computed by the code under test.
#include "daemon/core/cron.h"

#include "common/errors.h"

#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::core {
namespace {

using std::chrono::sys_seconds;

// "2026-03-29 01:00" or "2026-03-29 01:00:30", in UTC.
sys_seconds utc(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  int fields = std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &s);
  EXPECT_GE(fields, 5) << text;
  auto day = std::chrono::sys_days{std::chrono::year{y} / mo / d};
  return day + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{s};
}

std::string utcText(sys_seconds t) {
  auto day = std::chrono::floor<std::chrono::days>(t);
  std::chrono::year_month_day ymd{day};
  std::chrono::hh_mm_ss time{t - day};
  // Field widths bounded by the types (hours < 24, minutes < 60), so nothing can be cut off.
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02u %02u:%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<unsigned>(time.hours().count()) % 24u, static_cast<unsigned>(time.minutes().count()) % 60u);
  return buffer;
}

// The next fire times as "YYYY-MM-DD HH:MM" in UTC, so a failure shows readable lists.
std::vector<std::string> fires(std::string_view expression, const std::string& zone, const std::string& after,
                               size_t count) {
  std::vector<std::string> out;
  for (sys_seconds t : nextFireTimes(CronExpression::parse(expression), zone, utc(after), count))
    out.push_back(utcText(t));
  return out;
}

using Times = std::vector<std::string>;

using zbtest::unit::rejection;

std::string parseRejection(std::string_view text) {
  return rejection([&] { CronExpression::parse(text); });
}

std::string normalized(std::string_view text) { return CronExpression::parse(text).str(); }

// ---- syntax ----

TEST(CronParse, AcceptsStarNumbersRangesListsAndSteps) {
  EXPECT_EQ(normalized("* * * * *"), "* * * * *");
  EXPECT_EQ(normalized("5 4 * * *"), "5 4 * * *");
  EXPECT_EQ(normalized("0-10 1-3 * * *"), "0-10 1-3 * * *");
  EXPECT_EQ(normalized("10,1,2,3 * * * *"), "1-3,10 * * * *");
  EXPECT_EQ(normalized("1,2 * * * *"), "1,2 * * * *");
  EXPECT_EQ(normalized("*/15 */6 * * *"), "*/15 */6 * * *");
  EXPECT_EQ(normalized("10-50/20 * * * *"), "10-50/20 * * * *");
  EXPECT_EQ(normalized("0 9-17/2 * * *"), "0 9-17/2 * * *");
  EXPECT_EQ(normalized("0 0 */2 * *"), "0 0 */2 * *");
  EXPECT_EQ(normalized("0,30 * * * *"), "0,30 * * * *");
  EXPECT_EQ(normalized("*/30 * * * *"), "0,30 * * * *");
  EXPECT_EQ(normalized("0,20,40 * * * *"), "*/20 * * * *");
  EXPECT_EQ(normalized("*/1 * * * *"), "* * * * *");
  EXPECT_EQ(normalized("0-59 0-23 * 1-12 *"), "* * * * *");
  EXPECT_EQ(normalized("0 0 1,15 * 1-5"), "0 0 1,15 * 1-5");
}

TEST(CronParse, ASingleValueWithAStepRunsToTheFieldsHighestValue) {
  EXPECT_EQ(normalized("10/20 * * * *"), "10-50/20 * * * *");
  EXPECT_EQ(normalized("0 20/2 * * *"), "0 20,22 * * *");
  EXPECT_EQ(normalized("0 0 25/3 * *"), "0 0 25-31/3 * *");
  EXPECT_EQ(normalized("0 0 * 6/2 *"), "0 0 * 6-12/2 *");
  // The day of week runs to 7, which is Sunday.
  EXPECT_EQ(normalized("0 0 * * 1/2"), "0 0 * * 0,1,3,5");
}

TEST(CronParse, FieldsAreSeparatedBySpacesAndTabsWithAnyPadding) {
  EXPECT_EQ(normalized("  0\t0   * *  *  "), "0 0 * * *");
}

TEST(CronParse, SundayIsZeroAndSeven) {
  EXPECT_EQ(CronExpression::parse("0 0 * * 7"), CronExpression::parse("0 0 * * 0"));
  EXPECT_EQ(normalized("0 0 * * 7"), "0 0 * * 0");
  EXPECT_EQ(normalized("0 0 * * 5-7"), "0 0 * * 0,5,6");
  EXPECT_EQ(normalized("0 0 * * 0-7"), "0 0 * * 0-6");
}

TEST(CronParse, MonthAndDayNamesAreCaseInsensitiveAndWorkInRangesAndSteps) {
  EXPECT_EQ(CronExpression::parse("0 0 * jan-MAR Mon-fri"), CronExpression::parse("0 0 * 1-3 1-5"));
  EXPECT_EQ(normalized("0 0 * Dec sun"), "0 0 * 12 0");
  EXPECT_EQ(normalized("0 0 * JAN,jul *"), "0 0 * 1,7 *");
  EXPECT_EQ(normalized("0 0 * JUN/2 *"), "0 0 * 6-12/2 *");
  EXPECT_EQ(normalized("0 0 * * MON-FRI/2"), "0 0 * * 1-5/2");
  // SUN ends a range as 7.
  EXPECT_EQ(normalized("0 0 * * FRI-SUN"), "0 0 * * 0,5,6");
}

TEST(CronParse, MacrosAreTheirFiveFieldForms) {
  EXPECT_EQ(normalized("@hourly"), "0 * * * *");
  EXPECT_EQ(normalized("@daily"), "0 0 * * *");
  EXPECT_EQ(normalized("@midnight"), "0 0 * * *");
  EXPECT_EQ(normalized("@weekly"), "0 0 * * 0");
  EXPECT_EQ(normalized("@monthly"), "0 0 1 * *");
  EXPECT_EQ(normalized("@yearly"), "0 0 1 1 *");
  EXPECT_EQ(normalized("@annually"), "0 0 1 1 *");
  EXPECT_EQ(normalized("  @DAILY "), "0 0 * * *");
  EXPECT_EQ(CronExpression::parse("@weekly"), CronExpression::parse("0 0 * * 7"));
}

TEST(CronParse, TheNormalizedTextParsesToTheSameExpression) {
  for (std::string_view text : {"* * * * *", "0,30 9-17/2 * * 1-5", "0 0 13 * FRI", "0 0 */10 * MON",
                                "5/7 3 1-31 * *", "0 0 * * */7", "0 0 */31 1 *", "1,2,4,8 0 29 2 *",
                                "@weekly", "0 0 * jan-mar sun,7"}) {
    CronExpression expression = CronExpression::parse(text);
    EXPECT_EQ(CronExpression::parse(expression.str()), expression) << text << " -> " << expression.str();
  }
}

TEST(CronParse, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  CronExpression either = CronExpression::parse("0 0 13 * FRI");
  EXPECT_TRUE(either.matchesDay(4, 13, 1)) << "Monday the 13th";
  EXPECT_TRUE(either.matchesDay(4, 10, 5)) << "Friday the 10th";
  EXPECT_FALSE(either.matchesDay(4, 14, 2));
  EXPECT_EQ(either.str(), "0 0 13 * 5");
}

TEST(CronParse, DayOfMonthAndDayOfWeekWhenEitherContainsAStar) {
  CronExpression fridays = CronExpression::parse("0 0 * * FRI");
  EXPECT_TRUE(fridays.matchesDay(4, 10, 5));
  EXPECT_FALSE(fridays.matchesDay(4, 13, 1));
  CronExpression thirteenths = CronExpression::parse("0 0 13 * *");
  EXPECT_TRUE(thirteenths.matchesDay(4, 13, 1));
  EXPECT_FALSE(thirteenths.matchesDay(4, 10, 5));
  // `*/10` contains '*': both must match (cron's rule), so only Mondays that are the 1st, 11th, 21st or 31st.
  CronExpression both = CronExpression::parse("0 0 */10 * MON");
  EXPECT_TRUE(both.matchesDay(5, 11, 1));
  EXPECT_FALSE(both.matchesDay(5, 12, 1));
  EXPECT_FALSE(both.matchesDay(5, 11, 2));
  CronExpression months = CronExpression::parse("0 0 * MAR *");
  EXPECT_TRUE(months.matchesDay(3, 5, 4));
  EXPECT_FALSE(months.matchesDay(4, 5, 4));
}

// ---- rejections ----

TEST(CronParse, TheMessageForAValueOutOfRangeNamesFieldValueAndRange) {
  EXPECT_EQ(parseRejection("0 25 * * *"), "cron field 2 (hour) \"25\": 25 is out of range 0-23");
  EXPECT_EQ(parseRejection("60 * * * *"), "cron field 1 (minute) \"60\": 60 is out of range 0-59");
  EXPECT_EQ(parseRejection("0 0 0 * *"), "cron field 3 (day of month) \"0\": 0 is out of range 1-31");
  EXPECT_EQ(parseRejection("0 0 1-32 * *"), "cron field 3 (day of month) \"1-32\": 32 is out of range 1-31");
  EXPECT_EQ(parseRejection("0 0 * 13 *"), "cron field 4 (month) \"13\": 13 is out of range 1-12 or JAN-DEC");
  EXPECT_EQ(parseRejection("0 0 * * 8"),
            "cron field 5 (day of week) \"8\": 8 is out of range 0-7 or SUN-SAT (0 and 7 are Sunday)");
  EXPECT_EQ(parseRejection("99999999999 * * * *"),
            "cron field 1 (minute) \"99999999999\": 99999999999 is out of range 0-59");
}

TEST(CronParse, RejectsAnEmptyExpressionAndAWrongFieldCount) {
  for (std::string_view empty : {"", "   ", "\t"}) {
    std::string message = parseRejection(empty);
    EXPECT_NE(message.find("empty"), std::string::npos) << message;
    EXPECT_NE(message.find("5 fields"), std::string::npos) << message;
  }
  std::string four = parseRejection("* * * *");
  EXPECT_NE(four.find("has 4 fields; 5 are expected"), std::string::npos) << four;
  EXPECT_NE(four.find("minute hour day-of-month month day-of-week"), std::string::npos) << four;
  std::string six = parseRejection("0 0 * * * *");
  EXPECT_NE(six.find("has 6 fields; 5 are expected"), std::string::npos) << six;
  std::string one = parseRejection("5");
  EXPECT_NE(one.find("has 1 field; 5 are expected"), std::string::npos) << one;
}

TEST(CronParse, RejectsEmptyListElements) {
  for (std::string_view text : {"1,,2 * * * *", "1, * * * *", ",1 * * * *", ", * * * *"}) {
    std::string message = parseRejection(text);
    EXPECT_EQ(message.rfind("cron field 1 (minute) ", 0), 0U) << message;
    EXPECT_NE(message.find("empty element in the list"), std::string::npos) << message;
  }
  std::string message = parseRejection("0 0 * * MON,");
  EXPECT_EQ(message.rfind("cron field 5 (day of week) \"MON,\": empty element", 0), 0U) << message;
}

TEST(CronParse, RejectsStepZeroAndStepsLargerThanTheField) {
  EXPECT_EQ(parseRejection("*/0 * * * *"),
            "cron field 1 (minute) \"*/0\": step 0 is not allowed; a step must be 1-60");
  EXPECT_EQ(parseRejection("0 1-5/0 * * *"),
            "cron field 2 (hour) \"1-5/0\": step 0 is not allowed; a step must be 1-24");
  std::string large = parseRejection("0 0 * * */9");
  EXPECT_EQ(large.rfind("cron field 5 (day of week) \"*/9\": step 9 is larger than the field's range 0-7", 0), 0U)
      << large;
  std::string missing = parseRejection("0 0 * */ *");
  EXPECT_EQ(missing.rfind("cron field 4 (month) \"*/\": expected a step number 1-12 after '/'", 0), 0U) << missing;
}

TEST(CronParse, RejectsReversedRanges) {
  std::string message = parseRejection("5-1 * * * *");
  EXPECT_EQ(message.rfind("cron field 1 (minute) \"5-1\": range 5-1 is reversed", 0), 0U) << message;
  EXPECT_NE(message.find("1-5"), std::string::npos) << message;
  std::string names = parseRejection("0 0 * DEC-JAN *");
  EXPECT_EQ(names.rfind("cron field 4 (month) \"DEC-JAN\": range 12-1 is reversed", 0), 0U) << names;
  std::string days = parseRejection("0 0 * * SAT-MON");
  EXPECT_EQ(days.rfind("cron field 5 (day of week) \"SAT-MON\": range 6-1 is reversed", 0), 0U) << days;
}

TEST(CronParse, RejectsTrailingGarbageAndSayWhatIsAccepted) {
  struct Case {
    std::string_view text;
    std::string_view start;
  };
  for (const Case& c : {
           Case{"5x * * * *", "cron field 1 (minute) \"5x\": unexpected \"x\" after \"5\""},
           Case{"0 1-5/2/3 * * *", "cron field 2 (hour) \"1-5/2/3\": unexpected \"/3\" after \"1-5/2\""},
           Case{"0 0 *x * *", "cron field 3 (day of month) \"*x\": unexpected \"x\" after \"*\""},
           Case{"0 0 1-2-3 * *", "cron field 3 (day of month) \"1-2-3\": unexpected \"-3\" after \"1-2\""},
           Case{"0 0 * * MON?", "cron field 5 (day of week) \"MON?\": unexpected \"?\" after \"MON\""},
           Case{"? * * * *", "cron field 1 (minute) \"?\": expected a number or a range, found \"?\""},
           Case{"/5 * * * *", "cron field 1 (minute) \"/5\": expected a number or a range, found \"/5\""},
           Case{"1- * * * *", "cron field 1 (minute) \"1-\": expected the end of the range after '-'"},
           Case{"1-* * * * *", "cron field 1 (minute) \"1-*\": expected the end of the range after '-', found \"*\""},
       }) {
    std::string message = parseRejection(c.text);
    EXPECT_EQ(message.rfind(c.start, 0), 0U) << message;
    EXPECT_NE(message.find("write *, a number, a range a-b, a list a,b,c or a step */n, a-b/n, a/n"),
              std::string::npos)
        << message;
  }
}

TEST(CronParse, RejectsAStarInsideAList) {
  std::string message = parseRejection("*/10,5 * * * *");
  EXPECT_EQ(message.rfind("cron field 1 (minute) \"*/10,5\": '*' cannot be part of a list", 0), 0U) << message;
  EXPECT_NE(message.find("0-59/10"), std::string::npos) << message;
}

TEST(CronParse, RejectsNamesWhereTheyDoNotBelongAndUnknownNames) {
  std::string inMinutes = parseRejection("MON * * * *");
  EXPECT_EQ(inMinutes.rfind("cron field 1 (minute) \"MON\": \"MON\" is not a number", 0), 0U) << inMinutes;
  EXPECT_NE(inMinutes.find("0-59"), std::string::npos) << inMinutes;
  EXPECT_EQ(parseRejection("0 0 * FOO *"),
            "cron field 4 (month) \"FOO\": unknown month name \"FOO\"; use 1-12 or JAN-DEC");
  EXPECT_EQ(parseRejection("0 0 * * Monday"),
            "cron field 5 (day of week) \"Monday\": unknown day of week name \"Monday\"; use 0-7 or SUN-SAT (0 and 7 "
            "are Sunday)");
}

TEST(CronParse, RejectsUnknownMacrosAndFieldsAfterAMacro) {
  std::string reboot = parseRejection("@reboot");
  EXPECT_NE(reboot.find("unknown macro \"@reboot\""), std::string::npos) << reboot;
  EXPECT_NE(reboot.find("@hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually)"), std::string::npos)
      << reboot;
  std::string extra = parseRejection("@daily 5");
  EXPECT_NE(extra.find("has fields after the macro @daily"), std::string::npos) << extra;
}

TEST(CronParse, ControlCharactersAreEscapedInTheMessage) {
  std::string message = parseRejection("0 0 * * *\n");
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find("cron field 5 (day of week) \"*\\n\""), std::string::npos) << message;
}

TEST(CronParse, RejectsAnExpressionThatNeverFires) {
  for (std::string_view text : {"0 0 31 2 *", "0 0 30,31 FEB *", "0 0 31 4,6,9,11 *", "0 0 31 2 */7"}) {
    std::string message = parseRejection(text);
    EXPECT_NE(message.find("never fires"), std::string::npos) << message;
    EXPECT_NE(message.find("field 3 (day of month)"), std::string::npos) << message;
    EXPECT_NE(message.find("field 4 (month)"), std::string::npos) << message;
  }
  EXPECT_EQ(parseRejection("0 0 31 2 *").rfind("cron expression \"0 0 31 2 *\" never fires: ", 0), 0U);
  // A restricted day of week fires on its own (OR rule), and Feb 29 comes in leap years.
  EXPECT_NO_THROW(CronExpression::parse("0 0 31 2 MON"));
  EXPECT_NO_THROW(CronExpression::parse("0 0 29 2 *"));
  EXPECT_NO_THROW(CronExpression::parse("0 0 31 * *"));
}

TEST(CronParse, RejectsAnExpressionWhoseRunsCanBeMoreThanEightYearsApart) {
  // Feb 29 on a Sunday (`*/7` contains '*', so both day fields must match): 28 and more years apart.
  std::string message = parseRejection("0 0 29 2 */7");
  EXPECT_NE(message.find("fires too rarely"), std::string::npos) << message;
  EXPECT_NE(message.find("at most 8 years"), std::string::npos) << message;
  // Jan 1 on a Monday: up to 11 years apart.
  EXPECT_NE(parseRejection("0 0 */31 1 MON").find("fires too rarely"), std::string::npos);
}

// ---- time zones ----

TEST(CronTimeZone, AcceptsIanaNames) {
  for (std::string_view zone :
       {"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Etc/GMT+5"})
    EXPECT_NO_THROW(validateTimeZone(zone)) << zone;
}

TEST(CronTimeZone, RejectsUnknownNamesSayingHowToListValidOnes) {
  for (std::string_view zone : {"Europe/Berln", "europe/berlin", "Europe/Berlin/", "../../etc/passwd",
                                "/usr/share/zoneinfo/UTC", "zone.tab", "posix/Europe/Berlin", "Europe"}) {
    std::string message = rejection([&] { validateTimeZone(zone); });
    EXPECT_NE(message.find("unknown time zone \"" + std::string(zone) + "\""), std::string::npos) << message;
    EXPECT_NE(message.find("timedatectl list-timezones"), std::string::npos) << message;
  }
  for (std::string_view zone : {"", "localtime"}) {
    std::string message = rejection([&] { validateTimeZone(zone); });
    EXPECT_NE(message.find("timedatectl list-timezones"), std::string::npos) << message;
  }
}

TEST(CronTimeZone, TheSystemZoneIsAValidName) {
  std::string zone = systemTimeZone();
  EXPECT_FALSE(zone.empty());
  EXPECT_NO_THROW(validateTimeZone(zone)) << zone;
}

// ---- fire times ----

TEST(CronFireTimes, EveryFifteenMinutes) {
  EXPECT_EQ(fires("*/15 * * * *", "UTC", "2026-05-10 10:07", 5),
            (Times{"2026-05-10 10:15", "2026-05-10 10:30", "2026-05-10 10:45", "2026-05-10 11:00", "2026-05-10 11:15"}));
}

TEST(CronFireTimes, AreStrictlyAfterTheStartTime) {
  EXPECT_EQ(fires("*/15 * * * *", "UTC", "2026-05-10 10:15", 2), (Times{"2026-05-10 10:30", "2026-05-10 10:45"}));
  EXPECT_EQ(fires("*/15 * * * *", "UTC", "2026-05-10 10:14:59", 1), (Times{"2026-05-10 10:15"}));
  EXPECT_EQ(fires("0 0 * * *", "UTC", "2026-05-10 00:00", 1), (Times{"2026-05-11 00:00"}));
}

TEST(CronFireTimes, BerlinSpringForwardRunsTheSkippedTimeOnceAtTheEndOfTheGap) {
  // 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 02:30 does not exist.
  EXPECT_EQ(fires("30 2 * * *", "Europe/Berlin", "2026-03-27 12:00", 4),
            (Times{"2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30", "2026-03-31 00:30"}));
}

TEST(CronFireTimes, BerlinFallBackRunsTheRepeatedTimeOnceAtItsFirstOccurrence) {
  // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:30 is 00:30 UTC and again 01:30 UTC.
  EXPECT_EQ(fires("30 2 * * *", "Europe/Berlin", "2026-10-23 12:00", 4),
            (Times{"2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30", "2026-10-27 01:30"}));
  // Started at the first 02:30 or inside the repeated hour: the second 02:30 does not run.
  EXPECT_EQ(fires("30 2 * * *", "Europe/Berlin", "2026-10-25 00:30", 1), (Times{"2026-10-26 01:30"}));
  EXPECT_EQ(fires("30 2 * * *", "Europe/Berlin", "2026-10-25 01:15", 1), (Times{"2026-10-26 01:30"}));
  EXPECT_EQ(fires("30 2 * * *", "Europe/Berlin", "2026-10-25 00:29", 1), (Times{"2026-10-25 00:30"}));
}

TEST(CronFireTimes, NewYorkSpringForwardAndFallBack) {
  // 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
  EXPECT_EQ(fires("30 2 * * *", "America/New_York", "2026-03-06 12:00", 4),
            (Times{"2026-03-07 07:30", "2026-03-08 07:00", "2026-03-09 06:30", "2026-03-10 06:30"}));
  // 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:30 is 05:30 UTC and again 06:30 UTC.
  EXPECT_EQ(fires("30 1 * * *", "America/New_York", "2026-10-30 12:00", 4),
            (Times{"2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30", "2026-11-03 06:30"}));
  // 02:30 exists once in New York on that day (the repeated hour is 01:00-01:59).
  EXPECT_EQ(fires("30 2 * * *", "America/New_York", "2026-10-30 12:00", 3),
            (Times{"2026-10-31 06:30", "2026-11-01 07:30", "2026-11-02 07:30"}));
}

TEST(CronFireTimes, HourlyAcrossSpringForwardRunsEveryUtcHourOnce) {
  // Berlin: 01:00 CET, then 02:00 (skipped, runs at the gap's end) and 03:00 CEST are the same instant.
  EXPECT_EQ(fires("@hourly", "Europe/Berlin", "2026-03-28 23:30", 5),
            (Times{"2026-03-29 00:00", "2026-03-29 01:00", "2026-03-29 02:00", "2026-03-29 03:00", "2026-03-29 04:00"}));
  EXPECT_EQ(fires("@hourly", "America/New_York", "2026-03-08 05:30", 4),
            (Times{"2026-03-08 06:00", "2026-03-08 07:00", "2026-03-08 08:00", "2026-03-08 09:00"}));
}

TEST(CronFireTimes, HourlyAcrossFallBackSkipsTheRepeatedHoursSecondPass) {
  // Berlin: 01:00 CEST, 02:00 CEST (00:00 UTC), then 03:00 CET (02:00 UTC); 02:00 CET (01:00 UTC) does not run.
  EXPECT_EQ(fires("@hourly", "Europe/Berlin", "2026-10-24 22:30", 5),
            (Times{"2026-10-24 23:00", "2026-10-25 00:00", "2026-10-25 02:00", "2026-10-25 03:00", "2026-10-25 04:00"}));
  // New York: 00:00 EDT, 01:00 EDT (05:00 UTC), then 02:00 EST (07:00 UTC); 01:00 EST (06:00 UTC) does not run.
  EXPECT_EQ(fires("@hourly", "America/New_York", "2026-11-01 03:30", 4),
            (Times{"2026-11-01 04:00", "2026-11-01 05:00", "2026-11-01 07:00", "2026-11-01 08:00"}));
}

TEST(CronFireTimes, AllMatchingTimesInsideTheGapRunOnceAtItsEnd) {
  // 01:45 CET, then 02:00-02:45 (do not exist) and 03:00 CEST all at 01:00 UTC, then 03:15 CEST.
  EXPECT_EQ(fires("*/15 * * * *", "Europe/Berlin", "2026-03-29 00:40", 4),
            (Times{"2026-03-29 00:45", "2026-03-29 01:00", "2026-03-29 01:15", "2026-03-29 01:30"}));
}

TEST(CronFireTimes, FebruaryTwentyNinthOnlyInLeapYears) {
  EXPECT_EQ(fires("0 0 29 2 *", "UTC", "2026-01-01 00:00", 4),
            (Times{"2028-02-29 00:00", "2032-02-29 00:00", "2036-02-29 00:00", "2040-02-29 00:00"}));
  // 2100 is no leap year: eight years from 2096 to 2104, the longest wait there is.
  EXPECT_EQ(fires("0 0 29 2 *", "UTC", "2096-02-29 00:00", 2), (Times{"2104-02-29 00:00", "2108-02-29 00:00"}));
}

TEST(CronFireTimes, DayOfMonthOrDayOfWeek) {
  // April 2026: Fridays are the 3rd, 10th, 17th, 24th; the 13th is a Monday; May 1st is a Friday.
  EXPECT_EQ(fires("0 0 13 * FRI", "UTC", "2026-04-01 00:00", 6),
            (Times{"2026-04-03 00:00", "2026-04-10 00:00", "2026-04-13 00:00", "2026-04-17 00:00", "2026-04-24 00:00",
                   "2026-05-01 00:00"}));
  // Friday, February 13th 2026 matches both and runs once.
  EXPECT_EQ(fires("0 0 13 * FRI", "UTC", "2026-02-10 00:00", 3),
            (Times{"2026-02-13 00:00", "2026-02-20 00:00", "2026-02-27 00:00"}));
  // Feb 29 or a Monday in February (restricted both: OR).
  EXPECT_EQ(fires("0 0 29 2 MON", "UTC", "2028-02-20 00:00", 4),
            (Times{"2028-02-21 00:00", "2028-02-28 00:00", "2028-02-29 00:00", "2029-02-05 00:00"}));
}

TEST(CronFireTimes, DayOfMonthAndDayOfWeekWhenOneContainsAStar) {
  // Mondays that are the 1st, 11th, 21st or 31st of a month.
  EXPECT_EQ(fires("0 0 */10 * MON", "UTC", "2026-01-01 00:00", 4),
            (Times{"2026-05-11 00:00", "2026-06-01 00:00", "2026-08-31 00:00", "2026-09-21 00:00"}));
}

TEST(CronFireTimes, MonthAndDayNames) {
  // Sundays of December at noon: 2026-12-01 is a Tuesday, 2027-12-01 a Wednesday.
  EXPECT_EQ(fires("0 12 * DEC sun", "UTC", "2026-11-30 00:00", 5),
            (Times{"2026-12-06 12:00", "2026-12-13 12:00", "2026-12-20 12:00", "2026-12-27 12:00", "2027-12-05 12:00"}));
}

TEST(CronFireTimes, Yearly) {
  EXPECT_EQ(fires("@yearly", "UTC", "2026-06-01 00:00", 3),
            (Times{"2027-01-01 00:00", "2028-01-01 00:00", "2029-01-01 00:00"}));
  // Midnight of New Year in Berlin (CET) is 23:00 UTC the day before.
  EXPECT_EQ(fires("@yearly", "Europe/Berlin", "2026-06-01 00:00", 2), (Times{"2026-12-31 23:00", "2027-12-31 23:00"}));
}

TEST(CronFireTimes, ZonesWithHalfHourOffsets) {
  // Asia/Kolkata is UTC+05:30 all year.
  EXPECT_EQ(fires("0 9 * * *", "Asia/Kolkata", "2026-01-01 00:00", 2), (Times{"2026-01-01 03:30", "2026-01-02 03:30"}));
  // Australia/Lord_Howe moves by 30 minutes. 2026-10-04: 02:00 (+10:30) becomes 02:30 (+11) at 15:30 UTC.
  EXPECT_EQ(fires("*/15 * * * *", "Australia/Lord_Howe", "2026-10-03 15:10", 4),
            (Times{"2026-10-03 15:15", "2026-10-03 15:30", "2026-10-03 15:45", "2026-10-03 16:00"}));
  // 2026-04-05: 02:00 (+11) becomes 01:30 (+10:30) at 15:00 UTC; 01:30 and 01:45 run at their first occurrence.
  EXPECT_EQ(fires("*/15 * * * *", "Australia/Lord_Howe", "2026-04-04 14:20", 5),
            (Times{"2026-04-04 14:30", "2026-04-04 14:45", "2026-04-04 15:30", "2026-04-04 15:45", "2026-04-04 16:00"}));
}

TEST(CronFireTimes, CountIsBounded) {
  EXPECT_TRUE(nextFireTimes(CronExpression::parse("* * * * *"), "UTC", utc("2026-01-01 00:00"), 0).empty());
  auto times = nextFireTimes(CronExpression::parse("* * * * *"), "UTC", utc("2026-01-01 00:00"), kMaxFireTimes);
  ASSERT_EQ(times.size(), 1000U);
  EXPECT_EQ(utcText(times.back()), "2026-01-01 16:40");
  std::string message = rejection([] {
    nextFireTimes(CronExpression::parse("* * * * *"), "UTC", utc("2026-01-01 00:00"), kMaxFireTimes + 1);
  });
  EXPECT_NE(message.find("1001"), std::string::npos) << message;
  EXPECT_NE(message.find("at most 1000"), std::string::npos) << message;
}

TEST(CronFireTimes, StopAtTheEndOfTheYear9999) {
  EXPECT_EQ(fires("@yearly", "UTC", "9996-06-01 00:00", 10), (Times{"9997-01-01 00:00", "9998-01-01 00:00", "9999-01-01 00:00"}));
  std::string message = rejection([] {
    nextFireTimes(CronExpression::parse("@daily"), "UTC", utc("1899-12-31 00:00"), 1);
  });
  EXPECT_NE(message.find("1900-9999"), std::string::npos) << message;
}

TEST(CronFireTimes, AnUnknownZoneIsRejected) {
  std::string message = rejection([] {
    nextFireTimes(CronExpression::parse("@daily"), "Mars/Olympus_Mons", utc("2026-01-01 00:00"), 1);
  });
  EXPECT_NE(message.find("unknown time zone \"Mars/Olympus_Mons\""), std::string::npos) << message;
}

}  // namespace
}  // namespace zerobyte::core
