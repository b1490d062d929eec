// A synchronous client for the admin HTTP API (docs/interfaces.md): one request per call over a
// kept-alive connection, with the admin key as a bearer token.
#pragma once

#include <cstdint>
#include <string>

#include "cli/net.h"

namespace cellar::cli {

struct AdminResponse {
  int status = 0;
  std::string body;
};

class AdminClient {
 public:
  AdminClient(std::string host, uint16_t port, std::string key);

  // method: "GET", "PUT", ...; target: the already percent-encoded path; body: sent with
  // content_type when not empty. Throws CliError when the server cannot be reached or the
  // exchange fails; HTTP error statuses are returned.
  AdminResponse Request(const std::string& method, const std::string& target,
                        const std::string& body = {},
                        const std::string& content_type = "application/json");

 private:
  TimedConnection conn_;
  std::string key_;
  bool connected_ = false;
};

// Percent-encodes a cache name for use as one path segment (everything but unreserved characters).
std::string EncodePathSegment(const std::string& segment);

}  // namespace cellar::cli
