#include "server/admin_http.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "frontend/net/http1.h"
#include "frontend/net/tls.h"
#include <unordered_set>
#include <utility>

#include "common/logging.h"

namespace cellar::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

namespace {

// After an error response the connection closes. Reading (and dropping) what the client is still
// sending first lets it see the response instead of a reset; this bounds that courtesy.
constexpr std::size_t kDrainLimit = 8 * 1024 * 1024;
constexpr std::chrono::seconds kDrainTimeout{5};
// Accept can fail transiently (out of file descriptors); retrying at once would spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};


std::string ErrorJson(std::string_view message) {
  // Messages here are fixed ASCII text without quotes or backslashes, so no escaping is needed.
  return "{\"error\":\"" + std::string(message) + "\"}";
}

// The refusal texts (ErrorJson's rule applies: no quotes, no backslashes).
constexpr std::string_view kMalformed = "malformed HTTP request";
constexpr std::string_view kBodyTooLarge = "request body larger than 1 MiB";
constexpr std::string_view kHeaderTooLarge = "request header larger than 16 KiB";
constexpr std::string_view kNotAPath = "request target must be a path";
constexpr std::string_view kBadEscape = "invalid percent-encoding in path";
constexpr std::string_view kObsFold = "obsolete line folding in request header";
constexpr std::string_view kBothLengths = "request has both Transfer-Encoding and Content-Length";
constexpr std::string_view kBadCoding = "unsupported transfer coding (only chunked is accepted)";
constexpr std::string_view kTransferEncodingInHttp10 = "Transfer-Encoding in an HTTP/1.0 request";

Status Refusal(std::string_view message) {
  return Status(Code::kInvalidArgument, std::string(message));
}

using RequestParser = http::request_parser<http::string_body>;

void LimitParser(RequestParser& parser) {
  parser.header_limit(static_cast<std::uint32_t>(kAdminHeaderLimit));
  parser.body_limit(kAdminBodyLimit);
}

// A flat_buffer that, while a header is read, watches the bytes the parser takes for obsolete
// line folding (a field value continued on the next line, after CRLF and a space or tab). Beast
// unfolds such values silently, so `Transfer-Encoding:\r\n chunked` would reach
// CheckRequestFraming as a plain `chunked`, while a proxy that does not unfold sees an empty
// Transfer-Encoding and frames the request differently: a known smuggling trick. RFC 9112
// section 5.2 lets a server refuse obs-fold with 400, so we do, for every field.
class HeaderWatchBuffer {
 public:
  using const_buffers_type = beast::flat_buffer::const_buffers_type;
  using mutable_buffers_type = beast::flat_buffer::mutable_buffers_type;

  // Call before reading a header, and after (the body and what follows are not header bytes).
  void WatchHeader() {
    watching_ = true;
    saw_obs_fold_ = false;
    after_line_ = false;
  }
  void StopWatching() { watching_ = false; }
  bool saw_obs_fold() const { return saw_obs_fold_; }

  // DynamicBuffer (v1), forwarded to the flat_buffer.
  std::size_t size() const { return b_.size(); }
  std::size_t max_size() const { return b_.max_size(); }
  std::size_t capacity() const { return b_.capacity(); }
  const_buffers_type data() const { return b_.data(); }
  mutable_buffers_type prepare(std::size_t n) { return b_.prepare(n); }
  void commit(std::size_t n) { b_.commit(n); }
  void consume(std::size_t n) {
    if (watching_) Watch(std::min(n, b_.size()));
    b_.consume(n);
  }

 private:
  void Watch(std::size_t n) {
    // A line may not start with whitespace anywhere in a header: Beast refuses it before the
    // first field and takes it as a fold after one. Beast may take the request line and the
    // fields in separate pieces, so whether the last piece ended a line carries over.
    const char* p = static_cast<const char*>(b_.data().data());
    for (std::size_t i = 0; i < n; ++i) {
      if (after_line_ && (p[i] == ' ' || p[i] == '\t')) saw_obs_fold_ = true;
      after_line_ = p[i] == '\n';
    }
  }

  beast::flat_buffer b_;
  bool watching_ = false;
  bool saw_obs_fold_ = false;
  bool after_line_ = false;
};

// What a failed read means: a refusal to answer, or UNAVAILABLE when there is nobody to answer.
Status ReadErrorStatus(error_code ec) {
  if (ec == http::error::body_limit) return Status(Code::kTooLarge, std::string(kBodyTooLarge));
  if (ec == http::error::header_limit) {
    return Status(Code::kResourceExhausted, std::string(kHeaderTooLarge));
  }
  // Parse errors are in Beast's http category; everything else (a clean close between
  // requests, a timeout, a reset, Stop) leaves nothing to answer.
  bool parse_error =
      ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message;
  if (!parse_error) return Status(Code::kUnavailable, ec.message());
  // Any other parse error: the bytes are not HTTP/1.1 we understand.
  return Refusal(kMalformed);
}

// Everything known once the header is in, checked before any of the body is read.
Status CheckHeader(const HeaderWatchBuffer& buffer, const http::request_header<>& header) {
  if (buffer.saw_obs_fold()) return Refusal(kObsFold);
  return CheckRequestFraming(header);
}

// A whole request, as the handler sees it; INVALID_ARGUMENT for a target the routes cannot use.
StatusOr<HttpRequest> ToHttpRequest(http::request<http::string_body>&& req) {
  HttpRequest request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  std::string_view target(req.target().data(), req.target().size());
  std::string_view raw_path = target;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    raw_path = target.substr(0, q);
    request.query = std::string(target.substr(q + 1));
  }
  if (raw_path.empty() || raw_path.front() != '/') return Refusal(kNotAPath);
  if (!PercentDecode(raw_path, &request.path)) return Refusal(kBadEscape);
  request.authorization = std::string(req[http::field::authorization]);
  request.body = std::move(req.body());
  return request;
}

// The bytes a client sent, then end of stream: a SyncReadStream, so that ParseHttpRequest runs
// Beast's own read loop (http::read_header, http::read) as the connection's async versions do.
class BytesStream {
 public:
  explicit BytesStream(std::string_view bytes) : rest_(bytes) {}

  std::size_t remaining() const { return rest_.size(); }

  template <typename MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, error_code& ec) {
    ec = {};
    if (rest_.empty()) {
      ec = asio::error::eof;
      return 0;
    }
    std::size_t n = asio::buffer_copy(buffers, asio::buffer(rest_.data(), rest_.size()));
    rest_.remove_prefix(n);
    return n;
  }
  // Required by the SyncReadStream concept; the read functions used here take the error_code
  // overload, so this never runs.
  template <typename MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    error_code ec;
    std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  std::string_view rest_;
};

class Session;

}  // namespace

bool PercentDecode(std::string_view in, std::string* out) {
  return net::PercentDecode(in, out, /*plus_space=*/false);
}

Status CheckRequestFraming(const http::request_header<>& header) {
  const std::size_t codings = header.count(http::field::transfer_encoding);
  if (codings == 0) return Status::Ok();  // Content-Length, or no body
  if (header.count(http::field::content_length) != 0) return Refusal(kBothLengths);
  if (header.version() < 11) return Refusal(kTransferEncodingInHttp10);
  // One field, and its whole value is the one coding we implement. Anything else (another
  // coding, chunked twice, a second field that a proxy might not combine) is refused rather
  // than guessed at, since guessing differently from a proxy is how requests get smuggled.
  if (codings != 1) return Refusal(kBadCoding);
  beast::string_view value = header[http::field::transfer_encoding];
  const auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
  while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
  if (!beast::iequals(value, "chunked")) return Refusal(kBadCoding);
  return Status::Ok();
}

int RefusalHttpStatus(const Status& refusal) {
  switch (refusal.code()) {
    case Code::kTooLarge:
      return 413;
    case Code::kResourceExhausted:
      return 431;
    case Code::kUnavailable:
      return 0;
    default:
      return 400;
  }
}

StatusOr<ParsedHttpRequest> ParseHttpRequest(std::string_view bytes) {
  BytesStream stream(bytes);
  HeaderWatchBuffer buffer;
  RequestParser parser;
  LimitParser(parser);
  error_code ec;
  buffer.WatchHeader();
  http::read_header(stream, buffer, parser, ec);
  buffer.StopWatching();
  if (ec) return ReadErrorStatus(ec);
  if (Status st = CheckHeader(buffer, parser.get()); !st.ok()) return st;
  const bool keep_alive = parser.get().keep_alive();
  http::read(stream, buffer, parser, ec);
  if (ec) return ReadErrorStatus(ec);
  StatusOr<HttpRequest> request = ToHttpRequest(parser.release());
  if (!request.ok()) return request.status();
  ParsedHttpRequest parsed;
  parsed.request = std::move(*request);
  parsed.keep_alive = keep_alive;
  // What the stream has not handed out, and what the parser left in the buffer, is the next
  // request's.
  parsed.consumed = bytes.size() - stream.remaining() - buffer.size();
  return parsed;
}

struct AdminHttpServer::State : std::enable_shared_from_this<AdminHttpServer::State> {
  State(asio::io_context& io_context, HttpHandler h)
      : io(io_context), handler(std::move(h)), acceptor(io_context), retry_timer(io_context) {}

  void Accept();
  void StopNow();

  asio::io_context& io;
  HttpHandler handler;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  net::TlsConfig* tls = nullptr;  // TLS beside plaintext (or only TLS if required)
  bool stopped = false;
  uint16_t port = 0;
  // Live connections, so Stop can close the idle ones. Sessions remove themselves on destruction;
  // everything runs on the one io_context thread.
  std::unordered_set<Session*> sessions;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<AdminHttpServer::State> state, tcp::socket socket)
      : state_(std::move(state)), stream_(std::move(socket)) {
    state_->sessions.insert(this);
  }
  ~Session() { state_->sessions.erase(this); }

  void Start() {
    net::TlsConfig* tls = state_->tls;
    if (tls == nullptr) return ReadHeader();
    // TLS or plaintext, told apart by the first byte (a ClientHello starts with 0x16).
    stream_.expires_after(state_->read_timeout);
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), tls](error_code ec) {
      if (ec) return self->Close();
      unsigned char first = 0;
      const size_t n = self->stream_.socket().receive(asio::buffer(&first, 1),
                                                      tcp::socket::message_peek, ec);
      if (ec || n == 0) return self->Close();
      if (first != net::kTlsHandshakeByte) {
        // Plaintext from this machine itself stays possible (the CLI in the same pod or host,
        // e.g. a drain in a preStop hook: it speaks no TLS); from anywhere else it is refused
        // when TLS is required. The admin key is asked for either way.
        error_code peer_ec;
        const auto peer = self->stream_.socket().remote_endpoint(peer_ec);
        const bool local = !peer_ec && peer.address().is_loopback();
        if (tls->required() && !local) return self->Close();
        return self->ReadHeader();
      }
      self->tls_ctx_ = tls->Current();
      self->tls_ = std::make_unique<asio::ssl::stream<beast::tcp_stream&>>(self->stream_,
                                                                           *self->tls_ctx_);
      self->tls_->async_handshake(asio::ssl::stream_base::server, [self](error_code ec) {
        if (ec) return self->Close();
        self->ReadHeader();
      });
    });
  }

  // Runs f on the connection's stream: TLS if it negotiated it, else the TCP stream.
  template <typename F>
  void Io(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(stream_);
    }
  }

  // Called by Stop: a connection waiting for its next request is closed now; one in the middle of
  // a request finishes it (the response says "Connection: close").
  void CloseIfIdle() {
    if (phase_ == Phase::kReadingHeader && buffer_.size() == 0 && parser_ && !parser_->got_some()) {
      stream_.close();  // the pending read completes with operation_aborted
    }
  }

  // Sends the handler's response; runs on the io_context thread.
  void Send(HttpResponse response) {
    if (phase_ != Phase::kHandling) return;
    if (state_->stopped) keep_alive_ = false;
    Write(response.status, std::move(response.content_type), std::move(response.body),
          /*error_close=*/false);
  }

 private:
  enum class Phase { kReadingHeader, kReadingBody, kHandling, kWriting, kClosing };

  void ReadHeader() {
    if (state_->stopped) return Close();
    phase_ = Phase::kReadingHeader;
    parser_.emplace();
    LimitParser(*parser_);
    buffer_.WatchHeader();
    stream_.expires_after(state_->read_timeout);
    Io([&](auto& io) {
      http::async_read_header(
          io, buffer_, *parser_,
          [self = shared_from_this()](error_code ec, std::size_t) { self->OnHeader(ec); });
    });
  }

  void OnHeader(error_code ec) {
    buffer_.StopWatching();
    if (ec) return OnReadError(ec);
    phase_ = Phase::kReadingBody;
    version_ = parser_->get().version();
    keep_alive_ = parser_->get().keep_alive();
    // Before any of the body is read (or invited with "100 Continue"): once a request's framing
    // is in doubt, so is where the next one starts, hence the close that Refuse does.
    if (Status st = CheckHeader(buffer_, parser_->get()); !st.ok()) return Refuse(st);
    // curl and others wait for "100 Continue" before sending a body; without it they pause.
    auto expect = parser_->get()[http::field::expect];
    if (beast::iequals(expect, "100-continue") && !parser_->is_done()) {
      continue_.emplace(http::status::continue_, version_);
      Io([&](auto& io) {
        http::async_write(io, *continue_, [self = shared_from_this()](error_code ec, std::size_t) {
          if (ec) return self->Close();
          self->ReadBody();
        });
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    stream_.expires_after(state_->read_timeout);
    Io([&](auto& io) {
      http::async_read(io, buffer_, *parser_,
                       [self = shared_from_this()](error_code ec, std::size_t) { self->OnBody(ec); });
    });
  }

  void OnReadError(error_code ec) {
    Status st = ReadErrorStatus(ec);
    if (RefusalHttpStatus(st) == 0) {
      if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted) {
        LOG_DEBUG("msg=\"admin http read ended\" error=\"{}\"", ec.message());
      }
      return Close();
    }
    Refuse(st);
  }

  // Answers a request the handler never sees, then closes: after a bad request, the bytes that
  // follow cannot be trusted to start where we would think the next request starts.
  void Refuse(const Status& st) {
    LOG_DEBUG("msg=\"admin http request refused\" status={} error=\"{}\"", RefusalHttpStatus(st),
              st.message());
    Write(RefusalHttpStatus(st), "application/json", ErrorJson(st.message()),
          /*error_close=*/true);
  }

  void OnBody(error_code ec) {
    if (ec) return OnReadError(ec);
    phase_ = Phase::kHandling;
    stream_.expires_never();  // the handler may take its time; no read is pending meanwhile

    StatusOr<HttpRequest> parsed = ToHttpRequest(parser_->release());
    if (!parsed.ok()) return Refuse(parsed.status());
    HttpRequest request = std::move(*parsed);

    // The respond callback may be copied around and called from elsewhere; the flag keeps it to
    // one response and the post brings it back to this connection's thread.
    auto done = std::make_shared<std::atomic<bool>>(false);
    HttpRespond respond = [self = shared_from_this(), done](HttpResponse response) {
      if (done->exchange(true)) {
        LOG_WARN("msg=\"admin http handler responded twice\"");
        return;
      }
      asio::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->Send(std::move(response));
      });
    };
    try {
      state_->handler(request, std::move(respond));
    } catch (const std::exception& e) {
      // Handlers should not throw; if one does, the client still gets an answer.
      LOG_ERROR("msg=\"admin http handler threw\" error=\"{}\"", e.what());
      if (!done->exchange(true)) {
        Write(500, "application/json", ErrorJson("internal error"), false);
      }
    }
  }

  // error_close: the request was bad, so the connection closes after the response regardless.
  void Write(int status, std::string content_type, std::string body, bool error_close) {
    phase_ = Phase::kWriting;
    if (error_close) keep_alive_ = false;
    response_.emplace();
    response_->version(version_);
    response_->result(static_cast<unsigned>(status));
    response_->set(http::field::server, "cellar");
    response_->set(http::field::content_type, content_type);
    response_->keep_alive(keep_alive_);
    response_->body() = std::move(body);
    response_->prepare_payload();
    stream_.expires_after(state_->read_timeout);
    Io([&](auto& io) {
      http::async_write(io, *response_,
                        [self = shared_from_this(), error_close](error_code ec, std::size_t) {
                          self->OnWrite(ec, error_close);
                        });
    });
  }

  void OnWrite(error_code ec, bool error_close) {
    response_.reset();
    if (ec) return Close();
    if (error_close) return Drain();
    if (!keep_alive_ || state_->stopped) return Close();
    ReadHeader();
  }

  // Half-closes, then discards what the client still sends until it closes too (bounded in bytes
  // and time), so that our response is not lost to a TCP reset.
  void Drain() {
    phase_ = Phase::kClosing;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::min<std::chrono::milliseconds>(state_->read_timeout, kDrainTimeout));
    DrainSome();
  }

  void DrainSome() {
    Io([&](auto& io) {
      io.async_read_some(asio::buffer(drain_buf_),
                         [self = shared_from_this()](error_code ec, std::size_t n) {
                           self->drained_ += n;
                           if (ec || self->drained_ > kDrainLimit) return self->Close();
                           self->DrainSome();
                         });
    });
  }

  void Close() {
    phase_ = Phase::kClosing;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  std::shared_ptr<AdminHttpServer::State> state_;
  beast::tcp_stream stream_;
  std::shared_ptr<asio::ssl::context> tls_ctx_;  // outlives tls_ (declared first)
  std::unique_ptr<asio::ssl::stream<beast::tcp_stream&>> tls_;
  HeaderWatchBuffer buffer_;
  std::optional<RequestParser> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> response_;
  Phase phase_ = Phase::kReadingHeader;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  std::size_t drained_ = 0;
  std::array<char, 16 * 1024> drain_buf_;
};

}  // namespace

void AdminHttpServer::State::Accept() {
  acceptor.async_accept([self = shared_from_this()](error_code ec, tcp::socket socket) {
    if (self->stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
      LOG_WARN("msg=\"admin http accept failed\" error=\"{}\"", ec.message());
      self->retry_timer.expires_after(kAcceptRetryDelay);
      self->retry_timer.async_wait([self](error_code ec) {
        if (!ec && !self->stopped) self->Accept();
      });
      return;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(self, std::move(socket))->Start();
    self->Accept();
  });
}

void AdminHttpServer::State::StopNow() {
  if (stopped) return;
  stopped = true;
  error_code ignored;
  acceptor.close(ignored);
  retry_timer.cancel();
  // Copy first: closing never destroys a session synchronously, but keep iteration simple.
  std::vector<Session*> live(sessions.begin(), sessions.end());
  for (Session* s : live) s->CloseIfIdle();
}

AdminHttpServer::AdminHttpServer(asio::io_context& io, HttpHandler handler)
    : state_(std::make_shared<State>(io, std::move(handler))) {}

AdminHttpServer::~AdminHttpServer() { state_->StopNow(); }

void AdminHttpServer::Listen(const std::string& address, uint16_t port) {
  auto fail = [&](const std::string& why) {
    throw std::runtime_error("admin HTTP: cannot listen on " + address + ":" +
                             std::to_string(port) + ": " + why);
  };
  error_code ec;
  asio::ip::address ip = asio::ip::make_address(address, ec);
  if (ec) {
    // Not a literal address: resolve it (start-up only, so blocking is fine).
    tcp::resolver resolver(state_->io);
    auto results = resolver.resolve(address, std::to_string(port), ec);
    if (ec || results.empty()) fail("cannot resolve address (" + ec.message() + ")");
    ip = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(ip, port);
  tcp::acceptor& acceptor = state_->acceptor;
  // (With BOOST_ASIO_NO_DEPRECATED these overloads return void, hence the separate checks.)
  acceptor.open(endpoint.protocol(), ec);
  if (ec) fail(ec.message());
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    acceptor.close(ignored);
    fail(ec.message());
  }
  state_->port = acceptor.local_endpoint(ec).port();
  state_->stopped = false;
  state_->Accept();
}

uint16_t AdminHttpServer::port() const { return state_->port; }

void AdminHttpServer::Stop() {
  if (state_->io.get_executor().running_in_this_thread() || state_->io.stopped()) {
    state_->StopNow();
  } else {
    asio::post(state_->io, [state = state_] { state->StopNow(); });
  }
}

void AdminHttpServer::set_tls(net::TlsConfig* tls) { state_->tls = tls; }

void AdminHttpServer::set_read_timeout(std::chrono::milliseconds timeout) {
  state_->read_timeout = timeout;
}

}  // namespace cellar::server
