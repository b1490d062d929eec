// Server commands: INFO, DBSIZE, FLUSHDB.
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "common/glob.h"
#include "frontend/resp/commands.h"
#include "frontend/net/metrics.h"
#include "frontend/resp/metrics.h"
#include "gateway/stats.h"

namespace cellar::resp {
namespace {

using gateway::Call;

void PrepareDbSize(CommandContext& ctx) { ctx.AddPerShard(api::Op::kCount); }

void PrepareFlushDb(CommandContext& ctx) {
  if (ctx.args.size() > 2 ||
      (ctx.args.size() == 2 && !EqualsIgnoreCase(ctx.args[1], "async") &&
       !EqualsIgnoreCase(ctx.args[1], "sync"))) {
    return WriteError(ctx.local, RespError::kSyntax);
  }
  ctx.AddPerShard(api::Op::kFlushCache);
}

void PrepareInfo(CommandContext& ctx) { ctx.AddPerShard(api::Op::kStats); }

std::string Human(uint64_t bytes) {
  const char* units[] = {"B", "K", "M", "G", "T"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof(buf), u == 0 ? "%.0f%s" : "%.2f%s", v, units[u]);
  return buf;
}

uint64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

void FinishInfo(CommandContext& ctx, std::span<Call> calls, ReplyWriter& w) {
  int64_t sum[api::kStatCount] = {};
  for (const Call& c : calls) {
    if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
    for (size_t i = 0; i < api::kStatCount && i < c.reply.numbers.size(); ++i) {
      sum[i] += c.reply.numbers[i];
    }
  }
  // The declared metrics (the RESP front-end's and the store's), read as INFO's Redis fields.
  const auto at = [&](api::StatIndex i) { return static_cast<uint64_t>(std::max<int64_t>(0, sum[i])); };
  gateway::StoreTotals store;
  store.items = at(api::kStatItems);
  store.used_bytes = at(api::kStatUsedBytes);
  store.index_bytes = at(api::kStatIndexBytes);
  store.memory_limit = at(api::kStatMemoryLimit);
  store.hits = at(api::kStatHits);
  store.misses = at(api::kStatMisses);
  store.evictions = at(api::kStatEvictions);
  store.expirations = at(api::kStatExpirations);
  const metrics::Source sources[] = {RespMetrics(ctx.server.threads), gateway::StoreMetrics(store)};
  const metrics::Snapshot snap(sources);
  constexpr std::string_view kResp = "protocol=\"resp\"";
  auto want = [&](std::string_view section) {
    if (ctx.args.size() == 1) return true;
    for (size_t i = 1; i < ctx.args.size(); ++i) {
      if (EqualsIgnoreCase(ctx.args[i], section) || EqualsIgnoreCase(ctx.args[i], "all") ||
          EqualsIgnoreCase(ctx.args[i], "everything") || EqualsIgnoreCase(ctx.args[i], "default")) {
        return true;
      }
    }
    return false;
  };
  // The process's figures (other tenants' memory, commands, hits, connections) are the
  // operator's (the admin key); a tenant's token sees its cache's own.
  const bool whole_process = ctx.conn.principal.key_id.empty();
  std::string s;
  auto line = [&](std::string_view k, const std::string& v) {
    s.append(k);
    s.push_back(':');
    s.append(v);
    s.append("\r\n");
  };
  if (want("server")) {
    s += "# Server\r\n";
    line("redis_version", "7.0.0");
    line("cellar_version", CELLAR_VERSION);
    line("redis_mode", "standalone");
    line("os", "Linux");
    if (whole_process) line("process_id", std::to_string(getpid()));
    line("tcp_port", std::to_string(ctx.server.resp_port));
    line("uptime_in_seconds", std::to_string((ctx.now_ms - ctx.server.start_ms) / 1000));
    line("event_loops", std::to_string(ctx.server.threads));
    s += "\r\n";
  }
  if (want("clients") && whole_process) {
    s += "# Clients\r\n";
    line("connected_clients", std::to_string(snap.Value(net::kConnections, kResp)));
    s += "\r\n";
  }
  if (want("memory")) {
    s += "# Memory\r\n";
    const uint64_t cache_bytes = at(api::kStatCacheBytes);
    if (whole_process) {
      line("used_memory", std::to_string(snap.Value(gateway::kMemoryUsed)));
      line("used_memory_human", Human(snap.Value(gateway::kMemoryUsed)));
      line("used_memory_rss", std::to_string(RssBytes()));
      line("used_memory_index", std::to_string(snap.Value(gateway::kMemoryIndex)));
      line("maxmemory", std::to_string(snap.Value(gateway::kMemoryLimit)));
      line("maxmemory_human", Human(snap.Value(gateway::kMemoryLimit)));
    } else {
      line("used_memory", std::to_string(cache_bytes));
      line("used_memory_human", Human(cache_bytes));
    }
    line("maxmemory_policy", "allkeys-lru");
    line("cache_used_memory", std::to_string(cache_bytes));
    s += "\r\n";
  }
  if (want("stats") && whole_process) {
    s += "# Stats\r\n";
    line("total_connections_received", std::to_string(snap.Value(net::kConnectionsTotal, kResp)));
    line("total_commands_processed", std::to_string(snap.Total(kCommands)));
    line("keyspace_hits", std::to_string(snap.Value(gateway::kHits)));
    line("keyspace_misses", std::to_string(snap.Value(gateway::kMisses)));
    line("evicted_keys", std::to_string(snap.Value(gateway::kEvictions)));
    line("expired_keys", std::to_string(snap.Value(gateway::kExpirations)));
    s += "\r\n";
  }
  if (want("keyspace")) {
    s += "# Keyspace\r\n";
    if (sum[api::kStatCacheItems] > 0) {
      // avg_ttl is not tracked; Redis itself reports only an estimate.
      line("db0", "keys=" + std::to_string(sum[api::kStatCacheItems]) +
                      ",expires=" + std::to_string(sum[api::kStatCacheVolatile]) + ",avg_ttl=0");
    }
  }
  w.Verbatim(s);
}

// CONFIG GET answers the few parameters clients and tools ask about (redis-benchmark,
// queue libraries checking maxmemory-policy); Cellar is configured by `cellar serve` flags.
void PrepareConfig(CommandContext& ctx) {
  const auto& a = ctx.args;
  if (EqualsIgnoreCase(a[1], "get") && a.size() >= 3) {
    const std::pair<std::string_view, std::string> params[] = {
        {"maxmemory-policy", "allkeys-lru"},
        {"save", ""},
        {"appendonly", "no"},
        {"databases", "1"},
        {"proto-max-bulk-len", std::to_string(ctx.server.max_item_bytes)},
    };
    std::vector<const std::pair<std::string_view, std::string>*> hits;
    for (const auto& p : params) {
      for (size_t i = 2; i < a.size(); ++i) {
        if (GlobMatch(Lower(a[i]), p.first)) {
          hits.push_back(&p);
          break;
        }
      }
    }
    ctx.local.Map(hits.size());
    for (const auto* p : hits) {
      ctx.local.Bulk(p->first);
      ctx.local.Bulk(p->second);
    }
    return;
  }
  if (EqualsIgnoreCase(a[1], "set") || EqualsIgnoreCase(a[1], "resetstat") ||
      EqualsIgnoreCase(a[1], "rewrite")) {
    return WriteError(ctx.local, RespError::kConfigUnsupported, Lower(a[1]));
  }
  WriteError(ctx.local, RespError::kUnknownSubcommand, "config|" + Lower(a[1]));
}

}  // namespace

void RegisterServerFamily(std::vector<CommandSpec>& t) {
  t.push_back({"dbsize", 1, kReadOnly | kFast, PrepareDbSize, FinishSum, 0, 0, 0, "Returns the number of keys in the cache."});
  t.push_back({"flushdb", -1, kWrite, PrepareFlushDb, FinishOk, 0, 0, 0, "Removes every key of the cache."});
  t.push_back({"config", -2, kReadOnly | kConnection, PrepareConfig, nullptr, 0, 0, 0, "CONFIG GET of a few parameters; settings come from flags."});
  t.push_back({"info", -1, kReadOnly, PrepareInfo, FinishInfo, 0, 0, 0, "Server, clients, memory, stats and keyspace information."});
}

}  // namespace cellar::resp
