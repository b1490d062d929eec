// cache_client.Scs list methods (collection_util.h has what the collection files share).
#include <cstring>

#include "frontend/grpc/collection_util.h"

namespace cellar::grpc {
namespace collections {
namespace {

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
    c.req.Set(api::Truncate{r->truncate_back_to_size()});
    if (kMany) c.req.flags |= api::kKeepOrder;
  } else {
    c.req.Set(api::Truncate{r->truncate_front_to_size()});
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
  c.req.Set(api::Count{-1});  // no count: one element
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
      c.req.Set(api::EraseAll{true});
      return Status::Ok();
    }
    default:
      return Error(GrpcError::kListEraseNoChoice);
  }
}

Status PrepareListRemove(const ServiceContext& ctx, Stream& s, std::string_view m,
                         std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_ListRemoveRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (r->remove_case() != cc::_ListRemoveRequest::kAllElementsWithValue) {
    return Error(GrpcError::kListRemoveNoValue);
  }
  if (Status st = CheckElement(ctx, s, r->all_elements_with_value()); !st.ok()) return st;
  Call& c = Add(calls, api::Op::kLRem, s.cache_id, r->list_name());
  c.req.Set(api::Count{0});  // every occurrence
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

const Method kMethods[] = {
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
};

}  // namespace
}  // namespace collections

std::span<const Method> ListMethods() { return collections::kMethods; }

}  // namespace cellar::grpc
