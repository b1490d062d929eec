// Sorted-set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT, the
// ZRANGE family (ZRANGE with BYSCORE/BYLEX/REV/LIMIT, ZRANGEBYSCORE, ZREVRANGEBYSCORE,
// ZREVRANGE, ZRANGEBYLEX, ZREVRANGEBYLEX), ZRANK, ZREVRANK, ZPOPMIN, ZPOPMAX, ZSCAN, and the
// multi-key ZUNION, ZINTER, ZDIFF and their *STORE forms.
//
// Scores are parsed and written as redis-server 7.0 does: strtod rules (with "inf", "-inf",
// "(" for exclusive range bounds; NaN refused) and replies in "%.17g" ("inf"/"-inf" spelled
// out), a bulk string in RESP2 and a double in RESP3.
//
// Multi-key commands read each source with kZRange (kAcceptSet: a plain set counts with score
// 1) and combine on the connection's thread, with Redis's arithmetic (sources ordered by size,
// NaN products and sums become 0). The *STORE forms take two rounds: the sources plus a
// kExists on the destination (so the destination is checked against the token's grants),
// then one kZStore. Redis looks the sources up before it parses the options after them, so an
// option error is reported only when no source has the wrong type.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include "common/numbers.h"
#include "frontend/resp/commands.h"
#include "frontend/resp/set_zset_common.h"

namespace cellar::resp {
namespace {

using gateway::Call;

// ---- Scores -------------------------------------------------------------------------------

// A score argument as Redis reads one (string2d): strtod with no leading space and nothing
// after the number; NaN and out-of-range values (1e400, 1e-400) refused; "inf" accepted.
std::optional<double> ParseScore(std::string_view s) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return std::nullopt;
  const std::string buf(s);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size() || std::isnan(v)) return std::nullopt;
  if (errno == ERANGE && (std::isinf(v) || v == 0)) return std::nullopt;
  return v;
}

struct ScoreBound {
  double value;
  bool exclusive;
};

// A ZCOUNT/ZRANGEBYSCORE bound as Redis reads one (zslParseRange): an optional '(' then what
// strtod accepts up to the end of the C string; only NaN is refused (so "" is 0 and 1e400 is
// inf, as in Redis).
std::optional<ScoreBound> ParseScoreBound(std::string_view s) {
  const std::string buf(s);
  const char* p = buf.c_str();
  bool exclusive = false;
  if (*p == '(') {
    exclusive = true;
    ++p;
  }
  char* end = nullptr;
  const double v = std::strtod(p, &end);
  if (*end != '\0' || std::isnan(v)) return std::nullopt;
  return ScoreBound{v, exclusive};
}

// A ZRANGEBYLEX bound: "-", "+", or '[' / '(' then the member. Returns the form to pass on.
std::optional<std::string_view> ParseLexBound(std::string_view s) {
  if (s.empty()) return std::nullopt;
  switch (s[0]) {
    case '+':
    case '-':
      // Redis reads a C string: "+" followed by a NUL byte is "+".
      if (s.size() > 1 && s[1] != '\0') return std::nullopt;
      return s.substr(0, 1);
    case '(':
    case '[':
      return s;
    default:
      return std::nullopt;
  }
}

// Redis 7.0's addReplyDouble: "%.17g", infinities spelled "inf" / "-inf".
void WriteScore(ReplyWriter& w, double d) {
  if (std::isinf(d)) return w.Double(d > 0 ? "inf" : "-inf");
  char buf[40];
  const int n = std::snprintf(buf, sizeof(buf), "%.17g", d);
  w.Double(std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0));
}

// ---- Reply helpers ------------------------------------------------------------------------

// Members, with their scores when asked: one flat array, or (`pairs`: RESP3 ranges) an array
// of [member, score] pairs.
template <typename MemberAt, typename ScoreAt>
void WriteScoredList(ReplyWriter& w, size_t n, bool with_scores, bool pairs, MemberAt member,
                     ScoreAt score) {
  if (!with_scores) {
    w.Array(n);
    for (size_t i = 0; i < n; ++i) w.Bulk(member(i));
    return;
  }
  w.Array(pairs ? n : 2 * n);
  for (size_t i = 0; i < n; ++i) {
    if (pairs) w.Array(2);
    w.Bulk(member(i));
    WriteScore(w, score(i));
  }
}

void WriteReplyList(ReplyWriter& w, const api::Reply& r, bool with_scores, bool pairs) {
  WriteScoredList(
      w, r.items.size(), with_scores, pairs,
      [&r](size_t i) -> std::string_view { return r.items[i]; },
      [&r](size_t i) { return i < r.scores.size() ? r.scores[i] : 0.0; });
}

// ---- ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD ------------------------------------------

// ZADD's option words; ZINCRBY is ZADD INCR in Redis, so the same words there are errors.
uint32_t ZAddOption(std::string_view o) {
  if (EqualsIgnoreCase(o, "nx")) return api::kNx;
  if (EqualsIgnoreCase(o, "xx")) return api::kXx;
  if (EqualsIgnoreCase(o, "ch")) return api::kCh;
  if (EqualsIgnoreCase(o, "incr")) return api::kIncr;
  if (EqualsIgnoreCase(o, "gt")) return api::kGt;
  if (EqualsIgnoreCase(o, "lt")) return api::kLt;
  return 0;
}

// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
void PrepareZAdd(CommandContext& ctx) {
  const auto& a = ctx.args;
  uint32_t flags = 0;
  size_t i = 2;
  for (; i < a.size(); ++i) {
    const uint32_t f = ZAddOption(a[i]);
    if (f == 0) break;
    flags |= f;
  }
  const size_t rest = a.size() - i;
  if (rest == 0 || rest % 2 != 0) return WriteError(ctx.local, RespError::kSyntax);
  const size_t n = rest / 2;
  if ((flags & api::kNx) && (flags & api::kXx)) {
    return WriteError(ctx.local, RespError::kZAddXxAndNx);
  }
  if (((flags & (api::kGt | api::kLt)) && (flags & api::kNx)) ||
      ((flags & api::kGt) && (flags & api::kLt))) {
    return WriteError(ctx.local, RespError::kZAddGtLtAndNx);
  }
  if ((flags & api::kIncr) && n > 1) {
    return WriteError(ctx.local, RespError::kZAddIncrPairs);
  }
  std::span<double> scores = ctx.scratch.Alloc<double>(n);
  for (size_t j = 0; j < n; ++j) {
    auto s = ParseScore(a[i + 2 * j]);
    if (!s) return WriteError(ctx.local, RespError::kNotFloat);
    scores[j] = *s;
  }
  std::span<std::string_view> members = ctx.scratch.Alloc<std::string_view>(n);
  for (size_t j = 0; j < n; ++j) {
    members[j] = a[i + 2 * j + 1];
    if (!CheckMemberSize(ctx, members[j])) return;
  }
  api::Request& r = ctx.Add(api::Op::kZAdd, a[1]);
  r.flags = flags;
  r.args = members;
  r.scores = scores;
}

void FinishZAdd(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const Call& c = calls[0];
  if (!(c.req.flags & api::kIncr)) return w.Int(c.reply.integer);
  if (!c.reply.found || c.reply.scores.empty()) return w.Null();
  WriteScore(w, c.reply.scores[0]);
}

// ZINCRBY key increment member
void PrepareZIncrBy(CommandContext& ctx) {
  const auto& a = ctx.args;
  if (ZAddOption(a[2]) != 0) return WriteError(ctx.local, RespError::kSyntax);
  auto delta = ParseScore(a[2]);
  if (!delta) return WriteError(ctx.local, RespError::kNotFloat);
  if (!CheckMemberSize(ctx, a[3])) return;
  api::Request& r = ctx.Add(api::Op::kZIncrBy, a[1]);
  r.args = ctx.scratch.Copy(a.subspan(3, 1));
  r.Set(api::FloatDelta{*delta});
}

void FinishZIncrBy(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  if (calls[0].reply.scores.empty()) return w.Null();
  WriteScore(w, calls[0].reply.scores[0]);
}

void PrepareZRem(CommandContext& ctx) {
  ctx.Add(api::Op::kZRem, ctx.args[1]).args = ctx.scratch.Copy(ctx.args.subspan(2));
}

void PrepareZScore(CommandContext& ctx) {
  ctx.Add(api::Op::kZScore, ctx.args[1]).args = ctx.scratch.Copy(ctx.args.subspan(2));
}

void WriteScoreOrNull(ReplyWriter& w, const api::Reply& r, size_t i) {
  if (i < r.numbers.size() && r.numbers[i] != 0 && i < r.scores.size()) {
    WriteScore(w, r.scores[i]);
  } else {
    w.Null();
  }
}

void FinishZScore(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  WriteScoreOrNull(w, calls[0].reply, 0);
}

void FinishZMScore(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const Call& c = calls[0];
  w.Array(c.req.args.size());
  for (size_t i = 0; i < c.req.args.size(); ++i) WriteScoreOrNull(w, c.reply, i);
}

void PrepareZCard(CommandContext& ctx) { ctx.Add(api::Op::kZCard, ctx.args[1]); }

// ---- ZCOUNT, ZLEXCOUNT --------------------------------------------------------------------

// The score range from min to max, adding the exclusive bounds' flags to `flags`; nullopt if
// a bound is not a float.
std::optional<api::ScoreRange> ScoreRangeOf(std::string_view min, std::string_view max,
                                            uint32_t& flags) {
  auto lo = ParseScoreBound(min);
  auto hi = ParseScoreBound(max);
  if (!lo || !hi) return std::nullopt;
  if (lo->exclusive) flags |= api::kLoExclusive;
  if (hi->exclusive) flags |= api::kHiExclusive;
  return api::ScoreRange{.lo = lo->value, .hi = hi->value};
}

void PrepareZCount(CommandContext& ctx) {
  uint32_t flags = 0;
  auto range = ScoreRangeOf(ctx.args[2], ctx.args[3], flags);
  if (!range) return WriteError(ctx.local, RespError::kNotFloatRange);
  api::Request& r = ctx.Add(api::Op::kZCount, ctx.args[1]);
  r.Set(*range);
  r.flags = flags;
}

// The two bounds of a lex range in stable storage, or an empty span if one is invalid.
std::span<const std::string_view> LexRange(CommandContext& ctx, std::string_view min,
                                           std::string_view max) {
  auto lo = ParseLexBound(min);
  auto hi = ParseLexBound(max);
  if (!lo || !hi) return {};
  std::span<std::string_view> out = ctx.scratch.Alloc<std::string_view>(2);
  out[0] = *lo;
  out[1] = *hi;
  return out;
}

// ZLEXCOUNT key min max: counts the members of the range (no engine op counts lex ranges).
void PrepareZLexCount(CommandContext& ctx) {
  auto range = LexRange(ctx, ctx.args[2], ctx.args[3]);
  if (range.empty()) return WriteError(ctx.local, RespError::kNotLexRange);
  api::Request& r = ctx.Add(api::Op::kZRange, ctx.args[1]);
  r.flags = api::kByLex;
  r.args = range;
  r.Set(api::ScoreRange{.offset = 0, .count = -1});
}

void FinishZLexCount(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  w.Int(static_cast<int64_t>(calls[0].reply.items.size()));
}

// ---- The ZRANGE family --------------------------------------------------------------------

enum class RangeKind { kAuto, kRank, kScore, kLex };
enum class Direction { kAuto, kForward, kReverse };

// ZRANGE key min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES], and the older
// commands, which fix the kind and/or the direction (an option that would change a fixed one
// is a syntax error). Checks in Redis's order: options, conflicts, then the range itself.
void PrepareRangeGeneric(CommandContext& ctx, RangeKind kind, Direction dir) {
  const auto& a = ctx.args;
  bool with_scores = false;
  bool has_limit = false;
  int64_t offset = 0, count = -1;
  for (size_t j = 4; j < a.size(); ++j) {
    const size_t left = a.size() - j - 1;
    if (EqualsIgnoreCase(a[j], "withscores")) {
      with_scores = true;
    } else if (EqualsIgnoreCase(a[j], "limit") && left >= 2) {
      auto o = ParseInt64(a[j + 1]);
      if (!o) return WriteError(ctx.local, RespError::kNotInteger);
      auto c = ParseInt64(a[j + 2]);
      if (!c) return WriteError(ctx.local, RespError::kNotInteger);
      offset = *o;
      count = *c;
      has_limit = true;
      j += 2;
    } else if (dir == Direction::kAuto && EqualsIgnoreCase(a[j], "rev")) {
      dir = Direction::kReverse;
    } else if (kind == RangeKind::kAuto && EqualsIgnoreCase(a[j], "bylex")) {
      kind = RangeKind::kLex;
    } else if (kind == RangeKind::kAuto && EqualsIgnoreCase(a[j], "byscore")) {
      kind = RangeKind::kScore;
    } else {
      return WriteError(ctx.local, RespError::kSyntax);
    }
  }
  if (dir == Direction::kAuto) dir = Direction::kForward;
  if (kind == RangeKind::kAuto) kind = RangeKind::kRank;
  // Redis tells "no LIMIT" by a count of -1, so "LIMIT 0 -1" passes with a rank range.
  if (has_limit && count != -1 && kind == RangeKind::kRank) {
    return WriteError(ctx.local, RespError::kRangeLimitNeedsBy);
  }
  if (with_scores && kind == RangeKind::kLex) {
    return WriteError(ctx.local, RespError::kRangeWithScoresByLex);
  }
  const bool reverse = dir == Direction::kReverse;
  std::string_view min = a[2], max = a[3];
  if (reverse && kind != RangeKind::kRank) std::swap(min, max);  // given as max, min

  api::Request req;
  if (reverse) req.flags |= api::kRev;
  if (with_scores) req.flags |= api::kWithScores;
  api::ScoreRange range;  // by score or lex: the bounds (by score), offset and count
  switch (kind) {
    case RangeKind::kAuto:
    case RangeKind::kRank: {
      auto start = ParseInt64(min);
      auto stop = ParseInt64(max);
      if (!start || !stop) return WriteError(ctx.local, RespError::kNotInteger);
      req.Set(api::IndexRange{*start, *stop});
      break;
    }
    case RangeKind::kScore: {
      auto bounds = ScoreRangeOf(min, max, req.flags);
      if (!bounds) return WriteError(ctx.local, RespError::kNotFloatRange);
      range = *bounds;
      req.flags |= api::kByScore;
      break;
    }
    case RangeKind::kLex:
      req.args = LexRange(ctx, min, max);
      if (req.args.empty()) return WriteError(ctx.local, RespError::kNotLexRange);
      req.flags |= api::kByLex;
      break;
  }
  if (kind != RangeKind::kRank) {
    // A negative offset skips past every element in Redis; any negative count means all.
    range.offset = offset < 0 ? 0 : offset;
    range.count = offset < 0 ? 0 : (count < 0 ? -1 : count);
    req.Set(range);
  }
  api::Request& r = ctx.Add(api::Op::kZRange, a[1]);  // built last: no call on an error
  req.op = r.op;
  req.key = r.key;
  req.cache_id = r.cache_id;
  r = req;
}

void PrepareZRange(CommandContext& ctx) {
  PrepareRangeGeneric(ctx, RangeKind::kAuto, Direction::kAuto);
}
void PrepareZRevRange(CommandContext& ctx) {
  PrepareRangeGeneric(ctx, RangeKind::kRank, Direction::kReverse);
}
void PrepareZRangeByScore(CommandContext& ctx) {
  PrepareRangeGeneric(ctx, RangeKind::kScore, Direction::kForward);
}
void PrepareZRevRangeByScore(CommandContext& ctx) {
  PrepareRangeGeneric(ctx, RangeKind::kScore, Direction::kReverse);
}
void PrepareZRangeByLex(CommandContext& ctx) {
  PrepareRangeGeneric(ctx, RangeKind::kLex, Direction::kForward);
}
void PrepareZRevRangeByLex(CommandContext& ctx) {
  PrepareRangeGeneric(ctx, RangeKind::kLex, Direction::kReverse);
}

void FinishZRange(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const Call& c = calls[0];
  WriteReplyList(w, c.reply, (c.req.flags & api::kWithScores) != 0, w.proto() >= 3);
}

// ---- ZRANK, ZREVRANK ----------------------------------------------------------------------

void PrepareRankGeneric(CommandContext& ctx, uint32_t flags) {
  api::Request& r = ctx.Add(api::Op::kZRank, ctx.args[1]);
  r.args = ctx.scratch.Copy(ctx.args.subspan(2, 1));
  r.flags = flags;
}
void PrepareZRank(CommandContext& ctx) { PrepareRankGeneric(ctx, 0); }
void PrepareZRevRank(CommandContext& ctx) { PrepareRankGeneric(ctx, api::kRev); }

void FinishZRank(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  if (!calls[0].reply.found) return w.Null();
  w.Int(calls[0].reply.integer);
}

// ---- ZPOPMIN, ZPOPMAX ---------------------------------------------------------------------

// ZPOPMIN/ZPOPMAX key [count]. The count is checked before the key; a count of 0 only checks
// the key's type. RESP3 nests [member, score] pairs only when a count was given.
void PreparePopGeneric(CommandContext& ctx, api::Op op) {
  const auto& a = ctx.args;
  if (a.size() > 3) return WriteError(ctx.local, RespError::kSyntax);
  int64_t count = -1;
  if (a.size() == 3) {
    auto n = ParseInt64(a[2]);
    if (!n || *n < 0) return WriteError(ctx.local, RespError::kMustBePositive);
    count = *n;
  }
  if (count == 0) {
    ctx.Add(api::Op::kZCard, a[1]);
    return;
  }
  ctx.Add(op, a[1]).Set(api::Count{count});
}
void PrepareZPopMin(CommandContext& ctx) { PreparePopGeneric(ctx, api::Op::kZPopMin); }
void PrepareZPopMax(CommandContext& ctx) { PreparePopGeneric(ctx, api::Op::kZPopMax); }

void FinishZPop(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const Call& c = calls[0];
  if (c.req.op == api::Op::kZCard) return w.Array(0);
  WriteReplyList(w, c.reply, true, w.proto() >= 3 && c.req.Get<api::Count>().count != -1);
}

// ---- ZSCAN --------------------------------------------------------------------------------

// ZSCAN key cursor [MATCH pattern] [COUNT n]: as SSCAN, option errors come after the key.
void PrepareZScan(CommandContext& ctx) {
  const auto& a = ctx.args;
  auto cursor = ParseScanCursor(a[2]);
  if (!cursor) return WriteError(ctx.local, RespError::kCursor);
  ScanOptions o = ParseScanOptions(a, 3);
  if (o.error != DeferredError::kNone) {
    ctx.Add(api::Op::kZCard, a[1]).note = static_cast<int32_t>(o.error);
    return;
  }
  if (!CheckPattern(ctx, o.pattern)) return;
  api::Request& r = ctx.Add(api::Op::kZScan, a[1]);
  r.Set(api::Cursor{static_cast<int64_t>(*cursor), o.count});
  r.pattern = o.pattern;
}

void FinishZScan(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  const Call& c = calls[0];
  if (c.req.op == api::Op::kZCard) {
    if (!c.reply.found && c.reply.integer == 0) return WriteEmptyScan(w);
    return WriteDeferred(w, static_cast<DeferredError>(c.req.note));
  }
  w.Array(2);
  w.Bulk(std::to_string(static_cast<uint64_t>(c.reply.integer)));
  w.Array(c.reply.items.size());  // member, score text, member, score text...
  for (const auto& m : c.reply.items) w.Bulk(m);
}

// ---- ZUNION, ZINTER, ZDIFF and their *STORE forms ------------------------------------------

enum class ZSetOp { kUnion, kInter, kDiff };
enum class Aggregate { kSum, kMin, kMax };

struct ZOpArgs {
  size_t first_key = 0;  // index in the command's arguments
  size_t numkeys = 0;
  Aggregate aggregate = Aggregate::kSum;
  bool with_scores = false;
  std::vector<double> weights;  // one per key
  // An option error, reported once the sources are known to be sorted sets or sets
  // (Redis parses the options after looking the keys up).
  std::optional<RespError> deferred;
};

// [destination] numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES].
// Errors Redis reports before it looks at the keys are written to `w` (when given).
std::optional<ZOpArgs> ParseZOp(std::span<const std::string_view> a, ZSetOp op, bool store,
                                std::string_view name, ReplyWriter* w) {
  const size_t numkeys_index = store ? 2 : 1;
  auto n = ParseInt64(a[numkeys_index]);
  if (!n) {
    if (w != nullptr) WriteError(*w, RespError::kNotInteger);
    return std::nullopt;
  }
  if (*n < 1) {
    if (w != nullptr) WriteError(*w, RespError::kNoInputKeys, name);
    return std::nullopt;
  }
  if (*n > static_cast<int64_t>(a.size() - numkeys_index - 1)) {
    if (w != nullptr) WriteError(*w, RespError::kSyntax);
    return std::nullopt;
  }
  ZOpArgs out;
  out.first_key = numkeys_index + 1;
  out.numkeys = static_cast<size_t>(*n);
  out.weights.assign(out.numkeys, 1.0);
  size_t j = out.first_key + out.numkeys;
  while (j < a.size()) {
    const size_t remaining = a.size() - j;
    if (op != ZSetOp::kDiff && remaining >= out.numkeys + 1 && EqualsIgnoreCase(a[j], "weights")) {
      ++j;
      for (size_t i = 0; i < out.numkeys; ++i, ++j) {
        auto weight = ParseScore(a[j]);
        if (!weight) {
          out.deferred = RespError::kWeightNotFloat;
          return out;
        }
        out.weights[i] = *weight;
      }
    } else if (op != ZSetOp::kDiff && remaining >= 2 && EqualsIgnoreCase(a[j], "aggregate")) {
      const std::string_view agg = a[j + 1];
      if (EqualsIgnoreCase(agg, "sum")) {
        out.aggregate = Aggregate::kSum;
      } else if (EqualsIgnoreCase(agg, "min")) {
        out.aggregate = Aggregate::kMin;
      } else if (EqualsIgnoreCase(agg, "max")) {
        out.aggregate = Aggregate::kMax;
      } else {
        out.deferred = RespError::kSyntax;
        return out;
      }
      j += 2;
    } else if (!store && EqualsIgnoreCase(a[j], "withscores")) {
      out.with_scores = true;
      ++j;
    } else {
      out.deferred = RespError::kSyntax;
      return out;
    }
  }
  return out;
}

struct ScoredMember {
  std::string_view member;  // into a source's reply
  double score;
};

// Redis's zunionInterAggregate: a NaN sum (inf + -inf) is 0; MIN/MAX keep the target when
// the value is NaN.
void AggregateInto(double& target, double value, Aggregate agg) {
  switch (agg) {
    case Aggregate::kSum:
      target += value;
      if (std::isnan(target)) target = 0;
      break;
    case Aggregate::kMin:
      target = value < target ? value : target;
      break;
    case Aggregate::kMax:
      target = value > target ? value : target;
      break;
  }
}

// `sources`: one kZRange (kWithScores | kAcceptSet) per key, in the command's order.
std::vector<ScoredMember> ComputeZOp(ZSetOp op, const ZOpArgs& p, std::span<const Call> sources) {
  struct Source {
    const api::Reply* reply;
    double weight;
    double ScoreAt(size_t i) const { return i < reply->scores.size() ? reply->scores[i] : 1.0; }
    size_t size() const { return reply->items.size(); }
  };
  std::vector<Source> src;
  src.reserve(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) src.push_back({&sources[i].reply, p.weights[i]});
  std::vector<ScoredMember> out;
  if (src.empty()) return out;

  if (op == ZSetOp::kDiff) {  // the first source minus the others, scores unweighted
    if (src[0].size() == 0) return out;
    absl::flat_hash_set<std::string_view> removed;
    for (size_t i = 1; i < src.size(); ++i) {
      removed.insert(src[i].reply->items.begin(), src[i].reply->items.end());
    }
    for (size_t k = 0; k < src[0].size(); ++k) {
      std::string_view m = src[0].reply->items[k];
      if (!removed.contains(m)) out.push_back({m, src[0].ScoreAt(k)});
    }
    return out;
  }

  // Smallest first, as Redis orders them (glibc's qsort is a stable merge sort); the order
  // decides the order of the floating-point sums.
  std::stable_sort(src.begin(), src.end(),
                   [](const Source& x, const Source& y) { return x.size() < y.size(); });
  auto weighted = [](double score, double weight) {
    const double v = score * weight;
    return std::isnan(v) ? 0.0 : v;
  };

  if (op == ZSetOp::kInter) {
    if (src[0].size() == 0) return out;
    std::vector<absl::flat_hash_map<std::string_view, double>> others(src.size() - 1);
    for (size_t i = 1; i < src.size(); ++i) {
      others[i - 1].reserve(src[i].size());
      for (size_t k = 0; k < src[i].size(); ++k) {
        others[i - 1].emplace(src[i].reply->items[k], src[i].ScoreAt(k));
      }
    }
    for (size_t k = 0; k < src[0].size(); ++k) {
      std::string_view m = src[0].reply->items[k];
      double score = weighted(src[0].ScoreAt(k), src[0].weight);
      bool everywhere = true;
      for (size_t i = 1; i < src.size(); ++i) {
        auto it = others[i - 1].find(m);
        if (it == others[i - 1].end()) {
          everywhere = false;
          break;
        }
        AggregateInto(score, it->second * src[i].weight, p.aggregate);  // no NaN check: Redis
      }
      if (everywhere) out.push_back({m, score});
    }
    return out;
  }

  absl::flat_hash_map<std::string_view, size_t> index;  // member -> position in out
  for (const Source& s : src) {
    for (size_t k = 0; k < s.size(); ++k) {
      std::string_view m = s.reply->items[k];
      const double score = weighted(s.ScoreAt(k), s.weight);
      auto [it, added] = index.emplace(m, out.size());
      if (added) {
        out.push_back({m, score});
      } else {
        AggregateInto(out[it->second].score, score, p.aggregate);
      }
    }
  }
  return out;
}

// Round one (and the only round of ZUNION/ZINTER/ZDIFF): [kExists(destination)], then one
// kZRange per source. With a pending option error, only the sources' types matter: read one
// element of each.
void PrepareZOp(CommandContext& ctx, ZSetOp op, bool store) {
  auto p = ParseZOp(ctx.args, op, store, ctx.spec->name, &ctx.local);
  if (!p) return;
  if (store) ctx.Add(api::Op::kExists, ctx.args[1]);
  for (size_t i = 0; i < p->numkeys; ++i) {
    api::Request& r = ctx.Add(api::Op::kZRange, ctx.args[p->first_key + i]);
    r.flags = api::kWithScores | api::kAcceptSet;
    r.Set(api::IndexRange{0, p->deferred ? 0 : -1});
  }
}
void PrepareZUnion(CommandContext& ctx) { PrepareZOp(ctx, ZSetOp::kUnion, false); }
void PrepareZInter(CommandContext& ctx) { PrepareZOp(ctx, ZSetOp::kInter, false); }
void PrepareZDiff(CommandContext& ctx) { PrepareZOp(ctx, ZSetOp::kDiff, false); }
void PrepareZUnionStore(CommandContext& ctx) { PrepareZOp(ctx, ZSetOp::kUnion, true); }
void PrepareZInterStore(CommandContext& ctx) { PrepareZOp(ctx, ZSetOp::kInter, true); }
void PrepareZDiffStore(CommandContext& ctx) { PrepareZOp(ctx, ZSetOp::kDiff, true); }

void FinishZOpRead(ZSetOp op, CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  auto p = ParseZOp(ctx.args, op, false, ctx.spec->name, nullptr);  // accepted in Prepare
  if (p->deferred) return WriteError(w, *p->deferred);
  std::vector<ScoredMember> out = ComputeZOp(op, *p, calls);
  std::sort(out.begin(), out.end(), [](const ScoredMember& x, const ScoredMember& y) {
    return x.score < y.score || (!(y.score < x.score) && x.member < y.member);
  });
  WriteScoredList(
      w, out.size(), p->with_scores, w.proto() >= 3,
      [&out](size_t i) { return out[i].member; }, [&out](size_t i) { return out[i].score; });
}
void FinishZUnion(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  FinishZOpRead(ZSetOp::kUnion, ctx, calls, w);
}
void FinishZInter(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  FinishZOpRead(ZSetOp::kInter, ctx, calls, w);
}
void FinishZDiff(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  FinishZOpRead(ZSetOp::kDiff, ctx, calls, w);
}

bool FollowupZOpStore(ZSetOp op, CommandContext& ctx, std::span<Call> first_round) {
  for (const Call& c : first_round) {
    if (!c.reply.status.ok()) return false;  // Finish reports it
  }
  auto p = ParseZOp(ctx.args, op, true, ctx.spec->name, nullptr);  // accepted in Prepare
  if (p->deferred) return false;                                   // Finish reports it
  std::vector<ScoredMember> out = ComputeZOp(op, *p, first_round.subspan(1));
  std::span<std::string_view> members = ctx.scratch.Alloc<std::string_view>(out.size());
  std::span<double> scores = ctx.scratch.Alloc<double>(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    members[i] = out[i].member;
    scores[i] = out[i].score;
  }
  api::Request& r = ctx.Add(api::Op::kZStore, ctx.args[1]);
  r.args = members;
  r.scores = scores;
  return true;
}
bool FollowupZUnionStore(CommandContext& ctx, std::span<Call> first_round) {
  return FollowupZOpStore(ZSetOp::kUnion, ctx, first_round);
}
bool FollowupZInterStore(CommandContext& ctx, std::span<Call> first_round) {
  return FollowupZOpStore(ZSetOp::kInter, ctx, first_round);
}
bool FollowupZDiffStore(CommandContext& ctx, std::span<Call> first_round) {
  return FollowupZOpStore(ZSetOp::kDiff, ctx, first_round);
}

// Called with the kZStore call (answers the destination's size), or with round one when it
// failed or an option error was pending.
void FinishZOpStore(ZSetOp op, CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  if (WriteFirstError(calls, w)) return;
  if (calls[0].req.op == api::Op::kZStore) return w.Int(calls[0].reply.integer);
  auto p = ParseZOp(ctx.args, op, true, ctx.spec->name, nullptr);
  if (p && p->deferred) return WriteError(w, *p->deferred);
  w.Int(0);
}
void FinishZUnionStore(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  FinishZOpStore(ZSetOp::kUnion, ctx, calls, w);
}
void FinishZInterStore(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  FinishZOpStore(ZSetOp::kInter, ctx, calls, w);
}
void FinishZDiffStore(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  FinishZOpStore(ZSetOp::kDiff, ctx, calls, w);
}

}  // namespace

void RegisterZSetFamily(std::vector<CommandSpec>& t) {
  t.push_back({"zadd", -4, kWrite | kFast, PrepareZAdd, FinishZAdd, 1, 1, 1, "Adds members to a sorted set, or updates their scores."});
  t.push_back({"zincrby", 4, kWrite | kFast, PrepareZIncrBy, FinishZIncrBy, 1, 1, 1, "Increments the score of a member of a sorted set."});
  t.push_back({"zrem", -3, kWrite | kFast, PrepareZRem, FinishInt, 1, 1, 1, "Removes members from a sorted set."});
  t.push_back({"zscore", 3, kReadOnly | kFast, PrepareZScore, FinishZScore, 1, 1, 1, "Returns the score of a member of a sorted set."});
  t.push_back({"zmscore", -3, kReadOnly | kFast, PrepareZScore, FinishZMScore, 1, 1, 1, "Returns the scores of members of a sorted set."});
  t.push_back({"zcard", 2, kReadOnly | kFast, PrepareZCard, FinishInt, 1, 1, 1, "Returns the number of members of a sorted set."});
  t.push_back({"zcount", 4, kReadOnly | kFast, PrepareZCount, FinishInt, 1, 1, 1, "Counts the members of a sorted set within a score range."});
  t.push_back({"zlexcount", 4, kReadOnly | kFast, PrepareZLexCount, FinishZLexCount, 1, 1, 1, "Counts the members of a sorted set within a lexicographical range."});
  t.push_back({"zrange", -4, kReadOnly, PrepareZRange, FinishZRange, 1, 1, 1, "Returns members of a sorted set by rank, score or lexicographical range."});
  t.push_back({"zrevrange", -4, kReadOnly, PrepareZRevRange, FinishZRange, 1, 1, 1, "Returns members of a sorted set by rank, highest first."});
  t.push_back({"zrangebyscore", -4, kReadOnly, PrepareZRangeByScore, FinishZRange, 1, 1, 1, "Returns members of a sorted set within a score range."});
  t.push_back({"zrevrangebyscore", -4, kReadOnly, PrepareZRevRangeByScore, FinishZRange, 1, 1, 1, "Returns members of a sorted set within a score range, highest first."});
  t.push_back({"zrangebylex", -4, kReadOnly, PrepareZRangeByLex, FinishZRange, 1, 1, 1, "Returns members of a sorted set within a lexicographical range."});
  t.push_back({"zrevrangebylex", -4, kReadOnly, PrepareZRevRangeByLex, FinishZRange, 1, 1, 1, "Returns members of a sorted set within a lexicographical range, highest first."});
  t.push_back({"zrank", 3, kReadOnly | kFast, PrepareZRank, FinishZRank, 1, 1, 1, "Returns the rank of a member of a sorted set."});
  t.push_back({"zrevrank", 3, kReadOnly | kFast, PrepareZRevRank, FinishZRank, 1, 1, 1, "Returns the rank of a member of a sorted set, highest first."});
  t.push_back({"zpopmin", -2, kWrite | kFast, PrepareZPopMin, FinishZPop, 1, 1, 1, "Removes and returns the lowest-scored members of a sorted set."});
  t.push_back({"zpopmax", -2, kWrite | kFast, PrepareZPopMax, FinishZPop, 1, 1, 1, "Removes and returns the highest-scored members of a sorted set."});
  t.push_back({"zscan", -3, kReadOnly, PrepareZScan, FinishZScan, 1, 1, 1, "Iterates over the members and scores of a sorted set."});
  t.push_back({"zunion", -3, kReadOnly, PrepareZUnion, FinishZUnion, 0, 0, 0, "Returns the union of sorted sets."});
  t.push_back({"zinter", -3, kReadOnly, PrepareZInter, FinishZInter, 0, 0, 0, "Returns the intersection of sorted sets."});
  t.push_back({"zdiff", -3, kReadOnly, PrepareZDiff, FinishZDiff, 0, 0, 0, "Returns the difference of the first sorted set and the others."});
  t.push_back({"zunionstore", -4, kWrite | kEndsRound, PrepareZUnionStore, FinishZUnionStore, 1, 1, 1, "Stores the union of sorted sets in a key.", FollowupZUnionStore});
  t.push_back({"zinterstore", -4, kWrite | kEndsRound, PrepareZInterStore, FinishZInterStore, 1, 1, 1, "Stores the intersection of sorted sets in a key.", FollowupZInterStore});
  t.push_back({"zdiffstore", -4, kWrite | kEndsRound, PrepareZDiffStore, FinishZDiffStore, 1, 1, 1, "Stores the difference of sorted sets in a key.", FollowupZDiffStore});
}

}  // namespace cellar::resp
