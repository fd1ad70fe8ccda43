// Unit tests of privilege separation with real users (created with useradd): children run as the user with exactly
// their groups and no capabilities, access checks are the kernel's answer for that user and are bounded in time,
// and per-user restic cache directories are created safely.
#include "common/errors.h"
#include "common/users.h"
#include "daemon/loop/event_loop.h"
#include "daemon/process/process_runner.h"
#include "daemon/process/run_as.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace zerobyte::process {
namespace {

using namespace std::chrono_literals;
using zbtest::unit::readFile;
using zbtest::unit::TemporaryDirectory;
using zbtest::unit::thrownError;

constexpr const char* kAlice = "zbt-ps-alice";
constexpr const char* kBob = "zbt-ps-bob";
constexpr const char* kTeam = "zbt-ps-team";  // alice's supplementary group; bob is not in it

// Runs a user-administration tool (argv, no shell) until `done` holds: useradd and friends fail while another
// process (another test, another engineer's) holds /etc/passwd's lock.
template <typename Done>
void administer(const std::vector<std::string>& argv, Done done) {
  for (int attempt = 0; attempt < 50 && !done(); ++attempt) {
    if (runSync(argv, {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}).exitCode == 0 && done()) return;
    std::this_thread::sleep_for(100ms);
  }
  if (!done()) ADD_FAILURE() << argv[0] << " " << argv.back() << " did not succeed";
}

bool inTeam(const char* user) {
  auto id = users::lookup(std::string(user));
  auto team = users::groupId(kTeam);
  return id && team && std::find(id->groups.begin(), id->groups.end(), *team) != id->groups.end();
}

// Creates the test users once. ctest runs every test in its own process, several at a time: the creation is
// serialized with a lock file, or two useradd runs race on the same name and home.
void createTestUsers() {
  int lock = ::open("/tmp/zbt-ps-users.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(lock, 0) << std::strerror(errno);
  ASSERT_EQ(flock(lock, LOCK_EX), 0);
  administer({"/usr/sbin/groupadd", kTeam}, [] { return users::groupId(kTeam).has_value(); });
  for (const char* name : {kAlice, kBob})
    administer({"/usr/sbin/useradd", "--create-home", "--user-group", "--shell", "/usr/sbin/nologin", name},
               [name] { return users::lookup(std::string(name)).has_value(); });
  administer({"/usr/sbin/usermod", "--append", "--groups", kTeam, kAlice}, [] { return inTeam(kAlice); });
  for (const char* name : {kAlice, kBob}) {
    // Private homes that are really theirs, whatever useradd's HOME_MODE or an earlier interrupted run left.
    if (auto id = users::lookup(std::string(name))) {
      ::mkdir(id->home.c_str(), 0700);
      EXPECT_EQ(::chown(id->home.c_str(), id->uid, id->gid), 0) << id->home;
      EXPECT_EQ(::chmod(id->home.c_str(), 0700), 0) << id->home;
    }
  }
  ::close(lock);
}

users::Identity testUser(const char* name) {
  auto id = users::lookup(std::string(name));
  if (!id) throw std::runtime_error(std::string("test user ") + name + " is missing");
  return *id;
}

class RunAsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    loop::blockSignals();
    if (geteuid() == 0) createTestUsers();
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (it creates users and changes identity)";
    alice = testUser(kAlice);
    bob = testUser(kBob);
    ASSERT_NE(alice.uid, 0U);
    ASSERT_NE(alice.uid, bob.uid);
  }

  // The child's stdout lines and exit status, run to the end on a real event loop.
  std::pair<std::vector<std::string>, int> run(ProcessSpec spec) {
    std::vector<std::string> out;
    std::optional<ProcessResult> result;
    ProcessCallbacks callbacks;
    callbacks.onStdoutLine = [&out](std::string_view line) { out.emplace_back(line); };
    callbacks.onExit = [&result](const ProcessResult& r) { result = r; };
    m_runner.start(std::move(spec), std::move(callbacks));
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!result && std::chrono::steady_clock::now() < deadline) sd_event_run(m_loop.get(), 100000);
    EXPECT_TRUE(result) << "the child did not finish";
    return {out, result ? result->exitCode : -1};
  }

  std::vector<std::string> runAsUser(const users::Identity& user, std::vector<std::string> argv) {
    ProcessSpec spec;
    spec.argv = std::move(argv);
    runAs(spec, user);
    auto [out, status] = run(std::move(spec));
    EXPECT_EQ(status, 0);
    return out;
  }

  users::Identity alice, bob;
  loop::EventLoop m_loop;
  ProcessRunner m_runner{m_loop};
};

// ---- running as the user ----

TEST_F(RunAsTest, ChildRunsAsAliceWithExactlyHerGroups) {
  auto team = users::groupId(kTeam);
  ASSERT_TRUE(team);
  std::vector<gid_t> expected = {alice.gid, *team};
  std::sort(expected.begin(), expected.end());
  std::vector<gid_t> listed = alice.groups;
  std::sort(listed.begin(), listed.end());
  ASSERT_EQ(listed, expected) << "the user database lists alice's primary group and " << kTeam;

  EXPECT_EQ(runAsUser(alice, {"/usr/bin/id", "-u"}), (std::vector<std::string>{std::to_string(alice.uid)}));
  EXPECT_EQ(runAsUser(alice, {"/usr/bin/id", "-g"}), (std::vector<std::string>{std::to_string(alice.gid)}));
  auto groups = runAsUser(alice, {"/usr/bin/id", "-G"});
  ASSERT_EQ(groups.size(), 1U);
  EXPECT_EQ(zbtest::unit::sortedIds(groups[0]), expected) << "exactly her groups, none of root's: " << groups[0];
  auto named = runAsUser(alice, {"/usr/bin/id"});
  ASSERT_EQ(named.size(), 1U);
  EXPECT_NE(named[0].find(std::string("(") + kTeam + ")"), std::string::npos) << named[0];
  EXPECT_EQ(named[0].find("root"), std::string::npos) << named[0];

  // Bob is not in the team group.
  auto bobGroups = runAsUser(bob, {"/usr/bin/id", "-G"});
  ASSERT_EQ(bobGroups.size(), 1U);
  EXPECT_EQ(zbtest::unit::sortedIds(bobGroups[0]), (std::vector<gid_t>{bob.gid}));
}

TEST_F(RunAsTest, AliceChildHoldsNoCapabilitiesAndHasNoNewPrivs) {
  auto status = zbtest::unit::procStatusFields(runAsUser(alice, {"/bin/cat", "/proc/self/status"}));
  const std::string uid = std::to_string(alice.uid), gid = std::to_string(alice.gid);
  EXPECT_EQ(status["Uid"], uid + "\t" + uid + "\t" + uid + "\t" + uid) << "real, effective, saved and filesystem uid";
  EXPECT_EQ(status["Gid"], gid + "\t" + gid + "\t" + gid + "\t" + gid);
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) EXPECT_EQ(status[set], "0000000000000000") << set;
  EXPECT_EQ(status["NoNewPrivs"], "1");
}

TEST_F(RunAsTest, AliceCannotReadWhatTheKernelDoesNotLetHerRead) {
  // Only the kernel knows: a 0600 root file is unreadable for her even though root's child could read it.
  ProcessSpec spec;
  spec.argv = {"/bin/cat", "/etc/shadow"};
  runAs(spec, alice);
  auto [out, status] = run(std::move(spec));
  EXPECT_NE(status, 0);
  EXPECT_TRUE(out.empty());
}

TEST_F(RunAsTest, RunAsLeavesRootsSpecAlone) {
  ProcessSpec spec;
  runAs(spec, *users::lookup(0));
  EXPECT_FALSE(spec.uid);
  EXPECT_FALSE(spec.gid);
  EXPECT_FALSE(spec.groups);
}

// ---- access checks made as the user ----

TEST_F(RunAsTest, AliceCanReadHerOwnPrivateDirectoryButNotBobsHome) {
  struct stat st {};
  ASSERT_EQ(stat(alice.home.c_str(), &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0700U);
  ASSERT_EQ(stat(bob.home.c_str(), &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0700U);

  auto own = checkAccessAs(alice, alice.home, AccessKind::ReadDirectory);
  EXPECT_TRUE(own.allowed) << own.reason;
  EXPECT_TRUE(own);
  EXPECT_EQ(own.checkedPath, alice.home);

  auto other = checkAccessAs(alice, bob.home, AccessKind::ReadDirectory);
  EXPECT_FALSE(other.allowed);
  EXPECT_FALSE(other.timedOut);
  EXPECT_EQ(other.error, EACCES);
  EXPECT_EQ(other.reason, "permission denied");
  EXPECT_EQ(other.checkedPath, bob.home);

  // The answer is about the user, not about the daemon: bob and root get in.
  EXPECT_TRUE(checkAccessAs(bob, bob.home, AccessKind::ReadDirectory).allowed);
  EXPECT_TRUE(checkAccessAs(*users::lookup(0), bob.home, AccessKind::ReadDirectory).allowed);
  EXPECT_FALSE(checkAccessAs(alice, "/root", AccessKind::ReadDirectory).allowed);
}

TEST_F(RunAsTest, PermissionBitsAloneWouldSayYesButTheKernelSaysNo) {
  // A 0777 directory inside root's 0700 directory: its own bits allow everyone, the path does not.
  TemporaryDirectory outer("zbt-runas-outer");
  const auto open = outer.path() / "open";
  ASSERT_EQ(mkdir(open.c_str(), 0777), 0);
  ASSERT_EQ(chmod(open.c_str(), 0777), 0);
  auto read = checkAccessAs(alice, open, AccessKind::ReadDirectory);
  EXPECT_FALSE(read.allowed);
  EXPECT_EQ(read.error, EACCES);
  auto write = checkAccessAs(alice, open, AccessKind::WriteDirectory);
  EXPECT_FALSE(write.allowed);
  EXPECT_EQ(write.error, EACCES);
}

TEST_F(RunAsTest, SupplementaryGroupsCountInTheCheck) {
  TemporaryDirectory outer("zbt-runas-team");
  ASSERT_EQ(chmod(outer.path().c_str(), 0755), 0);
  const auto shared = outer.path() / "team-only";
  ASSERT_EQ(mkdir(shared.c_str(), 0770), 0);
  ASSERT_EQ(chown(shared.c_str(), 0, *users::groupId(kTeam)), 0);
  ASSERT_EQ(chmod(shared.c_str(), 0070), 0);  // the group only: not even the owner (root, by bits)
  EXPECT_TRUE(checkAccessAs(alice, shared, AccessKind::ReadDirectory).allowed) << "through " << kTeam;
  EXPECT_TRUE(checkAccessAs(alice, shared / "new", AccessKind::WriteDirectory).allowed);
  EXPECT_FALSE(checkAccessAs(bob, shared, AccessKind::ReadDirectory).allowed);
  EXPECT_FALSE(checkAccessAs(bob, shared / "new", AccessKind::WriteDirectory).allowed);
}

TEST_F(RunAsTest, AliceCannotWriteToEtcButCanWriteIntoHerOwnDirectory) {
  auto etc = checkAccessAs(alice, "/etc", AccessKind::WriteDirectory);
  EXPECT_FALSE(etc.allowed);
  EXPECT_EQ(etc.error, EACCES);
  EXPECT_EQ(etc.reason, "permission denied");
  EXPECT_EQ(etc.checkedPath, "/etc");
  // Not existing below /etc: the nearest existing ancestor decides.
  auto below = checkAccessAs(alice, "/etc/zbt-no-such-dir/restore", AccessKind::WriteDirectory);
  EXPECT_FALSE(below.allowed);
  EXPECT_EQ(below.checkedPath, "/etc");
  EXPECT_EQ(below.reason, "permission denied (at /etc)");

  auto home = checkAccessAs(alice, alice.home, AccessKind::WriteDirectory);
  EXPECT_TRUE(home.allowed) << home.reason;
  EXPECT_EQ(home.checkedPath, alice.home);
  const std::string fresh = alice.home + "/zbt-not-yet/restored/here";
  ASSERT_NE(access(fresh.c_str(), F_OK), 0);
  auto sub = checkAccessAs(alice, fresh, AccessKind::WriteDirectory);
  EXPECT_TRUE(sub.allowed) << sub.reason;
  EXPECT_EQ(sub.checkedPath, alice.home);
  EXPECT_NE(access((alice.home + "/zbt-not-yet").c_str(), F_OK), 0) << "a check creates nothing";

  // Bob's home hides even whether the subdirectory exists: the lookup fails inside it.
  auto bobs = checkAccessAs(alice, bob.home + "/restore-here", AccessKind::WriteDirectory);
  EXPECT_FALSE(bobs.allowed);
  EXPECT_EQ(bobs.error, EACCES);
  EXPECT_FALSE(checkAccessAs(alice, bob.home, AccessKind::WriteDirectory).allowed);
  EXPECT_TRUE(checkAccessAs(alice, "/tmp/zbt-not-there-either", AccessKind::WriteDirectory).allowed) << "/tmp is 1777";
}

TEST_F(RunAsTest, DirectoriesAreMadeAsAliceOnlyWhereSheCouldMakeThem) {
  const std::string fresh = alice.home + "/zbt-made/restored/here";
  ASSERT_NE(access(fresh.c_str(), F_OK), 0);
  auto made = makeDirectoryAs(alice, fresh);
  EXPECT_TRUE(made.allowed) << made.reason;
  struct stat st {};
  for (const std::string& dir : {alice.home + "/zbt-made", fresh}) {
    ASSERT_EQ(stat(dir.c_str(), &st), 0) << dir;
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_uid, alice.uid) << dir << ": made by alice, not by root";
    EXPECT_EQ(st.st_mode & 0777, 0700u) << dir;
  }
  EXPECT_TRUE(makeDirectoryAs(alice, fresh).allowed) << "one that is there already is fine";
  std::filesystem::remove_all(alice.home + "/zbt-made");

  auto etc = makeDirectoryAs(alice, "/etc/zbt-no-such-dir/restore");
  EXPECT_FALSE(etc.allowed);
  EXPECT_EQ(etc.error, EACCES);
  EXPECT_EQ(etc.checkedPath, "/etc/zbt-no-such-dir");
  EXPECT_NE(access("/etc/zbt-no-such-dir", F_OK), 0) << "nothing made where alice may not write";
  auto bobs = makeDirectoryAs(alice, bob.home + "/restore-here");
  EXPECT_FALSE(bobs.allowed);
  EXPECT_NE(access((bob.home + "/restore-here").c_str(), F_OK), 0);
  auto file = makeDirectoryAs(alice, "/etc/passwd");
  EXPECT_FALSE(file.allowed);
  EXPECT_EQ(file.error, ENOTDIR);
}

TEST_F(RunAsTest, NonDirectoriesAndBadPathsAreNotDirectories) {
  auto file = checkAccessAs(alice, "/etc/hostname", AccessKind::ReadDirectory);
  EXPECT_FALSE(file.allowed);
  EXPECT_EQ(file.error, ENOTDIR);
  EXPECT_EQ(file.reason, "not a directory");
  auto under = checkAccessAs(alice, "/etc/hostname/x", AccessKind::WriteDirectory);
  EXPECT_FALSE(under.allowed);
  EXPECT_EQ(under.error, ENOTDIR);
  auto missing = checkAccessAs(alice, "/zbt-no-such-directory", AccessKind::ReadDirectory);
  EXPECT_FALSE(missing.allowed);
  EXPECT_EQ(missing.error, ENOENT);

  EXPECT_EQ(thrownError([&] { checkAccessAs(alice, "relative/path", AccessKind::ReadDirectory); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(thrownError([&] { checkAccessAs(alice, alice.home + "/../" + kBob, AccessKind::ReadDirectory); }).code(),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(thrownError([&] { checkAccessAs(alice, "", AccessKind::WriteDirectory); }).code(), ErrorCode::InvalidArgument);
  // Redundant slashes and "." are only spelling.
  EXPECT_TRUE(checkAccessAs(alice, "//" + alice.home + "/./", AccessKind::ReadDirectory).allowed);
}

TEST_F(RunAsTest, AFifoIsRefusedAsNotADirectoryWithoutBlocking) {
  // Opening a FIFO for reading blocks until a writer comes; the check opens with O_DIRECTORY, so it never does.
  TemporaryDirectory dir("zbt-runas-fifo");
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  const auto fifo = dir.path() / "fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0666), 0);
  auto before = std::chrono::steady_clock::now();
  auto result = checkAccessAs(alice, fifo, AccessKind::ReadDirectory, 3s);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  EXPECT_FALSE(result.allowed);
  EXPECT_FALSE(result.timedOut);
  EXPECT_EQ(result.error, ENOTDIR);
}

TEST_F(RunAsTest, ACheckThatHangsIsKilledAndReportedAfterTheTimeout) {
  // Stands in for a dead NFS server: a fanotify permission watch on the directory that never answers makes every
  // open() of it block in the kernel until the watch goes away.
  TemporaryDirectory dir("zbt-runas-hang");
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  const auto stuck = dir.path() / "stuck";
  ASSERT_EQ(mkdir(stuck.c_str(), 0755), 0);
  int watch = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY);
  if (watch < 0) GTEST_SKIP() << "fanotify permission events are not available here: " << std::strerror(errno);
  ASSERT_EQ(fanotify_mark(watch, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_ONDIR, AT_FDCWD, stuck.c_str()), 0) << std::strerror(errno);

  auto before = std::chrono::steady_clock::now();
  auto result = checkAccessAs(alice, stuck, AccessKind::ReadDirectory, 1500ms);
  auto elapsed = std::chrono::steady_clock::now() - before;
  ::close(watch);  // releases anything still waiting for an answer
  EXPECT_GE(elapsed, 1400ms);
  EXPECT_LT(elapsed, 4s) << "the wait must be bounded";
  EXPECT_FALSE(result.allowed);
  EXPECT_TRUE(result.timedOut);
  EXPECT_EQ(result.reason, "no answer within 1500 ms (a hung network filesystem?); the check was stopped");

  // Without the watch the same check answers at once.
  auto free = checkAccessAs(alice, stuck, AccessKind::ReadDirectory, 3s);
  EXPECT_TRUE(free.allowed) << free.reason;
  EXPECT_FALSE(free.timedOut);
}

// ---- per-user restic caches ----

struct Owner {
  uid_t uid;
  gid_t gid;
  mode_t mode;
};

std::optional<Owner> ownerOf(const std::filesystem::path& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) < 0) return std::nullopt;
  return Owner{st.st_uid, st.st_gid, st.st_mode};
}

TEST_F(RunAsTest, UserCacheDirectoryIsHersAloneAndReachable) {
  TemporaryDirectory base("zbt-runas-cache");
  ASSERT_EQ(chmod(base.path().c_str(), 0700), 0);  // as the daemon creates it
  const std::string dir = ensureUserCacheDirectory(base.path(), alice);
  EXPECT_EQ(dir, (base.path() / "users" / std::to_string(alice.uid)).string());
  auto owner = ownerOf(dir);
  ASSERT_TRUE(owner);
  EXPECT_TRUE(S_ISDIR(owner->mode));
  EXPECT_EQ(owner->uid, alice.uid);
  EXPECT_EQ(owner->gid, alice.gid);
  EXPECT_EQ(owner->mode & 07777, 0700U);
  auto users = ownerOf(base.path() / "users");
  EXPECT_EQ(users->uid, 0U);
  EXPECT_EQ(users->mode & 07777, 0711U);
  EXPECT_EQ(ownerOf(base.path())->mode & 0011, 0011U) << "users must pass through the cache base";

  // What restic, running as alice, needs: her directory is writable for her, and for nobody else readable.
  EXPECT_TRUE(checkAccessAs(alice, dir + "/repository-id", AccessKind::WriteDirectory).allowed);
  EXPECT_FALSE(checkAccessAs(bob, dir, AccessKind::ReadDirectory).allowed);
  EXPECT_FALSE(checkAccessAs(alice, base.path() / "users", AccessKind::ReadDirectory).allowed) << "nobody lists the others";

  // Again: the same directory, untouched.
  EXPECT_EQ(ensureUserCacheDirectory(base.path(), alice), dir);
  EXPECT_EQ(ownerOf(dir)->uid, alice.uid);
  // Bob gets his own.
  const std::string bobs = ensureUserCacheDirectory(base.path().string() + "/", bob);
  EXPECT_EQ(bobs, (base.path() / "users" / std::to_string(bob.uid)).string());
  EXPECT_EQ(ownerOf(bobs)->uid, bob.uid);
  // Root keeps the cache base itself, as before.
  EXPECT_EQ(ensureUserCacheDirectory(base.path(), *users::lookup(0)), base.path().string());
}

TEST_F(RunAsTest, SymlinkPlantedAtTheUserCachePathIsRefusedNotFollowed) {
  TemporaryDirectory base("zbt-runas-cache");
  TemporaryDirectory target("zbt-runas-target");
  ASSERT_EQ(chmod(target.path().c_str(), 0755), 0);
  ASSERT_EQ(mkdir((base.path() / "users").c_str(), 0711), 0);
  const auto planted = base.path() / "users" / std::to_string(alice.uid);
  ASSERT_EQ(symlink(target.path().c_str(), planted.c_str()), 0);

  auto error = thrownError([&] { ensureUserCacheDirectory(base.path(), alice); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(error.what()).find(planted.string()), std::string::npos) << error.what();
  EXPECT_NE(std::string(error.what()).find("symbolic link"), std::string::npos) << error.what();
  auto after = ownerOf(target.path());
  EXPECT_EQ(after->uid, 0U) << "the link's target was given to alice";
  EXPECT_EQ(after->mode & 07777, 0755U);
  EXPECT_TRUE(S_ISLNK(ownerOf(planted)->mode)) << "left for an administrator to look at";

  // A dangling one too.
  ASSERT_EQ(unlink(planted.c_str()), 0);
  ASSERT_EQ(symlink((target.path() / "not-there").c_str(), planted.c_str()), 0);
  EXPECT_EQ(thrownError([&] { ensureUserCacheDirectory(base.path(), alice); }).code(), ErrorCode::Failed);
  EXPECT_FALSE(ownerOf(target.path() / "not-there")) << "nothing was created through the link";

  // And one in place of the users directory.
  TemporaryDirectory base2("zbt-runas-cache");
  ASSERT_EQ(symlink(target.path().c_str(), (base2.path() / "users").c_str()), 0);
  EXPECT_EQ(thrownError([&] { ensureUserCacheDirectory(base2.path(), alice); }).code(), ErrorCode::Failed);
  EXPECT_FALSE(ownerOf(target.path() / std::to_string(alice.uid)));
}

TEST_F(RunAsTest, UserCacheDirectoryOwnedBySomeoneElseIsRefusedAnEmptyRootOneIsHandedOver) {
  TemporaryDirectory base("zbt-runas-cache");
  ASSERT_EQ(mkdir((base.path() / "users").c_str(), 0711), 0);
  const auto place = base.path() / "users" / std::to_string(alice.uid);
  ASSERT_EQ(mkdir(place.c_str(), 0700), 0);
  ASSERT_EQ(chown(place.c_str(), bob.uid, bob.gid), 0);
  auto error = thrownError([&] { ensureUserCacheDirectory(base.path(), alice); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(error.what()).find(kBob), std::string::npos) << error.what();
  EXPECT_EQ(ownerOf(place)->uid, bob.uid);

  // Root's and not empty: refused.
  ASSERT_EQ(chown(place.c_str(), 0, 0), 0);
  zbtest::unit::writeFile(place / "root-file", "x");
  EXPECT_EQ(thrownError([&] { ensureUserCacheDirectory(base.path(), alice); }).code(), ErrorCode::Failed);
  EXPECT_EQ(ownerOf(place)->uid, 0U);

  // Root's and empty (a create interrupted before its chown): given to alice, 0700.
  ASSERT_EQ(unlink((place / "root-file").c_str()), 0);
  ASSERT_EQ(chmod(place.c_str(), 0755), 0);
  EXPECT_EQ(ensureUserCacheDirectory(base.path(), alice), place.string());
  EXPECT_EQ(ownerOf(place)->uid, alice.uid);
  EXPECT_EQ(ownerOf(place)->mode & 07777, 0700U);
}

TEST_F(RunAsTest, CacheBaseWritableByOthersIsRefused) {
  TemporaryDirectory base("zbt-runas-cache");
  ASSERT_EQ(chmod(base.path().c_str(), 0777), 0);
  EXPECT_EQ(thrownError([&] { ensureUserCacheDirectory(base.path(), alice); }).code(), ErrorCode::Failed);
  EXPECT_FALSE(ownerOf(base.path() / "users"));
  ASSERT_EQ(chmod(base.path().c_str(), 0700), 0);
  ASSERT_EQ(mkdir((base.path() / "users").c_str(), 0777), 0);
  ASSERT_EQ(chmod((base.path() / "users").c_str(), 0777), 0);
  EXPECT_EQ(thrownError([&] { ensureUserCacheDirectory(base.path(), alice); }).code(), ErrorCode::Failed);
  EXPECT_FALSE(ownerOf(base.path() / "users" / std::to_string(alice.uid)));
}

}  // namespace
}  // namespace zerobyte::process
