#include "cli/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "common/json.h"

namespace cellar::cli {

namespace {

constexpr char kFooter[] = R"(Examples:
  cellar serve --data-dir ./cellar-data        start a server (see `cellar serve --help`)
  cellar cache create sessions                 create a cache
  cellar cache list                            caches with their item and byte counts
  cellar set --cache sessions user:1 alice --ttl 60
  cellar get --cache sessions user:1           prints the value; exit code 1 when missing
  cellar delete --cache sessions user:1
  cellar --admin-port 9191 cache flush sessions
  cellar tenant create acme                    a tenant (its caches are its own namespace)
  cellar key create --tenant acme --super-user prints a token for redis AUTH / the SDK
  cellar key create --tenant acme --role ro --cache sessions --key-prefix user: --expires-in 3600
  cellar signing-key rotate                    new tokens are signed with a new key
  cellar signing-key revoke k0123...           that key's tokens stop working at once
  cellar limits set --tenant acme requests_per_second=500 max_ttl_seconds=1d
  cellar limits show --tenant acme --cache sessions   each limit, its value and where it is set
  cellar stats --interval 2                    live ops/s, hit ratio, bytes, latency per cache
  cellar usage --tenant acme --minutes 60      requests and bytes per minute (billing)
  cellar cluster status                        a fleet's nodes, zones, slots and moves
  cellar node drain n2 --wait                  move n2's slots away before it leaves

Ports and the admin key come from --resp-port, --admin-port and --key (or CELLAR_ADMIN_KEY);
those not given are read from DATA_DIR/ports.json and DATA_DIR/admin.key, which `cellar serve`
writes, else the ports default to 6379 (RESP) and 9090 (admin).
Values starting with '-' go after `--`: cellar set --cache c -- key -1
)";

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string JoinPath(const std::string& dir, const std::string& file) {
  if (dir.empty()) return file;
  return dir.back() == '/' ? dir + file : dir + "/" + file;
}

// Fills the ports not given on the command line from DATA_DIR/ports.json, if it exists. Only
// ports.json and admin.key are ever opened: the rest of the data directory is the server's.
void ReadPortsFile(const std::string& data_dir, bool need_resp, bool need_admin, Target* t) {
  if (!need_resp && !need_admin) return;
  std::string path = JoinPath(data_dir, "ports.json");
  std::optional<std::string> text = ReadFile(path);
  if (!text) return;
  std::optional<Json> doc = ParseJson(*text);
  if (!doc || doc->type != Json::Type::kObject) {
    fmt::print(stderr, "cellar: warning: ignoring {} (not a JSON object)\n", path);
    return;
  }
  auto port = [&](const char* name) -> std::optional<uint16_t> {
    const Json* v = doc->Find(name);
    if (!v) return std::nullopt;
    std::optional<uint64_t> n = v->AsUint();
    if (!n || *n == 0 || *n > 65535) {
      fmt::print(stderr, "cellar: warning: ignoring \"{}\" in {} (not a port number)\n", name,
                 path);
      return std::nullopt;
    }
    return static_cast<uint16_t>(*n);
  };
  if (need_resp) {
    if (auto p = port("resp")) t->resp_port = *p;
  }
  if (need_admin) {
    if (auto p = port("admin")) t->admin_port = *p;
  }
}

void ReadKeyFile(const std::string& data_dir, Target* t) {
  std::optional<std::string> text = ReadFile(JoinPath(data_dir, "admin.key"));
  if (text) t->key = Trim(*text);
}

}  // namespace

int CliMain(int argc, char** argv) {
  CLI::App app{"cellar: a Redis- and Momento-compatible cache server", "cellar"};
  app.require_subcommand(1);
  // Global options may also come after the subcommand: `cellar cache list --admin-port 9191`.
  app.fallthrough();
  app.get_formatter()->column_width(28);

  std::string host = "127.0.0.1";
  int resp_port = 0;
  int admin_port = 0;
  std::string key;
  std::string data_dir = "./cellar-data";
  app.add_option("--host", host, "server address")->capture_default_str();
  CLI::Option* resp_opt = app.add_option("--resp-port", resp_port,
                                         "RESP port (default: from DATA_DIR/ports.json, else 6379)")
                              ->check(CLI::Range(1, 65535).description(""))
                              ->type_name("PORT");
  CLI::Option* admin_opt =
      app.add_option("--admin-port", admin_port,
                     "admin HTTP port (default: from DATA_DIR/ports.json, else 9090)")
          ->check(CLI::Range(1, 65535).description(""))
          ->type_name("PORT");
  app.add_option("--key", key, "admin key (default: DATA_DIR/admin.key)")
      ->envname("CELLAR_ADMIN_KEY");
  app.add_option("--data-dir", data_dir,
                 "the server's data directory, read for ports.json and admin.key only")
      ->capture_default_str();

  CLI::App* serve = app.add_subcommand("serve", "run the server; see `cellar serve --help`");
  // Its flags belong to the server, not to this parser.
  serve->prefix_command();
  serve->allow_extras();
  serve->fallthrough(false);
  serve->set_help_flag();

  // The subcommand groups, each registered from its own file.
  std::vector<std::unique_ptr<CommandGroup>> groups;
  groups.push_back(ControlCommands());  // cache, tenant, key, signing-key (cli_control.cc)
  groups.push_back(DataCommands());     // get, set, delete (cli_data.cc)
  groups.push_back(ObserveCommands());  // limits, stats, usage (observe.cc)
  groups.push_back(ClusterCommands());  // cluster status, node drain (cli_cluster.cc)
  for (auto& g : groups) g->Register(app);

  CLI::App* version = app.add_subcommand("version", "print the version");
  app.footer(kFooter);  // set last: subcommands would inherit it

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (version->parsed()) {
    fmt::print("cellar {}\n", CELLAR_VERSION);
    return 0;
  }
  if (serve->parsed()) {
    // main() runs the server only when `serve` is the first argument.
    fmt::print(stderr,
               "cellar: 'serve' must come first, with its options after it: cellar serve "
               "[OPTIONS] (see `cellar serve --help`)\n");
    return 2;
  }

  CommandGroup* parsed = nullptr;
  for (auto& g : groups) {
    if (g->Parsed()) parsed = g.get();
  }
  if (parsed == nullptr) return 2;  // unreachable: require_subcommand(1) names one of them
  Target target;
  target.host = host;
  if (resp_opt->count() > 0) target.resp_port = static_cast<uint16_t>(resp_port);
  if (admin_opt->count() > 0) target.admin_port = static_cast<uint16_t>(admin_port);
  const bool need_admin = parsed->UsesAdmin();
  ReadPortsFile(data_dir, !need_admin && resp_opt->count() == 0,
                need_admin && admin_opt->count() == 0, &target);
  target.key = key;
  if (target.key.empty()) ReadKeyFile(data_dir, &target);

  try {
    if (std::optional<int> rc = parsed->Run(target)) return *rc;
  } catch (const CliError& e) {
    fmt::print(stderr, "cellar: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cellar: unexpected error: {}\n", e.what());
    return 1;
  }
  return 2;  // unreachable: the group ran what it parsed
}

}  // namespace cellar::cli
