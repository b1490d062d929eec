// EntryHash: the index of a large dictionary, set or sorted set. A chained hash table of
// entries; each entry is one malloc'd block laid out as
//   [next entry: 8 bytes][32-bit hash: 4 bytes][payload: the type's own bytes]
// so an element costs one allocation plus ~8 bytes of bucket array (load factor <= 1), less
// than a Redis dictEntry plus its separate sds strings.
//
// The table never reads payloads: callers pass the hash and an equality predicate. Growth and
// shrinking rehash at once (O(n), amortized O(1) per insert). SCAN uses Redis's reverse-binary
// bucket cursor, so an element present for the whole scan is returned at least once even if
// the table is resized meanwhile.
//
// Thread: owned by one shard.
#pragma once

#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "common/hash.h"

namespace cellar::storage {

struct HEntry {
  static constexpr size_t kHeader = 12;
  HEntry* next;
  // hash at offset 8, payload at offset 12 (accessed by address, not as members)
  uint32_t hash() const {
    uint32_t h;
    std::memcpy(&h, reinterpret_cast<const char*>(this) + 8, 4);
    return h;
  }
  void set_hash(uint32_t h) { std::memcpy(reinterpret_cast<char*>(this) + 8, &h, 4); }
  char* payload() { return reinterpret_cast<char*>(this) + kHeader; }
  const char* payload() const { return reinterpret_cast<const char*>(this) + kHeader; }

  // A new entry with `payload_bytes` of uninitialised payload.
  static HEntry* New(uint32_t hash, size_t payload_bytes) {
    void* mem = std::malloc(kHeader + payload_bytes);
    if (mem == nullptr) std::abort();
    HEntry* e = static_cast<HEntry*>(mem);
    e->next = nullptr;
    e->set_hash(hash);
    return e;
  }
  static size_t AllocBytes(const HEntry* e) { return malloc_usable_size(const_cast<HEntry*>(e)); }
};

// Hash of an element's bytes (32 bits are plenty inside one collection). Seeded at random per
// process, so a client cannot precompute elements that all land in one chain.
uint64_t ElementHashSeed();
inline uint32_t ElementHash(std::string_view s) {
  static const uint64_t seed = ElementHashSeed();
  return static_cast<uint32_t>(XXH3_64bits_withSeed(s.data(), s.size(), seed));
}

class EntryHash {
 public:
  EntryHash() = default;
  ~EntryHash() { std::free(buckets_); }
  EntryHash(const EntryHash&) = delete;
  EntryHash& operator=(const EntryHash&) = delete;

  size_t size() const { return size_; }
  // Bytes of the bucket array (entries are the caller's to count).
  size_t bucket_bytes() const { return buckets_ == nullptr ? 0 : malloc_usable_size(buckets_); }

  template <typename Eq>
  HEntry* Find(uint32_t hash, Eq&& eq) const {
    if (size_ == 0) return nullptr;
    for (HEntry* e = buckets_[hash & mask_]; e != nullptr; e = e->next) {
      if (e->hash() == hash && eq(e)) return e;
    }
    return nullptr;
  }

  // Adds an entry whose element is not present.
  void Insert(HEntry* e) {
    if (size_ + 1 > mask_ + 1 || buckets_ == nullptr) Resize(buckets_ == nullptr ? 4 : (mask_ + 1) * 2);
    HEntry*& head = buckets_[e->hash() & mask_];
    e->next = head;
    head = e;
    ++size_;
  }

  // Unlinks and returns the matching entry (the caller frees it), or nullptr.
  template <typename Eq>
  HEntry* Remove(uint32_t hash, Eq&& eq) {
    if (size_ == 0) return nullptr;
    for (HEntry** link = &buckets_[hash & mask_]; *link != nullptr; link = &(*link)->next) {
      HEntry* e = *link;
      if (e->hash() == hash && eq(e)) {
        *link = e->next;
        --size_;
        MaybeShrink();
        return e;
      }
    }
    return nullptr;
  }
  // Unlinks a known entry.
  void Unlink(HEntry* target) {
    Remove(target->hash(), [target](const HEntry* e) { return e == target; });
  }

  template <typename Fn>
  void ForEach(Fn&& fn) const {
    if (buckets_ == nullptr) return;
    for (size_t i = 0; i <= mask_; ++i) {
      for (HEntry* e = buckets_[i]; e != nullptr;) {
        HEntry* next = e->next;  // fn may free e (Clear)
        fn(e);
        e = next;
      }
    }
  }

  // Calls fn(e) for the entries of bucket `cursor`; returns the next cursor (0: done).
  template <typename Fn>
  uint64_t ScanBucket(uint64_t cursor, Fn&& fn) const {
    if (buckets_ == nullptr) return 0;
    for (HEntry* e = buckets_[cursor & mask_]; e != nullptr; e = e->next) fn(e);
    uint64_t c = cursor | ~uint64_t{mask_};
    c = Reverse(c);
    ++c;
    return Reverse(c);
  }

  // A random entry (uniform over non-empty buckets, then within the chain), or nullptr.
  template <typename Rng>
  HEntry* Random(Rng&& rng) const {
    if (size_ == 0) return nullptr;
    for (;;) {
      HEntry* e = buckets_[rng() & mask_];
      if (e == nullptr) continue;
      size_t n = 0;
      for (HEntry* p = e; p != nullptr; p = p->next) ++n;
      for (size_t k = rng() % n; k > 0; --k) e = e->next;
      return e;
    }
  }

  // Frees every entry with free_fn(e) and empties the table.
  template <typename FreeFn>
  void Clear(FreeFn&& free_fn) {
    ForEach(free_fn);
    std::free(buckets_);
    buckets_ = nullptr;
    mask_ = 0;
    size_ = 0;
  }

 private:
  static uint64_t Reverse(uint64_t v) {
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((v & 0x0F0F0F0F0F0F0F0Full) << 4);
    return __builtin_bswap64(v);
  }
  void MaybeShrink() {
    if (mask_ + 1 > 4 && size_ * 8 < mask_ + 1) Resize((mask_ + 1) / 4);
  }
  void Resize(size_t n) {
    HEntry** fresh = static_cast<HEntry**>(std::calloc(n, sizeof(HEntry*)));
    if (fresh == nullptr) std::abort();
    const size_t new_mask = n - 1;
    if (buckets_ != nullptr) {
      for (size_t i = 0; i <= mask_; ++i) {
        for (HEntry* e = buckets_[i]; e != nullptr;) {
          HEntry* next = e->next;
          HEntry*& head = fresh[e->hash() & new_mask];
          e->next = head;
          head = e;
          e = next;
        }
      }
      std::free(buckets_);
    }
    buckets_ = fresh;
    mask_ = new_mask;
  }

  HEntry** buckets_ = nullptr;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace cellar::storage
