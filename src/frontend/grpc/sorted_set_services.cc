// cache_client.Scs sorted set methods (collection_util.h has what the collection files share).
#include <cstring>

#include <absl/container/flat_hash_map.h>

#include "frontend/grpc/collection_util.h"

namespace cellar::grpc {
namespace collections {
namespace {

StatusOr<bool> Descending(int order) {
  if (order == 0) return false;
  if (order == 1) return true;
  return Error(GrpcError::kBadOrder);
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
      api::ScoreRange range{.lo = -kInf, .hi = kInf};
      if (b.min_case() == R::_ByScore::kMinScore) {
        range.lo = b.min_score().score();
        if (b.min_score().exclusive()) req.flags |= api::kLoExclusive;
      }
      if (b.max_case() == R::_ByScore::kMaxScore) {
        range.hi = b.max_score().score();
        if (b.max_score().exclusive()) req.flags |= api::kHiExclusive;
      }
      if (std::isnan(range.lo) || std::isnan(range.hi)) {
        return Error(GrpcError::kSortedSetFetchNaN);
      }
      range.offset = b.offset();
      // Negative (the SDK sends -1) or 0 (unset in proto3): every element from offset on.
      range.count = b.count() > 0 ? b.count() : -1;
      req.Set(range);
      break;
    }
    default:
      return Error(GrpcError::kSortedSetFetchNoChoice);
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
      return Error(GrpcError::kSortedSetRemoveNoChoice);
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
  c.req.Set(api::FloatDelta{r->amount()});
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
  api::ScoreRange& range = c.req.Set(api::ScoreRange{.lo = -kInf, .hi = kInf});
  switch (r->min_case()) {
    case R::kInclusiveMin:
      range.lo = r->inclusive_min();
      break;
    case R::kExclusiveMin:
      range.lo = r->exclusive_min();
      c.req.flags |= api::kLoExclusive;
      break;
    default:
      break;  // unbounded
  }
  switch (r->max_case()) {
    case R::kInclusiveMax:
      range.hi = r->inclusive_max();
      break;
    case R::kExclusiveMax:
      range.hi = r->exclusive_max();
      c.req.flags |= api::kHiExclusive;
      break;
    default:
      break;
  }
  if (std::isnan(range.lo) || std::isnan(range.hi)) {
    return Error(GrpcError::kSortedSetLengthByScoreNaN);
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
    return Error(GrpcError::kUnionStoreBadAggregate);
  }
  if (r->sources().empty()) return Error(GrpcError::kUnionStoreNoSources);
  if (auto at = ExpireAt(r->ttl_milliseconds(), now_ms); !at.ok()) return at.status();
  for (const auto& src : r->sources()) {
    if (std::isnan(src.weight())) return Error(GrpcError::kUnionStoreWeightNaN);
  }
  for (const auto& src : r->sources()) {
    Call& c = Add(calls, api::Op::kZRange, s.cache_id, src.set_name());
    c.req.Set(api::IndexRange{0, -1});
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
  if (s.owned.empty()) return Error(GrpcError::kUnionStoreLostUnion);
  const size_t n = s.owned.size() - 1;
  const std::string& packed = s.owned.back();
  if (packed.size() != n * sizeof(double)) {
    return Error(GrpcError::kUnionStoreLostUnion);
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
    s.status = WireError(GrpcError::kUnionStoreNotStored);
    return;
  }
  cc::_SortedSetUnionStoreResponse resp;
  resp.set_length(Len(calls[0].reply.integer));
  AppendMessage(s.out, resp);
}

const Method kMethods[] = {
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

}  // namespace
}  // namespace collections

std::span<const Method> SortedSetMethods() { return collections::kMethods; }

}  // namespace cellar::grpc
