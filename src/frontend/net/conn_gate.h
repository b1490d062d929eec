// Bounds on client connections, shared by the front-ends (RESP, the API port): a cap per port,
// a descriptor budget for the whole process, and the timeouts a connection lives under.
//
// Why: silent connections are free to open and each holds a descriptor. Without a cap, 400 of
// them under a 300-descriptor limit blocked every port, /healthz included. A port that is full
// accepts and closes at once (with a short error where its protocol has one) instead of
// leaving clients in the kernel's backlog, and the process keeps `fd_reserve` descriptors that
// client connections never take, so the admin port, health checks, metadata files and logs
// always have some.
//
// Thread-safety: a gate's counters are atomics; TryAcquire and Slot's release run on any loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace cellar::net {

struct ConnectionOptions {
  uint32_t max_connections = 10000;        // per port, all loops together; 0: no cap
  uint32_t fd_reserve = 64;                // descriptors client connections leave free
  uint32_t preauth_timeout_ms = 10000;     // to connect, finish TLS and authenticate; 0: none
  uint32_t idle_timeout_ms = 3600 * 1000;  // authenticated, nothing in flight, no subscription
  uint32_t write_timeout_ms = 120 * 1000;  // a reply write that does not finish; 0: none
};

enum class Port : uint8_t { kResp, kApi, kCount };
std::string_view PortName(Port port);

enum class TimeoutKind : uint8_t { kPreAuth, kIdle, kWrite, kCount };
std::string_view TimeoutName(TimeoutKind kind);

// A connection as the loops' sweep sees it, and the timeout it is past (kCount: none). Both
// front-ends ask this; each closes its own way.
struct SweepView {
  bool authed = false;     // authenticated at some point (the pre-auth timeout is over)
  int64_t age_ms = 0;      // since it was accepted
  int64_t quiet_ms = 0;    // since it last read
  int64_t stalled_ms = 0;  // since its output last made progress (0 while none waits)
  bool idle_ok = false;    // nothing in flight, no subscription: closing it loses nothing
};
TimeoutKind PastTimeout(const ConnectionOptions& options, const SweepView& view);

class ConnectionGate {
 public:
  // The connection's hold on its gate: released when destroyed (with the connection).
  class Slot {
   public:
    Slot() = default;
    explicit Slot(ConnectionGate* gate) : gate_(gate) {}
    Slot(Slot&& o) noexcept : gate_(o.gate_) { o.gate_ = nullptr; }
    Slot& operator=(Slot&& o) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { Release(); }
    explicit operator bool() const { return gate_ != nullptr; }

   private:
    void Release();
    ConnectionGate* gate_ = nullptr;
  };

  // The gate of a port (process-wide, one per front-end).
  static ConnectionGate& Of(Port port);
  // Sets every gate's options and the process's descriptor budget: RLIMIT_NOFILE (its soft
  // limit raised toward the hard one when the caps need more) less the descriptors open now
  // and the reserve. Start-up only, before any loop accepts. Returns the budget.
  static int64_t Configure(const ConnectionOptions& options);
  static const ConnectionOptions& options();
  // Sockets of client connections open in the whole process, and the budget.
  static int64_t ProcessOpen();
  static int64_t ProcessBudget();

  // A slot, or an empty one when this port or the process is full (the refusal is counted).
  Slot TryAcquire();
  void CountTimeout(TimeoutKind kind) {
    timed_out_[static_cast<size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
  }

  int64_t open() const { return open_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  uint64_t timed_out(TimeoutKind kind) const {
    return timed_out_[static_cast<size_t>(kind)].load(std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t> open_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> timed_out_[static_cast<size_t>(TimeoutKind::kCount)]{};
};

}  // namespace cellar::net
