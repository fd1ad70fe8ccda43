// The LMDB store on a real environment in a fresh temporary directory per test.
#include "daemon/store/store.h"

#include "common/errors.h"
#include "daemon/store/records.h"
#include "tests/unit/test_support.h"

#include <cereal/archives/portable_binary.hpp>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>

namespace zerobyte::store {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using zbtest::unit::putRawLmdbRecord;
using zbtest::unit::TemporaryDirectory;
using zbtest::unit::thrownError;
using zbtest::unit::writeFile;

class StoreTest : public ::testing::Test {
 protected:
  fs::path stateDir() const { return m_temp.path() / "state"; }

 private:
  TemporaryDirectory m_temp{"zerobyte-store-test"};
};

core::Volume makeVolume(const std::string& id) {
  core::Volume v;
  v.id = id;
  v.name = "name-" + id;
  v.type = "directory";
  v.path = "/srv/data/" + id;
  v.declared = true;
  v.ownerUid = 1000;
  v.created = 1700000000;
  return v;
}

core::Repository makeRepository(const std::string& id) {
  core::Repository r;
  r.id = id;
  r.name = "repo-" + id;
  r.type = "local";
  r.path = "/backup/" + id;
  r.declared = false;
  r.ownerUid = 1001;
  r.created = 1700000100;
  r.password.keyId = 0xdeadbeef;
  r.password.nonce = "\0\1\2\3\4\5\6\7\x08\x09\x0a\0"s;
  r.password.ciphertext = "cipher\0text\0with\xff\0nuls-and-16-byte-tag"s;
  r.passwordRef = "credential://repo-" + id;
  return r;
}

core::Job makeJob(uint64_t id, core::JobState state) {
  core::Job j;
  j.id = id;
  j.operation = core::JobOperation::Restore;
  j.state = state;
  j.repositoryId = "r1";
  j.repositoryName = "repo-r1";
  j.volumeId = "v1";
  j.volumeName = "name-v1";
  j.snapshot = "abcdef12";
  j.target = "/restore/here";
  j.tags = {"daily", "manual"};
  j.excludes = {"*.tmp", "/proc"};
  j.includes = {"/home"};
  j.startedByUid = 1000;
  j.created = 1700000200;
  j.started = 1700000201;
  j.finished = 1700000300;
  j.progress.percent = 0.75;
  j.progress.bytesDone = 1ull << 40;
  j.progress.bytesTotal = (1ull << 40) + 5;
  j.progress.filesDone = 12;
  j.progress.filesTotal = 16;
  j.progress.secondsElapsed = 99.5;
  j.progress.secondsRemaining = 33;
  j.progress.currentFiles = {"/home/a", "/home/b"};
  j.message = "done";
  j.warnings = {"/home/unreadable: permission denied"};
  core::BackupSummary s;
  s.snapshotId = "0123456789abcdef";
  s.filesNew = 1;
  s.filesChanged = 2;
  s.filesUnmodified = 3;
  s.dirsNew = 4;
  s.dirsChanged = 5;
  s.dirsUnmodified = 6;
  s.dataAdded = 7;
  s.totalFilesProcessed = 8;
  s.totalBytesProcessed = 9;
  s.totalDuration = 10.25;
  j.summary = s;
  j.log = {"line one", "line two"};
  j.childPid = 4242;
  j.scheduleId = "s1";
  j.scheduleName = "nightly";
  j.trigger = "catch-up";
  j.attempt = 2;
  j.readDataSubset = "1/5";
  return j;
}

core::SnapshotCache makeSnapshotCache(const std::string& repositoryId) {
  core::SnapshotCache c;
  c.repositoryId = repositoryId;
  c.refreshed = 1700000400;
  for (int i = 0; i < 2; ++i) {
    core::Snapshot s;
    s.id = "id" + std::to_string(i);
    s.shortId = "short" + std::to_string(i);
    s.time = "2024-01-0" + std::to_string(i + 1) + "T10:00:00.123456789+01:00";
    s.hostname = "host";
    s.username = "root";
    s.paths = {"/srv/data", "/etc"};
    s.tags = {"t" + std::to_string(i)};
    s.parent = i == 0 ? "" : "id0";
    s.tree = "tree" + std::to_string(i);
    c.snapshots.push_back(s);
  }
  return c;
}

void expectEqual(const core::Volume& a, const core::Volume& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.declared, b.declared);
  EXPECT_EQ(a.ownerUid, b.ownerUid);
  EXPECT_EQ(a.created, b.created);
}

void expectEqual(const core::Repository& a, const core::Repository& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.declared, b.declared);
  EXPECT_EQ(a.ownerUid, b.ownerUid);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.password.keyId, b.password.keyId);
  EXPECT_EQ(a.password.nonce, b.password.nonce);
  EXPECT_EQ(a.password.ciphertext, b.password.ciphertext);
  EXPECT_EQ(a.passwordRef, b.passwordRef);
}

void expectEqual(const core::BackupSummary& a, const core::BackupSummary& b) {
  EXPECT_EQ(a.snapshotId, b.snapshotId);
  EXPECT_EQ(a.filesNew, b.filesNew);
  EXPECT_EQ(a.filesChanged, b.filesChanged);
  EXPECT_EQ(a.filesUnmodified, b.filesUnmodified);
  EXPECT_EQ(a.dirsNew, b.dirsNew);
  EXPECT_EQ(a.dirsChanged, b.dirsChanged);
  EXPECT_EQ(a.dirsUnmodified, b.dirsUnmodified);
  EXPECT_EQ(a.dataAdded, b.dataAdded);
  EXPECT_EQ(a.totalFilesProcessed, b.totalFilesProcessed);
  EXPECT_EQ(a.totalBytesProcessed, b.totalBytesProcessed);
  EXPECT_EQ(a.totalDuration, b.totalDuration);
}

void expectEqual(const core::Job& a, const core::Job& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.operation, b.operation);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.repositoryId, b.repositoryId);
  EXPECT_EQ(a.repositoryName, b.repositoryName);
  EXPECT_EQ(a.volumeId, b.volumeId);
  EXPECT_EQ(a.volumeName, b.volumeName);
  EXPECT_EQ(a.snapshot, b.snapshot);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.tags, b.tags);
  EXPECT_EQ(a.excludes, b.excludes);
  EXPECT_EQ(a.includes, b.includes);
  EXPECT_EQ(a.startedByUid, b.startedByUid);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.started, b.started);
  EXPECT_EQ(a.finished, b.finished);
  EXPECT_EQ(a.progress.percent, b.progress.percent);
  EXPECT_EQ(a.progress.bytesDone, b.progress.bytesDone);
  EXPECT_EQ(a.progress.bytesTotal, b.progress.bytesTotal);
  EXPECT_EQ(a.progress.filesDone, b.progress.filesDone);
  EXPECT_EQ(a.progress.filesTotal, b.progress.filesTotal);
  EXPECT_EQ(a.progress.secondsElapsed, b.progress.secondsElapsed);
  EXPECT_EQ(a.progress.secondsRemaining, b.progress.secondsRemaining);
  EXPECT_EQ(a.progress.currentFiles, b.progress.currentFiles);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.warnings, b.warnings);
  ASSERT_EQ(a.summary.has_value(), b.summary.has_value());
  if (a.summary) expectEqual(*a.summary, *b.summary);
  EXPECT_EQ(a.log, b.log);
  EXPECT_EQ(a.childPid, b.childPid);
  EXPECT_EQ(a.scheduleId, b.scheduleId);
  EXPECT_EQ(a.scheduleName, b.scheduleName);
  EXPECT_EQ(a.trigger, b.trigger);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.readDataSubset, b.readDataSubset);
}

void expectEqual(const core::SnapshotCache& a, const core::SnapshotCache& b) {
  EXPECT_EQ(a.repositoryId, b.repositoryId);
  EXPECT_EQ(a.refreshed, b.refreshed);
  ASSERT_EQ(a.snapshots.size(), b.snapshots.size());
  for (size_t i = 0; i < a.snapshots.size(); ++i) {
    const auto& x = a.snapshots[i];
    const auto& y = b.snapshots[i];
    EXPECT_EQ(x.id, y.id);
    EXPECT_EQ(x.shortId, y.shortId);
    EXPECT_EQ(x.time, y.time);
    EXPECT_EQ(x.hostname, y.hostname);
    EXPECT_EQ(x.username, y.username);
    EXPECT_EQ(x.paths, y.paths);
    EXPECT_EQ(x.tags, y.tags);
    EXPECT_EQ(x.parent, y.parent);
    EXPECT_EQ(x.tree, y.tree);
  }
}

std::string jobKey(uint64_t id) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i, id >>= 8) key[static_cast<size_t>(i)] = static_cast<char>(id & 0xff);
  return key;
}

template <class T>
std::string encodeRecord(const T& record) {
  std::ostringstream out(std::ios::binary);
  {
    cereal::PortableBinaryOutputArchive archive(out);
    archive(record);
  }
  return out.str();
}

TEST_F(StoreTest, NewStoreHasCurrentSchemaVersionAndNoRecords) {
  Store store(stateDir());
  EXPECT_EQ(store.schemaVersion(), kSchemaVersion);
  EXPECT_TRUE(store.volumes().empty());
  EXPECT_TRUE(store.repositories().empty());
  EXPECT_TRUE(store.jobs().empty());
  EXPECT_FALSE(store.volume("nope").has_value());
  EXPECT_FALSE(store.repository("nope").has_value());
  EXPECT_FALSE(store.job(1).has_value());
  EXPECT_FALSE(store.snapshotCache("nope").has_value());
}

TEST_F(StoreTest, VolumeRoundTripsWithEveryField) {
  Store store(stateDir());
  auto volume = makeVolume("v1");
  auto txn = store.begin();
  txn.put(volume);
  txn.commit();
  auto loaded = store.volume("v1");
  ASSERT_TRUE(loaded);
  expectEqual(*loaded, volume);
  ASSERT_EQ(store.volumes().size(), 1u);
  expectEqual(store.volumes()[0], volume);
}

TEST_F(StoreTest, RepositoryRoundTripsWithSealedPasswordBytesIncludingNul) {
  Store store(stateDir());
  auto repository = makeRepository("r1");
  ASSERT_NE(repository.password.ciphertext.find('\0'), std::string::npos);
  auto txn = store.begin();
  txn.put(repository);
  txn.commit();
  auto loaded = store.repository("r1");
  ASSERT_TRUE(loaded);
  expectEqual(*loaded, repository);
  EXPECT_EQ(loaded->password.ciphertext.size(), repository.password.ciphertext.size());
}

TEST_F(StoreTest, JobRoundTripsWithEveryFieldIncludingSummary) {
  Store store(stateDir());
  auto job = makeJob(7, core::JobState::Warning);
  auto txn = store.begin();
  txn.put(job);
  txn.commit();
  auto loaded = store.job(7);
  ASSERT_TRUE(loaded);
  ASSERT_TRUE(loaded->summary);
  expectEqual(*loaded, job);
}

TEST_F(StoreTest, JobWithoutSummaryOrEstimateLoadsWithout) {
  Store store(stateDir());
  auto job = makeJob(8, core::JobState::Running);
  job.summary.reset();
  job.progress.secondsRemaining.reset();
  job.tags.clear();
  auto txn = store.begin();
  txn.put(job);
  txn.commit();
  auto loaded = store.job(8);
  ASSERT_TRUE(loaded);
  EXPECT_FALSE(loaded->summary);
  EXPECT_FALSE(loaded->progress.secondsRemaining);
  expectEqual(*loaded, job);
}

TEST_F(StoreTest, EveryOperationAndStateRoundTrips) {
  // Every value up to the last one the model declares: a new operation must be storable.
  Store store(stateDir());
  std::vector<core::JobOperation> operations;
  for (uint32_t v = 0; v <= static_cast<uint32_t>(core::kLastJobOperation); ++v) operations.push_back(static_cast<core::JobOperation>(v));
  std::vector<core::JobState> states;
  for (uint32_t v = 0; v <= static_cast<uint32_t>(core::kLastJobState); ++v) states.push_back(static_cast<core::JobState>(v));
  ASSERT_GE(operations.size(), 9u);
  uint64_t id = 1;
  auto txn = store.begin();
  for (auto op : operations)
    for (auto state : states) {
      auto job = makeJob(id++, state);
      job.operation = op;
      txn.put(job);
    }
  txn.commit();
  id = 1;
  for (auto op : operations)
    for (auto state : states) {
      auto loaded = store.job(id++);
      ASSERT_TRUE(loaded);
      EXPECT_EQ(loaded->operation, op);
      EXPECT_EQ(loaded->state, state);
      EXPECT_NE(core::toString(loaded->operation), "unknown");
    }
}

TEST_F(StoreTest, ScheduleRoundTripsWithEveryFieldAndIsErased) {
  Store store(stateDir());
  core::Schedule s;
  s.id = "a1b2c3d4";
  s.name = "nightly";
  s.kind = core::ScheduleKind::Check;
  s.readDataSubset = "10%";
  s.volumeName = "home";
  s.repositoryName = "main";
  s.cron = "30 2 * * *";
  s.timeZone = "Europe/Berlin";
  s.jitterSeconds = 600;
  s.enabled = false;
  s.includes = {"Documents"};
  s.excludes = {"*.tmp"};
  s.excludeIfPresent = {".nobackup"};
  s.oneFileSystem = true;
  s.tags = {"daily"};
  s.compression = "max";
  s.retries = 3;
  s.retryDelaySeconds = 60;
  s.retention.keepLast = 3;
  s.retention.keepYearly = 100000;
  s.retention.keepWithin = "1y6m";
  s.retention.keepTags = {"pinned"};
  s.ownerUid = 1000;
  s.groupGid = 1001;
  s.declared = true;
  s.created = 1700000000;
  s.lastSlot = 1700000100;
  s.lastJobId = 9;
  s.lastSuccess = 1700000050;
  s.lastSuccessJobId = 8;
  s.lastFailure = 1700000090;
  s.lastFailureJobId = 9;
  s.lastFailureMessage = "repository \"main\" is locked";
  {
    auto txn = store.begin();
    txn.put(s);
    txn.commit();
  }
  auto loaded = store.schedule(s.id);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->name, s.name);
  EXPECT_EQ(loaded->kind, s.kind);
  EXPECT_EQ(loaded->readDataSubset, s.readDataSubset);
  EXPECT_EQ(loaded->volumeName, s.volumeName);
  EXPECT_EQ(loaded->repositoryName, s.repositoryName);
  EXPECT_EQ(loaded->cron, s.cron);
  EXPECT_EQ(loaded->timeZone, s.timeZone);
  EXPECT_EQ(loaded->jitterSeconds, s.jitterSeconds);
  EXPECT_EQ(loaded->enabled, s.enabled);
  EXPECT_EQ(loaded->includes, s.includes);
  EXPECT_EQ(loaded->excludes, s.excludes);
  EXPECT_EQ(loaded->excludeIfPresent, s.excludeIfPresent);
  EXPECT_EQ(loaded->oneFileSystem, s.oneFileSystem);
  EXPECT_EQ(loaded->tags, s.tags);
  EXPECT_EQ(loaded->compression, s.compression);
  EXPECT_EQ(loaded->retries, s.retries);
  EXPECT_EQ(loaded->retryDelaySeconds, s.retryDelaySeconds);
  EXPECT_EQ(loaded->retention.keepLast, s.retention.keepLast);
  EXPECT_EQ(loaded->retention.keepYearly, s.retention.keepYearly);
  EXPECT_FALSE(loaded->retention.keepDaily);
  EXPECT_EQ(loaded->retention.keepWithin, s.retention.keepWithin);
  EXPECT_EQ(loaded->retention.keepTags, s.retention.keepTags);
  EXPECT_EQ(loaded->ownerUid, s.ownerUid);
  EXPECT_EQ(loaded->groupGid, s.groupGid);
  EXPECT_EQ(loaded->declared, s.declared);
  EXPECT_EQ(loaded->created, s.created);
  EXPECT_EQ(loaded->lastSlot, s.lastSlot);
  EXPECT_EQ(loaded->lastJobId, s.lastJobId);
  EXPECT_EQ(loaded->lastSuccess, s.lastSuccess);
  EXPECT_EQ(loaded->lastSuccessJobId, s.lastSuccessJobId);
  EXPECT_EQ(loaded->lastFailure, s.lastFailure);
  EXPECT_EQ(loaded->lastFailureJobId, s.lastFailureJobId);
  EXPECT_EQ(loaded->lastFailureMessage, s.lastFailureMessage);
  ASSERT_EQ(store.schedules().size(), 1u);
  {
    auto txn = store.begin();
    txn.eraseSchedule(s.id);
    txn.commit();
  }
  EXPECT_TRUE(store.schedules().empty());
  EXPECT_FALSE(store.schedule(s.id));
}

TEST_F(StoreTest, SnapshotCacheRoundTrips) {
  Store store(stateDir());
  auto cache = makeSnapshotCache("r1");
  auto txn = store.begin();
  txn.put(cache);
  txn.commit();
  auto loaded = store.snapshotCache("r1");
  ASSERT_TRUE(loaded);
  expectEqual(*loaded, cache);
}

TEST_F(StoreTest, PutReplacesTheRecordWithTheSameId) {
  Store store(stateDir());
  auto volume = makeVolume("v1");
  {
    auto txn = store.begin();
    txn.put(volume);
    txn.commit();
  }
  volume.path = "/elsewhere";
  {
    auto txn = store.begin();
    txn.put(volume);
    txn.commit();
  }
  ASSERT_EQ(store.volumes().size(), 1u);
  EXPECT_EQ(store.volume("v1")->path, "/elsewhere");
}

TEST_F(StoreTest, AbortedTransactionLeavesNothing) {
  Store store(stateDir());
  {
    auto txn = store.begin();
    txn.put(makeVolume("v1"));
    txn.put(makeRepository("r1"));
    auto job = makeJob(txn.allocateJobId(), core::JobState::Queued);
    txn.put(job);
    txn.put(makeSnapshotCache("r1"));
  }  // destroyed without commit
  EXPECT_TRUE(store.volumes().empty());
  EXPECT_TRUE(store.repositories().empty());
  EXPECT_TRUE(store.jobs().empty());
  EXPECT_FALSE(store.snapshotCache("r1"));
  auto txn = store.begin();
  EXPECT_EQ(txn.allocateJobId(), 1u) << "the aborted allocation must not advance the counter";
}

TEST_F(StoreTest, MultiRecordTransactionIsAllOrNothingWhenItFailsBeforeCommit) {
  Store store(stateDir());
  {
    auto txn = store.begin();
    txn.put(makeVolume("existing"));
    txn.commit();
  }
  const auto failingUpdate = [&] {
    auto txn = store.begin();
    txn.eraseVolume("existing");
    txn.put(makeVolume("v2"));
    txn.put(makeRepository("r2"));
    throw std::runtime_error("simulated failure before commit");
  };
  EXPECT_THROW(failingUpdate(), std::runtime_error);
  ASSERT_EQ(store.volumes().size(), 1u);
  EXPECT_EQ(store.volumes()[0].id, "existing");
  EXPECT_TRUE(store.repositories().empty());
  // The failed transaction released the writer: a new one works.
  auto txn = store.begin();
  txn.put(makeVolume("v3"));
  txn.commit();
  EXPECT_EQ(store.volumes().size(), 2u);
}

TEST_F(StoreTest, SecondWriteTransactionIsRefusedInsteadOfDeadlocking) {
  Store store(stateDir());
  auto first = store.begin();
  auto error = thrownError([&] { store.begin(); });
  EXPECT_EQ(error.code(), ErrorCode::Internal);
  EXPECT_NE(std::string(error.what()).find("already open"), std::string::npos) << error.what();
  first.commit();
  EXPECT_NO_THROW(store.begin());
}

TEST_F(StoreTest, ReadsDuringAnOpenWriteTransactionSeeTheLastCommit) {
  Store store(stateDir());
  auto txn = store.begin();
  txn.put(makeVolume("v1"));
  EXPECT_FALSE(store.volume("v1"));
  txn.commit();
  EXPECT_TRUE(store.volume("v1"));
}

TEST_F(StoreTest, TransactionCannotBeUsedAfterCommit) {
  Store store(stateDir());
  auto txn = store.begin();
  txn.commit();
  EXPECT_EQ(thrownError([&] { txn.put(makeVolume("v1")); }).code(), ErrorCode::Internal);
  EXPECT_EQ(thrownError([&] { txn.commit(); }).code(), ErrorCode::Internal);
}

TEST_F(StoreTest, JobIdCounterStartsAtOneAndPersistsAcrossReopen) {
  {
    Store store(stateDir());
    auto txn = store.begin();
    EXPECT_EQ(txn.allocateJobId(), 1u);
    EXPECT_EQ(txn.allocateJobId(), 2u);
    txn.commit();
    auto next = store.begin();
    EXPECT_EQ(next.allocateJobId(), 3u);
    next.commit();
  }
  Store reopened(stateDir());
  auto txn = reopened.begin();
  EXPECT_EQ(txn.allocateJobId(), 4u);
}

TEST_F(StoreTest, JobsAreNewestFirstAndHonourTheLimit) {
  Store store(stateDir());
  {
    auto txn = store.begin();
    // Ids beyond 255 check that the key order is numeric (big-endian), not byte-wise little-endian.
    for (uint64_t id : {1u, 2u, 255u, 256u, 70000u}) txn.put(makeJob(id, core::JobState::Succeeded));
    txn.commit();
  }
  auto all = store.jobs();
  ASSERT_EQ(all.size(), 5u);
  std::vector<uint64_t> ids;
  for (const auto& j : all) ids.push_back(j.id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{70000, 256, 255, 2, 1}));
  auto limited = store.jobs(2);
  ASSERT_EQ(limited.size(), 2u);
  EXPECT_EQ(limited[0].id, 70000u);
  EXPECT_EQ(limited[1].id, 256u);
  EXPECT_EQ(store.jobs(10).size(), 5u);
}

TEST_F(StoreTest, TrimJobsKeepsUnfinishedJobsAndTheNewestFinished) {
  Store store(stateDir());
  {
    auto txn = store.begin();
    txn.put(makeJob(1, core::JobState::Succeeded));
    txn.put(makeJob(2, core::JobState::Running));  // oldest of all, but still running
    txn.put(makeJob(3, core::JobState::Failed));
    txn.put(makeJob(4, core::JobState::Queued));
    txn.put(makeJob(5, core::JobState::Cancelled));
    txn.put(makeJob(6, core::JobState::Interrupted));
    txn.put(makeJob(7, core::JobState::Warning));
    txn.commit();
  }
  store.trimJobs(2);
  std::vector<uint64_t> ids;
  for (const auto& j : store.jobs()) ids.push_back(j.id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{7, 6, 4, 2}));

  store.trimJobs(0);
  ids.clear();
  for (const auto& j : store.jobs()) ids.push_back(j.id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{4, 2}));
}

TEST_F(StoreTest, TrimJobsWithRoomToSpareErasesNothing) {
  Store store(stateDir());
  {
    auto txn = store.begin();
    txn.put(makeJob(1, core::JobState::Succeeded));
    txn.put(makeJob(2, core::JobState::Failed));
    txn.commit();
  }
  store.trimJobs(2);
  EXPECT_EQ(store.jobs().size(), 2u);
}

TEST_F(StoreTest, DataFileIsMode0600AndNewDirectory0700) {
  { Store store(stateDir()); }
  struct stat st {};
  ASSERT_EQ(::stat((stateDir() / "data.mdb").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(stateDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(StoreTest, DataFileLeftWorldReadableIsRestrictedOnOpen) {
  { Store store(stateDir()); }
  ASSERT_EQ(::chmod((stateDir() / "data.mdb").c_str(), 0644), 0);
  Store store(stateDir());
  struct stat st {};
  ASSERT_EQ(::stat((stateDir() / "data.mdb").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(StoreTest, RefusesAStoreWithANewerSchemaVersion) {
  {
    Store store(stateDir());
    auto txn = store.begin();
    txn.put(makeVolume("v1"));
    txn.commit();
  }
  const uint32_t newer = kSchemaVersion + 1;
  putRawLmdbRecord(stateDir(), "meta", "schema_version", "\0\0\0"s + static_cast<char>(newer));
  auto error = thrownError([&] { Store store(stateDir()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  const std::string message = error.what();
  EXPECT_NE(message.find("schema version " + std::to_string(newer)), std::string::npos) << message;
  EXPECT_NE(message.find("newer"), std::string::npos) << message;
  EXPECT_NE(message.find((stateDir() / "data.mdb").string()), std::string::npos) << message;
}

TEST_F(StoreTest, RefusesAStoreWithAnUnknownOlderSchemaVersion) {
  { Store store(stateDir()); }
  putRawLmdbRecord(stateDir(), "meta", "schema_version", "\0\0\0\0"s);
  auto error = thrownError([&] { Store store(stateDir()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(error.what()).find("no migration from version 0"), std::string::npos) << error.what();
}

TEST_F(StoreTest, NonLmdbFileFailsNamingThePath) {
  fs::create_directories(stateDir());
  writeFile(stateDir() / "data.mdb", std::string(8192, 'x'));
  auto error = thrownError([&] { Store store(stateDir()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(error.what()).find((stateDir() / "data.mdb").string()), std::string::npos) << error.what();
}

TEST_F(StoreTest, EraseRepositoryAlsoErasesItsSnapshotCache) {
  Store store(stateDir());
  {
    auto txn = store.begin();
    txn.put(makeRepository("r1"));
    txn.put(makeRepository("r2"));
    txn.put(makeSnapshotCache("r1"));
    txn.put(makeSnapshotCache("r2"));
    txn.commit();
  }
  {
    auto txn = store.begin();
    txn.eraseRepository("r1");
    txn.commit();
  }
  EXPECT_FALSE(store.repository("r1"));
  EXPECT_FALSE(store.snapshotCache("r1"));
  EXPECT_TRUE(store.repository("r2"));
  EXPECT_TRUE(store.snapshotCache("r2"));
}

TEST_F(StoreTest, EraseVolumeAndJobRemoveOnlyThatRecord) {
  Store store(stateDir());
  {
    auto txn = store.begin();
    txn.put(makeVolume("v1"));
    txn.put(makeVolume("v2"));
    txn.put(makeJob(1, core::JobState::Succeeded));
    txn.put(makeJob(2, core::JobState::Succeeded));
    txn.commit();
  }
  {
    auto txn = store.begin();
    txn.eraseVolume("v1");
    txn.eraseJob(1);
    txn.eraseVolume("never-existed");
    txn.commit();
  }
  ASSERT_EQ(store.volumes().size(), 1u);
  EXPECT_EQ(store.volumes()[0].id, "v2");
  ASSERT_EQ(store.jobs().size(), 1u);
  EXPECT_EQ(store.jobs()[0].id, 2u);
}

TEST_F(StoreTest, CorruptedValueFailsNamingTheRecord) {
  {
    Store store(stateDir());
    auto txn = store.begin();
    txn.put(makeVolume("good"));
    txn.put(makeJob(42, core::JobState::Succeeded));
    txn.commit();
  }
  putRawLmdbRecord(stateDir(), "volumes", "broken", "\x01\xff\xff\xff\xff\xff\xff\xff\xff garbage"s);
  std::string truncatedJob = encodeRecord(makeJob(42, core::JobState::Succeeded));
  truncatedJob.resize(truncatedJob.size() / 2);
  putRawLmdbRecord(stateDir(), "jobs", jobKey(42), truncatedJob);

  Store store(stateDir());
  auto volumeError = thrownError([&] { store.volume("broken"); });
  EXPECT_EQ(volumeError.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(volumeError.what()).find("volumes/broken"), std::string::npos) << volumeError.what();
  auto listError = thrownError([&] { store.volumes(); });
  EXPECT_NE(std::string(listError.what()).find("volumes/broken"), std::string::npos) << listError.what();
  EXPECT_TRUE(store.volume("good")) << "intact records stay readable";

  auto jobError = thrownError([&] { store.job(42); });
  EXPECT_EQ(jobError.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(jobError.what()).find("jobs/42"), std::string::npos) << jobError.what();
  EXPECT_NE(std::string(thrownError([&] { store.jobs(); }).what()).find("jobs/42"), std::string::npos);
}

TEST_F(StoreTest, CorruptLengthIsCaughtBeforeAllocating) {
  { Store store(stateDir()); }
  // Endianness flag, class version 1, then an id length of 2^40 bytes in a 21-byte record.
  putRawLmdbRecord(stateDir(), "volumes", "huge", "\x01\x01\0\0\0\0\0\0\0\0\x01\0\0rest-of-it"s);
  Store store(stateDir());
  auto error = thrownError([&] { store.volume("huge"); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(error.what()).find("volumes/huge"), std::string::npos) << error.what();
  EXPECT_NE(std::string(error.what()).find("exceeds the record"), std::string::npos) << error.what();
}

TEST_F(StoreTest, TrailingBytesAfterARecordAreCorruption) {
  { Store store(stateDir()); }
  putRawLmdbRecord(stateDir(), "volumes", "v1", encodeRecord(makeVolume("v1")) + "extra");
  Store store(stateDir());
  auto error = thrownError([&] { store.volume("v1"); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(error.what()).find("volumes/v1"), std::string::npos) << error.what();
}

TEST_F(StoreTest, OutOfRangeJobStateIsCorruption) {
  // Locate the state field by encoding two jobs that differ only there.
  std::string queued = encodeRecord(makeJob(5, core::JobState::Queued));
  std::string interrupted = encodeRecord(makeJob(5, core::JobState::Interrupted));
  ASSERT_EQ(queued.size(), interrupted.size());
  size_t at = 0;
  while (at < queued.size() && queued[at] == interrupted[at]) ++at;
  ASSERT_LT(at, queued.size());
  queued[at] = 99;
  { Store store(stateDir()); }
  putRawLmdbRecord(stateDir(), "jobs", jobKey(5), queued);
  Store store(stateDir());
  auto error = thrownError([&] { store.job(5); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(error.what()).find("jobs/5"), std::string::npos) << error.what();
  EXPECT_NE(std::string(error.what()).find("out of range"), std::string::npos) << error.what();
}

TEST_F(StoreTest, EverythingSurvivesCloseAndReopen) {
  const auto volume = makeVolume("v1");
  const auto repository = makeRepository("r1");
  const auto cache = makeSnapshotCache("r1");
  core::Job job;
  {
    Store store(stateDir());
    auto txn = store.begin();
    txn.put(volume);
    txn.put(repository);
    job = makeJob(txn.allocateJobId(), core::JobState::Succeeded);
    txn.put(job);
    txn.put(cache);
    txn.commit();
  }
  Store store(stateDir());
  EXPECT_EQ(store.schemaVersion(), kSchemaVersion);
  ASSERT_TRUE(store.volume("v1"));
  expectEqual(*store.volume("v1"), volume);
  ASSERT_TRUE(store.repository("r1"));
  expectEqual(*store.repository("r1"), repository);
  ASSERT_TRUE(store.job(job.id));
  expectEqual(*store.job(job.id), job);
  ASSERT_TRUE(store.snapshotCache("r1"));
  expectEqual(*store.snapshotCache("r1"), cache);
}

}  // namespace
}  // namespace zerobyte::store
