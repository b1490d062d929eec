// The web front-end's wire forms, over the gRPC services (the calls themselves run exactly as
// gRPC's do, through the one pipeline): browsers, phones and edge runtimes reach Cellar over
// HTTP/1.1 on the API port (told from HTTP/2 by the client preface, or by ALPN over TLS).
//
//   grpc-web (text and binary)   POST /<service>/<method>, application/grpc-web[-text][+proto]
//   Momento's HTTP API           GET|PUT|DELETE /cache/{cache}?key=|key_base64=[&ttl_seconds=]
//                                POST /topics/{cache}/{topic} (publish), GET (long poll)
//   WebSocket and SSE            GET /topics/{cache}/{topic}/ws, GET /topics/{cache}/{topic}/sse
//
// The HTTP API, long poll, WebSocket and SSE build the matching gRPC request message (Get, Set,
// Delete, Publish, Subscribe) and read its answer back (its response message or status), so
// permissions, limits and errors are gRPC's, mapped to HTTP status codes here (HttpStatusOf).
// The connection that carries them is connection.cc / web_connection.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/grpc/errors.h"
#include "frontend/net/http1.h"
#include "topics/topics.h"

namespace cellar::grpc {

// What a stream is, as far as its answer's wire form goes.
enum class WebKind : uint8_t {
  kNone,           // gRPC over HTTP/2
  kGrpcWebText,    // grpc-web, base64 (application/grpc-web-text)
  kGrpcWebBinary,  // grpc-web, binary (application/grpc-web, +proto)
  kCacheGet,       // the HTTP API's GET /cache/{cache}
  kCacheSet,       // PUT /cache/{cache}
  kCacheDelete,    // DELETE /cache/{cache}
  kPublish,        // POST /topics/{cache}/{topic}
  kLongPoll,       // GET /topics/{cache}/{topic}
  kSse,            // GET /topics/{cache}/{topic}/sse
  kWebSocket,      // GET /topics/{cache}/{topic}/ws (the subscription; the connection's own)
  kWsPublish,      // a message the WebSocket's client sent (published; errors go to the socket)
};

inline bool IsGrpcWeb(WebKind k) { return k == WebKind::kGrpcWebText || k == WebKind::kGrpcWebBinary; }
// Kinds whose subscription items are JSON (EncodeTopicJson), not gRPC frames.
inline bool UsesJson(WebKind k) {
  return k == WebKind::kLongPoll || k == WebKind::kSse || k == WebKind::kWebSocket;
}

// Every refusal the web front-end itself writes (before a request reaches a gRPC method):
// an HTTP status and a text, in one table (web.cc).
enum class WebError {
  kNotFoundPath,        // detail: the path
  kMethodNotAllowed,    // detail: the methods the path takes
  kBothTokens,          // Authorization header and ?token= both given
  kBadQuery,            // a malformed percent-escape in the query
  kNoKey,               // neither key nor key_base64
  kBothKeys,            // key and key_base64 both given
  kBadKeyBase64,        // key_base64 is not base64 (standard or URL-safe, padded or not)
  kNoTtl,               // PUT without ttl_seconds
  kBadTtl,              // detail: the value sent
  kBadSequence,         // detail: the parameter's name
  kBadPath,             // a malformed percent-escape in the path, or an empty name
  kTextNotUtf8,         // a text publish whose body is not UTF-8
  kOriginNotAllowed,    // detail: the Origin
  kBadGrpcWebBody,      // grpc-web-text body that is not base64
  kNotWebSocket,        // /ws without a WebSocket upgrade
  kBadWebSocketVersion,
  kBadWebSocketKey,
  kUpgradeElsewhere,    // an Upgrade on a path that takes none
  kBodyTooLarge,        // detail: the request's bytes and the limit, "N over M"
  kServerBusy,          // request bodies being received, all connections, at their bound
  kHeadersTooLarge,     // HTTP/2: a header value over 16 KiB, or the list over 64 KiB
  kCount,
};

struct WebErrorText {
  int http_status;
  std::string text;
};
WebErrorText WebErrorOf(WebError e, std::string_view detail = {});

// The HTTP status and body of a gRPC answer given to the HTTP API (kCache*, kPublish,
// kLongPoll): INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404
// ("Cache Not Found" for a missing cache), RESOURCE_EXHAUSTED 429 (413 for a value or request
// over its size limit), DEADLINE_EXCEEDED 504, UNAVAILABLE 503, others 500.
int HttpStatusOf(const WireStatus& st);
std::string HttpBodyOf(const WireStatus& st);

// ---- CORS -----------------------------------------------------------------------------------
// --cors-origins: exact origins ("https://app.example.com"), or "*" for any (token-only APIs).
struct CorsPolicy {
  bool any = false;
  std::vector<std::string> origins;
  bool Allows(std::string_view origin) const;
  static CorsPolicy Parse(std::string_view list);  // comma-separated
};
// Whether `origin` ("scheme://host[:port]") is the server's own origin as the request names it
// (Host header, TLS or not): same-origin requests need no CORS grant.
bool SameOrigin(std::string_view origin, std::string_view host, bool tls);

// ---- Tokens ---------------------------------------------------------------------------------
// The credential the gRPC calls verify: a v1 API key (base64 of {"api_key": ..., "endpoint":
// ...}, what the SDKs take) is unwrapped to its api_key; anything else is used as it is.
std::string UnwrapToken(std::string_view token);
// The token a web request carries, unwrapped: its Authorization header (raw, as Momento's HTTP
// API takes it; "Bearer " tolerated) when present and not empty, else its ?token= parameter;
// empty when neither. Null: absent. (RouteWeb refuses a request that gives both first.)
std::string WebRequestToken(const std::string* authorization, const std::string* query_token);

// ---- Request messages the HTTP API builds, framed (5-byte prefix) -------------------------
std::string FramedGet(std::string_view key);
std::string FramedSet(std::string_view key, std::string_view value, uint64_t ttl_ms);
std::string FramedDelete(std::string_view key);
std::string FramedPublish(std::string_view cache, std::string_view topic, std::string_view value,
                          bool binary);
std::string FramedSubscribe(std::string_view cache, std::string_view topic, uint64_t resume_at,
                            uint64_t page);
// A Get's framed response: the value if it was a hit, nullopt on a miss.
struct GetAnswer {
  bool hit = false;
  std::string value;
};
std::optional<GetAnswer> ParseGetResponse(std::string_view framed);

// ---- Base64 as browsers and edge runtimes send it -------------------------------------------
// Standard or URL-safe alphabet, padded or not, and (grpc-web-text) several padded pieces
// one after another. nullopt on anything else.
std::optional<std::string> DecodeBase64Lenient(std::string_view text);
using net::AppendBase64;  // standard, padded (frontend/net/http1.h)

// ---- Topics as JSON (the long poll's items, SSE's data, WebSocket's text frames) -----------
// {"item":{"topic_sequence_number":N,"sequence_page":P,"value":{"text":"..."}}}; a binary
// value (or text that is not UTF-8) is {"binary":"<standard base64>"}; "publisher_id" when
// the publisher had one. Registered with Topics (one encoding at publish, shared by every
// subscriber).
void EncodeTopicJson(const topics::TopicMessage& m, std::string& out);
std::string DiscontinuityJson(uint64_t last_seq, uint64_t new_seq, uint64_t new_page);
inline constexpr std::string_view kHeartbeatJson = R"({"heartbeat":{}})";
// {"error":{"status":N,"code":"...","message":"..."}} (WebSocket and SSE ends).
std::string ErrorJson(const WireStatus& st);

// grpc-web's trailer frame: 0x80, length, "grpc-status:N\r\ngrpc-message:...\r\nerr:...\r\n".
std::string GrpcWebTrailers(const WireStatus& st);

}  // namespace cellar::grpc
