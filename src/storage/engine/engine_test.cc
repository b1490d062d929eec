#include "storage/engine/engine.h"

#include "common/hash.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace cellar::storage {
namespace {

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
constexpr int64_t kMinInt64 = std::numeric_limits<int64_t>::min();

// Engine plus a hand-moved clock; most tests use cache 1 (and 2, 3 for isolation).
struct Env {
  explicit Env(uint64_t limit = 0, uint64_t seed = 1) : e(&clock, limit, seed) {
    e.CreateCache(1);
    e.CreateCache(2);
    e.CreateCache(3);
  }
  int64_t Now() const { return clock.NowMillis(); }
  bool Set(uint32_t cache, std::string_view k, std::string_view v, uint32_t flags = 0,
           int64_t expire_at = 0, std::optional<std::string>* old = nullptr) {
    auto r = e.Set(cache, k, v, expire_at, flags | (old != nullptr ? uint32_t{api::kGetOld} : 0));
    const Status& st = r.status();
    const bool stored = r.ok() && r->stored;
    if (old != nullptr) *old = r.ok() ? r->old_value : std::nullopt;
    EXPECT_TRUE(st.ok()) << st.ToString();
    return stored;
  }
  std::optional<std::string> Get(uint32_t cache, std::string_view k) {
    auto r = e.Get(cache, k);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->has_value()) return std::nullopt;
    return std::string(**r);
  }
  api::Reply Exec(api::Request req) {
    api::Reply reply;
    e.Execute(req, reply);
    return reply;
  }
  // The documented invariants: per-cache items/bytes sum to the shard totals.
  void ExpectAccountingConsistent() {
    EngineCounters c = e.Counters();
    uint64_t items = 0;
    uint64_t bytes = 0;
    for (uint32_t id : {1u, 2u, 3u}) {
      if (const CacheCounters* cc = e.Cache(id)) {
        items += cc->items;
        bytes += cc->bytes;
      }
    }
    EXPECT_EQ(items, e.size());
    EXPECT_EQ(c.items, e.size());
    EXPECT_EQ(bytes + c.index_bytes, e.used_bytes());
    EXPECT_EQ(c.used_bytes, e.used_bytes());
  }

  ManualClock clock;
  Engine e;
};

api::Request Req(api::Op op, uint32_t cache, std::string_view key = {}) {
  api::Request r;
  r.op = op;
  r.cache_id = cache;
  r.key = key;
  return r;
}

TEST(Engine, SetGetWithTtlOnInjectedClock) {
  ManualClock clock;
  Engine e(&clock, 0);
  e.CreateCache(1);
  auto set = e.Set(1, "k", "v", clock.NowMillis() + 1000, api::kSetTtl);
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->stored);
  EXPECT_EQ(*e.Get(1, "k"), "v");
  EXPECT_FALSE(*e.Get(2, "k"));
  clock.Advance(999);
  EXPECT_EQ(e.TtlMillis(1, "k"), 1);
  clock.Advance(1);
  EXPECT_FALSE(*e.Get(1, "k"));
  EXPECT_EQ(e.Cache(1)->items, 0u);
}

// ---- SET conditions ------------------------------------------------------------------------

TEST(EngineSet, NxStoresOnlyWhenAbsent) {
  Env env;
  EXPECT_TRUE(env.Set(1, "k", "a", api::kNx));
  EXPECT_FALSE(env.Set(1, "k", "b", api::kNx));
  EXPECT_EQ(env.Get(1, "k"), "a");
  // The same key in another cache is another key.
  EXPECT_TRUE(env.Set(2, "k", "c", api::kNx));
  EXPECT_EQ(env.Get(1, "k"), "a");
}

TEST(EngineSet, XxStoresOnlyWhenPresent) {
  Env env;
  EXPECT_FALSE(env.Set(1, "k", "a", api::kXx));
  EXPECT_FALSE(env.Get(1, "k"));
  EXPECT_EQ(env.e.size(), 0u);
  ASSERT_TRUE(env.Set(1, "k", "a"));
  EXPECT_TRUE(env.Set(1, "k", "b", api::kXx));
  EXPECT_EQ(env.Get(1, "k"), "b");
}

TEST(EngineSet, AnExpiredKeyCountsAsAbsentForNxAndXx) {
  Env env;
  ASSERT_TRUE(env.Set(1, "k", "a", api::kSetTtl, env.Now() + 10));
  env.clock.Advance(10);
  EXPECT_FALSE(env.Set(1, "k", "b", api::kXx));
  EXPECT_TRUE(env.Set(1, "k", "c", api::kNx));
  EXPECT_EQ(env.Get(1, "k"), "c");
  EXPECT_EQ(env.e.TtlMillis(1, "k"), -1);
}

TEST(EngineSet, PlainSetClearsTheTtlAndKeepTtlKeepsIt) {
  Env env;
  ASSERT_TRUE(env.Set(1, "k", "a", api::kSetTtl, env.Now() + 5000));
  ASSERT_TRUE(env.Set(1, "k", "b", api::kKeepTtl));
  EXPECT_EQ(env.e.TtlMillis(1, "k"), 5000);
  EXPECT_EQ(env.Get(1, "k"), "b");
  // KEEPTTL with a value that needs a bigger block (the item is reallocated).
  ASSERT_TRUE(env.Set(1, "k", std::string(5000, 'x'), api::kKeepTtl));
  EXPECT_EQ(env.e.TtlMillis(1, "k"), 5000);
  ASSERT_TRUE(env.Set(1, "k", "c"));
  EXPECT_EQ(env.e.TtlMillis(1, "k"), -1);
  // KEEPTTL on a new key: no TTL.
  ASSERT_TRUE(env.Set(1, "n", "v", api::kKeepTtl));
  EXPECT_EQ(env.e.TtlMillis(1, "n"), -1);
  // kSetTtl with expire_at 0 means no TTL.
  ASSERT_TRUE(env.Set(1, "z", "v", api::kSetTtl, 0));
  EXPECT_EQ(env.e.TtlMillis(1, "z"), -1);
}

TEST(EngineSet, GetReturnsTheOldValue) {
  Env env;
  std::optional<std::string> old;
  EXPECT_TRUE(env.Set(1, "k", "first", 0, 0, &old));
  EXPECT_FALSE(old.has_value());
  EXPECT_TRUE(env.Set(1, "k", "second", 0, 0, &old));
  EXPECT_EQ(old, "first");
  // NX + GET on an existing key: not stored, old value still returned (Redis 7).
  old.reset();
  EXPECT_FALSE(env.Set(1, "k", "third", api::kNx, 0, &old));
  EXPECT_EQ(old, "second");
  EXPECT_EQ(env.Get(1, "k"), "second");
  // XX + GET on a missing key: nothing.
  old.reset();
  EXPECT_FALSE(env.Set(1, "missing", "x", api::kXx, 0, &old));
  EXPECT_FALSE(old.has_value());
  // Binary values come back byte for byte.
  const std::string bin("\0\r\n\xff", 4);
  ASSERT_TRUE(env.Set(1, "b", bin));
  EXPECT_TRUE(env.Set(1, "b", "y", 0, 0, &old));
  EXPECT_EQ(old, bin);
}

TEST(EngineSet, AbsoluteExpiryInThePastStoresAndDeletes) {
  Env env;
  ASSERT_TRUE(env.Set(1, "k", "old"));
  ASSERT_EQ(env.e.Cache(1)->items, 1u);
  std::optional<std::string> old;
  EXPECT_TRUE(env.Set(1, "k", "new", api::kSetTtl, env.Now() - 1, &old));
  EXPECT_EQ(old, "old");
  EXPECT_FALSE(env.Get(1, "k"));
  EXPECT_EQ(env.e.Cache(1)->items, 0u);
  EXPECT_EQ(env.e.Cache(1)->bytes, 0u);
  // Exactly "now" is already past, and a new key is never created.
  EXPECT_TRUE(env.Set(1, "n", "v", api::kSetTtl, env.Now()));
  EXPECT_EQ(env.e.size(), 0u);
  env.ExpectAccountingConsistent();
}

// ---- TTLs ----------------------------------------------------------------------------------

TEST(EngineTtl, LazyExpiryOnEveryKindOfAccess) {
  Env env;
  const int64_t at = env.Now() + 100;
  for (std::string k : {"get", "ttl", "exists", "delete", "incr", "append", "strlen"}) {
    ASSERT_TRUE(env.Set(1, k, "7", api::kSetTtl, at));
  }
  EXPECT_EQ(env.e.TtlMillis(1, "ttl"), 100);
  env.clock.Advance(99);
  EXPECT_EQ(env.Get(1, "get"), "7");
  env.clock.Advance(1);
  EXPECT_EQ(env.e.size(), 7u);  // nothing removed until touched
  EXPECT_FALSE(env.Get(1, "get"));
  EXPECT_EQ(env.e.TtlMillis(1, "ttl"), -2);
  EXPECT_EQ(env.Exec(Req(api::Op::kExists, 1, "exists")).integer, 0);
  EXPECT_FALSE(env.e.Delete(1, "delete"));
  auto incr = env.e.IncrBy(1, "incr", 1);
  ASSERT_TRUE(incr.ok());
  EXPECT_EQ(*incr, 1);                       // counts from 0 again
  EXPECT_EQ(env.e.TtlMillis(1, "incr"), -1);  // and without the dead TTL
  auto app = env.e.Append(1, "append", "x");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(*app, 1);
  EXPECT_EQ(env.Exec(Req(api::Op::kStrlen, 1, "strlen")).integer, 0);
  EXPECT_EQ(env.e.size(), 2u);
  EXPECT_EQ(env.e.Counters().expirations, 7u);
  EXPECT_EQ(env.e.Cache(1)->expirations, 7u);
  env.ExpectAccountingConsistent();
}

TEST(EngineTtl, ActiveExpireRemovesOnlyExpiredItemsWithinItsBudget) {
  Env env;
  for (int i = 0; i < 3000; ++i) {
    const std::string k = "k" + std::to_string(i);
    const uint32_t cache = 1 + i % 2;
    if (i % 3 == 0) {
      ASSERT_TRUE(env.Set(cache, k, "v"));
    } else if (i % 3 == 1) {
      ASSERT_TRUE(env.Set(cache, k, "v", api::kSetTtl, env.Now() + 100));
    } else {
      ASSERT_TRUE(env.Set(cache, k, "v", api::kSetTtl, env.Now() + 100000));
    }
  }
  EXPECT_EQ(env.e.ActiveExpire(100000), 0u);  // nothing is due yet
  env.clock.Advance(100);
  const size_t first = env.e.ActiveExpire(10);
  EXPECT_LE(first, 10u);
  size_t removed = first;
  // Enough budget for several passes over the whole table.
  for (int pass = 0; pass < 8; ++pass) removed += env.e.ActiveExpire(env.e.size() + 8192);
  EXPECT_EQ(removed, 1000u);
  EXPECT_EQ(env.e.size(), 2000u);
  EXPECT_EQ(env.e.Counters().expirations, 1000u);
  EXPECT_EQ(env.e.Cache(1)->expirations + env.e.Cache(2)->expirations, 1000u);
  for (int i = 0; i < 3000; ++i) {
    const std::string k = "k" + std::to_string(i);
    EXPECT_EQ(env.Get(1 + i % 2, k).has_value(), i % 3 != 1) << k;
  }
  env.ExpectAccountingConsistent();
  env.clock.Advance(100000);
  for (int pass = 0; pass < 8; ++pass) env.e.ActiveExpire(env.e.size() + 8192);
  EXPECT_EQ(env.e.size(), 1000u);
  env.ExpectAccountingConsistent();
}

TEST(EngineTtl, ActiveExpireInSmallStepsEventuallyCoversTheWholeTable) {
  Env env;
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(env.Set(1, "t" + std::to_string(i), "v", api::kSetTtl, env.Now() + 1));
  }
  env.clock.Advance(1);
  size_t removed = 0;
  for (int call = 0; call < 10000 && env.e.size() > 0; ++call) {
    const size_t n = env.e.ActiveExpire(7);
    EXPECT_LE(n, 7u);
    removed += n;
  }
  EXPECT_EQ(removed, 500u);
  EXPECT_EQ(env.e.size(), 0u);
  EXPECT_EQ(env.e.Cache(1)->bytes, 0u);
}

// ---- EXPIRE flags, as Redis 7 defines them -------------------------------------------------

TEST(EngineExpire, FlagSemantics) {
  Env env;
  const int64_t now = env.Now();
  auto fresh = [&](std::string_view k, int64_t ttl_at) {
    ASSERT_TRUE(env.Set(1, k, "v", ttl_at ? uint32_t{api::kSetTtl} : 0u, ttl_at));
  };
  // Missing key: always 0.
  EXPECT_EQ(env.e.Expire(1, "missing", now + 10, 0).changed, 0);
  EXPECT_EQ(env.e.Expire(1, "missing", now + 10, api::kLt).changed, 0);

  // No flags: sets.
  fresh("a", 0);
  EXPECT_EQ(env.e.Expire(1, "a", now + 10, 0).changed, 1);
  EXPECT_EQ(env.e.TtlMillis(1, "a"), 10);

  // NX: only when the key has no TTL.
  fresh("nx1", 0);
  EXPECT_EQ(env.e.Expire(1, "nx1", now + 10, api::kNx).changed, 1);
  EXPECT_EQ(env.e.Expire(1, "nx1", now + 20, api::kNx).changed, 0);
  EXPECT_EQ(env.e.TtlMillis(1, "nx1"), 10);

  // XX: only when the key has a TTL.
  fresh("xx1", 0);
  EXPECT_EQ(env.e.Expire(1, "xx1", now + 10, api::kXx).changed, 0);
  EXPECT_EQ(env.e.TtlMillis(1, "xx1"), -1);
  fresh("xx2", now + 50);
  EXPECT_EQ(env.e.Expire(1, "xx2", now + 10, api::kXx).changed, 1);
  EXPECT_EQ(env.e.TtlMillis(1, "xx2"), 10);

  // GT: only when later; no TTL counts as infinite, so GT never applies to it.
  fresh("gt0", 0);
  EXPECT_EQ(env.e.Expire(1, "gt0", now + 10, api::kGt).changed, 0);
  EXPECT_EQ(env.e.TtlMillis(1, "gt0"), -1);
  fresh("gt1", now + 50);
  EXPECT_EQ(env.e.Expire(1, "gt1", now + 40, api::kGt).changed, 0);
  EXPECT_EQ(env.e.Expire(1, "gt1", now + 50, api::kGt).changed, 0);  // equal is not greater
  EXPECT_EQ(env.e.Expire(1, "gt1", now + 60, api::kGt).changed, 1);
  EXPECT_EQ(env.e.TtlMillis(1, "gt1"), 60);

  // LT: only when earlier; no TTL counts as infinite, so LT always applies to it.
  fresh("lt0", 0);
  EXPECT_EQ(env.e.Expire(1, "lt0", now + 1000000, api::kLt).changed, 1);
  EXPECT_EQ(env.e.TtlMillis(1, "lt0"), 1000000);
  fresh("lt1", now + 50);
  EXPECT_EQ(env.e.Expire(1, "lt1", now + 60, api::kLt).changed, 0);
  EXPECT_EQ(env.e.Expire(1, "lt1", now + 50, api::kLt).changed, 0);  // equal is not less
  EXPECT_EQ(env.e.Expire(1, "lt1", now + 40, api::kLt).changed, 1);
  EXPECT_EQ(env.e.TtlMillis(1, "lt1"), 40);

  // XX + GT and XX + LT (Redis allows XX with GT/LT).
  fresh("xgt", 0);
  EXPECT_EQ(env.e.Expire(1, "xgt", now + 10, api::kXx | api::kLt).changed, 0);
  fresh("xgt2", now + 10);
  EXPECT_EQ(env.e.Expire(1, "xgt2", now + 20, api::kXx | api::kGt).changed, 1);
  EXPECT_EQ(env.e.TtlMillis(1, "xgt2"), 20);
}

TEST(EngineExpire, APastTimeDeletesButOnlyWhenTheFlagsAllowIt) {
  Env env;
  const int64_t now = env.Now();
  ASSERT_TRUE(env.Set(1, "p", "v"));
  EXPECT_EQ(env.e.Expire(1, "p", now - 1, 0).changed, 1);
  EXPECT_FALSE(env.Get(1, "p"));
  EXPECT_EQ(env.e.Cache(1)->items, 0u);
  // GT with a past time on a key with a future TTL: refused, key kept.
  ASSERT_TRUE(env.Set(1, "g", "v", api::kSetTtl, now + 100));
  EXPECT_EQ(env.e.Expire(1, "g", now - 1, api::kGt).changed, 0);
  EXPECT_EQ(env.Get(1, "g"), "v");
  // LT with a past time: applies, deletes.
  EXPECT_EQ(env.e.Expire(1, "g", now - 1, api::kLt).changed, 1);
  EXPECT_FALSE(env.Get(1, "g"));
  // NX on a key with a TTL and a past time: refused.
  ASSERT_TRUE(env.Set(1, "n", "v", api::kSetTtl, now + 100));
  EXPECT_EQ(env.e.Expire(1, "n", now, api::kNx).changed, 0);
  EXPECT_EQ(env.Get(1, "n"), "v");
  env.ExpectAccountingConsistent();
}

// ---- INCRBY, INCRBYFLOAT, APPEND, SETRANGE ---------------------------------------------------

TEST(EngineIncr, IncrByCountsAndRejectsNonIntegers) {
  Env env;
  auto r = env.e.IncrBy(1, "c", 5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5);
  r = env.e.IncrBy(1, "c", -7);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, -2);
  EXPECT_EQ(env.Get(1, "c"), "-2");
  const std::vector<std::string> bads = {"abc", "1.5", " 1", "1 ", "+1", "01", "",
                                         "99999999999999999999", std::string("1\0", 2)};
  for (const std::string& bad : bads) {
    ASSERT_TRUE(env.Set(1, "bad", bad));
    auto b = env.e.IncrBy(1, "bad", 1);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), Code::kNotInteger) << bad;
    EXPECT_EQ(env.Get(1, "bad"), bad);
  }
  ASSERT_TRUE(env.Set(1, "big", std::to_string(kMaxInt64)));
  auto o = env.e.IncrBy(1, "big", 1);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), Code::kOverflow);
  EXPECT_EQ(env.Get(1, "big"), std::to_string(kMaxInt64));
  ASSERT_TRUE(env.Set(1, "small", std::to_string(kMinInt64)));
  o = env.e.IncrBy(1, "small", -1);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), Code::kOverflow);
  o = env.e.IncrBy(1, "small", kMaxInt64);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(*o, -1);
  o = env.e.IncrBy(1, "fresh", kMinInt64);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(*o, kMinInt64);
}

TEST(EngineIncr, IncrByKeepsTheTtl) {
  Env env;
  ASSERT_TRUE(env.Set(1, "c", "10", api::kSetTtl, env.Now() + 3000));
  env.clock.Advance(1000);
  auto r = env.e.IncrBy(1, "c", 1000000000000);  // a longer value: the block is reallocated
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1000000000010);
  EXPECT_EQ(env.e.TtlMillis(1, "c"), 2000);
  env.clock.Advance(2000);
  EXPECT_FALSE(env.Get(1, "c"));
}

// Momento's Increment: the TTL given applies to the counter whether it existed or not.
TEST(EngineIncr, TheGivenTtlAppliesToNewAndExistingCounters) {
  Env env;
  auto r = env.e.IncrBy(1, "n", 5, env.Now() + 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5);
  EXPECT_EQ(env.e.TtlMillis(1, "n"), 1000);
  ASSERT_TRUE(env.Set(1, "old", "1", api::kSetTtl, env.Now() + 9000));
  ASSERT_TRUE(env.e.IncrBy(1, "old", 1, env.Now() + 1000).ok());
  EXPECT_EQ(env.e.TtlMillis(1, "old"), 1000);
  ASSERT_TRUE(env.Set(1, "forever", "1"));
  ASSERT_TRUE(env.e.IncrBy(1, "forever", 1, env.Now() + 2000).ok());
  EXPECT_EQ(env.e.TtlMillis(1, "forever"), 2000);
  env.clock.Advance(1000);
  EXPECT_FALSE(env.Get(1, "n"));
  EXPECT_FALSE(env.Get(1, "old"));
  EXPECT_EQ(env.Get(1, "forever"), "2");
}

// Without a TTL (RESP INCR) an existing counter keeps its own and a new one gets none.
TEST(EngineIncr, NoTtlKeepsTheCountersOwn) {
  Env env;
  ASSERT_TRUE(env.Set(1, "old", "1", api::kSetTtl, env.Now() + 9000));
  ASSERT_TRUE(env.e.IncrBy(1, "old", 1).ok());
  EXPECT_EQ(env.e.TtlMillis(1, "old"), 9000);
  ASSERT_TRUE(env.e.IncrBy(1, "new", 1).ok());
  EXPECT_EQ(env.e.TtlMillis(1, "new"), -1);
}

TEST(EngineSetIf, EveryConditionBothWays) {
  using C = api::SetIfCondition;
  struct Case {
    C cond;
    bool present;       // whether "k" holds "cur" before the call
    std::string check;  // compared value (or hash of it for the hash forms)
    bool want;
  };
  const std::string h_cur = ValueHash("cur");
  const std::string h_other = ValueHash("other");
  const std::vector<Case> cases = {
      {C::kUnconditional, false, "", true},      {C::kUnconditional, true, "", true},
      {C::kPresent, true, "", true},             {C::kPresent, false, "", false},
      {C::kAbsent, false, "", true},             {C::kAbsent, true, "", false},
      {C::kEqual, true, "cur", true},            {C::kEqual, true, "other", false},
      {C::kEqual, false, "cur", false},          {C::kNotEqual, true, "other", true},
      {C::kNotEqual, true, "cur", false},        {C::kNotEqual, false, "cur", true},
      {C::kPresentAndNotEqual, true, "other", true},
      {C::kPresentAndNotEqual, true, "cur", false},
      {C::kPresentAndNotEqual, false, "other", false},
      {C::kAbsentOrEqual, false, "x", true},     {C::kAbsentOrEqual, true, "cur", true},
      {C::kAbsentOrEqual, true, "other", false},
      {C::kPresentAndHashEqual, true, h_cur, true},
      {C::kPresentAndHashEqual, true, h_other, false},
      {C::kPresentAndHashEqual, false, h_cur, false},
      {C::kPresentAndNotHashEqual, true, h_other, true},
      {C::kPresentAndNotHashEqual, true, h_cur, false},
      {C::kPresentAndNotHashEqual, false, h_other, false},
      {C::kAbsentOrHashEqual, false, h_cur, true},
      {C::kAbsentOrHashEqual, true, h_cur, true},
      {C::kAbsentOrHashEqual, true, h_other, false},
      {C::kAbsentOrNotHashEqual, false, h_cur, true},
      {C::kAbsentOrNotHashEqual, true, h_other, true},
      {C::kAbsentOrNotHashEqual, true, h_cur, false},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Env env;
    if (c.present) {
      ASSERT_TRUE(env.Set(1, "k", "cur"));
    }
    auto set = env.e.SetIf(1, "k", "new", env.Now() + 500, c.cond, c.check);
    ASSERT_TRUE(set.ok());
    EXPECT_EQ(set->stored, c.want) << "case " << i;
    EXPECT_EQ(env.Get(1, "k"), c.want ? std::optional<std::string>("new")
                                      : (c.present ? std::optional<std::string>("cur")
                                                   : std::nullopt))
        << "case " << i;
    if (c.want) {
      EXPECT_EQ(env.e.TtlMillis(1, "k"), 500) << "case " << i;
    }
  }
}

TEST(EngineSetIf, ThroughExecuteAndAnExpiredKeyIsAbsent) {
  Env env;
  ASSERT_TRUE(env.Set(1, "k", "v", api::kSetTtl, env.Now() + 10));
  env.clock.Advance(10);
  api::Request req = Req(api::Op::kSetIf, 1, "k");
  req.value = "w";
  req.Set(api::Condition{api::SetIfCondition::kAbsent});
  api::Reply r = env.Exec(req);
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.found);
  EXPECT_EQ(env.Get(1, "k"), "w");
  EXPECT_EQ(env.e.TtlMillis(1, "k"), -1);  // expire_at 0: no TTL
}

TEST(EngineExpire, ExecuteTellsAMissingKeyFromAnUnchangedOne) {
  Env env;
  ASSERT_TRUE(env.Set(1, "k", "v", api::kSetTtl, env.Now() + 1000));
  api::Request req = Req(api::Op::kExpire, 1, "k");
  req.expire_at = env.Now() + 500;
  req.flags = api::kGt;
  api::Reply r = env.Exec(req);
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.integer, 0);
  req.key = "missing";
  r = env.Exec(req);
  EXPECT_FALSE(r.found);
  EXPECT_EQ(r.integer, 0);
}

TEST(EngineIncr, IncrByFloat) {
  Env env;
  ASSERT_TRUE(env.Set(1, "f", "10.50", api::kSetTtl, env.Now() + 500));
  auto r = env.e.IncrByFloat(1, "f", 0.1L);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "10.6");
  EXPECT_EQ(env.Get(1, "f"), "10.6");
  EXPECT_EQ(env.e.TtlMillis(1, "f"), 500);
  r = env.e.IncrByFloat(1, "n", 5.0e3L);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "5000");
  r = env.e.IncrByFloat(1, "n", -5000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "0");
  ASSERT_TRUE(env.Set(1, "s", "abc"));
  r = env.e.IncrByFloat(1, "s", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFloat);
  EXPECT_EQ(env.Get(1, "s"), "abc");
  ASSERT_TRUE(env.Set(1, "i", "7"));
  r = env.e.IncrByFloat(1, "i", std::numeric_limits<long double>::infinity());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(env.Get(1, "i"), "7");
}

TEST(EngineString, AppendCreatesConcatenatesAndKeepsTheTtl) {
  Env env;
  auto r = env.e.Append(1, "a", "Hello");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5);
  ASSERT_TRUE(env.e.Expire(1, "a", env.Now() + 900, 0).changed);
  r = env.e.Append(1, "a", std::string(" World\0!", 8));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 13);
  EXPECT_EQ(env.Get(1, "a"), std::string("Hello World\0!", 13));
  EXPECT_EQ(env.e.TtlMillis(1, "a"), 900);
  r = env.e.Append(1, "a", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 13);
  // Growing by many appends (reallocations) keeps the accounting right.
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(env.e.Append(1, "a", std::string(37, 'x')).ok());
  EXPECT_EQ(env.Get(1, "a")->size(), 13u + 300 * 37);
  env.ExpectAccountingConsistent();
  env.e.set_max_value_bytes(14000);
  r = env.e.Append(1, "a", std::string(3000, 'y'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTooLarge);
  EXPECT_EQ(env.Get(1, "a")->size(), 13u + 300 * 37);
}

TEST(EngineString, SetRangePadsWithZeroBytes) {
  Env env;
  auto r = env.e.SetRange(1, "s", 5, "ab");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 7);
  EXPECT_EQ(env.Get(1, "s"), std::string("\0\0\0\0\0ab", 7));
  ASSERT_TRUE(env.Set(1, "h", "Hello World", api::kSetTtl, env.Now() + 100));
  r = env.e.SetRange(1, "h", 6, "Redis");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 11);
  EXPECT_EQ(env.Get(1, "h"), "Hello Redis");
  EXPECT_EQ(env.e.TtlMillis(1, "h"), 100);
  r = env.e.SetRange(1, "h", 13, "!");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(env.Get(1, "h"), std::string("Hello Redis\0\0!", 14));
  r = env.e.SetRange(1, "h", 0, "J");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 14);
  EXPECT_EQ(env.Get(1, "h")->substr(0, 5), "Jello");
}

TEST(EngineString, SetRangeEdgeCases) {
  Env env;
  // Missing key + empty value: 0, and no key is created.
  auto r = env.e.SetRange(1, "m", 10, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(env.e.size(), 0u);
  // Existing key + empty value: its length, unchanged.
  ASSERT_TRUE(env.Set(1, "e", "abc"));
  r = env.e.SetRange(1, "e", 100, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 3);
  EXPECT_EQ(env.Get(1, "e"), "abc");
  // Negative offset.
  r = env.e.SetRange(1, "e", -1, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  // Past the size limit.
  env.e.set_max_value_bytes(1000);
  r = env.e.SetRange(1, "e", 999, "xy");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTooLarge);
  r = env.e.SetRange(1, "e", 998, "xy");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1000);
  EXPECT_EQ(env.e.size(), 1u);
}

// Redis checks "nothing to set" before the length check: SETRANGE of an empty string on an
// existing key returns its length whatever the offset.
TEST(EngineString, SetRangeEmptyValueOnAnExistingKeyIgnoresAHugeOffset) {
  Env env;
  env.e.set_max_value_bytes(1000);
  ASSERT_TRUE(env.Set(1, "e", "abc"));
  auto r = env.e.SetRange(1, "e", 5000, "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 3);
}

// An offset near INT64_MAX must be refused as too large, not overflow into a huge resize
// (the RESP front-end passes any non-negative offset through).
TEST(EngineString, SetRangeWithAHugeOffsetIsTooLargeNotAnOverflow) {
  Env env;
  ASSERT_TRUE(env.Set(1, "k", "v"));
  for (int64_t off : {kMaxInt64, kMaxInt64 - 1, kMaxInt64 / 2 + 1}) {
    for (std::string_view key : {"k", "missing"}) {
      auto r = env.e.SetRange(1, key, off, "xy");
      ASSERT_FALSE(r.ok()) << off;
      EXPECT_EQ(r.status().code(), Code::kTooLarge) << off;
    }
  }
  EXPECT_EQ(env.Get(1, "k"), "v");
}

// ---- Accounting and caches -------------------------------------------------------------------

TEST(EngineAccounting, PerCacheCountsSumToShardTotalsAndReturnToZero) {
  Env env;
  std::mt19937_64 rng(42);
  std::map<std::pair<uint32_t, std::string>, std::string> model;
  for (int step = 0; step < 20000; ++step) {
    const uint32_t cache = 1 + rng() % 3;
    const std::string k = "k" + std::to_string(rng() % 2000);
    switch (rng() % 6) {
      case 0:
      case 1: {
        std::string v(rng() % 700, static_cast<char>('a' + rng() % 26));
        ASSERT_TRUE(env.Set(cache, k, v));
        model[{cache, k}] = v;
        break;
      }
      case 2:
        EXPECT_EQ(env.e.Delete(cache, k), model.erase({cache, k}) == 1);
        break;
      case 3: {
        std::string v(rng() % 100, 'z');
        ASSERT_TRUE(env.e.Append(cache, k, v).ok());
        model[{cache, k}] += v;
        break;
      }
      case 4: {
        const int64_t off = rng() % 300;
        ASSERT_TRUE(env.e.SetRange(cache, k, off, "SR").ok());
        std::string& v = model[{cache, k}];
        if (v.size() < static_cast<size_t>(off) + 2) v.resize(off + 2, '\0');
        v.replace(off, 2, "SR");
        break;
      }
      default: {
        auto got = env.Get(cache, k);
        auto it = model.find({cache, k});
        ASSERT_EQ(got.has_value(), it != model.end());
        if (got) {
          ASSERT_EQ(*got, it->second);
        }
      }
    }
    if (step % 1000 == 0) {
      ASSERT_NO_FATAL_FAILURE(env.ExpectAccountingConsistent());
    }
  }
  ASSERT_NO_FATAL_FAILURE(env.ExpectAccountingConsistent());
  EXPECT_EQ(env.e.size(), model.size());
  // Delete cache 1's keys one by one, flush cache 2, and leave cache 3.
  for (const auto& [ck, v] : model) {
    if (ck.first == 1) {
      ASSERT_TRUE(env.e.Delete(1, ck.second));
    }
  }
  EXPECT_EQ(env.e.Cache(1)->items, 0u);
  EXPECT_EQ(env.e.Cache(1)->bytes, 0u);
  const uint64_t c2 = env.e.Cache(2)->items;
  EXPECT_EQ(env.e.FlushCache(2, /*forget=*/false), c2);
  EXPECT_EQ(env.e.Cache(2)->items, 0u);
  EXPECT_EQ(env.e.Cache(2)->bytes, 0u);
  EXPECT_GT(env.e.Cache(3)->items, 0u);
  env.ExpectAccountingConsistent();
  env.e.FlushCache(3, false);
  EXPECT_EQ(env.e.size(), 0u);
  EXPECT_EQ(env.e.used_bytes(), env.e.Counters().index_bytes);
  env.ExpectAccountingConsistent();
}

TEST(EngineCaches, FlushCacheForgetIsolatesCaches) {
  Env env;
  for (int i = 0; i < 500; ++i) {
    const std::string k = "k" + std::to_string(i);
    ASSERT_TRUE(env.Set(1, k, "one"));
    ASSERT_TRUE(env.Set(2, k, "two"));
  }
  EXPECT_EQ(env.e.FlushCache(1, /*forget=*/true), 500u);
  EXPECT_FALSE(env.e.HasCache(1));
  EXPECT_EQ(env.e.Cache(1), nullptr);
  EXPECT_TRUE(env.e.HasCache(2));
  EXPECT_EQ(env.e.Cache(2)->items, 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(env.Get(2, "k" + std::to_string(i)), "two");
  // Requests for the forgotten cache are refused; nothing is recreated by them.
  api::Request set = Req(api::Op::kSet, 1, "k0");
  set.value = "again";
  api::Reply reply = env.Exec(set);
  EXPECT_EQ(reply.status.code(), Code::kNotFound);
  EXPECT_FALSE(env.e.HasCache(1));
  EXPECT_EQ(env.e.size(), 500u);
  // Re-created: empty, with fresh counters.
  env.e.CreateCache(1);
  EXPECT_EQ(env.e.Cache(1)->items, 0u);
  EXPECT_EQ(env.e.Cache(1)->ops, 0u);
  EXPECT_EQ(env.Exec(Req(api::Op::kExists, 1, "k0")).integer, 0);
  EXPECT_EQ(env.e.FlushCache(2, /*forget=*/false), 500u);
  EXPECT_TRUE(env.e.HasCache(2));
  EXPECT_EQ(env.e.size(), 0u);
}

// ---- Eviction ------------------------------------------------------------------------------

// Writes far more than the limit (new keys and overwrites of random sizes); used_bytes()
// must stay within the limit after every single write, and the evictions must be counted.
TEST(EngineEviction, StaysUnderTheLimitAfterEveryWrite) {
  constexpr uint64_t kLimit = 1 << 20;
  Env env(kLimit, 3);
  std::mt19937_64 rng(5);
  uint64_t written = 0;
  int step = 0;
  while (written < 30 * kLimit) {
    const uint32_t cache = 1 + rng() % 3;
    const std::string k = "key" + std::to_string(rng() % 50000);
    const size_t len = 10 + rng() % 1500;
    Status st;
    if (rng() % 8 == 0) {
      st = env.e.Append(cache, k, std::string(len / 4, 'a')).status();
    } else {
      st = env.e.Set(cache, k, std::string(len, 'v'), 0, 0).status();
    }
    ASSERT_TRUE(st.ok()) << st.ToString();
    written += len;
    ASSERT_LE(env.e.used_bytes(), kLimit) << "after write " << step << " (" << env.e.size()
                                          << " items, index " << env.e.Counters().index_bytes
                                          << " bytes)";
    ++step;
  }
  const EngineCounters c = env.e.Counters();
  EXPECT_GT(c.evictions, 10000u);
  EXPECT_EQ(c.oom_refusals, 0u);
  EXPECT_EQ(env.e.Cache(1)->evictions + env.e.Cache(2)->evictions + env.e.Cache(3)->evictions,
            c.evictions);
  EXPECT_GT(env.e.size(), 500u);  // the memory is used, not emptied
  env.ExpectAccountingConsistent();
}

// Big items first, then small ones: the item count keeps rising while the shard is full, so
// the index doubles (several times) at the limit. That growth must be paid for by evictions.
TEST(EngineEviction, StaysUnderTheLimitWhenTheIndexGrowsAtTheLimit) {
  constexpr uint64_t kLimit = 1 << 20;
  Env env(kLimit, 4);
  const std::string big(500, 'b');
  int growths_at_limit = 0;
  for (int i = 0; i < 120000; ++i) {
    const uint64_t index_before = env.e.Counters().index_bytes;
    const bool full = env.e.Counters().evictions > 0;
    ASSERT_TRUE(env.Set(1 + i % 2, "s" + std::to_string(i), i < 5000 ? std::string_view(big)
                                                                      : std::string_view("v")));
    ASSERT_LE(env.e.used_bytes(), kLimit) << "after write " << i << " (" << env.e.size()
                                          << " items, index " << env.e.Counters().index_bytes
                                          << " bytes)";
    growths_at_limit += full && env.e.Counters().index_bytes > index_before;
  }
  EXPECT_GE(growths_at_limit, 2);
  EXPECT_GT(env.e.Counters().evictions, 50000u);
  EXPECT_GT(env.e.size(), 10000u);
  env.ExpectAccountingConsistent();
}

// Large values (above glibc's mmap threshold) get blocks much bigger than the request.
TEST(EngineEviction, StaysUnderTheLimitWithLargeValues) {
  constexpr uint64_t kLimit = 4 << 20;
  Env env(kLimit, 3);
  std::mt19937_64 rng(8);
  for (int step = 0; step < 400; ++step) {
    const std::string k = "big" + std::to_string(rng() % 100);
    const size_t len = 100000 + rng() % 300000;
    ASSERT_TRUE(env.Set(1, k, std::string(len, 'L')));
    ASSERT_LE(env.e.used_bytes(), kLimit) << "after write " << step;
  }
  EXPECT_GT(env.e.Counters().evictions, 0u);
  env.ExpectAccountingConsistent();
}

// Overwriting a key with a bigger value may have to evict other keys, and, sampling being
// random (all ages equal on a frozen clock), sometimes the key itself. The write must still
// land, keep the key's TTL, stay under the limit and keep the accounting right.
TEST(EngineEviction, GrowingAValueThatEvictsTheKeyItselfIsSafe) {
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 300; ++trial) {
    Env env(0, trial + 1);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(env.Set(1, "k" + std::to_string(i), "small"));
    // Room for the grown item alone, not for it and all the others.
    env.e.set_memory_limit(env.e.used_bytes() + 250);
    const std::string key = "k" + std::to_string(rng() % 10);
    ASSERT_TRUE(env.e.Expire(1, key, env.Now() + 5000, 0).changed);
    const std::string big(400, 'B');
    if (trial % 2 == 0) {
      auto r = env.e.Set(1, key, big, 0, api::kKeepTtl);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_TRUE(r->stored);
    } else {
      auto r = env.e.Append(1, key, big);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(*r, 405);
    }
    const std::string want = trial % 2 == 0 ? big : "small" + big;
    ASSERT_EQ(env.Get(1, key), want) << "trial " << trial;
    EXPECT_EQ(env.e.TtlMillis(1, key), 5000);
    EXPECT_GT(env.e.Counters().evictions, 0u);
    EXPECT_LE(env.e.used_bytes(), env.e.memory_limit()) << "trial " << trial;
    ASSERT_NO_FATAL_FAILURE(env.ExpectAccountingConsistent());
  }
}

// The only item grows to a size that does not fit even alone: refused, and the limit holds.
TEST(EngineEviction, GrowingTheOnlyItemBeyondTheLimitIsRefused) {
  Env env(16 * 8 + 300);  // the empty index (16 slots) plus 300 bytes
  ASSERT_TRUE(env.Set(1, "k", "small"));
  auto set = env.e.Set(1, "k", std::string(300, 'B'), 0, 0);
  EXPECT_EQ(set.status().code(), Code::kOutOfMemory);
  EXPECT_LE(env.e.used_bytes(), env.e.memory_limit());
  env.ExpectAccountingConsistent();
}

TEST(EngineEviction, AnItemLargerThanTheLimitIsRefused) {
  Env env(64 * 1024);
  ASSERT_TRUE(env.Set(1, "small", "v"));
  auto set = env.e.Set(1, "huge", std::string(100 * 1024, 'h'), 0, 0);
  EXPECT_EQ(set.status().code(), Code::kOutOfMemory);
  EXPECT_FALSE(env.Get(1, "huge"));
  EXPECT_GE(env.e.Counters().oom_refusals, 1u);
  EXPECT_LE(env.e.used_bytes(), env.e.memory_limit());
  env.ExpectAccountingConsistent();
}

// Approximate LRU: keys read all the time survive a flood of writes 20 times the limit; keys
// written at the same time but never read do not.
TEST(EngineEviction, RecentlyReadKeysSurviveMuchBetterThanUntouchedOnes) {
  constexpr uint64_t kLimit = 2 << 20;
  Env env(kLimit, 11);
  const std::string value(150, 'x');
  std::vector<std::string> hot;
  std::vector<std::string> control;
  for (int i = 0; i < 100; ++i) {
    hot.push_back("hot" + std::to_string(i));
    control.push_back("control" + std::to_string(i));
    ASSERT_TRUE(env.Set(1, hot.back(), value));
    ASSERT_TRUE(env.Set(1, control.back(), value));
  }
  uint64_t written = 0;
  int n = 0;
  while (written < 20 * kLimit) {
    ASSERT_TRUE(env.Set(1, "cold" + std::to_string(n), value));
    written += value.size() + 10;
    env.clock.Advance(100);  // one LRU clock tick per write
    if (++n % 50 == 0) {
      for (const auto& k : hot) *env.e.Get(1, k);
    }
  }
  int hot_alive = 0;
  int control_alive = 0;
  for (int i = 0; i < 100; ++i) {
    hot_alive += env.Get(1, hot[i]).has_value();
    control_alive += env.Get(1, control[i]).has_value();
  }
  std::printf("[   INFO   ] LRU: %d/100 hot and %d/100 untouched keys survived %d writes, "
              "%llu evictions\n",
              hot_alive, control_alive, n,
              static_cast<unsigned long long>(env.e.Counters().evictions));
  EXPECT_GE(hot_alive, 90);
  EXPECT_LE(control_alive, 10);
  EXPECT_GT(env.e.Counters().evictions, static_cast<uint64_t>(n / 2));
}

// ---- Execute() of every op -------------------------------------------------------------------

TEST(EngineExecute, UnknownCacheIsNotFoundForEveryOp) {
  Env env;
  for (int op = 0; op <= static_cast<int>(api::Op::kStats); ++op) {
    api::Request r = Req(static_cast<api::Op>(op), 77, "k");
    r.value = "v";
    api::Reply reply = env.Exec(r);
    EXPECT_EQ(reply.status.code(), Code::kNotFound) << "op " << op;
  }
  EXPECT_FALSE(env.e.HasCache(77));
  EXPECT_EQ(env.e.size(), 0u);
}

TEST(EngineExecute, EveryKeyedOp) {
  Env env;
  const int64_t now = env.Now();
  auto run = [&](api::Request r) {
    api::Reply reply = env.Exec(r);
    EXPECT_TRUE(reply.status.ok()) << reply.status.ToString();
    return reply;
  };
  api::Request set = Req(api::Op::kSet, 1, "k");
  set.value = "hello";
  api::Reply reply = run(set);
  EXPECT_TRUE(reply.found);  // stored
  EXPECT_EQ(reply.integer, 0);
  set.value = "world";
  set.flags = api::kGetOld;
  reply = run(set);
  EXPECT_EQ(reply.value, "hello");
  EXPECT_EQ(reply.integer, 1);
  set.flags = api::kNx;
  EXPECT_FALSE(run(set).found);

  reply = run(Req(api::Op::kGet, 1, "k"));
  EXPECT_TRUE(reply.found);
  EXPECT_EQ(reply.value, "world");
  EXPECT_FALSE(run(Req(api::Op::kGet, 1, "nope")).found);
  EXPECT_EQ(run(Req(api::Op::kExists, 1, "k")).integer, 1);
  EXPECT_EQ(run(Req(api::Op::kExists, 1, "nope")).integer, 0);
  EXPECT_EQ(run(Req(api::Op::kType, 1, "k")).value, "string");
  EXPECT_EQ(run(Req(api::Op::kType, 1, "nope")).value, "none");
  EXPECT_EQ(run(Req(api::Op::kStrlen, 1, "k")).integer, 5);
  EXPECT_EQ(run(Req(api::Op::kStrlen, 1, "nope")).integer, 0);

  api::Request range = Req(api::Op::kGetRange, 1, "k");
  range.Set(api::IndexRange{1, -2});
  EXPECT_EQ(run(range).value, "orl");
  range.Set(api::IndexRange{-100, 100});
  EXPECT_EQ(run(range).value, "world");
  range.Set(api::IndexRange{-1, -3});
  EXPECT_EQ(run(range).value, "");
  range.Set(api::IndexRange{3, 1});
  EXPECT_EQ(run(range).value, "");
  range.Set(api::IndexRange{0, 0});
  EXPECT_EQ(run(range).value, "w");

  api::Request app = Req(api::Op::kAppend, 1, "k");
  app.value = "!!";
  EXPECT_EQ(run(app).integer, 7);
  api::Request sr = Req(api::Op::kSetRange, 1, "k");
  sr.Set(api::Position{0});
  sr.value = "W";
  EXPECT_EQ(run(sr).integer, 7);
  EXPECT_EQ(run(Req(api::Op::kGet, 1, "k")).value, "World!!");
  sr.Set(api::Position{-1});
  EXPECT_EQ(env.Exec(sr).status.code(), Code::kInvalidArgument);

  api::Request incr = Req(api::Op::kIncrBy, 1, "n");
  incr.Set(api::Delta{41});
  EXPECT_EQ(run(incr).integer, 41);
  incr.Set(api::Delta{1});
  EXPECT_EQ(run(incr).integer, 42);
  EXPECT_EQ(env.Exec(Req(api::Op::kIncrBy, 1, "k")).status.code(), Code::kNotInteger);
  api::Request incrf = Req(api::Op::kIncrByFloat, 1, "n");
  incrf.Set(api::FloatDelta{0.5L});
  EXPECT_EQ(run(incrf).value, "42.5");
  incrf.key = "k";
  EXPECT_EQ(env.Exec(incrf).status.code(), Code::kNotFloat);

  // TTL family.
  EXPECT_EQ(run(Req(api::Op::kTtl, 1, "k")).integer, -1);
  EXPECT_EQ(run(Req(api::Op::kTtl, 1, "nope")).integer, -2);
  EXPECT_EQ(run(Req(api::Op::kExpireTime, 1, "k")).integer, -1);
  EXPECT_EQ(run(Req(api::Op::kExpireTime, 1, "nope")).integer, -2);
  api::Request exp = Req(api::Op::kExpire, 1, "k");
  exp.expire_at = now + 10000;
  EXPECT_EQ(run(exp).integer, 1);
  exp.flags = api::kNx;
  EXPECT_EQ(run(exp).integer, 0);
  EXPECT_EQ(run(Req(api::Op::kTtl, 1, "k")).integer, 10000);
  EXPECT_EQ(run(Req(api::Op::kExpireTime, 1, "k")).integer, now + 10000);
  EXPECT_EQ(run(Req(api::Op::kPersist, 1, "k")).integer, 1);
  EXPECT_EQ(run(Req(api::Op::kPersist, 1, "k")).integer, 0);
  EXPECT_EQ(run(Req(api::Op::kPersist, 1, "nope")).integer, 0);
  EXPECT_EQ(run(Req(api::Op::kTtl, 1, "k")).integer, -1);

  // GETEX: plain, with a TTL, PERSIST, and a past time (deletes, still returns the value).
  api::Request getex = Req(api::Op::kGetEx, 1, "k");
  reply = run(getex);
  EXPECT_TRUE(reply.found);
  EXPECT_EQ(reply.value, "World!!");
  getex.flags = api::kSetTtl;
  getex.expire_at = now + 3000;
  EXPECT_TRUE(run(getex).found);
  EXPECT_EQ(run(Req(api::Op::kTtl, 1, "k")).integer, 3000);
  getex.flags = api::kPersistTtl;
  EXPECT_TRUE(run(getex).found);
  EXPECT_EQ(run(Req(api::Op::kTtl, 1, "k")).integer, -1);
  getex.flags = api::kSetTtl;
  getex.expire_at = now - 1;
  reply = run(getex);
  EXPECT_TRUE(reply.found);
  EXPECT_EQ(reply.value, "World!!");
  EXPECT_EQ(run(Req(api::Op::kExists, 1, "k")).integer, 0);
  EXPECT_FALSE(run(Req(api::Op::kGetEx, 1, "k")).found);

  // GETDEL and DELETE.
  reply = run(Req(api::Op::kGetDel, 1, "n"));
  EXPECT_TRUE(reply.found);
  EXPECT_EQ(reply.value, "42.5");
  EXPECT_FALSE(run(Req(api::Op::kGetDel, 1, "n")).found);
  set = Req(api::Op::kSet, 1, "d");
  set.value = "x";
  run(set);
  EXPECT_EQ(run(Req(api::Op::kDelete, 1, "d")).integer, 1);
  EXPECT_EQ(run(Req(api::Op::kDelete, 1, "d")).integer, 0);

  // SET with a TTL through Execute.
  set.flags = api::kSetTtl;
  set.expire_at = now + 250;
  run(set);
  EXPECT_EQ(run(Req(api::Op::kTtl, 1, "d")).integer, 250);
  env.clock.Advance(250);
  EXPECT_FALSE(run(Req(api::Op::kGet, 1, "d")).found);

  EXPECT_GT(env.e.Cache(1)->ops, 40u);
  EXPECT_EQ(env.e.Cache(2)->ops, 0u);
  env.ExpectAccountingConsistent();
}

TEST(EngineExecute, CountStatsAndFlush) {
  Env env;
  for (int i = 0; i < 30; ++i) {
    api::Request set = Req(api::Op::kSet, 1 + i % 2, "k" + std::to_string(i));
    std::string key = "k" + std::to_string(i);
    set.key = key;
    set.value = "v";
    env.Exec(set);
  }
  EXPECT_EQ(env.Exec(Req(api::Op::kCount, 1)).integer, 15);
  EXPECT_EQ(env.Exec(Req(api::Op::kCount, 3)).integer, 0);
  env.Exec(Req(api::Op::kGet, 1, "k0"));
  env.Exec(Req(api::Op::kGet, 1, "zz"));
  api::Reply stats = env.Exec(Req(api::Op::kStats, 2));
  ASSERT_EQ(stats.numbers.size(), static_cast<size_t>(api::kStatCount));
  EXPECT_EQ(stats.numbers[api::kStatItems], 30);
  EXPECT_EQ(stats.numbers[api::kStatUsedBytes], static_cast<int64_t>(env.e.used_bytes()));
  EXPECT_EQ(stats.numbers[api::kStatIndexBytes],
            static_cast<int64_t>(env.e.Counters().index_bytes));
  EXPECT_EQ(stats.numbers[api::kStatMemoryLimit], 0);
  EXPECT_EQ(stats.numbers[api::kStatHits], 1);
  EXPECT_EQ(stats.numbers[api::kStatMisses], 1);
  EXPECT_EQ(stats.numbers[api::kStatCacheItems], 15);
  EXPECT_EQ(stats.numbers[api::kStatCacheBytes], static_cast<int64_t>(env.e.Cache(2)->bytes));
  EXPECT_EQ(env.Exec(Req(api::Op::kFlushCache, 2)).integer, 15);
  EXPECT_EQ(env.Exec(Req(api::Op::kCount, 2)).integer, 0);
  EXPECT_EQ(env.Exec(Req(api::Op::kCount, 1)).integer, 15);
  EXPECT_TRUE(env.e.HasCache(2));
}

// SCAN through Execute across a whole table: every key of the cache exactly once when nothing
// changes, only that cache's keys, MATCH applied, expired keys skipped, COUNT honoured.
TEST(EngineExecute, ScanCoversTheWholeTable) {
  Env env;
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(env.Set(1, "user:" + std::to_string(i), "v"));
    if (i < 1000) {
      ASSERT_TRUE(env.Set(2, "user:" + std::to_string(i), "v"));
    }
    if (i < 50) {
      ASSERT_TRUE(env.Set(1, "gone:" + std::to_string(i), "v", api::kSetTtl, env.Now() + 1));
    }
  }
  env.clock.Advance(1);
  auto scan_all = [&](std::string_view pattern, int64_t count) {
    std::vector<std::string> keys;
    uint64_t cursor = 0;
    int calls = 0;
    do {
      api::Request r = Req(api::Op::kScan, 1);
      r.Set(api::Cursor{static_cast<int64_t>(cursor), count});
      r.pattern = pattern;
      api::Reply reply = env.Exec(r);
      EXPECT_TRUE(reply.status.ok());
      // COUNT is a hint: whole buckets are returned, so a few more may come back.
      EXPECT_LE(reply.keys.size(), static_cast<size_t>(count) + 8);
      keys.insert(keys.end(), reply.keys.begin(), reply.keys.end());
      cursor = static_cast<uint64_t>(reply.integer);
      ++calls;
    } while (cursor != 0 && calls < 100000);
    EXPECT_EQ(cursor, 0u);
    return std::make_pair(keys, calls);
  };
  auto [keys, calls] = scan_all("", 10);
  std::multiset<std::string> seen(keys.begin(), keys.end());
  EXPECT_EQ(keys.size(), 3000u);
  for (int i = 0; i < 3000; ++i) EXPECT_EQ(seen.count("user:" + std::to_string(i)), 1u) << i;
  EXPECT_GT(calls, 3000 / 18);
  auto [matched, calls2] = scan_all("user:1?", 10);
  std::set<std::string> m(matched.begin(), matched.end());
  EXPECT_EQ(m.size(), 10u);
  EXPECT_TRUE(m.contains("user:10"));
  EXPECT_TRUE(m.contains("user:19"));
  EXPECT_EQ(matched.size(), 10u);
  auto [all, calls3] = scan_all("*", 1000000);
  EXPECT_EQ(all.size(), 3000u);
  EXPECT_EQ(calls3, 1);
  // Cache 3 is empty: one pass over the buckets, no keys.
  api::Request r = Req(api::Op::kScan, 3);
  uint64_t cursor = 0;
  int n = 0;
  do {
    r.Set(api::Cursor{static_cast<int64_t>(cursor), 1});
    api::Reply reply = env.Exec(r);
    EXPECT_TRUE(reply.keys.empty());
    cursor = static_cast<uint64_t>(reply.integer);
  } while (cursor != 0 && ++n < 100000);
  EXPECT_EQ(cursor, 0u);
}

TEST(EngineExecute, RandomKey) {
  Env env;
  EXPECT_FALSE(env.Exec(Req(api::Op::kRandomKey, 1)).found);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(env.Set(2, "other" + std::to_string(i), "v"));
  ASSERT_TRUE(env.Set(1, "only", "v"));
  // A lone key among many of another cache is still found, every time.
  for (int i = 0; i < 20; ++i) {
    api::Reply reply = env.Exec(Req(api::Op::kRandomKey, 1));
    ASSERT_TRUE(reply.found);
    EXPECT_EQ(reply.value, "only");
  }
  std::set<std::string> distinct;
  for (int i = 0; i < 200; ++i) {
    api::Reply reply = env.Exec(Req(api::Op::kRandomKey, 2));
    ASSERT_TRUE(reply.found);
    ASSERT_EQ(reply.value.rfind("other", 0), 0u) << reply.value;
    distinct.insert(reply.value);
  }
  EXPECT_GT(distinct.size(), 50u);  // random, not always the same key
  // Only expired keys left: none is returned.
  ASSERT_TRUE(env.Set(3, "dying", "v", api::kSetTtl, env.Now() + 5));
  env.clock.Advance(5);
  EXPECT_FALSE(env.Exec(Req(api::Op::kRandomKey, 3)).found);
}

// ---- Measurement (printed, not asserted) -------------------------------------------------------

TEST(EngineMeasure, PerItemOverhead) {
  Env env;
  constexpr int kItems = 100000;
  const std::string value(100, 'v');
  char key[17];
  for (int i = 0; i < kItems; ++i) {
    std::snprintf(key, sizeof(key), "key:%012d", i);
    ASSERT_TRUE(env.Set(1, std::string_view(key, 16), value));
  }
  ASSERT_EQ(env.e.size(), static_cast<size_t>(kItems));
  const EngineCounters c = env.e.Counters();
  const double per_item = static_cast<double>(env.e.used_bytes()) / kItems;
  std::printf("[   INFO   ] per-item: %.1f bytes used per item (16-byte key + 100-byte value = "
              "116 payload; %.1f overhead): item blocks %.1f, index %.1f (%llu slots)\n",
              per_item, per_item - 116,
              static_cast<double>(env.e.used_bytes() - c.index_bytes) / kItems,
              static_cast<double>(c.index_bytes) / kItems,
              static_cast<unsigned long long>(c.index_bytes / 8));
  RecordProperty("bytes_per_item", std::to_string(per_item));
}

TEST(Engine, CountsItemsWithATtlPerCache) {
  ManualClock clock;
  Engine e(&clock, 0);
  e.CreateCache(1);
  e.CreateCache(2);
  auto vol = [&](uint32_t c) { return e.Cache(c)->volatile_items; };
  const int64_t later = clock.NowMillis() + 10000;
  ASSERT_TRUE(e.Set(1, "a", "v", later, api::kSetTtl).ok());
  ASSERT_TRUE(e.Set(1, "b", "v", 0, 0).ok());
  ASSERT_TRUE(e.Set(2, "a", "v", later, api::kSetTtl).ok());
  EXPECT_EQ(vol(1), 1u);
  EXPECT_EQ(vol(2), 1u);
  EXPECT_EQ(e.Expire(1, "b", later, 0).changed, 1);           // gains a TTL
  EXPECT_EQ(vol(1), 2u);
  ASSERT_TRUE(e.Set(1, "a", "longer value", 0, api::kKeepTtl).ok());
  EXPECT_EQ(vol(1), 2u);                               // rewritten block keeps its TTL
  ASSERT_TRUE(e.Set(1, "a", "v", 0, 0).ok());
  EXPECT_EQ(vol(1), 1u);                               // a plain SET drops the TTL
  api::Request persist{.op = api::Op::kPersist, .cache_id = 1, .key = "b"};
  api::Reply r;
  e.Execute(persist, r);
  EXPECT_EQ(r.integer, 1);
  EXPECT_EQ(vol(1), 0u);
  api::Request getex{.op = api::Op::kGetEx, .flags = api::kSetTtl, .cache_id = 1, .key = "a",
                     .expire_at = later};
  api::Reply r2;
  e.Execute(getex, r2);
  EXPECT_EQ(vol(1), 1u);
  clock.Advance(20000);
  EXPECT_EQ(e.ActiveExpire(1 << 20), 2u);  // cache 1's "a" and cache 2's "a"
  EXPECT_EQ(vol(1), 0u);
  EXPECT_EQ(vol(2), 0u);
  EXPECT_EQ(e.Cache(1)->items, 1u);        // "b" had its TTL removed
}

}  // namespace
}  // namespace cellar::storage
