// What the CLI's commands share: where the server is, and how an admin API answer becomes a
// JSON document or a CliError with the server's message.
#pragma once

#include <cstdint>
#include <string>

#include "cli/admin_client.h"
#include "common/json.h"
#include "cli/net.h"

namespace cellar::cli {

inline constexpr uint16_t kDefaultRespPort = 6379;
inline constexpr uint16_t kDefaultAdminPort = 9090;

// Where to reach the server, after flags, environment and connection files are combined.
struct Target {
  std::string host;
  uint16_t resp_port = kDefaultRespPort;
  uint16_t admin_port = kDefaultAdminPort;
  std::string key;
};

std::string Trim(std::string s);

// A second line for authentication failures: where the CLI looks for the admin key.
std::string KeyHint(bool have_key);

// Throws CliError with the server's {"error":"..."} message, or what we can say without one.
[[noreturn]] void FailHttp(const AdminResponse& res);

// The answer if its status is 2xx; else FailHttp.
AdminResponse CheckedRequest(AdminClient& client, const std::string& method,
                             const std::string& target, const std::string& body = {},
                             const std::string& content_type = "application/json");

// The answer's JSON object; CliError if it is not one.
Json ParseBody(const AdminResponse& res);

}  // namespace cellar::cli
