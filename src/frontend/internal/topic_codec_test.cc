// The topic frames between nodes (topic_codec.h): every payload round-trips, and truncated,
// padded or inconsistent ones are refused whole.
#include "frontend/internal/topic_codec.h"

#include <gtest/gtest.h>

namespace cellar::internal {
namespace {

topics::MessagePtr Msg(uint64_t seq, std::string value, bool binary = false) {
  auto m = std::make_shared<topics::TopicMessage>();
  m->seq = seq;
  m->value = std::move(value);
  m->binary = binary;
  m->publisher_id = "p";
  return m;
}

TEST(TopicCodec, RelayFramesRoundTrip) {
  std::string out;
  EncodeSubscribe(RelaySubscribe{7, 12, topics::kWholeRing, "news"}, out);
  RelaySubscribe s;
  ASSERT_TRUE(DecodeSubscribe(out, &s));
  EXPECT_EQ(s.cache_id, 7u);
  EXPECT_EQ(s.resume_at, 12u);
  EXPECT_EQ(s.page, topics::kWholeRing);
  EXPECT_EQ(s.topic, "news");
  EXPECT_FALSE(DecodeSubscribe(out + "x", &s));
  EXPECT_FALSE(DecodeSubscribe(out.substr(0, out.size() - 1), &s));

  topics::TopicMessage m;
  m.seq = 42;
  m.page = 9;
  m.binary = true;
  m.publisher_id = "jti";
  m.value = std::string("\0\xff", 2);
  out.clear();
  EncodeItem(m, out);
  topics::TopicMessage back;
  ASSERT_TRUE(DecodeItem(out, &back));
  EXPECT_EQ(back.seq, 42u);
  EXPECT_EQ(back.page, 9u);
  EXPECT_TRUE(back.binary);
  EXPECT_EQ(back.publisher_id, "jti");
  EXPECT_EQ(back.value, m.value);

  out.clear();
  EncodeEnd(Status(Code::kUnavailable, "moved"), out);
  Status why;
  ASSERT_TRUE(DecodeEnd(out, &why));
  EXPECT_EQ(why.code(), Code::kUnavailable);
  EXPECT_EQ(why.message(), "moved");
  out[0] = 99;  // no such status
  EXPECT_FALSE(DecodeEnd(out, &why));
}

TEST(TopicCodec, StatesRoundTripAndAreChecked) {
  std::vector<topics::TopicState> states(3);
  states[0].cache_id = 1;
  states[0].topic = "a";  // the smallest state: a one-byte name, an empty ring
  states[0].page = 5;
  states[0].next_seq = 1;
  states[1].cache_id = 2;
  states[1].topic = "b";
  states[1].page = 6;
  states[1].next_seq = 4097;
  for (uint64_t s = 1; s <= 4096; ++s) states[1].ring.push_back(Msg(s, "v" + std::to_string(s)));
  states[2].cache_id = 3;
  states[2].topic = "";
  states[2].page = 7;
  states[2].next_seq = 3;
  states[2].ring.push_back(Msg(2, "", true));
  std::string out;
  EncodeStates(states, out);
  std::vector<topics::TopicState> back;
  ASSERT_TRUE(DecodeStates(out, &back, nullptr));
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[1].ring.size(), 4096u);
  EXPECT_EQ(back[1].ring.back()->value, "v4096");
  EXPECT_EQ(back[1].ring.back()->page, 6u);
  EXPECT_EQ(back[1].ring.back()->cache_id, 2u);
  EXPECT_EQ(back[1].ring.back()->topic, "b");
  EXPECT_TRUE(back[2].ring[0]->binary);
  std::string again;
  EncodeStates(back, again);
  EXPECT_EQ(again, out);
  // Only small states, as many as fit.
  std::vector<topics::TopicState> small(10);
  for (auto& s : small) s.topic = "t";
  out.clear();
  EncodeStates(small, out);
  ASSERT_TRUE(DecodeStates(out, &back, nullptr));
  EXPECT_EQ(back.size(), 10u);
  // A ring out of order, or at or past the next number, is refused.
  states[2].next_seq = 2;
  out.clear();
  EncodeStates(states, out);
  EXPECT_FALSE(DecodeStates(out, &back, nullptr));
  EXPECT_FALSE(DecodeStates(out.substr(0, 10), &back, nullptr));
}

}  // namespace
}  // namespace cellar::internal
