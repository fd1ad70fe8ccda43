// Integration tests of zerobytectl against a real zerobyted: help, error reporting and exit statuses, validation messages,
// config check, JSON output and what repository deletion leaves behind; and the polkit agent zerobytectl starts on a
// terminal (real pkttyagent, real polkitd on a private system bus from tests/support, a stand-in socket that shows
// what was sent).
#include "tests/integration/harness.h"
#include "tests/support/polkit_env.h"

#include "common/file_descriptor.h"
#include "common/varlink_client.h"
#include "common/varlink_wire.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using zbtest::CommandResult;
using zbtest::describe;
using zbtest::Daemon;


bool startsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// zerobytectl run directly (no daemon involved, or a socket of our choosing).
CommandResult ctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ZB_ZEROBYTECTL};
  argv.insert(argv.end(), args.begin(), args.end());
  return zbtest::run(argv);
}

void writeFile(const std::string& path, const std::string& content, mode_t mode = 0644) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  out.close();
  ASSERT_TRUE(out.good()) << path;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Every error is one line on stderr: "<ErrorName>: <message>".
void expectError(const CommandResult& r, const std::string& name, int exitCode) {
  EXPECT_EQ(r.exitCode, exitCode) << describe(r);
  EXPECT_TRUE(startsWith(r.err, name + ": ")) << describe(r);
  EXPECT_GT(r.err.size(), name.size() + 3) << "a message follows the name: " << describe(r);
  EXPECT_EQ(lines(r.err).size(), 1U) << describe(r);
  EXPECT_EQ(r.out, "") << describe(r);
}

// ---- help ----

TEST(Zerobytectl, HelpOfEveryCommandGroupExitsZeroAndListsItsSubcommands) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> groups = {
      {"volume", {"create", "list", "show", "delete"}},
      {"repo", {"create", "import", "list", "show", "delete"}},
      {"job", {"list", "show", "follow", "log", "cancel"}},
      {"snapshot", {"list", "ls", "forget"}},
      {"config", {"check"}},
      {"backup", {"VOLUME", "--repo", "--tag", "--exclude", "--follow"}},
      {"restore", {"--target", "--include"}},
      {"status", {"--json"}},
  };
  for (const auto& [group, mentions] : groups) {
    SCOPED_TRACE(group);
    CommandResult r = ctl({group, "--help"});
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, group)) << describe(r);
    for (const auto& m : mentions) EXPECT_TRUE(contains(r.out, m)) << "missing " << m << " in\n" << r.out;
  }
  CommandResult top = ctl({"--help"});
  EXPECT_EQ(top.exitCode, 0) << describe(top);
  for (const auto& [group, mentions] : groups) EXPECT_TRUE(contains(top.out, group)) << group << " missing in\n" << top.out;
  EXPECT_TRUE(contains(top.out, "Exit status")) << top.out;
}

TEST(Zerobytectl, HelpOfSubcommandsExitsZero) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"volume", "create", "--help"}, {"repo", "import", "--help"}, {"job", "follow", "--help"}, {"config", "check", "--help"}}) {
    CommandResult r = ctl(args);
    EXPECT_EQ(r.exitCode, 0) << args[0] << " " << args[1] << ": " << describe(r);
    EXPECT_TRUE(contains(r.out, "--json")) << "the common options are listed: " << r.out;
  }
}

TEST(Zerobytectl, UsageErrorsExitTwo) {
  CommandResult none = ctl({});
  EXPECT_EQ(none.exitCode, 2) << describe(none);
  CommandResult unknown = ctl({"frobnicate"});
  EXPECT_EQ(unknown.exitCode, 2) << describe(unknown);
  CommandResult missing = ctl({"volume", "create", "x"});  // --path is required
  EXPECT_EQ(missing.exitCode, 2) << describe(missing);
  EXPECT_TRUE(contains(missing.err, "--path")) << describe(missing);
}

// ---- reaching the daemon ----

TEST(Zerobytectl, MissingSocketIsUnavailableExitSeven) {
  CommandResult r = ctl({"--socket", "/nonexistent-zbtest/zerobyted.sock", "status"});
  expectError(r, "Unavailable", 7);
  EXPECT_TRUE(contains(r.err, "/nonexistent-zbtest/zerobyted.sock")) << describe(r);

  // The environment variable names the socket when --socket is not given.
  ASSERT_EQ(setenv("ZEROBYTE_SOCKET", "/nonexistent-zbtest/from-env.sock", 1), 0);
  CommandResult env = ctl({"volume", "list"});
  unsetenv("ZEROBYTE_SOCKET");
  expectError(env, "Unavailable", 7);
  EXPECT_TRUE(contains(env.err, "/nonexistent-zbtest/from-env.sock")) << describe(env);
}

TEST(Zerobytectl, StoppedDaemonIsUnavailable) {
  Daemon daemon;
  daemon.start();
  ASSERT_EQ(daemon.ctl({"status"}).exitCode, 0);
  ASSERT_EQ(daemon.stop(), 0);
  expectError(daemon.ctl({"status"}), "Unavailable", 7);
}

// ---- volume validation ----

class ZerobytectlWithDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    m_daemon.start();
    m_data = m_daemon.dir() + "/data";
    ASSERT_EQ(mkdir(m_data.c_str(), 0755), 0);
  }
  Daemon m_daemon;
  std::string m_data;
};

TEST_F(ZerobytectlWithDaemon, VolumeCreateWithAPathThatDoesNotExistIsInvalidArgumentNamingThePath) {
  CommandResult r = m_daemon.ctl({"volume", "create", "v", "--path", m_data + "/missing"});
  expectError(r, "InvalidArgument", 2);
  EXPECT_TRUE(contains(r.err, "volume path")) << describe(r);
  EXPECT_TRUE(contains(r.err, m_data + "/missing")) << describe(r);
  EXPECT_TRUE(contains(r.err, "No such file")) << describe(r);
}

TEST_F(ZerobytectlWithDaemon, VolumeCreateWithARelativePathResolvesItAndReportsTheResult) {
  // zerobytectl resolves a relative path against its working directory before sending it.
  std::string relative = "zbtest-relative-that-does-not-exist";
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_FALSE(exists(std::string(cwd) + "/" + relative));
  CommandResult r = m_daemon.ctl({"volume", "create", "v", "--path", relative});
  expectError(r, "InvalidArgument", 2);
  EXPECT_TRUE(contains(r.err, "volume path")) << describe(r);
  EXPECT_TRUE(contains(r.err, std::string(cwd) + "/" + relative)) << describe(r);
}

TEST_F(ZerobytectlWithDaemon, VolumeCreateWithAFileInsteadOfADirectoryIsInvalidArgument) {
  writeFile(m_data + "/plain", "x");
  CommandResult r = m_daemon.ctl({"volume", "create", "v", "--path", m_data + "/plain"});
  expectError(r, "InvalidArgument", 2);
  EXPECT_TRUE(contains(r.err, "not a directory")) << describe(r);
}

TEST_F(ZerobytectlWithDaemon, VolumeCreateWithAnInvalidNameIsInvalidArgumentNamingTheField) {
  for (const std::string& name : std::vector<std::string>{"Home", "HOME", "_under", "has space", "a/b", std::string(64, 'a')}) {
    SCOPED_TRACE(name);
    CommandResult r = m_daemon.ctl({"volume", "create", name, "--path", m_data});
    expectError(r, "InvalidArgument", 2);
    EXPECT_TRUE(contains(r.err, "volume name")) << describe(r);
    EXPECT_TRUE(contains(r.err, "a-z")) << "says what is allowed: " << describe(r);
  }
  EXPECT_TRUE(m_daemon.ctlJson({"volume", "list"}).at("volumes").empty());
}

TEST_F(ZerobytectlWithDaemon, VolumeCreateWithAnUnsupportedTypeIsInvalidArgument) {
  CommandResult r = m_daemon.ctl({"volume", "create", "v", "--type", "floppy", "--path", m_data});
  expectError(r, "InvalidArgument", 2);
  EXPECT_TRUE(contains(r.err, "floppy")) << describe(r);
  EXPECT_TRUE(contains(r.err, "directory")) << describe(r);
}

TEST_F(ZerobytectlWithDaemon, DaemonRefusesRelativeAndDotDotPathsNamingTheField) {
  // zerobytectl normalises paths itself, so these reach the daemon only from other clients.
  auto client = m_daemon.client();
  for (const std::string& path : std::vector<std::string>{"relative/dir", m_data + "/../data", m_data + "/./x", m_data + "//x", m_data + "/"}) {
    SCOPED_TRACE(path);
    try {
      client->call("org.zerobyte.Daemon.CreateVolume", {{"name", "v"}, {"type", "directory"}, {"path", path}});
      ADD_FAILURE() << "accepted";
    } catch (const zerobyte::Error& e) {
      EXPECT_EQ(e.code(), zerobyte::ErrorCode::InvalidArgument) << e.what();
      EXPECT_TRUE(contains(e.what(), "volume path")) << e.what();
    }
  }
  try {
    client->call("org.zerobyte.Daemon.CreateVolume", {{"name", "v"}, {"type", "directory"}, {"path", m_data + "/../data"}});
  } catch (const zerobyte::Error& e) {
    EXPECT_TRUE(contains(e.what(), "\"..\"")) << e.what();
  }
  EXPECT_TRUE(client->call("org.zerobyte.Daemon.ListVolumes").at("volumes").empty());
}

TEST_F(ZerobytectlWithDaemon, DuplicateVolumeNameIsAlreadyExists) {
  ASSERT_EQ(m_daemon.ctl({"volume", "create", "home", "--path", m_data}).exitCode, 0);
  CommandResult r = m_daemon.ctl({"volume", "create", "home", "--path", m_data});
  expectError(r, "AlreadyExists", 6);
  EXPECT_TRUE(contains(r.err, "\"home\"")) << describe(r);
}

TEST_F(ZerobytectlWithDaemon, UnknownVolumeIsNotFoundExitFour) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"volume", "show", "nope"}, {"volume", "delete", "nope"}}) {
    CommandResult r = m_daemon.ctl(args);
    expectError(r, "NotFound", 4);
    EXPECT_TRUE(contains(r.err, "\"nope\"")) << describe(r);
  }
  expectError(m_daemon.ctl({"repo", "show", "nope"}), "NotFound", 4);
  expectError(m_daemon.ctl({"job", "show", "424242"}), "NotFound", 4);
}

TEST_F(ZerobytectlWithDaemon, VolumeLifecycleThroughTheClient) {
  CommandResult created = m_daemon.ctl({"volume", "create", "home", "--path", m_data});
  ASSERT_EQ(created.exitCode, 0) << describe(created);
  EXPECT_TRUE(contains(created.out, "home")) << created.out;
  json shown = m_daemon.ctlJson({"volume", "show", "home"}).at("volume");
  EXPECT_EQ(shown.value("path", ""), m_data);
  EXPECT_EQ(shown.value("type", ""), "directory");
  EXPECT_FALSE(shown.value("declared", true));
  CommandResult list = m_daemon.ctl({"volume", "list"});
  EXPECT_TRUE(contains(list.out, "home")) << list.out;
  EXPECT_TRUE(contains(list.out, m_data)) << list.out;
  ASSERT_EQ(m_daemon.ctl({"volume", "delete", "home"}).exitCode, 0);
  EXPECT_TRUE(m_daemon.ctlJson({"volume", "list"}).at("volumes").empty());
  EXPECT_TRUE(exists(m_data)) << "the data is untouched";
}

// ---- JSON output ----

TEST_F(ZerobytectlWithDaemon, StatusJsonHasVersionResticVersionAndUptime) {
  json status = m_daemon.ctlJson({"status"});
  EXPECT_TRUE(status.at("version").is_string());
  EXPECT_FALSE(status.at("version").get<std::string>().empty());
  EXPECT_TRUE(status.at("restic_version").is_string());
  EXPECT_EQ(status.at("restic_version").get<std::string>().rfind("0.", 0), 0U) << status.dump();
  EXPECT_TRUE(status.at("uptime_seconds").is_number_integer());
  EXPECT_GE(status.at("uptime_seconds").get<int64_t>(), 0);
  EXPECT_EQ(status.at("volumes"), 0);
  EXPECT_EQ(status.at("repositories"), 0);
  EXPECT_EQ(status.at("running_jobs"), 0);

  CommandResult text = m_daemon.ctl({"status"});
  EXPECT_EQ(text.exitCode, 0);
  EXPECT_TRUE(contains(text.out, status.at("restic_version").get<std::string>())) << text.out;
}

TEST_F(ZerobytectlWithDaemon, RepoShowJsonSaysThePasswordIsStoredAndNeverShowsIt) {
  CommandResult created = m_daemon.ctl({"repo", "create", "main", "--path", m_daemon.dir() + "/repo"});
  ASSERT_EQ(created.exitCode, 0) << describe(created);
  json repository = m_daemon.ctlJson({"repo", "show", "main"}).at("repository");
  EXPECT_EQ(repository.at("password"), (json{{"set", true}, {"source", "stored"}}));
  EXPECT_EQ(repository.value("path", ""), m_daemon.dir() + "/repo");
  EXPECT_EQ(repository.value("type", ""), "local");
  EXPECT_TRUE(exists(m_daemon.dir() + "/repo/config"));

  // A known password (an imported repository): it appears in no output and not in the log.
  const std::string password = "zbtest-known-password-7c1d2e";
  writeFile(m_daemon.dir() + "/pw", password + "\n", 0600);
  CommandResult init = zbtest::run({"/usr/bin/restic", "init", "--no-cache", "--repo", m_daemon.dir() + "/imported",
                                    "--password-file", m_daemon.dir() + "/pw"});
  ASSERT_EQ(init.exitCode, 0) << describe(init);
  CommandResult imported = m_daemon.ctl({"repo", "import", "old", "--path", m_daemon.dir() + "/imported", "--password-file", m_daemon.dir() + "/pw"});
  ASSERT_EQ(imported.exitCode, 0) << describe(imported);
  json old = m_daemon.ctlJson({"repo", "show", "old"}).at("repository");
  EXPECT_EQ(old.at("password"), (json{{"set", true}, {"source", "stored"}}));
  std::string everything = imported.out + imported.err;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"repo", "show", "old"}, {"repo", "show", "old", "--json"}, {"repo", "list"}, {"repo", "list", "--json"}}) {
    CommandResult r = m_daemon.ctl(args);
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    everything += r.out + r.err;
  }
  EXPECT_FALSE(contains(everything, password));
  EXPECT_FALSE(contains(m_daemon.log(), password));
  EXPECT_TRUE(contains(everything, "stored")) << everything;
}

TEST_F(ZerobytectlWithDaemon, RepoDeleteLeavesTheRepositoryDirectoryIntact) {
  std::string path = m_daemon.dir() + "/repo";
  ASSERT_EQ(m_daemon.ctl({"repo", "create", "main", "--path", path}).exitCode, 0);
  ASSERT_EQ(m_daemon.ctl({"volume", "create", "data", "--path", m_data}).exitCode, 0);
  writeFile(m_data + "/file", "some content");
  CommandResult backup = m_daemon.ctl({"backup", "data", "--repo", "main", "--follow"});
  ASSERT_EQ(backup.exitCode, 0) << describe(backup);

  CommandResult list = zbtest::run({"/usr/bin/find", path, "-type", "f"});
  ASSERT_EQ(list.exitCode, 0);
  CommandResult deleted = m_daemon.ctl({"repo", "delete", "main"});
  EXPECT_EQ(deleted.exitCode, 0) << describe(deleted);
  EXPECT_TRUE(contains(deleted.out, "not touched")) << deleted.out;

  expectError(m_daemon.ctl({"repo", "show", "main"}), "NotFound", 4);
  CommandResult after = zbtest::run({"/usr/bin/find", path, "-type", "f"});
  EXPECT_EQ(after.out, list.out) << "every file of the repository is still there";
  EXPECT_TRUE(exists(path + "/config"));
  EXPECT_TRUE(contains(list.out, path + "/snapshots/")) << list.out;
}

// ---- config check ----

TEST(Zerobytectl, ConfigCheckOfAValidFileExitsZero) {
  char dirTemplate[] = "/tmp/zbtest-ctl-XXXXXX";
  ASSERT_NE(mkdtemp(dirTemplate), nullptr);
  std::string dir = dirTemplate;
  std::string file = dir + "/ok.yaml";
  writeFile(file,
            "daemon:\n"
            "  log_level: info\n"
            "  job_history: 50\n"
            "volumes:\n"
            "  - name: etc\n"
            "    type: directory\n"
            "    path: /etc\n"
            "repositories:\n"
            "  - name: local\n"
            "    type: local\n"
            "    path: /srv/backup/restic\n"
            "    password: file:///etc/zerobyte/local.pass\n");
  // No daemon: config check works locally.
  CommandResult r = ctl({"--socket", "/nonexistent-zbtest/sock", "config", "check", file});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "OK")) << describe(r);
  EXPECT_EQ(r.err, "");

  CommandResult j = ctl({"config", "check", file, "--json"});
  EXPECT_EQ(j.exitCode, 0) << describe(j);
  json parsed = json::parse(j.out);
  EXPECT_EQ(parsed.value("valid", false), true);
  EXPECT_EQ(parsed.value("volumes", -1), 1);
  EXPECT_EQ(parsed.value("repositories", -1), 1);

  CommandResult shipped = ctl({"config", "check", std::string(ZB_TEST_DATA_DIR) + "/../../etc/zerobyte.yaml"});
  EXPECT_EQ(shipped.exitCode, 0) << "the shipped example must be valid: " << describe(shipped);
  unlink(file.c_str());
  rmdir(dir.c_str());
}

TEST(Zerobytectl, ConfigCheckOfAFileWithErrorsExitsTwoWithFileLineColumnLines) {
  char dirTemplate[] = "/tmp/zbtest-ctl-XXXXXX";
  ASSERT_NE(mkdtemp(dirTemplate), nullptr);
  std::string dir = dirTemplate;
  std::string file = dir + "/bad.yaml";
  writeFile(file,
            "daemon:\n"              // 1
            "  log_level: chatty\n"  // 2
            "  bogus_key: 1\n"       // 3
            "volumes:\n"             // 4
            "  - name: Etc\n"        // 5
            "    path: etc\n");      // 6
  CommandResult r = ctl({"config", "check", file});
  EXPECT_EQ(r.exitCode, 2) << describe(r);
  auto errLines = lines(r.err);
  ASSERT_GE(errLines.size(), 3U) << describe(r);
  const std::regex located("^" + std::regex_replace(file, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") + R"(:(\d+):(\d+): .+)");
  std::set<int> reportedLines;
  for (size_t i = 0; i + 1 < errLines.size(); ++i) {
    std::smatch m;
    EXPECT_TRUE(std::regex_match(errLines[i], m, located)) << "not file:line:column: " << errLines[i];
    if (!m.empty()) {
      reportedLines.insert(std::stoi(m[1]));
      EXPECT_GE(std::stoi(m[2]), 1) << errLines[i];
    }
  }
  for (int expected : {2, 3, 5, 6}) EXPECT_TRUE(reportedLines.count(expected)) << "no diagnostic for line " << expected << "\n" << r.err;
  EXPECT_TRUE(startsWith(errLines.back(), "ConfigInvalid: ")) << errLines.back();
  EXPECT_TRUE(contains(r.err, "bogus_key")) << r.err;
  EXPECT_TRUE(contains(r.err, "chatty")) << r.err;

  CommandResult syntax = ctl({"config", "check", std::string(ZB_TEST_DATA_DIR) + "/config/errors.yaml"});
  EXPECT_EQ(syntax.exitCode, 2) << describe(syntax);

  writeFile(file, "daemon: [unclosed\n");
  CommandResult broken = ctl({"config", "check", file});
  EXPECT_EQ(broken.exitCode, 2) << describe(broken);
  EXPECT_TRUE(startsWith(broken.err, file + ":")) << describe(broken);

  CommandResult missing = ctl({"config", "check", dir + "/does-not-exist.yaml"});
  EXPECT_EQ(missing.exitCode, 2) << describe(missing);
  EXPECT_TRUE(contains(missing.err, "does-not-exist.yaml")) << describe(missing);
  unlink(file.c_str());
  rmdir(dir.c_str());
}

// ---- the polkit agent ----

using namespace std::chrono_literals;
using zerobyte::FileDescriptor;
using Clock = std::chrono::steady_clock;

std::string readWholeFile(const std::string& path) { return zbtest::readAll(path); }

// The live children of `parent` (from /proc/*/stat), each with its argv.
std::map<pid_t, std::vector<std::string>> childrenOf(pid_t parent) {
  std::map<pid_t, std::vector<std::string>> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = readWholeFile("/proc/" + name + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    if (!(fields >> state >> ppid) || ppid != parent || state == "Z") continue;
    std::vector<std::string> argv;
    std::string cmdline = readWholeFile("/proc/" + name + "/cmdline");
    for (size_t start = 0; start < cmdline.size();) {
      size_t end = cmdline.find('\0', start);
      if (end == std::string::npos) end = cmdline.size();
      argv.push_back(cmdline.substr(start, end - start));
      start = end + 1;
    }
    children.emplace(std::stoi(name), argv);
  }
  return children;
}

bool isAgent(const std::vector<std::string>& argv) {
  return !argv.empty() && std::filesystem::path(argv[0]).filename() == "pkttyagent";
}

// /tmp/<prefix>-XXXXXX, removed with its contents at the end of the scope (also when a constructor using it throws).
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(const char* prefix) : m_path(std::string("/tmp/") + prefix + "-XXXXXX") {
    if (!mkdtemp(m_path.data())) throw std::runtime_error("mkdtemp failed");
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
};

// A Varlink socket of the test's own in place of zerobyted: it shows the call zerobytectl sends, then answers it.
class StandInDaemon {
 public:
  StandInDaemon() : m_dir("zbtest-agent") {
    m_listen.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = socketPath();
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::bind(m_listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(m_listen.get(), 4) != 0)
      throw std::runtime_error("cannot listen on " + path + ": " + std::strerror(errno));
  }
  std::string socketPath() const { return m_dir.path() + "/zerobyted.sock"; }

  // Accepts the client and reads its first call; nullopt when none came within `limit`.
  std::optional<zerobyte::varlink::CallMessage> takeCall(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    if (!waitReadable(m_listen.get(), deadline)) return std::nullopt;
    m_client.reset(::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!m_client.valid()) return std::nullopt;
    std::string received;
    while (received.find('\0') == std::string::npos) {
      if (!waitReadable(m_client.get(), deadline)) return std::nullopt;
      char buf[4096];
      ssize_t n = ::recv(m_client.get(), buf, sizeof(buf), 0);
      if (n <= 0) return std::nullopt;
      received.append(buf, static_cast<size_t>(n));
    }
    return zerobyte::varlink::parseCall(received.substr(0, received.find('\0')));
  }

  void reply(const json& parameters) {
    zerobyte::varlink::ReplyMessage reply;
    reply.parameters = parameters;
    std::string bytes = zerobyte::varlink::encode(reply);
    ASSERT_EQ(::send(m_client.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }

 private:
  static bool waitReadable(int fd, Clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  TemporaryDirectory m_dir;
  FileDescriptor m_listen;
  FileDescriptor m_client;
};

// A child process: argv run with `environment` (NAME=value entries replacing the test's own), stdout and stderr into
// one pipe, stdin on /dev/null or on a new pseudo-terminal that is its controlling terminal (as in a login shell).
// Killed if still running at the end of the scope. Used for zerobytectl, dbus-daemon and polkitd.
class Process {
 public:
  Process(const std::vector<std::string>& args, const std::vector<std::string>& environment, bool onTerminal,
          const std::string& logFile = "") {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string entry = *e;
      env[entry.substr(0, entry.find('='))] = entry;
    }
    for (const auto& entry : environment) env[entry.substr(0, entry.find('='))] = entry;
    std::vector<std::string> envStrings;
    for (const auto& [name, entry] : env) envStrings.push_back(entry);
    std::vector<char*> envp, argv;
    for (auto& e : envStrings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argsCopy = args;
    for (auto& a : argsCopy) argv.push_back(a.data());
    argv.push_back(nullptr);

    int master = -1, slave = -1;
    if (onTerminal && ::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) throw std::runtime_error("openpty failed");
    m_master.reset(master);
    FileDescriptor slaveFd(slave);
    if (master >= 0) ::fcntl(master, F_SETFD, FD_CLOEXEC);
    if (slave >= 0) ::fcntl(slave, F_SETFD, FD_CLOEXEC);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    m_output.reset(out[0]);
    FileDescriptor outWrite(out[1]);
    FileDescriptor log(logFile.empty() ? -1 : ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    FileDescriptor devNull(::open("/dev/null", O_RDONLY | O_CLOEXEC));

    m_pid = ::fork();
    if (m_pid < 0) throw std::runtime_error("fork failed");
    if (m_pid == 0) {
      ::setsid();  // its own session: signals to it and its children stay away from the test
      if (slaveFd.valid()) {
        ::ioctl(slaveFd.get(), TIOCSCTTY, 0);
        ::dup2(slaveFd.get(), STDIN_FILENO);
      } else {
        ::dup2(devNull.get(), STDIN_FILENO);
      }
      int target = log.valid() ? log.get() : outWrite.get();
      ::dup2(target, STDOUT_FILENO);
      ::dup2(target, STDERR_FILENO);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    zbtest::ownProcess(m_pid);  // the harness must not take it for an orphan of a daemon
  }
  ~Process() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      if (!waitExit(10s)) {
        ::kill(m_pid, SIGKILL);
        waitExit(10s);
      }
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return m_pid; }

  // Waits for the exit; returns the exit status (128+signal when killed), or -1 after `limit` (then it is killed).
  int wait(std::chrono::milliseconds limit = 30s) {
    if (m_pid > 0 && !waitExit(limit)) {
      ::kill(m_pid, SIGKILL);
      waitExit(10s);
      return -1;
    }
    return m_status;
  }

  // Everything written to stdout and stderr (once it has exited).
  std::string output() {
    std::string text;
    char buf[4096];
    ssize_t n;
    ::fcntl(m_output.get(), F_SETFL, O_NONBLOCK);
    while ((n = ::read(m_output.get(), buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
    return text;
  }

 private:
  bool waitExit(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(m_pid, &status, WNOHANG);
      if (r == m_pid || r < 0) {
        if (r == m_pid) m_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        zbtest::disownProcess(m_pid);
        m_pid = -1;
        return true;
      }
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
  }

  pid_t m_pid = -1;
  int m_status = -1;
  FileDescriptor m_master;
  FileDescriptor m_output;
};

// Waits until polkitd (or the bus) has logged `needle`.
bool waitForPolkitLog(const zbtest::PolkitEnvironment& polkit, const std::string& needle, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!contains(polkit.log(), needle)) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

constexpr const char* kInteractive = "allow_interactive_authentication";

const json kStatusReply = {{"version", "stand-in"}, {"restic_version", "0"}, {"uptime_seconds", 1}, {"running_jobs", 0},
                           {"queued_jobs", 0},     {"volumes", 0},          {"repositories", 0},  {"authorization", "groups"}};

// What zerobytectl did for one command against the stand-in: the call it sent and the pkttyagent children it had
// while the call was waiting for its reply.
struct Observed {
  std::optional<zerobyte::varlink::CallMessage> call;
  std::map<pid_t, std::vector<std::string>> agents;
  pid_t ctlPid = -1;
  int exitCode = -1;
  std::string output;
};

Observed runAgainstStandIn(const std::vector<std::string>& args, bool onTerminal, const std::vector<std::string>& environment) {
  StandInDaemon standIn;
  std::vector<std::string> argv = {ZB_ZEROBYTECTL, "--socket", standIn.socketPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  Process ctlProcess(argv, environment, onTerminal);
  Observed seen;
  seen.ctlPid = ctlProcess.pid();
  seen.call = standIn.takeCall(20s);
  for (const auto& [pid, childArgv] : childrenOf(seen.ctlPid))
    if (isAgent(childArgv)) seen.agents.emplace(pid, childArgv);
  if (seen.call) standIn.reply(kStatusReply);
  seen.exitCode = ctlProcess.wait();
  seen.output = ctlProcess.output();
  return seen;
}

std::string describe(const Observed& seen) {
  std::string text = "exit " + std::to_string(seen.exitCode) + ", output: " + seen.output + "\ncall: ";
  text += seen.call ? seen.call->method + " " + seen.call->parameters.dump() : std::string("none");
  for (const auto& [pid, argv] : seen.agents) {
    text += "\nagent " + std::to_string(pid) + ":";
    for (const auto& a : argv) text += " " + a;
  }
  return text;
}

TEST(ZerobytectlPolkitAgent, WithStdinNotATerminalNoAgentIsStartedAndNoInteractiveAuthenticationIsAsked) {
  // polkit is there: only the missing terminal keeps zerobytectl from starting an agent.
  zbtest::PolkitEnvironment polkit;
  Observed seen = runAgainstStandIn({"status"}, /*onTerminal=*/false, {polkit.environmentEntry()});
  ASSERT_TRUE(seen.call) << describe(seen);
  EXPECT_EQ(seen.call->method, "org.zerobyte.Daemon.GetStatus");
  EXPECT_FALSE(seen.call->parameters.contains(kInteractive)) << describe(seen);
  EXPECT_TRUE(seen.agents.empty()) << describe(seen);
  EXPECT_EQ(seen.exitCode, 0) << describe(seen);
  EXPECT_FALSE(contains(polkit.log(), "unix-process:" + std::to_string(seen.ctlPid) + ":")) << polkit.log();
}

TEST(ZerobytectlPolkitAgent, OnATerminalPkttyagentRegistersForZerobytectlAndEveryCallAllowsInteractiveAuthentication) {
  zbtest::PolkitEnvironment polkit;
  Observed seen = runAgainstStandIn({"status"}, /*onTerminal=*/true, {polkit.environmentEntry()});
  ASSERT_TRUE(seen.call) << describe(seen);
  EXPECT_EQ(seen.call->method, "org.zerobyte.Daemon.GetStatus");
  EXPECT_EQ(seen.call->parameters.value(kInteractive, false), true) << describe(seen);
  ASSERT_EQ(seen.agents.size(), 1U) << "pkttyagent runs as zerobytectl's child while the call waits: " << describe(seen);
  const auto& [agentPid, argv] = *seen.agents.begin();
  const std::vector<std::string> expected = {"--process", std::to_string(seen.ctlPid)};
  EXPECT_NE(std::search(argv.begin(), argv.end(), expected.begin(), expected.end()), argv.end()) << describe(seen);
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--notify-fd"), argv.end()) << describe(seen);
  // --fallback only inside a login session: polkitd sets a fallback agent aside for a subject without one (no
  // logind here), and no prompt would ever appear.
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "--fallback"), argv.end()) << describe(seen);
  // polkitd itself knows the agent, for zerobytectl's process.
  const std::string subject = "Authentication Agent for unix-process:" + std::to_string(seen.ctlPid) + ":";
  EXPECT_TRUE(waitForPolkitLog(polkit, "Registered " + subject, 5s)) << polkit.log();
  EXPECT_EQ(seen.exitCode, 0) << describe(seen);
  // Gone with zerobytectl, and unregistered.
  EXPECT_TRUE(::kill(agentPid, 0) != 0 && errno == ESRCH) << "the agent outlived zerobytectl";
  EXPECT_TRUE(waitForPolkitLog(polkit, "Unregistered " + subject, 10s)) << polkit.log();
}

TEST(ZerobytectlPolkitAgent, NoAskPasswordOnATerminalStartsNoAgentAndAsksNothing) {
  zbtest::PolkitEnvironment polkit;
  // As a global option before the command, and among the command's options.
  for (const auto& args : std::vector<std::vector<std::string>>{{"--no-ask-password", "status"}, {"status", "--no-ask-password"}}) {
    SCOPED_TRACE(args[0]);
    Observed seen = runAgainstStandIn(args, /*onTerminal=*/true, {polkit.environmentEntry()});
    ASSERT_TRUE(seen.call) << describe(seen);
    EXPECT_FALSE(seen.call->parameters.contains(kInteractive)) << describe(seen);
    EXPECT_TRUE(seen.agents.empty()) << describe(seen);
    EXPECT_EQ(seen.exitCode, 0) << describe(seen);
    EXPECT_FALSE(contains(polkit.log(), "unix-process:" + std::to_string(seen.ctlPid) + ":")) << polkit.log();
  }
}

TEST(ZerobytectlPolkitAgent, OnATerminalWithoutPolkitOrWithoutPkttyagentTheCommandGoesOnQuietly) {
  const std::vector<std::vector<std::string>> environments = {
      {"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent-zbtest/system_bus_socket"},  // pkttyagent starts and fails
      {"PATH=/nonexistent-zbtest"},                                                // no pkttyagent at all
  };
  for (const auto& environment : environments) {
    SCOPED_TRACE(environment[0]);
    Observed seen = runAgainstStandIn({"status"}, /*onTerminal=*/true, environment);
    ASSERT_TRUE(seen.call) << describe(seen);
    EXPECT_FALSE(seen.call->parameters.contains(kInteractive)) << "no agent runs: " << describe(seen);
    EXPECT_TRUE(seen.agents.empty()) << describe(seen);
    EXPECT_EQ(seen.exitCode, 0) << describe(seen);
    EXPECT_TRUE(contains(seen.output, "stand-in")) << describe(seen);
    EXPECT_FALSE(contains(seen.output, "uthoriz") && contains(seen.output, "polkit")) << "pkttyagent's complaint leaked: " << describe(seen);
  }
}

TEST(ZerobytectlPolkitAgent, OnATerminalTheRealDaemonInPolkitModeAcceptsTheInteractiveCalls) {
  zbtest::OwnedPolkitEnvironment polkit;
  Daemon::Options options;
  options.extraDaemonSettings = "  authorization: polkit\n";
  options.extraEnvironment = {polkit.environmentEntry()};
  Daemon daemon(options);
  daemon.start();
  Process status({ZB_ZEROBYTECTL, "--socket", daemon.socketPath(), "status", "--json"}, {polkit.environmentEntry()}, /*onTerminal=*/true);
  const pid_t ctlPid = status.pid();
  EXPECT_EQ(status.wait(), 0);
  const std::string out = status.output();
  EXPECT_TRUE(contains(out, "\"authorization\"")) << out;
  EXPECT_TRUE(contains(out, "polkit")) << out;
  EXPECT_TRUE(contains(polkit.log(), "Registered Authentication Agent for unix-process:" + std::to_string(ctlPid) + ":"))
      << "the call went out with an agent running: " << polkit.log();
  EXPECT_EQ(daemon.log().find("internal error"), std::string::npos) << daemon.log();
}

TEST(ZerobytectlPolkitAgent, HelpDocumentsNoAskPassword) {
  CommandResult top = ctl({"--help"});
  EXPECT_EQ(top.exitCode, 0);
  EXPECT_TRUE(contains(top.out, "--no-ask-password")) << top.out;
  EXPECT_TRUE(contains(top.out, "pkttyagent")) << top.out;
}

}  // namespace
