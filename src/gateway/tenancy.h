// Tenancy: the runtime side of per-cache and per-tenant limits. For every cache it keeps the
// limits in force (copied from the control plane's effective limits whenever they change, so a
// change takes effect on the next request), its admission buckets, and its usage counters.
//
// Admission: GCRA token buckets (one atomic "theoretical arrival time" each), lock-free, so the
// loops of every connection of a cache share one bucket without a lock. A request is charged
// before any work: requests and bytes written are taken at admission; bytes read are known only
// after the reply, so they are charged then, and a cache in debt is refused until it is paid.
// Every bucket allows a short burst: kBurstMillis worth of its rate above the steady rate.
//
// Counters are relaxed atomics bumped once per round (a RESP pipeline, a gRPC batch), read by
// /metrics, `cellar stats` and the usage accounting.
//
// Threads: any. Find() takes a shared lock; front-ends keep the shared_ptr they found (RESP per
// connection binding, gRPC per call).
#pragma once

#include <absl/base/thread_annotations.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "common/status.h"
#include "control/limits.h"
#include "topics/admission.h"

namespace cellar::control {
class CacheRegistry;
}

namespace cellar::gateway {

// Why a request was refused. Every refusal is counted per cache, by reason.
enum class Refusal : uint8_t {
  kNone,
  kRequestRate,       // requests_per_second
  kReadRate,          // read_bytes_per_second
  kWriteRate,         // write_bytes_per_second
  kTenantRequestRate,
  kTenantReadRate,
  kTenantWriteRate,
  kQueueFull,         // the loop's queue for the tenant is full (overload)
  kItemSize,          // max_item_bytes
  kElementSize,       // max_element_bytes
  kTtl,               // max_ttl_seconds
  kPublishRate,       // publish_per_second
  kSubscriptions,     // max_subscriptions
  kMessageSize,       // max_message_bytes
  kNotServing,        // a write while this node's cluster lease is not known alive
  kCount,
};
inline constexpr size_t kNumRefusals = static_cast<size_t>(Refusal::kCount);

// Metric label of a reason ("request_rate", ...).
std::string_view RefusalName(Refusal r);
// Momento's `err` trailer for a refusal (operations_rate_limit_exceeded, ...); empty if none.
std::string_view RefusalErr(Refusal r);
// The gRPC status of a refusal: RESOURCE_EXHAUSTED for limits, INVALID_ARGUMENT for the TTL,
// UNAVAILABLE (retryable) for a node that is not serving writes.
Code RefusalCode(Refusal r);

// A lock-free GCRA bucket. rate 0: unlimited (every take succeeds, nothing is tracked).
class RateBucket {
 public:
  // A new rate starts a fresh bucket: debt run up at the old rate does not hold back a
  // raised limit.
  void set_rate(uint64_t per_second) {
    if (rate_.exchange(per_second, std::memory_order_relaxed) != per_second) {
      tat_.store(0, std::memory_order_relaxed);
    }
  }
  // A new share of the same limit (a fleet rebalancing, every second): the bucket keeps its
  // state, so a node does not get a fresh burst at each rebalance.
  void adjust_rate(uint64_t per_second) { rate_.store(per_second, std::memory_order_relaxed); }
  uint64_t rate() const { return rate_.load(std::memory_order_relaxed); }
  // Takes n units if the bucket allows them now (within the burst); false leaves it unchanged.
  bool TryTake(uint64_t n, int64_t now_ns);
  // Takes n units unconditionally (bytes read, known after the fact): may go into debt.
  void Charge(uint64_t n, int64_t now_ns);
  // Gives back n units taken by TryTake (a later bucket refused the request).
  void Refund(uint64_t n);
  // Whether the bucket is past its burst (a request now would be refused).
  bool Over(int64_t now_ns) const;
  // Takes n units if a token bucket holding `window_ns` worth of the rate, full when idle,
  // has them (the topics' publish rate: a second's worth, so exactly `rate` back to back).
  bool TryTakeWithin(uint64_t n, int64_t now_ns, int64_t window_ns);

  static constexpr int64_t kBurstMillis = 250;

 private:
  int64_t CostNs(uint64_t n, uint64_t rate) const;
  std::atomic<uint64_t> rate_{0};
  std::atomic<int64_t> tat_{0};  // theoretical arrival time, steady ns
};

// Limits across a fleet (docs/cluster.md, "Limits across the fleet"): a per-second limit holds
// for the cache (or tenant) as a whole, so each node admits its share of it. Every node reports
// its demand (requests admitted and refused over the last second) and splits the limit by
// demand: each of the `nodes` nodes keeps a floor (limit / nodes / 10, at least 1, so a node
// whose traffic starts admits some at once) and the rest goes by own / total demand. The shares
// of all nodes add up to the limit (short of rounding). Nobody's demand known: an even split.
// One node (nodes <= 1): the whole limit. A limit of 0 (unlimited) stays 0.
uint64_t FleetShare(uint64_t limit, uint64_t own_demand, uint64_t total_demand, uint32_t nodes);

// One cache's or tenant's demand here and over the fleet (requests per second).
struct FleetDemand {
  uint64_t own = 0;
  uint64_t total = 0;
};

// Latency buckets (upper bounds, microseconds) of the per-cache histogram.
inline constexpr std::array<uint64_t, 14> kCacheLatencyBoundsUs = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, UINT64_MAX};

// Counters of one cache, bumped by the front-ends (relaxed).
struct CacheUsage {
  std::atomic<uint64_t> requests{0};   // admitted and refused requests
  std::atomic<uint64_t> bytes_in{0};   // request bytes admitted (keys, values, arguments)
  std::atomic<uint64_t> bytes_out{0};  // value bytes answered
  std::array<std::atomic<uint64_t>, kNumRefusals> refusals{};
  std::array<std::atomic<uint64_t>, kCacheLatencyBoundsUs.size()> latency{};
  std::atomic<uint64_t> latency_sum_us{0};
  std::atomic<uint64_t> latency_count{0};

  void RecordLatency(uint64_t us, uint64_t count);
};

struct TenantState {
  uint32_t id = 0;
  std::string name;
  RateBucket requests, read_bytes, write_bytes;  // tenant_* limits
  std::atomic<uint64_t> memory_share{0};         // tenant_memory_share_bytes (0: equal split)
  std::atomic<int64_t> subscriptions{0};         // over all its caches
  std::atomic<uint64_t> fleet_own{0}, fleet_total{0};  // FleetDemand (fleet only)
};

struct CacheState {
  uint32_t id = 0;
  uint32_t tenant = 0;
  std::string name;
  std::shared_ptr<TenantState> tenant_state;
  std::array<std::atomic<uint64_t>, control::kNumLimits> limits{};
  RateBucket requests, read_bytes, write_bytes;
  RateBucket publishes;                      // publish_per_second (a second's burst)
  std::atomic<int64_t> subscriptions{0};     // topic subscriptions, every loop's
  CacheUsage usage;
  std::atomic<bool> deleted{false};
  std::atomic<uint64_t> fleet_own{0}, fleet_total{0};  // FleetDemand (fleet only)

  uint64_t limit(control::LimitId id) const {
    return limits[static_cast<size_t>(id)].load(std::memory_order_relaxed);
  }
};

// Every limit of a cache and its tenant: requests, bytes, and (as topics::Admission) topic
// publishes and subscriptions.
class Tenancy final : public topics::Admission {
 public:
  explicit Tenancy(control::CacheRegistry* registry);
  ~Tenancy();

  // Re-reads caches, tenants and limits from the registry (the registry's on-change hook).
  // Caches that are gone are marked deleted and forgotten; their state lives on while a
  // connection holds it.
  void Refresh();
  // Called after Refresh with every cache's limits (pushes them to topics and engines).
  void set_on_refresh(std::function<void()> fn) { on_refresh_ = std::move(fn); }

  // On a fleet (server/fleet.h), about once a second: the members' count and the demand of
  // each cache and tenant (absent: none anywhere); sets every rate bucket to this node's
  // share of its limit (FleetShare), keeping the buckets' state. Until the first call, and
  // with nodes <= 1, every bucket has its whole limit (a single node).
  void ApplyFleet(uint32_t nodes, const absl::flat_hash_map<uint32_t, FleetDemand>& caches,
                  const absl::flat_hash_map<uint32_t, FleetDemand>& tenants);
  uint32_t fleet_nodes() const { return fleet_nodes_.load(std::memory_order_relaxed); }

  std::shared_ptr<CacheState> Find(uint32_t cache_id) const;
  std::vector<std::shared_ptr<CacheState>> All() const;
  std::vector<std::shared_ptr<TenantState>> Tenants() const;

  // Admission, charged before any work: `requests` requests carrying `write_bytes` bytes.
  // On refusal nothing is charged and the refusal is counted. Counts the requests either way.
  Refusal Admit(CacheState& c, uint64_t requests, uint64_t write_bytes, int64_t now_ns);
  // Bytes answered, charged after the fact (a cache in debt is refused at its next Admit).
  void ChargeRead(CacheState& c, uint64_t bytes, int64_t now_ns);
  // topics::Admission: max_message_bytes and publish_per_second; max_subscriptions and
  // tenant_max_subscriptions. A cache it does not know (being deleted) is not limited.
  Status AdmitPublish(uint32_t cache_id, size_t value_bytes) override;
  Status AdmitSubscription(uint32_t cache_id) override;
  void ReleaseSubscription(uint32_t cache_id) override;
  static void CountRefusal(CacheState& c, Refusal r) {
    c.usage.refusals[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  // A person-readable reason, naming the limit and its value: "request rate limit exceeded:
  // cache 'x' allows 500 requests per second (requests_per_second)".
  // name_cache false: "this cache" instead of its name (Momento SDKs pick their message by
  // words in it, and a cache's name must not change which).
  static std::string Describe(const CacheState& c, Refusal r, bool name_cache = true);

 private:
  control::CacheRegistry* registry_;
  mutable std::shared_mutex mu_;
  absl::flat_hash_map<uint32_t, std::shared_ptr<CacheState>> caches_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint32_t, std::shared_ptr<TenantState>> tenants_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_refresh_;
  std::mutex refresh_mu_;  // one Refresh (or ApplyFleet) at a time
  std::atomic<uint32_t> fleet_nodes_{1};
};

}  // namespace cellar::gateway
