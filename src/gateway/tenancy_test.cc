#include "gateway/tenancy.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "control/cache_registry.h"
#include "metadata/local_store.h"

namespace cellar::gateway {
namespace {

constexpr int64_t kSec = 1'000'000'000;

TEST(RateBucket, AllowsTheRateWithAShortBurst) {
  RateBucket b;
  b.set_rate(100);  // one every 10 ms; burst: 250 ms ahead, so 26 back to back
  const int64_t t0 = 10 * kSec;
  int passed = 0;
  for (int i = 0; i < 100; ++i) passed += b.TryTake(1, t0);
  EXPECT_EQ(passed, 26);
  EXPECT_FALSE(b.TryTake(1, t0));
  // Over the next second, offered 1000 (one per ms): the rate passes, not more.
  int later = 0;
  for (int ms = 1; ms <= 1000; ++ms) later += b.TryTake(1, t0 + ms * (kSec / 1000));
  EXPECT_GE(later, 99);
  EXPECT_LE(later, 101);
}

TEST(RateBucket, UnlimitedAndRefundAndDebt) {
  RateBucket b;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(b.TryTake(1'000'000, 0));  // rate 0: unlimited
  b.set_rate(1000);
  const int64_t t0 = 5 * kSec;
  EXPECT_TRUE(b.TryTake(260, t0));  // 260 ms ahead: past the 250 ms burst
  EXPECT_FALSE(b.TryTake(10, t0));
  b.Refund(260);
  EXPECT_TRUE(b.TryTake(10, t0));
  // A charge after the fact can go past the burst; the bucket is then over until paid.
  b.Charge(5000, t0);
  EXPECT_TRUE(b.Over(t0));
  EXPECT_TRUE(b.Over(t0 + 4 * kSec));
  EXPECT_FALSE(b.Over(t0 + 5 * kSec));
  // One request larger than the burst passes when the bucket is full.
  RateBucket big;
  big.set_rate(100);
  EXPECT_TRUE(big.TryTake(1000, t0));
  EXPECT_FALSE(big.TryTake(1, t0));
}

TEST(FleetShare, SplitsTheLimitByDemandWithAFloorPerNode) {
  // Alone, or unlimited: the whole limit (a single node is unchanged).
  EXPECT_EQ(FleetShare(1000, 5, 10, 1), 1000u);
  EXPECT_EQ(FleetShare(1000, 0, 0, 0), 1000u);
  EXPECT_EQ(FleetShare(0, 5, 10, 3), 0u);
  // Nobody's demand known: an even split.
  EXPECT_EQ(FleetShare(900, 0, 0, 3), 300u);
  // Equal demand on three nodes: a third each.
  EXPECT_EQ(FleetShare(900, 100, 300, 3), 300u);
  // Floor: 900 / 3 / 10 = 30 per node; the other 810 by demand.
  EXPECT_EQ(FleetShare(900, 0, 500, 3), 30u);
  EXPECT_EQ(FleetShare(900, 500, 500, 3), 30u + 810u);
  EXPECT_EQ(FleetShare(900, 100, 400, 3), 30u + 810u / 4);
  // The shares of all nodes add up to the limit (within rounding), whatever the demand.
  for (uint64_t limit : {1ull, 7ull, 300ull, 1000ull, 123457ull, 10'000'000'000ull}) {
    for (uint32_t nodes : {2u, 3u, 5u, 16u}) {
      std::vector<uint64_t> demand;
      for (uint32_t i = 0; i < nodes; ++i) demand.push_back(i == 0 ? 0 : (i * 37) % 1000 + 1);
      uint64_t total = 0;
      for (uint64_t d : demand) total += d;
      uint64_t sum = 0;
      for (uint64_t d : demand) {
        const uint64_t s = FleetShare(limit, d, total, nodes);
        EXPECT_GE(s, 1u);  // every node admits something
        sum += s;
      }
      const uint64_t floor_sum = nodes * std::max<uint64_t>(1, limit / nodes / 10);
      if (limit >= floor_sum) {  // rounding down loses less than one per node
        EXPECT_LE(sum, limit) << limit << " " << nodes;
        EXPECT_GE(sum + nodes, limit) << limit << " " << nodes;
      } else {  // a limit below one per node: the floors
        EXPECT_EQ(sum, floor_sum) << limit << " " << nodes;
      }
    }
  }
  // Demand larger than the total (records of different seconds): an even split.
  EXPECT_EQ(FleetShare(900, 50, 10, 3), 300u);
}

TEST(RateBucket, AdjustRateKeepsTheBucketState) {
  RateBucket b;
  b.set_rate(100);
  const int64_t t0 = 10 * kSec;
  int passed = 0;
  for (int i = 0; i < 100; ++i) passed += b.TryTake(1, t0);
  EXPECT_EQ(passed, 26);
  b.adjust_rate(200);  // a new share: no fresh burst
  EXPECT_FALSE(b.TryTake(1, t0));
  EXPECT_EQ(b.rate(), 200u);
  b.set_rate(400);  // a new limit: a fresh bucket
  EXPECT_TRUE(b.TryTake(1, t0));
}

class TenancyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // ctest runs each case in its own process, in parallel: one directory per case.
    dir_ = ::testing::TempDir() + "/tenancy_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
           std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    metadata_ = std::make_unique<metadata::LocalStore>(dir_);
    reg_ = std::make_unique<control::CacheRegistry>(*metadata_);
    tenancy_ = std::make_unique<Tenancy>(reg_.get());
    reg_->set_on_change([this] { tenancy_->Refresh(); });
    tenant_ = reg_->CreateTenant("acme")->id;
    a_ = reg_->Create(tenant_, "a")->id;
    b_ = reg_->Create(tenant_, "b")->id;
  }
  std::string dir_;
  std::unique_ptr<metadata::LocalStore> metadata_;
  std::unique_ptr<control::CacheRegistry> reg_;
  std::unique_ptr<Tenancy> tenancy_;
  uint32_t tenant_ = 0, a_ = 0, b_ = 0;
};

TEST_F(TenancyTest, ChangesApplyAtOnceAndCachesHaveTheirOwnBuckets) {
  auto a = tenancy_->Find(a_);
  auto b = tenancy_->Find(b_);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->limit(control::LimitId::kRequestsPerSecond), 100000u);
  ASSERT_TRUE(reg_->UpdateCacheLimits(tenant_, "a",
                                      *control::ParseLimits("requests_per_second=4", true))
                  .ok());
  EXPECT_EQ(a->limit(control::LimitId::kRequestsPerSecond), 4u);  // same object, new value
  const int64_t now = 100 * kSec;
  int refused = 0;
  for (int i = 0; i < 10; ++i) refused += tenancy_->Admit(*a, 1, 10, now) != Refusal::kNone;
  EXPECT_EQ(refused, 8);  // 4/s: one every 250 ms, 250 ms of burst: 2 back to back
  EXPECT_EQ(a->usage.refusals[static_cast<size_t>(Refusal::kRequestRate)].load(), 8u);
  EXPECT_EQ(a->usage.requests.load(), 10u);
  EXPECT_EQ(a->usage.bytes_in.load(), 20u);  // only what was admitted
  // The other cache of the tenant is not touched.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(tenancy_->Admit(*b, 1, 10, now), Refusal::kNone);
  // Raising the limit takes effect for the next request.
  ASSERT_TRUE(reg_->UpdateCacheLimits(tenant_, "a",
                                      *control::ParseLimits("requests_per_second=default", true))
                  .ok());
  EXPECT_EQ(tenancy_->Admit(*a, 1, 10, now), Refusal::kNone);
}

TEST_F(TenancyTest, TenantWideLimitsAndReadDebt) {
  ASSERT_TRUE(reg_->UpdateTenantLimits(
                      tenant_, *control::ParseLimits("tenant_requests_per_second=8", false))
                  .ok());
  auto a = tenancy_->Find(a_);
  auto b = tenancy_->Find(b_);
  const int64_t now = 100 * kSec;
  int admitted = 0;
  for (int i = 0; i < 10; ++i) {
    admitted += tenancy_->Admit(*a, 1, 0, now) == Refusal::kNone;
    admitted += tenancy_->Admit(*b, 1, 0, now) == Refusal::kNone;
  }
  EXPECT_EQ(admitted, 3);  // 8/s: 1 + 250/125 back to back, over both caches
  EXPECT_GT(b->usage.refusals[static_cast<size_t>(Refusal::kTenantRequestRate)].load(), 0u);
  // Reads are charged after the reply; the next request is refused while in debt.
  ASSERT_TRUE(reg_->UpdateCacheLimits(tenant_, "b",
                                      *control::ParseLimits("read_bytes_per_second=1000", true))
                  .ok());
  ASSERT_TRUE(reg_->UpdateTenantLimits(
                      tenant_, *control::ParseLimits("tenant_requests_per_second=default", false))
                  .ok());
  tenancy_->ChargeRead(*b, 5000, now);
  EXPECT_EQ(tenancy_->Admit(*b, 1, 0, now), Refusal::kReadRate);
  EXPECT_EQ(tenancy_->Admit(*b, 1, 0, now + 5 * kSec), Refusal::kNone);
  EXPECT_EQ(b->usage.bytes_out.load(), 5000u);
}

TEST_F(TenancyTest, TopicLimitsMessageSizePublishRateAndSubscriptions) {
  ASSERT_TRUE(reg_->UpdateCacheLimits(
                      tenant_, "a",
                      *control::ParseLimits("max_message_bytes=10,publish_per_second=3,"
                                            "max_subscriptions=2",
                                            true))
                  .ok());
  auto a = tenancy_->Find(a_);
  Status big = tenancy_->AdmitPublish(a_, 11);
  EXPECT_EQ(big.code(), Code::kResourceExhausted);
  EXPECT_TRUE(big.message().starts_with(topics::kMessageSizeText));
  // A second's worth of the rate back to back (a token bucket of one second), not more.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(tenancy_->AdmitPublish(a_, 10).ok()) << i;
  Status fast = tenancy_->AdmitPublish(a_, 1);
  EXPECT_EQ(fast.code(), Code::kResourceExhausted);
  EXPECT_TRUE(fast.message().starts_with(topics::kPublishRateText));
  EXPECT_NE(fast.message().find("3 per second"), std::string::npos);
  EXPECT_TRUE(tenancy_->AdmitPublish(b_, 1).ok());  // per cache
  EXPECT_EQ(a->usage.refusals[static_cast<size_t>(Refusal::kMessageSize)].load(), 1u);
  EXPECT_EQ(a->usage.refusals[static_cast<size_t>(Refusal::kPublishRate)].load(), 1u);

  EXPECT_TRUE(tenancy_->AdmitSubscription(a_).ok());
  EXPECT_TRUE(tenancy_->AdmitSubscription(a_).ok());
  Status third = tenancy_->AdmitSubscription(a_);
  EXPECT_EQ(third.code(), Code::kResourceExhausted);
  EXPECT_TRUE(third.message().starts_with(topics::kSubscriptionsText));
  EXPECT_EQ(a->subscriptions.load(), 2);
  EXPECT_EQ(a->usage.refusals[static_cast<size_t>(Refusal::kSubscriptions)].load(), 1u);
  tenancy_->ReleaseSubscription(a_);
  EXPECT_TRUE(tenancy_->AdmitSubscription(a_).ok()) << "a place was freed";
  // An unknown cache is not limited (and its release is nothing).
  EXPECT_TRUE(tenancy_->AdmitPublish(999, 1 << 20).ok());
  EXPECT_TRUE(tenancy_->AdmitSubscription(999).ok());
  tenancy_->ReleaseSubscription(999);
}

TEST_F(TenancyTest, TenantSubscriptionCapSpansItsCachesAndDeletionGivesBack) {
  ASSERT_TRUE(reg_->UpdateTenantLimits(
                      tenant_, *control::ParseLimits("tenant_max_subscriptions=3", false))
                  .ok());
  const uint32_t other = reg_->CreateTenant("other")->id;
  const uint32_t c_ = reg_->Create(other, "c")->id;
  auto a = tenancy_->Find(a_);
  EXPECT_TRUE(tenancy_->AdmitSubscription(a_).ok());
  EXPECT_TRUE(tenancy_->AdmitSubscription(b_).ok());
  EXPECT_TRUE(tenancy_->AdmitSubscription(b_).ok());
  Status d = tenancy_->AdmitSubscription(a_);
  EXPECT_EQ(d.code(), Code::kResourceExhausted);
  EXPECT_NE(d.message().find("tenant_max_subscriptions"), std::string::npos);
  EXPECT_EQ(a->subscriptions.load(), 1);  // the refused one is not counted anywhere
  EXPECT_EQ(a->tenant_state->subscriptions.load(), 3);
  EXPECT_TRUE(tenancy_->AdmitSubscription(c_).ok());  // another tenant
  // Deleting b gives its two places back to the tenant at once; their later releases are
  // not counted twice.
  ASSERT_TRUE(reg_->Remove(tenant_, "b").ok());
  EXPECT_EQ(a->tenant_state->subscriptions.load(), 1);
  tenancy_->ReleaseSubscription(b_);
  tenancy_->ReleaseSubscription(b_);
  EXPECT_EQ(a->tenant_state->subscriptions.load(), 1);
  EXPECT_TRUE(tenancy_->AdmitSubscription(a_).ok());
  EXPECT_TRUE(tenancy_->AdmitSubscription(a_).ok());
  EXPECT_FALSE(tenancy_->AdmitSubscription(a_).ok());
}

TEST_F(TenancyTest, DescribeNamesTheLimitAndDeletedCachesAreMarked) {
  auto a = tenancy_->Find(a_);
  EXPECT_EQ(Tenancy::Describe(*a, Refusal::kRequestRate),
            "Request rate limit exceeded: cache 'a' allows 100000 operations per second "
            "(requests_per_second)");
  EXPECT_EQ(RefusalErr(Refusal::kWriteRate), "throughput_rate_limit_exceeded");
  EXPECT_EQ(RefusalErr(Refusal::kElementSize), "element_size_limit_exceeded");
  EXPECT_EQ(RefusalCode(Refusal::kTtl), Code::kInvalidArgument);
  ASSERT_TRUE(reg_->Remove(tenant_, "a").ok());
  EXPECT_TRUE(a->deleted.load());
  EXPECT_EQ(tenancy_->Find(a_), nullptr);
}

TEST_F(TenancyTest, ApplyFleetSetsEachNodesShareAndRefreshKeepsIt) {
  ASSERT_TRUE(
      reg_->UpdateCacheLimits(tenant_, "a", *control::ParseLimits("requests_per_second=900", true))
          .ok());
  ASSERT_TRUE(reg_->UpdateTenantLimits(
                      tenant_, *control::ParseLimits("tenant_requests_per_second=3000", false))
                  .ok());
  auto a = tenancy_->Find(a_);
  auto b = tenancy_->Find(b_);
  EXPECT_EQ(a->requests.rate(), 900u);  // a single node: the whole limit
  absl::flat_hash_map<uint32_t, FleetDemand> caches{{a_, {100, 400}}};
  absl::flat_hash_map<uint32_t, FleetDemand> tenants{{tenant_, {100, 400}}};
  tenancy_->ApplyFleet(3, caches, tenants);
  EXPECT_EQ(tenancy_->fleet_nodes(), 3u);
  EXPECT_EQ(a->requests.rate(), 30u + 810u / 4);
  EXPECT_EQ(a->tenant_state->requests.rate(), 100u + 2700u / 4);
  // No demand known for b: an even split of its limit (100,000 by default).
  EXPECT_EQ(b->requests.rate(), 100000u / 3);
  // The limit is still what was set: refusals name it, not the share.
  EXPECT_NE(Tenancy::Describe(*a, Refusal::kRequestRate).find("allows 900 operations"),
            std::string::npos);
  EXPECT_NE(Tenancy::Describe(*a, Refusal::kTenantRequestRate).find("allows 3000 operations"),
            std::string::npos);
  // A catalog change re-reads the limits and keeps the shares.
  ASSERT_TRUE(
      reg_->UpdateCacheLimits(tenant_, "a", *control::ParseLimits("requests_per_second=1800", true))
          .ok());
  EXPECT_EQ(a->requests.rate(), 60u + 1620u / 4);
  // Alone again: the whole limit.
  tenancy_->ApplyFleet(1, {}, {});
  EXPECT_EQ(a->requests.rate(), 1800u);
}

}  // namespace
}  // namespace cellar::gateway
