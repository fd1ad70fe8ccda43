// restic's keys: the argv of key list/add/remove, parsing `key list --json` (recorded 0.14 output), and the
// whole password change done by hand with the real /usr/bin/restic through ProcessRunner (two secret fds).
#include "common/errors.h"
#include "daemon/loop/event_loop.h"
#include "daemon/process/process_runner.h"
#include "daemon/restic/restic.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace zerobyte::restic {
namespace {

using namespace std::chrono_literals;
using zbtest::unit::readTestData;
using zbtest::unit::TemporaryDirectory;
using zbtest::unit::thrownError;

const std::string kRestic = std::getenv("ZB_TEST_RESTIC") ? std::getenv("ZB_TEST_RESTIC") : "/usr/bin/restic";

RepositoryContext context() { return RepositoryContext{"/usr/bin/restic", "/srv/backups/main", "/var/cache/zerobyte/r1", 3, 0, {}, {}}; }

// ---- argv ----

TEST(ResticKeyArgs, ListReadsWithoutALockAsJson) {
  EXPECT_EQ(keyListArgs(context()),
            (std::vector<std::string>{"/usr/bin/restic", "key", "list", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                      "/srv/backups/main", "--no-lock", "--json"}));
}

TEST(ResticKeyArgs, AddReadsTheNewPasswordFromTheGivenFd) {
  EXPECT_EQ(keyAddArgs(context(), 4),
            (std::vector<std::string>{"/usr/bin/restic", "key", "add", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                      "/srv/backups/main", "--new-password-file", "/dev/fd/4"}));
}

TEST(ResticKeyArgs, RemoveTakesOnlyAHexKeyIdAfterDoubleDash) {
  EXPECT_EQ(keyRemoveArgs(context(), "3ea9525f"),
            (std::vector<std::string>{"/usr/bin/restic", "key", "remove", "--cache-dir", "/var/cache/zerobyte/r1", "--repo",
                                      "/srv/backups/main", "--", "3ea9525f"}));
  for (const std::string& bad : std::vector<std::string>{"", "3ea9525", "--remove-all", "3EA9525F", "3ea9525f/../x", std::string(65, 'a')})
    EXPECT_EQ(thrownError([&] { keyRemoveArgs(context(), bad); }).code(), ErrorCode::InvalidArgument) << bad;
}

// ---- key list --json ----

TEST(ResticKeyList, ReadsTheRecordedListAndFindsTheCurrentKey) {
  auto keys = parseKeyList(readTestData("restic-0.14/key-list.json"));
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].id, "8a8911f6");
  EXPECT_TRUE(keys[0].current);
  EXPECT_EQ(keys[0].userName, "root");
  EXPECT_EQ(keys[0].hostName, "vm");
  EXPECT_EQ(keys[0].created, "2026-11-22 07:24:48");
  EXPECT_EQ(keys[1].id, "b38471c9");
  EXPECT_FALSE(keys[1].current);
  EXPECT_EQ(currentKeyId(keys), "8a8911f6");
}

TEST(ResticKeyList, NoEntryMarkedCurrentGivesNoCurrentKey) {
  auto keys = parseKeyList(R"([{"current":false,"id":"b38471c9"},{"id":"0123abcd"}])");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_FALSE(currentKeyId(keys));
  EXPECT_FALSE(currentKeyId({}));
}

TEST(ResticKeyList, MalformedOutputIsAFailureNamingTheProblem) {
  for (const char* bad : {"", "Fatal: wrong password or no key found", "{\"id\":\"b38471c9\"}", "[1]",
                          "[{\"current\":true}]", "[{\"current\":true,\"id\":\"--all\"}]", "[{\"current\":true,\"id\":7}]"}) {
    auto error = thrownError([&] { parseKeyList(bad); });
    EXPECT_EQ(error.code(), ErrorCode::Failed) << bad;
    EXPECT_NE(std::string(error.what()).find("key list"), std::string::npos) << error.what();
  }
}

// ---- the real restic ----

class ResticKeysWithRealRestic : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { loop::blockSignals(); }

  void SetUp() override {
    if (::access(kRestic.c_str(), X_OK) != 0) GTEST_SKIP() << kRestic << " is not installed";
    m_ctx = RepositoryContext{kRestic, (m_dir.path() / "repo").string(), (m_dir.path() / "cache").string(), 3, 0, {}, {}};
  }

  struct Run {
    int exitCode = -1;
    std::string out;
    std::string err;
  };

  // restic through ProcessRunner, the password on fd 3 and optionally a second secret on fd 4.
  Run run(std::vector<std::string> argv, const std::string& password, std::optional<std::string> second = std::nullopt) {
    process::ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.env = environment(m_ctx, m_dir.path().string(), m_dir.path().string());
    spec.secret = password;
    spec.secretFd = 3;
    if (second) spec.secrets.emplace_back(4, *second);
    auto result = std::make_shared<Run>();
    auto done = std::make_shared<bool>(false);
    process::ProcessCallbacks callbacks;
    callbacks.onStdoutLine = [result](std::string_view line) { result->out.append(line).push_back('\n'); };
    callbacks.onStderrLine = [result](std::string_view line) { result->err.append(line).push_back('\n'); };
    callbacks.onExit = [result, done](const process::ProcessResult& r) {
      result->exitCode = r.signal ? 128 + r.signal : r.exitCode;
      *done = true;
    };
    m_runner.start(std::move(spec), std::move(callbacks));
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!*done && std::chrono::steady_clock::now() < deadline) sd_event_run(m_loop.get(), 100000);
    EXPECT_TRUE(*done) << "restic did not finish in time";
    return *result;
  }

  loop::EventLoop m_loop;
  process::ProcessRunner m_runner{m_loop};
  TemporaryDirectory m_dir{"zerobyte-restic-keys"};
  RepositoryContext m_ctx;
};

TEST_F(ResticKeysWithRealRestic, AddWithTheSecondFdThenRemoveTheOldKeyLeavesOnlyTheNewPassword) {
  const std::string oldPassword = "old password with spaces", newPassword = "the-new-password-0123456789abcdef";
  Run init = run(initArgs(m_ctx), oldPassword);
  ASSERT_EQ(init.exitCode, 0) << init.err;

  Run list = run(keyListArgs(m_ctx), oldPassword);
  ASSERT_EQ(list.exitCode, 0) << list.err;
  auto keys = parseKeyList(list.out);
  ASSERT_EQ(keys.size(), 1u);
  const auto oldKey = currentKeyId(keys);
  ASSERT_TRUE(oldKey);

  Run add = run(keyAddArgs(m_ctx, 4), oldPassword, newPassword);
  ASSERT_EQ(add.exitCode, 0) << add.err;
  EXPECT_EQ(run(catConfigArgs(m_ctx), newPassword).exitCode, 0) << "the new password does not open the repository";

  Run both = run(keyListArgs(m_ctx), newPassword);
  ASSERT_EQ(both.exitCode, 0) << both.err;
  auto twoKeys = parseKeyList(both.out);
  ASSERT_EQ(twoKeys.size(), 2u);
  ASSERT_TRUE(currentKeyId(twoKeys));
  EXPECT_NE(*currentKeyId(twoKeys), *oldKey) << "the new password opened the old key";

  Run remove = run(keyRemoveArgs(m_ctx, *oldKey), newPassword);
  ASSERT_EQ(remove.exitCode, 0) << remove.err;
  Run refused = run(catConfigArgs(m_ctx), oldPassword);
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_EQ(classifyFailure(refused.exitCode, refused.err, "r").code(), ErrorCode::WrongPassword) << refused.err;
  auto left = parseKeyList(run(keyListArgs(m_ctx), newPassword).out);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(left[0].current);
}

TEST_F(ResticKeysWithRealRestic, TheKeyInUseCannotBeRemoved) {
  const std::string password = "only-password";
  ASSERT_EQ(run(initArgs(m_ctx), password).exitCode, 0);
  auto key = currentKeyId(parseKeyList(run(keyListArgs(m_ctx), password).out));
  ASSERT_TRUE(key);
  Run remove = run(keyRemoveArgs(m_ctx, *key), password);
  EXPECT_NE(remove.exitCode, 0);
  EXPECT_EQ(run(catConfigArgs(m_ctx), password).exitCode, 0) << "the repository lost its only key";
}

}  // namespace
}  // namespace zerobyte::restic
