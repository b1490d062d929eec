#include "frontend/net/stream.h"

#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/logging.h"

namespace cellar::net {

namespace asio = boost::asio;
using boost::system::error_code;

void Stream::Start(TlsConfig* tls, std::function<void(bool)> done) {
  if (tls == nullptr) return done(true);
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [this, tls, done = std::move(done)](error_code ec) mutable {
                       if (ec) return done(false);
                       unsigned char first = 0;
                       const size_t n = socket_.receive(asio::buffer(&first, 1),
                                                        asio::ip::tcp::socket::message_peek, ec);
                       if (ec || n == 0) return done(false);
                       if (first != kTlsHandshakeByte) return done(!tls->required());
                       ctx_ = tls->Current();
                       tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_,
                                                                                         *ctx_);
                       tls_->async_handshake(asio::ssl::stream_base::server,
                                             [done = std::move(done)](error_code ec) {
                                               if (ec) {
                                                 LOG_DEBUG("msg=\"tls handshake failed\" error=\"{}\"",
                                                           ec.message());
                                               }
                                               done(!ec);
                                             });
                     });
}

void Stream::StartClient(std::shared_ptr<asio::ssl::context> ctx, const std::string& host,
                         std::function<void(bool)> done) {
  ctx_ = std::move(ctx);
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *ctx_);
  error_code ec;
  if (asio::ip::make_address(host, ec), ec) {  // a name, not an address: SNI
    SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());
  }
  // The peer's name is checked when the context verifies peers (a CA was given).
  if ((SSL_CTX_get_verify_mode(ctx_->native_handle()) & SSL_VERIFY_PEER) != 0) {
    tls_->set_verify_callback(asio::ssl::host_name_verification(host));
  }
  tls_->async_handshake(asio::ssl::stream_base::client,
                        [done = std::move(done), host](error_code ec) {
                          if (ec) {
                            LOG_WARN("msg=\"tls handshake with a peer failed\" peer={} error=\"{}\"",
                                     host, ec.message());
                          }
                          done(!ec);
                        });
}

std::string Stream::ExportKeyingMaterial(std::string_view label) {
  if (!tls_) return {};
  std::string out(32, '\0');
  if (SSL_export_keying_material(tls_->native_handle(), reinterpret_cast<unsigned char*>(out.data()),
                                 out.size(), label.data(), label.size(), nullptr, 0, 0) != 1) {
    return {};
  }
  return out;
}

void Stream::Close() {
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

namespace {

// Reads and drops what the peer sends until it closes, or the timer closes the socket.
void DrainUntilClosed(asio::ip::tcp::socket& socket, std::shared_ptr<asio::steady_timer> timer,
                      std::shared_ptr<void> owner) {
  socket.async_wait(asio::ip::tcp::socket::wait_read,
                    [&socket, timer = std::move(timer), owner = std::move(owner)](error_code ec) {
                      if (!ec) {
                        char sink[16384];
                        size_t n = 0;
                        do {
                          n = socket.read_some(asio::buffer(sink), ec);
                        } while (!ec && n > 0);
                        if (ec == asio::error::would_block || ec == asio::error::try_again) {
                          return DrainUntilClosed(socket, timer, owner);
                        }
                      }
                      timer->cancel();  // the peer closed, or the socket failed or was closed
                      socket.close(ec);
                    });
}

}  // namespace

void Stream::CloseAfterAnswer(std::shared_ptr<void> owner) {
  error_code ec;
  socket_.cancel(ec);  // reads in flight end (their handlers find the connection closed)
  socket_.non_blocking(true, ec);
  if (!ec) socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec) return Close();
  auto timer = std::make_shared<asio::steady_timer>(socket_.get_executor(),
                                                    std::chrono::milliseconds(kLingerMs));
  timer->async_wait([this, owner](error_code ec) {
    if (!ec) Close();  // the peer never closed: the rest goes unread
  });
  DrainUntilClosed(socket_, std::move(timer), std::move(owner));
}

}  // namespace cellar::net
