// cache_client.Scs dictionary methods (collection_util.h has what the collection files share).
#include <cstring>

#include "frontend/grpc/collection_util.h"

namespace cellar::grpc {
namespace collections {
namespace {

Status PrepareDictionaryGet(const ServiceContext&, Stream& s, std::string_view m,
                            std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_DictionaryGetRequest>(s, m);
  if (r == nullptr) return BadMessage();
  // An empty found.items is an error to the SDK, so there is no valid answer without fields.
  if (r->fields().empty()) return Error(GrpcError::kDictionaryGetNoFields);
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
  c.req.Set(api::FieldsForm{api::FieldsForm::kPairs});
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
  c.req.Set(api::Delta{r->amount()});
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
      return Error(GrpcError::kDictionaryDeleteNoChoice);
  }
}

const Method kMethods[] = {
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
};

}  // namespace
}  // namespace collections

std::span<const Method> DictionaryMethods() { return collections::kMethods; }

}  // namespace cellar::grpc
