// Little-endian fixed-width values and u32-length-prefixed strings, for our own binary frames
// between nodes (gateway/forward_codec, frontend/internal/topic_codec). Both ends run the
// same build, so there is no versioned schema; decoding is strict and bounded by the input.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace cellar::wire {

template <typename T>
void Put(std::string& out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}
inline void PutStr(std::string& out, std::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  bool Get(T* v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Str(std::string_view* s) {
    uint32_t n = 0;
    if (!Get(&n) || in_.size() - pos_ < n) return false;
    *s = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // A count of elements at least `min_bytes` each: bounded by what is left, so a hostile
  // count cannot make us reserve memory the frame does not hold.
  bool Count(uint32_t* n, size_t min_bytes) {
    return Get(n) && static_cast<uint64_t>(*n) * min_bytes <= in_.size() - pos_;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace cellar::wire
