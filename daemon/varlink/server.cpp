// Varlink server: one call at a time per connection (replies keep call order), streams, hostile-input limits.
#include "daemon/varlink/server.h"

#include "common/names.h"
#include "common/varlink_idl.h"
#include "common/version.h"
#include "daemon/api/caller.h"
#include "daemon/core/token_bucket.h"
#include "daemon/log/log.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

namespace zerobyte::varlink {

using nlohmann::json;

namespace {

// SO_PEERPIDFD (Linux 6.5): a pidfd of the process that connected. glibc 2.36 lacks the name.
constexpr int kSoPeerPidfd = 77;

// The key of the global connection limit in the refusal log (no real uid is -1).
constexpr uid_t kAnyUid = static_cast<uid_t>(-1);

constexpr uint64_t kRefusalLogIntervalUsec = 60ULL * 1000 * 1000;

// Who is at the other end of a just-accepted socket, tied to that very process: its start time
// for polkit's unix-process subject, and a pidfd that outlives any reuse of its pid. nullopt when
// the process cannot be identified (it has already exited, or its pid is not visible here); the
// reason is in *why.
std::optional<api::Caller> identifyPeer(int fd, std::string* why) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    *why = std::string("SO_PEERCRED failed: ") + std::strerror(errno);
    return std::nullopt;
  }
  api::Caller caller;
  caller.pid = cred.pid;
  caller.uid = cred.uid;
  caller.gid = cred.gid;
  caller.transport = "varlink";
  if (cred.pid <= 0) {
    *why = "the client's pid is not visible in the daemon's pid namespace";
    return std::nullopt;
  }
  int raw = -1;
  len = sizeof(raw);
  FileDescriptor pidfd;
  if (getsockopt(fd, SOL_SOCKET, kSoPeerPidfd, &raw, &len) == 0 && raw >= 0) pidfd.reset(raw);
  std::optional<uint64_t> startTime;
  if (pidfd.valid()) {
    // The pidfd names the process that connected; while it lives the pid is still its own, so
    // the start time read before the check is that process's.
    startTime = api::processStartTime(cred.pid);
    if (startTime && !api::pidfdAlive(pidfd.get())) startTime.reset();
  } else {
    // Older kernels: a pidfd taken now, and the start time on both sides of taking it, so that
    // a process that took over the pid in between is not mistaken for the client.
    auto before = api::processStartTime(cred.pid);
    pidfd = api::openPidfd(cred.pid);
    auto after = api::processStartTime(cred.pid);
    if (before && after && *before == *after && (!pidfd.valid() || api::pidfdAlive(pidfd.get()))) startTime = after;
    // A pid reused before accept ran names another process on both sides of the pidfd: it must at least be the
    // client's user, or polkit would be asked about someone else's process (and session).
    if (startTime && api::processRealUid(cred.pid) != std::optional<uid_t>(cred.uid)) startTime.reset();
  }
  if (!startTime) {
    *why = "the client process " + std::to_string(cred.pid) + " exited before it could be identified";
    return std::nullopt;
  }
  caller.startTime = *startTime;
  if (pidfd.valid()) caller.pidfd = std::make_shared<FileDescriptor>(std::move(pidfd));
  return caller;
}

}  // namespace

class Call;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, int fd, api::Caller caller)
      : m_server(server), m_fd(fd), m_caller(std::move(caller)), m_framer(server.m_limits.maxMessageSize) {
    if (m_caller.uid != 0 && server.m_limits.messagesPerSecond > 0)
      m_bucket.emplace(std::max(1.0, server.m_limits.messageBurst), server.m_limits.messagesPerSecond, loop::EventLoop::nowUsec());
  }
  ~Connection() {
    if (m_fd >= 0) ::close(m_fd);
  }

  void start() {
    auto weak = weak_from_this();
    m_source = std::make_unique<loop::IoSource>(m_server.m_loop, m_fd, EPOLLIN | EPOLLRDHUP, [weak](uint32_t events) {
      if (auto self = weak.lock()) self->onEvents(events);
    });
  }

  bool closed() const noexcept { return m_closed; }
  const api::Caller& caller() const noexcept { return m_caller; }

  void send(const ReplyMessage& reply) {
    if (m_closed) return;
    m_out += encode(reply);
    flush();
  }

  // The active call has sent its final reply: the next queued one may run.
  void callFinished() {
    m_active.reset();
    if (m_closed) return;
    auto self = shared_from_this();
    m_server.m_loop.post([weak = weak_from_this()] {
      if (auto c = weak.lock()) c->dispatchNext();
    });
  }

  void close(const char* why);

  void addGoneCallback(std::function<void()> cb) { m_goneCallbacks.push_back(std::move(cb)); }

 private:
  void onEvents(uint32_t events) {
    if (events & EPOLLIN) readAll();
    if (m_closed) return;
    if (events & EPOLLOUT) flush();
    if (m_closed) return;
    if (events & (EPOLLHUP | EPOLLERR)) {
      close("hung up");
      return;
    }
  }

  // Reading pauses while enough calls wait (backpressure): a client that pipelines many calls
  // is slowed down, never answered out of order.
  bool readingPaused() const {
    return m_throttled || m_pending.size() >= m_server.m_limits.maxPendingCalls ||
           m_framer.buffered() >= m_server.m_limits.maxMessageSize;
  }

  // One token per message. Without one the connection is neither read nor served until the
  // bucket refills: the sender is slowed down, nothing is dropped, and other connections are
  // served as before.
  bool takeToken() {
    if (!m_bucket) return true;
    uint64_t now = loop::EventLoop::nowUsec();
    if (m_bucket->take(now)) return true;
    if (!m_throttled) {
      m_throttled = true;
      auto wait = std::chrono::microseconds(m_bucket->waitUsec(now));
      m_refillTimer = std::make_unique<loop::TimerSource>(m_server.m_loop, wait, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->onRefilled();
      });
    }
    return false;
  }

  void onRefilled() {
    m_throttled = false;
    m_refillTimer.reset();
    if (m_closed) return;
    readAll();
  }

  void updateEvents() {
    if (!m_source || m_closed) return;
    uint32_t events = 0;
    if (!m_readClosed && !readingPaused()) events |= static_cast<uint32_t>(EPOLLIN | EPOLLRDHUP);
    if (!m_out.empty()) events |= static_cast<uint32_t>(EPOLLOUT);
    m_source->setEvents(events);
  }

  void readAll() {
    char buf[65536];
    for (int round = 0; round < 16 && !readingPaused(); ++round) {
      ssize_t n = ::recv(m_fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {
        // EOF: a client that half-closes after its last call still gets its replies.
        m_readClosed = true;
        break;
      }
      m_framer.feed(std::string_view(buf, static_cast<size_t>(n)));
      pullMessages();
      if (m_closed || m_overflowed) break;
      if (static_cast<size_t>(n) < sizeof(buf)) break;
    }
    updateEvents();
    dispatchNext();
  }

  // Moves complete messages from the framer into the queue, as far as the queue has room.
  void pullMessages() {
    while (m_pending.size() < m_server.m_limits.maxPendingCalls) {
      auto message = m_framer.next();
      if (!message) break;
      m_pending.push_back(std::move(*message));
    }
    if (m_framer.overflowed()) {
      log::notice("varlink: dropping client pid " + std::to_string(m_caller.pid) + " uid " + std::to_string(m_caller.uid) +
                  ": message larger than " + std::to_string(m_server.m_limits.maxMessageSize) + " bytes");
      // No resynchronisation is possible: the calls before it are answered, then the error, then close.
      m_overflowed = true;
      m_readClosed = true;
    }
  }

  void sendOverflowError() {
    m_closeAfterFlush = true;
    send(errorReply(Error(ErrorCode::MessageTooLarge, "the message is larger than " + std::to_string(m_server.m_limits.maxMessageSize) +
                                                          " bytes; the connection is closed")));
    updateEvents();
  }

  void dispatchNext();

  void flush() {
    while (!m_out.empty()) {
      ssize_t n = ::send(m_fd, m_out.data(), m_out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) {
        close("write failed");
        return;
      }
      m_out.erase(0, static_cast<size_t>(n));
    }
    if (m_out.size() > m_server.m_limits.maxOutputBuffer) {
      close("not reading its replies");
      return;
    }
    if (m_out.empty() && m_closeAfterFlush) {
      close("closed after an error");
      return;
    }
    if (m_out.empty() && m_readClosed && !m_active && m_pending.empty()) {
      close("disconnected");
      return;
    }
    updateEvents();
  }

  Server& m_server;
  int m_fd;
  api::Caller m_caller;
  Framer m_framer;
  std::unique_ptr<loop::IoSource> m_source;
  std::deque<std::string> m_pending;
  std::shared_ptr<Call> m_active;
  std::string m_out;
  bool m_closed = false;
  bool m_readClosed = false;
  bool m_closeAfterFlush = false;
  bool m_overflowed = false;
  std::vector<std::function<void()>> m_goneCallbacks;
  std::optional<core::TokenBucket> m_bucket;  // none for root
  bool m_throttled = false;                    // out of tokens: not read, not served
  std::unique_ptr<loop::TimerSource> m_refillTimer;
};

class Call : public api::Request, public std::enable_shared_from_this<Call> {
 public:
  Call(std::weak_ptr<Connection> connection, api::Caller caller, CallMessage message)
      : m_connection(std::move(connection)), m_caller(std::move(caller)), m_message(std::move(message)) {}

  const api::Caller& caller() const override { return m_caller; }
  bool wantsMore() const override { return m_message.more; }
  const CallMessage& message() const { return m_message; }

  void replyMore(json parameters) override {
    if (m_done || !m_message.more) return;
    ReplyMessage reply;
    reply.parameters = std::move(parameters);
    reply.continues = true;
    if (auto c = m_connection.lock()) c->send(reply);
  }

  void reply(json parameters) override {
    if (m_done) return;
    ReplyMessage reply;
    reply.parameters = std::move(parameters);
    finish(reply);
  }

  void fail(const Error& error) override {
    if (m_done) return;
    finish(errorReply(error));
  }

  bool alive() const override {
    auto c = m_connection.lock();
    return !m_done && c && !c->closed();
  }

  void onGone(std::function<void()> callback) override {
    if (auto c = m_connection.lock(); c && !c->closed()) {
      c->addGoneCallback([weak = weak_from_this(), cb = std::move(callback)] {
        if (auto self = weak.lock(); self && !self->m_done) cb();
      });
    } else if (!m_done) {
      callback();
    }
  }

 private:
  void finish(const ReplyMessage& reply) {
    m_done = true;
    if (auto c = m_connection.lock()) {
      if (!m_message.oneway) c->send(reply);
      c->callFinished();
    }
  }

  std::weak_ptr<Connection> m_connection;
  api::Caller m_caller;
  CallMessage m_message;
  bool m_done = false;
};

namespace {

void handleService(const std::string& member, const json& parameters, Call& call) {
  if (member == "GetInfo") {
    if (!parameters.empty()) throw Error(ErrorCode::InvalidParameter, "GetInfo takes no parameters", {{"parameter", parameters.begin().key()}});
    call.reply({{"vendor", "zerobyte"},
                {"product", "zerobyted"},
                {"version", kVersion},
                {"url", "https://zerobyte.org"},
                {"interfaces", json::array({std::string(kVarlinkServiceInterface), std::string(kVarlinkInterface)})}});
    return;
  }
  if (member == "GetInterfaceDescription") {
    auto it = parameters.find("interface");
    if (it == parameters.end() || !it->is_string())
      throw Error(ErrorCode::InvalidParameter, "parameter \"interface\" must be a string", {{"parameter", "interface"}});
    const std::string& name = it->get_ref<const std::string&>();
    if (name == kVarlinkInterface) {
      call.reply({{"description", kVarlinkInterfaceDescription}});
    } else if (name == kVarlinkServiceInterface) {
      call.reply({{"description",
                   "interface org.varlink.service\n"
                   "method GetInfo() -> (vendor: string, product: string, version: string, url: string, interfaces: []string)\n"
                   "method GetInterfaceDescription(interface: string) -> (description: string)\n"
                   "error InterfaceNotFound (interface: string)\n"
                   "error MethodNotFound (method: string)\n"
                   "error MethodNotImplemented (method: string)\n"
                   "error InvalidParameter (parameter: string)\n"
                   "error PermissionDenied ()\n"
                   "error ExpectedMore ()\n"}});
    } else {
      throw Error(ErrorCode::InterfaceNotFound, "no interface named \"" + name + "\"", {{"interface", name}});
    }
    return;
  }
  throw Error(ErrorCode::MethodNotFound, "no method " + std::string(kVarlinkServiceInterface) + "." + member,
              {{"method", std::string(kVarlinkServiceInterface) + "." + member}});
}

}  // namespace

void Connection::dispatchNext() {
  while (!m_closed && !m_active && !m_throttled) {
    if (m_pending.empty() && !m_overflowed) pullMessages();
    if (m_pending.empty()) break;
    if (!takeToken()) break;
    std::string text = std::move(m_pending.front());
    m_pending.pop_front();
    CallMessage message;
    try {
      message = parseCall(text);
    } catch (const Error& e) {
      // Framing is intact (we found the NUL), so the connection can go on.
      send(errorReply(e));
      continue;
    }
    auto call = std::make_shared<Call>(weak_from_this(), m_caller, message);
    m_active = call;
    const std::string& method = call->message().method;
    size_t dot = method.rfind('.');
    std::string interface = dot == std::string::npos ? std::string() : method.substr(0, dot);
    std::string member = dot == std::string::npos ? method : method.substr(dot + 1);
    try {
      if (interface == kVarlinkServiceInterface) {
        handleService(member, call->message().parameters, *call);
      } else if (interface == kVarlinkInterface) {
        m_server.m_dispatcher(member, call->message().parameters, call);
      } else {
        throw Error(ErrorCode::InterfaceNotFound, "no interface named \"" + interface + "\"; this daemon serves " + std::string(kVarlinkInterface),
                    {{"interface", interface}});
      }
    } catch (const Error& e) {
      call->fail(e);
    } catch (const std::exception& e) {
      log::error(std::string("internal error in ") + method + ": " + e.what());
      call->fail(Error(ErrorCode::Internal, std::string("internal error: ") + e.what()));
    }
  }
  if (m_closed || m_active || m_throttled || !m_pending.empty()) return updateEvents();
  if (m_overflowed) {
    if (!m_closeAfterFlush) sendOverflowError();
    return;
  }
  if (m_readClosed && m_out.empty()) return close("disconnected");
  updateEvents();
}

void Connection::close(const char* why) {
  if (m_closed) return;
  m_closed = true;
  log::debug("varlink: connection of pid " + std::to_string(m_caller.pid) + " closed: " + why);
  m_source.reset();
  ::close(m_fd);
  m_fd = -1;
  auto callbacks = std::move(m_goneCallbacks);
  for (auto& cb : callbacks) cb();
  m_pending.clear();
  m_active.reset();
  m_refillTimer.reset();
  // Removing from the server may destroy us: post it.
  Server* server = &m_server;
  m_server.m_loop.post([server, raw = this] { server->remove(raw); });
}

Server::Server(loop::EventLoop& loop, int listenFd, Dispatcher dispatcher, Limits limits)
    : m_loop(loop), m_listenFd(listenFd), m_dispatcher(std::move(dispatcher)), m_limits(limits) {
  m_listenSource = std::make_unique<loop::IoSource>(loop, m_listenFd, EPOLLIN, [this](uint32_t) { onAccept(); });
}

Server::~Server() {
  m_listenSource.reset();
  if (m_listenFd >= 0) ::close(m_listenFd);
  m_connections.clear();
}

void Server::stopListening() { m_listenSource.reset(); }

void Server::remove(Connection* connection) {
  auto it = m_connections.find(connection);
  if (it == m_connections.end()) return;
  uid_t uid = it->second->caller().uid;
  if (auto count = m_connectionsPerUid.find(uid); count != m_connectionsPerUid.end() && --count->second == 0)
    m_connectionsPerUid.erase(count);
  m_connections.erase(it);
}

void Server::logRefusal(uid_t key, const std::string& message) {
  uint64_t now = loop::EventLoop::nowUsec();
  // Entries of uids that have been quiet for a minute carry nothing worth keeping.
  if (m_refusalLog.size() > 1024) {
    for (auto it = m_refusalLog.begin(); it != m_refusalLog.end();)
      it = now - it->second.lastUsec >= kRefusalLogIntervalUsec ? m_refusalLog.erase(it) : std::next(it);
  }
  RefusalLog& entry = m_refusalLog[key];
  if (entry.lastUsec != 0 && now - entry.lastUsec < kRefusalLogIntervalUsec) {
    ++entry.suppressed;
    return;
  }
  std::string more = entry.suppressed == 0 ? ""
                                           : " (" + std::to_string(entry.suppressed) + " more refused since the last message)";
  entry.lastUsec = now;
  entry.suppressed = 0;
  log::warning(message + more);
}

void Server::onAccept() {
  for (int i = 0; i < 32; ++i) {
    int fd = ::accept4(m_listenFd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) log::warning(std::string("varlink: accept failed: ") + std::strerror(errno));
      return;
    }
    FileDescriptor socket(fd);
    // Varlink has no greeting to carry an error: a refused client sees its connection closed.
    if (m_connections.size() >= m_limits.maxConnections) {
      logRefusal(kAnyUid, "varlink: " + std::to_string(m_connections.size()) + " connections, the limit; refusing new clients");
      continue;
    }
    std::string why;
    std::optional<api::Caller> caller = identifyPeer(socket.get(), &why);
    if (!caller) {
      log::debug("varlink: refusing a client: " + why);
      continue;
    }
    size_t& ofUid = m_connectionsPerUid[caller->uid];
    if (caller->uid != 0 && m_limits.maxConnectionsPerUid > 0 && ofUid >= m_limits.maxConnectionsPerUid) {
      logRefusal(caller->uid, "varlink: uid " + std::to_string(caller->uid) + " has " + std::to_string(ofUid) +
                                  " connections, the limit per user; refusing more (pid " + std::to_string(caller->pid) + ")");
      continue;
    }
    ++ofUid;
    auto connection = std::make_shared<Connection>(*this, socket.release(), std::move(*caller));
    m_connections.emplace(connection.get(), connection);
    connection->start();
  }
}

int Server::createSocket(const std::string& path, mode_t mode) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) throw Error(ErrorCode::InvalidArgument, "socket path is too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      throw Error(ErrorCode::Failed, path + " exists and is not a socket; remove it or choose another daemon.socket");
    // Refuse to steal the socket of a running daemon.
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      ::close(probe);
      throw Error(ErrorCode::Failed, "another zerobyted is already listening on " + path);
    }
    if (probe >= 0) ::close(probe);
    ::unlink(path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw Error(ErrorCode::Failed, std::string("socket: ") + std::strerror(errno));
  // Bind with a restrictive umask, then chmod: no window where the socket has other modes.
  mode_t old = umask(0177);
  int r = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int e = errno;
  umask(old);
  if (r < 0) {
    ::close(fd);
    throw Error(ErrorCode::Failed, "cannot bind " + path + ": " + std::strerror(e));
  }
  if (chmod(path.c_str(), mode) < 0 || ::listen(fd, SOMAXCONN) < 0) {
    e = errno;
    ::close(fd);
    throw Error(ErrorCode::Failed, "cannot listen on " + path + ": " + std::strerror(e));
  }
  return fd;
}

}  // namespace zerobyte::varlink
