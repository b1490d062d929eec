// A client connection's byte stream: a TCP socket, optionally wrapped in TLS. With TLS
// configured, Start peeks at the first byte: a TLS ClientHello (0x16) starts a handshake,
// anything else stays plaintext (refused when the TLS config says TLS is required). RESP and
// gRPC both start this way, so one port serves both forms. Thread: the owning loop's.
#pragma once

#include <functional>
#include <memory>
#include <utility>

#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "frontend/net/tls.h"

namespace cellar::net {

class Stream {
 public:
  explicit Stream(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  // Not yet connected (a connection this process makes).
  explicit Stream(boost::asio::io_context& io) : socket_(io) {}

  boost::asio::ip::tcp::socket& socket() { return socket_; }
  bool is_tls() const { return tls_ != nullptr; }

  // done(true) once the connection may be read (plaintext, or TLS after its handshake);
  // done(false) if it should be closed. Without tls, done(true) at once.
  void Start(TlsConfig* tls, std::function<void(bool)> done);
  // The client side (a connection this process made): a TLS handshake with `ctx`, naming
  // `host` (SNI, and the name checked when ctx verifies peers); done(false) on failure.
  void StartClient(std::shared_ptr<boost::asio::ssl::context> ctx, const std::string& host,
                   std::function<void(bool)> done);
  // 32 bytes of TLS keying material under `label` (RFC 5705), the same on both ends of this
  // TLS session only: binds a proof to it. Empty without TLS.
  std::string ExportKeyingMaterial(std::string_view label);

  template <typename Buffer, typename Handler>
  void AsyncRead(const Buffer& buffer, Handler&& handler) {  // exactly the buffer's size
    if (tls_) {
      boost::asio::async_read(*tls_, buffer, std::forward<Handler>(handler));
    } else {
      boost::asio::async_read(socket_, buffer, std::forward<Handler>(handler));
    }
  }

  template <typename Buffer, typename Handler>
  void AsyncReadSome(const Buffer& buffer, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffer, std::forward<Handler>(handler));
    } else {
      socket_.async_read_some(buffer, std::forward<Handler>(handler));
    }
  }

  template <typename Buffer, typename Handler>
  void AsyncWrite(const Buffer& buffer, Handler&& handler) {
    if (tls_) {
      boost::asio::async_write(*tls_, buffer, std::forward<Handler>(handler));
    } else {
      boost::asio::async_write(socket_, buffer, std::forward<Handler>(handler));
    }
  }

  // Closes the socket (no TLS close_notify); pending operations end with an error.
  void Close();
  // Closes after a last answer (a refusal, a GOAWAY, a WebSocket close): the peer gets a FIN
  // after what was written, and what it still sends (the rest of a refused body) is read and
  // dropped until it closes too, for kLingerMs at most. Closing at once, with its bytes unread,
  // would reset the connection, and a reset makes the peer's kernel drop the answer before its
  // application reads it. `owner` (the connection) is held until the socket is closed.
  void CloseAfterAnswer(std::shared_ptr<void> owner);
  static constexpr int kLingerMs = 2000;

 private:
  boost::asio::ip::tcp::socket socket_;
  std::shared_ptr<boost::asio::ssl::context> ctx_;  // outlives tls_ (declared first)
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
};

}  // namespace cellar::net
