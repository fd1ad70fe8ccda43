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

inline constexpr uint32_t kSchemaVersion = 1;

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
  void eraseVolume(const std::string& id);
  // Also erases the repository's snapshot cache.
  void eraseRepository(const std::string& id);
  void eraseJob(uint64_t id);
  // The next job id (a persistent counter).
  uint64_t allocateJobId();
  // Records that the master key is the systemd credential `name` (meta "master_key_credential"),
  // in the same transaction as the secrets re-sealed with it.
  void setMasterKeyCredential(const std::string& name);
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
  std::vector<core::Repository> repositories() const;
  std::optional<core::Repository> repository(const std::string& id) const;
  std::optional<core::Job> job(uint64_t id) const;
  // Newest first, at most `limit` (0: all).
  std::vector<core::Job> jobs(size_t limit = 0) const;
  std::optional<core::SnapshotCache> snapshotCache(const std::string& repositoryId) const;

  Transaction begin();
  // Erases the oldest finished jobs beyond the newest `keep` finished ones.
  void trimJobs(size_t keep);

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace zerobyte::store
