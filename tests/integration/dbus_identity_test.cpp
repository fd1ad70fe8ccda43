// Who a D-Bus caller is, and what bus signals give away: the uid is the one the client connected
// with (not a real uid read from /proc), and broadcast signals carry no values of the resources
// they are about.
#include "tests/integration/harness.h"
#include "tests/support/polkit_env.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace zbtest {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBusctl = "/usr/bin/busctl";
// dbus-monitor (package dbus-bin) writes each message as it comes, and works as any user.

// The job number in busctl's output of a call that returned a job's object.
uint64_t jobIdOf(const std::string& out) {
  auto at = out.rfind("/jobs/");
  if (at == std::string::npos) throw std::runtime_error("no job object in: " + out);
  return std::stoull(out.substr(at + 6));
}

class DbusIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    PolkitEnvironmentOptions options;
    options.startPolkitd = false;  // groups mode: the bus alone
    m_bus = std::make_unique<OwnedPolkitEnvironment>(options);
    Daemon::Options daemonOptions;
    daemonOptions.extraEnvironment = {m_bus->environmentEntry()};
    m_daemon = std::make_unique<Daemon>(daemonOptions);
    m_daemon->start();
    for (int i = 0; i < 100 && !onBus(); ++i) std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(onBus()) << m_daemon->log();
  }

  bool onBus() { return m_daemon->log().find("serving org.zerobyte.Daemon1 on the system bus") != std::string::npos; }

  // busctl with the test bus; `euid`: run with real uid 0 but this effective uid (saved uid 0).
  CommandResult busctl(std::vector<std::string> args, std::optional<uid_t> euid = std::nullopt) {
    args.insert(args.begin(), {kBusctl, "--address=" + m_bus->busAddress(), "--timeout=20"});
    if (!euid) return run(args);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], 1);
      dup2(out[1], 2);
      if (setgroups(0, nullptr) != 0 || setresuid(0, *euid, 0) != 0) _exit(126);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    CommandResult r;
    char buf[4096];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof(buf))) > 0) r.out.append(buf, static_cast<size_t>(n));
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
  }

  std::unique_ptr<OwnedPolkitEnvironment> m_bus;
  std::unique_ptr<Daemon> m_daemon;  // after the bus: stops first
};

// A process whose real uid is root but which connected to the bus as another user is that user:
// polkit sees the uid it connected with, and so must the daemon (reading the real uid from
// /proc/PID would make it root, and a pid can even be reused by another process).
TEST_F(DbusIdentity, TheCallerIsTheUidItConnectedWithNotItsRealUid) {
  const RoleUser& none = roleUser("none");
  auto asRoot = busctl({"call", "org.zerobyte.Daemon1", "/org/zerobyte/Daemon1/Manager", "org.zerobyte.Daemon1.Manager", "ListAudit",
                        "a{sv}", "1", "auth.no_user_interaction", "b", "true"});
  ASSERT_EQ(asRoot.exitCode, 0) << asRoot.out << asRoot.err;

  auto asUser = busctl({"call", "org.zerobyte.Daemon1", "/org/zerobyte/Daemon1/Manager", "org.zerobyte.Daemon1.Manager", "ListAudit",
                        "a{sv}", "1", "auth.no_user_interaction", "b", "true"},
                       none.uid);
  EXPECT_NE(asUser.exitCode, 0) << "a process with real uid 0 and effective uid " << none.uid << " read the audit trail:\n" << asUser.out;
  EXPECT_NE(asUser.out.find("not authorized to admin"), std::string::npos) << asUser.out;
  // The audit trail names the uid it connected with.
  auto audit = m_daemon->ctlJson({"audit", "--action", "admin"});
  EXPECT_NE(audit.dump().find("\"caller_uid\":" + std::to_string(none.uid)), std::string::npos) << audit.dump();
}

// Signals go to every client on the bus that asks for them: what they say about a volume, a
// repository or a job must be nothing a user without a role could not read.
TEST_F(DbusIdentity, BroadcastSignalsCarryNoValuesOfTheResources) {
  const std::string marker = "zbtsignalmarker";
  const std::string data = m_daemon->dir() + "/" + marker + "-data";
  ASSERT_EQ(::mkdir(data.c_str(), 0755), 0);
  {
    std::ofstream(data + "/file") << "contents";
  }
  // Everything a user without a role receives while root creates resources and runs a backup: any
  // client may subscribe to the daemon's signals.
  const RoleUser& none = roleUser("none");
  auto monitorOut = m_daemon->dir() + "/monitor.txt";
  int fd = ::open(monitorOut.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  pid_t monitor = fork();
  if (monitor == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    if (setgroups(0, nullptr) != 0 || setresgid(none.gid, none.gid, none.gid) != 0 || setresuid(none.uid, none.uid, none.uid) != 0)
      _exit(126);
    std::string address = m_bus->busAddress();
    execl("/usr/bin/dbus-monitor", "dbus-monitor", "--address", address.c_str(), "type='signal',sender='org.zerobyte.Daemon1'",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fd);
  ownProcess(monitor);
  std::this_thread::sleep_for(700ms);

  auto volume = busctl({"call", "org.zerobyte.Daemon1", "/org/zerobyte/Daemon1/Manager", "org.zerobyte.Daemon1.Manager", "CreateVolume",
                        "sssa{sv}", marker + "-volume", "directory", data, "0"});
  ASSERT_EQ(volume.exitCode, 0) << volume.out << volume.err;
  auto repository = busctl({"call", "org.zerobyte.Daemon1", "/org/zerobyte/Daemon1/Manager", "org.zerobyte.Daemon1.Manager",
                            "CreateRepository", "sssa{sv}", marker + "-repository", "local", m_daemon->dir() + "/" + marker + "-repo", "0"});
  ASSERT_EQ(repository.exitCode, 0) << repository.out << repository.err;
  ASSERT_EQ(m_daemon->waitForJob(jobIdOf(repository.out), 60000).at("state"), "succeeded") << m_daemon->log();
  auto backup = busctl({"call", "org.zerobyte.Daemon1", "/org/zerobyte/Daemon1/Manager", "org.zerobyte.Daemon1.Manager", "StartBackup",
                        "ssa{sv}", marker + "-volume", marker + "-repository", "1", "tags", "as", "1", marker + "-tag"});
  ASSERT_EQ(backup.exitCode, 0) << backup.out << backup.err;
  ASSERT_EQ(m_daemon->waitForJob(jobIdOf(backup.out), 60000).at("state"), "succeeded") << m_daemon->log();
  std::this_thread::sleep_for(500ms);
  ::kill(monitor, SIGTERM);
  ::waitpid(monitor, nullptr, 0);
  disownProcess(monitor);

  std::ifstream in(monitorOut);
  std::string seen((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The monitor saw the objects come and change...
  EXPECT_NE(seen.find("InterfacesAdded"), std::string::npos) << seen;
  EXPECT_NE(seen.find("PropertiesChanged"), std::string::npos) << seen;
  // ...but not a name, path or tag of them.
  EXPECT_EQ(seen.find(marker), std::string::npos) << seen;
}

}  // namespace
}  // namespace zbtest
