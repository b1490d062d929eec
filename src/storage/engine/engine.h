// Engine: one shard's store. Owns a Table of Items, their memory, TTLs and eviction.
//
// Invariants: used_bytes() == sum of allocation sizes of live Items + the Table's index + the
// external charges of known caches (ChargeExternal: topic subscriptions' state); every
// Item's cache id is a known cache (CreateCache before use); per-cache item and byte counts
// sum to the shard totals, and so do per-tenant ones (each cache belongs to one tenant).
// Expired Items are removed lazily on access and by ActiveExpire.
//
// Fair eviction (on by default): under memory pressure, items of a cache above its cache share
// or of a tenant above its tenant share go first, so a tenant that fills the shard evicts
// mostly its own items. Shares are per shard and only steer the choice of victim; they never
// refuse a write.
//
// Thread: owned by one shard thread; never shared. Other threads reach it by message.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "api/request.h"
#include "common/clock.h"
#include "common/status.h"
#include "storage/engine/table.h"

namespace cellar::storage {

struct CacheCounters {
  uint64_t ops = 0;    // requests executed for this cache on this shard
  uint64_t items = 0;
  uint64_t bytes = 0;  // allocation bytes of this cache's items
  uint64_t volatile_items = 0;  // items with a TTL
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint64_t expirations = 0;
};

// One tenant's items on this shard: the sums over its caches' CacheCounters.
struct TenantCounters {
  uint64_t items = 0;
  uint64_t bytes = 0;      // allocation bytes, as CacheCounters::bytes
  uint64_t evictions = 0;
};

struct EngineCounters {
  uint64_t items = 0;
  uint64_t used_bytes = 0;
  uint64_t index_bytes = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint64_t expirations = 0;
  uint64_t oom_refusals = 0;
};

class Engine {
 public:
  // memory_limit: bytes this shard may use for items and index; 0 = unlimited.
  Engine(const Clock* clock, uint64_t memory_limit, uint64_t seed = 1);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // tenant_id 0 means none given; it is a tenant of its own for accounting and shares. Calling
  // again with another tenant moves the cache, with its items and bytes, to that tenant.
  void CreateCache(uint32_t cache_id, uint32_t tenant_id = 0);
  // Drops every item of the cache; with forget, the cache (its tenant and share) is unknown
  // afterwards.
  size_t FlushCache(uint32_t cache_id, bool forget);
  bool HasCache(uint32_t cache_id) const { return caches_.contains(cache_id); }

  // Bytes of this shard's memory the tenant is entitled to before its items are preferred as
  // victims. 0 (the default): an equal split of the memory left after the index among the
  // tenants that hold at least one byte here.
  void SetTenantShare(uint32_t tenant_id, uint64_t bytes);
  // Bytes of this shard the cache's items may hold before they are preferred as victims; 0 =
  // no cache share (only its tenant's counts). Ignored for an unknown cache.
  void SetCacheShare(uint32_t cache_id, uint64_t bytes);
  // Memory a cache holds outside the table on this shard's loop (its topic subscriptions'
  // state): charged to the cache and its tenant like items, so it counts against the memory
  // limit and the tenant's share (their items are evicted first). delta < 0 gives it back.
  // Ignored for a cache this shard does not know (FlushCache(forget) dropped its charge).
  void ChargeExternal(uint32_t cache_id, int64_t delta);
  // The tenant's share as eviction sees it now (its own, else the default; the default is 0
  // on a shard without a memory limit, where nothing is evicted).
  uint64_t TenantShare(uint32_t tenant_id) const;
  // Off: eviction ignores tenants and shares (plain sampled LRU).
  void set_fair_eviction(bool on) { fair_ = on; }
  bool fair_eviction() const { return fair_; }

  // Runs one request on this shard and fills the reply. Never throws.
  void Execute(const api::Request& req, api::Reply& reply);

  // Typed operations, with their results returned (Execute's executors call these). String
  // operations on a key holding a collection answer kWrongType.
  struct SetResult {
    bool stored = false;
    std::optional<std::string> old_value;  // with api::kGetOld: the value it replaced, if any
  };
  struct ExpireResult {
    bool existed = false;
    bool changed = false;  // the TTL was changed (or the key deleted: expire_at is past)
  };
  // The value; nullopt if the key is missing.
  StatusOr<std::optional<std::string_view>> Get(uint32_t cache_id, std::string_view key);
  // flags: api::kNx, kXx, kKeepTtl, kSetTtl (expire_at, absolute ms; 0: none), kGetOld.
  StatusOr<SetResult> Set(uint32_t cache_id, std::string_view key, std::string_view value,
                          int64_t expire_at, uint32_t flags);
  bool Delete(uint32_t cache_id, std::string_view key);
  // expire_at (absolute ms): the TTL the counter gets, whether this call creates it or not
  // (Momento's Increment); 0 keeps an existing counter's TTL and gives a new one none (INCR).
  StatusOr<int64_t> IncrBy(uint32_t cache_id, std::string_view key, int64_t delta,
                           int64_t expire_at = 0);
  // Momento's SetIf/SetIfHash: sets (value, expire_at; 0 = no TTL) when the condition holds.
  StatusOr<SetResult> SetIf(uint32_t cache_id, std::string_view key, std::string_view value,
                            int64_t expire_at, api::SetIfCondition cond, std::string_view check);
  StatusOr<std::string> IncrByFloat(uint32_t cache_id, std::string_view key, long double delta);
  StatusOr<int64_t> Append(uint32_t cache_id, std::string_view key, std::string_view value);
  StatusOr<int64_t> SetRange(uint32_t cache_id, std::string_view key, int64_t offset,
                             std::string_view value);
  // flags: api::kNx, kXx, kGt, kLt (EXPIRE's).
  ExpireResult Expire(uint32_t cache_id, std::string_view key, int64_t expire_at,
                      uint32_t flags);
  // -2: missing, -1: no TTL, else ms left.
  int64_t TtlMillis(uint32_t cache_id, std::string_view key);

  // A batch of calls reads the clock once: between BeginBatch and EndBatch every operation
  // sees the time BeginBatch read (the gateway brackets each shard's part of a batch).
  void BeginBatch() {
    batch_now_ = clock_->NowMillis();
    in_batch_ = true;
  }
  void EndBatch() { in_batch_ = false; }

  // Removes expired items, visiting at most `budget` slots. Returns items removed.
  size_t ActiveExpire(size_t budget);

  const CacheCounters* Cache(uint32_t cache_id) const;
  // Null for a tenant this shard has never heard of. A tenant is remembered once seen.
  const TenantCounters* Tenant(uint32_t tenant_id) const;
  // Tenants holding at least one byte on this shard.
  size_t active_tenants() const { return active_tenants_; }
  EngineCounters Counters() const;
  uint64_t used_bytes() const { return used_ + table_.IndexBytes(); }
  uint64_t memory_limit() const { return limit_; }
  void set_memory_limit(uint64_t bytes) { limit_ = bytes; }
  // Longest value APPEND and SETRANGE may build.
  void set_max_value_bytes(uint64_t bytes) { max_value_ = static_cast<int64_t>(bytes); }
  size_t size() const { return table_.size(); }

 private:
  struct TenantState {
    TenantCounters counters;
    uint64_t share = 0;  // bytes; 0: the default share
  };
  struct CacheState {
    CacheCounters counters;
    TenantState* tenant = nullptr;  // owned by tenants_ (stable address); set on creation
    uint64_t share = 0;             // bytes; 0: none
    uint64_t external = 0;          // of counters.bytes, state held outside the table
  };
  TenantState& TenantFor(uint32_t tenant_id);
  // The cache's record; an unknown cache gets one under tenant 0 (as caches_[id] used to).
  CacheState& CacheFor(uint32_t cache_id);
  // Every change of live bytes goes through here (delta < 0 frees), so the shard, the cache
  // and its tenant stay equal, and active_tenants_ follows tenants' 0 <-> nonzero changes.
  void Charge(CacheState& c, int64_t delta);
  uint64_t DefaultShare() const;
  // Whether the item's cache or tenant holds more than its share (default_share: DefaultShare()
  // computed once per eviction).
  bool OverShare(const Item* item, uint64_t default_share) const;

  // Slot of a live item, expiring it on the way if its TTL has passed.
  size_t FindLive(uint32_t cache_id, std::string_view key, uint64_t hash);
  size_t FindLive(const api::Request& req);
  Item* NewItem(uint32_t cache_id, std::string_view key, size_t val_len, int64_t expire_at);
  void FreeItem(Item* item);
  void EraseSlot(size_t slot);
  // Every change of an item's expiry goes through here, to keep volatile_items right.
  void SetExpiry(Item* item, int64_t expire_at);
  // Evicts until `incoming` more bytes (and, if `inserting`, the index growth one more item
  // may cause) fit under the limit. False if it cannot.
  bool MakeRoom(size_t incoming, bool inserting = false);
  bool EvictOne();
  // Whether some tenant, or some cache with a share of its own, holds more than its share.
  bool AnyOverShare(uint64_t default_share) const;
  // The oldest over-share (or expired) item of the whole table, by a sweep; kNotFound if none.
  size_t OldestOverShare(uint64_t default_share, int64_t now, uint32_t now_clock) const;
  uint32_t LruClock() const;
  void Touch(Item* item) { item->set_lru(LruClock()); }
  // Replaces the value of the item at slot with `value` (resizing the block if needed).
  Item* Rewrite(size_t slot, std::string_view value);
  // Stores a read-modify-write's result, keeping the item's TTL.
  Status Store(uint32_t cache_id, std::string_view key, std::string_view value);
  uint64_t NextRandom();
  int64_t Now() const { return in_batch_ ? batch_now_ : clock_->NowMillis(); }

  // ---- Collections (engine_collections.cc; one file per type: engine_dict.cc,
  // engine_list.cc, engine_set.cc, engine_zset.cc) ----
  struct Target {
    Item* item = nullptr;  // null: the key is missing (and was not created)
    uint64_t hash = 0;
    bool created = false;
    size_t before = 0;     // the object's bytes when opened
  };
  // The table of ops (op_table.h): each op's family and executor, one per family and file.
  struct OpEntry;
  static const OpEntry& OpOf(api::Op op);
  void ExecuteString(const api::Request& req, api::Reply& reply);    // engine_strings.cc
  void ExecuteKeyspace(const api::Request& req, api::Reply& reply);  // engine_keys.cc
  void ExecuteDict(const api::Request& req, api::Reply& reply);
  void ExecuteList(const api::Request& req, api::Reply& reply);
  void ExecuteSet(const api::Request& req, api::Reply& reply);
  void ExecuteZSet(const api::Request& req, api::Reply& reply);
  // Ops over several types: HSCAN/SSCAN/ZSCAN, SINTERSTORE-style set and sorted-set stores.
  void ExecuteAcrossTypes(const api::Request& req, api::Reply& reply);
  // Finds the collection at req.key. False (reply.status set) if the key holds another type.
  // With create, a missing key gets a new empty collection of `type`.
  bool Open(const api::Request& req, ItemType type, bool create, api::Reply& reply, Target& t);
  // After a change: accounts the object's new size, deletes an emptied collection, applies
  // the collection TTL rules.
  void Close(const api::Request& req, Target& t);
  // Evicts ahead of a write that may add about `bytes`. False (reply.status OOM) if it cannot.
  bool RoomFor(const api::Request& req, api::Reply& reply);
  size_t ObjectBytes(const Item* item) const;
  void DeleteObject(Item* item);
  void Remove(uint32_t cache_id, std::string_view key, uint64_t hash);

  const Clock* clock_;
  uint64_t limit_;
  uint64_t used_ = 0;  // allocation bytes of live items
  int64_t max_value_ = 512ll * 1024 * 1024;
  uint64_t rng_;
  int64_t now_ = 0;  // Unix ms of the current operation, read once by FindLive
  int64_t batch_now_ = 0;
  bool in_batch_ = false;
  size_t expire_cursor_ = 0;
  Table table_;
  absl::flat_hash_map<uint32_t, CacheState> caches_;
  // Boxed so CacheState::tenant stays valid across rehashing. Never erased: a tenant keeps its
  // eviction count and share, and a shard sees few tenants.
  absl::flat_hash_map<uint32_t, std::unique_ptr<TenantState>> tenants_;
  size_t active_tenants_ = 0;  // tenants with bytes > 0
  // Tenants and caches with a share of their own; with none and one active tenant, eviction
  // skips the search for over-share items (see EvictOne).
  size_t explicit_shares_ = 0;
  bool fair_ = true;
  // Evictions left to sample plainly after searches found nobody over a share, and the length
  // of the last such pause (doubles while searches keep failing). See EvictOne.
  uint32_t fair_skip_ = 0;
  uint32_t fair_backoff_ = 0;
  EngineCounters counters_;
};

}  // namespace cellar::storage
