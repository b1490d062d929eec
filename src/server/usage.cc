#include "server/usage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <tuple>

#include "common/clock.h"
#include "common/logging.h"
#include "gateway/tenancy.h"

namespace cellar::server {
namespace {

// At start only the file's tail is read: a day of minutes of a busy server fits well inside.
constexpr int64_t kMaxLoadBytes = 64 << 20;

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// a - b for a counter that only grows; a smaller value means it started over (counts from 0).
uint64_t Growth(uint64_t now, uint64_t before) { return now >= before ? now - before : now; }

std::string Line(const UsageRecord& r) {
  return std::to_string(r.minute) + "\t" + r.tenant + "\t" + r.cache + "\t" +
         std::to_string(r.usage.requests) + "\t" + std::to_string(r.usage.bytes_in) + "\t" +
         std::to_string(r.usage.bytes_out) + "\t" + std::to_string(r.usage.throttled) + "\n";
}

}  // namespace

UsageLog::UsageLog(UsageOptions options, int64_t now_ms) : opts_(std::move(options)) {
  if (opts_.minute_seconds <= 0) opts_.minute_seconds = 60;
  Load(now_ms);
}

int64_t UsageLog::MinuteOf(int64_t ms) const {
  const int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const int64_t q =
      s >= 0 ? s / opts_.minute_seconds : (s - opts_.minute_seconds + 1) / opts_.minute_seconds;
  return q * opts_.minute_seconds;
}

void UsageLog::Load(int64_t now_ms) {
  if (opts_.path.empty()) return;
  FILE* f = std::fopen(opts_.path.c_str(), "rb");
  if (f == nullptr) return;
  struct stat sb {};
  int64_t skip = 0;
  if (::fstat(fileno(f), &sb) == 0 && sb.st_size > kMaxLoadBytes) skip = sb.st_size - kMaxLoadBytes;
  if (skip > 0) std::fseek(f, static_cast<long>(skip), SEEK_SET);
  std::string data;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) data.append(buf, n);
  std::fclose(f);
  size_t pos = 0;
  if (skip > 0) {  // we landed mid-line
    pos = data.find('\n');
    pos = pos == std::string::npos ? data.size() : pos + 1;
  }
  const int64_t oldest = MinuteOf(now_ms) - opts_.retention_seconds;
  size_t bad = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) break;  // a line cut short by a crash: not ours to trust
    std::string_view line(data.data() + pos, end - pos);
    pos = end + 1;
    std::string_view f7[7];
    size_t n = 0;
    for (size_t start = 0; n < 7;) {
      const size_t tab = line.find('\t', start);
      f7[n++] = line.substr(start, tab == std::string_view::npos ? line.npos : tab - start);
      if (tab == std::string_view::npos) break;
      start = tab + 1;
    }
    UsageRecord r;
    if (n != 7 || !ParseNumber(f7[0], &r.minute) || f7[1].empty() || f7[2].empty() ||
        !ParseNumber(f7[3], &r.usage.requests) || !ParseNumber(f7[4], &r.usage.bytes_in) ||
        !ParseNumber(f7[5], &r.usage.bytes_out) || !ParseNumber(f7[6], &r.usage.throttled)) {
      ++bad;
      continue;
    }
    if (r.minute < oldest) continue;
    r.tenant = std::string(f7[1]);
    r.cache = std::string(f7[2]);
    window_.push_back(std::move(r));
  }
  if (bad > 0) {
    LOG_WARN("msg=\"usage file: skipped malformed lines\" path={} lines={}", opts_.path, bad);
  }
  Prune(MinuteOf(now_ms));
}

void UsageLog::Record(int64_t now_ms, const std::vector<UsageSample>& caches) {
  ++stamp_;
  // The growth since the previous sample happened somewhere in between: its middle decides the
  // minute, so a sample just after a minute boundary still credits the minute that ended.
  const int64_t at =
      last_ms_ < 0 || now_ms < last_ms_ ? now_ms : last_ms_ + (now_ms - last_ms_) / 2;
  const int64_t m = MinuteOf(at);
  if (minute_ < 0) {
    minute_ = m;
  } else if (m > minute_) {
    CloseMinute();
    minute_ = m;
  }  // m < minute_: the wall clock stepped back; keep counting into the minute in progress
  for (const UsageSample& s : caches) {
    Last& last = last_[s.cache_id];
    const UsageCounters d{Growth(s.total.requests, last.total.requests),
                          Growth(s.total.bytes_in, last.total.bytes_in),
                          Growth(s.total.bytes_out, last.total.bytes_out),
                          Growth(s.total.throttled, last.total.throttled)};
    last.total = s.total;
    last.stamp = stamp_;
    if (d.empty()) continue;
    Current& c = current_[s.cache_id];
    if (c.cache.empty()) {
      c.tenant = std::string(s.tenant);
      c.cache = std::string(s.cache);
    }
    c.usage.Add(d);
  }
  absl::erase_if(last_, [this](const auto& kv) { return kv.second.stamp != stamp_; });
  last_ms_ = now_ms;
  if (const int64_t n = MinuteOf(now_ms); n > minute_) {
    CloseMinute();
    minute_ = n;
  }
}

void UsageLog::CloseMinute() {
  if (current_.empty()) return;
  std::vector<UsageRecord> rows;
  rows.reserve(current_.size());
  for (auto& [id, c] : current_) {
    if (c.usage.empty()) continue;
    rows.push_back(UsageRecord{minute_, std::move(c.tenant), std::move(c.cache), c.usage, false});
  }
  current_.clear();
  std::sort(rows.begin(), rows.end(), [](const UsageRecord& a, const UsageRecord& b) {
    return std::tie(a.tenant, a.cache) < std::tie(b.tenant, b.cache);
  });
  Append(std::move(rows));
}

void UsageLog::Append(std::vector<UsageRecord> rows) {
  if (rows.empty()) return;
  if (!opts_.path.empty()) {
    std::string text;
    for (const UsageRecord& r : rows) text += Line(r);
    // One write of whole lines with O_APPEND, so a reader never sees a line cut in two (short
    // of a full disk). 0600 like the rest of the data directory.
    const int fd = ::open(opts_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (fd >= 0) ok = ::close(fd) == 0 && ok;
    if (!ok && !write_failed_) {
      LOG_ERROR("msg=\"cannot append to the usage file; usage stays in memory only\" path={}",
                opts_.path);
    }
    write_failed_ = !ok;
  }
  const int64_t newest = rows.back().minute;
  for (UsageRecord& r : rows) window_.push_back(std::move(r));
  Prune(newest);
}

void UsageLog::Prune(int64_t newest_minute) {
  const int64_t oldest = newest_minute - opts_.retention_seconds;
  while (!window_.empty() &&
         (window_.front().minute < oldest || window_.size() > opts_.max_records)) {
    window_.pop_front();
  }
}

std::vector<UsageRecord> UsageLog::Query(const std::optional<std::string>& tenant,
                                         const std::optional<std::string>& cache, int64_t from,
                                         int64_t to) const {
  std::map<std::tuple<int64_t, std::string_view, std::string_view>, UsageRecord> merged;
  auto add = [&](int64_t minute, const std::string& t, const std::string& c, const UsageCounters& u,
                 bool partial) {
    if (minute < from || minute >= to) return;
    if ((tenant && t != *tenant) || (cache && c != *cache)) return;
    auto [it, inserted] = merged.try_emplace({minute, t, c});
    UsageRecord& r = it->second;
    if (inserted) {
      r.minute = minute;
      r.tenant = t;
      r.cache = c;
    }
    r.usage.Add(u);
    r.partial = r.partial || partial;
  };
  for (const UsageRecord& r : window_) add(r.minute, r.tenant, r.cache, r.usage, false);
  for (const auto& [id, c] : current_) add(minute_, c.tenant, c.cache, c.usage, true);
  std::vector<UsageRecord> out;
  out.reserve(merged.size());
  for (auto& [key, r] : merged) out.push_back(std::move(r));
  return out;
}

// ---- UsageSampler ---------------------------------------------------------------------------

UsageSampler::UsageSampler(boost::asio::io_context& io, gateway::Tenancy* tenancy, UsageLog* log)
    : timer_(io), tenancy_(tenancy), log_(log) {}

void UsageSampler::Start() { Arm(); }

void UsageSampler::Arm() {
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    SampleNow();
    Arm();
  });
}

void UsageSampler::SampleNow() {
  if (tenancy_ == nullptr || stopped_) return;  // after Stop the last minute is written
  const auto caches = tenancy_->All();          // keeps the names alive while the samples view them
  std::vector<UsageSample> samples;
  samples.reserve(caches.size());
  for (const auto& c : caches) {
    const gateway::CacheUsage& u = c->usage;
    UsageSample s;
    s.cache_id = c->id;
    s.tenant = c->tenant_state ? std::string_view(c->tenant_state->name) : std::string_view();
    s.cache = c->name;
    s.total.requests = u.requests.load(std::memory_order_relaxed);
    s.total.bytes_in = u.bytes_in.load(std::memory_order_relaxed);
    s.total.bytes_out = u.bytes_out.load(std::memory_order_relaxed);
    for (size_t r = 1; r < gateway::kNumRefusals; ++r) {
      s.total.throttled += u.refusals[r].load(std::memory_order_relaxed);
    }
    samples.push_back(s);
  }
  log_->Record(SystemClock::Get()->NowMillis(), samples);
}

void UsageSampler::Stop() {
  if (stopped_) return;
  timer_.cancel();
  SampleNow();
  stopped_ = true;
  log_->CloseMinute();
}

}  // namespace cellar::server
