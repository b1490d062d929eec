#include "frontend/grpc/errors.h"

#include <utility>

#include "frontend/grpc/framing.h"
#include "topics/topics.h"

namespace cellar::grpc {

namespace {

constexpr std::string_view kDeadlineText = "deadline exceeded before the call ran";
constexpr std::string_view kRequestSizeErr = "request_size_limit_exceeded";

// One refusal: its Status code, its text, and Momento's `err` where the code alone does not
// give it (ToWire gives the size limits' own).
struct Entry {
  Code code;
  std::string text;
  std::string_view err = {};
};

// `d` is the detail, `a` and `b` the numbers, as errors.h says of each entry.
Entry Lookup(GrpcError e, std::string_view d, uint64_t a, uint64_t b) {
  const auto n = [](uint64_t v) { return std::to_string(v); };
  const std::string detail(d);
  constexpr Code kInvalid = Code::kInvalidArgument;
  switch (e) {
    // Framing and headers.
    case GrpcError::kMissingMessage: return {kInvalid, "missing request message"};
    case GrpcError::kTruncatedPrefix: return {kInvalid, "truncated gRPC message prefix"};
    case GrpcError::kCompressed:
      return {Code::kUnimplemented,
              "compressed messages are not supported (grpc-accept-encoding: identity)"};
    case GrpcError::kBadMessageFlag: return {kInvalid, "invalid gRPC message flag"};
    case GrpcError::kMessageOverWireLimit:
      return {Code::kResourceExhausted,
              "request message larger than " + n(kMaxWireMessage) + " bytes"};
    case GrpcError::kShortMessage:
      return {kInvalid, "request message shorter than its length prefix"};
    case GrpcError::kExtraMessage:
      return {kInvalid, "more than one request message on a unary call"};
    case GrpcError::kHeaderTooLong:
      return {kInvalid, "request headers too large: a value over 16 KiB, or over 64 KiB together"};
    case GrpcError::kNotPost: return {Code::kUnimplemented, "gRPC calls use POST"};
    case GrpcError::kNotGrpcContentType:
      return {kInvalid, "content-type must be application/grpc"};
    case GrpcError::kUnknownMethod: return {Code::kUnimplemented, "unknown method " + detail};
    case GrpcError::kDeadlineExceeded:
      return {Code::kDeadlineExceeded, std::string(kDeadlineText)};
    // Request bodies.
    case GrpcError::kRequestOverLimit:
      return {Code::kResourceExhausted,
              "Request size limit exceeded for this account: the message is " + n(a) +
                  " bytes, over the request limit of " + n(b) + " bytes",
              kRequestSizeErr};
    case GrpcError::kConnectionBodiesFull:
      return {Code::kResourceExhausted,
              "Request size limit exceeded: too much request data in flight on this "
              "connection (request limit)",
              kRequestSizeErr};
    case GrpcError::kServerBodiesFull:
      return {Code::kResourceExhausted,
              "the server is receiving too much request data right now; retry", kRequestSizeErr};
    case GrpcError::kUnauthenticatedBodies:
      return {Code::kUnauthenticated,
              "too much request data before any call authenticated on this connection"};
    // Caches and grants.
    case GrpcError::kNeedsSuperUser:
      return {Code::kPermissionDenied, "this token cannot manage caches (it needs super-user)"};
    case GrpcError::kNoCacheName:
      return {kInvalid, "the request names no cache (cache_name is empty)"};
    case GrpcError::kNoCacheHeader:
      return {Code::kNotFound, "missing the cache header: name the cache to use"};
    case GrpcError::kNoSuchCache: return {Code::kNotFound, "cache not found: " + detail};
    case GrpcError::kNotPermitted:
      return {Code::kPermissionDenied,
              "the token does not allow this operation on this cache or key"};
    case GrpcError::kSubscribeNotPermitted:
      return {Code::kPermissionDenied, "the token does not allow subscribing to this topic"};
    // Decoding and values.
    case GrpcError::kBadMessage: return {kInvalid, "cannot decode the request message"};
    case GrpcError::kValueOverCacheLimit:
      return {Code::kTooLarge, detail + ": the value is " + n(a) + " bytes"};
    case GrpcError::kValueOverItemLimit:
      return {Code::kTooLarge, "item size limit exceeded: the value is " + n(a) +
                                   " bytes, the limit " + n(b)};
    case GrpcError::kTtlTooLarge: return {kInvalid, "ttl_milliseconds is too large"};
    // Scalar methods.
    case GrpcError::kSetIfNoCondition: return {kInvalid, "SetIf needs a condition"};
    case GrpcError::kSetIfHashNoCondition: return {kInvalid, "SetIfHash needs a condition"};
    case GrpcError::kUpdateTtlNoChoice:
      return {kInvalid, "UpdateTtl needs increase, decrease or overwrite"};
    // Collections.
    case GrpcError::kScoreNaN:
      return {kInvalid, "a sorted set score must be a number, not NaN"};
    case GrpcError::kDictionaryGetNoFields:
      return {kInvalid, "DictionaryGet needs at least one field"};
    case GrpcError::kDictionaryDeleteNoChoice:
      return {kInvalid, "DictionaryDelete needs some (fields) or all"};
    case GrpcError::kSetDifferenceBadSubtrahend:
      return {kInvalid, "SetDifference subtrahend needs set or identity"};
    case GrpcError::kSetDifferenceMinuend:
      return {kInvalid, "SetDifference with a minuend is not supported"};
    case GrpcError::kSetDifferenceNoSubtrahend:
      return {kInvalid, "SetDifference needs a subtrahend"};
    case GrpcError::kListEraseNoChoice: return {kInvalid, "ListErase needs some (ranges) or all"};
    case GrpcError::kListRemoveNoValue:
      return {kInvalid, "ListRemove needs all_elements_with_value"};
    case GrpcError::kBadOrder: return {kInvalid, "order must be ASCENDING or DESCENDING"};
    case GrpcError::kSortedSetFetchNaN:
      return {kInvalid, "SortedSetFetch score bounds must be numbers, not NaN"};
    case GrpcError::kSortedSetFetchNoChoice:
      return {kInvalid, "SortedSetFetch needs by_index or by_score"};
    case GrpcError::kSortedSetRemoveNoChoice:
      return {kInvalid, "SortedSetRemove needs some (values) or all"};
    case GrpcError::kSortedSetLengthByScoreNaN:
      return {kInvalid, "SortedSetLengthByScore bounds must be numbers, not NaN"};
    case GrpcError::kUnionStoreBadAggregate:
      return {kInvalid, "SortedSetUnionStore aggregate must be SUM, MIN or MAX"};
    case GrpcError::kUnionStoreNoSources:
      return {kInvalid, "SortedSetUnionStore needs at least one source"};
    case GrpcError::kUnionStoreWeightNaN:
      return {kInvalid, "a source weight must be a number, not NaN"};
    case GrpcError::kUnionStoreLostUnion:
      return {Code::kInternal, "SortedSetUnionStore lost its union"};
    case GrpcError::kUnionStoreNotStored:
      return {Code::kInternal, "SortedSetUnionStore did not store its union"};
    // Leaderboards.
    case GrpcError::kTooManyElements:
      return {kInvalid, "at most " + n(b) + " elements per request, got " + n(a)};
    case GrpcError::kTooManyIds:
      return {kInvalid, "at most " + n(b) + " ids per request, got " + n(a)};
    case GrpcError::kElementScoreNaN:
      return {kInvalid, "an element's score must be a number, not NaN"};
    case GrpcError::kGetByRankNoRange: return {kInvalid, "GetByRank needs a rank_range"};
    case GrpcError::kRankRangeEmpty:
      return {kInvalid, "rank_range end_exclusive (" + n(a) +
                            ") must be greater than start_inclusive (" + n(b) + ")"};
    case GrpcError::kRankRangeTooWide:
      return {kInvalid, "rank_range may span at most " + n(b) + " elements, got " + n(a)};
    case GrpcError::kLimitElementsTooLarge:
      return {kInvalid, "limit_elements may be at most " + n(b) + ", got " + n(a)};
    case GrpcError::kScoreBoundsNaN:
      return {kInvalid, "score bounds must be numbers, not NaN"};
    // Pub/sub.
    case GrpcError::kTopicsDisabled: return {Code::kUnimplemented, "topics are not served here"};
    case GrpcError::kEmptyTopic: return {kInvalid, "the topic name is empty"};
    case GrpcError::kNoTopicValue:
      return {kInvalid, "the message has no value (text or binary)"};
    case GrpcError::kSubscriberFellBehind:
      return {Code::kResourceExhausted,
              "the subscriber fell behind: over " + detail +
                  " bytes of messages were waiting to be sent; resubscribe to resume from the "
                  "last sequence number received"};
    // Token services.
    case GrpcError::kBadTokenRequest: return {kInvalid, "cannot decode the request"};
    case GrpcError::kTokensDisabled: return {Code::kUnimplemented, "tokens are not enabled"};
    case GrpcError::kNoPermissions: return {kInvalid, "permissions are missing"};
    case GrpcError::kCacheGrantNoRole: return {kInvalid, "a cache permission has no role"};
    case GrpcError::kCacheGrantNoCache: return {kInvalid, "a cache permission names no cache"};
    case GrpcError::kItemSelectorEmpty:
      return {kInvalid, "an item selector names no key or prefix"};
    case GrpcError::kTopicGrantNoRole: return {kInvalid, "a topic permission has no role"};
    case GrpcError::kTopicGrantNoCache: return {kInvalid, "a topic permission names no cache"};
    case GrpcError::kTopicSelectorEmpty:
      return {kInvalid, "a topic selector names no topic or prefix"};
    case GrpcError::kEmptyPermission: return {kInvalid, "an empty permission entry"};
    case GrpcError::kNoSuchTenant:
      return {Code::kUnauthenticated, "the token's tenant does not exist"};
    case GrpcError::kDisposableMints:
      return {Code::kPermissionDenied,
              "a disposable token cannot mint tokens (it is for data calls only)"};
    case GrpcError::kSuperUserMint:
      return {Code::kPermissionDenied, "only the bootstrap admin key may mint super-user keys"};
    case GrpcError::kApiKeyMint: return {Code::kPermissionDenied, "this key may not mint API keys"};
    case GrpcError::kNonPositiveValidity:
      return {kInvalid, "valid_for_seconds must be positive"};
    case GrpcError::kNoExpiry: return {kInvalid, "say when the key expires (or never)"};
    case GrpcError::kTokenIdTooLong: return {kInvalid, "token_id is longer than 64 characters"};
    case GrpcError::kRefreshMismatch:
      return {Code::kUnauthenticated, "the refresh token does not belong to this key"};
    case GrpcError::kMinterExpired:
      return {Code::kUnauthenticated,
              "this key can no longer be refreshed: the key that minted it has expired"};
    case GrpcError::kDisposableNoExpiry: return {kInvalid, "a disposable token needs an expiry"};
    case GrpcError::kDisposableTooLong:
      return {kInvalid, "a disposable token lives at most " + detail + " seconds"};
    case GrpcError::kDisposableSuperUser:
      return {kInvalid, "a disposable token cannot be super-user"};
    case GrpcError::kExceedsCaller:
      return {Code::kPermissionDenied, "the token asked for more than the calling key holds"};
    case GrpcError::kInjectedFault:
      return {Code::kUnavailable, "momento-local fault injection: " + detail +
                                      " (asked for by this call's metadata)"};
    case GrpcError::kDemoTokensThrottled:
      return {Code::kResourceExhausted,
              "too many demo tokens asked for right now (the server hands out " + n(a) +
                  " a second after a burst of " + n(b) + "); retry shortly"};
    case GrpcError::kBadFaultMetadata:
      return {kInvalid, "momento-local fault injection: not understood: " + detail};
    case GrpcError::kCount: break;
  }
  return {Code::kInternal, "internal error"};
}

WireStatus OnWire(const Entry& entry) {
  WireStatus w = ToWire(Status(entry.code, entry.text));
  if (!entry.err.empty()) w.err = entry.err;
  return w;
}

}  // namespace

Status Error(GrpcError e, std::string_view detail) {
  Entry entry = Lookup(e, detail, 0, 0);
  return Status(entry.code, std::move(entry.text));
}

Status Error(GrpcError e, uint64_t a, uint64_t b) {
  Entry entry = Lookup(e, {}, a, b);
  return Status(entry.code, std::move(entry.text));
}

Status Error(GrpcError e, std::string_view detail, uint64_t a) {
  Entry entry = Lookup(e, detail, a, 0);
  return Status(entry.code, std::move(entry.text));
}

WireStatus WireError(GrpcError e, std::string_view detail) {
  WireStatus w = OnWire(Lookup(e, detail, 0, 0));
  w.server_busy = e == GrpcError::kServerBodiesFull;
  return w;
}

WireStatus WireError(GrpcError e, uint64_t a, uint64_t b) { return OnWire(Lookup(e, {}, a, b)); }

std::optional<GrpcCode> GrpcCodeNamed(std::string_view name) {
  static constexpr std::pair<std::string_view, GrpcCode> kStatusNames[] = {
      {"cancelled", GrpcCode::kCancelled},
      {"unknown", GrpcCode::kUnknown},
      {"invalid-argument", GrpcCode::kInvalidArgument},
      {"deadline-exceeded", GrpcCode::kDeadlineExceeded},
      {"not-found", GrpcCode::kNotFound},
      {"already-exists", GrpcCode::kAlreadyExists},
      {"permission-denied", GrpcCode::kPermissionDenied},
      {"resource-exhausted", GrpcCode::kResourceExhausted},
      {"failed-precondition", GrpcCode::kFailedPrecondition},
      {"aborted", GrpcCode::kAborted},
      {"out-of-range", GrpcCode::kOutOfRange},
      {"unimplemented", GrpcCode::kUnimplemented},
      {"internal", GrpcCode::kInternal},
      {"unavailable", GrpcCode::kUnavailable},
      {"data-loss", GrpcCode::kDataLoss},
      {"unauthenticated", GrpcCode::kUnauthenticated},
  };
  for (const auto& [n, code] : kStatusNames) {
    if (n == name) return code;
  }
  return std::nullopt;
}

WireStatus ToWire(const Status& st) {
  WireStatus w;
  w.message = st.message();
  switch (st.code()) {
    case Code::kOk: w.code = GrpcCode::kOk; break;
    case Code::kNotFound:
      w.code = GrpcCode::kNotFound;
      if (w.message.empty()) w.message = "cache not found";
      break;
    case Code::kAlreadyExists: w.code = GrpcCode::kAlreadyExists; break;
    case Code::kInvalidArgument:
    case Code::kSyntax: w.code = GrpcCode::kInvalidArgument; break;
    case Code::kWrongType:
      w.code = GrpcCode::kFailedPrecondition;
      if (w.message.empty()) w.message = "the item holds a different type";
      break;
    case Code::kNotInteger:
      w.code = GrpcCode::kFailedPrecondition;
      if (w.message.empty()) w.message = "the value is not a base-10 64-bit integer";
      break;
    case Code::kNotFloat:
      w.code = GrpcCode::kFailedPrecondition;
      if (w.message.empty()) w.message = "the value is not a number";
      break;
    case Code::kOverflow:
      w.code = GrpcCode::kFailedPrecondition;
      if (w.message.empty()) w.message = "increment would overflow a 64-bit integer";
      break;
    case Code::kOutOfMemory:
      w.code = GrpcCode::kResourceExhausted;
      if (w.message.empty()) w.message = "the server's memory limit is reached";
      break;
    case Code::kTooLarge:
      w.code = GrpcCode::kResourceExhausted;
      // A collection element's limit names itself (Tenancy::Describe).
      w.err = w.message.starts_with("Element size") ? "element_size_limit_exceeded"
                                                     : "item_size_limit_exceeded";
      if (w.message.empty()) w.message = "item size limit exceeded";
      break;
    case Code::kUnauthenticated:
      w.code = GrpcCode::kUnauthenticated;
      if (w.message.empty()) w.message = "invalid or missing authorization token";
      break;
    case Code::kPermissionDenied: w.code = GrpcCode::kPermissionDenied; break;
    case Code::kFailedPrecondition: w.code = GrpcCode::kFailedPrecondition; break;
    case Code::kResourceExhausted: w.code = GrpcCode::kResourceExhausted; break;
    case Code::kUnavailable: w.code = GrpcCode::kUnavailable; break;
    case Code::kDeadlineExceeded:
      w.code = GrpcCode::kDeadlineExceeded;
      if (w.message.empty()) w.message = kDeadlineText;
      break;
    case Code::kUnimplemented: w.code = GrpcCode::kUnimplemented; break;
    case Code::kInternal: w.code = GrpcCode::kInternal; break;
  }
  return w;
}

WireStatus TopicsWireStatus(const Status& st) {
  WireStatus w = ToWire(st);
  switch (topics::Topics::LimitOf(st)) {
    case topics::Topics::Limit::kMessageSize: w.err = kRequestSizeErr; break;
    case topics::Topics::Limit::kSubscriptions: w.err = "topic_subscriptions_limit_exceeded"; break;
    case topics::Topics::Limit::kPublishRate: w.err = "operations_rate_limit_exceeded"; break;
    case topics::Topics::Limit::kNone: break;
  }
  return w;
}

}  // namespace cellar::grpc
