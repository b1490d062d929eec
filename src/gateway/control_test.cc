// Gateway::RunControl: metadata changes run on the control thread, in order, answered on the
// loop that asked; refused (UNAVAILABLE, not attempted) when too many wait or one waited too
// long behind a change stuck on the store.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "gateway/gateway.h"

namespace cellar::gateway {
namespace {

using std::chrono::milliseconds;

class ControlTest : public ::testing::Test {
 protected:
  // Runs the loop's handlers until `done` or 10 s pass.
  void RunUntil(const std::function<bool()>& done) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < end) {
      io_.restart();
      io_.poll();
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  // A change the control thread runs until Release(): the store not answering.
  void Block(Gateway& gw) {
    gw.RunControl(0, [this] {
      started_ = true;
      stuck_.wait();
    }, [this](Status st) { blocker_ = st; });
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!started_ && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    ASSERT_TRUE(started_);
  }
  void Release() { release_.set_value(); }

  boost::asio::io_context io_;
  std::promise<void> release_;
  std::shared_future<void> stuck_ = release_.get_future().share();
  std::atomic<bool> started_{false};
  std::optional<Status> blocker_;
};

TEST_F(ControlTest, RunsInOrderAndAnswersOnTheLoop) {
  Gateway gw({&io_}, {}, nullptr, Options{});
  std::vector<int> ran;  // written by the control thread only, read after
  std::vector<int> answered;
  for (int i = 0; i < 5; i++) {
    gw.RunControl(0, [&ran, i] { ran.push_back(i); }, [&answered, i](Status st) {
      EXPECT_TRUE(st.ok()) << st.message();
      answered.push_back(i);
    });
  }
  RunUntil([&] { return answered.size() == 5; });
  EXPECT_EQ(answered, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(ControlTest, PastTheQueueBoundAChangeIsRefusedNotAttempted) {
  Gateway gw({&io_}, {}, nullptr, Options{});
  Block(gw);
  std::atomic<size_t> ran{0};
  size_t ok = 0;
  std::vector<Status> refused;
  for (size_t i = 0; i < Gateway::kMaxControlQueued + 3; i++) {
    gw.RunControl(0, [&ran] { ++ran; }, [&](Status st) {
      if (st.ok()) {
        ++ok;
      } else {
        refused.push_back(st);
      }
    });
  }
  // The three past the bound are answered at once, while the others still wait.
  RunUntil([&] { return refused.size() == 3; });
  ASSERT_EQ(refused.size(), 3u);
  EXPECT_EQ(ok, 0u);
  for (const Status& st : refused) {
    EXPECT_EQ(st.code(), Code::kUnavailable);
    EXPECT_NE(st.message().find("too many metadata changes are waiting"), std::string::npos)
        << st.message();
  }
  Release();
  RunUntil([&] { return ok == Gateway::kMaxControlQueued && blocker_.has_value(); });
  EXPECT_EQ(ok, Gateway::kMaxControlQueued);
  EXPECT_EQ(ran.load(), Gateway::kMaxControlQueued);  // the refused ones never ran
  EXPECT_EQ(refused.size(), 3u);
}

TEST_F(ControlTest, AChangeThatWaitedTooLongIsRefusedNotAttempted) {
  Gateway gw({&io_}, {}, nullptr, Options{.control_wait_ms = 100});
  Block(gw);
  std::atomic<bool> late_ran{false};
  std::optional<Status> late;
  gw.RunControl(0, [&late_ran] { late_ran = true; }, [&late](Status st) { late = st; });
  std::this_thread::sleep_for(milliseconds(300));  // the store answers only after 300 ms
  Release();
  RunUntil([&] { return late.has_value() && blocker_.has_value(); });
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->code(), Code::kUnavailable);
  EXPECT_NE(late->message().find("waited over 0.1 s behind others"), std::string::npos)
      << late->message();
  EXPECT_NE(late->message().find("was not made; retry"), std::string::npos);
  EXPECT_FALSE(late_ran.load());
  ASSERT_TRUE(blocker_.has_value());
  EXPECT_TRUE(blocker_->ok());
  // A change posted once the store answers again is made.
  std::optional<Status> after;
  gw.RunControl(0, [] {}, [&after](Status st) { after = st; });
  RunUntil([&] { return after.has_value(); });
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->ok());
}

}  // namespace
}  // namespace cellar::gateway
