// PackedVec: the compact encoding of small collections (Redis's listpack idea). One malloc'd
// buffer holds a sequence of binary strings, each stored as [varint length][bytes]. Lookups
// are linear, which is cheaper than any index while a collection has at most a hundred or so
// small elements; the owning type converts to its large encoding past its thresholds.
//
// Positions are byte offsets into the buffer (an element's varint), valid until the next
// change. Thread: owned by one shard.
#pragma once

#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace cellar::storage {

// LEB128 of a 32-bit length: 1 byte below 128, at most 5.
inline size_t VarintSize(uint32_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline char* PutVarint(char* p, uint32_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
inline const char* GetVarint(const char* p, uint32_t* v) {
  uint32_t r = 0;
  int shift = 0;
  for (;;) {
    const uint8_t b = static_cast<uint8_t>(*p++);
    r |= static_cast<uint32_t>(b & 0x7F) << shift;
    if (b < 0x80) break;
    shift += 7;
  }
  *v = r;
  return p;
}

class PackedVec {
 public:
  PackedVec() = default;
  ~PackedVec() { std::free(buf_); }
  PackedVec(const PackedVec&) = delete;
  PackedVec& operator=(const PackedVec&) = delete;

  uint32_t count() const { return count_; }       // strings stored
  uint32_t byte_size() const { return len_; }     // bytes used
  size_t bytes() const { return buf_ == nullptr ? 0 : malloc_usable_size(buf_); }
  bool empty() const { return count_ == 0; }

  // The string at `pos` and the position after it.
  std::string_view At(uint32_t pos, uint32_t* next = nullptr) const {
    uint32_t n;
    const char* p = GetVarint(buf_ + pos, &n);
    if (next != nullptr) *next = static_cast<uint32_t>(p - buf_) + n;
    return {p, n};
  }
  uint32_t end() const { return len_; }

  // Calls fn(pos, string) in order; fn returns false to stop.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (uint32_t pos = 0; pos < len_;) {
      uint32_t next;
      std::string_view s = At(pos, &next);
      if (!fn(pos, s)) return;
      pos = next;
    }
  }

  // Appends strings at the end (several at once keep one growth).
  void Append(std::string_view s) { InsertAt(len_, &s, 1); }
  void Append2(std::string_view a, std::string_view b) {
    std::string_view two[2] = {a, b};
    InsertAt(len_, two, 2);
  }
  // Inserts n strings before position `pos`.
  void InsertAt(uint32_t pos, const std::string_view* s, size_t n) {
    size_t add = 0;
    for (size_t i = 0; i < n; ++i) add += VarintSize(static_cast<uint32_t>(s[i].size())) + s[i].size();
    Reserve(len_ + add);
    std::memmove(buf_ + pos + add, buf_ + pos, len_ - pos);
    char* p = buf_ + pos;
    for (size_t i = 0; i < n; ++i) {
      p = PutVarint(p, static_cast<uint32_t>(s[i].size()));
      if (!s[i].empty()) std::memcpy(p, s[i].data(), s[i].size());
      p += s[i].size();
    }
    len_ += static_cast<uint32_t>(add);
    count_ += static_cast<uint32_t>(n);
  }
  // Removes n consecutive strings starting at `pos`.
  void EraseAt(uint32_t pos, uint32_t n = 1) {
    uint32_t end = pos;
    for (uint32_t i = 0; i < n; ++i) At(end, &end);
    std::memmove(buf_ + pos, buf_ + end, len_ - end);
    len_ -= end - pos;
    count_ -= n;
    MaybeShrink();
  }
  // Replaces the string at `pos` with s.
  void ReplaceAt(uint32_t pos, std::string_view s) {
    uint32_t next;
    At(pos, &next);
    const uint32_t old = next - pos;
    const uint32_t now = static_cast<uint32_t>(VarintSize(static_cast<uint32_t>(s.size())) + s.size());
    if (now > old) Reserve(len_ + now - old);
    std::memmove(buf_ + pos + now, buf_ + next, len_ - next);
    char* p = PutVarint(buf_ + pos, static_cast<uint32_t>(s.size()));
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    len_ = len_ - old + now;
    if (now < old) MaybeShrink();
  }
  void Clear() {
    std::free(buf_);
    buf_ = nullptr;
    len_ = cap_ = count_ = 0;
  }

 private:
  // Grows to exactly what is needed (plus the allocator's own rounding, which cap_ then
  // uses): small collections are many, so slack would cost more than the copies, which are of
  // a few KiB at most (as Redis's listpack does).
  void Reserve(size_t need) {
    if (need <= cap_) return;
    buf_ = static_cast<char*>(std::realloc(buf_, need));
    if (buf_ == nullptr) std::abort();  // as operator new would throw; the engine limits sizes
    cap_ = static_cast<uint32_t>(malloc_usable_size(buf_));
  }
  void MaybeShrink() {
    if (count_ == 0) return Clear();
    if (cap_ > 256 && len_ < cap_ / 4) {
      buf_ = static_cast<char*>(std::realloc(buf_, len_ + len_ / 2));
      cap_ = static_cast<uint32_t>(malloc_usable_size(buf_));
    }
  }

  char* buf_ = nullptr;
  uint32_t len_ = 0, cap_ = 0, count_ = 0;
};

}  // namespace cellar::storage
