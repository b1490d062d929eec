#include "frontend/grpc/framing.h"

#include <gtest/gtest.h>

#include <string>

namespace cellar::grpc {
namespace {

std::string Framed(std::string_view payload, char flag = 0) {
  std::string out;
  AppendPrefix(out, payload.size());
  out[0] = flag;
  out.append(payload);
  return out;
}

TEST(GrpcFraming, PrefixIsFlagThenBigEndianLength) {
  std::string out;
  AppendPrefix(out, 0x01020304);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out, std::string("\x00\x01\x02\x03\x04", 5));
  EXPECT_EQ(DeclaredLength(out), 0x01020304u);
  EXPECT_EQ(DeclaredLength(out.substr(0, 4)), std::nullopt);
}

TEST(GrpcFraming, UnaryMessageTakesExactlyOneMessage) {
  auto m = UnaryMessage(Framed("hello"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, "hello");
  auto empty = UnaryMessage(Framed(""));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(GrpcFraming, MalformedBodiesAreClearErrors) {
  EXPECT_EQ(UnaryMessage("").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(UnaryMessage(std::string("\0\0\0", 3)).status().code(), Code::kInvalidArgument);
  // Shorter than declared, and trailing bytes after the message.
  EXPECT_EQ(UnaryMessage(Framed("hello").substr(0, 8)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(UnaryMessage(Framed("hello") + "x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(UnaryMessage(Framed("a") + Framed("b")).status().code(), Code::kInvalidArgument);
  // An unknown flag value.
  EXPECT_EQ(UnaryMessage(Framed("x", 2)).status().code(), Code::kInvalidArgument);
}

TEST(GrpcFraming, CompressedMessagesAreRefused) {
  auto m = UnaryMessage(Framed("hello", 1));
  EXPECT_EQ(m.status().code(), Code::kUnimplemented);
  EXPECT_NE(m.status().message().find("compress"), std::string::npos);
}

TEST(GrpcFraming, OversizedDeclaredLengthIsRefusedWithoutReadingIt) {
  std::string body;
  AppendPrefix(body, kMaxWireMessage + 1);
  EXPECT_EQ(UnaryMessage(body).status().code(), Code::kResourceExhausted);
  std::string at_limit;
  AppendPrefix(at_limit, kMaxWireMessage);
  EXPECT_EQ(UnaryMessage(at_limit).status().code(), Code::kInvalidArgument);  // truncated
}

TEST(GrpcFraming, SplitPiecesJoinToTheSameMessage) {
  // The connection appends DATA chunks as they come; any split yields the same message.
  const std::string whole = Framed(std::string(1000, 'v'));
  for (size_t cut : {size_t{1}, size_t{4}, size_t{5}, size_t{6}, size_t{500}, whole.size() - 1}) {
    std::string body = whole.substr(0, cut);
    EXPECT_FALSE(UnaryMessage(body).ok()) << cut;
    body += whole.substr(cut);
    auto m = UnaryMessage(body);
    ASSERT_TRUE(m.ok()) << cut;
    EXPECT_EQ(m->size(), 1000u);
  }
}

TEST(GrpcFraming, Timeouts) {
  EXPECT_EQ(ParseTimeoutMillis("5S"), 5000);
  EXPECT_EQ(ParseTimeoutMillis("4999m"), 4999);
  EXPECT_EQ(ParseTimeoutMillis("2M"), 120000);
  EXPECT_EQ(ParseTimeoutMillis("1H"), 3600000);
  EXPECT_EQ(ParseTimeoutMillis("1500u"), 2);  // rounded up
  EXPECT_EQ(ParseTimeoutMillis("1n"), 1);
  EXPECT_EQ(ParseTimeoutMillis("99999999S"), 99999999000);
  EXPECT_EQ(ParseTimeoutMillis("123456789S"), std::nullopt);  // 9 digits
  EXPECT_EQ(ParseTimeoutMillis("S"), std::nullopt);
  EXPECT_EQ(ParseTimeoutMillis("10"), std::nullopt);
  EXPECT_EQ(ParseTimeoutMillis("1x"), std::nullopt);
  EXPECT_EQ(ParseTimeoutMillis("-1S"), std::nullopt);
  EXPECT_EQ(ParseTimeoutMillis(""), std::nullopt);
}

TEST(GrpcFraming, MessagesArePercentEncoded) {
  EXPECT_EQ(PercentEncode("cache not found: a b"), "cache not found: a b");
  EXPECT_EQ(PercentEncode("100%"), "100%25");
  // HTTP/2 drops a field value with leading or trailing whitespace: those spaces are encoded.
  EXPECT_EQ(PercentEncode(" a b "), "%20a b%20");
  EXPECT_EQ(PercentEncode(" "), "%20");
  EXPECT_EQ(PercentEncode("line\nnext\xff"), "line%0Anext%FF");
}

TEST(GrpcFraming, StatusTableFollowsTheSdkMapping) {
  EXPECT_EQ(ToWire(Status(Code::kNotFound)).code, GrpcCode::kNotFound);
  EXPECT_TRUE(ToWire(Status(Code::kNotFound)).err.empty());  // a missing cache: no err
  EXPECT_EQ(ToWire(Status(Code::kAlreadyExists)).code, GrpcCode::kAlreadyExists);
  EXPECT_EQ(ToWire(Status(Code::kNotInteger)).code, GrpcCode::kFailedPrecondition);
  auto big = ToWire(Status(Code::kTooLarge));
  EXPECT_EQ(big.code, GrpcCode::kResourceExhausted);
  EXPECT_EQ(big.err, "item_size_limit_exceeded");
  EXPECT_EQ(ToWire(Status(Code::kUnauthenticated)).code, GrpcCode::kUnauthenticated);
  EXPECT_EQ(ToWire(Status(Code::kDeadlineExceeded)).code, GrpcCode::kDeadlineExceeded);
  EXPECT_EQ(ToWire(Status(Code::kUnimplemented)).code, GrpcCode::kUnimplemented);
  EXPECT_EQ(ToWire(Status(Code::kSyntax)).code, GrpcCode::kInvalidArgument);
}

}  // namespace
}  // namespace cellar::grpc
