#include "control/limits.h"

#include <cctype>
#include <cstdio>

#include "common/numbers.h"

namespace cellar::control {

namespace {

constexpr uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;

// Defaults are at least as generous as Momento's (PROTOCOL.md §1.2: 500 requests/s, 10 MiB/s,
// 4883 KiB items, 86400 s TTL, 100 publishes/s, 100 subscriptions, 100 KiB messages): a
// self-hosted fleet sizes its own hardware, so the caps are there to stop a runaway client,
// and an operator tightens them per tenant.
const std::array<LimitSpec, kNumLimits> kSpecs = {{
    {LimitId::kRequestsPerSecond, "requests_per_second", LimitUnit::kCount, false, 100000,
     "requests (commands, calls) per second"},
    {LimitId::kReadBytesPerSecond, "read_bytes_per_second", LimitUnit::kBytes, false,
     256 * kMiB, "bytes of values read per second"},
    {LimitId::kWriteBytesPerSecond, "write_bytes_per_second", LimitUnit::kBytes, false,
     256 * kMiB, "bytes of requests written per second"},
    {LimitId::kMaxItemBytes, "max_item_bytes", LimitUnit::kBytes, false, 4883 * kKiB,
     "largest value"},
    // Unlimited by default: Redis clients set TTLs years ahead (EXPIREAT), and items without a
    // TTL are never capped. An operator caps it per tenant or cache.
    {LimitId::kMaxTtlSeconds, "max_ttl_seconds", LimitUnit::kSeconds, false, 0,
     "longest TTL a write may ask for (items without a TTL are not capped)"},
    {LimitId::kMaxElementBytes, "max_element_bytes", LimitUnit::kBytes, false, 4883 * kKiB,
     "largest collection element (field, member, list value)"},
    {LimitId::kPublishPerSecond, "publish_per_second", LimitUnit::kCount, false, 100000,
     "topic publishes per second"},
    {LimitId::kMaxSubscriptions, "max_subscriptions", LimitUnit::kCount, false, 100000,
     "open topic subscriptions"},
    {LimitId::kMaxMessageBytes, "max_message_bytes", LimitUnit::kBytes, false, 100 * kKiB,
     "largest topic message"},
    {LimitId::kMemoryShareBytes, "memory_share_bytes", LimitUnit::kBytes, false, 0,
     "memory the cache keeps under pressure before its items go first (0: no share of its "
     "own)"},
    {LimitId::kTenantRequestsPerSecond, "tenant_requests_per_second", LimitUnit::kCount, true, 0,
     "requests per second over all the tenant's caches"},
    {LimitId::kTenantReadBytesPerSecond, "tenant_read_bytes_per_second", LimitUnit::kBytes, true,
     0, "bytes read per second over all the tenant's caches"},
    {LimitId::kTenantWriteBytesPerSecond, "tenant_write_bytes_per_second", LimitUnit::kBytes,
     true, 0, "bytes written per second over all the tenant's caches"},
    {LimitId::kTenantMemoryShareBytes, "tenant_memory_share_bytes", LimitUnit::kBytes, true, 0,
     "memory the tenant keeps under pressure (0: an equal split among tenants)"},
    {LimitId::kTenantMaxSubscriptions, "tenant_max_subscriptions", LimitUnit::kCount, true,
     100000, "open topic subscriptions over all the tenant's caches"},
}};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "123", "64kib", "10mb", "1.5gib" (bytes); "30s", "15m", "24h", "7d" (seconds).
std::optional<uint64_t> ParseValue(LimitUnit unit, std::string_view text) {
  const std::string s = Lower(text);
  size_t digits = 0;
  while (digits < s.size() && (std::isdigit(static_cast<unsigned char>(s[digits])) || s[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  auto number = ParseLongDouble(std::string_view(s).substr(0, digits));
  if (!number || *number < 0) return std::nullopt;
  const std::string suffix = s.substr(digits);
  long double mult = 1;
  if (suffix.empty()) {
    mult = 1;
  } else if (unit == LimitUnit::kBytes) {
    if (suffix == "b") mult = 1;
    else if (suffix == "k" || suffix == "kb" || suffix == "kib") mult = kKiB;
    else if (suffix == "m" || suffix == "mb" || suffix == "mib") mult = kMiB;
    else if (suffix == "g" || suffix == "gb" || suffix == "gib") mult = kGiB;
    else if (suffix == "t" || suffix == "tb" || suffix == "tib") mult = kGiB * 1024.0L;
    else return std::nullopt;
  } else if (unit == LimitUnit::kSeconds) {
    if (suffix == "s") mult = 1;
    else if (suffix == "m") mult = 60;
    else if (suffix == "h") mult = 3600;
    else if (suffix == "d") mult = 86400;
    else return std::nullopt;
  } else if (suffix == "k") {
    mult = 1000;
  } else if (suffix == "m") {
    mult = 1000000;
  } else {
    return std::nullopt;
  }
  const long double v = *number * mult;
  if (v >= 1.8e19L) return std::nullopt;
  const uint64_t out = static_cast<uint64_t>(v);
  if (static_cast<long double>(out) != v) return std::nullopt;  // a fraction of a unit
  return out;
}

}  // namespace

const std::array<LimitSpec, kNumLimits>& LimitSpecs() { return kSpecs; }

const LimitSpec* FindLimit(std::string_view name) {
  for (const LimitSpec& s : kSpecs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Limits Limits::Defaults() {
  Limits l;
  for (const LimitSpec& s : kSpecs) l[s.id] = s.default_value;
  return l;
}

bool LimitOverrides::empty() const {
  for (const auto& x : v) {
    if (x) return false;
  }
  return true;
}

void LimitOverrides::Merge(const LimitOverrides& other) {
  for (size_t i = 0; i < kNumLimits; ++i) {
    if (!other.v[i]) continue;
    if (*other.v[i] == kUnset) {
      v[i].reset();
    } else {
      v[i] = other.v[i];
    }
  }
}

StatusOr<LimitOverrides> ParseLimits(std::string_view text, bool for_cache) {
  LimitOverrides out;
  size_t i = 0;
  auto is_sep = [](char c) { return c == ',' || c == ';' || c == ' ' || c == '\t' || c == '\n'; };
  while (i < text.size()) {
    while (i < text.size() && is_sep(text[i])) ++i;
    if (i >= text.size()) break;
    size_t end = i;
    while (end < text.size() && !is_sep(text[end])) ++end;
    const std::string_view pair = text.substr(i, end - i);
    i = end;
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return Status(Code::kInvalidArgument,
                    "limits are name=value pairs; got '" + std::string(pair) + "'");
    }
    const std::string name = Lower(pair.substr(0, eq));
    const std::string_view value = pair.substr(eq + 1);
    const LimitSpec* spec = FindLimit(name);
    if (spec == nullptr) {
      std::string known;
      for (const LimitSpec& s : kSpecs) known.append(known.empty() ? "" : ", ").append(s.name);
      return Status(Code::kInvalidArgument,
                    "unknown limit '" + name + "' (known: " + known + ")");
    }
    if (for_cache && spec->tenant_only) {
      return Status(Code::kInvalidArgument,
                    "'" + name + "' is a tenant-wide limit; set it on the tenant");
    }
    const std::string lv = Lower(value);
    std::optional<uint64_t> v;
    if (lv == "default") {
      v = kUnset;
    } else if (lv == "unlimited" || lv == "none") {
      v = 0;
    } else {
      v = ParseValue(spec->unit, value);
    }
    if (!v) {
      const char* hint = spec->unit == LimitUnit::kBytes     ? "bytes, e.g. 4096 or 64kib"
                         : spec->unit == LimitUnit::kSeconds ? "seconds, e.g. 3600 or 24h"
                                                             : "a whole number, e.g. 500";
      return Status(Code::kInvalidArgument, "bad value '" + std::string(value) + "' for " +
                                                name + ": expected " + hint +
                                                ", 'unlimited' or 'default'");
    }
    out[spec->id] = *v;
  }
  return out;
}

std::string FormatLimits(const LimitOverrides& o) {
  std::string out;
  for (const LimitSpec& s : kSpecs) {
    const auto& v = o[s.id];
    if (!v) continue;
    if (!out.empty()) out += ',';
    out.append(s.name).append("=").append(std::to_string(*v));
  }
  return out;
}

Limits Resolve(const Limits& server, const LimitOverrides& tenant, const LimitOverrides& cache) {
  Limits out = server;
  for (size_t i = 0; i < kNumLimits; ++i) {
    if (cache.v[i]) {
      out.v[i] = *cache.v[i];
    } else if (tenant.v[i]) {
      out.v[i] = *tenant.v[i];
    }
  }
  return out;
}

std::string HumanValue(const LimitSpec& spec, uint64_t value) {
  if (value == 0) {
    return spec.id == LimitId::kTenantMemoryShareBytes ? "equal split"
           : spec.id == LimitId::kMemoryShareBytes     ? "none"
                                                       : "unlimited";
  }
  char buf[64];
  switch (spec.unit) {
    case LimitUnit::kBytes:
      if (value >= kGiB && value % kGiB == 0) {
        std::snprintf(buf, sizeof buf, "%llu GiB", static_cast<unsigned long long>(value / kGiB));
      } else if (value >= kMiB && value % kMiB == 0) {
        std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(value / kMiB));
      } else if (value >= kKiB && value % kKiB == 0) {
        std::snprintf(buf, sizeof buf, "%llu KiB", static_cast<unsigned long long>(value / kKiB));
      } else {
        std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(value));
      }
      return buf;
    case LimitUnit::kSeconds:
      if (value % 86400 == 0) {
        std::snprintf(buf, sizeof buf, "%llu d", static_cast<unsigned long long>(value / 86400));
      } else if (value % 3600 == 0) {
        std::snprintf(buf, sizeof buf, "%llu h", static_cast<unsigned long long>(value / 3600));
      } else {
        std::snprintf(buf, sizeof buf, "%llu s", static_cast<unsigned long long>(value));
      }
      return buf;
    case LimitUnit::kCount:
      break;
  }
  return std::to_string(value);
}

}  // namespace cellar::control
