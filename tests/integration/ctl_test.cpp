// Integration tests of zerobytectl against a real zerobyted: help, error reporting and exit statuses, validation messages,
// config check, JSON output and what repository deletion leaves behind.
#include "tests/integration/harness.h"

#include "common/varlink_client.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using nlohmann::json;
using zbtest::CommandResult;
using zbtest::Daemon;

std::string describe(const CommandResult& r) { return "exit " + std::to_string(r.exitCode) + "\nstdout: " + r.out + "\nstderr: " + r.err; }

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

}  // namespace
