#include "control/cache_registry.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/json.h"
#include "common/logging.h"

namespace cellar::control {

Status ValidateCacheName(std::string_view name) {
  if (name.empty() || name.size() > 255) {
    return Status(Code::kInvalidArgument, "cache name must be 1 to 255 bytes");
  }
  for (unsigned char c : name) {
    if (c < 0x21 || c > 0x7e) {
      return Status(Code::kInvalidArgument,
                    "cache name must be printable ASCII without spaces");
    }
  }
  return Status::Ok();
}

namespace {

constexpr std::string_view kIds = "catalog/ids";
constexpr std::string_view kTenants = "catalog/tenants/";
constexpr std::string_view kCaches = "catalog/caches/";
constexpr std::string_view kTenantLimits = "catalog/limits/tenant/";
constexpr std::string_view kCacheLimits = "catalog/limits/cache/";

std::string Key(uint32_t tenant, std::string_view name) {
  std::string k(4, '\0');
  k[0] = static_cast<char>(tenant >> 24);
  k[1] = static_cast<char>(tenant >> 16);
  k[2] = static_cast<char>(tenant >> 8);
  k[3] = static_cast<char>(tenant);
  k.append(name);
  return k;
}

std::string TenantKey(std::string_view name) { return std::string(kTenants) + std::string(name); }
std::string CacheKey(uint32_t tenant, std::string_view name) {
  return std::string(kCaches) + std::to_string(tenant) + "/" + std::string(name);
}
std::string TenantLimitsKey(uint32_t id) { return std::string(kTenantLimits) + std::to_string(id); }
std::string CacheLimitsKey(uint32_t id) { return std::string(kCacheLimits) + std::to_string(id); }

std::string IdsValue(uint32_t next_cache, uint32_t next_tenant) {
  return "{\"next_cache\":" + std::to_string(next_cache) +
         ",\"next_tenant\":" + std::to_string(next_tenant) + "}";
}
std::string InfoValue(uint32_t id, int64_t created_ms) {
  return "{\"id\":" + std::to_string(id) + ",\"created_ms\":" + std::to_string(created_ms) + "}";
}
std::string LimitsValue(const LimitOverrides& o) {
  return "{\"limits\":\"" + JsonEscape(FormatLimits(o)) + "\"}";
}

std::optional<uint32_t> ParseId(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || s.size() > 10) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0 || v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::optional<uint32_t> UintMember(const Json& j, std::string_view name) {
  const Json* m = j.Find(name);
  if (m == nullptr) return std::nullopt;
  auto v = m->AsUint();
  if (!v || *v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

int64_t CreatedMs(const Json& j) {
  const Json* m = j.Find("created_ms");
  auto v = m == nullptr ? std::nullopt : m->AsUint();
  return v ? static_cast<int64_t>(*v) : 0;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

CacheRegistry::CacheRegistry(metadata::Store& store) : view_(store, "catalog/") {
  Status st = view_.Start([this](const metadata::Update& u) { Apply(u); }, [this] { Changed(); });
  if (!st.ok()) throw std::runtime_error(std::string(st.message()));
}

void CacheRegistry::set_on_change(std::function<void()> fn) {
  std::lock_guard lock(hook_mu_);
  on_change_ = std::move(fn);
}

void CacheRegistry::Changed() {
  std::function<void()> fn;
  {
    std::lock_guard lock(hook_mu_);
    fn = on_change_;
  }
  if (fn) fn();
}

bool CacheRegistry::TenantKnownLocked(uint32_t id) const {
  for (const auto& [n, t] : tenants_) {
    if (t.id == id) return true;
  }
  return false;
}

// Runs under view_.mutex(). An entry the registry cannot read (written by hand, or by a newer
// version) is logged and left out rather than stopping the node.
void CacheRegistry::ApplyEntry(std::string_view key, const std::string* value, bool* caches,
                               bool* limits) {
  std::optional<Json> j;
  if (value != nullptr) {
    j = ParseJson(*value);
    if (!j || j->type != Json::Type::kObject) {
      LOG_WARN("msg=\"unreadable catalog entry left out\" key=\"{}\"", key);
      return;
    }
  }
  auto bad = [&] { LOG_WARN("msg=\"unreadable catalog entry left out\" key=\"{}\"", key); };
  if (key == kIds) {
    if (!j) return;
    if (auto n = UintMember(*j, "next_cache")) next_id_ = std::max(next_id_, *n);
    if (auto n = UintMember(*j, "next_tenant")) next_tenant_id_ = std::max(next_tenant_id_, *n);
  } else if (key.starts_with(kTenants)) {
    const std::string name(key.substr(kTenants.size()));
    if (!j) {
      tenants_.erase(name);
      *caches = true;
      return;
    }
    auto id = UintMember(*j, "id");
    if (!id || *id == 0 || !ValidateCacheName(name).ok()) return bad();
    tenants_[name] = TenantInfo{*id, name, CreatedMs(*j)};
    *caches = true;
  } else if (key.starts_with(kCaches)) {
    const std::string_view rest = key.substr(kCaches.size());
    const size_t slash = rest.find('/');
    auto tenant = slash == std::string_view::npos ? std::nullopt : ParseId(rest.substr(0, slash));
    if (!tenant) return bad();
    const std::string name(rest.substr(slash + 1));
    *caches = true;
    if (!j) {
      by_key_.erase(Key(*tenant, name));
      return;
    }
    auto id = UintMember(*j, "id");
    if (!id || !ValidateCacheName(name).ok()) return bad();
    by_key_[Key(*tenant, name)] = CacheInfo{*id, name, CreatedMs(*j), *tenant};
  } else if (key.starts_with(kTenantLimits) || key.starts_with(kCacheLimits)) {
    const bool for_cache = key.starts_with(kCacheLimits);
    auto id = ParseId(key.substr(for_cache ? kCacheLimits.size() : kTenantLimits.size()));
    if (!id) return bad();
    auto& table = for_cache ? cache_limits_ : tenant_limits_;
    *limits = true;
    if (!j) {
      table.erase(*id);
      return;
    }
    const Json* text = j->Find("limits");
    auto parsed = text == nullptr || text->type != Json::Type::kString
                      ? StatusOr<LimitOverrides>(Status(Code::kInvalidArgument, "missing"))
                      : ParseLimits(text->text, for_cache);
    if (!parsed.ok()) return bad();
    table[*id] = *parsed;
  }
}

void CacheRegistry::Apply(const metadata::Update& u) {
  bool caches = false, limits = false;
  if (u.reset) {
    by_key_.clear();
    tenants_.clear();
    tenant_limits_.clear();
    cache_limits_.clear();
    next_id_ = 1;
    next_tenant_id_ = kDefaultTenant + 1;
    caches = limits = true;
    for (const auto& e : u.snapshot.entries) ApplyEntry(e.key, &e.value, &caches, &limits);
  } else {
    for (const auto& c : u.changes) {
      ApplyEntry(c.key, c.value ? &*c.value : nullptr, &caches, &limits);
    }
  }
  tenants_["default"] = TenantInfo{kDefaultTenant, "default", 0};
  // Ids in use are never handed out again, even if the counter was written by hand.
  for (const auto& [k, info] : by_key_) next_id_ = std::max(next_id_, info.id + 1);
  for (const auto& [n, t] : tenants_) next_tenant_id_ = std::max(next_tenant_id_, t.id + 1);
  if (caches) generation_.fetch_add(1, std::memory_order_acq_rel);
  if (limits) limits_generation_.fetch_add(1, std::memory_order_acq_rel);
}

StatusOr<TenantInfo> CacheRegistry::CreateTenant(std::string_view name, int64_t* revision) {
  if (Status st = ValidateCacheName(name); !st.ok()) {
    return Status(Code::kInvalidArgument, "tenant name must be 1 to 255 bytes of printable ASCII "
                                          "without spaces");
  }
  TenantInfo t;
  auto rev = view_.Mutate([&]() -> StatusOr<metadata::Txn> {
    if (tenants_.find(name) != tenants_.end()) {
      return Status(Code::kAlreadyExists, "tenant already exists");
    }
    t = TenantInfo{next_tenant_id_, std::string(name), NowMs()};
    metadata::Txn txn;
    txn.Fence(view_.entries(), std::string(kIds));
    txn.Fence(view_.entries(), TenantKey(name));
    txn.writes.push_back({std::string(kIds), IdsValue(next_id_, t.id + 1)});
    txn.writes.push_back({TenantKey(name), InfoValue(t.id, t.created_ms)});
    return txn;
  });
  if (!rev.ok()) return rev.status();
  if (revision != nullptr) *revision = *rev;
  return t;
}

std::optional<TenantInfo> CacheRegistry::FindTenant(std::string_view name) const {
  std::lock_guard lock(view_.mutex());
  auto it = tenants_.find(name);
  if (it == tenants_.end()) return std::nullopt;
  return it->second;
}

std::optional<TenantInfo> CacheRegistry::FindTenant(uint32_t id) const {
  std::lock_guard lock(view_.mutex());
  for (const auto& [name, t] : tenants_) {
    if (t.id == id) return t;
  }
  return std::nullopt;
}

std::vector<TenantInfo> CacheRegistry::ListTenants() const {
  std::lock_guard lock(view_.mutex());
  std::vector<TenantInfo> out;
  for (const auto& [name, t] : tenants_) out.push_back(t);
  return out;
}

StatusOr<CacheInfo> CacheRegistry::Create(uint32_t tenant, std::string_view name,
                                          int64_t* revision) {
  if (Status st = ValidateCacheName(name); !st.ok()) return st;
  CacheInfo info;
  auto rev = view_.Mutate([&]() -> StatusOr<metadata::Txn> {
    if (!TenantKnownLocked(tenant)) return Status(Code::kNotFound, "tenant not found");
    if (by_key_.find(Key(tenant, name)) != by_key_.end()) {
      return Status(Code::kAlreadyExists, "cache already exists");
    }
    info = CacheInfo{next_id_, std::string(name), NowMs(), tenant};
    metadata::Txn txn;
    txn.Fence(view_.entries(), std::string(kIds));
    txn.Fence(view_.entries(), CacheKey(tenant, name));
    txn.writes.push_back({std::string(kIds), IdsValue(info.id + 1, next_tenant_id_)});
    txn.writes.push_back({CacheKey(tenant, name), InfoValue(info.id, info.created_ms)});
    return txn;
  });
  if (!rev.ok()) return rev.status();
  if (revision != nullptr) *revision = *rev;
  return info;
}

StatusOr<CacheInfo> CacheRegistry::Remove(uint32_t tenant, std::string_view name,
                                          int64_t* revision) {
  CacheInfo info;
  auto rev = view_.Mutate([&]() -> StatusOr<metadata::Txn> {
    auto it = by_key_.find(Key(tenant, name));
    if (it == by_key_.end()) return Status(Code::kNotFound, "cache not found");
    info = it->second;
    metadata::Txn txn;
    txn.Fence(view_.entries(), CacheKey(tenant, name));
    txn.writes.push_back({CacheKey(tenant, name), std::nullopt});
    txn.writes.push_back({CacheLimitsKey(info.id), std::nullopt});
    return txn;
  });
  if (!rev.ok()) return rev.status();
  if (revision != nullptr) *revision = *rev;
  return info;
}

std::optional<CacheInfo> CacheRegistry::Find(uint32_t tenant, std::string_view name) const {
  const std::string key = Key(tenant, name);
  std::lock_guard lock(view_.mutex());
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

std::vector<CacheInfo> CacheRegistry::List(uint32_t tenant) const {
  const std::string from = Key(tenant, "");
  std::lock_guard lock(view_.mutex());
  std::vector<CacheInfo> out;
  for (auto it = by_key_.lower_bound(from); it != by_key_.end() && it->second.tenant_id == tenant;
       ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<CacheInfo> CacheRegistry::ListAll() const {
  std::lock_guard lock(view_.mutex());
  std::vector<CacheInfo> out;
  out.reserve(by_key_.size());
  for (const auto& [key, info] : by_key_) out.push_back(info);
  return out;
}

void CacheRegistry::set_server_limits(const Limits& l) {
  {
    std::lock_guard lock(view_.mutex());
    server_limits_ = l;
    limits_generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  Changed();
}

Limits CacheRegistry::server_limits() const {
  std::lock_guard lock(view_.mutex());
  return server_limits_;
}

Status CacheRegistry::UpdateTenantLimits(uint32_t tenant, const LimitOverrides& update) {
  auto rev = view_.Mutate([&]() -> StatusOr<metadata::Txn> {
    if (!TenantKnownLocked(tenant)) return Status(Code::kNotFound, "tenant not found");
    LimitOverrides merged;
    if (auto it = tenant_limits_.find(tenant); it != tenant_limits_.end()) merged = it->second;
    merged.Merge(update);
    metadata::Txn txn;
    txn.Fence(view_.entries(), TenantLimitsKey(tenant));
    txn.writes.push_back({TenantLimitsKey(tenant),
                          merged.empty() ? std::nullopt : std::optional(LimitsValue(merged))});
    return txn;
  });
  return rev.status();
}

Status CacheRegistry::UpdateCacheLimits(uint32_t tenant, std::string_view cache,
                                        const LimitOverrides& update) {
  for (const LimitSpec& s : LimitSpecs()) {
    if (s.tenant_only && update[s.id]) {
      std::string msg = "'";
      msg.append(s.name).append("' is a tenant-wide limit; set it on the tenant");
      return Status(Code::kInvalidArgument, std::move(msg));
    }
  }
  auto rev = view_.Mutate([&]() -> StatusOr<metadata::Txn> {
    auto it = by_key_.find(Key(tenant, cache));
    if (it == by_key_.end()) return Status(Code::kNotFound, "cache not found");
    const uint32_t id = it->second.id;
    LimitOverrides merged;
    if (auto l = cache_limits_.find(id); l != cache_limits_.end()) merged = l->second;
    merged.Merge(update);
    metadata::Txn txn;
    txn.Fence(view_.entries(), CacheKey(tenant, cache));  // not removed meanwhile
    txn.Fence(view_.entries(), CacheLimitsKey(id));
    txn.writes.push_back({CacheLimitsKey(id),
                          merged.empty() ? std::nullopt : std::optional(LimitsValue(merged))});
    return txn;
  });
  return rev.status();
}

LimitOverrides CacheRegistry::TenantLimits(uint32_t tenant) const {
  std::lock_guard lock(view_.mutex());
  auto it = tenant_limits_.find(tenant);
  return it == tenant_limits_.end() ? LimitOverrides{} : it->second;
}

LimitOverrides CacheRegistry::CacheLimits(uint32_t cache_id) const {
  std::lock_guard lock(view_.mutex());
  auto it = cache_limits_.find(cache_id);
  return it == cache_limits_.end() ? LimitOverrides{} : it->second;
}

Limits CacheRegistry::EffectiveLimits(uint32_t tenant, uint32_t cache_id) const {
  std::lock_guard lock(view_.mutex());
  static const LimitOverrides kNone;
  auto t = tenant_limits_.find(tenant);
  auto c = cache_limits_.find(cache_id);
  return Resolve(server_limits_, t == tenant_limits_.end() ? kNone : t->second,
                 c == cache_limits_.end() ? kNone : c->second);
}

void ImportLegacyCacheList(metadata::Store& store, const std::string& dir) {
  const std::string path = dir + "/caches.tsv";
  std::ifstream in(path);
  if (!in) return;
  auto existing = store.Read("catalog/");
  if (!existing.ok()) throw std::runtime_error(std::string(existing.status().message()));
  if (!existing->entries.empty()) {
    LOG_WARN("msg=\"old cache list left alone: the metadata store already has a catalog\" "
             "file={}",
             path);
    return;
  }
  // Format: "next_id\t<n>", "next_tenant_id\t<n>", "tenant\t<id>\t<name>\t<created_ms>",
  // "tenant_limits|cache_limits\t<id>\t<limits>", then "<id>\t<name>\t<created_ms>[\t<tenant>]"
  // per cache (no tenant id: `default`).
  std::vector<metadata::Write> writes;
  uint32_t next_id = 1, next_tenant = kDefaultTenant + 1;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string a, b, c, d;
    std::getline(fields, a, '\t');
    std::getline(fields, b, '\t');
    std::getline(fields, c, '\t');
    std::getline(fields, d, '\t');
    try {
      if (a == "next_id") {
        next_id = std::max(next_id, static_cast<uint32_t>(std::stoul(b)));
      } else if (a == "next_tenant_id") {
        next_tenant = std::max(next_tenant, static_cast<uint32_t>(std::stoul(b)));
      } else if (a == "tenant_limits" || a == "cache_limits") {
        const bool for_cache = a == "cache_limits";
        auto parsed = ParseLimits(c, for_cache);
        const uint32_t id = static_cast<uint32_t>(std::stoul(b));
        if (!parsed.ok() || id == 0) throw std::invalid_argument("bad limits");
        writes.push_back({for_cache ? CacheLimitsKey(id) : TenantLimitsKey(id),
                          LimitsValue(*parsed)});
      } else if (a == "tenant") {
        const uint32_t id = static_cast<uint32_t>(std::stoul(b));
        if (!ValidateCacheName(c).ok() || id == 0) throw std::invalid_argument("bad tenant");
        next_tenant = std::max(next_tenant, id + 1);
        writes.push_back({TenantKey(c), InfoValue(id, std::stoll(d))});
      } else {
        const uint32_t id = static_cast<uint32_t>(std::stoul(a));
        const uint32_t tenant = d.empty() ? kDefaultTenant : static_cast<uint32_t>(std::stoul(d));
        if (!ValidateCacheName(b).ok() || tenant == 0) throw std::invalid_argument("bad name");
        next_id = std::max(next_id, id + 1);
        writes.push_back({CacheKey(tenant, b), InfoValue(id, std::stoll(c))});
      }
    } catch (const std::exception&) {
      throw std::runtime_error("corrupt cache list " + path + " at line " +
                               std::to_string(line_no));
    }
  }
  writes.push_back({std::string(kIds), IdsValue(next_id, next_tenant)});
  const std::vector<metadata::Compare> empty{{std::string(kIds), 0}};
  auto rev = store.Commit(empty, writes);
  if (!rev.ok()) throw std::runtime_error("cannot import " + path + ": " +
                                          std::string(rev.status().message()));
  std::filesystem::rename(path, path + ".imported");
  LOG_INFO("msg=\"imported the old cache list into the metadata store\" file={} entries={}", path,
           writes.size());
}

}  // namespace cellar::control
