#include "gateway/tenancy.h"

#include <algorithm>

#include "common/clock.h"
#include "control/cache_registry.h"

namespace cellar::gateway {

using control::LimitId;

namespace {

struct RefusalInfo {
  std::string_view name;
  std::string_view err;
  Code code;
};

constexpr std::array<RefusalInfo, kNumRefusals> kRefusals = {{
    {"none", "", Code::kOk},
    {"request_rate", "operations_rate_limit_exceeded", Code::kResourceExhausted},
    {"read_rate", "throughput_rate_limit_exceeded", Code::kResourceExhausted},
    {"write_rate", "throughput_rate_limit_exceeded", Code::kResourceExhausted},
    {"tenant_request_rate", "operations_rate_limit_exceeded", Code::kResourceExhausted},
    {"tenant_read_rate", "throughput_rate_limit_exceeded", Code::kResourceExhausted},
    {"tenant_write_rate", "throughput_rate_limit_exceeded", Code::kResourceExhausted},
    {"queue_full", "", Code::kResourceExhausted},
    {"item_size", "item_size_limit_exceeded", Code::kResourceExhausted},
    {"element_size", "element_size_limit_exceeded", Code::kResourceExhausted},
    {"ttl", "", Code::kInvalidArgument},
    {"publish_rate", "operations_rate_limit_exceeded", Code::kResourceExhausted},
    {"subscriptions", "topic_subscriptions_limit_exceeded", Code::kResourceExhausted},
    {"message_size", "request_size_limit_exceeded", Code::kResourceExhausted},
    {"not_serving", "", Code::kUnavailable},
}};

}  // namespace

std::string_view RefusalName(Refusal r) { return kRefusals[static_cast<size_t>(r)].name; }
std::string_view RefusalErr(Refusal r) { return kRefusals[static_cast<size_t>(r)].err; }
Code RefusalCode(Refusal r) { return kRefusals[static_cast<size_t>(r)].code; }

// ---- RateBucket ----------------------------------------------------------------------------

int64_t RateBucket::CostNs(uint64_t n, uint64_t rate) const {
  const unsigned __int128 ns = static_cast<unsigned __int128>(n) * 1000000000u / rate;
  return ns > static_cast<unsigned __int128>(INT64_MAX / 4) ? INT64_MAX / 4 : static_cast<int64_t>(ns);
}

bool RateBucket::TryTake(uint64_t n, int64_t now_ns) {
  const uint64_t rate = rate_.load(std::memory_order_relaxed);
  if (rate == 0) return true;
  const int64_t cost = CostNs(n, rate);
  const int64_t burst = kBurstMillis * 1000000;
  int64_t tat = tat_.load(std::memory_order_relaxed);
  for (;;) {
    // GCRA: conforming while the bucket runs ahead of the clock by at most the burst. So
    // 1 + burst/interval requests pass back to back, and one request bigger than the burst
    // passes when the bucket is idle (then the next ones wait until it is paid).
    const int64_t base = std::max(tat, now_ns);
    if (base - now_ns > burst) return false;
    if (tat_.compare_exchange_weak(tat, base + cost, std::memory_order_relaxed)) return true;
  }
}

bool RateBucket::TryTakeWithin(uint64_t n, int64_t now_ns, int64_t window_ns) {
  const uint64_t rate = rate_.load(std::memory_order_relaxed);
  if (rate == 0) return true;
  const int64_t cost = CostNs(n, rate);
  int64_t tat = tat_.load(std::memory_order_relaxed);
  for (;;) {
    // As a token bucket of `window` worth of tokens, full when idle: the units fit while
    // paying them leaves the bucket at most `window` ahead of the clock.
    const int64_t next = std::max(tat, now_ns) + cost;
    if (next - now_ns > window_ns) return false;
    if (tat_.compare_exchange_weak(tat, next, std::memory_order_relaxed)) return true;
  }
}

void RateBucket::Charge(uint64_t n, int64_t now_ns) {
  const uint64_t rate = rate_.load(std::memory_order_relaxed);
  if (rate == 0 || n == 0) return;
  const int64_t cost = CostNs(n, rate);
  int64_t tat = tat_.load(std::memory_order_relaxed);
  while (!tat_.compare_exchange_weak(tat, std::max(tat, now_ns) + cost,
                                     std::memory_order_relaxed)) {
  }
}

void RateBucket::Refund(uint64_t n) {
  const uint64_t rate = rate_.load(std::memory_order_relaxed);
  if (rate == 0) return;
  tat_.fetch_sub(CostNs(n, rate), std::memory_order_relaxed);
}

bool RateBucket::Over(int64_t now_ns) const {
  if (rate_.load(std::memory_order_relaxed) == 0) return false;
  return tat_.load(std::memory_order_relaxed) - now_ns > kBurstMillis * 1000000;
}

void CacheUsage::RecordLatency(uint64_t us, uint64_t count) {
  size_t b = 0;
  while (kCacheLatencyBoundsUs[b] < us) ++b;
  latency[b].fetch_add(count, std::memory_order_relaxed);
  latency_sum_us.fetch_add(us * count, std::memory_order_relaxed);
  latency_count.fetch_add(count, std::memory_order_relaxed);
}

uint64_t FleetShare(uint64_t limit, uint64_t own_demand, uint64_t total_demand, uint32_t nodes) {
  if (limit == 0 || nodes <= 1) return limit;
  if (total_demand == 0 || own_demand > total_demand) {
    return std::max<uint64_t>(1, limit / nodes);  // nothing known (or inconsistent): even
  }
  const uint64_t floor = std::max<uint64_t>(1, limit / nodes / 10);
  const uint64_t floors = floor * nodes;
  const uint64_t rest = limit > floors ? limit - floors : 0;
  const unsigned __int128 part = static_cast<unsigned __int128>(rest) * own_demand / total_demand;
  return floor + static_cast<uint64_t>(part);
}

// ---- Tenancy -------------------------------------------------------------------------------

Tenancy::Tenancy(control::CacheRegistry* registry) : registry_(registry) { Refresh(); }

Tenancy::~Tenancy() = default;

void Tenancy::Refresh() {
  std::lock_guard one(refresh_mu_);
  const auto tenants = registry_->ListTenants();
  const auto caches = registry_->ListAll();
  const control::Limits server = registry_->server_limits();
  absl::flat_hash_map<uint32_t, std::shared_ptr<TenantState>> new_tenants;
  absl::flat_hash_map<uint32_t, std::shared_ptr<CacheState>> new_caches;
  {
    std::shared_lock lock(mu_);
    for (const auto& t : tenants) {
      auto it = tenants_.find(t.id);
      new_tenants[t.id] = it != tenants_.end() ? it->second : std::make_shared<TenantState>();
      new_tenants[t.id]->id = t.id;
      if (new_tenants[t.id]->name.empty()) new_tenants[t.id]->name = t.name;
    }
    for (const auto& c : caches) {
      auto it = caches_.find(c.id);
      std::shared_ptr<CacheState> s;
      if (it != caches_.end()) {
        s = it->second;
      } else {
        s = std::make_shared<CacheState>();
        s->id = c.id;
        s->tenant = c.tenant_id;
        s->name = c.name;
        auto t = new_tenants.find(c.tenant_id);
        s->tenant_state = t != new_tenants.end() ? t->second : std::make_shared<TenantState>();
      }
      new_caches[c.id] = std::move(s);
    }
  }
  // Limits: a cache's effective values; a tenant's own caps from its overrides. On a fleet,
  // this node's share of each per-second limit (FleetShare, from the last ApplyFleet).
  const uint32_t nodes = fleet_nodes_.load(std::memory_order_relaxed);
  for (const auto& [id, t] : new_tenants) {
    const control::Limits l = control::Resolve(server, registry_->TenantLimits(id), {});
    const uint64_t own = t->fleet_own.load(std::memory_order_relaxed);
    const uint64_t total = t->fleet_total.load(std::memory_order_relaxed);
    auto share = [&](LimitId lid) { return FleetShare(l[lid], own, total, nodes); };
    t->requests.set_rate(share(LimitId::kTenantRequestsPerSecond));
    t->read_bytes.set_rate(share(LimitId::kTenantReadBytesPerSecond));
    t->write_bytes.set_rate(share(LimitId::kTenantWriteBytesPerSecond));
    t->memory_share.store(l[LimitId::kTenantMemoryShareBytes], std::memory_order_relaxed);
  }
  for (const auto& [id, c] : new_caches) {
    const control::Limits l = registry_->EffectiveLimits(c->tenant, id);
    for (size_t i = 0; i < control::kNumLimits; ++i) {
      c->limits[i].store(l.v[i], std::memory_order_relaxed);
    }
    const uint64_t own = c->fleet_own.load(std::memory_order_relaxed);
    const uint64_t total = c->fleet_total.load(std::memory_order_relaxed);
    auto share = [&](LimitId lid) { return FleetShare(l[lid], own, total, nodes); };
    c->requests.set_rate(share(LimitId::kRequestsPerSecond));
    c->read_bytes.set_rate(share(LimitId::kReadBytesPerSecond));
    c->write_bytes.set_rate(share(LimitId::kWriteBytesPerSecond));
    c->publishes.set_rate(share(LimitId::kPublishPerSecond));
  }
  {
    std::unique_lock lock(mu_);
    for (auto& [id, c] : caches_) {
      if (new_caches.contains(id)) continue;
      c->deleted.store(true, std::memory_order_relaxed);
      // Its subscriptions end with it: off its tenant's count now, once.
      const int64_t subs = c->subscriptions.exchange(0, std::memory_order_relaxed);
      c->tenant_state->subscriptions.fetch_sub(subs, std::memory_order_relaxed);
    }
    caches_.swap(new_caches);
    tenants_.swap(new_tenants);
  }
  if (on_refresh_) on_refresh_();
}

void Tenancy::ApplyFleet(uint32_t nodes, const absl::flat_hash_map<uint32_t, FleetDemand>& caches,
                         const absl::flat_hash_map<uint32_t, FleetDemand>& tenants) {
  std::lock_guard one(refresh_mu_);
  nodes = std::max<uint32_t>(1, nodes);
  fleet_nodes_.store(nodes, std::memory_order_relaxed);
  std::shared_lock lock(mu_);
  for (const auto& [id, t] : tenants_) {
    auto it = tenants.find(id);
    const FleetDemand d = it == tenants.end() ? FleetDemand{} : it->second;
    t->fleet_own.store(d.own, std::memory_order_relaxed);
    t->fleet_total.store(d.total, std::memory_order_relaxed);
    const control::Limits l =
        control::Resolve(registry_->server_limits(), registry_->TenantLimits(id), {});
    auto share = [&](LimitId lid) { return FleetShare(l[lid], d.own, d.total, nodes); };
    t->requests.adjust_rate(share(LimitId::kTenantRequestsPerSecond));
    t->read_bytes.adjust_rate(share(LimitId::kTenantReadBytesPerSecond));
    t->write_bytes.adjust_rate(share(LimitId::kTenantWriteBytesPerSecond));
  }
  for (const auto& [id, c] : caches_) {
    auto it = caches.find(id);
    const FleetDemand d = it == caches.end() ? FleetDemand{} : it->second;
    c->fleet_own.store(d.own, std::memory_order_relaxed);
    c->fleet_total.store(d.total, std::memory_order_relaxed);
    auto share = [&](LimitId lid) { return FleetShare(c->limit(lid), d.own, d.total, nodes); };
    c->requests.adjust_rate(share(LimitId::kRequestsPerSecond));
    c->read_bytes.adjust_rate(share(LimitId::kReadBytesPerSecond));
    c->write_bytes.adjust_rate(share(LimitId::kWriteBytesPerSecond));
    c->publishes.adjust_rate(share(LimitId::kPublishPerSecond));
  }
}

std::shared_ptr<CacheState> Tenancy::Find(uint32_t cache_id) const {
  std::shared_lock lock(mu_);
  auto it = caches_.find(cache_id);
  return it == caches_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<CacheState>> Tenancy::All() const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<CacheState>> out;
  out.reserve(caches_.size());
  for (const auto& [id, c] : caches_) out.push_back(c);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->id < b->id; });
  return out;
}

std::vector<std::shared_ptr<TenantState>> Tenancy::Tenants() const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<TenantState>> out;
  for (const auto& [id, t] : tenants_) out.push_back(t);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->id < b->id; });
  return out;
}

Refusal Tenancy::Admit(CacheState& c, uint64_t requests, uint64_t write_bytes, int64_t now_ns) {
  c.usage.requests.fetch_add(requests, std::memory_order_relaxed);
  TenantState* t = c.tenant_state.get();
  Refusal r = Refusal::kNone;
  // Reads are paid after the fact: a cache (or tenant) still in debt is refused.
  if (c.read_bytes.Over(now_ns)) {
    r = Refusal::kReadRate;
  } else if (t->read_bytes.Over(now_ns)) {
    r = Refusal::kTenantReadRate;
  } else if (!c.requests.TryTake(requests, now_ns)) {
    r = Refusal::kRequestRate;
  } else if (!c.write_bytes.TryTake(write_bytes, now_ns)) {
    c.requests.Refund(requests);
    r = Refusal::kWriteRate;
  } else if (!t->requests.TryTake(requests, now_ns)) {
    c.requests.Refund(requests);
    c.write_bytes.Refund(write_bytes);
    r = Refusal::kTenantRequestRate;
  } else if (!t->write_bytes.TryTake(write_bytes, now_ns)) {
    c.requests.Refund(requests);
    c.write_bytes.Refund(write_bytes);
    t->requests.Refund(requests);
    r = Refusal::kTenantWriteRate;
  }
  if (r != Refusal::kNone) {
    c.usage.refusals[static_cast<size_t>(r)].fetch_add(requests, std::memory_order_relaxed);
    return r;
  }
  c.usage.bytes_in.fetch_add(write_bytes, std::memory_order_relaxed);
  return Refusal::kNone;
}

Status Tenancy::AdmitPublish(uint32_t cache_id, size_t value_bytes) {
  std::shared_ptr<CacheState> c = Find(cache_id);
  if (c == nullptr) return Status::Ok();
  if (const uint64_t max = c->limit(LimitId::kMaxMessageBytes); max != 0 && value_bytes > max) {
    CountRefusal(*c, Refusal::kMessageSize);
    return Status(Code::kResourceExhausted,
                  std::string(topics::kMessageSizeText) + ": the message is " +
                      std::to_string(value_bytes) + " bytes, over the request limit of " +
                      std::to_string(max) + " bytes (max_message_bytes)");
  }
  constexpr int64_t kSecond = 1'000'000'000;
  if (!c->publishes.TryTakeWithin(1, static_cast<int64_t>(MonotonicNanos()), kSecond)) {
    CountRefusal(*c, Refusal::kPublishRate);
    return Status(Code::kResourceExhausted,
                  std::string(topics::kPublishRateText) + ": the cache's publish rate limit is " +
                      std::to_string(c->limit(LimitId::kPublishPerSecond)) +
                      " per second (publish_per_second)");
  }
  return Status::Ok();
}

Status Tenancy::AdmitSubscription(uint32_t cache_id) {
  std::shared_ptr<CacheState> c = Find(cache_id);
  if (c == nullptr) return Status::Ok();
  // Counted in first, then checked, so two loops admitting at once cannot both pass the cap.
  const uint64_t max = c->limit(LimitId::kMaxSubscriptions);
  const int64_t before = c->subscriptions.fetch_add(1, std::memory_order_relaxed);
  if (max != 0 && static_cast<uint64_t>(before) >= max) {
    c->subscriptions.fetch_sub(1, std::memory_order_relaxed);
    CountRefusal(*c, Refusal::kSubscriptions);
    return Status(Code::kResourceExhausted,
                  std::string(topics::kSubscriptionsText) + ": the cache has " +
                      std::to_string(before) + " subscribers, the limit (max_subscriptions)");
  }
  TenantState& t = *c->tenant_state;
  const uint64_t tenant_max = c->limit(LimitId::kTenantMaxSubscriptions);
  const int64_t tenant_before = t.subscriptions.fetch_add(1, std::memory_order_relaxed);
  if (tenant_max != 0 && static_cast<uint64_t>(tenant_before) >= tenant_max) {
    t.subscriptions.fetch_sub(1, std::memory_order_relaxed);
    c->subscriptions.fetch_sub(1, std::memory_order_relaxed);
    CountRefusal(*c, Refusal::kSubscriptions);
    return Status(Code::kResourceExhausted,
                  std::string(topics::kSubscriptionsText) + ": the tenant's caches have " +
                      std::to_string(tenant_before) +
                      " subscribers, the limit (tenant_max_subscriptions)");
  }
  return Status::Ok();
}

void Tenancy::ReleaseSubscription(uint32_t cache_id) {
  std::shared_ptr<CacheState> c = Find(cache_id);
  if (c == nullptr) return;  // forgotten: Refresh took its count off its tenant's
  // Only what is counted is given back (Refresh may have taken the cache's count already).
  int64_t n = c->subscriptions.load(std::memory_order_relaxed);
  while (n > 0 && !c->subscriptions.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
  }
  if (n > 0) c->tenant_state->subscriptions.fetch_sub(1, std::memory_order_relaxed);
}

void Tenancy::ChargeRead(CacheState& c, uint64_t bytes, int64_t now_ns) {
  if (bytes == 0) return;
  c.usage.bytes_out.fetch_add(bytes, std::memory_order_relaxed);
  c.read_bytes.Charge(bytes, now_ns);
  c.tenant_state->read_bytes.Charge(bytes, now_ns);
}

std::string Tenancy::Describe(const CacheState& c, Refusal r, bool name_cache) {
  auto limit = [&](LimitId id) { return std::to_string(c.limit(id)); };
  // The limits as set (on a fleet the buckets hold this node's share of them).
  auto tenant_limit = [&](const RateBucket& b) {
    return std::to_string(
        &b == &c.tenant_state->requests     ? c.limit(LimitId::kTenantRequestsPerSecond)
        : &b == &c.tenant_state->read_bytes ? c.limit(LimitId::kTenantReadBytesPerSecond)
                                            : c.limit(LimitId::kTenantWriteBytesPerSecond));
  };
  const std::string cache = name_cache ? "cache '" + c.name + "'" : std::string("this cache");
  const std::string tenant =
      name_cache ? "tenant '" + (c.tenant_state ? c.tenant_state->name : std::string()) + "'"
                 : std::string("this tenant");
  switch (r) {
    case Refusal::kNone:
      return "";
    case Refusal::kRequestRate:
      return "Request rate limit exceeded: " + cache + " allows " +
             limit(LimitId::kRequestsPerSecond) + " operations per second (requests_per_second)";
    case Refusal::kReadRate:
      return "Throughput limit exceeded: " + cache + " allows " +
             limit(LimitId::kReadBytesPerSecond) + " bytes read per second (read_bytes_per_second)";
    case Refusal::kWriteRate:
      return "Throughput limit exceeded: " + cache + " allows " +
             limit(LimitId::kWriteBytesPerSecond) +
             " bytes of requests per second (write_bytes_per_second)";
    case Refusal::kTenantRequestRate:
      return "Request rate limit exceeded: " + tenant + " allows " +
             tenant_limit(c.tenant_state->requests) +
             " operations per second over its caches (tenant_requests_per_second)";
    case Refusal::kTenantReadRate:
      return "Throughput limit exceeded: " + tenant + " allows " +
             tenant_limit(c.tenant_state->read_bytes) +
             " bytes read per second over its caches (tenant_read_bytes_per_second)";
    case Refusal::kTenantWriteRate:
      return "Throughput limit exceeded: " + tenant + " allows " +
             tenant_limit(c.tenant_state->write_bytes) +
             " bytes of requests per second over its caches (tenant_write_bytes_per_second)";
    case Refusal::kQueueFull:
      return "Server overloaded: the queue for " + tenant + " is full; retry later";
    case Refusal::kItemSize:
      return "Item size limit exceeded: " + cache + " allows values of at most " +
             limit(LimitId::kMaxItemBytes) + " bytes (max_item_bytes)";
    case Refusal::kElementSize:
      return "Element size limit exceeded: " + cache + " allows collection elements of at most " +
             limit(LimitId::kMaxElementBytes) + " bytes (max_element_bytes)";
    case Refusal::kTtl:
      return "TTL too long: " + cache + " allows TTLs of at most " +
             limit(LimitId::kMaxTtlSeconds) + " seconds (max_ttl_seconds)";
    case Refusal::kPublishRate:
      return "Publish rate limit exceeded: " + cache + " allows " +
             limit(LimitId::kPublishPerSecond) + " publishes per second (publish_per_second)";
    case Refusal::kSubscriptions:
      return "Topic subscriptions limit exceeded: " + cache + " allows " +
             limit(LimitId::kMaxSubscriptions) + " subscriptions (max_subscriptions)";
    case Refusal::kMessageSize:
      return "Request size limit exceeded: " + cache + " allows messages of at most " +
             limit(LimitId::kMaxMessageBytes) + " bytes (max_message_bytes)";
    case Refusal::kNotServing:
      return "Not serving writes: this node's cluster lease is not known alive (etcd "
             "unreachable or the node was paused); it serves again once it has one; retry";
    case Refusal::kCount:
      break;
  }
  return "limit exceeded";
}

}  // namespace cellar::gateway
