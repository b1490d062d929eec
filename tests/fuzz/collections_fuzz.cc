// Fuzz target: random operation sequences on each collection type, checked against simple
// std:: models (contents, sizes, order, ranks), and the same kinds of operations through the
// engine with a small memory limit, checking the memory accounting after every call.
//
// Input: a byte stream read as [op][args...]; small member pools make collisions likely, and
// an occasional long string crosses the packed-encoding thresholds.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "storage/engine/engine.h"
#include "storage/types/dict.h"
#include "storage/types/list.h"
#include "storage/types/set.h"
#include "storage/types/zset.h"
#include "fuzz_check.h"

namespace {

using cellar::storage::Dict;
using cellar::storage::List;
using cellar::storage::ZSet;
using SetT = cellar::storage::Set;

struct Reader {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t Byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  // A member from a small pool, sometimes long (past the packed thresholds).
  std::string Member() {
    const uint8_t b = Byte();
    std::string s = "m";
    s += std::to_string(b % 48);
    if (b >= 240) s.append(static_cast<size_t>(b - 200), 'x');
    return s;
  }
  double Score() {
    const uint8_t b = Byte();
    if (b == 255) return INFINITY;
    if (b == 254) return -INFINITY;
    return static_cast<double>(static_cast<int>(b % 16) - 8) / 2;
  }
  int64_t Index() { return static_cast<int64_t>(static_cast<int8_t>(Byte())); }
};

void FuzzDict(Reader& r) {
  Dict d;
  std::map<std::string, std::string> model;
  while (!r.empty()) {
    const uint8_t op = r.Byte() % 4;
    const std::string f = r.Member();
    if (op <= 1) {
      const std::string v = r.Member();
      FUZZ_CHECK(d.Set(f, v) == !model.contains(f));
      model[f] = v;
    } else if (op == 2) {
      FUZZ_CHECK(d.Erase(f) == (model.erase(f) == 1));
    } else {
      auto got = d.Get(f);
      auto it = model.find(f);
      FUZZ_CHECK(got.has_value() == (it != model.end()));
      if (got) FUZZ_CHECK(*got == it->second);
    }
    FUZZ_CHECK(d.size() == model.size());
  }
  FUZZ_CHECK(d.bytes() == d.RecomputeBytesForTest());
  size_t n = 0;
  d.ForEach([&](std::string_view f, std::string_view v) {
    ++n;
    auto it = model.find(std::string(f));
    FUZZ_CHECK(it != model.end() && it->second == v);
  });
  FUZZ_CHECK(n == model.size());
}

void FuzzSet(Reader& r) {
  SetT s;
  std::set<std::string> model;
  while (!r.empty()) {
    const uint8_t op = r.Byte() % 3;
    const std::string m = r.Member();
    if (op == 0) {
      FUZZ_CHECK(s.Add(m) == model.insert(m).second);
    } else if (op == 1) {
      FUZZ_CHECK(s.Erase(m) == (model.erase(m) == 1));
    } else {
      FUZZ_CHECK(s.Contains(m) == model.contains(m));
    }
    FUZZ_CHECK(s.size() == model.size());
  }
  FUZZ_CHECK(s.bytes() == s.RecomputeBytesForTest());
  std::set<std::string> seen;
  s.ForEach([&](std::string_view m) { FUZZ_CHECK(seen.emplace(m).second); });
  FUZZ_CHECK(seen == model);
}

void FuzzList(Reader& r) {
  List l;
  std::deque<std::string> model;
  while (!r.empty()) {
    const uint8_t op = r.Byte() % 8;
    const size_t n = model.size();
    switch (op) {
      case 0: {
        std::string v = r.Member();
        l.PushFront(v);
        model.push_front(v);
        break;
      }
      case 1: {
        std::string v = r.Member();
        l.PushBack(v);
        model.push_back(v);
        break;
      }
      case 2: {
        std::string out;
        FUZZ_CHECK(l.PopFront(&out) == (n > 0));
        if (n > 0) {
          FUZZ_CHECK(out == model.front());
          model.pop_front();
        }
        break;
      }
      case 3: {
        std::string out;
        FUZZ_CHECK(l.PopBack(&out) == (n > 0));
        if (n > 0) {
          FUZZ_CHECK(out == model.back());
          model.pop_back();
        }
        break;
      }
      case 4: {  // insert anywhere
        const size_t at = n == 0 ? 0 : r.Byte() % (n + 1);
        std::string v = r.Member();
        l.Insert(at, v);
        model.insert(model.begin() + static_cast<std::ptrdiff_t>(at), v);
        break;
      }
      case 5: {  // LREM
        const std::string v = r.Member();
        const int64_t count = r.Index() % 4;
        size_t removed = 0;
        if (count >= 0) {
          for (auto it = model.begin(); it != model.end();) {
            if (*it == v && (count == 0 || removed < static_cast<size_t>(count))) {
              it = model.erase(it);
              ++removed;
            } else {
              ++it;
            }
          }
        } else {
          for (size_t i = model.size(); i-- > 0;) {
            if (model[i] == v && removed < static_cast<size_t>(-count)) {
              model.erase(model.begin() + static_cast<std::ptrdiff_t>(i));
              ++removed;
            }
          }
        }
        FUZZ_CHECK(l.Remove(v, count) == removed);
        break;
      }
      case 6: {  // trim
        const size_t a = n == 0 ? 0 : r.Byte() % (n + 1);
        const size_t b = n == 0 ? 0 : r.Byte() % (n + 1);
        l.Trim(a, b);
        std::deque<std::string> kept;
        for (size_t i = a; i < b && i < n; ++i) kept.push_back(model[i]);
        model.swap(kept);
        break;
      }
      case 7: {  // set / erase a range
        if (n == 0) break;
        const size_t at = r.Byte() % n;
        if (r.Byte() & 1) {
          std::string v = r.Member();
          l.Set(at, v);
          model[at] = v;
        } else {
          const size_t count = r.Byte() % 5;
          l.Erase(at, count);
          model.erase(model.begin() + static_cast<std::ptrdiff_t>(at),
                      model.begin() + static_cast<std::ptrdiff_t>(std::min(n, at + count)));
        }
        break;
      }
    }
    FUZZ_CHECK(l.size() == model.size());
    if (!model.empty()) {
      const size_t i = r.Byte() % model.size();
      FUZZ_CHECK(l.At(i) == model[i]);
    }
  }
  FUZZ_CHECK(l.bytes() == l.RecomputeBytesForTest());
  size_t i = 0;
  l.ForRange(0, l.size(), [&](std::string_view v) { FUZZ_CHECK(v == model[i++]); });
  FUZZ_CHECK(i == model.size());
  l.ForRangeReverse(0, l.size(), [&](std::string_view v) { FUZZ_CHECK(v == model[--i]); });
}

void FuzzZSet(Reader& r) {
  ZSet z;
  std::map<std::string, double> by_member;
  std::set<std::pair<double, std::string>> order;
  auto put = [&](const std::string& m, double s) {
    if (s == 0) s = 0.0;  // -0 is stored as 0
    auto it = by_member.find(m);
    if (it != by_member.end()) order.erase({it->second, m});
    by_member[m] = s;
    order.emplace(s, m);
  };
  while (!r.empty()) {
    const uint8_t op = r.Byte() % 6;
    const std::string m = r.Member();
    if (op <= 1) {
      const double s = r.Score();
      const auto old = by_member.find(m);
      const auto want = old == by_member.end() ? ZSet::Put::kAdded
                        : old->second == s     ? ZSet::Put::kUnchanged
                                               : ZSet::Put::kUpdated;
      FUZZ_CHECK(z.Insert(m, s) == want);
      put(m, s);
    } else if (op == 2) {
      auto it = by_member.find(m);
      const bool had = it != by_member.end();
      if (had) {
        order.erase({it->second, m});
        by_member.erase(it);
      }
      FUZZ_CHECK(z.Erase(m) == had);
    } else if (op == 3) {  // rank and score
      auto it = by_member.find(m);
      auto rank = z.Rank(m);
      FUZZ_CHECK(rank.has_value() == (it != by_member.end()));
      if (rank) {
        FUZZ_CHECK(*z.Score(m) == it->second);
        FUZZ_CHECK(*rank == static_cast<size_t>(std::distance(
                                order.begin(), order.find({it->second, m}))));
      }
    } else if (op == 4) {  // score bounds
      const double s = r.Score();
      size_t below = 0, at_or_below = 0;
      for (auto& [score, member] : order) {
        below += score < s;
        at_or_below += score <= s;
      }
      FUZZ_CHECK(z.CountBelow(s, false) == below);
      FUZZ_CHECK(z.CountBelow(s, true) == at_or_below);
    } else {  // a rank range, both directions
      const size_t n = order.size();
      const size_t a = n == 0 ? 0 : r.Byte() % (n + 1);
      const size_t b = n == 0 ? 0 : r.Byte() % (n + 1);
      const bool rev = r.Byte() & 1;
      std::vector<std::pair<double, std::string>> all(order.begin(), order.end());
      if (rev) std::reverse(all.begin(), all.end());
      size_t i = a;
      z.ForRankRange(a, b, rev, [&](std::string_view mem, double score) {
        FUZZ_CHECK(i < b && i < all.size());
        FUZZ_CHECK(all[i].second == mem && all[i].first == score);
        ++i;
      });
      FUZZ_CHECK(i == (a < b ? std::min(b, n) : a));
    }
    FUZZ_CHECK(z.size() == by_member.size());
  }
  FUZZ_CHECK(z.bytes() == z.RecomputeBytesForTest());
  // Popping everything yields the whole order.
  auto it = order.begin();
  z.PopMin(order.size(), false, [&](std::string_view m, double s) {
    FUZZ_CHECK(it != order.end() && it->second == m && it->first == s);
    ++it;
  });
  FUZZ_CHECK(z.size() == 0);
}

// Engine: collection ops on a few keys under a small memory limit (eviction happens), then
// the documented accounting invariants.
void FuzzEngine(Reader& r) {
  using cellar::api::Op;
  cellar::ManualClock clock;
  cellar::storage::Engine e(&clock, 256 * 1024, 1);
  e.CreateCache(1);
  static const char* kKeys[] = {"a", "b", "c", "d"};
  static const Op kOps[] = {Op::kHSet, Op::kHDel, Op::kRPush, Op::kLPop, Op::kLTrim, Op::kSAdd,
                            Op::kSRem, Op::kSPop, Op::kZAdd, Op::kZRem, Op::kZPopMax, Op::kDelete,
                            Op::kSet, Op::kLRange, Op::kZRange, Op::kHGetAll};
  while (!r.empty()) {
    cellar::api::Request req;
    req.cache_id = 1;
    req.op = kOps[r.Byte() % std::size(kOps)];
    req.key = kKeys[r.Byte() % std::size(kKeys)];
    std::vector<std::string> held;
    const size_t n = 1 + r.Byte() % 8;
    for (size_t i = 0; i < n; ++i) {
      held.push_back(r.Member());
      if (r.Byte() > 250) held.back().append(20000, 'y');  // big elements force eviction
    }
    std::vector<std::string_view> args(held.begin(), held.end());
    std::vector<double> scores;
    for (size_t i = 0; i < n; ++i) scores.push_back(r.Score());
    req.args = args;
    req.scores = scores;
    const int64_t a = r.Index();
    const int64_t b = r.Index();
    switch (req.op) {
      case Op::kLPop: case Op::kSPop: case Op::kZPopMax:
        req.Set(cellar::api::Count{a});
        break;
      case Op::kLTrim: case Op::kLRange: case Op::kZRange:
        req.Set(cellar::api::IndexRange{a, b});
        break;
      case Op::kHGetAll:
        req.Set(cellar::api::FieldsForm{
            static_cast<cellar::api::FieldsForm::Form>(static_cast<uint64_t>(a) % 3)});
        break;
      default:
        break;
    }
    cellar::api::Reply reply;
    e.Execute(req, reply);
    FUZZ_CHECK(reply.status.ok() || reply.status.code() == cellar::Code::kWrongType ||
               reply.status.code() == cellar::Code::kOutOfMemory);
    const cellar::storage::CacheCounters* cc = e.Cache(1);
    FUZZ_CHECK(cc != nullptr && cc->items == e.size());
    FUZZ_CHECK(cc->bytes + e.Counters().index_bytes == e.used_bytes());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Reader r{data + 1, size - 1};
  switch (data[0] % 5) {
    case 0: FuzzDict(r); break;
    case 1: FuzzSet(r); break;
    case 2: FuzzList(r); break;
    case 3: FuzzZSet(r); break;
    case 4: FuzzEngine(r); break;
  }
  return 0;
}
