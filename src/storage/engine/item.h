// Item: one cache entry in a single heap block: a 24-byte header, then key bytes, then value
// bytes. Keys and values are binary-safe. The block is owned by exactly one shard's Table.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace cellar::storage {

// kString items hold their value bytes; the collection types hold a pointer to their object
// (Dict, List, Set, ZSet) as an 8-byte value.
enum class ItemType : uint8_t { kString = 0, kDict = 1, kList = 2, kSet = 3, kZSet = 4 };

struct Item {
  int64_t expire_at;  // Unix milliseconds; 0 means no TTL
  uint32_t cache_id;
  uint32_t key_len;   // bytes
  uint32_t val_len;   // bytes
  uint32_t meta;      // low 4 bits: ItemType; high 28 bits: LRU clock (see Engine::LruClock)

  static constexpr uint32_t kLruBits = 28;
  static constexpr uint32_t kLruMask = (1u << kLruBits) - 1;

  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  std::string_view key() const { return {data(), key_len}; }
  std::string_view value() const { return {data() + key_len, val_len}; }
  char* mutable_value() { return data() + key_len; }
  ItemType type() const { return static_cast<ItemType>(meta & 0xF); }
  uint32_t lru() const { return meta >> 4; }
  void set_lru(uint32_t clock) { meta = (meta & 0xF) | ((clock & kLruMask) << 4); }
  void set_type(ItemType t) { meta = (meta & ~0xFu) | static_cast<uint32_t>(t); }
  bool is_collection() const { return type() != ItemType::kString; }
  void* object() const {
    void* p;
    std::memcpy(&p, value().data(), sizeof p);
    return p;
  }
  bool has_ttl() const { return expire_at != 0; }
  bool ExpiredAt(int64_t now_ms) const { return expire_at != 0 && expire_at <= now_ms; }

  static size_t AllocSize(size_t key_len, size_t val_len) {
    return sizeof(Item) + key_len + val_len;
  }
};
static_assert(sizeof(Item) == 24, "keep the per-item header small");

}  // namespace cellar::storage
