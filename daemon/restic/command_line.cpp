// restic argv and environment: every child gets the same global flags and nothing from the daemon's environment.
#include "daemon/restic/restic.h"

#include "daemon/core/validation.h"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <utility>

namespace zerobyte::restic {
namespace {

// Read-only commands take no repository lock: a lock only slows them down (restic writes and
// removes a lock file) and could make a concurrent exclusive operation fail for nothing.
enum class Lock { Take, Skip };
enum class Json { On, Off };

// The subcommand words come first so that argv reads like a command in logs ("restic backup ...");
// restic's global flags are accepted after the subcommand. Every value is its own argv element,
// so a repository string or path can never be taken for another flag.
std::vector<std::string> command(const RepositoryContext& ctx, std::initializer_list<const char*> words, Lock lock,
                                 Json json) {
  std::vector<std::string> argv{ctx.binary};
  for (const char* word : words) argv.emplace_back(word);
  argv.insert(argv.end(), {"--cache-dir", ctx.cacheDir});
  if (ctx.repositoryFd > 0) argv.insert(argv.end(), {"--repository-file", "/dev/fd/" + std::to_string(ctx.repositoryFd)});
  else argv.insert(argv.end(), {"--repo", ctx.repository});
  argv.insert(argv.end(), ctx.globalArgs.begin(), ctx.globalArgs.end());
  if (lock == Lock::Skip) argv.emplace_back("--no-lock");
  if (json == Json::On) argv.emplace_back("--json");
  return argv;
}

void addRepeated(std::vector<std::string>& argv, const char* flag, const std::vector<std::string>& values) {
  for (const auto& value : values) {
    argv.emplace_back(flag);
    argv.push_back(value);
  }
}

}  // namespace

std::vector<std::string> initArgs(const RepositoryContext& ctx) {
  // 0.14 ignores --json for init and prints text; later versions print one "initialized" line.
  return command(ctx, {"init"}, Lock::Take, Json::On);
}

std::vector<std::string> catConfigArgs(const RepositoryContext& ctx) {
  // `cat config` prints JSON without being asked.
  return command(ctx, {"cat", "config"}, Lock::Skip, Json::Off);
}

std::vector<std::string> backupArgs(const RepositoryContext& ctx, const std::string& path,
                                    const std::vector<std::string>& tags, const std::vector<std::string>& excludes) {
  BackupOptions options;
  options.paths = {path};
  options.tags = tags;
  options.excludes = excludes;
  return backupArgs(ctx, options);
}

std::vector<std::string> backupArgs(const RepositoryContext& ctx, const BackupOptions& options) {
  if (options.paths.empty()) throw Error(ErrorCode::Internal, "refusing to build a backup without a path");
  auto argv = command(ctx, {"backup"}, Lock::Take, Json::On);
  addRepeated(argv, "--tag", options.tags);
  addRepeated(argv, "--exclude", options.excludes);
  addRepeated(argv, "--exclude-if-present", options.excludeIfPresent);
  if (options.oneFileSystem) argv.emplace_back("--one-file-system");
  if (!options.host.empty()) argv.insert(argv.end(), {"--host", options.host});
  if (!options.compression.empty()) argv.insert(argv.end(), {"--compression", options.compression});
  if (options.ignoreInode) argv.emplace_back("--ignore-inode");
  argv.emplace_back("--");
  argv.insert(argv.end(), options.paths.begin(), options.paths.end());
  return argv;
}

std::vector<std::string> restoreArgs(const RepositoryContext& ctx, const std::string& snapshot, const std::string& target,
                                     const std::vector<std::string>& includes) {
  // No --json: 0.14 prints text only for restore, and later versions would switch to a
  // JSON format that differs from backup's; the caller reads restore's output as text.
  auto argv = command(ctx, {"restore"}, Lock::Take, Json::Off);
  argv.emplace_back("--target");
  argv.push_back(target);
  addRepeated(argv, "--include", includes);
  argv.emplace_back("--");
  argv.push_back(snapshot);
  return argv;
}

std::vector<std::string> dumpTarArgs(const RepositoryContext& ctx, const std::string& snapshot) {
  auto argv = command(ctx, {"dump"}, Lock::Take, Json::Off);
  argv.insert(argv.end(), {"--archive", "tar", "--", snapshot, "/"});
  return argv;
}

std::vector<std::string> snapshotsArgs(const RepositoryContext& ctx) {
  return command(ctx, {"snapshots"}, Lock::Skip, Json::On);
}

std::vector<std::string> lsArgs(const RepositoryContext& ctx, const std::string& snapshot, const std::string& path) {
  auto argv = command(ctx, {"ls"}, Lock::Skip, Json::On);
  argv.emplace_back("--");
  argv.push_back(snapshot);
  // Without a path restic lists the whole snapshot; with one, that directory's entries.
  if (!path.empty()) argv.push_back(path);
  return argv;
}

std::vector<std::string> forgetArgs(const RepositoryContext& ctx, const std::string& snapshot) {
  // Never --prune here: pruning is its own, much longer, exclusive operation.
  auto argv = command(ctx, {"forget"}, Lock::Take, Json::On);
  argv.emplace_back("--");
  argv.push_back(snapshot);
  return argv;
}

std::vector<std::string> forgetPolicyArgs(const RepositoryContext& ctx, const core::RetentionPolicy& policy,
                                          const std::string& scheduleTag, const std::string& host, bool dryRun) {
  // Without --tag or --host restic would apply the policy to every schedule's and every host's snapshots.
  if (scheduleTag.empty() || host.empty())
    throw Error(ErrorCode::Internal, "refusing to build a retention forget without a schedule tag and a host");
  if (scheduleTag.find(',') != std::string::npos)
    throw Error(ErrorCode::Internal, "refusing to build a retention forget for the schedule tag \"" +
                                         scheduleTag.substr(0, 80) + "\": restic would read its ',' as two tags");
  try {
    core::requireRetention(policy);
  } catch (const Error& e) {
    throw Error(ErrorCode::Internal, std::string("refusing to build a retention forget: ") + e.what());
  }

  // Never --prune here: pruning is its own, much longer, exclusive operation.
  // A dry run changes nothing: restic 0.14 skips its exclusive lock for it only with --no-lock.
  auto argv = command(ctx, {"forget"}, dryRun ? Lock::Skip : Lock::Take, Json::On);
  argv.insert(argv.end(), {"--tag", scheduleTag, "--host", host});
  // One group: --tag and --host already select the schedule's own snapshots. restic's default
  // groups by host and paths, and grouping by tags splits by each snapshot's whole tag set: a
  // moved volume or a snapshot with extra tags would keep a full policy's worth of its own forever.
  argv.insert(argv.end(), {"--group-by", "host"});
  for (const auto& [name, value] : core::retentionCounts(policy)) {
    if (!value) continue;
    argv.push_back("--keep-" + std::string(name));
    argv.push_back(std::to_string(*value));
  }
  if (!policy.keepWithin.empty()) argv.insert(argv.end(), {"--keep-within", policy.keepWithin});
  // A value is always the element after its flag: restic takes it as the value even when it starts with '-'.
  addRepeated(argv, "--keep-tag", policy.keepTags);
  if (dryRun) argv.emplace_back("--dry-run");
  return argv;
}

std::vector<std::string> unlockArgs(const RepositoryContext& ctx) {
  // Stale locks only: --remove-all would break the live lock of another process.
  return command(ctx, {"unlock"}, Lock::Take, Json::Off);
}

std::vector<std::string> checkArgs(const RepositoryContext& ctx) { return command(ctx, {"check"}, Lock::Take, Json::Off); }

std::vector<std::string> checkArgs(const RepositoryContext& ctx, const std::string& readDataSubset) {
  auto argv = checkArgs(ctx);
  if (!readDataSubset.empty()) {
    core::validateReadDataSubset(readDataSubset);
    argv.push_back("--read-data-subset=" + readDataSubset);
  }
  return argv;
}

std::vector<std::string> pruneArgs(const RepositoryContext& ctx) { return command(ctx, {"prune"}, Lock::Take, Json::Off); }

std::vector<std::string> statsArgs(const RepositoryContext& ctx) {
  auto argv = command(ctx, {"stats"}, Lock::Skip, Json::On);
  argv.insert(argv.end(), {"--mode", "raw-data"});
  return argv;
}

std::vector<std::string> listLocksArgs(const RepositoryContext& ctx) { return command(ctx, {"list", "locks"}, Lock::Skip, Json::Off); }

std::vector<std::string> catLockArgs(const RepositoryContext& ctx, const std::string& lockId) {
  bool hex = lockId.size() == 64 && std::all_of(lockId.begin(), lockId.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!hex) throw Error(ErrorCode::Internal, "refusing to read the lock \"" + lockId.substr(0, 80) + "\": not a restic id");
  auto argv = command(ctx, {"cat", "lock"}, Lock::Skip, Json::Off);
  argv.emplace_back("--");
  argv.push_back(lockId);
  return argv;
}

std::vector<std::string> unlockAllArgs(const RepositoryContext& ctx) {
  auto argv = command(ctx, {"unlock"}, Lock::Take, Json::Off);
  argv.emplace_back("--remove-all");
  return argv;
}

std::vector<std::string> versionArgs(const std::string& binary) { return {binary, "version"}; }

std::vector<std::string> keyListArgs(const RepositoryContext& ctx) {
  return command(ctx, {"key", "list"}, Lock::Skip, Json::On);
}

std::vector<std::string> keyAddArgs(const RepositoryContext& ctx, int newPasswordFd) {
  auto argv = command(ctx, {"key", "add"}, Lock::Take, Json::Off);
  argv.emplace_back("--new-password-file");
  argv.push_back("/dev/fd/" + std::to_string(newPasswordFd));
  return argv;
}

std::vector<std::string> keyRemoveArgs(const RepositoryContext& ctx, const std::string& keyId) {
  const bool hex = std::all_of(keyId.begin(), keyId.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!hex || keyId.size() < 8 || keyId.size() > 64)
    throw Error(ErrorCode::InvalidArgument, "\"" + keyId.substr(0, 80) + "\" is not a restic key id (8 to 64 hex digits)");
  auto argv = command(ctx, {"key", "remove"}, Lock::Take, Json::Off);
  argv.emplace_back("--");
  argv.push_back(keyId);
  return argv;
}

std::vector<std::string> environment(const RepositoryContext& ctx, const std::string& home, const std::string& tmpDir) {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "HOME=" + home,
      "TMPDIR=" + tmpDir,
      "LANG=C.UTF-8",
      "RESTIC_PASSWORD_FILE=/dev/fd/" + std::to_string(ctx.passwordFd),
      "RESTIC_PROGRESS_FPS=4",
      // Also given as --cache-dir; the variable covers any code path that reads only the environment.
      "RESTIC_CACHE_DIR=" + ctx.cacheDir,
  };
  env.insert(env.end(), ctx.extraEnv.begin(), ctx.extraEnv.end());
  return env;
}

}  // namespace zerobyte::restic
