#include "frontend/grpc/services.h"

#include "control/cache_registry.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>

#include "cacheclient.pb.h"
#include "cacheping.pb.h"
#include "common/hash.h"
#include "controlclient.pb.h"
#include "frontend/grpc/metrics.h"
#include "frontend/grpc/service_util.h"

namespace cellar::grpc {

namespace cc = ::cache_client;
namespace ctl = ::control_client;
using gateway::Call;

void Stream::Reset() {
  constexpr size_t kKeep = 16 * 1024;  // buffers above this are freed, not kept
  auto clear = [](std::string& str) {
    if (str.capacity() > kKeep) {
      std::string().swap(str);
    } else {
      str.clear();
    }
  };
  id = 0;
  clear(path);
  cache.clear();
  clear(authorization);
  post = grpc_content_type = compressed_encoding = oversized_header = false;
  header_bytes = 0;
  deadline_ms = 0;
  clear(body);
  ignore_body = closed = answered = false;
  method = nullptr;
  tenant = 1;
  publisher_id.clear();
  perms = nullptr;
  cache_id = 0;
  cache_state.reset();
  // ParseFromArray clears it before reuse; a large one (a big value) is not kept.
  if (request != nullptr && request->ByteSizeLong() > kKeep) request.reset();
  first_call = num_calls = 0;
  faults.reset();
  fault_stream_error.reset();
  fault_messages_left = 0;
  scratch.Reset();
  owned.clear();
  if (owned.capacity() > 1024) std::vector<std::string>().swap(owned);
  phase = 0;
  web = WebKind::kNone;
  web_h2 = false;
  authority.clear();
  web_headers.clear();
  web_cors.clear();
  web_timer.reset();
  clear(out);
  out_off = 0;
  status = WireStatus();
  sub_id = 0;
  streaming = deferred = ending = false;
  queue.release();
  queue_bytes = head_off = 0;
  replaying = false;
  replay_credit = 0;
}

void AppendMessage(std::string& out, const google::protobuf::MessageLite& m) {
  const size_t len = m.ByteSizeLong();
  AppendPrefix(out, len);
  const size_t at = out.size();
  out.resize(at + len);
  m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out.data() + at));
}

namespace {

using detail::Add;
using detail::BadMessage;
using detail::CheckItem;
using detail::CheckElement;
using detail::Data;
using detail::ExpireAt;
using detail::Failed;
using detail::kCtl;
using detail::kCW;
using detail::kR;
using detail::kW;
using detail::Parse;

// Items without a TTL (written through RESP) report this remaining TTL: the largest integer a
// JavaScript number holds exactly, about 285,000 years.
constexpr uint64_t kNoTtlRemaining = (uint64_t{1} << 53) - 1;

Status AddSet(const ServiceContext& ctx, std::vector<Call>& calls, const Stream& s,
              const cc::_SetRequest& r, int64_t now_ms) {
  const uint32_t cache_id = s.cache_id;
  if (Status st = CheckItem(ctx, s, r.cache_body()); !st.ok()) return st;
  auto at = ExpireAt(r.ttl_milliseconds(), now_ms);
  if (!at.ok()) return at.status();
  Call& c = Add(calls, api::Op::kSet, cache_id, r.cache_key());
  c.req.value = r.cache_body();
  c.req.expire_at = *at;
  c.req.flags = api::kSetTtl;
  return Status::Ok();
}

// ---- cache_client.Scs ---------------------------------------------------------------------

Status PrepareGet(const ServiceContext&, Stream& s, std::string_view m, std::vector<Call>& calls,
                  int64_t) {
  auto* r = Parse<cc::_GetRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Add(calls, api::Op::kGet, s.cache_id, r->cache_key());
  return Status::Ok();
}

void EncodeGet(std::string& out, const Call& c) {
  cc::_GetResponse resp;
  if (c.reply.found) {
    resp.set_result(cc::Hit);
    resp.set_cache_body(c.reply.value);
  } else {
    resp.set_result(cc::Miss);
  }
  AppendMessage(out, resp);
}

void FinishGet(const ServiceContext&, Stream& s, const Call* calls) {
  if (!Failed(s, calls)) EncodeGet(s.out, calls[0]);
}

Status PrepareGetWithHash(const ServiceContext&, Stream& s, std::string_view m,
                          std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_GetWithHashRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Add(calls, api::Op::kGet, s.cache_id, r->cache_key());
  return Status::Ok();
}

void FinishGetWithHash(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_GetWithHashResponse resp;
  if (calls[0].reply.found) {
    auto* f = resp.mutable_found();
    f->set_value(calls[0].reply.value);
    f->set_hash(ValueHash(calls[0].reply.value));
  } else {
    resp.mutable_missing();
  }
  AppendMessage(s.out, resp);
}

Status PrepareGetBatch(const ServiceContext&, Stream& s, std::string_view m,
                       std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_GetBatchRequest>(s, m);
  if (r == nullptr) return BadMessage();
  for (const auto& item : r->items()) Add(calls, api::Op::kGet, s.cache_id, item.cache_key());
  return Status::Ok();
}

void FinishGetBatch(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  for (uint32_t i = 0; i < s.num_calls; ++i) EncodeGet(s.out, calls[i]);
}

Status PrepareSet(const ServiceContext& ctx, Stream& s, std::string_view m,
                  std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_SetRequest>(s, m);
  if (r == nullptr) return BadMessage();
  return AddSet(ctx, calls, s, *r, now_ms);
}

void EncodeSetOk(std::string& out) {
  cc::_SetResponse resp;
  resp.set_result(cc::Ok);
  AppendMessage(out, resp);
}

void FinishSet(const ServiceContext&, Stream& s, const Call* calls) {
  if (!Failed(s, calls)) EncodeSetOk(s.out);
}

Status PrepareSetBatch(const ServiceContext& ctx, Stream& s, std::string_view m,
                       std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_SetBatchRequest>(s, m);
  if (r == nullptr) return BadMessage();
  // Validate every item first: a refused batch writes nothing.
  for (const auto& item : r->items()) {
    if (Status st = CheckItem(ctx, s, item.cache_body()); !st.ok()) return st;
  }
  for (const auto& item : r->items()) {
    if (Status st = AddSet(ctx, calls, s, item, now_ms); !st.ok()) return st;
  }
  return Status::Ok();
}

void FinishSetBatch(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  for (uint32_t i = 0; i < s.num_calls; ++i) EncodeSetOk(s.out);
}

Status AddSetIf(const ServiceContext& ctx, std::vector<Call>& calls, const Stream& s,
                std::string_view key, std::string_view value, uint64_t ttl_ms, int64_t now_ms,
                api::SetIfCondition cond, std::string_view check) {
  const uint32_t cache_id = s.cache_id;
  if (Status st = CheckItem(ctx, s, value); !st.ok()) return st;
  auto at = ExpireAt(ttl_ms, now_ms);
  if (!at.ok()) return at.status();
  Call& c = Add(calls, api::Op::kSetIf, cache_id, key);
  c.req.value = value;
  c.req.expire_at = *at;
  c.req.Set(api::Condition{cond});
  c.req.check = check;
  return Status::Ok();
}

Status PrepareSetIf(const ServiceContext& ctx, Stream& s, std::string_view m,
                    std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_SetIfRequest>(s, m);
  if (r == nullptr) return BadMessage();
  using C = api::SetIfCondition;
  C cond;
  std::string_view check;
  switch (r->condition_case()) {
    case cc::_SetIfRequest::kPresent: cond = C::kPresent; break;
    case cc::_SetIfRequest::kAbsent: cond = C::kAbsent; break;
    case cc::_SetIfRequest::kPresentAndNotEqual:
      cond = C::kPresentAndNotEqual;
      check = r->present_and_not_equal().value_to_check();
      break;
    case cc::_SetIfRequest::kEqual:
      cond = C::kEqual;
      check = r->equal().value_to_check();
      break;
    case cc::_SetIfRequest::kAbsentOrEqual:
      cond = C::kAbsentOrEqual;
      check = r->absent_or_equal().value_to_check();
      break;
    case cc::_SetIfRequest::kNotEqual:
      cond = C::kNotEqual;
      check = r->not_equal().value_to_check();
      break;
    default:
      return Error(GrpcError::kSetIfNoCondition);
  }
  return AddSetIf(ctx, calls, s, r->cache_key(), r->cache_body(), r->ttl_milliseconds(),
                  now_ms, cond, check);
}

template <typename Resp>
void FinishStoredOrNot(Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  Resp resp;
  if (calls[0].reply.found) {
    resp.mutable_stored();
  } else {
    resp.mutable_not_stored();
  }
  AppendMessage(s.out, resp);
}

void FinishSetIf(const ServiceContext&, Stream& s, const Call* calls) {
  FinishStoredOrNot<cc::_SetIfResponse>(s, calls);
}

Status PrepareSetIfHash(const ServiceContext& ctx, Stream& s, std::string_view m,
                        std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_SetIfHashRequest>(s, m);
  if (r == nullptr) return BadMessage();
  using C = api::SetIfCondition;
  C cond;
  std::string_view check;
  switch (r->condition_case()) {
    case cc::_SetIfHashRequest::kPresentAndNotHashEqual:
      cond = C::kPresentAndNotHashEqual;
      check = r->present_and_not_hash_equal().hash_to_check();
      break;
    case cc::_SetIfHashRequest::kPresentAndHashEqual:
      cond = C::kPresentAndHashEqual;
      check = r->present_and_hash_equal().hash_to_check();
      break;
    case cc::_SetIfHashRequest::kAbsentOrHashEqual:
      cond = C::kAbsentOrHashEqual;
      check = r->absent_or_hash_equal().hash_to_check();
      break;
    case cc::_SetIfHashRequest::kAbsentOrNotHashEqual:
      cond = C::kAbsentOrNotHashEqual;
      check = r->absent_or_not_hash_equal().hash_to_check();
      break;
    case cc::_SetIfHashRequest::kUnconditional: cond = C::kUnconditional; break;
    default:
      return Error(GrpcError::kSetIfHashNoCondition);
  }
  return AddSetIf(ctx, calls, s, r->cache_key(), r->cache_body(), r->ttl_milliseconds(),
                  now_ms, cond, check);
}

void FinishSetIfHash(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_SetIfHashResponse resp;
  if (calls[0].reply.found) {
    resp.mutable_stored()->set_new_hash(ValueHash(calls[0].req.value));
  } else {
    resp.mutable_not_stored();
  }
  AppendMessage(s.out, resp);
}

Status PrepareSetIfNotExists(const ServiceContext& ctx, Stream& s, std::string_view m,
                             std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_SetIfNotExistsRequest>(s, m);
  if (r == nullptr) return BadMessage();
  return AddSetIf(ctx, calls, s, r->cache_key(), r->cache_body(), r->ttl_milliseconds(),
                  now_ms, api::SetIfCondition::kAbsent, {});
}

void FinishSetIfNotExists(const ServiceContext&, Stream& s, const Call* calls) {
  FinishStoredOrNot<cc::_SetIfNotExistsResponse>(s, calls);
}

Status PrepareDelete(const ServiceContext&, Stream& s, std::string_view m,
                     std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_DeleteRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Add(calls, api::Op::kDelete, s.cache_id, r->cache_key());
  return Status::Ok();
}

void FinishDelete(const ServiceContext&, Stream& s, const Call* calls) {
  if (!Failed(s, calls)) AppendMessage(s.out, cc::_DeleteResponse());
}

Status PrepareKeysExist(const ServiceContext&, Stream& s, std::string_view m,
                        std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_KeysExistRequest>(s, m);
  if (r == nullptr) return BadMessage();
  for (const auto& k : r->cache_keys()) Add(calls, api::Op::kExists, s.cache_id, k);
  return Status::Ok();
}

void FinishKeysExist(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_KeysExistResponse resp;
  for (uint32_t i = 0; i < s.num_calls; ++i) resp.add_exists(calls[i].reply.integer == 1);
  AppendMessage(s.out, resp);
}

Status PrepareIncrement(const ServiceContext&, Stream& s, std::string_view m,
                        std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_IncrementRequest>(s, m);
  if (r == nullptr) return BadMessage();
  auto at = ExpireAt(r->ttl_milliseconds(), now_ms);
  if (!at.ok()) return at.status();
  Call& c = Add(calls, api::Op::kIncrBy, s.cache_id, r->cache_key());
  c.req.Set(api::Delta{r->amount()});
  if (*at != 0) {
    c.req.flags = api::kSetTtl;
    c.req.expire_at = *at;
  }
  return Status::Ok();
}

void FinishIncrement(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_IncrementResponse resp;
  resp.set_value(calls[0].reply.integer);
  AppendMessage(s.out, resp);
}

Status PrepareUpdateTtl(const ServiceContext&, Stream& s, std::string_view m,
                        std::vector<Call>& calls, int64_t now_ms) {
  auto* r = Parse<cc::_UpdateTtlRequest>(s, m);
  if (r == nullptr) return BadMessage();
  uint64_t ttl = 0;
  uint32_t flags = 0;
  switch (r->update_ttl_case()) {
    case cc::_UpdateTtlRequest::kIncreaseToMilliseconds:
      ttl = r->increase_to_milliseconds();
      flags = api::kGt;
      break;
    case cc::_UpdateTtlRequest::kDecreaseToMilliseconds:
      ttl = r->decrease_to_milliseconds();
      flags = api::kLt;
      break;
    case cc::_UpdateTtlRequest::kOverwriteToMilliseconds:
      ttl = r->overwrite_to_milliseconds();
      break;
    default:
      return Error(GrpcError::kUpdateTtlNoChoice);
  }
  auto at = ExpireAt(ttl, now_ms);
  if (!at.ok()) return at.status();
  Call& c = Add(calls, api::Op::kExpire, s.cache_id, r->cache_key());
  c.req.flags = flags;
  c.req.expire_at = *at == 0 ? now_ms : *at;  // a TTL of 0 expires the item now
  return Status::Ok();
}

void FinishUpdateTtl(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_UpdateTtlResponse resp;
  if (!calls[0].reply.found) {
    resp.mutable_missing();
  } else if (calls[0].reply.integer == 1) {
    resp.mutable_set();
  } else {
    resp.mutable_not_set();
  }
  AppendMessage(s.out, resp);
}

Status PrepareItemGetTtl(const ServiceContext&, Stream& s, std::string_view m,
                         std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_ItemGetTtlRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Add(calls, api::Op::kTtl, s.cache_id, r->cache_key());
  return Status::Ok();
}

void FinishItemGetTtl(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_ItemGetTtlResponse resp;
  const int64_t ms = calls[0].reply.integer;
  if (ms == -2) {
    resp.mutable_missing();
  } else {
    resp.mutable_found()->set_remaining_ttl_millis(ms == -1 ? kNoTtlRemaining
                                                            : static_cast<uint64_t>(ms));
  }
  AppendMessage(s.out, resp);
}

Status PrepareItemGetType(const ServiceContext&, Stream& s, std::string_view m,
                          std::vector<Call>& calls, int64_t) {
  auto* r = Parse<cc::_ItemGetTypeRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Add(calls, api::Op::kType, s.cache_id, r->cache_key());
  return Status::Ok();
}

void FinishItemGetType(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  cc::_ItemGetTypeResponse resp;
  const std::string& type = calls[0].reply.value;  // Op::kType's names
  if (type == "none") {
    resp.mutable_missing();
  } else {
    auto t = type == "hash"   ? cc::_ItemGetTypeResponse::DICTIONARY
             : type == "set"  ? cc::_ItemGetTypeResponse::SET
             : type == "list" ? cc::_ItemGetTypeResponse::LIST
             : type == "zset" ? cc::_ItemGetTypeResponse::SORTED_SET
                              : cc::_ItemGetTypeResponse::SCALAR;
    resp.mutable_found()->set_item_type(t);
  }
  AppendMessage(s.out, resp);
}

// ---- control_client.ScsControl and cache_client.Ping ---------------------------------------

template <typename Req>
const Req* ParseControl(Stream& s, std::string_view m, const Respond& respond) {
  auto* r = Parse<Req>(s, m);
  if (r == nullptr) {
    s.status = ToWire(BadMessage());
    respond();
  }
  return r;
}

// Answers a control call with an empty Resp on success, else with the status.
template <typename Resp>
void Answer(Stream& s, const Status& st, const Respond& respond) {
  if (st.ok()) {
    AppendMessage(s.out, Resp());
  } else {
    s.status = ToWire(st);
  }
  respond();
}

void CreateCache(const ServiceContext& ctx, uint32_t origin, Stream& s, std::string_view m,
                 Respond respond) {
  auto* r = ParseControl<ctl::_CreateCacheRequest>(s, m, respond);
  if (r == nullptr) return;
  ctx.gateway->CreateCache(origin, s.tenant, r->cache_name(), [&s, respond](Status st) {
    Answer<ctl::_CreateCacheResponse>(s, st, respond);
  });
}

void DeleteCache(const ServiceContext& ctx, uint32_t origin, Stream& s, std::string_view m,
                 Respond respond) {
  auto* r = ParseControl<ctl::_DeleteCacheRequest>(s, m, respond);
  if (r == nullptr) return;
  ctx.gateway->DeleteCache(origin, s.tenant, r->cache_name(), [&s, respond](Status st) {
    Answer<ctl::_DeleteCacheResponse>(s, st, respond);
  });
}

void FlushCache(const ServiceContext& ctx, uint32_t origin, Stream& s, std::string_view m,
                Respond respond) {
  auto* r = ParseControl<ctl::_FlushCacheRequest>(s, m, respond);
  if (r == nullptr) return;
  ctx.gateway->FlushCache(origin, s.tenant, r->cache_name(), [&s, respond](StatusOr<uint64_t> flushed) {
    Answer<ctl::_FlushCacheResponse>(s, flushed.status(), respond);
  });
}

void ListCaches(const ServiceContext& ctx, uint32_t, Stream& s, std::string_view m,
                Respond respond) {
  auto* r = ParseControl<ctl::_ListCachesRequest>(s, m, respond);
  if (r == nullptr) return;
  ctl::_ListCachesResponse resp;
  // The limits in force on each cache (server defaults, its tenant's, its own); 0 (unlimited)
  // is reported as the field's largest value, since 0 would read as "nothing allowed".
  auto u32 = [](uint64_t v) {
    return v == 0 || v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v);
  };
  using control::LimitId;
  for (const auto& info : ctx.gateway->registry().List(s.tenant)) {
    const control::Limits l = ctx.gateway->registry().EffectiveLimits(s.tenant, info.id);
    ctl::_Cache* c = resp.add_cache();
    c->set_cache_name(info.name);
    auto* lim = c->mutable_cache_limits();
    lim->set_max_traffic_rate(u32(l[LimitId::kRequestsPerSecond]));
    const uint64_t read = l[LimitId::kReadBytesPerSecond], write = l[LimitId::kWriteBytesPerSecond];
    const uint64_t throughput = read == 0 ? write : write == 0 ? read : std::min(read, write);
    lim->set_max_throughput_kbps(throughput == 0 ? UINT32_MAX : u32(std::max<uint64_t>(1, throughput / 1024)));
    lim->set_max_item_size_kb(u32(l[LimitId::kMaxItemBytes] == 0 ? 0 : std::max<uint64_t>(1, l[LimitId::kMaxItemBytes] / 1024)));
    // Unlimited: the largest integer a JavaScript number holds exactly (the Node SDK reads
    // this field as a number).
    lim->set_max_ttl_seconds(l[LimitId::kMaxTtlSeconds] == 0 ? kNoTtlRemaining
                                                             : l[LimitId::kMaxTtlSeconds]);
    auto* topic = c->mutable_topic_limits();
    topic->set_max_publish_rate(u32(l[LimitId::kPublishPerSecond]));
    topic->set_max_subscription_count(u32(l[LimitId::kMaxSubscriptions]));
    topic->set_max_publish_message_size_kb(
        u32(l[LimitId::kMaxMessageBytes] == 0 ? 0 : std::max<uint64_t>(1, l[LimitId::kMaxMessageBytes] / 1024)));
  }
  AppendMessage(s.out, resp);
  respond();
}

void Ping(const ServiceContext&, uint32_t, Stream& s, std::string_view m, Respond respond) {
  auto* r = ParseControl<cc::_PingRequest>(s, m, respond);
  if (r == nullptr) return;
  AppendMessage(s.out, cc::_PingResponse());
  respond();
}

constexpr Method Control(std::string_view path, auth::Access access,
                         void (*control)(const ServiceContext&, uint32_t, Stream&,
                                         std::string_view, Respond)) {
  return Method{path, MethodKind::kControl, access, nullptr, nullptr, control};
}

constexpr Method Auth(std::string_view path,
                      void (*control)(const ServiceContext&, uint32_t, Stream&, std::string_view,
                                      Respond)) {
  return Method{path, MethodKind::kAuth, auth::Access::kControl, nullptr, nullptr, control};
}

const Method kMethods[] = {
    Data("/cache_client.Scs/Get", kR, PrepareGet, FinishGet),
    Data("/cache_client.Scs/GetWithHash", kR, PrepareGetWithHash, FinishGetWithHash),
    Data("/cache_client.Scs/GetBatch", kR, PrepareGetBatch, FinishGetBatch),
    Data("/cache_client.Scs/Set", kW, PrepareSet, FinishSet),
    Data("/cache_client.Scs/SetBatch", kW, PrepareSetBatch, FinishSetBatch),
    Data("/cache_client.Scs/SetIf", kCW, PrepareSetIf, FinishSetIf),
    Data("/cache_client.Scs/SetIfHash", kCW, PrepareSetIfHash, FinishSetIfHash),
    Data("/cache_client.Scs/SetIfNotExists", kCW, PrepareSetIfNotExists, FinishSetIfNotExists),
    Data("/cache_client.Scs/Delete", kW, PrepareDelete, FinishDelete),
    Data("/cache_client.Scs/KeysExist", kR, PrepareKeysExist, FinishKeysExist),
    Data("/cache_client.Scs/Increment", kCW, PrepareIncrement, FinishIncrement),
    Data("/cache_client.Scs/UpdateTtl", kCW, PrepareUpdateTtl, FinishUpdateTtl),
    Data("/cache_client.Scs/ItemGetTtl", kR, PrepareItemGetTtl, FinishItemGetTtl),
    Data("/cache_client.Scs/ItemGetType", kR, PrepareItemGetType, FinishItemGetType),
    Control("/control_client.ScsControl/CreateCache", kCtl, CreateCache),
    Control("/control_client.ScsControl/DeleteCache", kCtl, DeleteCache),
    Control("/control_client.ScsControl/ListCaches", kCtl, ListCaches),
    Control("/control_client.ScsControl/FlushCache", kCtl, FlushCache),
    Control("/cache_client.Ping/Ping", kR, Ping),
    Auth("/auth.Auth/GenerateApiToken", GenerateApiToken),
    Auth("/auth.Auth/RefreshApiToken", RefreshApiToken),
    Auth("/token.Token/GenerateDisposableToken", GenerateDisposableToken),
};

// Every method, scalar first; a method's position is its metrics id.
const std::vector<Method>& Table() {
  static const std::vector<Method> all = [] {
    std::vector<Method> v(std::begin(kMethods), std::end(kMethods));
    for (auto methods : {DictionaryMethods, SetMethods, ListMethods, SortedSetMethods}) {
      for (const Method& m : methods()) v.push_back(m);
    }
    for (const Method& m : LeaderboardMethods()) v.push_back(m);
    for (const Method& m : PubsubMethods()) v.push_back(m);
    return v;
  }();
  return all;
}

}  // namespace

std::span<const Method> AllMethods() { return Table(); }

const Method* FindMethod(std::string_view path) {
  static const absl::flat_hash_map<std::string_view, const Method*> by_path = [] {
    absl::flat_hash_map<std::string_view, const Method*> m;
    for (const Method& method : Table()) m.emplace(method.path, &method);
    return m;
  }();
  auto it = by_path.find(path);
  return it == by_path.end() ? nullptr : it->second;
}

}  // namespace cellar::grpc
