// Set: a set of binary members.
//
// Encodings: while it has at most kMaxPackedMembers members of at most kMaxPackedBytes each,
// one PackedVec in insertion order (linear lookups); past that, for good, an EntryHash of
// one-block entries [varint length][member]: O(1) lookups.
//
// bytes() is the heap memory held, kept up to date on every change. Thread: one shard.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/types/entry_hash.h"
#include "storage/types/packed.h"

namespace cellar::storage {

class Set {
 public:
  static constexpr uint32_t kMaxPackedMembers = 128;
  static constexpr size_t kMaxPackedBytes = 64;

  Set() = default;
  ~Set();
  Set(const Set&) = delete;
  Set& operator=(const Set&) = delete;

  size_t size() const { return large_ ? hash_.size() : packed_.count(); }
  size_t bytes() const { return large_ ? hash_.bucket_bytes() + entry_bytes_ : packed_.bytes(); }
  bool packed() const { return !large_; }

  bool Add(std::string_view member);  // true if new
  bool Contains(std::string_view member) const;
  bool Erase(std::string_view member);

  // fn(member) for every member.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    if (!large_) {
      packed_.ForEach([&](uint32_t, std::string_view m) {
        fn(m);
        return true;
      });
      return;
    }
    hash_.ForEach([&](const HEntry* e) { fn(Member(e)); });
  }

  // SCAN: one bucket's members (all while packed, then 0); returns the next cursor.
  template <typename Fn>
  uint64_t Scan(uint64_t cursor, Fn&& fn) const {
    if (!large_) {
      ForEach(fn);
      return 0;
    }
    return hash_.ScanBucket(cursor, [&](const HEntry* e) { fn(Member(e)); });
  }

  // A random member (the set must not be empty); valid until the next change.
  template <typename Rng>
  std::string_view Random(Rng&& rng) const {
    if (!large_) {
      uint32_t k = static_cast<uint32_t>(rng() % packed_.count());
      std::string_view out;
      packed_.ForEach([&](uint32_t, std::string_view m) {
        if (k-- == 0) {
          out = m;
          return false;
        }
        return true;
      });
      return out;
    }
    return Member(hash_.Random(rng));
  }

  size_t RecomputeBytesForTest() const;

 private:
  static std::string_view Member(const HEntry* e) {
    uint32_t n;
    const char* p = GetVarint(e->payload(), &n);
    return {p, n};
  }
  uint32_t FindPacked(std::string_view member) const;
  void ConvertToLarge();
  void InsertLarge(uint32_t hash, std::string_view member);

  bool large_ = false;
  PackedVec packed_;
  EntryHash hash_;
  size_t entry_bytes_ = 0;
};

}  // namespace cellar::storage
