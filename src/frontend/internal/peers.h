// The fleet's internal connections (gateway/forward.h): a node forwards the calls whose slot
// another node owns to that node's internal port, and serves the calls other nodes forward to
// it. Our own framing over TCP, in TLS when the node runs TLS (PeerOptions::tls; plaintext
// otherwise: keep the internal port on a private network then):
//
//   frame:  u32 payload length, u8 kind, u64 id, payload
//   kinds:  1 hello (payload: the cluster's internal secret), 2 hello ok, 3 calls
//           (gateway/forward_codec.h), 4 replies to the calls frame of the same id, 5 import
//           (calls for slots moving to the receiver: run whatever its map says; migrate.h);
//           topics (payloads: topic_codec.h; the id is the relay's): 6 subscribe and
//           7 unsubscribe (a relay to the topic's owner), 8 joined, 9 gap, 10 item,
//           11 replayed, 12 end (the owner's answers on a relay), 13 topic states (a move's
//           hand-over) and 14 states ok; 15 metadata (payload: u8 part, i64 revision: a cache
//           or tenant created, a cache deleted, a key rotated or revoked on the sender) and
//           16 metadata ok (the receiver applied it)
//
// A connection must say hello with the right secret first (constant-time compare), or it is
// closed. A frame past max_frame_bytes, or one that does not decode, closes the connection.
// Calls for a slot the receiving node does not own (the sender's map is older) are answered
// `moved`, without running, and the sender routes them again (Gateway::Resubmit). Calls for a
// cache this node does not know yet (another node created it a moment ago: the sender knew
// it, so it is committed) run again once this node has re-read the catalog from the store
// (CacheRegistry::RefreshAsync); still unknown then (deleted), they are answered NOT_FOUND.
//
// PeerServer: one per loop, all on one port (SO_REUSEPORT), calls run through that loop's
// Gateway::Submit like a front-end's, without the pipeline's checks (the forwarding node made
// them). PeerForwarder: the gateway's Forwarder; per loop one connection to each peer, opened
// on first use, frames pipelined on it; routes refreshed per loop when the slot map changes.
// Topics (topics.h, Fleet): PeerForwarder opens relays on the same per-loop connections;
// PeerServer serves them as subscriptions of the owner's Topics (SubscribeRelay). A relay whose
// connection has more than max_relay_queue_bytes unwritten is ended (the relaying node resumes
// from its last item).
// Threads: a connection belongs to its loop; SetRoutes may come from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <boost/asio/ssl/context.hpp>

#include "common/metrics.h"
#include "gateway/forward.h"
#include "gateway/gateway.h"
#include "topics/topics.h"

namespace cellar::net {
class TlsConfig;
}

namespace cellar::internal {

inline constexpr metrics::Def kForwardedCalls{
    "cellar_forwarded_calls_total", metrics::Type::kCounter,
    "Calls this node sent to the node owning their slot.", ""};
inline constexpr metrics::Def kForwardErrors{
    "cellar_forward_errors_total", metrics::Type::kCounter,
    "Forwarded calls answered with an error by this node because the owner could not be "
    "reached, did not answer in time, or no longer owned the slot.",
    "reason"};
inline constexpr metrics::Def kServedForwardedCalls{
    "cellar_forwarded_calls_served_total", metrics::Type::kCounter,
    "Calls other nodes forwarded to this node, run here.", ""};
inline constexpr metrics::Def kMetadataSyncs{
    "cellar_metadata_syncs_total", metrics::Type::kCounter,
    "Other nodes told of a metadata change made here (a cache created or deleted, a tenant "
    "created, a signing key rotated or revoked): confirmed (applied before the call returned), "
    "or unconfirmed within 2 s (unreachable or paused: its watch brings it later).",
    "result"};
inline constexpr metrics::Def kForwardedUnknownCache{
    "cellar_forwarded_calls_unknown_cache_total", metrics::Type::kCounter,
    "Calls other nodes forwarded to this node for a cache it did not know (created elsewhere "
    "a moment before, its watch not there yet): run again once this node re-read the catalog "
    "from the metadata store.",
    ""};

struct PeerOptions {
  std::string secret;                        // the cluster's internal secret (both sides)
  size_t max_frame_bytes = 64u << 20;        // either direction
  int64_t default_timeout_ms = 10'000;       // for calls without a deadline of their own
  size_t max_relay_queue_bytes = 32u << 20;  // a relay's connection behind by this: ended
  // TLS (the node runs TLS): the internal port takes TLS only, with the node's certificate,
  // and this node dials its peers with client_tls (verifying them only if it was given a CA:
  // --cluster-tls-ca). Over TLS the hello proves the secret instead of sending it. Null: both
  // plaintext (keep the internal port on a private network).
  net::TlsConfig* tls = nullptr;
  std::shared_ptr<boost::asio::ssl::context> client_tls;
};

class PeerServer {
 public:
  PeerServer(boost::asio::io_context& io, uint32_t loop, gateway::Gateway& gateway,
             gateway::Forwarder& routes, const PeerOptions& options);
  ~PeerServer();
  // Throws std::runtime_error on failure (start-up only). `first`: the first loop's.
  void Listen(const std::string& address, uint16_t port, bool first);
  uint16_t port() const { return port_; }
  void Stop();      // stops accepting
  void CloseAll();  // closes every connection
  // Serves other nodes' relays (set before serving; none: relays end at once).
  void set_topics(topics::Topics* topics) { topics_ = topics; }

  struct Conn;

 private:
  void Accept();
  friend struct Conn;
  topics::Topics* topics_ = nullptr;

  boost::asio::io_context& io_;
  const uint32_t loop_;
  gateway::Gateway& gateway_;
  gateway::Forwarder& routes_;
  const PeerOptions& options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  bool stopping_ = false;
  std::unordered_set<std::shared_ptr<Conn>> live_;
};

class PeerForwarder final : public gateway::Forwarder, public topics::Fleet {
 public:
  PeerForwarder(std::vector<boost::asio::io_context*> loops, const PeerOptions& options);
  ~PeerForwarder() override;

  // A new slot map: routes (owner per slot, peer ids) and where each peer listens
  // (host:port of its internal port). Any thread.
  void SetRoutes(std::shared_ptr<const gateway::Routes> routes,
                 std::map<std::string, std::string> addresses);

  const gateway::Routes* RoutesFor(uint32_t loop) override;
  void Forward(uint32_t origin, const gateway::Routes& routes, int peer, gateway::Batch& batch,
               std::span<const uint32_t> indices, std::function<void()> done) override;

  // Sends batch.calls[indices] to node `node` as an import (slots moving there: migrate.h):
  // run there whatever its map says. done on loop `origin`, as Forward's.
  void Import(uint32_t origin, const std::string& node, gateway::Batch& batch,
              std::span<const uint32_t> indices, std::function<void()> done);

  // topics::Fleet: relays on this loop's connection to the topic's owner.
  Owner OwnerOf(uint32_t loop, uint32_t cache_id, std::string_view topic) override;
  uint64_t OpenRelay(uint32_t loop, topics::Sink* sink, uint32_t cache_id,
                     const std::string& topic, uint64_t resume_at, uint64_t page) override;
  void CloseRelay(uint32_t loop, uint64_t handle) override;
  // A move's topic states (topic_codec.h's states payload) to node `node`; done on `origin`
  // once it kept them (or could not be reached: not OK).
  void SendTopicStates(uint32_t origin, const std::string& node, std::string payload,
                       std::function<void(Status)> done);
  // gateway::Forwarder: a metadata frame to every other member; done once each answered or
  // failed (kMetadataSyncMs).
  void SyncMetadata(uint32_t origin, gateway::MetadataPart part, int64_t revision,
                    std::function<void()> done) override;
  // Messages that arrive by relay get their wire forms from it (set before serving).
  void set_topics(topics::Topics* topics) { topics_ = topics; }

  metrics::Source Metrics() const;
  // Closes every connection (on each loop); call before the loops stop.
  void CloseAll();

  struct Conn;
  struct Counters {
    std::atomic<uint64_t> forwarded{0}, unreachable{0}, timeout{0}, moved{0}, served{0},
        unknown_cache{0}, metadata_confirmed{0}, metadata_unconfirmed{0};
  };
  static Counters& counters();

 private:
  struct LoopState {
    uint64_t generation = 0;
    std::shared_ptr<const gateway::Routes> routes;
    std::map<std::string, std::string> addresses;
    std::map<std::string, std::shared_ptr<Conn>> conns;  // by node id
    uint64_t next_relay = 1;
    // Relays opened without a connection (no map or address yet): they end, posted.
    std::map<uint64_t, topics::Sink*> failing;
  };
  std::shared_ptr<Conn> ConnTo(uint32_t loop, const std::string& node);
  topics::Topics* topics_ = nullptr;

  std::vector<boost::asio::io_context*> loops_;
  const PeerOptions& options_;
  std::mutex mu_;
  std::shared_ptr<const gateway::Routes> routes_;   // guarded by mu_
  std::map<std::string, std::string> addresses_;    // guarded by mu_
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> closed_{false};
  std::vector<LoopState> per_loop_;  // each touched by its loop only
};

}  // namespace cellar::internal
