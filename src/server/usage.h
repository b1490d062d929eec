// Usage accounting a platform team can bill from: per tenant and cache, the requests, bytes in,
// bytes out and throttled requests of every UTC minute.
//
// UsageLog is the bookkeeping, with no clock or I/O loop of its own: Record(now, counters) is
// given every cache's cumulative counters (about once a second) and attributes what grew since
// the previous call to the minute in progress. When a minute is over, its non-zero rows are kept
// in memory (a bounded window, for GET /v1/usage) and appended to DATA_DIR/usage.tsv, one line
// per (minute, tenant, cache):
//   minute_start_unix \t tenant \t cache \t requests \t bytes_in \t bytes_out \t throttled
// The file is only appended to (an operator rotates it); a minute cut short by a shutdown is
// written then, so after a restart the same minute may have a second line: sum them.
// At start the file's recent lines are read back into the window.
//
// UsageSampler drives a UsageLog from the live Tenancy on a 1 s timer of the admin loop.
//
// Threads: both live on one loop (loop 0, the admin API's); neither takes a lock.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cellar::gateway {
class Tenancy;
}

namespace cellar::server {

struct UsageCounters {
  uint64_t requests = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t throttled = 0;  // requests refused by a limit (all reasons)

  bool empty() const { return requests == 0 && bytes_in == 0 && bytes_out == 0 && throttled == 0; }
  void Add(const UsageCounters& o) {
    requests += o.requests;
    bytes_in += o.bytes_in;
    bytes_out += o.bytes_out;
    throttled += o.throttled;
  }
};

// One cache's cumulative counters at a sample.
struct UsageSample {
  uint32_t cache_id = 0;
  std::string_view tenant;
  std::string_view cache;
  UsageCounters total;
};

struct UsageRecord {
  int64_t minute = 0;  // start of the minute, Unix seconds
  std::string tenant;
  std::string cache;
  UsageCounters usage;
  bool partial = false;  // the minute in progress
};

struct UsageOptions {
  std::string path;                       // the usage.tsv file; empty: memory only
  int64_t minute_seconds = 60;            // length of a "minute" (tests shorten it)
  int64_t retention_seconds = 24 * 3600;  // the in-memory window
  size_t max_records = 500000;            // bound on the window's rows (oldest dropped first)
};

class UsageLog {
 public:
  // Reads the recent lines of options.path (if it exists) into the window.
  UsageLog(UsageOptions options, int64_t now_ms);

  // Attributes the growth of each cache's counters since the previous Record to the minute
  // holding the middle of that interval, and closes every minute that ended before now_ms.
  // A cache seen for the first time counts from zero; one missing from `caches` is forgotten.
  void Record(int64_t now_ms, const std::vector<UsageSample>& caches);
  // Closes the minute in progress now, as it stands (at shutdown).
  void CloseMinute();

  // Rows with minute in [from, to) (Unix seconds), of one tenant and cache if given, oldest
  // first, the minute in progress included (partial). Rows of the same minute, tenant and cache
  // are summed.
  std::vector<UsageRecord> Query(const std::optional<std::string>& tenant,
                                 const std::optional<std::string>& cache, int64_t from,
                                 int64_t to) const;

  int64_t minute_seconds() const { return opts_.minute_seconds; }
  size_t window_size() const { return window_.size(); }

 private:
  struct Current {
    std::string tenant, cache;
    UsageCounters usage;
  };
  struct Last {
    UsageCounters total;
    uint64_t stamp = 0;  // the Record call that last saw the cache
  };
  int64_t MinuteOf(int64_t ms) const;
  void Load(int64_t now_ms);
  void Append(std::vector<UsageRecord> rows);
  void Prune(int64_t newest_minute);

  UsageOptions opts_;
  std::deque<UsageRecord> window_;  // closed minutes, in the order they closed
  int64_t minute_ = -1;             // the minute in progress (start, Unix seconds); -1: none yet
  absl::flat_hash_map<uint32_t, Current> current_;  // by cache id
  absl::flat_hash_map<uint32_t, Last> last_;        // by cache id
  int64_t last_ms_ = -1;                            // time of the previous Record
  uint64_t stamp_ = 0;
  bool write_failed_ = false;  // logged once until a write succeeds again
};

class UsageSampler {
 public:
  UsageSampler(boost::asio::io_context& io, gateway::Tenancy* tenancy, UsageLog* log);

  void Start();
  // One sample now (the admin API takes one before answering, so the minute in progress is
  // up to date).
  void SampleNow();
  // Stops the timer, samples a last time and closes the minute in progress (shutdown). Call on
  // the loop's thread.
  void Stop();
  UsageLog& log() { return *log_; }

 private:
  void Arm();

  boost::asio::steady_timer timer_;
  gateway::Tenancy* tenancy_;
  UsageLog* log_;
  bool stopped_ = false;
};

}  // namespace cellar::server
