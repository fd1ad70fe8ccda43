// Cron expressions and their fire times in an IANA time zone, with defined behaviour across DST changes.
#include "daemon/core/cron.h"

#include "common/errors.h"
#include "daemon/core/validation.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <exception>
#include <span>

namespace zerobyte::core {
namespace {

constexpr std::string_view kFieldOrder = "minute hour day-of-month month day-of-week";
constexpr std::string_view kListZones = "list the valid names with 'timedatectl list-timezones'";

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct FieldSpec {
  int number;  // position in the expression, 1-based, for messages
  std::string_view name;
  unsigned low;
  unsigned high;
  std::span<const std::string_view> names;  // empty: numbers only
  unsigned firstNameValue;                  // JAN = 1, SUN = 0
  std::string_view rangeText;               // how the accepted values are described
};

constexpr FieldSpec kMinute{1, "minute", 0, 59, {}, 0, "0-59"};
constexpr FieldSpec kHour{2, "hour", 0, 23, {}, 0, "0-23"};
constexpr FieldSpec kDayOfMonth{3, "day of month", 1, 31, {}, 0, "1-31"};
constexpr FieldSpec kMonth{4, "month", 1, 12, kMonthNames, 1, "1-12 or JAN-DEC"};
constexpr FieldSpec kDayOfWeek{5, "day of week", 0, 7, kDayNames, 0, "0-7 or SUN-SAT (0 and 7 are Sunday)"};

struct ParsedField {
  std::bitset<64> values;
  unsigned starStep = 0;  // 0: no '*' in the field
};

std::string expressionError(std::string_view text, std::string_view what) {
  return "cron expression " + quoteValue(text) + " " + std::string(what);
}

// Parses one field; every error names the field, repeats its text and says what is accepted.
class FieldParser {
 public:
  FieldParser(const FieldSpec& spec, std::string_view text) : m_spec(spec), m_text(text) {}

  ParsedField parse() {
    ParsedField field;
    std::vector<std::string_view> items;
    size_t start = 0;
    while (true) {
      size_t comma = m_text.find(',', start);
      items.push_back(m_text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    for (std::string_view item : items) {
      if (item.empty())
        fail("empty element in the list (a comma at the start, at the end or twice); " + syntax());
      if (item.front() == '*') {
        if (items.size() > 1)
          fail("'*' cannot be part of a list; write a range with a step instead, e.g. " +
               std::to_string(m_spec.low) + "-" + std::to_string(m_spec.high) + "/10");
        field.starStep = parseStar(item.substr(1), field);
      } else {
        parseItem(item, field);
      }
    }
    return field;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::InvalidArgument, "cron field " + std::to_string(m_spec.number) + " (" +
                                                std::string(m_spec.name) + ") " + quoteValue(m_text) + ": " + what);
  }

  std::string syntax() const {
    return "write *, a number, a range a-b, a list a,b,c or a step */n, a-b/n, a/n with values " +
           std::string(m_spec.rangeText);
  }

  unsigned maxStep() const { return m_spec.high - m_spec.low + 1; }

  unsigned parseStar(std::string_view rest, ParsedField& field) {
    unsigned step = 1;
    if (!rest.empty() && rest.front() == '/') {
      rest.remove_prefix(1);
      step = parseStep(rest);
    }
    if (!rest.empty()) unexpected(rest, "*");
    add(field, m_spec.low, m_spec.high, step);
    return step;
  }

  void parseItem(std::string_view item, ParsedField& field) {
    std::string_view rest = item;
    unsigned first = parseValue(rest, "a number or a range");
    unsigned last = first;
    bool ranged = false;
    if (!rest.empty() && rest.front() == '-') {
      rest.remove_prefix(1);
      bool isName = !rest.empty() && std::isalpha(static_cast<unsigned char>(rest.front()));
      last = parseValue(rest, "the end of the range after '-'");
      // SUN is both 0 and 7: as the end of a range it is 7, so FRI-SUN means Friday to Sunday.
      if (isName && m_spec.number == kDayOfWeek.number && last == 0 && first > 0) last = 7;
      if (last < first)
        fail("range " + std::to_string(first) + "-" + std::to_string(last) +
             " is reversed; write the lower value first, e.g. " + std::to_string(last) + "-" + std::to_string(first));
      ranged = true;
    }
    unsigned step = 1;
    if (!rest.empty() && rest.front() == '/') {
      rest.remove_prefix(1);
      step = parseStep(rest);
      // `a/n` runs from a to the field's highest value.
      if (!ranged) last = m_spec.high;
    }
    if (!rest.empty()) unexpected(rest, item.substr(0, item.size() - rest.size()));
    add(field, first, last, step);
  }

  [[noreturn]] void unexpected(std::string_view rest, std::string_view before) const {
    fail("unexpected " + quoteValue(rest) + " after " + quoteValue(before) + "; " + syntax());
  }

  unsigned parseValue(std::string_view& rest, std::string_view expected) const {
    if (rest.empty()) fail("expected " + std::string(expected) + "; " + syntax());
    auto c = static_cast<unsigned char>(rest.front());
    if (std::isdigit(c)) {
      uint64_t value = 0;
      size_t length = 0;
      while (length < rest.size() && std::isdigit(static_cast<unsigned char>(rest[length]))) {
        value = std::min<uint64_t>(value * 10 + static_cast<unsigned>(rest[length] - '0'), 1'000'000);
        ++length;
      }
      if (value < m_spec.low || value > m_spec.high)
        fail(std::string(rest.substr(0, length)) + " is out of range " + std::string(m_spec.rangeText));
      rest.remove_prefix(length);
      return static_cast<unsigned>(value);
    }
    if (std::isalpha(c)) {
      size_t length = 0;
      while (length < rest.size() && std::isalpha(static_cast<unsigned char>(rest[length]))) ++length;
      std::string word(rest.substr(0, length));
      if (m_spec.names.empty())
        fail(quoteValue(word) + " is not a number; the " + std::string(m_spec.name) + " field takes numbers " +
             std::string(m_spec.rangeText) + " (names are for months and days of the week)");
      std::string upper = word;
      for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      for (size_t i = 0; i < m_spec.names.size(); ++i) {
        if (m_spec.names[i] == upper) {
          rest.remove_prefix(length);
          return m_spec.firstNameValue + static_cast<unsigned>(i);
        }
      }
      fail("unknown " + std::string(m_spec.name) + " name " + quoteValue(word) + "; use " +
           std::string(m_spec.rangeText));
    }
    fail("expected " + std::string(expected) + ", found " + quoteValue(rest) + "; " + syntax());
  }

  unsigned parseStep(std::string_view& rest) const {
    size_t length = 0;
    uint64_t step = 0;
    while (length < rest.size() && std::isdigit(static_cast<unsigned char>(rest[length]))) {
      step = std::min<uint64_t>(step * 10 + static_cast<unsigned>(rest[length] - '0'), 1'000'000);
      ++length;
    }
    std::string allowed = "1-" + std::to_string(maxStep());
    if (length == 0) fail("expected a step number " + allowed + " after '/'; e.g. */15");
    if (step == 0) fail("step 0 is not allowed; a step must be " + allowed);
    if (step > maxStep())
      fail("step " + std::string(rest.substr(0, length)) + " is larger than the field's range " +
           std::to_string(m_spec.low) + "-" + std::to_string(m_spec.high) + "; a step must be " + allowed);
    rest.remove_prefix(length);
    return static_cast<unsigned>(step);
  }

  static void add(ParsedField& field, unsigned first, unsigned last, unsigned step) {
    for (unsigned v = first; v <= last; v += step) field.values.set(v);
  }

  const FieldSpec& m_spec;
  std::string_view m_text;
};

template <size_t N>
void copyBits(const std::bitset<64>& from, std::bitset<N>& to) {
  for (size_t i = 0; i < N; ++i) to.set(i, from.test(i));
}

std::vector<std::string_view> splitFields(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr std::array<Macro, 7> kMacros = {{
    {"@hourly", "0 * * * *"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
}};

// The values of a field in list form: runs of 3 or more as ranges, an arithmetic
// progression as `a-b/n`, else single numbers.
std::string formatValues(const std::vector<unsigned>& values) {
  if (values.size() >= 3) {
    unsigned step = values[1] - values[0];
    bool progression = step >= 2;
    for (size_t i = 2; progression && i < values.size(); ++i) progression = values[i] - values[i - 1] == step;
    if (progression)
      return std::to_string(values.front()) + "-" + std::to_string(values.back()) + "/" + std::to_string(step);
  }
  std::string out;
  for (size_t i = 0; i < values.size();) {
    size_t j = i;
    while (j + 1 < values.size() && values[j + 1] == values[j] + 1) ++j;
    if (!out.empty()) out += ',';
    if (j - i >= 2) {
      out += std::to_string(values[i]) + "-" + std::to_string(values[j]);
      i = j + 1;
    } else {
      out += std::to_string(values[i]);
      ++i;
    }
  }
  return out;
}

template <size_t N>
std::vector<unsigned> setBits(const std::bitset<N>& bits, unsigned low, unsigned high) {
  std::vector<unsigned> values;
  for (unsigned v = low; v <= high; ++v)
    if (bits.test(v)) values.push_back(v);
  return values;
}

// A field whose '*' does not change the meaning (minute, hour, month): `*` and `*/n` when they fit.
template <size_t N>
std::string formatPlainField(const std::bitset<N>& bits, unsigned low, unsigned high) {
  std::vector<unsigned> values = setBits(bits, low, high);
  if (values.size() == high - low + 1) return "*";
  if (values.size() >= 3 && values[0] == low) {
    unsigned step = values[1] - values[0];
    bool starStep = true;
    for (unsigned i = 0; starStep && i < values.size(); ++i) starStep = values[i] == low + i * step;
    if (starStep && values.back() + step > high) return "*/" + std::to_string(step);
  }
  return formatValues(values);
}

template <size_t N>
std::string formatDayField(const std::bitset<N>& bits, unsigned low, unsigned high, unsigned starStep) {
  if (starStep == 1) return "*";
  if (starStep > 1) return "*/" + std::to_string(starStep);
  return formatValues(setBits(bits, low, high));
}

bool isLeapYear(unsigned year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

unsigned daysInMonth(unsigned year, unsigned month) {
  static constexpr std::array<unsigned, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && isLeapYear(year) ? 29 : kDays[month - 1];
}

// How often the expression's days come over the Gregorian calendar's full 400-year cycle
// (146097 days, a whole number of weeks, so every later cycle is the same).
struct CalendarScan {
  unsigned matchingDays = 0;
  unsigned longestGapDays = 0;  // between consecutive matching days, across the cycle's end too
};

CalendarScan scanCalendarCycle(const CronExpression& expression) {
  constexpr unsigned kCycleDays = 146097;
  CalendarScan scan;
  unsigned index = 0;
  unsigned firstMatch = 0;
  unsigned lastMatch = 0;
  for (unsigned year = 2000; year < 2400; ++year) {
    for (unsigned month = 1; month <= 12; ++month) {
      for (unsigned day = 1, days = daysInMonth(year, month); day <= days; ++day, ++index) {
        // 2000-01-01 was a Saturday (6).
        if (!expression.matchesDay(month, day, (6 + index) % 7)) continue;
        if (scan.matchingDays == 0)
          firstMatch = index;
        else
          scan.longestGapDays = std::max(scan.longestGapDays, index - lastMatch);
        lastMatch = index;
        ++scan.matchingDays;
      }
    }
  }
  if (scan.matchingDays > 0)
    scan.longestGapDays = std::max(scan.longestGapDays, firstMatch + kCycleDays - lastMatch);
  return scan;
}

const date::time_zone* locateZone(std::string_view zone) {
  std::string hint = "use an IANA time zone name such as Europe/Berlin or UTC; " + std::string(kListZones);
  if (zone.empty()) throw Error(ErrorCode::InvalidArgument, "time zone is empty; " + hint);
  // "localtime" is a link to /etc/localtime in the database directory, not a zone name: a schedule
  // would silently change meaning with the host's setting.
  if (zone == "localtime")
    throw Error(ErrorCode::InvalidArgument, "time zone \"localtime\" is not an IANA name; " + hint);
  try {
    return date::locate_zone(std::string(zone));
  } catch (const std::exception&) {
    throw Error(ErrorCode::InvalidArgument,
                "unknown time zone " + quoteValue(zone) + " (not in /usr/share/zoneinfo); " + hint);
  }
}

// The instant a matching wall-clock time runs at (the DST rules in cron.h).
std::chrono::sys_seconds fireInstant(const date::time_zone& zone, date::local_seconds wall) {
  const date::local_info info = zone.get_info(wall);
  if (info.result == date::local_info::nonexistent) return info.first.end;  // the first instant after the gap
  // Unique, or ambiguous: `first` is the earlier of the two occurrences.
  return std::chrono::sys_seconds{wall.time_since_epoch() - info.first.offset};
}

}  // namespace

CronExpression CronExpression::parse(std::string_view text) {
  std::vector<std::string_view> fields = splitFields(text);
  if (fields.empty())
    throw Error(ErrorCode::InvalidArgument, "cron expression is empty; write 5 fields \"" + std::string(kFieldOrder) +
                                                "\" (e.g. \"30 2 * * *\") or a macro such as @daily");
  if (fields.front().front() == '@') {
    std::string name(fields.front());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const Macro& macro : kMacros) {
      if (macro.name != name) continue;
      if (fields.size() > 1)
        throw Error(ErrorCode::InvalidArgument,
                    expressionError(text, "has fields after the macro " + name +
                                              "; write either the macro alone or 5 fields \"" +
                                              std::string(kFieldOrder) + "\""));
      return parse(macro.expansion);
    }
    throw Error(ErrorCode::InvalidArgument,
                expressionError(text, "uses an unknown macro " + quoteValue(fields.front()) +
                                          "; the macros are @hourly, @daily (@midnight), @weekly, @monthly, "
                                          "@yearly (@annually)"));
  }
  if (fields.size() != 5)
    throw Error(ErrorCode::InvalidArgument,
                expressionError(text, "has " + std::to_string(fields.size()) + " field" +
                                          (fields.size() == 1 ? "" : "s") + "; 5 are expected: \"" +
                                          std::string(kFieldOrder) + "\" (e.g. \"30 2 * * *\"), or a macro such as @daily"));

  CronExpression expression;
  copyBits(FieldParser(kMinute, fields[0]).parse().values, expression.m_minutes);
  copyBits(FieldParser(kHour, fields[1]).parse().values, expression.m_hours);
  ParsedField daysOfMonth = FieldParser(kDayOfMonth, fields[2]).parse();
  copyBits(daysOfMonth.values, expression.m_daysOfMonth);
  expression.m_dayOfMonthStarStep = daysOfMonth.starStep;
  copyBits(FieldParser(kMonth, fields[3]).parse().values, expression.m_months);
  ParsedField daysOfWeek = FieldParser(kDayOfWeek, fields[4]).parse();
  if (daysOfWeek.values.test(7)) daysOfWeek.values.set(0);  // 7 is Sunday too
  copyBits(daysOfWeek.values, expression.m_daysOfWeek);
  expression.m_dayOfWeekStarStep = daysOfWeek.starStep;

  // With every day of the month, or both day fields restricted (OR), each selected month has a
  // run every week: only other combinations can be rare or impossible, and need the scan.
  // So does a restricted day of month with every day of the week, when one of its days is at most
  // the 28th (every month has it): "30 2 15 * *", "0 3 1 1 *". The scan walks 146097 days; skipping
  // it keeps a start with thousands of schedules fast.
  bool dayEveryMonthHas = false;
  for (unsigned day = 1; day <= 28 && !dayEveryMonthHas; ++day) dayEveryMonthHas = expression.m_daysOfMonth.test(day);
  bool everyMonthHasRuns = expression.m_dayOfMonthStarStep == 1 ||
                           (expression.m_dayOfMonthStarStep == 0 && expression.m_dayOfWeekStarStep == 0) ||
                           (expression.m_dayOfWeekStarStep == 1 && dayEveryMonthHas);
  if (everyMonthHasRuns) return expression;
  CalendarScan scan = scanCalendarCycle(expression);
  if (scan.matchingDays == 0)
    throw Error(ErrorCode::InvalidArgument,
                expressionError(text, "never fires: no month in field 4 (month) " + quoteValue(fields[3]) +
                                          " has a day in field 3 (day of month) " + quoteValue(fields[2]) +
                                          " (February has at most 29 days; April, June, September and November "
                                          "30); change the day of month or the month"));
  if (scan.longestGapDays > static_cast<unsigned>(kMaxDaysBetweenRuns))
    throw Error(ErrorCode::InvalidArgument,
                expressionError(text, "fires too rarely: its days can be " + std::to_string(scan.longestGapDays) +
                                          " days (about " + std::to_string(scan.longestGapDays * 100 / 36524) +
                                          " years) apart, and at most 8 years between runs are supported; "
                                          "relax the day of month, month or day of week"));
  return expression;
}

std::string CronExpression::str() const {
  return formatPlainField(m_minutes, 0, 59) + " " + formatPlainField(m_hours, 0, 23) + " " +
         formatDayField(m_daysOfMonth, 1, 31, m_dayOfMonthStarStep) + " " + formatPlainField(m_months, 1, 12) + " " +
         formatDayField(m_daysOfWeek, 0, 6, m_dayOfWeekStarStep);
}

bool CronExpression::matchesDay(unsigned month, unsigned dayOfMonth, unsigned dayOfWeek) const {
  if (month < 1 || month > 12 || dayOfMonth < 1 || dayOfMonth > 31 || dayOfWeek > 6) return false;
  if (!m_months.test(month)) return false;
  bool dayOfMonthMatches = m_daysOfMonth.test(dayOfMonth);
  bool dayOfWeekMatches = m_daysOfWeek.test(dayOfWeek);
  if (m_dayOfMonthStarStep == 0 && m_dayOfWeekStarStep == 0) return dayOfMonthMatches || dayOfWeekMatches;
  return dayOfMonthMatches && dayOfWeekMatches;
}

void validateTimeZone(std::string_view zone) { locateZone(zone); }

std::string systemTimeZone() {
  try {
    const date::time_zone* zone = date::current_zone();
    if (zone != nullptr && zone->name() != "localtime") return zone->name();
  } catch (const std::exception&) {
    // No readable /etc/localtime (e.g. a minimal container): fall through.
  }
  return "UTC";
}

std::vector<std::chrono::sys_seconds> nextFireTimes(const CronExpression& expression, const std::string& zone,
                                                    std::chrono::sys_seconds after, size_t count) {
  if (count > kMaxFireTimes)
    throw Error(ErrorCode::InvalidArgument, "cannot list " + std::to_string(count) + " fire times; at most " +
                                                std::to_string(kMaxFireTimes) + " are allowed");
  const date::time_zone* tz = locateZone(zone);
  const date::sys_days earliest{date::year{1900} / 1 / 1};
  const date::sys_days latest{date::year{10000} / 1 / 1};
  if (after < earliest || after >= latest)
    throw Error(ErrorCode::InvalidArgument, "the start time for fire times must lie in the years 1900-9999 (UTC)");

  std::vector<std::chrono::sys_seconds> times;
  if (count == 0) return times;
  times.reserve(count);
  std::vector<unsigned> hours, minutes;
  for (unsigned h = 0; h < 24; ++h)
    if (expression.matchesHour(h)) hours.push_back(h);
  for (unsigned m = 0; m < 60; ++m)
    if (expression.matchesMinute(m)) minutes.push_back(m);

  // Wall-clock times map to instants in ascending order (a gap's times all go to its end, an
  // overlap's to their first occurrence), so walking the days of `zone` from the one `after`
  // falls on and keeping instants later than the last one kept gives each run once, in order.
  date::local_days day = date::floor<date::days>(tz->to_local(after));
  date::local_days searchedFrom = day;
  const date::local_days lastDay{date::year{9999} / 12 / 31};
  std::chrono::sys_seconds last = after;
  // Two days of slack over kMaxDaysBetweenRuns: `after` may lie late on a matching day, and a
  // fall-back across midnight can put the first times of a day before `after`.
  while (day <= lastDay && day - searchedFrom <= date::days{kMaxDaysBetweenRuns + 2}) {
    const date::year_month_day ymd{day};
    const date::weekday weekday{day};
    if (expression.matchesDay(static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                              weekday.c_encoding())) {
      for (unsigned h : hours) {
        for (unsigned m : minutes) {
          std::chrono::sys_seconds t =
              fireInstant(*tz, date::local_seconds{day} + std::chrono::hours{h} + std::chrono::minutes{m});
          if (t <= last) continue;
          times.push_back(t);
          if (times.size() == count) return times;
          last = t;
          searchedFrom = day;
        }
      }
    }
    day += date::days{1};
  }
  return times;
}

}  // namespace zerobyte::core
