// The store's audit table: ids, newest-first queries with filters, bounded pruning, and the upgrade of a schema 1 store.
#include "daemon/store/store.h"

#include "common/errors.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <filesystem>
#include <memory>
#include <string>

namespace zerobyte::store {
namespace {

namespace fs = std::filesystem;
using zbtest::unit::TemporaryDirectory;

constexpr std::string_view kManage = "org.zerobyte.daemon1.manage";
constexpr std::string_view kAdmin = "org.zerobyte.daemon1.admin";

class StoreAuditTest : public ::testing::Test {
 protected:
  fs::path stateDir() const { return m_temp.path() / "state"; }

 private:
  TemporaryDirectory m_temp{"zerobyte-store-audit-test"};
};

core::AuditEntry makeEntry(core::Timestamp time, uint32_t uid, std::string_view action, std::string method) {
  core::AuditEntry e;
  e.time = time;
  e.callerUid = uid;
  e.callerPid = static_cast<int32_t>(4000 + uid);
  e.transport = "varlink";
  e.action = std::string(action);
  e.method = std::move(method);
  e.resource = "volume home";
  e.result = "ok";
  return e;
}

std::vector<uint64_t> idsOf(const std::vector<core::AuditEntry>& entries) {
  std::vector<uint64_t> ids;
  for (const auto& e : entries) ids.push_back(e.id);
  return ids;
}

AuditQuery all() {
  AuditQuery q;
  q.limit = 0;
  return q;
}

// Turns the environment back into what a release before the audit trail left behind: schema 1,
// no audit table, no audit counter. The Store must be closed (LMDB opens an environment once per process).
void downgradeToSchema1(const fs::path& directory) {
  MDB_env* rawEnv = nullptr;
  ASSERT_EQ(mdb_env_create(&rawEnv), 0);
  const std::unique_ptr<MDB_env, decltype(&mdb_env_close)> env(rawEnv, &mdb_env_close);
  mdb_env_set_maxdbs(env.get(), 8);
  mdb_env_set_mapsize(env.get(), size_t{1} << 30);
  ASSERT_EQ(mdb_env_open(env.get(), directory.c_str(), MDB_NOTLS, 0600), 0);
  MDB_txn* rawTxn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env.get(), nullptr, 0, &rawTxn), 0);
  std::unique_ptr<MDB_txn, decltype(&mdb_txn_abort)> txn(rawTxn, &mdb_txn_abort);
  MDB_dbi meta = 0, audit = 0;
  ASSERT_EQ(mdb_dbi_open(txn.get(), "meta", 0, &meta), 0);
  ASSERT_EQ(mdb_dbi_open(txn.get(), "audit", 0, &audit), 0);
  ASSERT_EQ(mdb_drop(txn.get(), audit, 1), 0);  // 1: delete the table itself, not just its entries
  std::string versionKey = "schema_version", version("\0\0\0\x01", 4), counterKey = "next_audit_id";
  MDB_val k{versionKey.size(), versionKey.data()}, v{version.size(), version.data()};
  ASSERT_EQ(mdb_put(txn.get(), meta, &k, &v, 0), 0);
  MDB_val c{counterKey.size(), counterKey.data()};
  ASSERT_EQ(mdb_del(txn.get(), meta, &c, nullptr), 0);
  ASSERT_EQ(mdb_txn_commit(txn.release()), 0);
}

bool hasTable(const fs::path& directory, const char* name) {
  MDB_env* rawEnv = nullptr;
  if (mdb_env_create(&rawEnv) != 0) return false;
  const std::unique_ptr<MDB_env, decltype(&mdb_env_close)> env(rawEnv, &mdb_env_close);
  mdb_env_set_maxdbs(env.get(), 8);
  mdb_env_set_mapsize(env.get(), size_t{1} << 30);
  if (mdb_env_open(env.get(), directory.c_str(), MDB_NOTLS | MDB_RDONLY, 0600) != 0) return false;
  MDB_txn* rawTxn = nullptr;
  if (mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &rawTxn) != 0) return false;
  std::unique_ptr<MDB_txn, decltype(&mdb_txn_abort)> txn(rawTxn, &mdb_txn_abort);
  MDB_dbi dbi = 0;
  return mdb_dbi_open(txn.get(), name, 0, &dbi) == 0;
}

TEST_F(StoreAuditTest, AppendedEntriesGetIncreasingIdsAndKeepEveryField) {
  Store store(stateDir());
  core::AuditEntry entry = makeEntry(1700000000, 1000, kManage, "CreateVolume");
  entry.id = 999;  // ignored: the store numbers entries itself
  entry.callerPid = -1;
  entry.resource = "";
  entry.result = "failed: AlreadyExists";
  EXPECT_EQ(store.appendAudit(entry), 1u);
  EXPECT_EQ(store.appendAudit(makeEntry(1700000001, 0, kAdmin, "RotateMasterKey")), 2u);

  auto entries = store.auditEntries(all());
  ASSERT_EQ(entries.size(), 2u);
  const core::AuditEntry& first = entries[1];
  EXPECT_EQ(first.id, 1u);
  EXPECT_EQ(first.time, 1700000000);
  EXPECT_EQ(first.callerUid, 1000u);
  EXPECT_EQ(first.callerPid, -1);
  EXPECT_EQ(first.transport, "varlink");
  EXPECT_EQ(first.action, kManage);
  EXPECT_EQ(first.method, "CreateVolume");
  EXPECT_EQ(first.resource, "");
  EXPECT_EQ(first.result, "failed: AlreadyExists");
  EXPECT_EQ(store.auditCount(), 2u);
}

TEST_F(StoreAuditTest, EntriesAreNewestFirstAndHonourTheLimit) {
  Store store(stateDir());
  for (int i = 0; i < 5; ++i) store.appendAudit(makeEntry(1700000000 + i, 0, kManage, "M" + std::to_string(i)));
  EXPECT_EQ(idsOf(store.auditEntries(all())), (std::vector<uint64_t>{5, 4, 3, 2, 1}));
  AuditQuery two;
  two.limit = 2;
  auto newest = store.auditEntries(two);
  EXPECT_EQ(idsOf(newest), (std::vector<uint64_t>{5, 4}));
  EXPECT_EQ(newest[0].method, "M4");
}

TEST_F(StoreAuditTest, FiltersBySinceUidAndActionTogether) {
  Store store(stateDir());
  store.appendAudit(makeEntry(100, 1000, kManage, "CreateVolume"));  // 1
  store.appendAudit(makeEntry(200, 1001, kManage, "CreateVolume"));  // 2
  store.appendAudit(makeEntry(300, 1000, kAdmin, "RotateMasterKey"));  // 3
  store.appendAudit(makeEntry(400, 1000, kManage, "DeleteVolume"));  // 4

  AuditQuery since = all();
  since.since = 200;
  EXPECT_EQ(idsOf(store.auditEntries(since)), (std::vector<uint64_t>{4, 3, 2})) << "since includes its own second";
  AuditQuery uid = all();
  uid.callerUid = 1000;
  EXPECT_EQ(idsOf(store.auditEntries(uid)), (std::vector<uint64_t>{4, 3, 1}));
  AuditQuery action = all();
  action.action = std::string(kManage);
  EXPECT_EQ(idsOf(store.auditEntries(action)), (std::vector<uint64_t>{4, 2, 1}));
  AuditQuery combined;
  combined.since = 150;
  combined.callerUid = 1000;
  combined.action = std::string(kManage);
  combined.limit = 10;
  EXPECT_EQ(idsOf(store.auditEntries(combined)), (std::vector<uint64_t>{4}));
  AuditQuery nobody = all();
  nobody.callerUid = 4242;
  EXPECT_TRUE(store.auditEntries(nobody).empty());
  // The limit counts matches, not entries looked at.
  AuditQuery limited;
  limited.callerUid = 1000;
  limited.limit = 2;
  EXPECT_EQ(idsOf(store.auditEntries(limited)), (std::vector<uint64_t>{4, 3}));
}

TEST_F(StoreAuditTest, PruneByCountErasesTheOldestInBoundedSteps) {
  Store store(stateDir());
  for (int i = 0; i < 10; ++i) store.appendAudit(makeEntry(1700000000 + i, 0, kManage, "M"));
  // Keep 4: 6 must go, but at most 4 per call.
  EXPECT_EQ(store.pruneAudit(0, 4, 4), 4u);
  EXPECT_EQ(store.auditCount(), 6u);
  EXPECT_EQ(store.pruneAudit(0, 4, 4), 2u);
  EXPECT_EQ(idsOf(store.auditEntries(all())), (std::vector<uint64_t>{10, 9, 8, 7}));
  EXPECT_EQ(store.pruneAudit(0, 4, 4), 0u) << "within bounds: nothing more to erase";
}

TEST_F(StoreAuditTest, PruneByAgeErasesOnlyEntriesOlderThanTheCutoff) {
  Store store(stateDir());
  for (int i = 0; i < 6; ++i) store.appendAudit(makeEntry(1000 + i * 100, 0, kManage, "M"));  // 1000..1500
  EXPECT_EQ(store.pruneAudit(1300, 100000, 1000), 3u);
  auto left = store.auditEntries(all());
  ASSERT_EQ(left.size(), 3u);
  EXPECT_EQ(left.back().time, 1300) << "an entry exactly at the cutoff stays";
  EXPECT_EQ(store.pruneAudit(1300, 100000, 1000), 0u);
}

TEST_F(StoreAuditTest, IdsAreNeverReusedAfterPruningOrReopening) {
  {
    Store store(stateDir());
    for (int i = 0; i < 3; ++i) store.appendAudit(makeEntry(100, 0, kManage, "M"));
    EXPECT_EQ(store.pruneAudit(1000, 100000, 1000), 3u);
    EXPECT_EQ(store.auditCount(), 0u);
  }
  Store reopened(stateDir());
  EXPECT_EQ(reopened.appendAudit(makeEntry(2000, 0, kManage, "M")), 4u);
}

TEST_F(StoreAuditTest, AuditAppendInATransactionIsDiscardedWithIt) {
  Store store(stateDir());
  {
    auto txn = store.begin();
    txn.appendAudit(makeEntry(100, 0, kManage, "M"));
  }  // not committed
  EXPECT_EQ(store.auditCount(), 0u);
  auto txn = store.begin();
  txn.appendAudit(makeEntry(100, 0, kManage, "M"));
  txn.commit();
  EXPECT_EQ(store.auditCount(), 1u);
}

// A state directory written by the release before the audit trail (schema 1) opens, keeps its
// records, and gains an empty audit trail that numbers from 1.
TEST_F(StoreAuditTest, SchemaOneStoreIsUpgradedKeepingItsData) {
  {
    Store store(stateDir());
    auto txn = store.begin();
    core::Volume volume;
    volume.id = "v1";
    volume.name = "home";
    volume.path = "/home";
    volume.ownerUid = 1000;
    txn.put(volume);
    core::Job job;
    job.id = txn.allocateJobId();
    job.state = core::JobState::Succeeded;
    txn.put(job);
    txn.commit();
  }
  downgradeToSchema1(stateDir());
  ASSERT_FALSE(hasTable(stateDir(), "audit")) << "the downgraded store must look like a schema 1 store";

  {
    Store store(stateDir());
    EXPECT_EQ(store.schemaVersion(), kSchemaVersion);
    auto volume = store.volume("v1");
    ASSERT_TRUE(volume.has_value());
    EXPECT_EQ(volume->name, "home");
    EXPECT_EQ(volume->ownerUid, 1000u);
    EXPECT_EQ(store.jobs().size(), 1u);
    EXPECT_EQ(store.auditCount(), 0u);
    EXPECT_EQ(store.appendAudit(makeEntry(100, 0, kManage, "CreateVolume")), 1u);
    auto txn = store.begin();
    EXPECT_EQ(txn.allocateJobId(), 2u) << "the job counter survives the upgrade";
  }
  Store again(stateDir());
  EXPECT_EQ(again.auditCount(), 1u);
}

TEST_F(StoreAuditTest, CorruptAuditEntryFailsNamingTheRecord) {
  { Store store(stateDir()); store.appendAudit(makeEntry(100, 0, kManage, "M")); }
  zbtest::unit::putRawLmdbRecord(stateDir(), "audit", std::string("\0\0\0\0\0\0\0\x01", 8), "garbage");
  Store store(stateDir());
  auto error = zbtest::unit::thrownError([&] { store.auditEntries(all()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(error.what()).find("audit/1"), std::string::npos) << error.what();
}

}  // namespace
}  // namespace zerobyte::store
