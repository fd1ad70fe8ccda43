// Re-sealing every stored secret under a new master key in one LMDB transaction, and finishing or undoing that at start.
#include "daemon/api/master_key_rotation.h"

#include "common/errors.h"
#include "daemon/log/log.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"

#include <optional>
#include <type_traits>
#include <vector>

namespace zerobyte::api {
namespace {

// One sealed secret of a repository record, and the record it is bound to.
struct SealedField {
  core::SealedSecret core::Repository::*field;
  std::string (*record)(const core::Repository&);
};

const SealedField kSealedFields[] = {
    {&core::Repository::password, &passwordRecord},
    {&core::Repository::pendingPassword, &pendingPasswordRecord},
};

// The same for a volume's secrets (network volumes: password, private key).
struct VolumeSealedField {
  core::SealedSecret core::Volume::*field;
  std::string (*record)(const core::Volume&);
};

const VolumeSealedField kVolumeSealedFields[] = {
    {&core::Volume::password, &volumePasswordRecord},
    {&core::Volume::privateKey, &volumePrivateKeyRecord},
};

// Calls f(sealed, record) for every sealed secret of a resource (a const or mutable one): a repository's password,
// pending password and backend credentials, a volume's password and private key.
template <class Repository, class F>
  requires std::is_same_v<std::remove_const_t<Repository>, core::Repository>
void visitSealed(Repository& repository, F&& f) {
  for (const auto& field : kSealedFields) f(repository.*(field.field), field.record(repository));
  for (auto& credential : repository.credentials) f(credential.sealed, repositoryCredentialRecord(repository, credential.name));
}

template <class Volume, class F>
  requires std::is_same_v<std::remove_const_t<Volume>, core::Volume>
void visitSealed(Volume& volume, F&& f) {
  for (const auto& field : kVolumeSealedFields) f(volume.*(field.field), field.record(volume));
}

template <class Record>
bool reseal(Record& resource, const secrets::Vault& vault, uint32_t keyId, size_t& count) {
  bool changed = false;
  visitSealed(resource, [&](core::SealedSecret& sealed, const std::string& record) {
    if (sealed.empty() || sealed.keyId == keyId) return;
    sealed = vault.seal(vault.open(sealed, record).value(), record, keyId);
    changed = true;
    ++count;
  });
  return changed;
}

// Re-seals every stored secret (repositories' and volumes') not yet under `keyId` with it, in one transaction
// (which also runs `more` before committing). Returns how many were re-sealed.
template <class More>
size_t resealAll(store::Store& store, const secrets::Vault& vault, std::vector<core::Repository> repositories,
                 std::vector<core::Volume> volumes, uint32_t keyId, More&& more) {
  size_t count = 0;
  auto txn = store.begin();
  for (auto& repository : repositories)
    if (reseal(repository, vault, keyId, count)) txn.put(repository);
  for (auto& volume : volumes)
    if (reseal(volume, vault, keyId, count)) txn.put(volume);
  more(txn);
  txn.commit();
  return count;
}

std::string describeRecord(const core::Repository& repository, const std::string& record) {
  return record + " (repository \"" + repository.name + "\")";
}

std::string describeRecord(const core::Volume& volume, const std::string& record) {
  return record + " (volume \"" + volume.name + "\")";
}

}  // namespace

std::string passwordRecord(const core::Repository& repository) { return "repositories/" + repository.id; }

std::string volumePasswordRecord(const core::Volume& volume) { return "volumes/" + volume.id + "/password"; }

std::string volumePrivateKeyRecord(const core::Volume& volume) { return "volumes/" + volume.id + "/private-key"; }

std::string repositoryCredentialRecord(const core::Repository& repository, const std::string& name) {
  return "repositories/" + repository.id + "/credentials/" + name;
}

std::string pendingPasswordRecord(const core::Repository& repository) {
  return "repositories/" + repository.id + "/pending-password";
}

bool storeHoldsSealedSecrets(const store::Store& store) {
  bool any = false;
  auto look = [&any](const core::SealedSecret& sealed, const std::string&) { any = any || !sealed.empty(); };
  for (const auto& repository : store.repositories()) visitSealed(repository, look);
  for (const auto& volume : store.volumes()) visitSealed(volume, look);
  return any;
}

RotationResult rotateKeyring(store::Store& store, secrets::Vault& vault, const std::filesystem::path& stateDirectory,
                             const RotationRequest& request) {
  const bool toCredential = request.source == KeySource::Credential;
  if (!toCredential && !vault.credential().empty())
    throw Error(ErrorCode::Conflict,
                "the master key is the systemd credential " + vault.credential() +
                    "; a key in the state directory would not be used at the next start. Add the new key as "
                    "another credential to zerobyted.service (LoadCredentialEncrypted=NAME:...), restart zerobyted, "
                    "then run 'zerobytectl secrets rotate-master-key --from-credential NAME'");

  secrets::MasterKey next;
  switch (request.source) {
    case KeySource::Generate: next = secrets::generateMasterKey(); break;
    case KeySource::File: next = secrets::loadKeyFile(request.path); break;
    case KeySource::Credential:
      try {
        next = secrets::loadCredentialKey(request.credential);
      } catch (const Error& e) {
        throw Error(ErrorCode::InvalidArgument, e.what(), {{"parameter", "credential"}});
      }
      break;
  }
  if (next.keyId == vault.keyId())
    throw Error(ErrorCode::Conflict, "the new key is the current master key (key id " + secrets::hexKeyId(next.keyId) +
                                         ", " + vault.source() + "): nothing to rotate");
  if (vault.hasKey(next.keyId))
    throw Error(ErrorCode::Conflict, "the new key (key id " + secrets::hexKeyId(next.keyId) +
                                         ") is already in the keyring; give another key");

  // A master.key.new that is the current key is a rotation whose rename failed: finish it first,
  // so that writing the next one cannot replace the key everything is sealed with.
  if (auto leftover = secrets::loadNewMasterKeyFile(stateDirectory)) {
    if (leftover->keyId == vault.keyId() && vault.credential().empty())
      secrets::promoteNewMasterKeyFile(stateDirectory);
    else
      secrets::discardNewMasterKeyFile(stateDirectory);
  }

  const uint32_t previous = vault.keyId(), nextId = next.keyId;
  if (!toCredential) {
    next.source = "state-file:" + (stateDirectory / "master.key").string();
    next.credential.clear();
    secrets::writeNewMasterKeyFile(stateDirectory, next);
  }
  const std::string nextSource = next.source;
  vault.addKey(std::move(next));
  size_t count = 0;
  try {
    count = resealAll(store, vault, store.repositories(), store.volumes(), nextId, [&](store::Transaction& txn) {
      if (toCredential) txn.setMasterKeyCredential(request.credential);
    });
  } catch (...) {
    // Nothing committed: the old key stays, the new one is forgotten.
    vault.removeKey(nextId);
    if (!toCredential) {
      try {
        secrets::discardNewMasterKeyFile(stateDirectory);
      } catch (const Error& e) {
        log::warning(std::string("after a failed rotation: ") + e.what() + "; it is removed at the next start");
      }
    }
    throw;
  }
  vault.makeCurrent(nextId);
  vault.removeKey(previous);

  if (!toCredential) {
    try {
      secrets::promoteNewMasterKeyFile(stateDirectory);
    } catch (const Error& e) {
      throw Error(ErrorCode::Failed, std::to_string(count) + " secret(s) are re-sealed with the new master key " +
                                         secrets::hexKeyId(nextId) + ", which is in " +
                                         (stateDirectory / "master.key.new").string() + ", but " + e.what() +
                                         ": zerobyted finishes the rotation at its next start; do not remove "
                                         "master.key.new");
    }
  } else {
    // The state file's key seals nothing any more; keeping it would only keep old ciphertexts readable.
    try {
      secrets::discardNewMasterKeyFile(stateDirectory);
      if (secrets::masterKeyFileExists(stateDirectory)) {
        secrets::removeMasterKeyFile(stateDirectory);
        log::notice("removed " + (stateDirectory / "master.key").string() + ": the master key is now the credential " +
                    request.credential);
      }
    } catch (const Error& e) {
      log::warning(std::string("the master key is now the credential ") + request.credential +
                   ", but the old key file could not be removed: " + e.what());
    }
  }
  log::info("master key: " + nextSource + " (key id " + secrets::hexKeyId(nextId) + ")");
  return {nextId, count};
}

void reconcileKeyring(store::Store& store, secrets::Vault& vault, const std::filesystem::path& stateDirectory) {
  std::optional<uint32_t> nextId;
  if (auto next = secrets::loadNewMasterKeyFile(stateDirectory)) {
    if (next->keyId == vault.keyId() || vault.hasKey(next->keyId)) {
      secrets::discardNewMasterKeyFile(stateDirectory);
    } else {
      nextId = next->keyId;
      vault.addKey(std::move(*next));
    }
  } else {
    secrets::discardNewMasterKeyFile(stateDirectory);  // temporary files a crash left while writing it
  }

  const auto repositories = store.repositories();
  const auto volumes = store.volumes();
  std::vector<std::string> missing;
  uint32_t missingId = 0;
  bool nextUsed = false;
  auto inspect = [&](const auto& resource) {
    visitSealed(resource, [&](const core::SealedSecret& sealed, const std::string& record) {
      if (sealed.empty()) return;
      if (nextId && sealed.keyId == *nextId) nextUsed = true;
      if (vault.hasKey(sealed.keyId)) return;
      if (missing.empty()) missingId = sealed.keyId;
      missing.push_back(describeRecord(resource, record) + " needs key " + secrets::hexKeyId(sealed.keyId));
    });
  };
  for (const auto& repository : repositories) inspect(repository);
  for (const auto& volume : volumes) inspect(volume);
  if (!missing.empty()) {
    std::string hint;
    if (!vault.credential().empty() && secrets::masterKeyFileExists(stateDirectory)) {
      try {
        auto stateKey = secrets::loadOrCreateMasterKey(stateDirectory);
        if (stateKey.keyId == missingId)
          hint = " The key in " + (stateDirectory / "master.key").string() +
                 " has that id: the credential was added without a rotation. Take it out of zerobyted.service, "
                 "start zerobyted, and move the key into a credential with another name: 'zerobytectl secrets "
                 "rotate-master-key --from-credential NAME'.";
      } catch (const Error&) {
      }
    }
    throw Error(ErrorCode::Failed,
                "the secret of " + missing.front() + ", but the master key is " + secrets::hexKeyId(vault.keyId()) +
                    " (" + vault.source() + ")" +
                    (missing.size() > 1 ? " (and " + std::to_string(missing.size() - 1) + " more secret(s) need a key "
                                                                                            "zerobyted does not have)"
                                        : std::string()) +
                    ". The master key was changed without a rotation: start zerobyted with the key that sealed the "
                    "secrets, then rotate with 'zerobytectl secrets rotate-master-key'." + hint);
  }

  if (!nextId) return;
  const std::string newFile = (stateDirectory / "master.key.new").string();
  if (!nextUsed) {
    vault.removeKey(*nextId);
    secrets::discardNewMasterKeyFile(stateDirectory);
    log::notice("removed " + newFile + ", left by a master key rotation that did not commit; the master key is unchanged");
    return;
  }
  if (!vault.credential().empty())
    throw Error(ErrorCode::Failed, "secrets are sealed with the key in " + newFile +
                                       " (a master key rotation zerobyted was stopped in), but the master key is now "
                                       "the credential " + vault.credential() +
                                       ": take the credential out of zerobyted.service and start zerobyted to finish "
                                       "the rotation, then rotate to a credential with --from-credential NAME");
  const uint32_t previous = vault.keyId();
  size_t count = resealAll(store, vault, repositories, volumes, *nextId, [](store::Transaction&) {});
  secrets::promoteNewMasterKeyFile(stateDirectory);
  vault.makeCurrent(*nextId);
  vault.removeKey(previous);
  log::notice("finished the master key rotation zerobyted was stopped in: " + newFile + " is now master.key (key id " +
              secrets::hexKeyId(*nextId) + ")" +
              (count > 0 ? "; " + std::to_string(count) + " more secret(s) re-sealed" : std::string()));
}

}  // namespace zerobyte::api
