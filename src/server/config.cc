#include "server/config.h"

#include <cctype>
#include <iostream>
#include <set>
#include <sstream>
#include <tuple>

#include <CLI/CLI.hpp>

#include "control/limits.h"

namespace cellar::server {

std::optional<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  uint64_t v = 0;
  if (text.empty()) return std::nullopt;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string unit;
  for (; i < text.size(); ++i) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  uint64_t mult = 1;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    mult = 1ull << 10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    mult = 1ull << 20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    mult = 1ull << 30;
  } else {
    return std::nullopt;
  }
  uint64_t out;
  if (__builtin_mul_overflow(v, mult, &out)) return std::nullopt;
  return out;
}

namespace {

// Client connection bounds (frontend/net/conn_gate.h). Timeouts are whole seconds on the
// command line.
struct ConnectionFlags {
  uint32_t preauth_s, idle_s, write_s;
};
void AddConnectionFlags(CLI::App& app, net::ConnectionOptions& o, ConnectionFlags& f) {
  f.preauth_s = o.preauth_timeout_ms / 1000;
  f.idle_s = o.idle_timeout_ms / 1000;
  f.write_s = o.write_timeout_ms / 1000;
  app.add_option("--max-connections", o.max_connections,
                 "Client connections per port (RESP, API), all loops together; past it a new "
                 "connection is refused at once; 0: no cap (the descriptor budget still holds)")
      ->capture_default_str();
  app.add_option("--fd-reserve", o.fd_reserve,
                 "File descriptors client connections always leave free (the admin port, "
                 "health checks, metadata files)")
      ->capture_default_str()
      ->check(CLI::Range(16u, 1u << 20));
  app.add_option("--preauth-timeout", f.preauth_s,
                 "Seconds a connection has to finish TLS and authenticate (RESP AUTH, or a gRPC "
                 "call with a valid token) before it is closed; 0: no limit")
      ->capture_default_str()
      ->check(CLI::Range(0u, 86400u));
  app.add_option("--idle-timeout", f.idle_s,
                 "Seconds an authenticated connection may stay quiet (nothing in flight, no "
                 "subscription) before it is closed; 0: never")
      ->capture_default_str()
      ->check(CLI::Range(0u, 30u * 86400u));
  app.add_option("--write-timeout", f.write_s,
                 "Seconds replies may wait for a client that does not read them (a write that "
                 "does not finish) before the connection is closed; 0: no limit")
      ->capture_default_str()
      ->check(CLI::Range(0u, 86400u));
}

// What the flags give as text or in seconds, converted into the Config after parsing.
struct FlagText {
  std::string memory_limit, max_item_size, max_reply, reply_memory;
  std::string topic_replay_bytes, topic_max_message, topic_queue;
  std::string fair_scheduling = "on", fair_eviction = "on";
  ConnectionFlags conn;
};

// Where it listens and what it stores on disk.
void AddListenerFlags(CLI::App& app, Config& c) {
  app.add_option("--data-dir", c.data_dir, "Metadata directory: cache list, admin.key, ports.json")
      ->capture_default_str();
  app.add_option("--bind", c.bind, "Address every listener binds")->capture_default_str();
  app.add_option("--resp-port", c.resp_port, "RESP (Redis protocol) port; 0 picks a free one")
      ->capture_default_str();
  app.add_option("--api-port", c.api_port,
                 "gRPC API port (Momento's services over HTTP/2: h2c, or TLS with --tls-cert); "
                 "0 picks a free one")
      ->capture_default_str();
  app.add_option("--web-port", c.web_port,
                 "A port for browsers alone (grpc-web, Momento's HTTP API, SSE, WebSocket over "
                 "HTTP/1.1; TLS with --tls-cert, ALPN http/1.1); 0 picks a free one. The API "
                 "port serves the same to clients that speak HTTP/1.1 there (docs/web.md)")
      ->check(CLI::Range(-1, 65535));
  app.add_option("--tls-cert", c.tls_cert,
                 "PEM certificate chain: the API port then also accepts TLS (ALPN h2)");
  app.add_option("--tls-key", c.tls_key, "PEM private key for --tls-cert");
  app.add_flag("--tls-self-signed", c.tls_self_signed,
               "Development: generate a self-signed certificate into DATA_DIR/tls/ (once) and "
               "serve TLS with it");
  app.add_option("--public-endpoint", c.public_endpoint,
                 "The endpoint API keys minted here name (Momento SDKs derive cache.<endpoint>, "
                 "...); default: the bind address and API port");
  app.add_option("--admin-port", c.admin_port, "Admin HTTP port (/healthz, /metrics, /v1/caches)")
      ->capture_default_str();
}

// Memory: items, values, replies, event loops.
void AddMemoryFlags(CLI::App& app, Config& c, FlagText& f) {
  app.add_option("--memory-limit", f.memory_limit,
                 "Memory for items, e.g. 512mb or 4gb (default: half of physical memory)");
  app.add_option("--max-item-size", f.max_item_size, "Largest value accepted (default 4883kib)");
  app.add_option("--max-reply-bytes", f.max_reply,
                 "Replies one request or pipeline round may build (default 64mb); past it the "
                 "rest is refused with 'reply too large'");
  app.add_option("--reply-memory", f.reply_memory,
                 "Replies being built or waiting for slow readers, all connections together; "
                 "a tenant holds at most half (default: a quarter of --memory-limit, at least "
                 "64mb)");
  app.add_option("--threads", c.threads, "Event loops (= shards); 0 means one per core")
      ->capture_default_str();
}

// Who may connect unauthenticated or in plaintext, and what is logged.
void AddSecurityFlags(CLI::App& app, Config& c) {
  app.add_option("--cors-origins", c.cors_origins,
                 "Origins whose web pages may call the API port (HTTP API, grpc-web, WebSocket, "
                 "SSE), comma-separated, e.g. https://app.example.com; '*' for any (tokens are "
                 "the only credential). Default: same-origin pages only");
  app.add_flag("--demo", c.demo,
               "Serve a demo page at /demo on the API (and web) port: a chat room and a shared "
               "counter, with a token-vending endpoint POST /demo/token that gives anyone a "
               "10-minute disposable token for cache 'demo' (a pattern to copy, not for "
               "production; docs/web.md)");
  app.add_flag("--momento-local", c.momento_local,
               "Be Momento's local test server (momento-local) for SDK tests: no auth, "
               "loopback only, gRPC on --api-port (8080) honouring its fault-injection "
               "metadata, GET /block and /unblock on --admin-port (9090); the RESP port is "
               "free unless given (docs/momento-local.md)");
  app.add_flag("--dev-no-auth", c.dev_no_auth,
               "Development only, loopback only: unauthenticated RESP clients use cache 'default'");
  app.add_flag("--allow-plaintext-public", c.allow_plaintext_public,
               "Allow binding beyond loopback without TLS (logs a warning)");
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn or error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
}

// Topics: replay, heartbeats, their limits.
void AddTopicFlags(CLI::App& app, Config& c, FlagText& f) {
  app.add_option("--topic-replay-messages", c.topics.replay_messages,
                 "Messages each topic keeps for resuming subscribers")
      ->capture_default_str();
  app.add_option("--topic-replay-bytes", f.topic_replay_bytes,
                 "Bytes each topic keeps for resuming subscribers (default 4mb)");
  app.add_option("--topic-heartbeat-ms", c.topics.heartbeat_ms,
                 "Idle gRPC subscriptions get a heartbeat this often")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{10}, int64_t{3600'000}));
  app.add_option("--topic-max-message-size", f.topic_max_message,
                 "Largest message a publish may carry (default 100kb)");
  app.add_option("--topic-max-subscriptions", c.topic_limits.max_subscriptions_per_cache,
                 "Subscriptions per cache; 0: no limit")
      ->capture_default_str();
  app.add_option("--topic-publish-rate", c.topic_limits.publish_rate_per_cache,
                 "Publishes per second per cache; 0: no limit")
      ->capture_default_str();
  app.add_option("--topic-max-name-bytes", c.topics.max_name_bytes,
                 "Longest topic (channel) name or pattern a publish or subscription may name")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1u << 20));
  app.add_option("--topic-subscriber-queue", f.topic_queue,
                 "Bytes a subscriber may fall behind before it is cut off (default 4mb)");
}

// Tenancy: default limits, fair scheduling and eviction.
void AddTenancyFlags(CLI::App& app, Config& c, FlagText& f) {
  app.add_option("--default-limits", c.default_limits,
                 "Limits of every cache unless its tenant or itself overrides them, e.g. "
                 "'requests_per_second=500,max_ttl_seconds=1d' (see `cellar limits --help`)");
  app.add_option("--fair-scheduling", f.fair_scheduling,
                 "Serve tenants round robin by deficit when a loop is busy (on), or first come, "
                 "first served (off)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--sched-quantum", c.sched_quantum,
                 "Fair scheduling: commands (or calls) a tenant runs per turn while tenants compete")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1u << 20));
  app.add_option("--sched-max-queued", c.sched_max_queued,
                 "Fair scheduling: connections with input queued per tenant per loop; beyond "
                 "that a round is refused at once")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1u << 24));
  app.add_option("--fair-eviction", f.fair_eviction,
                 "Under memory pressure evict first from tenants above their share (on), or "
                 "plain approximate LRU over everything (off)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
}

// The fleet on etcd.
void AddClusterFlags(CLI::App& app, Config& c) {
  app.add_option("--cluster-etcd", c.cluster_etcd,
                 "etcd client URLs (http://host:port, comma-separated): run as a node of a "
                 "cluster: metadata, membership and the slot map in etcd, any node serving any "
                 "key (docs/cluster.md); none: a single node, metadata in --data-dir")
      ->delimiter(',');
  app.add_option("--cluster-name", c.cluster_name,
                 "the cluster's name: its nodes share the etcd prefix /cellar/v1/<name>/")
      ->capture_default_str();
  app.add_option("--node-id", c.node_id,
                 "this node's id in the cluster (default: DATA_DIR/node.id, made on first start)");
  app.add_option("--zone", c.zone, "this node's zone (failure domain)")->capture_default_str();
  app.add_option("--roles", c.roles,
                 "gateway,storage[,control]: control nodes run for control leader")
      ->capture_default_str();
  app.add_option("--internal-port", c.internal_port,
                 "port other nodes forward calls to (0: the kernel picks; advertised in etcd)")
      ->capture_default_str();
  app.add_option("--cluster-advertise", c.advertise,
                 "host other nodes reach this one at (default: --bind, or the host name when "
                 "--bind is 0.0.0.0 or ::)");
  app.add_option("--cluster-tls-ca", c.cluster_tls_ca,
                 "PEM file of the CA that signed the other nodes' certificates: with TLS, peers "
                 "are verified against it (default: not verified; the cluster's secret, proved "
                 "over the TLS session, authenticates them)")
      ->check(CLI::ExistingFile);
  app.add_option("--cluster-bootstrap-expect", c.bootstrap_expect,
                 "the control leader spreads the slots once this many nodes are members")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  app.add_option("--cluster-lease-ttl", c.lease_ttl_seconds,
                 "seconds: the node's lease in etcd; it stops acknowledging writes when the "
                 "lease is not known alive, and others see it gone after this long")
      ->check(CLI::Range(2u, 60u))
      ->capture_default_str();
}

// 1..63 of a-z, 0-9, '-' and '_': cluster names, node ids, zones (they go into etcd keys).
bool ValidClusterName(std::string_view s) {
  return !s.empty() && s.size() <= 63 &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") == std::string_view::npos;
}

// http://host:port (what our etcd client dials: h2c, no TLS yet).
bool ValidEtcdUrl(std::string_view u) {
  constexpr std::string_view kScheme = "http://";
  if (u.substr(0, kScheme.size()) != kScheme) return false;
  const std::string_view rest = u.substr(kScheme.size());
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) return false;
  const std::string_view port = rest.substr(colon + 1);
  if (port.size() > 5) return false;
  for (char ch : port) {
    if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
  }
  return true;
}

// /metrics cardinality and the usage log.
void AddObservabilityFlags(CLI::App& app, Config& c) {
  app.add_option("--metrics-max-caches", c.metrics_max_caches,
                 "/metrics: the busiest caches get series of their own; the rest are summed "
                 "under cache=\"_other\"")
      ->capture_default_str();
  app.add_option("--metrics-max-tenants", c.metrics_max_tenants,
                 "/metrics: the busiest tenants get series of their own; the rest are summed "
                 "under tenant=\"_other\"")
      ->capture_default_str();
  // For tests only (hidden): a usage "minute" of this many seconds, so rows roll quickly.
  app.add_option("--usage-minute-seconds", c.usage_minute_seconds)
      ->check(CLI::Range(1u, 3600u))
      ->group("");
}

// host or host:port (a DNS name or an address; a port of 1-5 digits): what --public-endpoint
// takes, since the SDK prefixes it with cache., control. and token.
bool ValidPublicEndpoint(std::string_view e) {
  const size_t colon = e.rfind(':');
  std::string_view host = colon == std::string_view::npos ? e : e.substr(0, colon);
  if (colon != std::string_view::npos) {
    const std::string_view port = e.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char ch : port) {
      if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
    }
  }
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.back() == '.') return false;
  for (char ch : host) {
    const auto u = static_cast<unsigned char>(ch);
    if (!std::isalnum(u) && ch != '-' && ch != '.') return false;
  }
  return true;
}

// The flags given as text into the Config, with the checks that span flags. A bad value: a
// message on stderr and exit code 2.
std::optional<int> ApplyFlagText(const FlagText& f, Config& c) {
  c.connections.preauth_timeout_ms = f.conn.preauth_s * 1000;
  c.connections.idle_timeout_ms = f.conn.idle_s * 1000;
  c.connections.write_timeout_ms = f.conn.write_s * 1000;
  c.fair_scheduling = f.fair_scheduling == "on";
  c.fair_eviction = f.fair_eviction == "on";
  if (!c.default_limits.empty()) {
    auto parsed = control::ParseLimits(c.default_limits, /*for_cache=*/false);
    if (!parsed.ok()) {
      std::cerr << "cellar serve: --default-limits: " << parsed.status().message() << "\n";
      return 2;
    }
  }
  if (!c.public_endpoint.empty() && !ValidPublicEndpoint(c.public_endpoint)) {
    std::cerr << "cellar serve: --public-endpoint: a host name or host:port, without a scheme or "
                 "path (the SDK connects to cache.<it>, control.<it> and token.<it>), got "
              << c.public_endpoint << "\n";
    return 2;
  }
  for (const auto& url : c.cluster_etcd) {
    if (!ValidEtcdUrl(url)) {
      std::cerr << "cellar serve: --cluster-etcd: an etcd client URL, http://host:port, got "
                << url << "\n";
      return 2;
    }
  }
  for (auto [flag, value] : {std::pair{"--cluster-name", &c.cluster_name},
                             std::pair{"--zone", &c.zone}, std::pair{"--node-id", &c.node_id}}) {
    if (value->empty() && value == &c.node_id) continue;  // from DATA_DIR/node.id
    if (!ValidClusterName(*value)) {
      std::cerr << "cellar serve: " << flag << ": 1 to 63 of a-z, 0-9, '-' and '_', got "
                << *value << "\n";
      return 2;
    }
  }
  {
    std::set<std::string> roles;
    std::stringstream in(c.roles);
    for (std::string r; std::getline(in, r, ',');) roles.insert(r);
    for (const auto& r : roles) {
      if (r != "gateway" && r != "storage" && r != "control") {
        std::cerr << "cellar serve: --roles: gateway, storage and control, got " << r << "\n";
        return 2;
      }
    }
    if (!roles.count("gateway") || !roles.count("storage")) {
      std::cerr << "cellar serve: --roles: every node is a gateway and a storage node for now "
                   "(stateless gateways come with the slot map); control is optional\n";
      return 2;
    }
  }
  if (c.tls_self_signed && !c.tls_cert.empty()) {
    std::cerr << "cellar serve: --tls-self-signed and --tls-cert exclude each other\n";
    return 2;
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    std::cerr << "cellar serve: --tls-cert and --tls-key go together\n";
    return 2;
  }
  if (!f.memory_limit.empty()) {
    auto v = ParseSize(f.memory_limit);
    if (!v) {
      std::cerr << "cellar serve: --memory-limit: not a size: " << f.memory_limit << "\n";
      return 2;
    }
    c.memory_limit = *v;
  }
  for (auto [flag, text, out] :
       {std::tuple{"--topic-replay-bytes", &f.topic_replay_bytes, &c.topics.replay_bytes},
        std::tuple{"--max-reply-bytes", &f.max_reply, &c.max_reply_bytes},
        std::tuple{"--reply-memory", &f.reply_memory, &c.reply_memory},
        std::tuple{"--topic-max-message-size", &f.topic_max_message, &c.topic_limits.max_message_bytes},
        std::tuple{"--topic-subscriber-queue", &f.topic_queue, &c.topics.subscriber_queue_bytes}}) {
    if (text->empty()) continue;
    auto v = ParseSize(*text);
    if (!v || *v == 0) {
      std::cerr << "cellar serve: " << flag << ": a size above 0 (e.g. 64kb), got " << *text
                << "\n";
      return 2;
    }
    *out = *v;
  }
  if (!f.max_item_size.empty()) {
    auto v = ParseSize(f.max_item_size);
    if (!v || *v == 0 || *v > (512ull << 20)) {
      std::cerr << "cellar serve: --max-item-size: a size from 1 byte to 512mb, got "
                << f.max_item_size << "\n";
      return 2;
    }
    c.max_item_size = *v;
  }
  return std::nullopt;
}

}  // namespace

std::optional<int> ParseServeArgs(int argc, char** argv, Config& c) {
  CLI::App app{"cellar serve: run every role of Cellar (gateway, storage, control plane) in one "
               "process, on one event loop per core."};
  app.name("cellar serve");
  FlagText f;
  AddListenerFlags(app, c);
  AddMemoryFlags(app, c, f);
  AddSecurityFlags(app, c);
  AddTopicFlags(app, c, f);
  AddTenancyFlags(app, c, f);
  AddConnectionFlags(app, c.connections, f.conn);
  AddObservabilityFlags(app, c);
  AddClusterFlags(app, c);
  app.set_config("--config", "", "TOML/INI file with the same keys as the flags (resp-port = 7000)");
  app.footer(
      "Examples:\n"
      "  cellar serve                              # 127.0.0.1: RESP 6379, admin 9090\n"
      "  cellar serve --dev-no-auth                # redis-cli works without AUTH (cache 'default')\n"
      "  cellar serve --resp-port 0 --admin-port 0 # free ports, see DATA_DIR/ports.json\n"
      "  cellar serve --memory-limit 2gb --threads 4\n"
      "  cellar serve --cluster-etcd http://10.0.0.5:2379 --node-id n1 --zone z1  # a fleet");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (auto code = ApplyFlagText(f, c)) return code;
  if (c.momento_local) {
    c.dev_no_auth = true;
    if (app.count("--resp-port") == 0) c.resp_port = 0;  // momento-local has no RESP port
  }
  return std::nullopt;
}

}  // namespace cellar::server
