// Integration tests of the access model: the role matrix over the socket (with real polkitd reading
// the project's policy and rules, and with the group fallback), ownership, restic running as the
// resource's owner, restores only where the caller can write, and rate-limited denials.
#include "tests/integration/harness.h"
#include "tests/support/polkit_env.h"

#include "common/varlink_client.h"
#include "common/varlink_wire.h"

#include <gtest/gtest.h>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using zbtest::CommandResult;
using zbtest::describe;
using zbtest::Daemon;
using zbtest::ownedDirectory;
using zbtest::writeOwnedFile;


bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }


// One call on a connection of its own; "" on success, else the error name, then a newline and the reply parameters.
std::string call(const std::string& socket, const std::string& method, const json& parameters) {
  zerobyte::varlink::Client client(socket);
  client.sendRaw(zerobyte::varlink::encode(zerobyte::varlink::CallMessage{method, parameters, false, false}));
  auto reply = client.readReply();
  return reply.error.value_or("") + "\n" + reply.parameters.dump();
}

// Who asks: a role user of the test environment, or root.
struct Subject {
  std::string role;  // none, viewer, operator, admin, root
  std::string user;  // "" for root (the test process)
  uid_t uid = 0;
  gid_t gid = 0;
};

std::vector<Subject> subjects() {
  std::vector<Subject> out;
  for (const auto& u : zbtest::roleUsers()) out.push_back({u.role, u.name, u.uid, u.gid});
  out.push_back({"root", "", 0, 0});
  return out;
}

bool oneOf(const std::string& role, std::initializer_list<const char*> roles) {
  for (const char* r : roles)
    if (role == r) return true;
  return false;
}

enum class Mode { Groups, Polkit };

std::string modeName(const testing::TestParamInfo<Mode>& info) { return info.param == Mode::Polkit ? "Polkit" : "Groups"; }

// A daemon in one authorization mode, with root's volume and repository and one snapshot in it.
class AccessModel : public testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    zbtest::roleUsers();
    Daemon::Options options;
    if (GetParam() == Mode::Polkit) {
      m_polkit = std::make_unique<zbtest::OwnedPolkitEnvironment>();
      options.extraEnvironment = {m_polkit->environmentEntry()};
      options.extraDaemonSettings = "  authorization: polkit\n";
    } else {
      options.extraDaemonSettings = std::string(zbtest::kGroupModeDaemonSetting);
    }
    m_daemon = std::make_unique<Daemon>(options);
    m_daemon->start();
    ASSERT_EQ(m_daemon->ctlJson({"status"}).value("authorization", ""), GetParam() == Mode::Polkit ? "polkit" : "groups");

    std::string data = ownedDirectory(*m_daemon, "rootdata", 0, 0, 0755);
    writeOwnedFile(data + "/hello.txt", "hello from root\n", 0, 0, 0644);
    ASSERT_EQ(m_daemon->ctl({"volume", "create", "rootvol", "--path", data}).exitCode, 0);
    CommandResult repo = m_daemon->ctl({"repo", "create", "rootrepo", "--path", m_daemon->dir() + "/rootrepo"});
    ASSERT_EQ(repo.exitCode, 0) << describe(repo);
    CommandResult backup = m_daemon->ctl({"backup", "rootvol", "--repo", "rootrepo", "--follow"});
    ASSERT_EQ(backup.exitCode, 0) << describe(backup);
  }

  void TearDown() override {
    if (m_daemon) m_daemon->stop();
    m_daemon.reset();
    m_polkit.reset();
  }

  CommandResult as(const Subject& s, std::vector<std::string> args) { return m_daemon->ctl(args, "", s.user); }

  // The newest job, as root sees it.
  json lastJob() {
    json jobs = m_daemon->ctlJson({"job", "list", "--limit", "1"}).at("jobs");
    return jobs.empty() ? json() : jobs[0];
  }

  std::unique_ptr<zbtest::OwnedPolkitEnvironment> m_polkit;
  std::unique_ptr<Daemon> m_daemon;
};

void expectRefused(const CommandResult& r, const std::string& action, const std::string& who) {
  EXPECT_EQ(r.exitCode, 5) << who << ": " << describe(r);
  EXPECT_TRUE(contains(r.err, "NotAuthorized:")) << who << ": " << describe(r);
  EXPECT_TRUE(contains(r.err, "org.zerobyte.daemon1." + action)) << who << ": " << describe(r);
}

// A refusal of something the subject may see (NotAuthorized naming the action), or of something they may not
// even see (NotFound, the same answer as for a name that does not exist).
void expectRefusedOrHidden(const CommandResult& r, const std::string& action, const std::string& who, bool sees) {
  if (sees) return expectRefused(r, action, who);
  EXPECT_EQ(r.exitCode, 4) << who << ": " << describe(r);
  EXPECT_TRUE(contains(r.err, "NotFound:")) << who << ": " << describe(r);
}

// Role × action over the socket: the same expectations whether polkit or the groups decide.
TEST_P(AccessModel, EveryRoleGetsExactlyItsActions) {
  for (const Subject& s : subjects()) {
    SCOPED_TRACE("role " + s.role);
    const std::string who = s.role;
    const bool seesAll = s.role != "none";
    const bool runsAll = oneOf(s.role, {"operator", "admin", "root"});
    const bool managesAll = oneOf(s.role, {"admin", "root"});

    // view: everyone's resources for viewers and up; what one may not see does not exist.
    CommandResult list = as(s, {"volume", "list", "--json"});
    ASSERT_EQ(list.exitCode, 0) << describe(list);
    EXPECT_EQ(contains(list.out, "\"rootvol\""), seesAll) << who << ": " << list.out;
    CommandResult show = as(s, {"repo", "show", "rootrepo"});
    EXPECT_EQ(show.exitCode, seesAll ? 0 : 4) << who << ": " << describe(show);

    // backup of root's volume into root's repository.
    CommandResult backup = as(s, {"backup", "rootvol", "--repo", "rootrepo", "--follow"});
    if (runsAll) {
      EXPECT_EQ(backup.exitCode, 0) << who << ": " << describe(backup);
      EXPECT_EQ(lastJob().value("run_as_uid", -1), 0) << "root's volume is read as root";
    } else {
      expectRefusedOrHidden(backup, "backup", who, seesAll);
    }

    // restore into a directory of the subject's own: as the subject, unless an admin asks. An
    // operator cannot read root's repository: root's restic reads it and tar writes as the operator.
    std::string target = ownedDirectory(*m_daemon, "restore-" + s.role, s.uid, s.gid);
    CommandResult restore = as(s, {"restore", "rootrepo", "latest", "--target", target, "--follow"});
    if (runsAll) {
      EXPECT_EQ(restore.exitCode, 0) << who << ": " << describe(restore);
      json job = lastJob();
      EXPECT_EQ(job.value("operation", ""), "restore");
      EXPECT_EQ(job.value("run_as_uid", -1), managesAll ? 0 : static_cast<int64_t>(s.uid)) << job.dump();
      struct stat st {};
      std::string restored = target + m_daemon->dir() + "/rootdata/hello.txt";
      EXPECT_EQ(stat(restored.c_str(), &st), 0) << restored;
      EXPECT_EQ(st.st_uid, managesAll ? 0u : s.uid) << who << ": whose the restored files are";
    } else {
      expectRefusedOrHidden(restore, "restore", who, seesAll);
    }

    // manage someone else's resource: admins only.
    std::string scratch = ownedDirectory(*m_daemon, "scratch-" + s.role, 0, 0, 0755);
    ASSERT_EQ(m_daemon->ctl({"volume", "create", "scratch-" + s.role, "--path", scratch}).exitCode, 0);
    CommandResult del = as(s, {"volume", "delete", "scratch-" + s.role});
    if (managesAll)
      EXPECT_EQ(del.exitCode, 0) << who << ": " << describe(del);
    else
      expectRefusedOrHidden(del, "manage", who, seesAll);

    // mount: admins only. The decision comes first; an admin is then told that a directory has nothing to mount.
    CommandResult mount = as(s, {"volume", "mount", "rootvol"});
    if (managesAll) {
      EXPECT_EQ(mount.exitCode, 2) << who << ": " << describe(mount);
      EXPECT_TRUE(contains(mount.err, "only network volumes are mounted")) << who << ": " << describe(mount);
    } else {
      expectRefusedOrHidden(mount, "mount", who, seesAll);
    }

    // export-secret and admin.
    CommandResult reveal = as(s, {"repo", "password", "rootrepo", "--reveal"});
    if (managesAll) {
      EXPECT_EQ(reveal.exitCode, 0) << who << ": " << describe(reveal);
      EXPECT_GE(reveal.out.size(), 16U);
    } else {
      expectRefusedOrHidden(reveal, "export-secret", who, seesAll);
    }
    CommandResult audit = as(s, {"audit", "--limit", "1"});
    if (managesAll)
      EXPECT_EQ(audit.exitCode, 0) << who << ": " << describe(audit);
    else
      expectRefused(audit, "admin", who);

    // Everyone has resources of their own: a volume they can read, a repository where they can
    // write, a backup between them, run as themselves (admins' resources run as root).
    std::string own = ownedDirectory(*m_daemon, "own-" + s.role, s.uid, s.gid);
    writeOwnedFile(own + "/mine.txt", "mine\n", s.uid, s.gid, 0600);
    std::string ownRepo = ownedDirectory(*m_daemon, "ownrepo-" + s.role, s.uid, s.gid);
    CommandResult v = as(s, {"volume", "create", "own-" + s.role, "--path", own});
    EXPECT_EQ(v.exitCode, 0) << who << ": " << describe(v);
    CommandResult rc = as(s, {"repo", "create", "ownrepo-" + s.role, "--path", ownRepo + "/restic"});
    EXPECT_EQ(rc.exitCode, 0) << who << ": " << describe(rc);
    CommandResult b = as(s, {"backup", "own-" + s.role, "--repo", "ownrepo-" + s.role, "--follow"});
    EXPECT_EQ(b.exitCode, 0) << who << ": " << describe(b);
    EXPECT_EQ(lastJob().value("run_as_uid", -1), managesAll ? 0 : static_cast<int64_t>(s.uid)) << who;
    // One user's data never goes into another user's repository (restic, running as one of them, would hold
    // both the data and the repository's password).
    if (runsAll && !managesAll) {
      CommandResult cross = as(s, {"backup", "rootvol", "--repo", "ownrepo-" + s.role});
      EXPECT_EQ(cross.exitCode, 5) << who << ": " << describe(cross);
      EXPECT_TRUE(contains(cross.err, "back up into a repository of the same owner")) << describe(cross);
    }
    std::string back = ownedDirectory(*m_daemon, "ownrestore-" + s.role, s.uid, s.gid);
    CommandResult rs = as(s, {"restore", "ownrepo-" + s.role, "latest", "--target", back, "--follow"});
    EXPECT_EQ(rs.exitCode, 0) << who << ": " << describe(rs);
    struct stat st {};
    EXPECT_EQ(stat((back + own + "/mine.txt").c_str(), &st), 0) << who;
    json mine = json::parse(as(s, {"volume", "show", "own-" + s.role, "--json"}).out, nullptr, false);
    EXPECT_EQ(mine.is_discarded() ? -1 : mine.at("volume").value("owner_uid", -1), static_cast<int64_t>(s.uid)) << who;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, AccessModel, testing::Values(Mode::Groups, Mode::Polkit), modeName);

// Ownership and privilege separation, decided the same in both modes (the matrix shows that): groups mode here.
class Ownership : public testing::Test {
 protected:
  void SetUp() override {
    zbtest::roleUsers();
    Daemon::Options options;
    options.extraDaemonSettings = std::string(zbtest::kGroupModeDaemonSetting);
    m_daemon = std::make_unique<Daemon>(options);
    m_daemon->start();
  }
  std::unique_ptr<Daemon> m_daemon;
};

TEST_F(Ownership, AUserWithoutARoleActsOnlyAsThemselves) {
  const auto& none = zbtest::roleUser("none");
  const auto& other = zbtest::roleUser("operator");
  Daemon& d = *m_daemon;

  // Another user's private directory and /root cannot become this user's volume.
  std::string othersDir = ownedDirectory(d, "others-private", other.uid, other.gid);
  for (const std::string& path : {std::string("/root"), othersDir}) {
    CommandResult r = d.ctl({"volume", "create", "steal", "--path", path}, "", none.name);
    EXPECT_EQ(r.exitCode, 5) << path << ": " << describe(r);
    EXPECT_TRUE(contains(r.err, "not readable by " + none.name)) << describe(r);
  }
  // Whether something exists where they cannot look is not told through root's eyes.
  CommandResult existing = d.ctl({"volume", "create", "peek", "--path", "/root"}, "", none.name);
  CommandResult missing = d.ctl({"volume", "create", "peek", "--path", "/root/zbt-not-there"}, "", none.name);
  EXPECT_TRUE(contains(missing.err, "permission denied")) << describe(missing);
  EXPECT_EQ(existing.exitCode, missing.exitCode);
  // Nor a repository where they cannot write.
  CommandResult badRepo = d.ctl({"repo", "create", "steal", "--path", "/var/lib/zbt-steal"}, "", none.name);
  EXPECT_EQ(badRepo.exitCode, 5) << describe(badRepo);
  struct stat st {};
  EXPECT_NE(stat("/var/lib/zbt-steal", &st), 0);

  // Their own data, with one file inside that they cannot read (root's, 0600).
  std::string data = ownedDirectory(d, "none-data", none.uid, none.gid);
  zbtest::makeRandomFiles(data + "/bulk", 24, 2 << 20);
  EXPECT_EQ(chown((data + "/bulk").c_str(), none.uid, none.gid), 0);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(chown((data + "/bulk/blob" + std::to_string(i)).c_str(), none.uid, none.gid), 0);
  writeOwnedFile(data + "/visible.txt", "visible\n", none.uid, none.gid, 0600);
  writeOwnedFile(data + "/roots-secret.txt", "root only\n", 0, 0, 0600);
  std::string repoDir = ownedDirectory(d, "none-repo", none.uid, none.gid);
  ASSERT_EQ(d.ctl({"volume", "create", "mine", "--path", data}, "", none.name).exitCode, 0);
  CommandResult created = d.ctl({"repo", "create", "mine", "--path", repoDir + "/r"}, "", none.name);
  ASSERT_EQ(created.exitCode, 0) << describe(created);
  // The repository's files belong to the user: restic init ran as them.
  ASSERT_EQ(stat((repoDir + "/r/config").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, none.uid);

  // The backup's restic runs as the user: seen from /proc while it runs.
  CommandResult started = d.ctl({"backup", "mine", "--repo", "mine", "--json"}, "", none.name);
  ASSERT_EQ(started.exitCode, 0) << describe(started);
  uint64_t id = json::parse(started.out).at("job").value("id", 0ULL);
  std::set<uid_t> seen;
  for (int i = 0; i < 400 && seen.empty(); ++i) {
    for (pid_t pid : d.childPids()) {
      // Only restic itself: a child between fork and exec is still root.
      std::ifstream status("/proc/" + std::to_string(pid) + "/status");
      std::string name;
      for (std::string line; std::getline(status, line);) {
        if (line.rfind("Name:", 0) == 0) name = line.substr(6);
        if (line.rfind("Uid:", 0) == 0 && name == "restic") seen.insert(static_cast<uid_t>(std::stoul(line.substr(4))));
      }
    }
    if (seen.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(seen, std::set<uid_t>{none.uid}) << "restic ran as uid(s) other than the volume's owner";
  json job = d.waitForJob(id);
  EXPECT_EQ(job.value("state", ""), "warning") << job.dump();
  EXPECT_EQ(job.value("run_as_uid", -1), static_cast<int64_t>(none.uid));
  EXPECT_TRUE(contains(job.dump(), "roots-secret.txt")) << "the unreadable file is reported: " << job.dump();

  // The snapshot has the user's file and not root's.
  CommandResult ls = d.ctl({"snapshot", "ls", "mine", "latest", data, "--json"}, "", none.name);
  ASSERT_EQ(ls.exitCode, 0) << describe(ls);
  EXPECT_TRUE(contains(ls.out, "visible.txt")) << ls.out;
  EXPECT_FALSE(contains(ls.out, "roots-secret.txt")) << ls.out;

  // Restores only where the user can write; nothing is written elsewhere.
  for (const std::string& target : {std::string("/etc/zbt-restore-test"), othersDir + "/restored"}) {
    CommandResult r = d.ctl({"restore", "mine", "latest", "--target", target}, "", none.name);
    EXPECT_EQ(r.exitCode, 5) << target << ": " << describe(r);
    EXPECT_TRUE(contains(r.err, "not writable by " + none.name)) << describe(r);
    EXPECT_NE(stat(target.c_str(), &st), 0) << target << " must not exist";
  }
  // Even an admin's restore from the user's repository runs as the user (its snapshots are the user's to shape:
  // a setuid-root file in one must not come back as root's), and only where the user can write.
  std::string rootsTarget = ownedDirectory(d, "roots-restore", 0, 0, 0755);
  CommandResult asRoot = d.ctl({"restore", "mine", "latest", "--target", rootsTarget});
  EXPECT_EQ(asRoot.exitCode, 5) << describe(asRoot);
  EXPECT_TRUE(contains(asRoot.err, "not writable by " + none.name)) << describe(asRoot);
  std::string shared = ownedDirectory(d, "shared-restore", none.uid, none.gid, 0755);
  CommandResult byRoot = d.ctl({"restore", "mine", "latest", "--target", shared, "--include", data + "/visible.txt", "--follow"});
  EXPECT_EQ(byRoot.exitCode, 0) << describe(byRoot);
  json last = d.ctlJson({"job", "list", "--limit", "1"}).at("jobs").at(0);
  EXPECT_EQ(last.value("run_as_uid", -1), static_cast<int64_t>(none.uid)) << last.dump();

  std::string into = ownedDirectory(d, "none-restore", none.uid, none.gid);
  CommandResult restored = d.ctl({"restore", "mine", "latest", "--target", into, "--include", data + "/visible.txt", "--follow"},
                                 "", none.name);
  EXPECT_EQ(restored.exitCode, 0) << describe(restored);
  ASSERT_EQ(stat((into + data + "/visible.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, none.uid) << "restored as the user";
}

// A privileged resource's restic runs as root, but with only the capabilities reading and restoring need.
TEST_F(Ownership, RootsResticKeepsOnlyTheCapabilitiesItNeeds) {
  Daemon& d = *m_daemon;
  std::string data = ownedDirectory(d, "bulk", 0, 0, 0755);
  zbtest::makeRandomFiles(data, 24, 2 << 20);
  ASSERT_EQ(d.ctl({"volume", "create", "bulk", "--path", data}).exitCode, 0);
  ASSERT_EQ(d.ctl({"repo", "create", "r", "--path", d.dir() + "/r"}).exitCode, 0);
  CommandResult started = d.ctl({"backup", "bulk", "--repo", "r", "--json"});
  ASSERT_EQ(started.exitCode, 0) << describe(started);
  uint64_t id = json::parse(started.out).at("job").value("id", 0ULL);
  std::string uid, capEff, capBnd;
  for (int i = 0; i < 400 && capEff.empty(); ++i) {
    for (pid_t pid : d.childPids()) {
      // Only restic itself: a child between fork and exec still has the daemon's capabilities.
      std::ifstream status("/proc/" + std::to_string(pid) + "/status");
      std::string name, childUid, childEff, childBnd;
      for (std::string line; std::getline(status, line);) {
        if (line.rfind("Name:", 0) == 0) name = line.substr(6);
        if (line.rfind("Uid:", 0) == 0) childUid = line.substr(5);
        if (line.rfind("CapEff:", 0) == 0) childEff = line.substr(8);
        if (line.rfind("CapBnd:", 0) == 0) childBnd = line.substr(8);
      }
      if (name != "restic") continue;
      uid = childUid, capEff = childEff, capBnd = childBnd;
    }
    if (capEff.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_MKNOD, CAP_SETFCAP.
  const std::string expected = "000000008800001f";
  EXPECT_EQ(uid.substr(0, uid.find('\t')), "0");
  EXPECT_EQ(capEff, expected);
  EXPECT_EQ(capBnd, expected);
  EXPECT_EQ(d.waitForJob(id).value("state", ""), "succeeded");
}

TEST_F(Ownership, ResourcesAreVisibleToTheirOwnerAndTheGroupTheyAreSharedWith) {
  const auto& none = zbtest::roleUser("none");
  const auto& other = zbtest::roleUser("operator");
  Daemon& d = *m_daemon;
  // A group both users are in, and one only the other user is in.
  ASSERT_TRUE(zbtest::run({"/usr/sbin/groupadd", "-f", "zbt-share"}).exitCode == 0);
  ASSERT_TRUE(zbtest::run({"/usr/sbin/groupadd", "-f", "zbt-private"}).exitCode == 0);
  ASSERT_EQ(zbtest::run({"/usr/sbin/usermod", "-a", "-G", "zbt-share,zbt-private", other.name}).exitCode, 0);
  ASSERT_EQ(zbtest::run({"/usr/sbin/usermod", "-a", "-G", "zbt-share", none.name}).exitCode, 0);

  std::string shared = ownedDirectory(d, "shared-data", other.uid, other.gid, 0755);
  std::string priv = ownedDirectory(d, "private-data", other.uid, other.gid, 0755);
  ASSERT_EQ(d.ctl({"volume", "create", "team", "--path", shared, "--group", "zbt-share"}, "", other.name).exitCode, 0);
  ASSERT_EQ(d.ctl({"volume", "create", "solo", "--path", priv, "--group", "zbt-private"}, "", other.name).exitCode, 0);
  // Sharing with a group one is not in is refused.
  CommandResult notMember = d.ctl({"volume", "create", "x", "--path", shared, "--group", "zbt-private"}, "", none.name);
  EXPECT_EQ(notMember.exitCode, 5) << describe(notMember);

  json listed = json::parse(d.ctl({"volume", "list", "--json"}, "", none.name).out);
  std::set<std::string> names;
  for (const auto& v : listed.at("volumes")) names.insert(v.value("name", ""));
  EXPECT_EQ(names, std::set<std::string>{"team"});
  EXPECT_EQ(d.ctl({"volume", "show", "solo"}, "", none.name).exitCode, 4);
  json team = json::parse(d.ctl({"volume", "show", "team", "--json"}, "", none.name).out).at("volume");
  EXPECT_EQ(team.value("group", ""), "zbt-share");
  EXPECT_EQ(team.value("owner", ""), other.name);
  // A group member manages the shared volume; the private one stays out of reach.
  EXPECT_EQ(d.ctl({"volume", "delete", "team"}, "", none.name).exitCode, 0);
  EXPECT_EQ(d.ctl({"volume", "delete", "solo"}, "", none.name).exitCode, 4) << "not shared with them: not there for them";
}

TEST_F(Ownership, AUsersScheduleIsTheirsAndRunsAsThem) {
  const auto& none = zbtest::roleUser("none");
  Daemon& d = *m_daemon;
  // root's schedule, and one of a user without a role over their own volume and repository.
  std::string rootData = ownedDirectory(d, "root-data", 0, 0, 0755);
  ASSERT_EQ(d.ctl({"volume", "create", "roots", "--path", rootData}).exitCode, 0);
  ASSERT_EQ(d.ctl({"repo", "create", "rootrepo", "--path", d.dir() + "/rootrepo"}).exitCode, 0);
  ASSERT_EQ(d.ctl({"schedule", "create", "rootly", "--volume", "roots", "--repo", "rootrepo", "--cron", "@daily"}).exitCode, 0);
  std::string mine = ownedDirectory(d, "mine", none.uid, none.gid, 0700);
  writeOwnedFile(mine + "/note.txt", "mine", none.uid, none.gid, 0600);
  std::string repoDir = ownedDirectory(d, "minerepo", none.uid, none.gid, 0700);
  ASSERT_EQ(d.ctl({"volume", "create", "mine", "--path", mine}, "", none.name).exitCode, 0);
  ASSERT_EQ(d.ctl({"repo", "create", "minerepo", "--path", repoDir + "/r"}, "", none.name).exitCode, 0);
  // Backing up root's volume is not theirs to schedule; their own is.
  CommandResult foreign = d.ctl({"schedule", "create", "steal", "--volume", "roots", "--repo", "minerepo", "--cron", "@daily"}, "", none.name);
  EXPECT_EQ(foreign.exitCode, 4) << describe(foreign);
  CommandResult created = d.ctl({"schedule", "create", "own", "--volume", "mine", "--repo", "minerepo", "--cron", "@daily",
                                 "--keep-last", "1"},
                                "", none.name);
  ASSERT_EQ(created.exitCode, 0) << describe(created);

  json listed = json::parse(d.ctl({"schedule", "list", "--json"}, "", none.name).out);
  ASSERT_EQ(listed.at("schedules").size(), 1u) << listed.dump();
  EXPECT_EQ(listed.at("schedules").at(0).at("name"), "own");
  EXPECT_EQ(listed.at("schedules").at(0).at("owner_uid"), none.uid);
  EXPECT_EQ(d.ctl({"schedule", "show", "rootly"}, "", none.name).exitCode, 4) << "root's schedule is not there for them";
  EXPECT_EQ(d.ctl({"schedule", "run", "rootly"}, "", none.name).exitCode, 4);
  EXPECT_EQ(d.ctl({"schedule", "delete", "rootly"}, "", none.name).exitCode, 4);
  EXPECT_EQ(json::parse(d.ctl({"schedule", "list", "--json"}).out).at("schedules").size(), 2u) << "root sees both";

  // Their run reads their files as them and keeps their retention.
  CommandResult run = d.ctl({"schedule", "run", "own", "--follow"}, "", none.name);
  EXPECT_EQ(run.exitCode, 0) << describe(run);
  json history = json::parse(d.ctl({"schedule", "show", "own", "--json"}, "", none.name).out).at("history");
  ASSERT_FALSE(history.empty());
  json backup = history.back();
  EXPECT_EQ(backup.at("operation"), "backup");
  EXPECT_EQ(backup.at("run_as_uid"), none.uid) << backup.dump();
}

TEST_F(Ownership, RepeatedDenialsAreSlowedDownWithoutSlowingOthers) {
  const auto& none = zbtest::roleUser("none");
  const auto& viewer = zbtest::roleUser("viewer");
  Daemon& d = *m_daemon;
  std::string data = ownedDirectory(d, "root-data", 0, 0, 0755);
  ASSERT_EQ(d.ctl({"volume", "create", "roots", "--path", data}).exitCode, 0);
  const std::string socket = d.socketPath();

  // A bounded burst of requests that are all denied.
  std::string burst = zbtest::inChildAs(none.name, [&] {
    std::string out;
    zerobyte::varlink::Client client(socket);
    for (int i = 0; i < 30; ++i) {
      client.sendRaw(zerobyte::varlink::encode(
          zerobyte::varlink::CallMessage{"org.zerobyte.Daemon.DeleteVolume", {{"name", "roots"}}, false, false}));
      auto reply = client.readReply();
      out += reply.error.value_or("ok") + " " + std::to_string(reply.parameters.value("retry_after", 0)) + "\n";
    }
    return out;
  });
  size_t refused = 0, limited = 0;
  bool retryGiven = true;
  std::istringstream lines(burst);
  for (std::string name, retry; lines >> name >> retry;) {
    if (name == "org.zerobyte.Daemon.NotFound") ++refused;
    if (name == "org.zerobyte.Daemon.RateLimited") {
      ++limited;
      retryGiven = retryGiven && std::stoi(retry) >= 1;
    }
  }
  EXPECT_GE(refused, 10U) << burst;
  EXPECT_LE(refused, 14U) << "after the burst, denials are slowed down: " << burst;
  EXPECT_GE(limited, 16U) << burst;
  EXPECT_TRUE(retryGiven) << burst;

  // Meanwhile another user is served as usual, and so is the limited user's own view later.
  std::string status = zbtest::inChildAs(viewer.name, [&] { return call(socket, "org.zerobyte.Daemon.GetStatus", json::object()); });
  EXPECT_EQ(status.substr(0, status.find('\n')), "") << status;
  EXPECT_EQ(d.ctlJson({"volume", "list"}).at("volumes").size(), 1U) << "nothing was deleted";
  EXPECT_TRUE(contains(d.log(), "refused for a while after repeated denied requests")) << d.log();
}

}  // namespace

namespace {

// "authorization: auto" uses polkit when the system bus has it, and the groups otherwise; either way it says so once.
TEST(AuthorizationMode, AutoPicksPolkitWhenItIsThereAndTheGroupsWhenNot) {
  zbtest::roleUsers();
  {
    zbtest::NoSystemBus noBus;
    Daemon::Options options;
    options.extraDaemonSettings = "  authorization: auto\n";
    options.extraEnvironment = {noBus.environmentEntry()};
    Daemon daemon(options);
    daemon.start();
    EXPECT_EQ(daemon.ctlJson({"status"}).value("authorization", ""), "groups");
    EXPECT_TRUE(contains(daemon.log(), "polkit cannot be used")) << daemon.log();
    // The fallback still decides: a user without a role cannot read the audit trail.
    EXPECT_EQ(daemon.ctl({"audit"}, "", zbtest::roleUser("none").name).exitCode, 5);
  }
  {
    zbtest::OwnedPolkitEnvironment polkit;
    Daemon::Options options;
    options.extraDaemonSettings = "  authorization: auto\n";
    options.extraEnvironment = {polkit.environmentEntry()};
    Daemon daemon(options);
    daemon.start();
    EXPECT_EQ(daemon.ctlJson({"status"}).value("authorization", ""), "polkit");
    EXPECT_TRUE(contains(daemon.log(), "authorization: polkit")) << daemon.log();
    EXPECT_EQ(daemon.ctl({"audit"}, "", zbtest::roleUser("admin").name).exitCode, 0);
    EXPECT_EQ(daemon.ctl({"audit"}, "", zbtest::roleUser("operator").name).exitCode, 5);
  }
}

// "authorization: polkit" makes polkit mandatory: without it the daemon does not start, and says why.
TEST(AuthorizationMode, RequiredPolkitThatIsMissingStopsTheStart) {
  zbtest::NoSystemBus noBus;
  Daemon::Options options;
  options.extraDaemonSettings = "  authorization: polkit\n";
  options.extraEnvironment = {noBus.environmentEntry()};
  Daemon daemon(options);
  EXPECT_THROW(daemon.start(), std::runtime_error);
  EXPECT_TRUE(contains(daemon.log(), "authorization: groups")) << "the error says how to fix it: " << daemon.log();
}

}  // namespace
