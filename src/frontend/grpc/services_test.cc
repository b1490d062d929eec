// In-process service tests: every gRPC service's methods run as a connection runs them
// (decode, prepare, the pipeline's checks, the shards, a second round for two-round methods,
// finish), against a real pipeline, gateway, engine and topics on one loop, with no socket
// and no HTTP/2. `Call<Response>("/cache_client.Scs/Get", request)` returns the decoded
// response or the status the trailers would carry.
//
// The official Momento SDK's tests (tests/conformance) remain the contract; these pin each
// service where a failure names the method, and run in milliseconds.
#include <gtest/gtest.h>

#include <unistd.h>

#include <string>
#include <vector>

#include "common/check.h"
#include "cacheclient.pb.h"
#include "cachepubsub.pb.h"
#include "common.pb.h"
#include "frontend/grpc/framing.h"
#include "frontend/grpc/services.h"
#include "frontend/grpc/topic_frames.h"
#include "testing/in_process.h"
#include "leaderboard.pb.h"

namespace cellar::grpc {
namespace {

namespace cc = cache_client;
namespace lb = leaderboard;

// A finished call: the status its trailers carry, and its response messages (unframed).
struct Answer {
  WireStatus status;
  std::vector<std::string> messages;
  bool ok() const { return status.code == GrpcCode::kOk; }
  template <typename T>
  T Message(size_t i = 0) const {
    T m;
    EXPECT_LT(i, messages.size());
    if (i < messages.size()) {
      EXPECT_TRUE(m.ParseFromString(messages[i]));
    }
    return m;
  }
};

class GrpcServiceTest : public ::testing::Test {
 protected:
  // No call may trip an internal check (e.g. a request's typed arguments of another type than
  // its op reads: api::Request::Get).
  void TearDown() override { EXPECT_EQ(BugCheckFailures().load(), bug_checks_at_start_); }
  const uint64_t bug_checks_at_start_ = BugCheckFailures().load();

  void SetUp() override {
    node_ = std::make_unique<gateway::InProcessNode>(
        ::testing::TempDir() + "/grpc_services_" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
        std::to_string(::getpid()));
    ctx_.gateway = node_->gateway.get();
    ctx_.topics = node_->topics.get();
    ctx_.max_item_bytes = 1 << 20;
    ctx_.max_request_bytes = 4 << 20;
    ctx_.topic_encoding = node_->topics->RegisterEncoding(EncodeTopicItem);
  }

  // Runs one unary (or server-streaming batch) data call as a connection does.
  Answer Run(std::string_view path, const google::protobuf::MessageLite& request) {
    Answer a;
    const Method* m = FindMethod(path);
    if (m == nullptr) {
      a.status = ToWire(Status(Code::kUnimplemented, "unknown method"));
      return a;
    }
    EXPECT_EQ(m->kind, MethodKind::kData) << path;
    const std::string message = request.SerializeAsString();
    Stream s;
    s.cache = "c";
    const gateway::Principal& principal = node_->principal;
    s.tenant = node_->tenant;
    s.publisher_id = "token-7";
    s.perms = principal.perms.super_user ? nullptr : &principal.perms;
    if (m->decode != nullptr) {  // Pubsub: the cache is named in the body
      if (Status st = m->decode(s, message); !st.ok()) return Fail(st);
      EXPECT_EQ(s.cache, "c");
    }
    s.cache_id = node_->cache;
    s.cache_state = node_->cache_state();
    gateway::Pipeline& p = *node_->pipeline;
    p.Begin();
    if (Status st = m->prepare(ctx_, s, message, p.calls(), p.now_ms()); !st.ok()) {
      return Fail(st);
    }
    s.first_call = 0;
    s.num_calls = static_cast<uint32_t>(p.calls().size());
    switch (p.Verify(principal, s.cache, s.cache_state.get(), 0, m->access, message.size(),
                     /*admit_empty=*/true)) {
      case gateway::Verdict::kAllowed:
        break;
      case gateway::Verdict::kDenied:
        return Fail(Status(Code::kPermissionDenied, "denied"));
      case gateway::Verdict::kRefused: {
        const gateway::Refusal r = p.refusal();
        a.status = ToWire(Status(gateway::RefusalCode(r)));
        a.status.message = p.RefusalText(*s.cache_state, r, "", false);
        a.status.err = gateway::RefusalErr(r);
        return a;
      }
    }
    EXPECT_TRUE(node_->RunRound());
    if (m->followup != nullptr && m->followup(ctx_, s, p.calls().data())) {
      p.Begin();  // the second round (phase 1), as the connection runs it
      s.phase = 1;
      if (Status st = m->prepare2(ctx_, s, p.calls(), p.now_ms()); !st.ok()) return Fail(st);
      s.num_calls = static_cast<uint32_t>(p.calls().size());
      EXPECT_TRUE(gateway::Pipeline::Permitted(principal, s.cache, p.calls(), m->access));
      EXPECT_TRUE(node_->RunRound());
    }
    m->finish(ctx_, s, p.calls().data());
    a.status = s.status;
    // The response messages, unframed.
    std::string_view out(s.out);
    while (out.size() >= 5) {
      const size_t len = *DeclaredLength(out);
      a.messages.emplace_back(out.substr(5, len));
      out.remove_prefix(5 + len);
    }
    EXPECT_TRUE(out.empty());
    return a;
  }

  static Answer Fail(const Status& st) {
    Answer a;
    a.status = TopicsWireStatus(st);
    return a;
  }

  std::unique_ptr<gateway::InProcessNode> node_;
  ServiceContext ctx_;
};

#define SCS(name) "/cache_client.Scs/" #name

TEST_F(GrpcServiceTest, ScalarsGetSetIncrementBatch) {
  cc::_SetRequest set;
  set.set_cache_key("k");
  set.set_cache_body("v1");
  set.set_ttl_milliseconds(60'000);
  EXPECT_TRUE(Run(SCS(Set), set).ok());
  cc::_GetRequest get;
  get.set_cache_key("k");
  auto got = Run(SCS(Get), get).Message<cc::_GetResponse>();
  EXPECT_EQ(got.result(), cc::Hit);
  EXPECT_EQ(got.cache_body(), "v1");
  get.set_cache_key("nope");
  EXPECT_EQ(Run(SCS(Get), get).Message<cc::_GetResponse>().result(), cc::Miss);

  cc::_IncrementRequest inc;
  inc.set_cache_key("n");
  inc.set_amount(5);
  EXPECT_EQ(Run(SCS(Increment), inc).Message<cc::_IncrementResponse>().value(), 5);
  inc.set_cache_key("k");  // "v1" is no number
  EXPECT_EQ(Run(SCS(Increment), inc).status.code, GrpcCode::kFailedPrecondition);

  cc::_GetBatchRequest batch;  // server streaming: one message per item, in order
  batch.add_items()->set_cache_key("k");
  batch.add_items()->set_cache_key("nope");
  batch.add_items()->set_cache_key("n");
  const Answer b = Run(SCS(GetBatch), batch);
  ASSERT_EQ(b.messages.size(), 3u);
  EXPECT_EQ(b.Message<cc::_GetResponse>(0).cache_body(), "v1");
  EXPECT_EQ(b.Message<cc::_GetResponse>(1).result(), cc::Miss);
  EXPECT_EQ(b.Message<cc::_GetResponse>(2).cache_body(), "5");
}

TEST_F(GrpcServiceTest, Dictionaries) {
  cc::_DictionarySetRequest set;
  set.set_dictionary_name("d");
  auto* f = set.add_items();
  f->set_field("f1");
  f->set_value("a");
  set.set_ttl_milliseconds(60'000);
  EXPECT_TRUE(Run(SCS(DictionarySet), set).ok());
  cc::_DictionaryFetchRequest fetch;
  fetch.set_dictionary_name("d");
  auto d = Run(SCS(DictionaryFetch), fetch).Message<cc::_DictionaryFetchResponse>();
  ASSERT_TRUE(d.has_found());
  ASSERT_EQ(d.found().items_size(), 1);
  EXPECT_EQ(d.found().items(0).value(), "a");
  fetch.set_dictionary_name("none");
  EXPECT_TRUE(Run(SCS(DictionaryFetch), fetch).Message<cc::_DictionaryFetchResponse>().has_missing());
}

TEST_F(GrpcServiceTest, SetsAndLists) {
  cc::_SetUnionRequest u;
  u.set_set_name("s");
  u.add_elements("a");
  u.add_elements("b");
  u.set_ttl_milliseconds(60'000);
  EXPECT_TRUE(Run(SCS(SetUnion), u).ok());
  cc::_SetFetchRequest sf;
  sf.set_set_name("s");
  EXPECT_EQ(Run(SCS(SetFetch), sf).Message<cc::_SetFetchResponse>().found().elements_size(), 2);

  cc::_ListPushFrontRequest push;
  push.set_list_name("l");
  push.set_value("x");
  push.set_ttl_milliseconds(60'000);
  EXPECT_EQ(Run(SCS(ListPushFront), push).Message<cc::_ListPushFrontResponse>().list_length(), 1u);
  push.set_value("y");
  EXPECT_EQ(Run(SCS(ListPushFront), push).Message<cc::_ListPushFrontResponse>().list_length(), 2u);
  cc::_ListFetchRequest lf;
  lf.set_list_name("l");
  auto l = Run(SCS(ListFetch), lf).Message<cc::_ListFetchResponse>();
  ASSERT_TRUE(l.has_found());
  ASSERT_EQ(l.found().values_size(), 2);
  EXPECT_EQ(l.found().values(0), "y");
}

TEST_F(GrpcServiceTest, SortedSetsAndTheTwoRoundUnionStore) {
  for (const char* name : {"z1", "z2"}) {
    cc::_SortedSetPutRequest put;
    put.set_set_name(name);
    auto* e = put.add_elements();
    e->set_value("a");
    e->set_score(1);
    e = put.add_elements();
    e->set_value(name);
    e->set_score(5);
    put.set_ttl_milliseconds(60'000);
    EXPECT_TRUE(Run(SCS(SortedSetPut), put).ok());
  }
  cc::_SortedSetFetchRequest fetch;
  fetch.set_set_name("z1");
  fetch.set_with_scores(true);
  fetch.mutable_by_index()->mutable_unbounded_start();
  fetch.mutable_by_index()->mutable_unbounded_end();
  auto f = Run(SCS(SortedSetFetch), fetch).Message<cc::_SortedSetFetchResponse>();
  ASSERT_TRUE(f.has_found());
  ASSERT_EQ(f.found().values_with_scores().elements_size(), 2);
  EXPECT_EQ(f.found().values_with_scores().elements(0).value(), "a");
  // Reads its sources in a first round, writes the union in a second.
  cc::_SortedSetUnionStoreRequest us;
  us.set_set_name("dst");
  for (const char* name : {"z1", "z2"}) {
    auto* src = us.add_sources();
    src->set_set_name(name);
    src->set_weight(1);
  }
  us.set_ttl_milliseconds(60'000);
  EXPECT_EQ(Run(SCS(SortedSetUnionStore), us).Message<cc::_SortedSetUnionStoreResponse>().length(),
            3u);
  fetch.set_set_name("dst");
  f = Run(SCS(SortedSetFetch), fetch).Message<cc::_SortedSetFetchResponse>();
  ASSERT_EQ(f.found().values_with_scores().elements_size(), 3);
  EXPECT_EQ(f.found().values_with_scores().elements(0).score(), 2);  // a: 1 + 1
}

TEST_F(GrpcServiceTest, Leaderboards) {
  lb::_UpsertElementsRequest up;
  up.set_leaderboard("board");
  for (uint32_t id = 1; id <= 3; ++id) {
    auto* e = up.add_elements();
    e->set_id(id);
    e->set_score(id * 10.0);
  }
  EXPECT_TRUE(Run("/leaderboard.Leaderboard/UpsertElements", up).ok());
  lb::_GetLeaderboardLengthRequest len;
  len.set_leaderboard("board");
  EXPECT_EQ(Run("/leaderboard.Leaderboard/GetLeaderboardLength", len)
                .Message<lb::_GetLeaderboardLengthResponse>()
                .count(),
            3u);
}

TEST_F(GrpcServiceTest, PublishCountsAndIsAdmitted) {
  cache_client::pubsub::_PublishRequest pub;
  pub.set_cache_name("c");
  pub.set_topic("t");
  pub.mutable_value()->set_text("hello");
  EXPECT_TRUE(Run("/cache_client.pubsub.Pubsub/Publish", pub).ok());
  ASSERT_TRUE(node_->registry
                  ->UpdateCacheLimits(node_->tenant, "c", *control::ParseLimits("max_message_bytes=3", true))
                  .ok());
  const Answer big = Run("/cache_client.pubsub.Pubsub/Publish", pub);
  EXPECT_EQ(big.status.code, GrpcCode::kResourceExhausted);
  EXPECT_EQ(big.status.err, "request_size_limit_exceeded");
}

TEST_F(GrpcServiceTest, PermissionsAndLimitsThroughThePipeline) {
  node_->UseToken(auth::CacheRole::kReadOnly, "a:");
  cc::_GetRequest get;
  get.set_cache_key("a:1");
  EXPECT_TRUE(Run(SCS(Get), get).ok());
  get.set_cache_key("b:1");
  EXPECT_EQ(Run(SCS(Get), get).status.code, GrpcCode::kPermissionDenied);
  cc::_SetRequest set;
  set.set_cache_key("a:1");
  set.set_cache_body("v");
  EXPECT_EQ(Run(SCS(Set), set).status.code, GrpcCode::kPermissionDenied);

  node_->principal.perms.super_user = true;
  ASSERT_TRUE(node_->registry
                  ->UpdateCacheLimits(node_->tenant, "c",
                                      *control::ParseLimits("max_item_bytes=4,max_ttl_seconds=60",
                                                            true))
                  .ok());
  set.set_cache_body("12345");
  const Answer big = Run(SCS(Set), set);
  EXPECT_EQ(big.status.code, GrpcCode::kResourceExhausted);
  EXPECT_EQ(big.status.err, "item_size_limit_exceeded");
  set.set_cache_body("1234");
  set.set_ttl_milliseconds(61'000);
  const Answer ttl = Run(SCS(Set), set);
  EXPECT_EQ(ttl.status.code, GrpcCode::kInvalidArgument);
  EXPECT_NE(ttl.status.message.find("max_ttl_seconds"), std::string::npos);
  set.set_ttl_milliseconds(60'000);
  EXPECT_TRUE(Run(SCS(Set), set).ok());
}

}  // namespace
}  // namespace cellar::grpc
