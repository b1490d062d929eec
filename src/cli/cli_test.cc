#include <gtest/gtest.h>

#include <string>

#include "cli/admin_client.h"
#include "common/json.h"
#include "cli/observe.h"
#include "cli/resp_client.h"

namespace cellar::cli {
namespace {

TEST(JsonTest, ParsesCacheList) {
  auto doc = ParseJson(R"({"caches":[{"name":"a\"b\u00e9","items":12,"bytes":3400}]})");
  ASSERT_TRUE(doc);
  const Json* caches = doc->Find("caches");
  ASSERT_TRUE(caches);
  ASSERT_EQ(caches->items.size(), 1u);
  EXPECT_EQ(caches->items[0].Find("name")->text, "a\"b\xc3\xa9");
  EXPECT_EQ(caches->items[0].Find("items")->AsUint(), 12u);
  EXPECT_EQ(caches->items[0].Find("bytes")->text, "3400");
}

TEST(JsonTest, RejectsInvalid) {
  for (const char* bad :
       {"", "{", "{\"a\":}", "[1,]", "01", "\"\\x\"", "{} x", "nul", "-", "\"\\ud800\""}) {
    EXPECT_FALSE(ParseJson(bad)) << bad;
  }
  EXPECT_FALSE(ParseJson(std::string(1000, '[') + std::string(1000, ']')));
  EXPECT_TRUE(ParseJson(" [true, false, null, -1.5e3, \"\\ud83d\\ude00\"] "));
  EXPECT_FALSE(ParseJson("-1")->AsUint());
}

TEST(RespTest, ParsesReplies) {
  RespReply r;
  EXPECT_EQ(ParseRespReply("+OK\r\n", &r), 5);
  EXPECT_EQ(r.type, RespReply::Type::kSimple);
  EXPECT_EQ(r.str, "OK");
  EXPECT_EQ(ParseRespReply("-ERR bad\r\n", &r), 10);
  EXPECT_EQ(r.type, RespReply::Type::kError);
  EXPECT_EQ(r.str, "ERR bad");
  EXPECT_EQ(ParseRespReply(":42\r\n", &r), 5);
  EXPECT_EQ(r.integer, 42);
  EXPECT_EQ(ParseRespReply("$-1\r\n", &r), 5);
  EXPECT_EQ(r.type, RespReply::Type::kNull);
  EXPECT_EQ(ParseRespReply(std::string("$5\r\na\r\0b\n\r\n", 11), &r), 11);
  EXPECT_EQ(r.str, std::string("a\r\0b\n", 5));
  EXPECT_EQ(ParseRespReply("*2\r\n$1\r\nx\r\n:1\r\n+extra", &r), 15);
  ASSERT_EQ(r.elements.size(), 2u);
}

TEST(RespTest, IncompleteAndInvalid) {
  RespReply r;
  EXPECT_EQ(ParseRespReply("", &r), 0);
  EXPECT_EQ(ParseRespReply("$5\r\nab", &r), 0);
  EXPECT_EQ(ParseRespReply("*2\r\n:1\r\n", &r), 0);
  EXPECT_EQ(ParseRespReply(":x\r\n", &r), -1);
  EXPECT_EQ(ParseRespReply("$2\r\nabcd\r\n", &r), -1);
  EXPECT_EQ(ParseRespReply("?\r\n", &r), -1);
  EXPECT_EQ(ParseRespReply("$-2\r\n", &r), -1);
}

TEST(RespTest, EncodesCommands) {
  EXPECT_EQ(EncodeRespCommand({"SET", "k", ""}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
}

TEST(AdminClientTest, EncodesPathSegments) {
  EXPECT_EQ(EncodePathSegment("abc-1.2_~"), "abc-1.2_~");
  EXPECT_EQ(EncodePathSegment("a/b c%?#"), "a%2Fb%20c%25%3F%23");
}

TEST(ObserveTest, HistogramQuantile) {
  const std::vector<uint64_t> bounds = {100, 200, 400};
  EXPECT_EQ(HistogramQuantile(bounds, {0, 0, 0, 0}, 0.5), -1);
  // 10 observations <= 100, 10 in (100, 200]: the median is at the top of the first bucket.
  EXPECT_DOUBLE_EQ(HistogramQuantile(bounds, {10, 10, 0, 0}, 0.5), 100);
  EXPECT_DOUBLE_EQ(HistogramQuantile(bounds, {10, 10, 0, 0}, 0.75), 150);
  EXPECT_DOUBLE_EQ(HistogramQuantile(bounds, {0, 0, 4, 0}, 0.5), 300);
  // In the open bucket past the last bound.
  EXPECT_GT(HistogramQuantile(bounds, {1, 0, 0, 99}, 0.99), 400);
}

TEST(ObserveTest, Formats) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(3 * 1024 * 1024), "3.0 MiB");
  EXPECT_EQ(FormatMicros(80), "80us");
  EXPECT_EQ(FormatMicros(1200), "1.2ms");
  EXPECT_EQ(FormatMicros(1500000), "1.50s");
  EXPECT_EQ(FormatUnixMinute(1700000040, false), "2023-11-14 22:14");
  EXPECT_EQ(FormatUnixMinute(1700000042, true), "2023-11-14 22:14:02");
}

}  // namespace
}  // namespace cellar::cli
