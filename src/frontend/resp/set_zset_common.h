// Argument checks shared by the set and sorted-set command families (set_family.cc,
// zset_family.cc), with Redis 7's rules and error words.
#pragma once

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/numbers.h"
#include "frontend/resp/commands.h"

namespace cellar::resp {

// Writes the first error status among the calls; false if there is none.
inline bool WriteFirstError(std::span<const gateway::Call> calls, ReplyWriter& w) {
  for (const gateway::Call& c : calls) {
    if (!c.reply.status.ok()) {
      WriteStatus(w, c.reply.status);
      return true;
    }
  }
  return false;
}

// Members above the item size limit are refused, like string values (string_family).
inline bool CheckMemberSize(CommandContext& ctx, std::string_view member) {
  return CheckValueSize(ctx, member.size(), /*element=*/true);
}

// SSCAN/ZSCAN cursor as Redis reads it (strtoul, base 10): no leading space, nothing after the
// digits, no overflow; "" is 0 and "-1" wraps, as in Redis.
inline std::optional<uint64_t> ParseScanCursor(std::string_view s) {
  if (!s.empty() && std::isspace(static_cast<unsigned char>(s[0]))) return std::nullopt;
  const std::string buf(s);  // strtoul needs the terminating NUL
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(buf.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE) return std::nullopt;
  return static_cast<uint64_t>(v);
}

// Errors Redis finds only after it has looked the key up (so a missing key answers first and
// a key of another type answers WRONGTYPE first). The command then asks the engine about the
// key with a cheap call and Finish reports the error.
enum class DeferredError : int32_t { kNone = 0, kSyntax, kNotInteger };

inline void WriteDeferred(ReplyWriter& w, DeferredError e) {
  if (e == DeferredError::kNotInteger) return WriteError(w, RespError::kNotInteger);
  WriteError(w, RespError::kSyntax);
}

// SSCAN/ZSCAN options after the cursor: [MATCH pattern] [COUNT n], each possibly repeated.
struct ScanOptions {
  std::string_view pattern;  // empty: every element
  int64_t count = 10;
  DeferredError error = DeferredError::kNone;
};

inline ScanOptions ParseScanOptions(std::span<const std::string_view> a, size_t first) {
  ScanOptions o;
  for (size_t i = first; i < a.size(); i += 2) {
    const bool has_value = i + 1 < a.size();
    if (has_value && EqualsIgnoreCase(a[i], "count")) {
      auto c = ParseInt64(a[i + 1]);
      if (!c) {
        o.error = DeferredError::kNotInteger;
        return o;
      }
      if (*c < 1) {
        o.error = DeferredError::kSyntax;
        return o;
      }
      o.count = std::min<int64_t>(*c, 100000);
    } else if (has_value && EqualsIgnoreCase(a[i], "match")) {
      o.pattern = a[i + 1] == "*" ? std::string_view() : a[i + 1];
    } else {
      o.error = DeferredError::kSyntax;
      return o;
    }
  }
  return o;
}

inline void WriteEmptyScan(ReplyWriter& w) {
  w.Array(2);
  w.Bulk("0");
  w.Array(0);
}

}  // namespace cellar::resp
