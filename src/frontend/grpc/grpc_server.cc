#include "frontend/grpc/grpc_server.h"

#include <memory>
#include <vector>

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
                       net::TlsConfig* tls)
    : io_(io),
      thread_(thread),
      context_(context),
      tls_(tls),
      listener_(io, "gRPC"),
      next_id_((static_cast<uint64_t>(thread) << 48) + 1) {}

GrpcServer::~GrpcServer() = default;

void GrpcServer::Listen(const std::string& address, uint16_t port) {
  listener_.Listen(address, port, thread_ == 0, [this](asio::ip::tcp::socket socket) {
    std::make_shared<Connection>(this, std::move(socket), next_id_++)->Start();
  });
}

void GrpcServer::Stop() {
  listener_.Stop();
  net::ForEachLive(conns_, [](Connection* c) { c->Shutdown(); });
}

void GrpcServer::CloseAll() {
  net::ForEachLive(conns_, [](Connection* c) { c->ForceClose(); });
}

}  // namespace cellar::grpc
