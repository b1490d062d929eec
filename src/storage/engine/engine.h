// Engine: one shard's store. Owns a Table of Items, their memory, TTLs and eviction.
//
// Invariants: used_bytes() == sum of allocation sizes of live Items + the Table's index; every
// Item's cache id is a known cache (CreateCache before use); per-cache item and byte counts
// sum to the shard totals. Expired Items are removed lazily on access and by ActiveExpire.
//
// Thread: owned by one shard thread; never shared. Other threads reach it by message.
#pragma once

#include <cstdint>
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

  void CreateCache(uint32_t cache_id);
  // Drops every item of the cache; with forget, the cache is unknown afterwards.
  size_t FlushCache(uint32_t cache_id, bool forget);
  bool HasCache(uint32_t cache_id) const { return caches_.contains(cache_id); }

  // Runs one request on this shard and fills the reply. Never throws.
  void Execute(const api::Request& req, api::Reply& reply);

  // Typed operations (Execute dispatches to these). String operations on a key holding a
  // collection answer kWrongType (Get: std::nullopt with *wrong_type set).
  std::optional<std::string_view> Get(uint32_t cache_id, std::string_view key,
                                      bool* wrong_type = nullptr);
  Status Set(uint32_t cache_id, std::string_view key, std::string_view value, int64_t expire_at,
             uint32_t flags, bool* stored, std::optional<std::string>* old_value);
  bool Delete(uint32_t cache_id, std::string_view key);
  // expire_at_if_new: the TTL a counter created by this call gets (0: none).
  StatusOr<int64_t> IncrBy(uint32_t cache_id, std::string_view key, int64_t delta,
                           int64_t expire_at_if_new = 0);
  // Momento's SetIf/SetIfHash: sets (value, expire_at; 0 = no TTL) when the condition holds.
  Status SetIf(uint32_t cache_id, std::string_view key, std::string_view value, int64_t expire_at,
               api::SetIfCondition cond, std::string_view check, bool* stored);
  StatusOr<std::string> IncrByFloat(uint32_t cache_id, std::string_view key, long double delta);
  StatusOr<int64_t> Append(uint32_t cache_id, std::string_view key, std::string_view value);
  StatusOr<int64_t> SetRange(uint32_t cache_id, std::string_view key, int64_t offset,
                             std::string_view value);
  // Returns 1 if the TTL was changed (or the key deleted because expire_at is past), else 0.
  // exists (optional): set to whether the key was there.
  int64_t Expire(uint32_t cache_id, std::string_view key, int64_t expire_at, uint32_t flags,
                 bool* exists = nullptr);
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
  EngineCounters Counters() const;
  uint64_t used_bytes() const { return used_ + table_.IndexBytes(); }
  uint64_t memory_limit() const { return limit_; }
  void set_memory_limit(uint64_t bytes) { limit_ = bytes; }
  // Longest value APPEND and SETRANGE may build.
  void set_max_value_bytes(uint64_t bytes) { max_value_ = static_cast<int64_t>(bytes); }
  size_t size() const { return table_.size(); }

 private:
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
  uint32_t LruClock() const;
  void Touch(Item* item) { item->set_lru(LruClock()); }
  // Replaces the value of the item at slot with `value` (resizing the block if needed).
  Item* Rewrite(size_t slot, std::string_view value);
  uint64_t NextRandom();
  int64_t Now() const { return in_batch_ ? batch_now_ : clock_->NowMillis(); }

  // ---- Collections (engine_collections.cc) ----
  struct Target {
    Item* item = nullptr;  // null: the key is missing (and was not created)
    uint64_t hash = 0;
    bool created = false;
    size_t before = 0;     // the object's bytes when opened
  };
  void ExecuteCollection(const api::Request& req, api::Reply& reply);
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
  absl::flat_hash_map<uint32_t, CacheCounters> caches_;
  EngineCounters counters_;
};

}  // namespace cellar::storage
