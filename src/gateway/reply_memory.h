// Reply memory: what replies may hold outside the engines while they are built and until the
// client reads them. A small request can ask for a huge reply (MGET of one large key a
// thousand times, HMGET of one field repeated, SRANDMEMBER with a large negative count), and a
// client that never reads keeps it. So:
//   - each round (a pipeline's worth of commands, or a batch of gRPC calls) gets a grant of at
//     most `max_round_bytes` (--max-reply-bytes) from a process-wide pool (--reply-memory):
//     twice what the connection's last round took (at least 64 KiB), and the most when a
//     round did not fit (it then runs again with it: RESP after writing what it has, gRPC
//     at once);
//   - a tenant holds at most `tenant_share` of the pool (half by default), so one tenant's
//     unread replies cannot spend every tenant's; every round may also build kFreeBytes
//     outside the pool (a per-connection allowance), so small replies always go through;
//   - the round's calls charge their replies to the grant as the shards build them
//     (gateway::Batch::set_reply_budget): once it is spent the rest of the round is refused
//     without running, and a read-only call whose reply alone passes it is refused after
//     running (nothing is lost: it changed nothing);
//   - the grant is given back when the round's replies are written to the socket (or handed
//     to HTTP/2), so an unread reply keeps its bytes, and only those, until the connection
//     reads or times out.
// Overshoot: a call that is not read-only always gets its reply, so a round may pass its grant
// by one such reply per loop.
//
// Thread-safety: atomics only; Reserve and Release run on any loop.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/metrics.h"

namespace cellar::gateway {

inline constexpr metrics::Def kReplyMemoryUsed{
    "cellar_reply_memory_bytes", metrics::Type::kGauge,
    "Reply memory granted to rounds in flight and replies waiting for their readers.", ""};
inline constexpr metrics::Def kReplyMemoryLimit{"cellar_reply_memory_limit_bytes",
                                                metrics::Type::kGauge,
                                                "The reply memory pool (--reply-memory).", ""};
inline constexpr metrics::Def kRepliesTooLarge{
    "cellar_replies_too_large_total", metrics::Type::kCounter,
    "Calls refused because their round's reply grant was spent (reply too large).", ""};

class ReplyMemory {
 public:
  struct Options {
    uint64_t pool_bytes = 256ull << 20;      // all rounds' grants together; 0: no pool
    uint64_t max_round_bytes = 64ull << 20;  // one round's grant at most
    double tenant_share = 0.5;               // of the pool, per tenant
  };
  static ReplyMemory& Get();
  // Start-up only, before any loop serves.
  void Configure(const Options& options);
  const Options& options() const { return options_; }

  // A grant for one round of `tenant`: `want` (at most max_round_bytes), less when the pool
  // or the tenant's share is short (0 when nothing is left: the round's calls are refused).
  // Front-ends ask for about what their last round took (NextWant), and for the most when a
  // round did not fit, so idle reservations do not crowd out the pool.
  uint64_t Reserve(uint32_t tenant, uint64_t want);
  // What to ask for next after a round whose replies took `used` bytes.
  uint64_t NextWant(uint64_t used) const;
  static constexpr uint64_t kMinGrant = 64 * 1024;
  // What a round may build on top of its grant, outside the pool: a per-connection allowance,
  // so that small replies never wait on (or are refused by) a pool that busy rounds hold. It
  // is part of the per-connection cost that --max-connections bounds.
  static constexpr uint64_t kFreeBytes = 16 * 1024;
  // The reply budget of a round granted `grant` bytes from the pool.
  static int64_t Budget(uint64_t grant) { return static_cast<int64_t>(grant + kFreeBytes); }
  void Release(uint32_t tenant, uint64_t bytes);

  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t refused_calls() const { return refused_.load(std::memory_order_relaxed); }
  void CountRefusedCall() { refused_.fetch_add(1, std::memory_order_relaxed); }
  // kReplyMemoryUsed, kReplyMemoryLimit and kRepliesTooLarge of Get().
  static metrics::Source Metrics();

 private:
  // Tenants by id modulo this (ids are small and sequential; two tenants sharing a slot
  // share a share, which only makes the bound stricter).
  static constexpr size_t kTenantSlots = 4096;
  Options options_;
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> tenants_[kTenantSlots]{};
};

// One connection's hold on the pool: what it reserved for its round in flight and what its
// replies not yet written still take, under one tenant; and what its next round asks for.
// Both front-ends keep one. Thread: the connection's.
class ReplyGrant {
 public:
  ReplyGrant() = default;
  ReplyGrant(const ReplyGrant&) = delete;
  ReplyGrant& operator=(const ReplyGrant&) = delete;
  ~ReplyGrant() { ReleaseAll(); }

  // Reserves for a round of `tenant` and returns its budget (Batch::set_reply_budget). While
  // bytes of another tenant are still held, the round gets no budget: its calls are refused.
  int64_t Take(uint32_t tenant);
  // After a round: the bytes it built; and whether some of it did not fit, so the next round
  // (its refused calls again) asks for the most.
  void Learn(uint64_t used, bool did_not_fit);
  // Holds at most `bytes` (what still waits for the peer), giving back the rest.
  void Keep(uint64_t bytes);
  // Gives back `bytes` (at most what is held): written replies.
  void Release(uint64_t bytes);
  void ReleaseAll() { Keep(0); }

  uint32_t tenant() const { return tenant_; }
  // What the last Take got from the pool (the allowance outside it not counted).
  uint64_t last_grant() const { return last_grant_; }

 private:
  uint64_t held_ = 0;
  uint64_t want_ = ReplyMemory::kMinGrant;
  uint64_t last_grant_ = 0;
  uint32_t tenant_ = 0;
};

}  // namespace cellar::gateway
