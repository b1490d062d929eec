#include "frontend/resp/parser.h"

#include <gtest/gtest.h>

namespace cellar::resp {
namespace {

std::vector<std::string> Args(const RespParser& p, std::string_view buf) {
  std::vector<std::string> out;
  for (size_t i = 0; i < p.args().size(); ++i) out.emplace_back(p.ArgAt(buf, i));
  return out;
}

TEST(RespParser, MultibulkAndPipelining) {
  std::string buf = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n";
  RespParser p;
  ASSERT_EQ(p.Next(buf), RespParser::Result::kCommand);
  EXPECT_EQ(Args(p, buf), (std::vector<std::string>{"GET", "k"}));
  ASSERT_EQ(p.Next(buf), RespParser::Result::kCommand);
  EXPECT_EQ(Args(p, buf), (std::vector<std::string>{"PING"}));
  EXPECT_EQ(p.Next(buf), RespParser::Result::kNeedMore);
  EXPECT_EQ(p.consumed(), buf.size());
}

TEST(RespParser, ResumesAcrossPartialReadsByteByByte) {
  std::string full = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n";
  RespParser p;
  std::string buf;
  for (size_t i = 0; i + 1 < full.size(); ++i) {
    buf.push_back(full[i]);
    ASSERT_EQ(p.Next(buf), RespParser::Result::kNeedMore) << i;
  }
  buf.push_back(full.back());
  ASSERT_EQ(p.Next(buf), RespParser::Result::kCommand);
  EXPECT_EQ(Args(p, buf), (std::vector<std::string>{"SET", "key", "va\r\nl"}));
}

TEST(RespParser, InlineCommands) {
  std::string buf = "SET k \"hello world\"\r\n\r\nPING\n";
  RespParser p;
  ASSERT_EQ(p.Next(buf), RespParser::Result::kCommand);
  EXPECT_EQ(Args(p, buf), (std::vector<std::string>{"SET", "k", "hello world"}));
  ASSERT_EQ(p.Next(buf), RespParser::Result::kCommand);
  EXPECT_EQ(Args(p, buf), (std::vector<std::string>{"PING"}));
}

TEST(RespParser, RefusesOversizedBulkBeforeAllocating) {
  RespParser p(ParserLimits{.max_bulk_bytes = 1024});
  std::string buf = "*2\r\n$3\r\nGET\r\n$10000000000\r\n";
  EXPECT_EQ(p.Next(buf), RespParser::Result::kError);
  EXPECT_NE(p.error().find("invalid bulk length"), std::string::npos);
}

TEST(RespParser, Malformed) {
  for (std::string bad : {"*1\r\n$abc\r\n", "*x\r\n", "*1\r\n+PING\r\n", "*1\r\n$4\r\nPINGxx",
                          "*-5\r\n*1\r\n$1\r\n"}) {
    RespParser p;
    auto r = p.Next(bad);
    if (bad.rfind("*-5", 0) == 0) {
      EXPECT_EQ(r, RespParser::Result::kNeedMore) << bad;  // *-5 is an empty command, skipped
    } else {
      EXPECT_EQ(r, RespParser::Result::kError) << bad;
    }
  }
}

TEST(RespParser, ManyEmptyLinesDoNotRecurse) {
  std::string buf(1 << 20, '\n');
  RespParser p;
  EXPECT_EQ(p.Next(buf), RespParser::Result::kNeedMore);
  EXPECT_EQ(p.consumed(), buf.size());
}

}  // namespace
}  // namespace cellar::resp

namespace cellar::resp {
namespace {

TEST(RespParser, RefusesACommandLargerThanTheCommandLimit) {
  RespParser p(ParserLimits{.max_bulk_bytes = 100, .max_command_bytes = 250});
  std::string buf = "*4\r\n$3\r\nSET\r\n$100\r\n" + std::string(100, 'a') + "\r\n$100\r\n";
  EXPECT_EQ(p.Next(buf), RespParser::Result::kNeedMore);  // 2 args so far: under the limit
  buf += std::string(100, 'b') + "\r\n$100\r\n";
  EXPECT_EQ(p.Next(buf), RespParser::Result::kError);     // the 4th would pass 250 bytes
  EXPECT_NE(p.error().find("size limit"), std::string::npos);
}

}  // namespace
}  // namespace cellar::resp
