// End-to-end test of interactive authentication: a user outside the roles runs zerobytectl on a
// terminal, pkttyagent (started by zerobytectl) asks for an administrator's password there, and
// zerobyted allows the action only when real polkitd and PAM accept that password.
#include "tests/integration/harness.h"
#include "tests/support/polkit_env.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using zbtest::CommandResult;
using zbtest::describe;
using zbtest::Daemon;

// Every wait of this test is bounded by this.
constexpr auto kWait = 20s;

// The administrator identity polkit asks for (auth_admin) in this test, and the rules file naming it.
constexpr const char* kAuthAdmin = "zbt-authadmin";
constexpr const char* kAdminIdentityRulesName = "40-zbt-admin-identity.rules";
constexpr const char* kAdminIdentityRules =
    "// Test environment: the administrator identity for auth_admin and auth_admin_keep.\n"
    "polkit.addAdminRule(function (action, subject) {\n"
    "    return [\"unix-user:zbt-authadmin\"];\n"
    "});\n";

constexpr const char* kExportSecretAction = "org.zerobyte.daemon1.export-secret";
constexpr int kNotAuthorizedExit = 5;

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }


// A fresh password for each run: the test user's password is known to this process only.
std::string randomPassword() {
  unsigned char bytes[12];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) throw std::runtime_error("getrandom failed");
  static const char* hex = "0123456789abcdef";
  std::string password = "Zb-";
  for (unsigned char b : bytes) {
    password.push_back(hex[b >> 4]);
    password.push_back(hex[b & 15]);
  }
  return password;
}

std::string readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Fields after "pid (comm)" of /proc/PID/stat: [0] is the state, [1] the parent pid.
std::vector<std::string> statFields(pid_t pid) {
  std::string stat = readWholeFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream in(stat.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  return fields;
}

std::vector<std::string> commandLine(pid_t pid) {
  std::string raw = readWholeFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> argv;
  for (size_t start = 0; start < raw.size();) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    argv.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  return argv;
}

std::vector<pid_t> childrenOf(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    auto fields = statFields(pid);
    if (fields.size() > 1 && fields[1] == std::to_string(parent)) out.push_back(pid);
  }
  return out;
}

// zerobytectl running as a user with a pseudo-terminal as its stdin and controlling terminal, as
// in a login session; stdout and stderr go to pipes of their own, so that what the command prints
// is apart from what the polkit agent writes on the terminal.
//
// polkit-agent-helper-1 (setuid root, started by pkttyagent) clears its environment and reports
// the outcome of PAM to polkitd on the system bus at its fixed address,
// /run/dbus/system_bus_socket. So zerobytectl runs in a mount namespace of its own where the test
// bus is bind-mounted there: the host's /run/dbus stays as it was, and the helper reaches the
// polkitd of the test.
class TerminalSession {
 public:
  TerminalSession(const std::string& user, const std::vector<std::string>& args, const zbtest::PolkitEnvironment& polkit) {
    passwd* pw = ::getpwnam(user.c_str());
    if (!pw) throw std::runtime_error("no user " + user);
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    const std::string home = pw->pw_dir;
    int count = 64;
    std::vector<gid_t> groups(static_cast<size_t>(count));
    while (::getgrouplist(user.c_str(), gid, groups.data(), &count) < 0) groups.resize(static_cast<size_t>(count));
    groups.resize(static_cast<size_t>(count));

    std::vector<std::string> argv = {ZB_ZEROBYTECTL};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + home, "USER=" + user,
                                    "LOGNAME=" + user, "TERM=dumb", polkit.environmentEntry()};
    std::vector<char*> argvp, envp;
    for (auto& a : argv) argvp.push_back(a.data());
    argvp.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string busDir = polkit.dir().string();
    const bool haveRunDbus = std::filesystem::is_directory("/run/dbus");

    int master = -1, slave = -1;
    if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) throw std::runtime_error("openpty failed");
    m_master = master;
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave, F_SETFD, FD_CLOEXEC);
    // The terminal of the user's session is the user's, as login makes it.
    if (::fchown(slave, uid, static_cast<gid_t>(-1)) != 0) throw std::runtime_error("fchown of the pty failed");
    int out[2], err[2], status[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(status, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    m_out = out[0];
    m_err = err[0];

    m_pid = ::fork();
    if (m_pid < 0) throw std::runtime_error("fork failed");
    if (m_pid == 0) {
      // Only async-signal-safe calls from here; a failure is reported through `status`.
      auto fail = [&](const char* step) {
        int e = errno;
        ssize_t ignored = ::write(status[1], &e, sizeof e);
        (void)ignored;
        ignored = ::write(status[1], step, std::strlen(step));
        ::_exit(127);
      };
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) ::signal(sig, SIG_DFL);
      if (::setsid() < 0) fail("setsid");
      if (::unshare(CLONE_NEWNS) != 0) fail("unshare(CLONE_NEWNS)");
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail("mount --make-rprivate /");
      if (!haveRunDbus) {
        // Nothing to bind over: an empty /run of this namespace gets the directory.
        if (::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) fail("mount tmpfs /run");
        if (::mkdir("/run/dbus", 0755) != 0) fail("mkdir /run/dbus");
      }
      if (::mount(busDir.c_str(), "/run/dbus", nullptr, MS_BIND, nullptr) != 0) fail("bind mount over /run/dbus");
      if (::setgroups(groups.size(), groups.data()) != 0) fail("setgroups");
      if (::setresgid(gid, gid, gid) != 0) fail("setresgid");
      if (::setresuid(uid, uid, uid) != 0) fail("setresuid");
      // Cleared by the uid change: set afterwards, so that nothing outlives a crashed test.
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("PR_SET_PDEATHSIG");
      if (::ioctl(slave, TIOCSCTTY, 0) != 0) fail("TIOCSCTTY");
      if (::dup2(slave, STDIN_FILENO) < 0 || ::dup2(out[1], STDOUT_FILENO) < 0 || ::dup2(err[1], STDERR_FILENO) < 0) fail("dup2");
      if (::chdir(home.c_str()) != 0 && ::chdir("/") != 0) fail("chdir");
      ::execve(argvp[0], argvp.data(), envp.data());
      fail("execve");
    }
    zbtest::ownProcess(m_pid);  // the harness must not take it for an orphan of a daemon
    ::close(slave);
    ::close(out[1]);
    ::close(err[1]);
    ::close(status[1]);
    ::fcntl(m_master, F_SETFL, O_NONBLOCK);
    ::fcntl(m_out, F_SETFL, O_NONBLOCK);
    ::fcntl(m_err, F_SETFL, O_NONBLOCK);
    // EOF: exec succeeded.
    int error = 0;
    char step[128] = {};
    ssize_t n;
    while ((n = ::read(status[0], &error, sizeof error)) < 0 && errno == EINTR) {
    }
    if (n > 0) {
      ssize_t ignored = ::read(status[0], step, sizeof step - 1);
      (void)ignored;
    }
    ::close(status[0]);
    if (n > 0) {
      wait(kWait);
      // No destructor runs for a constructor that throws.
      for (int fd : {m_master, m_out, m_err}) ::close(fd);
      throw std::runtime_error(std::string("cannot start zerobytectl on a terminal: ") + step + ": " + std::strerror(error));
    }
  }

  ~TerminalSession() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      if (!reap(10s)) {
        ::kill(m_pid, SIGKILL);
        reap(10s);
      }
    }
    endAgents();
    for (int fd : {m_master, m_out, m_err})
      if (fd >= 0) ::close(fd);
  }
  TerminalSession(const TerminalSession&) = delete;
  TerminalSession& operator=(const TerminalSession&) = delete;

  pid_t pid() const { return m_pid > 0 ? m_pid : m_exitedPid; }

  // Reads the terminal until it shows `needle` (true) or `limit` passes (false).
  bool waitForTerminal(const std::string& needle, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      noteAgents();
      readAvailable();
      if (contains(m_terminal, needle)) return true;
      if (Clock::now() >= deadline || m_pid <= 0) return contains(m_terminal, needle);
      pollfd p{m_master, POLLIN, 0};
      ::poll(&p, 1, 50);
      // The command may have ended (e.g. refused before any prompt).
      reap(0ms);
    }
  }

  // Waits until the terminal stops echoing what is typed (the agent reads a password).
  bool waitForEchoOff(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      termios t{};
      // On a pseudo-terminal's master side this reads the terminal's (the slave's) settings.
      if (::tcgetattr(m_master, &t) == 0 && !(t.c_lflag & ECHO)) return true;
      if (Clock::now() >= deadline) return false;
      readAvailable();
      std::this_thread::sleep_for(10ms);
    }
  }

  // Types a line on the terminal, as a person at the keyboard does.
  void type(const std::string& line) {
    const std::string text = line + "\n";
    for (size_t done = 0; done < text.size();) {
      ssize_t n = ::write(m_master, text.data() + done, text.size() - done);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        std::this_thread::sleep_for(1ms);
        continue;
      }
      if (n <= 0) throw std::runtime_error(std::string("writing to the terminal failed: ") + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
  }

  // Waits for the exit (draining the terminal meanwhile); the exit status, or -1 after `limit` (then it is killed).
  int wait(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (m_pid > 0) {
      noteAgents();
      readAvailable();
      if (reap(0ms)) break;
      if (Clock::now() >= deadline) {
        ::kill(m_pid, SIGKILL);
        reap(10s);
        m_status = -1;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    readAvailable();
    return m_status;
  }

  const std::string& terminal() const { return m_terminal; }
  const std::string& out() const { return m_stdout; }
  const std::string& err() const { return m_stderr; }
  // Every pkttyagent seen as zerobytectl's child.
  const std::set<pid_t>& agents() const { return m_agents; }

  std::string describe() const {
    return "exit " + std::to_string(m_status) + "\n--- stdout:\n" + m_stdout + "\n--- stderr:\n" + m_stderr + "\n--- terminal:\n" +
           m_terminal + "\n---";
  }

 private:
  static void drain(int fd, std::string& into) {
    if (fd < 0) return;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        into.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return;  // EAGAIN, EOF, or EIO once no process holds the terminal any more
    }
  }

  void readAvailable() {
    drain(m_master, m_terminal);
    drain(m_out, m_stdout);
    drain(m_err, m_stderr);
  }

  // pkttyagent children of zerobytectl, so that none can outlive the test unnoticed.
  void noteAgents() {
    if (m_pid <= 0) return;
    for (pid_t child : childrenOf(m_pid)) {
      auto argv = commandLine(child);
      if (!argv.empty() && contains(argv[0], "pkttyagent")) m_agents.insert(child);
    }
  }

  // zerobytectl ends its agent itself; one that lingers (zerobytectl was killed) was adopted by
  // the test process (a child subreaper) and is ended here, by its pid.
  void endAgents() {
    for (pid_t agent : m_agents) {
      auto fields = statFields(agent);
      if (fields.size() < 2 || fields[1] != std::to_string(::getpid())) continue;
      ::kill(agent, SIGTERM);
      const auto deadline = Clock::now() + 5s;
      while (::waitpid(agent, nullptr, WNOHANG) == 0 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
      if (::waitpid(agent, nullptr, WNOHANG) == 0) {
        ::kill(agent, SIGKILL);
        ::waitpid(agent, nullptr, 0);
      }
    }
  }

  bool reap(std::chrono::milliseconds limit) {
    if (m_pid <= 0) return true;
    const auto deadline = Clock::now() + limit;
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(m_pid, &status, WNOHANG);
      if (r == m_pid || (r < 0 && errno != EINTR)) {
        if (r == m_pid) m_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        zbtest::disownProcess(m_pid);
        m_exitedPid = m_pid;
        m_pid = -1;
        return true;
      }
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
  }

  pid_t m_pid = -1;
  pid_t m_exitedPid = -1;
  int m_status = -1;
  int m_master = -1;
  int m_out = -1;
  int m_err = -1;
  std::string m_terminal;
  std::string m_stdout;
  std::string m_stderr;
  std::set<pid_t> m_agents;
};

// Real polkitd reading the project's policy and rules plus the administrator identity
// zbt-authadmin; a daemon in polkit mode; root's volume and repository "ownrepo".
class InteractiveAuth : public testing::Test {
 protected:
  void SetUp() override {
    m_none = zbtest::roleUser("none").name;
    // zbt-authadmin is one user for the whole machine and gets a new password per test: tests that run in
    // parallel processes (ctest -j) take turns, or one would change the password another is typing.
    m_lock = ::open("/tmp/zbt-authadmin.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(m_lock, 0);
    ASSERT_EQ(::flock(m_lock, LOCK_EX), 0);
    m_adminPassword = randomPassword();
    zbtest::userWithPassword(kAuthAdmin, m_adminPassword);

    zbtest::PolkitEnvironmentOptions polkitOptions;
    polkitOptions.extraRules = {{kAdminIdentityRulesName, kAdminIdentityRules}};
    m_polkit = std::make_unique<zbtest::OwnedPolkitEnvironment>(polkitOptions);

    Daemon::Options options;
    options.extraEnvironment = {m_polkit->environmentEntry()};
    options.extraDaemonSettings = "  authorization: polkit\n";
    m_daemon = std::make_unique<Daemon>(options);
    m_daemon->start();
    ASSERT_EQ(m_daemon->ctlJson({"status"}).value("authorization", ""), "polkit");

    const std::string data = m_daemon->dir() + "/rootdata";
    std::filesystem::create_directories(data);
    std::ofstream(data + "/hello.txt") << "hello from root\n";
    CommandResult volume = m_daemon->ctl({"volume", "create", "rootvol", "--path", data});
    ASSERT_EQ(volume.exitCode, 0) << describe(volume);
    // zbt-none's own repository: they see it, but revealing its password (export-secret) needs an
    // administrator's password every time, as the policy says.
    const std::string repoDir = m_daemon->dir() + "/nonesrepo";
    std::filesystem::create_directories(repoDir);
    const auto& none = zbtest::roleUser("none");
    ASSERT_EQ(::chown(repoDir.c_str(), none.uid, none.gid), 0);
    ASSERT_EQ(::chmod(repoDir.c_str(), 0700), 0);
    CommandResult repo = m_daemon->ctl({"repo", "create", "ownrepo", "--path", repoDir + "/restic"}, "", m_none);
    ASSERT_EQ(repo.exitCode, 0) << describe(repo);
    // Root is allowed without a question: what a successful reveal prints.
    CommandResult reveal = m_daemon->ctl({"repo", "password", "ownrepo", "--reveal"});
    ASSERT_EQ(reveal.exitCode, 0) << describe(reveal);
    ASSERT_GT(reveal.out.size(), 1U) << describe(reveal);
    m_rootReveal = reveal.out;
  }

  void TearDown() override {
    if (m_daemon) m_daemon->stop();
    m_daemon.reset();
    m_polkit.reset();
    if (m_lock >= 0) ::close(m_lock);  // releases the flock
    m_lock = -1;
  }

  std::unique_ptr<TerminalSession> revealAsNone(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--socket", m_daemon->socketPath(), "repo", "password", "ownrepo", "--reveal"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<TerminalSession>(m_none, args, *m_polkit);
  }

  // The results of zbt-none's export-secret requests in zerobyted's audit trail, oldest first.
  std::vector<std::string> auditedResultsOfNone() {
    nlohmann::json entries = m_daemon->ctlJson({"audit", "--action", "export-secret", "--user", m_none}).at("entries");
    std::vector<std::string> results;
    for (const auto& entry : entries) {
      EXPECT_EQ(entry.value("caller_uid", -1), static_cast<int64_t>(zbtest::roleUser("none").uid)) << entry.dump();
      results.insert(results.begin(), entry.value("result", ""));
    }
    return results;
  }

  std::string logs() const { return "\n--- zerobyted:\n" + m_daemon->log() + "\n" + m_polkit->log(); }

  std::string m_none;
  std::string m_adminPassword;
  std::string m_rootReveal;
  std::unique_ptr<zbtest::OwnedPolkitEnvironment> m_polkit;
  std::unique_ptr<Daemon> m_daemon;
  int m_lock = -1;  // held from SetUp to TearDown: see SetUp
};

// Without a terminal zbt-none is refused; the refusal asks for authentication (polkit answered
// with a challenge: the policy's auth_admin), so a password prompt is the only way in.
TEST_F(InteractiveAuth, WithoutATerminalAUserOutsideTheRolesIsRefusedWithAChallenge) {
  CommandResult plain = m_daemon->ctl({"repo", "password", "ownrepo", "--reveal"}, "", m_none);
  EXPECT_EQ(plain.exitCode, kNotAuthorizedExit) << describe(plain);
  EXPECT_TRUE(plain.out.empty()) << describe(plain);
  EXPECT_TRUE(contains(plain.err, "NotAuthorized")) << describe(plain);
  EXPECT_TRUE(contains(plain.err, kExportSecretAction)) << describe(plain);
  EXPECT_TRUE(contains(plain.err, "authentication is required")) << describe(plain);
}

// Scenario A: the administrator's password typed at pkttyagent's prompt lets zbt-none reveal
// root's repository password.
TEST_F(InteractiveAuth, TheAdministratorsPasswordAtTheTerminalPromptAllowsTheAction) {
  auto session = revealAsNone();
  ASSERT_TRUE(session->waitForTerminal("Password:", kWait)) << "no password prompt on the terminal:\n" << session->describe() << logs();
  // Typed only once the agent reads without echo, as a person would see the prompt first.
  ASSERT_TRUE(session->waitForEchoOff(kWait)) << session->describe();
  // The prompt is polkit's, for this action, asking for the administrator identity of the rules.
  EXPECT_TRUE(contains(session->terminal(), "AUTHENTICATING FOR " + std::string(kExportSecretAction))) << session->describe();
  EXPECT_TRUE(contains(session->terminal(), kAuthAdmin)) << session->describe();
  EXPECT_EQ(session->agents().size(), 1U) << "zerobytectl started pkttyagent: " << session->describe();
  session->type(m_adminPassword);

  const int exitCode = session->wait(kWait);
  EXPECT_EQ(exitCode, 0) << session->describe() << logs();
  EXPECT_EQ(session->out(), m_rootReveal) << "zbt-none sees the same password as root: " << session->describe();
  EXPECT_TRUE(contains(session->terminal(), "AUTHENTICATION COMPLETE")) << session->describe();
  EXPECT_FALSE(contains(session->terminal(), m_adminPassword)) << "the password was echoed: " << session->describe();
  EXPECT_TRUE(session->err().empty()) << session->describe();
  // polkitd itself says how it was decided.
  EXPECT_TRUE(contains(m_polkit->log(), "Operator of unix-process:" + std::to_string(session->pid()) + ":") &&
              contains(m_polkit->log(), "successfully authenticated as unix-user:" + std::string(kAuthAdmin)))
      << m_polkit->log();
  // The reveal is audited as zbt-none's.
  EXPECT_EQ(auditedResultsOfNone(), std::vector<std::string>{"revealed the password"});
}

// Scenario B: a wrong password at the same prompt: refused, nothing printed.
TEST_F(InteractiveAuth, AWrongPasswordAtTheTerminalPromptIsRefused) {
  auto session = revealAsNone();
  ASSERT_TRUE(session->waitForTerminal("Password:", kWait)) << "no password prompt on the terminal:\n" << session->describe() << logs();
  ASSERT_TRUE(session->waitForEchoOff(kWait)) << session->describe();
  session->type(m_adminPassword + "-wrong");

  const int exitCode = session->wait(kWait);
  EXPECT_EQ(exitCode, kNotAuthorizedExit) << session->describe() << logs();
  EXPECT_TRUE(session->out().empty()) << "nothing is revealed: " << session->describe();
  EXPECT_TRUE(contains(session->err(), "NotAuthorized")) << session->describe();
  EXPECT_TRUE(contains(session->err(), kExportSecretAction)) << session->describe();
  EXPECT_FALSE(contains(session->err(), m_rootReveal.substr(0, m_rootReveal.size() - 1))) << session->describe();
  EXPECT_TRUE(contains(session->terminal(), "AUTHENTICATION FAILED")) << session->describe();
  EXPECT_TRUE(contains(session->err(), "authentication did not succeed")) << session->describe();
  EXPECT_FALSE(contains(session->terminal(), m_adminPassword)) << "the password was echoed: " << session->describe();
  // A refusal is audited as such.
  auto results = auditedResultsOfNone();
  ASSERT_EQ(results.size(), 1U);
  EXPECT_EQ(results[0].rfind("denied", 0), 0U) << results[0];
}

// Scenario C: --no-ask-password on a terminal: no agent, no prompt, refused at once with the hint
// that authentication is required.
TEST_F(InteractiveAuth, NoAskPasswordOnATerminalIsRefusedAtOnceWithoutAPrompt) {
  const auto started = Clock::now();
  auto session = revealAsNone({"--no-ask-password"});
  const int exitCode = session->wait(kWait);
  const auto took = Clock::now() - started;
  EXPECT_EQ(exitCode, kNotAuthorizedExit) << session->describe() << logs();
  EXPECT_LT(took, 5s) << "refused at once, without waiting for anyone: " << session->describe();
  EXPECT_TRUE(session->out().empty()) << session->describe();
  EXPECT_TRUE(contains(session->err(), "NotAuthorized")) << session->describe();
  EXPECT_TRUE(contains(session->err(), kExportSecretAction)) << session->describe();
  EXPECT_TRUE(contains(session->err(), "authentication is required")) << session->describe();
  EXPECT_TRUE(session->terminal().empty()) << "nothing is asked on the terminal: " << session->describe();
  EXPECT_TRUE(session->agents().empty()) << session->describe();
  EXPECT_FALSE(contains(m_polkit->log(), "unix-process:" + std::to_string(session->pid()) + ":"))
      << "no agent registered for zerobytectl: " << m_polkit->log();
}

}  // namespace
