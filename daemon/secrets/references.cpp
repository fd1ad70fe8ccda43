// Secret references (file://, env://, credential://): checking their form and reading what they point to.
#include "daemon/secrets/vault.h"
#include "common/file_descriptor.h"

#include "common/errors.h"
#include "daemon/secrets/wipe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <system_error>

namespace zerobyte::secrets {
namespace {

constexpr std::string_view kFileScheme = "file://";
constexpr std::string_view kEnvScheme = "env://";
constexpr std::string_view kCredentialScheme = "credential://";
constexpr size_t kMaxSecretSize = 64 * 1024;

enum class Scheme { File, Env, Credential };

struct ParsedReference {
  Scheme scheme;
  std::string_view target;  // the path, variable name or credential name
};

[[noreturn]] void invalid(std::string_view reference, std::string_view how) {
  throw Error(ErrorCode::InvalidArgument,
              "the secret reference " + std::string(reference) + " is not valid: " + std::string(how));
}

bool isEnvironmentName(std::string_view name) {
  const auto isAlpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (name.empty() || !isAlpha(name.front())) return false;
  for (char c : name)
    if (!isAlpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

ParsedReference parse(std::string_view reference) {
  if (reference.find('\0') != std::string_view::npos) invalid("(with a NUL byte)", "it must not contain NUL bytes");
  if (reference.starts_with(kFileScheme)) {
    std::string_view path = reference.substr(kFileScheme.size());
    if (path.empty() || path.front() != '/' || path == "/")
      invalid(reference, "a file reference needs an absolute path to a file: write file:///path/to/file "
                         "(three slashes)");
    return {Scheme::File, path};
  }
  if (reference.starts_with(kEnvScheme)) {
    std::string_view name = reference.substr(kEnvScheme.size());
    if (!isEnvironmentName(name))
      invalid(reference, "write env://NAME with NAME made of letters, digits and '_', not starting with a digit");
    return {Scheme::Env, name};
  }
  if (reference.starts_with(kCredentialScheme)) {
    std::string_view name = reference.substr(kCredentialScheme.size());
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
      invalid(reference, "write credential://NAME with the name of a credential passed to the service "
                         "(LoadCredential=NAME:...), without '/'");
    return {Scheme::Credential, name};
  }
  // Not echoed: a value that is no reference at all may well be the secret itself, pasted in the wrong place.
  throw Error(ErrorCode::InvalidArgument,
              "a secret reference must be file:///absolute/path, env://NAME or credential://NAME "
              "(the value given is not shown, in case it is a secret itself)");
}

[[noreturn]] void unavailable(std::string_view reference, std::string_view why) {
  throw Error(ErrorCode::SecretUnavailable,
              "the secret reference " + std::string(reference) + " does not resolve: " + std::string(why));
}

std::string errnoText(int error) { return std::generic_category().message(error); }

// Strips one line ending: files written by editors and `echo` end with one, the secret does not.
void stripOneNewline(std::string& s) {
  if (s.ends_with("\r\n")) s.resize(s.size() - 2);
  else if (s.ends_with('\n')) s.resize(s.size() - 1);
}

// The checks run on the opened file (fstat), so a symlink may lead there but cannot swap it afterwards.
SecretString readSecretFile(const std::string& path, std::string_view reference) {
  // O_NONBLOCK: a FIFO planted at the path must not hang the daemon (regular files ignore it).
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    int error = errno;
    if (error == ENOENT) unavailable(reference, path + " does not exist");
    unavailable(reference, "cannot open " + path + ": " + errnoText(error));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) unavailable(reference, "cannot stat " + path + ": " + errnoText(errno));
  if (!S_ISREG(st.st_mode)) unavailable(reference, path + " is not a regular file");
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    unavailable(reference, path + " is owned by uid " + std::to_string(st.st_uid) +
                               "; a secret file must be owned by root or by the daemon's uid " +
                               std::to_string(::geteuid()) + " (chown it)");
  if ((st.st_mode & 007) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    unavailable(reference, path + " has mode " + mode + " and is open to other users: chmod o-rwx " + path +
                               " (and consider the secret exposed)");
  }
  if (st.st_size > static_cast<off_t>(kMaxSecretSize))
    unavailable(reference, path + " is larger than 64 KiB; a secret file holds only the secret");

  std::string content = heapBackedString(kMaxSecretSize + 1);
  content.resize(kMaxSecretSize + 1);
  size_t done = 0;
  // Read up to one byte past the limit: the size checked above may have changed since.
  while (done < content.size()) {
    ssize_t n = ::read(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      wipe(content);
      unavailable(reference, "cannot read " + path + ": " + errnoText(error));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > kMaxSecretSize) {
    wipe(content);
    unavailable(reference, path + " is larger than 64 KiB; a secret file holds only the secret");
  }
  content.resize(done);
  stripOneNewline(content);
  if (content.empty()) {
    wipe(content);
    unavailable(reference, path + " is empty");
  }
  return SecretString(std::move(content));
}

SecretString resolveEnvironment(std::string_view name, std::string_view reference) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) unavailable(reference, "the environment variable " + std::string(name) + " is not set");
  if (*value == '\0') unavailable(reference, "the environment variable " + std::string(name) + " is empty");
  std::string copy = heapBackedString(std::char_traits<char>::length(value));
  copy.append(value);
  return SecretString(std::move(copy));
}

SecretString resolveCredential(std::string_view name, std::string_view reference) {
  const char* directory = std::getenv("CREDENTIALS_DIRECTORY");
  if (directory == nullptr || *directory == '\0')
    unavailable(reference, "CREDENTIALS_DIRECTORY is not set, so the daemon was started without credentials: add "
                           "LoadCredential=" + std::string(name) + ":/path/to/file or LoadCredentialEncrypted=" +
                               std::string(name) + ":/path/to/file.cred to zerobyted.service");
  return readSecretFile(std::string(directory) + "/" + std::string(name), reference);
}

}  // namespace

void validateReference(std::string_view reference) { parse(reference); }

SecretString resolveReference(std::string_view reference) {
  ParsedReference parsed = parse(reference);
  switch (parsed.scheme) {
    case Scheme::File:
      return readSecretFile(std::string(parsed.target), reference);
    case Scheme::Env:
      return resolveEnvironment(parsed.target, reference);
    case Scheme::Credential:
      return resolveCredential(parsed.target, reference);
  }
  throw Error(ErrorCode::Internal, "unhandled secret reference scheme");
}

}  // namespace zerobyte::secrets
