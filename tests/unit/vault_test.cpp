// The vault with real OpenSSL and real files: sealing, the master key file, secret references.
#include "daemon/secrets/vault.h"

#include "common/errors.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::secrets {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using zbtest::unit::contains;
using zbtest::unit::readFile;
using zbtest::unit::ScopedEnvironment;
using zbtest::unit::TemporaryDirectory;
using zbtest::unit::thrownError;
using zbtest::unit::writeFile;

constexpr std::string_view kDirectoryPrefix = "zerobyte-vault-test";

MasterKey keyOf(char fill) {
  MasterKey key;
  key.key = SecretString(std::string(32, fill));
  key.keyId = static_cast<uint32_t>(fill) * 0x01010101u;
  key.source = "test";
  return key;
}

// ---- sealing ----

TEST(Vault, SealThenOpenReturnsThePlaintext) {
  Vault vault(keyOf('k'));
  const std::string secret = "correct horse\0battery staple\n"s;
  auto sealed = vault.seal(secret, "repositories/r1");
  EXPECT_EQ(sealed.keyId, vault.keyId());
  EXPECT_EQ(sealed.nonce.size(), 12u);
  EXPECT_EQ(sealed.ciphertext.size(), secret.size() + 16);
  EXPECT_EQ(sealed.ciphertext.find("correct horse"), std::string::npos);
  EXPECT_EQ(vault.open(sealed, "repositories/r1").value(), secret);
}

TEST(Vault, EmptyPlaintextRoundTripsAndIsStillAuthenticated) {
  Vault vault(keyOf('k'));
  auto sealed = vault.seal("", "repositories/r1");
  EXPECT_EQ(sealed.ciphertext.size(), 16u);
  EXPECT_EQ(vault.open(sealed, "repositories/r1").value(), "");
  EXPECT_EQ(thrownError([&] { vault.open(sealed, "repositories/r2"); }).code(), ErrorCode::SecretUnavailable);
}

TEST(Vault, TwoSealsOfTheSamePlaintextDiffer) {
  Vault vault(keyOf('k'));
  auto a = vault.seal("same", "repositories/r1");
  auto b = vault.seal("same", "repositories/r1");
  EXPECT_NE(a.nonce, b.nonce);
  EXPECT_NE(a.ciphertext, b.ciphertext);
  EXPECT_EQ(vault.open(a, "repositories/r1").value(), "same");
  EXPECT_EQ(vault.open(b, "repositories/r1").value(), "same");
}

TEST(Vault, FlippingAnyByteOfCiphertextTagOrNonceFailsToDecrypt) {
  Vault vault(keyOf('k'));
  const auto sealed = vault.seal("the repository password", "repositories/r1");
  for (size_t i = 0; i < sealed.ciphertext.size(); ++i) {
    auto altered = sealed;
    altered.ciphertext[i] = static_cast<char>(altered.ciphertext[i] ^ 0x01);
    auto error = thrownError([&] { vault.open(altered, "repositories/r1"); });
    EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable) << "ciphertext/tag byte " << i;
    EXPECT_TRUE(contains(error.what(), "altered")) << error.what();
  }
  for (size_t i = 0; i < sealed.nonce.size(); ++i) {
    auto altered = sealed;
    altered.nonce[i] = static_cast<char>(altered.nonce[i] ^ 0x80);
    EXPECT_EQ(thrownError([&] { vault.open(altered, "repositories/r1"); }).code(), ErrorCode::SecretUnavailable)
        << "nonce byte " << i;
  }
}

TEST(Vault, TruncatedCiphertextOrNonceFailsToDecrypt) {
  Vault vault(keyOf('k'));
  const auto sealed = vault.seal("pw", "repositories/r1");
  auto shortTag = sealed;
  shortTag.ciphertext.resize(15);
  EXPECT_EQ(thrownError([&] { vault.open(shortTag, "repositories/r1"); }).code(), ErrorCode::SecretUnavailable);
  auto shortNonce = sealed;
  shortNonce.nonce.resize(11);
  EXPECT_EQ(thrownError([&] { vault.open(shortNonce, "repositories/r1"); }).code(), ErrorCode::SecretUnavailable);
  EXPECT_EQ(thrownError([&] { vault.open(core::SealedSecret{vault.keyId(), "", ""}, "repositories/r1"); }).code(),
            ErrorCode::SecretUnavailable);
}

TEST(Vault, CiphertextMovedToAnotherRecordFailsToDecrypt) {
  Vault vault(keyOf('k'));
  auto sealed = vault.seal("pw of r1", "repositories/r1");
  auto error = thrownError([&] { vault.open(sealed, "repositories/r2"); });
  EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable);
  EXPECT_EQ(std::string(error.what()),
            "the secret of repositories/r2 cannot be decrypted: it was altered or belongs to another record; "
            "set the secret again");
}

TEST(Vault, DifferentKeyFailsWithBothKeyIds) {
  Vault sealer(keyOf('a'));
  Vault other(keyOf('b'));
  auto sealed = sealer.seal("pw", "repositories/r1");
  auto error = thrownError([&] { other.open(sealed, "repositories/r1"); });
  EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable);
  EXPECT_TRUE(contains(error.what(), "the secret of repositories/r1 was sealed with key 61616161, the daemon has key "
                                     "62626262"))
      << error.what();
}

TEST(Vault, DifferentKeyWithTheSameKeyIdStillFailsAuthentication) {
  Vault sealer(keyOf('a'));
  MasterKey impostor = keyOf('b');
  impostor.keyId = sealer.keyId();
  Vault other(std::move(impostor));
  auto sealed = sealer.seal("pw", "repositories/r1");
  EXPECT_EQ(thrownError([&] { other.open(sealed, "repositories/r1"); }).code(), ErrorCode::SecretUnavailable);
}

TEST(Vault, RejectsAKeyThatIsNot32Bytes) {
  MasterKey key = keyOf('k');
  key.key = SecretString(std::string(31, 'k'));
  EXPECT_EQ(thrownError([&] { Vault vault(std::move(key)); }).code(), ErrorCode::Failed);
}

TEST(Vault, RandomPasswordIs64LowercaseHexAndFresh) {
  auto a = randomPassword();
  auto b = randomPassword();
  ASSERT_EQ(a.value().size(), 64u);
  for (char c : a.value()) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << c;
  EXPECT_NE(a.value(), b.value());
}

// ---- the master key file ----

TEST(MasterKeyFile, CreatedWithMode0600And32BytesThenReused) {
  TemporaryDirectory dir(kDirectoryPrefix);
  const fs::path state = dir.path() / "state";
  auto first = loadOrCreateMasterKey(state);
  const fs::path file = state / "master.key";
  struct stat st {};
  ASSERT_EQ(::lstat(file.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_size, 32);
  EXPECT_EQ(first.key.value(), readFile(file));
  EXPECT_EQ(first.source, "state-file:" + file.string());
  // Nothing but the key is left behind (no temporary file).
  EXPECT_EQ(std::distance(fs::directory_iterator(state), fs::directory_iterator()), 1);

  auto second = loadOrCreateMasterKey(state);
  EXPECT_EQ(second.key.value(), first.key.value());
  EXPECT_EQ(second.keyId, first.keyId);

  // A secret sealed under the first load opens under the second.
  auto sealed = Vault(std::move(first)).seal("pw", "repositories/r1");
  EXPECT_EQ(Vault(std::move(second)).open(sealed, "repositories/r1").value(), "pw");
}

TEST(MasterKeyFile, KeyIdIsTheFirstFourBytesOfSha256) {
  TemporaryDirectory dir(kDirectoryPrefix);
  // SHA-256 of 32 zero bytes is 66687aad f862bd77 ...
  writeFile(dir.path() / "master.key", std::string(32, '\0'), 0600);
  auto key = loadOrCreateMasterKey(dir.path());
  EXPECT_EQ(key.keyId, 0x66687aadu);
}

TEST(MasterKeyFile, TwoStateDirectoriesGetDifferentKeys) {
  TemporaryDirectory a(kDirectoryPrefix), b(kDirectoryPrefix);
  EXPECT_NE(loadOrCreateMasterKey(a.path()).key.value(), loadOrCreateMasterKey(b.path()).key.value());
}

TEST(MasterKeyFile, RefusedWhenReadableByOthers) {
  TemporaryDirectory dir(kDirectoryPrefix);
  loadOrCreateMasterKey(dir.path());
  const fs::path file = dir.path() / "master.key";
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  auto error = thrownError([&] { loadOrCreateMasterKey(dir.path()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "chmod 0600 " + file.string())) << error.what();
  ASSERT_EQ(::chmod(file.c_str(), 0640), 0);
  EXPECT_EQ(thrownError([&] { loadOrCreateMasterKey(dir.path()); }).code(), ErrorCode::Failed);
}

TEST(MasterKeyFile, RefusedWhenNot32Bytes) {
  TemporaryDirectory dir(kDirectoryPrefix);
  writeFile(dir.path() / "master.key", std::string(31, 'x'), 0600);
  auto error = thrownError([&] { loadOrCreateMasterKey(dir.path()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "expected 32 bytes")) << error.what();
  EXPECT_EQ(readFile(dir.path() / "master.key"), std::string(31, 'x')) << "a bad key file is never replaced";
}

TEST(MasterKeyFile, RefusedWhenASymlink) {
  TemporaryDirectory dir(kDirectoryPrefix);
  writeFile(dir.path() / "real.key", std::string(32, 'x'), 0600);
  fs::create_symlink(dir.path() / "real.key", dir.path() / "master.key");
  auto error = thrownError([&] { loadOrCreateMasterKey(dir.path()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "symbolic link")) << error.what();
}

TEST(MasterKeyFile, RefusedWhenADanglingSymlinkInsteadOfCreatingThroughIt) {
  TemporaryDirectory dir(kDirectoryPrefix);
  fs::create_symlink(dir.path() / "elsewhere.key", dir.path() / "master.key");
  EXPECT_EQ(thrownError([&] { loadOrCreateMasterKey(dir.path()); }).code(), ErrorCode::Failed);
  EXPECT_FALSE(fs::exists(dir.path() / "elsewhere.key"));
}

TEST(MasterKeyFile, RefusedWhenOwnedByAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  TemporaryDirectory dir(kDirectoryPrefix);
  loadOrCreateMasterKey(dir.path());
  const fs::path file = dir.path() / "master.key";
  ASSERT_EQ(::chown(file.c_str(), 12345, 12345), 0);
  auto error = thrownError([&] { loadOrCreateMasterKey(dir.path()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "owned by uid 12345")) << error.what();
}

// ---- secret references ----

class References : public ::testing::Test {
 protected:
  TemporaryDirectory m_dir{kDirectoryPrefix};
};

TEST_F(References, FileReferenceReadsTheSecretWithoutOneTrailingNewline) {
  const fs::path file = m_dir.path() / "pw";
  writeFile(file, "s3cret\n", 0600);
  EXPECT_EQ(resolveReference("file://" + file.string()).value(), "s3cret");
  writeFile(file, "s3cret\r\n", 0640);
  EXPECT_EQ(resolveReference("file://" + file.string()).value(), "s3cret");
  writeFile(file, "s3cret\n\n", 0400);
  EXPECT_EQ(resolveReference("file://" + file.string()).value(), "s3cret\n");
  writeFile(file, "no newline", 0600);
  EXPECT_EQ(resolveReference("file://" + file.string()).value(), "no newline");
}

TEST_F(References, WorldReadableFileIsRefusedWithoutShowingTheSecret) {
  const fs::path file = m_dir.path() / "pw";
  writeFile(file, "TopSecretValue\n", 0644);
  const std::string reference = "file://" + file.string();
  auto error = thrownError([&] { resolveReference(reference); });
  EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable);
  EXPECT_TRUE(contains(error.what(), reference)) << error.what();
  EXPECT_TRUE(contains(error.what(), "chmod o-rwx")) << error.what();
  EXPECT_FALSE(contains(error.what(), "TopSecretValue")) << error.what();
  writeFile(file, "TopSecretValue\n", 0602);
  EXPECT_EQ(thrownError([&] { resolveReference(reference); }).code(), ErrorCode::SecretUnavailable);
}

TEST_F(References, FileOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  const fs::path file = m_dir.path() / "pw";
  writeFile(file, "TopSecretValue", 0600);
  ASSERT_EQ(::chown(file.c_str(), 12345, 12345), 0);
  auto error = thrownError([&] { resolveReference("file://" + file.string()); });
  EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable);
  EXPECT_TRUE(contains(error.what(), "owned by uid 12345")) << error.what();
  EXPECT_FALSE(contains(error.what(), "TopSecretValue")) << error.what();
}

TEST_F(References, RelativeFileReferenceIsInvalid) {
  auto error = thrownError([] { validateReference("file://relative/pw"); });
  EXPECT_EQ(error.code(), ErrorCode::InvalidArgument);
  EXPECT_TRUE(contains(error.what(), "file:///path/to/file")) << error.what();
  EXPECT_EQ(thrownError([] { resolveReference("file://pw"); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(thrownError([] { validateReference("file://"); }).code(), ErrorCode::InvalidArgument);
}

TEST_F(References, MissingFileNamesTheReference) {
  const std::string reference = "file://" + (m_dir.path() / "absent").string();
  auto error = thrownError([&] { resolveReference(reference); });
  EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable);
  EXPECT_TRUE(contains(error.what(), reference)) << error.what();
  EXPECT_TRUE(contains(error.what(), "does not exist")) << error.what();
}

TEST_F(References, DirectoryOrEmptyOrOversizedFileIsRefused) {
  EXPECT_EQ(thrownError([&] { resolveReference("file://" + m_dir.path().string()); }).code(),
            ErrorCode::SecretUnavailable);
  const fs::path empty = m_dir.path() / "empty";
  writeFile(empty, "\n", 0600);
  EXPECT_EQ(thrownError([&] { resolveReference("file://" + empty.string()); }).code(), ErrorCode::SecretUnavailable);
  const fs::path big = m_dir.path() / "big";
  writeFile(big, std::string(64 * 1024 + 1, 'x'), 0600);
  EXPECT_EQ(thrownError([&] { resolveReference("file://" + big.string()); }).code(), ErrorCode::SecretUnavailable);
  writeFile(big, std::string(64 * 1024, 'x'), 0600);
  EXPECT_EQ(resolveReference("file://" + big.string()).value().size(), 64u * 1024);
}

TEST_F(References, FifoIsRefusedWithoutBlocking) {
  const fs::path fifo = m_dir.path() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(thrownError([&] { resolveReference("file://" + fifo.string()); }).code(), ErrorCode::SecretUnavailable);
}

TEST_F(References, EnvironmentReferenceReadsTheVariable) {
  ScopedEnvironment set("ZB_TEST_SECRET", "from-the-environment");
  EXPECT_EQ(resolveReference("env://ZB_TEST_SECRET").value(), "from-the-environment");
}

TEST_F(References, UnsetOrEmptyEnvironmentVariableNamesTheReference) {
  {
    ScopedEnvironment unset("ZB_TEST_SECRET", std::nullopt);
    auto error = thrownError([] { resolveReference("env://ZB_TEST_SECRET"); });
    EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable);
    EXPECT_TRUE(contains(error.what(), "env://ZB_TEST_SECRET")) << error.what();
    EXPECT_TRUE(contains(error.what(), "not set")) << error.what();
  }
  ScopedEnvironment empty("ZB_TEST_SECRET", "");
  EXPECT_EQ(thrownError([] { resolveReference("env://ZB_TEST_SECRET"); }).code(), ErrorCode::SecretUnavailable);
}

TEST_F(References, EnvironmentNamesMustBeIdentifiers) {
  EXPECT_NO_THROW(validateReference("env://_A1"));
  for (const char* bad : {"env://", "env://1ABC", "env://A-B", "env://A B", "env://A/B"})
    EXPECT_EQ(thrownError([&] { validateReference(bad); }).code(), ErrorCode::InvalidArgument) << bad;
}

TEST_F(References, CredentialReferenceReadsFromTheCredentialsDirectory) {
  writeFile(m_dir.path() / "repo-pw", "from-a-credential\n", 0400);
  ScopedEnvironment set("CREDENTIALS_DIRECTORY", m_dir.path().string());
  EXPECT_EQ(resolveReference("credential://repo-pw").value(), "from-a-credential");
  auto missing = thrownError([] { resolveReference("credential://absent"); });
  EXPECT_EQ(missing.code(), ErrorCode::SecretUnavailable);
  EXPECT_TRUE(contains(missing.what(), "credential://absent")) << missing.what();
}

TEST_F(References, CredentialWithoutCredentialsDirectorySaysHowToPassOne) {
  writeFile(m_dir.path() / "repo-pw", "from-a-credential\n", 0400);
  ScopedEnvironment unset("CREDENTIALS_DIRECTORY", std::nullopt);
  auto error = thrownError([] { resolveReference("credential://repo-pw"); });
  EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable);
  EXPECT_TRUE(contains(error.what(), "credential://repo-pw")) << error.what();
  EXPECT_TRUE(contains(error.what(), "LoadCredential=")) << error.what();
  EXPECT_TRUE(contains(error.what(), "LoadCredentialEncrypted=")) << error.what();
}

TEST_F(References, CredentialNamesCannotLeaveTheDirectory) {
  EXPECT_NO_THROW(validateReference("credential://zerobyte.repo-pw"));
  for (const char* bad : {"credential://", "credential://.", "credential://..", "credential://../etc/shadow",
                          "credential://a/b"})
    EXPECT_EQ(thrownError([&] { validateReference(bad); }).code(), ErrorCode::InvalidArgument) << bad;
}

TEST_F(References, UnknownSchemeIsInvalidAndNotEchoed) {
  auto error = thrownError([] { validateReference("hunter2-pasted-here"); });
  EXPECT_EQ(error.code(), ErrorCode::InvalidArgument);
  EXPECT_TRUE(contains(error.what(), "file:///")) << error.what();
  EXPECT_FALSE(contains(error.what(), "hunter2")) << error.what();
  EXPECT_EQ(thrownError([] { resolveReference("https://example.com/pw"); }).code(), ErrorCode::InvalidArgument);
}

TEST_F(References, ErrorMessagesNeverContainTheSecret) {
  const std::string secret = "Very-Secret-Password-42";
  const fs::path file = m_dir.path() / "pw";
  std::vector<std::string> messages;
  const auto collect = [&](const std::string& reference) {
    try {
      resolveReference(reference);
    } catch (const Error& e) {
      messages.push_back(e.what());
    }
  };
  writeFile(file, secret, 0666);
  collect("file://" + file.string());
  writeFile(file, secret + std::string(64 * 1024, 'x'), 0600);
  collect("file://" + file.string());
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(file.c_str(), 12345, 12345), 0);
  }
  collect("file://" + file.string());
  {
    ScopedEnvironment unset("CREDENTIALS_DIRECTORY", std::nullopt);
    collect("credential://pw");
  }
  {
    ScopedEnvironment dir("CREDENTIALS_DIRECTORY", m_dir.path().string());
    collect("credential://pw");
  }
  ASSERT_GE(messages.size(), 4u);
  for (const auto& m : messages) EXPECT_FALSE(contains(m, secret)) << m;
}

}  // namespace
}  // namespace zerobyte::secrets
