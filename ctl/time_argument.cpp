// Parsing of command-line times: fixed local dates and times, or spans ago.
#include "ctl/time_argument.h"

#include <cstdint>
#include <string>

namespace zerobyte::ctl {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Exactly `width` digits at `pos`.
std::optional<int> digitsAt(std::string_view text, size_t pos, size_t width) {
  if (pos + width > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (!isDigit(text[i])) return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

std::optional<std::time_t> parseSpanAgo(std::string_view text, std::time_t now) {
  if (text.size() < 2 || text.size() > 9) return std::nullopt;
  int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return std::nullopt;
  }
  int64_t count = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (!isDigit(c)) return std::nullopt;
    count = count * 10 + (c - '0');  // at most 8 digits: no overflow
  }
  return static_cast<std::time_t>(now - count * unit);
}

std::optional<std::time_t> parseLocalTime(std::string_view text) {
  // YYYY-MM-DD[( |T)HH:MM[:SS]]
  if (text.size() != 10 && text.size() != 16 && text.size() != 19) return std::nullopt;
  auto year = digitsAt(text, 0, 4), month = digitsAt(text, 5, 2), day = digitsAt(text, 8, 2);
  if (!year || !month || !day || text[4] != '-' || text[7] != '-') return std::nullopt;
  int hour = 0, minute = 0, second = 0;
  if (text.size() > 10) {
    auto h = digitsAt(text, 11, 2), m = digitsAt(text, 14, 2);
    if ((text[10] != ' ' && text[10] != 'T') || text[13] != ':' || !h || !m) return std::nullopt;
    hour = *h;
    minute = *m;
    if (text.size() == 19) {
      auto s = digitsAt(text, 17, 2);
      if (text[16] != ':' || !s) return std::nullopt;
      second = *s;
    }
  }
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  std::tm fields{};
  fields.tm_year = *year - 1900;
  fields.tm_mon = *month - 1;
  fields.tm_mday = *day;
  fields.tm_hour = hour;
  fields.tm_min = minute;
  fields.tm_sec = second;
  fields.tm_isdst = -1;  // whatever daylight saving time says for that date
  std::tm normalized = fields;
  const std::time_t result = std::mktime(&normalized);
  if (result == static_cast<std::time_t>(-1) && !(*year == 1969 && *month == 12 && *day == 31)) return std::nullopt;
  // mktime carries 2024-02-30 over into March: such a date does not exist.
  if (normalized.tm_mday != *day || normalized.tm_mon != *month - 1) return std::nullopt;
  return result;
}

}  // namespace

std::optional<std::time_t> parseTimeArgument(std::string_view text, std::time_t now) {
  if (text.empty()) return std::nullopt;
  if (isDigit(text.front()) && !isDigit(text.back())) return parseSpanAgo(text, now);
  return parseLocalTime(text);
}

}  // namespace zerobyte::ctl
