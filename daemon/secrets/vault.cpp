// AES-256-GCM sealing of stored secrets under the keyring of master keys.
#include "daemon/secrets/vault.h"

#include "common/errors.h"
#include "daemon/secrets/random_bytes.h"
#include "daemon/secrets/wipe.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <memory>

namespace zerobyte::secrets {
namespace {

constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

std::string opensslText() {
  unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  std::array<char, 256> buffer{};
  ERR_error_string_n(code, buffer.data(), buffer.size());
  ERR_clear_error();
  return buffer.data();
}

struct CipherContextDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, CipherContextDeleter>;

CipherContext newCipherContext() {
  CipherContext ctx(EVP_CIPHER_CTX_new());
  if (!ctx) throw Error(ErrorCode::Failed, "cannot create an OpenSSL cipher context: " + opensslText());
  return ctx;
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

int asInt(size_t size) {
  if (size > static_cast<size_t>(INT32_MAX)) throw Error(ErrorCode::Failed, "a secret larger than 2 GiB cannot be sealed");
  return static_cast<int>(size);
}

}  // namespace

Vault::Vault(MasterKey current) {
  m_current = current.keyId;
  addKey(std::move(current));
}

Vault::~Vault() = default;

void Vault::addKey(MasterKey key) {
  if (key.key.value().size() != kMasterKeySize)
    throw Error(ErrorCode::Failed, "the master key from " + key.source + " has " + std::to_string(key.key.value().size()) +
                                       " bytes, expected 32 bytes");
  if (m_keys.count(key.keyId))
    throw Error(ErrorCode::Failed, "the master key from " + key.source + " has key id " + hexKeyId(key.keyId) +
                                       ", which the key from " + m_keys.at(key.keyId).source + " has already");
  Entry e;
  e.key = std::make_unique<KeyMaterial>(key.key.value());
  e.source = std::move(key.source);
  e.credential = std::move(key.credential);
  m_keys.emplace(key.keyId, std::move(e));
}

void Vault::makeCurrent(uint32_t keyId) {
  entry(keyId);
  m_current = keyId;
}

void Vault::removeKey(uint32_t keyId) {
  if (keyId == m_current) throw Error(ErrorCode::Internal, "the current master key cannot be removed from the keyring");
  m_keys.erase(keyId);
}

bool Vault::hasKey(uint32_t keyId) const { return m_keys.count(keyId) != 0; }

std::vector<uint32_t> Vault::keyIds() const {
  std::vector<uint32_t> ids;
  for (const auto& [id, e] : m_keys) ids.push_back(id);
  return ids;
}

const Vault::Entry& Vault::entry(uint32_t keyId) const {
  auto it = m_keys.find(keyId);
  if (it == m_keys.end()) throw Error(ErrorCode::Internal, "no master key " + hexKeyId(keyId) + " in the keyring");
  return it->second;
}

const std::string& Vault::source() const { return entry(m_current).source; }
const std::string& Vault::credential() const { return entry(m_current).credential; }
bool Vault::locked() const { return entry(m_current).key->locked(); }

core::SealedSecret Vault::seal(std::string_view plaintext, std::string_view aad) const { return seal(plaintext, aad, m_current); }

core::SealedSecret Vault::seal(std::string_view plaintext, std::string_view aad, uint32_t keyId) const {
  const KeyMaterial& key = *entry(keyId).key;
  core::SealedSecret sealed;
  sealed.keyId = keyId;
  sealed.nonce.resize(kNonceSize);
  fillRandom(bytes(sealed.nonce), kNonceSize);

  const auto fail = [&](const char* step) -> Error {
    return Error(ErrorCode::Failed, std::string("sealing the secret of ") + std::string(aad) + " failed (" + step +
                                        "): " + opensslText());
  };
  CipherContext ctx = newCipherContext();
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceSize), nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), bytes(sealed.nonce)) != 1)
    throw fail("initialisation");
  int length = 0;
  if (EVP_EncryptUpdate(ctx.get(), nullptr, &length, bytes(aad), asInt(aad.size())) != 1) throw fail("aad");

  // GCM is a stream mode: the ciphertext is exactly as long as the plaintext.
  sealed.ciphertext.resize(plaintext.size() + kTagSize);
  int written = 0;
  if (!plaintext.empty() &&
      EVP_EncryptUpdate(ctx.get(), bytes(sealed.ciphertext), &written, bytes(plaintext), asInt(plaintext.size())) != 1)
    throw fail("encryption");
  int finalWritten = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), bytes(sealed.ciphertext) + written, &finalWritten) != 1) throw fail("final");
  if (static_cast<size_t>(written + finalWritten) != plaintext.size()) throw fail("length");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                          bytes(sealed.ciphertext) + plaintext.size()) != 1)
    throw fail("tag");
  return sealed;
}

SecretString Vault::open(const core::SealedSecret& sealed, std::string_view aad) const {
  const std::string record(aad);
  auto found = m_keys.find(sealed.keyId);
  if (found == m_keys.end()) {
    std::string held;
    for (const auto& [id, e] : m_keys) held += (held.empty() ? "" : ", ") + hexKeyId(id) + " (" + e.source + ")";
    throw Error(ErrorCode::SecretUnavailable,
                "the secret of " + record + " was sealed with key " + hexKeyId(sealed.keyId) + ", the daemon has key" +
                    (m_keys.size() > 1 ? "s " : " ") + held +
                    ": start the daemon with the master key that sealed it, or set the secret again");
  }
  const KeyMaterial& key = *found->second.key;
  const Error altered(ErrorCode::SecretUnavailable,
                      "the secret of " + record +
                          " cannot be decrypted: it was altered or belongs to another record; set the secret again");
  if (sealed.nonce.size() != kNonceSize || sealed.ciphertext.size() < kTagSize) throw altered;

  const size_t length = sealed.ciphertext.size() - kTagSize;
  std::string plain = heapBackedString(length);
  plain.resize(length);
  // The tag is checked only in EVP_DecryptFinal_ex: until then `plain` may hold unauthenticated bytes.
  const auto reject = [&](const Error& error) {
    wipe(plain);
    ERR_clear_error();
    return error;
  };

  CipherContext ctx = newCipherContext();
  int written = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceSize), nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), bytes(sealed.nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &written, bytes(aad), asInt(aad.size())) != 1)
    throw reject(Error(ErrorCode::Failed, "opening the secret of " + record + " failed: " + opensslText()));
  if (length > 0 &&
      EVP_DecryptUpdate(ctx.get(), bytes(plain), &written, bytes(sealed.ciphertext), asInt(length)) != 1)
    throw reject(altered);
  // OpenSSL's API takes a non-const tag buffer but only reads it.
  std::array<unsigned char, kTagSize> tag{};
  std::memcpy(tag.data(), sealed.ciphertext.data() + length, kTagSize);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag.data()) != 1)
    throw reject(altered);
  int finalWritten = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), bytes(plain) + (length > 0 ? written : 0), &finalWritten) != 1)
    throw reject(altered);
  return SecretString(std::move(plain));
}

SecretString randomPassword() {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::array<unsigned char, 32> raw{};
  fillRandom(raw.data(), raw.size());
  std::string hex = heapBackedString(raw.size() * 2);
  for (unsigned char c : raw) {
    hex += kDigits[c >> 4];
    hex += kDigits[c & 0xf];
  }
  OPENSSL_cleanse(raw.data(), raw.size());
  return SecretString(std::move(hex));
}

}  // namespace zerobyte::secrets
