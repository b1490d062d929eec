// The engine's table of ops: each api::Op's family (the item type it works on, or the keyspace
// as a whole) and so its executor, one per family and file:
//   kString   engine_strings.cc   GET, SET, INCRBY, APPEND, SETRANGE, SetIf...
//   kKeyspace engine_keys.cc      DEL, EXISTS, TYPE, EXPIRE, TTL, SCAN, KEYS, the counts
//   kDict     engine_dict.cc      hashes / Momento dictionaries
//   kList     engine_list.cc
//   kSet      engine_set.cc
//   kZSet     engine_zset.cc      sorted sets (and so leaderboards)
//   kSeveral  engine_collections.cc  HSCAN/SSCAN/ZSCAN and the set/sorted-set stores
// Engine::Execute looks an op up here (Engine::OpOf) and runs its executor; an op with no
// family (kPublish: topics, not the engine) answers kInternal. Internal to the engine.
#pragma once

#include <cstdint>

#include "api/request.h"

namespace cellar::storage {

enum class OpFamily : uint8_t { kNone, kString, kKeyspace, kDict, kList, kSet, kZSet, kSeveral };

constexpr OpFamily FamilyOf(api::Op op) {
  using api::Op;
  switch (op) {
    case Op::kGet: case Op::kSet: case Op::kIncrBy: case Op::kIncrByFloat: case Op::kAppend:
    case Op::kStrlen: case Op::kGetRange: case Op::kSetRange: case Op::kGetDel: case Op::kGetEx:
    case Op::kSetIf:
      return OpFamily::kString;
    case Op::kDelete: case Op::kExists: case Op::kType: case Op::kExpire: case Op::kPersist:
    case Op::kTtl: case Op::kExpireTime: case Op::kScan: case Op::kKeys: case Op::kRandomKey:
    case Op::kCount: case Op::kFlushCache: case Op::kStats:
      return OpFamily::kKeyspace;
    case Op::kHSet: case Op::kHGet: case Op::kHGetAll: case Op::kHDel: case Op::kHLen:
    case Op::kHExists: case Op::kHIncrBy: case Op::kHIncrByFloat:
      return OpFamily::kDict;
    case Op::kLPush: case Op::kRPush: case Op::kLPop: case Op::kRPop: case Op::kLRange:
    case Op::kLLen: case Op::kLIndex: case Op::kLSet: case Op::kLRem: case Op::kLTrim:
    case Op::kLInsert: case Op::kLPos: case Op::kLErase:
      return OpFamily::kList;
    case Op::kSAdd: case Op::kSRem: case Op::kSMembers: case Op::kSContains: case Op::kSCard:
    case Op::kSPop: case Op::kSRandMember:
      return OpFamily::kSet;
    case Op::kZAdd: case Op::kZIncrBy: case Op::kZRem: case Op::kZScore: case Op::kZCard:
    case Op::kZCount: case Op::kZRange: case Op::kZRank: case Op::kZPopMin: case Op::kZPopMax:
      return OpFamily::kZSet;
    case Op::kHScan: case Op::kSScan: case Op::kZScan: case Op::kSStore: case Op::kZStore:
      return OpFamily::kSeveral;
    case Op::kPublish:
      return OpFamily::kNone;
  }
  return OpFamily::kNone;
}

}  // namespace cellar::storage
