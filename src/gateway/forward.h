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
  // order; peer p has peer_shards[p] of them (its loops, from its member record; 0 when
  // unknown: not visited), starting at local + ShardBase(p).
  std::vector<uint16_t> peer_shards;
  // routing::kSlots entries: kLocal, else an index into peers. Empty: no map yet.
  std::vector<int16_t> owner;

  int Owner(uint32_t slot) const { return owner.empty() ? kNoMap : owner[slot]; }
  // Peer p's first shard, counted past this node's.
  uint32_t ShardBase(size_t p) const {
    uint32_t base = 0;
    for (size_t q = 0; q < p && q < peer_shards.size(); ++q) base += peer_shards[q];
    return base;
  }
  uint32_t FleetShards(uint32_t local) const { return local + ShardBase(peer_shards.size()); }
  // The peer holding fleet shard `s` (>= local), and its own number there; -1 if none.
  int PeerOfShard(uint32_t s, uint32_t local, uint32_t* remote) const {
    uint32_t first = local;
    for (size_t p = 0; p < peer_shards.size(); ++p) {
      if (s >= first && s < first + peer_shards[p]) {
        *remote = s - first;
        return static_cast<int>(p);
      }
      first += peer_shards[p];
    }
    return -1;
  }
};

// The parts of the metadata whose changes a node tells the others of (each has its own view).
enum class MetadataPart : uint8_t { kCatalog = 0, kSigningKeys = 1 };

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
  // Called by loop `origin` once this node committed a metadata change at `revision` (a cache
  // or tenant created, a cache deleted: the catalog; a signing key rotated or revoked): done()
  // on that loop once every other node has applied it, so that a client of any node finds the
  // cache, or has its token judged by the new keys, when the call that made it returns; or
  // once a bound passed for those that do not say so (unreachable, paused: their watch brings
  // it later, and calls forwarded to them meanwhile wait for the catalog).
  virtual void SyncMetadata(uint32_t origin, MetadataPart part, int64_t revision,
                            std::function<void()> done) {
    (void)origin;
    (void)part;
    (void)revision;
    done();
  }
};

}  // namespace cellar::gateway
