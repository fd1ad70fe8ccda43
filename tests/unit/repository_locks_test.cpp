// Unit tests of the daemon's per-repository FIFO reader/writer locks.
#include "daemon/core/repository_locks.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace zerobyte::core {
namespace {

using Ticket = RepositoryLocks::Ticket;

// Records the order in which requests were granted, by label.
class Grants {
 public:
  std::function<void(Ticket)> record(std::string label) {
    return [this, label = std::move(label)](Ticket) { m_order.push_back(label); };
  }
  const std::vector<std::string>& order() const { return m_order; }
  bool granted(const std::string& label) const {
    for (const auto& l : m_order)
      if (l == label) return true;
    return false;
  }

 private:
  std::vector<std::string> m_order;
};

TEST(RepositoryLocks, TwoSharedRequestsAreHeldAtTheSameTime) {
  RepositoryLocks locks;
  Grants grants;
  Ticket a = locks.acquire("repo", LockMode::Shared, grants.record("a"));
  Ticket b = locks.acquire("repo", LockMode::Shared, grants.record("b"));
  EXPECT_NE(a, b);
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(locks.isHeld(a));
  EXPECT_TRUE(locks.isHeld(b));
  EXPECT_EQ(locks.holders("repo"), 2U);
  EXPECT_EQ(locks.waiting("repo"), 0U);
}

TEST(RepositoryLocks, GrantOnAFreeRepositoryRunsInsideAcquireWithTheReturnedTicket) {
  RepositoryLocks locks;
  Ticket seen = 0;
  Ticket t = locks.acquire("repo", LockMode::Exclusive, [&](Ticket granted) { seen = granted; });
  EXPECT_EQ(seen, t);
  EXPECT_TRUE(locks.isHeld(t));
  EXPECT_FALSE(locks.isWaiting(t));
}

TEST(RepositoryLocks, ExclusiveWaitsForSharedHoldersToRelease) {
  RepositoryLocks locks;
  Grants grants;
  Ticket s1 = locks.acquire("repo", LockMode::Shared, grants.record("s1"));
  Ticket s2 = locks.acquire("repo", LockMode::Shared, grants.record("s2"));
  Ticket x = locks.acquire("repo", LockMode::Exclusive, grants.record("x"));
  EXPECT_FALSE(grants.granted("x"));
  EXPECT_TRUE(locks.isWaiting(x));
  EXPECT_EQ(locks.waiting("repo"), 1U);

  locks.release(s1);
  EXPECT_FALSE(grants.granted("x")) << "one shared holder is still there";
  locks.release(s2);
  EXPECT_TRUE(grants.granted("x"));
  EXPECT_TRUE(locks.isHeld(x));
  EXPECT_EQ(locks.holders("repo"), 1U);
}

TEST(RepositoryLocks, SharedWaitsWhileExclusiveIsHeld) {
  RepositoryLocks locks;
  Grants grants;
  Ticket x = locks.acquire("repo", LockMode::Exclusive, grants.record("x"));
  Ticket s = locks.acquire("repo", LockMode::Shared, grants.record("s"));
  Ticket x2 = locks.acquire("repo", LockMode::Exclusive, grants.record("x2"));
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"x"}));
  locks.release(x);
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"x", "s"}));
  EXPECT_TRUE(locks.isWaiting(x2));
  locks.release(s);
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"x", "s", "x2"}));
}

TEST(RepositoryLocks, WaitingExclusiveBlocksLaterSharedRequests) {
  RepositoryLocks locks;
  Grants grants;
  Ticket s1 = locks.acquire("repo", LockMode::Shared, grants.record("s1"));
  Ticket x = locks.acquire("repo", LockMode::Exclusive, grants.record("x"));
  // Compatible with the holder, but queued behind the exclusive request: no starvation.
  Ticket s2 = locks.acquire("repo", LockMode::Shared, grants.record("s2"));
  Ticket s3 = locks.acquire("repo", LockMode::Shared, grants.record("s3"));
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"s1"}));
  EXPECT_TRUE(locks.isWaiting(s2));
  EXPECT_EQ(locks.waiting("repo"), 3U);

  locks.release(s1);
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"s1", "x"}));
  locks.release(x);
  // Both queued shared requests are granted together.
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"s1", "x", "s2", "s3"}));
  EXPECT_TRUE(locks.isHeld(s2));
  EXPECT_TRUE(locks.isHeld(s3));
  EXPECT_EQ(locks.holders("repo"), 2U);
}

TEST(RepositoryLocks, WithdrawingAWaitingRequestNeverGrantsItAndUnblocksThoseBehindIt) {
  RepositoryLocks locks;
  Grants grants;
  Ticket s1 = locks.acquire("repo", LockMode::Shared, grants.record("s1"));
  Ticket x = locks.acquire("repo", LockMode::Exclusive, grants.record("x"));
  Ticket s2 = locks.acquire("repo", LockMode::Shared, grants.record("s2"));
  EXPECT_FALSE(grants.granted("s2"));

  locks.release(x);  // withdraw: it never held the lock
  EXPECT_FALSE(grants.granted("x"));
  EXPECT_FALSE(locks.isHeld(x));
  EXPECT_FALSE(locks.isWaiting(x));
  // s2 was only waiting behind x; it is compatible with s1.
  EXPECT_TRUE(grants.granted("s2"));
  EXPECT_TRUE(locks.isHeld(s2));

  locks.release(s1);
  locks.release(s2);
  EXPECT_FALSE(grants.granted("x"));
  EXPECT_EQ(locks.holders("repo"), 0U);
  EXPECT_EQ(locks.waiting("repo"), 0U);
}

TEST(RepositoryLocks, WithdrawingAWaitingRequestInTheMiddleKeepsTheRestInOrder) {
  RepositoryLocks locks;
  Grants grants;
  Ticket x1 = locks.acquire("repo", LockMode::Exclusive, grants.record("x1"));
  Ticket x2 = locks.acquire("repo", LockMode::Exclusive, grants.record("x2"));
  Ticket x3 = locks.acquire("repo", LockMode::Exclusive, grants.record("x3"));
  Ticket x4 = locks.acquire("repo", LockMode::Exclusive, grants.record("x4"));
  locks.release(x3);
  EXPECT_EQ(locks.waiting("repo"), 2U);
  locks.release(x1);
  locks.release(x2);
  locks.release(x4);
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"x1", "x2", "x4"}));
}

TEST(RepositoryLocks, DifferentRepositoriesAreIndependent) {
  RepositoryLocks locks;
  Grants grants;
  Ticket a = locks.acquire("repo-a", LockMode::Exclusive, grants.record("a"));
  Ticket b = locks.acquire("repo-b", LockMode::Exclusive, grants.record("b"));
  Ticket bs = locks.acquire("repo-b", LockMode::Shared, grants.record("bs"));
  EXPECT_TRUE(locks.isHeld(a));
  EXPECT_TRUE(locks.isHeld(b));
  EXPECT_TRUE(locks.isWaiting(bs));
  EXPECT_EQ(locks.holders("repo-a"), 1U);
  EXPECT_EQ(locks.waiting("repo-a"), 0U);
  locks.release(a);
  EXPECT_FALSE(grants.granted("bs")) << "releasing repo-a must not grant on repo-b";
  locks.release(b);
  EXPECT_TRUE(grants.granted("bs"));
}

TEST(RepositoryLocks, GrantsFollowArrivalOrderAcrossManyReleases) {
  RepositoryLocks locks;
  Grants grants;
  std::vector<Ticket> tickets;
  const std::vector<std::pair<std::string, LockMode>> requests = {
      {"x0", LockMode::Exclusive}, {"s1", LockMode::Shared}, {"s2", LockMode::Shared},    {"x3", LockMode::Exclusive},
      {"s4", LockMode::Shared},    {"x5", LockMode::Exclusive}, {"s6", LockMode::Shared}, {"s7", LockMode::Shared}};
  for (const auto& [label, mode] : requests) tickets.push_back(locks.acquire("repo", mode, grants.record(label)));
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"x0"}));
  locks.release(tickets[0]);
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"x0", "s1", "s2"}));
  locks.release(tickets[2]);
  EXPECT_EQ(grants.order().size(), 3U) << "x3 waits for s1 too";
  locks.release(tickets[1]);
  EXPECT_EQ(grants.order().back(), "x3");
  locks.release(tickets[3]);
  EXPECT_EQ(grants.order().back(), "s4");
  locks.release(tickets[4]);
  EXPECT_EQ(grants.order().back(), "x5");
  locks.release(tickets[5]);
  EXPECT_EQ(grants.order(), (std::vector<std::string>{"x0", "s1", "s2", "x3", "s4", "x5", "s6", "s7"}));
  locks.release(tickets[6]);
  locks.release(tickets[7]);
  EXPECT_EQ(locks.holders("repo"), 0U);
  EXPECT_EQ(locks.waiting("repo"), 0U);
}

TEST(RepositoryLocks, ReleasingAnUnknownOrAlreadyReleasedTicketChangesNothing) {
  RepositoryLocks locks;
  Grants grants;
  Ticket x = locks.acquire("repo", LockMode::Exclusive, grants.record("x"));
  Ticket s = locks.acquire("repo", LockMode::Shared, grants.record("s"));
  locks.release(9999);
  EXPECT_FALSE(grants.granted("s"));
  locks.release(x);
  EXPECT_TRUE(grants.granted("s"));
  locks.release(x);  // twice
  EXPECT_TRUE(locks.isHeld(s));
  EXPECT_EQ(locks.holders("repo"), 1U);
  EXPECT_FALSE(locks.isHeld(x));
}

TEST(RepositoryLocks, GrantCallbackMayAcquireAndReleaseAgain) {
  RepositoryLocks locks;
  std::vector<std::string> order;
  Ticket x = locks.acquire("repo", LockMode::Exclusive, [&](Ticket) { order.push_back("x"); });
  Ticket inner = 0;
  locks.acquire("repo", LockMode::Exclusive, [&](Ticket self) {
    order.push_back("y");
    // Hand over at once to a new request from inside the callback.
    inner = locks.acquire("repo", LockMode::Shared, [&](Ticket) { order.push_back("z"); });
    locks.release(self);
  });
  locks.release(x);
  EXPECT_EQ(order, (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_TRUE(locks.isHeld(inner));
  EXPECT_EQ(locks.holders("repo"), 1U);
}

}  // namespace
}  // namespace zerobyte::core
