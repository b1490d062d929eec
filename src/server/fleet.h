// Tenancy across a fleet (issue 18 step 7; docs/cluster.md, "Limits across the fleet"): the
// per-second limits of a cache (and of a tenant) hold for the fleet as a whole, and the admin
// API's per-cache stats and usage are the fleet's sums.
//
// Mechanism. Once a second each node puts `quota/<node id>` in etcd, under its membership lease
// (so a node that dies or leaves takes its record along), holding a FleetRecord:
//   - its demand: for each cache with a per-second limit (its own or its tenant's) and traffic,
//     the requests it was asked for (admitted and refused) over the last second;
//   - its cumulative per-cache counters (what GET /v1/stats shows for this node alone);
//   - its usage rows (server/usage.h) of the minute in progress and the one before;
//   - its load (FleetLoad), which `cellar cluster status` and GET /v1/cluster show per member.
// It writes only when the record changed (an idle node writes nothing) or when it holds a new
// lease. Every node reports at the same instants (whole seconds of the wall clock), watches the
// prefix (a metadata::View) and, 300 ms after each report, gives each cache and tenant the
// members' count and the demand here and in total (Tenancy::ApplyFleet): each
// rate bucket then admits FleetShare(limit, own, total, nodes), the shares adding up to the
// limit. Agreement is etcd's; nothing else passes between nodes. Admission itself is unchanged
// and lock-free (only the buckets' rates move).
//
// Threads: one thread of its own runs the second's work (it waits for etcd, so it is kept off
// the loops); the local counters are gathered on loop 0 (`gather`). The accessors for the admin
// API may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "common/status.h"
#include "gateway/stats.h"
#include "server/usage.h"

namespace cellar::cluster {
class Membership;
}
namespace cellar::metadata {
class Store;
class View;
}  // namespace cellar::metadata
namespace cellar::gateway {
class Tenancy;
}

namespace cellar::server {

inline constexpr std::string_view kFleetPrefix = "quota/";

// What one node says about itself in quota/<node id> (JSON, readable with etcdctl):
//   {"d":{"<cache id>":requests per second,...},
//    "s":[[cache id, ops, items, bytes, hits, misses, evictions, expirations, requests,
//          bytes_in, bytes_out, latency_sum_us, latency_count, [refusals...], [latency...]],...],
//    "u":[[minute, "tenant", "cache", requests, bytes_in, bytes_out, throttled],...],
//    "l":{"rps":admitted requests per second,"mem":bytes used,"items":items}}
// ("l" is absent in a record of a node that has not gathered its counters yet.)

// A node's load as of its last report.
struct FleetLoad {
  // Requests its front-ends admitted over the last period (every cache; refused ones and calls
  // forwarded here by other nodes not counted), per second.
  uint64_t rps = 0;
  uint64_t memory_used = 0;  // bytes of items and key index in its store (StoreTotals)
  uint64_t items = 0;        // items in its store

  bool operator==(const FleetLoad&) const = default;
};

struct FleetRecord {
  std::map<uint32_t, uint64_t> demand;     // cache id -> requests per second
  std::vector<gateway::CacheStats> stats;  // counters by id (names empty); non-zero ones only
  std::vector<UsageRecord> usage;          // this node's own rows
  std::optional<FleetLoad> load;           // kept even when the stats and usage are dropped

  std::string ToJson() const;
  static std::optional<FleetRecord> FromJson(std::string_view json);
};

// What the gather step reports about this node (on loop 0).
struct FleetLocal {
  gateway::Stats stats;
  std::vector<UsageRecord> usage;  // the minute in progress and the one before
};

struct FleetOptions {
  std::string self;  // this node's id
  std::chrono::milliseconds period{1000};
  // Runs `done` with this node's counters; called on the fleet's thread, answers anywhere
  // (the server posts it to loop 0). An answer later than 2 s is not waited for.
  std::function<void(std::function<void(FleetLocal)>)> gather;
};

class Fleet {
 public:
  Fleet(metadata::Store& store, cluster::Membership& membership, gateway::Tenancy& tenancy,
        FleetOptions options);
  ~Fleet();  // stops and joins the thread
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Starts watching quota/ (bounded wait for the first answer) and the thread.
  Status Start();
  // Asks the thread to stop (does not wait: may run on loop 0, which `gather` needs).
  void Stop();

  // Adds the other nodes' last reported counters to st.caches (by cache id; caches this node
  // does not know are left out). Returns how many nodes the sums cover (this one included).
  size_t AddPeerStats(gateway::Stats& st) const;
  // The other nodes' usage rows with minute in [from, to), of one tenant and cache if given,
  // as each node last reported them; kept since this node started (its own are in its
  // UsageLog). A row of the minute in progress (now_ms's) is marked partial.
  std::vector<UsageRecord> PeerUsage(const std::optional<std::string>& tenant,
                                     const std::optional<std::string>& cache, int64_t from,
                                     int64_t to, int64_t now_ms, int64_t minute_seconds) const;
  // Every node's last known load, by node id: this node's as of its last gather, the others'
  // as of their last record (a node whose record has none, or is gone, is left out).
  std::map<std::string, FleetLoad> Loads() const;

 private:
  // A record of quota/ changed (value null: deleted); under view_->mutex().
  void OnRecord(const std::string& key, const std::string* value);
  void Run();
  // Writes this node's record (when it changed); returns its demand, by cache id.
  std::map<uint32_t, uint64_t> Report(std::chrono::steady_clock::time_point now);
  // Sets the tenancy's shares from this node's demand and the others' last records.
  void Apply(const std::map<uint32_t, uint64_t>& own);

  metadata::Store& store_;
  cluster::Membership& membership_;
  gateway::Tenancy& tenancy_;
  FleetOptions options_;
  std::unique_ptr<metadata::View> view_;
  // Under view_->mutex(): every other node's last record, and their usage rows seen so far.
  std::map<std::string, FleetRecord> peers_;
  // (minute, node, tenant, cache) -> the node's row, as it last reported it.
  std::map<std::tuple<int64_t, std::string, std::string, std::string>, UsageCounters> usage_;
  int64_t newest_minute_ = 0;
  std::optional<FleetLoad> own_load_;  // under view_->mutex(); set by the thread

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;

  // ---- the thread's own ----
  std::map<uint32_t, uint64_t> last_requests_;
  // Admitted requests (all caches) at the last gather that answered, and when.
  uint64_t last_admitted_ = 0;
  std::chrono::steady_clock::time_point last_admitted_at_{};
  std::chrono::steady_clock::time_point last_tick_{};
  std::string last_json_;
  int64_t last_lease_ = 0;
  bool put_failing_ = false;
  FleetRecord last_local_;  // stats and usage of the last gather that answered
};

}  // namespace cellar::server
