// The one key hash of Cellar: stable across processes and machines (xxHash3, seeded by the
// cache id), so routing to shards and, later, to cluster slots agrees everywhere.
#pragma once

#include <cstdint>
#include <string_view>

#include <xxhash.h>

namespace cellar {

inline uint64_t KeyHash(uint32_t cache_id, std::string_view key) {
  return XXH3_64bits_withSeed(key.data(), key.size(), cache_id);
}

}  // namespace cellar
