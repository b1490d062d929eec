#include "cluster/etcd_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <future>
#include <optional>
#include <utility>

#include "common/check.h"
#include "common/logging.h"
#include "metadata/local_store.h"

namespace cellar::cluster {

namespace asio = boost::asio;
using metadata::Change;
using metadata::Snapshot;
using metadata::Update;

namespace {

// Await's margin over the call's own deadline, which the client enforces: the io thread may be
// busy (a slow watch callback) before it issues the call or runs its answer.
constexpr auto kAwaitSlack = std::chrono::seconds(1);

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// The Range of every etcd key starting with `full` (root + prefix), in key order.
etcdserverpb::RangeRequest PrefixRange(const std::string& full) {
  etcdserverpb::RangeRequest req;
  // etcd refuses an empty key; "\0" .. "\0" is its spelling of "every key".
  req.set_key(full.empty() ? std::string(1, '\0') : full);
  req.set_range_end(PrefixEnd(full));
  req.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  req.set_sort_target(etcdserverpb::RangeRequest::KEY);
  return req;
}

// A Range's answer as a Snapshot, keys stripped of the root.
Snapshot ToSnapshot(const etcdserverpb::RangeResponse& r, std::string_view root) {
  Snapshot s;
  s.revision = r.header().revision();
  s.entries.reserve(static_cast<size_t>(r.kvs_size()));
  for (const mvccpb::KeyValue& kv : r.kvs()) {
    if (!CELLAR_BUG_CHECK(kv.key().starts_with(root), "etcd answered a key outside the range")) {
      continue;
    }
    s.entries.push_back(
        metadata::Entry{kv.key().substr(root.size()), kv.value(), kv.mod_revision()});
  }
  CELLAR_BUG_CHECK(!r.more(), "etcd answered part of an unlimited Range");
  return s;
}

}  // namespace

// One watch. Registered in watches_ by Watch (any thread); everything else is the io thread's.
struct EtcdStore::WatchState {
  explicit WatchState(asio::io_context& io) : timer(io) {}
  uint64_t id = 0;
  std::string prefix;  // relative to the root
  WatchFn fn;
  // Bumped by each restart and by Stop: a callback of an older round is stale and returns.
  uint64_t round = 0;
  bool stopped = false;
  bool broken = false;   // a loss was logged; the next watch etcd confirms logs the recovery
  int64_t revision = 0;  // of the last reset: where the current etcd watch started (+1)
  std::chrono::milliseconds backoff{0};
  asio::steady_timer timer;  // the backoff before a retry
  std::shared_ptr<EtcdStream> stream;
};

EtcdStore::EtcdStore(EtcdStoreOptions options)
    : options_(std::move(options)),
      description_("etcd " + Join(options_.endpoints, ",") + " " + options_.root),
      work_(asio::make_work_guard(io_)),
      client_(EtcdClient::Create(io_, EtcdOptions{.endpoints = options_.endpoints})) {
  thread_ = std::thread([this] { io_.run(); });
  io_thread_id_ = thread_.get_id();
}

EtcdStore::~EtcdStore() {
  RunOnIo([this] {
    std::unordered_map<uint64_t, std::shared_ptr<WatchState>> all;
    {
      std::lock_guard lock(mu_);
      all.swap(watches_);
    }
    for (auto& [id, w] : all) Stop(*w);
    client_->Close();
  });
  // With nothing left to do (Close ended every call and stream, Stop every timer), run()
  // returns once the callbacks those posted have run.
  work_.reset();
  thread_.join();
}

template <typename Fn>
void EtcdStore::RunOnIo(Fn fn) {
  if (OnIoThread()) {
    fn();
    return;
  }
  std::promise<void> done;
  std::future<void> ran = done.get_future();
  asio::post(io_, [&] {
    fn();
    done.set_value();
  });
  ran.wait();
}

template <typename Resp, typename Issue>
StatusOr<Resp> EtcdStore::Await(Issue issue) {
  // Shared: an answer that comes after we gave up must not write into a dead frame.
  auto result = std::make_shared<std::promise<StatusOr<Resp>>>();
  std::future<StatusOr<Resp>> answer = result->get_future();
  asio::post(io_, [issue = std::move(issue), result]() mutable {
    issue([result](StatusOr<Resp> r) { result->set_value(std::move(r)); });
  });
  if (answer.wait_for(options_.timeout + kAwaitSlack) != std::future_status::ready) {
    return Status(Code::kDeadlineExceeded,
                  fmt::format("metadata store ({}): no answer within {} ms", description_,
                              (options_.timeout + kAwaitSlack).count()));
  }
  return answer.get();
}

StatusOr<Snapshot> EtcdStore::Read(std::string_view prefix) {
  if (!CELLAR_BUG_CHECK(!OnIoThread(), "EtcdStore::Read from a watch callback")) {
    return Status(Code::kInternal, "metadata Read from the store's own thread (a watch callback)");
  }
  auto r = Await<etcdserverpb::RangeResponse>(
      [this, req = PrefixRange(options_.root + std::string(prefix))](auto done) mutable {
        client_->Range(std::move(req), options_.timeout, std::move(done));
      });
  if (!r.ok()) return r.status();
  return ToSnapshot(*r, options_.root);
}

StatusOr<int64_t> EtcdStore::Commit(std::span<const metadata::Compare> compares,
                                    std::span<const metadata::Write> writes) {
  if (compares.size() > kMaxTxnOps || writes.size() > kMaxTxnOps) {
    return Status(Code::kInvalidArgument,
                  fmt::format("a metadata commit holds at most {} compares and {} writes (etcd's "
                              "--max-txn-ops); this one has {} and {}",
                              kMaxTxnOps, kMaxTxnOps, compares.size(), writes.size()));
  }
  for (const metadata::Compare& c : compares) {
    if (Status st = metadata::ValidateKey(c.key); !st.ok()) return st;
  }
  for (const metadata::Write& w : writes) {
    if (Status st = metadata::ValidateKey(w.key); !st.ok()) return st;
  }
  if (!CELLAR_BUG_CHECK(!OnIoThread(), "EtcdStore::Commit from a watch callback")) {
    return Status(Code::kInternal,
                  "metadata Commit from the store's own thread (a watch callback)");
  }
  etcdserverpb::TxnRequest txn;
  for (const metadata::Compare& c : compares) {
    auto* cmp = txn.add_compare();
    cmp->set_key(options_.root + c.key);
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_mod_revision(c.mod_revision);
    // When a compare fails, these reads say which one (keys and revisions, no values).
    auto* read = txn.add_failure()->mutable_request_range();
    read->set_key(options_.root + c.key);
    read->set_keys_only(true);
  }
  // etcd refuses a transaction that writes one key twice; the last write wins, as it does in
  // LocalStore.
  std::unordered_map<std::string_view, size_t> last;
  for (size_t i = 0; i < writes.size(); ++i) last[writes[i].key] = i;
  for (size_t i = 0; i < writes.size(); ++i) {
    const metadata::Write& w = writes[i];
    if (last[w.key] != i) continue;
    if (w.value) {
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(options_.root + w.key);
      put->set_value(*w.value);
    } else {
      txn.add_success()->mutable_request_delete_range()->set_key(options_.root + w.key);
    }
  }
  auto r = Await<etcdserverpb::TxnResponse>([this, txn = std::move(txn)](auto done) mutable {
    client_->Txn(std::move(txn), options_.timeout, std::move(done));
  });
  if (!r.ok() && r.status().code() == Code::kDeadlineExceeded) {
    // The request may be in etcd's hands: it can still apply it (when it comes back).
    return Status(Code::kDeadlineExceeded,
                  fmt::format("the metadata store did not answer in time ({}); the change may "
                              "still be applied: check before retrying",
                              r.status().message()));
  }
  if (!r.ok()) return r.status();
  if (r->succeeded()) {
    // Only deletes of absent keys: nothing changed, and the header's revision may belong to
    // writes outside any watched prefix, which no watcher would ever reach.
    bool changed = false;
    for (const auto& op : r->responses()) {
      changed = changed || !op.has_response_delete_range() ||
                op.response_delete_range().deleted() > 0;
    }
    return changed ? r->header().revision() : 0;
  }

  counters_->conflicts.fetch_add(1, std::memory_order_relaxed);
  std::string_view key = compares.empty() ? std::string_view() : compares[0].key;
  for (size_t i = 0; i < compares.size() && i < static_cast<size_t>(r->responses_size()); ++i) {
    const auto& kvs = r->responses(static_cast<int>(i)).response_range().kvs();
    const int64_t have = kvs.empty() ? 0 : kvs[0].mod_revision();
    if (have != compares[i].mod_revision) {
      key = compares[i].key;
      break;
    }
  }
  return Status(Code::kFailedPrecondition,
                fmt::format("metadata changed concurrently ({}); read again and retry ({})", key,
                            description_));
}

uint64_t EtcdStore::Watch(std::string prefix, WatchFn fn) {
  auto w = std::make_shared<WatchState>(io_);
  w->id = next_watch_.fetch_add(1, std::memory_order_relaxed);
  w->prefix = std::move(prefix);
  w->fn = std::move(fn);
  w->backoff = options_.backoff_min;
  {
    std::lock_guard lock(mu_);
    watches_[w->id] = w;
  }
  // Unwatch may come first: then the state is gone, or stopped, and nothing starts.
  asio::post(io_, [this, weak = std::weak_ptr<WatchState>(w)] {
    auto w = weak.lock();
    if (w && !w->stopped) StartRound(w);
  });
  return w->id;
}

void EtcdStore::Unwatch(uint64_t id) {
  RunOnIo([this, id] {
    std::shared_ptr<WatchState> w;
    {
      std::lock_guard lock(mu_);
      auto it = watches_.find(id);
      if (it == watches_.end()) return;
      w = std::move(it->second);
      watches_.erase(it);
    }
    Stop(*w);
  });
}

std::string EtcdStore::Describe() const { return description_; }

void EtcdStore::Stop(WatchState& w) {
  w.stopped = true;
  ++w.round;
  w.stream.reset();  // cancels the etcd watch: silently, no callback
  w.timer.cancel();
}

// A round: Range the prefix, deliver it as a reset, then watch from its revision + 1.
void EtcdStore::StartRound(const std::shared_ptr<WatchState>& w) {
  const uint64_t round = ++w->round;
  w->stream.reset();
  client_->Range(PrefixRange(options_.root + w->prefix), options_.timeout,
                 [this, w, round](StatusOr<etcdserverpb::RangeResponse> r) {
                   OnRange(w, round, std::move(r));
                 });
}

void EtcdStore::OnRange(const std::shared_ptr<WatchState>& w, uint64_t round,
                        StatusOr<etcdserverpb::RangeResponse> r) {
  if (w->stopped || round != w->round) return;
  if (!r.ok()) return RetryLater(w, r.status());
  Update reset;
  reset.reset = true;
  reset.snapshot = ToSnapshot(*r, options_.root);
  w->revision = reset.snapshot.revision;
  w->fn(reset);
  if (w->stopped || round != w->round) return;  // unwatched from inside fn

  const std::string full = options_.root + w->prefix;
  WatchOptions opts{.key = full.empty() ? std::string(1, '\0') : full,
                    .range_end = PrefixEnd(full),
                    .start_revision = w->revision + 1,
                    .create_timeout = options_.timeout};
  // Weak: the stream's callbacks live in the stream, which the state holds.
  std::weak_ptr<WatchState> weak = w;
  w->stream = client_->Watch(
      std::move(opts),
      [this, weak, round](const etcdserverpb::WatchResponse& resp) {
        auto w = weak.lock();  // held while fn runs, even if fn unwatches
        if (w && !w->stopped && round == w->round) OnWatchResponse(w, resp);
      },
      [this, weak, round](WatchEnd end) {
        auto w = weak.lock();
        if (w && !w->stopped && round == w->round) OnWatchEnd(w, end);
      });
}

void EtcdStore::OnWatchResponse(const std::shared_ptr<WatchState>& w,
                                const etcdserverpb::WatchResponse& resp) {
  if (resp.created()) {
    if (w->broken) {
      LOG_INFO("msg=\"metadata watch resumed\" store=\"{}\" prefix=\"{}\" revision={}",
               description_, w->prefix, w->revision);
      w->broken = false;
    }
    w->backoff = options_.backoff_min;
  }
  Update update;
  update.changes.reserve(static_cast<size_t>(resp.events_size()));
  for (const mvccpb::Event& e : resp.events()) {
    const mvccpb::KeyValue& kv = e.kv();
    if (!CELLAR_BUG_CHECK(kv.key().starts_with(options_.root),
                          "etcd watch event outside the watched prefix")) {
      continue;
    }
    // A delete's kv carries the key and, as mod_revision, the delete's own revision.
    update.changes.push_back(Change{
        kv.key().substr(options_.root.size()),
        e.type() == mvccpb::Event::PUT ? std::optional<std::string>(kv.value()) : std::nullopt,
        kv.mod_revision()});
  }
  if (!update.changes.empty()) w->fn(update);
}

void EtcdStore::OnWatchEnd(const std::shared_ptr<WatchState>& w, const WatchEnd& end) {
  w->stream.reset();
  if (end.compact_revision > 0) {
    // The changes after our reset are gone from etcd's history: a new reset replaces them.
    counters_->restarts_compacted.fetch_add(1, std::memory_order_relaxed);
    LOG_WARN(
        "msg=\"metadata watch fell behind etcd's compaction; reading the prefix again\" "
        "store=\"{}\" prefix=\"{}\" revision={} compact_revision={}",
        description_, w->prefix, w->revision, end.compact_revision);
    return StartRound(w);
  }
  RetryLater(w, end.status);
}

void EtcdStore::RetryLater(const std::shared_ptr<WatchState>& w, const Status& why) {
  counters_->restarts_error.fetch_add(1, std::memory_order_relaxed);
  if (!w->broken) {
    w->broken = true;
    LOG_WARN(
        "msg=\"metadata watch lost; retrying with backoff\" store=\"{}\" prefix=\"{}\" "
        "revision={} error=\"{}\" retry_in_ms={}",
        description_, w->prefix, w->revision, why.ToString(), w->backoff.count());
  }
  w->stream.reset();
  w->timer.expires_after(w->backoff);
  w->timer.async_wait(
      [this, weak = std::weak_ptr<WatchState>(w), round = w->round](boost::system::error_code ec) {
        auto w = weak.lock();
        if (!ec && w && !w->stopped && round == w->round) StartRound(w);
      });
  w->backoff = std::min(w->backoff * 2, options_.backoff_max);
}

metrics::Source EtcdStore::Metrics() const {
  static constexpr const metrics::Def* kDefs[] = {&kEtcdCalls,
                                                  &kEtcdCallErrors,
                                                  &kEtcdConnects,
                                                  &kEtcdConnectFailures,
                                                  &kEtcdConnectionsLost,
                                                  &kEtcdOpenCalls,
                                                  &kEtcdStoreWatchRestarts,
                                                  &kEtcdStoreCommitConflicts};
  return {kDefs, [client = client_->Metrics().read,
                  weak = std::weak_ptr<Counters>(counters_)](metrics::Sink& sink) {
            client(sink);
            auto c = weak.lock();
            if (!c) return;
            constexpr auto kRelaxed = std::memory_order_relaxed;
            sink.Add(kEtcdStoreWatchRestarts, "reason=\"compacted\"",
                     c->restarts_compacted.load(kRelaxed));
            sink.Add(kEtcdStoreWatchRestarts, "reason=\"error\"", c->restarts_error.load(kRelaxed));
            sink.Add(kEtcdStoreCommitConflicts, "", c->conflicts.load(kRelaxed));
          }};
}

}  // namespace cellar::cluster
