// ItemList: the elements of a collection reply (Reply::items). All bytes live in one buffer
// and the element ends in a small inline array, so a reply of k short elements costs one
// allocation (often none), not k + 1 as a vector of strings would. Elements read back as
// string_views, valid until the list changes.
//
// A byte cap (set_byte_cap) bounds what a read may build: past it the list keeps counting
// elements (as empty ones, so indexes stay valid for the code filling it) but stores no more
// bytes, and overflowed() says so; the reply is then refused, not sent. Only read-only
// operations get a cap (api::IsReadOnly): dropping what a write returns would lose data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include <absl/container/inlined_vector.h>

namespace cellar::api {

class ItemList {
 public:
  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  std::string_view operator[](size_t i) const {
    const size_t begin = i == 0 ? 0 : ends_[i - 1];
    return {data_.data() + begin, ends_[i] - begin};
  }
  std::string_view front() const { return (*this)[0]; }
  std::string_view back() const { return (*this)[size() - 1]; }

  void push_back(std::string_view s) {
    if (data_.size() + s.size() > cap_) {
      overflowed_ = true;
    } else if (!overflowed_) {
      data_.append(s.data(), s.size());
    }
    ends_.push_back(data_.size());
  }
  // Bytes of element data at most (SIZE_MAX: no cap).
  void set_byte_cap(size_t cap) { cap_ = cap; }
  bool overflowed() const { return overflowed_; }
  // Bytes held (data and ends), for reply accounting.
  size_t footprint() const { return data_.size() + ends_.size() * sizeof(size_t); }
  void emplace_back(std::string_view s) { push_back(s); }
  void pop_back() {
    ends_.pop_back();
    data_.resize(ends_.empty() ? 0 : ends_.back());
  }
  void reserve(size_t n) { ends_.reserve(n); }
  void clear() {
    data_.clear();
    ends_.clear();
    overflowed_ = false;
  }
  // Gives the memory back (clear keeps it).
  void release() {
    std::string().swap(data_);
    ends_ = {};
    overflowed_ = false;
  }

  class const_iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = std::string_view;
    const_iterator() = default;
    const_iterator(const ItemList* list, size_t i) : list_(list), i_(i) {}
    std::string_view operator*() const { return (*list_)[i_]; }
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++i_;
      return old;
    }
    difference_type operator-(const const_iterator& o) const {
      return static_cast<difference_type>(i_) - static_cast<difference_type>(o.i_);
    }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }
    bool operator!=(const const_iterator& o) const { return i_ != o.i_; }

   private:
    const ItemList* list_ = nullptr;
    size_t i_ = 0;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size()}; }

 private:
  std::string data_;
  absl::InlinedVector<size_t, 16> ends_;
  size_t cap_ = SIZE_MAX;
  bool overflowed_ = false;
};

}  // namespace cellar::api
