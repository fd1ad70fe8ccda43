// Integration test of the access model over D-Bus: the role matrix of roles_test.cpp, with every request made
// by a role user's own bus connection (the daemon learns the caller from the bus and, in polkit mode, asks
// real polkitd about the "system-bus-name" subject). The answers are those of the socket, under the D-Bus
// error names org.zerobyte.Daemon1.Error.<Name>.
#include "tests/integration/harness.h"
#include "tests/support/polkit_env.h"

#include "dbus/org.zerobyte.Daemon1.Job.proxy.h"
#include "dbus/org.zerobyte.Daemon1.Manager.proxy.h"
#include "dbus/org.zerobyte.Daemon1.Repository.proxy.h"
#include "dbus/org.zerobyte.Daemon1.Volume.proxy.h"

#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using zbtest::CommandResult;
using zbtest::describe;
using zbtest::Daemon;
using zbtest::ownedDirectory;
using zbtest::writeOwnedFile;

constexpr const char* kBusName = "org.zerobyte.Daemon1";
constexpr const char* kManagerPath = "/org/zerobyte/Daemon1/Manager";
constexpr const char* kNotAuthorized = "org.zerobyte.Daemon1.Error.NotAuthorized";
constexpr const char* kNotFound = "org.zerobyte.Daemon1.Error.NotFound";
constexpr auto kJobTimeout = std::chrono::seconds(120);
constexpr auto kBusWait = std::chrono::seconds(20);

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }



// ---- the daemon's objects, through the proxies generated from the published XML ----

using Options = std::map<std::string, sdbus::Variant>;

// Every request says there is no agent to ask for a password (as zerobytectl without a terminal).
Options noInteraction(Options more = {}) {
  more.emplace("auth.no_user_interaction", sdbus::Variant(true));
  return more;
}

class ManagerProxy : public sdbus::ProxyInterfaces<org::zerobyte::Daemon1::Manager_proxy> {
 public:
  explicit ManagerProxy(sdbus::IConnection& connection) : ProxyInterfaces(connection, kBusName, kManagerPath) { registerProxy(); }
  ~ManagerProxy() { unregisterProxy(); }
};

class VolumeProxy : public sdbus::ProxyInterfaces<org::zerobyte::Daemon1::Volume_proxy> {
 public:
  VolumeProxy(sdbus::IConnection& connection, const std::string& path) : ProxyInterfaces(connection, kBusName, path) { registerProxy(); }
  ~VolumeProxy() { unregisterProxy(); }
};

class RepositoryProxy : public sdbus::ProxyInterfaces<org::zerobyte::Daemon1::Repository_proxy> {
 public:
  RepositoryProxy(sdbus::IConnection& connection, const std::string& path) : ProxyInterfaces(connection, kBusName, path) {
    registerProxy();
  }
  ~RepositoryProxy() { unregisterProxy(); }
};

class JobProxy : public sdbus::ProxyInterfaces<org::zerobyte::Daemon1::Job_proxy> {
 public:
  JobProxy(sdbus::IConnection& connection, const std::string& path) : ProxyInterfaces(connection, kBusName, path) { registerProxy(); }
  ~JobProxy() { unregisterProxy(); }

 private:
  // The job is followed by reading its properties; the connection is not processed for signals.
  void onCompleted(const bool&, const std::string&) override {}
};

// Follows a job by its properties, as the client that started it, until it has ended.
json followJob(sdbus::IConnection& connection, const std::string& path) {
  JobProxy job(connection, path);
  const auto deadline = std::chrono::steady_clock::now() + kJobTimeout;
  std::string state = job.State();
  while ((state == "queued" || state == "running") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    state = job.State();
  }
  return {{"job", path}, {"state", state}, {"operation", job.Operation()}, {"run_as_uid", job.RunAsUID()}, {"message", job.Message()}};
}

// ---- who asks, and what they get ----

// A role user of the test environment, or root.
struct Subject {
  std::string role;  // none, viewer, operator, admin, root
  std::string user;  // the user name ("root" for root)
  uid_t uid = 0;
  gid_t gid = 0;
};

std::vector<Subject> subjects() {
  std::vector<Subject> out;
  for (const auto& u : zbtest::roleUsers()) out.push_back({u.role, u.name, u.uid, u.gid});
  out.push_back({"root", "root", 0, 0});
  return out;
}

const Subject kRoot{"root", "root", 0, 0};

bool oneOf(const std::string& role, std::initializer_list<const char*> roles) {
  return std::any_of(roles.begin(), roles.end(), [&](const char* r) { return role == r; });
}

// What one subject's calls came back with.
struct BusResult {
  std::string error;    // "" when every call succeeded, else the D-Bus error name of the first that failed
  std::string message;  // that error's message
  json reply;           // what the calls returned
  std::string raw;      // the child's output, for failure messages
};

std::string describe(const BusResult& r) { return "error: " + r.error + "\nmessage: " + r.message + "\nreply: " + r.reply.dump(); }

// Fields of a reply that may be missing (when a call failed): "" and -1 then.
std::string text(const json& reply, const char* key) {
  return reply.is_object() && reply.contains(key) && reply[key].is_string() ? reply[key].get<std::string>() : std::string();
}
int64_t number(const json& reply, const char* key) {
  return reply.is_object() && reply.contains(key) && reply[key].is_number() ? reply[key].get<int64_t>() : -1;
}

// Runs `calls` in a child that has become the subject, on a system-bus connection of its own (the daemon
// takes the caller's uid from the bus).
BusResult onBus(const Subject& s, const std::function<json(sdbus::IConnection&)>& calls) {
  std::string text = zbtest::inChildAs(s.user, [&] {
    json out = json::object();
    try {
      auto connection = sdbus::createSystemBusConnection();
      out["reply"] = calls(*connection);
    } catch (const sdbus::Error& e) {
      out["error"] = e.getName();
      out["message"] = e.getMessage();
    }
    return out.dump();
  });
  BusResult r;
  r.raw = text;
  json parsed = json::parse(text, nullptr, false);
  if (!parsed.is_object()) {
    r.error = "(the child running as " + s.user + " gave no answer)";
    r.message = text;
    return r;
  }
  r.error = parsed.value("error", "");
  r.message = parsed.value("message", "");
  r.reply = parsed.value("reply", json());
  return r;
}

void expectDone(const BusResult& r, const std::string& who) { EXPECT_EQ(r.error, "") << who << ": " << describe(r); }

// A job that was started and followed to its end: it succeeded.
void expectJobSucceeded(const BusResult& r, const std::string& who) {
  EXPECT_EQ(r.error, "") << who << ": " << describe(r);
  EXPECT_EQ(text(r.reply, "state"), "succeeded") << who << ": " << describe(r);
}

void expectRefused(const BusResult& r, const std::string& action, const std::string& who) {
  EXPECT_EQ(r.error, kNotAuthorized) << who << ": " << describe(r);
  EXPECT_TRUE(contains(r.message, "org.zerobyte.daemon1." + action)) << who << ": " << describe(r);
}

// A refusal of something the subject may see (NotAuthorized naming the polkit action), or of something they
// may not even see (NotFound, the same answer as for a name that does not exist).
void expectRefusedOrHidden(const BusResult& r, const std::string& action, const std::string& who, bool sees) {
  if (sees) return expectRefused(r, action, who);
  EXPECT_EQ(r.error, kNotFound) << who << ": " << describe(r);
}

enum class Mode { Groups, Polkit };

std::string modeName(const testing::TestParamInfo<Mode>& info) { return info.param == Mode::Polkit ? "Polkit" : "Groups"; }

// A daemon on a private system bus in one authorization mode (polkit: with polkitd on the bus; groups: the bus
// alone), with root's volume and repository and one snapshot in it.
class DbusAccessModel : public testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    zbtest::roleUsers();
    zbtest::PolkitEnvironmentOptions busOptions;
    busOptions.startPolkitd = GetParam() == Mode::Polkit;
    m_bus = std::make_unique<zbtest::OwnedPolkitEnvironment>(busOptions);
    Daemon::Options options;
    options.extraEnvironment = {m_bus->environmentEntry()};
    options.extraDaemonSettings = GetParam() == Mode::Polkit ? "  authorization: polkit\n" : std::string(zbtest::kGroupModeDaemonSetting);
    m_daemon = std::make_unique<Daemon>(options);
    m_daemon->start();
    ASSERT_TRUE(waitForBusName()) << "zerobyted did not take " << kBusName << " on the bus:\n" << m_daemon->log() << "\n" << m_bus->log();
    BusResult mode = onBus(kRoot, [](sdbus::IConnection& c) { return json(ManagerProxy(c).AuthorizationMode()); });
    ASSERT_EQ(mode.reply, GetParam() == Mode::Polkit ? "polkit" : "groups") << describe(mode);

    std::string data = ownedDirectory(*m_daemon, "rootdata", 0, 0, 0755);
    writeOwnedFile(data + "/hello.txt", "hello from root\n", 0, 0, 0644);
    ASSERT_EQ(m_daemon->ctl({"volume", "create", "rootvol", "--path", data}).exitCode, 0);
    CommandResult repo = m_daemon->ctl({"repo", "create", "rootrepo", "--path", m_daemon->dir() + "/rootrepo"});
    ASSERT_EQ(repo.exitCode, 0) << describe(repo);
    CommandResult backup = m_daemon->ctl({"backup", "rootvol", "--repo", "rootrepo", "--follow"});
    ASSERT_EQ(backup.exitCode, 0) << describe(backup);
    m_rootVolume = volumeObject("rootvol");
    m_rootRepository = repositoryObject("rootrepo");
    ASSERT_FALSE(m_rootVolume.empty());
    ASSERT_FALSE(m_rootRepository.empty());
  }

  void TearDown() override {
    if (m_daemon) m_daemon->stop();
    m_daemon.reset();
    m_bus.reset();
  }

  // The daemon connects to the bus on its own schedule: it is there once it says so.
  bool waitForBusName() {
    const auto deadline = std::chrono::steady_clock::now() + kBusWait;
    while (std::chrono::steady_clock::now() < deadline) {
      if (contains(m_daemon->log(), "serving org.zerobyte.Daemon1 on the system bus")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // zerobyted still answers on the bus after `what`; if it died, how.
  testing::AssertionResult answersAfter(const std::string& what) {
    BusResult status = onBus(kRoot, [](sdbus::IConnection& c) { return json(ManagerProxy(c).GetStatus(noInteraction()).size()); });
    if (status.error.empty() && m_daemon->running()) return testing::AssertionSuccess();
    std::string how = "it is still running";
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(m_daemon->pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == m_daemon->pid())
      how = info.si_code == CLD_EXITED
                ? "it exited with status " + std::to_string(info.si_status)
                : "it was killed by signal " + std::to_string(info.si_status) + " (" + strsignal(info.si_status) + ")";
    return testing::AssertionFailure() << "zerobyted no longer answers on the bus after " << what << " (" << how
                                       << "); GetStatus as root: " << describe(status);
  }

  // Object paths, as root finds them.
  std::string volumeObject(const std::string& name) {
    BusResult r = onBus(kRoot, [&](sdbus::IConnection& c) {
      return json(std::string(ManagerProxy(c).FindVolume(name, noInteraction())));
    });
    EXPECT_EQ(r.error, "") << name << ": " << describe(r);
    return r.reply.is_string() ? r.reply.get<std::string>() : std::string();
  }
  std::string repositoryObject(const std::string& name) {
    BusResult r = onBus(kRoot, [&](sdbus::IConnection& c) {
      return json(std::string(ManagerProxy(c).FindRepository(name, noInteraction())));
    });
    EXPECT_EQ(r.error, "") << name << ": " << describe(r);
    return r.reply.is_string() ? r.reply.get<std::string>() : std::string();
  }

  std::unique_ptr<zbtest::OwnedPolkitEnvironment> m_bus;
  std::unique_ptr<Daemon> m_daemon;
  std::string m_rootVolume;
  std::string m_rootRepository;
};

// Role × action over D-Bus: the same answers as over the socket, whether polkit or the groups decide.
TEST_P(DbusAccessModel, EveryRoleGetsExactlyItsActions) {
  for (const Subject& s : subjects()) {
    SCOPED_TRACE("role " + s.role);
    const std::string who = s.role;
    const bool seesAll = s.role != "none";
    const bool runsAll = oneOf(s.role, {"operator", "admin", "root"});
    const bool managesAll = oneOf(s.role, {"admin", "root"});

    // status: for everyone; where the master key comes from, for administrators only.
    BusResult status = onBus(s, [](sdbus::IConnection& c) {
      auto record = ManagerProxy(c).GetStatus(noInteraction());
      return json{{"version", record.count("version") ? record.at("version").get<std::string>() : std::string()},
                  {"master_key", record.count("master_key") != 0}};
    });
    expectDone(status, who);
    EXPECT_NE(text(status.reply, "version"), "") << who << ": " << describe(status);
    EXPECT_EQ(status.reply.is_object() && status.reply.value("master_key", false), managesAll) << who << ": " << describe(status);

    // view: everyone's resources for viewers and up; what one may not see does not exist, and its
    // object's properties cannot be read.
    BusResult list = onBus(s, [](sdbus::IConnection& c) {
      json paths = json::array();
      for (const auto& p : ManagerProxy(c).ListVolumes(noInteraction())) paths.push_back(std::string(p));
      return paths;
    });
    ASSERT_EQ(list.error, "") << describe(list);
    EXPECT_EQ(contains(list.reply.dump(), "\"" + m_rootVolume + "\""), seesAll) << who << ": " << describe(list);
    BusResult find = onBus(s, [](sdbus::IConnection& c) {
      return json(std::string(ManagerProxy(c).FindRepository("rootrepo", noInteraction())));
    });
    if (seesAll) {
      EXPECT_EQ(find.error, "") << who << ": " << describe(find);
      EXPECT_EQ(find.reply, m_rootRepository) << who;
    } else {
      EXPECT_EQ(find.error, kNotFound) << who << ": " << describe(find);
    }
    BusResult name = onBus(s, [&](sdbus::IConnection& c) { return json(RepositoryProxy(c, m_rootRepository).Name()); });
    if (seesAll) {
      EXPECT_EQ(name.error, "") << who << ": " << describe(name);
      EXPECT_EQ(name.reply, "rootrepo") << who;
    } else {
      EXPECT_EQ(name.error, kNotFound) << who << ": " << describe(name);
    }

    // backup of root's volume into root's repository, followed by its job's properties.
    BusResult backup = onBus(s, [](sdbus::IConnection& c) {
      return followJob(c, ManagerProxy(c).StartBackup("rootvol", "rootrepo", noInteraction()));
    });
    if (runsAll) {
      expectJobSucceeded(backup, who);
      EXPECT_EQ(text(backup.reply, "operation"), "backup") << who;
      EXPECT_EQ(number(backup.reply, "run_as_uid"), 0) << "root's volume is read as root";
    } else {
      expectRefusedOrHidden(backup, "backup", who, seesAll);
    }

    // restore into a directory of the subject's own: as the subject, unless an admin asks. An
    // operator cannot read root's repository: root's restic reads it and tar writes as the operator.
    std::string target = ownedDirectory(*m_daemon, "restore-" + s.role, s.uid, s.gid);
    BusResult restore = onBus(s, [&](sdbus::IConnection& c) {
      return followJob(c, ManagerProxy(c).StartRestore("rootrepo", "latest", target, noInteraction()));
    });
    if (runsAll) {
      expectJobSucceeded(restore, who);
      EXPECT_EQ(text(restore.reply, "operation"), "restore") << who;
      EXPECT_EQ(number(restore.reply, "run_as_uid"), managesAll ? 0 : static_cast<int64_t>(s.uid)) << describe(restore);
      struct stat st {};
      std::string restored = target + m_daemon->dir() + "/rootdata/hello.txt";
      EXPECT_EQ(stat(restored.c_str(), &st), 0) << restored;
      EXPECT_EQ(st.st_uid, managesAll ? 0u : s.uid) << who << ": whose the restored files are";
    } else {
      expectRefusedOrHidden(restore, "restore", who, seesAll);
    }

    // manage someone else's resources (root's): admins only. The objects are root's to name; the subject
    // calls them by path.
    std::string scratch = ownedDirectory(*m_daemon, "scratch-" + s.role, 0, 0, 0755);
    ASSERT_EQ(m_daemon->ctl({"volume", "create", "scratch-" + s.role, "--path", scratch}).exitCode, 0);
    CommandResult scratchRepo =
        m_daemon->ctl({"repo", "create", "scratchrepo-" + s.role, "--path", m_daemon->dir() + "/scratchrepo-" + s.role});
    ASSERT_EQ(scratchRepo.exitCode, 0) << describe(scratchRepo);
    std::string scratchVolume = volumeObject("scratch-" + s.role);
    std::string scratchRepository = repositoryObject("scratchrepo-" + s.role);
    BusResult delVolume = onBus(s, [&](sdbus::IConnection& c) {
      VolumeProxy(c, scratchVolume).Delete(noInteraction());
      return json();
    });
    ASSERT_TRUE(answersAfter(who + "'s Volume.Delete of " + scratchVolume));
    BusResult delRepository = onBus(s, [&](sdbus::IConnection& c) {
      RepositoryProxy(c, scratchRepository).Delete(noInteraction());
      return json();
    });
    ASSERT_TRUE(answersAfter(who + "'s Repository.Delete of " + scratchRepository));
    if (managesAll) {
      expectDone(delVolume, who);
      expectDone(delRepository, who);
      EXPECT_EQ(m_daemon->ctl({"volume", "show", "scratch-" + s.role}).exitCode, 4) << who << ": the volume is gone";
      EXPECT_EQ(m_daemon->ctl({"repo", "show", "scratchrepo-" + s.role}).exitCode, 4) << who << ": the repository is gone";
    } else {
      expectRefusedOrHidden(delVolume, "manage", who, seesAll);
      expectRefusedOrHidden(delRepository, "manage", who, seesAll);
      EXPECT_EQ(m_daemon->ctl({"volume", "show", "scratch-" + s.role}).exitCode, 0) << who << ": the volume is still there";
      EXPECT_EQ(m_daemon->ctl({"repo", "show", "scratchrepo-" + s.role}).exitCode, 0) << who << ": the repository is still there";
    }

    // mount: admins only. The decision comes first; an admin is then told that a directory has nothing to mount.
    BusResult mount = onBus(s, [&](sdbus::IConnection& c) {
      VolumeProxy(c, m_rootVolume).Mount(noInteraction());
      return json(nullptr);
    });
    if (managesAll) {
      EXPECT_EQ(mount.error, "org.zerobyte.Daemon1.Error.InvalidArgument") << who << ": " << describe(mount);
      EXPECT_TRUE(contains(mount.message, "only network volumes are mounted")) << who << ": " << describe(mount);
    } else {
      expectRefusedOrHidden(mount, "mount", who, seesAll);
    }

    // export-secret and admin.
    BusResult reveal = onBus(s, [&](sdbus::IConnection& c) {
      return json(RepositoryProxy(c, m_rootRepository).RevealPassword(noInteraction()));
    });
    if (managesAll) {
      expectDone(reveal, who);
      EXPECT_GE(reveal.reply.is_string() ? reveal.reply.get<std::string>().size() : 0U, 16U) << who;
    } else {
      expectRefusedOrHidden(reveal, "export-secret", who, seesAll);
    }
    BusResult audit = onBus(s, [](sdbus::IConnection& c) {
      return json(ManagerProxy(c).ListAudit(noInteraction({{"limit", sdbus::Variant(int64_t{1})}})).size());
    });
    if (managesAll) {
      expectDone(audit, who);
      EXPECT_EQ(audit.reply, 1) << who << ": at most \"limit\" entries, and there are some";
    } else {
      expectRefused(audit, "admin", who);
    }

    // Everyone has resources of their own: a volume they can read, a repository where they can
    // write, a backup between them, run as themselves (admins' resources run as root). These go
    // through the objects' own methods (Volume.Backup, Repository.Restore).
    std::string own = ownedDirectory(*m_daemon, "own-" + s.role, s.uid, s.gid);
    writeOwnedFile(own + "/mine.txt", "mine\n", s.uid, s.gid, 0600);
    std::string ownRepo = ownedDirectory(*m_daemon, "ownrepo-" + s.role, s.uid, s.gid);
    BusResult v = onBus(s, [&](sdbus::IConnection& c) {
      return json(std::string(ManagerProxy(c).CreateVolume("own-" + s.role, "directory", own, noInteraction())));
    });
    expectDone(v, who);
    BusResult rc = onBus(s, [&](sdbus::IConnection& c) {
      auto [repository, job] = ManagerProxy(c).CreateRepository("ownrepo-" + s.role, "local", ownRepo + "/restic", noInteraction());
      json followed = followJob(c, job);
      followed["repository"] = std::string(repository);
      return followed;
    });
    expectJobSucceeded(rc, who);
    EXPECT_EQ(text(rc.reply, "operation"), "init") << who;
    const std::string ownVolume = v.reply.is_string() ? v.reply.get<std::string>() : std::string();
    const std::string ownRepository = text(rc.reply, "repository");
    BusResult b = onBus(s, [&](sdbus::IConnection& c) {
      return followJob(c, VolumeProxy(c, ownVolume).Backup(sdbus::ObjectPath(ownRepository), noInteraction()));
    });
    expectJobSucceeded(b, who);
    EXPECT_EQ(number(b.reply, "run_as_uid"), managesAll ? 0 : static_cast<int64_t>(s.uid)) << who;
    // One user's data never goes into another user's repository (restic, running as one of them, would hold
    // both the data and the repository's password).
    if (runsAll && !managesAll) {
      BusResult cross = onBus(s, [&](sdbus::IConnection& c) {
        return json(std::string(ManagerProxy(c).StartBackup("rootvol", "ownrepo-" + s.role, noInteraction())));
      });
      EXPECT_EQ(cross.error, kNotAuthorized) << who << ": " << describe(cross);
      EXPECT_TRUE(contains(cross.message, "back up into a repository of the same owner")) << describe(cross);
    }
    std::string back = ownedDirectory(*m_daemon, "ownrestore-" + s.role, s.uid, s.gid);
    BusResult rs = onBus(s, [&](sdbus::IConnection& c) {
      return followJob(c, RepositoryProxy(c, ownRepository).Restore("latest", back, noInteraction()));
    });
    expectJobSucceeded(rs, who);
    struct stat st {};
    EXPECT_EQ(stat((back + own + "/mine.txt").c_str(), &st), 0) << who;
    BusResult mine = onBus(s, [&](sdbus::IConnection& c) {
      std::string path = ManagerProxy(c).FindVolume("own-" + s.role, noInteraction());
      return json{{"path", path}, {"owner_uid", VolumeProxy(c, path).OwnerUID()}};
    });
    expectDone(mine, who);
    EXPECT_EQ(text(mine.reply, "path"), ownVolume) << who;
    EXPECT_EQ(number(mine.reply, "owner_uid"), static_cast<int64_t>(s.uid)) << who;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, DbusAccessModel, testing::Values(Mode::Groups, Mode::Polkit), modeName);

}  // namespace
