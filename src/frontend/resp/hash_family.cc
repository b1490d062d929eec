// Hash commands (Cellar dictionaries): HSET and friends, counters, HGETALL, HSCAN.
// Argument checks come in the order Redis makes them, so errors match redis-server 7: where
// Redis looks the key up before it complains about an argument (HSCAN options), the command
// asks the engine about the key (kHLen) and Finish reports the deferred error.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

#include "common/numbers.h"
#include "frontend/resp/commands.h"

namespace cellar::resp {
namespace {

using gateway::Call;

bool CheckSize(CommandContext& ctx, std::string_view value) {
  return CheckValueSize(ctx, value.size(), /*element=*/true);
}

// args[from...] as a Request argument array (stable until the round's replies are written).
std::span<const std::string_view> ArgsFrom(CommandContext& ctx, size_t from, size_t n = SIZE_MAX) {
  return ctx.scratch.Copy(ctx.args.subspan(from, std::min(n, ctx.args.size() - from)));
}

// HSET key field value [field value ...]; HMSET answers +OK instead of the count.
void PrepareHSet(CommandContext& ctx) {
  const auto& a = ctx.args;
  if ((a.size() - 2) % 2 != 0) return WriteError(ctx.local, RespError::kWrongArity, ctx.spec->name);
  for (size_t i = 2; i < a.size(); ++i) {
    if (!CheckSize(ctx, a[i])) return;
  }
  ctx.Add(api::Op::kHSet, a[1]).args = ArgsFrom(ctx, 2);
}

void PrepareHSetNx(CommandContext& ctx) {
  if (!CheckSize(ctx, ctx.args[2]) || !CheckSize(ctx, ctx.args[3])) return;
  api::Request& r = ctx.Add(api::Op::kHSet, ctx.args[1]);
  r.args = ArgsFrom(ctx, 2, 2);
  r.flags = api::kNx;
}

// HGET, HMGET and HSTRLEN read through kHGet.
void PrepareHGet(CommandContext& ctx) {
  ctx.Add(api::Op::kHGet, ctx.args[1]).args = ArgsFrom(ctx, 2);
}

bool FieldExists(const Call& c, size_t i) {
  return c.reply.found && i < c.reply.numbers.size() && c.reply.numbers[i] != 0 &&
         i < c.reply.items.size();
}

void FinishHGet(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  if (FieldExists(c, 0)) {
    w.Bulk(c.reply.items[0]);
  } else {
    w.Null();
  }
}

void FinishHMGet(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  w.Array(c.req.args.size());
  for (size_t i = 0; i < c.req.args.size(); ++i) {
    if (FieldExists(c, i)) {
      w.Bulk(c.reply.items[i]);
    } else {
      w.Null();
    }
  }
}

void FinishHStrlen(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  w.Int(FieldExists(c, 0) ? static_cast<int64_t>(c.reply.items[0].size()) : 0);
}

// HGETALL (pairs), HKEYS (fields), HVALS (values): kHGetAll's FieldsForm selects which.
void PrepareGetAllPart(CommandContext& ctx, api::FieldsForm::Form form) {
  ctx.Add(api::Op::kHGetAll, ctx.args[1]).Set(api::FieldsForm{form});
}
void PrepareHGetAll(CommandContext& ctx) { PrepareGetAllPart(ctx, api::FieldsForm::kPairs); }
void PrepareHKeys(CommandContext& ctx) { PrepareGetAllPart(ctx, api::FieldsForm::kFields); }
void PrepareHVals(CommandContext& ctx) { PrepareGetAllPart(ctx, api::FieldsForm::kValues); }

void FinishHGetAll(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  const auto& items = c.reply.items;
  const size_t pairs = items.size() / 2;
  w.Map(pairs);  // a RESP3 map, a flat array in RESP2
  for (size_t i = 0; i < 2 * pairs; ++i) w.Bulk(items[i]);
}

void FinishItems(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  w.Array(c.reply.items.size());
  for (const auto& item : c.reply.items) w.Bulk(item);
}

void PrepareHDel(CommandContext& ctx) {
  ctx.Add(api::Op::kHDel, ctx.args[1]).args = ArgsFrom(ctx, 2);
}

void PrepareHLen(CommandContext& ctx) { ctx.Add(api::Op::kHLen, ctx.args[1]); }

void FinishHLen(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  w.Int(c.reply.found ? c.reply.integer : 0);
}

void PrepareHExists(CommandContext& ctx) {
  ctx.Add(api::Op::kHExists, ctx.args[1]).args = ArgsFrom(ctx, 2, 1);
}

// HINCRBY key field delta: the delta is checked before the key, as Redis does.
void PrepareHIncrBy(CommandContext& ctx) {
  auto d = ParseInt64(ctx.args[3]);
  if (!d) return WriteError(ctx.local, RespError::kNotInteger);
  if (!CheckSize(ctx, ctx.args[2])) return;
  api::Request& r = ctx.Add(api::Op::kHIncrBy, ctx.args[1]);
  r.args = ArgsFrom(ctx, 2, 1);
  r.Set(api::Delta{*d});
}

// HINCRBYFLOAT's increment, read as Redis's string2ld reads it: strtold, no leading space,
// nothing trailing, no NaN, and a result out of range (overflow to +-inf, underflow to zero)
// refused while denormals and a literal "inf" pass. ParseLongDouble differs at those edges
// (it refuses denormals and accepts out-of-range results), hence this local reading.
std::optional<long double> ParseIncrement(std::string_view s) {
  constexpr size_t kMaxChars = 5 * 1024;  // Redis's MAX_LONG_DOUBLE_CHARS
  if (s.empty() || s.size() >= kMaxChars) return std::nullopt;
  if (std::isspace(static_cast<unsigned char>(s[0]))) return std::nullopt;
  std::string buf(s);
  char* end = nullptr;
  errno = 0;
  const long double v = std::strtold(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size() || std::isnan(v)) return std::nullopt;
  if (errno == ERANGE && (std::isinf(v) || v == 0)) return std::nullopt;
  return v;
}

void PrepareHIncrByFloat(CommandContext& ctx) {
  auto d = ParseIncrement(ctx.args[3]);
  if (!d) return WriteError(ctx.local, RespError::kNotFloat);
  if (std::isinf(*d)) return WriteError(ctx.local, RespError::kNaNOrInfinity);
  if (!CheckSize(ctx, ctx.args[2])) return;
  api::Request& r = ctx.Add(api::Op::kHIncrByFloat, ctx.args[1]);
  r.args = ArgsFrom(ctx, 2, 1);
  r.Set(api::FloatDelta{*d});
}

void FinishBulkValue(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  if (!calls[0].reply.status.ok()) return WriteStatus(w, calls[0].reply.status);
  w.Bulk(calls[0].reply.value);
}

// HSCAN key cursor [MATCH pattern] [COUNT count]. Redis checks the cursor, then the key, then
// the options: an option error is reported only for an existing hash, so such a command
// sends kHLen with the error in `integer` and Finish decides.
enum ScanDeferred : int32_t { kNoDeferred = 0, kDeferredSyntax = 1, kDeferredNotInteger = 2 };

// The cursor as Redis reads it: strtoul, no leading space, nothing trailing, no overflow
// ("-1" is accepted and wraps, "" is 0).
std::optional<uint64_t> ParseScanCursor(std::string_view s) {
  std::string buf(s);
  if (!buf.empty() && std::isspace(static_cast<unsigned char>(buf[0]))) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(buf.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE) return std::nullopt;
  return static_cast<uint64_t>(v);
}

void PrepareHScan(CommandContext& ctx) {
  const auto& a = ctx.args;
  auto cursor = ParseScanCursor(a[2]);
  if (!cursor) return WriteError(ctx.local, RespError::kCursor);
  std::string_view pattern;
  int64_t count = 10;
  int32_t deferred = kNoDeferred;
  for (size_t i = 3; i < a.size() && deferred == kNoDeferred; ++i) {
    const bool more = i + 1 < a.size();
    if (EqualsIgnoreCase(a[i], "count") && more) {
      auto c = ParseInt64(a[++i]);
      if (!c) {
        deferred = kDeferredNotInteger;
      } else if (*c < 1) {
        deferred = kDeferredSyntax;
      } else {
        count = std::min<int64_t>(*c, 100000);
      }
    } else if (EqualsIgnoreCase(a[i], "match") && more) {
      pattern = a[++i];
    } else {
      deferred = kDeferredSyntax;
    }
  }
  if (deferred != kNoDeferred) {
    ctx.Add(api::Op::kHLen, a[1]).note = deferred;
    return;
  }
  if (!CheckPattern(ctx, pattern)) return;
  if (pattern == "*") pattern = {};
  api::Request& r = ctx.Add(api::Op::kHScan, a[1]);
  r.Set(api::Cursor{static_cast<int64_t>(*cursor), count});
  r.pattern = pattern;
}

void WriteEmptyScan(ReplyWriter& w) {
  w.Array(2);
  w.Bulk("0");
  w.Array(0);
}

void FinishHScan(CommandContext&, std::span<Call> calls, ReplyWriter& w) {
  const Call& c = calls[0];
  if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  if (c.req.op == api::Op::kHLen) {  // a deferred option error
    if (!c.reply.found) return WriteEmptyScan(w);
    if (c.req.note == kDeferredNotInteger) return WriteError(w, RespError::kNotInteger);
    return WriteError(w, RespError::kSyntax);
  }
  w.Array(2);
  w.Bulk(std::to_string(static_cast<uint64_t>(c.reply.integer)));
  w.Array(c.reply.items.size());
  for (const auto& item : c.reply.items) w.Bulk(item);
}

}  // namespace

void RegisterHashFamily(std::vector<CommandSpec>& t) {
  t.push_back({"hset", -4, kWrite | kFast, PrepareHSet, FinishInt, 1, 1, 1, "Sets fields of a hash."});
  t.push_back({"hmset", -4, kWrite | kFast, PrepareHSet, FinishOk, 1, 1, 1, "Sets fields of a hash (answers OK)."});
  t.push_back({"hsetnx", 4, kWrite | kFast, PrepareHSetNx, FinishInt, 1, 1, 1, "Sets a hash field only if it does not exist."});
  t.push_back({"hget", 3, kReadOnly | kFast, PrepareHGet, FinishHGet, 1, 1, 1, "Returns the value of a hash field."});
  t.push_back({"hmget", -3, kReadOnly | kFast, PrepareHGet, FinishHMGet, 1, 1, 1, "Returns the values of hash fields."});
  t.push_back({"hstrlen", 3, kReadOnly | kFast, PrepareHGet, FinishHStrlen, 1, 1, 1, "Returns the length of a hash field's value."});
  t.push_back({"hgetall", 2, kReadOnly, PrepareHGetAll, FinishHGetAll, 1, 1, 1, "Returns every field and value of a hash."});
  t.push_back({"hkeys", 2, kReadOnly, PrepareHKeys, FinishItems, 1, 1, 1, "Returns every field of a hash."});
  t.push_back({"hvals", 2, kReadOnly, PrepareHVals, FinishItems, 1, 1, 1, "Returns every value of a hash."});
  t.push_back({"hdel", -3, kWrite | kFast, PrepareHDel, FinishInt, 1, 1, 1, "Deletes fields of a hash."});
  t.push_back({"hlen", 2, kReadOnly | kFast, PrepareHLen, FinishHLen, 1, 1, 1, "Returns the number of fields of a hash."});
  t.push_back({"hexists", 3, kReadOnly | kFast, PrepareHExists, FinishInt, 1, 1, 1, "Tells whether a hash field exists."});
  t.push_back({"hincrby", 4, kWrite | kFast, PrepareHIncrBy, FinishInt, 1, 1, 1, "Increments the integer value of a hash field."});
  t.push_back({"hincrbyfloat", 4, kWrite | kFast, PrepareHIncrByFloat, FinishBulkValue, 1, 1, 1, "Increments the floating point value of a hash field."});
  t.push_back({"hscan", -3, kReadOnly, PrepareHScan, FinishHScan, 1, 1, 1, "Iterates over the fields and values of a hash."});
}

}  // namespace cellar::resp
