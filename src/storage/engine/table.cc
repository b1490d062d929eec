#include "storage/engine/table.h"

#include <cstring>

#include "common/hash.h"

namespace cellar::storage {

namespace {
constexpr size_t kInitialCapacity = 16;
}  // namespace

Table::Table() : slots_(new uint64_t[kInitialCapacity]()), mask_(kInitialCapacity - 1) {}

Table::~Table() = default;  // Items are freed by the Engine, which owns their accounting.

uint64_t Table::HashOf(const Item* item) { return KeyHash(item->cache_id, item->key()); }

size_t Table::Find(uint32_t cache_id, std::string_view key, uint64_t hash) const {
  const uint64_t tag = hash & 0xFFFF000000000000ull;
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    uint64_t s = slots_[i];
    if (s == 0) return kNotFound;
    if ((s & 0xFFFF000000000000ull) == tag) {
      const Item* item = Ptr(s);
      if (item->cache_id == cache_id && item->key_len == key.size() &&
          std::memcmp(item->data(), key.data(), key.size()) == 0) {
        return i;
      }
    }
  }
}

void Table::PlaceNoGrow(uint64_t packed, uint64_t hash) {
  size_t i = hash & mask_;
  while (slots_[i] != 0) i = (i + 1) & mask_;
  slots_[i] = packed;
}

void Table::Insert(Item* item, uint64_t hash) {
  if (NeedsGrowth()) Grow();
  PlaceNoGrow(Pack(item, hash), hash);
  ++size_;
}

Item* Table::Replace(size_t slot, Item* item) {
  Item* old = Ptr(slots_[slot]);
  slots_[slot] = (slots_[slot] & 0xFFFF000000000000ull) | reinterpret_cast<uint64_t>(item);
  return old;
}

Item* Table::Erase(size_t slot) {
  Item* old = Ptr(slots_[slot]);
  // Backward-shift: pull later members of the probe run into the hole when their home bucket
  // allows it, so lookups never need tombstones.
  size_t hole = slot;
  for (size_t j = (slot + 1) & mask_;; j = (j + 1) & mask_) {
    uint64_t s = slots_[j];
    if (s == 0) break;
    size_t home = HashOf(Ptr(s)) & mask_;
    // Can the item at j move to `hole`? Only if home is not cyclically in (hole, j].
    bool home_in_range = (hole <= j) ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_in_range) {
      slots_[hole] = s;
      hole = j;
    }
  }
  slots_[hole] = 0;
  --size_;
  return old;
}

void Table::Grow() {
  size_t old_cap = capacity();
  std::unique_ptr<uint64_t[]> old = std::move(slots_);
  slots_.reset(new uint64_t[old_cap * 2]());
  mask_ = old_cap * 2 - 1;
  for (size_t i = 0; i < old_cap; ++i) {
    if (old[i] != 0) PlaceNoGrow(old[i], HashOf(Ptr(old[i])));
  }
}

}  // namespace cellar::storage
