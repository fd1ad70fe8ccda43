// The test servers of tests/support/test_servers.h, each reached by the real client the product
// uses with it: ssh (as restic's sftp.command runs it), rclone's webdav backend, smbclient, and
// restic's rest: and s3: backends.
#include "tests/integration/harness.h"
#include "tests/support/test_servers.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace zbtest {
namespace {

constexpr const char* kSsh = "/usr/bin/ssh";
constexpr const char* kRclone = "/usr/bin/rclone";
constexpr const char* kSmbclient = "/usr/bin/smbclient";
constexpr const char* kRestic = "/usr/bin/restic";

void writeFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  ASSERT_TRUE(out) << "cannot write " << path;
}

bool acceptsConnections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

class TestServers : public ::testing::Test {
 protected:
  // The harness reaps and kills child processes it did not start itself (it is a child
  // subreaper): the servers' processes are the test's own.
  void SetUp() override { setServerProcessHooks(&ownProcess, &disownProcess); }
  void TearDown() override { setServerProcessHooks(nullptr, nullptr); }
};

// ssh as restic's sftp.command and the daemon's probe run it: key, known_hosts, batch mode.
std::vector<std::string> sshCommand(const SshServer& server, const std::filesystem::path& knownHosts) {
  return {kSsh, "-F", "/dev/null", "-p", std::to_string(server.port()), "-i", server.clientKeyPath().string(),
          "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + knownHosts.string(), "-o", "GlobalKnownHostsFile=/dev/null",
          "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
          server.user() + "@" + server.host(), "true"};
}

TEST_F(TestServers, SshLogsInWithTheKeyAndRefusesAWrongHostKey) {
  SshServer server;
  EXPECT_EQ(server.host(), "127.0.0.1");
  EXPECT_EQ(server.user(), "zbtsftp");
  EXPECT_NE(server.password().find(','), std::string::npos);
  EXPECT_NE(server.password().find(':'), std::string::npos);
  EXPECT_EQ(server.knownHostsLine().rfind("[127.0.0.1]:" + std::to_string(server.port()) + " ssh-ed25519 AAAA", 0), 0u)
      << server.knownHostsLine();
  struct stat key {};
  ASSERT_EQ(::stat(server.clientKeyPath().c_str(), &key), 0);
  EXPECT_EQ(key.st_mode & 0777, 0600u);
  EXPECT_NE(server.clientKey().find("OPENSSH PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_directory(server.homeDir()));

  CommandResult ok = run(sshCommand(server, server.knownHostsPath()));
  EXPECT_EQ(ok.exitCode, 0) << describe(ok) << "\n" << server.logTail();
  // sshd's connection processes outlive their parents: the server's reaper collects them, the
  // test process (a child subreaper) adopts nothing.
  EXPECT_TRUE(adoptedProcesses().empty());

  // The same address with another key (the client's) as the host key: a man in the middle.
  const auto wrongKnownHosts = server.dir() / "wrong_known_hosts";
  std::ifstream publicKey(server.clientPublicKeyPath());
  std::string type, blob;
  publicKey >> type >> blob;
  writeFile(wrongKnownHosts, "[127.0.0.1]:" + std::to_string(server.port()) + " " + type + " " + blob + "\n");
  CommandResult refused = run(sshCommand(server, wrongKnownHosts));
  EXPECT_EQ(refused.exitCode, 255) << describe(refused);
  EXPECT_TRUE(contains(refused.err, "REMOTE HOST IDENTIFICATION HAS CHANGED") || contains(refused.err, "Host key verification failed"))
      << describe(refused);

  // Down and back on the same port, with the same host key.
  const int port = server.port();
  server.stop();
  EXPECT_FALSE(acceptsConnections(port));
  CommandResult down = run(sshCommand(server, server.knownHostsPath()));
  EXPECT_EQ(down.exitCode, 255) << describe(down);
  server.start();
  EXPECT_EQ(server.port(), port);
  CommandResult again = run(sshCommand(server, server.knownHostsPath()));
  EXPECT_EQ(again.exitCode, 0) << describe(again) << "\n" << server.logTail();
  EXPECT_TRUE(adoptedProcesses().empty());
}

// The fixture sets its user's password: never root's, a system account's or a person's.
TEST_F(TestServers, SshServerRefusesAccountsItDidNotMake) {
  SshServer::Options root;
  root.user = "root";
  EXPECT_THROW(SshServer{root}, std::runtime_error);
  SshServer::Options system;
  system.user = "daemon";
  EXPECT_THROW(SshServer{system}, std::runtime_error);
}

// rclone's webdav backend with an inline remote, as the daemon builds it (password obscured).
TEST_F(TestServers, WebdavListsAndTakesFilesThroughRclone) {
  WebdavServer server;
  EXPECT_EQ(server.url(), "http://127.0.0.1:" + std::to_string(server.port()) + "/");
  writeFile(server.root() / "hello.txt", "hello webdav\n");

  CommandResult obscured = run({kRclone, "obscure", "-"}, server.password() + "\n");
  ASSERT_EQ(obscured.exitCode, 0) << describe(obscured);
  std::string pass = obscured.out;
  while (!pass.empty() && (pass.back() == '\n' || pass.back() == '\r')) pass.pop_back();
  const std::string remote = ":webdav,url='" + server.url() + "',user=" + server.user() + ",pass='" + pass + "':";
  const auto config = server.dir() / "client-rclone.conf";
  writeFile(config, "");

  CommandResult listed = run({kRclone, "--config", config.string(), "lsf", remote});
  EXPECT_EQ(listed.exitCode, 0) << describe(listed) << "\n" << server.logTail();
  EXPECT_TRUE(contains(listed.out, "hello.txt")) << describe(listed);

  const auto upload = server.dir() / "upload.txt";
  writeFile(upload, "uploaded\n");
  CommandResult copied = run({kRclone, "--config", config.string(), "copyto", upload.string(), remote + "sub/up.txt"});
  EXPECT_EQ(copied.exitCode, 0) << describe(copied);
  std::ifstream up(server.root() / "sub" / "up.txt");
  std::string line;
  std::getline(up, line);
  EXPECT_EQ(line, "uploaded");

  CommandResult wrongPass = run({kRclone, "obscure", "not the password"});
  ASSERT_EQ(wrongPass.exitCode, 0) << describe(wrongPass);
  std::string wrong = wrongPass.out;
  while (!wrong.empty() && wrong.back() == '\n') wrong.pop_back();
  CommandResult refused =
      run({kRclone, "--config", config.string(), "lsf", ":webdav,url='" + server.url() + "',user=" + server.user() + ",pass='" + wrong + "':"});
  EXPECT_NE(refused.exitCode, 0) << describe(refused);
  EXPECT_TRUE(contains(refused.err, "401")) << describe(refused);
}

TEST_F(TestServers, SambaShareListsAndTakesFilesWithSmbclient) {
  SambaServer server;
  EXPECT_EQ(server.share(), "share");
  EXPECT_EQ(server.user(), "zbtsmb");
  writeFile(server.root() / "hello.txt", "hello samba\n");
  const std::string service = "//127.0.0.1/" + server.share();
  const std::string port = std::to_string(server.port());

  CommandResult listed = run({kSmbclient, service, "-p", port, "-U", server.user() + "%" + server.password(), "-c", "ls"});
  EXPECT_EQ(listed.exitCode, 0) << describe(listed) << "\n" << server.logTail();
  EXPECT_TRUE(contains(listed.out, "hello.txt")) << describe(listed);

  const auto upload = server.dir() / "upload.txt";
  writeFile(upload, "uploaded\n");
  CommandResult put =
      run({kSmbclient, service, "-p", port, "-U", server.user() + "%" + server.password(), "-c", "put " + upload.string() + " up.txt"});
  EXPECT_EQ(put.exitCode, 0) << describe(put);
  struct stat written {};
  ASSERT_EQ(::stat((server.root() / "up.txt").c_str(), &written), 0) << describe(put);
  struct passwd* smbUser = ::getpwnam(server.user().c_str());
  ASSERT_NE(smbUser, nullptr);
  EXPECT_EQ(written.st_uid, smbUser->pw_uid);

  CommandResult refused = run({kSmbclient, service, "-p", port, "-U", server.user() + "%wrong", "-c", "ls"});
  EXPECT_NE(refused.exitCode, 0) << describe(refused);
  EXPECT_TRUE(contains(refused.out + refused.err, "NT_STATUS_LOGON_FAILURE")) << describe(refused);
}

TEST_F(TestServers, ResticRestServerHoldsARepositoryAcrossARestart) {
  ResticRestServer server;
  EXPECT_EQ(server.url(), "http://127.0.0.1:" + std::to_string(server.port()) + "/");
  const auto passwordFile = server.dir() / "repository-password";
  writeFile(passwordFile, "repository password\n");
  const std::string repository =
      "rest:http://" + server.user() + ":" + server.password() + "@127.0.0.1:" + std::to_string(server.port()) + "/repo";
  auto restic = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {kRestic, "--no-cache", "--password-file", passwordFile.string(), "-r", repository};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };

  CommandResult init = restic({"init"});
  ASSERT_EQ(init.exitCode, 0) << describe(init) << "\n" << server.logTail();
  EXPECT_TRUE(std::filesystem::exists(server.root() / "repo" / "config"));
  // restic masks the password when it prints the repository.
  EXPECT_FALSE(contains(init.out + init.err, server.password())) << describe(init);
  CommandResult snapshots = restic({"snapshots", "--json"});
  EXPECT_EQ(snapshots.exitCode, 0) << describe(snapshots);
  EXPECT_EQ(snapshots.out.substr(0, 2), "[]") << describe(snapshots);

  const int port = server.port();
  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_FALSE(acceptsConnections(port));
  server.start();
  EXPECT_EQ(server.port(), port);
  CommandResult after = restic({"snapshots", "--json"});
  EXPECT_EQ(after.exitCode, 0) << describe(after) << "\n" << server.logTail();
}

// Runs a program (absolute path) with exactly `environment` (no shell, stdin /dev/null), its
// stdout and stderr captured through files in `scratch`; killed after 120 s.
CommandResult runWithEnvironment(const std::vector<std::string>& argv, const std::vector<std::string>& environment,
                                 const std::filesystem::path& scratch) {
  CommandResult result;
  const auto outPath = scratch / "command.out";
  const auto errPath = scratch / "command.err";
  std::vector<char*> args, env;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : environment) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawnattr_init(&attributes);
  // The test process may block signals and ignore SIGPIPE: the program gets neither.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, args[0], &actions, &attributes, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    result.err = "posix_spawn " + argv[0] + ": " + std::strerror(error);
    return result;
  }
  ownProcess(pid);  // the harness must not take it for an adopted orphan
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int status = 0;
  bool timedOut = false;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (!timedOut && std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      timedOut = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  disownProcess(pid);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = readAll(outPath.string());
  result.err = readAll(errPath.string()) + (timedOut ? "\n[killed after 120 s]\n" : "");
  return result;
}

// restic against an S3Server as the daemon runs it: the repository password from a file
// (RESTIC_PASSWORD_FILE), the S3 credentials in the environment only, the test CA by --cacert.
class ResticOnS3 {
 public:
  ResticOnS3(const S3Server& server, const std::string& prefix) : m_server(server), m_repository(server.resticRepository(prefix)) {
    m_scratch = server.dir() / ("client-" + prefix);
    std::filesystem::create_directories(m_scratch);
    m_passwordFile = m_scratch / "repository-password";
    writeFile(m_passwordFile, "s3 repository password\n");
  }

  CommandResult operator()(const std::vector<std::string>& args) const { return run(args, m_server.accessKeyId()); }
  // With another access key id than the server's.
  CommandResult run(const std::vector<std::string>& args, const std::string& accessKeyId, bool withCa = true) const {
    std::vector<std::string> argv = {kRestic, "--no-cache", "-r", m_repository};
    if (withCa) argv.insert(argv.end(), {"--cacert", m_server.caPath().string()});
    argv.insert(argv.end(), args.begin(), args.end());
    return runWithEnvironment(argv,
                              {"PATH=/usr/bin:/bin", "HOME=" + m_scratch.string(), "RESTIC_PASSWORD_FILE=" + m_passwordFile.string(),
                               "AWS_ACCESS_KEY_ID=" + accessKeyId, "AWS_SECRET_ACCESS_KEY=" + m_server.secretAccessKey()},
                              m_scratch);
  }
  const std::filesystem::path& scratch() const { return m_scratch; }

 private:
  const S3Server& m_server;
  std::string m_repository;
  std::filesystem::path m_scratch;
  std::filesystem::path m_passwordFile;
};

size_t snapshotCount(const CommandResult& r) {
  auto parsed = nlohmann::json::parse(r.out, nullptr, false);
  return parsed.is_array() ? parsed.size() : static_cast<size_t>(-1);
}

TEST_F(TestServers, S3ServerTakesABackupAndRestoresItOverHttps) {
  S3Server server;
  EXPECT_EQ(server.url(), "https://127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(server.resticRepository("repo"), "s3:" + server.url() + "/" + server.bucket() + "/repo");
  EXPECT_TRUE(std::filesystem::is_directory(server.root() / server.bucket())) << server.logTail();
  EXPECT_TRUE(contains(readAll(server.caPath().string()), "-----BEGIN CERTIFICATE-----"));
  struct stat key {};
  ASSERT_EQ(::stat(server.keyPath().c_str(), &key), 0);
  EXPECT_EQ(key.st_mode & 0777, 0600u);

  ResticOnS3 restic(server, "repo");
  // A certificate of another CA than the system's: refused without --cacert.
  CommandResult untrusted = restic.run({"init"}, server.accessKeyId(), false);
  EXPECT_NE(untrusted.exitCode, 0) << describe(untrusted);
  EXPECT_TRUE(contains(untrusted.err, "certificate signed by unknown authority")) << describe(untrusted);

  CommandResult init = restic({"init"});
  ASSERT_EQ(init.exitCode, 0) << describe(init) << "\n" << server.logTail();
  EXPECT_TRUE(std::filesystem::exists(server.root() / server.bucket() / "repo" / "config._S3rver_object")) << server.logTail();

  const auto source = restic.scratch() / "source";
  makeTree(source.string(), 40);
  CommandResult backup = restic({"backup", "--json", source.string()});
  ASSERT_EQ(backup.exitCode, 0) << describe(backup) << "\n" << server.logTail();
  EXPECT_TRUE(contains(backup.out, "\"message_type\":\"summary\"")) << describe(backup);

  CommandResult snapshots = restic({"snapshots", "--json"});
  ASSERT_EQ(snapshots.exitCode, 0) << describe(snapshots);
  EXPECT_EQ(snapshotCount(snapshots), 1u) << describe(snapshots);

  const auto target = restic.scratch() / "restored";
  CommandResult restore = restic({"restore", "latest", "--target", target.string()});
  ASSERT_EQ(restore.exitCode, 0) << describe(restore) << "\n" << server.logTail();
  EXPECT_EQ(compareTrees(source.string(), (target / source.relative_path()).string()), "");

  // s3rver checks the access key id (not the secret of a V4 signature).
  CommandResult wrongKey = restic.run({"snapshots", "--json"}, "NOT-S3RVER");
  EXPECT_NE(wrongKey.exitCode, 0) << describe(wrongKey);
  EXPECT_TRUE(contains(wrongKey.err, "Access Key Id")) << describe(wrongKey);
  EXPECT_TRUE(adoptedProcesses().empty());
}

TEST_F(TestServers, S3ServerKeepsTheRepositoryAcrossAStopAndStart) {
  S3Server server;
  ResticOnS3 restic(server, "kept");
  CommandResult init = restic({"init"});
  ASSERT_EQ(init.exitCode, 0) << describe(init) << "\n" << server.logTail();
  const auto source = restic.scratch() / "source";
  std::filesystem::create_directories(source);
  writeFile(source / "hello.txt", "hello s3\n");
  CommandResult backup = restic({"backup", source.string()});
  ASSERT_EQ(backup.exitCode, 0) << describe(backup) << "\n" << server.logTail();

  const int port = server.port();
  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_FALSE(acceptsConnections(port));
  CommandResult down = restic({"snapshots", "--json"});
  EXPECT_NE(down.exitCode, 0) << describe(down);
  EXPECT_TRUE(contains(down.err, "connection refused")) << describe(down);

  server.start();
  EXPECT_TRUE(server.running());
  EXPECT_EQ(server.port(), port);
  CommandResult again = restic({"snapshots", "--json"});
  ASSERT_EQ(again.exitCode, 0) << describe(again) << "\n" << server.logTail();
  EXPECT_EQ(snapshotCount(again), 1u) << describe(again);
  CommandResult second = restic({"backup", source.string()});
  EXPECT_EQ(second.exitCode, 0) << describe(second) << "\n" << server.logTail();
  CommandResult check = restic({"check"});
  EXPECT_EQ(check.exitCode, 0) << describe(check);
  EXPECT_TRUE(adoptedProcesses().empty());
}

// Without the program: a clear error naming the install step, not a failed start.
TEST_F(TestServers, S3ServerWithoutS3rverSaysHowToInstallIt) {
  const char* before = std::getenv("ZBTEST_S3RVER");
  const std::string saved = before ? before : "";
  ::setenv("ZBTEST_S3RVER", "/nonexistent/s3rver", 1);
  try {
    S3Server server;
    ADD_FAILURE() << "started without s3rver";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(contains(e.what(), "scripts/install-deps --tests")) << e.what();
    EXPECT_TRUE(contains(e.what(), "/nonexistent/s3rver")) << e.what();
  }
  if (before) ::setenv("ZBTEST_S3RVER", saved.c_str(), 1);
  else ::unsetenv("ZBTEST_S3RVER");
}

}  // namespace
}  // namespace zbtest
