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
  // Cache-wide calls (SCAN, KEYS, DBSIZE, FLUSHDB, RANDOMKEY, INFO; the admin flush) visit
  // every shard of the fleet: this node's first (0..local-1), then each peer's in `peers`
  // order; peer p's shards start at local + peer_base[p] and number peer_shards[p] (its loops,
  // from its member record; 0 when unknown: not visited).
  std::vector<uint16_t> peer_shards;
  std::vector<uint32_t> peer_base;
  // routing::kSlots entries: kLocal, else an index into peers. Empty: no map yet.
  std::vector<int16_t> owner;

  int Owner(uint32_t slot) const { return owner.empty() ? kNoMap : owner[slot]; }
  uint32_t FleetShards(uint32_t local) const {
    return peer_base.empty() ? local : local + peer_base.back() + peer_shards.back();
  }
  // The peer holding fleet shard `s` (>= local), and its own number there; -1 if none.
  int PeerOfShard(uint32_t s, uint32_t local, uint32_t* remote) const {
    for (size_t p = 0; p < peer_base.size(); ++p) {
      const uint32_t first = local + peer_base[p];
      if (s >= first && s < first + peer_shards[p]) {
        *remote = s - first;
        return static_cast<int>(p);
      }
    }
    return -1;
  }
  // Fills peer_base from peer_shards.
  void IndexShards() {
    peer_base.resize(peer_shards.size());
    uint32_t base = 0;
    for (size_t p = 0; p < peer_shards.size(); ++p) {
      peer_base[p] = base;
      base += peer_shards[p];
    }
  }
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
