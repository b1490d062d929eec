// LocalStore: the metadata store of the embedded single-node default, one file in the data
// directory (`metadata.tsv`, mode 0600: it holds signing secrets), rewritten through a temp
// file, fsync and rename on every commit, so a crash leaves the old version or the new one.
// With no directory it keeps everything in memory: the fake the unit tests run against.
//
// Thread-safety: every method may be called from any thread. Watchers are called on the
// committing thread, after the commit, one commit at a time and in revision order.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <absl/base/thread_annotations.h>

#include "metadata/store.h"

namespace cellar::metadata {

class LocalStore final : public Store {
 public:
  // Loads DIR/metadata.tsv if present. Throws std::runtime_error on an unreadable or corrupt
  // file (start-up only). An empty dir: memory only.
  explicit LocalStore(std::string dir);

  StatusOr<Snapshot> Read(std::string_view prefix) override;
  StatusOr<int64_t> Commit(std::span<const Compare> compares,
                           std::span<const Write> writes) override;
  uint64_t Watch(std::string prefix, WatchFn fn) override;
  void Unwatch(uint64_t id) override;
  std::string Describe() const override;

  // The file (empty: memory only).
  const std::string& path() const { return path_; }

 private:
  struct Watcher {
    uint64_t id;
    std::string prefix;
    WatchFn fn;
  };
  Snapshot ReadLocked(std::string_view prefix) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status PersistLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  // Held while a commit is applied and delivered, so watchers see commits in order.
  std::mutex deliver_mu_;
  std::vector<Watcher> watchers_ ABSL_GUARDED_BY(deliver_mu_);
  uint64_t next_watch_ ABSL_GUARDED_BY(deliver_mu_) = 1;
  mutable std::mutex mu_;  // the data; taken after deliver_mu_
  std::map<std::string, Entry, std::less<>> data_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
};

// Keys are 1..512 bytes of printable ASCII without spaces (cache names are printable ASCII).
Status ValidateKey(std::string_view key);

}  // namespace cellar::metadata
