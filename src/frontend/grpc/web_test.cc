#include "frontend/grpc/web.h"

#include <gtest/gtest.h>

#include "auth/base64.h"
#include "common/json.h"
#include "frontend/grpc/framing.h"

namespace cellar::grpc {
namespace {

TEST(Web, Base64AsBrowsersSendIt) {
  EXPECT_EQ(DecodeBase64Lenient("ZXhhbXBsZV9rZXk"), "example_key");   // unpadded
  EXPECT_EQ(DecodeBase64Lenient("ZXhhbXBsZV9rZXk="), "example_key");  // padded
  EXPECT_EQ(DecodeBase64Lenient("-_8"), std::string("\xfb\xff"));    // URL-safe
  EXPECT_EQ(DecodeBase64Lenient("YQ==Yg=="), "ab");  // grpc-web-text: padded pieces in a row
  EXPECT_FALSE(DecodeBase64Lenient("a").has_value());
  EXPECT_FALSE(DecodeBase64Lenient("ab=c").has_value());
  EXPECT_FALSE(DecodeBase64Lenient("a===").has_value());
  EXPECT_FALSE(DecodeBase64Lenient("ab$d").has_value());
  std::string out;
  AppendBase64(out, "example_key");
  EXPECT_EQ(out, "ZXhhbXBsZV9rZXk=");
}

TEST(Web, TopicJsonIsValidAndCarriesTheNumbers) {
  topics::TopicMessage m;
  m.seq = 104;
  m.page = 1748358253;
  m.value = "hello \"world\"\n";
  std::string out;
  EncodeTopicJson(m, out);
  auto doc = ParseJson(out);
  ASSERT_TRUE(doc.has_value()) << out;
  const Json* item = doc->Find("item");
  ASSERT_NE(item, nullptr);
  EXPECT_EQ(item->Find("topic_sequence_number")->text, "104");
  EXPECT_EQ(item->Find("sequence_page")->text, "1748358253");
  EXPECT_EQ(item->Find("value")->Find("text")->text, m.value);
  EXPECT_EQ(out.find('\n'), std::string::npos);  // one line: SSE's data field

  m.value = std::string("\xff\x00\x01", 3);  // not UTF-8: binary even if published as text
  out.clear();
  EncodeTopicJson(m, out);
  doc = ParseJson(out);
  ASSERT_TRUE(doc.has_value()) << out;
  EXPECT_EQ(auth::Base64Decode(doc->Find("item")->Find("value")->Find("binary")->text), m.value);
  EXPECT_TRUE(ParseJson(DiscontinuityJson(1, 5, 9)).has_value());
}

TEST(Web, StatusesMapToHttp) {
  EXPECT_EQ(HttpStatusOf({GrpcCode::kUnauthenticated, "x", {}}), 401);
  EXPECT_EQ(HttpStatusOf({GrpcCode::kPermissionDenied, "x", {}}), 403);
  EXPECT_EQ(HttpStatusOf({GrpcCode::kResourceExhausted, "x", "item_size_limit_exceeded"}), 413);
  EXPECT_EQ(HttpStatusOf({GrpcCode::kResourceExhausted, "x", "operations_rate_limit_exceeded"}), 429);
  EXPECT_EQ(HttpStatusOf({GrpcCode::kInvalidArgument, "x", {}}), 400);
  const WireStatus missing = ToWire(Error(GrpcError::kNoSuchCache, "c"));
  EXPECT_EQ(HttpStatusOf(missing), 404);
  EXPECT_EQ(HttpBodyOf(missing), "Cache Not Found");
  for (int e = 0; e < static_cast<int>(WebError::kCount); ++e) {
    const WebErrorText t = WebErrorOf(static_cast<WebError>(e), "d");
    EXPECT_GE(t.http_status, 400);
    EXPECT_FALSE(t.text.empty());
  }
}

TEST(Web, CorsPolicyAndSameOrigin) {
  const CorsPolicy p = CorsPolicy::Parse(" https://a.example , http://127.0.0.2:8000/");
  EXPECT_TRUE(p.Allows("https://a.example"));
  EXPECT_TRUE(p.Allows("http://127.0.0.2:8000"));
  EXPECT_FALSE(p.Allows("https://b.example"));
  EXPECT_FALSE(p.Allows("null"));
  EXPECT_TRUE(CorsPolicy::Parse("*").Allows("https://anything"));
  EXPECT_FALSE(CorsPolicy::Parse("").Allows("https://a.example"));
  EXPECT_TRUE(SameOrigin("http://127.0.0.1:8080", "127.0.0.1:8080", false));
  EXPECT_FALSE(SameOrigin("https://127.0.0.1:8080", "127.0.0.1:8080", false));
  EXPECT_TRUE(SameOrigin("https://cache.example", "cache.example:443", true));
  EXPECT_FALSE(SameOrigin("http://evil.example", "127.0.0.1:8080", false));
}

TEST(Web, V1KeysAreUnwrappedAndOthersKept) {
  const std::string v1 = auth::Base64Encode(R"({"api_key":"a.b.c","endpoint":"x"})");
  EXPECT_EQ(UnwrapToken(v1), "a.b.c");
  EXPECT_EQ(UnwrapToken("eyJhbGciOi.x.y"), "eyJhbGciOi.x.y");
  EXPECT_EQ(UnwrapToken("admin-key"), "admin-key");
}

TEST(Web, ARequestsTokenFromItsHeaderElseItsQuery) {
  const std::string v1 = auth::Base64Encode(R"({"api_key":"a.b.c","endpoint":"x"})");
  const std::string bearer = "Bearer " + v1, raw = "raw-key", empty, query = "from-query";
  EXPECT_EQ(WebRequestToken(&bearer, nullptr), "a.b.c");  // "Bearer " tolerated, unwrapped
  EXPECT_EQ(WebRequestToken(&raw, &query), "raw-key");      // the header first
  EXPECT_EQ(WebRequestToken(&empty, &query), "from-query"); // an empty header is none
  EXPECT_EQ(WebRequestToken(nullptr, &v1), "a.b.c");
  EXPECT_EQ(WebRequestToken(nullptr, nullptr), "");
}

TEST(Web, GrpcWebTrailerFrame) {
  const std::string t = GrpcWebTrailers({GrpcCode::kNotFound, "no 100%", "item_not_found"});
  ASSERT_GE(t.size(), 5u);
  EXPECT_EQ(static_cast<uint8_t>(t[0]), 0x80);
  const uint32_t n = (uint32_t{static_cast<uint8_t>(t[1])} << 24) |
                     (uint32_t{static_cast<uint8_t>(t[2])} << 16) |
                     (uint32_t{static_cast<uint8_t>(t[3])} << 8) | static_cast<uint8_t>(t[4]);
  EXPECT_EQ(n, t.size() - 5);
  EXPECT_EQ(t.substr(5), "grpc-status:5\r\ngrpc-message:no 100%25\r\nerr:item_not_found\r\n");
}

TEST(Web, GetResponseRoundTrip) {
  EXPECT_FALSE(ParseGetResponse("junk").has_value());
  auto framed = FramedGet("k");
  EXPECT_EQ(framed.size(), 5u + 3u);
}

}  // namespace
}  // namespace cellar::grpc
