// The engine's collection operations (api::Op kH*, kL*, kS*, kZ*): dictionaries, lists, sets
// and sorted sets. Each collection is one Item whose 8-byte value points at its object; the
// object's heap bytes are charged to the shard and the cache like an item's own bytes.
#include <malloc.h>

#include <algorithm>
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
#include "storage/engine/engine.h"
#include "storage/types/dict.h"
#include "storage/types/list.h"
#include "storage/types/set.h"
#include "storage/types/zset.h"

namespace cellar::storage {

namespace {

using api::Op;
using SetObj = ::cellar::storage::Set;  // Engine::Set is a method

template <typename T>
T* As(const Item* item) {
  return static_cast<T*>(item->object());
}

// Redis 7.0's reply form for a double score: "%.17g", and inf / -inf.
std::string FormatScore(double d) {
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%.17g", d);
  return std::string(buf, static_cast<size_t>(n));
}

// [start, end) of Redis's inclusive LRANGE/ZRANGE indices over n elements (empty: start == end).
void RedisRange(int64_t start, int64_t stop, size_t n, size_t* from, size_t* to) {
  const int64_t len = static_cast<int64_t>(n);
  if (start < 0) start += len;
  if (stop < 0) stop += len;
  if (start < 0) start = 0;
  if (start > stop || start >= len) {
    *from = *to = 0;
    return;
  }
  if (stop >= len) stop = len - 1;
  *from = static_cast<size_t>(start);
  *to = static_cast<size_t>(stop) + 1;
}

// [start, end) of a Python slice (Momento's list and sorted-set indices) over n elements.
void SliceRange(const api::Request& req, size_t n, size_t* from, size_t* to) {
  const int64_t len = static_cast<int64_t>(n);
  int64_t a = (req.flags & api::kSliceOpenStart) ? 0 : req.integer;
  int64_t b = (req.flags & api::kSliceOpenEnd) ? len : req.integer2;
  if (a < 0) a += len;
  if (b < 0) b += len;
  a = std::clamp<int64_t>(a, 0, len);
  b = std::clamp<int64_t>(b, 0, len);
  if (a >= b) {
    *from = *to = 0;
    return;
  }
  *from = static_cast<size_t>(a);
  *to = static_cast<size_t>(b);
}

void IndexRange(const api::Request& req, size_t n, size_t* from, size_t* to) {
  if (req.flags & api::kSlice) {
    SliceRange(req, n, from, to);
  } else {
    RedisRange(req.integer, req.integer2, n, from, to);
  }
}

// A lex bound in Redis's form: "-", "+", "[x" or "(x". Returns the rank boundary: for the
// minimum, the rank of the first element inside; for the maximum, one past the last.
bool LexBound(const ZSet& z, std::string_view spec, bool is_max, size_t* rank) {
  if (spec == "-") {
    *rank = 0;
    return true;
  }
  if (spec == "+") {
    *rank = z.size();
    return true;
  }
  if (spec.empty() || (spec[0] != '[' && spec[0] != '(')) return false;
  const bool inclusive = spec[0] == '[';
  std::string_view m = spec.substr(1);
  // min: elements < m (inclusive) or <= m (exclusive) come before the range.
  // max: elements <= m (inclusive) or < m (exclusive) are in or before it.
  *rank = is_max ? z.CountBelowLex(m, inclusive) : z.CountBelowLex(m, !inclusive);
  return true;
}

}  // namespace

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

void Engine::ExecuteCollection(const api::Request& req, api::Reply& reply) {
  Target t;
  const auto args = req.args;
  switch (req.op) {
    // ---- Dictionaries ----------------------------------------------------------------------
    case Op::kHSet: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kDict, true, reply, t)) return;
      Dict* d = As<Dict>(t.item);
      int64_t added = 0;
      if (req.flags & api::kNx) {
        if (args.size() >= 2 && !d->Get(args[0])) added = d->Set(args[0], args[1]) ? 1 : 0;
      } else {
        for (size_t i = 0; i + 1 < args.size(); i += 2) added += d->Set(args[i], args[i + 1]);
      }
      reply.integer = added;
      return Close(req, t);
    }
    case Op::kHGet: {
      if (!Open(req, ItemType::kDict, false, reply, t)) return;
      reply.found = t.item != nullptr;
      reply.numbers.assign(args.size(), 0);
      const Dict* d = t.item == nullptr ? nullptr : As<Dict>(t.item);
      for (size_t i = 0; i < args.size(); ++i) {
        auto v = d == nullptr ? std::nullopt : d->Get(args[i]);
        reply.items.push_back(v.value_or(std::string_view()));  // "" for a missing field
        reply.numbers[i] = v.has_value();
      }
      return;
    }
    case Op::kHGetAll: {
      if (!Open(req, ItemType::kDict, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const Dict* d = As<Dict>(t.item);
      reply.items.reserve(req.integer == 0 ? 2 * d->size() : d->size());
      d->ForEach([&](std::string_view f, std::string_view v) {
        if (req.integer != 2) reply.items.emplace_back(f);
        if (req.integer != 1) reply.items.emplace_back(v);
      });
      return;
    }
    case Op::kHDel: {
      if (!Open(req, ItemType::kDict, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      Dict* d = As<Dict>(t.item);
      for (std::string_view f : args) reply.integer += d->Erase(f);
      reply.length = static_cast<int64_t>(d->size());
      return Close(req, t);
    }
    case Op::kHLen: {
      if (!Open(req, ItemType::kDict, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>(As<Dict>(t.item)->size());
      return;
    }
    case Op::kHExists: {
      if (!Open(req, ItemType::kDict, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = !args.empty() && As<Dict>(t.item)->Get(args[0]).has_value();
      return;
    }
    case Op::kHIncrBy:
    case Op::kHIncrByFloat: {
      if (args.empty()) {
        reply.status = Status(Code::kSyntax);
        return;
      }
      if (!RoomFor(req, reply) || !Open(req, ItemType::kDict, true, reply, t)) return;
      Dict* d = As<Dict>(t.item);
      auto current = d->Get(args[0]);
      if (req.op == Op::kHIncrBy) {
        int64_t v = 0;
        if (current) {
          auto parsed = ParseInt64(*current);
          if (!parsed) {
            reply.status = Status(Code::kNotInteger, "hash value is not an integer");
            return Close(req, t);
          }
          v = *parsed;
        }
        int64_t result;
        if (__builtin_add_overflow(v, req.integer, &result)) {
          reply.status = Status(Code::kOverflow);
          return Close(req, t);
        }
        std::string text;
        AppendInt(text, result);
        d->Set(args[0], text);
        reply.integer = result;
      } else {
        long double v = 0;
        if (current) {
          auto parsed = ParseLongDouble(*current);
          if (!parsed) {
            reply.status = Status(Code::kNotFloat, "hash value is not a float");
            return Close(req, t);
          }
          v = *parsed;
        }
        const long double result = v + req.number;
        if (std::isnan(result) || std::isinf(result)) {
          reply.status = Status(Code::kInvalidArgument, "increment would produce NaN or Infinity");
          return Close(req, t);
        }
        reply.value = FormatLongDouble(result);
        d->Set(args[0], reply.value);
      }
      return Close(req, t);
    }
    case Op::kHScan:
    case Op::kSScan:
    case Op::kZScan: {
      const ItemType type = req.op == Op::kHScan  ? ItemType::kDict
                            : req.op == Op::kSScan ? ItemType::kSet
                                                   : ItemType::kZSet;
      if (!Open(req, type, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      uint64_t cursor = static_cast<uint64_t>(req.integer);
      const size_t want = static_cast<size_t>(std::max<int64_t>(1, req.integer2));
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

    // ---- Lists -------------------------------------------------------------------------------
    case Op::kLPush:
    case Op::kRPush: {
      if (!RoomFor(req, reply)) return;
      const bool create = !(req.flags & api::kXx);
      if (!Open(req, ItemType::kList, create, reply, t)) return;
      if (t.item == nullptr) return;  // LPUSHX on a missing key: 0
      List* l = As<List>(t.item);
      if (req.op == Op::kRPush) {
        for (std::string_view v : args) l->PushBack(v);
        if (req.integer2 > 0) {
          while (l->size() > static_cast<size_t>(req.integer2)) l->PopFront(nullptr);
        }
      } else {
        if (req.flags & api::kKeepOrder) {
          for (size_t i = args.size(); i-- > 0;) l->PushFront(args[i]);
        } else {
          for (std::string_view v : args) l->PushFront(v);
        }
        if (req.integer2 > 0) {
          while (l->size() > static_cast<size_t>(req.integer2)) l->PopBack(nullptr);
        }
      }
      reply.integer = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLPop:
    case Op::kRPop: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      List* l = As<List>(t.item);
      const size_t n = req.integer < 0 ? 1 : std::min<size_t>(req.integer, l->size());
      reply.items.reserve(n);
      std::string element;
      for (size_t i = 0; i < n; ++i) {
        if (req.op == Op::kLPop) {
          l->PopFront(&element);
        } else {
          l->PopBack(&element);
        }
        reply.items.push_back(element);
      }
      reply.length = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLRange: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const List* l = As<List>(t.item);
      size_t from, to;
      IndexRange(req, l->size(), &from, &to);
      reply.items.reserve(to - from);
      l->ForRange(from, to, [&](std::string_view v) { reply.items.emplace_back(v); });
      return;
    }
    case Op::kLLen: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>(As<List>(t.item)->size());
      return;
    }
    case Op::kLIndex: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      const List* l = As<List>(t.item);
      int64_t i = req.integer < 0 ? req.integer + static_cast<int64_t>(l->size()) : req.integer;
      if (i < 0 || i >= static_cast<int64_t>(l->size())) return;
      reply.found = true;
      reply.value.assign(l->At(static_cast<size_t>(i)));
      return;
    }
    case Op::kLSet: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kList, false, reply, t)) return;
      if (t.item == nullptr) {
        reply.status = Status(Code::kNotFound, "no such key");
        return;
      }
      List* l = As<List>(t.item);
      int64_t i = req.integer < 0 ? req.integer + static_cast<int64_t>(l->size()) : req.integer;
      if (i < 0 || i >= static_cast<int64_t>(l->size())) {
        reply.status = Status(Code::kInvalidArgument, "index out of range");
        return;
      }
      l->Set(static_cast<size_t>(i), req.value);
      return Close(req, t);
    }
    case Op::kLRem: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      List* l = As<List>(t.item);
      reply.integer = static_cast<int64_t>(l->Remove(req.value, req.integer));
      reply.length = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLTrim: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      List* l = As<List>(t.item);
      size_t from, to;
      IndexRange(req, l->size(), &from, &to);
      l->Trim(from, to);
      reply.length = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLInsert: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kList, false, reply, t)) return;
      if (t.item == nullptr) return;  // 0
      List* l = As<List>(t.item);
      int64_t at = -1;
      l->Find(req.check, false, 0, [&](size_t i) {
        at = static_cast<int64_t>(i);
        return false;
      });
      if (at < 0) {
        reply.integer = -1;
        return;
      }
      l->Insert(static_cast<size_t>(at) + (req.integer == 1 ? 1 : 0), req.value);
      reply.integer = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLPos: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const List* l = As<List>(t.item);
      const int64_t rank = req.integer == 0 ? 1 : req.integer;
      int64_t skip = (rank < 0 ? -rank : rank) - 1;
      const int64_t want = req.integer2 < 0 ? 1 : req.integer2;  // 0: all
      l->Find(req.value, rank < 0, static_cast<size_t>(std::max<int64_t>(0, req.integer3)),
              [&](size_t i) {
                if (skip > 0) {
                  --skip;
                  return true;
                }
                reply.numbers.push_back(static_cast<int64_t>(i));
                return want == 0 || static_cast<int64_t>(reply.numbers.size()) < want;
              });
      return;
    }
    case Op::kLErase: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      List* l = As<List>(t.item);
      if (req.integer == 1) {
        l->Trim(0, 0);
      } else {
        // Ranges index the list as it was: erase from the highest start down.
        std::vector<std::pair<int64_t, int64_t>> ranges;
        for (size_t i = 0; i + 1 < req.numbers.size(); i += 2) {
          ranges.emplace_back(req.numbers[i], req.numbers[i + 1]);
        }
        std::sort(ranges.begin(), ranges.end(), std::greater<>());
        for (auto [begin, count] : ranges) {
          if (begin < 0 || count <= 0 || static_cast<size_t>(begin) >= l->size()) continue;
          l->Erase(static_cast<size_t>(begin), static_cast<size_t>(count));
        }
      }
      reply.length = static_cast<int64_t>(l->size());
      return Close(req, t);
    }

    // ---- Sets --------------------------------------------------------------------------------
    case Op::kSAdd: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kSet, true, reply, t)) return;
      SetObj* s = As<SetObj>(t.item);
      for (std::string_view m : args) reply.integer += s->Add(m);
      return Close(req, t);
    }
    case Op::kSRem: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      SetObj* s = As<SetObj>(t.item);
      for (std::string_view m : args) reply.integer += s->Erase(m);
      reply.length = static_cast<int64_t>(s->size());
      return Close(req, t);
    }
    case Op::kSMembers: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const SetObj* s = As<SetObj>(t.item);
      reply.items.reserve(s->size());
      s->ForEach([&](std::string_view m) { reply.items.emplace_back(m); });
      return;
    }
    case Op::kSContains: {
      if (!Open(req, ItemType::kSet, false, reply, t)) return;
      reply.numbers.assign(args.size(), 0);
      if (t.item == nullptr) return;
      reply.found = true;
      const SetObj* s = As<SetObj>(t.item);
      for (size_t i = 0; i < args.size(); ++i) reply.numbers[i] = s->Contains(args[i]);
      return;
    }
    case Op::kSCard: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>(As<SetObj>(t.item)->size());
      return;
    }
    case Op::kSPop: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      SetObj* s = As<SetObj>(t.item);
      const size_t n = req.integer < 0 ? 1 : std::min<size_t>(req.integer, s->size());
      auto rng = [this] { return NextRandom(); };
      if (n == s->size()) {
        s->ForEach([&](std::string_view m) { reply.items.emplace_back(m); });
        for (std::string_view m : reply.items) s->Erase(m);
      } else {
        for (size_t i = 0; i < n; ++i) {
          reply.items.emplace_back(s->Random(rng));
          s->Erase(reply.items.back());
        }
      }
      return Close(req, t);
    }
    case Op::kSRandMember: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const SetObj* s = As<SetObj>(t.item);
      auto rng = [this] { return NextRandom(); };
      if (req.flags & api::kNoCount) {
        reply.items.emplace_back(s->Random(rng));
        return;
      }
      if (req.integer < 0) {  // repeats allowed
        constexpr int64_t kMaxRepeats = int64_t{1} << 24;  // a reply, not a memory bomb
        if (req.integer < -kMaxRepeats) {
          reply.status = Status(Code::kInvalidArgument, "value is out of range");
          return;
        }
        const uint64_t n = static_cast<uint64_t>(-req.integer);
        // Stops once the reply's byte cap is passed (the reply is refused then).
        for (uint64_t i = 0; i < n && !reply.items.overflowed(); ++i) {
          reply.items.emplace_back(s->Random(rng));
        }
        return;
      }
      const size_t n = std::min<size_t>(static_cast<size_t>(req.integer), s->size());
      if (n * 3 >= s->size()) {  // a large share: take all, then keep n at random
        std::vector<std::string_view> all;
        all.reserve(s->size());
        s->ForEach([&](std::string_view m) { all.push_back(m); });
        for (size_t i = 0; i < n; ++i) {  // partial Fisher-Yates
          std::swap(all[i], all[i + NextRandom() % (all.size() - i)]);
          reply.items.push_back(all[i]);
        }
        return;
      }
      absl::flat_hash_set<std::string_view> seen;
      while (reply.items.size() < n) {
        std::string_view m = s->Random(rng);
        if (seen.insert(m).second) reply.items.emplace_back(m);
      }
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

    // ---- Sorted sets -------------------------------------------------------------------------
    case Op::kZAdd: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kZSet, true, reply, t)) return;
      ZSet* z = As<ZSet>(t.item);
      int64_t added = 0, changed = 0;
      for (size_t i = 0; i < args.size() && i < req.scores.size(); ++i) {
        double score = req.scores[i];
        auto old = z->Score(args[i]);
        if (old) {
          if (req.flags & api::kNx) continue;
          if (req.flags & api::kIncr) {
            score += *old;
            if (std::isnan(score)) {
              reply.status = Status(Code::kNotFloat, "resulting score is not a number (NaN)");
              return Close(req, t);
            }
          }
          if ((req.flags & api::kGt) && !(score > *old)) continue;
          if ((req.flags & api::kLt) && !(score < *old)) continue;
          if (score != *old) {
            z->Insert(args[i], score);
            ++changed;
          }
        } else {
          if (req.flags & api::kXx) continue;
          z->Insert(args[i], score);
          ++added;
        }
        if (req.flags & api::kIncr) {
          reply.found = true;
          reply.scores.push_back(score);  // as computed: Redis answers -0 here
        }
      }
      reply.integer = added + ((req.flags & api::kCh) ? changed : 0);
      return Close(req, t);
    }
    case Op::kZIncrBy: {
      if (args.empty()) {
        reply.status = Status(Code::kSyntax);
        return;
      }
      if (!RoomFor(req, reply) || !Open(req, ItemType::kZSet, true, reply, t)) return;
      ZSet* z = As<ZSet>(t.item);
      const double score = z->Score(args[0]).value_or(0.0) + static_cast<double>(req.number);
      if (std::isnan(score)) {
        reply.status = Status(Code::kNotFloat, "resulting score is not a number (NaN)");
        return Close(req, t);
      }
      z->Insert(args[0], score);
      reply.found = true;
      reply.scores.push_back(score);  // as computed: Redis answers -0 here
      return Close(req, t);
    }
    case Op::kZRem: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      ZSet* z = As<ZSet>(t.item);
      for (std::string_view m : args) reply.integer += z->Erase(m);
      reply.length = static_cast<int64_t>(z->size());
      return Close(req, t);
    }
    case Op::kZScore: {
      if (!Open(req, ItemType::kZSet, false, reply, t)) return;
      reply.numbers.assign(args.size(), 0);
      reply.scores.assign(args.size(), 0.0);
      if (t.item == nullptr) return;
      reply.found = true;
      const ZSet* z = As<ZSet>(t.item);
      for (size_t i = 0; i < args.size(); ++i) {
        if (auto s = z->Score(args[i])) {
          reply.numbers[i] = 1;
          reply.scores[i] = *s;
        }
      }
      return;
    }
    case Op::kZCard: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>(As<ZSet>(t.item)->size());
      return;
    }
    case Op::kZCount: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const ZSet* z = As<ZSet>(t.item);
      const size_t a = z->CountBelow(req.lo, (req.flags & api::kLoExclusive) != 0);
      const size_t b = z->CountBelow(req.hi, (req.flags & api::kHiExclusive) == 0);
      reply.integer = b > a ? static_cast<int64_t>(b - a) : 0;
      return;
    }
    case Op::kZRange: {
      const size_t slot = (req.flags & api::kAcceptSet) ? FindLive(req) : Table::kNotFound;
      if (slot != Table::kNotFound && table_.At(slot)->type() == ItemType::kSet) {
        reply.found = true;
        As<SetObj>(table_.At(slot))->ForEach([&](std::string_view m) {
          reply.items.emplace_back(m);
          reply.scores.push_back(1.0);
        });
        return;
      }
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const ZSet* z = As<ZSet>(t.item);
      const size_t n = z->size();
      const bool rev = (req.flags & api::kRev) != 0;
      size_t from = 0, to = 0;  // in the order of the answer (rev ranks when rev)
      if (req.flags & (api::kByScore | api::kByLex)) {
        size_t a, b;  // ascending ranks [a, b)
        if (req.flags & api::kByScore) {
          a = z->CountBelow(req.lo, (req.flags & api::kLoExclusive) != 0);
          b = z->CountBelow(req.hi, (req.flags & api::kHiExclusive) == 0);
        } else {
          if (args.size() < 2 || !LexBound(*z, args[0], false, &a) ||
              !LexBound(*z, args[1], true, &b)) {
            reply.status = Status(Code::kSyntax, "min or max not valid string range item");
            return;
          }
        }
        if (b < a) b = a;
        from = rev ? n - b : a;
        to = rev ? n - a : b;
        const size_t offset = static_cast<size_t>(std::max<int64_t>(0, req.integer3));
        from = std::min(to, from + std::min(offset, to - from));
        if (req.number >= 0 && req.number < static_cast<long double>(to - from)) {
          to = from + static_cast<size_t>(req.number);
        }
      } else {
        IndexRange(req, n, &from, &to);
      }
      const bool with_scores = (req.flags & api::kWithScores) != 0;
      reply.items.reserve(to - from);
      if (with_scores) reply.scores.reserve(to - from);
      z->ForRankRange(from, to, rev, [&](std::string_view m, double score) {
        reply.items.emplace_back(m);
        if (with_scores) reply.scores.push_back(score);
      });
      return;
    }
    case Op::kZRank: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr || args.empty()) return;
      const ZSet* z = As<ZSet>(t.item);
      reply.length = static_cast<int64_t>(z->size());
      auto rank = z->Rank(args[0]);
      if (!rank) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>((req.flags & api::kRev) ? z->size() - 1 - *rank : *rank);
      reply.scores.push_back(z->Score(args[0]).value_or(0.0));
      return;
    }
    case Op::kZPopMin:
    case Op::kZPopMax: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      ZSet* z = As<ZSet>(t.item);
      const size_t n = req.integer < 0 ? 1 : static_cast<size_t>(req.integer);
      z->PopMin(n, req.op == Op::kZPopMax, [&](std::string_view m, double score) {
        reply.items.emplace_back(m);
        reply.scores.push_back(score);
      });
      return Close(req, t);
    }
    default:
      break;
  }
  reply.status = Status(Code::kInternal, "unknown operation");
}

}  // namespace cellar::storage
