// The CLI's views of limits, live statistics and usage (admin API: /v1/limits,
// /v1/tenants/T/limits, /v1/caches/C/limits, /v1/stats, /v1/usage).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/cli_common.h"

namespace cellar::cli {

// `cellar limits show`: the effective limits of a tenant (cache empty) or of one of its caches,
// each with the layer it comes from.
int LimitsShow(const Target& t, const std::string& tenant, const std::string& cache);
// `cellar limits set name=value ...`: merges the pairs into the overrides, then shows the result.
int LimitsSet(const Target& t, const std::string& tenant, const std::string& cache,
              const std::vector<std::string>& pairs);
// `cellar limits defaults`: every limit with the server's default and what it means.
int LimitsDefaults(const Target& t);
// The limits' names and meanings, for --help (from control/limits.h).
std::string LimitsHelp();

struct StatsOptions {
  std::string tenant;  // empty: every tenant (or `default` when cache is given)
  std::string cache;   // empty: every cache
  double interval_s = 1;
  uint64_t count = 0;  // tables to print; 0: until interrupted
  bool local = false;  // on a fleet: this node's counters only (the default sums the nodes')
};
// `cellar stats`: per cache rates between consecutive samples, like top.
int Stats(const Target& t, const StatsOptions& o);

struct UsageOptions {
  std::string tenant;
  std::string cache;
  uint64_t minutes = 60;
  bool json = false;
  bool local = false;  // on a fleet: this node's usage only
};
// `cellar usage`: per minute requests and bytes, for billing.
int Usage(const Target& t, const UsageOptions& o);

// ---- formatting (exposed for tests) ----
// The q-quantile (0..1) of a histogram, interpolated within its bucket as Prometheus's
// histogram_quantile does: counts[i] are the observations <= bounds[i] (and above the previous
// bound); counts may have one more entry, the open bucket past the last bound. Returns -1 for
// no observations, and the last bound + 1 when the quantile lies in the open bucket.
double HistogramQuantile(const std::vector<uint64_t>& bounds, const std::vector<uint64_t>& counts,
                         double q);
std::string FormatBytes(double bytes);                            // "512 B", "1.5 KiB", "3.0 MiB"
std::string FormatMicros(double us);                              // "80us", "1.2ms", "1.50s"
std::string FormatUnixMinute(int64_t unix_s, bool with_seconds);  // "2024-05-01 12:34" UTC

}  // namespace cellar::cli
