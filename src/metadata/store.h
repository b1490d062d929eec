// The control plane's metadata (tenants, caches, limits, signing keys, the admin key's hash)
// as a small versioned key-value store, so the same code runs on one machine and on a fleet:
//   - LocalStore (metadata/local_store.h): the embedded single-node default, a file in the
//     data directory; with no directory, memory only (the fake that unit tests use);
//   - EtcdStore (cluster/etcd_store.h): etcd, shared by every node, changes seen by watch.
//
// The model is etcd's: every commit gets the next revision; a key's mod revision is the
// revision of its last write. Writes are optimistic transactions fenced by mod revisions
// (CLUSTER.md: leases are not locks; every control write compares): a commit applies all of
// its writes, or none when any compared key changed since it was read (kFailedPrecondition:
// re-read, try again). Views (metadata/view.h) keep an in-memory copy of one prefix up to date.
//
// Keys are relative to the store's root (etcd: /cellar/v1/<cell>/), printable ASCII; values
// are JSON text (readable with etcdctl).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cellar::metadata {

struct Entry {
  std::string key;
  std::string value;
  int64_t mod_revision = 0;
};

// A prefix as of one revision, entries sorted by key.
struct Snapshot {
  int64_t revision = 0;
  std::vector<Entry> entries;
};

// Holds when the key's mod revision is `mod_revision`; 0 means the key is absent.
struct Compare {
  std::string key;
  int64_t mod_revision = 0;
};

// Sets key to value; no value deletes the key (deleting an absent key is no change).
struct Write {
  std::string key;
  std::optional<std::string> value;
};

// One change seen by a watch: the key's new value (none: deleted) at mod_revision.
struct Change {
  std::string key;
  std::optional<std::string> value;
  int64_t mod_revision = 0;
};

// What a watch delivers: either the changes that followed the last update, in revision order,
// or (reset) the whole prefix again as of `snapshot.revision`: first, and again whenever the
// store could not say what changed (etcd compacted the history, the connection broke).
struct Update {
  bool reset = false;
  Snapshot snapshot;            // reset only
  std::vector<Change> changes;  // !reset only
};

class Store {
 public:
  virtual ~Store() = default;

  // Every entry under prefix, as of one revision.
  virtual StatusOr<Snapshot> Read(std::string_view prefix) = 0;

  // Applies every write, atomically, if every compare holds; returns the commit's revision, or
  // 0 when it changed nothing (only deletes of absent keys).
  // kFailedPrecondition when a compare failed (nothing written); kUnavailable / kDeadlineExceeded when
  // the store could not be reached (the outcome is then unknown: re-read before retrying).
  virtual StatusOr<int64_t> Commit(std::span<const Compare> compares,
                                   std::span<const Write> writes) = 0;

  // Calls fn with a reset of prefix, then with every change under it, in order, until
  // Unwatch(id). Calls for one watch never overlap; they come from the store's thread (local:
  // the committing thread, after the commit), so fn must not call Commit or Read itself.
  using WatchFn = std::function<void(const Update&)>;
  virtual uint64_t Watch(std::string prefix, WatchFn fn) = 0;
  // After it returns, fn is not running and will not be called again.
  virtual void Unwatch(uint64_t id) = 0;

  // For logs and status pages: "local /var/lib/cellar/metadata.tsv", "etcd 127.0.0.1:2379 /cellar/v1/main/".
  virtual std::string Describe() const = 0;
};

}  // namespace cellar::metadata
