// The mounter: network and FUSE volumes mounted under the daemon's own directory, checked, recorded, reconciled.
#include "daemon/mount/mounter.h"

#include "daemon/mount/secret_files.h"

#include "daemon/core/validation.h"
#include "daemon/log/log.h"
#include "daemon/mount/rclone_obscure.h"
#include "daemon/secrets/random_bytes.h"
#include "daemon/store/store.h"

#include <fcntl.h>
#include <grp.h>
#include <libmount/libmount.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

namespace zerobyte::mount {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxHelperLines = 40;
constexpr size_t kMaxHelperLineBytes = 1024;
constexpr std::chrono::seconds kHelperKillGrace{5};

core::Timestamp nowSeconds() { return static_cast<core::Timestamp>(std::time(nullptr)); }

std::string errnoText(const std::string& what, int error) { return what + ": " + std::strerror(error); }

void makeDirectory(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST)
    throw Error(ErrorCode::Failed, errnoText("cannot create " + path, errno));
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
    throw Error(ErrorCode::Failed, path + " exists and is not a directory");
}

void makeDirectories(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw Error(ErrorCode::Failed, "cannot create " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
}

std::string lastLines(const std::vector<std::string>& lines, size_t count) {
  std::string out;
  size_t from = lines.size() > count ? lines.size() - count : 0;
  for (size_t i = from; i < lines.size(); ++i) out += (out.empty() ? "" : "; ") + lines[i];
  return out;
}

std::string packageOf(const std::string& helper) {
  if (helper == "sshfs") return "sshfs";
  if (helper == "mount.davfs") return "davfs2";
  if (helper == "rclone") return "rclone (and fuse3)";
  if (helper == "mount.cifs") return "cifs-utils";
  if (helper == "mount.nfs") return "nfs-common";
  return helper;
}

}  // namespace

std::vector<std::string> mountPointsUnder(const std::string& directory) {
  std::vector<std::string> out;
  libmnt_table* table = mnt_new_table_from_file("/proc/self/mountinfo");
  if (!table) return out;
  libmnt_iter* iter = mnt_new_iter(MNT_ITER_FORWARD);
  libmnt_fs* fs = nullptr;
  const std::string prefix = directory + "/";
  while (iter && mnt_table_next_fs(table, iter, &fs) == 0) {
    const char* target = mnt_fs_get_target(fs);
    if (!target) continue;
    std::string t = target;
    if (t == directory || t.rfind(prefix, 0) == 0)
      if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  }
  if (iter) mnt_free_iter(iter);
  mnt_unref_table(table);
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

bool isMountPoint(const std::string& path) {
  for (const auto& p : mountPointsUnder(path))
    if (p == path) return true;
  return false;
}

bool kernelHasFileSystem(const std::string& fileSystem) {
  std::ifstream in("/proc/filesystems");
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    if (tab != std::string::npos && line.substr(tab + 1) == fileSystem) return true;
  }
  return false;
}

bool kernelCanMount(const std::string& fileSystem) {
  if (kernelHasFileSystem(fileSystem)) return true;
  struct utsname u {};
  if (::uname(&u) < 0) return false;
  std::ifstream dep(std::string("/lib/modules/") + u.release + "/modules.dep");
  const std::string module = "/" + fileSystem + ".ko";
  for (std::string line; std::getline(dep, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string_view path(line.data(), colon);
    const auto at = path.rfind(module);
    if (at != std::string_view::npos && (at + module.size() == path.size() || path[at + module.size()] == '.')) return true;
  }
  return false;
}

struct Mounter::Entry {
  core::Volume volume;
  MountStatus status;
  bool pinned = false;  // `volume mount`: stays mounted until `volume unmount`
  bool busy = false;    // an ensure (check, mount, remount) is running
  std::vector<Done> waiting;
};

Mounter::Mounter(loop::EventLoop& loop, process::ProcessRunner& runner, store::Store& store, MounterSettings settings)
    : m_loop(loop), m_runner(runner), m_store(store), m_settings(std::move(settings)) {}

Mounter::~Mounter() {
  m_monitorSource.reset();
  if (m_monitor) mnt_unref_monitor(m_monitor);
}

void Mounter::setSettings(MounterSettings settings) {
  const bool rearm = settings.checkInterval != m_settings.checkInterval;
  m_settings = std::move(settings);
  if (rearm && m_monitorSource) armPeriodic();
}

std::string Mounter::pathOf(const core::Volume& volume) const { return m_settings.mountDirectory + "/" + volume.id; }

Mounter::Entry& Mounter::entry(const core::Volume& volume) {
  auto& slot = m_entries[volume.id];
  if (!slot) slot = std::make_unique<Entry>();
  slot->volume = volume;
  return *slot;
}

bool Mounter::inUse(const std::string& volumeId) const {
  auto it = m_entries.find(volumeId);
  return it != m_entries.end() && (it->second->status.users > 0 || it->second->busy);
}

MountStatus Mounter::status(const std::string& volumeId) const {
  auto it = m_entries.find(volumeId);
  return it == m_entries.end() ? MountStatus{} : it->second->status;
}

void Mounter::changed(const std::string& id) {
  if (onChanged) onChanged(id);
}

void Mounter::setError(Entry& e, const std::string& message) {
  e.status.lastError = message;
  e.status.lastErrorAt = nowSeconds();
}

void Mounter::record(const Entry& e) {
  core::MountRecord r;
  r.volumeId = e.volume.id;
  r.path = e.status.path;
  r.driver = e.volume.remote.driver;
  r.mounted = e.status.mountedAt;
  auto txn = m_store.begin();
  txn.put(r);
  txn.commit();
}

void Mounter::eraseRecord(const std::string& id) {
  auto txn = m_store.begin();
  txn.eraseMount(id);
  txn.commit();
}

// ---- acquire / release / mount / unmount ----

void Mounter::acquire(const core::Volume& volume, Done done) {
  Entry& e = entry(volume);
  ++e.status.users;
  changed(volume.id);
  ensure(e, [this, id = volume.id, done = std::move(done)](std::optional<Error> error) {
    if (error) {
      // The caller will not release a volume it did not get.
      auto it = m_entries.find(id);
      if (it != m_entries.end() && it->second->status.users > 0) {
        --it->second->status.users;
        maybeUnmountUnused(*it->second);
      }
    }
    done(std::move(error));
  });
}

void Mounter::release(const core::Volume& volume) {
  auto it = m_entries.find(volume.id);
  if (it == m_entries.end() || it->second->status.users == 0) return;
  --it->second->status.users;
  changed(volume.id);
  maybeUnmountUnused(*it->second);
}

void Mounter::mount(const core::Volume& volume, Done done) {
  Entry& e = entry(volume);
  e.pinned = true;
  ensure(e, std::move(done));
}

void Mounter::unmount(const core::Volume& volume, Done done) {
  auto it = m_entries.find(volume.id);
  if (it == m_entries.end() || it->second->status.state == "unmounted") {
    if (it != m_entries.end()) it->second->pinned = false;
    return done(Error(ErrorCode::NotMounted, "volume \"" + volume.name + "\" is not mounted"));
  }
  Entry& e = *it->second;
  if (e.status.users > 0 || e.busy)
    return done(Error(ErrorCode::Busy, "volume \"" + volume.name + "\" is in use by " + std::to_string(e.status.users) +
                                           " job(s) or being mounted; try again when they have ended"));
  e.pinned = false;
  detach(e, "unmounted on request");
  done(std::nullopt);
}

void Mounter::forget(const core::Volume& volume) {
  auto it = m_entries.find(volume.id);
  if (it == m_entries.end()) return;
  Entry& e = *it->second;
  if (e.status.users > 0 || e.busy) return;
  if (e.status.state == "mounted" || e.status.state == "failed") detach(e, "the volume was deleted or changed");
  m_entries.erase(it);
}

void Mounter::maybeUnmountUnused(Entry& e) {
  if (e.status.users > 0 || e.busy || e.pinned || e.volume.remote.keepMounted || m_stopping) return;
  if (e.status.state == "mounted") detach(e, "no job uses it any more");
}

// Unmounts at once (MNT_DETACH: a dead server cannot block it; the file system goes when its last user does),
// removes the mount point and the record.
void Mounter::detach(Entry& e, const std::string& why) {
  const std::string path = e.status.path.empty() ? pathOf(e.volume) : e.status.path;
  if (isMountPoint(path) && ::umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
    setError(e, errnoText("cannot unmount " + path, errno));
    log::warning("volume \"" + e.volume.name + "\": " + e.status.lastError);
  }
  ::rmdir(path.c_str());
  log::info("volume \"" + e.volume.name + "\" unmounted from " + path + " (" + why + ")");
  e.status.state = "unmounted";
  e.status.path.clear();
  e.status.mountedAt = 0;
  eraseRecord(e.volume.id);
  changed(e.volume.id);
}

// ---- ensure: mounted and healthy ----

void Mounter::ensure(Entry& e, Done done) {
  if (m_stopping) return done(Error(ErrorCode::Cancelled, "zerobyted is stopping"));
  e.waiting.push_back(std::move(done));
  if (e.busy) return;
  e.busy = true;
  m_loop.post([this, id = e.volume.id] { runEnsure(id); });
}

void Mounter::runEnsure(const std::string& id) {
  auto it = m_entries.find(id);
  if (it == m_entries.end()) return;
  Entry& e = *it->second;
  const std::string target = pathOf(e.volume);
  auto mountNow = [this, id, target] {
    auto it2 = m_entries.find(id);
    if (it2 == m_entries.end()) return;
    doMount(it2->second->volume, target, true, [this, id](std::optional<Error> error) { finishEnsure(id, std::move(error)); });
  };
  if (e.status.state == "mounted" && isMountPoint(target)) {
    probe(target, 0, [this, id, mountNow](std::optional<std::string> failure, std::vector<std::string>) {
      auto it2 = m_entries.find(id);
      if (it2 == m_entries.end()) return;
      Entry& en = *it2->second;
      en.status.lastCheck = nowSeconds();
      en.status.lastCheckOk = !failure;
      if (!failure) return finishEnsure(id, std::nullopt);
      const std::string message = "the mount at " + en.status.path + " is dead: " + *failure;
      setError(en, message);
      log::warning("volume \"" + en.volume.name + "\": " + message);
      if (!en.volume.remote.autoRemount) {
        en.status.state = "failed";
        return finishEnsure(id, Error(ErrorCode::MountFailed, "volume \"" + en.volume.name + "\": " + message +
                                                             "; auto_remount is off: run 'zerobytectl volume unmount " +
                                                             en.volume.name + "' and mount it again"));
      }
      detach(en, "dead; remounting");
      mountNow();
    });
    return;
  }
  if (e.status.state == "mounted") {
    // Gone from the mount table without us (unmounted from outside): mount again.
    e.status.state = "unmounted";
    eraseRecord(id);
  }
  mountNow();
}

void Mounter::finishEnsure(const std::string& id, std::optional<Error> result) {
  auto it = m_entries.find(id);
  if (it == m_entries.end()) return;
  Entry& e = *it->second;
  e.busy = false;
  auto waiting = std::move(e.waiting);
  e.waiting.clear();
  changed(id);
  for (auto& done : waiting) done(result);
  // A job that failed to get it, or an unmount that came while it was busy.
  if (m_entries.count(id)) maybeUnmountUnused(*m_entries.at(id));
}

void Mounter::doMount(const core::Volume& volume, const std::string& target, bool track, Done done) {
  const std::string id = track ? volume.id : std::string();
  std::string fileDir;
  try {
    // Root only: a kernel mount (cifs, nfs) shows the share with its own modes, which local users must not reach here.
    makeDirectories(m_settings.mountDirectory, 0700);
    if (isMountPoint(target)) {
      // Left over (a crash, or a mount the table monitor has not reported yet): start afresh.
      ::umount2(target.c_str(), MNT_DETACH);
    }
    makeDirectory(target, 0700);
    makeDirectories(m_settings.credentialsDirectory, 0700);
    fileDir = m_settings.credentialsDirectory + "/" + volume.id + "-" + randomSuffix();
    makeDirectory(fileDir, 0700);

    core::MountContext context;
    context.target = target;
    context.fileDir = fileDir;
    context.cacheDir = m_settings.cacheDirectory + "/" + volume.id;
    // Traversable: davfs2 runs as its own user in its cache directory below.
    makeDirectories(m_settings.cacheDirectory, 0711);
    makeDirectory(context.cacheDir, 0700);
    if (volume.remote.driver == "davfs") {
      // davfs2 drops to its own user and group and wants its cache directory group-writable by davfs2; it must
      // also pass through the cache root (traverse only, as for the per-user restic caches below it).
      const std::string cacheRoot = fs::path(m_settings.cacheDirectory).parent_path();
      struct stat root {};
      if (::stat(cacheRoot.c_str(), &root) == 0 && root.st_uid == 0 && (root.st_mode & 0011) != 0011)
        ::chmod(cacheRoot.c_str(), (root.st_mode & 07777) | 0011);
      if (struct group* g = ::getgrnam("davfs2")) {
        if (::chown(context.cacheDir.c_str(), 0, g->gr_gid) < 0 || ::chmod(context.cacheDir.c_str(), 0775) < 0)
          throw Error(ErrorCode::Failed, errnoText("cannot prepare davfs2's cache directory " + context.cacheDir, errno));
      }
    }
    core::MountSecrets secrets = resolveSecrets ? resolveSecrets(volume) : core::MountSecrets{};
    if (!secrets.password.empty()) secrets.obscuredPassword = rcloneObscure(secrets.password);
    for (auto& [name, value] : secrets.rcloneOptions)
      if (core::rcloneWantsObscured(name)) value = rcloneObscure(value);
    core::MountPlan plan = core::planMount(volume, secrets, context);
    auto locate = [this, &volume](const std::string& program) {
      std::string path = process::findExecutable(program, m_settings.helperPath);
      if (path.empty())
        throw Error(ErrorCode::Failed, "the mount helper " + program + " for the " + volume.remote.driver +
                                           " driver is not installed (looked in " + m_settings.helperPath + "); install " +
                                           packageOf(program));
      return path;
    };
    const std::string helper = locate(plan.helper);
    const std::string server = plan.serverHelper.empty() ? std::string() : locate(plan.serverHelper);
    for (const auto& file : plan.files) writeSecretFile(fileDir + "/" + file.name, file.content);

    auto environment = [this, &fileDir] {
      return std::vector<std::string>{"PATH=" + m_settings.helperPath, "HOME=" + fileDir, "LANG=C.UTF-8", "LC_ALL=C.UTF-8"};
    };
    // One mount attempt, shared by the helpers' callbacks and the readiness poll; settle() drops what it holds
    // (on the next iteration: it may run inside one of them), so nothing keeps it alive but running helpers.
    struct Attempt {
      bool settled = false;
      std::vector<std::string> output;
      std::vector<std::shared_ptr<process::Process>> processes;
      std::unique_ptr<loop::TimerSource> poll;
      std::function<void()> pollOnce;
      uint64_t deadlineUsec = 0;
    };
    auto attempt = std::make_shared<Attempt>();
    auto collect = [attempt](std::string_view line) {
      if (line.empty()) return;
      if (attempt->output.size() >= kMaxHelperLines) attempt->output.erase(attempt->output.begin());
      attempt->output.push_back(log::sanitize(line.substr(0, kMaxHelperLineBytes)));
    };
    const std::string description = core::describeRemote(volume);
    const std::string what = plan.serverHelper.empty() ? plan.helper : plan.serverHelper + " and " + plan.helper;
    const auto timeout = m_settings.timeout;

    // Exactly once: the files go, and the mount either is there or everything started for it is stopped.
    auto settle = [this, id, target, fileDir, attempt, description, what, volume, done, plan](std::optional<std::string> failure,
                                                                                               bool timedOut) {
      if (attempt->settled) return;
      attempt->settled = true;
      m_loop.post([attempt] {
        attempt->poll.reset();
        attempt->pollOnce = nullptr;
        attempt->processes.clear();
      });
      removeSecretDirectory(fileDir);
      m_helpers.erase(std::remove_if(m_helpers.begin(), m_helpers.end(), [](const auto& p) { return !p->running(); }),
                      m_helpers.end());
      auto it = m_entries.find(id);
      if (!failure && !isMountPoint(target))
        failure = what + " reported success but nothing is mounted at " + target;
      if (failure) {
        for (auto& p : attempt->processes)
          if (p->running()) p->cancel();
        std::string message = "mounting volume \"" + volume.name + "\" (" + description + ") with " + what + " failed: " + *failure;
        if (!attempt->output.empty()) message += ": " + lastLines(attempt->output, 4);
        // sshfs keeps ssh's own words (a changed host key, a refused login) to itself.
        if (volume.type == "sftp" && !timedOut)
          message += "; ssh could not log in: check host, port, user, the key or password, and that known_hosts holds this "
                     "server's key (ssh-keyscan -p PORT HOST)";
        if (!timedOut && !plan.kernelFileSystem.empty() && !kernelHasFileSystem(plan.kernelFileSystem))
          message += "; this kernel has no " + plan.kernelFileSystem +
                     " file system (not in /proc/filesystems: its module is not loaded or not available)" +
                     (plan.kernelFileSystem == "cifs" ? std::string("; use --driver rclone for smb") : std::string());
        ::rmdir(target.c_str());
        if (it != m_entries.end()) {
          it->second->status.state = "failed";
          setError(*it->second, message);
          changed(id);
        }
        log::warning(message);
        return done(Error(ErrorCode::MountFailed, message));
      }
      if (it != m_entries.end()) {
        Entry& e = *it->second;
        e.status.state = "mounted";
        e.status.path = target;
        e.status.mountedAt = nowSeconds();
        e.status.lastCheck = e.status.mountedAt;
        e.status.lastCheckOk = true;
        record(e);
        changed(id);
      }
      log::info("volume \"" + volume.name + "\" (" + description + ") mounted at " + target + " with " + what);
      done(std::nullopt);
    };
    auto describeExit = [timeout](const std::string& program, const process::ProcessResult& result) {
      if (result.timedOut) return program + " did not finish within " + std::to_string(timeout.count()) + " s and was killed";
      if (result.cancelled) return program + " was stopped";
      return program + " ended with " + result.describe();
    };

    if (!plan.foreground) {
      // The helper mounts, daemonizes what serves the mount, and exits.
      process::ProcessSpec spec;
      spec.argv.push_back(helper);
      spec.argv.insert(spec.argv.end(), plan.args.begin(), plan.args.end());
      spec.env = environment();
      if (plan.stdinSecret) spec.secrets.emplace_back(0, *plan.stdinSecret);
      spec.timeout = timeout;
      spec.killGrace = kHelperKillGrace;
      process::ProcessCallbacks callbacks;
      callbacks.onStdoutLine = collect;
      callbacks.onStderrLine = collect;
      callbacks.onExit = [this, settle, describeExit, helperName = plan.helper](const process::ProcessResult& result) {
        if (onHelperEnded) m_loop.post(onHelperEnded);
        if (result.success()) return settle(std::nullopt, false);
        settle(describeExit(helperName, result), result.timedOut);
      };
      if (auto it = m_entries.find(id); it != m_entries.end()) {
        it->second->status.state = "mounting";
        changed(id);
      }
      attempt->processes.push_back(m_runner.start(std::move(spec), std::move(callbacks)));
      m_helpers.push_back(attempt->processes.back());
      return;
    }

    // In the foreground: the helper (and for a bridge the server, which speaks SFTP on one end of a socket pair
    // while sshfs mounts from the other) runs as long as the mount; it is ready when it appears in the mount table.
    int pair[2] = {-1, -1};
    if (!plan.serverHelper.empty() && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
      throw Error(ErrorCode::Failed, errnoText("cannot create a socket pair", errno));
    auto closePair = [&pair] {
      for (int& fd : pair)
        if (fd >= 0) ::close(std::exchange(fd, -1));
    };
    auto startSide = [&](const std::string& program, const std::vector<std::string>& args, int fd, const std::string& name) {
      process::ProcessSpec spec;
      spec.argv.push_back(program);
      spec.argv.insert(spec.argv.end(), args.begin(), args.end());
      spec.env = environment();
      spec.stdioFd = fd;
      if (fd < 0 && plan.stdinSecret) spec.secrets.emplace_back(0, *plan.stdinSecret);
      spec.killGrace = kHelperKillGrace;
      process::ProcessCallbacks callbacks;
      callbacks.onStderrLine = collect;
      callbacks.onExit = [this, settle, describeExit, name, attempt, volumeName = volume.name](const process::ProcessResult& result) {
        if (onHelperEnded) m_loop.post(onHelperEnded);
        if (attempt->settled) {
          // After the mount: it was unmounted (the usual end), or it died and the next check finds it dead.
          if (!result.success())
            log::notice("volume \"" + volumeName + "\": " + describeExit(name, result) +
                        (attempt->output.empty() ? std::string() : ": " + lastLines(attempt->output, 4)));
          return;
        }
        settle(describeExit(name, result) + " before the mount was ready", false);
      };
      attempt->processes.push_back(m_runner.start(std::move(spec), std::move(callbacks)));
      m_helpers.push_back(attempt->processes.back());
    };
    try {
      if (!plan.serverHelper.empty()) startSide(server, plan.serverArgs, pair[0], plan.serverHelper);
      startSide(helper, plan.args, pair[1], plan.helper);
    } catch (...) {
      closePair();
      for (auto& p : attempt->processes) p->cancel();
      throw;
    }
    closePair();
    if (auto it = m_entries.find(id); it != m_entries.end()) {
      it->second->status.state = "mounting";
      changed(id);
    }
    attempt->deadlineUsec = loop::EventLoop::nowUsec() + static_cast<uint64_t>(timeout.count()) * 1000000;
    std::weak_ptr<Attempt> weak = attempt;
    attempt->pollOnce = [this, weak, settle, target, timeout, what] {
      auto a = weak.lock();
      if (!a || a->settled) return;
      if (isMountPoint(target)) {
        // sshfs mounts before its first request reaches the server side: ready once the root answers (and only
        // then has rclone read the configuration file that settle() removes).
        return probe(target, 0, [settle](std::optional<std::string> failure, std::vector<std::string>) {
          if (failure) return settle("the mount does not answer: " + *failure, false);
          settle(std::nullopt, false);
        });
      }
      if (loop::EventLoop::nowUsec() >= a->deadlineUsec)
        return settle(what + " did not mount within " + std::to_string(timeout.count()) + " s and was stopped", true);
      a->poll = std::make_unique<loop::TimerSource>(m_loop, std::chrono::milliseconds(100), [weak] {
        if (auto again = weak.lock(); again && again->pollOnce) again->pollOnce();
      });
    };
    attempt->pollOnce();
  } catch (const Error& e) {
    if (!fileDir.empty()) removeSecretDirectory(fileDir);
    ::rmdir(target.c_str());
    if (auto it = m_entries.find(id); it != m_entries.end()) {
      it->second->status.state = "failed";
      setError(*it->second, e.what());
    }
    log::warning("volume \"" + volume.name + "\": " + e.what());
    done(e);
  }
}

// ---- health ----

// A child that stats and reads the root (raw system calls only after fork), killed after the timeout: a dead
// server can hang it, never the daemon. Names found are written to a pipe (at most `listLimit`).
void Mounter::probe(const std::string& path, size_t listLimit,
                    std::function<void(std::optional<std::string>, std::vector<std::string>)> done) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return done(errnoText("cannot create a pipe", errno), {});
  // The paths are made before fork: the child allocates nothing. A name that cannot be in any cache (sshfs's, the
  // kernel's attribute cache) makes the check reach the server: a server that stopped answering hangs it.
  auto pathCopy = std::make_shared<std::string>(path);
  static uint64_t probes = 0;
  auto uncached = std::make_shared<std::string>(path + "/.zerobyte-check-" + std::to_string(::getpid()) + "-" +
                                                std::to_string(++probes) + "-" + randomSuffix());
  pid_t pid = ::fork();
  if (pid < 0) {
    int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return done(errnoText("cannot fork", error), {});
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the daemon, even stuck in a dead mount
    struct stat st {};
    if (::stat(pathCopy->c_str(), &st) < 0) _exit(errno & 0xff);
    int dir = ::open(pathCopy->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) _exit(errno & 0xff);
    alignas(8) static char buffer[32768];
    long n = ::syscall(SYS_getdents64, dir, buffer, sizeof(buffer));
    if (n < 0) _exit(errno & 0xff);
    if (::stat(uncached->c_str(), &st) < 0 && errno != ENOENT) _exit(errno & 0xff);
    size_t listed = 0;
    for (long offset = 0; offset < n && listed < listLimit;) {
      // struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
      unsigned short reclen;
      std::memcpy(&reclen, buffer + offset + 16, sizeof(reclen));
      const char* name = buffer + offset + 19;
      size_t len = std::strlen(name);
      if (!(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.')) {
        [[maybe_unused]] ssize_t w1 = ::write(fds[1], name, len);
        [[maybe_unused]] ssize_t w2 = ::write(fds[1], "\n", 1);
        ++listed;
      }
      offset += reclen;
    }
    _exit(0);
  }
  ::close(fds[1]);
  struct State {
    int readFd;
    bool finished = false;
    std::unique_ptr<loop::ChildSource> child;
    std::unique_ptr<loop::TimerSource> timer;
    std::string names;
  };
  auto state = std::make_shared<State>();
  state->readFd = fds[0];
  // Answers once: when the child exits, or at the timeout (then the child is killed, and reaped when it is gone:
  // a check stuck in a dead mount leaves no zombie).
  auto finish = [state, done](std::optional<std::string> error) {
    if (state->finished) return;
    state->finished = true;
    std::vector<std::string> names;
    std::istringstream in(state->names);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) names.push_back(log::sanitize(line));
    done(std::move(error), std::move(names));
  };
  state->child = std::make_unique<loop::ChildSource>(m_loop, pid, [this, state, finish](const siginfo_t& info) {
    char buf[4096];
    for (ssize_t n; (n = ::read(state->readFd, buf, sizeof(buf))) > 0;) state->names.append(buf, static_cast<size_t>(n));
    ::close(state->readFd);
    // The sources go after this handler returns.
    m_loop.post([state] {
      state->child.reset();
      state->timer.reset();
    });
    if (info.si_code == CLD_EXITED && info.si_status == 0) return finish(std::nullopt);
    if (info.si_code == CLD_EXITED) return finish(std::string(std::strerror(info.si_status)));
    finish("the check was killed (" + std::string(strsignal(info.si_status)) + ")");
  });
  state->timer = std::make_unique<loop::TimerSource>(
      m_loop, std::chrono::duration_cast<std::chrono::microseconds>(m_settings.checkTimeout), [pid, state, finish, timeout = m_settings.checkTimeout] {
        if (state->finished) return;
        ::kill(pid, SIGKILL);  // the child source reaps it
        finish("the server did not answer within " + std::to_string(timeout.count()) + " s");
      });
}

void Mounter::check(const core::Volume& volume, Done done) {
  Entry& e = entry(volume);
  if (e.status.state != "mounted")
    return done(Error(ErrorCode::NotMounted, "volume \"" + volume.name + "\" is not mounted"));
  probe(e.status.path, 0, [this, id = volume.id, name = volume.name, done](std::optional<std::string> failure, std::vector<std::string>) {
    auto it = m_entries.find(id);
    if (it != m_entries.end()) {
      it->second->status.lastCheck = nowSeconds();
      it->second->status.lastCheckOk = !failure;
      if (failure) setError(*it->second, "the mount is dead: " + *failure);
      changed(id);
    }
    if (failure) return done(Error(ErrorCode::MountFailed, "volume \"" + name + "\": the mount is dead: " + *failure));
    done(std::nullopt);
  });
}

void Mounter::test(const core::Volume& volume, size_t limit,
                   std::function<void(std::optional<Error>, std::vector<std::string>)> done) {
  // A directory of its own under the mount directory: never the volume's mount point, which a job may be using.
  const std::string target = pathOf(volume) + "-test-" + randomSuffix();
  doMount(volume, target, false, [this, target, limit, done](std::optional<Error> error) {
    if (error) return done(std::move(error), {});
    probe(target, limit, [target, done](std::optional<std::string> failure, std::vector<std::string> names) {
      if (::umount2(target.c_str(), MNT_DETACH) == 0) ::rmdir(target.c_str());
      if (failure) return done(Error(ErrorCode::MountFailed, "mounted, but reading its root failed: " + *failure), {});
      std::sort(names.begin(), names.end());
      done(std::nullopt, std::move(names));
    });
  });
}

// ---- start, watch, shutdown ----

void Mounter::start(const std::vector<core::Volume>& volumes) {
  // Nothing of a mount outlives it: what a crash left in the credentials directory goes first.
  {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(m_settings.credentialsDirectory, ec)) removeSecretDirectory(entry.path());
  }
  auto owner = [&volumes](const std::string& id) -> const core::Volume* {
    for (const auto& v : volumes)
      if (v.id == id && v.isNetwork()) return &v;
    return nullptr;
  };
  // Leftovers: under our directory and not a kept volume's (a crash, a volume deleted while stopped, a test mount).
  for (const auto& path : mountPointsUnder(m_settings.mountDirectory)) {
    if (path == m_settings.mountDirectory) continue;
    const std::string id = path.substr(m_settings.mountDirectory.size() + 1);
    const core::Volume* v = owner(id);
    if (v && v->remote.keepMounted && id.find('/') == std::string::npos) {
      Entry& e = entry(*v);
      e.status.state = "mounted";
      e.status.path = path;
      e.status.mountedAt = nowSeconds();
      record(e);
      log::info("volume \"" + v->name + "\" is still mounted at " + path + " from the last run; keeping it");
      continue;
    }
    if (::umount2(path.c_str(), MNT_DETACH) < 0)
      log::warning(errnoText("cannot unmount " + path + " (left over from the last run)", errno));
    else
      log::notice("unmounted " + path + ", left over from the last run" +
                  (v ? " (volume \"" + v->name + "\" is not kept mounted)" : std::string(" (no volume owns it)")));
    ::rmdir(path.c_str());
  }
  for (const auto& r : m_store.mounts())
    if (!m_entries.count(r.volumeId)) eraseRecord(r.volumeId);
  // Kept volumes: checked (and remounted when dead) or mounted now.
  for (const auto& v : volumes)
    if (v.isNetwork() && v.remote.keepMounted)
      ensure(entry(v), [name = v.name](std::optional<Error> error) {
        if (error) log::warning("volume \"" + name + "\" is kept mounted but could not be mounted at start: " + error->what());
      });

  m_monitor = mnt_new_monitor();
  if (m_monitor && mnt_monitor_enable_kernel(m_monitor, 1) == 0) {
    int fd = mnt_monitor_get_fd(m_monitor);
    if (fd >= 0)
      m_monitorSource = std::make_unique<loop::IoSource>(m_loop, fd, EPOLLIN, [this](uint32_t) { onMountTableChanged(); });
  }
  if (!m_monitorSource) log::warning("cannot watch the mount table (libmount): mounts removed from outside are noticed only by checks");
  armPeriodic();
}

void Mounter::onMountTableChanged() {
  if (m_monitor) mnt_monitor_event_cleanup(m_monitor);
  if (m_stopping) return;
  for (auto& [id, e] : m_entries) {
    if (e->status.state != "mounted" || e->busy || e->status.path.empty()) continue;
    if (isMountPoint(e->status.path)) continue;
    const std::string message = e->status.path + " was unmounted outside zerobyted";
    log::warning("volume \"" + e->volume.name + "\": " + message);
    setError(*e, message);
    e->status.state = "unmounted";
    ::rmdir(e->status.path.c_str());
    e->status.path.clear();
    eraseRecord(id);
    changed(id);
    if ((e->pinned || e->volume.remote.keepMounted) && e->volume.remote.autoRemount)
      ensure(*e, [name = e->volume.name](std::optional<Error> error) {
        if (error) log::warning("volume \"" + name + "\" could not be mounted again: " + error->what());
      });
  }
}

void Mounter::armPeriodic() {
  m_periodic.reset();
  if (m_settings.checkInterval.count() <= 0) return;
  m_periodic = std::make_unique<loop::TimerSource>(m_loop, std::chrono::duration_cast<std::chrono::microseconds>(m_settings.checkInterval),
                                                   [this] { m_loop.post([this] { periodicCheck(); }); });
}

void Mounter::periodicCheck() {
  for (auto& [id, e] : m_entries) {
    if (e->status.state != "mounted" || e->busy) continue;
    // ensure() checks, and remounts a dead mount when auto_remount is set.
    ensure(*e, [name = e->volume.name](std::optional<Error> error) {
      if (error) log::warning("volume \"" + name + "\": periodic check: " + error->what());
    });
  }
  armPeriodic();
}

void Mounter::beginShutdown() {
  m_stopping = true;
  m_periodic.reset();
  m_monitorSource.reset();
}

void Mounter::shutdown(std::function<void()> done) {
  beginShutdown();
  for (auto& helper : m_helpers)
    if (helper->running()) helper->cancel();
  for (auto& [id, e] : m_entries)
    if (e->status.state == "mounted" || e->status.state == "failed") detach(*e, "zerobyted is stopping");
  // Anything else under our directory (a test mount whose helper was cancelled).
  for (const auto& path : mountPointsUnder(m_settings.mountDirectory))
    if (path != m_settings.mountDirectory && ::umount2(path.c_str(), MNT_DETACH) == 0) ::rmdir(path.c_str());
  done();
}

}  // namespace zerobyte::mount
