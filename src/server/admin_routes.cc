#include "server/admin_routes.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "auth/token.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/numbers.h"
#include "control/admin_key.h"
#include "control/cache_registry.h"
#include "gateway/forward.h"
#include "routing/router.h"
#include "server/admin_limits.h"
#include "server/admin_util.h"
#include "server/fleet.h"
#include "server/metrics.h"
#include "server/usage.h"

namespace cellar::server {
namespace {

HttpResponse Json(int status, std::string body) { return JsonResponse(status, std::move(body)); }
HttpResponse Error(int status, std::string_view msg) { return ErrorResponse(status, msg); }

std::string CacheNameFromPath(std::string_view path, std::string_view prefix, std::string_view suffix) {
  std::string_view rest = path.substr(prefix.size());
  if (!suffix.empty()) {
    if (rest.size() <= suffix.size() || rest.substr(rest.size() - suffix.size()) != suffix) return {};
    rest.remove_suffix(suffix.size());
  }
  return std::string(rest);
}

// Tenants, tokens and signing keys (admin key only):
//   GET  /v1/tenants                   {"tenants":[{"name":..,"id":..}]}
//   POST /v1/tenants/NAME              201 {"name":..,"id":..}; 409 exists
//   POST /v1/tokens?tenant=T&super_user=1 | &role=ro|rw|wo[&cache=C][&key=K|&key_prefix=P]
//        [&expires_in=SECONDS][&token_id=ID]      201 {"token":..,"endpoint":..,"expires_at":N|null}
//        (token: a Momento v2 API key; fromApiKeyV2({apiKey: token, endpoint}))
//   GET  /v1/signing-keys              {"keys":[{"id":..,"created_ms":..,"revoked":..}]}
//   POST /v1/signing-keys/rotate       {"id":..}
//   POST /v1/signing-keys/ID/revoke    {"id":..}; 404 unknown
HttpResponse HandleAuthRoute(const AdminContext& ctx, const HttpRequest& req) {
  control::CacheRegistry& reg = ctx.gateway->registry();
  if (req.path == "/v1/tenants") {
    if (req.method != "GET") return Error(405, "use GET to list tenants");
    std::string body = "{\"tenants\":[";
    bool first = true;
    for (const auto& t : reg.ListTenants()) {
      body += std::string(first ? "" : ",") + "{\"name\":\"" + JsonEscape(t.name) +
              "\",\"id\":" + std::to_string(t.id) + "}";
      first = false;
    }
    return Json(200, body + "]}");
  }
  if (req.path.rfind("/v1/tenants/", 0) == 0) {
    // POST (create) is answered by the admin handler, once the fleet knows the tenant.
    return Error(405, "use POST /v1/tenants/NAME to create a tenant");
  }
  if (ctx.keys == nullptr) return Error(404, "tokens are not configured");
  if (req.path == "/v1/tokens") {
    if (req.method != "POST") return Error(405, "use POST to mint a token");
    auto tenant = QueryParam(req.query, "tenant");
    if (!tenant || !reg.FindTenant(*tenant)) return Error(404, "tenant not found (tenant=NAME)");
    auth::Claims c;
    c.tenant = *tenant;
    c.kind = auth::TokenKind::kApi;
    c.issued_at = SystemClock::Get()->NowMillis() / 1000;
    if (auto s = QueryParam(req.query, "super_user"); s && (*s == "1" || *s == "true")) {
      c.perms.super_user = true;
    } else {
      // A cache grant (role), a topic grant (topic_role), or both, on `cache` (all if absent).
      const auto role = QueryParam(req.query, "role");
      const auto topic_role = QueryParam(req.query, "topic_role");
      if (!role && !topic_role) {
        return Error(400, "role (ro, rw, wo) or topic_role (pubsub, subscribe, publish) is "
                          "required (or super_user=1)");
      }
      if (role) {
        auth::CacheGrant g;
        if (*role == "ro") g.role = auth::CacheRole::kReadOnly;
        else if (*role == "rw") g.role = auth::CacheRole::kReadWrite;
        else if (*role == "wo") g.role = auth::CacheRole::kWriteOnly;
        else return Error(400, "role must be ro, rw or wo");
        g.cache = QueryParam(req.query, "cache");
        g.key = QueryParam(req.query, "key");
        g.key_prefix = QueryParam(req.query, "key_prefix");
        c.perms.caches.push_back(std::move(g));
      }
      if (topic_role) {
        auth::TopicGrant g;
        if (*topic_role == "pubsub") g.role = auth::TopicRole::kPublishSubscribe;
        else if (*topic_role == "subscribe") g.role = auth::TopicRole::kSubscribeOnly;
        else if (*topic_role == "publish") g.role = auth::TopicRole::kPublishOnly;
        else return Error(400, "topic_role must be pubsub, subscribe or publish");
        g.cache = QueryParam(req.query, "cache");
        g.topic = QueryParam(req.query, "topic");
        g.topic_prefix = QueryParam(req.query, "topic_prefix");
        c.perms.topics.push_back(std::move(g));
      }
      if (Status st = auth::Validate(c.perms); !st.ok()) return Error(400, st.message());
    }
    if (auto e = QueryParam(req.query, "expires_in")) {
      auto secs = ParseInt64(*e);
      // At most what gRPC's valid_for_seconds (uint32) can ask: about 136 years, and no overflow.
      constexpr int64_t kMaxExpiresIn = 4'294'967'295;
      if (!secs || *secs <= 0 || *secs > kMaxExpiresIn) {
        return Error(400, "expires_in must be a positive number of seconds, at most 4294967295");
      }
      c.expires_at = c.issued_at + *secs;
    }
    c.token_id = QueryParam(req.query, "token_id").value_or("");
    c.v2 = true;
    auto token = auth::Mint(*ctx.keys, c);
    if (!token.ok()) return Error(HttpStatusOf(token.status()), token.status().message());
    return Json(201, "{\"token\":\"" + *token + "\",\"endpoint\":\"" + JsonEscape(ctx.endpoint) +
                         "\",\"expires_at\":" +
                         (c.expires_at ? std::to_string(c.expires_at) : std::string("null")) + "}");
  }
  if (req.path == "/v1/signing-keys") {
    if (req.method != "GET") return Error(405, "use GET to list signing keys");
    std::string body = "{\"keys\":[";
    bool first = true;
    for (const auto& k : ctx.keys->List()) {
      body += std::string(first ? "" : ",") + "{\"id\":\"" + k.id + "\",\"created_ms\":" +
              std::to_string(k.created_ms) + ",\"revoked\":" + (k.revoked ? "true" : "false") + "}";
      first = false;
    }
    return Json(200, body + "]}");
  }
  // POST .../rotate and .../ID/revoke are answered by the admin handler, once the fleet has
  // applied them.
  return Error(404, "no such endpoint");
}

// GET /v1/cluster/slot?cache=C[&tenant=T]&key=K: where a key (or a topic: the same name) of a
// cache lives: its slot and, on a fleet, the node that owns the slot now. For operators (and
// tests) asking "which node holds this?"; clients never need it.
HttpResponse HandleSlotOf(const AdminContext& ctx, control::CacheRegistry& reg,
                          const HttpRequest& req) {
  if (req.method != "GET") return Error(405, "use GET /v1/cluster/slot?cache=C&key=K");
  const auto cache = QueryParam(req.query, "cache");
  const auto key = QueryParam(req.query, "key");
  if (!cache || !key) return Error(400, "cache and key are required: ?cache=C&key=K[&tenant=T]");
  const auto tenant = reg.FindTenant(QueryParam(req.query, "tenant").value_or("default"));
  if (!tenant) return Error(404, "tenant not found");
  const auto c = reg.Find(tenant->id, *cache);
  if (!c) return Error(404, "cache not found");
  const uint32_t slot = routing::SlotOf(KeyHash(c->id, *key));
  std::string body = "{\"cache_id\":" + std::to_string(c->id) + ",\"slot\":" + std::to_string(slot);
  if (ctx.slot_owner) body += ",\"owner\":\"" + JsonEscape(ctx.slot_owner(slot)) + "\"";
  return Json(200, body + "}");
}

// GET /v1/usage?tenant=T[&cache=C][&from=UNIX&to=UNIX][&node=local]: minute rows, the minute
// in progress flagged "partial"; on a fleet, summed over the nodes unless node=local.
HttpResponse HandleUsage(const AdminContext& ctx, const HttpRequest& req) {
  if (req.method != "GET") return Error(405, "use GET /v1/usage");
  if (ctx.usage == nullptr) return Error(404, "usage accounting is not running");
  const auto tenant = QueryParam(req.query, "tenant");
  if (tenant && !ctx.gateway->registry().FindTenant(*tenant)) {
    return Error(404, "tenant not found");
  }
  int64_t bounds[2] = {0, INT64_MAX};
  const char* names[2] = {"from", "to"};
  for (int i = 0; i < 2; ++i) {
    if (auto v = QueryParam(req.query, names[i])) {
      auto n = ParseInt64(*v);
      if (!n || *n < 0) {
        return Error(400, std::string(names[i]) + " must be a Unix time in seconds");
      }
      bounds[i] = *n;
    }
  }
  ctx.usage->SampleNow();  // so the minute in progress includes the last second
  const auto cache = QueryParam(req.query, "cache");
  auto rows = ctx.usage->log().Query(tenant, cache, bounds[0], bounds[1]);
  if (ctx.fleet != nullptr && QueryParam(req.query, "node").value_or("") != "local") {
    // The fleet's: this node's rows plus the others' (as they reported them, within a second).
    std::map<std::tuple<int64_t, std::string, std::string>, UsageRecord> merged;
    auto add = [&merged](UsageRecord r) {
      auto [it, fresh] = merged.try_emplace({r.minute, r.tenant, r.cache}, r);
      if (fresh) return;
      it->second.usage.Add(r.usage);
      it->second.partial = it->second.partial || r.partial;
    };
    for (UsageRecord& r : rows) add(std::move(r));
    for (UsageRecord& r :
         ctx.fleet->PeerUsage(tenant, cache, bounds[0], bounds[1], SystemClock::Get()->NowMillis(),
                              ctx.usage->log().minute_seconds())) {
      add(std::move(r));
    }
    rows.clear();
    for (auto& [key, r] : merged) rows.push_back(std::move(r));
  }
  std::string body = "{\"minute_seconds\":" + std::to_string(ctx.usage->log().minute_seconds()) +
                     ",\"usage\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const UsageRecord& r = rows[i];
    if (i > 0) body += ",";
    body += "{\"minute\":" + std::to_string(r.minute) + ",\"tenant\":\"" + JsonEscape(r.tenant) +
            "\",\"cache\":\"" + JsonEscape(r.cache) +
            "\",\"requests\":" + std::to_string(r.usage.requests) +
            ",\"bytes_in\":" + std::to_string(r.usage.bytes_in) +
            ",\"bytes_out\":" + std::to_string(r.usage.bytes_out) +
            ",\"throttled\":" + std::to_string(r.usage.throttled) +
            ",\"partial\":" + (r.partial ? "true" : "false") + "}";
  }
  return Json(200, body + "]}");
}

}  // namespace

HttpHandler MakeAdminHandler(AdminContext ctx) {
  return [ctx](const HttpRequest& req, HttpRespond respond) {
    gateway::Gateway* gw = ctx.gateway;
    if (req.path == "/healthz") {
      if (req.method != "GET" && req.method != "HEAD") return respond(Error(405, "use GET"));
      return respond({200, "text/plain", "ok\n"});
    }
    if (req.path == "/metrics") {
      if (req.method != "GET") return respond(Error(405, "use GET"));
      uint32_t threads = ctx.threads;
      return gw->CollectStats(
          0, [respond, threads, gw, opts = ctx.metrics, extra = ctx.extra_metrics](
                 gateway::Stats st) {
            respond({200, "text/plain; version=0.0.4",
                     RenderMetrics(st, threads, gw, opts, extra)});
          });
    }
    if (ctx.block && (req.path == "/block" || req.path == "/unblock")) {
      if (req.method != "GET" && req.method != "POST") return respond(Error(405, "use GET"));
      const bool on = req.path == "/block";
      ctx.block(on);
      return respond({200, "text/plain", on ? "blocked\n" : "unblocked\n"});
    }
    const std::string_view kCaches = "/v1/caches";
    if (req.path.rfind("/v1/", 0) != 0) return respond(Error(404, "no such endpoint"));
    if (!gw->options().dev_no_auth) {
      std::string_view auth = req.authorization;
      const std::string_view kBearer = "Bearer ";
      if (auth.empty()) return respond(Error(401, "missing Authorization: Bearer <admin key>"));
      if (auth.rfind(kBearer, 0) != 0 || !gw->IsAdminKey(auth.substr(kBearer.size()))) {
        return respond(Error(403, "invalid admin key"));
      }
    }
    control::CacheRegistry& reg = gw->registry();
    control::CacheRegistry* regp = &reg;  // for what runs later
    // A change that commits to the metadata store: `work` runs on the gateway's control
    // thread (it may wait on etcd; loop 0, which serves this port, serves data too), and
    // `then` here with its response.
    auto commit = [gw](std::function<HttpResponse()> work,
                       std::function<void(HttpResponse)> then) {
      auto out = std::make_shared<HttpResponse>();
      gw->RunControl(0, [out, work = std::move(work)] { *out = work(); },
                     [out, then = std::move(then)](Status st) {
                       if (!st.ok()) return then(Error(HttpStatusOf(st), st.message()));
                       then(std::move(*out));
                     });
    };
    // Its answer once every node applied `part` as of *revision (on a fleet), if it was made.
    auto once_synced = [gw, respond](gateway::MetadataPart part,
                                     std::shared_ptr<int64_t> revision) {
      return [gw, respond, part, revision](HttpResponse r) {
        if (r.status >= 300) return respond(std::move(r));
        gw->SyncMetadata(0, part, *revision, [respond, r = std::move(r)] { respond(r); });
      };
    };
    if (req.path == "/v1/limits") return respond(HandleLimitsTable(reg, req));
    if (req.path == "/v1/cluster" && ctx.cluster) {
      if (req.method != "GET") return respond(Error(405, "use GET"));
      return respond({200, "application/json", ctx.cluster()});
    }
    if (req.path == "/v1/cluster/slot") return respond(HandleSlotOf(ctx, reg, req));
    if (req.path.rfind("/v1/nodes/", 0) == 0) {
      if (!ctx.set_draining) return respond(Error(404, "not a cluster: no nodes to drain"));
      const bool drain = req.path.ends_with("/drain");
      const bool activate = req.path.ends_with("/activate");
      if (!drain && !activate) {
        return respond(Error(404, "no such endpoint; POST /v1/nodes/ID/drain or /activate"));
      }
      if (req.method != "POST") return respond(Error(405, "use POST"));
      const std::string_view rest = std::string_view(req.path).substr(10);
      const std::string node(rest.substr(0, rest.rfind('/')));
      return commit(
          [set = ctx.set_draining, node, drain]() -> HttpResponse {
            Status st = set(node, drain);
            if (!st.ok()) return Error(HttpStatusOf(st), st.message());
            return {200, "application/json",
                    "{\"node\":\"" + JsonEscape(node) + "\",\"state\":\"" +
                        (drain ? "draining" : "active") + "\"}"};
          },
          respond);
    }
    // A change of limits is committed on the control thread and answered once every node
    // enforces it (on a fleet); a read is answered at once.
    const bool changes = req.method == "PUT" || req.method == "PATCH";
    if (auto t = PathSegment(req, "/v1/tenants/", "/limits")) {
      if (!changes) return respond(HandleTenantLimits(reg, req, *t));
      auto revision = std::make_shared<int64_t>(0);
      return commit(
          [regp, req, t = *t, revision] {
            HttpResponse r = HandleTenantLimits(*regp, req, t);
            *revision = regp->revision();
            return r;
          },
          once_synced(gateway::MetadataPart::kCatalog, revision));
    }
    if (req.path == "/v1/usage") return respond(HandleUsage(ctx, req));
    if (req.path == "/v1/stats") {
      if (req.method != "GET") return respond(Error(405, "use GET /v1/stats"));
      auto tenant = QueryParam(req.query, "tenant");
      auto cache = QueryParam(req.query, "cache");
      if (cache && !tenant) tenant = "default";
      if (tenant) {
        const auto t = reg.FindTenant(*tenant);
        if (!t) return respond(Error(404, "tenant not found"));
        if (cache && !reg.Find(t->id, *cache)) return respond(Error(404, "cache not found"));
      }
      // On a fleet, the sums over its nodes unless ?node=local.
      Fleet* fleet = QueryParam(req.query, "node").value_or("") == "local" ? nullptr : ctx.fleet;
      return gw->CollectStats(0, [respond, tenant, cache, fleet](gateway::Stats st) {
        const size_t nodes = fleet != nullptr ? fleet->AddPeerStats(st) : 0;
        respond(
            Json(200, RenderStatsJson(st, SystemClock::Get()->NowMillis(), tenant, cache, nodes)));
      });
    }
    if (req.method == "POST" && req.path.rfind("/v1/tenants/", 0) == 0) {
      // Answered once every node knows the tenant (on a fleet), so its tokens work on any.
      auto revision = std::make_shared<int64_t>(0);
      return commit(
          [regp, revision, name = req.path.substr(std::string_view("/v1/tenants/").size())] {
            auto t = regp->CreateTenant(name, revision.get());
            if (!t.ok()) return Error(HttpStatusOf(t.status()), t.status().message());
            return Json(201, "{\"name\":\"" + JsonEscape(t->name) + "\",\"id\":" +
                                 std::to_string(t->id) + "}");
          },
          once_synced(gateway::MetadataPart::kCatalog, revision));
    }
    // Signing keys: answered once every node applied the rotation (its tokens verify on any
    // node) or the revocation (that key's tokens fail on every node).
    const std::string_view kKeys = "/v1/signing-keys/";
    if (ctx.keys != nullptr && req.method == "POST" && req.path.rfind(kKeys, 0) == 0) {
      const std::string rest(std::string_view(req.path).substr(kKeys.size()));
      const bool rotate = rest == "rotate";
      const bool revoke = rest.size() > 7 && rest.substr(rest.size() - 7) == "/revoke";
      if (!rotate && !revoke) return respond(Error(404, "no such endpoint"));
      auto revision = std::make_shared<int64_t>(0);
      return commit(
          [keys = ctx.keys, revision, rotate, rest]() -> HttpResponse {
            if (rotate) {
              auto id = keys->Rotate(revision.get());
              if (!id.ok()) return Error(HttpStatusOf(id.status()), id.status().message());
              return Json(200, "{\"id\":\"" + *id + "\"}");
            }
            const std::string id = rest.substr(0, rest.size() - 7);
            if (Status st = keys->Revoke(id, revision.get()); !st.ok()) {
              return Error(HttpStatusOf(st), st.message());
            }
            return Json(200, "{\"id\":\"" + JsonEscape(id) + "\"}");
          },
          once_synced(gateway::MetadataPart::kSigningKeys, revision));
    }
    if (req.path.rfind("/v1/tenants", 0) == 0 || req.path.rfind("/v1/tokens", 0) == 0 ||
        req.path.rfind("/v1/signing-keys", 0) == 0) {
      return respond(HandleAuthRoute(ctx, req));
    }
    // ?tenant=NAME picks the tenant whose caches these routes manage (default: `default`).
    const std::string tenant_name = QueryParam(req.query, "tenant").value_or("default");
    const auto tenant = gw->registry().FindTenant(tenant_name);
    if (!tenant) return respond(Error(404, "tenant not found"));
    const uint32_t tenant_id = tenant->id;
    if (auto c = PathSegment(req, "/v1/caches/", "/limits")) {
      if (!changes) return respond(HandleCacheLimits(reg, req, tenant_name, *c));
      auto revision = std::make_shared<int64_t>(0);
      return commit(
          [regp, req, tenant_name, c = *c, revision] {
            HttpResponse r = HandleCacheLimits(*regp, req, tenant_name, c);
            *revision = regp->revision();
            return r;
          },
          once_synced(gateway::MetadataPart::kCatalog, revision));
    }
    if (req.path == kCaches) {
      if (req.method != "GET") return respond(Error(405, "use GET to list caches"));
      // This node's counters (items: what it holds); /v1/stats has the fleet's sums.
      return gw->CollectStats(0, [respond, tenant_name](gateway::Stats st) {
        std::string body = "{\"caches\":[";
        bool first = true;
        for (const auto& c : st.caches) {
          if (c.tenant != tenant_name) continue;
          if (!first) body += ",";
          first = false;
          body += "{\"name\":\"" + JsonEscape(c.name) + "\",\"id\":" + std::to_string(c.id) +
                  ",\"items\":" + std::to_string(c.items) +
                  ",\"bytes\":" + std::to_string(c.bytes) +
                  ",\"requests\":" + std::to_string(c.requests) +
                  ",\"hits\":" + std::to_string(c.hits) +
                  ",\"misses\":" + std::to_string(c.misses) + "}";
        }
        body += "]}";
        respond(Json(200, std::move(body)));
      });
    }
    if (req.path.rfind(std::string(kCaches) + "/", 0) != 0) {
      return respond(Error(404, "no such endpoint"));
    }
    const std::string prefix = std::string(kCaches) + "/";
    if (req.method == "POST") {
      std::string name = CacheNameFromPath(req.path, prefix, "/flush");
      if (name.empty()) return respond(Error(404, "no such endpoint; POST /v1/caches/NAME/flush"));
      return gw->FlushCache(0, tenant_id, name, [respond, name](StatusOr<uint64_t> r) {
        if (!r.ok()) return respond(Error(HttpStatusOf(r.status()), r.status().message()));
        respond(Json(200, "{\"name\":\"" + JsonEscape(name) + "\",\"flushed\":" +
                              std::to_string(*r) + "}"));
      });
    }
    std::string name = CacheNameFromPath(req.path, prefix, "");
    if (req.method == "PUT") {
      return gw->CreateCache(0, tenant_id, name, [respond, name](Status st) {
        if (!st.ok()) return respond(Error(HttpStatusOf(st), st.message()));
        respond(Json(201, "{\"name\":\"" + JsonEscape(name) + "\"}"));
      });
    }
    if (req.method == "DELETE") {
      return gw->DeleteCache(0, tenant_id, name, [respond, name](Status st) {
        if (!st.ok()) return respond(Error(HttpStatusOf(st), st.message()));
        respond(Json(200, "{\"name\":\"" + JsonEscape(name) + "\"}"));
      });
    }
    respond(Error(405, "use PUT to create, DELETE to delete, POST .../flush to flush"));
  };
}

}  // namespace cellar::server
