// Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SSCAN,
// and the multi-key SINTER, SUNION, SDIFF, SINTERCARD and their *STORE forms.
//
// Multi-key commands read every source with one kSMembers per key (the keys may live on
// different shards) and combine the members on the connection's thread. The *STORE forms take
// two rounds: the sources (plus a kExists on the destination, so that the destination is
// checked against the token's grants like every key a command touches), then one kSStore.
// Arguments are checked in the order Redis checks them, so errors match redis-server 7.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include <absl/container/flat_hash_set.h>

#include "common/numbers.h"
#include "frontend/resp/commands.h"
#include "frontend/resp/set_zset_common.h"

namespace cellar::resp {
namespace {

using gateway::Call;

void WriteSet(ReplyWriter& w, const api::ItemList& items) {
  w.Set(items.size());
  for (const auto& m : items) w.Bulk(m);
}

// ---- Single-key commands ------------------------------------------------------------------

void PrepareSAdd(CommandContext& ctx) {
  for (size_t i = 2; i < ctx.args.size(); ++i) {
    if (!CheckMemberSize(ctx, ctx.args[i])) return;
  }
  ctx.Add(api::Op::kSAdd, ctx.args[1]).args = ctx.scratch.Copy(ctx.args.subspan(2));
}

void PrepareSRem(CommandContext& ctx) {
  ctx.Add(api::Op::kSRem, ctx.args[1]).args = ctx.scratch.Copy(ctx.args.subspan(2));
}

void PrepareSMembers(CommandContext& ctx) { ctx.Add(api::Op::kSMembers, ctx.args[1]); }
void FinishSMembers(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  WriteSet(w, calls[0].reply.items);
}

void PrepareSContains(CommandContext& ctx) {
  ctx.Add(api::Op::kSContains, ctx.args[1]).args = ctx.scratch.Copy(ctx.args.subspan(2));
}
void FinishSIsMember(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const auto& n = calls[0].reply.numbers;
  w.Int(!n.empty() && n[0] != 0 ? 1 : 0);
}
void FinishSMIsMember(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const Call& c = calls[0];
  w.Array(c.req.args.size());
  for (size_t i = 0; i < c.req.args.size(); ++i) {
    w.Int(i < c.reply.numbers.size() && c.reply.numbers[i] != 0 ? 1 : 0);
  }
}

void PrepareSCard(CommandContext& ctx) { ctx.Add(api::Op::kSCard, ctx.args[1]); }

// SPOP key [count]: no count answers a bulk or nil, a count answers a set (empty when the key
// is missing). The count is checked before the key; a count of 0 only checks the key's type.
void PrepareSPop(CommandContext& ctx) {
  const auto& a = ctx.args;
  if (a.size() > 3) return WriteError(ctx.local, RespError::kSyntax);
  if (a.size() == 2) {
    ctx.Add(api::Op::kSPop, a[1]).Set(api::Count{-1});
    return;
  }
  auto n = ParseInt64(a[2]);
  if (!n || *n < 0) return WriteError(ctx.local, RespError::kMustBePositive);
  if (*n == 0) {
    ctx.Add(api::Op::kSCard, a[1]);
    return;
  }
  ctx.Add(api::Op::kSPop, a[1]).Set(api::Count{*n});
}
void FinishSPop(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const Call& c = calls[0];
  if (c.req.op == api::Op::kSPop && c.req.Get<api::Count>().count == -1) {
    if (c.reply.items.empty()) return w.Null();
    return w.Bulk(c.reply.items[0]);
  }
  WriteSet(w, c.reply.items);  // kSCard (count 0): no items
}

// SRANDMEMBER key [count]: a negative count may repeat members. No count answers a bulk or
// nil; a count answers an array.
void PrepareSRandMember(CommandContext& ctx) {
  const auto& a = ctx.args;
  if (a.size() > 3) return WriteError(ctx.local, RespError::kSyntax);
  if (a.size() == 2) {
    api::Request& r = ctx.Add(api::Op::kSRandMember, a[1]);
    r.Set(api::Count{-1});
    r.flags = api::kNoCount;
    return;
  }
  auto n = ParseInt64(a[2]);
  if (!n) return WriteError(ctx.local, RespError::kNotInteger);
  if (*n == INT64_MIN) return WriteError(ctx.local, RespError::kCountOutOfRange);
  if (*n == 0) {
    ctx.Add(api::Op::kSCard, a[1]);
    return;
  }
  ctx.Add(api::Op::kSRandMember, a[1]).Set(api::Count{*n});
}
void FinishSRandMember(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const Call& c = calls[0];
  if (c.req.op == api::Op::kSRandMember && (c.req.flags & api::kNoCount)) {
    if (c.reply.items.empty()) return w.Null();
    return w.Bulk(c.reply.items[0]);
  }
  w.Array(c.reply.items.size());
  for (const auto& m : c.reply.items) w.Bulk(m);
}

// SSCAN key cursor [MATCH pattern] [COUNT n]. Redis parses the cursor, then looks the key up,
// then parses the options: an option error is reported only for an existing set.
void PrepareSScan(CommandContext& ctx) {
  const auto& a = ctx.args;
  auto cursor = ParseScanCursor(a[2]);
  if (!cursor) return WriteError(ctx.local, RespError::kCursor);
  ScanOptions o = ParseScanOptions(a, 3);
  if (o.error != DeferredError::kNone) {
    ctx.Add(api::Op::kSCard, a[1]).note = static_cast<int32_t>(o.error);
    return;
  }
  if (!CheckPattern(ctx, o.pattern)) return;
  api::Request& r = ctx.Add(api::Op::kSScan, a[1]);
  r.Set(api::Cursor{static_cast<int64_t>(*cursor), o.count});
  r.pattern = o.pattern;
}
void FinishSScan(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const Call& c = calls[0];
  if (c.req.op == api::Op::kSCard) {
    if (!c.reply.found && c.reply.integer == 0) return WriteEmptyScan(w);
    return WriteDeferred(w, static_cast<DeferredError>(c.req.note));
  }
  w.Array(2);
  w.Bulk(std::to_string(static_cast<uint64_t>(c.reply.integer)));
  w.Array(c.reply.items.size());
  for (const auto& m : c.reply.items) w.Bulk(m);
}

// ---- Multi-key commands -------------------------------------------------------------------

enum class SetOp { kUnion, kInter, kDiff };

// Combines the members of the kSMembers calls (a missing key is an empty set). The views
// point into the calls' replies.
std::vector<std::string_view> Combine(SetOp op, std::span<const Call> sets) {
  std::vector<std::string_view> out;
  if (sets.empty()) return out;
  switch (op) {
    case SetOp::kUnion: {
      absl::flat_hash_set<std::string_view> seen;
      for (const Call& c : sets) {
        for (const auto& m : c.reply.items) {
          if (seen.insert(m).second) out.push_back(m);
        }
      }
      break;
    }
    case SetOp::kInter: {
      size_t smallest = 0;
      for (size_t i = 1; i < sets.size(); ++i) {
        if (sets[i].reply.items.size() < sets[smallest].reply.items.size()) smallest = i;
      }
      if (sets[smallest].reply.items.empty()) break;
      std::vector<absl::flat_hash_set<std::string_view>> others;
      for (size_t i = 0; i < sets.size(); ++i) {
        if (i == smallest) continue;
        others.emplace_back(sets[i].reply.items.begin(), sets[i].reply.items.end());
      }
      for (const auto& m : sets[smallest].reply.items) {
        bool all = true;
        for (const auto& o : others) {
          if (!o.contains(m)) {
            all = false;
            break;
          }
        }
        if (all) out.push_back(m);
      }
      break;
    }
    case SetOp::kDiff: {
      if (sets[0].reply.items.empty()) break;
      absl::flat_hash_set<std::string_view> removed;
      for (size_t i = 1; i < sets.size(); ++i) {
        removed.insert(sets[i].reply.items.begin(), sets[i].reply.items.end());
      }
      for (const auto& m : sets[0].reply.items) {
        if (!removed.contains(m)) out.push_back(m);
      }
      break;
    }
  }
  return out;
}

void PrepareReadEach(CommandContext& ctx, size_t first) {
  for (size_t i = first; i < ctx.args.size(); ++i) ctx.Add(api::Op::kSMembers, ctx.args[i]);
}

void PrepareSetRead(CommandContext& ctx) { PrepareReadEach(ctx, 1); }

void FinishSetOp(SetOp op, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  std::vector<std::string_view> out = Combine(op, calls);
  w.Set(out.size());
  for (auto m : out) w.Bulk(m);
}
void FinishSInter(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  FinishSetOp(SetOp::kInter, calls, w);
}
void FinishSUnion(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  FinishSetOp(SetOp::kUnion, calls, w);
}
void FinishSDiff(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  FinishSetOp(SetOp::kDiff, calls, w);
}

// *STORE destination key [key ...]. Round one: kExists(destination), then kSMembers per source.
void PrepareSetStore(CommandContext& ctx) {
  ctx.Add(api::Op::kExists, ctx.args[1]);
  PrepareReadEach(ctx, 2);
}

bool FollowupSetStore(SetOp op, CommandContext& ctx, std::span<Call> first_round) {
  for (const Call& c : first_round) {
    if (!c.reply.status.ok()) return false;  // Finish reports it
  }
  std::vector<std::string_view> out = Combine(op, first_round.subspan(1));
  std::span<std::string_view> members = ctx.scratch.Alloc<std::string_view>(out.size());
  std::copy(out.begin(), out.end(), members.begin());
  ctx.Add(api::Op::kSStore, ctx.args[1]).args = members;
  return true;
}
bool FollowupSInterStore(CommandContext& ctx, std::span<Call> first_round) {
  return FollowupSetStore(SetOp::kInter, ctx, first_round);
}
bool FollowupSUnionStore(CommandContext& ctx, std::span<Call> first_round) {
  return FollowupSetStore(SetOp::kUnion, ctx, first_round);
}
bool FollowupSDiffStore(CommandContext& ctx, std::span<Call> first_round) {
  return FollowupSetStore(SetOp::kDiff, ctx, first_round);
}

// Called with the kSStore call, or with round one when it failed.
void FinishSetStore(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  w.Int(calls[0].req.op == api::Op::kSStore ? calls[0].reply.integer : 0);
}

// SINTERCARD numkeys key [key ...] [LIMIT limit]
struct InterCardArgs {
  size_t numkeys;
  int64_t limit;  // 0: none
};

// Writes the error to `w` (when given) and returns nullopt on bad arguments.
std::optional<InterCardArgs> ParseSInterCard(std::span<const std::string_view> a,
                                             ReplyWriter* w) {
  auto fail = [w](RespError e) -> std::optional<InterCardArgs> {
    if (w != nullptr) WriteError(*w, e);
    return std::nullopt;
  };
  auto numkeys = ParseInt64(a[1]);
  if (!numkeys || *numkeys < 1) return fail(RespError::kNumKeysNotPositive);
  if (*numkeys > static_cast<int64_t>(a.size()) - 2) return fail(RespError::kNumKeysOverArgs);
  InterCardArgs out{static_cast<size_t>(*numkeys), 0};
  for (size_t i = 2 + out.numkeys; i < a.size(); ++i) {
    if (EqualsIgnoreCase(a[i], "limit") && i + 1 < a.size()) {
      auto l = ParseInt64(a[++i]);
      if (!l || *l < 0) return fail(RespError::kLimitNegative);
      out.limit = *l;
    } else {
      return fail(RespError::kSyntax);
    }
  }
  return out;
}

void PrepareSInterCard(CommandContext& ctx) {
  auto p = ParseSInterCard(ctx.args, &ctx.local);
  if (!p) return;
  for (size_t i = 0; i < p->numkeys; ++i) ctx.Add(api::Op::kSMembers, ctx.args[2 + i]);
}
void FinishSInterCard(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const int64_t limit = ParseSInterCard(ctx.args, nullptr)->limit;  // accepted in Prepare
  const int64_t n = static_cast<int64_t>(Combine(SetOp::kInter, calls).size());
  w.Int(limit > 0 ? std::min(n, limit) : n);
}

}  // namespace

void RegisterSetFamily(std::vector<CommandSpec>& t) {
  t.push_back({"sadd", -3, kWrite | kFast, PrepareSAdd, FinishInt, 1, 1, 1, "Adds members to a set."});
  t.push_back({"srem", -3, kWrite | kFast, PrepareSRem, FinishInt, 1, 1, 1, "Removes members from a set."});
  t.push_back({"smembers", 2, kReadOnly, PrepareSMembers, FinishSMembers, 1, 1, 1, "Returns every member of a set."});
  t.push_back({"sismember", 3, kReadOnly | kFast, PrepareSContains, FinishSIsMember, 1, 1, 1, "Tells whether a value is a member of a set."});
  t.push_back({"smismember", -3, kReadOnly | kFast, PrepareSContains, FinishSMIsMember, 1, 1, 1, "Tells whether each value is a member of a set."});
  t.push_back({"scard", 2, kReadOnly | kFast, PrepareSCard, FinishInt, 1, 1, 1, "Returns the number of members of a set."});
  t.push_back({"spop", -2, kWrite | kFast, PrepareSPop, FinishSPop, 1, 1, 1, "Removes and returns random members of a set."});
  t.push_back({"srandmember", -2, kReadOnly, PrepareSRandMember, FinishSRandMember, 1, 1, 1, "Returns random members of a set."});
  t.push_back({"sscan", -3, kReadOnly, PrepareSScan, FinishSScan, 1, 1, 1, "Iterates over the members of a set."});
  t.push_back({"sinter", -2, kReadOnly, PrepareSetRead, FinishSInter, 1, -1, 1, "Returns the intersection of sets."});
  t.push_back({"sunion", -2, kReadOnly, PrepareSetRead, FinishSUnion, 1, -1, 1, "Returns the union of sets."});
  t.push_back({"sdiff", -2, kReadOnly, PrepareSetRead, FinishSDiff, 1, -1, 1, "Returns the difference of the first set and the others."});
  t.push_back({"sintercard", -3, kReadOnly, PrepareSInterCard, FinishSInterCard, 0, 0, 0, "Returns the size of the intersection of sets."});
  t.push_back({"sinterstore", -3, kWrite | kEndsRound, PrepareSetStore, FinishSetStore, 1, -1, 1, "Stores the intersection of sets in a key.", FollowupSInterStore});
  t.push_back({"sunionstore", -3, kWrite | kEndsRound, PrepareSetStore, FinishSetStore, 1, -1, 1, "Stores the union of sets in a key.", FollowupSUnionStore});
  t.push_back({"sdiffstore", -3, kWrite | kEndsRound, PrepareSetStore, FinishSetStore, 1, -1, 1, "Stores the difference of sets in a key.", FollowupSDiffStore});
}

}  // namespace cellar::resp
