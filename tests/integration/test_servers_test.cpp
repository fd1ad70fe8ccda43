// The test servers of tests/support/test_servers.h, each reached by the real client the product
// uses with it: ssh (as restic's sftp.command runs it), rclone's webdav backend, smbclient, and
// restic's rest: backend.
#include "tests/integration/harness.h"
#include "tests/support/test_servers.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <fstream>
#include <string>
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

}  // namespace
}  // namespace zbtest
