#include "server/metrics.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <numeric>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/check.h"
#include "frontend/grpc/metrics.h"
#include "frontend/net/conn_gate.h"
#include "frontend/grpc/services.h"
#include "frontend/resp/commands.h"
#include "frontend/resp/metrics.h"
#include "gateway/reply_memory.h"
#include "gateway/tenancy.h"
#include "server/admin_util.h"
#include "topics/topics.h"

namespace cellar::server {
namespace {

using gateway::CacheStats;

void Metric(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += " ";
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += " ";
  out += type;
  out += "\n";
}

void Sample(std::string& out, std::string_view name, std::string_view labels, uint64_t v) {
  out += name;
  if (!labels.empty()) {
    out += "{";
    out += labels;
    out += "}";
  }
  out += " ";
  out += std::to_string(v);
  out += "\n";
}

std::string SecondsLabel(uint64_t us) {
  return us == UINT64_MAX ? "+Inf" : std::to_string(static_cast<double>(us) / 1e6);
}

std::string RenderProcessMetrics(const gateway::Stats& st, uint32_t threads,
                                 const topics::Topics* topics) {
  std::string out;
  using resp::MetricsOf;
  const auto& commands = resp::AllCommands();
  std::vector<uint64_t> calls(resp::kMaxCommandIds), errors(resp::kMaxCommandIds);
  std::vector<uint64_t> latency(resp::kLatencyBoundsUs.size());
  uint64_t opened = 0, closed = 0, proto_errors = 0, bytes_in = 0, bytes_out = 0, lat_sum = 0;
  for (uint32_t t = 0; t < threads; ++t) {
    resp::ThreadMetrics& m = MetricsOf(t);
    opened += m.connections_opened.load(std::memory_order_relaxed);
    closed += m.connections_closed.load(std::memory_order_relaxed);
    proto_errors += m.protocol_errors.load(std::memory_order_relaxed);
    bytes_in += m.bytes_in.load(std::memory_order_relaxed);
    bytes_out += m.bytes_out.load(std::memory_order_relaxed);
    lat_sum += m.latency_sum_us.load(std::memory_order_relaxed);
    for (size_t i = 0; i < resp::kMaxCommandIds; ++i) {
      calls[i] += m.calls[i].load(std::memory_order_relaxed);
      errors[i] += m.errors[i].load(std::memory_order_relaxed);
    }
    for (size_t i = 0; i < latency.size(); ++i)
      latency[i] += m.latency[i].load(std::memory_order_relaxed);
  }
  Metric(out, "cellar_commands_total", "counter", "RESP commands executed, by command.");
  for (const auto* spec : commands) {
    size_t id = resp::CommandIndex(spec->name);
    if (calls[id] == 0) continue;
    Sample(out, "cellar_commands_total", "command=\"" + std::string(spec->name) + "\"", calls[id]);
  }
  Metric(out, "cellar_command_errors_total", "counter", "RESP commands that answered an error.");
  for (const auto* spec : commands) {
    size_t id = resp::CommandIndex(spec->name);
    if (errors[id] == 0) continue;
    Sample(out, "cellar_command_errors_total", "command=\"" + std::string(spec->name) + "\"",
           errors[id]);
  }
  Metric(out, "cellar_command_latency_seconds", "histogram",
         "Time from a command's arrival to its reply being ready.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < latency.size(); ++i) {
    cumulative += latency[i];
    Sample(out, "cellar_command_latency_seconds_bucket",
           "le=\"" + SecondsLabel(resp::kLatencyBoundsUs[i]) + "\"", cumulative);
  }
  out += "cellar_command_latency_seconds_sum " + std::to_string(lat_sum / 1e6) + "\n";
  Sample(out, "cellar_command_latency_seconds_count", "", cumulative);
  // gRPC calls by method, summed over the loops.
  std::vector<uint64_t> gcalls(grpc::kMaxMethodIds), gerrors(grpc::kMaxMethodIds);
  uint64_t gopened = 0, gclosed = 0;
  for (uint32_t t = 0; t < threads; ++t) {
    grpc::GrpcThreadMetrics& m = grpc::GrpcMetricsOf(t);
    gopened += m.connections_opened.load(std::memory_order_relaxed);
    gclosed += m.connections_closed.load(std::memory_order_relaxed);
    for (size_t i = 0; i < grpc::kMaxMethodIds; ++i) {
      gcalls[i] += m.calls[i].load(std::memory_order_relaxed);
      gerrors[i] += m.errors[i].load(std::memory_order_relaxed);
    }
  }
  auto method_label = [](size_t i) {
    const auto methods = grpc::AllMethods();
    return "method=\"" + std::string(i < methods.size() ? methods[i].path : "unknown") + "\"";
  };
  Metric(out, "cellar_grpc_calls_total", "counter", "gRPC calls answered, by method.");
  for (size_t i = 0; i < grpc::kMaxMethodIds; ++i) {
    if (gcalls[i] != 0) Sample(out, "cellar_grpc_calls_total", method_label(i), gcalls[i]);
  }
  Metric(out, "cellar_grpc_call_errors_total", "counter",
         "gRPC calls answered with a non-OK status, by method.");
  for (size_t i = 0; i < grpc::kMaxMethodIds; ++i) {
    if (gerrors[i] != 0) Sample(out, "cellar_grpc_call_errors_total", method_label(i), gerrors[i]);
  }

  if (topics != nullptr) {
    const topics::Topics::Counters tc = topics->Snapshot();
    Metric(out, "cellar_topic_subscriptions", "gauge",
           "Topic subscriptions open (gRPC and RESP, patterns included).");
    Sample(out, "cellar_topic_subscriptions", "", tc.subscriptions);
    Metric(out, "cellar_topic_messages_published_total", "counter",
           "Messages published to topics.");
    Sample(out, "cellar_topic_messages_published_total", "", tc.published);
    Metric(out, "cellar_topic_deliveries_total", "counter", "Messages handed to subscriptions.");
    Sample(out, "cellar_topic_deliveries_total", "", tc.deliveries);
    Metric(out, "cellar_topic_slow_subscribers_total", "counter",
           "Subscribers cut off because they fell behind their queue bound.");
    Sample(out, "cellar_topic_slow_subscribers_total", "", tc.slow_cutoffs);
  }

  Metric(out, "cellar_connections", "gauge", "Open client connections.");
  Sample(out, "cellar_connections", "protocol=\"resp\"", opened - closed);
  Sample(out, "cellar_connections", "protocol=\"grpc\"", gopened - gclosed);
  Metric(out, "cellar_connections_total", "counter", "Client connections accepted.");
  Sample(out, "cellar_connections_total", "protocol=\"resp\"", opened);
  Sample(out, "cellar_connections_total", "protocol=\"grpc\"", gopened);
  Metric(out, "cellar_connections_refused_total", "counter",
         "Connections refused at accept: the port's --max-connections or the process's "
         "descriptor budget was reached.");
  Metric(out, "cellar_connections_timed_out_total", "counter",
         "Connections closed by a timeout: preauth (no authentication in time), idle, or write "
         "(a client that does not read its replies).");
  for (net::Port port : {net::Port::kResp, net::Port::kApi}) {
    const net::ConnectionGate& gate = net::ConnectionGate::Of(port);
    const std::string label = "port=\"" + std::string(net::PortName(port)) + "\"";
    Sample(out, "cellar_connections_refused_total", label, gate.refused());
    for (net::TimeoutKind kind :
         {net::TimeoutKind::kPreAuth, net::TimeoutKind::kIdle, net::TimeoutKind::kWrite}) {
      Sample(out, "cellar_connections_timed_out_total",
             label + ",reason=\"" + std::string(net::TimeoutName(kind)) + "\"",
             gate.timed_out(kind));
    }
  }
  {
    const gateway::ReplyMemory& rm = gateway::ReplyMemory::Get();
    Metric(out, "cellar_reply_memory_bytes", "gauge",
           "Reply memory granted to rounds in flight and replies waiting for their readers.");
    Sample(out, "cellar_reply_memory_bytes", "", rm.used());
    Metric(out, "cellar_reply_memory_limit_bytes", "gauge", "The reply memory pool (--reply-memory).");
    Sample(out, "cellar_reply_memory_limit_bytes", "", rm.options().pool_bytes);
    Metric(out, "cellar_replies_too_large_total", "counter",
           "Calls refused because their round's reply grant was spent (reply too large).");
    Sample(out, "cellar_replies_too_large_total", "", rm.refused_calls());
  }
  Metric(out, "cellar_bug_checks_failed_total", "counter",
         "Internal invariants found broken (a bug of ours, survived and logged: common/check.h).");
  Sample(out, "cellar_bug_checks_failed_total", "", BugCheckFailures().load());
  Metric(out, "cellar_protocol_errors_total", "counter", "Connections closed for malformed input.");
  Sample(out, "cellar_protocol_errors_total", "protocol=\"resp\"", proto_errors);
  Metric(out, "cellar_network_bytes_total", "counter", "Bytes received and sent to clients.");
  Sample(out, "cellar_network_bytes_total", "direction=\"in\"", bytes_in);
  Sample(out, "cellar_network_bytes_total", "direction=\"out\"", bytes_out);

  Metric(out, "cellar_items", "gauge", "Items stored (expired ones not yet removed included).");
  Sample(out, "cellar_items", "", st.items);
  Metric(out, "cellar_memory_used_bytes", "gauge", "Bytes used by items and the key index.");
  Sample(out, "cellar_memory_used_bytes", "", st.used_bytes);
  Metric(out, "cellar_memory_limit_bytes", "gauge", "The memory limit; eviction keeps under it.");
  Sample(out, "cellar_memory_limit_bytes", "", st.memory_limit);
  Metric(out, "cellar_hits_total", "counter", "Reads that found their key.");
  Sample(out, "cellar_hits_total", "", st.hits);
  Metric(out, "cellar_misses_total", "counter", "Reads that did not find their key.");
  Sample(out, "cellar_misses_total", "", st.misses);
  Metric(out, "cellar_evictions_total", "counter",
         "Items evicted to stay within the memory limit.");
  Sample(out, "cellar_evictions_total", "", st.evictions);
  Metric(out, "cellar_expirations_total", "counter", "Items removed because their TTL passed.");
  Sample(out, "cellar_expirations_total", "", st.expirations);
  Metric(out, "cellar_oom_refusals_total", "counter",
         "Writes refused because nothing could be evicted.");
  Sample(out, "cellar_oom_refusals_total", "", st.oom_refusals);
  return out;
}

void Accumulate(CacheStats& into, const CacheStats& c) {
  into.ops += c.ops;
  into.items += c.items;
  into.bytes += c.bytes;
  into.hits += c.hits;
  into.misses += c.misses;
  into.evictions += c.evictions;
  into.expirations += c.expirations;
  into.requests += c.requests;
  into.bytes_in += c.bytes_in;
  into.bytes_out += c.bytes_out;
  if (into.refusals.size() < c.refusals.size()) into.refusals.resize(c.refusals.size());
  for (size_t i = 0; i < c.refusals.size(); ++i) into.refusals[i] += c.refusals[i];
  if (into.latency.size() < c.latency.size()) into.latency.resize(c.latency.size());
  for (size_t i = 0; i < c.latency.size(); ++i) into.latency[i] += c.latency[i];
  into.latency_sum_us += c.latency_sum_us;
  into.latency_count += c.latency_count;
}

// Busiest first: requests, then operations, then by name (stable across scrapes).
bool Busier(const CacheStats& a, const CacheStats& b) {
  if (a.requests != b.requests) return a.requests > b.requests;
  if (a.ops != b.ops) return a.ops > b.ops;
  if (a.tenant != b.tenant) return a.tenant < b.tenant;
  return a.name < b.name;
}

// One labelled series of a family: the label text and the counters behind it.
using Series = std::vector<std::pair<std::string, const CacheStats*>>;

// Every `cellar_<family>_*` metric for the given series.
void RenderFamily(std::string& out, std::string_view family, std::string_view by,
                  const Series& series) {
  struct Row {
    std::string_view suffix;
    std::string_view type;
    std::string_view help;
    uint64_t CacheStats::*field;
  };
  static constexpr Row kRows[] = {
      {"operations_total", "counter", "Operations executed on the shards", &CacheStats::ops},
      {"requests_total", "counter", "Requests received (admitted and throttled)",
       &CacheStats::requests},
      {"hits_total", "counter", "Reads that found their key", &CacheStats::hits},
      {"misses_total", "counter", "Reads that did not find their key", &CacheStats::misses},
      {"bytes_in_total", "counter", "Request bytes admitted (keys, values, arguments)",
       &CacheStats::bytes_in},
      {"bytes_out_total", "counter", "Value bytes answered", &CacheStats::bytes_out},
      {"items", "gauge", "Items stored", &CacheStats::items},
      {"bytes", "gauge", "Memory held by items (allocation bytes)", &CacheStats::bytes},
      {"evictions_total", "counter", "Items evicted under memory pressure", &CacheStats::evictions},
      {"expirations_total", "counter", "Items removed because their TTL passed",
       &CacheStats::expirations},
  };
  const std::string prefix = "cellar_" + std::string(family) + "_";
  for (const Row& row : kRows) {
    const std::string name = prefix + std::string(row.suffix);
    Metric(out, name, row.type, std::string(row.help) + ", by " + std::string(by) + ".");
    for (const auto& [labels, c] : series) Sample(out, name, labels, c->*row.field);
  }
  const std::string throttled = prefix + "throttled_total";
  Metric(out, throttled, "counter",
         "Requests refused by a limit, by " + std::string(by) + " and reason.");
  for (const auto& [labels, c] : series) {
    for (size_t r = 1; r < c->refusals.size(); ++r) {
      if (c->refusals[r] == 0) continue;
      Sample(out, throttled,
             labels + ",reason=\"" +
                 std::string(gateway::RefusalName(static_cast<gateway::Refusal>(r))) + "\"",
             c->refusals[r]);
    }
  }
  const std::string latency = prefix + "latency_seconds";
  Metric(out, latency, "histogram",
         "Time from a request's arrival to its reply being ready, by " + std::string(by) + ".");
  for (const auto& [labels, c] : series) {
    if (c->latency_count == 0 || c->latency.empty()) continue;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < c->latency.size() && i < gateway::kCacheLatencyBoundsUs.size(); ++i) {
      cumulative += c->latency[i];
      Sample(out, latency + "_bucket",
             labels + ",le=\"" + SecondsLabel(gateway::kCacheLatencyBoundsUs[i]) + "\"",
             cumulative);
    }
    out += latency + "_sum{" + labels + "} " +
           std::to_string(static_cast<double>(c->latency_sum_us) / 1e6) + "\n";
    Sample(out, latency + "_count", labels, cumulative);
  }
}

void LatencyJson(std::string& body, const CacheStats& c) {
  body += "\"latency\":[";
  for (size_t i = 0; i < gateway::kCacheLatencyBoundsUs.size(); ++i) {
    if (i > 0) body += ",";
    body += std::to_string(i < c.latency.size() ? c.latency[i] : 0);
  }
  body += "],\"latency_sum_us\":" + std::to_string(c.latency_sum_us) +
          ",\"latency_count\":" + std::to_string(c.latency_count);
}

}  // namespace

std::string RenderCacheMetrics(const gateway::Stats& st, const MetricsOptions& opts) {
  std::string out;
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
          "tenant=\"" + LabelEscape(c->tenant) + "\",cache=\"" + LabelEscape(c->name) + "\"", c);
    } else {
      Accumulate(other_caches, *c);
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
  RenderFamily(out, "cache", "cache", cache_series);

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
    Accumulate(tenants[it->second], c);
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
      std::string labels = "tenant=\"" + LabelEscape(tenants[i].tenant) + "\"";
      cache_counts.emplace_back(labels, tenant_caches[i]);
      tenant_series.emplace_back(std::move(labels), &tenants[i]);
    } else {
      Accumulate(other_tenants, tenants[i]);
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
  RenderFamily(out, "tenant", "tenant", tenant_series);
  Metric(out, "cellar_tenant_caches", "gauge", "Caches, by tenant.");
  for (const auto& [labels, n] : cache_counts) Sample(out, "cellar_tenant_caches", labels, n);

  Metric(out, "cellar_metrics_folded_caches", "gauge",
         "Caches summed under cache=\"_other\" (beyond --metrics-max-caches).");
  Sample(out, "cellar_metrics_folded_caches", "", folded_caches);
  Metric(out, "cellar_metrics_folded_tenants", "gauge",
         "Tenants summed under tenant=\"_other\" (beyond --metrics-max-tenants).");
  Sample(out, "cellar_metrics_folded_tenants", "", folded_tenants);
  return out;
}

std::string RenderMetrics(const gateway::Stats& st, uint32_t threads, const topics::Topics* topics,
                          const MetricsOptions& opts) {
  return RenderProcessMetrics(st, threads, topics) + RenderCacheMetrics(st, opts);
}

std::string RenderStatsJson(const gateway::Stats& st, int64_t now_ms,
                            const std::optional<std::string>& tenant,
                            const std::optional<std::string>& cache) {
  std::string body = "{\"time_ms\":" + std::to_string(now_ms) + ",\"latency_bounds_us\":[";
  for (size_t i = 0; i + 1 < gateway::kCacheLatencyBoundsUs.size(); ++i) {
    if (i > 0) body += ",";
    body += std::to_string(gateway::kCacheLatencyBoundsUs[i]);
  }
  body += "],\"caches\":[";
  bool first = true;
  for (const CacheStats& c : st.caches) {
    if (tenant && c.tenant != *tenant) continue;
    if (cache && c.name != *cache) continue;
    if (!first) body += ",";
    first = false;
    body +=
        "{\"tenant\":\"" + JsonEscape(c.tenant) + "\",\"cache\":\"" + JsonEscape(c.name) +
        "\",\"requests\":" + std::to_string(c.requests) +
        ",\"operations\":" + std::to_string(c.ops) + ",\"hits\":" + std::to_string(c.hits) +
        ",\"misses\":" + std::to_string(c.misses) + ",\"bytes_in\":" + std::to_string(c.bytes_in) +
        ",\"bytes_out\":" + std::to_string(c.bytes_out) + ",\"items\":" + std::to_string(c.items) +
        ",\"bytes\":" + std::to_string(c.bytes) + ",\"evictions\":" + std::to_string(c.evictions) +
        ",\"expirations\":" + std::to_string(c.expirations) + ",\"throttled\":{";
    bool first_reason = true;
    for (size_t r = 1; r < c.refusals.size(); ++r) {
      if (c.refusals[r] == 0) continue;
      if (!first_reason) body += ",";
      first_reason = false;
      body += "\"" + std::string(gateway::RefusalName(static_cast<gateway::Refusal>(r))) +
              "\":" + std::to_string(c.refusals[r]);
    }
    body += "},";
    LatencyJson(body, c);
    body += "}";
  }
  body += "]}";
  return body;
}

}  // namespace cellar::server
