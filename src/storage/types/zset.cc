#include "storage/types/zset.h"

#include <malloc.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace cellar::storage {
namespace zset_internal {
namespace {

// Sign of (s, m) compared with e's key.
int CompareKey(double s, std::string_view m, const HEntry* e) {
  const double es = EntryScore(e);
  if (s < es) return -1;
  if (s > es) return 1;
  return m.compare(EntryMember(e));
}

// Whether (s, m) is at least the smallest key of child i.
bool AtLeastMin(const Inner* in, uint32_t i, double s, std::string_view m) {
  const double ms = in->min_score[i];
  if (s != ms) return s > ms;
  return m.compare(EntryMember(in->min_entry[i])) >= 0;
}

// The child whose key range holds (s, m): the last one whose minimum is <= (s, m), else 0.
uint32_t ChildFor(const Inner* in, double s, std::string_view m) {
  uint32_t lo = 1, hi = in->n;
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if (AtLeastMin(in, mid, s, m)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo - 1;
}

// The number of elements of l ordered before (s, m).
uint32_t LeafLowerBound(const Leaf* l, double s, std::string_view m) {
  uint32_t lo = 0, hi = l->n;
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if (CompareKey(s, m, l->e[mid]) > 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

uint64_t SumCounts(const Inner* in, uint32_t end) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < end; ++i) sum += in->count[i];
  return sum;
}

HEntry* NodeMin(const void* node, bool leaf) {
  return leaf ? static_cast<const Leaf*>(node)->e[0]
              : static_cast<const Inner*>(node)->min_entry[0];
}

void InsertInLeaf(Leaf* l, uint32_t pos, HEntry* e) {
  std::memmove(l->e + pos + 1, l->e + pos, (l->n - pos) * sizeof(HEntry*));
  l->e[pos] = e;
  ++l->n;
}

void InsertInInner(Inner* in, uint32_t j, void* child, uint64_t count, HEntry* min) {
  const size_t tail = in->n - j;
  std::memmove(in->count + j + 1, in->count + j, tail * sizeof(uint64_t));
  std::memmove(in->min_score + j + 1, in->min_score + j, tail * sizeof(double));
  std::memmove(in->min_entry + j + 1, in->min_entry + j, tail * sizeof(HEntry*));
  std::memmove(in->child + j + 1, in->child + j, tail * sizeof(void*));
  in->count[j] = count;
  in->min_score[j] = EntryScore(min);
  in->min_entry[j] = min;
  in->child[j] = child;
  ++in->n;
}

// Moves children [from, src->n) of src to the end of dst.
void MoveChildren(Inner* dst, Inner* src, uint32_t from) {
  const uint32_t k = src->n - from;
  std::memcpy(dst->count + dst->n, src->count + from, k * sizeof(uint64_t));
  std::memcpy(dst->min_score + dst->n, src->min_score + from, k * sizeof(double));
  std::memcpy(dst->min_entry + dst->n, src->min_entry + from, k * sizeof(HEntry*));
  std::memcpy(dst->child + dst->n, src->child + from, k * sizeof(void*));
  dst->n += k;
  src->n = from;
}

}  // namespace

Leaf* RankTree::NewLeaf() {
  Leaf* l = static_cast<Leaf*>(std::malloc(sizeof(Leaf)));
  if (l == nullptr) std::abort();
  l->prev = l->next = nullptr;
  l->n = 0;
  bytes_ += malloc_usable_size(l);
  return l;
}

Inner* RankTree::NewInner(bool leaves) {
  Inner* in = static_cast<Inner*>(std::malloc(sizeof(Inner)));
  if (in == nullptr) std::abort();
  in->n = 0;
  in->leaves = leaves;
  bytes_ += malloc_usable_size(in);
  return in;
}

void RankTree::FreeLeaf(Leaf* l) {
  if (l->prev != nullptr) {
    l->prev->next = l->next;
  } else {
    first_ = l->next;
  }
  if (l->next != nullptr) {
    l->next->prev = l->prev;
  } else {
    last_ = l->prev;
  }
  bytes_ -= malloc_usable_size(l);
  std::free(l);
}

void RankTree::FreeInner(Inner* in) {
  bytes_ -= malloc_usable_size(in);
  std::free(in);
}

void RankTree::Insert(HEntry* e) {
  const double s = EntryScore(e);
  const std::string_view m = EntryMember(e);
  ++size_;
  if (root_ == nullptr) {
    Leaf* l = NewLeaf();
    l->e[0] = e;
    l->n = 1;
    root_ = first_ = last_ = l;
    height_ = 0;
    return;
  }
  Path p;
  void* node = root_;
  for (int level = 0; level < height_; ++level) {
    Inner* in = static_cast<Inner*>(node);
    const uint32_t i = ChildFor(in, s, m);
    ++in->count[i];
    p.node[level] = in;
    p.idx[level] = i;
    node = in->child[i];
  }
  Leaf* leaf = static_cast<Leaf*>(node);
  const uint32_t pos = LeafLowerBound(leaf, s, m);
  if (leaf->n < kLeafCap) {
    InsertInLeaf(leaf, pos, e);
    if (pos == 0) FixMin(p, height_ - 1, e);
    return;
  }
  // Split a full leaf in halves, except when appending past the last element (or before the
  // first): then the old leaf stays full, so ascending or descending loads fill every leaf.
  uint32_t split = kLeafCap / 2;
  bool to_left = pos < split;
  if (pos == kLeafCap && leaf->next == nullptr) {
    split = kLeafCap;
    to_left = false;
  } else if (pos == 0 && leaf->prev == nullptr) {
    split = 0;
    to_left = true;
  }
  Leaf* right = NewLeaf();
  right->n = kLeafCap - split;
  std::memcpy(right->e, leaf->e + split, right->n * sizeof(HEntry*));
  leaf->n = split;
  right->prev = leaf;
  right->next = leaf->next;
  if (leaf->next != nullptr) {
    leaf->next->prev = right;
  } else {
    last_ = right;
  }
  leaf->next = right;
  if (to_left) {
    InsertInLeaf(leaf, pos, e);
    if (pos == 0) FixMin(p, height_ - 1, e);
  } else {
    InsertInLeaf(right, pos - split, e);
  }
  AddChild(&p, height_ - 1, leaf, leaf->n, right, right->n);
}

// The smallest key of the subtree under p.node[level]'s child p.idx[level] is now m; it is
// also the smallest of every ancestor it is the leftmost descendant of.
void RankTree::FixMin(const Path& p, int level, HEntry* m) {
  const double s = EntryScore(m);
  for (int l = level; l >= 0; --l) {
    p.node[l]->min_entry[p.idx[l]] = m;
    p.node[l]->min_score[p.idx[l]] = s;
    if (p.idx[l] != 0) break;
  }
}

// `left` (child p->idx[level] of p->node[level], or the root when level < 0) was split: it
// now holds left_count elements, and `right` (right_count) goes right after it.
void RankTree::AddChild(Path* p, int level, void* left, uint64_t left_count, void* right,
                        uint64_t right_count) {
  const bool leaves = level == height_ - 1;
  if (level < 0) {
    if (height_ == kMaxHeight) std::abort();  // unreachable: needs ~16^24 elements
    Inner* r = NewInner(leaves);
    InsertInInner(r, 0, left, left_count, NodeMin(left, leaves));
    InsertInInner(r, 1, right, right_count, NodeMin(right, leaves));
    root_ = r;
    ++height_;
    return;
  }
  Inner* in = p->node[level];
  const uint32_t i = p->idx[level];
  in->count[i] = left_count;
  HEntry* right_min = NodeMin(right, leaves);
  if (in->n < kInnerCap) {
    InsertInInner(in, i + 1, right, right_count, right_min);
    return;
  }
  Inner* sib = NewInner(in->leaves);
  constexpr uint32_t kHalf = kInnerCap / 2;
  MoveChildren(sib, in, kHalf);
  if (i + 1 <= kHalf) {
    InsertInInner(in, i + 1, right, right_count, right_min);
  } else {
    InsertInInner(sib, i + 1 - kHalf, right, right_count, right_min);
  }
  AddChild(p, level - 1, in, SumCounts(in, in->n), sib, SumCounts(sib, sib->n));
}

size_t RankTree::Locate(const HEntry* e, Path* p) const {
  const double s = EntryScore(e);
  const std::string_view m = EntryMember(e);
  size_t rank = 0;
  const void* node = root_;
  for (int level = 0; level < height_; ++level) {
    Inner* in = static_cast<Inner*>(const_cast<void*>(node));
    const uint32_t i = ChildFor(in, s, m);
    rank += SumCounts(in, i);
    p->node[level] = in;
    p->idx[level] = i;
    node = in->child[i];
  }
  Leaf* leaf = static_cast<Leaf*>(const_cast<void*>(node));
  // Keys are unique, so the entry is found by address: no member comparisons.
  uint32_t pos = 0;
  while (pos < leaf->n && leaf->e[pos] != e) ++pos;
  if (pos == leaf->n) std::abort();  // the entry's key changed behind the tree's back
  p->leaf = leaf;
  p->pos = pos;
  return rank;
}

void RankTree::Erase(HEntry* e) {
  Path p;
  Locate(e, &p);
  EraseAt(&p);
}

void RankTree::EraseAt(Path* p) {
  for (int level = 0; level < height_; ++level) --p->node[level]->count[p->idx[level]];
  --size_;
  Leaf* leaf = p->leaf;
  const uint32_t pos = p->pos;
  std::memmove(leaf->e + pos, leaf->e + pos + 1, (leaf->n - pos - 1) * sizeof(HEntry*));
  --leaf->n;
  if (leaf->n == 0) {
    FreeLeaf(leaf);
    if (height_ == 0) {
      root_ = nullptr;
      return;
    }
    RemoveChild(p, height_ - 1);
    return;
  }
  if (pos == 0) FixMin(*p, height_ - 1, leaf->e[0]);
  if (leaf->n < kLeafCap / 4) MaybeMergeLeaf(p);
}

// Drops child p->idx[level] of p->node[level] (already freed or merged away).
void RankTree::RemoveChild(Path* p, int level) {
  Inner* in = p->node[level];
  const uint32_t i = p->idx[level];
  const size_t tail = in->n - i - 1;
  std::memmove(in->count + i, in->count + i + 1, tail * sizeof(uint64_t));
  std::memmove(in->min_score + i, in->min_score + i + 1, tail * sizeof(double));
  std::memmove(in->min_entry + i, in->min_entry + i + 1, tail * sizeof(HEntry*));
  std::memmove(in->child + i, in->child + i + 1, tail * sizeof(void*));
  --in->n;
  if (in->n == 0) {
    FreeInner(in);
    if (level == 0) {
      root_ = nullptr;
      height_ = 0;
      return;
    }
    RemoveChild(p, level - 1);
    return;
  }
  if (i == 0) FixMin(*p, level - 1, in->min_entry[0]);
  if (level == 0) {
    // A root with one child is replaced by it, so the height shrinks as the tree does.
    while (height_ > 0 && static_cast<Inner*>(root_)->n == 1) {
      Inner* r = static_cast<Inner*>(root_);
      root_ = r->child[0];
      FreeInner(r);
      --height_;
    }
    return;
  }
  if (in->n < kInnerCap / 4) MaybeMergeInner(p, level);
}

void RankTree::MaybeMergeLeaf(Path* p) {
  if (height_ == 0) return;
  const int level = height_ - 1;
  Inner* parent = p->node[level];
  const uint32_t i = p->idx[level];
  Leaf* leaf = p->leaf;
  if (i > 0 && parent->count[i - 1] < kLeafCap / 4) {
    Leaf* left = static_cast<Leaf*>(parent->child[i - 1]);
    std::memcpy(left->e + left->n, leaf->e, leaf->n * sizeof(HEntry*));
    left->n += leaf->n;
    parent->count[i - 1] += leaf->n;
    FreeLeaf(leaf);
    RemoveChild(p, level);
  } else if (i + 1 < parent->n && parent->count[i + 1] < kLeafCap / 4) {
    Leaf* right = static_cast<Leaf*>(parent->child[i + 1]);
    std::memcpy(leaf->e + leaf->n, right->e, right->n * sizeof(HEntry*));
    leaf->n += right->n;
    parent->count[i] += right->n;
    FreeLeaf(right);
    p->idx[level] = i + 1;
    RemoveChild(p, level);
  }
}

void RankTree::MaybeMergeInner(Path* p, int level) {
  Inner* in = p->node[level];
  Inner* parent = p->node[level - 1];
  const uint32_t i = p->idx[level - 1];
  if (i > 0) {
    Inner* left = static_cast<Inner*>(parent->child[i - 1]);
    if (left->n < kInnerCap / 4) {
      MoveChildren(left, in, 0);
      parent->count[i - 1] += parent->count[i];
      FreeInner(in);
      RemoveChild(p, level - 1);
      return;
    }
  }
  if (i + 1 < parent->n) {
    Inner* right = static_cast<Inner*>(parent->child[i + 1]);
    if (right->n < kInnerCap / 4) {
      MoveChildren(in, right, 0);
      parent->count[i] += parent->count[i + 1];
      FreeInner(right);
      p->idx[level - 1] = i + 1;
      RemoveChild(p, level - 1);
    }
  }
}

void RankTree::Rescore(HEntry* e, double score) {
  Path p;
  Locate(e, &p);
  const Leaf* leaf = p.leaf;
  const uint32_t pos = p.pos;
  const std::string_view m = EntryMember(e);
  // Still between its neighbours, and not a leaf's first element (the only ones inner nodes
  // copy): the score changes in place.
  if (pos > 0 && CompareKey(score, m, leaf->e[pos - 1]) > 0) {
    const HEntry* next = pos + 1 < leaf->n       ? leaf->e[pos + 1]
                         : leaf->next != nullptr ? leaf->next->e[0]
                                                 : nullptr;
    if (next == nullptr || CompareKey(score, m, next) < 0) {
      SetEntryScore(e, score);
      return;
    }
  }
  EraseAt(&p);
  SetEntryScore(e, score);
  Insert(e);
}

size_t RankTree::Rank(const HEntry* e) const {
  Path p;
  const size_t before = Locate(e, &p);
  return before + p.pos;
}

LeafPos RankTree::Select(size_t rank) const {
  const void* node = root_;
  for (int level = 0; level < height_; ++level) {
    const Inner* in = static_cast<const Inner*>(node);
    uint32_t i = 0;
    while (i + 1 < in->n && rank >= in->count[i]) rank -= in->count[i++];
    node = in->child[i];
  }
  return {static_cast<Leaf*>(const_cast<void*>(node)), static_cast<uint32_t>(rank)};
}

namespace {

// Number of elements before the first one for which `below` is false, in a tree whose elements
// are ordered so that `below` holds on a prefix. `below` sees an inner node and a child index
// (to read the child's cached minimum) or a leaf entry.
template <typename InnerBelow, typename EntryBelow>
size_t CountPrefix(const void* root, int height, InnerBelow&& inner_below,
                   EntryBelow&& entry_below) {
  if (root == nullptr) return 0;
  size_t rank = 0;
  const void* node = root;
  for (int level = 0; level < height; ++level) {
    const Inner* in = static_cast<const Inner*>(node);
    uint32_t lo = 1, hi = in->n;
    while (lo < hi) {
      const uint32_t mid = (lo + hi) / 2;
      if (inner_below(in, mid)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    rank += SumCounts(in, lo - 1);
    node = in->child[lo - 1];
  }
  const Leaf* leaf = static_cast<const Leaf*>(node);
  uint32_t lo = 0, hi = leaf->n;
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if (entry_below(leaf->e[mid])) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return rank + lo;
}

}  // namespace

size_t RankTree::CountBelow(double s, bool inclusive) const {
  auto below = [s, inclusive](double x) { return inclusive ? x <= s : x < s; };
  return CountPrefix(
      root_, height_, [&](const Inner* in, uint32_t i) { return below(in->min_score[i]); },
      [&](const HEntry* e) { return below(EntryScore(e)); });
}

// As CountBelow on members. When scores differ the members are not sorted, but the search
// still ends at a position between 0 and size(), and a larger m never gives a smaller one.
size_t RankTree::CountBelowLex(std::string_view m, bool inclusive) const {
  auto below = [m, inclusive](const HEntry* e) {
    const int c = EntryMember(e).compare(m);
    return inclusive ? c <= 0 : c < 0;
  };
  return CountPrefix(
      root_, height_, [&](const Inner* in, uint32_t i) { return below(in->min_entry[i]); },
      below);
}

void RankTree::FreeSubtree(void* node, int level) {
  if (level == height_) {
    Leaf* l = static_cast<Leaf*>(node);
    bytes_ -= malloc_usable_size(l);
    std::free(l);
    return;
  }
  Inner* in = static_cast<Inner*>(node);
  for (uint32_t i = 0; i < in->n; ++i) FreeSubtree(in->child[i], level + 1);
  FreeInner(in);
}

void RankTree::Clear() {
  if (root_ != nullptr) FreeSubtree(root_, 0);
  root_ = nullptr;
  first_ = last_ = nullptr;
  height_ = 0;
  size_ = 0;
}

size_t RankTree::SubtreeBytes(const void* node, int level) const {
  size_t sum = malloc_usable_size(const_cast<void*>(node));
  if (level == height_) return sum;
  const Inner* in = static_cast<const Inner*>(node);
  for (uint32_t i = 0; i < in->n; ++i) sum += SubtreeBytes(in->child[i], level + 1);
  return sum;
}

size_t RankTree::RecomputeBytes() const { return root_ == nullptr ? 0 : SubtreeBytes(root_, 0); }

bool RankTree::CheckSubtree(const void* node, int level, uint64_t* count, const HEntry** min,
                            Leaf** next_leaf) const {
  if (level == height_) {
    const Leaf* l = static_cast<const Leaf*>(node);
    if (l != *next_leaf || l->n == 0 || l->n > kLeafCap) return false;
    *next_leaf = l->next;
    *count = l->n;
    *min = l->e[0];
    return true;
  }
  const Inner* in = static_cast<const Inner*>(node);
  if (in->n == 0 || in->n > kInnerCap || in->leaves != (level + 1 == height_)) return false;
  uint64_t total = 0;
  for (uint32_t i = 0; i < in->n; ++i) {
    uint64_t c;
    const HEntry* m;
    if (!CheckSubtree(in->child[i], level + 1, &c, &m, next_leaf)) return false;
    if (c != in->count[i] || m != in->min_entry[i] || in->min_score[i] != EntryScore(m)) {
      return false;
    }
    total += c;
  }
  *count = total;
  *min = in->min_entry[0];
  return true;
}

bool RankTree::Check() const {
  if (root_ == nullptr) {
    return size_ == 0 && height_ == 0 && first_ == nullptr && last_ == nullptr;
  }
  if (height_ > 0 && static_cast<const Inner*>(root_)->n < 2) return false;
  uint64_t count;
  const HEntry* min;
  Leaf* next_leaf = first_;
  if (!CheckSubtree(root_, 0, &count, &min, &next_leaf)) return false;
  if (count != size_ || next_leaf != nullptr) return false;
  const Leaf* prev = nullptr;
  const HEntry* last_entry = nullptr;
  for (const Leaf* l = first_; l != nullptr; l = l->next) {
    if (l->prev != prev) return false;
    for (uint32_t i = 0; i < l->n; ++i) {
      const HEntry* e = l->e[i];
      if (last_entry != nullptr && CompareKey(EntryScore(e), EntryMember(e), last_entry) <= 0) {
        return false;
      }
      last_entry = e;
    }
    prev = l;
  }
  return last_ == prev;
}

}  // namespace zset_internal

using zset_internal::EntryMember;
using zset_internal::EntryScore;

namespace {

HEntry* NewEntry(uint32_t hash, std::string_view member, double score) {
  const uint32_t len = static_cast<uint32_t>(member.size());
  HEntry* e = HEntry::New(hash, 8 + VarintSize(len) + len);
  zset_internal::SetEntryScore(e, score);
  char* p = PutVarint(e->payload() + 8, len);
  if (len != 0) std::memcpy(p, member.data(), len);
  return e;
}

auto SameMember(std::string_view member) {
  return [member](const HEntry* e) { return EntryMember(e) == member; };
}

}  // namespace

ZSet::ZSet() = default;

ZSet::~ZSet() {
  if (large_) {
    large_->tree.Clear();
    large_->hash.Clear([](HEntry* e) { std::free(e); });
  }
}

uint32_t ZSet::PackedOffsets(uint32_t* out) const {
  uint32_t n = 0;
  for (uint32_t pos = 0; pos < packed_.end();) {
    out[n++] = pos;
    packed_.At(pos, &pos);
    packed_.At(pos, &pos);
  }
  return n;
}

void ZSet::PackedInsertSorted(std::string_view member, double score) {
  uint32_t pos = 0;
  while (pos < packed_.end()) {
    uint32_t next, after;
    const std::string_view m = packed_.At(pos, &next);
    const double s = PackedScore(packed_.At(next, &after));
    if (s > score || (s == score && m > member)) break;
    pos = after;
  }
  char raw[8];
  std::memcpy(raw, &score, sizeof raw);
  const std::string_view pair[2] = {member, {raw, sizeof raw}};
  packed_.InsertAt(pos, pair, 2);
}

void ZSet::ConvertToLarge() {
  auto large = std::make_unique<Large>();
  ForEach([&](std::string_view member, double score) {
    HEntry* e = NewEntry(ElementHash(member), member, score);
    large->hash.Insert(e);
    large->entry_bytes += HEntry::AllocBytes(e);
    large->tree.Insert(e);  // ascending: every leaf ends up full
  });
  packed_.Clear();
  large_ = std::move(large);
}

ZSet::Put ZSet::Insert(std::string_view member, double score) {
  if (score == 0) score = 0;  // -0.0 sorts and prints as 0, as in Redis
  if (!large_) {
    for (uint32_t pos = 0; pos < packed_.end();) {
      uint32_t next, after;
      const std::string_view m = packed_.At(pos, &next);
      const double old = PackedScore(packed_.At(next, &after));
      if (m == member) {
        if (old == score) return Put::kUnchanged;
        packed_.EraseAt(pos, 2);
        PackedInsertSorted(member, score);
        return Put::kUpdated;
      }
      pos = after;
    }
    if (size() < kMaxPackedMembers && member.size() <= kMaxPackedBytes) {
      PackedInsertSorted(member, score);
      return Put::kAdded;
    }
    ConvertToLarge();
  }
  const uint32_t hash = ElementHash(member);
  HEntry* e = large_->hash.Find(hash, SameMember(member));
  if (e != nullptr) {
    if (EntryScore(e) == score) return Put::kUnchanged;
    large_->tree.Rescore(e, score);
    return Put::kUpdated;
  }
  e = NewEntry(hash, member, score);
  large_->hash.Insert(e);
  large_->entry_bytes += HEntry::AllocBytes(e);
  large_->tree.Insert(e);
  return Put::kAdded;
}

std::optional<double> ZSet::Score(std::string_view member) const {
  if (!large_) {
    for (uint32_t pos = 0; pos < packed_.end();) {
      const std::string_view m = packed_.At(pos, &pos);
      const std::string_view raw = packed_.At(pos, &pos);
      if (m == member) return PackedScore(raw);
    }
    return std::nullopt;
  }
  const HEntry* e = large_->hash.Find(ElementHash(member), SameMember(member));
  if (e == nullptr) return std::nullopt;
  return EntryScore(e);
}

bool ZSet::Erase(std::string_view member) {
  if (!large_) {
    for (uint32_t pos = 0; pos < packed_.end();) {
      uint32_t next;
      const std::string_view m = packed_.At(pos, &next);
      if (m == member) {
        packed_.EraseAt(pos, 2);
        return true;
      }
      packed_.At(next, &pos);
    }
    return false;
  }
  HEntry* e = large_->hash.Remove(ElementHash(member), SameMember(member));
  if (e == nullptr) return false;
  large_->tree.Erase(e);
  large_->entry_bytes -= HEntry::AllocBytes(e);
  std::free(e);
  return true;
}

void ZSet::EraseEntry(HEntry* e) {
  large_->hash.Unlink(e);
  large_->tree.Erase(e);
  large_->entry_bytes -= HEntry::AllocBytes(e);
  std::free(e);
}

std::optional<size_t> ZSet::Rank(std::string_view member) const {
  if (!large_) {
    size_t rank = 0;
    for (uint32_t pos = 0; pos < packed_.end(); ++rank) {
      const std::string_view m = packed_.At(pos, &pos);
      packed_.At(pos, &pos);
      if (m == member) return rank;
    }
    return std::nullopt;
  }
  const HEntry* e = large_->hash.Find(ElementHash(member), SameMember(member));
  if (e == nullptr) return std::nullopt;
  return large_->tree.Rank(e);
}

size_t ZSet::CountBelow(double s, bool inclusive) const {
  if (large_) return large_->tree.CountBelow(s, inclusive);
  size_t n = 0;
  for (uint32_t pos = 0; pos < packed_.end(); ++n) {
    packed_.At(pos, &pos);
    const double score = PackedScore(packed_.At(pos, &pos));
    if (inclusive ? score > s : score >= s) break;
  }
  return n;
}

size_t ZSet::CountBelowLex(std::string_view m, bool inclusive) const {
  if (large_) return large_->tree.CountBelowLex(m, inclusive);
  size_t n = 0;
  for (uint32_t pos = 0; pos < packed_.end(); ++n) {
    const int c = packed_.At(pos, &pos).compare(m);
    packed_.At(pos, &pos);
    if (inclusive ? c > 0 : c >= 0) break;
  }
  return n;
}

size_t ZSet::RecomputeBytesForTest() const {
  if (!large_) return packed_.bytes();
  size_t sum = sizeof(Large) + large_->hash.bucket_bytes() + large_->tree.RecomputeBytes();
  large_->hash.ForEach([&](const HEntry* e) { sum += HEntry::AllocBytes(e); });
  return sum;
}

bool ZSet::CheckInvariantsForTest() const {
  if (!large_) {
    if (packed_.count() % 2 != 0 || size() > kMaxPackedMembers) return false;
    bool ok = true, first = true;
    double prev_score = 0;
    std::string_view prev_member;
    ForEach([&](std::string_view m, double s) {
      if (m.size() > kMaxPackedBytes) ok = false;
      if (!first && (s < prev_score || (s == prev_score && m <= prev_member))) ok = false;
      first = false;
      prev_score = s;
      prev_member = m;
    });
    // Distinct members (the order alone does not rule out one member twice).
    ForEach([&](std::string_view m, double) {
      size_t seen = 0;
      ForEach([&](std::string_view other, double) { seen += other == m; });
      if (seen != 1) ok = false;
    });
    return ok;
  }
  if (!large_->tree.Check() || large_->tree.size() != large_->hash.size()) return false;
  bool ok = true;
  size_t entry_bytes = 0;
  ForEach([&](std::string_view m, double s) {
    const HEntry* e = large_->hash.Find(ElementHash(m), SameMember(m));
    if (e == nullptr || EntryScore(e) != s || (s == 0 && std::signbit(s))) ok = false;
    if (e != nullptr) entry_bytes += HEntry::AllocBytes(e);
  });
  return ok && entry_bytes == large_->entry_bytes;
}

}  // namespace cellar::storage
