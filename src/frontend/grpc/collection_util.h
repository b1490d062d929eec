// What the cache_client.Scs collection methods share (one file per type:
// dictionary_services.cc, set_services.cc, list_services.cc, sorted_set_services.cc): each
// turns one request message into collection calls (api::Op kH*, kS*, kL*, kZ*) on the key
// named by the request's collection name, and encodes the response from their replies. Field
// numbers and oneofs follow PROTOCOL.md Appendix A; every response oneof is always set (§2.6).
//
// Arrays a call borrows (args, scores, numbers) live in the stream's scratch arena; their
// string_views point into the decoded request (stream.request), which outlives the reply.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cacheclient.pb.h"
#include "frontend/grpc/errors.h"
#include "frontend/grpc/service_util.h"
#include "frontend/grpc/services.h"

namespace cellar::grpc::collections {

namespace cc = ::cache_client;
using detail::Add;
using detail::BadMessage;
using detail::CheckElement;
using detail::CheckItem;
using detail::Data;
using detail::ExpireAt;
using detail::Failed;
using detail::kCW;
using detail::kR;
using detail::kW;
using detail::Parse;
using detail::TwoRound;
using gateway::Call;

inline constexpr double kInf = std::numeric_limits<double>::infinity();

// Lengths and counts go out as uint32.
inline uint32_t Len(int64_t n) {
  return static_cast<uint32_t>(std::clamp<int64_t>(n, 0, std::numeric_limits<uint32_t>::max()));
}

// Every collection write carries CollectionTtl: ttl_milliseconds (0: none) and refresh_ttl.
// kSetTtl always: a collection this call creates gets expire_at (0: no TTL); an existing one
// changes its TTL only with refresh_ttl.
inline Status SetCollectionTtl(api::Request& req, uint64_t ttl_ms, bool refresh, int64_t now_ms) {
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

inline std::span<const std::string_view> One(Stream& s, std::string_view v) {
  std::span<std::string_view> out = s.scratch.Alloc<std::string_view>(1);
  out[0] = v;
  return out;
}

// A Python-slice range (kLRange, kLTrim, kZRange by rank); an unset bound is unbounded.
inline void SetSlice(api::Request& req, bool has_start, int64_t start, bool has_end, int64_t end) {
  req.flags |= api::kSlice;
  if (!has_start) req.flags |= api::kSliceOpenStart;
  if (!has_end) req.flags |= api::kSliceOpenEnd;
  req.Set(api::IndexRange{has_start ? start : 0, has_end ? end : 0});
}

inline Status CheckScore(double score) {
  if (std::isnan(score)) return Error(GrpcError::kScoreNaN);
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

#define CELLAR_SCS(name) "/cache_client.Scs/" #name

}  // namespace cellar::grpc::collections
