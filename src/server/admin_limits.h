// The limits routes of the admin API (control/limits.h names the limits):
//   GET           /v1/limits                       the table and the server's defaults
//   GET|PUT|PATCH /v1/tenants/NAME/limits          a tenant's overrides and tenant-wide values
//   GET|PUT|PATCH /v1/caches/NAME/limits?tenant=T  a cache's overrides and effective values
// PUT and PATCH both merge the body into the overrides (a value "default" or null clears one).
// Bodies: a flat JSON object {"requests_per_second": 500, "max_ttl_seconds": "1d"} or the
// text form `requests_per_second=500,max_ttl_seconds=1d`. Errors: 400 with ParseLimits's
// message, 404 for an unknown tenant or cache.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "control/limits.h"
#include "server/admin_http.h"

namespace cellar::control {
class CacheRegistry;
}

namespace cellar::server {

// A request body as an update of overrides (see above). for_cache refuses tenant-only limits.
StatusOr<control::LimitOverrides> ParseLimitsBody(std::string_view body, bool for_cache);

HttpResponse HandleLimitsTable(const control::CacheRegistry& reg, const HttpRequest& req);
HttpResponse HandleTenantLimits(control::CacheRegistry& reg, const HttpRequest& req,
                                const std::string& tenant);
HttpResponse HandleCacheLimits(control::CacheRegistry& reg, const HttpRequest& req,
                               const std::string& tenant, const std::string& cache);

}  // namespace cellar::server
