// CacheRegistry: the control plane's list of caches (name -> id), persisted in the metadata
// directory as `caches.tsv` so it survives a restart. Items are not persisted: it is a cache.
//
// Thread-safety: all methods may be called from any thread; a mutex guards the map. Lookups
// happen once per connection (AUTH), never per command, so the lock is off the hot path.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/base/thread_annotations.h>

#include "common/status.h"

namespace cellar::control {

struct CacheInfo {
  uint32_t id = 0;
  std::string name;
  int64_t created_ms = 0;
};

// 1..255 bytes of printable ASCII (0x21..0x7e): no spaces, no control bytes.
Status ValidateCacheName(std::string_view name);

class CacheRegistry {
 public:
  // Loads DIR/caches.tsv if present. Throws std::runtime_error on an unreadable or corrupt
  // file (start-up only).
  explicit CacheRegistry(std::string metadata_dir);

  StatusOr<CacheInfo> Create(std::string_view name);
  StatusOr<CacheInfo> Remove(std::string_view name);
  std::optional<CacheInfo> Find(std::string_view name) const;
  std::vector<CacheInfo> List() const;
  // Changes whenever a cache is created or removed: a name -> id looked up under an unchanged
  // generation is still right (front-ends cache lookups with it).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  Status PersistLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable std::mutex mu_;
  std::map<std::string, CacheInfo, std::less<>> by_name_ ABSL_GUARDED_BY(mu_);
  uint32_t next_id_ ABSL_GUARDED_BY(mu_) = 1;  // ids are never reused
  std::atomic<uint64_t> generation_{0};
};

}  // namespace cellar::control
