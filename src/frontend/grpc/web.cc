#include "frontend/grpc/web.h"

#include <algorithm>

#include "auth/base64.h"
#include "cacheclient.pb.h"
#include "cachepubsub.pb.h"
#include "common/json.h"
#include "frontend/grpc/framing.h"
#include "frontend/net/http1.h"

namespace cellar::grpc {

WebErrorText WebErrorOf(WebError e, std::string_view detail) {
  const std::string d(detail);
  switch (e) {
    case WebError::kNotFoundPath:
      return {404, "No such path: " + d +
                       " (served here: /cache/{cache}, /topics/{cache}/{topic}[/ws|/sse], "
                       "and gRPC or grpc-web calls)"};
    case WebError::kMethodNotAllowed: return {405, "Method not allowed here; this path takes " + d};
    case WebError::kBothTokens:
      return {400, "Give the token once: in the Authorization header or as ?token=, only one "
                   "value must be set"};
    case WebError::kBadQuery: return {400, "Malformed percent-escape in the query string"};
    case WebError::kNoKey: return {400, "Missing key: give ?key= (URL-encoded) or ?key_base64="};
    case WebError::kBothKeys: return {400, "Give either key or key_base64, not both"};
    case WebError::kBadKeyBase64: return {400, "key_base64 is not valid base64"};
    case WebError::kNoTtl: return {400, "Missing ttl_seconds: a PUT must say how long the item lives"};
    case WebError::kBadTtl:
      return {400, "ttl_seconds must be a whole number of seconds above 0, got '" + d + "'"};
    case WebError::kBadSequence: return {400, d + " must be a non-negative whole number"};
    case WebError::kBadPath: return {400, "Malformed path: a name is empty or badly escaped"};
    case WebError::kTextNotUtf8:
      return {400, "A text/* body must be UTF-8; send binary values as application/octet-stream"};
    case WebError::kOriginNotAllowed:
      return {403, "Origin " + d + " is not allowed (the server's --cors-origins)"};
    case WebError::kBadGrpcWebBody: return {400, "grpc-web-text request body is not base64"};
    case WebError::kNotWebSocket:
      return {426, "This path takes a WebSocket upgrade (Upgrade: websocket)"};
    case WebError::kBadWebSocketVersion: return {426, "Only WebSocket version 13 is served"};
    case WebError::kBadWebSocketKey: return {400, "Missing or malformed Sec-WebSocket-Key"};
    case WebError::kUpgradeElsewhere:
      return {400, "Upgrade is served only on /topics/{cache}/{topic}/ws"};
    case WebError::kBodyTooLarge:
      return {413, "Request too large: " + d + " bytes (the server's request limit)"};
    case WebError::kServerBusy:
      return {503, "The server is receiving too much request data right now; retry shortly"};
    case WebError::kHeadersTooLarge:
      return {431, "Request headers too large: a value over 16 KiB, or over 64 KiB together"};
    case WebError::kCount: break;
  }
  return {500, "internal error"};
}

int HttpStatusOf(const WireStatus& st) {
  switch (st.code) {
    case GrpcCode::kOk: return 200;
    case GrpcCode::kInvalidArgument:
    case GrpcCode::kOutOfRange:
    case GrpcCode::kFailedPrecondition: return 400;
    case GrpcCode::kUnauthenticated: return 401;
    case GrpcCode::kPermissionDenied: return 403;
    case GrpcCode::kNotFound: return 404;
    case GrpcCode::kAlreadyExists: return 409;
    case GrpcCode::kResourceExhausted:
      return st.err == "item_size_limit_exceeded" || st.err == "request_size_limit_exceeded" ||
                     st.err == "element_size_limit_exceeded"
                 ? 413
                 : 429;
    case GrpcCode::kUnimplemented: return 501;
    case GrpcCode::kUnavailable: return 503;
    case GrpcCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

std::string HttpBodyOf(const WireStatus& st) {
  // Momento's HTTP API says which was not found in these words.
  if (st.code == GrpcCode::kNotFound && st.message.starts_with("cache not found")) {
    return "Cache Not Found";
  }
  return st.message.empty() ? std::string(net::ReasonPhrase(HttpStatusOf(st))) : st.message;
}

bool CorsPolicy::Allows(std::string_view origin) const {
  if (any) return true;
  return std::find(origins.begin(), origins.end(), origin) != origins.end();
}

CorsPolicy CorsPolicy::Parse(std::string_view list) {
  CorsPolicy p;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view o = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!o.empty() && o.front() == ' ') o.remove_prefix(1);
    while (!o.empty() && (o.back() == ' ' || o.back() == '/')) o.remove_suffix(1);
    if (o.empty()) continue;
    if (o == "*") {
      p.any = true;
    } else {
      p.origins.emplace_back(o);
    }
  }
  return p;
}

bool SameOrigin(std::string_view origin, std::string_view host, bool tls) {
  const std::string_view scheme = tls ? "https://" : "http://";
  if (!origin.starts_with(scheme) || host.empty()) return false;
  origin.remove_prefix(scheme.size());
  if (origin == host) return true;
  // The default port may be written or not on either side.
  const std::string_view port = tls ? ":443" : ":80";
  if (host.ends_with(port)) return origin == host.substr(0, host.size() - port.size());
  if (origin.ends_with(port)) return origin.substr(0, origin.size() - port.size()) == host;
  return false;
}

std::string UnwrapToken(std::string_view token) {
  // A JWT has dots; a v1 key is base64 of a JSON object.
  if (token.empty() || token.find('.') != std::string_view::npos || token.front() != 'e') {
    return std::string(token);
  }
  auto json = auth::Base64Decode(token);
  if (!json) return std::string(token);
  auto doc = ParseJson(*json);
  if (!doc || doc->type != Json::Type::kObject) return std::string(token);
  const Json* key = doc->Find("api_key");
  if (key == nullptr || key->type != Json::Type::kString) return std::string(token);
  return key->text;
}

std::string WebRequestToken(const std::string* authorization, const std::string* query_token) {
  if (authorization != nullptr && !authorization->empty()) {
    std::string_view h = *authorization;
    if (h.starts_with("Bearer ")) h.remove_prefix(7);
    return UnwrapToken(h);
  }
  return query_token != nullptr ? UnwrapToken(*query_token) : std::string();
}

namespace {

std::string Framed(const google::protobuf::MessageLite& m) {
  std::string out;
  AppendPrefix(out, m.ByteSizeLong());
  m.AppendToString(&out);
  return out;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

}  // namespace

std::string FramedGet(std::string_view key) {
  cache_client::_GetRequest r;
  r.set_cache_key(std::string(key));
  return Framed(r);
}

std::string FramedSet(std::string_view key, std::string_view value, uint64_t ttl_ms) {
  cache_client::_SetRequest r;
  r.set_cache_key(std::string(key));
  r.set_cache_body(std::string(value));
  r.set_ttl_milliseconds(ttl_ms);
  return Framed(r);
}

std::string FramedDelete(std::string_view key) {
  cache_client::_DeleteRequest r;
  r.set_cache_key(std::string(key));
  return Framed(r);
}

std::string FramedPublish(std::string_view cache, std::string_view topic, std::string_view value,
                          bool binary) {
  cache_client::pubsub::_PublishRequest r;
  r.set_cache_name(std::string(cache));
  r.set_topic(std::string(topic));
  if (binary) {
    r.mutable_value()->set_binary(std::string(value));
  } else {
    r.mutable_value()->set_text(std::string(value));
  }
  return Framed(r);
}

std::string FramedSubscribe(std::string_view cache, std::string_view topic, uint64_t resume_at,
                            uint64_t page) {
  cache_client::pubsub::_SubscriptionRequest r;
  r.set_cache_name(std::string(cache));
  r.set_topic(std::string(topic));
  r.set_resume_at_topic_sequence_number(resume_at);
  r.set_sequence_page(page);
  return Framed(r);
}

std::optional<GetAnswer> ParseGetResponse(std::string_view framed) {
  auto message = UnaryMessage(framed);
  if (!message.ok()) return std::nullopt;
  cache_client::_GetResponse r;
  if (!r.ParseFromArray(message->data(), static_cast<int>(message->size()))) return std::nullopt;
  GetAnswer a;
  a.hit = r.result() == cache_client::Hit;
  if (a.hit) a.value = std::move(*r.mutable_cache_body());
  return a;
}

std::optional<std::string> DecodeBase64Lenient(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0, group = 0;
  bool padding = false;  // inside a group's '=' run
  for (char c : text) {
    if (c == '=') {
      // Padding ends a group of 2 or 3 characters; the next piece starts afresh.
      if (group < 2) return std::nullopt;
      padding = true;
      if (++group == 4) {
        group = 0;
        acc = 0;
        bits = 0;
        padding = false;
      }
      continue;
    }
    if (padding) return std::nullopt;
    const int v = Base64Value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    group = (group + 1) % 4;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
    if (group == 0) {
      acc = 0;
      bits = 0;
    }
  }
  if (padding || group == 1) return std::nullopt;
  return out;
}

void EncodeTopicJson(const topics::TopicMessage& m, std::string& out) {
  out.reserve(out.size() + m.value.size() + 128);
  out.append(R"({"item":{"topic_sequence_number":)");
  out.append(std::to_string(m.seq));
  out.append(R"(,"sequence_page":)");
  out.append(std::to_string(m.page));
  if (!m.binary && net::IsUtf8(m.value)) {
    out.append(R"(,"value":{"text":")");
    out.append(JsonEscape(m.value));
  } else {
    out.append(R"(,"value":{"binary":")");
    AppendBase64(out, m.value);
  }
  out.append("\"}");
  if (!m.publisher_id.empty()) {
    out.append(R"(,"publisher_id":")");
    out.append(JsonEscape(m.publisher_id));
    out.push_back('"');
  }
  out.append("}}");
}

std::string DiscontinuityJson(uint64_t last_seq, uint64_t new_seq, uint64_t new_page) {
  return R"({"discontinuity":{"last_topic_sequence":)" + std::to_string(last_seq) +
         R"(,"new_topic_sequence":)" + std::to_string(new_seq) + R"(,"new_sequence_page":)" +
         std::to_string(new_page) + "}}";
}

std::string ErrorJson(const WireStatus& st) {
  std::string out = R"({"error":{"status":)" + std::to_string(HttpStatusOf(st)) +
                    R"(,"grpc_status":)" + std::to_string(static_cast<int>(st.code));
  if (!st.err.empty()) out += R"(,"code":")" + JsonEscape(st.err) + "\"";
  out += R"(,"message":")" + JsonEscape(HttpBodyOf(st)) + "\"}}";
  return out;
}

std::string GrpcWebTrailers(const WireStatus& st) {
  std::string fields = "grpc-status:" + std::to_string(static_cast<int>(st.code)) + "\r\n";
  if (!st.message.empty()) fields += "grpc-message:" + PercentEncode(st.message) + "\r\n";
  if (!st.err.empty()) fields += "err:" + std::string(st.err) + "\r\n";
  std::string out;
  out.push_back(static_cast<char>(0x80));
  const uint32_t n = static_cast<uint32_t>(fields.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out += fields;
  return out;
}

}  // namespace cellar::grpc
