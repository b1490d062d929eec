// Topics on two loops driven by hand (poll until quiet), so cross-loop ordering is exercised
// deterministically: joins, syncs, replay, discontinuities, patterns, removal during delivery,
// cache deletion, limits, and the wire encodings (decoded with the generated protobuf classes).
#include "topics/topics.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cctype>
#include "common/clock.h"
#include "routing/router.h"

namespace cellar::topics {
namespace {


struct Event {
  enum Kind { kReady, kDisc, kItem, kHeartbeat, kEnd } kind;
  SubId id;
  uint64_t seq = 0, a = 0, b = 0, page = 0;
  std::string value, topic;
  Code code = Code::kOk;
};

class Recorder : public Sink {
 public:
  void OnReady(SubId id) override { events.push_back({Event::kReady, id}); }
  void OnDiscontinuity(SubId id, uint64_t last, uint64_t next, uint64_t page) override {
    events.push_back({Event::kDisc, id, 0, last, next, page});
  }
  void OnItem(SubId id, const MessagePtr& m) override {
    events.push_back({Event::kItem, id, m->seq, 0, 0, m->page, m->value, m->topic});
    if (on_item) on_item(id);
  }
  void OnHeartbeat(SubId id) override { events.push_back({Event::kHeartbeat, id}); }
  void OnEnd(SubId id, const Status& why) override {
    Event e{Event::kEnd, id};
    e.code = why.code();
    events.push_back(e);
  }
  std::vector<uint64_t> Seqs(SubId id) const {
    std::vector<uint64_t> out;
    for (const auto& e : events) {
      if (e.kind == Event::kItem && e.id == id) out.push_back(e.seq);
    }
    return out;
  }
  std::vector<Event> events;
  std::function<void(SubId)> on_item;
};

class TopicsTest : public ::testing::Test {
 protected:
  void Make(Options o = {}) { topics = std::make_unique<Topics>(std::vector{&io0, &io1}, o); }
  // Runs both loops until neither has work.
  void Settle() {
    for (int i = 0; i < 100; ++i) {
      size_t n = io0.poll() + io1.poll();
      io0.restart();
      io1.restart();
      if (n == 0) return;
    }
    FAIL() << "loops did not settle";
  }
  // A topic name owned by loop `owner`.
  static std::string TopicOwnedBy(uint32_t cache, uint32_t owner, std::string prefix = "t") {
    for (int i = 0;; ++i) {
      std::string name = prefix + std::to_string(i);
      if (routing::ShardOf(cache, name, 2) == owner) return name;
    }
  }
  int64_t Publish(uint32_t cache, const std::string& topic, const std::string& value,
                  std::string publisher = "", bool binary = false) {
    api::Request req;
    req.op = api::Op::kPublish;
    req.cache_id = cache;
    req.key = topic;
    req.value = value;
    req.check = publisher;
    if (binary) req.flags |= api::kPublishBinary;
    api::Reply reply;
    topics->Publish(routing::ShardOf(cache, topic, 2), req, reply);
    last_reply_status = reply.status;
    return reply.integer;
  }

  boost::asio::io_context io0, io1;
  std::unique_ptr<Topics> topics;
  Status last_reply_status;
};

TEST_F(TopicsTest, SubscribeOnOneLoopReceivesWhatTheOwnerOnAnotherNumbers) {
  Make();
  const std::string t = TopicOwnedBy(1, 1);
  Recorder r;
  auto id = topics->Subscribe(0, &r, 1, t, 0, 0, true);
  ASSERT_TRUE(id.ok());
  // The owner has not seen the join yet: "from now" starts after this one.
  EXPECT_EQ(Publish(1, t, "before-join"), 0);
  Settle();
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events[0].kind, Event::kReady);
  EXPECT_EQ(Publish(1, t, "a"), 1);
  EXPECT_EQ(Publish(1, t, "b"), 1);
  EXPECT_EQ(Publish(2, t, "other cache"), 0);
  Settle();
  std::vector<std::string> values;
  for (const auto& e : r.events) {
    if (e.kind == Event::kItem) values.push_back(e.value);
  }
  EXPECT_EQ(values, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.Seqs(*id), (std::vector<uint64_t>{2, 3}));
  // A second subscription on the same loop: messages the owner numbered before its join
  // reach the loop (for the first one) but not it.
  Recorder late;
  auto id2 = topics->Subscribe(0, &late, 1, t, 0, 0, false);
  EXPECT_EQ(Publish(1, t, "c"), 1);
  Settle();
  EXPECT_EQ(r.Seqs(*id), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_TRUE(late.Seqs(*id2).empty());
  EXPECT_EQ(Publish(1, t, "d"), 2);
  Settle();
  EXPECT_EQ(late.Seqs(*id2), (std::vector<uint64_t>{5}));
  topics->Unsubscribe(0, *id2);
  topics->Unsubscribe(0, *id);
  Settle();
  EXPECT_EQ(Publish(1, t, "after"), 0);
  EXPECT_EQ(topics->LiveSubscriptions(), 0);
}

TEST_F(TopicsTest, ResumeReplaysFromTheRingOrReportsTheGap) {
  Make(Options{.replay_messages = 4});
  const std::string t = TopicOwnedBy(1, 0);
  Recorder first;
  auto id = topics->Subscribe(1, &first, 1, t, 0, 0, false);
  Settle();
  for (int i = 1; i <= 6; ++i) Publish(1, t, "m" + std::to_string(i));
  Settle();
  ASSERT_EQ(first.Seqs(*id), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  const uint64_t page = first.events.back().page;
  ASSERT_NE(page, 0u);

  // In the ring (3..6): replayed from 4, nothing lost, nothing repeated.
  Recorder resumed;
  auto id2 = topics->Subscribe(1, &resumed, 1, t, 4, page, false);
  Settle();
  EXPECT_EQ(resumed.events[0].kind, Event::kReady);
  EXPECT_EQ(resumed.Seqs(*id2), (std::vector<uint64_t>{4, 5, 6}));
  for (const auto& e : resumed.events) EXPECT_NE(e.kind, Event::kDisc);

  // Partly out of the ring: the gap 2..2 is reported, then 3..6 replayed.
  Recorder gap;
  auto id3 = topics->Subscribe(0, &gap, 1, t, 2, page, false);
  Settle();
  ASSERT_GE(gap.events.size(), 2u);
  EXPECT_EQ(gap.events[1].kind, Event::kDisc);
  EXPECT_EQ(gap.events[1].a, 1u);
  EXPECT_EQ(gap.events[1].b, 2u);
  EXPECT_EQ(gap.events[1].page, page);
  EXPECT_EQ(gap.Seqs(*id3), (std::vector<uint64_t>{3, 4, 5, 6}));

  // Another page: continuity broken, live from the latest.
  Recorder other;
  auto id4 = topics->Subscribe(0, &other, 1, t, 3, page + 2, false);
  Settle();
  ASSERT_GE(other.events.size(), 2u);
  EXPECT_EQ(other.events[1].kind, Event::kDisc);
  EXPECT_EQ(other.events[1].a, 2u);
  EXPECT_EQ(other.events[1].b, 6u);
  EXPECT_TRUE(other.Seqs(*id4).empty());
  // The relays' whole-ring marker as a client's page is just another wrong page.
  Recorder marker;
  auto id5 = topics->Subscribe(0, &marker, 1, t, 3, kWholeRing, false);
  Settle();
  ASSERT_GE(marker.events.size(), 2u);
  EXPECT_EQ(marker.events[1].kind, Event::kDisc);
  EXPECT_EQ(marker.events[1].b, 6u);
  EXPECT_TRUE(marker.Seqs(*id5).empty());
  Publish(1, t, "m7");
  Settle();
  EXPECT_EQ(other.Seqs(*id4), (std::vector<uint64_t>{7}));
  EXPECT_EQ(marker.Seqs(*id5), (std::vector<uint64_t>{7}));
  EXPECT_EQ(resumed.Seqs(*id2), (std::vector<uint64_t>{4, 5, 6, 7}));
}

TEST_F(TopicsTest, PatternsCountAndReceiveMatchingTopicsOfTheirCacheOnly) {
  Make();
  Recorder r;
  auto p = topics->PSubscribe(0, &r, 1, "news.*");
  ASSERT_TRUE(p.ok());
  Settle();
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, Event::kReady);
  Recorder plain;
  auto s = topics->Subscribe(1, &plain, 1, "news.a", 0, 0, false);
  Settle();
  EXPECT_EQ(Publish(1, "news.a", "x"), 2);
  EXPECT_EQ(Publish(1, "news.b", "y"), 1);
  EXPECT_EQ(Publish(1, "sport", "z"), 0);
  EXPECT_EQ(Publish(2, "news.a", "other cache"), 0);
  Settle();
  std::vector<std::string> got;
  for (const auto& e : r.events) {
    if (e.kind == Event::kItem) got.push_back(e.topic + "=" + e.value);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"news.a=x", "news.b=y"}));
  EXPECT_EQ(plain.Seqs(*s).size(), 1u);

  int64_t numpat = -1;
  topics->NumPat(0, 1, [&](int64_t n) { numpat = n; });
  std::vector<int64_t> numsub;
  topics->NumSub(0, 1, {"news.a", "news.b"}, [&](std::vector<int64_t> v) { numsub = v; });
  std::vector<std::string> channels;
  topics->Channels(1, 1, "news*", [&](std::vector<std::string> v) { channels = v; });
  Settle();
  EXPECT_EQ(numpat, 1);
  EXPECT_EQ(numsub, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(channels, (std::vector<std::string>{"news.a"}));

  topics->Unsubscribe(0, *p);
  Settle();
  EXPECT_EQ(Publish(1, "news.b", "gone"), 0);
}

TEST_F(TopicsTest, UnsubscribingDuringADeliveryIsSafeAndSkipsNobodyElse) {
  Make();
  const std::string t = TopicOwnedBy(1, 1);
  Recorder a, b, c;
  auto ia = topics->Subscribe(0, &a, 1, t, 0, 0, false);
  auto ib = topics->Subscribe(0, &b, 1, t, 0, 0, false);
  auto ic = topics->Subscribe(0, &c, 1, t, 0, 0, false);
  Settle();
  // a removes itself and b while the first message is being handed out.
  a.on_item = [&](SubId) {
    topics->Unsubscribe(0, *ia);
    topics->Unsubscribe(0, *ib);
  };
  Publish(1, t, "1");
  Publish(1, t, "2");
  Settle();
  EXPECT_EQ(a.Seqs(*ia), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(b.Seqs(*ib).empty());  // after a in the list: removed before its turn
  EXPECT_EQ(c.Seqs(*ic), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Publish(1, t, "3"), 1);
}

TEST_F(TopicsTest, DeletingACacheEndsItsSubscriptionsWithNotFound) {
  Make();
  Recorder r;
  auto id = topics->Subscribe(0, &r, 5, TopicOwnedBy(5, 1), 0, 0, false);
  auto p = topics->PSubscribe(1, &r, 5, "*");
  Recorder keep;
  auto k = topics->Subscribe(0, &keep, 6, "x", 0, 0, false);
  Settle();
  topics->DropCache(0, 5);
  topics->DropCache(1, 5);
  Settle();
  int ended = 0;
  for (const auto& e : r.events) {
    if (e.kind == Event::kEnd) {
      ++ended;
      EXPECT_EQ(e.code, Code::kNotFound);
      EXPECT_TRUE(e.id == *id || e.id == *p);
    }
  }
  EXPECT_EQ(ended, 2);
  EXPECT_EQ(topics->LiveSubscriptions(), 1);
  EXPECT_EQ(Publish(6, "x", "still here"), 1);
  (void)k;
}

TEST_F(TopicsTest, AfterDeliveriesWaitsForTheItemsAndTheSinksPostedFlushes) {
  Make();
  for (uint32_t sub_loop : {0u, 1u}) {
    for (uint32_t origin : {0u, 1u}) {
      Recorder r;
      const std::string t = TopicOwnedBy(1, 1 - sub_loop, "b" + std::to_string(origin));
      auto id = topics->Subscribe(sub_loop, &r, 1, t, 0, 0, false);
      Settle();
      // The sink "flushes" by posting to its loop, as the front-ends do.
      std::vector<std::string> order;
      boost::asio::io_context& sink_io = sub_loop == 0 ? io0 : io1;
      r.on_item = [&](SubId) {
        order.push_back("item");
        boost::asio::post(sink_io, [&] { order.push_back("flush"); });
      };
      Publish(1, t, "x");
      Publish(1, t, "y");
      topics->AfterDeliveries(origin, [&] { order.push_back("barrier"); });
      Settle();
      EXPECT_EQ(order, (std::vector<std::string>{"item", "item", "flush", "flush", "barrier"}))
          << "subscriber loop " << sub_loop << ", origin " << origin;
      topics->Unsubscribe(sub_loop, *id);
      Settle();
    }
  }
}

// Topics keeps no limits: it asks its Admission (the gateway's tenancy in the server, whose
// own tests check the limits) and passes a refusal on as it is.
class FakeAdmission : public Admission {
 public:
  Status AdmitPublish(uint32_t cache_id, size_t value_bytes) override {
    published.emplace_back(cache_id, value_bytes);
    return refuse_publish ? Status(Code::kResourceExhausted, std::string(kPublishRateText) + ": x")
                          : Status::Ok();
  }
  Status AdmitSubscription(uint32_t cache_id) override {
    if (subscriptions >= max_subscriptions) {
      return Status(Code::kResourceExhausted, std::string(kSubscriptionsText) + ": y");
    }
    ++subscriptions;
    admitted.push_back(cache_id);
    return Status::Ok();
  }
  void ReleaseSubscription(uint32_t cache_id) override {
    --subscriptions;
    released.push_back(cache_id);
  }
  std::vector<std::pair<uint32_t, size_t>> published;
  std::vector<uint32_t> admitted, released;
  bool refuse_publish = false;
  int subscriptions = 0;
  int max_subscriptions = 2;
};

TEST_F(TopicsTest, PublishesAndSubscriptionsAskTheAdmissionAndNamesAreBounded) {
  Make(Options{.max_name_bytes = 8});
  FakeAdmission admission;
  topics->set_admission(&admission);
  Recorder r;
  // Names first: a name over the bound never reaches the admission.
  EXPECT_EQ(topics->Subscribe(0, &r, 1, "123456789", 0, 0, false).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(topics->PSubscribe(0, &r, 1, "*********").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(topics->AdmitPublish(1, "123456789", 1).code(), Code::kInvalidArgument);
  EXPECT_TRUE(admission.admitted.empty());
  EXPECT_TRUE(admission.published.empty());
  EXPECT_TRUE(topics->AdmitPublish(1, "12345678", 5).ok());
  ASSERT_EQ(admission.published.size(), 1u);
  EXPECT_EQ(admission.published[0], (std::pair<uint32_t, size_t>{1, 5}));
  admission.refuse_publish = true;
  Status fast = topics->AdmitPublish(2, "t", 1);
  EXPECT_EQ(fast.code(), Code::kResourceExhausted);
  EXPECT_EQ(Topics::LimitOf(fast), Topics::Limit::kPublishRate);

  auto a = topics->Subscribe(0, &r, 1, "a", 0, 0, false);
  auto b = topics->PSubscribe(1, &r, 2, "b*");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(topics->LiveSubscriptions(), 2);
  auto c = topics->Subscribe(0, &r, 1, "c", 0, 0, false);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(Topics::LimitOf(c.status()), Topics::Limit::kSubscriptions);
  EXPECT_EQ(topics->LiveSubscriptions(), 2);  // a refused subscription keeps nothing
  topics->Unsubscribe(1, *b);
  Settle();
  EXPECT_EQ(admission.released, std::vector<uint32_t>{2});
  EXPECT_EQ(topics->LiveSubscriptions(), 1);
  EXPECT_TRUE(topics->Subscribe(0, &r, 1, "c", 0, 0, false).ok()) << "a place was freed";
  // A deleted cache's subscriptions end and are released.
  topics->DropCache(0, 1);
  Settle();
  EXPECT_EQ(admission.subscriptions, 0);
  EXPECT_EQ(topics->LiveSubscriptions(), 0);
  topics->set_admission(nullptr);
}

TEST_F(TopicsTest, HeartbeatsOnlyForIdleSubscriptionsThatAskedForThem) {
  Make(Options{.heartbeat_ms = 10});
  Recorder hb, quiet;
  auto a = topics->Subscribe(0, &hb, 1, "t", 0, 0, true);
  auto b = topics->Subscribe(0, &quiet, 1, "t", 0, 0, false);
  topics->Start();
  Settle();
  // Two ticks: the first clears "active" (the sync), the second finds it idle.
  io0.run_for(std::chrono::milliseconds(40));
  io0.restart();
  topics->Stop();
  Settle();
  int beats = 0, ends = 0;
  for (const auto& e : hb.events) {
    beats += e.kind == Event::kHeartbeat && e.id == *a;
    ends += e.kind == Event::kEnd && e.code == Code::kUnavailable;
  }
  EXPECT_GE(beats, 1);
  EXPECT_EQ(ends, 1);
  for (const auto& e : quiet.events) EXPECT_NE(e.kind, Event::kHeartbeat);
  (void)b;
}

TEST_F(TopicsTest, SubscriptionsEndWhenTheirTokenExpires) {
  Make(Options{.heartbeat_ms = 10});
  Recorder expired, later, never;
  const int64_t now_s = SystemClock::Get()->NowMillis() / 1000;
  auto a = topics->Subscribe(0, &expired, 1, "t", 0, 0, false, nullptr, now_s - 1);
  auto p = topics->PSubscribe(1, &expired, 1, "*", now_s - 1);
  auto b = topics->Subscribe(0, &later, 1, "t", 0, 0, false, nullptr, now_s + 3600);
  auto c = topics->Subscribe(1, &never, 1, "t", 0, 0, false);
  topics->Start();
  Settle();
  io0.run_for(std::chrono::milliseconds(30));
  io0.restart();
  io1.run_for(std::chrono::milliseconds(30));
  io1.restart();
  Settle();
  std::vector<SubId> ended;
  for (const auto& e : expired.events) {
    if (e.kind == Event::kEnd) {
      EXPECT_EQ(e.code, Code::kUnauthenticated);
      ended.push_back(e.id);
    }
  }
  std::sort(ended.begin(), ended.end());
  std::vector<SubId> want{*a, *p};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ended, want);
  for (const auto& e : later.events) EXPECT_NE(e.kind, Event::kEnd);
  for (const auto& e : never.events) EXPECT_NE(e.kind, Event::kEnd);
  EXPECT_EQ(Publish(1, "t", "still two"), 2);
  EXPECT_EQ(topics->LiveSubscriptions(), 2);
  topics->Stop();
  Settle();
  (void)b;
  (void)c;
}

TEST(TopicsEncoding, EachRegisteredEncoderRunsOncePerMessage) {
  boost::asio::io_context io;
  Topics topics({&io}, Options{});
  static int calls = 0;
  const EncodingId upper = topics.RegisterEncoding([](const TopicMessage& m, std::string& out) {
    ++calls;
    for (char ch : m.value) out.push_back(static_cast<char>(std::toupper(ch)));
  });
  const EncodingId tagged = topics.RegisterEncoding([](const TopicMessage& m, std::string& out) {
    out = m.topic + "#" + std::to_string(m.seq) + ":" + m.value;
  });
  EXPECT_NE(upper, tagged);
  struct Keep : Sink {
    void OnReady(SubId) override {}
    void OnDiscontinuity(SubId, uint64_t, uint64_t, uint64_t) override {}
    void OnItem(SubId, const MessagePtr& m) override { got.push_back(m); }
    void OnEnd(SubId, const Status&) override {}
    std::vector<MessagePtr> got;
  } a, b;
  ASSERT_TRUE(topics.Subscribe(0, &a, 3, "room", 0, 0, false).ok());
  ASSERT_TRUE(topics.Subscribe(0, &b, 3, "room", 0, 0, false).ok());
  io.poll();
  io.restart();
  api::Request req;
  req.op = api::Op::kPublish;
  req.cache_id = 3;
  req.key = "room";
  req.value = "hello";
  req.check = "token-7";
  api::Reply reply;
  topics.Publish(0, req, reply);
  EXPECT_EQ(reply.integer, 2);
  io.poll();
  ASSERT_EQ(a.got.size(), 1u);
  ASSERT_EQ(b.got.size(), 1u);
  EXPECT_EQ(a.got[0], b.got[0]);  // one message, shared
  const TopicMessage& m = *a.got[0];
  EXPECT_EQ(calls, 1);  // encoded once, not once per subscriber
  EXPECT_EQ(m.wire(upper), "HELLO");
  EXPECT_EQ(m.wire(tagged), "room#1:hello");
  EXPECT_EQ(m.value, "hello");
  EXPECT_EQ(m.publisher_id, "token-7");
  EXPECT_LT(m.page, uint64_t{1} << 53);
  EXPECT_GE(m.footprint(), sizeof(TopicMessage) + 5 + 12);
}

}  // namespace
}  // namespace cellar::topics
