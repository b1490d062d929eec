#include "frontend/grpc/momento_local.h"

#include <gtest/gtest.h>

#include <string>

namespace cellar::grpc::local {
namespace {

constexpr std::string_view kGet = "/cache_client.Scs/Get";
constexpr std::string_view kSet = "/cache_client.Scs/Set";
constexpr std::string_view kSubscribe = "/cache_client.pubsub.Pubsub/Subscribe";

FaultHeaders Headers(std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  FaultHeaders h;
  for (auto [k, v] : kv) EXPECT_TRUE(h.Take(k, v)) << k;
  return h;
}

TEST(MomentoLocal, NamesAndStatuses) {
  EXPECT_EQ(RpcName(kGet), "get");
  EXPECT_EQ(RpcName("/cache_client.Scs/DictionaryIncrement"), "dictionary-increment");
  EXPECT_EQ(RpcName("/cache_client.Scs/SetIfNotExists"), "set-if");
  EXPECT_EQ(RpcName(kSubscribe), "topic-subscribe");
  EXPECT_EQ(RpcName("/control_client.ScsControl/CreateCache"), "");
  EXPECT_EQ(GrpcCodeNamed("unavailable"), GrpcCode::kUnavailable);
  EXPECT_EQ(GrpcCodeNamed("resource-exhausted"), GrpcCode::kResourceExhausted);
  EXPECT_EQ(GrpcCodeNamed("SERVER_UNAVAILABLE"), std::nullopt);
  FaultHeaders h;
  EXPECT_FALSE(h.Take("cache", "x"));
}

TEST(MomentoLocal, ErrorCountIsPerRequestIdAndOnlyTheNamedRpcsFail) {
  FaultInjector injector;
  const FaultHeaders h = Headers({{"request-id", "r1"}, {"return-error", "unavailable"},
                                  {"error-rpcs", "set get"}, {"error-count", "2"}});
  EXPECT_FALSE(injector.Decide(kSubscribe, h).error);  // not named
  for (int i = 0; i < 2; ++i) {
    const Fault f = injector.Decide(kGet, h);
    ASSERT_TRUE(f.error) << i;
    EXPECT_EQ(f.error->code, GrpcCode::kUnavailable);
    EXPECT_NE(f.error->message.find("unavailable"), std::string::npos);
  }
  EXPECT_FALSE(injector.Decide(kSet, h).error);  // the id's two errors are spent
  FaultHeaders other = h;
  other.request_id = "r2";
  EXPECT_TRUE(injector.Decide(kSet, other).error);  // another id counts from zero
  FaultHeaders always = h;
  always.request_id = "r3";
  always.error_count.clear();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(injector.Decide(kGet, always).error);
}

TEST(MomentoLocal, DelaysAreCountedApartFromErrors) {
  FaultInjector injector;
  const FaultHeaders h = Headers({{"request-id", "d"}, {"delay-rpcs", "get"}, {"delay-ms", "250"},
                                  {"delay-count", "1"}});
  const Fault first = injector.Decide(kGet, h);
  EXPECT_EQ(first.delay_ms, 250);
  EXPECT_FALSE(first.error);
  EXPECT_EQ(injector.Decide(kGet, h).delay_ms, 0);
}

TEST(MomentoLocal, StreamErrorsCarryTheirLimit) {
  FaultInjector injector;
  const FaultHeaders h = Headers({{"stream-error-rpcs", "topic-subscribe"},
                                  {"stream-error", "not-found"},
                                  {"stream-error-message-limit", "3"}});
  const Fault f = injector.Decide(kSubscribe, h);
  ASSERT_TRUE(f.stream_error);
  EXPECT_EQ(f.stream_error->code, GrpcCode::kNotFound);
  EXPECT_EQ(f.stream_messages, 3u);
  EXPECT_FALSE(f.error);
  EXPECT_FALSE(injector.Decide(kGet, h).stream_error);
}

TEST(MomentoLocal, MetadataNotUnderstoodIsInvalidArgumentNamingIt) {
  FaultInjector injector;
  for (const auto& [h, what] : {
           std::pair{Headers({{"error-rpcs", "get"}}), std::string("return-error")},
           std::pair{Headers({{"error-rpcs", "get"}, {"return-error", "oops"}}),
                     std::string("return-error: oops")},
           std::pair{Headers({{"error-rpcs", "get"}, {"return-error", "internal"},
                              {"error-count", "x1"}}),
                     std::string("error-count: x1")},
           std::pair{Headers({{"delay-rpcs", "get"}, {"delay-ms", "-5"}}), std::string("delay-ms")},
       }) {
    const Fault f = injector.Decide(kGet, h);
    ASSERT_TRUE(f.error) << what;
    EXPECT_EQ(f.error->code, GrpcCode::kInvalidArgument) << what;
    EXPECT_NE(f.error->message.find(what), std::string::npos) << f.error->message;
  }
}

}  // namespace
}  // namespace cellar::grpc::local
