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
    case Code::kUnavailable: return w.Error("ERR server is shutting down");
    case Code::kDeadlineExceeded: return w.Error("ERR deadline exceeded");
    case Code::kUnimplemented: return w.Error("ERR not implemented");
    case Code::kInternal: return w.Error("ERR internal error");
  }
  w.Error("ERR internal error");
}

void WriteError(ReplyWriter& w, RespError e, std::string_view detail) {
  std::string d(detail);
  switch (e) {
    case RespError::kNoAuth: return w.Error("NOAUTH Authentication required.");
    case RespError::kWrongPass:
      return w.Error(d.empty() ? "WRONGPASS invalid username-password pair or user is disabled."
                               : "WRONGPASS " + d);
    case RespError::kSyntax: return w.Error("ERR syntax error");
    case RespError::kNotInteger: return w.Error("ERR value is not an integer or out of range");
    case RespError::kNotFloat: return w.Error("ERR value is not a valid float");
    case RespError::kInvalidExpire: return w.Error("ERR invalid expire time in '" + d + "' command");
    case RespError::kWrongArity:
      return w.Error("ERR wrong number of arguments for '" + d + "' command");
    case RespError::kUnknownCommand: return w.Error("ERR unknown command " + d);
    case RespError::kUnknownSubcommand:
      return w.Error("ERR unknown subcommand or wrong number of arguments for '" + d + "'");
    case RespError::kNoSuchCache: return w.Error("ERR cache not found");
    case RespError::kOnlyDbZero: return w.Error("ERR DB index is out of range");
    case RespError::kCursor: return w.Error("ERR invalid cursor");
    case RespError::kProtocolVersion: return w.Error("NOPROTO unsupported protocol version");
    case RespError::kNoDefaultCache:
      return w.Error("NOAUTH Authentication required.");
    case RespError::kNoPerm:
      return w.Error("NOPERM this token has no permission to run '" + d + "' on this key");
    case RespError::kTokenExpired:
      return w.Error("NOAUTH " + d + "; AUTH again with a valid token");
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
      return w.Error("ERR subscriber fell behind: " + d +
                     "; it could not keep up with its messages and was disconnected");
    case RespError::kSubscriptionEnded: return w.Error("ERR subscription ended: " + d);
  }
}

}  // namespace cellar::resp
