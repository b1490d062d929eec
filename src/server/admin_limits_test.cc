#include "server/admin_limits.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "control/cache_registry.h"
#include "metadata/local_store.h"
#include "server/admin_util.h"

namespace cellar::server {
namespace {

using control::LimitId;

TEST(FlatJsonTest, ReadsMembers) {
  auto m = ParseFlatJsonObject(R"( {"a": 500, "b":"1d", "c" : null, "d\u0041": "x\"y"} )");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->size(), 4u);
  EXPECT_EQ((*m)[0], (std::pair<std::string, std::string>("a", "500")));
  EXPECT_EQ((*m)[1].second, "1d");
  EXPECT_EQ((*m)[2].second, "null");
  EXPECT_EQ((*m)[3].first, "dA");
  EXPECT_EQ((*m)[3].second, "x\"y");
  EXPECT_TRUE(ParseFlatJsonObject("{}").ok());
  for (const char* bad : {"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":{}}", "{\"a\":[1]}",
                          "{\"a\":1,}", "{\"a\":1} x", "{a:1}", "{\"a\":\"\\q\"}",
                          // JSON is UTF-8: raw bytes that are not (echoed in errors otherwise)
                          "{\"\xff\xfe\": 1}", "{\"a\": \"\xc3\"}", "{\"\xc0\xaf\": 1}",
                          "{\"\xed\xa0\x80\": 1}", "{\"\xf4\x90\x80\x80\": 1}"}) {
    EXPECT_FALSE(ParseFlatJsonObject(bad).ok()) << bad;
  }
  auto utf8 = ParseFlatJsonObject("{\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\": 1}");
  ASSERT_TRUE(utf8.ok()) << utf8.status().message();
  EXPECT_EQ((*utf8)[0].first, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(LimitsBodyTest, JsonAndTextForms) {
  auto j = ParseLimitsBody(
      R"({"requests_per_second": 500, "max_ttl_seconds": "1d", "max_item_bytes": "default"})",
      /*for_cache=*/true);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ((*j)[LimitId::kRequestsPerSecond], 500u);
  EXPECT_EQ((*j)[LimitId::kMaxTtlSeconds], 86400u);
  EXPECT_EQ((*j)[LimitId::kMaxItemBytes], control::kUnset);
  auto t = ParseLimitsBody("requests_per_second=500, max_item_bytes=64kib\n", true);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)[LimitId::kMaxItemBytes], 65536u);
  auto n = ParseLimitsBody(R"({"max_item_bytes": null})", true);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ((*n)[LimitId::kMaxItemBytes], control::kUnset);
}

TEST(LimitsBodyTest, ErrorsSayWhat) {
  auto unknown = ParseLimitsBody(R"({"requests_per_minute": 5})", true);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown limit 'requests_per_minute'"),
            std::string::npos);
  auto bad = ParseLimitsBody(R"({"max_item_bytes": "lots"})", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad value 'lots' for max_item_bytes"), std::string::npos);
  auto sneaky = ParseLimitsBody(R"({"max_item_bytes": "1,max_ttl_seconds=5"})", true);
  EXPECT_FALSE(sneaky.ok());
  auto tenant_only = ParseLimitsBody(R"({"tenant_requests_per_second": 5})", true);
  ASSERT_FALSE(tenant_only.ok());
  EXPECT_NE(tenant_only.status().message().find("tenant-wide"), std::string::npos);
  EXPECT_TRUE(ParseLimitsBody(R"({"tenant_requests_per_second": 5})", false).ok());
  EXPECT_FALSE(ParseLimitsBody("", true).ok());
  EXPECT_FALSE(ParseLimitsBody(R"({"max_item_bytes": true})", true).ok());
  EXPECT_FALSE(ParseLimitsBody(R"({"max_item_bytes": -1})", true).ok());
}

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest() : dir_(std::filesystem::temp_directory_path() / "admin-limits-test-XXXXXX") {
    std::string tmpl = dir_.string();
    dir_ = mkdtemp(tmpl.data());
    metadata_ = std::make_unique<metadata::LocalStore>(dir_.string());
    reg_ = std::make_unique<control::CacheRegistry>(*metadata_);
  }
  ~RegistryTest() override { std::filesystem::remove_all(dir_); }

  HttpRequest Req(std::string method, std::string body = {}) {
    HttpRequest r;
    r.method = std::move(method);
    r.body = std::move(body);
    return r;
  }

  std::filesystem::path dir_;
  std::unique_ptr<metadata::LocalStore> metadata_;
  std::unique_ptr<control::CacheRegistry> reg_;
};

TEST_F(RegistryTest, TenantAndCacheRoutes) {
  ASSERT_TRUE(reg_->CreateTenant("acme").ok());
  auto tid = reg_->FindTenant("acme")->id;
  ASSERT_TRUE(reg_->Create(tid, "s").ok());
  auto r = HandleTenantLimits(*reg_, Req("PATCH", R"({"requests_per_second": 500})"), "acme");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"overrides\":{\"requests_per_second\":500}"), std::string::npos);
  EXPECT_NE(r.body.find("\"requests_per_second\":\"tenant\""), std::string::npos);
  r = HandleCacheLimits(*reg_, Req("PUT", "max_item_bytes=1mib"), "acme", "s");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"max_item_bytes\":\"cache\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"requests_per_second\":\"tenant\""), std::string::npos);
  EXPECT_NE(r.body.find("\"max_ttl_seconds\":\"server\""), std::string::npos);
  EXPECT_NE(r.body.find("\"max_item_bytes\":\"1 MiB\""), std::string::npos);
  EXPECT_NE(r.body.find("\"max_item_bytes\":1048576"), std::string::npos);
  EXPECT_EQ(HandleCacheLimits(*reg_, Req("GET"), "acme", "nope").status, 404);
  EXPECT_EQ(HandleCacheLimits(*reg_, Req("GET"), "nobody", "s").status, 404);
  EXPECT_EQ(HandleTenantLimits(*reg_, Req("GET"), "nobody").status, 404);
  r = HandleCacheLimits(*reg_, Req("PATCH", R"({"tenant_memory_share_bytes": 5})"), "acme", "s");
  EXPECT_EQ(r.status, 400);
  r = HandleCacheLimits(*reg_, Req("PATCH", R"({"max_item_bytes": "default"})"), "acme", "s");
  EXPECT_NE(r.body.find("\"overrides\":{}"), std::string::npos) << r.body;
  EXPECT_EQ(HandleLimitsTable(*reg_, Req("GET")).status, 200);
  EXPECT_EQ(HandleLimitsTable(*reg_, Req("POST")).status, 405);
}

}  // namespace
}  // namespace cellar::server
