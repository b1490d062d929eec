// The one status-to-wire table of the RESP front-end: how a Cellar Status goes out as a RESP
// error, and every refusal the front-end itself writes, in Redis's words where Redis has them.
// Handlers name a RespError; no error text is written anywhere else in src/frontend/resp
// (tests/layering/check_resp_errors.py fails the build's tests otherwise). Texts of other
// layers pass through as they come: the engine's, auth's and the topics' statuses,
// gateway::Tenancy::Describe (WriteRefusal), gateway::kOverloadedText, and RespParser's
// protocol errors (kProtocol: parser.cc is also built alone into the libFuzzer target).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "frontend/resp/writer.h"
#include "gateway/pipeline.h"

namespace cellar::resp {

// Every refusal the RESP front-end writes. Entries take no detail unless their comment says
// what `detail` carries; "(a, b)" entries take two numbers, in that order. Each goes out as
// "-ERR ..." unless its group says otherwise.
enum class RespError {
  // ---- The command line (connection.cc, resp_server.cc) -----------------------------------------
  kProtocol,           // detail: what RespParser found (its error())
  kUnknownCommand,     // detail: the name and first arguments as Redis quotes them
                       // (WriteUnknownCommand builds it)
  kWrongArity,         // detail: the command's name ("pubsub|help" for a subcommand)
  kUnknownSubcommand,  // detail: the command's full name, e.g. "config|foo"
  kMaxClients,         // a connection over the limit, refused before it exists (ErrorLine)
  kServerBodiesFull,   // every connection's large commands together past the process's
                       // bound; sent as the connection closes (ErrorLine)
  kOverloaded,         // the tenant's queue on this loop is full (gateway::kOverloadedText)
  kValueTooLarge,      // a value over the server's item limit, no cache bound yet
  // ---- Authentication and the token (connection.cc, connection_family.cc); these go out as
  // NOAUTH, WRONGPASS, NOPERM or NOPROTO, as in Redis ---------------------------------------------
  kNoAuth,
  kWrongPass,        // detail: auth's reason (empty: Redis's words)
  kNoDefaultCache,   // (no caller writes it today)
  kNoPerm,           // a command or key outside the token's grants; detail: the command
  kTokenExpired,     // the token expired or its key was revoked; detail: why (auth's text)
  kProtocolVersion,  // HELLO with a version other than 2 or 3
  // ---- Connection and server commands (connection_family.cc, server_family.cc) ------------------
  kNoSuchCache,
  kOnlyDbZero,         // SELECT of a database other than 0
  kClientNameChars,    // CLIENT SETNAME with spaces, newlines or special characters
  kConfigUnsupported,  // detail: the CONFIG subcommand, lower case (set, resetstat, rewrite)
  // ---- Arguments, in every family ---------------------------------------------------------------
  kSyntax,
  kNotInteger,
  kNotFloat,
  kMustBePositive,  // a count below 0 (LPOP/RPOP, SPOP, ZPOPMIN/ZPOPMAX)
  kInvalidExpire,   // detail: the command's name
  kCursor,          // a SCAN cursor that is not an unsigned integer
  kPatternTooLong,  // (a, b): the glob pattern's bytes, the limit (kMaxPatternBytes)
  // ---- Keys (keys_family.cc) --------------------------------------------------------------------
  kUnsupportedOption,  // EXPIRE's family; detail: the option as sent
  kExpireNxAndOthers,  // NX with XX, GT or LT
  kExpireGtAndLt,
  kKeysReplyTooLarge,  // (a): the most bytes of keys a reply holds (--max-reply-bytes)
  // ---- Strings and hashes (string_family.cc, hash_family.cc) ------------------------------------
  kDecrementOverflow,  // DECRBY of INT64_MIN
  kOffsetOutOfRange,   // SETRANGE with a negative offset
  kStringTooLong,      // SETRANGE past the item size limit (proto-max-bulk-len in Redis)
  kNaNOrInfinity,      // HINCRBYFLOAT by an infinity
  // ---- Lists (list_family.cc) -------------------------------------------------------------------
  kNoSuchKey,       // LSET of a missing key
  kRankZero,        // LPOS RANK 0
  kCountNegative,   // LPOS COUNT
  kMaxLenNegative,  // LPOS MAXLEN
  // ---- Sets (set_family.cc) ---------------------------------------------------------------------
  kCountOutOfRange,     // SRANDMEMBER with a count of INT64_MIN
  kNumKeysNotPositive,  // SINTERCARD
  kNumKeysOverArgs,     // SINTERCARD
  kLimitNegative,       // SINTERCARD
  // ---- Sorted sets (zset_family.cc) -------------------------------------------------------------
  kZAddXxAndNx,
  kZAddGtLtAndNx,      // GT with LT, or either with NX
  kZAddIncrPairs,      // INCR with more than one score-member pair
  kNotFloatRange,      // a score bound that is not a float
  kNotLexRange,        // a lex bound without its '[' or '(' (or other than '-' and '+')
  kRangeLimitNeedsBy,  // ZRANGE LIMIT of a rank range
  kRangeWithScoresByLex,
  kNoInputKeys,     // ZUNION's family with numkeys below 1; detail: the command's name
  kWeightNotFloat,  // ZUNION's family WEIGHTS
  // ---- Pub/sub (pubsub_family.cc, connection.cc) ------------------------------------------------
  kNoPermChannel,      // NOPERM: a channel or pattern outside the token's topic grants;
                       // detail: the command name
  kSubscribeContext,   // RESP2 with subscriptions: only the pub/sub commands (detail: the
                       // command's full name, e.g. "get", "client|id")
  kPubSubUnknownSub,   // PUBSUB FOO (detail: the subcommand as sent)
  kPubSubSyntax,       // PUBSUB CHANNELS a b (detail: the subcommand as sent)
  kPubSubUnavailable,  // the server runs without topics
  kFellBehind,         // a subscriber cut off for not reading; (a): the queue's bound in bytes
  kSubscriptionEnded,  // the subscription ended on the server's side; detail: which and why
                       // (WriteSubscriptionEnded builds it)

  kCount,  // not an error: the number of entries (tests walk them all)
};

// Writes a Status from the engine, the gateway, auth or the topics.
void WriteStatus(ReplyWriter& w, const Status& status);
// Writes a front-end refusal, with `detail` or the numbers as errors.h says of the entry.
void WriteError(ReplyWriter& w, RespError e, std::string_view detail = {});
void WriteError(ReplyWriter& w, RespError e, uint64_t a, uint64_t b = 0);
// The whole error reply ("-ERR ...\r\n", the same in RESP2 and RESP3), for a line sent with
// net::SendLineNow outside a connection's replies.
std::string ErrorLine(RespError e);

// kUnknownCommand for a command line (args[0] is the name), quoted as Redis quotes it.
void WriteUnknownCommand(ReplyWriter& w, std::span<const std::string_view> args);
// kSubscriptionEnded for a channel (or pattern) the topics ended, saying why.
void WriteSubscriptionEnded(ReplyWriter& w, bool pattern, std::string_view name, const Status& why);
// A limit refusal of the gateway (Tenancy::Describe's words, naming the cache), as the
// pipeline keeps it made for a client that is refused many times a round.
void WriteRefusal(ReplyWriter& w, gateway::Pipeline& pipeline, const gateway::CacheState& c,
                  gateway::Refusal r);

}  // namespace cellar::resp
