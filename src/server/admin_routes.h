// The admin API's routes: /healthz, /metrics (Prometheus text) and the /v1/ control API
// (caches of the default tenant, tenants, tokens, signing keys).
#pragma once

#include "auth/signing_keys.h"
#include "gateway/gateway.h"
#include "server/admin_http.h"

namespace cellar::server {

struct AdminContext {
  gateway::Gateway* gateway;
  uint32_t threads;
  auth::SigningKeyStore* keys = nullptr;  // tokens and signing keys; null: not offered
};

// Returns the handler for AdminHttpServer. It runs on loop 0.
HttpHandler MakeAdminHandler(AdminContext ctx);

}  // namespace cellar::server
