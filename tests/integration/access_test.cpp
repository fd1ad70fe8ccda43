// Integration tests of access control without polkit: everyone sees the daemon and their own resources,
// changing others' is root's and the admin group's, identity comes from the kernel, and the daemon's files
// have tight modes. (roles_test.cpp has the whole role matrix, with polkit too.)
#include "tests/integration/harness.h"

#include "common/errors.h"
#include "common/varlink_client.h"

#include <gtest/gtest.h>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using zbtest::CommandResult;
using zbtest::describe;
using zbtest::Daemon;

constexpr const char* kAdminGroup = "zbtest-admins";
constexpr const char* kAdminUser = "zbtestadmin";
constexpr const char* kNobody = "nobody";


bool startsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// groupadd/useradd take a lock on /etc/passwd and /etc/group that others may hold a moment.
CommandResult runRetrying(const std::vector<std::string>& argv, std::vector<int> okCodes) {
  CommandResult r;
  for (int attempt = 0; attempt < 20; ++attempt) {
    r = zbtest::run(argv);
    for (int ok : okCodes)
      if (r.exitCode == ok) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return r;
}

bool userInGroup(const std::string& user, const std::string& groupName) {
  group* g = getgrnam(groupName.c_str());
  if (!g) return false;
  for (char** m = g->gr_mem; m && *m; ++m)
    if (user == *m) return true;
  passwd* pw = getpwnam(user.c_str());
  return pw && pw->pw_gid == g->gr_gid;
}

// The admin group and a user in it (no home, no login shell), created when missing.
void ensureAdminUser() {
  // 9: the group exists already.
  CommandResult g = runRetrying({"/usr/sbin/groupadd", kAdminGroup}, {0, 9});
  ASSERT_TRUE(g.exitCode == 0 || g.exitCode == 9) << describe(g);
  if (!getpwnam(kAdminUser)) {
    CommandResult u = runRetrying({"/usr/sbin/useradd", "-M", "-s", "/usr/sbin/nologin", "-G", kAdminGroup, kAdminUser}, {0, 9});
    ASSERT_TRUE(u.exitCode == 0 || u.exitCode == 9) << describe(u);
  }
  if (!userInGroup(kAdminUser, kAdminGroup)) {
    CommandResult m = runRetrying({"/usr/sbin/usermod", "-a", "-G", kAdminGroup, kAdminUser}, {0});
    ASSERT_EQ(m.exitCode, 0) << describe(m);
  }
  ASSERT_TRUE(userInGroup(kAdminUser, kAdminGroup));
  passwd* pw = getpwnam(kAdminUser);
  ASSERT_NE(pw, nullptr);
  ASSERT_NE(pw->pw_uid, 0U);
  group* g2 = getgrnam(kAdminGroup);
  ASSERT_NE(g2, nullptr);
  ASSERT_NE(pw->pw_gid, g2->gr_gid) << "membership must come from the supplementary groups for this test";
}

uid_t uidOf(const char* user) {
  passwd* pw = getpwnam(user);
  return pw ? pw->pw_uid : static_cast<uid_t>(-1);
}

std::string makeDirectory(const Daemon& daemon, const std::string& name) {
  std::string path = daemon.dir() + "/" + name;
  EXPECT_EQ(mkdir(path.c_str(), 0755), 0) << path;
  return path;
}

// Expects a refusal for `action` as zerobytectl reports it.
void expectNotAuthorized(const CommandResult& r, const std::string& action) {
  EXPECT_EQ(r.exitCode, 5) << describe(r);
  EXPECT_TRUE(startsWith(r.err, "NotAuthorized:")) << describe(r);
  EXPECT_NE(r.err.find(action), std::string::npos) << describe(r);
  EXPECT_EQ(r.out, "") << describe(r);
}

// A Varlink call made from a child process running as `uid`/`gid` (no supplementary groups).
// Returns the error name of the reply ("" on success) and its parameters.
std::pair<std::string, json> callAs(const Daemon& daemon, uid_t uid, gid_t gid, const std::string& method, const json& parameters) {
  int fds[2];
  if (pipe(fds) < 0) return {"pipe failed", json()};
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    if (setgroups(0, nullptr) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
      out = "setresuid failed\n{}";
    } else {
      try {
        zerobyte::varlink::Client client(daemon.socketPath());
        client.sendRaw(zerobyte::varlink::encode(zerobyte::varlink::CallMessage{method, parameters, false, false}));
        auto reply = client.readReply();
        out = reply.error.value_or("") + "\n" + reply.parameters.dump();
      } catch (const std::exception& e) {
        out = std::string("exception: ") + e.what() + "\n{}";
      }
    }
    [[maybe_unused]] ssize_t n = write(fds[1], out.data(), out.size());
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  size_t nl = text.find('\n');
  if (nl == std::string::npos) return {"no answer from the child: " + text, json()};
  return {text.substr(0, nl), json::parse(text.substr(nl + 1), nullptr, false)};
}

TEST(Access, AnyUserMayReadStatusButSeesOnlyTheirOwnResources) {
  Daemon daemon;
  daemon.start();
  std::string data = makeDirectory(daemon, "data");
  ASSERT_EQ(daemon.ctl({"volume", "create", "roots", "--path", data}).exitCode, 0);

  CommandResult status = daemon.ctl({"status"}, "", kNobody);
  EXPECT_EQ(status.exitCode, 0) << describe(status);
  EXPECT_NE(status.out.find("Version"), std::string::npos) << describe(status);

  CommandResult list = daemon.ctl({"volume", "list", "--json"}, "", kNobody);
  EXPECT_EQ(list.exitCode, 0) << describe(list);
  EXPECT_EQ(nlohmann::json::parse(list.out).at("volumes").size(), 0U) << describe(list);

  // Root's volume does not exist for a user without a role.
  CommandResult show = daemon.ctl({"volume", "show", "roots"}, "", kNobody);
  EXPECT_EQ(show.exitCode, 4) << describe(show);
  EXPECT_TRUE(startsWith(show.err, "NotFound:")) << describe(show);

  CommandResult repos = daemon.ctl({"repo", "list"}, "", kNobody);
  EXPECT_EQ(repos.exitCode, 0) << describe(repos);
}

TEST(Access, UsersWithoutARoleCannotChangeWhatIsNotTheirsAndAreToldWhichActionIsMissing) {
  Daemon daemon;
  daemon.start();
  std::string data = makeDirectory(daemon, "data");

  // A repository where nobody cannot write is refused before restic runs.
  CommandResult repo = daemon.ctl({"repo", "create", "mine", "--path", daemon.dir() + "/repo"}, "", kNobody);
  EXPECT_EQ(repo.exitCode, 5) << describe(repo);
  EXPECT_NE(repo.err.find("not writable by nobody"), std::string::npos) << describe(repo);

  // Deleting or backing up what root created is refused, and it stays. A user without a role cannot even see
  // root's resources, so for them they do not exist.
  ASSERT_EQ(daemon.ctl({"volume", "create", "roots", "--path", data}).exitCode, 0);
  ASSERT_EQ(daemon.ctl({"repo", "create", "rootrepo", "--path", daemon.dir() + "/rootrepo"}).exitCode, 0);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"volume", "delete", "roots"},
                                                std::vector<std::string>{"backup", "roots", "--repo", "rootrepo"}}) {
    CommandResult r = daemon.ctl(args, "", kNobody);
    EXPECT_EQ(r.exitCode, 4) << describe(r);
    EXPECT_TRUE(startsWith(r.err, "NotFound:")) << describe(r);
  }
  expectNotAuthorized(daemon.ctl({"audit"}, "", kNobody), "org.zerobyte.daemon1.admin");

  json volumes = daemon.ctlJson({"volume", "list"}).at("volumes");
  ASSERT_EQ(volumes.size(), 1U) << volumes.dump();
  EXPECT_EQ(volumes[0].value("name", ""), "roots");
  struct stat st {};
  EXPECT_NE(stat((daemon.dir() + "/repo").c_str(), &st), 0) << "no repository was initialised";
  EXPECT_NE(daemon.log().find("DeleteVolume org.zerobyte.daemon1.view volume \"roots\": denied"), std::string::npos)
      << daemon.log();
}

TEST(Access, RefusalCarriesTheActionIdInTheReply) {
  Daemon daemon;
  daemon.start();
  auto [rotateError, rotateParameters] = callAs(daemon, 65534, 65534, "org.zerobyte.Daemon.RotateMasterKey", json::object());
  EXPECT_EQ(rotateError, "org.zerobyte.Daemon.NotAuthorized") << rotateParameters.dump();
  EXPECT_EQ(rotateParameters.value("action", ""), "org.zerobyte.daemon1.admin");

  auto [auditError, auditParameters] = callAs(daemon, 65534, 65534, "org.zerobyte.Daemon.ListAudit", json::object());
  EXPECT_EQ(auditError, "org.zerobyte.Daemon.NotAuthorized") << auditParameters.dump();
  EXPECT_EQ(auditParameters.value("action", ""), "org.zerobyte.daemon1.admin");
}

TEST(Access, IdentityComesFromTheKernelNotFromTheRequest) {
  Daemon daemon;
  daemon.start();
  std::string data = makeDirectory(daemon, "data");
  // A uid in the parameters is not a parameter of any method.
  for (const char* key : {"uid", "caller_uid", "owner_uid"}) {
    auto [error, parameters] = callAs(daemon, 65534, 65534, "org.zerobyte.Daemon.CreateVolume",
                                      {{"name", "x"}, {"type", "directory"}, {"path", data}, {key, 0}});
    EXPECT_EQ(error, "org.varlink.service.InvalidParameter") << key << ": " << parameters.dump();
    EXPECT_EQ(parameters.value("parameter", ""), key);
  }
  // Nor a key of the call itself.
  auto client = daemon.client();
  client->sendRaw(std::string(R"({"method":"org.zerobyte.Daemon.GetStatus","uid":0})") + '\0');
  auto reply = client->readReply();
  EXPECT_EQ(reply.error.value_or(""), "org.zerobyte.Daemon.InvalidRequest");

  // What root creates is owned by root; the owner is recorded from the peer credentials.
  ASSERT_EQ(daemon.ctl({"volume", "create", "by-root", "--path", data}).exitCode, 0);
  EXPECT_EQ(daemon.ctlJson({"volume", "show", "by-root"}).at("volume").value("owner_uid", -1), 0);
  EXPECT_EQ(daemon.ctlJson({"volume", "list"}).at("volumes").size(), 1U);
}

TEST(Access, MembersOfTheAdminGroupMayChangeThings) {
  ensureAdminUser();
  if (HasFatalFailure()) return;
  Daemon::Options options;
  options.extraDaemonSettings = std::string("  admin_group: ") + kAdminGroup + "\n";
  Daemon daemon(options);
  daemon.start();
  std::string data = makeDirectory(daemon, "data");

  CommandResult created = daemon.ctl({"volume", "create", "by-admin", "--path", data}, "", kAdminUser);
  EXPECT_EQ(created.exitCode, 0) << describe(created);
  json volume = daemon.ctlJson({"volume", "show", "by-admin"}).at("volume");
  EXPECT_EQ(volume.value("owner_uid", -1), static_cast<int64_t>(uidOf(kAdminUser)));

  CommandResult deleted = daemon.ctl({"volume", "delete", "by-admin"}, "", kAdminUser);
  EXPECT_EQ(deleted.exitCode, 0) << describe(deleted);

  // Others still may not.
  expectNotAuthorized(daemon.ctl({"audit"}, "", kNobody), "org.zerobyte.daemon1.admin");
  EXPECT_NE(daemon.ctlJson({"status"}).value("authorization_detail", "").find(kAdminGroup), std::string::npos);
}

TEST(Access, AdminGroupUserIsRefusedWhenTheDaemonNamesAnotherGroup) {
  ensureAdminUser();
  if (HasFatalFailure()) return;
  Daemon daemon;  // default admin group, which the user is not in
  daemon.start();
  expectNotAuthorized(daemon.ctl({"audit"}, "", kAdminUser), "org.zerobyte.daemon1.admin");
}

TEST(Access, AdminGroupTakesEffectOnReload) {
  ensureAdminUser();
  if (HasFatalFailure()) return;
  Daemon daemon;
  daemon.start();
  expectNotAuthorized(daemon.ctl({"audit"}, "", kAdminUser), "org.zerobyte.daemon1.admin");
  Daemon::Options options;
  options.extraDaemonSettings = std::string("  admin_group: ") + kAdminGroup + "\n";
  daemon.writeConfig(options);
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.waitForNotification("READY=1", 10000));
  CommandResult audit = daemon.ctl({"audit"}, "", kAdminUser);
  EXPECT_EQ(audit.exitCode, 0) << describe(audit);
}

TEST(Access, SocketIsWorldConnectableAndStateIsPrivate) {
  Daemon daemon;
  daemon.start();
  struct stat st {};
  ASSERT_EQ(lstat(daemon.socketPath().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0666U) << std::oct << (st.st_mode & 07777);
  EXPECT_EQ(st.st_uid, 0U);

  ASSERT_EQ(stat((daemon.dir() + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755U) << std::oct << (st.st_mode & 07777);

  ASSERT_EQ(stat(daemon.stateDir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700U) << std::oct << (st.st_mode & 07777);

  ASSERT_EQ(lstat((daemon.stateDir() + "/master.key").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600U) << std::oct << (st.st_mode & 07777);
  EXPECT_EQ(st.st_uid, 0U);
  EXPECT_EQ(st.st_size, 32) << "a 256-bit key";

  ASSERT_EQ(stat((daemon.dir() + "/cache").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0U) << std::oct << (st.st_mode & 07777);

  // Other users cannot read the state directory, but reach the socket.
  CommandResult ls = daemon.ctl({"status"}, "", kNobody);
  EXPECT_EQ(ls.exitCode, 0) << describe(ls);
}

}  // namespace
