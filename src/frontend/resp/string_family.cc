// String commands: GET, SET and friends, counters, ranges.
#include <cmath>
#include <optional>

#include "common/numbers.h"
#include "frontend/resp/commands.h"

namespace cellar::resp {
namespace {

using gateway::Call;

void WriteValueOrNull(ReplyWriter& w, const Call& c) {
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  if (c.reply.found) {
    w.Bulk(c.reply.value);
  } else {
    w.Null();
  }
}

void FinishValue(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  WriteValueOrNull(w, calls[0]);
}

void FinishBulkValue(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (!calls[0].reply.status.ok()) return WriteStatus(w, calls[0].reply.status);
  w.Bulk(calls[0].reply.value);
}

bool CheckSize(CommandContext& ctx, std::string_view value) {
  return CheckValueSize(ctx, value.size(), /*element=*/false);
}

// Parses "<n>" as a relative TTL in units of `unit_ms` or an absolute time; returns the
// absolute expiry in ms, or nullopt after writing the error.
std::optional<int64_t> ParseExpiry(CommandContext& ctx, std::string_view arg, int64_t unit_ms,
                                   bool absolute, std::string_view cmd) {
  auto v = ParseInt64(arg);
  if (!v) {
    WriteError(ctx.local, RespError::kNotInteger);
    return std::nullopt;
  }
  int64_t ms;
  if (*v <= 0 || __builtin_mul_overflow(*v, unit_ms, &ms) ||
      (!absolute && __builtin_add_overflow(ms, ctx.now_ms, &ms))) {
    WriteError(ctx.local, RespError::kInvalidExpire, cmd);
    return std::nullopt;
  }
  return ms;
}

// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
void PrepareSet(CommandContext& ctx) {
  const auto& a = ctx.args;
  if (!CheckSize(ctx, a[2])) return;
  uint32_t flags = 0;
  bool have_expiry = false;
  std::string_view expiry_arg;  // parsed after every option, as Redis reports syntax first
  int64_t expiry_unit = 0;
  bool expiry_absolute = false;
  for (size_t i = 3; i < a.size(); ++i) {
    std::string_view o = a[i];
    auto ttl = [&](int64_t unit, bool absolute) -> bool {
      if (have_expiry || (flags & api::kKeepTtl) || i + 1 >= a.size()) {
        WriteError(ctx.local, RespError::kSyntax);
        return false;
      }
      expiry_arg = a[++i];
      expiry_unit = unit;
      expiry_absolute = absolute;
      have_expiry = true;
      flags |= api::kSetTtl;
      return true;
    };
    if (EqualsIgnoreCase(o, "nx") && !(flags & api::kXx)) {
      flags |= api::kNx;
    } else if (EqualsIgnoreCase(o, "xx") && !(flags & api::kNx)) {
      flags |= api::kXx;
    } else if (EqualsIgnoreCase(o, "get")) {
      flags |= api::kGetOld;
    } else if (EqualsIgnoreCase(o, "keepttl") && !have_expiry) {
      flags |= api::kKeepTtl;
    } else if (EqualsIgnoreCase(o, "ex")) {
      if (!ttl(1000, false)) return;
    } else if (EqualsIgnoreCase(o, "px")) {
      if (!ttl(1, false)) return;
    } else if (EqualsIgnoreCase(o, "exat")) {
      if (!ttl(1000, true)) return;
    } else if (EqualsIgnoreCase(o, "pxat")) {
      if (!ttl(1, true)) return;
    } else {
      return WriteError(ctx.local, RespError::kSyntax);
    }
  }
  int64_t expire_at = 0;
  if (have_expiry) {
    auto at = ParseExpiry(ctx, expiry_arg, expiry_unit, expiry_absolute, "set");
    if (!at) return;
    expire_at = *at;
  }
  api::Request& r = ctx.Add(api::Op::kSet, a[1]);
  r.value = a[2];
  r.flags = flags;
  r.expire_at = expire_at;
}

void FinishSet(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  if (c.req.flags & api::kGetOld) {
    if (c.reply.integer) {
      w.Bulk(c.reply.value);
    } else {
      w.Null();
    }
    return;
  }
  if (c.reply.found) {
    w.Simple("OK");
  } else {
    w.Null();
  }
}

void PrepareGet(CommandContext& ctx) { ctx.Add(api::Op::kGet, ctx.args[1]); }

void PrepareSetNx(CommandContext& ctx) {
  if (!CheckSize(ctx, ctx.args[2])) return;
  api::Request& r = ctx.Add(api::Op::kSet, ctx.args[1]);
  r.value = ctx.args[2];
  r.flags = api::kNx;
}

void FinishSetNx(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (!calls[0].reply.status.ok()) return WriteStatus(w, calls[0].reply.status);
  w.Int(calls[0].reply.found ? 1 : 0);
}

void PrepareSetExGeneric(CommandContext& ctx, int64_t unit, std::string_view cmd) {
  if (!CheckSize(ctx, ctx.args[3])) return;
  auto at = ParseExpiry(ctx, ctx.args[2], unit, false, cmd);
  if (!at) return;
  api::Request& r = ctx.Add(api::Op::kSet, ctx.args[1]);
  r.value = ctx.args[3];
  r.flags = api::kSetTtl;
  r.expire_at = *at;
}
void PrepareSetEx(CommandContext& ctx) { PrepareSetExGeneric(ctx, 1000, "setex"); }
void PreparePSetEx(CommandContext& ctx) { PrepareSetExGeneric(ctx, 1, "psetex"); }

void PrepareGetDel(CommandContext& ctx) { ctx.Add(api::Op::kGetDel, ctx.args[1]); }

// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]. Like Redis, a bad expiry value is reported
// only when the key exists (a missing key answers nil first): the request then carries
// kDeferredError and reads without changing the TTL, and Finish reports the error.
enum GetExDeferred : int32_t { kNoDeferred = 0, kDeferredNotInteger = 1, kDeferredInvalid = 2 };

void PrepareGetEx(CommandContext& ctx) {
  const auto& a = ctx.args;
  uint32_t flags = 0;
  int64_t expire_at = 0;
  int32_t deferred = kNoDeferred;
  for (size_t i = 2; i < a.size(); ++i) {
    std::string_view o = a[i];
    if (flags != 0) return WriteError(ctx.local, RespError::kSyntax);
    int64_t unit = 0;
    bool absolute = false;
    if (EqualsIgnoreCase(o, "persist")) {
      flags = api::kPersistTtl;
      continue;
    } else if (EqualsIgnoreCase(o, "ex")) {
      unit = 1000;
    } else if (EqualsIgnoreCase(o, "px")) {
      unit = 1;
    } else if (EqualsIgnoreCase(o, "exat")) {
      unit = 1000;
      absolute = true;
    } else if (EqualsIgnoreCase(o, "pxat")) {
      unit = 1;
      absolute = true;
    } else {
      return WriteError(ctx.local, RespError::kSyntax);
    }
    if (i + 1 >= a.size()) return WriteError(ctx.local, RespError::kSyntax);
    std::string_view arg = a[++i];
    auto n = ParseInt64(arg);
    int64_t ms;
    if (!n) {
      deferred = kDeferredNotInteger;
    } else if (*n <= 0 || __builtin_mul_overflow(*n, unit, &ms) ||
               (!absolute && __builtin_add_overflow(ms, ctx.now_ms, &ms))) {
      deferred = kDeferredInvalid;
    } else {
      expire_at = ms;
    }
    flags = api::kSetTtl;
  }
  api::Request& r = ctx.Add(api::Op::kGetEx, a[1]);
  r.flags = deferred != kNoDeferred ? 0 : flags;
  r.expire_at = expire_at;
  r.note = deferred;
}

void FinishGetEx(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (c.reply.status.ok() && c.reply.found && c.req.note == kDeferredNotInteger) {
    return WriteError(w, RespError::kNotInteger);
  }
  if (c.reply.status.ok() && c.reply.found && c.req.note == kDeferredInvalid) {
    return WriteError(w, RespError::kInvalidExpire, "getex");
  }
  WriteValueOrNull(w, c);
}

void PrepareGetSet(CommandContext& ctx) {
  if (!CheckSize(ctx, ctx.args[2])) return;
  api::Request& r = ctx.Add(api::Op::kSet, ctx.args[1]);
  r.value = ctx.args[2];
  r.flags = api::kGetOld;
}

void PrepareMGet(CommandContext& ctx) {
  for (size_t i = 1; i < ctx.args.size(); ++i) ctx.Add(api::Op::kGet, ctx.args[i]);
}

void FinishMGet(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  // Errors first: once the array header is out, only elements may follow.
  for (const Call& c : calls) {
    if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  }
  w.Array(calls.size());
  for (const Call& c : calls) {
    if (c.reply.found) {
      w.Bulk(c.reply.value);
    } else {
      w.Null();
    }
  }
}

void PrepareMSet(CommandContext& ctx) {
  const auto& a = ctx.args;
  if ((a.size() - 1) % 2 != 0) return WriteError(ctx.local, RespError::kWrongArity, "mset");
  for (size_t i = 2; i < a.size(); i += 2) {
    if (!CheckSize(ctx, a[i])) return;
  }
  for (size_t i = 1; i < a.size(); i += 2) {
    api::Request& r = ctx.Add(api::Op::kSet, a[i]);
    r.value = a[i + 1];
  }
}

// MSETNX, phase one: does any key exist? Phase two (the sets) is run by the connection when
// the answer is no; see Connection::FinishFrom. Atomic within one shard; across shards a
// concurrent writer may slip between the phases.
void PrepareMSetNx(CommandContext& ctx) {
  const auto& a = ctx.args;
  if ((a.size() - 1) % 2 != 0) return WriteError(ctx.local, RespError::kWrongArity, "msetnx");
  for (size_t i = 2; i < a.size(); i += 2) {
    if (!CheckSize(ctx, a[i])) return;
  }
  for (size_t i = 1; i < a.size(); i += 2) ctx.Add(api::Op::kExists, a[i]);
}

void PrepareIncrGeneric(CommandContext& ctx, int64_t delta) {
  ctx.Add(api::Op::kIncrBy, ctx.args[1]).Set(api::Delta{delta});
}
void PrepareIncr(CommandContext& ctx) { PrepareIncrGeneric(ctx, 1); }
void PrepareDecr(CommandContext& ctx) { PrepareIncrGeneric(ctx, -1); }
void PrepareIncrBy(CommandContext& ctx) {
  auto d = ParseInt64(ctx.args[2]);
  if (!d) return WriteError(ctx.local, RespError::kNotInteger);
  PrepareIncrGeneric(ctx, *d);
}
void PrepareDecrBy(CommandContext& ctx) {
  auto d = ParseInt64(ctx.args[2]);
  if (!d || *d == INT64_MIN) {
    if (d) return WriteError(ctx.local, RespError::kDecrementOverflow);
    return WriteError(ctx.local, RespError::kNotInteger);
  }
  PrepareIncrGeneric(ctx, -*d);
}

void PrepareIncrByFloat(CommandContext& ctx) {
  auto d = ParseLongDouble(ctx.args[2]);
  if (!d) return WriteError(ctx.local, RespError::kNotFloat);
  ctx.Add(api::Op::kIncrByFloat, ctx.args[1]).Set(api::FloatDelta{*d});
}

void PrepareAppend(CommandContext& ctx) {
  if (!CheckSize(ctx, ctx.args[2])) return;
  ctx.Add(api::Op::kAppend, ctx.args[1]).value = ctx.args[2];
}

void PrepareStrlen(CommandContext& ctx) { ctx.Add(api::Op::kStrlen, ctx.args[1]); }

void PrepareGetRange(CommandContext& ctx) {
  auto s = ParseInt64(ctx.args[2]);
  auto e = ParseInt64(ctx.args[3]);
  if (!s || !e) return WriteError(ctx.local, RespError::kNotInteger);
  ctx.Add(api::Op::kGetRange, ctx.args[1]).Set(api::IndexRange{*s, *e});
}

void PrepareSetRange(CommandContext& ctx) {
  auto off = ParseInt64(ctx.args[2]);
  if (!off) return WriteError(ctx.local, RespError::kNotInteger);
  if (*off < 0) return WriteError(ctx.local, RespError::kOffsetOutOfRange);
  // An empty value writes nothing, whatever the offset: the engine answers the length.
  if (!ctx.args[3].empty() &&
      static_cast<uint64_t>(*off) + ctx.args[3].size() >
          CacheLimit(ctx.conn, control::LimitId::kMaxItemBytes, ctx.server.max_item_bytes)) {
    return WriteError(ctx.local, RespError::kStringTooLong);
  }
  api::Request& r = ctx.Add(api::Op::kSetRange, ctx.args[1]);
  r.Set(api::Position{*off});
  r.value = ctx.args[3];
}

bool FollowupMSetNx(CommandContext& ctx, std::span<Call> first_round) {
  for (const Call& c : first_round) {
    if (!c.reply.status.ok() || c.reply.integer != 0) return false;
  }
  const auto& a = ctx.args;
  for (size_t i = 1; i < a.size(); i += 2) {
    api::Request& r = ctx.Add(api::Op::kSet, a[i]);
    r.value = a[i + 1];
  }
  return true;
}

void FinishMSetNx(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  for (const Call& c : calls) {
    if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  }
  w.Int(calls[0].req.op == api::Op::kSet ? 1 : 0);
}

// SET is a blind write unless an option makes it read or depend on what is there (NX, XX,
// GET, KEEPTTL): then a write-only token may not make it.
auth::Access SetAccess(std::span<const std::string_view> args) {
  for (size_t i = 3; i < args.size(); ++i) {
    if (EqualsIgnoreCase(args[i], "nx") || EqualsIgnoreCase(args[i], "xx") ||
        EqualsIgnoreCase(args[i], "get") || EqualsIgnoreCase(args[i], "keepttl")) {
      return auth::Access::kConditionalWrite;
    }
  }
  return auth::Access::kWrite;
}

}  // namespace

void RegisterStringFamily(std::vector<CommandSpec>& t) {
  t.push_back({"get", 2, kReadOnly | kFast, PrepareGet, FinishValue, 1, 1, 1, "Returns the string value of a key."});
  t.push_back({"set", -3, kWrite | kBlindWrite, PrepareSet, FinishSet, 1, 1, 1, "Sets the string value of a key, with options.", nullptr, SetAccess});
  t.push_back({"setnx", 3, kWrite | kFast, PrepareSetNx, FinishSetNx, 1, 1, 1, "Sets a key only if it does not exist."});
  t.push_back({"setex", 4, kWrite | kBlindWrite, PrepareSetEx, FinishOk, 1, 1, 1, "Sets a key with a TTL in seconds."});
  t.push_back({"psetex", 4, kWrite | kBlindWrite, PreparePSetEx, FinishOk, 1, 1, 1, "Sets a key with a TTL in milliseconds."});
  t.push_back({"getdel", 2, kWrite | kFast, PrepareGetDel, FinishValue, 1, 1, 1, "Returns a key's value and deletes it."});
  t.push_back({"getex", -2, kWrite | kFast, PrepareGetEx, FinishGetEx, 1, 1, 1, "Returns a key's value and changes its TTL."});
  t.push_back({"getset", 3, kWrite | kFast, PrepareGetSet, FinishSet, 1, 1, 1, "Sets a key and returns the old value."});
  t.push_back({"mget", -2, kReadOnly | kFast, PrepareMGet, FinishMGet, 1, -1, 1, "Returns the values of many keys."});
  t.push_back({"mset", -3, kWrite | kBlindWrite, PrepareMSet, FinishOk, 1, -1, 2, "Sets many keys."});
  t.push_back({"msetnx", -3, kWrite | kEndsRound, PrepareMSetNx, FinishMSetNx, 1, -1, 2, "Sets many keys if none exists.", FollowupMSetNx});
  t.push_back({"incr", 2, kWrite | kFast, PrepareIncr, FinishInt, 1, 1, 1, "Increments an integer value by one."});
  t.push_back({"decr", 2, kWrite | kFast, PrepareDecr, FinishInt, 1, 1, 1, "Decrements an integer value by one."});
  t.push_back({"incrby", 3, kWrite | kFast, PrepareIncrBy, FinishInt, 1, 1, 1, "Increments an integer value."});
  t.push_back({"decrby", 3, kWrite | kFast, PrepareDecrBy, FinishInt, 1, 1, 1, "Decrements an integer value."});
  t.push_back({"incrbyfloat", 3, kWrite | kFast, PrepareIncrByFloat, FinishBulkValue, 1, 1, 1, "Increments a floating point value."});
  t.push_back({"append", 3, kWrite | kFast, PrepareAppend, FinishInt, 1, 1, 1, "Appends to a string value."});
  t.push_back({"strlen", 2, kReadOnly | kFast, PrepareStrlen, FinishInt, 1, 1, 1, "Returns the length of a value."});
  t.push_back({"getrange", 4, kReadOnly, PrepareGetRange, FinishBulkValue, 1, 1, 1, "Returns a substring of a value."});
  t.push_back({"setrange", 4, kWrite, PrepareSetRange, FinishInt, 1, 1, 1, "Overwrites part of a value."});
}

}  // namespace cellar::resp
