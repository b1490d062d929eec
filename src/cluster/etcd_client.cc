#include "cluster/etcd_client.h"

#include <fmt/format.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/logging.h"

namespace cellar::cluster {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr size_t kPrefixBytes = 5;         // gRPC: flag byte + 4-byte big-endian length
constexpr size_t kWriteChunk = 64 * 1024;  // bytes handed to one socket write
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxGrpcMessage = 4096;  // kept of a grpc-message trailer
constexpr size_t kMaxUnackedKeepAlives = 4;

void AppendFramed(std::string& out, const std::string& msg) {
  const auto n = static_cast<uint32_t>(msg.size());
  const char prefix[kPrefixBytes] = {0, static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                                     static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(prefix, kPrefixBytes);
  out.append(msg);
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// grpc-message is percent-encoded; a malformed escape is kept as it is.
std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < kMaxGrpcMessage; ++i) {
    if (s[i] == '%' && i + 2 < s.size() && Hex(s[i + 1]) >= 0 && Hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(Hex(s[i + 1]) * 16 + Hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

nghttp2_nv Nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

struct Endpoint {
  std::string host, port;
};

StatusOr<Endpoint> ParseEndpoint(std::string_view url) {
  constexpr std::string_view kHttp = "http://";
  if (url.substr(0, kHttp.size()) != kHttp) {
    return Status(Code::kInvalidArgument,
                  fmt::format("etcd endpoint \"{}\": only http:// (h2c) is supported", url));
  }
  std::string_view rest = url.substr(kHttp.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
    return Status(Code::kInvalidArgument,
                  fmt::format("etcd endpoint \"{}\": expected http://HOST:PORT", url));
  }
  return Endpoint{std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))};
}

}  // namespace

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<uint8_t>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key from `prefix` on (etcd's convention)
}

Status FromGrpcStatus(int grpc_code, std::string_view grpc_message, std::string_view method) {
  if (grpc_code == 0) return Status::Ok();
  // gRPC code (0..16) -> ours. UNKNOWN, INTERNAL, DATA_LOSS and anything else: kInternal.
  static constexpr Code kByGrpcCode[] = {
      Code::kOk,
      Code::kUnavailable,         // 1 CANCELLED
      Code::kInternal,            // 2 UNKNOWN
      Code::kInvalidArgument,     // 3
      Code::kDeadlineExceeded,    // 4
      Code::kNotFound,            // 5 e.g. "etcdserver: requested lease not found"
      Code::kAlreadyExists,       // 6
      Code::kPermissionDenied,    // 7
      Code::kResourceExhausted,   // 8
      Code::kFailedPrecondition,  // 9
      Code::kFailedPrecondition,  // 10 ABORTED
      Code::kFailedPrecondition,  // 11 OUT_OF_RANGE: e.g. a compacted revision
      Code::kUnimplemented,       // 12
      Code::kInternal,            // 13 INTERNAL
      Code::kUnavailable,         // 14 e.g. "etcdserver: no leader"
      Code::kInternal,            // 15 DATA_LOSS
      Code::kUnauthenticated,     // 16
  };
  Code code = grpc_code > 0 && grpc_code < static_cast<int>(std::size(kByGrpcCode))
                  ? kByGrpcCode[grpc_code]
                  : Code::kInternal;
  // Size refusals by etcd ("etcdserver: request is too large") or by its gRPC layer.
  if (grpc_message.find("request is too large") != std::string_view::npos ||
      grpc_message.find("message larger than max") != std::string_view::npos) {
    code = Code::kTooLarge;
  }
  return Status(code, fmt::format("etcd {}: {} (grpc-status {})", method, grpc_message, grpc_code));
}

// One gRPC call: one HTTP/2 stream. Owned by the Impl (calls_, then by_stream_ while nghttp2
// knows its stream); callbacks posted to the user hold it only to check `silent`.
struct Call {
  std::string method;  // "/etcdserverpb.KV/Range"
  bool streaming = false;
  SteadyClock::time_point deadline{};  // unary: the whole call; stream: until the first message
  std::unique_ptr<asio::steady_timer> timer;
  // Request bytes (framed) and how far nghttp2 has taken them.
  std::string out;
  size_t out_off = 0;
  bool deferred = false;
  // Response bytes not yet cut into messages (at most one message and its prefix).
  std::string in;
  int32_t stream_id = -1;
  int http_status = 0;
  int grpc_status = -1;
  std::string grpc_message;
  bool finished = false;
  bool silent = false;               // cancelled by the caller: no more callbacks
  std::optional<std::string> reply;  // unary
  // A non-OK Status ends the call with it (and resets the stream).
  std::function<Status(const std::shared_ptr<Call>& self, std::string_view msg)> on_message;
  std::function<void(Status)> on_finish;  // exactly once; posts the user's callback
};

struct EtcdClient::Impl : std::enable_shared_from_this<EtcdClient::Impl> {
  Impl(asio::io_context& io, EtcdOptions options)
      : io_(io), options_(std::move(options)), resolver_(io), socket_(io), connect_timer_(io) {}

  ~Impl() {
    if (session_ != nullptr) nghttp2_session_del(session_);
  }

  // ---- calls ----

  std::shared_ptr<Call> NewCall(std::string method, bool streaming, SteadyClock::duration budget) {
    auto call = std::make_shared<Call>();
    call->method = std::move(method);
    call->streaming = streaming;
    call->deadline = SteadyClock::now() + budget;
    return call;
  }

  // Posts fn() unless the call was cancelled by the caller by then.
  template <typename F>
  void Post(std::shared_ptr<Call> call, F fn) {
    asio::post(io_, [call = std::move(call), fn = std::move(fn)]() mutable {
      if (!call->silent) fn();
    });
  }

  std::string_view Short(const Call& c) const {
    std::string_view m = c.method;
    const size_t dot = m.find('.');
    return dot == std::string_view::npos ? m : m.substr(dot + 1);  // "KV/Range"
  }

  void Start(const std::shared_ptr<Call>& call) {
    if (closed_) return Finish(call, Status(Code::kUnavailable, "etcd client closed"));
    if (calls_.size() >= options_.max_calls) {
      return Finish(call, Status(Code::kResourceExhausted,
                                 fmt::format("etcd {}: {} calls in flight already (max_calls)",
                                             Short(*call), calls_.size())));
    }
    calls_.insert(call);
    calls_started_.fetch_add(1, std::memory_order_relaxed);
    open_calls_.store(calls_.size(), std::memory_order_relaxed);
    call->timer = std::make_unique<asio::steady_timer>(io_, call->deadline);
    call->timer->async_wait([self = shared_from_this(),
                             weak = std::weak_ptr<Call>(call)](error_code ec) {
      auto c = weak.lock();
      if (ec || !c || c->finished) return;
      const auto what = c->streaming ? "no answer from etcd in time" : "deadline exceeded";
      self->Finish(
          c, Status(Code::kDeadlineExceeded, fmt::format("etcd {}: {} (state: {})", self->Short(*c),
                                                         what, self->StateName())));
      self->Flush();
    });
    if (state_ == State::kConnected) {
      Submit(call);
      Flush();
      return;
    }
    pending_.push_back(call);
    if (state_ == State::kIdle) Connect();
  }

  // Ends a call once: its internal completion runs (which posts the user's callback); its
  // stream, if still open, is reset.
  void Finish(const std::shared_ptr<Call>& call, Status status) {
    if (call->finished) return;
    call->finished = true;
    if (call->timer) call->timer->cancel();
    calls_.erase(call);
    open_calls_.store(calls_.size(), std::memory_order_relaxed);
    // A stream never ends well unless its caller cancels it (then it is silent).
    if ((!status.ok() || call->streaming) && !call->silent) {
      const Code code = status.ok() ? Code::kUnavailable : status.code();
      errors_[static_cast<size_t>(code)].fetch_add(1, std::memory_order_relaxed);
    }
    std::erase(pending_, call);
    if (call->stream_id > 0 && session_ != nullptr && by_stream_.count(call->stream_id) != 0) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
    }
    if (call->on_finish) call->on_finish(std::move(status));
  }

  // The status a closed stream ended with: its grpc-status, else why there is none.
  Status StreamStatus(const Call& c, uint32_t error_code) const {
    if (c.grpc_status >= 0) return FromGrpcStatus(c.grpc_status, c.grpc_message, Short(c));
    if (error_code != NGHTTP2_NO_ERROR) {
      return Status(Code::kUnavailable, fmt::format("etcd {}: stream reset ({})", Short(c),
                                                    nghttp2_http2_strerror(error_code)));
    }
    if (c.http_status != 200) {
      return Status(Code::kUnavailable, fmt::format("etcd {}: HTTP status {} without grpc-status",
                                                    Short(c), c.http_status));
    }
    return Status(Code::kInternal, fmt::format("etcd {}: no grpc-status trailer", Short(c)));
  }

  void Submit(const std::shared_ptr<Call>& call) {
    const std::string authority = endpoint_.host + ":" + endpoint_.port;
    std::vector<nghttp2_nv> nva = {Nv(":method", "POST"),
                                   Nv(":scheme", "http"),
                                   Nv(":path", call->method),
                                   Nv(":authority", authority),
                                   Nv("content-type", "application/grpc"),
                                   Nv("te", "trailers")};
    std::string timeout;
    if (call->streaming) {
      // A member without a leader refuses the stream instead of leaving it quiet.
      nva.push_back(Nv("hasleader", "true"));
    } else {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(call->deadline -
                                                                              SteadyClock::now());
      timeout = fmt::format("{}m", std::clamp<int64_t>(left.count(), 1, 99'999'999));
      nva.push_back(Nv("grpc-timeout", timeout));
    }
    nghttp2_data_provider provider{};
    provider.read_callback = &Impl::ReadData;
    const int32_t id =
        nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &provider, nullptr);
    if (id < 0) {
      return Finish(call, Status(Code::kInternal, fmt::format("etcd {}: submit failed: {}",
                                                              Short(*call), nghttp2_strerror(id))));
    }
    call->stream_id = id;
    by_stream_[id] = call;
  }

  // Queues another message on an open stream (watch, keepalive).
  void Send(const std::shared_ptr<Call>& call, const std::string& msg) {
    if (call->finished) return;
    if (call->out_off == call->out.size()) {
      call->out.clear();
      call->out_off = 0;
    }
    if (call->out.size() - call->out_off + msg.size() + kPrefixBytes >
        options_.max_stream_queue_bytes) {
      Finish(call, Status(Code::kResourceExhausted,
                          fmt::format("etcd {}: more than {} bytes queued to send", Short(*call),
                                      options_.max_stream_queue_bytes)));
      return Flush();
    }
    AppendFramed(call->out, msg);
    if (call->deferred && session_ != nullptr && call->stream_id > 0) {
      call->deferred = false;
      nghttp2_session_resume_data(session_, call->stream_id);
    }
    Flush();
  }

  // Cuts complete messages off a stream's received bytes.
  void Consume(const std::shared_ptr<Call>& call) {
    while (!call->finished && call->in.size() >= kPrefixBytes) {
      const auto* p = reinterpret_cast<const uint8_t*>(call->in.data());
      const size_t len = (size_t{p[1]} << 24) | (size_t{p[2]} << 16) | (size_t{p[3]} << 8) | p[4];
      if (p[0] != 0) {
        return Finish(
            call, Status(Code::kInternal,
                         fmt::format("etcd {}: compressed message (not asked for)", Short(*call))));
      }
      if (len > options_.max_response_bytes) {
        return Finish(call, Status(Code::kResourceExhausted,
                                   fmt::format("etcd {}: a {}-byte response exceeds "
                                               "max_response_bytes ({})",
                                               Short(*call), len, options_.max_response_bytes)));
      }
      if (call->in.size() < kPrefixBytes + len) return;
      Status st = call->on_message(call, std::string_view(call->in).substr(kPrefixBytes, len));
      call->in.erase(0, kPrefixBytes + len);
      if (!st.ok()) return Finish(call, std::move(st));
    }
  }

  // ---- nghttp2 callbacks ----

  static Impl* Self(void* ud) { return static_cast<Impl*>(ud); }

  std::shared_ptr<Call> Lookup(int32_t id) {
    auto it = by_stream_.find(id);
    return it == by_stream_.end() ? nullptr : it->second;
  }

  static ssize_t ReadData(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* ud) {
    auto call = Self(ud)->Lookup(id);
    if (!call) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    const size_t n = std::min(length, call->out.size() - call->out_off);
    std::memcpy(buf, call->out.data() + call->out_off, n);
    call->out_off += n;
    if (call->out_off == call->out.size()) {
      if (!call->streaming) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;  // a unary request ends with its one message
      } else if (n == 0) {
        call->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    return static_cast<ssize_t>(n);
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t nlen,
                      const uint8_t* value, size_t vlen, uint8_t, void* ud) {
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    auto call = Self(ud)->Lookup(f->hd.stream_id);
    if (!call) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), nlen);
    const std::string_view v(reinterpret_cast<const char*>(value), vlen);
    if (n == ":status") {
      call->http_status = std::atoi(std::string(v).c_str());
    } else if (n == "grpc-status") {
      call->grpc_status = std::atoi(std::string(v.substr(0, 4)).c_str());
    } else if (n == "grpc-message") {
      call->grpc_message = PercentDecode(v);
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                         void* ud) {
    Impl* self = Self(ud);
    auto call = self->Lookup(id);
    if (!call || call->finished) return 0;
    call->in.append(reinterpret_cast<const char*>(data), len);
    self->Consume(call);
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* ud) {
    Impl* self = Self(ud);
    auto call = self->Lookup(id);
    if (!call) return 0;
    self->by_stream_.erase(id);
    if (!call->finished) self->Finish(call, self->StreamStatus(*call, error_code));
    return 0;
  }

  // ---- connection ----

  enum class State { kIdle, kConnecting, kConnected };

  std::string_view StateName() const {
    switch (state_) {
      case State::kIdle:
        return "not connected";
      case State::kConnecting:
        return "connecting";
      case State::kConnected:
        return "connected";
    }
    return "?";
  }

  void Connect() {
    state_ = State::kConnecting;
    attempts_ = 0;
    last_error_.clear();
    TryEndpoint();
  }

  void TryEndpoint() {
    if (closed_) return;
    if (options_.endpoints.empty() || attempts_ >= options_.endpoints.size()) {
      state_ = State::kIdle;
      const Status st(Code::kUnavailable,
                      options_.endpoints.empty()
                          ? std::string("etcd: no endpoint configured")
                          : fmt::format("etcd: no endpoint reachable ({})", last_error_));
      auto pending = std::move(pending_);
      pending_.clear();
      for (auto& c : pending) Finish(c, st);
      return;
    }
    ++attempts_;
    const std::string& url = options_.endpoints[next_endpoint_];
    auto ep = ParseEndpoint(url);
    if (!ep.ok()) {
      last_error_ = ep.status().message();
      next_endpoint_ = (next_endpoint_ + 1) % options_.endpoints.size();
      return TryEndpoint();
    }
    endpoint_ = *ep;
    const uint64_t gen = ++gen_;
    connect_timer_.expires_after(options_.connect_timeout);
    connect_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
      if (ec || gen != self->gen_ || self->state_ != State::kConnecting) return;
      self->resolver_.cancel();
      error_code ignored;
      self->socket_.close(ignored);  // the connect completes with operation_aborted
      self->timed_out_ = true;
    });
    timed_out_ = false;
    resolver_.async_resolve(
        endpoint_.host, endpoint_.port,
        [self = shared_from_this(), gen, url](error_code ec, tcp::resolver::results_type results) {
          if (gen != self->gen_ || self->closed_) return;
          if (ec) return self->ConnectFailed(url, ec);
          asio::async_connect(self->socket_, results,
                              [self, gen, url](error_code ec2, const tcp::endpoint&) {
                                if (gen != self->gen_ || self->closed_) return;
                                if (ec2) return self->ConnectFailed(url, ec2);
                                self->Connected();
                              });
        });
  }

  void ConnectFailed(const std::string& url, error_code ec) {
    connect_timer_.cancel();
    connect_failures_.fetch_add(1, std::memory_order_relaxed);
    last_error_ =
        fmt::format("{}: {}", url, timed_out_ ? std::string("connect timed out") : ec.message());
    error_code ignored;
    socket_.close(ignored);
    next_endpoint_ = (next_endpoint_ + 1) % options_.endpoints.size();
    TryEndpoint();
  }

  void Connected() {
    connect_timer_.cancel();
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &Impl::OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Impl::OnDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Impl::OnStreamClose);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_session_client_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    state_ = State::kConnected;
    connects_.fetch_add(1, std::memory_order_relaxed);
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& c : pending) {
      if (!c->finished) Submit(c);
    }
    Flush();
    Read();
  }

  // The connection is gone: every open call ends with kUnavailable; the next call reconnects.
  void Break(const std::string& why) {
    if (state_ != State::kConnected) return;
    if (!closed_)
      LOG_WARN("msg=\"etcd connection lost\" endpoint={}:{} reason=\"{}\"", endpoint_.host,
               endpoint_.port, why);
    ++gen_;
    state_ = State::kIdle;
    writing_ = false;
    if (!closed_) connections_lost_.fetch_add(1, std::memory_order_relaxed);
    error_code ignored;
    socket_.close(ignored);
    by_stream_.clear();  // before Finish: no RST_STREAM on a dead session
    nghttp2_session_del(session_);
    session_ = nullptr;
    auto calls = calls_;
    const Status st(Code::kUnavailable, fmt::format("etcd connection to {}:{} lost: {}",
                                                    endpoint_.host, endpoint_.port, why));
    for (const auto& c : calls) Finish(c, st);
  }

  void Read() {
    socket_.async_read_some(
        asio::buffer(read_buf_), [self = shared_from_this(), gen = gen_](error_code ec, size_t n) {
          if (gen != self->gen_ || self->session_ == nullptr) return;
          if (ec) return self->Break(ec == asio::error::eof ? "closed by etcd" : ec.message());
          const ssize_t rv = nghttp2_session_mem_recv(
              self->session_, reinterpret_cast<const uint8_t*>(self->read_buf_.data()), n);
          if (rv < 0)
            return self->Break(fmt::format("http2: {}", nghttp2_strerror(static_cast<int>(rv))));
          self->Flush();
          if (self->session_ == nullptr) return;
          if (!nghttp2_session_want_read(self->session_) &&
              !nghttp2_session_want_write(self->session_)) {
            return self->Break("etcd ended the HTTP/2 session (GOAWAY)");
          }
          self->Read();
        });
  }

  void Flush() {
    if (session_ == nullptr || writing_) return;
    write_buf_.clear();
    while (write_buf_.size() < kWriteChunk) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return Break(fmt::format("http2: {}", nghttp2_strerror(static_cast<int>(n))));
      if (n == 0) break;
      write_buf_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (write_buf_.empty()) return;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(write_buf_),
                      [self = shared_from_this(), gen = gen_](error_code ec, size_t) {
                        if (gen != self->gen_) return;
                        self->writing_ = false;
                        if (ec) return self->Break(ec.message());
                        self->Flush();
                      });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    Break("client closed");
    ++gen_;
    connect_timer_.cancel();
    resolver_.cancel();
    error_code ignored;
    socket_.close(ignored);
    auto calls = calls_;
    for (const auto& c : calls) Finish(c, Status(Code::kUnavailable, "etcd client closed"));
  }

  // ---- typed calls ----

  template <typename Resp, typename Req>
  void Unary(std::string method, const Req& req, Duration timeout, Done<Resp> done) {
    auto call = NewCall(std::move(method), false, timeout);
    std::string body;
    req.SerializeToString(&body);
    call->on_finish = [this, call_weak = std::weak_ptr<Call>(call), done](Status st) {
      auto c = call_weak.lock();
      if (!c) return;
      if (st.ok() && !c->reply) {
        st = Status(Code::kInternal, fmt::format("etcd {}: OK without a message", Short(*c)));
      }
      if (!st.ok()) return Post(c, [done, st] { done(st); });
      Resp resp;
      if (!resp.ParseFromString(*c->reply)) {
        return Post(c, [done, m = Short(*c)] {
          done(Status(Code::kInternal, fmt::format("etcd {}: unparsable response", m)));
        });
      }
      Post(c, [done, resp = std::move(resp)]() mutable { done(std::move(resp)); });
    };
    if (body.size() > options_.max_request_bytes) {
      return Finish(call,
                    Status(Code::kTooLarge,
                           fmt::format("etcd {}: request of {} bytes exceeds "
                                       "max_request_bytes ({})",
                                       Short(*call), body.size(), options_.max_request_bytes)));
    }
    AppendFramed(call->out, body);
    call->on_message = [this](const std::shared_ptr<Call>& c, std::string_view msg) {
      if (c->reply) {
        return Status(Code::kInternal,
                      fmt::format("etcd {}: two messages in a unary reply", Short(*c)));
      }
      c->reply.emplace(msg);
      return Status::Ok();
    };
    Start(call);
  }

  asio::io_context& io_;
  EtcdOptions options_;
  tcp::resolver resolver_;
  tcp::socket socket_;
  asio::steady_timer connect_timer_;
  Endpoint endpoint_;
  nghttp2_session* session_ = nullptr;
  State state_ = State::kIdle;
  bool closed_ = false;
  bool writing_ = false;
  bool timed_out_ = false;
  uint64_t gen_ = 0;  // bumped per connect attempt and per break: stale handlers return
  size_t attempts_ = 0;
  size_t next_endpoint_ = 0;
  std::string last_error_;
  // Counters for Metrics(), read from any thread.
  std::atomic<uint64_t> connects_{0}, connect_failures_{0}, connections_lost_{0};
  std::atomic<uint64_t> calls_started_{0}, open_calls_{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Code::kInternal) + 1> errors_{};
  std::unordered_set<std::shared_ptr<Call>> calls_;               // open (pending or submitted)
  std::deque<std::shared_ptr<Call>> pending_;                     // waiting for the connection
  std::unordered_map<int32_t, std::shared_ptr<Call>> by_stream_;  // streams nghttp2 knows
  std::array<char, kReadChunk> read_buf_{};
  std::string write_buf_;
};

namespace {

// The caller's handle on a watch or keepalive stream.
class StreamHandle : public EtcdStream {
 public:
  StreamHandle(std::weak_ptr<EtcdClient::Impl> impl, std::shared_ptr<Call> call,
               std::function<void()> on_cancel = {})
      : impl_(std::move(impl)), call_(std::move(call)), on_cancel_(std::move(on_cancel)) {}
  ~StreamHandle() override { Cancel(); }
  void Cancel() override {
    if (call_->silent) return;
    call_->silent = true;
    if (on_cancel_) on_cancel_();
    if (auto impl = impl_.lock()) {
      impl->Finish(call_, Status(Code::kUnavailable, "cancelled"));
      impl->Flush();
    }
  }

 private:
  std::weak_ptr<EtcdClient::Impl> impl_;
  std::shared_ptr<Call> call_;
  std::function<void()> on_cancel_;
};

}  // namespace

EtcdClient::EtcdClient(asio::io_context& io, EtcdOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

std::shared_ptr<EtcdClient> EtcdClient::Create(asio::io_context& io, EtcdOptions options) {
  return std::shared_ptr<EtcdClient>(new EtcdClient(io, std::move(options)));
}

EtcdClient::~EtcdClient() { impl_->Close(); }

void EtcdClient::Close() { impl_->Close(); }
uint64_t EtcdClient::connects() const { return impl_->connects_.load(); }

metrics::Source EtcdClient::Metrics() const {
  static constexpr const metrics::Def* kDefs[] = {&kEtcdCalls,           &kEtcdCallErrors,
                                                  &kEtcdConnects,        &kEtcdConnectFailures,
                                                  &kEtcdConnectionsLost, &kEtcdOpenCalls};
  return {kDefs, [weak = std::weak_ptr<Impl>(impl_)](metrics::Sink& sink) {
            auto impl = weak.lock();
            if (!impl) return;
            constexpr auto kRelaxed = std::memory_order_relaxed;
            sink.Add(kEtcdCalls, "", impl->calls_started_.load(kRelaxed));
            for (size_t c = 1; c < impl->errors_.size(); ++c) {
              if (const uint64_t n = impl->errors_[c].load(kRelaxed); n != 0) {
                sink.Add(kEtcdCallErrors,
                         fmt::format("code=\"{}\"", CodeName(static_cast<Code>(c))), n);
              }
            }
            sink.Add(kEtcdConnects, "", impl->connects_.load(kRelaxed));
            sink.Add(kEtcdConnectFailures, "", impl->connect_failures_.load(kRelaxed));
            sink.Add(kEtcdConnectionsLost, "", impl->connections_lost_.load(kRelaxed));
            sink.Add(kEtcdOpenCalls, "", impl->open_calls_.load(kRelaxed));
          }};
}
size_t EtcdClient::open_calls() const { return impl_->calls_.size(); }

// The unary methods, one line each: name, request and response types, gRPC path.
#define CELLAR_ETCD_UNARY(Name, Req, Resp, path)                                                  \
  void EtcdClient::Name(etcdserverpb::Req req, Duration timeout, Done<etcdserverpb::Resp> done) { \
    impl_->Unary(path, req, timeout, std::move(done));                                            \
  }
CELLAR_ETCD_UNARY(Range, RangeRequest, RangeResponse, "/etcdserverpb.KV/Range")
CELLAR_ETCD_UNARY(Put, PutRequest, PutResponse, "/etcdserverpb.KV/Put")
CELLAR_ETCD_UNARY(DeleteRange, DeleteRangeRequest, DeleteRangeResponse,
                  "/etcdserverpb.KV/DeleteRange")
CELLAR_ETCD_UNARY(Txn, TxnRequest, TxnResponse, "/etcdserverpb.KV/Txn")
CELLAR_ETCD_UNARY(Compact, CompactionRequest, CompactionResponse, "/etcdserverpb.KV/Compact")
CELLAR_ETCD_UNARY(LeaseGrant, LeaseGrantRequest, LeaseGrantResponse,
                  "/etcdserverpb.Lease/LeaseGrant")
CELLAR_ETCD_UNARY(LeaseRevoke, LeaseRevokeRequest, LeaseRevokeResponse,
                  "/etcdserverpb.Lease/LeaseRevoke")
#undef CELLAR_ETCD_UNARY

std::shared_ptr<EtcdStream> EtcdClient::Watch(
    WatchOptions options, std::function<void(const etcdserverpb::WatchResponse&)> on_response,
    std::function<void(WatchEnd)> on_end) {
  Impl* impl = impl_.get();
  auto call = impl->NewCall("/etcdserverpb.Watch/Watch", true, options.create_timeout);
  etcdserverpb::WatchRequest req;
  auto* create = req.mutable_create_request();
  create->set_key(options.key);
  create->set_range_end(options.range_end);
  create->set_start_revision(options.start_revision);
  create->set_prev_kv(options.prev_kv);
  std::string body;
  req.SerializeToString(&body);
  AppendFramed(call->out, body);
  auto compact_revision = std::make_shared<int64_t>(0);
  call->on_message = [impl, on_response, compact_revision](const std::shared_ptr<Call>& c,
                                                           std::string_view msg) {
    etcdserverpb::WatchResponse resp;
    if (!resp.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
      return Status(Code::kInternal, "etcd Watch/Watch: unparsable response");
    }
    if (c->timer) c->timer->cancel();  // answered: the create deadline no longer applies
    if (resp.compact_revision() > 0) {
      *compact_revision = resp.compact_revision();
      return Status(Code::kFailedPrecondition,
                    fmt::format("etcd Watch/Watch: start revision compacted (compact_revision "
                                "{}); re-read, then watch from the read's revision + 1",
                                resp.compact_revision()));
    }
    if (resp.canceled()) {
      return Status(Code::kUnavailable,
                    fmt::format("etcd Watch/Watch: cancelled by etcd: {}", resp.cancel_reason()));
    }
    // By value: the watch may be cancelled before the post runs (then nothing is delivered).
    auto shared = std::make_shared<etcdserverpb::WatchResponse>(std::move(resp));
    impl->Post(c, [on_response, shared] { on_response(*shared); });
    return Status::Ok();
  };
  call->on_finish = [impl, weak = std::weak_ptr<Call>(call), on_end, compact_revision](Status st) {
    auto c = weak.lock();
    if (!c) return;
    if (st.ok()) st = Status(Code::kUnavailable, "etcd Watch/Watch: etcd ended the watch stream");
    impl->Post(c, [on_end, end = WatchEnd{std::move(st), *compact_revision}] { on_end(end); });
  };
  impl->Start(call);
  return std::make_shared<StreamHandle>(impl_, call);
}

std::shared_ptr<EtcdStream> EtcdClient::KeepAlive(KeepAliveOptions options, KeepAliveAck on_ack,
                                                  std::function<void(Status)> on_lost) {
  Impl* impl = impl_.get();
  const auto ttl = std::chrono::seconds(std::max<int64_t>(options.ttl_seconds, 1));
  // The stream's "deadline" is the lease's: no answer for a whole TTL means it is lost.
  auto call = impl->NewCall("/etcdserverpb.Lease/LeaseKeepAlive", true, ttl);
  struct State {
    explicit State(asio::io_context& io) : ticker(io) {}
    asio::steady_timer ticker;
    std::deque<SteadyClock::time_point> sent;  // send times of unanswered keepalives
    std::string request;
  };
  auto state = std::make_shared<State>(impl->io_);
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(options.lease_id);
  req.SerializeToString(&state->request);
  const int64_t lease_id = options.lease_id;

  call->on_message = [impl, state, on_ack, lease_id](const std::shared_ptr<Call>& c,
                                                     std::string_view msg) {
    etcdserverpb::LeaseKeepAliveResponse resp;
    if (!resp.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
      return Status(Code::kInternal, "etcd Lease/LeaseKeepAlive: unparsable response");
    }
    if (resp.ttl() <= 0) {
      return Status(Code::kNotFound,
                    fmt::format("etcd Lease/LeaseKeepAlive: lease {:x} expired or revoked "
                                "(TTL {})",
                                lease_id, resp.ttl()));
    }
    if (state->sent.empty()) {
      return Status(Code::kInternal, "etcd Lease/LeaseKeepAlive: an answer nothing asked for");
    }
    const auto alive_until = state->sent.front() + std::chrono::seconds(resp.ttl());
    state->sent.pop_front();
    // The lease lives at least until alive_until: the next silence deadline is that.
    c->deadline = alive_until;
    c->timer->expires_at(alive_until);  // cancels the previous silence deadline
    c->timer->async_wait(
        [self = impl->shared_from_this(), weak = std::weak_ptr<Call>(c)](error_code ec) {
          auto call = weak.lock();
          if (ec || !call || call->finished) return;
          self->Finish(call, Status(Code::kDeadlineExceeded,
                                    "etcd Lease/LeaseKeepAlive: no answer within the lease's TTL"));
          self->Flush();
        });
    if (on_ack) impl->Post(c, [on_ack, t = resp.ttl(), alive_until] { on_ack(t, alive_until); });
    return Status::Ok();
  };
  call->on_finish = [impl, weak = std::weak_ptr<Call>(call), state, on_lost](Status st) {
    state->ticker.cancel();
    auto c = weak.lock();
    if (!c) return;
    if (st.ok()) st = Status(Code::kUnavailable, "etcd Lease/LeaseKeepAlive: stream ended");
    impl->Post(c, [on_lost, st] { on_lost(st); });
  };

  // Every TTL/3: one keepalive, unless too many are unanswered (then the deadline decides).
  const auto period = std::max<SteadyClock::duration>(
      std::chrono::duration_cast<SteadyClock::duration>(ttl) / 3, std::chrono::milliseconds(100));
  auto tick = std::make_shared<std::function<void()>>();
  *tick = [impl, weak = std::weak_ptr<Call>(call), state, period,
           weak_tick = std::weak_ptr<std::function<void()>>(tick)]() {
    auto c = weak.lock();
    if (!c || c->finished) return;
    if (state->sent.size() < kMaxUnackedKeepAlives) {
      state->sent.push_back(SteadyClock::now());
      impl->Send(c, state->request);
    }
    state->ticker.expires_after(period);
    state->ticker.async_wait([weak_tick, keep = impl->shared_from_this()](error_code ec) {
      if (ec) return;
      if (auto t = weak_tick.lock()) (*t)();
    });
  };
  impl->Start(call);
  if (!call->finished) (*tick)();
  // The handle keeps the tick function alive (the timer only holds it weakly: no cycle).
  return std::make_shared<StreamHandle>(impl_, call, [tick] {});
}

}  // namespace cellar::cluster
