// What the shards and the front-ends count, gathered by Gateway::CollectStats, and the metrics
// declared over it: the store's totals (cellar_items, cellar_memory_*, cellar_hits_total...)
// and the per-cache and per-tenant families (cellar_cache_*, cellar_tenant_*), whose rows also
// give GET /v1/stats (what `cellar stats` reads) its fields.
//
// Label cardinality is bounded: the `max_caches` caches with the most requests get their own
// {tenant, cache} series and the rest are summed under tenant="_other",cache="_other"; the
// `max_tenants` busiest tenants likewise get their own {tenant} series and the rest
// tenant="_other". So a server with 100,000 caches still answers a few thousand lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"

namespace cellar::gateway {

struct CacheStats {
  std::string tenant;
  std::string name;
  uint32_t id = 0;
  uint32_t tenant_id = 0;
  // Engine counters, summed over the shards; bytes: allocation bytes of its items.
  uint64_t ops = 0, items = 0, bytes = 0, hits = 0, misses = 0, evictions = 0, expirations = 0;
  // The front-ends' usage counters (tenancy.h CacheUsage); zero without tenancy.
  uint64_t requests = 0, bytes_in = 0, bytes_out = 0;
  std::vector<uint64_t> refusals;  // by Refusal (tenancy.h), kNumRefusals entries
  std::vector<uint64_t> latency;   // per kCacheLatencyBoundsUs bucket, not cumulative
  uint64_t latency_sum_us = 0, latency_count = 0;

  // Adds every counter of `other` (not the names): the one place counters are summed.
  CacheStats& operator+=(const CacheStats& other);
};

// The store as a whole, summed over the shards.
struct StoreTotals {
  uint64_t items = 0, used_bytes = 0, index_bytes = 0, memory_limit = 0;
  uint64_t hits = 0, misses = 0, evictions = 0, expirations = 0, oom_refusals = 0;
};

struct Stats : StoreTotals {
  std::vector<CacheStats> caches;  // every cache of the registry, sorted by name
};

// The store's totals.
inline constexpr metrics::Def kItems{"cellar_items", metrics::Type::kGauge,
                                     "Items stored (expired ones not yet removed included).", ""};
inline constexpr metrics::Def kMemoryUsed{"cellar_memory_used_bytes", metrics::Type::kGauge,
                                          "Bytes used by items and the key index.", ""};
inline constexpr metrics::Def kMemoryIndex{"cellar_memory_index_bytes", metrics::Type::kGauge,
                                           "Bytes of the key index (part of used bytes).", ""};
inline constexpr metrics::Def kMemoryLimit{"cellar_memory_limit_bytes", metrics::Type::kGauge,
                                           "The memory limit; eviction keeps under it.", ""};
inline constexpr metrics::Def kHits{"cellar_hits_total", metrics::Type::kCounter,
                                    "Reads that found their key.", ""};
inline constexpr metrics::Def kMisses{"cellar_misses_total", metrics::Type::kCounter,
                                      "Reads that did not find their key.", ""};
inline constexpr metrics::Def kEvictions{"cellar_evictions_total", metrics::Type::kCounter,
                                         "Items evicted to stay within the memory limit.", ""};
inline constexpr metrics::Def kExpirations{"cellar_expirations_total", metrics::Type::kCounter,
                                           "Items removed because their TTL passed.", ""};
inline constexpr metrics::Def kOomRefusals{"cellar_oom_refusals_total", metrics::Type::kCounter,
                                           "Writes refused because nothing could be evicted.", ""};
metrics::Source StoreMetrics(const StoreTotals& totals);

// One counter of a cache, shown as cellar_cache_<suffix>, cellar_tenant_<suffix> and the
// `json` field of GET /v1/stats.
struct CacheCounterRow {
  std::string_view suffix;
  metrics::Type type;
  std::string_view help;  // without the closing ", by cache." / ", by tenant."
  std::string_view json;
  uint64_t CacheStats::*field;
};
std::span<const CacheCounterRow> CacheCounterRows();

struct CacheMetricsOptions {
  size_t max_caches = 100;   // --metrics-max-caches; 0: every cache under "_other"
  size_t max_tenants = 100;  // --metrics-max-tenants; 0: every tenant under "_other"
};
// Every cellar_cache_* and cellar_tenant_* series (rows, throttled by reason, latency), plus
// cellar_tenant_caches and cellar_metrics_folded_{caches,tenants}. `stats` must outlive the
// source.
metrics::Source CacheMetrics(const Stats& stats, const CacheMetricsOptions& opts);

}  // namespace cellar::gateway
