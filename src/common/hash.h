// The one key hash of Cellar: stable across processes and machines (xxHash3, seeded by the
// cache id), so routing to shards and, later, to cluster slots agrees everywhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <xxhash.h>

namespace cellar {

inline uint64_t KeyHash(uint32_t cache_id, std::string_view key) {
  return XXH3_64bits_withSeed(key.data(), key.size(), cache_id);
}

// The opaque hash of a value that Momento's GetWithHash/SetIfHash exchange: 16 bytes of
// XXH3-128, big-endian. Not a security boundary: it compares a tenant's own values.
inline std::string ValueHash(std::string_view value) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(value.data(), value.size()));
  return std::string(reinterpret_cast<const char*>(c.digest), sizeof(c.digest));
}

}  // namespace cellar
