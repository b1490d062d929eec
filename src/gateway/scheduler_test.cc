#include "gateway/scheduler.h"

#include <gtest/gtest.h>

#include <string>

#include <boost/asio/post.hpp>

namespace cellar::gateway {
namespace {

// A connection that has `rounds` rounds of `cost` each buffered; each run logs its tenant.
struct FakeConn : Schedulable {
  FakeConn(boost::asio::io_context& io, LoopScheduler& s, uint32_t tenant, int rounds,
           uint32_t cost, std::string* log)
      : io(io), sched(s), tenant(tenant), rounds(rounds), cost(cost), log(log) {}
  uint32_t RunScheduled() override {
    log->push_back(static_cast<char>('A' + tenant));
    Next();
    return cost;
  }
  // The next round's input arrives later, as a read completion would.
  void Next() {
    if (--rounds > 0) boost::asio::post(io, [this] { Arrive(); });
  }
  void Arrive() {
    switch (sched.Arrive(tenant, this)) {
      case LoopScheduler::Decision::kRunNow:
        log->push_back(static_cast<char>('a' + tenant));  // lower case: ran at once
        sched.Charge(tenant, cost);
        Next();
        break;
      case LoopScheduler::Decision::kQueued:
        break;
      case LoopScheduler::Decision::kRefused:
        log->push_back('!');
        break;
    }
  }
  boost::asio::io_context& io;
  LoopScheduler& sched;
  uint32_t tenant;
  int rounds;
  uint32_t cost;
  std::string* log;
};

TEST(LoopScheduler, OneTenantRunsAtOnce) {
  boost::asio::io_context io;
  LoopScheduler s(io, {});
  std::string log;
  FakeConn c(io, s, 0, 5, 100, &log);
  c.Arrive();
  io.run();
  EXPECT_EQ(log, "aaaaa");  // alone on the loop: no queue, no post
  EXPECT_EQ(s.counters().passes, 0u);
}

TEST(LoopScheduler, HeavyTenantsTakeTurnsByDeficit) {
  boost::asio::io_context io;
  LoopScheduler s(io, {.quantum = 64, .pass_budget = 64});
  std::string log;
  // Tenant 0: 4 connections with deep pipelines; tenant 1: one connection, heavy too.
  std::vector<std::unique_ptr<FakeConn>> conns;
  for (int i = 0; i < 4; ++i) conns.push_back(std::make_unique<FakeConn>(io, s, 0, 4, 64, &log));
  conns.push_back(std::make_unique<FakeConn>(io, s, 1, 8, 64, &log));
  for (auto& c : conns) c->Arrive();
  // The first arrival ran at once (one tenant so far); once a second tenant arrived, both are
  // heavy (64 per round = the light threshold) and queue.
  io.run();
  // Served alternately by deficit: never two of tenant 0's rounds while tenant 1 waits.
  // Until tenant 1 is done, at most one of tenant 0's rounds runs between two of its own.
  const std::string queued = log.substr(0, log.rfind('B') + 1);
  size_t worst_gap = 0, gap = 0;
  for (char ch : queued.substr(queued.find('B'))) {
    if (ch == 'A') ++gap;
    if (ch == 'B') worst_gap = std::max(worst_gap, gap), gap = 0;
  }
  EXPECT_LE(worst_gap, 1u) << log;
  EXPECT_NE(log.find("AB"), std::string::npos) << log;  // they did alternate
  EXPECT_EQ(std::count(log.begin(), log.end(), 'A') + std::count(log.begin(), log.end(), 'a'), 16);
  EXPECT_EQ(std::count(log.begin(), log.end(), 'B') + std::count(log.begin(), log.end(), 'b'), 8);
}

TEST(LoopScheduler, ALightTenantRunsAtOnceWhileAHeavyOneIsQueued) {
  boost::asio::io_context io;
  LoopScheduler s(io, {.quantum = 64, .pass_budget = 64});
  std::string log;
  FakeConn heavy1(io, s, 0, 50, 64, &log), heavy2(io, s, 0, 50, 64, &log);
  heavy1.Arrive();
  heavy2.Arrive();  // tenant 0 has done 64 already: heavy... but alone, so it runs
  FakeConn light(io, s, 1, 1, 1, &log);
  light.Arrive();   // a second tenant: the light one runs at once
  EXPECT_EQ(log.back(), 'b');
  io.run();
}

TEST(LoopScheduler, AFullQueueRefusesAtOnce) {
  boost::asio::io_context io;
  LoopScheduler s(io, {.quantum = 64, .max_queued = 2});
  std::string log;
  FakeConn other(io, s, 1, 1, 64, &log);
  other.Arrive();  // runs at once and marks tenant 1 as active
  std::vector<std::unique_ptr<FakeConn>> conns;
  for (int i = 0; i < 5; ++i) conns.push_back(std::make_unique<FakeConn>(io, s, 0, 1, 64, &log));
  for (auto& c : conns) c->Arrive();
  // The first of tenant 0 runs at once (light), two queue, the other two are refused.
  EXPECT_EQ(std::count(log.begin(), log.end(), '!'), 2);
  EXPECT_EQ(s.counters().refused, 2u);
  io.run();
  EXPECT_EQ(std::count(log.begin(), log.end(), 'A'), 2);
}

}  // namespace
}  // namespace cellar::gateway
