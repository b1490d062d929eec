// Counters of the gRPC front-end, one block per event-loop thread, written only by that thread
// (relaxed load + store) and read by /metrics. Calls are counted by method when answered.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace cellar::grpc {

inline constexpr size_t kMaxMethodIds = 128;  // index kMaxMethodIds - 1: unknown methods

struct alignas(64) GrpcThreadMetrics {
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> connections_closed{0};
  std::atomic<uint64_t> slow_subscribers{0};  // subscription streams cut off for falling behind
  std::array<std::atomic<uint64_t>, kMaxMethodIds> calls{};
  std::array<std::atomic<uint64_t>, kMaxMethodIds> errors{};
};

inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// threads: at most 256 (resp::kMaxThreads).
GrpcThreadMetrics& GrpcMetricsOf(uint32_t thread);

}  // namespace cellar::grpc
