// Where the master key comes from (a systemd credential, a file in the state directory) and the files of a rotation.
#pragma once

#include "daemon/secrets/secret_string.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace zerobyte::secrets {

// The credential the daemon looks for first ($CREDENTIALS_DIRECTORY/zerobyte.master-key).
inline constexpr std::string_view kMasterKeyCredential = "zerobyte.master-key";
inline constexpr size_t kMasterKeySize = 32;

struct MasterKey {
  SecretString key;        // 32 bytes
  uint32_t keyId = 0;      // first 4 bytes of SHA-256(key), stored with every ciphertext
  std::string source;      // "state-file:/var/lib/zerobyte/master.key" or "credential zerobyte.master-key"
  std::string credential;  // the credential's name when the key comes from one, else empty
};

// 8 lowercase hex digits, as logs and replies show a key id.
std::string hexKeyId(uint32_t keyId);
// The first 4 bytes of SHA-256(key), big-endian.
uint32_t keyIdOf(std::string_view key);

// The key made from the bytes of a credential or key file: those bytes when there are exactly
// 32, else SHA-256 of all of them (a trailing newline included). Fewer than 32 bytes are
// refused: Error(Failed) naming `what` ("the credential zerobyte.master-key").
SecretString keyFromMaterial(std::string_view material, std::string_view what);

// Refuses (Error(Failed)) a state directory that is not owned by the daemon's uid or has any
// group or other permission bit: it holds the master key and the sealed secrets.
void checkStateDirectory(const std::filesystem::path& stateDirectory);

// Reads <stateDirectory>/master.key, creating 32 random bytes (mode 0600) on first use.
// Throws Error(Failed) if the file is readable by group/others, not owned by this uid,
// or not exactly 32 bytes; the message says how to fix it.
MasterKey loadOrCreateMasterKey(const std::filesystem::path& stateDirectory);

// The master key at start, from the first source that exists:
//  1. the credential a rotation recorded (`recordedCredential`), which must then exist;
//  2. the credential zerobyte.master-key in $CREDENTIALS_DIRECTORY;
//  3. <stateDirectory>/master.key, created when missing only if `mayCreate` (a store that
//     already holds sealed secrets needs the key that sealed them, not a fresh one).
// Throws Error(Failed) naming the source and how to fix it.
MasterKey loadMasterKey(const std::filesystem::path& stateDirectory, const std::optional<std::string>& recordedCredential,
                        bool mayCreate);

// $CREDENTIALS_DIRECTORY/<name> as a master key (see keyFromMaterial). Throws Error(Failed).
MasterKey loadCredentialKey(std::string_view name);
// Whether $CREDENTIALS_DIRECTORY/<name> exists.
bool credentialExists(std::string_view name);
// A key file an administrator names for a rotation: an absolute path to a regular file owned by
// root (or the daemon's uid) without group or other permission bits, of at least 32 bytes (see
// keyFromMaterial). Throws Error(InvalidArgument) naming the path.
MasterKey loadKeyFile(const std::filesystem::path& path);
// 32 fresh random bytes, stored nowhere yet.
MasterKey generateMasterKey();

// ---- the files of a rotation (<state>/master.key.new) ----

// Writes the key to <state>/master.key.new (0600, synced, then the directory synced), through a
// temporary file so that master.key.new is either whole or absent.
void writeNewMasterKeyFile(const std::filesystem::path& stateDirectory, const MasterKey& key);
// <state>/master.key.new when present (checked like master.key). Its source names master.key:
// where the key will live once the rotation is finished.
std::optional<MasterKey> loadNewMasterKeyFile(const std::filesystem::path& stateDirectory);
// master.key.new → master.key (replacing it), then the directory synced.
void promoteNewMasterKeyFile(const std::filesystem::path& stateDirectory);
// Removes master.key.new (and temporary files a crash left while writing it); absent is fine.
void discardNewMasterKeyFile(const std::filesystem::path& stateDirectory);
// Removes master.key once the master key lives in a credential; absent is fine.
void removeMasterKeyFile(const std::filesystem::path& stateDirectory);
bool masterKeyFileExists(const std::filesystem::path& stateDirectory);

}  // namespace zerobyte::secrets
