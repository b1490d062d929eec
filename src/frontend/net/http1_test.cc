#include "frontend/net/http1.h"

#include <gtest/gtest.h>

namespace cellar::net {
namespace {

using R = Http1Parser::Result;

TEST(Http1Parser, ParsesARequestWithAContentLengthBodyAndKeepsWhatFollows) {
  Http1Parser p;
  const std::string bytes =
      "PUT /cache/c?key=k&ttl_seconds=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
      "Authorization: tok\r\n\r\nabcGET";
  size_t used = 0;
  ASSERT_EQ(p.Feed(bytes, &used), R::kDone);
  EXPECT_EQ(used, bytes.size() - 3);
  EXPECT_EQ(p.request().method, "PUT");
  EXPECT_EQ(p.request().path, "/cache/c");
  EXPECT_EQ(p.request().query, "key=k&ttl_seconds=5");
  EXPECT_EQ(p.request().body, "abc");
  ASSERT_NE(p.request().Header("authorization"), nullptr);
  EXPECT_EQ(*p.request().Header("authorization"), "tok");
  EXPECT_TRUE(p.request().keep_alive);
}

TEST(Http1Parser, TakesItsInputOneByteAtATime) {
  Http1Parser p;
  const std::string bytes =
      "POST /topics/c/t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: y\r\n\r\n";
  R r = R::kNeedMore;
  for (size_t i = 0; i < bytes.size(); ++i) {
    size_t used = 0;
    r = p.Feed(std::string_view(bytes).substr(i, 1), &used);
    EXPECT_EQ(used, 1u);
    if (r != R::kNeedMore) {
      EXPECT_EQ(i, bytes.size() - 1);
      break;
    }
  }
  ASSERT_EQ(r, R::kDone);
  EXPECT_EQ(p.request().body, "abcde");
}

TEST(Http1Parser, RefusesWhatSmugglesOrOverflows) {
  struct Case {
    std::string bytes;
    int status;
  } cases[] = {
      {"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET nopath HTTP/1.1\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX", 400},
      // One list, however it is split over fields: chunked alone, once.
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x-custom\r\n\r\n", 501},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: x-custom\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n", 501},
      // Lines end in CRLF.
      {"GET / HTTP/1.1\nHost: x\n\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\n\r\n", 400},
      {"\nGET / HTTP/1.1\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    Http1Parser p(Http1Limits{.max_head_bytes = 1024, .max_headers = 10, .max_body_bytes = 1000});
    size_t used = 0;
    EXPECT_EQ(p.Feed(c.bytes, &used), R::kError) << c.bytes;
    EXPECT_EQ(p.status(), c.status) << c.bytes;
    EXPECT_FALSE(p.reason().empty());
  }
  Http1Parser p(Http1Limits{.max_head_bytes = 64, .max_headers = 10, .max_body_bytes = 1000});
  size_t used = 0;
  EXPECT_EQ(p.Feed("GET / HTTP/1.1\r\nX: " + std::string(100, 'a'), &used), R::kError);
  EXPECT_EQ(p.status(), 431);
}

TEST(Http1Parser, EmptyLinesBeforeARequestAreSkippedAndABodyMayHoldBareLfs) {
  Http1Parser p;
  // Many empty lines, fed in pieces, then a request: skipped where they arrive.
  std::string crlfs;
  for (int i = 0; i < 100000; ++i) crlfs += "\r\n";
  size_t used = 0;
  ASSERT_EQ(p.Feed(crlfs, &used), R::kNeedMore);
  EXPECT_EQ(used, crlfs.size());
  const std::string req = "PUT / HTTP/1.1\r\nContent-Length: 4\r\n\r\na\nb\n";
  ASSERT_EQ(p.Feed(req, &used), R::kDone);
  EXPECT_EQ(p.request().body, "a\nb\n");  // LFs in the body are the body's business
}

TEST(Http1Parser, Http10ClosesUnlessAskedAndResetParsesTheNext) {
  Http1Parser p;
  size_t used = 0;
  ASSERT_EQ(p.Feed("GET /a HTTP/1.0\r\n\r\n", &used), R::kDone);
  EXPECT_FALSE(p.request().keep_alive);
  p.Reset();
  ASSERT_EQ(p.Feed("GET /b HTTP/1.1\r\nConnection: close\r\n\r\n", &used), R::kDone);
  EXPECT_EQ(p.request().path, "/b");
  EXPECT_FALSE(p.request().keep_alive);
}

TEST(Http1, QueryAndPercentDecoding) {
  auto q = ParseQuery("key=a%20b+c&empty=&flag&key_base64=AA%3D%3D");
  ASSERT_TRUE(q.has_value());
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[0].second, "a b c");
  EXPECT_EQ((*q)[1].second, "");
  EXPECT_EQ((*q)[2].first, "flag");
  EXPECT_EQ((*q)[3].second, "AA==");
  EXPECT_FALSE(ParseQuery("key=%zz").has_value());
  EXPECT_FALSE(ParseQuery("key=%4").has_value());
}

TEST(WebSocket, AcceptKeyIsRfc6455sExample) {
  EXPECT_EQ(WebSocketAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

std::string Masked(uint8_t b0, std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(b0));
  const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  f.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
  return f;
}

TEST(WebSocket, ParsesMaskedFramesAndRefusesBadOnes) {
  std::string buf = Masked(0x81, "Hello") + Masked(0x82, std::string(300, 'x'));
  WsFrame f;
  size_t used = 0;
  uint16_t code = 0;
  ASSERT_EQ(ParseWsFrame(buf.data(), 3, 1000, &f, &used, &code), WsParse::kNeedMore);
  ASSERT_EQ(ParseWsFrame(buf.data(), buf.size(), 1000, &f, &used, &code), WsParse::kFrame);
  EXPECT_TRUE(f.fin);
  EXPECT_EQ(f.opcode, 1);
  EXPECT_EQ(f.payload, "Hello");
  ASSERT_EQ(ParseWsFrame(buf.data() + used, buf.size() - used, 1000, &f, &used, &code),
            WsParse::kFrame);
  EXPECT_EQ(f.payload, std::string(300, 'x'));

  std::string unmasked = "\x81\x02hi";
  EXPECT_EQ(ParseWsFrame(unmasked.data(), unmasked.size(), 1000, &f, &used, &code), WsParse::kError);
  EXPECT_EQ(code, kWsProtocolError);
  std::string big = Masked(0x82, std::string(300, 'x'));
  EXPECT_EQ(ParseWsFrame(big.data(), big.size(), 100, &f, &used, &code), WsParse::kError);
  EXPECT_EQ(code, kWsTooBig);
  std::string fragmented_ping = Masked(0x09, "p");
  EXPECT_EQ(ParseWsFrame(fragmented_ping.data(), fragmented_ping.size(), 100, &f, &used, &code),
            WsParse::kError);
  std::string reserved = Masked(0xC1, "p");
  EXPECT_EQ(ParseWsFrame(reserved.data(), reserved.size(), 100, &f, &used, &code), WsParse::kError);
}

TEST(WebSocket, FrameBytesOnceItsHeaderIsIn) {
  const std::string small = Masked(0x81, "Hello");           // 2 + 4 + 5
  std::string mid = Masked(0x82, std::string(300, 'x'));  // 4 + 4 + 300
  EXPECT_EQ(WsFrameBytes(small.data(), 1), 0u);
  EXPECT_EQ(WsFrameBytes(small.data(), 2), 11u);
  EXPECT_EQ(WsFrameBytes(mid.data(), 3), 0u);
  EXPECT_EQ(WsFrameBytes(mid.data(), 4), 308u);
  // A 64-bit length: known from its 10th byte; absurd ones count as unknown.
  std::string big = "\x82\xff";
  big += std::string("\0\0\0\0\0\x30\0\0", 8);  // 3 MiB
  EXPECT_EQ(WsFrameBytes(big.data(), 9), 0u);
  EXPECT_EQ(WsFrameBytes(big.data(), 10), 10u + 4u + (3u << 20));
  big[2] = '\x7f';
  EXPECT_EQ(WsFrameBytes(big.data(), 10), 0u);
  // Whatever ParseWsFrame takes as one frame, WsFrameBytes said first.
  WsFrame f;
  size_t used = 0;
  uint16_t code = 0;
  ASSERT_EQ(ParseWsFrame(mid.data(), mid.size(), 1000, &f, &used, &code),
            WsParse::kFrame);
  EXPECT_EQ(used, 308u);
}

TEST(WebSocket, ServerFramesAndCloses) {
  std::string out;
  AppendWsFrame(out, WsOpcode::kText, "hi");
  EXPECT_EQ(out, std::string("\x81\x02hi"));
  out.clear();
  AppendWsFrame(out, WsOpcode::kBinary, std::string(70000, 'a'));
  EXPECT_EQ(static_cast<uint8_t>(out[1]), 127);
  EXPECT_EQ(out.size(), 10u + 70000u);
  out.clear();
  AppendWsClose(out, kWsTryAgainLater, std::string(200, 'r'));
  EXPECT_EQ(static_cast<uint8_t>(out[1]), 125);  // control frames carry at most 125 bytes
  EXPECT_EQ(static_cast<uint8_t>(out[2]), 1013 >> 8);
  EXPECT_EQ(static_cast<uint8_t>(out[3]), 1013 & 0xff);
}

TEST(WebSocket, AClientsCloseIsAnsweredWithAValidCode) {
  const auto close = [](uint16_t code, std::string_view reason = "") {
    std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    return p + std::string(reason);
  };
  EXPECT_EQ(WsCloseReply(""), kWsNormal);            // no code given
  EXPECT_EQ(WsCloseReply("\x03"), kWsProtocolError);  // one byte: not a code
  EXPECT_EQ(WsCloseReply(close(1000, "bye")), 1000);
  EXPECT_EQ(WsCloseReply(close(1001)), 1001);
  EXPECT_EQ(WsCloseReply(close(1011)), 1011);
  EXPECT_EQ(WsCloseReply(close(3000)), 3000);
  EXPECT_EQ(WsCloseReply(close(4999)), 4999);
  for (uint16_t bad : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    EXPECT_EQ(WsCloseReply(close(bad)), kWsProtocolError) << bad;  // never sent by a peer
  }
  EXPECT_EQ(WsCloseReply(close(1000, "\xff")), kWsBadData);  // a reason that is not UTF-8
}

TEST(Utf8, TellsWellFormedFromNot) {
  EXPECT_TRUE(IsUtf8("plain"));
  EXPECT_TRUE(IsUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsUtf8("\xc3"));
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
  EXPECT_FALSE(IsUtf8("\xff"));
}

}  // namespace
}  // namespace cellar::net

namespace cellar::net {
namespace {

TEST(Http1Parser, ManyPipelinedRequestsReadInPiecesAllParse) {
  std::string all;
  for (int i = 0; i < 1000; ++i) {
    all += "GET /cache/q?key=k" + std::to_string(i) +
           " HTTP/1.1\r\nHost: x\r\nAuthorization: 0123456789abcdef\r\n\r\n";
  }
  for (size_t piece : {size_t{1}, size_t{7}, size_t{2048}, size_t{65536}}) {
    Http1Parser p;
    std::string in;
    int done = 0;
    for (size_t off = 0; off < all.size(); off += piece) {
      in.append(all, off, piece);
      for (;;) {
        size_t used = 0;
        const auto r = p.Feed(in, &used);
        in.erase(0, used);
        ASSERT_NE(r, Http1Parser::Result::kError) << p.reason();
        if (r == Http1Parser::Result::kNeedMore) break;
        EXPECT_EQ(p.request().query, "key=k" + std::to_string(done)) << "piece " << piece;
        ++done;
        p.Reset();
      }
    }
    EXPECT_EQ(done, 1000) << "piece " << piece;
  }
}

}  // namespace
}  // namespace cellar::net
