#include "frontend/net/listen.h"

#include <sys/socket.h>

#include <memory>
#include <stdexcept>

#include <boost/asio/steady_timer.hpp>

#include "common/logging.h"

namespace cellar::net {

namespace asio = boost::asio;
using boost::system::error_code;

uint16_t ListenReusePort(asio::ip::tcp::acceptor& acceptor, const std::string& address,
                         uint16_t port, bool first, std::string_view proto) {
  auto fail = [&](const std::string& why) {
    return std::runtime_error("cannot listen for " + std::string(proto) + " on " + address + ":" +
                              std::to_string(port) + ": " + why);
  };
  error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("invalid bind address '" + address + "'");
  asio::ip::tcp::endpoint ep(addr, port);
  if (port != 0 && first) {
    asio::ip::tcp::acceptor probe(acceptor.get_executor());
    probe.open(ep.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    probe.bind(ep, ec);
    if (ec) throw fail(ec.message());
    probe.close();
  }
  acceptor.open(ep.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  int one = 1;
  if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    throw std::runtime_error("SO_REUSEPORT is not available");
  }
  acceptor.bind(ep, ec);
  if (ec) throw fail(ec.message());
  acceptor.listen(asio::socket_base::max_listen_connections);
  return acceptor.local_endpoint().port();
}

void Listener::Listen(const std::string& address, uint16_t port, bool first,
                      OnAccept on_accept) {
  port_ = ListenReusePort(acceptor_, address, port, first, proto_);
  on_accept_ = std::move(on_accept);
  Accept();
}

void Listener::Stop() {
  stopping_ = true;
  error_code ignored;
  acceptor_.close(ignored);
}

void Listener::Accept() {
  acceptor_.async_accept([this](error_code ec, asio::ip::tcp::socket socket) {
    if (stopping_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      LOG_WARN("msg=\"accept failed\" proto={} error=\"{}\"", proto_, ec.message());
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](error_code) {
        if (!stopping_) Accept();
      });
      return;
    }
    on_accept_(std::move(socket));
    Accept();
  });
}

}  // namespace cellar::net
