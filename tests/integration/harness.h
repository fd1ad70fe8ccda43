// Test harness: starts a real zerobyted on a private temporary directory and socket, drives it with the real zerobytectl.
#pragma once

#include "common/varlink_client.h"
#include "tests/support/polkit_env.h"
#include "tests/support/test_servers.h"

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace zbtest {

struct CommandResult {
  int exitCode = -1;
  std::string out;
  std::string err;
};

// Daemon::Options; declared outside the class so that "Options options = {}" compiles (GCC cannot use the
// default member initializers of a nested class in a default argument of its enclosing class).
struct DaemonOptions {
  std::string extraConfig;           // YAML appended after the generated "daemon:" section (volumes:, repositories:, more daemon keys NOT allowed here)
  std::string extraDaemonSettings;   // extra lines inside "daemon:" (already indented by 2), e.g. "  admin_group: zbtest-admins\n"; without an "authorization:" line, "authorization: groups" is added
  bool dropDacCapabilities = false;  // start zerobyted without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (root then cannot read mode-000 files)
  std::string credentialsDirectory;   // when set: CREDENTIALS_DIRECTORY in zerobyted's environment, as systemd sets it for LoadCredential=
  std::vector<std::string> extraEnvironment;  // more "NAME=value" entries for zerobyted's environment
  std::string mountNamespace;  // when set: a mount namespace (e.g. "/proc/PID/ns/mnt") zerobyted enters (setns) before exec
};

class Daemon {
 public:
  using Options = DaemonOptions;
  explicit Daemon(Options options = {});  // mkdtemp under /tmp (mode 0755 so other users reach the socket dir); writes <dir>/zerobyte.yaml
  ~Daemon();                              // stops the daemon if running (SIGTERM, then SIGKILL after 30 s) and removes the directory
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  void start();        // fork/exec ZB_ZEROBYTED --config <dir>/zerobyte.yaml with NOTIFY_SOCKET=<dir>/notify (a SOCK_DGRAM the harness bound);
                       // waits up to 20 s for READY=1; throws std::runtime_error with the daemon log on timeout or early exit
  int stop();          // SIGTERM, wait up to 30 s for the exit by pid, return the exit status (WEXITSTATUS, or 128+signal)
  void kill9();        // SIGKILL the daemon, reap it, then reap orphaned children (the harness is a child subreaper)
  void signal(int sig);
  bool running() const;
  pid_t pid() const;
  const std::string& dir() const;          // the temporary root
  std::string socketPath() const;          // <dir>/run/zerobyted.sock
  std::string configPath() const;
  std::string stateDir() const;            // <dir>/state
  std::string log() const;                 // everything zerobyted wrote to stderr so far (<dir>/daemon.log)
  void writeConfig(const Options& options);  // rewrite the config file (for SIGHUP tests)
  std::vector<std::string> notifications();  // every sd_notify datagram received so far (drains the socket)
  // Waits for a datagram containing `needle` received after the one the previous wait matched (start() counts as a wait for READY=1),
  // so "RELOADING=1" then "READY=1" after SIGHUP does not match the READY=1 of the start.
  bool waitForNotification(const std::string& needle, int timeoutMs);
  // zerobytectl --socket <socket> ARGS...; stdin from `input`; optionally as another uid/gid (setresgid/setresuid in the child, groups cleared
  // or set to the user's groups via initgroups when `asUser` names a user). Bounded: killed after 120 s.
  CommandResult ctl(const std::vector<std::string>& args, const std::string& input = "", const std::string& asUser = "");
  // ctl(args + "--json"), asserts exit 0 (throws with stderr otherwise), parses stdout as one JSON document
  nlohmann::json ctlJson(const std::vector<std::string>& args);
  // A Varlink client connected to the socket.
  std::unique_ptr<zerobyte::varlink::Client> client();
  // Polls GetJob until the job ended (state not queued/running), at most timeoutMs; returns the job JSON.
  nlohmann::json waitForJob(uint64_t id, int timeoutMs = 120000);

  // Additions beyond the shared API:
  // ctl(args + "--json") for commands that print one JSON object per line (--follow, snapshot ls); asserts exit 0.
  std::vector<nlohmann::json> ctlJsonLines(const std::vector<std::string>& args);
  // The pids of live processes whose parent is the daemon (from /proc/*/stat), e.g. its restic children.
  std::vector<pid_t> childPids() const;
  // The exit status of the last daemon that exited (stop() or an observed exit), -1 if none.
  int lastExitStatus() const { return m_lastExitStatus; }

 private:
  // sd_notify blocks once the datagram queue is full (net.unix.max_dgram_qlen, often 10), so a
  // thread reads the notify socket all the time, as systemd does.
  void readNotifications();
  void drainNotificationsLocked();  // receives every queued datagram; m_mutex held
  bool reapDaemon(int timeoutMs);
  void reapOrphans();

  Options m_options;
  std::string m_dir;
  int m_notifyFd = -1;
  int m_wakePipe[2] = {-1, -1};  // tells the reader thread to stop
  std::thread m_notifyReader;
  pid_t m_pid = -1;
  int m_lastExitStatus = -1;
  std::mutex m_mutex;                   // guards m_received
  std::condition_variable m_arrived;    // a datagram was added to m_received
  std::vector<std::string> m_received;  // every datagram since the first start()
  size_t m_waitCursor = 0;              // waitForNotification searches m_received from here
};

// A tree of at least `files` files: nested directories (depth 4+), symlinks (relative, absolute, dangling), empty files,
// names with spaces, unicode (e.g. "café", "日本語", "emoji 😀"), files of varied sizes (0 B to ~1 MiB), varied modes (0600, 0644, 0755, 0640).
void makeTree(const std::string& root, size_t files);
// `count` files "blob<N>" of `bytesEach` incompressible, non-deduplicable bytes in dir (created when missing): slow to back up.
void makeRandomFiles(const std::string& dir, size_t count, size_t bytesEach, uint64_t seed = 1);
// Compares two trees entry by entry with lstat: type, permission bits, uid/gid, size, content bytes, symlink targets, mtime (seconds).
// Returns "" when equal, else a description of the first difference.
std::string compareTrees(const std::string& expected, const std::string& actual);
// Processes (alive or zombie) whose parent is the test process but which the harness did not start itself:
// children of a daemon that died, adopted because the test process is a child subreaper.
std::vector<pid_t> adoptedProcesses();
// A process the test forked itself: the harness must not take it for an adopted orphan (and reap or kill it).
void ownProcess(pid_t pid);
// After the test reaped it.
void disownProcess(pid_t pid);
// Runs `body` in a forked child that has become `user` (initgroups, setresgid, setresuid): a client whose identity the
// daemon learns from the kernel or the bus. Returns what `body` returned, "cannot become USER" when the switch failed,
// or "exception: ..." when it threw; waits for the child as long as it runs.
std::string inChildAs(const std::string& user, const std::function<std::string()>& body);

// A PolkitEnvironment whose dbus-daemon and polkitd the harness counts as the test's own for as long as it
// lives, so that reaping a dead daemon's orphans leaves them alone.
class OwnedPolkitEnvironment : public PolkitEnvironment {
 public:
  explicit OwnedPolkitEnvironment(PolkitEnvironmentOptions options = {});
  ~OwnedPolkitEnvironment();
};
// A directory owned by `uid`:`gid` with `mode`, under the daemon's temporary root (0755); EXPECTs that it worked.
std::string ownedDirectory(const Daemon& daemon, const std::string& name, uid_t uid, gid_t gid, mode_t mode = 0700);
// A file with `content`, owned by `uid`:`gid` with `mode`; EXPECTs that it worked.
void writeOwnedFile(const std::string& path, const std::string& content, uid_t uid, gid_t gid, mode_t mode);
// readAll (a file's whole content, safe for /proc) is in tests/support/test_servers.h.
// "exit N", stdout and stderr of a command, for assertion messages.
// The real uid of a running process (/proc/PID/status), or nothing when it is gone.
std::optional<uid_t> realUidOf(pid_t pid);
// The daemon's restic children running one of `subcommands` ("backup", "check"): snapshot listings, which do not
// count toward the job limit, are left out.
std::vector<pid_t> resticChildren(const Daemon& daemon, const std::set<std::string>& subcommands = {"backup", "check"});
std::string describe(const CommandResult& r);
bool contains(const std::string& text, const std::string& part);
// Runs a program (absolute path) with args, returns exit code and output. Bounded (killed after 300 s).
CommandResult run(const std::vector<std::string>& argv, const std::string& input = "");

}  // namespace zbtest
