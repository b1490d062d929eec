#include "frontend/grpc/grpc_server.h"

#include <memory>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "common/logging.h"
#include "frontend/grpc/connection.h"
#include "frontend/net/listen.h"

namespace cellar::grpc {

namespace asio = boost::asio;
using boost::system::error_code;

std::atomic<int64_t>& GrpcServer::LiveConnections() {
  static std::atomic<int64_t> live{0};
  return live;
}

GrpcServer::GrpcServer(asio::io_context& io, uint32_t thread, const ServiceContext* context,
                       asio::ssl::context* tls)
    : io_(io),
      thread_(thread),
      context_(context),
      tls_(tls),
      acceptor_(io),
      next_id_((static_cast<uint64_t>(thread) << 48) + 1) {}

GrpcServer::~GrpcServer() = default;

void GrpcServer::Listen(const std::string& address, uint16_t port) {
  port_ = net::ListenReusePort(acceptor_, address, port, thread_ == 0, "gRPC");
  Accept();
}

void GrpcServer::Accept() {
  acceptor_.async_accept([this](error_code ec, asio::ip::tcp::socket socket) {
    if (stopping_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      LOG_WARN("msg=\"accept failed\" proto=grpc error=\"{}\"", ec.message());
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](error_code) {
        if (!stopping_) Accept();
      });
      return;
    }
    std::make_shared<Connection>(this, std::move(socket), next_id_++)->Start();
    Accept();
  });
}

void GrpcServer::Stop() {
  stopping_ = true;
  error_code ec;
  acceptor_.close(ec);
  std::vector<Connection*> conns(conns_.begin(), conns_.end());
  for (Connection* c : conns) {
    if (conns_.contains(c)) c->Shutdown();
  }
}

void GrpcServer::CloseAll() {
  std::vector<Connection*> conns(conns_.begin(), conns_.end());
  for (Connection* c : conns) {
    if (conns_.contains(c)) c->ForceClose();
  }
}

}  // namespace cellar::grpc
