// Strings: the scalar item operations (GET, SET, INCRBY, APPEND, SETRANGE, Momento's SetIf...)
// and their executor in the engine's table of ops (op_table.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "common/hash.h"
#include "common/numbers.h"
#include "storage/engine/engine.h"

namespace cellar::storage {

StatusOr<std::optional<std::string_view>> Engine::Get(uint32_t cache_id, std::string_view key) {
  size_t slot = FindLive(cache_id, key, KeyHash(cache_id, key));
  CacheCounters& cc = CacheFor(cache_id).counters;
  if (slot == Table::kNotFound) {
    counters_.misses++;
    cc.misses++;
    return std::optional<std::string_view>();
  }
  Item* item = table_.At(slot);
  if (item->is_collection()) return Status(Code::kWrongType);
  Touch(item);
  counters_.hits++;
  cc.hits++;
  return std::optional<std::string_view>(item->value());
}

StatusOr<Engine::SetResult> Engine::Set(uint32_t cache_id, std::string_view key,
                                        std::string_view value, int64_t expire_at,
                                        uint32_t flags) {
  SetResult r;
  const uint64_t hash = KeyHash(cache_id, key);
  size_t slot = FindLive(cache_id, key, hash);
  const bool exists = slot != Table::kNotFound;
  const bool collection = exists && table_.At(slot)->is_collection();
  if (flags & api::kGetOld) {
    if (collection) return Status(Code::kWrongType);
    if (exists) r.old_value = std::string(table_.At(slot)->value());
  }
  if ((flags & api::kNx) && exists) return r;
  if ((flags & api::kXx) && !exists) return r;

  int64_t new_expire = 0;
  if (flags & api::kKeepTtl) {
    new_expire = exists ? table_.At(slot)->expire_at : 0;
  } else if (flags & api::kSetTtl) {
    new_expire = expire_at;
  }
  if (new_expire != 0 && new_expire <= now_) {
    // An absolute expiry in the past: the write succeeds and the key is gone at once.
    if (exists) EraseSlot(slot);
    r.stored = true;
    return r;
  }
  if (collection) {  // SET replaces a collection with a string
    EraseSlot(slot);
    slot = Table::kNotFound;
  }
  if (slot != Table::kNotFound) {
    Item* item = Rewrite(slot, value);
    if (item == nullptr) return Status(Code::kOutOfMemory);
    SetExpiry(item, new_expire);
    r.stored = true;
    return r;
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
  r.stored = true;
  return r;
}

// The read-modify-write operations store their result keeping the item's TTL.
Status Engine::Store(uint32_t cache_id, std::string_view key, std::string_view value) {
  auto r = Set(cache_id, key, value, 0, api::kKeepTtl);
  return r.ok() ? Status::Ok() : r.status();
}

StatusOr<int64_t> Engine::IncrBy(uint32_t cache_id, std::string_view key, int64_t delta,
                                 int64_t expire_at) {
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
  if (expire_at != 0) {  // Momento's Increment: the item gets this TTL, new or not
    auto r = Set(cache_id, key, s, expire_at, api::kSetTtl);
    if (!r.ok()) return r.status();
    return result;
  }
  if (Status st = Store(cache_id, key, s); !st.ok()) return st;
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
  if (Status st = Store(cache_id, key, s); !st.ok()) return st;
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
  if (Status st = Store(cache_id, key, combined); !st.ok()) return st;
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
  if (Status st = Store(cache_id, key, s); !st.ok()) return st;
  return static_cast<int64_t>(s.size());
}

StatusOr<Engine::SetResult> Engine::SetIf(uint32_t cache_id, std::string_view key,
                                          std::string_view value, int64_t expire_at,
                                          api::SetIfCondition cond, std::string_view check) {
  using C = api::SetIfCondition;
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
  if (!ok) return SetResult{};
  return Set(cache_id, key, value, expire_at, api::kSetTtl);
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

// A typed result into the reply: its value into `field`, or its status.
template <typename T>
void Answer(StatusOr<T>&& r, api::Reply& reply, T api::Reply::*field) {
  if (r.ok()) reply.*field = std::move(*r); else reply.status = r.status();
}

}  // namespace

void Engine::ExecuteString(const api::Request& req, api::Reply& reply) {
  const uint32_t cid = req.cache_id;
  // The ops below that read a string in place: a collection at the key answers kWrongType.
  auto wrong_type = [&](size_t slot) {
    if (slot == Table::kNotFound || !table_.At(slot)->is_collection()) return false;
    reply.status = Status(Code::kWrongType);
    return true;
  };
  switch (req.op) {
    case api::Op::kGet: {
      auto r = Get(cid, req.key);
      if (!r.ok()) {
        reply.status = r.status();
        return;
      }
      reply.found = r->has_value();
      if (reply.found) reply.value.assign(**r);
      return;
    }
    case api::Op::kSet: {
      auto r = Set(cid, req.key, req.value, req.expire_at, req.flags);
      if (!r.ok()) {
        reply.status = r.status();
        return;
      }
      reply.found = r->stored;
      if (r->old_value) {
        reply.value = std::move(*r->old_value);
        reply.integer = 1;  // an old value exists
      }
      return;
    }
    case api::Op::kSetIf: {
      auto r = SetIf(cid, req.key, req.value, req.expire_at, req.Get<api::Condition>().cond,
                     req.check);
      if (r.ok()) reply.found = r->stored; else reply.status = r.status();
      return;
    }
    case api::Op::kIncrBy:
      return Answer(IncrBy(cid, req.key, req.Get<api::Delta>().by,
                           (req.flags & api::kSetTtl) ? req.expire_at : 0),
                    reply, &api::Reply::integer);
    case api::Op::kIncrByFloat:
      return Answer(IncrByFloat(cid, req.key, req.Get<api::FloatDelta>().by), reply,
                    &api::Reply::value);
    case api::Op::kAppend:
      return Answer(Append(cid, req.key, req.value), reply, &api::Reply::integer);
    case api::Op::kSetRange:
      return Answer(SetRange(cid, req.key, req.Get<api::Position>().index, req.value), reply,
                    &api::Reply::integer);
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
        const api::IndexRange& range = req.Get<api::IndexRange>();
        GetRangeOf(table_.At(slot)->value(), range.start, range.stop, reply.value);
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
    default:
      break;
  }
  reply.status = Status(Code::kInternal, "unknown operation");
}

}  // namespace cellar::storage
