// restic command lines, environment and output parsing, against recorded and live restic output.
#include "daemon/restic/restic.h"

#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>
#include <utility>

namespace zerobyte::restic {
namespace {

namespace fs = std::filesystem;
using zbtest::unit::ScopedEnvironment;
using zbtest::unit::TemporaryDirectory;
using zbtest::unit::writeFile;

// Debian 12's restic; ZB_TEST_RESTIC runs the live tests against another build (e.g. 0.18 from trixie).
const std::string kRestic = std::getenv("ZB_TEST_RESTIC") ? std::getenv("ZB_TEST_RESTIC") : "/usr/bin/restic";

std::string readSample(const std::string& name) { return zbtest::unit::readTestData(fs::path("restic-0.14") / name); }

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<BackupEvent> parseBackupLines(const std::string& text) {
  std::vector<BackupEvent> events;
  for (const auto& line : linesOf(text)) events.push_back(parseBackupLine(line));
  return events;
}

template <typename T>
std::vector<T> only(const std::vector<BackupEvent>& events) {
  std::vector<T> out;
  for (const auto& e : events)
    if (const auto* v = std::get_if<T>(&e)) out.push_back(*v);
  return out;
}

struct LsListing {
  std::vector<core::Snapshot> headers;
  std::vector<core::Node> nodes;
  size_t unknown = 0;
};

LsListing parseLs(const std::string& text) {
  LsListing listing;
  for (const auto& line : linesOf(text)) {
    const auto parsed = parseLsLine(line);
    if (const auto* s = std::get_if<core::Snapshot>(&parsed)) listing.headers.push_back(*s);
    else if (const auto* n = std::get_if<core::Node>(&parsed)) listing.nodes.push_back(*n);
    else ++listing.unknown;
  }
  return listing;
}

const core::Node* findNode(const LsListing& listing, const std::string& path) {
  const auto it = std::find_if(listing.nodes.begin(), listing.nodes.end(), [&](const core::Node& n) { return n.path == path; });
  return it == listing.nodes.end() ? nullptr : &*it;
}

constexpr uint32_t kGoModeDir = 1u << 31;
constexpr uint32_t kGoModeSymlink = 1u << 27;

RepositoryContext sampleContext() {
  return RepositoryContext{"/usr/bin/restic", "/srv/backups/main", "/var/cache/zerobyte/r1", 3, 0, {}, {}};
}

// ---------------------------------------------------------------- command lines

TEST(ResticArgs, BackupPutsEveryTagAndExcludeInItsOwnElementAndThePathAfterDoubleDash) {
  const auto argv = backupArgs(sampleContext(), "/data/home", {"nightly", "a b"}, {"*.tmp", "--remove-all"});
  const std::vector<std::string> expected{"/usr/bin/restic", "backup", "--cache-dir", "/var/cache/zerobyte/r1",
                                          "--repo", "/srv/backups/main", "--json", "--tag", "nightly", "--tag", "a b",
                                          "--exclude", "*.tmp", "--exclude", "--remove-all", "--", "/data/home"};
  EXPECT_EQ(argv, expected);
}

TEST(ResticArgs, RestoreEndsWithTheSnapshotAfterDoubleDash) {
  const auto argv = restoreArgs(sampleContext(), "6b823dbf", "/restore/here", {"/src/a", "/src/b"});
  const std::vector<std::string> expected{"/usr/bin/restic", "restore", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                          "/srv/backups/main", "--target", "/restore/here", "--include", "/src/a",
                                          "--include", "/src/b", "--", "6b823dbf"};
  EXPECT_EQ(argv, expected);
}

TEST(ResticArgs, DumpWritesTheWholeSnapshotAsTarAfterDoubleDash) {
  const std::vector<std::string> expected{"/usr/bin/restic", "dump", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                          "/srv/backups/main", "--archive", "tar", "--", "6b823dbf", "/"};
  EXPECT_EQ(dumpTarArgs(sampleContext(), "6b823dbf"), expected);
}

TEST(ResticArgs, ReadOnlyCommandsSkipTheLockAndAskForJson) {
  const auto ctx = sampleContext();
  EXPECT_EQ(snapshotsArgs(ctx), (std::vector<std::string>{"/usr/bin/restic", "snapshots", "--cache-dir",
                                                         "/var/cache/zerobyte/r1", "--repo", "/srv/backups/main",
                                                         "--no-lock", "--json"}));
  EXPECT_EQ(lsArgs(ctx, "6b823dbf", "/src/sub"),
            (std::vector<std::string>{"/usr/bin/restic", "ls", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                      "/srv/backups/main", "--no-lock", "--json", "--", "6b823dbf", "/src/sub"}));
  EXPECT_EQ(lsArgs(ctx, "6b823dbf", ""),
            (std::vector<std::string>{"/usr/bin/restic", "ls", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                      "/srv/backups/main", "--no-lock", "--json", "--", "6b823dbf"}));
  EXPECT_EQ(catConfigArgs(ctx), (std::vector<std::string>{"/usr/bin/restic", "cat", "config", "--cache-dir",
                                                         "/var/cache/zerobyte/r1", "--repo", "/srv/backups/main",
                                                         "--no-lock"}));
}

TEST(ResticArgs, ForgetNeverPrunesAndUnlockNeverRemovesLiveLocks) {
  const auto ctx = sampleContext();
  const auto forget = forgetArgs(ctx, "ad139b3a");
  EXPECT_EQ(forget, (std::vector<std::string>{"/usr/bin/restic", "forget", "--cache-dir", "/var/cache/zerobyte/r1",
                                              "--repo", "/srv/backups/main", "--json", "--", "ad139b3a"}));
  const auto unlock = unlockArgs(ctx);
  EXPECT_EQ(unlock, (std::vector<std::string>{"/usr/bin/restic", "unlock", "--cache-dir", "/var/cache/zerobyte/r1",
                                              "--repo", "/srv/backups/main"}));
  for (const auto& argv : {forget, unlock}) {
    EXPECT_EQ(std::count(argv.begin(), argv.end(), "--prune"), 0);
    EXPECT_EQ(std::count(argv.begin(), argv.end(), "--remove-all"), 0);
    EXPECT_EQ(std::count(argv.begin(), argv.end(), "--no-lock"), 0);
  }
}

TEST(ResticArgs, ScheduledBackupPassesEveryOptionAsItsOwnElementAndPathsAfterTheSeparator) {
  BackupOptions options;
  options.paths = {"/srv/data/a", "-b"};
  options.tags = {"zerobyte-schedule:nightly", "--x"};
  options.excludes = {"*.tmp"};
  options.excludeIfPresent = {".nobackup", "--exclude-file=/etc/shadow"};
  options.oneFileSystem = true;
  options.host = "vm";
  options.compression = "max";
  EXPECT_EQ(backupArgs(sampleContext(), options),
            (std::vector<std::string>{"/usr/bin/restic", "backup", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                      "/srv/backups/main", "--json", "--tag", "zerobyte-schedule:nightly", "--tag", "--x",
                                      "--exclude", "*.tmp", "--exclude-if-present", ".nobackup", "--exclude-if-present",
                                      "--exclude-file=/etc/shadow", "--one-file-system", "--host", "vm", "--compression",
                                      "max", "--", "/srv/data/a", "-b"}));
  BackupOptions plain;
  plain.paths = {"/srv/data"};
  const auto argv = backupArgs(sampleContext(), plain);
  for (const auto& flag : {"--host", "--compression", "--one-file-system", "--exclude-if-present"})
    EXPECT_EQ(std::count(argv.begin(), argv.end(), flag), 0) << flag;
  EXPECT_THROW(backupArgs(sampleContext(), BackupOptions{}), Error);
}

TEST(ResticArgs, MaintenanceCommandsLockAsTheyMust) {
  const auto ctx = sampleContext();
  EXPECT_EQ(checkArgs(ctx, "1/5"), (std::vector<std::string>{"/usr/bin/restic", "check", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                                             "/srv/backups/main", "--read-data-subset=1/5"}));
  EXPECT_EQ(checkArgs(ctx, ""), checkArgs(ctx));
  EXPECT_THROW(checkArgs(ctx, "--read-data"), Error);
  EXPECT_EQ(pruneArgs(ctx), (std::vector<std::string>{"/usr/bin/restic", "prune", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                                      "/srv/backups/main"}));
  EXPECT_EQ(statsArgs(ctx), (std::vector<std::string>{"/usr/bin/restic", "stats", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                                      "/srv/backups/main", "--no-lock", "--json", "--mode", "raw-data"}));
  EXPECT_EQ(listLocksArgs(ctx), (std::vector<std::string>{"/usr/bin/restic", "list", "locks", "--cache-dir", "/var/cache/zerobyte/r1",
                                                          "--repo", "/srv/backups/main", "--no-lock"}));
  const std::string id(64, 'a');
  EXPECT_EQ(catLockArgs(ctx, id), (std::vector<std::string>{"/usr/bin/restic", "cat", "lock", "--cache-dir", "/var/cache/zerobyte/r1",
                                                            "--repo", "/srv/backups/main", "--no-lock", "--", id}));
  EXPECT_THROW(catLockArgs(ctx, "--remove-all"), Error);
  EXPECT_EQ(unlockAllArgs(ctx).back(), "--remove-all");
  const auto unlock = unlockArgs(ctx);
  EXPECT_EQ(std::count(unlock.begin(), unlock.end(), "--remove-all"), 0);
}

TEST(ResticParse, StatsLocksAndLockIds) {
  // restic 0.14: stats --json --mode raw-data.
  auto stats = parseStats(R"({"total_size":1234,"total_uncompressed_size":2468,"compression_ratio":2,)"
                          R"("compression_progress":100,"compression_space_saving":50,"total_blob_count":7,"snapshots_count":3})");
  EXPECT_EQ(stats.totalSize, 1234u);
  EXPECT_EQ(stats.totalUncompressedSize, 2468u);
  EXPECT_DOUBLE_EQ(stats.compressionRatio, 2.0);
  EXPECT_DOUBLE_EQ(stats.compressionSpaceSaving, 50.0);
  EXPECT_EQ(stats.blobCount, 7u);
  EXPECT_EQ(stats.snapshotsCount, 3u);
  EXPECT_THROW(parseStats("[]"), Error);
  EXPECT_THROW(parseStats("not json"), Error);

  const std::string a(64, 'a'), b(64, 'b');
  EXPECT_EQ(parseLockIds(a + "\n" + b + "\nwarning: something\n" + std::string(63, 'c') + "\n"), (std::vector<std::string>{a, b}));
  // restic 0.14: cat lock ID.
  auto lock = parseLock(R"({"time":"2026-12-04T05:57:23.442959728Z","exclusive":true,"hostname":"vm","username":"root","pid":20594})");
  EXPECT_TRUE(lock.exclusive);
  EXPECT_EQ(lock.pid, 20594);
  EXPECT_EQ(describeLock(lock), "exclusive lock of pid 20594 on host vm by root since 2026-12-04T05:57:23");
  EXPECT_THROW(parseLock("\"x\""), Error);
}

core::RetentionPolicy keepLast(unsigned count) {
  core::RetentionPolicy policy;
  policy.keepLast = count;
  return policy;
}

TEST(ResticArgs, ForgetPolicyIsScopedToTheScheduleTagAndHostWithOnlyTheRulesThatAreSet) {
  EXPECT_EQ(forgetPolicyArgs(sampleContext(), keepLast(1), "zb-schedule-nightly", "vm", false),
            (std::vector<std::string>{"/usr/bin/restic", "forget", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                      "/srv/backups/main", "--json", "--tag", "zb-schedule-nightly", "--host", "vm",
                                      "--group-by", "host", "--keep-last", "1"}));

  core::RetentionPolicy every;
  every.keepLast = 2;
  every.keepHourly = 24;
  every.keepDaily = 7;
  every.keepWeekly = 4;
  every.keepMonthly = 12;
  every.keepYearly = 100000;
  every.keepWithin = "1y6m";
  every.keepTags = {"keep", "--prune", "a b"};
  EXPECT_EQ(forgetPolicyArgs(sampleContext(), every, "-tag-with-dash", "--host=evil", true),
            (std::vector<std::string>{"/usr/bin/restic", "forget", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                      "/srv/backups/main", "--no-lock", "--json", "--tag", "-tag-with-dash", "--host", "--host=evil",
                                      "--group-by", "host", "--keep-last", "2", "--keep-hourly", "24",
                                      "--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "12",
                                      "--keep-yearly", "100000", "--keep-within", "1y6m", "--keep-tag", "keep",
                                      "--keep-tag", "--prune", "--keep-tag", "a b", "--dry-run"}));

  core::RetentionPolicy within;
  within.keepWithin = "30d";
  const auto argv = forgetPolicyArgs(sampleContext(), within, "t", "h", false);
  EXPECT_EQ(std::vector<std::string>(argv.begin() + 7, argv.end()),
            (std::vector<std::string>{"--tag", "t", "--host", "h", "--group-by", "host", "--keep-within", "30d"}));
  for (const auto& flag : {"--prune", "--dry-run", "--no-lock", "--keep-last", "--keep-tag", "--"})
    EXPECT_EQ(std::count(argv.begin(), argv.end(), flag), 0) << flag;
}

void expectForgetPolicyRefused(const core::RetentionPolicy& policy, const std::string& tag, const std::string& host,
                               std::string_view detail) {
  try {
    forgetPolicyArgs(sampleContext(), policy, tag, host, false);
    ADD_FAILURE() << "accepted tag \"" << tag << "\" host \"" << host << "\"";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Internal) << e.what();
    EXPECT_NE(std::string(e.what()).find(detail), std::string::npos) << e.what();
  }
}

TEST(ResticArgs, ForgetPolicyRefusesWhatCouldReachOtherSchedulesOrHosts) {
  // Without --tag or --host the policy would apply to every schedule's or every host's snapshots.
  expectForgetPolicyRefused(keepLast(1), "", "vm", "without a schedule tag and a host");
  expectForgetPolicyRefused(keepLast(1), "nightly", "", "without a schedule tag and a host");
  expectForgetPolicyRefused(keepLast(1), "nightly,weekly", "vm", "restic would read its ',' as two tags");
  // An empty policy would keep everything, an invalid one could forget what nobody meant to.
  expectForgetPolicyRefused(core::RetentionPolicy{}, "nightly", "vm", "the retention policy is empty");
  core::RetentionPolicy future;
  future.keepWithin = "-1d";
  expectForgetPolicyRefused(future, "nightly", "vm", "keep_within \"-1d\" is not valid");
  expectForgetPolicyRefused(keepLast(0), "nightly", "vm", "keep_last 0 is not valid");
}

TEST(ResticArgs, CheckTakesTheLockAndReadsNoData) {
  RepositoryContext ctx;
  ctx.binary = "/usr/bin/restic";
  ctx.repository = "/srv/backups/main";
  ctx.cacheDir = "/var/cache/zerobyte/r1";
  // restic check takes the repository's exclusive lock itself; --read-data is a later, scheduled option.
  EXPECT_EQ(checkArgs(ctx), (std::vector<std::string>{"/usr/bin/restic", "check", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                                      "/srv/backups/main"}));
}

TEST(ResticArgs, InitAndVersion) {
  EXPECT_EQ(initArgs(sampleContext()),
            (std::vector<std::string>{"/usr/bin/restic", "init", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                      "/srv/backups/main", "--json"}));
  EXPECT_EQ(versionArgs("/opt/restic"), (std::vector<std::string>{"/opt/restic", "version"}));
}

TEST(ResticArgs, RepositoryStringIsOneElementEvenWhenItLooksLikeAFlag) {
  auto ctx = sampleContext();
  ctx.repository = "--password-command=evil";
  const auto argv = snapshotsArgs(ctx);
  const auto repo = std::find(argv.begin(), argv.end(), "--repo");
  ASSERT_NE(repo, argv.end());
  ASSERT_NE(repo + 1, argv.end());
  EXPECT_EQ(*(repo + 1), "--password-command=evil");
}

TEST(ResticEnvironment, HoldsExactlyTheListedVariables) {
  auto ctx = sampleContext();
  ctx.passwordFd = 7;
  ScopedEnvironment leak("ZEROBYTE_TEST_LEAK", "must-not-appear");
  auto env = environment(ctx, "/var/lib/zerobyte/home", "/var/tmp/zerobyte");
  std::sort(env.begin(), env.end());
  const std::vector<std::string> expected{
      "HOME=/var/lib/zerobyte/home",
      "LANG=C.UTF-8",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "RESTIC_CACHE_DIR=/var/cache/zerobyte/r1",
      "RESTIC_PASSWORD_FILE=/dev/fd/7",
      "RESTIC_PROGRESS_FPS=4",
      "TMPDIR=/var/tmp/zerobyte",
  };
  EXPECT_EQ(env, expected);
}

// ---------------------------------------------------------------- version

TEST(ResticVersion, ParsesDebianBookwormAndTrixieBinaries) {
  const auto v14 = parseVersion("restic 0.14.0 compiled with go1.19.8 on linux/amd64\n");
  ASSERT_TRUE(v14);
  EXPECT_EQ(v14->major, 0);
  EXPECT_EQ(v14->minor, 14);
  EXPECT_EQ(v14->patch, 0);
  EXPECT_EQ(v14->text, "0.14.0");
  const auto v18 = parseVersion("restic 0.18.0 compiled with go1.24 on linux/amd64");
  ASSERT_TRUE(v18);
  EXPECT_EQ(v18->minor, 18);
  EXPECT_EQ(v18->text, "0.18.0");
}

TEST(ResticVersion, ToleratesDevBuildsAndRejectsOtherText) {
  const auto dev = parseVersion("restic 0.16.4-dev (compiled manually) compiled with go1.21.5 on linux/amd64");
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->text, "0.16.4");
  EXPECT_FALSE(parseVersion(""));
  EXPECT_FALSE(parseVersion("bash: restic: command not found"));
  EXPECT_FALSE(parseVersion("restic version"));
  EXPECT_FALSE(parseVersion("restic 7 compiled"));
}

// ---------------------------------------------------------------- backup --json

TEST(ResticBackupLine, FirstBackupReportsProgressThenSummary) {
  const auto events = parseBackupLines(readSample("backup-1.jsonl"));
  ASSERT_EQ(events.size(), 11u);
  const auto progress = only<core::JobProgress>(events);
  const auto summaries = only<core::BackupSummary>(events);
  ASSERT_EQ(progress.size(), 10u);
  ASSERT_EQ(summaries.size(), 1u);

  EXPECT_DOUBLE_EQ(progress[0].percent, 0);
  EXPECT_EQ(progress[0].filesTotal, 1u);
  EXPECT_EQ(progress[0].bytesTotal, 30000000u);

  const auto& second = progress[1];
  EXPECT_NEAR(second.percent, 8.005759469856298, 1e-9);
  EXPECT_EQ(second.filesDone, 2u);
  EXPECT_EQ(second.filesTotal, 6u);
  EXPECT_EQ(second.bytesDone, 2425746u);
  EXPECT_EQ(second.bytesTotal, 30300011u);
  EXPECT_EQ(second.currentFiles, (std::vector<std::string>{"/src/big.bin", "/src/f3.bin"}));
  EXPECT_FALSE(second.secondsRemaining);

  for (size_t i = 1; i < progress.size(); ++i) EXPECT_GE(progress[i].percent, progress[i - 1].percent);
  EXPECT_DOUBLE_EQ(progress.back().percent, 100);
  EXPECT_EQ(progress.back().bytesDone, 30300011u);
  EXPECT_TRUE(progress.back().currentFiles.empty());

  const auto& s = summaries[0];
  EXPECT_EQ(s.snapshotId, "5c62b13c");
  EXPECT_EQ(s.filesNew, 6u);
  EXPECT_EQ(s.filesChanged, 0u);
  EXPECT_EQ(s.filesUnmodified, 0u);
  EXPECT_EQ(s.dirsNew, 2u);
  EXPECT_EQ(s.dataAdded, 30304295u);
  EXPECT_EQ(s.totalFilesProcessed, 6u);
  EXPECT_EQ(s.totalBytesProcessed, 30300011u);
  EXPECT_DOUBLE_EQ(s.totalDuration, 0.450446504);
  EXPECT_TRUE(parseBackupLines(readSample("backup-1.stderr")).empty());
}

TEST(ResticBackupLine, SecondBackupCountsChangedAndUnmodified) {
  const auto summaries = only<core::BackupSummary>(parseBackupLines(readSample("backup-2.jsonl")));
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].snapshotId, "ad139b3a");
  EXPECT_EQ(summaries[0].filesNew, 0u);
  EXPECT_EQ(summaries[0].filesChanged, 1u);
  EXPECT_EQ(summaries[0].filesUnmodified, 5u);
  EXPECT_EQ(summaries[0].dirsChanged, 2u);
  EXPECT_EQ(summaries[0].dataAdded, 4299u);
  EXPECT_EQ(summaries[0].totalBytesProcessed, 30300019u);
}

TEST(ResticBackupLine, MissingSourceIsOnlyATextWarningOnStderr) {
  const auto out = parseBackupLines(readSample("backup-error.jsonl"));
  const auto summaries = only<core::BackupSummary>(out);
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].snapshotId, "6b823dbf");
  EXPECT_EQ(summaries[0].filesUnmodified, 6u);
  EXPECT_EQ(summaries[0].dirsUnmodified, 2u);

  const auto err = parseBackupLines(readSample("backup-error.stderr"));
  ASSERT_EQ(err.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(err[0]));
}

TEST(ResticBackupLine, UnreadableFileGivesTwoErrorsNamingThePath) {
  const auto out = parseBackupLines(readSample("backup-readerror.jsonl"));
  const auto progress = only<core::JobProgress>(out);
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_DOUBLE_EQ(progress[0].percent, 0);
  const auto summaries = only<core::BackupSummary>(out);
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].snapshotId, "b156bdbf");
  EXPECT_EQ(summaries[0].filesNew, 1u);
  EXPECT_EQ(summaries[0].dirsNew, 4u);

  const auto err = parseBackupLines(readSample("backup-readerror.stderr"));
  ASSERT_EQ(err.size(), 4u);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(err[0]));  // "unable to open cache: ..."
  EXPECT_TRUE(std::holds_alternative<std::monostate>(err[3]));  // "Warning: at least one source file ..."
  const auto errors = only<BackupError>(err);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].during, "archival");
  EXPECT_EQ(errors[0].item, "/srv/example/restic/userrepo-src/locked");
  EXPECT_EQ(errors[0].message, "could not read /srv/example/restic/userrepo-src/locked during archival");
  EXPECT_EQ(errors[1].during, "scan");
  EXPECT_EQ(errors[1].item, "/srv/example/restic/userrepo-src/locked");
  EXPECT_EQ(errors[1].message, "could not read /srv/example/restic/userrepo-src/locked during scan");
}

TEST(ResticBackupLine, VerboseLinesAndTheScanFinishedStatusAreNotProgress) {
  const auto events = parseBackupLines(readSample("backup-verbose.jsonl"));
  ASSERT_EQ(events.size(), 13u);
  const auto progress = only<core::JobProgress>(events);
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0].filesDone, 1u);
  EXPECT_DOUBLE_EQ(progress[1].percent, 100);
  EXPECT_EQ(progress[1].filesTotal, 7u);
  EXPECT_EQ(progress[1].bytesTotal, 30300021u);
  const auto summaries = only<core::BackupSummary>(events);
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].snapshotId, "798500e4");
  EXPECT_EQ(summaries[0].filesNew, 1u);
  EXPECT_EQ(summaries[0].filesUnmodified, 6u);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(events[2]));  // "status" with action scan_finished
}

TEST(ResticBackupLine, PathErrorNamesTheFailedOperation) {
  // restic 0.14 `backup --json --stdin` with nothing on stdin: the error is an *os.PathError.
  const std::string stderrText =
      "{\"message_type\":\"error\",\"error\":{\"Op\":\"read\",\"Path\":\"/stdin\",\"Err\":{}},\"during\":\"archival\",\"item\":\"/stdin\"}\n"
      "Fatal: unable to save snapshot: snapshot is empty\n";
  const auto events = parseBackupLines(stderrText);
  const auto errors = only<BackupError>(events);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "could not read /stdin during archival");
  const auto opened = parseBackupLine(
      R"({"message_type":"error","error":{"Op":"open","Path":"/x","Err":13},"during":"archival","item":"/x"})");
  EXPECT_EQ(std::get<BackupError>(opened).message, "could not open /x during archival");
  // The Fatal line, not the per-file error before it, explains why the run failed.
  EXPECT_STREQ(classifyFailure(1, stderrText, "main").what(),
               "repository \"main\": restic failed (exit 1): Fatal: unable to save snapshot: snapshot is empty");
}

TEST(ResticBackupLine, NewerResticErrorCarriesItsMessage) {
  // restic 0.18.0, an unreadable file (stderr of `backup --json`).
  const auto event = parseBackupLine(
      R"({"message_type":"error","error":{"message":"open /tmp/r18/src/unreadable: permission denied"},"during":"archival","item":"/tmp/r18/src/unreadable"})");
  const auto* error = std::get_if<BackupError>(&event);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->message, "open /tmp/r18/src/unreadable: permission denied");
  EXPECT_EQ(error->item, "/tmp/r18/src/unreadable");
  EXPECT_EQ(error->during, "archival");
  // The final exit_error line is not a per-file error.
  EXPECT_TRUE(std::holds_alternative<std::monostate>(parseBackupLine(
      R"({"message_type":"exit_error","code":3,"message":"Warning: at least one source file could not be read"})")));
}

TEST(ResticBackupLine, ProgressTimesAndEtaAreRead) {
  const auto event = parseBackupLine(
      R"({"message_type":"status","seconds_elapsed":12,"seconds_remaining":30,"percent_done":0.25,"total_files":40,"files_done":10,"total_bytes":4000,"bytes_done":1000}  )"
      "\r");
  const auto* p = std::get_if<core::JobProgress>(&event);
  ASSERT_NE(p, nullptr);
  EXPECT_DOUBLE_EQ(p->secondsElapsed, 12);
  ASSERT_TRUE(p->secondsRemaining);
  EXPECT_EQ(*p->secondsRemaining, 30u);
  EXPECT_DOUBLE_EQ(p->percent, 25);
}

TEST(ResticBackupLine, GarbageNeverThrowsAndGivesNothing) {
  for (const std::string_view line :
       {"", "   ", "{", "}", "[1,2]", "null", "\"status\"", "Fatal: something", "{\"message_type\":17}",
        "{\"message_type\":\"summary\"", "{\"message_type\":\"unknown\",\"x\":1}", "\xff\xfe{}"}) {
    EXPECT_NO_THROW({
      const auto event = parseBackupLine(line);
      EXPECT_TRUE(std::holds_alternative<std::monostate>(event)) << line;
    });
  }
  // Wrong types inside a known message give defaults, not exceptions.
  const auto odd = parseBackupLine(
      R"({"message_type":"status","percent_done":"half","bytes_done":-5,"total_bytes":1e300,"current_files":[1,"/a",null],"seconds_remaining":-1})");
  const auto* p = std::get_if<core::JobProgress>(&odd);
  ASSERT_NE(p, nullptr);
  EXPECT_DOUBLE_EQ(p->percent, 0);
  EXPECT_EQ(p->bytesDone, 0u);
  EXPECT_EQ(p->bytesTotal, 0u);
  EXPECT_EQ(p->currentFiles, std::vector<std::string>{"/a"});
  EXPECT_FALSE(p->secondsRemaining);
  const auto error = parseBackupLine(R"({"message_type":"error","error":null,"item":3})");
  ASSERT_TRUE(std::holds_alternative<BackupError>(error));
  EXPECT_EQ(std::get<BackupError>(error).message, "could not read an item");
}

// ---------------------------------------------------------------- snapshots --json

TEST(ResticSnapshots, ReadsTheRecordedList) {
  const auto snapshots = parseSnapshots(readSample("snapshots.json"));
  ASSERT_EQ(snapshots.size(), 3u);
  const auto& first = snapshots[0];
  EXPECT_EQ(first.id, "5c62b13c6183b4d56330e54c7cedddebe64a3c4201a615e767787081e8e3b808");
  EXPECT_EQ(first.shortId, "5c62b13c");
  EXPECT_EQ(first.time, "2026-11-22T05:02:02.177715875Z");
  EXPECT_EQ(first.hostname, "vm");
  EXPECT_EQ(first.username, "root");
  EXPECT_EQ(first.paths, std::vector<std::string>{"/srv/example/restic/src"});
  EXPECT_TRUE(first.tags.empty());
  EXPECT_EQ(first.parent, "");
  EXPECT_EQ(first.tree, "7b341619654a1603bc80484fcbb1e99e2629b4bf3b88ef50af75716235e6ff89");
  EXPECT_EQ(snapshots[1].parent, first.id);
  EXPECT_EQ(snapshots[1].shortId, "ad139b3a");
  EXPECT_EQ(snapshots[2].id, "6b823dbf5e13e0cd95733934f5d9ffad1cd06b5683a4edbc4b8fafb6e5f5771e");
  EXPECT_EQ(snapshots[2].parent, snapshots[1].id);
  EXPECT_EQ(snapshots[2].tree, "94ff0e98a53d9caeb8a53ebb80dec30adb50dac903d263b9acfb90a8e0f6ea2b");
}

TEST(ResticSnapshots, NullTagsMissingShortIdAndEmptyList) {
  const auto snapshots = parseSnapshots(
      R"([{"time":"2026-01-01T00:00:00Z","tree":"t","paths":["/a"],"hostname":"h","username":"u","tags":null,"id":"0123456789abcdef"},
          {"id":"fedcba9876543210","short_id":"fedcba98","tags":["x","y"],"excludes":["*.tmp"],"program_version":"restic 0.18.0","summary":{"files_new":1}}])");
  ASSERT_EQ(snapshots.size(), 2u);
  EXPECT_EQ(snapshots[0].shortId, "01234567");
  EXPECT_TRUE(snapshots[0].tags.empty());
  EXPECT_EQ(snapshots[1].tags, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(snapshots[1].paths.empty());
  EXPECT_TRUE(parseSnapshots("[]\n").empty());
}

void expectSnapshotListRejected(std::string_view text, std::string_view detail) {
  try {
    parseSnapshots(text);
    ADD_FAILURE() << "accepted: " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Failed);
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("cannot parse the snapshot list from restic: ", 0), 0u) << message;
    EXPECT_NE(message.find(detail), std::string::npos) << message;
    EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;
  }
}

TEST(ResticSnapshots, MalformedOutputIsAFailedError) {
  expectSnapshotListRejected("", "empty");
  expectSnapshotListRejected("  \n", "empty");
  expectSnapshotListRejected("Fatal: wrong password or no key found", "syntax error");
  expectSnapshotListRejected("[{\"id\":\"abc\"", "");
  expectSnapshotListRejected("{}", "expected a JSON list");
  expectSnapshotListRejected("[{\"id\":5}]", "entry 1: \"id\" is not a string");
  expectSnapshotListRejected("[{\"id\":\"a\"},{\"id\":\"b\",\"tags\":7}]", "entry 2: \"tags\" is not a list");
  expectSnapshotListRejected("[{\"id\":\"a\",\"paths\":[\"/x\",1]}]", "\"paths\" holds something other than strings");
  expectSnapshotListRejected("[3]", "not a JSON object");
  // `forget --json` prints groups, not snapshots: it must not be mistaken for a list of them.
  expectSnapshotListRejected(readSample("forget.json"), "entry 1: missing \"id\"");
}

// ---------------------------------------------------------------- forget --json

TEST(ResticForget, ReadsTheRecordedPolicyDryRun) {
  // restic 0.14: forget --json --dry-run --tag t --host h --group-by host,tags --keep-last 1 after three backups.
  const auto groups = parseForgetOutput(readSample("forget-policy.json"));
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].keep, std::vector<std::string>{"0126dd77738e50d2416c757349ab4ee6fa91eed9777eba626c3672c67ea62fef"});
  EXPECT_EQ(groups[0].remove, (std::vector<std::string>{"a6ce897605ecce954c5d1caab649ade9b08fec0a95b0928b1bee798813c823fb",
                                                        "0d2a238f4ce250ef28d906b7e8d02f40dcb378d422be4462e7d5a48d3194575e"}));
  // The older recording: a group without tags (null), same shape.
  const auto untagged = parseForgetOutput(readSample("forget.json"));
  ASSERT_EQ(untagged.size(), 1u);
  EXPECT_EQ(untagged[0].keep, std::vector<std::string>{"6b823dbf5e13e0cd95733934f5d9ffad1cd06b5683a4edbc4b8fafb6e5f5771e"});
  EXPECT_EQ(untagged[0].remove.size(), 2u);
}

TEST(ResticForget, NothingToRemoveAndNothingMatchedAreNotErrors) {
  // restic 0.14 prints "remove": null when the policy keeps every snapshot of a group...
  const auto keepAll = parseForgetOutput(
      R"([{"tags":["t"],"host":"h","paths":null,"keep":[{"time":"2026-11-22T13:24:46.312971057Z","tree":"feb7b8f03e217e56886824e9f83173caa5a35d42905459c83b5784773932eaa0","paths":["/tmp/zb-forget-sample/src"],"hostname":"h","username":"root","tags":["t"],"id":"0126dd77738e50d2416c757349ab4ee6fa91eed9777eba626c3672c67ea62fef","short_id":"0126dd77"}],"remove":null,"reasons":[]}])"
      "\n");
  ASSERT_EQ(keepAll.size(), 1u);
  EXPECT_EQ(keepAll[0].keep.size(), 1u);
  EXPECT_TRUE(keepAll[0].remove.empty());
  // ...and nothing at all when no snapshot has the tag on the host.
  EXPECT_TRUE(parseForgetOutput("").empty());
  EXPECT_TRUE(parseForgetOutput("\n").empty());
  EXPECT_TRUE(parseForgetOutput("[]").empty());
}

void expectForgetOutputRejected(std::string_view text, std::string_view detail) {
  try {
    parseForgetOutput(text);
    ADD_FAILURE() << "accepted: " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Failed);
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("cannot parse the output of restic forget: ", 0), 0u) << message;
    EXPECT_NE(message.find(detail), std::string::npos) << message;
    EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;
  }
}

TEST(ResticForget, MalformedOutputIsAFailedError) {
  expectForgetOutputRejected("Fatal: wrong password or no key found", "syntax error");
  expectForgetOutputRejected(R"([{"keep":[],"remove":[])", "");
  expectForgetOutputRejected("null", "expected a JSON list of groups, got null");
  expectForgetOutputRejected("{}", "expected a JSON list of groups, got object");
  expectForgetOutputRejected("[3]", "group 1: not a JSON object");
  expectForgetOutputRejected(R"([{"keep":null,"remove":null},{"remove":null}])", "group 2: missing \"keep\"");
  expectForgetOutputRejected(R"([{"keep":null}])", "group 1: missing \"remove\"");
  expectForgetOutputRejected(R"([{"keep":{},"remove":null}])", "group 1: \"keep\" is not a list");
  expectForgetOutputRejected(R"([{"keep":null,"remove":[7]}])", "group 1: \"remove\" entry 1 is not a JSON object");
  expectForgetOutputRejected(R"([{"keep":[{"id":"abc123"},{"short_id":"abc"}],"remove":null}])",
                             "group 1: \"keep\" entry 2 has no hexadecimal \"id\"");
  expectForgetOutputRejected(R"([{"keep":null,"remove":[{"id":5}]}])", "group 1: \"remove\" entry 1: \"id\" is not a string");
  expectForgetOutputRejected(R"([{"keep":null,"remove":[{"id":"--prune"}]}])", "has no hexadecimal \"id\"");
  expectForgetOutputRejected(R"([{"keep":null,"remove":[{"id":"ABCDEF12"}]}])", "has no hexadecimal \"id\"");
  // A snapshot list is not a forget result, though both are lists of objects.
  expectForgetOutputRejected(readSample("snapshots.json"), "group 1: missing \"keep\"");
}

// ---------------------------------------------------------------- ls --json

TEST(ResticLs, RecordedListingHasHeaderThenNodes) {
  const auto listing = parseLs(readSample("ls.jsonl"));
  ASSERT_EQ(listing.headers.size(), 1u);
  EXPECT_EQ(listing.unknown, 0u);
  const auto& header = listing.headers[0];
  EXPECT_EQ(header.id, "6b823dbf5e13e0cd95733934f5d9ffad1cd06b5683a4edbc4b8fafb6e5f5771e");
  EXPECT_EQ(header.shortId, "6b823dbf");
  EXPECT_EQ(header.parent, "ad139b3a9fd740b3955c419b64a921d53007c3174630f6ab737ae6e06a4ddcc9");
  EXPECT_EQ(header.paths, std::vector<std::string>{"/srv/example/restic/src"});
  ASSERT_EQ(listing.nodes.size(), 8u);

  const auto* root = findNode(listing, "/src");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->name, "src");
  EXPECT_EQ(root->type, "dir");
  EXPECT_EQ(root->mode, 2147484141u);
  EXPECT_NE(root->mode & kGoModeDir, 0u);
  EXPECT_EQ(root->mode & 0777u, 0755u);
  EXPECT_EQ(root->permissions, "drwxr-xr-x");
  EXPECT_FALSE(root->size);

  const auto* big = findNode(listing, "/src/big.bin");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->type, "file");
  ASSERT_TRUE(big->size);
  EXPECT_EQ(*big->size, 30000000u);
  EXPECT_EQ(big->mode, 0644u);
  EXPECT_EQ(big->permissions, "-rw-r--r--");
  EXPECT_EQ(big->uid, 0u);
  EXPECT_EQ(big->gid, 0u);
  EXPECT_EQ(big->mtime, "2026-11-22T05:02:02.160814963Z");
  EXPECT_EQ(big->linkTarget, "");

  const auto* hello = findNode(listing, "/src/sub/hello.txt");
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(hello->name, "hello.txt");
  EXPECT_EQ(*hello->size, 14u);
  EXPECT_NE(findNode(listing, "/src/sub")->mode & kGoModeDir, 0u);
}

TEST(ResticLs, SymlinksCarryTheSymlinkBitButNoTargetIn014) {
  const auto listing = parseLs(readSample("ls-symlink.jsonl"));
  ASSERT_EQ(listing.headers.size(), 1u);
  EXPECT_EQ(listing.headers[0].tags, std::vector<std::string>{"sample"});
  EXPECT_EQ(listing.headers[0].shortId, "23e0a15a");
  ASSERT_EQ(listing.nodes.size(), 8u);
  for (const auto* path : {"/tmp/zb-sample/src/notes-link", "/tmp/zb-sample/src/dangling", "/tmp/zb-sample/src/docs-link"}) {
    const auto* link = findNode(listing, path);
    ASSERT_NE(link, nullptr) << path;
    EXPECT_EQ(link->type, "symlink");
    EXPECT_EQ(link->mode, 134218239u);
    EXPECT_NE(link->mode & kGoModeSymlink, 0u);
    EXPECT_EQ(link->mode & kGoModeDir, 0u);
    EXPECT_EQ(link->permissions, "Lrwxrwxrwx");
    EXPECT_FALSE(link->size);
    // restic 0.14 does not print where a symlink points in `ls --json`.
    EXPECT_EQ(link->linkTarget, "");
  }
  const auto* sticky = findNode(listing, "/tmp");
  ASSERT_NE(sticky, nullptr);
  EXPECT_EQ(sticky->permissions, "dtrwxrwxrwx");
  EXPECT_NE(sticky->mode & kGoModeDir, 0u);
  const auto* notes = findNode(listing, "/tmp/zb-sample/src/docs/notes.txt");
  ASSERT_NE(notes, nullptr);
  EXPECT_EQ(*notes->size, 6u);
}

TEST(ResticLs, NewerResticMessageTypeLinesAreAccepted) {
  // restic 0.18.0 `ls --json` (both message_type and struct_type; inode and summary added).
  const auto header = parseLsLine(
      R"({"time":"2026-11-22T06:21:48.074794105Z","tree":"405955162bf13b7ede5c2d2b1d41efd5abfbe2864d10d677757a941ff3ccecbb","paths":["/tmp/r18/src"],"hostname":"vm","username":"nobody","uid":65534,"gid":65534,"program_version":"restic 0.18.0","summary":{"files_new":1},"id":"599febb472c69090d6bd5808bf9373c354bbca8dee60b51e75de6ef737f48679","short_id":"599febb4","message_type":"snapshot","struct_type":"snapshot"})");
  ASSERT_TRUE(std::holds_alternative<core::Snapshot>(header));
  EXPECT_EQ(std::get<core::Snapshot>(header).shortId, "599febb4");
  const auto node = parseLsLine(
      R"({"name":"a.txt","type":"file","path":"/tmp/r18/src/a.txt","uid":65534,"gid":0,"size":6,"mode":420,"permissions":"-rw-r--r--","mtime":"2026-11-22T06:21:45.43482267Z","inode":10953625,"message_type":"node","struct_type":"node"})");
  ASSERT_TRUE(std::holds_alternative<core::Node>(node));
  EXPECT_EQ(std::get<core::Node>(node).uid, 65534u);
  EXPECT_EQ(*std::get<core::Node>(node).size, 6u);
  // Only message_type, as a future restic may print it; and a link target where one is given.
  const auto link = parseLsLine(
      R"({"name":"l","type":"symlink","path":"/s/l","mode":134218239,"link_target":"../t","message_type":"node"})");
  ASSERT_TRUE(std::holds_alternative<core::Node>(link));
  EXPECT_EQ(std::get<core::Node>(link).linkTarget, "../t");
}

TEST(ResticLs, EmptyFilesHaveSizeZeroAndOddLinesAreSkipped) {
  const auto empty = parseLsLine(R"({"name":"e","type":"file","path":"/e","size":0,"mode":420,"struct_type":"node"})");
  ASSERT_TRUE(std::holds_alternative<core::Node>(empty));
  ASSERT_TRUE(std::get<core::Node>(empty).size);
  EXPECT_EQ(*std::get<core::Node>(empty).size, 0u);
  for (const std::string_view line :
       {"", "not json", "{\"struct_type\":\"node\"}", "{\"struct_type\":\"snapshot\",\"id\":4}",
        "{\"struct_type\":\"snapshot\"}", "{\"message_type\":\"verbose_status\"}", "[]"}) {
    EXPECT_NO_THROW({ EXPECT_TRUE(std::holds_alternative<std::monostate>(parseLsLine(line))) << line; });
  }
}

// ---------------------------------------------------------------- failures

TEST(ResticFailure, MissingRepositoryNamesTheLocation) {
  const auto error = classifyFailure(1, readSample("norepo.stderr"), "main");
  EXPECT_EQ(error.code(), ErrorCode::NoRepository);
  EXPECT_STREQ(error.what(), "repository \"main\": there is no restic repository at /srv/example/nonexist");
}

TEST(ResticFailure, WrongPassword) {
  const auto error = classifyFailure(1, readSample("wrongpw.stderr"), "main");
  EXPECT_EQ(error.code(), ErrorCode::WrongPassword);
  EXPECT_STREQ(error.what(), "repository \"main\": the password is wrong (restic: wrong password or no key found)");
}

TEST(ResticFailure, LockedRepositoryQuotesWhoHoldsTheLock) {
  const auto shared = classifyFailure(1, readSample("locked.stderr"), "main");
  EXPECT_EQ(shared.code(), ErrorCode::RepositoryLocked);
  EXPECT_STREQ(shared.what(),
               "repository \"main\" is locked by another process: repository is already locked by PID 4936 on vm by "
               "root (UID 0, GID 0); if that process is gone, run 'zerobytectl repo unlock main'");
  const auto exclusive = classifyFailure(1, readSample("locked-exclusive.stderr"), "main");
  EXPECT_EQ(exclusive.code(), ErrorCode::RepositoryLocked);
  EXPECT_STREQ(exclusive.what(),
               "repository \"main\" is locked by another process: repository is already locked exclusively by PID "
               "5063 on vm by root (UID 0, GID 0); if that process is gone, run 'zerobytectl repo unlock main'");
}

// restic 0.14's own words for a server that is not there (it exits 1 and often asks "Is there a repository" after
// them): each is "cannot reach", never "no repository", and the message says which cause.
TEST(ResticFailure, AServerThatCannotBeReachedIsUnreachableNotMissing) {
  const auto sftp = classifyFailure(
      1, "subprocess ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused\nFatal: unable to open repository at sftp:u@h:/r: unable to start the sftp session, error: EOF\n", "offsite");
  EXPECT_EQ(sftp.code(), ErrorCode::Unreachable);
  EXPECT_STREQ(sftp.what(),
               "repository \"offsite\": cannot reach the repository: the server refused the connection (is it running, and is "
               "the port right?); restic: Fatal: unable to open repository at sftp:u@h:/r: unable to start the sftp session, "
               "error: EOF (subprocess ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused)");
  const auto rest = classifyFailure(1,
                                    "Fatal: unable to open config file: client.Head: Head \"http://u:***@127.0.0.1:1/x/config\": dial tcp "
                                    "127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\n"
                                    "rest:http://u:***@127.0.0.1:1/x/\n",
                                    "web");
  EXPECT_EQ(rest.code(), ErrorCode::Unreachable);
  EXPECT_NE(std::string(rest.what()).find("the server refused the connection"), std::string::npos) << rest.what();
  const auto dns = classifyFailure(1, "Fatal: unable to open config file: Stat: dial tcp: lookup nas.invalid: no such host\n", "s");
  EXPECT_EQ(dns.code(), ErrorCode::Unreachable);
  EXPECT_NE(std::string(dns.what()).find("does not resolve"), std::string::npos) << dns.what();
  const auto tls = classifyFailure(1, "Fatal: unable to open config file: Stat: Get \"https://127.0.0.1:9000/b/?location=\": x509: "
                                      "certificate signed by unknown authority\n", "s");
  EXPECT_EQ(tls.code(), ErrorCode::Unreachable);
  EXPECT_NE(std::string(tls.what()).find("not trusted (give ca_cert)"), std::string::npos) << tls.what();
  const auto hostKey = classifyFailure(1, "subprocess ssh: Host key verification failed.\nFatal: unable to open repository at "
                                          "sftp:u@h:/r: unable to start the sftp session, error: EOF\n", "s");
  EXPECT_EQ(hostKey.code(), ErrorCode::Unreachable);
  EXPECT_NE(std::string(hostKey.what()).find("does not match known_hosts"), std::string::npos) << hostKey.what();
  // A repository that is not there stays NoRepository.
  EXPECT_EQ(classifyFailure(1, readSample("norepo.stderr"), "m").code(), ErrorCode::NoRepository);
  // init over an existing repository.
  const auto exists = classifyFailure(1, "Fatal: create repository at s3:https://h/b failed: Fatal: config file already exists\n", "m");
  EXPECT_EQ(exists.code(), ErrorCode::AlreadyExists);
}

TEST(ResticFailure, OtherFailuresQuoteTheFatalLineOrTheLastLine) {
  const auto fatal = classifyFailure(1, "subprocess rclone: something odd\nFatal: unable to save snapshot: disk full\n", "offsite");
  EXPECT_EQ(fatal.code(), ErrorCode::Failed);
  EXPECT_STREQ(fatal.what(), "repository \"offsite\": restic failed (exit 1): Fatal: unable to save snapshot: disk full");

  const auto partial = classifyFailure(3, readSample("backup-readerror.stderr"), "main");
  EXPECT_EQ(partial.code(), ErrorCode::Failed);
  EXPECT_STREQ(partial.what(),
               "repository \"main\": restic failed (exit 3): Warning: at least one source file could not be read");

  const auto silent = classifyFailure(1, "\n\n", "main");
  EXPECT_EQ(silent.code(), ErrorCode::Failed);
  EXPECT_STREQ(silent.what(), "repository \"main\": restic failed (exit 1) without a message");
  EXPECT_STREQ(classifyFailure(2, "", "").what(), "restic failed (exit 2) without a message");
}

TEST(ResticFailure, Restic018ExitCodesAndJsonExitErrors) {
  // Real restic 0.18.0 stderr with --json.
  const auto norepo = classifyFailure(
      10,
      R"({"message_type":"exit_error","code":10,"message":"Fatal: repository does not exist: unable to open config file: stat /tmp/r18/nonexist/config: no such file or directory\nIs there a repository at the following location?\n/tmp/r18/nonexist"})",
      "r18");
  EXPECT_EQ(norepo.code(), ErrorCode::NoRepository);
  EXPECT_STREQ(norepo.what(), "repository \"r18\": there is no restic repository at /tmp/r18/nonexist");

  const auto wrongpw = classifyFailure(
      12, R"({"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"})", "r18");
  EXPECT_EQ(wrongpw.code(), ErrorCode::WrongPassword);

  // Text form, where 0.18 first says it will wait for the lock.
  const auto locked = classifyFailure(11,
                                      "repo already locked, waiting up to 0s for the lock\n"
                                      "unable to create lock in backend: repository is already locked by PID 5772 on vm "
                                      "by root (UID 0, GID 0)\nlock was created at 2026-11-22 06:21:54 (3.4781049s ago)\n"
                                      "storage ID 5ad19b84\nthe `unlock` command can be used to remove stale locks\n",
                                      "r18");
  EXPECT_EQ(locked.code(), ErrorCode::RepositoryLocked);
  EXPECT_STREQ(locked.what(),
               "repository \"r18\" is locked by another process: repository is already locked by PID 5772 on vm by root "
               "(UID 0, GID 0); if that process is gone, run 'zerobytectl repo unlock r18'");

  // The exit code alone decides when the text is unfamiliar.
  EXPECT_EQ(classifyFailure(10, "", "x").code(), ErrorCode::NoRepository);
  EXPECT_EQ(classifyFailure(11, "", "x").code(), ErrorCode::RepositoryLocked);
  EXPECT_EQ(classifyFailure(12, "", "x").code(), ErrorCode::WrongPassword);
}

TEST(ResticFailure, PasswordsInRepositoryUrlsAreMasked) {
  const auto error = classifyFailure(
      1, "Fatal: unable to open config file: <config/> does not exist\nIs there a repository at the following location?\n"
         "rest:https://backup:hunter2@rest.example:8000/main/\n",
      "remote");
  EXPECT_EQ(error.code(), ErrorCode::NoRepository);
  EXPECT_STREQ(error.what(), "repository \"remote\": there is no restic repository at rest:https://backup:***@rest.example:8000/main/");
  const auto failed = classifyFailure(1, "Fatal: Get \"https://u:p4ss@h/x\": dial tcp: refused", "remote");
  EXPECT_EQ(std::string(failed.what()).find("p4ss"), std::string::npos) << failed.what();
}

// ---------------------------------------------------------------- live restic

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(std::exchange(other.m_fd, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return m_fd; }
  void reset(int fd = -1) {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = fd;
  }

 private:
  int m_fd = -1;
};

struct Pipe {
  UniqueFd read, write;
};

Pipe makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

struct Child {
  pid_t pid = -1;
  UniqueFd stdinWrite, stdoutRead, stderrRead;
};

// Starts argv with exactly `env`, the password on fd `passwordFd` through a pipe.
Child spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& password,
            int passwordFd, bool keepStdinOpen = false) {
  auto in = makePipe(), out = makePipe(), err = makePipe(), secret = makePipe();
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Lift every source fd above the targets first, so one dup2 cannot clobber another's source.
    const int inFd = ::fcntl(in.read.get(), F_DUPFD_CLOEXEC, 10);
    const int outFd = ::fcntl(out.write.get(), F_DUPFD_CLOEXEC, 10);
    const int errFd = ::fcntl(err.write.get(), F_DUPFD_CLOEXEC, 10);
    const int secretFd = ::fcntl(secret.read.get(), F_DUPFD_CLOEXEC, 10);
    ::dup2(inFd, 0);  // dup2 leaves the new descriptor without O_CLOEXEC
    ::dup2(outFd, 1);
    ::dup2(errFd, 2);
    ::dup2(secretFd, passwordFd);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  const std::string line = password + "\n";
  EXPECT_EQ(::write(secret.write.get(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
  Child child{pid, std::move(in.write), std::move(out.read), std::move(err.read)};
  if (!keepStdinOpen) child.stdinWrite.reset();
  return child;
}

struct RunResult {
  int exitCode = -1;
  std::string out, err;
};

RunResult finish(Child& child) {
  child.stdinWrite.reset();
  RunResult result;
  pollfd fds[2] = {{child.stdoutRead.get(), POLLIN, 0}, {child.stderrRead.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open = 2;
  while (open > 0) {
    if (::poll(fds, 2, 60000) <= 0) {
      ADD_FAILURE() << "restic produced no output for 60 s";
      ::kill(child.pid, SIGKILL);
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open;
      }
    }
  }
  int status = 0;
  ::waitpid(child.pid, &status, 0);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

class LiveRestic : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kRestic)) GTEST_SKIP() << kRestic << " is not installed";
    for (const auto* dir : {"src/sub", "home", "tmp", "cache", "target"}) fs::create_directories(m_dir.path() / dir);
    m_ctx = RepositoryContext{kRestic, (m_dir.path() / "repo").string(), (m_dir.path() / "cache").string(), 3, 0, {}, {}};
    m_env = environment(m_ctx, (m_dir.path() / "home").string(), (m_dir.path() / "tmp").string());
  }

  RunResult run(const std::vector<std::string>& argv, const std::string& password = "correct horse") {
    auto child = spawn(argv, m_env, password, m_ctx.passwordFd);
    return finish(child);
  }

  fs::path src() const { return m_dir.path() / "src"; }

  TemporaryDirectory m_dir{"zb-restic-test"};
  RepositoryContext m_ctx;
  std::vector<std::string> m_env;
};

TEST_F(LiveRestic, InitBackupSnapshotsLsRestoreForgetUnlockWithThePasswordOnFd3) {
  const auto version = run(versionArgs(kRestic));
  ASSERT_EQ(version.exitCode, 0) << version.err;
  const auto parsedVersion = parseVersion(version.out);
  ASSERT_TRUE(parsedVersion) << version.out;
  EXPECT_TRUE(parsedVersion->major > 0 || parsedVersion->minor >= 14) << parsedVersion->text;

  const auto init = run(initArgs(m_ctx));
  ASSERT_EQ(init.exitCode, 0) << init.err;
  const auto config = run(catConfigArgs(m_ctx));
  ASSERT_EQ(config.exitCode, 0) << config.err;
  EXPECT_NE(config.out.find("\"chunker_polynomial\""), std::string::npos) << config.out;

  writeFile(src() / "a.txt", "hello\n");
  writeFile(src() / "sub" / "b.txt", "second file\n");
  writeFile(src() / "skip.tmp", "excluded\n");
  fs::create_symlink("a.txt", src() / "link");

  const auto backup = run(backupArgs(m_ctx, src().string(), {"zb", "nightly"}, {"*.tmp"}));
  ASSERT_EQ(backup.exitCode, 0) << backup.err;
  const auto events = parseBackupLines(backup.out);
  const auto summaries = only<core::BackupSummary>(events);
  ASSERT_EQ(summaries.size(), 1u) << backup.out;
  EXPECT_EQ(summaries[0].filesNew, 2u);
  EXPECT_EQ(summaries[0].totalFilesProcessed, 2u);
  EXPECT_EQ(summaries[0].totalBytesProcessed, 18u);
  EXPECT_FALSE(summaries[0].snapshotId.empty());
  // Every stdout line is progress or the summary (0.18 may finish so fast it prints no status).
  EXPECT_EQ(only<core::JobProgress>(events).size() + 1, events.size()) << backup.out;
  EXPECT_TRUE(only<BackupError>(parseBackupLines(backup.err)).empty()) << backup.err;

  const auto list = run(snapshotsArgs(m_ctx));
  ASSERT_EQ(list.exitCode, 0) << list.err;
  const auto snapshots = parseSnapshots(list.out);
  ASSERT_EQ(snapshots.size(), 1u);
  const auto& snapshot = snapshots[0];
  EXPECT_EQ(snapshot.id.rfind(summaries[0].snapshotId, 0), 0u) << snapshot.id << " vs " << summaries[0].snapshotId;
  EXPECT_EQ(snapshot.shortId, snapshot.id.substr(0, 8));
  EXPECT_EQ(snapshot.tags, (std::vector<std::string>{"zb", "nightly"}));
  EXPECT_EQ(snapshot.paths, std::vector<std::string>{src().string()});
  EXPECT_EQ(snapshot.parent, "");
  EXPECT_EQ(snapshot.tree.size(), 64u);

  const auto ls = run(lsArgs(m_ctx, snapshot.shortId, src().string()));
  ASSERT_EQ(ls.exitCode, 0) << ls.err;
  const auto listing = parseLs(ls.out);
  ASSERT_EQ(listing.headers.size(), 1u);
  EXPECT_EQ(listing.headers[0].id, snapshot.id);
  EXPECT_EQ(listing.unknown, 0u);
  const auto* a = findNode(listing, (src() / "a.txt").string());
  ASSERT_NE(a, nullptr) << ls.out;
  EXPECT_EQ(a->type, "file");
  EXPECT_EQ(a->size, std::optional<uint64_t>(6));
  const auto* sub = findNode(listing, (src() / "sub").string());
  ASSERT_NE(sub, nullptr);
  EXPECT_NE(sub->mode & kGoModeDir, 0u);
  const auto* link = findNode(listing, (src() / "link").string());
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->type, "symlink");
  EXPECT_NE(link->mode & kGoModeSymlink, 0u);
  EXPECT_EQ(findNode(listing, (src() / "skip.tmp").string()), nullptr);
  // A directory filter lists that directory's entries, not the whole tree.
  EXPECT_EQ(findNode(listing, (src() / "sub" / "b.txt").string()), nullptr);
  const auto whole = parseLs(run(lsArgs(m_ctx, snapshot.id, "")).out);
  EXPECT_NE(findNode(whole, (src() / "sub" / "b.txt").string()), nullptr);

  const auto target = m_dir.path() / "target";
  const auto restore = run(restoreArgs(m_ctx, snapshot.shortId, target.string(), {(src() / "sub").string()}));
  ASSERT_EQ(restore.exitCode, 0) << restore.err;
  const auto restored = target / src().relative_path() / "sub" / "b.txt";
  EXPECT_TRUE(fs::exists(restored)) << restored;
  EXPECT_FALSE(fs::exists(target / src().relative_path() / "a.txt"));

  const auto forget = run(forgetArgs(m_ctx, snapshot.id));
  ASSERT_EQ(forget.exitCode, 0) << forget.err;
  const auto after = run(snapshotsArgs(m_ctx));
  ASSERT_EQ(after.exitCode, 0) << after.err;
  EXPECT_TRUE(parseSnapshots(after.out).empty()) << after.out;

  const auto unlock = run(unlockArgs(m_ctx));
  EXPECT_EQ(unlock.exitCode, 0) << unlock.err;

  const auto check = run(checkArgs(m_ctx));
  EXPECT_EQ(check.exitCode, 0) << check.err;
  EXPECT_NE(check.out.find("no errors were found"), std::string::npos) << check.out;
}

TEST_F(LiveRestic, WrongPasswordAndMissingRepositoryAreClassified) {
  ASSERT_EQ(run(initArgs(m_ctx)).exitCode, 0);
  const auto wrong = run(snapshotsArgs(m_ctx), "not the password");
  ASSERT_NE(wrong.exitCode, 0);
  EXPECT_EQ(classifyFailure(wrong.exitCode, wrong.err, "live").code(), ErrorCode::WrongPassword) << wrong.err;

  auto missing = m_ctx;
  missing.repository = (m_dir.path() / "nowhere").string();
  auto child = spawn(snapshotsArgs(missing), m_env, "correct horse", missing.passwordFd);
  const auto result = finish(child);
  ASSERT_NE(result.exitCode, 0);
  const auto error = classifyFailure(result.exitCode, result.err, "live");
  EXPECT_EQ(error.code(), ErrorCode::NoRepository) << result.err;
  EXPECT_EQ(std::string(error.what()), "repository \"live\": there is no restic repository at " + missing.repository);
}

TEST_F(LiveRestic, RepositoryStringThatLooksLikeAFlagIsOnlyEverARepository) {
  const auto marker = m_dir.path() / "password-command-ran";
  auto hostile = m_ctx;
  hostile.repository = "--password-command=touch " + marker.string();
  const auto result = run(snapshotsArgs(hostile));
  EXPECT_NE(result.exitCode, 0);
  EXPECT_FALSE(fs::exists(marker));
  const auto error = classifyFailure(result.exitCode, result.err, "odd");
  EXPECT_EQ(error.code(), ErrorCode::NoRepository) << result.err;
  EXPECT_EQ(std::string(error.what()), "repository \"odd\": there is no restic repository at " + hostile.repository);
}

TEST_F(LiveRestic, ForgetWhileABackupHoldsTheLockIsRepositoryLocked) {
  ASSERT_EQ(run(initArgs(m_ctx)).exitCode, 0);
  writeFile(src() / "a.txt", "hello\n");
  ASSERT_EQ(run(backupArgs(m_ctx, src().string(), {}, {})).exitCode, 0);
  const auto snapshots = parseSnapshots(run(snapshotsArgs(m_ctx)).out);
  ASSERT_EQ(snapshots.size(), 1u);

  // A backup from stdin holds its (shared) lock until stdin is closed.
  auto holderArgv = backupArgs(m_ctx, "--stdin", {}, {});
  holderArgv.erase(std::find(holderArgv.begin(), holderArgv.end(), "--"));
  auto holder = spawn(holderArgv, m_env, "correct horse", m_ctx.passwordFd, /*keepStdinOpen=*/true);
  const auto locks = fs::path(m_ctx.repository) / "locks";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (fs::is_empty(locks) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_FALSE(fs::is_empty(locks)) << "the stdin backup never took its lock";

  const auto forget = run(forgetArgs(m_ctx, snapshots[0].id));
  EXPECT_NE(forget.exitCode, 0);
  const auto error = classifyFailure(forget.exitCode, forget.err, "live");
  EXPECT_EQ(error.code(), ErrorCode::RepositoryLocked) << forget.err;
  EXPECT_NE(std::string(error.what()).find("repository is already locked by PID " + std::to_string(holder.pid)),
            std::string::npos)
      << error.what();

  const std::string data = "streamed\n";
  ASSERT_EQ(::write(holder.stdinWrite.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  const auto held = finish(holder);
  EXPECT_EQ(held.exitCode, 0) << held.err;
  EXPECT_EQ(run(forgetArgs(m_ctx, snapshots[0].id)).exitCode, 0);
}

TEST_F(LiveRestic, RetentionPolicyForgetsOnlyTheOlderSnapshotsOfItsOwnTagAndHost) {
  ASSERT_EQ(run(initArgs(m_ctx)).exitCode, 0);
  writeFile(src() / "a.txt", "hello\n");
  // Returns the full id of the new snapshot (0.14's summary carries the short id).
  int round = 0;
  const auto backupAs = [&](const std::string& tag, const std::string& host) -> std::string {
    writeFile(src() / "a.txt", "round " + std::to_string(++round) + "\n");
    auto argv = backupArgs(m_ctx, src().string(), {tag}, {});
    argv.insert(std::find(argv.begin(), argv.end(), "--"), {"--host", host});
    const auto backup = run(argv);
    EXPECT_EQ(backup.exitCode, 0) << backup.err;
    const auto summaries = only<core::BackupSummary>(parseBackupLines(backup.out));
    if (summaries.size() != 1) return {};
    for (const auto& snapshot : parseSnapshots(run(snapshotsArgs(m_ctx)).out))
      if (snapshot.id.rfind(summaries[0].snapshotId, 0) == 0) return snapshot.id;
    return {};
  };
  std::vector<std::string> ownOlder, others;
  ownOlder.push_back(backupAs("nightly", "alpha"));
  others.push_back(backupAs("weekly", "alpha"));
  others.push_back(backupAs("nightly", "beta"));
  ownOlder.push_back(backupAs("nightly", "alpha"));
  others.push_back(backupAs("weekly", "beta"));
  others.push_back(backupAs("nightly", "beta"));
  const std::string ownNewest = backupAs("nightly", "alpha");
  // The other schedule and the other host back up last: their newest must not count for alpha's nightly.
  others.push_back(backupAs("weekly", "alpha"));
  others.push_back(backupAs("nightly", "beta"));
  ASSERT_FALSE(HasFailure());
  std::sort(ownOlder.begin(), ownOlder.end());

  core::RetentionPolicy policy;
  policy.keepLast = 1;
  // Taken as a tag to keep (none has it), not as the flag: otherwise nothing would be forgotten below.
  policy.keepTags = {"--dry-run"};

  const auto dryRun = run(forgetPolicyArgs(m_ctx, policy, "nightly", "alpha", true));
  ASSERT_EQ(dryRun.exitCode, 0) << dryRun.err;
  const auto planned = parseForgetOutput(dryRun.out);
  ASSERT_EQ(planned.size(), 1u) << dryRun.out;
  EXPECT_EQ(planned[0].keep, std::vector<std::string>{ownNewest});
  auto plannedRemove = planned[0].remove;
  std::sort(plannedRemove.begin(), plannedRemove.end());
  EXPECT_EQ(plannedRemove, ownOlder);
  EXPECT_EQ(parseSnapshots(run(snapshotsArgs(m_ctx)).out).size(), 9u) << "the dry run removed snapshots";

  const auto forget = run(forgetPolicyArgs(m_ctx, policy, "nightly", "alpha", false));
  ASSERT_EQ(forget.exitCode, 0) << forget.err;
  const auto done = parseForgetOutput(forget.out);
  ASSERT_EQ(done.size(), 1u) << forget.out;
  auto removed = done[0].remove;
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed, ownOlder);

  const auto list = run(snapshotsArgs(m_ctx));
  ASSERT_EQ(list.exitCode, 0) << list.err;
  std::vector<std::string> remaining;
  for (const auto& snapshot : parseSnapshots(list.out)) remaining.push_back(snapshot.id);
  std::sort(remaining.begin(), remaining.end());
  auto expected = others;
  expected.push_back(ownNewest);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(remaining, expected);

  // Run again: the policy is met, nothing more goes.
  const auto again = run(forgetPolicyArgs(m_ctx, policy, "nightly", "alpha", false));
  ASSERT_EQ(again.exitCode, 0) << again.err;
  const auto nothing = parseForgetOutput(again.out);
  ASSERT_EQ(nothing.size(), 1u);
  EXPECT_TRUE(nothing[0].remove.empty());
  // A schedule with no snapshots on this host yet: restic prints nothing, which is no groups.
  const auto fresh = run(forgetPolicyArgs(m_ctx, policy, "hourly", "alpha", false));
  ASSERT_EQ(fresh.exitCode, 0) << fresh.err;
  EXPECT_TRUE(parseForgetOutput(fresh.out).empty()) << fresh.out;
  EXPECT_EQ(parseSnapshots(run(snapshotsArgs(m_ctx)).out).size(), 7u);
}

}  // namespace
}  // namespace zerobyte::restic
