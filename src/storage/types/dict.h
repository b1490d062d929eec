// Dict: a dictionary (Redis hash) of binary fields to binary values.
//
// Encodings: while it has at most kMaxPackedFields fields and every field and value is at most
// kMaxPackedBytes long, one PackedVec of alternating field, value strings in insertion order
// (linear lookups over a few KiB); past that, for good, an EntryHash of one-block entries
// [varint field length][field][varint value length][value]: O(1) lookups.
//
// bytes() is the heap memory held, kept up to date on every change (the engine charges it to
// the cache). Thread: owned by one shard.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "storage/types/entry_hash.h"
#include "storage/types/packed.h"

namespace cellar::storage {

class Dict {
 public:
  static constexpr uint32_t kMaxPackedFields = 128;
  static constexpr size_t kMaxPackedBytes = 64;

  Dict() = default;
  ~Dict();
  Dict(const Dict&) = delete;
  Dict& operator=(const Dict&) = delete;

  size_t size() const { return large_ ? hash_.size() : packed_.count() / 2; }
  size_t bytes() const { return large_ ? hash_.bucket_bytes() + entry_bytes_ : packed_.bytes(); }
  bool packed() const { return !large_; }

  // Sets field to value; true if the field is new.
  bool Set(std::string_view field, std::string_view value);
  // The field's value, valid until the next change.
  std::optional<std::string_view> Get(std::string_view field) const;
  bool Erase(std::string_view field);

  // fn(field, value) for every field: insertion order while packed, else hash order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    if (!large_) {
      for (uint32_t pos = 0; pos < packed_.end();) {
        uint32_t next;
        std::string_view f = packed_.At(pos, &next);
        std::string_view v = packed_.At(next, &pos);
        fn(f, v);
      }
      return;
    }
    hash_.ForEach([&](const HEntry* e) {
      std::string_view f, v;
      Decode(e, &f, &v);
      fn(f, v);
    });
  }

  // SCAN: one bucket's fields (all of them while packed, then 0); returns the next cursor.
  template <typename Fn>
  uint64_t Scan(uint64_t cursor, Fn&& fn) const {
    if (!large_) {
      ForEach(fn);
      return 0;
    }
    return hash_.ScanBucket(cursor, [&](const HEntry* e) {
      std::string_view f, v;
      Decode(e, &f, &v);
      fn(f, v);
    });
  }

  // Heap bytes recomputed from scratch (tests compare it with bytes()).
  size_t RecomputeBytesForTest() const;

 private:
  static void Decode(const HEntry* e, std::string_view* field, std::string_view* value) {
    uint32_t n;
    const char* p = GetVarint(e->payload(), &n);
    *field = {p, n};
    p = GetVarint(p + n, &n);
    *value = {p, n};
  }
  static size_t PayloadSize(std::string_view f, std::string_view v) {
    return VarintSize(static_cast<uint32_t>(f.size())) + f.size() +
           VarintSize(static_cast<uint32_t>(v.size())) + v.size();
  }
  HEntry* NewEntry(uint32_t hash, std::string_view f, std::string_view v);
  void FreeEntry(HEntry* e);
  // Position of the field's string in packed_, or packed_.end().
  uint32_t FindPacked(std::string_view field) const;
  void ConvertToLarge();

  bool large_ = false;
  PackedVec packed_;
  EntryHash hash_;
  size_t entry_bytes_ = 0;  // malloc_usable_size of every entry
};

}  // namespace cellar::storage
