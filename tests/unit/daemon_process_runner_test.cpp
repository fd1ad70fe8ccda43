// Unit tests of ProcessRunner on a real sd-event loop: output lines, exit status, secrets on an fd, clean environment,
// cancellation with SIGTERM then SIGKILL, process groups, inherited file descriptors and the privilege drop.
#include "common/errors.h"
#include "daemon/loop/event_loop.h"
#include "daemon/process/process_runner.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace zerobyte::process {
namespace {

using namespace std::chrono_literals;
using zbtest::unit::readFile;
using zbtest::unit::ScopedEnvironment;

constexpr const char* kPython = "/usr/bin/python3";

// ProcessSpec has members without default initializers: built step by step.
class Spec {
 public:
  explicit Spec(std::vector<std::string> argv) { m_spec.argv = std::move(argv); }
  Spec& env(std::vector<std::string> env) {
    m_spec.env = std::move(env);
    return *this;
  }
  Spec& cwd(std::string cwd) {
    m_spec.cwd = std::move(cwd);
    return *this;
  }
  Spec& secret(std::string secret, int fd = 3) {
    m_spec.secret = std::move(secret);
    m_spec.secretFd = fd;
    return *this;
  }
  Spec& user(uid_t uid, gid_t gid) {
    m_spec.uid = uid;
    m_spec.gid = gid;
    return *this;
  }
  Spec& timeout(std::chrono::seconds t) {
    m_spec.timeout = t;
    return *this;
  }
  Spec& killGrace(std::chrono::seconds t) {
    m_spec.killGrace = t;
    return *this;
  }
  operator ProcessSpec() const { return m_spec; }

 private:
  ProcessSpec m_spec;
};

struct Outcome {
  std::vector<std::string> out;
  std::vector<std::string> err;
  std::optional<ProcessResult> result;
};

class ProcessRunnerTest : public ::testing::Test {
 protected:
  // SIGCHLD must be blocked before the loop watches children.
  static void SetUpTestSuite() { loop::blockSignals(); }

  void TearDown() override {
    // A failed test must not leave a child behind.
    for (auto& [process, outcome] : m_started) {
      if (process->running()) process->cancel();
      drive(*outcome, 15s);
    }
  }

  std::shared_ptr<Outcome> start(ProcessSpec spec) {
    auto outcome = std::make_shared<Outcome>();
    ProcessCallbacks callbacks;
    callbacks.onStdoutLine = [outcome](std::string_view line) { outcome->out.emplace_back(line); };
    callbacks.onStderrLine = [outcome](std::string_view line) { outcome->err.emplace_back(line); };
    callbacks.onExit = [outcome](const ProcessResult& result) { outcome->result = result; };
    auto process = m_runner.start(std::move(spec), std::move(callbacks));
    m_started.emplace_back(process, outcome);
    return outcome;
  }

  std::shared_ptr<Process> lastProcess() { return m_started.back().first; }

  // Runs the loop until the child's onExit fired, or the limit passed.
  bool drive(const Outcome& outcome, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!outcome.result && std::chrono::steady_clock::now() < deadline) {
      int r = sd_event_run(m_loop.get(), 100000);
      if (r < 0) {
        ADD_FAILURE() << "sd_event_run failed: " << r;
        return false;
      }
    }
    return outcome.result.has_value();
  }

  // Runs the loop until `predicate` holds, or the limit passed.
  template <typename Predicate>
  bool driveUntil(Predicate predicate, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!predicate() && std::chrono::steady_clock::now() < deadline) sd_event_run(m_loop.get(), 50000);
    return predicate();
  }

  Outcome runToEnd(ProcessSpec spec, std::chrono::milliseconds limit = 20s) {
    auto outcome = start(std::move(spec));
    EXPECT_TRUE(drive(*outcome, limit)) << "the child did not finish in time";
    return *outcome;
  }

  loop::EventLoop m_loop;
  ProcessRunner m_runner{m_loop};
  std::vector<std::pair<std::shared_ptr<Process>, std::shared_ptr<Outcome>>> m_started;
};

TEST_F(ProcessRunnerTest, EchoDeliversItsLineAndExitsZero) {
  auto o = runToEnd(Spec({"/bin/echo", "hello", "world"}));
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.out, (std::vector<std::string>{"hello world"}));
  EXPECT_TRUE(o.err.empty());
  EXPECT_EQ(o.result->exitCode, 0);
  EXPECT_EQ(o.result->signal, 0);
  EXPECT_TRUE(o.result->success());
  EXPECT_FALSE(o.result->cancelled);
  EXPECT_EQ(o.result->describe(), "exit status 0");
  EXPECT_EQ(m_runner.running(), 0U);
}

TEST_F(ProcessRunnerTest, ExitCodesAreReported) {
  auto f = runToEnd(Spec({"/bin/false"}));
  ASSERT_TRUE(f.result);
  EXPECT_EQ(f.result->exitCode, 1);
  EXPECT_FALSE(f.result->success());

  auto p = runToEnd(Spec({kPython, "-c", "import sys; sys.exit(42)"}));
  ASSERT_TRUE(p.result);
  EXPECT_EQ(p.result->exitCode, 42);
  EXPECT_EQ(p.result->signal, 0);
  EXPECT_EQ(p.result->describe(), "exit status 42");
}

TEST_F(ProcessRunnerTest, StderrLinesArriveSeparatelyIncludingAnUnterminatedLastLine) {
  auto o = runToEnd(Spec({kPython, "-c",
                         "import sys; sys.stdout.write('out1\\nout2\\n'); sys.stdout.flush(); "
                         "sys.stderr.write('err1\\nerr2\\nerr3-no-newline'); sys.exit(3)"}));
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.out, (std::vector<std::string>{"out1", "out2"}));
  EXPECT_EQ(o.err, (std::vector<std::string>{"err1", "err2", "err3-no-newline"}));
  EXPECT_EQ(o.result->exitCode, 3);

  auto ls = runToEnd(Spec({"/bin/ls", "/nonexistent-zerobyte-test-path"}));
  ASSERT_TRUE(ls.result);
  EXPECT_EQ(ls.result->exitCode, 2);
  ASSERT_EQ(ls.err.size(), 1U);
  EXPECT_NE(ls.err[0].find("/nonexistent-zerobyte-test-path"), std::string::npos) << ls.err[0];
  EXPECT_TRUE(ls.out.empty());
}

TEST_F(ProcessRunnerTest, ManyLinesArriveCompleteAndInOrder) {
  auto o = runToEnd(Spec({kPython, "-c", "for i in range(20000): print('line %d %s' % (i, 'x' * (i % 300)))"}));
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.result->exitCode, 0);
  ASSERT_EQ(o.out.size(), 20000U);
  for (size_t i = 0; i < o.out.size(); i += 997)
    EXPECT_EQ(o.out[i], "line " + std::to_string(i) + " " + std::string(i % 300, 'x'));
  EXPECT_EQ(o.out.back(), "line 19999 " + std::string(19999 % 300, 'x'));
}

TEST_F(ProcessRunnerTest, SecretArrivesOnFd3) {
  const std::string secret = "correct horse battery staple \x01 ünïcode";
  auto o = runToEnd(Spec({"/bin/cat", "/dev/fd/3"}).secret(secret));
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.result->exitCode, 0) << (o.err.empty() ? "" : o.err[0]);
  EXPECT_EQ(o.out, (std::vector<std::string>{secret}));
}

TEST_F(ProcessRunnerTest, ASecretGivenAsFdZeroIsTheChildsStdin) {
  ProcessSpec spec = Spec({"/bin/cat"});
  spec.secrets = {{0, "typed at no terminal\n"}};
  auto o = runToEnd(spec);
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.result->exitCode, 0) << (o.err.empty() ? "" : o.err[0]);
  EXPECT_EQ(o.out, (std::vector<std::string>{"typed at no terminal"}));
}

// Two children talking over a socket pair, each with it as stdin and stdout (how the rclone bridge runs).
TEST_F(ProcessRunnerTest, AStdioFdConnectsTwoChildren) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  ProcessSpec writer = Spec({kPython, "-c", "import sys; sys.stdout.write('ping\\n'); sys.stdout.flush(); print(sys.stdin.readline().strip(), file=sys.stderr)"});
  writer.stdioFd = pair[0];
  ProcessSpec echo = Spec({kPython, "-c", "import sys; l = sys.stdin.readline(); sys.stdout.write(l.strip() + ' pong\\n'); sys.stdout.flush()"});
  echo.stdioFd = pair[1];
  std::vector<std::string> heard;
  int ended = 0;
  ProcessCallbacks a;
  a.onStderrLine = [&](std::string_view line) { heard.emplace_back(line); };
  a.onExit = [&](const ProcessResult&) { ++ended; };
  ProcessCallbacks b;
  b.onExit = [&](const ProcessResult&) { ++ended; };
  m_runner.start(std::move(writer), std::move(a));
  m_runner.start(std::move(echo), std::move(b));
  ::close(pair[0]);
  ::close(pair[1]);
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (ended < 2 && std::chrono::steady_clock::now() < until) sd_event_run(m_loop.get(), 100000);
  EXPECT_EQ(ended, 2);
  EXPECT_EQ(heard, (std::vector<std::string>{"ping pong"}));
}

TEST_F(ProcessRunnerTest, SecretOnAnotherFdNumberWhenAsked) {
  auto o = runToEnd(Spec({"/bin/cat", "/dev/fd/5"}).secret("on five", 5));
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.result->exitCode, 0) << (o.err.empty() ? "" : o.err[0]);
  EXPECT_EQ(o.out, (std::vector<std::string>{"on five"}));
}

TEST_F(ProcessRunnerTest, SecretIsNeitherInTheCommandLineNorInTheEnvironment) {
  const std::string secret = "zb-secret-9f8e7d6c5b4a";
  auto o = start(Spec({"/bin/sleep", "30"}).env({"PATH=/usr/bin:/bin", "HOME=/"}).secret(secret));
  pid_t pid = lastProcess()->pid();
  ASSERT_GT(pid, 0);
  std::string proc = "/proc/" + std::to_string(pid);
  std::string cmdline = readFile(proc + "/cmdline");
  std::string environ = readFile(proc + "/environ");
  ASSERT_NE(cmdline.find("sleep"), std::string::npos) << "reading /proc works";
  EXPECT_EQ(cmdline.find(secret), std::string::npos);
  EXPECT_EQ(environ.find(secret), std::string::npos);
  EXPECT_NE(environ.find("HOME=/"), std::string::npos);
  // It is there, though, for the child to read: on fd 3 only.
  EXPECT_EQ(readFile(proc + "/fd/3"), secret);
  lastProcess()->cancel();
  EXPECT_TRUE(drive(*o, 15s));
}

TEST_F(ProcessRunnerTest, EnvironmentIsExactlyWhatWasGiven) {
  ScopedEnvironment leak("ZB_TEST_LEAK_CHECK", "from-the-parent");
  auto o = runToEnd(Spec({"/usr/bin/env"}).env({"ALPHA=1", "BETA=two words", "EMPTY="}));
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.result->exitCode, 0);
  EXPECT_EQ(o.out, (std::vector<std::string>{"ALPHA=1", "BETA=two words", "EMPTY="}));

  auto empty = runToEnd(Spec({"/usr/bin/env"}));
  ASSERT_TRUE(empty.result);
  EXPECT_TRUE(empty.out.empty()) << empty.out.size() << " variables, first: " << (empty.out.empty() ? "" : empty.out[0]);
}

TEST_F(ProcessRunnerTest, WorkingDirectoryIsTheOneGiven) {
  auto o = runToEnd(Spec({"/bin/pwd"}).cwd("/tmp"));
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.out, (std::vector<std::string>{"/tmp"}));
  auto root = runToEnd(Spec({"/bin/pwd"}));
  EXPECT_EQ(root.out, (std::vector<std::string>{"/"}));
}

TEST_F(ProcessRunnerTest, NonExistentProgramThrowsFailedNamingIt) {
  try {
    start(Spec({"/nonexistent/zerobyte-no-such-program", "--flag"}));
    FAIL() << "start() returned for a program that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Failed);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/zerobyte-no-such-program"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  EXPECT_EQ(m_runner.running(), 0U);
}

TEST_F(ProcessRunnerTest, MissingWorkingDirectoryThrowsInsteadOfStarting) {
  try {
    start(Spec({"/bin/true"}).cwd("/nonexistent-zerobyte-cwd"));
    FAIL() << "start() returned with a working directory that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Failed);
    EXPECT_NE(std::string(e.what()).find("/bin/true"), std::string::npos) << e.what();
  }
}

TEST_F(ProcessRunnerTest, RelativeProgramPathIsRefused) {
  EXPECT_THROW(start(Spec({"sleep", "1"})), Error);
  EXPECT_THROW(start(Spec({})), Error);
}

TEST_F(ProcessRunnerTest, CancelEndsSleepWithSigterm) {
  auto o = start(Spec({"/bin/sleep", "100"}));
  auto process = lastProcess();
  EXPECT_TRUE(process->running());
  EXPECT_EQ(m_runner.running(), 1U);
  auto before = std::chrono::steady_clock::now();
  process->cancel();
  ASSERT_TRUE(drive(*o, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  EXPECT_TRUE(o->result->cancelled);
  EXPECT_FALSE(o->result->timedOut);
  EXPECT_EQ(o->result->signal, SIGTERM);
  EXPECT_FALSE(o->result->success());
  EXPECT_EQ(o->result->describe(), "killed by SIGTERM");
  EXPECT_FALSE(process->running());
  EXPECT_EQ(m_runner.running(), 0U);
}

TEST_F(ProcessRunnerTest, ChildIgnoringSigtermIsKilledAfterTheGracePeriod) {
  ASSERT_EQ(access(kPython, X_OK), 0) << kPython << " is needed for this test";
  auto o = start(Spec({kPython, "-c",
                           "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                           "time.sleep(100)"})
                      .killGrace(1s));
  auto process = lastProcess();
  ASSERT_TRUE(driveUntil([&] { return !o->out.empty() || o->result; }, 20s)) << "python did not start";
  ASSERT_EQ(o->out, (std::vector<std::string>{"ready"}));
  auto before = std::chrono::steady_clock::now();
  process->cancel();
  // Still alive shortly after SIGTERM.
  driveUntil([&] { return o->result.has_value(); }, 500ms);
  EXPECT_FALSE(o->result.has_value()) << "the child should have ignored SIGTERM";
  ASSERT_TRUE(drive(*o, 15s));
  auto elapsed = std::chrono::steady_clock::now() - before;
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 8s);
  EXPECT_TRUE(o->result->cancelled);
  EXPECT_EQ(o->result->signal, SIGKILL);
  EXPECT_EQ(o->result->describe(), "killed by SIGKILL");
}

TEST_F(ProcessRunnerTest, TimeoutCancelsTheChild) {
  auto o = start(Spec({"/bin/sleep", "100"}).timeout(1s));
  auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(drive(*o, 15s));
  EXPECT_GE(std::chrono::steady_clock::now() - before, 900ms);
  EXPECT_TRUE(o->result->timedOut);
  EXPECT_TRUE(o->result->cancelled);
  EXPECT_EQ(o->result->signal, SIGTERM);
}

std::vector<std::string> statFields(pid_t pid) {
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  // The command name is in parentheses and may contain spaces: fields start after the last ')'.
  std::vector<std::string> fields;
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(stat.substr(close + 2));
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;  // fields[0] is field 3 (state), fields[2] is field 5 (pgrp)
}

TEST_F(ProcessRunnerTest, ChildLeadsItsOwnProcessGroup) {
  auto o = start(Spec({"/bin/sleep", "30"}));
  pid_t pid = lastProcess()->pid();
  auto fields = statFields(pid);
  ASSERT_GE(fields.size(), 3U);
  EXPECT_EQ(fields[2], std::to_string(pid)) << "process group";
  EXPECT_NE(fields[2], std::to_string(getpgrp()));
  lastProcess()->cancel();
  EXPECT_TRUE(drive(*o, 10s));
}

TEST_F(ProcessRunnerTest, CancelReachesTheWholeProcessGroup) {
  // The child starts a grandchild in the same group and waits; both must end.
  auto o = start(Spec({kPython, "-c",
                           "import subprocess,sys,time; p = subprocess.Popen(['/bin/sleep', '100']); "
                           "print(p.pid, flush=True); p.wait(); time.sleep(100)"}));
  ASSERT_TRUE(driveUntil([&] { return !o->out.empty() || o->result; }, 20s));
  ASSERT_FALSE(o->out.empty());
  pid_t grandchild = std::stoi(o->out[0]);
  lastProcess()->cancel();
  ASSERT_TRUE(drive(*o, 15s));
  EXPECT_EQ(o->result->signal, SIGTERM);
  // The grandchild was signalled too (it is reaped by its parent or by init; it must not be sleeping).
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    auto fields = statFields(grandchild);
    gone = fields.empty() || fields[0] == "Z" || fields[0] == "X";
    if (!gone) usleep(50000);
  }
  EXPECT_TRUE(gone) << "grandchild " << grandchild << " survived the cancel";
}

// The fds the child has open, from `ls -l /proc/self/fd`, without the one ls opened to read that directory.
std::map<int, std::string> openFds(const std::vector<std::string>& lsLines) {
  std::map<int, std::string> fds;
  for (const auto& line : lsLines) {
    size_t arrow = line.find(" -> ");
    if (arrow == std::string::npos) continue;
    std::string before = line.substr(0, arrow);
    std::string target = line.substr(arrow + 4);
    size_t space = before.rfind(' ');
    int fd = std::stoi(before.substr(space + 1));
    if (target.rfind("/proc/", 0) == 0 && target.find("/fd") != std::string::npos) continue;  // ls's own directory fd
    fds[fd] = target;
  }
  return fds;
}

TEST_F(ProcessRunnerTest, ChildHasOnlyStdioOpenNotTheParentsDescriptors) {
  // Descriptors the test process leaks on purpose (no O_CLOEXEC): the runner must close them.
  int leakedFile = ::open("/etc/hostname", O_RDONLY);
  int leakedPipe[2];
  ASSERT_GE(leakedFile, 0);
  ASSERT_EQ(::pipe(leakedPipe), 0);
  auto o = runToEnd(Spec({"/bin/ls", "-l", "/proc/self/fd/"}));
  ::close(leakedFile);
  ::close(leakedPipe[0]);
  ::close(leakedPipe[1]);
  ASSERT_TRUE(o.result);
  ASSERT_EQ(o.result->exitCode, 0);
  auto fds = openFds(o.out);
  ASSERT_EQ(fds.size(), 3U) << [&] {
    std::string all;
    for (const auto& l : o.out) all += l + "\n";
    return all;
  }();
  EXPECT_EQ(fds[0], "/dev/null") << "stdin";
  EXPECT_EQ(fds[1].rfind("pipe:", 0), 0U) << fds[1];
  EXPECT_EQ(fds[2].rfind("pipe:", 0), 0U) << fds[2];
}

TEST_F(ProcessRunnerTest, ChildWithASecretHasStdioAndTheSecretFdOnly) {
  int leakedFile = ::open("/etc/hostname", O_RDONLY);
  ASSERT_GE(leakedFile, 0);
  auto o = runToEnd(Spec({"/bin/ls", "-l", "/proc/self/fd/"}).secret("s"));
  ::close(leakedFile);
  ASSERT_TRUE(o.result);
  auto fds = openFds(o.out);
  ASSERT_EQ(fds.size(), 4U);
  EXPECT_NE(fds[3].find("memfd:"), std::string::npos) << fds[3];
}

TEST_F(ProcessRunnerTest, ChildDropsToTheGivenUserWithoutSupplementaryGroups) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  auto o = runToEnd(Spec({"/usr/bin/id"}).user(65534, 65534));
  ASSERT_TRUE(o.result);
  ASSERT_EQ(o.out.size(), 1U);
  EXPECT_EQ(o.out[0].rfind("uid=65534", 0), 0U) << o.out[0];
  EXPECT_NE(o.out[0].find("gid=65534"), std::string::npos) << o.out[0];
  EXPECT_EQ(o.out[0].find("groups=0"), std::string::npos) << o.out[0];
  EXPECT_EQ(o.out[0].find("root"), std::string::npos) << o.out[0];
}

// ---- privilege drop: supplementary groups, capabilities, no_new_privs ----

TEST_F(ProcessRunnerTest, ChildTakesExactlyTheGivenSupplementaryGroups) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ProcessSpec spec = Spec({"/usr/bin/id", "-G"}).user(65534, 65534);
  spec.groups = std::vector<gid_t>{65534, 43210, 43211};
  auto o = runToEnd(std::move(spec));
  ASSERT_TRUE(o.result);
  ASSERT_EQ(o.result->exitCode, 0) << (o.err.empty() ? "" : o.err[0]);
  ASSERT_EQ(o.out.size(), 1U);
  EXPECT_EQ(zbtest::unit::sortedIds(o.out[0]), (std::vector<gid_t>{43210, 43211, 65534})) << o.out[0];

  ProcessSpec none = Spec({"/usr/bin/id", "-G"}).user(65534, 65534);
  none.groups = std::vector<gid_t>{};
  auto n = runToEnd(std::move(none));
  ASSERT_EQ(n.out.size(), 1U);
  EXPECT_EQ(zbtest::unit::sortedIds(n.out[0]), (std::vector<gid_t>{65534})) << "only the primary group: " << n.out[0];
}

TEST_F(ProcessRunnerTest, ChildGivenAUserHasNoCapabilitiesAndNoNewPrivs) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ProcessSpec spec = Spec({"/bin/cat", "/proc/self/status"}).user(65534, 65534);
  spec.groups = std::vector<gid_t>{65534};
  auto o = runToEnd(std::move(spec));
  ASSERT_TRUE(o.result);
  ASSERT_EQ(o.result->exitCode, 0);
  auto status = zbtest::unit::procStatusFields(o.out);
  EXPECT_EQ(status["Uid"], "65534\t65534\t65534\t65534");
  EXPECT_EQ(status["Gid"], "65534\t65534\t65534\t65534");
  EXPECT_EQ(status["Groups"], "65534");
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) EXPECT_EQ(status[set], "0000000000000000") << set;
  EXPECT_EQ(status["NoNewPrivs"], "1");
  // The bounding set too, where the daemon may empty it (CAP_SETPCAP, bit 8, in its own effective set).
  std::istringstream self(readFile("/proc/self/status"));
  std::vector<std::string> selfLines;
  for (std::string line; std::getline(self, line);) selfLines.push_back(line);
  auto own = zbtest::unit::procStatusFields(selfLines);
  if ((std::stoull(own["CapEff"], nullptr, 16) >> 8) & 1) {
    EXPECT_EQ(status["CapBnd"], "0000000000000000");
  }

  // As root (no uid given) the child keeps the daemon's capabilities: the drop above is the spec's doing.
  auto root = runToEnd(Spec({"/bin/cat", "/proc/self/status"}));
  EXPECT_EQ(zbtest::unit::procStatusFields(root.out)["CapEff"], own["CapEff"]);
}

TEST_F(ProcessRunnerTest, ARootChildKeepsOnlyTheCapabilitiesItIsGiven) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  std::istringstream self(readFile("/proc/self/status"));
  std::vector<std::string> selfLines;
  for (std::string line; std::getline(self, line);) selfLines.push_back(line);
  auto own = zbtest::unit::procStatusFields(selfLines);
  if (!((std::stoull(own["CapEff"], nullptr, 16) >> 8) & 1)) GTEST_SKIP() << "needs CAP_SETPCAP to shrink the bounding set";
  // CAP_CHOWN (0), CAP_DAC_READ_SEARCH (2).
  ProcessSpec spec = Spec({"/bin/cat", "/proc/self/status"});
  spec.capabilities = (uint64_t{1} << 0) | (uint64_t{1} << 2);
  auto o = runToEnd(std::move(spec));
  ASSERT_TRUE(o.result);
  ASSERT_EQ(o.result->exitCode, 0);
  auto status = zbtest::unit::procStatusFields(o.out);
  EXPECT_EQ(status["Uid"], "0\t0\t0\t0");
  for (const char* set : {"CapPrm", "CapEff", "CapBnd"}) EXPECT_EQ(status[set], "0000000000000005") << set;
  EXPECT_EQ(status["CapInh"], "0000000000000000");

  // Without CAP_DAC_OVERRIDE, root's child cannot write into another user's read-only directory; with all of
  // the daemon's capabilities it can.
  zbtest::unit::TemporaryDirectory tmp("zb-caps");
  std::string locked = (tmp.path() / "locked").string();
  ASSERT_EQ(mkdir(locked.c_str(), 0500), 0);
  ASSERT_EQ(chown(locked.c_str(), 12345, 12345), 0);
  ProcessSpec limited = Spec({"/usr/bin/touch", locked + "/a"});
  limited.capabilities = uint64_t{1} << 2;
  auto l = runToEnd(std::move(limited));
  ASSERT_TRUE(l.result);
  EXPECT_NE(l.result->exitCode, 0);
  auto full = runToEnd(Spec({"/usr/bin/touch", locked + "/b"}));
  ASSERT_TRUE(full.result);
  EXPECT_EQ(full.result->exitCode, 0);
}

TEST_F(ProcessRunnerTest, AUidWithoutAGidIsRefused) {
  ProcessSpec spec = Spec({"/bin/true"});
  spec.uid = 65534;
  try {
    start(std::move(spec));
    FAIL() << "a child with a uid but root's group was started";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Internal);
  }
  EXPECT_EQ(m_runner.running(), 0U);
}

TEST_F(ProcessRunnerTest, AFailedDropNeverRunsTheProgram) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  zbtest::unit::TemporaryDirectory dir("zbt-drop");
  const std::string marker = (dir.path() / "ran").string();
  // More groups than the kernel allows (NGROUPS_MAX is 65536): setgroups() fails with EINVAL.
  ProcessSpec spec = Spec({"/usr/bin/touch", marker}).user(65534, 65534);
  spec.groups = std::vector<gid_t>(70000, 65534);
  try {
    start(std::move(spec));
    FAIL() << "start() returned although setgroups() must fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Failed);
    EXPECT_NE(std::string(e.what()).find("drop privileges (setgroups)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/usr/bin/touch"), std::string::npos) << e.what();
  }
  EXPECT_NE(access(marker.c_str(), F_OK), 0) << "the program ran after a failed drop";
  EXPECT_EQ(m_runner.running(), 0U);
}

TEST_F(ProcessRunnerTest, SeveralChildrenRunAtOnceAndEachReportsItsOwnResult) {
  std::vector<std::shared_ptr<Outcome>> outcomes;
  for (int i = 0; i < 5; ++i) {
    std::string n = std::to_string(i);
    outcomes.push_back(start(Spec({kPython, "-c", "import sys; print(" + n + "); sys.exit(" + n + ")"})));
  }
  EXPECT_EQ(m_runner.running(), 5U) << "none is reaped before the loop runs";
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(drive(*outcomes[static_cast<size_t>(i)], 20s));
    EXPECT_EQ(outcomes[static_cast<size_t>(i)]->result->exitCode, i);
    EXPECT_EQ(outcomes[static_cast<size_t>(i)]->out, (std::vector<std::string>{std::to_string(i)}));
  }
  EXPECT_EQ(m_runner.running(), 0U);
}

// ---- several secrets (restic key add: the old password on fd 3, the new one on fd 4) ----

TEST_F(ProcessRunnerTest, SeveralSecretsArriveEachOnItsOwnFd) {
  ProcessSpec spec = Spec({"/bin/sh", "-c", "cat /dev/fd/3; echo; cat /dev/fd/4; echo; cat /dev/fd/7"}).secret("the old one");
  spec.secrets = {{4, "the new one"}, {7, "a third"}};
  auto o = runToEnd(std::move(spec));
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.result->exitCode, 0) << (o.err.empty() ? "" : o.err[0]);
  EXPECT_EQ(o.out, (std::vector<std::string>{"the old one", "the new one", "a third"}));
}

TEST_F(ProcessRunnerTest, SecretsWithoutTheSingleSecretFieldWork) {
  ProcessSpec spec = Spec({"/bin/cat", "/dev/fd/4"});
  spec.secrets = {{4, "only on four"}};
  auto o = runToEnd(std::move(spec));
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.out, (std::vector<std::string>{"only on four"}));
}

TEST_F(ProcessRunnerTest, ChildWithTwoSecretsHasStdioAndExactlyThoseFds) {
  int leakedFile = ::open("/etc/hostname", O_RDONLY);
  ASSERT_GE(leakedFile, 0);
  ProcessSpec spec = Spec({"/bin/ls", "-l", "/proc/self/fd/"}).secret("s", 5);
  spec.secrets = {{3, "t"}};
  auto o = runToEnd(std::move(spec));
  ::close(leakedFile);
  ASSERT_TRUE(o.result);
  auto fds = openFds(o.out);
  ASSERT_EQ(fds.size(), 5U);
  EXPECT_EQ(fds.count(4), 0U) << "fd 4 between the two secrets leaked: " << fds[4];
  EXPECT_NE(fds[3].find("memfd:"), std::string::npos) << fds[3];
  EXPECT_NE(fds[5].find("memfd:"), std::string::npos) << fds[5];
}

TEST_F(ProcessRunnerTest, SecretFdsOutsideThreeToNineOrUsedTwiceAreRefused) {
  for (int fd : {1, 2, 10, 255}) {
    ProcessSpec spec = Spec({"/bin/true"});
    spec.secrets = {{fd, "x"}};
    try {
      m_runner.start(std::move(spec), {});
      ADD_FAILURE() << "fd " << fd << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Internal) << fd;
    }
  }
  ProcessSpec twice = Spec({"/bin/true"}).secret("a", 4);
  twice.secrets = {{4, "b"}};
  EXPECT_THROW(m_runner.start(std::move(twice), {}), Error);
  EXPECT_EQ(m_runner.running(), 0U);
}

}  // namespace
}  // namespace zerobyte::process
