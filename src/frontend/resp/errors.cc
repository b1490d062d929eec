#include "frontend/resp/errors.h"

#include <string>

namespace cellar::resp {

void WriteStatus(ReplyWriter& w, const Status& st) {
  switch (st.code()) {
    case Code::kOk: return w.Simple("OK");
    case Code::kNotFound:  // a cache, or (LSET) "no such key"
      return w.Error(st.message().empty() ? "ERR cache not found" : "ERR " + st.message());
    case Code::kAlreadyExists: return w.Error("ERR cache already exists");
    case Code::kSyntax: return w.Error("ERR syntax error");
    case Code::kWrongType:
      return w.Error("WRONGTYPE Operation against a key holding the wrong kind of value");
    // The engine's own words where it has them ("hash value is not an integer").
    case Code::kNotInteger:
      return w.Error(st.message().empty() ? "ERR value is not an integer or out of range"
                                          : "ERR " + st.message());
    case Code::kNotFloat:
      return w.Error(st.message().empty() ? "ERR value is not a valid float"
                                          : "ERR " + st.message());
    case Code::kOverflow: return w.Error("ERR increment or decrement would overflow");
    case Code::kOutOfMemory:
      return w.Error("OOM command not allowed when used memory > 'maxmemory'.");
    case Code::kUnauthenticated: return w.Error("NOAUTH Authentication required.");
    case Code::kPermissionDenied: return w.Error("NOPERM " + st.message());
    case Code::kTooLarge:
    case Code::kInvalidArgument:
    case Code::kFailedPrecondition:
    case Code::kResourceExhausted:
      return w.Error("ERR " + st.message());
    // With its own words: a fleet's passing state ("node n2 unreachable ...; retry"), answered
    // TRYAGAIN as Redis Cluster does; without: the server is going away.
    case Code::kUnavailable:
      return w.Error(st.message().empty() ? "ERR server is shutting down"
                                          : "TRYAGAIN " + st.message());
    case Code::kDeadlineExceeded: return w.Error("ERR deadline exceeded");
    case Code::kUnimplemented: return w.Error("ERR not implemented");
    case Code::kInternal: return w.Error("ERR internal error");
  }
  w.Error("ERR internal error");
}

namespace {

// `d` is the detail, `a` and `b` the numbers, as errors.h says of each entry.
void Write(ReplyWriter& w, RespError e, std::string_view detail, uint64_t a, uint64_t b) {
  const auto n = [](uint64_t v) { return std::to_string(v); };
  const std::string d(detail);
  switch (e) {
    // The command line.
    case RespError::kProtocol: return w.Error("ERR " + d);
    case RespError::kUnknownCommand: return w.Error("ERR unknown command " + d);
    case RespError::kWrongArity:
      return w.Error("ERR wrong number of arguments for '" + d + "' command");
    case RespError::kUnknownSubcommand:
      return w.Error("ERR unknown subcommand or wrong number of arguments for '" + d + "'");
    case RespError::kMaxClients: return w.Error("ERR max number of clients reached");
    case RespError::kServerBodiesFull:
      return w.Error("ERR the server is receiving too much request data right now; retry");
    case RespError::kOverloaded: {
      // Made once: a flooding tenant is refused many times a round.
      static const std::string kLine = "ERR " + std::string(gateway::kOverloadedText);
      return w.Error(kLine);
    }
    case RespError::kValueTooLarge: return w.Error("ERR value exceeds the item size limit");
    // Authentication and the token.
    case RespError::kNoAuth: return w.Error("NOAUTH Authentication required.");
    case RespError::kWrongPass:
      return w.Error(d.empty() ? "WRONGPASS invalid username-password pair or user is disabled."
                               : "WRONGPASS " + d);
    case RespError::kNoDefaultCache: return w.Error("NOAUTH Authentication required.");
    case RespError::kNoPerm:
      return w.Error("NOPERM this token has no permission to run '" + d + "' on this key");
    case RespError::kTokenExpired:
      return w.Error("NOAUTH " + d + "; AUTH again with a valid token");
    case RespError::kProtocolVersion: return w.Error("NOPROTO unsupported protocol version");
    // Connection and server commands.
    case RespError::kNoSuchCache: return w.Error("ERR cache not found");
    case RespError::kOnlyDbZero: return w.Error("ERR DB index is out of range");
    case RespError::kClientNameChars:
      return w.Error("ERR Client names cannot contain spaces, newlines or special characters.");
    case RespError::kConfigUnsupported:
      return w.Error("ERR CONFIG " + d + " is not supported: configure with cellar serve flags");
    // Arguments.
    case RespError::kSyntax: return w.Error("ERR syntax error");
    case RespError::kNotInteger: return w.Error("ERR value is not an integer or out of range");
    case RespError::kNotFloat: return w.Error("ERR value is not a valid float");
    case RespError::kMustBePositive:
      return w.Error("ERR value is out of range, must be positive");
    case RespError::kInvalidExpire:
      return w.Error("ERR invalid expire time in '" + d + "' command");
    case RespError::kCursor: return w.Error("ERR invalid cursor");
    case RespError::kPatternTooLong:
      return w.Error("ERR pattern is " + n(a) + " bytes, over the limit of " + n(b));
    // Keys.
    case RespError::kUnsupportedOption: return w.Error("ERR Unsupported option " + d);
    case RespError::kExpireNxAndOthers:
      return w.Error("ERR NX and XX, GT or LT options at the same time are not compatible");
    case RespError::kExpireGtAndLt:
      return w.Error("ERR GT and LT options at the same time are not compatible");
    case RespError::kKeysReplyTooLarge:
      return w.Error("ERR reply too large: KEYS matched more than " + n(a) +
                     " bytes of keys (--max-reply-bytes); use SCAN");
    // Strings and hashes.
    case RespError::kDecrementOverflow: return w.Error("ERR decrement would overflow");
    case RespError::kOffsetOutOfRange: return w.Error("ERR offset is out of range");
    case RespError::kStringTooLong:
      return w.Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    case RespError::kNaNOrInfinity: return w.Error("ERR value is NaN or Infinity");
    // Lists.
    case RespError::kNoSuchKey: return w.Error("ERR no such key");
    case RespError::kRankZero:
      return w.Error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                     "second ... or use negative to start from the end of the list");
    case RespError::kCountNegative: return w.Error("ERR COUNT can't be negative");
    case RespError::kMaxLenNegative: return w.Error("ERR MAXLEN can't be negative");
    // Sets.
    case RespError::kCountOutOfRange:
      return w.Error("ERR value is out of range, value must between -9223372036854775807 and "
                     "9223372036854775807");
    case RespError::kNumKeysNotPositive: return w.Error("ERR numkeys should be greater than 0");
    case RespError::kNumKeysOverArgs:
      return w.Error("ERR Number of keys can't be greater than number of args");
    case RespError::kLimitNegative: return w.Error("ERR LIMIT can't be negative");
    // Sorted sets.
    case RespError::kZAddXxAndNx:
      return w.Error("ERR XX and NX options at the same time are not compatible");
    case RespError::kZAddGtLtAndNx:
      return w.Error("ERR GT, LT, and/or NX options at the same time are not compatible");
    case RespError::kZAddIncrPairs:
      return w.Error("ERR INCR option supports a single increment-element pair");
    case RespError::kNotFloatRange: return w.Error("ERR min or max is not a float");
    case RespError::kNotLexRange: return w.Error("ERR min or max not valid string range item");
    case RespError::kRangeLimitNeedsBy:
      return w.Error("ERR syntax error, LIMIT is only supported in combination with either "
                     "BYSCORE or BYLEX");
    case RespError::kRangeWithScoresByLex:
      return w.Error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    case RespError::kNoInputKeys:
      return w.Error("ERR at least 1 input key is needed for '" + d + "' command");
    case RespError::kWeightNotFloat: return w.Error("ERR weight value is not a float");
    // Pub/sub.
    case RespError::kNoPermChannel:
      return w.Error("NOPERM this token has no permission to run '" + d + "' on this channel");
    case RespError::kSubscribeContext:
      return w.Error("ERR Can't execute '" + d +
                     "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                     "allowed in this context");
    case RespError::kPubSubUnknownSub:
      return w.Error("ERR unknown subcommand '" + d + "'. Try PUBSUB HELP.");
    case RespError::kPubSubSyntax:
      return w.Error("ERR unknown subcommand or wrong number of arguments for '" + d +
                     "'. Try PUBSUB HELP.");
    case RespError::kPubSubUnavailable: return w.Error("ERR pub/sub is not enabled on this server");
    case RespError::kFellBehind:
      return w.Error("ERR subscriber fell behind: more than " + n(a) +
                     " bytes of messages were waiting to be written to it; it could not keep up "
                     "with its messages and was disconnected");
    case RespError::kSubscriptionEnded: return w.Error("ERR subscription ended: " + d);
    case RespError::kCount: break;
  }
  w.Error("ERR internal error");
}

}  // namespace

void WriteError(ReplyWriter& w, RespError e, std::string_view detail) { Write(w, e, detail, 0, 0); }

void WriteError(ReplyWriter& w, RespError e, uint64_t a, uint64_t b) { Write(w, e, {}, a, b); }

std::string ErrorLine(RespError e) {
  std::string line;
  ReplyWriter w(&line, 2);
  Write(w, e, {}, 0, 0);
  return line;
}

void WriteUnknownCommand(ReplyWriter& w, std::span<const std::string_view> args) {
  // Redis's quoting, each argument cut to 128 bytes, about 256 bytes in all.
  std::string detail;
  detail.append("'").append(args[0].substr(0, 128)).append("', with args beginning with: ");
  for (size_t i = 1; i < args.size() && detail.size() < 256; ++i) {
    detail.append("'").append(args[i].substr(0, 128)).append("' ");
  }
  Write(w, RespError::kUnknownCommand, detail, 0, 0);
}

void WriteSubscriptionEnded(ReplyWriter& w, bool pattern, std::string_view name,
                            const Status& why) {
  std::string detail = pattern ? "pattern '" : "channel '";
  detail.append(name).append("': ");
  if (why.code() == Code::kNotFound) {
    detail += "its cache was deleted";
  } else if (why.code() == Code::kUnavailable) {
    detail += "the server is shutting down";
  } else {
    detail += why.message();  // the topics' words (a token that expired, ...)
  }
  Write(w, RespError::kSubscriptionEnded, detail, 0, 0);
}

void WriteRefusal(ReplyWriter& w, gateway::Pipeline& pipeline, const gateway::CacheState& c,
                  gateway::Refusal r) {
  // TRYAGAIN, as Redis Cluster answers while it cannot serve a key for a moment.
  w.Error(pipeline.RefusalText(c, r, r == gateway::Refusal::kNotServing ? "TRYAGAIN " : "ERR ",
                               /*name_cache=*/true));
}

}  // namespace cellar::resp
