// ZSet: a sorted set of binary members with double scores, ordered as Redis orders them: by
// score ascending, then by member bytes (memcmp, a shorter prefix first). Scores are never NaN
// (callers refuse it); -0.0 is stored as 0.0.
//
// Encodings:
// - packed: while it has at most kMaxPackedMembers members of at most kMaxPackedBytes each,
//   one PackedVec of pairs [member][score: 8 raw bytes], kept in order. Everything is linear
//   in the (small) size.
// - large: past either threshold, for good. Each element is one EntryHash entry
//   [score: 8 bytes][varint length][member] (member -> entry in O(1)), and an order-statistic
//   B+tree over the entry pointers (RankTree below) keeps them ordered: insert, erase, rank,
//   select by rank and bound by score or member cost O(log n); k consecutive elements
//   O(log n + k).
//
// bytes() is the heap memory held, kept up to date on every change. Thread: one shard.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

#include "storage/types/entry_hash.h"
#include "storage/types/packed.h"

namespace cellar::storage {

namespace zset_internal {

// A large-encoding entry's payload: [score: 8 bytes][varint member length][member].
inline double EntryScore(const HEntry* e) {
  double s;
  std::memcpy(&s, e->payload(), sizeof s);
  return s;
}
inline void SetEntryScore(HEntry* e, double s) { std::memcpy(e->payload(), &s, sizeof s); }
inline std::string_view EntryMember(const HEntry* e) {
  uint32_t n;
  const char* p = GetVarint(e->payload() + 8, &n);
  return {p, n};
}

inline constexpr uint32_t kLeafCap = 64;   // entry pointers per leaf (536-byte allocation)
inline constexpr uint32_t kInnerCap = 64;  // children per inner node
inline constexpr int kMaxHeight = 24;      // inner levels; ~log_16(n) in practice

// Leaves hold entry pointers in order and are linked both ways for range walks. A leaf in
// the tree is never empty.
struct Leaf {
  Leaf* prev;
  Leaf* next;
  uint32_t n;
  HEntry* e[kLeafCap];
};

// Inner nodes hold, per child: the number of elements below it, and its smallest element
// (score copied beside the entry pointer, so a descent touches entries only on score ties).
// Invariant: min_entry[i] is exactly the first element of child i's subtree.
struct Inner {
  uint32_t n;
  bool leaves;  // children are Leaf (else Inner)
  uint64_t count[kInnerCap];
  double min_score[kInnerCap];
  HEntry* min_entry[kInnerCap];
  void* child[kInnerCap];
};

// A position in the leaf chain.
struct LeafPos {
  Leaf* leaf;
  uint32_t i;
  HEntry* entry() const { return leaf->e[i]; }
  void Next() {
    if (++i == leaf->n) {
      leaf = leaf->next;
      i = 0;
    }
  }
  void Prev() {
    if (i == 0) {
      leaf = leaf->prev;
      i = leaf == nullptr ? 0 : leaf->n - 1;
    } else {
      --i;
    }
  }
};

// Order-statistic B+tree over entries; it owns its nodes, not the entries, and reads each
// entry's (score, member) key, which must not change while the entry is in the tree (Rescore
// changes it). Under-full nodes are allowed; empty ones are removed at once, and a node under
// a quarter full is merged with a sibling that is too.
class RankTree {
 public:
  RankTree() = default;
  ~RankTree() { Clear(); }
  RankTree(const RankTree&) = delete;
  RankTree& operator=(const RankTree&) = delete;

  size_t size() const { return size_; }
  size_t bytes() const { return bytes_; }  // node allocations
  Leaf* first() const { return first_; }
  Leaf* last() const { return last_; }
  int height() const { return height_; }

  void Insert(HEntry* e);  // e's key is not in the tree yet
  void Erase(HEntry* e);   // e is in the tree
  // Sets e's score (e is in the tree), moving it only if its neighbours no longer bracket it.
  void Rescore(HEntry* e, double score);
  size_t Rank(const HEntry* e) const;  // e is in the tree
  LeafPos Select(size_t rank) const;   // rank < size()
  size_t CountBelow(double s, bool inclusive) const;
  size_t CountBelowLex(std::string_view m, bool inclusive) const;
  void Clear();  // frees the nodes (the entries are the caller's)

  size_t RecomputeBytes() const;
  bool Check() const;  // every structural invariant; for tests

 private:
  struct Path {
    Inner* node[kMaxHeight];
    uint32_t idx[kMaxHeight];  // child taken at node[level]
    Leaf* leaf;
    uint32_t pos;
  };

  size_t Locate(const HEntry* e, Path* p) const;  // returns the rank of leaf->e[0]
  void EraseAt(Path* p);
  void FixMin(const Path& p, int level, HEntry* m);
  void AddChild(Path* p, int level, void* left, uint64_t left_count, void* right,
                uint64_t right_count);
  void RemoveChild(Path* p, int level);
  void MaybeMergeLeaf(Path* p);
  void MaybeMergeInner(Path* p, int level);
  Leaf* NewLeaf();
  Inner* NewInner(bool leaves);
  void FreeLeaf(Leaf* l);
  void FreeInner(Inner* in);
  void FreeSubtree(void* node, int level);
  bool CheckSubtree(const void* node, int level, uint64_t* count, const HEntry** min,
                    Leaf** next_leaf) const;
  size_t SubtreeBytes(const void* node, int level) const;

  void* root_ = nullptr;  // Leaf when height_ == 0, else Inner
  int height_ = 0;        // inner levels above the leaves
  Leaf* first_ = nullptr;
  Leaf* last_ = nullptr;
  size_t size_ = 0;
  size_t bytes_ = 0;  // malloc_usable_size of every node
};

}  // namespace zset_internal

class ZSet {
 public:
  static constexpr uint32_t kMaxPackedMembers = 128;
  static constexpr size_t kMaxPackedBytes = 64;

  ZSet();
  ~ZSet();
  ZSet(const ZSet&) = delete;
  ZSet& operator=(const ZSet&) = delete;

  size_t size() const { return large_ ? large_->hash.size() : packed_.count() / 2; }
  // Heap bytes held, not counting sizeof(ZSet).
  size_t bytes() const {
    return large_ ? sizeof(Large) + large_->entry_bytes + large_->tree.bytes() +
                        large_->hash.bucket_bytes()
                  : packed_.bytes();
  }
  bool packed() const { return !large_; }

  enum class Put : uint8_t { kAdded, kUpdated, kUnchanged };
  // Adds member, or sets the score of an existing one.
  Put Insert(std::string_view member, double score);
  std::optional<double> Score(std::string_view member) const;
  bool Erase(std::string_view member);
  std::optional<size_t> Rank(std::string_view member) const;  // 0-based, ascending

  // Elements with ascending rank in [start, end) (clamped to size()): fn(member, score). With
  // rev, ranks count from the highest score (rank 0 = highest) and elements come highest
  // first. The member view is valid during the call only.
  template <typename Fn>
  void ForRankRange(size_t start, size_t end, bool rev, Fn&& fn) const {
    const size_t n = size();
    if (end > n) end = n;
    if (start >= end) return;
    if (!large_) {
      uint32_t offsets[kMaxPackedMembers];
      PackedOffsets(offsets);
      for (size_t r = start; r < end; ++r) {
        const uint32_t pos = offsets[rev ? n - 1 - r : r];
        uint32_t next;
        std::string_view member = packed_.At(pos, &next);
        fn(member, PackedScore(packed_.At(next)));
      }
      return;
    }
    zset_internal::LeafPos p = large_->tree.Select(rev ? n - 1 - start : start);
    for (size_t r = start;;) {
      const HEntry* e = p.entry();
      fn(zset_internal::EntryMember(e), zset_internal::EntryScore(e));
      if (++r == end) break;
      rev ? p.Prev() : p.Next();
    }
  }

  // Number of elements with score < s (inclusive = false) or <= s (inclusive = true). Two
  // calls turn a score range into a rank range.
  size_t CountBelow(double s, bool inclusive) const;
  // For lex ranges (meaningful when all scores are equal, as in Redis): the number of
  // elements whose member is < m (or <= m), comparing members only. Monotonic in m, whatever
  // the scores.
  size_t CountBelowLex(std::string_view m, bool inclusive) const;

  // Every element: fn(member, score) (in order, though callers should not rely on it).
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    if (!large_) {
      for (uint32_t pos = 0; pos < packed_.end();) {
        std::string_view member = packed_.At(pos, &pos);
        fn(member, PackedScore(packed_.At(pos, &pos)));
      }
      return;
    }
    for (const zset_internal::Leaf* l = large_->tree.first(); l != nullptr; l = l->next) {
      for (uint32_t i = 0; i < l->n; ++i) {
        fn(zset_internal::EntryMember(l->e[i]), zset_internal::EntryScore(l->e[i]));
      }
    }
  }

  // SCAN: one bucket's elements (large), or all of them (packed, then 0); returns the next
  // cursor, 0 when done. fn(member, score).
  template <typename Fn>
  uint64_t Scan(uint64_t cursor, Fn&& fn) const {
    if (!large_) {
      ForEach(fn);
      return 0;
    }
    return large_->hash.ScanBucket(cursor, [&](const HEntry* e) {
      fn(zset_internal::EntryMember(e), zset_internal::EntryScore(e));
    });
  }

  // Removes up to n lowest (or highest) elements, calling fn(member, score) on each, in that
  // order, before it goes. Returns how many were removed.
  template <typename Fn>
  size_t PopMin(size_t n, bool highest, Fn&& fn) {
    const size_t size_before = size();
    const size_t k = n < size_before ? n : size_before;
    if (k == 0) return 0;
    if (!large_) {
      uint32_t offsets[kMaxPackedMembers];
      PackedOffsets(offsets);
      for (size_t r = 0; r < k; ++r) {
        const uint32_t pos = offsets[highest ? size_before - 1 - r : r];
        uint32_t next;
        std::string_view member = packed_.At(pos, &next);
        fn(member, PackedScore(packed_.At(next)));
      }
      packed_.EraseAt(highest ? offsets[size_before - k] : 0, static_cast<uint32_t>(2 * k));
      return k;
    }
    for (size_t r = 0; r < k; ++r) {
      const zset_internal::Leaf* l = highest ? large_->tree.last() : large_->tree.first();
      HEntry* e = l->e[highest ? l->n - 1 : 0];
      fn(zset_internal::EntryMember(e), zset_internal::EntryScore(e));
      EraseEntry(e);
    }
    return k;
  }

  size_t RecomputeBytesForTest() const;
  bool CheckInvariantsForTest() const;
  int TreeHeightForTest() const { return large_ ? large_->tree.height() : -1; }

 private:
  struct Large {
    EntryHash hash;
    zset_internal::RankTree tree;
    size_t entry_bytes = 0;  // malloc_usable_size of every entry
  };

  static double PackedScore(std::string_view raw) {
    double s;
    std::memcpy(&s, raw.data(), sizeof s);
    return s;
  }
  // Fills out[i] with the position of the i-th pair; returns the pair count.
  uint32_t PackedOffsets(uint32_t* out) const;
  void PackedInsertSorted(std::string_view member, double score);
  void ConvertToLarge();
  void EraseEntry(HEntry* e);

  PackedVec packed_;
  std::unique_ptr<Large> large_;
};

}  // namespace cellar::storage
