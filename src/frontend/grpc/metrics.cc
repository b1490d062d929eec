#include "frontend/grpc/metrics.h"

#include <memory>
#include <string>
#include <vector>

#include "frontend/grpc/services.h"
#include "frontend/net/metrics.h"

namespace cellar::grpc {

GrpcThreadMetrics& GrpcMetricsOf(uint32_t thread) {
  static auto* blocks = new GrpcThreadMetrics[256];  // never freed: read until exit
  return blocks[thread];
}

metrics::Source GrpcMetrics(uint32_t threads) {
  static constexpr const metrics::Def* kDefs[] = {&kCalls, &kCallErrors};
  return {kDefs, [threads](metrics::Sink& sink) {
            std::vector<uint64_t> calls(kMaxMethodIds), errors(kMaxMethodIds);
            uint64_t opened = 0, closed = 0, proto_errors = 0;
            for (uint32_t t = 0; t < threads; ++t) {
              const GrpcThreadMetrics& m = GrpcMetricsOf(t);
              opened += m.connections_opened.load(std::memory_order_relaxed);
              closed += m.connections_closed.load(std::memory_order_relaxed);
              proto_errors += m.protocol_errors.load(std::memory_order_relaxed);
              for (size_t i = 0; i < kMaxMethodIds; ++i) {
                calls[i] += m.calls[i].load(std::memory_order_relaxed);
                errors[i] += m.errors[i].load(std::memory_order_relaxed);
              }
            }
            const auto methods = AllMethods();
            for (const metrics::Def* def : {&kCalls, &kCallErrors}) {
              const auto& counts = def == &kCalls ? calls : errors;
              for (size_t i = 0; i < kMaxMethodIds; ++i) {
                if (counts[i] == 0) continue;
                sink.Add(*def,
                         "method=\"" +
                             std::string(i < methods.size() ? methods[i].path : "unknown") + "\"",
                         counts[i]);
              }
            }
            sink.Add(net::kConnections, "protocol=\"grpc\"", opened - closed);
            sink.Add(net::kConnectionsTotal, "protocol=\"grpc\"", opened);
            sink.Add(net::kProtocolErrors, "protocol=\"grpc\"", proto_errors);
          }};
}

}  // namespace cellar::grpc
