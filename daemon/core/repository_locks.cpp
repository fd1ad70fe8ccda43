// FIFO reader/writer locks per repository.
#include "daemon/core/repository_locks.h"

#include <vector>

namespace zerobyte::core {

bool RepositoryLocks::compatible(const State& state, LockMode mode) const {
  if (state.held.empty()) return true;
  if (mode == LockMode::Exclusive) return false;
  for (const auto& [ticket, heldMode] : state.held)
    if (heldMode == LockMode::Exclusive) return false;
  return true;
}

RepositoryLocks::Ticket RepositoryLocks::acquire(const std::string& repositoryId, LockMode mode, std::function<void(Ticket)> onGranted) {
  Ticket ticket = m_next++;
  m_ticketRepository[ticket] = repositoryId;
  State& state = m_repositories[repositoryId];
  if (state.queue.empty() && compatible(state, mode)) {
    state.held[ticket] = mode;
    onGranted(ticket);
  } else {
    state.queue.push_back(Request{ticket, mode, std::move(onGranted)});
  }
  return ticket;
}

void RepositoryLocks::release(Ticket ticket) {
  auto it = m_ticketRepository.find(ticket);
  if (it == m_ticketRepository.end()) return;
  std::string repositoryId = it->second;
  m_ticketRepository.erase(it);
  State& state = m_repositories[repositoryId];
  if (state.held.erase(ticket) == 0) {
    for (auto q = state.queue.begin(); q != state.queue.end(); ++q) {
      if (q->ticket == ticket) {
        state.queue.erase(q);
        break;
      }
    }
  }
  grantWaiting(repositoryId);
}

void RepositoryLocks::grantWaiting(const std::string& repositoryId) {
  // Collect first, call after: a callback may acquire or release again.
  std::vector<Request> granted;
  {
    State& state = m_repositories[repositoryId];
    while (!state.queue.empty() && compatible(state, state.queue.front().mode)) {
      state.held[state.queue.front().ticket] = state.queue.front().mode;
      granted.push_back(std::move(state.queue.front()));
      state.queue.pop_front();
    }
    if (state.held.empty() && state.queue.empty()) m_repositories.erase(repositoryId);
  }
  for (auto& request : granted) request.onGranted(request.ticket);
}

bool RepositoryLocks::isHeld(Ticket ticket) const {
  auto it = m_ticketRepository.find(ticket);
  if (it == m_ticketRepository.end()) return false;
  auto state = m_repositories.find(it->second);
  return state != m_repositories.end() && state->second.held.count(ticket) > 0;
}

bool RepositoryLocks::isWaiting(Ticket ticket) const {
  auto it = m_ticketRepository.find(ticket);
  if (it == m_ticketRepository.end()) return false;
  return !isHeld(ticket);
}

size_t RepositoryLocks::holders(const std::string& repositoryId) const {
  auto it = m_repositories.find(repositoryId);
  return it == m_repositories.end() ? 0 : it->second.held.size();
}

size_t RepositoryLocks::waiting(const std::string& repositoryId) const {
  auto it = m_repositories.find(repositoryId);
  return it == m_repositories.end() ? 0 : it->second.queue.size();
}

}  // namespace zerobyte::core
