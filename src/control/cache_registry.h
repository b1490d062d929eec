// CacheRegistry: the control plane's catalog: tenants, caches (name -> id) and limits, kept in
// the metadata store (metadata/store.h) under `catalog/`, so it survives a restart and, on a
// fleet (etcd), is shared by every node: a change made on one node reaches the others through
// the store's watch. Items are not persisted: it is a cache.
//
// Keys (values are JSON):
//   catalog/ids                       {"next_cache":N,"next_tenant":M}   ids are never reused
//   catalog/tenants/<name>            {"id":2,"created_ms":...}          (`default` is implied)
//   catalog/caches/<tenant id>/<name> {"id":7,"created_ms":...}
//   catalog/limits/tenant/<id>        {"limits":"max_items=...,..."}     (control/limits.h)
//   catalog/limits/cache/<id>         {"limits":"..."}
// Every write is a transaction fenced on the mod revision of what it was computed from (the id
// counter, the name), so two nodes creating the same name, or two caches at once, cannot both
// win or share an id.
//
// Thread-safety: all methods may be called from any thread; the view's mutex guards the
// tables. Lookups happen once per connection (AUTH), never per command, so the lock is off
// the hot path. Writes block on the store (local: a file write; etcd: a round trip).
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
#include "metadata/store.h"
#include "metadata/view.h"

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
  // Reads the catalog from the store and follows its changes. Throws std::runtime_error if
  // the store does not answer (start-up only).
  explicit CacheRegistry(metadata::Store& store);
  ~CacheRegistry() { view_.StopRefreshing(); }  // its refreshes apply to the members below
  CacheRegistry(const CacheRegistry&) = delete;
  CacheRegistry& operator=(const CacheRegistry&) = delete;

  // revision (if given): the commit's, for WhenSeen on the other nodes.
  StatusOr<TenantInfo> CreateTenant(std::string_view name, int64_t* revision = nullptr);
  std::optional<TenantInfo> FindTenant(std::string_view name) const;
  std::optional<TenantInfo> FindTenant(uint32_t id) const;
  std::vector<TenantInfo> ListTenants() const;

  // NOT_FOUND if the tenant does not exist.
  // revision (if given): the commit's, for WhenSeen on the other nodes.
  StatusOr<CacheInfo> Create(uint32_t tenant, std::string_view name, int64_t* revision = nullptr);
  StatusOr<CacheInfo> Remove(uint32_t tenant, std::string_view name, int64_t* revision = nullptr);
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
  // Called (outside the lock) after every change of limits, tenants or caches, made here or
  // (on a fleet) on another node, so runtime state follows: for a change made here, before
  // the call that made it returns.
  void set_on_change(std::function<void()> fn);
  // Changes whenever limits change.
  uint64_t limits_generation() const { return limits_generation_.load(std::memory_order_acquire); }

  // ---- Catching up with the other nodes ----
  // On a fleet, a change made on another node arrives through the store's watch, milliseconds
  // later; a cache that node just created can be asked for here first (a call it forwarded, a
  // client that connected here). Refresh reads the catalog from the store itself (on etcd a
  // linearizable read): whatever was committed anywhere before the call began is known here,
  // and on_change has run for it, when it returns. Blocking: one store round trip.
  Status Refresh() { return view_.Refresh(); }
  // Refresh on the view's own thread, for event loops (metadata::View::RefreshAsync).
  void RefreshAsync(std::function<void()> done) { view_.RefreshAsync(std::move(done)); }
  // done() once this node has applied the catalog as of `revision` (another node's commit, as
  // Create gave it there) and on_change has run for it: at once on this thread if it has,
  // else on the watch's (or a refresh's) thread.
  void WhenSeen(int64_t revision, std::function<void()> done) {
    view_.WhenVisible(revision, std::move(done));
  }
  // Before the loops that RefreshAsync's callers post to go.
  void StopRefreshing() { view_.StopRefreshing(); }
  uint64_t refreshes() const { return view_.refreshes(); }
  // The catalog's revision as this node has applied it (at least that of every change made
  // here that has returned): what the other nodes are asked to reach after one.
  int64_t revision() const { return view_.revision(); }

 private:
  void Apply(const metadata::Update& u);
  void ApplyEntry(std::string_view key, const std::string* value, bool* caches, bool* limits);
  void Changed();
  bool TenantKnownLocked(uint32_t id) const;

  metadata::View view_;
  // Derived from view_.entries(), guarded by view_.mutex().
  // Key: 4 bytes of tenant id (big-endian, so a tenant's caches sort together) + name.
  std::map<std::string, CacheInfo, std::less<>> by_key_;
  std::map<std::string, TenantInfo, std::less<>> tenants_;
  uint32_t next_id_ = 1;  // ids are never reused
  uint32_t next_tenant_id_ = kDefaultTenant + 1;
  std::map<uint32_t, LimitOverrides> tenant_limits_;
  std::map<uint32_t, LimitOverrides> cache_limits_;
  Limits server_limits_ = Limits::Defaults();  // this process's flags, not in the store
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> limits_generation_{0};
  std::mutex hook_mu_;
  std::function<void()> on_change_ ABSL_GUARDED_BY(hook_mu_);
};

// Moves a cache list from before the metadata store (DIR/caches.tsv; one from before tenants
// puts every cache in `default`) into the store, once: only when the store has no catalog yet;
// the file is then renamed caches.tsv.imported. Throws std::runtime_error on a corrupt file.
void ImportLegacyCacheList(metadata::Store& store, const std::string& dir);

}  // namespace cellar::control
