// Credential files of helpers and restic children (daemon/mount/secret_files): made 0600 and never through a
// symlink, wiped on removal, and a child's own log read back only when it is the child's regular file.
#include "daemon/mount/secret_files.h"

#include "common/errors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using zerobyte::mount::readChildLog;
using zerobyte::mount::removeSecretDirectory;
using zerobyte::mount::writeSecretFile;

namespace {

constexpr uid_t kNobody = 65534;

class SecretFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "zbsecretfiles-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir = pattern;
  }
  void TearDown() override { fs::remove_all(dir); }
  void write(const std::string& name, const std::string& content) { std::ofstream(dir + "/" + name) << content; }
  std::string dir;
};

TEST_F(SecretFiles, AreMadeForTheirOwnerReadableByNobodyElseAndNeverThroughASymlink) {
  writeSecretFile(dir + "/id", "key\n", kNobody, kNobody);
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/id").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kNobody);
  write("target", "untouched");
  fs::create_symlink(dir + "/target", dir + "/link");
  EXPECT_THROW(writeSecretFile(dir + "/link", "secret"), zerobyte::Error);
  EXPECT_THROW(writeSecretFile(dir + "/id", "again"), zerobyte::Error) << "an existing file is never reused";
  std::ifstream in(dir + "/target");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "untouched");
}

TEST_F(SecretFiles, RemovingTheDirectoryWipesTheFilesAndLeavesASymlinksTargetAlone) {
  const std::string inner = dir + "/cred";
  fs::create_directory(inner);
  writeSecretFile(inner + "/id", "key\n");
  write("outside", "keep me");
  fs::create_symlink(dir + "/outside", inner + "/link");
  removeSecretDirectory(inner);
  EXPECT_FALSE(fs::exists(inner));
  std::ifstream in(dir + "/outside");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "keep me");
}

TEST_F(SecretFiles, AChildsLogIsReadAsLinesOnlyWhenItIsTheChildsOwnRegularFile) {
  writeSecretFile(dir + "/ssh.log", "", kNobody, kNobody);
  {
    std::ofstream out(dir + "/ssh.log", std::ios::app);
    out << "Host key verification failed.\r\n\nsecond line\n";
  }
  EXPECT_EQ(readChildLog(dir + "/ssh.log", kNobody), (std::vector<std::string>{"Host key verification failed.", "second line"}));
  EXPECT_TRUE(readChildLog(dir + "/ssh.log", 0).empty()) << "owned by somebody else than the child's user";
  EXPECT_TRUE(readChildLog(dir + "/missing.log", kNobody).empty());

  // The child's user owns the directory and could swap the log for a link to a file only root may read.
  write("shadow", "root:secret\n");
  ASSERT_EQ(::chown((dir + "/shadow").c_str(), kNobody, kNobody), 0);
  fs::create_symlink(dir + "/shadow", dir + "/swapped.log");
  EXPECT_TRUE(readChildLog(dir + "/swapped.log", kNobody).empty());
  fs::create_directory(dir + "/dir.log");
  ASSERT_EQ(::chown((dir + "/dir.log").c_str(), kNobody, kNobody), 0);
  EXPECT_TRUE(readChildLog(dir + "/dir.log", kNobody).empty());
}

TEST_F(SecretFiles, OnlyTheEndOfALongLogIsReadWithoutItsCutFirstLine) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "debug line " + std::to_string(i) + "\n";
  text += "Permission denied (publickey).\n";
  write("ssh.log", text);
  const auto lines = readChildLog(dir + "/ssh.log", ::geteuid(), 200);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "Permission denied (publickey).");
  EXPECT_LT(lines.size(), 20u);
  // A line cut by the limit is dropped: every line is whole.
  for (const auto& line : lines) EXPECT_TRUE(line.rfind("debug line ", 0) == 0 || line == lines.back()) << line;
}

}  // namespace
