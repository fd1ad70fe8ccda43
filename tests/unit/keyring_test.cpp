// The keyring with real OpenSSL, real files and real mappings: several master keys in the vault, key memory
// kept out of dumps, the master key's sources (credential, state file, key file) and the rotation's key files.
#include "daemon/secrets/key_material.h"
#include "daemon/secrets/master_key.h"
#include "daemon/secrets/vault.h"

#include "common/errors.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace zerobyte::secrets {
namespace {

namespace fs = std::filesystem;
using zbtest::unit::contains;
using zbtest::unit::readFile;
using zbtest::unit::ScopedEnvironment;
using zbtest::unit::TemporaryDirectory;
using zbtest::unit::thrownError;
using zbtest::unit::writeFile;

std::string sha256(const std::string& data) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

MasterKey keyOf(char fill, std::string source = "test") {
  MasterKey key;
  key.key = SecretString(std::string(32, fill));
  key.keyId = keyIdOf(key.key.value());
  key.source = std::move(source);
  return key;
}

// The VmFlags of the mapping that holds `address`, from /proc/self/smaps ("rd mr mw me dd wf lo ...").
std::string vmFlagsOf(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(address);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long start = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (header >> std::hex >> start >> dash >> end && dash == '-' && line.find(':') > line.find(' ')) {
      inside = at >= start && at < end;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line.substr(8) + " ";
  }
  return "";
}

// ---- the keyring ----

TEST(Keyring, OpenPicksTheKeyTheCiphertextNamesAndSealUsesTheCurrentOne) {
  Vault vault(keyOf('a'));
  const auto underA = vault.seal("sealed under a", "repositories/r1");
  vault.addKey(keyOf('b'));
  EXPECT_EQ(vault.keyId(), keyOf('a').keyId) << "adding a key must not change the current one";
  const auto stillA = vault.seal("still a", "repositories/r2");
  EXPECT_EQ(stillA.keyId, keyOf('a').keyId);
  const auto underB = vault.seal("sealed under b", "repositories/r3", keyOf('b').keyId);
  EXPECT_EQ(underB.keyId, keyOf('b').keyId);

  vault.makeCurrent(keyOf('b').keyId);
  EXPECT_EQ(vault.seal("now b", "repositories/r4").keyId, keyOf('b').keyId);
  EXPECT_EQ(vault.open(underA, "repositories/r1").value(), "sealed under a");
  EXPECT_EQ(vault.open(underB, "repositories/r3").value(), "sealed under b");
  EXPECT_EQ(vault.keyIds().size(), 2u);
}

TEST(Keyring, ARemovedKeyOpensNothingAndTheMessageNamesRecordAndKeys) {
  Vault vault(keyOf('a', "state-file:/var/lib/zerobyte/master.key"));
  vault.addKey(keyOf('b', "credential zerobyte.master-key"));
  const auto underB = vault.seal("pw", "repositories/r9", keyOf('b').keyId);
  vault.removeKey(keyOf('b').keyId);
  EXPECT_FALSE(vault.hasKey(keyOf('b').keyId));
  auto error = thrownError([&] { vault.open(underB, "repositories/r9"); });
  EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable);
  EXPECT_TRUE(contains(error.what(), "repositories/r9")) << error.what();
  EXPECT_TRUE(contains(error.what(), hexKeyId(keyOf('b').keyId))) << error.what();
  EXPECT_TRUE(contains(error.what(), "state-file:/var/lib/zerobyte/master.key")) << error.what();
}

TEST(Keyring, TheCurrentKeyCannotBeRemovedAndAnUnknownOneCannotBecomeCurrent) {
  Vault vault(keyOf('a'));
  EXPECT_EQ(thrownError([&] { vault.removeKey(vault.keyId()); }).code(), ErrorCode::Internal);
  EXPECT_EQ(thrownError([&] { vault.makeCurrent(keyOf('z').keyId); }).code(), ErrorCode::Internal);
  EXPECT_EQ(thrownError([&] { vault.seal("x", "repositories/r1", keyOf('z').keyId); }).code(), ErrorCode::Internal);
  EXPECT_EQ(vault.seal("x", "repositories/r1").keyId, keyOf('a').keyId);
}

TEST(Keyring, TwoKeysWithOneIdAreRefused) {
  Vault vault(keyOf('a', "first"));
  MasterKey impostor = keyOf('b', "second");
  impostor.keyId = vault.keyId();
  auto error = thrownError([&] { vault.addKey(std::move(impostor)); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "first")) << error.what();
}

TEST(Keyring, SourceAndCredentialFollowTheCurrentKey) {
  MasterKey credential = keyOf('c', "credential zerobyte.master-key.2");
  credential.credential = "zerobyte.master-key.2";
  Vault vault(keyOf('a', "state-file:/x/master.key"));
  EXPECT_EQ(vault.credential(), "");
  vault.addKey(std::move(credential));
  EXPECT_EQ(vault.source(), "state-file:/x/master.key");
  vault.makeCurrent(keyOf('c').keyId);
  EXPECT_EQ(vault.source(), "credential zerobyte.master-key.2");
  EXPECT_EQ(vault.credential(), "zerobyte.master-key.2");
}

// ---- key memory ----

TEST(KeyMaterial, KeyBytesLiveInAMappingExcludedFromDumpsAndChildren) {
  const std::string bytes(32, 'k');
  KeyMaterial material(bytes);
  EXPECT_EQ(material.view(), bytes);
  const std::string flags = vmFlagsOf(material.data());
  ASSERT_FALSE(flags.empty()) << "no mapping in /proc/self/smaps holds the key";
  EXPECT_TRUE(contains(flags, " dd ")) << "not MADV_DONTDUMP: " << flags;
  EXPECT_TRUE(contains(flags, " wf ")) << "not MADV_WIPEONFORK: " << flags;
#ifndef __SANITIZE_ADDRESS__
  // (AddressSanitizer replaces mlock with a no-op that reports success.)
  if (material.locked()) {
    EXPECT_TRUE(contains(flags, " lo ")) << "mlock reported success, but: " << flags;
  }
#endif
  EXPECT_FALSE(contains(flags, " mw ") && contains(flags, " wr ")) << "the key page is still writable: " << flags;
}

TEST(KeyMaterial, AForkedChildSeesZerosWhereTheKeyWas) {
  const std::string bytes(32, 'k');
  KeyMaterial material(bytes);
  int pipeFds[2];
  ASSERT_EQ(::pipe(pipeFds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char seen = material.data()[0];
    [[maybe_unused]] ssize_t n = ::write(pipeFds[1], &seen, 1);
    ::_exit(0);
  }
  ::close(pipeFds[1]);
  char seen = 'x';
  ASSERT_EQ(::read(pipeFds[0], &seen, 1), 1);
  ::close(pipeFds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(seen, '\0');
  EXPECT_EQ(material.view(), bytes) << "the parent's copy must stay";
}

// ---- where the key comes from ----

class MasterKeySources : public ::testing::Test {
 protected:
  fs::path state() const { return m_dir.path() / "state"; }
  fs::path credentials() const { return m_dir.path() / "credentials"; }
  void SetUp() override {
    fs::create_directory(state());
    fs::permissions(state(), fs::perms::owner_all);
    fs::create_directory(credentials());
  }
  TemporaryDirectory m_dir{"zerobyte-keyring-test"};
};

TEST_F(MasterKeySources, ACredentialOfExactly32BytesIsTheKey) {
  const std::string key = "0123456789abcdef0123456789ABCDEF";
  writeFile(credentials() / "zerobyte.master-key", key, 0400);
  ScopedEnvironment env("CREDENTIALS_DIRECTORY", credentials().string());
  auto master = loadMasterKey(state(), std::nullopt, true);
  EXPECT_EQ(master.key.value(), key);
  EXPECT_EQ(master.keyId, keyIdOf(key));
  EXPECT_EQ(master.source, "credential zerobyte.master-key");
  EXPECT_EQ(master.credential, "zerobyte.master-key");
  EXPECT_FALSE(fs::exists(state() / "master.key")) << "no state file when a credential provides the key";
}

TEST_F(MasterKeySources, ALongerCredentialIsHashedWithSha256) {
  const std::string text = "a passphrase of more than thirty-two bytes, with a newline\n";
  writeFile(credentials() / "zerobyte.master-key", text, 0400);
  ScopedEnvironment env("CREDENTIALS_DIRECTORY", credentials().string());
  auto master = loadMasterKey(state(), std::nullopt, true);
  EXPECT_EQ(master.key.value(), sha256(text));
  EXPECT_EQ(master.keyId, keyIdOf(sha256(text)));
}

TEST_F(MasterKeySources, ACredentialShorterThan32BytesIsRefusedNamingIt) {
  writeFile(credentials() / "zerobyte.master-key", std::string(31, 'x'), 0400);
  ScopedEnvironment env("CREDENTIALS_DIRECTORY", credentials().string());
  auto error = thrownError([&] { loadMasterKey(state(), std::nullopt, true); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "zerobyte.master-key")) << error.what();
  EXPECT_TRUE(contains(error.what(), "31 bytes")) << error.what();
  EXPECT_FALSE(fs::exists(state() / "master.key")) << "a short credential must not fall back to a generated key";
}

TEST_F(MasterKeySources, WithoutTheCredentialTheStateFileIsCreatedOnlyWhenAllowed) {
  ScopedEnvironment env("CREDENTIALS_DIRECTORY", credentials().string());
  auto error = thrownError([&] { loadMasterKey(state(), std::nullopt, false); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), (state() / "master.key").string())) << error.what();
  EXPECT_FALSE(fs::exists(state() / "master.key"));

  auto created = loadMasterKey(state(), std::nullopt, true);
  EXPECT_EQ(created.source, "state-file:" + (state() / "master.key").string());
  EXPECT_EQ(created.credential, "");
  EXPECT_EQ(readFile(state() / "master.key"), created.key.value());
  // Once there it is read, allowed to create or not.
  EXPECT_EQ(loadMasterKey(state(), std::nullopt, false).keyId, created.keyId);
}

TEST_F(MasterKeySources, TheRecordedCredentialWinsAndMustExist) {
  writeFile(credentials() / "zerobyte.master-key", std::string(32, 'd'), 0400);
  writeFile(credentials() / "zerobyte.master-key.2", std::string(32, 'r'), 0400);
  ScopedEnvironment env("CREDENTIALS_DIRECTORY", credentials().string());
  auto master = loadMasterKey(state(), std::string("zerobyte.master-key.2"), true);
  EXPECT_EQ(master.key.value(), std::string(32, 'r'));
  EXPECT_EQ(master.credential, "zerobyte.master-key.2");

  auto error = thrownError([&] { loadMasterKey(state(), std::string("zerobyte.master-key.3"), true); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "zerobyte.master-key.3")) << error.what();
  EXPECT_TRUE(contains(error.what(), "LoadCredentialEncrypted=zerobyte.master-key.3")) << error.what();
  EXPECT_FALSE(fs::exists(state() / "master.key"));
}

TEST_F(MasterKeySources, ACredentialWithoutCredentialsDirectorySaysHowToPassOne) {
  ScopedEnvironment env("CREDENTIALS_DIRECTORY", std::nullopt);
  EXPECT_FALSE(credentialExists("zerobyte.master-key"));
  auto error = thrownError([] { loadCredentialKey("zerobyte.master-key"); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "CREDENTIALS_DIRECTORY")) << error.what();
  EXPECT_TRUE(contains(error.what(), "LoadCredentialEncrypted=zerobyte.master-key")) << error.what();
  for (const char* bad : {"", ".", "..", "../state/master.key"})
    EXPECT_EQ(thrownError([&] { loadCredentialKey(bad); }).code(), ErrorCode::Failed) << bad;
}

TEST_F(MasterKeySources, AStateDirectoryOpenToOthersIsRefusedWithTheFix) {
  EXPECT_NO_THROW(checkStateDirectory(state()));
  for (mode_t mode : {0755, 0750, 0701, 0710, 0770}) {
    ASSERT_EQ(::chmod(state().c_str(), mode), 0);
    auto error = thrownError([&] { checkStateDirectory(state()); });
    EXPECT_EQ(error.code(), ErrorCode::Failed) << std::oct << mode;
    EXPECT_TRUE(contains(error.what(), "chmod 0700 " + state().string())) << error.what();
  }
  ASSERT_EQ(::chmod(state().c_str(), 0700), 0);
  EXPECT_NO_THROW(checkStateDirectory(state()));
}

TEST_F(MasterKeySources, AKeyFileMustBeAbsolutePrivateAndLongEnough) {
  const fs::path file = m_dir.path() / "new.key";
  writeFile(file, std::string(32, 'n'), 0600);
  auto key = loadKeyFile(file);
  EXPECT_EQ(key.key.value(), std::string(32, 'n'));
  EXPECT_EQ(key.credential, "");

  writeFile(file, std::string(100, 'n'), 0400);
  EXPECT_EQ(loadKeyFile(file).key.value(), sha256(std::string(100, 'n')));

  writeFile(file, std::string(32, 'n'), 0640);
  auto loose = thrownError([&] { loadKeyFile(file); });
  EXPECT_EQ(loose.code(), ErrorCode::InvalidArgument);
  EXPECT_TRUE(contains(loose.what(), "chmod 0600 " + file.string())) << loose.what();

  writeFile(file, std::string(20, 'n'), 0600);
  auto shortKey = thrownError([&] { loadKeyFile(file); });
  EXPECT_EQ(shortKey.code(), ErrorCode::InvalidArgument);
  EXPECT_TRUE(contains(shortKey.what(), "20 bytes")) << shortKey.what();

  EXPECT_EQ(thrownError([] { loadKeyFile("relative.key"); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(thrownError([&] { loadKeyFile(m_dir.path()); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(thrownError([&] { loadKeyFile(m_dir.path() / "absent.key"); }).code(), ErrorCode::InvalidArgument);
  if (::geteuid() == 0) {
    writeFile(file, std::string(32, 'n'), 0600);
    ASSERT_EQ(::chown(file.c_str(), 12345, 12345), 0);
    auto foreign = thrownError([&] { loadKeyFile(file); });
    EXPECT_EQ(foreign.code(), ErrorCode::InvalidArgument);
    EXPECT_TRUE(contains(foreign.what(), "owned by uid 12345")) << foreign.what();
  }
}

TEST_F(MasterKeySources, GeneratedKeysAreFreshAndStoredNowhere) {
  auto a = generateMasterKey(), b = generateMasterKey();
  EXPECT_EQ(a.key.value().size(), 32u);
  EXPECT_NE(a.key.value(), b.key.value());
  EXPECT_EQ(a.keyId, keyIdOf(a.key.value()));
  EXPECT_TRUE(fs::is_empty(state()));
}

// ---- the rotation's key files ----

TEST_F(MasterKeySources, NewKeyFileIsWrittenPrivateThenPromotedOverMasterKey) {
  auto old = loadOrCreateMasterKey(state());
  auto next = generateMasterKey();
  writeNewMasterKeyFile(state(), next);
  struct stat st {};
  ASSERT_EQ(::stat((state() / "master.key.new").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(readFile(state() / "master.key.new"), next.key.value());
  EXPECT_EQ(readFile(state() / "master.key"), old.key.value()) << "writing the new key must not touch master.key";

  auto loaded = loadNewMasterKeyFile(state());
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->keyId, next.keyId);
  EXPECT_EQ(loaded->source, "state-file:" + (state() / "master.key").string());

  promoteNewMasterKeyFile(state());
  EXPECT_EQ(readFile(state() / "master.key"), next.key.value());
  EXPECT_FALSE(loadNewMasterKeyFile(state()));
  EXPECT_EQ(std::distance(fs::directory_iterator(state()), fs::directory_iterator()), 1) << "only master.key is left";
}

TEST_F(MasterKeySources, DiscardRemovesTheNewKeyAndHalfWrittenOnes) {
  loadOrCreateMasterKey(state());
  writeNewMasterKeyFile(state(), generateMasterKey());
  writeFile(state() / "master.key.new.tmp-0123456789abcdef", "half", 0600);
  discardNewMasterKeyFile(state());
  EXPECT_FALSE(fs::exists(state() / "master.key.new"));
  EXPECT_FALSE(fs::exists(state() / "master.key.new.tmp-0123456789abcdef"));
  EXPECT_TRUE(fs::exists(state() / "master.key"));
  EXPECT_NO_THROW(discardNewMasterKeyFile(state())) << "nothing to discard is fine";
}

TEST_F(MasterKeySources, ANewKeyFileOpenToOthersIsRefusedLikeMasterKey) {
  writeNewMasterKeyFile(state(), generateMasterKey());
  ASSERT_EQ(::chmod((state() / "master.key.new").c_str(), 0644), 0);
  auto error = thrownError([&] { loadNewMasterKeyFile(state()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "chmod 0600 " + (state() / "master.key.new").string())) << error.what();
}

}  // namespace
}  // namespace zerobyte::secrets
