#include "storage/engine/engine.h"

#include <malloc.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/hash.h"
#include "storage/engine/op_table.h"

namespace cellar::storage {

namespace {
// Items compared per eviction; 5 is Redis's default and approximates LRU well.
constexpr int kEvictionSamples = 5;
// Fair eviction compares up to kEvictionSamples over-share items, but stops looking after this
// many sampled items: it bounds an eviction's cost when few items are over a share.
constexpr int kFairSampleLimit = 64;
// After a search that found nobody over a share, the next 1, 3, 7, ... (at most this many)
// evictions sample plainly: when nobody is over, searching every time made evictions ~10x
// slower than plain sampling (measured); this way it costs about one extra sample per
// eviction, and a tenant going over is noticed within this many evictions.
constexpr uint32_t kFairMaxBackoff = 64;
}  // namespace

Engine::Engine(const Clock* clock, uint64_t memory_limit, uint64_t seed)
    : clock_(clock), limit_(memory_limit), rng_(seed * 0x9E3779B97F4A7C15ull + 1) {}

Engine::~Engine() {
  table_.EraseIf([](Item*) { return true; }, [this](Item* item) {
    if (item->is_collection()) DeleteObject(item);
    std::free(item);
  });
}

uint64_t Engine::NextRandom() {
  // xorshift64*: cheap and good enough for sampling.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1Dull;
}

uint32_t Engine::LruClock() const {
  // 100 ms resolution; 28 bits wrap after about 310 days, and ages are taken modulo that.
  // Uses the time of the operation's lookup (FindLive), so one operation reads the clock once.
  return static_cast<uint32_t>(now_ / 100) & Item::kLruMask;
}

Engine::TenantState& Engine::TenantFor(uint32_t tenant_id) {
  auto [it, inserted] = tenants_.try_emplace(tenant_id);
  if (inserted) it->second = std::make_unique<TenantState>();
  return *it->second;
}

Engine::CacheState& Engine::CacheFor(uint32_t cache_id) {
  auto [it, inserted] = caches_.try_emplace(cache_id);
  if (inserted) it->second.tenant = &TenantFor(0);
  return it->second;
}

void Engine::Charge(CacheState& c, int64_t delta) {
  // Unsigned wrap-around adds a negative delta correctly.
  const uint64_t d = static_cast<uint64_t>(delta);
  used_ += d;
  c.counters.bytes += d;
  TenantCounters& t = c.tenant->counters;
  const bool was_active = t.bytes != 0;
  t.bytes += d;
  if (was_active != (t.bytes != 0)) {
    if (was_active) {
      --active_tenants_;
    } else {
      ++active_tenants_;
    }
  }
}

void Engine::CreateCache(uint32_t cache_id, uint32_t tenant_id) {
  TenantState* tenant = &TenantFor(tenant_id);
  auto [it, inserted] = caches_.try_emplace(cache_id);
  CacheState& c = it->second;
  if (!inserted && c.tenant != tenant) {
    // Moved to another tenant: its items go along, so both tenants stay exact. Charge() moves
    // the bytes (and active_tenants_); used_ is unchanged overall.
    const int64_t bytes = static_cast<int64_t>(c.counters.bytes);
    Charge(c, -bytes);
    c.tenant->counters.items -= c.counters.items;
    c.tenant = tenant;
    Charge(c, bytes);
    c.tenant->counters.items += c.counters.items;
  }
  c.tenant = tenant;
}

void Engine::SetTenantShare(uint32_t tenant_id, uint64_t bytes) {
  TenantState& t = TenantFor(tenant_id);
  explicit_shares_ += (bytes != 0);
  explicit_shares_ -= (t.share != 0);
  t.share = bytes;
}

void Engine::SetCacheShare(uint32_t cache_id, uint64_t bytes) {
  auto it = caches_.find(cache_id);
  if (it == caches_.end()) return;
  explicit_shares_ += (bytes != 0);
  explicit_shares_ -= (it->second.share != 0);
  it->second.share = bytes;
}

uint64_t Engine::DefaultShare() const {
  // The index is shared overhead: splitting only what is left for items means that when the
  // shard is full, some tenant is at or over its share (with limit_ / n, two tenants both
  // writing would settle just under theirs, and eviction would search in vain).
  const uint64_t index = table_.IndexBytes();
  const uint64_t room = limit_ > index ? limit_ - index : 0;
  return room / std::max<size_t>(active_tenants_, 1);
}

uint64_t Engine::TenantShare(uint32_t tenant_id) const {
  auto it = tenants_.find(tenant_id);
  if (it != tenants_.end() && it->second->share != 0) return it->second->share;
  return DefaultShare();
}

bool Engine::OverShare(const Item* item, uint64_t default_share) const {
  auto it = caches_.find(item->cache_id);
  if (it == caches_.end()) return false;
  const CacheState& c = it->second;
  if (c.share != 0 && c.counters.bytes > c.share) return true;
  const TenantState& t = *c.tenant;
  return t.counters.bytes > (t.share != 0 ? t.share : default_share);
}

const CacheCounters* Engine::Cache(uint32_t cache_id) const {
  auto it = caches_.find(cache_id);
  return it == caches_.end() ? nullptr : &it->second.counters;
}

const TenantCounters* Engine::Tenant(uint32_t tenant_id) const {
  auto it = tenants_.find(tenant_id);
  return it == tenants_.end() ? nullptr : &it->second->counters;
}

EngineCounters Engine::Counters() const {
  EngineCounters c = counters_;
  c.items = table_.size();
  c.used_bytes = used_bytes();
  c.index_bytes = table_.IndexBytes();
  return c;
}

Item* Engine::NewItem(uint32_t cache_id, std::string_view key, size_t val_len,
                      int64_t expire_at) {
  void* mem = std::malloc(Item::AllocSize(key.size(), val_len));
  if (mem == nullptr) return nullptr;
  Item* item = static_cast<Item*>(mem);
  item->expire_at = expire_at;
  item->cache_id = cache_id;
  item->key_len = static_cast<uint32_t>(key.size());
  item->val_len = static_cast<uint32_t>(val_len);
  item->meta = static_cast<uint32_t>(ItemType::kString);
  item->set_lru(LruClock());
  if (!key.empty()) std::memcpy(item->data(), key.data(), key.size());
  CacheState& c = CacheFor(cache_id);
  c.counters.items++;
  c.tenant->counters.items++;
  Charge(c, static_cast<int64_t>(malloc_usable_size(item)));
  if (expire_at != 0) c.counters.volatile_items++;
  return item;
}

void Engine::FreeItem(Item* item) {
  size_t bytes = malloc_usable_size(item);
  if (item->is_collection()) {
    bytes += ObjectBytes(item);
    DeleteObject(item);
  }
  auto it = caches_.find(item->cache_id);
  if (it != caches_.end()) {
    CacheState& c = it->second;
    c.counters.items--;
    c.tenant->counters.items--;
    Charge(c, -static_cast<int64_t>(bytes));
    if (item->has_ttl()) c.counters.volatile_items--;
  } else {
    used_ -= bytes;
  }
  std::free(item);
}

void Engine::SetExpiry(Item* item, int64_t expire_at) {
  if (item->has_ttl() != (expire_at != 0)) {
    CacheCounters& cc = CacheFor(item->cache_id).counters;
    if (expire_at != 0) {
      cc.volatile_items++;
    } else {
      cc.volatile_items--;
    }
  }
  item->expire_at = expire_at;
}

void Engine::EraseSlot(size_t slot) { FreeItem(table_.Erase(slot)); }

size_t Engine::FindLive(const api::Request& req) {
  return FindLive(req.cache_id, req.key, KeyHash(req.cache_id, req.key));
}

size_t Engine::FindLive(uint32_t cache_id, std::string_view key, uint64_t hash) {
  now_ = Now();
  size_t slot = table_.Find(cache_id, key, hash);
  if (slot == Table::kNotFound) return slot;
  if (table_.At(slot)->ExpiredAt(now_)) {
    EraseSlot(slot);
    counters_.expirations++;
    CacheFor(cache_id).counters.expirations++;
    return Table::kNotFound;
  }
  return slot;
}

bool Engine::EvictOne() {
  const size_t n = table_.size();
  if (n == 0) return false;
  const size_t cap = table_.capacity();
  const int64_t now = Now();
  now_ = now;
  const uint32_t now_clock = LruClock();
  // With one active tenant and no shares set, the only tenant is over its share only when the
  // shard is over its limit, and plain sampling picks from it anyway: skip the search (and its
  // hash lookups) in the common single-tenant shard.
  bool fair = fair_ && (active_tenants_ > 1 || explicit_shares_ > 0);
  if (fair && fair_skip_ > 0) {
    --fair_skip_;
    // Backing off from searches that found nobody over a share; but once someone is, search.
    fair = AnyOverShare(DefaultShare());
    if (fair) fair_skip_ = 0;
  }
  const uint64_t default_share = fair ? DefaultShare() : 0;
  const int budget = fair ? kFairSampleLimit : kEvictionSamples;
  // best: the oldest of the first kEvictionSamples items (exactly the plain sampling);
  // best_over: the oldest over-share (or expired) item among those seen.
  size_t best = Table::kNotFound;
  uint32_t best_age = 0;
  size_t best_over = Table::kNotFound;
  uint32_t best_over_age = 0;
  int sampled = 0;
  int over = 0;
  // Random start, walk forward over occupied slots: at load >= 1/4 this touches few slots.
  size_t i = NextRandom() & (cap - 1);
  for (size_t visited = 0; visited < cap && sampled < budget && over < kEvictionSamples;
       ++visited) {
    if (table_.Occupied(i)) {
      Item* item = table_.At(i);
      const bool expired = item->ExpiredAt(now);
      uint32_t age = expired ? Item::kLruMask : ((now_clock - item->lru()) & Item::kLruMask);
      if (sampled < kEvictionSamples && (best == Table::kNotFound || age > best_age)) {
        best = i;
        best_age = age;
      }
      // An expired item is dead already: taking it costs its tenant nothing, whatever its share.
      if (fair && (expired || OverShare(item, default_share))) {
        if (best_over == Table::kNotFound || age > best_over_age) {
          best_over = i;
          best_over_age = age;
        }
        ++over;
      }
      ++sampled;
      // Jump elsewhere after each sample so neighbours in one probe run are not favoured.
      i = NextRandom() & (cap - 1);
      continue;
    }
    i = (i + 1) & (cap - 1);
  }
  if (fair && best_over == Table::kNotFound && AnyOverShare(default_share)) {
    // Someone is over a share but the sample missed them: a tenant over its share with few,
    // large items (200 values of 4 MB among a neighbour's thousand small keys) is rarely
    // sampled, and plain sampling would take the neighbour's keys instead. Find the oldest
    // over-share item by a sweep: costly, but such a tenant has few items, so each of these
    // evictions frees much.
    best_over = OldestOverShare(default_share, now, now_clock);
  }
  if (fair) {
    if (best_over != Table::kNotFound) {
      best = best_over;
      fair_backoff_ = 0;
    } else {
      // Nobody is over a share (the index's growth, or shares that add up past the limit):
      // plain sampling, and fewer searches while that lasts.
      fair_backoff_ = std::min(kFairMaxBackoff, fair_backoff_ * 2 + 1);
      fair_skip_ = fair_backoff_;
    }
  }
  if (best == Table::kNotFound) return false;
  Item* victim = table_.At(best);
  auto it = caches_.find(victim->cache_id);
  if (it != caches_.end()) {
    it->second.counters.evictions++;
    it->second.tenant->counters.evictions++;
  }
  counters_.evictions++;
  EraseSlot(best);
  return true;
}

bool Engine::AnyOverShare(uint64_t default_share) const {
  for (const auto& [id, t] : tenants_) {
    if (t->counters.bytes > (t->share != 0 ? t->share : default_share)) return true;
  }
  if (explicit_shares_ == 0) return false;
  for (const auto& [id, c] : caches_) {
    if (c.share != 0 && c.counters.bytes > c.share) return true;
  }
  return false;
}

size_t Engine::OldestOverShare(uint64_t default_share, int64_t now, uint32_t now_clock) const {
  size_t best = Table::kNotFound;
  uint32_t best_age = 0;
  for (size_t i = 0; i < table_.capacity(); ++i) {
    if (!table_.Occupied(i)) continue;
    const Item* item = table_.At(i);
    const bool expired = item->ExpiredAt(now);
    if (!expired && !OverShare(item, default_share)) continue;
    const uint32_t age = expired ? Item::kLruMask : ((now_clock - item->lru()) & Item::kLruMask);
    if (best == Table::kNotFound || age > best_age) {
      best = i;
      best_age = age;
    }
  }
  return best;
}

bool Engine::MakeRoom(size_t incoming, bool inserting) {
  if (limit_ == 0) return true;
  // An insert may double the index: that memory counts against the limit too.
  while (used_bytes() + incoming + (inserting ? table_.InsertGrowthBytes() : 0) > limit_) {
    if (!EvictOne()) {
      counters_.oom_refusals++;
      return false;
    }
  }
  return true;
}

Item* Engine::Rewrite(size_t slot, std::string_view value) {
  Item* old = table_.At(slot);
  Touch(old);
  size_t old_bytes = malloc_usable_size(old);
  size_t need = Item::AllocSize(old->key_len, value.size());
  if (need <= old_bytes && need * 2 >= old_bytes) {
    // Fits in the block and wastes at most half of it: rewrite in place.
    if (!value.empty()) std::memmove(old->mutable_value(), value.data(), value.size());
    old->val_len = static_cast<uint32_t>(value.size());
    return old;
  }
  // Build the new block first: eviction below may free `old` itself (or move it), so nothing
  // may be read from it afterwards.
  Item* item = NewItem(old->cache_id, old->key(), value.size(), old->expire_at);
  if (item == nullptr) return nullptr;
  if (!value.empty()) std::memcpy(item->mutable_value(), value.data(), value.size());
  const uint64_t hash = KeyHash(item->cache_id, item->key());
  old = nullptr;
  // Evict until the result fits: the new block replaces the old one if it is still there, or
  // is inserted anew if the old item was evicted.
  for (;;) {
    slot = table_.Find(item->cache_id, item->key(), hash);
    const uint64_t after = slot != Table::kNotFound
                               ? used_bytes() - malloc_usable_size(table_.At(slot))
                               : used_bytes() + table_.InsertGrowthBytes();
    if (limit_ == 0 || after <= limit_) break;
    if (!EvictOne()) {
      counters_.oom_refusals++;
      FreeItem(item);
      return nullptr;
    }
  }
  if (slot == Table::kNotFound) {
    table_.Insert(item, hash);
  } else {
    FreeItem(table_.Replace(slot, item));
  }
  return item;
}

void Engine::ChargeExternal(uint32_t cache_id, int64_t delta) {
  auto it = caches_.find(cache_id);
  if (it == caches_.end()) return;
  it->second.external += static_cast<uint64_t>(delta);
  Charge(it->second, delta);
}

size_t Engine::FlushCache(uint32_t cache_id, bool forget) {
  size_t n = table_.EraseIf([cache_id](Item* item) { return item->cache_id == cache_id; },
                            [this](Item* item) { FreeItem(item); });
  if (forget) {
    // The items are gone (and uncharged from the tenant) already; what is left is the record
    // and any external charge (given back here; later ChargeExternal calls are ignored).
    auto it = caches_.find(cache_id);
    if (it != caches_.end()) {
      Charge(it->second, -static_cast<int64_t>(it->second.external));
      explicit_shares_ -= (it->second.share != 0);
      caches_.erase(it);
    }
  }
  return n;
}

size_t Engine::ActiveExpire(size_t budget) {
  const int64_t now = Now();
  size_t removed = 0;
  const size_t cap = table_.capacity();
  for (size_t n = 0; n < budget; ++n) {
    size_t i = expire_cursor_ & (cap - 1);
    if (table_.Occupied(i) && table_.At(i)->ExpiredAt(now)) {
      Item* item = table_.At(i);
      auto it = caches_.find(item->cache_id);
      if (it != caches_.end()) it->second.counters.expirations++;
      counters_.expirations++;
      EraseSlot(i);  // shifts the next item into i: look at i again
      ++removed;
      continue;
    }
    expire_cursor_ = i + 1;
  }
  return removed;
}

// The table of ops (op_table.h): each op's family and its executor.
struct Engine::OpEntry {
  OpFamily family = OpFamily::kNone;
  void (Engine::*run)(const api::Request&, api::Reply&) = nullptr;
};

const Engine::OpEntry& Engine::OpOf(api::Op op) {
  static const auto table = [] {
    std::array<OpEntry, 256> t{};
    for (int i = 0; i < 256; ++i) {
      OpEntry& e = t[i];
      e.family = FamilyOf(static_cast<api::Op>(i));
      switch (e.family) {
        case OpFamily::kString: e.run = &Engine::ExecuteString; break;
        case OpFamily::kKeyspace: e.run = &Engine::ExecuteKeyspace; break;
        case OpFamily::kDict: e.run = &Engine::ExecuteDict; break;
        case OpFamily::kList: e.run = &Engine::ExecuteList; break;
        case OpFamily::kSet: e.run = &Engine::ExecuteSet; break;
        case OpFamily::kZSet: e.run = &Engine::ExecuteZSet; break;
        case OpFamily::kSeveral: e.run = &Engine::ExecuteAcrossTypes; break;
        case OpFamily::kNone: break;
      }
    }
    return t;
  }();
  return table[static_cast<uint8_t>(op)];
}

void Engine::Execute(const api::Request& req, api::Reply& reply) {
  auto cache = caches_.find(req.cache_id);
  if (cache == caches_.end()) {
    reply.status = Status(Code::kNotFound, "cache not found");
    return;
  }
  cache->second.counters.ops++;
  const OpEntry& op = OpOf(req.op);
  if (op.run == nullptr) {
    reply.status = Status(Code::kInternal, "unknown operation");
    return;
  }
  (this->*op.run)(req, reply);
}

}  // namespace cellar::storage
