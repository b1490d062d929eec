// Topics across two nodes in one process: each node a Topics on two loops, joined by a fake
// Fleet that carries relays between them the way the internal connections do (events posted
// to the other node's loop, in order). Covers mirrors (one relay per topic per node, fanned
// out locally), resume from a mirror's ring, a move's hand-over (nothing lost or repeated,
// same page), a takeover without hand-over (new page, a discontinuity), relays ended when
// the topic moves away, and PUBSUB counts that leave relays out.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "routing/router.h"
#include "topics/topics.h"

namespace cellar::topics {
namespace {

namespace asio = boost::asio;

struct Got {
  enum Kind { kReady, kDisc, kItem, kEnd } kind;
  uint64_t seq = 0, next = 0, page = 0;
  std::string value;
  Code code = Code::kOk;
};

class Recorder : public Sink {
 public:
  void OnReady(SubId) override { got.push_back({Got::kReady}); }
  void OnDiscontinuity(SubId, uint64_t, uint64_t next, uint64_t page) override {
    got.push_back({Got::kDisc, 0, next, page});
  }
  void OnItem(SubId, const MessagePtr& m) override {
    got.push_back({Got::kItem, m->seq, 0, m->page, m->value});
  }
  void OnEnd(SubId, const Status& why) override {
    Got g{Got::kEnd};
    g.code = why.code();
    got.push_back(g);
  }
  std::vector<std::string> Values() const {
    std::vector<std::string> v;
    for (const Got& g : got) {
      if (g.kind == Got::kItem) v.push_back(g.value);
    }
    return v;
  }
  int Count(Got::Kind k) const {
    int n = 0;
    for (const Got& g : got) n += g.kind == k;
    return n;
  }
  std::vector<Got> got;
};

struct Node;

// One node's view of the fleet: who owns every topic (one owner for all, enough here), and
// relays to the other node.
class FakeFleet : public Fleet {
 public:
  FakeFleet(Node* self, Node* other, std::string* owner) : self_(self), other_(other), owner_(owner) {}
  Owner OwnerOf(uint32_t, uint32_t, std::string_view) override;
  uint64_t OpenRelay(uint32_t loop, Sink* sink, uint32_t cache, const std::string& topic,
                     uint64_t resume_at, uint64_t page) override;
  void CloseRelay(uint32_t loop, uint64_t handle) override;
  // The other node died: every relay served there ends.
  void BreakAll();
  int open() const { return static_cast<int>(relays_.size()); }
  uint64_t opened = 0;

 private:
  // Carries the owner's events (on the owner's loop) to the relaying loop, as a connection.
  struct Bridge : Sink {
    FakeFleet* fleet;
    uint64_t handle;
    uint32_t loop;
    SubId sub = 0;
    void Post(std::function<void(Sink*)> fn, bool end = false);
    void OnJoined(SubId, uint64_t latest, uint64_t page) override {
      Post([=, this](Sink* s) { s->OnJoined(handle, latest, page); });
    }
    void OnReady(SubId) override {
      Post([this](Sink* s) { s->OnReady(handle); });
    }
    void OnDiscontinuity(SubId, uint64_t last, uint64_t next, uint64_t page) override {
      Post([=, this](Sink* s) { s->OnDiscontinuity(handle, last, next, page); });
    }
    void OnItem(SubId, const MessagePtr& m) override {
      // A relayed message arrives as a new object (as decoded from a frame).
      auto copy = std::make_shared<TopicMessage>(*m);
      Post([this, copy](Sink* s) { s->OnItem(handle, copy); });
    }
    void OnReplayed(SubId) override {
      Post([this](Sink* s) { s->OnReplayed(handle); });
    }
    void OnEnd(SubId, const Status& why) override {
      Post([this, why](Sink* s) { s->OnEnd(handle, why); }, true);
    }
  };
  struct Relay {
    Sink* sink;
    std::unique_ptr<Bridge> bridge;
  };
  Node* self_;
  Node* other_;
  std::string* owner_;
  std::map<uint64_t, Relay> relays_;
  uint64_t next_ = 1;
  friend struct Bridge;
};

struct Node {
  Node(std::string n, std::string* owner) : name(std::move(n)), fleet(this, nullptr, owner) {}
  void Make(Node* other) {
    fleet = FakeFleet(this, other, fleet_owner);
    topics = std::make_unique<Topics>(std::vector{&io[0], &io[1]}, Options{});
    topics->set_fleet(&fleet);
  }
  int64_t Publish(uint32_t cache, const std::string& topic, const std::string& value) {
    api::Request req;
    req.op = api::Op::kPublish;
    req.cache_id = cache;
    req.key = topic;
    req.value = value;
    api::Reply reply;
    topics->Publish(routing::ShardOf(cache, topic, 2), req, reply);
    return reply.integer;
  }
  std::string name;
  std::string* fleet_owner = nullptr;
  asio::io_context io[2];
  FakeFleet fleet;
  std::unique_ptr<Topics> topics;
};

Fleet::Owner FakeFleet::OwnerOf(uint32_t, uint32_t, std::string_view) {
  if (owner_->empty()) return Owner::kUnknown;
  return *owner_ == self_->name ? Owner::kHere : Owner::kElsewhere;
}

void FakeFleet::Bridge::Post(std::function<void(Sink*)> fn, bool end) {
  FakeFleet* f = fleet;
  const uint64_t h = handle;
  asio::post(f->self_->io[loop], [f, h, fn = std::move(fn), end] {
    auto it = f->relays_.find(h);
    if (it == f->relays_.end()) return;  // closed meanwhile
    Sink* sink = it->second.sink;
    std::unique_ptr<Bridge> keep;
    if (end) {
      keep = std::move(it->second.bridge);
      f->relays_.erase(it);
    }
    fn(sink);
  });
}

uint64_t FakeFleet::OpenRelay(uint32_t loop, Sink* sink, uint32_t cache, const std::string& topic,
                              uint64_t resume_at, uint64_t page) {
  ++opened;
  const uint64_t h = next_++;
  auto bridge = std::make_unique<Bridge>();
  bridge->fleet = this;
  bridge->handle = h;
  bridge->loop = loop;
  Bridge* b = bridge.get();
  relays_[h] = Relay{sink, std::move(bridge)};
  if (*owner_ != other_->name) {
    b->Post([h](Sink* s) { s->OnEnd(h, Status(Code::kUnavailable, "no owner")); }, true);
    return h;
  }
  // Served on the same loop number of the other node, as a connection would be.
  Node* other = other_;
  asio::post(other->io[loop], [other, b, loop, cache, topic, resume_at, page, this, h] {
    if (!relays_.contains(h)) return;
    auto id = other->topics->SubscribeRelay(loop, b, cache, topic, resume_at, page, nullptr);
    ASSERT_TRUE(id.ok());
    b->sub = *id;
  });
  return h;
}

void FakeFleet::CloseRelay(uint32_t loop, uint64_t handle) {
  auto it = relays_.find(handle);
  if (it == relays_.end()) return;
  std::shared_ptr<Bridge> b(std::move(it->second.bridge));
  relays_.erase(it);
  Node* other = other_;
  asio::post(other->io[loop], [other, b, loop] {
    if (b->sub != 0) other->topics->Unsubscribe(loop, b->sub);
  });
}

void FakeFleet::BreakAll() {
  // The other node's subscriptions for these relays vanish with it; the relays end.
  std::vector<uint64_t> handles;
  for (auto& [h, r] : relays_) handles.push_back(h);
  for (uint64_t h : handles) {
    auto it = relays_.find(h);
    Sink* sink = it->second.sink;
    std::shared_ptr<Bridge> b(std::move(it->second.bridge));
    relays_.erase(it);
    // What the other node served for it goes too (as its connection closing would end it).
    Node* other = other_;
    asio::post(other->io[b->loop], [other, b] {
      if (b->sub != 0) other->topics->Unsubscribe(b->loop, b->sub);
    });
    sink->OnEnd(h, Status(Code::kUnavailable, "node gone"));
  }
}

class FleetTest : public ::testing::Test {
 protected:
  FleetTest() : a("A", &owner), b("B", &owner) {
    a.fleet_owner = &owner;
    b.fleet_owner = &owner;
    a.Make(&b);
    b.Make(&a);
  }
  void Settle() {
    for (int i = 0; i < 200; ++i) {
      size_t n = 0;
      for (Node* node : {&a, &b}) {
        for (auto& io : node->io) {
          n += io.poll();
          io.restart();
        }
      }
      if (n == 0) return;
    }
    FAIL() << "loops did not settle";
  }
  // The slot map changed on both nodes.
  void MoveTo(const std::string& node) {
    owner = node;
    a.topics->RoutesChanged();
    b.topics->RoutesChanged();
  }

  std::string owner = "A";
  Node a, b;
};

std::vector<std::string> Range(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i <= to; ++i) v.push_back("m" + std::to_string(i));
  return v;
}

TEST_F(FleetTest, SubscribersOnTheOtherNodeShareOneRelayPerTopic) {
  Recorder ra, rb1, rb2, rb3;
  ASSERT_TRUE(a.topics->Subscribe(0, &ra, 1, "t", 0, 0, false).ok());
  ASSERT_TRUE(b.topics->Subscribe(0, &rb1, 1, "t", 0, 0, false).ok());
  ASSERT_TRUE(b.topics->Subscribe(1, &rb2, 1, "t", 0, 0, false).ok());
  ASSERT_TRUE(b.topics->Subscribe(1, &rb3, 1, "t", 0, 0, false).ok());
  Settle();
  EXPECT_EQ(b.fleet.opened, 1u);  // three subscribers on B, one relay to A
  EXPECT_EQ(a.fleet.opened, 0u);
  // The owner counts its own subscriber, not the relay.
  EXPECT_EQ(a.Publish(1, "t", "m1"), 1);
  for (int i = 2; i <= 5; ++i) a.Publish(1, "t", "m" + std::to_string(i));
  Settle();
  for (Recorder* r : {&ra, &rb1, &rb2, &rb3}) EXPECT_EQ(r->Values(), Range(1, 5));
  EXPECT_EQ(rb1.got.back().page, ra.got.back().page);  // the owner's numbers and page
  std::vector<int64_t> counts;
  a.topics->NumSub(0, 1, {"t"}, [&](std::vector<int64_t> c) { counts = std::move(c); });
  Settle();
  EXPECT_EQ(counts, std::vector<int64_t>{1});
}

TEST_F(FleetTest, AMirrorServesResumesFromItsRingAndClosesItsRelayWhenUnused) {
  Recorder first;
  auto id = b.topics->Subscribe(1, &first, 1, "t", 0, 0, false);
  ASSERT_TRUE(id.ok());
  Settle();
  for (int i = 1; i <= 10; ++i) a.Publish(1, "t", "m" + std::to_string(i));
  Settle();
  const uint64_t page = first.got.back().page;
  // A subscriber resuming at 4 on B gets 4.. from B's copy.
  Recorder resumed;
  ASSERT_TRUE(b.topics->Subscribe(0, &resumed, 1, "t", 4, page, false).ok());
  Settle();
  EXPECT_EQ(resumed.Values(), Range(4, 10));
  EXPECT_EQ(resumed.Count(Got::kDisc), 0);
  EXPECT_EQ(b.fleet.opened, 1u);
  // A relay opened after messages were published copies the owner's whole ring.
  b.topics->Unsubscribe(1, *id);
  Settle();
  EXPECT_EQ(b.fleet.open(), 1);  // the resumed subscriber still listens
  Recorder late;
  ASSERT_TRUE(a.topics->Subscribe(0, &late, 1, "u", 0, 0, false).ok());
  Settle();
  for (int i = 1; i <= 3; ++i) a.Publish(1, "u", "m" + std::to_string(i));
  Settle();
  Recorder from2;
  ASSERT_TRUE(b.topics->Subscribe(0, &from2, 1, "u", 2, late.got.back().page, false).ok());
  Settle();
  EXPECT_EQ(from2.Values(), Range(2, 3));
}

TEST_F(FleetTest, AMoveHandsTheTopicOverWithNothingLostOrRepeated) {
  Recorder ra, rb;
  ASSERT_TRUE(a.topics->Subscribe(1, &ra, 1, "t", 0, 0, false).ok());
  ASSERT_TRUE(b.topics->Subscribe(0, &rb, 1, "t", 0, 0, false).ok());
  Settle();
  for (int i = 1; i <= 20; ++i) a.Publish(1, "t", "m" + std::to_string(i));
  // The move: with publishes paused, A's state goes to B; then the map says B.
  std::vector<TopicState> states;
  a.topics->ExportRange(0, 0, routing::kSlots - 1, [&](std::vector<TopicState> s) { states = std::move(s); });
  Settle();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].next_seq, 21u);
  EXPECT_EQ(states[0].ring.size(), 20u);
  bool kept = false;
  b.topics->ImportStates(0, std::move(states), [&] { kept = true; });
  Settle();
  ASSERT_TRUE(kept);
  MoveTo("B");
  for (int i = 21; i <= 40; ++i) b.Publish(1, "t", "m" + std::to_string(i));
  Settle();
  for (Recorder* r : {&ra, &rb}) {
    EXPECT_EQ(r->Values(), Range(1, 40));
    EXPECT_EQ(r->Count(Got::kDisc), 0);
    EXPECT_EQ(r->Count(Got::kEnd), 0);
    EXPECT_EQ(r->got.back().seq, 40u);
    EXPECT_EQ(r->got.back().page, r->got[1].page);  // one page throughout
  }
  EXPECT_EQ(a.fleet.opened, 1u);  // A now relays from B
  EXPECT_EQ(b.fleet.open(), 0);   // B's relay to A ended
  EXPECT_EQ(b.topics->FleetSnapshot().handed_over, 1u);
}

TEST_F(FleetTest, AnOwnerGoneWithoutHandOverMeansANewPageAndAGap) {
  Recorder rb;
  ASSERT_TRUE(b.topics->Subscribe(0, &rb, 1, "t", 0, 0, false).ok());
  Settle();
  for (int i = 1; i <= 5; ++i) a.Publish(1, "t", "m" + std::to_string(i));
  Settle();
  const uint64_t old_page = rb.got.back().page;
  // A dies; the map gives its slots to B, empty.
  owner = "B";
  b.fleet.BreakAll();
  Settle();
  b.topics->RoutesChanged();
  Settle();
  EXPECT_EQ(b.Publish(1, "t", "after"), 1);
  Settle();
  ASSERT_EQ(rb.Count(Got::kDisc), 1);
  const Got& disc = rb.got[rb.got.size() - 2];
  EXPECT_EQ(disc.kind, Got::kDisc);
  EXPECT_NE(disc.page, old_page);
  const Got& item = rb.got.back();
  EXPECT_EQ(item.value, "after");
  EXPECT_EQ(item.seq, 1u);  // numbering starts again on the new page
  EXPECT_EQ(item.page, disc.page);
  EXPECT_EQ(b.topics->FleetSnapshot().takeovers, 1u);
}

TEST_F(FleetTest, ARelayForATopicTheNodeDoesNotOwnEndsAndTheMirrorRetries) {
  owner = "";  // no map yet anywhere
  Recorder rb;
  ASSERT_TRUE(b.topics->Subscribe(0, &rb, 1, "t", 0, 0, false).ok());
  Settle();
  EXPECT_EQ(rb.Count(Got::kReady), 0);  // nothing to join yet
  owner = "A";
  // The mirror retries on a timer; the loops run it when it fires.
  for (int i = 0; i < 200 && rb.Count(Got::kReady) == 0; ++i) {
    for (auto& io : b.io) io.run_for(std::chrono::milliseconds(5));
    Settle();
  }
  EXPECT_EQ(rb.Count(Got::kReady), 1);
  a.Publish(1, "t", "m1");
  Settle();
  EXPECT_EQ(rb.Values(), Range(1, 1));
  // A node asked to serve a relay for a topic it does not own ends it.
  Recorder direct;
  ASSERT_TRUE(b.topics->SubscribeRelay(0, &direct, 1, "t", 0, 0, nullptr).ok());
  Settle();
  EXPECT_EQ(direct.Count(Got::kEnd), 1);
  EXPECT_EQ(direct.got.back().code, Code::kUnavailable);
}

TEST_F(FleetTest, ARefusedRelayJoinDoesNotCountDownTheSubscribersThere) {
  owner = "B";
  Recorder ra;
  ASSERT_TRUE(a.topics->Subscribe(0, &ra, 1, "t", 0, 0, false).ok());  // A mirrors B
  Settle();
  // Relays from nodes with an older map reach A, which does not own the topic: each is
  // refused, and A's own subscriber stays counted.
  Recorder stray[3];
  for (Recorder& r : stray) ASSERT_TRUE(a.topics->SubscribeRelay(0, &r, 1, "t", 0, 0, nullptr).ok());
  Settle();
  for (Recorder& r : stray) EXPECT_EQ(r.Count(Got::kEnd), 1);
  b.Publish(1, "t", "m1");
  Settle();
  EXPECT_EQ(ra.Values(), Range(1, 1));
  EXPECT_EQ(a.fleet.open(), 1);  // A's relay to B is still there
}

TEST_F(FleetTest, AMirrorFallenBehindTheHandedOverRingHearsOfTheGap) {
  // A ring of 4 messages on A.
  a.topics = std::make_unique<Topics>(std::vector{&a.io[0], &a.io[1]},
                                      Options{.replay_messages = 4});
  a.topics->set_fleet(&a.fleet);
  Recorder rb;
  ASSERT_TRUE(b.topics->Subscribe(0, &rb, 1, "t", 0, 0, false).ok());
  Settle();
  for (int i = 1; i <= 3; ++i) a.Publish(1, "t", "m" + std::to_string(i));
  Settle();
  // B's relay breaks and cannot come back (no map), while A numbers 4..10; its ring keeps 7..10.
  owner = "";
  b.fleet.BreakAll();
  for (int i = 4; i <= 10; ++i) a.Publish(1, "t", "m" + std::to_string(i));
  std::vector<TopicState> states;
  a.topics->ExportRange(0, 0, routing::kSlots - 1, [&](std::vector<TopicState> s) { states = std::move(s); });
  Settle();
  ASSERT_EQ(states.size(), 1u);
  b.topics->ImportStates(0, std::move(states), [] {});
  Settle();
  MoveTo("B");
  Settle();
  // 1..3, then the gap 4..6 said, then 7..10 from the handed-over ring, on one page.
  EXPECT_EQ(rb.Values(), (std::vector<std::string>{"m1", "m2", "m3", "m7", "m8", "m9", "m10"}));
  ASSERT_EQ(rb.Count(Got::kDisc), 1);
  for (const Got& g : rb.got) {
    if (g.kind == Got::kDisc) {
      EXPECT_EQ(g.next, 6u);
    }
  }
}

TEST_F(FleetTest, AHandOverOfAnAbortedMoveIsVoid) {
  Recorder rb;
  ASSERT_TRUE(b.topics->Subscribe(0, &rb, 1, "t", 0, 0, false).ok());
  Settle();
  for (int i = 1; i <= 3; ++i) a.Publish(1, "t", "m" + std::to_string(i));
  std::vector<TopicState> states;
  a.topics->ExportRange(0, 0, routing::kSlots - 1, [&](std::vector<TopicState> s) { states = std::move(s); });
  Settle();
  b.topics->ImportStates(0, std::move(states), [] {});
  Settle();
  // The move aborts: B drops what it was handed. Later A dies and B takes the topic over
  // without a hand-over: a new page, and the gap said.
  b.topics->DropHandOvers(0, routing::kSlots - 1);
  Settle();
  owner = "B";
  b.fleet.BreakAll();
  b.topics->RoutesChanged();
  Settle();
  b.Publish(1, "t", "after");
  Settle();
  ASSERT_EQ(rb.Count(Got::kDisc), 1);
  EXPECT_EQ(rb.got.back().value, "after");
  EXPECT_EQ(rb.got.back().seq, 1u);
  EXPECT_NE(rb.got.back().page, rb.got[1].page);
  EXPECT_EQ(b.topics->FleetSnapshot().handed_over, 0u);
}

TEST_F(FleetTest, AHandedOverRingIsHeldToTheReceiversReplayLimit) {
  b.topics = std::make_unique<Topics>(std::vector{&b.io[0], &b.io[1]},
                                      Options{.replay_messages = 4});
  b.topics->set_fleet(&b.fleet);
  for (int i = 1; i <= 10; ++i) a.Publish(1, "t", "m" + std::to_string(i));
  std::vector<TopicState> states;
  a.topics->ExportRange(0, 0, routing::kSlots - 1, [&](std::vector<TopicState> s) { states = std::move(s); });
  Settle();
  ASSERT_EQ(states.size(), 1u);
  const uint64_t page = states[0].page;
  ASSERT_EQ(states[0].ring.size(), 10u);
  b.topics->ImportStates(0, std::move(states), [] {});
  Settle();
  MoveTo("B");
  Settle();
  // B kept its own 4: a resume from 1 on the old page hears of the gap, then gets 7..10.
  Recorder r;
  ASSERT_TRUE(b.topics->Subscribe(0, &r, 1, "t", 1, page, false).ok());
  Settle();
  EXPECT_EQ(r.Values(), Range(7, 10));
  ASSERT_EQ(r.Count(Got::kDisc), 1);
  EXPECT_EQ(r.got[1].next, 6u);
  EXPECT_EQ(r.got.back().page, page);  // the numbering went on
}

}  // namespace
}  // namespace cellar::topics
