#include "frontend/resp/metrics.h"

#include <string>
#include <vector>

#include "frontend/net/metrics.h"
#include "frontend/resp/commands.h"

namespace cellar::resp {

ThreadMetrics& MetricsOf(uint32_t thread) {
  static ThreadMetrics metrics[kMaxThreads];
  return metrics[thread % kMaxThreads];
}

size_t CommandIndex(std::string_view name) {
  const CommandSpec* spec = FindCommand(name);
  return spec == nullptr ? kMaxCommandIds - 1 : spec->id % kMaxCommandIds;
}

metrics::Source RespMetrics(uint32_t threads) {
  static constexpr const metrics::Def* kDefs[] = {&kCommands, &kCommandErrors, &kCommandLatency};
  return {kDefs, [threads](metrics::Sink& sink) {
            std::vector<uint64_t> calls(kMaxCommandIds), errors(kMaxCommandIds);
            std::array<uint64_t, kLatencyBoundsUs.size()> latency{};
            uint64_t opened = 0, closed = 0, proto_errors = 0, bytes_in = 0, bytes_out = 0;
            uint64_t latency_sum = 0;
            for (uint32_t t = 0; t < threads; ++t) {
              const ThreadMetrics& m = MetricsOf(t);
              opened += m.connections_opened.load(std::memory_order_relaxed);
              closed += m.connections_closed.load(std::memory_order_relaxed);
              proto_errors += m.protocol_errors.load(std::memory_order_relaxed);
              bytes_in += m.bytes_in.load(std::memory_order_relaxed);
              bytes_out += m.bytes_out.load(std::memory_order_relaxed);
              latency_sum += m.latency_sum_us.load(std::memory_order_relaxed);
              for (size_t i = 0; i < kMaxCommandIds; ++i) {
                calls[i] += m.calls[i].load(std::memory_order_relaxed);
                errors[i] += m.errors[i].load(std::memory_order_relaxed);
              }
              for (size_t i = 0; i < latency.size(); ++i) {
                latency[i] += m.latency[i].load(std::memory_order_relaxed);
              }
            }
            for (const metrics::Def* def : {&kCommands, &kCommandErrors}) {
              const auto& counts = def == &kCommands ? calls : errors;
              for (const CommandSpec* spec : AllCommands()) {
                const size_t id = CommandIndex(spec->name);
                if (counts[id] == 0) continue;
                sink.Add(*def, "command=\"" + std::string(spec->name) + "\"", counts[id]);
              }
            }
            sink.Add(kCommandLatency, "",
                     metrics::HistogramValue{kLatencyBoundsUs, latency, latency_sum});
            sink.Add(net::kConnections, "protocol=\"resp\"", opened - closed);
            sink.Add(net::kConnectionsTotal, "protocol=\"resp\"", opened);
            sink.Add(net::kProtocolErrors, "protocol=\"resp\"", proto_errors);
            sink.Add(net::kNetworkBytes, "direction=\"in\"", bytes_in);
            sink.Add(net::kNetworkBytes, "direction=\"out\"", bytes_out);
          }};
}

}  // namespace cellar::resp
