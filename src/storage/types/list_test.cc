#include "storage/types/list.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace cellar::storage {
namespace {

std::vector<std::string> Contents(const List& l) {
  std::vector<std::string> out;
  l.ForRange(0, l.size(), [&](std::string_view v) { out.emplace_back(v); });
  return out;
}

std::vector<std::string> ContentsReverse(const List& l) {
  std::vector<std::string> out;
  l.ForRangeReverse(0, l.size(), [&](std::string_view v) { out.emplace_back(v); });
  return {out.rbegin(), out.rend()};
}

std::vector<size_t> FindAll(const List& l, std::string_view v, bool reverse, size_t maxlen = 0) {
  std::vector<size_t> out;
  l.Find(v, reverse, maxlen, [&](size_t i) {
    out.push_back(i);
    return true;
  });
  return out;
}

// A list 0..n-1 as decimal strings, built at the back.
void Fill(List& l, int n) {
  for (int i = 0; i < n; ++i) l.PushBack(std::to_string(i));
}

std::vector<std::string> Range(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(std::to_string(i));
  return out;
}

void ExpectSane(const List& l) {
  EXPECT_TRUE(l.CheckInvariantsForTest());
  EXPECT_EQ(l.bytes(), l.RecomputeBytesForTest());
  EXPECT_EQ(Contents(l), ContentsReverse(l));
}

TEST(ListTest, Empty) {
  List l;
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.bytes(), 0u);
  std::string s = "x";
  EXPECT_FALSE(l.PopFront(&s));
  EXPECT_FALSE(l.PopBack(&s));
  EXPECT_FALSE(l.PopBack(nullptr));
  EXPECT_EQ(s, "x");
  int calls = 0;
  l.ForRange(0, 10, [&](std::string_view) { ++calls; });
  l.ForRangeReverse(0, 10, [&](std::string_view) { ++calls; });
  l.Find("a", false, 0, [&](size_t) { return ++calls, true; });
  l.Find("a", true, 0, [&](size_t) { return ++calls, true; });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(l.Remove("a", 0), 0u);
  l.Erase(0, 5);
  l.Trim(0, 5);
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.bytes(), 0u);
  ExpectSane(l);
}

TEST(ListTest, PushPopBothEnds) {
  List l;
  l.PushBack("b");
  l.PushFront("a");
  l.PushBack("c");
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(Contents(l), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_GT(l.bytes(), 0u);
  ExpectSane(l);
  std::string s;
  EXPECT_TRUE(l.PopFront(&s));
  EXPECT_EQ(s, "a");
  EXPECT_TRUE(l.PopBack(&s));
  EXPECT_EQ(s, "c");
  EXPECT_TRUE(l.PopBack(nullptr));
  EXPECT_FALSE(l.PopFront(&s));
  EXPECT_EQ(s, "c");
  EXPECT_EQ(l.bytes(), 0u);
}

TEST(ListTest, ManyAtBothEndsCrossNodes) {
  List l;
  std::deque<std::string> model;
  for (int i = 0; i < 1000; ++i) {
    l.PushFront("f" + std::to_string(i));
    model.push_front("f" + std::to_string(i));
    l.PushBack("b" + std::to_string(i));
    model.push_back("b" + std::to_string(i));
  }
  EXPECT_GT(l.NodeCountForTest(), 2000u / List::kNodeElems);
  EXPECT_EQ(Contents(l), std::vector<std::string>(model.begin(), model.end()));
  ExpectSane(l);
  for (size_t i = 0; i < model.size(); ++i) ASSERT_EQ(l.At(i), model[i]) << i;
  std::string s;
  while (!model.empty()) {
    ASSERT_TRUE(l.PopBack(&s));
    ASSERT_EQ(s, model.back());
    model.pop_back();
    if (model.empty()) break;
    ASSERT_TRUE(l.PopFront(&s));
    ASSERT_EQ(s, model.front());
    model.pop_front();
  }
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.bytes(), 0u);
}

TEST(ListTest, EmptyStringsAndBinary) {
  List l;
  std::string bin;
  for (int c = 0; c < 256; ++c) bin.push_back(static_cast<char>(c));
  l.PushBack("");
  l.PushBack(bin);
  l.PushFront("");
  l.PushBack(std::string(1, '\0'));
  l.PushBack(std::string("\x80\xff\x7f", 3));
  EXPECT_EQ(l.size(), 5u);
  EXPECT_EQ(l.At(0), "");
  EXPECT_EQ(l.At(1), "");
  EXPECT_EQ(l.At(2), bin);
  EXPECT_EQ(l.At(3), std::string(1, '\0'));
  EXPECT_EQ(l.At(4), std::string("\x80\xff\x7f", 3));
  ExpectSane(l);
  EXPECT_EQ(FindAll(l, "", false), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(l.Remove("", 0), 2u);
  EXPECT_EQ(l.At(0), bin);
  l.Set(0, "");
  EXPECT_EQ(l.At(0), "");
  std::string s = "junk";
  EXPECT_TRUE(l.PopFront(&s));
  EXPECT_EQ(s, "");
  ExpectSane(l);
}

TEST(ListTest, VarintLengthBoundaries) {
  List l;
  std::vector<size_t> lens = {0,    1,    126,  127,   128,   129,   255,  256,
                              4095, 4096, 4097, 16383, 16384, 16385, 70000};
  std::vector<std::string> want;
  for (size_t n : lens) {
    std::string v(n, static_cast<char>('a' + n % 26));
    if (n > 0) v[n - 1] = '\x81';
    l.PushBack(v);
    l.PushFront(v);
    want.push_back(v);
    want.insert(want.begin(), v);
  }
  EXPECT_EQ(Contents(l), want);
  ExpectSane(l);
  std::string s;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(l.PopBack(&s));
    ASSERT_EQ(s, want[want.size() - 1 - i]);
  }
  EXPECT_EQ(l.bytes(), 0u);
}

TEST(ListTest, HugeElement) {
  const std::string big(100 * 1024, 'Z');
  List l;
  Fill(l, 300);
  l.Insert(150, big);  // middle of a node: splits it, the big one gets a node of its own
  EXPECT_EQ(l.size(), 301u);
  EXPECT_EQ(l.At(150), big);
  EXPECT_EQ(l.At(149), "149");
  EXPECT_EQ(l.At(151), "150");
  ExpectSane(l);
  EXPECT_GE(l.bytes(), big.size());
  l.PushBack(big);
  l.PushFront(big);
  EXPECT_EQ(l.At(0), big);
  EXPECT_EQ(l.At(302), big);
  ExpectSane(l);
  // Small -> big and big -> small in place.
  l.Set(10, big);
  EXPECT_EQ(l.At(10), big);
  EXPECT_EQ(l.At(9), "8");
  EXPECT_EQ(l.At(11), "10");
  l.Set(151, "small");
  EXPECT_EQ(l.At(151), "small");
  ExpectSane(l);
  EXPECT_EQ(FindAll(l, big, false), (std::vector<size_t>{0, 10, 302}));
  EXPECT_EQ(l.Remove(big, -2), 2u);
  EXPECT_EQ(FindAll(l, big, false), (std::vector<size_t>{0}));
  std::string s;
  EXPECT_TRUE(l.PopFront(&s));
  EXPECT_EQ(s, big);
  EXPECT_EQ(Contents(l)[149], "small");  // 10 and the front one are gone
  ExpectSane(l);
  l.Trim(0, 0);
  EXPECT_EQ(l.bytes(), 0u);
}

TEST(ListTest, AtNodeBoundaries) {
  List l;
  Fill(l, 1000);
  for (size_t i : {0, 1, 126, 127, 128, 129, 255, 256, 257, 511, 512, 998, 999}) {
    EXPECT_EQ(l.At(i), std::to_string(i));
  }
  std::vector<std::string> got;
  l.ForRange(120, 140, [&](std::string_view v) { got.emplace_back(v); });
  EXPECT_EQ(got, Range(120, 140));
  got.clear();
  l.ForRangeReverse(250, 260, [&](std::string_view v) { got.emplace_back(v); });
  std::vector<std::string> want = Range(250, 260);
  EXPECT_EQ(got, std::vector<std::string>(want.rbegin(), want.rend()));
  got.clear();
  l.ForRange(990, 5000, [&](std::string_view v) { got.emplace_back(v); });  // clamped
  EXPECT_EQ(got, Range(990, 1000));
  got.clear();
  l.ForRangeReverse(995, 5000, [&](std::string_view v) { got.emplace_back(v); });
  EXPECT_EQ(got, (std::vector<std::string>{"999", "998", "997", "996", "995"}));
  got.clear();
  l.ForRange(500, 500, [&](std::string_view v) { got.emplace_back(v); });
  l.ForRange(600, 500, [&](std::string_view v) { got.emplace_back(v); });
  l.ForRange(1000, 1001, [&](std::string_view v) { got.emplace_back(v); });
  EXPECT_TRUE(got.empty());
  // A bool-returning fn stops the walk.
  int calls = 0;
  l.ForRange(0, 1000, [&](std::string_view) { return ++calls < 5; });
  EXPECT_EQ(calls, 5);
  calls = 0;
  l.ForRangeReverse(0, 1000, [&](std::string_view) { return ++calls < 300; });
  EXPECT_EQ(calls, 300);
}

TEST(ListTest, SetEverywhere) {
  List l;
  Fill(l, 600);
  std::vector<std::string> want = Range(0, 600);
  for (size_t i : {0, 127, 128, 300, 599}) {
    l.Set(i, "s" + std::to_string(i));
    want[i] = "s" + std::to_string(i);
  }
  // Grow an element until its node cannot hold it together with its neighbours.
  for (size_t n : {100, 1000, 3000, 4000, 5000, 10}) {
    l.Set(200, std::string(n, 'g'));
    want[200] = std::string(n, 'g');
    ASSERT_EQ(Contents(l), want);
    ExpectSane(l);
  }
}

TEST(ListTest, InsertEdges) {
  List l;
  l.Insert(0, "b");  // into an empty list
  l.Insert(0, "a");  // at 0
  l.Insert(2, "d");  // at size
  l.Insert(2, "c");
  l.Insert(99, "e");  // past the end appends
  EXPECT_EQ(Contents(l), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  ExpectSane(l);

  List m;
  Fill(m, 512);  // 4 full nodes
  std::vector<std::string> want = Range(0, 512);
  for (size_t i : {128, 256, 1, 127, 384, 300, 511, 0}) {
    m.Insert(i, "ins" + std::to_string(i));
    want.insert(want.begin() + i, "ins" + std::to_string(i));
    ASSERT_EQ(Contents(m), want) << i;
    ExpectSane(m);
  }
  m.Insert(m.size(), "last");
  want.push_back("last");
  EXPECT_EQ(Contents(m), want);
  // Many inserts at one spot keep nodes within limits.
  for (int k = 0; k < 1000; ++k) {
    m.Insert(200, "x");
    want.insert(want.begin() + 200, "x");
  }
  EXPECT_EQ(Contents(m), want);
  ExpectSane(m);
}

TEST(ListTest, EraseAcrossNodes) {
  List l;
  Fill(l, 1000);
  std::vector<std::string> want = Range(0, 1000);
  auto erase = [&](size_t start, size_t count) {
    l.Erase(start, count);
    size_t end = std::min(want.size(), start + count);
    if (start < want.size()) want.erase(want.begin() + start, want.begin() + end);
    ASSERT_EQ(Contents(l), want);
    ExpectSane(l);
  };
  erase(120, 20);  // straddles the first node boundary
  erase(0, 1);
  erase(100, 300);   // several whole nodes
  erase(500, 1000);  // clamped to the end
  erase(5000, 3);    // past the end: nothing
  erase(10, 0);
  size_t nodes = l.NodeCountForTest();
  EXPECT_LE(nodes, (want.size() + List::kNodeElems - 1) / List::kNodeElems + 2);
  erase(0, want.size());
  EXPECT_EQ(l.bytes(), 0u);
}

TEST(ListTest, EraseMergesSmallNodes) {
  List l;
  Fill(l, 1280);  // 10 full nodes
  EXPECT_EQ(l.NodeCountForTest(), 10u);
  // Thin every node to a few elements, one Erase at a time, from the back.
  for (int node = 9; node >= 0; --node) l.Erase(node * 128 + 4, 124);
  EXPECT_EQ(l.size(), 40u);
  EXPECT_EQ(l.NodeCountForTest(), 1u);
  ExpectSane(l);
}

TEST(ListTest, Trim) {
  List l;
  Fill(l, 1000);
  l.Trim(100, 900);
  EXPECT_EQ(Contents(l), Range(100, 900));
  ExpectSane(l);
  l.Trim(0, 5000);
  EXPECT_EQ(l.size(), 800u);
  l.Trim(127, 129);
  EXPECT_EQ(Contents(l), Range(227, 229));
  ExpectSane(l);
  l.Trim(1, 1);
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.bytes(), 0u);
  Fill(l, 10);
  l.Trim(0, 0);
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.bytes(), 0u);
  Fill(l, 10);
  l.Trim(20, 30);
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.bytes(), 0u);
}

TEST(ListTest, RemoveCounts) {
  // "x" at every 10th position, across many nodes.
  auto build = [](List& l, std::vector<std::string>& want) {
    for (int i = 0; i < 1000; ++i) {
      std::string v = i % 10 == 0 ? "x" : std::to_string(i);
      l.PushBack(v);
      want.push_back(v);
    }
  };
  {
    List l;
    std::vector<std::string> want;
    build(l, want);
    EXPECT_EQ(l.Remove("x", 15), 15u);  // from the head: positions 0..140
    int left = 15;
    for (auto it = want.begin(); it != want.end() && left > 0;) {
      if (*it == "x") {
        it = want.erase(it);
        --left;
      } else {
        ++it;
      }
    }
    EXPECT_EQ(Contents(l), want);
    ExpectSane(l);
  }
  {
    List l;
    std::vector<std::string> want;
    build(l, want);
    EXPECT_EQ(l.Remove("x", -15), 15u);  // from the tail
    int left = 15;
    for (size_t i = want.size(); i-- > 0 && left > 0;) {
      if (want[i] == "x") {
        want.erase(want.begin() + i);
        --left;
      }
    }
    EXPECT_EQ(Contents(l), want);
    ExpectSane(l);
  }
  {
    List l;
    std::vector<std::string> want;
    build(l, want);
    EXPECT_EQ(l.Remove("x", 0), 100u);
    std::erase(want, "x");
    EXPECT_EQ(Contents(l), want);
    EXPECT_EQ(l.Remove("x", 0), 0u);
    EXPECT_EQ(l.Remove("absent", -3), 0u);
    ExpectSane(l);
  }
  {
    // Removing everything, a whole node at a time, frees it all.
    List l;
    for (int i = 0; i < 700; ++i) l.PushBack("same");
    EXPECT_EQ(l.Remove("same", INT64_MIN), 700u);
    EXPECT_EQ(l.size(), 0u);
    EXPECT_EQ(l.bytes(), 0u);
  }
  {
    // Count larger than the matches; whole nodes of matches in the middle.
    List l;
    std::vector<std::string> want;
    for (int i = 0; i < 900; ++i) {
      std::string v = (i >= 200 && i < 600) ? "m" : std::to_string(i);
      l.PushBack(v);
      if (v != "m") want.push_back(v);
    }
    EXPECT_EQ(l.Remove("m", -100000), 400u);
    EXPECT_EQ(Contents(l), want);
    EXPECT_LE(l.NodeCountForTest(), 5u);
    ExpectSane(l);
  }
}

TEST(ListTest, Find) {
  List l;
  for (int i = 0; i < 1000; ++i) l.PushBack(i % 100 == 7 ? "k" : "o");
  std::vector<size_t> all;
  for (size_t i = 7; i < 1000; i += 100) all.push_back(i);
  EXPECT_EQ(FindAll(l, "k", false), all);
  EXPECT_EQ(FindAll(l, "k", true), std::vector<size_t>(all.rbegin(), all.rend()));
  EXPECT_EQ(FindAll(l, "k", false, 208), (std::vector<size_t>{7, 107, 207}));
  EXPECT_EQ(FindAll(l, "k", false, 207), (std::vector<size_t>{7, 107}));
  EXPECT_EQ(FindAll(l, "k", true, 93), (std::vector<size_t>{907}));
  EXPECT_EQ(FindAll(l, "k", true, 92), std::vector<size_t>{});
  EXPECT_TRUE(FindAll(l, "nope", false).empty());
  std::vector<size_t> first2;
  l.Find("k", true, 0, [&](size_t i) {
    first2.push_back(i);
    return first2.size() < 2;
  });
  EXPECT_EQ(first2, (std::vector<size_t>{907, 807}));
}

TEST(ListTest, BytesTrackAndReturnToZero) {
  List l;
  for (int i = 0; i < 5000; ++i) {
    l.PushBack(std::string(i % 50, 'q'));
    if (i % 500 == 0) {
      ASSERT_EQ(l.bytes(), l.RecomputeBytesForTest());
    }
  }
  EXPECT_EQ(l.bytes(), l.RecomputeBytesForTest());
  size_t full = l.bytes();
  l.Erase(0, 4000);
  EXPECT_EQ(l.bytes(), l.RecomputeBytesForTest());
  EXPECT_LT(l.bytes(), full / 3);
  while (l.PopFront(nullptr)) {
  }
  EXPECT_EQ(l.bytes(), 0u);
}

TEST(ListTest, SingleNodeShrinksAfterPops) {
  List l;
  for (int i = 0; i < 100; ++i) l.PushBack(std::string(30, 'a'));
  size_t full = l.bytes();
  for (int i = 0; i < 98; ++i) l.PopFront(nullptr);
  EXPECT_LT(l.bytes(), full / 4);
  EXPECT_EQ(l.bytes(), l.RecomputeBytesForTest());
}

// Every small layout of free space around one node's data (pops leave room at the front,
// pushes use the back) meets pushes and inserts of every size class.
TEST(ListTest, SweepSmallLayouts) {
  for (size_t s : {3, 20, 90}) {
    for (int k = 1; k <= 24; ++k) {
      for (int j = 0; j < k; ++j) {
        for (size_t t : {1, 10, 40, 100, 200}) {
          for (int where = 0; where < 3; ++where) {
            List l;
            std::deque<std::string> m;
            for (int i = 0; i < k; ++i) {
              std::string v(s, static_cast<char>('a' + i));
              l.PushBack(v);
              m.push_back(v);
            }
            for (int i = 0; i < j; ++i) {
              l.PopFront(nullptr);
              m.pop_front();
            }
            std::string v(t, 'T');
            if (where == 0) {
              l.PushFront(v);
              m.push_front(v);
            } else if (where == 1) {
              l.PushBack(v);
              m.push_back(v);
            } else {
              l.Insert(m.size() / 2, v);
              m.insert(m.begin() + m.size() / 2, v);
            }
            ASSERT_EQ(Contents(l), std::vector<std::string>(m.begin(), m.end()))
                << s << " " << k << " " << j << " " << t << " " << where;
            ASSERT_TRUE(l.CheckInvariantsForTest());
          }
        }
      }
    }
  }
}

// 200,000 random operations against a std::deque model.
TEST(ListTest, RandomizedAgainstDeque) {
  std::mt19937_64 rng(20240611);
  auto rnd = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  auto value = [&]() -> std::string {
    uint64_t r = rnd(1000);
    if (r < 600) return std::string(1, static_cast<char>('a' + rnd(6)));  // frequent dupes
    if (r < 900) return std::to_string(rng());
    if (r < 985) return std::string(rnd(300), static_cast<char>(rnd(256)));
    if (r < 998) return std::string(3000 + rnd(3000), 'L');  // around the node byte limit
    return std::string(20000 + rnd(20000), 'H');
  };
  List l;
  std::deque<std::string> m;
  const size_t empty_bytes = l.bytes();
  // The size wanders toward a target that changes every 8,000 ops, so the list is often
  // empty, often one node, and often thousands of elements over many nodes.
  const size_t kTargets[] = {0, 40, 300, 2500, 1000, 0, 128, 4000};
  size_t target = 0;
  std::string s;
  size_t emptied = 0, max_size = 0, max_nodes = 0;
  for (int op = 0; op < 200000; ++op) {
    if (op % 8000 == 0) target = kTargets[(op / 8000) % std::size(kTargets)];
    size_t n = m.size();
    bool grow = n < target;
    uint64_t kind = rnd(100);
    if (!grow && kind < 24 && rnd(2)) kind += 24;                   // some pushes become pops
    if (grow && kind >= 24 && kind < 48 && rnd(2)) kind -= 24;      // and the other way
    if (grow && kind >= 74 && kind < 87 && rnd(3)) kind = rnd(24);  // fewer removals
    if (kind < 12) {
      std::string v = value();
      l.PushBack(v);
      m.push_back(v);
    } else if (kind < 24) {
      std::string v = value();
      l.PushFront(v);
      m.push_front(v);
    } else if (kind < 36) {
      bool ok = l.PopFront(&s);
      ASSERT_EQ(ok, n > 0);
      if (ok) {
        ASSERT_EQ(s, m.front());
        m.pop_front();
      }
    } else if (kind < 48) {
      bool ok = rnd(2) ? l.PopBack(&s) : (s = m.empty() ? "" : m.back(), l.PopBack(nullptr));
      ASSERT_EQ(ok, n > 0);
      if (ok) {
        ASSERT_EQ(s, m.back());
        m.pop_back();
      }
    } else if (kind < 56) {
      if (n > 0) {
        size_t i = rnd(n);
        ASSERT_EQ(l.At(i), m[i]) << "op " << op;
      }
    } else if (kind < 64) {
      if (n > 0) {
        size_t i = rnd(n);
        std::string v = value();
        l.Set(i, v);
        m[i] = v;
      }
    } else if (kind < 74) {
      size_t i = rnd(n + 1);
      std::string v = value();
      l.Insert(i, v);
      m.insert(m.begin() + i, v);
    } else if (kind < 80) {
      size_t start = rnd(n + 2);
      size_t count = rnd(grow ? 200 : 4) == 0 ? rnd(400) : rnd(5);
      l.Erase(start, count);
      if (start < n) m.erase(m.begin() + start, m.begin() + std::min(n, start + count));
    } else if (kind < 81 && rnd(grow ? 20 : 2) == 0) {
      size_t start = rnd(n / 8 + 2);
      size_t end = n - std::min(n, static_cast<size_t>(rnd(n / 8 + 2))) + rnd(3);
      if (rnd(50) == 0) end = start;  // empties
      l.Trim(start, end);
      end = std::min(end, n);
      if (start >= end) {
        m.clear();
      } else {
        m.erase(m.begin() + end, m.end());
        m.erase(m.begin(), m.begin() + start);
      }
    } else if (kind < 87) {
      std::string v = rnd(4) ? std::string(1, static_cast<char>('a' + rnd(6))) : value();
      int64_t count = static_cast<int64_t>(rnd(3)) + 1;  // 1..3
      if (rnd(2)) count = -count;
      if (rnd(grow ? 200 : 5) == 0) count = 0;  // all
      size_t removed = l.Remove(v, count);
      size_t want = 0;
      size_t limit = count == 0 ? SIZE_MAX : static_cast<size_t>(count < 0 ? -count : count);
      if (count >= 0) {
        for (auto it = m.begin(); it != m.end() && want < limit;) {
          if (*it == v) {
            it = m.erase(it);
            ++want;
          } else {
            ++it;
          }
        }
      } else {
        for (size_t i = m.size(); i-- > 0 && want < limit;) {
          if (m[i] == v) {
            m.erase(m.begin() + i);
            ++want;
          }
        }
      }
      ASSERT_EQ(removed, want) << "op " << op;
    } else if (kind < 93) {
      std::string v(1, static_cast<char>('a' + rnd(6)));
      bool reverse = rnd(2);
      size_t maxlen = rnd(3) ? 0 : rnd(n + 1);
      size_t stop_after = 1 + rnd(5);
      std::vector<size_t> got, want;
      l.Find(v, reverse, maxlen, [&](size_t i) {
        got.push_back(i);
        return got.size() < stop_after;
      });
      size_t budget = maxlen == 0 ? n : std::min(maxlen, n);
      for (size_t step = 0; step < budget && want.size() < stop_after; ++step) {
        size_t i = reverse ? n - 1 - step : step;
        if (m[i] == v) want.push_back(i);
      }
      ASSERT_EQ(got, want) << "op " << op;
    } else {
      size_t start = rnd(n + 2);
      size_t end = start + rnd(300);
      bool reverse = rnd(2);
      std::vector<std::string> got;
      auto push = [&](std::string_view v) { got.emplace_back(v); };
      if (reverse) {
        l.ForRangeReverse(start, end, push);
      } else {
        l.ForRange(start, end, push);
      }
      std::vector<std::string> want;
      for (size_t i = start; i < std::min(end, n); ++i) want.push_back(m[i]);
      if (reverse) std::reverse(want.begin(), want.end());
      ASSERT_EQ(got, want) << "op " << op;
    }

    ASSERT_EQ(l.size(), m.size()) << "op " << op;
    // Full contents after every op (ForRange is cheap next to the model's own work).
    size_t i = 0;
    bool same = true;
    l.ForRange(0, l.size(), [&](std::string_view v) { same = same && v == m[i++]; });
    ASSERT_TRUE(same) << "op " << op;
    if (op % 97 == 0) {
      ASSERT_EQ(l.bytes(), l.RecomputeBytesForTest()) << "op " << op;
      ASSERT_TRUE(l.CheckInvariantsForTest()) << "op " << op;
    }
    max_size = std::max(max_size, m.size());
    max_nodes = std::max(max_nodes, l.NodeCountForTest());
    if (m.empty()) {
      ++emptied;
      ASSERT_EQ(l.bytes(), empty_bytes) << "op " << op;
    }
  }
  std::printf("[random] max size %zu, max nodes %zu, emptied %zu times\n", max_size, max_nodes,
              emptied);
  EXPECT_GT(emptied, 0u);
  EXPECT_GT(max_nodes, 10u);
  EXPECT_TRUE(l.CheckInvariantsForTest());
  while (l.PopBack(nullptr)) {
  }
  EXPECT_EQ(l.bytes(), empty_bytes);
}

// Not asserted: prints the cost of the queue pattern and the memory per element.
// Printed, not asserted; run with --gtest_also_run_disabled_tests.
TEST(ListTest, DISABLED_BenchmarkPushBackPopFront) {
  constexpr int kOps = 1000000;
  const std::string v(16, 'v');
  List l;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kOps; ++i) l.PushBack(v);
  auto t1 = std::chrono::steady_clock::now();
  size_t bytes = l.bytes();
  EXPECT_EQ(bytes, l.RecomputeBytesForTest());
  std::string out;
  for (int i = 0; i < kOps; ++i) l.PopFront(&out);
  auto t2 = std::chrono::steady_clock::now();
  // Steady state: a queue of ~1000 elements, push one, pop one.
  for (int i = 0; i < 1000; ++i) l.PushBack(v);
  auto t3 = std::chrono::steady_clock::now();
  for (int i = 0; i < kOps; ++i) {
    l.PushBack(v);
    l.PopFront(&out);
  }
  auto t4 = std::chrono::steady_clock::now();
  auto ns = [](auto a, auto b) {
    return std::chrono::duration<double, std::nano>(b - a).count() / kOps;
  };
  std::printf(
      "[bench] 1e6 x 16-byte: PushBack %.1f ns, PopFront %.1f ns, push+pop (queue of 1000) "
      "%.1f ns; %.2f bytes/element (%zu bytes, %zu nodes at peak)\n",
      ns(t0, t1), ns(t1, t2), ns(t3, t4), static_cast<double>(bytes) / kOps, bytes,
      static_cast<size_t>((kOps + List::kNodeElems - 1) / List::kNodeElems));
  EXPECT_EQ(out, v);
}

}  // namespace
}  // namespace cellar::storage
