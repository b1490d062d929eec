#include "frontend/resp/resp_server.h"

#include <sys/socket.h>

#include <stdexcept>

#include <boost/asio/steady_timer.hpp>

#include "common/logging.h"
#include "frontend/resp/connection.h"

namespace cellar::resp {

namespace asio = boost::asio;
using boost::system::error_code;

std::atomic<int64_t>& RespServer::LiveConnections() {
  static std::atomic<int64_t> live{0};
  return live;
}

RespServer::RespServer(asio::io_context& io, uint32_t thread, ServerContext* server,
                       ParserLimits limits)
    : io_(io),
      thread_(thread),
      server_(server),
      limits_(limits),
      acceptor_(io),
      // Connection ids are unique across loops: the loop index in the high bits.
      next_id_((static_cast<uint64_t>(thread) << 48) + 1) {}

RespServer::~RespServer() = default;

void RespServer::Listen(const std::string& address, uint16_t port) {
  error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("invalid bind address '" + address + "'");
  asio::ip::tcp::endpoint ep(addr, port);
  if (port != 0 && thread_ == 0) {
    // SO_REUSEPORT would let us share a port another server already listens on (same user)
    // and silently split its traffic. A probe bind without it fails if the port is taken.
    asio::ip::tcp::acceptor probe(io_);
    probe.open(ep.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    probe.bind(ep, ec);
    if (ec) {
      throw std::runtime_error("cannot listen for RESP on " + address + ":" + std::to_string(port) +
                               ": " + ec.message());
    }
    probe.close();
  }
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  int one = 1;
  if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    throw std::runtime_error("SO_REUSEPORT is not available");
  }
  acceptor_.bind(ep, ec);
  if (ec) {
    throw std::runtime_error("cannot listen for RESP on " + address + ":" + std::to_string(port) +
                             ": " + ec.message());
  }
  acceptor_.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
  Accept();
}

void RespServer::Accept() {
  acceptor_.async_accept([this](error_code ec, asio::ip::tcp::socket socket) {
    if (stopping_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      LOG_WARN("msg=\"accept failed\" proto=resp error=\"{}\"", ec.message());
      // Out of descriptors and the like: back off briefly rather than spin.
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](error_code) {
        if (!stopping_) Accept();
      });
      return;
    }
    auto conn = std::make_shared<Connection>(this, std::move(socket), next_id_++);
    conn->Start();
    Accept();
  });
}

void RespServer::Stop() {
  stopping_ = true;
  error_code ec;
  acceptor_.close(ec);
  // Copy: Shutdown may destroy connections, which erase themselves from conns_.
  std::vector<Connection*> conns(conns_.begin(), conns_.end());
  for (Connection* c : conns) {
    if (conns_.contains(c)) c->Shutdown();
  }
}

}  // namespace cellar::resp

namespace cellar::resp {

void RespServer::CloseAll() {
  std::vector<Connection*> conns(conns_.begin(), conns_.end());
  for (Connection* c : conns) {
    if (conns_.contains(c)) c->ForceClose();
  }
}

}  // namespace cellar::resp
