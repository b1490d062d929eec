// A small HTTP/1.1 server for the admin API (/healthz, /metrics, /v1/caches...). It runs on one
// io_context that the caller drives; the handler is called on that thread and answers through a
// callback, so it may finish the request later (for example after asking every shard).
//
// Limits protect the process from clients that misbehave: headers up to 16 KiB (431 beyond),
// bodies up to 1 MiB (413 beyond), and a 30 s read timeout so a client that sends half a request
// only ever ties up its own connection. Malformed requests get 400 and the connection closes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

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
