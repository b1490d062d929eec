#include "server/metrics.h"

#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "frontend/grpc/metrics.h"
#include "frontend/net/metrics.h"
#include "frontend/resp/metrics.h"
#include "gateway/reply_memory.h"
#include "gateway/tenancy.h"
#include "server/admin_util.h"
#include "topics/topics.h"

namespace cellar::server {
namespace {

using gateway::CacheStats;

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

std::string RenderMetrics(const gateway::Stats& st, uint32_t threads,
                          const gateway::Gateway* gateway, const MetricsOptions& opts,
                          std::span<const metrics::Source> extra) {
  std::vector<metrics::Source> sources = {
      resp::RespMetrics(threads),          grpc::GrpcMetrics(threads),
      net::NetMetrics(),                   gateway::ReplyMemory::Metrics(),
      metrics::BugCheckMetrics(),          gateway::StoreMetrics(st),
      gateway::CacheMetrics(st, opts),
  };
  if (gateway != nullptr) {
    sources.insert(sources.begin() + 2, gateway->AuthMetrics());
    if (gateway->topics() != nullptr) sources.insert(sources.begin() + 2, gateway->topics()->Metrics());
  }
  sources.insert(sources.end(), extra.begin(), extra.end());
  return metrics::RenderPrometheus(sources);
}

std::string RenderStatsJson(const gateway::Stats& st, int64_t now_ms,
                            const std::optional<std::string>& tenant,
                            const std::optional<std::string>& cache, size_t nodes) {
  std::string body = "{\"time_ms\":" + std::to_string(now_ms);
  if (nodes > 0) body += ",\"nodes\":" + std::to_string(nodes);
  body += ",\"latency_bounds_us\":[";
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
    body += "{\"tenant\":\"" + JsonEscape(c.tenant) + "\",\"cache\":\"" + JsonEscape(c.name) + "\"";
    for (const gateway::CacheCounterRow& row : gateway::CacheCounterRows()) {
      body += ",\"";
      body += row.json;
      body += "\":" + std::to_string(c.*row.field);
    }
    body += ",\"throttled\":{";
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
