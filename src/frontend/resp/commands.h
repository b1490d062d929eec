// The RESP command table: one declarative entry per command (name, arity, flags, handlers),
// registered by one file per command family.
//
// A command runs in two steps on the connection's thread:
//   Prepare: parse and check the arguments; either write a reply at once (connection
//            commands, argument errors) or add calls for the gateway to run on the shards.
//   Finish:  once every call of the round has its reply, write the command's reply from them.
// Pub/sub commands may instead make the round wait for something that is not a gateway call
// (a subscription becoming ready, the loops' PUBSUB counts): see ConnectionPort. Such a
// command ends its round, so a round waits for at most one of them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/arena.h"
#include "frontend/resp/errors.h"
#include "frontend/resp/writer.h"
#include "gateway/gateway.h"
#include "gateway/pipeline.h"
#include "topics/topics.h"

namespace cellar::topics {
class Topics;
}

namespace cellar::resp {

// Per-connection state that commands read and change. Owned by the connection's thread.
struct ConnState {
  uint64_t id = 0;
  int proto = 2;
  bool authed = false;
  uint32_t cache_id = 0;
  std::string cache_name;
  std::string client_name;
  std::string lib_name, lib_ver;
  std::string peer;       // "ip:port"
  int64_t created_ms = 0;
  bool close_after_reply = false;  // QUIT
  gateway::Principal principal;    // who AUTH said this is (checked on every command)
  uint64_t commands = 0;
  // The bound cache's limits, admission buckets and usage (found again when cache_id changes).
  std::shared_ptr<gateway::CacheState> cache_state;
};

struct ServerContext {
  gateway::Gateway* gateway = nullptr;
  topics::Topics* topics = nullptr;
  uint64_t max_item_bytes = 0;
  int64_t start_ms = 0;
  uint16_t resp_port = 0;
  uint32_t threads = 0;
  // Large commands being received, every connection together (see RespServer).
  uint64_t max_buffered_request_bytes = UINT64_MAX;
  // Messages' tails in RESP: topics->RegisterEncoding(EncodeTopicTail) (topic_pushes.h).
  topics::EncodingId topic_encoding = 0;
};

struct CommandSpec;
class CommandContext;

// A reply that a command writes after its Prepare (ConnectionPort::Defer). Holds its
// connection alive until Complete, which must be called exactly once, on the connection's
// thread.
class DeferredReply {
 public:
  class Target {
   public:
    virtual ~Target() = default;
    virtual std::string& DeferredBuffer() = 0;
    virtual void DeferredDone() = 0;
  };
  DeferredReply(std::shared_ptr<Target> target, int proto)
      : target_(std::move(target)), proto_(proto) {}

  template <typename Fn>  // void(ReplyWriter&)
  void Complete(Fn&& write) {
    ReplyWriter w(&target_->DeferredBuffer(), proto_);
    write(w);
    std::shared_ptr<Target> t = std::move(target_);
    t->DeferredDone();
  }

 private:
  std::shared_ptr<Target> target_;
  int proto_;
};

// What commands may ask of their connection beyond ConnState: its subscriptions (the
// connection is the topics sink that receives them) and replies that come later.
// Implemented by Connection; every call on the connection's thread, during a Prepare.
class ConnectionPort {
 public:
  virtual ~ConnectionPort() = default;
  // Channel and pattern subscriptions, as Redis counts them in confirmations.
  virtual size_t SubscriptionCount() const = 0;
  virtual bool IsSubscribed(std::string_view name, bool pattern) const = 0;
  // Starts a subscription to a channel (pattern: a glob over the cache's channels). The round
  // does not finish until it is ready, so a confirmation the client sees means later
  // publishes reach it.
  virtual Status AddSubscription(std::string_view name, bool pattern) = 0;
  // Ends one; false if there was none.
  virtual bool RemoveSubscription(std::string_view name, bool pattern) = 0;
  // Names subscribed, oldest first.
  virtual std::vector<std::string> SubscriptionNames(bool pattern) const = 0;
  // Ends every subscription without a reply (RESET).
  virtual void DropSubscriptions() = 0;
  // The current command answers later through the handle; the round waits for it.
  virtual DeferredReply Defer() = 0;
};

// The bound cache's value of a size limit (0 there: unlimited); `fallback` before binding.
// Glob patterns (KEYS, SCAN/HSCAN/SSCAN/ZSCAN MATCH, PUBSUB CHANNELS) are at most this long,
// as topic names and PSUBSCRIBE patterns are (topics::Options::max_name_bytes): matching is
// linear in the text, but each key still costs up to the pattern's length / 64 per byte.
inline constexpr size_t kMaxPatternBytes = 4096;
// False after writing the refusal for a pattern over kMaxPatternBytes.
bool CheckPattern(CommandContext& ctx, std::string_view pattern);

inline uint64_t CacheLimit(const ConnState& conn, control::LimitId id, uint64_t fallback) {
  if (conn.cache_state == nullptr) return fallback;
  const uint64_t v = conn.cache_state->limit(id);
  return v == 0 ? UINT64_MAX : v;
}

class CommandContext {
 public:
  CommandContext(ConnState& conn, ServerContext& server, uint32_t thread, int64_t now_ms,
                 std::vector<gateway::Call>& calls, ReplyWriter& local, ScratchArena& scratch)
      : conn(conn), server(server), thread(thread), now_ms(now_ms), local(local),
        scratch(scratch), calls_(calls) {}

  ConnState& conn;
  ServerContext& server;
  const uint32_t thread;
  const int64_t now_ms;
  std::span<const std::string_view> args;  // args[0] is the command name
  const CommandSpec* spec = nullptr;
  ConnectionPort* port = nullptr;  // null in a Finish or a follow-up
  gateway::Pipeline* pipeline = nullptr;  // the connection's (gateway/pipeline.h)

  // Adds a call for the bound cache.
  api::Request& Add(api::Op op, std::string_view key = {}) {
    calls_.emplace_back();
    api::Request& r = calls_.back().req;
    r.op = op;
    r.cache_id = conn.cache_id;
    r.key = key;
    return r;
  }
  // Adds one keyless call per shard (SCAN, DBSIZE, FLUSHDB, INFO).
  void AddPerShard(api::Op op) {
    const uint32_t shards = server.gateway->CacheWideShards(thread);  // on a fleet: every node's
    for (uint32_t s = 0; s < shards; ++s) Add(op).shard = static_cast<int16_t>(s);
  }
  // For replies written during Prepare.
  ReplyWriter& local;
  // Arrays a Request borrows (args, scores): stable until the round's replies are written.
  // `args` itself is NOT stable storage for a Request (later commands of the round may move
  // it); a contiguous run of it must be copied here: scratch.Copy(args.subspan(2)).
  ScratchArena& scratch;

 private:
  std::vector<gateway::Call>& calls_;
};

using PrepareFn = void (*)(CommandContext& ctx);
using FinishFn = void (*)(CommandContext& ctx, std::span<gateway::Call> calls, ReplyWriter& w);
// A second round for commands that must look before they write (MSETNX): given the first
// round's calls, adds the second round's calls and returns true, or returns false to finish
// with the first round's calls. Only for commands flagged kEndsRound.
using FollowupFn = bool (*)(CommandContext& ctx, std::span<gateway::Call> first_round);

enum CommandFlag : uint32_t {
  kWrite = 1 << 0,
  kReadOnly = 1 << 1,
  kNoAuth = 1 << 2,      // allowed before AUTH
  kConnection = 1 << 3,  // touches only the connection
  kFast = 1 << 4,
  kAdmin = 1 << 5,
  kEndsRound = 1 << 6,   // nothing after it in the pipeline is prepared until it is done
  kPubSubContext = 1 << 7,  // allowed in a RESP2 connection that has subscriptions
  kPublishCalls = 1 << 8,   // its calls' keys are channels, checked for publishing
  kOwnRounds = 1 << 9,      // runs gateway rounds of its own and answers by a deferred reply
                            // (KEYS: a sweep in slices); it checks permissions itself
  kBlindWrite = 1 << 10,    // with kWrite: neither reads nor depends on what is there, so a
                            // write-only token may make it (SET, MSET, DEL...)
};

// A command whose options change what it needs of a token (SET ... GET reads).
using AccessFn = auth::Access (*)(std::span<const std::string_view> args);

struct CommandSpec {
  std::string_view name;  // lower case
  int arity;              // Redis convention: n = exactly n args, -n = at least n
  uint32_t flags;
  PrepareFn prepare;
  FinishFn finish;        // null for commands that always reply in Prepare
  int first_key, last_key, key_step;  // for COMMAND INFO
  std::string_view summary;
  FollowupFn followup = nullptr;
  // What the command needs of a token, when its options decide (else the flags do: Access).
  AccessFn access_of = nullptr;
  uint16_t id = 0;  // position in AllCommands(), set by the table; indexes per-command metrics

  // The access class a token must allow for every key the command's calls touch (auth.h):
  // publishes; reads (no kWrite); blind writes (kBlindWrite), which a write-only token may
  // make; and writes that read or depend on what is there (conditional writes).
  auth::Access Access(std::span<const std::string_view> args) const {
    if (access_of != nullptr) return access_of(args);
    if (flags & kPublishCalls) return auth::Access::kPublish;
    if (!(flags & kWrite)) return auth::Access::kRead;
    return (flags & kBlindWrite) ? auth::Access::kWrite : auth::Access::kConditionalWrite;
  }
};

// Looks a command up by name, case-insensitively. Null if unknown.
const CommandSpec* FindCommand(std::string_view name);
const std::vector<const CommandSpec*>& AllCommands();

// Family registration (one per family file); called once by the table.
void RegisterConnectionFamily(std::vector<CommandSpec>& table);
void RegisterStringFamily(std::vector<CommandSpec>& table);
void RegisterKeysFamily(std::vector<CommandSpec>& table);
void RegisterServerFamily(std::vector<CommandSpec>& table);
void RegisterHashFamily(std::vector<CommandSpec>& table);
void RegisterListFamily(std::vector<CommandSpec>& table);
void RegisterSetFamily(std::vector<CommandSpec>& table);
void RegisterZSetFamily(std::vector<CommandSpec>& table);
void RegisterPubSubFamily(std::vector<CommandSpec>& table);

// Finish handlers shared by several families. Each writes the first error status among the
// calls if there is one, else:
void FinishInt(CommandContext& ctx, std::span<gateway::Call> calls, ReplyWriter& w);  // calls[0]'s integer
void FinishSum(CommandContext& ctx, std::span<gateway::Call> calls, ReplyWriter& w);  // sum of integers
void FinishOk(CommandContext& ctx, std::span<gateway::Call> calls, ReplyWriter& w);   // +OK

// Shared argument helpers.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
std::string Lower(std::string_view s);

// Whether a value (element: a collection element) fits the bound cache's size limit; if not,
// writes the error (naming the limit) and counts the refusal.
bool CheckValueSize(CommandContext& ctx, size_t size, bool element);

}  // namespace cellar::resp
