// ProcessRunner: the one way the daemon starts children (argv only, clean environment, secret pipe, cancellation).
#pragma once

#include "daemon/loop/event_loop.h"

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace zerobyte::process {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path; never a shell
  std::vector<std::string> env;   // the child's whole environment, "NAME=value"
  std::string cwd = "/";
  // Written to a sealed memfd that the child sees as `secretFd` (e.g. RESTIC_PASSWORD_FILE=/dev/fd/3).
  std::optional<std::string> secret;
  int secretFd = 3;
  // More secrets, each in its own sealed memfd seen by the child as the given fd (e.g. restic's
  // --new-password-file /dev/fd/4). Every fd is from 3 to 9, or 0 to give a secret as stdin (instead of
  // /dev/null), and used once, `secretFd` included.
  std::vector<std::pair<int, std::string>> secrets;
  // Drop to this user before exec: setgroups, then setresgid, then setresuid, all after no_new_privs. A non-root
  // uid also leaves the child without any capability (effective, permitted, inheritable, ambient, bounding).
  // A uid needs a gid: keeping group 0 would keep root's group access.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  // Supplementary groups (the user's, as users::Identity::groups lists them). Without it, a child given a uid
  // or gid has none: never root's.
  std::optional<std::vector<gid_t>> groups;
  // A child that stays root keeps only these capabilities (bit N = capability N, as in <linux/capability.h>);
  // unset: all of the daemon's.
  std::optional<uint64_t> capabilities;
  // When set: the child's stdin and stdout are this fd (one end of a socketpair that connects two children, e.g.
  // sshfs -o passive and rclone serve sftp --stdio); onStdoutLine then sees nothing. The caller closes its copy.
  int stdioFd = -1;
  std::chrono::seconds timeout{0};     // 0: none; then cancelled as by cancel()
  std::chrono::seconds killGrace{10};  // SIGTERM, then SIGKILL after this
};

struct ProcessResult {
  int exitCode = -1;  // when exited normally
  int signal = 0;     // when killed by a signal
  bool cancelled = false;
  bool timedOut = false;
  bool success() const { return signal == 0 && exitCode == 0; }
  std::string describe() const;  // "exit status 3", "killed by SIGKILL"
};

struct ProcessCallbacks {
  std::function<void(std::string_view line)> onStdoutLine;  // without the newline
  std::function<void(std::string_view line)> onStderrLine;
  // After the child was reaped and both pipes are drained.
  std::function<void(const ProcessResult&)> onExit;
};

class ProcessRunner;

// A running child. Dropping the handle does not stop the child; cancel() does.
class Process {
 public:
  ~Process();
  pid_t pid() const noexcept { return m_pid; }
  bool running() const noexcept { return !m_reaped; }
  // SIGTERM to the child's process group, SIGKILL after the grace period.
  void cancel();

 private:
  friend class ProcessRunner;
  Process(ProcessRunner& runner, ProcessSpec spec, ProcessCallbacks callbacks);
  void start();
  void onReadable(int which, uint32_t revents);
  void onReaped(const siginfo_t& info);
  void sendSignal(int signal);
  void maybeFinish();

  ProcessRunner& m_runner;
  ProcessSpec m_spec;
  ProcessCallbacks m_callbacks;
  pid_t m_pid = -1;
  int m_pipes[2] = {-1, -1};  // stdout, stderr read ends
  std::string m_partial[2];
  std::unique_ptr<loop::IoSource> m_io[2];
  std::unique_ptr<loop::ChildSource> m_child;
  std::unique_ptr<loop::TimerSource> m_killTimer;
  std::unique_ptr<loop::TimerSource> m_timeout;
  ProcessResult m_result;
  bool m_reaped = false;
  bool m_finished = false;
  std::shared_ptr<Process> m_self;  // keeps the process alive until it finished
};

class ProcessRunner {
 public:
  explicit ProcessRunner(loop::EventLoop& loop);
  // Throws Error(Failed) when the program cannot be started (the message has exec's errno).
  std::shared_ptr<Process> start(ProcessSpec spec, ProcessCallbacks callbacks);
  size_t running() const noexcept { return m_running; }
  // For shutdown: cancel every child.
  void cancelAll();
  loop::EventLoop& loop() noexcept { return m_loop; }

 private:
  friend class Process;
  loop::EventLoop& m_loop;
  size_t m_running = 0;
  std::unordered_map<pid_t, std::weak_ptr<Process>> m_children;
};

// Runs a program to completion without the loop (startup checks like `restic version`).
// Returns exit code and stdout; throws Error(Failed) if it cannot start.
struct SyncResult {
  int exitCode = -1;
  std::string output;
};
SyncResult runSync(const std::vector<std::string>& argv, const std::vector<std::string>& env);

// The first executable `name` on PATH-like `searchPath`, or empty.
std::string findExecutable(std::string_view name, std::string_view searchPath);

}  // namespace zerobyte::process
