// Integration tests of secrets: the master key (systemd credential or generated file), sealed repository passwords,
// reveal, master key rotation and change-password (also killed at any moment), and that no password leaks anywhere.
#include "common/errors.h"
#include "daemon/store/store.h"
#include "tests/integration/harness.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace zbtest {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kCredentialName = "zerobyte.master-key";
constexpr const char* kNobody = "nobody";
constexpr const char* kSystemdCreds = "/usr/bin/systemd-creds";
constexpr const char* kRestic = "/usr/bin/restic";
constexpr int kNotAuthorizedExit = 5;
constexpr size_t kRotationRepositories = 100;
constexpr size_t kConcurrentImports = 10;
constexpr int kRotationCrashes = 20;
constexpr int kChangePasswordCrashes = 10;

// ---- small helpers ----

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void writeBytes(const std::string& path, const std::string& bytes, mode_t mode = 0600) {
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size())) << path;
  ::close(fd);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

mode_t permissionsOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return static_cast<mode_t>(-1);
  return st.st_mode & 07777;
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }


std::string randomBytes(size_t size) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string out(size, '\0');
  in.read(out.data(), static_cast<std::streamsize>(size));
  return out;
}

std::string hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::string randomHex(size_t bytes) { return hex(randomBytes(bytes)); }

// SHA-256 through coreutils, so the test does not share the daemon's crypto code.
std::string sha256(const std::string& bytes) {
  CommandResult r = run({"/usr/bin/sha256sum"}, bytes);
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  std::string digestHex = r.out.substr(0, 64);
  std::string digest;
  for (size_t i = 0; i + 1 < digestHex.size(); i += 2) digest += static_cast<char>(std::stoi(digestHex.substr(i, 2), nullptr, 16));
  return digest;
}

// The key id the daemon stores with every ciphertext: the first 4 bytes of SHA-256 of the 32-byte key,
// shown as 8 hex digits (or, should the reply carry it as a number, that number).
::testing::AssertionResult keyIdIs(const json& keyId, const std::string& key) {
  const std::string digest = sha256(key);
  const std::string expectedHex = hex(digest.substr(0, 4));
  if (keyId.is_string()) {
    std::string shown = keyId.get<std::string>();
    std::transform(shown.begin(), shown.end(), shown.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (shown == expectedHex || shown == "0x" + expectedHex) return ::testing::AssertionSuccess();
  } else if (keyId.is_number_unsigned() || keyId.is_number_integer()) {
    if (keyId.get<uint64_t>() == std::stoull(expectedHex, nullptr, 16)) return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "key_id " << keyId.dump() << " is not " << expectedHex << " (SHA-256 of the key, first 4 bytes)";
}

// Every regular file below root (recursively).
void regularFiles(const std::string& root, std::vector<std::string>& out) {
  DIR* dir = ::opendir(root.c_str());
  if (!dir) return;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    std::string path = root + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) regularFiles(path, out);
    else if (S_ISREG(st.st_mode)) out.push_back(path);
  }
  ::closedir(dir);
}

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "Started job 12 (...)" → 12.
uint64_t startedJobId(const std::string& out) {
  auto at = out.find("Started job ");
  if (at == std::string::npos) return 0;
  return std::stoull(out.substr(at + 12));
}

uid_t uidOf(const char* user) {
  passwd* pw = ::getpwnam(user);
  return pw ? pw->pw_uid : static_cast<uid_t>(-1);
}

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// A zerobytectl run in the background (for concurrency and for killing the daemon under a request).
// stdin is /dev/null; stdout and stderr go to files. Not one of the harness's own children, so it is waited for
// before anything that makes the harness reap strays (Daemon::start, kill9, the destructor).
class BackgroundCommand {
 public:
  BackgroundCommand(const std::vector<std::string>& argv, const std::string& outputPrefix)
      : m_outPath(outputPrefix + ".out"), m_errPath(outputPrefix + ".err") {
    std::vector<std::string> args = argv;
    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/"};
    std::vector<char*> argp, envp;
    for (auto& a : args) argp.push_back(a.data());
    argp.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = ::open(m_outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = ::open(m_errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0 || err < 0) throw std::runtime_error("cannot open the files of a background command: " + std::string(std::strerror(errno)));
    m_pid = ::fork();
    if (m_pid == 0) {
      // Only async-signal-safe calls after fork (the harness has a thread).
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      if (::dup2(in, STDIN_FILENO) < 0 || ::dup2(out, STDOUT_FILENO) < 0 || ::dup2(err, STDERR_FILENO) < 0) ::_exit(126);
      ::syscall(SYS_close_range, 3U, ~0U, 0U);
      ::execve(argp[0], argp.data(), envp.data());
      ::_exit(127);
    }
    ::close(in);
    ::close(out);
    ::close(err);
    if (m_pid < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
  }
  ~BackgroundCommand() {
    if (m_pid > 0 && !m_reaped) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
    }
    ::unlink(m_outPath.c_str());
    ::unlink(m_errPath.c_str());
  }
  BackgroundCommand(const BackgroundCommand&) = delete;
  BackgroundCommand& operator=(const BackgroundCommand&) = delete;

  // The result once it ended; nothing while it runs.
  std::optional<CommandResult> poll() {
    if (m_reaped) return m_result;
    int status = 0;
    pid_t r = ::waitpid(m_pid, &status, WNOHANG);
    if (r == 0) return std::nullopt;
    m_reaped = true;
    m_result.exitCode = r == m_pid ? (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) : -1;
    m_result.out = slurp(m_outPath);
    m_result.err = slurp(m_errPath);
    return m_result;
  }
  // Waits at most timeoutMs, then kills it (exit code 137 then).
  CommandResult wait(int timeoutMs) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    while (Clock::now() < deadline) {
      if (auto result = poll()) return *result;
      sleepMs(5);
    }
    ::kill(m_pid, SIGKILL);
    for (int i = 0; i < 2000; ++i) {
      if (auto result = poll()) return *result;
      sleepMs(5);
    }
    return m_result;
  }

 private:
  std::string m_outPath, m_errPath;
  pid_t m_pid = -1;
  bool m_reaped = false;
  CommandResult m_result;
};

// ---- the fixture ----

class Secrets : public ::testing::Test {
 protected:
  void SetUp() override {
    // The many-repository tests import kConcurrentImports at once: as many jobs may run together.
    Daemon::Options options;
    options.extraDaemonSettings = "  max_concurrent_jobs: 16\n";
    daemon = std::make_unique<Daemon>(options);
    inputs = daemon->dir() + "/inputs";  // password files and keys the test hands over; never scanned for leaks
    ASSERT_EQ(::mkdir(inputs.c_str(), 0700), 0);
  }

  std::string masterKeyPath() const { return daemon->stateDir() + "/master.key"; }
  std::string newMasterKeyPath() const { return daemon->stateDir() + "/master.key.new"; }

  // Starts the daemon expecting it to refuse; returns what it logged during this attempt.
  std::string refusedStart() {
    size_t before = daemon->log().size();
    try {
      daemon->start();
    } catch (const std::runtime_error&) {
      EXPECT_NE(daemon->lastExitStatus(), 0);
      EXPECT_NE(daemon->lastExitStatus(), 128 + SIGKILL) << "zerobyted neither started nor exited: the harness had to kill it";
      return daemon->log().substr(before);
    }
    ADD_FAILURE() << "zerobyted started although it should have refused";
    daemon->stop();
    return daemon->log().substr(before);
  }

  std::string passwordFile(const std::string& password) {
    std::string path = inputs + "/password-" + std::to_string(++m_files);
    writeBytes(path, password);
    return path;
  }

  // A restic repository made by hand with a known password, as an administrator would have it before zerobyte.
  std::string resticRepository(const std::string& name, const std::string& password) {
    std::string path = daemon->dir() + "/" + name;
    CommandResult r = run({kRestic, "--no-cache", "--repo", path, "--password-file", passwordFile(password), "init"});
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    return path;
  }

  // Does plain restic open the repository with this password? (--no-lock: a lock left by a killed daemon must not decide.)
  bool resticOpens(const std::string& repositoryPath, const std::string& password) {
    CommandResult r = run({kRestic, "--no-cache", "--no-lock", "--repo", repositoryPath, "--password-file", passwordFile(password), "cat", "config"});
    return r.exitCode == 0 && contains(r.out, "\"id\"");
  }

  void importRepository(const std::string& name, const std::string& path, const std::string& password) {
    CommandResult r = daemon->ctl({"repo", "import", name, "--path", path, "--password-file", passwordFile(password)});
    ASSERT_EQ(r.exitCode, 0) << describe(r);
  }

  void createRepository(const std::string& name) {
    CommandResult r = daemon->ctl({"repo", "create", name, "--path", daemon->dir() + "/repo-" + name});
    ASSERT_EQ(r.exitCode, 0) << describe(r);
  }

  CommandResult reveal(const std::string& name, const std::string& asUser = "") {
    return daemon->ctl({"repo", "password", name, "--reveal"}, "", asUser);
  }

  // The password zerobyted reveals, without the newline; "" (and a failure) if it does not.
  std::string revealed(const std::string& name) {
    CommandResult r = reveal(name);
    EXPECT_EQ(r.exitCode, 0) << name << ": " << describe(r);
    if (r.exitCode != 0 || r.out.empty() || r.out.back() != '\n') return "";
    return r.out.substr(0, r.out.size() - 1);
  }

  std::string repositoryId(const std::string& name) { return daemon->ctlJson({"repo", "show", name}).at("repository").at("id").get<std::string>(); }

  void createVolume(size_t files = 30) {
    std::string path = daemon->dir() + "/volume";
    makeTree(path, files);
    CommandResult r = daemon->ctl({"volume", "create", "vol", "--path", path});
    ASSERT_EQ(r.exitCode, 0) << describe(r);
  }

  // A followed backup of "vol"; returns the job (or an empty object when none was started).
  json backup(const std::string& repository, CommandResult* output = nullptr) {
    CommandResult r = daemon->ctl({"backup", "vol", "--repo", repository, "--follow"});
    if (output) *output = r;
    uint64_t id = startedJobId(r.out);
    if (id == 0) return json::object();
    return daemon->ctlJson({"job", "show", std::to_string(id)}).at("job");
  }

  // Polls the job list until nothing is queued or running (the daemon's own reconciliation after a restart).
  void waitUntilNoJobIsActive(int timeoutMs = 120000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
      bool active = false;
      const json listed = daemon->ctlJson({"job", "list"});  // kept alive: the loop walks into it
      for (const auto& job : listed.at("jobs")) {
        std::string state = job.value("state", "");
        if (state == "queued" || state == "running") active = true;
      }
      if (!active) return;
      if (Clock::now() >= deadline) {
        ADD_FAILURE() << "jobs still active after " << timeoutMs / 1000 << " s: " << daemon->ctlJson({"job", "list"}).dump();
        return;
      }
      sleepMs(100);
    }
  }

  json status(const std::string& asUser = "") {
    CommandResult r = daemon->ctl({"status", "--json"}, "", asUser);
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    json parsed = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.out;
    return parsed.is_discarded() ? json::object() : parsed;
  }

  // zerobytectl in the background, against this daemon.
  std::unique_ptr<BackgroundCommand> ctlInBackground(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {ZB_ZEROBYTECTL, "--socket", daemon->socketPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<BackgroundCommand>(argv, inputs + "/background-" + std::to_string(++m_files));
  }

  // `count` repositories r000… imported from one restic repository, kConcurrentImports zerobytectl processes at a time.
  void importMany(size_t count, const std::string& path, const std::string& password) {
    const std::string file = passwordFile(password);
    auto started = Clock::now();
    std::vector<std::pair<std::string, std::unique_ptr<BackgroundCommand>>> running;
    size_t next = 0, done = 0;
    while (done < count) {
      while (running.size() < kConcurrentImports && next < count) {
        char name[16];
        std::snprintf(name, sizeof name, "r%03zu", next++);
        running.emplace_back(name, ctlInBackground({"repo", "import", name, "--path", path, "--password-file", file}));
      }
      for (auto it = running.begin(); it != running.end();) {
        if (auto result = it->second->poll()) {
          EXPECT_EQ(result->exitCode, 0) << "import " << it->first << ": " << describe(*result);
          ++done;
          it = running.erase(it);
        } else {
          ++it;
        }
      }
      ASSERT_LT(Clock::now() - started, std::chrono::minutes(3)) << "importing " << count << " repositories took too long";
      sleepMs(5);
    }
    auto seconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::cout << "[ info ] imported " << count << " repositories in " << seconds << " s (" << kConcurrentImports << " at a time)" << std::endl;
    ASSERT_EQ(daemon->ctlJson({"repo", "list"}).at("repositories").size(), count);
  }

  std::string manyName(size_t i) const {
    char name[16];
    std::snprintf(name, sizeof name, "r%03zu", i);
    return name;
  }

  // Every one of the repositories r000… reveals `password`; returns how many did not.
  size_t revealMismatches(size_t count, const std::string& password) {
    size_t wrong = 0;
    for (size_t i = 0; i < count; ++i) {
      CommandResult r = reveal(manyName(i));
      if (r.exitCode != 0 || r.out != password + "\n") {
        if (wrong < 3) ADD_FAILURE() << manyName(i) << " does not reveal the imported password: " << describe(r);
        ++wrong;
      }
    }
    return wrong;
  }

  std::unique_ptr<Daemon> daemon;
  std::string inputs;

 private:
  int m_files = 0;
};

// ---- 1. where the master key comes from ----

// Seals `key` as systemd would hold it (systemd-creds with the host key, kept in the test directory instead of
// /var/lib/systemd) and decrypts it into credentialsDirectory/zerobyte.master-key the way systemd hands it to a service.
void installCredential(const std::string& key, const std::string& workDirectory, const std::string& credentialsDirectory,
                       const std::string& name = kCredentialName) {
  const std::string hostSecret = "SYSTEMD_CREDENTIAL_SECRET=" + workDirectory + "/host.secret";
  const std::string plain = workDirectory + "/key.plain", sealed = workDirectory + "/" + name + ".cred";
  writeBytes(plain, key);
  CommandResult encrypt = run({"/usr/bin/env", hostSecret, kSystemdCreds, "encrypt", "--with-key=host", "--name=" + name, plain, sealed});
  ASSERT_EQ(encrypt.exitCode, 0) << describe(encrypt);
  ::unlink(plain.c_str());
  EXPECT_FALSE(contains(slurp(sealed), key)) << "systemd-creds did not encrypt";

  ::mkdir(credentialsDirectory.c_str(), 0700);
  ASSERT_EQ(::chmod(credentialsDirectory.c_str(), 0700), 0);
  const std::string target = credentialsDirectory + "/" + name;
  ::unlink(target.c_str());
  CommandResult decrypt = run({"/usr/bin/env", hostSecret, kSystemdCreds, "decrypt", "--name=" + name, sealed, target});
  ASSERT_EQ(decrypt.exitCode, 0) << describe(decrypt);
  ASSERT_EQ(::chmod(target.c_str(), 0400), 0);
  ASSERT_EQ(slurp(target), key) << "systemd-creds decrypt gave back other bytes";
}

class MasterKeyCredential : public Secrets, public ::testing::WithParamInterface<size_t> {};

TEST_P(MasterKeyCredential, IsUsedInsteadOfAStateFileAndAnotherKeyIsRefusedNamingTheRecord) {
  const size_t size = GetParam();
  const std::string credentials = daemon->dir() + "/credentials";
  const std::string key = randomBytes(size);
  installCredential(key, inputs, credentials);
  // Exactly 32 bytes are the key; a longer credential is hashed to 32 bytes.
  const std::string effectiveKey = size == 32 ? key : sha256(key);

  Daemon::Options options;
  options.credentialsDirectory = credentials;
  daemon->writeConfig(options);
  daemon->start();

  EXPECT_TRUE(contains(daemon->log(), kCredentialName)) << "the log does not name the credential the master key came from";
  EXPECT_FALSE(exists(masterKeyPath())) << "a master.key was written although the key came from a credential";
  json masterKey = status().at("master_key");
  ASSERT_TRUE(masterKey.is_object()) << masterKey.dump();
  EXPECT_TRUE(contains(masterKey.at("source").get<std::string>(), kCredentialName)) << masterKey.dump();
  EXPECT_TRUE(keyIdIs(masterKey.at("key_id"), effectiveKey));

  createVolume();
  createRepository("kept");
  const std::string id = repositoryId("kept");
  ASSERT_EQ(daemon->stop(), 0);

  // The same credential after a restart: the stored password opens, a backup works.
  daemon->start();
  json job = backup("kept");
  EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();
  EXPECT_FALSE(exists(masterKeyPath()));
  ASSERT_EQ(daemon->stop(), 0);

  const std::string everything = daemon->log();
  for (const std::string& form : {key, effectiveKey, hex(key), upper(hex(key)), hex(effectiveKey), upper(hex(effectiveKey))})
    EXPECT_FALSE(contains(everything, form)) << "the daemon log holds the master key";

  // Another key in the same place: the stored secret's key id is not in the keyring; refused, naming the record.
  installCredential(randomBytes(size), inputs, credentials);
  std::string refusal = refusedStart();
  EXPECT_TRUE(contains(refusal, "repositories/" + id)) << "the refusal does not name the record:\n" << refusal;
  EXPECT_FALSE(exists(masterKeyPath())) << "zerobyted fell back to a generated key";
}

INSTANTIATE_TEST_SUITE_P(Secrets, MasterKeyCredential, ::testing::Values(size_t{32}, size_t{64}),
                         [](const ::testing::TestParamInfo<size_t>& info) { return std::to_string(info.param) + "Bytes"; });

TEST_F(Secrets, CredentialShorterThan32BytesIsRefusedNamingIt) {
  const std::string credentials = daemon->dir() + "/credentials";
  installCredential(randomBytes(31), inputs, credentials);
  Daemon::Options options;
  options.credentialsDirectory = credentials;
  daemon->writeConfig(options);
  std::string refusal = refusedStart();
  EXPECT_TRUE(contains(refusal, kCredentialName)) << refusal;
  EXPECT_FALSE(exists(masterKeyPath())) << "zerobyted fell back to a generated key instead of refusing the short credential";
}

TEST_F(Secrets, GeneratedMasterKeyIsPrivateAndLooseModesAreRefused) {
  daemon->start();
  ASSERT_TRUE(exists(masterKeyPath()));
  EXPECT_EQ(permissionsOf(masterKeyPath()), 0600u);
  const std::string key = slurp(masterKeyPath());
  EXPECT_EQ(key.size(), 32u);
  json masterKey = status().at("master_key");
  ASSERT_TRUE(masterKey.is_object()) << masterKey.dump();
  EXPECT_TRUE(contains(masterKey.at("source").get<std::string>(), "master.key")) << masterKey.dump();
  EXPECT_TRUE(keyIdIs(masterKey.at("key_id"), key));
  EXPECT_TRUE(contains(daemon->log(), "master.key")) << "the log does not say where the master key came from";
  EXPECT_FALSE(contains(daemon->log(), hex(key)));
  // The key lives in the daemon's memory: no core dump may carry it.
  const std::string limits = slurp("/proc/" + std::to_string(daemon->pid()) + "/limits");
  EXPECT_TRUE(std::regex_search(limits, std::regex(R"(Max core file size\s+0\s+0\s)"))) << limits;
  createRepository("one");
  ASSERT_EQ(daemon->stop(), 0);

  ASSERT_EQ(::chmod(masterKeyPath().c_str(), 0644), 0);
  std::string refusal = refusedStart();
  EXPECT_TRUE(contains(refusal, "master.key")) << refusal;
  ASSERT_EQ(::chmod(masterKeyPath().c_str(), 0600), 0);

  for (mode_t loose : {mode_t{0755}, mode_t{0750}, mode_t{0701}}) {
    SCOPED_TRACE("state directory mode " + std::to_string(loose));
    ASSERT_EQ(::chmod(daemon->stateDir().c_str(), loose), 0);
    refusal = refusedStart();
    EXPECT_TRUE(contains(refusal, "chmod 0700")) << refusal;
    EXPECT_TRUE(contains(refusal, daemon->stateDir())) << refusal;
  }
  ASSERT_EQ(::chmod(daemon->stateDir().c_str(), 0700), 0);

  // A lost master.key is not silently replaced by a fresh one that would open nothing.
  const std::string aside = daemon->dir() + "/master.key.aside";
  ASSERT_EQ(::rename(masterKeyPath().c_str(), aside.c_str()), 0);
  refusal = refusedStart();
  EXPECT_TRUE(contains(refusal, "master.key")) << refusal;
  EXPECT_FALSE(exists(masterKeyPath())) << "a fresh master key was generated for a store that holds sealed secrets";
  ASSERT_EQ(::rename(aside.c_str(), masterKeyPath().c_str()), 0);

  // Put right, it starts with the same key and the stored password still opens.
  daemon->start();
  EXPECT_EQ(slurp(masterKeyPath()), key);
  EXPECT_EQ(revealed("one").size(), 64u);
}

TEST_F(Secrets, RotationIntoACredentialRemovesTheStateFileAndTheCredentialIsRequiredAfterwards) {
  daemon->start();
  createRepository("one");
  const std::string password = revealed("one");
  ASSERT_EQ(daemon->stop(), 0);

  // The new key is added to the service under another name first; the daemon keeps its state file key until the rotation.
  const std::string credentials = daemon->dir() + "/credentials";
  const std::string next = "zerobyte.master-key.2";
  const std::string key = randomBytes(32);
  installCredential(key, inputs, credentials, next);
  Daemon::Options options;
  options.credentialsDirectory = credentials;
  daemon->writeConfig(options);
  daemon->start();
  EXPECT_TRUE(contains(status().at("master_key").at("source").get<std::string>(), "master.key"));

  CommandResult rotate = daemon->ctl({"secrets", "rotate-master-key", "--from-credential", next});
  ASSERT_EQ(rotate.exitCode, 0) << describe(rotate);
  EXPECT_FALSE(exists(masterKeyPath())) << "the state file key is kept although it seals nothing any more";
  EXPECT_FALSE(exists(newMasterKeyPath()));
  json masterKey = status().at("master_key");
  EXPECT_TRUE(contains(masterKey.at("source").get<std::string>(), next)) << masterKey.dump();
  EXPECT_TRUE(keyIdIs(masterKey.at("key_id"), key));
  EXPECT_EQ(revealed("one"), password);

  // While the key is a credential, a key in the state directory is refused: it would not be used at the next start.
  CommandResult generate = daemon->ctl({"secrets", "rotate-master-key"});
  EXPECT_EQ(generate.exitCode, zerobyte::errorInfo(zerobyte::ErrorCode::Conflict).exitCode) << describe(generate);
  EXPECT_EQ(generate.err.rfind("Conflict:", 0), 0u) << describe(generate);

  ASSERT_EQ(daemon->stop(), 0);
  daemon->start();
  EXPECT_EQ(revealed("one"), password);
  EXPECT_FALSE(exists(masterKeyPath()));
  ASSERT_EQ(daemon->stop(), 0);

  // Started without the credential the rotation recorded: refused, naming it, and no fresh key is made up.
  daemon->writeConfig({});
  std::string refusal = refusedStart();
  EXPECT_TRUE(contains(refusal, next)) << refusal;
  EXPECT_FALSE(exists(masterKeyPath()));
}

// ---- 2. tampering with the store ----

TEST_F(Secrets, TamperedCiphertextFailsAtUseNamingTheRecordAndSparesTheOthers) {
  daemon->start();
  createVolume();
  for (const char* name : {"flipped", "swap-a", "swap-b", "untouched"}) createRepository(name);
  std::map<std::string, std::string> ids;
  for (const char* name : {"flipped", "swap-a", "swap-b", "untouched"}) ids[name] = repositoryId(name);
  const std::string untouchedPassword = revealed("untouched");
  ASSERT_EQ(daemon->stop(), 0);

  // Through the project's own store, as an attacker with write access to data.mdb could do it byte by byte.
  {
    zerobyte::store::Store store(daemon->stateDir());
    std::map<std::string, zerobyte::core::Repository> byName;
    for (auto& repository : store.repositories()) byName[repository.name] = repository;
    ASSERT_EQ(byName.size(), 4u);
    auto& flipped = byName.at("flipped");
    ASSERT_FALSE(flipped.password.ciphertext.empty());
    flipped.password.ciphertext[flipped.password.ciphertext.size() / 2] ^= 0x01;
    std::swap(byName.at("swap-a").password, byName.at("swap-b").password);
    auto txn = store.begin();
    for (const char* name : {"flipped", "swap-a", "swap-b"}) txn.put(byName.at(name));
    txn.commit();
  }

  // Start-time verification looks at key ids only: they are all still in the keyring.
  daemon->start();
  const int secretUnavailable = zerobyte::errorInfo(zerobyte::ErrorCode::SecretUnavailable).exitCode;
  for (const char* name : {"flipped", "swap-a", "swap-b"}) {
    SCOPED_TRACE(name);
    const std::string record = "repositories/" + ids.at(name);
    CommandResult r = reveal(name);
    EXPECT_EQ(r.exitCode, secretUnavailable) << describe(r);
    EXPECT_EQ(r.err.rfind("SecretUnavailable:", 0), 0u) << describe(r);
    EXPECT_TRUE(contains(r.err, record)) << describe(r);
    EXPECT_EQ(r.out, "");

    CommandResult output;
    json job = backup(name, &output);
    EXPECT_NE(output.exitCode, 0) << describe(output);
    std::string said = output.out + output.err + job.value("message", "");
    EXPECT_TRUE(contains(said, record)) << "the failed backup does not name the record: " << describe(output) << job.dump();
    if (!job.empty()) {
      EXPECT_EQ(job.value("state", ""), "failed") << job.dump();
    }
  }
  EXPECT_EQ(revealed("untouched"), untouchedPassword);
  json job = backup("untouched");
  EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();
  ASSERT_EQ(daemon->stop(), 0);

  // A key id that is not in the keyring is caught at start, naming the record.
  {
    zerobyte::store::Store store(daemon->stateDir());
    for (auto repository : store.repositories()) {
      if (repository.name != "untouched") continue;
      repository.password.keyId ^= 0x00010000;
      auto txn = store.begin();
      txn.put(repository);
      txn.commit();
    }
  }
  std::string refusal = refusedStart();
  EXPECT_TRUE(contains(refusal, "repositories/" + ids.at("untouched"))) << refusal;
}

// ---- 3. no password anywhere ----

TEST_F(Secrets, RepositoryPasswordsAppearInNoFileLogReplyOrChildProcess) {
  daemon->start();
  const std::string volume = daemon->dir() + "/volume";
  makeTree(volume, 300);
  // Enough data that restic is still running when /proc is read.
  makeRandomFiles(volume + "/big", 2, 32 * 1024 * 1024);
  ASSERT_EQ(daemon->ctl({"volume", "create", "vol", "--path", volume}).exitCode, 0);

  std::vector<std::string> names = {"leak-a", "leak-b", "leak-c"};
  std::vector<std::string> passwords;
  for (const auto& name : names) {
    passwords.push_back("pw-LEAKCHECK-" + randomHex(12));
    importRepository(name, resticRepository("restic-" + name, passwords.back()), passwords.back());
  }
  auto holdsAPassword = [&](const std::string& text) {
    for (const auto& password : passwords)
      if (contains(text, password)) return password;
    return std::string();
  };

  // While each backup runs: restic's argv and environment (and the daemon's) hold no password.
  size_t childrenSeen = 0;
  for (const auto& name : names) {
    CommandResult started = daemon->ctl({"backup", "vol", "--repo", name, "--json"});
    ASSERT_EQ(started.exitCode, 0) << describe(started);
    uint64_t id = json::parse(started.out).at("job").at("id").get<uint64_t>();
    bool sawBackup = false;
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      for (pid_t pid : daemon->childPids()) {
        const std::string proc = "/proc/" + std::to_string(pid);
        const std::string cmdline = slurp(proc + "/cmdline"), environ = slurp(proc + "/environ");
        ++childrenSeen;
        EXPECT_EQ(holdsAPassword(cmdline), "") << "the argv of child " << pid << " holds a password";
        EXPECT_EQ(holdsAPassword(environ), "") << "the environment of child " << pid << " holds a password";
        if (contains(cmdline, std::string("backup\0", 7))) sawBackup = true;
      }
      const std::string self = "/proc/" + std::to_string(daemon->pid());
      EXPECT_EQ(holdsAPassword(slurp(self + "/cmdline") + slurp(self + "/environ")), "");
      json job = daemon->ctlJson({"job", "show", std::to_string(id)}).at("job");
      std::string state = job.value("state", "");
      if (state != "queued" && state != "running") break;
      sleepMs(5);
    }
    EXPECT_TRUE(sawBackup) << "never saw the restic backup child for " << name;
    EXPECT_EQ(daemon->waitForJob(id).value("state", ""), "succeeded");
  }
  EXPECT_GT(childrenSeen, 0u);

  // A restore.
  json snapshots = daemon->ctlJson({"snapshot", "list", "leak-b", "--refresh"}).at("snapshots");
  ASSERT_EQ(snapshots.size(), 1u);
  const std::string snapshot = snapshots[0].at("id").get<std::string>();
  CommandResult restore = daemon->ctl({"restore", "leak-b", snapshot, "--target", daemon->dir() + "/restored", "--include", volume + "/a", "--follow"});
  ASSERT_EQ(restore.exitCode, 0) << describe(restore);

  // Every reply zerobytectl prints, in --json form.
  std::string replies;
  auto record = [&](std::vector<std::string> args) {
    args.push_back("--json");
    CommandResult r = daemon->ctl(args);
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    replies += r.out + r.err;
  };
  record({"status"});
  record({"volume", "list"});
  record({"volume", "show", "vol"});
  record({"repo", "list"});
  record({"job", "list"});
  for (const auto& name : names) {
    record({"repo", "show", name});
    record({"snapshot", "list", name});
  }
  record({"snapshot", "ls", "leak-b", snapshot, volume});
  json jobs = daemon->ctlJson({"job", "list"}).at("jobs");
  EXPECT_GE(jobs.size(), 7u) << "3 imports, 3 backups, a restore";
  for (const auto& job : jobs) {
    record({"job", "show", std::to_string(job.at("id").get<uint64_t>())});
    record({"job", "log", std::to_string(job.at("id").get<uint64_t>())});
  }
  EXPECT_EQ(holdsAPassword(replies), "") << "a reply holds a password";
  EXPECT_EQ(holdsAPassword(daemon->log()), "") << "daemon.log holds a password";

  // Every file the daemon keeps: data.mdb, its lock file, the master key, restic's cache, the runtime directory.
  ASSERT_EQ(daemon->stop(), 0);
  std::vector<std::string> files;
  for (const std::string& dir : {daemon->stateDir(), daemon->dir() + "/cache", daemon->dir() + "/run"}) regularFiles(dir, files);
  ASSERT_TRUE(std::find(files.begin(), files.end(), daemon->stateDir() + "/data.mdb") != files.end());
  for (const auto& file : files) EXPECT_EQ(holdsAPassword(slurp(file)), "") << file << " holds a password";
}

// ---- 4. reveal ----

TEST_F(Secrets, RevealPrintsExactlyThePasswordToRootIsRefusedToOthersAndIsLogged) {
  daemon->start();
  const std::string password = "pw-REVEAL-" + randomHex(8) + " with spaces";
  const std::string path = resticRepository("imported", password);
  importRepository("imp", path, password);
  createRepository("gen");

  size_t before = daemon->log().size();
  CommandResult r = reveal("imp");
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(r.out, password + "\n");
  std::string revealLog = daemon->log().substr(before);
  const std::regex rootUid(R"(uid[ =:]*0\b)");
  bool logged = false;
  for (const auto& line : linesOf(revealLog))
    if (contains(line, "imp") && std::regex_search(line, rootUid)) logged = true;
  EXPECT_TRUE(logged) << "no log line names the repository and uid 0:\n" << revealLog;
  EXPECT_FALSE(contains(revealLog, password)) << "the log holds the revealed password";

  // A generated password: 256 bits as hex, and it is the one restic opens the repository with.
  const std::string generated = revealed("gen");
  EXPECT_TRUE(std::regex_match(generated, std::regex("[0-9a-f]{64}"))) << generated;
  EXPECT_TRUE(resticOpens(daemon->dir() + "/repo-gen", generated));
  EXPECT_FALSE(resticOpens(daemon->dir() + "/repo-gen", generated + "x"));

  before = daemon->log().size();
  // A user without a role does not even see root's repository: refused as if it did not exist.
  CommandResult denied = reveal("imp", kNobody);
  EXPECT_EQ(denied.exitCode, zerobyte::errorInfo(zerobyte::ErrorCode::NotFound).exitCode) << describe(denied);
  EXPECT_EQ(denied.err.rfind("NotFound:", 0), 0u) << describe(denied);
  EXPECT_EQ(denied.out, "");
  EXPECT_FALSE(contains(denied.err, password));
  std::string deniedLog = daemon->log().substr(before);
  EXPECT_TRUE(contains(deniedLog, std::to_string(uidOf(kNobody)))) << "the refusal is not logged with the uid:\n" << deniedLog;

  // Where the master key comes from is for administrators only.
  json rootStatus = status();
  ASSERT_TRUE(rootStatus.contains("master_key")) << rootStatus.dump();
  EXPECT_TRUE(rootStatus.at("master_key").is_object()) << rootStatus.dump();
  json nobodyStatus = status(kNobody);
  EXPECT_TRUE(!nobodyStatus.contains("master_key") || nobodyStatus.at("master_key").is_null()) << nobodyStatus.dump();

  // An unknown repository.
  CommandResult missing = reveal("no-such-repository");
  EXPECT_EQ(missing.exitCode, zerobyte::errorInfo(zerobyte::ErrorCode::NotFound).exitCode) << describe(missing);
  EXPECT_EQ(missing.out, "");
}

// ---- 5. master key rotation ----

TEST_F(Secrets, RotationResealsAHundredRepositoriesAndReplacesTheKeyFile) {
  auto testStarted = Clock::now();
  daemon->start();
  const std::string password = "pw-ROTATE-" + randomHex(8);
  importMany(kRotationRepositories, resticRepository("shared", password), password);

  const std::string oldKey = slurp(masterKeyPath());
  ASSERT_EQ(oldKey.size(), 32u);
  CommandResult rotate = daemon->ctl({"secrets", "rotate-master-key"});
  ASSERT_EQ(rotate.exitCode, 0) << describe(rotate);
  const std::string newKey = slurp(masterKeyPath());
  EXPECT_EQ(newKey.size(), 32u);
  EXPECT_NE(newKey, oldKey) << "master.key is unchanged after a rotation";
  EXPECT_EQ(permissionsOf(masterKeyPath()), 0600u);
  EXPECT_FALSE(exists(newMasterKeyPath())) << "master.key.new is left behind";
  EXPECT_TRUE(keyIdIs(status().at("master_key").at("key_id"), newKey));
  EXPECT_FALSE(contains(daemon->log(), hex(newKey)));
  EXPECT_EQ(revealMismatches(kRotationRepositories, password), 0u);

  // Every stored secret carries the new key: a restart with only the new key opens all of them.
  ASSERT_EQ(daemon->stop(), 0);
  {
    zerobyte::store::Store store(daemon->stateDir());
    auto repositories = store.repositories();
    ASSERT_EQ(repositories.size(), kRotationRepositories);
    const std::string newDigest = sha256(newKey);
    const uint32_t newKeyId = (uint32_t{static_cast<unsigned char>(newDigest[0])} << 24) | (uint32_t{static_cast<unsigned char>(newDigest[1])} << 16) |
                              (uint32_t{static_cast<unsigned char>(newDigest[2])} << 8) | uint32_t{static_cast<unsigned char>(newDigest[3])};
    size_t resealed = 0;
    for (const auto& repository : repositories) resealed += repository.password.keyId == newKeyId ? 1 : 0;
    EXPECT_EQ(resealed, kRotationRepositories) << "not every stored secret carries the new key id";
  }
  daemon->start();
  EXPECT_EQ(revealMismatches(kRotationRepositories, password), 0u);

  // A key the administrator supplies: it becomes master.key.
  const std::string supplied = randomBytes(32);
  const std::string suppliedFile = inputs + "/supplied.key";
  writeBytes(suppliedFile, supplied);
  rotate = daemon->ctl({"secrets", "rotate-master-key", "--new-key-file", suppliedFile});
  ASSERT_EQ(rotate.exitCode, 0) << describe(rotate);
  EXPECT_EQ(slurp(masterKeyPath()), supplied);
  EXPECT_FALSE(exists(newMasterKeyPath()));
  EXPECT_TRUE(keyIdIs(status().at("master_key").at("key_id"), supplied));
  EXPECT_EQ(revealMismatches(kRotationRepositories, password), 0u);

  // Only root and administrators rotate.
  CommandResult denied = daemon->ctl({"secrets", "rotate-master-key"}, "", kNobody);
  EXPECT_EQ(denied.exitCode, kNotAuthorizedExit) << describe(denied);
  EXPECT_EQ(slurp(masterKeyPath()), supplied);

  auto seconds = std::chrono::duration<double>(Clock::now() - testStarted).count();
  std::cout << "[ info ] rotation test took " << seconds << " s" << std::endl;
}

TEST_F(Secrets, RotationKilledAtAnyMomentLeavesEveryRepositoryReadable) {
  daemon->start();
  const std::string password = "pw-CRASH-" + randomHex(8);
  importMany(kRotationRepositories, resticRepository("shared", password), password);

  std::mt19937 random(std::random_device{}());
  int completedBeforeKill = 0, keyChanged = 0, keyFileNewSeen = 0;
  for (int round = 0; round < kRotationCrashes; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string keyBefore = slurp(masterKeyPath());
    auto rotation = ctlInBackground({"secrets", "rotate-master-key"});
    if (round % 2 == 0) {
      // A random moment in the first 150 ms: before, during or after the request.
      sleepMs(std::uniform_int_distribution<int>(0, 150)(random));
    } else {
      // The moment the new key file appears: between the steps of the rotation.
      auto deadline = Clock::now() + std::chrono::seconds(5);
      while (Clock::now() < deadline && !exists(newMasterKeyPath()) && !rotation->poll()) std::this_thread::sleep_for(std::chrono::microseconds(100));
      if (exists(newMasterKeyPath())) ++keyFileNewSeen;
      std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 3000)(random)));
    }
    ASSERT_EQ(::kill(daemon->pid(), SIGKILL), 0);
    CommandResult rotated = rotation->wait(30000);
    daemon->kill9();
    bool completed = rotated.exitCode == 0;
    completedBeforeKill += completed ? 1 : 0;

    daemon->start();
    const std::string keyAfter = slurp(masterKeyPath());
    EXPECT_EQ(keyAfter.size(), 32u);
    EXPECT_EQ(permissionsOf(masterKeyPath()), 0600u);
    if (completed) {
      EXPECT_NE(keyAfter, keyBefore) << "zerobytectl reported a rotation that did not survive the crash";
    }
    keyChanged += keyAfter != keyBefore ? 1 : 0;
    EXPECT_FALSE(exists(newMasterKeyPath())) << "master.key.new is still there after the restart";
    ASSERT_EQ(revealMismatches(kRotationRepositories, password), 0u);
    ASSERT_EQ(daemon->ctlJson({"repo", "list"}).at("repositories").size(), kRotationRepositories);
    for (size_t i = static_cast<size_t>(round) % 10; i < kRotationRepositories; i += 10) {
      CommandResult show = daemon->ctl({"repo", "show", manyName(i)});
      EXPECT_EQ(show.exitCode, 0) << describe(show);
    }
  }
  std::cout << "[ info ] " << kRotationCrashes << " kills: " << completedBeforeKill << " after the rotation had answered, " << keyChanged
            << " with a new key afterwards, " << keyFileNewSeen << " while master.key.new existed" << std::endl;

  createVolume();
  json job = backup(manyName(kRotationRepositories - 1));
  EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();
}

// ---- 6. change-password ----

TEST_F(Secrets, ChangePasswordMakesTheNewPasswordTheOnlyOneThatOpens) {
  daemon->start();
  const std::string oldPassword = "pw-OLD-" + randomHex(8);
  const std::string path = resticRepository("changing", oldPassword);
  importRepository("chg", path, oldPassword);

  CommandResult changed = daemon->ctl({"repo", "change-password", "chg", "--follow"});
  ASSERT_EQ(changed.exitCode, 0) << describe(changed);
  const std::string newPassword = revealed("chg");
  ASSERT_FALSE(newPassword.empty());
  EXPECT_NE(newPassword, oldPassword);
  EXPECT_TRUE(resticOpens(path, newPassword)) << "the repository does not open with the new password";
  EXPECT_FALSE(resticOpens(path, oldPassword)) << "the old password still opens the repository";
  EXPECT_FALSE(contains(changed.out + changed.err + daemon->log(), newPassword));

  bool jobRecorded = false;
  const json jobs = daemon->ctlJson({"job", "list"}).at("jobs");
  for (const auto& job : jobs)
    if (job.value("operation", "") == "change-password") {
      jobRecorded = true;
      EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();
    }
  EXPECT_TRUE(jobRecorded) << "no change-password job in the list: " << jobs.dump();

  createVolume();
  json job = backup("chg");
  EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();
  ASSERT_EQ(daemon->stop(), 0);
  daemon->start();
  EXPECT_EQ(revealed("chg"), newPassword);
}

TEST_F(Secrets, ChangePasswordKilledAtAnyMomentAlwaysLeavesTheRevealedPasswordWorking) {
  daemon->start();
  const std::string firstPassword = "pw-FIRST-" + randomHex(8);
  const std::string path = resticRepository("changing", firstPassword);
  importRepository("chg", path, firstPassword);

  // How long one change takes here, to spread the kills over all of it.
  auto started = Clock::now();
  CommandResult first = daemon->ctl({"repo", "change-password", "chg", "--follow"});
  ASSERT_EQ(first.exitCode, 0) << describe(first);
  const int durationMs = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
  std::cout << "[ info ] one change-password took " << durationMs << " ms" << std::endl;

  std::mt19937 random(std::random_device{}());
  std::set<std::string> passwordsSeen = {firstPassword, revealed("chg")};
  int completedBeforeKill = 0;
  for (int round = 0; round < kChangePasswordCrashes; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto change = ctlInBackground({"repo", "change-password", "chg", "--follow"});
    sleepMs(std::uniform_int_distribution<int>(0, durationMs * 11 / 10)(random));
    ASSERT_EQ(::kill(daemon->pid(), SIGKILL), 0);
    CommandResult result = change->wait(30000);
    daemon->kill9();
    completedBeforeKill += result.exitCode == 0 ? 1 : 0;

    daemon->start();
    waitUntilNoJobIsActive();
    const std::string current = revealed("chg");
    ASSERT_FALSE(current.empty());
    EXPECT_TRUE(resticOpens(path, current)) << "the repository does not open with the password zerobyted reveals";
    passwordsSeen.insert(current);
  }
  std::cout << "[ info ] " << kChangePasswordCrashes << " kills: " << completedBeforeKill << " after the change had finished, "
            << passwordsSeen.size() << " distinct passwords seen" << std::endl;

  // Afterwards the repository is fully usable: a clean change works and leaves only its password.
  const std::string before = revealed("chg");
  CommandResult last = daemon->ctl({"repo", "change-password", "chg", "--follow"});
  ASSERT_EQ(last.exitCode, 0) << describe(last);
  const std::string after = revealed("chg");
  EXPECT_NE(after, before);
  EXPECT_TRUE(resticOpens(path, after));
  EXPECT_FALSE(resticOpens(path, before));
  createVolume();
  json job = backup("chg");
  EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();
}

// ---- 7. zerobytectl never takes a secret as an argument ----

TEST_F(Secrets, ZerobytectlTakesSecretsFromFilesOrStdinNeverFromTheCommandLine) {
  daemon->start();
  // An option named --password, --new-password, --key or --new-key would put a secret in argv (ps, /proc, shell history).
  const std::regex secretOption(R"(--(new-)?(password|key|secret)(?![-\w]))");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"repo", "import", "--help"}, {"repo", "change-password", "--help"}, {"repo", "password", "--help"},
           {"secrets", "rotate-master-key", "--help"}}) {
    CommandResult help = daemon->ctl(args);
    SCOPED_TRACE(args[0] + " " + args[1]);
    EXPECT_EQ(help.exitCode, 0) << describe(help);
    EXPECT_FALSE(std::regex_search(help.out, secretOption)) << help.out;
  }
  EXPECT_TRUE(contains(daemon->ctl({"repo", "import", "--help"}).out, "--password-file"));
  const std::string rotateHelp = daemon->ctl({"secrets", "rotate-master-key", "--help"}).out;
  EXPECT_TRUE(contains(rotateHelp, "--new-key-file")) << rotateHelp;
  EXPECT_TRUE(contains(rotateHelp, "--from-credential")) << rotateHelp;

  const std::string password = "pw-STDIN-" + randomHex(8);
  const std::string path = resticRepository("piped", password);
  CommandResult onCommandLine = daemon->ctl({"repo", "import", "argv", "--path", path, "--password", password});
  EXPECT_EQ(onCommandLine.exitCode, 2) << "a --password value must be a usage error: " << describe(onCommandLine);
  EXPECT_EQ(daemon->ctlJson({"repo", "list"}).at("repositories").size(), 0u);

  // No file: the password comes from stdin (a pipe here, so no prompt).
  CommandResult piped = daemon->ctl({"repo", "import", "piped", "--path", path}, password + "\n");
  ASSERT_EQ(piped.exitCode, 0) << describe(piped);
  EXPECT_EQ(revealed("piped"), password);
  CommandResult dash = daemon->ctl({"repo", "import", "dash", "--path", path, "--password-file", "-"}, password);
  ASSERT_EQ(dash.exitCode, 0) << describe(dash);
  EXPECT_EQ(revealed("dash"), password);
}

}  // namespace
}  // namespace zbtest
