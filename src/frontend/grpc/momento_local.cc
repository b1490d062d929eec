#include "frontend/grpc/momento_local.h"

#include <charconv>
#include <utility>

namespace cellar::grpc::local {
namespace {

// Method paths and the names momento-local gives them (the SDKs' test middlewares send these).
struct Named {
  std::string_view path, name;
};
constexpr Named kRpcNames[] = {
    {"/cache_client.Scs/Get", "get"},
    {"/cache_client.Scs/GetWithHash", "get-with-hash"},
    {"/cache_client.Scs/Set", "set"},
    {"/cache_client.Scs/SetIfHash", "set-if-hash"},
    {"/cache_client.Scs/Delete", "delete"},
    {"/cache_client.Scs/Increment", "increment"},
    {"/cache_client.Scs/SetIf", "set-if"},
    {"/cache_client.Scs/SetIfNotExists", "set-if"},
    {"/cache_client.Scs/GetBatch", "get-batch"},
    {"/cache_client.Scs/SetBatch", "set-batch"},
    {"/cache_client.Scs/KeysExist", "keys-exist"},
    {"/cache_client.Scs/UpdateTtl", "update-ttl"},
    {"/cache_client.Scs/ItemGetTtl", "item-get-ttl"},
    {"/cache_client.Scs/ItemGetType", "item-get-type"},
    {"/cache_client.Scs/DictionarySet", "dictionary-set"},
    {"/cache_client.Scs/DictionaryGet", "dictionary-get"},
    {"/cache_client.Scs/DictionaryFetch", "dictionary-fetch"},
    {"/cache_client.Scs/DictionaryIncrement", "dictionary-increment"},
    {"/cache_client.Scs/DictionaryDelete", "dictionary-delete"},
    {"/cache_client.Scs/DictionaryLength", "dictionary-length"},
    {"/cache_client.Scs/SetFetch", "set-fetch"},
    {"/cache_client.Scs/SetSample", "set-sample"},
    {"/cache_client.Scs/SetUnion", "set-union"},
    {"/cache_client.Scs/SetDifference", "set-difference"},
    {"/cache_client.Scs/SetContains", "set-contains"},
    {"/cache_client.Scs/SetLength", "set-length"},
    {"/cache_client.Scs/SetPop", "set-pop"},
    {"/cache_client.Scs/ListPushFront", "list-push-front"},
    {"/cache_client.Scs/ListPushBack", "list-push-back"},
    {"/cache_client.Scs/ListPopFront", "list-pop-front"},
    {"/cache_client.Scs/ListPopBack", "list-pop-back"},
    {"/cache_client.Scs/ListErase", "list-remove"},
    {"/cache_client.Scs/ListRemove", "list-remove"},
    {"/cache_client.Scs/ListFetch", "list-fetch"},
    {"/cache_client.Scs/ListLength", "list-length"},
    {"/cache_client.Scs/ListConcatenateFront", "list-concatenate-front"},
    {"/cache_client.Scs/ListConcatenateBack", "list-concatenate-back"},
    {"/cache_client.Scs/ListRetain", "list-retain"},
    {"/cache_client.Scs/SortedSetPut", "sorted-set-put"},
    {"/cache_client.Scs/SortedSetFetch", "sorted-set-fetch"},
    {"/cache_client.Scs/SortedSetGetScore", "sorted-set-get-score"},
    {"/cache_client.Scs/SortedSetRemove", "sorted-set-remove"},
    {"/cache_client.Scs/SortedSetIncrement", "sorted-set-increment"},
    {"/cache_client.Scs/SortedSetGetRank", "sorted-set-get-rank"},
    {"/cache_client.Scs/SortedSetLength", "sorted-set-length"},
    {"/cache_client.Scs/SortedSetLengthByScore", "sorted-set-length-by-score"},
    {"/cache_client.pubsub.Pubsub/Publish", "topic-publish"},
    {"/cache_client.pubsub.Pubsub/Subscribe", "topic-subscribe"},
};


// Whether `name` is one of the space-separated names of `list`.
bool Lists(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    const size_t sp = list.find(' ');
    if (list.substr(0, sp) == name) return true;
    if (sp == std::string_view::npos) break;
    list.remove_prefix(sp + 1);
  }
  return false;
}

// A count or a number of milliseconds: absent is nullopt; not a number is an error.
bool ParseCount(std::string_view text, std::optional<uint64_t>& out) {
  if (text.empty()) return true;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  out = v;
  return true;
}

// Metadata not understood: which header, and what it said.
WireStatus NotUnderstood(std::string_view header, std::string_view value) {
  return ToWire(Error(GrpcError::kBadFaultMetadata,
                       std::string(header) + ": " + (value.empty() ? "(none)" : std::string(value))));
}

}  // namespace

bool FaultHeaders::Take(std::string_view name, std::string_view value) {
  std::string* field = nullptr;
  if (name == "request-id") {
    field = &request_id;
  } else if (name == "return-error") {
    field = &return_error;
  } else if (name == "error-rpcs") {
    field = &error_rpcs;
  } else if (name == "error-count") {
    field = &error_count;
  } else if (name == "delay-rpcs") {
    field = &delay_rpcs;
  } else if (name == "delay-ms") {
    field = &delay_ms;
  } else if (name == "delay-count") {
    field = &delay_count;
  } else if (name == "stream-error-rpcs") {
    field = &stream_error_rpcs;
  } else if (name == "stream-error") {
    field = &stream_error;
  } else if (name == "stream-error-message-limit") {
    field = &stream_error_limit;
  } else {
    return false;
  }
  field->assign(value);
  return true;
}

std::string_view RpcName(std::string_view path) {
  for (const Named& n : kRpcNames) {
    if (n.path == path) return n.name;
  }
  return {};
}

FaultInjector& FaultInjector::Get() {
  static FaultInjector* injector = new FaultInjector();  // never freed: loops use it to exit
  return *injector;
}

Fault FaultInjector::Decide(std::string_view path, const FaultHeaders& h) {
  Fault f;
  const std::string_view rpc = RpcName(path);
  if (rpc.empty()) return f;
  const bool wants_error = Lists(h.error_rpcs, rpc);
  const bool wants_delay = Lists(h.delay_rpcs, rpc);
  const bool wants_stream_error = Lists(h.stream_error_rpcs, rpc);
  if (!wants_error && !wants_delay && !wants_stream_error) return f;

  std::optional<uint64_t> error_count, delay_ms, delay_count, stream_limit;
  std::optional<GrpcCode> error_code, stream_code;
  if (wants_error) {
    error_code = GrpcCodeNamed(h.return_error);
    if (!error_code) return {.error = NotUnderstood("return-error", h.return_error)};
    if (!ParseCount(h.error_count, error_count)) return {.error = NotUnderstood("error-count", h.error_count)};
  }
  if (wants_delay) {
    if (!ParseCount(h.delay_ms, delay_ms)) return {.error = NotUnderstood("delay-ms", h.delay_ms)};
    if (!ParseCount(h.delay_count, delay_count)) return {.error = NotUnderstood("delay-count", h.delay_count)};
  }
  if (wants_stream_error) {
    stream_code = GrpcCodeNamed(h.stream_error);
    if (!stream_code) return {.error = NotUnderstood("stream-error", h.stream_error)};
    if (!ParseCount(h.stream_error_limit, stream_limit)) {
      return {.error = NotUnderstood("stream-error-message-limit", h.stream_error_limit)};
    }
  }

  bool error_now = false, delay_now = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (counts_.size() >= kMaxIds && !counts_.contains(h.request_id)) counts_.clear();
    Counts& c = counts_[h.request_id];
    if (wants_error && (!error_count || c.errors < *error_count)) {
      ++c.errors;
      error_now = true;
    }
    if (wants_delay && delay_ms.value_or(0) > 0 && (!delay_count || c.delays < *delay_count)) {
      ++c.delays;
      delay_now = true;
    }
  }
  if (delay_now) f.delay_ms = static_cast<int64_t>(std::min<uint64_t>(*delay_ms, 3'600'000));
  if (error_now) {
    f.error = WireStatus{*error_code, Error(GrpcError::kInjectedFault, h.return_error).message(), {}};
  }
  if (wants_stream_error) {
    f.stream_error =
        WireStatus{*stream_code, Error(GrpcError::kInjectedFault, h.stream_error).message(), {}};
    f.stream_messages = stream_limit.value_or(0);
  }
  return f;
}

std::atomic<bool>& Blocked() {
  static std::atomic<bool> blocked{false};
  return blocked;
}

}  // namespace cellar::grpc::local
