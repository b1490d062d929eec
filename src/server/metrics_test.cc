#include "server/metrics.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

#include "common/metrics.h"
#include "gateway/stats.h"
#include "gateway/tenancy.h"

namespace cellar::server {
namespace {

gateway::CacheStats Cache(std::string tenant, uint32_t tenant_id, std::string name, uint32_t id,
                          uint64_t requests) {
  gateway::CacheStats c;
  c.tenant = std::move(tenant);
  c.tenant_id = tenant_id;
  c.name = std::move(name);
  c.id = id;
  c.requests = requests;
  c.items = 1;
  c.refusals.assign(gateway::kNumRefusals, 0);
  c.latency.assign(gateway::kCacheLatencyBoundsUs.size(), 0);
  return c;
}

// Only the per-cache (`cellar_cache_*`) and per-tenant (`cellar_tenant_*`) series.
std::string RenderCacheMetrics(const gateway::Stats& st, const MetricsOptions& opts) {
  const metrics::Source sources[] = {gateway::CacheMetrics(st, opts)};
  return metrics::RenderPrometheus(sources);
}

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricsTest, PerCacheAndPerTenantSeries) {
  gateway::Stats st;
  st.caches.push_back(Cache("acme", 2, "a", 1, 10));
  st.caches.push_back(Cache("acme", 2, "b", 2, 5));
  st.caches[0].bytes_in = 100;
  st.caches[0].refusals[static_cast<size_t>(gateway::Refusal::kRequestRate)] = 3;
  st.caches[0].latency[0] = 4;  // <= 50 us
  st.caches[0].latency[4] = 1;  // <= 1 ms
  st.caches[0].latency_count = 5;
  st.caches[0].latency_sum_us = 1200;
  const std::string text = RenderCacheMetrics(st, {});
  EXPECT_TRUE(Has(text, "cellar_cache_requests_total{tenant=\"acme\",cache=\"a\"} 10")) << text;
  EXPECT_TRUE(Has(text, "cellar_cache_bytes_in_total{tenant=\"acme\",cache=\"a\"} 100"));
  EXPECT_TRUE(Has(
      text, "cellar_cache_throttled_total{tenant=\"acme\",cache=\"a\",reason=\"request_rate\"} 3"));
  EXPECT_TRUE(Has(
      text, "cellar_cache_latency_seconds_bucket{tenant=\"acme\",cache=\"a\",le=\"0.000050\"} 4"));
  EXPECT_TRUE(Has(
      text, "cellar_cache_latency_seconds_bucket{tenant=\"acme\",cache=\"a\",le=\"0.001000\"} 5"));
  EXPECT_TRUE(
      Has(text, "cellar_cache_latency_seconds_bucket{tenant=\"acme\",cache=\"a\",le=\"+Inf\"} 5"));
  EXPECT_TRUE(Has(text, "cellar_cache_latency_seconds_count{tenant=\"acme\",cache=\"a\"} 5"));
  EXPECT_TRUE(Has(text, "cellar_cache_latency_seconds_sum{tenant=\"acme\",cache=\"a\"} 0.001200"));
  EXPECT_TRUE(Has(text, "cellar_tenant_requests_total{tenant=\"acme\"} 15"));
  EXPECT_TRUE(Has(text, "cellar_tenant_items{tenant=\"acme\"} 2"));
  EXPECT_TRUE(Has(text, "cellar_tenant_caches{tenant=\"acme\"} 2"));
  EXPECT_TRUE(
      Has(text, "cellar_tenant_throttled_total{tenant=\"acme\",reason=\"request_rate\"} 3"));
  EXPECT_EQ(text.find("{tenant=\"_other\""), std::string::npos);
  EXPECT_TRUE(Has(text, "cellar_metrics_folded_caches 0"));
}

TEST(MetricsTest, CapsCachesAndTenantsByRequests) {
  gateway::Stats st;
  for (uint32_t i = 0; i < 10; ++i) {
    st.caches.push_back(Cache("t" + std::to_string(i % 5), 10 + i % 5, "c" + std::to_string(i),
                              i + 1, /*requests=*/i));
  }
  const std::string text = RenderCacheMetrics(st, {.max_caches = 3, .max_tenants = 2});
  // c9, c8, c7 are the busiest; c0..c6 (0+1+...+6 = 21 requests, 7 items) are summed.
  EXPECT_TRUE(Has(text, "cellar_cache_requests_total{tenant=\"t4\",cache=\"c9\"} 9")) << text;
  EXPECT_TRUE(Has(text, "cellar_cache_requests_total{tenant=\"t2\",cache=\"c7\"} 7"));
  EXPECT_EQ(text.find("cache=\"c6\""), std::string::npos);
  EXPECT_TRUE(Has(text, "cellar_cache_requests_total{tenant=\"_other\",cache=\"_other\"} 21"));
  EXPECT_TRUE(Has(text, "cellar_cache_items{tenant=\"_other\",cache=\"_other\"} 7"));
  EXPECT_TRUE(Has(text, "cellar_metrics_folded_caches 7"));
  // Tenants: t4 (4+9) and t3 (3+8) individually; t0..t2 (0+5+1+6+2+7 = 21) summed.
  EXPECT_TRUE(Has(text, "cellar_tenant_requests_total{tenant=\"t4\"} 13"));
  EXPECT_TRUE(Has(text, "cellar_tenant_requests_total{tenant=\"t3\"} 11"));
  EXPECT_TRUE(Has(text, "cellar_tenant_requests_total{tenant=\"_other\"} 21"));
  EXPECT_TRUE(Has(text, "cellar_tenant_caches{tenant=\"_other\"} 6"));
  EXPECT_TRUE(Has(text, "cellar_metrics_folded_tenants 3"));
}

TEST(MetricsTest, StatsJsonFilters) {
  gateway::Stats st;
  st.caches.push_back(Cache("acme", 2, "a", 1, 10));
  st.caches.push_back(Cache("beta", 3, "a", 2, 5));
  st.caches[0].refusals[static_cast<size_t>(gateway::Refusal::kReadRate)] = 2;
  const std::string all = RenderStatsJson(st, 1234, std::nullopt, std::nullopt);
  EXPECT_NE(all.find("\"time_ms\":1234"), std::string::npos);
  EXPECT_NE(all.find("\"tenant\":\"beta\""), std::string::npos);
  EXPECT_NE(all.find("\"throttled\":{\"read_rate\":2}"), std::string::npos) << all;
  const std::string one = RenderStatsJson(st, 1234, std::string("acme"), std::string("a"));
  EXPECT_EQ(one.find("\"tenant\":\"beta\""), std::string::npos);
  EXPECT_NE(one.find("\"requests\":10"), std::string::npos);
}

// The whole page as Prometheus parses it: each family's TYPE once, before its samples, and
// every sample belongs to a declared family.
TEST(MetricsTest, WholePageDeclaresEachFamilyOnceBeforeItsSamples) {
  gateway::Stats st;
  st.items = 7;
  st.caches.push_back(Cache("acme", 2, "a", 1, 10));
  st.caches[0].latency_count = 1;
  st.caches[0].latency[0] = 1;
  const std::string text = RenderMetrics(st, /*threads=*/2, /*gateway=*/nullptr, {});
  std::set<std::string> typed;
  std::istringstream lines(text);
  std::string line;
  size_t samples = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(typed.insert(name).second) << "declared twice: " << name;
      continue;
    }
    if (line.rfind("#", 0) == 0) continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string sfx = suffix;
      if (!typed.count(name) && name.size() > sfx.size() &&
          name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
        name.resize(name.size() - sfx.size());
      }
    }
    EXPECT_TRUE(typed.count(name)) << "a sample before (or without) its TYPE: " << line;
    ++samples;
  }
  EXPECT_GT(samples, 20u);
  for (const char* family : {"cellar_commands_total", "cellar_grpc_calls_total",
                             "cellar_connections", "cellar_protocol_errors_total",
                             "cellar_reply_memory_bytes", "cellar_bug_checks_failed_total",
                             "cellar_items", "cellar_cache_requests_total",
                             "cellar_tenant_latency_seconds"}) {
    EXPECT_TRUE(typed.count(family)) << family;
  }
  EXPECT_TRUE(Has(text, "cellar_items 7"));
  EXPECT_TRUE(Has(text, "cellar_connections{protocol=\"resp\"} 0"));
  EXPECT_TRUE(Has(text, "cellar_protocol_errors_total{protocol=\"grpc\"} 0"));
}

}  // namespace
}  // namespace cellar::server
