// zerobytectl's polkit agent on its own: finding pkttyagent, and going on quietly (nothing left running, nothing
// left unreaped) when it is missing or cannot register. Registration itself is tested against a real polkitd in
// tests/integration/ctl_test.cpp.
#include "ctl/polkit_agent.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace zerobyte::ctl {
namespace {

using zbtest::unit::ScopedEnvironment;

// Children of this process, zombies included (an unreaped agent would show up here).
std::vector<pid_t> ownChildren() {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    if (fields >> state >> ppid && ppid == ::getpid()) children.push_back(std::stoi(name));
  }
  return children;
}

TEST(PolkitAgentLookup, FindsPkttyagentOnPathAndNothingWhereThereIsNone) {
  {
    ScopedEnvironment path("PATH", "/nonexistent-zbtest:/usr/bin");
    EXPECT_EQ(findInPath("pkttyagent"), "/usr/bin/pkttyagent");
  }
  ScopedEnvironment path("PATH", "/nonexistent-zbtest");
  EXPECT_EQ(findInPath("pkttyagent"), "");
}

TEST(PolkitAgentStart, WithoutPkttyagentOnPathNothingStarts) {
  ScopedEnvironment path("PATH", "/nonexistent-zbtest");
  PolkitAgent agent;
  EXPECT_FALSE(agent.start());
  EXPECT_FALSE(agent.running());
  EXPECT_TRUE(ownChildren().empty());
}

TEST(PolkitAgentStart, APkttyagentThatCannotRegisterIsTakenForNoAgentAndReaped) {
  // A real pkttyagent that finds no polkit: it closes its notify descriptor only by dying, which must not
  // be mistaken for a registration, however quickly it is looked at (repeated to catch a race).
  ScopedEnvironment bus("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent-zbtest/system_bus_socket");
  ScopedEnvironment path("PATH", "/usr/bin:/bin");
  for (int i = 0; i < 10; ++i) {
    PolkitAgent agent;
    EXPECT_FALSE(agent.start()) << "attempt " << i;
    EXPECT_FALSE(agent.running());
    EXPECT_EQ(agent.pid(), -1);
    EXPECT_TRUE(ownChildren().empty()) << "attempt " << i << ": the failed agent was not reaped";
  }
}

}  // namespace
}  // namespace zerobyte::ctl
