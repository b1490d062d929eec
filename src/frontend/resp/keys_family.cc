// Generic key commands: DEL, EXISTS, TYPE, the TTL family, SCAN, RANDOMKEY.
#include <algorithm>
#include <memory>
#include <random>

#include <boost/asio/post.hpp>

#include "common/numbers.h"
#include "frontend/resp/commands.h"
#include "gateway/reply_memory.h"
#include "gateway/pipeline.h"

namespace cellar::resp {
namespace {

using gateway::Call;

}  // namespace

bool CheckPattern(CommandContext& ctx, std::string_view pattern) {
  if (pattern.size() <= kMaxPatternBytes) return true;
  WriteError(ctx.local, RespError::kPatternTooLong, pattern.size(), kMaxPatternBytes);
  return false;
}

namespace {

// The shard (of the fleet: Gateway::CacheWideShards) in the low bits of a SCAN cursor; the
// rest is that shard's bucket cursor.
constexpr uint64_t kShardBits = 12;  // up to 4096 shards over the fleet

void PrepareEachKey(CommandContext& ctx, api::Op op) {
  for (size_t i = 1; i < ctx.args.size(); ++i) ctx.Add(op, ctx.args[i]);
}
void PrepareDel(CommandContext& ctx) { PrepareEachKey(ctx, api::Op::kDelete); }
void PrepareExists(CommandContext& ctx) { PrepareEachKey(ctx, api::Op::kExists); }

void PrepareType(CommandContext& ctx) { ctx.Add(api::Op::kType, ctx.args[1]); }
void FinishType(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (!calls[0].reply.status.ok()) return WriteStatus(w, calls[0].reply.status);
  w.Simple(calls[0].reply.value);
}

// EXPIRE key n [NX|XX|GT|LT] and its relatives. unit_ms: 1000 or 1; absolute: *AT forms.
void PrepareExpireGeneric(CommandContext& ctx, int64_t unit_ms, bool absolute) {
  const auto& a = ctx.args;
  auto n = ParseInt64(a[2]);
  if (!n) return WriteError(ctx.local, RespError::kNotInteger);
  uint32_t flags = 0;
  for (size_t i = 3; i < a.size(); ++i) {
    if (EqualsIgnoreCase(a[i], "nx")) {
      flags |= api::kNx;
    } else if (EqualsIgnoreCase(a[i], "xx")) {
      flags |= api::kXx;
    } else if (EqualsIgnoreCase(a[i], "gt")) {
      flags |= api::kGt;
    } else if (EqualsIgnoreCase(a[i], "lt")) {
      flags |= api::kLt;
    } else {
      return WriteError(ctx.local, RespError::kUnsupportedOption, a[i]);
    }
  }
  if ((flags & api::kNx) && (flags & (api::kXx | api::kGt | api::kLt))) {
    return WriteError(ctx.local, RespError::kExpireNxAndOthers);
  }
  if ((flags & api::kGt) && (flags & api::kLt)) {
    return WriteError(ctx.local, RespError::kExpireGtAndLt);
  }
  int64_t at;
  if (__builtin_mul_overflow(*n, unit_ms, &at) ||
      (!absolute && __builtin_add_overflow(at, ctx.now_ms, &at))) {
    return WriteError(ctx.local, RespError::kInvalidExpire, Lower(a[0]));
  }
  api::Request& r = ctx.Add(api::Op::kExpire, a[1]);
  r.expire_at = at <= 0 ? 1 : at;  // 0 means "no TTL" in the engine; any past time deletes
  r.flags = flags;
}
void PrepareExpire(CommandContext& ctx) { PrepareExpireGeneric(ctx, 1000, false); }
void PreparePExpire(CommandContext& ctx) { PrepareExpireGeneric(ctx, 1, false); }
void PrepareExpireAt(CommandContext& ctx) { PrepareExpireGeneric(ctx, 1000, true); }
void PreparePExpireAt(CommandContext& ctx) { PrepareExpireGeneric(ctx, 1, true); }

void PreparePersist(CommandContext& ctx) { ctx.Add(api::Op::kPersist, ctx.args[1]); }

void PrepareTtl(CommandContext& ctx) { ctx.Add(api::Op::kTtl, ctx.args[1]); }
void FinishTtlSeconds(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  int64_t v = c.reply.integer;
  w.Int(v < 0 ? v : (v + 500) / 1000);
}
void PrepareExpireTime(CommandContext& ctx) { ctx.Add(api::Op::kExpireTime, ctx.args[1]); }
void FinishExpireTimeSeconds(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  int64_t v = c.reply.integer;
  w.Int(v < 0 ? v : v / 1000);
}

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]
void PrepareScan(CommandContext& ctx) {
  const auto& a = ctx.args;
  uint64_t cursor = 0;
  for (char ch : a[1]) {
    if (ch < '0' || ch > '9' || cursor > (UINT64_MAX - 9) / 10) {
      return WriteError(ctx.local, RespError::kCursor);
    }
    cursor = cursor * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (a[1].empty()) return WriteError(ctx.local, RespError::kCursor);
  std::string_view pattern;
  int64_t count = 10;
  bool type_matches = true;
  for (size_t i = 2; i < a.size(); ++i) {
    if (i + 1 >= a.size()) return WriteError(ctx.local, RespError::kSyntax);
    if (EqualsIgnoreCase(a[i], "match")) {
      pattern = a[++i];
      if (!CheckPattern(ctx, pattern)) return;
      if (pattern == "*") pattern = {};
    } else if (EqualsIgnoreCase(a[i], "count")) {
      auto c = ParseInt64(a[++i]);
      if (!c) return WriteError(ctx.local, RespError::kNotInteger);
      if (*c < 1) return WriteError(ctx.local, RespError::kSyntax);
      count = std::min<int64_t>(*c, 100000);
    } else if (EqualsIgnoreCase(a[i], "type")) {
      type_matches = EqualsIgnoreCase(a[++i], "string");
    } else {
      return WriteError(ctx.local, RespError::kSyntax);
    }
  }
  const uint32_t shards = ctx.server.gateway->CacheWideShards(ctx.thread);
  const uint32_t shard = static_cast<uint32_t>(cursor & ((1u << kShardBits) - 1));
  if (shard >= shards || !type_matches) {
    // A cursor from a server with more shards, or a type no key has: the scan is over.
    ctx.local.Array(2);
    ctx.local.Bulk("0");
    ctx.local.Array(0);
    return;
  }
  api::Request& r = ctx.Add(api::Op::kScan);
  r.shard = static_cast<int16_t>(shard);
  r.Set(api::Cursor{static_cast<int64_t>(cursor >> kShardBits), count});
  r.pattern = pattern;
}

void FinishScan(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  const uint32_t shards = ctx.server.gateway->CacheWideShards(ctx.thread);
  uint64_t next = 0;
  uint64_t bucket = static_cast<uint64_t>(c.reply.integer);
  uint32_t shard = static_cast<uint32_t>(c.req.shard);
  if (bucket != 0) {
    next = (bucket << kShardBits) | shard;
  } else if (shard + 1 < shards) {
    next = shard + 1;
  }
  w.Array(2);
  w.Bulk(std::to_string(next));
  w.Array(c.reply.keys.size());
  for (const auto& k : c.reply.keys) w.Bulk(k);
}

// KEYS pattern: every shard swept in slices of bounded work (the engine's kKeys), one gateway
// round per slice, posted to the loop between slices, so a large cache or a costly pattern
// never holds a loop for long: other connections' rounds run in between. The keys gather
// here, up to the reply limit (--max-reply-bytes).
class KeysJob : public std::enable_shared_from_this<KeysJob> {
 public:
  KeysJob(gateway::Gateway* gw, uint32_t thread, uint32_t cache_id, std::string pattern,
          DeferredReply reply)
      : gw_(gw),
        thread_(thread),
        cache_id_(cache_id),
        pattern_(std::move(pattern)),
        reply_(std::move(reply)),
        cursors_(gw->CacheWideShards(thread), 0),
        done_(gw->CacheWideShards(thread), false) {}

  void Next() {
    batch_.calls.clear();
    for (uint32_t s = 0; s < cursors_.size(); ++s) {
      if (done_[s]) continue;
      gateway::Call& c = batch_.calls.emplace_back();
      c.req.op = api::Op::kKeys;
      c.req.cache_id = cache_id_;
      c.req.shard = static_cast<int16_t>(s);
      c.req.Set(api::Cursor{cursors_[s], 0});
      c.req.pattern = pattern_;
    }
    gw_->Submit(thread_, &batch_, [self = shared_from_this()] {
      // Posted: the local shard's slice may have run inline, and the next one must not.
      boost::asio::post(self->gw_->loop(self->thread_), [self] { self->Slice(); });
    });
  }

 private:
  void Slice() {
    for (gateway::Call& c : batch_.calls) {
      if (!c.reply.status.ok()) {
        const Status st = c.reply.status;
        return reply_.Complete([&](ReplyWriter& w) { WriteStatus(w, st); });
      }
      const uint32_t s = static_cast<uint32_t>(c.req.shard);
      for (std::string& k : c.reply.keys) {
        bytes_ += k.size() + 16;
        keys_.push_back(std::move(k));
      }
      cursors_[s] = c.reply.integer;
      done_[s] = c.reply.integer == 0;
    }
    const uint64_t max = gateway::ReplyMemory::Get().options().max_round_bytes;
    if (bytes_ > max) {
      return reply_.Complete(
          [&](ReplyWriter& w) { WriteError(w, RespError::kKeysReplyTooLarge, max); });
    }
    if (std::find(done_.begin(), done_.end(), false) != done_.end()) return Next();
    reply_.Complete([&](ReplyWriter& w) {
      w.Array(keys_.size());
      for (const std::string& k : keys_) w.Bulk(k);
    });
  }

  gateway::Gateway* gw_;
  const uint32_t thread_;
  const uint32_t cache_id_;
  const std::string pattern_;  // the calls borrow it
  DeferredReply reply_;
  gateway::Batch batch_;
  std::vector<int64_t> cursors_;  // per shard: the next slot to visit
  std::vector<bool> done_;
  std::vector<std::string> keys_;
  uint64_t bytes_ = 0;
};

void PrepareKeys(CommandContext& ctx) {
  const std::string_view pattern = ctx.args[1];
  if (!CheckPattern(ctx, pattern)) return;
  // No calls go through the round (the job makes its own), so the pipeline's checks are
  // made here: a grant on the whole cache, and the cache's admission.
  gateway::CacheState* c = ctx.conn.cache_state.get();
  switch (ctx.pipeline->VerifyCacheWide(ctx.conn.principal, ctx.conn.cache_name, c,
                                        auth::Access::kRead, pattern.size())) {
    case gateway::Verdict::kAllowed:
      break;
    case gateway::Verdict::kDenied:
      return WriteError(ctx.local, RespError::kNoPerm, "keys");
    case gateway::Verdict::kRefused:
      return WriteRefusal(ctx.local, *ctx.pipeline, *c, ctx.pipeline->refusal());
  }
  std::make_shared<KeysJob>(ctx.server.gateway, ctx.thread, ctx.conn.cache_id,
                            pattern == "*" ? std::string() : std::string(pattern),
                            ctx.port->Defer())
      ->Next();
}

void PrepareRandomKey(CommandContext& ctx) { ctx.AddPerShard(api::Op::kRandomKey); }
void FinishRandomKey(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  thread_local std::minstd_rand rng(std::random_device{}());
  std::vector<const Call*> found;
  for (const Call& c : calls) {
    if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
    if (c.reply.found) found.push_back(&c);
  }
  if (found.empty()) return w.Null();
  w.Bulk(found[rng() % found.size()]->reply.value);
}

}  // namespace

void RegisterKeysFamily(std::vector<CommandSpec>& t) {
  t.push_back({"del", -2, kWrite | kBlindWrite, PrepareDel, FinishSum, 1, -1, 1, "Deletes keys."});
  t.push_back({"unlink", -2, kWrite | kBlindWrite | kFast, PrepareDel, FinishSum, 1, -1, 1, "Deletes keys."});
  t.push_back({"exists", -2, kReadOnly | kFast, PrepareExists, FinishSum, 1, -1, 1, "Counts existing keys."});
  t.push_back({"type", 2, kReadOnly | kFast, PrepareType, FinishType, 1, 1, 1, "Returns the type of a key."});
  t.push_back({"expire", -3, kWrite | kFast, PrepareExpire, FinishInt, 1, 1, 1, "Sets a TTL in seconds."});
  t.push_back({"pexpire", -3, kWrite | kFast, PreparePExpire, FinishInt, 1, 1, 1, "Sets a TTL in milliseconds."});
  t.push_back({"expireat", -3, kWrite | kFast, PrepareExpireAt, FinishInt, 1, 1, 1, "Sets an expiry as a Unix time in seconds."});
  t.push_back({"pexpireat", -3, kWrite | kFast, PreparePExpireAt, FinishInt, 1, 1, 1, "Sets an expiry as a Unix time in milliseconds."});
  t.push_back({"persist", 2, kWrite | kFast, PreparePersist, FinishInt, 1, 1, 1, "Removes a key's TTL."});
  t.push_back({"ttl", 2, kReadOnly | kFast, PrepareTtl, FinishTtlSeconds, 1, 1, 1, "Returns a key's TTL in seconds."});
  t.push_back({"pttl", 2, kReadOnly | kFast, PrepareTtl, FinishInt, 1, 1, 1, "Returns a key's TTL in milliseconds."});
  t.push_back({"expiretime", 2, kReadOnly | kFast, PrepareExpireTime, FinishExpireTimeSeconds, 1, 1, 1, "Returns a key's expiry as a Unix time in seconds."});
  t.push_back({"pexpiretime", 2, kReadOnly | kFast, PrepareExpireTime, FinishInt, 1, 1, 1, "Returns a key's expiry as a Unix time in milliseconds."});
  t.push_back({"scan", -2, kReadOnly, PrepareScan, FinishScan, 0, 0, 0, "Iterates over the keys of the cache."});
  t.push_back({"keys", 2, kReadOnly | kOwnRounds, PrepareKeys, nullptr, 0, 0, 0, "Returns every key matching a pattern (O(n): prefer SCAN)."});
  t.push_back({"randomkey", 1, kReadOnly, PrepareRandomKey, FinishRandomKey, 0, 0, 0, "Returns a random key of the cache."});
}

}  // namespace cellar::resp
