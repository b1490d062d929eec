// SlotController: both sides of the slot map (cluster/slot_map.h) on one node.
//   - Every node watches `slotmap` in etcd and, on each new map or change of members, hands
//     the map and the members (their internal addresses) to on_change: the server turns them
//     into the forwarder's routes (gateway/forward.h).
//   - The control leader writes the map: the first one once `bootstrap_expect` members are
//     registered (every slot, evenly over them), and, when an owner's member key goes (its
//     lease expired, or it left), that owner's slots to the others. Each write is one etcd
//     transaction fenced on the leader key's create revision (only the leader that was
//     elected can write) and on the map's mod revision (nobody wrote in between).
//   - Rebalancing (CLUSTER.md, "Slot migration"): one move at a time, recorded in etcd under
//     `migration` ({id, src, dst, first, last, phase}). The leader picks it: slots of a
//     draining node (`nodes/<id>` {"state":"draining"}) first, else from the node with the
//     most slots to the one with the fewest while they differ by more than 2% of a fair
//     share; at most kMoveSlots at a time. Phases: prepare (the destination purges the
//     range, then writes copy) -> copy (the source copies, pauses writes, copies the last
//     changes, then writes ready) -> the leader commits owner and phase done in one
//     transaction (fenced on its leadership, the map and the move) -> the source lets the
//     paused writes go to the new owner and purges the range. A failure or timeout writes
//     aborted instead: the source keeps the slots and resumes; the destination purges.
// Threading: runs on the EtcdStore's io thread; Current() from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <memory>
#include <mutex>

#include "cluster/etcd_store.h"
#include "cluster/membership.h"
#include "cluster/slot_map.h"

namespace cellar::cluster {

struct SlotOptions {
  // The leader makes the first map once this many members are registered.
  uint32_t bootstrap_expect = 1;
  // Slots per move: fewer means shorter pauses, more moves.
  uint32_t move_slots = 512;
  // A move stuck in prepare or copy this long is aborted by the leader; one ready this long
  // without a commit, by its source (the paused writes must not wait longer).
  std::chrono::milliseconds move_timeout{60000};
  std::chrono::milliseconds commit_timeout{2000};
};

// The node's part in moves (frontend/internal/migrate.h); callbacks from any thread.
struct MoveHooks {
  std::function<void(uint32_t first, uint32_t last, std::function<void(Status)> done)> purge;
  std::function<void(std::string dst, uint32_t first, uint32_t last,
                     std::function<void(Status, std::string summary)> done)>
      copy_out;
  std::function<void(bool committed, uint32_t first, uint32_t last)> finish;
};

// The move in progress or the last one, as recorded in etcd.
struct Move {
  uint64_t id = 0;
  std::string src, dst, phase, why, summary;
  uint32_t first = 0, last = 0;
  int64_t epoch_after = 0;  // the map's epoch once committed
  std::string ToJson() const;
  static std::optional<Move> FromJson(std::string_view json);
  bool active() const { return phase == "prepare" || phase == "copy" || phase == "ready"; }
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
  void Start(OnChange on_change, MoveHooks hooks = {});
  // Members or leadership changed (membership's on_change; io thread).
  void OnMembership();
  // OnMembership as a callable that outlives this object harmlessly (for set_on_change).
  std::function<void()> MembershipHook() const;
  // For Membership::set_before_serving: reads the slot map from etcd now and publishes it
  // (on_change) before calling ready.
  std::function<void(std::function<void()>)> RefreshHook() const;
  std::shared_ptr<const SlotMap> Current() const;
  std::optional<Move> CurrentMove() const;
  std::set<std::string> Draining() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cellar::cluster
