#include <gtest/gtest.h>

#include <cctype>
#include <set>

#include "frontend/resp/commands.h"
#include "frontend/resp/metrics.h"

namespace cellar::resp {
namespace {

TEST(CommandTable, EntriesAreWellFormed) {
  const auto& all = AllCommands();
  ASSERT_GE(all.size(), 48u);
  ASSERT_LT(all.size(), kMaxCommandIds) << "grow kMaxCommandIds: metrics index by command id";
  std::set<std::string_view> names;
  for (size_t i = 0; i < all.size(); ++i) {
    const CommandSpec* s = all[i];
    EXPECT_TRUE(names.insert(s->name).second) << "duplicate " << s->name;
    for (char c : s->name) EXPECT_TRUE(std::islower(static_cast<unsigned char>(c))) << s->name;
    EXPECT_NE(s->arity, 0) << s->name;
    EXPECT_NE(s->prepare, nullptr) << s->name;
    EXPECT_EQ(s->id, i) << s->name;
    EXPECT_FALSE(s->summary.empty()) << s->name;
    if (s->followup != nullptr) {
      EXPECT_TRUE(s->flags & kEndsRound) << s->name;
    }
    // Commands that may answer from shard replies need a finish handler.
    if (!(s->flags & (kConnection | kOwnRounds))) {
      EXPECT_NE(s->finish, nullptr) << s->name;
    }
    if (i > 0) {
      EXPECT_LT(all[i - 1]->name, s->name);
    }
  }
}

TEST(CommandTable, EachCommandDeclaresWhatItNeedsOfAToken) {
  using auth::Access;
  auto access = [](std::string_view name, std::vector<std::string_view> args) {
    const CommandSpec* spec = FindCommand(name);
    EXPECT_NE(spec, nullptr) << name;
    return spec == nullptr ? Access::kControl : spec->Access(args);
  };
  EXPECT_EQ(access("get", {"get", "k"}), Access::kRead);
  EXPECT_EQ(access("keys", {"keys", "*"}), Access::kRead);
  EXPECT_EQ(access("publish", {"publish", "c", "m"}), Access::kPublish);
  // Blind writes: a write-only token may make them.
  for (std::string_view n : {"setex", "psetex", "mset", "del", "unlink"}) {
    EXPECT_EQ(access(n, {n, "k", "v"}), Access::kWrite) << n;
  }
  EXPECT_EQ(access("set", {"set", "k", "v"}), Access::kWrite);
  EXPECT_EQ(access("set", {"set", "k", "v", "EX", "10"}), Access::kWrite);
  // Options that read or depend on what is there.
  for (std::string_view opt : {"NX", "xx", "GET", "KeepTtl"}) {
    EXPECT_EQ(access("set", {"set", "k", "v", opt}), Access::kConditionalWrite) << opt;
  }
  for (std::string_view n : {"incr", "append", "getdel", "hset", "lpush", "sadd", "zadd"}) {
    EXPECT_EQ(access(n, {n, "k", "v"}), Access::kConditionalWrite) << n;
  }
  // Only writes are blind.
  for (const CommandSpec* s : AllCommands()) {
    if (s->flags & kBlindWrite) {
      EXPECT_TRUE(s->flags & kWrite) << s->name;
    }
  }
}

TEST(CommandTable, LookupIsCaseInsensitive) {
  const CommandSpec* get = FindCommand("get");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(FindCommand("GET"), get);
  EXPECT_EQ(FindCommand("gEt"), get);
  EXPECT_EQ(get->arity, 2);
  EXPECT_EQ(FindCommand("nosuchcommand"), nullptr);
  EXPECT_EQ(FindCommand(""), nullptr);
  EXPECT_EQ(FindCommand(std::string(1000, 'g')), nullptr);
  EXPECT_EQ(CommandIndex("set"), FindCommand("set")->id);
}

TEST(CommandTable, IssueListIsComplete) {
  for (const char* name :
       {"ping", "echo", "hello", "auth", "client", "select", "quit", "reset", "command", "info",
        "dbsize", "get", "set", "setnx", "setex", "psetex", "getdel", "getex", "getset", "mget",
        "mset", "msetnx", "del", "unlink", "exists", "type", "incr", "incrby", "decr", "decrby",
        "incrbyfloat", "append", "strlen", "getrange", "setrange", "expire", "pexpire",
        "expireat", "pexpireat", "persist", "ttl", "pttl", "expiretime", "flushdb", "scan",
        "randomkey"}) {
    EXPECT_NE(FindCommand(name), nullptr) << name;
  }
}

}  // namespace
}  // namespace cellar::resp
