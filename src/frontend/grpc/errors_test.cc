#include "frontend/grpc/errors.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace cellar::grpc {
namespace {

using E = GrpcError;

// The gRPC code of every refusal, as clients see it (the SDKs map these to their error
// types): a change here changes the wire.
struct CodeGroup {
  GrpcCode code;
  std::vector<GrpcError> errors;
};
const std::vector<CodeGroup>& ExpectedCodes() {
  static const std::vector<CodeGroup> groups = {
      {GrpcCode::kInvalidArgument,
       {E::kMissingMessage, E::kTruncatedPrefix, E::kBadMessageFlag, E::kShortMessage,
        E::kExtraMessage, E::kHeaderTooLong, E::kNotGrpcContentType, E::kNoCacheName,
        E::kBadMessage, E::kTtlTooLarge, E::kSetIfNoCondition, E::kSetIfHashNoCondition,
        E::kUpdateTtlNoChoice, E::kScoreNaN, E::kDictionaryGetNoFields,
        E::kDictionaryDeleteNoChoice, E::kSetDifferenceBadSubtrahend, E::kSetDifferenceMinuend,
        E::kSetDifferenceNoSubtrahend, E::kListEraseNoChoice, E::kListRemoveNoValue,
        E::kBadOrder, E::kSortedSetFetchNaN, E::kSortedSetFetchNoChoice,
        E::kSortedSetRemoveNoChoice, E::kSortedSetLengthByScoreNaN, E::kUnionStoreBadAggregate, E::kUnionStoreNoSources,
        E::kUnionStoreWeightNaN, E::kTooManyElements, E::kTooManyIds, E::kElementScoreNaN,
        E::kGetByRankNoRange, E::kRankRangeEmpty, E::kRankRangeTooWide,
        E::kLimitElementsTooLarge, E::kScoreBoundsNaN, E::kEmptyTopic, E::kNoTopicValue,
        E::kBadTokenRequest, E::kNoPermissions, E::kCacheGrantNoRole, E::kCacheGrantNoCache,
        E::kItemSelectorEmpty, E::kTopicGrantNoRole, E::kTopicGrantNoCache,
        E::kTopicSelectorEmpty, E::kEmptyPermission, E::kNonPositiveValidity, E::kNoExpiry,
        E::kTokenIdTooLong, E::kDisposableNoExpiry, E::kDisposableTooLong,
        E::kDisposableSuperUser, E::kBadFaultMetadata}},
      {GrpcCode::kUnavailable, {E::kInjectedFault}},
      {GrpcCode::kUnimplemented,
       {E::kCompressed, E::kNotPost, E::kUnknownMethod, E::kTopicsDisabled, E::kTokensDisabled}},
      {GrpcCode::kResourceExhausted,
       {E::kMessageOverWireLimit, E::kRequestOverLimit, E::kConnectionBodiesFull,
        E::kServerBodiesFull, E::kValueOverCacheLimit, E::kValueOverItemLimit,
        E::kSubscriberFellBehind, E::kDemoTokensThrottled}},
      {GrpcCode::kDeadlineExceeded, {E::kDeadlineExceeded}},
      {GrpcCode::kUnauthenticated,
       {E::kUnauthenticatedBodies, E::kNoSuchTenant, E::kRefreshMismatch, E::kMinterExpired}},
      {GrpcCode::kPermissionDenied,
       {E::kNeedsSuperUser, E::kNotPermitted, E::kSubscribeNotPermitted, E::kDisposableMints,
        E::kSuperUserMint, E::kApiKeyMint, E::kExceedsCaller}},
      {GrpcCode::kNotFound, {E::kNoCacheHeader, E::kNoSuchCache}},
      {GrpcCode::kInternal, {E::kUnionStoreLostUnion, E::kUnionStoreNotStored}},
  };
  return groups;
}

TEST(GrpcErrors, EveryEntryHasATextAndItsCode) {
  std::set<GrpcError> seen;
  for (const CodeGroup& g : ExpectedCodes()) {
    for (GrpcError e : g.errors) {
      SCOPED_TRACE(static_cast<int>(e));
      EXPECT_TRUE(seen.insert(e).second) << "listed twice";
      const Status st = Error(e);
      EXPECT_FALSE(st.ok());
      EXPECT_FALSE(st.message().empty());
      const WireStatus w = WireError(e);
      EXPECT_EQ(w.code, g.code);
      EXPECT_EQ(w.message, st.message());
      EXPECT_EQ(ToWire(st).code, g.code);
    }
  }
  // Every entry is listed above: a new one must say which code it goes out with.
  EXPECT_EQ(seen.size(), static_cast<size_t>(GrpcError::kCount));
}

TEST(GrpcErrors, MomentoErrTrailers) {
  // The request-size refusals carry the `err` the SDK turns into its limit error; the value
  // limits get theirs from Code::kTooLarge (ToWire); no other refusal has one.
  const std::set<GrpcError> request_size = {E::kRequestOverLimit, E::kConnectionBodiesFull,
                                            E::kServerBodiesFull};
  const std::set<GrpcError> item_size = {E::kValueOverCacheLimit, E::kValueOverItemLimit};
  for (int i = 0; i < static_cast<int>(GrpcError::kCount); ++i) {
    const auto e = static_cast<GrpcError>(i);
    SCOPED_TRACE(i);
    const std::string_view err = WireError(e).err;
    if (request_size.contains(e)) {
      EXPECT_EQ(err, "request_size_limit_exceeded");
    } else if (item_size.contains(e)) {
      EXPECT_EQ(err, "item_size_limit_exceeded");
    } else {
      EXPECT_TRUE(err.empty()) << err;
    }
  }
}

TEST(GrpcErrors, DetailsAndNumbersGoWhereTheTextSays) {
  EXPECT_EQ(Error(E::kUnknownMethod, "/x.Y/Z").message(), "unknown method /x.Y/Z");
  EXPECT_EQ(Error(E::kNoSuchCache, "c1").message(), "cache not found: c1");
  EXPECT_EQ(Error(E::kValueOverItemLimit, 10, 5).message(),
            "item size limit exceeded: the value is 10 bytes, the limit 5");
  EXPECT_EQ(Error(E::kValueOverCacheLimit, "Item size limit exceeded for this cache", 10)
                .message(),
            "Item size limit exceeded for this cache: the value is 10 bytes");
  EXPECT_EQ(Error(E::kTooManyIds, 9000, 8192).message(), "at most 8192 ids per request, got 9000");
  EXPECT_EQ(Error(E::kRankRangeEmpty, 3, 7).message(),
            "rank_range end_exclusive (3) must be greater than start_inclusive (7)");
  EXPECT_EQ(Error(E::kRankRangeTooWide, 9000, 8192).message(),
            "rank_range may span at most 8192 elements, got 9000");
  EXPECT_EQ(Error(E::kLimitElementsTooLarge, 9000, 8192).message(),
            "limit_elements may be at most 8192, got 9000");
  EXPECT_EQ(Error(E::kDisposableTooLong, "3600").message(),
            "a disposable token lives at most 3600 seconds");
  const WireStatus big = WireError(E::kRequestOverLimit, 2000, 1000);
  EXPECT_EQ(big.message,
            "Request size limit exceeded for this account: the message is 2000 bytes, over the "
            "request limit of 1000 bytes");
  EXPECT_EQ(WireError(E::kSubscriberFellBehind, "4096").message,
            "the subscriber fell behind: over 4096 bytes of messages were waiting to be sent; "
            "resubscribe to resume from the last sequence number received");
  // The deadline refusal and ToWire's text for a bare kDeadlineExceeded are the same words.
  EXPECT_EQ(Error(E::kDeadlineExceeded).message(),
            ToWire(Status(Code::kDeadlineExceeded)).message);
}

}  // namespace
}  // namespace cellar::grpc
