// The listening socket every front-end uses: one acceptor per event loop on the same port
// (SO_REUSEPORT), so the kernel spreads connections over the loops.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "frontend/net/conn_gate.h"

namespace cellar::net {

// Opens, binds and listens. `first`: the first loop to bind this port; a fixed port is then
// probed without SO_REUSEPORT first, so another server holding it (even through SO_REUSEPORT)
// makes start-up fail instead of silently sharing its traffic. Throws std::runtime_error
// naming `proto` on failure (start-up only). Returns the bound port.
uint16_t ListenReusePort(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address,
                         uint16_t port, bool first, std::string_view proto);

// The accept loop of one front-end on one event loop: every accepted socket takes a slot of
// its port's ConnectionGate and goes to on_accept with it; when the port or the process is
// full, the socket goes to on_refuse (which may write a one-line error; it is closed after)
// instead. An accept error (out of descriptors, ...) is retried after 50 ms rather than
// spinning, and logged at most once every 10 s (with how many were not logged).
// Thread: the io_context's.
class Listener {
 public:
  using OnAccept = std::function<void(boost::asio::ip::tcp::socket, ConnectionGate::Slot)>;
  using OnRefuse = std::function<void(boost::asio::ip::tcp::socket&)>;
  Listener(boost::asio::io_context& io, std::string proto, Port port)
      : io_(io), acceptor_(io), proto_(proto), gate_(ConnectionGate::Of(port)) {}

  // ListenReusePort, then accepts until Stop. Throws like ListenReusePort.
  void Listen(const std::string& address, uint16_t port, bool first, OnAccept on_accept,
              OnRefuse on_refuse = nullptr);
  uint16_t port() const { return port_; }
  void Stop();

 private:
  void Accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const std::string proto_;
  ConnectionGate& gate_;
  OnAccept on_accept_;
  OnRefuse on_refuse_;
  uint16_t port_ = 0;
  bool stopping_ = false;
};

// Writes a short line now, without blocking (best effort: a socket with nothing queued takes
// it whole), before the caller closes the socket: how a refusal is told to a plaintext client.
void SendLineNow(boost::asio::ip::tcp::socket& socket, std::string_view line);

// Calls fn on each connection of a server's live set; fn may close (and so erase) any of them.
template <typename Set, typename Fn>
void ForEachLive(Set& live, Fn fn) {
  std::vector<typename Set::value_type> copy(live.begin(), live.end());
  for (auto* c : copy) {
    if (live.contains(c)) fn(c);
  }
}

}  // namespace cellar::net
