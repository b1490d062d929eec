// The keyspace: operations on keys whatever their type (DEL, EXISTS, TYPE, EXPIRE, TTL...) and
// on the whole cache (SCAN, KEYS, RANDOMKEY, the counts and FLUSHDB), and their executor in the
// engine's table of ops (op_table.h).
#include <algorithm>

#include "common/glob.h"
#include "common/hash.h"
#include "storage/engine/engine.h"

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

bool Engine::Delete(uint32_t cache_id, std::string_view key) {
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  if (slot == Table::kNotFound) return false;
  EraseSlot(slot);
  return true;
}

Engine::ExpireResult Engine::Expire(uint32_t cache_id, std::string_view key, int64_t expire_at,
                                    uint32_t flags) {
  ExpireResult r;
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  r.existed = slot != Table::kNotFound;
  if (!r.existed) return r;
  Item* item = table_.At(slot);
  const bool has = item->has_ttl();
  if ((flags & api::kNx) && has) return r;
  if ((flags & api::kXx) && !has) return r;
  // No TTL counts as an infinite one: GT never beats it, LT always does.
  if ((flags & api::kGt) && (!has || expire_at <= item->expire_at)) return r;
  if ((flags & api::kLt) && has && expire_at >= item->expire_at) return r;
  r.changed = true;
  if (expire_at <= Now()) {
    EraseSlot(slot);
    return r;
  }
  SetExpiry(item, expire_at);
  return r;
}

int64_t Engine::TtlMillis(uint32_t cache_id, std::string_view key) {
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  if (slot == Table::kNotFound) return -2;
  const Item* item = table_.At(slot);
  if (!item->has_ttl()) return -1;
  return std::max<int64_t>(0, item->expire_at - Now());
}

void Engine::ExecuteKeyspace(const api::Request& req, api::Reply& reply) {
  const uint32_t cid = req.cache_id;
  switch (req.op) {
    case api::Op::kDelete:
      reply.integer = Delete(cid, req.key) ? 1 : 0;
      return;
    case api::Op::kExists:
      reply.integer = FindLive(req) != Table::kNotFound ? 1 : 0;
      return;
    case api::Op::kType: {
      static constexpr const char* kNames[] = {"string", "hash", "list", "set", "zset"};
      const size_t slot = FindLive(req);
      reply.value = slot == Table::kNotFound
                        ? "none"
                        : kNames[static_cast<size_t>(table_.At(slot)->type()) % 5];
      return;
    }
    case api::Op::kExpire: {
      const ExpireResult r = Expire(cid, req.key, req.expire_at, req.flags);
      reply.found = r.existed;
      reply.integer = r.changed ? 1 : 0;
      return;
    }
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
    case api::Op::kScan: {
      const int64_t now = Now();
      const api::Cursor& at = req.Get<api::Cursor>();
      uint64_t cursor = static_cast<uint64_t>(at.cursor);
      int64_t want = std::max<int64_t>(1, at.count);
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
      // A slice of a linear sweep of the slots, from slot `cursor`, ending once its work (slots
      // visited and matching) passes kKeysSliceWork; reply.integer = the next slot, 0 when the
      // sweep is done. The front-end sweeps slice by slice, so the loop is never held long.
      // Slots may move between slices (a resize): keys added or removed meanwhile may or may
      // not appear, as with SCAN.
      const int64_t now = Now();
      uint64_t work = 0;
      size_t i = static_cast<size_t>(std::max<int64_t>(0, req.Get<api::Cursor>().cursor));
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
    case api::Op::kFlushCache:
      reply.integer = static_cast<int64_t>(FlushCache(cid, /*forget=*/false));
      return;
    default:
      break;
  }
  reply.status = Status(Code::kInternal, "unknown operation");
}

}  // namespace cellar::storage
