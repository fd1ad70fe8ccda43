// Master key rotation on a real LMDB store, real key files and real OpenSSL: every secret re-sealed in one
// transaction, the key files moved in order, and at start a rotation that was cut short finished or undone.
#include "daemon/api/master_key_rotation.h"

#include "common/errors.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace zerobyte::api {
namespace {

namespace fs = std::filesystem;
using zbtest::unit::contains;
using zbtest::unit::readFile;
using zbtest::unit::ScopedEnvironment;
using zbtest::unit::TemporaryDirectory;
using zbtest::unit::thrownError;
using zbtest::unit::writeFile;

// Three repositories with known passwords, one of them in the middle of a password change.
class Rotation : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directory(state());
    fs::permissions(state(), fs::perms::owner_all);
    m_store.emplace(state());
    m_vault.emplace(secrets::loadOrCreateMasterKey(state()));
    m_oldKey = readFile(state() / "master.key");
    auto txn = m_store->begin();
    for (const char* id : {"r1", "r2", "r3"}) {
      core::Repository repository;
      repository.id = id;
      repository.name = std::string("repo-") + id;
      repository.password = m_vault->seal(std::string("password of ") + id, passwordRecord(repository));
      if (repository.id == "r2")
        repository.pendingPassword = m_vault->seal("pending of r2", pendingPasswordRecord(repository));
      txn.put(repository);
    }
    txn.commit();
  }

  fs::path state() const { return m_dir.path() / "state"; }

  // Every secret in the store: record → plaintext, opened with `vault`; also checks the key id.
  std::map<std::string, std::string> openAll(const secrets::Vault& vault, uint32_t expectedKeyId) {
    std::map<std::string, std::string> out;
    for (const auto& repository : m_store->repositories()) {
      out[passwordRecord(repository)] = vault.open(repository.password, passwordRecord(repository)).value();
      EXPECT_EQ(repository.password.keyId, expectedKeyId) << repository.id;
      if (!repository.pendingPassword.empty()) {
        out[pendingPasswordRecord(repository)] = vault.open(repository.pendingPassword, pendingPasswordRecord(repository)).value();
        EXPECT_EQ(repository.pendingPassword.keyId, expectedKeyId) << repository.id;
      }
    }
    return out;
  }

  const std::map<std::string, std::string> kPlaintexts = {
      {"repositories/r1", "password of r1"},
      {"repositories/r2", "password of r2"},
      {"repositories/r2/pending-password", "pending of r2"},
      {"repositories/r3", "password of r3"},
  };

  TemporaryDirectory m_dir{"zerobyte-rotation-test"};
  std::optional<store::Store> m_store;
  std::optional<secrets::Vault> m_vault;
  std::string m_oldKey;
};

TEST_F(Rotation, GenerateResealsEverySecretAndReplacesMasterKey) {
  const uint32_t oldId = m_vault->keyId();
  RotationResult result = rotateKeyring(*m_store, *m_vault, state(), {});
  EXPECT_EQ(result.secrets, 4u);
  EXPECT_NE(result.keyId, oldId);
  EXPECT_EQ(m_vault->keyId(), result.keyId);
  EXPECT_FALSE(m_vault->hasKey(oldId)) << "the old key stays in memory after the rotation";
  EXPECT_FALSE(fs::exists(state() / "master.key.new"));
  const std::string newKey = readFile(state() / "master.key");
  EXPECT_NE(newKey, m_oldKey);
  EXPECT_EQ(secrets::keyIdOf(newKey), result.keyId);
  struct stat st {};
  ASSERT_EQ(::stat((state() / "master.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // A daemon started afterwards has only the new key file, and it opens everything.
  secrets::Vault fresh(secrets::loadOrCreateMasterKey(state()));
  EXPECT_EQ(openAll(fresh, result.keyId), kPlaintexts);
}

TEST_F(Rotation, AKeyFileBecomesMasterKey) {
  const fs::path file = m_dir.path() / "supplied.key";
  writeFile(file, std::string(32, 's'), 0600);
  RotationResult result = rotateKeyring(*m_store, *m_vault, state(), {KeySource::File, file.string(), ""});
  EXPECT_EQ(readFile(state() / "master.key"), std::string(32, 's'));
  EXPECT_EQ(result.keyId, secrets::keyIdOf(std::string(32, 's')));
  EXPECT_EQ(m_vault->source(), "state-file:" + (state() / "master.key").string());
  EXPECT_EQ(openAll(*m_vault, result.keyId), kPlaintexts);
}

TEST_F(Rotation, ACredentialIsRecordedAndTheStateFileRemoved) {
  const fs::path credentials = m_dir.path() / "credentials";
  fs::create_directory(credentials);
  writeFile(credentials / "zerobyte.master-key.2", std::string(48, 'c'), 0400);
  ScopedEnvironment env("CREDENTIALS_DIRECTORY", credentials.string());
  RotationResult result = rotateKeyring(*m_store, *m_vault, state(), {KeySource::Credential, "", "zerobyte.master-key.2"});
  EXPECT_EQ(m_store->masterKeyCredential(), "zerobyte.master-key.2");
  EXPECT_EQ(m_vault->credential(), "zerobyte.master-key.2");
  EXPECT_EQ(m_vault->source(), "credential zerobyte.master-key.2");
  EXPECT_FALSE(fs::exists(state() / "master.key")) << "the state file's key seals nothing any more";
  // What the next start loads: the recorded credential.
  secrets::Vault fresh(secrets::loadMasterKey(state(), m_store->masterKeyCredential(), false));
  EXPECT_EQ(fresh.keyId(), result.keyId);
  EXPECT_EQ(openAll(fresh, result.keyId), kPlaintexts);

  // From a credential, only another credential.
  auto refused = thrownError([&] { rotateKeyring(*m_store, *m_vault, state(), {}); });
  EXPECT_EQ(refused.code(), ErrorCode::Conflict);
  EXPECT_TRUE(contains(refused.what(), "--from-credential")) << refused.what();
  EXPECT_FALSE(fs::exists(state() / "master.key"));
  EXPECT_FALSE(fs::exists(state() / "master.key.new"));
  EXPECT_EQ(m_vault->keyId(), result.keyId);
}

TEST_F(Rotation, TheCurrentKeyAgainIsRefused) {
  const fs::path file = m_dir.path() / "same.key";
  writeFile(file, m_oldKey, 0600);
  auto error = thrownError([&] { rotateKeyring(*m_store, *m_vault, state(), {KeySource::File, file.string(), ""}); });
  EXPECT_EQ(error.code(), ErrorCode::Conflict);
  EXPECT_EQ(readFile(state() / "master.key"), m_oldKey);
}

TEST_F(Rotation, ASecretThatCannotBeOpenedStopsTheRotationAndChangesNothing) {
  auto r3 = *m_store->repository("r3");
  r3.password.ciphertext[0] = static_cast<char>(r3.password.ciphertext[0] ^ 1);
  {
    auto txn = m_store->begin();
    txn.put(r3);
    txn.commit();
  }
  const uint32_t oldId = m_vault->keyId();
  auto error = thrownError([&] { rotateKeyring(*m_store, *m_vault, state(), {}); });
  EXPECT_EQ(error.code(), ErrorCode::SecretUnavailable);
  EXPECT_TRUE(contains(error.what(), "repositories/r3")) << error.what();
  EXPECT_EQ(m_vault->keyId(), oldId);
  EXPECT_EQ(m_vault->keyIds().size(), 1u) << "the new key stays in the keyring after a failed rotation";
  EXPECT_EQ(readFile(state() / "master.key"), m_oldKey);
  EXPECT_FALSE(fs::exists(state() / "master.key.new"));
  for (const auto& repository : m_store->repositories()) EXPECT_EQ(repository.password.keyId, oldId) << repository.id;
  EXPECT_EQ(m_vault->open(m_store->repository("r1")->password, "repositories/r1").value(), "password of r1");
}

// ---- at start ----

TEST_F(Rotation, AtStartAKeyFileOfARotationThatDidNotCommitIsRemoved) {
  // Step 1 done, the daemon died before the transaction: master.key.new exists, nothing uses it.
  secrets::writeNewMasterKeyFile(state(), secrets::generateMasterKey());
  secrets::Vault restarted(secrets::loadOrCreateMasterKey(state()));
  reconcileKeyring(*m_store, restarted, state());
  EXPECT_FALSE(fs::exists(state() / "master.key.new"));
  EXPECT_EQ(readFile(state() / "master.key"), m_oldKey);
  EXPECT_EQ(restarted.keyIds().size(), 1u);
  EXPECT_EQ(openAll(restarted, secrets::keyIdOf(m_oldKey)), kPlaintexts);
}

TEST_F(Rotation, AtStartARotationThatCommittedIsFinished) {
  // Steps 1 and 2 done, the daemon died before the rename: every secret is sealed with master.key.new.
  secrets::MasterKey next = secrets::generateMasterKey();
  const std::string nextKey = next.key.value();
  const uint32_t nextId = next.keyId;
  secrets::writeNewMasterKeyFile(state(), next);
  {
    secrets::Vault newVault(std::move(next));
    auto txn = m_store->begin();
    for (auto repository : m_store->repositories()) {
      repository.password = newVault.seal(m_vault->open(repository.password, passwordRecord(repository)).value(), passwordRecord(repository));
      if (!repository.pendingPassword.empty())
        repository.pendingPassword = newVault.seal(
            m_vault->open(repository.pendingPassword, pendingPasswordRecord(repository)).value(), pendingPasswordRecord(repository));
      txn.put(repository);
    }
    txn.commit();
  }
  secrets::Vault restarted(secrets::loadOrCreateMasterKey(state()));
  reconcileKeyring(*m_store, restarted, state());
  EXPECT_FALSE(fs::exists(state() / "master.key.new"));
  EXPECT_EQ(readFile(state() / "master.key"), nextKey);
  EXPECT_EQ(restarted.keyId(), nextId);
  EXPECT_EQ(restarted.keyIds().size(), 1u);
  EXPECT_EQ(openAll(restarted, nextId), kPlaintexts);
}

TEST_F(Rotation, AtStartASecretUnderAnUnknownKeyRefusesNamingTheRecordAndTheKey) {
  auto r2 = *m_store->repository("r2");
  r2.pendingPassword.keyId = 0x0badc0de;
  {
    auto txn = m_store->begin();
    txn.put(r2);
    txn.commit();
  }
  secrets::Vault restarted(secrets::loadOrCreateMasterKey(state()));
  auto error = thrownError([&] { reconcileKeyring(*m_store, restarted, state()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "repositories/r2/pending-password")) << error.what();
  EXPECT_TRUE(contains(error.what(), "0badc0de")) << error.what();
  EXPECT_TRUE(contains(error.what(), "without a rotation")) << error.what();
}

TEST_F(Rotation, AtStartACredentialAddedWithoutRotationIsExplained) {
  const fs::path credentials = m_dir.path() / "credentials";
  fs::create_directory(credentials);
  writeFile(credentials / "zerobyte.master-key", std::string(32, 'n'), 0400);
  ScopedEnvironment env("CREDENTIALS_DIRECTORY", credentials.string());
  secrets::Vault restarted(secrets::loadMasterKey(state(), m_store->masterKeyCredential(), !storeHoldsSealedSecrets(*m_store)));
  EXPECT_EQ(restarted.credential(), "zerobyte.master-key");
  auto error = thrownError([&] { reconcileKeyring(*m_store, restarted, state()); });
  EXPECT_EQ(error.code(), ErrorCode::Failed);
  EXPECT_TRUE(contains(error.what(), "repositories/r1")) << error.what();
  EXPECT_TRUE(contains(error.what(), (state() / "master.key").string() + " has that id")) << error.what();
  EXPECT_EQ(readFile(state() / "master.key"), m_oldKey) << "the state file must survive a refused start";
}

TEST_F(Rotation, StoreHoldsSealedSecretsOnlyWhenARecordHasOne) {
  EXPECT_TRUE(storeHoldsSealedSecrets(*m_store));
  auto txn = m_store->begin();
  for (const char* id : {"r1", "r2", "r3"}) txn.eraseRepository(id);
  core::Repository declaredStyle;
  declaredStyle.id = "r4";
  declaredStyle.passwordRef = "file:///etc/zerobyte/r4.pw";
  txn.put(declaredStyle);
  txn.commit();
  EXPECT_FALSE(storeHoldsSealedSecrets(*m_store));
}

}  // namespace
}  // namespace zerobyte::api
