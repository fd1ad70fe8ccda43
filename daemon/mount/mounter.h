// The mounter: mounts network and FUSE volumes under the daemon's own directory, keeps them healthy, and records
// what it mounted so that a restart or a crash leaves nothing behind.
#pragma once

#include "common/errors.h"
#include "daemon/core/model.h"
#include "daemon/core/mount_plan.h"
#include "daemon/loop/event_loop.h"
#include "daemon/process/process_runner.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct libmnt_monitor;

namespace zerobyte::store {
class Store;
}

namespace zerobyte::mount {

struct MounterSettings {
  std::string mountDirectory;        // <runtime>/mounts: every mount point is <mountDirectory>/<volume id>
  std::string credentialsDirectory;  // <runtime>/mount-credentials (0700): one directory per mount, removed after it
  std::string cacheDirectory;        // <cache>/mounts: the helpers' caches (davfs2, rclone)
  std::string helperPath;            // where helpers are looked up, PATH-like; also the helpers' PATH
  std::chrono::seconds timeout{60};  // a helper that runs longer is killed
  std::chrono::seconds checkTimeout{10};     // a health check that takes longer finds the mount dead
  std::chrono::seconds checkInterval{300};   // mounted volumes are checked this often (0: never)
  core::MountOptionPolicy optionPolicy = core::defaultMountOptionPolicy();
};

// What `volume show` and D-Bus report about a volume's mount.
struct MountStatus {
  std::string state = "unmounted";  // unmounted, mounting, mounted, unmounting, failed
  std::string path;                 // while mounted
  core::Timestamp mountedAt = 0;
  core::Timestamp lastCheck = 0;
  bool lastCheckOk = false;
  std::string lastError;
  core::Timestamp lastErrorAt = 0;
  unsigned users = 0;  // jobs using it now
};

class Mounter {
 public:
  using Done = std::function<void(std::optional<Error>)>;
  Mounter(loop::EventLoop& loop, process::ProcessRunner& runner, store::Store& store, MounterSettings settings);
  ~Mounter();
  Mounter(const Mounter&) = delete;
  Mounter& operator=(const Mounter&) = delete;

  // Set by the service: a volume's secrets, resolved now (throws Error); the volume by id (after edits and reloads);
  // told whenever a volume's MountStatus changes.
  std::function<core::MountSecrets(const core::Volume&)> resolveSecrets;
  std::function<std::optional<core::Volume>(const std::string& id)> findVolume;
  std::function<void(const std::string& volumeId)> onChanged;
  // Told when one of its helpers ends (a stopping daemon waits for every child).
  std::function<void()> onHelperEnded;

  const MounterSettings& settings() const { return m_settings; }
  void setSettings(MounterSettings settings);
  std::string pathOf(const core::Volume& volume) const;

  // For a backup: mounted and found healthy (a dead mount is remounted when auto_remount is set), one user more.
  void acquire(const core::Volume& volume, Done done);
  // One user less; unmounts when none is left, unless the volume is kept mounted.
  void release(const core::Volume& volume);
  // `volume mount`: mounts and keeps it mounted until `unmount`.
  void mount(const core::Volume& volume, Done done);
  // `volume unmount`: Busy while a job uses it.
  void unmount(const core::Volume& volume, Done done);
  // `volume test`: mounts into a directory of its own, lists the root (at most `limit` names), unmounts.
  void test(const core::Volume& volume, size_t limit, std::function<void(std::optional<Error>, std::vector<std::string>)> done);
  // The health check (also periodic): stat and read the root in a child with a timeout.
  void check(const core::Volume& volume, Done done);
  // A volume deleted or changed: unmounted when no job uses it (Busy otherwise).
  void forget(const core::Volume& volume);
  bool inUse(const std::string& volumeId) const;
  MountStatus status(const std::string& volumeId) const;

  // At start: what the last run left mounted under the mount directory is unmounted unless a kept volume owns it,
  // stale records go, and kept volumes are mounted. Then watches the mount table and checks periodically.
  void start(const std::vector<core::Volume>& volumes);
  // At SIGTERM, first: no new mount, no check, no remount (the bridges' processes are about to be stopped).
  void beginShutdown();
  // Then, once no job and no helper runs: unmounts everything it mounted.
  void shutdown(std::function<void()> done);

 private:
  struct Entry;
  Entry& entry(const core::Volume& volume);
  void ensure(Entry& e, Done done);
  void runEnsure(const std::string& id);
  void finishEnsure(const std::string& id, std::optional<Error> result);
  // `track`: the volume's own mount (its status and record follow); else a test mount nobody else sees.
  void doMount(const core::Volume& volume, const std::string& target, bool track, Done done);
  void detach(Entry& e, const std::string& why);
  void probe(const std::string& path, size_t listLimit,
             std::function<void(std::optional<std::string> error, std::vector<std::string> names)> done);
  void maybeUnmountUnused(Entry& e);
  void onMountTableChanged();
  void periodicCheck();
  void armPeriodic();
  void setError(Entry& e, const std::string& message);
  void changed(const std::string& id);
  void record(const Entry& e);
  void eraseRecord(const std::string& id);

  loop::EventLoop& m_loop;
  process::ProcessRunner& m_runner;
  store::Store& m_store;
  MounterSettings m_settings;
  std::map<std::string, std::unique_ptr<Entry>> m_entries;
  libmnt_monitor* m_monitor = nullptr;
  std::unique_ptr<loop::IoSource> m_monitorSource;
  std::unique_ptr<loop::TimerSource> m_periodic;
  std::vector<std::shared_ptr<process::Process>> m_helpers;  // running mount helpers (for shutdown)
  bool m_stopping = false;
};

// Mount points at or under `directory` in this process's mount table (/proc/self/mountinfo), deepest first.
std::vector<std::string> mountPointsUnder(const std::string& directory);
bool isMountPoint(const std::string& path);
// Whether /proc/filesystems lists `fileSystem` ("cifs", "nfs").
bool kernelHasFileSystem(const std::string& fileSystem);
// Whether the kernel has it or can load it (a module of that name in modules.dep of the running kernel).
bool kernelCanMount(const std::string& fileSystem);

}  // namespace zerobyte::mount
