#include "frontend/grpc/metrics.h"

#include <memory>

namespace cellar::grpc {

GrpcThreadMetrics& GrpcMetricsOf(uint32_t thread) {
  static auto* blocks = new GrpcThreadMetrics[256];  // never freed: read until exit
  return blocks[thread];
}

}  // namespace cellar::grpc
