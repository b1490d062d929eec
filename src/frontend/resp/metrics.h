// Counters of the RESP front-end, one block per event-loop thread. Each block is written only
// by its own thread (relaxed load + store, no read-modify-write across cores) and read through
// RespMetrics() by the admin thread for /metrics and by INFO.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "common/metrics.h"

namespace cellar::resp {

constexpr size_t kMaxThreads = 256;
constexpr size_t kMaxCommandIds = 256;
// Latency buckets in microseconds (upper bounds); the last bucket is +Inf.
constexpr std::array<uint64_t, 16> kLatencyBoundsUs = {10,   25,   50,    100,   250,   500,
                                                       1000, 2500, 5000,  10000, 25000, 50000,
                                                       100000, 250000, 1000000, UINT64_MAX};

struct alignas(64) ThreadMetrics {
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> connections_closed{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::array<std::atomic<uint64_t>, kMaxCommandIds> calls{};
  std::array<std::atomic<uint64_t>, kMaxCommandIds> errors{};
  std::array<std::atomic<uint64_t>, kLatencyBoundsUs.size()> latency{};
  std::atomic<uint64_t> latency_sum_us{0};
};

inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

ThreadMetrics& MetricsOf(uint32_t thread);

inline constexpr metrics::Def kCommands{"cellar_commands_total", metrics::Type::kCounter,
                                        "RESP commands executed, by command.", "command"};
inline constexpr metrics::Def kCommandErrors{"cellar_command_errors_total",
                                             metrics::Type::kCounter,
                                             "RESP commands that answered an error.", "command"};
inline constexpr metrics::Def kCommandLatency{
    "cellar_command_latency_seconds", metrics::Type::kHistogram,
    "Time from a command's arrival to its reply being ready.", ""};

// The RESP front-end's metrics over `threads` loops: the ones above, and its samples of the
// shared connection metrics (frontend/net/metrics.h) under protocol="resp".
metrics::Source RespMetrics(uint32_t threads);

// Index of a command in the metrics arrays (its position in the sorted command table).
size_t CommandIndex(std::string_view name);

}  // namespace cellar::resp
