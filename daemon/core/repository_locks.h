// Per-repository locks inside the daemon: shared (backup, restore, ls) and exclusive (forget, unlock, …), granted in FIFO order.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>

namespace zerobyte::core {

enum class LockMode { Shared, Exclusive };

// Conflicting requests wait in a queue per repository (they never fail with Busy):
// requests are granted strictly in arrival order, so a waiting exclusive request is
// not starved by a stream of shared ones.
class RepositoryLocks {
 public:
  using Ticket = uint64_t;
  // `onGranted` runs when the lock is held: at once (inside acquire) when free, else from a
  // later release()/withdraw().
  Ticket acquire(const std::string& repositoryId, LockMode mode, std::function<void(Ticket)> onGranted);
  // Releases a held lock or withdraws a waiting request; grants what can now run.
  void release(Ticket ticket);
  bool isHeld(Ticket ticket) const;
  bool isWaiting(Ticket ticket) const;
  size_t holders(const std::string& repositoryId) const;
  size_t waiting(const std::string& repositoryId) const;

 private:
  struct Request {
    Ticket ticket;
    LockMode mode;
    std::function<void(Ticket)> onGranted;
  };
  struct State {
    std::map<Ticket, LockMode> held;
    std::deque<Request> queue;
  };
  bool compatible(const State& state, LockMode mode) const;
  void grantWaiting(const std::string& repositoryId);

  Ticket m_next = 1;
  std::map<std::string, State> m_repositories;
  std::map<Ticket, std::string> m_ticketRepository;
};

}  // namespace zerobyte::core
