// Network volumes: the exact helper invocation per driver, the files it gets, and the validation of every field
// that ends up in an option string.
#include "common/errors.h"
#include "daemon/core/mount_plan.h"
#include "daemon/mount/rclone_obscure.h"
#include "daemon/process/process_runner.h"

#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

using namespace zerobyte;
using core::MountContext;
using core::MountPlan;
using core::MountSecrets;
using core::Volume;

namespace {

const MountContext kContext{"/run/zerobyte/mounts/v1", "/run/zerobyte/mount-credentials/v1-x", "/var/cache/zerobyte/mounts/v1"};
const core::VolumeSecretsPresent kPassword{true, false};
const core::VolumeSecretsPresent kKey{false, true};

Volume volume(const std::string& type, const core::VolumeRemote& remote) {
  Volume v;
  v.id = "v1";
  v.name = "nas";
  v.type = type;
  v.remote = remote;
  return v;
}

std::string fileContent(const MountPlan& plan, const std::string& name) {
  for (const auto& f : plan.files)
    if (f.name == name) return f.content;
  return "<missing " + name + ">";
}

using zbtest::unit::parameterOf;
using zbtest::unit::thrownError;

core::VolumeRemote sftpRemote() {
  core::VolumeRemote r;
  r.host = "nas.example";
  r.port = 2222;
  r.user = "backup";
  r.remotePath = "/srv/data";
  r.knownHosts = "[nas.example]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTest";
  return r;
}

}  // namespace

TEST(MountPlan, SshfsWithAKeyGetsTheKeyAndKnownHostsAsFilesAndNoneOfRootsSshConfig) {
  auto r = sftpRemote();
  core::validateRemote("sftp", r, kKey, core::defaultMountOptionPolicy());
  EXPECT_EQ(r.driver, "sshfs");
  MountSecrets secrets;
  secrets.privateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----";
  MountPlan plan = core::planMount(volume("sftp", r), secrets, kContext);
  EXPECT_EQ(plan.helper, "sshfs");
  EXPECT_TRUE(plan.fuse);
  EXPECT_FALSE(plan.stdinSecret);
  const std::vector<std::string> expected = {
      "backup@nas.example:/srv/data", "/run/zerobyte/mounts/v1", "-F", "/dev/null", "-o",
      "ro,nodev,nosuid,noexec,port=2222,ServerAliveInterval=15,ServerAliveCountMax=3,ConnectTimeout=20,"
      "StrictHostKeyChecking=yes,UserKnownHostsFile=/run/zerobyte/mount-credentials/v1-x/known_hosts,"
      "GlobalKnownHostsFile=/dev/null,IdentityFile=/run/zerobyte/mount-credentials/v1-x/id_key,IdentitiesOnly=yes,"
      "BatchMode=yes,PasswordAuthentication=no,KbdInteractiveAuthentication=no"};
  EXPECT_EQ(plan.args, expected);
  EXPECT_EQ(fileContent(plan, "id_key"), secrets.privateKey + "\n");
  EXPECT_EQ(fileContent(plan, "known_hosts"), r.knownHosts + "\n");
}

TEST(MountPlan, SshfsWithAPasswordReadsItFromStdinNeverFromAFileOrArgv) {
  auto r = sftpRemote();
  r.remotePath = "";
  core::validateRemote("sftp", r, kPassword, core::defaultMountOptionPolicy());
  MountSecrets secrets;
  secrets.password = "p,a:ss w\"rd";
  MountPlan plan = core::planMount(volume("sftp", r), secrets, kContext);
  ASSERT_TRUE(plan.stdinSecret);
  EXPECT_EQ(*plan.stdinSecret, "p,a:ss w\"rd\n");
  EXPECT_EQ(plan.args.front(), "backup@nas.example:");
  EXPECT_NE(plan.args.back().find(",password_stdin,PubkeyAuthentication=no,"), std::string::npos) << plan.args.back();
  for (const auto& a : plan.args) EXPECT_EQ(a.find("p,a:ss"), std::string::npos) << a;
  EXPECT_EQ(plan.files.size(), 1u);  // known_hosts only
}

TEST(MountPlan, KernelCifsPutsTheCredentialsInAFileAndTheRestInOneOptionString) {
  core::VolumeRemote r;
  r.host = "fileserver";
  r.share = "Backups 2024";
  r.remotePath = "photos/raw";
  r.user = "alice";
  r.domain = "corp.example";
  r.port = 4445;
  r.smbVersion = "3.0";
  r.mountOptions = {"cache=none", "noserverino"};
  core::validateRemote("smb", r, kPassword, core::defaultMountOptionPolicy());
  EXPECT_EQ(r.driver, "cifs");
  MountSecrets secrets;
  secrets.password = "com,ma=and spaces";
  MountPlan plan = core::planMount(volume("smb", r), secrets, kContext);
  EXPECT_EQ(plan.helper, "mount.cifs");
  EXPECT_EQ(plan.kernelFileSystem, "cifs");
  const std::vector<std::string> expected = {
      "//fileserver/Backups 2024/photos/raw", "/run/zerobyte/mounts/v1", "-o",
      "ro,nodev,nosuid,noexec,credentials=/run/zerobyte/mount-credentials/v1-x/cifs.credentials,port=4445,vers=3.0,"
      "cache=none,noserverino"};
  EXPECT_EQ(plan.args, expected);
  EXPECT_EQ(fileContent(plan, "cifs.credentials"), "username=alice\npassword=com,ma=and spaces\ndomain=corp.example\n");
}

TEST(MountPlan, KernelNfsAndGuestSmbTakeNoCredentials) {
  core::VolumeRemote n;
  n.host = "fd00::5";
  n.remotePath = "/export/home";
  n.nfsVersion = "4.2";
  core::validateRemote("nfs", n, {}, core::defaultMountOptionPolicy());
  MountPlan nfs = core::planMount(volume("nfs", n), {}, kContext);
  EXPECT_EQ(nfs.helper, "mount.nfs");
  EXPECT_EQ(nfs.args, (std::vector<std::string>{"[fd00::5]:/export/home", "/run/zerobyte/mounts/v1", "-o",
                                                 "ro,nodev,nosuid,noexec,vers=4.2"}));
  EXPECT_TRUE(nfs.files.empty());

  core::VolumeRemote g;
  g.host = "printer-share";
  g.share = "public";
  g.guest = true;
  g.readWrite = true;
  core::validateRemote("smb", g, {}, core::defaultMountOptionPolicy());
  MountPlan guest = core::planMount(volume("smb", g), {}, kContext);
  EXPECT_EQ(guest.args.back(), "rw,nodev,nosuid,noexec,guest");
  EXPECT_TRUE(guest.files.empty());
}

TEST(MountPlan, DavfsQuotesTheSecretsFileAndKeysItByTheMountPoint) {
  core::VolumeRemote r;
  r.url = "https://dav.example/remote.php/webdav/";
  r.user = "bob";
  core::VolumeRemote byDefault = r;
  core::validateRemote("webdav", byDefault, kPassword, core::defaultMountOptionPolicy());
  EXPECT_EQ(byDefault.driver, "rclone");
  r.driver = "davfs";
  core::validateRemote("webdav", r, kPassword, core::defaultMountOptionPolicy());
  MountSecrets secrets;
  secrets.password = "a \"quoted\" \\ it's";
  MountPlan plan = core::planMount(volume("webdav", r), secrets, kContext);
  EXPECT_EQ(plan.helper, "mount.davfs");
  EXPECT_EQ(plan.args, (std::vector<std::string>{"https://dav.example/remote.php/webdav/", "/run/zerobyte/mounts/v1", "-o",
                                                  "ro,nodev,nosuid,noexec,conf=/run/zerobyte/mount-credentials/v1-x/davfs2.conf"}));
  EXPECT_EQ(fileContent(plan, "davfs2.secrets"), "/run/zerobyte/mounts/v1 \"bob\" \"a \\\"quoted\\\" \\\\ it\\'s\"\n");
  EXPECT_EQ(fileContent(plan, "davfs2.conf"),
            "cache_dir /var/cache/zerobyte/mounts/v1\nuse_locks 0\nask_auth 0\nsecrets /run/zerobyte/mount-credentials/v1-x/davfs2.secrets\n");
}

TEST(MountPlan, RcloneGetsItsRemoteFromAConfigFileWithTheObscuredPassword) {
  core::VolumeRemote r;
  r.host = "127.0.0.1";
  r.port = 4445;
  r.user = "zbsmb";
  r.share = "share";
  r.remotePath = "docs";
  r.driver = "rclone";
  core::validateRemote("smb", r, kPassword, core::defaultMountOptionPolicy());
  MountSecrets secrets;
  secrets.password = "plain";
  secrets.obscuredPassword = "OBSCURED";
  MountPlan plan = core::planMount(volume("smb", r), secrets, kContext);
  // rclone serves SFTP on a socket pair, sshfs mounts it: no network hop, no secret on either side's argv.
  EXPECT_EQ(plan.serverHelper, "rclone");
  EXPECT_EQ(plan.helper, "sshfs");
  EXPECT_EQ(fileContent(plan, "rclone.conf"),
            "[zerobyte]\ntype = smb\nhost = 127.0.0.1\nport = 4445\nuser = zbsmb\npass = OBSCURED\n");
  const std::vector<std::string> server = {
      "serve", "sftp", "--stdio", "zerobyte:share/docs", "--config", "/run/zerobyte/mount-credentials/v1-x/rclone.conf",
      "--cache-dir", "/var/cache/zerobyte/mounts/v1", "--log-level", "NOTICE", "--read-only"};
  EXPECT_EQ(plan.serverArgs, server);
  EXPECT_EQ(plan.args, (std::vector<std::string>{"zerobyte:", "/run/zerobyte/mounts/v1", "-f", "-o", "passive,ro,nodev,nosuid,noexec"}));
  for (const auto& a : plan.serverArgs) EXPECT_EQ(a.find("plain"), std::string::npos);

  core::VolumeRemote remote;
  remote.rcloneType = "sftp";
  remote.rcloneOptions = {{"host", "127.0.0.1", false}, {"user", "zb", false}, {"pass", "file:///etc/zerobyte/pw", true}};
  remote.remotePath = "data";
  core::validateRemote("rclone", remote, {}, core::defaultMountOptionPolicy());
  MountSecrets rs;
  rs.rcloneOptions = {{"pass", "OBSCURED2"}};
  MountPlan rplan = core::planMount(volume("rclone", remote), rs, kContext);
  EXPECT_EQ(fileContent(rplan, "rclone.conf"), "[zerobyte]\ntype = sftp\nhost = 127.0.0.1\nuser = zb\npass = OBSCURED2\nshell_type = none\n");
  EXPECT_EQ(rplan.serverArgs[3], "zerobyte:data");
}

TEST(MountPlan, EveryValueThatWouldReachAnOptionStringIsValidated) {
  const auto policy = core::defaultMountOptionPolicy();
  auto expectParameter = [&](const std::string& type, core::VolumeRemote r, core::VolumeSecretsPresent has, const std::string& parameter,
                             const std::string& inMessage) {
    Error e = thrownError([&] { core::validateRemote(type, r, has, policy); });
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
    EXPECT_EQ(parameterOf(e), parameter) << e.what();
    EXPECT_NE(std::string(e.what()).find(inMessage), std::string::npos) << e.what();
  };
  auto r = sftpRemote();
  r.user = "backup,allow_other";
  expectParameter("sftp", r, kKey, "user", "not a user name");
  r = sftpRemote();
  r.host = "-oProxyCommand=x";
  expectParameter("sftp", r, kKey, "host", "not a host name");
  r = sftpRemote();
  r.knownHosts = "";
  expectParameter("sftp", r, kKey, "known_hosts", "ssh-keyscan");
  r = sftpRemote();
  expectParameter("sftp", r, {}, "private_key", "needs a private key or a password");
  r = sftpRemote();
  r.mountOptions = {"ProxyCommand=nc evil 22"};
  expectParameter("sftp", r, kKey, "mount_options", "space");
  r.mountOptions = {"ssh_command=/bin/sh"};
  expectParameter("sftp", r, kKey, "mount_options", "not allowed for the sshfs driver");
  r.mountOptions = {"Compression=yes,allow_other"};
  expectParameter("sftp", r, kKey, "mount_options", "comma");
  r = sftpRemote();
  r.driver = "cifs";
  expectParameter("sftp", r, kKey, "driver", "use sshfs");

  core::VolumeRemote smb;
  smb.host = "srv";
  smb.share = "a/b";
  smb.user = "u";
  expectParameter("smb", smb, kPassword, "share", "not a share name");
  smb.share = "s";
  smb.remotePath = "../etc";
  expectParameter("smb", smb, kPassword, "remote_path", "..");
  smb.remotePath = "";
  smb.domain = "corp,example";
  expectParameter("smb", smb, kPassword, "domain", "not a domain name");
  smb.domain = "";
  smb.smbVersion = "1.0";
  expectParameter("smb", smb, kPassword, "smb_version", "3.1.1");
  smb.smbVersion = "";
  expectParameter("smb", smb, {}, "password", "needs a password");

  core::VolumeRemote nfs;
  nfs.host = "srv";
  nfs.remotePath = "/export,rw";
  expectParameter("nfs", nfs, {}, "remote_path", "comma");
  nfs.remotePath = "/export";
  nfs.nfsVersion = "2";
  expectParameter("nfs", nfs, {}, "nfs_version", "4.1");

  core::VolumeRemote dav;
  dav.url = "https://user:pw@dav.example/";
  expectParameter("webdav", dav, {}, "url", "must not carry a user or password");
  dav.url = "ftp://dav.example/";
  expectParameter("webdav", dav, {}, "url", "http://");
  dav.url = "https://dav.example/";
  dav.tlsVerify = false;
  dav.driver = "davfs";
  expectParameter("webdav", dav, {}, "tls_verify", "rclone driver");

  core::VolumeRemote rc;
  rc.rcloneType = "sftp";
  rc.rcloneOptions = {{"pass", "hunter2", false}};
  expectParameter("rclone", rc, {}, "rclone_options", "secret reference");
  rc.rcloneOptions = {{"pass", "hunter2", true}};
  expectParameter("rclone", rc, {}, "rclone_options", "must be a reference");
  rc.rcloneOptions = {{"host", "a\nb", false}};
  expectParameter("rclone", rc, {}, "rclone_options", "control character");

  EXPECT_EQ(parameterOf(thrownError([] { core::validateMountPassword("two\nlines"); })), "password");
  EXPECT_EQ(parameterOf(thrownError([] { core::validatePrivateKey("ssh-ed25519 AAAA public"); })), "private_key");
  // A mount directory with a comma would split the option string: refused before anything runs.
  MountContext bad = kContext;
  bad.fileDir = "/run/a,b";
  EXPECT_EQ(thrownError([&] { core::planMount(volume("sftp", sftpRemote()), {}, bad); }).code(), ErrorCode::InvalidArgument);
}

TEST(MountPlan, TheAdministratorsAllowListReplacesTheDefault) {
  auto policy = core::defaultMountOptionPolicy();
  policy["sshfs"] = {"reconnect"};
  auto r = sftpRemote();
  r.mountOptions = {"reconnect"};
  core::validateRemote("sftp", r, kKey, policy);
  r.mountOptions = {"Compression=yes"};
  EXPECT_EQ(parameterOf(thrownError([&] { core::validateRemote("sftp", r, kKey, policy); })), "mount_options");
}

TEST(MountPlan, DescribeRemoteShowsNoSecret) {
  auto r = sftpRemote();
  EXPECT_EQ(core::describeRemote(volume("sftp", r)), "sftp://backup@nas.example:2222/srv/data");
  r.remotePath = "data";
  EXPECT_EQ(core::describeRemote(volume("sftp", r)), "sftp://backup@nas.example:2222/~/data");
  core::VolumeRemote s;
  s.host = "srv";
  s.share = "docs";
  EXPECT_EQ(core::describeRemote(volume("smb", s)), "//srv/docs");
}

// The obscured form is what rclone itself reads back (rclone reveal), fresh each time.
TEST(RcloneObscure, RcloneRevealsTheOriginal) {
  if (access("/usr/bin/rclone", X_OK) != 0) GTEST_FAIL() << "rclone is not installed (scripts/install-deps installs it)";
  for (const std::string& plain : std::vector<std::string>{"a", "davpass1", "with spaces, commas: and \"quotes\"", std::string(100, 'x')}) {
    const std::string obscured = mount::rcloneObscure(plain);
    EXPECT_NE(obscured, mount::rcloneObscure(plain)) << "the IV is random";
    // "--": an obscured value may start with "-" (base64url), which rclone would take for a flag.
    auto revealed = process::runSync({"/usr/bin/rclone", "reveal", "--", obscured}, {"PATH=/usr/bin:/bin", "HOME=/nonexistent"});
    ASSERT_EQ(revealed.exitCode, 0) << revealed.output;
    std::string out = revealed.output;
    if (!out.empty() && out.back() == '\n') out.pop_back();
    EXPECT_EQ(out, plain);
  }
}
