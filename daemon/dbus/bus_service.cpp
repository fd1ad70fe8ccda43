// The system-bus connection on the daemon's sd-event loop, with reconnection.
#include "daemon/dbus/bus_service.h"

#include "common/names.h"
#include "daemon/api/service.h"
#include "daemon/dbus/object_tree.h"
#include "daemon/log/log.h"

#include <poll.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace zerobyte::dbus {

namespace {

constexpr unsigned kMaxRetrySeconds = 10;
// Messages handled per wakeup before other sources get their turn (the rest are handled at once
// on the next iteration: sd-bus reports a zero timeout while it holds queued messages).
constexpr int kMessagesPerWakeup = 64;

}  // namespace

BusService::BusService(loop::EventLoop& loop, api::Service& service, unsigned finishedJobSeconds)
    : m_loop(loop), m_service(service), m_finishedJobSeconds(finishedJobSeconds) {}

BusService::~BusService() { stop(); }

void BusService::start() {
  m_stopped = false;
  connect();
}

void BusService::stop() {
  m_stopped = true;
  m_retry.reset();
  if (m_connection) {
    try {
      m_connection->releaseName(std::string(kBusName));
    } catch (const sdbus::Error&) {
      // The bus is gone already.
    }
  }
  disconnect("");
}

void BusService::jobsChanged() {
  onTree("job counts", [](ObjectTree& tree) { tree.jobsCountChanged(); });
}

void BusService::setFinishedJobSeconds(unsigned seconds) {
  m_finishedJobSeconds = seconds;
  if (m_tree) m_tree->setFinishedJobSeconds(seconds);
}

void BusService::onTree(const char* what, const std::function<void(ObjectTree&)>& change) {
  if (!m_tree) return;
  try {
    change(*m_tree);
  } catch (const sdbus::Error& e) {
    // Signals fail once the connection is broken (or its queue is full): the service goes on.
    std::string why = std::string(what) + ": " + (e.getMessage().empty() ? e.getName() : e.getMessage());
    m_loop.post([this, why] {
      if (m_connection) lose(why);
    });
  } catch (const std::exception& e) {
    log::error(std::string("internal error while showing ") + what + " on the bus: " + e.what());
  }
}

void BusService::lose(const std::string& why) {
  disconnect(why);
  scheduleReconnect();
}

void BusService::connect() {
  m_retry.reset();
  try {
    m_connection = sdbus::createSystemBusConnection();
    // Who sends each incoming call, before it is dispatched (property getters are not told).
    m_callMatch = m_connection->addMatch("type='method_call'", [this](sdbus::Message& message) {
      if (m_tree) m_tree->noteIncoming(message);
    });
    m_nameMatch = m_connection->addMatch(
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'",
        [this](sdbus::Message& message) {
          std::string name, oldOwner, newOwner;
          try {
            message >> name >> oldOwner >> newOwner;
          } catch (const sdbus::Error&) {
            return;
          }
          if (newOwner.empty() && !name.empty() && name[0] == ':')
            onTree("a client leaving", [&name](ObjectTree& tree) { tree.nameLost(name); });
        });
    m_connection->addObjectManager(std::string(kObjectRoot), sdbus::floating_slot);
    m_tree = std::make_unique<ObjectTree>(*m_connection, m_loop, m_service, m_finishedJobSeconds);
    m_service.onResourcesChanged = [this] { onTree("volumes and repositories", [](ObjectTree& tree) { tree.reconcile(); }); };
    m_service.onJobChanged = [this](const core::Job& job) {
      onTree("a job", [&job](ObjectTree& tree) { tree.jobChanged(job); });
    };
    // The objects are in place before anyone can reach them by name.
    m_connection->requestName(std::string(kBusName));

    auto poll = m_connection->getEventLoopPollData();
    sd_event* event = m_loop.get();
    int r = sd_event_add_io(event, &m_io, poll.fd, EPOLLIN, &BusService::onIo, this);
    if (r >= 0) r = sd_event_source_set_prepare(m_io, &BusService::onPrepare);
    if (r >= 0) r = sd_event_add_time(event, &m_time, CLOCK_MONOTONIC, UINT64_MAX, 0, &BusService::onTime, this);
    if (r < 0) throw sdbus::Error("org.zerobyte.Daemon1.Error.Internal", "cannot watch the bus connection: " + std::string(strerror(-r)));
    sd_event_source_set_enabled(m_time, SD_EVENT_OFF);
  } catch (const sdbus::Error& e) {
    std::string why = e.getMessage().empty() ? e.getName() : e.getMessage();
    disconnect("");
    if (!m_reportedOffline) {
      log::notice("the D-Bus API is offline: cannot serve " + std::string(kBusName) + " on the system bus (" + why +
                  "); the socket works without it, and zerobyted keeps trying");
      m_reportedOffline = true;
    }
    scheduleReconnect();
    return;
  }
  m_retrySeconds = 1;
  m_reportedOffline = false;
  log::info("serving " + std::string(kBusName) + " on the system bus");
}

void BusService::disconnect(const std::string& why) {
  if (!why.empty()) log::warning("lost the system bus (" + why + "); the D-Bus API is offline until it is back");
  m_service.onResourcesChanged = nullptr;
  m_service.onJobChanged = nullptr;
  if (m_io) m_io = sd_event_source_disable_unref(m_io);
  if (m_time) m_time = sd_event_source_disable_unref(m_time);
  // The objects and waiting calls before the connection they belong to.
  m_tree.reset();
  m_callMatch.reset();
  m_nameMatch.reset();
  m_connection.reset();
}

void BusService::scheduleReconnect() {
  if (m_stopped) return;
  unsigned delay = m_retrySeconds;
  m_retrySeconds = std::min(m_retrySeconds * 2, kMaxRetrySeconds);
  m_retry = std::make_unique<loop::TimerSource>(m_loop, std::chrono::seconds(delay), [this] {
    // Not from inside the timer's own handler: connect() replaces it.
    m_loop.post([this] {
      if (!m_stopped && !m_connection) connect();
    });
  });
}

void BusService::process() {
  if (!m_connection) return;
  try {
    for (int i = 0; i < kMessagesPerWakeup; ++i) {
      bool more = m_connection->processPendingRequest();
      if (m_tree) m_tree->peersClearCurrent();
      if (!more) break;
    }
  } catch (const sdbus::Error& e) {
    lose(e.getMessage().empty() ? e.getName() : e.getMessage());
  } catch (const std::exception& e) {
    // The connection's state is unknown after this: start over.
    log::error(std::string("internal error while handling D-Bus messages: ") + e.what());
    lose("internal error");
  }
}

void BusService::refreshPollData() {
  if (!m_connection || !m_io) return;
  try {
    auto poll = m_connection->getEventLoopPollData();
    uint32_t events = 0;
    if (poll.events & POLLIN) events |= EPOLLIN;
    if (poll.events & POLLOUT) events |= EPOLLOUT;
    sd_event_source_set_io_events(m_io, events);
    if (poll.timeout_usec == UINT64_MAX) {
      sd_event_source_set_enabled(m_time, SD_EVENT_OFF);
    } else {
      sd_event_source_set_time(m_time, poll.timeout_usec);
      sd_event_source_set_enabled(m_time, SD_EVENT_ONESHOT);
    }
  } catch (const sdbus::Error&) {
    // A broken connection: the next read reports it.
  }
}

int BusService::onIo(sd_event_source*, int, uint32_t, void* userdata) {
  static_cast<BusService*>(userdata)->process();
  return 0;
}

int BusService::onTime(sd_event_source*, uint64_t, void* userdata) {
  static_cast<BusService*>(userdata)->process();
  return 0;
}

// Before every poll: what sd-bus waits for may have changed (replies queued for writing, timeouts).
int BusService::onPrepare(sd_event_source*, void* userdata) {
  static_cast<BusService*>(userdata)->refreshPollData();
  return 0;
}

}  // namespace zerobyte::dbus
