#include "common/serial_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

namespace cellar {
namespace {

TEST(SerialWorker, RunsTasksOneAtATimeInOrderOffTheCallersThread) {
  SerialWorker w("test-worker");
  std::vector<int> order;  // written by the worker only, read after the last task
  std::atomic<int> running{0}, most{0};
  std::promise<std::thread::id> where;
  std::promise<void> last;
  for (int i = 0; i < 50; ++i) {
    w.Post([&, i] {
      const int now = ++running;
      most = std::max(most.load(), now);
      if (i == 0) where.set_value(std::this_thread::get_id());
      order.push_back(i);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      --running;
      if (i == 49) last.set_value();
    });
  }
  ASSERT_EQ(last.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_NE(where.get_future().get(), std::this_thread::get_id());
  EXPECT_EQ(most.load(), 1);
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST(SerialWorker, StopWaitsForTheRunningTaskAndDropsTheQueuedOnes) {
  SerialWorker w("test-worker");
  std::promise<void> started;
  std::atomic<bool> release{false}, first_done{false};
  std::atomic<int> ran_after{0};
  auto token = std::make_shared<int>(0);  // held by the queued tasks: dropped means freed
  w.Post([&] {
    started.set_value();
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    first_done = true;
  });
  ASSERT_EQ(started.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  for (int i = 0; i < 3; ++i) w.Post([&ran_after, token] { ++ran_after; });
  EXPECT_EQ(w.queued(), 3u);
  std::thread stopper([&] { w.Stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  release = true;
  stopper.join();
  EXPECT_TRUE(first_done);  // Stop returned only after the running task ended
  EXPECT_EQ(ran_after.load(), 0);
  EXPECT_EQ(token.use_count(), 1);  // the queued tasks were destroyed, not kept
  w.Post([&ran_after, token] { ++ran_after; });  // after Stop: dropped at once
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_EQ(ran_after.load(), 0);
  w.Stop();  // again: nothing to do
}

}  // namespace
}  // namespace cellar
