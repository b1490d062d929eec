#include "gateway/pipeline.h"

#include <algorithm>
#include <utility>

#include "common/clock.h"
#include "control/cache_registry.h"
#include "topics/topics.h"

namespace cellar::gateway {

Pipeline::Pipeline(Gateway& gateway, uint32_t loop, RoundSource& source, Pacing pacing)
    : gw_(&gateway), loop_(loop), source_(&source), pacing_(pacing) {}

std::shared_ptr<Pipeline> Pipeline::Self() {
  // Shares the connection's ownership and points at its pipeline: a callback holding it keeps
  // the connection alive (and fits std::function's inline storage).
  std::shared_ptr<void> owner = source_->Hold();
  return std::shared_ptr<Pipeline>(std::move(owner), this);
}

// ---- The scheduler turn ---------------------------------------------------------------------

void Pipeline::Schedule(uint32_t tenant, size_t wanted) {
  LoopScheduler* sched = gw_->scheduler(loop_);
  // Nothing to be fair about: the turn runs at once (it may only go back to reading).
  if (sched == nullptr || !sched->enabled() || wanted == 0) {
    source_->RunTurn(SIZE_MAX);
    return;
  }
  if (hold_ != nullptr) return;  // queued already
  switch (sched->Arrive(tenant, this)) {
    case LoopScheduler::Decision::kRunNow: {
      // Cut to the quantum while tenants compete; what is left waits for the next turn.
      const size_t limit =
          sched->RoundLimit(static_cast<uint32_t>(std::min<size_t>(wanted, UINT32_MAX)));
      const size_t took = source_->RunTurn(limit);
      sched->Charge(tenant, static_cast<uint32_t>(std::clamp<size_t>(took, 1, UINT32_MAX)));
      source_->AfterTurn();
      return;
    }
    case LoopScheduler::Decision::kQueued:
      hold_ = source_->Hold();
      return;
    case LoopScheduler::Decision::kRefused:
      source_->RefuseTurn();
      return;
  }
}

uint32_t Pipeline::RunScheduled() {
  std::shared_ptr<void> hold = std::move(hold_);
  const size_t wanted = source_->QueuedTurnWanted();
  if (wanted == 0) return 1;  // a round started meanwhile; its end schedules what is left
  const size_t limit = gw_->scheduler(loop_)->RoundLimit(
      static_cast<uint32_t>(std::min<size_t>(wanted, UINT32_MAX)));
  const size_t took = source_->RunTurn(limit);
  source_->AfterTurn();
  return static_cast<uint32_t>(std::clamp<size_t>(took, 1, UINT32_MAX));
}

// ---- A round --------------------------------------------------------------------------------

void Pipeline::Begin() {
  batch_.calls.clear();
  now_ms_ = SystemClock::Get()->NowMillis();
  start_ns_ = MonotonicNanos();
  admitted_ = 0;
}

void Pipeline::RestartClock() { start_ns_ = MonotonicNanos(); }

Status Pipeline::StillValid(Principal& p) const { return gw_->StillValid(p, now_ms_ / 1000); }

bool Pipeline::Permitted(const Principal& p, std::string_view cache, std::span<const Call> calls,
                         auth::Access access) {
  if (p.perms.super_user) return true;
  for (const Call& c : calls) {
    if (!CallAllowed(p.perms, cache, c.req, access)) return false;
  }
  return true;
}

Verdict Pipeline::Verify(const Principal& p, std::string_view cache, CacheState* state,
                         size_t first_call, auth::Access access, uint64_t request_bytes,
                         bool admit_empty) {
  std::vector<Call>& calls = batch_.calls;
  if (!Permitted(p, cache, std::span<const Call>(calls).subspan(first_call), access)) {
    calls.resize(first_call);
    return Verdict::kDenied;
  }
  if (state != nullptr && !gw_->serving_writes(start_ns_)) {
    for (size_t i = first_call; i < calls.size(); ++i) {
      if (api::IsReadOnly(calls[i].req.op)) continue;
      calls.resize(first_call);
      refusal_ = Refusal::kNotServing;
      Tenancy::CountRefusal(*state, refusal_);
      return Verdict::kRefused;
    }
  }
  Tenancy* tenancy = gw_->tenancy();
  if (tenancy == nullptr || state == nullptr || (calls.size() == first_call && !admit_empty)) {
    return Verdict::kAllowed;
  }
  Refusal r = Refusal::kNone;
  if (const uint64_t max_ttl = state->limit(control::LimitId::kMaxTtlSeconds); max_ttl != 0) {
    const int64_t cap =
        now_ms_ + static_cast<int64_t>(std::min<uint64_t>(max_ttl, 1ull << 40)) * 1000;
    for (size_t i = first_call; i < calls.size(); ++i) {
      if (calls[i].req.expire_at > cap) {
        r = Refusal::kTtl;
        Tenancy::CountRefusal(*state, r);
        break;
      }
    }
  }
  if (r == Refusal::kNone) {
    r = tenancy->Admit(*state, 1, request_bytes, static_cast<int64_t>(start_ns_));
  }
  if (r == Refusal::kNone) {
    ++admitted_;
    return Verdict::kAllowed;
  }
  calls.resize(first_call);
  refusal_ = r;
  return Verdict::kRefused;
}

Verdict Pipeline::VerifyCacheWide(const Principal& p, std::string_view cache, CacheState* state,
                                  auth::Access access, uint64_t request_bytes) {
  if (!p.perms.super_user && !auth::AllowsWholeCache(p.perms, cache, access)) {
    return Verdict::kDenied;
  }
  // Cache-wide calls may come outside a round (start_ns_ would be old): read the clock.
  if (state != nullptr && access != auth::Access::kRead && access != auth::Access::kSubscribe &&
      !gw_->serving_writes(MonotonicNanos())) {
    refusal_ = Refusal::kNotServing;
    Tenancy::CountRefusal(*state, refusal_);
    return Verdict::kRefused;
  }
  Tenancy* tenancy = gw_->tenancy();
  if (tenancy == nullptr || state == nullptr) return Verdict::kAllowed;
  const Refusal r =
      tenancy->Admit(*state, 1, request_bytes, static_cast<int64_t>(MonotonicNanos()));
  if (r == Refusal::kNone) return Verdict::kAllowed;
  refusal_ = r;
  return Verdict::kRefused;
}

void Pipeline::Submit(uint32_t tenant, std::function<void()> done) {
  // The round's replies get a grant of reply memory (reply_memory.h); past it the shards
  // refuse the rest, so a small request cannot build a huge reply.
  batch_.set_reply_budget(grant_.Take(tenant));
  done_ = std::move(done);
  gw_->Submit(loop_, &batch_, [self = Self()] { self->AfterShards(); });
}

void Pipeline::AfterShards() {
  // A round that published is answered once its messages are handed to the subscribers and
  // flushed, so the publisher is paced by the fan-out (Redis answers PUBLISH in the
  // event-loop round that writes the subscribers).
  if (gw_->topics() != nullptr && batch_.Has(api::Op::kPublish)) return Pace();
  std::exchange(done_, nullptr)();
}

void Pipeline::Pace() {
  topics::Topics* topics = gw_->topics();
  if (pacing_ == Pacing::kEveryRound) {
    topics->AfterDeliveries(loop_, [self = Self()] { std::exchange(self->done_, nullptr)(); });
    return;
  }
  // One publishing round may run ahead of the fan-out; the next waits until the deliveries
  // before it are done.
  if (pace_outstanding_) {
    paced_done_ = std::exchange(done_, nullptr);
    return;
  }
  pace_outstanding_ = true;
  topics->AfterDeliveries(loop_, [self = Self()] {
    self->pace_outstanding_ = false;
    std::function<void()> waiting = std::exchange(self->paced_done_, nullptr);
    if (waiting == nullptr) return;
    // The waiting round's publishes get a barrier of their own.
    self->done_ = std::move(waiting);
    self->Pace();
  });
  std::exchange(done_, nullptr)();
}

bool Pipeline::AnyNotRun() const {
  for (const Call& c : batch_.calls) {
    if (c.not_run) return true;
  }
  return false;
}

bool Pipeline::Resubmit(uint32_t first, uint32_t end, bool largest, std::function<void()> done) {
  bool any = false;
  for (uint32_t i = 0; i < batch_.calls.size(); ++i) {
    Call& call = batch_.calls[i];
    const bool again = i >= first && i < end && call.not_run;
    call.hold = !again;
    if (again) {
      call.not_run = false;
      call.reply = api::Reply();
      any = true;
    }
  }
  if (!any) return false;
  if (largest) grant_.Learn(0, /*did_not_fit=*/true);  // the most a round may have
  batch_.set_reply_budget(grant_.Take(grant_.tenant()));
  gw_->Submit(loop_, &batch_, std::move(done));
  return true;
}

// ---- Finishing ------------------------------------------------------------------------------

uint64_t Pipeline::Finishing() {
  finish_ns_ = MonotonicNanos();
  elapsed_us_ = (finish_ns_ - start_ns_) / 1000;
  return elapsed_us_;
}

void Pipeline::Charge(CacheState* state, uint64_t read_bytes, uint32_t requests) {
  Tenancy* tenancy = gw_->tenancy();
  if (tenancy == nullptr || state == nullptr) return;
  if (requests > 0) state->usage.RecordLatency(elapsed_us_, requests);
  tenancy->ChargeRead(*state, read_bytes, static_cast<int64_t>(finish_ns_));
}

void Pipeline::ChargeRound(CacheState* state, uint64_t read_bytes) {
  if (admitted_ == 0) return;
  // The charge's clock: now (a round finishes in parts: its follow-ups, its resumptions).
  finish_ns_ = MonotonicNanos();
  Charge(state, read_bytes, admitted_);
  admitted_ = 0;
}

const std::string& Pipeline::RefusalText(const CacheState& c, Refusal r, std::string_view prefix,
                                         bool name_cache) {
  const uint64_t generation = gw_->registry().limits_generation();
  if (&c != refusal_cache_ || r != refusal_kind_ || generation != refusal_generation_ ||
      name_cache != refusal_named_) {
    refusal_text_.assign(prefix);
    refusal_text_ += Tenancy::Describe(c, r, name_cache);
    refusal_cache_ = &c;
    refusal_kind_ = r;
    refusal_generation_ = generation;
    refusal_named_ = name_cache;
  }
  return refusal_text_;
}

Refusal CheckValueSize(CacheState* state, uint64_t size, bool element, uint64_t fallback,
                       uint64_t* limit_out) {
  uint64_t limit = fallback;
  if (state != nullptr) {
    limit = state->limit(element ? control::LimitId::kMaxElementBytes
                                 : control::LimitId::kMaxItemBytes);
    if (limit == 0) limit = UINT64_MAX;
  }
  if (limit_out != nullptr) *limit_out = limit;
  if (size <= limit) return Refusal::kNone;
  const Refusal r = element ? Refusal::kElementSize : Refusal::kItemSize;
  if (state != nullptr) Tenancy::CountRefusal(*state, r);
  return r;
}

}  // namespace cellar::gateway
