// cache_client.pubsub.Pubsub: Publish is a data call (routed to the topic's owner loop by the
// gateway, api::Op::kPublish); Subscribe is a server stream the connection keeps open and feeds
// from topics::Topics (connection.cc). Both name their cache in the body (PROTOCOL.md §1.4).
#include "auth/permissions.h"
#include "cachepubsub.pb.h"
#include "frontend/grpc/errors.h"
#include "frontend/grpc/service_util.h"

namespace cellar::grpc {

namespace pb = cache_client::pubsub;
using detail::BadMessage;
using detail::Parse;

namespace {

Status DecodePublish(Stream& s, std::string_view message) {
  auto* r = Parse<pb::_PublishRequest>(s, message);
  if (r == nullptr) return BadMessage();
  s.cache.assign(r->cache_name());
  return Status::Ok();
}

Status PreparePublish(const ServiceContext& ctx, Stream& s, std::string_view,
                      std::vector<gateway::Call>& calls, int64_t) {
  const auto& r = static_cast<const pb::_PublishRequest&>(*s.request);
  if (ctx.topics == nullptr) return Error(GrpcError::kTopicsDisabled);
  if (r.topic().empty()) return Error(GrpcError::kEmptyTopic);
  std::string_view value;
  bool binary = false;
  switch (r.value().kind_case()) {
    case pb::_TopicValue::kText: value = r.value().text(); break;
    case pb::_TopicValue::kBinary:
      value = r.value().binary();
      binary = true;
      break;
    default: return Error(GrpcError::kNoTopicValue);
  }
  // Checked here too (the connection checks every call after prepare): a refused publish
  // must not spend the cache's publish rate.
  if (s.perms != nullptr && !auth::Allows(*s.perms, s.cache, r.topic(), auth::Access::kPublish)) {
    return Error(GrpcError::kNotPermitted);
  }
  if (Status st = ctx.topics->AdmitPublish(s.cache_id, r.topic(), value.size()); !st.ok()) return st;
  gateway::Call& c = detail::Add(calls, api::Op::kPublish, s.cache_id, r.topic());
  c.req.value = value;
  c.req.check = s.publisher_id;
  if (binary) c.req.flags |= api::kPublishBinary;
  return Status::Ok();
}

void FinishPublish(const ServiceContext&, Stream& s, const gateway::Call* calls) {
  if (detail::Failed(s, calls)) return;
  AppendMessage(s.out, pb::_PublishRequest());  // an empty message is common._Empty's bytes
}

Status DecodeSubscribe(Stream& s, std::string_view message) {
  auto* r = Parse<pb::_SubscriptionRequest>(s, message);
  if (r == nullptr) return BadMessage();
  if (r->topic().empty()) return Error(GrpcError::kEmptyTopic);
  s.cache.assign(r->cache_name());
  return Status::Ok();
}

#define CELLAR_PUBSUB(name) "/cache_client.pubsub.Pubsub/" #name

const Method kMethods[] = {
    Method{CELLAR_PUBSUB(Publish), MethodKind::kData, auth::Access::kPublish, PreparePublish,
           FinishPublish, nullptr, nullptr, nullptr, DecodePublish},
    Method{CELLAR_PUBSUB(Subscribe), MethodKind::kSubscribe, auth::Access::kSubscribe, nullptr,
           nullptr, nullptr, nullptr, nullptr, DecodeSubscribe},
};

}  // namespace

std::span<const Method> PubsubMethods() { return kMethods; }

SubscribeArgs SubscribeRequestOf(const Stream& s) {
  const auto& r = static_cast<const pb::_SubscriptionRequest&>(*s.request);
  return SubscribeArgs{r.topic(), r.resume_at_topic_sequence_number(), r.sequence_page()};
}

}  // namespace cellar::grpc
