// The vault: AES-256-GCM sealing of stored secrets under a keyring of master keys.
#pragma once

#include "daemon/core/model.h"
#include "daemon/secrets/key_material.h"
#include "daemon/secrets/master_key.h"
#include "daemon/secrets/secret_string.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::secrets {

// Several master keys by key id: the current one seals, open() picks the key a ciphertext names.
// More than one key is held only while a rotation is under way (or being finished at start).
class Vault {
 public:
  // `current` seals. Throws Error(Failed) if it is not 32 bytes.
  explicit Vault(MasterKey current);
  ~Vault();
  Vault(const Vault&) = delete;
  Vault& operator=(const Vault&) = delete;

  // Adds a key that opens what was sealed with it; the current key stays. A key whose id is
  // already in the keyring is refused (Error(Failed)): two keys must never share an id.
  void addKey(MasterKey key);
  // The key `keyId` (in the keyring) seals from now on.
  void makeCurrent(uint32_t keyId);
  // Forgets a key that is not the current one; its bytes are wiped.
  void removeKey(uint32_t keyId);
  bool hasKey(uint32_t keyId) const;
  std::vector<uint32_t> keyIds() const;

  // Fresh random 96-bit nonce; `aad` binds the ciphertext to its record ("repositories/<id>").
  core::SealedSecret seal(std::string_view plaintext, std::string_view aad) const;
  // The same with the key `keyId` from the keyring (a rotation seals with the next key first).
  core::SealedSecret seal(std::string_view plaintext, std::string_view aad, uint32_t keyId) const;
  // Throws Error(SecretUnavailable) naming `aad` if no key has the ciphertext's key id or
  // authentication fails.
  SecretString open(const core::SealedSecret& sealed, std::string_view aad) const;

  // The current key.
  uint32_t keyId() const noexcept { return m_current; }
  const std::string& source() const;
  // The credential's name when the current key comes from one, else empty.
  const std::string& credential() const;
  // Whether the current key's memory is locked against swapping.
  bool locked() const;

 private:
  struct Entry {
    std::unique_ptr<KeyMaterial> key;
    std::string source;
    std::string credential;
  };
  const Entry& entry(uint32_t keyId) const;

  std::map<uint32_t, Entry> m_keys;
  uint32_t m_current = 0;
};

// 256 random bits as 64 lowercase hex characters (a generated repository password).
SecretString randomPassword();

// Resolves a secret reference: file:///abs/path (owned by root or this uid, not readable
// by others; trailing newline stripped), env://NAME, credential://NAME (from
// $CREDENTIALS_DIRECTORY). Throws Error(SecretUnavailable) naming the reference.
SecretString resolveReference(std::string_view reference);
// Throws Error(InvalidArgument) if `reference` is not of one of those forms.
void validateReference(std::string_view reference);

}  // namespace zerobyte::secrets
