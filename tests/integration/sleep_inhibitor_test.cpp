// The sleep inhibitor with a real logind: systemd-logind (Debian's, /lib/systemd/systemd-logind) on a private
// system bus, and zerobyted asking it for a "sleep" lock while a job runs.
#include "tests/integration/harness.h"
#include "tests/integration/remote_helpers.h"
#include "tests/support/polkit_env.h"
#include "tests/support/test_servers.h"

#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

extern char** environ;

namespace zbtest {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kLogind = "/lib/systemd/systemd-logind";

// logind's inhibitor list: (what, who, why, mode, uid, pid).
using Inhibitor = std::tuple<std::string, std::string, std::string, std::string, uint32_t, uint32_t>;

std::vector<Inhibitor> listInhibitors() {
  auto connection = sdbus::createSystemBusConnection();
  auto proxy = sdbus::createProxy(*connection, "org.freedesktop.login1", "/org/freedesktop/login1");
  std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, uint32_t, uint32_t>> list;
  proxy->callMethod("ListInhibitors").onInterface("org.freedesktop.login1.Manager").storeResultsTo(list);
  std::vector<Inhibitor> out;
  for (const auto& i : list) out.emplace_back(i.get<0>(), i.get<1>(), i.get<2>(), i.get<3>(), i.get<4>(), i.get<5>());
  return out;
}

std::vector<Inhibitor> zerobytedInhibitors() {
  std::vector<Inhibitor> mine;
  for (const auto& i : listInhibitors())
    if (std::get<1>(i) == "zerobyted") mine.push_back(i);
  return mine;
}

// systemd-logind on the environment's bus (DBUS_SYSTEM_BUS_ADDRESS, which the environment set), stopped by pid.
class Logind {
 public:
  Logind() {
    const char* argv[] = {kLogind, nullptr};
    if (posix_spawn(&m_pid, kLogind, nullptr, nullptr, const_cast<char**>(argv), environ) != 0) m_pid = -1;
    if (m_pid > 0) ownProcess(m_pid);
  }
  ~Logind() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGTERM);
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    disownProcess(m_pid);
  }
  Logind(const Logind&) = delete;
  Logind& operator=(const Logind&) = delete;
  bool waitUntilServing() {
    return eventually(
        [] {
          try {
            listInhibitors();
            return true;
          } catch (const sdbus::Error&) {
            return false;
          }
        },
        10000);
  }

 private:
  pid_t m_pid = -1;
};

TEST(SleepInhibitor, RealLogindHoldsTheDaemonsSleepLockWhileABackupRunsAndNotAfter) {
  ASSERT_TRUE(fs::exists(kLogind)) << "systemd-logind is part of Debian's systemd package";
  PolkitEnvironmentOptions busOptions;
  busOptions.startPolkitd = false;
  OwnedPolkitEnvironment bus(busOptions);  // the harness reaps what it does not own
  Logind logind;
  ASSERT_TRUE(logind.waitUntilServing()) << "systemd-logind did not come up on the private bus: " << bus.log();
  ASSERT_TRUE(zerobytedInhibitors().empty());

  Daemon::Options options;
  options.extraEnvironment = {bus.environmentEntry()};
  Daemon d(options);
  d.start();
  const std::string data = d.dir() + "/data";
  makeSimpleTree(data, 20);
  ASSERT_EQ(d.ctl({"volume", "create", "home", "--path", data}).exitCode, 0);
  ASSERT_EQ(d.ctl({"repo", "create", "main", "--path", d.dir() + "/repo"}).exitCode, 0);
  // A job ran already (init): the lock came and went with it.
  EXPECT_TRUE(eventually([] { return zerobytedInhibitors().empty(); }, 10000));

  auto started = d.ctl({"backup", "home", "--repo", "main", "--json"});
  ASSERT_EQ(started.exitCode, 0) << describe(started);
  const uint64_t id = json::parse(started.out).at("job").at("id").get<uint64_t>();
  // Held where it is, so that the job is surely running while logind is asked.
  std::vector<pid_t> restic;
  for (int i = 0; i < 400 && restic.empty(); ++i) {
    restic = resticChildren(d, {"backup"});
    if (restic.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_EQ(restic.size(), 1u) << d.log();
  ASSERT_EQ(::kill(restic[0], SIGSTOP), 0);
  ASSERT_TRUE(eventually([] { return zerobytedInhibitors().size() == 1; }, 10000)) << d.log();
  const auto [what, who, why, mode, uid, pid] = zerobytedInhibitors().front();
  EXPECT_EQ(what, "sleep");
  EXPECT_EQ(mode, "block");
  EXPECT_EQ(uid, 0u);
  EXPECT_EQ(static_cast<pid_t>(pid), d.pid()) << "the daemon holds it, not restic";
  EXPECT_TRUE(contains(why, "restic")) << why;
  ASSERT_EQ(::kill(restic[0], SIGCONT), 0);

  json job = d.waitForJob(id);
  EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();
  EXPECT_TRUE(eventually([] { return zerobytedInhibitors().empty(); }, 10000)) << "released when no job runs";
  EXPECT_FALSE(contains(d.log(), "logind gave no sleep inhibitor")) << d.log();
}

}  // namespace
}  // namespace zbtest
