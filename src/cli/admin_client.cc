#include "cli/admin_client.h"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace cellar::cli {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;

namespace {
// Listing thousands of caches is still far below this; it only stops a runaway answer.
constexpr std::uint64_t kMaxResponseBody = 64 * 1024 * 1024;
}  // namespace

AdminClient::AdminClient(std::string host, uint16_t port, std::string key)
    : conn_(std::move(host), port, "the admin API"), key_(std::move(key)) {}

AdminResponse AdminClient::Request(const std::string& method, const std::string& target,
                                   const std::string& body, const std::string& content_type) {
  if (!connected_) {
    conn_.stream().close();  // after a "Connection: close" answer; a no-op the first time
    conn_.Connect();
    connected_ = true;
  }
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, conn_.address());
  req.set(http::field::user_agent, "cellar-cli/" CELLAR_VERSION);
  if (!key_.empty()) req.set(http::field::authorization, "Bearer " + key_);
  if (!body.empty()) {
    req.set(http::field::content_type, content_type);
    req.body() = body;
    req.prepare_payload();
  } else if (method != "GET" && method != "DELETE") {
    req.content_length(0);  // no body, but HTTP/1.1 servers want to be told so
  }

  error_code ec = conn_.Run([&](auto handler) { http::async_write(conn_.stream(), req, handler); });
  if (ec) conn_.FailIo(ec);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  ec = conn_.Run([&](auto handler) { http::async_read(conn_.stream(), buffer, parser, handler); });
  if (ec) conn_.FailIo(ec);
  auto res = parser.release();
  if (!res.keep_alive()) connected_ = false;  // reconnect on the next request
  return AdminResponse{static_cast<int>(res.result_int()), std::move(res.body())};
}

std::string EncodePathSegment(const std::string& segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace cellar::cli
