// The admin API's routes: /healthz, /metrics (Prometheus text) and the /v1/ control API
// (caches, tenants, tokens, signing keys, limits, stats, usage).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "auth/signing_keys.h"
#include "gateway/gateway.h"
#include "server/admin_http.h"
#include "server/metrics.h"

namespace cellar::server {

class UsageSampler;
class Fleet;

struct AdminContext {
  gateway::Gateway* gateway;
  uint32_t threads;
  auth::SigningKeyStore* keys = nullptr;  // tokens and signing keys; null: not offered
  MetricsOptions metrics;                 // /metrics label cardinality caps
  UsageSampler* usage = nullptr;          // GET /v1/usage; null: not offered
  // On a fleet: the other nodes' counters and usage, added to /v1/stats and /v1/usage unless
  // ?node=local (server/fleet.h); /v1/caches stays this node's. Null on a single node.
  Fleet* fleet = nullptr;
  // --momento-local: GET /block (true) and /unblock (false); null: not offered.
  std::function<void(bool)> block;
  std::string endpoint;  // what minted keys name: --public-endpoint, or bind:api-port
  // GET /v1/cluster: the JSON of this node's view of the cluster (or of a single node).
  std::function<std::string()> cluster;
  // GET /v1/cluster/slot: the node owning a slot now (empty: no map yet); null on a single
  // node (every slot is its own).
  std::function<std::string(uint32_t slot)> slot_owner;
  // POST /v1/nodes/ID/drain (true) and /activate (false); null on a single node.
  std::function<Status(const std::string& node, bool drain)> set_draining;
  // Sources /metrics adds to the server's own (on a fleet: etcd, membership).
  std::vector<metrics::Source> extra_metrics;
};

// Returns the handler for AdminHttpServer. It runs on loop 0.
HttpHandler MakeAdminHandler(AdminContext ctx);

}  // namespace cellar::server
