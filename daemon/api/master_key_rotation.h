// Master key rotation, and at start the check that the keyring opens every stored secret (finishing an interrupted rotation).
#pragma once

#include "daemon/core/model.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace zerobyte::store {
class Store;
}
namespace zerobyte::secrets {
class Vault;
}

namespace zerobyte::api {

// The records a repository's secrets are sealed for (the vault's associated data).
std::string passwordRecord(const core::Repository& repository);         // "repositories/<id>"
std::string volumePasswordRecord(const core::Volume& volume);           // "volumes/<id>/password"
std::string volumePrivateKeyRecord(const core::Volume& volume);         // "volumes/<id>/private-key"
std::string pendingPasswordRecord(const core::Repository& repository);  // "repositories/<id>/pending-password"
// "repositories/<id>/credentials/<name>": a backend credential (private_key, secret_access_key, ...).
std::string repositoryCredentialRecord(const core::Repository& repository, const std::string& name);

// Whether any repository record holds a sealed secret (then a fresh master key would open nothing).
bool storeHoldsSealedSecrets(const store::Store& store);

enum class KeySource { Generate, File, Credential };

struct RotationRequest {
  KeySource source = KeySource::Generate;
  std::string path;        // KeySource::File: an absolute path the daemon reads
  std::string credential;  // KeySource::Credential: a name in $CREDENTIALS_DIRECTORY
};

struct RotationResult {
  uint32_t keyId = 0;   // the new current key
  size_t secrets = 0;   // secrets re-sealed
};

// Re-seals every stored secret (passwords and pending passwords) with a new master key, in one
// write transaction. Generate/File: (1) the key goes to <state>/master.key.new, synced;
// (2) the transaction commits; (3) master.key.new is renamed to master.key, synced. Credential:
// the transaction also records the credential's name (meta master_key_credential), and the
// state file key, which then seals nothing, is removed. A crash before (2) leaves everything
// sealed with the old key, after it with the new one (reconcileKeyring finishes the rename).
// Refused (Conflict) when the current key is a credential and the new one would be a state file,
// and when the new key is the current one. The vault's current key is the new one afterwards.
RotationResult rotateKeyring(store::Store& store, secrets::Vault& vault, const std::filesystem::path& stateDirectory,
                             const RotationRequest& request);

// At start, once the vault holds the current master key: loads <state>/master.key.new if a
// rotation left one, then requires every stored secret's key id to be in the keyring (else
// Error(Failed) naming the record and the key id it needs: the master key was changed without a
// rotation). A rotation that committed is finished (master.key.new becomes master.key and the
// current key); one that did not is undone (master.key.new removed). Nothing is ever re-sealed
// with a key that was not already sealing something.
void reconcileKeyring(store::Store& store, secrets::Vault& vault, const std::filesystem::path& stateDirectory);

}  // namespace zerobyte::api
