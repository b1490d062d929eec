// GrpcServer: the API-port listener of one event loop (SO_REUSEPORT, like RESP), serving every
// gRPC service over HTTP/2 on that loop's thread.
#pragma once

#include <memory>
#include <atomic>
#include <cstdint>
#include <string>

#include <absl/container/flat_hash_set.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "frontend/grpc/services.h"
#include "frontend/net/listen.h"
#include "frontend/net/tls.h"

namespace cellar::grpc {

class Connection;

class GrpcServer {
 public:
  // Momento's SDK multiplexes up to 100 subscriptions per connection; allow more.
  static constexpr uint32_t kMaxConcurrentStreams = 1000;

  // tls: when set, the port also accepts TLS (ALPN h2), told apart from h2c by the first byte
  // (only TLS if tls->required()).
  GrpcServer(boost::asio::io_context& io, uint32_t thread, const ServiceContext* context,
             net::TlsConfig* tls = nullptr);
  ~GrpcServer();

  // Throws std::runtime_error on failure (start-up only).
  void Listen(const std::string& address, uint16_t port);
  uint16_t port() const { return listener_.port(); }
  // Stops accepting and sends GOAWAY on every connection; each closes once its streams in
  // flight are answered.
  void Stop();
  void CloseAll();

  uint32_t thread() const { return thread_; }
  const ServiceContext& context() const { return *context_; }
  net::TlsConfig* tls() const { return tls_; }
  static std::atomic<int64_t>& LiveConnections();
  // Request bytes held by streams still receiving their bodies, every connection together
  // (bounded by ServiceContext::max_buffered_request_bytes).
  static std::atomic<uint64_t>& BufferedRequestBytes();
  // Adds n to BufferedRequestBytes if the total stays within `bound`; false (nothing added)
  // if not. Exact across loops: of two arriving at once, only the one past the bound is refused.
  static bool ReserveRequestBytes(uint64_t n, uint64_t bound);

 private:
  friend class Connection;

  // Every kSweepMs, connections past their pre-auth or idle timeout (net::ConnectionOptions)
  // are closed (Connection::CloseIfTimedOut).
  static constexpr int64_t kSweepMs = 1000;
  void ArmSweep();

  boost::asio::io_context& io_;
  const uint32_t thread_;
  const ServiceContext* context_;
  net::TlsConfig* tls_;
  net::Listener listener_;
  absl::flat_hash_set<Connection*> conns_;
  uint64_t next_id_;
  boost::asio::steady_timer sweep_timer_;
  uint64_t sweep_epoch_ = 0;
  bool stopped_ = false;
  // Plaintext connections read into this loop's buffer, one at a time, and keep none of
  // their own (Connection::ReadReady).
  std::unique_ptr<char[]> read_buffer_;
  char* ReadBuffer();
};

}  // namespace cellar::grpc
