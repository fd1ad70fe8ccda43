// One implementation class per D-Bus interface, over the adaptors sdbus-c++-xml2cpp generates
// from dbus/org.zerobyte.Daemon1.*.xml. Each method runs the service layer's method of the same
// meaning (ObjectTree::call); properties mirror the service's records.
#pragma once

#include "daemon/core/model.h"
#include "daemon/dbus/object_tree.h"

#include "dbus/org.zerobyte.Daemon1.Job.adaptor.h"
#include "dbus/org.zerobyte.Daemon1.Manager.adaptor.h"
#include "dbus/org.zerobyte.Daemon1.Repository.adaptor.h"
#include "dbus/org.zerobyte.Daemon1.Schedule.adaptor.h"
#include "dbus/org.zerobyte.Daemon1.Volume.adaptor.h"

#include <set>
#include <string>

namespace zerobyte::dbus {

// Runs `body`; an Error becomes org.zerobyte.Daemon1.Error.<Name>, anything else Internal (an
// exception must never cross sd-bus's C frames).
template <typename F>
auto guarded(F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const sdbus::Error&) {
    throw;
  } catch (const Error& e) {
    throw toBusError(e);
  } catch (const std::exception& e) {
    throw toBusError(Error(ErrorCode::Internal, std::string("internal error: ") + e.what()));
  }
}

class ManagerObject : public sdbus::AdaptorInterfaces<org::zerobyte::Daemon1::Manager_adaptor> {
 public:
  explicit ManagerObject(ObjectTree& tree);
  ~ManagerObject();
  void jobsCountChanged();

 private:
  std::string Version() override;
  std::string ResticVersion() override;
  std::string AuthorizationMode() override;
  uint32_t RunningJobs() override;
  uint32_t QueuedJobs() override;

  void GetStatus(sdbus::Result<Vardict>&& result, Vardict options) override;
  void CreateVolume(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, std::string type, std::string path,
                    Vardict options) override;
  void ListVolumes(sdbus::Result<std::vector<sdbus::ObjectPath>>&& result, Vardict options) override;
  void FindVolume(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, Vardict options) override;
  void CreateRepository(sdbus::Result<sdbus::ObjectPath, sdbus::ObjectPath>&& result, std::string name, std::string type,
                        std::string path, Vardict options) override;
  void ImportRepository(sdbus::Result<sdbus::ObjectPath, sdbus::ObjectPath>&& result, std::string name, std::string type,
                        std::string path, std::string password, Vardict options) override;
  void ListRepositories(sdbus::Result<std::vector<sdbus::ObjectPath>>&& result, Vardict options) override;
  void FindRepository(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, Vardict options) override;
  void StartBackup(sdbus::Result<sdbus::ObjectPath>&& result, std::string volume, std::string repository,
                   Vardict options) override;
  void StartRestore(sdbus::Result<sdbus::ObjectPath>&& result, std::string repository, std::string snapshot,
                    std::string target, Vardict options) override;
  void CreateSchedule(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, std::string volume, std::string repository,
                      std::string cron, Vardict options) override;
  void ListSchedules(sdbus::Result<std::vector<sdbus::ObjectPath>>&& result, Vardict options) override;
  void FindSchedule(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, Vardict options) override;
  void ListJobs(sdbus::Result<std::vector<Vardict>>&& result, Vardict options) override;
  void RotateMasterKey(sdbus::Result<Vardict>&& result, Vardict options) override;
  void ListAudit(sdbus::Result<std::vector<Vardict>>&& result, Vardict options) override;

  ObjectTree& m_tree;
  uint32_t m_running = 0;
  uint32_t m_queued = 0;
};

class VolumeObject : public sdbus::AdaptorInterfaces<org::zerobyte::Daemon1::Volume_adaptor, sdbus::ManagedObject_adaptor> {
 public:
  VolumeObject(ObjectTree& tree, core::Volume volume);
  ~VolumeObject();
  const core::Volume& volume() const { return m_volume; }
  // The volume as it is now; signals the mount properties that changed.
  void update(core::Volume volume);

 private:
  std::string Remote() override;
  std::string Driver() override;
  std::string MountState() override;
  std::string MountPath() override;
  std::string LastCheck() override;
  std::string LastError() override;
  void Mount(sdbus::Result<>&& result, Vardict options) override;
  void Unmount(sdbus::Result<>&& result, Vardict options) override;
  void Test(sdbus::Result<std::vector<std::string>>&& result, Vardict options) override;
  // A mount field of the volume as GetVolume shows it ("" for a directory, or for callers who may not view it).
  std::string mountField(const char* key);
  std::string Id() override;
  std::string Name() override;
  std::string Type() override;
  std::string Path() override;
  bool Declared() override;
  uint32_t OwnerUID() override;
  std::string Owner() override;
  std::string Group() override;
  bool Privileged() override;
  std::string Created() override;
  void Delete(sdbus::Result<>&& result, Vardict options) override;
  void Backup(sdbus::Result<sdbus::ObjectPath>&& result, sdbus::ObjectPath repository, Vardict options) override;

  ObjectTree& m_tree;
  core::Volume m_volume;
  nlohmann::json m_mount;  // the mount state last seen (for change signals)
};

class RepositoryObject
    : public sdbus::AdaptorInterfaces<org::zerobyte::Daemon1::Repository_adaptor, sdbus::ManagedObject_adaptor> {
 public:
  RepositoryObject(ObjectTree& tree, core::Repository repository, std::optional<size_t> snapshotCount);
  ~RepositoryObject();
  const core::Repository& repository() const { return m_repository; }
  // Signals PropertiesChanged for what differs.
  void update(core::Repository repository, std::optional<size_t> snapshotCount);

 private:
  std::string Id() override;
  std::string Name() override;
  std::string Type() override;
  std::string Location() override;
  bool Declared() override;
  uint32_t OwnerUID() override;
  std::string Owner() override;
  std::string Group() override;
  bool Privileged() override;
  std::string Created() override;
  std::string PasswordSource() override;
  int64_t SnapshotCount() override;
  void Delete(sdbus::Result<>&& result, Vardict options) override;
  void ListSnapshots(sdbus::Result<std::vector<Vardict>>&& result, Vardict options) override;
  void ListFiles(sdbus::Result<std::vector<Vardict>>&& result, std::string snapshot, Vardict options) override;
  void Restore(sdbus::Result<sdbus::ObjectPath>&& result, std::string snapshot, std::string target, Vardict options) override;
  void ForgetSnapshot(sdbus::Result<sdbus::ObjectPath>&& result, std::string snapshot, Vardict options) override;
  void Check(sdbus::Result<sdbus::ObjectPath>&& result, Vardict options) override;
  void ChangePassword(sdbus::Result<sdbus::ObjectPath>&& result, Vardict options) override;
  void RevealPassword(sdbus::Result<std::string>&& result, Vardict options) override;

  ObjectTree& m_tree;
  core::Repository m_repository;
  std::optional<size_t> m_snapshotCount;
};

class ScheduleObject
    : public sdbus::AdaptorInterfaces<org::zerobyte::Daemon1::Schedule_adaptor, sdbus::ManagedObject_adaptor> {
 public:
  ScheduleObject(ObjectTree& tree, core::Schedule schedule);
  ~ScheduleObject();
  const core::Schedule& schedule() const { return m_schedule; }
  // Signals PropertiesChanged for what differs (its runs change NextRun, RunningJob, LastSuccess ...).
  void update(core::Schedule schedule);

 private:
  std::string Id() override;
  std::string Name() override;
  std::string Kind() override;
  sdbus::ObjectPath Volume() override;
  sdbus::ObjectPath Repository() override;
  std::string Cron() override;
  std::string TimeZone() override;
  bool Enabled() override;
  std::string NextRun() override;
  sdbus::ObjectPath RunningJob() override;
  std::string LastSuccess() override;
  std::string LastFailure() override;
  std::string LastFailureMessage() override;
  std::string Retention() override;
  bool Declared() override;
  uint32_t OwnerUID() override;
  std::string Owner() override;
  std::string Group() override;
  Vardict Settings() override;
  void Run(sdbus::Result<sdbus::ObjectPath>&& result, Vardict options) override;
  void Edit(sdbus::Result<>&& result, Vardict changes, Vardict options) override;
  void Enable(sdbus::Result<>&& result, Vardict options) override;
  void Disable(sdbus::Result<>&& result, Vardict options) override;
  void Delete(sdbus::Result<>&& result, Vardict options) override;
  void NextRuns(sdbus::Result<std::vector<std::string>>&& result, uint32_t count, Vardict options) override;
  void PreviewRetention(sdbus::Result<std::vector<std::string>, std::vector<std::string>>&& result, Vardict options) override;

  bool readable();

  ObjectTree& m_tree;
  core::Schedule m_schedule;
  nlohmann::json m_record;  // as GetSchedule gives it, for Settings and change signals
};

class JobObject : public sdbus::AdaptorInterfaces<org::zerobyte::Daemon1::Job_adaptor, sdbus::ManagedObject_adaptor> {
 public:
  JobObject(ObjectTree& tree, core::Job job);
  ~JobObject();
  const core::Job& job() const { return m_job; }
  // Signals PropertiesChanged for what differs, and Completed when the job has ended.
  void update(core::Job job);
  // Bus clients that get Completed: the one that started the job and those that have read it.
  void addWatcher(const std::string& sender);
  // The client whose call started the job: when the call is answered only after the job has ended
  // (CreateRepository, ImportRepository), it gets Completed then.
  void addStarter(const std::string& sender);
  void forgetWatcher(const std::string& sender) { m_watchers.erase(sender); }

 private:
  uint64_t Id() override;
  std::string Operation() override;
  std::string State() override;
  sdbus::ObjectPath Repository() override;
  sdbus::ObjectPath Volume() override;
  double Progress() override;
  bool ProgressValid() override;
  uint64_t BytesDone() override;
  uint64_t BytesTotal() override;
  uint64_t FilesDone() override;
  uint64_t FilesTotal() override;
  uint64_t Rate() override;
  uint64_t StartTime() override;
  uint64_t ExpectedEndTime() override;
  uint64_t EndTime() override;
  uint32_t StartedByUID() override;
  uint32_t RunAsUID() override;
  bool Cancelable() override;
  std::string Message() override;
  Vardict Details() override;
  void Cancel(sdbus::Result<>&& result, Vardict options) override;
  void GetLog(sdbus::Result<std::vector<std::string>>&& result, Vardict options) override;

  bool visible();
  void sendCompleted();
  void sendCompletedTo(const std::string& destination);

  ObjectTree& m_tree;
  core::Job m_job;
  std::set<std::string> m_watchers;
  bool m_completedSent = false;
};

// A job has ended: succeeded, warning, failed, cancelled or interrupted.
bool jobEnded(const core::Job& job);

}  // namespace zerobyte::dbus
