// Integration tests of repository maintenance: restic locks (stale ones cleared and the job tried once more, live
// ones never removed except by the audited escape hatch), prune, stats, and check and prune schedules.
#include "tests/integration/harness.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace {

using nlohmann::json;
using zbtest::CommandResult;
using zbtest::contains;
using zbtest::describe;
using zbtest::Daemon;
namespace fs = std::filesystem;


// Lock files restic counts: named by their 64-digit id (restic writes "<id>-tmp-N" first, then renames it).
size_t lockCount(const std::string& repository) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(repository + "/locks", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 64 && name.find_first_not_of("0123456789abcdef") == std::string::npos) ++n;
  }
  return n;
}

// A restic the test starts itself (not through zerobyted), with a pipe to its stdin.
struct OwnRestic {
  pid_t pid = -1;
  int stdinFd = -1;
};

OwnRestic startRestic(const std::vector<std::string>& args) {
  int pipeFds[2];
  EXPECT_EQ(::pipe(pipeFds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipeFds[0], STDIN_FILENO);
    ::close(pipeFds[0]);
    ::close(pipeFds[1]);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  zbtest::ownProcess(pid);
  ::close(pipeFds[0]);
  return {pid, pipeFds[1]};
}

void reap(OwnRestic& r) {
  if (r.stdinFd >= 0) ::close(r.stdinFd);
  int status = 0;
  ::waitpid(r.pid, &status, 0);
  zbtest::disownProcess(r.pid);
}

bool waitForLock(const std::string& repository, int timeoutMs) {
  for (int i = 0; i < timeoutMs; ++i) {
    if (lockCount(repository) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

struct Fixture {
  std::string repository, passwordFile, data;
};

// A volume "home" and a repository "main" made by restic with a known password and adopted by zerobyted.
Fixture setUp(Daemon& daemon, size_t randomFiles) {
  Fixture f{daemon.dir() + "/main", daemon.dir() + "/main.pw", daemon.dir() + "/home"};
  fs::create_directories(f.data);
  zbtest::makeRandomFiles(f.data, randomFiles, 4 * 1024 * 1024, 3);
  std::ofstream(f.passwordFile) << "maintenance-test-password\n";
  EXPECT_EQ(::chmod(f.passwordFile.c_str(), 0600), 0);
  CommandResult init = zbtest::run({"/usr/bin/restic", "init", "--repo", f.repository, "--password-file", f.passwordFile});
  EXPECT_EQ(init.exitCode, 0) << describe(init);
  EXPECT_EQ(daemon.ctl({"repo", "import", "main", "--path", f.repository, "--password-file", f.passwordFile}).exitCode, 0);
  EXPECT_EQ(daemon.ctl({"volume", "create", "home", "--path", f.data}).exitCode, 0);
  return f;
}

TEST(Maintenance, StaleExclusiveLockOfAKilledResticIsClearedAndTheBackupSucceeds) {
  Daemon daemon;
  daemon.start();
  Fixture f = setUp(daemon, 6);
  CommandResult first = zbtest::run({"/usr/bin/restic", "backup", "--repo", f.repository, "--password-file", f.passwordFile, f.data});
  ASSERT_EQ(first.exitCode, 0) << describe(first);

  // restic check --read-data holds the exclusive lock while it reads 24 MiB; killed then, the lock stays behind.
  OwnRestic check = startRestic({"/usr/bin/restic", "check", "--read-data", "--repo", f.repository, "--password-file", f.passwordFile});
  ASSERT_TRUE(waitForLock(f.repository, 20000)) << "restic check never took its lock";
  ASSERT_EQ(::kill(check.pid, SIGKILL), 0);
  reap(check);
  ASSERT_EQ(lockCount(f.repository), 1u) << "the killed restic's lock is left behind";
  // restic itself refuses the repository now.
  CommandResult refused = zbtest::run({"/usr/bin/restic", "backup", "--repo", f.repository, "--password-file", f.passwordFile, f.data});
  ASSERT_NE(refused.exitCode, 0) << describe(refused);
  ASSERT_TRUE(contains(refused.err, "locked exclusively by PID " + std::to_string(check.pid))) << describe(refused);

  CommandResult backup = daemon.ctl({"backup", "home", "--repo", "main", "--follow"});
  EXPECT_EQ(backup.exitCode, 0) << describe(backup);
  json job = daemon.ctlJson({"job", "list", "--limit", "1"}).at("jobs").at(0);
  EXPECT_EQ(job.at("state"), "succeeded") << job.dump();
  CommandResult log = daemon.ctl({"job", "log", std::to_string(job.at("id").get<int64_t>())});
  EXPECT_TRUE(contains(log.out, "locked")) << describe(log);
  EXPECT_TRUE(contains(log.out, "trying once more")) << describe(log);
  EXPECT_EQ(lockCount(f.repository), 0u);
}

TEST(Maintenance, LiveLockIsNeverRemovedButByTheAuditedEscapeHatch) {
  Daemon daemon;
  daemon.start();
  Fixture f = setUp(daemon, 1);
  // A live restic that holds a (shared) lock while it waits for its stdin.
  OwnRestic live = startRestic({"/usr/bin/restic", "backup", "--stdin", "--stdin-filename", "stream", "--repo", f.repository,
                                "--password-file", f.passwordFile});
  ASSERT_TRUE(waitForLock(f.repository, 20000)) << "restic backup --stdin never took its lock";

  // A check needs the repository exclusively: restic refuses, the stale-only unlock leaves the live lock, and the
  // job fails naming the holder.
  // RepositoryLocked: its own exit status (6).
  CommandResult check = daemon.ctl({"repo", "check", "main"});
  EXPECT_EQ(check.exitCode, 6) << describe(check);
  EXPECT_TRUE(contains(check.err, "is locked by another process")) << describe(check);
  EXPECT_TRUE(contains(check.err, "PID " + std::to_string(live.pid))) << describe(check);
  EXPECT_TRUE(contains(check.err, "live process")) << describe(check);
  EXPECT_EQ(::kill(live.pid, 0), 0) << "the live restic was left alone";
  EXPECT_EQ(lockCount(f.repository), 1u);

  CommandResult unlock = daemon.ctl({"repo", "unlock", "main"});
  EXPECT_EQ(unlock.exitCode, 0) << describe(unlock);
  EXPECT_EQ(lockCount(f.repository), 1u) << "a plain unlock removes stale locks only";

  // The escape hatch is an admin's, says whose lock goes, and is in the audit trail.
  CommandResult all = daemon.ctl({"repo", "unlock", "main", "--remove-all"});
  EXPECT_EQ(all.exitCode, 0) << describe(all);
  EXPECT_TRUE(contains(all.err, "shared lock of pid " + std::to_string(live.pid))) << describe(all);
  EXPECT_EQ(lockCount(f.repository), 0u);
  CommandResult audit = daemon.ctl({"audit", "--json"});
  EXPECT_TRUE(contains(audit.out, "RemoveAllRepositoryLocks")) << describe(audit);
  EXPECT_TRUE(contains(audit.out, "pid " + std::to_string(live.pid))) << describe(audit);
  ::kill(live.pid, SIGKILL);
  reap(live);
}

TEST(Maintenance, PruneStatsAndCheckAndPruneSchedules) {
  Daemon daemon;
  daemon.start();
  Fixture f = setUp(daemon, 2);
  ASSERT_EQ(daemon.ctl({"backup", "home", "--repo", "main", "--follow"}).exitCode, 0);
  fs::remove(f.data + "/blob0");
  ASSERT_EQ(daemon.ctl({"backup", "home", "--repo", "main", "--follow"}).exitCode, 0);

  json stats = daemon.ctlJson({"repo", "stats", "main"});
  EXPECT_EQ(stats.at("snapshot_count"), 2);
  EXPECT_GT(stats.at("total_size").get<uint64_t>(), 8u * 1024 * 1024);
  CommandResult statsText = daemon.ctl({"repo", "stats", "main"});
  EXPECT_TRUE(contains(statsText.out, "Snapshots")) << describe(statsText);

  // Forget the first snapshot, then prune frees blob0's data.
  json snapshots = daemon.ctlJson({"snapshot", "list", "main", "--refresh"});
  std::string oldest = snapshots.at("snapshots").at(0).at("id");
  ASSERT_EQ(daemon.ctl({"snapshot", "forget", "main", oldest}).exitCode, 0);
  CommandResult prune = daemon.ctl({"repo", "prune", "main"});
  ASSERT_EQ(prune.exitCode, 0) << describe(prune);
  EXPECT_TRUE(contains(prune.out, "Pruned repository main")) << describe(prune);
  json after = daemon.ctlJson({"repo", "stats", "main"});
  EXPECT_LT(after.at("total_size").get<uint64_t>() + 3u * 1024 * 1024, stats.at("total_size").get<uint64_t>()) << after.dump();

  // Check and prune schedules of the repository alone.
  CommandResult badSubset = daemon.ctl({"schedule", "create", "weekly-check", "--check", "--repo", "main", "--cron", "@weekly",
                                        "--read-data-subset", "150%"});
  EXPECT_EQ(badSubset.exitCode, 2) << describe(badSubset);
  EXPECT_TRUE(contains(badSubset.err, "read-data subset")) << describe(badSubset);
  CommandResult withVolume = daemon.ctl({"schedule", "create", "weekly-check", "--check", "--repo", "main", "--volume", "home",
                                         "--cron", "@weekly"});
  EXPECT_NE(withVolume.exitCode, 0) << describe(withVolume);
  CommandResult retentionOnCheck = daemon.ctl({"schedule", "create", "weekly-check", "--check", "--repo", "main", "--cron", "@weekly",
                                               "--keep-last", "3"});
  EXPECT_TRUE(contains(retentionOnCheck.err, "keep_last is for backup schedules")) << describe(retentionOnCheck);
  ASSERT_EQ(daemon.ctl({"schedule", "create", "weekly-check", "--check", "--repo", "main", "--cron", "@weekly",
                        "--read-data-subset", "1/2"})
                .exitCode,
            0);
  ASSERT_EQ(daemon.ctl({"schedule", "create", "monthly-prune", "--prune", "--repo", "main", "--cron", "@monthly"}).exitCode, 0);
  CommandResult runCheck = daemon.ctl({"schedule", "run", "weekly-check", "--follow"});
  EXPECT_EQ(runCheck.exitCode, 0) << describe(runCheck);
  CommandResult runPrune = daemon.ctl({"schedule", "run", "monthly-prune", "--follow"});
  EXPECT_EQ(runPrune.exitCode, 0) << describe(runPrune);
  json checkSchedule = daemon.ctlJson({"schedule", "show", "weekly-check"});
  EXPECT_EQ(checkSchedule.at("schedule").at("kind"), "check");
  json checkRun = checkSchedule.at("history").at(0);
  EXPECT_EQ(checkRun.at("operation"), "check");
  EXPECT_EQ(checkRun.at("state"), "succeeded");
  EXPECT_TRUE(contains(checkRun.at("message"), "subset 1/2")) << checkRun.dump();
  json pruneRun = daemon.ctlJson({"schedule", "show", "monthly-prune"}).at("history").at(0);
  EXPECT_EQ(pruneRun.at("operation"), "prune");
  EXPECT_EQ(pruneRun.at("state"), "succeeded");
  CommandResult previewOnPrune = daemon.ctl({"schedule", "retention-preview", "monthly-prune"});
  EXPECT_EQ(previewOnPrune.exitCode, 2) << describe(previewOnPrune);
}

}  // namespace
