// Integration tests of the audit trail: changes and denials in `zerobytectl audit` (with its filters) and, through a
// real systemd-journald in a private mount namespace, in the journal with their structured fields.
#include "tests/integration/harness.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using zbtest::CommandResult;
using zbtest::describe;
using zbtest::Daemon;

constexpr const char* kNobody = "nobody";
constexpr const char* kJournald = "/lib/systemd/systemd-journald";
constexpr const char* kJournalctl = "/usr/bin/journalctl";
// The MESSAGE_IDs of daemon/api/audit.cpp (docs/security.md, "Audit").
constexpr const char* kChangedId = "df7d4ab6eded47d6b8be408ebefa17b7";
constexpr const char* kDeniedId = "ed6c9a94bfbb4380997fb87e537e565f";


uid_t uidOf(const char* user) {
  passwd* pw = getpwnam(user);
  if (!pw) throw std::runtime_error(std::string("no user ") + user);
  return pw->pw_uid;
}

bool startsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

Daemon::Options groupsMode() {
  Daemon::Options options;
  // Deterministic without a system bus: root is admin, nobody has no role.
  options.extraDaemonSettings = "  authorization: groups\n";
  return options;
}

std::string makeDataDir(const Daemon& d, const std::string& name) {
  std::string path = d.dir() + "/" + name;
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) throw std::runtime_error("mkdir " + path);
  return path;
}

const json* findEntry(const json& entries, const std::function<bool(const json&)>& match) {
  for (const auto& e : entries)
    if (match(e)) return &e;
  return nullptr;
}

// A real systemd-journald that only this test's processes reach: it runs in a mount namespace of its own, with a
// tmpfs on /run (so /run/systemd/journal/socket is its own socket, and the host's /run is untouched) and the test's
// directory bind-mounted on /run/log, where it keeps its volatile journal files. zerobyted joins that namespace
// (DaemonOptions::mountNamespace); journalctl --directory reads the files from outside.
class PrivateJournal {
 public:
  PrivateJournal() {
    char pattern[] = "/tmp/zbtest-journal-XXXXXX";
    if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
    m_dir = pattern;
    const std::string logDir = m_dir + "/log", outputPath = m_dir + "/journald.log";
    ::mkdir(logDir.c_str(), 0755);
    struct stat st {};
    const bool hostJournalDir = ::stat("/var/log/journal", &st) == 0 && S_ISDIR(st.st_mode);
    static constexpr char kConfig[] =
        "[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\n"
        "ForwardToWall=no\nAudit=no\n";
    int output = ::open(outputPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (output < 0) throw std::runtime_error("open " + outputPath);
    const char* argv[] = {kJournald, nullptr};
    const char* envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", nullptr};

    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      // Only async-signal-safe calls after fork.
      auto fail = [](const char* what) {
        ssize_t ignored = ::write(STDERR_FILENO, what, std::strlen(what));
        (void)ignored;
        ::_exit(127);
      };
      if (::dup2(output, STDOUT_FILENO) < 0 || ::dup2(output, STDERR_FILENO) < 0) ::_exit(127);
      if (::unshare(CLONE_NEWNS) != 0) fail("unshare(CLONE_NEWNS) failed\n");
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail("making / private failed\n");
      if (::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) fail("tmpfs on /run failed\n");
      if (::mkdir("/run/log", 0755) != 0 || ::mkdir("/run/systemd", 0755) != 0 ||
          ::mkdir("/run/systemd/journald.conf.d", 0755) != 0)
        fail("mkdir in /run failed\n");
      if (::mount(logDir.c_str(), "/run/log", nullptr, MS_BIND, nullptr) != 0) fail("binding /run/log failed\n");
      // Storage=volatile already keeps it out of /var/log/journal; this makes sure of it.
      if (hostJournalDir && ::mount("tmpfs", "/var/log/journal", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0)
        fail("tmpfs on /var/log/journal failed\n");
      int config = ::open("/run/systemd/journald.conf.d/zbtest.conf", O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (config < 0 || ::write(config, kConfig, sizeof kConfig - 1) != static_cast<ssize_t>(sizeof kConfig - 1))
        fail("writing journald.conf.d failed\n");
      ::close(config);
      ::syscall(SYS_close_range, 3U, ~0U, 0U);
      ::execve(argv[0], const_cast<char* const*>(argv), const_cast<char* const*>(envp));
      fail("exec systemd-journald failed\n");
    }
    ::close(output);
    m_pid = pid;
    zbtest::ownProcess(pid);
    // Ready once its native socket exists, as seen from inside its namespace.
    const std::string socket = "/proc/" + std::to_string(pid) + "/root/run/systemd/journal/socket";
    for (int i = 0; i < 200; ++i) {
      if (::access(socket.c_str(), F_OK) == 0) return;
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        m_pid = -1;
        zbtest::disownProcess(pid);
        throw std::runtime_error("systemd-journald exited (status " + std::to_string(status) + "): " + output_());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("systemd-journald did not create its socket within 10 s: " + output_());
  }

  ~PrivateJournal() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      int status = 0;
      for (int i = 0; i < 200 && ::waitpid(m_pid, &status, WNOHANG) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (::waitpid(m_pid, &status, WNOHANG) == 0) {
        ::kill(m_pid, SIGKILL);
        ::waitpid(m_pid, &status, 0);
      }
      zbtest::disownProcess(m_pid);
    }
    if (!::testing::Test::HasFailure()) zbtest::run({"/bin/rm", "-rf", m_dir});
    else std::cerr << "keeping the private journal in " << m_dir << std::endl;
  }

  PrivateJournal(const PrivateJournal&) = delete;
  PrivateJournal& operator=(const PrivateJournal&) = delete;

  std::string mountNamespace() const { return "/proc/" + std::to_string(m_pid) + "/ns/mnt"; }

  // Entries with this MESSAGE_ID, as journalctl shows them from the journal files; waits up to 10 s for one that `match` accepts.
  json waitForEntry(const std::string& messageId, const std::function<bool(const json&)>& match) {
    json seen = json::array();
    for (int i = 0; i < 100; ++i) {
      seen = entries(messageId);
      if (const json* e = findEntry(seen, match)) return *e;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "no matching journal entry with MESSAGE_ID=" << messageId << "; entries:\n"
                  << seen.dump(2) << "\njournald output: " << output_();
    return json::object();
  }

 private:
  json entries(const std::string& messageId) {
    json out = json::array();
    CommandResult r = zbtest::run(
        {kJournalctl, "--directory=" + journalDirectory(), "--no-pager", "-o", "json", "MESSAGE_ID=" + messageId});
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);)
      if (startsWith(line, "{")) out.push_back(json::parse(line, nullptr, false));
    return out;
  }

  // <dir>/log/journal/<machine-id>: the one directory journald made there.
  std::string journalDirectory() const {
    std::string base = m_dir + "/log/journal";
    if (DIR* d = ::opendir(base.c_str())) {
      std::string found;
      while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') found = base + "/" + e->d_name;
      ::closedir(d);
      if (!found.empty()) return found;
    }
    return base;
  }

  std::string output_() const {
    CommandResult r = zbtest::run({"/bin/cat", m_dir + "/journald.log"});
    return r.out;
  }

  std::string m_dir;
  pid_t m_pid = -1;
};

// As root: a volume created and deleted, a failed duplicate; as a user without a role: a denied `audit`.
// All of it in `zerobytectl audit --json`, newest first, with method, result and the caller's uid.
TEST(Audit, ChangesAndDenialsAreListedNewestFirstWithMethodResultAndCaller) {
  Daemon d(groupsMode());
  d.start();
  const std::string data = makeDataDir(d, "data");
  CommandResult created = d.ctl({"volume", "create", "auditvol", "--path", data});
  ASSERT_EQ(created.exitCode, 0) << describe(created);
  CommandResult duplicate = d.ctl({"volume", "create", "auditvol", "--path", data});
  ASSERT_NE(duplicate.exitCode, 0) << describe(duplicate);
  CommandResult deleted = d.ctl({"volume", "delete", "auditvol"});
  ASSERT_EQ(deleted.exitCode, 0) << describe(deleted);

  CommandResult denied = d.ctl({"audit"}, "", kNobody);
  EXPECT_EQ(denied.exitCode, 5) << describe(denied);
  EXPECT_TRUE(startsWith(denied.err, "NotAuthorized")) << describe(denied);

  const json entries = d.ctlJson({"audit"}).at("entries");
  ASSERT_TRUE(entries.is_array()) << entries.dump(2);
  for (size_t i = 1; i < entries.size(); ++i)
    EXPECT_GT(entries[i - 1].at("id").get<uint64_t>(), entries[i].at("id").get<uint64_t>()) << "newest first";

  auto byMethodAndResult = [&](const std::string& method, const std::string& resultPrefix) {
    return findEntry(entries, [&](const json& e) {
      return e.value("method", "") == method && startsWith(e.value("result", ""), resultPrefix);
    });
  };
  const json* create = byMethodAndResult("CreateVolume", "ok");
  const json* failed = byMethodAndResult("CreateVolume", "failed");
  const json* remove = byMethodAndResult("DeleteVolume", "ok");
  const json* denial = byMethodAndResult("ListAudit", "denied");
  ASSERT_NE(create, nullptr) << entries.dump(2);
  ASSERT_NE(remove, nullptr) << entries.dump(2);
  ASSERT_NE(denial, nullptr) << entries.dump(2);
  EXPECT_NE(failed, nullptr) << "a change that failed is recorded too\n" << entries.dump(2);
  if (failed) {
    EXPECT_NE(failed->value("result", "").find("AlreadyExists"), std::string::npos) << failed->dump();
  }

  EXPECT_EQ(create->at("caller_uid"), 0);
  EXPECT_GT(create->at("caller_pid").get<int64_t>(), 0);
  EXPECT_NE(create->at("caller_pid").get<int64_t>(), d.pid()) << "the caller, not the daemon";
  EXPECT_EQ(create->at("action"), "org.zerobyte.daemon1.manage");
  EXPECT_EQ(create->at("transport"), "varlink");
  EXPECT_NE(create->value("resource", "").find("auditvol"), std::string::npos) << create->dump();
  EXPECT_FALSE(create->value("time", "").empty());
  EXPECT_GT(remove->at("id").get<uint64_t>(), create->at("id").get<uint64_t>());
  EXPECT_NE(remove->value("resource", "").find("auditvol"), std::string::npos) << remove->dump();
  EXPECT_EQ(denial->at("caller_uid"), uidOf(kNobody));
  EXPECT_EQ(denial->at("action"), "org.zerobyte.daemon1.admin");

  // The table for people.
  CommandResult table = d.ctl({"audit"});
  ASSERT_EQ(table.exitCode, 0) << describe(table);
  EXPECT_NE(table.out.find("METHOD"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("CreateVolume"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("nobody"), std::string::npos) << "callers by name\n" << table.out;
}

TEST(Audit, FiltersBySinceUserActionAndLimit) {
  Daemon d(groupsMode());
  d.start();
  const std::string data = makeDataDir(d, "data");
  ASSERT_EQ(d.ctl({"volume", "create", "filtered", "--path", data}).exitCode, 0);
  ASSERT_EQ(d.ctl({"audit"}, "", kNobody).exitCode, 5);
  ASSERT_EQ(d.ctl({"volume", "delete", "filtered"}).exitCode, 0);

  const json byNobody = d.ctlJson({"audit", "--user", kNobody}).at("entries");
  ASSERT_FALSE(byNobody.empty());
  for (const auto& e : byNobody) EXPECT_EQ(e.at("caller_uid"), uidOf(kNobody)) << e.dump();
  const json byUid = d.ctlJson({"audit", "--user", std::to_string(uidOf(kNobody))}).at("entries");
  EXPECT_EQ(byUid.size(), byNobody.size()) << "a uid filters like the name";

  const json byRoot = d.ctlJson({"audit", "--user", "root"}).at("entries");
  ASSERT_FALSE(byRoot.empty());
  for (const auto& e : byRoot) EXPECT_EQ(e.at("caller_uid"), 0) << e.dump();

  for (const std::string action : {"manage", "org.zerobyte.daemon1.manage"}) {
    const json manage = d.ctlJson({"audit", "--action", action}).at("entries");
    ASSERT_GE(manage.size(), 2u) << action;
    for (const auto& e : manage) EXPECT_EQ(e.at("action"), "org.zerobyte.daemon1.manage") << e.dump();
  }

  // Reading the trail may itself be audited (admin): compare with a listing taken just before.
  const json all = d.ctlJson({"audit"}).at("entries");
  ASSERT_GE(all.size(), 3u);
  const json one = d.ctlJson({"audit", "--limit", "1"}).at("entries");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_GE(one[0].at("id").get<uint64_t>(), all[0].at("id").get<uint64_t>()) << "the limit keeps the newest";

  EXPECT_GE(d.ctlJson({"audit", "--since", "1h"}).at("entries").size(), 3u);
  EXPECT_GE(d.ctlJson({"audit", "--since", "2000-01-01"}).at("entries").size(), 3u);
  EXPECT_TRUE(d.ctlJson({"audit", "--since", "2099-01-01 00:00"}).at("entries").empty());

  CommandResult unknownUser = d.ctl({"audit", "--user", "zbtest-no-such-user"});
  EXPECT_EQ(unknownUser.exitCode, 2) << describe(unknownUser);
  EXPECT_TRUE(startsWith(unknownUser.err, "InvalidArgument")) << describe(unknownUser);
  CommandResult unknownAction = d.ctl({"audit", "--action", "frobnicate"});
  EXPECT_EQ(unknownAction.exitCode, 2) << describe(unknownAction);
  EXPECT_NE(unknownAction.err.find("manage"), std::string::npos) << "names the known actions\n" << describe(unknownAction);
  CommandResult badTime = d.ctl({"audit", "--since", "last tuesday"});
  EXPECT_EQ(badTime.exitCode, 2) << describe(badTime);
  EXPECT_NE(badTime.err.find("YYYY-MM-DD"), std::string::npos) << describe(badTime);
}

// The journal half of the audit trail, in a real journald: a change and a denial, each with its MESSAGE_ID and the
// ZEROBYTE_* fields, sent by zerobyted itself (_PID), matching the store's entry.
TEST(AuditJournal, ChangeAndDenialReachARealJournaldWithStructuredFields) {
  struct stat st {};
  if (::stat(kJournald, &st) != 0 || ::stat(kJournalctl, &st) != 0) GTEST_SKIP() << "systemd-journald/journalctl not installed";
  PrivateJournal journal;
  Daemon::Options options = groupsMode();
  options.mountNamespace = journal.mountNamespace();
  Daemon d(options);
  d.start();
  const std::string data = makeDataDir(d, "data");
  CommandResult created = d.ctl({"volume", "create", "journaled", "--path", data});
  ASSERT_EQ(created.exitCode, 0) << describe(created);
  ASSERT_EQ(d.ctl({"audit"}, "", kNobody).exitCode, 5);

  const json change = journal.waitForEntry(kChangedId, [](const json& e) { return e.value("ZEROBYTE_METHOD", "") == "CreateVolume"; });
  EXPECT_EQ(change.value("SYSLOG_IDENTIFIER", ""), "zerobyted");
  EXPECT_EQ(change.value("_PID", ""), std::to_string(d.pid())) << "sent by zerobyted itself";
  EXPECT_EQ(change.value("PRIORITY", ""), "5");
  EXPECT_EQ(change.value("ZEROBYTE_ACTION", ""), "org.zerobyte.daemon1.manage");
  EXPECT_NE(change.value("ZEROBYTE_RESOURCE", "").find("journaled"), std::string::npos) << change.dump(2);
  EXPECT_EQ(change.value("ZEROBYTE_CALLER_UID", ""), "0");
  EXPECT_EQ(change.value("ZEROBYTE_RESULT", ""), "ok");
  EXPECT_NE(change.value("MESSAGE", "").find("CreateVolume"), std::string::npos) << change.dump(2);

  const std::string nobody = std::to_string(uidOf(kNobody));
  const json denial = journal.waitForEntry(kDeniedId, [&](const json& e) {
    return e.value("ZEROBYTE_METHOD", "") == "ListAudit" && e.value("ZEROBYTE_CALLER_UID", "") == nobody;
  });
  EXPECT_EQ(denial.value("ZEROBYTE_ACTION", ""), "org.zerobyte.daemon1.admin");
  EXPECT_TRUE(startsWith(denial.value("ZEROBYTE_RESULT", ""), "denied")) << denial.dump(2);
  EXPECT_EQ(denial.value("PRIORITY", ""), "4");

  // The same event in the store, from the same caller process.
  const json entries = d.ctlJson({"audit", "--action", "manage"}).at("entries");
  const json* stored = findEntry(entries, [](const json& e) { return e.value("method", "") == "CreateVolume"; });
  ASSERT_NE(stored, nullptr) << entries.dump(2);
  EXPECT_EQ(std::to_string(stored->at("caller_pid").get<int64_t>()), change.value("ZEROBYTE_CALLER_PID", ""));
}

}  // namespace
