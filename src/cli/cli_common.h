// What the CLI's commands share: where the server is, and how an admin API answer becomes a
// JSON document or a CliError with the server's message.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/admin_client.h"
#include "common/json.h"
#include "cli/net.h"

namespace CLI {
class App;
}

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

// Prints rows under a header with each column as wide as its widest cell; columns named in
// `right` (by index) are right-aligned (numbers).
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows,
                const std::vector<bool>& right = {});
// A JSON value as a table cell ("-" when absent), and as a number (0 when absent).
std::string Text(const Json* v);
uint64_t Uint(const Json* v);

// A group of the CLI's subcommands, registered from its own file; CliMain only parses the
// global options, finds the group that was given and runs it.
class CommandGroup {
 public:
  virtual ~CommandGroup() = default;
  // Adds the group's subcommands and their options to the app.
  virtual void Register(CLI::App& app) = 0;
  // After parsing: whether one of its subcommands was given, and whether that one talks to
  // the admin port (else the RESP port), so only the port it needs is looked up.
  virtual bool Parsed() const = 0;
  virtual bool UsesAdmin() const = 0;
  // Runs the subcommand given: its exit code (CliError for a failure to report).
  virtual std::optional<int> Run(const Target& t) = 0;
};
std::unique_ptr<CommandGroup> ControlCommands();  // cache, tenant, key, signing-key
std::unique_ptr<CommandGroup> DataCommands();     // get, set, delete
std::unique_ptr<CommandGroup> ObserveCommands();  // limits, stats, usage (observe.cc)
std::unique_ptr<CommandGroup> ClusterCommands();  // cluster status, node drain (cli_cluster.cc)

}  // namespace cellar::cli
