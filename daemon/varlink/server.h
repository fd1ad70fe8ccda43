// The Varlink server on the daemon's Unix socket: framing, ordering, limits, org.varlink.service.
#pragma once

#include "common/varlink_wire.h"
#include "daemon/api/request.h"
#include "daemon/loop/event_loop.h"

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace zerobyte::varlink {

// Called for every method of org.zerobyte.Daemon: method is the short name ("GetStatus").
using Dispatcher = std::function<void(const std::string& method, const nlohmann::json& parameters, api::RequestPtr request)>;

class Connection;

class Server {
 public:
  // What one client may cost the daemon. Root (uid 0) counts towards maxConnections only: it can
  // stop the daemon anyway, and its tools (benchmarks, scripts) must not be slowed down.
  struct Limits {
    size_t maxMessageSize;
    size_t maxPendingCalls = 64;                   // pipelined calls parsed ahead; beyond, reading pauses
    size_t maxOutputBuffer = 64 * 1024 * 1024;     // a reader slower than this is dropped
    size_t maxConnections = 512;                   // all clients together; beyond, a new connection is closed at once
    size_t maxConnectionsPerUid = 32;              // one non-root uid; beyond, closed at once (0: no limit)
    double messagesPerSecond = 100;                // per connection of a non-root uid: the token bucket's refill (0: no limit)
    double messageBurst = 200;                     // calls taken at once before the rate applies
  };

  // Takes ownership of a listening socket (bound and listening, from systemd or createSocket()).
  Server(loop::EventLoop& loop, int listenFd, Dispatcher dispatcher, Limits limits);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting; connections stay until their calls finish.
  void stopListening();
  size_t connections() const noexcept { return m_connections.size(); }

  // Creates, binds and listens on a Unix socket path with the given mode (removing a stale socket).
  static int createSocket(const std::string& path, mode_t mode);

 private:
  friend class Connection;
  void onAccept();
  void remove(Connection* connection);

  // Logs a refused connection at most once a minute per key (a uid, or kAnyUid for the global
  // limit): a client looping on connect must not flood the journal.
  void logRefusal(uid_t key, const std::string& message);

  loop::EventLoop& m_loop;
  int m_listenFd;
  Dispatcher m_dispatcher;
  Limits m_limits;
  std::unique_ptr<loop::IoSource> m_listenSource;
  std::map<Connection*, std::shared_ptr<Connection>> m_connections;
  std::map<uid_t, size_t> m_connectionsPerUid;
  struct RefusalLog {
    uint64_t lastUsec = 0;
    size_t suppressed = 0;  // refusals since the last line
  };
  std::map<uid_t, RefusalLog> m_refusalLog;
};

}  // namespace zerobyte::varlink
