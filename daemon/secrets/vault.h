// The vault: AES-256-GCM sealing of stored secrets under the master key.
#pragma once

#include "daemon/core/model.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace zerobyte::secrets {

// A std::string-like holder that wipes its bytes (OPENSSL_cleanse) when destroyed.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string value) : m_value(std::move(value)) {}
  ~SecretString();
  SecretString(const SecretString&) = default;
  SecretString& operator=(const SecretString&) = default;
  SecretString(SecretString&&) noexcept = default;
  SecretString& operator=(SecretString&&) noexcept = default;
  const std::string& value() const noexcept { return m_value; }
  bool empty() const noexcept { return m_value.empty(); }

 private:
  std::string m_value;
};

struct MasterKey {
  SecretString key;       // 32 bytes
  uint32_t keyId = 0;     // first 4 bytes of SHA-256(key), stored with every ciphertext
  std::string source;     // "state-file:/var/lib/zerobyte/master.key"
};

// Reads <stateDirectory>/master.key, creating 32 random bytes (mode 0600) on first use.
// Throws Error(Failed) if the file is readable by group/others, not owned by this uid,
// or not exactly 32 bytes; the message says how to fix it.
MasterKey loadOrCreateMasterKey(const std::filesystem::path& stateDirectory);

class Vault {
 public:
  explicit Vault(MasterKey key);
  // Fresh random 96-bit nonce; `aad` binds the ciphertext to its record ("repositories/<id>").
  core::SealedSecret seal(std::string_view plaintext, std::string_view aad) const;
  // Throws Error(SecretUnavailable) naming `aad` if the key id differs or authentication fails.
  SecretString open(const core::SealedSecret& sealed, std::string_view aad) const;
  uint32_t keyId() const noexcept { return m_key.keyId; }
  const std::string& source() const noexcept { return m_key.source; }

 private:
  MasterKey m_key;
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
