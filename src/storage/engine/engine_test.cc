#include "storage/engine/engine.h"

#include <gtest/gtest.h>

namespace cellar::storage {
namespace {

TEST(Engine, SetGetWithTtlOnInjectedClock) {
  ManualClock clock;
  Engine e(&clock, 0);
  e.CreateCache(1);
  bool stored = false;
  ASSERT_TRUE(e.Set(1, "k", "v", clock.NowMillis() + 1000, api::kSetTtl, &stored, nullptr).ok());
  EXPECT_TRUE(stored);
  EXPECT_EQ(e.Get(1, "k"), "v");
  EXPECT_FALSE(e.Get(2, "k"));
  clock.Advance(999);
  EXPECT_EQ(e.TtlMillis(1, "k"), 1);
  clock.Advance(1);
  EXPECT_FALSE(e.Get(1, "k"));
  EXPECT_EQ(e.Cache(1)->items, 0u);
}

}  // namespace
}  // namespace cellar::storage
