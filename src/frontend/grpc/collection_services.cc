// cache_client.Scs collection methods: dictionaries, sets, lists and sorted sets. Each turns
// one request message into collection calls (api::Op kH*, kS*, kL*, kZ*) on the key named by
// the request's collection name, and encodes the response from their replies. Field numbers
// and oneofs follow PROTOCOL.md Appendix A; every response oneof is always set (§2.6).
//
// Arrays a call borrows (args, scores, numbers) live in the stream's scratch arena; their
// string_views point into the decoded request (stream.request), which outlives the reply.
#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "cacheclient.pb.h"
#include "frontend/grpc/service_util.h"
#include "frontend/grpc/services.h"

namespace cellar::grpc {
namespace {

namespace cc = ::cache_client;
using detail::Add;
using detail::BadMessage;
using detail::CheckItem;
using detail::CheckElement;
using detail::Data;
using detail::ExpireAt;
using detail::Failed;
using detail::kCW;
using detail::kR;
using detail::kW;
using detail::Parse;
using detail::TwoRound;
using gateway::Call;

constexpr double kInf = std::numeric_limits<double>::infinity();

Status Invalid(std::string message) { return Status(Code::kInvalidArgument, std::move(message)); }

// Lengths and counts go out as uint32.
uint32_t Len(int64_t n) {
  return static_cast<uint32_t>(std::clamp<int64_t>(n, 0, std::numeric_limits<uint32_t>::max()));
}

// Every collection write carries CollectionTtl: ttl_milliseconds (0: none) and refresh_ttl.
// kSetTtl always: a collection this call creates gets expire_at (0: no TTL); an existing one
// changes its TTL only with refresh_ttl.
Status SetCollectionTtl(api::Request& req, uint64_t ttl_ms, bool refresh, int64_t now_ms) {
  auto at = ExpireAt(ttl_ms, now_ms);
  if (!at.ok()) return at.status();
  req.expire_at = *at;
  req.flags |= api::kSetTtl;
  if (refresh) req.flags |= api::kRefreshTtl;
  return Status::Ok();
}

// Refuses any single element above the item limit, as CheckValue does for scalar values.
template <typename Range>
Status CheckEach(const ServiceContext& ctx, const Stream& s, const Range& elements) {
  for (const auto& e : elements) {
    if (Status st = CheckElement(ctx, s, e); !st.ok()) return st;
  }
  return Status::Ok();
}

// Views of a repeated bytes field, in the stream's scratch arena.
template <typename Range>
std::span<const std::string_view> Views(Stream& s, const Range& elements) {
  std::span<std::string_view> out = s.scratch.Alloc<std::string_view>(elements.size());
  size_t i = 0;
  for (const auto& e : elements) out[i++] = e;
  return out;
}

std::span<const std::string_view> One(Stream& s, std::string_view v) {
  std::span<std::string_view> out = s.scratch.Alloc<std::string_view>(1);
  out[0] = v;
  return out;
}

// A Python-slice range (kLRange, kLTrim, kZRange by rank); an unset bound is unbounded.
void SetSlice(api::Request& req, bool has_start, int64_t start, bool has_end, int64_t end) {
  req.flags |= api::kSlice;
  if (has_start) {
    req.integer = start;
  } else {
    req.flags |= api::kSliceOpenStart;
  }
  if (has_end) {
    req.integer2 = end;
  } else {
    req.flags |= api::kSliceOpenEnd;
  }
}

Status CheckScore(double score) {
  if (std::isnan(score)) return Invalid("a sorted set score must be a number, not NaN");
  return Status::Ok();
}

template <typename Resp>
void FinishEmpty(const ServiceContext&, Stream& s, const Call* calls) {
  if (!Failed(s, calls)) AppendMessage(s.out, Resp());
}

// found{length = integer} / missing (the *Length methods).
template <typename Resp>
void FinishLength(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  Resp resp;
  if (calls[0].reply.found) {
    resp.mutable_found()->set_length(Len(calls[0].reply.integer));
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

// found{elements = items} / missing (SetFetch, SetSample, SetPop).
template <typename Resp>
void FinishElements(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  Resp resp;
  if (calls[0].reply.found) {
    auto* f = resp.mutable_found();
    for (std::string_view e : calls[0].reply.items) f->add_elements(e.data(), e.size());
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

// found{list_length = length} / missing (ListErase, ListRemove, ListRetain).
template <typename Resp>
void FinishListLeft(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  Resp resp;
  if (calls[0].reply.found) {
    resp.mutable_found()->set_list_length(Len(calls[0].reply.length));
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

// {list_length = integer} (pushes and concatenations).
template <typename Resp>
void FinishListLength(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  Resp resp;
  resp.set_list_length(Len(calls[0].reply.integer));
  AppendMessage(s.out, resp);
}

// A read naming only the collection: one call of `op`.
template <typename Req, api::Op op>
Status PrepareNameOnly(const ServiceContext&, Stream& s, std::string_view m,
                       std::vector<Call>& calls, int64_t) {
  auto* r = Parse<Req>(s, m);
  if (r == nullptr) return BadMessage();
  if constexpr (requires { r->dictionary_name(); }) {
    Add(calls, op, s.cache_id, r->dictionary_name());
  } else if constexpr (requires { r->list_name(); }) {
    Add(calls, op, s.cache_id, r->list_name());
  } else {
    Add(calls, op, s.cache_id, r->set_name());
  }
  return Status::Ok();
}

// ---- Dictionaries -------------------------------------------------------------------------

Status PrepareDictionaryGet(const ServiceContext&, Stream& s, std::string_view m,
                            std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_DictionaryGetRequest>(s, m);
  if (r == nullptr) return BadMessage();
  // An empty found.items is an error to the SDK, so there is no valid answer without fields.
  if (r->fields().empty()) return Invalid("DictionaryGet needs at least one field");
  Call& c = Add(calls, api::Op::kHGet, s.cache_id, r->dictionary_name());
  c.req.args = Views(s, r->fields());
  return Status::Ok();
}

void FinishDictionaryGet(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  const api::Reply& rep = calls[0].reply;
  cc::_DictionaryGetResponse resp;
  if (rep.found) {
    auto* f = resp.mutable_found();
    for (size_t i = 0; i < calls[0].req.args.size(); ++i) {
      auto* part = f->add_items();
      if (i < rep.numbers.size() && rep.numbers[i] == 1 && i < rep.items.size()) {
        part->set_result(cc::Hit);
        part->set_cache_body(rep.items[i].data(), rep.items[i].size());
      } else {
        part->set_result(cc::Miss);
      }
    }
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

Status PrepareDictionaryFetch(const ServiceContext&, Stream& s, std::string_view m,
                              std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_DictionaryFetchRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, api::Op::kHGetAll, s.cache_id, r->dictionary_name());
  c.req.integer = 0;  // field, value pairs
  return Status::Ok();
}

void FinishDictionaryFetch(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  const api::Reply& rep = calls[0].reply;
  cc::_DictionaryFetchResponse resp;
  if (rep.found) {
    auto* f = resp.mutable_found();
    for (size_t i = 0; i + 1 < rep.items.size(); i += 2) {
      auto* pair = f->add_items();
      pair->set_field(rep.items[i].data(), rep.items[i].size());
      pair->set_value(rep.items[i + 1].data(), rep.items[i + 1].size());
    }
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

Status PrepareDictionarySet(const ServiceContext& ctx, Stream& s, std::string_view m,
                            std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_DictionarySetRequest>(s, m);
  if (r == nullptr) return BadMessage();
  for (const auto& item : r->items()) {
    if (Status st = CheckElement(ctx, s, item.field()); !st.ok()) return st;
    if (Status st = CheckElement(ctx, s, item.value()); !st.ok()) return st;
  }
  if (r->items().empty()) return Status::Ok();  // nothing to store: answered without a call
  Call& c = Add(calls, api::Op::kHSet, s.cache_id, r->dictionary_name());
  std::span<std::string_view> args = s.scratch.Alloc<std::string_view>(2 * r->items_size());
  size_t i = 0;
  for (const auto& item : r->items()) {
    args[i++] = item.field();
    args[i++] = item.value();
  }
  c.req.args = args;
  return SetCollectionTtl(c.req, r->ttl_milliseconds(), r->refresh_ttl(), now_ms);
}

Status PrepareDictionaryIncrement(const ServiceContext& ctx, Stream& s, std::string_view m,
                                  std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_DictionaryIncrementRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (Status st = CheckElement(ctx, s, r->field()); !st.ok()) return st;
  Call& c = Add(calls, api::Op::kHIncrBy, s.cache_id, r->dictionary_name());
  c.req.args = One(s, r->field());
  c.req.integer = r->amount();
  return SetCollectionTtl(c.req, r->ttl_milliseconds(), r->refresh_ttl(), now_ms);
}

void FinishDictionaryIncrement(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_DictionaryIncrementResponse resp;
  resp.set_value(calls[0].reply.integer);
  AppendMessage(s.out, resp);
}

Status PrepareDictionaryDelete(const ServiceContext&, Stream& s, std::string_view m,
                               std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_DictionaryDeleteRequest>(s, m);
  if (r == nullptr) return BadMessage();
  switch (r->delete_case()) {
    case cc::_DictionaryDeleteRequest::kSome: {
      if (r->some().fields().empty()) return Status::Ok();
      Call& c = Add(calls, api::Op::kHDel, s.cache_id, r->dictionary_name());
      c.req.args = Views(s, r->some().fields());
      return Status::Ok();
    }
    case cc::_DictionaryDeleteRequest::kAll:
      Add(calls, api::Op::kDelete, s.cache_id, r->dictionary_name());
      return Status::Ok();
    default:
      return Invalid("DictionaryDelete needs some (fields) or all");
  }
}

// ---- Sets ---------------------------------------------------------------------------------

Status PrepareSetSample(const ServiceContext&, Stream& s, std::string_view m,
                        std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_SetSampleRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, api::Op::kSRandMember, s.cache_id, r->set_name());
  // Positive: distinct members, at most the set's size.
  c.req.integer =
      static_cast<int64_t>(std::min<uint64_t>(r->limit(), std::numeric_limits<int64_t>::max()));
  return Status::Ok();
}

Status PrepareSetUnion(const ServiceContext& ctx, Stream& s, std::string_view m,
                       std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_SetUnionRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (Status st = CheckEach(ctx, s, r->elements()); !st.ok()) return st;
  if (r->elements().empty()) return Status::Ok();  // nothing to add
  Call& c = Add(calls, api::Op::kSAdd, s.cache_id, r->set_name());
  c.req.args = Views(s, r->elements());
  return SetCollectionTtl(c.req, r->ttl_milliseconds(), r->refresh_ttl(), now_ms);
}

Status PrepareSetDifference(const ServiceContext&, Stream& s, std::string_view m,
                            std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_SetDifferenceRequest>(s, m);
  if (r == nullptr) return BadMessage();
  switch (r->difference_case()) {
    case cc::_SetDifferenceRequest::kSubtrahend: {
      const auto& sub = r->subtrahend();
      switch (sub.subtrahend_set_case()) {
        case cc::_SetDifferenceRequest::_Subtrahend::kSet: {
          if (sub.set().elements().empty()) {  // removes nothing; still says whether it exists
            Add(calls, api::Op::kSCard, s.cache_id, r->set_name());
            return Status::Ok();
          }
          Call& c = Add(calls, api::Op::kSRem, s.cache_id, r->set_name());
          c.req.args = Views(s, sub.set().elements());
          return Status::Ok();
        }
        case cc::_SetDifferenceRequest::_Subtrahend::kIdentity:
          Add(calls, api::Op::kDelete, s.cache_id, r->set_name());
          return Status::Ok();
        default:
          return Invalid("SetDifference subtrahend needs set or identity");
      }
    }
    case cc::_SetDifferenceRequest::kMinuend:
      return Invalid("SetDifference with a minuend is not supported");
    default:
      return Invalid("SetDifference needs a subtrahend");
  }
}

void FinishSetDifference(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  const Call& c = calls[0];
  // kDelete answers integer 0/1; kSRem and kSCard answer found.
  const bool existed = c.req.op == api::Op::kDelete ? c.reply.integer == 1 : c.reply.found;
  cc::_SetDifferenceResponse resp;
  if (existed) {
    resp.mutable_found();
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

Status PrepareSetContains(const ServiceContext&, Stream& s, std::string_view m,
                          std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_SetContainsRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, api::Op::kSContains, s.cache_id, r->set_name());
  c.req.args = Views(s, r->elements());
  return Status::Ok();
}

void FinishSetContains(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  const api::Reply& rep = calls[0].reply;
  cc::_SetContainsResponse resp;
  if (rep.found) {
    auto* f = resp.mutable_found();
    for (size_t i = 0; i < calls[0].req.args.size(); ++i) {
      f->add_contains(i < rep.numbers.size() && rep.numbers[i] == 1);
    }
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

Status PrepareSetPop(const ServiceContext&, Stream& s, std::string_view m, std::vector<Call>& calls,
                     int64_t) {
  auto* r = Parse<cc::_SetPopRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, api::Op::kSPop, s.cache_id, r->set_name());
  c.req.integer = r->count();
  return Status::Ok();
}

// ---- Lists --------------------------------------------------------------------------------

// ListPushFront/Back and ListConcatenateFront/Back: one value or many, at one end, then an
// optional truncation of the other end.
template <typename Req, bool kFront, bool kMany>
Status PrepareListPush(const ServiceContext& ctx, Stream& s, std::string_view m,
                       std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<Req>(s, m);
  if (r == nullptr) return BadMessage();
  std::span<const std::string_view> values;
  if constexpr (kMany) {
    if (Status st = CheckEach(ctx, s, r->values()); !st.ok()) return st;
    if (r->values().empty()) {  // nothing to add: answer the length as it is
      Add(calls, api::Op::kLLen, s.cache_id, r->list_name());
      return Status::Ok();
    }
    values = Views(s, r->values());
  } else {
    if (Status st = CheckElement(ctx, s, r->value()); !st.ok()) return st;
    values = One(s, r->value());
  }
  Call& c = Add(calls, kFront ? api::Op::kLPush : api::Op::kRPush, s.cache_id, r->list_name());
  c.req.args = values;
  if constexpr (kFront) {
    c.req.integer2 = r->truncate_back_to_size();
    if (kMany) c.req.flags |= api::kKeepOrder;
  } else {
    c.req.integer2 = r->truncate_front_to_size();
  }
  return SetCollectionTtl(c.req, r->ttl_milliseconds(), r->refresh_ttl(), now_ms);
}

// ListPopFront/Back: one element from one end.
template <typename Req, api::Op op>
Status PrepareListPop(const ServiceContext&, Stream& s, std::string_view m,
                      std::vector<Call>& calls, int64_t) {
  auto* r = Parse<Req>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, op, s.cache_id, r->list_name());
  c.req.integer = -1;  // no count: one element
  return Status::Ok();
}

template <typename Resp>
void FinishListPop(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  const api::Reply& rep = calls[0].reply;
  Resp resp;
  if (rep.found && !rep.items.empty()) {
    auto* f = resp.mutable_found();
    if constexpr (std::is_same_v<Resp, cc::_ListPopFrontResponse>) {
      f->set_front(rep.items[0].data(), rep.items[0].size());
    } else {
      f->set_back(rep.items[0].data(), rep.items[0].size());
    }
    f->set_list_length(Len(rep.length));
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

Status PrepareListErase(const ServiceContext&, Stream& s, std::string_view m,
                        std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_ListEraseRequest>(s, m);
  if (r == nullptr) return BadMessage();
  switch (r->erase_case()) {
    case cc::_ListEraseRequest::kSome: {
      Call& c = Add(calls, api::Op::kLErase, s.cache_id, r->list_name());
      const auto& ranges = r->some().ranges();
      std::span<int64_t> numbers = s.scratch.Alloc<int64_t>(2 * ranges.size());
      size_t i = 0;
      for (const auto& range : ranges) {
        numbers[i++] = range.begin_index();
        numbers[i++] = range.count();
      }
      c.req.numbers = numbers;
      return Status::Ok();
    }
    case cc::_ListEraseRequest::kAll: {
      Call& c = Add(calls, api::Op::kLErase, s.cache_id, r->list_name());
      c.req.integer = 1;
      return Status::Ok();
    }
    default:
      return Invalid("ListErase needs some (ranges) or all");
  }
}

Status PrepareListRemove(const ServiceContext& ctx, Stream& s, std::string_view m,
                         std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_ListRemoveRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (r->remove_case() != cc::_ListRemoveRequest::kAllElementsWithValue) {
    return Invalid("ListRemove needs all_elements_with_value");
  }
  if (Status st = CheckElement(ctx, s, r->all_elements_with_value()); !st.ok()) return st;
  Call& c = Add(calls, api::Op::kLRem, s.cache_id, r->list_name());
  c.req.integer = 0;  // every occurrence
  c.req.value = r->all_elements_with_value();
  return Status::Ok();
}

Status PrepareListFetch(const ServiceContext&, Stream& s, std::string_view m,
                        std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_ListFetchRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, api::Op::kLRange, s.cache_id, r->list_name());
  SetSlice(c.req, r->start_index_case() == cc::_ListFetchRequest::kInclusiveStart,
           r->inclusive_start(), r->end_index_case() == cc::_ListFetchRequest::kExclusiveEnd,
           r->exclusive_end());
  return Status::Ok();
}

void FinishListFetch(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_ListFetchResponse resp;
  if (calls[0].reply.found) {
    auto* f = resp.mutable_found();
    for (std::string_view v : calls[0].reply.items) f->add_values(v.data(), v.size());
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

Status PrepareListRetain(const ServiceContext&, Stream& s, std::string_view m,
                         std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_ListRetainRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, api::Op::kLTrim, s.cache_id, r->list_name());
  SetSlice(c.req, r->start_index_case() == cc::_ListRetainRequest::kInclusiveStart,
           r->inclusive_start(), r->end_index_case() == cc::_ListRetainRequest::kExclusiveEnd,
           r->exclusive_end());
  return SetCollectionTtl(c.req, r->ttl_milliseconds(), r->refresh_ttl(), now_ms);
}

// ---- Sorted sets --------------------------------------------------------------------------

StatusOr<bool> Descending(int order) {
  if (order == 0) return false;
  if (order == 1) return true;
  return Invalid("order must be ASCENDING or DESCENDING");
}

Status PrepareSortedSetPut(const ServiceContext& ctx, Stream& s, std::string_view m,
                           std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_SortedSetPutRequest>(s, m);
  if (r == nullptr) return BadMessage();
  for (const auto& e : r->elements()) {
    if (Status st = CheckElement(ctx, s, e.value()); !st.ok()) return st;
    if (Status st = CheckScore(e.score()); !st.ok()) return st;
  }
  if (r->elements().empty()) return Status::Ok();  // nothing to add
  const size_t n = static_cast<size_t>(r->elements_size());
  std::span<std::string_view> members = s.scratch.Alloc<std::string_view>(n);
  std::span<double> scores = s.scratch.Alloc<double>(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& e = r->elements(static_cast<int>(i));
    members[i] = e.value();
    scores[i] = e.score();
  }
  Call& c = Add(calls, api::Op::kZAdd, s.cache_id, r->set_name());
  c.req.args = members;
  c.req.scores = scores;
  return SetCollectionTtl(c.req, r->ttl_milliseconds(), r->refresh_ttl(), now_ms);
}

Status PrepareSortedSetFetch(const ServiceContext&, Stream& s, std::string_view m,
                             std::vector<Call>& calls, int64_t) {
  using R = cc::_SortedSetFetchRequest;
  auto* r = Parse<R>(s, m);
  if (r == nullptr) return BadMessage();
  auto desc = Descending(r->order());
  if (!desc.ok()) return desc.status();
  api::Request req;
  req.op = api::Op::kZRange;
  if (*desc) req.flags |= api::kRev;
  if (r->with_scores()) req.flags |= api::kWithScores;
  switch (r->range_case()) {
    case R::kByIndex: {
      const auto& b = r->by_index();
      SetSlice(req, b.start_case() == R::_ByIndex::kInclusiveStartIndex, b.inclusive_start_index(),
               b.end_case() == R::_ByIndex::kExclusiveEndIndex, b.exclusive_end_index());
      break;
    }
    case R::kByScore: {
      const auto& b = r->by_score();
      req.flags |= api::kByScore;
      req.lo = -kInf;
      req.hi = kInf;
      if (b.min_case() == R::_ByScore::kMinScore) {
        req.lo = b.min_score().score();
        if (b.min_score().exclusive()) req.flags |= api::kLoExclusive;
      }
      if (b.max_case() == R::_ByScore::kMaxScore) {
        req.hi = b.max_score().score();
        if (b.max_score().exclusive()) req.flags |= api::kHiExclusive;
      }
      if (std::isnan(req.lo) || std::isnan(req.hi)) {
        return Invalid("SortedSetFetch score bounds must be numbers, not NaN");
      }
      req.integer3 = b.offset();
      // Negative (the SDK sends -1) or 0 (unset in proto3): every element from offset on.
      req.number = b.count() > 0 ? b.count() : -1;
      break;
    }
    default:
      return Invalid("SortedSetFetch needs by_index or by_score");
  }
  Call& c = Add(calls, api::Op::kZRange, s.cache_id, r->set_name());
  req.cache_id = c.req.cache_id;
  req.key = c.req.key;
  c.req = req;
  return Status::Ok();
}

void FinishSortedSetFetch(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  const api::Reply& rep = calls[0].reply;
  cc::_SortedSetFetchResponse resp;
  if (rep.found) {
    auto* f = resp.mutable_found();
    if (calls[0].req.flags & api::kWithScores) {
      auto* vs = f->mutable_values_with_scores();
      for (size_t i = 0; i < rep.items.size(); ++i) {
        auto* e = vs->add_elements();
        e->set_value(rep.items[i].data(), rep.items[i].size());
        e->set_score(i < rep.scores.size() ? rep.scores[i] : 0);
      }
    } else {
      auto* vs = f->mutable_values();
      for (std::string_view v : rep.items) vs->add_values(v.data(), v.size());
    }
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

Status PrepareSortedSetGetScore(const ServiceContext&, Stream& s, std::string_view m,
                                std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_SortedSetGetScoreRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, api::Op::kZScore, s.cache_id, r->set_name());
  c.req.args = Views(s, r->values());
  return Status::Ok();
}

void FinishSortedSetGetScore(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  const api::Reply& rep = calls[0].reply;
  cc::_SortedSetGetScoreResponse resp;
  if (rep.found) {
    auto* f = resp.mutable_found();
    for (size_t i = 0; i < calls[0].req.args.size(); ++i) {
      auto* part = f->add_elements();
      if (i < rep.numbers.size() && rep.numbers[i] == 1 && i < rep.scores.size()) {
        part->set_result(cc::Hit);
        part->set_score(rep.scores[i]);
      } else {
        part->set_result(cc::Miss);
      }
    }
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

Status PrepareSortedSetRemove(const ServiceContext&, Stream& s, std::string_view m,
                              std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_SortedSetRemoveRequest>(s, m);
  if (r == nullptr) return BadMessage();
  switch (r->remove_elements_case()) {
    case cc::_SortedSetRemoveRequest::kSome: {
      if (r->some().values().empty()) return Status::Ok();
      Call& c = Add(calls, api::Op::kZRem, s.cache_id, r->set_name());
      c.req.args = Views(s, r->some().values());
      return Status::Ok();
    }
    case cc::_SortedSetRemoveRequest::kAll:
      Add(calls, api::Op::kDelete, s.cache_id, r->set_name());
      return Status::Ok();
    default:
      return Invalid("SortedSetRemove needs some (values) or all");
  }
}

Status PrepareSortedSetIncrement(const ServiceContext& ctx, Stream& s, std::string_view m,
                                 std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_SortedSetIncrementRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (Status st = CheckElement(ctx, s, r->value()); !st.ok()) return st;
  if (Status st = CheckScore(r->amount()); !st.ok()) return st;
  Call& c = Add(calls, api::Op::kZIncrBy, s.cache_id, r->set_name());
  c.req.args = One(s, r->value());
  c.req.number = r->amount();
  return SetCollectionTtl(c.req, r->ttl_milliseconds(), r->refresh_ttl(), now_ms);
}

void FinishSortedSetIncrement(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_SortedSetIncrementResponse resp;
  if (!calls[0].reply.scores.empty()) resp.set_score(calls[0].reply.scores[0]);
  AppendMessage(s.out, resp);
}

Status PrepareSortedSetGetRank(const ServiceContext&, Stream& s, std::string_view m,
                               std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_SortedSetGetRankRequest>(s, m);
  if (r == nullptr) return BadMessage();
  auto desc = Descending(r->order());
  if (!desc.ok()) return desc.status();
  Call& c = Add(calls, api::Op::kZRank, s.cache_id, r->set_name());
  c.req.args = One(s, r->value());
  if (*desc) c.req.flags |= api::kRev;
  return Status::Ok();
}

void FinishSortedSetGetRank(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  const api::Reply& rep = calls[0].reply;
  cc::_SortedSetGetRankResponse resp;
  if (rep.found) {
    auto* part = resp.mutable_element_rank();
    part->set_result(cc::Hit);
    part->set_rank(static_cast<uint64_t>(std::max<int64_t>(rep.integer, 0)));
  } else if (rep.length == 0) {  // no such set
    resp.mutable_missing();
  } else {
    resp.mutable_element_rank()->set_result(cc::Miss);
  }
  AppendMessage(s.out, resp);
}

Status PrepareSortedSetLengthByScore(const ServiceContext&, Stream& s, std::string_view m,
                                     std::vector<Call>& calls, int64_t) {
  using R = cc::_SortedSetLengthByScoreRequest;
  auto* r = Parse<R>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, api::Op::kZCount, s.cache_id, r->set_name());
  c.req.lo = -kInf;
  c.req.hi = kInf;
  switch (r->min_case()) {
    case R::kInclusiveMin:
      c.req.lo = r->inclusive_min();
      break;
    case R::kExclusiveMin:
      c.req.lo = r->exclusive_min();
      c.req.flags |= api::kLoExclusive;
      break;
    default:
      break;  // unbounded
  }
  switch (r->max_case()) {
    case R::kInclusiveMax:
      c.req.hi = r->inclusive_max();
      break;
    case R::kExclusiveMax:
      c.req.hi = r->exclusive_max();
      c.req.flags |= api::kHiExclusive;
      break;
    default:
      break;
  }
  if (std::isnan(c.req.lo) || std::isnan(c.req.hi)) {
    return Invalid("SortedSetLengthByScore bounds must be numbers, not NaN");
  }
  return Status::Ok();
}

// SortedSetUnionStore. Round 1 reads every source (kZRange of all ranks with scores);
// `followup` computes the weighted union into stream.owned: the members, then one last string
// holding their scores as packed doubles; round 2 stores it with one kZStore.
Status PrepareUnionStore(const ServiceContext&, Stream& s, std::string_view m,
                         std::vector<Call>& calls, int64_t now_ms) {
  using R = cc::_SortedSetUnionStoreRequest;
  auto* r = Parse<R>(s, m);
  if (r == nullptr) return BadMessage();
  if (!R::AggregateFunction_IsValid(r->aggregate())) {
    return Invalid("SortedSetUnionStore aggregate must be SUM, MIN or MAX");
  }
  if (auto at = ExpireAt(r->ttl_milliseconds(), now_ms); !at.ok()) return at.status();
  for (const auto& src : r->sources()) {
    if (std::isnan(src.weight())) return Invalid("a source weight must be a number, not NaN");
  }
  for (const auto& src : r->sources()) {
    Call& c = Add(calls, api::Op::kZRange, s.cache_id, src.set_name());
    c.req.integer = 0;
    c.req.integer2 = -1;
    c.req.flags = api::kWithScores;
  }
  return Status::Ok();
}

// Redis's rules: inf * 0 and inf + -inf count as 0, never NaN.
double Weighted(double score, double weight) {
  const double v = score * weight;
  return std::isnan(v) ? 0 : v;
}

double Aggregate(int fn, double acc, double v) {
  switch (fn) {
    case cc::_SortedSetUnionStoreRequest::MIN:
      return std::min(acc, v);
    case cc::_SortedSetUnionStoreRequest::MAX:
      return std::max(acc, v);
    default: {
      const double sum = acc + v;
      return std::isnan(sum) ? 0 : sum;
    }
  }
}

bool FollowupUnionStore(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return false;  // e.g. a source of another type
  const auto& r = static_cast<const cc::_SortedSetUnionStoreRequest&>(*s.request);
  absl::flat_hash_map<std::string_view, size_t> index;  // member -> position in s.owned
  std::vector<double> scores;
  s.owned.clear();
  for (uint32_t i = 0; i < s.num_calls; ++i) {
    const api::Reply& rep = calls[i].reply;
    const double weight = i < static_cast<uint32_t>(r.sources_size())
                              ? static_cast<double>(r.sources(static_cast<int>(i)).weight())
                              : 1.0;
    for (size_t j = 0; j < rep.items.size(); ++j) {
      const double v = Weighted(j < rep.scores.size() ? rep.scores[j] : 0, weight);
      auto [it, added] = index.try_emplace(rep.items[j], scores.size());
      if (added) {
        s.owned.emplace_back(rep.items[j]);
        scores.push_back(v);
      } else {
        scores[it->second] = Aggregate(r.aggregate(), scores[it->second], v);
      }
    }
  }
  std::string packed(scores.size() * sizeof(double), '\0');
  if (!scores.empty()) std::memcpy(packed.data(), scores.data(), packed.size());
  s.owned.push_back(std::move(packed));
  return true;
}

Status Prepare2UnionStore(const ServiceContext&, Stream& s, std::vector<Call>& calls,
                          int64_t now_ms) {
  const auto& r = static_cast<const cc::_SortedSetUnionStoreRequest&>(*s.request);
  if (s.owned.empty()) return Status(Code::kInternal, "SortedSetUnionStore lost its union");
  const size_t n = s.owned.size() - 1;
  const std::string& packed = s.owned.back();
  if (packed.size() != n * sizeof(double)) {
    return Status(Code::kInternal, "SortedSetUnionStore lost its union");
  }
  std::span<std::string_view> members = s.scratch.Alloc<std::string_view>(n);
  std::span<double> scores = s.scratch.Alloc<double>(n);
  for (size_t i = 0; i < n; ++i) members[i] = s.owned[i];
  if (n != 0) std::memcpy(scores.data(), packed.data(), packed.size());
  auto at = ExpireAt(r.ttl_milliseconds(), now_ms);
  if (!at.ok()) return at.status();
  // Replaces the destination (no members: deletes it), so its TTL is always this call's.
  Call& c = Add(calls, api::Op::kZStore, s.cache_id, r.set_name());
  c.req.args = members;
  c.req.scores = scores;
  c.req.flags = api::kSetTtl;
  c.req.expire_at = *at;
  return Status::Ok();
}

void FinishUnionStore(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  if (s.phase != 1) {  // the connection always runs round 2 unless round 1 failed
    s.status = ToWire(Status(Code::kInternal, "SortedSetUnionStore did not store its union"));
    return;
  }
  cc::_SortedSetUnionStoreResponse resp;
  resp.set_length(Len(calls[0].reply.integer));
  AppendMessage(s.out, resp);
}

#define CELLAR_SCS(name) "/cache_client.Scs/" #name

const Method kMethods[] = {
    // Dictionaries.
    Data(CELLAR_SCS(DictionaryGet), kR, PrepareDictionaryGet, FinishDictionaryGet),
    Data(CELLAR_SCS(DictionaryFetch), kR, PrepareDictionaryFetch, FinishDictionaryFetch),
    Data(CELLAR_SCS(DictionarySet), kW, PrepareDictionarySet,
         FinishEmpty<cc::_DictionarySetResponse>),
    Data(CELLAR_SCS(DictionaryIncrement), kCW, PrepareDictionaryIncrement,
         FinishDictionaryIncrement),
    Data(CELLAR_SCS(DictionaryDelete), kW, PrepareDictionaryDelete,
         FinishEmpty<cc::_DictionaryDeleteResponse>),
    Data(CELLAR_SCS(DictionaryLength), kR,
         PrepareNameOnly<cc::_DictionaryLengthRequest, api::Op::kHLen>,
         FinishLength<cc::_DictionaryLengthResponse>),
    // Sets.
    Data(CELLAR_SCS(SetFetch), kR, PrepareNameOnly<cc::_SetFetchRequest, api::Op::kSMembers>,
         FinishElements<cc::_SetFetchResponse>),
    Data(CELLAR_SCS(SetSample), kR, PrepareSetSample, FinishElements<cc::_SetSampleResponse>),
    Data(CELLAR_SCS(SetUnion), kW, PrepareSetUnion, FinishEmpty<cc::_SetUnionResponse>),
    Data(CELLAR_SCS(SetDifference), kW, PrepareSetDifference, FinishSetDifference),
    Data(CELLAR_SCS(SetContains), kR, PrepareSetContains, FinishSetContains),
    Data(CELLAR_SCS(SetLength), kR, PrepareNameOnly<cc::_SetLengthRequest, api::Op::kSCard>,
         FinishLength<cc::_SetLengthResponse>),
    Data(CELLAR_SCS(SetPop), kCW, PrepareSetPop, FinishElements<cc::_SetPopResponse>),
    // Lists.
    Data(CELLAR_SCS(ListPushFront), kW, PrepareListPush<cc::_ListPushFrontRequest, true, false>,
         FinishListLength<cc::_ListPushFrontResponse>),
    Data(CELLAR_SCS(ListPushBack), kW, PrepareListPush<cc::_ListPushBackRequest, false, false>,
         FinishListLength<cc::_ListPushBackResponse>),
    Data(CELLAR_SCS(ListPopFront), kCW, PrepareListPop<cc::_ListPopFrontRequest, api::Op::kLPop>,
         FinishListPop<cc::_ListPopFrontResponse>),
    Data(CELLAR_SCS(ListPopBack), kCW, PrepareListPop<cc::_ListPopBackRequest, api::Op::kRPop>,
         FinishListPop<cc::_ListPopBackResponse>),
    Data(CELLAR_SCS(ListErase), kW, PrepareListErase, FinishListLeft<cc::_ListEraseResponse>),
    Data(CELLAR_SCS(ListRemove), kW, PrepareListRemove, FinishListLeft<cc::_ListRemoveResponse>),
    Data(CELLAR_SCS(ListFetch), kR, PrepareListFetch, FinishListFetch),
    Data(CELLAR_SCS(ListLength), kR, PrepareNameOnly<cc::_ListLengthRequest, api::Op::kLLen>,
         FinishLength<cc::_ListLengthResponse>),
    Data(CELLAR_SCS(ListConcatenateFront), kW,
         PrepareListPush<cc::_ListConcatenateFrontRequest, true, true>,
         FinishListLength<cc::_ListConcatenateFrontResponse>),
    Data(CELLAR_SCS(ListConcatenateBack), kW,
         PrepareListPush<cc::_ListConcatenateBackRequest, false, true>,
         FinishListLength<cc::_ListConcatenateBackResponse>),
    Data(CELLAR_SCS(ListRetain), kW, PrepareListRetain, FinishListLeft<cc::_ListRetainResponse>),
    // Sorted sets.
    Data(CELLAR_SCS(SortedSetPut), kW, PrepareSortedSetPut, FinishEmpty<cc::_SortedSetPutResponse>),
    Data(CELLAR_SCS(SortedSetFetch), kR, PrepareSortedSetFetch, FinishSortedSetFetch),
    Data(CELLAR_SCS(SortedSetGetScore), kR, PrepareSortedSetGetScore, FinishSortedSetGetScore),
    Data(CELLAR_SCS(SortedSetRemove), kW, PrepareSortedSetRemove,
         FinishEmpty<cc::_SortedSetRemoveResponse>),
    Data(CELLAR_SCS(SortedSetIncrement), kCW, PrepareSortedSetIncrement, FinishSortedSetIncrement),
    Data(CELLAR_SCS(SortedSetGetRank), kR, PrepareSortedSetGetRank, FinishSortedSetGetRank),
    Data(CELLAR_SCS(SortedSetLength), kR,
         PrepareNameOnly<cc::_SortedSetLengthRequest, api::Op::kZCard>,
         FinishLength<cc::_SortedSetLengthResponse>),
    Data(CELLAR_SCS(SortedSetLengthByScore), kR, PrepareSortedSetLengthByScore,
         FinishLength<cc::_SortedSetLengthByScoreResponse>),
    // Reads its sources and writes the destination: needs read and write on the keys.
    TwoRound(CELLAR_SCS(SortedSetUnionStore), kCW, PrepareUnionStore, FollowupUnionStore,
             Prepare2UnionStore, FinishUnionStore),
};

#undef CELLAR_SCS

}  // namespace

std::span<const Method> CollectionMethods() { return kMethods; }

}  // namespace cellar::grpc
