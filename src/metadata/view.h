// View: an in-memory copy of one prefix of a metadata Store, kept current by the store's watch
// (on a fleet, within the watch delay: milliseconds), with fenced read-modify-write on top.
// The control plane's registries (CacheRegistry, SigningKeyStore) each keep one and derive
// their lookup tables from it in `apply`.
//
// Consistency: the copy is the prefix as of revision(); an update at or below it is stale and
// dropped (a refresh after a conflict and the watch may deliver the same change twice). A
// writer reads its own writes: Mutate returns once the view has applied the commit.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metadata/store.h"

namespace cellar::metadata {

// A read-modify-write: the writes, and the mod revisions of what they were computed from.
struct Txn {
  std::vector<Compare> compares;
  std::vector<Write> writes;
  // Fences the write on key's current mod revision in this view (0 when absent).
  void Fence(const std::map<std::string, Entry, std::less<>>& entries, std::string key);
};

class View {
 public:
  using Entries = std::map<std::string, Entry, std::less<>>;
  // Runs under mutex() once entries() holds the update (stale changes removed): the owner
  // updates its derived state (a reset: rebuilds it from entries()).
  using ApplyFn = std::function<void(const Update&)>;

  View(Store& store, std::string prefix);
  ~View();
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  // Starts the watch; the first update (the whole prefix) is applied before this returns on a
  // local store, and waited for (bounded) on a remote one. `changed` runs after each applied
  // update, outside the lock.
  Status Start(ApplyFn apply, std::function<void()> changed);

  // Guards entries() and whatever the owner derives from them in apply.
  std::mutex& mutex() const { return mu_; }
  const Entries& entries() const { return entries_; }  // under mutex()
  int64_t revision() const;

  // Calls plan under mutex() to build a transaction from the current copy, commits it, and
  // waits until the view has applied it. When a fence fails (someone else wrote first), the
  // view is refreshed from the store and plan runs again after a short random pause, at most
  // 16 times (about 0.5 s of pauses). An error from plan
  // is returned as is (nothing written).
  StatusOr<int64_t> Mutate(const std::function<StatusOr<Txn>()>& plan);

  // Reads the prefix from the store itself (on etcd a linearizable read) and applies it if it
  // is newer than what the watch brought; returns once `changed` has run for it. Whatever was
  // committed anywhere before the call began is then in this view. Blocking: one round trip;
  // never from the store's thread.
  Status Refresh();

  // fn() once the view has applied `revision` (and `changed` has run for it): at once, on
  // this thread, if it has; else on the thread that applies it. Never called if the view goes
  // first. For a node told of a change another node committed, waiting without blocking.
  void WhenVisible(int64_t revision, std::function<void()> fn);

  // Refresh on the view's own thread, for event loops that must not block: `done` runs on that
  // thread once a refresh that began after this call has ended (callers meanwhile share the
  // next one). One store read at a time, and reads start at least kRefreshSpacingMs apart, so
  // lookups that keep missing (a name that does not exist) cost the store little.
  static constexpr int kRefreshSpacingMs = 100;
  void RefreshAsync(std::function<void()> done);
  // Ends the refresh thread (waiting for a read under way); callbacks still waiting (those of
  // RefreshAsync and WhenVisible), and later ones, are dropped without running. Before the
  // loops they post to go.
  void StopRefreshing();
  // Refreshes done (Refresh and RefreshAsync).
  uint64_t refreshes() const { return refreshes_.load(std::memory_order_relaxed); }

  Store& store() const { return store_; }

 private:
  void OnUpdate(const Update& u);
  void WaitFor(int64_t revision);
  void RefreshLoop();

  Store& store_;
  const std::string prefix_;
  ApplyFn apply_;
  std::function<void()> changed_;
  uint64_t watch_id_ = 0;
  bool watching_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Entries entries_;
  int64_t revision_ = -1;  // applied to entries_ (-1: nothing yet)
  int64_t visible_ = -1;   // applied and `changed` has run: what WaitFor waits for
  std::multimap<int64_t, std::function<void()>> when_visible_;  // by revision; under mu_
  bool stopped_ = false;  // StopRefreshing: WhenVisible drops its callbacks; under mu_

  std::atomic<uint64_t> refreshes_{0};
  std::mutex refresh_mu_;
  std::condition_variable refresh_cv_;
  std::vector<std::function<void()>> refresh_waiting_;  // under refresh_mu_
  bool refresh_stop_ = false;                            // under refresh_mu_
  std::thread refresh_thread_;  // started by the first RefreshAsync
};

}  // namespace cellar::metadata
