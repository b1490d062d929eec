// List: the list data type (LPUSH/RPOP/LRANGE..., Momento ListPushFront/ListFetch...), a
// sequence of binary strings laid out like Redis's quicklist of listpacks.
//
// Layout. The elements live in nodes; a node is ONE malloc'd block: a 12-byte header (begin,
// end, cap) and then packed entries in [begin, end) of its data area, with free space on either
// side so that pushes and pops at both ends of a node move no bytes. An entry is
//     [varint len][len bytes][reversed varint len]
// (LEB128; the trailing copy, read right to left, lets PopBack and reverse scans step backwards
// without an offset table, as listpack's backlen does; both copies are 1 byte below 128). A
// node holds at most kNodeElems entries and kNodeBytes entry bytes, except that an element
// whose entry alone exceeds kNodeBytes gets a node of its own. A small list is one node: that
// is its compact encoding. nodes_[j] points at node j and counts_[j] is its element count; the
// counts are a separate dense array so an index lookup reads only counts, never other nodes.
// Both are devectors (free space at both ends), kept in lockstep.
//
// Costs (n elements, B = kNodeElems = 128):
//   PushFront/PushBack/PopFront/PopBack      O(1) amortized; one malloc per new node, none per
//                                            element (a new end node is sized like the full
//                                            one it follows)
//   At/Set/Insert(i) and locating index i    O(n/B) scan of counts (from the nearer end)
//                                            + O(B) inside the node (from its nearer end)
//   ForRange/ForRangeReverse of k elements   O(n/B + k)
//   Erase(start, k), Trim                    O(n/B + k)
//   Remove, Find                             O(elements examined)
// Set/Insert/Erase/Remove also move at most one node's bytes per touched node (<= 4 KiB).
//
// Invariants: no node is empty (a node is freed the moment its last element goes);
// counts_ sums to size_; node_bytes_ == sum of malloc_usable_size over the nodes, so bytes()
// is O(1); after Erase/Remove/Trim/Set, adjacent touched nodes whose union fits in one node are
// merged. An empty list holds no heap memory (bytes() == 0).
//
// Values passed in (v) must not point into this list's own storage (copy an At() view first).
// An element must be shorter than 2^31 bytes (node offsets are 32-bit; the engine's value cap
// is far lower).
//
// Thread: owned by one shard thread, like the Engine that holds it; not thread-safe.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace cellar::storage {

namespace list_internal {

// A double-ended array of trivially copyable T: amortized O(1) push/pop at both ends, O(min(i,
// n-i)) insert/erase at i. Frees its buffer when it becomes empty.
template <typename T>
class Devector {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  Devector() = default;
  ~Devector();
  Devector(const Devector&) = delete;
  Devector& operator=(const Devector&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return buf_[head_ + i]; }
  const T& operator[](size_t i) const { return buf_[head_ + i]; }
  const T* data() const { return buf_ + head_; }
  // Heap bytes held (malloc_usable_size of the buffer; 0 when nothing is allocated).
  size_t AllocBytes() const { return alloc_bytes_; }
  size_t RecomputeAllocBytes() const;  // malloc_usable_size of the buffer, asked afresh

  void PushBack(T v);
  void PushFront(T v);
  void PopBack();
  void PopFront();
  void Insert(size_t i, T v);
  void Erase(size_t i, size_t n);
  void Clear();

 private:
  // Moves the elements to a buffer of new_cap slots starting at new_head (a new buffer unless
  // new_cap == cap_, in which case they are moved within the old one).
  void Relocate(size_t new_cap, size_t new_head);
  void MakeRoomBack();
  void MakeRoomFront();
  void MaybeShrink();

  T* buf_ = nullptr;
  size_t cap_ = 0;   // slots
  size_t head_ = 0;  // slot of element 0
  size_t size_ = 0;  // elements
  size_t alloc_bytes_ = 0;
};

}  // namespace list_internal

class List {
 public:
  static constexpr uint32_t kNodeElems = 128;   // entries per node, at most
  static constexpr uint32_t kNodeBytes = 4096;  // entry bytes per node, at most (see above)

  List();
  ~List();
  List(const List&) = delete;
  List& operator=(const List&) = delete;

  size_t size() const { return size_; }
  // Heap bytes held: node blocks plus the two node arrays. Not counting sizeof(List).
  size_t bytes() const { return node_bytes_ + nodes_.AllocBytes() + counts_.AllocBytes(); }

  void PushFront(std::string_view v);
  void PushBack(std::string_view v);
  // False if empty; out may be nullptr (discard).
  bool PopFront(std::string* out);
  bool PopBack(std::string* out);
  // Element i (0 <= i < size()), as a view valid until the next change.
  std::string_view At(size_t i) const;
  void Set(size_t i, std::string_view v);     // 0 <= i < size()
  void Insert(size_t i, std::string_view v);  // before element i; i == size() appends
  void Erase(size_t start, size_t count);     // clamped to the end
  // Keeps only [start, end) (clamped); Trim(0, 0) empties the list.
  void Trim(size_t start, size_t end);
  // Calls fn(std::string_view) for elements [start, end) in order (clamped), O(n/128 + k).
  // If fn returns bool, false stops the walk.
  template <typename Fn>
  void ForRange(size_t start, size_t end, Fn&& fn) const;
  // Same backwards: elements end-1 down to start.
  template <typename Fn>
  void ForRangeReverse(size_t start, size_t end, Fn&& fn) const;
  // LREM: removes up to |count| elements equal to v (count 0: all; > 0 from the head; < 0 from
  // the tail). Returns how many were removed.
  size_t Remove(std::string_view v, int64_t count);
  // LPOS building block: calls fn(index) (index from the head) for each element equal to v,
  // scanning from the head (or from the tail when reverse), examining at most maxlen elements
  // (0 = all); fn returns false to stop.
  template <typename Fn>
  void Find(std::string_view v, bool reverse, size_t maxlen, Fn&& fn) const;

  // bytes() computed from scratch (walks every node); for tests.
  size_t RecomputeBytesForTest() const;
  // Checks every invariant above (counts, entry framing, no empty or mergeable-by-rule
  // violations that must not exist); returns false on the first violation. For tests.
  bool CheckInvariantsForTest() const;
  size_t NodeCountForTest() const { return nodes_.size(); }

 private:
  // One malloc'd block; entries live in data()[begin, end), data() has cap bytes.
  struct Node {
    uint32_t begin;
    uint32_t end;
    uint32_t cap;
    char* data() { return reinterpret_cast<char*>(this + 1); }
    const char* data() const { return reinterpret_cast<const char*>(this + 1); }
    uint32_t used() const { return end - begin; }
  };
  static_assert(sizeof(Node) == 12);

  // Entry framing.
  static size_t VarintSize(size_t x) {
    size_t n = 1;
    while (x >= 0x80) {
      x >>= 7;
      ++n;
    }
    return n;
  }
  static size_t EntrySize(size_t len) { return len + 2 * VarintSize(len); }
  // Decodes the entry starting at p: its element, and returns the start of the next entry.
  static const char* ReadForward(const char* p, std::string_view* elem) {
    auto c = static_cast<uint8_t>(*p);
    if (c < 0x80) [[likely]] {
      *elem = {p + 1, c};
      return p + 2 + c;
    }
    size_t len = 0, shift = 0, s = 0;
    do {
      c = static_cast<uint8_t>(p[s++]);
      len |= size_t{c & 0x7fu} << shift;
      shift += 7;
    } while (c & 0x80);
    *elem = {p + s, len};
    return p + 2 * s + len;
  }
  // Decodes the entry ending at q: its element, and returns where that entry starts.
  static const char* ReadBackward(const char* q, std::string_view* elem) {
    auto c = static_cast<uint8_t>(q[-1]);
    if (c < 0x80) [[likely]] {
      *elem = {q - 1 - c, c};
      return q - 2 - c;
    }
    size_t len = 0, shift = 0, s = 0;
    do {
      c = static_cast<uint8_t>(*(q - 1 - s));
      ++s;
      len |= size_t{c & 0x7fu} << shift;
      shift += 7;
    } while (c & 0x80);
    *elem = {q - s - len, len};
    return q - 2 * s - len;
  }
  static void WriteEntry(char* p, std::string_view v);

  // Index i -> (node j, position k inside node j).
  std::pair<size_t, size_t> Locate(size_t i) const;
  // Offset in n->data() of entry k of a node with `count` entries (walks from the nearer end).
  static uint32_t EntryOffset(const Node* n, size_t count, size_t k);

  // Node memory. Every (re)allocation goes through these so node_bytes_ stays exact.
  Node* NewNode(size_t min_cap, bool data_at_end);
  void FreeNode(Node* n);
  // Makes a gap of len bytes at offset off of n's data (begin <= off <= end), moving the
  // shorter side or growing the block; returns the gap's new offset. n may be reallocated.
  uint32_t OpenGap(Node*& n, uint32_t off, uint32_t len);
  // Removes bytes [off, off + len) from n's data, moving the shorter side.
  static void CloseGap(Node* n, uint32_t off, uint32_t len);
  // Gives back slack when the data fills less than half the block.
  void MaybeShrink(Node*& n);
  // Reallocates n to a data area of cap >= used bytes, the data moved to its start.
  void Resize(Node*& n, size_t cap);
  bool CanMerge(size_t a, size_t b) const {
    return counts_[a] + counts_[b] <= kNodeElems &&
           nodes_[a]->used() + nodes_[b]->used() <= kNodeBytes;
  }
  // Removes freed nodes (nullptr) from slots [lo, hi] and merges adjacent nodes in that range
  // whose union fits in one node, in one pass over the range.
  void Normalize(size_t lo, size_t hi);
  // Removes up to `remaining` entries from node j starting at its entry k. Frees the node (slot
  // set to nullptr, count 0) if it empties. Returns how many were removed.
  size_t EraseInNode(size_t j, size_t k, size_t remaining);
  // Empties the list, freeing everything.
  void Clear();

  list_internal::Devector<Node*> nodes_;
  list_internal::Devector<uint32_t> counts_;  // counts_[j] = elements in nodes_[j]
  size_t size_ = 0;                           // elements
  size_t node_bytes_ = 0;                     // sum of malloc_usable_size(nodes_[j])
};

// ---- templates ----

namespace list_internal {
template <typename Fn, typename... Args>
inline bool CallContinue(Fn& fn, Args&&... args) {
  if constexpr (std::is_same_v<std::invoke_result_t<Fn&, Args...>, bool>) {
    return fn(std::forward<Args>(args)...);
  } else {
    fn(std::forward<Args>(args)...);
    return true;
  }
}
}  // namespace list_internal

template <typename Fn>
void List::ForRange(size_t start, size_t end, Fn&& fn) const {
  if (end > size_) end = size_;
  if (start >= end) return;
  size_t left = end - start;
  auto [j, k] = Locate(start);
  const Node* n = nodes_[j];
  const char* p = n->data() + EntryOffset(n, counts_[j], k);
  for (;;) {
    const char* e = n->data() + n->end;
    std::string_view elem;
    while (p < e) {
      p = ReadForward(p, &elem);
      if (!list_internal::CallContinue(fn, elem) || --left == 0) return;
    }
    n = nodes_[++j];
    p = n->data() + n->begin;
  }
}

template <typename Fn>
void List::ForRangeReverse(size_t start, size_t end, Fn&& fn) const {
  if (end > size_) end = size_;
  if (start >= end) return;
  size_t left = end - start;
  auto [j, k] = Locate(end - 1);
  const Node* n = nodes_[j];
  // q: the end of entry k.
  const char* q = n->data() + (k + 1 == counts_[j] ? n->end : EntryOffset(n, counts_[j], k + 1));
  for (;;) {
    const char* b = n->data() + n->begin;
    std::string_view elem;
    while (q > b) {
      q = ReadBackward(q, &elem);
      if (!list_internal::CallContinue(fn, elem) || --left == 0) return;
    }
    n = nodes_[--j];
    q = n->data() + n->end;
  }
}

template <typename Fn>
void List::Find(std::string_view v, bool reverse, size_t maxlen, Fn&& fn) const {
  size_t budget = maxlen == 0 ? size_ : std::min(maxlen, size_);
  if (budget == 0) return;
  std::string_view elem;
  if (!reverse) {
    size_t index = 0;
    for (size_t j = 0;; ++j) {
      const Node* n = nodes_[j];
      const char* p = n->data() + n->begin;
      const char* e = n->data() + n->end;
      while (p < e) {
        p = ReadForward(p, &elem);
        if (elem == v && !fn(index)) return;
        ++index;
        if (--budget == 0) return;
      }
    }
  } else {
    size_t index = size_;
    for (size_t j = nodes_.size(); j-- > 0;) {
      const Node* n = nodes_[j];
      const char* q = n->data() + n->end;
      const char* b = n->data() + n->begin;
      while (q > b) {
        q = ReadBackward(q, &elem);
        --index;
        if (elem == v && !fn(index)) return;
        if (--budget == 0) return;
      }
    }
  }
}

}  // namespace cellar::storage
