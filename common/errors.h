// The one error table: names shared by the Varlink socket, D-Bus and zerobytectl (with exit codes).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace zerobyte {

// X(Code, exit status of zerobytectl, one-line meaning)
#define ZEROBYTE_ERRORS(X)                                                                    \
  X(Failed, 1, "the operation failed; the message says why")                                  \
  X(InvalidArgument, 2, "a name, path, option or value is not valid")                         \
  X(NotFound, 4, "no such volume, repository, job or snapshot")                               \
  X(NotAuthorized, 5, "the caller may not do this")                                           \
  X(AlreadyExists, 6, "a resource with this name exists already")                             \
  X(Conflict, 6, "the resource is not in a state that allows this")                           \
  X(ReadOnly, 6, "the resource is declared in the configuration file and read-only here")    \
  X(Busy, 6, "the repository or daemon is busy; try again later")                             \
  X(RateLimited, 6, "too many requests or denials from this user; retry after the time given")  \
  X(Unavailable, 7, "the daemon cannot be reached")                                           \
  X(Cancelled, 8, "the job was cancelled or interrupted")                                     \
  X(NoRepository, 9, "there is no restic repository at that location")                        \
  X(WrongPassword, 9, "the repository password is wrong")                                     \
  X(RepositoryLocked, 6, "the repository is locked by another process")                       \
  X(Unreachable, 11, "the repository's server cannot be reached, or refuses the connection or its credentials") \
  X(SecretUnavailable, 9, "a stored secret cannot be decrypted or a reference does not resolve") \
  X(MountFailed, 10, "a volume could not be mounted, or its mount is dead; the message says why") \
  X(NotMounted, 6, "the volume is not mounted")                                               \
  X(ConfigInvalid, 2, "the configuration file is not valid")                                  \
  X(InvalidRequest, 2, "the request is not a valid Varlink message")                          \
  X(MessageTooLarge, 2, "the request is larger than the daemon accepts")                      \
  X(InterfaceNotFound, 2, "no such Varlink interface")                                        \
  X(MethodNotFound, 2, "no such method")                                                      \
  X(InvalidParameter, 2, "a parameter is missing, unknown or of the wrong type")              \
  X(ExpectedMore, 2, "the method streams its replies and must be called with more")           \
  X(Internal, 1, "an internal error in the daemon; see its journal")

enum class ErrorCode {
#define ZEROBYTE_ERROR_ENUM(name, exitCode, text) name,
  ZEROBYTE_ERRORS(ZEROBYTE_ERROR_ENUM)
#undef ZEROBYTE_ERROR_ENUM
};

struct ErrorInfo {
  ErrorCode code;
  std::string_view name;         // short name, e.g. "NotFound"
  int exitCode;                  // zerobytectl exit status
  std::string_view description;  // one line
};

const ErrorInfo& errorInfo(ErrorCode code);
std::string_view errorName(ErrorCode code);
// Fully qualified Varlink error, e.g. "org.zerobyte.Daemon.NotFound" or "org.varlink.service.MethodNotFound".
std::string varlinkErrorName(ErrorCode code);
// Accepts both the short and the qualified Varlink/D-Bus forms.
std::optional<ErrorCode> errorFromName(std::string_view name);
// D-Bus error name, e.g. "org.zerobyte.Daemon1.Error.NotFound".
std::string dbusErrorName(ErrorCode code);

// The one exception type that crosses layers. `details` carries structured extras
// (e.g. {"parameter": "name"}) that end up in the reply parameters next to "message".
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message, nlohmann::json details = nlohmann::json::object());
  ErrorCode code() const noexcept { return m_code; }
  const nlohmann::json& details() const noexcept { return m_details; }

 private:
  ErrorCode m_code;
  nlohmann::json m_details;
};

}  // namespace zerobyte
