#include "frontend/grpc/grpc_server.h"

#include <memory>
#include <vector>

#include "common/clock.h"
#include "frontend/grpc/connection.h"
#include "frontend/net/listen.h"

namespace cellar::grpc {

namespace asio = boost::asio;
using boost::system::error_code;

std::atomic<int64_t>& GrpcServer::LiveConnections() {
  static std::atomic<int64_t> live{0};
  return live;
}

std::atomic<uint64_t>& GrpcServer::BufferedRequestBytes() {
  static std::atomic<uint64_t> bytes{0};
  return bytes;
}

bool GrpcServer::ReserveRequestBytes(uint64_t n, uint64_t bound) {
  std::atomic<uint64_t>& all = BufferedRequestBytes();
  uint64_t cur = all.load(std::memory_order_relaxed);
  do {
    if (n > bound || cur > bound - n) return false;
  } while (!all.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
  return true;
}

GrpcServer::GrpcServer(asio::io_context& io, uint32_t thread, const ServiceContext* context,
                       net::TlsConfig* tls)
    : io_(io),
      thread_(thread),
      context_(context),
      tls_(tls),
      listener_(io, "gRPC", net::Port::kApi),
      next_id_((static_cast<uint64_t>(thread) << 48) + 1),
      sweep_timer_(io) {}

GrpcServer::~GrpcServer() = default;

char* GrpcServer::ReadBuffer() {
  if (!read_buffer_) read_buffer_ = std::make_unique<char[]>(Connection::kReadBytes);
  return read_buffer_.get();
}

void GrpcServer::Listen(const std::string& address, uint16_t port) {
  // A refused connection is closed without a word: HTTP/2 has no refusal before the preface,
  // and gRPC clients read a closed connection as UNAVAILABLE, which they retry.
  listener_.Listen(address, port, thread_ == 0,
                   [this](asio::ip::tcp::socket socket, net::ConnectionGate::Slot slot) {
                     // --momento-local's GET /block: as if the network were down.
                     if (context_->momento_local && local::Blocked().load()) return;
                     std::make_shared<Connection>(this, std::move(socket), next_id_++,
                                                  std::move(slot))
                         ->Start();
                   });
  ArmSweep();
}

void GrpcServer::ArmSweep() {
  sweep_timer_.expires_after(std::chrono::milliseconds(kSweepMs));
  sweep_timer_.async_wait([this](error_code ec) {
    if (ec || stopped_) return;  // not `this` on abort: the server may be gone
    const uint64_t epoch = ++sweep_epoch_;
    const int64_t now_ms = SystemClock::Get()->NowMillis();
    net::ForEachLive(conns_, [&](Connection* c) { c->CloseIfTimedOut(epoch, now_ms); });
    ArmSweep();
  });
}

void GrpcServer::Stop() {
  stopped_ = true;
  sweep_timer_.cancel();
  listener_.Stop();
  net::ForEachLive(conns_, [](Connection* c) { c->Shutdown(); });
}

void GrpcServer::CloseAll() {
  net::ForEachLive(conns_, [](Connection* c) { c->ForceClose(); });
}

}  // namespace cellar::grpc
