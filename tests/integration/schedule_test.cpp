// Integration tests of schedules: the command line, fire times, retention scoped to a schedule's own snapshots,
// catch-up after downtime, no overlap, and the global limit on concurrent jobs. Real zerobyted, zerobytectl, restic.
#include "tests/integration/harness.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

namespace {

using nlohmann::json;
using zbtest::CommandResult;
using zbtest::contains;
using zbtest::describe;
using zbtest::Daemon;
namespace fs = std::filesystem;


std::string hostName() {
  char buffer[256] = {};
  gethostname(buffer, sizeof(buffer) - 1);
  return buffer;
}

const std::string kPassword = "schedule-test-password";

// A restic repository made with restic itself, adopted by the daemon under `name`; returns the password file.
std::string importedRepository(Daemon& daemon, const std::string& name) {
  const std::string path = daemon.dir() + "/" + name, passwordFile = daemon.dir() + "/" + name + ".pw";
  {
    std::ofstream out(passwordFile);
    out << kPassword << "\n";
  }
  EXPECT_EQ(::chmod(passwordFile.c_str(), 0600), 0);
  CommandResult init = zbtest::run({"/usr/bin/restic", "init", "--repo", path, "--password-file", passwordFile});
  EXPECT_EQ(init.exitCode, 0) << describe(init);
  CommandResult imported = daemon.ctl({"repo", "import", name, "--path", path, "--password-file", passwordFile});
  EXPECT_EQ(imported.exitCode, 0) << describe(imported);
  return passwordFile;
}

// A snapshot made by restic directly at a chosen time, with tags and a host.
void plantSnapshot(const std::string& repository, const std::string& passwordFile, const std::string& data, const std::string& time,
                   const std::vector<std::string>& tags, const std::string& host) {
  std::vector<std::string> argv = {"/usr/bin/restic", "backup", "--repo", repository, "--password-file", passwordFile, "--time", time,
                                   "--host", host, "--quiet"};
  for (const auto& t : tags) argv.insert(argv.end(), {"--tag", t});
  argv.push_back(data);
  CommandResult r = zbtest::run(argv);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
}

// Every snapshot of a repository as "host|tags|time" (time as restic prints it, to the second).
std::set<std::string> snapshotSet(const std::string& repository, const std::string& passwordFile) {
  CommandResult r = zbtest::run({"/usr/bin/restic", "snapshots", "--json", "--no-lock", "--repo", repository, "--password-file", passwordFile});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  std::set<std::string> out;
  for (const auto& s : json::parse(r.out)) {
    std::string tags;
    if (s.contains("tags"))
      for (const auto& t : s["tags"]) tags += (tags.empty() ? "" : ",") + t.get<std::string>();
    out.insert(s.at("hostname").get<std::string>() + "|" + tags + "|" + s.at("time").get<std::string>().substr(0, 19));
  }
  return out;
}

// The ids of the snapshots restic lists for a tag, newest last, mapped to their times (to the second).
std::map<std::string, std::string> snapshotTimes(const std::string& repository, const std::string& passwordFile) {
  CommandResult r = zbtest::run({"/usr/bin/restic", "snapshots", "--json", "--no-lock", "--repo", repository, "--password-file", passwordFile});
  std::map<std::string, std::string> out;
  for (const auto& s : json::parse(r.out)) out[s.at("id").get<std::string>()] = s.at("time").get<std::string>().substr(0, 19);
  return out;
}

std::vector<json> scheduleHistory(Daemon& daemon, const std::string& name) {
  json reply = daemon.ctlJson({"schedule", "show", name});
  return reply.at("history").get<std::vector<json>>();
}

// Waits until the schedule has no run going (backup and retention), at most `seconds`.
json waitForScheduleIdle(Daemon& daemon, const std::string& name, int seconds = 120) {
  json s;
  for (int i = 0; i < seconds * 5; ++i) {
    s = daemon.ctlJson({"schedule", "show", name}).at("schedule");
    if (s.at("running_job").is_null()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ADD_FAILURE() << "schedule " << name << " still runs: " << s.dump();
  return s;
}

void makeVolumeDirectory(const std::string& dir, const std::string& content = "data") {
  fs::create_directories(dir + "/keep/skip");
  fs::create_directories(dir + "/other");
  std::ofstream(dir + "/keep/file.txt") << content;
  std::ofstream(dir + "/keep/skip/file.txt") << content;
  std::ofstream(dir + "/keep/skip/.nobackup") << "";
  std::ofstream(dir + "/other/file.txt") << content;
}

void makeVolume(Daemon& daemon, const std::string& name, const std::string& content) {
  const std::string dir = daemon.dir() + "/" + name;
  makeVolumeDirectory(dir, content);
  ASSERT_EQ(daemon.ctl({"volume", "create", name, "--path", dir}).exitCode, 0);
}

TEST(Schedule, CommandLineCreatesShowsEditsAndDeletesWithClearErrors) {
  Daemon daemon;
  daemon.start();
  makeVolume(daemon, "home", "data");
  ASSERT_EQ(daemon.ctl({"repo", "create", "main", "--path", daemon.dir() + "/main"}).exitCode, 0);

  // Bad input names the fault and leaves nothing behind.
  CommandResult badCron = daemon.ctl({"schedule", "create", "nightly", "--volume", "home", "--repo", "main", "--cron", "30 25 * * *"});
  EXPECT_EQ(badCron.exitCode, 2) << describe(badCron);
  EXPECT_TRUE(contains(badCron.err, "InvalidArgument")) << describe(badCron);
  EXPECT_TRUE(contains(badCron.err, "cron field 2")) << describe(badCron);
  CommandResult badZone = daemon.ctl({"schedule", "create", "nightly", "--volume", "home", "--repo", "main", "--cron", "@daily",
                                      "--timezone", "Mars/Olympus"});
  EXPECT_NE(badZone.exitCode, 0);
  EXPECT_TRUE(contains(badZone.err, "Mars/Olympus")) << describe(badZone);
  CommandResult reserved = daemon.ctl({"schedule", "create", "nightly", "--volume", "home", "--repo", "main", "--cron", "@daily",
                                       "--tag", "zerobyte-schedule:other"});
  EXPECT_TRUE(contains(reserved.err, "reserved")) << describe(reserved);
  CommandResult escape = daemon.ctl({"schedule", "create", "nightly", "--volume", "home", "--repo", "main", "--cron", "@daily",
                                     "--include", "../etc"});
  EXPECT_TRUE(contains(escape.err, "leaves the volume")) << describe(escape);
  CommandResult badKeep = daemon.ctl({"schedule", "create", "nightly", "--volume", "home", "--repo", "main", "--cron", "@daily",
                                      "--keep-within", "soon"});
  EXPECT_TRUE(contains(badKeep.err, "keep_within")) << describe(badKeep);
  CommandResult noVolume = daemon.ctl({"schedule", "create", "nightly", "--volume", "nope", "--repo", "main", "--cron", "@daily"});
  EXPECT_EQ(noVolume.exitCode, 4) << describe(noVolume);
  EXPECT_TRUE(daemon.ctlJson({"schedule", "list"}).at("schedules").empty());

  CommandResult created = daemon.ctl({"schedule", "create", "nightly", "--volume", "home", "--repo", "main", "--cron", "30 2 * * *",
                                      "--timezone", "Europe/Berlin", "--keep-daily", "7", "--exclude-if-present", ".nobackup"});
  ASSERT_EQ(created.exitCode, 0) << describe(created);
  EXPECT_TRUE(contains(created.out, "Next run:")) << describe(created);
  CommandResult again = daemon.ctl({"schedule", "create", "nightly", "--volume", "home", "--repo", "main", "--cron", "@daily"});
  EXPECT_EQ(again.exitCode, 6) << describe(again);

  // Fire times in the schedule's zone: 02:30 Berlin is 00:30 UTC in summer and 01:30 UTC in winter; on the
  // spring-forward day 02:30 does not exist and the run is at 03:00 CEST, once. Every day runs exactly once.
  json next = daemon.ctlJson({"schedule", "next", "nightly", "--count", "400"});
  auto times = next.at("fire_times");
  ASSERT_EQ(times.size(), 400u);
  std::set<std::string> days;
  int springForward = 0;
  for (const auto& t : times) {
    std::string utc = t.at("time"), local = t.at("local");
    days.insert(local.substr(0, 10));
    if (contains(local, " 03:00:00 CEST")) {
      ++springForward;
      EXPECT_TRUE(contains(utc, "T01:00:00Z")) << local << " " << utc;
      continue;
    }
    EXPECT_TRUE(contains(local, " 02:30:00 CE")) << local;
    EXPECT_EQ(contains(local, "CEST"), contains(utc, "T00:30:00Z")) << local << " " << utc;
    EXPECT_EQ(contains(local, " CET"), contains(utc, "T01:30:00Z")) << local << " " << utc;
  }
  EXPECT_EQ(days.size(), 400u);
  EXPECT_EQ(springForward, 1);
  CommandResult nextText = daemon.ctl({"schedule", "next", "nightly", "-n", "2"});
  EXPECT_EQ(std::count(nextText.out.begin(), nextText.out.end(), '\n'), 2) << describe(nextText);

  json shown = daemon.ctlJson({"schedule", "show", "nightly"}).at("schedule");
  EXPECT_EQ(shown.at("timezone"), "Europe/Berlin");
  EXPECT_EQ(shown.at("retention").at("keep_daily"), 7);
  EXPECT_EQ(shown.at("snapshot_tag"), "zerobyte-schedule:nightly");
  EXPECT_FALSE(shown.at("next_run").is_null());
  CommandResult showText = daemon.ctl({"schedule", "show", "nightly"});
  EXPECT_TRUE(contains(showText.out, "Last success") && contains(showText.out, "never")) << describe(showText);

  // Edit changes only what is given; 0 removes a keep rule.
  ASSERT_EQ(daemon.ctl({"schedule", "edit", "nightly", "--keep-daily", "0", "--keep-last", "3", "--cron", "@hourly"}).exitCode, 0);
  shown = daemon.ctlJson({"schedule", "show", "nightly"}).at("schedule");
  EXPECT_TRUE(shown.at("retention").at("keep_daily").is_null());
  EXPECT_EQ(shown.at("retention").at("keep_last"), 3);
  EXPECT_EQ(shown.at("cron"), "@hourly");
  EXPECT_EQ(shown.at("exclude_if_present"), json::array({".nobackup"}));
  EXPECT_EQ(shown.at("timezone"), "Europe/Berlin");

  ASSERT_EQ(daemon.ctl({"schedule", "disable", "nightly"}).exitCode, 0);
  EXPECT_TRUE(daemon.ctlJson({"schedule", "show", "nightly"}).at("schedule").at("next_run").is_null());
  ASSERT_EQ(daemon.ctl({"schedule", "enable", "nightly"}).exitCode, 0);
  EXPECT_FALSE(daemon.ctlJson({"schedule", "show", "nightly"}).at("schedule").at("next_run").is_null());

  // What a schedule uses cannot be deleted under it.
  CommandResult deleteVolume = daemon.ctl({"volume", "delete", "home"});
  EXPECT_EQ(deleteVolume.exitCode, 6) << describe(deleteVolume);
  EXPECT_TRUE(contains(deleteVolume.err, "schedule \"nightly\"")) << describe(deleteVolume);
  CommandResult deleteRepo = daemon.ctl({"repo", "delete", "main"});
  EXPECT_EQ(deleteRepo.exitCode, 6) << describe(deleteRepo);

  // Schedules survive a restart.
  ASSERT_EQ(daemon.stop(), 0);
  daemon.start();
  ASSERT_EQ(daemon.ctlJson({"schedule", "list"}).at("schedules").size(), 1u);
  ASSERT_EQ(daemon.ctl({"schedule", "delete", "nightly"}).exitCode, 0);
  EXPECT_TRUE(daemon.ctlJson({"schedule", "list"}).at("schedules").empty());
  EXPECT_EQ(daemon.ctl({"volume", "delete", "home"}).exitCode, 0);
}

TEST(Schedule, RetentionForgetsOnlyTheSchedulesOwnSnapshotsOfThisHost) {
  Daemon daemon;
  daemon.start();
  makeVolume(daemon, "home", "data");
  const std::string repository = daemon.dir() + "/main";
  const std::string passwordFile = importedRepository(daemon, "main");
  const std::string data = daemon.dir() + "/home", host = hostName();
  const std::string own = "zerobyte-schedule:nightly", other = "zerobyte-schedule:weekly";
  // The schedule's own snapshots on this host, one per day at noon from Jan 1 to Jan 10, and at two times on Jan 10.
  for (int day = 1; day <= 10; ++day) {
    char time[32];
    std::snprintf(time, sizeof(time), "2025-01-%02d 12:00:00", day);
    plantSnapshot(repository, passwordFile, data, time, {own}, host);
  }
  plantSnapshot(repository, passwordFile, data, "2025-01-10 18:00:00", {own, "pinned"}, host);
  // Another schedule's snapshots and the same schedule's tag from another host: never touched.
  plantSnapshot(repository, passwordFile, data, "2025-01-01 06:00:00", {other}, host);
  plantSnapshot(repository, passwordFile, data, "2025-01-02 06:00:00", {other}, host);
  plantSnapshot(repository, passwordFile, data, "2025-01-01 07:00:00", {own}, "other-host");
  plantSnapshot(repository, passwordFile, data, "2025-01-02 07:00:00", {own}, "other-host");
  const auto before = snapshotSet(repository, passwordFile);
  const auto times = snapshotTimes(repository, passwordFile);

  ASSERT_EQ(daemon.ctl({"schedule", "create", "nightly", "--volume", "home", "--repo", "main", "--cron", "0 3 1 1 *", "--timezone",
                        "UTC", "--keep-last", "1", "--exclude-if-present", ".nobackup", "--include", "keep"})
                .exitCode,
            0);

  // The dry run for several policies: what would go, computed by restic, and nothing changed.
  struct Case {
    std::vector<std::string> edit;
    std::set<std::string> kept;  // times (of this schedule's snapshots on this host) that stay
  };
  const std::vector<Case> cases = {
      {{"--keep-last", "3"}, {"2025-01-09T12:00:00", "2025-01-10T12:00:00", "2025-01-10T18:00:00"}},
      {{"--keep-last", "0", "--keep-daily", "2"}, {"2025-01-09T12:00:00", "2025-01-10T18:00:00"}},
      {{"--keep-daily", "0", "--keep-weekly", "2"}, {"2025-01-05T12:00:00", "2025-01-10T18:00:00"}},
      {{"--keep-weekly", "0", "--keep-within", "2d"}, {"2025-01-09T12:00:00", "2025-01-10T12:00:00", "2025-01-10T18:00:00"}},
      {{"--keep-within", "", "--keep-monthly", "1", "--keep-tag", "pinned"}, {"2025-01-10T18:00:00"}},
      {{"--keep-monthly", "0", "--keep-yearly", "1", "--keep-hourly", "2"}, {"2025-01-10T12:00:00", "2025-01-10T18:00:00"}},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"schedule", "edit", "nightly"};
    args.insert(args.end(), c.edit.begin(), c.edit.end());
    CommandResult edited = daemon.ctl(args);
    ASSERT_EQ(edited.exitCode, 0) << describe(edited);
    json preview = daemon.ctlJson({"schedule", "retention-preview", "nightly"});
    std::set<std::string> kept, removed;
    for (const auto& s : preview.at("keep")) kept.insert(times.at(s.at("id").get<std::string>()));
    for (const auto& s : preview.at("remove")) removed.insert(times.at(s.at("id").get<std::string>()));
    EXPECT_EQ(kept, c.kept) << preview.dump();
    EXPECT_EQ(kept.size() + removed.size(), 11u) << "only this schedule's snapshots of this host are considered: " << preview.dump();
  }
  EXPECT_EQ(snapshotSet(repository, passwordFile), before) << "a preview changes nothing";
  CommandResult previewText = daemon.ctl({"schedule", "retention-preview", "nightly"});
  EXPECT_TRUE(contains(previewText.out, "Nothing was changed")) << describe(previewText);

  // A real run: backup (the include, the marker honoured), then retention keep-last 2. A keep-tag list is cleared
  // through the API (an empty list), which the command line has no spelling for.
  json p = {{"name", "nightly"}, {"keep_last", 2}, {"keep_yearly", 0}, {"keep_hourly", 0}, {"keep_monthly", 0}, {"keep_tags", json::array()}};
  daemon.client()->call("org.zerobyte.Daemon.EditSchedule", p);
  CommandResult run = daemon.ctl({"schedule", "run", "nightly", "--follow"});
  ASSERT_EQ(run.exitCode, 0) << describe(run);
  json s = waitForScheduleIdle(daemon, "nightly");
  EXPECT_FALSE(s.at("last_success").is_null()) << s.dump();
  EXPECT_TRUE(s.at("last_failure").is_null()) << s.dump();

  auto history = scheduleHistory(daemon, "nightly");
  ASSERT_GE(history.size(), 2u);
  EXPECT_EQ(history[0].at("operation"), "retention");
  EXPECT_EQ(history[0].at("state"), "succeeded") << history[0].dump();
  EXPECT_TRUE(contains(history[0].at("message"), "forgot 10 snapshot(s)")) << history[0].dump();
  EXPECT_EQ(history[1].at("operation"), "backup");
  EXPECT_EQ(history[1].at("trigger"), "manual");

  const auto after = snapshotSet(repository, passwordFile);
  std::set<std::string> expected;
  for (const auto& entry : before)
    if (!contains(entry, host + "|" + own + "|") || contains(entry, "2025-01-10T18:00:00")) expected.insert(entry);
  std::set<std::string> plantedAfter, newOnes;
  for (const auto& entry : after) (before.count(entry) ? plantedAfter : newOnes).insert(entry);
  EXPECT_EQ(plantedAfter, expected);
  ASSERT_EQ(newOnes.size(), 1u);
  EXPECT_TRUE(contains(*newOnes.begin(), host + "|" + own + "|")) << *newOnes.begin();

  // The new snapshot holds the includes without the directory that has the marker.
  CommandResult ls = zbtest::run({"/usr/bin/restic", "ls", "latest", "--no-lock", "--repo", repository, "--password-file", passwordFile,
                                  "--tag", own, "--host", host});
  EXPECT_TRUE(contains(ls.out, data + "/keep/file.txt")) << describe(ls);
  EXPECT_FALSE(contains(ls.out, data + "/keep/skip/file.txt")) << describe(ls);
  EXPECT_FALSE(contains(ls.out, data + "/other/file.txt")) << describe(ls);
}

TEST(Schedule, MissedRunsWhileStoppedRunOnceAfterRestart) {
  Daemon daemon;
  daemon.start();
  makeVolume(daemon, "home", "data");
  ASSERT_EQ(daemon.ctl({"repo", "create", "main", "--path", daemon.dir() + "/main"}).exitCode, 0);
  // Far enough from a minute's end that the schedules are made and the daemon is stopped before it.
  if (std::time(nullptr) % 60 > 40) std::this_thread::sleep_for(std::chrono::seconds(61 - std::time(nullptr) % 60));
  const std::time_t nextMinute = (std::time(nullptr) / 60 + 1) * 60;
  std::tm utc{};
  gmtime_r(&nextMinute, &utc);
  const std::string once = std::to_string(utc.tm_min) + " " + std::to_string(utc.tm_hour) + " * * *";
  const std::string later = std::to_string(utc.tm_min) + " " + std::to_string((utc.tm_hour + 12) % 24) + " * * *";
  for (const auto& [name, cron] : {std::pair<std::string, std::string>{"every", "* * * * *"}, {"once", once}, {"later", later}})
    ASSERT_EQ(daemon.ctl({"schedule", "create", name, "--volume", "home", "--repo", "main", "--cron", cron, "--timezone", "UTC"}).exitCode, 0);
  ASSERT_LT(std::time(nullptr), nextMinute) << "the test was too slow to stop zerobyted before the first fire time";
  ASSERT_EQ(daemon.stop(), 0);

  // Down across two fire times of "every" and one of "once".
  while (std::time(nullptr) < nextMinute + 63) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  daemon.start();
  for (const char* name : {"every", "once"}) waitForScheduleIdle(daemon, name);
  std::this_thread::sleep_for(std::chrono::seconds(2));

  auto catchUps = [&](const std::string& name) {
    size_t n = 0;
    for (const auto& j : scheduleHistory(daemon, name))
      if (j.at("trigger") == "catch-up") {
        ++n;
        EXPECT_EQ(j.at("state"), "succeeded") << j.dump();
      }
    return n;
  };
  EXPECT_EQ(catchUps("every"), 1u);
  EXPECT_EQ(catchUps("once"), 1u);
  EXPECT_TRUE(scheduleHistory(daemon, "later").empty());
  EXPECT_TRUE(contains(daemon.log(), "missed its run")) << daemon.log();

  // The next start has nothing to catch up for "once": its fire time is handled.
  ASSERT_EQ(daemon.stop(), 0);
  daemon.start();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  waitForScheduleIdle(daemon, "once");
  EXPECT_EQ(catchUps("once"), 1u);
}

TEST(Schedule, ARunDueWhileThePreviousRunsIsSkippedAndRecorded) {
  Daemon daemon;
  daemon.start();
  makeVolume(daemon, "home", "data");
  ASSERT_EQ(daemon.ctl({"repo", "create", "main", "--path", daemon.dir() + "/main"}).exitCode, 0);
  ASSERT_EQ(daemon.ctl({"schedule", "create", "every", "--volume", "home", "--repo", "main", "--cron", "* * * * *", "--timezone", "UTC"})
                .exitCode,
            0);
  // Right after a fire time, so that the manual run is the one running at the next.
  while (std::time(nullptr) % 60 < 2 || std::time(nullptr) % 60 > 40) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  waitForScheduleIdle(daemon, "every");
  json started = daemon.ctlJson({"schedule", "run", "every"});
  const int64_t manual = started.at("job").at("id");
  // Hold restic where it is (a real restic run that takes long), across the next fire time.
  std::vector<pid_t> restic;
  for (int i = 0; i < 100 && restic.empty(); ++i) {
    restic = resticChildren(daemon);
    if (restic.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(restic.size(), 1u);
  ASSERT_EQ(::kill(restic[0], SIGSTOP), 0);
  CommandResult second = daemon.ctl({"schedule", "run", "every"});
  EXPECT_EQ(second.exitCode, 6) << describe(second);
  EXPECT_TRUE(contains(second.err, "running already")) << describe(second);
  const std::time_t fire = (std::time(nullptr) / 60 + 1) * 60;
  while (std::time(nullptr) < fire + 3) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto history = scheduleHistory(daemon, "every");
  ASSERT_FALSE(history.empty());
  EXPECT_EQ(history[0].at("state"), "skipped") << history[0].dump();
  EXPECT_EQ(history[0].at("trigger"), "scheduled") << history[0].dump();
  EXPECT_TRUE(contains(history[0].at("message"), "job " + std::to_string(manual))) << history[0].dump();
  ASSERT_EQ(::kill(restic[0], SIGCONT), 0);
  json finished = daemon.waitForJob(static_cast<uint64_t>(manual));
  EXPECT_EQ(finished.at("state"), "succeeded") << finished.dump();
  EXPECT_EQ(finished.at("schedule"), "every");
  // Only one restic ever ran for the schedule at a time: exactly the manual backup and the skipped record.
  size_t backups = 0;
  for (const auto& j : scheduleHistory(daemon, "every"))
    if (j.at("id") > started.at("job").at("id") && j.at("state") != "skipped") ++backups;
  EXPECT_EQ(backups, 0u);
}

TEST(Schedule, GlobalLimitRunsAllQueuedJobsNeverMoreThanTheLimitAtOnce) {
  Daemon::Options options;
  options.extraDaemonSettings = "  max_concurrent_jobs: 2\n";
  Daemon daemon(options);
  daemon.start();
  for (const char* repo : {"r1", "r2", "r3"})
    ASSERT_EQ(daemon.ctl({"repo", "create", repo, "--path", daemon.dir() + "/" + repo}).exitCode, 0);
  const std::vector<std::pair<std::string, std::string>> schedules = {{"s1", "r1"}, {"s2", "r1"}, {"s3", "r2"}, {"s4", "r2"}, {"s5", "r3"}};
  for (const auto& [name, repo] : schedules) {
    makeVolume(daemon, "v" + name, name);
    ASSERT_EQ(daemon.ctl({"schedule", "create", name, "--volume", "v" + name, "--repo", repo, "--cron", "0 0 1 1 *"}).exitCode, 0);
  }
  // Submitted at once over one connection (five zerobytectl runs take long enough for the first backups to end).
  std::vector<int64_t> jobs;
  auto client = daemon.client();
  for (const auto& [name, repo] : schedules)
    jobs.push_back(client->call("org.zerobyte.Daemon.RunSchedule", {{"name", name}}).at("job").at("id").get<int64_t>());
  // An exclusive operation on r1 queued behind its backups.
  client->call("org.zerobyte.Daemon.CheckRepository", {{"name", "r1"}});

  // Hold the first two restic runs: the others must wait for a slot.
  std::vector<pid_t> held;
  for (int i = 0; i < 200 && held.size() < 2; ++i) {
    held = resticChildren(daemon);
    if (held.size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_EQ(held.size(), 2u);
  for (pid_t pid : held) ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(resticChildren(daemon).size(), 2u);
  json status = daemon.ctlJson({"status"});
  EXPECT_EQ(status.at("running_jobs"), 2) << status.dump();
  // Whatever ended before restic was held, the rest waits: nothing runs beside the two held.
  size_t ended = 0;
  const json listedJobs = daemon.ctlJson({"job", "list"}).at("jobs");
  for (const auto& j : listedJobs)
    if ((j.at("operation") == "backup" || j.at("operation") == "check") && j.at("state") != "queued" && j.at("state") != "running") ++ended;
  EXPECT_EQ(status.at("queued_jobs").get<size_t>() + 2 + ended, 6u) << status.dump();
  EXPECT_GE(status.at("queued_jobs").get<size_t>(), 1u) << "the limit was not reached: " << status.dump();
  for (pid_t pid : held) ASSERT_EQ(::kill(pid, SIGCONT), 0);

  // All of them run, never more than two restic at once.
  size_t most = 0;
  for (int i = 0; i < 2400; ++i) {
    most = std::max(most, resticChildren(daemon).size());
    json st = daemon.client()->call("org.zerobyte.Daemon.GetStatus", json::object());
    if (st.at("running_jobs") == 0 && st.at("queued_jobs") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_LE(most, 2u);
  for (int64_t id : jobs) EXPECT_EQ(daemon.waitForJob(static_cast<uint64_t>(id)).at("state"), "succeeded");
  // The exclusive check on r1 never overlapped a backup of r1 (each held for 2 s would show it).
  auto allJobs = daemon.ctlJson({"job", "list"}).at("jobs");
  json checkJob;
  for (const auto& j : allJobs)
    if (j.at("operation") == "check") checkJob = j;
  ASSERT_FALSE(checkJob.is_null());
  EXPECT_EQ(checkJob.at("state"), "succeeded") << checkJob.dump();
  for (const auto& j : allJobs)
    if (j.at("operation") == "backup" && j.at("repository") == "r1") {
      EXPECT_TRUE(j.at("finished").get<std::string>() <= checkJob.at("started").get<std::string>()) << j.dump() << checkJob.dump();
    }
}

TEST(Schedule, DeclaredInTheConfigurationRunsAndIsReadOnlyAndGoesWithAReload) {
  Daemon::Options options;
  Daemon daemon(options);
  makeVolumeDirectory(daemon.dir() + "/home");
  const std::string passwordFile = daemon.dir() + "/main.pw";
  std::ofstream(passwordFile) << kPassword << "\n";
  ASSERT_EQ(::chmod(passwordFile.c_str(), 0600), 0);
  CommandResult init = zbtest::run({"/usr/bin/restic", "init", "--repo", daemon.dir() + "/main", "--password-file", passwordFile});
  ASSERT_EQ(init.exitCode, 0) << describe(init);
  const std::string resources = "volumes:\n  - name: home\n    path: " + daemon.dir() + "/home\n" +
                                "repositories:\n  - name: main\n    path: " + daemon.dir() + "/main\n    password: file://" +
                                passwordFile + "\n";
  options.extraConfig = resources +
                        "schedules:\n"
                        "  - name: nightly\n    volume: home\n    repository: main\n    cron: \"0 3 1 1 *\"\n"
                        "    timezone: UTC\n    exclude_if_present: [.nobackup]\n    includes: [keep]\n"
                        "    retention: {keep_last: 1}\n"
                        "  - name: weekly-check\n    kind: check\n    repository: main\n    cron: \"@weekly\"\n"
                        "    read_data_subset: 1/3\n";
  daemon.writeConfig(options);
  daemon.start();

  json list = daemon.ctlJson({"schedule", "list"}).at("schedules");
  ASSERT_EQ(list.size(), 2u) << list.dump();
  EXPECT_EQ(list[0].at("name"), "nightly");
  EXPECT_EQ(list[0].at("declared"), true);
  EXPECT_EQ(list[1].at("kind"), "check");
  for (const std::vector<std::string>& change :
       {std::vector<std::string>{"schedule", "edit", "nightly", "--keep-last", "2"}, {"schedule", "disable", "nightly"},
        {"schedule", "delete", "nightly"}}) {
    CommandResult refused = daemon.ctl(change);
    EXPECT_EQ(refused.exitCode, 6) << describe(refused);
    EXPECT_TRUE(contains(refused.err, "configuration file")) << describe(refused);
  }

  // It runs like any other: twice, and its retention keeps one snapshot.
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(daemon.ctl({"schedule", "run", "nightly", "--follow"}).exitCode, 0);
    waitForScheduleIdle(daemon, "nightly");
  }
  json shown = daemon.ctlJson({"schedule", "show", "nightly"});
  EXPECT_EQ(shown.at("history").at(0).at("operation"), "retention");
  EXPECT_TRUE(contains(shown.at("history").at(0).at("message"), "forgot 1 snapshot(s)")) << shown.dump();
  EXPECT_EQ(snapshotSet(daemon.dir() + "/main", passwordFile).size(), 1u);
  EXPECT_FALSE(shown.at("schedule").at("last_success").is_null());

  // A reload that changes the retention keeps the schedule's record of its runs; one that drops it removes it.
  options.extraConfig = resources +
                        "schedules:\n"
                        "  - name: nightly\n    volume: home\n    repository: main\n    cron: \"0 3 1 1 *\"\n"
                        "    timezone: UTC\n    retention: {keep_last: 5}\n";
  daemon.writeConfig(options);
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.waitForNotification("READY=1", 10000));
  json reloaded = daemon.ctlJson({"schedule", "show", "nightly"}).at("schedule");
  EXPECT_EQ(reloaded.at("retention").at("keep_last"), 5);
  EXPECT_EQ(reloaded.at("last_success"), shown.at("schedule").at("last_success"));
  EXPECT_EQ(daemon.ctlJson({"schedule", "list"}).at("schedules").size(), 1u);
  options.extraConfig = resources;
  daemon.writeConfig(options);
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.waitForNotification("READY=1", 10000));
  EXPECT_TRUE(daemon.ctlJson({"schedule", "list"}).at("schedules").empty());
}

TEST(Schedule, SettingTheWallClockRecomputesTheTimersWithoutSpuriousRuns) {
  Daemon daemon;
  daemon.start();
  makeVolume(daemon, "home", "data");
  ASSERT_EQ(daemon.ctl({"repo", "create", "main", "--path", daemon.dir() + "/main"}).exitCode, 0);
  ASSERT_EQ(daemon.ctl({"schedule", "create", "nightly", "--volume", "home", "--repo", "main", "--cron", "0 3 1 1 *"}).exitCode, 0);
  const std::string before = daemon.ctlJson({"schedule", "show", "nightly"}).at("schedule").at("next_run");

  // The clock is set (to the time it shows: what NTP stepping does, without moving it): the kernel
  // cancels the daemon's TFD_TIMER_CANCEL_ON_SET timer.
  timespec now{};
  ASSERT_EQ(::clock_gettime(CLOCK_REALTIME, &now), 0);
  ASSERT_EQ(::clock_settime(CLOCK_REALTIME, &now), 0) << std::strerror(errno);
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    seen = contains(daemon.log(), "the wall clock was set");
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(seen) << daemon.log();
  json after = daemon.ctlJson({"schedule", "show", "nightly"});
  EXPECT_EQ(after.at("schedule").at("next_run"), before);
  EXPECT_TRUE(after.at("history").empty()) << "nothing was missed, so nothing runs: " << after.dump();
}

}  // namespace
