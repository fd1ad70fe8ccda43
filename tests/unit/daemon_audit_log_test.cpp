// AuditLog on a real store: what one record writes, event kinds and their journal ids, pruning, and a store that fails.
#include "daemon/api/audit.h"

#include "daemon/store/store.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

namespace zerobyte::api {
namespace {

using zbtest::unit::TemporaryDirectory;

Caller callerOf(uid_t uid, pid_t pid) {
  Caller c;
  c.uid = uid;
  c.pid = pid;
  c.gid = uid;
  c.transport = "varlink";
  return c;
}

class AuditLogTest : public ::testing::Test {
 protected:
  store::Store& store() { return m_store; }
  std::vector<core::AuditEntry> all() {
    store::AuditQuery q;
    q.limit = 0;
    return m_store.auditEntries(q);
  }

 private:
  TemporaryDirectory m_temp{"zerobyte-audit-log-test"};
  store::Store m_store{m_temp.path() / "state"};
};

TEST_F(AuditLogTest, RecordWritesOneStoreEntryWithTheCallerAndTheActionId) {
  AuditLog audit(store());
  audit.record(callerOf(1000, 4242), Action::Manage, "CreateVolume", "volume home", "ok");
  auto entries = all();
  ASSERT_EQ(entries.size(), 1u);
  const auto& e = entries[0];
  EXPECT_EQ(e.callerUid, 1000u);
  EXPECT_EQ(e.callerPid, 4242);
  EXPECT_EQ(e.transport, "varlink");
  EXPECT_EQ(e.action, "org.zerobyte.daemon1.manage");
  EXPECT_EQ(e.method, "CreateVolume");
  EXPECT_EQ(e.resource, "volume home");
  EXPECT_EQ(e.result, "ok");
  EXPECT_GT(e.time, 1700000000);
}

TEST_F(AuditLogTest, ControlCharactersFromCallersAreEscapedInTheStore) {
  AuditLog audit(store());
  audit.record(callerOf(1000, 1), Action::Manage, "CreateVolume", "volume x\n\x1b[31mforged line", "failed: \r\nx");
  auto entries = all();
  ASSERT_EQ(entries.size(), 1u);
  for (const std::string& text : {entries[0].resource, entries[0].result})
    EXPECT_TRUE(std::none_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
        << text;
}

TEST_F(AuditLogTest, EventKindsFollowTheResultAndEachHasItsOwnMessageId) {
  EXPECT_EQ(auditEventOf("ok"), AuditEvent::Changed);
  EXPECT_EQ(auditEventOf("rotated the master key from 1 to 2"), AuditEvent::Changed);
  EXPECT_EQ(auditEventOf("denied"), AuditEvent::Denied);
  EXPECT_EQ(auditEventOf("denied: polkit is unreachable"), AuditEvent::Denied);
  EXPECT_EQ(auditEventOf("failed: NotFound"), AuditEvent::Failed);
  EXPECT_EQ(auditEventOf("not revealed: NotFound"), AuditEvent::Failed);
  EXPECT_EQ(auditEventOf("master key rotation failed: no such file"), AuditEvent::Failed);
  EXPECT_EQ(auditEventOf("revealed the password"), AuditEvent::SecretRevealed);
  std::set<std::string_view> ids;
  for (AuditEvent event : {AuditEvent::Changed, AuditEvent::Denied, AuditEvent::Failed, AuditEvent::SecretRevealed}) {
    std::string_view id = auditMessageId(event);
    EXPECT_EQ(id.size(), 32u);
    EXPECT_TRUE(std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
        << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 4u);
  // Fixed for all releases: admins filter and alert on them (docs/security.md).
  EXPECT_EQ(auditMessageId(AuditEvent::Denied), "ed6c9a94bfbb4380997fb87e537e565f");
}

TEST_F(AuditLogTest, AStoreThatCannotBeWrittenDoesNotThrowIntoTheRequest) {
  AuditLog audit(store());
  {
    // An open writer makes every other write transaction fail (Error Internal).
    auto blocking = store().begin();
    EXPECT_NO_THROW(audit.record(callerOf(0, 1), Action::Admin, "RotateMasterKey", "", "ok"));
  }
  EXPECT_TRUE(all().empty());
  audit.record(callerOf(0, 1), Action::Admin, "RotateMasterKey", "", "ok");
  EXPECT_EQ(all().size(), 1u) << "the next record is written again";
}

TEST_F(AuditLogTest, SetLimitsPrunesTheOldestBeyondTheCount) {
  for (int i = 0; i < 150; ++i) {
    core::AuditEntry e;
    e.time = 2000000000 + i;  // far from the age limit
    e.method = "M" + std::to_string(i);
    store().appendAudit(e);
  }
  AuditLog audit(store());
  audit.setLimits(180, 100);
  auto entries = all();
  ASSERT_EQ(entries.size(), 100u);
  EXPECT_EQ(entries.back().method, "M50") << "the oldest went first";
}

TEST_F(AuditLogTest, SetLimitsPrunesEntriesOlderThanTheAge) {
  core::AuditEntry old;
  old.time = 1000;  // 1970
  store().appendAudit(old);
  AuditLog audit(store());
  audit.record(callerOf(0, 1), Action::Manage, "CreateVolume", "volume a", "ok");
  auto entries = all();
  ASSERT_EQ(entries.size(), 1u) << "the first record after start prunes with the default limits";
  EXPECT_EQ(entries[0].method, "CreateVolume");
  audit.setLimits(1, 100000);
  EXPECT_EQ(all().size(), 1u) << "a fresh entry is within a day";
}

TEST_F(AuditLogTest, RecordsKeepTheTrailWithinItsCountAsTheyGo) {
  AuditLog audit(store());
  audit.setLimits(180, 100);
  for (size_t i = 0; i < 3 * AuditLog::kPruneEvery; ++i)
    audit.record(callerOf(0, 1), Action::Manage, "CreateVolume", "volume v" + std::to_string(i), "ok");
  EXPECT_LE(store().auditCount(), 100u + AuditLog::kPruneEvery);
  EXPECT_GE(store().auditCount(), 100u);
}

}  // namespace
}  // namespace zerobyte::api
