#include "control/limits.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "control/cache_registry.h"
#include "metadata/local_store.h"

namespace cellar::control {
namespace {

TEST(Limits, ParsesNumbersSizesDurationsAndKeywords) {
  auto o = ParseLimits(
      "requests_per_second=500, max_item_bytes=64kib;max_ttl_seconds=24h "
      "write_bytes_per_second=1.5mib,read_bytes_per_second=unlimited,publish_per_second=default",
      /*for_cache=*/true);
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ((*o)[LimitId::kRequestsPerSecond], 500u);
  EXPECT_EQ((*o)[LimitId::kMaxItemBytes], 64u * 1024);
  EXPECT_EQ((*o)[LimitId::kMaxTtlSeconds], 86400u);
  EXPECT_EQ((*o)[LimitId::kWriteBytesPerSecond], 1572864u);
  EXPECT_EQ((*o)[LimitId::kReadBytesPerSecond], 0u);
  EXPECT_EQ((*o)[LimitId::kPublishPerSecond], kUnset);
  EXPECT_FALSE((*o)[LimitId::kMaxSubscriptions].has_value());
}

TEST(Limits, RefusesWithAMessageNamingTheProblem) {
  auto bad_name = ParseLimits("requests=5", false);
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.status().message().find("unknown limit 'requests'"), std::string::npos);
  EXPECT_NE(bad_name.status().message().find("requests_per_second"), std::string::npos);
  auto bad_value = ParseLimits("max_item_bytes=lots", false);
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.status().message().find("bad value 'lots' for max_item_bytes"),
            std::string::npos);
  EXPECT_FALSE(ParseLimits("max_ttl_seconds=5kib", false).ok());  // a size is not a duration
  EXPECT_FALSE(ParseLimits("requests_per_second=0.5", false).ok());
  EXPECT_FALSE(ParseLimits("requests_per_second", false).ok());
  auto tenant_only = ParseLimits("tenant_requests_per_second=5", /*for_cache=*/true);
  ASSERT_FALSE(tenant_only.ok());
  EXPECT_NE(tenant_only.status().message().find("tenant-wide"), std::string::npos);
  EXPECT_TRUE(ParseLimits("tenant_requests_per_second=5", /*for_cache=*/false).ok());
}

TEST(Limits, ResolveTakesCacheThenTenantThenServer) {
  Limits server = Limits::Defaults();
  LimitOverrides tenant, cache;
  tenant[LimitId::kRequestsPerSecond] = 10;
  tenant[LimitId::kMaxItemBytes] = 100;
  cache[LimitId::kRequestsPerSecond] = 20;
  Limits l = Resolve(server, tenant, cache);
  EXPECT_EQ(l[LimitId::kRequestsPerSecond], 20u);
  EXPECT_EQ(l[LimitId::kMaxItemBytes], 100u);
  EXPECT_EQ(l[LimitId::kPublishPerSecond], server[LimitId::kPublishPerSecond]);
}

TEST(Limits, DefaultsAreAtLeastMomentos) {
  const Limits d = Limits::Defaults();
  auto at_least = [](uint64_t v, uint64_t momento) { return v == 0 || v >= momento; };
  EXPECT_TRUE(at_least(d[LimitId::kRequestsPerSecond], 500));
  EXPECT_TRUE(at_least(d[LimitId::kReadBytesPerSecond], 10240 * 1024));
  EXPECT_TRUE(at_least(d[LimitId::kWriteBytesPerSecond], 10240 * 1024));
  EXPECT_TRUE(at_least(d[LimitId::kMaxItemBytes], 4883 * 1024));
  EXPECT_TRUE(at_least(d[LimitId::kMaxTtlSeconds], 86400));
  EXPECT_TRUE(at_least(d[LimitId::kPublishPerSecond], 100));
  EXPECT_TRUE(at_least(d[LimitId::kMaxSubscriptions], 100));
  EXPECT_TRUE(at_least(d[LimitId::kMaxMessageBytes], 100 * 1024));
}

TEST(Limits, RegistryMergesPersistsAndNotifies) {
  const std::string dir = ::testing::TempDir() + "/limits_registry_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  uint32_t cache_id = 0, tenant_id = 0;
  {
    metadata::LocalStore store(dir);
    CacheRegistry reg(store);
    int changes = 0;
    reg.set_on_change([&] { ++changes; });
    tenant_id = reg.CreateTenant("acme")->id;
    cache_id = reg.Create(tenant_id, "orders")->id;
    ASSERT_TRUE(reg.UpdateTenantLimits(tenant_id, *ParseLimits("requests_per_second=50,max_item_bytes=1kib", false)).ok());
    ASSERT_TRUE(reg.UpdateCacheLimits(tenant_id, "orders", *ParseLimits("requests_per_second=70", true)).ok());
    EXPECT_EQ(changes, 4);
    EXPECT_EQ(reg.EffectiveLimits(tenant_id, cache_id)[LimitId::kRequestsPerSecond], 70u);
    EXPECT_EQ(reg.EffectiveLimits(tenant_id, cache_id)[LimitId::kMaxItemBytes], 1024u);
    // `default` clears the cache's override: the tenant's applies again.
    ASSERT_TRUE(reg.UpdateCacheLimits(tenant_id, "orders", *ParseLimits("requests_per_second=default", true)).ok());
    EXPECT_EQ(reg.EffectiveLimits(tenant_id, cache_id)[LimitId::kRequestsPerSecond], 50u);
    ASSERT_TRUE(reg.UpdateCacheLimits(tenant_id, "orders", *ParseLimits("max_ttl_seconds=1h", true)).ok());
    EXPECT_EQ(reg.UpdateCacheLimits(tenant_id, "nope", {}).code(), Code::kNotFound);
    EXPECT_EQ(reg.UpdateTenantLimits(999, {}).code(), Code::kNotFound);
  }
  metadata::LocalStore store(dir);
  CacheRegistry again(store);
  const Limits l = again.EffectiveLimits(tenant_id, cache_id);
  EXPECT_EQ(l[LimitId::kRequestsPerSecond], 50u);
  EXPECT_EQ(l[LimitId::kMaxItemBytes], 1024u);
  EXPECT_EQ(l[LimitId::kMaxTtlSeconds], 3600u);
  // Deleting the cache forgets its overrides.
  ASSERT_TRUE(again.Remove(tenant_id, "orders").ok());
  EXPECT_TRUE(again.CacheLimits(cache_id).empty());
}

}  // namespace
}  // namespace cellar::control
