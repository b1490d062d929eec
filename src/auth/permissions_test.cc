#include "auth/permissions.h"

#include <gtest/gtest.h>

namespace cellar::auth {
namespace {

CacheGrant Cache(CacheRole role, std::optional<std::string> cache = std::nullopt,
                 std::optional<std::string> key = std::nullopt,
                 std::optional<std::string> prefix = std::nullopt) {
  return CacheGrant{role, std::move(cache), std::move(key), std::move(prefix)};
}

TEST(Permissions, RolesOnCaches) {
  Permissions ro{false, {Cache(CacheRole::kReadOnly)}, {}};
  EXPECT_TRUE(Allows(ro, "c", "k", Access::kRead));
  EXPECT_FALSE(Allows(ro, "c", "k", Access::kWrite));
  EXPECT_FALSE(Allows(ro, "c", "k", Access::kConditionalWrite));
  EXPECT_FALSE(Allows(ro, "c", "k", Access::kPublish));
  Permissions wo{false, {Cache(CacheRole::kWriteOnly)}, {}};
  EXPECT_FALSE(Allows(wo, "c", "k", Access::kRead));
  EXPECT_TRUE(Allows(wo, "c", "k", Access::kWrite));
  EXPECT_FALSE(Allows(wo, "c", "k", Access::kConditionalWrite));
  Permissions rw{false, {Cache(CacheRole::kReadWrite)}, {}};
  EXPECT_TRUE(Allows(rw, "c", "k", Access::kConditionalWrite));
  EXPECT_FALSE(Allows(rw, "c", "k", Access::kControl));
  Permissions su{true, {}, {}};
  EXPECT_TRUE(Allows(su, "c", "k", Access::kControl));
}

TEST(Permissions, CacheKeyAndPrefixSelectors) {
  // The SDK test's token: write-only on key "cow" and on prefix "pet".
  Permissions p{false,
                {Cache(CacheRole::kWriteOnly, "farm", "cow"),
                 Cache(CacheRole::kWriteOnly, "farm", std::nullopt, "pet")},
                {}};
  EXPECT_TRUE(Allows(p, "farm", "cow", Access::kWrite));
  EXPECT_TRUE(Allows(p, "farm", "petunia", Access::kWrite));
  EXPECT_FALSE(Allows(p, "farm", "cows", Access::kWrite));
  EXPECT_FALSE(Allows(p, "farm", "pe", Access::kWrite));
  EXPECT_FALSE(Allows(p, "farm", "cow", Access::kRead));
  EXPECT_FALSE(Allows(p, "zoo", "cow", Access::kWrite));
}

TEST(Permissions, TopicRoles) {
  Permissions p{false, {}, {TopicGrant{TopicRole::kSubscribeOnly, "c", std::nullopt, "chat."}}};
  EXPECT_TRUE(Allows(p, "c", "chat.1", Access::kSubscribe));
  EXPECT_FALSE(Allows(p, "c", "chat.1", Access::kPublish));
  EXPECT_FALSE(Allows(p, "c", "news", Access::kSubscribe));
  EXPECT_FALSE(Allows(p, "c", "chat.1", Access::kRead));
}

TEST(Permissions, ContainsDecidesWhatATokenMayMint) {
  Permissions su{true, {}, {}};
  Permissions all_rw{false, {Cache(CacheRole::kReadWrite)}, {}};
  Permissions one_ro{false, {Cache(CacheRole::kReadOnly, "a", std::nullopt, "x")}, {}};
  EXPECT_TRUE(Contains(su, all_rw));
  EXPECT_FALSE(Contains(all_rw, su));  // an AllDataReadWrite key cannot mint super-user
  EXPECT_TRUE(Contains(all_rw, one_ro));
  EXPECT_FALSE(Contains(one_ro, all_rw));
  Permissions prefix_x{false, {Cache(CacheRole::kReadWrite, "a", std::nullopt, "x")}, {}};
  EXPECT_TRUE(Contains(prefix_x, Permissions{false, {Cache(CacheRole::kReadOnly, "a", "xy")}, {}}));
  EXPECT_FALSE(Contains(prefix_x, Permissions{false, {Cache(CacheRole::kReadOnly, "a", "y")}, {}}));
  EXPECT_FALSE(Contains(prefix_x, Permissions{false, {Cache(CacheRole::kReadOnly, "b", "xy")}, {}}));
  EXPECT_FALSE(Contains(all_rw, Permissions{false, {}, {TopicGrant{TopicRole::kPublishOnly}}}));
}

TEST(Permissions, ValidateRefusesEmptyAndConflictingLists) {
  EXPECT_EQ(Validate(Permissions{}).code(), Code::kInvalidArgument);
  EXPECT_TRUE(Validate(Permissions{true, {}, {}}).ok());
  Permissions dup{false, {Cache(CacheRole::kReadOnly, "a"), Cache(CacheRole::kReadWrite, "a")}, {}};
  EXPECT_EQ(Validate(dup).code(), Code::kInvalidArgument);
  Permissions distinct_keys{
      false, {Cache(CacheRole::kWriteOnly, "a", "k1"), Cache(CacheRole::kWriteOnly, "a", "k2")}, {}};
  EXPECT_TRUE(Validate(distinct_keys).ok());
  Permissions no_role{false, {Cache(CacheRole::kNone)}, {}};
  EXPECT_EQ(Validate(no_role).code(), Code::kInvalidArgument);
}

TEST(Permissions, EmptySelectorsAreNotSelectors) {
  // An empty key would stand for the keyless calls; an empty prefix for every key.
  for (const Permissions& p :
       {Permissions{false, {Cache(CacheRole::kReadWrite, "a", "")}, {}},
        Permissions{false, {Cache(CacheRole::kReadOnly, "a", std::nullopt, "")}, {}},
        Permissions{false, {Cache(CacheRole::kReadOnly, "")}, {}},
        Permissions{false, {}, {TopicGrant{TopicRole::kPublishSubscribe, "a", "", std::nullopt}}},
        Permissions{false, {}, {TopicGrant{TopicRole::kSubscribeOnly, "a", std::nullopt, ""}}}}) {
    EXPECT_EQ(Validate(p).code(), Code::kInvalidArgument) << ToJson(p);
    EXPECT_FALSE(FromJson(ToJson(p)).ok()) << "a token carrying it is refused: " << ToJson(p);
  }
}

TEST(Permissions, CacheWideCallsNeedAGrantOnEveryItem) {
  Permissions key{false, {Cache(CacheRole::kReadWrite, "a", "k")}, {}};
  Permissions prefix{false, {Cache(CacheRole::kReadWrite, "a", std::nullopt, "k")}, {}};
  Permissions ro_all{false, {Cache(CacheRole::kReadOnly, "a")}, {}};
  Permissions rw_any{false, {Cache(CacheRole::kReadWrite)}, {}};
  for (const Permissions* p : {&key, &prefix}) {
    EXPECT_FALSE(AllowsWholeCache(*p, "a", Access::kRead));
    EXPECT_FALSE(AllowsWholeCache(*p, "a", Access::kWrite));
  }
  EXPECT_TRUE(AllowsWholeCache(ro_all, "a", Access::kRead));
  EXPECT_FALSE(AllowsWholeCache(ro_all, "a", Access::kWrite));
  EXPECT_FALSE(AllowsWholeCache(ro_all, "b", Access::kRead));
  EXPECT_TRUE(AllowsWholeCache(rw_any, "b", Access::kConditionalWrite));
  EXPECT_FALSE(AllowsWholeCache(rw_any, "b", Access::kControl));
  // Several key grants together still do not make a whole-cache grant.
  Permissions two{false,
                  {Cache(CacheRole::kReadWrite, "a", "k"),
                   Cache(CacheRole::kReadWrite, "a", std::nullopt, "x")},
                  {}};
  EXPECT_FALSE(AllowsWholeCache(two, "a", Access::kRead));
  EXPECT_TRUE(AllowsWholeCache(Permissions{true, {}, {}}, "a", Access::kWrite));
}

TEST(Permissions, JsonRoundTripAndBadJson) {
  Permissions p{false,
                {Cache(CacheRole::kWriteOnly, "farm", std::string("c\0w", 3)),
                 Cache(CacheRole::kReadOnly, std::nullopt, std::nullopt, "pet")},
                {TopicGrant{TopicRole::kPublishOnly, "farm", "news", std::nullopt}}};
  auto back = FromJson(ToJson(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(ToJson(*back), ToJson(p));
  EXPECT_EQ(back->caches[0].key, std::string("c\0w", 3));
  EXPECT_TRUE(FromJson(ToJson(Permissions{true, {}, {}}))->super_user);
  for (const char* bad : {"", "[]", "{\"su\":false}", "{\"c\":{}}", "{\"c\":[{\"r\":\"xx\"}]}",
                          "{\"c\":[{\"r\":\"rw\",\"k\":\"***\"}]}", "{}", "{\"c\":[1]}",
                          "{\"c\":[{\"r\":\"none\"}]}", "{\"su\":true,\"su\":true}"}) {
    EXPECT_FALSE(FromJson(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace cellar::auth
