// The listening socket every front-end uses: one acceptor per event loop on the same port
// (SO_REUSEPORT), so the kernel spreads connections over the loops.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace cellar::net {

// Opens, binds and listens. `first`: the first loop to bind this port; a fixed port is then
// probed without SO_REUSEPORT first, so another server holding it (even through SO_REUSEPORT)
// makes start-up fail instead of silently sharing its traffic. Throws std::runtime_error
// naming `proto` on failure (start-up only). Returns the bound port.
uint16_t ListenReusePort(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address,
                         uint16_t port, bool first, std::string_view proto);

}  // namespace cellar::net
