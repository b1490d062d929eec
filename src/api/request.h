// Protocol-neutral requests and replies. Front-ends (RESP now, gRPC and HTTP later) turn wire
// requests into these; the gateway routes them to the shard that owns the key; the shard's
// engine fills in the Reply; the front-end encodes it with its own status-to-wire table.
//
// Borrowing rule: every string_view in a Request points into the front-end's receive buffer,
// which stays untouched until every Reply of the batch has come back.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api/item_list.h"
#include "common/check.h"
#include "common/status.h"

namespace cellar::api {

enum class Op : uint8_t {
  kGet,          // -> found, value
  kSet,          // value, expire_at/flags -> found (stored), old value if kGetOld
  kDelete,       // -> integer (0/1)
  kExists,       // -> integer (0/1)
  kType,         // -> value ("none"/"string")
  kIncrBy,       // Delta -> integer
  kIncrByFloat,  // FloatDelta -> value (formatted)
  kAppend,       // value -> integer (new length)
  kStrlen,       // -> integer
  kGetRange,     // IndexRange (inclusive, negative from the end) -> value
  kSetRange,     // Position (byte offset), value -> integer (new length)
  kExpire,       // expire_at (absolute ms), flags NX/XX/GT/LT -> integer (0/1)
  kPersist,      // -> integer (0/1)
  kTtl,          // -> integer: ms left, -1 no TTL, -2 missing
  kExpireTime,   // -> integer: absolute ms, -1 no TTL, -2 missing
  kGetDel,       // -> found, value
  kGetEx,        // expire_at/flags (kPersist or kSetTtl) -> found, value
  kScan,         // shard's part of SCAN: Cursor (a bucket cursor), pattern
                 // -> keys, integer = next bucket cursor (0: this shard done)
  kKeys,         // a slice of the shard's part of KEYS: Cursor (the slot to start at), pattern
                 // -> keys, integer = the next slot (0: this shard done)
  kRandomKey,    // -> found, value
  kCount,        // items of the cache on this shard -> integer
  kFlushCache,   // drops every item of the cache on this shard -> integer (items removed)
  kStats,        // this shard's counters -> numbers, indexed by StatIndex
  kSetIf,        // Condition, check = value or hash to compare, value,
                 // expire_at/kSetTtl -> found (stored)

  // ---- Collections (see "Collection conventions" below) ----------------------------------
  // Dictionaries (Redis hashes).
  kHSet,         // args = field, value, field, value... ; kNx: HSETNX (one pair)
                 // -> integer = fields added (HSETNX: 1 if set, else 0)
  kHGet,         // args = fields -> found (dict exists), items[i] = value or "",
                 // numbers[i] = 1 if field i exists else 0
  kHGetAll,      // FieldsForm (pairs, fields only, values only) -> found, items
                 // (pairs: field, value, field, value...)
  kHDel,         // args = fields -> integer = fields removed, length = fields left
  kHLen,         // -> found, integer = number of fields
  kHExists,      // args[0] = field -> integer (0/1)
  kHIncrBy,      // args[0] = field, Delta -> integer = new value
                 // (field not an integer: kNotInteger "hash value is not an integer";
                 // overflow: kOverflow)
  kHIncrByFloat, // args[0] = field, FloatDelta -> value = new value, formatted as Redis does
  kHScan,        // Cursor, pattern -> items (field, value pairs),
                 // integer = next cursor (0: done)
  // Lists.
  kLPush,        // args = values; kXx: only if the list exists (LPUSHX); kKeepOrder: the list
                 // starts with args in the order given (Momento ListConcatenateFront), else each
                 // value is pushed in turn (LPUSH a b c -> c b a); Truncate: then truncate
                 // the other end -> integer = length after
  kRPush,        // as kLPush at the back (order is always kept); Truncate: the front
  kLPop,         // Count, -1 for "no count" (one element) -> found (list existed),
                 // items = popped, length = elements left
  kRPop,         // as kLPop from the back
  kLRange,       // IndexRange, both inclusive, negative from the end (Redis); with kSlice:
                 // start inclusive, stop exclusive (Python slice semantics; kSliceOpenStart /
                 // kSliceOpenEnd for unbounded) -> found, items
  kLLen,         // -> found, integer = length
  kLIndex,       // Position (negative from the end) -> found (element exists), value
  kLSet,         // Position, value -> status: kNotFound "no such key" (missing list:
                 // message "no such key"), kInvalidArgument "index out of range"
  kLRem,         // Count (0 all, >0 from the head, <0 from the tail), value = element
                 // -> found (list existed), integer = removed, length = elements left
  kLTrim,        // IndexRange (Redis, inclusive), or kSlice as kLRange
                 // -> found (list existed), length = elements left
  kLInsert,      // InsertAt (before / after), check = pivot, value -> integer = length
                 // after, -1 pivot not found, 0 no list
  kLPos,         // value = element, Find (rank, count, maxlen)
                 // -> numbers = positions (0-based)
  kLErase,       // args unused; numbers = (begin, count) pairs (Momento ListErase ranges);
                 // EraseAll to erase all -> found, length = elements left
  // Sets.
  kSAdd,         // args = members -> integer = members added
  kSRem,         // args = members -> found (set existed), integer = removed, length = left
  kSMembers,     // -> found, items
  kSContains,    // args = members -> found, numbers[i] = 1 if args[i] is a member
  kSCard,        // -> found, integer = members
  kSPop,         // Count, -1 for "no count" -> found, items
  kSRandMember,  // Count (negative: may repeat; -1 with kNoCount: one element)
                 // -> found, items
  kSScan,        // Cursor, pattern -> items, integer = next cursor
  kSStore,       // args = members: replaces the key with a set of exactly these members
                 // (no members: deletes the key) -> integer = members stored
  // Sorted sets. Scores are doubles; NaN is refused by the front-end.
  kZAdd,         // args = members, scores[i] = score of args[i]; flags kNx/kXx/kGt/kLt/kCh/
                 // kIncr (one pair) -> integer = added (or added + changed with kCh); kIncr:
                 // found (done), scores[0] = new score (not done: found false)
                 // (kIncr result NaN: kNotFloat "resulting score is not a number (NaN)")
  kZIncrBy,      // args[0] = member, FloatDelta -> scores[0] = new score
  kZRem,         // args = members -> found (set existed), integer = removed, length = left
  kZScore,       // args = members -> found (set exists), numbers[i] = 1 if args[i] is a
                 // member, scores[i] = its score (0 if not)
  kZCard,        // -> found, integer
  kZCount,       // ScoreRange lo, hi, kLoExclusive / kHiExclusive (infinities for unbounded)
                 // -> found, integer
  kZRange,       // one of three ranges; kRev: descending order; kWithScores: also scores.
                 //   by rank (default): IndexRange (inclusive, Redis);
                 //     with kSlice: Python slice as kLRange;
                 //   kByScore: ScoreRange lo, hi, kLoExclusive/kHiExclusive, offset, count;
                 //   kByLex: args[0] = min, args[1] = max in Redis's form ("[a", "(a", "-",
                 //     "+"); ScoreRange offset, count (lo and hi unused).
                 //   kAcceptSet: a plain set answers its members with score 1 (ZUNIONSTORE).
                 // With kByScore/kByLex and kRev, lo / args[0] is still the minimum.
                 // -> found, items, scores (with kWithScores)
  kZRank,        // args[0] = member; kRev: descending -> found (member exists), integer =
                 // rank, scores[0] = score, length = cardinality (0: no such set)
  kZPopMin,      // Count (-1: no count, one element) -> found, items, scores
  kZPopMax,      // as kZPopMin, highest first
  kZScan,        // Cursor, pattern -> items (member, score-text
                 // pairs, score formatted as Redis does), integer = next cursor
  kZStore,       // args = members, scores: replaces the key with exactly these (no members:
                 // deletes the key) -> integer = members stored
  // ---- Topics (handled by topics::Topics on the topic's owner loop, not the engine) --------
  kPublish,      // key = topic, value = payload, check = publisher id (token id, may be
                 // empty), flags kPublishBinary -> integer = subscriptions that receive it
};

// Operations that name no key but act on (or read) the whole cache. A permission check asks
// for a grant on every item of the cache for them, never one on some key.
constexpr bool IsCacheWide(Op op) {
  switch (op) {
    case Op::kScan: case Op::kKeys: case Op::kRandomKey: case Op::kCount:
    case Op::kFlushCache: case Op::kStats:
      return true;
    default:
      return false;
  }
}

// Operations that change nothing: a reply of theirs may be dropped (refused as too large)
// after they ran without losing data. Everything else (writes, pops, GETDEL, SET ... GET)
// must be answered once it ran.
constexpr bool IsReadOnly(Op op) {
  switch (op) {
    case Op::kGet: case Op::kExists: case Op::kType: case Op::kStrlen: case Op::kGetRange:
    case Op::kTtl: case Op::kExpireTime: case Op::kScan: case Op::kKeys: case Op::kRandomKey:
    case Op::kCount: case Op::kStats:
    case Op::kHGet: case Op::kHGetAll: case Op::kHLen: case Op::kHExists: case Op::kHScan:
    case Op::kLRange: case Op::kLLen: case Op::kLIndex: case Op::kLPos:
    case Op::kSMembers: case Op::kSContains: case Op::kSCard: case Op::kSRandMember:
    case Op::kSScan:
    case Op::kZScore: case Op::kZCard: case Op::kZCount: case Op::kZRange: case Op::kZRank:
    case Op::kZScan:
      return true;
    default:
      return false;
  }
}

// Positions in Reply::numbers for Op::kStats.
enum StatIndex : uint8_t {
  kStatItems, kStatUsedBytes, kStatIndexBytes, kStatMemoryLimit, kStatHits, kStatMisses,
  kStatEvictions, kStatExpirations, kStatCacheItems, kStatCacheBytes, kStatCacheVolatile,
  kStatCount
};

// Conditions of kSetIf (Momento's SetIf and SetIfHash). "Equal" compares `check` with the
// stored value; the *Hash* forms compare it with ValueHash(stored value).
enum class SetIfCondition : uint8_t {
  kUnconditional, kPresent, kAbsent, kEqual, kNotEqual /* absent or different */,
  kPresentAndNotEqual, kAbsentOrEqual,
  kPresentAndHashEqual, kPresentAndNotHashEqual, kAbsentOrHashEqual, kAbsentOrNotHashEqual,
};

// Flag bits for kSet, kExpire and kGetEx (kIncrBy: kSetTtl gives the counter expire_at,
// whether it existed or not, as Momento's Increment does),
// and for the collection operations. Every bit has one meaning.
enum : uint32_t {
  kNx = 1u << 0,         // only if the key does not exist (SET) / has no TTL (EXPIRE) /
                         // HSETNX / ZADD NX (only new members)
  kXx = 1u << 1,         // only if the key exists / has a TTL / LPUSHX / ZADD XX
  kGt = 1u << 2,         // EXPIRE: only if the new expiry is later; ZADD GT
  kLt = 1u << 3,         // EXPIRE: only if the new expiry is earlier; ZADD LT
  kKeepTtl = 1u << 4,    // SET: keep the existing TTL
  kGetOld = 1u << 5,     // SET: return the previous value
  kSetTtl = 1u << 6,     // expire_at is meaningful (0 with kSetTtl on SET: no TTL)
  kPersistTtl = 1u << 7, // GETEX PERSIST
  // Collections.
  kRefreshTtl = 1u << 8,   // with kSetTtl: a write to an existing collection also sets its TTL
                           // (without it, only a collection this call creates gets expire_at)
  kKeepOrder = 1u << 9,    // kLPush: keep the given order
  kSlice = 1u << 10,       // kLRange/kLTrim/kZRange: Python slice indices
  kSliceOpenStart = 1u << 11,
  kSliceOpenEnd = 1u << 12,
  kNoCount = 1u << 13,     // kSRandMember: no COUNT argument
  kCh = 1u << 14,          // kZAdd CH
  kIncr = 1u << 15,        // kZAdd INCR
  kRev = 1u << 16,         // kZRange/kZRank: descending
  kWithScores = 1u << 17,
  kByScore = 1u << 18,
  kByLex = 1u << 19,
  kAcceptSet = 1u << 20,
  kLoExclusive = 1u << 21, // kZRange kByScore / kZCount
  kHiExclusive = 1u << 22,
  kPublishBinary = 1u << 23,  // kPublish: a binary value (Momento _TopicValue.binary)
};

// Collection conventions (kH*, kL*, kS*, kZ*):
// - `key` is the collection's name; a key holding another type answers kWrongType.
// - A missing key is an empty collection: reads answer found = false and no items; writes
//   create it. A write that creates a collection gives it expire_at when kSetTtl is set;
//   a write to an existing one changes its TTL only with kSetTtl | kRefreshTtl.
// - A removal that empties a collection deletes the key.
// - Replies: `items` are element bytes, `scores` sorted-set scores, `numbers` per-argument
//   flags or positions, `length` the collection's size after the call where the op says so.

// ---- Typed arguments ---------------------------------------------------------------------
// An op's numbers travel in one of these (Request::params), the one its comment above names.
// A front-end sets it with Request::Set(T{...}); the engine reads it with Request::Get<T>(),
// which is T{} when the front-end set none. A field's meaning is its name, whatever the op.
struct Delta {               // kIncrBy, kHIncrBy
  int64_t by = 0;
};
struct FloatDelta {          // kIncrByFloat, kHIncrByFloat, kZIncrBy
  long double by = 0;
};
struct IndexRange {          // kGetRange, kLRange, kLTrim, kZRange by rank: inclusive
  int64_t start = 0;         // indices, negative from the end (Redis); with kSlice, Python
  int64_t stop = 0;          // slice indices (stop exclusive; kSliceOpenStart/-End: unbounded)
};
struct Position {            // kSetRange (byte offset), kLIndex and kLSet (negative from the end)
  int64_t index = 0;
};
struct Cursor {              // kScan (a bucket cursor), kKeys (a slot), kHScan/kSScan/kZScan
  int64_t cursor = 0;
  int64_t count = 0;         // keys or elements wanted (at least 1 is visited)
};
struct Count {               // kLPop, kRPop, kSPop, kZPopMin, kZPopMax: -1 for "no count"
  int64_t count = 0;         // (one element); kSRandMember: negative may repeat; kLRem: 0 all,
};                           // > 0 from the head, < 0 from the tail
struct Condition {           // kSetIf
  SetIfCondition cond = SetIfCondition::kUnconditional;
};
struct FieldsForm {          // kHGetAll
  enum Form : uint8_t { kPairs, kFields, kValues } form = kPairs;
};
struct Truncate {            // kLPush, kRPush: then truncate the other end to `to` elements
  int64_t to = 0;            // (0: no truncation)
};
struct InsertAt {            // kLInsert: after the pivot, else before
  bool after = false;
};
struct Find {                // kLPos
  int64_t rank = 0;          // 1 by default (0 is read as 1); negative: from the tail
  int64_t count = -1;        // -1: no COUNT (the first match); 0: all
  int64_t maxlen = 0;        // elements compared at most; 0: no limit
};
struct EraseAll {            // kLErase: erase the whole list (else the ranges in `numbers`)
  bool all = false;
};
struct ScoreRange {          // kZCount and kZRange kByScore: lo, hi (may be +-infinity) with
  double lo = 0, hi = 0;     // kLoExclusive / kHiExclusive; kZRange kByScore / kByLex: offset
  int64_t offset = 0;        // and count (-1: all) of the range
  int64_t count = -1;
};
using Params = std::variant<std::monostate, Delta, FloatDelta, IndexRange, Position, Cursor,
                            Count, Condition, FieldsForm, Truncate, InsertAt, Find, EraseAll,
                            ScoreRange>;

struct Request {
  Op op = Op::kGet;
  uint32_t flags = 0;
  int16_t shard = -1;       // keyless ops (scan, count, flush, randomkey): the target shard
  uint32_t cache_id = 0;
  std::string_view key;
  std::string_view value;
  std::string_view pattern;  // SCAN MATCH; empty = all
  std::string_view check;    // kSetIf: the value or hash the condition compares with
  int64_t expire_at = 0;     // absolute Unix ms
  Params params;             // the op's typed arguments (above)
  // Collections: more arguments, borrowed like key and value (the front-end owns the arrays
  // until the reply is back).
  std::span<const std::string_view> args;
  std::span<const double> scores;
  std::span<const int64_t> numbers;  // kLErase ranges
  // The front-end's own mark on the call (e.g. a deferred option error to answer once the
  // key's type is known); the engine never reads it.
  int32_t note = 0;

  template <typename T>
  T& Set(T value) {
    return params.emplace<T>(value);
  }
  // The op's arguments as T; T{} if none were set. Another type set is a bug of the
  // front-end's (BUG_CHECK), answered as if none were.
  template <typename T>
  const T& Get() const {
    if (const T* p = std::get_if<T>(&params)) [[likely]] return *p;
    static const T kNone{};
    CELLAR_BUG_CHECK(std::holds_alternative<std::monostate>(params),
                     "a request's arguments are of another type than its op reads");
    return kNone;
  }
};

struct Reply {
  // Bytes this reply holds (what a reply budget charges).
  size_t footprint() const {
    size_t n = value.size() + items.footprint() + numbers.size() * sizeof(int64_t) +
               scores.size() * sizeof(double);
    for (const std::string& k : keys) n += k.size() + sizeof(std::string);
    return n;
  }
  Status status;
  bool found = false;  // kExpire: whether the key existed
  int64_t integer = 0;
  std::string value;
  std::vector<std::string> keys;
  std::vector<int64_t> numbers;
  // Collections.
  ItemList items;
  std::vector<double> scores;
  int64_t length = 0;
};

}  // namespace cellar::api
