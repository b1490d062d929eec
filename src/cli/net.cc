#include "cli/net.h"

#include <fmt/format.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <cctype>

namespace cellar::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

std::string DescribeError(const error_code& ec) {
  if (ec == beast::error::timeout || ec == asio::error::timed_out) {
    return fmt::format("timed out after {} s", kIoTimeout.count());
  }
  if (ec == asio::error::eof) return "the server closed the connection";
  std::string message = ec.message();
  // Sentences in our messages are lowercase inside parentheses: "(connection refused)".
  if (!message.empty() && message.size() > 1 &&
      std::islower(static_cast<unsigned char>(message[1]))) {
    message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  }
  return message;
}

TimedConnection::TimedConnection(std::string host, uint16_t port, std::string what)
    : host_(std::move(host)), port_(port), what_(std::move(what)), stream_(io_) {}

std::string TimedConnection::address() const {
  // IPv6 literals need brackets to be readable next to the port.
  if (host_.find(':') != std::string::npos) return fmt::format("[{}]:{}", host_, port_);
  return fmt::format("{}:{}", host_, port_);
}

void TimedConnection::Connect() {
  auto fail = [&](const std::string& reason) {
    throw CliError(fmt::format("cannot reach {} at {} ({}). Is 'cellar serve' running?", what_,
                               address(), reason));
  };
  tcp::resolver resolver(io_);
  error_code ec;
  auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
  if (ec) fail("cannot resolve host: " + DescribeError(ec));
  ec = Run([&](auto handler) {
    stream_.async_connect(
        endpoints, [handler](error_code ec, const tcp::endpoint&) mutable { handler(ec, 0); });
  });
  if (ec) fail(DescribeError(ec));
  error_code ignored;
  stream_.socket().set_option(tcp::no_delay(true), ignored);
}

void TimedConnection::FailIo(const error_code& ec) const {
  throw CliError(
      fmt::format("lost the connection to {} at {} ({})", what_, address(), DescribeError(ec)));
}

}  // namespace cellar::cli
