#include "gateway/scheduler.h"

#include <algorithm>

#include <boost/asio/post.hpp>

#include "common/clock.h"

namespace cellar::gateway {

LoopScheduler::LoopScheduler(boost::asio::io_context& loop, SchedulerOptions options)
    : loop_(loop), options_(options) {
  if (options_.quantum == 0) options_.quantum = 1;
  if (options_.pass_budget < options_.quantum) options_.pass_budget = options_.quantum;
}

LoopScheduler::~LoopScheduler() = default;

LoopScheduler::TenantQueue& LoopScheduler::QueueOf(uint32_t tenant) {
  auto& slot = queues_[tenant];
  if (!slot) {
    slot = std::make_unique<TenantQueue>();
    slot->tenant = tenant;
  }
  return *slot;
}

uint64_t LoopScheduler::WindowWork(TenantQueue& q, int64_t now) {
  if (now - q.window_start > options_.window_ns) {
    q.window_start = now;
    q.window_work = 0;
  }
  return q.window_work;
}

LoopScheduler::Decision LoopScheduler::Arrive(uint32_t tenant, Schedulable* s) {
  const int64_t now = static_cast<int64_t>(MonotonicNanos());
  if (tenant != last_tenant_) {
    // A second tenant on the loop (the very first arrival is not a switch).
    if (last_tenant_ != UINT32_MAX) last_switch_ns_ = now;
    last_tenant_ = tenant;
  }
  TenantQueue& q = QueueOf(tenant);
  if (q.head == nullptr && (!ContendedAt(now) || WindowWork(q, now) < options_.light_work)) {
    counters_.inline_rounds++;
    return Decision::kRunNow;
  }
  if (q.depth >= options_.max_queued) {
    counters_.refused++;
    return Decision::kRefused;
  }
  s->sched_queued_ = true;
  s->sched_next_ = nullptr;
  if (q.tail == nullptr) {
    q.head = q.tail = s;
  } else {
    q.tail->sched_next_ = s;
    q.tail = s;
  }
  if (++q.depth > counters_.max_depth) counters_.max_depth = q.depth;
  if (!q.active) {
    q.active = true;
    q.deficit = 0;
    fresh_.push_back(&q);
  }
  Post();
  return Decision::kQueued;
}

void LoopScheduler::Charge(uint32_t tenant, uint32_t cost) {
  TenantQueue& q = QueueOf(tenant);
  WindowWork(q, static_cast<int64_t>(MonotonicNanos()));
  q.window_work += cost;
}

bool LoopScheduler::Contended() const {
  return ContendedAt(static_cast<int64_t>(MonotonicNanos()));
}

bool LoopScheduler::ContendedAt(int64_t now) const {
  return now - last_switch_ns_ < options_.contended_window_ns;
}

uint32_t LoopScheduler::RoundLimit(uint32_t uncontended) const {
  if (!options_.enabled || !Contended()) return uncontended;
  return options_.quantum < uncontended ? options_.quantum : uncontended;
}

void LoopScheduler::Post() {
  if (posted_) return;
  posted_ = true;
  // After the handlers already ready in this turn (the other reads), so they queue first.
  boost::asio::post(loop_, [this] { Drain(); });
}

void LoopScheduler::Drain() {
  posted_ = false;
  counters_.passes++;
  int64_t budget = options_.pass_budget;
  const int64_t end = static_cast<int64_t>(MonotonicNanos()) + options_.pass_ns;
  while (budget > 0 && (!fresh_.empty() || !active_.empty())) {
    // A tenant that just became active is served first; then the round robin.
    const bool from_fresh = !fresh_.empty();
    TenantQueue* q = from_fresh ? fresh_.front() : active_.front();
    if (from_fresh) {
      fresh_.pop_front();
    } else {
      active_.pop_front();
    }
    // Deficit left by a pass that ended early carries over, up to one more quantum.
    q->deficit = std::min<int64_t>(q->deficit + options_.quantum, 2 * int64_t{options_.quantum});
    while (q->head != nullptr && q->deficit > 0 && budget > 0) {
      Schedulable* s = q->head;
      q->head = s->sched_next_;
      if (q->head == nullptr) q->tail = nullptr;
      q->depth--;
      s->sched_next_ = nullptr;
      s->sched_queued_ = false;
      counters_.rounds++;
      // May re-enqueue itself (more input buffered): it goes to the back of the queue.
      const uint32_t cost = std::max<uint32_t>(1, s->RunScheduled());
      q->deficit -= cost;
      q->window_work += cost;
      budget -= cost;
      if (static_cast<int64_t>(MonotonicNanos()) >= end) budget = 0;
    }
    if (q->head == nullptr) {
      q->active = false;
      q->deficit = 0;
    } else {
      active_.push_back(q);
    }
  }
  if (!fresh_.empty() || !active_.empty()) Post();
}

}  // namespace cellar::gateway
