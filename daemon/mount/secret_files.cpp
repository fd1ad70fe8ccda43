// Credential files for helpers and restic children: written 0600, overwritten before removal.
#include "daemon/mount/secret_files.h"

#include "common/errors.h"
#include "daemon/secrets/random_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace zerobyte::mount {
namespace {

std::string errnoText(const std::string& what, int error) { return what + ": " + std::strerror(error); }

}  // namespace

void writeSecretFile(const std::string& path, const std::string& content, uid_t uid, gid_t gid) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorCode::Failed, errnoText("cannot create " + path, errno));
  if ((uid != 0 || gid != 0) && ::fchown(fd, uid, gid) < 0) {
    int error = errno;
    ::close(fd);
    throw Error(ErrorCode::Failed, errnoText("cannot give " + path + " to uid " + std::to_string(uid), error));
  }
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int error = errno;
      ::close(fd);
      throw Error(ErrorCode::Failed, errnoText("cannot write " + path, error));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

void removeSecretDirectory(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string path = entry.path();
    int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st {};
      if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        std::string zeros(static_cast<size_t>(st.st_size), '\0');
        [[maybe_unused]] ssize_t n = ::write(fd, zeros.data(), zeros.size());
      }
      ::close(fd);
    }
    ::unlink(path.c_str());
  }
  // Whatever a helper made there itself (a directory under HOME).
  std::filesystem::remove_all(dir, ec);
}

std::vector<std::string> readChildLog(const std::string& path, uid_t owner, size_t maxBytes) {
  std::vector<std::string> lines;
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return lines;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != owner) {
    ::close(fd);
    return lines;
  }
  const off_t start = st.st_size > static_cast<off_t>(maxBytes) ? st.st_size - static_cast<off_t>(maxBytes) : 0;
  std::string text(maxBytes, '\0');
  ssize_t n;
  do n = ::pread(fd, text.data(), text.size(), start);
  while (n < 0 && errno == EINTR);
  ::close(fd);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  size_t from = 0;
  if (start > 0) from = text.find('\n') == std::string::npos ? text.size() : text.find('\n') + 1;  // a cut first line
  while (from < text.size()) {
    size_t end = text.find('\n', from);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(from, end - from);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
    from = end + 1;
  }
  return lines;
}

std::string randomSuffix() {
  unsigned char bytes[6];
  secrets::fillRandom(bytes, sizeof(bytes));
  std::string out;
  for (unsigned char b : bytes) {
    out += "0123456789abcdef"[b >> 4];
    out += "0123456789abcdef"[b & 0xf];
  }
  return out;
}

}  // namespace zerobyte::mount
