// ProcessRunner: fork/exec with a clean environment, watched by the event loop.
#include "daemon/process/process_runner.h"

#include "common/errors.h"
#include "daemon/log/log.h"
#include "daemon/process/privilege_drop.h"

#include <openssl/crypto.h>

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/epoll.h>

namespace zerobyte::process {
namespace {

constexpr size_t kMaxLine = 1024 * 1024;

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// A sealed memfd holding the secret: the child reopens it through /dev/fd/N.
int makeSecretFd(const std::string& secret) {
  int fd = memfd_create("zerobyte-secret", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw Error(ErrorCode::Internal, std::string("memfd_create failed: ") + std::strerror(errno));
  size_t off = 0;
  while (off < secret.size()) {
    ssize_t n = ::write(fd, secret.data() + off, secret.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      throw Error(ErrorCode::Internal, std::string("cannot write the secret memfd: ") + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

std::vector<char*> toCArray(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Everything between fork and exec: async-signal-safe calls only.
// The secrets a child receives: each sealed memfd and the fd number the child sees it as.
struct SecretFds {
  static constexpr int kFirst = 3;
  static constexpr int kLast = 9;  // the child setup moves everything it keeps to 10 and above
  std::array<int, kLast - kFirst + 2> source{};  // fds 3 to 9, and 0 (stdin)
  std::array<int, kLast - kFirst + 2> target{};
  size_t count = 0;

  bool isTarget(int fd) const {
    for (size_t i = 0; i < count; ++i)
      if (target[i] == fd) return true;
    return false;
  }
  void closeSources() {
    for (size_t i = 0; i < count; ++i) closeFd(source[i]);
    count = 0;
  }
};

[[noreturn]] void childSetup(const ProcessSpec& spec, const ChildIdentity& identity, char** argv, char** envp, int outFd,
                             int errFd, SecretFds secrets, int statusFd, pid_t parent) {
  auto fail = [&statusFd](int step) {
    int payload[2] = {step, errno};
    [[maybe_unused]] ssize_t n = ::write(statusFd, payload, sizeof(payload));
    _exit(127);
  };
  // Signals: everything back to defaults, nothing blocked (the daemon blocks several for sd-event).
  for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (setpgid(0, 0) < 0) fail(1);
  // Die with the daemon: a crash must not leave restic running with a lock held.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail(2);
  if (getppid() != parent) _exit(127);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(3);

  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) fail(4);
  // Move every fd we keep to 10 and above first, so no dup2 below clobbers one of them.
  const auto moveUp = [&fail](int& fd) {
    if (fd >= 0 && fd < 10) {
      int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
      if (moved < 0) fail(5);
      fd = moved;
    }
  };
  int stdio = spec.stdioFd;
  moveUp(stdio);
  moveUp(devnull);
  moveUp(outFd);
  moveUp(errFd);
  moveUp(statusFd);
  for (size_t i = 0; i < secrets.count; ++i) moveUp(secrets.source[i]);
  if (dup2(devnull, 0) < 0 || dup2(outFd, 1) < 0 || dup2(errFd, 2) < 0) fail(6);
  if (stdio >= 0 && (dup2(stdio, 0) < 0 || dup2(stdio, 1) < 0)) fail(6);
  // dup2 leaves the new fd without close-on-exec: the secrets survive exec, nothing else below 10 does.
  // A secret given as fd 0 replaces /dev/null as stdin (e.g. sshfs -o password_stdin).
  for (size_t i = 0; i < secrets.count; ++i)
    if (dup2(secrets.source[i], secrets.target[i]) < 0) fail(7);
  // Close everything else but the status pipe (close-on-exec: it closes when exec succeeds).
  for (int fd = SecretFds::kFirst; fd < 10; ++fd)
    if (!secrets.isTarget(fd)) ::close(fd);
  if (statusFd > 10) syscall(SYS_close_range, 10U, static_cast<unsigned>(statusFd - 1), 0U);
  syscall(SYS_close_range, static_cast<unsigned>(statusFd + 1), ~0U, 0U);
  // After no_new_privs (above): nothing exec'd can regain what is dropped here. A failed drop never runs the program.
  constexpr int kDropFailure[] = {0, 8, 9, 10, 13, 14};  // indexed by DropStep; see stepName()
  if (DropStep step = dropPrivileges(identity); step != DropStep::None) fail(kDropFailure[static_cast<int>(step)]);
  if (chdir(spec.cwd.c_str()) < 0) fail(11);
  execve(argv[0], argv, envp);
  fail(12);
  _exit(127);
}

const char* stepName(int step) {
  switch (step) {
    case 11: return "chdir to the working directory";
    case 12: return "exec";
    case 8: return "drop privileges (setgroups)";
    case 9: return "drop privileges (setresgid)";
    case 10: return "drop privileges (setresuid)";
    case 13: return "drop privileges (clear capabilities)";
    case 14: return "drop privileges (the child could become root again)";
    default: return "set up the child";
  }
}

}  // namespace

std::string ProcessResult::describe() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return std::string("killed by SIG") + (name ? name : std::to_string(signal));
  }
  return "exit status " + std::to_string(exitCode);
}

ProcessRunner::ProcessRunner(loop::EventLoop& loop) : m_loop(loop) {}

std::shared_ptr<Process> ProcessRunner::start(ProcessSpec spec, ProcessCallbacks callbacks) {
  std::shared_ptr<Process> p(new Process(*this, std::move(spec), std::move(callbacks)));
  p->m_self = p;
  try {
    p->start();
  } catch (...) {
    p->m_self.reset();
    throw;
  }
  m_children[p->m_pid] = p;
  ++m_running;
  return p;
}

void ProcessRunner::cancelAll() {
  for (auto& [pid, weak] : m_children)
    if (auto p = weak.lock()) p->cancel();
}

Process::Process(ProcessRunner& runner, ProcessSpec spec, ProcessCallbacks callbacks)
    : m_runner(runner), m_spec(std::move(spec)), m_callbacks(std::move(callbacks)) {}

Process::~Process() {
  closeFd(m_pipes[0]);
  closeFd(m_pipes[1]);
  // Secrets still here were never handed to a child (start() failed before the fork).
  if (m_spec.secret) OPENSSL_cleanse(m_spec.secret->data(), m_spec.secret->size());
  for (auto& [target, secret] : m_spec.secrets) OPENSSL_cleanse(secret.data(), secret.size());
}

void Process::start() {
  if (m_spec.argv.empty() || m_spec.argv[0].empty() || m_spec.argv[0][0] != '/')
    throw Error(ErrorCode::Internal, "a child program must be given by absolute path");
  std::vector<int> targets;
  if (m_spec.secret) targets.push_back(m_spec.secretFd);
  for (const auto& [target, secret] : m_spec.secrets) targets.push_back(target);
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i] != 0 && (targets[i] < SecretFds::kFirst || targets[i] > SecretFds::kLast))
      throw Error(ErrorCode::Internal, "a secret's fd must be 0 (stdin) or from 3 to 9, not " + std::to_string(targets[i]));
    if (std::find(targets.begin() + static_cast<long>(i) + 1, targets.end(), targets[i]) != targets.end())
      throw Error(ErrorCode::Internal, "two secrets are given the same fd " + std::to_string(targets[i]));
  }
  if (m_spec.uid && !m_spec.gid)
    throw Error(ErrorCode::Internal, "a child given a uid needs a gid too, or it would keep root's group");
  // Prepared here: the child only reads it (no allocation after fork).
  ChildIdentity identity;
  identity.setGroups = m_spec.groups || m_spec.uid || m_spec.gid;
  if (m_spec.groups) {
    identity.groups = m_spec.groups->data();
    identity.groupCount = m_spec.groups->size();
  }
  identity.setGid = m_spec.gid.has_value();
  identity.gid = m_spec.gid.value_or(0);
  identity.setUid = m_spec.uid.has_value();
  identity.uid = m_spec.uid.value_or(0);
  identity.limitCapabilities = m_spec.capabilities.has_value();
  identity.capabilities = m_spec.capabilities.value_or(0);
  int outPipe[2], errPipe[2], statusPipe[2];
  if (pipe2(outPipe, O_CLOEXEC) < 0) throw Error(ErrorCode::Failed, std::string("pipe: ") + std::strerror(errno));
  if (pipe2(errPipe, O_CLOEXEC) < 0) {
    ::close(outPipe[0]);
    ::close(outPipe[1]);
    throw Error(ErrorCode::Failed, std::string("pipe: ") + std::strerror(errno));
  }
  if (pipe2(statusPipe, O_CLOEXEC) < 0) {
    for (int fd : {outPipe[0], outPipe[1], errPipe[0], errPipe[1]}) ::close(fd);
    throw Error(ErrorCode::Failed, std::string("pipe: ") + std::strerror(errno));
  }
  SecretFds secretFds;
  try {
    if (m_spec.secret) {
      secretFds.source[secretFds.count] = makeSecretFd(*m_spec.secret);
      secretFds.target[secretFds.count++] = m_spec.secretFd;
    }
    for (const auto& [target, secret] : m_spec.secrets) {
      secretFds.source[secretFds.count] = makeSecretFd(secret);
      secretFds.target[secretFds.count++] = target;
    }
  } catch (...) {
    secretFds.closeSources();
    for (int fd : {outPipe[0], outPipe[1], errPipe[0], errPipe[1], statusPipe[0], statusPipe[1]}) ::close(fd);
    throw;
  }
  std::vector<std::string> argvStrings = m_spec.argv;
  std::vector<std::string> envStrings = m_spec.env;
  auto argv = toCArray(argvStrings);
  auto envp = toCArray(envStrings);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) childSetup(m_spec, identity, argv.data(), envp.data(), outPipe[1], errPipe[1], secretFds, statusPipe[1], parent);
  int forkErrno = errno;
  ::close(outPipe[1]);
  ::close(errPipe[1]);
  ::close(statusPipe[1]);
  secretFds.closeSources();
  // Wipe our copies; the memfds were the only other place.
  if (m_spec.secret) {
    OPENSSL_cleanse(m_spec.secret->data(), m_spec.secret->size());
    m_spec.secret.reset();
  }
  for (auto& [target, secret] : m_spec.secrets) OPENSSL_cleanse(secret.data(), secret.size());
  m_spec.secrets.clear();
  if (pid < 0) {
    for (int fd : {outPipe[0], errPipe[0], statusPipe[0]}) ::close(fd);
    throw Error(ErrorCode::Failed, std::string("fork failed: ") + std::strerror(forkErrno));
  }
  // exec succeeded when the status pipe closes without data.
  int payload[2] = {0, 0};
  ssize_t n;
  do n = ::read(statusPipe[0], payload, sizeof(payload));
  while (n < 0 && errno == EINTR);
  ::close(statusPipe[0]);
  if (n == static_cast<ssize_t>(sizeof(payload))) {
    int status = 0;
    waitpid(pid, &status, 0);
    ::close(outPipe[0]);
    ::close(errPipe[0]);
    throw Error(ErrorCode::Failed, "cannot start " + m_spec.argv[0] + ": " + stepName(payload[0]) + " failed: " + std::strerror(payload[1]));
  }
  m_pid = pid;
  m_pipes[0] = outPipe[0];
  m_pipes[1] = errPipe[0];
  for (int i = 0; i < 2; ++i) {
    fcntl(m_pipes[i], F_SETFL, fcntl(m_pipes[i], F_GETFL) | O_NONBLOCK);
    m_io[i] = std::make_unique<loop::IoSource>(m_runner.m_loop, m_pipes[i], EPOLLIN, [this, i](uint32_t ev) { onReadable(i, ev); });
  }
  m_child = std::make_unique<loop::ChildSource>(m_runner.m_loop, pid, [this](const siginfo_t& info) { onReaped(info); });
  if (m_spec.timeout.count() > 0) {
    m_timeout = std::make_unique<loop::TimerSource>(m_runner.m_loop, m_spec.timeout, [this] {
      m_result.timedOut = true;
      cancel();
    });
  }
}

void Process::onReadable(int which, uint32_t) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(m_pipes[which], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    auto& deliver = which == 0 ? m_callbacks.onStdoutLine : m_callbacks.onStderrLine;
    if (n <= 0) {
      if (!m_partial[which].empty() && deliver) deliver(m_partial[which]);
      m_partial[which].clear();
      m_io[which].reset();
      closeFd(m_pipes[which]);
      maybeFinish();
      return;
    }
    std::string& partial = m_partial[which];
    partial.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1)
      if (deliver) deliver(std::string_view(partial).substr(start, nl - start));
    partial.erase(0, start);
    if (partial.size() > kMaxLine) {
      if (deliver) deliver(partial);
      partial.clear();
    }
    if (static_cast<size_t>(n) < sizeof(buf)) return;
  }
}

void Process::onReaped(const siginfo_t& info) {
  m_reaped = true;
  if (info.si_code == CLD_EXITED)
    m_result.exitCode = info.si_status;
  else
    m_result.signal = info.si_status;
  m_child.reset();
  m_killTimer.reset();
  m_timeout.reset();
  m_runner.m_children.erase(m_pid);
  --m_runner.m_running;
  maybeFinish();
}

void Process::maybeFinish() {
  if (m_finished || !m_reaped || m_pipes[0] >= 0 || m_pipes[1] >= 0) return;
  m_finished = true;
  auto self = std::move(m_self);  // keep alive through the callback
  if (m_callbacks.onExit) m_callbacks.onExit(m_result);
  m_callbacks = {};
}

void Process::sendSignal(int sig) {
  if (m_reaped || m_pid <= 0) return;
  // The child leads its own process group: reach its helpers too.
  if (::kill(-m_pid, sig) < 0) ::kill(m_pid, sig);
}

void Process::cancel() {
  if (m_reaped || m_result.cancelled) return;
  m_result.cancelled = true;
  sendSignal(SIGTERM);
  m_killTimer = std::make_unique<loop::TimerSource>(m_runner.m_loop, m_spec.killGrace, [this] {
    log::warning("process " + std::to_string(m_pid) + " (" + m_spec.argv[0] + ") did not stop after SIGTERM; sending SIGKILL");
    sendSignal(SIGKILL);
  });
}

SyncResult runSync(const std::vector<std::string>& argvIn, const std::vector<std::string>& envIn) {
  std::vector<std::string> argvStrings = argvIn, envStrings = envIn;
  auto argv = toCArray(argvStrings);
  auto envp = toCArray(envStrings);
  int out[2];
  if (pipe2(out, O_CLOEXEC) < 0) throw Error(ErrorCode::Failed, std::string("pipe: ") + std::strerror(errno));
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(devnull, 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(out[1]);
  if (pid < 0) {
    ::close(out[0]);
    throw Error(ErrorCode::Failed, std::string("fork: ") + std::strerror(errno));
  }
  SyncResult result;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (result.output.size() < 1024 * 1024) result.output.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string findExecutable(std::string_view name, std::string_view searchPath) {
  if (!name.empty() && name[0] == '/') return access(std::string(name).c_str(), X_OK) == 0 ? std::string(name) : std::string();
  size_t start = 0;
  while (start <= searchPath.size()) {
    size_t end = searchPath.find(':', start);
    if (end == std::string_view::npos) end = searchPath.size();
    std::string dir(searchPath.substr(start, end - start));
    if (!dir.empty()) {
      std::string candidate = dir + "/" + std::string(name);
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return {};
}

}  // namespace zerobyte::process
