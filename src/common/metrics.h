// Declared metrics. Each module lists its counters, gauges and histograms in one place next to
// its code (name, type, help, label names: a `metrics::Def` each) and gives a `Source`: that
// list plus a function that reads the current values. One renderer turns any set of sources
// into the Prometheus text of /metrics; a `Snapshot` answers the other views (Redis INFO, tests)
// from the same declarations, so a number has one name and one reader wherever it is shown.
// The models: Pelikan's SEG_METRIC lists and Envoy's ALL_*_STATS.
//
// Declaring: `inline constexpr metrics::Def kFoo{"cellar_foo_total", metrics::Type::kCounter,
// "What it counts.", "label"};` (a def is known by its address, so it is declared once, in a
// header, as an inline constexpr) and `inline constexpr const metrics::Def* kMyMetrics[] =
// {&kFoo, ...};`. A source may add samples to defs that another source declares: the
// connection metrics are declared once by frontend/net and read by both front-ends.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cellar::metrics {

enum class Type : uint8_t { kCounter, kGauge, kHistogram };

struct Def {
  std::string_view name;    // cellar_*; counters end in _total, histograms in _seconds
  Type type;
  std::string_view help;    // one sentence, ending with a period
  std::string_view labels;  // the label names its samples carry, comma-separated; "" for none
};

// A histogram's value: per-bucket counts (not cumulative) for upper bounds in microseconds, the
// last bound UINT64_MAX (+Inf); rendered in seconds.
struct HistogramValue {
  std::span<const uint64_t> bounds_us;
  std::span<const uint64_t> counts;  // at most bounds_us.size() entries
  uint64_t sum_us = 0;
};

// Where a source's read puts its samples. `labels` is the Prometheus label text without braces
// (`command="get"`), "" for none.
class Sink {
 public:
  virtual void Add(const Def& def, std::string_view labels, uint64_t value) = 0;
  virtual void Add(const Def& def, std::string_view labels, const HistogramValue& value) = 0;

 protected:
  ~Sink() = default;
};

// One module's metrics: what it declares and how to read them now.
struct Source {
  std::span<const Def* const> defs;
  std::function<void(Sink&)> read;
};

// The Prometheus text exposition of the sources: each declared def's HELP and TYPE lines in
// declaration order (also when it has no samples), then its samples in the order they were
// added. A sample of a def that no source declares is a bug of ours (counted as a bug check)
// and is left out.
std::string RenderPrometheus(std::span<const Source> sources);

// Every sample of some sources, to look up by def.
class Snapshot final : public Sink {
 public:
  explicit Snapshot(std::span<const Source> sources);
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // The sum of def's samples whose label text contains `match` (every sample if empty); for a
  // histogram, the sum of its counts.
  uint64_t Total(const Def& def, std::string_view match = {}) const;
  // The value of def's sample with exactly these labels, or 0.
  uint64_t Value(const Def& def, std::string_view labels = {}) const;

  void Add(const Def& def, std::string_view labels, uint64_t value) override;
  void Add(const Def& def, std::string_view labels, const HistogramValue& value) override;

 private:
  struct Sample {
    const Def* def;
    std::string labels;
    uint64_t value;
  };
  std::vector<Sample> samples_;
};

// A Prometheus label value: backslash, quote and newline escaped.
std::string LabelEscape(std::string_view s);

// common/check.h's bug checks.
inline constexpr Def kBugChecksFailed{
    "cellar_bug_checks_failed_total", Type::kCounter,
    "Internal invariants found broken (a bug of ours, survived and logged: common/check.h).", ""};
Source BugCheckMetrics();

}  // namespace cellar::metrics
