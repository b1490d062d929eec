// ScratchArena: bump allocation of small arrays that live until Reset (one round of requests).
// Front-ends use it for the argument arrays a Request borrows (api::Request::args, scores),
// which must not move while the round's other commands are parsed. Blocks are kept across
// rounds, so a steady stream of small rounds allocates nothing; a round that needed more than
// the first block gives the extra blocks back at Reset.
//
// Only for trivially copyable, trivially destructible element types (string_view, double,
// int64_t). Thread: owned by one connection.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <vector>

namespace cellar {

class ScratchArena {
 public:
  // Small: every connection that ever sent a collection command keeps one block.
  static constexpr size_t kBlockBytes = 2 * 1024;

  // n value-initialised elements, contiguous, stable until Reset.
  template <typename T>
  std::span<T> Alloc(size_t n) {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);
    static_assert(alignof(T) <= alignof(std::max_align_t));
    if (n == 0) return {};
    const size_t bytes = n * sizeof(T);
    size_t off = (used_ + alignof(T) - 1) & ~(alignof(T) - 1);
    if (blocks_.empty() || off + bytes > blocks_[current_].size) {
      NextBlock(bytes);
      off = 0;
    }
    Block& b = blocks_[current_];
    T* p = new (b.data.get() + off) T[n]();
    used_ = off + bytes;
    return {p, n};
  }

  // Copies `src` into the arena.
  template <typename T>
  std::span<const T> Copy(std::span<const T> src) {
    std::span<T> dst = Alloc<T>(src.size());
    std::copy(src.begin(), src.end(), dst.begin());
    return dst;
  }

  // Forgets every allocation; keeps the first block only.
  void Reset() {
    if (blocks_.size() > 1) blocks_.resize(1);
    current_ = 0;
    used_ = 0;
  }

 private:
  struct Block {
    std::unique_ptr<std::byte[]> data;
    size_t size;
  };
  void NextBlock(size_t bytes) {
    // Reuse the following kept block if it is big enough (after Reset only block 0 is kept).
    if (!blocks_.empty() && current_ + 1 < blocks_.size() && blocks_[current_ + 1].size >= bytes) {
      ++current_;
      return;
    }
    const size_t size = std::max(kBlockBytes, bytes);
    blocks_.push_back(Block{std::make_unique<std::byte[]>(size), size});
    current_ = blocks_.size() - 1;
  }

  std::vector<Block> blocks_;
  size_t current_ = 0;
  size_t used_ = 0;
};

}  // namespace cellar
