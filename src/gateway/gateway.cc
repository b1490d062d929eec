#include "gateway/gateway.h"

#include <chrono>
#include <map>

#include <absl/container/flat_hash_map.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "auth/token.h"
#include "common/clock.h"
#include "common/logging.h"
#include "control/admin_key.h"
#include "gateway/forward.h"
#include "control/cache_registry.h"
#include "gateway/reply_memory.h"
#include "gateway/tenancy.h"
#include "routing/router.h"
#include "storage/engine/engine.h"
#include "topics/topics.h"

namespace cellar::gateway {

namespace asio = boost::asio;

Gateway::Gateway(std::vector<asio::io_context*> loops, std::vector<storage::Engine*> engines,
                 control::CacheRegistry* registry, Options options)
    : loops_(std::move(loops)),
      engines_(std::move(engines)),
      registry_(registry),
      options_(std::move(options)),
      outboxes_(loops_.size()) {
  for (auto& o : outboxes_) o.to.resize(loops_.size());
}

Gateway::~Gateway() { StopControl(); }

void Gateway::RunControl(uint32_t origin, std::function<void()> work,
                         std::function<void(Status)> then) {
  if (control_.queued() >= kMaxControlQueued) {
    asio::post(*loops_[origin], [then = std::move(then)] {
      then(Status(Code::kUnavailable,
                  "too many metadata changes are waiting for the metadata store; retry"));
    });
    return;
  }
  const auto posted = std::chrono::steady_clock::now();
  control_.Post([this, origin, posted, work = std::move(work), then = std::move(then)]() mutable {
    const auto t0 = std::chrono::steady_clock::now();
    if (t0 - posted > std::chrono::milliseconds(options_.control_wait_ms)) {
      asio::post(*loops_[origin], [this, then = std::move(then)] {
        then(Status(Code::kUnavailable,
                    fmt::format("this change waited over {:g} s behind others for the metadata "
                                "store and was not made; retry",
                                static_cast<double>(options_.control_wait_ms) / 1000)));
      });
      return;
    }
    work();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
    if (ms >= 1000) {
      LOG_WARN("msg=\"a metadata change waited on the store\" ms={} queued_behind={}", ms,
               control_.queued());
    }
    asio::post(*loops_[origin], [then = std::move(then)] { then(Status::Ok()); });
  });
}

void Gateway::StopControl() { control_.Stop(); }

void Gateway::Submit(uint32_t origin, Batch* batch, std::function<void()> done) {
  const uint32_t n = num_shards();
  if (batch->by_shard_.size() != n) batch->by_shard_.resize(n);
  for (auto& v : batch->by_shard_) v.clear();
  // On a fleet, keyed calls whose slot another node owns go there (forward.h).
  const Routes* routes =
      forwarder_ != nullptr && !batch->local_only_ ? forwarder_->RoutesFor(origin) : nullptr;
  if (routes != nullptr) {
    if (batch->by_peer_.size() < routes->peers.size()) batch->by_peer_.resize(routes->peers.size());
    for (auto& v : batch->by_peer_) v.clear();
  }
  MigrationState* moving = migrating_.load(std::memory_order_acquire);
  // On a fleet, writes run here only while this node's lease is known alive, whatever path
  // they came by (a client's round was checked by its pipeline already; a peer's forwarded
  // calls, resubmissions and moves' copies were not).
  const bool writable = options_.serving_until_ns == nullptr || serving_writes(MonotonicNanos());
  int parked = 0;
  std::vector<uint32_t> late;  // writes that found their move ended: routed again
  for (uint32_t i = 0; i < batch->calls.size(); ++i) {
    if (batch->calls[i].hold) continue;
    const api::Request& req = batch->calls[i].req;
    if (req.shard >= 0) {
      // A cache-wide call for one shard of the fleet: this node's, or a peer's (forward.h).
      const uint32_t s = static_cast<uint32_t>(req.shard);
      if (s >= n && routes != nullptr) {
        uint32_t remote = 0;
        const int peer = routes->PeerOfShard(s, n, &remote);
        if (peer >= 0) {
          batch->by_peer_[static_cast<size_t>(peer)].push_back(i);
        } else {
          batch->calls[i].reply.status =
              Status(Code::kUnavailable, "the cluster changed during the call; retry");
        }
        continue;
      }
      batch->by_shard_[s % n].push_back(i);
      continue;
    }
    const uint64_t hash = KeyHash(req.cache_id, req.key);
    const uint32_t slot = routing::SlotOf(hash);
    if (routes != nullptr) {
      const int peer = routes->Owner(slot);
      if (peer >= 0) {
        batch->by_peer_[static_cast<size_t>(peer)].push_back(i);
        continue;
      }
      if (peer == Routes::kNoMap) {
        static std::atomic<int> logged{0};  // the first few only: it is normal at start-up
        if (logged.fetch_add(1) < 3) {
          LOG_WARN("msg=\"keyed call refused: no slot map here yet\" loop={} epoch={} peers={}",
                   origin, routes->epoch, routes->peers.size());
        }
        batch->calls[i].reply.status =
            Status(Code::kUnavailable, "the cluster has no slot map yet; retry");
        continue;
      }
    }
    // A write to a slot on its way to another node waits, once the move is paused, until it
    // ends (RunPart records the others once they ran). So does a publish: the topic's state
    // is handed over while paused.
    if (moving != nullptr && moving->Covers(slot) && !api::IsReadOnly(req.op)) {
      std::lock_guard lock(moving->mu);
      if (moving->ended) {
        late.push_back(i);
        ++parked;
        continue;
      }
      if (moving->paused) {
        moving->parked.push_back({batch, origin, i});
        ++parked;
        continue;
      }
    }
    if (!writable && !api::IsReadOnly(req.op)) {
      batch->calls[i].reply.status =
          Status(Code::kUnavailable,
                 "Not serving writes: the cluster lease of the node owning this key is not "
                 "known alive (etcd unreachable or the node was paused); retry");
      continue;
    }
    batch->by_shard_[routing::ShardOf(hash, n)].push_back(i);
  }
  batch->done_ = std::move(done);
  batch->pending_ = 1 + parked;  // held until the local part has run (and each parked call)
  if (!late.empty()) {
    asio::post(*loops_[origin], [this, origin, batch, late = std::move(late)]() mutable {
      const size_t n = late.size();
      Resubmit(origin, *batch, std::move(late), 0);
      for (size_t k = 0; k < n; ++k) batch->Finish();
    });
  }
  if (routes != nullptr) {
    for (size_t p = 0; p < routes->peers.size(); ++p) {
      if (batch->by_peer_[p].empty()) continue;
      ++batch->pending_;
      forwarder_->Forward(origin, *routes, static_cast<int>(p), *batch, batch->by_peer_[p],
                          [this, batch, origin, sent = batch->by_peer_[p]] {
                            // Calls the peer no longer owns go again, by the routes then.
                            std::vector<uint32_t> moved;
                            for (uint32_t i : sent) {
                              if (batch->calls[i].moved) moved.push_back(i);
                            }
                            if (!moved.empty()) Resubmit(origin, *batch, std::move(moved), 1, 5);
                            batch->Finish();
                          });
    }
  }
  for (uint32_t s = 0; s < n; ++s) {
    if (s == origin || batch->by_shard_[s].empty()) continue;
    ++batch->pending_;
    Send(origin, s, Message{batch, origin, false});
  }
  if (origin < n) RunPart(*batch, origin);
  batch->Finish();
}

// A call a peer answered `moved` (or one not sent: its owner's address is not known yet) is
// routed again, at most this many times, 5 ms apart (about 2 s: time for a map change to
// arrive even on a loaded machine): then it is answered UNAVAILABLE, which clients retry.
constexpr int kMaxHops = 400;

void Gateway::Resubmit(uint32_t origin, Batch& batch, std::vector<uint32_t> indices, int hops,
                       int delay_ms) {
  ++batch.pending_;
  auto run = [this, origin, &batch, indices = std::move(indices), hops]() {
    auto sub = std::make_shared<Batch>();
    sub->calls.resize(indices.size());
    for (size_t k = 0; k < indices.size(); ++k) {
      const Call& from = batch.calls[indices[k]];
      sub->calls[k].req = from.req;  // views into the front-end's buffer: held until batch ends
      sub->calls[k].deadline_ms = from.deadline_ms;
    }
    sub->set_reply_budget(batch.reply_left());
    Submit(origin, sub.get(), [this, sub, origin, &batch, indices, hops] {
      std::vector<uint32_t> again;
      for (size_t k = 0; k < indices.size(); ++k) {
        Call& to = batch.calls[indices[k]];
        Call& from = sub->calls[k];
        if (from.moved && hops < kMaxHops) {
          again.push_back(indices[k]);
          continue;
        }
        to.reply = std::move(from.reply);
        to.not_run = from.not_run;
        to.moved = false;
        if (from.moved) {
          to.reply = api::Reply();
          to.reply.status =
              Status(Code::kUnavailable, "the key's slot is moving between nodes; retry");
        }
      }
      if (!again.empty()) Resubmit(origin, batch, std::move(again), hops + 1, 5);
      batch.Finish();
    });
  };
  if (delay_ms <= 0) {
    run();
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(*loops_[origin]);
  timer->expires_after(std::chrono::milliseconds(delay_ms));
  timer->async_wait([timer, run = std::move(run)](const boost::system::error_code&) { run(); });
}

void Gateway::Barrier(std::function<void()> done) {
  const uint32_t n = num_shards();
  auto left = std::make_shared<std::atomic<uint32_t>>(n * n);
  auto fn = std::make_shared<std::function<void()>>(std::move(done));
  // One empty batch per (loop, shard): a "part done" message to the shard finishes it there.
  auto marks = std::make_shared<std::vector<Batch>>(n * n);
  for (uint32_t i = 0; i < n * n; ++i) {
    Batch& b = (*marks)[i];
    b.pending_ = 1;
    b.done_ = [this, left, fn, marks] {
      if (left->fetch_sub(1) == 1) asio::post(*loops_[0], [fn] { (*fn)(); });
    };
  }
  for (uint32_t from = 0; from < n; ++from) {
    // Posted to loop `from`: it runs after that loop's earlier handlers, whose messages to the
    // shards are then queued (or sent) already; these follow them in the same queues.
    asio::post(*loops_[from], [this, from, n, marks] {
      for (uint32_t s = 0; s < n; ++s) Send(from, s, Message{&(*marks)[from * n + s], s, true});
    });
  }
}

void Gateway::BeginMigration(std::shared_ptr<MigrationState> m) {
  std::lock_guard lock(sync_mu_);
  if (migration_) past_migrations_.push_back(migration_);
  migration_ = std::move(m);
  migrating_.store(migration_.get(), std::memory_order_release);
}

void Gateway::PauseMigration(MigrationState& m) {
  std::lock_guard lock(m.mu);
  if (m.ended) return;
  m.paused = true;
  m.paused_at_ns = static_cast<int64_t>(MonotonicNanos());
}

void Gateway::EndMigration() {
  std::vector<MigrationState::Parked> parked;
  {
    std::lock_guard lock(sync_mu_);
    if (!migration_) return;
    migrating_.store(nullptr, std::memory_order_release);
    {
      std::lock_guard m(migration_->mu);
      migration_->ended = true;
      parked = std::move(migration_->parked);
      migration_->parked.clear();
      if (migration_->paused_at_ns != 0) {
        const uint64_t us =
            (MonotonicNanos() - static_cast<uint64_t>(migration_->paused_at_ns)) / 1000;
        size_t b = 0;
        while (us > kMovePauseBoundsUs[b]) ++b;  // the last bound is UINT64_MAX
        move_pauses_[b].fetch_add(1, std::memory_order_relaxed);
        move_pause_sum_us_.fetch_add(us, std::memory_order_relaxed);
      }
      move_parked_.fetch_add(parked.size(), std::memory_order_relaxed);
    }
    past_migrations_.push_back(std::move(migration_));
    migration_.reset();
  }
  // Each parked write runs on its connection's loop, routed by the routes in force now.
  std::map<std::pair<uint32_t, Batch*>, std::vector<uint32_t>> by_batch;
  for (const auto& p : parked) by_batch[{p.origin, p.batch}].push_back(p.index);
  for (auto& [key, indices] : by_batch) {
    const uint32_t origin = key.first;
    Batch* batch = key.second;
    asio::post(*loops_[origin], [this, origin, batch, indices = std::move(indices)]() mutable {
      // The parked calls' own units of pending_ (Submit counted one each) end here; the
      // resubmission holds its own.
      const size_t n = indices.size();
      Resubmit(origin, *batch, std::move(indices), 0);
      for (size_t k = 0; k < n; ++k) batch->Finish();
    });
  }
}

void Gateway::Send(uint32_t from, uint32_t to, Message m) {
  Outbox& box = outboxes_[from];
  box.to[to].push_back(m);
  if (!box.flush_scheduled) {
    box.flush_scheduled = true;
    // Runs after the handlers that are already ready on this loop (the other reads of this
    // turn), so their messages leave together.
    asio::post(*loops_[from], [this, from] { Flush(from); });
  }
}

void Gateway::Flush(uint32_t from) {
  Outbox& box = outboxes_[from];
  box.flush_scheduled = false;
  for (uint32_t to = 0; to < box.to.size(); ++to) {
    if (box.to[to].empty()) continue;
    asio::post(*loops_[to], [this, to, messages = std::move(box.to[to])]() mutable {
      Deliver(to, messages);
    });
    box.to[to].clear();  // moved-from: make it a valid empty vector again
  }
}

namespace {
// Built once (the limit is set before serving): a pipeline past its grant refuses many calls.
Status ReplyTooLarge() {
  static const std::string text =
      "reply too large: the replies of this request (or pipeline) passed " +
      std::to_string(ReplyMemory::Get().options().max_round_bytes) +
      " bytes (--max-reply-bytes), or the server's reply memory is spent; ask for less at a "
      "time";
  return Status(Code::kResourceExhausted, text);
}
}  // namespace

void Gateway::RunPart(Batch& batch, uint32_t shard) {
  storage::Engine& engine = *engines_[shard];
  int64_t now = -1;  // read once, and only if some call has a deadline
  engine.BeginBatch();
  for (uint32_t i : batch.by_shard_[shard]) {
    Call& call = batch.calls[i];
    if (call.deadline_ms != 0) {
      if (now < 0) now = SteadyMillis();
      if (now >= call.deadline_ms) {
        call.reply.status = Status(Code::kDeadlineExceeded);
        continue;
      }
    }
    // The round's reply budget (Batch::set_reply_budget): spent means the rest does not run.
    const int64_t left = batch.reply_left_.load(std::memory_order_relaxed);
    if (left <= 0) {
      call.reply.status = ReplyTooLarge();
      call.not_run = true;
      ReplyMemory::Get().CountRefusedCall();
      continue;
    }
    if (call.req.op == api::Op::kPublish) {
      if (topics_ != nullptr) {
        topics_->Publish(shard, call.req, call.reply);
      } else {
        call.reply.status = Status(Code::kUnimplemented, "topics are not served here");
      }
      continue;
    }
    const bool read_only = api::IsReadOnly(call.req.op);
    if (read_only && left != INT64_MAX) call.reply.items.set_byte_cap(static_cast<size_t>(left));
    engine.Execute(call.req, call.reply);
    if (!read_only) NoteWrite(call.req);
    if (left == INT64_MAX) continue;
    const int64_t bytes = static_cast<int64_t>(call.reply.footprint());
    if (read_only && (call.reply.items.overflowed() || bytes > left)) {
      // It changed nothing: refuse it rather than hold a reply past the budget.
      call.reply = api::Reply();
      call.reply.status = ReplyTooLarge();
      call.not_run = true;
      batch.reply_left_.store(0, std::memory_order_relaxed);
      ReplyMemory::Get().CountRefusedCall();
      continue;
    }
    batch.reply_left_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  engine.EndBatch();
}

// A write that ran on a shard, for the move of its slot if one is under way (MigrationState):
// recorded after it ran, so the copy that reads it again reads what it wrote.
void Gateway::NoteWrite(const api::Request& req) {
  MigrationState* m = migrating_.load(std::memory_order_acquire);
  if (m == nullptr) return;
  if (req.op == api::Op::kFlushCache) {
    std::lock_guard lock(m->mu);
    m->flushed = true;
    return;
  }
  if (req.shard >= 0 || !m->Covers(routing::SlotOf(KeyHash(req.cache_id, req.key)))) return;
  std::lock_guard lock(m->mu);
  m->dirty.emplace(req.cache_id, std::string(req.key));
}

void Gateway::Deliver(uint32_t at, std::vector<Message>& messages) {
  for (const Message& m : messages) {
    if (m.done) {
      m.batch->Finish();
      continue;
    }
    RunPart(*m.batch, at);
    Send(at, m.origin, Message{m.batch, m.origin, true});
  }
}

bool Gateway::IsAdminKey(std::string_view secret) const {
  return !options_.admin_key_sha256.empty() &&
         control::SecretEquals(control::Sha256Hex(secret), options_.admin_key_sha256);
}

uint64_t Gateway::CacheGeneration() const { return registry_->generation(); }

std::vector<std::string> Gateway::CacheNames(uint32_t tenant) const {
  std::vector<std::string> names;
  for (const auto& info : registry_->List(tenant)) names.push_back(info.name);
  return names;
}

StatusOr<uint32_t> Gateway::ResolveCache(uint32_t tenant, std::string_view cache_name) const {
  auto info = registry_->Find(tenant, cache_name);
  if (!info) return Status(Code::kNotFound, "cache not found");
  return info->id;
}

StatusOr<Principal> Gateway::Authenticate(std::string_view secret) const {
  Principal p;
  p.tenant = control::kDefaultTenant;
  if ((options_.dev_no_auth && secret.empty()) || IsAdminKey(secret)) {
    p.perms.super_user = true;
    return p;
  }
  if (secret.empty()) {
    return Refuse(AuthRefusal::kMissing, Status(Code::kUnauthenticated, "missing token"));
  }
  if (options_.keys == nullptr) {
    return Refuse(AuthRefusal::kInvalid, Status(Code::kUnauthenticated, "invalid key"));
  }
  p.key_generation = options_.keys->generation();
  const int64_t now_s = SystemClock::Get()->NowMillis() / 1000;
  auto claims = auth::Verify(*options_.keys, secret, now_s);
  if (!claims.ok()) {
    const std::string_view why = claims.status().message();
    return Refuse(why == auth::kExpiredText   ? AuthRefusal::kExpired
                  : why == auth::kRevokedText ? AuthRefusal::kRevoked
                                              : AuthRefusal::kInvalid,
                  claims.status());
  }
  if (claims->kind == auth::TokenKind::kRefresh) {
    return Refuse(AuthRefusal::kInvalid,
                  Status(Code::kUnauthenticated, "a refresh token only refreshes; use its API key"));
  }
  auto tenant = registry_->FindTenant(claims->tenant);
  if (!tenant) {
    return Refuse(AuthRefusal::kInvalid,
                  Status(Code::kUnauthenticated, "the token's tenant does not exist"));
  }
  p.tenant = tenant->id;
  p.perms = std::move(claims->perms);
  p.expires_at = claims->expires_at;
  p.not_after = claims->not_after;
  p.kind = claims->kind;
  p.token_id = std::move(claims->token_id);
  p.key_id = std::move(claims->key_id);
  return p;
}

Status Gateway::StillValid(Principal& p, int64_t now_s) const {
  if (p.expires_at != 0 && now_s >= p.expires_at) {
    return Refuse(AuthRefusal::kExpired,
                  Status(Code::kUnauthenticated, std::string(auth::kExpiredText)));
  }
  if (p.key_id.empty() || options_.keys == nullptr) return Status::Ok();
  const uint64_t generation = options_.keys->generation();
  if (generation == p.key_generation) return Status::Ok();
  auto key = options_.keys->Find(p.key_id);
  if (key == nullptr || key->revoked) {
    return Refuse(AuthRefusal::kRevoked,
                  Status(Code::kUnauthenticated, std::string(auth::kRevokedText)));
  }
  p.key_generation = generation;
  return Status::Ok();
}

void Gateway::ForEachShard(uint32_t origin, std::function<void(uint32_t, storage::Engine&)> fn,
                           std::function<void()> done) {
  struct State {
    std::function<void(uint32_t, storage::Engine&)> fn;
    std::function<void()> done;
    uint32_t pending;
  };
  auto state = std::make_shared<State>(State{std::move(fn), std::move(done), num_shards()});
  for (uint32_t s = 0; s < num_shards(); ++s) {
    asio::post(*loops_[s], [this, state, s, origin]() mutable {
      state->fn(s, *engines_[s]);
      // Moved, not copied: the last reference (and the callbacks it holds, which may own
      // objects of the origin loop) must be dropped on the origin loop.
      asio::post(*loops_[origin], [state = std::move(state)] {
        if (--state->pending == 0) state->done();
      });
    });
  }
}

void Gateway::LoadCachesAtStart() {
  std::lock_guard lock(sync_mu_);
  for (const auto& info : registry_->ListAll()) {
    for (auto* engine : engines_) engine->CreateCache(info.id, info.tenant_id);
    synced_[info.id] = info.tenant_id;
  }
}

void Gateway::SyncCaches() {
  std::vector<std::pair<uint32_t, uint32_t>> added;
  std::vector<uint32_t> removed;
  {
    std::lock_guard lock(sync_mu_);
    std::map<uint32_t, uint32_t> now;
    for (const auto& info : registry_->ListAll()) now[info.id] = info.tenant_id;
    for (const auto& [id, tenant] : now) {
      auto it = synced_.find(id);
      if (it == synced_.end() || it->second != tenant) added.emplace_back(id, tenant);
    }
    for (const auto& [id, tenant] : synced_) {
      if (!now.count(id)) removed.push_back(id);
    }
    synced_ = std::move(now);
  }
  if (added.empty() && removed.empty()) return;
  for (uint32_t s = 0; s < num_shards(); ++s) {
    asio::post(*loops_[s], [this, s, added, removed] {
      storage::Engine& e = *engines_[s];
      for (const auto& [id, tenant] : added) {
        e.CreateCache(id, tenant);
        if (tenancy_ == nullptr) continue;
        if (auto c = tenancy_->Find(id)) {
          e.SetCacheShare(id, c->limit(control::LimitId::kMemoryShareBytes) / num_shards());
        }
      }
      for (uint32_t id : removed) {
        // As DeleteCache: subscriptions first, so their memory returns before the cache goes.
        if (topics_ != nullptr) topics_->DropCache(s, id);
        e.FlushCache(id, /*forget=*/true);
      }
    });
  }
}

bool Gateway::KnowsCache(uint32_t id) {
  std::lock_guard lock(sync_mu_);
  return synced_.contains(id);
}

void Gateway::SyncMetadata(uint32_t origin, MetadataPart part, int64_t revision,
                           std::function<void()> done) {
  if (forwarder_ == nullptr) return done();
  forwarder_->SyncMetadata(origin, part, revision, std::move(done));
}

void Gateway::WhenMetadataSeen(MetadataPart part, int64_t revision, std::function<void()> done) {
  if (part == MetadataPart::kCatalog) return registry_->WhenSeen(revision, std::move(done));
  if (options_.keys == nullptr) return done();
  options_.keys->WhenSeen(revision, std::move(done));
}

void Gateway::CatchUpMetadata(MetadataPart part, std::function<void()> done) {
  if (part == MetadataPart::kCatalog) return registry_->RefreshAsync(std::move(done));
  if (options_.keys == nullptr) return done();
  options_.keys->RefreshAsync(std::move(done));
}

std::function<void(Status)> Gateway::OnceCatalogSynced(uint32_t origin, int64_t revision,
                                                      std::function<void(Status)> done) {
  return [this, origin, revision, done = std::move(done)](Status st) mutable {
    SyncMetadata(origin, MetadataPart::kCatalog, revision,
                 [done = std::move(done), st] { done(st); });
  };
}

namespace {
// A registry change made on the control thread, read on the origin loop.
struct Committed {
  StatusOr<control::CacheInfo> info = Status(Code::kUnavailable, "not run");
  int64_t revision = 0;
};
}  // namespace

void Gateway::CreateCache(uint32_t origin, uint32_t tenant, std::string name,
                          std::function<void(Status)> done) {
  auto c = std::make_shared<Committed>();
  RunControl(
      origin, [this, c, tenant, name = std::move(name)] {
        c->info = registry_->Create(tenant, name, &c->revision);
      },
      [this, c, origin, tenant, done = std::move(done)](Status st) mutable {
        if (!st.ok()) return done(st);
        if (!c->info.ok()) return done(c->info.status());
        CreatedCache(origin, tenant, c->info->id, c->revision, std::move(done));
      });
}

void Gateway::CreatedCache(uint32_t origin, uint32_t tenant, uint32_t id, int64_t revision,
                           std::function<void(Status)> done) {
  // On a fleet, the call returns once the other nodes know the cache too.
  done = OnceCatalogSynced(origin, revision, std::move(done));
  ForEachShard(
      origin,
      [this, id, tenant](uint32_t, storage::Engine& e) {
        e.CreateCache(id, tenant);
        // The share pushed when the registry changed came before the cache existed here.
        if (tenancy_ == nullptr) return;
        if (auto c = tenancy_->Find(id)) {
          e.SetCacheShare(id, c->limit(control::LimitId::kMemoryShareBytes) / num_shards());
        }
      },
      [done = std::move(done)] { done(Status::Ok()); });
}

void Gateway::DeleteCache(uint32_t origin, uint32_t tenant, std::string name,
                          std::function<void(Status)> done) {
  // Removed from the registry first: no new connection can bind to it while shards drop it.
  auto c = std::make_shared<Committed>();
  RunControl(
      origin, [this, c, tenant, name = std::move(name)] {
        c->info = registry_->Remove(tenant, name, &c->revision);
      },
      [this, c, origin, done = std::move(done)](Status st) mutable {
        if (!st.ok()) return done(st);
        if (!c->info.ok()) return done(c->info.status());
        DeletedCache(origin, c->info->id, c->revision, std::move(done));
      });
}

void Gateway::DeletedCache(uint32_t origin, uint32_t id, int64_t revision,
                           std::function<void(Status)> done) {
  // On a fleet, the call returns once no node serves the cache any more.
  done = OnceCatalogSynced(origin, revision, std::move(done));
  ForEachShard(
      origin,
      [this, id](uint32_t s, storage::Engine& e) {
        // Subscriptions first: ending them gives their memory back to the cache's record,
        // which forgetting the cache then drops.
        if (topics_ != nullptr) topics_->DropCache(s, id);
        e.FlushCache(id, /*forget=*/true);
      },
      [done = std::move(done)] { done(Status::Ok()); });
}

uint32_t Gateway::CacheWideShards(uint32_t origin) {
  const Routes* r = forwarder_ != nullptr ? forwarder_->RoutesFor(origin) : nullptr;
  return r == nullptr ? num_shards() : r->FleetShards(num_shards());
}

void Gateway::FlushCache(uint32_t origin, uint32_t tenant, std::string name,
                         std::function<void(StatusOr<uint64_t>)> done) {
  auto info = registry_->Find(tenant, name);
  if (!info) {
    done(Status(Code::kNotFound, "cache not found"));
    return;
  }
  // One kFlushCache call per shard of the fleet (on one node: its shards), as FLUSHDB; the
  // counts add up on the origin loop.
  auto batch = std::make_shared<Batch>();
  const uint32_t shards = CacheWideShards(origin);
  for (uint32_t s = 0; s < shards; ++s) {
    api::Request& r = batch->calls.emplace_back().req;
    r.op = api::Op::kFlushCache;
    r.cache_id = info->id;
    r.shard = static_cast<int16_t>(s);
  }
  Submit(origin, batch.get(), [batch, done = std::move(done)] {
    uint64_t sum = 0;
    for (const Call& c : batch->calls) {
      if (!c.reply.status.ok()) return done(c.reply.status);
      sum += static_cast<uint64_t>(c.reply.integer);
    }
    done(sum);
  });
}

void Gateway::CollectStats(uint32_t origin, std::function<void(Stats)> done) {
  struct PerShard {
    storage::EngineCounters engine;
    uint64_t memory_limit = 0;
    std::vector<std::pair<uint32_t, storage::CacheCounters>> caches;
  };
  auto caches = registry_->ListAll();
  auto parts = std::make_shared<std::vector<PerShard>>(num_shards());
  auto ids = std::make_shared<std::vector<uint32_t>>();
  for (const auto& c : caches) ids->push_back(c.id);
  ForEachShard(
      origin,
      [parts, ids](uint32_t s, storage::Engine& e) {
        PerShard& p = (*parts)[s];
        p.engine = e.Counters();
        p.memory_limit = e.memory_limit();
        for (uint32_t id : *ids) {
          if (const auto* cc = e.Cache(id)) p.caches.emplace_back(id, *cc);
        }
      },
      [this, parts, caches = std::move(caches), done = std::move(done)] {
        Stats st;
        st.caches.reserve(caches.size());
        absl::flat_hash_map<uint32_t, size_t> index;  // cache id -> position in st.caches
        absl::flat_hash_map<uint32_t, std::string> tenant_names;
        for (const auto& t : registry_->ListTenants()) tenant_names[t.id] = t.name;
        for (const auto& c : caches) {
          index[c.id] = st.caches.size();
          st.caches.push_back(CacheStats{tenant_names[c.tenant_id], c.name, c.id, c.tenant_id});
        }
        for (uint32_t s = 0; s < num_shards(); ++s) {
          const PerShard& p = (*parts)[s];
          st.items += p.engine.items;
          st.used_bytes += p.engine.used_bytes;
          st.index_bytes += p.engine.index_bytes;
          st.memory_limit += p.memory_limit;
          st.hits += p.engine.hits;
          st.misses += p.engine.misses;
          st.evictions += p.engine.evictions;
          st.expirations += p.engine.expirations;
          st.oom_refusals += p.engine.oom_refusals;
          for (const auto& [id, cc] : p.caches) {
            auto it = index.find(id);
            if (it == index.end()) continue;
            CacheStats part;
            part.ops = cc.ops;
            part.items = cc.items;
            part.bytes = cc.bytes;
            part.hits = cc.hits;
            part.misses = cc.misses;
            part.evictions = cc.evictions;
            part.expirations = cc.expirations;
            st.caches[it->second] += part;
          }
        }
        // The front-ends' counters (relaxed atomics, read here on the origin loop).
        for (const auto& c : tenancy_ != nullptr ? tenancy_->All()
                                                 : std::vector<std::shared_ptr<CacheState>>{}) {
          auto it = index.find(c->id);
          if (it == index.end()) continue;
          CacheStats& out = st.caches[it->second];
          const CacheUsage& u = c->usage;
          out.requests = u.requests.load(std::memory_order_relaxed);
          out.bytes_in = u.bytes_in.load(std::memory_order_relaxed);
          out.bytes_out = u.bytes_out.load(std::memory_order_relaxed);
          out.refusals.resize(kNumRefusals);
          for (size_t i = 0; i < kNumRefusals; ++i) {
            out.refusals[i] = u.refusals[i].load(std::memory_order_relaxed);
          }
          out.latency.resize(kCacheLatencyBoundsUs.size());
          for (size_t i = 0; i < out.latency.size(); ++i) {
            out.latency[i] = u.latency[i].load(std::memory_order_relaxed);
          }
          out.latency_sum_us = u.latency_sum_us.load(std::memory_order_relaxed);
          out.latency_count = u.latency_count.load(std::memory_order_relaxed);
        }
        done(std::move(st));
      });
}

metrics::Source Gateway::MoveMetrics() const {
  static constexpr const metrics::Def* kDefs[] = {&kMovePause, &kMoveParkedWrites};
  return {kDefs, [this](metrics::Sink& sink) {
            std::array<uint64_t, std::size(kMovePauseBoundsUs)> counts;
            for (size_t i = 0; i < counts.size(); ++i) {
              counts[i] = move_pauses_[i].load(std::memory_order_relaxed);
            }
            sink.Add(kMovePause, "",
                     metrics::HistogramValue{kMovePauseBoundsUs, counts,
                                             move_pause_sum_us_.load(std::memory_order_relaxed)});
            sink.Add(kMoveParkedWrites, "", move_parked_.load(std::memory_order_relaxed));
          }};
}

metrics::Source Gateway::AuthMetrics() const {
  static constexpr const metrics::Def* kDefs[] = {&kAuthRefusals};
  return {kDefs, [this](metrics::Sink& sink) {
            static constexpr std::string_view kReasons[] = {
                "reason=\"missing\"", "reason=\"invalid\"", "reason=\"expired\"",
                "reason=\"revoked\""};
            for (size_t i = 0; i < std::size(kReasons); ++i) {
              sink.Add(kAuthRefusals, kReasons[i], auth_refusals_[i].load(std::memory_order_relaxed));
            }
          }};
}

}  // namespace cellar::gateway
