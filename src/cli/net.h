// Blocking client connections with deadlines, for the CLI. Every connect, read and write gives up
// after a timeout (5 s) so that a wedged server or a black-holed port never hangs a script.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cellar::cli {

inline constexpr std::chrono::seconds kIoTimeout{5};

// A failure the CLI reports as "cellar: <what()>" with exit code 1.
class CliError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "connection refused", "timed out after 5 s", ...: the reason part of an error message.
std::string DescribeError(const boost::system::error_code& ec);

// One TCP connection to host:port. `what` names the service in messages ("the admin API").
class TimedConnection {
 public:
  TimedConnection(std::string host, uint16_t port, std::string what);

  // Throws CliError: "cannot reach <what> at host:port (<reason>). Is 'cellar serve' running?"
  void Connect();

  // Runs one asynchronous operation on the stream to completion under the deadline. start receives
  // a completion handler taking (error_code, std::size_t). Returns the operation's error.
  template <typename Start>
  boost::system::error_code Run(Start&& start) {
    boost::system::error_code result = boost::asio::error::would_block;
    stream_.expires_after(kIoTimeout);
    start([&result](boost::system::error_code ec, std::size_t) { result = ec; });
    io_.restart();
    io_.run();
    return result;
  }

  // Throws CliError: "lost the connection to <what> at host:port (<reason>)".
  [[noreturn]] void FailIo(const boost::system::error_code& ec) const;

  boost::beast::tcp_stream& stream() { return stream_; }
  std::string address() const;  // "host:port"
  const std::string& host() const { return host_; }

 private:
  std::string host_;
  uint16_t port_;
  std::string what_;
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
};

}  // namespace cellar::cli
