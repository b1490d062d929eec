// LoopScheduler: fair scheduling of one event loop's work across tenants (deficit round robin).
//
// Without it a loop serves connections first come, first served: every connection that became
// readable in a loop turn runs its whole round before the next, so a tenant with many busy
// connections and deep pipelines makes a quiet tenant's request wait behind all of its work.
//
// With it, a connection with input asks Arrive() before running its round:
// - While only one tenant has been active on the loop lately, or the tenant is light (it did
//   less than `light_work` in the current window), and it has nothing queued, the round runs
//   at once: a quiet tenant goes first, as a sparse flow does in FQ-CoDel, and a loop serving
//   one tenant pays a clock read and a hash lookup per round, nothing more.
// - Otherwise the connection joins its tenant's queue, and a drain handler (posted once per
//   turn) serves the tenants round robin by deficit: each visit adds `quantum` to a tenant's
//   deficit, its connections run while the deficit is positive, each charging what it did
//   (commands or calls) and cut to the quantum. A drain pass does at most `pass_budget` of
//   work, then posts itself again, so the loop reads its sockets (and runs light tenants'
//   rounds) between passes. A quiet tenant's request waits for at most about one pass.
//
// Bounded: a tenant's queue holds at most `max_queued` connections; Arrive refuses beyond
// that, and the connection answers its round with an overload error at once.
//
// Disabled (`--fair-scheduling off`), front-ends never call it: first come, first served.
//
// Thread: one per loop, touched only by that loop's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <boost/asio/io_context.hpp>

namespace cellar::gateway {

class LoopScheduler;

// Something that runs a round when scheduled (a connection). The scheduler holds the raw
// pointer while it is queued: the owner keeps itself alive until RunScheduled is called.
class Schedulable {
 public:
  virtual ~Schedulable() = default;
  // Runs a round; returns its cost (commands or calls run, at least 1).
  virtual uint32_t RunScheduled() = 0;

 private:
  friend class LoopScheduler;
  Schedulable* sched_next_ = nullptr;
  bool sched_queued_ = false;
};

struct SchedulerOptions {
  bool enabled = true;
  uint32_t quantum = 32;          // work per tenant per visit
  uint32_t pass_budget = 32;      // work per drain pass before the loop polls its sockets
  int64_t pass_ns = 50'000;       // and time: a pass ends after this much, whatever its work
  uint32_t max_queued = 1024;     // connections queued per tenant; beyond: refused
  uint32_t light_work = 32;       // work per window below which a tenant is light
  int64_t window_ns = 10'000'000;             // the light/heavy accounting window
  int64_t contended_window_ns = 100'000'000;  // "lately" for a second tenant
};

class LoopScheduler {
 public:
  LoopScheduler(boost::asio::io_context& loop, SchedulerOptions options);
  ~LoopScheduler();

  bool enabled() const { return options_.enabled; }
  enum class Decision : uint8_t {
    kRunNow,   // run the round now, then Charge() what it did
    kQueued,   // RunScheduled will be called (the caller keeps itself alive until then)
    kRefused,  // the tenant's queue is full: answer the round with an overload error
  };
  // A connection of `tenant` has input (see the file comment). `s` must not be queued already.
  Decision Arrive(uint32_t tenant, Schedulable* s);
  // Work done by a round that ran at once (kRunNow).
  void Charge(uint32_t tenant, uint32_t cost);
  // The most work a round started now should do: the quantum while tenants compete, else
  // `uncontended` (the front-end's own round size).
  uint32_t RoundLimit(uint32_t uncontended) const;
  bool Contended() const;

  struct Counters {
    uint64_t inline_rounds = 0;  // rounds run at once (one tenant, or a light one)
    uint64_t rounds = 0;      // rounds run through the queues
    uint64_t passes = 0;      // drain passes
    uint64_t refused = 0;     // Enqueue refusals (queue full)
    uint64_t max_depth = 0;   // deepest tenant queue seen
  };
  const Counters& counters() const { return counters_; }

 private:
  struct TenantQueue {
    uint32_t tenant = 0;
    Schedulable* head = nullptr;
    Schedulable* tail = nullptr;
    uint32_t depth = 0;
    int64_t deficit = 0;
    bool active = false;
    int64_t window_start = 0;  // steady ns
    uint64_t window_work = 0;
  };
  TenantQueue& QueueOf(uint32_t tenant);
  // Whether a second tenant arrived within contended_window_ns of `now` (steady ns).
  bool ContendedAt(int64_t now) const;
  // Work in the current window (restarting it when it is over).
  uint64_t WindowWork(TenantQueue& q, int64_t now);
  void Post();
  void Drain();

  boost::asio::io_context& loop_;
  SchedulerOptions options_;
  absl::flat_hash_map<uint32_t, std::unique_ptr<TenantQueue>> queues_;
  std::deque<TenantQueue*> active_;  // round-robin order
  std::deque<TenantQueue*> fresh_;   // tenants that just became active: served first
  bool posted_ = false;
  uint32_t last_tenant_ = UINT32_MAX;  // the tenant that arrived last
  int64_t last_switch_ns_ = INT64_MIN / 2;  // when a different tenant than the last arrived
  Counters counters_;
};

}  // namespace cellar::gateway
