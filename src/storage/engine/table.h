// Table: one shard's hash index of Items, keyed by (cache id, key bytes).
//
// Open addressing with linear probing and backward-shift deletion (no tombstones). A slot is
// one 64-bit word: 0 when empty, else the Item pointer in the low 48 bits and 16 bits of the
// key's hash in the high 16 bits, so most mismatches are rejected without touching the Item.
// Capacity is a power of two; the load factor stays at or below 3/4.
//
// Thread: owned by one shard thread; not thread-safe. Pointers into it stay valid until the
// Item is erased or replaced.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <string_view>
#include <vector>

#include "storage/engine/item.h"

namespace cellar::storage {

class Table {
 public:
  static constexpr size_t kNotFound = ~size_t{0};

  Table();
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // Slot index of the item, or kNotFound. `hash` is KeyHash(cache_id, key).
  size_t Find(uint32_t cache_id, std::string_view key, uint64_t hash) const;
  // Inserts an item whose key is not present. May grow the table (invalidates slot indices).
  void Insert(Item* item, uint64_t hash);
  // Swaps in a new block for the item at `slot` (same key); returns the old block.
  Item* Replace(size_t slot, Item* item);
  // Removes the item at `slot` and returns it (the caller frees it).
  Item* Erase(size_t slot);

  Item* At(size_t slot) const { return Ptr(slots_[slot]); }
  bool Occupied(size_t slot) const { return slots_[slot] != 0; }
  size_t size() const { return size_; }
  size_t capacity() const { return mask_ + 1; }
  size_t IndexBytes() const { return capacity() * sizeof(uint64_t); }
  // Index bytes the next Insert would add by growing (0 if it would not grow).
  size_t InsertGrowthBytes() const { return NeedsGrowth() ? IndexBytes() : 0; }

  // SCAN support. Cursor = a home bucket in reverse-binary order, as Redis does, so every
  // item present for a whole iteration is returned at least once even if the table grows.
  // Calls fn(item) for items whose home bucket is `cursor`, returns the next cursor (0: done).
  // `keep` is checked first and cheaply (e.g. the cache id), so items it rejects cost no hash.
  template <typename Fn, typename Keep>
  uint64_t ScanBucket(uint64_t cursor, Fn&& fn, Keep&& keep) const;
  template <typename Fn>
  uint64_t ScanBucket(uint64_t cursor, Fn&& fn) const {
    return ScanBucket(cursor, std::forward<Fn>(fn), [](const Item*) { return true; });
  }

  // Removes every item for which pred(item) is true; calls on_erase(item) for each.
  template <typename Pred, typename OnErase>
  size_t EraseIf(Pred&& pred, OnErase&& on_erase);

 private:
  static Item* Ptr(uint64_t slot) {
    return reinterpret_cast<Item*>(slot & ((uint64_t{1} << 48) - 1));
  }
  static uint64_t Pack(Item* item, uint64_t hash) {
    return reinterpret_cast<uint64_t>(item) | (hash & 0xFFFF000000000000ull);
  }
  static uint64_t HashOf(const Item* item);
  bool NeedsGrowth() const { return (size_ + 1) * 4 > capacity() * 3; }
  void Grow();
  void PlaceNoGrow(uint64_t packed, uint64_t hash);

  std::unique_ptr<uint64_t[]> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

inline uint64_t ReverseBits(uint64_t v) {
  v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
  v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
  v = ((v >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((v & 0x0F0F0F0F0F0F0F0Full) << 4);
  return __builtin_bswap64(v);
}

template <typename Fn, typename Keep>
uint64_t Table::ScanBucket(uint64_t cursor, Fn&& fn, Keep&& keep) const {
  const uint64_t home = cursor & mask_;
  for (size_t i = home;; i = (i + 1) & mask_) {
    uint64_t s = slots_[i];
    if (s == 0) break;
    Item* item = Ptr(s);
    if (keep(item) && (HashOf(item) & mask_) == home) fn(item);
  }
  // Reverse-binary increment over the current mask: set the unmasked bits, reverse, add one,
  // reverse back. Wraps to 0 when the whole table has been visited.
  uint64_t c = cursor | ~uint64_t{mask_};
  c = ReverseBits(c);
  ++c;
  return ReverseBits(c);
}

template <typename Pred, typename OnErase>
size_t Table::EraseIf(Pred&& pred, OnErase&& on_erase) {
  size_t erased = 0;
  // Erase shifts later items backwards, so re-examine a slot after erasing at it. Items that
  // wrap around from the end into slot 0.. may be visited twice; pred is checked each time.
  for (size_t i = 0; i <= mask_;) {
    uint64_t s = slots_[i];
    if (s != 0 && pred(Ptr(s))) {
      on_erase(Erase(i));
      ++erased;
    } else {
      ++i;
    }
  }
  return erased;
}

}  // namespace cellar::storage
