// The logind sleep inhibitor (see sleep_inhibitor.h).
#include "daemon/dbus/sleep_inhibitor.h"

#include "daemon/log/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace zerobyte::dbus {

SleepInhibitor::SleepInhibitor(loop::EventLoop& loop) : m_loop(loop) {}

SleepInhibitor::~SleepInhibitor() {
  release();
  if (m_bus) sd_bus_flush_close_unref(m_bus);
}

bool SleepInhibitor::connect() {
  if (m_bus) return true;
  sd_bus* bus = nullptr;
  int r = sd_bus_open_system(&bus);
  if (r >= 0) r = sd_bus_attach_event(bus, m_loop.get(), SD_EVENT_PRIORITY_NORMAL);
  if (r < 0) {
    if (bus) sd_bus_unref(bus);
    if (!std::exchange(m_unavailableLogged, true))
      log::notice(std::string("no system bus (") + std::strerror(-r) + "): running jobs do not keep the machine from sleeping");
    return false;
  }
  m_bus = bus;
  return true;
}

void SleepInhibitor::setActive(bool active, const std::string& why) {
  if (active == m_active) return;
  m_active = active;
  if (active)
    request(why);
  else
    release();
}

void SleepInhibitor::request(const std::string& why) {
  if (m_fd >= 0 || m_pending || !connect()) return;
  int r = sd_bus_call_method_async(m_bus, &m_pending, "org.freedesktop.login1", "/org/freedesktop/login1",
                                   "org.freedesktop.login1.Manager", "Inhibit", &SleepInhibitor::onReply, this, "ssss", "sleep",
                                   "zerobyted", why.c_str(), "block");
  if (r < 0) {
    m_pending = nullptr;
    // A connection the bus dropped (it restarted) is not used again: the next job connects anew.
    m_bus = sd_bus_flush_close_unref(m_bus);
    if (!std::exchange(m_unavailableLogged, true))
      log::notice(std::string("cannot ask logind for a sleep inhibitor (") + std::strerror(-r) +
                  "): running jobs do not keep the machine from sleeping");
  }
}

int SleepInhibitor::onReply(sd_bus_message* reply, void* userdata, sd_bus_error*) {
  auto* self = static_cast<SleepInhibitor*>(userdata);
  self->m_pending = sd_bus_slot_unref(self->m_pending);
  if (sd_bus_message_is_method_error(reply, nullptr)) {
    const sd_bus_error* error = sd_bus_message_get_error(reply);
    if (!std::exchange(self->m_unavailableLogged, true))
      log::notice(std::string("logind gave no sleep inhibitor (") + (error && error->message ? error->message : "unknown error") +
                  "): running jobs do not keep the machine from sleeping");
    return 0;
  }
  int fd = -1;
  if (sd_bus_message_read(reply, "h", &fd) < 0 || fd < 0) return 0;
  // The message owns its fd: keep a copy for as long as jobs run.
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (own < 0) return 0;
  if (!self->m_active) {
    close(own);  // every job ended while logind answered
    return 0;
  }
  self->m_fd = own;
  log::debug("holding logind's sleep inhibitor while jobs run");
  return 0;
}

void SleepInhibitor::release() {
  if (m_pending) m_pending = sd_bus_slot_unref(m_pending);
  if (m_fd >= 0) {
    close(m_fd);
    m_fd = -1;
    log::debug("released logind's sleep inhibitor: no job runs");
  }
}

}  // namespace zerobyte::dbus
