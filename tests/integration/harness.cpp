// Test harness: a real zerobyted per test on a private directory, zerobytectl runs, test trees and their comparison.
#include "tests/integration/harness.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace zbtest {
namespace {

constexpr int kStartTimeoutMs = 20000;
constexpr int kStopTimeoutMs = 30000;
constexpr int kCtlTimeoutMs = 120000;
constexpr int kRunTimeoutMs = 300000;
constexpr int kOrphanTimeoutMs = 10000;
constexpr size_t kLogTailOnFailure = 64 * 1024;

using Clock = std::chrono::steady_clock;

// Every pid this harness forked itself and has not reaped yet: anything else that is our
// child was adopted (the test process is a child subreaper).
std::set<pid_t>& ownChildren() {
  static std::set<pid_t> pids;
  return pids;
}

void becomeSubreaper() {
  static const bool done = [] {
    // restic children of a killed daemon are reparented here, so kill9() can reap them: restic's
    // stale-lock check takes a zombie's pid for a live process.
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) throw std::runtime_error(std::string("PR_SET_CHILD_SUBREAPER: ") + std::strerror(errno));
    // A child that dies before reading its stdin must not kill the test with SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

std::string readFile(const std::string& path) { return readAll(path); }

void writeFile(const std::string& path, const std::string& content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) throw std::runtime_error(errnoText("open " + path));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw std::runtime_error(errnoText("write " + path));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::chmod(path.c_str(), mode) < 0) throw std::runtime_error(errnoText("chmod " + path));
}

// "pid (comm) S ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
bool readStat(pid_t pid, char& state, pid_t& ppid) {
  std::string text = readFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = text.rfind(')');
  if (close == std::string::npos || close + 4 > text.size()) return false;
  std::istringstream rest(text.substr(close + 2));
  long parent = 0;
  rest >> state >> parent;
  ppid = static_cast<pid_t>(parent);
  return static_cast<bool>(rest);
}

std::vector<std::pair<pid_t, char>> childrenOf(pid_t parent) {
  std::vector<std::pair<pid_t, char>> out;
  DIR* dir = ::opendir("/proc");
  if (!dir) return out;
  while (dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    char state = '?';
    pid_t ppid = 0;
    if (readStat(static_cast<pid_t>(pid), state, ppid) && ppid == parent) out.emplace_back(static_cast<pid_t>(pid), state);
  }
  ::closedir(dir);
  return out;
}

int statusToExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for one of our own children by pid, at most timeoutMs; the exit code, or nothing on timeout.
std::optional<int> waitFor(pid_t pid, int timeoutMs) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      ownChildren().erase(pid);
      return statusToExitCode(status);
    }
    if (r < 0 && errno != EINTR) {
      ownChildren().erase(pid);
      return -1;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// In a forked child: closes every descriptor above stderr.
void closeInheritedDescriptors() { ::syscall(SYS_close_range, 3U, ~0U, 0U); }

void resetSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
}

[[noreturn]] void childFail(const char* what) {
  // Only async-signal-safe calls after fork.
  const char* reason = std::strerror(errno);
  ssize_t ignored = ::write(STDERR_FILENO, what, std::strlen(what));
  ignored = ::write(STDERR_FILENO, ": ", 2);
  ignored = ::write(STDERR_FILENO, reason, std::strlen(reason));
  ignored = ::write(STDERR_FILENO, "\n", 1);
  (void)ignored;
  ::_exit(127);
}

// Root keeps CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH after execve only through the bounding,
// inheritable or ambient sets: remove them from all three.
void dropDacCapabilitiesInChild() {
  if (prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) < 0) childFail("PR_CAPBSET_DROP CAP_DAC_OVERRIDE");
  if (prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) < 0) childFail("PR_CAPBSET_DROP CAP_DAC_READ_SEARCH");
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) == 0) {
    data[0].inheritable &= ~((1U << CAP_DAC_OVERRIDE) | (1U << CAP_DAC_READ_SEARCH));
    ::syscall(SYS_capset, &header, data);
  }
}

struct Credentials {
  bool set = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

Credentials credentialsFor(const std::string& user) {
  Credentials c;
  if (user.empty()) return c;
  c.set = true;
  // "uid" or "uid:gid": no supplementary groups.
  if (std::all_of(user.begin(), user.end(), [](char ch) { return (ch >= '0' && ch <= '9') || ch == ':'; })) {
    auto colon = user.find(':');
    c.uid = static_cast<uid_t>(std::stoul(user.substr(0, colon)));
    c.gid = colon == std::string::npos ? static_cast<gid_t>(c.uid) : static_cast<gid_t>(std::stoul(user.substr(colon + 1)));
    return c;
  }
  passwd* pw = ::getpwnam(user.c_str());
  if (!pw) throw std::runtime_error("no user named " + user);
  c.uid = pw->pw_uid;
  c.gid = pw->pw_gid;
  int count = 64;
  c.groups.resize(static_cast<size_t>(count));
  if (::getgrouplist(user.c_str(), c.gid, c.groups.data(), &count) < 0) {
    c.groups.resize(static_cast<size_t>(count));
    ::getgrouplist(user.c_str(), c.gid, c.groups.data(), &count);
  }
  c.groups.resize(static_cast<size_t>(count));
  return c;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// fork/exec with stdin from `input` and captured stdout/stderr, killed after timeoutMs.
// `env` empty: the test's own environment.
CommandResult execute(std::vector<std::string> argv, std::vector<std::string> env, const std::string& input, int timeoutMs,
                      const Credentials& credentials = {}) {
  becomeSubreaper();
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) < 0 || ::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0)
    throw std::runtime_error(errnoText("pipe2"));
  auto argvp = pointers(argv);
  auto envp = pointers(env);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(errnoText("fork"));
  if (pid == 0) {
    resetSignals();
    if (::dup2(in[0], STDIN_FILENO) < 0 || ::dup2(out[1], STDOUT_FILENO) < 0 || ::dup2(err[1], STDERR_FILENO) < 0) childFail("dup2");
    closeInheritedDescriptors();
    if (credentials.set) {
      if (::setgroups(credentials.groups.size(), credentials.groups.data()) < 0) childFail("setgroups");
      if (::setresgid(credentials.gid, credentials.gid, credentials.gid) < 0) childFail("setresgid");
      if (::setresuid(credentials.uid, credentials.uid, credentials.uid) < 0) childFail("setresuid");
    }
    ::execve(argvp[0], argvp.data(), env.empty() ? environ : envp.data());
    childFail(argvp[0]);
  }
  ownChildren().insert(pid);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);

  CommandResult result;
  size_t written = 0;
  int stdinFd = in[1];
  if (input.empty()) {
    ::close(stdinFd);
    stdinFd = -1;
  }
  int fds[2] = {out[0], err[0]};
  std::string* sinks[2] = {&result.out, &result.err};
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  bool timedOut = false;
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd p[3];
    nfds_t n = 0;
    for (int fd : fds) p[n++] = {fd, POLLIN, 0};
    p[n++] = {stdinFd, POLLOUT, 0};
    int left = remainingMs(deadline);
    if (left == 0) {
      timedOut = true;
      break;
    }
    int r = ::poll(p, n, left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw std::runtime_error(errnoText("poll"));
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[65536];
      ssize_t got = ::read(fds[i], buffer, sizeof buffer);
      if (got > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i]);
        fds[i] = -1;
      }
    }
    if (stdinFd >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(stdinFd, input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        ::close(stdinFd);
        stdinFd = -1;
      }
    }
  }
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  if (stdinFd >= 0) ::close(stdinFd);
  if (timedOut) ::kill(pid, SIGKILL);
  auto code = waitFor(pid, timedOut ? 10000 : std::max(remainingMs(deadline), 1000));
  if (!code) {
    ::kill(pid, SIGKILL);
    code = waitFor(pid, 10000);
    timedOut = true;
  }
  result.exitCode = code.value_or(-1);
  if (timedOut) result.err += "\n[harness: " + argv[0] + " killed after " + std::to_string(timeoutMs / 1000) + " s]\n";
  return result;
}

std::string joinArgs(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

int removeEntry(const char* path, const struct stat*, int, FTW*) {
  ::remove(path);
  return 0;
}

// ---- trees ----

// Deterministic bytes: the same tree for the same arguments, never compressible to nothing.
std::string pseudoRandomBytes(uint64_t seed, size_t size) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x & 0xff);
  }
  return out;
}

void makeDirectories(const std::string& path) {
  std::string current;
  std::stringstream parts(path);
  std::string part;
  if (!path.empty() && path[0] == '/') current = "";
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    current += "/" + part;
    if (::mkdir(current.c_str(), 0755) < 0 && errno != EEXIST) throw std::runtime_error(errnoText("mkdir " + current));
  }
}

void setTimes(const std::string& path, time_t seconds) {
  timespec times[2] = {{seconds, 0}, {seconds, 0}};
  if (::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) throw std::runtime_error(errnoText("utimensat " + path));
}

std::string typeName(mode_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISLNK(mode)) return "symlink";
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode)) return "character device";
  if (S_ISBLK(mode)) return "block device";
  return "unknown";
}

std::vector<std::string> sortedEntries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string octal(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string compareEntry(const std::string& expected, const std::string& actual, const std::string& relative) {
  const std::string shown = relative.empty() ? "the tree root" : "\"" + relative + "\"";
  struct stat e {}, a {};
  if (::lstat(expected.c_str(), &e) < 0) return "cannot lstat " + expected + ": " + std::strerror(errno);
  if (::lstat(actual.c_str(), &a) < 0) return shown + " is missing (" + actual + ": " + std::strerror(errno) + ")";
  if ((e.st_mode & S_IFMT) != (a.st_mode & S_IFMT))
    return shown + " is a " + typeName(a.st_mode) + ", expected a " + typeName(e.st_mode);
  if (!S_ISLNK(e.st_mode) && (e.st_mode & 07777) != (a.st_mode & 07777))
    return shown + " has mode " + octal(a.st_mode) + ", expected " + octal(e.st_mode);
  if (e.st_uid != a.st_uid || e.st_gid != a.st_gid)
    return shown + " is owned by " + std::to_string(a.st_uid) + ":" + std::to_string(a.st_gid) + ", expected " +
           std::to_string(e.st_uid) + ":" + std::to_string(e.st_gid);
  if (S_ISREG(e.st_mode)) {
    if (e.st_size != a.st_size)
      return shown + " has " + std::to_string(a.st_size) + " bytes, expected " + std::to_string(e.st_size);
    if (readFile(expected) != readFile(actual)) return shown + " has different content";
  }
  if (S_ISLNK(e.st_mode)) {
    char te[PATH_MAX], ta[PATH_MAX];
    ssize_t ne = ::readlink(expected.c_str(), te, sizeof te), na = ::readlink(actual.c_str(), ta, sizeof ta);
    std::string targetE(te, ne > 0 ? static_cast<size_t>(ne) : 0), targetA(ta, na > 0 ? static_cast<size_t>(na) : 0);
    if (targetE != targetA) return shown + " points to \"" + targetA + "\", expected \"" + targetE + "\"";
  }
  if (S_ISDIR(e.st_mode)) {
    auto namesE = sortedEntries(expected), namesA = sortedEntries(actual);
    for (const auto& n : namesE)
      if (!std::binary_search(namesA.begin(), namesA.end(), n))
        return "\"" + (relative.empty() ? n : relative + "/" + n) + "\" is missing";
    for (const auto& n : namesA)
      if (!std::binary_search(namesE.begin(), namesE.end(), n))
        return "\"" + (relative.empty() ? n : relative + "/" + n) + "\" is there but not expected";
    for (const auto& n : namesE) {
      std::string diff = compareEntry(expected + "/" + n, actual + "/" + n, relative.empty() ? n : relative + "/" + n);
      if (!diff.empty()) return diff;
    }
  }
  // Last, so that a directory's contents are reported before its time.
  if (e.st_mtim.tv_sec != a.st_mtim.tv_sec)
    return shown + " has mtime " + std::to_string(a.st_mtim.tv_sec) + ", expected " + std::to_string(e.st_mtim.tv_sec);
  return "";
}

}  // namespace

// ---- Daemon ----

Daemon::Daemon(Options options) : m_options(std::move(options)) {
  becomeSubreaper();
  char pattern[] = "/tmp/zbtest-XXXXXX";
  if (!::mkdtemp(pattern)) throw std::runtime_error(errnoText("mkdtemp"));
  m_dir = pattern;
  ::chmod(m_dir.c_str(), 0755);
  writeConfig(m_options);
}

Daemon::~Daemon() {
  try {
    if (::testing::Test::HasFailure()) {
      std::string text = log();
      if (text.size() > kLogTailOnFailure) text = "[...]\n" + text.substr(text.size() - kLogTailOnFailure);
      std::cerr << "---- " << m_dir << "/daemon.log ----\n" << text << "---- end of daemon.log ----" << std::endl;
    }
    if (running()) {
      ::kill(m_pid, SIGTERM);
      if (!reapDaemon(kStopTimeoutMs)) {
        ::kill(m_pid, SIGKILL);
        reapDaemon(kStopTimeoutMs);
      }
    }
    reapOrphans();
  } catch (...) {
  }
  if (m_notifyReader.joinable()) {
    char byte = 1;
    ssize_t ignored = ::write(m_wakePipe[1], &byte, 1);
    (void)ignored;
    m_notifyReader.join();
  }
  for (int fd : {m_notifyFd, m_wakePipe[0], m_wakePipe[1]})
    if (fd >= 0) ::close(fd);
  const char* keep = std::getenv("ZBTEST_KEEP");
  if (keep && *keep && std::string(keep) != "0") {
    std::cerr << "ZBTEST_KEEP: keeping " << m_dir << std::endl;
    return;
  }
  ::nftw(m_dir.c_str(), removeEntry, 64, FTW_DEPTH | FTW_PHYS);
}

void Daemon::writeConfig(const Options& options) {
  m_options = options;
  std::string yaml = "daemon:\n"
                     "  state_directory: " + stateDir() + "\n"
                     "  runtime_directory: " + m_dir + "/run\n"
                     "  cache_directory: " + m_dir + "/cache\n"
                     "  log_level: debug\n" +
                     // Decided by the role groups unless a test says otherwise: a developer's machine may have
                     // a system bus with polkit, which knows nothing of the test's users.
                     (options.extraDaemonSettings.find("authorization:") == std::string::npos ? "  authorization: groups\n" : "") +
                     options.extraDaemonSettings + options.extraConfig;
  if (!yaml.empty() && yaml.back() != '\n') yaml += "\n";
  writeFile(configPath(), yaml, 0644);
}

void Daemon::start() {
  if (running()) throw std::runtime_error("zerobyted is running already (pid " + std::to_string(m_pid) + ")");
  reapDaemon(1000);  // one that exited by itself is still a zombie
  reapOrphans();
  if (m_notifyFd < 0) {
    m_notifyFd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (m_notifyFd < 0) throw std::runtime_error(errnoText("socket"));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::string path = m_dir + "/notify";
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    if (::bind(m_notifyFd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
      throw std::runtime_error(errnoText("bind " + path));
    if (::pipe2(m_wakePipe, O_CLOEXEC) < 0) throw std::runtime_error(errnoText("pipe2"));
    m_notifyReader = std::thread([this] { readNotifications(); });
  }
  {
    std::lock_guard lock(m_mutex);
    drainNotificationsLocked();
    m_waitCursor = m_received.size();
  }

  std::string logPath = m_dir + "/daemon.log";
  int logFd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) throw std::runtime_error(errnoText("open " + logPath));
  int nullFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<std::string> argv = {ZB_ZEROBYTED, "--config", configPath()};
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET=" + m_dir + "/notify", "LANG=C.UTF-8"};
  if (!m_options.credentialsDirectory.empty()) env.push_back("CREDENTIALS_DIRECTORY=" + m_options.credentialsDirectory);
  env.insert(env.end(), m_options.extraEnvironment.begin(), m_options.extraEnvironment.end());
  auto argvp = pointers(argv);
  auto envp = pointers(env);
  bool dropDac = m_options.dropDacCapabilities;
  int namespaceFd = -1;
  if (!m_options.mountNamespace.empty()) {
    namespaceFd = ::open(m_options.mountNamespace.c_str(), O_RDONLY | O_CLOEXEC);
    if (namespaceFd < 0) throw std::runtime_error(errnoText("open " + m_options.mountNamespace));
  }
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(errnoText("fork"));
  if (pid == 0) {
    resetSignals();
    if (::dup2(nullFd, STDIN_FILENO) < 0 || ::dup2(logFd, STDOUT_FILENO) < 0 || ::dup2(logFd, STDERR_FILENO) < 0) childFail("dup2");
    if (namespaceFd >= 0 && ::setns(namespaceFd, CLONE_NEWNS) < 0) childFail("setns (mount namespace)");
    closeInheritedDescriptors();
    if (dropDac) dropDacCapabilitiesInChild();
    ::execve(argvp[0], argvp.data(), envp.data());
    childFail(argvp[0]);
  }
  ::close(logFd);
  ::close(nullFd);
  if (namespaceFd >= 0) ::close(namespaceFd);
  ownChildren().insert(pid);
  m_pid = pid;

  auto deadline = Clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
  for (;;) {
    if (waitForNotification("READY=1", 100)) return;
    if (!reapDaemon(0) && Clock::now() < deadline) continue;
    std::string why = running() ? "did not send READY=1 within " + std::to_string(kStartTimeoutMs / 1000) + " s"
                                : "exited with status " + std::to_string(m_lastExitStatus) + " before READY=1";
    if (running()) {
      ::kill(m_pid, SIGKILL);
      reapDaemon(kStopTimeoutMs);
    }
    throw std::runtime_error("zerobyted " + why + "; its log:\n" + log());
  }
}

bool Daemon::reapDaemon(int timeoutMs) {
  if (m_pid <= 0) return true;
  auto code = waitFor(m_pid, timeoutMs);
  if (!code) return false;
  m_lastExitStatus = *code;
  m_pid = -1;
  return true;
}

int Daemon::stop() {
  if (!running()) return m_lastExitStatus;
  ::kill(m_pid, SIGTERM);
  if (!reapDaemon(kStopTimeoutMs)) {
    ::kill(m_pid, SIGKILL);
    reapDaemon(kStopTimeoutMs);
    return 128 + SIGKILL;  // did not stop in time: a failure whatever SIGKILL gives
  }
  return m_lastExitStatus;
}

void Daemon::kill9() {
  if (running()) {
    ::kill(m_pid, SIGKILL);
    reapDaemon(kStopTimeoutMs);
  }
  reapOrphans();
}

void Daemon::reapOrphans() {
  // The daemon's children die with it (PR_SET_PDEATHSIG) and come here as zombies.
  auto deadline = Clock::now() + std::chrono::milliseconds(kOrphanTimeoutMs);
  bool killed = false;
  for (;;) {
    auto orphans = adoptedProcesses();
    if (orphans.empty()) return;
    for (pid_t pid : orphans) ::waitpid(pid, nullptr, WNOHANG);
    if (adoptedProcesses().empty()) return;
    if (Clock::now() >= deadline) {
      if (killed) return;
      for (pid_t pid : adoptedProcesses()) ::kill(pid, SIGKILL);
      killed = true;
      deadline = Clock::now() + std::chrono::milliseconds(kOrphanTimeoutMs);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Daemon::signal(int sig) {
  if (running()) ::kill(m_pid, sig);
}

bool Daemon::running() const {
  if (m_pid <= 0) return false;
  // Observe an exit without reaping: the pid stays ours until waitpid.
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(m_pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == m_pid) return false;
  return true;
}

pid_t Daemon::pid() const { return m_pid; }
const std::string& Daemon::dir() const { return m_dir; }
std::string Daemon::socketPath() const { return m_dir + "/run/zerobyted.sock"; }
std::string Daemon::configPath() const { return m_dir + "/zerobyte.yaml"; }
std::string Daemon::stateDir() const { return m_dir + "/state"; }
std::string Daemon::log() const { return readFile(m_dir + "/daemon.log"); }

void Daemon::readNotifications() {
  for (;;) {
    pollfd p[2] = {{m_notifyFd, POLLIN, 0}, {m_wakePipe[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) return;
    if (p[1].revents) return;
    if (p[0].revents) {
      std::lock_guard lock(m_mutex);
      drainNotificationsLocked();
      m_arrived.notify_all();
    }
  }
}

void Daemon::drainNotificationsLocked() {
  if (m_notifyFd < 0) return;
  for (;;) {
    char buffer[4096];
    ssize_t n = ::recv(m_notifyFd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    m_received.emplace_back(buffer, static_cast<size_t>(n));
  }
}

std::vector<std::string> Daemon::notifications() {
  std::lock_guard lock(m_mutex);
  drainNotificationsLocked();
  return m_received;
}

bool Daemon::waitForNotification(const std::string& needle, int timeoutMs) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  std::unique_lock lock(m_mutex);
  for (;;) {
    drainNotificationsLocked();
    for (size_t i = m_waitCursor; i < m_received.size(); ++i)
      if (m_received[i].find(needle) != std::string::npos) {
        m_waitCursor = i + 1;
        return true;
      }
    if (Clock::now() >= deadline) return false;
    m_arrived.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(100)));
  }
}

CommandResult Daemon::ctl(const std::vector<std::string>& args, const std::string& input, const std::string& asUser) {
  std::vector<std::string> argv = {ZB_ZEROBYTECTL, "--socket", socketPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/"};
  return execute(argv, env, input, kCtlTimeoutMs, credentialsFor(asUser));
}

nlohmann::json Daemon::ctlJson(const std::vector<std::string>& args) {
  std::vector<std::string> withJson = args;
  withJson.emplace_back("--json");
  CommandResult r = ctl(withJson);
  if (r.exitCode != 0)
    throw std::runtime_error("zerobytectl " + joinArgs(withJson) + " exited " + std::to_string(r.exitCode) + ": " + r.err + r.out);
  try {
    return nlohmann::json::parse(r.out);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("zerobytectl " + joinArgs(withJson) + " printed no single JSON document (" + e.what() + "): " + r.out);
  }
}

std::vector<nlohmann::json> Daemon::ctlJsonLines(const std::vector<std::string>& args) {
  std::vector<std::string> withJson = args;
  withJson.emplace_back("--json");
  CommandResult r = ctl(withJson);
  if (r.exitCode != 0)
    throw std::runtime_error("zerobytectl " + joinArgs(withJson) + " exited " + std::to_string(r.exitCode) + ": " + r.err + r.out);
  std::vector<nlohmann::json> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("zerobytectl " + joinArgs(withJson) + " printed a line that is not JSON (" + e.what() + "): " + line);
    }
  }
  return out;
}

std::unique_ptr<zerobyte::varlink::Client> Daemon::client() { return std::make_unique<zerobyte::varlink::Client>(socketPath()); }

nlohmann::json Daemon::waitForJob(uint64_t id, int timeoutMs) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  auto c = client();
  nlohmann::json job;
  for (;;) {
    job = c->call("org.zerobyte.Daemon.GetJob", {{"id", id}}).at("job");
    std::string state = job.value("state", "");
    if (state != "queued" && state != "running") return job;
    if (Clock::now() >= deadline) return job;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::optional<uid_t> realUidOf(pid_t pid) {
  const std::string status = readAll("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find("\nUid:\t");
  if (at == std::string::npos) return std::nullopt;
  return static_cast<uid_t>(std::stoul(status.substr(at + 6)));
}

std::vector<pid_t> resticChildren(const Daemon& daemon, const std::set<std::string>& subcommands) {
  std::vector<pid_t> out;
  for (pid_t pid : daemon.childPids()) {
    std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
    std::string argv0, argv1;
    std::getline(cmdline, argv0, '\0');
    std::getline(cmdline, argv1, '\0');
    if (argv0.size() >= 6 && argv0.substr(argv0.size() - 6) == "restic" && subcommands.count(argv1)) out.push_back(pid);
  }
  return out;
}

std::vector<pid_t> Daemon::childPids() const {
  std::vector<pid_t> out;
  if (m_pid <= 0) return out;
  for (const auto& [pid, state] : childrenOf(m_pid))
    if (state != 'Z') out.push_back(pid);
  return out;
}

// ---- free functions ----

std::vector<pid_t> adoptedProcesses() {
  std::vector<pid_t> out;
  for (const auto& [pid, state] : childrenOf(::getpid()))
    if (!ownChildren().count(pid)) out.push_back(pid);
  return out;
}

void ownProcess(pid_t pid) { ownChildren().insert(pid); }

void disownProcess(pid_t pid) { ownChildren().erase(pid); }

std::string inChildAs(const std::string& user, const std::function<std::string()>& body) {
  passwd* pw = getpwnam(user.c_str());
  if (!pw) return "no user " + user;
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  int fds[2];
  if (pipe(fds) < 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    if (initgroups(user.c_str(), gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
      out = "cannot become " + user;
    } else {
      try {
        out = body();
      } catch (const std::exception& e) {
        out = std::string("exception: ") + e.what();
      }
    }
    for (size_t done = 0; done < out.size();) {
      ssize_t n = write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    _exit(0);
  }
  ownProcess(pid);
  close(fds[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  disownProcess(pid);
  return text;
}

OwnedPolkitEnvironment::OwnedPolkitEnvironment(PolkitEnvironmentOptions options) : PolkitEnvironment(std::move(options)) {
  ownProcess(busPid());
  ownProcess(polkitdPid());
}

OwnedPolkitEnvironment::~OwnedPolkitEnvironment() {
  disownProcess(busPid());
  disownProcess(polkitdPid());
}

CommandResult run(const std::vector<std::string>& argv, const std::string& input) { return execute(argv, {}, input, kRunTimeoutMs); }

void makeTree(const std::string& root, size_t files) {
  makeDirectories(root);
  // Directories: nested five deep, and names that need quoting or are not ASCII.
  const std::vector<std::string> dirs = {
      "",          "a",       "a/b",        "a/b/c",      "a/b/c/d",   "a/b/c/d/e", "dir with spaces", "café",
      "日本語",    "日本語/深い/ディレクトリ", "emoji 😀", "emoji 😀/nested dir", "mixed/Ünïcödé €",
  };
  for (const auto& d : dirs)
    if (!d.empty()) makeDirectories(root + "/" + d);
  const mode_t modes[] = {0600, 0644, 0755, 0640};
  const time_t base = 1577836800;  // 2020-01-01: restored times must come from the snapshot, not from now
  for (size_t i = 0; i < files; ++i) {
    const std::string& dir = dirs[i % dirs.size()];
    std::string name;
    switch (i % 5) {
      case 0: name = "file-" + std::to_string(i) + ".txt"; break;
      case 1: name = "name with spaces " + std::to_string(i); break;
      case 2: name = "café-" + std::to_string(i) + ".dat"; break;
      case 3: name = "日本語-" + std::to_string(i) + ".txt"; break;
      default: name = "emoji 😀 " + std::to_string(i); break;
    }
    size_t size;
    if (i % 37 == 0)
      size = 0;
    else if (i % 97 == 1)
      size = 256 * 1024 + (i * 7919) % (768 * 1024);  // up to ~1 MiB
    else
      size = (i * 131) % 4096 + 1;
    std::string path = root + "/" + (dir.empty() ? "" : dir + "/") + name;
    writeFile(path, pseudoRandomBytes(i, size), modes[i % 4]);
    // Some files owned by another user (world-readable, so a daemon without DAC override reads them too).
    if (i % 50 == 7) {
      if (::chmod(path.c_str(), 0644) < 0 || ::lchown(path.c_str(), 4321, 4321) < 0) throw std::runtime_error(errnoText("chown " + path));
    }
    setTimes(path, base + static_cast<time_t>(i));
  }
  // Symlinks: relative, absolute, dangling, to a directory.
  struct Link {
    std::string name, target;
  };
  const std::vector<Link> links = {
      {"link-relative", "a/b/file-5.txt"},
      {"link to dir", "a/b/c"},
      {"a/b/c/link-up", "../../../café"},
      {"link-absolute", "/etc/hostname"},
      {"link-dangling", "does/not/exist"},
      {"日本語/リンク", "../dir with spaces"},
  };
  for (const auto& l : links) {
    std::string path = root + "/" + l.name;
    if (::symlink(l.target.c_str(), path.c_str()) < 0) throw std::runtime_error(errnoText("symlink " + path));
    setTimes(path, base - 1000);
  }
  // Directory times last: creating entries changes them. Deepest first.
  std::vector<std::string> sorted = dirs;
  std::sort(sorted.begin(), sorted.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& d : {std::string("日本語/深い"), std::string("emoji 😀"), std::string("mixed")}) sorted.push_back(d);
  std::sort(sorted.begin(), sorted.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& d : sorted) setTimes(d.empty() ? root : root + "/" + d, base - 2000);
  if (::chmod((root + "/a/b").c_str(), 0750) < 0) throw std::runtime_error(errnoText("chmod"));
}

void makeRandomFiles(const std::string& dir, size_t count, size_t bytesEach, uint64_t seed) {
  makeDirectories(dir);
  std::string data(bytesEach, '\0');
  for (size_t i = 0; i < count; ++i) {
    uint64_t x = (seed * 1000003ULL + i) * 0x9E3779B97F4A7C15ULL | 1;
    for (size_t j = 0; j + 8 <= data.size(); j += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(&data[j], &x, 8);
    }
    writeFile(dir + "/blob" + std::to_string(i), data, 0644);
  }
}

std::string compareTrees(const std::string& expected, const std::string& actual) { return compareEntry(expected, actual, ""); }

std::string ownedDirectory(const Daemon& daemon, const std::string& name, uid_t uid, gid_t gid, mode_t mode) {
  std::string path = daemon.dir() + "/" + name;
  EXPECT_EQ(mkdir(path.c_str(), mode), 0) << path;
  EXPECT_EQ(chown(path.c_str(), uid, gid), 0) << path;
  EXPECT_EQ(chmod(path.c_str(), mode), 0) << path;
  return path;
}

void writeOwnedFile(const std::string& path, const std::string& content, uid_t uid, gid_t gid, mode_t mode) {
  std::ofstream(path) << content;
  EXPECT_EQ(chown(path.c_str(), uid, gid), 0) << path;
  EXPECT_EQ(chmod(path.c_str(), mode), 0) << path;
}

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exitCode) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace zbtest
