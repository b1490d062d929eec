// SlotController: both sides of the slot map (cluster/slot_map.h) on one node.
//   - Every node watches `slotmap` in etcd and, on each new map or change of members, hands
//     the map and the members (their internal addresses) to on_change: the server turns them
//     into the forwarder's routes (gateway/forward.h).
//   - The control leader writes the map: the first one once `bootstrap_expect` members are
//     registered (every slot, evenly over them), and, when an owner's member key goes (its
//     lease expired, or it left), that owner's slots to the others. Each write is one etcd
//     transaction fenced on the leader key's create revision (only the leader that was
//     elected can write) and on the map's mod revision (nobody wrote in between).
//   - Not yet: moving slots to a node that joins later (rebalancing, with the items: issue 18
//     step 5). Until then a new node owns nothing and forwards everything.
// Threading: runs on the EtcdStore's io thread; Current() from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "cluster/etcd_store.h"
#include "cluster/membership.h"
#include "cluster/slot_map.h"

namespace cellar::cluster {

struct SlotOptions {
  // The leader makes the first map once this many members are registered.
  uint32_t bootstrap_expect = 1;
};

class SlotController {
 public:
  using OnChange =
      std::function<void(std::shared_ptr<const SlotMap> map, const ClusterState& members)>;
  SlotController(EtcdStore& store, Membership& membership, SlotOptions options);
  ~SlotController();
  SlotController(const SlotController&) = delete;
  SlotController& operator=(const SlotController&) = delete;

  // Starts the watch; on_change runs on the io thread. Call after Membership::Join; the
  // membership's on_change must call OnMembership().
  void Start(OnChange on_change);
  // Members or leadership changed (membership's on_change; io thread).
  void OnMembership();
  // OnMembership as a callable that outlives this object harmlessly (for set_on_change).
  std::function<void()> MembershipHook() const;
  std::shared_ptr<const SlotMap> Current() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cellar::cluster
