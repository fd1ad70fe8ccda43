// The master key file and AES-256-GCM sealing of stored secrets.
#include "daemon/secrets/vault.h"
#include "common/file_descriptor.h"

#include "common/errors.h"
#include "daemon/secrets/wipe.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

namespace zerobyte::secrets {
namespace {

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr const char* kMasterKeyFileName = "master.key";

std::string errnoText(int error) { return std::generic_category().message(error); }

std::string opensslText() {
  unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  std::array<char, 256> buffer{};
  ERR_error_string_n(code, buffer.data(), buffer.size());
  ERR_clear_error();
  return buffer.data();
}

std::string hexKeyId(uint32_t id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i, id >>= 4) out[static_cast<size_t>(i)] = kDigits[id & 0xf];
  return out;
}

void fillRandom(unsigned char* data, size_t size) {
  if (RAND_bytes(data, static_cast<int>(size)) != 1)
    throw Error(ErrorCode::Failed, "the random number generator failed: " + opensslText());
}

// Removes a half-written key file unless it was handed over.
class TemporaryFile {
 public:
  explicit TemporaryFile(std::filesystem::path path) : m_path(std::move(path)) {}
  ~TemporaryFile() {
    if (!m_path.empty()) ::unlink(m_path.c_str());
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  const std::filesystem::path& path() const noexcept { return m_path; }

 private:
  std::filesystem::path m_path;
};

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

uint32_t keyIdOf(const std::string& key) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(bytes(key), key.size(), digest.data());
  return (uint32_t{digest[0]} << 24) | (uint32_t{digest[1]} << 16) | (uint32_t{digest[2]} << 8) | uint32_t{digest[3]};
}

void syncDirectory(const std::filesystem::path& directory) {
  FileDescriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0)
    throw Error(ErrorCode::Failed, "cannot sync the directory " + directory.string() + ": " + errnoText(errno));
}

void writeAll(int fd, const std::string& data, const std::filesystem::path& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::Failed, "cannot write " + path.string() + ": " + errnoText(errno));
    done += static_cast<size_t>(n);
  }
}

// Puts the key in place without ever replacing one: if another process created master.key
// meanwhile, its key wins (replacing it would make every secret sealed under it unreadable).
// Returns false when that happened.
bool createMasterKey(const std::filesystem::path& path) {
  std::array<unsigned char, 8> suffix{};
  fillRandom(suffix.data(), suffix.size());
  std::string name = std::string(kMasterKeyFileName) + ".tmp-";
  for (unsigned char c : suffix) name += hexKeyId(c).substr(6);
  TemporaryFile temporary(path.parent_path() / name);

  FileDescriptor fd(::open(temporary.path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0)
    throw Error(ErrorCode::Failed, "cannot create " + temporary.path().string() + ": " + errnoText(errno));
  // The umask may have taken more bits away, never added any; make it exactly 0600.
  if (::fchmod(fd.get(), 0600) != 0)
    throw Error(ErrorCode::Failed, "cannot chmod 0600 " + temporary.path().string() + ": " + errnoText(errno));

  std::string key = heapBackedString(kKeySize);
  key.resize(kKeySize);
  try {
    fillRandom(bytes(key), key.size());
    writeAll(fd.get(), key, temporary.path());
  } catch (...) {
    wipe(key);
    throw;
  }
  wipe(key);
  if (::fsync(fd.get()) != 0 || fd.close() != 0)
    throw Error(ErrorCode::Failed, "cannot write " + temporary.path().string() + ": " + errnoText(errno));

  if (::renameat2(AT_FDCWD, temporary.path().c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    int error = errno;
    // Some filesystems cannot rename without replacing; link() has the same never-replace guarantee.
    if (error == EINVAL || error == ENOSYS) {
      if (::link(temporary.path().c_str(), path.c_str()) != 0) error = errno;
      else error = 0;
    }
    if (error == EEXIST) return false;
    if (error != 0)
      throw Error(ErrorCode::Failed, "cannot move the new master key into place at " + path.string() + ": " +
                                         errnoText(error));
  }
  syncDirectory(path.parent_path());
  return true;
}

SecretString readMasterKey(const std::filesystem::path& path) {
  const std::string shown = path.string();
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ELOOP)
      throw Error(ErrorCode::Failed, "the master key " + shown +
                                         " is a symbolic link: replace it with the regular file it points to "
                                         "(mode 0600, owned by the daemon's user)");
    throw Error(ErrorCode::Failed, "cannot open the master key " + shown + ": " + errnoText(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    throw Error(ErrorCode::Failed, "cannot stat the master key " + shown + ": " + errnoText(errno));
  if (!S_ISREG(st.st_mode))
    throw Error(ErrorCode::Failed, "the master key " + shown + " is not a regular file: move it away and restore "
                                                               "the key file from a backup");
  if (st.st_uid != ::geteuid())
    throw Error(ErrorCode::Failed, "the master key " + shown + " is owned by uid " + std::to_string(st.st_uid) +
                                       ", not by the daemon's uid " + std::to_string(::geteuid()) + ": chown " +
                                       std::to_string(::geteuid()) + " " + shown);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error(ErrorCode::Failed, "the master key " + shown + " has mode " + mode +
                                       " and may be readable by others: chmod 0600 " + shown +
                                       " (and consider the key compromised if others could read it)");
  }
  if (st.st_size != static_cast<off_t>(kKeySize))
    throw Error(ErrorCode::Failed, "the master key " + shown + " has " + std::to_string(st.st_size) +
                                       " bytes, expected 32 bytes: restore the key file from a backup");

  std::string key = heapBackedString(kKeySize);
  key.resize(kKeySize);
  size_t done = 0;
  while (done < kKeySize) {
    ssize_t n = ::read(fd.get(), key.data() + done, kKeySize - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int error = n < 0 ? errno : 0;
      wipe(key);
      throw Error(ErrorCode::Failed, "cannot read the master key " + shown + ": " +
                                         (error != 0 ? errnoText(error) : std::string("the file is shorter than 32 bytes")));
    }
    done += static_cast<size_t>(n);
  }
  return SecretString(std::move(key));
}

}  // namespace

SecretString::~SecretString() { wipe(m_value); }

MasterKey loadOrCreateMasterKey(const std::filesystem::path& stateDirectory) {
  std::error_code ec;
  if (std::filesystem::create_directories(stateDirectory, ec) && ::chmod(stateDirectory.c_str(), 0700) != 0)
    ec = std::error_code(errno, std::generic_category());
  if (ec)
    throw Error(ErrorCode::Failed, "cannot create the state directory " + stateDirectory.string() + ": " + ec.message());

  const std::filesystem::path path = stateDirectory / kMasterKeyFileName;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT)
      throw Error(ErrorCode::Failed, "cannot stat the master key " + path.string() + ": " + errnoText(errno));
    createMasterKey(path);
  }

  MasterKey master;
  master.key = readMasterKey(path);
  master.keyId = keyIdOf(master.key.value());
  master.source = "state-file:" + path.string();
  return master;
}

Vault::Vault(MasterKey key) : m_key(std::move(key)) {
  if (m_key.key.value().size() != kKeySize)
    throw Error(ErrorCode::Failed, "the master key from " + m_key.source + " has " +
                                       std::to_string(m_key.key.value().size()) + " bytes, expected 32 bytes");
}

core::SealedSecret Vault::seal(std::string_view plaintext, std::string_view aad) const {
  core::SealedSecret sealed;
  sealed.keyId = m_key.keyId;
  sealed.nonce.resize(kNonceSize);
  fillRandom(bytes(sealed.nonce), kNonceSize);

  const auto fail = [&](const char* step) -> Error {
    return Error(ErrorCode::Failed, std::string("sealing the secret of ") + std::string(aad) + " failed (" + step +
                                        "): " + opensslText());
  };
  CipherContext ctx = newCipherContext();
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceSize), nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(m_key.key.value()), bytes(sealed.nonce)) != 1)
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
  if (sealed.keyId != m_key.keyId)
    throw Error(ErrorCode::SecretUnavailable,
                "the secret of " + record + " was sealed with key " + hexKeyId(sealed.keyId) +
                    ", the daemon has key " + hexKeyId(m_key.keyId) + " (" + m_key.source +
                    "): start the daemon with the master key that sealed it, or set the secret again");
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
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(m_key.key.value()), bytes(sealed.nonce)) != 1 ||
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
