#include "control/cache_registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

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

std::string Key(uint32_t tenant, std::string_view name) {
  std::string k(4, '\0');
  k[0] = static_cast<char>(tenant >> 24);
  k[1] = static_cast<char>(tenant >> 16);
  k[2] = static_cast<char>(tenant >> 8);
  k[3] = static_cast<char>(tenant);
  k.append(name);
  return k;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

CacheRegistry::CacheRegistry(std::string metadata_dir)
    : path_(std::move(metadata_dir) + "/caches.tsv") {
  std::lock_guard lock(mu_);
  tenants_["default"] = TenantInfo{kDefaultTenant, "default", 0};
  std::ifstream in(path_);
  if (!in) return;  // first start
  // Format: "next_id\t<n>", "next_tenant_id\t<n>", "tenant\t<id>\t<name>\t<created_ms>", then
  // "<id>\t<name>\t<created_ms>[\t<tenant id>]" per cache (no tenant id: `default`).
  std::string line;
  int line_no = 0;
  std::vector<CacheInfo> caches;
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
        next_id_ = static_cast<uint32_t>(std::stoul(b));
      } else if (a == "next_tenant_id") {
        next_tenant_id_ = static_cast<uint32_t>(std::stoul(b));
      } else if (a == "tenant_limits" || a == "cache_limits") {
        auto parsed = ParseLimits(c, /*for_cache=*/a == "cache_limits");
        if (!parsed.ok()) throw std::invalid_argument("bad limits");
        (a == "tenant_limits" ? tenant_limits_ : cache_limits_)[static_cast<uint32_t>(std::stoul(b))] =
            *parsed;
      } else if (a == "tenant") {
        TenantInfo t{static_cast<uint32_t>(std::stoul(b)), c, std::stoll(d)};
        if (!ValidateCacheName(t.name).ok() || t.id == 0) throw std::invalid_argument("bad tenant");
        if (t.id >= next_tenant_id_) next_tenant_id_ = t.id + 1;
        tenants_[t.name] = t;
      } else {
        CacheInfo info{static_cast<uint32_t>(std::stoul(a)), b, std::stoll(c),
                       d.empty() ? kDefaultTenant : static_cast<uint32_t>(std::stoul(d))};
        if (!ValidateCacheName(info.name).ok()) throw std::invalid_argument("bad name");
        if (info.id >= next_id_) next_id_ = info.id + 1;
        caches.push_back(std::move(info));
      }
    } catch (const std::exception&) {
      throw std::runtime_error("corrupt cache list " + path_ + " at line " +
                               std::to_string(line_no));
    }
  }
  for (auto& info : caches) {
    bool known = false;
    for (const auto& [name, t] : tenants_) known = known || t.id == info.tenant_id;
    if (!known) {
      throw std::runtime_error("corrupt cache list " + path_ + ": cache " + info.name +
                               " belongs to an unknown tenant");
    }
    by_key_[Key(info.tenant_id, info.name)] = std::move(info);
  }
}

Status CacheRegistry::PersistLocked() {
  // Write a temp file, fsync, rename: a crash leaves the old list or the new one, never half.
  std::string tmp = path_ + ".tmp";
  std::string data = "next_id\t" + std::to_string(next_id_) + "\n" + "next_tenant_id\t" +
                     std::to_string(next_tenant_id_) + "\n";
  for (const auto& [name, t] : tenants_) {
    if (t.id == kDefaultTenant) continue;
    data += "tenant\t" + std::to_string(t.id) + "\t" + name + "\t" +
            std::to_string(t.created_ms) + "\n";
  }
  for (const auto& [id, o] : tenant_limits_) {
    if (!o.empty()) data += "tenant_limits\t" + std::to_string(id) + "\t" + FormatLimits(o) + "\n";
  }
  for (const auto& [id, o] : cache_limits_) {
    if (!o.empty()) data += "cache_limits\t" + std::to_string(id) + "\t" + FormatLimits(o) + "\n";
  }
  for (const auto& [key, info] : by_key_) {
    data += std::to_string(info.id) + "\t" + info.name + "\t" + std::to_string(info.created_ms) +
            "\t" + std::to_string(info.tenant_id) + "\n";
  }
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status(Code::kInternal, "cannot write " + tmp);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) {
      ::close(fd);
      return Status(Code::kInternal, "cannot write " + tmp);
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    return Status(Code::kInternal, "cannot rename " + tmp);
  }
  return Status::Ok();
}

StatusOr<TenantInfo> CacheRegistry::CreateTenant(std::string_view name) {
  if (Status st = ValidateCacheName(name); !st.ok()) {
    return Status(Code::kInvalidArgument, "tenant name must be 1 to 255 bytes of printable ASCII "
                                          "without spaces");
  }
  TenantInfo t;
  {
    std::lock_guard lock(mu_);
    if (tenants_.find(name) != tenants_.end()) {
      return Status(Code::kAlreadyExists, "tenant already exists");
    }
    t = TenantInfo{next_tenant_id_++, std::string(name), NowMs()};
    tenants_[t.name] = t;
    if (Status st = PersistLocked(); !st.ok()) {
      tenants_.erase(t.name);
      return st;
    }
  }
  Changed();
  return t;
}

std::optional<TenantInfo> CacheRegistry::FindTenant(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = tenants_.find(name);
  if (it == tenants_.end()) return std::nullopt;
  return it->second;
}

std::optional<TenantInfo> CacheRegistry::FindTenant(uint32_t id) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, t] : tenants_) {
    if (t.id == id) return t;
  }
  return std::nullopt;
}

std::vector<TenantInfo> CacheRegistry::ListTenants() const {
  std::lock_guard lock(mu_);
  std::vector<TenantInfo> out;
  for (const auto& [name, t] : tenants_) out.push_back(t);
  return out;
}

StatusOr<CacheInfo> CacheRegistry::Create(uint32_t tenant, std::string_view name) {
  if (Status st = ValidateCacheName(name); !st.ok()) return st;
  CacheInfo info;
  {
  std::lock_guard lock(mu_);
  bool tenant_known = false;
  for (const auto& [n, t] : tenants_) tenant_known = tenant_known || t.id == tenant;
  if (!tenant_known) return Status(Code::kNotFound, "tenant not found");
  const std::string key = Key(tenant, name);
  if (by_key_.find(key) != by_key_.end()) {
    return Status(Code::kAlreadyExists, "cache already exists");
  }
  info = CacheInfo{next_id_++, std::string(name), NowMs(), tenant};
  by_key_[key] = info;
  if (Status st = PersistLocked(); !st.ok()) {
    by_key_.erase(key);
    return st;
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  Changed();
  return info;
}

StatusOr<CacheInfo> CacheRegistry::Remove(uint32_t tenant, std::string_view name) {
  CacheInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = by_key_.find(Key(tenant, name));
    if (it == by_key_.end()) return Status(Code::kNotFound, "cache not found");
    info = it->second;
    by_key_.erase(it);
    std::optional<LimitOverrides> limits;
    if (auto l = cache_limits_.find(info.id); l != cache_limits_.end()) {
      limits = l->second;
      cache_limits_.erase(l);
    }
    if (Status st = PersistLocked(); !st.ok()) {
      by_key_[Key(tenant, name)] = info;
      if (limits) cache_limits_[info.id] = *limits;
      return st;
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  Changed();
  return info;
}

std::optional<CacheInfo> CacheRegistry::Find(uint32_t tenant, std::string_view name) const {
  const std::string key = Key(tenant, name);
  std::lock_guard lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

std::vector<CacheInfo> CacheRegistry::List(uint32_t tenant) const {
  const std::string from = Key(tenant, "");
  std::lock_guard lock(mu_);
  std::vector<CacheInfo> out;
  for (auto it = by_key_.lower_bound(from); it != by_key_.end() && it->second.tenant_id == tenant;
       ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<CacheInfo> CacheRegistry::ListAll() const {
  std::lock_guard lock(mu_);
  std::vector<CacheInfo> out;
  out.reserve(by_key_.size());
  for (const auto& [key, info] : by_key_) out.push_back(info);
  return out;
}

void CacheRegistry::Changed() {
  if (on_change_) on_change_();
}

void CacheRegistry::set_server_limits(const Limits& l) {
  {
    std::lock_guard lock(mu_);
    server_limits_ = l;
    limits_generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  Changed();
}

Limits CacheRegistry::server_limits() const {
  std::lock_guard lock(mu_);
  return server_limits_;
}

Status CacheRegistry::UpdateTenantLimits(uint32_t tenant, const LimitOverrides& update) {
  {
    std::lock_guard lock(mu_);
    bool known = false;
    for (const auto& [n, t] : tenants_) known = known || t.id == tenant;
    if (!known) return Status(Code::kNotFound, "tenant not found");
    const LimitOverrides before = tenant_limits_[tenant];
    tenant_limits_[tenant].Merge(update);
    if (Status st = PersistLocked(); !st.ok()) {
      tenant_limits_[tenant] = before;
      return st;
    }
    limits_generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  Changed();
  return Status::Ok();
}

Status CacheRegistry::UpdateCacheLimits(uint32_t tenant, std::string_view cache,
                                        const LimitOverrides& update) {
  {
    std::lock_guard lock(mu_);
    auto it = by_key_.find(Key(tenant, cache));
    if (it == by_key_.end()) return Status(Code::kNotFound, "cache not found");
    for (const LimitSpec& s : LimitSpecs()) {
      if (s.tenant_only && update[s.id]) {
        return Status(Code::kInvalidArgument,
                      "'" + std::string(s.name) + "' is a tenant-wide limit; set it on the tenant");
      }
    }
    const uint32_t id = it->second.id;
    const LimitOverrides before = cache_limits_[id];
    cache_limits_[id].Merge(update);
    if (Status st = PersistLocked(); !st.ok()) {
      cache_limits_[id] = before;
      return st;
    }
    limits_generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  Changed();
  return Status::Ok();
}

LimitOverrides CacheRegistry::TenantLimits(uint32_t tenant) const {
  std::lock_guard lock(mu_);
  auto it = tenant_limits_.find(tenant);
  return it == tenant_limits_.end() ? LimitOverrides{} : it->second;
}

LimitOverrides CacheRegistry::CacheLimits(uint32_t cache_id) const {
  std::lock_guard lock(mu_);
  auto it = cache_limits_.find(cache_id);
  return it == cache_limits_.end() ? LimitOverrides{} : it->second;
}

Limits CacheRegistry::EffectiveLimits(uint32_t tenant, uint32_t cache_id) const {
  std::lock_guard lock(mu_);
  static const LimitOverrides kNone;
  auto t = tenant_limits_.find(tenant);
  auto c = cache_limits_.find(cache_id);
  return Resolve(server_limits_, t == tenant_limits_.end() ? kNone : t->second,
                 c == cache_limits_.end() ? kNone : c->second);
}

}  // namespace cellar::control
