// A private system bus with a real polkitd on it, role users and processes running as them.
#include "tests/support/polkit_env.h"

#include <systemd/sd-bus.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace zbtest {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kDbusDaemon = "/usr/bin/dbus-daemon";
constexpr const char* kPolkitd = "/usr/lib/polkit-1/polkitd";
constexpr auto kStartTimeout = std::chrono::seconds(20);
constexpr auto kStopTimeout = std::chrono::seconds(5);

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string readWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeWholeFile(const std::filesystem::path& path, const std::string& content, mode_t mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
  if (::chmod(path.c_str(), mode) != 0) throw std::runtime_error(errnoText("chmod " + path.string()));
}

void makeDirectory(const std::filesystem::path& path, mode_t mode) {
  std::filesystem::create_directories(path);
  if (::chmod(path.c_str(), mode) != 0) throw std::runtime_error(errnoText("chmod " + path.string()));
}

// What a forked child does before exec: the test process may block signals for its event loop
// (the children would inherit a blocked SIGTERM) and ignore SIGPIPE.
void resetSignalsInChild() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) ::signal(sig, SIG_DFL);
}

void childFailure(const char* what) {
  const char* reason = std::strerror(errno);
  for (const char* part : {"test environment: ", what, ": ", reason, "\n"}) {
    ssize_t ignored = ::write(STDERR_FILENO, part, std::strlen(part));
    (void)ignored;
  }
  ::_exit(127);
}

// Forks and execs argv[0] in its own session with stdout and stderr appended to `logPath`.
// `prepare` runs in the child just before exec (async-signal-safe calls only).
pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& logPath,
            const std::function<void()>& prepare = {}) {
  int logFd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) throw std::runtime_error(errnoText("open " + logPath.string()));
  int nullFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(logFd);
    ::close(nullFd);
    throw std::runtime_error(errnoText("fork"));
  }
  if (pid == 0) {
    resetSignalsInChild();
    ::setsid();
    ::dup2(nullFd, STDIN_FILENO);
    ::dup2(logFd, STDOUT_FILENO);
    ::dup2(logFd, STDERR_FILENO);
    if (prepare) prepare();
    ::execv(args[0], args.data());
    childFailure(args[0]);
  }
  ::close(logFd);
  ::close(nullFd);
  return pid;
}

bool exited(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

// SIGTERM, then SIGKILL after kStopTimeout; always reaps.
void terminate(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  const auto deadline = Clock::now() + kStopTimeout;
  while (!exited(pid)) {
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid = -1;
}

bool socketAccepts(const std::filesystem::path& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// 1: polkit is on the bus, 0: not (yet), < 0: the bus cannot be asked.
int polkitOnBus(const std::string& address) {
  sd_bus* bus = nullptr;
  int r = sd_bus_new(&bus);
  if (r < 0) return r;
  r = sd_bus_set_address(bus, address.c_str());
  if (r >= 0) r = sd_bus_set_bus_client(bus, 1);
  if (r >= 0) r = sd_bus_start(bus);
  sd_bus_message* reply = nullptr;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  if (r >= 0)
    r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
                           &error, &reply, "s", "org.freedesktop.PolicyKit1");
  int owned = 0;
  if (r >= 0) r = sd_bus_message_read(reply, "b", &owned);
  sd_bus_error_free(&error);
  sd_bus_message_unref(reply);
  sd_bus_flush_close_unref(bus);
  return r < 0 ? r : owned;
}

void setAddress(const std::string& address, bool& hadAddress, std::string& oldAddress) {
  if (const char* old = std::getenv("DBUS_SYSTEM_BUS_ADDRESS")) {
    hadAddress = true;
    oldAddress = old;
  }
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", address.c_str(), 1);
}

void restoreAddress(bool hadAddress, const std::string& oldAddress) {
  if (hadAddress) ::setenv("DBUS_SYSTEM_BUS_ADDRESS", oldAddress.c_str(), 1);
  else ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

std::filesystem::path makeTemporaryDirectory(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error(errnoText("mkdtemp " + pattern));
  return pattern;
}

bool keepDirectories() {
  const char* keep = std::getenv("ZBTEST_KEEP");
  return keep && *keep && std::string(keep) != "0";
}

// The stock system-bus policy, on a private socket, without <user> (the test runs as root) and
// without activation; <dir>/system.d holds the host's bus policies (polkit's among them) except an
// installed copy of zerobyte's, and the project's own. max_replies_per_connection
// stays at the system bus's 128, as in production.
std::string busConfig(const std::filesystem::path& dir) {
  return R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=)" + (dir / "system_bus_socket").string() + R"(</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <includedir>)" + (dir / "system.d").string() + R"(</includedir>
</busconfig>
)";
}

// Runs a program (absolute path) with stdin from `stdinFd` (-1: /dev/null) and waits; returns its
// exit status and what it printed on stderr.
int runProgramWithStdin(const std::vector<std::string>& argv, int stdinFd, std::string& errors) {
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) throw std::runtime_error(errnoText("pipe2"));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(errnoText("fork"));
  if (pid == 0) {
    resetSignalsInChild();
    int nullFd = ::open("/dev/null", O_RDWR);
    ::dup2(stdinFd >= 0 ? stdinFd : nullFd, STDIN_FILENO);
    ::dup2(nullFd, STDOUT_FILENO);
    ::dup2(pipeFds[1], STDERR_FILENO);
    ::execv(args[0], args.data());
    childFailure(args[0]);
  }
  ::close(pipeFds[1]);
  char buffer[4096];
  ssize_t n;
  errors.clear();
  while ((n = ::read(pipeFds[0], buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) errors.append(buffer, static_cast<size_t>(n));
  ::close(pipeFds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int runProgram(const std::vector<std::string>& argv, std::string& errors) { return runProgramWithStdin(argv, -1, errors); }

// useradd and groupadd fail while another process holds /etc/passwd's lock, and when another
// test created the same name a moment ago: retried until `done` says it exists.
void runUntil(const std::vector<std::string>& argv, const std::function<bool()>& done) {
  std::string errors;
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (done()) return;
    if (runProgram(argv, errors) == 0 && done()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (done()) return;
  std::string command;
  for (const auto& a : argv) command += a + " ";
  throw std::runtime_error("test environment: " + command + "failed: " + errors);
}

bool inGroup(const std::string& user, const std::string& group) {
  struct group* g = ::getgrnam(group.c_str());
  if (!g) return false;
  const gid_t gid = g->gr_gid;
  struct passwd* p = ::getpwnam(user.c_str());
  if (!p) return false;
  if (p->pw_gid == gid) return true;
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  while (::getgrouplist(user.c_str(), p->pw_gid, groups.data(), &count) < 0) groups.resize(static_cast<size_t>(count));
  groups.resize(static_cast<size_t>(count));
  for (gid_t each : groups)
    if (each == gid) return true;
  return false;
}

}  // namespace

std::filesystem::path projectPolkitDir() { return std::filesystem::path(ZB_SOURCE_DIR) / "polkit"; }

std::filesystem::path projectDbusDir() { return std::filesystem::path(ZB_SOURCE_DIR) / "dbus"; }

// ---------------------------------------------------------------------------------------------

PolkitEnvironment::PolkitEnvironment(Options options) : m_options(std::move(options)) {
  if (::geteuid() != 0) throw std::runtime_error("the polkit test environment needs root (polkitd, mount namespaces)");
  m_dir = makeTemporaryDirectory("zbtest-polkit");
  // polkitd drops to its own user and must read the copies.
  makeDirectory(m_dir, 0755);
  makeDirectory(m_dir / "system.d", 0755);
  makeDirectory(m_dir / "actions", 0755);
  makeDirectory(m_dir / "rules.d", 0755);
  makeDirectory(m_dir / "share-rules.d", 0755);
  writeWholeFile(m_dir / "system.conf", busConfig(m_dir), 0644);
  auto copy = [&](const std::filesystem::path& from, const std::filesystem::path& to) {
    std::string content = readWholeFile(from);
    if (content.empty()) throw std::runtime_error("test environment: cannot read " + from.string());
    writeWholeFile(to, content, 0644);
  };
  copy(m_options.policyFile, m_dir / "actions" / m_options.policyFile.filename());
  copy(m_options.rulesFile, m_dir / "rules.d" / m_options.rulesFile.filename());
  // The host's bus policies, but never an installed zerobyte's: the tests use the source tree's (or none).
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/share/dbus-1/system.d", ignored))
    if (entry.path().extension() == ".conf" && entry.path().filename() != "org.zerobyte.Daemon1.conf")
      copy(entry.path(), m_dir / "system.d" / entry.path().filename());
  if (!m_options.busPolicyFile.empty()) copy(m_options.busPolicyFile, m_dir / "system.d" / m_options.busPolicyFile.filename());
  for (const auto& rules : m_options.extraRules) {
    if (rules.name.empty() || rules.name.find('/') != std::string::npos || rules.name == m_options.rulesFile.filename().string())
      throw std::runtime_error("test environment: bad name for an extra polkit rules file: \"" + rules.name + "\"");
    writeWholeFile(m_dir / "rules.d" / rules.name, rules.content, 0644);
  }
  setAddress(busAddress(), m_hadAddress, m_oldAddress);
  try {
    start();
  } catch (...) {
    stop();
    restoreAddress(m_hadAddress, m_oldAddress);
    if (!keepDirectories()) std::filesystem::remove_all(m_dir);
    throw;
  }
}

PolkitEnvironment::~PolkitEnvironment() {
  stop();
  restoreAddress(m_hadAddress, m_oldAddress);
  std::error_code ignored;
  if (!keepDirectories()) std::filesystem::remove_all(m_dir, ignored);
}

std::string PolkitEnvironment::busAddress() const { return "unix:path=" + (m_dir / "system_bus_socket").string(); }

std::string PolkitEnvironment::environmentEntry() const { return "DBUS_SYSTEM_BUS_ADDRESS=" + busAddress(); }

std::string PolkitEnvironment::log() const {
  return "--- dbus-daemon:\n" + readWholeFile(m_dir / "dbus-daemon.log") + "--- polkitd:\n" + readWholeFile(m_dir / "polkitd.log");
}

void PolkitEnvironment::start() {
  startBus();
  if (!m_options.startPolkitd) return;
  startPolkitd();
  waitForPolkit();
}

void PolkitEnvironment::stop() {
  terminate(m_polkitdPid);
  terminate(m_busPid);
  std::error_code ignored;
  std::filesystem::remove(m_dir / "system_bus_socket", ignored);
}

void PolkitEnvironment::startBus() {
  const auto socket = m_dir / "system_bus_socket";
  std::error_code ignored;
  std::filesystem::remove(socket, ignored);
  m_busPid = spawn({kDbusDaemon, "--config-file=" + (m_dir / "system.conf").string(), "--nofork", "--nopidfile"},
                   m_dir / "dbus-daemon.log");
  const auto deadline = Clock::now() + kStartTimeout;
  while (!socketAccepts(socket)) {
    if (exited(m_busPid)) {
      m_busPid = -1;
      throw std::runtime_error("dbus-daemon exited at start\n" + log());
    }
    if (Clock::now() >= deadline) throw std::runtime_error("dbus-daemon did not listen on " + socket.string() + "\n" + log());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void PolkitEnvironment::startPolkitd() {
  struct BindMount {
    std::string source;
    const char* target;
  };
  const std::vector<BindMount> mounts = {
      {(m_dir / "actions").string(), "/usr/share/polkit-1/actions"},
      {(m_dir / "rules.d").string(), "/etc/polkit-1/rules.d"},
      {(m_dir / "share-rules.d").string(), "/usr/share/polkit-1/rules.d"},
  };
  // Only the child's mount namespace sees the test directories; it ends with polkitd.
  auto intoPrivateMounts = [&mounts]() {
    if (::unshare(CLONE_NEWNS) != 0) childFailure("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) childFailure("mount --make-rprivate /");
    for (const auto& m : mounts)
      if (::mount(m.source.c_str(), m.target, nullptr, MS_BIND, nullptr) != 0) childFailure(m.target);
  };
  // polkitd drops to the polkitd user by itself.
  m_polkitdPid = spawn({kPolkitd}, m_dir / "polkitd.log", intoPrivateMounts);
}

void PolkitEnvironment::waitForPolkit() {
  const auto deadline = Clock::now() + kStartTimeout;
  for (;;) {
    if (polkitOnBus(busAddress()) > 0) return;
    if (exited(m_polkitdPid)) {
      m_polkitdPid = -1;
      throw std::runtime_error("polkitd exited at start\n" + log());
    }
    if (Clock::now() >= deadline) throw std::runtime_error("polkitd did not appear on the bus\n" + log());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// ---------------------------------------------------------------------------------------------

NoSystemBus::NoSystemBus() {
  m_address = "unix:path=" + (std::filesystem::temp_directory_path() / "zbtest-no-system-bus" / "socket").string();
  setAddress(m_address, m_hadAddress, m_oldAddress);
}

NoSystemBus::~NoSystemBus() { restoreAddress(m_hadAddress, m_oldAddress); }

// ---------------------------------------------------------------------------------------------

const std::vector<RoleUser>& roleUsers() {
  static std::mutex mutex;
  static std::vector<RoleUser> users;
  std::lock_guard lock(mutex);
  if (!users.empty()) return users;
  if (::geteuid() != 0) throw std::runtime_error("creating the role test users needs root");

  for (std::string_view group : {kViewersGroup, kOperatorsGroup, kAdminsGroup}) {
    const std::string name(group);
    runUntil({"/usr/sbin/groupadd", "--system", name}, [&] { return ::getgrnam(name.c_str()) != nullptr; });
  }
  const std::vector<RoleUser> wanted = {
      {"none", "zbt-none", "", 0, 0},
      {"viewer", "zbt-viewer", std::string(kViewersGroup), 0, 0},
      {"operator", "zbt-operator", std::string(kOperatorsGroup), 0, 0},
      {"admin", "zbt-admin", std::string(kAdminsGroup), 0, 0},
  };
  std::vector<RoleUser> made;
  for (RoleUser user : wanted) {
    std::vector<std::string> add = {"/usr/sbin/useradd", "-m", "-s", "/bin/bash"};
    if (!user.group.empty()) add.insert(add.end(), {"-G", user.group});
    add.push_back(user.name);
    runUntil(add, [&] { return ::getpwnam(user.name.c_str()) != nullptr; });
    if (!user.group.empty())
      runUntil({"/usr/sbin/usermod", "-aG", user.group, user.name}, [&] { return inGroup(user.name, user.group); });
    struct passwd* p = ::getpwnam(user.name.c_str());
    if (!p) throw std::runtime_error("test user " + user.name + " vanished");
    user.uid = p->pw_uid;
    user.gid = p->pw_gid;
    made.push_back(user);
  }
  users = std::move(made);
  return users;
}

const RoleUser& roleUser(std::string_view role) {
  for (const auto& user : roleUsers())
    if (user.role == role) return user;
  throw std::runtime_error("no test user for the role " + std::string(role));
}

// ---------------------------------------------------------------------------------------------

uint64_t processStartTime(pid_t pid) {
  std::string stat = readWholeFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  // After "pid (comm)" come fields 3, 4, …; the start time is field 22.
  for (int number = 3; number <= 22; ++number)
    if (!(fields >> field)) return 0;
  return std::stoull(field);
}

UserProcess::UserProcess(const std::string& userName) {
  struct passwd* p = ::getpwnam(userName.c_str());
  if (!p) throw std::runtime_error("no user " + userName);
  m_uid = p->pw_uid;
  m_gid = p->pw_gid;
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  while (::getgrouplist(userName.c_str(), m_gid, groups.data(), &count) < 0) groups.resize(static_cast<size_t>(count));
  groups.resize(static_cast<size_t>(count));

  // Closed by exec: reading EOF means the process runs as the user; bytes carry an errno.
  int status[2];
  if (::pipe2(status, O_CLOEXEC) != 0) throw std::runtime_error(errnoText("pipe2"));
  const uid_t uid = m_uid;
  const gid_t gid = m_gid;
  m_pid = ::fork();
  if (m_pid < 0) throw std::runtime_error(errnoText("fork"));
  if (m_pid == 0) {
    resetSignalsInChild();
    int nullFd = ::open("/dev/null", O_RDWR);
    for (int fd : {STDIN_FILENO, STDOUT_FILENO}) ::dup2(nullFd, fd);
    int error = 0;
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0)
      error = errno;
    // Cleared by the uid change, so set afterwards: the process dies with the test.
    if (!error && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) error = errno;
    if (!error) {
      char sleepPath[] = "/bin/sleep";
      char seconds[] = "3600";
      char* args[] = {sleepPath, seconds, nullptr};
      ::execv(sleepPath, args);
      error = errno;
    }
    ssize_t ignored = ::write(status[1], &error, sizeof error);
    (void)ignored;
    ::_exit(127);
  }
  ::close(status[1]);
  int error = 0;
  ssize_t n;
  while ((n = ::read(status[0], &error, sizeof error)) < 0 && errno == EINTR) {
  }
  ::close(status[0]);
  if (n > 0) {
    ::waitpid(m_pid, nullptr, 0);
    m_pid = -1;
    throw std::runtime_error("cannot start a process as " + userName + ": " + std::strerror(error));
  }
  m_startTime = processStartTime(m_pid);
  m_running = true;
}

UserProcess::~UserProcess() { exit(); }

uid_t userWithPassword(const std::string& name, const std::string& password) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (::geteuid() != 0) throw std::runtime_error("creating the test user " + name + " needs root");
  runUntil({"/usr/sbin/useradd", "-m", "-s", "/bin/bash", name}, [&] { return ::getpwnam(name.c_str()) != nullptr; });
  // chpasswd reads "name:password" from stdin; a pipe keeps the password out of argv.
  std::string errors;
  for (int attempt = 0;; ++attempt) {
    int input[2];
    if (::pipe2(input, O_CLOEXEC) != 0) throw std::runtime_error(errnoText("pipe2"));
    const std::string line = name + ":" + password + "\n";
    if (::write(input[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) throw std::runtime_error(errnoText("write"));
    ::close(input[1]);
    int status = runProgramWithStdin({"/usr/sbin/chpasswd"}, input[0], errors);
    ::close(input[0]);
    if (status == 0) break;
    // Another test may hold /etc/shadow's lock for a moment.
    if (attempt >= 50) throw std::runtime_error("test environment: chpasswd for " + name + " failed: " + errors);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  struct passwd* p = ::getpwnam(name.c_str());
  if (!p) throw std::runtime_error("test user " + name + " vanished");
  return p->pw_uid;
}

int UserProcess::openPidfd() const { return static_cast<int>(::syscall(SYS_pidfd_open, m_pid, 0)); }

void UserProcess::exit() {
  if (!m_running) return;
  m_running = false;
  ::kill(m_pid, SIGKILL);
  while (::waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace zbtest
