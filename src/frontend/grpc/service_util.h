// Helpers shared by the data-plane service files (services.cc, the collection files,
// leaderboard_services.cc): decoding into the stream's request object, the common checks, and
// the building blocks of the method tables.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "api/request.h"
#include "common/status.h"
#include "frontend/grpc/errors.h"
#include "frontend/grpc/framing.h"
#include "frontend/grpc/services.h"
#include "gateway/gateway.h"

namespace cellar::grpc::detail {

// Decodes into the stream's request object, reusing the one a recycled stream kept if it is
// of the same type (T's are final generated classes; typeid compares exactly).
template <typename T>
T* Parse(Stream& s, std::string_view message) {
  T* m;
  const google::protobuf::MessageLite* old = s.request.get();
  if (old != nullptr && typeid(*old) == typeid(T)) {
    m = static_cast<T*>(s.request.get());
  } else {
    auto fresh = std::make_unique<T>();
    m = fresh.get();
    s.request = std::move(fresh);
  }
  if (!m->ParseFromArray(message.data(), static_cast<int>(message.size()))) return nullptr;
  return m;
}

inline Status BadMessage() { return Error(GrpcError::kBadMessage); }

// Whether a value (element: a collection element) fits the cache's size limit
// (max_item_bytes, max_element_bytes; the server's item limit before limits are known).
inline Status CheckSize(const ServiceContext& ctx, const Stream& s, std::string_view value,
                        bool element) {
  uint64_t limit = 0;
  const gateway::Refusal r = gateway::CheckValueSize(s.cache_state.get(), value.size(), element,
                                                     ctx.max_item_bytes, &limit);
  if (r == gateway::Refusal::kNone) return Status::Ok();
  if (s.cache_state != nullptr) {
    return Error(GrpcError::kValueOverCacheLimit,
                 gateway::Tenancy::Describe(*s.cache_state, r, /*name_cache=*/false), value.size());
  }
  return Error(GrpcError::kValueOverItemLimit, value.size(), limit);
}
inline Status CheckItem(const ServiceContext& ctx, const Stream& s, std::string_view value) {
  return CheckSize(ctx, s, value, false);
}
inline Status CheckElement(const ServiceContext& ctx, const Stream& s, std::string_view value) {
  return CheckSize(ctx, s, value, true);
}

// ttl_ms 0: no TTL. Otherwise an absolute expiry.
inline StatusOr<int64_t> ExpireAt(uint64_t ttl_ms, int64_t now_ms) {
  if (ttl_ms == 0) return int64_t{0};
  if (ttl_ms > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() - now_ms)) {
    return Error(GrpcError::kTtlTooLarge);
  }
  return now_ms + static_cast<int64_t>(ttl_ms);
}

inline gateway::Call& Add(std::vector<gateway::Call>& calls, api::Op op, uint32_t cache_id,
                          std::string_view key) {
  gateway::Call& c = calls.emplace_back();
  c.req.op = op;
  c.req.cache_id = cache_id;
  c.req.key = key;
  return c;
}

// The first failed call decides the stream's status (e.g. the cache was deleted meanwhile).
inline bool Failed(Stream& s, const gateway::Call* calls) {
  for (uint32_t i = 0; i < s.num_calls; ++i) {
    if (!calls[i].reply.status.ok()) {
      s.status = ToWire(calls[i].reply.status);
      return true;
    }
  }
  return false;
}

using PrepareFn = Status (*)(const ServiceContext&, Stream&, std::string_view,
                             std::vector<gateway::Call>&, int64_t);
using FinishFn = void (*)(const ServiceContext&, Stream&, const gateway::Call*);
using FollowupFn = bool (*)(const ServiceContext&, Stream&, const gateway::Call*);
using Prepare2Fn = Status (*)(const ServiceContext&, Stream&, std::vector<gateway::Call>&, int64_t);

constexpr Method Data(std::string_view path, auth::Access access, PrepareFn prepare,
                      FinishFn finish) {
  return Method{path, MethodKind::kData, access, prepare, finish, nullptr};
}

// A data method answered after a second round (see Method::followup).
constexpr Method TwoRound(std::string_view path, auth::Access access, PrepareFn prepare,
                          FollowupFn followup, Prepare2Fn prepare2, FinishFn finish) {
  return Method{path, MethodKind::kData, access, prepare, finish, nullptr, followup, prepare2};
}

inline constexpr auto kR = auth::Access::kRead;
inline constexpr auto kW = auth::Access::kWrite;
inline constexpr auto kCW = auth::Access::kConditionalWrite;
inline constexpr auto kCtl = auth::Access::kControl;

}  // namespace cellar::grpc::detail
