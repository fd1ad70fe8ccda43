// Unit tests of the caller's process identity: start times from /proc (with hostile command names), pidfds,
// Caller::processAlive for a real child that exits, and what the Varlink server records when a real client connects.
#include "common/names.h"
#include "common/varlink_wire.h"
#include "daemon/api/caller.h"
#include "daemon/api/request.h"
#include "daemon/loop/event_loop.h"
#include "daemon/varlink/server.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace zerobyte::api {
namespace {

using namespace std::chrono_literals;

// A stat line as the kernel writes it, with the given command name and start time (field 22).
std::string statLine(const std::string& comm, uint64_t startTime, char state = 'S') {
  std::ostringstream line;
  line << "4242 (" << comm << ") " << state;
  for (int field = 4; field <= 21; ++field) line << ' ' << field;
  line << ' ' << startTime;
  for (int field = 23; field <= 52; ++field) line << ' ' << field;
  line << '\n';
  return line.str();
}

// Field 22 of /proc/PID/stat read the plain way, to compare with.
uint64_t startTimeFromProc(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) rest >> field;
  return std::stoull(field);
}

// A child that lives until told to go (its pipe closes), then exits; reaped by the test.
class Child {
 public:
  Child() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    m_pid = ::fork();
    if (m_pid == 0) {
      ::close(fds[1]);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      char c;
      while (::read(fds[0], &c, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    ::close(fds[0]);
    m_release = fds[1];
  }
  ~Child() {
    tellToExit();
    reap();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return m_pid; }
  void tellToExit() {
    if (m_release >= 0) ::close(m_release);
    m_release = -1;
  }
  // Waits until the child is a zombie (exited, not yet reaped): its pid is not free yet.
  bool waitUntilZombie() {
    for (int i = 0; i < 500; ++i) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(m_pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == m_pid) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  void reap() {
    if (m_pid > 0) ::waitpid(m_pid, nullptr, 0);
    m_pid = -1;
  }

 private:
  pid_t m_pid = -1;
  int m_release = -1;
};

Caller callerOf(pid_t pid, bool withPidfd) {
  Caller caller;
  caller.pid = pid;
  caller.uid = ::getuid();
  caller.gid = ::getgid();
  caller.transport = "varlink";
  caller.startTime = processStartTime(pid).value_or(0);
  if (withPidfd) caller.pidfd = std::make_shared<FileDescriptor>(openPidfd(pid));
  return caller;
}

// ---- start times ----

TEST(CallerStartTime, IsFieldTwentyTwoEvenWhenTheCommandNameHasSpacesAndParentheses) {
  EXPECT_EQ(parseStartTime(statLine("zerobytectl", 123456)), 123456U);
  EXPECT_EQ(parseStartTime(statLine("a b c", 77)), 77U);
  // A command name can be made to look like more fields: ") R 1 2 3 ..." must not shift the count.
  EXPECT_EQ(parseStartTime(statLine(") R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 (", 987654321)), 987654321U);
  EXPECT_EQ(parseStartTime(statLine("x)) (y", 5)), 5U);
}

TEST(CallerStartTime, MalformedLinesGiveNothing) {
  EXPECT_FALSE(parseStartTime(""));
  EXPECT_FALSE(parseStartTime("4242 no parenthesis S 1 2 3"));
  EXPECT_FALSE(parseStartTime("4242 (short) S 1 2 3"));
  EXPECT_FALSE(parseStartTime(statLine("x", 1).substr(0, 40))) << "cut before field 22";
  std::string notANumber = statLine("x", 1);
  notANumber.replace(notANumber.find(" 1 23 "), 3, " 1x");
  EXPECT_FALSE(parseStartTime(notANumber));
}

TEST(CallerStartTime, OfThisProcessMatchesProc) {
  auto start = processStartTime(::getpid());
  ASSERT_TRUE(start);
  EXPECT_GT(*start, 0U);
  EXPECT_EQ(*start, startTimeFromProc(::getpid()));
}

TEST(CallerStartTime, NoneForAPidThatDoesNotExistOrAZombie) {
  EXPECT_FALSE(processStartTime(0));
  EXPECT_FALSE(processStartTime(-1));
  // pid_max is at most 2^22: this pid cannot exist.
  EXPECT_FALSE(processStartTime(1 << 23));
  Child child;
  EXPECT_TRUE(processStartTime(child.pid()));
  child.tellToExit();
  ASSERT_TRUE(child.waitUntilZombie());
  EXPECT_FALSE(processStartTime(child.pid())) << "a zombie's pid is about to be reused";
}

TEST(CallerRealUid, IsTheUidOfTheProcessAndNothingForAPidThatDoesNotExist) {
  EXPECT_EQ(processRealUid(::getpid()), std::optional<uid_t>(::getuid()));
  EXPECT_FALSE(processRealUid(1 << 23));
  if (::getuid() != 0) GTEST_SKIP() << "needs root to start a child as another user";
  pid_t pid = fork();
  if (pid == 0) {
    if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) _exit(1);
    pause();
    _exit(0);
  }
  ASSERT_GT(pid, 0);
  std::optional<uid_t> seen;
  for (int i = 0; i < 200 && seen != std::optional<uid_t>(65534); ++i) {
    seen = processRealUid(pid);
    if (seen != std::optional<uid_t>(65534)) usleep(5000);
  }
  EXPECT_EQ(seen, std::optional<uid_t>(65534));
  ::kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// ---- processAlive ----

TEST(CallerProcessAlive, WithAPidfdTrueWhileTheChildRunsAndFalseOnceItExited) {
  Child child;
  Caller caller = callerOf(child.pid(), true);
  ASSERT_TRUE(caller.pidfd->valid()) << std::strerror(errno);
  EXPECT_TRUE(caller.processAlive());
  child.tellToExit();
  ASSERT_TRUE(child.waitUntilZombie());
  EXPECT_FALSE(caller.processAlive()) << "exited, not yet reaped";
  child.reap();
  EXPECT_FALSE(caller.processAlive()) << "reaped";
}

TEST(CallerProcessAlive, WithOnlyTheStartTimeTrueWhileTheChildRunsAndFalseOnceItExited) {
  Child child;
  Caller caller = callerOf(child.pid(), false);
  ASSERT_GT(caller.startTime, 0U);
  EXPECT_TRUE(caller.processAlive());
  child.tellToExit();
  ASSERT_TRUE(child.waitUntilZombie());
  EXPECT_FALSE(caller.processAlive()) << "exited, not yet reaped";
  child.reap();
  EXPECT_FALSE(caller.processAlive()) << "reaped";
}

TEST(CallerProcessAlive, ALaterProcessWithTheSamePidIsNotTheCaller) {
  // The pid exists but started at another time than the one recorded: the pid was reused.
  Caller caller = callerOf(::getpid(), false);
  ASSERT_TRUE(caller.processAlive());
  caller.startTime += 1;
  EXPECT_FALSE(caller.processAlive());
}

TEST(CallerProcessAlive, NothingToIdentifyTheProcessIsNotAlive) {
  Caller noPid;
  EXPECT_FALSE(noPid.processAlive());
  Caller noStartTime;
  noStartTime.pid = ::getpid();
  EXPECT_FALSE(noStartTime.processAlive()) << "without a start time a reused pid cannot be told apart";
}

// ---- what the server records at accept ----

// A real client process connects to a real Server on a real loop and makes one call.
TEST(VarlinkServerCaller, RecordsThePidStartTimeAndAPidfdOfTheProcessThatConnected) {
  zbtest::unit::TemporaryDirectory dir("zb-caller");
  const std::string path = (dir.path() / "s.sock").string();
  loop::EventLoop loop;
  std::optional<Caller> seen;
  varlink::Server server(
      loop, varlink::Server::createSocket(path, 0600),
      [&](const std::string&, const nlohmann::json&, RequestPtr request) {
        seen = request->caller();
        request->reply(nlohmann::json::object());
        loop.exit(0);
      },
      varlink::Server::Limits{kMaxMessageSize});
  loop::TimerSource guard(loop, 20s, [&] { loop.exit(1); });

  // The message and address are prepared before fork: the child only makes system calls.
  const std::string message = varlink::encode(varlink::CallMessage{std::string(kVarlinkInterface) + ".Ping"});
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int release[2];
  ASSERT_EQ(::pipe2(release, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::close(release[1]);
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) ::_exit(2);
    if (::write(s, message.data(), message.size()) != static_cast<ssize_t>(message.size())) ::_exit(3);
    char c;
    while (::read(release[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  ::close(release[0]);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(loop.run(), 0) << "no call arrived";
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->pid, pid);
  EXPECT_EQ(seen->uid, ::getuid());
  EXPECT_EQ(seen->gid, ::getgid());
  EXPECT_EQ(seen->transport, "varlink");
  EXPECT_EQ(seen->startTime, startTimeFromProc(pid));
  ASSERT_TRUE(seen->pidfd && seen->pidfd->valid()) << "SO_PEERPIDFD or pidfd_open";
  EXPECT_TRUE(seen->processAlive());

  ::close(release[1]);
  bool exited = false;
  for (int i = 0; i < 500 && !exited; ++i) {
    siginfo_t info{};
    exited = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
    if (!exited) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(exited);
  EXPECT_FALSE(seen->processAlive()) << "the client exited";
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace zerobyte::api
