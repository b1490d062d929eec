// The one status-to-wire table of the gRPC front-end: how a Cellar Status goes out as a gRPC
// status (grpc-status, grpc-message, Momento's `err` trailer), and every refusal the front-end
// itself writes. Handlers name a GrpcError; no error text is written anywhere else in
// src/frontend/grpc (tests/layering/check_grpc_errors.py fails the build's tests otherwise).
// Texts of other layers pass through as they come: gateway::Tenancy::Describe,
// gateway::kOverloadedText, the topics' admission refusals, the engine's and auth's statuses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cellar::grpc {

// gRPC status codes (the numbers are the wire values).
enum class GrpcCode : uint8_t {
  kOk = 0, kCancelled = 1, kUnknown = 2, kInvalidArgument = 3, kDeadlineExceeded = 4,
  kNotFound = 5, kAlreadyExists = 6, kPermissionDenied = 7, kResourceExhausted = 8,
  kFailedPrecondition = 9, kAborted = 10, kOutOfRange = 11, kUnimplemented = 12,
  kInternal = 13, kUnavailable = 14, kDataLoss = 15, kUnauthenticated = 16,
};

// A Cellar Status on the gRPC wire.
struct WireStatus {
  GrpcCode code = GrpcCode::kOk;
  std::string message;
  std::string_view err;  // Momento's `err` trailer; empty: none
  bool server_busy = false;  // a refusal for load, not for the request: the web says 503 (retry)
};

// Every refusal the gRPC front-end writes. Entries take no detail unless their comment says
// what `detail` carries; "(a, b)" entries take two numbers, in that order.
enum class GrpcError {
  // ---- Framing and the request's headers (framing.cc, connection.cc) ----------------------
  kMissingMessage,          // a unary call's body is empty
  kTruncatedPrefix,         // fewer than 5 bytes of message prefix
  kCompressed,              // message flag 1: only the identity encoding is served
  kBadMessageFlag,          // a message flag other than 0 or 1
  kMessageOverWireLimit,    // declared length above kMaxWireMessage (the SDK's largest)
  kShortMessage,            // fewer bytes than the prefix declares
  kExtraMessage,            // more than one message on a unary call
  kHeaderTooLong,           // a header value over 16 KiB, or the list over 64 KiB
  kNotPost,                 // :method is not POST
  kNotGrpcContentType,      // content-type is not application/grpc*
  kUnknownMethod,           // detail: the :path as sent
  kDeadlineExceeded,        // the grpc-timeout passed before the call ran
  // ---- Request bodies held while they arrive (connection.cc); err request_size_limit_exceeded
  // except kUnauthenticatedBodies ---------------------------------------------------------------
  kRequestOverLimit,        // (a, b): the declared message bytes, the request limit
  kConnectionBodiesFull,    // this connection buffers too much request data
  kServerBodiesFull,        // the process buffers too much request data, all connections
  kUnauthenticatedBodies,   // too much data before any call on the connection authenticated
  // ---- Which cache, and may the token use it (connection.cc, pubsub_services.cc) -----------
  kNeedsSuperUser,          // a control call (caches) from a token that is not super-user
  kNoCacheName,             // a Pubsub request whose cache_name is empty
  kNoCacheHeader,           // a data call without the `cache` header
  kNoSuchCache,             // detail: the cache name as sent
  kNotPermitted,            // an operation outside the token's grants
  kSubscribeNotPermitted,   // a topic outside the token's subscribe grants
  // ---- Decoding and values (service_util.h) --------------------------------------------------
  kBadMessage,              // the request message does not decode
  kValueOverCacheLimit,     // detail: the limit as gateway::Tenancy::Describe names it;
                            // (a): the value's bytes
  kValueOverItemLimit,      // (a, b): the value's bytes, the server's item limit
  kTtlTooLarge,             // ttl_milliseconds overflows an absolute time
  // ---- cache_client.Scs scalar methods (services.cc) -----------------------------------------
  kSetIfNoCondition,
  kSetIfHashNoCondition,
  kUpdateTtlNoChoice,
  // ---- Collections (collection_util.h and one file per type) ---------------------------------
  kScoreNaN,                // a sorted set element's score
  kDictionaryGetNoFields,
  kDictionaryDeleteNoChoice,
  kSetDifferenceBadSubtrahend,
  kSetDifferenceMinuend,
  kSetDifferenceNoSubtrahend,
  kListEraseNoChoice,
  kListRemoveNoValue,
  kBadOrder,                // an order other than ASCENDING or DESCENDING (also leaderboards)
  kSortedSetFetchNaN,
  kSortedSetFetchNoChoice,
  kSortedSetRemoveNoChoice,
  kSortedSetLengthByScoreNaN,
  kUnionStoreBadAggregate,
  kUnionStoreNoSources,     // SortedSetUnionStore with an empty sources list (Momento: INVALID_ARGUMENT)
  kUnionStoreWeightNaN,
  kUnionStoreLostUnion,     // internal: round 2 found no union kept by round 1
  kUnionStoreNotStored,     // internal: finish ran without round 2
  // ---- leaderboard.Leaderboard (leaderboard_services.cc) ------------------------------------
  kTooManyElements,         // (a, b): the elements sent, the most per request
  kTooManyIds,              // (a, b): the ids sent, the most per request
  kElementScoreNaN,
  kGetByRankNoRange,
  kRankRangeEmpty,          // (a, b): end_exclusive, start_inclusive
  kRankRangeTooWide,        // (a, b): the span asked, the most per range
  kLimitElementsTooLarge,   // (a, b): limit_elements, the most per range
  kScoreBoundsNaN,
  // ---- cache_client.pubsub.Pubsub (pubsub_services.cc, connection.cc) ----------------------
  kTopicsDisabled,          // the server runs without topics
  kEmptyTopic,
  kNoTopicValue,            // a published message with neither text nor binary
  kSubscriberFellBehind,    // detail: the subscriber queue's bound in bytes (digits only)
  // ---- Token services (auth_services.cc) -----------------------------------------------------
  kBadTokenRequest,         // the token request does not decode
  kTokensDisabled,          // no signing keys: the server mints nothing
  kNoPermissions,
  kCacheGrantNoRole,
  kCacheGrantNoCache,
  kItemSelectorEmpty,
  kTopicGrantNoRole,
  kTopicGrantNoCache,
  kTopicSelectorEmpty,
  kEmptyPermission,
  kNoSuchTenant,            // the token's tenant was deleted
  kDisposableMints,         // a disposable token asked to mint
  kSuperUserMint,           // a super-user key asked for by another than the admin key
  kApiKeyMint,              // an API key asked for by a key that is not super-user
  kNonPositiveValidity,
  kNoExpiry,
  kTokenIdTooLong,
  kRefreshMismatch,         // the refresh token is not the API key's
  kMinterExpired,           // the key that minted this one expired: no more refreshes
  kDisposableNoExpiry,
  kDisposableTooLong,       // detail: the most seconds a disposable token lives (digits only)
  kDisposableSuperUser,
  kExceedsCaller,           // a disposable token asking for more than its minter holds
  // ---- momento-local fault injection (momento_local.cc; only with --momento-local) ---------
  kInjectedFault,           // detail: the status name asked for (the wire code is that status)
  kBadFaultMetadata,        // detail: "header: value" as sent
  // ---- --demo (demo.cc) ----------------------------------------------------------------------
  kDemoTokensThrottled,     // (a, b): tokens a second, the burst

  kCount,  // not an error: the number of entries (tests walk them all)
};

// The status a lower-case, dash-separated gRPC status name names ("unavailable",
// "not-found", "resource-exhausted"...: the names momento-local's metadata uses).
std::optional<GrpcCode> GrpcCodeNamed(std::string_view name);

// A Cellar Status (from the engine, the gateway, auth, the topics, or Error below) on the wire.
WireStatus ToWire(const Status& status);
// A topics error on the wire, with Momento's `err` for the limits the SDK names.
WireStatus TopicsWireStatus(const Status& status);

// A front-end refusal as a Status (its Code decides the gRPC code through ToWire).
Status Error(GrpcError e, std::string_view detail = {});
Status Error(GrpcError e, uint64_t a, uint64_t b);
Status Error(GrpcError e, std::string_view detail, uint64_t a);
// The same on the wire, with the entry's `err` where it has one (the request-size refusals):
// ToWire(Error(...)) plus that trailer.
WireStatus WireError(GrpcError e, std::string_view detail = {});
WireStatus WireError(GrpcError e, uint64_t a, uint64_t b);

}  // namespace cellar::grpc
