// Pipeline: the one request pipeline every front-end runs its rounds through.
//
// A front-end connection parses its wire format into rounds of protocol-neutral calls
// (gateway::Call) and writes the replies back; everything between is here, once:
//
//   scheduler turn (Schedule)          the loop's fair scheduler (scheduler.h) says when
//   -> token still valid (StillValid)  expiry and key revocation, at the round's clock
//   -> permission per call (Verify)    by the call's declared access class
//   -> TTL cap (Verify)                max_ttl_seconds
//   -> admission (Verify)              the cache's and tenant's rate buckets (tenancy.h)
//   -> submit to shards (Submit)       with the round's reply grant (reply_memory.h)
//   -> publish pacing (Submit)         a round that published waits for its fan-out
//   -> read charging (Charge)          bytes answered and latency to the cache's usage
//
// The model is Dragonfly's facade/service_interface.h: wire code on one side of one
// interface, every check once on the other. A front-end keeps only parsing, its commands' or
// methods' prepare and finish, and its own table from Status and Refusal to wire errors.
//
// One Pipeline per connection (it holds the round's batch, clock and reply grant), touched
// only by the connection's loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "auth/permissions.h"
#include "gateway/gateway.h"
#include "gateway/reply_memory.h"
#include "gateway/scheduler.h"
#include "gateway/tenancy.h"

namespace cellar::gateway {

// What a front-end answers when the loop's queue for its tenant is full (the scheduler
// refused the turn): RESOURCE_EXHAUSTED, with this text.
inline constexpr std::string_view kOverloadedText =
    "Server overloaded: too many connections of this tenant are waiting on this event loop; "
    "retry later";

// The connection a pipeline serves, as the scheduler sees it.
class RoundSource {
 public:
  virtual ~RoundSource() = default;
  // Runs a round of at most `limit` units (commands or calls; SIZE_MAX: the front-end's own
  // round size) now; returns the units it took (what the scheduler charges).
  virtual size_t RunTurn(size_t limit) = 0;
  // The scheduler refused the turn (the tenant's queue is full): answer what is waiting with
  // the overload refusal, running none of it.
  virtual void RefuseTurn() = 0;
  // Called when a queued turn comes: the units the connection would run now (0: none, it is
  // closed or a round is in flight; that round's end schedules what is left).
  virtual size_t QueuedTurnWanted() = 0;
  // After a turn ran through Schedule or the scheduler's queue (work may be left over).
  virtual void AfterTurn() {}
  // Keeps the connection alive (a shared_ptr to it) while the scheduler or the shards hold it.
  virtual std::shared_ptr<void> Hold() = 0;
};

// What Verify decided for one command's or call's calls.
enum class Verdict : uint8_t {
  kAllowed,  // every check passed: the calls run
  kDenied,   // the token does not allow a call (PERMISSION_DENIED / NOPERM)
  kRefused,  // a limit refused it (refusal() says which, already counted)
};

class Pipeline final : private Schedulable {
 public:
  // How a round that published is paced (Topics::AfterDeliveries): answered once the
  // deliveries of the publishing round before it are done (one round runs ahead, so a
  // pipelining publisher does not drain at every round), or once its own are.
  enum class Pacing : uint8_t { kOneRoundAhead, kEveryRound };

  Pipeline(Gateway& gateway, uint32_t loop, RoundSource& source, Pacing pacing);
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  Gateway& gateway() const { return *gw_; }
  uint32_t loop() const { return loop_; }

  // ---- The scheduler turn -------------------------------------------------------------------
  // The connection has work: runs a turn now (source.RunTurn), queues it with the loop's fair
  // scheduler, or has it refused (source.RefuseTurn). `wanted`: the units it would run (0:
  // nothing buffered, or it cannot run; the turn runs at once, unscheduled).
  void Schedule(uint32_t tenant, size_t wanted);
  bool queued() const { return hold_ != nullptr; }

  // ---- A round ------------------------------------------------------------------------------
  // Starts a round: clears the calls, reads the clocks once.
  void Begin();
  // Restarts the round's latency clock (a round resumed after its replies were written).
  void RestartClock();
  int64_t now_ms() const { return now_ms_; }     // wall clock at Begin
  uint64_t start_ns() const { return start_ns_; }  // steady clock at Begin
  Batch& batch() { return batch_; }
  std::vector<Call>& calls() { return batch_.calls; }
  const std::vector<Call>& calls() const { return batch_.calls; }

  // Whether a principal verified earlier still holds at the round's clock.
  Status StillValid(Principal& p) const;
  // The checks of one command's (RESP) or call's (gRPC) calls, calls()[first_call, end), in
  // order: permission by `access`, the cache's TTL cap, admission of one request of
  // `request_bytes` (skipped when it made no calls unless `admit_empty`). Anything but
  // kAllowed drops those calls from the round. `state` null: no limits (tenancy off).
  Verdict Verify(const Principal& p, std::string_view cache, CacheState* state,
                 size_t first_call, auth::Access access, uint64_t request_bytes,
                 bool admit_empty = false);
  // The refusal of the last Verify that answered kRefused.
  Refusal refusal() const { return refusal_; }
  // Admitted data commands since Begin (the usage's request count for Charge).
  uint32_t admitted() const { return admitted_; }
  // A command answered with the overload refusal (kOverloadedText), counted for its cache.
  static void CountOverloaded(CacheState* state) {
    if (state != nullptr) Tenancy::CountRefusal(*state, Refusal::kQueueFull);
  }
  // Permission alone, for calls made after Verify (a second round's keys).
  static bool Permitted(const Principal& p, std::string_view cache, std::span<const Call> calls,
                        auth::Access access);
  // A whole-cache call made outside the round (KEYS's job): the permission on the whole
  // cache, then admission of one request of `request_bytes`.
  Verdict VerifyCacheWide(const Principal& p, std::string_view cache, CacheState* state,
                          auth::Access access, uint64_t request_bytes);

  // The round's calls (those not `hold`) to the shards, with a reply grant taken for
  // `tenant`; when every reply is in and the round's publishes are paced, done() on this loop.
  void Submit(uint32_t tenant, std::function<void()> done);
  // Runs again the calls of [first, end) the reply grant refused (every other call is held,
  // keeping its reply); `largest`: with the most a round may have. Then Submit's path, without
  // pacing (the round was paced already). False: none to run.
  bool Resubmit(uint32_t first, uint32_t end, bool largest, std::function<void()> done);
  // A second batch of the round (a command's follow-up: MSETNX's writes after its reads), with
  // the checks made by the caller; done() on this loop.
  void SubmitFollowup(Batch& batch, std::function<void()> done) {
    gw_->Submit(loop_, &batch, std::move(done));
  }
  // Whether some call of the round was refused by its reply grant.
  bool AnyNotRun() const;
  ReplyGrant& reply_grant() { return grant_; }

  // ---- Finishing ----------------------------------------------------------------------------
  // Reads the clock once for the replies finished now; returns the round's elapsed µs.
  uint64_t Finishing();
  uint64_t elapsed_us() const { return elapsed_us_; }
  uint64_t finish_ns() const { return finish_ns_; }  // steady clock at Finishing
  // Charges `read_bytes` answered to the cache's read bucket, and records `requests` requests'
  // latency (as of Finishing) in its usage. `state` null: nothing.
  void Charge(CacheState* state, uint64_t read_bytes, uint32_t requests);
  // Charge for the round's admitted commands (admitted()), then starts counting anew.
  void ChargeRound(CacheState* state, uint64_t read_bytes);

  // A limit refusal's text ("request rate limit exceeded: ..."), made once per (cache,
  // reason, limits generation) with `prefix` before it: a flooding client is refused many
  // times a round. name_cache: see Tenancy::Describe.
  const std::string& RefusalText(const CacheState& c, Refusal r, std::string_view prefix,
                                 bool name_cache);

 private:
  uint32_t RunScheduled() override;
  std::shared_ptr<Pipeline> Self();
  void AfterShards();
  void Pace();

  Gateway* gw_;
  uint32_t loop_;
  RoundSource* source_;
  Pacing pacing_;
  Batch batch_;
  ReplyGrant grant_;
  std::function<void()> done_;  // Submit's, until the round is back and paced
  std::function<void()> paced_done_;  // a round waiting for the barrier before it
  std::shared_ptr<void> hold_;  // the connection, while queued with the scheduler
  int64_t now_ms_ = 0;
  uint64_t start_ns_ = 0;
  uint64_t finish_ns_ = 0;
  uint64_t elapsed_us_ = 0;
  uint32_t admitted_ = 0;
  Refusal refusal_ = Refusal::kNone;
  bool pace_outstanding_ = false;  // a pacing barrier is running
  // The cached refusal text.
  std::string refusal_text_;
  const CacheState* refusal_cache_ = nullptr;
  Refusal refusal_kind_ = Refusal::kNone;
  uint64_t refusal_generation_ = 0;
  bool refusal_named_ = false;
};

// A value's size against the cache's limit (max_item_bytes, or max_element_bytes for a
// collection element; `fallback` when the cache has no limits): kNone, or the refusal
// (counted). The front-end words it.
Refusal CheckValueSize(CacheState* state, uint64_t size, bool element, uint64_t fallback,
                       uint64_t* limit_out = nullptr);

}  // namespace cellar::gateway
