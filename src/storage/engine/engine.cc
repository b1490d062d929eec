#include "storage/engine/engine.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/hash.h"
#include "common/glob.h"
#include "common/numbers.h"

namespace cellar::storage {

namespace {

// Work one KEYS slice or SCAN call may do (glob units and slots), about a millisecond: a
// costly pattern or a large cache ends the call early instead of holding the loop.
constexpr uint64_t kKeysSliceWork = 1u << 20;

// GlobMatch that adds its work (glob.h's units) to `work`. A key is always matched whole (a
// slice ends between keys), and the matcher's own bound keeps one key's cost linear.
bool MatchCounted(std::string_view pattern, std::string_view key, uint64_t& work) {
  uint64_t budget = UINT64_MAX;
  const GlobResult r = GlobMatchBudget(pattern, key, false, &budget);
  work += UINT64_MAX - budget;
  return r == GlobResult::kMatch;
}

}  // namespace

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

std::optional<std::string_view> Engine::Get(uint32_t cache_id, std::string_view key,
                                            bool* wrong_type) {
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  CacheCounters& cc = CacheFor(cache_id).counters;
  if (slot == Table::kNotFound) {
    counters_.misses++;
    cc.misses++;
    return std::nullopt;
  }
  Item* item = table_.At(slot);
  if (item->is_collection()) {
    if (wrong_type != nullptr) *wrong_type = true;
    return std::nullopt;
  }
  Touch(item);
  counters_.hits++;
  cc.hits++;
  return item->value();
}

Status Engine::Set(uint32_t cache_id, std::string_view key, std::string_view value,
                   int64_t expire_at, uint32_t flags, bool* stored,
                   std::optional<std::string>* old_value) {
  *stored = false;
  const uint64_t hash = KeyHash(cache_id, key);
  size_t slot = FindLive(cache_id, key, hash);
  const bool exists = slot != Table::kNotFound;
  const bool collection = exists && table_.At(slot)->is_collection();
  if (collection && old_value != nullptr) return Status(Code::kWrongType);
  if (old_value != nullptr && exists) *old_value = std::string(table_.At(slot)->value());
  if ((flags & api::kNx) && exists) return Status::Ok();
  if ((flags & api::kXx) && !exists) return Status::Ok();

  int64_t new_expire = 0;
  if (flags & api::kKeepTtl) {
    new_expire = exists ? table_.At(slot)->expire_at : 0;
  } else if (flags & api::kSetTtl) {
    new_expire = expire_at;
  }
  if (new_expire != 0 && new_expire <= now_) {
    // An absolute expiry in the past: the write succeeds and the key is gone at once.
    if (exists) EraseSlot(slot);
    *stored = true;
    return Status::Ok();
  }
  if (collection) {  // SET replaces a collection with a string
    EraseSlot(slot);
    slot = Table::kNotFound;
  }
  if (slot != Table::kNotFound) {
    Item* item = Rewrite(slot, value);
    if (item == nullptr) return Status(Code::kOutOfMemory);
    SetExpiry(item, new_expire);
    *stored = true;
    return Status::Ok();
  }
  if (!MakeRoom(Item::AllocSize(key.size(), value.size()), /*inserting=*/true)) {
    return Status(Code::kOutOfMemory);
  }
  Item* item = NewItem(cache_id, key, value.size(), new_expire);
  if (item == nullptr) return Status(Code::kOutOfMemory);
  // The block may be bigger than asked for (malloc rounding, mmapped chunks): make room for the
  // difference too. The new item is not in the table yet, so it cannot be evicted here.
  if (!MakeRoom(0, /*inserting=*/true)) {
    FreeItem(item);
    return Status(Code::kOutOfMemory);
  }
  if (!value.empty()) std::memcpy(item->mutable_value(), value.data(), value.size());
  table_.Insert(item, hash);
  *stored = true;
  return Status::Ok();
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

bool Engine::Delete(uint32_t cache_id, std::string_view key) {
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  if (slot == Table::kNotFound) return false;
  EraseSlot(slot);
  return true;
}

StatusOr<int64_t> Engine::IncrBy(uint32_t cache_id, std::string_view key, int64_t delta,
                                 int64_t expire_at_if_new) {
  const uint64_t hash = KeyHash(cache_id, key);
  size_t slot = FindLive(cache_id, key, hash);
  int64_t current = 0;
  if (slot != Table::kNotFound) {
    if (table_.At(slot)->is_collection()) return Status(Code::kWrongType);
    auto v = ParseInt64(table_.At(slot)->value());
    if (!v) return Status(Code::kNotInteger);
    current = *v;
  }
  int64_t result;
  if (__builtin_add_overflow(current, delta, &result)) return Status(Code::kOverflow);
  std::string s;
  AppendInt(s, result);
  bool stored = false;
  Status st = slot != Table::kNotFound || expire_at_if_new == 0
                  ? Set(cache_id, key, s, 0, api::kKeepTtl, &stored, nullptr)
                  : Set(cache_id, key, s, expire_at_if_new, api::kSetTtl, &stored, nullptr);
  if (!st.ok()) return st;
  return result;
}

StatusOr<std::string> Engine::IncrByFloat(uint32_t cache_id, std::string_view key,
                                          long double delta) {
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  long double current = 0;
  if (slot != Table::kNotFound) {
    if (table_.At(slot)->is_collection()) return Status(Code::kWrongType);
    auto v = ParseLongDouble(table_.At(slot)->value());
    if (!v) return Status(Code::kNotFloat);
    current = *v;
  }
  long double result = current + delta;
  if (std::isnan(result) || std::isinf(result)) {
    return Status(Code::kInvalidArgument, "increment would produce NaN or Infinity");
  }
  std::string s = FormatLongDouble(result);
  bool stored = false;
  Status st = Set(cache_id, key, s, 0, api::kKeepTtl, &stored, nullptr);
  if (!st.ok()) return st;
  return s;
}

StatusOr<int64_t> Engine::Append(uint32_t cache_id, std::string_view key,
                                 std::string_view value) {
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  std::string combined;
  if (slot != Table::kNotFound) {
    if (table_.At(slot)->is_collection()) return Status(Code::kWrongType);
    std::string_view cur = table_.At(slot)->value();
    if (static_cast<int64_t>(cur.size() + value.size()) > max_value_) {
      return Status(Code::kTooLarge, "string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    combined.reserve(cur.size() + value.size());
    combined.append(cur);
  }
  combined.append(value);
  bool stored = false;
  Status st = Set(cache_id, key, combined, 0, api::kKeepTtl, &stored, nullptr);
  if (!st.ok()) return st;
  return static_cast<int64_t>(combined.size());
}

StatusOr<int64_t> Engine::SetRange(uint32_t cache_id, std::string_view key, int64_t offset,
                                   std::string_view value) {
  if (offset < 0) return Status(Code::kInvalidArgument, "offset is out of range");
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  if (slot != Table::kNotFound && table_.At(slot)->is_collection()) {
    return Status(Code::kWrongType);
  }
  // Nothing to write: the current length, whatever the offset (Redis checks this first).
  if (value.empty()) {
    return slot == Table::kNotFound ? int64_t{0} : int64_t{table_.At(slot)->val_len};
  }
  // offset + size may not overflow: compare against what is left below the limit instead.
  if (static_cast<int64_t>(value.size()) > max_value_ ||
      offset > max_value_ - static_cast<int64_t>(value.size())) {
    return Status(Code::kTooLarge, "string exceeds maximum allowed size (proto-max-bulk-len)");
  }
  std::string s;
  if (slot != Table::kNotFound) s = std::string(table_.At(slot)->value());
  size_t end = static_cast<size_t>(offset) + value.size();
  if (s.size() < end) s.resize(end, '\0');
  std::memcpy(s.data() + offset, value.data(), value.size());
  bool stored = false;
  Status st = Set(cache_id, key, s, 0, api::kKeepTtl, &stored, nullptr);
  if (!st.ok()) return st;
  return static_cast<int64_t>(s.size());
}

int64_t Engine::Expire(uint32_t cache_id, std::string_view key, int64_t expire_at,
                       uint32_t flags, bool* exists) {
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  if (exists != nullptr) *exists = slot != Table::kNotFound;
  if (slot == Table::kNotFound) return 0;
  Item* item = table_.At(slot);
  const bool has = item->has_ttl();
  if ((flags & api::kNx) && has) return 0;
  if ((flags & api::kXx) && !has) return 0;
  // No TTL counts as an infinite one: GT never beats it, LT always does.
  if ((flags & api::kGt) && (!has || expire_at <= item->expire_at)) return 0;
  if ((flags & api::kLt) && has && expire_at >= item->expire_at) return 0;
  if (expire_at <= Now()) {
    EraseSlot(slot);
    return 1;
  }
  SetExpiry(item, expire_at);
  return 1;
}

Status Engine::SetIf(uint32_t cache_id, std::string_view key, std::string_view value,
                     int64_t expire_at, api::SetIfCondition cond, std::string_view check,
                     bool* stored) {
  using C = api::SetIfCondition;
  *stored = false;
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  const bool present = slot != Table::kNotFound;
  if (present && table_.At(slot)->is_collection() && cond != C::kUnconditional &&
      cond != C::kPresent && cond != C::kAbsent) {
    return Status(Code::kWrongType);  // a condition on the value of a collection
  }
  std::string_view current = present ? table_.At(slot)->value() : std::string_view();
  bool ok = false;
  switch (cond) {
    case C::kUnconditional: ok = true; break;
    case C::kPresent: ok = present; break;
    case C::kAbsent: ok = !present; break;
    case C::kEqual: ok = present && current == check; break;
    case C::kNotEqual: ok = !present || current != check; break;
    case C::kPresentAndNotEqual: ok = present && current != check; break;
    case C::kAbsentOrEqual: ok = !present || current == check; break;
    case C::kPresentAndHashEqual: ok = present && ValueHash(current) == check; break;
    case C::kPresentAndNotHashEqual: ok = present && ValueHash(current) != check; break;
    case C::kAbsentOrHashEqual: ok = !present || ValueHash(current) == check; break;
    case C::kAbsentOrNotHashEqual: ok = !present || ValueHash(current) != check; break;
  }
  if (!ok) return Status::Ok();
  return Set(cache_id, key, value, expire_at, api::kSetTtl, stored, nullptr);
}

int64_t Engine::TtlMillis(uint32_t cache_id, std::string_view key) {
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  if (slot == Table::kNotFound) return -2;
  const Item* item = table_.At(slot);
  if (!item->has_ttl()) return -1;
  return std::max<int64_t>(0, item->expire_at - Now());
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

namespace {

void GetRangeOf(std::string_view v, int64_t start, int64_t end, std::string& out) {
  const int64_t len = static_cast<int64_t>(v.size());
  if (start < 0 && end < 0 && start > end) return;
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (len == 0 || start > end) return;
  out.assign(v.substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
}

}  // namespace

void Engine::Execute(const api::Request& req, api::Reply& reply) {
  const uint32_t cid = req.cache_id;
  auto cache = caches_.find(cid);
  if (cache == caches_.end()) {
    reply.status = Status(Code::kNotFound, "cache not found");
    return;
  }
  cache->second.counters.ops++;
  if (req.op >= api::Op::kHSet) return ExecuteCollection(req, reply);
  auto wrong_type = [&](size_t slot) {
    if (slot == Table::kNotFound || !table_.At(slot)->is_collection()) return false;
    reply.status = Status(Code::kWrongType);
    return true;
  };
  switch (req.op) {
    case api::Op::kGet: {
      bool wrong = false;
      auto v = Get(cid, req.key, &wrong);
      if (wrong) {
        reply.status = Status(Code::kWrongType);
        return;
      }
      reply.found = v.has_value();
      if (v) reply.value.assign(*v);
      return;
    }
    case api::Op::kSet: {
      std::optional<std::string> old;
      reply.status = Set(cid, req.key, req.value, req.expire_at, req.flags, &reply.found,
                         (req.flags & api::kGetOld) ? &old : nullptr);
      if (old) {
        reply.value = std::move(*old);
        reply.integer = 1;  // an old value exists
      }
      return;
    }
    case api::Op::kDelete:
      reply.integer = Delete(cid, req.key) ? 1 : 0;
      return;
    case api::Op::kExists:
      reply.integer =
          FindLive(req) != Table::kNotFound ? 1 : 0;
      return;
    case api::Op::kType: {
      static constexpr const char* kNames[] = {"string", "hash", "list", "set", "zset"};
      const size_t slot = FindLive(req);
      reply.value = slot == Table::kNotFound
                        ? "none"
                        : kNames[static_cast<size_t>(table_.At(slot)->type()) % 5];
      return;
    }
    case api::Op::kIncrBy: {
      auto r = IncrBy(cid, req.key, req.integer, (req.flags & api::kSetTtl) ? req.expire_at : 0);
      if (r.ok()) reply.integer = *r; else reply.status = r.status();
      return;
    }
    case api::Op::kIncrByFloat: {
      auto r = IncrByFloat(cid, req.key, req.number);
      if (r.ok()) reply.value = std::move(*r); else reply.status = r.status();
      return;
    }
    case api::Op::kAppend: {
      auto r = Append(cid, req.key, req.value);
      if (r.ok()) reply.integer = *r; else reply.status = r.status();
      return;
    }
    case api::Op::kStrlen: {
      size_t slot = FindLive(req);
      if (wrong_type(slot)) return;
      reply.integer = slot == Table::kNotFound ? 0 : table_.At(slot)->val_len;
      return;
    }
    case api::Op::kGetRange: {
      size_t slot = FindLive(req);
      if (wrong_type(slot)) return;
      if (slot != Table::kNotFound) {
        GetRangeOf(table_.At(slot)->value(), req.integer, req.integer2, reply.value);
      }
      return;
    }
    case api::Op::kSetRange: {
      auto r = SetRange(cid, req.key, req.integer, req.value);
      if (r.ok()) reply.integer = *r; else reply.status = r.status();
      return;
    }
    case api::Op::kExpire:
      reply.integer = Expire(cid, req.key, req.expire_at, req.flags, &reply.found);
      return;
    case api::Op::kPersist: {
      size_t slot = FindLive(req);
      if (slot != Table::kNotFound && table_.At(slot)->has_ttl()) {
        SetExpiry(table_.At(slot), 0);
        reply.integer = 1;
      }
      return;
    }
    case api::Op::kTtl:
      reply.integer = TtlMillis(cid, req.key);
      return;
    case api::Op::kExpireTime: {
      size_t slot = FindLive(req);
      if (slot == Table::kNotFound) {
        reply.integer = -2;
      } else {
        int64_t at = table_.At(slot)->expire_at;
        reply.integer = at == 0 ? -1 : at;
      }
      return;
    }
    case api::Op::kGetDel: {
      size_t slot = FindLive(req);
      if (wrong_type(slot)) return;
      if (slot != Table::kNotFound) {
        reply.found = true;
        reply.value.assign(table_.At(slot)->value());
        EraseSlot(slot);
      }
      return;
    }
    case api::Op::kGetEx: {
      size_t slot = FindLive(req);
      if (wrong_type(slot)) return;
      if (slot == Table::kNotFound) return;
      Item* item = table_.At(slot);
      reply.found = true;
      reply.value.assign(item->value());
      Touch(item);
      if (req.flags & api::kPersistTtl) {
        SetExpiry(item, 0);
      } else if (req.flags & api::kSetTtl) {
        if (req.expire_at <= Now()) {
          EraseSlot(slot);
        } else {
          SetExpiry(item, req.expire_at);
        }
      }
      return;
    }
    case api::Op::kScan: {
      const int64_t now = Now();
      uint64_t cursor = static_cast<uint64_t>(req.integer);
      int64_t want = std::max<int64_t>(1, req.integer2);
      // Visit buckets until enough keys or the shard is done; bound the buckets visited too so
      // a sparse cache in a big table cannot stall the loop.
      int64_t buckets = 0;
      uint64_t work = 0;  // and the matching's work (a costly pattern ends the call sooner)
      do {
        cursor = table_.ScanBucket(
            cursor,
            [&](Item* item) {
              if (item->ExpiredAt(now)) return;
              if (!req.pattern.empty() && !MatchCounted(req.pattern, item->key(), work)) return;
              reply.keys.emplace_back(item->key());
            },
            [cid](const Item* item) { return item->cache_id == cid; });
        ++buckets;
      } while (cursor != 0 && static_cast<int64_t>(reply.keys.size()) < want &&
               buckets < want * 10 && work < kKeysSliceWork);
      reply.integer = static_cast<int64_t>(cursor);
      return;
    }
    case api::Op::kKeys: {
      // A slice of a linear sweep of the slots, from slot `integer`, ending once its work (slots
      // visited and matching) passes kKeysSliceWork; reply.integer = the next slot, 0 when the
      // sweep is done. The front-end sweeps slice by slice, so the loop is never held long.
      // Slots may move between slices (a resize): keys added or removed meanwhile may or may
      // not appear, as with SCAN.
      const int64_t now = Now();
      uint64_t work = 0;
      size_t i = static_cast<size_t>(std::max<int64_t>(0, req.integer));
      for (; i < table_.capacity() && work < kKeysSliceWork; ++i) {
        ++work;
        if (!table_.Occupied(i)) continue;
        const Item* item = table_.At(i);
        if (item->cache_id != cid || item->ExpiredAt(now)) continue;
        if (!req.pattern.empty() && !MatchCounted(req.pattern, item->key(), work)) continue;
        reply.keys.emplace_back(item->key());
      }
      reply.integer = i < table_.capacity() ? static_cast<int64_t>(i) : 0;
      return;
    }
    case api::Op::kRandomKey: {
      const auto* cc = Cache(cid);
      if (cc == nullptr || cc->items == 0) return;
      const int64_t now = Now();
      const size_t cap = table_.capacity();
      auto take = [&](size_t i) {
        if (!table_.Occupied(i)) return false;
        const Item* item = table_.At(i);
        if (item->cache_id != cid || item->ExpiredAt(now)) return false;
        reply.found = true;
        reply.value.assign(item->key());
        return true;
      };
      // Random probes first; a linear sweep from a random point guarantees an answer.
      for (int tries = 0; tries < 64; ++tries) {
        if (take(NextRandom() & (cap - 1))) return;
      }
      const size_t start = NextRandom() & (cap - 1);
      for (size_t n = 0; n < cap; ++n) {
        if (take((start + n) & (cap - 1))) return;
      }
      return;
    }
    case api::Op::kCount: {
      const auto* cc = Cache(cid);
      reply.integer = cc == nullptr ? 0 : static_cast<int64_t>(cc->items);
      return;
    }
    case api::Op::kStats: {
      EngineCounters c = Counters();
      const auto* cc = Cache(cid);
      reply.numbers = {static_cast<int64_t>(c.items),      static_cast<int64_t>(c.used_bytes),
                       static_cast<int64_t>(c.index_bytes), static_cast<int64_t>(limit_),
                       static_cast<int64_t>(c.hits),       static_cast<int64_t>(c.misses),
                       static_cast<int64_t>(c.evictions),  static_cast<int64_t>(c.expirations),
                       static_cast<int64_t>(cc->items),    static_cast<int64_t>(cc->bytes),
                       static_cast<int64_t>(cc->volatile_items)};
      return;
    }
    case api::Op::kSetIf:
      reply.status = SetIf(cid, req.key, req.value, req.expire_at,
                           static_cast<api::SetIfCondition>(req.integer), req.check, &reply.found);
      return;
    case api::Op::kFlushCache:
      reply.integer = static_cast<int64_t>(FlushCache(cid, /*forget=*/false));
      return;
    default:  // collections: ExecuteCollection above
      break;
  }
  reply.status = Status(Code::kInternal, "unknown operation");
}

}  // namespace cellar::storage
