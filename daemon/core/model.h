// The domain records: volumes, repositories, jobs and snapshots as the daemon keeps them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::core {

// Seconds since the epoch, UTC.
using Timestamp = int64_t;

// A secret sealed by the vault (AES-256-GCM). Never leaves the daemon.
struct SealedSecret {
  uint32_t keyId = 0;
  std::string nonce;       // 12 bytes
  std::string ciphertext;  // ciphertext followed by the 16-byte tag
  bool empty() const { return ciphertext.empty(); }
};

struct Volume {
  std::string id;
  std::string name;
  std::string type = "directory";
  std::string path;
  bool declared = false;  // from the configuration file: read-only through the API
  uint32_t ownerUid = 0;
  std::optional<uint32_t> groupGid;  // shared with the members of this group
  // Created by root or an admin: restic for it runs as root. Otherwise it runs as ownerUid.
  bool privileged = true;
  Timestamp created = 0;
};

struct Repository {
  std::string id;
  std::string name;
  std::string type = "local";
  std::string path;
  bool declared = false;
  uint32_t ownerUid = 0;
  std::optional<uint32_t> groupGid;  // shared with the members of this group
  bool privileged = true;            // as Volume::privileged
  Timestamp created = 0;
  SealedSecret password;    // stored password, when passwordRef is empty
  std::string passwordRef;  // file://, env://, credential:// (declared repositories)
  // While a password change runs (and after one was interrupted): the new password, which may
  // or may not open the repository yet. Sealed with "repositories/<id>/pending-password".
  SealedSecret pendingPassword;
};

// Check: restic check (exclusive); CheckConnection: opens the repository with its password only (shared).
enum class JobOperation { Backup, Restore, Forget, Init, Import, Unlock, ChangePassword, Check, CheckConnection };
enum class JobState { Queued, Running, Succeeded, Warning, Failed, Cancelled, Interrupted };
// The highest values: the store refuses anything above them as corruption. Add new values last.
inline constexpr JobOperation kLastJobOperation = JobOperation::CheckConnection;
inline constexpr JobState kLastJobState = JobState::Interrupted;

std::string_view toString(JobOperation op);
std::string_view toString(JobState state);
std::optional<JobOperation> jobOperationFromString(std::string_view s);
std::optional<JobState> jobStateFromString(std::string_view s);
bool isFinished(JobState state);
// Forget, unlock, change-password (and later check, prune) take the repository exclusively.
bool needsExclusiveLock(JobOperation op);

struct JobProgress {
  double percent = 0;
  uint64_t bytesDone = 0;
  uint64_t bytesTotal = 0;
  uint64_t filesDone = 0;
  uint64_t filesTotal = 0;
  double secondsElapsed = 0;
  std::optional<uint64_t> secondsRemaining;
  std::vector<std::string> currentFiles;
};

struct BackupSummary {
  std::string snapshotId;
  uint64_t filesNew = 0, filesChanged = 0, filesUnmodified = 0;
  uint64_t dirsNew = 0, dirsChanged = 0, dirsUnmodified = 0;
  uint64_t dataAdded = 0;
  uint64_t totalFilesProcessed = 0, totalBytesProcessed = 0;
  double totalDuration = 0;
};

struct Job {
  uint64_t id = 0;
  JobOperation operation = JobOperation::Backup;
  JobState state = JobState::Queued;
  std::string repositoryId;
  std::string repositoryName;
  std::string volumeId;    // backup
  std::string volumeName;  // backup
  std::string snapshot;    // restore, forget
  std::string target;      // restore
  std::vector<std::string> tags;
  std::vector<std::string> excludes;
  std::vector<std::string> includes;
  uint32_t startedByUid = 0;
  uint32_t runAsUid = 0;  // restic ran as this user (privilege separation)
  Timestamp created = 0;
  Timestamp started = 0;   // 0: not started
  Timestamp finished = 0;  // 0: not finished
  JobProgress progress;
  std::string message;
  std::vector<std::string> warnings;  // unreadable paths (bounded)
  std::optional<BackupSummary> summary;
  std::vector<std::string> log;  // restic's messages (bounded)
  int32_t childPid = 0;          // while running: restic's pid
};

struct Snapshot {
  std::string id;
  std::string shortId;
  std::string time;  // RFC 3339 as restic prints it
  std::string hostname;
  std::string username;
  std::vector<std::string> paths;
  std::vector<std::string> tags;
  std::string parent;
  std::string tree;
};

// The cached snapshot list of one repository.
struct SnapshotCache {
  std::string repositoryId;
  Timestamp refreshed = 0;
  std::vector<Snapshot> snapshots;
};

struct Node {
  std::string name;
  std::string type;
  std::string path;
  std::optional<uint64_t> size;
  uint32_t mode = 0;
  std::string permissions;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string mtime;
  std::string linkTarget;
};

// One line of the audit trail: a change or a denial, who asked and how it ended. Never a secret.
struct AuditEntry {
  uint64_t id = 0;  // the store's sequence: later entries have larger ids
  Timestamp time = 0;
  uint32_t callerUid = 0;
  int32_t callerPid = 0;
  std::string transport;  // "varlink", "dbus"
  std::string action;     // the polkit action id, "org.zerobyte.daemon1.manage"
  std::string method;     // "CreateVolume"
  std::string resource;   // "volume home"; may be empty
  std::string result;     // "ok", "denied", "failed: NotFound", "revealed the password", ...
};

}  // namespace zerobyte::core
