#include "server/usage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cellar::server {
namespace {

// 2023-11-14 22:13:00 UTC: a minute boundary.
constexpr int64_t kMinute = 1'699'999'980;
constexpr int64_t kT0 = kMinute * 1000;

UsageSample S(uint32_t id, std::string_view tenant, std::string_view cache, uint64_t requests,
              uint64_t in = 0, uint64_t out = 0, uint64_t throttled = 0) {
  return UsageSample{id, tenant, cache, {requests, in, out, throttled}};
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/usage-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(UsageLogTest, AttributesGrowthToTheMinuteInProgress) {
  UsageLog log({}, kT0);
  log.Record(kT0 + 1000, {S(1, "t", "a", 10, 100, 1000, 1)});
  log.Record(kT0 + 2000, {S(1, "t", "a", 15, 150, 1500, 1)});
  auto rows = log.Query(std::nullopt, std::nullopt, 0, INT64_MAX);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].minute, kMinute);
  EXPECT_TRUE(rows[0].partial);
  EXPECT_EQ(rows[0].usage.requests, 15u);
  EXPECT_EQ(rows[0].usage.bytes_in, 150u);
  EXPECT_EQ(rows[0].usage.bytes_out, 1500u);
  EXPECT_EQ(rows[0].usage.throttled, 1u);
}

TEST(UsageLogTest, ClosesAMinuteOnceItEndsAndSplitsByTheMiddleOfTheInterval) {
  UsageLog log({}, kT0);
  log.Record(kT0 + 58'000, {S(1, "t", "a", 10)});
  // The next sample lands 1.5 s into the next minute; the interval's middle (59.75 s) is still
  // in the first minute, so the growth is the first minute's, and that minute closes.
  log.Record(kT0 + 61'500, {S(1, "t", "a", 14)});
  EXPECT_EQ(log.window_size(), 1u);
  // 3 s later: the middle is in the second minute.
  log.Record(kT0 + 64'500, {S(1, "t", "a", 20)});
  auto rows = log.Query(std::nullopt, std::nullopt, 0, INT64_MAX);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].minute, kMinute);
  EXPECT_FALSE(rows[0].partial);
  EXPECT_EQ(rows[0].usage.requests, 14u);
  EXPECT_EQ(rows[1].minute, kMinute + 60);
  EXPECT_TRUE(rows[1].partial);
  EXPECT_EQ(rows[1].usage.requests, 6u);
}

TEST(UsageLogTest, IdleCachesAndMinutesLeaveNoRows) {
  UsageLog log({}, kT0);
  log.Record(kT0 + 1000, {S(1, "t", "a", 5), S(2, "t", "b", 0)});
  log.Record(kT0 + 300'000, {S(1, "t", "a", 5), S(2, "t", "b", 0)});
  auto rows = log.Query(std::nullopt, std::nullopt, 0, INT64_MAX);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].cache, "a");
  EXPECT_EQ(rows[0].minute, kMinute);
}

TEST(UsageLogTest, QueryFiltersByTenantCacheAndTime) {
  UsageLog log({}, kT0);
  log.Record(kT0 + 1000, {S(1, "t", "a", 1), S(2, "t", "b", 2), S(3, "u", "a", 3)});
  log.Record(kT0 + 120'000, {S(1, "t", "a", 1), S(2, "t", "b", 2), S(3, "u", "a", 3)});
  log.Record(kT0 + 121'000, {S(1, "t", "a", 2), S(2, "t", "b", 2), S(3, "u", "a", 3)});
  EXPECT_EQ(log.Query(std::string("t"), std::nullopt, 0, INT64_MAX).size(), 3u);
  EXPECT_EQ(log.Query(std::string("t"), std::string("a"), 0, INT64_MAX).size(), 2u);
  EXPECT_EQ(log.Query(std::string("u"), std::nullopt, 0, INT64_MAX).size(), 1u);
  auto late = log.Query(std::nullopt, std::nullopt, kMinute + 60, INT64_MAX);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].minute, kMinute + 120);
  EXPECT_EQ(log.Query(std::nullopt, std::nullopt, 0, kMinute).size(), 0u);
}

TEST(UsageLogTest, ANewCacheCountsFromZeroAndAGoneCacheIsForgotten) {
  UsageLog log({}, kT0);
  log.Record(kT0 + 1000, {S(1, "t", "a", 7)});
  log.Record(kT0 + 2000, {});                   // deleted
  log.Record(kT0 + 3000, {S(1, "t", "a", 2)});  // ids are never reused; counts as new
  auto rows = log.Query(std::nullopt, std::nullopt, 0, INT64_MAX);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].usage.requests, 9u);
}

TEST(UsageLogTest, AShortMinuteForTests) {
  UsageLog log({.minute_seconds = 2}, kT0);
  log.Record(kT0 + 500, {S(1, "t", "a", 1)});
  log.Record(kT0 + 2500, {S(1, "t", "a", 3)});
  log.Record(kT0 + 4500, {S(1, "t", "a", 6)});
  // Growth goes by the middle of each interval: 1 + 2 in the first "minute", 3 in the second;
  // each closes as soon as a sample lands past its end.
  auto rows = log.Query(std::nullopt, std::nullopt, 0, INT64_MAX);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].minute, kMinute);
  EXPECT_EQ(rows[0].usage.requests, 3u);
  EXPECT_FALSE(rows[0].partial);
  EXPECT_EQ(rows[1].minute, kMinute + 2);
  EXPECT_EQ(rows[1].usage.requests, 3u);
  EXPECT_FALSE(rows[1].partial);
  EXPECT_EQ(log.window_size(), 2u);
}

TEST(UsageLogTest, WritesClosedMinutesAndReadsThemBackAfterARestart) {
  TempDir dir;
  const std::string path = dir.file("usage.tsv");
  {
    UsageLog log({.path = path}, kT0);
    log.Record(kT0 + 1000, {S(1, "acme", "sessions", 10, 20, 30, 4), S(2, "beta", "x", 1)});
    log.Record(kT0 + 62'000, {S(1, "acme", "sessions", 10, 20, 30, 4), S(2, "beta", "x", 1)});
    log.Record(kT0 + 63'000, {S(1, "acme", "sessions", 11, 20, 30, 4), S(2, "beta", "x", 1)});
    log.CloseMinute();  // shutdown in the second minute
  }
  EXPECT_EQ(ReadAll(path), std::to_string(kMinute) + "\tacme\tsessions\t10\t20\t30\t4\n" +
                               std::to_string(kMinute) + "\tbeta\tx\t1\t0\t0\t0\n" +
                               std::to_string(kMinute + 60) + "\tacme\tsessions\t1\t0\t0\t0\n");
  // Restarted in the same minute: counters start over, and the minute's rows are summed.
  UsageLog log({.path = path}, kT0 + 64'000);
  EXPECT_EQ(log.window_size(), 3u);
  log.Record(kT0 + 65'000, {S(7, "acme", "sessions", 2)});
  auto rows = log.Query(std::string("acme"), std::nullopt, 0, INT64_MAX);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].minute, kMinute + 60);
  EXPECT_EQ(rows[1].usage.requests, 3u);
  EXPECT_TRUE(rows[1].partial);
}

TEST(UsageLogTest, LoadSkipsOldAndMalformedLines) {
  TempDir dir;
  const std::string path = dir.file("usage.tsv");
  {
    std::ofstream out(path);
    out << (kMinute - 2 * 86400) << "\tt\ta\t1\t0\t0\t0\n";  // older than the window
    out << "garbage\n";
    out << kMinute << "\tt\ta\t5\t6\t7\t8\n";
    out << kMinute << "\tt\tb\t5";  // cut short, no newline
  }
  UsageLog log({.path = path}, kT0 + 1000);
  auto rows = log.Query(std::nullopt, std::nullopt, 0, INT64_MAX);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].usage.throttled, 8u);
}

TEST(UsageLogTest, TheWindowIsBounded) {
  UsageLog log({.retention_seconds = 120, .max_records = 1000}, kT0);
  for (int m = 0; m < 10; ++m) {
    log.Record(kT0 + m * 60'000 + 1000, {S(1, "t", "a", static_cast<uint64_t>(m + 1))});
  }
  // Minutes 0..8 closed; only those within 120 s of the newest closed one are kept.
  EXPECT_EQ(log.window_size(), 3u);
  UsageLog small({.max_records = 2}, kT0);
  for (int m = 0; m < 10; ++m) {
    small.Record(kT0 + m * 60'000 + 1000, {S(1, "t", "a", static_cast<uint64_t>(m + 1))});
  }
  EXPECT_EQ(small.window_size(), 2u);
}

}  // namespace
}  // namespace cellar::server
