#include "server/admin_limits.h"

#include <optional>

#include "control/cache_registry.h"
#include "server/admin_util.h"

namespace cellar::server {
namespace {

using control::LimitOverrides;
using control::Limits;
using control::LimitSpec;
using control::LimitSpecs;

std::string_view UnitName(control::LimitUnit u) {
  switch (u) {
    case control::LimitUnit::kBytes:
      return "bytes";
    case control::LimitUnit::kSeconds:
      return "seconds";
    case control::LimitUnit::kCount:
      break;
  }
  return "count";
}

// `"name":` (built by appending: GCC 12 warns falsely on "literal" + std::string, bug 105329).
std::string Key(std::string_view name) {
  std::string k;
  k.reserve(name.size() + 3);
  k += '"';
  k += name;
  k += "\":";
  return k;
}

// {"name":value,...} of the set overrides, in table order.
std::string OverridesJson(const LimitOverrides& o) {
  std::string out = "{";
  for (const LimitSpec& s : LimitSpecs()) {
    if (!o[s.id]) continue;
    if (out.size() > 1) out += ",";
    out += Key(s.name);
    out += std::to_string(*o[s.id]);
  }
  return out + "}";
}

// "effective", "human" and "source" objects for a full set of values; `source_of` names the
// layer each value came from.
template <typename SourceOf>
std::string ValuesJson(const Limits& values, SourceOf source_of) {
  std::string effective, human, source;
  for (const LimitSpec& s : LimitSpecs()) {
    const std::string key = Key(s.name);
    const char* sep = effective.empty() ? "" : ",";
    effective += sep + key + std::to_string(values[s.id]);
    human += sep + key + "\"" + JsonEscape(control::HumanValue(s, values[s.id])) + "\"";
    source += sep + key + "\"" + std::string(source_of(s)) + "\"";
  }
  return "\"effective\":{" + effective + "},\"human\":{" + human + "},\"source\":{" + source + "}";
}

bool IsSeparator(char c) {
  return c == ',' || c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '=';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Applies a PUT/PATCH body through `update` and answers like GET (`render`).
template <typename Update, typename Render>
HttpResponse Change(const HttpRequest& req, bool for_cache, Update update, Render render) {
  auto parsed = ParseLimitsBody(req.body, for_cache);
  if (!parsed.ok()) return ErrorResponse(400, parsed.status().message());
  if (Status st = update(*parsed); !st.ok()) return ErrorResponse(HttpStatusOf(st), st.message());
  return render();
}

}  // namespace

StatusOr<LimitOverrides> ParseLimitsBody(std::string_view body, bool for_cache) {
  body = Trim(body);
  if (body.empty()) {
    return Status(Code::kInvalidArgument,
                  "empty body: send limits as a JSON object {\"requests_per_second\": 500} or as "
                  "name=value pairs");
  }
  if (body.front() != '{') return control::ParseLimits(body, for_cache);
  auto members = ParseFlatJsonObject(body);
  if (!members.ok()) return members.status();
  LimitOverrides out;
  for (auto& [name, value] : *members) {
    if (value == "null") value = "default";
    for (char c : name) {
      if (IsSeparator(c)) {
        return Status(Code::kInvalidArgument, "unknown limit '" + name + "'");
      }
    }
    for (char c : value) {
      if (IsSeparator(c)) {
        return Status(Code::kInvalidArgument, "bad value '" + value + "' for " + name);
      }
    }
    if (value.empty()) {
      return Status(Code::kInvalidArgument, "bad value '' for " + name);
    }
    auto one = control::ParseLimits(name + "=" + value, for_cache);
    if (!one.ok()) return one.status();
    for (size_t i = 0; i < control::kNumLimits; ++i) {
      if (one->v[i]) out.v[i] = one->v[i];  // not Merge: kUnset must travel to the registry
    }
  }
  return out;
}

HttpResponse HandleLimitsTable(const control::CacheRegistry& reg, const HttpRequest& req) {
  if (req.method != "GET") return ErrorResponse(405, "use GET /v1/limits");
  const Limits server = reg.server_limits();
  std::string body = "{\"limits\":[";
  bool first = true;
  for (const LimitSpec& s : LimitSpecs()) {
    if (!first) body += ",";
    first = false;
    body += "{\"name\":\"" + std::string(s.name) + "\",\"unit\":\"" +
            std::string(UnitName(s.unit)) + "\",\"default\":" + std::to_string(server[s.id]) +
            ",\"default_human\":\"" + JsonEscape(control::HumanValue(s, server[s.id])) +
            "\",\"builtin\":" + std::to_string(s.default_value) +
            ",\"tenant_only\":" + (s.tenant_only ? "true" : "false") + ",\"help\":\"" +
            JsonEscape(s.help) + "\"}";
  }
  body += "],\"server\":{";
  first = true;
  for (const LimitSpec& s : LimitSpecs()) {
    if (!first) body += ",";
    first = false;
    body += Key(s.name);
    body += std::to_string(server[s.id]);
  }
  return JsonResponse(200, body + "}}");
}

HttpResponse HandleTenantLimits(control::CacheRegistry& reg, const HttpRequest& req,
                                const std::string& tenant) {
  const auto t = reg.FindTenant(tenant);
  if (!t) return ErrorResponse(404, "tenant not found");
  const uint32_t id = t->id;
  auto render = [&reg, id, tenant] {
    const LimitOverrides o = reg.TenantLimits(id);
    const Limits values = control::Resolve(reg.server_limits(), o, {});
    return JsonResponse(
        200,
        "{\"tenant\":\"" + JsonEscape(tenant) + "\",\"overrides\":" + OverridesJson(o) + "," +
            ValuesJson(values, [&o](const LimitSpec& s) { return o[s.id] ? "tenant" : "server"; }) +
            "}");
  };
  if (req.method == "GET") return render();
  if (req.method == "PUT" || req.method == "PATCH") {
    return Change(
        req, /*for_cache=*/false,
        [&reg, id](const LimitOverrides& u) { return reg.UpdateTenantLimits(id, u); }, render);
  }
  return ErrorResponse(405, "use GET, or PUT/PATCH with the limits to change");
}

HttpResponse HandleCacheLimits(control::CacheRegistry& reg, const HttpRequest& req,
                               const std::string& tenant, const std::string& cache) {
  const auto t = reg.FindTenant(tenant);
  if (!t) return ErrorResponse(404, "tenant not found");
  const uint32_t tenant_id = t->id;
  auto render = [&reg, tenant_id, tenant, cache] {
    const auto c = reg.Find(tenant_id, cache);
    if (!c) return ErrorResponse(404, "cache not found");
    const LimitOverrides mine = reg.CacheLimits(c->id);
    const LimitOverrides theirs = reg.TenantLimits(tenant_id);
    const Limits values = reg.EffectiveLimits(tenant_id, c->id);
    return JsonResponse(
        200, "{\"cache\":\"" + JsonEscape(cache) + "\",\"tenant\":\"" + JsonEscape(tenant) +
                 "\",\"overrides\":" + OverridesJson(mine) + "," +
                 ValuesJson(values,
                            [&](const LimitSpec& s) {
                              return mine[s.id] ? "cache" : theirs[s.id] ? "tenant" : "server";
                            }) +
                 "}");
  };
  if (!reg.Find(tenant_id, cache)) return ErrorResponse(404, "cache not found");
  if (req.method == "GET") return render();
  if (req.method == "PUT" || req.method == "PATCH") {
    return Change(
        req, /*for_cache=*/true,
        [&reg, tenant_id, &cache](const LimitOverrides& u) {
          return reg.UpdateCacheLimits(tenant_id, cache, u);
        },
        render);
  }
  return ErrorResponse(405, "use GET, or PUT/PATCH with the limits to change");
}

}  // namespace cellar::server
