// The domain records: volumes, repositories, jobs and snapshots as the daemon keeps them.
#pragma once

#include "daemon/core/retention.h"

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

// One option of an rclone remote: a plain value, or (secret) a reference resolved when the volume is mounted.
struct RcloneOption {
  std::string name;   // rclone's option name, e.g. "host", "pass"
  std::string value;  // the value, or for a secret its reference (file://, env://, credential://)
  bool secret = false;
};

// Where a network or FUSE volume is and how it is mounted (types sftp, smb, webdav, nfs, rclone).
struct VolumeRemote {
  std::string driver;      // sshfs, davfs, rclone, cifs, nfs (core::defaultDriver when not chosen)
  std::string host;        // sftp host, smb server, nfs server
  uint32_t port = 0;       // 0: the protocol's default
  std::string user;        // sftp, smb, webdav
  std::string remotePath;  // sftp: path on the server; smb: path inside the share; nfs: the export; rclone: path in the remote
  std::string share;       // smb
  std::string domain;      // smb
  std::string smbVersion;  // smb with the kernel driver: "" (negotiated), 2.0, 2.1, 3.0, 3.1.1
  bool guest = false;      // smb: no user and password
  std::string url;         // webdav
  bool tlsVerify = true;   // webdav over https
  std::string nfsVersion;  // 3, 4, 4.1 ("" is 4.1)
  std::string knownHosts;  // sftp: the server's known_hosts line(s)
  bool hostKeyCheck = true;  // sftp: false only when explicitly disabled
  std::string rcloneType;  // rclone: the backend type (sftp, webdav, s3, ...)
  std::vector<RcloneOption> rcloneOptions;
  std::vector<std::string> mountOptions;  // extra NAME or NAME=VALUE, allowed per driver by the configuration
  bool readWrite = false;    // mounted read-only unless set (a backup only reads)
  bool autoRemount = true;   // a dead mount is remounted (before a backup, and by the periodic check when kept mounted)
  bool keepMounted = false;  // stays mounted between backups (and is mounted at start)
};

struct Volume {
  std::string id;
  std::string name;
  std::string type = "directory";
  std::string path;  // directory: the directory backed up; network types: unused (see VolumeRemote)
  VolumeRemote remote;
  SealedSecret password;    // sftp, smb, webdav: stored password, when passwordRef is empty
  std::string passwordRef;
  SealedSecret privateKey;  // sftp: stored private key, when privateKeyRef is empty
  std::string privateKeyRef;
  bool declared = false;  // from the configuration file: read-only through the API
  uint32_t ownerUid = 0;
  std::optional<uint32_t> groupGid;  // shared with the members of this group
  // Created by root or an admin: restic for it runs as root. Otherwise it runs as ownerUid.
  bool privileged = true;
  Timestamp created = 0;
  bool isNetwork() const { return type != "directory"; }
};

// Where a remote repository is and how restic reaches it (types sftp, rest, s3, b2, azure, gcs, swift, rclone;
// core/repository_backend.h says which fields each takes). Never a secret: those are RepositoryCredentials.
struct RepositoryRemote {
  std::string host;      // sftp
  uint32_t port = 0;     // sftp; 0: 22
  std::string user;      // sftp, rest, swift
  std::string url;       // rest: the server's URL (without credentials); swift: the auth URL
  std::string endpoint;  // s3: host[:port] or http(s)://host[:port]; empty: Amazon S3
  std::string bucket;    // s3, b2, gcs: the bucket; azure, swift: the container
  std::string region;    // s3, swift
  std::string accessKeyId;  // s3
  bool pathStyle = false;   // s3: path-style bucket lookup (MinIO, Ceph, s3rver)
  std::string account;      // b2: the account (key) id; azure: the storage account name
  std::string endpointSuffix;  // azure: e.g. core.chinacloudapi.cn (restic 0.16 and later)
  std::string project;         // gcs: the project id; swift: the project (tenant) name
  std::string userDomain;      // swift (keystone v3)
  std::string projectDomain;   // swift (keystone v3)
  std::string knownHosts;      // sftp: the server's known_hosts line(s)
  bool hostKeyCheck = true;    // sftp: false only when explicitly disabled
  std::string rcloneType;      // rclone: the backend type (sftp, webdav, s3, ...)
  std::vector<RcloneOption> rcloneOptions;
  std::string caCert;          // HTTP(S) backends: a PEM file of CA certificates to trust (--cacert)
  bool insecureTls = false;    // HTTPS backends: skip certificate verification (--insecure-tls); warned about
  uint32_t limitUploadKiB = 0;    // --limit-upload; 0: unlimited
  uint32_t limitDownloadKiB = 0;  // --limit-download; 0: unlimited
  std::string compression;        // auto, off, max; empty: restic's default (auto)
};

// A backend credential (sftp private key, REST or Swift password, S3 secret key, B2 or Azure account key, Azure
// SAS token, GCS service account): sealed with "repositories/<id>/credentials/<name>", or a reference.
struct RepositoryCredential {
  std::string name;  // private_key, server_password, secret_access_key, account_key, sas_token, service_account
  SealedSecret sealed;
  std::string ref;
};

struct Repository {
  std::string id;
  std::string name;
  std::string type = "local";
  // local: the directory; sftp: the path on the server; s3, b2, azure, gcs, swift: the prefix in the bucket or
  // container; rclone: the path in the remote; rest: unused (the URL holds it).
  std::string path;
  RepositoryRemote remote;
  std::vector<RepositoryCredential> credentials;
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
  bool isRemote() const { return type != "local"; }
};

// Check: restic check (exclusive); CheckConnection: opens the repository with its password only (shared).
// Retention: a schedule's retention policy (restic forget --keep-*, scoped to its tag and host; exclusive).
// Prune: restic prune (exclusive). UnlockAll: restic unlock --remove-all, live locks too (admin only).
enum class JobOperation {
  Backup,
  Restore,
  Forget,
  Init,
  Import,
  Unlock,
  ChangePassword,
  Check,
  CheckConnection,
  Retention,
  Prune,
  UnlockAll
};
// Skipped: a schedule's run that did not start because its previous run had not ended (never ran restic).
enum class JobState { Queued, Running, Succeeded, Warning, Failed, Cancelled, Interrupted, Skipped };
// The highest values: the store refuses anything above them as corruption. Add new values last.
inline constexpr JobOperation kLastJobOperation = JobOperation::UnlockAll;
inline constexpr JobState kLastJobState = JobState::Skipped;

std::string_view toString(JobOperation op);
std::string_view toString(JobState state);
std::optional<JobOperation> jobOperationFromString(std::string_view s);
std::optional<JobState> jobStateFromString(std::string_view s);
bool isFinished(JobState state);
// Forget, retention, prune, unlock, change-password and check take the repository exclusively.
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
  std::string error;  // a failed job: the error's name from the one table (e.g. "Unreachable", "WrongPassword")
  std::vector<std::string> warnings;  // unreadable paths (bounded)
  std::optional<BackupSummary> summary;
  std::vector<std::string> log;  // restic's messages (bounded)
  int32_t childPid = 0;          // while running: restic's pid
  // Started by a schedule: its id and name, and why: "scheduled" (a fire time came), "catch-up" (a fire time
  // passed while zerobyted was stopped or the machine slept), "manual" (schedule run), "retry" (after a failure).
  std::string scheduleId;
  std::string scheduleName;
  std::string trigger;
  uint32_t attempt = 0;  // 1 for the first try of a scheduled backup, 2 for its first retry, ...
  std::string readDataSubset;  // check: restic's --read-data-subset ("1/5", "10%", "2G"); empty: structure only
};

// What a schedule runs: a backup of a volume (then its retention), or maintenance of its repository.
enum class ScheduleKind { Backup, Check, Prune };
inline constexpr ScheduleKind kLastScheduleKind = ScheduleKind::Prune;
std::string_view toString(ScheduleKind kind);
std::optional<ScheduleKind> scheduleKindFromString(std::string_view s);

// A backup of a volume into a repository at the fire times of a cron expression, with a retention policy.
struct Schedule {
  std::string id;
  std::string name;
  ScheduleKind kind = ScheduleKind::Backup;
  std::string readDataSubset;  // check schedules: as Job::readDataSubset
  std::string volumeName;  // backups only; resolved when it runs, so a declared or re-created volume is found by name
  std::string repositoryName;
  std::string cron;      // normalized (CronExpression::str()), or a macro as given ("@daily")
  std::string timeZone;  // IANA name; the system's at creation when none was given
  uint32_t jitterSeconds = 0;  // each run starts up to this many seconds (random) after its fire time
  bool enabled = true;
  std::vector<std::string> includes;  // paths inside the volume (all of it when empty)
  std::vector<std::string> excludes;  // restic patterns
  std::vector<std::string> excludeIfPresent;  // marker file names
  bool oneFileSystem = false;
  std::vector<std::string> tags;  // besides the schedule's own tag
  std::string compression;        // "" (restic's default), "auto", "off", "max"
  uint32_t retries = 0;           // further tries after a failed run
  uint32_t retryDelaySeconds = 300;
  RetentionPolicy retention;  // applied after each successful backup; empty: keep everything
  uint32_t ownerUid = 0;
  std::optional<uint32_t> groupGid;
  bool declared = false;
  Timestamp created = 0;
  // The scheduler's record: every fire time up to lastSlot was handled (ran, was skipped or caught up).
  Timestamp lastSlot = 0;
  uint64_t lastJobId = 0;
  Timestamp lastSuccess = 0;
  uint64_t lastSuccessJobId = 0;
  Timestamp lastFailure = 0;
  uint64_t lastFailureJobId = 0;
  std::string lastFailureMessage;  // the first lines of the failure
};

// The tag every snapshot of a schedule carries: retention applies to these only.
std::string scheduleTag(const Schedule& schedule);

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

// A mount zerobyted made (kept in the store so that a restart finds what it left behind).
struct MountRecord {
  std::string volumeId;
  std::string path;    // the mount point, under the daemon's mount directory
  std::string driver;
  Timestamp mounted = 0;
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
