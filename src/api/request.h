// Protocol-neutral requests and replies. Front-ends (RESP now, gRPC and HTTP later) turn wire
// requests into these; the gateway routes them to the shard that owns the key; the shard's
// engine fills in the Reply; the front-end encodes it with its own status-to-wire table.
//
// Borrowing rule: every string_view in a Request points into the front-end's receive buffer,
// which stays untouched until every Reply of the batch has come back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cellar::api {

enum class Op : uint8_t {
  kGet,          // -> found, value
  kSet,          // value, expire_at/flags -> found (stored), old value if kGetOld
  kDelete,       // -> integer (0/1)
  kExists,       // -> integer (0/1)
  kType,         // -> value ("none"/"string")
  kIncrBy,       // integer = delta -> integer
  kIncrByFloat,  // number = delta -> value (formatted)
  kAppend,       // value -> integer (new length)
  kStrlen,       // -> integer
  kGetRange,     // integer = start, integer2 = end (inclusive, negative from end) -> value
  kSetRange,     // integer = offset, value -> integer (new length)
  kExpire,       // expire_at (absolute ms), flags NX/XX/GT/LT -> integer (0/1)
  kPersist,      // -> integer (0/1)
  kTtl,          // -> integer: ms left, -1 no TTL, -2 missing
  kExpireTime,   // -> integer: absolute ms, -1 no TTL, -2 missing
  kGetDel,       // -> found, value
  kGetEx,        // expire_at/flags (kPersist or kSetTtl) -> found, value
  kScan,         // shard's part of SCAN: integer = bucket cursor, pattern, integer2 = count
                 // -> keys, integer = next bucket cursor (0: this shard done)
  kKeys,         // shard's part of KEYS: pattern -> keys (a whole sweep, no cursor)
  kRandomKey,    // -> found, value
  kCount,        // items of the cache on this shard -> integer
  kFlushCache,   // drops every item of the cache on this shard -> integer (items removed)
  kStats,        // this shard's counters -> numbers, indexed by StatIndex
  kSetIf,        // integer = SetIfCondition, check = value or hash to compare, value,
                 // expire_at/kSetTtl -> found (stored)
};

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

// Flag bits for kSet, kExpire and kGetEx (kIncrBy: kSetTtl gives a new counter expire_at).
enum : uint16_t {
  kNx = 1 << 0,         // only if the key does not exist (SET) / has no TTL (EXPIRE)
  kXx = 1 << 1,         // only if the key exists / has a TTL
  kGt = 1 << 2,         // EXPIRE: only if the new expiry is later
  kLt = 1 << 3,         // EXPIRE: only if the new expiry is earlier
  kKeepTtl = 1 << 4,    // SET: keep the existing TTL
  kGetOld = 1 << 5,     // SET: return the previous value
  kSetTtl = 1 << 6,     // expire_at is meaningful (0 with kSetTtl on SET: no TTL)
  kPersistTtl = 1 << 7, // GETEX PERSIST
};

struct Request {
  Op op = Op::kGet;
  uint16_t flags = 0;
  int16_t shard = -1;       // keyless ops (scan, count, flush, randomkey): the target shard
  uint32_t cache_id = 0;
  std::string_view key;
  std::string_view value;
  std::string_view pattern;  // SCAN MATCH; empty = all
  std::string_view check;    // kSetIf: the value or hash the condition compares with
  int64_t integer = 0;
  int64_t integer2 = 0;
  int64_t expire_at = 0;     // absolute Unix ms
  long double number = 0;
};

struct Reply {
  Status status;
  bool found = false;  // kExpire: whether the key existed
  int64_t integer = 0;
  std::string value;
  std::vector<std::string> keys;
  std::vector<int64_t> numbers;
};

}  // namespace cellar::api
