#include "frontend/net/stream.h"

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

void Stream::Close() {
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace cellar::net
