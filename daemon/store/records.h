// How the domain records are laid out in the store: cereal serialize functions with class versions.
#pragma once

#include "daemon/core/model.h"

#include <cereal/archives/portable_binary.hpp>
#include <cereal/cereal.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

namespace zerobyte::store {

// While one record is decoded: its length in bytes. No string or vector inside a record can
// hold more elements than the record has bytes, so a larger length read is corruption.
inline thread_local uint64_t tDecodeSizeLimit = std::numeric_limits<uint64_t>::max();

// Sets tDecodeSizeLimit for the lifetime of one decode.
class DecodeSizeLimit {
 public:
  explicit DecodeSizeLimit(uint64_t recordSize) : m_previous(tDecodeSizeLimit) { tDecodeSizeLimit = recordSize; }
  ~DecodeSizeLimit() { tDecodeSizeLimit = m_previous; }
  DecodeSizeLimit(const DecodeSizeLimit&) = delete;
  DecodeSizeLimit& operator=(const DecodeSizeLimit&) = delete;

 private:
  uint64_t m_previous;
};

}  // namespace zerobyte::store

namespace cereal {

// cereal resizes a string or vector to the length it reads before reading the contents, so a
// corrupt length would allocate gigabytes (or abort) before the short record is noticed.
// Every string and vector length passes through here; as a non-template it is preferred over
// cereal's generic SizeTag serializer for this one archive.
inline void CEREAL_SERIALIZE_FUNCTION_NAME(PortableBinaryInputArchive& ar, SizeTag<size_type&>& tag) {
  ar(tag.size);
  if (tag.size > zerobyte::store::tDecodeSizeLimit)
    throw Exception("a length of " + std::to_string(tag.size) + " exceeds the record's " +
                    std::to_string(zerobyte::store::tDecodeSizeLimit) + " bytes");
}

}  // namespace cereal

// A record's layout may only grow: bump its CEREAL_CLASS_VERSION below and append the new
// fields under `if (version >= N)`, so records written by older builds still load (their new
// fields keep the defaults). Never reorder or remove a field; bump store::kSchemaVersion only
// when old records need rewriting (a migration in store.cpp).
//
// The functions live in the records' own namespace so cereal finds them by argument-dependent lookup.
namespace zerobyte::core {
namespace records_detail {

// Enums are stored as fixed-width integers, not as whatever underlying type the compiler picked;
// an out-of-range value on load is corruption, not a new state to pass on.
template <class Archive, class E>
void enumField(Archive& ar, E& value, E last) {
  static_assert(std::is_enum_v<E>);
  if constexpr (Archive::is_loading::value) {
    uint32_t raw = 0;
    ar(raw);
    if (raw > static_cast<uint32_t>(last))
      throw cereal::Exception("enum value " + std::to_string(raw) + " is out of range");
    value = static_cast<E>(raw);
  } else {
    uint32_t raw = static_cast<uint32_t>(value);
    ar(raw);
  }
}

}  // namespace records_detail

template <class Archive>
void serialize(Archive& ar, SealedSecret& s, const std::uint32_t /*version*/) {
  ar(s.keyId, s.nonce, s.ciphertext);
}

template <class Archive>
void serialize(Archive& ar, RcloneOption& o, const std::uint32_t /*version*/) {
  ar(o.name, o.value, o.secret);
}

template <class Archive>
void serialize(Archive& ar, VolumeRemote& r, const std::uint32_t /*version*/) {
  ar(r.driver, r.host, r.port, r.user, r.remotePath, r.share, r.domain, r.smbVersion, r.guest, r.url, r.tlsVerify, r.nfsVersion,
     r.knownHosts, r.hostKeyCheck, r.rcloneType, r.rcloneOptions, r.mountOptions, r.readWrite, r.autoRemount, r.keepMounted);
}

template <class Archive>
void serialize(Archive& ar, Volume& v, const std::uint32_t version) {
  ar(v.id, v.name, v.type, v.path, v.declared, v.ownerUid, v.created);
  // Before version 2 only root and the admin group could create resources: they stay privileged.
  if (version >= 2) ar(v.groupGid, v.privileged);
  if (version >= 3) ar(v.remote, v.password, v.passwordRef, v.privateKey, v.privateKeyRef);
}

template <class Archive>
void serialize(Archive& ar, MountRecord& m, const std::uint32_t /*version*/) {
  ar(m.volumeId, m.path, m.driver, m.mounted);
}

template <class Archive>
void serialize(Archive& ar, Repository& r, const std::uint32_t version) {
  ar(r.id, r.name, r.type, r.path, r.declared, r.ownerUid, r.created, r.password, r.passwordRef);
  if (version >= 2) ar(r.pendingPassword);
  if (version >= 3) ar(r.groupGid, r.privileged);
  if (version >= 4) ar(r.remote, r.credentials);
}

template <class Archive>
void serialize(Archive& ar, RepositoryRemote& r, const std::uint32_t /*version*/) {
  ar(r.host, r.port, r.user, r.url, r.endpoint, r.bucket, r.region, r.accessKeyId, r.pathStyle, r.account, r.endpointSuffix,
     r.project, r.userDomain, r.projectDomain, r.knownHosts, r.hostKeyCheck, r.rcloneType, r.rcloneOptions, r.caCert,
     r.insecureTls, r.limitUploadKiB, r.limitDownloadKiB, r.compression);
}

template <class Archive>
void serialize(Archive& ar, RepositoryCredential& c, const std::uint32_t /*version*/) {
  ar(c.name, c.sealed, c.ref);
}

template <class Archive>
void serialize(Archive& ar, JobProgress& p, const std::uint32_t /*version*/) {
  ar(p.percent, p.bytesDone, p.bytesTotal, p.filesDone, p.filesTotal, p.secondsElapsed, p.secondsRemaining,
     p.currentFiles);
}

template <class Archive>
void serialize(Archive& ar, BackupSummary& s, const std::uint32_t /*version*/) {
  ar(s.snapshotId, s.filesNew, s.filesChanged, s.filesUnmodified, s.dirsNew, s.dirsChanged, s.dirsUnmodified,
     s.dataAdded, s.totalFilesProcessed, s.totalBytesProcessed, s.totalDuration);
}

template <class Archive>
void serialize(Archive& ar, Job& j, const std::uint32_t version) {
  ar(j.id);
  records_detail::enumField(ar, j.operation, kLastJobOperation);
  records_detail::enumField(ar, j.state, kLastJobState);
  ar(j.repositoryId, j.repositoryName, j.volumeId, j.volumeName, j.snapshot, j.target, j.tags, j.excludes,
     j.includes, j.startedByUid, j.created, j.started, j.finished, j.progress, j.message, j.warnings, j.summary,
     j.log, j.childPid);
  if (version >= 2) ar(j.runAsUid);
  if (version >= 3) ar(j.scheduleId, j.scheduleName, j.trigger, j.attempt, j.readDataSubset);
  if (version >= 4) ar(j.error);
}

template <class Archive>
void serialize(Archive& ar, RetentionPolicy& p, const std::uint32_t /*version*/) {
  ar(p.keepLast, p.keepHourly, p.keepDaily, p.keepWeekly, p.keepMonthly, p.keepYearly, p.keepWithin, p.keepTags);
}

template <class Archive>
void serialize(Archive& ar, Schedule& s, const std::uint32_t /*version*/) {
  ar(s.id, s.name);
  records_detail::enumField(ar, s.kind, kLastScheduleKind);
  ar(s.readDataSubset, s.volumeName, s.repositoryName, s.cron, s.timeZone, s.jitterSeconds, s.enabled, s.includes, s.excludes,
     s.excludeIfPresent, s.oneFileSystem, s.tags, s.compression, s.retries, s.retryDelaySeconds, s.retention, s.ownerUid,
     s.groupGid, s.declared, s.created, s.lastSlot, s.lastJobId, s.lastSuccess, s.lastSuccessJobId, s.lastFailure,
     s.lastFailureJobId, s.lastFailureMessage);
}

template <class Archive>
void serialize(Archive& ar, Snapshot& s, const std::uint32_t /*version*/) {
  ar(s.id, s.shortId, s.time, s.hostname, s.username, s.paths, s.tags, s.parent, s.tree);
}

template <class Archive>
void serialize(Archive& ar, SnapshotCache& c, const std::uint32_t /*version*/) {
  ar(c.repositoryId, c.refreshed, c.snapshots);
}

template <class Archive>
void serialize(Archive& ar, Node& n, const std::uint32_t /*version*/) {
  ar(n.name, n.type, n.path, n.size, n.mode, n.permissions, n.uid, n.gid, n.mtime, n.linkTarget);
}

template <class Archive>
void serialize(Archive& ar, AuditEntry& e, const std::uint32_t /*version*/) {
  ar(e.id, e.time, e.callerUid, e.callerPid, e.transport, e.action, e.method, e.resource, e.result);
}

}  // namespace zerobyte::core

CEREAL_CLASS_VERSION(zerobyte::core::SealedSecret, 1)
CEREAL_CLASS_VERSION(zerobyte::core::Volume, 3)      // 2: groupGid, privileged; 3: remote, password, privateKey
CEREAL_CLASS_VERSION(zerobyte::core::RcloneOption, 1)
CEREAL_CLASS_VERSION(zerobyte::core::VolumeRemote, 1)
CEREAL_CLASS_VERSION(zerobyte::core::MountRecord, 1)
CEREAL_CLASS_VERSION(zerobyte::core::Repository, 4)  // 2: pendingPassword; 3: groupGid, privileged; 4: remote, credentials
CEREAL_CLASS_VERSION(zerobyte::core::RepositoryRemote, 1)
CEREAL_CLASS_VERSION(zerobyte::core::RepositoryCredential, 1)
CEREAL_CLASS_VERSION(zerobyte::core::JobProgress, 1)
CEREAL_CLASS_VERSION(zerobyte::core::BackupSummary, 1)
CEREAL_CLASS_VERSION(zerobyte::core::Job, 4)  // 2: runAsUid; 3: scheduleId, scheduleName, trigger, attempt, readDataSubset; 4: error
CEREAL_CLASS_VERSION(zerobyte::core::RetentionPolicy, 1)
CEREAL_CLASS_VERSION(zerobyte::core::Schedule, 1)
CEREAL_CLASS_VERSION(zerobyte::core::Snapshot, 1)
CEREAL_CLASS_VERSION(zerobyte::core::SnapshotCache, 1)
CEREAL_CLASS_VERSION(zerobyte::core::Node, 1)
CEREAL_CLASS_VERSION(zerobyte::core::AuditEntry, 1)
