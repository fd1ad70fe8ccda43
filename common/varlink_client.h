// A blocking Varlink client over a Unix socket, used by zerobytectl, tests and benchmarks.
#pragma once

#include "common/file_descriptor.h"
#include "common/varlink_wire.h"

#include <functional>
#include <string>

namespace zerobyte::varlink {

class Client {
 public:
  // Connects at once; throws Error(Unavailable) naming the path and the cause.
  explicit Client(const std::string& socketPath);
  // Takes over a socket that is already connected (e.g. made by a process of another user, whose
  // credentials the daemon then sees).
  explicit Client(FileDescriptor connectedSocket);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One call, one reply. An error reply is thrown as zerobyte::Error.
  nlohmann::json call(const std::string& method, const nlohmann::json& parameters = nlohmann::json::object());

  // A call with "more": onReply is called for every reply until one without "continues".
  // Return false from onReply to stop reading (the connection is then unusable).
  void callMore(const std::string& method, const nlohmann::json& parameters,
                const std::function<bool(const nlohmann::json&)>& onReply);

  // Low level: send raw bytes / read one reply (tests use these for hostile input).
  void sendRaw(std::string_view bytes);
  ReplyMessage readReply();

  int fd() const noexcept { return m_fd; }

 private:
  int m_fd = -1;
  std::string m_path;
  Framer m_framer;
};

}  // namespace zerobyte::varlink
