// Formatting of sizes, durations, times, tables and JSON for zerobytectl.
#include "ctl/output.h"

#include <pwd.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace zerobyte::ctl {
namespace {

std::string printf1(const char* format, double value, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value, unit);
  return buf;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil),
// so that parsing does not depend on the process's time zone.
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool isLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned daysInMonth(int64_t y, unsigned m) {
  static constexpr std::array<unsigned, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `count` digits at `pos`.
std::optional<int> digits(std::string_view text, size_t& pos, size_t count) {
  if (pos + count > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += count;
  return value;
}

bool expect(std::string_view text, size_t& pos, std::string_view oneOf) {
  if (pos >= text.size() || oneOf.find(text[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}

}  // namespace

std::string formatBytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr std::array<const char*, 6> kUnits{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  // 1023.95 would print as "1024.0": move to the next unit before that happens.
  while (value >= 1023.95 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  return printf1("%.1f %s", value, kUnits[unit]);
}

std::string formatRate(double bytesPerSecond) {
  if (!(bytesPerSecond > 0)) return "0 B/s";
  return formatBytes(static_cast<uint64_t>(std::llround(bytesPerSecond))) + "/s";
}

std::string formatDuration(double seconds) {
  if (!(seconds > 0)) return "0s";
  if (seconds < 9.95 && std::fabs(seconds - std::round(seconds)) >= 0.05) return printf1("%.1f%s", seconds, "s");
  const long long n = std::llround(seconds);
  char buf[64];
  if (n < 60)
    std::snprintf(buf, sizeof buf, "%llds", n);
  else if (n < 3600)
    std::snprintf(buf, sizeof buf, "%lldm %02llds", n / 60, n % 60);
  else if (n < 86400)
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", n / 3600, n % 3600 / 60);
  else
    std::snprintf(buf, sizeof buf, "%lldd %02lldh", n / 86400, n % 86400 / 3600);
  return buf;
}

std::optional<double> parseRfc3339(std::string_view text) {
  size_t pos = 0;
  auto year = digits(text, pos, 4);
  if (!year || !expect(text, pos, "-")) return std::nullopt;
  auto month = digits(text, pos, 2);
  if (!month || !expect(text, pos, "-")) return std::nullopt;
  auto day = digits(text, pos, 2);
  if (!day || !expect(text, pos, "Tt ")) return std::nullopt;
  auto hour = digits(text, pos, 2);
  if (!hour || !expect(text, pos, ":")) return std::nullopt;
  auto minute = digits(text, pos, 2);
  if (!minute || !expect(text, pos, ":")) return std::nullopt;
  auto second = digits(text, pos, 2);
  if (!second) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || static_cast<unsigned>(*day) > daysInMonth(*year, *month) ||
      *hour > 23 || *minute > 59 || *second > 60)
    return std::nullopt;

  double fraction = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    double scale = 0.1;
    size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }

  int offsetSeconds = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    auto offHours = digits(text, pos, 2);
    if (!offHours || !expect(text, pos, ":")) return std::nullopt;
    auto offMinutes = digits(text, pos, 2);
    if (!offMinutes || *offHours > 23 || *offMinutes > 59) return std::nullopt;
    offsetSeconds = sign * (*offHours * 3600 + *offMinutes * 60);
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;

  int64_t days = daysFromCivil(*year, static_cast<unsigned>(*month), static_cast<unsigned>(*day));
  int64_t secs = days * 86400 + *hour * 3600 + *minute * 60 + *second - offsetSeconds;
  return static_cast<double>(secs) + fraction;
}

std::string formatLocalTime(std::time_t time) {
  std::tm tm{};
  if (!localtime_r(&time, &tm)) return std::to_string(time);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string formatLocalTime(const nlohmann::json& rfc3339) {
  if (!rfc3339.is_string()) return "-";
  const auto& text = rfc3339.get_ref<const std::string&>();
  if (text.empty()) return "-";
  auto seconds = parseRfc3339(text);
  if (!seconds) return sanitize(text);
  return formatLocalTime(static_cast<std::time_t>(std::floor(*seconds)));
}

std::string countOf(uint64_t count, std::string_view singular, std::string_view plural) {
  std::string noun(count == 1 ? singular : (plural.empty() ? std::string(singular) + "s" : std::string(plural)));
  return std::to_string(count) + " " + noun;
}

std::string sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    char buf[8];
    if (c < 0x20 || c == 0x7f) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      // U+0080..U+009F: C1 controls, which some terminals obey (CSI is U+009B).
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(text[i + 1]));
      out += buf;
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

size_t displayWidth(std::string_view text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

Table::Table(std::vector<std::string> headers) : m_headers(std::move(headers)), m_rightAligned(m_headers.size(), false) {
  for (auto& h : m_headers)
    for (auto& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
}

void Table::alignRight(size_t column) {
  if (column < m_rightAligned.size()) m_rightAligned[column] = true;
}

void Table::addRow(std::vector<std::string> cells) {
  cells.resize(m_headers.size());
  for (auto& cell : cells) cell = sanitize(cell);
  m_rows.push_back(std::move(cells));
}

std::string Table::render(bool showHeader) const {
  const size_t columns = m_headers.size();
  std::vector<size_t> widths(columns, 0);
  for (size_t c = 0; c < columns; ++c) {
    if (showHeader) widths[c] = displayWidth(m_headers[c]);
    for (const auto& row : m_rows) widths[c] = std::max(widths[c], displayWidth(row[c]));
  }
  auto renderLine = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < columns; ++c) {
      if (c > 0) line += "  ";
      const size_t pad = widths[c] - displayWidth(cells[c]);
      if (m_rightAligned[c]) line.append(pad, ' ');
      line += cells[c];
      if (!m_rightAligned[c]) line.append(pad, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line + "\n";
  };
  std::string out;
  if (showHeader) out += renderLine(m_headers);
  for (const auto& row : m_rows) out += renderLine(row);
  return out;
}

std::string formatFields(const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, displayWidth(key));
  std::string out;
  for (const auto& [key, value] : fields) {
    out.append(width - displayWidth(key), ' ');
    out += key;
    out += ":";
    size_t start = 0;
    bool first = true;
    do {
      size_t end = value.find('\n', start);
      std::string_view line = std::string_view(value).substr(start, end == std::string::npos ? end : end - start);
      if (!first) out.append(width + 1, ' ');
      if (!line.empty()) out += " " + sanitize(line);
      out += "\n";
      first = false;
      start = end == std::string::npos ? std::string::npos : end + 1;
    } while (start != std::string::npos);
  }
  return out;
}

std::string jsonText(const nlohmann::json& value, bool pretty) {
  return value.dump(pretty ? 2 : -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string userName(int64_t uid) {
  if (uid < 0) return std::to_string(uid);
  passwd pw{};
  passwd* result = nullptr;
  std::vector<char> buffer(16384);
  if (getpwuid_r(static_cast<uid_t>(uid), &pw, buffer.data(), buffer.size(), &result) == 0 && result)
    return result->pw_name;
  return std::to_string(uid);
}

}  // namespace zerobyte::ctl
