// EtcdStore: the metadata store (metadata/store.h) of a fleet, kept in etcd and shared by every
// node. Store keys are relative to a root (etcd key = root + key, e.g. /cellar/v1/main/caches/x),
// so cells, and tests, share one etcd without seeing each other. The store's revisions are
// etcd's: a Snapshot's revision is the Range's header.revision, an Entry's or a Change's
// mod_revision the key's (for a delete: the delete's revision).
//
//  - Read: one Range of root + prefix.
//  - Commit: one Txn; each Compare is "mod revision EQUAL" (0: absent, etcd's mod revision of a
//    missing key); the writes are Puts and single-key DeleteRanges. A failed compare is
//    kFailedPrecondition naming the key; etcd's own limit of 128 operations is checked first.
//  - Watch: a Range delivered as a reset, then an etcd watch from its revision + 1. When the
//    watch ends it is restarted the same way (Range, reset, watch): at once when etcd compacted
//    the revisions it needed, else after a backoff (250 ms doubling to 5 s, reset once a watch
//    runs again). So a watcher never misses a change: it sees it, or a reset that includes it.
//
// Threading: the store owns an EtcdClient and the thread that runs its io_context; every
// client call and every watch callback happens there (one at a time, so a watch's calls never
// overlap and arrive in order). Read and Commit may be called from any other thread and block
// for at most about `timeout`; called from the store's own thread (inside a watch callback)
// they would deadlock, so they return kInternal. Watch and Unwatch may be called from any
// thread, the store's included. The store must not be destroyed from its own thread.
#pragma once

#include <absl/base/thread_annotations.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cluster/etcd_client.h"
#include "common/metrics.h"
#include "metadata/store.h"

namespace cellar::cluster {

// The store's own metrics (EtcdStore::Metrics() also carries its client's kEtcd* ones).
inline constexpr metrics::Def kEtcdStoreWatchRestarts{
    "cellar_etcd_store_watch_restarts_total", metrics::Type::kCounter,
    "Metadata watches restarted with a fresh read and a reset: etcd compacted the revisions the "
    "watch needed (reason=compacted), or the watch or its read failed (reason=error).",
    "reason"};
inline constexpr metrics::Def kEtcdStoreCommitConflicts{
    "cellar_etcd_store_commit_conflicts_total", metrics::Type::kCounter,
    "Metadata commits refused because a compared key had changed (the writer re-reads and "
    "retries).",
    ""};

struct EtcdStoreOptions {
  // "http://127.0.0.1:2379" style URLs (EtcdOptions::endpoints).
  std::vector<std::string> endpoints;
  // Prepended to every key; one per cell. Ends with '/' so that no root is a prefix of another.
  std::string root = "/cellar/v1/main/";
  // Each Read and Commit, and each Range a watch (re)starts with.
  std::chrono::milliseconds timeout{5000};
  // A failed watch is retried after backoff_min, doubled per failure up to backoff_max.
  std::chrono::milliseconds backoff_min{250};
  std::chrono::milliseconds backoff_max{5000};
};

class EtcdStore final : public metadata::Store {
 public:
  // etcd's --max-txn-ops default: more compares, or more writes, are refused before sending.
  static constexpr size_t kMaxTxnOps = 128;

  // Connects lazily: the first call does (no I/O here, no failure).
  explicit EtcdStore(EtcdStoreOptions options);
  // Ends every watch (no callback runs after this starts returning), closes the client and
  // joins its thread.
  ~EtcdStore() override;
  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  StatusOr<metadata::Snapshot> Read(std::string_view prefix) override;
  StatusOr<int64_t> Commit(std::span<const metadata::Compare> compares,
                           std::span<const metadata::Write> writes) override;
  uint64_t Watch(std::string prefix, WatchFn fn) override;
  void Unwatch(uint64_t id) override;
  std::string Describe() const override;  // "etcd http://a:2379,http://b:2379 /cellar/v1/main/"

  // The kEtcdStore* metrics and the client's kEtcd* ones; readable from any thread, and
  // harmless (no samples) once the store is gone.
  metrics::Source Metrics() const;

  const EtcdStoreOptions& options() const { return options_; }

  // For other users of the same etcd connection (cluster/membership.h): the client, and the
  // io_context its thread runs. Use the client on that thread only (post to io()).
  const std::shared_ptr<EtcdClient>& client() const { return client_; }
  boost::asio::io_context& io() { return io_; }

 private:
  struct WatchState;
  struct Counters {
    std::atomic<uint64_t> restarts_compacted{0}, restarts_error{0}, conflicts{0};
  };

  bool OnIoThread() const { return std::this_thread::get_id() == io_thread_id_; }
  // Runs fn on the io thread and waits for it (inline when already there).
  template <typename Fn>
  void RunOnIo(Fn fn);
  // Issues a unary call on the io thread and waits for its answer (bounded by the timeout).
  template <typename Resp, typename Issue>
  StatusOr<Resp> Await(Issue issue);

  // ---- watches (io thread) ----
  void StartRound(const std::shared_ptr<WatchState>& w);
  void OnRange(const std::shared_ptr<WatchState>& w, uint64_t round,
               StatusOr<etcdserverpb::RangeResponse> r);
  void OnWatchResponse(const std::shared_ptr<WatchState>& w,
                       const etcdserverpb::WatchResponse& resp);
  void OnWatchEnd(const std::shared_ptr<WatchState>& w, const WatchEnd& end);
  void RetryLater(const std::shared_ptr<WatchState>& w, const Status& why);
  void Stop(WatchState& w);

  const EtcdStoreOptions options_;
  const std::string description_;
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::shared_ptr<EtcdClient> client_;  // used on the io thread only
  std::thread thread_;
  std::thread::id io_thread_id_;
  std::atomic<uint64_t> next_watch_{1};
  // Registered watches. The map is shared with callers' threads (Watch registers, Unwatch
  // removes); a WatchState's own fields belong to the io thread.
  std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<WatchState>> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cellar::cluster
