// Topics: pub/sub on (cache id, topic name), shared by the gRPC (Momento Pubsub) and RESP
// (SUBSCRIBE/PUBLISH) front-ends. Plan and rationale: docs/topics-plan.md.
//
// Ownership: a topic's owner is the loop routing::ShardOf(cache id, topic) names (as a key's
// shard). The owner numbers messages (sequence from 1, a sequence page drawn when the topic's
// state is created), keeps a replay ring bounded by count and bytes, and knows how many
// subscriptions each loop has on the topic, so it posts one message per loop, not one per
// subscriber. Each loop's hub hands the message to its local subscriptions' sinks.
//
// A message (TopicMessage) is immutable and shared by every subscriber and the replay ring.
// Topics know no wire format: each front-end registers its encoder (RegisterEncoding: gRPC's
// framed _SubscriptionItem, RESP's head of a `message`/`pmessage` push), run once per message
// at publish, so subscribers queue pointers, never payloads. The hubs live in hub.cc.
//
// Publishing runs as a gateway call (api::Op::kPublish, key = topic, value = payload,
// check = publisher id, flags kPublishBinary), so it is batched and routed like any data call
// and answers the number of subscriptions that receive it (Redis's PUBLISH answer).
//
// Subscribing is local: Subscribe registers the subscription on the caller's loop and asks
// the owner to join it (with the resume point). Until the owner's answer comes back the
// subscription is "pending" and gets nothing; then the sink hears OnReady, then any
// discontinuity and replayed items, then live items. Every item a subscription sees has a
// sequence number greater than the previous one: the join/replay/live interleaving never
// duplicates or reorders. A publish that starts after the sink heard OnReady reaches it.
//
// Threads: every method taking `loop` runs on that loop's thread; sinks are called on the
// loop they subscribed on. Sink callbacks may call Unsubscribe (even for the subscription
// being delivered), but not Subscribe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "api/request.h"
#include "common/metrics.h"
#include "common/status.h"
#include "topics/admission.h"

namespace cellar::topics {

inline constexpr metrics::Def kSubscriptionsOpen{
    "cellar_topic_subscriptions", metrics::Type::kGauge,
    "Topic subscriptions open (gRPC and RESP, patterns included).", ""};
inline constexpr metrics::Def kMessagesPublished{"cellar_topic_messages_published_total",
                                                 metrics::Type::kCounter,
                                                 "Messages published to topics.", ""};
inline constexpr metrics::Def kDeliveries{"cellar_topic_deliveries_total", metrics::Type::kCounter,
                                          "Messages handed to subscriptions.", ""};
inline constexpr metrics::Def kSlowSubscribers{
    "cellar_topic_slow_subscribers_total", metrics::Type::kCounter,
    "Subscribers cut off because they fell behind their queue bound.", ""};

inline constexpr metrics::Def kRelaysOpened{
    "cellar_topic_relays_opened_total", metrics::Type::kCounter,
    "Relays this node opened to the node that numbers a topic (one per topic with subscribers "
    "here; again after a move or a broken connection).", ""};
inline constexpr metrics::Def kRelayedItems{
    "cellar_topic_relayed_items_total", metrics::Type::kCounter,
    "Topic items that came in by relay from the topic's owner.", ""};
inline constexpr metrics::Def kTakeovers{
    "cellar_topic_takeovers_total", metrics::Type::kCounter,
    "Topics this node began numbering after another node had (a move, or an owner gone).", ""};
inline constexpr metrics::Def kHandOvers{
    "cellar_topic_handovers_total", metrics::Type::kCounter,
    "Topic states received in slot moves and adopted (numbering continued, nothing lost).", ""};

struct Options {
  uint32_t replay_messages = 4096;         // per topic, the ring's message bound
  uint64_t replay_bytes = 4 << 20;         // per topic, the ring's payload bound
  int64_t heartbeat_ms = 3000;             // gRPC subscribers idle this long get a heartbeat
  // A subscriber (a gRPC stream, a RESP connection) whose outbound queue (messages accepted
  // but not yet written to its socket) exceeds this is cut off: it fell behind.
  uint64_t subscriber_queue_bytes = 4 << 20;
  int64_t idle_topic_ms = 10 * 60 * 1000;  // state of a topic with no subscriber is dropped
                                           // this long after its last publish
  // The longest topic (channel) name or pattern a publish or subscription may name: each
  // subscription keeps its name, and a ring message its topic.
  uint32_t max_name_bytes = 4096;
};

// Front-end wire forms a message carries (RESP, gRPC; room for the web front-ends).
inline constexpr size_t kMaxEncodings = 4;
using EncodingId = uint8_t;

// A published message, stored once: wire-neutral fields, and each registered front-end's
// encoding of it (Topics::RegisterEncoding), made once at publish so that a fan-out to many
// subscribers copies bytes, never encodes. Shared (MessagePtr) by every subscriber's queue
// and the topic's replay ring; immutable once published.
struct TopicMessage {
  uint32_t cache_id = 0;
  uint64_t seq = 0;
  uint64_t page = 0;
  bool binary = false;
  std::string topic;
  std::string publisher_id;
  std::string value;
  std::array<std::string, kMaxEncodings> encoded;

  const std::string& wire(EncodingId id) const { return encoded[id]; }
  // Bytes this message holds (for queue and ring bounds).
  size_t footprint() const {
    size_t n = sizeof(*this) + topic.size() + publisher_id.size() + value.size();
    for (const std::string& e : encoded) n += e.size();
    return n;
  }
};
using MessagePtr = std::shared_ptr<const TopicMessage>;
// Writes a message's wire form for one front-end (its Sink reads it back with wire(id)).
using Encoder = void (*)(const TopicMessage& message, std::string& out);

using SubId = uint64_t;  // unique per loop, never 0

// What a subscription's owner (a gRPC stream, a RESP connection) hears. Called on the
// subscribing loop. The sink bounds its own outbound queue (and unsubscribes itself when a
// reader falls behind).
class Sink {
 public:
  virtual ~Sink() = default;
  // Just before OnReady: where the topic stands (the latest sequence number given, and the
  // page). Relays (another node's copy of the topic) need it; front-ends do not.
  virtual void OnJoined(SubId id, uint64_t latest, uint64_t page) {
    (void)id;
    (void)latest;
    (void)page;
  }
  // The owner has joined the subscription: publishes from now on are delivered.
  virtual void OnReady(SubId id) = 0;
  // Resume point not available: items from last_seq + 1 to new_seq are lost; the page may
  // have changed. Only for a Subscribe with resume_at != 0.
  virtual void OnDiscontinuity(SubId id, uint64_t last_seq, uint64_t new_seq,
                               uint64_t new_page) = 0;
  // An item, in sequence order (for pattern subscriptions: any matching topic of the cache).
  virtual void OnItem(SubId id, const MessagePtr& message) = 0;
  // The same with the tag given to Subscribe (a sink with many subscriptions finds its own
  // state without a lookup). By default, OnItem.
  virtual void OnItemTagged(SubId id, void* tag, const MessagePtr& message) {
    (void)tag;
    OnItem(id, message);
  }
  // A delivery to this subscription is a few subscribers away: start loading what it will
  // touch beyond what the hub already asked for (the first 128 bytes of this sink's Sink
  // subobject and of `tag`'s object, a few subscribers earlier: a sink that keeps its
  // delivery state there may read it here). A hint: no effect on what is delivered.
  virtual void Prefetch(void* tag) const { (void)tag; }
  // After OnReady's discontinuity and replayed items (if any): what follows is live. A sink
  // may exempt the replay from its slow-reader bound (it is bounded by the ring already).
  virtual void OnReplayed(SubId id) { (void)id; }
  // A subscription with heartbeats that got nothing for heartbeat_ms.
  virtual void OnHeartbeat(SubId id) { (void)id; }
  // The subscription is over and already removed (cache deleted: kNotFound; server stopping:
  // kUnavailable; the subscriber's token expired: kUnauthenticated). Do not Unsubscribe it.
  virtual void OnEnd(SubId id, const Status& why) = 0;
};

// A subscription's `page` asking for everything the topic's ring holds (no discontinuity):
// a relay's first join, which makes its copy of the ring.
inline constexpr uint64_t kWholeRing = ~uint64_t{0};

// A pattern subscription's longest pattern. Every publish to a cache is matched against each
// of its distinct patterns, at O(topic x pattern / 64) each (common/glob.h): 4 KiB patterns
// made one publish cost a second of a loop shared with other tenants at 5,000 patterns.
inline constexpr size_t kMaxPatternBytes = 256;

// Topics on a fleet (frontend/internal implements it). A topic's owner is the node that owns
// its slot (routing::SlotOf(KeyHash(cache id, topic)), as a key's): it numbers the messages
// and keeps the ring. Every other node with subscribers keeps a mirror: one relay (an
// upstream subscription to the owner) per topic, whose items it keeps in its own ring and
// fans out to its loops as if it owned the topic. When the owner changes, the mirror resumes
// at the new owner from its last sequence number (a move hands the topic's state over, so
// nothing is lost or repeated); an owner gone without a hand-over means a new page and a
// discontinuity for every subscriber (a gap is always signalled).
class Fleet {
 public:
  enum class Owner : uint8_t { kHere, kElsewhere, kUnknown /* no slot map yet */ };
  virtual ~Fleet() = default;
  // By loop `loop`'s view of the slot map; called on that loop.
  virtual Owner OwnerOf(uint32_t loop, uint32_t cache_id, std::string_view topic) = 0;
  // Opens a relay from loop `loop` to the topic's owner: `sink` hears, on `loop`, what a
  // subscription's sink hears (OnJoined, OnReady, OnDiscontinuity, items, OnReplayed), with
  // the returned handle (never 0) as id, until OnEnd (the owner moved, left or cannot be
  // reached: never called inside OpenRelay) or CloseRelay.
  virtual uint64_t OpenRelay(uint32_t loop, Sink* sink, uint32_t cache_id,
                             const std::string& topic, uint64_t resume_at, uint64_t page) = 0;
  // Ends a relay; its sink hears nothing more.
  virtual void CloseRelay(uint32_t loop, uint64_t handle) = 0;
};

// A topic's numbering and ring, handed from its old owner to its new one when its slot moves.
struct TopicState {
  uint32_t cache_id = 0;
  std::string topic;
  uint64_t page = 0;
  uint64_t next_seq = 1;
  std::vector<MessagePtr> ring;  // oldest first
};

class Topics {
 public:
  Topics(std::vector<boost::asio::io_context*> loops, Options options);
  ~Topics();
  Topics(const Topics&) = delete;
  Topics& operator=(const Topics&) = delete;

  const Options& options() const { return options_; }
  uint32_t num_loops() const { return static_cast<uint32_t>(loops_.size()); }

  // Starts each loop's heartbeat and sweep timer (posted to the loops).
  void Start();
  // Ends every subscription with kUnavailable (posted to each loop) and stops the timers.
  void Stop();

  // ---- Publishing -----------------------------------------------------------------------
  // On the caller's loop, before making the gateway call: the topic name (over
  // max_name_bytes: kInvalidArgument), then the admission's limits (admission.h: the
  // message size, "request size" text; the cache's publish rate, "operations" text).
  Status AdmitPublish(uint32_t cache_id, std::string_view topic, size_t value_bytes);
  // A front-end's wire form of every message published from now on (message->wire(id)).
  // Before serving; at most kMaxEncodings.
  EncodingId RegisterEncoding(Encoder encoder);
  // The limits of publishes and subscriptions (admission.h); none while unset. Set before
  // serving.
  void set_admission(Admission* admission) { admission_ = admission; }
  // Which limit a refusal of AdmitPublish or Subscribe is (front-ends name it on their wire,
  // e.g. Momento's `err` trailer); kNone for any other status.
  enum class Limit : uint8_t { kNone, kMessageSize, kPublishRate, kSubscriptions };
  static Limit LimitOf(const Status& st);
  // Called on loop `loop` when a subscription made there starts (delta > 0: about the bytes
  // its state takes, on every loop that keeps some) or ends (the same, negative), so that the
  // memory is charged to its cache and tenant (the loop's Engine::ChargeExternal). Set before
  // serving; may stay unset.
  void set_on_memory(std::function<void(uint32_t loop, uint32_t cache_id, int64_t delta)> fn) {
    on_memory_ = std::move(fn);
  }
  // The bytes a subscription's state is charged: its name, kept by the subscribing loop and
  // by the topic's owner (a pattern: by every loop), and a fixed overhead.
  int64_t SubscriptionBytes(std::string_view name, bool pattern) const {
    return 256 + static_cast<int64_t>(name.size()) * (pattern ? 1 + num_loops() : 2);
  }
  // The gateway's kPublish handler, on the owner loop `loop`: numbers, keeps, fans out;
  // reply.integer = subscriptions that receive it.
  void Publish(uint32_t loop, const api::Request& req, api::Reply& reply);

  // Publisher pacing: done() runs on `origin` once every item the owners had queued for any
  // loop when this is called has been handed to its sinks, and the work those sinks posted
  // then (their socket writes) has run. A front-end answers a round that published only then,
  // so a publisher cannot run ahead of the fan-out and grow every subscriber's queue (the
  // writes themselves are not awaited: a slow reader does not slow the publisher). done
  // is destroyed on `origin`.
  void AfterDeliveries(uint32_t origin, std::function<void()> done);

  // ---- Subscribing ------------------------------------------------------------------------
  // A subscription to one topic. resume_at 0: from now; else the first sequence wanted on
  // `page` (replayed if still in the ring, else a discontinuity first). heartbeat: call
  // OnHeartbeat when idle. kResourceExhausted when the cache has max_subscriptions_per_cache
  // or its tenant tenant_max_subscriptions; kInvalidArgument for a name over max_name_bytes.
  // expires_at_s: the subscriber's token expiry (Unix seconds, 0: never); the subscription
  // ends with kUnauthenticated within a heartbeat interval after it.
  StatusOr<SubId> Subscribe(uint32_t loop, Sink* sink, uint32_t cache_id, std::string_view topic,
                            uint64_t resume_at, uint64_t page, bool heartbeat,
                            void* tag = nullptr, int64_t expires_at_s = 0);
  // A subscription to every topic of the cache matching a Redis glob pattern (PSUBSCRIBE).
  StatusOr<SubId> PSubscribe(uint32_t loop, Sink* sink, uint32_t cache_id, std::string_view pattern,
                             int64_t expires_at_s = 0);
  // Ends a subscription (no callback). Unknown ids are ignored.
  void Unsubscribe(uint32_t loop, SubId id);

  // ---- Fleet (see Fleet above) ---------------------------------------------------------------
  // Set before serving, on a fleet only.
  void set_fleet(Fleet* fleet) { fleet_ = fleet; }
  // The slot map changed (any thread): each loop re-checks the topics it keeps. Topics that
  // moved away end the relays served here (after every item numbered here) and become
  // mirrors if they have subscribers here; mirrors whose slot is now here take the topic
  // over (from the state a move handed over, else on a new page).
  void RoutesChanged();
  // Another node's relay, served on `loop` of this node, the topic's owner: a subscription
  // without the cache's subscription limits or memory charge (the relaying node counted its
  // own subscribers), with OnJoined; page kWholeRing replays the whole ring. If this node
  // does not own the topic (by `loop`'s view), it ends at once with kUnavailable.
  StatusOr<SubId> SubscribeRelay(uint32_t loop, Sink* sink, uint32_t cache_id,
                                 std::string_view topic, uint64_t resume_at, uint64_t page,
                                 void* tag);
  // Fills a message's wire forms (a relayed message arrives without them). Any thread.
  void Encode(TopicMessage& message) const;
  // The state of the topics this node numbers whose slot is in [first, last], from every loop;
  // done on `origin`. For a move, once publishes to the slots are paused.
  void ExportRange(uint32_t origin, uint32_t first_slot, uint32_t last_slot,
                   std::function<void(std::vector<TopicState>)> done);
  // Keeps handed-over states until this node owns their topics (then they continue the
  // numbering); dropped after a minute if it never does (an aborted move). done on `origin`.
  void ImportStates(uint32_t origin, std::vector<TopicState> states, std::function<void()> done);
  // Drops the hand-overs kept for slots [first, last] (a move of them here was aborted: their
  // old owner goes on numbering, so they are void). Any thread.
  void DropHandOvers(uint32_t first_slot, uint32_t last_slot);
  struct FleetCounters {
    uint64_t relays_opened = 0;    // relays this node opened to owners
    uint64_t relayed_items = 0;    // items that came in by relay
    uint64_t takeovers = 0;        // topics this node began numbering after another node did
    uint64_t handed_over = 0;      // topic states received in moves, adopted
  };
  FleetCounters FleetSnapshot() const;

  // ---- Introspection (PUBSUB) ---------------------------------------------------------------
  // Topics of the cache with at least one topic subscription, matching pattern (empty: all).
  void Channels(uint32_t origin, uint32_t cache_id, std::string pattern,
                std::function<void(std::vector<std::string>)> done);
  // Topic subscriptions per topic (patterns not counted, as Redis).
  void NumSub(uint32_t origin, uint32_t cache_id, std::vector<std::string> topics,
              std::function<void(std::vector<int64_t>)> done);
  // Pattern subscriptions of the cache.
  void NumPat(uint32_t origin, uint32_t cache_id, std::function<void(int64_t)> done);

  // ---- Control --------------------------------------------------------------------------
  // On loop `loop`: ends that loop's subscriptions of the cache with kNotFound and drops the
  // topic state it owns (called on every loop when a cache is deleted).
  void DropCache(uint32_t loop, uint32_t cache_id);

  // Subscriptions open now (all loops), for metrics.
  int64_t LiveSubscriptions() const;
  // Counters for /metrics, summed over the loops.
  struct Counters {
    int64_t subscriptions = 0;
    uint64_t published = 0;    // messages numbered by owners
    uint64_t deliveries = 0;   // items handed to subscriptions (live and replayed)
    uint64_t slow_cutoffs = 0; // subscribers cut off for falling behind (sinks report them)
  };
  Counters Snapshot() const;
  // A sink cut a subscriber off for falling behind (any thread).
  void NoteSlowSubscriber();
  // The topic metrics (kSubscriptionsOpen... above), read from Snapshot().
  metrics::Source Metrics() const;

  class Hub;  // one per loop (hub.cc)

 private:
  std::vector<boost::asio::io_context*> loops_;
  Options options_;
  Admission* admission_ = nullptr;
  std::vector<Encoder> encoders_;  // by EncodingId
  std::function<void(uint32_t, uint32_t, int64_t)> on_memory_;
  std::vector<std::unique_ptr<Hub>> hubs_;
  std::atomic<int64_t> live_{0};  // subscriptions, every loop's
  // A subscription in (the admission's limits) or out (any loop).
  Fleet* fleet_ = nullptr;
  Status AdmitSubscription(uint32_t cache_id);
  void ReleaseSubscription(uint32_t cache_id);
  Status CheckName(std::string_view name, bool pattern) const;
  std::atomic<uint64_t> slow_cutoffs_{0};
};

}  // namespace cellar::topics
