#include "gateway/stats.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <deque>
#include <numeric>
#include <tuple>
#include <utility>

#include "gateway/tenancy.h"

namespace cellar::gateway {
namespace {

constexpr CacheCounterRow kRows[] = {
    {"operations_total", metrics::Type::kCounter, "Operations executed on the shards",
     "operations", &CacheStats::ops},
    {"requests_total", metrics::Type::kCounter, "Requests received (admitted and throttled)",
     "requests", &CacheStats::requests},
    {"hits_total", metrics::Type::kCounter, "Reads that found their key", "hits",
     &CacheStats::hits},
    {"misses_total", metrics::Type::kCounter, "Reads that did not find their key", "misses",
     &CacheStats::misses},
    {"bytes_in_total", metrics::Type::kCounter, "Request bytes admitted (keys, values, arguments)",
     "bytes_in", &CacheStats::bytes_in},
    {"bytes_out_total", metrics::Type::kCounter, "Value bytes answered", "bytes_out",
     &CacheStats::bytes_out},
    {"items", metrics::Type::kGauge, "Items stored", "items", &CacheStats::items},
    {"bytes", metrics::Type::kGauge, "Memory held by items (allocation bytes)", "bytes",
     &CacheStats::bytes},
    {"evictions_total", metrics::Type::kCounter, "Items evicted under memory pressure",
     "evictions", &CacheStats::evictions},
    {"expirations_total", metrics::Type::kCounter, "Items removed because their TTL passed",
     "expirations", &CacheStats::expirations},
};
constexpr size_t kNumRows = std::size(kRows);

// The defs of one family (cache or tenant): a row each, then throttled and latency. Their
// names are made from the rows once, at first use, and live as long as the process.
struct Family {
  std::deque<std::string> text;  // owns the names and helps
  std::vector<metrics::Def> defs;
  std::vector<const metrics::Def*> pointers;

  explicit Family(std::string_view family) {
    const std::string prefix = "cellar_" + std::string(family) + "_";
    const std::string by = ", by " + std::string(family);
    auto def = [&](std::string name, metrics::Type type, std::string help, std::string_view labels) {
      const std::string& n = text.emplace_back(std::move(name));
      const std::string& h = text.emplace_back(std::move(help));
      defs.push_back({n, type, h, labels});
    };
    const std::string_view labels = family == "cache" ? "tenant,cache" : "tenant";
    const std::string_view reason_labels = family == "cache" ? "tenant,cache,reason" : "tenant,reason";
    defs.reserve(kNumRows + 2);
    for (const CacheCounterRow& row : kRows) {
      def(prefix + std::string(row.suffix), row.type, std::string(row.help) + by + ".", labels);
    }
    def(prefix + "throttled_total", metrics::Type::kCounter,
        "Requests refused by a limit" + by + " and reason.", reason_labels);
    def(prefix + "latency_seconds", metrics::Type::kHistogram,
        "Time from a request's arrival to its reply being ready" + by + ".", labels);
    for (const metrics::Def& d : defs) pointers.push_back(&d);
  }
  const metrics::Def& throttled() const { return defs[kNumRows]; }
  const metrics::Def& latency() const { return defs[kNumRows + 1]; }
};

const Family& CacheFamily() {
  static const Family* f = new Family("cache");
  return *f;
}
const Family& TenantFamily() {
  static const Family* f = new Family("tenant");
  return *f;
}

inline constexpr metrics::Def kTenantCaches{"cellar_tenant_caches", metrics::Type::kGauge,
                                            "Caches, by tenant.", "tenant"};
inline constexpr metrics::Def kFoldedCaches{
    "cellar_metrics_folded_caches", metrics::Type::kGauge,
    "Caches summed under cache=\"_other\" (beyond --metrics-max-caches).", ""};
inline constexpr metrics::Def kFoldedTenants{
    "cellar_metrics_folded_tenants", metrics::Type::kGauge,
    "Tenants summed under tenant=\"_other\" (beyond --metrics-max-tenants).", ""};

// Busiest first: requests, then operations, then by name (stable across scrapes).
bool Busier(const CacheStats& a, const CacheStats& b) {
  if (a.requests != b.requests) return a.requests > b.requests;
  if (a.ops != b.ops) return a.ops > b.ops;
  if (a.tenant != b.tenant) return a.tenant < b.tenant;
  return a.name < b.name;
}

// One labelled series of a family: the label text and the counters behind it.
using Series = std::vector<std::pair<std::string, const CacheStats*>>;

void AddFamily(metrics::Sink& sink, const Family& family, const Series& series) {
  for (size_t r = 0; r < kNumRows; ++r) {
    for (const auto& [labels, c] : series) sink.Add(family.defs[r], labels, c->*kRows[r].field);
  }
  for (const auto& [labels, c] : series) {
    for (size_t r = 1; r < c->refusals.size(); ++r) {
      if (c->refusals[r] == 0) continue;
      sink.Add(family.throttled(),
               labels + ",reason=\"" + std::string(RefusalName(static_cast<Refusal>(r))) + "\"",
               c->refusals[r]);
    }
  }
  for (const auto& [labels, c] : series) {
    if (c->latency_count == 0 || c->latency.empty()) continue;
    sink.Add(family.latency(), labels,
             metrics::HistogramValue{kCacheLatencyBoundsUs, c->latency, c->latency_sum_us});
  }
}

void AddCacheMetrics(metrics::Sink& sink, const Stats& st, const CacheMetricsOptions& opts) {
  // Caches: the busiest individually, the rest summed.
  std::vector<const CacheStats*> caches;
  caches.reserve(st.caches.size());
  for (const CacheStats& c : st.caches) caches.push_back(&c);
  std::sort(caches.begin(), caches.end(),
            [](const CacheStats* a, const CacheStats* b) { return Busier(*a, *b); });
  Series cache_series;
  CacheStats other_caches;
  size_t folded_caches = 0;
  for (const CacheStats* c : caches) {
    if (cache_series.size() < opts.max_caches) {
      cache_series.emplace_back(
          "tenant=\"" + metrics::LabelEscape(c->tenant) + "\",cache=\"" + metrics::LabelEscape(c->name) + "\"", c);
    } else {
      other_caches += *c;
      ++folded_caches;
    }
  }
  // Keep each scrape's lines in a stable order (by tenant, then cache), busiest chosen above.
  std::sort(cache_series.begin(), cache_series.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->tenant, a.second->name) < std::tie(b.second->tenant, b.second->name);
  });
  if (folded_caches > 0) {
    cache_series.emplace_back("tenant=\"_other\",cache=\"_other\"", &other_caches);
  }
  AddFamily(sink, CacheFamily(), cache_series);

  // Tenants: every cache summed into its tenant, then the busiest tenants individually.
  absl::flat_hash_map<uint32_t, size_t> tenant_index;
  std::vector<CacheStats> tenants;
  std::vector<uint64_t> tenant_caches;
  for (const CacheStats& c : st.caches) {
    auto [it, inserted] = tenant_index.try_emplace(c.tenant_id, tenants.size());
    if (inserted) {
      tenants.emplace_back();
      tenants.back().tenant = c.tenant;
      tenants.back().tenant_id = c.tenant_id;
      tenant_caches.push_back(0);
    }
    tenants[it->second] += c;
    ++tenant_caches[it->second];
  }
  std::vector<size_t> order(tenants.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return Busier(tenants[a], tenants[b]); });
  Series tenant_series;
  std::vector<std::pair<std::string, uint64_t>> cache_counts;
  CacheStats other_tenants;
  uint64_t other_tenant_caches = 0;
  size_t folded_tenants = 0;
  for (size_t i : order) {
    if (tenant_series.size() < opts.max_tenants) {
      std::string labels = "tenant=\"" + metrics::LabelEscape(tenants[i].tenant) + "\"";
      cache_counts.emplace_back(labels, tenant_caches[i]);
      tenant_series.emplace_back(std::move(labels), &tenants[i]);
    } else {
      other_tenants += tenants[i];
      other_tenant_caches += tenant_caches[i];
      ++folded_tenants;
    }
  }
  std::sort(tenant_series.begin(), tenant_series.end(),
            [](const auto& a, const auto& b) { return a.second->tenant < b.second->tenant; });
  std::sort(cache_counts.begin(), cache_counts.end());
  if (folded_tenants > 0) {
    tenant_series.emplace_back("tenant=\"_other\"", &other_tenants);
    cache_counts.emplace_back("tenant=\"_other\"", other_tenant_caches);
  }
  AddFamily(sink, TenantFamily(), tenant_series);
  for (const auto& [labels, n] : cache_counts) sink.Add(kTenantCaches, labels, n);
  sink.Add(kFoldedCaches, "", folded_caches);
  sink.Add(kFoldedTenants, "", folded_tenants);
}

}  // namespace

CacheStats& CacheStats::operator+=(const CacheStats& c) {
  ops += c.ops;
  items += c.items;
  bytes += c.bytes;
  hits += c.hits;
  misses += c.misses;
  evictions += c.evictions;
  expirations += c.expirations;
  requests += c.requests;
  bytes_in += c.bytes_in;
  bytes_out += c.bytes_out;
  if (refusals.size() < c.refusals.size()) refusals.resize(c.refusals.size());
  for (size_t i = 0; i < c.refusals.size(); ++i) refusals[i] += c.refusals[i];
  if (latency.size() < c.latency.size()) latency.resize(c.latency.size());
  for (size_t i = 0; i < c.latency.size(); ++i) latency[i] += c.latency[i];
  latency_sum_us += c.latency_sum_us;
  latency_count += c.latency_count;
  return *this;
}

metrics::Source StoreMetrics(const StoreTotals& t) {
  static constexpr const metrics::Def* kDefs[] = {&kItems,     &kMemoryUsed, &kMemoryIndex,
                                                  &kMemoryLimit, &kHits,     &kMisses,
                                                  &kEvictions, &kExpirations, &kOomRefusals};
  return {kDefs, [&t](metrics::Sink& sink) {
            sink.Add(kItems, "", t.items);
            sink.Add(kMemoryUsed, "", t.used_bytes);
            sink.Add(kMemoryIndex, "", t.index_bytes);
            sink.Add(kMemoryLimit, "", t.memory_limit);
            sink.Add(kHits, "", t.hits);
            sink.Add(kMisses, "", t.misses);
            sink.Add(kEvictions, "", t.evictions);
            sink.Add(kExpirations, "", t.expirations);
            sink.Add(kOomRefusals, "", t.oom_refusals);
          }};
}

std::span<const CacheCounterRow> CacheCounterRows() { return kRows; }

metrics::Source CacheMetrics(const Stats& stats, const CacheMetricsOptions& opts) {
  static const std::vector<const metrics::Def*>* defs = [] {
    auto* all = new std::vector<const metrics::Def*>(CacheFamily().pointers);
    all->insert(all->end(), TenantFamily().pointers.begin(), TenantFamily().pointers.end());
    all->insert(all->end(), {&kTenantCaches, &kFoldedCaches, &kFoldedTenants});
    return all;
  }();
  return {*defs, [&stats, opts](metrics::Sink& sink) { AddCacheMetrics(sink, stats, opts); }};
}

}  // namespace cellar::gateway
