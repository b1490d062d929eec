#include "storage/types/list.h"

#include <malloc.h>

#include <cstdlib>
#include <new>

#include "common/check.h"

namespace cellar::storage {

namespace {

void* CheckedMalloc(size_t n) {
  void* p = std::malloc(n);
  if (p == nullptr) throw std::bad_alloc();  // as std containers do; the engine caps memory
  return p;
}

}  // namespace

// ---- Devector ----

namespace list_internal {

template <typename T>
Devector<T>::~Devector() {
  std::free(buf_);
}

template <typename T>
void Devector<T>::Relocate(size_t new_cap, size_t new_head) {
  if (new_cap == cap_) {
    if (size_ != 0) std::memmove(buf_ + new_head, buf_ + head_, size_ * sizeof(T));
    head_ = new_head;
    return;
  }
  auto* nb = static_cast<T*>(CheckedMalloc(new_cap * sizeof(T)));
  if (size_ != 0) std::memcpy(nb + new_head, buf_ + head_, size_ * sizeof(T));
  std::free(buf_);
  buf_ = nb;
  cap_ = new_cap;
  head_ = new_head;
  alloc_bytes_ = malloc_usable_size(nb);
}

// Room for one more at the back: re-centre in place when at least a quarter of the buffer is
// free (so a re-centre buys >= cap/16 pushes for <= cap moves), else double. Three quarters of
// the free space go to the growing side.
template <typename T>
void Devector<T>::MakeRoomBack() {
  size_t cap = (size_ + 1) * 4 <= cap_ * 3 ? cap_ : std::max<size_t>(4, cap_ * 2);
  Relocate(cap, (cap - size_) / 4);
}

template <typename T>
void Devector<T>::MakeRoomFront() {
  size_t cap = (size_ + 1) * 4 <= cap_ * 3 ? cap_ : std::max<size_t>(4, cap_ * 2);
  size_t free = cap - size_;
  Relocate(cap, free - free / 4);
}

template <typename T>
void Devector<T>::MaybeShrink() {
  if (size_ == 0) {
    Clear();
  } else if (cap_ > 16 && size_ * 4 < cap_) {
    size_t cap = size_ * 2;
    Relocate(cap, (cap - size_) / 2);
  }
}

template <typename T>
void Devector<T>::PushBack(T v) {
  if (head_ + size_ == cap_) MakeRoomBack();
  buf_[head_ + size_++] = v;
}

template <typename T>
void Devector<T>::PushFront(T v) {
  if (head_ == 0) MakeRoomFront();
  buf_[--head_] = v;
  ++size_;
}

template <typename T>
void Devector<T>::PopBack() {
  CELLAR_DCHECK(size_ > 0);
  --size_;
  MaybeShrink();
}

template <typename T>
void Devector<T>::PopFront() {
  CELLAR_DCHECK(size_ > 0);
  ++head_;
  --size_;
  MaybeShrink();
}

template <typename T>
void Devector<T>::Insert(size_t i, T v) {
  CELLAR_DCHECK(i <= size_);
  bool room_front = head_ > 0;
  bool room_back = head_ + size_ < cap_;
  if (!room_front && !room_back) {
    MakeRoomBack();
    room_back = true;
  }
  if (room_front && (i < size_ - i || !room_back)) {
    std::memmove(buf_ + head_ - 1, buf_ + head_, i * sizeof(T));
    --head_;
  } else {
    std::memmove(buf_ + head_ + i + 1, buf_ + head_ + i, (size_ - i) * sizeof(T));
  }
  buf_[head_ + i] = v;
  ++size_;
}

template <typename T>
void Devector<T>::Erase(size_t i, size_t n) {
  CELLAR_DCHECK(i + n <= size_);
  if (n == 0) return;
  if (i < size_ - i - n) {
    std::memmove(buf_ + head_ + n, buf_ + head_, i * sizeof(T));
    head_ += n;
  } else {
    std::memmove(buf_ + head_ + i, buf_ + head_ + i + n, (size_ - i - n) * sizeof(T));
  }
  size_ -= n;
  MaybeShrink();
}

template <typename T>
size_t Devector<T>::RecomputeAllocBytes() const {
  return buf_ == nullptr ? 0 : malloc_usable_size(buf_);
}

template <typename T>
void Devector<T>::Clear() {
  std::free(buf_);
  buf_ = nullptr;
  cap_ = head_ = size_ = 0;
  alloc_bytes_ = 0;
}

}  // namespace list_internal

// ---- node memory ----

List::List() = default;

List::~List() { Clear(); }

void List::Clear() {
  for (size_t j = 0; j < nodes_.size(); ++j) {
    if (nodes_[j] != nullptr) FreeNode(nodes_[j]);
  }
  nodes_.Clear();
  counts_.Clear();
  size_ = 0;
  CELLAR_DCHECK(node_bytes_ == 0);
}

List::Node* List::NewNode(size_t min_cap, bool data_at_end) {
  min_cap = std::max<size_t>(min_cap, 16);
  auto* n = static_cast<Node*>(CheckedMalloc(sizeof(Node) + min_cap));
  size_t usable = malloc_usable_size(n);
  node_bytes_ += usable;
  n->cap = static_cast<uint32_t>(std::min<size_t>(usable - sizeof(Node), UINT32_MAX));
  n->begin = n->end = data_at_end ? n->cap : 0;
  return n;
}

void List::FreeNode(Node* n) {
  node_bytes_ -= malloc_usable_size(n);
  std::free(n);
}

void List::Resize(Node*& n, size_t cap) {
  uint32_t used = n->used();
  CELLAR_DCHECK(cap >= used);
  if (n->begin != 0) std::memmove(n->data(), n->data() + n->begin, used);
  n->begin = 0;
  n->end = used;
  size_t old_usable = malloc_usable_size(n);
  void* p = std::realloc(n, sizeof(Node) + std::max<size_t>(cap, 16));
  if (p == nullptr) return;  // only shrinks come here; a failed one leaves a valid block
  n = static_cast<Node*>(p);
  size_t usable = malloc_usable_size(n);
  node_bytes_ = node_bytes_ - old_usable + usable;
  n->cap = static_cast<uint32_t>(std::min<size_t>(usable - sizeof(Node), UINT32_MAX));
}

void List::MaybeShrink(Node*& n) {
  uint32_t used = n->used();
  if (n->cap <= 64 || used * 2 >= n->cap) return;
  // Keep a quarter of slack so that alternating pushes and pops do not realloc every time.
  Resize(n, used + used / 4);
}

uint32_t List::OpenGap(Node*& n, uint32_t off, uint32_t len) {
  CELLAR_DCHECK(n->begin <= off && off <= n->end);
  char* d = n->data();
  uint32_t head = n->begin;
  uint32_t tail = n->cap - n->end;
  uint32_t pre = off - n->begin;
  uint32_t suf = n->end - off;
  if (head >= len && (tail < len || pre <= suf)) {
    std::memmove(d + n->begin - len, d + n->begin, pre);
    n->begin -= len;
    return off - len;
  }
  if (tail >= len) {
    std::memmove(d + off + len, d + off, suf);
    n->end += len;
    return off;
  }
  // Neither side has room: lay the data out again, in place if the block has enough free
  // bytes in total, else in a bigger block. Free space goes where growth is happening: to the
  // front when inserting at the front, else to the back.
  size_t need = size_t{n->used()} + len;
  bool at_front = off == n->begin && n->used() != 0;
  if (head + tail >= len) {
    // nb <= begin: a larger nb would mean tail > len, handled above. So the prefix moves left
    // (or stays) and can go first without overwriting the suffix.
    uint32_t nb = at_front ? static_cast<uint32_t>(n->cap - need) : 0;
    CELLAR_DCHECK(nb <= n->begin);
    std::memmove(d + nb, d + n->begin, pre);
    std::memmove(d + nb + pre + len, d + off, suf);
    n->begin = nb;
    n->end = static_cast<uint32_t>(nb + need);
    return nb + pre;
  }
  size_t grown = std::max(need, std::min<size_t>(size_t{n->cap} + n->cap / 2, kNodeBytes));
  Node* m = NewNode(grown, false);
  uint32_t nb = at_front ? static_cast<uint32_t>(m->cap - need) : 0;
  std::memcpy(m->data() + nb, d + n->begin, pre);
  std::memcpy(m->data() + nb + pre + len, d + off, suf);
  m->begin = nb;
  m->end = static_cast<uint32_t>(nb + need);
  FreeNode(n);
  n = m;
  return nb + pre;
}

void List::CloseGap(Node* n, uint32_t off, uint32_t len) {
  CELLAR_DCHECK(n->begin <= off && off + len <= n->end);
  char* d = n->data();
  uint32_t pre = off - n->begin;
  uint32_t suf = n->end - off - len;
  if (pre < suf) {
    std::memmove(d + n->begin + len, d + n->begin, pre);
    n->begin += len;
  } else {
    std::memmove(d + off, d + off + len, suf);
    n->end -= len;
  }
}

void List::WriteEntry(char* p, std::string_view v) {
  size_t len = v.size();
  if (len < 0x80) [[likely]] {
    p[0] = static_cast<char>(len);
    if (len != 0) std::memcpy(p + 1, v.data(), len);
    p[len + 1] = static_cast<char>(len);
    return;
  }
  size_t s = VarintSize(len);
  size_t x = len;
  for (size_t i = 0; i < s; ++i, x >>= 7) {
    p[i] = static_cast<char>((x & 0x7f) | (i + 1 < s ? 0x80 : 0));
  }
  if (len != 0) std::memcpy(p + s, v.data(), len);
  char* q = p + s + len + s;
  x = len;
  for (size_t i = 0; i < s; ++i, x >>= 7) {
    q[-1 - static_cast<ptrdiff_t>(i)] = static_cast<char>((x & 0x7f) | (i + 1 < s ? 0x80 : 0));
  }
}

// ---- lookup ----

std::pair<size_t, size_t> List::Locate(size_t i) const {
  CELLAR_DCHECK(i < size_);
  const uint32_t* c = counts_.data();
  if (i < size_ / 2) {
    size_t j = 0;
    while (i >= c[j]) i -= c[j++];
    return {j, i};
  }
  size_t r = size_ - 1 - i;  // position from the back
  size_t j = counts_.size() - 1;
  while (r >= c[j]) r -= c[j--];
  return {j, c[j] - 1 - r};
}

uint32_t List::EntryOffset(const Node* n, size_t count, size_t k) {
  CELLAR_DCHECK(k <= count);
  const char* d = n->data();
  std::string_view elem;
  if (k <= count / 2) {
    const char* p = d + n->begin;
    for (size_t i = 0; i < k; ++i) p = ReadForward(p, &elem);
    return static_cast<uint32_t>(p - d);
  }
  const char* q = d + n->end;
  for (size_t i = count; i > k; --i) q = ReadBackward(q, &elem);
  return static_cast<uint32_t>(q - d);
}

std::string_view List::At(size_t i) const {
  auto [j, k] = Locate(i);
  const Node* n = nodes_[j];
  std::string_view elem;
  ReadForward(n->data() + EntryOffset(n, counts_[j], k), &elem);
  return elem;
}

// ---- ends ----

void List::PushBack(std::string_view v) {
  size_t e = EntrySize(v.size());
  size_t nn = nodes_.size();
  size_t hint = e;
  if (nn != 0) {
    Node*& t = nodes_[nn - 1];
    size_t c = counts_[nn - 1];
    if (c < kNodeElems && t->used() + e <= kNodeBytes) {
      uint32_t off = t->cap - t->end >= e ? (t->end += static_cast<uint32_t>(e)) - e
                                          : OpenGap(t, t->end, static_cast<uint32_t>(e));
      WriteEntry(t->data() + off, v);
      ++counts_[nn - 1];
      ++size_;
      return;
    }
    // t is full: give back its growth slack, and size the new node like it (a run of pushes
    // then costs one malloc per node and no reallocs).
    if (t->cap > t->used() + 32) Resize(t, t->used());
    hint = std::max(e, std::min({size_t{t->used()}, e * c, size_t{kNodeBytes}}));
  }
  Node* n = NewNode(hint, false);
  WriteEntry(n->data(), v);
  n->end = static_cast<uint32_t>(e);
  nodes_.PushBack(n);
  counts_.PushBack(1);
  ++size_;
}

void List::PushFront(std::string_view v) {
  size_t e = EntrySize(v.size());
  size_t hint = e;
  if (!nodes_.empty()) {
    Node*& h = nodes_[0];
    size_t c = counts_[0];
    if (c < kNodeElems && h->used() + e <= kNodeBytes) {
      uint32_t off = h->begin >= e ? (h->begin -= static_cast<uint32_t>(e))
                                   : OpenGap(h, h->begin, static_cast<uint32_t>(e));
      WriteEntry(h->data() + off, v);
      ++counts_[0];
      ++size_;
      return;
    }
    if (h->cap > h->used() + 32) Resize(h, h->used());
    hint = std::max(e, std::min({size_t{h->used()}, e * c, size_t{kNodeBytes}}));
  }
  Node* n = NewNode(hint, true);
  n->begin = static_cast<uint32_t>(n->cap - e);
  WriteEntry(n->data() + n->begin, v);
  nodes_.PushFront(n);
  counts_.PushFront(1);
  ++size_;
}

bool List::PopFront(std::string* out) {
  if (size_ == 0) return false;
  Node* n = nodes_[0];
  std::string_view elem;
  const char* p = n->data() + n->begin;
  const char* next = ReadForward(p, &elem);
  if (out != nullptr) out->assign(elem);
  --size_;
  if (--counts_[0] == 0) {
    FreeNode(n);
    nodes_.PopFront();
    counts_.PopFront();
    return true;
  }
  n->begin += static_cast<uint32_t>(next - p);
  // Only a one-node list gives back slack on pops: the end node of a longer list is on its
  // way out anyway, and shrinking it would cost reallocs in every queue drain.
  if (nodes_.size() == 1) MaybeShrink(nodes_[0]);
  return true;
}

bool List::PopBack(std::string* out) {
  if (size_ == 0) return false;
  size_t j = nodes_.size() - 1;
  Node* n = nodes_[j];
  std::string_view elem;
  const char* q = n->data() + n->end;
  const char* start = ReadBackward(q, &elem);
  if (out != nullptr) out->assign(elem);
  --size_;
  if (--counts_[j] == 0) {
    FreeNode(n);
    nodes_.PopBack();
    counts_.PopBack();
    return true;
  }
  n->end -= static_cast<uint32_t>(q - start);
  if (j == 0) MaybeShrink(nodes_[0]);
  return true;
}

// ---- middle ----

void List::Set(size_t i, std::string_view v) {
  auto [j, k] = Locate(i);
  Node*& n = nodes_[j];
  uint32_t off = EntryOffset(n, counts_[j], k);
  std::string_view old;
  const char* next = ReadForward(n->data() + off, &old);
  auto old_e = static_cast<uint32_t>(next - (n->data() + off));
  size_t e = EntrySize(v.size());
  if (counts_[j] == 1 || n->used() - old_e + e <= kNodeBytes) {
    if (e > old_e) {
      uint32_t gap = OpenGap(n, off + old_e, static_cast<uint32_t>(e - old_e));
      WriteEntry(n->data() + gap - old_e, v);
    } else {
      WriteEntry(n->data() + off, v);
      if (e < old_e) {
        CloseGap(n, static_cast<uint32_t>(off + e), static_cast<uint32_t>(old_e - e));
        MaybeShrink(n);
        Normalize(j == 0 ? 0 : j - 1, std::min(j + 1, nodes_.size() - 1));
      }
    }
    return;
  }
  // Too big for its node: it moves out (Insert splits the node or gives it one of its own).
  Erase(i, 1);
  Insert(i, v);
}

void List::Insert(size_t i, std::string_view v) {
  if (i >= size_) {
    PushBack(v);
    return;
  }
  if (i == 0) {
    PushFront(v);
    return;
  }
  auto [j, k] = Locate(i);
  size_t e = EntrySize(v.size());
  auto fits = [&](size_t node) {
    return counts_[node] < kNodeElems && nodes_[node]->used() + e <= kNodeBytes;
  };
  auto append_to = [&](size_t node) {
    Node*& n = nodes_[node];
    uint32_t off = OpenGap(n, n->end, static_cast<uint32_t>(e));
    WriteEntry(n->data() + off, v);
    ++counts_[node];
  };
  ++size_;
  if (fits(j)) {
    Node*& n = nodes_[j];
    uint32_t off = OpenGap(n, EntryOffset(n, counts_[j], k), static_cast<uint32_t>(e));
    WriteEntry(n->data() + off, v);
    ++counts_[j];
    return;
  }
  if (k == 0 && fits(j - 1)) {  // i > 0, so k == 0 implies j > 0
    append_to(j - 1);
    return;
  }
  size_t own_at = j;  // where v goes if it gets a node of its own
  if (k != 0) {
    // Split node j before entry k; the entries from k on move to a new node j + 1.
    Node* n = nodes_[j];
    uint32_t off = EntryOffset(n, counts_[j], k);
    uint32_t tail = n->end - off;
    Node* r = NewNode(tail, false);
    std::memcpy(r->data(), n->data() + off, tail);
    r->end = tail;
    n->end = off;
    uint32_t right_count = counts_[j] - static_cast<uint32_t>(k);
    counts_[j] = static_cast<uint32_t>(k);
    nodes_.Insert(j + 1, r);
    counts_.Insert(j + 1, right_count);
    if (fits(j)) {
      append_to(j);
    } else if (fits(j + 1)) {
      Node*& rn = nodes_[j + 1];
      uint32_t roff = OpenGap(rn, rn->begin, static_cast<uint32_t>(e));
      WriteEntry(rn->data() + roff, v);
      ++counts_[j + 1];
    } else {
      own_at = j + 1;
    }
    if (own_at == j) {
      Normalize(j == 0 ? 0 : j - 1, std::min(j + 2, nodes_.size() - 1));
      return;
    }
  }
  Node* m = NewNode(e, false);
  WriteEntry(m->data(), v);
  m->end = static_cast<uint32_t>(e);
  nodes_.Insert(own_at, m);
  counts_.Insert(own_at, 1);
}

size_t List::EraseInNode(size_t j, size_t k, size_t remaining) {
  uint32_t c = counts_[j];
  size_t n = std::min<size_t>(remaining, c - k);
  size_ -= n;
  if (n == c) {
    FreeNode(nodes_[j]);
    nodes_[j] = nullptr;
    counts_[j] = 0;
    return n;
  }
  Node*& node = nodes_[j];
  uint32_t from = EntryOffset(node, c, k);
  uint32_t to = k + n == c ? node->end : EntryOffset(node, c, k + n);
  CloseGap(node, from, to - from);
  counts_[j] = c - static_cast<uint32_t>(n);
  MaybeShrink(node);
  return n;
}

void List::Erase(size_t start, size_t count) {
  if (start >= size_ || count == 0) return;
  count = std::min(count, size_ - start);
  if (count == size_) {
    Clear();
    return;
  }
  auto [j, k] = Locate(start);
  size_t first = j;
  while (count != 0) {
    count -= EraseInNode(j, k, count);
    k = 0;
    ++j;
  }
  Normalize(first == 0 ? 0 : first - 1, std::min(j, nodes_.size() - 1));
}

void List::Trim(size_t start, size_t end) {
  end = std::min(end, size_);
  if (start >= end) {
    Clear();
    return;
  }
  Erase(end, size_ - end);
  Erase(0, start);
}

size_t List::Remove(std::string_view v, int64_t count) {
  if (size_ == 0) return 0;
  size_t limit = count == 0  ? SIZE_MAX
                 : count > 0 ? static_cast<size_t>(count)
                             : static_cast<size_t>(0 - static_cast<uint64_t>(count));
  size_t removed = 0;
  size_t lo = SIZE_MAX, hi = 0;
  size_t nn = nodes_.size();
  std::string_view elem;
  for (size_t step = 0; step < nn && removed < limit; ++step) {
    size_t j = count >= 0 ? step : nn - 1 - step;
    Node* n = nodes_[j];
    char* d = n->data();
    size_t got = 0;
    // Compact the node in one pass: runs of kept entries slide over removed ones.
    if (count >= 0) {
      char* p = d + n->begin;
      char* e = d + n->end;
      char* w = nullptr;  // end of the kept data so far, once something was removed
      char* run = p;      // start of the current run of kept entries
      while (p < e && removed + got < limit) {
        char* next = const_cast<char*>(ReadForward(p, &elem));
        if (elem == v) {
          if (w == nullptr) {
            w = p;
          } else {
            std::memmove(w, run, p - run);
            w += p - run;
          }
          ++got;
          run = next;
        }
        p = next;
      }
      if (got == 0) continue;
      std::memmove(w, run, e - run);
      n->end = static_cast<uint32_t>(w + (e - run) - d);
    } else {
      char* b = d + n->begin;
      char* q = d + n->end;
      char* w = nullptr;  // start of the kept data so far (it ends at the node's end)
      char* run = q;      // end of the current run of kept entries
      while (q > b && removed + got < limit) {
        char* start = const_cast<char*>(ReadBackward(q, &elem));
        if (elem == v) {
          if (w == nullptr) {
            w = q;
          } else {
            std::memmove(w - (run - q), q, run - q);
            w -= run - q;
          }
          ++got;
          run = start;
        }
        q = start;
      }
      if (got == 0) continue;
      std::memmove(w - (run - b), b, run - b);
      n->begin = static_cast<uint32_t>(w - (run - b) - d);
    }
    removed += got;
    size_ -= got;
    counts_[j] -= static_cast<uint32_t>(got);
    if (counts_[j] == 0) {
      FreeNode(n);
      nodes_[j] = nullptr;
    } else {
      MaybeShrink(nodes_[j]);
    }
    lo = std::min(lo, j);
    hi = std::max(hi, j);
  }
  if (removed == 0) return 0;
  if (size_ == 0) {
    Clear();
  } else {
    Normalize(lo == 0 ? 0 : lo - 1, std::min(hi + 1, nn - 1));
  }
  return removed;
}

void List::Normalize(size_t lo, size_t hi) {
  size_t w = lo;  // next slot to fill
  for (size_t r = lo; r <= hi; ++r) {
    Node* b = nodes_[r];
    if (b == nullptr) continue;
    if (w > lo && CanMerge(w - 1, r)) {
      Node*& a = nodes_[w - 1];
      // Copy the smaller node into the larger one.
      if (b->used() <= a->used()) {
        uint32_t off = OpenGap(a, a->end, b->used());
        std::memcpy(a->data() + off, b->data() + b->begin, b->used());
        FreeNode(b);
      } else {
        uint32_t off = OpenGap(b, b->begin, a->used());
        std::memcpy(b->data() + off, a->data() + a->begin, a->used());
        FreeNode(a);
        a = b;
      }
      counts_[w - 1] += counts_[r];
      continue;
    }
    nodes_[w] = b;
    counts_[w] = counts_[r];
    ++w;
  }
  if (w <= hi) {
    nodes_.Erase(w, hi + 1 - w);
    counts_.Erase(w, hi + 1 - w);
  }
}

// ---- tests ----

size_t List::RecomputeBytesForTest() const {
  size_t total = nodes_.RecomputeAllocBytes() + counts_.RecomputeAllocBytes();
  for (size_t j = 0; j < nodes_.size(); ++j) total += malloc_usable_size(nodes_[j]);
  return total;
}

bool List::CheckInvariantsForTest() const {
  if (nodes_.size() != counts_.size()) return false;
  if ((size_ == 0) != nodes_.empty()) return false;
  if (size_ == 0 && bytes() != 0) return false;
  size_t total = 0, usable = 0;
  for (size_t j = 0; j < nodes_.size(); ++j) {
    const Node* n = nodes_[j];
    if (n == nullptr || counts_[j] == 0 || counts_[j] > kNodeElems) return false;
    if (n->begin > n->end || n->end > n->cap) return false;
    if (counts_[j] > 1 && n->used() > kNodeBytes) return false;
    usable += malloc_usable_size(const_cast<Node*>(n));
    const char* p = n->data() + n->begin;
    const char* e = n->data() + n->end;
    size_t c = 0;
    while (p < e) {
      std::string_view fwd, back;
      const char* next = ReadForward(p, &fwd);
      if (next > e) return false;
      if (ReadBackward(next, &back) != p || back != fwd) return false;
      p = next;
      ++c;
    }
    if (p != e || c != counts_[j]) return false;
    total += c;
  }
  return total == size_ && usable == node_bytes_;
}

}  // namespace cellar::storage
