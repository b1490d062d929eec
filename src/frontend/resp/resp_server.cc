#include "frontend/resp/resp_server.h"

#include <stdexcept>

#include <boost/asio/steady_timer.hpp>

#include "common/logging.h"
#include "frontend/net/listen.h"
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
  port_ = net::ListenReusePort(acceptor_, address, port, thread_ == 0, "RESP");
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
