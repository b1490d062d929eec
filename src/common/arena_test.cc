#include "common/arena.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace cellar {
namespace {

TEST(ScratchArena, AllocationsStayPutAcrossBlocksUntilReset) {
  ScratchArena arena;
  std::vector<std::span<double>> spans;
  for (int i = 0; i < 200; ++i) {  // far more than one block
    auto s = arena.Alloc<double>(static_cast<size_t>(i % 50 + 1));
    for (double& d : s) d = i;
    spans.push_back(s);
  }
  for (int i = 0; i < 200; ++i) {
    for (double d : spans[i]) ASSERT_EQ(d, i);  // nothing moved or was overwritten
  }
  auto big = arena.Alloc<std::string_view>(100000);  // larger than a block: its own block
  EXPECT_EQ(big.size(), 100000u);
  EXPECT_TRUE(big[99999].empty());  // value-initialised
  arena.Reset();
  auto again = arena.Alloc<int64_t>(4);
  EXPECT_EQ(again[0], 0);
  const std::string_view words[] = {"a", "bc", ""};
  auto copy = arena.Copy(std::span<const std::string_view>(words));
  ASSERT_EQ(copy.size(), 3u);
  EXPECT_EQ(copy[1], "bc");
  EXPECT_TRUE(arena.Alloc<int>(0).empty());
}

}  // namespace
}  // namespace cellar
