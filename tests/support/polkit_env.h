// Test environment for real polkit: a private system bus, polkitd reading the project's policy and
// rules (without touching the host), test users in the role groups, and processes running as them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace zbtest {

// polkit/ of the source tree (ZB_SOURCE_DIR).
std::filesystem::path projectPolkitDir();
// dbus/ of the source tree (ZB_SOURCE_DIR).
std::filesystem::path projectDbusDir();

// A polkit rules file of a test, e.g. {"40-zbt-admin-identity.rules", "polkit.addAdminRule(…);"}.
struct PolkitRulesFile {
  std::string name;  // read in name order together with the project's rules file (40-* before 50-*)
  std::string content;
};

struct PolkitEnvironmentOptions {
  // Copied into the directories polkitd sees as /usr/share/polkit-1/actions and /etc/polkit-1/rules.d.
  std::filesystem::path policyFile = projectPolkitDir() / "org.zerobyte.Daemon1.policy";
  std::filesystem::path rulesFile = projectPolkitDir() / "50-zerobyte.rules";
  // Copied into the bus's test policy directory, read after the stock policy as
  // /usr/share/dbus-1/system.d would be: without it the daemon cannot own its name on the bus.
  std::filesystem::path busPolicyFile = projectDbusDir() / "org.zerobyte.Daemon1.conf";
  // false: only the bus, without polkit on it (for "polkit is not available").
  bool startPolkitd = true;
  // More rules beside rulesFile, in the directory polkitd sees as /etc/polkit-1/rules.d: e.g.
  // the administrator identities (polkit.addAdminRule) that auth_admin asks for.
  std::vector<PolkitRulesFile> extraRules;
};

// A private dbus-daemon with the stock system-bus policy and the project's bus policy, and polkitd
// on it. polkitd runs in a private mount namespace where test directories are bind-mounted over
// /usr/share/polkit-1/actions, /usr/share/polkit-1/rules.d and /etc/polkit-1/rules.d, so it reads
// exactly the project's files and the host stays as it was. While it exists, the process's
// DBUS_SYSTEM_BUS_ADDRESS names this bus (sd-bus and sdbus-c++ follow it). Needs root.
class PolkitEnvironment {
 public:
  using Options = PolkitEnvironmentOptions;
  // Starts both and waits until org.freedesktop.PolicyKit1 is on the bus; throws
  // std::runtime_error with their output when that fails.
  explicit PolkitEnvironment(Options options = {});
  // Stops exactly the processes it started (by pid), restores DBUS_SYSTEM_BUS_ADDRESS, removes
  // the directory (ZBTEST_KEEP=1 keeps it).
  ~PolkitEnvironment();
  PolkitEnvironment(const PolkitEnvironment&) = delete;
  PolkitEnvironment& operator=(const PolkitEnvironment&) = delete;

  // Stops polkitd and the bus, as when the system bus restarts; start() brings both back on the
  // same address.
  void stop();
  void start();

  const std::filesystem::path& dir() const { return m_dir; }
  // "unix:path=<dir>/system_bus_socket"
  std::string busAddress() const;
  // "DBUS_SYSTEM_BUS_ADDRESS=…", for a child's environment (e.g. the daemon harness's extraEnvironment).
  std::string environmentEntry() const;
  pid_t busPid() const { return m_busPid; }
  pid_t polkitdPid() const { return m_polkitdPid; }
  // What dbus-daemon and polkitd printed so far (for failure messages).
  std::string log() const;

 private:
  void startBus();
  void startPolkitd();
  void waitForPolkit();

  Options m_options;
  std::filesystem::path m_dir;
  pid_t m_busPid = -1;
  pid_t m_polkitdPid = -1;
  bool m_hadAddress = false;
  std::string m_oldAddress;
};

// DBUS_SYSTEM_BUS_ADDRESS pointing at a socket that does not exist, for one scope: the daemon
// finds no polkit and decides by groups (the "groups" mode, which "authorization: auto" falls
// back to). To force that mode instead, see kGroupModeDaemonSetting.
class NoSystemBus {
 public:
  NoSystemBus();
  ~NoSystemBus();
  NoSystemBus(const NoSystemBus&) = delete;
  NoSystemBus& operator=(const NoSystemBus&) = delete;
  std::string busAddress() const { return m_address; }
  std::string environmentEntry() const { return "DBUS_SYSTEM_BUS_ADDRESS=" + m_address; }

 private:
  std::string m_address;
  bool m_hadAddress = false;
  std::string m_oldAddress;
};

// The daemon setting that forces the groups mode, for the harness's DaemonOptions::extraDaemonSettings.
inline constexpr std::string_view kGroupModeDaemonSetting = "  authorization: groups\n";

// The groups that carry the roles, as named by polkit/50-zerobyte.rules and the daemon's defaults.
inline constexpr std::string_view kViewersGroup = "zerobyte-viewers";
inline constexpr std::string_view kOperatorsGroup = "zerobyte-operators";
inline constexpr std::string_view kAdminsGroup = "zerobyte-admins";

// A test user with one role: zbt-none (no group), zbt-viewer, zbt-operator, zbt-admin.
struct RoleUser {
  std::string role;   // "none", "viewer", "operator", "admin" (the daemon's roleName())
  std::string name;
  std::string group;  // "" for none
  uid_t uid = 0;
  gid_t gid = 0;
};

// The four role users, created with groupadd/useradd (-m, so they have a home) the first time and
// reused afterwards; a user that exists but lacks its role group is added to it. Needs root.
const std::vector<RoleUser>& roleUsers();
const RoleUser& roleUser(std::string_view role);

// A process (sleep) running as a user with that user's groups: a real polkit subject with its
// own pid, start time and uid. The destructor kills and reaps it.
class UserProcess {
 public:
  explicit UserProcess(const std::string& userName);
  ~UserProcess();
  UserProcess(const UserProcess&) = delete;
  UserProcess& operator=(const UserProcess&) = delete;

  pid_t pid() const { return m_pid; }
  uid_t uid() const { return m_uid; }
  gid_t gid() const { return m_gid; }
  // Field 22 of /proc/PID/stat, as read when it started (polkit's "start-time").
  uint64_t startTime() const { return m_startTime; }
  // A new pidfd for the process (pidfd_open); the caller owns it.
  int openPidfd() const;
  // Kills and reaps it now: its pid no longer names it.
  void exit();

 private:
  pid_t m_pid = -1;
  uid_t m_uid = 0;
  gid_t m_gid = 0;
  uint64_t m_startTime = 0;
  bool m_running = false;
};

// Field 22 of /proc/PID/stat; 0 when the process does not exist.
uint64_t processStartTime(pid_t pid);

// A user that exists only to authenticate (an administrator identity for polkit's auth_admin):
// created with useradd -m the first time, reused afterwards; its password is set with chpasswd
// every time. Needs root. Returns the uid.
uid_t userWithPassword(const std::string& name, const std::string& password);

}  // namespace zbtest
