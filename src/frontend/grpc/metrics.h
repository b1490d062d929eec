// Counters of the gRPC front-end, one block per event-loop thread, written only by that thread
// (relaxed load + store) and read through GrpcMetrics() for /metrics. Calls are counted by
// method when answered.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "common/metrics.h"

namespace cellar::grpc {

inline constexpr size_t kMaxMethodIds = 128;  // index kMaxMethodIds - 1: unknown methods

struct alignas(64) GrpcThreadMetrics {
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> connections_closed{0};
  std::atomic<uint64_t> protocol_errors{0};  // connections closed for malformed HTTP/2 or gRPC
  std::array<std::atomic<uint64_t>, kMaxMethodIds> calls{};
  std::array<std::atomic<uint64_t>, kMaxMethodIds> errors{};
};

inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// threads: at most 256 (resp::kMaxThreads).
GrpcThreadMetrics& GrpcMetricsOf(uint32_t thread);

inline constexpr metrics::Def kCalls{"cellar_grpc_calls_total", metrics::Type::kCounter,
                                     "gRPC calls answered, by method.", "method"};
inline constexpr metrics::Def kCallErrors{"cellar_grpc_call_errors_total",
                                          metrics::Type::kCounter,
                                          "gRPC calls answered with a non-OK status, by method.",
                                          "method"};

// The gRPC front-end's metrics over `threads` loops: the ones above, and its samples of the
// shared connection metrics (frontend/net/metrics.h) under protocol="grpc".
metrics::Source GrpcMetrics(uint32_t threads);

}  // namespace cellar::grpc
