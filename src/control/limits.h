// Limits: what a cache (and its tenant) may use. One table names every limit, its default and
// where it may be set, so the control API, the CLI, persistence and ListCaches share one
// spelling: `name=value` pairs such as `requests_per_second=500,max_item_bytes=1mib`.
//
// Layers, most specific wins: a cache's overrides, then its tenant's overrides (a tenant sets
// the defaults of all its caches), then the server's defaults (`--default-limits`). Tenant-only
// limits (`tenant_*`) cap the tenant as a whole, over all its caches.
//
// 0 means unlimited for every limit (and, for the memory shares, "an equal split").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cellar::control {

enum class LimitId : uint8_t {
  kRequestsPerSecond,     // requests (commands, calls) per second, per cache
  kReadBytesPerSecond,    // bytes answered per second (values read), per cache
  kWriteBytesPerSecond,   // bytes received per second (requests), per cache
  kMaxItemBytes,          // largest value
  kMaxTtlSeconds,         // longest TTL a write may ask for
  kMaxElementBytes,       // largest collection element (field, member, value)
  kPublishPerSecond,      // topic publishes per second, per cache
  kMaxSubscriptions,      // open topic subscriptions, per cache
  kMaxMessageBytes,       // largest topic message
  kMemoryShareBytes,      // memory a cache is entitled to under pressure (0: none of its own)
  kTenantRequestsPerSecond,    // over all the tenant's caches
  kTenantReadBytesPerSecond,
  kTenantWriteBytesPerSecond,
  kTenantMemoryShareBytes,     // memory the tenant is entitled to under pressure (0: equal split)
  kTenantMaxSubscriptions,     // open topic subscriptions over all the tenant's caches
  kCount,
};
inline constexpr size_t kNumLimits = static_cast<size_t>(LimitId::kCount);

enum class LimitUnit : uint8_t { kCount, kBytes, kSeconds };

struct LimitSpec {
  LimitId id;
  std::string_view name;
  LimitUnit unit;
  bool tenant_only;  // a tenant-wide cap; a cache cannot set it
  uint64_t default_value;
  std::string_view help;
};

// Every limit, in LimitId order.
const std::array<LimitSpec, kNumLimits>& LimitSpecs();
const LimitSpec* FindLimit(std::string_view name);

// A full set of values (what is enforced).
struct Limits {
  std::array<uint64_t, kNumLimits> v{};
  uint64_t operator[](LimitId id) const { return v[static_cast<size_t>(id)]; }
  uint64_t& operator[](LimitId id) { return v[static_cast<size_t>(id)]; }
  bool operator==(const Limits&) const = default;
  // Built-in defaults (LimitSpec::default_value).
  static Limits Defaults();
};

// Some values set (a tenant's or a cache's overrides).
struct LimitOverrides {
  std::array<std::optional<uint64_t>, kNumLimits> v{};
  const std::optional<uint64_t>& operator[](LimitId id) const { return v[static_cast<size_t>(id)]; }
  std::optional<uint64_t>& operator[](LimitId id) { return v[static_cast<size_t>(id)]; }
  bool empty() const;
  bool operator==(const LimitOverrides&) const = default;
  // Applies `other` on top: its set values replace ours; a value of kUnset clears ours.
  void Merge(const LimitOverrides& other);
};

// In a parsed update, `name=default` clears an override (falls back to the layer below).
inline constexpr uint64_t kUnset = UINT64_MAX;

// Parses `name=value[,name=value...]` (also `;` or spaces between pairs). Values: a plain
// number, a size with a unit for bytes (`64kib`, `10mb`, `1gib`, ...), a duration for seconds
// (`30s`, `15m`, `24h`, `7d`), `unlimited` (0) or `default` (kUnset: clear the override).
// `for_cache` refuses tenant-only limits. INVALID_ARGUMENT names the bad pair.
StatusOr<LimitOverrides> ParseLimits(std::string_view text, bool for_cache);
// `name=value,...` of the set values, in table order; values as plain numbers.
std::string FormatLimits(const LimitOverrides& o);
// Effective limits of a cache.
Limits Resolve(const Limits& server, const LimitOverrides& tenant, const LimitOverrides& cache);
// The value as a person reads it: "unlimited", "4.8 MiB", "86400 s", "500".
std::string HumanValue(const LimitSpec& spec, uint64_t value);

}  // namespace cellar::control
