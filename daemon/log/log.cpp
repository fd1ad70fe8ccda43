// Logging to stderr; journald reads the <N> prefix as the priority.
#include "daemon/log/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace zerobyte::log {
namespace {

Level g_level = Level::Info;

bool stderrIsJournal() {
  static const bool journal = [] {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream) return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) < 0) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    return st.st_dev == dev && st.st_ino == ino;
  }();
  return journal;
}

const char* levelName(Level level) {
  switch (level) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Notice: return "notice";
    case Level::Warning: return "warning";
    case Level::Error: return "error";
  }
  return "info";
}

}  // namespace

void setLevel(Level level) { g_level = level; }

bool setLevel(std::string_view name) {
  for (Level l : {Level::Debug, Level::Info, Level::Notice, Level::Warning, Level::Error}) {
    if (name == levelName(l)) {
      g_level = l;
      return true;
    }
  }
  return false;
}

std::string sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

void write(Level level, std::string_view message) {
  if (static_cast<int>(level) > static_cast<int>(g_level)) return;
  std::string line;
  if (stderrIsJournal())
    line = "<" + std::to_string(static_cast<int>(level)) + ">";
  else
    line = std::string("zerobyted: ") + levelName(level) + ": ";
  line += sanitize(message);
  line.push_back('\n');
  // One write() per line so lines from children and us never interleave mid-line.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace zerobyte::log
