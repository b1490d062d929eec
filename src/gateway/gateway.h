// Gateway: the request pipeline between front-ends and shards. Front-ends hand it batches of
// protocol-neutral calls; it routes each call to the shard owning (cache id, key), runs local
// calls inline and sends one message per remote shard, and calls back on the origin thread
// when every reply is in. Authentication, authorization and tenant limits slot in here.
//
// Threads: shard i lives on event loop i. Submit and the callbacks run on the caller's loop;
// a Batch is touched by a remote shard only between the send and the reply message, while its
// owner waits, so no lock is needed.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <absl/base/thread_annotations.h>
#include <boost/asio/io_context.hpp>

#include "api/request.h"
#include "auth/permissions.h"
#include "auth/token.h"
#include "common/serial_worker.h"
#include "common/status.h"
#include "gateway/stats.h"

namespace cellar::storage {
class Engine;
}
namespace cellar::control {
class CacheRegistry;
}
namespace cellar::auth {
class SigningKeyStore;
}
namespace cellar::topics {
class Topics;
}

namespace cellar::gateway {

class Tenancy;
class LoopScheduler;
class Forwarder;
enum class MetadataPart : uint8_t;  // forward.h
class Batch;

struct Call {
  api::Request req;
  api::Reply reply;
  // Steady-clock ms after which the caller no longer waits (0: none): the shard then skips
  // the call and answers kDeadlineExceeded instead of doing work nobody will read.
  int64_t deadline_ms = 0;
  // Set by the shard when the round's reply budget (Batch::set_reply_budget) refused the call:
  // it did not run (or, read-only, its reply was dropped), so it may run in a later round.
  bool not_run = false;
  // Set by the front-end to leave a call out of a Submit (it ran in an earlier one).
  bool hold = false;
  // Set by the node a call was forwarded to when it no longer owns the call's slot (the
  // sender's map is older): not run; the sender routes it again (forward.h).
  bool moved = false;
};

// A slot range moving from this node to another (frontend/internal/migrate.h). While it is
// set, writes to those slots are recorded once they ran on their shard (dirty: copied again
// before the move ends, and read only after they ran); while paused, new ones wait (parked)
// and go once the move commits or is aborted, routed by the routes then in force. Once ended
// it never un-pauses: a write that still finds it (a Submit that began before the end) is
// routed again instead of running here.
struct MigrationState {
  uint32_t first = 0, last = 0;
  bool Covers(uint32_t slot) const { return slot >= first && slot <= last; }

  std::mutex mu;
  bool paused = false;                                  // guarded by mu
  bool ended = false;                                   // guarded by mu
  bool flushed = false;  // a cache-wide flush ran here meanwhile: the copy is void; guarded by mu
  std::set<std::pair<uint32_t, std::string>> dirty;     // (cache id, key); guarded by mu
  struct Parked {
    Batch* batch;
    uint32_t origin;
    uint32_t index;
  };
  std::vector<Parked> parked;  // guarded by mu
  int64_t paused_at_ns = 0;    // guarded by mu
};

// One round of calls from a connection. Reused across rounds to keep allocations off the
// hot path: clear `calls`, fill it, Submit.
class Batch {
 public:
  std::vector<Call> calls;

  // Whether some call of the round is `op` (a round that published is paced: topics.h).
  bool Has(api::Op op) const {
    for (const Call& c : calls) {
      if (c.req.op == op) return true;
    }
    return false;
  }

  // Calls forwarded here by another node (forward.h): run on this node's shards, never sent on.
  void set_local_only(bool on) { local_only_ = on; }

  // Bytes the round's replies may take (reply_memory.h): once spent, the shards refuse the
  // rest of the round's calls without running them; a read-only call whose reply passes
  // what is left is refused after running. INT64_MAX: no bound. Set before Submit.
  void set_reply_budget(int64_t bytes) { reply_left_.store(bytes, std::memory_order_relaxed); }
  // The budget given and what the replies took of it (the overshoot of writes included).
  int64_t reply_left() const { return reply_left_.load(std::memory_order_relaxed); }

 private:
  friend class Gateway;
  void Finish() {
    if (--pending_ != 0) return;
    // Moved out first: the callback usually owns the batch's owner (a shared_ptr to the
    // connection), and keeping it here would make a cycle that never frees either.
    std::function<void()> done = std::move(done_);
    done_ = nullptr;
    done();
  }
  std::vector<std::vector<uint32_t>> by_shard_;  // call indices per shard
  std::vector<std::vector<uint32_t>> by_peer_;   // call indices per other node (forward.h)
  int pending_ = 0;
  bool local_only_ = false;
  std::atomic<int64_t> reply_left_{INT64_MAX};  // charged by the shards' parts
  std::function<void()> done_;
};

struct Options {
  bool dev_no_auth = false;
  std::string admin_key_sha256;  // hex (control::Sha256Hex): the admin key is compared by hash
  auth::SigningKeyStore* keys = nullptr;  // tokens; null: only the admin key authenticates
  // On a fleet: until when (MonotonicNanos) this node's cluster lease is known alive; writes
  // in rounds that start later are refused (Refusal::kNotServing). Null: a single node.
  const std::atomic<uint64_t>* serving_until_ns = nullptr;
  // Gateway::RunControl: a metadata change that waited longer than this behind others is not
  // attempted (its caller has likely given up).
  int64_t control_wait_ms = 10'000;
};

// Who a credential is: the bootstrap admin key is the super-user of tenant `default`; a token
// is whatever it grants, within its tenant, until it expires or its key is revoked.
struct Principal {
  uint32_t tenant = 1;  // control::kDefaultTenant
  auth::Permissions perms;
  int64_t expires_at = 0;  // Unix seconds; 0: never
  int64_t not_after = 0;   // Unix seconds; 0: none (auth::Claims::not_after)
  auth::TokenKind kind = auth::TokenKind::kApi;
  std::string token_id;
  std::string key_id;              // empty for the admin key
  uint64_t key_generation = 0;     // SigningKeyStore::generation() when verified
};

// The one permission check of a data call: a keyed call needs a grant covering its key; a
// cache-wide call (api::IsCacheWide: SCAN, DBSIZE, FLUSHDB...) a grant on the whole cache.
inline bool CallAllowed(const auth::Permissions& perms, std::string_view cache,
                        const api::Request& req, auth::Access access) {
  if (perms.super_user) return true;
  if (api::IsCacheWide(req.op)) return auth::AllowsWholeCache(perms, cache, access);
  return auth::Allows(perms, cache, req.key, access);
}

// Credentials refused by Authenticate or StillValid, by reason.
enum class AuthRefusal : uint8_t { kMissing, kInvalid, kExpired, kRevoked, kCount };
inline constexpr metrics::Def kMovePause{
    "cellar_move_pause_seconds", metrics::Type::kHistogram,
    "How long writes to slots moving away from this node were paused (parked) per move: from "
    "the pause to the commit or abort.", ""};
inline constexpr metrics::Def kMoveParkedWrites{
    "cellar_move_parked_writes_total", metrics::Type::kCounter,
    "Writes that waited for a move of their slot to end (then ran at the new owner).", ""};
inline constexpr metrics::Def kAuthRefusals{
    "cellar_auth_refusals_total", metrics::Type::kCounter,
    "Credentials refused, by reason: missing (no token), invalid (not a token of this server's "
    "keys, a refresh token, or its tenant was deleted), expired, revoked (its signing key was "
    "revoked).",
    "reason"};

class Gateway {
 public:
  Gateway(std::vector<boost::asio::io_context*> loops, std::vector<storage::Engine*> engines,
          control::CacheRegistry* registry, Options options);
  ~Gateway();

  uint32_t num_shards() const { return static_cast<uint32_t>(loops_.size()); }
  // The shards a cache-wide call (SCAN, KEYS, DBSIZE, FLUSHDB, RANDOMKEY, INFO) fans out to
  // from loop `origin`: this node's, and on a fleet every slot owner's (forward.h,
  // Routes::FleetShards); a call with req.shard past num_shards() goes to its node. Called on
  // that loop's thread.
  uint32_t CacheWideShards(uint32_t origin);
  boost::asio::io_context& loop(uint32_t i) { return *loops_[i]; }
  const Options& options() const { return options_; }
  // Pub/sub: kPublish calls run on the topic's owner loop through it; deleting a cache ends
  // its subscriptions. Set before loops serve traffic; may stay null (no topics).
  void set_topics(topics::Topics* topics) { topics_ = topics; }
  topics::Topics* topics() const { return topics_; }
  // Limits, admission and usage per cache (tenancy.h); set before loops serve traffic.
  void set_tenancy(Tenancy* t) { tenancy_ = t; }
  Tenancy* tenancy() const { return tenancy_; }
  // The loops' fair schedulers (scheduler.h), one per loop; empty: none.
  void set_schedulers(std::vector<LoopScheduler*> s) { schedulers_ = std::move(s); }
  LoopScheduler* scheduler(uint32_t loop) const {
    return loop < schedulers_.size() ? schedulers_[loop] : nullptr;
  }

  // Runs batch->calls; calls done() on loop `origin` when all replies are in (possibly inline).
  void Submit(uint32_t origin, Batch* batch, std::function<void()> done);

  // Identity: which cache a credential may bind to. Today the admin key opens every cache.
  // UNAUTHENTICATED (with what is wrong, never the secret) for anything else.
  StatusOr<Principal> Authenticate(std::string_view secret) const;
  // Whether a principal verified earlier still holds at `now_s`: not expired, and, when a
  // signing key was rotated or revoked since, its key not revoked.
  Status StillValid(Principal& p, int64_t now_s) const;
  bool IsAdminKey(std::string_view secret) const;
  // Writes of a round that started at now_ns (MonotonicNanos) may be acknowledged
  // (Options::serving_until_ns).
  bool serving_writes(uint64_t now_ns) const {
    return options_.serving_until_ns == nullptr ||
           now_ns < options_.serving_until_ns->load(std::memory_order_acquire);
  }
  // kAuthRefusals, read from this gateway's counts.
  metrics::Source AuthMetrics() const;
  // kMovePause and kMoveParkedWrites (moves of slots away from this node).
  metrics::Source MoveMetrics() const;
  // A cache of a tenant (control::kDefaultTenant = 1 is `default`).
  StatusOr<uint32_t> ResolveCache(uint32_t tenant, std::string_view cache_name) const;
  // See CacheRegistry::generation.
  uint64_t CacheGeneration() const;
  // A tenant's caches' names, sorted.
  std::vector<std::string> CacheNames(uint32_t tenant) const;
  control::CacheRegistry& registry() { return *registry_; }

  // Metadata commits wait on the store (on a fleet an etcd round trip, or its deadline while
  // etcd is slow or gone), which an event loop must not: `work` runs on the gateway's control
  // thread (one task at a time, in the order posted), then then(OK) on loop `origin`. A change
  // is not attempted, and then(UNAVAILABLE saying why) runs instead, when kMaxControlQueued
  // wait already or when it waited Options::control_wait_ms behind others (the store is not
  // answering: better refused than made long after its caller gave up). At exit (StopControl)
  // a task not started is dropped: neither runs. Called from any thread.
  static constexpr size_t kMaxControlQueued = 1000;
  void RunControl(uint32_t origin, std::function<void()> work, std::function<void(Status)> then);
  // Waits for the control task running, drops the queued ones (their loops are gone).
  void StopControl();

  // Control plane operations on a tenant's cache; each answers on loop `origin` once every
  // shard has applied it. The registry commit runs on the control thread (RunControl).
  void CreateCache(uint32_t origin, uint32_t tenant, std::string name,
                   std::function<void(Status)> done);
  void DeleteCache(uint32_t origin, uint32_t tenant, std::string name,
                   std::function<void(Status)> done);
  // Flushes the cache on every shard of the fleet (as FLUSHDB: kFlushCache per fleet shard).
  void FlushCache(uint32_t origin, uint32_t tenant, std::string name,
                  std::function<void(StatusOr<uint64_t>)> done);
  void CollectStats(uint32_t origin, std::function<void(Stats)> done);

  // On a fleet: sends calls whose slot another node owns there (forward.h). Set before serving.
  void set_forwarder(Forwarder* f) { forwarder_ = f; }
  Forwarder* forwarder() const { return forwarder_; }

  // Slots leaving this node (MigrationState): from Begin, writes to them are recorded; Pause
  // parks new ones; End (the move committed, or was aborted) lets the parked writes go, routed
  // by the routes then in force. One at a time. Any thread.
  void BeginMigration(std::shared_ptr<MigrationState> m);
  void PauseMigration(MigrationState& m);
  void EndMigration();
  // Runs batch.calls[indices] again through Submit on loop `origin` (routed afresh: a parked
  // write once its move ends, a call a peer answered `moved`), their replies back into the
  // batch, which finishes only after. Loop `origin` only; after `delay_ms` if > 0.
  void Resubmit(uint32_t origin, Batch& batch, std::vector<uint32_t> indices, int hops,
                int delay_ms = 0);
  // done() on loop 0 once every call that any loop handed to any shard before this call has
  // run there (each loop's messages to a shard go in order, and this follows them).
  void Barrier(std::function<void()> done);

  // Makes caches of the registry known to every shard; blocking, before loops serve traffic.
  void LoadCachesAtStart();
  // Makes the shards hold the registry's caches again after it changed, wherever the change
  // was made (on a fleet, on another node): creates on every shard the caches they lack and
  // drops (items, subscriptions) those removed. Posted to the loops; call from any thread.
  void SyncCaches();
  // Whether the shards hold cache `id` (or have been sent it, ahead of any call submitted
  // after this returns): a call for an unknown one is answered NOT_FOUND by its shard. Takes a
  // lock: for the rare NOT_FOUND reply, never per call.
  bool KnowsCache(uint32_t id);
  // done() (on the registry's thread) once the catalog was re-read from the metadata store
  // and the shards sent what changed (CacheRegistry::RefreshAsync): a cache committed on any
  // node before this call is then known here.

  // On a fleet: done() on loop `origin` once the other nodes applied the metadata change this
  // node committed at `revision` (Forwarder::SyncMetadata); at once on a single node. Called
  // on loop `origin`. CreateCache and DeleteCache do it themselves.
  void SyncMetadata(uint32_t origin, MetadataPart part, int64_t revision,
                    std::function<void()> done);
  // done() once this node applied `part` as of `revision` (its view's WhenVisible), on
  // whichever thread that happens; and a read of `part` from the store (RefreshAsync).
  void WhenMetadataSeen(MetadataPart part, int64_t revision, std::function<void()> done);
  void CatchUpMetadata(MetadataPart part, std::function<void()> done);

 private:
  // `done`, called once the other nodes applied the catalog change committed at `revision`
  // (SyncMetadata), with the status it was given.
  std::function<void(Status)> OnceCatalogSynced(uint32_t origin, int64_t revision,
                                                std::function<void(Status)> done);
  // CreateCache's and DeleteCache's second half, on loop `origin` once the registry committed.
  void CreatedCache(uint32_t origin, uint32_t tenant, uint32_t id, int64_t revision,
                    std::function<void(Status)> done);
  void DeletedCache(uint32_t origin, uint32_t id, int64_t revision,
                    std::function<void(Status)> done);
  // Runs fn(shard index, engine) on every shard's loop, then done() on loop `origin`.
  void ForEachShard(uint32_t origin, std::function<void(uint32_t, storage::Engine&)> fn,
                    std::function<void()> done);

  // A message between loops: run a batch's part on shard `to`, or tell `to` (the origin) that
  // a part is done. Messages are queued per (from, to) pair and sent once per loop turn, so a
  // loop that serves many connections wakes each other loop once, not once per request.
  struct Message {
    Batch* batch;
    uint32_t origin;
    bool done;  // false: run the batch's requests for the receiving shard; true: part done
  };
  struct alignas(64) Outbox {
    std::vector<std::vector<Message>> to;  // by destination loop
    bool flush_scheduled = false;
  };
  void Send(uint32_t from, uint32_t to, Message m);
  void Flush(uint32_t from);
  void Deliver(uint32_t at, std::vector<Message>& messages);
  // Runs the batch's requests that belong to `shard`, on that shard's loop.
  void RunPart(Batch& batch, uint32_t shard);

  std::vector<boost::asio::io_context*> loops_;
  std::vector<storage::Engine*> engines_;
  control::CacheRegistry* registry_;
  SerialWorker control_{"cellar-control"};
  Options options_;
  void NoteWrite(const api::Request& req);

  Forwarder* forwarder_ = nullptr;
  std::atomic<MigrationState*> migrating_{nullptr};
  std::shared_ptr<MigrationState> migration_;  // keeps migrating_ alive; guarded by sync_mu_
  std::vector<std::shared_ptr<MigrationState>> past_migrations_;  // never freed while serving
  // Move pauses: a histogram by kMovePauseBoundsUs (written under sync_mu_, read relaxed).
  static constexpr uint64_t kMovePauseBoundsUs[] = {1'000,   2'000,   5'000,     10'000,
                                                    20'000,  50'000,  100'000,   200'000,
                                                    500'000, 1'000'000, 2'000'000, UINT64_MAX};
  std::array<std::atomic<uint64_t>, std::size(kMovePauseBoundsUs)> move_pauses_{};
  std::atomic<uint64_t> move_pause_sum_us_{0}, move_parked_{0};
  std::mutex sync_mu_;
  std::map<uint32_t, uint32_t> synced_ ABSL_GUARDED_BY(sync_mu_);  // id -> tenant, on the shards
  topics::Topics* topics_ = nullptr;
  Tenancy* tenancy_ = nullptr;
  std::vector<LoopScheduler*> schedulers_;
  std::vector<Outbox> outboxes_;  // outboxes_[i] is touched only by loop i
  // Refusals by AuthRefusal (relaxed: counted from every loop, read by /metrics).
  mutable std::array<std::atomic<uint64_t>, static_cast<size_t>(AuthRefusal::kCount)>
      auth_refusals_{};
  Status Refuse(AuthRefusal why, Status st) const {
    auth_refusals_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
    return st;
  }
};

}  // namespace cellar::gateway
