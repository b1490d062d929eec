#include "cli/observe.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include <CLI/CLI.hpp>

#include "control/limits.h"

namespace cellar::cli {
namespace {

std::string LimitsPath(const std::string& tenant, const std::string& cache) {
  if (cache.empty()) return "/v1/tenants/" + EncodePathSegment(tenant) + "/limits";
  return "/v1/caches/" + EncodePathSegment(cache) + "/limits?tenant=" + EncodePathSegment(tenant);
}

void PrintLimits(const Json& doc, const std::string& tenant, const std::string& cache) {
  const Json* effective = doc.Find("effective");
  const Json* human = doc.Find("human");
  const Json* source = doc.Find("source");
  if (effective == nullptr || effective->type != Json::Type::kObject) {
    throw CliError("the admin API's answer has no \"effective\" limits");
  }
  if (cache.empty()) {
    fmt::print("limits of tenant '{}' (source: tenant override, else server default)\n", tenant);
  } else {
    fmt::print("limits of cache '{}' of tenant '{}' (source: cache, tenant or server)\n", cache,
               tenant);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, value] : effective->members) {
    const Json* h = human ? human->Find(name) : nullptr;
    const Json* s = source ? source->Find(name) : nullptr;
    rows.push_back({name, h ? h->text : value.text, s ? s->text : "-"});
  }
  PrintTable({"LIMIT", "VALUE", "SOURCE"}, rows);
}

std::string Rate(double per_second) {
  if (per_second < 1000) return fmt::format("{:.1f}", per_second);
  return fmt::format("{:.0f}", per_second);
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// One cache's cumulative counters, from GET /v1/stats.
struct CacheSample {
  uint64_t requests = 0, hits = 0, misses = 0, bytes_in = 0, bytes_out = 0, items = 0, bytes = 0;
  std::map<std::string, uint64_t> throttled;
  std::vector<uint64_t> latency;
};

struct StatsSample {
  int64_t time_ms = 0;
  uint64_t nodes = 0;  // a fleet: how many nodes the counters sum (0: a single node)
  std::vector<uint64_t> bounds;
  std::map<std::pair<std::string, std::string>, CacheSample> caches;  // (tenant, cache)
};

StatsSample FetchStats(const Target& t, const StatsOptions& o) {
  std::string query;
  if (!o.tenant.empty()) query += "tenant=" + EncodePathSegment(o.tenant);
  if (!o.cache.empty()) {
    query += std::string(query.empty() ? "" : "&") + "cache=" + EncodePathSegment(o.cache);
  }
  if (o.local) query += std::string(query.empty() ? "" : "&") + "node=local";
  // A fresh connection each time: an interval may outlast the server's idle timeout.
  AdminClient client(t.host, t.admin_port, t.key);
  Json doc =
      ParseBody(CheckedRequest(client, "GET", "/v1/stats" + (query.empty() ? "" : "?" + query)));
  StatsSample s;
  s.time_ms = static_cast<int64_t>(Uint(doc.Find("time_ms")));
  s.nodes = Uint(doc.Find("nodes"));
  if (const Json* b = doc.Find("latency_bounds_us"); b && b->type == Json::Type::kArray) {
    for (const Json& x : b->items) s.bounds.push_back(x.AsUint().value_or(0));
  }
  const Json* caches = doc.Find("caches");
  if (caches == nullptr || caches->type != Json::Type::kArray) {
    throw CliError("the admin API's stats have no \"caches\" array");
  }
  for (const Json& c : caches->items) {
    CacheSample cs;
    cs.requests = Uint(c.Find("requests"));
    cs.hits = Uint(c.Find("hits"));
    cs.misses = Uint(c.Find("misses"));
    cs.bytes_in = Uint(c.Find("bytes_in"));
    cs.bytes_out = Uint(c.Find("bytes_out"));
    cs.items = Uint(c.Find("items"));
    cs.bytes = Uint(c.Find("bytes"));
    if (const Json* th = c.Find("throttled"); th && th->type == Json::Type::kObject) {
      for (const auto& [reason, n] : th->members) cs.throttled[reason] = n.AsUint().value_or(0);
    }
    if (const Json* l = c.Find("latency"); l && l->type == Json::Type::kArray) {
      for (const Json& x : l->items) cs.latency.push_back(x.AsUint().value_or(0));
    }
    s.caches[{Text(c.Find("tenant")), Text(c.Find("cache"))}] = std::move(cs);
  }
  return s;
}

uint64_t Delta(uint64_t now, uint64_t before) { return now >= before ? now - before : now; }

std::string Quantile(const std::vector<uint64_t>& bounds, const std::vector<uint64_t>& counts,
                     double q) {
  const double us = HistogramQuantile(bounds, counts, q);
  if (us < 0) return "-";
  if (!bounds.empty() && us > static_cast<double>(bounds.back())) {
    return ">" + FormatMicros(static_cast<double>(bounds.back()));
  }
  return FormatMicros(us);
}

void PrintStats(const StatsSample& before, const StatsSample& now) {
  const double dt = std::max(1e-3, static_cast<double>(now.time_ms - before.time_ms) / 1000.0);
  struct Row {
    double ops;
    std::vector<std::string> cells;
  };
  std::vector<Row> rows;
  double total_ops = 0, total_in = 0, total_out = 0;
  static const CacheSample kNone;
  for (const auto& [key, c] : now.caches) {
    auto it = before.caches.find(key);
    const CacheSample& p = it == before.caches.end() ? kNone : it->second;
    const double ops = static_cast<double>(Delta(c.requests, p.requests)) / dt;
    const uint64_t hits = Delta(c.hits, p.hits), misses = Delta(c.misses, p.misses);
    const double in = static_cast<double>(Delta(c.bytes_in, p.bytes_in)) / dt;
    const double out = static_cast<double>(Delta(c.bytes_out, p.bytes_out)) / dt;
    total_ops += ops;
    total_in += in;
    total_out += out;
    std::vector<uint64_t> lat(c.latency.size());
    for (size_t i = 0; i < lat.size(); ++i) {
      lat[i] = Delta(c.latency[i], i < p.latency.size() ? p.latency[i] : 0);
    }
    std::string throttled;
    for (const auto& [reason, n] : c.throttled) {
      auto pt = p.throttled.find(reason);
      const uint64_t d = Delta(n, pt == p.throttled.end() ? 0 : pt->second);
      if (d == 0) continue;
      if (!throttled.empty()) throttled += ", ";
      throttled += reason + " " + Rate(static_cast<double>(d) / dt);
    }
    rows.push_back(
        {ops,
         {key.first, key.second, Rate(ops),
          hits + misses == 0 ? "-"
                             : fmt::format("{:.1f}%", 100.0 * static_cast<double>(hits) /
                                                          static_cast<double>(hits + misses)),
          FormatBytes(in), FormatBytes(out), std::to_string(c.items),
          FormatBytes(static_cast<double>(c.bytes)), Quantile(now.bounds, lat, 0.5),
          Quantile(now.bounds, lat, 0.99), throttled.empty() ? "-" : throttled}});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.ops != b.ops) return a.ops > b.ops;
    return a.cells < b.cells;
  });
  fmt::print("cellar stats  {} UTC  over {:.1f} s  {}caches {}  ops/s {}  in/s {}  out/s {}\n",
             UtcNow(), dt, now.nodes > 0 ? fmt::format("nodes {}  ", now.nodes) : "", rows.size(),
             Rate(total_ops), FormatBytes(total_in), FormatBytes(total_out));
  std::vector<std::vector<std::string>> cells;
  for (Row& r : rows) cells.push_back(std::move(r.cells));
  PrintTable({"TENANT", "CACHE", "OPS/S", "HIT%", "IN/S", "OUT/S", "ITEMS", "MEMORY", "P50", "P99",
              "THROTTLED/S"},
             cells, {false, false, true, true, true, true, true, true, true, true, false});
}

}  // namespace

int LimitsShow(const Target& t, const std::string& tenant, const std::string& cache) {
  AdminClient client(t.host, t.admin_port, t.key);
  PrintLimits(ParseBody(CheckedRequest(client, "GET", LimitsPath(tenant, cache))), tenant, cache);
  return 0;
}

int LimitsSet(const Target& t, const std::string& tenant, const std::string& cache,
              const std::vector<std::string>& pairs) {
  if (pairs.empty()) throw CliError("give at least one name=value (see `cellar limits --help`)");
  std::string body;
  for (const std::string& p : pairs) {
    if (p.find('=') == std::string::npos) {
      throw CliError("'" + p + "' is not name=value (see `cellar limits --help`)");
    }
    body += (body.empty() ? "" : ",") + p;
  }
  AdminClient client(t.host, t.admin_port, t.key);
  Json doc =
      ParseBody(CheckedRequest(client, "PATCH", LimitsPath(tenant, cache), body, "text/plain"));
  PrintLimits(doc, tenant, cache);
  return 0;
}

int LimitsDefaults(const Target& t) {
  AdminClient client(t.host, t.admin_port, t.key);
  Json doc = ParseBody(CheckedRequest(client, "GET", "/v1/limits"));
  const Json* limits = doc.Find("limits");
  if (limits == nullptr || limits->type != Json::Type::kArray) {
    throw CliError("the admin API's answer has no \"limits\" array");
  }
  std::vector<std::vector<std::string>> rows;
  for (const Json& l : limits->items) {
    const Json* only = l.Find("tenant_only");
    rows.push_back({Text(l.Find("name")), Text(l.Find("default_human")),
                    only && only->boolean ? "tenant" : "cache", Text(l.Find("help"))});
  }
  PrintTable({"LIMIT", "DEFAULT", "SET ON", "MEANING"}, rows);
  return 0;
}

std::string LimitsHelp() {
  std::string out =
      "Limits (a cache's value wins over its tenant's, which wins over the server "
      "default):\n";
  for (const control::LimitSpec& s : control::LimitSpecs()) {
    out += fmt::format("  {:<30} {}{}\n", s.name, s.help, s.tenant_only ? " (tenant only)" : "");
  }
  out +=
      "Values: numbers; sizes for bytes (64kib, 10mb, 1gib); durations for seconds (30s, 15m,\n"
      "24h, 7d); 'unlimited' (0); 'default' removes the override.\n"
      "Examples:\n"
      "  cellar limits set --tenant acme requests_per_second=500 max_ttl_seconds=1d\n"
      "  cellar limits set --tenant acme --cache sessions max_item_bytes=64kib\n"
      "  cellar limits show --tenant acme --cache sessions\n";
  return out;
}

int Stats(const Target& t, const StatsOptions& o) {
  const bool tty = isatty(STDOUT_FILENO) != 0;
  StatsSample before = FetchStats(t, o);
  for (uint64_t i = 0; o.count == 0 || i < o.count; ++i) {
    std::this_thread::sleep_for(std::chrono::duration<double>(o.interval_s));
    StatsSample now = FetchStats(t, o);
    if (tty && o.count != 1) {
      fmt::print("\033[H\033[2J");  // redraw in place, like top
    } else if (i > 0) {
      fmt::print("\n");
    }
    PrintStats(before, now);
    std::fflush(stdout);
    before = std::move(now);
  }
  return 0;
}

int Usage(const Target& t, const UsageOptions& o) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::string query =
      "from=" + std::to_string(now - static_cast<int64_t>(o.minutes) * 60 - (now % 60));
  if (!o.tenant.empty()) query += "&tenant=" + EncodePathSegment(o.tenant);
  if (!o.cache.empty()) query += "&cache=" + EncodePathSegment(o.cache);
  if (o.local) query += "&node=local";
  AdminClient client(t.host, t.admin_port, t.key);
  AdminResponse res = CheckedRequest(client, "GET", "/v1/usage?" + query);
  if (o.json) {
    fmt::print("{}\n", Trim(res.body));
    return 0;
  }
  Json doc = ParseBody(res);
  const Json* usage = doc.Find("usage");
  if (usage == nullptr || usage->type != Json::Type::kArray) {
    throw CliError("the admin API's answer has no \"usage\" array");
  }
  const bool seconds = Uint(doc.Find("minute_seconds")) % 60 != 0;
  std::vector<std::vector<std::string>> rows;
  bool any_partial = false;
  for (const Json& r : usage->items) {
    const Json* partial = r.Find("partial");
    const bool p = partial && partial->boolean;
    any_partial = any_partial || p;
    rows.push_back(
        {FormatUnixMinute(static_cast<int64_t>(Uint(r.Find("minute"))), seconds) + (p ? "*" : ""),
         Text(r.Find("tenant")), Text(r.Find("cache")), Text(r.Find("requests")),
         Text(r.Find("bytes_in")), Text(r.Find("bytes_out")), Text(r.Find("throttled"))});
  }
  PrintTable({"MINUTE (UTC)", "TENANT", "CACHE", "REQUESTS", "BYTES IN", "BYTES OUT", "THROTTLED"},
             rows, {false, false, false, true, true, true, true});
  if (any_partial) fmt::print("* the minute in progress\n");
  return 0;
}

double HistogramQuantile(const std::vector<uint64_t>& bounds, const std::vector<uint64_t>& counts,
                         double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0 || bounds.empty()) return -1;
  const double target = q * static_cast<double>(total);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    const uint64_t below = cumulative;
    cumulative += counts[i];
    if (static_cast<double>(cumulative) < target) continue;
    if (i >= bounds.size()) return static_cast<double>(bounds.back()) + 1;  // the open bucket
    const double lo = i == 0 ? 0 : static_cast<double>(bounds[i - 1]);
    const double hi = static_cast<double>(bounds[i]);
    const double frac = (target - static_cast<double>(below)) / static_cast<double>(counts[i]);
    return lo + (hi - lo) * std::clamp(frac, 0.0, 1.0);
  }
  return static_cast<double>(bounds.back()) + 1;
}

std::string FormatBytes(double bytes) {
  if (bytes < 1024) return fmt::format("{:.0f} B", bytes);
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = bytes / 1024;
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string FormatMicros(double us) {
  if (us < 1000) return fmt::format("{:.0f}us", us);
  if (us < 1e6) return fmt::format("{:.1f}ms", us / 1000);
  return fmt::format("{:.2f}s", us / 1e6);
}

std::string FormatUnixMinute(int64_t unix_s, bool with_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, with_seconds ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%M", &tm);
  return buf;
}

namespace {

class ObserveGroup final : public CommandGroup {
 public:
  void Register(CLI::App& app) override {
    limits_ = app.add_subcommand("limits", "show or set a tenant's or a cache's limits");
    limits_->require_subcommand(1);
    limits_show_ =
        limits_->add_subcommand("show", "each limit in force, its value and where it is set");
    limits_set_ = limits_->add_subcommand(
        "set", "set limits: name=value ... ('default' removes an override); prints the result");
    for (CLI::App* sub : {limits_show_, limits_set_}) {
      sub->add_option("--tenant", limits_tenant_, "the tenant")->capture_default_str();
      sub->add_option("--cache", limits_cache_,
                      "a cache of the tenant (default: the tenant itself)");
    }
    limits_set_->add_option("LIMIT", limit_pairs_, "name=value pairs, e.g. requests_per_second=500")
        ->required();
    limits_defaults_ =
        limits_->add_subcommand("defaults", "every limit with the server's default and meaning");
    limits_->footer(LimitsHelp());
    limits_set_->footer(LimitsHelp());

    stats_ = app.add_subcommand(
        "stats", "live per-cache view: ops/s, hit ratio, bytes in/out per second, items, memory, "
                 "p50/p99 latency, throttles");
    stats_->add_option("--tenant", stats_opts_.tenant, "only this tenant's caches");
    stats_->add_option("--cache", stats_opts_.cache, "only this cache (of --tenant, else default)");
    stats_->add_option("--interval", stats_opts_.interval_s, "seconds between refreshes")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 3600.0).description(""))
        ->type_name("SECONDS");
    stats_->add_option("--count", stats_opts_.count,
                       "refreshes before exiting (default: until Ctrl-C)");
    stats_->add_flag("--local", stats_opts_.local,
                     "on a fleet, this node's counters only (default: the sum over the nodes)");

    usage_ = app.add_subcommand(
        "usage", "requests, bytes in and out, throttled requests per tenant, cache and minute");
    usage_->add_option("--tenant", usage_opts_.tenant, "only this tenant");
    usage_->add_option("--cache", usage_opts_.cache, "only caches of this name");
    usage_->add_option("--minutes", usage_opts_.minutes, "how far back")->capture_default_str();
    usage_->add_flag("--json", usage_opts_.json, "print the admin API's JSON");
    usage_->add_flag("--local", usage_opts_.local,
                     "on a fleet, this node's usage only (default: the sum over the nodes)");
  }
  bool Parsed() const override {
    return limits_->parsed() || stats_->parsed() || usage_->parsed();
  }
  bool UsesAdmin() const override { return true; }
  std::optional<int> Run(const Target& t) override {
    if (limits_show_->parsed()) return LimitsShow(t, limits_tenant_, limits_cache_);
    if (limits_set_->parsed()) return LimitsSet(t, limits_tenant_, limits_cache_, limit_pairs_);
    if (limits_defaults_->parsed()) return LimitsDefaults(t);
    if (stats_->parsed()) return Stats(t, stats_opts_);
    if (usage_->parsed()) return Usage(t, usage_opts_);
    return std::nullopt;
  }

 private:
  CLI::App *limits_ = nullptr, *limits_show_ = nullptr, *limits_set_ = nullptr,
           *limits_defaults_ = nullptr, *stats_ = nullptr, *usage_ = nullptr;
  std::string limits_tenant_ = "default", limits_cache_;
  std::vector<std::string> limit_pairs_;
  StatsOptions stats_opts_;
  UsageOptions usage_opts_;
};

}  // namespace

std::unique_ptr<CommandGroup> ObserveCommands() { return std::make_unique<ObserveGroup>(); }

}  // namespace cellar::cli
