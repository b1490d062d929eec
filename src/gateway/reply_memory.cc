#include "gateway/reply_memory.h"

#include <algorithm>

#include "common/check.h"

namespace cellar::gateway {

namespace {

// Takes up to `want` from a counter bounded by `cap`; returns what was taken.
uint64_t TakeUpTo(std::atomic<uint64_t>& counter, uint64_t cap, uint64_t want) {
  uint64_t cur = counter.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t take = cur >= cap ? 0 : std::min(want, cap - cur);
    if (take == 0) return 0;
    if (counter.compare_exchange_weak(cur, cur + take, std::memory_order_relaxed)) return take;
  }
}

}  // namespace

ReplyMemory& ReplyMemory::Get() {
  static ReplyMemory pool;
  return pool;
}

void ReplyMemory::Configure(const Options& options) { options_ = options; }

uint64_t ReplyMemory::NextWant(uint64_t used) const {
  return std::min(options_.max_round_bytes, std::max(kMinGrant, 2 * used));
}

uint64_t ReplyMemory::Reserve(uint32_t tenant, uint64_t want) {
  want = std::min(want, options_.max_round_bytes);
  if (options_.pool_bytes == 0) return want;
  const uint64_t share =
      static_cast<uint64_t>(static_cast<double>(options_.pool_bytes) * options_.tenant_share);
  std::atomic<uint64_t>& t = tenants_[tenant % kTenantSlots];
  const uint64_t from_tenant = TakeUpTo(t, share, want);
  const uint64_t granted = TakeUpTo(used_, options_.pool_bytes, from_tenant);
  if (granted < from_tenant) t.fetch_sub(from_tenant - granted, std::memory_order_relaxed);
  return granted;
}

void ReplyMemory::Release(uint32_t tenant, uint64_t bytes) {
  if (bytes == 0 || options_.pool_bytes == 0) return;
  // Giving back more than was taken would wrap the counters and open the pool for good.
  const uint64_t was = used_.fetch_sub(bytes, std::memory_order_relaxed);
  if (!CELLAR_BUG_CHECK(was >= bytes, "reply memory released twice")) {
    used_.fetch_add(bytes, std::memory_order_relaxed);
    return;
  }
  tenants_[tenant % kTenantSlots].fetch_sub(bytes, std::memory_order_relaxed);
}

int64_t ReplyGrant::Take(uint32_t tenant) {
  if (held_ != 0 && tenant != tenant_) {
    last_grant_ = 0;
    return 0;
  }
  tenant_ = tenant;
  last_grant_ = ReplyMemory::Get().Reserve(tenant, want_);
  held_ += last_grant_;
  return ReplyMemory::Budget(last_grant_);
}

void ReplyGrant::Learn(uint64_t used, bool did_not_fit) {
  const ReplyMemory& rm = ReplyMemory::Get();
  want_ = did_not_fit ? rm.options().max_round_bytes : rm.NextWant(used);
}

void ReplyGrant::Keep(uint64_t bytes) {
  if (held_ > bytes) Release(held_ - bytes);
}

void ReplyGrant::Release(uint64_t bytes) {
  bytes = std::min(bytes, held_);
  ReplyMemory::Get().Release(tenant_, bytes);
  held_ -= bytes;
}

metrics::Source ReplyMemory::Metrics() {
  static constexpr const metrics::Def* kDefs[] = {&kReplyMemoryUsed, &kReplyMemoryLimit,
                                                  &kRepliesTooLarge};
  return {kDefs, [](metrics::Sink& sink) {
            const ReplyMemory& rm = Get();
            sink.Add(kReplyMemoryUsed, "", rm.used());
            sink.Add(kReplyMemoryLimit, "", rm.options().pool_bytes);
            sink.Add(kRepliesTooLarge, "", rm.refused_calls());
          }};
}

}  // namespace cellar::gateway
