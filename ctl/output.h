// zerobytectl's human output: sizes, durations, local times, aligned tables and JSON printing.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zerobyte::ctl {

// IEC units, one decimal from KiB up: "0 B", "512 B", "1.5 KiB", "28.9 MiB".
std::string formatBytes(uint64_t bytes);
// "12.3 MiB/s".
std::string formatRate(double bytesPerSecond);
// Compact and readable at a glance: "0.4s", "42s", "1m 05s", "2h 03m", "3d 04h".
std::string formatDuration(double seconds);

// Seconds since the epoch for an RFC 3339 time ("2024-05-01T10:11:12.5Z", "…+02:00");
// nullopt when the text is not one.
std::optional<double> parseRfc3339(std::string_view text);
// "YYYY-MM-DD HH:MM:SS" in the local time zone.
std::string formatLocalTime(std::time_t time);
// An RFC 3339 string from the daemon shown in local time; "-" for an empty or null
// value; text that does not parse is shown as it is.
std::string formatLocalTime(const nlohmann::json& rfc3339);

// "1 volume", "3 volumes" (plural is singular + "s" unless given).
std::string countOf(uint64_t count, std::string_view singular, std::string_view plural = {});

// Control characters (terminal escapes in a file name or a restic message) are shown as
// \xNN so that what the daemon relays cannot drive the terminal.
std::string sanitize(std::string_view text);
// Columns taken on a terminal by UTF-8 text (one per code point).
size_t displayWidth(std::string_view text);

// A table like `systemctl list-units`: upper-case headers, columns aligned with two
// spaces, no borders, no trailing blanks. Cells are sanitized.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  // Numbers read better aligned on the right.
  void alignRight(size_t column);
  void addRow(std::vector<std::string> cells);
  size_t rows() const noexcept { return m_rows.size(); }
  // Every line ends in '\n'; the header line is left out when showHeader is false.
  std::string render(bool showHeader = true) const;

 private:
  std::vector<std::string> m_headers;
  std::vector<bool> m_rightAligned;
  std::vector<std::vector<std::string>> m_rows;
};

// "Key: value" lines with the keys right-aligned, like `systemctl status`. Values are
// sanitized; a multi-line value continues under the first one.
std::string formatFields(const std::vector<std::pair<std::string, std::string>>& fields);

// JSON text of a reply: pretty (two-space indent) or one line. Invalid UTF-8 is replaced
// instead of failing the command.
std::string jsonText(const nlohmann::json& value, bool pretty);

// The user name for a uid, or the number when the account is unknown.
std::string userName(int64_t uid);

}  // namespace zerobyte::ctl
