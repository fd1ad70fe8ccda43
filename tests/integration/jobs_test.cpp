// End-to-end job life cycles: cancel, kill -9 and SIGTERM of the daemon mid-backup, SIGHUP reloads, read-only declared resources, lock queueing.
#include "tests/integration/harness.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace zbtest {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kBigFiles = 4;
constexpr size_t kBigFileBytes = 75 * 1024 * 1024;  // ~300 MB in all: restic needs seconds for it

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

size_t entryCount(const std::string& dir) {
  size_t n = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
    ::closedir(d);
  }
  return n;
}

// Lock files that restic has finished writing (it creates the file, then writes it).
size_t writtenEntryCount(const std::string& dir) {
  size_t n = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      struct stat st {};
      if (name != "." && name != ".." && ::stat((dir + "/" + name).c_str(), &st) == 0 && st.st_size > 0) ++n;
    }
    ::closedir(d);
  }
  return n;
}

bool pollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class Jobs : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon = std::make_unique<Daemon>();
    daemon->start();
    big = daemon->dir() + "/big";
    small = daemon->dir() + "/small";
    repository = daemon->dir() + "/repository";
  }

  void createVolumesAndRepository() {
    makeRandomFiles(big, kBigFiles, kBigFileBytes);
    makeTree(small, 300);
    for (auto [name, path] : {std::pair{"big", big}, std::pair{"small", small}}) {
      auto r = daemon->ctl({"volume", "create", name, "--path", path});
      ASSERT_EQ(r.exitCode, 0) << r.err;
    }
    auto r = daemon->ctl({"repo", "create", "main", "--path", repository});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }

  uint64_t startBackup(const std::string& volume) {
    return daemon->ctlJson({"backup", volume, "--repo", "main"}).at("job").at("id").get<uint64_t>();
  }

  json job(uint64_t id) { return daemon->ctlJson({"job", "show", std::to_string(id)}).at("job"); }

  bool waitUntilRunning(uint64_t id) {
    return pollUntil([&] { return job(id).at("state") == "running"; }, std::chrono::seconds(30));
  }

  // A small backup, then a restore of it compared with the volume.
  void backUpAndRestoreSmallVolume() {
    auto r = daemon->ctl({"backup", "small", "--repo", "main", "--follow", "--json"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    auto last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
    std::string snapshot = json::parse(last).at("job").at("summary").at("snapshot_id").get<std::string>();
    const std::string target = daemon->dir() + "/restored";
    auto restore = daemon->ctl({"restore", "main", snapshot, "--target", target, "--follow"});
    ASSERT_EQ(restore.exitCode, 0) << restore.out << restore.err;
    EXPECT_EQ(compareTrees(small, target + small), "");
    lastSnapshot = snapshot;
  }

  std::unique_ptr<Daemon> daemon;
  std::string big, small, repository, lastSnapshot;
};

TEST_F(Jobs, CancelledBackupEndsCancelledAndTheRepositoryStaysUsable) {
  createVolumesAndRepository();
  uint64_t id = startBackup("big");
  ASSERT_TRUE(waitUntilRunning(id)) << job(id).dump();
  auto cancel = daemon->ctl({"job", "cancel", std::to_string(id)});
  EXPECT_EQ(cancel.exitCode, 0) << cancel.out << cancel.err;

  json ended = daemon->waitForJob(id, 60000);
  EXPECT_EQ(ended.at("state"), "cancelled") << ended.dump();
  EXPECT_TRUE(contains(ended.at("message").get<std::string>(), "cancelled by uid 0")) << ended.dump();
  EXPECT_TRUE(ended.at("summary").is_null()) << "restic finished before it was cancelled: " << ended.dump();
  EXPECT_EQ(daemon->ctl({"job", "follow", std::to_string(id)}).exitCode, 8);

  backUpAndRestoreSmallVolume();
}

TEST_F(Jobs, KilledDaemonMarksTheJobInterruptedAndUnlocksTheRepositoryAtStart) {
  createVolumesAndRepository();
  uint64_t id = startBackup("big");
  ASSERT_TRUE(waitUntilRunning(id)) << job(id).dump();
  const std::string locks = repository + "/locks";
  // Killed between creating its lock file and writing it, restic leaves an unreadable file that every
  // restic ignores (and unlock does not remove): wait for a complete lock and for the backup to be under way.
  ASSERT_TRUE(pollUntil([&] { return writtenEntryCount(locks) > 0 && job(id).at("progress").at("bytes_done").get<uint64_t>() > 0; },
                        std::chrono::seconds(30)))
      << "restic took no lock or made no progress";

  daemon->kill9();
  ASSERT_GT(entryCount(locks), 0u) << "the killed restic left no lock behind: nothing to test";
  daemon->start();

  json interrupted = job(id);
  EXPECT_EQ(interrupted.at("state"), "interrupted") << interrupted.dump();
  EXPECT_TRUE(contains(interrupted.at("message").get<std::string>(), "interrupted")) << interrupted.dump();
  EXPECT_FALSE(interrupted.at("finished").is_null());

  uint64_t unlockId = 0;
  const json jobs = daemon->ctlJson({"job", "list"}).at("jobs");
  for (const auto& j : jobs)
    if (j.at("operation") == "unlock" && j.at("id").get<uint64_t>() > id) unlockId = j.at("id").get<uint64_t>();
  ASSERT_NE(unlockId, 0u) << "no unlock job was started after the interrupted run";
  json unlock = daemon->waitForJob(unlockId, 60000);
  EXPECT_EQ(unlock.at("state"), "succeeded") << unlock.dump();
  EXPECT_EQ(unlock.at("repository"), "main");
  EXPECT_EQ(entryCount(locks), 0u) << "the stale lock is still there";

  backUpAndRestoreSmallVolume();
  // forget takes restic's exclusive lock: it fails if any lock was left.
  auto forget = daemon->ctl({"snapshot", "forget", "main", lastSnapshot});
  EXPECT_EQ(forget.exitCode, 0) << forget.out << forget.err;
}

TEST_F(Jobs, SigtermCancelsTheRunningBackupAndStopsCleanly) {
  createVolumesAndRepository();
  uint64_t id = startBackup("big");
  ASSERT_TRUE(waitUntilRunning(id)) << job(id).dump();
  std::vector<pid_t> children;
  ASSERT_TRUE(pollUntil([&] { return !(children = daemon->childPids()).empty(); }, std::chrono::seconds(10)));

  auto before = Clock::now();
  int status = daemon->stop();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - before);
  EXPECT_EQ(status, 0) << "zerobyted exit status";
  EXPECT_LT(took, std::chrono::seconds(10)) << "longer than cancel_grace_seconds (10)";
  auto notes = daemon->notifications();
  EXPECT_NE(std::find_if(notes.begin(), notes.end(), [](const std::string& n) { return contains(n, "STOPPING=1"); }), notes.end());
  // The daemon reaped its restic: no process of it is left, not even a zombie handed to us.
  for (pid_t child : children) EXPECT_NE(::access(("/proc/" + std::to_string(child)).c_str(), F_OK), 0) << "restic pid " << child << " is left";
  EXPECT_TRUE(adoptedProcesses().empty());

  daemon->start();
  json cancelled = job(id);
  EXPECT_EQ(cancelled.at("state"), "cancelled") << cancelled.dump();
  EXPECT_TRUE(contains(cancelled.at("message").get<std::string>(), "zerobyted is stopping")) << cancelled.dump();
  // Cancelled cleanly: nothing needed unlocking.
  const json jobs = daemon->ctlJson({"job", "list"}).at("jobs");
  for (const auto& j : jobs) EXPECT_NE(j.at("operation"), "unlock") << j.dump();
}

std::vector<std::string> volumeNames(Daemon& daemon) {
  std::vector<std::string> names;
  const json volumes = daemon.ctlJson({"volume", "list"}).at("volumes");
  for (const auto& v : volumes) names.push_back(v.at("name").get<std::string>());
  return names;
}

TEST(Reload, SighupAddsDeclaredVolumesAndAnInvalidFileKeepsTheRunningConfiguration) {
  Daemon::Options options;
  Daemon daemon(options);
  ::mkdir((daemon.dir() + "/one").c_str(), 0755);
  ::mkdir((daemon.dir() + "/two").c_str(), 0755);
  options.extraConfig = "volumes:\n  - name: first\n    path: " + daemon.dir() + "/one\n";
  daemon.writeConfig(options);
  daemon.start();
  EXPECT_EQ(volumeNames(daemon), std::vector<std::string>{"first"});

  options.extraConfig += "  - name: second\n    path: " + daemon.dir() + "/two\n";
  daemon.writeConfig(options);
  daemon.signal(SIGHUP);
  EXPECT_TRUE(daemon.waitForNotification("RELOADING=1", 10000));
  EXPECT_TRUE(daemon.waitForNotification("READY=1", 10000));
  EXPECT_EQ(volumeNames(daemon), (std::vector<std::string>{"first", "second"}));
  json second = daemon.ctlJson({"volume", "show", "second"}).at("volume");
  EXPECT_EQ(second.at("declared"), true);
  EXPECT_EQ(second.at("path"), daemon.dir() + "/two");

  Daemon::Options broken = options;
  broken.extraConfig = "volumes:\n  - name: [first\n    path: /nowhere\n";
  daemon.writeConfig(broken);
  daemon.signal(SIGHUP);
  EXPECT_TRUE(daemon.waitForNotification("RELOADING=1", 10000));
  EXPECT_TRUE(daemon.waitForNotification("READY=1", 10000));
  EXPECT_EQ(volumeNames(daemon), (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE(std::regex_search(daemon.log(), std::regex(daemon.configPath() + ":[0-9]+:[0-9]+: "))) << daemon.log();
  EXPECT_TRUE(contains(daemon.log(), "keeping the running one"));
  auto status = daemon.ctl({"status"});
  EXPECT_EQ(status.exitCode, 0) << status.err;
  EXPECT_TRUE(daemon.running());
}

TEST(DeclaredResources, CannotBeDeletedThroughTheApi) {
  Daemon::Options options;
  Daemon daemon(options);
  const std::string passwordFile = daemon.dir() + "/password";
  std::ofstream(passwordFile) << "declared-password";
  options.extraConfig = "volumes:\n  - name: etc\n    path: /etc\n"
                        "repositories:\n  - name: declared\n    path: " + daemon.dir() + "/repo\n    password: file://" + passwordFile + "\n";
  daemon.writeConfig(options);
  daemon.start();

  auto volume = daemon.ctl({"volume", "delete", "etc"});
  EXPECT_EQ(volume.exitCode, 6) << volume.out << volume.err;
  EXPECT_EQ(volume.err.rfind("ReadOnly:", 0), 0u) << volume.err;
  auto repo = daemon.ctl({"repo", "delete", "declared"});
  EXPECT_EQ(repo.exitCode, 6) << repo.out << repo.err;
  EXPECT_EQ(repo.err.rfind("ReadOnly:", 0), 0u) << repo.err;
  EXPECT_EQ(volumeNames(daemon), std::vector<std::string>{"etc"});
  EXPECT_EQ(daemon.ctlJson({"repo", "list"}).at("repositories").size(), 1u);
}

TEST_F(Jobs, ExclusiveForgetWaitsForTheSharedBackupsBeforeIt) {
  makeTree(small, 300);
  makeRandomFiles(small + "/data", 1, 60 * 1024 * 1024);
  ASSERT_EQ(daemon->ctl({"volume", "create", "small", "--path", small}).exitCode, 0);
  ASSERT_EQ(daemon->ctl({"repo", "create", "main", "--path", repository}).exitCode, 0);
  auto first = daemon->ctl({"backup", "small", "--repo", "main", "--follow"});
  ASSERT_EQ(first.exitCode, 0) << first.out << first.err;
  std::string oldest = daemon->ctlJson({"snapshot", "list", "main"}).at("snapshots")[0].at("id").get<std::string>();

  std::ofstream(small + "/changed") << "new content so both backups have work";
  uint64_t a = startBackup("small");
  uint64_t b = startBackup("small");
  // One Varlink call right after, so the forget is queued while the backups hold the shared lock.
  json forgetJob = daemon->client()->call("org.zerobyte.Daemon.ForgetSnapshot", {{"repository", "main"}, {"snapshot", oldest}}).at("job");
  uint64_t f = forgetJob.at("id").get<uint64_t>();
  EXPECT_EQ(forgetJob.at("state"), "queued") << forgetJob.dump();

  // Whenever the forget is seen started, both backups must be seen ended (read after it).
  auto client = daemon->client();
  auto state = [&](uint64_t id) { return client->call("org.zerobyte.Daemon.GetJob", {{"id", id}}).at("job").at("state").get<std::string>(); };
  bool sawForgetQueuedBehindABackup = false;
  auto deadline = Clock::now() + std::chrono::seconds(120);
  for (;;) {
    std::string stateF = state(f), stateA = state(a), stateB = state(b);
    bool backupsEnded = stateA != "queued" && stateA != "running" && stateB != "queued" && stateB != "running";
    if (stateF != "queued") {
      EXPECT_TRUE(backupsEnded) << "forget " << stateF << " while backups are " << stateA << " and " << stateB;
    } else if (stateA == "running" || stateB == "running") {
      sawForgetQueuedBehindABackup = true;
    }
    if ((stateF != "queued" && stateF != "running") || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(sawForgetQueuedBehindABackup) << "the backups ended before the forget was seen waiting: nothing was tested";

  json jobA = daemon->waitForJob(a), jobB = daemon->waitForJob(b), jobF = daemon->waitForJob(f);
  EXPECT_EQ(jobA.at("state"), "succeeded") << jobA.dump();
  EXPECT_EQ(jobB.at("state"), "succeeded") << jobB.dump();
  EXPECT_EQ(jobF.at("state"), "succeeded") << jobF.dump();
  // RFC 3339 UTC times of one format compare as strings.
  EXPECT_GE(jobF.at("started").get<std::string>(), jobA.at("finished").get<std::string>());
  EXPECT_GE(jobF.at("started").get<std::string>(), jobB.at("finished").get<std::string>());
  EXPECT_LE(jobB.at("started").get<std::string>(), jobA.at("finished").get<std::string>()) << "the shared backups did not overlap";

  json list = daemon->ctlJson({"snapshot", "list", "main", "--refresh"});
  EXPECT_EQ(list.at("snapshots").size(), 2u) << list.dump();
  for (const auto& s : list.at("snapshots")) EXPECT_NE(s.at("id"), oldest);
}

}  // namespace
}  // namespace zbtest
