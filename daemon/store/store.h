// The daemon's state: one LMDB environment with typed tables of cereal portable-binary records.
#pragma once

#include "daemon/core/model.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace zerobyte::store {

// 2: the audit table and its id counter (meta "next_audit_id").
inline constexpr uint32_t kSchemaVersion = 2;

// What Store::auditEntries returns: newest first, only entries matching every filter that is set.
struct AuditQuery {
  std::optional<core::Timestamp> since;  // entries at or after this time
  std::optional<uint32_t> callerUid;
  std::optional<std::string> action;  // a full polkit action id
  size_t limit = 100;                 // at most this many (0: all)
};

class Store;

// A write transaction: every change in it commits at once or not at all.
// Destroying it without commit() aborts it.
class Transaction {
 public:
  ~Transaction();
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) = delete;

  void put(const core::Volume& volume);
  void put(const core::Repository& repository);
  void put(const core::Job& job);
  void put(const core::SnapshotCache& cache);
  void put(const core::Schedule& schedule);
  void eraseSchedule(const std::string& id);
  void eraseVolume(const std::string& id);
  // What zerobyted mounted (by volume id), so that a restart finds what it left behind.
  void put(const core::MountRecord& mount);
  void eraseMount(const std::string& volumeId);
  // Also erases the repository's snapshot cache.
  void eraseRepository(const std::string& id);
  void eraseJob(uint64_t id);
  // The next job id (a persistent counter).
  uint64_t allocateJobId();
  // Records that the master key is the systemd credential `name` (meta "master_key_credential"),
  // in the same transaction as the secrets re-sealed with it.
  void setMasterKeyCredential(const std::string& name);
  // Appends to the audit trail with the next id of its sequence (entry.id is ignored); returns that id.
  uint64_t appendAudit(const core::AuditEntry& entry);
  void commit();

 private:
  friend class Store;
  struct Impl;
  explicit Transaction(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

class Store {
 public:
  // Opens or creates <directory>/data.mdb (mode 0600) and runs migrations.
  // Throws Error(Failed) naming the path and the cause.
  explicit Store(const std::filesystem::path& directory);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  uint32_t schemaVersion() const;
  // The credential a master key rotation recorded (see Transaction::setMasterKeyCredential).
  std::optional<std::string> masterKeyCredential() const;

  std::vector<core::Volume> volumes() const;
  std::optional<core::Volume> volume(const std::string& id) const;
  std::vector<core::MountRecord> mounts() const;
  std::vector<core::Repository> repositories() const;
  std::optional<core::Repository> repository(const std::string& id) const;
  std::optional<core::Job> job(uint64_t id) const;
  // Newest first, at most `limit` (0: all).
  std::vector<core::Job> jobs(size_t limit = 0) const;
  std::optional<core::SnapshotCache> snapshotCache(const std::string& repositoryId) const;
  std::vector<core::Schedule> schedules() const;
  std::optional<core::Schedule> schedule(const std::string& id) const;

  Transaction begin();
  // Erases the oldest finished jobs beyond the newest `keep` finished ones.
  void trimJobs(size_t keep);

  // The audit trail. Ids grow with every entry, so id order is the order things happened in.
  // Appends in a transaction of its own; returns the entry's id.
  uint64_t appendAudit(const core::AuditEntry& entry);
  // Newest first. The scan stops at the first entry older than query.since.
  std::vector<core::AuditEntry> auditEntries(const AuditQuery& query) const;
  size_t auditCount() const;
  // Erases, oldest first, entries older than `olderThan` and those beyond the newest `maxEntries`,
  // but at most `maxWork` of them, so that one call never holds the writer for long.
  // Returns how many it erased; call again while it returns `maxWork`.
  size_t pruneAudit(core::Timestamp olderThan, size_t maxEntries, size_t maxWork);

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace zerobyte::store
