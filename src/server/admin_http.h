// A small HTTP/1.1 server for the admin API (/healthz, /metrics, /v1/caches...). It runs on one
// io_context that the caller drives; the handler is called on that thread and answers through a
// callback, so it may finish the request later (for example after asking every shard).
//
// Limits protect the process from clients that misbehave: headers up to 16 KiB (431 beyond),
// bodies up to 1 MiB (413 beyond), and a 30 s read timeout so a client that sends half a request
// only ever ties up its own connection. Malformed requests get 400 and the connection closes, and
// so do requests whose framing another HTTP parser could read differently (CheckRequestFraming).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cellar::net {
class TlsConfig;
}

namespace cellar::server {

struct HttpRequest {
  std::string method;         // "GET", "PUT", ...
  std::string target;         // raw path and query, as sent
  std::string path;           // percent-decoded path, without the query
  std::string query;          // raw query, without the '?'
  std::string authorization;  // value of the Authorization header, empty if absent
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Call exactly once, on the io_context thread; may be called later (asynchronously). Further calls
// are ignored. If every copy is destroyed without a call, the client gets a 500.
using HttpRespond = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, HttpRespond)>;

// Decodes %XX escapes ('+' stays '+': that rule is for query strings, not paths). False on a
// malformed escape.
bool PercentDecode(std::string_view in, std::string* out);

// The server's limits (see the top of this file); shared with the tests and the fuzz target.
inline constexpr std::size_t kAdminHeaderLimit = 16 * 1024;
inline constexpr std::uint64_t kAdminBodyLimit = 1024 * 1024;

// Request framing (RFC 9112 sections 6.1 and 6.3), checked on the header before any of the body
// is read. If a proxy in front of this server and the server disagree on where a request ends,
// a client can hide a second request inside the first one's body (request smuggling); so every
// framing that another parser might read differently is refused instead of interpreted:
//   * Transfer-Encoding together with Content-Length (6.3 allows refusing; we do);
//   * any Transfer-Encoding but exactly one field whose value is `chunked` (any case, optional
//     surrounding whitespace): `xchunked`, `identity`, `gzip, chunked`, `chunked, identity`,
//     `chunked, chunked`, an empty value, or the field sent twice;
//   * Transfer-Encoding in an HTTP/1.0 request (6.1: the framing must be treated as faulty).
// INVALID_ARGUMENT says which; the server answers 400 and closes the connection. 400 rather than
// the 501 that 6.1 suggests for an unknown coding: 6.3 requires 400 whenever chunked is not the
// final coding (which covers every unknown coding on its own, like `xchunked`), so 400 is the
// one answer that is right for every case, and clients see a single code for refused framing.
Status CheckRequestFraming(const boost::beast::http::request_header<>& header);

// The HTTP status the server answers a refusal (a request the handler never sees) with; the
// connection always closes after it, and the Status message is the {"error":"..."} text.
//   INVALID_ARGUMENT    400  malformed request, refused framing, target not a path, bad escape
//   TOO_LARGE           413  body over kAdminBodyLimit
//   RESOURCE_EXHAUSTED  431  header over kAdminHeaderLimit
//   UNAVAILABLE         0    nothing to answer: the client closed before a whole request
int RefusalHttpStatus(const Status& refusal);

// One request as ParseHttpRequest finds it.
struct ParsedHttpRequest {
  HttpRequest request;
  bool keep_alive = true;    // whether the connection would read another request after it
  std::size_t consumed = 0;  // bytes of this request; a pipelined next one starts there
};

// Parses the first request in `bytes` exactly as a connection does (the same Beast parser, limits
// and checks, in the same order), taking `bytes` as everything the client sent before closing.
// A refusal is a Status for RefusalHttpStatus. Lets the tests and the fuzz target drive the
// request path without a socket.
StatusOr<ParsedHttpRequest> ParseHttpRequest(std::string_view bytes);

class AdminHttpServer {
 public:
  AdminHttpServer(boost::asio::io_context& io, HttpHandler handler);
  // Stops accepting. Destroy it on the io_context thread or while the io_context is not running.
  ~AdminHttpServer();

  AdminHttpServer(const AdminHttpServer&) = delete;
  AdminHttpServer& operator=(const AdminHttpServer&) = delete;

  // Binds and listens; throws std::runtime_error with a clear message on failure. Port 0 picks a
  // free port. Call once, before the io_context runs or on its thread.
  void Listen(const std::string& address, uint16_t port);

  // The port actually bound (0 before Listen).
  uint16_t port() const;

  // Stops accepting and closes idle connections; requests in flight finish, then their
  // connections close. Callable from the io_context thread; from another thread it is posted.
  void Stop();

  // How long a client may take to send a request, and how long a connection may sit idle between
  // requests (default 30 s). Tests shorten it; set it before Listen.
  void set_read_timeout(std::chrono::milliseconds timeout);
  // Accept TLS beside plaintext (HTTPS; or only TLS if tls->required()). Before Listen.
  void set_tls(net::TlsConfig* tls);

  struct State;  // shared with the connections, so they may outlive this object safely

 private:
  std::shared_ptr<State> state_;
};

}  // namespace cellar::server
