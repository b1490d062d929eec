// cache_client.Scs set methods (collection_util.h has what the collection files share).
#include <cstring>

#include "frontend/grpc/collection_util.h"

namespace cellar::grpc {
namespace collections {
namespace {

Status PrepareSetSample(const ServiceContext&, Stream& s, std::string_view m,
                        std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_SetSampleRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Call& c = Add(calls, api::Op::kSRandMember, s.cache_id, r->set_name());
  // Positive: distinct members, at most the set's size.
  c.req.Set(api::Count{
      static_cast<int64_t>(std::min<uint64_t>(r->limit(), std::numeric_limits<int64_t>::max()))});
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
          return Error(GrpcError::kSetDifferenceBadSubtrahend);
      }
    }
    case cc::_SetDifferenceRequest::kMinuend:
      return Error(GrpcError::kSetDifferenceMinuend);
    default:
      return Error(GrpcError::kSetDifferenceNoSubtrahend);
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
  c.req.Set(api::Count{r->count()});
  return Status::Ok();
}

const Method kMethods[] = {
    Data(CELLAR_SCS(SetFetch), kR, PrepareNameOnly<cc::_SetFetchRequest, api::Op::kSMembers>,
         FinishElements<cc::_SetFetchResponse>),
    Data(CELLAR_SCS(SetSample), kR, PrepareSetSample, FinishElements<cc::_SetSampleResponse>),
    Data(CELLAR_SCS(SetUnion), kW, PrepareSetUnion, FinishEmpty<cc::_SetUnionResponse>),
    Data(CELLAR_SCS(SetDifference), kW, PrepareSetDifference, FinishSetDifference),
    Data(CELLAR_SCS(SetContains), kR, PrepareSetContains, FinishSetContains),
    Data(CELLAR_SCS(SetLength), kR, PrepareNameOnly<cc::_SetLengthRequest, api::Op::kSCard>,
         FinishLength<cc::_SetLengthResponse>),
    Data(CELLAR_SCS(SetPop), kCW, PrepareSetPop, FinishElements<cc::_SetPopResponse>),
};

}  // namespace
}  // namespace collections

std::span<const Method> SetMethods() { return collections::kMethods; }

}  // namespace cellar::grpc
