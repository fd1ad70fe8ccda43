// RAII wrappers over sd-event sources: the one loop that owns all daemon state.
#pragma once

#include <systemd/sd-event.h>

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace zerobyte::loop {

// Owns an sd_event loop.
class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  sd_event* get() const noexcept { return m_event; }
  // Runs until exit() is called; returns the exit code.
  int run();
  void exit(int code);
  // Runs `fn` on the next loop iteration (never re-entrantly).
  void post(std::function<void()> fn);
  // CLOCK_MONOTONIC microseconds.
  static uint64_t nowUsec();

 private:
  sd_event* m_event = nullptr;
};

// Base: owns one sd_event_source; disabling and unreffing on destruction.
class Source {
 public:
  virtual ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

 protected:
  Source() = default;
  sd_event_source* m_source = nullptr;
};

class IoSource : public Source {
 public:
  // `events`: EPOLLIN/EPOLLOUT…; the handler gets revents.
  IoSource(EventLoop& loop, int fd, uint32_t events, std::function<void(uint32_t)> handler);
  void setEvents(uint32_t events);

 private:
  static int dispatch(sd_event_source*, int, uint32_t revents, void* userdata);
  std::function<void(uint32_t)> m_handler;
};

// A one-shot timer on CLOCK_MONOTONIC.
class TimerSource : public Source {
 public:
  TimerSource(EventLoop& loop, std::chrono::microseconds delay, std::function<void()> handler);

 private:
  static int dispatch(sd_event_source*, uint64_t, void* userdata);
  std::function<void()> m_handler;
};

// A one-shot timer at an instant of the wall clock (CLOCK_REALTIME, microseconds since the epoch), re-armable.
// A time that passed while the machine slept fires at resume. Created disarmed.
class WallClockTimer : public Source {
 public:
  WallClockTimer(EventLoop& loop, std::function<void()> handler);
  void armAt(uint64_t realtimeUsec);
  void disarm();

 private:
  static int dispatch(sd_event_source*, uint64_t, void* userdata);
  std::function<void()> m_handler;
};

// Fires after the wall clock was set (settimeofday, NTP stepping it, a time zone set in the kernel), through a
// timerfd with TFD_TIMER_CANCEL_ON_SET, so that timers computed from the old clock can be computed again.
class ClockChangeSource : public Source {
 public:
  ClockChangeSource(EventLoop& loop, std::function<void()> handler);
  ~ClockChangeSource() override;

 private:
  void arm();
  static int dispatch(sd_event_source*, int fd, uint32_t revents, void* userdata);
  int m_fd = -1;
  std::function<void()> m_handler;
};

// Fires when the child exits (the loop reaps it). SIGCHLD must be blocked.
class ChildSource : public Source {
 public:
  ChildSource(EventLoop& loop, pid_t pid, std::function<void(const siginfo_t&)> handler);

 private:
  static int dispatch(sd_event_source*, const siginfo_t* info, void* userdata);
  std::function<void(const siginfo_t&)> m_handler;
};

// A signal as a loop event. The signal must be blocked (blockSignals()).
class SignalSource : public Source {
 public:
  SignalSource(EventLoop& loop, int signal, std::function<void()> handler);

 private:
  static int dispatch(sd_event_source*, const struct signalfd_siginfo*, void* userdata);
  std::function<void()> m_handler;
};

// Blocks SIGCHLD, SIGTERM, SIGINT, SIGHUP (and ignores SIGPIPE) so the loop takes them.
void blockSignals();

}  // namespace zerobyte::loop
