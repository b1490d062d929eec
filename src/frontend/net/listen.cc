#include "frontend/net/listen.h"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
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

void SendLineNow(asio::ip::tcp::socket& socket, std::string_view line) {
  (void)::send(socket.native_handle(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void Listener::Listen(const std::string& address, uint16_t port, bool first,
                      OnAccept on_accept, OnRefuse on_refuse) {
  port_ = ListenReusePort(acceptor_, address, port, first, proto_);
  on_accept_ = std::move(on_accept);
  on_refuse_ = std::move(on_refuse);
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
      // Out of descriptors repeats every retry: logged at a bounded rate, process-wide.
      static std::atomic<int64_t> last_log_ms{0};
      static std::atomic<uint64_t> unlogged{0};
      const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
      int64_t last = last_log_ms.load(std::memory_order_relaxed);
      if (now_ms - last >= 10000 &&
          last_log_ms.compare_exchange_strong(last, now_ms, std::memory_order_relaxed)) {
        LOG_WARN("msg=\"accept failed\" proto={} error=\"{}\" not_logged_since_last={}", proto_,
                 ec.message(), unlogged.exchange(0, std::memory_order_relaxed));
      } else {
        unlogged.fetch_add(1, std::memory_order_relaxed);
      }
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](error_code) {
        if (!stopping_) Accept();
      });
      return;
    }
    ConnectionGate::Slot slot = gate_.TryAcquire();
    if (!slot) {
      if (on_refuse_) on_refuse_(socket);
      error_code ignored;
      socket.close(ignored);
    } else {
      on_accept_(std::move(socket), std::move(slot));
    }
    Accept();
  });
}

}  // namespace cellar::net
