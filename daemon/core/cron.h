// Cron expressions and their fire times in an IANA time zone, with defined behaviour across DST changes.
#pragma once

#include <bitset>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::core {

// At most this many fire times per nextFireTimes() call (a listing, not a way to walk centuries).
constexpr size_t kMaxFireTimes = 1000;
// The longest wait between two runs that is supported: 8 years (2922 days), so that Feb 29
// works across a century year that is not a leap year (2096-02-29 to 2104-02-29). parse()
// rejects expressions whose matching days can be further apart, and nextFireTimes() never
// looks further ahead than this, so both agree and neither can loop for long.
constexpr int kMaxDaysBetweenRuns = 2922;

// A standard 5-field cron expression: "minute hour day-of-month month day-of-week".
//
// Each field is `*`, a number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (a to the field's
// highest value), or a list of numbers, ranges and ranged steps `a,b-c,d-e/n` (`*` stands alone).
// Minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-7 or SUN-SAT
// (0 and 7 are Sunday; SUN at the end of a range is 7, so FRI-SUN works). Names are
// case-insensitive. Macros: @hourly, @daily (= @midnight), @weekly, @monthly, @yearly (= @annually).
//
// Day of month and day of week follow cron's rule: when both fields are restricted (contain no
// `*`), a day matches if EITHER matches ("0 0 13 * FRI": every 13th and every Friday); when one of
// them contains `*` (`*` or `*/n`), a day must match both.
class CronExpression {
 public:
  // Throws Error(InvalidArgument) naming the field, what is wrong and the accepted form; also
  // for an expression that never fires ("0 0 31 2 *") or whose matching days can be more than
  // kMaxDaysBetweenRuns apart ("0 0 29 2 */7": Feb 29 on a Sunday).
  static CronExpression parse(std::string_view text);

  // Five fields with numbers only (names and macros resolved), `*`, `*/n`, ranges and lists;
  // parse(str()) is equal to this expression.
  std::string str() const;

  // dayOfWeek: 0 = Sunday … 6 = Saturday.
  bool matchesDay(unsigned month, unsigned dayOfMonth, unsigned dayOfWeek) const;
  bool matchesHour(unsigned hour) const { return m_hours.test(hour); }
  bool matchesMinute(unsigned minute) const { return m_minutes.test(minute); }

  bool operator==(const CronExpression&) const = default;

 private:
  CronExpression() = default;

  std::bitset<60> m_minutes;
  std::bitset<24> m_hours;
  std::bitset<32> m_daysOfMonth;  // bit 0 unused
  std::bitset<13> m_months;       // bit 0 unused
  std::bitset<7> m_daysOfWeek;    // 0 = Sunday; 7 in the text is stored as 0
  // 0 when the field is restricted (contains no '*'); otherwise n of `*/n` (1 for `*`). It decides
  // the OR/AND rule above and lets str() give back `*/n`.
  unsigned m_dayOfMonthStarStep = 1;
  unsigned m_dayOfWeekStarStep = 1;
};

// Throws Error(InvalidArgument) unless `zone` names a time zone of the OS time zone database
// (/usr/share/zoneinfo), e.g. "Europe/Berlin" or "UTC". The message says how to list valid names.
void validateTimeZone(std::string_view zone);

// The system's time zone (/etc/localtime), or "UTC" when it cannot be determined.
std::string systemTimeZone();

// The next `count` (at most kMaxFireTimes) fire times strictly after `after`, in ascending order,
// evaluated on the wall clock of `zone`. Throws Error(InvalidArgument) for an unknown zone, a
// count above kMaxFireTimes, or `after` outside the years 1900-9999. Fewer times come back only
// when the year 9999 is reached.
//
// DST rules (each matching wall-clock time runs once; no instant runs twice):
// - A wall-clock time that does not exist (the spring-forward gap, e.g. 02:30 on 2026-03-29 in
//   Europe/Berlin) runs at the first instant after the gap (03:00 local = 01:00 UTC). All matching
//   times inside the gap, and a match at the gap's end itself, share that one instant, so it runs
//   once: "*/15" runs 01:45, 03:00, 03:15 local that morning.
// - A wall-clock time that occurs twice (the fall-back overlap, e.g. 02:30 on 2026-10-25 in
//   Europe/Berlin) runs once, at its first occurrence (in summer time). The repeated hour's second
//   pass runs nothing: "@hourly" runs 02:00 summer time then 03:00 winter time, two hours later.
// These are the rules of systemd's calendar timers (one run per matching wall-clock time). An
// `after` inside the repeated hour therefore never gets a second run of a time already passed.
//
// The OS database as read here holds transitions up to 2037 only: for later years each zone
// keeps the offset it has after its last listed transition (no DST changes).
std::vector<std::chrono::sys_seconds> nextFireTimes(const CronExpression& expression, const std::string& zone,
                                                    std::chrono::sys_seconds after, size_t count);

}  // namespace zerobyte::core
