// The master key's sources (credential, state file, key file, generator) and the rotation's key files.
#include "daemon/secrets/master_key.h"

#include "common/errors.h"
#include "common/file_descriptor.h"
#include "daemon/secrets/random_bytes.h"
#include "daemon/secrets/wipe.h"

#include <openssl/sha.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <system_error>

namespace zerobyte::secrets {
namespace {

constexpr const char* kMasterKeyFileName = "master.key";
constexpr const char* kNewMasterKeyFileName = "master.key.new";
// Credentials and key files are small; a larger file is a mistake, not a key.
constexpr size_t kMaxKeyMaterial = 1024 * 1024;

std::string errnoText(int error) { return std::generic_category().message(error); }

std::string modeText(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

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
  void release() noexcept { m_path.clear(); }

 private:
  std::filesystem::path m_path;
};

void syncDirectory(const std::filesystem::path& directory) {
  FileDescriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0)
    throw Error(ErrorCode::Failed, "cannot sync the directory " + directory.string() + ": " + errnoText(errno));
}

void writeAll(int fd, std::string_view data, const std::filesystem::path& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::Failed, "cannot write " + path.string() + ": " + errnoText(errno));
    done += static_cast<size_t>(n);
  }
}

std::filesystem::path temporaryName(const std::filesystem::path& directory, const char* base) {
  std::array<unsigned char, 8> suffix{};
  fillRandom(suffix.data(), suffix.size());
  std::string name = std::string(base) + ".tmp-";
  for (unsigned char c : suffix) name += hexKeyId(c).substr(6);
  return directory / name;
}

// A new file holding `key` (0600, synced); the caller moves it into place.
void writeKeyFile(const TemporaryFile& file, std::string_view key) {
  FileDescriptor fd(::open(file.path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) throw Error(ErrorCode::Failed, "cannot create " + file.path().string() + ": " + errnoText(errno));
  // The umask may have taken more bits away, never added any; make it exactly 0600.
  if (::fchmod(fd.get(), 0600) != 0)
    throw Error(ErrorCode::Failed, "cannot chmod 0600 " + file.path().string() + ": " + errnoText(errno));
  writeAll(fd.get(), key, file.path());
  if (::fsync(fd.get()) != 0 || fd.close() != 0)
    throw Error(ErrorCode::Failed, "cannot write " + file.path().string() + ": " + errnoText(errno));
}

// Puts the key in place without ever replacing one: if another process created master.key
// meanwhile, its key wins (replacing it would make every secret sealed under it unreadable).
// Returns false when that happened.
bool createMasterKey(const std::filesystem::path& path) {
  TemporaryFile temporary(temporaryName(path.parent_path(), kMasterKeyFileName));
  std::string key = heapBackedString(kMasterKeySize);
  key.resize(kMasterKeySize);
  try {
    fillRandom(reinterpret_cast<unsigned char*>(key.data()), key.size());
    writeKeyFile(temporary, key);
  } catch (...) {
    wipe(key);
    throw;
  }
  wipe(key);

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
  } else {
    temporary.release();
  }
  syncDirectory(path.parent_path());
  return true;
}

SecretString readMasterKeyFile(const std::filesystem::path& path) {
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
  if ((st.st_mode & 077) != 0)
    throw Error(ErrorCode::Failed, "the master key " + shown + " has mode " + modeText(st.st_mode) +
                                       " and may be readable by others: chmod 0600 " + shown +
                                       " (and consider the key compromised if others could read it)");
  if (st.st_size != static_cast<off_t>(kMasterKeySize))
    throw Error(ErrorCode::Failed, "the master key " + shown + " has " + std::to_string(st.st_size) +
                                       " bytes, expected 32 bytes: restore the key file from a backup");

  std::string key = heapBackedString(kMasterKeySize);
  key.resize(kMasterKeySize);
  size_t done = 0;
  while (done < kMasterKeySize) {
    ssize_t n = ::read(fd.get(), key.data() + done, kMasterKeySize - done);
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

MasterKey fromStateFile(SecretString key, const std::filesystem::path& path) {
  MasterKey master;
  master.keyId = keyIdOf(key.value());
  master.key = std::move(key);
  master.source = "state-file:" + path.string();
  return master;
}

// Reads a whole small file the checks already accepted (at most kMaxKeyMaterial bytes).
SecretString readMaterial(int fd, const std::string& shown, ErrorCode code) {
  std::string content = heapBackedString(kMaxKeyMaterial + 1);
  content.resize(kMaxKeyMaterial + 1);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::read(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      wipe(content);
      throw Error(code, "cannot read " + shown + ": " + errnoText(error));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > kMaxKeyMaterial) {
    wipe(content);
    throw Error(code, shown + " is larger than 1 MiB; a master key is 32 bytes (or a little more text)");
  }
  content.resize(done);
  return SecretString(std::move(content));
}

bool validCredentialName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

std::string credentialsDirectory() {
  const char* directory = std::getenv("CREDENTIALS_DIRECTORY");
  return directory != nullptr ? directory : "";
}

std::string howToProvide(std::string_view name) {
  return "add LoadCredentialEncrypted=" + std::string(name) + ":/etc/credstore.encrypted/" + std::string(name) +
         " (or LoadCredential=" + std::string(name) + ":/path/to/key) to zerobyted.service";
}

}  // namespace

std::string hexKeyId(uint32_t id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i, id >>= 4) out[static_cast<size_t>(i)] = kDigits[id & 0xf];
  return out;
}

uint32_t keyIdOf(std::string_view key) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(bytes(key), key.size(), digest.data());
  uint32_t id = (uint32_t{digest[0]} << 24) | (uint32_t{digest[1]} << 16) | (uint32_t{digest[2]} << 8) | uint32_t{digest[3]};
  OPENSSL_cleanse(digest.data(), digest.size());
  return id;
}

SecretString keyFromMaterial(std::string_view material, std::string_view what) {
  if (material.size() < kMasterKeySize)
    throw Error(ErrorCode::Failed, std::string(what) + " has " + std::to_string(material.size()) +
                                       " bytes; a master key needs at least 32 bytes (256 bits): make one with "
                                       "'head -c 32 /dev/urandom'");
  std::string key = heapBackedString(kMasterKeySize);
  if (material.size() == kMasterKeySize) {
    key.assign(material);
  } else {
    key.resize(SHA256_DIGEST_LENGTH);
    SHA256(bytes(material), material.size(), reinterpret_cast<unsigned char*>(key.data()));
  }
  return SecretString(std::move(key));
}

void checkStateDirectory(const std::filesystem::path& stateDirectory) {
  const std::string shown = stateDirectory.string();
  struct stat st {};
  if (::stat(stateDirectory.c_str(), &st) != 0)
    throw Error(ErrorCode::Failed, "cannot stat the state directory " + shown + ": " + errnoText(errno));
  if (!S_ISDIR(st.st_mode)) throw Error(ErrorCode::Failed, "the state directory " + shown + " is not a directory");
  if (st.st_uid != ::geteuid())
    throw Error(ErrorCode::Failed, "the state directory " + shown + " is owned by uid " + std::to_string(st.st_uid) +
                                       ", not by the daemon's uid " + std::to_string(::geteuid()) +
                                       "; it holds the master key and the sealed secrets: chown " +
                                       std::to_string(::geteuid()) + " " + shown);
  if ((st.st_mode & 077) != 0)
    throw Error(ErrorCode::Failed, "the state directory " + shown + " has mode " + modeText(st.st_mode) +
                                       " and is open to other users; it holds the master key and the sealed "
                                       "secrets: chmod 0700 " + shown);
}

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
  return fromStateFile(readMasterKeyFile(path), path);
}

MasterKey loadMasterKey(const std::filesystem::path& stateDirectory, const std::optional<std::string>& recordedCredential,
                        bool mayCreate) {
  if (recordedCredential) {
    if (!credentialExists(*recordedCredential))
      throw Error(ErrorCode::Failed,
                  "the master key is the systemd credential " + *recordedCredential +
                      " (recorded by 'zerobytectl secrets rotate-master-key --from-credential " + *recordedCredential +
                      "'), but " +
                      (credentialsDirectory().empty() ? std::string("CREDENTIALS_DIRECTORY is not set")
                                                      : credentialsDirectory() + "/" + *recordedCredential +
                                                            " does not exist") +
                      ": " + howToProvide(*recordedCredential));
    return loadCredentialKey(*recordedCredential);
  }
  if (credentialExists(kMasterKeyCredential)) return loadCredentialKey(kMasterKeyCredential);
  const std::filesystem::path path = stateDirectory / kMasterKeyFileName;
  if (!mayCreate && !masterKeyFileExists(stateDirectory))
    throw Error(ErrorCode::Failed, "the master key " + path.string() +
                                       " is missing, but the store holds secrets sealed with a master key: restore " +
                                       path.string() + " from a backup, or provide the key that sealed them as the "
                                       "credential " + std::string(kMasterKeyCredential));
  return loadOrCreateMasterKey(stateDirectory);
}

bool credentialExists(std::string_view name) {
  const std::string directory = credentialsDirectory();
  if (directory.empty() || !validCredentialName(name)) return false;
  struct stat st {};
  return ::lstat((directory + "/" + std::string(name)).c_str(), &st) == 0;
}

MasterKey loadCredentialKey(std::string_view name) {
  const std::string what = "the credential " + std::string(name);
  if (!validCredentialName(name))
    throw Error(ErrorCode::Failed, "\"" + std::string(name) + "\" is not a credential name: it must not be empty, "
                                   "\".\", \"..\" or contain '/'");
  const std::string directory = credentialsDirectory();
  if (directory.empty())
    throw Error(ErrorCode::Failed, what + " cannot be read: CREDENTIALS_DIRECTORY is not set, so zerobyted was "
                                          "started without credentials: " + howToProvide(name));
  const std::string path = directory + "/" + std::string(name);
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    int error = errno;
    if (error == ENOENT)
      throw Error(ErrorCode::Failed, what + " does not exist (" + path + "): " + howToProvide(name));
    throw Error(ErrorCode::Failed, "cannot open " + what + " (" + path + "): " + errnoText(error));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    throw Error(ErrorCode::Failed, "cannot stat " + what + " (" + path + "): " + errnoText(errno));
  if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::Failed, what + " (" + path + ") is not a regular file");
  SecretString material = readMaterial(fd.get(), what + " (" + path + ")", ErrorCode::Failed);
  MasterKey master;
  master.key = keyFromMaterial(material.value(), what);
  master.keyId = keyIdOf(master.key.value());
  master.source = "credential " + std::string(name);
  master.credential = std::string(name);
  return master;
}

MasterKey loadKeyFile(const std::filesystem::path& path) {
  const std::string shown = path.string();
  const nlohmann::json parameter = {{"parameter", "path"}};
  if (!path.is_absolute())
    throw Error(ErrorCode::InvalidArgument, "the key file " + shown + " is not an absolute path", parameter);
  // Followed if it is a symbolic link; the checks below look at the file actually opened.
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0)
    throw Error(ErrorCode::InvalidArgument, "cannot open the key file " + shown + ": " + errnoText(errno), parameter);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    throw Error(ErrorCode::InvalidArgument, "cannot stat the key file " + shown + ": " + errnoText(errno), parameter);
  if (!S_ISREG(st.st_mode))
    throw Error(ErrorCode::InvalidArgument, "the key file " + shown + " is not a regular file", parameter);
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    throw Error(ErrorCode::InvalidArgument, "the key file " + shown + " is owned by uid " + std::to_string(st.st_uid) +
                                                "; a master key file must be owned by root: chown root " + shown,
                parameter);
  if ((st.st_mode & 077) != 0)
    throw Error(ErrorCode::InvalidArgument, "the key file " + shown + " has mode " + modeText(st.st_mode) +
                                                " and is open to other users: chmod 0600 " + shown +
                                                " (and make a new key if others could read it)",
                parameter);
  SecretString material = readMaterial(fd.get(), "the key file " + shown, ErrorCode::InvalidArgument);
  MasterKey master;
  try {
    master.key = keyFromMaterial(material.value(), "the key file " + shown);
  } catch (const Error& e) {
    throw Error(ErrorCode::InvalidArgument, e.what(), parameter);
  }
  master.keyId = keyIdOf(master.key.value());
  master.source = "key file " + shown;
  return master;
}

MasterKey generateMasterKey() {
  std::string key = heapBackedString(kMasterKeySize);
  key.resize(kMasterKeySize);
  try {
    fillRandom(reinterpret_cast<unsigned char*>(key.data()), key.size());
  } catch (...) {
    wipe(key);
    throw;
  }
  MasterKey master;
  master.key = SecretString(std::move(key));
  master.keyId = keyIdOf(master.key.value());
  master.source = "generated";
  return master;
}

void writeNewMasterKeyFile(const std::filesystem::path& stateDirectory, const MasterKey& key) {
  if (key.key.value().size() != kMasterKeySize)
    throw Error(ErrorCode::Internal, "a master key to store must have 32 bytes");
  TemporaryFile temporary(temporaryName(stateDirectory, kNewMasterKeyFileName));
  writeKeyFile(temporary, key.key.value());
  const std::filesystem::path path = stateDirectory / kNewMasterKeyFileName;
  if (::rename(temporary.path().c_str(), path.c_str()) != 0)
    throw Error(ErrorCode::Failed, "cannot move the new master key into place at " + path.string() + ": " +
                                       errnoText(errno));
  temporary.release();
  syncDirectory(stateDirectory);
}

std::optional<MasterKey> loadNewMasterKeyFile(const std::filesystem::path& stateDirectory) {
  const std::filesystem::path path = stateDirectory / kNewMasterKeyFileName;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw Error(ErrorCode::Failed, "cannot stat " + path.string() + ": " + errnoText(errno));
  }
  return fromStateFile(readMasterKeyFile(path), stateDirectory / kMasterKeyFileName);
}

void promoteNewMasterKeyFile(const std::filesystem::path& stateDirectory) {
  const std::filesystem::path from = stateDirectory / kNewMasterKeyFileName, to = stateDirectory / kMasterKeyFileName;
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw Error(ErrorCode::Failed, "cannot rename " + from.string() + " to " + to.string() + ": " + errnoText(errno));
  syncDirectory(stateDirectory);
}

void discardNewMasterKeyFile(const std::filesystem::path& stateDirectory) {
  bool removed = false;
  const std::string temporaryPrefix = std::string(kNewMasterKeyFileName) + ".tmp-";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(stateDirectory, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != kNewMasterKeyFileName && !name.starts_with(temporaryPrefix)) continue;
    if (::unlink(entry.path().c_str()) != 0 && errno != ENOENT)
      throw Error(ErrorCode::Failed, "cannot remove " + entry.path().string() + ": " + errnoText(errno));
    removed = true;
  }
  if (ec) throw Error(ErrorCode::Failed, "cannot list " + stateDirectory.string() + ": " + ec.message());
  if (removed) syncDirectory(stateDirectory);
}

void removeMasterKeyFile(const std::filesystem::path& stateDirectory) {
  const std::filesystem::path path = stateDirectory / kMasterKeyFileName;
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return;
    throw Error(ErrorCode::Failed, "cannot remove " + path.string() + ": " + errnoText(errno));
  }
  syncDirectory(stateDirectory);
}

bool masterKeyFileExists(const std::filesystem::path& stateDirectory) {
  struct stat st {};
  return ::lstat((stateDirectory / kMasterKeyFileName).c_str(), &st) == 0;
}

}  // namespace zerobyte::secrets
