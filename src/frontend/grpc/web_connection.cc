// The API port's HTTP/1.1 side (web.h): grpc-web, Momento's HTTP API, the long poll,
// Server-Sent Events and WebSocket, each a Stream that runs through the same services and
// pipeline as a gRPC call (connection.cc), answered here in its web form.
#include <nghttp2/nghttp2.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <charconv>

#include "auth/base64.h"
#include "common/clock.h"
#include "common/logging.h"
#include "frontend/grpc/connection.h"
#include "frontend/grpc/demo.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/grpc/metrics.h"
#include "frontend/grpc/topic_frames.h"
#include "frontend/grpc/web.h"

namespace cellar::grpc {

namespace asio = boost::asio;
using boost::system::error_code;

// connection.cc: a response whose body nghttp2 pulls from the stream (its `out`, or its queue
// once streaming).
void SubmitBodyResponse(nghttp2_session* session, Stream& s, const nghttp2_nv* nva, size_t n);

namespace {

constexpr std::string_view kGetPath = "/cache_client.Scs/Get";
constexpr std::string_view kSetPath = "/cache_client.Scs/Set";
constexpr std::string_view kDeletePath = "/cache_client.Scs/Delete";
constexpr std::string_view kPublishPath = "/cache_client.pubsub.Pubsub/Publish";
constexpr std::string_view kSubscribePath = "/cache_client.pubsub.Pubsub/Subscribe";
// A long poll with nothing to return answers {"items":[]} after this, under the idle
// timeouts of common proxies and load balancers (60 s).
constexpr int64_t kLongPollMs = 55'000;
// The server is busy receiving request bodies: how soon a client may try again.
constexpr std::string_view kRetryAfter = "Retry-After: 1\r\n";
constexpr std::string_view kExposeHeaders =
    "Access-Control-Expose-Headers: grpc-status, grpc-message, err, retry-after\r\n";

std::optional<uint64_t> ParseU64(std::string_view v) {
  uint64_t n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  return n;
}

const std::string* Param(const std::vector<std::pair<std::string, std::string>>& q,
                         std::string_view name) {
  for (const auto& [k, v] : q) {
    if (k == name) return &v;
  }
  return nullptr;
}

// Splits "/a/b/c" after `prefix` into percent-decoded segments; false on a bad escape or an
// empty segment.
bool Segments(std::string_view path, std::vector<std::string>* out) {
  out->clear();
  while (!path.empty()) {
    const size_t slash = path.find('/');
    std::string seg;
    if (!net::PercentDecode(path.substr(0, slash), &seg) || seg.empty()) return false;
    out->push_back(std::move(seg));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return true;
}

// The WebSocket close code of a subscription's end.
uint16_t CloseCodeOf(const WireStatus& st) {
  switch (st.code) {
    case GrpcCode::kOk: return net::kWsNormal;
    case GrpcCode::kUnauthenticated: return 4401;
    case GrpcCode::kPermissionDenied: return 4403;
    case GrpcCode::kNotFound: return 4404;
    case GrpcCode::kResourceExhausted:
    case GrpcCode::kUnavailable: return net::kWsTryAgainLater;
    case GrpcCode::kInvalidArgument: return net::kWsPolicy;
    default: return net::kWsInternal;
  }
}

}  // namespace

// ---- Reading and parsing ---------------------------------------------------------------------

void Connection::ReadHttp1(const char* data, size_t n) {
  if (session_ != nullptr) {
    // HTTP/1.1 for the rest of the connection: nghttp2's session is never used.
    nghttp2_session_del(session_);
    session_ = nullptr;
  }
  h1_in_.append(data, n);
  if (ws_) {
    OnWebSocketData();
  } else {
    ParseHttp1();
  }
  Flush();
  Read();
}

void Connection::PostParseHttp1() {
  if (h1_parse_posted_ || closed_) return;
  h1_parse_posted_ = true;
  asio::post(stream_.socket().get_executor(), [self = shared_from_this()] {
    self->h1_parse_posted_ = false;
    if (self->ws_) {
      self->OnWebSocketData();
    } else {
      self->ParseHttp1();
    }
    self->Flush();
    self->Read();
  });
}

void Connection::ParseHttp1() {
  // One request at a time, and none while the answers before it wait for a client that does
  // not read them (FlushHttp1's write resumes parsing).
  while (!closed_ && !ws_ && h1_active_ == nullptr && !h1_close_ && !h1_in_.empty() &&
         pending_output_ + (writing_ ? out_.size() : 0) < kMaxHttp1Out) {
    // A new request: none of the last one's CORS grant (RouteWeb makes this one's).
    if (!h1_parser_.head_done()) web_cors_.clear();
    size_t used = 0;
    const net::Http1Parser::Result r = h1_parser_.Feed(h1_in_, &used);
    h1_in_.erase(0, used);
    if (r == net::Http1Parser::Result::kError) {
      UncountHttp1Partial();
      Bump(GrpcMetricsOf(owner_->thread()).protocol_errors);
      h1_keep_alive_ = false;
      WebReply(h1_parser_.status(), "text/plain; charset=utf-8", h1_parser_.reason());
      return;
    }
    if (h1_parser_.head_done() && !h1_head_checked_) {
      h1_head_checked_ = true;
      if (!OnHttp1Head()) return;
    }
    if (!CountHttp1Partial(h1_parser_.body_bytes())) {
      h1_keep_alive_ = false;  // the rest of the body is not read
      web_cors_ = CorsGrantFor(h1_parser_.request());  // a page may read why, and Retry-After
      WebRefuse(WebError::kServerBusy, {}, kRetryAfter);
      return;
    }
    if (r == net::Http1Parser::Result::kNeedMore) return;
    UncountHttp1Partial();  // the call counts its own copy (StartWebCall)
    OnHttp1Request();
    h1_parser_.Reset();
    h1_head_checked_ = false;
  }
}

bool Connection::OnHttp1Head() {
  net::Http1Request& req = h1_parser_.request();
  h1_keep_alive_ = req.keep_alive;
  // A body beyond what an unauthenticated caller may send is read only for a valid token.
  const std::string* length = req.Header("content-length");
  const bool large = req.Header("transfer-encoding") != nullptr ||
                     (length != nullptr && ParseU64(*length).value_or(0) > kMaxUnauthenticatedBodies);
  if (large && !ever_authed_) {
    const auto query = net::ParseQuery(req.query);
    const std::string token =
        WebRequestToken(req.Header("authorization"), query ? Param(*query, "token") : nullptr);
    auto principal = Authenticate(token, SystemClock::Get()->NowMillis() / 1000);
    if (!principal.ok()) {
      h1_keep_alive_ = false;  // the body is not read
      web_cors_ = CorsGrantFor(req);
      WebStatusReply(ToWire(principal.status()));
      return false;
    }
  }
  if (req.HeaderHas("expect", "100-continue")) {
    h1_out_ += "HTTP/1.1 100 Continue\r\n\r\n";
    pending_output_ += 25;
  }
  return true;
}

bool Connection::CountHttp1Partial(size_t now) {
  std::atomic<uint64_t>& all = GrpcServer::BufferedRequestBytes();
  if (now <= h1_body_counted_) {
    all.fetch_sub(h1_body_counted_ - now, std::memory_order_relaxed);
    h1_body_counted_ = now;
    return true;
  }
  if (!GrpcServer::ReserveRequestBytes(now - h1_body_counted_,
                                       owner_->context().max_buffered_request_bytes)) {
    UncountHttp1Partial();
    return false;
  }
  h1_body_counted_ = now;
  return true;
}

void Connection::OnHttp1Request() {
  net::Http1Request& req = h1_parser_.request();
  h1_keep_alive_ = req.keep_alive;
  RouteWeb(req);
}

std::string Connection::WebTokenOf(const Stream& s) {
  const size_t q = s.path.find('?');
  const auto query = q == std::string::npos
                         ? std::nullopt
                         : net::ParseQuery(std::string_view(s.path).substr(q + 1));
  return WebRequestToken(&s.authorization, query ? Param(*query, "token") : nullptr);
}

void Connection::RouteH2Web(const std::shared_ptr<Stream>& sp) {
  Stream& s = *sp;
  if (s.closed || s.answered) return;
  if (s.oversized_header) {
    DropBody(s);
    web_target_ = &s;
    WebRefuse(WebError::kHeadersTooLarge);
    web_target_ = nullptr;
    return;
  }
  // The request as the HTTP/1.1 router takes it.
  net::Http1Request req;
  req.method = "POST";
  const size_t q = s.path.find('?');
  req.path = s.path.substr(0, q);
  if (q != std::string::npos) req.query = s.path.substr(q + 1);
  for (auto& [name, value] : s.web_headers) {  // moved: cleared below
    if (name == ":method") {
      req.method = std::move(value);
    } else {
      req.headers.emplace_back(std::move(name), std::move(value));
    }
  }
  req.headers.emplace_back("host", s.authority);
  if (!s.authorization.empty()) req.headers.emplace_back("authorization", s.authorization);
  if (!s.cache.empty()) req.headers.emplace_back("cache", s.cache);
  req.body = TakeBody(s);
  s.web_headers.clear();
  web_target_ = &s;
  RouteWeb(req);
  web_target_ = nullptr;
}

namespace {
std::string_view HostOf(const net::Http1Request& req) {
  const std::string* host = req.Header("host");
  return host != nullptr ? std::string_view(*host) : std::string_view();
}
}  // namespace

const std::string* Connection::CrossOrigin(const net::Http1Request& req) const {
  return CrossOrigin(req.Header("origin"), HostOf(req));
}

const std::string* Connection::CrossOrigin(const std::string* origin,
                                           std::string_view host) const {
  if (origin == nullptr || SameOrigin(*origin, host, stream_.is_tls())) return nullptr;
  return origin;
}

std::string Connection::CorsGrantFor(const net::Http1Request& req) const {
  return CorsGrantFor(req.Header("origin"), HostOf(req));
}

std::string Connection::CorsGrantFor(const std::string* request_origin,
                                     std::string_view host) const {
  const std::string* origin = CrossOrigin(request_origin, host);
  if (origin == nullptr || !owner_->context().cors.Allows(*origin)) return {};
  return "Access-Control-Allow-Origin: " + *origin + "\r\nVary: Origin\r\n" +
         std::string(kExposeHeaders);
}

void Connection::RouteWeb(net::Http1Request& req) {
  const ServiceContext& ctx = owner_->context();
  // Cross-origin pages: only the configured origins (the browser enforces the rest).
  if (const std::string* origin = CrossOrigin(req);
      origin != nullptr && !ctx.cors.Allows(*origin)) {
    web_cors_.clear();
    return WebRefuse(WebError::kOriginNotAllowed, *origin);
  }
  web_cors_ = CorsGrantFor(req);
  if (web_target_ != nullptr) web_target_->web_cors = web_cors_;
  if (req.method == "OPTIONS") {
    std::string extra =
        "Access-Control-Allow-Methods: GET, PUT, POST, DELETE, OPTIONS\r\n"
        "Access-Control-Max-Age: 600\r\n";
    // The headers the page will send, as it lists them (`*` never covers Authorization).
    if (const std::string* h = req.Header("access-control-request-headers")) {
      extra += "Access-Control-Allow-Headers: " + *h + "\r\n";
    }
    return WebReply(204, "", "", extra);
  }

  auto query = net::ParseQuery(req.query);
  if (!query) return WebRefuse(WebError::kBadQuery);
  const std::string_view path = req.path;
  const std::string* content_type = req.Header("content-type");
  if (content_type != nullptr && content_type->starts_with("application/grpc-web")) {
    const bool text = content_type->starts_with("application/grpc-web-text");
    return RouteGrpcWeb(req, text ? WebKind::kGrpcWebText : WebKind::kGrpcWebBinary);
  }

  // The token: the Authorization header (raw, as Momento's HTTP API takes it; "Bearer "
  // tolerated) or ?token=, not both.
  const std::string* header = req.Header("authorization");
  const std::string* param = Param(*query, "token");
  if (header != nullptr && param != nullptr) return WebRefuse(WebError::kBothTokens);
  const std::string token = WebRequestToken(header, param);

  if (ctx.demo && (path == "/demo" || path == "/demo/" || path == "/demo/token")) {
    return RouteDemo(req, *query);
  }
  std::vector<std::string> seg;
  const bool cache_path = path.starts_with("/cache/");
  const bool topic_path = path.starts_with("/topics/");
  if (!cache_path && !topic_path) return WebRefuse(WebError::kNotFoundPath, path);
  if (!Segments(path.substr(cache_path ? 7 : 8), &seg)) return WebRefuse(WebError::kBadPath);
  if (req.Header("upgrade") != nullptr && !(topic_path && seg.size() == 3 && seg[2] == "ws")) {
    return WebRefuse(WebError::kUpgradeElsewhere);
  }
  if (cache_path && seg.size() == 1) return RouteCache(req, seg[0], token, *query);
  if (topic_path && seg.size() == 2) return RouteTopic(req, seg[0], seg[1], "", token, *query);
  if (topic_path && seg.size() == 3 && (seg[2] == "ws" || seg[2] == "sse")) {
    return RouteTopic(req, seg[0], seg[1], seg[2], token, *query);
  }
  WebRefuse(WebError::kNotFoundPath, path);
}

void Connection::RouteCache(net::Http1Request& req, std::string_view cache,
                            const std::string& token,
                            const std::vector<std::pair<std::string, std::string>>& query) {
  const bool get = req.method == "GET", put = req.method == "PUT", del = req.method == "DELETE";
  if (!get && !put && !del) {
    return WebRefuse(WebError::kMethodNotAllowed, "GET, PUT, DELETE", "Allow: GET, PUT, DELETE\r\n");
  }
  const std::string* key = Param(query, "key");
  const std::string* key64 = Param(query, "key_base64");
  if (key != nullptr && key64 != nullptr) return WebRefuse(WebError::kBothKeys);
  if (key == nullptr && key64 == nullptr) return WebRefuse(WebError::kNoKey);
  std::string k;
  if (key64 != nullptr) {
    auto decoded = DecodeBase64Lenient(*key64);
    if (!decoded) return WebRefuse(WebError::kBadKeyBase64);
    k = std::move(*decoded);
  } else {
    k = *key;
  }
  if (get) return void(StartWebCall(WebKind::kCacheGet, kGetPath, std::string(cache), token, FramedGet(k)));
  if (del) {
    return void(StartWebCall(WebKind::kCacheDelete, kDeletePath, std::string(cache), token,
                             FramedDelete(k)));
  }
  const std::string* ttl = Param(query, "ttl_seconds");
  if (ttl == nullptr) return WebRefuse(WebError::kNoTtl);
  const auto seconds = ParseU64(*ttl);
  if (!seconds || *seconds == 0 || *seconds > UINT64_MAX / 1000) {
    return WebRefuse(WebError::kBadTtl, *ttl);
  }
  StartWebCall(WebKind::kCacheSet, kSetPath, std::string(cache), token,
               FramedSet(k, req.body, *seconds * 1000));
}

void Connection::RouteTopic(net::Http1Request& req, std::string_view cache, std::string_view topic,
                            std::string_view tail, const std::string& token,
                            const std::vector<std::pair<std::string, std::string>>& query) {
  if (tail.empty() && req.method == "POST") {
    // text/* and JSON bodies are text messages; anything else is binary.
    const std::string* ct = req.Header("content-type");
    const bool text = ct != nullptr && (ct->starts_with("text/") || ct->starts_with("application/json"));
    if (text && !net::IsUtf8(req.body)) return WebRefuse(WebError::kTextNotUtf8);
    StartWebCall(WebKind::kPublish, kPublishPath, "", token,
                 FramedPublish(cache, topic, req.body, !text));
    return;
  }
  if (req.method != "GET") {
    return WebRefuse(WebError::kMethodNotAllowed, tail.empty() ? "GET, POST" : "GET",
                     tail.empty() ? "Allow: GET, POST\r\n" : "Allow: GET\r\n");
  }
  // Where to start: sequence_number (the next one wanted; 0: the next published) on
  // sequence_page; SSE also takes Last-Event-ID ("page:seq", as its ids are written).
  uint64_t resume_at = 0, page = 0;
  for (std::string_view name : {"sequence_number", "sequence_page"}) {
    if (const std::string* v = Param(query, name)) {
      auto n = ParseU64(*v);
      if (!n) return WebRefuse(WebError::kBadSequence, name);
      (name == "sequence_number" ? resume_at : page) = *n;
    }
  }
  if (tail == "sse") {
    if (const std::string* last = req.Header("last-event-id")) {
      const size_t colon = last->find(':');
      auto p = ParseU64(std::string_view(*last).substr(0, colon));
      auto s = colon == std::string::npos ? std::nullopt
                                          : ParseU64(std::string_view(*last).substr(colon + 1));
      if (p && s) {
        page = *p;
        resume_at = *s + 1;
      }
    }
    StartWebCall(WebKind::kSse, kSubscribePath, "", token,
                 FramedSubscribe(cache, topic, resume_at, page));
    return;
  }
  if (tail == "ws") {
    // Over HTTP/2 a browser opens its WebSocket on an HTTP/1.1 connection of its own (no
    // extended CONNECT is offered), so one that asks here is refused like a missing upgrade.
    if (web_target_ != nullptr || !req.HeaderHas("upgrade", "websocket") || !req.HeaderHas("connection", "upgrade")) {
      return WebRefuse(WebError::kNotWebSocket, {}, "Upgrade: websocket\r\n");
    }
    const std::string* version = req.Header("sec-websocket-version");
    if (version == nullptr || *version != "13") {
      return WebRefuse(WebError::kBadWebSocketVersion, {}, "Sec-WebSocket-Version: 13\r\n");
    }
    const std::string* key = req.Header("sec-websocket-key");
    auto raw = key == nullptr ? std::nullopt : auth::Base64Decode(*key);
    if (!raw || raw->size() != 16) return WebRefuse(WebError::kBadWebSocketKey);
    // A page cannot set headers on a WebSocket: the token may also come as a subprotocol
    // "token.<TOKEN>" (echoed back, as the handshake requires) or ?token=.
    std::string ws_token = token;
    ws_protocol_.clear();
    if (const std::string* protocols = req.Header("sec-websocket-protocol")) {
      std::string_view rest = *protocols;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        std::string_view p = rest.substr(0, comma);
        while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
        while (!p.empty() && p.back() == ' ') p.remove_suffix(1);
        if (p.starts_with("token.") && ws_token.empty()) {
          ws_token = UnwrapToken(p.substr(6));
          ws_protocol_ = std::string(p);
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
    ws_accept_ = net::WebSocketAccept(*key);
    ws_cache_ = cache;
    ws_topic_ = topic;
    ws_token_ = ws_token;
    StartWebCall(WebKind::kWebSocket, kSubscribePath, "", ws_token,
                 FramedSubscribe(cache, topic, resume_at, page));
    return;
  }
  StartWebCall(WebKind::kLongPoll, kSubscribePath, "", token,
               FramedSubscribe(cache, topic, resume_at, page));
}

void Connection::RouteGrpcWeb(net::Http1Request& req, WebKind kind) {
  if (req.method != "POST") {
    return WebRefuse(WebError::kMethodNotAllowed, "POST", "Allow: POST\r\n");
  }
  std::string body;
  if (kind == WebKind::kGrpcWebText) {
    auto decoded = DecodeBase64Lenient(req.body);
    if (!decoded) return WebRefuse(WebError::kBadGrpcWebBody);
    body = std::move(*decoded);
  } else {
    body = std::move(req.body);
  }
  std::string cache, authorization;
  if (const std::string* c = req.Header("cache")) cache = *c;
  if (const std::string* a = req.Header("authorization")) authorization = *a;
  int64_t deadline_ms = web_target_ != nullptr ? web_target_->deadline_ms : 0;
  if (const std::string* t = req.Header("grpc-timeout")) {
    if (auto ms = ParseTimeoutMillis(*t)) deadline_ms = SteadyMillis() + std::max<int64_t>(*ms, 1);
  }
  StartWebCall(kind, req.path, std::move(cache), std::move(authorization), std::move(body),
               deadline_ms);
}

void Connection::RouteDemo(net::Http1Request& req,
                           const std::vector<std::pair<std::string, std::string>>& query) {
  if (req.path != "/demo/token") {
    if (req.method != "GET") return WebRefuse(WebError::kMethodNotAllowed, "GET", "Allow: GET\r\n");
    return WebReply(200, "text/html; charset=utf-8", DemoPageHtml());
  }
  if (req.method != "POST") return WebRefuse(WebError::kMethodNotAllowed, "POST", "Allow: POST\r\n");
  const std::string* name = Param(query, "name");
  auto token = MintDemoToken(owner_->context(), name != nullptr ? *name : "");
  if (!token.ok()) return WebStatusReply(ToWire(token.status()));
  WebReply(200, "application/json", token->json);
}

std::shared_ptr<Stream> Connection::StartWebCall(WebKind kind, std::string_view path,
                                                 std::string cache, std::string token,
                                                 std::string framed, int64_t deadline_ms) {
  const ServiceContext& ctx = owner_->context();
  const size_t len = framed.size();
  // Refused before it is a call: an HTTP answer, or on a WebSocket an error message.
  auto refuse = [&](const WireStatus& st) {
    if (kind != WebKind::kWsPublish) return WebStatusReply(st);
    if (h1_active_ != nullptr) Push(*h1_active_, Stream::Chunk{nullptr, ErrorJson(st), {}});
  };
  if (len > kPrefixBytes + ctx.max_request_bytes) {  // what gRPC refuses at its prefix
    if (kind != WebKind::kWsPublish) {
      WebRefuse(WebError::kBodyTooLarge, std::to_string(len - kPrefixBytes) + " over " +
                                             std::to_string(ctx.max_request_bytes));
    } else {
      refuse(WireError(GrpcError::kRequestOverLimit, len - kPrefixBytes, ctx.max_request_bytes));
    }
    return nullptr;
  }
  std::atomic<uint64_t>& all = GrpcServer::BufferedRequestBytes();
  if (!GrpcServer::ReserveRequestBytes(len, ctx.max_buffered_request_bytes)) {
    refuse(WireError(GrpcError::kServerBodiesFull));  // the web's 503 (WebStatusReply)
    return nullptr;
  }
  std::shared_ptr<Stream> sp;
  if (web_target_ != nullptr) {  // HTTP/2: the request's own stream runs the call
    auto it = streams_.find(web_target_->id);
    if (it == streams_.end()) {
      all.fetch_sub(len, std::memory_order_relaxed);
      return nullptr;
    }
    sp = it->second;
  } else {
    sp = NewStream();
    sp->id = h1_next_id_;
    h1_next_id_ += 2;
    if (h1_next_id_ <= 0) h1_next_id_ = 1;
  }
  Stream& s = *sp;
  s.web = kind;
  s.web_cors = web_cors_;
  s.path.assign(path);
  s.post = true;
  s.grpc_content_type = true;
  s.cache = std::move(cache);
  s.authorization = std::move(token);
  s.body = std::move(framed);
  s.deadline_ms = deadline_ms;
  buffered_bodies_ += len;
  if (web_target_ == nullptr) {
    streams_[s.id] = sp;
    if (kind != WebKind::kWsPublish) h1_active_ = sp;
  }
  CheckAuthOnHeaders(s);
  if (!s.answered) ready_.push_back(sp);
  Continue();
  return sp;
}

// ---- Answers -------------------------------------------------------------------------------

void Connection::WebReply(int status, std::string_view content_type, std::string_view body,
                          std::string_view extra_headers) {
  if (web_target_ != nullptr) {
    return H2Reply(*web_target_, status, content_type, body, extra_headers);
  }
  std::string& o = h1_out_;
  const size_t before = o.size();
  o += "HTTP/1.1 ";
  o += std::to_string(status);
  o += ' ';
  o += net::ReasonPhrase(status);
  o += "\r\n";
  if (!content_type.empty()) {
    o += "Content-Type: ";
    o += content_type;
    o += "\r\n";
  }
  if (status != 204) {
    o += "Content-Length: ";
    o += std::to_string(body.size());
    o += "\r\n";
  }
  o += "Cache-Control: no-store\r\n";
  o += web_cors_;
  o += extra_headers;
  if (!h1_keep_alive_) {
    o += "Connection: close\r\n";
    h1_close_ = true;
  }
  o += "\r\n";
  if (status != 204) o += body;
  pending_output_ += o.size() - before;
}

void Connection::WebRefuse(WebError e, std::string_view detail, std::string_view extra) {
  const WebErrorText t = WebErrorOf(e, detail);
  WebReply(t.http_status, "text/plain; charset=utf-8", t.text, extra);
}

void Connection::WebStatusReply(const WireStatus& st) {
  // The server busy receiving request bodies (gRPC's RESOURCE_EXHAUSTED in Momento's words):
  // to a web client, 503 and when to try again, whichever path refused it (HTTP/2 included).
  if (st.server_busy) {
    return WebRefuse(WebError::kServerBusy, {}, kRetryAfter);
  }
  const int status = HttpStatusOf(st);
  std::string extra = st.err.empty() ? std::string() : "err: " + std::string(st.err) + "\r\n";
  if (status == 429) extra += kRetryAfter;  // a rate: a second from now is worth a try
  WebReply(status, "text/plain; charset=utf-8", HttpBodyOf(st), extra);
}

void Connection::RespondWeb(Stream& s) {
  // Called by Respond (answered, body dropped; out cleared on an error).
  if (!http1_ && web_target_ != &s) {
    Stream* outer = web_target_;
    web_target_ = &s;
    RespondWeb(s);
    web_target_ = outer;
    return;
  }
  if (s.web == WebKind::kNone && s.web_cors.empty()) {
    // An HTTP/2 request refused before it was routed (its body's bounds): the grant its
    // origin would have had, so that the page can read why (and Retry-After).
    const std::string* origin = nullptr;
    for (const auto& [name, value] : s.web_headers) {
      if (name == "origin") {
        origin = &value;
        break;
      }
    }
    s.web_cors = CorsGrantFor(origin, s.authority);
  }
  web_cors_ = s.web_cors;
  const WireStatus& st = s.status;
  const bool ok = st.code == GrpcCode::kOk;
  switch (s.web) {
    case WebKind::kGrpcWebText:
    case WebKind::kGrpcWebBinary: {
      const bool text = s.web == WebKind::kGrpcWebText;
      const std::string_view ct =
          text ? "application/grpc-web-text" : "application/grpc-web+proto";
      if (!ok) {
        // Trailers-only: the status in the headers (exposed to the page by CORS), no body.
        std::string extra = "grpc-status: " + std::to_string(static_cast<int>(st.code)) + "\r\n";
        if (!st.message.empty()) extra += "grpc-message: " + PercentEncode(st.message) + "\r\n";
        if (!st.err.empty()) extra += "err: " + std::string(st.err) + "\r\n";
        WebReply(200, ct, "", extra);
        break;
      }
      // A unary answer always carries a message (the client calls it incomplete otherwise).
      if (s.out.empty()) s.out.assign(kPrefixBytes, '\0');
      std::string body;
      const std::string trailers = GrpcWebTrailers(st);
      if (text) {
        AppendBase64(body, s.out);
        AppendBase64(body, trailers);
      } else {
        body = s.out;
        body += trailers;
      }
      WebReply(200, ct, body);
      break;
    }
    case WebKind::kCacheGet: {
      if (!ok) {
        WebStatusReply(st);
        break;
      }
      auto answer = ParseGetResponse(s.out);
      if (!answer) {
        WebStatusReply(WireError(GrpcError::kBadMessage));
      } else if (!answer->hit) {
        WebReply(404, "text/plain; charset=utf-8", "Key Not Found");
      } else {
        WebReply(200, "application/octet-stream", answer->value);
      }
      break;
    }
    case WebKind::kCacheSet:
    case WebKind::kCacheDelete:
    case WebKind::kPublish:
      if (ok) {
        WebReply(204, "", "");
      } else {
        WebStatusReply(st);
      }
      break;
    case WebKind::kWsPublish:
      // The socket's own client published: only a refusal is told, on the socket.
      if (!ok && h1_active_ != nullptr && h1_active_->web == WebKind::kWebSocket) {
        Push(*h1_active_, Stream::Chunk{nullptr, ErrorJson(st), {}});
      }
      s.out.clear();
      s.out_off = 0;
      OnStreamClose(s.id);
      // Frames left unread while too many publishes were in flight go on now.
      if (ws_publishing_-- == kMaxWsPublishing && !closed_) {
        asio::post(stream_.socket().get_executor(), [self = shared_from_this()] {
          self->OnWebSocketData();
          self->Flush();
          self->Read();
        });
      }
      return;
    case WebKind::kLongPoll:
    case WebKind::kSse:
    case WebKind::kWebSocket:
      // Refused before it was subscribed (no upgrade for a WebSocket).
      WebStatusReply(st);
      break;
    case WebKind::kNone:  // an HTTP/2 web request refused before routing (OnDataChunk)
      WebStatusReply(st);
      break;
  }
  if (http1_) {
    s.out.clear();
    s.out_off = 0;
  }
  EndWeb(s);
}

void Connection::EndWeb(Stream& s) {
  s.web_timer.reset();
  s.streaming = false;  // answered: a second FinishLongPoll or drain does nothing
  if (!http1_) {
    // HTTP/2: nghttp2 closes the stream once its answer is sent (OnStreamClose).
    if (s.sub_id != 0) {
      owner_->context().topics->Unsubscribe(owner_->thread(), s.sub_id);
      subscriptions_.erase(s.sub_id);
      s.sub_id = 0;
    }
    return;
  }
  const bool active = h1_active_.get() == &s;
  std::shared_ptr<Stream> keep = active ? std::move(h1_active_) : nullptr;
  OnStreamClose(s.id);
  if (active) PostParseHttp1();
  ScheduleFlush();
}

void Connection::WebSubscribed(Stream& s) {
  // OnReady: answered, the subscription is live.
  web_cors_ = s.web_cors;
  if (s.web == WebKind::kLongPoll) {
    // Answered by the first items (FinishLongPoll), or empty after kLongPollMs.
    s.streaming = true;
    auto timer = std::make_shared<asio::steady_timer>(stream_.socket().get_executor());
    timer->expires_after(std::chrono::milliseconds(kLongPollMs));
    std::weak_ptr<Stream> weak = http1_ ? h1_active_ : streams_.contains(s.id) ? streams_[s.id]
                                                                               : nullptr;
    timer->async_wait([self = shared_from_this(), weak](error_code ec) {
      auto sp = weak.lock();
      if (ec || sp == nullptr || self->closed_ || sp->closed || !sp->streaming) return;
      sp->ending = true;  // nothing came: an empty answer
      self->FinishLongPoll(*sp);
      self->Flush();
    });
    s.web_timer = std::move(timer);
    return;
  }
  if (!http1_) {
    switch (s.web) {
      case WebKind::kGrpcWebText: H2Headers(s, 200, "application/grpc-web-text", {}, true); break;
      case WebKind::kGrpcWebBinary: H2Headers(s, 200, "application/grpc-web+proto", {}, true); break;
      case WebKind::kSse:
        H2Headers(s, 200, "text/event-stream", {}, true);
        Push(s, Stream::Chunk{nullptr, "retry: 1000\n\n", {}});
        break;
      default: break;
    }
    s.streaming = true;
    Push(s, WebHeartbeat(s));
    return;
  }
  std::string& o = h1_out_;
  const size_t before = o.size();
  switch (s.web) {
    case WebKind::kGrpcWebText:
    case WebKind::kGrpcWebBinary:
      o += "HTTP/1.1 200 OK\r\nContent-Type: ";
      o += s.web == WebKind::kGrpcWebText ? "application/grpc-web-text"
                                          : "application/grpc-web+proto";
      o += "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\n";
      o += web_cors_;
      o += "\r\n";
      break;
    case WebKind::kSse:
      o += "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
           "Transfer-Encoding: chunked\r\nX-Accel-Buffering: no\r\n";
      o += web_cors_;
      o += "\r\n";
      // EventSource reconnects a second after the stream ends, resuming from the last id.
      AppendChunk("retry: 1000\n\n");
      break;
    case WebKind::kWebSocket:
      o += "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: ";
      o += ws_accept_;
      o += "\r\n";
      if (!ws_protocol_.empty()) o += "Sec-WebSocket-Protocol: " + ws_protocol_ + "\r\n";
      o += "\r\n";
      ws_ = true;
      break;
    default:
      break;
  }
  pending_output_ += o.size() - before;
  s.streaming = true;
  // The first message says "subscribed" (the SDKs' subscribe() resolves on it).
  Push(s, WebHeartbeat(s));
}

void Connection::FinishLongPoll(Stream& s) {
  if (!s.streaming || s.web != WebKind::kLongPoll) return;  // answered already
  if (s.queue.empty() && !s.ending) return;
  Stream* outer = web_target_;
  if (!http1_) web_target_ = &s;
  web_cors_ = s.web_cors;
  if (s.queue.empty()) {
    // Ended with nothing to give: empty when its time ran out, else its status.
    if (s.status.code == GrpcCode::kOk) {
      WebReply(200, "application/json", R"({"items":[]})");
    } else {
      WebStatusReply(s.status);
    }
  } else {
    std::string body = R"({"items":[)";
    bool first = true;
    while (!s.queue.empty()) {
      if (!first) body.push_back(',');
      first = false;
      body += s.queue.front().bytes();
      s.queue.pop_front();
    }
    s.queue_bytes = 0;
    s.replay_credit = 0;
    body += "]}";
    WebReply(200, "application/json", body);
  }
  web_target_ = outer;
  EndWeb(s);
}

void Connection::H2Reply(Stream& s, int status, std::string_view content_type,
                         std::string_view body, std::string_view extra_headers) {
  if (closed_ || s.closed) return;
  s.answered = true;
  s.ignore_body = true;
  const bool has_body = status != 204 && !body.empty();
  // `out` held the call's response message, already read (OnStreamClose counts `out`).
  s.out.assign(has_body ? body : std::string_view());
  s.out_off = 0;
  pending_output_ += s.out.size();
  H2Headers(s, status, content_type, extra_headers, has_body);
}

void Connection::H2Headers(Stream& s, int status, std::string_view content_type,
                           std::string_view extra_headers, bool body) {
  // Header lines ("Name: value\r\n": the CORS grant, extras) as HTTP/2 fields, names
  // lower-cased.
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back(":status", std::to_string(status));
  if (!content_type.empty()) fields.emplace_back("content-type", std::string(content_type));
  fields.emplace_back("cache-control", "no-store");
  for (std::string_view lines : {std::string_view(s.web_cors), extra_headers}) {
    while (!lines.empty()) {
      const size_t end = lines.find("\r\n");
      const std::string_view line = lines.substr(0, end);
      lines = end == std::string_view::npos ? std::string_view() : lines.substr(end + 2);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name(line.substr(0, colon));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      fields.emplace_back(std::move(name), std::string(value));
    }
  }
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size());
  for (auto& [k, v] : fields) {
    nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(k.data()),
                             reinterpret_cast<uint8_t*>(v.data()), k.size(), v.size(),
                             NGHTTP2_NV_FLAG_NONE});
  }
  if (body) {  // pulled by nghttp2 from `out`, or from the queue once streaming
    SubmitBodyResponse(session_, s, nva.data(), nva.size());
  } else {
    nghttp2_submit_response(session_, s.id, nva.data(), nva.size(), nullptr);
  }
}

Stream::Chunk Connection::H2Piece(const Stream& s, Stream::Chunk chunk) const {
  const bool last = chunk.message == nullptr && chunk.own.empty();  // EndSubscription's
  switch (s.web) {
    case WebKind::kGrpcWebText:
    case WebKind::kGrpcWebBinary: {
      const std::string trailers = last ? GrpcWebTrailers(s.status) : std::string();
      const std::string_view bytes = last ? std::string_view(trailers) : chunk.bytes();
      if (s.web == WebKind::kGrpcWebBinary) {
        return last ? Stream::Chunk{nullptr, trailers, {}} : std::move(chunk);
      }
      std::string text;
      AppendBase64(text, bytes);
      return Stream::Chunk{nullptr, std::move(text), {}};
    }
    case WebKind::kSse:
      if (last) {
        return Stream::Chunk{nullptr,
                             s.status.code == GrpcCode::kOk
                                 ? std::string()
                                 : "event: error\ndata: " + ErrorJson(s.status) + "\n\n",
                             {}};
      }
      if (chunk.message != nullptr) {
        return Stream::Chunk{nullptr,
                             "id: " + std::to_string(chunk.message->page) + ":" +
                                 std::to_string(chunk.message->seq) + "\ndata: " +
                                 std::string(chunk.bytes()) + "\n\n",
                             {}};
      }
      return chunk;
    default:
      return chunk;
  }
}

Stream::Chunk Connection::WebHeartbeat(const Stream& s) const {
  switch (s.web) {
    case WebKind::kSse: return Stream::Chunk{nullptr, ": heartbeat\n\n", {}};
    case WebKind::kWebSocket: return Stream::Chunk{nullptr, std::string(kHeartbeatJson), {}};
    default: return Stream::Chunk{nullptr, std::string(HeartbeatFrame()), {}};
  }
}

Stream::Chunk Connection::WebDiscontinuity(const Stream& s, uint64_t last, uint64_t next,
                                           uint64_t page) const {
  switch (s.web) {
    case WebKind::kSse:
      return Stream::Chunk{
          nullptr, "event: discontinuity\ndata: " + DiscontinuityJson(last, next, page) + "\n\n", {}};
    case WebKind::kWebSocket:
    case WebKind::kLongPoll:
      return Stream::Chunk{nullptr, DiscontinuityJson(last, next, page), {}};
    default: return Stream::Chunk{nullptr, DiscontinuityFrame(last, next, page), {}};
  }
}

void Connection::AppendChunk(std::string_view piece) {
  if (piece.empty()) return;
  char hex[20];
  const auto [end, ec] = std::to_chars(hex, hex + sizeof(hex), piece.size(), 16);
  const size_t before = h1_out_.size();
  h1_out_.append(hex, end);
  h1_out_ += "\r\n";
  h1_out_ += piece;
  h1_out_ += "\r\n";
  pending_output_ += h1_out_.size() - before;
}

void Connection::AppendWebItem(const Stream& s, const topics::TopicMessage* message,
                               std::string_view b) {
  switch (s.web) {
    case WebKind::kGrpcWebText: {
      std::string piece;
      AppendBase64(piece, b);
      AppendChunk(piece);
      break;
    }
    case WebKind::kGrpcWebBinary: AppendChunk(b); break;
    case WebKind::kSse:
      if (message != nullptr) {
        // "id: PAGE:SEQ\ndata: JSON\n\n" as one chunk, written in place (no string per item).
        char page[24], seq[24];
        const size_t np = static_cast<size_t>(
            std::to_chars(page, page + sizeof(page), message->page).ptr - page);
        const size_t ns = static_cast<size_t>(
            std::to_chars(seq, seq + sizeof(seq), message->seq).ptr - seq);
        constexpr std::string_view kId = "id: ", kData = "\ndata: ", kEnd = "\n\n";
        const size_t size = kId.size() + np + 1 + ns + kData.size() + b.size() + kEnd.size();
        char hex[20];
        const auto [hex_end, ec] = std::to_chars(hex, hex + sizeof(hex), size, 16);
        const size_t before = h1_out_.size();
        h1_out_.append(hex, hex_end);
        h1_out_ += "\r\n";
        h1_out_ += kId;
        h1_out_.append(page, np);
        h1_out_ += ':';
        h1_out_.append(seq, ns);
        h1_out_ += kData;
        h1_out_ += b;
        h1_out_ += kEnd;
        h1_out_ += "\r\n";
        pending_output_ += h1_out_.size() - before;
      } else {
        AppendChunk(b);
      }
      break;
    case WebKind::kWebSocket: {
      const size_t before = h1_out_.size();
      net::AppendWsFrame(h1_out_, net::WsOpcode::kText, b);
      pending_output_ += h1_out_.size() - before;
      break;
    }
    default: break;
  }
}

bool Connection::WebItemNow(const Stream& s) const {
  // What DrainWeb would do at once: nothing is waiting before it and the write being gathered
  // has room. Then the item goes straight into it, without a queue entry (and its reference
  // to the shared message) to make and drain: one touch of the subscriber per delivery.
  // A write in flight means the socket is full: then items queue (shared, and counted
  // against the slow-reader bound). A --momento-local injected end counts queued items.
  return http1_ && !writing_ && h1_active_.get() == &s && s.streaming && !s.closed &&
         !s.ending && s.queue.empty() && s.web != WebKind::kLongPoll && s.fault_messages_left == 0 &&
         h1_out_.size() < kWriteChunk;
}

void Connection::DrainWeb(Stream& s) {
  if (s.web == WebKind::kLongPoll) return FinishLongPoll(s);
  while (!s.queue.empty() && h1_out_.size() < kWriteChunk) {
    const Stream::Chunk& c = s.queue.front();
    const size_t n = c.bytes().size();
    AppendWebItem(s, c.message.get(), c.bytes());
    s.queue_bytes -= n;
    s.replay_credit -= std::min(s.replay_credit, n);
    s.queue.pop_front();
  }
  if (!s.queue.empty() || !s.ending) return;
  // The end: after everything queued, the status in the kind's own words.
  switch (s.web) {
    case WebKind::kGrpcWebText:
    case WebKind::kGrpcWebBinary: {
      const std::string trailers = GrpcWebTrailers(s.status);
      if (s.web == WebKind::kGrpcWebText) {
        std::string t;
        AppendBase64(t, trailers);
        AppendChunk(t);
      } else {
        AppendChunk(trailers);
      }
      h1_out_ += "0\r\n\r\n";
      pending_output_ += 5;
      break;
    }
    case WebKind::kSse:
      if (s.status.code != GrpcCode::kOk) AppendChunk("event: error\ndata: " + ErrorJson(s.status) + "\n\n");
      h1_out_ += "0\r\n\r\n";
      pending_output_ += 5;
      break;
    case WebKind::kWebSocket: {
      const size_t before = h1_out_.size();
      if (s.status.code != GrpcCode::kOk) {
        net::AppendWsFrame(h1_out_, net::WsOpcode::kText, ErrorJson(s.status));
      }
      net::AppendWsClose(h1_out_, CloseCodeOf(s.status), s.status.message);
      pending_output_ += h1_out_.size() - before;
      h1_close_ = true;
      break;
    }
    default: break;
  }
  EndWeb(s);
}

void Connection::FlushHttp1() {
  if (writing_ || closed_) return;
  for (;;) {
    if (h1_active_ != nullptr && h1_active_->streaming && !h1_active_->closed) {
      DrainWeb(*h1_active_);
    }
    if (h1_out_.empty()) {
      // A burst's buffers are not kept.
      if (out_.capacity() > (64 << 10)) std::string().swap(out_);
      if (h1_out_.capacity() > (64 << 10)) std::string().swap(h1_out_);
      if (h1_close_) return Close(/*after_answer=*/true);
      // Requests (or WebSocket frames) that waited while answers were unwritten (the bound
      // of ParseHttp1 and OnWebSocketData).
      if ((ws_ ? ws_out_paused_ : h1_active_ == nullptr) && !h1_in_.empty()) PostParseHttp1();
      return;
    }
    pending_output_ -= std::min(pending_output_, h1_out_.size());
    if (!stream_.is_tls()) {
      // Plaintext: written at once, from h1_out_ itself, while the socket takes it all (a
      // fan-out's many small writes need no asynchronous operation each, and one buffer per
      // subscriber stays warmer than two); what it does not take waits for it in out_.
      error_code ec;
      const size_t n = stream_.socket().write_some(asio::buffer(h1_out_), ec);
      if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return Close();
      if (!ec && n == h1_out_.size()) {
        h1_out_.clear();
        write_epoch_ = owner_->sweep_epoch_;
        continue;
      }
      if (!ec) h1_out_.erase(0, n);
    }
    out_.swap(h1_out_);
    h1_out_.clear();
    break;
  }
  writing_ = true;
  auto on_written = [self = shared_from_this()](error_code ec, size_t) {
    self->writing_ = false;
    if (ec) return self->Close();
    self->write_epoch_ = self->owner_->sweep_epoch_;
    // A burst's write buffer is not kept by a connection that goes quiet (a subscriber).
    if (self->h1_out_.empty() && self->out_.capacity() > (64 << 10)) std::string().swap(self->out_);
    if (self->h1_active_ == nullptr && !self->ws_) self->ParseHttp1();  // paused on output
    self->SyncReplyHold();
    if (!self->ready_.empty() && !self->round_in_flight_) self->Continue();
    self->Flush();
    self->Read();
  };
  stream_.AsyncWrite(asio::buffer(out_), std::move(on_written));
}

// ---- WebSocket -------------------------------------------------------------------------------

void Connection::OnWebSocketData() {
  const ServiceContext& ctx = owner_->context();
  const size_t max_message = ctx.max_request_bytes;
  size_t off = 0;
  // A client's messages are publishes: at most kMaxWsPublishing in flight; the rest wait in
  // h1_in_ (and past kMaxHttp1In of them, reads pause). So do its frames while kMaxHttp1Out
  // is unwritten (a client that pings and never reads its pongs; FlushHttp1's write resumes).
  const auto out_full = [this] {
    return pending_output_ + (writing_ ? out_.size() : 0) >= kMaxHttp1Out;
  };
  while (!closed_ && !h1_close_ && ws_publishing_ < kMaxWsPublishing && !out_full()) {
    net::WsFrame f;
    size_t used = 0;
    uint16_t code = 0;
    const net::WsParse r =
        net::ParseWsFrame(h1_in_.data() + off, h1_in_.size() - off, max_message, &f, &used, &code);
    if (r == net::WsParse::kNeedMore) break;
    if (r == net::WsParse::kError) {
      CloseWebSocket(code, code == net::kWsTooBig ? "message too big" : "protocol error");
      break;
    }
    off += used;
    const auto op = static_cast<net::WsOpcode>(f.opcode);
    if (op == net::WsOpcode::kPing) {
      const size_t before = h1_out_.size();
      net::AppendWsFrame(h1_out_, net::WsOpcode::kPong, f.payload);
      pending_output_ += h1_out_.size() - before;
      continue;
    }
    if (op == net::WsOpcode::kPong) continue;
    if (op == net::WsOpcode::kClose) {
      CloseWebSocket(net::WsCloseReply(f.payload), "");
      break;
    }
    if (op == net::WsOpcode::kContinuation) {
      if (ws_opcode_ == 0) {
        CloseWebSocket(net::kWsProtocolError, "continuation without a message");
        break;
      }
      if (ws_message_.size() + f.payload.size() > max_message) {
        CloseWebSocket(net::kWsTooBig, "message too big");
        break;
      }
      ws_message_.append(f.payload);
    } else {
      if (ws_opcode_ != 0) {
        CloseWebSocket(net::kWsProtocolError, "a new message inside a fragmented one");
        break;
      }
      ws_opcode_ = f.opcode;
      ws_message_.assign(f.payload);
    }
    if (!f.fin) continue;
    const bool binary = ws_opcode_ == static_cast<uint8_t>(net::WsOpcode::kBinary);
    ws_opcode_ = 0;
    if (!binary && !net::IsUtf8(ws_message_)) {
      CloseWebSocket(net::kWsBadData, "text message is not UTF-8");
      break;
    }
    WebSocketMessage(ws_message_, binary);
    ws_message_.clear();
  }
  h1_in_.erase(0, std::min(off, h1_in_.size()));
  if (h1_close_) h1_in_.clear();
  ws_out_paused_ = !h1_in_.empty() && out_full();
  // A frame larger than the unparsed input held between reads is read whole (it is bounded by
  // the message limit); what is held counts toward the process's bound.
  ws_frame_need_ = net::WsFrameBytes(h1_in_.data(), h1_in_.size());
  if (!closed_ && !h1_close_ && !CountHttp1Partial(h1_in_.size() + ws_message_.size())) {
    CloseWebSocket(net::kWsTryAgainLater, "the server is receiving too much data right now");
    h1_in_.clear();
    ws_message_.clear();
    ws_frame_need_ = 0;
  }
}

void Connection::WebSocketMessage(std::string_view payload, bool binary) {
  // A client's message is a publish to the socket's topic, with the socket's token.
  ++ws_publishing_;
  if (StartWebCall(WebKind::kWsPublish, kPublishPath, "", ws_token_,
                   FramedPublish(ws_cache_, ws_topic_, payload, binary)) == nullptr) {
    --ws_publishing_;  // refused at once (the server's request buffers are full)
  }
}

void Connection::CloseWebSocket(uint16_t code, std::string_view reason) {
  if (h1_active_ != nullptr) {
    Stream& s = *h1_active_;
    if (s.sub_id != 0) {
      owner_->context().topics->Unsubscribe(owner_->thread(), s.sub_id);
      subscriptions_.erase(s.sub_id);
      s.sub_id = 0;
    }
    s.queue.clear();
    s.queue_bytes = 0;
    std::shared_ptr<Stream> keep = std::move(h1_active_);
    OnStreamClose(keep->id);
  }
  const size_t before = h1_out_.size();
  net::AppendWsClose(h1_out_, code, reason);
  pending_output_ += h1_out_.size() - before;
  h1_close_ = true;
}

}  // namespace cellar::grpc
