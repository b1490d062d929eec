// Options of `cellar serve`, from flags and an optional config file (same keys as flags).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/net/conn_gate.h"
#include "topics/topics.h"

namespace cellar::server {

struct Config {
  std::string data_dir = "./cellar-data";
  std::string bind = "127.0.0.1";
  uint16_t resp_port = 6379;
  uint16_t api_port = 8080;
  // The web front-end (HTTP/1.1: grpc-web, the HTTP API, SSE, WebSocket) on a port of its
  // own, TLS with ALPN http/1.1 when the server has a certificate; -1: none (the API port
  // serves it anyway, to clients that speak HTTP/1.1 there). 0 picks a free one.
  int32_t web_port = -1;
  uint16_t admin_port = 9090;
  uint64_t memory_limit = 0;        // bytes; 0 = half of physical memory
  uint64_t max_item_size = 4883 * 1024;
  uint32_t threads = 0;             // 0 = one per core
  bool dev_no_auth = false;
  std::string log_level = "info";
  bool allow_plaintext_public = false;
  std::string tls_cert;  // PEM certificate chain; with tls_key, the API port also speaks TLS
  std::string tls_key;   // PEM private key
  // Drop-in for Momento's local test server (docs/momento-local.md): --dev-no-auth, the RESP
  // port free unless given, and gRPC calls honour momento-local's fault-injection metadata;
  // the admin port serves GET /block and /unblock.
  bool momento_local = false;
  // Origins whose pages may call the API port from a browser (CORS), comma-separated; "*":
  // any. Empty: same-origin pages only (docs/web.md).
  std::string cors_origins;
  // A demo page at /demo (chat and a shared counter) and its token-vending endpoint.
  bool demo = false;
  bool tls_self_signed = false;  // generate DATA_DIR/tls/{cert,key}.pem for development
  std::string public_endpoint;  // the endpoint minted keys name; empty: bind:api-port
  topics::Options topics;       // --topic-* flags
  // The server-wide defaults of the per-cache topic limits (--topic-max-message-size,
  // --topic-max-subscriptions, --topic-publish-rate); the control plane resolves them per
  // cache and the tenancy enforces them (gateway/tenancy.h).
  struct TopicLimits {
    uint64_t max_message_bytes = 100 << 10;          // publish payload limit
    uint32_t max_subscriptions_per_cache = 100000;   // 0: no limit
    uint32_t publish_rate_per_cache = 100000;        // publishes/s (burst 1 s); 0: no limit
  } topic_limits;
  net::ConnectionOptions connections;  // --max-connections, --fd-reserve, --*-timeout
  // Reply memory (gateway/reply_memory.h): one round's replies at most, and the pool of
  // every round's (0: a quarter of the memory limit, at least 64 MiB).
  uint64_t max_reply_bytes = 64ull << 20;
  uint64_t reply_memory = 0;
  // Limits every cache gets unless its tenant or itself overrides them (control/limits.h):
  // built-in defaults, then --max-item-size and the --topic-* limits, then --default-limits.
  std::string default_limits;
  bool fair_scheduling = true;   // --fair-scheduling on|off (gateway/scheduler.h)
  uint32_t sched_quantum = 32;
  uint32_t sched_max_queued = 1024;
  bool fair_eviction = true;     // --fair-eviction on|off
  // /metrics: caches and tenants with series of their own; the rest are summed as "_other".
  uint32_t metrics_max_caches = 100;
  uint32_t metrics_max_tenants = 100;
  // Usage accounting (server/usage.h): seconds per "minute" row; 60 except in tests.
  uint32_t usage_minute_seconds = 60;
  // The fleet (docs/cluster.md): etcd's client URLs (http://host:port, tried in order); none:
  // the embedded single-node default, metadata in data_dir. The cluster name picks the
  // prefix every node of one fleet shares in etcd: /cellar/v1/<name>/.
  std::vector<std::string> cluster_etcd;
  std::string cluster_name = "main";
  // This node in the fleet: its id (empty: the one in DATA_DIR/node.id, made on first start),
  // its zone, its roles (gateway and storage always; control: runs for control leader) and the
  // TTL of its lease in etcd (it stops acknowledging writes when the lease is not known alive).
  std::string node_id;
  std::string zone = "default";
  std::string roles = "gateway,storage,control";
  uint32_t lease_ttl_seconds = 10;
  // Where other nodes forward calls to this one (frontend/internal): the port (0: the kernel
  // picks) and the host they dial (empty: --bind, or this machine's name when --bind is a
  // wildcard address). The leader makes the first slot map once this many nodes are members.
  uint16_t internal_port = 0;
  std::string advertise;
  uint32_t bootstrap_expect = 1;
  // With TLS (--tls-cert or --tls-self-signed) nodes talk to each other in TLS; peers'
  // certificates are verified against this CA file when given (else not: the hello proves
  // the cluster's secret, bound to the TLS session).
  std::string cluster_tls_ca;
};

// "100", "8mb", "2GiB", "512k" -> bytes. Decimal and binary suffixes both mean powers of 1024,
// as Redis's maxmemory does. nullopt on anything else.
std::optional<uint64_t> ParseSize(std::string_view text);

// Parses `cellar serve` arguments (argv[0] is "serve"). Returns the exit code to use when the
// process should stop now (help shown, bad flags), or nullopt to go on.
std::optional<int> ParseServeArgs(int argc, char** argv, Config& config);

}  // namespace cellar::server
