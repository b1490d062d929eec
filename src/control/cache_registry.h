// CacheRegistry: the control plane's list of caches (name -> id), persisted in the metadata
// directory as `caches.tsv` so it survives a restart. Items are not persisted: it is a cache.
//
// Thread-safety: all methods may be called from any thread; a mutex guards the map. Lookups
// happen once per connection (AUTH), never per command, so the lock is off the hot path.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/base/thread_annotations.h>

#include "common/status.h"
#include "control/limits.h"

namespace cellar::control {

// Tenant 1 is `default`: it always exists, and the bootstrap admin key is its super-user.
inline constexpr uint32_t kDefaultTenant = 1;

struct TenantInfo {
  uint32_t id = 0;
  std::string name;
  int64_t created_ms = 0;
};

struct CacheInfo {
  uint32_t id = 0;  // unique across tenants; the engine and the router know only this
  std::string name;  // unique within its tenant
  int64_t created_ms = 0;
  uint32_t tenant_id = kDefaultTenant;
};

// 1..255 bytes of printable ASCII (0x21..0x7e): no spaces, no control bytes. Tenant names
// follow the same rule.
Status ValidateCacheName(std::string_view name);

class CacheRegistry {
 public:
  // Loads DIR/caches.tsv if present (a file from before tenants puts every cache in
  // `default`). Throws std::runtime_error on an unreadable or corrupt file (start-up only).
  explicit CacheRegistry(std::string metadata_dir);

  StatusOr<TenantInfo> CreateTenant(std::string_view name);
  std::optional<TenantInfo> FindTenant(std::string_view name) const;
  std::optional<TenantInfo> FindTenant(uint32_t id) const;
  std::vector<TenantInfo> ListTenants() const;

  // NOT_FOUND if the tenant does not exist.
  StatusOr<CacheInfo> Create(uint32_t tenant, std::string_view name);
  StatusOr<CacheInfo> Remove(uint32_t tenant, std::string_view name);
  std::optional<CacheInfo> Find(uint32_t tenant, std::string_view name) const;
  // One tenant's caches, sorted by name.
  std::vector<CacheInfo> List(uint32_t tenant) const;
  // Every cache of every tenant, sorted by (tenant id, name).
  std::vector<CacheInfo> ListAll() const;
  // Changes whenever a cache is created or removed: a name -> id looked up under an unchanged
  // generation is still right (front-ends cache lookups with it).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // ---- Limits (control/limits.h) ----
  // The server's defaults (`--default-limits`); set before serving.
  void set_server_limits(const Limits& l);
  Limits server_limits() const;
  // Applies `update` (ParseLimits) on top of a tenant's or a cache's overrides and persists.
  // NOT_FOUND for an unknown tenant or cache.
  Status UpdateTenantLimits(uint32_t tenant, const LimitOverrides& update);
  Status UpdateCacheLimits(uint32_t tenant, std::string_view cache, const LimitOverrides& update);
  LimitOverrides TenantLimits(uint32_t tenant) const;
  LimitOverrides CacheLimits(uint32_t cache_id) const;
  // The limits enforced on a cache (server defaults, tenant, cache); the tenant's own
  // (tenant_*) limits come from its overrides over the server's.
  Limits EffectiveLimits(uint32_t tenant, uint32_t cache_id) const;
  // Called (outside the lock) after every change of limits, tenants or caches, so runtime
  // state follows within the call. Set once, before serving.
  void set_on_change(std::function<void()> fn) { on_change_ = std::move(fn); }
  // Changes whenever limits change.
  uint64_t limits_generation() const { return limits_generation_.load(std::memory_order_acquire); }

 private:
  Status PersistLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Changed();

  const std::string path_;
  mutable std::mutex mu_;
  // Key: 4 bytes of tenant id (big-endian, so a tenant's caches sort together) + name.
  std::map<std::string, CacheInfo, std::less<>> by_key_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, TenantInfo, std::less<>> tenants_ ABSL_GUARDED_BY(mu_);
  uint32_t next_id_ ABSL_GUARDED_BY(mu_) = 1;  // ids are never reused
  uint32_t next_tenant_id_ ABSL_GUARDED_BY(mu_) = kDefaultTenant + 1;
  std::atomic<uint64_t> generation_{0};
  Limits server_limits_ ABSL_GUARDED_BY(mu_) = Limits::Defaults();
  std::map<uint32_t, LimitOverrides> tenant_limits_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, LimitOverrides> cache_limits_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> limits_generation_{0};
  std::function<void()> on_change_;
};

}  // namespace cellar::control
