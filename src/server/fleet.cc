#include "server/fleet.h"

#include <algorithm>
#include <future>

#include "cluster/membership.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/numbers.h"
#include "control/limits.h"
#include "gateway/tenancy.h"
#include "metadata/view.h"

namespace cellar::server {
namespace {

using Clock = std::chrono::steady_clock;
using control::LimitId;

// A record larger than this (thousands of busy caches) keeps only the demand: etcd refuses
// requests over 1.5 MiB, and the limits matter more than the sums.
constexpr size_t kMaxRecordBytes = 512 << 10;
constexpr auto kWait = std::chrono::seconds(2);
// The others' reports are read this far into the period (a third: etcd's commit and watch take
// milliseconds).
constexpr int64_t kApplyAfterPercent = 30;

// The per-second limits FleetShare applies to, cache and tenant.
constexpr LimitId kRated[] = {
    LimitId::kRequestsPerSecond,        LimitId::kReadBytesPerSecond,
    LimitId::kWriteBytesPerSecond,      LimitId::kPublishPerSecond,
    LimitId::kTenantRequestsPerSecond,  LimitId::kTenantReadBytesPerSecond,
    LimitId::kTenantWriteBytesPerSecond};

uint64_t U(const Json* j) { return j != nullptr ? j->AsUint().value_or(0) : 0; }

void Counters(std::string& out, const gateway::CacheStats& c) {
  out += "[" + std::to_string(c.id);
  for (uint64_t v : {c.ops, c.items, c.bytes, c.hits, c.misses, c.evictions, c.expirations,
                     c.requests, c.bytes_in, c.bytes_out, c.latency_sum_us, c.latency_count}) {
    out += ',';
    out += std::to_string(v);
  }
  for (const auto* list : {&c.refusals, &c.latency}) {
    out += ",[";
    for (size_t i = 0; i < list->size(); ++i) {
      if (i > 0) out += ',';
      out += std::to_string((*list)[i]);
    }
    out += "]";
  }
  out += "]";
}

// Requests the front-ends admitted: Tenancy::Admit counts every request, and a refusal by one of
// the rate limits it checks (the other refusals are counted without a request).
uint64_t Admitted(const gateway::CacheStats& c) {
  uint64_t refused = 0;
  for (gateway::Refusal r :
       {gateway::Refusal::kRequestRate, gateway::Refusal::kReadRate, gateway::Refusal::kWriteRate,
        gateway::Refusal::kTenantRequestRate, gateway::Refusal::kTenantReadRate,
        gateway::Refusal::kTenantWriteRate}) {
    const auto i = static_cast<size_t>(r);
    if (i < c.refusals.size()) refused += c.refusals[i];
  }
  return c.requests >= refused ? c.requests - refused : 0;
}

bool AllZero(const gateway::CacheStats& c) {
  gateway::CacheStats zero;
  zero.refusals.assign(c.refusals.size(), 0);
  zero.latency.assign(c.latency.size(), 0);
  return c.ops == 0 && c.items == 0 && c.bytes == 0 && c.hits == 0 && c.misses == 0 &&
         c.evictions == 0 && c.expirations == 0 && c.requests == 0 && c.bytes_in == 0 &&
         c.bytes_out == 0 && c.latency_count == 0 && c.refusals == zero.refusals;
}

}  // namespace

// ---- FleetRecord ------------------------------------------------------------------------------

std::string FleetRecord::ToJson() const {
  std::string out = "{\"d\":{";
  bool first = true;
  for (const auto& [id, d] : demand) {
    out += (first ? "\"" : ",\"") + std::to_string(id) + "\":" + std::to_string(d);
    first = false;
  }
  out += "},\"s\":[";
  for (size_t i = 0; i < stats.size(); ++i) {
    if (i > 0) out += ",";
    Counters(out, stats[i]);
  }
  out += "],\"u\":[";
  for (size_t i = 0; i < usage.size(); ++i) {
    const UsageRecord& r = usage[i];
    if (i > 0) out += ",";
    out += "[" + std::to_string(r.minute) + ",\"" + JsonEscape(r.tenant) + "\",\"" +
           JsonEscape(r.cache) + "\"," + std::to_string(r.usage.requests) + "," +
           std::to_string(r.usage.bytes_in) + "," + std::to_string(r.usage.bytes_out) + "," +
           std::to_string(r.usage.throttled) + "]";
  }
  out += "]";
  if (load) {
    out += ",\"l\":{\"rps\":" + std::to_string(load->rps) +
           ",\"mem\":" + std::to_string(load->memory_used) +
           ",\"items\":" + std::to_string(load->items) + "}";
  }
  return out + "}";
}

std::optional<FleetRecord> FleetRecord::FromJson(std::string_view json) {
  auto j = ParseJson(json);
  if (!j || j->type != Json::Type::kObject) return std::nullopt;
  FleetRecord r;
  if (const Json* d = j->Find("d"); d != nullptr && d->type == Json::Type::kObject) {
    for (const auto& [key, v] : d->members) {
      auto n = ParseInt64(key);
      if (!n || *n < 0 || *n > UINT32_MAX) continue;
      r.demand[static_cast<uint32_t>(*n)] = v.AsUint().value_or(0);
    }
  }
  if (const Json* s = j->Find("s"); s != nullptr && s->type == Json::Type::kArray) {
    for (const Json& row : s->items) {
      if (row.type != Json::Type::kArray || row.items.size() != 15) continue;
      const auto& x = row.items;
      gateway::CacheStats c;
      c.id = static_cast<uint32_t>(U(&x[0]));
      uint64_t* fields[] = {&c.ops,      &c.items,     &c.bytes,          &c.hits,
                            &c.misses,   &c.evictions, &c.expirations,    &c.requests,
                            &c.bytes_in, &c.bytes_out, &c.latency_sum_us, &c.latency_count};
      for (size_t i = 0; i < std::size(fields); ++i) *fields[i] = U(&x[1 + i]);
      for (const Json& v : x[13].items) c.refusals.push_back(v.AsUint().value_or(0));
      for (const Json& v : x[14].items) c.latency.push_back(v.AsUint().value_or(0));
      r.stats.push_back(std::move(c));
    }
  }
  if (const Json* u = j->Find("u"); u != nullptr && u->type == Json::Type::kArray) {
    for (const Json& row : u->items) {
      if (row.type != Json::Type::kArray || row.items.size() != 7) continue;
      const auto& x = row.items;
      UsageRecord rec;
      rec.minute = static_cast<int64_t>(U(&x[0]));
      rec.tenant = x[1].text;
      rec.cache = x[2].text;
      rec.usage = {U(&x[3]), U(&x[4]), U(&x[5]), U(&x[6])};
      r.usage.push_back(std::move(rec));
    }
  }
  if (const Json* l = j->Find("l"); l != nullptr && l->type == Json::Type::kObject) {
    r.load = FleetLoad{U(l->Find("rps")), U(l->Find("mem")), U(l->Find("items"))};
  }
  return r;
}

// ---- Fleet ------------------------------------------------------------------------------------

Fleet::Fleet(metadata::Store& store, cluster::Membership& membership, gateway::Tenancy& tenancy,
             FleetOptions options)
    : store_(store),
      membership_(membership),
      tenancy_(tenancy),
      options_(std::move(options)),
      view_(std::make_unique<metadata::View>(store_, std::string(kFleetPrefix))) {}

Fleet::~Fleet() {
  Stop();
  if (thread_.joinable()) thread_.join();
  view_.reset();  // unwatches
}

void Fleet::OnRecord(const std::string& key, const std::string* value) {
  std::string node = key.starts_with(kFleetPrefix) ? key.substr(kFleetPrefix.size()) : key;
  if (node == options_.self) return;
  std::optional<FleetRecord> rec = value ? FleetRecord::FromJson(*value) : std::nullopt;
  if (!rec) {  // gone with its node's lease (or unreadable): its usage rows stay
    peers_.erase(node);
    return;
  }
  for (const UsageRecord& u : rec->usage) {
    usage_[{u.minute, node, u.tenant, u.cache}] = u.usage;
    newest_minute_ = std::max(newest_minute_, u.minute);
  }
  // The window of the others' rows: a day, like the UsageLog's.
  while (!usage_.empty() && std::get<0>(usage_.begin()->first) < newest_minute_ - 24 * 3600) {
    usage_.erase(usage_.begin());
  }
  peers_[node] = std::move(*rec);
}

Status Fleet::Start() {
  Status st = view_->Start(
      [this](const metadata::Update& u) {
        // Under the view's mutex, entries() current.
        if (u.reset) {
          peers_.clear();
          for (const auto& [key, e] : view_->entries()) OnRecord(key, &e.value);
          return;
        }
        for (const metadata::Change& c : u.changes) {
          OnRecord(c.key, c.value ? &*c.value : nullptr);
        }
      },
      nullptr);
  if (!st.ok()) return st;
  last_tick_ = Clock::now();
  last_admitted_at_ = last_tick_;  // the counters began with this process
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void Fleet::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void Fleet::Run() {
  // Every node reports at the same instants, whole periods of the wall clock (as in sync as the
  // nodes' clocks: NTP keeps them within milliseconds), and reads the others' reports a moment
  // later, so every node splits a limit by the demand of the same second.
  const int64_t period_ms = std::max<int64_t>(100, options_.period.count());
  for (;;) {
    const int64_t wall_ms = SystemClock::Get()->NowMillis();
    const int64_t wait_ms = period_ms - wall_ms % period_ms;
    auto at = Clock::now() + std::chrono::milliseconds(wait_ms);
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, at, [this] { return stop_; })) return;
    }
    std::map<uint32_t, uint64_t> own = Report(Clock::now());
    at += std::chrono::milliseconds(period_ms * kApplyAfterPercent / 100);
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, at, [this] { return stop_; })) return;
    }
    Apply(own);
  }
}

std::map<uint32_t, uint64_t> Fleet::Report(Clock::time_point now) {
  // This node's demand: requests (admitted and refused) since the last tick, per second, for
  // the caches that have a per-second limit of their own or their tenant's.
  const int64_t elapsed_ms = std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(now - last_tick_).count());
  last_tick_ = now;
  std::map<uint32_t, uint64_t> own;
  std::map<uint32_t, uint64_t> seen;
  for (const auto& c : tenancy_.All()) {
    const uint64_t total = c->usage.requests.load(std::memory_order_relaxed);
    auto it = last_requests_.find(c->id);
    // A cache first seen counts from zero: its state (and counters) began with this process
    // or with the cache.
    const uint64_t before = it == last_requests_.end() ? 0 : it->second;
    seen[c->id] = total;
    const uint64_t grew = total >= before ? total - before : total;
    bool limited = false;
    for (LimitId id : kRated) limited = limited || c->limit(id) != 0;
    if (!limited || grew == 0) continue;
    own[c->id] = std::max<uint64_t>(1, grew * 1000 / static_cast<uint64_t>(elapsed_ms));
  }
  last_requests_ = std::move(seen);

  // This node's counters, gathered on loop 0 (bounded: a busy loop keeps the last ones).
  if (options_.gather) {
    auto promise = std::make_shared<std::promise<FleetLocal>>();
    auto future = promise->get_future();
    auto once = std::make_shared<std::atomic<bool>>(false);
    options_.gather([promise, once](FleetLocal local) {
      if (!once->exchange(true)) promise->set_value(std::move(local));
    });
    if (future.wait_for(kWait) == std::future_status::ready) {
      FleetLocal local = future.get();
      // The load: admitted requests per second since the last gather that answered.
      uint64_t admitted = 0;
      for (const gateway::CacheStats& c : local.stats.caches) admitted += Admitted(c);
      const int64_t since_ms = std::max<int64_t>(
          1,
          std::chrono::duration_cast<std::chrono::milliseconds>(now - last_admitted_at_).count());
      const uint64_t grew = admitted >= last_admitted_ ? admitted - last_admitted_ : 0;
      last_admitted_ = admitted;
      last_admitted_at_ = now;
      last_local_.load = FleetLoad{
          (grew * 1000 + static_cast<uint64_t>(since_ms) / 2) / static_cast<uint64_t>(since_ms),
          local.stats.used_bytes, local.stats.items};
      {
        std::lock_guard lock(view_->mutex());
        own_load_ = last_local_.load;
      }
      last_local_.stats.clear();
      for (gateway::CacheStats& c : local.stats.caches) {
        if (AllZero(c)) continue;
        c.tenant.clear();
        c.name.clear();
        last_local_.stats.push_back(std::move(c));
      }
      last_local_.usage = std::move(local.usage);
    }
  }

  FleetRecord rec;
  rec.demand = own;
  rec.stats = last_local_.stats;
  rec.usage = last_local_.usage;
  rec.load = last_local_.load;
  std::string json = rec.ToJson();
  if (json.size() > kMaxRecordBytes) {
    rec.stats.clear();
    rec.usage.clear();
    json = rec.ToJson();
  }
  if (json != last_json_ || membership_.lease() != last_lease_) {
    auto lease = membership_.PutUnderLease(std::string(kFleetPrefix) + options_.self, json,
                                           std::chrono::milliseconds(kWait));
    if (lease.ok()) {
      last_json_ = std::move(json);
      last_lease_ = *lease;
      if (std::exchange(put_failing_, false)) LOG_INFO("msg=\"fleet quota record written again\"");
    } else if (!std::exchange(put_failing_, true)) {
      LOG_WARN(
          "msg=\"cannot write this node's fleet quota record; keeping the last shares\" "
          "error=\"{}\"",
          lease.status().message());
    }
  }
  return own;
}

void Fleet::Apply(const std::map<uint32_t, uint64_t>& own) {
  absl::flat_hash_map<uint32_t, gateway::FleetDemand> caches;
  absl::flat_hash_map<uint32_t, gateway::FleetDemand> tenants;
  for (const auto& [id, d] : own) caches[id] = {d, d};
  size_t peers = 0;
  {
    std::lock_guard lock(view_->mutex());
    peers = peers_.size();
    for (const auto& [node, rec] : peers_) {
      for (const auto& [id, d] : rec.demand) caches[id].total += d;
    }
  }
  const size_t members = membership_.State().members.size();
  const auto nodes = static_cast<uint32_t>(std::max<size_t>({1, members, peers + 1}));
  for (const auto& c : tenancy_.All()) {
    auto it = caches.find(c->id);
    if (it == caches.end()) continue;
    gateway::FleetDemand& t = tenants[c->tenant];
    t.own += it->second.own;
    t.total += it->second.total;
  }
  tenancy_.ApplyFleet(nodes, caches, tenants);
}

size_t Fleet::AddPeerStats(gateway::Stats& st) const {
  absl::flat_hash_map<uint32_t, size_t> index;
  for (size_t i = 0; i < st.caches.size(); ++i) index[st.caches[i].id] = i;
  std::lock_guard lock(view_->mutex());
  for (const auto& [node, rec] : peers_) {
    for (const gateway::CacheStats& c : rec.stats) {
      auto it = index.find(c.id);
      if (it != index.end()) st.caches[it->second] += c;
    }
  }
  return 1 + peers_.size();
}

std::map<std::string, FleetLoad> Fleet::Loads() const {
  std::map<std::string, FleetLoad> out;
  std::lock_guard lock(view_->mutex());
  for (const auto& [node, rec] : peers_) {
    if (rec.load) out[node] = *rec.load;
  }
  if (own_load_) out[options_.self] = *own_load_;
  return out;
}

std::vector<UsageRecord> Fleet::PeerUsage(const std::optional<std::string>& tenant,
                                          const std::optional<std::string>& cache, int64_t from,
                                          int64_t to, int64_t now_ms,
                                          int64_t minute_seconds) const {
  const int64_t now_s = now_ms / 1000;
  const int64_t current = minute_seconds > 0 ? now_s - now_s % minute_seconds : now_s;
  std::vector<UsageRecord> out;
  std::lock_guard lock(view_->mutex());
  for (auto it = usage_.lower_bound({from, "", "", ""}); it != usage_.end(); ++it) {
    const auto& [minute, node, t, c] = it->first;
    const UsageCounters& u = it->second;
    if (minute >= to) break;
    if ((tenant && t != *tenant) || (cache && c != *cache)) continue;
    out.push_back(UsageRecord{minute, t, c, u, minute >= current});
  }
  return out;
}

}  // namespace cellar::server
