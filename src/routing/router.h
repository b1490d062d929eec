// Routing: (cache id, key) -> shard. One process today; the slot map of a cluster later.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/hash.h"

namespace cellar::routing {

// Uses hash bits 16..47, which the shard's Table uses neither for its home bucket (low bits)
// nor for its tag (high 16 bits), so routing does not skew either.
inline uint32_t ShardOf(uint64_t hash, uint32_t num_shards) {
  uint32_t mid = static_cast<uint32_t>(hash >> 16);
  return static_cast<uint32_t>((static_cast<uint64_t>(mid) * num_shards) >> 32);
}

inline uint32_t ShardOf(uint32_t cache_id, std::string_view key, uint32_t num_shards) {
  return ShardOf(KeyHash(cache_id, key), num_shards);
}

// A fleet's slots (CLUSTER.md): 16,384, spread over the nodes by the slot map. Bits 16..29 of
// the hash: ShardOf weighs the top of bits 16..47, so a node's slots still spread over all of
// its shards.
inline constexpr uint32_t kSlots = 16384;
inline uint32_t SlotOf(uint64_t hash) { return static_cast<uint32_t>(hash >> 16) & (kSlots - 1); }

}  // namespace cellar::routing
