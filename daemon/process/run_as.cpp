// Run-as identities, access checks in a child that became the user, and per-user cache directories.
#include "daemon/process/run_as.h"

#include "common/errors.h"
#include "daemon/log/log.h"
#include "daemon/process/privilege_drop.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace zerobyte::process {

namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : m_fd(fd) {}
  Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      m_fd = std::exchange(other.m_fd, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const noexcept { return m_fd; }
  void reset() noexcept {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
  }

 private:
  int m_fd;
};

// "permission denied": strerror's text, lower case as the rest of a message.
std::string errnoText(int error) {
  std::string text = std::strerror(error);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string describeTimeout(std::chrono::milliseconds timeout) {
  if (timeout.count() % 1000 == 0) {
    long long seconds = timeout.count() / 1000;
    return std::to_string(seconds) + (seconds == 1 ? " second" : " seconds");
  }
  return std::to_string(timeout.count()) + " ms";
}

// What a check child writes to its pipe: fixed size, one write.
struct ChildReport {
  enum Outcome : int { Allowed = 0, Denied = 1, DropFailed = 2 };
  int outcome = Denied;
  int error = 0;
  int index = 0;  // the candidate path the answer is about; the DropStep when the drop failed
};

// Children killed after a timeout but not yet gone (a process in uninterruptible sleep on a dead NFS server
// dies only when the server answers or the mount is forced away). Reaped on later calls, never waited for.
std::mutex g_abandonedMutex;
std::vector<pid_t> g_abandoned;

void reapAbandoned() {
  std::lock_guard lock(g_abandonedMutex);
  std::erase_if(g_abandoned, [](pid_t pid) { return waitpid(pid, nullptr, WNOHANG) != 0; });
}

// Reaps `pid` if it ends within `grace`; otherwise leaves it for reapAbandoned().
void reapBounded(pid_t pid, std::chrono::milliseconds grace) {
  const auto deadline = Clock::now() + grace;
  // A pidfd becomes readable when the child ends: no polling interval to wait out.
  Fd pidFd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  for (;;) {
    pid_t r = waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    if (pidFd.get() >= 0) {
      pollfd p{pidFd.get(), POLLIN, 0};
      poll(&p, 1, static_cast<int>(left));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long long>(left, 5)));
    }
  }
  log::warning("access check child " + std::to_string(pid) + " did not end after SIGKILL (stuck in the kernel, a hung filesystem?); it is reaped when it ends");
  std::lock_guard lock(g_abandonedMutex);
  g_abandoned.push_back(pid);
}

// The identity for dropPrivileges(), pointing into `groups` (which must outlive the fork).
ChildIdentity childIdentity(const users::Identity& user, const std::vector<gid_t>& groups) {
  ChildIdentity id;
  id.setGroups = true;
  id.groups = groups.data();
  id.groupCount = groups.size();
  id.setGid = true;
  id.gid = user.gid;
  id.setUid = true;
  id.uid = user.uid;
  return id;
}

std::vector<gid_t> groupsOf(const users::Identity& user) {
  return user.groups.empty() ? std::vector<gid_t>{user.gid} : user.groups;
}

// Runs `body` (async-signal-safe; returns a ChildReport) in a forked child that became `user`, and waits at most
// `timeout` for its report. nullopt: timed out (the child is killed).
template <typename Body>
std::optional<ChildReport> runAsUserInChild(const users::Identity& user, std::chrono::milliseconds timeout, const char* purpose,
                                            Body&& body) {
  reapAbandoned();
  const std::vector<gid_t> groups = groupsOf(user);
  const ChildIdentity identity = childIdentity(user, groups);
  int pipeFds[2];
  if (pipe2(pipeFds, O_CLOEXEC) < 0) throw Error(ErrorCode::Failed, std::string("pipe: ") + std::strerror(errno));
  Fd readEnd(pipeFds[0]), writeEnd(pipeFds[1]);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Async-signal-safe from here: the daemon may have other threads.
    const int out = writeEnd.get();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(127);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) _exit(127);
    // Not a single daemon descriptor (sockets, lock files) may outlive the daemon in a child stuck on a hung mount.
    closeDescriptorsExcept(out, -1);
    ChildReport report;
    if (DropStep step = dropPrivileges(identity); step != DropStep::None) {
      report.outcome = ChildReport::DropFailed;
      report.error = errno;
      report.index = static_cast<int>(step);
    } else {
      report = body();
    }
    [[maybe_unused]] ssize_t n = ::write(out, &report, sizeof(report));
    _exit(0);
  }
  if (pid < 0) throw Error(ErrorCode::Failed, std::string("fork failed: ") + std::strerror(errno));
  writeEnd.reset();

  ChildReport report;
  size_t got = 0;
  bool timedOut = false;
  const auto deadline = Clock::now() + timeout;
  while (got < sizeof(report)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timedOut = true;
      break;
    }
    pollfd p{readEnd.get(), POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<long long>(left, 60000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r == 0) continue;  // the deadline check above decides
    ssize_t n = ::read(readEnd.get(), reinterpret_cast<char*>(&report) + got, sizeof(report) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  readEnd.reset();
  if (timedOut) {
    ::kill(pid, SIGKILL);
    reapBounded(pid, std::chrono::milliseconds(1000));
    return std::nullopt;
  }
  reapBounded(pid, std::chrono::milliseconds(2000));
  if (got != sizeof(report))
    throw Error(ErrorCode::Failed, std::string("cannot ") + purpose + " as " + user.name + ": the checking child ended without an answer");
  if (report.outcome == ChildReport::DropFailed)
    throw Error(ErrorCode::Failed, std::string("cannot ") + purpose + " as " + user.name + " (uid " + std::to_string(user.uid) +
                                       "): taking their identity failed at step " + std::to_string(report.index) + ": " +
                                       std::strerror(report.error) + "; zerobyted must run as root");
  return report;
}

// "/a//b/./c/" -> {"a", "b", "c"}; ".." is refused: the kernel resolves it after symbolic links, a lexical walk up
// would not, and the nearest-ancestor walk must agree with the kernel.
std::vector<std::string> components(const std::string& path) {
  if (path.empty() || path[0] != '/')
    throw Error(ErrorCode::InvalidArgument, "\"" + path.substr(0, 200) + "\" is not an absolute path");
  if (path.find('\0') != std::string::npos)
    throw Error(ErrorCode::InvalidArgument, "a path must not contain a NUL character");
  std::vector<std::string> parts;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "..")
      throw Error(ErrorCode::InvalidArgument, "\"" + path.substr(0, 200) + "\" contains \"..\"; give the path without it");
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    start = end + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts, size_t count) {
  if (count == 0) return "/";
  std::string out;
  for (size_t i = 0; i < count; ++i) out += "/" + parts[i];
  return out;
}

bool isEmptyDirectory(int dirFd) {
  int copy = ::openat(dirFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) return false;
  DIR* dir = fdopendir(copy);
  if (!dir) {
    ::close(copy);
    return false;
  }
  bool empty = true;
  while (dirent* entry = readdir(dir)) {
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  closedir(dir);
  return empty;
}

[[noreturn]] void refuse(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::Failed, "the restic cache directory " + path + " " + what);
}

// `name` below `parentFd` as a directory of root's, mode `mode`, writable by root only; a symbolic link or
// anything else there is refused.
Fd rootDirectoryAt(int parentFd, const std::string& parentPath, const char* name, mode_t mode) {
  const std::string path = parentPath + "/" + name;
  if (mkdirat(parentFd, name, mode) < 0 && errno != EEXIST) refuse(path, "cannot be created: " + errnoText(errno));
  Fd fd(::openat(parentFd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    int e = errno;
    if (e == ELOOP || e == ENOTDIR) refuse(path, "is not a directory (a symbolic link?); it is never followed: remove it");
    refuse(path, "cannot be opened: " + errnoText(e));
  }
  struct stat st {};
  if (fstat(fd.get(), &st) < 0) refuse(path, "cannot be examined: " + errnoText(errno));
  if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
    refuse(path, "belongs to uid " + std::to_string(st.st_uid) + " or is writable by others; it must be root's alone: remove it");
  if ((st.st_mode & 07777) != mode && fchmod(fd.get(), mode) < 0) {
    char octal[8];
    std::snprintf(octal, sizeof(octal), "%04o", static_cast<unsigned>(mode));
    refuse(path, std::string("cannot be given mode ") + octal + ": " + errnoText(errno));
  }
  return fd;
}

// What a child's report says about `paths` (the one it names by index), for a request about `path`; no report:
// the child was stopped after `timeout` (`what`: "check", "creation").
AccessResult accessResult(const std::optional<ChildReport>& report, const std::vector<std::string>& paths,
                          const std::string& path, std::chrono::milliseconds timeout, const char* what) {
  AccessResult result;
  if (!report) {
    result.timedOut = true;
    result.checkedPath = path;
    result.reason = "no answer within " + describeTimeout(timeout) + " (a hung network filesystem?); the " + what + " was stopped";
    return result;
  }
  result.checkedPath = paths[std::min(static_cast<size_t>(std::max(report->index, 0)), paths.size() - 1)];
  result.allowed = report->outcome == ChildReport::Allowed;
  if (!result.allowed) {
    result.error = report->error;
    result.reason = errnoText(report->error);
    if (result.checkedPath != path) result.reason += " (at " + result.checkedPath + ")";
  }
  return result;
}

}  // namespace

void runAs(ProcessSpec& spec, const users::Identity& user) {
  if (user.uid == 0) return;
  spec.uid = user.uid;
  spec.gid = user.gid;
  spec.groups = groupsOf(user);
}

AccessResult checkAccessAs(const users::Identity& user, const std::string& path, AccessKind kind, std::chrono::milliseconds timeout) {
  const std::vector<std::string> parts = components(path);
  // The directory first, then (to write) each ancestor up to "/": which one is the nearest existing is for the
  // user's lookup to find, not root's.
  std::vector<std::string> candidates;
  const size_t count = kind == AccessKind::WriteDirectory ? parts.size() + 1 : 1;
  for (size_t i = 0; i < count; ++i) candidates.push_back(join(parts, parts.size() - i));
  std::vector<const char*> paths;
  for (const auto& c : candidates) paths.push_back(c.c_str());
  const char* const* list = paths.data();
  const int listSize = static_cast<int>(paths.size());

  auto readBody = [list]() noexcept {
    ChildReport r;
    int fd = ::open(list[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || access(list[0], R_OK | X_OK) < 0) {
      r.error = errno;
      return r;
    }
    alignas(8) char entries[4096];
    if (syscall(SYS_getdents64, fd, entries, sizeof(entries)) < 0) {
      r.error = errno;
      return r;
    }
    r.outcome = ChildReport::Allowed;
    return r;
  };
  auto writeBody = [list, listSize]() noexcept {
    ChildReport r;
    for (int i = 0; i < listSize; ++i) {
      r.index = i;
      struct stat st {};
      if (stat(list[i], &st) == 0) {
        if (!S_ISDIR(st.st_mode))
          r.error = ENOTDIR;
        else if (access(list[i], W_OK | X_OK) < 0)
          r.error = errno;
        else
          r.outcome = ChildReport::Allowed;
        return r;
      }
      if (errno != ENOENT) {
        r.error = errno;
        return r;
      }
    }
    r.error = ENOENT;
    return r;
  };
  const char* purpose = kind == AccessKind::ReadDirectory ? "check read access" : "check write access";
  std::optional<ChildReport> report = kind == AccessKind::ReadDirectory ? runAsUserInChild(user, timeout, purpose, readBody)
                                                                         : runAsUserInChild(user, timeout, purpose, writeBody);
  return accessResult(report, candidates, candidates[0], timeout, "check");
}

AccessResult makeDirectoryAs(const users::Identity& user, const std::string& path, std::chrono::milliseconds timeout) {
  const std::vector<std::string> parts = components(path);
  // From the top down: "/a", "/a/b", ..., the path itself last.
  std::vector<std::string> steps;
  for (size_t i = 1; i <= parts.size(); ++i) steps.push_back(join(parts, i));
  if (steps.empty()) steps.push_back("/");
  std::vector<const char*> paths;
  for (const auto& step : steps) paths.push_back(step.c_str());
  const char* const* list = paths.data();
  const int listSize = static_cast<int>(paths.size());
  auto body = [list, listSize]() noexcept {
    ChildReport r;
    for (int i = 0; i < listSize; ++i) {
      r.index = i;
      if (mkdir(list[i], 0700) < 0 && errno != EEXIST) {
        r.error = errno;
        return r;
      }
    }
    struct stat st {};
    if (stat(list[listSize - 1], &st) < 0) {
      r.error = errno;
      return r;
    }
    if (!S_ISDIR(st.st_mode)) {
      r.error = ENOTDIR;
      return r;
    }
    r.outcome = ChildReport::Allowed;
    return r;
  };
  return accessResult(runAsUserInChild(user, timeout, "create a directory", body), steps, path, timeout, "creation");
}

std::string ensureUserCacheDirectory(const std::string& cacheBase, const users::Identity& user) {
  if (user.uid == 0) return cacheBase;
  std::string base = cacheBase;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  if (base.empty() || base[0] != '/') throw Error(ErrorCode::Internal, "the cache directory must be an absolute path, not \"" + cacheBase + "\"");

  Fd baseFd(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (baseFd.get() < 0 && errno == ENOENT && mkdir(base.c_str(), 0700) == 0)
    baseFd = Fd(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (baseFd.get() < 0) refuse(base, "cannot be opened: " + errnoText(errno));
  struct stat st {};
  if (fstat(baseFd.get(), &st) < 0) refuse(base, "cannot be examined: " + errnoText(errno));
  if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
    refuse(base, "belongs to uid " + std::to_string(st.st_uid) +
                     " or is writable by others; per-user caches below it would not be safe (chown root: and chmod 0711 it)");
  // Users must pass through it to reach their own directory; search permission lists nothing.
  if ((st.st_mode & (S_IXGRP | S_IXOTH)) != (S_IXGRP | S_IXOTH) && fchmod(baseFd.get(), (st.st_mode & 07777) | S_IXGRP | S_IXOTH) < 0)
    refuse(base, "cannot be given search permission for users: " + errnoText(errno));

  const std::string usersPath = base + "/users";
  Fd usersFd = rootDirectoryAt(baseFd.get(), base, "users", 0711);

  const std::string name = std::to_string(user.uid);
  const std::string path = usersPath + "/" + name;
  const bool created = mkdirat(usersFd.get(), name.c_str(), 0700) == 0;
  if (!created && errno != EEXIST) refuse(path, "cannot be created: " + errnoText(errno));
  Fd fd(::openat(usersFd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    int e = errno;
    if (e == ELOOP || e == ENOTDIR) refuse(path, "is not a directory (a symbolic link?); it is never followed: remove it and try again");
    refuse(path, "cannot be opened: " + errnoText(e));
  }
  if (fstat(fd.get(), &st) < 0) refuse(path, "cannot be examined: " + errnoText(errno));
  if (st.st_uid != user.uid) {
    // Only root creates entries in users/ (0711, root's): a root-owned empty directory is one of ours whose chown
    // was interrupted. Anything else may hold someone's data and is left for an administrator to look at.
    if (st.st_uid != geteuid() || !(created || isEmptyDirectory(fd.get())))
      refuse(path, "belongs to " + users::describeUser(st.st_uid) + ", not to " + user.name + "; remove it and zerobyted creates it again");
    if (fchown(fd.get(), user.uid, user.gid) < 0) refuse(path, "cannot be given to " + user.name + ": " + errnoText(errno));
  }
  if ((st.st_mode & 07777) != 0700 && fchmod(fd.get(), 0700) < 0) refuse(path, "cannot be given mode 0700: " + errnoText(errno));
  return path;
}

}  // namespace zerobyte::process
