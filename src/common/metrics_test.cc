#include "common/metrics.h"

#include <gtest/gtest.h>

#include <array>

#include "common/check.h"

namespace cellar::metrics {
namespace {

inline constexpr Def kCalls{"test_calls_total", Type::kCounter, "Calls, by op.", "op"};
inline constexpr Def kOpen{"test_open", Type::kGauge, "Open things.", ""};
inline constexpr Def kLatency{"test_latency_seconds", Type::kHistogram, "Latency.", "op"};
inline constexpr Def kUndeclared{"test_undeclared", Type::kGauge, "Nobody declares it.", ""};
inline constexpr const Def* kDefs[] = {&kCalls, &kOpen, &kLatency};

constexpr std::array<uint64_t, 3> kBounds = {10, 100, UINT64_MAX};

Source TestSource() {
  return {kDefs, [](Sink& s) {
            s.Add(kCalls, "op=\"get\"", 3);
            s.Add(kCalls, "op=\"set\"", 4);
            s.Add(kOpen, "", 2);
            static constexpr uint64_t kCounts[] = {1, 2, 3};
            s.Add(kLatency, "op=\"get\"", HistogramValue{kBounds, kCounts, 2500000});
          }};
}

TEST(MetricsTest, RendersDeclaredDefsInOrderWithTheirSamples) {
  const Source sources[] = {TestSource()};
  EXPECT_EQ(RenderPrometheus(sources),
            "# HELP test_calls_total Calls, by op.\n"
            "# TYPE test_calls_total counter\n"
            "test_calls_total{op=\"get\"} 3\n"
            "test_calls_total{op=\"set\"} 4\n"
            "# HELP test_open Open things.\n"
            "# TYPE test_open gauge\n"
            "test_open 2\n"
            "# HELP test_latency_seconds Latency.\n"
            "# TYPE test_latency_seconds histogram\n"
            "test_latency_seconds_bucket{op=\"get\",le=\"0.000010\"} 1\n"
            "test_latency_seconds_bucket{op=\"get\",le=\"0.000100\"} 3\n"
            "test_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 6\n"
            "test_latency_seconds_sum{op=\"get\"} 2.500000\n"
            "test_latency_seconds_count{op=\"get\"} 6\n");
}

TEST(MetricsTest, DeclaredWithoutSamplesStillHasHelpAndASourceMayFeedAnothersDefs) {
  static constexpr const Def* kOnlyCalls[] = {&kCalls};
  const Source sources[] = {
      {kOnlyCalls, nullptr},
      {{}, [](Sink& s) { s.Add(kCalls, "op=\"del\"", 1); }},
  };
  EXPECT_EQ(RenderPrometheus(sources),
            "# HELP test_calls_total Calls, by op.\n"
            "# TYPE test_calls_total counter\n"
            "test_calls_total{op=\"del\"} 1\n");
}

TEST(MetricsTest, AnUndeclaredSampleIsLeftOutAndCountedAsABug) {
  const uint64_t before = BugCheckFailures().load();
  const Source sources[] = {{{}, [](Sink& s) { s.Add(kUndeclared, "", 7); }}};
  EXPECT_EQ(RenderPrometheus(sources), "");
  EXPECT_EQ(BugCheckFailures().load(), before + 1);
}

TEST(MetricsTest, SnapshotSumsByLabelMatch) {
  const Source sources[] = {TestSource()};
  const Snapshot snap(sources);
  EXPECT_EQ(snap.Total(kCalls), 7u);
  EXPECT_EQ(snap.Total(kCalls, "op=\"set\""), 4u);
  EXPECT_EQ(snap.Value(kCalls, "op=\"get\""), 3u);
  EXPECT_EQ(snap.Value(kCalls, "op=\"nope\""), 0u);
  EXPECT_EQ(snap.Value(kOpen), 2u);
  EXPECT_EQ(snap.Total(kLatency), 6u);
}

TEST(MetricsTest, BugCheckSourceReadsTheCounter) {
  const Source sources[] = {BugCheckMetrics()};
  const Snapshot snap(sources);
  EXPECT_EQ(snap.Value(kBugChecksFailed), BugCheckFailures().load());
}

}  // namespace
}  // namespace cellar::metrics
