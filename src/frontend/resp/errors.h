// The one status-to-wire table of the RESP front-end. Every error text a RESP client can see
// is written here, in Redis's words where Redis has them.
#pragma once

#include <string_view>

#include "common/status.h"
#include "frontend/resp/writer.h"

namespace cellar::resp {

enum class RespError {
  kNoAuth,
  kWrongPass,
  kSyntax,
  kNotInteger,
  kNotFloat,
  kInvalidExpire,  // with the command name
  kWrongArity,     // with the command name
  kUnknownCommand, // with the command name and args
  kUnknownSubcommand,
  kNoSuchCache,
  kOnlyDbZero,
  kCursor,
  kProtocolVersion,
  kNoDefaultCache,
  kNoPerm,          // a command or key outside the token's grants
  kTokenExpired,    // the connection's token expired or its key was revoked (detail: why)
  // ---- Pub/sub ------------------------------------------------------------------------------
  kNoPermChannel,       // a channel or pattern outside the token's topic grants (command name)
  kSubscribeContext,    // RESP2 with subscriptions: only the pub/sub commands (detail: the
                        // command's full name, e.g. "get", "client|id")
  kPubSubUnknownSub,    // PUBSUB FOO (detail: the subcommand as sent)
  kPubSubSyntax,        // PUBSUB CHANNELS a b (detail: the subcommand as sent)
  kPubSubUnavailable,   // the server runs without topics
  kFellBehind,          // a subscriber cut off for not reading (detail: the amounts)
  kSubscriptionEnded,   // the subscription ended on the server's side (detail: which and why)
};

// Writes a Status from the engine or the gateway.
void WriteStatus(ReplyWriter& w, const Status& status);
// Writes a front-end error; `detail` is the command name or other context where one is needed.
void WriteError(ReplyWriter& w, RespError e, std::string_view detail = {});

}  // namespace cellar::resp
