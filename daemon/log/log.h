// The daemon's log: one line per event on stderr, with syslog priority prefixes under journald.
#pragma once

#include <string>
#include <string_view>

namespace zerobyte::log {

enum class Level { Debug = 7, Info = 6, Notice = 5, Warning = 4, Error = 3 };

void setLevel(Level level);
// Accepts debug, info, notice, warning, error; returns false for anything else.
bool setLevel(std::string_view name);
void write(Level level, std::string_view message);

inline void debug(std::string_view m) { write(Level::Debug, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void notice(std::string_view m) { write(Level::Notice, m); }
inline void warning(std::string_view m) { write(Level::Warning, m); }
inline void error(std::string_view m) { write(Level::Error, m); }

// Makes untrusted text (paths, restic output) safe for one log line: control characters escaped.
std::string sanitize(std::string_view text);

}  // namespace zerobyte::log
