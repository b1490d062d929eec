#include "frontend/resp/errors.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace cellar::resp {
namespace {

using E = RespError;

// The error code (the first word of the line) of every refusal, as Redis clients see it:
// redis-py and node-redis pick their exception classes by it, so a change here changes the wire.
struct PrefixGroup {
  std::string_view prefix;
  std::vector<RespError> errors;
};
const std::vector<PrefixGroup>& ExpectedPrefixes() {
  static const std::vector<PrefixGroup> groups = {
      {"ERR",
       {E::kProtocol, E::kUnknownCommand, E::kWrongArity, E::kUnknownSubcommand, E::kMaxClients,
        E::kServerBodiesFull, E::kOverloaded, E::kValueTooLarge, E::kNoSuchCache,
        E::kOnlyDbZero, E::kClientNameChars, E::kConfigUnsupported, E::kSyntax, E::kNotInteger,
        E::kNotFloat, E::kMustBePositive, E::kInvalidExpire, E::kCursor, E::kPatternTooLong,
        E::kUnsupportedOption, E::kExpireNxAndOthers, E::kExpireGtAndLt, E::kKeysReplyTooLarge,
        E::kDecrementOverflow, E::kOffsetOutOfRange, E::kStringTooLong, E::kNaNOrInfinity,
        E::kNoSuchKey, E::kRankZero, E::kCountNegative, E::kMaxLenNegative, E::kCountOutOfRange,
        E::kNumKeysNotPositive, E::kNumKeysOverArgs, E::kLimitNegative, E::kZAddXxAndNx,
        E::kZAddGtLtAndNx, E::kZAddIncrPairs, E::kNotFloatRange, E::kNotLexRange,
        E::kRangeLimitNeedsBy, E::kRangeWithScoresByLex, E::kNoInputKeys, E::kWeightNotFloat,
        E::kSubscribeContext, E::kPubSubUnknownSub, E::kPubSubSyntax, E::kPubSubUnavailable,
        E::kFellBehind, E::kSubscriptionEnded}},
      {"NOAUTH", {E::kNoAuth, E::kNoDefaultCache, E::kTokenExpired}},
      {"WRONGPASS", {E::kWrongPass}},
      {"NOPERM", {E::kNoPerm, E::kNoPermChannel}},
      {"NOPROTO", {E::kProtocolVersion}},
  };
  return groups;
}

std::string Written(RespError e, std::string_view detail = {}, int proto = 2) {
  std::string out;
  ReplyWriter w(&out, proto);
  WriteError(w, e, detail);
  return out;
}

std::string WrittenNumbers(RespError e, uint64_t a, uint64_t b) {
  std::string out;
  ReplyWriter w(&out, 2);
  WriteError(w, e, a, b);
  return out;
}

// One error line: '-', the prefix, a space, some text, CRLF, and no other CR or LF.
void ExpectErrorLine(const std::string& line, std::string_view prefix) {
  const std::string head = "-" + std::string(prefix) + " ";
  ASSERT_TRUE(line.starts_with(head)) << line;
  ASSERT_TRUE(line.ends_with("\r\n")) << line;
  EXPECT_GT(line.size(), head.size() + 2) << line;
  EXPECT_EQ(line.find_first_of("\r\n"), line.size() - 2) << line;
}

TEST(RespErrors, EveryEntryWritesAnErrorLineWithItsPrefix) {
  std::set<RespError> seen;
  for (const PrefixGroup& g : ExpectedPrefixes()) {
    for (RespError e : g.errors) {
      SCOPED_TRACE(static_cast<int>(e));
      EXPECT_TRUE(seen.insert(e).second) << "listed twice";
      // kProtocol's text is all detail (the parser's words).
      if (e != E::kProtocol) {
        ExpectErrorLine(Written(e), g.prefix);
        ExpectErrorLine(WrittenNumbers(e, 7, 9), g.prefix);
      }
      ExpectErrorLine(Written(e, "detail"), g.prefix);
      // An error line is the same in RESP2 and RESP3.
      EXPECT_EQ(Written(e, "detail", 3), Written(e, "detail", 2));
      EXPECT_EQ(ErrorLine(e), Written(e));
    }
  }
  // Every entry is listed above: a new one must say which prefix it goes out with.
  EXPECT_EQ(seen.size(), static_cast<size_t>(RespError::kCount));
}

TEST(RespErrors, DetailsAndNumbersGoWhereTheTextSays) {
  EXPECT_EQ(Written(E::kWrongArity, "get"), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(Written(E::kNoInputKeys, "zunion"),
            "-ERR at least 1 input key is needed for 'zunion' command\r\n");
  EXPECT_EQ(Written(E::kUnsupportedOption, "FOO"), "-ERR Unsupported option FOO\r\n");
  EXPECT_EQ(Written(E::kConfigUnsupported, "set"),
            "-ERR CONFIG set is not supported: configure with cellar serve flags\r\n");
  EXPECT_EQ(Written(E::kProtocol, "Protocol error: invalid bulk length"),
            "-ERR Protocol error: invalid bulk length\r\n");
  EXPECT_EQ(WrittenNumbers(E::kPatternTooLong, 5000, 4096),
            "-ERR pattern is 5000 bytes, over the limit of 4096\r\n");
  EXPECT_EQ(WrittenNumbers(E::kKeysReplyTooLarge, 1024, 0),
            "-ERR reply too large: KEYS matched more than 1024 bytes of keys (--max-reply-bytes); "
            "use SCAN\r\n");
  EXPECT_EQ(WrittenNumbers(E::kFellBehind, 65536, 0),
            "-ERR subscriber fell behind: more than 65536 bytes of messages were waiting to be "
            "written to it; it could not keep up with its messages and was disconnected\r\n");
  EXPECT_EQ(Written(E::kWrongPass),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  EXPECT_EQ(Written(E::kWrongPass, "token expired"), "-WRONGPASS token expired\r\n");
  EXPECT_EQ(ErrorLine(E::kMaxClients), "-ERR max number of clients reached\r\n");
  EXPECT_EQ(ErrorLine(E::kOverloaded), "-ERR " + std::string(gateway::kOverloadedText) + "\r\n");
}

TEST(RespErrors, UnknownCommandQuotesAsRedis) {
  std::string out;
  ReplyWriter w(&out, 2);
  const std::vector<std::string_view> args = {"foo", "a", "b"};
  WriteUnknownCommand(w, args);
  EXPECT_EQ(out, "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
  // Arguments are cut at 128 bytes, and the list stops once past 256.
  out.clear();
  const std::string big(300, 'x');
  const std::vector<std::string_view> many = {"foo", big, big, big, big};
  WriteUnknownCommand(w, many);
  const std::string cut = "'" + std::string(128, 'x') + "' ";
  EXPECT_EQ(out, "-ERR unknown command 'foo', with args beginning with: " + cut + cut + "\r\n");
}

TEST(RespErrors, SubscriptionEndedSaysWhichAndWhy) {
  std::string out;
  ReplyWriter w(&out, 3);
  WriteSubscriptionEnded(w, false, "x", Status(Code::kNotFound));
  WriteSubscriptionEnded(w, true, "y*", Status(Code::kUnavailable));
  WriteSubscriptionEnded(w, false, "n", Status(Code::kUnauthenticated, "token expired"));
  EXPECT_EQ(out,
            "-ERR subscription ended: channel 'x': its cache was deleted\r\n"
            "-ERR subscription ended: pattern 'y*': the server is shutting down\r\n"
            "-ERR subscription ended: channel 'n': token expired\r\n");
}

TEST(RespErrors, StatusesOfOtherLayers) {
  std::string out;
  ReplyWriter w(&out, 2);
  WriteStatus(w, Status(Code::kWrongType));
  WriteStatus(w, Status(Code::kNotInteger, "hash value is not an integer"));
  WriteStatus(w, Status(Code::kOutOfMemory));
  EXPECT_EQ(out,
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
            "-ERR hash value is not an integer\r\n"
            "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
}

}  // namespace
}  // namespace cellar::resp
