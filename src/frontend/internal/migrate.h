// Moving a range of slots, with their items, from this node to another (CLUSTER.md, "Slot
// migration"; the steps' order and the etcd transactions are cluster/slots.h's):
//   - Purge (on the receiving node, before a copy and after an abort): every item of the
//     slots goes, so nothing stale survives there.
//   - CopyOut (on the sending node): writes to the slots are recorded from now on
//     (Gateway::BeginMigration); every item of the slots is read here and written there as an
//     import (type, value or elements, TTL: DEL, then SET / HSET / RPUSH / SADD / ZADD, then
//     EXPIRE; strings carry their TTL in the SET); then the keys written meanwhile, again,
//     until few are left; then writes to the slots are paused (parked, not refused), a barrier
//     lets every write already handed to a shard finish, and the last written keys go; then
//     the topics numbered here whose slot moves (numbering and ring: publishes are paused
//     too). done() then: the items there are exactly the items here, and stay so while
//     paused.
//   - Finish (on the sending node, once etcd committed the new owner or the move was
//     aborted): the parked writes go, routed by the map then in force; after a commit the
//     slots' items here are purged.
// Everything runs on loop 0 as a chain of rounds through Gateway::Submit (local only), so the
// loops keep serving meanwhile.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/status.h"
#include "frontend/internal/peers.h"
#include "gateway/gateway.h"

namespace cellar::internal {

struct MoveStats {
  uint64_t keys_copied = 0;     // in the first pass
  uint64_t keys_recopied = 0;   // written meanwhile, copied again
  int rounds = 0;               // passes over written keys before the pause
  uint64_t pause_keys = 0;      // copied while paused
  uint64_t topics = 0;          // topic states handed over while paused
};

class Migrator {
 public:
  Migrator(boost::asio::io_context& loop0, gateway::Gateway& gateway, PeerForwarder& forwarder,
           topics::Topics* topics);

  // Loop-0 thread or any: work is posted to loop 0; done runs there.
  void Purge(uint32_t first, uint32_t last, std::function<void(Status)> done);
  void CopyOut(std::string dst, uint32_t first, uint32_t last,
               std::function<void(Status, MoveStats)> done);
  void Finish(bool committed, uint32_t first, uint32_t last);

  struct Run;

 private:
  void HandOverTopics(std::shared_ptr<Run> run);
  void SendStates(std::shared_ptr<Run> run, std::shared_ptr<std::vector<std::string>> frames,
                  size_t next);

  boost::asio::io_context& loop0_;
  gateway::Gateway& gateway_;
  PeerForwarder& forwarder_;
  topics::Topics* topics_;
};

}  // namespace cellar::internal
