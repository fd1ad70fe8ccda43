// sd-event source wrappers.
#include "daemon/loop/event_loop.h"

#include "common/errors.h"
#include "daemon/log/log.h"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <system_error>
#include <string>
#include <time.h>

namespace zerobyte::loop {
namespace {

void check(int r, const char* what) {
  if (r < 0) throw Error(ErrorCode::Internal, std::string(what) + ": " + std::strerror(-r));
}

// An exception must not unwind through sd-event's C frames, and one failing handler must not
// stop the daemon: it is logged and the loop goes on.
template <typename F>
void guarded(const char* where, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    log::error(std::string("internal error in ") + where + " handler: " + e.what());
  } catch (...) {
    log::error(std::string("internal error in ") + where + " handler");
  }
}

}  // namespace

EventLoop::EventLoop() { check(sd_event_new(&m_event), "cannot create the event loop"); }

EventLoop::~EventLoop() { sd_event_unref(m_event); }

int EventLoop::run() { return sd_event_loop(m_event); }

void EventLoop::exit(int code) { sd_event_exit(m_event, code); }

uint64_t EventLoop::nowUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000ULL + static_cast<uint64_t>(ts.tv_nsec) / 1000ULL;
}

void EventLoop::post(std::function<void()> fn) {
  auto holder = std::make_unique<std::function<void()>>(std::move(fn));
  sd_event_source* source = nullptr;
  check(sd_event_add_defer(
            m_event, &source,
            [](sd_event_source* s, void* userdata) -> int {
              auto* f = static_cast<std::function<void()>*>(userdata);
              guarded("posted", *f);
              // Drops the loop's (floating) reference: the source goes once dispatching is over, and the
              // holder with it through the destroy callback.
              sd_event_source_disable_unref(s);
              return 0;
            },
            holder.get()),
        "cannot post to the event loop");
  sd_event_source_set_destroy_callback(source, [](void* userdata) { delete static_cast<std::function<void()>*>(userdata); });
  holder.release();  // owned by the source now (destroy callback)
  // Owned by the loop until it runs: work still posted when the loop ends is freed with the loop, rather than
  // keeping the loop (and whatever the work holds) alive for ever.
  sd_event_source_set_floating(source, 1);
  sd_event_source_unref(source);
}

Source::~Source() {
  if (m_source) sd_event_source_disable_unref(m_source);
}

IoSource::IoSource(EventLoop& loop, int fd, uint32_t events, std::function<void(uint32_t)> handler) : m_handler(std::move(handler)) {
  check(sd_event_add_io(loop.get(), &m_source, fd, events, &IoSource::dispatch, this), "cannot watch a file descriptor");
}

void IoSource::setEvents(uint32_t events) { sd_event_source_set_io_events(m_source, events); }

int IoSource::dispatch(sd_event_source*, int, uint32_t revents, void* userdata) {
  // A copy: the handler may destroy this source.
  auto handler = static_cast<IoSource*>(userdata)->m_handler;
  guarded("I/O", [&] { handler(revents); });
  return 0;
}

TimerSource::TimerSource(EventLoop& loop, std::chrono::microseconds delay, std::function<void()> handler)
    : m_handler(std::move(handler)) {
  check(sd_event_add_time_relative(loop.get(), &m_source, CLOCK_MONOTONIC, static_cast<uint64_t>(delay.count()), 1000,
                                   &TimerSource::dispatch, this),
        "cannot add a timer");
}

int TimerSource::dispatch(sd_event_source*, uint64_t, void* userdata) {
  auto handler = static_cast<TimerSource*>(userdata)->m_handler;
  guarded("timer", handler);
  return 0;
}

WallClockTimer::WallClockTimer(EventLoop& loop, std::function<void()> handler) : m_handler(std::move(handler)) {
  // Accuracy 1 s: nothing here needs finer, and the kernel may coalesce the wake-up with others.
  check(sd_event_add_time(loop.get(), &m_source, CLOCK_REALTIME, UINT64_MAX, 1000000, &WallClockTimer::dispatch, this),
        "cannot add a wall-clock timer");
  check(sd_event_source_set_enabled(m_source, SD_EVENT_OFF), "cannot disarm a wall-clock timer");
}

void WallClockTimer::armAt(uint64_t realtimeUsec) {
  check(sd_event_source_set_time(m_source, realtimeUsec), "cannot set a wall-clock timer");
  check(sd_event_source_set_enabled(m_source, SD_EVENT_ONESHOT), "cannot arm a wall-clock timer");
}

void WallClockTimer::disarm() { check(sd_event_source_set_enabled(m_source, SD_EVENT_OFF), "cannot disarm a wall-clock timer"); }

int WallClockTimer::dispatch(sd_event_source*, uint64_t, void* userdata) {
  auto handler = static_cast<WallClockTimer*>(userdata)->m_handler;
  guarded("wall-clock timer", handler);
  return 0;
}

ClockChangeSource::ClockChangeSource(EventLoop& loop, std::function<void()> handler) : m_handler(std::move(handler)) {
  m_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (m_fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create a timerfd");
  arm();
  check(sd_event_add_io(loop.get(), &m_source, m_fd, EPOLLIN, &ClockChangeSource::dispatch, this),
        "cannot watch for changes of the clock");
}

ClockChangeSource::~ClockChangeSource() {
  // The source goes first (Source's destructor runs after this body): it still refers to the fd only by number.
  if (m_source) m_source = sd_event_source_disable_unref(m_source);
  if (m_fd >= 0) close(m_fd);
}

void ClockChangeSource::arm() {
  // An expiry that never comes: the timer exists only to be cancelled when the clock is set.
  itimerspec spec{};
  spec.it_value.tv_sec = std::numeric_limits<time_t>::max();
  if (timerfd_settime(m_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, nullptr) < 0)
    throw std::system_error(errno, std::generic_category(), "cannot arm the clock-change timerfd");
}

int ClockChangeSource::dispatch(sd_event_source*, int fd, uint32_t, void* userdata) {
  auto* self = static_cast<ClockChangeSource*>(userdata);
  uint64_t expirations = 0;
  // ECANCELED: the clock was set. Re-arming resets the cancellation.
  ssize_t n = read(fd, &expirations, sizeof(expirations));
  if (n < 0 && errno == EAGAIN) return 0;
  guarded("clock change", [self] {
    self->arm();
    self->m_handler();
  });
  return 0;
}

ChildSource::ChildSource(EventLoop& loop, pid_t pid, std::function<void(const siginfo_t&)> handler) : m_handler(std::move(handler)) {
  check(sd_event_add_child(loop.get(), &m_source, pid, WEXITED, &ChildSource::dispatch, this), "cannot watch a child process");
}

int ChildSource::dispatch(sd_event_source*, const siginfo_t* info, void* userdata) {
  auto handler = static_cast<ChildSource*>(userdata)->m_handler;
  guarded("child", [&] { handler(*info); });
  return 0;
}

SignalSource::SignalSource(EventLoop& loop, int signal, std::function<void()> handler) : m_handler(std::move(handler)) {
  check(sd_event_add_signal(loop.get(), &m_source, signal, &SignalSource::dispatch, this), "cannot watch a signal");
}

int SignalSource::dispatch(sd_event_source*, const struct signalfd_siginfo*, void* userdata) {
  auto handler = static_cast<SignalSource*>(userdata)->m_handler;
  guarded("signal", handler);
  return 0;
}

void blockSignals() {
  sigset_t set;
  sigemptyset(&set);
  // A signal ignored by whoever started the daemon (SIG_IGN is inherited across exec) would be
  // discarded before signalfd could read it: SIGTERM would then never stop the daemon.
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) {
    signal(s, SIG_DFL);
    sigaddset(&set, s);
  }
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace zerobyte::loop
