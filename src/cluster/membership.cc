#include "cluster/membership.h"


#include <algorithm>
#include <future>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/clock.h"
#include "common/json.h"
#include "common/logging.h"

namespace cellar::cluster {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kMembers = "members/";
constexpr std::string_view kLeader = "control/leader";

std::string Str(const Json* j) {
  return j != nullptr && j->type == Json::Type::kString ? j->text : std::string();
}

}  // namespace

std::string MemberInfo::ToJson() const {
  auto q = [](std::string_view s) { return "\"" + JsonEscape(s) + "\""; };
  return "{\"zone\":" + q(zone) + ",\"boot\":" + q(boot_id) + ",\"resp\":" + q(resp_addr) +
         ",\"api\":" + q(api_addr) + ",\"admin\":" + q(admin_addr) +
         ",\"internal\":" + q(internal_addr) + ",\"roles\":" + q(roles) +
         ",\"cores\":" + std::to_string(cores) + ",\"memory\":" + std::to_string(memory_bytes) +
         "}";
}

std::optional<MemberInfo> MemberInfo::FromJson(std::string_view node_id, std::string_view json) {
  auto j = ParseJson(json);
  if (!j || j->type != Json::Type::kObject) return std::nullopt;
  MemberInfo m;
  m.node_id = std::string(node_id);
  m.zone = Str(j->Find("zone"));
  m.boot_id = Str(j->Find("boot"));
  m.resp_addr = Str(j->Find("resp"));
  m.api_addr = Str(j->Find("api"));
  m.admin_addr = Str(j->Find("admin"));
  m.internal_addr = Str(j->Find("internal"));
  m.roles = Str(j->Find("roles"));
  const Json* cores = j->Find("cores");
  const Json* memory = j->Find("memory");
  if (auto v = cores ? cores->AsUint() : std::nullopt) m.cores = static_cast<uint32_t>(*v);
  if (auto v = memory ? memory->AsUint() : std::nullopt) m.memory_bytes = *v;
  return m;
}

struct Membership::Impl : std::enable_shared_from_this<Impl> {
  Impl(EtcdStore& s, MembershipOptions o)
      : store(s), options(std::move(o)), timer(s.io()), retry(s.io()), reconnect(s.io()) {
    margin = std::min<Clock::duration>(std::chrono::seconds(1), options.lease_ttl / 4);
  }

  // Before Join only (the addresses are set then).
  void Describe() {
    self_json = options.self.ToJson();
    leader_json = "{\"node\":\"" + JsonEscape(options.self.node_id) + "\",\"boot\":\"" +
                  JsonEscape(options.self.boot_id) + "\"}";
  }

  EtcdStore& store;
  MembershipOptions options;  // self's addresses change before Join only
  std::string self_json, leader_json;
  Clock::duration margin;
  std::atomic<bool> serving{false};          // as last logged (metrics, status)
  std::atomic<uint64_t> serving_until{0};      // what gates writes (MonotonicNanos)
  std::atomic<uint64_t> lease_losses{0};

  std::atomic<int64_t> lease_now{0};  // lease_id, for other threads

  // ---- io thread only ----
  int64_t lease_id = 0;
  int64_t granted_ttl = 0;
  Clock::time_point alive_until{};
  std::shared_ptr<EtcdStream> keepalive;
  asio::steady_timer timer;  // the serving deadline
  asio::steady_timer retry;  // rejoin after a loss
  std::chrono::milliseconds backoff{500};
  asio::steady_timer reconnect;  // the keepalive stream again, after its connection broke
  std::chrono::milliseconds reconnect_backoff{100};
  bool interrupted = false;  // the keepalive's connection is broken (logged once)
  bool stopping = false;
  bool campaigning = false;
  bool held_back = false;  // registered again, waiting for before_serving
  std::function<void(std::function<void()>)> before_serving;
  bool watching = false;
  uint64_t members_watch = 0, leader_watch = 0;

  // ---- shared with other threads ----
  mutable std::mutex mu;
  std::map<std::string, MemberInfo> members;
  std::string leader;
  bool is_leader = false;
  int64_t fence = 0;
  std::function<void()> on_change;

  std::string Key(std::string_view k) const { return store.options().root + std::string(k); }
  std::string MemberKey() const { return Key(kMembers) + options.self.node_id; }

  void Changed() {
    if (stopping) return;
    std::function<void()> fn;
    {
      std::lock_guard lock(mu);
      fn = on_change;
    }
    if (fn) fn();
  }

  // Takes a fresh lease and puts members/<id> under it: created when absent, taken over when
  // it holds exactly what this process wrote before (a rejoin after a loss). done(kAlreadyExists)
  // when another process holds the id.
  void Register(std::function<void(Status)> done) {
    auto self = shared_from_this();
    etcdserverpb::LeaseGrantRequest grant;
    grant.set_ttl(options.lease_ttl.count());
    const Clock::time_point sent = Clock::now();
    store.client()->LeaseGrant(grant, kTimeout, [self, done, sent](auto r) {
      if (!r.ok()) return done(r.status());
      if (!r->error().empty()) return done(Status(Code::kUnavailable, "etcd: " + r->error()));
      self->lease_id = r->id();
      self->lease_now.store(r->id(), std::memory_order_release);
      self->granted_ttl = r->ttl();
      self->alive_until = sent + std::chrono::seconds(r->ttl());
      self->Claim(/*take_over=*/false, done);
    });
  }

  void Claim(bool take_over, std::function<void(Status)> done) {
    auto self = shared_from_this();
    etcdserverpb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key(MemberKey());
    if (take_over) {
      cmp->set_target(etcdserverpb::Compare::VALUE);
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      cmp->set_value(self_json);
    } else {
      cmp->set_target(etcdserverpb::Compare::CREATE);
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      cmp->set_create_revision(0);
    }
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(MemberKey());
    put->set_value(self_json);
    put->set_lease(lease_id);
    txn.add_failure()->mutable_request_range()->set_key(MemberKey());
    store.client()->Txn(txn, kTimeout, [self, take_over, done](auto r) {
      if (!r.ok()) return self->Abandon(r.status(), done);
      if (r->succeeded()) return done(Status::Ok());
      std::string held;
      if (r->responses_size() > 0 && r->responses(0).response_range().kvs_size() > 0) {
        held = r->responses(0).response_range().kvs(0).value();
      }
      if (held.empty()) return self->Claim(false, done);  // gone meanwhile: create it
      if (held == self->self_json && !take_over) return self->Claim(true, done);
      auto other = MemberInfo::FromJson(self->options.self.node_id, held);
      self->Abandon(Status(Code::kAlreadyExists,
                           "node id " + self->options.self.node_id +
                               " is held by a live member (boot " +
                               (other ? other->boot_id : "?") + ", RESP " +
                               (other ? other->resp_addr : "?") +
                               "); stop it, wait for its lease to expire, or pick another "
                               "--node-id"),
                    done);
    });
  }

  // Registration failed after a lease was granted: give the lease back (best effort).
  void Abandon(Status why, std::function<void(Status)> done) {
    RevokeLease(nullptr);
    done(std::move(why));
  }

  void RevokeLease(std::function<void()> then) {
    if (lease_id == 0) {
      if (then) then();
      return;
    }
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(lease_id);
    lease_id = 0;
    lease_now.store(0, std::memory_order_release);
    store.client()->LeaseRevoke(req, kTimeout, [then](auto) {
      if (then) then();
    });
  }

  // Registered: keep the lease alive, serve, and (first time) watch members and leader.
  void StartKeepAlive() {
    std::weak_ptr<Impl> weak = shared_from_this();
    keepalive = store.client()->KeepAlive(
        KeepAliveOptions{lease_id, granted_ttl},
        [weak](int64_t, Clock::time_point until) {
          if (auto s = weak.lock()) s->OnAck(until);
        },
        [weak](Status st) {
          if (auto s = weak.lock()) s->OnLost(std::move(st));
        });
  }

  void Registered() {
    auto self = shared_from_this();
    backoff = std::chrono::milliseconds(500);
    std::weak_ptr<Impl> weak = self;
    StartKeepAlive();
    if (watching && before_serving) {
      // A rejoin: serve once before_serving says the node's view is current again.
      held_back = true;
      std::weak_ptr<Impl> w = self;
      before_serving([w] {
        auto s = w.lock();
        if (!s || s->stopping || s->lease_id == 0 || !s->held_back) return;
        s->held_back = false;
        if (Clock::now() < s->alive_until - s->margin) s->SetServing(true);
        s->ArmDeadline();
        s->MaybeCampaign();
      });
      return;
    }
    SetServing(true);
    ArmDeadline();
    if (!watching) {
      watching = true;
      members_watch = store.Watch(std::string(kMembers),
                                  [weak](const metadata::Update& u) {
                                    if (auto s = weak.lock()) s->OnMembers(u);
                                  });
      leader_watch = store.Watch(std::string(kLeader), [weak](const metadata::Update& u) {
        if (auto s = weak.lock()) s->OnLeader(u);
      });
    } else {
      MaybeCampaign();
    }
  }

  static uint64_t Nanos(Clock::time_point t) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
    return ns.count() > 0 ? static_cast<uint64_t>(ns.count()) : 0;
  }

  void SetServing(bool on) {
    serving_until.store(on ? Nanos(alive_until - margin) : 0, std::memory_order_release);
    if (serving.exchange(on, std::memory_order_acq_rel) == on) return;
    if (on) {
      LOG_INFO("msg=\"cluster lease held: serving writes\" node={} lease={:x}",
               options.self.node_id, lease_id);
    } else {
      lease_losses.fetch_add(1, std::memory_order_relaxed);
      LOG_WARN("msg=\"cluster lease not known alive: not serving writes\" node={}",
               options.self.node_id);
    }
    Changed();
  }

  void OnAck(Clock::time_point until) {
    if (stopping || lease_id == 0) return;
    if (interrupted) {
      interrupted = false;
      reconnect_backoff = std::chrono::milliseconds(100);
      LOG_INFO("msg=\"etcd keepalive answered again\" node={}", options.self.node_id);
    }
    alive_until = std::max(alive_until, until);
    if (held_back) return;
    if (Clock::now() < alive_until - margin) SetServing(true);
    ArmDeadline();
  }

  void ArmDeadline() {
    timer.expires_at(alive_until - margin);
    std::weak_ptr<Impl> weak = shared_from_this();
    timer.async_wait([weak](const boost::system::error_code& ec) {
      auto s = weak.lock();
      if (ec || !s || s->stopping) return;
      if (Clock::now() >= s->alive_until - s->margin) s->SetServing(false);
    });
  }

  void OnLost(Status why) {
    if (stopping) return;
    if (why.code() == Code::kUnavailable && lease_id != 0) {
      // The connection to etcd broke, not the lease: etcd keeps it to its deadline (and renews
      // every lease when it comes back), so nobody can take this node's slots before then.
      // Writes go on until the deadline (its timer stops them); the keepalive is tried again.
      if (!interrupted) {
        interrupted = true;
        LOG_WARN("msg=\"etcd keepalive interrupted: serving writes until the lease deadline, "
                 "retrying\" node={} why=\"{}\" deadline_in_ms={}",
                 options.self.node_id, why.message(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(alive_until - margin -
                                                                       Clock::now())
                     .count());
      }
      keepalive.reset();
      reconnect.expires_after(reconnect_backoff);
      reconnect_backoff = std::min<std::chrono::milliseconds>(reconnect_backoff * 2,
                                                              std::chrono::seconds(1));
      std::weak_ptr<Impl> weak = shared_from_this();
      reconnect.async_wait([weak](const boost::system::error_code& ec) {
        auto s = weak.lock();
        if (ec || !s || s->stopping || s->lease_id == 0 || s->keepalive) return;
        s->StartKeepAlive();
      });
      return;
    }
    interrupted = false;
    held_back = false;
    LOG_WARN("msg=\"cluster lease lost\" node={} why=\"{}\"", options.self.node_id,
             why.message());
    keepalive.reset();
    timer.cancel();
    SetServing(false);
    {
      std::lock_guard lock(mu);
      is_leader = false;
      fence = 0;
    }
    // The old lease may still be alive in etcd (a broken connection): give it back, so its
    // keys (and leadership) go now rather than after a whole TTL.
    RevokeLease(nullptr);
    ScheduleRejoin();
  }

  void ScheduleRejoin() {
    retry.expires_after(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
    std::weak_ptr<Impl> weak = shared_from_this();
    retry.async_wait([weak](const boost::system::error_code& ec) {
      auto s = weak.lock();
      if (ec || !s || s->stopping) return;
      s->Register([weak](Status st) {
        auto s = weak.lock();
        if (!s || s->stopping) return;
        if (!st.ok()) {
          LOG_WARN("msg=\"cluster rejoin failed; retrying\" node={} why=\"{}\"",
                   s->options.self.node_id, st.message());
          return s->ScheduleRejoin();
        }
        LOG_INFO("msg=\"cluster rejoined\" node={}", s->options.self.node_id);
        s->Registered();
      });
    });
  }

  void OnMembers(const metadata::Update& u) {
    {
      std::lock_guard lock(mu);
      auto apply = [&](std::string_view key, const std::string* value) {
        const std::string id(key.substr(kMembers.size()));
        if (value == nullptr) {
          members.erase(id);
          return;
        }
        if (auto m = MemberInfo::FromJson(id, *value)) {
          members[id] = std::move(*m);
        } else {
          LOG_WARN("msg=\"unreadable member entry left out\" key=\"{}\"", key);
        }
      };
      if (u.reset) {
        members.clear();
        for (const auto& e : u.snapshot.entries) apply(e.key, &e.value);
      } else {
        for (const auto& c : u.changes) apply(c.key, c.value ? &*c.value : nullptr);
      }
    }
    Changed();
  }

  void OnLeader(const metadata::Update& u) {
    std::optional<std::string> value;
    if (u.reset) {
      for (const auto& e : u.snapshot.entries) {
        if (e.key == kLeader) value = e.value;
      }
    } else {
      for (const auto& c : u.changes) {
        if (c.key == kLeader) value = c.value;
      }
      if (u.changes.empty()) return;
    }
    std::string id;
    if (value) {
      auto j = ParseJson(*value);
      id = j ? Str(j->Find("node")) : std::string();
    }
    bool was_leader;
    {
      std::lock_guard lock(mu);
      was_leader = is_leader;
      leader = id;
      if (id != options.self.node_id || (value && *value != leader_json)) {
        is_leader = false;
        fence = 0;
      }
    }
    if (was_leader && id != options.self.node_id) {
      LOG_WARN("msg=\"no longer the control leader\" node={} leader={}", options.self.node_id,
               id.empty() ? "(none)" : id);
    }
    if (!value) {
      LOG_INFO("msg=\"no control leader\" node={}", options.self.node_id);
      MaybeCampaign();
    } else {
      LOG_INFO("msg=\"control leader\" leader={}", id);
    }
    Changed();
  }

  // Runs for control/leader under this node's lease if it is a candidate, serving, and no
  // leader is known. The Txn's revision (the key's create revision) is the fencing token.
  void MaybeCampaign() {
    {
      std::lock_guard lock(mu);
      if (!options.candidate || !leader.empty() || campaigning || stopping || !serving.load() ||
          lease_id == 0) {
        return;
      }
    }
    campaigning = true;
    auto self = shared_from_this();
    etcdserverpb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key(Key(kLeader));
    cmp->set_target(etcdserverpb::Compare::CREATE);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_create_revision(0);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(Key(kLeader));
    put->set_value(leader_json);
    put->set_lease(lease_id);
    store.client()->Txn(txn, kTimeout, [self](auto r) {
      self->campaigning = false;
      if (!r.ok()) {
        LOG_WARN("msg=\"control leader election failed\" why=\"{}\"", r.status().message());
        return;
      }
      if (!r->succeeded()) return;  // someone else won: the watch says who
      {
        std::lock_guard lock(self->mu);
        self->is_leader = true;
        self->fence = r->header().revision();
        self->leader = self->options.self.node_id;
      }
      LOG_INFO("msg=\"became the control leader\" node={} fence={}", self->options.self.node_id,
               r->header().revision());
      self->Changed();
    });
  }

  static constexpr std::chrono::milliseconds kTimeout{5000};
};

Membership::Membership(EtcdStore& store, MembershipOptions options)
    : impl_(std::make_shared<Impl>(store, std::move(options))) {}

Membership::~Membership() { Leave(); }

namespace {
// Runs fn on the store's io thread and waits until it calls its completion (bounded).
Status RunAndWait(EtcdStore& store, std::chrono::milliseconds limit,
                  std::function<void(std::function<void(Status)>)> fn) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  asio::post(store.io(), [fn = std::move(fn), promise] {
    auto once = std::make_shared<std::atomic<bool>>(false);
    fn([promise, once](Status st) {
      if (!once->exchange(true)) promise->set_value(std::move(st));
    });
  });
  if (future.wait_for(limit) != std::future_status::ready) {
    return Status(Code::kDeadlineExceeded, "etcd did not answer in time");
  }
  return future.get();
}
}  // namespace

void Membership::set_addresses(std::string resp, std::string api, std::string admin,
                               std::string internal) {
  impl_->options.self.resp_addr = std::move(resp);
  impl_->options.self.api_addr = std::move(api);
  impl_->options.self.admin_addr = std::move(admin);
  impl_->options.self.internal_addr = std::move(internal);
}

Status Membership::Join() {
  auto impl = impl_;
  impl->Describe();
  const auto wait = impl->options.join_wait.count() > 0
                        ? impl->options.join_wait
                        : std::chrono::duration_cast<std::chrono::milliseconds>(
                              impl->options.lease_ttl + std::chrono::seconds(2));
  const auto deadline = Clock::now() + wait;
  Status st;
  for (;;) {
    st = RunAndWait(impl->store, std::chrono::seconds(15),
                    [impl](std::function<void(Status)> done) { impl->Register(done); });
    if (st.code() != Code::kAlreadyExists || Clock::now() >= deadline) break;
    // A process with this id crashed a moment ago: its lease expires within one TTL.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!st.ok()) return st;
  return RunAndWait(impl->store, std::chrono::seconds(5), [impl](std::function<void(Status)> done) {
    impl->Registered();
    done(Status::Ok());
  });
}

void Membership::Leave() {
  auto impl = impl_;
  // Watches first: once the lease goes, their news (members gone, no leader) is not ours to
  // act on. After Unwatch returns no watch callback runs.
  if (impl->watching) {
    impl->store.Unwatch(impl->members_watch);
    impl->store.Unwatch(impl->leader_watch);
    impl->watching = false;
  }
  (void)RunAndWait(impl->store, std::chrono::seconds(6), [impl](std::function<void(Status)> done) {
    if (impl->stopping) return done(Status::Ok());
    impl->stopping = true;
    impl->keepalive.reset();
    impl->timer.cancel();
    impl->retry.cancel();
    impl->reconnect.cancel();
    impl->serving.store(false, std::memory_order_release);
    impl->serving_until.store(0, std::memory_order_release);
    {
      std::lock_guard lock(impl->mu);
      impl->is_leader = false;
      impl->fence = 0;
    }
    impl->RevokeLease([done] { done(Status::Ok()); });
  });
}

StatusOr<int64_t> Membership::PutUnderLease(std::string key, std::string value,
                                            std::chrono::milliseconds timeout) {
  auto impl = impl_;
  auto used = std::make_shared<std::atomic<int64_t>>(0);
  Status st =
      RunAndWait(impl->store, timeout,
                 [impl, used, timeout, key = std::move(key),
                  value = std::move(value)](std::function<void(Status)> done) {
                   if (impl->stopping || impl->lease_id == 0) {
                     return done(Status(Code::kUnavailable, "no cluster lease held right now"));
                   }
                   etcdserverpb::PutRequest put;
                   put.set_key(impl->Key(key));
                   put.set_value(value);
                   put.set_lease(impl->lease_id);
                   used->store(impl->lease_id);
                   impl->store.client()->Put(
                       put, timeout, [done](auto r) { done(r.ok() ? Status::Ok() : r.status()); });
                 });
  if (!st.ok()) return st;
  return used->load();
}

int64_t Membership::lease() const { return impl_->lease_now.load(std::memory_order_acquire); }

bool Membership::serving() const {
  return MonotonicNanos() < impl_->serving_until.load(std::memory_order_acquire);
}
const std::atomic<uint64_t>* Membership::serving_until() const { return &impl_->serving_until; }

ClusterState Membership::State() const {
  ClusterState s;
  std::lock_guard lock(impl_->mu);
  for (const auto& [id, m] : impl_->members) s.members.push_back(m);
  s.leader = impl_->leader;
  s.self = impl_->options.self.node_id;
  s.serving = serving();
  s.is_leader = impl_->is_leader;
  s.leader_fence = impl_->fence;
  return s;
}

void Membership::set_before_serving(std::function<void(std::function<void()>)> fn) {
  impl_->before_serving = std::move(fn);
}

void Membership::set_on_change(std::function<void()> fn) {
  std::lock_guard lock(impl_->mu);
  impl_->on_change = std::move(fn);
}

metrics::Source Membership::Metrics() const {
  static constexpr const metrics::Def* kDefs[] = {&kClusterServing, &kClusterLeader,
                                                  &kClusterMembers, &kClusterLeaseLosses};
  return {kDefs, [weak = std::weak_ptr<Impl>(impl_)](metrics::Sink& sink) {
            auto impl = weak.lock();
            if (!impl) return;
            std::lock_guard lock(impl->mu);
            sink.Add(kClusterServing, "",
                     MonotonicNanos() < impl->serving_until.load() ? 1 : 0);
            sink.Add(kClusterLeader, "", impl->is_leader ? 1 : 0);
            sink.Add(kClusterMembers, "", impl->members.size());
            sink.Add(kClusterLeaseLosses, "", impl->lease_losses.load());
          }};
}

}  // namespace cellar::cluster
