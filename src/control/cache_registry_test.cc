#include "control/cache_registry.h"
#include "metadata/local_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace cellar::control {
namespace {

TEST(CacheRegistry, PersistsAcrossInstances) {
  auto dir = std::filesystem::temp_directory_path() / ("cellar_reg_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  uint32_t id_b = 0;
  {
    metadata::LocalStore store_r(dir.string());
  CacheRegistry r(store_r);
    ASSERT_TRUE(r.Create(kDefaultTenant, "a").ok());
    auto b = r.Create(kDefaultTenant, "b");
    ASSERT_TRUE(b.ok());
    id_b = b->id;
    EXPECT_EQ(r.Create(kDefaultTenant, "a").status().code(), Code::kAlreadyExists);
    EXPECT_EQ(r.Create(kDefaultTenant, "has space").status().code(), Code::kInvalidArgument);
    EXPECT_EQ(r.Create(kDefaultTenant, "").status().code(), Code::kInvalidArgument);
    EXPECT_EQ(r.Create(kDefaultTenant, std::string(256, 'x')).status().code(), Code::kInvalidArgument);
    ASSERT_TRUE(r.Remove(kDefaultTenant, "a").ok());
  }
  metadata::LocalStore store_r(dir.string());
  CacheRegistry r(store_r);
  EXPECT_FALSE(r.Find(kDefaultTenant, "a"));
  ASSERT_TRUE(r.Find(kDefaultTenant, "b"));
  EXPECT_EQ(r.Find(kDefaultTenant, "b")->id, id_b);
  auto c = r.Create(kDefaultTenant, "c");
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->id, id_b);  // ids are never reused
  std::filesystem::remove_all(dir);
}

TEST(CacheRegistry, TenantsHaveSeparateNamespacesAndSurviveRestart) {
  auto dir = std::filesystem::temp_directory_path() / ("cellar_reg_t_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  uint32_t acme = 0, id_default = 0, id_acme = 0;
  {
    metadata::LocalStore store_r(dir.string());
  CacheRegistry r(store_r);
    ASSERT_TRUE(r.FindTenant("default"));
    EXPECT_EQ(r.FindTenant("default")->id, kDefaultTenant);
    auto t = r.CreateTenant("acme");
    ASSERT_TRUE(t.ok());
    acme = t->id;
    EXPECT_NE(acme, kDefaultTenant);
    EXPECT_EQ(r.CreateTenant("acme").status().code(), Code::kAlreadyExists);
    EXPECT_EQ(r.CreateTenant("no spaces").status().code(), Code::kInvalidArgument);
    auto a = r.Create(kDefaultTenant, "sessions");
    auto b = r.Create(acme, "sessions");  // the same name in another tenant
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_NE(a->id, b->id);
    id_default = a->id;
    id_acme = b->id;
    EXPECT_EQ(r.Create(12345, "x").status().code(), Code::kNotFound);
    EXPECT_EQ(r.List(acme).size(), 1u);
    EXPECT_EQ(r.ListAll().size(), 2u);
  }
  metadata::LocalStore store_r(dir.string());
  CacheRegistry r(store_r);
  ASSERT_TRUE(r.FindTenant("acme"));
  EXPECT_EQ(r.FindTenant("acme")->id, acme);
  EXPECT_EQ(r.Find(kDefaultTenant, "sessions")->id, id_default);
  EXPECT_EQ(r.Find(acme, "sessions")->id, id_acme);
  ASSERT_TRUE(r.Remove(acme, "sessions").ok());
  EXPECT_TRUE(r.Find(kDefaultTenant, "sessions"));
  EXPECT_GT(r.CreateTenant("beta")->id, acme);  // tenant ids are never reused
  std::filesystem::remove_all(dir);
}

TEST(CacheRegistry, AListFromBeforeTenantsLoadsIntoDefault) {
  auto dir = std::filesystem::temp_directory_path() / ("cellar_reg_o_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "caches.tsv");
    f << "next_id\t8\n3\told\t1700000000000\n";
  }
  metadata::LocalStore store_r(dir.string());
  ImportLegacyCacheList(store_r, dir.string());
  EXPECT_TRUE(std::filesystem::exists(dir / "caches.tsv.imported"));
  EXPECT_FALSE(std::filesystem::exists(dir / "caches.tsv"));
  CacheRegistry r(store_r);
  ASSERT_TRUE(r.Find(kDefaultTenant, "old"));
  EXPECT_EQ(r.Find(kDefaultTenant, "old")->id, 3u);
  EXPECT_EQ(r.Create(kDefaultTenant, "new")->id, 8u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cellar::control
