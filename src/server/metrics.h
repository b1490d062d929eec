// What the admin port reports about the running server: /metrics (Prometheus text) and the
// per-cache counters of GET /v1/stats (JSON, cumulative; `cellar stats` takes rates from two).
//
// Label cardinality is bounded: the `max_caches` caches with the most requests get their own
// {tenant, cache} series and the rest are summed under tenant="_other",cache="_other"; the
// `max_tenants` busiest tenants likewise get their own {tenant} series and the rest
// tenant="_other". So a server with 100,000 caches still answers a few thousand lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "gateway/gateway.h"

namespace cellar::topics {
class Topics;
}

namespace cellar::server {

struct MetricsOptions {
  size_t max_caches = 100;   // --metrics-max-caches; 0: every cache under "_other"
  size_t max_tenants = 100;  // --metrics-max-tenants; 0: every tenant under "_other"
};

// The whole /metrics page: process-wide series (RESP, gRPC, topics, engine totals), then the
// per-cache and per-tenant series.
std::string RenderMetrics(const gateway::Stats& st, uint32_t threads, const topics::Topics* topics,
                          const MetricsOptions& opts);

// Only the per-cache (`cellar_cache_*`) and per-tenant (`cellar_tenant_*`) series.
std::string RenderCacheMetrics(const gateway::Stats& st, const MetricsOptions& opts);

// GET /v1/stats: {"time_ms":N,"latency_bounds_us":[...],"caches":[{...}]} with every cache of
// `tenant` (all tenants if nullopt), or only `cache` of it.
std::string RenderStatsJson(const gateway::Stats& st, int64_t now_ms,
                            const std::optional<std::string>& tenant,
                            const std::optional<std::string>& cache);

}  // namespace cellar::server
