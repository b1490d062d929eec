// EtcdStore against a real etcd (etcd_test_server.h: Debian's etcd-server on free loopback
// ports, data in a temp dir, stopped after each test). Every wait is bounded; no etcd installed
// is a failure, not a skip.
#include "cluster/etcd_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_test_server.h"
#include "metadata/view.h"

namespace cellar::cluster {
namespace {

using namespace std::chrono_literals;
using metadata::Compare;
using metadata::Update;
using metadata::View;
using metadata::Write;
using SteadyClock = std::chrono::steady_clock;

std::vector<Write> Put(std::string k, std::string v) { return {Write{std::move(k), std::move(v)}}; }
std::vector<Write> Delete(std::string k) { return {Write{std::move(k), std::nullopt}}; }

// Compacts etcd's history up to `revision`, with a client of its own (bounded: 5 s).
Status CompactAt(const std::string& url, int64_t revision) {
  boost::asio::io_context io;
  auto client = EtcdClient::Create(io, EtcdOptions{.endpoints = {url}});
  etcdserverpb::CompactionRequest req;
  req.set_revision(revision);
  std::optional<Status> done;
  client->Compact(req, 2s, [&](StatusOr<etcdserverpb::CompactionResponse> r) {
    done = r.ok() ? Status::Ok() : r.status();
  });
  const auto end = SteadyClock::now() + 5s;
  while (!done && SteadyClock::now() < end) io.run_one_for(20ms);
  client->Close();
  io.run_for(1s);  // returns once what Close posted has run
  return done.value_or(Status(Code::kInternal, "test: no answer to Compact"));
}

// Polls pred every 10 ms until it holds or `limit` passes; returns pred().
bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto end = SteadyClock::now() + limit;
  while (!pred() && SteadyClock::now() < end) std::this_thread::sleep_for(10ms);
  return pred();
}

// A watch's updates, as they came (on the store's thread), and the prefix they describe; the
// test's thread waits on them. Also checks what a watcher may rely on: calls never overlap,
// and revisions never go back.
class Recorder {
 public:
  metadata::Store::WatchFn Fn() {
    return [this](const Update& u) { Add(u); };
  }

  void Add(const Update& u) {
    if (in_fn_.exchange(true)) overlapped_ = true;
    {
      std::lock_guard lock(mu_);
      updates_.push_back(u);
      if (u.reset) {
        if (u.snapshot.revision < revision_) went_back_ = true;
        state_.clear();
        for (const auto& e : u.snapshot.entries) state_[e.key] = e.value;
        revision_ = u.snapshot.revision;
        last_change_ = 0;
      } else {
        for (const auto& c : u.changes) {
          if (c.mod_revision <= revision_ && c.mod_revision != last_change_) went_back_ = true;
          last_change_ = c.mod_revision;
          revision_ = std::max(revision_, c.mod_revision);
          if (c.value) {
            state_[c.key] = *c.value;
          } else {
            state_.erase(c.key);
          }
        }
      }
    }
    cv_.notify_all();
    in_fn_ = false;
  }

  // Waits (at most `limit`) until pred(updates, state) holds; returns whether it did.
  bool WaitUntil(const std::function<bool(const std::vector<Update>&,
                                          const std::map<std::string, std::string>&)>& pred,
                 std::chrono::milliseconds limit = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return pred(updates_, state_); });
  }
  bool WaitForCount(size_t n, std::chrono::milliseconds limit = 10s) {
    return WaitUntil([n](const auto& u, const auto&) { return u.size() >= n; }, limit);
  }

  std::vector<Update> updates() const {
    std::lock_guard lock(mu_);
    return updates_;
  }
  std::map<std::string, std::string> state() const {
    std::lock_guard lock(mu_);
    return state_;
  }
  size_t resets() const {
    std::lock_guard lock(mu_);
    return std::count_if(updates_.begin(), updates_.end(), [](const Update& u) { return u.reset; });
  }
  bool overlapped() const { return overlapped_; }
  bool went_back() const {
    std::lock_guard lock(mu_);
    return went_back_;
  }

 private:
  std::atomic<bool> in_fn_{false}, overlapped_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Update> updates_;
  std::map<std::string, std::string> state_;
  int64_t revision_ = 0;
  int64_t last_change_ = 0;  // changes of one commit share a revision
  bool went_back_ = false;
};

uint64_t Metric(const EtcdStore& store, const metrics::Def& def, std::string_view labels = {}) {
  const metrics::Source sources[] = {store.Metrics()};
  return metrics::Snapshot(sources).Value(def, labels);
}

class EtcdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = etcd_.Start();
    ASSERT_EQ(why, "") << "starting etcd failed";
  }

  std::unique_ptr<EtcdStore> NewStore(std::string root = "/cellar/v1/test/") {
    return std::make_unique<EtcdStore>(
        EtcdStoreOptions{.endpoints = {etcd_.url()}, .root = std::move(root)});
  }

  EtcdTestServer etcd_;
};

TEST_F(EtcdStoreTest, CommitsAreFencedByModRevision) {
  auto store = NewStore();
  auto r1 = store->Commit({}, Put("a/x", "1"));
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_GT(*r1, 0);

  // Create if absent: compare on mod revision 0 holds only while the key does not exist.
  const std::vector<Compare> x_absent{{"a/x", 0}};
  auto taken = store->Commit(x_absent, Put("a/x", "2"));
  ASSERT_EQ(taken.status().code(), Code::kFailedPrecondition) << taken.status().ToString();
  EXPECT_NE(taken.status().message().find("metadata changed concurrently (a/x); read again"),
            std::string::npos)
      << taken.status().message();
  EXPECT_NE(taken.status().message().find(store->Describe()), std::string::npos);
  const std::vector<Compare> new_absent{{"a/new", 0}};
  auto created = store->Commit(new_absent, Put("a/new", "n"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(store->Commit(new_absent, Put("a/new", "again")).status().code(),
            Code::kFailedPrecondition);

  // Fenced on the current mod revision: succeeds once, then that revision is stale.
  const std::vector<Compare> at1{{"a/x", *r1}};
  auto r2 = store->Commit(at1, Put("a/x", "2"));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_GT(*r2, *created);
  EXPECT_EQ(store->Commit(at1, Put("a/x", "3")).status().code(), Code::kFailedPrecondition);

  // A failed compare writes nothing, and the message names the compare that failed.
  const std::vector<Compare> one_stale{{"a/x", *r2}, {"a/new", 0}};
  const std::vector<Write> both{{"a/x", "bad"}, {"a/y", "bad"}};
  auto refused = store->Commit(one_stale, both);
  ASSERT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("(a/new)"), std::string::npos)
      << refused.status().message();
  auto snap = store->Read("a/");
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  ASSERT_EQ(snap->entries.size(), 2u);
  EXPECT_EQ(snap->entries[0].key, "a/new");
  EXPECT_EQ(snap->entries[1].key, "a/x");
  EXPECT_EQ(snap->entries[1].value, "2");
  EXPECT_EQ(snap->entries[1].mod_revision, *r2);
  EXPECT_EQ(snap->revision, *r2);

  // Several writes land at one revision: puts, a delete, and a key written twice (the last
  // write wins, as in LocalStore; etcd itself refuses a key twice in one transaction).
  const std::vector<Compare> at2{{"a/x", *r2}, {"a/new", *created}};
  const std::vector<Write> many{
      {"a/y", "first"}, {"a/z", "z"}, {"a/x", std::nullopt}, {"a/y", "y"}};
  auto r3 = store->Commit(at2, many);
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_EQ(*r3, *r2 + 1);
  snap = store->Read("a/");
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->entries.size(), 3u);
  EXPECT_EQ(snap->entries[0].key, "a/new");
  EXPECT_EQ(snap->entries[1].key, "a/y");
  EXPECT_EQ(snap->entries[1].value, "y");
  EXPECT_EQ(snap->entries[1].mod_revision, *r3);
  EXPECT_EQ(snap->entries[2].key, "a/z");
  EXPECT_EQ(snap->entries[2].mod_revision, *r3);

  // Refused before anything is sent: bad keys (written or compared), more than etcd's 128
  // operations.
  EXPECT_EQ(store->Commit({}, Put("has space", "v")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Commit({}, Put("", "v")).status().code(), Code::kInvalidArgument);
  const std::vector<Compare> bad_compare{{"bad\tkey", 0}};
  EXPECT_EQ(store->Commit(bad_compare, Put("a/ok", "v")).status().code(), Code::kInvalidArgument);
  std::vector<Write> writes;
  for (size_t i = 0; i < EtcdStore::kMaxTxnOps; ++i) {
    writes.push_back(Write{"many/" + std::to_string(i), "v"});
  }
  auto most = store->Commit({}, writes);
  ASSERT_TRUE(most.ok()) << most.status().ToString();
  writes.push_back(Write{"many/last", "v"});
  auto too_many = store->Commit({}, writes);
  EXPECT_EQ(too_many.status().code(), Code::kInvalidArgument) << too_many.status().ToString();
  EXPECT_EQ(store->Read("many/")->entries.size(), EtcdStore::kMaxTxnOps);
  EXPECT_EQ(Metric(*store, kEtcdStoreCommitConflicts), 4u);
}

TEST_F(EtcdStoreTest, ReadIsConfinedToItsPrefixAndItsRoot) {
  auto a = NewStore("/cellar/v1/a/");
  auto b = NewStore("/cellar/v1/b/");
  auto parent = NewStore("/cellar/v1/");
  const std::vector<Write> in_a{{"x/2", "2"}, {"x/1", "1"}, {"y/1", "y"}, {"x", "bare"}};
  auto ra = a->Commit({}, in_a);
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  auto rb = b->Commit({}, Put("x/3", "3"));
  ASSERT_TRUE(rb.ok());

  auto xs = a->Read("x/");
  ASSERT_TRUE(xs.ok()) << xs.status().ToString();
  ASSERT_EQ(xs->entries.size(), 2u);  // not "x", not "y/1", not b's "x/3"
  EXPECT_EQ(xs->entries[0].key, "x/1");
  EXPECT_EQ(xs->entries[0].value, "1");
  EXPECT_EQ(xs->entries[0].mod_revision, *ra);
  EXPECT_EQ(xs->entries[1].key, "x/2");
  EXPECT_EQ(xs->revision, *rb);  // the store's revision, not the prefix's

  auto everything = a->Read("");
  ASSERT_TRUE(everything.ok());
  std::vector<std::string> keys;
  for (const auto& e : everything->entries) keys.push_back(e.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"x", "x/1", "x/2", "y/1"}));

  auto theirs = b->Read("x/");
  ASSERT_TRUE(theirs.ok());
  ASSERT_EQ(theirs->entries.size(), 1u);
  EXPECT_EQ(theirs->entries[0].key, "x/3");

  // In etcd each key is root + key.
  auto above = parent->Read("a/x/");
  ASSERT_TRUE(above.ok());
  ASSERT_EQ(above->entries.size(), 2u);
  EXPECT_EQ(above->entries[0].key, "a/x/1");

  auto none = a->Read("z/");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->entries.empty());
  EXPECT_EQ(none->revision, *rb);
  EXPECT_EQ(a->Describe(), "etcd " + etcd_.url() + " /cellar/v1/a/");
}

TEST_F(EtcdStoreTest, WatchDeliversAResetThenChangesInOrderWithDeleteRevisions) {
  Recorder rec;  // outlives the store, whose watch calls it
  auto store = NewStore();
  ASSERT_TRUE(store->Commit({}, Put("p/before", "b")).ok());
  const uint64_t id = store->Watch("p/", rec.Fn());
  ASSERT_TRUE(rec.WaitForCount(1));

  ASSERT_TRUE(store->Commit({}, Put("q/other", "not watched")).ok());
  auto r1 = store->Commit({}, Put("p/one", "1"));
  ASSERT_TRUE(r1.ok());
  auto r2 = store->Commit({}, Delete("p/before"));
  ASSERT_TRUE(r2.ok());
  const std::vector<Write> two{{"p/a", "A"}, {"p/b", "B"}};
  auto r3 = store->Commit({}, two);
  ASSERT_TRUE(r3.ok());
  ASSERT_TRUE(rec.WaitUntil([](const auto&, const auto& state) { return state.count("p/b"); }));

  const auto updates = rec.updates();
  ASSERT_TRUE(updates[0].reset);
  ASSERT_EQ(updates[0].snapshot.entries.size(), 1u);
  EXPECT_EQ(updates[0].snapshot.entries[0].key, "p/before");
  EXPECT_LT(updates[0].snapshot.revision, *r1);
  // etcd may put several commits' events in one response, never one commit's in two: the
  // changes in order, each commit's within one update.
  struct Seen {
    size_t update;
    metadata::Change change;
  };
  std::vector<Seen> seen;
  for (size_t i = 1; i < updates.size(); ++i) {
    ASSERT_FALSE(updates[i].reset);
    for (const auto& c : updates[i].changes) seen.push_back(Seen{i, c});
  }
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].change.key, "p/one");
  EXPECT_EQ(seen[0].change.value, "1");
  EXPECT_EQ(seen[0].change.mod_revision, *r1);
  // etcd reports a delete with the delete's own revision as the kv's mod revision.
  EXPECT_EQ(seen[1].change.key, "p/before");
  EXPECT_FALSE(seen[1].change.value.has_value());
  EXPECT_EQ(seen[1].change.mod_revision, *r2);
  EXPECT_EQ(seen[2].change.key, "p/a");
  EXPECT_EQ(seen[2].change.value, "A");
  EXPECT_EQ(seen[3].change.key, "p/b");
  EXPECT_EQ(seen[2].change.mod_revision, *r3);
  EXPECT_EQ(seen[3].change.mod_revision, *r3);
  EXPECT_EQ(seen[2].update, seen[3].update);

  // Deleting an absent key changes nothing: no update, and revision 0 (nothing to wait for).
  auto noop = store->Commit({}, Delete("p/never"));
  ASSERT_TRUE(noop.ok());
  EXPECT_EQ(*noop, 0);

  store->Unwatch(id);
  ASSERT_TRUE(store->Commit({}, Put("p/after", "a")).ok());
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(rec.updates().size(), updates.size());
  EXPECT_FALSE(rec.overlapped());
  EXPECT_FALSE(rec.went_back());
}

TEST_F(EtcdStoreTest, AWatchCallbackMayUnwatchButNotReadOrCommit) {
  std::atomic<uint64_t> id{0};
  std::promise<std::pair<Status, Status>> seen;
  auto got = seen.get_future();
  std::atomic<int> calls{0};
  auto store = NewStore();
  id = store->Watch("w/", [&](const Update& u) {
    if (calls++ != 1) return;  // the first change
    auto read = store->Read("w/");
    auto commit = store->Commit({}, Put("w/from-callback", "x"));
    store->Unwatch(id);  // from the store's own thread: at once
    seen.set_value({read.status(), commit.status()});
  });
  ASSERT_TRUE(Eventually([&] { return calls >= 1; }, 5s));
  ASSERT_TRUE(store->Commit({}, Put("w/1", "1")).ok());
  ASSERT_EQ(got.wait_for(10s), std::future_status::ready);
  const auto [read, commit] = got.get();
  EXPECT_EQ(read.code(), Code::kInternal) << read.ToString();
  EXPECT_EQ(commit.code(), Code::kInternal) << commit.ToString();
  ASSERT_TRUE(store->Commit({}, Put("w/2", "2")).ok());
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(store->Read("w/from-callback")->entries.empty());
}

// The watcher lags (its callback is slow) while others write and etcd compacts past the
// revision its watch must start from: the watch ends "compacted", and the store reads the
// prefix again and delivers it as a reset, then carries on with changes.
TEST_F(EtcdStoreTest, AWatchRecoversWhenEtcdCompactedWhatItNeeded) {
  Recorder rec;
  std::promise<void> go;  // a test that fails early breaks it: the callback then returns
  std::shared_future<void> gate = go.get_future().share();
  std::atomic<bool> first{true};
  auto slow = NewStore();
  auto writer = NewStore();
  ASSERT_TRUE(writer->Commit({}, Put("p/a", "1")).ok());

  const uint64_t id = slow->Watch("p/", [&](const Update& u) {
    rec.Add(u);
    if (first.exchange(false)) gate.wait_for(20s);  // bounded: never hangs the test
  });
  ASSERT_TRUE(rec.WaitForCount(1));
  const int64_t reset_revision = rec.updates()[0].snapshot.revision;

  ASSERT_TRUE(writer->Commit({}, Put("p/b", "2")).ok());
  ASSERT_TRUE(writer->Commit({}, Delete("p/a")).ok());
  auto last = writer->Commit({}, Put("p/c", "3"));
  ASSERT_TRUE(last.ok());
  ASSERT_GT(*last, reset_revision + 1);
  const Status compacted = CompactAt(etcd_.url(), *last);
  ASSERT_TRUE(compacted.ok()) << compacted.ToString();
  go.set_value();

  ASSERT_TRUE(rec.WaitForCount(2));
  const Update again = rec.updates()[1];
  ASSERT_TRUE(again.reset) << "the changes after the first reset were compacted away";
  EXPECT_GE(again.snapshot.revision, *last);
  const std::map<std::string, std::string> want = {{"p/b", "2"}, {"p/c", "3"}};
  EXPECT_EQ(rec.state(), want);
  EXPECT_EQ(Metric(*slow, kEtcdStoreWatchRestarts, "reason=\"compacted\""), 1u);
  EXPECT_EQ(Metric(*slow, kEtcdStoreWatchRestarts, "reason=\"error\""), 0u);

  auto after = writer->Commit({}, Put("p/d", "4"));
  ASSERT_TRUE(after.ok());
  ASSERT_TRUE(rec.WaitForCount(3));
  const Update change = rec.updates()[2];
  ASSERT_FALSE(change.reset);
  ASSERT_EQ(change.changes.size(), 1u);
  EXPECT_EQ(change.changes[0].key, "p/d");
  EXPECT_EQ(change.changes[0].mod_revision, *after);
  slow->Unwatch(id);
  EXPECT_FALSE(rec.went_back());
}

// etcd stops (history compacted first, so only a fresh read can say what is there) and comes
// back on the same ports with the same data: commits fail meanwhile, the watch retries with
// backoff, then delivers a reset with everything and carries on.
TEST_F(EtcdStoreTest, AWatchSurvivesAnEtcdRestart) {
  Recorder rec, dropped;
  auto store = NewStore();
  const uint64_t id = store->Watch("p/", rec.Fn());
  const uint64_t unwatched = store->Watch("p/", dropped.Fn());
  ASSERT_TRUE(rec.WaitForCount(1));
  auto r1 = store->Commit({}, Put("p/1", "1"));
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(rec.WaitForCount(2));
  ASSERT_TRUE(CompactAt(etcd_.url(), *r1).ok());

  etcd_.Stop();
  auto down = store->Commit({}, Put("p/lost", "x"));
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), Code::kUnavailable) << down.status().ToString();
  auto unread = store->Read("p/");
  EXPECT_EQ(unread.status().code(), Code::kUnavailable) << unread.status().ToString();
  // Unwatch in the middle of the retries returns at once, and that watch stays quiet.
  ASSERT_TRUE(Eventually(
      [&] { return Metric(*store, kEtcdStoreWatchRestarts, "reason=\"error\"") >= 2; }, 5s));
  const auto before = SteadyClock::now();
  store->Unwatch(unwatched);
  EXPECT_LT(SteadyClock::now() - before, 1s);
  const size_t dropped_seen = dropped.updates().size();

  const std::string why = etcd_.Restart();
  ASSERT_EQ(why, "") << "restarting etcd failed";
  auto r2 = store->Commit({}, Put("p/2", "2"));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  // Backoff: at most 5 s between tries once etcd is back.
  const std::map<std::string, std::string> want = {{"p/1", "1"}, {"p/2", "2"}};
  ASSERT_TRUE(rec.WaitUntil([&](const auto& u, const auto& state) { return state == want; }, 20s))
      << "the watch did not come back after etcd did";
  EXPECT_GE(rec.resets(), 2u);

  auto r3 = store->Commit({}, Put("p/3", "3"));
  ASSERT_TRUE(r3.ok());
  ASSERT_TRUE(rec.WaitUntil([](const auto&, const auto& state) { return state.count("p/3"); }));
  const Update last = rec.updates().back();
  ASSERT_FALSE(last.reset);
  EXPECT_EQ(last.changes[0].mod_revision, *r3);
  EXPECT_EQ(dropped.updates().size(), dropped_seen);
  EXPECT_FALSE(rec.went_back());
  EXPECT_FALSE(rec.overlapped());
  store->Unwatch(id);
}

// Two nodes, each with its own EtcdStore, and a View of the same prefix on each.
TEST_F(EtcdStoreTest, ViewsOnTwoNodesSeeEachOtherAndLoseNoIncrement) {
  auto node_a = NewStore();
  auto node_b = NewStore();
  View a(*node_a, "c/"), b(*node_b, "c/");
  ASSERT_TRUE(a.Start([](const Update&) {}, nullptr).ok());
  ASSERT_TRUE(b.Start([](const Update&) {}, nullptr).ok());

  auto set = a.Mutate([&]() -> StatusOr<metadata::Txn> {
    metadata::Txn t;
    t.Fence(a.entries(), "c/name");
    t.writes.push_back(Write{"c/name", "hello"});
    return t;
  });
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_TRUE(Eventually(
      [&] {
        std::lock_guard lock(b.mutex());
        auto it = b.entries().find("c/name");
        return it != b.entries().end() && it->second.value == "hello";
      },
      1s))
      << "a write through one node's view reaches the other's within a second";

  auto increment = [](View& v) {
    return [&v]() -> StatusOr<metadata::Txn> {
      metadata::Txn t;
      auto it = v.entries().find("c/n");
      const int n = it == v.entries().end() ? 0 : std::stoi(it->second.value);
      t.Fence(v.entries(), "c/n");
      t.writes.push_back(Write{"c/n", std::to_string(n + 1)});
      return t;
    };
  };
  constexpr int kEach = 50;
  // Every increment lands exactly once: lost races are retried inside Mutate (with a random
  // pause, so the loser of a race gets through), none is lost, none applied twice.
  std::atomic<int> failed{0};
  std::string first_error;
  std::mutex error_mu;
  auto run = [&](View& v) {
    for (int i = 0; i < kEach; ++i) {
      StatusOr<int64_t> r = v.Mutate(increment(v));
      if (!r.ok()) {
        std::lock_guard lock(error_mu);
        if (failed++ == 0) first_error = r.status().ToString();
      }
    }
  };
  std::thread ta([&] { run(a); });
  std::thread tb([&] { run(b); });
  ta.join();
  tb.join();
  EXPECT_EQ(failed, 0) << first_error;
  RecordProperty("commit_conflicts", std::to_string(Metric(*node_a, kEtcdStoreCommitConflicts) +
                                                    Metric(*node_b, kEtcdStoreCommitConflicts)));
  auto snap = node_a->Read("c/");
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->entries.size(), 2u);
  ASSERT_EQ(snap->entries[0].key, "c/n");
  const std::string total = snap->entries[0].value;
  EXPECT_EQ(total, std::to_string(2 * kEach));
  for (View* v : {&a, &b}) {
    EXPECT_TRUE(Eventually(
        [&] {
          std::lock_guard lock(v->mutex());
          auto it = v->entries().find("c/n");
          return it != v->entries().end() && it->second.value == total;
        },
        1s));
  }
}

// No etcd at all: calls fail fast with kUnavailable, a watch keeps retrying quietly, and both
// Unwatch and the destructor end it without a hang.
TEST(EtcdStoreNoServerTest, UnreachableEtcdFailsFastAndWatchesStopCleanly) {
  std::atomic<int> calls{0};
  const std::string url = "http://127.0.0.1:" + std::to_string(FreePort());
  auto store = std::make_unique<EtcdStore>(EtcdStoreOptions{
      .endpoints = {url}, .root = "/r/", .timeout = 1s, .backoff_min = 20ms, .backoff_max = 40ms});
  EXPECT_EQ(store->Describe(), "etcd " + url + " /r/");
  auto r = store->Read("x/");
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  auto c = store->Commit({}, Put("x/1", "1"));
  EXPECT_EQ(c.status().code(), Code::kUnavailable) << c.status().ToString();

  const uint64_t one = store->Watch("x/", [&](const Update&) { ++calls; });
  store->Watch("y/", [&](const Update&) { ++calls; });  // left for the destructor
  ASSERT_TRUE(Eventually(
      [&] { return Metric(*store, kEtcdStoreWatchRestarts, "reason=\"error\"") >= 6; }, 5s));
  store->Unwatch(one);
  store->Unwatch(one);  // twice: harmless
  store->Unwatch(12345);
  const metrics::Source sources[] = {store->Metrics()};
  store.reset();
  EXPECT_EQ(calls, 0);
  // The source outlives the store: no samples, no crash.
  EXPECT_EQ(metrics::Snapshot(sources).Total(kEtcdStoreWatchRestarts), 0u);
}

}  // namespace
}  // namespace cellar::cluster
