// The admin API's routes: /healthz, /metrics (Prometheus text) and the /v1/caches control API.
#pragma once

#include "gateway/gateway.h"
#include "server/admin_http.h"

namespace cellar::server {

struct AdminContext {
  gateway::Gateway* gateway;
  uint32_t threads;
};

// Returns the handler for AdminHttpServer. It runs on loop 0.
HttpHandler MakeAdminHandler(AdminContext ctx);

}  // namespace cellar::server
