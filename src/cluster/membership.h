// Membership: this node's place in the fleet, kept in etcd (CLUSTER.md, "Join" and
// "Failover"). The node holds a lease and registers itself under it (members/<node id>, JSON:
// address, zone, boot id...); a control candidate also runs for control/leader, held under the
// same lease, whose create revision is the leader's fencing token. Everyone watches both keys,
// so every node knows the members and the leader within the watch delay.
//
// Safety: a lease is not a lock. The node stops acknowledging writes (serving() false) at its
// deadline, the send time of its last answered keepalive + TTL - margin, on the steady clock,
// whether or not etcd has told it the lease is gone; etcd deletes its keys only after the full
// TTL, so a successor never overlaps a node that still serves. A node that lost its lease
// takes a new one and registers again (the same id, the same boot id), and serves once it is
// back. A second live process with the same node id is refused at Join.
//
// Threading: everything runs on the EtcdStore's io thread; the accessors may be called from
// any thread (serving() is one atomic load, for the request path).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/etcd_store.h"
#include "common/metrics.h"
#include "common/status.h"

namespace cellar::cluster {

inline constexpr metrics::Def kClusterServing{
    "cellar_cluster_serving", metrics::Type::kGauge,
    "1 while this node holds its cluster lease and acknowledges writes; 0 while it does not.",
    ""};
inline constexpr metrics::Def kClusterLeader{
    "cellar_cluster_leader", metrics::Type::kGauge,
    "1 while this node is the control leader.", ""};
inline constexpr metrics::Def kClusterMembers{
    "cellar_cluster_members", metrics::Type::kGauge, "Members registered in etcd, as seen here.",
    ""};
inline constexpr metrics::Def kClusterLeaseLosses{
    "cellar_cluster_lease_losses_total", metrics::Type::kCounter,
    "Times this node stopped serving writes: its lease deadline passed without a keepalive "
    "answer, or etcd said the lease was gone.",
    ""};

// What a node says about itself in members/<id>.
struct MemberInfo {
  std::string node_id;
  std::string zone;
  std::string boot_id;  // random per process start: tells a restarted node from the old one
  std::string resp_addr, api_addr, admin_addr;  // host:port; empty when not listening
  std::string internal_addr;  // host:port where other nodes forward calls (frontend/internal)
  std::string roles;                            // "gateway,storage,control"
  uint32_t cores = 0;
  uint64_t memory_bytes = 0;

  std::string ToJson() const;
  static std::optional<MemberInfo> FromJson(std::string_view node_id, std::string_view json);
};

struct MembershipOptions {
  MemberInfo self;
  std::chrono::seconds lease_ttl{10};
  bool candidate = true;  // runs for control leader (the control role)
  // Join waits this long for a crashed predecessor's member key (the same node id) to expire.
  std::chrono::milliseconds join_wait{0};  // 0: one lease TTL + 2 s
};

struct ClusterState {
  std::vector<MemberInfo> members;  // by node id
  std::string leader;               // node id; empty: none right now
  std::string self;
  bool serving = false;
  bool is_leader = false;
  int64_t leader_fence = 0;  // the leader key's create revision, while this node leads
};

class Membership {
 public:
  Membership(EtcdStore& store, MembershipOptions options);
  // Leaves (revokes the lease) if still a member.
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Where this node listens (host:port each), for members/<id>; before Join (the ports are
  // known once the listeners are open).
  void set_addresses(std::string resp, std::string api, std::string admin,
                     std::string internal);
  // Takes a lease, registers, keeps the lease alive, watches members and leader, and runs for
  // leader if a candidate. Blocking, bounded (join_wait plus a few etcd round trips).
  // kAlreadyExists: another live process holds this node id.
  Status Join();
  // Revokes the lease: this node's keys (member, leader) go at once, and it stops serving.
  void Leave();

  // Puts key (relative to the store's root) = value under this node's current lease, so it
  // goes with the lease (a node that dies or leaves takes it along). Blocking, bounded by
  // `timeout`; not on the store's io thread. Returns the lease used: after a lost lease the
  // node registers under a new one and the key is gone with the old one, so a caller that
  // wants it to stay writes it again when lease() differs. kUnavailable while no lease is held.
  StatusOr<int64_t> PutUnderLease(std::string key, std::string value,
                                  std::chrono::milliseconds timeout);
  // The lease held now (0: none); any thread.
  int64_t lease() const;

  // True while the lease is known alive (see the file comment).
  bool serving() const;
  // Until when (steady clock, ns since its epoch: MonotonicNanos) writes may be acknowledged;
  // 0 while not a member. For the gateway to compare each round's start with; lives as long
  // as this object. A paused process that resumes past it refuses writes at once, before any
  // timer of its own has run.
  const std::atomic<uint64_t>* serving_until() const;
  ClusterState State() const;
  // Called (on the io thread) after members, leader or serving change.
  void set_on_change(std::function<void()> fn);
  // After a lost lease, the node registers again; before it serves writes again, fn runs (io
  // thread) and calls ready() once what the node relies on is current (the slot map: while
  // the lease was lost, its slots may have gone to others). Set before Join.
  void set_before_serving(std::function<void(std::function<void()> ready)> fn);
  metrics::Source Metrics() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cellar::cluster
