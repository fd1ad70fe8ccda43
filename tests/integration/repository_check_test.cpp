// Integration tests of `zerobytectl repo check`: a full restic check, a connection check, damage found,
// and password references that do not resolve named in the failure.
#include "tests/integration/harness.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

using nlohmann::json;
using zbtest::CommandResult;
using zbtest::contains;
using zbtest::describe;
using zbtest::Daemon;
namespace fs = std::filesystem;



// A restic repository made with restic itself and a password in a root-only file.
void makeResticRepository(const std::string& path, const std::string& passwordFile) {
  {
    std::ofstream out(passwordFile);
    out << "check-test-password\n";
  }
  ASSERT_EQ(::chmod(passwordFile.c_str(), 0600), 0);
  CommandResult init = zbtest::run({"/usr/bin/restic", "init", "--repo", path, "--password-file", passwordFile});
  ASSERT_EQ(init.exitCode, 0) << describe(init);
}

TEST(RepositoryCheck, HealthyRepositoryPassesTheFullAndTheConnectionCheck) {
  Daemon daemon;
  daemon.start();
  ASSERT_EQ(daemon.ctl({"repo", "create", "main", "--path", daemon.dir() + "/repository"}).exitCode, 0);

  CommandResult connection = daemon.ctl({"repo", "check", "main", "--connection"});
  EXPECT_EQ(connection.exitCode, 0) << describe(connection);
  EXPECT_TRUE(contains(connection.out, "opens with its password")) << describe(connection);

  CommandResult full = daemon.ctl({"repo", "check", "main", "--json"});
  ASSERT_EQ(full.exitCode, 0) << describe(full);
  json job = json::parse(full.out).at("job");
  EXPECT_EQ(job.at("operation"), "check");
  EXPECT_EQ(job.at("state"), "succeeded");
  EXPECT_TRUE(contains(job.at("message").get<std::string>(), "no errors")) << job.dump();
}

TEST(RepositoryCheck, DamagedRepositoryFailsTheFullCheckWithResticsFinding) {
  Daemon daemon;
  daemon.start();
  const std::string data = daemon.dir() + "/data", repository = daemon.dir() + "/repository";
  fs::create_directories(data);
  // Incompressible, so the data pack is the largest file of the repository.
  zbtest::makeRandomFiles(data, 1, 200000, 7);
  ASSERT_EQ(daemon.ctl({"volume", "create", "data", "--path", data}).exitCode, 0);
  ASSERT_EQ(daemon.ctl({"repo", "create", "main", "--path", repository}).exitCode, 0);
  ASSERT_EQ(daemon.ctl({"backup", "data", "--repo", "main", "--follow"}).exitCode, 0);
  // Truncate the largest pack (the file's data): restic check finds the size mismatch at once.
  fs::path largest;
  uintmax_t largestSize = 0;
  for (const auto& entry : fs::recursive_directory_iterator(repository + "/data"))
    if (entry.is_regular_file() && entry.file_size() > largestSize) largestSize = entry.file_size(), largest = entry.path();
  ASSERT_GT(largestSize, 100u);
  fs::permissions(largest, fs::perms::owner_write, fs::perm_options::add);
  fs::resize_file(largest, 100);

  CommandResult connection = daemon.ctl({"repo", "check", "main", "--connection"});
  EXPECT_EQ(connection.exitCode, 0) << "the repository still opens: " << describe(connection);
  CommandResult full = daemon.ctl({"repo", "check", "main"});
  EXPECT_EQ(full.exitCode, 1) << describe(full);
  EXPECT_TRUE(contains(full.err, "repository contains errors")) << describe(full);
  CommandResult log = daemon.ctl({"job", "log", json::parse(daemon.ctl({"job", "list", "--limit", "1", "--json"}).out).at("jobs").at(0).at("id").dump()});
  EXPECT_TRUE(contains(log.out, "unexpected file size")) << describe(log);
}

TEST(RepositoryCheck, UnresolvedPasswordReferencesAreNamedByTheCheckAndByTheJob) {
  Daemon::Options options;
  options.extraConfig =
      "repositories:\n"
      "  - name: from-env\n"
      "    path: /nonexistent/env-repo\n"
      "    password: env://ZBTEST_UNSET_PASSWORD\n"
      "  - name: from-file\n"
      "    path: /nonexistent/file-repo\n"
      "    password: file:///nonexistent/zbtest-password\n"
      "  - name: from-credential\n"
      "    path: /nonexistent/credential-repo\n"
      "    password: credential://zbtest-missing\n";
  Daemon daemon(options);
  daemon.start();
  for (const auto& [name, reference] : {std::pair<std::string, std::string>{"from-env", "env://ZBTEST_UNSET_PASSWORD"},
                                        {"from-file", "file:///nonexistent/zbtest-password"},
                                        {"from-credential", "credential://zbtest-missing"}}) {
    CommandResult check = daemon.ctl({"repo", "check", name, "--connection"});
    EXPECT_EQ(check.exitCode, 9) << name << ": " << describe(check);  // SecretUnavailable
    EXPECT_TRUE(contains(check.err, reference)) << name << ": " << describe(check);
    CommandResult show = daemon.ctl({"repo", "show", name, "--json"});
    ASSERT_EQ(show.exitCode, 0) << describe(show);
    // The record keeps the reference, not a value.
    EXPECT_EQ(json::parse(show.out).at("repository").at("password").at("source"), reference);
  }
}

TEST(RepositoryCheck, ReferenceResolvedAtUseSoChangingTheFileNeedsNoChangeInZerobyte) {
  const std::string dir = fs::temp_directory_path() / ("zbtest-ref-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string repository = dir + "/repository", passwordFile = dir + "/password";
  makeResticRepository(repository, passwordFile);

  Daemon::Options options;
  options.extraConfig = "repositories:\n  - name: referenced\n    path: " + repository + "\n    password: file://" + passwordFile + "\n";
  Daemon daemon(options);
  daemon.start();
  EXPECT_EQ(daemon.ctl({"repo", "check", "referenced", "--connection"}).exitCode, 0);

  // The secret rotates outside zerobyte: restic gets a new key, the file the new password.
  const std::string newPasswordFile = dir + "/new-password";
  {
    std::ofstream(newPasswordFile) << "rotated-outside\n";
  }
  ASSERT_EQ(::chmod(newPasswordFile.c_str(), 0600), 0);
  CommandResult add = zbtest::run({"/usr/bin/restic", "key", "add", "--repo", repository, "--password-file", passwordFile,
                                   "--new-password-file", newPasswordFile});
  ASSERT_EQ(add.exitCode, 0) << describe(add);
  fs::rename(newPasswordFile, passwordFile);
  CommandResult afterRotation = daemon.ctl({"repo", "check", "referenced", "--connection"});
  EXPECT_EQ(afterRotation.exitCode, 0) << describe(afterRotation);

  // A wrong password in the file is reported as such.
  {
    std::ofstream(passwordFile, std::ios::trunc) << "not-the-password\n";
  }
  CommandResult wrong = daemon.ctl({"repo", "check", "referenced", "--connection"});
  EXPECT_EQ(wrong.exitCode, 9) << describe(wrong);
  EXPECT_TRUE(contains(wrong.err, "password is wrong")) << describe(wrong);
  fs::remove_all(dir);
}

}  // namespace
