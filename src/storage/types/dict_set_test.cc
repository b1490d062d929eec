// Dict and Set: both encodings, the switch between them, and randomized comparison with
// std::unordered_map / std::unordered_set models, including the memory accounting.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "storage/types/dict.h"
#include "storage/types/set.h"

namespace cellar::storage {
namespace {

TEST(DictTest, PackedBasics) {
  Dict d;
  EXPECT_EQ(d.size(), 0u);
  EXPECT_EQ(d.bytes(), 0u);
  EXPECT_TRUE(d.Set("a", "1"));
  EXPECT_TRUE(d.Set("", ""));
  EXPECT_TRUE(d.Set(std::string("b\0c", 3), std::string("\xff\0", 2)));
  EXPECT_FALSE(d.Set("a", "longer value"));
  EXPECT_TRUE(d.packed());
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(*d.Get("a"), "longer value");
  EXPECT_EQ(*d.Get(""), "");
  EXPECT_EQ(*d.Get(std::string("b\0c", 3)), std::string("\xff\0", 2));
  EXPECT_FALSE(d.Get("b").has_value());
  std::vector<std::string> order;
  d.ForEach([&](std::string_view f, std::string_view) { order.emplace_back(f); });
  EXPECT_EQ(order, (std::vector<std::string>{"a", "", std::string("b\0c", 3)}));  // insertion
  EXPECT_TRUE(d.Erase("a"));
  EXPECT_FALSE(d.Erase("a"));
  EXPECT_EQ(d.size(), 2u);
  EXPECT_TRUE(d.Erase(""));
  EXPECT_TRUE(d.Erase(std::string("b\0c", 3)));
  EXPECT_EQ(d.size(), 0u);
  EXPECT_EQ(d.bytes(), 0u);  // an empty packed dict holds nothing
}

TEST(DictTest, ConvertsOnCountAndOnSize) {
  Dict d;
  for (uint32_t i = 0; i < Dict::kMaxPackedFields; ++i) d.Set("f" + std::to_string(i), "v");
  EXPECT_TRUE(d.packed());
  d.Set("one more", "v");
  EXPECT_FALSE(d.packed());
  EXPECT_EQ(d.size(), Dict::kMaxPackedFields + 1);
  for (uint32_t i = 0; i < Dict::kMaxPackedFields; ++i) {
    ASSERT_EQ(*d.Get("f" + std::to_string(i)), "v");
  }
  Dict big;
  big.Set("a", "1");
  big.Set("b", std::string(Dict::kMaxPackedBytes + 1, 'x'));
  EXPECT_FALSE(big.packed());
  EXPECT_EQ(*big.Get("a"), "1");
  EXPECT_EQ(big.Get("b")->size(), Dict::kMaxPackedBytes + 1);
  EXPECT_EQ(big.bytes(), big.RecomputeBytesForTest());
}

TEST(DictTest, ScanVisitsEveryFieldOnceWithoutChanges) {
  Dict d;
  for (int i = 0; i < 5000; ++i) d.Set("field" + std::to_string(i), std::to_string(i));
  std::map<std::string, int> seen;
  uint64_t cursor = 0;
  do {
    cursor = d.Scan(cursor, [&](std::string_view f, std::string_view v) {
      EXPECT_EQ("field" + std::string(v), f);
      seen[std::string(f)]++;
    });
  } while (cursor != 0);
  EXPECT_EQ(seen.size(), 5000u);
  for (auto& [f, n] : seen) ASSERT_EQ(n, 1) << f;
}

TEST(DictTest, RandomAgainstModel) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 3; ++round) {
    Dict d;
    std::unordered_map<std::string, std::string> model;
    const int keyspace = round == 0 ? 40 : (round == 1 ? 300 : 3000);
    for (int op = 0; op < 60000; ++op) {
      std::string f = "k" + std::to_string(rng() % keyspace);
      if (rng() % 17 == 0) f.append(rng() % 80, 'z');
      const int what = static_cast<int>(rng() % 10);
      if (what < 5) {
        std::string v(rng() % 90, static_cast<char>('a' + rng() % 26));
        const bool fresh = !model.contains(f);
        ASSERT_EQ(d.Set(f, v), fresh);
        model[f] = v;
      } else if (what < 8) {
        ASSERT_EQ(d.Erase(f), model.erase(f) == 1);
      } else {
        auto it = model.find(f);
        auto got = d.Get(f);
        ASSERT_EQ(got.has_value(), it != model.end());
        if (got) {
          ASSERT_EQ(*got, it->second);
        }
      }
      ASSERT_EQ(d.size(), model.size());
      if (op % 997 == 0) {
        ASSERT_EQ(d.bytes(), d.RecomputeBytesForTest());
      }
    }
    size_t n = 0;
    d.ForEach([&](std::string_view f, std::string_view v) {
      ++n;
      ASSERT_EQ(model.at(std::string(f)), v);
    });
    EXPECT_EQ(n, model.size());
  }
}

TEST(SetTest, BasicsAndConversion) {
  Set s;
  EXPECT_TRUE(s.Add("a"));
  EXPECT_FALSE(s.Add("a"));
  EXPECT_TRUE(s.Add(""));
  EXPECT_TRUE(s.Contains(""));
  EXPECT_FALSE(s.Contains("b"));
  EXPECT_TRUE(s.packed());
  for (int i = 0; i < 200; ++i) s.Add("m" + std::to_string(i));
  EXPECT_FALSE(s.packed());
  EXPECT_EQ(s.size(), 202u);
  EXPECT_TRUE(s.Contains("a"));
  EXPECT_TRUE(s.Contains("m199"));
  EXPECT_EQ(s.bytes(), s.RecomputeBytesForTest());
  std::mt19937_64 rng(1);
  std::set<std::string> drawn;
  for (int i = 0; i < 5000; ++i) {
    std::string_view m = s.Random(rng);
    ASSERT_TRUE(s.Contains(m));
    drawn.emplace(m);
  }
  EXPECT_GT(drawn.size(), 150u);  // random enough to reach most members
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(s.Erase("m" + std::to_string(i)));
  EXPECT_TRUE(s.Erase("a"));
  EXPECT_TRUE(s.Erase(""));
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.bytes(), s.RecomputeBytesForTest());
}

TEST(SetTest, RandomAgainstModel) {
  std::mt19937_64 rng(11);
  Set s;
  std::unordered_set<std::string> model;
  for (int op = 0; op < 100000; ++op) {
    std::string m = std::to_string(rng() % 2000);
    if (rng() % 23 == 0) m.append(70, 'q');
    if (rng() % 3 != 0) {
      ASSERT_EQ(s.Add(m), model.insert(m).second);
    } else {
      ASSERT_EQ(s.Erase(m), model.erase(m) == 1);
    }
    ASSERT_EQ(s.size(), model.size());
    if (op % 991 == 0) {
      ASSERT_EQ(s.bytes(), s.RecomputeBytesForTest());
      size_t n = 0;
      s.ForEach([&](std::string_view x) {
        ++n;
        ASSERT_TRUE(model.contains(std::string(x)));
      });
      ASSERT_EQ(n, model.size());
    }
  }
}

}  // namespace
}  // namespace cellar::storage
