// Keeps the machine from sleeping while jobs run: a logind "sleep" inhibitor lock, where logind is there.
#pragma once

#include "daemon/loop/event_loop.h"

#include <systemd/sd-bus.h>

#include <string>

namespace zerobyte::dbus {

// Holds logind's inhibitor lock (org.freedesktop.login1.Manager.Inhibit, what "sleep", mode "block") while
// active, and closes it (which releases it) when not. Without a system bus or logind it logs that once and
// does nothing: jobs run as before, only the machine may sleep through them. Its own bus connection, on the loop.
class SleepInhibitor {
 public:
  explicit SleepInhibitor(loop::EventLoop& loop);
  ~SleepInhibitor();
  SleepInhibitor(const SleepInhibitor&) = delete;
  SleepInhibitor& operator=(const SleepInhibitor&) = delete;

  // `why` is shown by `systemd-inhibit --list` ("2 backup jobs running").
  void setActive(bool active, const std::string& why);
  bool holding() const { return m_fd >= 0; }

 private:
  bool connect();
  void request(const std::string& why);
  void release();
  static int onReply(sd_bus_message* reply, void* userdata, sd_bus_error* error);

  loop::EventLoop& m_loop;
  sd_bus* m_bus = nullptr;
  sd_bus_slot* m_pending = nullptr;
  int m_fd = -1;
  bool m_active = false;
  bool m_unavailableLogged = false;
};

}  // namespace zerobyte::dbus
