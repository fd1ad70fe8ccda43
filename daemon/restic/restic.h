// restic command lines, environment and output parsing (restic 0.14 and later); no process handling.
#pragma once

#include "common/errors.h"
#include "daemon/core/model.h"
#include "daemon/core/retention.h"

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace zerobyte::restic {

struct Version {
  int major = 0, minor = 0, patch = 0;
  std::string text;  // "0.14.0"
};
// Parses `restic version` output: "restic 0.14.0 compiled with go1.19.8 on linux/amd64".
std::optional<Version> parseVersion(std::string_view output);

// How one restic child reaches its repository.
struct RepositoryContext {
  std::string binary;      // absolute path of restic
  std::string repository;  // the restic repository string ("/srv/repo" for local)
  std::string cacheDir;    // per-repository cache directory
  int passwordFd = 3;      // the child reads the password from /dev/fd/<passwordFd>
  // > 0: the repository string holds a secret (a REST password): restic reads it from /dev/fd/<repositoryFd>
  // (--repository-file) and `repository` never appears on argv.
  int repositoryFd = 0;
  std::vector<std::string> globalArgs;  // the backend's flags (-o ..., --cacert, --limit-*), after the repository
  std::vector<std::string> extraEnv;    // the backend's NAME=value (credentials restic reads only from its environment)
};

// argv (argv[0] = binary) for each operation. Always --json where restic has it,
// --cache-dir, and "--" before positional arguments that come from users.
std::vector<std::string> initArgs(const RepositoryContext& ctx);
std::vector<std::string> catConfigArgs(const RepositoryContext& ctx);
std::vector<std::string> backupArgs(const RepositoryContext& ctx, const std::string& path,
                                    const std::vector<std::string>& tags, const std::vector<std::string>& excludes);
// A backup as a schedule makes it: several paths (each after "--"), exclude-if-present markers,
// --one-file-system, --host (so that retention can select this host's snapshots by the same name)
// and --compression (auto, off, max; a global flag restic accepts after the subcommand).
struct BackupOptions {
  std::vector<std::string> paths;
  std::vector<std::string> tags;
  std::vector<std::string> excludes;
  std::vector<std::string> excludeIfPresent;
  bool oneFileSystem = false;
  std::string host;         // empty: restic's default (the hostname)
  std::string compression;  // empty: the repository's default
  bool ignoreInode = false;  // FUSE mounts (sshfs, rclone, davfs2) give no stable inode numbers
};
std::vector<std::string> backupArgs(const RepositoryContext& ctx, const BackupOptions& options);
std::vector<std::string> restoreArgs(const RepositoryContext& ctx, const std::string& snapshot, const std::string& target,
                                     const std::vector<std::string>& includes);
// The whole snapshot as a tar stream on stdout (member names: the paths without their leading "/"), for a
// restore that another process extracts (see Service::Task::extract).
std::vector<std::string> dumpTarArgs(const RepositoryContext& ctx, const std::string& snapshot);
std::vector<std::string> snapshotsArgs(const RepositoryContext& ctx);
std::vector<std::string> lsArgs(const RepositoryContext& ctx, const std::string& snapshot, const std::string& path);
std::vector<std::string> forgetArgs(const RepositoryContext& ctx, const std::string& snapshot);
// Applies a schedule's retention policy (`forget --json`, never --prune) to the snapshots with the
// tag `scheduleTag` from `host` only (--tag, --host), grouped by host and tags, so snapshots of
// other schedules and other hosts in the same repository are never considered. Each --keep-*
// appears only when set, --keep-tag once per tag, --dry-run when asked (restic then only prints
// what it would remove, and takes no lock: it changes nothing). Throws Error(Internal) for an empty scheduleTag or host, a scheduleTag
// with ',' (restic would read it as two tags), or a policy that requireRetention refuses: callers
// validate these first, and a wrong value here could forget snapshots nobody meant to.
std::vector<std::string> forgetPolicyArgs(const RepositoryContext& ctx, const core::RetentionPolicy& policy,
                                          const std::string& scheduleTag, const std::string& host, bool dryRun);
std::vector<std::string> unlockArgs(const RepositoryContext& ctx);
// `check` (structure only), or with --read-data-subset=<subset> (validated by core::validateReadDataSubset).
std::vector<std::string> checkArgs(const RepositoryContext& ctx);
std::vector<std::string> checkArgs(const RepositoryContext& ctx, const std::string& readDataSubset);
// `prune` (exclusive): removes the data no snapshot refers to any more.
std::vector<std::string> pruneArgs(const RepositoryContext& ctx);
// `stats --json --mode raw-data --no-lock`: the repository's stored size, compression and counts.
std::vector<std::string> statsArgs(const RepositoryContext& ctx);
// `list locks` (the lock ids, one per line) and `cat lock ID` (one lock as JSON); neither takes a lock.
std::vector<std::string> listLocksArgs(const RepositoryContext& ctx);
std::vector<std::string> catLockArgs(const RepositoryContext& ctx, const std::string& lockId);
// `unlock --remove-all`: every lock, live ones too. Only for the explicit, audited escape hatch.
std::vector<std::string> unlockAllArgs(const RepositoryContext& ctx);
std::vector<std::string> versionArgs(const std::string& binary);
// The repository's keys (passwords) as JSON (`key list --json`, no lock: it only reads).
std::vector<std::string> keyListArgs(const RepositoryContext& ctx);
// Adds a key for the password the child reads from /dev/fd/<newPasswordFd>.
std::vector<std::string> keyAddArgs(const RepositoryContext& ctx, int newPasswordFd);
// Removes the key `keyId` (as `key list` shows it); restic refuses to remove the key in use.
// Throws Error(InvalidArgument) unless keyId is 8 to 64 lowercase hex digits.
std::vector<std::string> keyRemoveArgs(const RepositoryContext& ctx, const std::string& keyId);

// The child's whole environment: PATH, HOME, LANG=C.UTF-8, TMPDIR,
// RESTIC_PASSWORD_FILE=/dev/fd/<passwordFd>, RESTIC_PROGRESS_FPS (progress rate), RESTIC_CACHE_DIR, then
// ctx.extraEnv. Nothing is inherited from the daemon.
std::vector<std::string> environment(const RepositoryContext& ctx, const std::string& home, const std::string& tmpDir);

// One stdout line of `backup --json`, or one stderr line (JSON error or text).
struct BackupError {
  std::string during;  // "scan", "archival", ...
  std::string item;    // the path
  std::string message;
};
using BackupEvent = std::variant<std::monostate, core::JobProgress, core::BackupSummary, BackupError>;
// JobProgress.percent is 0-100 (restic's percent_done is a fraction).
// Unknown or non-JSON lines give std::monostate. Never throws.
BackupEvent parseBackupLine(std::string_view line);

// `snapshots --json` output (one JSON array). Throws Error(Failed) on malformed input.
std::vector<core::Snapshot> parseSnapshots(std::string_view json);
// One group of `forget --json` output: the full ids of the snapshots kept and of those removed
// (or, with --dry-run, to be removed), newest first as restic lists them.
struct ForgetGroupResult {
  std::vector<std::string> keep;
  std::vector<std::string> remove;
};
// `forget --json` output (a JSON list of groups). restic 0.14 prints nothing at all when no snapshot
// matches the filters: empty output is no groups. Throws Error(Failed) on malformed input (not JSON,
// not a list, a group that is not an object or lacks "keep" or "remove", either of them not a list or
// null, a snapshot without a hexadecimal id).
std::vector<ForgetGroupResult> parseForgetOutput(std::string_view json);
// `stats --json --mode raw-data`. Throws Error(Failed) unless it is a JSON object; missing fields are 0.
struct RepositoryStats {
  uint64_t totalSize = 0;
  uint64_t totalUncompressedSize = 0;
  double compressionRatio = 0;
  double compressionSpaceSaving = 0;
  uint64_t blobCount = 0;
  uint64_t snapshotsCount = 0;
};
RepositoryStats parseStats(std::string_view json);
// `list locks`: the 64-hex-digit ids (other lines are ignored).
std::vector<std::string> parseLockIds(std::string_view text);
// `cat lock ID`: {"time":…,"exclusive":…,"hostname":…,"username":…,"pid":…}. Throws Error(Failed) unless an object.
struct LockInfo {
  std::string time;
  bool exclusive = false;
  std::string hostname;
  std::string username;
  int64_t pid = 0;
};
LockInfo parseLock(std::string_view json);
// "exclusive lock of pid 4242 on host vm by root since 2026-12-04T06:00:00".
std::string describeLock(const LockInfo& lock);
// One entry of `key list --json`: [{"current":true,"id":"3ea9525f","userName":"root","hostName":"vm",
// "created":"2026-11-22 07:08:02"}, ...]. "current" marks the key the password opened.
struct Key {
  std::string id;
  bool current = false;
  std::string userName;
  std::string hostName;
  std::string created;
};
// Throws Error(Failed) on malformed input (not JSON, not a list, an entry without a hex id).
std::vector<Key> parseKeyList(std::string_view json);
// The id of the entry marked current; nullopt when none is.
std::optional<std::string> currentKeyId(const std::vector<Key>& keys);

// One line of `ls --json`: the snapshot header, a node, or std::monostate (unknown). Never throws.
std::variant<std::monostate, core::Snapshot, core::Node> parseLsLine(std::string_view line);

// Turns a failed run (exit code, collected stderr) into an Error:
// NoRepository ("Is there a repository at the following location?", 0.18 exit 10),
// WrongPassword ("wrong password or no key found", 0.18 exit 12),
// RepositoryLocked ("repository is already locked", 0.18 exit 11), AlreadyExists ("config file already exists",
// init), Unreachable (connection refused, unknown host, timeout, untrusted TLS certificate, host key mismatch,
// credentials refused by the server: looked for before NoRepository, since 0.14 asks "Is there a repository"
// after those too), else Failed.
// The message names the repository and carries restic's own "Fatal: ..." text.
Error classifyFailure(int exitCode, std::string_view stderrText, std::string_view repositoryName);

}  // namespace zerobyte::restic
