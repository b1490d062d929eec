// The engine's collection operations (api::Op kH*, kL*, kS*, kZ*): dictionaries, lists, sets
// and sorted sets. Each collection is one Item whose 8-byte value points at its object; the
// object's heap bytes are charged to the shard and the cache like an item's own bytes.
#include <malloc.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include <absl/container/flat_hash_set.h>

#include "common/glob.h"
#include "common/hash.h"
#include "common/numbers.h"
#include "storage/engine/collection_util.h"
#include "storage/engine/engine.h"
#include "storage/types/dict.h"
#include "storage/types/list.h"
#include "storage/types/set.h"
#include "storage/types/zset.h"

namespace cellar::storage {

using namespace collections;  // NOLINT: the collection files' shared vocabulary

size_t Engine::ObjectBytes(const Item* item) const {
  void* obj = item->object();
  const size_t self = malloc_usable_size(obj);
  switch (item->type()) {
    case ItemType::kDict: return self + static_cast<const Dict*>(obj)->bytes();
    case ItemType::kList: return self + static_cast<const List*>(obj)->bytes();
    case ItemType::kSet: return self + static_cast<const SetObj*>(obj)->bytes();
    case ItemType::kZSet: return self + static_cast<const ZSet*>(obj)->bytes();
    case ItemType::kString: break;
  }
  return 0;
}

void Engine::DeleteObject(Item* item) {
  void* obj = item->object();
  switch (item->type()) {
    case ItemType::kDict: static_cast<Dict*>(obj)->~Dict(); break;
    case ItemType::kList: static_cast<List*>(obj)->~List(); break;
    case ItemType::kSet: static_cast<SetObj*>(obj)->~SetObj(); break;
    case ItemType::kZSet: static_cast<ZSet*>(obj)->~ZSet(); break;
    case ItemType::kString: return;
  }
  std::free(obj);
}

namespace {

template <typename T>
void* NewObject() {
  void* mem = std::malloc(sizeof(T));
  if (mem == nullptr) return nullptr;
  return new (mem) T();
}

size_t ArgBytes(const api::Request& req) {
  size_t n = req.key.size() + req.value.size() + 64;
  for (std::string_view a : req.args) n += a.size() + 32;
  n += req.scores.size() * 8;
  return n;
}

}  // namespace

bool Engine::RoomFor(const api::Request& req, api::Reply& reply) {
  if (MakeRoom(ArgBytes(req), /*inserting=*/true)) return true;
  reply.status = Status(Code::kOutOfMemory);
  return false;
}

bool Engine::Open(const api::Request& req, ItemType type, bool create, api::Reply& reply,
                  Target& t) {
  t = Target();
  t.hash = KeyHash(req.cache_id, req.key);
  size_t slot = FindLive(req.cache_id, req.key, t.hash);
  if (slot != Table::kNotFound) {
    Item* item = table_.At(slot);
    if (item->type() != type) {
      reply.status = Status(Code::kWrongType);
      return false;
    }
    Touch(item);
    t.item = item;
    t.before = ObjectBytes(item);
    return true;
  }
  if (!create) return true;
  Item* item = NewItem(req.cache_id, req.key, sizeof(void*), 0);
  void* obj = nullptr;
  if (item != nullptr) {
    switch (type) {
      case ItemType::kDict: obj = NewObject<Dict>(); break;
      case ItemType::kList: obj = NewObject<List>(); break;
      case ItemType::kSet: obj = NewObject<SetObj>(); break;
      case ItemType::kZSet: obj = NewObject<ZSet>(); break;
      case ItemType::kString: break;
    }
  }
  if (obj == nullptr) {
    if (item != nullptr) FreeItem(item);
    reply.status = Status(Code::kOutOfMemory);
    return false;
  }
  std::memcpy(item->mutable_value(), &obj, sizeof obj);
  item->set_type(type);
  // NewItem charged the item block; the object is charged here.
  t.before = ObjectBytes(item);
  Charge(CacheFor(req.cache_id), static_cast<int64_t>(t.before));
  table_.Insert(item, t.hash);
  t.item = item;
  t.created = true;
  return true;
}

void Engine::Remove(uint32_t cache_id, std::string_view key, uint64_t hash) {
  size_t slot = table_.Find(cache_id, key, hash);
  if (slot != Table::kNotFound) EraseSlot(slot);
}

void Engine::Close(const api::Request& req, Target& t) {
  Item* item = t.item;
  if (item == nullptr) return;
  const size_t after = ObjectBytes(item);
  Charge(CacheFor(req.cache_id), static_cast<int64_t>(after) - static_cast<int64_t>(t.before));
  t.before = after;
  size_t n = 0;
  switch (item->type()) {
    case ItemType::kDict: n = As<Dict>(item)->size(); break;
    case ItemType::kList: n = As<List>(item)->size(); break;
    case ItemType::kSet: n = As<SetObj>(item)->size(); break;
    case ItemType::kZSet: n = As<ZSet>(item)->size(); break;
    case ItemType::kString: n = 1; break;
  }
  if (n == 0) {  // an emptied (or never filled) collection does not exist
    Remove(req.cache_id, req.key, t.hash);
    t.item = nullptr;
    return;
  }
  if (req.flags & api::kSetTtl) {
    if (t.created || (req.flags & api::kRefreshTtl)) SetExpiry(item, req.expire_at);
  }
}

// HSCAN/SSCAN/ZSCAN and the set and sorted-set stores: the ops of several item types.
void Engine::ExecuteAcrossTypes(const api::Request& req, api::Reply& reply) {
  Target t;
  const auto args = req.args;
  switch (req.op) {
    case Op::kHScan:
    case Op::kSScan:
    case Op::kZScan: {
      const ItemType type = req.op == Op::kHScan  ? ItemType::kDict
                            : req.op == Op::kSScan ? ItemType::kSet
                                                   : ItemType::kZSet;
      if (!Open(req, type, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const api::Cursor& at = req.Get<api::Cursor>();
      uint64_t cursor = static_cast<uint64_t>(at.cursor);
      const size_t want = static_cast<size_t>(std::max<int64_t>(1, at.count));
      const size_t per = req.op == Op::kSScan ? 1 : 2;
      // A MATCH with an empty pattern is a pattern too (it matches only empty strings): the
      // front-end leaves `pattern` null when no MATCH was given.
      const bool any = req.pattern.data() == nullptr;
      auto match = [&](std::string_view s) { return any || GlobMatch(req.pattern, s); };
      size_t buckets = 0;
      do {
        if (type == ItemType::kDict) {
          cursor = As<Dict>(t.item)->Scan(cursor, [&](std::string_view f, std::string_view v) {
            if (!match(f)) return;
            reply.items.emplace_back(f);
            reply.items.emplace_back(v);
          });
        } else if (type == ItemType::kSet) {
          cursor = As<SetObj>(t.item)->Scan(cursor, [&](std::string_view m) {
            if (match(m)) reply.items.emplace_back(m);
          });
        } else {
          cursor = As<ZSet>(t.item)->Scan(cursor, [&](std::string_view m, double score) {
            if (!match(m)) return;
            reply.items.emplace_back(m);
            reply.items.push_back(FormatScore(score));
          });
        }
        ++buckets;
      } while (cursor != 0 && reply.items.size() / per < want && buckets < want * 10);
      reply.integer = static_cast<int64_t>(cursor);
      return;
    }
    case Op::kSStore:
    case Op::kZStore: {
      if (!RoomFor(req, reply)) return;
      t.hash = KeyHash(req.cache_id, req.key);
      FindLive(req.cache_id, req.key, t.hash);  // sets now_ and drops an expired key
      Remove(req.cache_id, req.key, t.hash);    // STORE replaces whatever was there
      if (args.empty()) return;
      const ItemType type = req.op == Op::kSStore ? ItemType::kSet : ItemType::kZSet;
      if (!Open(req, type, true, reply, t)) return;
      if (type == ItemType::kSet) {
        SetObj* s = As<SetObj>(t.item);
        for (std::string_view m : args) s->Add(m);
        reply.integer = static_cast<int64_t>(s->size());
      } else {
        ZSet* z = As<ZSet>(t.item);
        for (size_t i = 0; i < args.size() && i < req.scores.size(); ++i) {
          z->Insert(args[i], req.scores[i]);
        }
        reply.integer = static_cast<int64_t>(z->size());
      }
      return Close(req, t);
    }
    default:
      break;
  }
  reply.status = Status(Code::kInternal, "unknown operation");
}

}  // namespace cellar::storage
