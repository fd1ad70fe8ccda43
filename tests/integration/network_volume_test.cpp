// Network volumes through the real daemon: real servers on 127.0.0.1 (sshd, rclone's WebDAV server, samba),
// real mounts (sshfs, rclone mount, davfs2), real restic; kernel cifs and nfs up to their helpers.
#include "tests/integration/harness.h"
#include "tests/integration/remote_helpers.h"
#include "tests/support/test_servers.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace zbtest {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string slurp(const std::string& path) { return readAll(path); }

// Mount points under the daemon's mount directory, from this process's mount table.
std::vector<std::string> mountsOf(const Daemon& d) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  const std::string prefix = d.dir() + "/run/mounts/";
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point.rfind(prefix, 0) == 0) out.push_back(point);
  }
  return out;
}

// Files left in the daemon's credentials directory.
std::vector<std::string> credentialFilesOf(const Daemon& d) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(d.dir() + "/run/mount-credentials", ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    out.push_back(it->path());
  return out;
}

// A string field that may be null ("" then).
std::string text(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

class NetworkVolumes : public ::testing::Test {
 protected:
  void SetUp() override { setServerProcessHooks(&ownProcess, &disownProcess); }
  void TearDown() override {
    if (daemon && daemon->running()) {
      daemon->stop();
      EXPECT_TRUE(mountsOf(*daemon).empty()) << "SIGTERM left mounts behind";
    }
    daemon.reset();
    setServerProcessHooks(nullptr, nullptr);
  }

  void start(const std::string& daemonSettings = "") {
    Daemon::Options options;
    options.extraDaemonSettings = daemonSettings;
    daemon = std::make_unique<Daemon>(options);
    daemon->start();
    auto r = daemon->ctl({"repo", "create", "main", "--path", daemon->dir() + "/repository"});
    ASSERT_EQ(r.exitCode, 0) << describe(r);
  }

  // A followed backup of `volume` into main; the finished job.
  json backup(const std::string& volume) {
    auto r = daemon->ctl({"backup", volume, "--repo", "main", "--json"});
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    const uint64_t id = json::parse(r.out).at("job").at("id").get<uint64_t>();
    return daemon->waitForJob(id, 180000);
  }

  // Restores the snapshot of `job` into a fresh directory; returns the restored copy of the volume's root.
  std::string restore(const json& job, const std::string& name) {
    const std::string snapshot = job.at("summary").at("snapshot_id").get<std::string>();
    const std::string target = daemon->dir() + "/restored-" + name;
    auto r = daemon->ctl({"restore", "main", snapshot, "--target", target, "--json"});
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    json restored = daemon->waitForJob(json::parse(r.out).at("job").at("id").get<uint64_t>());
    EXPECT_EQ(restored.value("state", ""), "succeeded") << restored.dump();
    json list = daemon->ctlJson({"snapshot", "list", "main"});
    std::string path;
    for (const auto& s : list.at("snapshots"))
      if (s.value("short_id", "") == snapshot.substr(0, 8) || s.value("id", "").rfind(snapshot, 0) == 0) path = s.at("paths")[0];
    EXPECT_FALSE(path.empty()) << list.dump();
    return target + path;
  }

  // Backup, restore, compare; a second backup recognises every file as unmodified (--ignore-inode on FUSE).
  void backupRestoreCompare(const std::string& volume, const std::string& source) {
    json job = backup(volume);
    ASSERT_EQ(job.value("state", ""), "succeeded") << job.dump() << daemon->log();
    EXPECT_TRUE(mountsOf(*daemon).empty()) << "mounted for the backup only";
    EXPECT_TRUE(credentialFilesOf(*daemon).empty());
    const std::string restored = restore(job, volume);
    EXPECT_EQ(firstDifference(contentsOf(source), contentsOf(restored)), "");
    json again = backup(volume);
    ASSERT_EQ(again.value("state", ""), "succeeded") << again.dump();
    EXPECT_EQ(again.at("summary").at("files_new").get<int64_t>(), 0) << again.dump();
    EXPECT_EQ(again.at("summary").at("files_changed").get<int64_t>(), 0) << again.dump();
    EXPECT_GT(again.at("summary").at("files_unmodified").get<int64_t>(), 0) << again.dump();
  }

  std::unique_ptr<Daemon> daemon;
};

TEST_F(NetworkVolumes, SftpWithAKeyIsTestedBackedUpAndRestoredAndNothingStaysMounted) {
  SshServer server;
  const std::string data = server.homeDir().string() + "/data";
  makeSimpleTree(data, 30);
  ::symlink("file 0.txt", (data + "/link").c_str());
  chownTree(data, server.user());
  start();
  auto r = daemon->ctl({"volume", "create", "nas", "--type", "sftp", "--host", "127.0.0.1", "--port", std::to_string(server.port()),
                        "--user", server.user(), "--remote-path", "data", "--private-key-file", server.clientKeyPath().string(),
                        "--known-hosts-file", server.knownHostsPath().string()});
  ASSERT_EQ(r.exitCode, 0) << describe(r);

  auto test = daemon->ctl({"volume", "test", "nas"});
  ASSERT_EQ(test.exitCode, 0) << describe(test);
  EXPECT_TRUE(contains(test.out, "  sub dir\n")) << test.out;
  EXPECT_TRUE(contains(test.out, "  file 0.txt\n")) << test.out;
  EXPECT_TRUE(mountsOf(*daemon).empty());

  // Shown without the key; the key is stored, not a file the daemon reads later.
  json shown = daemon->ctlJson({"volume", "show", "nas"}).at("volume");
  EXPECT_EQ(shown.value("remote", ""), "sftp://" + server.user() + "@127.0.0.1:" + std::to_string(server.port()) + "/~/data");
  EXPECT_EQ(shown.at("private_key").value("source", ""), "stored");
  EXPECT_FALSE(contains(shown.dump(), "PRIVATE KEY"));
  EXPECT_EQ(shown.at("mount").value("state", ""), "unmounted");

  backupRestoreCompare("nas", data);

  // Kept mounted on request: read-only, nodev, nosuid, noexec; the key reached sshfs in a file that is gone.
  auto m = daemon->ctl({"volume", "mount", "nas"});
  ASSERT_EQ(m.exitCode, 0) << describe(m);
  auto mounts = mountsOf(*daemon);
  ASSERT_EQ(mounts.size(), 1u);
  std::string mountinfo = slurp("/proc/self/mountinfo");
  std::string line = mountinfo.substr(mountinfo.find(mounts[0]), 200);
  for (const char* flag : {"ro,", "nosuid", "nodev", "noexec"}) EXPECT_TRUE(contains(line, flag)) << line;
  EXPECT_TRUE(credentialFilesOf(*daemon).empty());
  EXPECT_TRUE(cmdlinesContaining(server.clientKey().substr(40, 40)).empty());
  EXPECT_EQ(daemon->ctlJson({"volume", "show", "nas"}).at("volume").at("mount").value("state", ""), "mounted");
  // A job may not find it unmounted under it: unmount is refused while... (no job now) it is allowed.
  auto u = daemon->ctl({"volume", "unmount", "nas"});
  ASSERT_EQ(u.exitCode, 0) << describe(u);
  EXPECT_TRUE(mountsOf(*daemon).empty());
  auto again = daemon->ctl({"volume", "unmount", "nas"});
  EXPECT_NE(again.exitCode, 0);
  EXPECT_TRUE(contains(again.err, "NotMounted")) << describe(again);
}

TEST_F(NetworkVolumes, SftpPasswordGoesOnStdinAndAWrongHostKeyIsRefused) {
  SshServer server;
  const std::string data = server.homeDir().string() + "/pw";
  makeSimpleTree(data, 5);
  chownTree(data, server.user());
  start();
  const std::string passwordFile = daemon->dir() + "/sftp.pw";
  writeFile(passwordFile, server.password() + "\n");
  auto r = daemon->ctl({"volume", "create", "pw", "--type", "sftp", "--host", "127.0.0.1", "--port", std::to_string(server.port()),
                        "--user", server.user(), "--remote-path", data, "--password-file", passwordFile, "--known-hosts-file",
                        server.knownHostsPath().string()});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  auto m = daemon->ctl({"volume", "mount", "pw"});
  ASSERT_EQ(m.exitCode, 0) << describe(m) << daemon->log();
  EXPECT_TRUE(cmdlinesContaining(server.password()).empty());
  EXPECT_EQ(firstDifference(contentsOf(data), contentsOf(mountsOf(*daemon).at(0))), "");
  ASSERT_EQ(daemon->ctl({"volume", "unmount", "pw"}).exitCode, 0);
  EXPECT_FALSE(contains(daemon->log(), server.password()));

  // Another server's key in known_hosts: refused, and the user is told what to check (sshfs keeps ssh's message
  // to itself).
  const std::string otherKnownHosts = daemon->dir() + "/other_known_hosts";
  writeFile(otherKnownHosts, "[127.0.0.1]:" + std::to_string(server.port()) +
                                 " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZlcnlXcm9uZ0tleVRoYXRJc05vdFRoZVNlcnZlcnM=\n");
  r = daemon->ctl({"volume", "create", "spoofed", "--type", "sftp", "--host", "127.0.0.1", "--port", std::to_string(server.port()),
                   "--user", server.user(), "--private-key-file", server.clientKeyPath().string(), "--known-hosts-file",
                   otherKnownHosts});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  auto t = daemon->ctl({"volume", "test", "spoofed"});
  EXPECT_EQ(t.exitCode, 10) << describe(t);
  EXPECT_TRUE(contains(t.err, "MountFailed")) << t.err;
  EXPECT_TRUE(contains(t.err, "known_hosts holds this server's key")) << t.err;
  EXPECT_TRUE(mountsOf(*daemon).empty());
  EXPECT_TRUE(credentialFilesOf(*daemon).empty());
  json shown = daemon->ctlJson({"volume", "show", "spoofed"}).at("volume");
  EXPECT_EQ(shown.at("mount").value("state", ""), "unmounted");
}

TEST_F(NetworkVolumes, WebdavThroughRcloneBacksUpAndRestores) {
  WebdavServer server;
  makeSimpleTree(server.root().string(), 20);
  start();
  const std::string passwordFile = daemon->dir() + "/dav.pw";
  writeFile(passwordFile, server.password());
  auto r = daemon->ctl({"volume", "create", "dav", "--type", "webdav", "--url", server.url(), "--user", server.user(),
                        "--password-file", passwordFile});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(daemon->ctlJson({"volume", "show", "dav"}).at("volume").value("driver", ""), "rclone");
  backupRestoreCompare("dav", server.root().string());
  EXPECT_FALSE(contains(daemon->log(), server.password()));
}

// davfs2 mounts and reads files by name here; on this machine's kernel (6.18) davfs2 1.6 cannot list a directory
// (getdents fails with EINVAL, also for ls), so `volume test` reports that, which is why rclone is the default.
TEST_F(NetworkVolumes, WebdavThroughDavfs2GetsTheQuotedPasswordFromItsSecretsFile) {
  WebdavServer server;
  writeFile((server.root() / "hello.txt").string(), "hello through davfs2\n", 0644);
  start();
  const std::string passwordFile = daemon->dir() + "/dav.pw";
  writeFile(passwordFile, server.password());
  auto r = daemon->ctl({"volume", "create", "davfs", "--type", "webdav", "--driver", "davfs", "--url", server.url(), "--user",
                        server.user(), "--password-file", passwordFile});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  auto m = daemon->ctl({"volume", "mount", "davfs"});
  ASSERT_EQ(m.exitCode, 0) << describe(m) << daemon->log();
  auto mounts = mountsOf(*daemon);
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(slurp(mounts[0] + "/hello.txt"), "hello through davfs2\n");
  EXPECT_TRUE(credentialFilesOf(*daemon).empty());
  EXPECT_TRUE(cmdlinesContaining(server.password(), server.pid()).empty());
  ASSERT_EQ(daemon->ctl({"volume", "unmount", "davfs"}).exitCode, 0);
  EXPECT_TRUE(eventually([&] { return mountsOf(*daemon).empty(); }, 5000));
}

TEST_F(NetworkVolumes, SmbThroughRcloneBacksUpAndRestores) {
  SambaServer server;
  makeSimpleTree(server.root().string(), 20);
  chownTree(server.root().string(), server.user());
  start();
  const std::string passwordFile = daemon->dir() + "/smb.pw";
  writeFile(passwordFile, server.password());
  // No driver given: this kernel has no cifs (not loaded, no module), so rclone's smb backend is chosen.
  ASSERT_FALSE(contains(slurp("/proc/filesystems"), "\tcifs\n")) << "a kernel with cifs: this test expects one without";
  auto r = daemon->ctl({"volume", "create", "share", "--type", "smb", "--host", "127.0.0.1", "--port",
                        std::to_string(server.port()), "--share", server.share(), "--user", server.user(), "--password-file",
                        passwordFile});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(daemon->ctlJson({"volume", "show", "share"}).at("volume").value("driver", ""), "rclone");
  backupRestoreCompare("share", server.root().string());
}

TEST_F(NetworkVolumes, RcloneRemotesTakeTheirSecretsByReference) {
  SshServer ssh;
  WebdavServer dav;
  const std::string data = ssh.homeDir().string() + "/rc";
  makeSimpleTree(data, 8);
  chownTree(data, ssh.user());
  makeSimpleTree(dav.root().string(), 8);
  start();
  // References: files only root can read, resolved when mounting.
  const std::string sshPass = daemon->dir() + "/ssh.pw", davPass = daemon->dir() + "/dav-ref.pw";
  writeFile(sshPass, ssh.password() + "\n");
  writeFile(davPass, dav.password() + "\n");
  auto r = daemon->ctl({"volume", "create", "rc-sftp", "--type", "rclone", "--rclone-type", "sftp", "--rclone-option", "host=127.0.0.1",
                        "--rclone-option", "port=" + std::to_string(ssh.port()), "--rclone-option", "user=" + ssh.user(),
                        "--rclone-option", "known_hosts_file=" + ssh.knownHostsPath().string(), "--rclone-secret",
                        "pass=file://" + sshPass, "--remote-path", data});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  r = daemon->ctl({"volume", "create", "rc-dav", "--type", "rclone", "--rclone-type", "webdav", "--rclone-option", "url=" + dav.url(),
                   "--rclone-option", "vendor=other", "--rclone-option", "user=" + dav.user(), "--rclone-secret",
                   "pass=file://" + davPass});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  // A password as a plain option is refused before anything is stored.
  auto plain = daemon->ctl({"volume", "create", "rc-bad", "--type", "rclone", "--rclone-type", "sftp", "--rclone-option", "pass=hunter2"});
  EXPECT_EQ(plain.exitCode, 2) << describe(plain);
  EXPECT_TRUE(contains(plain.err, "secret reference")) << plain.err;

  backupRestoreCompare("rc-sftp", data);
  backupRestoreCompare("rc-dav", dav.root().string());
  EXPECT_FALSE(contains(daemon->log(), ssh.password()));
}

// This kernel has no cifs and no nfs: the helpers are stand-ins the test controls (a helper directory first on
// daemon.mount_helper_path), which record their argv and the credentials file and mount a tmpfs. Labelled as such.
TEST_F(NetworkVolumes, KernelCifsAndNfsGetTheirOptionsAndCredentialsFileAndTheRealOnesSayWhatIsMissing) {
  Daemon::Options options;
  const std::string helpers = "/tmp/zbtest-helpers-" + std::to_string(::getpid());
  fs::create_directories(helpers);
  const std::string record = helpers + "/record";
  // Stand-in for mount.cifs and mount.nfs (never the product's code path: only what it execs).
  const std::string script = "#!/bin/sh\n"
                             "{ echo \"argv: $0 $*\"; for a in \"$@\"; do case \"$a\" in *credentials=*) f=${a#*credentials=}; f=${f%%,*};"
                             " echo \"credentials-mode: $(stat -c %a \"$f\")\"; cat \"$f\";; esac; done; } >> " + record + "\n"
                             "exec mount -t tmpfs -o size=1m,ro zbtest-standin \"$2\"\n";
  writeFile(helpers + "/mount.cifs", script, 0755);
  writeFile(helpers + "/mount.nfs", script, 0755);
  start("  mount_helper_path: [" + helpers + ", /usr/sbin, /usr/bin, /sbin, /bin]\n");
  const std::string passwordFile = daemon->dir() + "/cifs.pw";
  writeFile(passwordFile, "pa,ss=word with spaces\n");
  auto r = daemon->ctl({"volume", "create", "win", "--type", "smb", "--driver", "cifs", "--host", "fileserver.example", "--share", "Backups", "--remote-path",
                        "photos", "--user", "alice", "--domain", "corp.example", "--smb-version", "3.0", "--password-file", passwordFile,
                        "--mount-option", "noserverino"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  r = daemon->ctl({"volume", "create", "exports", "--type", "nfs", "--host", "nfs.example", "--remote-path", "/srv/export", "--port",
                   "2049", "--nfs-version", "4.2"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  json win = daemon->ctlJson({"volume", "show", "win"}).at("volume");
  ASSERT_EQ(daemon->ctl({"volume", "mount", "win"}).exitCode, 0) << daemon->log();
  ASSERT_EQ(daemon->ctl({"volume", "mount", "exports"}).exitCode, 0) << daemon->log();
  const std::string recorded = slurp(record);
  const std::string winMount = daemon->dir() + "/run/mounts/" + win.value("id", "");
  EXPECT_TRUE(contains(recorded, "argv: " + helpers + "/mount.cifs //fileserver.example/Backups/photos " + winMount +
                                     " -o ro,nodev,nosuid,noexec,credentials=" + daemon->dir() + "/run/mount-credentials/"))
      << recorded;
  EXPECT_TRUE(contains(recorded, "/cifs.credentials,vers=3.0,noserverino\n")) << recorded;
  EXPECT_TRUE(contains(recorded, "credentials-mode: 600\nusername=alice\npassword=pa,ss=word with spaces\ndomain=corp.example\n"))
      << recorded;
  EXPECT_TRUE(contains(recorded, "/mount.nfs nfs.example:/srv/export ")) << recorded;
  EXPECT_TRUE(contains(recorded, " -o ro,nodev,nosuid,noexec,vers=4.2,port=2049\n")) << recorded;
  EXPECT_TRUE(credentialFilesOf(*daemon).empty()) << "removed after the helper ended";
  EXPECT_EQ(mountsOf(*daemon).size(), 2u);
  EXPECT_TRUE(cmdlinesContaining("pa,ss=word").empty());
  // A kernel mount shows the share with its own modes (the stand-in's tmpfs: 1777): other local users cannot
  // reach it through zerobyted's mount directory (root's alone).
  struct stat mountsDir {};
  ASSERT_EQ(::stat((daemon->dir() + "/run/mounts").c_str(), &mountsDir), 0);
  EXPECT_EQ(mountsDir.st_mode & 07777, 0700u);
  EXPECT_EQ(inChildAs("nobody", [&]() -> std::string {
              DIR* d = ::opendir(winMount.c_str());
              if (!d) return std::strerror(errno);
              ::closedir(d);
              return "readable";
            }),
            std::strerror(EACCES));
  ASSERT_EQ(daemon->ctl({"volume", "unmount", "win"}).exitCode, 0);
  ASSERT_EQ(daemon->ctl({"volume", "unmount", "exports"}).exitCode, 0);
  daemon->stop();

  // The real helpers on a kernel without the file system: the error names the cause and the way out.
  daemon->writeConfig(Daemon::Options{});
  daemon->start();
  auto t = daemon->ctl({"volume", "test", "win"});
  EXPECT_EQ(t.exitCode, 10) << describe(t);
  EXPECT_TRUE(contains(t.err, "this kernel has no cifs file system")) << t.err;
  EXPECT_TRUE(contains(t.err, "--driver rclone")) << t.err;
  t = daemon->ctl({"volume", "test", "exports"});
  EXPECT_EQ(t.exitCode, 10) << describe(t);
  EXPECT_TRUE(contains(t.err, "this kernel has no nfs file system")) << t.err;
  EXPECT_TRUE(mountsOf(*daemon).empty());
  fs::remove_all(helpers);
}

// Declared in the configuration file: mounted at start when kept mounted, read-only through the API, and unmounted
// when a reload drops it. mount.nfs is the stand-in of the test above (labelled as such).
TEST_F(NetworkVolumes, ADeclaredVolumeIsMountedAtStartAndUnmountedWhenAReloadDropsIt) {
  const std::string helpers = "/tmp/zbtest-declared-" + std::to_string(::getpid());
  fs::create_directories(helpers);
  writeFile(helpers + "/mount.nfs", "#!/bin/sh\nexec mount -t tmpfs -o size=1m,ro zbtest-standin \"$2\"\n", 0755);
  Daemon::Options options;
  options.extraDaemonSettings = "  mount_helper_path: [" + helpers + ", /usr/sbin, /usr/bin, /sbin, /bin]\n";
  options.extraConfig = "volumes:\n  - name: exports\n    type: nfs\n    host: nfs.example\n    remote_path: /srv/export\n"
                        "    keep_mounted: true\n"
                        "  - {name: nas, type: smb, host: 127.0.0.1, share: data, guest: true}\n";
  daemon = std::make_unique<Daemon>(options);
  daemon->start();
  ASSERT_TRUE(eventually([&] { return mountsOf(*daemon).size() == 1; }, 10000)) << daemon->log();
  json shown = daemon->ctlJson({"volume", "show", "exports"}).at("volume");
  EXPECT_TRUE(shown.value("declared", false));
  EXPECT_EQ(shown.value("driver", ""), "nfs");
  EXPECT_EQ(shown.at("mount").value("state", ""), "mounted");
  // A declared smb volume without a driver: rclone on this kernel, which has no cifs, as through the API.
  ASSERT_FALSE(contains(slurp("/proc/filesystems"), "\tcifs\n")) << "a kernel with cifs: this test expects one without";
  EXPECT_EQ(daemon->ctlJson({"volume", "show", "nas"}).at("volume").value("driver", ""), "rclone");
  auto del = daemon->ctl({"volume", "delete", "exports"});
  EXPECT_NE(del.exitCode, 0);
  EXPECT_TRUE(contains(del.err, "ReadOnly")) << describe(del);

  options.extraConfig = "";
  daemon->writeConfig(options);
  daemon->signal(SIGHUP);
  ASSERT_TRUE(daemon->waitForNotification("READY=1", 10000));
  EXPECT_TRUE(eventually([&] { return mountsOf(*daemon).empty(); }, 10000)) << daemon->log();
  fs::remove_all(helpers);
}

TEST_F(NetworkVolumes, AHungHelperIsKilledAfterTheTimeoutAndReported) {
  const std::string helpers = "/tmp/zbtest-hung-" + std::to_string(::getpid());
  fs::create_directories(helpers);
  // Stand-in for a mount helper that never returns (a server that does not answer).
  writeFile(helpers + "/mount.nfs", "#!/bin/sh\nexec sleep 600\n", 0755);
  start("  mount_helper_path: [" + helpers + ", /usr/sbin, /usr/bin, /sbin, /bin]\n  mount_timeout_seconds: 2\n");
  ASSERT_EQ(daemon->ctl({"volume", "create", "slow", "--type", "nfs", "--host", "10.0.0.1", "--remote-path", "/x"}).exitCode, 0);
  auto begin = std::chrono::steady_clock::now();
  auto t = daemon->ctl({"volume", "mount", "slow"});
  auto took = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - begin).count();
  EXPECT_EQ(t.exitCode, 10) << describe(t);
  EXPECT_TRUE(contains(t.err, "did not finish within 2 s and was killed")) << t.err;
  EXPECT_LT(took, 30);
  EXPECT_TRUE(eventually([&] { return cmdlinesContaining("sleep 600").empty(); }, 10000));
  json shown = daemon->ctlJson({"volume", "show", "slow"}).at("volume");
  EXPECT_EQ(shown.at("mount").value("state", ""), "failed");
  EXPECT_TRUE(contains(text(shown.at("mount"), "last_error"), "did not finish")) << shown.dump();
  // A backup of it fails with the same cause, and nothing stays mounted.
  json job = backup("slow");
  EXPECT_EQ(job.value("state", ""), "failed") << job.dump();
  EXPECT_TRUE(contains(job.value("message", ""), "did not finish within 2 s")) << job.dump();
  fs::remove_all(helpers);
}

TEST_F(NetworkVolumes, ADeadMountIsRemountedAndOneUnmountedOutsideIsNoticed) {
  SshServer server;
  const std::string data = server.homeDir().string() + "/kept";
  makeSimpleTree(data, 3);
  chownTree(data, server.user());
  start("  mount_check_interval_seconds: 1\n  mount_check_timeout_seconds: 5\n");
  auto r = daemon->ctl({"volume", "create", "kept", "--type", "sftp", "--host", "127.0.0.1", "--port", std::to_string(server.port()),
                        "--user", server.user(), "--remote-path", data, "--private-key-file", server.clientKeyPath().string(),
                        "--known-hosts-file", server.knownHostsPath().string(), "--keep-mounted"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  // Mounted: the helper has handed the mount to the sshfs it left running.
  ASSERT_TRUE(eventually([&] {
    return mountsOf(*daemon).size() == 1 && daemon->ctlJson({"volume", "show", "kept"}).at("volume").at("mount").value("state", "") == "mounted";
  }, 20000)) << daemon->log();
  const std::string mountPath = mountsOf(*daemon)[0];

  // The sshfs process dies: the mount is dead (ENOTCONN); the periodic check finds it and mounts again.
  // This daemon's sshfs (tests beside this one may have their own): the one mounting our mount point.
  auto sshfs = cmdlinesContaining(" " + mountPath + " ");
  ASSERT_EQ(sshfs.size(), 1u);
  ::kill(std::stoi(sshfs[0]), SIGKILL);
  ASSERT_TRUE(eventually([&] {
    json m = daemon->ctlJson({"volume", "show", "kept"}).at("volume").at("mount");
    return contains(text(m, "last_error"), "dead") && m.value("state", "") == "mounted" && slurp(mountPath + "/file 0.txt").size() > 0;
  }, 30000)) << daemon->ctlJson({"volume", "show", "kept"}).dump() << daemon->log();

  // Unmounted from outside: the mount table monitor notices, and a kept volume is mounted again.
  ASSERT_EQ(::umount2(mountPath.c_str(), MNT_DETACH), 0);
  ASSERT_TRUE(eventually([&] {
    json m = daemon->ctlJson({"volume", "show", "kept"}).at("volume").at("mount");
    return contains(text(m, "last_error"), "unmounted outside zerobyted") && m.value("state", "") == "mounted";
  }, 30000)) << daemon->ctlJson({"volume", "show", "kept"}).dump();
  EXPECT_TRUE(contains(daemon->log(), "was unmounted outside zerobyted"));
}

// A server that stops answering (rclone's side of the bridge held with SIGSTOP): the check times out in its own
// child, the daemon keeps answering, and the dead mount is replaced.
TEST_F(NetworkVolumes, AServerThatHangsFailsTheCheckWithoutHangingTheDaemon) {
  WebdavServer server;
  makeSimpleTree(server.root().string(), 3);
  start("  mount_check_interval_seconds: 1\n  mount_check_timeout_seconds: 2\n");
  const std::string passwordFile = daemon->dir() + "/dav.pw";
  writeFile(passwordFile, server.password());
  ASSERT_EQ(daemon->ctl({"volume", "create", "hangs", "--type", "webdav", "--url", server.url(), "--user", server.user(),
                         "--password-file", passwordFile, "--keep-mounted"})
                .exitCode,
            0);
  ASSERT_TRUE(eventually([&] {
    return daemon->ctlJson({"volume", "show", "hangs"}).at("volume").at("mount").value("state", "") == "mounted";
  }, 20000)) << daemon->log();
  // This daemon's rclone (tests beside this one may run their own): its configuration is under our directory.
  auto servers = cmdlinesContaining("--config " + daemon->dir() + "/run/mount-credentials/");
  ASSERT_EQ(servers.size(), 1u);
  const pid_t stopped = std::stoi(servers[0]);
  ASSERT_EQ(::kill(stopped, SIGSTOP), 0);
  // The daemon answers while its check waits; the check gives up after 2 s and the volume is mounted anew.
  ASSERT_TRUE(eventually([&] {
    auto begin = std::chrono::steady_clock::now();
    json m = daemon->ctlJson({"volume", "show", "hangs"}).at("volume").at("mount");
    EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5)) << "volume show waited for the hanging mount";
    return contains(text(m, "last_error"), "did not answer within 2 s") && m.value("state", "") == "mounted" &&
           cmdlinesContaining("--config " + daemon->dir() + "/run/mount-credentials/").size() == 2;
  }, 30000)) << daemon->ctlJson({"volume", "show", "hangs"}).dump() << daemon->log();
  ::kill(stopped, SIGKILL);
  ::kill(stopped, SIGCONT);
  const std::string mountPath = mountsOf(*daemon).at(0);
  EXPECT_TRUE(eventually([&] { return slurp(mountPath + "/file 0.txt").size() > 0; }, 10000));
}

TEST_F(NetworkVolumes, ACrashLeavesMountsThatTheNextStartReconcilesAndSigtermUnmountsAll) {
  SshServer server;
  const std::string data = server.homeDir().string() + "/crash";
  makeSimpleTree(data, 3);
  chownTree(data, server.user());
  start();
  for (const std::string name : {"kept", "once"}) {
    std::vector<std::string> args = {"volume", "create", name, "--type", "sftp", "--host", "127.0.0.1", "--port", std::to_string(server.port()),
                                     "--user", server.user(), "--remote-path", data, "--private-key-file", server.clientKeyPath().string(),
                                     "--known-hosts-file", server.knownHostsPath().string()};
    if (name == "kept") args.push_back("--keep-mounted");
    ASSERT_EQ(daemon->ctl(args).exitCode, 0);
  }
  ASSERT_EQ(daemon->ctl({"volume", "mount", "once"}).exitCode, 0);
  ASSERT_TRUE(eventually([&] { return mountsOf(*daemon).size() == 2; }, 20000)) << daemon->log();
  const std::string keptId = daemon->ctlJson({"volume", "show", "kept"}).at("volume").value("id", "");
  const std::string onceId = daemon->ctlJson({"volume", "show", "once"}).at("volume").value("id", "");

  daemon->kill9();
  // A crash cannot unmount; the harness then kills the test's orphans (the daemonized sshfs processes), whose
  // mounts then stay behind dead, unless sshfs saw its connection end first and unmounted itself.
  const std::string onceMount = daemon->dir() + "/run/mounts/" + onceId;
  const auto left = mountsOf(*daemon);
  const bool onceLeft = std::find(left.begin(), left.end(), onceMount) != left.end();
  daemon->start();
  // "once" was mounted on request only: left over, unmounted. "kept" is kept: its sshfs died with zerobyted, so the
  // check at start finds it dead and mounts it again.
  const std::string keptPath = daemon->dir() + "/run/mounts/" + keptId;
  ASSERT_TRUE(eventually([&] {
    return mountsOf(*daemon) == std::vector<std::string>{keptPath} &&
           daemon->ctlJson({"volume", "show", "kept"}).at("volume").at("mount").value("state", "") == "mounted" &&
           slurp(keptPath + "/file 0.txt").size() > 0;
  }, 30000)) << daemon->log();
  if (onceLeft) {
    EXPECT_TRUE(contains(daemon->log(), "unmounted " + onceMount + ", left over from the last run")) << daemon->log();
  }
  EXPECT_EQ(daemon->ctlJson({"volume", "show", "once"}).at("volume").at("mount").value("state", ""), "unmounted");

  EXPECT_EQ(daemon->stop(), 0);
  EXPECT_TRUE(mountsOf(*daemon).empty()) << "SIGTERM unmounts what zerobyted mounted";
}

TEST_F(NetworkVolumes, BadFieldsAreRefusedWithTheFieldNamedAndMountingNeedsTheMountAction) {
  start();
  const std::string key = daemon->dir() + "/key";
  writeFile(key, "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
  auto expectRefused = [&](std::vector<std::string> args, const std::string& inMessage) {
    auto r = daemon->ctl(args);
    EXPECT_EQ(r.exitCode, 2) << describe(r);
    EXPECT_TRUE(contains(r.err, inMessage)) << r.err;
  };
  expectRefused({"volume", "create", "a", "--type", "sftp", "--host", "h", "--user", "u,allow_other", "--private-key-file", key,
                 "--no-host-key-check"},
                "not a user name");
  expectRefused({"volume", "create", "a", "--type", "sftp", "--host", "h", "--user", "u", "--private-key-file", key}, "known_hosts");
  expectRefused({"volume", "create", "a", "--type", "sftp", "--host", "h", "--user", "u", "--private-key-file", key,
                 "--no-host-key-check", "--share", "x"},
                "\"share\" does not apply to a sftp volume");
  expectRefused({"volume", "create", "a", "--type", "sftp", "--host", "h", "--user", "u", "--private-key-file", key,
                 "--no-host-key-check", "--mount-option", "ssh_command=/bin/sh"},
                "not allowed for the sshfs driver");
  expectRefused({"volume", "create", "a", "--type", "nfs", "--host", "h", "--remote-path", "/x", "--path", "/tmp"}, "has no path");
  expectRefused({"volume", "create", "a", "--type", "webdav", "--url", "https://u:p@h/"}, "must not carry a user or password");
  expectRefused({"volume", "create", "a", "--type", "ftp", "--host", "h"}, "not supported");
  EXPECT_TRUE(daemon->ctlJson({"volume", "list"}).at("volumes").empty()) << "nothing stored";

  // A user without a role may create their own directory volumes, but not mount anything as root.
  auto denied = daemon->ctl({"volume", "create", "mine", "--type", "nfs", "--host", "h", "--remote-path", "/x"}, "", "nobody");
  EXPECT_EQ(denied.exitCode, 5) << describe(denied);
  EXPECT_TRUE(contains(denied.err, "org.zerobyte.daemon1.mount")) << denied.err;
}

}  // namespace
}  // namespace zbtest
