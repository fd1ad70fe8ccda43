// End-to-end tests of the D-Bus API (org.zerobyte.Daemon1): the real zerobyted on a private system
// bus with the project's bus policy, driven through the generated proxies as root and as a user
// without a role, with real restic; and the daemon's behaviour when the bus is missing, restarts,
// or a client leaves in the middle of things.
#include "tests/integration/harness.h"
#include "tests/support/polkit_env.h"
#include "tests/support/test_servers.h"

#include "dbus/org.zerobyte.Daemon1.Job.proxy.h"
#include "dbus/org.zerobyte.Daemon1.Manager.proxy.h"
#include "dbus/org.zerobyte.Daemon1.Repository.proxy.h"
#include "dbus/org.zerobyte.Daemon1.Schedule.proxy.h"
#include "dbus/org.zerobyte.Daemon1.Volume.proxy.h"

#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace zbtest {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Vardict = std::map<std::string, sdbus::Variant>;
using ManagedObjects = std::map<sdbus::ObjectPath, std::map<std::string, Vardict>>;

constexpr const char* kBusName = "org.zerobyte.Daemon1";
constexpr const char* kRootPath = "/org/zerobyte/Daemon1";
constexpr const char* kManagerPath = "/org/zerobyte/Daemon1/Manager";
constexpr const char* kManagerIface = "org.zerobyte.Daemon1.Manager";
constexpr const char* kVolumeIface = "org.zerobyte.Daemon1.Volume";
constexpr const char* kRepositoryIface = "org.zerobyte.Daemon1.Repository";
constexpr const char* kJobIface = "org.zerobyte.Daemon1.Job";
constexpr const char* kScheduleIface = "org.zerobyte.Daemon1.Schedule";
constexpr const char* kPropertiesIface = "org.freedesktop.DBus.Properties";
constexpr const char* kErrorPrefix = "org.zerobyte.Daemon1.Error.";
constexpr const char* kRestic = "/usr/bin/restic";

// Every wait for the daemon or restic is bounded by this unless a test says otherwise.
constexpr auto kJobTimeout = 60s;

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

bool pollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

std::string errorName(const std::string& shortName) { return kErrorPrefix + shortName; }

// The D-Bus error a call fails with ("name: message"), or "" when it succeeds.
std::string failureOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const sdbus::Error& e) {
    return e.getName() + ": " + e.getMessage();
  }
  return "";
}

// Only the error's name.
std::string errorOf(const std::function<void()>& call) {
  std::string failure = failureOf(call);
  return failure.substr(0, failure.find(':'));
}

// ---- reading a{sv} records ----

std::string text(const Vardict& d, const std::string& key) {
  auto it = d.find(key);
  if (it == d.end() || !it->second.containsValueOfType<std::string>()) return "";
  return it->second.get<std::string>();
}

// Integers of any D-Bus integer type; `otherwise` when absent or not an integer.
int64_t number(const Vardict& d, const std::string& key, int64_t otherwise = -1) {
  auto it = d.find(key);
  if (it == d.end()) return otherwise;
  const std::string type = it->second.peekValueType();
  if (type == "x") return it->second.get<int64_t>();
  if (type == "t") return static_cast<int64_t>(it->second.get<uint64_t>());
  if (type == "i") return it->second.get<int32_t>();
  if (type == "u") return it->second.get<uint32_t>();
  return otherwise;
}

std::vector<std::string> texts(const Vardict& d, const std::string& key) {
  auto it = d.find(key);
  if (it == d.end() || !it->second.containsValueOfType<std::vector<std::string>>()) return {};
  return it->second.get<std::vector<std::string>>();
}

Vardict record(const Vardict& d, const std::string& key) {
  auto it = d.find(key);
  if (it == d.end() || !it->second.containsValueOfType<Vardict>()) return {};
  return it->second.get<Vardict>();
}

std::string describe(const Vardict& d) {
  std::string out = "{";
  for (const auto& [key, value] : d) {
    out += key + ":" + value.peekValueType();
    if (value.containsValueOfType<std::string>()) out += "=\"" + value.get<std::string>() + "\"";
    int64_t n = number(d, key, INT64_MIN);
    if (n != INT64_MIN) out += "=" + std::to_string(n);
    out += " ";
  }
  return out + "}";
}

uint64_t jobIdOf(const std::string& path) { return std::stoull(path.substr(path.rfind('/') + 1)); }

std::vector<std::string> strings(const std::vector<sdbus::ObjectPath>& paths) { return {paths.begin(), paths.end()}; }

bool listed(const std::vector<sdbus::ObjectPath>& paths, const std::string& path) {
  return std::find(paths.begin(), paths.end(), sdbus::ObjectPath(path)) != paths.end();
}

// ---- proxies over the generated interfaces ----

// Signals are read through BusClient's matches (installed before any call, so none is missed);
// the proxies' own handlers do nothing.
class ManagerProxy final
    : public sdbus::ProxyInterfaces<org::zerobyte::Daemon1::Manager_proxy, sdbus::Properties_proxy, sdbus::Introspectable_proxy> {
 public:
  explicit ManagerProxy(sdbus::IConnection& connection) : ProxyInterfaces(connection, kBusName, kManagerPath) { registerProxy(); }
  ~ManagerProxy() { unregisterProxy(); }

 private:
  void onPropertiesChanged(const std::string&, const Vardict&, const std::vector<std::string>&) override {}
};

class VolumeProxy final
    : public sdbus::ProxyInterfaces<org::zerobyte::Daemon1::Volume_proxy, sdbus::Properties_proxy, sdbus::Introspectable_proxy> {
 public:
  VolumeProxy(sdbus::IConnection& connection, const std::string& path) : ProxyInterfaces(connection, kBusName, path) { registerProxy(); }
  ~VolumeProxy() { unregisterProxy(); }

 private:
  void onPropertiesChanged(const std::string&, const Vardict&, const std::vector<std::string>&) override {}
};

class RepositoryProxy final
    : public sdbus::ProxyInterfaces<org::zerobyte::Daemon1::Repository_proxy, sdbus::Properties_proxy, sdbus::Introspectable_proxy> {
 public:
  RepositoryProxy(sdbus::IConnection& connection, const std::string& path) : ProxyInterfaces(connection, kBusName, path) {
    registerProxy();
  }
  ~RepositoryProxy() { unregisterProxy(); }

 private:
  void onPropertiesChanged(const std::string&, const Vardict&, const std::vector<std::string>&) override {}
};

class ScheduleProxy final
    : public sdbus::ProxyInterfaces<org::zerobyte::Daemon1::Schedule_proxy, sdbus::Properties_proxy, sdbus::Introspectable_proxy> {
 public:
  ScheduleProxy(sdbus::IConnection& connection, const std::string& path) : ProxyInterfaces(connection, kBusName, path) {
    registerProxy();
  }
  ~ScheduleProxy() { unregisterProxy(); }

 private:
  void onPropertiesChanged(const std::string&, const Vardict&, const std::vector<std::string>&) override {}
};

class JobProxy final
    : public sdbus::ProxyInterfaces<org::zerobyte::Daemon1::Job_proxy, sdbus::Properties_proxy, sdbus::Introspectable_proxy> {
 public:
  JobProxy(sdbus::IConnection& connection, const std::string& path) : ProxyInterfaces(connection, kBusName, path) { registerProxy(); }
  ~JobProxy() { unregisterProxy(); }

 private:
  void onCompleted(const bool&, const std::string&) override {}
  void onPropertiesChanged(const std::string&, const Vardict&, const std::vector<std::string>&) override {}
};

class ObjectsProxy final : public sdbus::ProxyInterfaces<sdbus::ObjectManager_proxy, sdbus::Introspectable_proxy> {
 public:
  explicit ObjectsProxy(sdbus::IConnection& connection) : ProxyInterfaces(connection, kBusName, kRootPath) { registerProxy(); }
  ~ObjectsProxy() { unregisterProxy(); }

 private:
  void onInterfacesAdded(const sdbus::ObjectPath&, const std::map<std::string, Vardict>&) override {}
  void onInterfacesRemoved(const sdbus::ObjectPath&, const std::vector<std::string>&) override {}
};

// ---- a bus client that records the signals it receives ----

struct Completion {
  bool success = false;
  std::string message;
  std::string destination;
};

struct Change {
  std::string interface;
  std::vector<std::string> changed;      // names of properties sent with values
  std::vector<std::string> invalidated;  // names of properties sent without
};

// One connection to the test's system bus. With `listen`, a thread runs its event loop and every
// Completed and PropertiesChanged from the daemon is recorded by object path. The tests that stop
// the bus use connections without that thread, and only while the bus is up.
class BusClient {
 public:
  explicit BusClient(bool listen = true) : m_connection(sdbus::createSystemBusConnection()) {
    m_completedMatch = m_connection->addMatch(std::string("type='signal',interface='") + kJobIface + "',member='Completed'",
                                              [this](sdbus::Message& message) {
                                                Completion c;
                                                message >> c.success >> c.message;
                                                c.destination = message.getDestination();
                                                std::lock_guard lock(m_mutex);
                                                m_completions[message.getPath()].push_back(c);
                                                m_signalled.notify_all();
                                              });
    m_changedMatch = m_connection->addMatch(std::string("type='signal',interface='") + kPropertiesIface +
                                                "',member='PropertiesChanged',path_namespace='" + kRootPath + "'",
                                            [this](sdbus::Message& message) {
                                              Change c;
                                              Vardict values;
                                              message >> c.interface >> values >> c.invalidated;
                                              for (const auto& [name, value] : values) c.changed.push_back(name);
                                              std::lock_guard lock(m_mutex);
                                              m_changes[message.getPath()].push_back(c);
                                              m_signalled.notify_all();
                                            });
    if (listen) {
      m_connection->enterEventLoopAsync();
      m_listening = true;
    }
  }
  ~BusClient() {
    if (m_listening) m_connection->leaveEventLoop();
    m_completedMatch.reset();
    m_changedMatch.reset();
  }
  BusClient(const BusClient&) = delete;
  BusClient& operator=(const BusClient&) = delete;

  sdbus::IConnection& connection() { return *m_connection; }
  std::string uniqueName() const { return m_connection->getUniqueName(); }

  std::optional<Completion> waitForCompleted(const std::string& path, std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_mutex);
    m_signalled.wait_for(lock, timeout, [&] { return !m_completions[path].empty(); });
    if (m_completions[path].empty()) return std::nullopt;
    return m_completions[path].front();
  }
  std::vector<Completion> completions(const std::string& path) {
    std::lock_guard lock(m_mutex);
    return m_completions[path];
  }
  std::vector<Change> changes(const std::string& path) {
    std::lock_guard lock(m_mutex);
    return m_changes[path];
  }
  // Waits until more than `seen` PropertiesChanged arrived for `path`, or Completed; returns the count.
  size_t waitForChange(const std::string& path, size_t seen, std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_mutex);
    m_signalled.wait_for(lock, timeout, [&] { return m_changes[path].size() > seen || !m_completions[path].empty(); });
    return m_changes[path].size();
  }

 private:
  std::unique_ptr<sdbus::IConnection> m_connection;
  sdbus::Slot m_completedMatch;
  sdbus::Slot m_changedMatch;
  bool m_listening = false;
  std::mutex m_mutex;
  std::condition_variable m_signalled;
  std::map<std::string, std::vector<Completion>> m_completions;
  std::map<std::string, std::vector<Change>> m_changes;
};

// Whether the daemon holds its name on the bus now (false also when the bus is not there).
bool daemonOnBus() {
  try {
    auto connection = sdbus::createSystemBusConnection();
    auto bus = sdbus::createProxy(*connection, "org.freedesktop.DBus", "/org/freedesktop/DBus");
    bool owned = false;
    bus->callMethod("NameHasOwner").onInterface("org.freedesktop.DBus").withArguments(std::string(kBusName)).storeResultsTo(owned);
    return owned;
  } catch (const sdbus::Error&) {
    return false;
  }
}

// The daemon is still running a second later.
bool staysUp(const Daemon& daemon) {
  std::this_thread::sleep_for(1s);
  return daemon.running();
}

// How the daemon process ended, without reaping it (the harness does that).
std::string howItEnded(const Daemon& daemon) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(daemon.pid()), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != daemon.pid())
    return "still running";
  if (info.si_code == CLD_EXITED) return "exit status " + std::to_string(info.si_status);
  return std::string("killed by signal ") + ::strsignal(info.si_status);
}

// Waits for the job's end as its properties tell; returns its last State.
std::string waitForEnd(JobProxy& job, std::chrono::milliseconds timeout = kJobTimeout) {
  std::string state;
  pollUntil(
      [&] {
        state = job.State();
        return state != "queued" && state != "running";
      },
      timeout);
  return state;
}

// ---- a bus client running as another user ----

// Runs `body` in a forked child that runs as `user` (uid, gid and groups) with a bus connection of
// its own, and returns what it returned, plus "pid": the child's pid (the caller the daemon sees).
// An exception in the child comes back as {"exception": what}.
json asUser(const RoleUser& user, const std::function<json(sdbus::IConnection&)>& body) {
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  while (::getgrouplist(user.name.c_str(), user.gid, groups.data(), &count) < 0) groups.resize(static_cast<size_t>(count));
  groups.resize(static_cast<size_t>(count));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    json out;
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(user.gid, user.gid, user.gid) != 0 ||
        ::setresuid(user.uid, user.uid, user.uid) != 0) {
      out = {{"exception", "cannot become " + user.name}};
    } else {
      try {
        auto connection = sdbus::createSystemBusConnection();
        out = body(*connection);
      } catch (const std::exception& e) {
        out = {{"exception", e.what()}};
      }
    }
    std::string text = out.dump();
    for (size_t done = 0; done < text.size();) {
      ssize_t n = ::write(fds[1], text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ownProcess(pid);
  ::close(fds[1]);
  std::string text;
  const auto deadline = Clock::now() + kJobTimeout;
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(&p, 1, left) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  disownProcess(pid);
  json result = json::parse(text, nullptr, false);
  if (result.is_discarded()) result = {{"exception", "the child printed no JSON: " + text}};
  result["pid"] = pid;
  return result;
}

// ---- files and plain restic ----

void writeFile(const std::string& path, const std::string& content, mode_t mode = 0600) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  ::chmod(path.c_str(), mode);
}

// `restic snapshots --json` on a repository with a password, as a user would run it by hand.
CommandResult resticSnapshots(const std::string& repository, const std::string& password, const std::string& scratch) {
  const std::string passwordFile = scratch + "/restic-password";
  writeFile(passwordFile, password);
  CommandResult r = run({kRestic, "snapshots", "--repo", repository, "--password-file", passwordFile, "--json", "--no-lock", "--no-cache"});
  ::unlink(passwordFile.c_str());
  return r;
}


// ---- the fixture: a private system bus, and zerobyted on it ----

class DbusApi : public ::testing::Test {
 protected:
  void SetUp() override {
    // Groups mode (the harness's default) decides without polkit: only the bus is needed.
    PolkitEnvironmentOptions options;
    options.startPolkitd = false;
    m_bus = std::make_unique<OwnedPolkitEnvironment>(options);
  }

  Daemon& makeDaemon(const std::string& extraDaemonSettings = "") {
    Daemon::Options options;
    options.extraEnvironment = {m_bus->environmentEntry()};
    options.extraDaemonSettings = extraDaemonSettings;
    m_daemon = std::make_unique<Daemon>(options);
    return *m_daemon;
  }

  // Starts zerobyted and waits until it holds its name.
  Daemon& startDaemon(const std::string& extraDaemonSettings = "") {
    Daemon& d = makeDaemon(extraDaemonSettings);
    d.start();
    EXPECT_TRUE(pollUntil(daemonOnBus, 10s)) << "zerobyted did not take " << kBusName << " on the test bus\n" << d.log() << m_bus->log();
    return d;
  }

  // Stops the bus as a restarting system bus would; the processes of the next start() are the
  // test's own, so that the harness does not take them for a dead daemon's orphans.
  void stopBus() {
    pid_t old = m_bus->busPid();
    m_bus->stop();
    disownProcess(old);
  }
  void startBus() {
    m_bus->start();
    ownProcess(m_bus->busPid());
  }

  std::string makeDirectory(const std::string& name, mode_t mode = 0755) {
    std::string path = m_daemon->dir() + "/" + name;
    ::mkdir(path.c_str(), mode);
    ::chmod(path.c_str(), mode);
    return path;
  }

  std::unique_ptr<OwnedPolkitEnvironment> m_bus;
  std::unique_ptr<Daemon> m_daemon;  // declared after the bus: it stops first
};

// ---- 1. what the bus shows ----

TEST_F(DbusApi, IntrospectionAndObjectManagerShowEveryInterfaceAndObject) {
  Daemon& d = startDaemon();
  const std::string data = makeDirectory("data");
  makeTree(data, 20);
  BusClient client;
  ManagerProxy manager(client.connection());
  const std::string volume = manager.CreateVolume("data", "directory", data, {});
  const auto [repository, init] = manager.CreateRepository("main", "local", d.dir() + "/repository", {});
  const std::string job = manager.StartBackup("data", "main", {});
  ASSERT_TRUE(client.waitForCompleted(job, kJobTimeout)) << "the backup did not complete\n" << d.log();

  EXPECT_EQ(volume.rfind(std::string(kRootPath) + "/volumes/", 0), 0u) << volume;
  EXPECT_EQ(repository.rfind(std::string(kRootPath) + "/repositories/", 0), 0u) << repository;
  EXPECT_EQ(job.rfind(std::string(kRootPath) + "/jobs/", 0), 0u) << job;

  VolumeProxy volumeProxy(client.connection(), volume);
  RepositoryProxy repositoryProxy(client.connection(), repository);
  JobProxy jobProxy(client.connection(), job);
  const std::map<std::string, std::string> introspected = {
      {kManagerIface, manager.Introspect()},
      {kVolumeIface, volumeProxy.Introspect()},
      {kRepositoryIface, repositoryProxy.Introspect()},
      {kJobIface, jobProxy.Introspect()},
  };
  for (const auto& [iface, xml] : introspected) {
    EXPECT_TRUE(contains(xml, "<interface name=\"" + iface + "\">")) << iface << ":\n" << xml;
    EXPECT_TRUE(contains(xml, "<interface name=\"org.freedesktop.DBus.Properties\">")) << iface << ":\n" << xml;
    EXPECT_TRUE(contains(xml, "<interface name=\"org.freedesktop.DBus.Introspectable\">")) << iface << ":\n" << xml;
  }
  // What a generic client learns from the description: the methods, properties and the signal.
  EXPECT_TRUE(contains(introspected.at(kManagerIface), "<method name=\"StartBackup\">"));
  EXPECT_TRUE(contains(introspected.at(kVolumeIface), "<property name=\"Path\" type=\"s\" access=\"read\">"));
  EXPECT_TRUE(contains(introspected.at(kRepositoryIface), "<method name=\"RevealPassword\">"));
  EXPECT_TRUE(contains(introspected.at(kJobIface), "<signal name=\"Completed\">"));

  ObjectsProxy objects(client.connection());
  EXPECT_TRUE(contains(objects.Introspect(), "<interface name=\"org.freedesktop.DBus.ObjectManager\">")) << objects.Introspect();
  ManagedObjects managed = objects.GetManagedObjects();
  std::string paths;
  for (const auto& [path, interfaces] : managed) paths += path + " ";
  ASSERT_TRUE(managed.count(sdbus::ObjectPath(volume))) << paths;
  ASSERT_TRUE(managed.count(sdbus::ObjectPath(repository))) << paths;
  ASSERT_TRUE(managed.count(sdbus::ObjectPath(job))) << paths;
  ASSERT_TRUE(managed.count(sdbus::ObjectPath(init))) << "the init job: " << paths;
  EXPECT_EQ(text(managed[sdbus::ObjectPath(volume)][kVolumeIface], "Name"), "data");
  EXPECT_EQ(text(managed[sdbus::ObjectPath(volume)][kVolumeIface], "Path"), data);
  EXPECT_EQ(text(managed[sdbus::ObjectPath(repository)][kRepositoryIface], "Name"), "main");
  EXPECT_EQ(text(managed[sdbus::ObjectPath(job)][kJobIface], "State"), "succeeded");
  EXPECT_EQ(text(managed[sdbus::ObjectPath(job)][kJobIface], "Operation"), "backup");
}

// ---- 2. every method, with its errors ----

TEST_F(DbusApi, EveryMethodWorksAndFailsWithTheDaemonsErrorNames) {
  Daemon& d = startDaemon();
  const std::string data = makeDirectory("data");
  makeTree(data, 60);
  const std::string repositoryDir = d.dir() + "/repository";
  BusClient client;
  ManagerProxy manager(client.connection());

  // Manager properties and GetStatus: what `zerobytectl status` shows.
  json status = d.ctlJson({"status"});
  EXPECT_EQ(manager.Version(), status.value("version", "?"));
  EXPECT_EQ(manager.ResticVersion(), status.value("restic_version", "?"));
  EXPECT_TRUE(contains(run({kRestic, "version"}).out, manager.ResticVersion())) << manager.ResticVersion();
  EXPECT_EQ(manager.AuthorizationMode(), "groups");
  EXPECT_EQ(manager.RunningJobs(), 0u);
  EXPECT_EQ(manager.QueuedJobs(), 0u);
  Vardict got = manager.GetStatus({});
  EXPECT_EQ(text(got, "version"), manager.Version()) << describe(got);
  EXPECT_EQ(text(got, "authorization"), "groups") << describe(got);
  const std::string keyBefore = text(record(got, "master_key"), "key_id");
  EXPECT_FALSE(keyBefore.empty()) << "root sees the master key's id: " << describe(got);
  EXPECT_EQ(manager.GetStatus({{"auth.no_user_interaction", sdbus::Variant(true)}}).count("version"), 1u);
  EXPECT_EQ(errorOf([&] { manager.GetStatus({{"bogus", sdbus::Variant(true)}}); }), errorName("InvalidParameter"));

  // Volumes.
  const std::string volume = manager.CreateVolume("data", "directory", data, {});
  EXPECT_EQ(std::string(manager.FindVolume("data", {})), volume);
  EXPECT_TRUE(listed(manager.ListVolumes({}), volume));
  EXPECT_EQ(errorOf([&] { manager.FindVolume("nothing-here", {}); }), errorName("NotFound"));
  EXPECT_EQ(errorOf([&] { manager.CreateVolume("Bad Name!", "directory", data, {}); }), errorName("InvalidArgument"));
  EXPECT_EQ(errorOf([&] { manager.CreateVolume("data", "directory", data, {}); }), errorName("AlreadyExists"));
  EXPECT_EQ(errorOf([&] { manager.CreateVolume("other", "directory", "relative/path", {}); }), errorName("InvalidArgument"));
  EXPECT_EQ(errorOf([&] { manager.CreateVolume("other", "directory", data, {{"color", sdbus::Variant(std::string("red"))}}); }),
            errorName("InvalidParameter"));
  EXPECT_EQ(errorOf([&] { manager.FindVolume("other", {}); }), errorName("NotFound")) << "a refused create left a volume";
  VolumeProxy dataVolume(client.connection(), volume);
  EXPECT_EQ(dataVolume.Id(), volume.substr(volume.rfind('/') + 1));
  EXPECT_EQ(dataVolume.Name(), "data");
  EXPECT_EQ(dataVolume.Type(), "directory");
  EXPECT_EQ(dataVolume.Path(), data);
  EXPECT_FALSE(dataVolume.Declared());
  EXPECT_EQ(dataVolume.OwnerUID(), 0u);
  EXPECT_EQ(dataVolume.Owner(), "root");
  EXPECT_EQ(dataVolume.Group(), "");
  EXPECT_TRUE(dataVolume.Privileged());
  EXPECT_EQ(dataVolume.Created().size(), 20u) << "RFC 3339 in UTC, e.g. 2024-01-02T03:04:05Z: " << dataVolume.Created();
  EXPECT_EQ(dataVolume.Created().back(), 'Z') << dataVolume.Created();
  Vardict volumeProperties = dataVolume.GetAll(kVolumeIface);
  EXPECT_EQ(volumeProperties.size(), 16u) << describe(volumeProperties);
  EXPECT_EQ(text(volumeProperties, "Path"), data);
  for (const char* mountProperty : {"Remote", "Driver", "MountState", "MountPath", "LastCheck", "LastError"})
    EXPECT_EQ(text(volumeProperties, mountProperty), "") << mountProperty << ": a directory is never mounted";

  // Repositories: created (the init job has run when the call returns), found, listed.
  const auto [repository, init] = manager.CreateRepository("main", "local", repositoryDir, {});
  JobProxy initJob(client.connection(), init);
  EXPECT_EQ(waitForEnd(initJob), "succeeded") << initJob.Message();
  EXPECT_EQ(initJob.Operation(), "init");
  struct stat st {};
  EXPECT_EQ(::stat((repositoryDir + "/config").c_str(), &st), 0) << "restic init did not run";
  EXPECT_EQ(std::string(manager.FindRepository("main", {})), repository);
  EXPECT_TRUE(listed(manager.ListRepositories({}), repository));
  EXPECT_EQ(errorOf([&] { manager.FindRepository("nothing-here", {}); }), errorName("NotFound"));
  EXPECT_EQ(errorOf([&] { manager.CreateRepository("main", "local", d.dir() + "/again", {}); }), errorName("AlreadyExists"));
  EXPECT_EQ(errorOf([&] { manager.CreateRepository("elsewhere", "ftp", d.dir() + "/elsewhere", {}); }), errorName("InvalidArgument"));
  RepositoryProxy main(client.connection(), repository);
  EXPECT_EQ(main.Id(), repository.substr(repository.rfind('/') + 1));
  EXPECT_EQ(main.Name(), "main");
  EXPECT_EQ(main.Type(), "local");
  EXPECT_EQ(main.Location(), repositoryDir);
  EXPECT_FALSE(main.Declared());
  EXPECT_EQ(main.OwnerUID(), 0u);
  EXPECT_EQ(main.Owner(), "root");
  EXPECT_EQ(main.Group(), "");
  EXPECT_TRUE(main.Privileged());
  EXPECT_EQ(main.Created().back(), 'Z') << main.Created();
  EXPECT_EQ(main.PasswordSource(), "stored");
  EXPECT_EQ(main.GetAll(kRepositoryIface).size(), 12u) << describe(main.GetAll(kRepositoryIface));

  // A backup with tags: the caller hears Completed, the job's properties tell the rest.
  EXPECT_EQ(errorOf([&] { manager.StartBackup("data", "main", {{"bogus", sdbus::Variant(true)}}); }), errorName("InvalidParameter"));
  EXPECT_EQ(errorOf([&] { manager.StartBackup("data", "main", {{"tags", sdbus::Variant(std::string("not-a-list"))}}); }),
            errorName("InvalidParameter"));
  EXPECT_EQ(errorOf([&] { manager.StartBackup("nothing-here", "main", {}); }), errorName("NotFound"));
  EXPECT_EQ(errorOf([&] { manager.StartBackup("data", "nothing-here", {}); }), errorName("NotFound"));
  const std::string backup =
      manager.StartBackup("data", "main", {{"tags", sdbus::Variant(std::vector<std::string>{"dbus-test"})},
                                           {"excludes", sdbus::Variant(std::vector<std::string>{"*.nothing"})},
                                           {"auth.no_user_interaction", sdbus::Variant(true)}});
  auto completed = client.waitForCompleted(backup, kJobTimeout);
  ASSERT_TRUE(completed) << "no Completed for the backup\n" << d.log();
  EXPECT_TRUE(completed->success) << completed->message;
  EXPECT_EQ(completed->destination, client.uniqueName()) << "Completed is sent to the client that started the job";
  JobProxy backupJob(client.connection(), backup);
  EXPECT_EQ(backupJob.State(), "succeeded");
  EXPECT_EQ(backupJob.Message(), completed->message);
  EXPECT_EQ(backupJob.Id(), jobIdOf(backup));
  EXPECT_EQ(backupJob.Operation(), "backup");
  EXPECT_EQ(std::string(backupJob.Repository()), repository);
  EXPECT_EQ(std::string(backupJob.Volume()), volume);
  EXPECT_DOUBLE_EQ(backupJob.Progress(), 1.0);
  EXPECT_FALSE(backupJob.ProgressValid()) << "progress is meaningful only while it runs";
  EXPECT_GT(backupJob.BytesDone(), 0u);
  EXPECT_GT(backupJob.FilesDone(), 0u);
  EXPECT_GE(backupJob.BytesTotal(), backupJob.BytesDone());
  EXPECT_GE(backupJob.FilesTotal(), backupJob.FilesDone());
  (void)backupJob.Rate();
  (void)backupJob.ExpectedEndTime();
  const uint64_t nowUsec = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                     std::chrono::system_clock::now().time_since_epoch())
                                                     .count());
  EXPECT_GT(backupJob.StartTime(), nowUsec - 600'000'000u);
  EXPECT_GE(backupJob.EndTime(), backupJob.StartTime());
  EXPECT_LE(backupJob.EndTime(), nowUsec + 1'000'000u);
  EXPECT_EQ(backupJob.StartedByUID(), 0u);
  EXPECT_EQ(backupJob.RunAsUID(), 0u);
  EXPECT_FALSE(backupJob.Cancelable());
  Vardict details = backupJob.Details();
  const std::string snapshotId = text(record(details, "summary"), "snapshot_id");
  EXPECT_FALSE(snapshotId.empty()) << describe(details);
  EXPECT_TRUE(contains(completed->message, snapshotId)) << completed->message;
  EXPECT_EQ(texts(details, "tags"), std::vector<std::string>{"dbus-test"}) << describe(details);
  EXPECT_EQ(backupJob.GetAll(kJobIface).size(), 20u);
  EXPECT_NO_THROW((void)backupJob.GetLog({}));
  // Cancelling what has ended is refused.
  EXPECT_EQ(errorOf([&] { backupJob.Cancel({}); }), errorName("Conflict"));
  EXPECT_EQ(errorOf([&] { backupJob.Cancel({{"force", sdbus::Variant(true)}}); }), errorName("InvalidParameter"));

  // Snapshots and files.
  std::vector<Vardict> snapshots = main.ListSnapshots({{"refresh", sdbus::Variant(true)}});
  ASSERT_EQ(snapshots.size(), 1u);
  EXPECT_EQ(text(snapshots[0], "short_id"), snapshotId.substr(0, 8)) << describe(snapshots[0]);
  EXPECT_EQ(texts(snapshots[0], "paths"), std::vector<std::string>{data});
  EXPECT_EQ(texts(snapshots[0], "tags"), std::vector<std::string>{"dbus-test"});
  EXPECT_EQ(main.ListSnapshots({}).size(), 1u) << "from the cache";
  EXPECT_EQ(main.SnapshotCount(), 1) << "the cache holds the snapshot listed just now";
  const std::string firstSnapshot = text(snapshots[0], "id");
  std::vector<Vardict> nodes = main.ListFiles("latest", {{"path", sdbus::Variant(data)}});
  std::set<std::string> names;
  // restic lists the directory itself first, then its entries.
  for (const auto& n : nodes)
    if (text(n, "path") != data) names.insert(text(n, "name"));
  std::set<std::string> expected;
  for (const auto& entry : std::filesystem::directory_iterator(data)) expected.insert(entry.path().filename().string());
  EXPECT_EQ(names, expected);
  EXPECT_EQ(errorOf([&] { main.ListFiles("ffffffff", {}); }), errorName("NotFound"));
  EXPECT_EQ(errorOf([&] { main.ListFiles("latest", {{"path", sdbus::Variant(int64_t{5})}}); }), errorName("InvalidParameter"));

  // Restores: everything with Manager.StartRestore, a part with Repository.Restore.
  const std::string target = d.dir() + "/restored";
  const std::string restore = manager.StartRestore("main", "latest", target, {});
  completed = client.waitForCompleted(restore, kJobTimeout);
  ASSERT_TRUE(completed) << d.log();
  EXPECT_TRUE(completed->success) << completed->message;
  EXPECT_EQ(compareTrees(data, target + data), "");
  const std::string partTarget = d.dir() + "/part";
  const std::string partial = main.Restore(snapshotId, partTarget, {{"includes", sdbus::Variant(std::vector<std::string>{data + "/a"})}});
  completed = client.waitForCompleted(partial, kJobTimeout);
  ASSERT_TRUE(completed) << d.log();
  EXPECT_TRUE(completed->success) << completed->message;
  EXPECT_EQ(compareTrees(data + "/a", partTarget + data + "/a"), "");
  EXPECT_FALSE(std::filesystem::exists(partTarget + data + "/café")) << "only the included path is restored";
  EXPECT_EQ(errorOf([&] { manager.StartRestore("main", "latest", "not/absolute", {}); }), errorName("InvalidArgument"));

  // Volume.Backup: the same as StartBackup, with the repository's object.
  const std::string second = dataVolume.Backup(sdbus::ObjectPath(repository), {});
  completed = client.waitForCompleted(second, kJobTimeout);
  ASSERT_TRUE(completed) << d.log();
  EXPECT_TRUE(completed->success) << completed->message;
  EXPECT_EQ(errorOf([&] { dataVolume.Backup(sdbus::ObjectPath(std::string(kRootPath) + "/repositories/nothing"), {}); }),
            errorName("NotFound"));

  // ListJobs: the socket's job records.
  std::vector<Vardict> jobs = manager.ListJobs({});
  std::map<int64_t, Vardict> byId;
  for (const auto& j : jobs) byId[number(j, "id")] = j;
  for (const std::string& path : std::vector<std::string>{init, backup, restore, partial, second})
    EXPECT_TRUE(byId.count(static_cast<int64_t>(jobIdOf(path)))) << path;
  EXPECT_EQ(text(byId[static_cast<int64_t>(jobIdOf(backup))], "state"), "succeeded");
  EXPECT_EQ(text(byId[static_cast<int64_t>(jobIdOf(restore))], "operation"), "restore");
  EXPECT_EQ(manager.ListJobs({{"limit", sdbus::Variant(int64_t{1})}}).size(), 1u);

  // ForgetSnapshot, Check (full and connection only).
  const std::string forget = main.ForgetSnapshot(firstSnapshot, {});
  completed = client.waitForCompleted(forget, kJobTimeout);
  ASSERT_TRUE(completed) << d.log();
  EXPECT_TRUE(completed->success) << completed->message;
  snapshots = main.ListSnapshots({{"refresh", sdbus::Variant(true)}});
  ASSERT_EQ(snapshots.size(), 1u);
  EXPECT_NE(text(snapshots[0], "id"), firstSnapshot);
  const std::string check = main.Check({});
  completed = client.waitForCompleted(check, kJobTimeout);
  ASSERT_TRUE(completed) << d.log();
  EXPECT_TRUE(completed->success) << completed->message;
  EXPECT_EQ(JobProxy(client.connection(), check).Operation(), "check");
  const std::string connection = main.Check({{"connection", sdbus::Variant(true)}});
  completed = client.waitForCompleted(connection, kJobTimeout);
  ASSERT_TRUE(completed) << d.log();
  EXPECT_TRUE(completed->success) << completed->message;
  EXPECT_EQ(JobProxy(client.connection(), connection).Operation(), "check-connection");

  // RevealPassword opens the repository with plain restic; ChangePassword replaces it.
  const std::string password = main.RevealPassword({});
  EXPECT_GE(password.size(), 16u);
  for (const auto& [name, value] : main.GetAll(kRepositoryIface))
    if (value.containsValueOfType<std::string>()) {
      EXPECT_FALSE(contains(value.get<std::string>(), password)) << "property " << name;
    }
  CommandResult byHand = resticSnapshots(repositoryDir, password, d.dir());
  ASSERT_EQ(byHand.exitCode, 0) << describe(byHand);
  EXPECT_EQ(json::parse(byHand.out).size(), 1u) << byHand.out;
  const std::string change = main.ChangePassword({});
  completed = client.waitForCompleted(change, kJobTimeout);
  ASSERT_TRUE(completed) << d.log();
  EXPECT_TRUE(completed->success) << completed->message;
  const std::string newPassword = main.RevealPassword({});
  EXPECT_NE(newPassword, password);
  EXPECT_EQ(resticSnapshots(repositoryDir, newPassword, d.dir()).exitCode, 0);
  EXPECT_NE(resticSnapshots(repositoryDir, password, d.dir()).exitCode, 0) << "the old key is still in the repository";

  // RotateMasterKey: a new key id, every stored secret re-encrypted and still usable.
  Vardict rotated = manager.RotateMasterKey({});
  EXPECT_FALSE(text(rotated, "key_id").empty()) << describe(rotated);
  EXPECT_NE(text(rotated, "key_id"), keyBefore);
  EXPECT_GE(number(rotated, "secrets"), 1) << describe(rotated);
  EXPECT_EQ(text(record(manager.GetStatus({}), "master_key"), "key_id"), text(rotated, "key_id"));
  EXPECT_EQ(main.RevealPassword({}), newPassword);
  EXPECT_EQ(errorOf([&] { manager.RotateMasterKey({{"source", sdbus::Variant(std::string("file"))}}); }), errorName("InvalidArgument"));

  // ListAudit: the changes made over the bus, with this process as the caller.
  std::vector<Vardict> audit = manager.ListAudit({});
  bool sawCreateVolume = false;
  for (const auto& e : audit)
    if (text(e, "method") == "CreateVolume" && text(e, "transport") == "dbus" && number(e, "caller_uid") == 0 &&
        number(e, "caller_pid") == ::getpid() && contains(text(e, "resource"), "data"))
      sawCreateVolume = true;
  EXPECT_TRUE(sawCreateVolume) << "no audit entry for the CreateVolume call over D-Bus";
  bool sawReveal = false;
  for (const auto& e : audit)
    if (text(e, "method") == "RevealRepositoryPassword" && text(e, "transport") == "dbus" && number(e, "caller_uid") == 0) sawReveal = true;
  EXPECT_TRUE(sawReveal) << "revealing a password over D-Bus is audited";
  EXPECT_EQ(manager.ListAudit({{"limit", sdbus::Variant(int64_t{2})}}).size(), 2u);
  EXPECT_EQ(errorOf([&] { manager.ListAudit({{"limit", sdbus::Variant(std::string("two"))}}); }), errorName("InvalidParameter"));
}

// ImportRepository adopts a repository made with plain restic; with a wrong password the call fails
// with WrongPassword once its job has ended. Either way the import job tells how it went, and (the
// contract of org.zerobyte.Daemon1.Job) Completed goes to the client that started it.
TEST_F(DbusApi, ImportRepositoryChecksThePasswordAndReportsToTheCaller) {
  Daemon& d = startDaemon();
  const std::string outside = d.dir() + "/outside";
  writeFile(d.dir() + "/outside-password", "the-right-one");
  CommandResult made = run({kRestic, "init", "--repo", outside, "--password-file", d.dir() + "/outside-password", "--no-cache"});
  ASSERT_EQ(made.exitCode, 0) << describe(made);
  BusClient client;
  ManagerProxy manager(client.connection());

  // A wrong password.
  std::string failure = failureOf([&] { manager.ImportRepository("imported", "local", outside, "a-wrong-one", {}); });
  EXPECT_EQ(failure.substr(0, failure.find(':')), errorName("WrongPassword")) << failure;
  EXPECT_TRUE(contains(failure, "password is wrong")) << failure;
  EXPECT_EQ(errorOf([&] { manager.FindRepository("imported", {}); }), errorName("NotFound")) << "a repository that did not open was kept";
  std::optional<int64_t> failedId;
  for (const auto& j : manager.ListJobs({}))
    if (text(j, "operation") == "import") failedId = number(j, "id");
  ASSERT_TRUE(failedId) << "no import job in ListJobs";
  const std::string failedPath = std::string(kRootPath) + "/jobs/" + std::to_string(*failedId);
  JobProxy failed(client.connection(), failedPath);
  EXPECT_EQ(failed.State(), "failed");
  EXPECT_TRUE(contains(failed.Message(), "password is wrong")) << failed.Message();
  bool resticSaidSo = false;
  for (const auto& line : failed.GetLog({})) resticSaidSo = resticSaidSo || contains(line, "password");
  EXPECT_TRUE(resticSaidSo) << "GetLog has restic's own words on the failure";

  // The right password.
  const auto [imported, job] = manager.ImportRepository("imported", "local", outside, "the-right-one", {});
  JobProxy importJob(client.connection(), job);
  EXPECT_EQ(importJob.State(), "succeeded") << importJob.Message();
  EXPECT_EQ(importJob.Operation(), "import");
  EXPECT_EQ(std::string(manager.FindRepository("imported", {})), std::string(imported));
  RepositoryProxy repository(client.connection(), imported);
  EXPECT_EQ(repository.Location(), outside);
  EXPECT_TRUE(repository.Privileged());
  EXPECT_EQ(repository.RevealPassword({}), "the-right-one");
  EXPECT_EQ(repository.ListSnapshots({{"refresh", sdbus::Variant(true)}}).size(), 0u);

  // A failed import is answered by the call's error (above); a successful one names its job, ended by then, and the
  // caller still hears Completed for it.
  auto completed = client.waitForCompleted(job, 5s);
  EXPECT_TRUE(completed && completed->success) << "the client that called ImportRepository got no Completed(true, …) for the import job " << job;
  // The same for CreateRepository's init job.
  const auto [created, init] = manager.CreateRepository("created", "local", d.dir() + "/created", {});
  completed = client.waitForCompleted(init, 5s);
  EXPECT_TRUE(completed && completed->success) << "the client that called CreateRepository got no Completed(true, …) for the init job " << init;
}

// Delete forgets a volume or repository here; the data stays where it is, and so does the daemon.
TEST_F(DbusApi, DeleteRemovesVolumesAndRepositoriesButNotTheirData) {
  Daemon& d = startDaemon();
  BusClient client(false);
  ManagerProxy manager(client.connection());
  const std::string scratchDir = makeDirectory("scratch");
  const std::string volume = manager.CreateVolume("scratch", "directory", scratchDir, {});
  const auto [repository, init] = manager.CreateRepository("scratch", "local", d.dir() + "/repository", {});

  VolumeProxy(client.connection(), volume).Delete({});
  ASSERT_TRUE(staysUp(d)) << "zerobyted died after Volume.Delete over D-Bus (" << howItEnded(d) << ")\n" << d.log();
  EXPECT_EQ(errorOf([&] { manager.FindVolume("scratch", {}); }), errorName("NotFound"));
  EXPECT_FALSE(listed(manager.ListVolumes({}), volume));
  EXPECT_EQ(errorOf([&] { VolumeProxy(client.connection(), volume).Name(); }), "org.freedesktop.DBus.Error.UnknownObject")
      << "the deleted volume's object is still there";
  EXPECT_TRUE(std::filesystem::is_directory(scratchDir));

  RepositoryProxy(client.connection(), repository).Delete({});
  ASSERT_TRUE(staysUp(d)) << "zerobyted died after Repository.Delete over D-Bus (" << howItEnded(d) << ")\n" << d.log();
  EXPECT_EQ(errorOf([&] { manager.FindRepository("scratch", {}); }), errorName("NotFound"));
  EXPECT_FALSE(listed(manager.ListRepositories({}), repository));
  EXPECT_EQ(errorOf([&] { RepositoryProxy(client.connection(), repository).Name(); }), "org.freedesktop.DBus.Error.UnknownObject");
  EXPECT_TRUE(std::filesystem::exists(d.dir() + "/repository/config")) << "the repository's data was removed";
  EXPECT_EQ(d.ctl({"status"}).exitCode, 0);
}

// This kernel has no nfs: mount.nfs is a stand-in the test controls (first on daemon.mount_helper_path), which
// mounts a tmpfs, or fails like a server that refuses. Labelled as such.
TEST_F(DbusApi, NetworkVolumesMountUnmountAndShowTheirMountState) {
  const std::string helpers = "/tmp/zbtest-dbus-helpers-" + std::to_string(::getpid());
  std::filesystem::create_directories(helpers);
  {
    std::ofstream script(helpers + "/mount.nfs");
    script << "#!/bin/sh\ncase \"$1\" in refusing.example:*) echo 'mount.nfs: access denied by server' >&2; exit 32;; esac\n"
              "exec mount -t tmpfs -o size=1m zbtest-standin \"$2\"\n";
  }
  ::chmod((helpers + "/mount.nfs").c_str(), 0755);
  Daemon& d = startDaemon("  mount_helper_path: [" + helpers + ", /usr/sbin, /usr/bin, /sbin, /bin]\n");
  BusClient client(false);
  ManagerProxy manager(client.connection());
  const std::string path = manager.CreateVolume("exports", "nfs", "",
                                                {{"host", sdbus::Variant(std::string("nfs.example"))},
                                                 {"remote_path", sdbus::Variant(std::string("/srv/export"))},
                                                 {"nfs_version", sdbus::Variant(std::string("4.2"))}});
  VolumeProxy volume(client.connection(), path);
  EXPECT_EQ(volume.Type(), "nfs");
  EXPECT_EQ(volume.Remote(), "nfs.example:/srv/export");
  EXPECT_EQ(volume.Driver(), "nfs");
  EXPECT_EQ(volume.Path(), "");
  EXPECT_EQ(volume.MountState(), "unmounted");

  volume.Mount({});
  EXPECT_EQ(volume.MountState(), "mounted");
  EXPECT_EQ(volume.MountPath(), d.dir() + "/run/mounts/" + volume.Id());
  EXPECT_FALSE(volume.LastCheck().empty());
  EXPECT_EQ(d.ctlJson({"volume", "show", "exports"}).at("volume").at("mount").value("state", ""), "mounted");
  EXPECT_EQ(volume.Test({}), std::vector<std::string>{});  // an empty tmpfs
  volume.Unmount({});
  EXPECT_EQ(volume.MountState(), "unmounted");
  EXPECT_EQ(errorOf([&] { volume.Unmount({}); }), errorName("NotMounted"));

  const std::string refused = manager.CreateVolume("refused", "nfs", "",
                                                   {{"host", sdbus::Variant(std::string("refusing.example"))},
                                                    {"remote_path", sdbus::Variant(std::string("/x"))}});
  VolumeProxy other(client.connection(), refused);
  EXPECT_EQ(errorOf([&] { other.Mount({}); }), errorName("MountFailed"));
  EXPECT_EQ(other.MountState(), "failed");
  EXPECT_TRUE(contains(other.LastError(), "access denied by server")) << other.LastError();
  // A directory volume has no mount.
  const std::string dir = manager.CreateVolume("plain", "directory", makeDirectory("plain"), {});
  EXPECT_EQ(VolumeProxy(client.connection(), dir).MountState(), "");
  EXPECT_EQ(errorOf([&] { VolumeProxy(client.connection(), dir).Mount({}); }), errorName("InvalidArgument"));
  std::filesystem::remove_all(helpers);
}

// A remote repository through D-Bus: its fields and credential in the options, its location with the password masked,
// and an unreachable server as its own error.
TEST_F(DbusApi, RemoteRepositoriesTakeTheirFieldsInTheOptionsAndAnUnreachableServerIsItsOwnError) {
  zbtest::setServerProcessHooks(&zbtest::ownProcess, &zbtest::disownProcess);
  {
    zbtest::ResticRestServer server;
    startDaemon();
    BusClient client(false);
    ManagerProxy manager(client.connection());
    const std::map<std::string, sdbus::Variant> fields = {{"url", sdbus::Variant(server.url() + "viabus")},
                                                          {"user", sdbus::Variant(server.user())},
                                                          {"server_password", sdbus::Variant(server.password())}};
    const auto [repository, init] = manager.CreateRepository("web", "rest", "", fields);
    RepositoryProxy proxy(client.connection(), repository);
    EXPECT_EQ(proxy.Type(), "rest");
    EXPECT_EQ(proxy.Location(), "rest:http://" + server.user() + ":***@127.0.0.1:" + std::to_string(server.port()) + "/viabus");
    EXPECT_TRUE(std::filesystem::exists(server.root() / "viabus" / "config"));
    server.stop();
    EXPECT_EQ(errorOf([&] { manager.ImportRepository("again", "rest", "", "whatever", fields); }), errorName("Unreachable"));
    EXPECT_EQ(errorOf([&] {
                manager.CreateRepository("wrongfield", "rest", "", {{"url", sdbus::Variant(server.url())}, {"bucket", sdbus::Variant(std::string("b"))}});
              }),
              errorName("InvalidArgument"));
  }
  zbtest::setServerProcessHooks(nullptr, nullptr);
}

TEST_F(DbusApi, SchedulesAreObjectsThatRunEditAndPreviewTheirRetention) {
  roleUsers();
  const RoleUser& none = roleUser("none");
  Daemon& d = startDaemon();
  const std::string data = makeDirectory("data");
  makeTree(data, 20);
  BusClient client;
  ManagerProxy manager(client.connection());
  const std::string volume = manager.CreateVolume("data", "directory", data, {});
  const auto [repository, init] = manager.CreateRepository("main", "local", d.dir() + "/repository", {});

  EXPECT_EQ(errorOf([&] { manager.CreateSchedule("bad", "data", "main", "61 * * * *", {}); }), errorName("InvalidArgument"));
  EXPECT_EQ(errorOf([&] { manager.CreateSchedule("bad", "nope", "main", "@daily", {}); }), errorName("NotFound"));
  const std::string path = manager.CreateSchedule("nightly", "data", "main", "30 2 * * *",
                                                  {{"timezone", sdbus::Variant(std::string("Europe/Berlin"))},
                                                   {"keep_daily", sdbus::Variant(int64_t{7})}});
  EXPECT_EQ(path.rfind(std::string(kRootPath) + "/schedules/", 0), 0u) << path;
  EXPECT_EQ(std::string(manager.FindSchedule("nightly", {})), path);
  EXPECT_TRUE(listed(manager.ListSchedules({}), path));
  EXPECT_EQ(errorOf([&] { manager.FindSchedule("nope", {}); }), errorName("NotFound"));

  ScheduleProxy schedule(client.connection(), path);
  EXPECT_TRUE(contains(schedule.Introspect(), "<interface name=\"org.zerobyte.Daemon1.Schedule\">"));
  EXPECT_EQ(schedule.Name(), "nightly");
  EXPECT_EQ(schedule.Kind(), "backup");
  EXPECT_EQ(std::string(schedule.Volume()), volume);
  EXPECT_EQ(std::string(schedule.Repository()), repository);
  EXPECT_EQ(schedule.Cron(), "30 2 * * *");
  EXPECT_EQ(schedule.TimeZone(), "Europe/Berlin");
  EXPECT_TRUE(schedule.Enabled());
  EXPECT_TRUE(contains(schedule.NextRun(), "T00:30:00Z") || contains(schedule.NextRun(), "T01:30:00Z")) << schedule.NextRun();
  EXPECT_EQ(std::string(schedule.RunningJob()), "/");
  EXPECT_TRUE(contains(schedule.Retention(), "7 daily")) << schedule.Retention();
  EXPECT_EQ(text(schedule.Settings(), "snapshot_tag"), "zerobyte-schedule:nightly");
  EXPECT_EQ(schedule.LastSuccess(), "");
  auto times = schedule.NextRuns(3, {});
  ASSERT_EQ(times.size(), 3u);
  EXPECT_TRUE(times[0] < times[1] && times[1] < times[2]);

  schedule.Edit({{"keep_daily", sdbus::Variant(int64_t{0})}, {"keep_last", sdbus::Variant(int64_t{1})}}, {});
  EXPECT_EQ(number(record(schedule.Settings(), "retention"), "keep_last"), 1);
  EXPECT_EQ(errorOf([&] { schedule.Edit({{"cron", sdbus::Variant(std::string("* * *"))}}, {}); }), errorName("InvalidArgument"));
  const size_t changesBefore = client.changes(path).size();
  schedule.Disable({});
  EXPECT_FALSE(schedule.Enabled());
  // PropertiesChanged, without values, names what changed.
  client.waitForChange(path, changesBefore, 5s);
  bool enabledInvalidated = false;
  for (const auto& change : client.changes(path))
    if (change.interface == kScheduleIface &&
        std::find(change.invalidated.begin(), change.invalidated.end(), "Enabled") != change.invalidated.end())
      enabledInvalidated = true;
  EXPECT_TRUE(enabledInvalidated);
  EXPECT_EQ(schedule.NextRun(), "");
  schedule.Enable({});
  EXPECT_TRUE(schedule.Enabled());

  // A run: its job names the schedule; the schedule shows it running, then its success.
  for (int run = 0; run < 2; ++run) {
    const std::string job = schedule.Run({});
    ASSERT_TRUE(client.waitForCompleted(job, kJobTimeout)) << d.log();
    EXPECT_EQ(text(JobProxy(client.connection(), job).Details(), "schedule"), "nightly");
    EXPECT_TRUE(pollUntil([&] { return std::string(schedule.RunningJob()) == "/" && !schedule.LastSuccess().empty(); }, 60s))
        << d.log();
  }
  // While restic ran, the daemon asked logind for a sleep inhibitor; this bus has no logind, which it says once.
  EXPECT_EQ(occurrences(d.log(), "logind gave no sleep inhibitor"), 1u) << d.log();
  auto [keep, remove] = schedule.PreviewRetention({});
  EXPECT_EQ(keep.size(), 1u);
  EXPECT_TRUE(remove.empty()) << "the retention after the second run forgot the first snapshot already";

  // Others see it only emptied.
  json seen = asUser(none, [&](sdbus::IConnection& c) {
    json out;
    ScheduleProxy theirs(c, path);
    out["get"] = errorOf([&] { (void)theirs.Name(); });
    out["getall_name"] = text(theirs.GetAll(kScheduleIface), "Name");
    out["run"] = errorOf([&] { theirs.Run({}); });
    out["list"] = strings(ManagerProxy(c).ListSchedules({}));
    return out;
  });
  EXPECT_EQ(seen.at("get"), errorName("NotFound")) << seen.dump();
  EXPECT_EQ(seen.at("getall_name"), "") << seen.dump();
  EXPECT_EQ(seen.at("run"), errorName("NotFound")) << seen.dump();
  EXPECT_TRUE(seen.at("list").empty()) << seen.dump();

  schedule.Delete({});
  ASSERT_TRUE(staysUp(d)) << howItEnded(d) << "\n" << d.log();
  EXPECT_EQ(errorOf([&] { manager.FindSchedule("nightly", {}); }), errorName("NotFound"));
  EXPECT_EQ(errorOf([&] { ScheduleProxy(client.connection(), path).Name(); }), "org.freedesktop.DBus.Error.UnknownObject");
}

// ---- 3. progress, Completed, cancelling ----

TEST_F(DbusApi, BackupProgressIsSignalledAndCompletedGoesToTheCallerOnly) {
  Daemon& d = startDaemon();
  const std::string big = d.dir() + "/big";
  makeRandomFiles(big, 4, 75u << 20);  // 300 MiB of incompressible data: restic needs seconds for it
  BusClient client;
  BusClient bystander;  // never reads the job: must not hear how it ends
  ManagerProxy manager(client.connection());
  const std::string volume = manager.CreateVolume("big", "directory", big, {});
  manager.CreateRepository("main", "local", d.dir() + "/main", {});
  manager.CreateRepository("spare", "local", d.dir() + "/spare", {});

  const std::string path = manager.StartBackup("big", "main", {});
  JobProxy job(client.connection(), path);
  std::vector<double> progress;
  std::vector<uint64_t> bytes;
  bool conflictsChecked = false;
  uint32_t runningSeen = 0;
  size_t seen = 0;
  const auto deadline = Clock::now() + 90s;
  while (Clock::now() < deadline) {
    seen = client.waitForChange(path, seen, 5s);
    const std::string state = job.State();
    progress.push_back(job.Progress());
    bytes.push_back(job.BytesDone());
    if (state == "running" && !conflictsChecked && bytes.back() > 0) {
      // In use: neither the volume nor the repository can go.
      conflictsChecked = true;
      EXPECT_EQ(errorOf([&] { VolumeProxy(client.connection(), volume).Delete({}); }), errorName("Conflict"));
      EXPECT_EQ(errorOf([&] { RepositoryProxy(client.connection(), manager.FindRepository("main", {})).Delete({}); }),
                errorName("Conflict"));
      runningSeen = manager.RunningJobs();
      EXPECT_TRUE(job.Cancelable());
      EXPECT_TRUE(job.ProgressValid());
    }
    if (state != "queued" && state != "running") break;
  }
  auto completed = client.waitForCompleted(path, 10s);
  ASSERT_TRUE(completed) << "no Completed for the backup\n" << d.log();
  EXPECT_TRUE(completed->success) << completed->message;
  EXPECT_EQ(completed->destination, client.uniqueName());
  EXPECT_EQ(job.State(), "succeeded");
  EXPECT_DOUBLE_EQ(job.Progress(), 1.0);
  EXPECT_TRUE(conflictsChecked) << "the backup was never seen running with bytes done";
  EXPECT_EQ(runningSeen, 1u) << "Manager.RunningJobs while the backup ran";

  // Progress went only forward, with several updates on the way.
  for (size_t i = 1; i < progress.size(); ++i) {
    EXPECT_GE(progress[i], progress[i - 1]) << "Progress went back at reading " << i;
    EXPECT_GE(bytes[i], bytes[i - 1]) << "BytesDone went back at reading " << i;
  }
  std::vector<Change> changes = client.changes(path);
  size_t progressChanges = 0, bytesChanges = 0;
  bool valuesSent = false;
  for (const auto& c : changes) {
    EXPECT_EQ(c.interface, kJobIface);
    if (std::count(c.invalidated.begin(), c.invalidated.end(), "Progress")) ++progressChanges;
    if (std::count(c.invalidated.begin(), c.invalidated.end(), "BytesDone")) ++bytesChanges;
    valuesSent = valuesSent || !c.changed.empty();
  }
  EXPECT_GE(progressChanges, 3u) << "PropertiesChanged naming Progress";
  EXPECT_GE(bytesChanges, 3u) << "PropertiesChanged naming BytesDone";
  EXPECT_FALSE(valuesSent) << "job properties are signalled as invalidated names, without values";
  size_t distinct = std::set<double>(progress.begin(), progress.end()).size();
  EXPECT_GE(distinct, 3u) << "Progress readings: " << progress.size();
  // Manager.RunningJobs is signalled with its value.
  bool runningSignalled = false;
  for (const auto& c : client.changes(kManagerPath))
    runningSignalled = runningSignalled || std::count(c.changed.begin(), c.changed.end(), "RunningJobs");
  EXPECT_TRUE(runningSignalled) << "no PropertiesChanged with RunningJobs on the Manager";
  EXPECT_TRUE(bystander.completions(path).empty()) << "Completed reached a client that never looked at the job";
  EXPECT_FALSE(bystander.changes(path).empty()) << "PropertiesChanged is for everyone (it carries no values)";

  // A second backup, cancelled while it runs.
  const std::string cancelPath = manager.StartBackup("big", "spare", {});
  JobProxy cancelled(client.connection(), cancelPath);
  ASSERT_TRUE(pollUntil([&] { return cancelled.State() == "running" && cancelled.BytesDone() > 0; }, 30s))
      << cancelled.State() << " " << cancelled.Message();
  cancelled.Cancel({{"auth.no_user_interaction", sdbus::Variant(true)}});
  completed = client.waitForCompleted(cancelPath, 30s);
  ASSERT_TRUE(completed) << "no Completed for the cancelled backup\n" << d.log();
  EXPECT_FALSE(completed->success);
  EXPECT_TRUE(contains(completed->message, "cancelled")) << completed->message;
  EXPECT_EQ(cancelled.State(), "cancelled");
  EXPECT_FALSE(cancelled.Cancelable());
  EXPECT_EQ(cancelled.Message(), completed->message);
  EXPECT_EQ(manager.RunningJobs(), 0u);
}

// ---- 4. who sees what ----

TEST_F(DbusApi, AUserWithoutARoleSeesOnlyTheirOwnObjects) {
  roleUsers();
  const RoleUser& none = roleUser("none");
  Daemon& d = startDaemon();
  BusClient client(false);
  ManagerProxy manager(client.connection());
  const std::string roots = manager.CreateVolume("roots", "directory", makeDirectory("roots"), {});
  const std::string own = makeDirectory("none-data", 0700);
  ASSERT_EQ(::chown(own.c_str(), none.uid, none.gid), 0);

  json seen = asUser(none, [&](sdbus::IConnection& c) {
    json out;
    VolumeProxy theirs(c, roots);
    out["get"] = failureOf([&] { (void)theirs.Name(); });
    out["get_path"] = errorOf([&] { (void)theirs.Path(); });
    Vardict all = theirs.GetAll(kVolumeIface);
    out["getall_size"] = all.size();
    out["getall_name"] = text(all, "Name");
    out["getall_path"] = text(all, "Path");
    ManagerProxy m(c);
    out["version"] = m.Version();
    out["list_before"] = strings(m.ListVolumes({}));
    out["find"] = errorOf([&] { m.FindVolume("roots", {}); });
    out["delete"] = errorOf([&] { theirs.Delete({}); });
    ObjectsProxy objects(c);
    ManagedObjects managed = objects.GetManagedObjects();
    out["managed_has_roots"] = managed.count(sdbus::ObjectPath(roots)) == 1;
    out["managed_roots_path"] = text(managed[sdbus::ObjectPath(roots)][kVolumeIface], "Path");
    // Their own volume, in their own directory.
    const std::string mine = m.CreateVolume("mine", "directory", own, {});
    out["mine"] = mine;
    VolumeProxy v(c, mine);
    out["mine_name"] = v.Name();
    out["mine_path"] = v.Path();
    out["mine_owner_uid"] = v.OwnerUID();
    out["mine_owner"] = v.Owner();
    out["mine_privileged"] = v.Privileged();
    out["mine_getall_name"] = text(v.GetAll(kVolumeIface), "Name");
    out["list_after"] = strings(m.ListVolumes({}));
    out["find_mine"] = std::string(m.FindVolume("mine", {}));
    out["audit"] = errorOf([&] { m.ListAudit({}); });
    return out;
  });
  ASSERT_FALSE(seen.contains("exception")) << seen.dump();
  EXPECT_EQ(seen.value("get", ""), errorName("NotFound") + ": no such object; see Manager.ListVolumes, ListRepositories, ListSchedules and ListJobs")
      << seen.dump();
  EXPECT_EQ(seen.value("get_path", ""), errorName("NotFound"));
  EXPECT_EQ(seen.value("getall_name", "?"), "") << seen.dump();
  EXPECT_EQ(seen.value("getall_path", "?"), "") << seen.dump();
  EXPECT_EQ(seen.value("version", ""), manager.Version()) << "Manager properties are public";
  EXPECT_EQ(seen.at("list_before"), json::array()) << seen.dump();
  EXPECT_EQ(seen.value("find", ""), errorName("NotFound"));
  EXPECT_EQ(seen.value("delete", ""), errorName("NotFound"));
  EXPECT_EQ(seen.value("managed_roots_path", "?"), "") << seen.dump();
  EXPECT_EQ(seen.value("mine_name", ""), "mine") << seen.dump();
  EXPECT_EQ(seen.value("mine_path", ""), own);
  EXPECT_EQ(seen.value("mine_owner_uid", 0u), none.uid);
  EXPECT_EQ(seen.value("mine_owner", ""), none.name);
  EXPECT_EQ(seen.value("mine_privileged", true), false);
  EXPECT_EQ(seen.value("mine_getall_name", ""), "mine");
  EXPECT_EQ(seen.at("list_after"), json::array({seen.value("mine", "?")})) << seen.dump();
  EXPECT_EQ(seen.value("find_mine", ""), seen.value("mine", "?"));
  EXPECT_EQ(seen.value("audit", ""), errorName("NotAuthorized"));

  // Root's volume is still there; root sees the user's volume as well.
  EXPECT_EQ(std::string(manager.FindVolume("roots", {})), roots);
  const std::string mine = seen.value("mine", "");
  std::vector<sdbus::ObjectPath> all = manager.ListVolumes({});
  EXPECT_TRUE(listed(all, roots));
  EXPECT_TRUE(listed(all, mine));
  VolumeProxy theirs(client.connection(), mine);
  EXPECT_EQ(theirs.Name(), "mine");
  EXPECT_EQ(theirs.OwnerUID(), none.uid);
  EXPECT_EQ(theirs.Owner(), none.name);
  EXPECT_FALSE(theirs.Privileged());
  // The audit trail names the user and the process that called over the bus.
  bool audited = false;
  for (const auto& e : manager.ListAudit({{"user", sdbus::Variant(none.name)}}))
    if (text(e, "method") == "CreateVolume" && text(e, "transport") == "dbus" && number(e, "caller_uid") == static_cast<int64_t>(none.uid) &&
        number(e, "caller_pid") == seen.value("pid", -2))
      audited = true;
  EXPECT_TRUE(audited) << "no audit entry for " << none.name << "'s CreateVolume over D-Bus";
  (void)d;
}

// ---- 5. the bus comes and goes ----

TEST_F(DbusApi, ADaemonStartedWithoutTheBusTakesItsNameWhenTheBusComes) {
  stopBus();
  Daemon& d = makeDaemon();
  const auto started = Clock::now();
  d.start();
  CommandResult status = d.ctl({"status"});
  EXPECT_EQ(status.exitCode, 0) << describe(status);
  EXPECT_TRUE(contains(d.log(), "the D-Bus API is offline")) << d.log();
  // Long enough for a few retries (1 s, then doubling), which must not repeat the message.
  std::this_thread::sleep_until(started + 3500ms);
  EXPECT_EQ(d.ctl({"volume", "create", "early", "--path", makeDirectory("early")}).exitCode, 0);

  startBus();
  const auto busBack = Clock::now();
  ASSERT_TRUE(pollUntil(daemonOnBus, 15s)) << "zerobyted did not take its name within 15 s of the bus starting\n" << d.log();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - busBack);
  EXPECT_LT(took, 11s) << "retries are at most 10 s apart";
  {
    BusClient client(false);
    ManagerProxy manager(client.connection());
    EXPECT_EQ(manager.Version(), d.ctlJson({"status"}).value("version", "?"));
    EXPECT_EQ(manager.AuthorizationMode(), "groups");
    EXPECT_EQ(manager.RunningJobs(), 0u);
    EXPECT_EQ(VolumeProxy(client.connection(), manager.FindVolume("early", {})).Name(), "early");
  }
  EXPECT_EQ(occurrences(d.log(), "the D-Bus API is offline"), 1u) << "logged once, not at every retry\n" << d.log();
  EXPECT_TRUE(contains(d.log(), "serving org.zerobyte.Daemon1 on the system bus")) << d.log();
  EXPECT_EQ(d.ctl({"status"}).exitCode, 0);
}

TEST_F(DbusApi, TheDaemonServesAgainAfterTheBusRestartsAndTheSocketWorksThroughout) {
  Daemon& d = startDaemon();
  std::string volume;
  {
    BusClient client(false);
    ManagerProxy manager(client.connection());
    volume = manager.CreateVolume("kept", "directory", makeDirectory("kept"), {});
  }
  stopBus();
  ASSERT_TRUE(pollUntil([&] { return contains(d.log(), "lost the system bus"); }, 10s)) << d.log();
  EXPECT_TRUE(d.running());
  CommandResult status = d.ctl({"status"});
  EXPECT_EQ(status.exitCode, 0) << describe(status);
  EXPECT_EQ(d.ctl({"volume", "create", "meanwhile", "--path", makeDirectory("meanwhile")}).exitCode, 0);
  std::this_thread::sleep_for(1500ms);  // a retry or two against the missing bus

  startBus();
  ASSERT_TRUE(pollUntil(daemonOnBus, 15s)) << "zerobyted did not come back on the bus\n" << d.log();
  EXPECT_TRUE(d.running());
  {
    BusClient client(false);
    ManagerProxy manager(client.connection());
    EXPECT_FALSE(manager.Version().empty());
    EXPECT_EQ(std::string(manager.FindVolume("kept", {})), volume) << "the same object path as before the restart";
    EXPECT_EQ(VolumeProxy(client.connection(), volume).Name(), "kept");
    EXPECT_EQ(VolumeProxy(client.connection(), manager.FindVolume("meanwhile", {})).Name(), "meanwhile")
        << "what changed while the bus was away is there";
  }
  EXPECT_GE(occurrences(d.log(), "serving org.zerobyte.Daemon1 on the system bus"), 2u) << d.log();
  EXPECT_EQ(d.ctl({"status"}).exitCode, 0);
}

TEST_F(DbusApi, AClientThatLeavesAtOnceDoesNotDisturbTheDaemon) {
  Daemon& d = startDaemon();
  const std::string data = makeDirectory("data");
  makeTree(data, 100);
  makeRandomFiles(data + "/bulk", 2, 20u << 20);
  ASSERT_EQ(d.ctl({"volume", "create", "data", "--path", data}).exitCode, 0);
  ASSERT_EQ(d.ctl({"repo", "create", "main", "--path", d.dir() + "/main"}).exitCode, 0);

  // Starts a backup and leaves at once: the job runs to its end all the same.
  std::string path;
  {
    auto connection = sdbus::createSystemBusConnection();
    ManagerProxy manager(*connection);
    path = manager.StartBackup("data", "main", {});
  }
  json job = d.waitForJob(jobIdOf(path), 60000);
  EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();

  // Leaves before the answer to a call that waits for restic (CreateRepository replies after init).
  {
    auto connection = sdbus::createSystemBusConnection();
    ManagerProxy manager(*connection);
    (void)manager.GetStatus({});  // known to the daemon before it leaves
    auto proxy = sdbus::createProxy(*connection, kBusName, kManagerPath);
    auto pending = proxy->callMethodAsync("CreateRepository")
                       .onInterface(kManagerIface)
                       .withArguments(std::string("late"), std::string("local"), d.dir() + "/late", Vardict{})
                       .uponReplyInvoke([](const sdbus::Error*, sdbus::ObjectPath, sdbus::ObjectPath) {});
    (void)pending;
  }
  // The request was made: its init job runs to its end and the repository is there; the answer
  // goes nowhere.
  std::string lateState;
  auto lateEnded = [&] {
    const json jobs = d.ctlJson({"job", "list"}).at("jobs");
    for (const auto& j : jobs)
      if (j.value("operation", "") == "init" && j.value("repository", "") == "late") lateState = j.value("state", "");
    return !lateState.empty() && lateState != "queued" && lateState != "running";
  };
  EXPECT_TRUE(pollUntil(lateEnded, 30s)) << "the init job of the client that left: \"" << lateState << "\"\n" << d.ctl({"job", "list"}).out;
  EXPECT_EQ(lateState, "succeeded");
  bool lateListed = false;
  const json repositories = d.ctlJson({"repo", "list"}).at("repositories");
  for (const auto& r : repositories) lateListed = lateListed || r.value("name", "") == "late";
  EXPECT_TRUE(lateListed) << d.ctl({"repo", "list"}).out;
  // The daemon answers everyone else on both ends.
  EXPECT_TRUE(d.running());
  EXPECT_EQ(d.ctl({"status"}).exitCode, 0);
  BusClient client(false);
  ManagerProxy manager(client.connection());
  std::vector<Vardict> jobs = manager.ListJobs({});
  bool backupListed = false;
  for (const auto& j : jobs)
    if (number(j, "id") == static_cast<int64_t>(jobIdOf(path))) backupListed = text(j, "state") == "succeeded";
  EXPECT_TRUE(backupListed) << "the backup of the client that left is listed as succeeded";
  for (const auto& j : jobs) EXPECT_NE(text(j, "state"), "running") << "a job of the client that left is stuck";
  EXPECT_FALSE(contains(d.log(), "internal error")) << d.log();
}

}  // namespace
}  // namespace zbtest
