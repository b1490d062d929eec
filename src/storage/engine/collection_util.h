// What the engine's collection files share (engine_collections.cc and one file per type:
// engine_dict.cc, engine_list.cc, engine_set.cc, engine_zset.cc). Internal to the engine.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "api/request.h"
#include "storage/engine/engine.h"
#include "storage/engine/op_table.h"
#include "storage/types/dict.h"
#include "storage/types/list.h"
#include "storage/types/set.h"
#include "storage/types/zset.h"

namespace cellar::storage::collections {

using api::Op;
using SetObj = ::cellar::storage::Set;  // Engine::Set is a method

template <typename T>
T* As(const Item* item) {
  return static_cast<T*>(item->object());
}

// Redis 7.0's reply form for a double score: "%.17g", and inf / -inf.
inline std::string FormatScore(double d) {
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%.17g", d);
  return std::string(buf, static_cast<size_t>(n));
}

// [start, end) of Redis's inclusive LRANGE/ZRANGE indices over n elements (empty: start == end).
inline void RedisRange(int64_t start, int64_t stop, size_t n, size_t* from, size_t* to) {
  const int64_t len = static_cast<int64_t>(n);
  if (start < 0) start += len;
  if (stop < 0) stop += len;
  if (start < 0) start = 0;
  if (start > stop || start >= len) {
    *from = *to = 0;
    return;
  }
  if (stop >= len) stop = len - 1;
  *from = static_cast<size_t>(start);
  *to = static_cast<size_t>(stop) + 1;
}

// [start, end) of a Python slice (Momento's list and sorted-set indices) over n elements.
inline void SliceRange(const api::Request& req, size_t n, size_t* from, size_t* to) {
  const int64_t len = static_cast<int64_t>(n);
  const api::IndexRange& range = req.Get<api::IndexRange>();
  int64_t a = (req.flags & api::kSliceOpenStart) ? 0 : range.start;
  int64_t b = (req.flags & api::kSliceOpenEnd) ? len : range.stop;
  if (a < 0) a += len;
  if (b < 0) b += len;
  a = std::clamp<int64_t>(a, 0, len);
  b = std::clamp<int64_t>(b, 0, len);
  if (a >= b) {
    *from = *to = 0;
    return;
  }
  *from = static_cast<size_t>(a);
  *to = static_cast<size_t>(b);
}

inline void IndexRange(const api::Request& req, size_t n, size_t* from, size_t* to) {
  if (req.flags & api::kSlice) {
    SliceRange(req, n, from, to);
  } else {
    const api::IndexRange& range = req.Get<api::IndexRange>();
    RedisRange(range.start, range.stop, n, from, to);
  }
}

// A lex bound in Redis's form: "-", "+", "[x" or "(x". Returns the rank boundary: for the
// minimum, the rank of the first element inside; for the maximum, one past the last.
inline bool LexBound(const ZSet& z, std::string_view spec, bool is_max, size_t* rank) {
  if (spec == "-") {
    *rank = 0;
    return true;
  }
  if (spec == "+") {
    *rank = z.size();
    return true;
  }
  if (spec.empty() || (spec[0] != '[' && spec[0] != '(')) return false;
  const bool inclusive = spec[0] == '[';
  std::string_view m = spec.substr(1);
  // min: elements < m (inclusive) or <= m (exclusive) come before the range.
  // max: elements <= m (inclusive) or < m (exclusive) are in or before it.
  *rank = is_max ? z.CountBelowLex(m, inclusive) : z.CountBelowLex(m, !inclusive);
  return true;
}

}  // namespace cellar::storage::collections
