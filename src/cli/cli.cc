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

#include "cli/admin_client.h"
#include "cli/json.h"
#include "cli/net.h"
#include "cli/resp_client.h"

namespace cellar::cli {

namespace {

constexpr uint16_t kDefaultRespPort = 6379;
constexpr uint16_t kDefaultAdminPort = 9090;

constexpr char kFooter[] = R"(Examples:
  cellar serve --data-dir ./cellar-data        start a server (see `cellar serve --help`)
  cellar cache create sessions                 create a cache
  cellar cache list                            caches with their item and byte counts
  cellar set --cache sessions user:1 alice --ttl 60
  cellar get --cache sessions user:1           prints the value; exit code 1 when missing
  cellar delete --cache sessions user:1
  cellar --admin-port 9191 cache flush sessions

Ports and the admin key come from --resp-port, --admin-port and --key (or CELLAR_ADMIN_KEY);
those not given are read from DATA_DIR/ports.json and DATA_DIR/admin.key, which `cellar serve`
writes, else the ports default to 6379 (RESP) and 9090 (admin).
Values starting with '-' go after `--`: cellar set --cache c -- key -1
)";

// Where to reach the server, after flags, environment and connection files are combined.
struct Target {
  std::string host;
  uint16_t resp_port = kDefaultRespPort;
  uint16_t admin_port = kDefaultAdminPort;
  std::string key;
};

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string Trim(std::string s) {
  const char* space = " \t\r\n";
  s.erase(s.find_last_not_of(space) + 1);
  s.erase(0, s.find_first_not_of(space));
  return s;
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

// A second line for authentication failures: where the CLI looks for the admin key.
std::string KeyHint(bool have_key) {
  if (have_key) {
    return "cellar: hint: the admin key given (--key, CELLAR_ADMIN_KEY or DATA_DIR/admin.key) was "
           "not accepted";
  }
  return "cellar: hint: no admin key found; pass --key or set CELLAR_ADMIN_KEY, or point "
         "--data-dir at the server's data directory (it holds admin.key)";
}

// The server's {"error":"..."} message, or what we can say without one.
[[noreturn]] void FailHttp(const AdminResponse& res) {
  std::string message;
  if (std::optional<Json> doc = ParseJson(res.body)) {
    if (const Json* e = doc->Find("error"); e && e->type == Json::Type::kString) message = e->text;
  }
  if (message.empty()) {
    message = Trim(res.body);
    if (message.size() > 200) message = message.substr(0, 200) + "...";
    if (message.empty()) message = "request failed";
  }
  std::string hint;
  if (res.status == 401 || res.status == 403) hint = "\n" + KeyHint(/*have_key=*/res.status == 403);
  throw CliError(fmt::format("{} (HTTP {}){}", message, res.status, hint));
}

AdminResponse CheckedRequest(AdminClient& client, const std::string& method,
                             const std::string& target) {
  AdminResponse res = client.Request(method, target);
  if (res.status < 200 || res.status >= 300) FailHttp(res);
  return res;
}

Json ParseBody(const AdminResponse& res) {
  std::optional<Json> doc = ParseJson(res.body);
  if (!doc || doc->type != Json::Type::kObject) {
    throw CliError("the admin API sent an answer that is not a JSON object");
  }
  return *doc;
}

int CacheList(const Target& t) {
  AdminClient client(t.host, t.admin_port, t.key);
  Json doc = ParseBody(CheckedRequest(client, "GET", "/v1/caches"));
  const Json* caches = doc.Find("caches");
  if (!caches || caches->type != Json::Type::kArray) {
    throw CliError("the admin API's cache list has no \"caches\" array");
  }
  struct Row {
    std::string name, items, bytes;
  };
  std::vector<Row> rows;
  auto field = [](const Json& cache, const char* name) -> std::string {
    const Json* v = cache.Find(name);
    if (!v) return "-";
    return v->text.empty() && v->type != Json::Type::kString ? "-" : v->text;
  };
  for (const Json& cache : caches->items) {
    rows.push_back({field(cache, "name"), field(cache, "items"), field(cache, "bytes")});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.name < b.name; });
  std::size_t w_name = 4, w_items = 5, w_bytes = 5;
  for (const Row& r : rows) {
    w_name = std::max(w_name, r.name.size());
    w_items = std::max(w_items, r.items.size());
    w_bytes = std::max(w_bytes, r.bytes.size());
  }
  fmt::print("{:<{}}  {:>{}}  {:>{}}\n", "NAME", w_name, "ITEMS", w_items, "BYTES", w_bytes);
  for (const Row& r : rows) {
    fmt::print("{:<{}}  {:>{}}  {:>{}}\n", r.name, w_name, r.items, w_items, r.bytes, w_bytes);
  }
  return 0;
}

int CacheCommand(const Target& t, const std::string& action, const std::string& name) {
  AdminClient client(t.host, t.admin_port, t.key);
  std::string path = "/v1/caches/" + EncodePathSegment(name);
  if (action == "create") {
    CheckedRequest(client, "PUT", path);
    fmt::print("created cache '{}'\n", name);
  } else if (action == "delete") {
    CheckedRequest(client, "DELETE", path);
    fmt::print("deleted cache '{}'\n", name);
  } else {  // flush
    Json doc = ParseBody(CheckedRequest(client, "POST", path + "/flush"));
    const Json* flushed = doc.Find("flushed");
    if (flushed && flushed->type == Json::Type::kNumber) {
      fmt::print("flushed cache '{}' ({} {} removed)\n", name, flushed->text,
                 flushed->text == "1" ? "item" : "items");
    } else {
      fmt::print("flushed cache '{}'\n", name);
    }
  }
  return 0;
}

// Turns an error reply into a CliError, with a hint when the cause is likely the missing key.
[[noreturn]] void FailResp(const RespReply& reply, const Target& t,
                           const std::string& context = {}) {
  std::string hint;
  if (reply.str.rfind("NOAUTH", 0) == 0 || reply.str.rfind("WRONGPASS", 0) == 0) {
    hint = "\n" + KeyHint(!t.key.empty());
  }
  throw CliError(context + reply.str + hint);
}

// Connects and binds the connection to the cache. Without a key there is nothing to send; the
// server may run with --dev-no-auth, and otherwise its NOAUTH answer explains.
void ConnectResp(const Target& t, const std::string& cache, RespClient& client) {
  client.Connect();
  if (!t.key.empty()) {
    RespReply reply = client.Command({"AUTH", cache, t.key});
    if (reply.type == RespReply::Type::kError) {
      FailResp(reply, t, fmt::format("cannot use cache '{}': ", cache));
    }
  }
}

std::string Describe(const RespReply& reply) {
  switch (reply.type) {
    case RespReply::Type::kSimple:
      return "+" + reply.str;
    case RespReply::Type::kError:
      return "-" + reply.str;
    case RespReply::Type::kInteger:
      return ":" + std::to_string(reply.integer);
    case RespReply::Type::kBulk:
      return "a bulk string";
    case RespReply::Type::kNull:
      return "nil";
    case RespReply::Type::kArray:
      return "an array";
  }
  return "?";
}

int Get(const Target& t, const std::string& cache, const std::string& key) {
  RespClient client(t.host, t.resp_port);
  ConnectResp(t, cache, client);
  RespReply reply = client.Command({"GET", key});
  if (reply.type == RespReply::Type::kError) FailResp(reply, t);
  if (reply.type == RespReply::Type::kNull) {
    fmt::print(stderr, "(nil)\n");
    return 1;
  }
  if (reply.type != RespReply::Type::kBulk) {
    throw CliError("unexpected reply to GET: " + Describe(reply));
  }
  // The exact bytes, so that binary values and `$(cellar get ...)` work; a newline only for eyes.
  std::fwrite(reply.str.data(), 1, reply.str.size(), stdout);
  if (isatty(STDOUT_FILENO)) std::fputc('\n', stdout);
  std::fflush(stdout);
  return 0;
}

int Set(const Target& t, const std::string& cache, const std::string& key, const std::string& value,
        uint64_t ttl_seconds) {
  RespClient client(t.host, t.resp_port);
  ConnectResp(t, cache, client);
  std::vector<std::string> args = {"SET", key, value};
  if (ttl_seconds > 0) {
    args.push_back("EX");
    args.push_back(std::to_string(ttl_seconds));
  }
  RespReply reply = client.Command(args);
  if (reply.type == RespReply::Type::kError) FailResp(reply, t);
  if (reply.type != RespReply::Type::kSimple) {
    throw CliError("unexpected reply to SET: " + Describe(reply));
  }
  fmt::print("{}\n", reply.str);
  return 0;
}

int Delete(const Target& t, const std::string& cache, const std::vector<std::string>& keys) {
  RespClient client(t.host, t.resp_port);
  ConnectResp(t, cache, client);
  std::vector<std::string> args = {"DEL"};
  args.insert(args.end(), keys.begin(), keys.end());
  RespReply reply = client.Command(args);
  if (reply.type == RespReply::Type::kError) FailResp(reply, t);
  if (reply.type != RespReply::Type::kInteger) {
    throw CliError("unexpected reply to DEL: " + Describe(reply));
  }
  fmt::print("{}\n", reply.integer);
  return 0;
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

  CLI::App* cache = app.add_subcommand("cache", "create, delete, list or flush caches");
  cache->require_subcommand(1);
  std::string cache_name;
  CLI::App* cache_create = cache->add_subcommand("create", "create a cache");
  cache_create->add_option("NAME", cache_name, "cache name")->required();
  CLI::App* cache_delete = cache->add_subcommand("delete", "delete a cache and its items");
  cache_delete->add_option("NAME", cache_name, "cache name")->required();
  CLI::App* cache_list = cache->add_subcommand("list", "list caches: NAME, ITEMS, BYTES");
  CLI::App* cache_flush = cache->add_subcommand("flush", "remove every item from a cache");
  cache_flush->add_option("NAME", cache_name, "cache name")->required();

  std::string data_cache;
  std::string item_key;
  std::string value;
  std::vector<std::string> delete_keys;
  uint64_t ttl = 0;
  CLI::App* get = app.add_subcommand(
      "get", "print a key's value (exit code 1 and \"(nil)\" on stderr when missing)");
  get->add_option("--cache", data_cache, "cache name")->required();
  get->add_option("KEY", item_key, "key")->required();
  CLI::App* set = app.add_subcommand("set", "set a key's value");
  set->add_option("--cache", data_cache, "cache name")->required();
  set->add_option("KEY", item_key, "key")->required();
  set->add_option("VALUE", value, "value")->required();
  set->add_option("--ttl", ttl, "expire after SECONDS")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            return s.find_first_not_of("0123456789") == std::string::npos &&
                           s.find_first_not_of('0') != std::string::npos
                       ? std::string()
                       : "must be a whole number of seconds, at least 1";
          },
          ""))
      ->type_name("SECONDS");
  CLI::App* del = app.add_subcommand("delete", "delete keys; prints how many existed");
  del->add_option("--cache", data_cache, "cache name")->required();
  del->add_option("KEY", delete_keys, "keys")->required();
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

  Target target;
  target.host = host;
  if (resp_opt->count() > 0) target.resp_port = static_cast<uint16_t>(resp_port);
  if (admin_opt->count() > 0) target.admin_port = static_cast<uint16_t>(admin_port);
  bool need_admin = cache->parsed();
  ReadPortsFile(data_dir, !need_admin && resp_opt->count() == 0,
                need_admin && admin_opt->count() == 0, &target);
  target.key = key;
  if (target.key.empty()) ReadKeyFile(data_dir, &target);

  try {
    if (cache_list->parsed()) return CacheList(target);
    if (cache_create->parsed()) return CacheCommand(target, "create", cache_name);
    if (cache_delete->parsed()) return CacheCommand(target, "delete", cache_name);
    if (cache_flush->parsed()) return CacheCommand(target, "flush", cache_name);
    if (get->parsed()) return Get(target, data_cache, item_key);
    if (set->parsed()) return Set(target, data_cache, item_key, value, ttl);
    if (del->parsed()) return Delete(target, data_cache, delete_keys);
  } catch (const CliError& e) {
    fmt::print(stderr, "cellar: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cellar: unexpected error: {}\n", e.what());
    return 1;
  }
  return 2;  // unreachable: require_subcommand(1) guarantees one of the above
}

}  // namespace cellar::cli
