// The LMDB environment behind Store and Transaction: tables, record encoding, schema version, migrations.
#include "daemon/store/store.h"

#include "common/errors.h"
#include "daemon/store/records.h"

#include <cereal/archives/portable_binary.hpp>
#include <lmdb.h>
#include <sys/stat.h>

#include <array>
#include <sstream>
#include <string_view>
#include <system_error>

namespace zerobyte::store {
namespace {

constexpr size_t kMapSize = size_t{1} << 30;
constexpr unsigned kMaxTables = 16;
constexpr std::string_view kSchemaVersionKey = "schema_version";
constexpr std::string_view kNextJobIdKey = "next_job_id";
constexpr std::string_view kMasterKeyCredentialKey = "master_key_credential";
constexpr std::string_view kNextAuditIdKey = "next_audit_id";
constexpr uint64_t kFirstJobId = 1;
constexpr uint64_t kFirstAuditId = 1;

struct EnvCloser {
  void operator()(MDB_env* env) const noexcept { mdb_env_close(env); }
};
using EnvHandle = std::unique_ptr<MDB_env, EnvCloser>;

// Aborting is the default: only an explicit commit releases the handle without aborting.
struct TxnAborter {
  void operator()(MDB_txn* txn) const noexcept { mdb_txn_abort(txn); }
};
using TxnHandle = std::unique_ptr<MDB_txn, TxnAborter>;

struct CursorCloser {
  void operator()(MDB_cursor* cursor) const noexcept { mdb_cursor_close(cursor); }
};
using CursorHandle = std::unique_ptr<MDB_cursor, CursorCloser>;

struct Table {
  std::string_view name;
  MDB_dbi dbi = 0;
};

struct Tables {
  Table meta{"meta"};
  Table volumes{"volumes"};
  Table repositories{"repositories"};
  Table jobs{"jobs"};
  Table snapshots{"snapshots"};
  Table audit{"audit"};
  Table schedules{"schedules"};
  Table mounts{"mounts"};
};

MDB_val asVal(std::string_view bytes) {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

std::string_view asView(const MDB_val& val) { return {static_cast<const char*>(val.mv_data), val.mv_size}; }

template <size_t N>
std::array<char, N> bigEndian(uint64_t value) {
  std::array<char, N> bytes{};
  for (size_t i = 0; i < N; ++i) bytes[N - 1 - i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

uint64_t fromBigEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

// Job keys are big-endian so that LMDB's byte order is id order (cursor order = age).
std::array<char, 8> jobKey(uint64_t id) { return bigEndian<8>(id); }
// Audit keys likewise: the first entry under a cursor is the oldest.
std::array<char, 8> auditKey(uint64_t id) { return bigEndian<8>(id); }

// Keys are ids we wrote ourselves, but a corrupt file may hold anything: keep messages printable.
std::string printableKey(std::string_view key) {
  std::string out;
  for (char c : key) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

// The state a Transaction needs from its Store (Store::Impl itself is private to Store).
struct Environment {
  std::filesystem::path directory;
  EnvHandle env;
  Tables tables;
  bool writerOpen = false;

  std::string dataFile() const { return (directory / "data.mdb").string(); }

  [[noreturn]] void fail(int rc, std::string_view what) const {
    throw Error(ErrorCode::Failed,
                "the store " + dataFile() + ": " + std::string(what) + " failed: " + mdb_strerror(rc));
  }

  [[noreturn]] void corrupt(const Table& table, std::string_view key, std::string_view why) const {
    throw Error(ErrorCode::Failed, "the store record " + std::string(table.name) + "/" + std::string(key) + " in " +
                                       dataFile() + " is corrupt (" + std::string(why) +
                                       "): erase the record or restore the state directory from a backup");
  }

  TxnHandle beginTxn(unsigned flags) const {
    MDB_txn* raw = nullptr;
    if (int rc = mdb_txn_begin(env.get(), nullptr, flags, &raw); rc != 0) fail(rc, "beginning a transaction");
    return TxnHandle(raw);
  }

  std::optional<std::string_view> get(MDB_txn* txn, const Table& table, std::string_view key) const {
    MDB_val k = asVal(key);
    MDB_val v{};
    int rc = mdb_get(txn, table.dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    if (rc != 0) fail(rc, "reading " + std::string(table.name) + "/" + printableKey(key));
    return asView(v);
  }

  void put(MDB_txn* txn, const Table& table, std::string_view key, std::string_view value) const {
    MDB_val k = asVal(key);
    MDB_val v = asVal(value);
    if (int rc = mdb_put(txn, table.dbi, &k, &v, 0); rc != 0)
      fail(rc, "writing " + std::string(table.name) + "/" + printableKey(key));
  }

  // Erasing what is not there is not an error: the caller wanted it gone.
  void erase(MDB_txn* txn, const Table& table, std::string_view key) const {
    MDB_val k = asVal(key);
    int rc = mdb_del(txn, table.dbi, &k, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND) fail(rc, "erasing " + std::string(table.name) + "/" + printableKey(key));
  }

  CursorHandle cursor(MDB_txn* txn, const Table& table) const {
    MDB_cursor* raw = nullptr;
    if (int rc = mdb_cursor_open(txn, table.dbi, &raw); rc != 0)
      fail(rc, "opening a cursor on " + std::string(table.name));
    return CursorHandle(raw);
  }

  // Calls visit(key, value) for each entry in key order (or reverse); stops when visit returns false.
  template <class Visit>
  void scan(MDB_txn* txn, const Table& table, bool reverse, Visit&& visit) const {
    CursorHandle c = cursor(txn, table);
    MDB_val k{}, v{};
    int rc = mdb_cursor_get(c.get(), &k, &v, reverse ? MDB_LAST : MDB_FIRST);
    while (rc == 0) {
      if (!visit(asView(k), asView(v))) return;
      rc = mdb_cursor_get(c.get(), &k, &v, reverse ? MDB_PREV : MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) fail(rc, "reading " + std::string(table.name));
  }

  std::optional<uint64_t> metaNumber(MDB_txn* txn, std::string_view key, size_t width) const {
    auto bytes = get(txn, tables.meta, key);
    if (!bytes) return std::nullopt;
    if (bytes->size() != width)
      corrupt(tables.meta, key, "expected " + std::to_string(width) + " bytes, found " + std::to_string(bytes->size()));
    return fromBigEndian(*bytes);
  }

  void putSchemaVersion(MDB_txn* txn, uint32_t version) const {
    auto bytes = bigEndian<4>(version);
    put(txn, tables.meta, kSchemaVersionKey, {bytes.data(), bytes.size()});
  }

  void putNextJobId(MDB_txn* txn, uint64_t id) const {
    auto bytes = bigEndian<8>(id);
    put(txn, tables.meta, kNextJobIdKey, {bytes.data(), bytes.size()});
  }

  void putNextAuditId(MDB_txn* txn, uint64_t id) const {
    auto bytes = bigEndian<8>(id);
    put(txn, tables.meta, kNextAuditIdKey, {bytes.data(), bytes.size()});
  }

  size_t entries(MDB_txn* txn, const Table& table) const {
    MDB_stat stat{};
    if (int rc = mdb_stat(txn, table.dbi, &stat); rc != 0) fail(rc, "counting " + std::string(table.name));
    return stat.ms_entries;
  }
};

template <class T>
std::string encode(const T& record) {
  std::ostringstream out(std::ios::binary);
  {
    cereal::PortableBinaryOutputArchive archive(out);
    archive(record);
  }
  return std::move(out).str();
}

// Whatever the bytes are, this either yields a record or throws Error(Failed): a damaged file
// must never crash the daemon or hand on half a record.
template <class T>
T decode(const Environment& environment, const Table& table, std::string_view key, std::string_view bytes) {
  T record;
  try {
    DecodeSizeLimit limit(bytes.size());
    std::istringstream in(std::string(bytes), std::ios::binary);
    cereal::PortableBinaryInputArchive archive(in);
    archive(record);
    if (in.peek() != std::char_traits<char>::eof()) environment.corrupt(table, key, "trailing bytes after the record");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    environment.corrupt(table, key, e.what());
  }
  return record;
}

std::string jobKeyText(std::string_view key) {
  return key.size() == 8 ? std::to_string(fromBigEndian(key)) : printableKey(key);
}

template <class T>
std::optional<T> getRecord(const Environment& environment, MDB_txn* txn, const Table& table, std::string_view key,
                           std::string_view keyText) {
  auto bytes = environment.get(txn, table, key);
  if (!bytes) return std::nullopt;
  return decode<T>(environment, table, keyText, *bytes);
}

template <class T>
std::vector<T> allRecords(const Environment& environment, MDB_txn* txn, const Table& table) {
  std::vector<T> records;
  environment.scan(txn, table, false, [&](std::string_view key, std::string_view value) {
    records.push_back(decode<T>(environment, table, printableKey(key), value));
    return true;
  });
  return records;
}

// Schema 1 (every release before the audit trail) had no audit table: openTables() has just
// created it empty; its id counter starts here. Nothing else changes.
void migrateFrom1To2(const Environment& environment, MDB_txn* txn) {
  environment.putNextAuditId(txn, kFirstAuditId);
}

uint64_t appendAuditEntry(const Environment& environment, MDB_txn* txn, const core::AuditEntry& entry) {
  // A counter rather than "last key + 1": ids of pruned entries are never handed out again.
  uint64_t id = environment.metaNumber(txn, kNextAuditIdKey, 8).value_or(kFirstAuditId);
  environment.putNextAuditId(txn, id + 1);
  core::AuditEntry stored = entry;
  stored.id = id;
  auto key = auditKey(id);
  environment.put(txn, environment.tables.audit, {key.data(), key.size()}, encode(stored));
  return id;
}

// Brings a store written by an older build up to kSchemaVersion, one step at a time, inside the
// opening transaction: a migration that throws leaves the old store untouched.
// A new step goes here as `case N: migrateFromNToN+1(environment, txn); break;`.
void migrate(const Environment& environment, MDB_txn* txn, uint32_t from) {
  for (uint32_t version = from; version < kSchemaVersion; ++version) {
    switch (version) {
      case 1:
        migrateFrom1To2(environment, txn);
        break;
      default:
        throw Error(ErrorCode::Failed, "the store " + environment.dataFile() + " has schema version " +
                                           std::to_string(from) + ", and there is no migration from version " +
                                           std::to_string(version) + ": restore the state directory from a backup");
    }
  }
  environment.putSchemaVersion(txn, kSchemaVersion);
}

void openTables(Environment& environment, MDB_txn* txn) {
  for (Table* table : {&environment.tables.meta, &environment.tables.volumes, &environment.tables.repositories,
                       &environment.tables.jobs, &environment.tables.snapshots, &environment.tables.audit,
                       &environment.tables.schedules, &environment.tables.mounts}) {
    std::string name(table->name);
    if (int rc = mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &table->dbi); rc != 0)
      environment.fail(rc, "opening table " + name);
  }
}

void prepareDirectory(const std::filesystem::path& directory) {
  std::error_code ec;
  bool created = std::filesystem::create_directories(directory, ec);
  if (ec)
    throw Error(ErrorCode::Failed, "cannot create the state directory " + directory.string() + ": " + ec.message());
  // Only a directory we made is ours to restrict; an existing one keeps what the admin chose.
  if (created && ::chmod(directory.c_str(), 0700) != 0)
    throw Error(ErrorCode::Failed, "cannot chmod 0700 the state directory " + directory.string() + ": " +
                                       std::generic_category().message(errno));
}

// The file holds sealed secrets and job history: nobody but the daemon's user reads it,
// whatever umask or older build created it.
void restrictDataFile(const Environment& environment) {
  std::string path = environment.dataFile();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(ErrorCode::Failed, "cannot stat " + path + ": " + std::generic_category().message(errno));
  if ((st.st_mode & 07777) != 0600 && ::chmod(path.c_str(), 0600) != 0)
    throw Error(ErrorCode::Failed, "cannot chmod 0600 " + path + ": " + std::generic_category().message(errno));
}

}  // namespace

// ---- Transaction ----

struct Transaction::Impl {
  Environment& environment;
  TxnHandle txn;

  Impl(Environment& env, TxnHandle handle) : environment(env), txn(std::move(handle)) {
    environment.writerOpen = true;
  }
  // The body runs before `txn` is destroyed, which aborts it unless commit() released it.
  ~Impl() { environment.writerOpen = false; }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  MDB_txn* handle() const { return txn.get(); }

  static Impl& live(const std::unique_ptr<Impl>& impl) {
    if (!impl) throw Error(ErrorCode::Internal, "the store transaction was used after it was moved or committed");
    return *impl;
  }
};

Transaction::Transaction(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Transaction::~Transaction() = default;
Transaction::Transaction(Transaction&&) noexcept = default;

void Transaction::put(const core::Volume& volume) {
  auto& t = Impl::live(m_impl);
  if (volume.id.empty()) throw Error(ErrorCode::Internal, "cannot store a volume without an id");
  t.environment.put(t.handle(), t.environment.tables.volumes, volume.id, encode(volume));
}

void Transaction::put(const core::Repository& repository) {
  auto& t = Impl::live(m_impl);
  if (repository.id.empty()) throw Error(ErrorCode::Internal, "cannot store a repository without an id");
  t.environment.put(t.handle(), t.environment.tables.repositories, repository.id, encode(repository));
}

void Transaction::put(const core::Job& job) {
  auto& t = Impl::live(m_impl);
  if (job.id == 0) throw Error(ErrorCode::Internal, "cannot store a job without an id (allocateJobId first)");
  auto key = jobKey(job.id);
  t.environment.put(t.handle(), t.environment.tables.jobs, {key.data(), key.size()}, encode(job));
}

void Transaction::put(const core::SnapshotCache& cache) {
  auto& t = Impl::live(m_impl);
  if (cache.repositoryId.empty()) throw Error(ErrorCode::Internal, "cannot store a snapshot cache without a repository id");
  t.environment.put(t.handle(), t.environment.tables.snapshots, cache.repositoryId, encode(cache));
}

void Transaction::put(const core::Schedule& schedule) {
  auto& t = Impl::live(m_impl);
  if (schedule.id.empty()) throw Error(ErrorCode::Internal, "cannot store a schedule without an id");
  t.environment.put(t.handle(), t.environment.tables.schedules, schedule.id, encode(schedule));
}

void Transaction::eraseSchedule(const std::string& id) {
  auto& t = Impl::live(m_impl);
  t.environment.erase(t.handle(), t.environment.tables.schedules, id);
}

void Transaction::put(const core::MountRecord& mount) {
  auto& t = Impl::live(m_impl);
  if (mount.volumeId.empty()) throw Error(ErrorCode::Internal, "cannot store a mount without a volume id");
  t.environment.put(t.handle(), t.environment.tables.mounts, mount.volumeId, encode(mount));
}

void Transaction::eraseMount(const std::string& volumeId) {
  auto& t = Impl::live(m_impl);
  t.environment.erase(t.handle(), t.environment.tables.mounts, volumeId);
}

void Transaction::eraseVolume(const std::string& id) {
  auto& t = Impl::live(m_impl);
  t.environment.erase(t.handle(), t.environment.tables.volumes, id);
}

void Transaction::eraseRepository(const std::string& id) {
  auto& t = Impl::live(m_impl);
  t.environment.erase(t.handle(), t.environment.tables.repositories, id);
  t.environment.erase(t.handle(), t.environment.tables.snapshots, id);
}

void Transaction::eraseJob(uint64_t id) {
  auto& t = Impl::live(m_impl);
  auto key = jobKey(id);
  t.environment.erase(t.handle(), t.environment.tables.jobs, {key.data(), key.size()});
}

uint64_t Transaction::allocateJobId() {
  auto& t = Impl::live(m_impl);
  uint64_t id = t.environment.metaNumber(t.handle(), kNextJobIdKey, 8).value_or(kFirstJobId);
  t.environment.putNextJobId(t.handle(), id + 1);
  return id;
}

void Transaction::setMasterKeyCredential(const std::string& name) {
  auto& t = Impl::live(m_impl);
  if (name.empty()) throw Error(ErrorCode::Internal, "cannot record an empty master key credential name");
  t.environment.put(t.handle(), t.environment.tables.meta, kMasterKeyCredentialKey, name);
}

uint64_t Transaction::appendAudit(const core::AuditEntry& entry) {
  auto& t = Impl::live(m_impl);
  return appendAuditEntry(t.environment, t.handle(), entry);
}

void Transaction::commit() {
  auto& t = Impl::live(m_impl);
  // LMDB frees the transaction whether or not the commit succeeds: never abort it afterwards.
  int rc = mdb_txn_commit(t.handle());
  t.txn.release();
  Environment& environment = t.environment;
  m_impl.reset();
  if (rc != 0) environment.fail(rc, "committing a transaction");
}

// ---- Store ----

// A Transaction refers to this: it must not outlive the Store that began it.
struct Store::Impl : Environment {};

Store::Store(const std::filesystem::path& directory) : m_impl(std::make_unique<Impl>()) {
  Environment& e = *m_impl;
  e.directory = directory;
  prepareDirectory(directory);

  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) e.fail(rc, "creating the environment");
  e.env.reset(raw);
  if (int rc = mdb_env_set_mapsize(raw, kMapSize); rc != 0) e.fail(rc, "setting the map size");
  if (int rc = mdb_env_set_maxdbs(raw, kMaxTables); rc != 0) e.fail(rc, "setting the number of tables");
  // MDB_NOTLS: read transactions are not tied to a thread (a read may start while the loop holds the writer).
  if (int rc = mdb_env_open(raw, directory.c_str(), MDB_NOTLS, 0600); rc != 0) e.fail(rc, "opening");
  restrictDataFile(e);

  TxnHandle txn = e.beginTxn(0);
  openTables(e, txn.get());
  auto stored = e.metaNumber(txn.get(), kSchemaVersionKey, 4);
  if (!stored) {
    e.putSchemaVersion(txn.get(), kSchemaVersion);
    e.putNextJobId(txn.get(), kFirstJobId);
    e.putNextAuditId(txn.get(), kFirstAuditId);
  } else if (*stored > kSchemaVersion) {
    throw Error(ErrorCode::Failed, "the store " + e.dataFile() + " has schema version " + std::to_string(*stored) +
                                       ", newer than this zerobyted understands (" + std::to_string(kSchemaVersion) +
                                       "): it was written by a newer release; downgrading is not supported, install "
                                       "that release again or restore the state directory from a backup");
  } else if (*stored < kSchemaVersion) {
    migrate(e, txn.get(), static_cast<uint32_t>(*stored));
  }
  int rc = mdb_txn_commit(txn.release());
  if (rc != 0) e.fail(rc, "committing the opening transaction");
}

Store::~Store() = default;

uint32_t Store::schemaVersion() const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return static_cast<uint32_t>(m_impl->metaNumber(txn.get(), kSchemaVersionKey, 4).value_or(0));
}

std::optional<std::string> Store::masterKeyCredential() const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  auto value = m_impl->get(txn.get(), m_impl->tables.meta, kMasterKeyCredentialKey);
  if (!value) return std::nullopt;
  if (value->empty() || value->find('/') != std::string_view::npos || value->find('\0') != std::string_view::npos)
    m_impl->corrupt(m_impl->tables.meta, kMasterKeyCredentialKey, "not a credential name");
  return std::string(*value);
}

std::vector<core::Volume> Store::volumes() const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return allRecords<core::Volume>(*m_impl, txn.get(), m_impl->tables.volumes);
}

std::vector<core::MountRecord> Store::mounts() const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return allRecords<core::MountRecord>(*m_impl, txn.get(), m_impl->tables.mounts);
}

std::optional<core::Volume> Store::volume(const std::string& id) const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return getRecord<core::Volume>(*m_impl, txn.get(), m_impl->tables.volumes, id, printableKey(id));
}

std::vector<core::Schedule> Store::schedules() const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return allRecords<core::Schedule>(*m_impl, txn.get(), m_impl->tables.schedules);
}

std::optional<core::Schedule> Store::schedule(const std::string& id) const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return getRecord<core::Schedule>(*m_impl, txn.get(), m_impl->tables.schedules, id, printableKey(id));
}

std::vector<core::Repository> Store::repositories() const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return allRecords<core::Repository>(*m_impl, txn.get(), m_impl->tables.repositories);
}

std::optional<core::Repository> Store::repository(const std::string& id) const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return getRecord<core::Repository>(*m_impl, txn.get(), m_impl->tables.repositories, id, printableKey(id));
}

std::optional<core::Job> Store::job(uint64_t id) const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  auto key = jobKey(id);
  return getRecord<core::Job>(*m_impl, txn.get(), m_impl->tables.jobs, {key.data(), key.size()}, std::to_string(id));
}

std::vector<core::Job> Store::jobs(size_t limit) const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  std::vector<core::Job> result;
  m_impl->scan(txn.get(), m_impl->tables.jobs, true, [&](std::string_view key, std::string_view value) {
    result.push_back(decode<core::Job>(*m_impl, m_impl->tables.jobs, jobKeyText(key), value));
    return limit == 0 || result.size() < limit;
  });
  return result;
}

std::optional<core::SnapshotCache> Store::snapshotCache(const std::string& repositoryId) const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return getRecord<core::SnapshotCache>(*m_impl, txn.get(), m_impl->tables.snapshots, repositoryId,
                                        printableKey(repositoryId));
}

Transaction Store::begin() {
  // LMDB has one writer per environment; a second begin on the same thread would wait for itself forever.
  if (m_impl->writerOpen)
    throw Error(ErrorCode::Internal,
                "a store write transaction is already open: commit or destroy it before beginning another");
  return Transaction(std::make_unique<Transaction::Impl>(*m_impl, m_impl->beginTxn(0)));
}

void Store::trimJobs(size_t keep) {
  Transaction transaction = begin();
  Environment& e = *m_impl;
  MDB_txn* txn = transaction.m_impl->handle();
  std::vector<std::string> doomed;
  size_t finished = 0;
  e.scan(txn, e.tables.jobs, true, [&](std::string_view key, std::string_view value) {
    auto job = decode<core::Job>(e, e.tables.jobs, jobKeyText(key), value);
    if (core::isFinished(job.state) && ++finished > keep) doomed.emplace_back(key);
    return true;
  });
  for (const auto& key : doomed) e.erase(txn, e.tables.jobs, key);
  transaction.commit();
}

uint64_t Store::appendAudit(const core::AuditEntry& entry) {
  Transaction transaction = begin();
  uint64_t id = transaction.appendAudit(entry);
  transaction.commit();
  return id;
}

std::vector<core::AuditEntry> Store::auditEntries(const AuditQuery& query) const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  std::vector<core::AuditEntry> result;
  m_impl->scan(txn.get(), m_impl->tables.audit, true, [&](std::string_view key, std::string_view value) {
    auto entry = decode<core::AuditEntry>(*m_impl, m_impl->tables.audit, jobKeyText(key), value);
    // Newest first: once one is older than `since`, so are the rest (unless the clock was set back).
    if (query.since && entry.time < *query.since) return false;
    if ((!query.callerUid || entry.callerUid == *query.callerUid) && (!query.action || entry.action == *query.action))
      result.push_back(std::move(entry));
    return query.limit == 0 || result.size() < query.limit;
  });
  return result;
}

size_t Store::auditCount() const {
  TxnHandle txn = m_impl->beginTxn(MDB_RDONLY);
  return m_impl->entries(txn.get(), m_impl->tables.audit);
}

size_t Store::pruneAudit(core::Timestamp olderThan, size_t maxEntries, size_t maxWork) {
  Transaction transaction = begin();
  Environment& e = *m_impl;
  MDB_txn* txn = transaction.m_impl->handle();
  const size_t count = e.entries(txn, e.tables.audit);
  const size_t excess = count > maxEntries ? count - maxEntries : 0;
  std::vector<std::string> doomed;
  e.scan(txn, e.tables.audit, false, [&](std::string_view key, std::string_view value) {
    if (doomed.size() >= maxWork) return false;
    if (doomed.size() < excess) {
      doomed.emplace_back(key);
      return true;
    }
    auto entry = decode<core::AuditEntry>(e, e.tables.audit, jobKeyText(key), value);
    if (entry.time >= olderThan) return false;
    doomed.emplace_back(key);
    return true;
  });
  for (const auto& key : doomed) e.erase(txn, e.tables.audit, key);
  transaction.commit();
  return doomed.size();
}

}  // namespace zerobyte::store
