#include "storage/engine/table.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

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

}  // namespace
}  // namespace cellar::storage
