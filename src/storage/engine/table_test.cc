#include "storage/engine/table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/hash.h"

namespace cellar::storage {
namespace {

Item* MakeItem(uint32_t cache, const std::string& key) {
  Item* item = static_cast<Item*>(std::malloc(Item::AllocSize(key.size(), 0)));
  item->expire_at = 0;
  item->cache_id = cache;
  item->key_len = static_cast<uint32_t>(key.size());
  item->val_len = 0;
  item->meta = 0;
  std::memcpy(item->data(), key.data(), key.size());
  return item;
}

// Frees whatever the table still holds when the test ends.
struct TableOwner {
  Table t;
  ~TableOwner() {
    t.EraseIf([](Item*) { return true; }, [](Item* item) { std::free(item); });
  }
};

size_t Home(const Table& t, const Item* item) {
  return KeyHash(item->cache_id, item->key()) & (t.capacity() - 1);
}

// The linear-probing invariant that makes tombstone-free lookups correct: every item sits in
// its home bucket or later in one unbroken run of occupied slots (cyclically). Also checks
// size() against the occupied slots and the load factor bound.
void ExpectProbeInvariant(const Table& t) {
  const size_t cap = t.capacity();
  size_t occupied = 0;
  for (size_t i = 0; i < cap; ++i) {
    if (!t.Occupied(i)) continue;
    ++occupied;
    const size_t home = Home(t, t.At(i));
    for (size_t j = home; j != i; j = (j + 1) & (cap - 1)) {
      ASSERT_TRUE(t.Occupied(j)) << "gap at " << j << " between home " << home << " and slot "
                                 << i << " (capacity " << cap << ")";
    }
  }
  EXPECT_EQ(occupied, t.size());
  EXPECT_LE(t.size() * 4, cap * 3);
}

// Keys of cache 1 whose home bucket in a table of `cap` slots is `bucket`.
std::vector<std::string> KeysWithHome(size_t cap, size_t bucket, size_t n, const char* prefix) {
  std::vector<std::string> out;
  for (int i = 0; out.size() < n; ++i) {
    std::string k = prefix + std::to_string(i);
    if ((KeyHash(1, k) & (cap - 1)) == bucket) out.push_back(k);
  }
  return out;
}

TEST(Table, InsertFindEraseThroughGrowth) {
  Table t;
  for (int i = 0; i < 10000; ++i) {
    std::string k = "k" + std::to_string(i);
    t.Insert(MakeItem(1, k), KeyHash(1, k));
  }
  EXPECT_EQ(t.size(), 10000u);
  for (int i = 0; i < 10000; i += 2) {
    std::string k = "k" + std::to_string(i);
    size_t slot = t.Find(1, k, KeyHash(1, k));
    ASSERT_NE(slot, Table::kNotFound) << k;
    std::free(t.Erase(slot));
  }
  for (int i = 0; i < 10000; ++i) {
    std::string k = "k" + std::to_string(i);
    EXPECT_EQ(t.Find(1, k, KeyHash(1, k)) != Table::kNotFound, i % 2 == 1) << k;
    EXPECT_EQ(t.Find(2, k, KeyHash(2, k)), Table::kNotFound);
  }
  t.EraseIf([](Item*) { return true; }, [](Item* item) { std::free(item); });
  EXPECT_EQ(t.size(), 0u);
}

TEST(Table, StartsSmallAndGrowsAtThreeQuartersLoad) {
  TableOwner o;
  EXPECT_EQ(o.t.capacity(), 16u);
  EXPECT_EQ(o.t.IndexBytes(), 16u * sizeof(uint64_t));
  for (int i = 0; i < 12; ++i) {
    std::string k = "g" + std::to_string(i);
    o.t.Insert(MakeItem(1, k), KeyHash(1, k));
  }
  EXPECT_EQ(o.t.capacity(), 16u);  // 12/16 is exactly 3/4
  o.t.Insert(MakeItem(1, "g12"), KeyHash(1, "g12"));
  EXPECT_EQ(o.t.capacity(), 32u);
  ExpectProbeInvariant(o.t);
}

// Random inserts, finds and erases (random erase order) across two caches, checked against a
// std::unordered_map model, growing from 16 slots to 64K and shrinking the population back
// down (the table never shrinks) twice.
TEST(Table, RandomOpsMatchModelThroughManyGrowths) {
  TableOwner o;
  Table& t = o.t;
  std::mt19937_64 rng(20240611);
  using Key = std::pair<uint32_t, std::string>;
  struct KeyHasher {
    size_t operator()(const Key& k) const { return KeyHash(k.first, k.second); }
  };
  std::unordered_map<Key, Item*, KeyHasher> model;
  std::vector<Key> present;  // for picking a random key to erase
  std::unordered_map<Key, size_t, KeyHasher> index_in_present;

  auto random_key = [&] {
    // Bounded key space so inserts hit existing keys too; lengths 0..24, binary bytes.
    uint64_t id = rng() % 40000;
    std::string k(id % 25, '\0');
    uint64_t x = id * 0x9E3779B97F4A7C15ull;
    for (char& c : k) {
      c = static_cast<char>(x >> 56);
      x = x * 6364136223846793005ull + 1442695040888963407ull;
    }
    k += std::to_string(id);
    return Key{static_cast<uint32_t>(1 + rng() % 2), k};
  };
  auto erase_present = [&](size_t idx) {
    Key k = present[idx];
    size_t slot = t.Find(k.first, k.second, KeyHash(k.first, k.second));
    ASSERT_NE(slot, Table::kNotFound);
    Item* item = t.Erase(slot);
    ASSERT_EQ(item, model[k]);
    std::free(item);
    model.erase(k);
    index_in_present[present.back()] = idx;
    std::swap(present[idx], present.back());
    present.pop_back();
    index_in_present.erase(k);
  };
  auto verify_all = [&] {
    ASSERT_EQ(t.size(), model.size());
    for (const auto& [k, item] : model) {
      size_t slot = t.Find(k.first, k.second, KeyHash(k.first, k.second));
      ASSERT_NE(slot, Table::kNotFound);
      ASSERT_EQ(t.At(slot), item);
    }
    ExpectProbeInvariant(t);
  };

  size_t max_capacity = 0;
  int phase_growths = 0;
  for (int phase = 0; phase < 4; ++phase) {
    const bool growing = phase % 2 == 0;
    const size_t target = growing ? 30000 : 200;
    int ops = 0;
    while (growing ? model.size() < target : model.size() > target) {
      const uint64_t r = rng() % 100;
      const bool insert = growing ? r < 70 : r < 25;
      if (insert) {
        Key k = random_key();
        size_t slot = t.Find(k.first, k.second, KeyHash(k.first, k.second));
        ASSERT_EQ(slot != Table::kNotFound, model.contains(k));
        if (slot == Table::kNotFound) {
          const size_t cap = t.capacity();
          Item* item = MakeItem(k.first, k.second);
          t.Insert(item, KeyHash(k.first, k.second));
          if (t.capacity() != cap) ++phase_growths;
          model[k] = item;
          index_in_present[k] = present.size();
          present.push_back(k);
        }
      } else if (r < 90 && !present.empty()) {
        ASSERT_NO_FATAL_FAILURE(erase_present(rng() % present.size()));
      } else {
        // A lookup of a random key, present or not.
        Key k = random_key();
        size_t slot = t.Find(k.first, k.second, KeyHash(k.first, k.second));
        auto it = model.find(k);
        if (it == model.end()) {
          ASSERT_EQ(slot, Table::kNotFound);
        } else {
          ASSERT_NE(slot, Table::kNotFound);
          ASSERT_EQ(t.At(slot), it->second);
        }
      }
      if (++ops % 5000 == 0) {
        ASSERT_NO_FATAL_FAILURE(verify_all());
      }
    }
    ASSERT_NO_FATAL_FAILURE(verify_all());
    max_capacity = std::max(max_capacity, t.capacity());
  }
  EXPECT_GE(phase_growths, 12);  // 16 -> 64K slots
  EXPECT_EQ(max_capacity, 65536u);
  // Empty it completely in random order.
  while (!present.empty()) ASSERT_NO_FATAL_FAILURE(erase_present(rng() % present.size()));
  EXPECT_EQ(t.size(), 0u);
  for (size_t i = 0; i < t.capacity(); ++i) ASSERT_FALSE(t.Occupied(i));
}

// Probe runs that start at the last buckets and wrap around into slot 0, 1, ...: erasing any
// member in any order must pull the right items back (and never one whose home forbids it),
// so every remaining key stays reachable.
TEST(Table, BackwardShiftDeletionAcrossTheWrapAround) {
  constexpr size_t kCap = 16;
  std::vector<std::string> keys;
  for (auto& k : KeysWithHome(kCap, 15, 4, "e")) keys.push_back(k);   // run from 15 wraps
  for (auto& k : KeysWithHome(kCap, 13, 2, "d")) keys.push_back(k);   // 13,14
  for (auto& k : KeysWithHome(kCap, 0, 3, "z")) keys.push_back(k);    // displaced by wrap
  for (auto& k : KeysWithHome(kCap, 1, 2, "o")) keys.push_back(k);
  for (auto& k : KeysWithHome(kCap, 6, 1, "s")) keys.push_back(k);    // unrelated run
  ASSERT_EQ(keys.size(), 12u);  // the most 16 slots hold without growing

  std::mt19937 rng(7);
  for (int round = 0; round < 3000; ++round) {
    TableOwner o;
    std::vector<std::string> order = keys;
    std::shuffle(order.begin(), order.end(), rng);
    for (const auto& k : order) o.t.Insert(MakeItem(1, k), KeyHash(1, k));
    ASSERT_EQ(o.t.capacity(), kCap);
    if (round == 0) {
      // The runs really wrap: slots 13..15 and 0..5 are one run.
      for (size_t s : {13, 14, 15, 0, 1, 2, 3, 4, 5}) ASSERT_TRUE(o.t.Occupied(s)) << s;
      bool wrapped = false;
      for (size_t s = 0; s < 6; ++s) wrapped = wrapped || Home(o.t, o.t.At(s)) >= 13;
      ASSERT_TRUE(wrapped);
    }
    ASSERT_NO_FATAL_FAILURE(ExpectProbeInvariant(o.t));
    std::shuffle(order.begin(), order.end(), rng);
    std::set<std::string> remaining(order.begin(), order.end());
    for (const auto& k : order) {
      size_t slot = o.t.Find(1, k, KeyHash(1, k));
      ASSERT_NE(slot, Table::kNotFound) << k;
      Item* item = o.t.Erase(slot);
      ASSERT_EQ(item->key(), k);
      std::free(item);
      remaining.erase(k);
      ASSERT_NO_FATAL_FAILURE(ExpectProbeInvariant(o.t));
      for (const auto& r : remaining) {
        size_t s = o.t.Find(1, r, KeyHash(1, r));
        ASSERT_NE(s, Table::kNotFound) << "lost " << r << " after erasing " << k;
        ASSERT_EQ(o.t.At(s)->key(), r);
      }
      ASSERT_EQ(o.t.Find(1, k, KeyHash(1, k)), Table::kNotFound);
    }
    ASSERT_EQ(o.t.size(), 0u);
  }
}

TEST(Table, ReplaceSwapsTheBlockAndKeepsTheKeyFindable) {
  TableOwner o;
  std::vector<std::string> keys = KeysWithHome(16, 15, 3, "r");
  for (const auto& k : keys) o.t.Insert(MakeItem(1, k), KeyHash(1, k));
  size_t slot = o.t.Find(1, keys[1], KeyHash(1, keys[1]));
  ASSERT_NE(slot, Table::kNotFound);
  Item* fresh = MakeItem(1, keys[1]);
  Item* old = o.t.Replace(slot, fresh);
  EXPECT_NE(old, fresh);
  EXPECT_EQ(old->key(), keys[1]);
  std::free(old);
  EXPECT_EQ(o.t.At(o.t.Find(1, keys[1], KeyHash(1, keys[1]))), fresh);
  EXPECT_EQ(o.t.size(), 3u);
  // The replaced slot keeps its hash tag: erasing a key before it still shifts it correctly.
  std::free(o.t.Erase(o.t.Find(1, keys[0], KeyHash(1, keys[0]))));
  EXPECT_EQ(o.t.At(o.t.Find(1, keys[1], KeyHash(1, keys[1]))), fresh);
  ExpectProbeInvariant(o.t);
}

// Runs a full SCAN (cursor 0 until 0 again) and calls `between(step)` between calls.
template <typename Between>
std::multiset<std::string> FullScan(Table& t, Between&& between, size_t* steps = nullptr) {
  std::multiset<std::string> seen;
  uint64_t cursor = 0;
  size_t n = 0;
  do {
    cursor = t.ScanBucket(cursor, [&](Item* item) { seen.emplace(item->key()); });
    between(n++);
  } while (cursor != 0 && n < (1u << 22));
  if (steps != nullptr) *steps = n;
  return seen;
}

TEST(Table, ScanWithoutChangesVisitsEveryBucketOnceAndEveryKeyExactlyOnce) {
  TableOwner o;
  for (int i = 0; i < 5000; ++i) {
    std::string k = "s" + std::to_string(i);
    o.t.Insert(MakeItem(1, k), KeyHash(1, k));
  }
  size_t steps = 0;
  auto seen = FullScan(o.t, [](size_t) {}, &steps);
  EXPECT_EQ(steps, o.t.capacity());
  EXPECT_EQ(seen.size(), 5000u);
  for (int i = 0; i < 5000; ++i) EXPECT_EQ(seen.count("s" + std::to_string(i)), 1u) << i;
}

TEST(Table, ScanOfAnEmptyTableEndsAfterOnePass) {
  TableOwner o;
  size_t steps = 0;
  auto seen = FullScan(o.t, [](size_t) {}, &steps);
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(steps, 16u);
}

// The Redis SCAN guarantee: a key present for the whole iteration is returned at least once,
// even when the table grows (once or several times) in the middle of the iteration, and even
// when other keys are deleted meanwhile (backward shifts move items between slots).
TEST(Table, ScanReturnsEveryStableKeyAtLeastOnceWhenTheTableGrowsMidway) {
  for (size_t grow_at : {0, 1, 3, 17, 100, 700, 1000}) {
    for (int growths : {1, 3}) {
      SCOPED_TRACE("grow after step " + std::to_string(grow_at) + ", x" +
                   std::to_string(growths));
      TableOwner o;
      Table& t = o.t;
      std::vector<std::string> stable;
      for (int i = 0; i < 1500; ++i) {
        std::string k = "stable" + std::to_string(i);
        t.Insert(MakeItem(1, k), KeyHash(1, k));
        stable.push_back(k);
      }
      std::vector<std::string> transient;
      for (int i = 0; i < 300; ++i) {
        std::string k = "transient" + std::to_string(i);
        t.Insert(MakeItem(1, k), KeyHash(1, k));
        transient.push_back(k);
      }
      const size_t cap_before = t.capacity();
      int extra = 0;
      auto between = [&](size_t step) {
        if (step == grow_at) {
          // Grow `growths` times by inserting new keys.
          const size_t want_cap = cap_before << growths;
          while (t.capacity() < want_cap) {
            std::string k = "new" + std::to_string(extra++);
            t.Insert(MakeItem(1, k), KeyHash(1, k));
          }
        }
        if (step % 7 == 3 && !transient.empty()) {
          const std::string k = transient.back();
          transient.pop_back();
          std::free(t.Erase(t.Find(1, k, KeyHash(1, k))));
        }
      };
      auto seen = FullScan(t, between);
      ASSERT_GE(t.capacity(), cap_before << growths);
      for (const auto& k : stable) ASSERT_GE(seen.count(k), 1u) << k;
    }
  }
}

TEST(Table, EraseIfRemovesExactlyTheMatchingItemsIncludingWrappedRuns) {
  std::mt19937 rng(99);
  for (int round = 0; round < 500; ++round) {
    TableOwner o;
    Table& t = o.t;
    // Crowd the last buckets so runs wrap into slot 0, plus random keys, two caches.
    std::vector<std::pair<uint32_t, std::string>> keys;
    for (auto& k : KeysWithHome(16, 15, 3, "w")) keys.emplace_back(1, k);
    for (auto& k : KeysWithHome(16, 14, 2, "v")) keys.emplace_back(1, k);
    for (int i = 0; i < 7; ++i) keys.emplace_back(1 + rng() % 2, "x" + std::to_string(rng()));
    std::shuffle(keys.begin(), keys.end(), rng);
    for (const auto& [c, k] : keys) t.Insert(MakeItem(c, k), KeyHash(c, k));
    // Predicate: a random subset (decided up front, by key).
    std::set<std::pair<uint32_t, std::string>> doomed;
    for (const auto& ck : keys) {
      if (rng() % 2) doomed.insert(ck);
    }
    std::unordered_set<Item*> erased_items;
    size_t n = t.EraseIf(
        [&](Item* item) { return doomed.contains({item->cache_id, std::string(item->key())}); },
        [&](Item* item) {
          EXPECT_TRUE(erased_items.insert(item).second) << "on_erase called twice";
          std::free(item);
        });
    EXPECT_EQ(n, doomed.size());
    EXPECT_EQ(erased_items.size(), doomed.size());
    EXPECT_EQ(t.size(), keys.size() - doomed.size());
    ASSERT_NO_FATAL_FAILURE(ExpectProbeInvariant(t));
    for (const auto& [c, k] : keys) {
      const bool found = t.Find(c, k, KeyHash(c, k)) != Table::kNotFound;
      EXPECT_EQ(found, !doomed.contains({c, k})) << k;
    }
  }
}

TEST(Table, EraseIfByCacheOnALargeTable) {
  TableOwner o;
  Table& t = o.t;
  for (int i = 0; i < 20000; ++i) {
    const uint32_t c = 1 + i % 3;
    std::string k = "c" + std::to_string(i);
    t.Insert(MakeItem(c, k), KeyHash(c, k));
  }
  size_t freed = 0;
  size_t n = t.EraseIf([](Item* item) { return item->cache_id == 2; },
                       [&](Item* item) {
                         ++freed;
                         std::free(item);
                       });
  EXPECT_EQ(n, 6667u);
  EXPECT_EQ(freed, 6667u);
  EXPECT_EQ(t.size(), 20000u - 6667u);
  ExpectProbeInvariant(t);
  for (int i = 0; i < 20000; ++i) {
    const uint32_t c = 1 + i % 3;
    std::string k = "c" + std::to_string(i);
    ASSERT_EQ(t.Find(c, k, KeyHash(c, k)) != Table::kNotFound, c != 2) << k;
  }
}

TEST(Table, FindDistinguishesCachesAndBinaryKeys) {
  TableOwner o;
  const std::string a("a\0b", 3);
  const std::string b("a\0c", 3);
  o.t.Insert(MakeItem(1, a), KeyHash(1, a));
  o.t.Insert(MakeItem(2, a), KeyHash(2, a));
  o.t.Insert(MakeItem(1, ""), KeyHash(1, ""));
  EXPECT_NE(o.t.Find(1, a, KeyHash(1, a)), o.t.Find(2, a, KeyHash(2, a)));
  EXPECT_EQ(o.t.Find(1, b, KeyHash(1, b)), Table::kNotFound);
  EXPECT_EQ(o.t.Find(3, a, KeyHash(3, a)), Table::kNotFound);
  ASSERT_NE(o.t.Find(1, "", KeyHash(1, "")), Table::kNotFound);
  EXPECT_EQ(o.t.At(o.t.Find(1, "", KeyHash(1, "")))->key_len, 0u);
  EXPECT_EQ(o.t.Find(1, "a", KeyHash(1, "a")), Table::kNotFound);
}

}  // namespace
}  // namespace cellar::storage
