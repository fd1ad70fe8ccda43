// The service layer both transports call: parse → validate → authorize → act → reply.
#pragma once

#include "common/users.h"
#include "daemon/api/audit.h"
#include "daemon/api/authorizer.h"
#include "daemon/api/request.h"
#include "daemon/config/config.h"
#include "daemon/core/model.h"
#include "daemon/core/repository_locks.h"
#include "daemon/core/token_bucket.h"
#include "daemon/loop/event_loop.h"
#include "daemon/mount/mounter.h"
#include "daemon/process/process_runner.h"
#include "daemon/process/run_as.h"
#include "daemon/restic/restic.h"

#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace zerobyte::store {
class Store;
}
namespace zerobyte::secrets {
class Vault;
class SecretString;
}

namespace zerobyte::api {

struct ServiceSettings {
  std::string stateDirectory;
  std::string cacheDirectory;
  std::string resticBinary;
  std::string resticVersion;
  unsigned jobHistory = 1000;
  unsigned cancelGraceSeconds = 10;
  unsigned maxConcurrentJobs = 4;
  mount::MounterSettings mount;
  // <runtime>/repository-credentials: one directory per restic child of a remote repository (its key, known_hosts,
  // rclone.conf, ...), owned by the user restic runs as, removed when the child ends.
  std::string credentialsDirectory;
  unsigned repositoryRetrySeconds = 600;  // see config::DaemonSettings::repositoryRetrySeconds
};

class Service {
 public:
  Service(loop::EventLoop& loop, process::ProcessRunner& runner, store::Store& store, secrets::Vault& vault,
          Authorizer& authorizer, ServiceSettings settings);
  ~Service();

  // Declared resources from the configuration (at start and on reload).
  void setDeclared(const config::Config& config);
  void setSettings(unsigned jobHistory, unsigned cancelGraceSeconds, unsigned maxConcurrentJobs, unsigned repositoryRetrySeconds);
  // At start: jobs the last run left unfinished become "interrupted"; stale restic locks
  // of the repositories they used are removed (restic unlock: stale locks only).
  void recover();
  // Starts the schedules' timers: a schedule whose fire time passed while zerobyted was stopped (since its
  // last handled fire time) runs once now ("catch-up"), however many fire times it missed.
  void startScheduler();
  // Reconciles the mounts the last run left and mounts the volumes kept mounted (after recover()).
  void startMounts();
  void setMountSettings(mount::MounterSettings settings);
  // One entry point for every method of org.zerobyte.Daemon.
  void dispatch(const std::string& method, const nlohmann::json& parameters, RequestPtr request);
  // Cancels every job; `done` runs once no child is left.
  void shutdown(std::function<void()> done);

  // The audit trail (its limits come from the configuration).
  AuditLog& auditLog() { return m_audit; }

  size_t runningJobs() const;
  size_t queuedJobs() const;
  // Called whenever a job starts or ends (for sd_notify STATUS=).
  std::function<void()> onJobsChanged;

  // For the D-Bus objects, which mirror the resources and jobs (daemon/dbus).
  std::vector<core::Volume> volumes() const { return allVolumes(); }
  std::vector<core::Repository> repositories() const { return allRepositories(); }
  std::vector<core::Schedule> schedules() const { return allSchedules(); }
  std::optional<core::Schedule> schedule(const std::string& id) const;
  // A schedule as GetSchedule answers it (with its next run and running job).
  nlohmann::json scheduleRecord(const core::Schedule& schedule) const { return scheduleJson(schedule); }
  // A volume as GetVolume answers it (with a network volume's mount state).
  nlohmann::json volumeRecord(const core::Volume& volume) const { return volumeJson(volume); }
  std::optional<core::Job> job(uint64_t id) const { return findJob(id); }
  // Jobs queued or running now.
  std::vector<core::Job> activeJobs() const;
  std::optional<size_t> snapshotCount(const std::string& repositoryId) const { return cachedSnapshotCount(repositoryId); }
  const ServiceSettings& settings() const { return m_settings; }
  const Authorizer& authorizer() const { return m_authorizer; }
  // For reads that must be answered at once and cannot wait for polkit (D-Bus property reads):
  // may the caller view this, by the role rule that the shipped polkit rules apply too
  // (allowedByRole; docs/architecture.md says why).
  // A viewer is looked up once (groups, role) and asked about many resources.
  struct Viewer {
    Caller caller;
    std::vector<gid_t> groups;
    Role role = Role::None;
  };
  Viewer viewer(const Caller& caller) const;
  bool mayViewNow(const Viewer& viewer, const core::Volume& volume) const;
  bool mayViewNow(const Viewer& viewer, const core::Repository& repository) const;
  bool mayViewNow(const Viewer& viewer, const core::Job& job) const;
  bool mayViewNow(const Viewer& viewer, const core::Schedule& schedule) const;
  // The groups of the roles (daemon.viewer_group …), for mayViewNow.
  void setRoleGroups(RoleGroups groups);
  // Called when volumes or repositories were added or removed, or a repository's snapshot list changed;
  // before the reply of the request that did it.
  std::function<void()> onResourcesChanged;
  // Called when a job is registered (before the reply that names it), changes state, makes progress (at most
  // 4 times a second) and ends.
  std::function<void(const core::Job&)> onJobChanged;

  struct MethodSpec;
  // One authorization a request needs: an action on a scope.
  struct AccessCheck {
    Action action;
    Scope scope;
  };

 private:
  struct ActiveJob;
  struct Task;
  static const std::vector<MethodSpec>& methods();

  // Resources
  void getStatus(const nlohmann::json& p, const RequestPtr& r);
  void createVolume(const nlohmann::json& p, const RequestPtr& r);
  void listVolumes(const nlohmann::json& p, const RequestPtr& r);
  void getVolume(const nlohmann::json& p, const RequestPtr& r);
  void deleteVolume(const nlohmann::json& p, const RequestPtr& r);
  // Network volumes (service_volumes.cpp)
  void mountVolume(const nlohmann::json& p, const RequestPtr& r);
  void unmountVolume(const nlohmann::json& p, const RequestPtr& r);
  void testVolume(const nlohmann::json& p, const RequestPtr& r);
  // A volume as the API shows it: its fields, for a network volume its remote, secrets (set or not) and mount state.
  nlohmann::json volumeJson(const core::Volume& volume) const;
  // The volume's secrets now (stored or referenced), for one mount.
  core::MountSecrets volumeSecrets(const core::Volume& volume) const;
  // What restic backs up: the directory, or the network volume's mount point.
  std::string volumeRoot(const core::Volume& volume) const;
  void createRepository(const nlohmann::json& p, const RequestPtr& r);
  void importRepository(const nlohmann::json& p, const RequestPtr& r);
  void listRepositories(const nlohmann::json& p, const RequestPtr& r);
  void getRepository(const nlohmann::json& p, const RequestPtr& r);
  void deleteRepository(const nlohmann::json& p, const RequestPtr& r);
  // A repository a CreateRepository or ImportRepository request describes (validated), and the credential values
  // it carries (sealed once the record has its id).
  struct NewRepository {
    core::Repository repository;
    std::vector<std::pair<std::string, std::string>> credentialValues;
  };
  NewRepository repositoryFromRequest(const nlohmann::json& p) const;
  void addRepository(NewRepository draft, const std::string& password, core::JobOperation operation, const RequestPtr& r);
  void submitRepository(NewRepository draft, const std::string& password, bool privileged, core::JobOperation operation,
                        const RequestPtr& r);
  // The group a new resource is shared with ("group" parameter): it exists and the caller is in it.
  std::optional<uint32_t> sharedGroup(const nlohmann::json& p, const Caller& caller) const;
  // Throws NotAuthorized unless `uid`, as itself, could read (or write) `path`.
  void requireAccessAs(uid_t uid, const std::string& path, process::AccessKind kind, const char* what,
                       const char* parameter) const;
  // Jobs
  void startBackup(const nlohmann::json& p, const RequestPtr& r);
  void startRestore(const nlohmann::json& p, const RequestPtr& r);
  void forgetSnapshot(const nlohmann::json& p, const RequestPtr& r);
  void checkRepository(const nlohmann::json& p, const RequestPtr& r);
  void listJobs(const nlohmann::json& p, const RequestPtr& r);
  void getJob(const nlohmann::json& p, const RequestPtr& r);
  void followJob(const nlohmann::json& p, const RequestPtr& r);
  void getJobLog(const nlohmann::json& p, const RequestPtr& r);
  void cancelJob(const nlohmann::json& p, const RequestPtr& r);
  // Snapshots
  void listSnapshots(const nlohmann::json& p, const RequestPtr& r);
  void listFiles(const nlohmann::json& p, const RequestPtr& r);
  // Secrets
  void revealRepositoryPassword(const nlohmann::json& p, const RequestPtr& r);
  void changeRepositoryPassword(const nlohmann::json& p, const RequestPtr& r);
  void rotateMasterKey(const nlohmann::json& p, const RequestPtr& r);
  // Audit (service_audit.cpp)
  void listAudit(const nlohmann::json& p, const RequestPtr& r);
  // Maintenance (service_maintenance.cpp)
  void pruneRepository(const nlohmann::json& p, const RequestPtr& r);
  void unlockRepository(const nlohmann::json& p, const RequestPtr& r);
  void removeAllRepositoryLocks(const nlohmann::json& p, const RequestPtr& r);
  void getRepositoryStats(const nlohmann::json& p, const RequestPtr& r);
  // One short restic run under a shared repository lock (not a job, not counted toward the job limit): its whole
  // stdout, or the classified failure.
  void runQuery(const core::Repository& repository, std::function<std::vector<std::string>(const restic::RepositoryContext&)> args,
                std::function<void(std::optional<Error>, const std::string&)> done, size_t maxOutputBytes = 8 * 1024 * 1024);
  // Reads the locks `ids` from `index` on (restic cat lock), one at a time, into `holders`; then `done`.
  void describeLocks(const core::Repository& repo, std::shared_ptr<std::vector<std::string>> ids, size_t index,
                     std::shared_ptr<std::vector<std::string>> holders, std::function<void()> done);
  // Schedules (service_schedules.cpp)
  void createSchedule(const nlohmann::json& p, const RequestPtr& r);
  void listSchedules(const nlohmann::json& p, const RequestPtr& r);
  void getSchedule(const nlohmann::json& p, const RequestPtr& r);
  void editSchedule(const nlohmann::json& p, const RequestPtr& r);
  void deleteSchedule(const nlohmann::json& p, const RequestPtr& r);
  void enableSchedule(const nlohmann::json& p, const RequestPtr& r);
  void disableSchedule(const nlohmann::json& p, const RequestPtr& r);
  void runSchedule(const nlohmann::json& p, const RequestPtr& r);
  void getScheduleFireTimes(const nlohmann::json& p, const RequestPtr& r);
  void previewRetention(const nlohmann::json& p, const RequestPtr& r);
  nlohmann::json scheduleJson(const core::Schedule& schedule) const;
  // Reads the schedule fields of CreateSchedule/EditSchedule that are present into `s`, validating each.
  void applyScheduleParameters(const nlohmann::json& p, core::Schedule& s) const;
  // The volume and repository a schedule backs up from and into, checked as StartBackup checks them.
  std::pair<core::Volume, core::Repository> scheduleResources(const core::Schedule& s) const;
  void putSchedule(const core::Schedule& s);
  void loadSchedules();
  // The schedules of the configuration file into the store (where the scheduler's state of each lives):
  // new ones added, changed ones updated (keeping when they last ran), removed ones erased.
  void syncDeclaredSchedules(const config::Config& config);

  // Access (service_access.cpp): the checks a request needs, asked in order; denials are audited,
  // counted per uid (a token bucket slows repeated denials) and answered with NotAuthorized, or
  // NotFound when the caller may not even see the resource.
  std::vector<AccessCheck> checksFor(const MethodSpec& spec, const nlohmann::json& p, const Caller& caller) const;
  static bool sameResources(const std::vector<AccessCheck>& a, const std::vector<AccessCheck>& b);
  std::vector<AccessCheck> checksOnTarget(const MethodSpec& spec, const nlohmann::json& p, const Caller& caller) const;
  // Throws RateLimited when `uid` has used up its denials, has too many requests waiting for a decision, or (for
  // requests that may change something) makes changes faster than any person or script needs. Root is exempt.
  void admitRequest(uid_t uid, bool changes);
  // Asks every check of a request, then runs its handler; `settle` once the decision is in.
  void authorizeDispatch(const MethodSpec* spec, nlohmann::json params, const RequestPtr& request,
                         std::shared_ptr<std::vector<AccessCheck>> checks, bool interactive, std::function<void()> settle);
  void authorizeAll(const Caller& caller, std::shared_ptr<std::vector<AccessCheck>> checks, size_t index, bool interactive,
                    std::function<void(const AccessCheck* denied, const Decision&)> done);
  void answerDenied(std::string_view method, const AccessCheck& check, const Decision& decision, bool interactive,
                    const RequestPtr& r);
  // Retry-after in seconds when the caller's uid has used up its denials, else 0.
  uint64_t denialRetryAfter(uid_t uid);
  void countDenial(uid_t uid);
  Scope scopeOf(const core::Volume& v, const Caller& caller, const std::vector<gid_t>& groups) const;
  Scope scopeOf(const core::Repository& r, const Caller& caller, const std::vector<gid_t>& groups) const;
  Scope scopeOf(const core::Job& j, const Caller& caller, const std::vector<gid_t>& groups) const;
  Scope scopeOf(const core::Schedule& s, const Caller& caller, const std::vector<gid_t>& groups) const;
  // Decisions inside handlers, never interactive: may the caller see everyone's resources; is it an admin.
  void whenAllowed(const RequestPtr& r, Action action, const Scope& scope, std::function<void(bool)> then);

  void resourcesChanged();
  template <typename Resource>
  bool mayViewNowOf(const Viewer& viewer, const Resource& resource) const;

  // Lookups
  std::vector<core::Volume> allVolumes() const;
  std::vector<core::Repository> allRepositories() const;
  std::optional<core::Volume> findVolume(const std::string& name) const;
  std::optional<core::Repository> findRepository(const std::string& name) const;
  core::Volume requireVolume(const std::string& name) const;
  core::Repository requireRepository(const std::string& name) const;
  std::optional<size_t> cachedSnapshotCount(const std::string& repositoryId) const;
  std::optional<core::Job> findJob(uint64_t id) const;
  std::vector<core::Schedule> allSchedules() const;
  std::optional<core::Schedule> findSchedule(const std::string& name) const;
  core::Schedule requireSchedule(const std::string& name) const;
  // The schedules that back up this volume or into this repository (which then cannot be deleted).
  std::vector<std::string> schedulesUsing(const std::string& volumeName, const std::string& repositoryName) const;
  bool repositoryHasActiveJobs(const std::string& repositoryId) const;

  // restic children under the daemon's repository lock
  core::RepositoryLocks::Ticket runTask(std::shared_ptr<Task> task);
  // A split restore (Task::extract): tar, as the user, reading restic's tar stream from `fd` (taken); and the
  // outcome of the two once both have ended (restic's failure first, then tar's).
  struct SplitRestore;
  using TaskFinish = std::function<void(const process::ProcessResult*, std::optional<Error>)>;
  void startExtract(const std::shared_ptr<Task>& task, const std::shared_ptr<SplitRestore>& split, int fd, TaskFinish finish);
  static void finishSplitRestore(const Task& task, SplitRestore& split, const TaskFinish& finish);
  // Privilege separation: restic for a repository runs as root when an admin made it (privileged),
  // else as its owner, with a cache of that user's own.
  uint32_t runAsOf(const core::Repository& repository) const;
  // restic reads a volume as its owner, or as root for an admin's.
  uint32_t readsAsOf(const core::Volume& volume) const;
  // Throws NotAuthorized unless the volume is read as the same user the repository is used as ("back up",
  // "schedule backups" say what the caller should do instead).
  void requireSameIdentity(const core::Volume& volume, const core::Repository& repo, std::string_view verb) const;
  std::string cacheHome(uint32_t uid) const;
  // Where a helper under restic (ssh) logged why it failed, and who may own that file.
  struct HelperLog {
    std::string path;  // empty: none
    uid_t owner = 0;
  };
  // restic for `repository` as `runAsUid`: the context its argv is built from, and in `spec` its environment,
  // identity (prepareRunAs) and the repository string when that holds a secret. The credential files a remote
  // backend needs are written for this one child; `files` removes them when its last copy goes.
  struct ResticLaunch {
    restic::RepositoryContext ctx;
    std::shared_ptr<void> files;
    HelperLog helperLog;
  };
  // Hands the helper log's lines to `sink` as stderr lines "ssh: ...", once restic has ended (before `files` goes).
  static void replayHelperLog(const HelperLog& log, const std::function<void(std::string_view)>& sink);
  ResticLaunch prepareRestic(const core::Repository& repository, uint32_t runAsUid, process::ProcessSpec& spec) const;
  // A program restic or a restore needs (ssh, rclone, tar), on the mount helpers' path; Error(Failed) naming the
  // package when it is missing.
  std::string locateHelper(const char* program, const char* package) const;
  // The child's environment (with ctx.extraEnv), identity (uid, gid, supplementary groups; none: root with
  // restic's capabilities) and directories.
  void prepareRunAs(process::ProcessSpec& spec, const restic::RepositoryContext& ctx,
                    const std::optional<users::Identity>& identity) const;
  // A remote repository's backend credentials (stored ones opened, references resolved), by wire name.
  std::map<std::string, std::string> credentialsOf(const core::Repository& repository) const;
  // The password as stored now (not as `repository` was copied earlier: a password change or a
  // master key rotation may have happened since), or resolved from its reference.
  secrets::SecretString passwordOf(const core::Repository& repository) const;

  // Jobs
  uint64_t submitJob(core::Job job, const core::Repository& repository, std::optional<std::string> passwordOverride,
                     std::function<void(ActiveJob&, bool success)> onFinished);
  // Stores a new job as queued and tracks it; the caller attaches its task and lock ticket.
  ActiveJob& registerJob(core::Job job, const core::Repository& repository, std::function<void(ActiveJob&, bool)> onFinished);
  // The common end of every job once its state and message are set: persisted, logged,
  // followers answered, forgotten.
  void completeJob(uint64_t id);
  void onJobStdout(ActiveJob& job, std::string_view line);
  void onJobStderr(ActiveJob& job, std::string_view line);
  void watchRetries(ActiveJob& job, std::string_view line);
  void watchSilence(ActiveJob& job);
  void giveUp(ActiveJob& job, const std::string& cause);
  // Releases a job's timer from inside its own handler.
  void retireTimer(std::unique_ptr<loop::TimerSource>& timer);
  // The message of a successful retention run, from restic's report (its forgotten ids go to the job's log).
  std::string retentionMessage(ActiveJob& job);
  void finishJob(uint64_t id, const process::ProcessResult* result, std::optional<Error> failure);
  static bool retriesAfterUnlock(core::JobOperation op);
  void retryAfterUnlock(uint64_t id, const Error& lockError);
  void persist(const core::Job& job);
  void pushProgress(ActiveJob& job, bool force);
  void appendLog(core::Job& job, std::string_view line);

  // Password changes: a job of several restic runs under one exclusive lock (service_password_change.cpp).
  struct PasswordChange;
  using StepDone = std::function<void(const process::ProcessResult*, std::optional<Error>)>;
  // `resume`: finish a change a restart interrupted (the record still has a pending password).
  uint64_t submitPasswordChange(core::Job job, const core::Repository& repository, bool resume);
  void beginPasswordChange(const std::shared_ptr<PasswordChange>& change);
  void passwordChangeKeyList(const std::shared_ptr<PasswordChange>& change);
  void passwordChangeKeyAdd(const std::shared_ptr<PasswordChange>& change);
  void passwordChangeVerify(const std::shared_ptr<PasswordChange>& change);
  void passwordChangeSwitch(const std::shared_ptr<PasswordChange>& change);
  void passwordChangeRemoveOldKey(const std::shared_ptr<PasswordChange>& change);
  using ArgsBuilder = std::function<std::vector<std::string>(const restic::RepositoryContext&)>;
  void runPasswordChangeStep(const std::shared_ptr<PasswordChange>& change, ArgsBuilder args,
                             std::vector<std::pair<int, std::string>> secrets, bool logStdout, StepDone done);
  void dropPendingPassword(const std::shared_ptr<PasswordChange>& change);
  void endPasswordChange(const std::shared_ptr<PasswordChange>& change, core::JobState state, std::string message,
                         std::optional<Error> error = std::nullopt);
  void passwordChangeLog(const std::shared_ptr<PasswordChange>& change, const std::string& line);

  // The global limit on jobs running at once (daemon.max_concurrent_jobs): a job whose repository lock was
  // granted waits here, in order, for one of the slots; `start` runs when it has one.
  void whenSlotFree(std::shared_ptr<Task> task, std::function<void()> start);
  void releaseMount(Task& task);
  void releaseSlot(Task& task);
  void startWaitingJobs();

  // The scheduler (service_schedules.cpp): one wall-clock timer for the schedule due first.
  struct ScheduleRun;
  void armSchedule(const core::Schedule& s, core::Timestamp after);
  void disarmSchedule(const std::string& id);
  void armTimer();
  void onScheduleTimer();
  void onClockChanged();
  // Catch-up for every enabled schedule (a fire time since its last handled one has passed), then arms them.
  void rescheduleAll(const char* why);
  // Starts the schedule's backup now, or records the run as skipped (its previous one has not ended) or
  // failed (its volume or repository cannot be used); `slot` is the fire time it stands for (0: none).
  std::optional<uint64_t> runScheduleNow(const std::string& scheduleId, const std::string& trigger, core::Timestamp slot,
                                         uint32_t attempt);
  uint64_t recordUnstartedRun(const core::Schedule& s, core::JobState state, const std::string& trigger,
                              const std::string& message);
  void scheduledBackupFinished(const std::string& scheduleId, ActiveJob& job, bool success);
  void scheduleRunEnded(const std::string& scheduleId, const core::Job& job, bool success);

  // Snapshot cache
  void invalidateSnapshots(const std::string& repositoryId, bool refreshNow);
  void refreshSnapshots(const core::Repository& repository,
                        std::function<void(std::optional<Error>, const std::vector<core::Snapshot>&)> done);

  loop::EventLoop& m_loop;
  process::ProcessRunner& m_runner;
  store::Store& m_store;
  secrets::Vault& m_vault;
  Authorizer& m_authorizer;
  AuditLog m_audit;
  std::map<uid_t, core::TokenBucket> m_denials;
  std::map<uid_t, core::TokenBucket> m_changes;
  std::map<uid_t, unsigned> m_checksInFlight;
  ServiceSettings m_settings;
  RoleGroups m_roleGroups;
  core::Timestamp m_startTime;
  std::vector<core::Volume> m_declaredVolumes;
  std::vector<core::Repository> m_declaredRepositories;
  core::RepositoryLocks m_locks;
  std::map<uint64_t, std::unique_ptr<ActiveJob>> m_jobs;
  std::set<std::string> m_pendingNames;  // repositories being created
  std::map<std::string, std::vector<std::function<void(std::optional<Error>, const std::vector<core::Snapshot>&)>>>
      m_snapshotRefreshes;
  bool m_stopping = false;
  std::unique_ptr<mount::Mounter> m_mounter;
  std::function<void()> m_shutdownDone;
  // The global job limit: slots in use, and the jobs waiting for one in arrival order.
  unsigned m_slotsInUse = 0;
  std::deque<std::pair<std::shared_ptr<Task>, std::function<void()>>> m_slotQueue;
  // The scheduler: fire instants (fire time + jitter) in order, each schedule's entry, its running run.
  struct Armed {
    core::Timestamp slot = 0;    // the cron fire time
    core::Timestamp fireAt = 0;  // slot + this arming's random delay
  };
  std::set<std::pair<core::Timestamp, std::string>> m_due;
  std::map<std::string, Armed> m_armed;
  std::map<std::string, std::unique_ptr<ScheduleRun>> m_scheduleRuns;
  std::unique_ptr<loop::WallClockTimer> m_scheduleTimer;
  std::unique_ptr<loop::ClockChangeSource> m_clockChange;
  // The schedules table in memory (by id, and the id of each name); putSchedule and the erasures keep it.
  std::map<std::string, core::Schedule> m_schedules;
  std::map<std::string, std::string> m_scheduleIds;
  void checkShutdownDone();
};

}  // namespace zerobyte::api
