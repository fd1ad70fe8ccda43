// Caller identity: start times from /proc, pidfds, and whether the process that connected still exists.
#include "daemon/api/caller.h"

#include "daemon/api/request.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <string>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace zerobyte::api {

namespace {

// Field 3 (state) is the first after the command name; field 22 is the start time.
constexpr int kFieldsFromStateToStartTime = 22 - 3;

// The state letter and start time of a stat line; nullopt if the line is malformed.
struct StatFacts {
  char state = '?';
  uint64_t startTime = 0;
};

std::optional<StatFacts> parseStat(std::string_view line) {
  size_t close = line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(close + 1);
  StatFacts facts;
  int field = 0;  // counts fields after the command name: 0 is the state
  size_t pos = 0;
  while (pos < rest.size()) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    if (pos >= rest.size()) break;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view token = rest.substr(pos, end - pos);
    if (field == 0) {
      if (token.size() != 1) return std::nullopt;
      facts.state = token[0];
    } else if (field == kFieldsFromStateToStartTime) {
      auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), facts.startTime);
      if (ec != std::errc() || ptr != token.data() + token.size()) return std::nullopt;
      return facts;
    }
    ++field;
    pos = end;
  }
  return std::nullopt;
}

std::optional<StatFacts> readStat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  // One read: the kernel produces the whole line at once, and it is far below 4 KiB
  // (the command name is at most 64 bytes in the kernel's limit for stat).
  char buf[4096];
  ssize_t n;
  do {
    n = ::read(fd.get(), buf, sizeof(buf));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return std::nullopt;
  return parseStat(std::string_view(buf, static_cast<size_t>(n)));
}

}  // namespace

std::optional<uint64_t> parseStartTime(std::string_view statLine) {
  auto facts = parseStat(statLine);
  if (!facts) return std::nullopt;
  return facts->startTime;
}

std::optional<uid_t> processRealUid(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Uid:", 0) != 0) continue;
    size_t begin = line.find_first_not_of(" \t", 4);
    if (begin == std::string::npos) return std::nullopt;
    unsigned long value = 0;
    auto [end, ec] = std::from_chars(line.data() + begin, line.data() + line.size(), value);
    if (ec != std::errc()) return std::nullopt;
    return static_cast<uid_t>(value);
  }
  return std::nullopt;
}

std::optional<uint64_t> processStartTime(pid_t pid) {
  auto facts = readStat(pid);
  if (!facts || facts->state == 'Z' || facts->state == 'X' || facts->state == 'x') return std::nullopt;
  return facts->startTime;
}

FileDescriptor openPidfd(pid_t pid) {
  if (pid <= 0) return FileDescriptor();
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  return FileDescriptor(fd < 0 ? -1 : static_cast<int>(fd));
}

bool pidfdAlive(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  // POLLIN: exited. POLLHUP/POLLERR (and POLLNVAL) also mean it cannot be vouched for.
  return r == 0;
}

// With a pidfd the kernel answers for exactly the process that connected. Without one, the
// start time tells a later process with the same pid apart. With neither (no pid from the
// kernel, e.g. a peer in another pid namespace, or no start time recorded) nothing tells that
// process from a later one: not vouched for.
bool Caller::processAlive() const {
  if (pidfd && pidfd->valid()) return pidfdAlive(pidfd->get());
  if (pid <= 0 || startTime == 0) return false;
  auto now = processStartTime(pid);
  return now && *now == startTime;
}

}  // namespace zerobyte::api
