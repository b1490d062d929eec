#include "server/fleet.h"

#include <gtest/gtest.h>

#include "gateway/tenancy.h"

namespace cellar::server {
namespace {

TEST(FleetRecord, RoundTripsDemandCountersAndUsage) {
  FleetRecord r;
  r.demand = {{3, 250}, {70000, 1}};
  gateway::CacheStats c;
  c.id = 3;
  c.ops = 1;
  c.items = 2;
  c.bytes = 3;
  c.hits = 4;
  c.misses = 5;
  c.evictions = 6;
  c.expirations = 7;
  c.requests = 8;
  c.bytes_in = 9;
  c.bytes_out = 10;
  c.latency_sum_us = 11;
  c.latency_count = 12;
  c.refusals.assign(gateway::kNumRefusals, 0);
  c.refusals[static_cast<size_t>(gateway::Refusal::kRequestRate)] = 13;
  c.latency.assign(gateway::kCacheLatencyBoundsUs.size(), 1);
  r.stats.push_back(c);
  r.usage.push_back(UsageRecord{1800000000, "acme \"q\"", "orders", {1, 2, 3, 4}, false});
  const std::string json = r.ToJson();
  auto back = FleetRecord::FromJson(json);
  ASSERT_TRUE(back.has_value()) << json;
  EXPECT_EQ(back->demand, r.demand);
  ASSERT_EQ(back->stats.size(), 1u);
  const gateway::CacheStats& b = back->stats[0];
  EXPECT_EQ(b.id, 3u);
  EXPECT_EQ(std::vector<uint64_t>({b.ops, b.items, b.bytes, b.hits, b.misses, b.evictions,
                                   b.expirations, b.requests, b.bytes_in, b.bytes_out,
                                   b.latency_sum_us, b.latency_count}),
            std::vector<uint64_t>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(b.refusals, c.refusals);
  EXPECT_EQ(b.latency, c.latency);
  ASSERT_EQ(back->usage.size(), 1u);
  EXPECT_EQ(back->usage[0].minute, 1800000000);
  EXPECT_EQ(back->usage[0].tenant, "acme \"q\"");
  EXPECT_EQ(back->usage[0].cache, "orders");
  EXPECT_EQ(back->usage[0].usage.requests, 1u);
  EXPECT_EQ(back->usage[0].usage.throttled, 4u);
  // Summing a peer's counters into this node's is CacheStats' own +=.
  gateway::CacheStats sum = c;
  sum += b;
  EXPECT_EQ(sum.requests, 16u);
  EXPECT_EQ(sum.refusals[static_cast<size_t>(gateway::Refusal::kRequestRate)], 26u);
}

TEST(FleetRecord, RoundTripsLoad) {
  FleetRecord r;
  r.demand = {{3, 250}};
  r.load = FleetLoad{1234, 5ull << 30, 987654};
  const std::string json = r.ToJson();
  // Small: the load is three numbers under "l".
  EXPECT_NE(json.find(R"("l":{"rps":1234,"mem":5368709120,"items":987654})"), std::string::npos)
      << json;
  auto back = FleetRecord::FromJson(json);
  ASSERT_TRUE(back.has_value()) << json;
  ASSERT_TRUE(back->load.has_value());
  EXPECT_EQ(*back->load, *r.load);
  EXPECT_EQ(back->demand, r.demand);
  // A record without "l" (a node before its first gather) has no load, not a zero one.
  auto none = FleetRecord::FromJson(FleetRecord{}.ToJson());
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->load.has_value());
  EXPECT_EQ(FleetRecord{}.ToJson().find("\"l\""), std::string::npos);
  // Missing fields read as zero; a malformed "l" is ignored.
  auto partial = FleetRecord::FromJson(R"({"l":{"rps":7}})");
  ASSERT_TRUE(partial.has_value() && partial->load.has_value());
  EXPECT_EQ(*partial->load, (FleetLoad{7, 0, 0}));
  auto odd = FleetRecord::FromJson(R"({"l":[1,2,3]})");
  ASSERT_TRUE(odd.has_value());
  EXPECT_FALSE(odd->load.has_value());
}

TEST(FleetRecord, EmptyAndMalformed) {
  auto empty = FleetRecord::FromJson(FleetRecord{}.ToJson());
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->demand.empty() && empty->stats.empty() && empty->usage.empty());
  EXPECT_FALSE(FleetRecord::FromJson("").has_value());
  EXPECT_FALSE(FleetRecord::FromJson("[1]").has_value());
  // Rows of the wrong shape and ids that are not numbers are skipped, not trusted.
  auto odd = FleetRecord::FromJson(R"({"d":{"x":5,"7":9},"s":[[1,2]],"u":[[1,"a"]]})");
  ASSERT_TRUE(odd.has_value());
  EXPECT_EQ(odd->demand, (std::map<uint32_t, uint64_t>{{7, 9}}));
  EXPECT_TRUE(odd->stats.empty());
  EXPECT_TRUE(odd->usage.empty());
}

}  // namespace
}  // namespace cellar::server
