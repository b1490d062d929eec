// Forwarding: on a fleet, the calls whose slot another node owns leave this node from
// Gateway::Submit, one frame per owner and round, and their replies come back into the same
// Calls, so a front-end never knows (CLUSTER.md: clients never see MOVED or ASK). The slot of a
// call is routing::SlotOf(its key hash; a publish's key is its topic); keyless calls (SCAN,
// KEYS, counts, flush, stats) stay on this node.
//
// The gateway sees only this interface; the transport (frontend/internal) implements it and
// the cluster (the slot map in etcd) feeds it routes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "routing/router.h"

namespace cellar::gateway {

class Batch;

// Who owns each slot, as this node knows it now (the slot map's epoch).
struct Routes {
  static constexpr int kLocal = -1;
  static constexpr int kNoMap = -2;  // the fleet has no slot map yet: nobody may serve the call

  int64_t epoch = 0;
  std::vector<std::string> peers;  // node ids of the other owners
  // routing::kSlots entries: kLocal, else an index into peers. Empty: no map yet.
  std::vector<int16_t> owner;

  int Owner(uint32_t slot) const { return owner.empty() ? kNoMap : owner[slot]; }
};

class Forwarder {
 public:
  virtual ~Forwarder() = default;
  // The routes for loop `loop` now (one pointer per loop, refreshed when the map changes);
  // null: everything is local. Called by that loop's thread only.
  virtual const Routes* RoutesFor(uint32_t loop) = 0;
  // Sends batch.calls[indices] to peer `peer` of `routes` from loop `origin`; `done` runs on
  // loop `origin` once every one of those calls has its reply (an error status each when the
  // peer cannot be reached or does not answer before the calls' deadline).
  virtual void Forward(uint32_t origin, const Routes& routes, int peer, Batch& batch,
                       std::span<const uint32_t> indices, std::function<void()> done) = 0;
};

}  // namespace cellar::gateway
