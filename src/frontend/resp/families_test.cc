// In-process command tests: every RESP command family run as a connection runs it (prepare,
// the pipeline's checks, the shards, a follow-up round, finish), against a real pipeline,
// gateway, engine and topics on one loop, with no socket. The model is Dragonfly's
// BaseFamilyTest: `Run({"SET", "k", "v"})` returns the reply's RESP bytes.
//
// The wire tests (tests/integration, with redis-cli, redis-py, a Node client) remain the
// contract; these pin each family's behaviour where a failure names the command, and run in
// milliseconds.
#include <gtest/gtest.h>

#include <unistd.h>

#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "common/check.h"
#include "frontend/resp/commands.h"
#include "frontend/resp/topic_pushes.h"
#include "testing/in_process.h"

namespace cellar::resp {
namespace {

// The connection's side the commands see: subscriptions kept as names, deferred replies
// written into the test's reply.
class FakePort final : public ConnectionPort, public DeferredReply::Target {
 public:
  size_t SubscriptionCount() const override { return channels.size() + patterns.size(); }
  bool IsSubscribed(std::string_view name, bool pattern) const override {
    return (pattern ? patterns : channels).contains(std::string(name));
  }
  Status AddSubscription(std::string_view name, bool pattern) override {
    (pattern ? patterns : channels).insert(std::string(name));
    (pattern ? pattern_order : channel_order).push_back(std::string(name));
    return Status::Ok();
  }
  bool RemoveSubscription(std::string_view name, bool pattern) override {
    auto& order = pattern ? pattern_order : channel_order;
    std::erase(order, std::string(name));
    return (pattern ? patterns : channels).erase(std::string(name)) > 0;
  }
  std::vector<std::string> SubscriptionNames(bool pattern) const override {
    return pattern ? pattern_order : channel_order;
  }
  void DropSubscriptions() override {
    channels.clear();
    patterns.clear();
    channel_order.clear();
    pattern_order.clear();
  }
  DeferredReply Defer() override {
    ++deferred;
    return DeferredReply(std::shared_ptr<DeferredReply::Target>(self, this), proto);
  }
  std::string& DeferredBuffer() override { return *buffer; }
  void DeferredDone() override { --deferred; }

  std::set<std::string> channels, patterns;
  std::vector<std::string> channel_order, pattern_order;
  int deferred = 0;
  int proto = 2;
  std::string* buffer = nullptr;
  std::shared_ptr<void> self = std::make_shared<int>(0);
};

class RespFamilyTest : public ::testing::Test {
 protected:
  // No command may trip an internal check (e.g. a request's typed arguments of another type
  // than its op reads: api::Request::Get).
  void TearDown() override { EXPECT_EQ(BugCheckFailures().load(), bug_checks_at_start_); }
  const uint64_t bug_checks_at_start_ = BugCheckFailures().load();

  void SetUp() override {
    node_ = std::make_unique<gateway::InProcessNode>(
        ::testing::TempDir() + "/resp_families_" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
        std::to_string(::getpid()));
    server_.gateway = node_->gateway.get();
    server_.topics = node_->topics.get();
    server_.max_item_bytes = 1 << 20;
    server_.threads = 1;
    server_.topic_encoding = node_->topics->RegisterEncoding(EncodeTopicTail);
    state_.authed = true;
    state_.principal = node_->principal;
    state_.cache_id = node_->cache;
    state_.cache_name = "c";
    state_.cache_state = node_->cache_state();
  }

  // Runs one command as a connection does and returns its reply.
  std::string Run(std::initializer_list<std::string_view> words) {
    std::vector<std::string> owned(words.begin(), words.end());
    std::vector<std::string_view> args(owned.begin(), owned.end());
    std::string reply;
    ReplyWriter w(&reply, state_.proto);
    const CommandSpec* spec = FindCommand(args[0]);
    if (spec == nullptr) {
      WriteError(w, RespError::kUnknownCommand, args[0]);
      return reply;
    }
    if ((spec->arity > 0 && static_cast<int>(args.size()) != spec->arity) ||
        (spec->arity < 0 && static_cast<int>(args.size()) < -spec->arity)) {
      WriteError(w, RespError::kWrongArity, spec->name);
      return reply;
    }
    gateway::Pipeline& p = *node_->pipeline;
    p.Begin();
    ScratchArena scratch;
    port_.proto = state_.proto;
    port_.buffer = &reply;
    CommandContext ctx(state_, server_, 0, p.now_ms(), p.calls(), w, scratch);
    ctx.args = args;
    ctx.spec = spec;
    ctx.port = &port_;
    ctx.pipeline = &p;
    spec->prepare(ctx);
    const auto access = spec->Access(args);
    if (!(spec->flags & kNoAuth)) {
      uint64_t bytes = 0;
      for (size_t i = 1; i < args.size(); ++i) bytes += args[i].size();
      switch (p.Verify(state_.principal, state_.cache_name, state_.cache_state.get(), 0, access,
                       bytes)) {
        case gateway::Verdict::kAllowed:
          break;
        case gateway::Verdict::kDenied:
          reply.clear();
          WriteError(w, RespError::kNoPerm, spec->name);
          return reply;
        case gateway::Verdict::kRefused:
          reply.clear();
          WriteRefusal(w, p, *state_.cache_state, p.refusal());
          return reply;
      }
    }
    Drain();  // a deferred reply (KEYS, PUBSUB NUMSUB) completes on the loop
    EXPECT_EQ(port_.deferred, 0) << args[0] << ": a deferred reply never completed";
    if (!reply.empty() || p.calls().empty() || spec->finish == nullptr) return reply;
    bool done = false;
    p.Submit(state_.authed ? state_.principal.tenant : 0, [&] { done = true; });
    Drain();
    EXPECT_TRUE(done) << args[0] << ": the round never came back";
    std::string unused;
    ReplyWriter uw(&unused, state_.proto);
    ReplyWriter out(&reply, w.proto());
    if (spec->followup != nullptr) {
      gateway::Batch second;
      CommandContext c1(state_, server_, 0, p.now_ms(), second.calls, uw, scratch);
      c1.args = args;
      c1.spec = spec;
      c1.pipeline = &p;
      if (spec->followup(c1, std::span<gateway::Call>(p.calls()))) {
        if (!gateway::Pipeline::Permitted(state_.principal, state_.cache_name, second.calls,
                                          access)) {
          WriteError(out, RespError::kNoPerm, spec->name);
          return reply;
        }
        bool again = false;
        p.SubmitFollowup(second, [&] { again = true; });
        Drain();
        EXPECT_TRUE(again);
        spec->finish(c1, std::span<gateway::Call>(second.calls), out);
        return reply;
      }
    }
    CommandContext fin(state_, server_, 0, p.now_ms(), p.calls(), uw, scratch);
    fin.args = args;
    fin.spec = spec;
    fin.pipeline = &p;
    spec->finish(fin, std::span<gateway::Call>(p.calls()), out);
    return reply;
  }

  void Drain() { node_->Drain(); }
  void UseToken(auth::CacheRole role, std::optional<std::string> key_prefix = std::nullopt) {
    node_->UseToken(role, std::move(key_prefix));
    state_.principal = node_->principal;
  }

  std::unique_ptr<gateway::InProcessNode> node_;
  FakePort port_;
  ServerContext server_;
  ConnState state_;
};

constexpr const char* kOk = "+OK\r\n";
constexpr const char* kNil = "$-1\r\n";

TEST_F(RespFamilyTest, Strings) {
  EXPECT_EQ(Run({"SET", "k", "v1"}), kOk);
  EXPECT_EQ(Run({"GET", "k"}), "$2\r\nv1\r\n");
  EXPECT_EQ(Run({"SET", "k", "v2", "GET"}), "$2\r\nv1\r\n");
  EXPECT_EQ(Run({"SET", "k", "x", "NX"}), kNil);
  EXPECT_EQ(Run({"APPEND", "k", "!"}), ":3\r\n");
  EXPECT_EQ(Run({"STRLEN", "k"}), ":3\r\n");
  EXPECT_EQ(Run({"INCR", "n"}), ":1\r\n");
  EXPECT_EQ(Run({"INCRBY", "n", "41"}), ":42\r\n");
  EXPECT_EQ(Run({"INCR", "k"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run({"MSET", "a", "1", "b", "2"}), kOk);
  EXPECT_EQ(Run({"MGET", "a", "b", "nope"}), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
  // MSETNX: a first round looks, a second writes (the follow-up).
  EXPECT_EQ(Run({"MSETNX", "x", "1", "y", "2"}), ":1\r\n");
  EXPECT_EQ(Run({"MSETNX", "y", "3", "z", "4"}), ":0\r\n");
  EXPECT_EQ(Run({"GET", "z"}), kNil);
  EXPECT_EQ(Run({"GET", "k", "extra"}), "-ERR wrong number of arguments for 'get' command\r\n");
}

TEST_F(RespFamilyTest, KeysTtlScanAndKeys) {
  EXPECT_EQ(Run({"SET", "k1", "v"}), kOk);
  EXPECT_EQ(Run({"SET", "k2", "v", "EX", "100"}), kOk);
  EXPECT_EQ(Run({"EXISTS", "k1", "k2", "k3"}), ":2\r\n");
  EXPECT_EQ(Run({"TTL", "k1"}), ":-1\r\n");
  const std::string ttl = Run({"TTL", "k2"});
  EXPECT_TRUE(ttl == ":100\r\n" || ttl == ":99\r\n") << ttl;
  EXPECT_EQ(Run({"TTL", "nope"}), ":-2\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k1", "50"}), ":1\r\n");
  EXPECT_EQ(Run({"PERSIST", "k1"}), ":1\r\n");
  EXPECT_EQ(Run({"TYPE", "k1"}), "+string\r\n");
  EXPECT_EQ(Run({"DBSIZE"}), ":2\r\n");
  // KEYS sweeps in slices of its own (a deferred reply).
  const std::string keys = Run({"KEYS", "k*"});
  EXPECT_TRUE(keys == "*2\r\n$2\r\nk1\r\n$2\r\nk2\r\n" || keys == "*2\r\n$2\r\nk2\r\n$2\r\nk1\r\n")
      << keys;
  EXPECT_EQ(Run({"KEYS", "z*"}), "*0\r\n");
  EXPECT_EQ(Run({"DEL", "k1", "nope"}), ":1\r\n");
  EXPECT_EQ(Run({"SCAN", "0", "COUNT", "100"}), "*2\r\n$1\r\n0\r\n*1\r\n$2\r\nk2\r\n");
  EXPECT_EQ(Run({"FLUSHDB"}), kOk);
  EXPECT_EQ(Run({"DBSIZE"}), ":0\r\n");
}

TEST_F(RespFamilyTest, Hashes) {
  EXPECT_EQ(Run({"HSET", "h", "f1", "a", "f2", "b"}), ":2\r\n");
  EXPECT_EQ(Run({"HGET", "h", "f1"}), "$1\r\na\r\n");
  EXPECT_EQ(Run({"HLEN", "h"}), ":2\r\n");
  EXPECT_EQ(Run({"HINCRBY", "h", "n", "5"}), ":5\r\n");
  EXPECT_EQ(Run({"HMGET", "h", "f2", "none"}), "*2\r\n$1\r\nb\r\n$-1\r\n");
  EXPECT_EQ(Run({"HDEL", "h", "f1", "none"}), ":1\r\n");
  EXPECT_EQ(Run({"HEXISTS", "h", "f1"}), ":0\r\n");
  EXPECT_EQ(Run({"SET", "s", "v"}), kOk);
  EXPECT_EQ(Run({"HGET", "s", "f"}),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

TEST_F(RespFamilyTest, Lists) {
  EXPECT_EQ(Run({"RPUSH", "l", "a", "b", "c"}), ":3\r\n");
  EXPECT_EQ(Run({"LPUSH", "l", "z"}), ":4\r\n");
  EXPECT_EQ(Run({"LRANGE", "l", "0", "-1"}),
            "*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
  EXPECT_EQ(Run({"LPOP", "l"}), "$1\r\nz\r\n");
  EXPECT_EQ(Run({"RPOP", "l", "2"}), "*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
  EXPECT_EQ(Run({"LLEN", "l"}), ":1\r\n");
  EXPECT_EQ(Run({"LINDEX", "l", "0"}), "$1\r\na\r\n");
  EXPECT_EQ(Run({"LMOVE", "l", "m", "LEFT", "RIGHT"}), "$1\r\na\r\n");
  EXPECT_EQ(Run({"LLEN", "m"}), ":1\r\n");
  EXPECT_EQ(Run({"LPOP", "l"}), kNil);
}

TEST_F(RespFamilyTest, Sets) {
  EXPECT_EQ(Run({"SADD", "s1", "a", "b", "c"}), ":3\r\n");
  EXPECT_EQ(Run({"SADD", "s2", "b", "c", "d"}), ":3\r\n");
  EXPECT_EQ(Run({"SISMEMBER", "s1", "a"}), ":1\r\n");
  EXPECT_EQ(Run({"SCARD", "s1"}), ":3\r\n");
  EXPECT_EQ(Run({"SINTERSTORE", "dst", "s1", "s2"}), ":2\r\n");
  EXPECT_EQ(Run({"SMISMEMBER", "dst", "b", "a"}), "*2\r\n:1\r\n:0\r\n");
  EXPECT_EQ(Run({"SREM", "s1", "a", "zz"}), ":1\r\n");
  EXPECT_EQ(Run({"SMEMBERS", "nope"}), "*0\r\n");
}

TEST_F(RespFamilyTest, SortedSets) {
  EXPECT_EQ(Run({"ZADD", "z", "1", "a", "2", "b", "3", "c"}), ":3\r\n");
  EXPECT_EQ(Run({"ZSCORE", "z", "b"}), "$1\r\n2\r\n");
  EXPECT_EQ(Run({"ZINCRBY", "z", "10", "a"}), "$2\r\n11\r\n");
  EXPECT_EQ(Run({"ZRANGE", "z", "0", "-1"}), "*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n");
  EXPECT_EQ(Run({"ZRANGE", "z", "0", "0", "WITHSCORES"}), "*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
  EXPECT_EQ(Run({"ZRANK", "z", "a"}), ":2\r\n");
  EXPECT_EQ(Run({"ZCOUNT", "z", "2", "3"}), ":2\r\n");
  EXPECT_EQ(Run({"ZREM", "z", "c"}), ":1\r\n");
  EXPECT_EQ(Run({"ZCARD", "z"}), ":2\r\n");
  EXPECT_EQ(Run({"ZADD", "z", "x", "a"}), "-ERR value is not a valid float\r\n");
}

TEST_F(RespFamilyTest, ConnectionAndServer) {
  EXPECT_EQ(Run({"PING"}), "+PONG\r\n");
  EXPECT_EQ(Run({"ECHO", "hi"}), "$2\r\nhi\r\n");
  EXPECT_EQ(Run({"CLIENT", "SETNAME", "me"}), kOk);
  EXPECT_EQ(Run({"CLIENT", "GETNAME"}), "$2\r\nme\r\n");
  EXPECT_EQ(Run({"SELECT", "0"}), kOk);
  EXPECT_EQ(Run({"SELECT", "1"}), "-ERR DB index is out of range\r\n");
  const std::string hello = Run({"HELLO", "3"});
  EXPECT_EQ(hello.substr(0, 1), "%") << hello;  // a RESP3 map
  EXPECT_EQ(state_.proto, 3);
  EXPECT_EQ(Run({"HGETALL", "none"}), "%0\r\n");  // RESP3 from now on
  EXPECT_EQ(Run({"NOSUCHCOMMAND"}).substr(0, 20), "-ERR unknown command");
  EXPECT_NE(Run({"INFO", "keyspace"}).find("# Keyspace"), std::string::npos);
}

TEST_F(RespFamilyTest, PubSub) {
  EXPECT_EQ(Run({"PUBLISH", "ch", "hello"}), ":0\r\n");
  EXPECT_EQ(Run({"SUBSCRIBE", "ch", "other"}),
            "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
            "*3\r\n$9\r\nsubscribe\r\n$5\r\nother\r\n:2\r\n");
  EXPECT_TRUE(port_.IsSubscribed("ch", false));
  EXPECT_EQ(Run({"UNSUBSCRIBE", "ch"}), "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:1\r\n");
  EXPECT_EQ(Run({"PUBSUB", "NUMPAT"}), ":0\r\n");
}

TEST_F(RespFamilyTest, PermissionsByDeclaredAccessClass) {
  EXPECT_EQ(Run({"SET", "a:1", "v"}), kOk);
  UseToken(auth::CacheRole::kReadOnly, "a:");
  EXPECT_EQ(Run({"GET", "a:1"}), "$1\r\nv\r\n");
  EXPECT_EQ(Run({"GET", "b:1"}), "-NOPERM this token has no permission to run 'get' on this key\r\n");
  EXPECT_EQ(Run({"SET", "a:1", "w"}), "-NOPERM this token has no permission to run 'set' on this key\r\n");
  EXPECT_EQ(Run({"DBSIZE"}).substr(0, 7), "-NOPERM");  // cache-wide: the whole cache
  EXPECT_EQ(Run({"KEYS", "*"}).substr(0, 7), "-NOPERM");
  UseToken(auth::CacheRole::kWriteOnly);
  EXPECT_EQ(Run({"SET", "k", "v"}), kOk);  // a blind write
  EXPECT_EQ(Run({"SET", "k", "v", "GET"}).substr(0, 7), "-NOPERM");  // SET ... GET reads
  EXPECT_EQ(Run({"INCR", "n"}).substr(0, 7), "-NOPERM");  // reads what is there
}

TEST_F(RespFamilyTest, LimitsThroughThePipeline) {
  ASSERT_TRUE(node_->registry
                  ->UpdateCacheLimits(node_->tenant, "c",
                                      *control::ParseLimits("max_item_bytes=8,max_ttl_seconds=60",
                                                            true))
                  .ok());
  EXPECT_EQ(Run({"SET", "k", "12345678"}), kOk);
  EXPECT_EQ(Run({"SET", "k", "123456789"}).substr(0, 30), "-ERR Item size limit exceeded:");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "61"}).substr(0, 18), "-ERR TTL too long:");
  EXPECT_EQ(Run({"GET", "k"}), "$8\r\n12345678\r\n");  // nothing of a refused command ran
  const auto& refusals = state_.cache_state->usage.refusals;
  EXPECT_EQ(refusals[static_cast<size_t>(gateway::Refusal::kItemSize)].load(), 1u);
  EXPECT_EQ(refusals[static_cast<size_t>(gateway::Refusal::kTtl)].load(), 1u);
}

}  // namespace
}  // namespace cellar::resp
