// RespServer: the RESP listener of one event loop. Every loop has its own acceptor on the same
// port (SO_REUSEPORT), so the kernel spreads connections over the loops; a connection lives
// on the loop that accepted it for its whole life.
//
// Thread: each RespServer and its connections belong to one loop thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <absl/container/flat_hash_set.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "frontend/net/listen.h"
#include "frontend/net/tls.h"
#include "frontend/resp/commands.h"
#include "frontend/resp/parser.h"

namespace cellar::resp {

class Connection;

class RespServer {
 public:
  // tls: when set, the port also accepts TLS, told apart by the first byte (only TLS if
  // tls->required()).
  RespServer(boost::asio::io_context& io, uint32_t thread, ServerContext* server,
             ParserLimits limits, net::TlsConfig* tls = nullptr);
  ~RespServer();

  // Binds with SO_REUSEPORT; throws std::runtime_error on failure (start-up only).
  void Listen(const std::string& address, uint16_t port);
  uint16_t port() const { return listener_.port(); }
  // Stops accepting; idle connections close now, busy ones after their current replies.
  void Stop();
  // Closes every connection now, busy or not (the end of a shutdown that ran out of time).
  void CloseAll();
  size_t connections() const { return conns_.size(); }

  // Connections alive on every loop; shutdown waits for this to reach zero.
  static std::atomic<int64_t>& LiveConnections();
  // Receive-buffer bytes past 16 KiB per connection (large commands being received), every
  // connection together: bounded by ServerContext::max_buffered_request_bytes.
  static std::atomic<uint64_t>& LargeReceiveBytes();

 private:
  friend class Connection;

  // Every kSweepMs, connections that have read nothing for a whole period give back their
  // receive buffer (Connection::ParkIfIdle): busy connections keep theirs between reads; and
  // connections past their pre-auth or idle timeout are closed (Connection::CloseIfTimedOut).
  static constexpr int64_t kSweepMs = 1000;
  void ArmSweep();
  // A loop-wide buffer for the read after a readability wait: the bytes are copied into a
  // connection buffer of their size, so a subscriber's occasional command never costs it a
  // full-size receive buffer.
  static constexpr size_t kWakeReadBytes = 16 * 1024;
  char* WakeReadBuffer() {
    if (!wake_read_) wake_read_ = std::make_unique<char[]>(kWakeReadBytes);
    return wake_read_.get();
  }

  boost::asio::io_context& io_;
  const uint32_t thread_;
  ServerContext* server_;
  ParserLimits limits_;
  net::Listener listener_;
  net::TlsConfig* tls_;
  absl::flat_hash_set<Connection*> conns_;
  uint64_t next_id_;
  std::unique_ptr<char[]> wake_read_;
  boost::asio::steady_timer sweep_timer_;
  uint64_t sweep_epoch_ = 0;
  bool stopped_ = false;
};

}  // namespace cellar::resp
