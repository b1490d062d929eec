// Engine collection operations: type checks both ways, the collection TTL rules, emptied
// collections disappearing, memory accounting, eviction of collections, and a randomized
// sequence that checks the accounting invariants after every call.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "storage/engine/engine.h"
#include "storage/engine/engine_test_util.h"

namespace cellar::storage {
namespace {

struct Env {
  explicit Env(uint64_t limit = 0) : e(&clock, limit, 1) { e.CreateCache(1); }

  api::Reply Run(api::Op op, std::string_view key, std::vector<std::string> args = {},
                 uint32_t flags = 0, int64_t integer = 0, int64_t integer2 = 0) {
    held.push_back(std::move(args));
    auto& a = held.back();
    views.emplace_back(a.begin(), a.end());
    api::Request r;
    r.op = op;
    r.cache_id = 1;
    r.key = key;
    r.flags = flags;
    testing::SetNumbers(r, integer, integer2);
    r.args = views.back();
    return Exec(r);
  }
  api::Reply Exec(const api::Request& r) {
    api::Reply reply;
    e.Execute(r, reply);
    ExpectAccounting();
    return reply;
  }
  void ExpectAccounting() {
    const CacheCounters* cc = e.Cache(1);
    ASSERT_NE(cc, nullptr);
    EXPECT_EQ(cc->items, e.size());
    EXPECT_EQ(cc->bytes + e.Counters().index_bytes, e.used_bytes());
  }
  std::string Type(std::string_view key) { return Run(api::Op::kType, key).value; }

  ManualClock clock;
  Engine e;
  std::vector<std::vector<std::string>> held;
  std::vector<std::vector<std::string_view>> views;
};

TEST(EngineCollections, TypesAndWrongType) {
  Env env;
  EXPECT_EQ(env.Run(api::Op::kHSet, "h", {"f", "v"}).integer, 1);
  EXPECT_EQ(env.Run(api::Op::kRPush, "l", {"a", "b"}).integer, 2);
  EXPECT_EQ(env.Run(api::Op::kSAdd, "s", {"x"}).integer, 1);
  std::vector<double> scores = {1.5};
  std::vector<std::string_view> members = {"m"};
  api::Request z;
  z.op = api::Op::kZAdd;
  z.cache_id = 1;
  z.key = "z";
  z.args = members;
  z.scores = scores;
  EXPECT_EQ(env.Exec(z).integer, 1);
  EXPECT_EQ(env.Type("h"), "hash");
  EXPECT_EQ(env.Type("l"), "list");
  EXPECT_EQ(env.Type("s"), "set");
  EXPECT_EQ(env.Type("z"), "zset");
  EXPECT_EQ(env.Type("nope"), "none");
  // Collection ops on other types, and string ops on collections.
  EXPECT_EQ(env.Run(api::Op::kLPush, "h", {"x"}).status.code(), Code::kWrongType);
  EXPECT_EQ(env.Run(api::Op::kHGet, "l", {"f"}).status.code(), Code::kWrongType);
  EXPECT_EQ(env.Run(api::Op::kGet, "s").status.code(), Code::kWrongType);
  EXPECT_EQ(env.Run(api::Op::kIncrBy, "z", {}, 0, 1).status.code(), Code::kWrongType);
  EXPECT_EQ(env.Run(api::Op::kAppend, "h").status.code(), Code::kWrongType);
  EXPECT_EQ(env.e.Get(1, "h").status().code(), Code::kWrongType);
  // The data is untouched, and SET replaces a collection.
  auto got = env.Run(api::Op::kHGet, "h", {"f"});
  ASSERT_TRUE(got.found);
  EXPECT_EQ(got.items[0], "v");
  auto set = env.e.Set(1, "h", "now a string", 0, 0);
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->stored);
  EXPECT_EQ(env.Type("h"), "string");
  env.ExpectAccounting();
  EXPECT_EQ(env.Run(api::Op::kDelete, "l").integer, 1);
  EXPECT_EQ(env.Type("l"), "none");
}

TEST(EngineCollections, SRandMemberRepeatsAreBoundedAndDrawnFromTheSet) {
  Env env;
  std::vector<std::string> members;
  for (int i = 0; i < 100; ++i) members.push_back("m" + std::to_string(i));
  env.Run(api::Op::kSAdd, "s", members);
  const std::set<std::string> all(members.begin(), members.end());
  for (int64_t count : {int64_t{-3}, int64_t{-5000}, -(int64_t{1} << 20)}) {  // picks from the set; from a copy
    api::Reply r = env.Run(api::Op::kSRandMember, "s", {}, 0, count);
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    ASSERT_EQ(r.items.size(), static_cast<size_t>(-count));
    std::set<std::string> seen;
    for (size_t i = 0; i < r.items.size(); ++i) seen.emplace(r.items[i]);
    for (const std::string& m : seen) EXPECT_TRUE(all.contains(m)) << m;
    if (count <= -5000) {
      EXPECT_GT(seen.size(), 90u);  // drawn across the set
    }
  }
  api::Reply over = env.Run(api::Op::kSRandMember, "s", {}, 0, -(int64_t{1} << 20) - 1);
  EXPECT_EQ(over.status.code(), Code::kInvalidArgument);
  EXPECT_NE(over.status.message().find("out of range"), std::string::npos);
}

TEST(EngineCollections, EmptiedCollectionsDisappear) {
  Env env;
  env.Run(api::Op::kHSet, "h", {"a", "1", "b", "2"});
  auto r = env.Run(api::Op::kHDel, "h", {"a", "b", "c"});
  EXPECT_EQ(r.integer, 2);
  EXPECT_EQ(r.length, 0);
  EXPECT_EQ(env.Type("h"), "none");
  env.Run(api::Op::kRPush, "l", {"a"});
  r = env.Run(api::Op::kLPop, "l", {}, 0, -1);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(env.Type("l"), "none");
  env.Run(api::Op::kSAdd, "s", {"a"});
  env.Run(api::Op::kSRem, "s", {"a"});
  EXPECT_EQ(env.Type("s"), "none");
  // An op that creates nothing leaves nothing behind (HINCRBY refused, LPUSHX on missing).
  env.Run(api::Op::kSet, "str");
  EXPECT_EQ(env.Run(api::Op::kLPush, "lx", {"a"}, api::kXx).integer, 0);
  EXPECT_EQ(env.Type("lx"), "none");
  EXPECT_EQ(env.e.size(), 1u);  // only "str"
}

TEST(EngineCollections, TtlRulesForWrites) {
  Env env;
  const int64_t now = env.clock.NowMillis();
  api::Request r;
  std::vector<std::string_view> pair = {"f", "v"};
  r.op = api::Op::kHSet;
  r.cache_id = 1;
  r.key = "h";
  r.args = pair;
  r.flags = api::kSetTtl | api::kRefreshTtl;
  r.expire_at = now + 10'000;
  env.Exec(r);  // created: takes the TTL
  EXPECT_EQ(env.e.TtlMillis(1, "h"), 10'000);
  r.flags = api::kSetTtl;  // no refresh: keeps it
  r.expire_at = now + 50'000;
  env.Exec(r);
  EXPECT_EQ(env.e.TtlMillis(1, "h"), 10'000);
  r.flags = api::kSetTtl | api::kRefreshTtl;  // refresh: takes the new one
  env.Exec(r);
  EXPECT_EQ(env.e.TtlMillis(1, "h"), 50'000);
  r.flags = 0;  // RESP writes never touch the TTL
  env.Exec(r);
  EXPECT_EQ(env.e.TtlMillis(1, "h"), 50'000);
  env.clock.Advance(50'001);
  EXPECT_EQ(env.Type("h"), "none");
  EXPECT_EQ(env.e.size(), 0u);
}

TEST(EngineCollections, ListIndicesRedisAndSlice) {
  Env env;
  env.Run(api::Op::kRPush, "l", {"a", "b", "c", "d", "e"});
  auto range = [&](int64_t a, int64_t b, uint32_t flags = 0) {
    auto r = env.Run(api::Op::kLRange, "l", {}, flags, a, b);
    std::string out;
    for (std::string_view s : r.items) out += s;
    return out;
  };
  EXPECT_EQ(range(0, -1), "abcde");
  EXPECT_EQ(range(1, 2), "bc");
  EXPECT_EQ(range(-2, 100), "de");
  EXPECT_EQ(range(3, 1), "");
  EXPECT_EQ(range(1, 3, api::kSlice), "bc");
  EXPECT_EQ(range(-3, -1, api::kSlice), "cd");
  EXPECT_EQ(range(0, 0, api::kSlice | api::kSliceOpenEnd), "abcde");
  EXPECT_EQ(range(0, -4, api::kSlice | api::kSliceOpenStart), "a");
  EXPECT_EQ(range(4, 2, api::kSlice), "");
  // Concatenate front keeps order; push front reverses; truncation trims the other end.
  env.Run(api::Op::kLPush, "l", {"x", "y"}, api::kKeepOrder, 0, 6);
  EXPECT_EQ(range(0, -1), "xyabcd");
  env.Run(api::Op::kLPush, "l", {"1", "2"});
  EXPECT_EQ(range(0, -1), "21xyabcd");
  env.Run(api::Op::kRPush, "l", {"z"}, 0, 0, 3);
  EXPECT_EQ(range(0, -1), "cdz");
}

TEST(EngineCollections, EvictionTakesWholeCollectionsAndKeepsAccounting) {
  Env env(4 << 20);
  std::vector<std::string> keys;
  for (int k = 0; k < 400; ++k) {
    keys.push_back("h" + std::to_string(k));
    std::vector<std::string> args;
    for (int f = 0; f < 200; ++f) {
      args.push_back("field" + std::to_string(f));
      args.push_back(std::string(40, 'v'));
    }
    auto r = env.Run(api::Op::kHSet, keys.back(), args);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  }
  EXPECT_GT(env.e.Counters().evictions, 0u);
  EXPECT_LE(env.e.used_bytes(), (4u << 20) + (64u << 10));  // at most one call's overshoot
  env.ExpectAccounting();
}

TEST(EngineCollections, RandomOpsKeepInvariants) {
  Env env(2 << 20);
  std::mt19937_64 rng(3);
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 20000; ++i) {
    const std::string& k = keys[rng() % keys.size()];
    std::vector<std::string> args;
    for (int n = 0; n < 1 + static_cast<int>(rng() % 6); ++n) {
      args.push_back(std::to_string(rng() % 300) + std::string(rng() % 70, 'x'));
    }
    switch (rng() % 12) {
      case 0: args.push_back("v"); env.Run(api::Op::kHSet, k, {args[0], args.back()}); break;
      case 1: env.Run(api::Op::kHDel, k, args); break;
      case 2: env.Run(api::Op::kRPush, k, args); break;
      case 3: env.Run(api::Op::kLPop, k, {}, 0, static_cast<int64_t>(rng() % 4)); break;
      case 4: env.Run(api::Op::kSAdd, k, args); break;
      case 5: env.Run(api::Op::kSPop, k, {}, 0, static_cast<int64_t>(rng() % 3)); break;
      case 6: env.Run(api::Op::kLTrim, k, {}, 0, 1, static_cast<int64_t>(rng() % 5)); break;
      case 7: env.Run(api::Op::kDelete, k); break;
      case 8: env.Run(api::Op::kSet, k); break;
      case 9: env.Run(api::Op::kLRem, k, {}, 0, 0); break;
      case 10: {
        std::vector<double> sc(args.size());
        for (auto& s : sc) s = static_cast<double>(rng() % 50);
        std::vector<std::string_view> v(args.begin(), args.end());
        api::Request r;
        r.op = api::Op::kZAdd;
        r.cache_id = 1;
        r.key = k;
        r.args = v;
        r.scores = sc;
        env.Exec(r);
        break;
      }
      case 11: env.Run(api::Op::kZPopMin, k, {}, 0, static_cast<int64_t>(rng() % 3)); break;
    }
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace cellar::storage
