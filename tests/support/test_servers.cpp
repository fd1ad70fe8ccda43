// Real sshd, smbd, rclone and s3rver servers on 127.0.0.1 for tests (see test_servers.h).
#include "tests/support/test_servers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace zbtest {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kListenTimeout = 10s;
constexpr auto kTermTimeout = 5s;
constexpr auto kKillTimeout = 5s;
constexpr auto kCommandTimeout = 30s;
constexpr int kPortAttempts = 5;
constexpr const char* kLogName = "server.log";

std::atomic<ServerProcessHook> g_startedHook{nullptr};
std::atomic<ServerProcessHook> g_stoppedHook{nullptr};

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string readWholeFile(const std::filesystem::path& path) { return readAll(path.string()); }

std::string readFrom(const std::filesystem::path& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::uintmax_t fileSize(const std::filesystem::path& path) {
  std::error_code error;
  auto size = std::filesystem::file_size(path, error);
  return error ? 0 : size;
}

void writeWholeFile(const std::filesystem::path& path, const std::string& content, mode_t mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw std::runtime_error("test servers: cannot write " + path.string());
  if (::chmod(path.c_str(), mode) != 0) throw std::runtime_error(errnoText("chmod " + path.string()));
}

void makeDirectory(const std::filesystem::path& path, mode_t mode) {
  std::filesystem::create_directories(path);
  if (::chmod(path.c_str(), mode) != 0) throw std::runtime_error(errnoText("chmod " + path.string()));
}

bool keepDirectories() {
  const char* keep = std::getenv("ZBTEST_KEEP");
  return keep && *keep && std::string(keep) != "0";
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string describeArgv(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& a : argv) text += (text.empty() ? "" : " ") + a;
  return text;
}

// In a forked child before exec: the test process may block signals for its event loop and
// ignore SIGPIPE; the child must not inherit either, nor descriptors that lack O_CLOEXEC.
void prepareChild(int stdinFd, int outFd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT}) ::signal(sig, SIG_DFL);
  if (::dup2(stdinFd, STDIN_FILENO) < 0 || ::dup2(outFd, STDOUT_FILENO) < 0 || ::dup2(outFd, STDERR_FILENO) < 0) ::_exit(127);
  ::close_range(3, ~0U, 0);
}

[[noreturn]] void execOrDie(std::vector<char*>& args) {
  ::execv(args[0], args.data());
  const char* reason = std::strerror(errno);
  for (const char* part : {"test servers: cannot execute ", static_cast<const char*>(args[0]), ": ", reason, "\n"}) {
    ssize_t ignored = ::write(STDERR_FILENO, part, std::strlen(part));
    (void)ignored;
  }
  ::_exit(127);
}

std::vector<char*> pointers(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  return args;
}

// The child's state without reaping it: true once it exited (or is no longer ours to wait for).
bool hasExited(pid_t pid) {
  siginfo_t info{};
  int r;
  while ((r = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT)) < 0 && errno == EINTR) {
  }
  if (r < 0) return true;  // ECHILD: someone else reaped it
  return info.si_pid == pid;
}

// Reaps an exited child; its wait status, or -1 when it was not ours (anymore).
int reap(pid_t pid) {
  int status = 0;
  pid_t r;
  while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  return r == pid ? status : -1;
}

std::string describeStatus(int status) {
  if (status < 0) return "an unknown status";
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

bool waitForExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!hasExited(pid)) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// write() that fails with EPIPE instead of raising SIGPIPE when the reader is gone (the test
// process need not ignore SIGPIPE).
ssize_t writeWithoutSigpipe(int fd, const char* data, size_t size) {
  sigset_t pipeSignal, old;
  sigemptyset(&pipeSignal);
  sigaddset(&pipeSignal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipeSignal, &old);
  ssize_t w = ::write(fd, data, size);
  const int saved = errno;
  if (w < 0 && saved == EPIPE && !sigismember(&old, SIGPIPE)) {
    timespec zero{};
    while (::sigtimedwait(&pipeSignal, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return w;
}

struct Captured {
  int status = -1;  // wait status
  std::string output;  // stdout and stderr
  bool ok() const { return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// Runs a program (absolute path) with `input` on stdin; bounded: killed after `timeout`.
Captured runBounded(const std::vector<std::string>& argv, const std::string& input = "",
                    std::chrono::milliseconds timeout = kCommandTimeout) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error(errnoText("pipe2"));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    throw std::runtime_error(errnoText("pipe2"));
  }
  auto args = pointers(argv);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(errnoText("fork"));
  if (pid == 0) {
    prepareChild(in[0], out[1]);
    execOrDie(args);
  }
  ::close(in[0]);
  ::close(out[1]);
  // A child that exits before reading all its input must not kill the test with SIGPIPE.
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  int inFd = in[1];
  if (input.empty()) {
    ::close(inFd);
    inFd = -1;
  }
  int outFd = out[0];
  Captured result;
  size_t written = 0;
  const auto deadline = Clock::now() + timeout;
  bool timedOut = false;
  while (outFd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timedOut = true;
      break;
    }
    pollfd p[2] = {{outFd, POLLIN, 0}, {inFd, POLLOUT, 0}};
    int r = ::poll(p, 2, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buffer[4096];
      ssize_t n = ::read(outFd, buffer, sizeof buffer);
      if (n > 0) result.output.append(buffer, static_cast<size_t>(n));
      else if (n == 0 || errno != EINTR) {
        ::close(outFd);
        outFd = -1;
      }
    }
    if (inFd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = writeWithoutSigpipe(inFd, input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        ::close(inFd);
        inFd = -1;
      }
    }
  }
  if (outFd >= 0) ::close(outFd);
  if (inFd >= 0) ::close(inFd);
  if (timedOut || !waitForExit(pid, 10s)) {
    ::kill(pid, SIGKILL);
    waitForExit(pid, kKillTimeout);
    timedOut = true;
  }
  result.status = reap(pid);
  if (timedOut) {
    result.status = -1;
    result.output += "\n(killed: no exit within the time limit)";
  }
  return result;
}

void runOrThrow(const std::vector<std::string>& argv, const std::string& input = "") {
  Captured r = runBounded(argv, input);
  if (!r.ok()) throw std::runtime_error("test servers: " + describeArgv(argv) + " failed (" + describeStatus(r.status) + "): " + r.output);
}

// useradd, chpasswd and the like fail while another process holds the lock of /etc/passwd or
// /etc/shadow (tests run in parallel): retried, bounded.
std::mutex g_accountsMutex;

// `done` (may be empty: success is enough) says whether the goal has been reached.
void retryUntil(const std::vector<std::string>& argv, const std::string& input, const std::function<bool()>& done) {
  std::string output;
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (done && done()) return;
    Captured r = runBounded(argv, input);
    if (r.ok() && (!done || done())) return;
    output = r.output;
    std::this_thread::sleep_for(100ms);
  }
  if (done && done()) return;
  throw std::runtime_error("test servers: " + describeArgv(argv) + " kept failing: " + output);
}

bool userExists(const std::string& name) { return ::getpwnam(name.c_str()) != nullptr; }

struct Account {
  uid_t uid;
  gid_t gid;
  std::filesystem::path home;
};

Account account(const std::string& name) {
  struct passwd* p = ::getpwnam(name.c_str());
  if (!p) throw std::runtime_error("test servers: no user " + name);
  return {p->pw_uid, p->pw_gid, p->pw_dir};
}

// The comment (GECOS) of the users the fixtures create: they set the password and authorized keys
// of their user, so they manage only users they made, never a person's or a system account.
constexpr const char* kTestUserComment = "zerobyte test server user";

void refuseForeignAccount(const std::string& name) {
  if (name.empty() || name == "root") throw std::runtime_error("test servers: refusing to manage the account \"" + name + "\"");
  struct passwd* p = ::getpwnam(name.c_str());
  if (p && (p->pw_uid < 1000 || std::string(p->pw_gecos ? p->pw_gecos : "") != kTestUserComment))
    throw std::runtime_error("test servers: the account \"" + name + "\" exists and was not made by a test server (comment \"" +
                             kTestUserComment + "\"): refusing to change its password");
}

void ensureUser(const std::string& name, const std::vector<std::string>& useraddOptions) {
  refuseForeignAccount(name);
  std::vector<std::string> argv = {"/usr/sbin/useradd", "-c", kTestUserComment};
  argv.insert(argv.end(), useraddOptions.begin(), useraddOptions.end());
  argv.push_back(name);
  retryUntil(argv, "", [&] { return userExists(name); });
}

// A free TCP port on 127.0.0.1, as the kernel picks one for port 0.
int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(errnoText("socket"));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    throw std::runtime_error(errnoText("binding a free port"));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// Inodes of the sockets listening on 127.0.0.1:port (/proc/net/tcp: "0100007F:PORT" in state 0A).
std::set<unsigned long> listeningInodes(int port) {
  std::set<unsigned long> inodes;
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  char wanted[32];
  std::snprintf(wanted, sizeof wanted, "0100007F:%04X", port);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
    unsigned long inode = 0;
    if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode)) continue;
    if (local == wanted && state == "0A") inodes.insert(inode);
  }
  return inodes;
}

// Whether `pid` holds one of the sockets listening on 127.0.0.1:port: the server itself listens,
// not something else that took the port.
bool listensOn(pid_t pid, int port) {
  auto inodes = listeningInodes(port);
  if (inodes.empty()) return false;
  const std::string fdDir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(fdDir.c_str());
  if (!dir) return false;
  bool found = false;
  while (dirent* entry = ::readdir(dir)) {
    char target[128];
    ssize_t n = ::readlinkat(::dirfd(dir), entry->d_name, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long inode = 0;
    if (std::sscanf(target, "socket:[%lu]", &inode) == 1 && inodes.count(inode)) {
      found = true;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

// A process by pid and start time (field 22 of /proc/PID/stat), so that a reused pid is not taken
// for it.
struct ProcessId {
  pid_t pid;
  unsigned long long start;
};

// State (field 3) and start time of a process; false when it does not exist.
bool processStat(pid_t pid, char& state, pid_t& parent, unsigned long long& start) {
  const std::string stat = readWholeFile("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  // After "pid (comm)" come fields 3 (state), 4 (ppid), …, 22 (start time).
  for (int number = 3; number <= 22; ++number) {
    if (!(fields >> field)) return false;
    if (number == 3) state = field.empty() ? '?' : field[0];
    if (number == 4) parent = static_cast<pid_t>(std::stol(field));
    if (number == 22) start = std::stoull(field);
  }
  return true;
}

bool isSameProcess(const ProcessId& process) {
  char state = 0;
  pid_t parent = 0;
  unsigned long long start = 0;
  return processStat(process.pid, state, parent, start) && start == process.start;
}

// Every descendant of `root` (zombies too: reparented here, they are this process's to reap), found through the parent field of /proc/*/stat.
std::vector<ProcessId> descendants(pid_t root) {
  struct Entry {
    pid_t pid;
    pid_t parent;
    unsigned long long start;
  };
  std::vector<Entry> all;
  if (DIR* proc = ::opendir("/proc")) {
    while (dirent* entry = ::readdir(proc)) {
      char* end = nullptr;
      const long pid = std::strtol(entry->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      char state = 0;
      pid_t parent = 0;
      unsigned long long start = 0;
      if (processStat(static_cast<pid_t>(pid), state, parent, start))
        all.push_back({static_cast<pid_t>(pid), parent, start});
    }
    ::closedir(proc);
  }
  std::vector<ProcessId> found;
  std::vector<pid_t> parents = {root};
  while (!parents.empty()) {
    const pid_t parent = parents.back();
    parents.pop_back();
    for (const auto& entry : all)
      if (entry.parent == parent) {
        found.push_back({entry.pid, entry.start});
        parents.push_back(entry.pid);
      }
  }
  return found;
}

// Until every member has gone (reaped here if it was reparented to this process; a zombie of
// another parent counts as gone). Removes the gone ones; false when some remain after `timeout`.
bool waitForFamily(std::vector<ProcessId>& family, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    for (auto it = family.begin(); it != family.end();) {
      char state = 0;
      pid_t parent = 0;
      unsigned long long start = 0;
      const bool exists = processStat(it->pid, state, parent, start) && start == it->start;
      if (exists && state == 'Z' && parent == ::getpid()) {
        ::waitpid(it->pid, nullptr, WNOHANG);
        ++it;  // checked again: gone once reaped
      } else if (!exists || state == 'Z') {
        it = family.erase(it);
      } else {
        ++it;
      }
    }
    if (family.empty()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

bool reportsPortTaken(const std::string& log) {
  const std::string text = lower(log);
  return text.find("address already in use") != std::string::npos || text.find("cannot bind any address") != std::string::npos;
}

// The first two fields of an OpenSSH public key file ("ssh-ed25519 AAAA…").
std::string keyTypeAndBlob(const std::filesystem::path& publicKey) {
  std::istringstream fields(readWholeFile(publicKey));
  std::string type, blob;
  if (!(fields >> type >> blob)) throw std::runtime_error("test servers: no public key in " + publicKey.string());
  return type + " " + blob;
}

constexpr const char* kKeyTagPrefix = "zbtest-server:";

void noteChild(int) {}

// The reaper: a child of the test process in a session of its own (setsid) and a child subreaper,
// under which the server runs. Whatever the server leaves behind (sshd's connection processes,
// smbd's helpers) is reparented to it, not to the test process (which is a subreaper itself under
// the integration harness and would collect them as zombies). It exits, with the server's status,
// once it has no children left; when the test process dies (the lifeline pipe closes) it sends
// the server SIGTERM. Async-signal-safe calls only: the test process may have threads.
[[noreturn]] void runReaper(int nullFd, int logFd, int infoFd, int lifelineFd, std::vector<char*>& args) {
  sigset_t none, childOnly;
  sigemptyset(&none);
  sigemptyset(&childOnly);
  sigaddset(&childOnly, SIGCHLD);
  sigprocmask(SIG_SETMASK, &childOnly, nullptr);
  // smbd sends SIGTERM to its whole process group, the reaper's: ignored here, reset in the server.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(sig, SIG_IGN);
  struct sigaction onChild {};
  onChild.sa_handler = noteChild;
  sigemptyset(&onChild.sa_mask);
  ::sigaction(SIGCHLD, &onChild, nullptr);
  ::setsid();
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  ::prctl(PR_SET_NAME, "zbtest-reaper");
  // Only these four descriptors, as 3..6: nothing else of the test process (another server's
  // lifeline above all) stays open here.
  int keep[4] = {nullFd, logFd, infoFd, lifelineFd};
  for (int& fd : keep) fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 16);
  for (int i = 0; i < 4; ++i) ::dup2(keep[i], 3 + i);
  ::close_range(7, ~0U, 0);
  nullFd = 3, logFd = 4, infoFd = 5, lifelineFd = 6;
  const pid_t self = ::getpid();

  const pid_t server = ::fork();
  if (server < 0) ::_exit(127);
  if (server == 0) {
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) ::signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Goes when the reaper goes (SIGKILL from stop()).
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != self) ::_exit(127);
    if (::dup2(nullFd, STDIN_FILENO) < 0 || ::dup2(logFd, STDOUT_FILENO) < 0 || ::dup2(logFd, STDERR_FILENO) < 0) ::_exit(127);
    ::close_range(3, ~0U, 0);
    execOrDie(args);
  }
  ssize_t ignored = ::write(infoFd, &server, sizeof server);
  (void)ignored;
  ::close(infoFd);

  int serverStatus = 0;
  bool lifeline = true;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(-1, &status, WNOHANG);
    if (r == server) serverStatus = status;
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;  // ECHILD: no children left
    pollfd p{lifelineFd, POLLIN, 0};
    const timespec second{1, 0};
    const int n = ::ppoll(lifeline ? &p : nullptr, lifeline ? 1 : 0, &second, &none);
    if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
      lifeline = false;
      ::kill(server, SIGTERM);
    }
  }
  if (WIFEXITED(serverStatus)) ::_exit(WEXITSTATUS(serverStatus));
  ::_exit(WIFSIGNALED(serverStatus) ? 128 + WTERMSIG(serverStatus) : 127);
}

struct Started {
  pid_t reaper;
  ProcessId server;
};

// Forks the reaper, which forks and execs the server with stdout and stderr appended to `logFile`.
Started spawnUnderReaper(const std::vector<std::string>& argv, const std::filesystem::path& logFile) {
  // The reaper's end of the lifeline stays open in the test process only (O_CLOEXEC: not in the
  // programs it runs), so the reaper sees it close when the test process ends.
  static std::mutex lifelineMutex;
  static int lifelineWrite = -1;
  static int lifelineRead = -1;
  {
    std::lock_guard lock(lifelineMutex);
    if (lifelineWrite < 0) {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(errnoText("pipe2"));
      lifelineRead = fds[0];
      lifelineWrite = fds[1];
    }
  }
  int logFd = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) throw std::runtime_error(errnoText("open " + logFile.string()));
  int nullFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int info[2] = {-1, -1};
  if (nullFd < 0 || ::pipe2(info, O_CLOEXEC) != 0) {
    const std::string error = errnoText("open /dev/null or pipe2");
    ::close(logFd);
    if (nullFd >= 0) ::close(nullFd);
    throw std::runtime_error(error);
  }
  auto args = pointers(argv);
  const pid_t reaper = ::fork();
  if (reaper == 0) runReaper(nullFd, logFd, info[1], lifelineRead, args);
  const int forkError = errno;
  ::close(logFd);
  ::close(nullFd);
  ::close(info[1]);
  if (reaper < 0) {
    ::close(info[0]);
    errno = forkError;
    throw std::runtime_error(errnoText("fork"));
  }
  pid_t server = -1;
  ssize_t n;
  while ((n = ::read(info[0], &server, sizeof server)) < 0 && errno == EINTR) {
  }
  ::close(info[0]);
  if (n != sizeof server || server <= 0) {
    ::kill(reaper, SIGKILL);
    reap(reaper);
    throw std::runtime_error("test servers: the reaper process could not start " + argv[0]);
  }
  ProcessId id{server, 0};
  char state = 0;
  pid_t parent = 0;
  processStat(server, state, parent, id.start);  // 0 when it is already gone
  return {reaper, id};
}

}  // namespace

void setServerProcessHooks(ServerProcessHook started, ServerProcessHook stopped) {
  g_startedHook = started;
  g_stoppedHook = stopped;
}

// ---------------------------------------------------------------------------------------------

TestServer::TestServer(const std::string& kind) : m_kind(kind) {
  if (::geteuid() != 0) throw std::runtime_error("test servers: the " + kind + " server needs root");
  std::string pattern = (std::filesystem::path("/tmp") / ("zbtest-" + kind + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error(errnoText("mkdtemp " + pattern));
  m_dir = pattern;
  if (::chmod(m_dir.c_str(), 0755) != 0) {
    const std::string error = errnoText("chmod " + m_dir.string());
    ::rmdir(m_dir.c_str());
    throw std::runtime_error(error);
  }
}

TestServer::~TestServer() {
  try {
    stop();
  } catch (...) {
  }
  std::error_code ignored;
  if (!keepDirectories()) std::filesystem::remove_all(m_dir, ignored);
}

std::filesystem::path TestServer::logPath() const { return m_dir / kLogName; }

std::string TestServer::log() const { return readWholeFile(logPath()); }

std::string TestServer::logTail(size_t bytes) const {
  std::string text = log();
  if (text.size() > bytes) text = "…" + text.substr(text.size() - bytes);
  return text;
}

void TestServer::fail(const std::string& what) const {
  throw std::runtime_error(m_kind + " test server (" + m_dir.string() + "): " + what + "\n--- end of its log:\n" + logTail());
}

void TestServer::startFirst() {
  for (int attempt = 1;; ++attempt) {
    m_port = freePort();
    if (launch() == Outcome::listening) return;
    if (attempt >= kPortAttempts) fail("every port tried was taken (" + std::to_string(attempt) + " attempts)");
  }
}

void TestServer::start() {
  if (running()) return;
  if (launch() == Outcome::portTaken) fail("port " + std::to_string(m_port) + " was taken while the server was stopped");
}

TestServer::Outcome TestServer::launch() {
  configure();
  const std::vector<std::string> argv = command();
  const auto logFile = logPath();
  {
    std::ofstream marker(logFile, std::ios::app);
    marker << "=== zbtest: " << describeArgv(argv) << "\n";
  }
  const auto logStart = fileSize(logFile);
  const auto began = Clock::now();
  Started started = spawnUnderReaper(argv, logFile);
  m_reaperPid = started.reaper;
  m_pid = started.server.pid;
  m_serverStart = started.server.start;
  if (auto hook = g_startedHook.load()) hook(m_reaperPid);

  const auto deadline = began + kListenTimeout;
  for (;;) {
    if (listensOn(m_pid, m_port)) {
      m_startMilliseconds = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count();
      return Outcome::listening;
    }
    // The reaper exits with the server's status once the server and all it left behind are gone.
    if (hasExited(m_reaperPid)) {
      const int status = reap(m_reaperPid);
      if (auto hook = g_stoppedHook.load()) hook(m_reaperPid);
      m_reaperPid = -1;
      m_pid = -1;
      if (reportsPortTaken(readFrom(logFile, logStart))) return Outcome::portTaken;
      fail("exited at start with " + describeStatus(status));
    }
    if (Clock::now() >= deadline) {
      stop();
      fail("did not listen on 127.0.0.1:" + std::to_string(m_port) + " within " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kListenTimeout).count()) + " s");
    }
    std::this_thread::sleep_for(10ms);
  }
}

void TestServer::stop() {
  if (m_reaperPid <= 0) return;
  const pid_t reaper = m_reaperPid;
  const ProcessId server{m_pid, m_serverStart};
  // Everything under the reaper: the server, and what it started (smbd's helpers, sshd's
  // connections, which run in sessions of their own and outlive the listener).
  std::vector<ProcessId> family = descendants(reaper);
  std::vector<ProcessId> serverOnly = {server};
  if (isSameProcess(server)) ::kill(server.pid, SIGTERM);
  if (!waitForFamily(serverOnly, kTermTimeout)) {
    ::kill(server.pid, SIGKILL);
    waitForFamily(serverOnly, kKillTimeout);
  }
  for (const auto& member : family)
    if (isSameProcess(member)) ::kill(member.pid, SIGTERM);
  if (!waitForFamily(family, kTermTimeout)) {
    for (const auto& member : family)
      if (isSameProcess(member)) ::kill(member.pid, SIGKILL);
    waitForFamily(family, kKillTimeout);
  }
  // With nothing left to reap, the reaper exits by itself.
  if (!waitForExit(reaper, kTermTimeout)) {
    // Its pid still names its process group (it is alive): the group goes, the reaper with it.
    ::kill(-reaper, SIGKILL);
    if (!waitForExit(reaper, kKillTimeout)) fail("the reaper " + std::to_string(reaper) + " survived SIGKILL");
  }
  reap(reaper);
  if (auto hook = g_stoppedHook.load()) hook(reaper);
  m_reaperPid = -1;
  m_pid = -1;
}

// ---------------------------------------------------------------------------------------------

SshServer::SshServer(Options options) : TestServer("ssh"), m_options(std::move(options)) {
  try {
    // sshd refuses to start without its privilege separation directory (normally made by systemd's
    // RuntimeDirectory or the init script): root's, not group or world writable.
    if (::mkdir("/run/sshd", 0755) != 0 && errno != EEXIST) throw std::runtime_error(errnoText("mkdir /run/sshd"));
    {
      std::lock_guard lock(g_accountsMutex);
      ensureUser(m_options.user, {"-m", "-s", "/bin/bash"});
      // A real password hash: with UsePAM no, sshd refuses a locked ("!") account even for keys.
      retryUntil({"/usr/sbin/chpasswd"}, m_options.user + ":" + password() + "\n", {});
    }
    m_home = account(m_options.user).home;
    runOrThrow({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zbtest-host", "-f", hostKeyPath().string()});
    runOrThrow({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", kKeyTagPrefix + dir().string(), "-f",
                clientKeyPath().string()});
    ::chmod(clientKeyPath().c_str(), 0600);
    authorizeClientKey();
    startFirst();
  } catch (...) {
    removeClientKey();
    throw;
  }
}

SshServer::~SshServer() {
  try {
    stop();
  } catch (...) {
  }
  removeClientKey();
}

std::string SshServer::clientKey() const { return readWholeFile(clientKeyPath()); }

std::string SshServer::knownHostsLine() const {
  return "[127.0.0.1]:" + std::to_string(port()) + " " + keyTypeAndBlob(hostKeyPath().string() + ".pub");
}

std::vector<std::string> SshServer::command() const {
  return {"/usr/sbin/sshd", "-D", "-e", "-f", (dir() / "sshd_config").string()};
}

void SshServer::configure() {
  std::ostringstream config;
  config << "Port " << port() << "\n"
         << "ListenAddress 127.0.0.1\n"
         << "AddressFamily inet\n"
         << "HostKey " << hostKeyPath().string() << "\n"
         << "PidFile none\n"
         << "UsePAM no\n"
         << "PasswordAuthentication yes\n"
         << "KbdInteractiveAuthentication no\n"
         << "PubkeyAuthentication yes\n"
         << "PermitRootLogin no\n"
         << "AllowUsers " << m_options.user << "\n"
         << "AuthorizedKeysFile .ssh/authorized_keys\n"
         << "Subsystem sftp internal-sftp\n"
         << "UseDNS no\n"
         // Tests may open many connections at once (a backup plus its checks).
         << "MaxStartups 100:30:200\n"
         << "LogLevel VERBOSE\n";
  writeWholeFile(dir() / "sshd_config", config.str(), 0644);
  writeWholeFile(knownHostsPath(), knownHostsLine() + "\n", 0644);
}

// Adds the client key to ~/.ssh/authorized_keys under an exclusive lock (servers of other test
// processes share the user), dropping keys of servers whose directory no longer exists.
void SshServer::authorizeClientKey() {
  const Account user = account(m_options.user);
  const auto sshDir = m_home / ".ssh";
  if (::mkdir(sshDir.c_str(), 0700) != 0 && errno != EEXIST) throw std::runtime_error(errnoText("mkdir " + sshDir.string()));
  if (::chown(sshDir.c_str(), user.uid, user.gid) != 0 || ::chmod(sshDir.c_str(), 0700) != 0)
    throw std::runtime_error(errnoText("chown/chmod " + sshDir.string()));
  const std::string ownLine = readWholeFile(clientPublicKeyPath());
  const auto path = sshDir / "authorized_keys";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::runtime_error(errnoText("open " + path.string()));
  auto closeFd = [&] { ::close(fd); };
  if (::flock(fd, LOCK_EX) != 0) {
    closeFd();
    throw std::runtime_error(errnoText("flock " + path.string()));
  }
  std::string kept;
  std::istringstream lines(readWholeFile(path));
  std::string line;
  while (std::getline(lines, line)) {
    auto tag = line.find(kKeyTagPrefix);
    if (tag != std::string::npos && !std::filesystem::exists(line.substr(tag + std::strlen(kKeyTagPrefix)))) continue;
    kept += line + "\n";
  }
  kept += ownLine.empty() || ownLine.back() == '\n' ? ownLine : ownLine + "\n";
  bool ok = ::ftruncate(fd, 0) == 0 && ::pwrite(fd, kept.data(), kept.size(), 0) == static_cast<ssize_t>(kept.size()) &&
            ::fchown(fd, user.uid, user.gid) == 0 && ::fchmod(fd, 0600) == 0;
  int saved = errno;
  closeFd();
  errno = saved;
  if (!ok) throw std::runtime_error(errnoText("writing " + path.string()));
  m_keyInstalled = true;
}

void SshServer::removeClientKey() noexcept {
  if (!m_keyInstalled) return;
  m_keyInstalled = false;
  const auto path = m_home / ".ssh" / "authorized_keys";
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  if (::flock(fd, LOCK_EX) == 0) {
    const std::string tag = kKeyTagPrefix + dir().string();
    std::string kept;
    std::istringstream lines(readWholeFile(path));
    std::string line;
    while (std::getline(lines, line)) {
      const auto at = line.find(tag);
      if (at != std::string::npos && at + tag.size() == line.size()) continue;
      kept += line + "\n";
    }
    if (::ftruncate(fd, 0) == 0) {
      ssize_t ignored = ::pwrite(fd, kept.data(), kept.size(), 0);
      (void)ignored;
    }
  }
  ::close(fd);
}

// ---------------------------------------------------------------------------------------------

WebdavServer::WebdavServer() : TestServer("webdav") {
  makeDirectory(root(), 0755);
  writeWholeFile(dir() / "rclone.conf", "", 0600);
  startFirst();
}

std::string WebdavServer::url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/"; }

std::vector<std::string> WebdavServer::command() const {
  return {"/usr/bin/rclone", "serve", "webdav", root().string(), "--addr", "127.0.0.1:" + std::to_string(port()),
          "--user", user(), "--pass", password(),
          // rclone's VFS caches listings for 5 minutes: files the test puts into root() would stay invisible.
          "--dir-cache-time", "0s", "--config", (dir() / "rclone.conf").string(), "--cache-dir", (dir() / "cache").string()};
}

// ---------------------------------------------------------------------------------------------

SambaServer::SambaServer(Options options) : TestServer("samba"), m_options(std::move(options)) {
  for (const char* sub : {"lock", "state", "cache", "pid"}) makeDirectory(dir() / sub, 0755);
  makeDirectory(dir() / "private", 0700);
  makeDirectory(root(), 0777);
  {
    std::lock_guard lock(g_accountsMutex);
    ensureUser(m_options.user, {"-M", "-s", "/usr/sbin/nologin"});
  }
  const Account user = account(m_options.user);
  if (::chown(root().c_str(), user.uid, user.gid) != 0) throw std::runtime_error(errnoText("chown " + root().string()));
  configure();  // smbpasswd reads the passdb's place from it
  runOrThrow({"/usr/bin/smbpasswd", "-c", configPath().string(), "-s", "-a", m_options.user}, password() + "\n" + password() + "\n");
  startFirst();
}

std::vector<std::string> SambaServer::command() const {
  // --no-process-group: on SIGTERM smbd signals its whole process group (here: its own session).
  return {"/usr/sbin/smbd", "-s", configPath().string(), "-F", "--no-process-group", "--debug-stdout", "-d", "1"};
}

void SambaServer::configure() {
  const std::string d = dir().string();
  std::ostringstream config;
  config << "[global]\n"
         << "   server role = standalone server\n"
         << "   interfaces = 127.0.0.1\n"
         << "   bind interfaces only = yes\n"
         // 0 is refused; smbpasswd reads the file before a port is chosen.
         << "   smb ports = " << (port() > 0 ? port() : 445) << "\n"
         << "   disable netbios = yes\n"
         << "   lock directory = " << d << "/lock\n"
         << "   state directory = " << d << "/state\n"
         << "   cache directory = " << d << "/cache\n"
         << "   pid directory = " << d << "/pid\n"
         << "   private dir = " << d << "/private\n"
         << "   ncalrpc dir = " << d << "/state/ncalrpc\n"
         << "   log file = " << d << "/log.%m\n"
         << "   passdb backend = tdbsam:" << d << "/private/passdb.tdb\n"
         << "   usershare path =\n"
         << "   map to guest = never\n"
         << "   server min protocol = SMB2\n"
         << "   load printers = no\n"
         << "   printing = bsd\n"
         << "   printcap name = /dev/null\n"
         << "   disable spoolss = yes\n"
         << "[" << share() << "]\n"
         << "   path = " << root().string() << "\n"
         << "   read only = no\n"
         << "   valid users = " << m_options.user << "\n";
  writeWholeFile(configPath(), config.str(), 0644);
}

// ---------------------------------------------------------------------------------------------

ResticRestServer::ResticRestServer() : TestServer("rest") {
  makeDirectory(root(), 0755);
  writeWholeFile(dir() / "rclone.conf", "", 0600);
  startFirst();
}

std::string ResticRestServer::url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/"; }

std::vector<std::string> ResticRestServer::command() const {
  return {"/usr/bin/rclone", "serve", "restic", root().string(), "--addr", "127.0.0.1:" + std::to_string(port()),
          "--user", user(), "--pass", password(),
          "--config", (dir() / "rclone.conf").string(), "--cache-dir", (dir() / "cache").string()};
}

// ---------------------------------------------------------------------------------------------

// Where scripts/install-deps --tests installs s3rver (npm install --prefix /usr/local/lib/zerobyte-tests s3rver@3).
#ifndef ZBTEST_S3RVER_PATH
#define ZBTEST_S3RVER_PATH "/usr/local/lib/zerobyte-tests/node_modules/.bin/s3rver"
#endif

std::string S3Server::program() {
  const char* path = std::getenv("ZBTEST_S3RVER");
  return path && *path ? path : ZBTEST_S3RVER_PATH;
}

S3Server::S3Server() : TestServer("s3") {
  const std::string path = program();
  if (::access(path.c_str(), X_OK) != 0) {
    const std::string reason = std::strerror(errno);
    throw std::runtime_error("test servers: s3rver is not installed at " + path + " (" + reason +
                             "): run `scripts/install-deps --tests` (or set ZBTEST_S3RVER)");
  }
  makeDirectory(root(), 0755);
  // A CA of this server's own and a certificate for 127.0.0.1 signed by it (Go's TLS client, restic's,
  // reads only the subjectAltName). EC P-256 keys: quick to make.
  const std::string openssl = "/usr/bin/openssl";
  const auto caKey = dir() / "ca.key";
  const auto request = dir() / "server.csr";
  const auto extensions = dir() / "server.ext";
  runOrThrow({openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
              caKey.string(), "-out", caPath().string(), "-days", "30", "-subj", "/CN=zerobyte test CA " + dir().filename().string(),
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  runOrThrow({openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
              keyPath().string(), "-out", request.string(), "-subj", "/CN=127.0.0.1"});
  writeWholeFile(extensions,
                 "subjectAltName = IP:127.0.0.1\n"
                 "basicConstraints = critical,CA:FALSE\n"
                 "keyUsage = critical,digitalSignature,keyEncipherment\n"
                 "extendedKeyUsage = serverAuth\n",
                 0644);
  runOrThrow({openssl, "x509", "-req", "-in", request.string(), "-CA", caPath().string(), "-CAkey", caKey.string(),
              "-CAcreateserial", "-CAserial", (dir() / "ca.srl").string(), "-out", certPath().string(), "-days", "30",
              "-extfile", extensions.string()});
  for (const auto& key : {caKey, keyPath()})
    if (::chmod(key.c_str(), 0600) != 0) throw std::runtime_error(errnoText("chmod " + key.string()));
  ::chmod(caPath().c_str(), 0644);
  ::chmod(certPath().c_str(), 0644);
  startFirst();
}

std::string S3Server::url() const { return "https://127.0.0.1:" + std::to_string(port()); }

std::string S3Server::resticRepository(const std::string& prefix) const {
  return "s3:" + url() + "/" + bucket() + (prefix.empty() ? "" : "/" + prefix);
}

std::vector<std::string> S3Server::command() const {
  // The script's "#!/usr/bin/env node" makes the server process node, under this pid. It creates
  // bucket() before it listens; a port in use ends it with "EADDRINUSE: address already in use".
  return {program(), "--address", "127.0.0.1", "--port", std::to_string(port()), "--directory", root().string(),
          "--key", keyPath().string(), "--cert", certPath().string(), "--configure-bucket", bucket()};
}

std::string readAll(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buffer[8192];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace zbtest
