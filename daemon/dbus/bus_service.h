// org.zerobyte.Daemon1 on the system bus: the connection on the daemon's event loop, the name, and
// reconnecting when the bus goes away or was not there at start. Independent of the Varlink socket.
#pragma once

#include "daemon/loop/event_loop.h"

#include <sdbus-c++/sdbus-c++.h>
#include <systemd/sd-event.h>

#include <memory>
#include <string>

namespace zerobyte::api {
class Service;
}

namespace zerobyte::dbus {

class ObjectTree;

class BusService {
 public:
  BusService(loop::EventLoop& loop, api::Service& service, unsigned finishedJobSeconds);
  ~BusService();
  BusService(const BusService&) = delete;
  BusService& operator=(const BusService&) = delete;

  // Connects now, or logs once why not and keeps trying (1 s, doubling up to 10 s).
  void start();
  // Releases the name and closes the connection (at shutdown).
  void stop();
  bool connected() const { return m_connection != nullptr; }
  // From the service: the number of running or queued jobs changed.
  void jobsChanged();
  void setFinishedJobSeconds(unsigned seconds);

 private:
  void connect();
  void disconnect(const std::string& why);
  void scheduleReconnect();
  void process();
  // Runs a change from the service on the tree; a broken connection found on the way is dropped
  // (and reconnected) later, never thrown into the service.
  void onTree(const char* what, const std::function<void(ObjectTree&)>& change);
  void lose(const std::string& why);
  void refreshPollData();
  static int onIo(sd_event_source* source, int fd, uint32_t revents, void* userdata);
  static int onTime(sd_event_source* source, uint64_t usec, void* userdata);
  static int onPrepare(sd_event_source* source, void* userdata);

  loop::EventLoop& m_loop;
  api::Service& m_service;
  unsigned m_finishedJobSeconds;
  std::unique_ptr<sdbus::IConnection> m_connection;
  std::unique_ptr<ObjectTree> m_tree;
  sdbus::Slot m_callMatch;
  sdbus::Slot m_nameMatch;
  sd_event_source* m_io = nullptr;
  sd_event_source* m_time = nullptr;
  std::unique_ptr<loop::TimerSource> m_retry;
  unsigned m_retrySeconds = 1;
  bool m_stopped = false;
  bool m_reportedOffline = false;
};

}  // namespace zerobyte::dbus
