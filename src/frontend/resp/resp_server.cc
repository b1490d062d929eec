#include "frontend/resp/resp_server.h"

#include <stdexcept>
#include <string_view>

#include "common/clock.h"
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

std::atomic<uint64_t>& RespServer::LargeReceiveBytes() {
  static std::atomic<uint64_t> bytes{0};
  return bytes;
}

RespServer::RespServer(asio::io_context& io, uint32_t thread, ServerContext* server,
                       ParserLimits limits, net::TlsConfig* tls)
    : io_(io),
      thread_(thread),
      server_(server),
      limits_(limits),
      listener_(io, "RESP", net::Port::kResp),
      tls_(tls),
      // Connection ids are unique across loops: the loop index in the high bits.
      next_id_((static_cast<uint64_t>(thread) << 48) + 1),
      sweep_timer_(io) {}

RespServer::~RespServer() = default;

void RespServer::Listen(const std::string& address, uint16_t port) {
  listener_.Listen(
      address, port, thread_ == 0,
      [this](asio::ip::tcp::socket socket, net::ConnectionGate::Slot slot) {
        std::make_shared<Connection>(this, std::move(socket), next_id_++, std::move(slot))
            ->Start();
      },
      [](asio::ip::tcp::socket& socket) {
        // Redis's words for the same refusal; best effort (the socket is new and empty, so
        // the line fits its buffer), then the listener closes it.
        net::SendLineNow(socket, ErrorLine(RespError::kMaxClients));
      });
  ArmSweep();
}

void RespServer::ArmSweep() {
  sweep_timer_.expires_after(std::chrono::milliseconds(kSweepMs));
  sweep_timer_.async_wait([this](error_code ec) {
    if (ec || stopped_) return;  // not `this` on abort: the server may be gone
    const uint64_t epoch = ++sweep_epoch_;
    for (Connection* c : conns_) c->ParkIfIdle(epoch);  // only cancels reads: conns_ stays
    const int64_t now_ms = SystemClock::Get()->NowMillis();
    net::ForEachLive(conns_, [&](Connection* c) { c->CloseIfTimedOut(epoch, now_ms); });
    ArmSweep();
  });
}

void RespServer::Stop() {
  stopped_ = true;
  sweep_timer_.cancel();
  listener_.Stop();
  net::ForEachLive(conns_, [](Connection* c) { c->Shutdown(); });
}

void RespServer::CloseAll() {
  net::ForEachLive(conns_, [](Connection* c) { c->ForceClose(); });
}

}  // namespace cellar::resp
