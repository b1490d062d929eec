// List commands: pushes and pops, ranges, LSET/LREM/LTRIM/LINSERT, LPOS, and LMOVE (a
// two-round command, since its two keys may live on different shards).
// Argument checks come in the order Redis makes them, so errors match redis-server 7: where
// Redis looks the key up before it parses an argument (LINDEX, LSET), the command asks the
// engine about the key (kLLen) and Finish reports the deferred error.
#include <algorithm>
#include <cstdint>
#include <optional>

#include "common/numbers.h"
#include "frontend/resp/commands.h"

namespace cellar::resp {
namespace {

using gateway::Call;

bool CheckSize(CommandContext& ctx, std::string_view value) {
  return CheckValueSize(ctx, value.size(), /*element=*/true);
}

// ---- Pushes -------------------------------------------------------------------------------

void PreparePushGeneric(CommandContext& ctx, api::Op op, uint32_t flags) {
  for (size_t i = 2; i < ctx.args.size(); ++i) {
    if (!CheckSize(ctx, ctx.args[i])) return;
  }
  api::Request& r = ctx.Add(op, ctx.args[1]);
  r.args = ctx.scratch.Copy(ctx.args.subspan(2));
  r.flags = flags;  // without kKeepOrder: LPUSH a b c -> c b a, as Redis
}
void PrepareLPush(CommandContext& ctx) { PreparePushGeneric(ctx, api::Op::kLPush, 0); }
void PrepareRPush(CommandContext& ctx) { PreparePushGeneric(ctx, api::Op::kRPush, 0); }
void PrepareLPushX(CommandContext& ctx) { PreparePushGeneric(ctx, api::Op::kLPush, api::kXx); }
void PrepareRPushX(CommandContext& ctx) { PreparePushGeneric(ctx, api::Op::kRPush, api::kXx); }

// ---- Pops ---------------------------------------------------------------------------------

// LPOP/RPOP key [count]: no count answers a bulk or nil; a count answers an array, or a nil
// array when the key is missing. The count is checked before the key.
void PreparePopGeneric(CommandContext& ctx, api::Op op) {
  const auto& a = ctx.args;
  if (a.size() > 3) return WriteError(ctx.local, RespError::kWrongArity, ctx.spec->name);
  int64_t count = -1;
  if (a.size() == 3) {
    auto n = ParseInt64(a[2]);
    if (!n || *n < 0) return WriteError(ctx.local, RespError::kMustBePositive);
    count = *n;
  }
  ctx.Add(op, a[1]).Set(api::Count{count});
}
void PrepareLPop(CommandContext& ctx) { PreparePopGeneric(ctx, api::Op::kLPop); }
void PrepareRPop(CommandContext& ctx) { PreparePopGeneric(ctx, api::Op::kRPop); }

void FinishPop(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  if (c.req.Get<api::Count>().count < 0) {
    if (c.reply.found && !c.reply.items.empty()) {
      w.Bulk(c.reply.items[0]);
    } else {
      w.Null();
    }
    return;
  }
  if (!c.reply.found) return w.NullArray();
  w.Array(c.reply.items.size());
  for (const auto& item : c.reply.items) w.Bulk(item);
}

// ---- Reads --------------------------------------------------------------------------------

void PrepareLRange(CommandContext& ctx) {
  auto start = ParseInt64(ctx.args[2]);
  auto stop = ParseInt64(ctx.args[3]);
  if (!start || !stop) return WriteError(ctx.local, RespError::kNotInteger);
  ctx.Add(api::Op::kLRange, ctx.args[1]).Set(api::IndexRange{*start, *stop});
}

void FinishItems(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  w.Array(c.reply.items.size());
  for (const auto& item : c.reply.items) w.Bulk(item);
}

void PrepareLLen(CommandContext& ctx) { ctx.Add(api::Op::kLLen, ctx.args[1]); }

void FinishLLen(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  w.Int(c.reply.found ? c.reply.integer : 0);
}

// LINDEX key index: Redis checks the key (nil, WRONGTYPE) before the index, so a bad index
// sends kLLen and Finish reports it only for an existing list.
void PrepareLIndex(CommandContext& ctx) {
  auto index = ParseInt64(ctx.args[2]);
  if (!index) {
    ctx.Add(api::Op::kLLen, ctx.args[1]);
    return;
  }
  ctx.Add(api::Op::kLIndex, ctx.args[1]).Set(api::Position{*index});
}

void FinishLIndex(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  if (c.req.op == api::Op::kLLen) {  // the index was not an integer
    if (!c.reply.found) return w.Null();
    return WriteError(w, RespError::kNotInteger);
  }
  if (c.reply.found) {
    w.Bulk(c.reply.value);
  } else {
    w.Null();
  }
}

// LPOS key element [RANK rank] [COUNT num] [MAXLEN len]: options are checked in order, before
// the key, with Redis's own words.
void PrepareLPos(CommandContext& ctx) {
  const auto& a = ctx.args;
  int64_t rank = 1, count = -1, maxlen = 0;
  for (size_t i = 3; i < a.size(); ++i) {
    const bool more = i + 1 < a.size();
    if (EqualsIgnoreCase(a[i], "rank") && more) {
      auto n = ParseInt64(a[++i]);
      if (!n) return WriteError(ctx.local, RespError::kNotInteger);
      if (*n == 0) return WriteError(ctx.local, RespError::kRankZero);
      rank = *n;
    } else if (EqualsIgnoreCase(a[i], "count") && more) {
      auto n = ParseInt64(a[++i]);
      if (!n || *n < 0) return WriteError(ctx.local, RespError::kCountNegative);
      count = *n;
    } else if (EqualsIgnoreCase(a[i], "maxlen") && more) {
      auto n = ParseInt64(a[++i]);
      if (!n || *n < 0) return WriteError(ctx.local, RespError::kMaxLenNegative);
      maxlen = *n;
    } else {
      return WriteError(ctx.local, RespError::kSyntax);
    }
  }
  if (rank == INT64_MIN) {
    // Redis 7.0 negates this rank to itself: every match from the tail then qualifies and
    // COUNT never stops the search (its "matches - rank + 1 >= count" wraps).
    rank = -1;
    if (count > 0) count = 0;
  }
  api::Request& r = ctx.Add(api::Op::kLPos, a[1]);
  r.value = a[2];
  r.Set(api::Find{rank, count, maxlen});
}

void FinishLPos(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  const auto& pos = c.reply.numbers;
  if (c.req.Get<api::Find>().count < 0) {  // no COUNT: the first match or nil
    if (pos.empty()) return w.Null();
    return w.Int(pos[0]);
  }
  w.Array(pos.size());  // COUNT given: an array, empty for a missing key
  for (int64_t p : pos) w.Int(p);
}

// ---- Writes -------------------------------------------------------------------------------

// LSET key index element: Redis checks the key ("no such key", WRONGTYPE) before the index.
void PrepareLSet(CommandContext& ctx) {
  if (!CheckSize(ctx, ctx.args[3])) return;
  auto index = ParseInt64(ctx.args[2]);
  if (!index) {
    ctx.Add(api::Op::kLLen, ctx.args[1]);
    return;
  }
  api::Request& r = ctx.Add(api::Op::kLSet, ctx.args[1]);
  r.Set(api::Position{*index});
  r.value = ctx.args[3];
}

void FinishLSet(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  if (c.req.op == api::Op::kLLen) {  // the index was not an integer
    if (!c.reply.found) return WriteError(w, RespError::kNoSuchKey);
    return WriteError(w, RespError::kNotInteger);
  }
  w.Simple("OK");
}

void PrepareLRem(CommandContext& ctx) {
  auto count = ParseInt64(ctx.args[2]);
  if (!count) return WriteError(ctx.local, RespError::kNotInteger);
  api::Request& r = ctx.Add(api::Op::kLRem, ctx.args[1]);
  r.Set(api::Count{*count});
  r.value = ctx.args[3];
}

void PrepareLTrim(CommandContext& ctx) {
  auto start = ParseInt64(ctx.args[2]);
  auto stop = ParseInt64(ctx.args[3]);
  if (!start || !stop) return WriteError(ctx.local, RespError::kNotInteger);
  ctx.Add(api::Op::kLTrim, ctx.args[1]).Set(api::IndexRange{*start, *stop});
}

// LINSERT key BEFORE|AFTER pivot element
void PrepareLInsert(CommandContext& ctx) {
  const auto& a = ctx.args;
  bool after;
  if (EqualsIgnoreCase(a[2], "before")) {
    after = false;
  } else if (EqualsIgnoreCase(a[2], "after")) {
    after = true;
  } else {
    return WriteError(ctx.local, RespError::kSyntax);
  }
  if (!CheckSize(ctx, a[4])) return;
  api::Request& r = ctx.Add(api::Op::kLInsert, a[1]);
  r.Set(api::InsertAt{after});
  r.check = a[3];
  r.value = a[4];
}

// ---- LMOVE / RPOPLPUSH ----------------------------------------------------------------------
//
// Round 1 pops one element from the source and asks the destination's type (the keys may be
// on different shards). The follow-up pushes the element to the destination, or, when the
// destination holds another type, pushes it back where it came from and asks the type again
// (the finish then answers WRONGTYPE, or the error the type check met). Finish tells the
// rounds apart by the first call's op: a pop means round 1 was the last (nothing to move).
// Not atomic across shards: another client may see the element in neither list for a moment.

std::optional<bool> ParseLeft(std::string_view s) {
  if (EqualsIgnoreCase(s, "left")) return true;
  if (EqualsIgnoreCase(s, "right")) return false;
  return std::nullopt;
}

// Whether the element goes to the destination's head: LMOVE's last argument; RPOPLPUSH: yes.
bool PushLeft(const CommandContext& ctx) {
  return ctx.args.size() < 5 || ParseLeft(ctx.args[4]).value_or(true);
}

void AddMoveFirstRound(CommandContext& ctx, bool from_left) {
  ctx.Add(from_left ? api::Op::kLPop : api::Op::kRPop, ctx.args[1]).Set(api::Count{-1});
  ctx.Add(api::Op::kType, ctx.args[2]);
}

void PrepareLMove(CommandContext& ctx) {
  auto from_left = ParseLeft(ctx.args[3]);
  auto to_left = ParseLeft(ctx.args[4]);
  if (!from_left || !to_left) return WriteError(ctx.local, RespError::kSyntax);
  AddMoveFirstRound(ctx, *from_left);
}

void PrepareRPopLPush(CommandContext& ctx) { AddMoveFirstRound(ctx, false); }

bool FollowupLMove(CommandContext& ctx, std::span<Call> first_round) {
  const Call& pop = first_round[0];
  const Call& type = first_round[1];
  if (!pop.reply.status.ok() || !pop.reply.found || pop.reply.items.empty()) return false;
  std::span<std::string_view> element = ctx.scratch.Alloc<std::string_view>(1);
  element[0] = pop.reply.items[0];  // round 1's replies outlive the follow-up
  const bool dst_ok =
      type.reply.status.ok() && (type.reply.value == "none" || type.reply.value == "list");
  if (dst_ok) {
    ctx.Add(PushLeft(ctx) ? api::Op::kLPush : api::Op::kRPush, ctx.args[2]).args = element;
  } else {
    const bool from_left = pop.req.op == api::Op::kLPop;
    ctx.Add(from_left ? api::Op::kLPush : api::Op::kRPush, ctx.args[1]).args = element;
    ctx.Add(api::Op::kType, ctx.args[2]);
  }
  return true;
}

void FinishLMove(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  if (c.req.op == api::Op::kLPop || c.req.op == api::Op::kRPop) {
    return w.Null();  // round 1 only: the source was empty
  }
  if (calls.size() > 1) {  // pushed back: the destination holds another type
    if (!calls[1].reply.status.ok()) return WriteStatus(w, calls[1].reply.status);
    return WriteStatus(w, Status(Code::kWrongType));
  }
  w.Bulk(c.req.args[0]);
}

}  // namespace

void RegisterListFamily(std::vector<CommandSpec>& t) {
  t.push_back({"lpush", -3, kWrite | kFast, PrepareLPush, FinishInt, 1, 1, 1, "Prepends elements to a list."});
  t.push_back({"rpush", -3, kWrite | kFast, PrepareRPush, FinishInt, 1, 1, 1, "Appends elements to a list."});
  t.push_back({"lpushx", -3, kWrite | kFast, PrepareLPushX, FinishInt, 1, 1, 1, "Prepends elements to an existing list."});
  t.push_back({"rpushx", -3, kWrite | kFast, PrepareRPushX, FinishInt, 1, 1, 1, "Appends elements to an existing list."});
  t.push_back({"lpop", -2, kWrite | kFast, PrepareLPop, FinishPop, 1, 1, 1, "Removes and returns the first elements of a list."});
  t.push_back({"rpop", -2, kWrite | kFast, PrepareRPop, FinishPop, 1, 1, 1, "Removes and returns the last elements of a list."});
  t.push_back({"lrange", 4, kReadOnly, PrepareLRange, FinishItems, 1, 1, 1, "Returns a range of elements of a list."});
  t.push_back({"llen", 2, kReadOnly | kFast, PrepareLLen, FinishLLen, 1, 1, 1, "Returns the length of a list."});
  t.push_back({"lindex", 3, kReadOnly, PrepareLIndex, FinishLIndex, 1, 1, 1, "Returns an element of a list by its index."});
  t.push_back({"lpos", -3, kReadOnly, PrepareLPos, FinishLPos, 1, 1, 1, "Returns the positions of matching elements of a list."});
  t.push_back({"lset", 4, kWrite, PrepareLSet, FinishLSet, 1, 1, 1, "Sets an element of a list by its index."});
  t.push_back({"lrem", 4, kWrite, PrepareLRem, FinishInt, 1, 1, 1, "Removes matching elements from a list."});
  t.push_back({"ltrim", 4, kWrite, PrepareLTrim, FinishOk, 1, 1, 1, "Trims a list to a range of elements."});
  t.push_back({"linsert", 5, kWrite, PrepareLInsert, FinishInt, 1, 1, 1, "Inserts an element before or after another."});
  t.push_back({"lmove", 5, kWrite | kEndsRound, PrepareLMove, FinishLMove, 1, 2, 1, "Moves an element from one list to another.", FollowupLMove});
  t.push_back({"rpoplpush", 3, kWrite | kEndsRound, PrepareRPopLPush, FinishLMove, 1, 2, 1, "Moves the last element of a list to the head of another.", FollowupLMove});
}

}  // namespace cellar::resp
