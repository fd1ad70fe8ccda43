// Remote repositories through the real daemon and real servers on 127.0.0.1: sftp (sshd), rest (rclone serve
// restic), s3 (s3rver over HTTPS with the test's own CA) and rclone remotes (sftp, webdav); init, backup, list,
// restore, compare, forget; import; a server that goes away; and where the credentials never show up.
#include "tests/integration/harness.h"
#include "tests/integration/remote_helpers.h"
#include "tests/support/polkit_env.h"
#include "tests/support/test_servers.h"

#include <gtest/gtest.h>

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <cstring>
#include <string>
#include <vector>

namespace zbtest {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Every regular file below `dir`.
void regularFilesBelow(const std::string& dir, std::vector<std::string>& out) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file()) out.push_back(it->path());
}

class RemoteRepositories : public ::testing::Test {
 protected:
  void SetUp() override { setServerProcessHooks(&ownProcess, &disownProcess); }
  void TearDown() override {
    if (daemon && daemon->running()) daemon->stop();
    daemon.reset();
    setServerProcessHooks(nullptr, nullptr);
  }

  // The daemon, with a volume "data" of `files` small files.
  void start(int files = 30, const std::string& daemonSettings = "") {
    Daemon::Options options;
    options.extraDaemonSettings = daemonSettings;
    daemon = std::make_unique<Daemon>(options);
    daemon->start();
    data = daemon->dir() + "/data";
    makeSimpleTree(data, files);
    auto r = daemon->ctl({"volume", "create", "data", "--path", data});
    ASSERT_EQ(r.exitCode, 0) << describe(r);
  }

  // A 0600 file holding `content`, for a --*-file option.
  std::string secretFile(const std::string& name, const std::string& content) {
    const std::string path = daemon->dir() + "/" + name;
    writeFile(path, content);
    return path;
  }

  json backup(const std::string& repo, int timeoutMs = 180000) {
    auto r = daemon->ctl({"backup", "data", "--repo", repo, "--json"});
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    return daemon->waitForJob(json::parse(r.out).at("job").at("id").get<uint64_t>(), timeoutMs);
  }

  std::vector<std::string> snapshotIds(const std::string& repo) {
    std::vector<std::string> ids;
    const json list = daemon->ctlJson({"snapshot", "list", repo, "--refresh"});
    for (const auto& s : list.at("snapshots")) ids.push_back(s.value("id", ""));
    return ids;
  }

  // Files left in the daemon's directory for restic children's credentials.
  std::vector<std::string> credentialFiles() {
    std::vector<std::string> files;
    regularFilesBelow(daemon->dir() + "/run/repository-credentials", files);
    return files;
  }

  // backup → snapshots → restore → compare → forget → no snapshot, with nothing of the credentials left behind.
  void roundTrip(const std::string& repo) {
    const size_t before = snapshotIds(repo).size();
    json job = backup(repo);
    ASSERT_EQ(job.value("state", ""), "succeeded") << job.dump() << "\n" << daemon->log();
    const std::string snapshot = job.at("summary").at("snapshot_id").get<std::string>();
    auto ids = snapshotIds(repo);
    ASSERT_EQ(ids.size(), before + 1);
    EXPECT_EQ(std::count_if(ids.begin(), ids.end(), [&](const std::string& id) { return id.rfind(snapshot, 0) == 0; }), 1);

    const std::string target = daemon->dir() + "/restored-" + repo;
    auto r = daemon->ctl({"restore", repo, snapshot, "--target", target, "--json"});
    ASSERT_EQ(r.exitCode, 0) << describe(r);
    json restored = daemon->waitForJob(json::parse(r.out).at("job").at("id").get<uint64_t>());
    ASSERT_EQ(restored.value("state", ""), "succeeded") << restored.dump();
    EXPECT_EQ(firstDifference(contentsOf(data), contentsOf(target + data)), "");

    auto f = daemon->ctl({"snapshot", "forget", repo, snapshot});
    ASSERT_EQ(f.exitCode, 0) << describe(f);
    EXPECT_EQ(snapshotIds(repo).size(), before);
    // Each restic child's credential files go with it (the snapshot refresh after a change runs a moment longer).
    EXPECT_TRUE(eventually([&] { return credentialFiles().empty(); }, 30000)) << "credential files outlive the restic child";
  }

  std::unique_ptr<Daemon> daemon;
  std::string data;
};

// ---- sftp ----

TEST_F(RemoteRepositories, SftpRepositoryWithAKeyRoundTripsAndShowsNoKey) {
  SshServer server;
  const std::string repos = server.homeDir().string() + "/repos";
  fs::remove_all(repos);  // the test user's home outlives the servers
  fs::create_directories(repos);
  chownTree(repos, server.user());
  start();
  auto r = daemon->ctl({"repo", "create", "offsite", "--type", "sftp", "--host", "127.0.0.1", "--port", std::to_string(server.port()),
                        "--user", server.user(), "--path", repos + "/host1", "--private-key-file", server.clientKeyPath().string(),
                        "--known-hosts-file", server.knownHostsPath().string()});
  ASSERT_EQ(r.exitCode, 0) << describe(r) << daemon->log();
  EXPECT_TRUE(fs::exists(repos + "/host1/config")) << "restic init wrote the repository on the server";

  json shown = daemon->ctlJson({"repo", "show", "offsite"}).at("repository");
  EXPECT_EQ(shown.value("location", ""),
            "sftp://" + server.user() + "@127.0.0.1:" + std::to_string(server.port()) + "/" + repos + "/host1");
  EXPECT_EQ(shown.at("credentials").at("private_key").value("source", ""), "stored");
  EXPECT_FALSE(contains(shown.dump(), "PRIVATE KEY"));
  roundTrip("offsite");
  EXPECT_TRUE(cmdlinesContaining(server.clientKey().substr(40, 40)).empty());

  // A wrong host key: restic's ssh refuses the server, and the user is told so.
  const std::string wrongHosts = secretFile("wrong_known_hosts", "[127.0.0.1]:" + std::to_string(server.port()) +
                                                                     " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq9lJmXHLqXrW6pY8G1bKzQpZyX0Wq3i9N4yJc2lq0A\n");
  auto refused = daemon->ctl({"repo", "import", "spoofed", "--type", "sftp", "--host", "127.0.0.1", "--port", std::to_string(server.port()),
                              "--user", server.user(), "--path", repos + "/host1", "--private-key-file", server.clientKeyPath().string(),
                              "--known-hosts-file", wrongHosts, "--password-file", secretFile("any.pw", "whatever\n")});
  EXPECT_EQ(refused.exitCode, 11) << describe(refused);
  EXPECT_TRUE(contains(refused.err, "Unreachable")) << describe(refused);
  EXPECT_TRUE(contains(refused.err, "known_hosts")) << describe(refused);
  // ssh logs to a file of the child (restic 0.14 may exit before passing ssh's stderr on), read after restic ends.
  EXPECT_TRUE(contains(refused.err, "(ssh: Host key verification failed.)")) << describe(refused);
}

// ---- rest ----

TEST_F(RemoteRepositories, RestRepositoryKeepsItsPasswordOffEveryCommandLineAndReply) {
  ResticRestServer server;
  start();
  const std::string passwordFile = secretFile("rest.pw", server.password() + "\n");
  auto r = daemon->ctl({"repo", "create", "web", "--type", "rest", "--url", server.url() + "host1", "--user", server.user(),
                        "--server-password-file", passwordFile});
  ASSERT_EQ(r.exitCode, 0) << describe(r) << daemon->log();
  json shown = daemon->ctlJson({"repo", "show", "web"}).at("repository");
  EXPECT_EQ(shown.value("location", ""), "rest:http://" + server.user() + ":***@127.0.0.1:" + std::to_string(server.port()) + "/host1");
  EXPECT_EQ(shown.at("credentials").at("server_password").value("source", ""), "stored");

  // While a backup runs, no process but the server itself has the password on its command line, and restic's
  // environment holds no REST password either (it reads the URL from a sealed file descriptor).
  auto started = daemon->ctl({"backup", "data", "--repo", "web", "--json"});
  ASSERT_EQ(started.exitCode, 0) << describe(started);
  const uint64_t id = json::parse(started.out).at("job").at("id").get<uint64_t>();
  bool sawRestic = false;
  for (int i = 0; i < 200 && !sawRestic; ++i) {
    for (pid_t child : daemon->childPids()) {
      if (readAll("/proc/" + std::to_string(child) + "/cmdline").rfind("/usr/bin/restic", 0) != 0) continue;
      const std::string environ = readAll("/proc/" + std::to_string(child) + "/environ");
      if (environ.empty()) continue;
      sawRestic = true;
      EXPECT_FALSE(contains(environ, server.password())) << "restic's environment holds the REST password";
      EXPECT_FALSE(contains(environ, "AWS_")) << "another backend's variables";
    }
    EXPECT_TRUE(cmdlinesContaining(server.password(), server.pid()).empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  json job = daemon->waitForJob(id);
  ASSERT_EQ(job.value("state", ""), "succeeded") << job.dump();
  roundTrip("web");
  EXPECT_FALSE(contains(daemon->log(), server.password())) << "the daemon log holds the REST password";
  EXPECT_FALSE(contains(daemon->ctl({"repo", "list", "--json"}).out, server.password()));
  EXPECT_FALSE(contains(daemon->ctl({"job", "log", std::to_string(id)}).out, server.password()));
}

TEST_F(RemoteRepositories, ImportTellsAWrongPasswordAMissingRepositoryAndAnUnreachableServerApart) {
  ResticRestServer server;
  start(5);
  const std::string serverPassword = secretFile("rest.pw", server.password());
  // A repository made by hand with plain restic, with a password of its own.
  const std::string repoPassword = secretFile("repo.pw", "the existing one\n");
  {
    const std::string url = "rest:http://" + server.user() + ":" + "rest-Pass%2C1%3Ax" + "@127.0.0.1:" + std::to_string(server.port()) + "/old";
    auto init = run({"/usr/bin/restic", "init", "--repo", url, "--password-file", repoPassword});
    ASSERT_EQ(init.exitCode, 0) << describe(init);
  }
  auto import = [&](const std::string& name, const std::string& path, const std::string& passwordFile) {
    return daemon->ctl({"repo", "import", name, "--type", "rest", "--url", server.url() + path, "--user", server.user(),
                        "--server-password-file", serverPassword, "--password-file", passwordFile});
  };
  auto wrong = import("wrong", "old", secretFile("wrong.pw", "not it\n"));
  EXPECT_EQ(wrong.exitCode, 9) << describe(wrong);
  EXPECT_TRUE(contains(wrong.err, "WrongPassword")) << describe(wrong);

  auto missing = import("missing", "nothing-here", repoPassword);
  EXPECT_EQ(missing.exitCode, 9) << describe(missing);
  EXPECT_TRUE(contains(missing.err, "NoRepository")) << describe(missing);
  EXPECT_FALSE(contains(missing.err, server.password())) << describe(missing);

  auto adopted = import("old", "old", repoPassword);
  ASSERT_EQ(adopted.exitCode, 0) << describe(adopted);
  EXPECT_TRUE(snapshotIds("old").empty());

  server.stop();
  auto unreachable = import("gone", "old", repoPassword);
  EXPECT_EQ(unreachable.exitCode, 11) << describe(unreachable);
  EXPECT_TRUE(contains(unreachable.err, "Unreachable")) << describe(unreachable);
  EXPECT_TRUE(contains(unreachable.err, "refused the connection")) << describe(unreachable);
  auto connection = daemon->ctl({"repo", "check", "old", "--connection"});
  EXPECT_EQ(connection.exitCode, 11) << describe(connection);
  EXPECT_TRUE(contains(connection.err, "repository \"old\"")) << describe(connection);
  server.start();
  auto back = daemon->ctl({"repo", "check", "old", "--connection"});
  EXPECT_EQ(back.exitCode, 0) << describe(back);
}

// A server that goes away in the middle of a backup: restic retries, zerobyted gives up after
// repository_retry_seconds with the cause; with the server back the next backup succeeds and the repository checks clean.
TEST_F(RemoteRepositories, AServerStoppedDuringABackupFailsTheJobWithTheCauseAndTheNextOneSucceeds) {
  ResticRestServer server;
  start(5, "  repository_retry_seconds: 5\n");
  // 24 MiB of random data, uploaded at 2 MiB/s: the server can be stopped while it is being sent.
  {
    std::mt19937_64 random(42);
    std::string chunk(1 << 20, '\0');
    for (int i = 0; i < 24; ++i) {
      for (size_t k = 0; k + 8 <= chunk.size(); k += 8) {
        const uint64_t v = random();
        std::memcpy(&chunk[k], &v, 8);
      }
      writeFile(data + "/big-" + std::to_string(i), chunk, 0644);
    }
  }
  auto r = daemon->ctl({"repo", "create", "web", "--type", "rest", "--url", server.url() + "slow", "--user", server.user(),
                        "--server-password-file", secretFile("rest.pw", server.password()), "--limit-upload", "2048"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  auto started = daemon->ctl({"backup", "data", "--repo", "web", "--json"});
  ASSERT_EQ(started.exitCode, 0) << describe(started);
  const uint64_t id = json::parse(started.out).at("job").at("id").get<uint64_t>();
  ASSERT_TRUE(eventually([&] { return daemon->ctlJson({"job", "show", std::to_string(id)}).at("job").value("state", "") == "running"; }, 30000));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  server.stop();
  json failed = daemon->waitForJob(id, 120000);
  EXPECT_EQ(failed.value("state", ""), "failed") << failed.dump();
  const std::string message = failed.value("message", "");
  EXPECT_TRUE(contains(message, "repository \"web\"")) << message;
  EXPECT_TRUE(contains(message, "kept failing")) << message;
  EXPECT_TRUE(contains(message, "connection refused")) << message;
  EXPECT_FALSE(contains(message, server.password())) << message;
  EXPECT_TRUE(credentialFiles().empty());

  server.start();
  json next = backup("web");
  EXPECT_EQ(next.value("state", ""), "succeeded") << next.dump() << daemon->log();
  auto check = daemon->ctl({"repo", "check", "web"});
  EXPECT_EQ(check.exitCode, 0) << describe(check) << daemon->log();
}

// A server that accepts connections and never answers (rclone stopped with SIGSTOP: the kernel still accepts on its
// socket): restic 0.14 would wait silently for ever; the job is stopped after repository_retry_seconds.
TEST_F(RemoteRepositories, AServerThatStopsAnsweringFailsTheJobAfterTheRetryTime) {
  ResticRestServer server;
  start(3, "  repository_retry_seconds: 5\n");
  auto r = daemon->ctl({"repo", "create", "web", "--type", "rest", "--url", server.url() + "hung", "--user", server.user(),
                        "--server-password-file", secretFile("rest.pw", server.password())});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  ASSERT_EQ(::kill(server.pid(), SIGSTOP), 0);
  const auto before = std::chrono::steady_clock::now();
  auto hung = daemon->ctl({"repo", "check", "web", "--connection"});
  const auto waited = std::chrono::steady_clock::now() - before;
  ::kill(server.pid(), SIGCONT);
  EXPECT_EQ(hung.exitCode, 11) << describe(hung);
  EXPECT_TRUE(contains(hung.err, "has not answered for 5 s")) << describe(hung);
  EXPECT_LT(waited, std::chrono::seconds(60));
  auto back = daemon->ctl({"repo", "check", "web", "--connection"});
  EXPECT_EQ(back.exitCode, 0) << describe(back);
}

// ---- s3 ----

TEST_F(RemoteRepositories, S3RepositoryOverHttpsWithItsOwnCaRoundTripsAndKeepsTheKeyInItsOwnChild) {
  S3Server server;
  start();
  const std::string secretKey = secretFile("s3.key", server.secretAccessKey() + "\n");
  std::vector<std::string> create = {"repo", "create", "objects", "--type", "s3", "--endpoint", server.url(), "--bucket", server.bucket(),
                                     "--path", "host1", "--access-key-id", server.accessKeyId(), "--secret-access-key-file", secretKey,
                                     "--path-style"};
  // Without the CA: restic does not trust the server, and says so.
  auto untrusted = daemon->ctl(create);
  EXPECT_EQ(untrusted.exitCode, 11) << describe(untrusted);
  EXPECT_TRUE(contains(untrusted.err, "ca_cert")) << describe(untrusted);
  create.insert(create.end(), {"--ca-cert", server.caPath().string()});
  auto r = daemon->ctl(create);
  ASSERT_EQ(r.exitCode, 0) << describe(r) << daemon->log();
  json shown = daemon->ctlJson({"repo", "show", "objects"}).at("repository");
  EXPECT_EQ(shown.value("location", ""), "s3:" + server.url() + "/" + server.bucket() + "/host1");
  EXPECT_EQ(shown.value("access_key_id", ""), server.accessKeyId());
  EXPECT_EQ(shown.at("credentials").at("secret_access_key").value("set", false), true);
  roundTrip("objects");
  // A second repository of another type: its restic child has no S3 variable.
  auto local = daemon->ctl({"repo", "create", "here", "--path", daemon->dir() + "/here"});
  ASSERT_EQ(local.exitCode, 0) << describe(local);
  auto started = daemon->ctl({"backup", "data", "--repo", "here", "--json"});
  ASSERT_EQ(started.exitCode, 0) << describe(started);
  for (int i = 0; i < 100; ++i) {
    for (pid_t child : daemon->childPids()) EXPECT_FALSE(contains(readAll("/proc/" + std::to_string(child) + "/environ"), "AWS_"));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  daemon->waitForJob(json::parse(started.out).at("job").at("id").get<uint64_t>());
}

// ---- rclone ----

TEST_F(RemoteRepositories, RcloneRepositoriesOverSftpAndWebdavRemotesRoundTrip) {
  SshServer ssh;
  WebdavServer dav;
  const std::string repos = ssh.homeDir().string() + "/rclone-repos";
  fs::remove_all(repos);  // the test user's home outlives the servers
  fs::create_directories(repos);
  chownTree(repos, ssh.user());
  start();
  const std::string sshPassword = secretFile("ssh.pw", ssh.password() + "\n");
  auto r = daemon->ctl({"repo", "create", "viasftp", "--type", "rclone", "--rclone-type", "sftp", "--rclone-option", "host=127.0.0.1",
                        "--rclone-option", "port=" + std::to_string(ssh.port()), "--rclone-option", "user=" + ssh.user(),
                        "--rclone-option", "known_hosts_file=" + ssh.knownHostsPath().string(), "--rclone-secret",
                        "pass=file://" + sshPassword, "--path", repos + "/r1"});
  ASSERT_EQ(r.exitCode, 0) << describe(r) << daemon->log();
  EXPECT_TRUE(fs::exists(repos + "/r1/config"));
  roundTrip("viasftp");

  const std::string davPassword = secretFile("dav.pw", dav.password() + "\n");
  auto w = daemon->ctl({"repo", "create", "viadav", "--type", "rclone", "--rclone-type", "webdav", "--rclone-option", "url=" + dav.url(),
                        "--rclone-option", "user=" + dav.user(), "--rclone-secret", "pass=file://" + davPassword, "--path", "r2"});
  ASSERT_EQ(w.exitCode, 0) << describe(w) << daemon->log();
  EXPECT_TRUE(fs::exists(dav.root() / "r2" / "config"));
  roundTrip("viadav");
  EXPECT_TRUE(cmdlinesContaining(dav.password(), dav.pid()).empty());
}

// ---- a user's own repository ----

// restic for a repository a user without a role made runs as that user: its ssh reads the key from a file of that
// user's own, and references (which zerobyted would resolve as root) are refused to them.
TEST_F(RemoteRepositories, AUsersOwnSftpRepositoryRunsResticAndSshAsThem) {
  SshServer server;
  const std::string repos = server.homeDir().string() + "/user-repos";
  fs::remove_all(repos);
  fs::create_directories(repos);
  chownTree(repos, server.user());
  start(4);
  struct passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  auto mine = [&](const std::string& name, const std::string& content) {
    const std::string path = secretFile(name, content);
    EXPECT_EQ(::chown(path.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
    return path;
  };
  const std::string key = mine("nobody.key", server.clientKey());
  const std::string knownHosts = mine("nobody.known_hosts", readAll(server.knownHostsPath()));
  std::vector<std::string> create = {"repo", "create", "own", "--type", "sftp", "--host", "127.0.0.1", "--port",
                                     std::to_string(server.port()), "--user", server.user(), "--path", repos + "/own",
                                     "--known-hosts-file", knownHosts};
  auto byReference = create;
  byReference.insert(byReference.end(), {"--private-key-ref", "file://" + server.clientKeyPath().string()});
  auto refused = daemon->ctl(byReference, "", "nobody");
  EXPECT_EQ(refused.exitCode, 5) << describe(refused);
  EXPECT_TRUE(contains(refused.err, "private_key_ref")) << describe(refused);

  create.insert(create.end(), {"--private-key-file", key});
  auto r = daemon->ctl(create, "", "nobody");
  ASSERT_EQ(r.exitCode, 0) << describe(r) << daemon->log();
  auto v = daemon->ctl({"volume", "create", "theirs", "--path", data}, "", "nobody");
  ASSERT_EQ(v.exitCode, 0) << describe(v);
  auto started = daemon->ctl({"backup", "theirs", "--repo", "own", "--json"}, "", "nobody");
  ASSERT_EQ(started.exitCode, 0) << describe(started);
  const uint64_t id = json::parse(started.out).at("job").at("id").get<uint64_t>();
  // While it runs: restic is nobody's, and so is the directory with the key.
  bool sawUid = false;
  for (int i = 0; i < 300 && !sawUid; ++i) {
    for (pid_t child : daemon->childPids()) {
      // Only once it runs restic: before exec the child is still dropping its privileges.
      if (readAll("/proc/" + std::to_string(child) + "/cmdline").rfind("/usr/bin/restic", 0) != 0) continue;
      const auto uid = realUidOf(child);
      if (!uid) continue;
      sawUid = true;
      EXPECT_EQ(*uid, nobody->pw_uid);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(sawUid) << "no restic child seen";
  json job = daemon->waitForJob(id);
  EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump() << daemon->log();
  EXPECT_EQ(job.value("run_as_uid", -1), static_cast<int64_t>(nobody->pw_uid)) << job.dump();
  EXPECT_TRUE(eventually([&] { return credentialFiles().empty(); }, 30000));
}

// An operator may restore an admin's snapshots. restic then runs as root, so the server's credentials, the
// repository password and the repository stay out of the operator's processes, and tar extracts restic's stream
// as the operator: the files are theirs, and only where they may write.
TEST_F(RemoteRepositories, AnOperatorRestoresAnAdminsRemoteRepositoryWithResticAsRootAndTarAsThemselves) {
  zbtest::roleUsers();
  ResticRestServer server;
  start(3, std::string(zbtest::kGroupModeDaemonSetting));
  auto r = daemon->ctl({"repo", "create", "web", "--type", "rest", "--url", server.url() + "adminrepo", "--user", server.user(),
                        "--server-password-file", secretFile("rest.pw", server.password())});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  json job = backup("web");
  ASSERT_EQ(job.value("state", ""), "succeeded") << job.dump();
  const auto& op = zbtest::roleUser("operator");
  const std::string target = daemon->dir() + "/operator-target";
  fs::create_directories(target);
  ASSERT_EQ(::chown(target.c_str(), op.uid, op.gid), 0);

  auto started = daemon->ctl({"restore", "web", "latest", "--target", target, "--json"}, "", op.name);
  ASSERT_EQ(started.exitCode, 0) << describe(started);
  const uint64_t id = json::parse(started.out).at("job").at("id").get<uint64_t>();
  // While it runs: restic is root's, and tar (the operator's) holds nothing of the server's credentials.
  bool sawTar = false;
  for (int i = 0; i < 1000 && !sawTar; ++i) {
    for (pid_t child : daemon->childPids()) {
      // Only once it runs its program: before exec a child is still dropping its privileges.
      const std::string cmdline = readAll("/proc/" + std::to_string(child) + "/cmdline");
      const std::string program = cmdline.substr(0, cmdline.find('\0'));
      const auto uid = realUidOf(child);
      if (!uid) continue;
      if (program == "/usr/bin/restic") {
        EXPECT_EQ(*uid, 0u) << "restic reads the admin's repository as root";
      }
      if (program.size() > 4 && program.substr(program.size() - 4) == "/tar") {
        sawTar = true;
        EXPECT_EQ(*uid, op.uid) << "tar writes as the operator";
        EXPECT_FALSE(contains(readAll("/proc/" + std::to_string(child) + "/environ"), server.password()));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  json done = daemon->waitForJob(id);
  ASSERT_EQ(done.value("state", ""), "succeeded") << done.dump() << daemon->log();
  EXPECT_EQ(done.value("run_as_uid", -1), static_cast<int64_t>(op.uid)) << "restored as the operator";
  EXPECT_EQ(firstDifference(contentsOf(data), contentsOf(target + data)), "");
  struct stat st {};
  ASSERT_EQ(::stat((target + data).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, op.uid) << "the files are the operator's";

  // Nowhere the operator cannot write, and a path the snapshot lacks is named by tar.
  const std::string rootOnly = daemon->dir() + "/root-only";
  fs::create_directories(rootOnly);
  ::chmod(rootOnly.c_str(), 0700);
  auto refused = daemon->ctl({"restore", "web", "latest", "--target", rootOnly + "/x"}, "", op.name);
  EXPECT_EQ(refused.exitCode, 5) << describe(refused);
  const std::string fresh = target + "/fresh/nested";
  auto missing = daemon->ctl({"restore", "web", "latest", "--target", fresh, "--include", "/no/such/path", "--follow"}, "", op.name);
  EXPECT_NE(missing.exitCode, 0) << describe(missing);
  EXPECT_TRUE(contains(missing.err, "no/such/path: Not found in archive")) << describe(missing);
  auto one = daemon->ctl({"restore", "web", "latest", "--target", fresh, "--include", data + "/", "--follow"}, "", op.name);
  EXPECT_EQ(one.exitCode, 0) << describe(one);
  EXPECT_EQ(firstDifference(contentsOf(data), contentsOf(fresh + data)), "") << "a missing target is made, as the operator";
  for (const std::string& made : {target + "/fresh", fresh}) {
    ASSERT_EQ(::stat(made.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, op.uid) << made;
  }

  // A directory inside the target that is root's: tar, as the operator, cannot write there, and says so.
  const std::string blocked = target + "/blocked";
  fs::create_directories(blocked);
  ASSERT_EQ(::chown(blocked.c_str(), op.uid, op.gid), 0);
  const std::string first = data.substr(1, data.find('/', 1) - 1);  // "tmp" of /tmp/zbtest-…/data
  fs::create_directories(blocked + "/" + first);
  ::chmod((blocked + "/" + first).c_str(), 0755);
  auto denied = daemon->ctl({"restore", "web", "latest", "--target", blocked, "--follow"}, "", op.name);
  EXPECT_NE(denied.exitCode, 0) << describe(denied);
  EXPECT_TRUE(contains(denied.err, "tar, writing as " + op.name)) << describe(denied);
  EXPECT_TRUE(contains(denied.err, "Permission denied")) << describe(denied);
  EXPECT_TRUE(fs::is_empty(blocked + "/" + first)) << "nothing written where the operator may not write";
  EXPECT_TRUE(eventually([&] { return credentialFiles().empty(); }, 30000));
}

// ---- what the store keeps ----

TEST_F(RemoteRepositories, CredentialsAreSealedInTheStoreAndInvalidFieldsAreRefusedWithTheirName) {
  start(3);
  const std::string secret = "S3-secret-" + std::to_string(::getpid()) + "-plain";
  auto r = daemon->ctl({"repo", "import", "far", "--type", "s3", "--endpoint", "https://127.0.0.1:1", "--bucket", "zbtest",
                        "--access-key-id", "AKIDEXAMPLE", "--secret-access-key-file", secretFile("k", secret + "\n"),
                        "--password-file", secretFile("p", "pw\n")});
  EXPECT_EQ(r.exitCode, 11) << describe(r);  // nothing listens there
  auto bad = daemon->ctl({"repo", "create", "bad", "--type", "s3", "--endpoint", "https://h/x", "--bucket", "zbtest", "--access-key-id",
                          "A", "--secret-access-key-file", secretFile("k2", secret)});
  EXPECT_EQ(bad.exitCode, 2) << describe(bad);
  EXPECT_TRUE(contains(bad.err, "endpoint")) << describe(bad);
  auto wrongField = daemon->ctl({"repo", "create", "bad", "--type", "sftp", "--bucket", "b"});
  EXPECT_EQ(wrongField.exitCode, 2) << describe(wrongField);
  EXPECT_TRUE(contains(wrongField.err, "\"bucket\" does not apply to a sftp repository")) << describe(wrongField);
  auto noKey = daemon->ctl({"repo", "create", "bad", "--type", "s3", "--bucket", "zbtest", "--access-key-id", "A"});
  EXPECT_EQ(noKey.exitCode, 2) << describe(noKey);
  EXPECT_TRUE(contains(noKey.err, "secret_access_key")) << describe(noKey);

  // A stored repository with a credential: a rest repository on a server that answers.
  ResticRestServer server;
  auto ok = daemon->ctl({"repo", "create", "web", "--type", "rest", "--url", server.url() + "sealed", "--user", server.user(),
                         "--server-password-file", secretFile("rest.pw", server.password())});
  ASSERT_EQ(ok.exitCode, 0) << describe(ok);
  ASSERT_EQ(daemon->stop(), 0);
  std::vector<std::string> files;
  for (const std::string& dir : {daemon->stateDir(), daemon->dir() + "/run"}) regularFilesBelow(dir, files);
  for (const auto& file : files) {
    const std::string content = readAll(file);
    EXPECT_FALSE(contains(content, server.password())) << file << " holds the REST password";
    EXPECT_FALSE(contains(content, secret)) << file << " holds the S3 secret key";
  }
  EXPECT_FALSE(contains(daemon->log(), server.password()));
  EXPECT_FALSE(contains(daemon->log(), secret));
}

}  // namespace
}  // namespace zbtest
