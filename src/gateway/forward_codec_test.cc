#include "gateway/forward_codec.h"

#include <gtest/gtest.h>

#include <cmath>

namespace cellar::gateway {
namespace {

// One call of each kind of argument, so a field left out of the codec fails here.
void Sample(Batch& b, std::vector<std::string_view>& args, std::vector<double>& scores,
            std::vector<int64_t>& numbers) {
  auto add = [&b]() -> Call& { return b.calls.emplace_back(); };
  Call& set = add();
  set.req.op = api::Op::kSet;
  set.req.flags = api::kNx | api::kSetTtl;
  set.req.cache_id = 7;
  set.req.key = std::string_view("k\0ey", 4);
  set.req.value = "value";
  set.req.expire_at = 1'700'000'000'123;
  set.deadline_ms = 10'500;  // 500 ms left at now = 10'000
  Call& incr = add();
  incr.req.op = api::Op::kIncrByFloat;
  incr.req.Set(api::FloatDelta{0.1L});
  Call& zr = add();
  zr.req.op = api::Op::kZRange;
  zr.req.flags = api::kByScore | api::kLoExclusive;
  zr.req.Set(api::ScoreRange{-INFINITY, 2.5, 1, 10});
  Call& zadd = add();
  zadd.req.op = api::Op::kZAdd;
  zadd.req.args = args;
  zadd.req.scores = scores;
  Call& erase = add();
  erase.req.op = api::Op::kLErase;
  erase.req.numbers = numbers;
  erase.req.Set(api::EraseAll{false});
  Call& setif = add();
  setif.req.op = api::Op::kSetIf;
  setif.req.check = "old";
  setif.req.Set(api::Condition{api::SetIfCondition::kPresentAndNotHashEqual});
  Call& pos = add();
  pos.req.op = api::Op::kLPos;
  pos.req.Set(api::Find{-2, 0, 100});
  Call& scan = add();
  scan.req.op = api::Op::kHScan;
  scan.req.pattern = "f*";
  scan.req.Set(api::Cursor{42, 10});
}

TEST(ForwardCodec, CallsRoundTripWithEveryArgumentAndTheDeadlineLeft) {
  std::vector<std::string_view> args{"a", "", "ccc"};
  std::vector<double> scores{1.5, -0.0, 1e300};
  std::vector<int64_t> numbers{0, 2, 5, 1};
  Batch b;
  Sample(b, args, scores, numbers);
  std::vector<uint32_t> all(b.calls.size());
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  std::string frame;
  EncodeCalls(b, all, /*now_ms=*/10'000, frame);
  auto d = DecodeCalls(frame, /*now_ms=*/50'000);  // another machine's steady clock
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->batch.calls.size(), b.calls.size());
  const auto& c = d->batch.calls;
  EXPECT_EQ(c[0].req.op, api::Op::kSet);
  EXPECT_EQ(c[0].req.flags, api::kNx | api::kSetTtl);
  EXPECT_EQ(c[0].req.cache_id, 7u);
  EXPECT_EQ(c[0].req.key, std::string_view("k\0ey", 4));
  EXPECT_EQ(c[0].req.value, "value");
  EXPECT_EQ(c[0].req.expire_at, 1'700'000'000'123);
  EXPECT_EQ(c[0].deadline_ms, 50'500);
  EXPECT_EQ(c[1].deadline_ms, 0);  // none
  EXPECT_EQ(c[1].req.Get<api::FloatDelta>().by, 0.1L);
  EXPECT_EQ(c[2].req.Get<api::ScoreRange>().lo, -INFINITY);
  EXPECT_EQ(c[2].req.Get<api::ScoreRange>().hi, 2.5);
  EXPECT_EQ(c[2].req.Get<api::ScoreRange>().count, 10);
  ASSERT_EQ(c[3].req.args.size(), 3u);
  EXPECT_EQ(c[3].req.args[2], "ccc");
  ASSERT_EQ(c[3].req.scores.size(), 3u);
  EXPECT_TRUE(std::signbit(c[3].req.scores[1]));
  EXPECT_EQ(c[3].req.scores[2], 1e300);
  ASSERT_EQ(c[4].req.numbers.size(), 4u);
  EXPECT_EQ(c[4].req.numbers[2], 5);
  EXPECT_FALSE(c[4].req.Get<api::EraseAll>().all);
  EXPECT_EQ(c[5].req.check, "old");
  EXPECT_EQ(c[5].req.Get<api::Condition>().cond, api::SetIfCondition::kPresentAndNotHashEqual);
  EXPECT_EQ(c[6].req.Get<api::Find>().rank, -2);
  EXPECT_EQ(c[6].req.Get<api::Find>().maxlen, 100);
  EXPECT_EQ(c[7].req.pattern, "f*");
  EXPECT_EQ(c[7].req.Get<api::Cursor>().cursor, 42);
}

TEST(ForwardCodec, RepliesRoundTripIntoTheForwardedCallsOnly) {
  std::vector<Call> calls(2);
  calls[0].reply.status = Status(Code::kWrongType, "wrong kind");
  calls[0].not_run = true;
  calls[1].reply.found = true;
  calls[1].reply.integer = -5;
  calls[1].reply.value = std::string("v\0v", 3);
  calls[1].reply.keys = {"k1", "k2"};
  calls[1].reply.numbers = {1, 0};
  calls[1].reply.items.push_back("x");
  calls[1].reply.items.push_back("");
  calls[1].reply.scores = {0.5};
  calls[1].reply.length = 9;
  std::string frame;
  EncodeReplies(calls, frame);
  Batch b;
  b.calls.resize(5);
  const std::vector<uint32_t> where{4, 1};
  ASSERT_TRUE(DecodeReplies(frame, b, where));
  EXPECT_EQ(b.calls[4].reply.status.code(), Code::kWrongType);
  EXPECT_EQ(b.calls[4].reply.status.message(), "wrong kind");
  EXPECT_TRUE(b.calls[4].not_run);
  const api::Reply& r = b.calls[1].reply;
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.integer, -5);
  EXPECT_EQ(r.value, std::string("v\0v", 3));
  EXPECT_EQ(r.keys, (std::vector<std::string>{"k1", "k2"}));
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.items[0], "x");
  EXPECT_EQ(r.items[1], "");
  EXPECT_EQ(r.scores, std::vector<double>{0.5});
  EXPECT_EQ(r.length, 9);
  EXPECT_TRUE(b.calls[0].reply.status.ok());  // untouched
  // Another number of replies than calls sent: refused.
  const std::vector<uint32_t> three{0, 1, 2};
  EXPECT_FALSE(DecodeReplies(frame, b, three));
}

TEST(ForwardCodec, TruncatedOrHostileFramesAreRefusedWhole) {
  std::vector<std::string_view> args{"a"};
  std::vector<double> scores{1};
  std::vector<int64_t> numbers{1, 1};
  Batch b;
  Sample(b, args, scores, numbers);
  std::vector<uint32_t> all(b.calls.size());
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  std::string frame;
  EncodeCalls(b, all, 0, frame);
  for (size_t cut = 0; cut < frame.size(); ++cut) {
    EXPECT_EQ(DecodeCalls(frame.substr(0, cut), 0), nullptr) << cut;
  }
  EXPECT_EQ(DecodeCalls(frame + "x", 0), nullptr);  // bytes left over
  std::string huge("\xff\xff\xff\xff", 4);          // 4 billion calls in 4 bytes
  EXPECT_EQ(DecodeCalls(huge, 0), nullptr);
  std::string bad_op = frame;
  bad_op[4] = static_cast<char>(200);
  EXPECT_EQ(DecodeCalls(bad_op, 0), nullptr);
  std::string replies;
  std::vector<Call> one(1);
  EncodeReplies(one, replies);
  Batch rb;
  rb.calls.resize(1);
  const std::vector<uint32_t> first{0};
  for (size_t cut = 0; cut < replies.size(); ++cut) {
    EXPECT_FALSE(DecodeReplies(replies.substr(0, cut), rb, first)) << cut;
  }
}

}  // namespace
}  // namespace cellar::gateway
