// What the admin port reports about the running server: /metrics (Prometheus text) and the
// per-cache counters of GET /v1/stats (JSON, cumulative; `cellar stats` takes rates from two).
// The metrics themselves are declared by the modules that count them (common/metrics.h); this
// file only puts the sources together.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/metrics.h"
#include "gateway/gateway.h"

namespace cellar::topics {
class Topics;
}

namespace cellar::server {

using MetricsOptions = gateway::CacheMetricsOptions;

// The whole /metrics page: every module's declared metrics (RESP, gRPC, connections, topics
// and authentication refusals when `gateway` is given, reply memory, bug checks, the store),
// then the per-cache and per-tenant series.
std::string RenderMetrics(const gateway::Stats& st, uint32_t threads,
                          const gateway::Gateway* gateway, const MetricsOptions& opts,
                          std::span<const metrics::Source> extra = {});

// GET /v1/stats: {"time_ms":N,"latency_bounds_us":[...],"caches":[{...}]} with every cache of
// `tenant` (all tenants if nullopt), or only `cache` of it; a cache's fields are the rows of
// gateway::CacheCounterRows() plus "throttled" by reason and its latency buckets. nodes > 0
// (a fleet): "nodes":N, how many nodes' counters the sums cover.
std::string RenderStatsJson(const gateway::Stats& st, int64_t now_ms,
                            const std::optional<std::string>& tenant,
                            const std::optional<std::string>& cache, size_t nodes = 0);

}  // namespace cellar::server
