// `cellar cache`, `tenant`, `key` and `signing-key`: the control plane, through the admin API.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include "cli/cli_common.h"

namespace cellar::cli {
namespace {

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
  std::string format = "key";  // key: the v2 API key alone; env: MOMENTO_API_KEY=.. MOMENTO_ENDPOINT=..
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
  if (k.format == "env") {
    // What CredentialProvider.fromEnvVarV2() reads; `eval "$(cellar key create ... --format env)"`.
    const Json* endpoint = doc.Find("endpoint");
    if (!endpoint || endpoint->type != Json::Type::kString) {
      throw CliError("no endpoint in the reply");
    }
    fmt::print("MOMENTO_API_KEY={}\nMOMENTO_ENDPOINT={}\n", token->text, endpoint->text);
    return 0;
  }
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

class ControlGroup final : public CommandGroup {
 public:
  void Register(CLI::App& app) override {
    cache_ = app.add_subcommand("cache", "create, delete, list or flush caches");
    cache_->require_subcommand(1);
    cache_create_ = cache_->add_subcommand("create", "create a cache");
    cache_create_->add_option("NAME", cache_name_, "cache name")->required();
    cache_delete_ = cache_->add_subcommand("delete", "delete a cache and its items");
    cache_delete_->add_option("NAME", cache_name_, "cache name")->required();
    cache_list_ = cache_->add_subcommand("list", "list caches: NAME, ITEMS, BYTES, REQUESTS, HIT%");
    cache_list_->add_option("--tenant", list_tenant_, "the tenant whose caches to list")
        ->capture_default_str();
    cache_flush_ = cache_->add_subcommand("flush", "remove every item from a cache");
    cache_flush_->add_option("NAME", cache_name_, "cache name")->required();

    tenant_ = app.add_subcommand("tenant", "create or list tenants");
    tenant_->require_subcommand(1);
    tenant_create_ = tenant_->add_subcommand("create", "create a tenant");
    tenant_create_->add_option("NAME", tenant_name_, "tenant name")->required();
    tenant_list_ = tenant_->add_subcommand("list", "list tenants");

    keys_ = app.add_subcommand("key", "mint tokens (Momento v2 API keys)");
    keys_->require_subcommand(1);
    key_create_ = keys_->add_subcommand("create", "mint a token; prints it on stdout");
    key_create_->add_option("--tenant", key_.tenant, "the tenant it belongs to")->required();
    key_create_->add_flag("--super-user", key_.super_user, "every permission in the tenant");
    key_create_->add_option("--role", key_.role, "ro, rw or wo (write-only)")
        ->check(CLI::IsMember({"ro", "rw", "wo"}));
    key_create_->add_option("--cache", key_.cache, "only this cache (default: every cache)");
    key_create_->add_option("--key", key_.key, "only this key");
    key_create_->add_option("--key-prefix", key_.key_prefix, "only keys starting with this");
    key_create_->add_option("--expires-in", key_.expires_in,
                            "seconds until it expires (default: never)");
    key_create_->add_option("--token-id", key_.token_id, "an id carried in the token");
    key_create_
        ->add_option("--format", key_.format,
                     "key: the key alone (a Momento v2 API key); env: MOMENTO_API_KEY=... and "
                     "MOMENTO_ENDPOINT=... lines, for CredentialProvider.fromEnvVarV2()")
        ->check(CLI::IsMember({"key", "env"}))
        ->capture_default_str();

    skeys_ = app.add_subcommand("signing-key", "rotate, revoke or list token signing keys");
    skeys_->require_subcommand(1);
    skey_rotate_ = skeys_->add_subcommand("rotate", "sign new tokens with a new key");
    skey_revoke_ = skeys_->add_subcommand("revoke", "revoke a key: its tokens stop working");
    skey_revoke_->add_option("ID", skey_id_, "key id (see `signing-key list`)")->required();
    skey_list_ = skeys_->add_subcommand("list", "list signing keys");
  }
  bool Parsed() const override {
    return cache_->parsed() || tenant_->parsed() || keys_->parsed() || skeys_->parsed();
  }
  bool UsesAdmin() const override { return true; }
  std::optional<int> Run(const Target& t) override {
    if (cache_list_->parsed()) return CacheList(t, list_tenant_);
    if (cache_create_->parsed()) return CacheCommand(t, "create", cache_name_);
    if (cache_delete_->parsed()) return CacheCommand(t, "delete", cache_name_);
    if (cache_flush_->parsed()) return CacheCommand(t, "flush", cache_name_);
    if (tenant_create_->parsed()) return TenantCommand(t, "create", tenant_name_);
    if (tenant_list_->parsed()) return TenantCommand(t, "list", "");
    if (key_create_->parsed()) return KeyCreate(t, key_);
    if (skey_rotate_->parsed()) return SigningKeyCommand(t, "rotate", "");
    if (skey_revoke_->parsed()) return SigningKeyCommand(t, "revoke", skey_id_);
    if (skey_list_->parsed()) return SigningKeyCommand(t, "list", "");
    return std::nullopt;
  }

 private:
  CLI::App *cache_ = nullptr, *cache_create_ = nullptr, *cache_delete_ = nullptr,
           *cache_list_ = nullptr, *cache_flush_ = nullptr;
  CLI::App *tenant_ = nullptr, *tenant_create_ = nullptr, *tenant_list_ = nullptr;
  CLI::App *keys_ = nullptr, *key_create_ = nullptr;
  CLI::App *skeys_ = nullptr, *skey_rotate_ = nullptr, *skey_revoke_ = nullptr,
           *skey_list_ = nullptr;
  std::string cache_name_, list_tenant_ = "default", tenant_name_, skey_id_;
  KeyRequest key_;
};

}  // namespace

std::unique_ptr<CommandGroup> ControlCommands() { return std::make_unique<ControlGroup>(); }

}  // namespace cellar::cli
