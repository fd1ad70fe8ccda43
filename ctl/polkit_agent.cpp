// Starting, watching and stopping pkttyagent for zerobytectl.
#include "ctl/polkit_agent.h"

#include "common/file_descriptor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>
#include <vector>

namespace zerobyte::ctl {

namespace {

using Clock = std::chrono::steady_clock;

// PF_EXITING in the flags of /proc/PID/stat: set when a process starts to exit, before its
// descriptors are closed.
constexpr unsigned long kPfExiting = 0x4;

// True when the agent has exited or is exiting. Its notify descriptor closes both when it has
// registered and when it dies; only in the second case is it already marked as exiting (the
// kernel sets PF_EXITING before it closes a dying process's descriptors), so this tells the
// two apart without a race.
bool exitingOrGone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return true;
  std::istringstream fields(text.substr(close + 1));
  // Fields 3 (state) to 9 (flags).
  std::string state, ppid, pgrp, session, tty, tpgid;
  unsigned long flags = 0;
  if (!(fields >> state >> ppid >> pgrp >> session >> tty >> tpgid >> flags)) return true;
  return state == "Z" || state == "X" || (flags & kPfExiting) != 0;
}

// Whether this process runs in a logind session, as polkitd finds a subject's session
// (sd_pid_get_session(): a "session-<id>.scope" unit in the process's cgroup path).
bool inLoginSession() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    // "hierarchy:controllers:path"
    const size_t first = line.find(':');
    const size_t second = first == std::string::npos ? std::string::npos : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    std::istringstream path(line.substr(second + 1));
    for (std::string unit; std::getline(path, unit, '/');)
      if (unit.size() > 14 && unit.rfind("session-", 0) == 0 && unit.compare(unit.size() - 6, 6, ".scope") == 0) return true;
  }
  return false;
}

}  // namespace

std::string findInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string directories = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::istringstream in(directories);
  for (std::string directory; std::getline(in, directory, ':');) {
    if (directory.empty()) continue;  // the current directory: never for a program started on the user's behalf
    std::string candidate = directory + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

bool PolkitAgent::start(std::chrono::milliseconds timeout) {
  if (m_pid > 0) return true;
  const std::string binary = findInPath("pkttyagent");
  if (binary.empty()) return false;

  int notify[2];
  if (::pipe2(notify, O_CLOEXEC) != 0) return false;
  FileDescriptor readEnd(notify[0]), writeEnd(notify[1]);
  FileDescriptor devNull(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!devNull.valid()) return false;

  // Everything the child needs is made before fork: after it, only system calls.
  const pid_t self = ::getpid();
  std::vector<std::string> args = {binary, "--process", std::to_string(self), "--notify-fd", std::to_string(writeEnd.get())};
  // --fallback leaves the prompt to the session's own agent (a desktop's dialog) when it has one.
  // polkitd resolves a fallback agent only through the subject's login session, though: for a
  // process outside any (no logind, a container, su without pam_systemd) it never asks it, and
  // the request fails as if no agent ran. There the agent registers plainly; either way it
  // serves this process's requests only.
  if (inLoginSession()) args.emplace_back("--fallback");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // The agent must not outlive zerobytectl, even when it is killed.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != self) ::_exit(127);
    // Prompts go to the controlling terminal; pkttyagent's own complaints ("Authorization not
    // available") would only clutter the output of a machine without polkit.
    ::dup2(devNull.get(), STDOUT_FILENO);
    ::dup2(devNull.get(), STDERR_FILENO);
    // The notify descriptor crosses exec; every other descriptor of ours is close-on-exec.
    ::fcntl(writeEnd.get(), F_SETFD, 0);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  writeEnd.reset();
  m_pid = pid;

  const auto deadline = Clock::now() + timeout;
  bool closed = false;
  while (!closed) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{readEnd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r > 0) {
      char c;
      ssize_t n = ::read(readEnd.get(), &c, 1);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) closed = true;
    }
  }
  if (!closed || exitingOrGone(m_pid)) {
    stop();
    return false;
  }
  return true;
}

void PolkitAgent::stop() {
  if (m_pid <= 0) return;
  const pid_t pid = m_pid;
  m_pid = -1;
  ::kill(pid, SIGTERM);
  // pkttyagent restores the terminal and exits at SIGTERM; a hung one is killed.
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  for (;;) {
    pid_t r = ::waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace zerobyte::ctl
