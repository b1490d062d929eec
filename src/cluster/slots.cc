#include "cluster/slots.h"

#include <set>

#include "common/logging.h"

namespace cellar::cluster {

namespace {
constexpr std::string_view kSlotMap = "slotmap";
constexpr std::string_view kLeader = "control/leader";
}  // namespace

struct SlotController::Impl : std::enable_shared_from_this<Impl> {
  Impl(EtcdStore& s, Membership& m, SlotOptions o) : store(s), membership(m), options(o) {}

  EtcdStore& store;
  Membership& membership;
  const SlotOptions options;
  OnChange on_change;
  uint64_t watch_id = 0;
  bool watching = false;
  // io thread:
  bool loaded = false;      // the watch delivered its first reset
  int64_t map_revision = 0; // the slotmap key's mod revision (0: none)
  bool committing = false;
  mutable std::mutex mu;
  std::shared_ptr<const SlotMap> map;  // guarded by mu

  void OnUpdate(const metadata::Update& u) {
    std::optional<std::string> value;
    int64_t rev = 0;
    if (u.reset) {
      for (const auto& e : u.snapshot.entries) {
        if (e.key == kSlotMap) {
          value = e.value;
          rev = e.mod_revision;
        }
      }
    } else {
      for (const auto& c : u.changes) {
        if (c.key != kSlotMap) continue;
        value = c.value;
        rev = c.value ? c.mod_revision : 0;
      }
      if (u.changes.empty()) return;
    }
    loaded = true;
    map_revision = rev;
    std::shared_ptr<const SlotMap> next;
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
    Evaluate();
  }

  void Notify() {
    if (!on_change) return;
    std::shared_ptr<const SlotMap> m;
    {
      std::lock_guard lock(mu);
      m = map;
    }
    on_change(m, membership.State());
  }

  // The leader's part: the first map, or a lost owner's slots to the others.
  void Evaluate() {
    if (!loaded || committing) return;
    const ClusterState s = membership.State();
    if (!s.is_leader || s.leader_fence == 0) return;
    std::set<std::string> alive;
    for (const auto& m : s.members) alive.insert(m.node_id);
    std::shared_ptr<const SlotMap> current;
    {
      std::lock_guard lock(mu);
      current = map;
    }
    std::optional<SlotMap> next;
    if (current == nullptr) {
      if (alive.size() < options.bootstrap_expect) return;
      next = AssignEvenly(std::vector<std::string>(alive.begin(), alive.end()));
    } else {
      next = ReassignLost(*current, alive);
    }
    if (!next) return;
    Commit(std::move(*next), s.leader_fence);
  }

  void Commit(SlotMap next, int64_t fence) {
    committing = true;
    const std::string root = store.options().root;
    etcdserverpb::TxnRequest txn;
    auto* leader = txn.add_compare();
    leader->set_key(root + std::string(kLeader));
    leader->set_target(etcdserverpb::Compare::CREATE);
    leader->set_result(etcdserverpb::Compare::EQUAL);
    leader->set_create_revision(fence);
    auto* cur = txn.add_compare();
    cur->set_key(root + std::string(kSlotMap));
    cur->set_target(etcdserverpb::Compare::MOD);
    cur->set_result(etcdserverpb::Compare::EQUAL);
    cur->set_mod_revision(map_revision);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(root + std::string(kSlotMap));
    put->set_value(next.ToJson());
    const int64_t epoch = next.epoch;
    std::weak_ptr<Impl> weak = shared_from_this();
    store.client()->Txn(txn, std::chrono::milliseconds(5000), [weak, epoch](auto r) {
      auto self = weak.lock();
      if (!self) return;
      self->committing = false;
      if (!r.ok()) {
        LOG_WARN("msg=\"slot map write failed\" why=\"{}\"", r.status().message());
        return;
      }
      if (!r->succeeded()) {
        // Someone else leads now, or the map changed: the watch brings what is current.
        LOG_INFO("msg=\"slot map write fenced off\" epoch={}", epoch);
        return;
      }
      LOG_INFO("msg=\"wrote the slot map\" epoch={}", epoch);
    });
  }
};

SlotController::SlotController(EtcdStore& store, Membership& membership, SlotOptions options)
    : impl_(std::make_shared<Impl>(store, membership, options)) {}

SlotController::~SlotController() {
  if (impl_->watching) impl_->store.Unwatch(impl_->watch_id);
}

void SlotController::Start(OnChange on_change) {
  impl_->on_change = std::move(on_change);
  std::weak_ptr<Impl> weak = impl_;
  impl_->watch_id = impl_->store.Watch(std::string(kSlotMap), [weak](const metadata::Update& u) {
    if (auto s = weak.lock()) s->OnUpdate(u);
  });
  impl_->watching = true;
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

std::shared_ptr<const SlotMap> SlotController::Current() const {
  std::lock_guard lock(impl_->mu);
  return impl_->map;
}

}  // namespace cellar::cluster
