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
#include "cli/cli_common.h"
#include "cli/observe.h"
#include "common/json.h"
#include "cli/net.h"
#include "cli/resp_client.h"

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

int CacheList(const Target& t, const std::string& tenant) {
  AdminClient client(t.host, t.admin_port, t.key);
  Json doc = ParseBody(
      CheckedRequest(client, "GET", "/v1/caches?tenant=" + EncodePathSegment(tenant)));
  const Json* caches = doc.Find("caches");
  if (!caches || caches->type != Json::Type::kArray) {
    throw CliError("the admin API's cache list has no \"caches\" array");
  }
  auto field = [](const Json& cache, const char* name) -> std::string {
    const Json* v = cache.Find(name);
    if (!v) return "-";
    return v->text.empty() && v->type != Json::Type::kString ? "-" : v->text;
  };
  std::vector<std::vector<std::string>> rows;
  for (const Json& cache : caches->items) {
    const uint64_t hits = cache.Find("hits") ? cache.Find("hits")->AsUint().value_or(0) : 0;
    const uint64_t misses = cache.Find("misses") ? cache.Find("misses")->AsUint().value_or(0) : 0;
    rows.push_back({field(cache, "name"), field(cache, "items"), field(cache, "bytes"),
                    field(cache, "requests"),
                    hits + misses == 0
                        ? "-"
                        : fmt::format("{:.1f}%", 100.0 * static_cast<double>(hits) /
                                                     static_cast<double>(hits + misses))});
  }
  std::sort(rows.begin(), rows.end());
  std::vector<std::size_t> w = {4, 5, 5, 8, 4};
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  }
  auto line = [&w](const std::vector<std::string>& r) {
    fmt::print("{:<{}}  {:>{}}  {:>{}}  {:>{}}  {:>{}}\n", r[0], w[0], r[1], w[1], r[2], w[2],
               r[3], w[3], r[4], w[4]);
  };
  line({"NAME", "ITEMS", "BYTES", "REQUESTS", "HIT%"});
  for (const auto& r : rows) line(r);
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

int TenantCommand(const Target& t, const std::string& action, const std::string& name) {
  AdminClient client(t.host, t.admin_port, t.key);
  if (action == "create") {
    CheckedRequest(client, "POST", "/v1/tenants/" + EncodePathSegment(name));
    fmt::print("created tenant '{}'\n", name);
    return 0;
  }
  Json doc = ParseBody(CheckedRequest(client, "GET", "/v1/tenants"));
  const Json* tenants = doc.Find("tenants");
  if (!tenants || tenants->type != Json::Type::kArray) throw CliError("no \"tenants\" array");
  fmt::print("ID  NAME\n");
  for (const Json& x : tenants->items) {
    const Json* id = x.Find("id");
    const Json* n = x.Find("name");
    fmt::print("{:<3} {}\n", id ? id->text : "-", n ? n->text : "-");
  }
  return 0;
}

struct KeyRequest {
  std::string tenant, role, cache, key, key_prefix, token_id;
  bool super_user = false;
  uint64_t expires_in = 0;
};

int KeyCreate(const Target& t, const KeyRequest& k) {
  if (k.super_user == !k.role.empty()) {
    throw CliError("give exactly one of --super-user or --role ro|rw|wo");
  }
  if (!k.key.empty() && !k.key_prefix.empty()) {
    throw CliError("give at most one of --key and --key-prefix");
  }
  std::string query = "tenant=" + EncodePathSegment(k.tenant);
  if (k.super_user) {
    query += "&super_user=1";
  } else {
    query += "&role=" + EncodePathSegment(k.role);
    if (!k.cache.empty()) query += "&cache=" + EncodePathSegment(k.cache);
    if (!k.key.empty()) query += "&key=" + EncodePathSegment(k.key);
    if (!k.key_prefix.empty()) query += "&key_prefix=" + EncodePathSegment(k.key_prefix);
  }
  if (k.expires_in > 0) query += "&expires_in=" + std::to_string(k.expires_in);
  if (!k.token_id.empty()) query += "&token_id=" + EncodePathSegment(k.token_id);
  AdminClient client(t.host, t.admin_port, t.key);
  Json doc = ParseBody(CheckedRequest(client, "POST", "/v1/tokens?" + query));
  const Json* token = doc.Find("token");
  if (!token || token->type != Json::Type::kString) throw CliError("no token in the reply");
  fmt::print("{}\n", token->text);  // the token alone on stdout, for scripts
  return 0;
}

int SigningKeyCommand(const Target& t, const std::string& action, const std::string& id) {
  AdminClient client(t.host, t.admin_port, t.key);
  if (action == "rotate") {
    Json doc = ParseBody(CheckedRequest(client, "POST", "/v1/signing-keys/rotate"));
    const Json* nid = doc.Find("id");
    fmt::print("new signing key {}\n", nid ? nid->text : "?");
  } else if (action == "revoke") {
    CheckedRequest(client, "POST", "/v1/signing-keys/" + EncodePathSegment(id) + "/revoke");
    fmt::print("revoked signing key {}: its tokens no longer work\n", id);
  } else {
    Json doc = ParseBody(CheckedRequest(client, "GET", "/v1/signing-keys"));
    const Json* keys = doc.Find("keys");
    if (!keys || keys->type != Json::Type::kArray) throw CliError("no \"keys\" array");
    fmt::print("ID                 STATE\n");
    for (const Json& k : keys->items) {
      const Json* kid = k.Find("id");
      const Json* rev = k.Find("revoked");
      fmt::print("{:<18} {}\n", kid ? kid->text : "-",
                 rev && rev->text == "true" ? "revoked" : "active");
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

int Get(const Target& t, const std::string& cache, const std::string& key, bool raw) {
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
  // The value and a newline, as redis-cli prints it (`$(cellar get ...)` drops the newline);
  // --raw: the exact bytes and nothing else, for binary values.
  std::fwrite(reply.str.data(), 1, reply.str.size(), stdout);
  if (!raw) std::fputc('\n', stdout);
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
  CLI::App* cache_list =
      cache->add_subcommand("list", "list caches: NAME, ITEMS, BYTES, REQUESTS, HIT%");
  std::string list_tenant = "default";
  cache_list->add_option("--tenant", list_tenant, "the tenant whose caches to list")
      ->capture_default_str();
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
  bool get_raw = false;
  get->add_flag("--raw", get_raw, "print the value's exact bytes, with no newline after it");
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
  CLI::App* tenant = app.add_subcommand("tenant", "create or list tenants");
  tenant->require_subcommand(1);
  std::string tenant_name;
  CLI::App* tenant_create = tenant->add_subcommand("create", "create a tenant");
  tenant_create->add_option("NAME", tenant_name, "tenant name")->required();
  CLI::App* tenant_list = tenant->add_subcommand("list", "list tenants");

  CLI::App* keys = app.add_subcommand("key", "mint tokens (API keys)");
  keys->require_subcommand(1);
  KeyRequest key_req;
  CLI::App* key_create = keys->add_subcommand("create", "mint a token; prints it on stdout");
  key_create->add_option("--tenant", key_req.tenant, "the tenant it belongs to")->required();
  key_create->add_flag("--super-user", key_req.super_user, "every permission in the tenant");
  key_create->add_option("--role", key_req.role, "ro, rw or wo (write-only)")
      ->check(CLI::IsMember({"ro", "rw", "wo"}));
  key_create->add_option("--cache", key_req.cache, "only this cache (default: every cache)");
  key_create->add_option("--key", key_req.key, "only this key");
  key_create->add_option("--key-prefix", key_req.key_prefix, "only keys starting with this");
  key_create->add_option("--expires-in", key_req.expires_in, "seconds until it expires (default: never)");
  key_create->add_option("--token-id", key_req.token_id, "an id carried in the token");

  CLI::App* skeys = app.add_subcommand("signing-key", "rotate, revoke or list token signing keys");
  skeys->require_subcommand(1);
  std::string skey_id;
  CLI::App* skey_rotate = skeys->add_subcommand("rotate", "sign new tokens with a new key");
  CLI::App* skey_revoke = skeys->add_subcommand("revoke", "revoke a key: its tokens stop working");
  skey_revoke->add_option("ID", skey_id, "key id (see `signing-key list`)")->required();
  CLI::App* skey_list = skeys->add_subcommand("list", "list signing keys");

  CLI::App* limits = app.add_subcommand("limits", "show or set a tenant's or a cache's limits");
  limits->require_subcommand(1);
  std::string limits_tenant = "default", limits_cache;
  std::vector<std::string> limit_pairs;
  CLI::App* limits_show =
      limits->add_subcommand("show", "each limit in force, its value and where it is set");
  CLI::App* limits_set = limits->add_subcommand(
      "set", "set limits: name=value ... ('default' removes an override); prints the result");
  for (CLI::App* sub : {limits_show, limits_set}) {
    sub->add_option("--tenant", limits_tenant, "the tenant")->capture_default_str();
    sub->add_option("--cache", limits_cache, "a cache of the tenant (default: the tenant itself)");
  }
  limits_set->add_option("LIMIT", limit_pairs, "name=value pairs, e.g. requests_per_second=500")
      ->required();
  CLI::App* limits_defaults =
      limits->add_subcommand("defaults", "every limit with the server's default and meaning");

  StatsOptions stats_opts;
  CLI::App* stats = app.add_subcommand(
      "stats", "live per-cache view: ops/s, hit ratio, bytes in/out per second, items, memory, "
               "p50/p99 latency, throttles");
  stats->add_option("--tenant", stats_opts.tenant, "only this tenant's caches");
  stats->add_option("--cache", stats_opts.cache, "only this cache (of --tenant, else default)");
  stats->add_option("--interval", stats_opts.interval_s, "seconds between refreshes")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0).description(""))
      ->type_name("SECONDS");
  stats->add_option("--count", stats_opts.count, "refreshes before exiting (default: until Ctrl-C)");

  UsageOptions usage_opts;
  CLI::App* usage = app.add_subcommand(
      "usage", "requests, bytes in and out, throttled requests per tenant, cache and minute");
  usage->add_option("--tenant", usage_opts.tenant, "only this tenant");
  usage->add_option("--cache", usage_opts.cache, "only caches of this name");
  usage->add_option("--minutes", usage_opts.minutes, "how far back")->capture_default_str();
  usage->add_flag("--json", usage_opts.json, "print the admin API's JSON");

  CLI::App* version = app.add_subcommand("version", "print the version");
  app.footer(kFooter);  // set last: subcommands would inherit it
  limits->footer(LimitsHelp());
  limits_set->footer(LimitsHelp());

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
  bool need_admin = cache->parsed() || tenant->parsed() || keys->parsed() || skeys->parsed() ||
                    limits->parsed() || stats->parsed() || usage->parsed();
  ReadPortsFile(data_dir, !need_admin && resp_opt->count() == 0,
                need_admin && admin_opt->count() == 0, &target);
  target.key = key;
  if (target.key.empty()) ReadKeyFile(data_dir, &target);

  try {
    if (cache_list->parsed()) return CacheList(target, list_tenant);
    if (limits_show->parsed()) return LimitsShow(target, limits_tenant, limits_cache);
    if (limits_set->parsed()) return LimitsSet(target, limits_tenant, limits_cache, limit_pairs);
    if (limits_defaults->parsed()) return LimitsDefaults(target);
    if (stats->parsed()) return Stats(target, stats_opts);
    if (usage->parsed()) return Usage(target, usage_opts);
    if (cache_create->parsed()) return CacheCommand(target, "create", cache_name);
    if (cache_delete->parsed()) return CacheCommand(target, "delete", cache_name);
    if (cache_flush->parsed()) return CacheCommand(target, "flush", cache_name);
    if (tenant_create->parsed()) return TenantCommand(target, "create", tenant_name);
    if (tenant_list->parsed()) return TenantCommand(target, "list", "");
    if (key_create->parsed()) return KeyCreate(target, key_req);
    if (skey_rotate->parsed()) return SigningKeyCommand(target, "rotate", "");
    if (skey_revoke->parsed()) return SigningKeyCommand(target, "revoke", skey_id);
    if (skey_list->parsed()) return SigningKeyCommand(target, "list", "");
    if (get->parsed()) return Get(target, data_cache, item_key, get_raw);
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
