// The pipeline's steps, in process (testing/in_process.h: one loop, one shard, a registry
// with limits) with a fake connection (RoundSource): each step's mechanism (what is refused,
// counted, dropped, scheduled), checked directly.
#include "gateway/pipeline.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <string>

#include "testing/in_process.h"

namespace cellar::gateway {
namespace {

class FakeSource : public RoundSource {
 public:
  size_t RunTurn(size_t limit) override {
    turns.push_back(limit);
    return took;
  }
  void RefuseTurn() override { ++refused; }
  size_t QueuedTurnWanted() override { return wanted; }
  void AfterTurn() override { ++after; }
  std::shared_ptr<void> Hold() override { return keep; }

  std::vector<size_t> turns;
  size_t took = 1;
  size_t wanted = 8;
  int refused = 0;
  int after = 0;
  std::shared_ptr<int> keep = std::make_shared<int>(0);
};

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest()
      : node_(::testing::TempDir() + "/pipeline_test_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
              std::to_string(::getpid())),
        io_(node_.io),
        gw_(node_.gateway.get()),
        state_(node_.cache_state()),
        tenant_(node_.tenant),
        cache_(node_.cache) {}
  void SetUp() override { ASSERT_NE(state_, nullptr); }

  void Limit(const char* spec) {
    ASSERT_TRUE(
        node_.registry->UpdateCacheLimits(tenant_, "c", *control::ParseLimits(spec, true)).ok());
  }
  api::Request& Add(Pipeline& p, api::Op op, std::string_view key) {
    p.calls().emplace_back();
    api::Request& r = p.calls().back().req;
    r.op = op;
    r.cache_id = cache_;
    r.key = key;
    return r;
  }
  uint64_t Refusals(Refusal r) const {
    return state_->usage.refusals[static_cast<size_t>(r)].load();
  }

  InProcessNode node_;  // a registry, tenancy, one loop and its engine, the gateway
  boost::asio::io_context& io_;
  Gateway* gw_;
  std::shared_ptr<CacheState> state_;
  uint32_t tenant_, cache_;
  FakeSource source_;
};

Principal PrefixToken(std::string prefix, auth::CacheRole role) {
  Principal p;
  p.tenant = 2;
  auth::CacheGrant g;
  g.role = role;
  g.cache = "c";
  g.key_prefix = std::move(prefix);
  p.perms.caches.push_back(g);
  return p;
}

TEST_F(PipelineTest, PermissionByAccessClassDropsTheCommandsCalls) {
  Pipeline p(*gw_, 0, source_, Pipeline::Pacing::kEveryRound);
  p.Begin();
  const Principal token = PrefixToken("a", auth::CacheRole::kReadOnly);
  Add(p, api::Op::kGet, "a1");
  EXPECT_EQ(p.Verify(token, "c", state_.get(), 0, auth::Access::kRead, 2), Verdict::kAllowed);
  // A second command: one key outside the grant refuses all of its calls, not the first's.
  Add(p, api::Op::kGet, "a2");
  Add(p, api::Op::kGet, "b1");
  EXPECT_EQ(p.Verify(token, "c", state_.get(), 1, auth::Access::kRead, 4), Verdict::kDenied);
  ASSERT_EQ(p.calls().size(), 1u);
  EXPECT_EQ(p.calls()[0].req.key, "a1");
  // The same key, written: the read-only grant refuses it.
  Add(p, api::Op::kSet, "a1");
  EXPECT_EQ(p.Verify(token, "c", state_.get(), 1, auth::Access::kWrite, 2), Verdict::kDenied);
  // Cache-wide calls need the whole cache.
  Add(p, api::Op::kCount, "").shard = 0;
  EXPECT_EQ(p.Verify(token, "c", state_.get(), 1, auth::Access::kRead, 0), Verdict::kDenied);
  EXPECT_EQ(p.VerifyCacheWide(token, "c", state_.get(), auth::Access::kRead, 1),
            Verdict::kDenied);
  Principal admin;
  admin.perms.super_user = true;
  EXPECT_EQ(p.VerifyCacheWide(admin, "c", state_.get(), auth::Access::kRead, 1),
            Verdict::kAllowed);
  EXPECT_EQ(p.admitted(), 1u);  // denied commands are not admitted (nor counted as requests)
}

TEST_F(PipelineTest, ANodeWithoutItsClusterLeaseRefusesWritesAndServesReads) {
  Pipeline p(*gw_, 0, source_, Pipeline::Pacing::kEveryRound);
  Principal admin;
  admin.perms.super_user = true;
  p.Begin();
  node_.serving_until = 0;  // the lease's deadline has passed
  Add(p, api::Op::kGet, "a");
  EXPECT_EQ(p.Verify(admin, "c", state_.get(), 0, auth::Access::kRead, 2), Verdict::kAllowed);
  // One write among a command's calls refuses the command, not the calls before it.
  Add(p, api::Op::kGet, "b");
  Add(p, api::Op::kSet, "c");
  EXPECT_EQ(p.Verify(admin, "c", state_.get(), 1, auth::Access::kWrite, 4), Verdict::kRefused);
  EXPECT_EQ(p.refusal(), Refusal::kNotServing);
  EXPECT_EQ(p.calls().size(), 1u);
  EXPECT_EQ(RefusalCode(Refusal::kNotServing), Code::kUnavailable);
  EXPECT_EQ(p.VerifyCacheWide(admin, "c", state_.get(), auth::Access::kControl, 1),
            Verdict::kRefused);
  EXPECT_EQ(p.VerifyCacheWide(admin, "c", state_.get(), auth::Access::kRead, 1),
            Verdict::kAllowed);
  EXPECT_EQ(Refusals(Refusal::kNotServing), 2u);
  node_.serving_until = UINT64_MAX;
  Add(p, api::Op::kSet, "c");
  EXPECT_EQ(p.Verify(admin, "c", state_.get(), 1, auth::Access::kWrite, 2), Verdict::kAllowed);
}

TEST_F(PipelineTest, TtlCapThenAdmissionEachCountedOnce) {
  Limit("max_ttl_seconds=10,requests_per_second=2");
  Pipeline p(*gw_, 0, source_, Pipeline::Pacing::kEveryRound);
  Principal admin;
  admin.perms.super_user = true;
  p.Begin();
  Add(p, api::Op::kSet, "k").expire_at = p.now_ms() + 20'000;
  Add(p, api::Op::kSet, "k2").expire_at = p.now_ms() + 30'000;
  EXPECT_EQ(p.Verify(admin, "c", state_.get(), 0, auth::Access::kWrite, 4), Verdict::kRefused);
  EXPECT_EQ(p.refusal(), Refusal::kTtl);
  EXPECT_TRUE(p.calls().empty());
  EXPECT_EQ(Refusals(Refusal::kTtl), 1u);
  EXPECT_EQ(state_->usage.requests.load(), 0u);  // refused before admission
  // 2/s with 250 ms of burst: 1 + 0 back to back after the first; the rest refused.
  int allowed = 0;
  for (int i = 0; i < 5; ++i) {
    const size_t first = p.calls().size();
    Add(p, api::Op::kSet, "k").expire_at = p.now_ms() + 5'000;
    if (p.Verify(admin, "c", state_.get(), first, auth::Access::kWrite, 2) == Verdict::kAllowed) {
      ++allowed;
    } else {
      EXPECT_EQ(p.refusal(), Refusal::kRequestRate);
    }
  }
  EXPECT_GE(allowed, 1);
  EXPECT_LE(allowed, 2);
  EXPECT_EQ(p.calls().size(), static_cast<size_t>(allowed));
  EXPECT_EQ(p.admitted(), static_cast<uint32_t>(allowed));
  EXPECT_EQ(Refusals(Refusal::kRequestRate), static_cast<uint64_t>(5 - allowed));
  // A command that made no calls is admitted only when the front-end says so (gRPC).
  const uint64_t requests = state_->usage.requests.load();
  EXPECT_EQ(p.Verify(admin, "c", state_.get(), p.calls().size(), auth::Access::kRead, 0),
            Verdict::kAllowed);
  EXPECT_EQ(state_->usage.requests.load(), requests);
}

TEST_F(PipelineTest, RefusalTextIsMadeOncePerLimitsGeneration) {
  Limit("requests_per_second=7");
  Pipeline p(*gw_, 0, source_, Pipeline::Pacing::kEveryRound);
  const std::string& a = p.RefusalText(*state_, Refusal::kRequestRate, "ERR ", true);
  EXPECT_EQ(a, "ERR Request rate limit exceeded: cache 'c' allows 7 operations per second "
               "(requests_per_second)");
  const char* data = a.data();
  EXPECT_EQ(p.RefusalText(*state_, Refusal::kRequestRate, "ERR ", true).data(), data);
  // gRPC's words (no cache name), and a new text once the limits change.
  EXPECT_EQ(p.RefusalText(*state_, Refusal::kRequestRate, "", false),
            "Request rate limit exceeded: this cache allows 7 operations per second "
            "(requests_per_second)");
  Limit("requests_per_second=9");
  EXPECT_NE(p.RefusalText(*state_, Refusal::kRequestRate, "", false).find(" 9 "),
            std::string::npos);
}

TEST_F(PipelineTest, SubmitRunsTheRoundAndChargesWhatWasRead) {
  Pipeline p(*gw_, 0, source_, Pipeline::Pacing::kEveryRound);
  Principal admin;
  admin.perms.super_user = true;
  p.Begin();
  Add(p, api::Op::kSet, "k").value = "hello";
  ASSERT_EQ(p.Verify(admin, "c", state_.get(), 0, auth::Access::kWrite, 6), Verdict::kAllowed);
  Add(p, api::Op::kGet, "k");
  ASSERT_EQ(p.Verify(admin, "c", state_.get(), 1, auth::Access::kRead, 1), Verdict::kAllowed);
  bool done = false;
  p.Submit(tenant_, [&] { done = true; });
  io_.run();
  ASSERT_TRUE(done);
  ASSERT_EQ(p.calls().size(), 2u);
  EXPECT_TRUE(p.calls()[1].reply.found);
  EXPECT_EQ(p.calls()[1].reply.value, "hello");
  EXPECT_FALSE(p.AnyNotRun());
  p.Finishing();
  p.ChargeRound(state_.get(), 5);
  EXPECT_EQ(state_->usage.bytes_out.load(), 5u);
  EXPECT_EQ(p.admitted(), 0u);  // charged once
  p.ChargeRound(state_.get(), 5);
  EXPECT_EQ(state_->usage.bytes_out.load(), 5u);
}

TEST_F(PipelineTest, ScheduleRunsAtOnceWithoutSchedulerAndQueuesWhenContended) {
  Pipeline p(*gw_, 0, source_, Pipeline::Pacing::kEveryRound);
  // No scheduler: the turn runs at once, unbounded.
  p.Schedule(1, 8);
  ASSERT_EQ(source_.turns.size(), 1u);
  EXPECT_EQ(source_.turns[0], SIZE_MAX);
  EXPECT_EQ(source_.after, 0);

  LoopScheduler sched(io_, SchedulerOptions{.quantum = 4, .max_queued = 1, .light_work = 1});
  gw_->set_schedulers({&sched});
  source_.turns.clear();
  p.Schedule(1, 8);  // one tenant: runs at once, cut to nothing (uncontended)
  ASSERT_EQ(source_.turns.size(), 1u);
  EXPECT_EQ(source_.turns[0], 8u);
  EXPECT_EQ(source_.after, 1);
  // Nothing wanted: runs at once, unscheduled (the connection goes back to reading).
  p.Schedule(1, 0);
  EXPECT_EQ(source_.turns.back(), SIZE_MAX);

  // A second tenant makes the loop contended: a heavy tenant's turns queue, and run cut to
  // the quantum from the scheduler's drain, holding the connection meanwhile.
  FakeSource other;
  Pipeline q(*gw_, 0, other, Pipeline::Pacing::kEveryRound);
  source_.took = 8;
  for (int i = 0; i < 4; ++i) {
    q.Schedule(2, 8);
    p.Schedule(1, 8);
    if (p.queued()) break;
    io_.poll();
  }
  ASSERT_TRUE(p.queued());
  EXPECT_GT(source_.keep.use_count(), 1);  // held while queued
  const size_t turns = source_.turns.size();
  p.Schedule(1, 8);  // queued already: nothing more
  EXPECT_EQ(source_.turns.size(), turns);
  io_.run();
  ASSERT_EQ(source_.turns.size(), turns + 1);
  EXPECT_EQ(source_.turns.back(), 4u);  // the quantum
  EXPECT_FALSE(p.queued());
  EXPECT_EQ(source_.keep.use_count(), 1);
}

TEST(CheckValueSize, CacheLimitOrFallbackAndCounted) {
  uint64_t limit = 0;
  EXPECT_EQ(CheckValueSize(nullptr, 10, false, 10, &limit), Refusal::kNone);
  EXPECT_EQ(limit, 10u);
  EXPECT_EQ(CheckValueSize(nullptr, 11, false, 10), Refusal::kItemSize);
  EXPECT_EQ(CheckValueSize(nullptr, 11, true, 10), Refusal::kElementSize);
  CacheState c;
  c.limits[static_cast<size_t>(control::LimitId::kMaxItemBytes)] = 100;
  EXPECT_EQ(CheckValueSize(&c, 100, false, 10), Refusal::kNone);  // the cache's, not the fallback
  EXPECT_EQ(CheckValueSize(&c, 101, false, 10), Refusal::kItemSize);
  EXPECT_EQ(c.usage.refusals[static_cast<size_t>(Refusal::kItemSize)].load(), 1u);
  EXPECT_EQ(CheckValueSize(&c, 1 << 30, true, 10, &limit), Refusal::kNone);  // 0: unlimited
  EXPECT_EQ(limit, UINT64_MAX);
}

}  // namespace
}  // namespace cellar::gateway
