#include "server/admin_routes.h"

#include <algorithm>
#include <optional>
#include <string>

#include "auth/token.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "control/admin_key.h"
#include "frontend/resp/commands.h"
#include "control/cache_registry.h"
#include "frontend/grpc/metrics.h"
#include "frontend/grpc/services.h"
#include "frontend/resp/metrics.h"
#include "topics/topics.h"

namespace cellar::server {
namespace {

// At most this many caches get their own label values on /metrics; the rest are summed
// under cache="_other", so a tenant with many caches cannot blow up the series count.
constexpr size_t kMaxCacheSeries = 1000;

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Prometheus label values escape backslash, quote and newline.
std::string LabelEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

HttpResponse Json(int status, std::string body) { return {status, "application/json", std::move(body)}; }
HttpResponse Error(int status, std::string_view msg) {
  return Json(status, "{\"error\":\"" + JsonEscape(msg) + "\"}");
}

int HttpStatusOf(const Status& st) {
  switch (st.code()) {
    case Code::kOk: return 200;
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists: return 409;
    case Code::kInvalidArgument: return 400;
    case Code::kUnauthenticated: return 401;
    case Code::kPermissionDenied: return 403;
    case Code::kResourceExhausted: return 429;
    case Code::kUnavailable: return 503;
    default: return 500;
  }
}

void Metric(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += " ";
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += " ";
  out += type;
  out += "\n";
}

void Sample(std::string& out, std::string_view name, std::string_view labels, uint64_t v) {
  out += name;
  if (!labels.empty()) {
    out += "{";
    out += labels;
    out += "}";
  }
  out += " ";
  out += std::to_string(v);
  out += "\n";
}

std::string RenderMetrics(const gateway::Stats& st, uint32_t threads, const topics::Topics* topics) {
  std::string out;
  using resp::MetricsOf;
  const auto& commands = resp::AllCommands();
  std::vector<uint64_t> calls(resp::kMaxCommandIds), errors(resp::kMaxCommandIds);
  std::vector<uint64_t> latency(resp::kLatencyBoundsUs.size());
  uint64_t opened = 0, closed = 0, proto_errors = 0, bytes_in = 0, bytes_out = 0, lat_sum = 0;
  for (uint32_t t = 0; t < threads; ++t) {
    resp::ThreadMetrics& m = MetricsOf(t);
    opened += m.connections_opened.load(std::memory_order_relaxed);
    closed += m.connections_closed.load(std::memory_order_relaxed);
    proto_errors += m.protocol_errors.load(std::memory_order_relaxed);
    bytes_in += m.bytes_in.load(std::memory_order_relaxed);
    bytes_out += m.bytes_out.load(std::memory_order_relaxed);
    lat_sum += m.latency_sum_us.load(std::memory_order_relaxed);
    for (size_t i = 0; i < resp::kMaxCommandIds; ++i) {
      calls[i] += m.calls[i].load(std::memory_order_relaxed);
      errors[i] += m.errors[i].load(std::memory_order_relaxed);
    }
    for (size_t i = 0; i < latency.size(); ++i) latency[i] += m.latency[i].load(std::memory_order_relaxed);
  }
  Metric(out, "cellar_commands_total", "counter", "RESP commands executed, by command.");
  for (const auto* spec : commands) {
    size_t id = resp::CommandIndex(spec->name);
    if (calls[id] == 0) continue;
    Sample(out, "cellar_commands_total", "command=\"" + std::string(spec->name) + "\"", calls[id]);
  }
  Metric(out, "cellar_command_errors_total", "counter", "RESP commands that answered an error.");
  for (const auto* spec : commands) {
    size_t id = resp::CommandIndex(spec->name);
    if (errors[id] == 0) continue;
    Sample(out, "cellar_command_errors_total", "command=\"" + std::string(spec->name) + "\"", errors[id]);
  }
  Metric(out, "cellar_command_latency_seconds", "histogram",
         "Time from a command's arrival to its reply being ready.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < latency.size(); ++i) {
    cumulative += latency[i];
    std::string le = resp::kLatencyBoundsUs[i] == UINT64_MAX
                         ? "+Inf"
                         : std::to_string(resp::kLatencyBoundsUs[i] / 1e6);
    Sample(out, "cellar_command_latency_seconds_bucket", "le=\"" + le + "\"", cumulative);
  }
  out += "cellar_command_latency_seconds_sum " + std::to_string(lat_sum / 1e6) + "\n";
  Sample(out, "cellar_command_latency_seconds_count", "", cumulative);
  // gRPC calls by method, summed over the loops.
  std::vector<uint64_t> gcalls(grpc::kMaxMethodIds), gerrors(grpc::kMaxMethodIds);
  uint64_t gopened = 0, gclosed = 0;
  for (uint32_t t = 0; t < threads; ++t) {
    grpc::GrpcThreadMetrics& m = grpc::GrpcMetricsOf(t);
    gopened += m.connections_opened.load(std::memory_order_relaxed);
    gclosed += m.connections_closed.load(std::memory_order_relaxed);
    for (size_t i = 0; i < grpc::kMaxMethodIds; ++i) {
      gcalls[i] += m.calls[i].load(std::memory_order_relaxed);
      gerrors[i] += m.errors[i].load(std::memory_order_relaxed);
    }
  }
  auto method_label = [](size_t i) {
    const auto methods = grpc::AllMethods();
    return "method=\"" + std::string(i < methods.size() ? methods[i].path : "unknown") + "\"";
  };
  Metric(out, "cellar_grpc_calls_total", "counter", "gRPC calls answered, by method.");
  for (size_t i = 0; i < grpc::kMaxMethodIds; ++i) {
    if (gcalls[i] != 0) Sample(out, "cellar_grpc_calls_total", method_label(i), gcalls[i]);
  }
  Metric(out, "cellar_grpc_call_errors_total", "counter",
         "gRPC calls answered with a non-OK status, by method.");
  for (size_t i = 0; i < grpc::kMaxMethodIds; ++i) {
    if (gerrors[i] != 0) Sample(out, "cellar_grpc_call_errors_total", method_label(i), gerrors[i]);
  }

  if (const topics::Topics* t = topics) {
    const topics::Topics::Counters tc = t->Snapshot();
    Metric(out, "cellar_topic_subscriptions", "gauge", "Topic subscriptions open (gRPC and RESP, patterns included).");
    Sample(out, "cellar_topic_subscriptions", "", tc.subscriptions);
    Metric(out, "cellar_topic_messages_published_total", "counter", "Messages published to topics.");
    Sample(out, "cellar_topic_messages_published_total", "", tc.published);
    Metric(out, "cellar_topic_deliveries_total", "counter", "Messages handed to subscriptions.");
    Sample(out, "cellar_topic_deliveries_total", "", tc.deliveries);
    Metric(out, "cellar_topic_slow_subscribers_total", "counter",
           "Subscribers cut off because they fell behind their queue bound.");
    Sample(out, "cellar_topic_slow_subscribers_total", "", tc.slow_cutoffs);
  }

  Metric(out, "cellar_connections", "gauge", "Open client connections.");
  Sample(out, "cellar_connections", "protocol=\"resp\"", opened - closed);
  Sample(out, "cellar_connections", "protocol=\"grpc\"", gopened - gclosed);
  Metric(out, "cellar_connections_total", "counter", "Client connections accepted.");
  Sample(out, "cellar_connections_total", "protocol=\"resp\"", opened);
  Sample(out, "cellar_connections_total", "protocol=\"grpc\"", gopened);
  Metric(out, "cellar_protocol_errors_total", "counter", "Connections closed for malformed input.");
  Sample(out, "cellar_protocol_errors_total", "protocol=\"resp\"", proto_errors);
  Metric(out, "cellar_network_bytes_total", "counter", "Bytes received and sent to clients.");
  Sample(out, "cellar_network_bytes_total", "direction=\"in\"", bytes_in);
  Sample(out, "cellar_network_bytes_total", "direction=\"out\"", bytes_out);

  Metric(out, "cellar_items", "gauge", "Items stored (expired ones not yet removed included).");
  Sample(out, "cellar_items", "", st.items);
  Metric(out, "cellar_memory_used_bytes", "gauge", "Bytes used by items and the key index.");
  Sample(out, "cellar_memory_used_bytes", "", st.used_bytes);
  Metric(out, "cellar_memory_limit_bytes", "gauge", "The memory limit; eviction keeps under it.");
  Sample(out, "cellar_memory_limit_bytes", "", st.memory_limit);
  Metric(out, "cellar_hits_total", "counter", "Reads that found their key.");
  Sample(out, "cellar_hits_total", "", st.hits);
  Metric(out, "cellar_misses_total", "counter", "Reads that did not find their key.");
  Sample(out, "cellar_misses_total", "", st.misses);
  Metric(out, "cellar_evictions_total", "counter", "Items evicted to stay within the memory limit.");
  Sample(out, "cellar_evictions_total", "", st.evictions);
  Metric(out, "cellar_expirations_total", "counter", "Items removed because their TTL passed.");
  Sample(out, "cellar_expirations_total", "", st.expirations);
  Metric(out, "cellar_oom_refusals_total", "counter", "Writes refused because nothing could be evicted.");
  Sample(out, "cellar_oom_refusals_total", "", st.oom_refusals);

  struct Row {
    const char* name;
    const char* type;
    const char* help;
    uint64_t gateway::CacheStats::*field;
  };
  static const Row kRows[] = {
      {"cellar_cache_operations_total", "counter", "Operations executed, by cache.", &gateway::CacheStats::ops},
      {"cellar_cache_items", "gauge", "Items, by cache.", &gateway::CacheStats::items},
      {"cellar_cache_bytes", "gauge", "Bytes of items, by cache.", &gateway::CacheStats::bytes},
      {"cellar_cache_hits_total", "counter", "Hits, by cache.", &gateway::CacheStats::hits},
      {"cellar_cache_misses_total", "counter", "Misses, by cache.", &gateway::CacheStats::misses},
      {"cellar_cache_evictions_total", "counter", "Evictions, by cache.", &gateway::CacheStats::evictions},
      {"cellar_cache_expirations_total", "counter", "Expirations, by cache.", &gateway::CacheStats::expirations},
  };
  for (const Row& row : kRows) {
    Metric(out, row.name, row.type, row.help);
    uint64_t other = 0;
    for (size_t i = 0; i < st.caches.size(); ++i) {
      if (i >= kMaxCacheSeries) {
        other += st.caches[i].*row.field;
        continue;
      }
      Sample(out, row.name,
             "tenant=\"" + LabelEscape(st.caches[i].tenant) + "\",cache=\"" +
                 LabelEscape(st.caches[i].name) + "\"",
             st.caches[i].*row.field);
    }
    if (st.caches.size() > kMaxCacheSeries) Sample(out, row.name, "cache=\"_other\"", other);
  }
  return out;
}

std::string CacheNameFromPath(std::string_view path, std::string_view prefix, std::string_view suffix) {
  std::string_view rest = path.substr(prefix.size());
  if (!suffix.empty()) {
    if (rest.size() <= suffix.size() || rest.substr(rest.size() - suffix.size()) != suffix) return {};
    rest.remove_suffix(suffix.size());
  }
  return std::string(rest);
}

// The value of `name` in a URL query (percent-decoded, '+' as space); nullopt if absent.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string raw(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    std::replace(raw.begin(), raw.end(), '+', ' ');  // the query-string rule, before decoding
    std::string out;
    if (!PercentDecode(raw, &out)) return raw;  // a malformed escape stays as sent
    return out;
  }
  return std::nullopt;
}

// Tenants, tokens and signing keys (admin key only):
//   GET  /v1/tenants                   {"tenants":[{"name":..,"id":..}]}
//   POST /v1/tenants/NAME              201 {"name":..,"id":..}; 409 exists
//   POST /v1/tokens?tenant=T&super_user=1 | &role=ro|rw|wo[&cache=C][&key=K|&key_prefix=P]
//        [&expires_in=SECONDS][&token_id=ID]      201 {"token":..,"expires_at":N|null}
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
    if (req.method != "POST") return Error(405, "use POST /v1/tenants/NAME to create a tenant");
    auto t = reg.CreateTenant(req.path.substr(std::string_view("/v1/tenants/").size()));
    if (!t.ok()) return Error(HttpStatusOf(t.status()), t.status().message());
    return Json(201, "{\"name\":\"" + JsonEscape(t->name) + "\",\"id\":" + std::to_string(t->id) + "}");
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
      if (!secs || *secs <= 0) return Error(400, "expires_in must be a positive number of seconds");
      c.expires_at = c.issued_at + *secs;
    }
    c.token_id = QueryParam(req.query, "token_id").value_or("");
    auto token = auth::Mint(*ctx.keys, c);
    if (!token.ok()) return Error(HttpStatusOf(token.status()), token.status().message());
    return Json(201, "{\"token\":\"" + *token + "\",\"expires_at\":" +
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
  if (req.path == "/v1/signing-keys/rotate" && req.method == "POST") {
    auto id = ctx.keys->Rotate();
    if (!id.ok()) return Error(HttpStatusOf(id.status()), id.status().message());
    return Json(200, "{\"id\":\"" + *id + "\"}");
  }
  const std::string_view kKeys = "/v1/signing-keys/";
  if (req.method == "POST" && req.path.rfind(kKeys, 0) == 0 && req.path.size() > kKeys.size() + 7 &&
      req.path.substr(req.path.size() - 7) == "/revoke") {
    const std::string id = req.path.substr(kKeys.size(), req.path.size() - kKeys.size() - 7);
    if (Status st = ctx.keys->Revoke(id); !st.ok()) return Error(HttpStatusOf(st), st.message());
    return Json(200, "{\"id\":\"" + JsonEscape(id) + "\"}");
  }
  return Error(404, "no such endpoint");
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
      return gw->CollectStats(0, [respond, threads, gw](gateway::Stats st) {
        respond({200, "text/plain; version=0.0.4", RenderMetrics(st, threads, gw->topics())});
      });
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
    if (req.path.rfind("/v1/tenants", 0) == 0 || req.path.rfind("/v1/tokens", 0) == 0 ||
        req.path.rfind("/v1/signing-keys", 0) == 0) {
      return respond(HandleAuthRoute(ctx, req));
    }
    // ?tenant=NAME picks the tenant whose caches these routes manage (default: `default`).
    const std::string tenant_name = QueryParam(req.query, "tenant").value_or("default");
    const auto tenant = gw->registry().FindTenant(tenant_name);
    if (!tenant) return respond(Error(404, "tenant not found"));
    const uint32_t tenant_id = tenant->id;
    if (req.path == kCaches) {
      if (req.method != "GET") return respond(Error(405, "use GET to list caches"));
      return gw->CollectStats(0, [respond, tenant_name](gateway::Stats st) {
        std::string body = "{\"caches\":[";
        bool first = true;
        for (const auto& c : st.caches) {
          if (c.tenant != tenant_name) continue;
          if (!first) body += ",";
          first = false;
          body += "{\"name\":\"" + JsonEscape(c.name) + "\",\"items\":" + std::to_string(c.items) +
                  ",\"bytes\":" + std::to_string(c.bytes) + "}";
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
