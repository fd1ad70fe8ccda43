// Blocking Varlink client.
#include "common/varlink_client.h"

#include "common/names.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zerobyte::varlink {

Client::Client(const std::string& socketPath) : m_path(socketPath), m_framer(kMaxMessageSize * 64) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socketPath.size() >= sizeof(addr.sun_path))
    throw Error(ErrorCode::InvalidArgument, "socket path is too long: " + socketPath);
  std::memcpy(addr.sun_path, socketPath.c_str(), socketPath.size() + 1);
  m_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (m_fd < 0) throw Error(ErrorCode::Unavailable, std::string("cannot create a socket: ") + std::strerror(errno));
  if (::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    int e = errno;
    ::close(m_fd);
    m_fd = -1;
    std::string hint = (e == ENOENT || e == ECONNREFUSED) ? " (is zerobyted running? start it with 'systemctl start zerobyted')" : "";
    throw Error(ErrorCode::Unavailable, "cannot connect to " + socketPath + ": " + std::strerror(e) + hint);
  }
}

Client::Client(FileDescriptor connectedSocket)
    : m_fd(connectedSocket.release()), m_path("a connected socket"), m_framer(kMaxMessageSize * 64) {
  if (m_fd < 0) throw Error(ErrorCode::InvalidArgument, "no socket to take over");
}

Client::~Client() {
  if (m_fd >= 0) ::close(m_fd);
}

void Client::sendRaw(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorCode::Unavailable, std::string("lost the connection to zerobyted: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

ReplyMessage Client::readReply() {
  for (;;) {
    if (auto msg = m_framer.next()) return parseReply(*msg);
    if (m_framer.overflowed()) throw Error(ErrorCode::InvalidRequest, "the daemon sent an oversized reply");
    char buf[65536];
    ssize_t n = ::recv(m_fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::Unavailable, std::string("lost the connection to zerobyted: ") + std::strerror(errno));
    if (n == 0) throw Error(ErrorCode::Unavailable, "zerobyted closed the connection");
    m_framer.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

nlohmann::json Client::call(const std::string& method, const nlohmann::json& parameters) {
  CallMessage msg{method, parameters, false, false};
  sendRaw(encode(msg));
  ReplyMessage reply = readReply();
  if (reply.error) throw errorFromReply(reply);
  return reply.parameters;
}

void Client::callMore(const std::string& method, const nlohmann::json& parameters,
                      const std::function<bool(const nlohmann::json&)>& onReply) {
  CallMessage msg{method, parameters, true, false};
  sendRaw(encode(msg));
  for (;;) {
    ReplyMessage reply = readReply();
    if (reply.error) throw errorFromReply(reply);
    if (!onReply(reply.parameters)) return;
    if (!reply.continues) return;
  }
}

}  // namespace zerobyte::varlink
