// Unit tests of the event loop's posted work: order, and what happens to work still posted when the loop ends.
#include "daemon/loop/event_loop.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace zerobyte::loop {
namespace {

TEST(EventLoopPost, PostedWorkRunsInOrderOnTheNextIteration) {
  EventLoop loop;
  std::string order;
  loop.post([&] { order += "a"; });
  loop.post([&] {
    order += "b";
    loop.post([&] {
      order += "d";
      loop.exit(0);
    });
  });
  loop.post([&] { order += "c"; });
  EXPECT_TRUE(order.empty()) << "nothing runs inside post()";
  EXPECT_EQ(loop.run(), 0);
  EXPECT_EQ(order, "abcd");
}

// Work still posted when the loop stops (a shutdown in the middle of things) is freed with the loop: it must not
// keep the loop, or whatever the work holds, alive.
TEST(EventLoopPost, WorkStillPostedWhenTheLoopEndsIsFreedWithIt) {
  auto held = std::make_shared<int>(7);
  {
    EventLoop loop;
    loop.post([&loop] { loop.exit(0); });
    loop.post([held] { FAIL() << "runs after exit()"; });
    EXPECT_EQ(held.use_count(), 2);
    EXPECT_EQ(loop.run(), 0);
    EXPECT_EQ(held.use_count(), 2) << "still posted";
  }
  EXPECT_EQ(held.use_count(), 1) << "the posted work was not freed with the loop";
}

TEST(EventLoopPost, WorkThatRanIsFreedAtOnce) {
  auto held = std::make_shared<int>(7);
  EventLoop loop;
  loop.post([held] {});
  loop.post([&loop] { loop.exit(0); });
  EXPECT_EQ(loop.run(), 0);
  EXPECT_EQ(held.use_count(), 1);
}

}  // namespace
}  // namespace zerobyte::loop
