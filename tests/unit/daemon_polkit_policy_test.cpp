// The shipped polkit policy and rules agree with the actions the daemon asks about, and their
// defaults are safe for a machine with many users.
#include "daemon/api/authorizer.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using zerobyte::api::Action;
using zerobyte::api::actionId;
using zerobyte::api::allActions;
using zbtest::unit::readFile;

const std::filesystem::path kPolkitDir = std::filesystem::path(ZB_SOURCE_DIR) / "polkit";

std::string readSource(const std::string& name) {
  std::ifstream in(kPolkitDir / name, std::ios::binary);
  if (!in) throw std::runtime_error("missing " + (kPolkitDir / name).string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// One <action> of a polkit policy file.
struct PolicyAction {
  std::string description;
  std::string message;
  std::map<std::string, std::string> defaults;  // allow_any, allow_inactive, allow_active
  std::set<std::string> implies;
};

// The text between <tag> and </tag> in `xml` at or after `from`; "" when absent.
std::string element(const std::string& xml, const std::string& tag, size_t from = 0) {
  const std::string open = "<" + tag + ">";
  auto start = xml.find(open, from);
  if (start == std::string::npos) return "";
  start += open.size();
  auto end = xml.find("</" + tag + ">", start);
  return end == std::string::npos ? "" : xml.substr(start, end - start);
}

// A tiny reader for the subset of the policyconfig format the file uses; XML comments are skipped.
std::map<std::string, PolicyAction> parsePolicy(std::string xml) {
  for (size_t c; (c = xml.find("<!--")) != std::string::npos;) {
    auto end = xml.find("-->", c);
    xml.erase(c, end == std::string::npos ? std::string::npos : end + 3 - c);
  }
  std::map<std::string, PolicyAction> actions;
  const std::string open = "<action id=\"";
  for (size_t at = xml.find(open); at != std::string::npos; at = xml.find(open, at + 1)) {
    const auto idStart = at + open.size();
    const std::string id = xml.substr(idStart, xml.find('"', idStart) - idStart);
    const auto end = xml.find("</action>", at);
    const std::string body = xml.substr(at, end - at);
    PolicyAction action;
    action.description = element(body, "description");
    action.message = element(body, "message");
    const std::string defaults = element(body, "defaults");
    for (const char* key : {"allow_any", "allow_inactive", "allow_active"}) action.defaults[key] = element(defaults, key);
    const std::string implyOpen = "<annotate key=\"org.freedesktop.policykit.imply\">";
    if (auto imply = body.find(implyOpen); imply != std::string::npos) {
      imply += implyOpen.size();
      std::istringstream ids(body.substr(imply, body.find("</annotate>", imply) - imply));
      for (std::string implied; ids >> implied;) action.implies.insert(implied);
    }
    EXPECT_TRUE(actions.emplace(id, action).second) << "action " << id << " is defined twice";
  }
  return actions;
}

class PolkitPolicy : public ::testing::Test {
 protected:
  std::string m_xml = readSource("org.zerobyte.Daemon1.policy");
  std::map<std::string, PolicyAction> m_actions = parsePolicy(m_xml);
};

TEST_F(PolkitPolicy, DefinesExactlyTheActionsTheDaemonAsksAbout) {
  std::set<std::string> used;
  for (Action action : allActions()) {
    used.insert(actionId(action));
    EXPECT_TRUE(m_actions.count(actionId(action))) << actionId(action) << " is used by the daemon but not in the policy";
  }
  for (const auto& [id, action] : m_actions) EXPECT_TRUE(used.count(id)) << id << " is in the policy but the daemon never asks for it";
  EXPECT_EQ(m_actions.size(), allActions().size());
}

TEST_F(PolkitPolicy, EveryActionTellsTheUserWhatTheyAreAskedToAllow) {
  EXPECT_NE(m_xml.find("<vendor>zerobyte</vendor>"), std::string::npos);
  for (const auto& [id, action] : m_actions) {
    EXPECT_GT(action.description.size(), 8u) << id;
    EXPECT_NE(action.message.find("Authentication is required to "), std::string::npos) << id << ": " << action.message;
    // polkit prints an unknown $(detail) literally, and most checks are about no one resource.
    EXPECT_EQ(action.message.find("$("), std::string::npos) << id;
  }
}

TEST_F(PolkitPolicy, SecretsAndHooksNeedAnAdministratorPasswordEveryTime) {
  for (const char* id : {"org.zerobyte.daemon1.export-secret", "org.zerobyte.daemon1.manage-hooks"}) {
    ASSERT_TRUE(m_actions.count(id)) << id;
    for (const auto& [key, value] : m_actions[id].defaults) EXPECT_EQ(value, "auth_admin") << id << " " << key;
  }
}

TEST_F(PolkitPolicy, NothingButViewIsAllowedWithoutAnAdministratorPassword) {
  for (const auto& [id, action] : m_actions) {
    for (const auto& [key, value] : action.defaults) {
      if (id == "org.zerobyte.daemon1.view") {
        EXPECT_EQ(value, "yes") << key;
        continue;
      }
      // Not "yes", and not auth_self*: a user's own password must not open other users' data.
      EXPECT_TRUE(value == "auth_admin" || value == "auth_admin_keep" || value == "no") << id << " " << key << " = " << value;
    }
  }
}

TEST_F(PolkitPolicy, DefaultsAreTheDocumentedOnes) {
  const std::map<std::string, std::string> expected = {
      {"view", "yes"},           {"backup", "auth_admin_keep"}, {"restore", "auth_admin_keep"}, {"manage", "auth_admin_keep"},
      {"mount", "auth_admin_keep"}, {"admin", "auth_admin_keep"}, {"export-secret", "auth_admin"}, {"manage-hooks", "auth_admin"},
  };
  for (const auto& [name, value] : expected)
    for (const auto& [key, actual] : m_actions["org.zerobyte.daemon1." + name].defaults) EXPECT_EQ(actual, value) << name << " " << key;
}

TEST_F(PolkitPolicy, AnAuthorizationForAWiderActionCoversTheNarrowerOnes) {
  auto ids = [](std::initializer_list<const char*> names) {
    std::set<std::string> out;
    for (const char* n : names) out.insert(std::string("org.zerobyte.daemon1.") + n);
    return out;
  };
  EXPECT_EQ(m_actions["org.zerobyte.daemon1.admin"].implies, ids({"manage", "mount", "backup", "restore", "view"}));
  EXPECT_EQ(m_actions["org.zerobyte.daemon1.manage"].implies, ids({"backup", "restore", "view"}));
  EXPECT_EQ(m_actions["org.zerobyte.daemon1.backup"].implies, ids({"view"}));
  EXPECT_EQ(m_actions["org.zerobyte.daemon1.restore"].implies, ids({"view"}));
  // The dangerous ones are never granted on the way to something else.
  for (const auto& [id, action] : m_actions) {
    EXPECT_FALSE(action.implies.count("org.zerobyte.daemon1.export-secret")) << id;
    EXPECT_FALSE(action.implies.count("org.zerobyte.daemon1.manage-hooks")) << id;
    for (const auto& implied : action.implies) EXPECT_TRUE(m_actions.count(implied)) << id << " implies unknown " << implied;
  }
}

TEST(PolkitRules, NameTheThreeRoleGroupsAndTheActionsTheyGrant) {
  const std::string rules = readSource("50-zerobyte.rules");
  const zerobyte::api::RoleGroups defaults;
  for (const std::string& group : {defaults.viewers, defaults.operators, defaults.admins})
    EXPECT_NE(rules.find("\"" + group + "\""), std::string::npos) << group;
  for (const char* name : {"\"view\"", "\"backup\"", "\"restore\"", "\"manage\""}) EXPECT_NE(rules.find(name), std::string::npos) << name;
  EXPECT_NE(rules.find("action.lookup(\"zerobyte.caller_owns\")"), std::string::npos);
  EXPECT_NE(rules.find("org.zerobyte.daemon1."), std::string::npos);
}

// polkitd reads actions and rules only below /usr/share/polkit-1: an install under another prefix must still put
// them there (a real `cmake --install` of the polkit component into a scratch DESTDIR).
TEST(PolkitInstall, PutsThePolicyAndRulesWherePolkitReadsThemWhateverThePrefix) {
  zbtest::unit::TemporaryDirectory destdir("zb-polkit-install");
  std::string command = "DESTDIR=" + destdir.path().string() + " cmake --install " + ZB_BINARY_DIR +
                        " --prefix /usr/local --component polkit >/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const auto root = destdir.path() / "usr/share/polkit-1";
  EXPECT_EQ(readFile((root / "actions/org.zerobyte.Daemon1.policy").string()), readSource("org.zerobyte.Daemon1.policy"));
  EXPECT_EQ(readFile((root / "rules.d/50-zerobyte.rules").string()), readSource("50-zerobyte.rules"));
  EXPECT_FALSE(std::filesystem::exists(destdir.path() / "usr/local/share/polkit-1"));
}

}  // namespace
