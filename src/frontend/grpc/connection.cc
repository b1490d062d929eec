#include "frontend/grpc/connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "common/clock.h"
#include "common/logging.h"
#include "gateway/reply_memory.h"
#include "control/cache_registry.h"
#include "frontend/grpc/errors.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/grpc/metrics.h"
#include "frontend/grpc/topic_frames.h"
#include "frontend/net/tls.h"

namespace cellar::grpc {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kMaxHeaderValue = 16 * 1024;
// The header list a stream may send (SETTINGS_MAX_HEADER_LIST_SIZE, which nghttp2 only
// advertises): past it, nothing more of the list is kept and the stream is refused. HPACK lets
// a client repeat a 4 KiB table entry with one byte: bounded by what decodes, not what arrives.
constexpr size_t kMaxHeaderList = 64 * 1024;

std::string_view View(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

// flags: NGHTTP2_NV_FLAG_NO_COPY_* for strings that outlive the frame (literals).
nghttp2_nv Nv(std::string_view name, std::string_view value,
              uint8_t flags = NGHTTP2_NV_FLAG_NO_COPY_NAME) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), flags};
}

nghttp2_nv Static(std::string_view name, std::string_view value) {
  return Nv(name, value, NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE);
}

// grpc-status, grpc-message and Momento's err, as trailers or in a trailers-only response.
struct StatusFields {
  explicit StatusFields(const WireStatus& st)
      : code(std::to_string(static_cast<int>(st.code))), message(PercentEncode(st.message)) {}
  void AppendTo(std::vector<nghttp2_nv>& nva, const WireStatus& st) const {
    nva.push_back(Nv("grpc-status", code));
    if (!message.empty()) nva.push_back(Nv("grpc-message", message));
    if (!st.err.empty()) nva.push_back(Nv("err", st.err));
  }
  std::string code, message;
};

Stream* StreamOf(nghttp2_session* session, int32_t id) {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, id));
}

}  // namespace

// nghttp2's C callbacks, forwarding to the Connection (the session's user data).
struct Callbacks {
  static Connection* C(void* ud) { return static_cast<Connection*>(ud); }

  static int BeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* ud) {
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    return C(ud)->OnBeginHeaders(f->hd.stream_id);
  }
  static int Header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t nlen,
                    const uint8_t* value, size_t vlen, uint8_t, void* ud) {
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    return C(ud)->OnHeader(f->hd.stream_id, View(name, nlen), View(value, vlen));
  }
  static int DataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                       void* ud) {
    return C(ud)->OnDataChunk(id, data, len);
  }
  static int FrameRecv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
    if (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS) return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
      C(ud)->OnRequestHeaders(f->hd.stream_id);
    }
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    return C(ud)->OnFrameRecv(f->hd.stream_id, true, f->hd.type == NGHTTP2_HEADERS);
  }
  static int StreamClose(nghttp2_session*, int32_t id, uint32_t, void* ud) {
    return C(ud)->OnStreamClose(id);
  }
  // Copies the next piece of a stream's framed response; at its end, queues the trailers.
  static ssize_t ReadData(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* ud) {
    auto* s = static_cast<Stream*>(source->ptr);
    if (s->streaming) return ReadStreaming(session, id, buf, length, flags, s);
    const size_t n = std::min(length, s->out.size() - s->out_off);
    std::memcpy(buf, s->out.data() + s->out_off, n);
    s->out_off += n;
    C(ud)->pending_output_ -= n;
    if (s->out_off == s->out.size() && s->web != WebKind::kNone) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;  // a web answer (web_connection.cc): no trailers
      s->out.clear();
      s->out_off = 0;
    } else if (s->out_off == s->out.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      s->out.clear();  // Stream::Reset frees a large buffer
      s->out_off = 0;
      StatusFields fields(s->status);
      std::vector<nghttp2_nv> nva;
      fields.AppendTo(nva, s->status);
      if (nghttp2_submit_trailer(session, id, nva.data(), nva.size()) != 0) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
    }
    return static_cast<ssize_t>(n);
  }
  // A subscription stream: frames from its queue; deferred when the queue is empty, ended
  // (trailers) once the queue drains after EndSubscription.
  static ssize_t ReadStreaming(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                               uint32_t* flags, Stream* s) {
    size_t n = 0;
    while (n < length && !s->queue.empty()) {
      const std::string_view b = s->queue.front().bytes();
      const size_t k = std::min(length - n, b.size() - s->head_off);
      std::memcpy(buf + n, b.data() + s->head_off, k);
      n += k;
      s->head_off += k;
      if (s->head_off == b.size()) {
        s->queue_bytes -= b.size();
        s->replay_credit -= std::min(s->replay_credit, b.size());
        s->queue.pop_front();
        s->head_off = 0;
      }
    }
    if (s->queue.empty()) {
      if (s->ending && s->web != WebKind::kNone) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;  // its last piece carried the status (H2Piece)
      } else if (s->ending) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        StatusFields fields(s->status);
        std::vector<nghttp2_nv> nva;
        fields.AppendTo(nva, s->status);
        if (nghttp2_submit_trailer(session, id, nva.data(), nva.size()) != 0) {
          return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
      } else if (n == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    return static_cast<ssize_t>(n);
  }
};

void SubmitBodyResponse(nghttp2_session* session, Stream& s, const nghttp2_nv* nva, size_t n) {
  nghttp2_data_provider provider;
  provider.source.ptr = &s;
  provider.read_callback = Callbacks::ReadData;
  nghttp2_submit_response(session, s.id, nva, n, &provider);
}

Connection::Connection(GrpcServer* owner, asio::ip::tcp::socket socket, uint64_t id,
                       net::ConnectionGate::Slot slot)
    : owner_(owner),
      slot_(std::move(slot)),
      created_ms_(SystemClock::Get()->NowMillis()),
      read_epoch_(owner->sweep_epoch_),
      // Not 0: a first write that blocks before any sweep saw this connection would otherwise
      // count as stalled since the server started (closed at once past --write-timeout of uptime).
      write_epoch_(owner->sweep_epoch_),
      pipeline_(*owner->context().gateway, owner->thread(), *this,
                gateway::Pipeline::Pacing::kEveryRound),
      stream_(std::move(socket)),
      id_(id) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, Callbacks::BeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, Callbacks::Header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, Callbacks::DataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, Callbacks::FrameRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, Callbacks::StreamClose);
  nghttp2_option* options = nullptr;
  nghttp2_option_new(&options);
  // gRPC does not use stream priorities: no priority tree, no closed streams kept for it.
  nghttp2_option_set_no_closed_streams(options, 1);
  nghttp2_session_server_new2(&session_, cbs, this, options);
  nghttp2_option_del(options);
  nghttp2_session_callbacks_del(cbs);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, GrpcServer::kMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, kMaxHeaderList},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  // A connection-wide receive window large enough for a whole maximal message in flight.
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 16 << 20);
  owner_->conns_.insert(this);
  GrpcServer::LiveConnections().fetch_add(1, std::memory_order_relaxed);
  Bump(GrpcMetricsOf(owner_->thread()).connections_opened);
}

Connection::~Connection() {
  UnsubscribeAll();
  nghttp2_session_del(session_);
  GrpcServer::LiveConnections().fetch_sub(1, std::memory_order_relaxed);
}

void Connection::Start() {
  error_code ignored;
  stream_.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  // Plaintext reads and HTTP/1.1 writes are tried on the socket at once (ReadReady,
  // FlushHttp1): they must never block the loop. Asynchronous operations are unaffected.
  stream_.socket().non_blocking(true, ignored);
  stream_.Start(owner_->tls(), [self = shared_from_this()](bool ok) {
    if (!ok || self->closed_) return self->Close();
    self->Read();
  });
}

void Connection::Shutdown() {
  if (closed_ || shutting_down_) return;
  shutting_down_ = true;
  if (ws_) {  // a WebSocket is told why (1001 Going Away), then closed
    if (!h1_close_) CloseWebSocket(net::kWsGoingAway, "server shutting down");  // one close
    return Flush();
  }
  if (!saw_preface_) return Close();
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  Flush();
}

void Connection::Close(bool after_answer) {
  if (closed_) return;
  closed_ = true;
  if (!round_in_flight_) SyncReplyHold();  // else Answer gives it back
  UncountHttp1Partial();  // a request body in the middle of arriving
  UnsubscribeAll();
  // A long poll's timer holds the connection (and its place under --max-connections) until
  // it fires: cancelled now, so a closed connection goes at once.
  for (auto& entry : streams_) entry.second->web_timer.reset();
  if (after_answer) {
    stream_.CloseAfterAnswer(shared_from_this());
  } else {
    stream_.Close();
  }
  owner_->conns_.erase(this);
  Bump(GrpcMetricsOf(owner_->thread()).connections_closed);
}

void Connection::Read() {
  if (reading_ || closed_) return;
  // A request's end reads again; on a WebSocket, a frame larger than that is read whole.
  if (http1_ && h1_in_.size() >= std::max(kMaxHttp1In, ws_ ? ws_frame_need_ : 0)) return;
  reading_ = true;
  if (!stream_.is_tls()) {
    // Plaintext: wait until the socket is readable, then read into the loop's buffer. nghttp2
    // and the HTTP/1.1 parser keep what they need of it, so an idle connection (a subscriber)
    // holds no read buffer of its own (in_ serves TLS only).
    stream_.socket().async_wait(asio::ip::tcp::socket::wait_read,
                                [self = shared_from_this()](error_code ec) {
                                  self->reading_ = false;
                                  if (ec) return self->Close();
                                  self->ReadReady();
                                });
    return;
  }
  // TLS: the connection's own buffer, which the asynchronous read holds. One TLS read returns
  // one record's plaintext, at most 16 KiB: a larger buffer would never fill.
  size_t want = kTlsReadBytes;
  if (http1_) {
    // Between requests (and on a WebSocket) an HTTP/1.1 connection reads little: an idle
    // browser subscriber holds a small buffer. A request's body reads in full.
    want = h1_parser_.head_done() || !h1_in_.empty() ? kTlsReadBytes : kHttp1IdleRead;
    if (in_.size() > want) {
      in_.resize(want);
      in_.shrink_to_fit();
    }
  }
  if (in_.size() < want) in_.resize(want);
  auto on_read = [self = shared_from_this()](error_code ec, size_t n) {
    self->reading_ = false;
    if (ec) return self->Close();
    self->OnRead(self->in_.data(), n);
  };
  stream_.AsyncReadSome(asio::buffer(in_.data(), want), std::move(on_read));
}

void Connection::ReadReady() {
  if (closed_) return;
  char* buf = owner_->ReadBuffer();
  error_code ec;
  const size_t n = stream_.socket().read_some(asio::buffer(buf, kReadBytes), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return Read();
  if (ec) return Close();  // the peer closed (eof) or the socket failed
  OnRead(buf, n);
}

void Connection::CloseIfTimedOut(uint64_t epoch, int64_t now_ms) {
  if (closed_) return;
  if (!writing_ && pending_output_ == 0) write_epoch_ = epoch;
  net::SweepView v;
  v.authed = ever_authed_;
  v.age_ms = now_ms - created_ms_;
  v.quiet_ms = static_cast<int64_t>(epoch - read_epoch_) * GrpcServer::kSweepMs;
  v.stalled_ms = static_cast<int64_t>(epoch - write_epoch_) * GrpcServer::kSweepMs;
  v.idle_ok = !shutting_down_ && streams_.empty() && ready_.empty() && !round_in_flight_ &&
              subscriptions_.empty();
  const net::TimeoutKind kind = net::PastTimeout(net::ConnectionGate::options(), v);
  if (kind == net::TimeoutKind::kCount) return;
  net::ConnectionGate::Of(net::Port::kApi).CountTimeout(kind);
  LOG_DEBUG("msg=\"connection timed out\" reason={} conn={}", net::TimeoutName(kind), id_);
  // An idle peer is told (GOAWAY); a stranger or one that does not read is just closed.
  if (kind == net::TimeoutKind::kIdle) return Shutdown();
  Close();
}

void Connection::OnRead(const char* data, size_t n) {
  if (closed_) return;
  read_epoch_ = owner_->sweep_epoch_;
  if (http1_) return ReadHttp1(data, n);
  if (!saw_preface_) {
    // Tell HTTP/1.x (browsers, curl: the web front-end) from HTTP/2 by the client preface,
    // before our SETTINGS go out.
    const size_t k = std::min(n, kPreface.size());
    if (std::string_view(data, k) != kPreface.substr(0, k)) {
      http1_ = true;
      return ReadHttp1(data, n);
    }
    saw_preface_ = true;
  }
  const ssize_t rv =
      nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), n);
  if (rv < 0) {
    LOG_DEBUG("msg=\"http2 protocol error\" conn={} error=\"{}\"", id_, nghttp2_strerror(rv));
    Bump(GrpcMetricsOf(owner_->thread()).protocol_errors);
    Flush();  // nghttp2 queued a GOAWAY saying why
    shutting_down_ = true;
    return;
  }
  if (!h2_web_.empty()) {
    std::vector<std::shared_ptr<Stream>> web;
    web.swap(h2_web_);
    for (auto& sp : web) RouteH2Web(sp);
  }
  Continue();
  Flush();
  Read();
}

void Connection::Continue() {
  // The peer is not taking the replies queued so far: no new calls run until it does (reads
  // go on, so its WINDOW_UPDATEs are heard; the writes' end schedules the calls waiting).
  if (pending_output_ > kPausedOutput) return;
  pipeline_.Schedule(sched_tenant_,
                     ready_.empty() || round_in_flight_ || closed_ ? 0 : ready_.size());
}

size_t Connection::RunTurn(size_t limit) {
  const size_t n = ready_.size();
  StartCalls(limit);
  return std::min(n, limit);
}

void Connection::RefuseTurn() {
  refuse_round_ = true;  // every ready call is answered at once with the overload error
  StartCalls();
  refuse_round_ = false;
}

size_t Connection::QueuedTurnWanted() {
  // A round in flight: its end schedules what is ready.
  return closed_ || round_in_flight_ ? 0 : ready_.size();
}

void Connection::AfterTurn() {
  Flush();
  // Calls left over (the round was cut to the quantum) wait for the next turn.
  if (!round_in_flight_ && !ready_.empty() && !pipeline_.queued()) Continue();
}

std::shared_ptr<Stream> Connection::NewStream() {
  if (free_streams_.empty()) return std::make_shared<Stream>();
  std::shared_ptr<Stream> s = std::move(free_streams_.back());
  free_streams_.pop_back();
  return s;
}

void Connection::Recycle(std::shared_ptr<Stream>& s) {
  constexpr size_t kMaxPooled = 128;
  if (s == nullptr || !s->closed || s.use_count() != 1 || free_streams_.size() >= kMaxPooled) {
    return;
  }
  s->Reset();
  free_streams_.push_back(std::move(s));
}

StatusOr<const gateway::Principal*> Connection::Authenticate(const std::string& token,
                                                              int64_t now_s) {
  gateway::Gateway& gw = *owner_->context().gateway;
  if (!auth_valid_ || token != auth_token_) {
    auto p = gw.Authenticate(token);
    if (!p.ok()) return p.status();
    ever_authed_ = true;
    auth_token_ = token;
    auth_principal_ = std::move(*p);
    auth_valid_ = true;
  }
  if (Status st = gw.StillValid(auth_principal_, now_s); !st.ok()) {
    auth_valid_ = false;
    return st;
  }
  return &auth_principal_;
}

StatusOr<uint32_t> Connection::ResolveCache(uint32_t tenant, const std::string& name) {
  gateway::Gateway& gw = *owner_->context().gateway;
  const uint64_t generation = gw.CacheGeneration();
  if (generation == cached_generation_ && tenant == cached_cache_tenant_ &&
      name == cached_cache_name_) {
    return cached_cache_id_;
  }
  auto id = gw.ResolveCache(tenant, name);
  if (id.ok()) {
    cached_cache_tenant_ = tenant;
    cached_cache_name_ = name;
    cached_cache_id_ = *id;
    cached_generation_ = generation;
    gateway::Tenancy* tenancy = gw.tenancy();
    cached_cache_state_ = tenancy != nullptr ? tenancy->Find(*id) : nullptr;
  }
  return id;
}

int Connection::OnBeginHeaders(int32_t id) {
  auto s = NewStream();
  s->id = id;
  nghttp2_session_set_stream_user_data(session_, id, s.get());
  streams_[id] = std::move(s);
  return 0;
}

int Connection::OnHeader(int32_t id, std::string_view name, std::string_view value) {
  Stream* s = StreamOf(session_, id);
  if (s == nullptr || s->oversized_header) return 0;
  s->header_bytes += static_cast<uint32_t>(std::min(name.size() + value.size() + 32, kMaxHeaderList + 1));
  if (value.size() > kMaxHeaderValue || s->header_bytes > kMaxHeaderList) {
    s->oversized_header = true;
    s->web_headers.clear();
    s->web_headers.shrink_to_fit();
    return 0;
  }
  if (name == ":method") {
    s->post = value == "POST";
    if (!s->post) {  // gRPC is POST only: a browser's GET, PUT, DELETE or OPTIONS
      s->web_h2 = true;
      s->web_headers.emplace_back(":method", value);
    }
  } else if (name == ":path") {
    s->path.assign(value);
    if (value.starts_with("/cache/") || value.starts_with("/topics/") ||
        value.starts_with("/demo")) {
      s->web_h2 = true;
    }
  } else if (name == ":authority" || name == "host") {
    s->authority.assign(value);
  } else if (name == "content-type") {
    s->grpc_content_type = value.starts_with("application/grpc");
    if (!s->grpc_content_type || value.starts_with("application/grpc-web")) {
      s->web_h2 = s->web_h2 || s->grpc_content_type;  // grpc-web; other types by their path
      s->web_headers.emplace_back(name, value);
    }
  } else if (name == "origin" || name == "access-control-request-headers" ||
             name == "last-event-id" || name == "upgrade") {
    s->web_headers.emplace_back(name, value);
  } else if (name == "cache") {
    s->cache.assign(value);
  } else if (name == "authorization") {
    s->authorization.assign(value);
  } else if (name == "grpc-timeout") {
    if (auto ms = ParseTimeoutMillis(value)) s->deadline_ms = SteadyMillis() + std::max<int64_t>(*ms, 1);
  } else if (name == "grpc-encoding") {
    s->compressed_encoding = value != "identity";
  } else if (owner_->context().momento_local) {
    if (s->faults == nullptr) s->faults = std::make_unique<local::FaultHeaders>();
    s->faults->Take(name, value);
  }
  return 0;
}

int Connection::OnDataChunk(int32_t id, const uint8_t* data, size_t len) {
  Stream* s = StreamOf(session_, id);
  if (s == nullptr || s->ignore_body) return 0;
  const ServiceContext& ctx = owner_->context();
  const size_t before = s->body.size();
  // Refuse an oversized message as soon as its prefix shows it, before buffering it (a web
  // request's body is not gRPC-framed).
  if (before < kPrefixBytes && !s->web_h2) {
    std::string head = s->body;
    head.append(View(data, std::min(len, kPrefixBytes - before)));
    if (auto declared = DeclaredLength(head); declared && *declared > ctx.max_request_bytes) {
      Reject(*s, WireError(GrpcError::kRequestOverLimit, *declared, ctx.max_request_bytes));
      return 0;
    }
  }
  if (before + len > kPrefixBytes + kMaxWireMessage ||
      buffered_bodies_ + len > kMaxBufferedBodies) {
    Reject(*s, WireError(GrpcError::kConnectionBodiesFull));
    return 0;
  }
  // A connection that has not authenticated a call holds little: the token services' bodies
  // are small, and every other call was checked on its headers (OnRequestHeaders).
  if (!ever_authed_ && buffered_bodies_ + len > kMaxUnauthenticatedBodies) {
    Reject(*s, WireError(GrpcError::kUnauthenticatedBodies));
    return 0;
  }
  // And the process as a whole: request bodies being received, every connection together.
  if (!GrpcServer::ReserveRequestBytes(len, ctx.max_buffered_request_bytes)) {
    Reject(*s, WireError(GrpcError::kServerBodiesFull));
    return 0;
  }
  s->body.append(View(data, len));
  buffered_bodies_ += len;
  return 0;
}

void Connection::DropBody(Stream& s) {
  UncountBody(s);
  s.body.clear();  // its capacity stays with the stream, which the pool may reuse
}

std::string Connection::TakeBody(Stream& s) {
  UncountBody(s);
  return std::exchange(s.body, std::string());
}

void Connection::UncountBody(const Stream& s) {
  buffered_bodies_ -= s.body.size();
  GrpcServer::BufferedRequestBytes().fetch_sub(s.body.size(), std::memory_order_relaxed);
}

void Connection::OnRequestHeaders(int32_t id) {
  // Authenticated on its headers, before any of the body is read: a stranger's stream is
  // answered at once and its body ignored (never buffered). Token-service calls carry their
  // token in the body; they are checked when it is complete (and bounded meanwhile).
  // A web request (a browser's preflight, grpc-web) is answered once routed (RouteH2Web); a
  // valid token it carries still lets its body past the unauthenticated bound.
  Stream* s = StreamOf(session_, id);
  if (s == nullptr) return;
  if (!s->web_h2) return CheckAuthOnHeaders(*s);
  if (!ever_authed_) (void)Authenticate(WebTokenOf(*s), SystemClock::Get()->NowMillis() / 1000);
}

void Connection::CheckAuthOnHeaders(Stream& s) {
  if (s.ignore_body || s.answered) return;
  const Method* m = FindMethod(s.path);
  if (m == nullptr || m->kind == MethodKind::kAuth) return;
  auto principal = Authenticate(s.authorization, SystemClock::Get()->NowMillis() / 1000);
  if (!principal.ok()) Reject(s, ToWire(principal.status()));
}

int Connection::OnFrameRecv(int32_t id, bool, bool) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second->ignore_body) return 0;
  if (it->second->web_h2) {  // routed once nghttp2's read is done (OnRead)
    h2_web_.push_back(it->second);
    return 0;
  }
  if (it->second->faults != nullptr && InjectFault(it->second)) return 0;
  ready_.push_back(it->second);
  return 0;
}

bool Connection::InjectFault(const std::shared_ptr<Stream>& sp) {
  Stream& s = *sp;
  local::Fault f = local::FaultInjector::Get().Decide(s.path, *s.faults);
  if (f.stream_error) {
    // A limit of 0 messages: the stream ends before its first one.
    if (f.stream_messages == 0 && !f.error) f.error = f.stream_error;
    s.fault_stream_error = std::move(f.stream_error);
    s.fault_messages_left = f.stream_messages;
  }
  if (f.delay_ms <= 0) {
    if (!f.error) return false;
    Reject(s, std::move(*f.error));
    return true;
  }
  // Answered (or run) later; the timer holds the stream, so it is not recycled meanwhile.
  auto timer = std::make_shared<asio::steady_timer>(stream_.socket().get_executor(),
                                                    std::chrono::milliseconds(f.delay_ms));
  timer->async_wait([self = shared_from_this(), sp, timer,
                     error = std::move(f.error)](boost::system::error_code) mutable {
    if (self->closed_ || sp->closed || sp->answered) return;
    if (error) {
      self->Reject(*sp, std::move(*error));
    } else {
      self->ready_.push_back(sp);
      self->Continue();
    }
    self->Flush();
  });
  return true;
}

int Connection::OnStreamClose(int32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return 0;
  std::shared_ptr<Stream> sp = std::move(it->second);
  streams_.erase(it);  // a stream in a round stays alive through in_round_
  Stream& s = *sp;
  s.closed = true;
  s.web_timer.reset();  // a long poll's: cancelled
  if (s.sub_id != 0) {
    owner_->context().topics->Unsubscribe(owner_->thread(), s.sub_id);
    subscriptions_.erase(s.sub_id);
    s.sub_id = 0;
    s.queue.clear();
    s.queue_bytes = 0;
  }
  DropBody(s);
  pending_output_ -= s.out.size() - s.out_off;
  s.out_off = s.out.size();
  Recycle(sp);
  return 0;
}

void Connection::Reject(Stream& s, WireStatus status) {
  s.status = std::move(status);
  s.out.clear();
  Respond(s);
}

void Connection::Respond(Stream& s) {
  if (closed_ || s.closed || s.answered) return;
  s.answered = true;
  s.ignore_body = true;
  {
    GrpcThreadMetrics& m = GrpcMetricsOf(owner_->thread());
    const auto methods = AllMethods();
    const size_t id = s.method != nullptr
                          ? std::min(static_cast<size_t>(s.method - methods.data()),
                                     kMaxMethodIds - 1)
                          : kMaxMethodIds - 1;
    Bump(m.calls[id]);
    if (s.status.code != GrpcCode::kOk) Bump(m.errors[id]);
  }
  DropBody(s);
  if (s.status.code != GrpcCode::kOk) s.out.clear();
  // A web answer; also an HTTP/2 web request refused before it was routed (its body's bounds).
  if (s.web != WebKind::kNone || s.web_h2) return RespondWeb(s);
  if (s.out.empty()) {
    // Trailers-only: the status travels in the one HEADERS frame, which ends the stream.
    std::vector<nghttp2_nv> nva = {Static(":status", "200"),
                                   Static("content-type", "application/grpc")};
    StatusFields fields(s.status);
    fields.AppendTo(nva, s.status);
    nghttp2_submit_response(session_, s.id, nva.data(), nva.size(), nullptr);
  } else {
    const nghttp2_nv nva[] = {Static(":status", "200"),
                              Static("content-type", "application/grpc")};
    pending_output_ += s.out.size();
    nghttp2_data_provider provider;
    provider.source.ptr = &s;
    provider.read_callback = Callbacks::ReadData;
    nghttp2_submit_response(session_, s.id, nva, std::size(nva), &provider);
  }
}

void Connection::StartCalls(size_t limit) {
  if (round_in_flight_ || ready_.empty() || closed_ || pending_output_ > kPausedOutput) return;
  const ServiceContext& ctx = owner_->context();
  pipeline_.Begin();
  std::vector<gateway::Call>& calls = pipeline_.calls();
  in_round_.clear();
  const int64_t now_ms = pipeline_.now_ms();
  const int64_t steady = static_cast<int64_t>(pipeline_.start_ns() / 1'000'000);
  std::vector<std::shared_ptr<Stream>>& ready = round_scratch_;
  ready.clear();
  if (ready_.size() <= limit) {
    ready.swap(ready_);
  } else {
    // Cut to the scheduler's quantum: the rest keep their order for the next round.
    ready.assign(std::make_move_iterator(ready_.begin()),
                 std::make_move_iterator(ready_.begin() + static_cast<std::ptrdiff_t>(limit)));
    ready_.erase(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(limit));
  }
  for (auto& sp : ready) {
    Stream& s = *sp;
    if (s.closed || s.answered) continue;
    auto fail = [&](GrpcError e, std::string_view detail = {}) {
      Reject(s, WireError(e, detail));
    };
    if (refuse_round_) {
      // Overload: this tenant's queue on this loop is full (the gateway's words).
      Reject(s, ToWire(Status(Code::kResourceExhausted, std::string(gateway::kOverloadedText))));
      continue;
    }
    if (s.phase == 1) {  // the second round of a two-round method: checked in the first
      if (s.deadline_ms != 0 && steady >= s.deadline_ms) {
        fail(GrpcError::kDeadlineExceeded);
        continue;
      }
      auto principal = Authenticate(s.authorization, now_ms / 1000);
      if (!principal.ok()) {
        Reject(s, ToWire(principal.status()));
        continue;
      }
      const size_t first = calls.size();
      Status st = s.method->prepare2(ctx, s, calls, now_ms);
      if (st.ok() && !gateway::Pipeline::Permitted(
                         **principal, s.cache,
                         std::span<const gateway::Call>(calls).subspan(first), s.method->access)) {
        st = Error(GrpcError::kNotPermitted);
      }
      if (!st.ok()) {
        calls.resize(first);
        Reject(s, ToWire(st));
        continue;
      }
      s.first_call = static_cast<uint32_t>(first);
      s.num_calls = static_cast<uint32_t>(calls.size() - first);
      for (size_t i = first; i < calls.size(); ++i) calls[i].deadline_ms = s.deadline_ms;
      in_round_.push_back(std::move(sp));
      continue;
    }
    if (s.oversized_header) {
      fail(GrpcError::kHeaderTooLong);
      continue;
    }
    if (!s.post) {
      fail(GrpcError::kNotPost);
      continue;
    }
    if (!s.grpc_content_type) {
      fail(GrpcError::kNotGrpcContentType);
      continue;
    }
    s.method = FindMethod(s.path);
    if (s.method == nullptr) {
      fail(GrpcError::kUnknownMethod, s.path);
      continue;
    }
    if (s.deadline_ms != 0 && steady >= s.deadline_ms) {
      fail(GrpcError::kDeadlineExceeded);
      continue;
    }
    auto message = UnaryMessage(s.body);
    if (!message.ok()) {
      Reject(s, ToWire(message.status()));
      continue;
    }
    if (s.method->kind == MethodKind::kAuth) {  // authenticated by the body's token
      // The token services check the body's token themselves; a client of theirs (the SDK's
      // AuthClient) makes no other call, so it counts as past the pre-auth timeout.
      ever_authed_ = true;
      auto self = shared_from_this();
      s.method->control(ctx, owner_->thread(), s, *message, [self, sp] {
        self->Respond(*sp);
        self->Flush();
      });
      continue;
    }
    auto principal = Authenticate(s.authorization, now_ms / 1000);
    if (!principal.ok()) {
      Reject(s, ToWire(principal.status()));
      continue;
    }
    const auth::Permissions& perms = (*principal)->perms;
    s.tenant = (*principal)->tenant;
    sched_tenant_ = s.tenant;
    s.publisher_id = (*principal)->token_id;
    s.perms = perms.super_user ? nullptr : &perms;
    if (s.method->kind == MethodKind::kControl) {
      if (s.method->access == auth::Access::kControl && !perms.super_user) {
        fail(GrpcError::kNeedsSuperUser);
        continue;
      }
      auto self = shared_from_this();
      s.method->control(ctx, owner_->thread(), s, *message, [self, sp] {
        self->Respond(*sp);
        self->Flush();
      });
      continue;
    }
    if (s.method->decode != nullptr) {  // Pubsub: the cache is named in the body
      if (Status st = s.method->decode(s, *message); !st.ok()) {
        Reject(s, ToWire(st));
        continue;
      }
      if (s.cache.empty()) {
        fail(GrpcError::kNoCacheName);
        continue;
      }
    } else if (s.cache.empty()) {
      fail(GrpcError::kNoCacheHeader);
      continue;
    }
    auto cache_id = ResolveCache(s.tenant, s.cache);
    if (!cache_id.ok()) {
      fail(GrpcError::kNoSuchCache, s.cache);
      continue;
    }
    s.cache_id = *cache_id;
    s.cache_state = cached_cache_state_;
    if (s.method->kind == MethodKind::kSubscribe) {
      const SubscribeArgs args = SubscribeRequestOf(s);
      if (!perms.super_user && !auth::Allows(perms, s.cache, args.topic, s.method->access)) {
        fail(GrpcError::kSubscribeNotPermitted);
        continue;
      }
      auto sub = ctx.topics == nullptr
                     ? StatusOr<topics::SubId>(Error(GrpcError::kTopicsDisabled))
                     : ctx.topics->Subscribe(owner_->thread(), this, s.cache_id, args.topic,
                                             args.resume_at, args.page, /*heartbeat=*/true,
                                             /*tag=*/&s, (*principal)->expires_at);
      if (!sub.ok()) {
        Reject(s, TopicsWireStatus(sub.status()));
        continue;
      }
      // Answered by OnReady once the topic's owner has joined it; the request is done with.
      s.sub_id = *sub;
      s.ignore_body = true;
      DropBody(s);
      subscriptions_[s.sub_id] = std::move(sp);
      continue;
    }
    const size_t first = calls.size();
    Status st = s.method->prepare(ctx, s, *message, calls, now_ms);
    s.perms = nullptr;  // the principal may change with the next stream's token
    if (!st.ok()) {
      calls.resize(first);
      Reject(s, TopicsWireStatus(st));
      continue;
    }
    // The pipeline's checks: permission, the TTL cap, admission (a refusal drops the calls).
    const gateway::Verdict verdict =
        pipeline_.Verify(**principal, s.cache, s.cache_state.get(), first, s.method->access,
                         s.body.size(), /*admit_empty=*/true);
    if (verdict == gateway::Verdict::kDenied) {
      fail(GrpcError::kNotPermitted);
      continue;
    }
    if (verdict == gateway::Verdict::kRefused) {
      const gateway::Refusal r = pipeline_.refusal();
      WireStatus w;
      w.code = ToWire(Status(gateway::RefusalCode(r))).code;
      w.message = pipeline_.RefusalText(*s.cache_state, r, "", /*name_cache=*/false);
      w.err = gateway::RefusalErr(r);
      Reject(s, std::move(w));
      continue;
    }
    // The calls borrow from the decoded request, not the body: release it now.
    DropBody(s);
    s.first_call = static_cast<uint32_t>(first);
    s.num_calls = static_cast<uint32_t>(calls.size() - first);
    for (size_t i = first; i < calls.size(); ++i) calls[i].deadline_ms = s.deadline_ms;
    in_round_.push_back(std::move(sp));
  }
  for (auto& sp : ready) Recycle(sp);  // answered at once and already closed
  ready.clear();
  if (in_round_.empty()) return;
  round_in_flight_ = true;
  // To the shards with a grant of reply memory (a small request, GetBatch of one large key
  // many times, cannot build a huge reply), paced if it published (gateway/pipeline.h). The
  // grant is held until the replies are handed to HTTP/2 (SyncReplyHold).
  pipeline_.Submit(sched_tenant_, [self = shared_from_this()] { self->Answer(); });
}

void Connection::Answer() {
  if (RetryNotRun()) return;
  round_in_flight_ = false;
  const ServiceContext& ctx = owner_->context();
  pipeline_.Finishing();
  const int64_t steady = static_cast<int64_t>(pipeline_.finish_ns() / 1'000'000);
  std::vector<gateway::Call>& calls = pipeline_.calls();
  for (auto& sp : in_round_) {
    Stream& s = *sp;
    // Latency to the cache's usage (a two-round call's, once).
    if (s.phase == 0) pipeline_.Charge(s.cache_state.get(), 0, 1);
    if (!s.closed && !closed_) {
      if (s.deadline_ms != 0 && steady >= s.deadline_ms) {
        s.status = ToWire(Status(Code::kDeadlineExceeded));
      } else if (s.phase == 0 && s.method->followup != nullptr &&
                 s.method->followup(ctx, s, &calls[s.first_call])) {
        s.phase = 1;  // answered after a second round
        ready_.push_back(sp);
        continue;
      } else {
        const size_t before = s.out.size();
        s.method->finish(ctx, s, &calls[s.first_call]);
        pipeline_.Charge(s.cache_state.get(), s.out.size() - before, 0);  // bytes answered
      }
      Respond(s);
    }
  }
  for (auto& sp : in_round_) Recycle(sp);  // closed while in the round
  in_round_.clear();
  // The replies are on their streams now: free the calls' copies (a second round's
  // followup kept what it needs in its stream).
  calls.clear();
  SyncReplyHold();
  if (closed_) return;
  Continue();
  Flush();
  Read();
}

void Connection::Flush() {
  if (http1_) return FlushHttp1();
  if (writing_ || closed_) return;
  out_.clear();
  while (out_.size() < kWriteChunk) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      LOG_DEBUG("msg=\"http2 send failed\" conn={} error=\"{}\"", id_, nghttp2_strerror(n));
      return Close();
    }
    if (n == 0) break;
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  if (out_.empty()) return MaybeFinish();
  writing_ = true;
  auto on_written = [self = shared_from_this()](error_code ec, size_t) {
    self->writing_ = false;
    if (ec) return self->Close();
    self->write_epoch_ = self->owner_->sweep_epoch_;
    self->SyncReplyHold();
    if (!self->ready_.empty() && !self->round_in_flight_) self->Continue();
    self->Flush();
    self->Read();
  };
  stream_.AsyncWrite(asio::buffer(out_), std::move(on_written));
}

bool Connection::RetryNotRun() {
  // Calls the round's grant refused (reply_memory.h) run once more at once, with the most a
  // round may have, if the grant was less; the calls that ran keep their replies (held
  // meanwhile). A call refused again is answered "reply too large".
  const bool any = pipeline_.AnyNotRun();
  gateway::ReplyGrant& grant = pipeline_.reply_grant();
  if (!any || reply_retried_ ||
      grant.last_grant() >= gateway::ReplyMemory::Get().options().max_round_bytes ||
      grant.tenant() != sched_tenant_) {
    reply_retried_ = false;
    uint64_t used = 0;
    for (const gateway::Call& c : pipeline_.calls()) used += c.reply.footprint();
    grant.Learn(used, any);
    return false;
  }
  reply_retried_ = true;
  return pipeline_.Resubmit(0, static_cast<uint32_t>(pipeline_.calls().size()),
                            /*largest=*/true, [self = shared_from_this()] { self->Answer(); });
}

void Connection::SyncReplyHold() {
  // Hold only what still waits for the peer (queued on streams, or in the write in flight).
  if (round_in_flight_) return;
  pipeline_.reply_grant().Keep(closed_ ? 0 : pending_output_ + (writing_ ? out_.size() : 0));
}

void Connection::MaybeFinish() {
  // After a GOAWAY (ours or the peer's) with no stream left, or a fatal protocol error.
  if (round_in_flight_) return;
  const bool idle_after_goaway = shutting_down_ && streams_.empty();
  if (!nghttp2_session_want_write(session_) &&
      (idle_after_goaway || !nghttp2_session_want_read(session_))) {
    Close(/*after_answer=*/true);
  }
}

// ---- Subscription streams ----------------------------------------------------------------

Stream* Connection::SubscriptionStream(topics::SubId id) {
  auto it = subscriptions_.find(id);
  if (it == subscriptions_.end() || it->second->closed || closed_) return nullptr;
  return it->second.get();
}

void Connection::OnReady(topics::SubId id) {
  Stream* s = SubscriptionStream(id);
  if (s == nullptr) return;
  s->answered = true;
  s->streaming = true;
  s->replaying = true;
  Bump(GrpcMetricsOf(owner_->thread()).calls[std::min(
      static_cast<size_t>(s->method - AllMethods().data()), kMaxMethodIds - 1)]);
  if (s->web != WebKind::kNone) return WebSubscribed(*s);
  const nghttp2_nv nva[] = {Static(":status", "200"), Static("content-type", "application/grpc")};
  nghttp2_data_provider provider;
  provider.source.ptr = s;
  provider.read_callback = Callbacks::ReadData;
  nghttp2_submit_response(session_, s->id, nva, std::size(nva), &provider);
  // The SDK's subscribe() resolves on the first message: a heartbeat says "subscribed".
  Push(*s, Stream::Chunk{nullptr, std::string(HeartbeatFrame()), {}});
}

void Connection::OnDiscontinuity(topics::SubId id, uint64_t last_seq, uint64_t new_seq,
                                 uint64_t new_page) {
  if (Stream* s = SubscriptionStream(id)) {
    if (s->web != WebKind::kNone) return Push(*s, WebDiscontinuity(*s, last_seq, new_seq, new_page));
    Push(*s, Stream::Chunk{nullptr, DiscontinuityFrame(last_seq, new_seq, new_page), {}});
  }
}

void Connection::OnItem(topics::SubId id, const topics::MessagePtr& message) {
  if (Stream* s = SubscriptionStream(id)) OnItemTagged(id, s, message);
}

void Connection::Prefetch(void* tag) const {
  // The hub prefetched this object's first line (h1_out_'s pointer and size are in it) and
  // the stream's first lines: now where the next frame goes.
  (void)tag;
  if (http1_) __builtin_prefetch(h1_out_.data() + h1_out_.size(), 1);
}

void Connection::OnReplayed(topics::SubId id) {
  if (Stream* s = SubscriptionStream(id)) {
    // The replay is bounded by the topic's ring, and a resuming reader needs all of it: only
    // what arrives live counts against the slow-reader bound.
    s->replaying = false;
    s->replay_credit = s->queue_bytes;
  }
}

void Connection::OnItemTagged(topics::SubId id, void* tag, const topics::MessagePtr& message) {
  // The tag is the stream: subscriptions_ holds it until the subscription is removed.
  auto* s = static_cast<Stream*>(tag);
  if (s->sub_id != id || s->closed || closed_) return;
  const ServiceContext& ctx = owner_->context();
  const std::string_view wire =
      message->wire(UsesJson(s->web) ? ctx.topic_json_encoding : ctx.topic_encoding);
  if (WebItemNow(*s)) {  // an HTTP/1.1 web subscriber keeping up
    AppendWebItem(*s, message.get(), wire);
    return ScheduleFlush();
  }
  Push(*s, Stream::Chunk{message, {}, wire});
}

void Connection::OnHeartbeat(topics::SubId id) {
  if (Stream* s = SubscriptionStream(id); s != nullptr && s->queue.empty()) {
    if (s->web == WebKind::kLongPoll) return;  // answered by an item or its timer
    Push(*s, s->web != WebKind::kNone ? WebHeartbeat(*s)
                                      : Stream::Chunk{nullptr, std::string(HeartbeatFrame()), {}});
  }
}

void Connection::OnEnd(topics::SubId id, const Status& why) {
  auto it = subscriptions_.find(id);
  if (it == subscriptions_.end()) return;
  std::shared_ptr<Stream> sp = std::move(it->second);
  subscriptions_.erase(it);
  sp->sub_id = 0;  // already removed by the hub
  if (sp->closed || closed_) return;
  EndSubscription(*sp, TopicsWireStatus(why));
}

void Connection::Push(Stream& s, Stream::Chunk chunk) {
  if (s.ending) return;
  if (WebItemNow(s)) {
    AppendWebItem(s, chunk.message.get(), chunk.bytes());
    return ScheduleFlush();
  }
  if (!http1_ && s.web != WebKind::kNone && s.web != WebKind::kLongPoll) {
    chunk = H2Piece(s, std::move(chunk));
  }
  const size_t n = chunk.bytes().size();
  const uint64_t limit = owner_->context().topics->options().subscriber_queue_bytes;
  const size_t counted = s.queue_bytes - std::min(s.replay_credit, s.queue_bytes);
  if (!s.replaying && counted + n > limit && !s.queue.empty()) {
    // The reader fell behind: cut it off rather than hold the publisher or grow without
    // bound. It resumes from its last sequence (replayed, or told of the gap).
    owner_->context().topics->NoteSlowSubscriber();
    if (s.sub_id != 0) {
      owner_->context().topics->Unsubscribe(owner_->thread(), s.sub_id);
      subscriptions_.erase(s.sub_id);
      s.sub_id = 0;
    }
    // A frame nghttp2 has started sending must be finished, or the stream's framing breaks.
    while (s.queue.size() > (s.head_off > 0 ? 1u : 0u)) {
      s.queue_bytes -= s.queue.back().bytes().size();
      s.queue.pop_back();
    }
    EndSubscription(s, WireError(GrpcError::kSubscriberFellBehind, std::to_string(limit)));
    return;
  }
  s.queue_bytes += n;
  s.queue.push_back(std::move(chunk));
  if (s.fault_stream_error && --s.fault_messages_left == 0) {
    // --momento-local: the injected end, after the messages its metadata allowed.
    if (s.sub_id != 0) {
      owner_->context().topics->Unsubscribe(owner_->thread(), s.sub_id);
      subscriptions_.erase(s.sub_id);
      s.sub_id = 0;
    }
    WireStatus end = std::move(*s.fault_stream_error);
    s.fault_stream_error.reset();
    EndSubscription(s, std::move(end));
    return;
  }
  Wake(s);
}

void Connection::EndSubscription(Stream& s, WireStatus status) {
  if (!s.streaming) {  // not answered yet: trailers-only
    Reject(s, std::move(status));
    Flush();
    return;
  }
  s.status = std::move(status);
  if (!http1_ && s.web != WebKind::kNone && s.web != WebKind::kLongPoll) {
    // HTTP/2 web answers end in their body (grpc-web's trailer frame, SSE's error event).
    Stream::Chunk last = H2Piece(s, Stream::Chunk{nullptr, {}, {}});
    if (!last.own.empty()) {
      s.queue_bytes += last.own.size();
      s.queue.push_back(std::move(last));
    }
  }
  s.ending = true;
  Wake(s);
}

void Connection::Wake(Stream& s) {
  if (http1_) return ScheduleFlush();
  if (s.web == WebKind::kLongPoll) {
    // Answered whole, after this delivery's items are all in (a replay comes in a burst).
    auto it = streams_.find(s.id);
    if (it == streams_.end()) return;
    asio::post(stream_.socket().get_executor(), [self = shared_from_this(), sp = it->second] {
      if (sp->closed || self->closed_) return;
      self->FinishLongPoll(*sp);
      self->Flush();
    });
    return;
  }
  if (s.deferred) {
    s.deferred = false;
    nghttp2_session_resume_data(session_, s.id);
  }
  ScheduleFlush();
}

void Connection::ScheduleFlush() {
  // Many subscriptions of this connection usually get the same message in one delivery: one
  // flush after all of them, not one write per stream.
  if (flush_posted_ || closed_) return;
  flush_posted_ = true;
  asio::post(stream_.socket().get_executor(), [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->Flush();
  });
}

void Connection::UnsubscribeAll() {
  if (subscriptions_.empty()) return;
  topics::Topics* t = owner_->context().topics;
  for (auto& [id, sp] : subscriptions_) {
    t->Unsubscribe(owner_->thread(), id);
    sp->sub_id = 0;
  }
  subscriptions_.clear();
}

}  // namespace cellar::grpc
