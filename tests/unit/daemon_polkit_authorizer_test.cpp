// PolkitAuthorizer against a real polkitd reading the project's policy and rules, on a private
// system bus, for real users in the role groups: polkit's answer must be allowedByRole()'s.
#include "daemon/api/authorizer.h"
#include "daemon/api/caller.h"
#include "daemon/api/polkit_authorizer.h"
#include "daemon/loop/event_loop.h"
#include "tests/support/polkit_env.h"

#include <gtest/gtest.h>

#include <systemd/sd-bus.h>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace zerobyte::api;
using zerobyte::FileDescriptor;
using zerobyte::loop::EventLoop;
using zbtest::PolkitEnvironment;
using zbtest::RoleUser;
using zbtest::UserProcess;

Role roleFromName(const std::string& name) {
  for (Role role : {Role::None, Role::Viewer, Role::Operator, Role::Admin})
    if (roleName(role) == name) return role;
  throw std::runtime_error("no role " + name);
}

Caller callerOf(const UserProcess& process) {
  Caller caller;
  caller.pid = process.pid();
  caller.uid = process.uid();
  caller.gid = process.gid();
  caller.transport = "varlink";
  caller.startTime = process.startTime();
  return caller;
}

// A scope about one resource: the caller's own, or root's.
Scope scopeFor(uid_t callerUid, bool callerOwns) {
  Scope scope;
  scope.resource = "volume home";
  scope.ownerUid = callerOwns ? callerUid : 0;
  scope.callerOwns = callerOwns;
  return scope;
}

// Runs the loop until `finished()` holds; false when `timeout` passed first.
bool runUntil(EventLoop& loop, const std::function<bool()>& finished, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!finished()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (sd_event_run(loop.get(), 50 * 1000) < 0) return false;
  }
  return true;
}

void runFor(EventLoop& loop, std::chrono::milliseconds duration) {
  runUntil(loop, [] { return false; }, duration);
}

// One check, waited for on the loop.
Decision decide(EventLoop& loop, Authorizer& authorizer, const Caller& caller, Action action, const Scope& scope) {
  std::optional<Decision> decision;
  authorizer.check(caller, action, scope, false, [&](Decision d) { decision = std::move(d); });
  EXPECT_TRUE(runUntil(loop, [&] { return decision.has_value(); })) << "no answer for " << actionId(action);
  return decision.value_or(Decision{false, false, "no answer"});
}

class PolkitAuthorizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;  // SetUp skips
    try {
      zbtest::roleUsers();
      s_env = std::make_unique<PolkitEnvironment>();
    } catch (const std::exception& e) {
      s_failure = e.what();
    }
  }
  static void TearDownTestSuite() { s_env.reset(); }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: starts polkitd and creates test users";
    ASSERT_TRUE(s_env) << "the polkit test environment did not start: " << s_failure;
    std::string whyNot;
    m_authorizer = PolkitAuthorizer::connect(m_loop, whyNot);
    ASSERT_TRUE(m_authorizer) << whyNot;
  }

  static std::unique_ptr<PolkitEnvironment> s_env;
  static std::string s_failure;
  EventLoop m_loop;
  std::unique_ptr<PolkitAuthorizer> m_authorizer;
};

std::unique_ptr<PolkitEnvironment> PolkitAuthorizerTest::s_env;
std::string PolkitAuthorizerTest::s_failure;

TEST_F(PolkitAuthorizerTest, ReportsItsModeAndWhereRolesComeFrom) {
  EXPECT_EQ(m_authorizer->mode(), "polkit");
  EXPECT_NE(m_authorizer->describe().find(s_env->busAddress()), std::string::npos) << m_authorizer->describe();
  EXPECT_NE(m_authorizer->describe().find("zerobyte-admins"), std::string::npos) << m_authorizer->describe();
}

// The matrix: every role user x every action x own/others' resource, through the shipped rules.
TEST_F(PolkitAuthorizerTest, ShippedRulesDecideExactlyAsAllowedByRoleForEveryRoleActionAndOwnership) {
  GroupAuthorizer groups{RoleGroups{}};
  for (const RoleUser& user : zbtest::roleUsers()) {
    const Role role = roleFromName(user.role);
    EXPECT_EQ(groups.roleOf(user.uid), role) << user.name << ": the group fallback sees another role";
    UserProcess process(user.name);
    const Caller caller = callerOf(process);

    struct Case {
      Action action;
      bool callerOwns;
      std::optional<Decision> decision;
    };
    std::vector<Case> cases;
    for (Action action : allActions())
      for (bool owns : {true, false}) cases.push_back({action, owns, std::nullopt});
    // All of one user's checks in flight at once.
    for (auto& c : cases)
      m_authorizer->check(caller, c.action, scopeFor(user.uid, c.callerOwns), false, [&c](Decision d) { c.decision = std::move(d); });
    ASSERT_TRUE(runUntil(m_loop, [&] {
      for (const auto& c : cases)
        if (!c.decision) return false;
      return true;
    })) << "polkit did not answer every check for " << user.name;

    for (const auto& c : cases) {
      const Scope scope = scopeFor(user.uid, c.callerOwns);
      const bool expected = allowedByRole(role, c.action, scope);
      const std::string what = user.name + " (" + user.role + ") " + actionId(c.action) + (c.callerOwns ? " on own" : " on others'");
      EXPECT_EQ(c.decision->allowed, expected) << what << "; reason: " << c.decision->reason;
      EXPECT_TRUE(c.decision->reason.empty()) << what << ": " << c.decision->reason;
      if (!expected) {
        // view of others' things is refused outright; the rest falls to the policy's auth_admin*,
        // which an administrator's password could satisfy.
        EXPECT_EQ(c.decision->challenge, c.action != Action::View) << what;
      }
      std::optional<Decision> byGroups;
      groups.check(caller, c.action, scope, false, [&](Decision d) { byGroups = d; });
      ASSERT_TRUE(byGroups) << what;
      EXPECT_EQ(byGroups->allowed, c.decision->allowed) << what << ": the group fallback disagrees with polkit";
    }
  }
}

TEST_F(PolkitAuthorizerTest, RootIsAllowedEverythingAtOnce) {
  Caller root;
  root.pid = ::getpid();
  root.uid = 0;
  root.gid = 0;
  root.transport = "varlink";
  root.startTime = *processStartTime(root.pid);
  for (Action action : allActions()) {
    std::optional<Decision> decision;
    m_authorizer->check(root, action, everyoneScope(), false, [&](Decision d) { decision = d; });
    ASSERT_TRUE(decision) << actionId(action) << ": root waited for polkit";
    EXPECT_TRUE(decision->allowed) << actionId(action);
  }
  EXPECT_EQ(m_authorizer->pendingChecks(), 0u);
}

TEST_F(PolkitAuthorizerTest, AClientThatExitedBeforeTheAnswerIsDenied) {
  UserProcess process(zbtest::roleUser("admin").name);
  Caller caller = callerOf(process);
  caller.pidfd = std::make_shared<FileDescriptor>(process.openPidfd());
  ASSERT_TRUE(caller.pidfd->valid());
  ASSERT_TRUE(decide(m_loop, *m_authorizer, caller, Action::Admin, ownScope()).allowed) << "an admin's live process is allowed";

  std::optional<Decision> decision;
  m_authorizer->check(caller, Action::Admin, ownScope(), false, [&](Decision d) { decision = d; });
  process.exit();  // before polkit's answer is read: the pid may now name another process
  ASSERT_TRUE(runUntil(m_loop, [&] { return decision.has_value(); }));
  EXPECT_FALSE(decision->allowed);
  EXPECT_EQ(decision->reason, "the client process exited before the decision");
}

TEST_F(PolkitAuthorizerTest, AProcessStartedAfterTheClientUnderItsPidIsNotTheClient) {
  // Without a pidfd the start time tells them apart: a caller whose recorded start time is not
  // its pid's any more is denied even when polkit would allow that pid.
  UserProcess process(zbtest::roleUser("admin").name);
  Caller caller = callerOf(process);
  caller.startTime += 1;
  const Decision decision = decide(m_loop, *m_authorizer, caller, Action::View, ownScope());
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.reason, "the client process exited before the decision");
}

TEST_F(PolkitAuthorizerTest, ManyConcurrentChecksAllCompleteWithTheRightDecision) {
  // More than the system bus lets one connection wait for (128 replies).
  constexpr size_t kChecks = 300;
  std::vector<std::unique_ptr<UserProcess>> processes;
  std::vector<Role> roles;
  for (const RoleUser& user : zbtest::roleUsers()) {
    processes.push_back(std::make_unique<UserProcess>(user.name));
    roles.push_back(roleFromName(user.role));
  }
  struct Result {
    int calls = 0;
    Decision decision;
  };
  std::vector<Result> results(kChecks);
  for (size_t i = 0; i < kChecks; ++i) {
    const size_t who = i % processes.size();
    const Action action = allActions()[(i / processes.size()) % allActions().size()];
    m_authorizer->check(callerOf(*processes[who]), action, scopeFor(processes[who]->uid(), i % 3 == 0), false,
                        [&results, i](Decision d) {
                          results[i].calls++;
                          results[i].decision = d;
                        });
  }
  EXPECT_EQ(m_authorizer->pendingChecks(), kChecks) << "every check waits for polkit; none blocks the caller";
  ASSERT_TRUE(runUntil(m_loop, [&] { return m_authorizer->pendingChecks() == 0; })) << m_authorizer->pendingChecks() << " unanswered";
  runFor(m_loop, std::chrono::milliseconds(100));
  for (size_t i = 0; i < kChecks; ++i) {
    const size_t who = i % processes.size();
    const Action action = allActions()[(i / processes.size()) % allActions().size()];
    ASSERT_EQ(results[i].calls, 1) << "check " << i;
    EXPECT_EQ(results[i].decision.allowed, allowedByRole(roles[who], action, scopeFor(processes[who]->uid(), i % 3 == 0)))
        << "check " << i << " " << actionId(action) << ": " << results[i].decision.reason;
    EXPECT_TRUE(results[i].decision.reason.empty()) << "check " << i << ": " << results[i].decision.reason;
  }
}

TEST_F(PolkitAuthorizerTest, NoAnswerIsDeliveredAfterTheAuthorizerIsGone) {
  UserProcess process(zbtest::roleUser("operator").name);
  int calls = 0;
  for (int i = 0; i < 100; ++i)
    m_authorizer->check(callerOf(process), Action::Backup, everyoneScope(), false, [&calls](Decision) { ++calls; });
  m_authorizer.reset();
  runFor(m_loop, std::chrono::milliseconds(500));
  EXPECT_EQ(calls, 0);
}

TEST_F(PolkitAuthorizerTest, TheAnswerMayDestroyTheAuthorizer) {
  UserProcess process(zbtest::roleUser("viewer").name);
  int calls = 0;
  for (int i = 0; i < 3; ++i)
    m_authorizer->check(callerOf(process), Action::View, everyoneScope(), false, [&](Decision d) {
      ++calls;
      EXPECT_TRUE(d.allowed);
      m_authorizer.reset();
    });
  ASSERT_TRUE(runUntil(m_loop, [&] { return calls > 0; }));
  runFor(m_loop, std::chrono::milliseconds(300));
  EXPECT_EQ(calls, 1);
}

TEST_F(PolkitAuthorizerTest, ReconnectsOnTheNextCheckAfterTheSystemBusRestarted) {
  UserProcess process(zbtest::roleUser("admin").name);
  const Caller caller = callerOf(process);
  ASSERT_TRUE(decide(m_loop, *m_authorizer, caller, Action::Manage, everyoneScope()).allowed);

  s_env->stop();
  runFor(m_loop, std::chrono::milliseconds(200));  // the loop sees the connection close
  const Decision whileDown = decide(m_loop, *m_authorizer, caller, Action::Manage, everyoneScope());
  EXPECT_FALSE(whileDown.allowed);
  EXPECT_NE(whileDown.reason.find("polkit is unreachable"), std::string::npos) << whileDown.reason;

  s_env->start();
  const Decision afterRestart = decide(m_loop, *m_authorizer, caller, Action::Manage, everyoneScope());
  EXPECT_TRUE(afterRestart.allowed) << afterRestart.reason;
}

TEST_F(PolkitAuthorizerTest, AnInteractiveCheckWithoutAnAuthenticationAgentIsDeniedWithoutWaiting) {
  // The caller allowed a password prompt but has no agent (no pkttyagent): polkit says no at
  // once instead of leaving the request waiting for minutes.
  UserProcess process(zbtest::roleUser("none").name);
  std::optional<Decision> decision;
  const auto started = std::chrono::steady_clock::now();
  m_authorizer->check(callerOf(process), Action::Mount, ownScope(), true, [&](Decision d) { decision = d; });
  ASSERT_TRUE(runUntil(m_loop, [&] { return decision.has_value(); }, std::chrono::seconds(10)));
  EXPECT_FALSE(decision->allowed);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

// A D-Bus client: a process of the user with its own connection to the bus; its unique name is
// the subject polkit resolves to that user.
class BusClient {
 public:
  explicit BusClient(const RoleUser& user) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    const std::vector<gid_t> groups = {user.gid};
    m_pid = ::fork();
    if (m_pid == 0) {
      ::close(fds[0]);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      std::string name;
      sd_bus* bus = nullptr;
      if (::setgroups(groups.size(), groups.data()) == 0 && ::setresgid(user.gid, user.gid, user.gid) == 0 &&
          ::setresuid(user.uid, user.uid, user.uid) == 0 && ::prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && sd_bus_open_system(&bus) >= 0) {
        const char* unique = nullptr;
        if (sd_bus_get_unique_name(bus, &unique) >= 0) name = unique;
      }
      name += "\n";
      ssize_t ignored = ::write(fds[1], name.data(), name.size());
      (void)ignored;
      for (;;) ::pause();
    }
    ::close(fds[1]);
    char buffer[256];
    ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    ::close(fds[0]);
    if (n > 1) m_name.assign(buffer, static_cast<size_t>(n - 1));
  }
  ~BusClient() {
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
  }
  const std::string& name() const { return m_name; }
  pid_t pid() const { return m_pid; }

 private:
  pid_t m_pid = -1;
  std::string m_name;
};

TEST_F(PolkitAuthorizerTest, ABusNameSubjectIsDecidedForTheUserBehindIt) {
  for (const char* role : {"none", "operator"}) {
    const RoleUser& user = zbtest::roleUser(role);
    BusClient client(user);
    ASSERT_FALSE(client.name().empty()) << user.name << " could not connect to the bus";
    Caller caller;
    caller.transport = "dbus";
    caller.busName = client.name();
    caller.pid = client.pid();
    caller.uid = user.uid;
    caller.gid = user.gid;
    const Scope others = scopeFor(user.uid, false);
    const Decision decision = decide(m_loop, *m_authorizer, caller, Action::Backup, others);
    EXPECT_EQ(decision.allowed, allowedByRole(roleFromName(user.role), Action::Backup, others)) << user.name << ": " << decision.reason;
    EXPECT_TRUE(decision.reason.empty()) << decision.reason;
  }
}

TEST_F(PolkitAuthorizerTest, ACallerWithoutAKnownProcessIsDeniedWithoutAskingPolkit) {
  Caller unknown;
  unknown.uid = zbtest::roleUser("admin").uid;
  unknown.transport = "varlink";
  std::optional<Decision> decision;
  m_authorizer->check(unknown, Action::View, ownScope(), false, [&](Decision d) { decision = d; });
  ASSERT_TRUE(decision);
  EXPECT_FALSE(decision->allowed);
  EXPECT_FALSE(decision->reason.empty());
}

// ---- without polkit ----

TEST(PolkitAuthorizerConnect, WithoutASystemBusThereIsNoAuthorizerAndTheReasonNamesTheAddress) {
  zbtest::NoSystemBus noBus;
  EventLoop loop;
  std::string whyNot;
  EXPECT_EQ(PolkitAuthorizer::connect(loop, whyNot), nullptr);
  EXPECT_NE(whyNot.find(noBus.busAddress()), std::string::npos) << whyNot;
  EXPECT_NE(whyNot.find("no system bus"), std::string::npos) << whyNot;
}

TEST(PolkitAuthorizerConnect, ABusWithoutPolkitGivesNoAuthorizerAndSaysSo) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  zbtest::PolkitEnvironmentOptions options;
  options.startPolkitd = false;
  PolkitEnvironment busOnly(options);
  EventLoop loop;
  std::string whyNot;
  EXPECT_EQ(PolkitAuthorizer::connect(loop, whyNot), nullptr);
  EXPECT_NE(whyNot.find("neither running nor activatable"), std::string::npos) << whyNot;
  EXPECT_NE(whyNot.find(busOnly.busAddress()), std::string::npos) << whyNot;
}

// The group fallback, with the same users and groups: the roles polkit's rules see.
TEST(GroupAuthorizerRoles, TheRoleUsersHaveTheirRolesInGroupMode) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create the test users";
  zbtest::NoSystemBus noBus;
  EventLoop loop;
  std::string whyNot;
  ASSERT_EQ(PolkitAuthorizer::connect(loop, whyNot), nullptr);
  GroupAuthorizer groups{RoleGroups{}};
  EXPECT_EQ(groups.mode(), "groups");
  for (const RoleUser& user : zbtest::roleUsers()) EXPECT_EQ(groups.roleOf(user.uid), roleFromName(user.role)) << user.name;
  EXPECT_EQ(groups.roleOf(0), Role::Admin);
}

}  // namespace
