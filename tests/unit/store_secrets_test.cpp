// What the store keeps for secrets, on a real LMDB environment: repository records of version 1 (written before
// pendingPassword existed) and version 2, the master key credential in the meta table, change-password jobs.
#include "daemon/store/store.h"

#include "common/errors.h"
#include "daemon/store/records.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace zerobyte::store {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using zbtest::unit::putRawLmdbRecord;
using zbtest::unit::TemporaryDirectory;

// A Repository record exactly as the build before pendingPassword wrote it (class version 1):
// id "0a1b2c3d", name "main", type "local", path "/srv/backup/main", owner 1000, created
// 1700000000, a password sealed under key id 0x11223344 (nonce "N"×12, ciphertext "C"×20), no reference.
const std::string kVersion1Record =
    "\x01\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x30\x61\x31\x62\x32\x63\x33\x64\x04\x00\x00\x00\x00\x00\x00"
    "\x00\x6d\x61\x69\x6e\x05\x00\x00\x00\x00\x00\x00\x00\x6c\x6f\x63\x61\x6c\x10\x00\x00\x00\x00\x00\x00\x00\x2f\x73"
    "\x72\x76\x2f\x62\x61\x63\x6b\x75\x70\x2f\x6d\x61\x69\x6e\x00\xe8\x03\x00\x00\x00\xf1\x53\x65\x00\x00\x00\x00\x01"
    "\x00\x00\x00\x44\x33\x22\x11\x0c\x00\x00\x00\x00\x00\x00\x00\x4e\x4e\x4e\x4e\x4e\x4e\x4e\x4e\x4e\x4e\x4e\x4e\x14"
    "\x00\x00\x00\x00\x00\x00\x00\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x43\x00"
    "\x00\x00\x00\x00\x00\x00\x00"s;

class StoreSecrets : public ::testing::Test {
 protected:
  fs::path stateDir() const { return m_temp.path() / "state"; }

 private:
  TemporaryDirectory m_temp{"zerobyte-store-secrets-test"};
};

core::SealedSecret sealed(uint32_t keyId, char fill) {
  return core::SealedSecret{keyId, std::string(12, fill), std::string(48, fill)};
}

TEST_F(StoreSecrets, AVersion1RepositoryRecordLoadsWithoutAPendingPassword) {
  { Store store(stateDir()); }
  putRawLmdbRecord(stateDir(), "repositories", "0a1b2c3d", kVersion1Record);
  Store store(stateDir());
  auto repository = store.repository("0a1b2c3d");
  ASSERT_TRUE(repository);
  EXPECT_EQ(repository->name, "main");
  EXPECT_EQ(repository->path, "/srv/backup/main");
  EXPECT_EQ(repository->ownerUid, 1000u);
  EXPECT_EQ(repository->created, 1700000000);
  EXPECT_EQ(repository->password.keyId, 0x11223344u);
  EXPECT_EQ(repository->password.nonce, std::string(12, 'N'));
  EXPECT_EQ(repository->password.ciphertext, std::string(20, 'C'));
  EXPECT_EQ(repository->passwordRef, "");
  EXPECT_TRUE(repository->pendingPassword.empty());
}

TEST_F(StoreSecrets, AVersion1RecordRewrittenKeepsItsFieldsAndGainsThePendingPassword) {
  { Store store(stateDir()); }
  putRawLmdbRecord(stateDir(), "repositories", "0a1b2c3d", kVersion1Record);
  {
    Store store(stateDir());
    auto repository = *store.repository("0a1b2c3d");
    repository.pendingPassword = sealed(0x55667788, 'P');
    auto txn = store.begin();
    txn.put(repository);
    txn.commit();
  }
  Store store(stateDir());
  auto repository = store.repository("0a1b2c3d");
  ASSERT_TRUE(repository);
  EXPECT_EQ(repository->name, "main");
  EXPECT_EQ(repository->password.keyId, 0x11223344u);
  EXPECT_EQ(repository->password.ciphertext, std::string(20, 'C'));
  EXPECT_EQ(repository->pendingPassword.keyId, 0x55667788u);
  EXPECT_EQ(repository->pendingPassword.nonce, std::string(12, 'P'));
  EXPECT_EQ(repository->pendingPassword.ciphertext, std::string(48, 'P'));
}

TEST_F(StoreSecrets, AVersion1RecordWithBytesAfterItIsStillCorruption) {
  { Store store(stateDir()); }
  putRawLmdbRecord(stateDir(), "repositories", "0a1b2c3d", kVersion1Record + "\x01"s);
  Store store(stateDir());
  try {
    store.repository("0a1b2c3d");
    ADD_FAILURE() << "a record with trailing bytes loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Failed);
    EXPECT_NE(std::string(e.what()).find("repositories/0a1b2c3d"), std::string::npos) << e.what();
  }
}

TEST_F(StoreSecrets, ThePendingPasswordIsClearedByStoringAnEmptyOne) {
  core::Repository repository;
  repository.id = "r1";
  repository.name = "one";
  repository.password = sealed(1, 'a');
  repository.pendingPassword = sealed(1, 'b');
  {
    Store store(stateDir());
    auto txn = store.begin();
    txn.put(repository);
    txn.commit();
    EXPECT_FALSE(store.repository("r1")->pendingPassword.empty());
    repository.password = repository.pendingPassword;
    repository.pendingPassword = {};
    auto second = store.begin();
    second.put(repository);
    second.commit();
  }
  Store store(stateDir());
  auto loaded = store.repository("r1");
  ASSERT_TRUE(loaded);
  EXPECT_TRUE(loaded->pendingPassword.empty());
  EXPECT_EQ(loaded->password.nonce, std::string(12, 'b'));
}

TEST_F(StoreSecrets, MasterKeyCredentialIsAbsentUntilARotationRecordsIt) {
  {
    Store store(stateDir());
    EXPECT_FALSE(store.masterKeyCredential());
    auto aborted = store.begin();
    aborted.setMasterKeyCredential("never-committed");
  }
  {
    Store store(stateDir());
    EXPECT_FALSE(store.masterKeyCredential()) << "an aborted transaction recorded the credential";
    auto txn = store.begin();
    txn.setMasterKeyCredential("zerobyte.master-key.2");
    txn.commit();
  }
  Store store(stateDir());
  EXPECT_EQ(store.masterKeyCredential(), "zerobyte.master-key.2");
}

TEST_F(StoreSecrets, AMasterKeyCredentialThatIsNoNameIsCorruption) {
  { Store store(stateDir()); }
  putRawLmdbRecord(stateDir(), "meta", "master_key_credential", "../../etc/shadow");
  Store store(stateDir());
  try {
    store.masterKeyCredential();
    ADD_FAILURE() << "a path was accepted as a credential name";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Failed);
    EXPECT_NE(std::string(e.what()).find("master_key_credential"), std::string::npos) << e.what();
  }
}

TEST_F(StoreSecrets, ChangePasswordJobsRoundTrip) {
  core::Job job;
  job.id = 7;
  job.operation = core::JobOperation::ChangePassword;
  job.state = core::JobState::Warning;
  job.repositoryId = "r1";
  job.message = "password changed, but the old key 3ea9525f remains in the repository";
  job.log = {"step 1/6: generated a new 256-bit password"};
  {
    Store store(stateDir());
    auto txn = store.begin();
    txn.put(job);
    txn.commit();
  }
  Store store(stateDir());
  auto loaded = store.job(7);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->operation, core::JobOperation::ChangePassword);
  EXPECT_EQ(core::toString(loaded->operation), "change-password");
  EXPECT_EQ(core::jobOperationFromString("change-password"), core::JobOperation::ChangePassword);
  EXPECT_TRUE(core::needsExclusiveLock(core::JobOperation::ChangePassword));
  EXPECT_EQ(loaded->message, job.message);
  EXPECT_EQ(loaded->log, job.log);
}

}  // namespace
}  // namespace zerobyte::store
