// The service layer: jobs (backup, restore, forget, init, import, unlock), their restic children and followers.
#include "common/users.h"
#include "daemon/api/json_mapping.h"
#include "daemon/api/master_key_rotation.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/core/repository_backend.h"
#include "daemon/core/mount_plan.h"
#include "daemon/core/validation.h"
#include "daemon/mount/rclone_obscure.h"
#include "daemon/mount/secret_files.h"
#include "daemon/log/log.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"

#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>

namespace zerobyte::api {

using nlohmann::json;

namespace {

constexpr size_t kMaxLogLines = 2000;
constexpr size_t kMaxLogLineBytes = 4096;
constexpr size_t kMaxWarnings = 1000;
constexpr size_t kStderrTailBytes = 16 * 1024;
constexpr uint64_t kPushIntervalUsec = 250000;  // at most four progress replies a second
constexpr size_t kMaxRetentionOutputBytes = 8 * 1024 * 1024;

}  // namespace

// restic as root reads everything (backup) and writes files back with their owners, modes and file
// capabilities (restore); nothing else (no CAP_SYS_ADMIN, CAP_NET_*, CAP_KILL, ...).
constexpr uint64_t capabilityBit(int cap) { return uint64_t{1} << cap; }
constexpr uint64_t kRootResticCapabilities = capabilityBit(CAP_CHOWN) | capabilityBit(CAP_DAC_OVERRIDE) |
                                             capabilityBit(CAP_DAC_READ_SEARCH) | capabilityBit(CAP_FOWNER) |
                                             capabilityBit(CAP_FSETID) | capabilityBit(CAP_MKNOD) | capabilityBit(CAP_SETFCAP);

void ensureDirectory(const std::string& path) {
  if (mkdir(path.c_str(), 0700) < 0 && errno != EEXIST)
    throw Error(ErrorCode::Failed, "cannot create " + path + ": " + std::strerror(errno));
}

// ---- restic children under the repository lock ----

uint32_t Service::runAsOf(const core::Repository& repository) const { return repository.privileged ? 0 : repository.ownerUid; }

uint32_t Service::readsAsOf(const core::Volume& volume) const { return volume.privileged ? 0 : volume.ownerUid; }

void Service::requireSameIdentity(const core::Volume& volume, const core::Repository& repo, std::string_view verb) const {
  // restic reads the data as the volume's owner (root for an admin's) and holds the repository's password: both
  // must belong to the same user, or the one would hand the other's data or password to them.
  const uint32_t readsAs = readsAsOf(volume);
  if (readsAs != runAsOf(repo))
    throw Error(ErrorCode::NotAuthorized,
                "volume \"" + volume.name + "\" is read as " + users::describeUser(readsAs) + " but repository \"" + repo.name +
                    "\" is used as " + users::describeUser(runAsOf(repo)) + "; " + std::string(verb) +
                    " into a repository of the same owner (an admin's volumes into an admin's repositories)",
                {{"action", actionId(Action::Backup)}});
}

std::string Service::cacheHome(uint32_t uid) const {
  return uid == 0 ? m_settings.cacheDirectory : m_settings.cacheDirectory + "/users/" + std::to_string(uid);
}

namespace {

// The fd a repository string with a secret in it reaches restic on (3 and 4 are passwords).
constexpr int kRepositoryFd = 5;

// A remote repository's credential files for one restic child: removed with the last copy of the guard.
struct CredentialDirectory {
  std::string path;
  explicit CredentialDirectory(std::string p) : path(std::move(p)) {}
  CredentialDirectory(const CredentialDirectory&) = delete;
  CredentialDirectory& operator=(const CredentialDirectory&) = delete;
  ~CredentialDirectory() { mount::removeSecretDirectory(path); }
};

}  // namespace

std::map<std::string, std::string> Service::credentialsOf(const core::Repository& repository) const {
  std::optional<core::Repository> stored = repository.declared ? std::nullopt : m_store.repository(repository.id);
  const core::Repository& current = stored ? *stored : repository;
  std::map<std::string, std::string> values;
  for (const auto& c : current.credentials) {
    try {
      values[c.name] = c.ref.empty() ? m_vault.open(c.sealed, repositoryCredentialRecord(current, c.name)).value()
                                     : secrets::resolveReference(c.ref).value();
    } catch (const Error& e) {
      throw Error(ErrorCode::SecretUnavailable, "repository \"" + current.name + "\": its " + c.name + " is unavailable: " + e.what());
    }
    // Stored values lost their final newlines when they were given (repositoryFromRequest); resolveReference
    // removes a file's final line ending.
  }
  return values;
}

std::string Service::locateHelper(const char* program, const char* package) const {
  std::string path = process::findExecutable(program, m_settings.mount.helperPath);
  if (path.empty())
    throw Error(ErrorCode::Failed, std::string(program) + " is not installed (looked in " + m_settings.mount.helperPath +
                                       "); install " + package);
  return path;
}

Service::ResticLaunch Service::prepareRestic(const core::Repository& repository, uint32_t runAsUid,
                                             process::ProcessSpec& spec) const {
  ResticLaunch launch;
  auto& ctx = launch.ctx;
  ctx.binary = m_settings.resticBinary;
  ctx.repository = repository.path;
  ctx.cacheDir = cacheHome(runAsUid) + "/" + repository.id;
  ctx.passwordFd = 3;
  std::optional<users::Identity> identity;
  if (runAsUid != 0) {
    identity = users::lookup(runAsUid);
    if (!identity)
      throw Error(ErrorCode::Failed, "restic would run as uid " + std::to_string(runAsUid) +
                                         " (the owner), which has no entry in the user database; restore the user or delete the resource");
  }
  if (repository.isRemote()) {
    // Traversable, not listable: each child's directory below is its user's own.
    if (mkdir(m_settings.credentialsDirectory.c_str(), 0711) < 0 && errno != EEXIST)
      throw Error(ErrorCode::Failed, "cannot create " + m_settings.credentialsDirectory + ": " + std::strerror(errno));
    // Whatever the umask made of it (zerobyted.service has UMask=0077).
    if (chmod(m_settings.credentialsDirectory.c_str(), 0711) < 0)
      throw Error(ErrorCode::Failed, "cannot set the mode of " + m_settings.credentialsDirectory + ": " + std::strerror(errno));
    const std::string dir = m_settings.credentialsDirectory + "/" + repository.id + "-" + mount::randomSuffix();
    if (mkdir(dir.c_str(), 0700) < 0) throw Error(ErrorCode::Failed, "cannot create " + dir + ": " + std::strerror(errno));
    auto guard = std::make_shared<CredentialDirectory>(dir);
    if (identity && chown(dir.c_str(), identity->uid, identity->gid) < 0)
      throw Error(ErrorCode::Failed, "cannot give " + dir + " to uid " + std::to_string(runAsUid) + ": " + std::strerror(errno));

    core::ResticAccessContext context;
    context.fileDir = dir;
    if (repository.type == "sftp") context.sshProgram = locateHelper("ssh", "openssh-client");
    std::vector<std::pair<std::string, std::string>> rcloneSecrets;
    if (repository.type == "rclone") {
      context.rcloneProgram = locateHelper("rclone", "rclone");
      for (const auto& option : repository.remote.rcloneOptions) {
        if (!option.secret) continue;
        // resolveReference has removed a file's final line ending already.
        std::string value = secrets::resolveReference(option.value).value();
        rcloneSecrets.emplace_back(option.name, core::rcloneWantsObscured(option.name) ? mount::rcloneObscure(value) : value);
      }
    }
    auto access = core::planResticAccess(repository, credentialsOf(repository), rcloneSecrets, context);
    for (const auto& file : access.files) {
      const std::string path = dir + "/" + file.name;
      mount::writeSecretFile(path, file.content, identity ? identity->uid : 0, identity ? identity->gid : 0);
    }
    ctx.repository = access.repository;
    if (access.repositoryIsSecret) {
      ctx.repositoryFd = kRepositoryFd;
      spec.secrets.emplace_back(kRepositoryFd, access.repository);
    }
    ctx.globalArgs = std::move(access.args);
    ctx.extraEnv = std::move(access.env);
    launch.files = guard;
    if (!access.helperLog.empty()) launch.helperLog = {dir + "/" + access.helperLog, identity ? identity->uid : 0};
  }
  prepareRunAs(spec, ctx, identity);
  return launch;
}

void Service::startExtract(const std::shared_ptr<Task>& task, const std::shared_ptr<SplitRestore>& split, int fd,
                           TaskFinish finish) {
  const Task::Extract& extract = *task->extract;
  try {
    const std::string tar = locateHelper("tar", "tar");
    process::ProcessSpec spec;
    // GNU tar as the user: no owners or modes beyond the user's own and their umask; member names with ".." and
    // leading "/" are refused by tar itself, and whatever it writes, the kernel lets only this user write.
    // The target exists: startRestore made it as the user.
    spec.argv = {tar, "--extract", "--file=-", "--no-same-owner", "--no-same-permissions", "--directory=" + extract.target, "--"};
    for (const auto& member : extract.members) spec.argv.push_back(member);
    spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=" + (extract.as.home.empty() ? "/" : extract.as.home)};
    spec.uid = extract.as.uid;
    spec.gid = extract.as.gid;
    spec.groups = extract.as.groups;
    spec.stdioFd = fd;
    spec.killGrace = std::chrono::seconds(m_settings.cancelGraceSeconds);
    process::ProcessCallbacks callbacks;
    callbacks.onStderrLine = [task, split](std::string_view line) {
      if (line.empty()) return;
      if (split->tarReason.empty()) split->tarReason = std::string(line.substr(0, 512));
      if (line.find("Unexpected EOF") != std::string_view::npos || line.find("does not look like a tar archive") != std::string_view::npos)
        split->streamCut = true;
      if (task->onStderr) task->onStderr(line);
    };
    callbacks.onExit = [task, split, finish](const process::ProcessResult& result) {
      split->tar = result;
      finishSplitRestore(*task, *split, finish);
    };
    m_runner.start(std::move(spec), std::move(callbacks));
  } catch (const Error& e) {
    split->tarError = e;  // restic, writing to nobody, fails on its own; the outcome waits for it
  }
  ::close(fd);
}

void Service::finishSplitRestore(const Task& task, SplitRestore& split, const TaskFinish& finish) {
  if (split.finished || !split.restic || (!split.tar && !split.tarError)) return;
  split.finished = true;
  const process::ProcessResult& restic = *split.restic;
  // Cancelled, timed out or killed, or restic's own failure (tar then saw no stream, or one cut short): restic's
  // outcome. tar failing on its own (a file it may not write) is the cause even when restic then lost its reader.
  if (restic.cancelled || restic.timedOut || restic.signal ||
      (!restic.success() && (split.tarError || split.tar->success() || split.streamCut)))
    return finish(&restic, std::nullopt);
  if (split.tarError) return finish(nullptr, *split.tarError);
  if (!split.tar->success()) {
    const auto& as = task.extract->as;
    return finish(nullptr, Error(ErrorCode::Failed, "the restore into " + task.extract->target + " failed: tar, writing as " +
                                                        as.name + " (uid " + std::to_string(as.uid) + "), ended with " +
                                                        split.tar->describe() +
                                                        (split.tarReason.empty() ? std::string() : ": " + split.tarReason)));
  }
  finish(&restic, std::nullopt);
}

void Service::replayHelperLog(const HelperLog& log, const std::function<void(std::string_view)>& sink) {
  if (log.path.empty() || !sink) return;
  for (const auto& line : mount::readChildLog(log.path, log.owner)) sink("ssh: " + line);
}

void Service::prepareRunAs(process::ProcessSpec& spec, const restic::RepositoryContext& ctx,
                           const std::optional<users::Identity>& identity) const {
  ensureDirectory(m_settings.cacheDirectory);
  if (!identity) {
    spec.capabilities = kRootResticCapabilities;
    ensureDirectory(m_settings.cacheDirectory + "/tmp");
    spec.env = restic::environment(ctx, m_settings.cacheDirectory, m_settings.cacheDirectory + "/tmp");
    return;
  }
  std::string home = process::ensureUserCacheDirectory(m_settings.cacheDirectory, *identity);
  spec.env = restic::environment(ctx, home, home);
  spec.uid = identity->uid;
  spec.gid = identity->gid;
  spec.groups = identity->groups;
}

secrets::SecretString Service::passwordOf(const core::Repository& repository) const {
  if (!repository.passwordRef.empty()) return secrets::resolveReference(repository.passwordRef);
  std::optional<core::Repository> stored = repository.declared ? std::nullopt : m_store.repository(repository.id);
  const core::Repository& current = stored ? *stored : repository;
  if (current.password.empty())
    throw Error(ErrorCode::SecretUnavailable, "repository \"" + current.name + "\" has no password set");
  return m_vault.open(current.password, passwordRecord(current));
}

core::RepositoryLocks::Ticket Service::runTask(std::shared_ptr<Task> task) {
  return m_locks.acquire(task->repository.id, task->mode, [this, task](core::RepositoryLocks::Ticket ticket) {
    // Start on the next iteration: never inside acquire()/release() of the lock table.
    m_loop.post([this, task, ticket] {
      if (task->withdrawn) return;
      auto launch = [this, task, ticket] {
        // Once restic (and tar, for a split restore) has ended, or neither could start.
        auto finish = [this, task, ticket](const process::ProcessResult* result, std::optional<Error> failure) {
          m_locks.release(ticket);
          releaseSlot(*task);
          releaseMount(*task);
          task->onDone(result, std::move(failure));
          checkShutdownDone();
        };
        std::shared_ptr<process::Process> child;
        int pair[2] = {-1, -1};
        auto closePair = [&pair] {
          for (int& fd : pair)
            if (fd >= 0) ::close(std::exchange(fd, -1));
        };
        auto split = task->extract ? std::make_shared<SplitRestore>() : nullptr;
        try {
          if (m_stopping) throw Error(ErrorCode::Cancelled, "zerobyted is stopping");
          const uint32_t runAs = task->runAsUid.value_or(runAsOf(task->repository));
          process::ProcessSpec spec;
          auto launch = prepareRestic(task->repository, runAs, spec);
          spec.argv = task->args(launch.ctx);
          spec.secret = task->passwordOverride ? *task->passwordOverride : passwordOf(task->repository).value();
          spec.secretFd = launch.ctx.passwordFd;
          spec.killGrace = std::chrono::seconds(m_settings.cancelGraceSeconds);
          if (split) {
            if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
              throw Error(ErrorCode::Failed, std::string("cannot create a socket pair for the restore: ") + std::strerror(errno));
            spec.stdioFd = pair[0];
          }
          process::ProcessCallbacks callbacks;
          callbacks.onStdoutLine = task->onStdout;
          callbacks.onStderrLine = task->onStderr;
          callbacks.onExit = [this, task, split, finish, files = launch.files, log = launch.helperLog](const process::ProcessResult& result) {
            replayHelperLog(log, task->onStderr);
            if (!split) return finish(&result, std::nullopt);
            split->restic = result;
            finishSplitRestore(*task, *split, finish);
          };
          child = m_runner.start(std::move(spec), std::move(callbacks));
        } catch (const Error& e) {
          closePair();
          finish(nullptr, e);
          return;
        }
        if (split) {
          ::close(std::exchange(pair[0], -1));
          startExtract(task, split, pair[1], finish);  // takes pair[1]
        }
        if (task->onStarted) task->onStarted(child);
      };
      // A network volume is mounted (or checked, and remounted when dead) once the job has its lock and slot.
      auto start = [this, task, ticket, launch] {
        if (!task->mountVolume) return launch();
        m_mounter->acquire(*task->mountVolume, [this, task, ticket, launch](std::optional<Error> error) {
          if (!error) task->holdsMount = true;
          if (task->withdrawn) {
            // Cancelled while it was being mounted: the canceller released its lock.
            releaseSlot(*task);
            releaseMount(*task);
            return;
          }
          if (error) {
            m_locks.release(ticket);
            releaseSlot(*task);
            task->onDone(nullptr, *error);
            checkShutdownDone();
            return;
          }
          launch();
        });
      };
      if (task->countsTowardLimit)
        whenSlotFree(task, std::move(start));
      else
        start();
    });
  });
}

void Service::releaseMount(Task& task) {
  if (std::exchange(task.holdsMount, false) && task.mountVolume) m_mounter->release(*task.mountVolume);
}

void Service::whenSlotFree(std::shared_ptr<Task> task, std::function<void()> start) {
  m_slotQueue.emplace_back(std::move(task), std::move(start));
  startWaitingJobs();
}

void Service::releaseSlot(Task& task) {
  if (!std::exchange(task.holdsSlot, false)) return;
  --m_slotsInUse;
  // On the next iteration: the job that ended finishes first, and no start runs inside a child's exit handler.
  m_loop.post([this] { startWaitingJobs(); });
}

void Service::startWaitingJobs() {
  while (!m_slotQueue.empty() && (m_slotsInUse < m_settings.maxConcurrentJobs || m_stopping)) {
    auto [task, start] = std::move(m_slotQueue.front());
    m_slotQueue.pop_front();
    if (task->withdrawn) continue;  // cancelled while it waited: its lock was released by the canceller
    if (!m_stopping) {
      task->holdsSlot = true;
      ++m_slotsInUse;
    }
    start();
  }
}

// ---- jobs ----

Service::ActiveJob& Service::registerJob(core::Job job, const core::Repository& repository,
                                         std::function<void(ActiveJob&, bool)> onFinished) {
  job.state = core::JobState::Queued;
  job.created = now();
  job.repositoryId = repository.id;
  job.repositoryName = repository.name;
  {
    auto txn = m_store.begin();
    job.id = txn.allocateJobId();
    txn.put(job);
    txn.commit();
  }
  uint64_t id = job.id;
  auto active = std::make_unique<ActiveJob>();
  active->job = std::move(job);
  active->repository = repository;
  active->onFinished = std::move(onFinished);
  ActiveJob& registered = *m_jobs.emplace(id, std::move(active)).first->second;
  if (onJobChanged) onJobChanged(registered.job);
  return registered;
}

uint64_t Service::submitJob(core::Job job, const core::Repository& repository, std::optional<std::string> passwordOverride,
                            std::function<void(ActiveJob&, bool)> onFinished) {
  if (job.operation == core::JobOperation::ChangePassword)
    throw Error(ErrorCode::Internal, "a password change is submitted with submitPasswordChange");
  // Backups run as the volume's user and restores as the caller (set by their methods); the rest as the repository's.
  if (job.operation != core::JobOperation::Backup && job.operation != core::JobOperation::Restore) job.runAsUid = runAsOf(repository);
  // An admin's repository restored for someone else: split in two (Task::Extract).
  std::optional<Task::Extract> extract;
  if (job.operation == core::JobOperation::Restore && repository.privileged && job.runAsUid != 0) {
    auto as = users::lookup(job.runAsUid);
    if (!as)
      throw Error(ErrorCode::Failed, "the restore would write as uid " + std::to_string(job.runAsUid) + ", which has no entry in the user database");
    extract = Task::Extract{std::move(*as), job.target, {}};
    for (const auto& include : job.includes) {
      std::string member = include;
      while (!member.empty() && member.front() == '/') member.erase(0, 1);
      while (!member.empty() && member.back() == '/') member.pop_back();
      if (member.empty()) {  // "/": everything
        extract->members.clear();
        break;
      }
      extract->members.push_back(std::move(member));
    }
  }
  ActiveJob& active = registerJob(std::move(job), repository, std::move(onFinished));
  const uint64_t id = active.job.id;

  auto task = std::make_shared<Task>();
  task->repository = repository;
  task->mode = core::needsExclusiveLock(active.job.operation) ? core::LockMode::Exclusive : core::LockMode::Shared;
  task->passwordOverride = std::move(passwordOverride);
  task->runAsUid = active.job.runAsUid;
  if (extract) {
    task->runAsUid = 0;  // restic; tar runs as the job's user
    task->extract = std::move(extract);
  }
  task->countsTowardLimit = true;
  const core::Job& j = active.job;
  switch (j.operation) {
    case core::JobOperation::Backup: {
      auto volume = findVolume(j.volumeName);
      std::string path = volume ? volumeRoot(*volume) : std::string();
      const bool fuse = volume && volume->isNetwork() && volume->remote.driver != "cifs" && volume->remote.driver != "nfs";
      if (volume && volume->isNetwork()) task->mountVolume = *volume;
      auto schedule = j.scheduleId.empty() ? std::nullopt : this->schedule(j.scheduleId);
      if (!volume) {
        // Never a path built from nothing ("/" + an include): the job fails when it would start.
        std::string name = j.volumeName;
        task->args = [name](const restic::RepositoryContext&) -> std::vector<std::string> {
          throw Error(ErrorCode::NotFound, "volume \"" + name + "\" no longer exists");
        };
        break;
      }
      if (schedule) {
        // A schedule's backup: its own options, and --host so that its retention finds this host's snapshots.
        restic::BackupOptions options;
        for (const auto& include : schedule->includes) options.paths.push_back(path + "/" + include);
        if (options.paths.empty()) options.paths.push_back(path);
        options.tags = j.tags;
        options.excludes = j.excludes;
        options.excludeIfPresent = schedule->excludeIfPresent;
        options.oneFileSystem = schedule->oneFileSystem;
        options.host = hostName();
        options.compression = schedule->compression;
        options.ignoreInode = fuse;
        task->args = [options](const restic::RepositoryContext& ctx) { return restic::backupArgs(ctx, options); };
        break;
      }
      restic::BackupOptions options;
      options.paths = {path};
      options.tags = j.tags;
      options.excludes = j.excludes;
      options.ignoreInode = fuse;
      task->args = [options](const restic::RepositoryContext& ctx) { return restic::backupArgs(ctx, options); };
      break;
    }
    case core::JobOperation::Retention: {
      auto schedule = this->schedule(j.scheduleId);
      if (!schedule) {
        // Fails the job when it would start (never here: the job is registered already).
        std::string name = j.scheduleName;
        task->args = [name](const restic::RepositoryContext&) -> std::vector<std::string> {
          throw Error(ErrorCode::NotFound, "schedule \"" + name + "\" no longer exists");
        };
        break;
      }
      auto policy = schedule->retention;
      auto tag = core::scheduleTag(*schedule), host = hostName();
      task->args = [policy, tag, host](const restic::RepositoryContext& ctx) {
        return restic::forgetPolicyArgs(ctx, policy, tag, host, false);
      };
      break;
    }
    case core::JobOperation::Restore: {
      auto snapshot = j.snapshot, target = j.target;
      auto includes = j.includes;
      if (task->extract)
        task->args = [snapshot](const restic::RepositoryContext& ctx) { return restic::dumpTarArgs(ctx, snapshot); };
      else
        task->args = [=](const restic::RepositoryContext& ctx) { return restic::restoreArgs(ctx, snapshot, target, includes); };
      break;
    }
    case core::JobOperation::Forget: {
      auto snapshot = j.snapshot;
      task->args = [snapshot](const restic::RepositoryContext& ctx) { return restic::forgetArgs(ctx, snapshot); };
      break;
    }
    case core::JobOperation::Init: task->args = [](const restic::RepositoryContext& ctx) { return restic::initArgs(ctx); }; break;
    case core::JobOperation::Import: task->args = [](const restic::RepositoryContext& ctx) { return restic::catConfigArgs(ctx); }; break;
    case core::JobOperation::Unlock: task->args = [](const restic::RepositoryContext& ctx) { return restic::unlockArgs(ctx); }; break;
    case core::JobOperation::ChangePassword: break;  // refused above
    case core::JobOperation::Check: {
      auto subset = j.readDataSubset;
      task->args = [subset](const restic::RepositoryContext& ctx) { return restic::checkArgs(ctx, subset); };
      break;
    }
    case core::JobOperation::Prune: task->args = [](const restic::RepositoryContext& ctx) { return restic::pruneArgs(ctx); }; break;
    case core::JobOperation::UnlockAll:
      task->args = [](const restic::RepositoryContext& ctx) { return restic::unlockAllArgs(ctx); };
      break;
    case core::JobOperation::CheckConnection:
      task->args = [](const restic::RepositoryContext& ctx) { return restic::catConfigArgs(ctx); };
      break;
  }
  task->onStdout = [this, id](std::string_view line) {
    if (auto it = m_jobs.find(id); it != m_jobs.end()) {
      it->second->anyOutput = true;
      onJobStdout(*it->second, line);
    }
  };
  task->onStderr = [this, id](std::string_view line) {
    if (auto it = m_jobs.find(id); it != m_jobs.end()) {
      it->second->anyOutput = true;
      onJobStderr(*it->second, line);
    }
  };
  task->onStarted = [this, id](std::shared_ptr<process::Process> child) {
    auto it = m_jobs.find(id);
    if (it == m_jobs.end()) return;
    ActiveJob& a = *it->second;
    a.process = std::move(child);
    a.job.state = core::JobState::Running;
    a.job.started = now();
    a.job.childPid = a.process->pid();
    persist(a.job);
    log::info("job " + std::to_string(id) + " (" + std::string(core::toString(a.job.operation)) + ", repository \"" +
              a.job.repositoryName + "\") started: restic pid " + std::to_string(a.job.childPid));
    if (a.repository.isRemote()) watchSilence(a);
    pushProgress(a, true);
    if (onJobsChanged) onJobsChanged();
  };
  task->onDone = [this, id](const process::ProcessResult* result, std::optional<Error> failure) { finishJob(id, result, std::move(failure)); };
  active.task = task;
  active.ticket = runTask(task);
  if (onJobsChanged) onJobsChanged();
  return id;
}

void Service::appendLog(core::Job& job, std::string_view line) {
  if (line.empty()) return;
  std::string text = log::sanitize(line.substr(0, kMaxLogLineBytes));
  if (job.log.size() >= kMaxLogLines) job.log.erase(job.log.begin(), job.log.begin() + static_cast<long>(kMaxLogLines / 10));
  job.log.push_back(std::move(text));
}

void Service::onJobStdout(ActiveJob& a, std::string_view line) {
  if (a.job.operation == core::JobOperation::Backup) {
    auto event = restic::parseBackupLine(line);
    if (auto* progress = std::get_if<core::JobProgress>(&event)) {
      a.job.progress = std::move(*progress);
      pushProgress(a, false);
      return;
    }
    if (auto* summary = std::get_if<core::BackupSummary>(&event)) {
      a.job.summary = *summary;
      a.job.snapshot = summary->snapshotId;
      a.job.progress.filesDone = a.job.progress.filesTotal = summary->totalFilesProcessed;
      a.job.progress.bytesDone = a.job.progress.bytesTotal = summary->totalBytesProcessed;
      a.job.progress.percent = 100.0;
      return;
    }
  }
  if (a.job.operation == core::JobOperation::Retention) {
    // forget --json prints one line that can be far longer than a log line: read whole, summarized at the end.
    if (a.output.size() + line.size() < kMaxRetentionOutputBytes) {
      a.output.append(line);
      a.output.push_back('\n');
    } else {
      a.outputTruncated = true;
    }
    return;
  }
  appendLog(a.job, line);
}

std::string Service::retentionMessage(ActiveJob& a) {
  if (a.outputTruncated) return "retention applied; restic's list of kept and forgotten snapshots was too long to read";
  std::vector<restic::ForgetGroupResult> groups;
  try {
    groups = restic::parseForgetOutput(a.output);
  } catch (const Error& e) {
    return std::string("retention applied; restic's report could not be read: ") + e.what();
  }
  size_t kept = 0, removed = 0;
  for (const auto& g : groups) {
    kept += g.keep.size();
    removed += g.remove.size();
    for (const auto& id : g.remove) appendLog(a.job, "forgot snapshot " + id);
  }
  return "kept " + std::to_string(kept) + " and forgot " + std::to_string(removed) + " snapshot(s) of schedule \"" +
         a.job.scheduleName + "\" (prune frees their data)";
}

void Service::onJobStderr(ActiveJob& a, std::string_view line) {
  a.stderrTail.append(line);
  a.stderrTail.push_back('\n');
  if (a.stderrTail.size() > kStderrTailBytes) a.stderrTail.erase(0, a.stderrTail.size() - kStderrTailBytes);
  if (line.find("returned error, retrying after") != std::string_view::npos) watchRetries(a, line);
  if (a.job.operation == core::JobOperation::Backup) {
    auto event = restic::parseBackupLine(line);
    if (auto* error = std::get_if<restic::BackupError>(&event)) {
      if (a.job.warnings.size() < kMaxWarnings &&
          std::find(a.job.warnings.begin(), a.job.warnings.end(), error->item) == a.job.warnings.end())
        a.job.warnings.push_back(log::sanitize(error->item));
      appendLog(a.job, "error: " + error->message);
      return;
    }
  }
  appendLog(a.job, line);
}

// restic retries a failing backend with a growing back-off (up to a minute apart) for 15 minutes. A watch armed at
// the first retry looks again after repository_retry_seconds: restic still retrying then (a retry in the last 70 s)
// means the server is still failing, and the job is stopped and failed with the cause. Retries that stopped (the
// server came back) disarm it; the next one arms it afresh.
void Service::watchRetries(ActiveJob& a, std::string_view line) {
  a.lastRetryUsec = loop::EventLoop::nowUsec();
  a.lastRetryLine = log::sanitize(line.substr(0, 400));
  if (a.retryWatch || a.gaveUp) return;
  const uint64_t id = a.job.id;
  const unsigned limit = m_settings.repositoryRetrySeconds;
  const uint64_t armedUsec = a.lastRetryUsec;
  a.retryWatch = std::make_unique<loop::TimerSource>(m_loop, std::chrono::seconds(limit), [this, id, limit, armedUsec] {
    auto it = m_jobs.find(id);
    if (it == m_jobs.end()) return;
    ActiveJob& job = *it->second;
    retireTimer(job.retryWatch);
    const uint64_t nowUsec = loop::EventLoop::nowUsec();
    if (nowUsec - job.lastRetryUsec > 70ull * 1000000) return;
    const uint64_t failingSeconds = (nowUsec - armedUsec) / 1000000;
    giveUp(job, "the server has kept failing for " + std::to_string(failingSeconds) +
                    " s, so zerobyted stopped restic (after repository_retry_seconds, " + std::to_string(limit) +
                    " s); restic's last error: " + job.lastRetryLine);
  });
}

// restic 0.14 has no request timeout: a server that accepts the connection and never answers keeps it waiting,
// silent, for ever (it prints nothing before the repository is open). A remote repository's job whose restic has
// printed nothing at all after repository_retry_seconds is stopped and failed as Unreachable.
void Service::watchSilence(ActiveJob& a) {
  const uint64_t id = a.job.id;
  const unsigned limit = m_settings.repositoryRetrySeconds;
  a.silenceWatch = std::make_unique<loop::TimerSource>(m_loop, std::chrono::seconds(limit), [this, id, limit] {
    auto it = m_jobs.find(id);
    if (it == m_jobs.end()) return;
    ActiveJob& job = *it->second;
    retireTimer(job.silenceWatch);
    if (job.anyOutput) return;
    giveUp(job, "the server has not answered for " + std::to_string(limit) +
                    " s (repository_retry_seconds), so zerobyted stopped restic; is it overloaded, or is a firewall dropping "
                    "the connection?");
  });
}

// A job whose repository's server does not do its part: restic is stopped, and the job fails as Unreachable with
// `cause` (finishJob reads gaveUp). Once per job, and only while restic runs.
void Service::giveUp(ActiveJob& job, const std::string& cause) {
  if (!job.process || job.gaveUp) return;
  job.gaveUp = Error(ErrorCode::Unreachable, "repository \"" + job.job.repositoryName + "\": " + cause);
  log::warning("job " + std::to_string(job.job.id) + ": " + job.gaveUp->what());
  job.process->cancel();
}

void Service::retireTimer(std::unique_ptr<loop::TimerSource>& timer) {
  // Called from the timer's own handler: it is destroyed on the loop's next iteration, after the handler returned.
  m_loop.post([t = std::shared_ptr<loop::TimerSource>(std::move(timer))] {});
}

void Service::pushProgress(ActiveJob& a, bool force) {
  a.followers.erase(std::remove_if(a.followers.begin(), a.followers.end(), [](const RequestPtr& f) { return !f->alive(); }),
                    a.followers.end());
  if (a.followers.empty() && !onJobChanged) return;
  uint64_t nowUsec = loop::EventLoop::nowUsec();
  if (!force && nowUsec - a.lastPushUsec < kPushIntervalUsec) {
    if (!a.pushTimer) {
      uint64_t id = a.job.id;
      a.pushTimer = std::make_unique<loop::TimerSource>(
          m_loop, std::chrono::microseconds(kPushIntervalUsec - (nowUsec - a.lastPushUsec)), [this, id] {
            auto it = m_jobs.find(id);
            if (it == m_jobs.end()) return;
            retireTimer(it->second->pushTimer);
            pushProgress(*it->second, true);
          });
    }
    return;
  }
  a.lastPushUsec = nowUsec;
  if (!a.followers.empty()) {
    json reply = {{"job", toJson(a.job)}};
    for (auto& f : a.followers) f->replyMore(reply);
  }
  if (onJobChanged) onJobChanged(a.job);
}

void Service::persist(const core::Job& job) {
  auto txn = m_store.begin();
  txn.put(job);
  txn.commit();
}

void Service::finishJob(uint64_t id, const process::ProcessResult* result, std::optional<Error> failure) {
  auto it = m_jobs.find(id);
  if (it == m_jobs.end()) return;
  ActiveJob& a = *it->second;
  core::Job& j = a.job;
  if (failure) {
    j.state = failure->code() == ErrorCode::Cancelled ? core::JobState::Cancelled : core::JobState::Failed;
    j.message = failure->what();
    a.error = failure;
  } else if (a.gaveUp && result && !result->success()) {
    j.state = core::JobState::Failed;
    j.message = a.gaveUp->what();
    a.error = a.gaveUp;
  } else if (!result) {
    j.state = core::JobState::Cancelled;
    j.message = a.cancelReason.empty() ? "cancelled before it started" : a.cancelReason + " before it started";
  } else if (result->cancelled) {
    j.state = core::JobState::Cancelled;
    j.message = (a.cancelReason.empty() ? std::string("cancelled") : a.cancelReason) +
                (result->timedOut ? " (timed out)" : "") + "; restic ended with " + result->describe();
  } else if (result->success()) {
    j.state = core::JobState::Succeeded;
    switch (j.operation) {
      case core::JobOperation::Backup:
        j.progress.percent = 100.0;
        j.message = j.summary ? "snapshot " + j.summary->snapshotId + " saved" : "backup done";
        break;
      case core::JobOperation::Restore: j.message = "snapshot " + j.snapshot + " restored to " + j.target; break;
      case core::JobOperation::Forget: j.message = "snapshot " + j.snapshot + " forgotten (run prune to free its data)"; break;
      case core::JobOperation::Init: j.message = "repository initialised at " + core::describeRepository(a.repository); break;
      case core::JobOperation::Import: j.message = "repository at " + core::describeRepository(a.repository) + " opened with the given password"; break;
      case core::JobOperation::Unlock: j.message = "stale locks removed"; break;
      case core::JobOperation::ChangePassword: j.message = "password changed"; break;
      case core::JobOperation::Check:
        j.message = j.readDataSubset.empty() ? "no errors were found"
                                             : "no errors were found (with the data of subset " + j.readDataSubset + " read)";
        break;
      case core::JobOperation::Prune: j.message = "data no snapshot refers to was removed"; break;
      case core::JobOperation::UnlockAll: j.message = "every lock was removed"; break;
      case core::JobOperation::CheckConnection: j.message = "the repository at " + core::describeRepository(a.repository) + " opens with its password"; break;
      case core::JobOperation::Retention: j.message = retentionMessage(a); break;
    }
    if (!a.successMessage.empty()) j.message = a.successMessage;
  } else if (j.operation == core::JobOperation::Backup && result->exitCode == 3) {
    j.state = core::JobState::Warning;
    j.progress.percent = 100.0;
    j.message = (j.summary ? "snapshot " + j.summary->snapshotId + " saved, but " : std::string("backup done, but ")) +
                std::to_string(j.warnings.size()) + " path(s) could not be read; see the warnings";
  } else {
    int code = result->signal ? 128 + result->signal : result->exitCode;
    Error e = restic::classifyFailure(code, a.stderrTail, j.repositoryName);
    if (e.code() == ErrorCode::Failed && a.stderrTail.find("no matching ID found") != std::string::npos)
      e = Error(ErrorCode::NotFound, "no snapshot \"" + j.snapshot + "\" in repository \"" + j.repositoryName + "\"");
    if (e.code() == ErrorCode::RepositoryLocked && !a.retriedAfterUnlock && retriesAfterUnlock(j.operation) && !m_stopping &&
        a.cancelReason.empty())
      return retryAfterUnlock(id, e);
    if (e.code() == ErrorCode::RepositoryLocked && a.retriedAfterUnlock)
      e = Error(ErrorCode::RepositoryLocked, std::string(e.what()) +
                                                 " (zerobyted ran 'restic unlock', which removes only stale locks, and tried once more: "
                                                 "the lock is held by a live process)");
    j.state = core::JobState::Failed;
    j.message = e.what();
    a.error = e;
  }
  completeJob(id);
}

bool Service::retriesAfterUnlock(core::JobOperation op) {
  switch (op) {
    case core::JobOperation::Backup:
    case core::JobOperation::Restore:
    case core::JobOperation::Forget:
    case core::JobOperation::Check:
    case core::JobOperation::Retention:
    case core::JobOperation::Prune: return true;
    default: return false;  // unlock itself, init, import, connection checks, password changes
  }
}

// restic found the repository locked. `restic unlock` removes only stale locks (of dead processes on this host,
// or older than restic's limit), never a live one; then the job's own run is tried once more.
void Service::retryAfterUnlock(uint64_t id, const Error& lockError) {
  ActiveJob& a = *m_jobs.at(id);
  a.retriedAfterUnlock = true;
  a.process.reset();
  a.stderrTail.clear();
  a.job.state = core::JobState::Queued;
  a.job.childPid = 0;
  appendLog(a.job, std::string("zerobyted: ") + lockError.what());
  appendLog(a.job, "zerobyted: running 'restic unlock' (it removes only stale locks) and trying once more");
  log::notice("job " + std::to_string(id) + ": repository \"" + a.job.repositoryName +
              "\" is locked; removing stale restic locks and trying once more");
  persist(a.job);
  if (onJobChanged) onJobChanged(a.job);
  std::shared_ptr<Task> original = a.task;
  auto unlock = std::make_shared<Task>();
  unlock->repository = a.repository;
  unlock->mode = core::LockMode::Exclusive;
  unlock->runAsUid = runAsOf(a.repository);
  unlock->countsTowardLimit = true;
  unlock->args = [](const restic::RepositoryContext& ctx) { return restic::unlockArgs(ctx); };
  auto log = [this, id](std::string_view line) {
    if (auto it = m_jobs.find(id); it != m_jobs.end()) appendLog(it->second->job, "restic unlock: " + std::string(line));
  };
  unlock->onStdout = log;
  unlock->onStderr = log;
  unlock->onStarted = [this, id](std::shared_ptr<process::Process> child) {
    if (auto it = m_jobs.find(id); it != m_jobs.end()) it->second->process = std::move(child);
  };
  unlock->onDone = [this, id, original](const process::ProcessResult* result, std::optional<Error> failure) {
    auto it = m_jobs.find(id);
    if (it == m_jobs.end()) return;
    ActiveJob& job = *it->second;
    job.process.reset();
    if (!job.cancelReason.empty()) return finishJob(id, nullptr, std::nullopt);
    if (failure || !result || !result->success())
      appendLog(job.job, "zerobyted: restic unlock did not succeed" + (failure ? std::string(": ") + failure->what() : std::string()));
    job.task = original;
    job.ticket = runTask(original);
  };
  a.task = unlock;
  a.ticket = runTask(unlock);
}

void Service::completeJob(uint64_t id) {
  auto it = m_jobs.find(id);
  if (it == m_jobs.end()) return;
  ActiveJob& a = *it->second;
  core::Job& j = a.job;
  j.finished = now();
  if (j.state == core::JobState::Failed) j.error = std::string(errorName(a.error ? a.error->code() : ErrorCode::Failed));
  j.progress.currentFiles.clear();
  j.progress.secondsRemaining.reset();
  bool success = j.state == core::JobState::Succeeded || j.state == core::JobState::Warning;
  bool deferPersist = success && (j.operation == core::JobOperation::Init || j.operation == core::JobOperation::Import);
  if (!deferPersist) persist(j);  // init/import write the job together with the new repository
  log::info("job " + std::to_string(id) + " (" + std::string(core::toString(j.operation)) + ") ended " +
            std::string(core::toString(j.state)) + ": " + j.message);
  json final = {{"job", toJson(j)}};
  for (auto& f : a.followers)
    if (f->alive()) f->reply(final);
  a.followers.clear();
  if (onJobChanged) onJobChanged(j);
  std::unique_ptr<ActiveJob> done = std::move(it->second);
  m_jobs.erase(it);
  if (success && (j.operation == core::JobOperation::Backup || j.operation == core::JobOperation::Forget ||
                  j.operation == core::JobOperation::Retention))
    invalidateSnapshots(j.repositoryId, !m_stopping);
  if (done->onFinished) done->onFinished(*done, success);
  m_store.trimJobs(m_settings.jobHistory);
  if (onJobsChanged) onJobsChanged();
  resourcesChanged();
  checkShutdownDone();
}

std::vector<core::Job> Service::activeJobs() const {
  std::vector<core::Job> jobs;
  for (const auto& [id, active] : m_jobs) jobs.push_back(active->job);
  return jobs;
}

std::optional<core::Job> Service::findJob(uint64_t id) const {
  if (auto it = m_jobs.find(id); it != m_jobs.end()) return it->second->job;
  return m_store.job(id);
}

size_t Service::runningJobs() const {
  return static_cast<size_t>(std::count_if(m_jobs.begin(), m_jobs.end(), [](const auto& j) { return j.second->job.state == core::JobState::Running; }));
}

size_t Service::queuedJobs() const {
  return static_cast<size_t>(std::count_if(m_jobs.begin(), m_jobs.end(), [](const auto& j) { return j.second->job.state == core::JobState::Queued; }));
}

// ---- job methods ----

void Service::startBackup(const json& p, const RequestPtr& r) {
  auto volume = requireVolume(stringParam(p, "volume"));
  auto repo = requireRepository(stringParam(p, "repository"));
  auto tags = stringListParam(p, "tags");
  auto excludes = stringListParam(p, "excludes");
  for (const auto& t : tags) core::validateUserTag(t, "tags");
  for (const auto& e : excludes) core::validateExcludePattern(e);
  requireSameIdentity(volume, repo, "back up");
  const uint32_t readsAs = readsAsOf(volume);
  struct stat st {};
  // A network volume is mounted when the job starts.
  if (!volume.isNetwork() && (stat(volume.path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)))
    throw Error(ErrorCode::Failed, "volume \"" + volume.name + "\": " + volume.path + " is not an accessible directory");
  core::Job job;
  job.operation = core::JobOperation::Backup;
  job.volumeId = volume.id;
  job.volumeName = volume.name;
  job.tags = tags;
  job.excludes = excludes;
  job.startedByUid = r->caller().uid;
  // Nobody backs up through zerobyted what the volume's owner could not read.
  job.runAsUid = readsAs;
  uint64_t id = submitJob(std::move(job), repo, std::nullopt, nullptr);
  r->reply({{"job", toJson(*findJob(id))}});
}

void Service::startRestore(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "repository"));
  std::string snapshot = stringParam(p, "snapshot"), target = stringParam(p, "target");
  core::validateSnapshotId(snapshot);
  core::validateAbsolutePath(target, "restore target");
  auto includes = stringListParam(p, "includes");
  for (const auto& i : includes) core::validateSnapshotPath(i, "include path");
  core::Job job;
  job.operation = core::JobOperation::Restore;
  job.snapshot = snapshot;
  job.target = target;
  job.includes = includes;
  job.startedByUid = r->caller().uid;
  whenAllowed(r, Action::Admin, ownScope(), [this, r, repo, job = std::move(job)](bool admin) mutable {
    const uid_t caller = r->caller().uid;
    if (repo.privileged) {
      // An admin's repository: restored as root for admins. For anyone else (an operator), restic still runs as
      // root, so the repository and its credentials never reach their processes, and tar writes its stream as
      // them (Task::Extract): only where they could write.
      if (!admin) {
        requireAccessAs(caller, job.target, process::AccessKind::WriteDirectory, "restore target", "target");
        // tar needs its directory: made here as the caller (with its missing parents, as restic restore would).
        if (auto identity = users::lookup(caller)) {
          auto made = process::makeDirectoryAs(*identity, job.target);
          if (!made.allowed)
            throw Error(made.error == EACCES || made.error == EPERM ? ErrorCode::NotAuthorized : ErrorCode::Failed,
                        "restore target " + job.target + " could not be made by " + identity->name + ": " + made.reason,
                        {{"parameter", "target"}});
        }
      }
      job.runAsUid = admin ? 0 : caller;
    } else {
      // A user's repository is restored as that user, never as root: its snapshots are theirs to shape (a setuid
      // file, a symlink), and its password stays with them. Someone else restoring it needs the target to be
      // writable by both.
      job.runAsUid = repo.ownerUid;
      requireAccessAs(repo.ownerUid, job.target, process::AccessKind::WriteDirectory, "restore target", "target");
      if (!admin && caller != repo.ownerUid)
        requireAccessAs(caller, job.target, process::AccessKind::WriteDirectory, "restore target", "target");
    }
    struct stat st {};
    if (lstat(job.target.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
      throw Error(ErrorCode::InvalidArgument, "restore target " + job.target + " exists and is not a directory", {{"parameter", "target"}});
    uint64_t id = submitJob(std::move(job), repo, std::nullopt, nullptr);
    r->reply({{"job", toJson(*findJob(id))}});
  });
}

void Service::forgetSnapshot(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "repository"));
  std::string snapshot = stringParam(p, "snapshot");
  core::validateSnapshotId(snapshot);
  if (snapshot == "latest")
    throw Error(ErrorCode::InvalidArgument, "name the snapshot to forget by its id, not \"latest\"", {{"parameter", "snapshot"}});
  core::Job job;
  job.operation = core::JobOperation::Forget;
  job.snapshot = snapshot;
  job.startedByUid = r->caller().uid;
  uint64_t id = submitJob(std::move(job), repo, std::nullopt, nullptr);
  r->reply({{"job", toJson(*findJob(id))}});
}

void Service::checkRepository(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "name"));
  core::Job job;
  job.operation = boolParam(p, "connection") ? core::JobOperation::CheckConnection : core::JobOperation::Check;
  job.startedByUid = r->caller().uid;
  if (auto subset = optionalStringParam(p, "read_data_subset")) {
    if (job.operation == core::JobOperation::CheckConnection)
      throw Error(ErrorCode::InvalidArgument, "a connection check reads no data; give read_data_subset without connection",
                  {{"parameter", "read_data_subset"}});
    core::validateReadDataSubset(*subset);
    job.readDataSubset = *subset;
  }
  uint64_t id = submitJob(std::move(job), repo, std::nullopt, nullptr);
  r->reply({{"job", toJson(*findJob(id))}});
}

void Service::listJobs(const json& p, const RequestPtr& r) {
  int64_t limit = optionalIntParam(p, "limit").value_or(100);
  if (limit < 1 || limit > 100000)
    throw Error(ErrorCode::InvalidArgument, "limit must be from 1 to 100000", {{"parameter", "limit"}});
  std::optional<core::JobState> state;
  if (auto s = optionalStringParam(p, "state")) {
    state = core::jobStateFromString(*s);
    if (!state)
      throw Error(ErrorCode::InvalidArgument,
                  "unknown job state \"" + log::sanitize(*s) + "\"; use queued, running, succeeded, warning, failed, cancelled, interrupted or skipped",
                  {{"parameter", "state"}});
  }
  whenAllowed(r, Action::View, everyoneScope(), [this, r, limit, state](bool all) {
    std::map<uint64_t, core::Job, std::greater<>> jobs;
    for (auto& j : m_store.jobs()) jobs[j.id] = std::move(j);
    for (const auto& [id, a] : m_jobs) jobs[id] = a->job;
    auto groups = users::groupsOf(r->caller().uid);
    json list = json::array();
    for (const auto& [id, j] : jobs) {
      if (state && j.state != *state) continue;
      if (!all && !scopeOf(j, r->caller(), groups).callerOwns) continue;
      list.push_back(toJson(j));
      if (static_cast<int64_t>(list.size()) >= limit) break;
    }
    r->reply({{"jobs", list}});
  });
}

namespace {
uint64_t jobIdParam(const json& p) {
  int64_t id = p.at("id").get<int64_t>();
  if (id < 1) throw Error(ErrorCode::InvalidArgument, "job ids are positive integers", {{"parameter", "id"}});
  return static_cast<uint64_t>(id);
}
Error jobNotFound(uint64_t id) { return Error(ErrorCode::NotFound, "no job " + std::to_string(id) + "; see 'zerobytectl job list'"); }
}  // namespace

void Service::getJob(const json& p, const RequestPtr& r) {
  uint64_t id = jobIdParam(p);
  auto job = findJob(id);
  if (!job) throw jobNotFound(id);
  r->reply({{"job", toJson(*job)}});
}

void Service::followJob(const json& p, const RequestPtr& r) {
  uint64_t id = jobIdParam(p);
  auto it = m_jobs.find(id);
  if (it == m_jobs.end()) {
    auto job = m_store.job(id);
    if (!job) throw jobNotFound(id);
    r->reply({{"job", toJson(*job)}});
    return;
  }
  ActiveJob& a = *it->second;
  r->replyMore({{"job", toJson(a.job)}});
  a.followers.push_back(r);
  a.lastPushUsec = loop::EventLoop::nowUsec();
  r->onGone([this, id, raw = r.get()] {
    auto found = m_jobs.find(id);
    if (found == m_jobs.end()) return;
    auto& followers = found->second->followers;
    followers.erase(std::remove_if(followers.begin(), followers.end(), [raw](const RequestPtr& f) { return f.get() == raw; }), followers.end());
  });
}

void Service::getJobLog(const json& p, const RequestPtr& r) {
  uint64_t id = jobIdParam(p);
  auto job = findJob(id);
  if (!job) throw jobNotFound(id);
  r->reply({{"lines", job->log}});
}

void Service::cancelJob(const json& p, const RequestPtr& r) {
  uint64_t id = jobIdParam(p);
  auto it = m_jobs.find(id);
  if (it == m_jobs.end()) {
    auto job = m_store.job(id);
    if (!job) throw jobNotFound(id);
    throw Error(ErrorCode::Conflict, "job " + std::to_string(id) + " has already ended (" + std::string(core::toString(job->state)) + ")");
  }
  ActiveJob& a = *it->second;
  // Between its restic runs a password change holds secrets the repository and the store must agree on.
  if (a.job.operation == core::JobOperation::ChangePassword && a.job.state == core::JobState::Running)
    throw Error(ErrorCode::Conflict, "job " + std::to_string(id) + " is changing the password of repository \"" +
                                         a.job.repositoryName +
                                         "\" and cannot be cancelled once it has started; it ends within seconds");
  a.cancelReason = "cancelled by uid " + std::to_string(r->caller().uid);
  log::info("job " + std::to_string(id) + " " + a.cancelReason);
  if (!a.process) {
    a.task->withdrawn = true;
    m_locks.release(a.ticket);
    json reply;
    finishJob(id, nullptr, std::nullopt);
    r->reply({{"job", toJson(*findJob(id))}});
    return;
  }
  a.process->cancel();
  core::Job snapshot = a.job;
  snapshot.message = "cancelling";
  r->reply({{"job", toJson(snapshot)}});
}

// ---- start and stop ----

void Service::recover() {
  // Credential files a crash left behind go before anything else runs.
  if (!m_settings.credentialsDirectory.empty()) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(m_settings.credentialsDirectory, ec))
      mount::removeSecretDirectory(entry.path());
  }
  std::map<std::string, core::Repository> toUnlock;
  for (auto& job : m_store.jobs()) {
    if (core::isFinished(job.state)) continue;
    bool wasRunning = job.state == core::JobState::Running;
    std::string was(core::toString(job.state));
    job.state = core::JobState::Interrupted;
    job.finished = now();
    job.message = "interrupted: zerobyted stopped while the job was " + was +
                  (job.childPid ? " (restic pid " + std::to_string(job.childPid) + ")" : std::string());
    persist(job);
    log::warning("job " + std::to_string(job.id) + " was " + was + " when zerobyted stopped; marked interrupted");
    if (!wasRunning) continue;
    for (const auto& repo : allRepositories())
      if (repo.id == job.repositoryId) toUnlock[repo.id] = repo;
  }
  for (const auto& [id, repo] : toUnlock) {
    log::notice("removing stale restic locks of repository \"" + repo.name + "\" left by an interrupted job");
    core::Job job;
    job.operation = core::JobOperation::Unlock;
    job.startedByUid = 0;
    submitJob(std::move(job), repo, std::nullopt, nullptr);
  }
  // A pending password is a change that stopped half-way: the repository may or may not know it yet.
  for (const auto& repo : m_store.repositories()) {
    if (repo.pendingPassword.empty()) continue;
    log::notice("repository \"" + repo.name + "\" has a password change zerobyted was stopped in; finishing it");
    core::Job job;
    job.operation = core::JobOperation::ChangePassword;
    job.startedByUid = 0;
    submitPasswordChange(std::move(job), repo, true);
  }
}

void Service::shutdown(std::function<void()> done) {
  m_stopping = true;
  m_mounter->beginShutdown();
  m_shutdownDone = std::move(done);
  std::vector<uint64_t> ids;
  for (const auto& [id, a] : m_jobs) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = m_jobs.find(id);
    if (it == m_jobs.end()) continue;
    ActiveJob& a = *it->second;
    a.cancelReason = "cancelled: zerobyted is stopping";
    if (a.process) {
      a.process->cancel();
    } else {
      a.task->withdrawn = true;
      m_locks.release(a.ticket);
      finishJob(id, nullptr, std::nullopt);
    }
  }
  m_runner.cancelAll();
  checkShutdownDone();
}

void Service::checkShutdownDone() {
  if (!m_stopping || !m_shutdownDone) return;
  if (m_runner.running() > 0 || !m_jobs.empty()) return;
  auto done = std::move(m_shutdownDone);
  m_shutdownDone = nullptr;
  // No job reads a volume any more: everything zerobyted mounted is unmounted before it exits.
  m_mounter->shutdown([this, done = std::move(done)] { m_loop.post(done); });
}

}  // namespace zerobyte::api
