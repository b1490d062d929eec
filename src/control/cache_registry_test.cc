#include "control/cache_registry.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace cellar::control {
namespace {

TEST(CacheRegistry, PersistsAcrossInstances) {
  auto dir = std::filesystem::temp_directory_path() / ("cellar_reg_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  uint32_t id_b = 0;
  {
    CacheRegistry r(dir.string());
    ASSERT_TRUE(r.Create("a").ok());
    auto b = r.Create("b");
    ASSERT_TRUE(b.ok());
    id_b = b->id;
    EXPECT_EQ(r.Create("a").status().code(), Code::kAlreadyExists);
    EXPECT_EQ(r.Create("has space").status().code(), Code::kInvalidArgument);
    EXPECT_EQ(r.Create("").status().code(), Code::kInvalidArgument);
    EXPECT_EQ(r.Create(std::string(256, 'x')).status().code(), Code::kInvalidArgument);
    ASSERT_TRUE(r.Remove("a").ok());
  }
  CacheRegistry r(dir.string());
  EXPECT_FALSE(r.Find("a"));
  ASSERT_TRUE(r.Find("b"));
  EXPECT_EQ(r.Find("b")->id, id_b);
  auto c = r.Create("c");
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->id, id_b);  // ids are never reused
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cellar::control
