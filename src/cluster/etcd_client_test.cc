// The etcd client against a real etcd (Debian's etcd-server, 3.4): each test starts its own
// etcd on free loopback ports with its data in a temp dir (--unsafe-no-fsync) and stops it
// after. No etcd installed is a failure, not a skip: scripts/setup.sh installs it.
#include "cluster/etcd_client.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cluster/etcd_test_server.h"

namespace cellar::cluster {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using etcdserverpb::Compare;
using SteadyClock = std::chrono::steady_clock;

// Runs the io_context (bounded by time) and waits for results.
class Loop {
 public:
  Loop() : guard_(asio::make_work_guard(io_)) {}
  asio::io_context& io() { return io_; }

  // Runs handlers until pred() or `limit` passes; returns pred().
  template <typename Pred>
  bool RunUntil(Pred pred, std::chrono::milliseconds limit) {
    const auto end = SteadyClock::now() + limit;
    while (!pred() && SteadyClock::now() < end) io_.run_one_for(20ms);
    return pred();
  }
  void RunFor(std::chrono::milliseconds d) {
    RunUntil([] { return false; }, d);
  }

  // Issues a call and waits for its one callback (at most `limit`).
  template <typename Resp, typename Issue>
  StatusOr<Resp> Await(Issue issue, std::chrono::milliseconds limit = 10s) {
    // Shared: a callback arriving after the limit must not write into a dead frame.
    auto result = std::make_shared<std::optional<StatusOr<Resp>>>();
    issue([result](StatusOr<Resp> r) { result->emplace(std::move(r)); });
    if (!RunUntil([&] { return result->has_value(); }, limit)) {
      return Status(Code::kInternal, "test: no callback within the limit (a hang)");
    }
    return std::move(**result);
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
};

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = etcd_.Start();
    ASSERT_EQ(why, "") << "starting etcd failed";
    client_ = EtcdClient::Create(loop_.io(), EtcdOptions{.endpoints = {etcd_.url()}});
  }

  void TearDown() override {
    if (client_) client_->Close();
    loop_.RunFor(50ms);  // let posted callbacks run before the fixture goes
    etcd_.Stop();
  }

  StatusOr<etcdserverpb::PutResponse> Put(const std::string& k, const std::string& v,
                                          int64_t lease = 0) {
    etcdserverpb::PutRequest req;
    req.set_key(k);
    req.set_value(v);
    req.set_lease(lease);
    return loop_.Await<etcdserverpb::PutResponse>([&](auto done) { client_->Put(req, 2s, done); });
  }
  StatusOr<etcdserverpb::RangeResponse> Get(const std::string& k, bool prefix = false,
                                            int64_t revision = 0) {
    etcdserverpb::RangeRequest req;
    req.set_key(k);
    if (prefix) req.set_range_end(PrefixEnd(k));
    req.set_revision(revision);
    return loop_.Await<etcdserverpb::RangeResponse>(
        [&](auto done) { client_->Range(req, 2s, done); });
  }
  StatusOr<etcdserverpb::DeleteRangeResponse> Delete(const std::string& k, bool prefix = false) {
    etcdserverpb::DeleteRangeRequest req;
    req.set_key(k);
    if (prefix) req.set_range_end(PrefixEnd(k));
    return loop_.Await<etcdserverpb::DeleteRangeResponse>(
        [&](auto done) { client_->DeleteRange(req, 2s, done); });
  }
  StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& req) {
    return loop_.Await<etcdserverpb::TxnResponse>([&](auto done) { client_->Txn(req, 2s, done); });
  }
  StatusOr<etcdserverpb::LeaseGrantResponse> Grant(int64_t ttl) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    return loop_.Await<etcdserverpb::LeaseGrantResponse>(
        [&](auto done) { client_->LeaseGrant(req, 2s, done); });
  }
  StatusOr<etcdserverpb::LeaseRevokeResponse> Revoke(int64_t id) {
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(id);
    return loop_.Await<etcdserverpb::LeaseRevokeResponse>(
        [&](auto done) { client_->LeaseRevoke(req, 2s, done); });
  }

  Loop loop_;
  EtcdTestServer etcd_;
  std::shared_ptr<EtcdClient> client_;
};

TEST_F(EtcdClientTest, PutGetAndPrefixRange) {
  auto p1 = Put("/t/a", "1");
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_GT(p1->header().revision(), 0);
  ASSERT_TRUE(Put("/t/b", "2").ok());
  ASSERT_TRUE(Put("/u/c", "3").ok());

  auto one = Get("/t/a");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->kvs_size(), 1);
  EXPECT_EQ(one->kvs(0).value(), "1");
  EXPECT_EQ(one->kvs(0).mod_revision(), p1->header().revision());
  EXPECT_EQ(one->kvs(0).version(), 1);

  auto prefix = Get("/t/", true);
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
  ASSERT_EQ(prefix->kvs_size(), 2);
  EXPECT_EQ(prefix->kvs(0).key(), "/t/a");
  EXPECT_EQ(prefix->kvs(1).key(), "/t/b");

  auto missing = Get("/t/none");
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_EQ(missing->kvs_size(), 0);
  EXPECT_EQ(client_->connects(), 1u);  // one HTTP/2 connection carried every call
}

TEST_F(EtcdClientTest, DeleteOneKeyAndAPrefix) {
  ASSERT_TRUE(Put("/d/a", "1").ok());
  ASSERT_TRUE(Put("/d/b", "2").ok());
  ASSERT_TRUE(Put("/d/c", "3").ok());
  auto del = Delete("/d/a");
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(del->deleted(), 1);
  EXPECT_EQ(Get("/d/a")->kvs_size(), 0);
  auto rest = Delete("/d/", true);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->deleted(), 2);
  EXPECT_EQ(Get("/d/", true)->kvs_size(), 0);
  EXPECT_EQ(Delete("/d/a")->deleted(), 0);
}

etcdserverpb::TxnRequest CasOnModRevision(const std::string& key, int64_t mod_revision,
                                          const std::string& value) {
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key(key);
  cmp->set_target(Compare::MOD);
  cmp->set_result(Compare::EQUAL);
  cmp->set_mod_revision(mod_revision);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  txn.add_failure()->mutable_request_range()->set_key(key);
  return txn;
}

TEST_F(EtcdClientTest, TxnCompareAndSwap) {
  auto put = Put("/x/k", "v1");
  ASSERT_TRUE(put.ok());
  const int64_t rev = put->header().revision();

  auto ok = Txn(CasOnModRevision("/x/k", rev, "v2"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->succeeded());
  ASSERT_EQ(ok->responses_size(), 1);
  EXPECT_TRUE(ok->responses(0).has_response_put());

  // The same compare now fails: the else branch reads the value the winner wrote.
  auto lost = Txn(CasOnModRevision("/x/k", rev, "v3"));
  ASSERT_TRUE(lost.ok()) << lost.status().ToString();
  EXPECT_FALSE(lost->succeeded());
  ASSERT_EQ(lost->responses_size(), 1);
  ASSERT_EQ(lost->responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(lost->responses(0).response_range().kvs(0).value(), "v2");

  // Create if absent: create_revision == 0.
  etcdserverpb::TxnRequest create;
  auto* cmp = create.add_compare();
  cmp->set_key("/x/new");
  cmp->set_target(Compare::CREATE);
  cmp->set_create_revision(0);
  create.add_success()->mutable_request_put()->set_key("/x/new");
  EXPECT_TRUE(Txn(create)->succeeded());
  EXPECT_FALSE(Txn(create)->succeeded());

  // Value and version compares.
  etcdserverpb::TxnRequest by_value;
  cmp = by_value.add_compare();
  cmp->set_key("/x/k");
  cmp->set_target(Compare::VALUE);
  cmp->set_value("v2");
  cmp = by_value.add_compare();
  cmp->set_key("/x/k");
  cmp->set_target(Compare::VERSION);
  cmp->set_version(2);
  EXPECT_TRUE(Txn(by_value)->succeeded());
  by_value.mutable_compare(1)->set_version(1);
  EXPECT_FALSE(Txn(by_value)->succeeded());
}

TEST_F(EtcdClientTest, KeepAliveHoldsLeasePastItsTtlAndRevokeDeletesTheKey) {
  auto grant = Grant(2);
  ASSERT_TRUE(grant.ok()) << grant.status().ToString();
  const int64_t id = grant->id();
  const int64_t ttl = grant->ttl();
  ASSERT_GE(ttl, 2);
  ASSERT_TRUE(Put("/l/held", "x", id).ok());

  int acks = 0;
  std::optional<Status> lost;
  auto stream = client_->KeepAlive(
      KeepAliveOptions{.lease_id = id, .ttl_seconds = ttl},
      [&](int64_t t, SteadyClock::time_point until) {
        EXPECT_GT(t, 0);
        EXPECT_GT(until, SteadyClock::now());
        ++acks;
      },
      [&](Status st) { lost = std::move(st); });
  // Two whole TTLs and a bit: without keepalives the key would be gone.
  loop_.RunFor(std::chrono::seconds(2 * ttl + 1));
  EXPECT_FALSE(lost.has_value()) << lost->ToString();
  EXPECT_GE(acks, 4);  // one every TTL/3
  auto held = Get("/l/held");
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->kvs_size(), 1) << "the lease lapsed despite keepalives";
  EXPECT_EQ(held->kvs(0).lease(), id);

  ASSERT_TRUE(Revoke(id).ok());
  EXPECT_EQ(Get("/l/held")->kvs_size(), 0);
  // The next keepalive answer says TTL 0: reported as lost.
  ASSERT_TRUE(loop_.RunUntil([&] { return lost.has_value(); }, std::chrono::seconds(ttl + 2)));
  EXPECT_EQ(lost->code(), Code::kNotFound) << lost->ToString();

  // etcd's own error, through the trailers: the lease is gone.
  auto again = Revoke(id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kNotFound);
  EXPECT_NE(again.status().message().find("etcdserver: requested lease not found"),
            std::string::npos)
      << again.status().message();
}

TEST_F(EtcdClientTest, LeaseWithoutKeepAliveExpires) {
  auto grant = Grant(2);
  ASSERT_TRUE(grant.ok());
  ASSERT_TRUE(Put("/l/lapses", "x", grant->id()).ok());
  ASSERT_EQ(Get("/l/lapses")->kvs_size(), 1);
  // Poll (bounded: 60 reads, about 15 s) until etcd expires the lease and its key.
  bool gone = false;
  for (int i = 0; i < 60 && !gone; ++i) {
    loop_.RunFor(250ms);
    auto r = Get("/l/lapses");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    gone = r->kvs_size() == 0;
  }
  EXPECT_TRUE(gone);
  EXPECT_EQ(Revoke(grant->id()).status().code(), Code::kNotFound);
}

struct WatchLog {
  std::vector<etcdserverpb::WatchResponse> responses;
  std::vector<mvccpb::Event> events;
  std::optional<WatchEnd> end;
};

std::shared_ptr<EtcdStream> StartWatch(EtcdClient& client, const std::string& prefix, int64_t from,
                                       WatchLog& log) {
  return client.Watch(
      WatchOptions{.key = prefix, .range_end = PrefixEnd(prefix), .start_revision = from},
      [&log](const etcdserverpb::WatchResponse& r) {
        log.responses.push_back(r);
        for (const auto& e : r.events()) log.events.push_back(e);
      },
      [&log](WatchEnd end) { log.end = std::move(end); });
}

TEST_F(EtcdClientTest, WatchDeliversPutsAndDeletesInOrderFromARevision) {
  auto first = Put("/w/a", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(Put("/w/b", "2").ok());
  ASSERT_TRUE(Delete("/w/a").ok());
  ASSERT_TRUE(Put("/other", "not watched").ok());

  WatchLog log;
  auto watch = StartWatch(*client_, "/w/", first->header().revision(), log);
  ASSERT_TRUE(loop_.RunUntil([&] { return log.events.size() >= 3 || log.end; }, 10s));
  ASSERT_FALSE(log.end.has_value()) << log.end->status.ToString();
  ASSERT_FALSE(log.responses.empty());
  EXPECT_TRUE(log.responses.front().created());

  ASSERT_TRUE(Put("/w/c", "3").ok());  // a live change after the history
  ASSERT_TRUE(loop_.RunUntil([&] { return log.events.size() >= 4 || log.end; }, 10s));
  ASSERT_EQ(log.events.size(), 4u);
  const std::vector<std::pair<mvccpb::Event::EventType, std::string>> want = {
      {mvccpb::Event::PUT, "/w/a"},
      {mvccpb::Event::PUT, "/w/b"},
      {mvccpb::Event::DELETE, "/w/a"},
      {mvccpb::Event::PUT, "/w/c"}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(log.events[i].type(), want[i].first) << i;
    EXPECT_EQ(log.events[i].kv().key(), want[i].second) << i;
    if (i > 0) {
      EXPECT_GT(log.events[i].kv().mod_revision(), log.events[i - 1].kv().mod_revision());
    }
  }
  EXPECT_EQ(log.events[0].kv().mod_revision(), first->header().revision());

  // Cancelled by the caller: silent, and no more events.
  watch->Cancel();
  ASSERT_TRUE(Put("/w/d", "4").ok());
  loop_.RunFor(200ms);
  EXPECT_EQ(log.events.size(), 4u);
  EXPECT_FALSE(log.end.has_value());
}

TEST_F(EtcdClientTest, WatchFromACompactedRevisionReportsCompactRevision) {
  auto first = Put("/c/k", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(Put("/c/k", "2").ok());
  auto last = Put("/c/k", "3");
  ASSERT_TRUE(last.ok());
  const int64_t compacted = last->header().revision();
  etcdserverpb::CompactionRequest compact;
  compact.set_revision(compacted);
  auto c = loop_.Await<etcdserverpb::CompactionResponse>(
      [&](auto done) { client_->Compact(compact, 2s, done); });
  ASSERT_TRUE(c.ok()) << c.status().ToString();

  // A read at a compacted revision: etcd's OUT_OF_RANGE, its text kept.
  auto old = Get("/c/k", false, first->header().revision());
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(old.status().message().find("compacted"), std::string::npos) << old.status().message();

  WatchLog log;
  auto watch = StartWatch(*client_, "/c/", first->header().revision(), log);
  ASSERT_TRUE(loop_.RunUntil([&] { return log.end.has_value(); }, 10s));
  EXPECT_EQ(log.end->compact_revision, compacted);
  EXPECT_EQ(log.end->status.code(), Code::kFailedPrecondition) << log.end->status.ToString();
  EXPECT_TRUE(log.events.empty());

  // What the caller does next: re-read, then watch from the read's revision + 1.
  auto now = Get("/c/", true);
  ASSERT_TRUE(now.ok());
  WatchLog again;
  auto rewatch = StartWatch(*client_, "/c/", now->header().revision() + 1, again);
  ASSERT_TRUE(loop_.RunUntil([&] { return !again.responses.empty() || again.end; }, 10s));
  ASSERT_TRUE(Put("/c/k", "4").ok());
  ASSERT_TRUE(loop_.RunUntil([&] { return !again.events.empty() || again.end; }, 10s));
  ASSERT_FALSE(again.end.has_value()) << again.end->status.ToString();
  EXPECT_EQ(again.events[0].kv().value(), "4");
}

TEST_F(EtcdClientTest, TooLargeRequestIsRefusedWithAClearError) {
  const std::string big(2 << 20, 'x');
  auto r = Put("/big", big);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTooLarge);
  EXPECT_NE(r.status().message().find("max_request_bytes"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(Get("/big").ok());  // refused before sending: the connection is fine

  // With our bound raised, etcd's own limit (1.5 MiB) refuses it, through its trailers.
  auto loose = EtcdClient::Create(
      loop_.io(), EtcdOptions{.endpoints = {etcd_.url()}, .max_request_bytes = 4 << 20});
  etcdserverpb::PutRequest req;
  req.set_key("/big");
  req.set_value(std::string(1700 * 1024, 'y'));
  auto refused =
      loop_.Await<etcdserverpb::PutResponse>([&](auto done) { loose->Put(req, 5s, done); });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kTooLarge) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("request is too large"), std::string::npos)
      << refused.status().message();
  loose->Close();
}

TEST_F(EtcdClientTest, FailsOverToTheNextEndpoint) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(FreePort());
  auto two = EtcdClient::Create(loop_.io(), EtcdOptions{.endpoints = {dead, etcd_.url()}});
  etcdserverpb::PutRequest req;
  req.set_key("/f");
  auto r = loop_.Await<etcdserverpb::PutResponse>([&](auto done) { two->Put(req, 3s, done); });
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(two->connects(), 1u);
  two->Close();
}

TEST_F(EtcdClientTest, LosingEtcdEndsWatchKeepAliveAndCalls) {
  auto grant = Grant(5);
  ASSERT_TRUE(grant.ok());
  WatchLog log;
  auto watch = StartWatch(*client_, "/gone/", 0, log);
  std::optional<Status> lost;
  auto ka = client_->KeepAlive(KeepAliveOptions{.lease_id = grant->id(), .ttl_seconds = 5}, nullptr,
                               [&](Status st) { lost = std::move(st); });
  ASSERT_TRUE(loop_.RunUntil([&] { return !log.responses.empty(); }, 5s));  // created

  etcd_.Kill();
  ASSERT_TRUE(loop_.RunUntil([&] { return log.end && lost; }, 10s))
      << "a broken connection must end every stream";
  EXPECT_EQ(log.end->status.code(), Code::kUnavailable) << log.end->status.ToString();
  EXPECT_EQ(lost->code(), Code::kUnavailable) << lost->ToString();
  const metrics::Source sources[] = {client_->Metrics()};
  EXPECT_EQ(metrics::Snapshot(sources).Total(kEtcdConnectionsLost), 1u);
  auto r = Get("/gone/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
}

// No etcd needed: an endpoint that refuses, and one that accepts but never answers.
TEST(EtcdClientNoServerTest, UnreachableEndpointsFailWithinTheDeadline) {
  Loop loop;
  etcdserverpb::RangeRequest req;
  req.set_key("k");

  auto refused = EtcdClient::Create(
      loop.io(), EtcdOptions{.endpoints = {"http://127.0.0.1:" + std::to_string(FreePort())}});
  auto r1 = loop.Await<etcdserverpb::RangeResponse>(
      [&](auto done) { refused->Range(req, 1s, done); }, 5s);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), Code::kUnavailable) << r1.status().ToString();
  EXPECT_NE(r1.status().message().find("no endpoint reachable"), std::string::npos);

  // A listener that never accepts: TCP connects (the kernel's backlog), HTTP/2 never answers.
  asio::ip::tcp::acceptor silent(loop.io(), {asio::ip::make_address("127.0.0.1"), 0});
  auto quiet = EtcdClient::Create(
      loop.io(), EtcdOptions{.endpoints = {"http://127.0.0.1:" +
                                           std::to_string(silent.local_endpoint().port())}});
  auto r2 = loop.Await<etcdserverpb::RangeResponse>(
      [&](auto done) { quiet->Range(req, 300ms, done); }, 5s);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), Code::kDeadlineExceeded) << r2.status().ToString();
  EXPECT_EQ(quiet->open_calls(), 0u);

  // Bad endpoints are an error, not a hang.
  auto bad = EtcdClient::Create(loop.io(), EtcdOptions{.endpoints = {"https://127.0.0.1:1"}});
  auto r3 =
      loop.Await<etcdserverpb::RangeResponse>([&](auto done) { bad->Range(req, 1s, done); }, 5s);
  EXPECT_EQ(r3.status().code(), Code::kUnavailable) << r3.status().ToString();
  EXPECT_NE(r3.status().message().find("only http://"), std::string::npos);

  // Every error path is counted.
  const metrics::Source sources[] = {refused->Metrics(), quiet->Metrics()};
  const metrics::Snapshot snap(sources);
  EXPECT_EQ(snap.Total(kEtcdCalls), 2u);
  EXPECT_EQ(snap.Total(kEtcdConnectFailures), 1u);  // the refused one; the quiet one connects
  EXPECT_EQ(snap.Total(kEtcdConnects), 1u);
  EXPECT_EQ(snap.Value(kEtcdCallErrors, "code=\"UNAVAILABLE\""), 1u);
  EXPECT_EQ(snap.Value(kEtcdCallErrors, "code=\"DEADLINE_EXCEEDED\""), 1u);
  EXPECT_EQ(snap.Total(kEtcdOpenCalls), 0u);
  refused->Close();
  quiet->Close();
  bad->Close();
  loop.RunFor(20ms);
}

TEST(EtcdClientNoServerTest, PrefixEnd) {
  EXPECT_EQ(PrefixEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
}

}  // namespace
}  // namespace cellar::cluster
