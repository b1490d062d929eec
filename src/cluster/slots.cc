#include "cluster/slots.h"

#include <algorithm>
#include <future>
#include <set>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/json.h"
#include "common/logging.h"

namespace cellar::cluster {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::string_view kSlotMap = "slotmap";
constexpr std::string_view kLeader = "control/leader";
constexpr std::string_view kMove = "migration";
constexpr std::string_view kNodes = "nodes/";
constexpr std::chrono::milliseconds kTimeout{5000};

std::string Str(const Json* j) {
  return j != nullptr && j->type == Json::Type::kString ? j->text : std::string();
}
}  // namespace

std::string Move::ToJson() const {
  auto q = [](std::string_view s) { return "\"" + JsonEscape(s) + "\""; };
  return "{\"id\":" + std::to_string(id) + ",\"src\":" + q(src) + ",\"dst\":" + q(dst) +
         ",\"first\":" + std::to_string(first) + ",\"last\":" + std::to_string(last) +
         ",\"phase\":" + q(phase) + ",\"why\":" + q(why) + ",\"summary\":" + q(summary) +
         ",\"epoch_after\":" + std::to_string(epoch_after) + "}";
}

std::optional<Move> Move::FromJson(std::string_view json) {
  auto j = ParseJson(json);
  if (!j || j->type != Json::Type::kObject) return std::nullopt;
  Move m;
  auto num = [&](const char* name) -> std::optional<uint64_t> {
    const Json* v = j->Find(name);
    return v == nullptr ? std::nullopt : v->AsUint();
  };
  auto id = num("id"), first = num("first"), last = num("last"), epoch = num("epoch_after");
  if (!id || !first || !last || *last >= routing::kSlots || *first > *last) return std::nullopt;
  m.id = *id;
  m.first = static_cast<uint32_t>(*first);
  m.last = static_cast<uint32_t>(*last);
  m.epoch_after = epoch ? static_cast<int64_t>(*epoch) : 0;
  m.src = Str(j->Find("src"));
  m.dst = Str(j->Find("dst"));
  m.phase = Str(j->Find("phase"));
  m.why = Str(j->Find("why"));
  m.summary = Str(j->Find("summary"));
  if (m.src.empty() || m.dst.empty() || m.phase.empty()) return std::nullopt;
  return m;
}

struct SlotController::Impl : std::enable_shared_from_this<Impl> {
  Impl(EtcdStore& s, Membership& m, SlotOptions o)
      : store(s), membership(m), options(o), commit_timer(s.io()), retry_timer(s.io()) {}

  EtcdStore& store;
  Membership& membership;
  const SlotOptions options;
  OnChange on_change;
  MoveHooks hooks;
  std::vector<uint64_t> watches;
  // io thread:
  bool map_loaded = false, move_loaded = false, nodes_loaded = false;
  int64_t map_revision = 0;   // mod revisions (0: absent), the fences of the leader's writes
  int64_t map_as_of = 0;      // the etcd revision the map is current as of
  int64_t move_revision = 0;
  bool committing = false;    // a write of ours is in flight
  std::atomic<bool> stopped{false};  // the controller is going: callbacks do nothing
  uint64_t purging = 0, copying = 0, finished = 0, purged_after_abort = 0;  // move ids acted on
  std::pair<uint64_t, std::string> phase_seen;  // the leader's timeout clock
  Clock::time_point phase_since;
  uint64_t abort_seen = 0;  // the leader's back-off after aborted moves
  int aborts_in_row = 0;
  Clock::time_point abort_at;
  asio::steady_timer commit_timer;  // the source's bound on its paused writes
  asio::steady_timer retry_timer;   // the leader's next try after a failed write
  // shared with other threads:
  mutable std::mutex mu;
  std::shared_ptr<const SlotMap> map;
  std::optional<Move> move;
  std::set<std::string> draining;

  std::string Root(std::string_view k) const { return store.options().root + std::string(k); }
  std::string self() const { return membership.State().self; }

  // ---- watches ----
  void OnMap(const metadata::Update& u) {
    std::optional<std::string> value;
    int64_t rev = 0;
    if (!Pick(u, kSlotMap, &value, &rev)) return;
    // Older than what a direct read (Refresh) brought already: skip.
    const int64_t as_of = u.reset ? u.snapshot.revision : rev;
    if (as_of < map_as_of || (!u.reset && as_of == map_as_of)) return;
    map_as_of = as_of;
    SetMap(value, rev);
  }

  void SetMap(const std::optional<std::string>& value, int64_t rev) {
    map_loaded = true;
    map_revision = rev;
    std::shared_ptr<const SlotMap> next;
    if (!value) {
      LOG_WARN("msg=\"no slot map in etcd\" as_of={} had_one={}", map_as_of, map != nullptr);
    }
    if (value) {
      auto m = SlotMap::FromJson(*value);
      if (!m) {
        LOG_ERROR("msg=\"unreadable slot map in etcd; keeping the last good one\"");
        return;
      }
      next = std::make_shared<const SlotMap>(std::move(*m));
      std::string counts;
      for (const auto& [node, n] : next->Counts()) counts += node + ":" + std::to_string(n) + " ";
      LOG_INFO("msg=\"slot map\" epoch={} slots=\"{}\"", next->epoch, counts);
    }
    {
      std::lock_guard lock(mu);
      map = next;
    }
    Notify();
    Act();
    Evaluate();
  }

  // Reads the map from etcd now (not waiting for a watch that may be retrying), publishes it,
  // then ready().
  void Refresh(std::function<void()> ready, int tries) {
    etcdserverpb::RangeRequest req;
    req.set_key(Root(kSlotMap));
    std::weak_ptr<Impl> weak = shared_from_this();
    store.client()->Range(req, kTimeout, [weak, ready, tries](auto r) {
      auto s = weak.lock();
      if (!s || s->stopped) return;
      if (!r.ok()) {
        LOG_WARN("msg=\"reading the slot map failed\" why=\"{}\"", r.status().message());
        if (tries > 1) {
          s->retry_timer.expires_after(std::chrono::milliseconds(500));
          s->retry_timer.async_wait([weak, ready, tries](const boost::system::error_code& ec) {
            if (auto s = weak.lock(); s && !ec) s->Refresh(ready, tries - 1);
          });
          return;
        }
        return ready();
      }
      std::optional<std::string> value;
      int64_t rev = 0;
      if (r->kvs_size() > 0) {
        value = r->kvs(0).value();
        rev = r->kvs(0).mod_revision();
      }
      if (r->header().revision() >= s->map_as_of) {
        s->map_as_of = r->header().revision();
        s->SetMap(value, rev);
      }
      ready();
    });
  }

  void OnMove(const metadata::Update& u) {
    std::optional<std::string> value;
    int64_t rev = 0;
    if (!Pick(u, kMove, &value, &rev)) return;
    move_loaded = true;
    move_revision = rev;
    std::optional<Move> m;
    if (value) {
      m = Move::FromJson(*value);
      if (!m) LOG_ERROR("msg=\"unreadable migration record in etcd\"");
    }
    if (m) {
      LOG_INFO("msg=\"slot move\" id={} src={} dst={} slots={}-{} phase={} why=\"{}\" {}", m->id,
               m->src, m->dst, m->first, m->last, m->phase, m->why, m->summary);
    }
    {
      std::lock_guard lock(mu);
      move = m;
    }
    Act();
    Evaluate();
  }

  void OnNodes(const metadata::Update& u) {
    {
      std::lock_guard lock(mu);
      auto apply = [&](std::string_view key, const std::string* value) {
        const std::string id(key.substr(kNodes.size()));
        auto j = value ? ParseJson(*value) : std::nullopt;
        if (j && Str(j->Find("state")) == "draining") {
          draining.insert(id);
        } else {
          draining.erase(id);
        }
      };
      if (u.reset) {
        draining.clear();
        for (const auto& e : u.snapshot.entries) apply(e.key, &e.value);
      } else {
        for (const auto& c : u.changes) apply(c.key, c.value ? &*c.value : nullptr);
      }
    }
    nodes_loaded = true;
    Notify();
    Evaluate();
  }

  // The one key's value and mod revision in an update; false: the update does not touch it.
  static bool Pick(const metadata::Update& u, std::string_view key,
                   std::optional<std::string>* value, int64_t* rev) {
    if (u.reset) {
      for (const auto& e : u.snapshot.entries) {
        if (e.key == key) {
          *value = e.value;
          *rev = e.mod_revision;
        }
      }
      return true;
    }
    bool touched = false;
    for (const auto& c : u.changes) {
      if (c.key != key) continue;
      touched = true;
      *value = c.value;
      *rev = c.value ? c.mod_revision : 0;
    }
    return touched;
  }

  void Notify() {
    if (stopped || !on_change) return;
    std::shared_ptr<const SlotMap> m;
    {
      std::lock_guard lock(mu);
      m = map;
    }
    on_change(m, membership.State());
  }

  // ---- this node's part in a move ----
  void Act() {
    if (stopped) return;
    std::optional<Move> m;
    std::shared_ptr<const SlotMap> current;
    {
      std::lock_guard lock(mu);
      m = move;
      current = map;
    }
    if (!m) return;
    const std::string me = self();
    std::weak_ptr<Impl> weak = shared_from_this();
    asio::io_context* io = &store.io();  // the callbacks come from loop 0: back to etcd's thread
    if (m->phase == "prepare" && m->dst == me && purging != m->id && hooks.purge) {
      purging = m->id;
      const uint64_t id = m->id;
      hooks.purge(m->first, m->last, [weak, io, id](Status st) {
        asio::post(*io, [weak, id, st] {
          auto s = weak.lock();
          if (!s) return;
          if (st.ok()) {
            s->WritePhase(id, "copy", "", "");
          } else {
            s->WritePhase(id, "aborted", "destination purge: " + std::string(st.message()), "");
          }
        });
      });
    }
    if (m->phase == "copy" && m->src == me && copying != m->id && hooks.copy_out) {
      copying = m->id;
      const uint64_t id = m->id;
      hooks.copy_out(m->dst, m->first, m->last, [weak, io, id](Status st, std::string summary) {
        asio::post(*io, [weak, id, st, summary] {
          auto s = weak.lock();
          if (!s) return;
          if (!st.ok()) {
            return s->WritePhase(id, "aborted", "copy: " + std::string(st.message()), summary);
          }
          // Writes to the slots wait from now: bounded, by aborting if no commit comes (also
          // when writing `ready` itself fails).
          s->commit_timer.expires_after(s->options.commit_timeout);
          std::weak_ptr<Impl> w = s;
          s->commit_timer.async_wait([w, id](const boost::system::error_code& ec) {
            auto s = w.lock();
            if (ec || !s || s->stopped) return;
            bool stuck;
            {
              std::lock_guard lock(s->mu);
              stuck = s->move && s->move->id == id && s->move->active();
            }
            if (stuck) s->WritePhase(id, "aborted", "no commit in time", "");
          });
          s->WritePhase(id, "ready", "", summary);
        });
      });
    }
    if (m->src == me && copying == m->id && finished != m->id) {
      if (m->phase == "done" && current != nullptr && current->epoch >= m->epoch_after) {
        // The routes name the new owner already (Notify ran first): the parked writes go there.
        finished = m->id;
        commit_timer.cancel();
        if (hooks.finish) hooks.finish(true, m->first, m->last);
      } else if (m->phase == "aborted") {
        finished = m->id;
        commit_timer.cancel();
        if (hooks.finish) hooks.finish(false, m->first, m->last);
      }
    }
    if (m->phase == "aborted" && m->dst == me && purged_after_abort != m->id && hooks.purge) {
      purged_after_abort = m->id;
      hooks.purge(m->first, m->last, [](Status) {});
    }
  }

  // A phase written by the node whose turn it is, fenced on the record it saw, and only over
  // the phase it follows (prepare -> copy -> ready; aborted over any of these): never over
  // an abort or a commit that came first.
  void WritePhase(uint64_t id, std::string phase, std::string why, std::string summary) {
    std::optional<Move> m;
    {
      std::lock_guard lock(mu);
      m = move;
    }
    if (!m || m->id != id || stopped) return;
    const bool follows = (phase == "copy" && m->phase == "prepare") ||
                         (phase == "ready" && m->phase == "copy") ||
                         (phase == "aborted" && m->active());
    if (!follows) {
      LOG_INFO("msg=\"slot move phase not written: the move is {} already\" id={} phase={}",
               m->phase, id, phase);
      return;
    }
    m->phase = std::move(phase);
    m->why = std::move(why);
    if (!summary.empty()) m->summary = std::move(summary);
    etcdserverpb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key(Root(kMove));
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_mod_revision(move_revision);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(Root(kMove));
    put->set_value(m->ToJson());
    const std::string phase_name = m->phase;
    store.client()->Txn(txn, kTimeout, [id, phase_name](auto r) {
      if (!r.ok()) {
        LOG_WARN("msg=\"writing a slot move's phase failed\" id={} phase={} why=\"{}\"", id,
                 phase_name, r.status().message());
      } else if (!r->succeeded()) {
        LOG_INFO("msg=\"slot move changed meanwhile; phase not written\" id={} phase={}", id,
                 phase_name);
      }
    });
  }

  // ---- the leader's part ----
  void Evaluate() {
    if (stopped || !map_loaded || !move_loaded || !nodes_loaded || committing) return;
    const ClusterState s = membership.State();
    if (!s.is_leader || s.leader_fence == 0) return;
    std::set<std::string> alive;
    for (const auto& m : s.members) alive.insert(m.node_id);
    std::shared_ptr<const SlotMap> current;
    std::optional<Move> mv;
    std::set<std::string> drain;
    {
      std::lock_guard lock(mu);
      current = map;
      mv = move;
      drain = draining;
    }
    if (current == nullptr) {
      if (alive.size() < options.bootstrap_expect) return;
      return CommitMap(AssignEvenly(std::vector<std::string>(alive.begin(), alive.end())),
                       s.leader_fence, std::nullopt);
    }
    if (mv && mv->active() && (!alive.count(mv->src) || !alive.count(mv->dst))) {
      Move a = *mv;
      a.phase = "aborted";
      a.why = "a node of the move left";
      return CommitMove(a, s.leader_fence);
    }
    // A dead node's slots go to the live nodes that are not draining (to a draining one only
    // if every node drains: they would have to move again).
    std::set<std::string> takers;
    for (const auto& a : alive) {
      if (!drain.count(a)) takers.insert(a);
    }
    if (auto next = ReassignLost(*current, alive, takers)) {
      return CommitMap(std::move(*next), s.leader_fence, std::nullopt);
    }
    if (mv && mv->phase == "ready") {
      SlotMap next = *current;
      ++next.epoch;
      for (uint32_t x = mv->first; x <= mv->last; ++x) next.owner[x] = mv->dst;
      Move done = *mv;
      done.phase = "done";
      done.epoch_after = next.epoch;
      return CommitMap(std::move(next), s.leader_fence, done);
    }
    if (mv && mv->active()) {
      const auto key = std::make_pair(mv->id, mv->phase);
      if (phase_seen != key) {
        phase_seen = key;
        phase_since = Clock::now();
      } else if (Clock::now() - phase_since > options.move_timeout) {
        Move a = *mv;
        a.phase = "aborted";
        a.why = "timed out in phase " + mv->phase;
        return CommitMove(a, s.leader_fence);
      }
      return;
    }
    // After an aborted move, the next waits: 100 ms, doubling with each abort in a row up to
    // 10 s, so a move that keeps failing (a destination that cannot take it) does not spin.
    if (mv && mv->phase == "aborted") {
      if (abort_seen != mv->id) {
        abort_seen = mv->id;
        abort_at = Clock::now();
        ++aborts_in_row;
      }
      const auto wait = std::chrono::milliseconds(
          std::min<int64_t>(10'000, int64_t{100} << std::min(aborts_in_row - 1, 7)));
      if (const auto left = abort_at + wait - Clock::now(); left > Clock::duration::zero()) {
        std::weak_ptr<Impl> weak = shared_from_this();
        retry_timer.expires_after(left);
        retry_timer.async_wait([weak](const boost::system::error_code& ec) {
          if (auto self = weak.lock(); self && !ec) self->Evaluate();
        });
        return;
      }
    } else if (mv && mv->phase == "done") {
      aborts_in_row = 0;
    }
    if (auto plan = Plan(*current, alive, drain, mv ? mv->id : 0)) CommitMove(*plan, s.leader_fence);
  }

  std::optional<Move> Plan(const SlotMap& m, const std::set<std::string>& alive,
                           const std::set<std::string>& drain, uint64_t last_id) const {
    std::map<std::string, uint32_t> counts;
    for (const auto& a : alive) {
      if (!drain.count(a)) counts[a] = 0;
    }
    if (counts.empty()) return std::nullopt;
    std::map<std::string, uint32_t> all = m.Counts();
    for (const auto& [node, n] : all) {
      if (counts.count(node)) counts[node] = n;
    }
    auto fewest = std::min_element(counts.begin(), counts.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    std::string src;
    uint32_t n = 0;
    for (const auto& d : drain) {
      if (all.count(d) && all[d] > 0 && alive.count(d)) {
        src = d;
        n = std::min(options.move_slots, all[d]);
        break;
      }
    }
    if (src.empty()) {
      auto most = std::max_element(counts.begin(), counts.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
      const uint32_t fair = routing::kSlots / static_cast<uint32_t>(counts.size());
      if (most->second - fewest->second <= std::max<uint32_t>(1, fair / 50)) return std::nullopt;
      src = most->first;
      n = std::min({options.move_slots, most->second - fair, fair - fewest->second});
      n = std::max<uint32_t>(n, 1);
    }
    // The tail of the source's last range: contiguous, all the source's.
    SlotMap::Range pick{0, 0, ""};
    for (const auto& r : m.Ranges()) {
      if (r.node == src) pick = r;
    }
    if (pick.node.empty()) return std::nullopt;
    Move mv;
    mv.id = last_id + 1;
    mv.src = src;
    mv.dst = fewest->first;
    mv.last = pick.last;
    mv.first = pick.last + 1 - std::min(n, pick.last - pick.first + 1);
    mv.phase = "prepare";
    return mv;
  }

  // One transaction: the leader is still the one elected (its key's create revision), and
  // the map and the move are what it read.
  void AddFences(etcdserverpb::TxnRequest& txn, int64_t fence) {
    auto* leader = txn.add_compare();
    leader->set_key(Root(kLeader));
    leader->set_target(etcdserverpb::Compare::CREATE);
    leader->set_result(etcdserverpb::Compare::EQUAL);
    leader->set_create_revision(fence);
    auto* cur = txn.add_compare();
    cur->set_key(Root(kSlotMap));
    cur->set_target(etcdserverpb::Compare::MOD);
    cur->set_result(etcdserverpb::Compare::EQUAL);
    cur->set_mod_revision(map_revision);
    auto* mv = txn.add_compare();
    mv->set_key(Root(kMove));
    mv->set_target(etcdserverpb::Compare::MOD);
    mv->set_result(etcdserverpb::Compare::EQUAL);
    mv->set_mod_revision(move_revision);
  }

  void CommitMap(SlotMap next, int64_t fence, std::optional<Move> with) {
    etcdserverpb::TxnRequest txn;
    AddFences(txn, fence);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(Root(kSlotMap));
    put->set_value(next.ToJson());
    if (with) {
      auto* mput = txn.add_success()->mutable_request_put();
      mput->set_key(Root(kMove));
      mput->set_value(with->ToJson());
    }
    Send(std::move(txn), "slot map epoch " + std::to_string(next.epoch));
  }

  void CommitMove(const Move& m, int64_t fence) {
    etcdserverpb::TxnRequest txn;
    AddFences(txn, fence);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(Root(kMove));
    put->set_value(m.ToJson());
    Send(std::move(txn), "slot move " + std::to_string(m.id) + " " + m.phase);
  }

  void Send(etcdserverpb::TxnRequest txn, std::string what) {
    committing = true;
    std::weak_ptr<Impl> weak = shared_from_this();
    store.client()->Txn(std::move(txn), kTimeout, [weak, what](auto r) {
      auto self = weak.lock();
      if (!self || self->stopped) return;
      self->committing = false;
      if (!r.ok()) {
        LOG_WARN("msg=\"control write failed; trying again in 1 s\" what=\"{}\" why=\"{}\"", what,
                 r.status().message());
        self->retry_timer.expires_after(std::chrono::seconds(1));
        self->retry_timer.async_wait([weak](const boost::system::error_code& ec) {
          if (auto s = weak.lock(); s && !ec) s->Evaluate();
        });
        return;
      }
      if (!r->succeeded()) {
        // Someone else leads now, or a key changed and its watch has not told us yet (a map
        // and a move written together arrive on two watches): look again shortly.
        LOG_INFO("msg=\"control write fenced off\" what=\"{}\"", what);
        self->retry_timer.expires_after(std::chrono::milliseconds(50));
        self->retry_timer.async_wait([weak](const boost::system::error_code& ec) {
          if (auto s = weak.lock(); s && !ec) s->Evaluate();
        });
        return;
      }
      LOG_INFO("msg=\"control write\" what=\"{}\"", what);
      // The watches may have brought our write before this answer, while `committing` made
      // Evaluate wait: look again (a stale look is fenced off and retried).
      self->Evaluate();
    });
  }
};

SlotController::SlotController(EtcdStore& store, Membership& membership, SlotOptions options)
    : impl_(std::make_shared<Impl>(store, membership, options)) {}

SlotController::~SlotController() {
  for (uint64_t id : impl_->watches) impl_->store.Unwatch(id);
  // Stopped on its own thread, and waited for: an etcd answer or a timer still queued finds
  // it stopped and touches nothing (the membership it reads goes next).
  auto impl = impl_;
  auto stopped = std::make_shared<std::promise<void>>();
  auto future = stopped->get_future();
  asio::post(impl->store.io(), [impl, stopped] {
    impl->stopped = true;
    impl->commit_timer.cancel();
    impl->retry_timer.cancel();
    stopped->set_value();
  });
  if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    LOG_WARN("msg=\"slot controller stop: etcd's thread did not answer\"");
    impl->stopped = true;  // its thread is gone or stuck: nothing runs there any more
  }
}

void SlotController::Start(OnChange on_change, MoveHooks hooks) {
  impl_->on_change = std::move(on_change);
  impl_->hooks = std::move(hooks);
  std::weak_ptr<Impl> weak = impl_;
  impl_->watches.push_back(
      impl_->store.Watch(std::string(kSlotMap), [weak](const metadata::Update& u) {
        if (auto s = weak.lock()) s->OnMap(u);
      }));
  impl_->watches.push_back(impl_->store.Watch(std::string(kMove), [weak](const metadata::Update& u) {
    if (auto s = weak.lock()) s->OnMove(u);
  }));
  impl_->watches.push_back(
      impl_->store.Watch(std::string(kNodes), [weak](const metadata::Update& u) {
        if (auto s = weak.lock()) s->OnNodes(u);
      }));
}

void SlotController::OnMembership() {
  impl_->Notify();
  impl_->Evaluate();
}

std::function<void()> SlotController::MembershipHook() const {
  return [weak = std::weak_ptr<Impl>(impl_)] {
    if (auto s = weak.lock()) {
      s->Notify();
      s->Evaluate();
    }
  };
}

std::function<void(std::function<void()>)> SlotController::RefreshHook() const {
  return [weak = std::weak_ptr<Impl>(impl_)](std::function<void()> ready) {
    if (auto s = weak.lock()) {
      s->Refresh(std::move(ready), 3);
    } else {
      ready();
    }
  };
}

std::shared_ptr<const SlotMap> SlotController::Current() const {
  std::lock_guard lock(impl_->mu);
  return impl_->map;
}

std::optional<Move> SlotController::CurrentMove() const {
  std::lock_guard lock(impl_->mu);
  return impl_->move;
}

std::set<std::string> SlotController::Draining() const {
  std::lock_guard lock(impl_->mu);
  return impl_->draining;
}

}  // namespace cellar::cluster
