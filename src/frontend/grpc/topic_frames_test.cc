// The hand-encoded Pubsub frames decode, with the generated protobuf code, as the SDK sees them.
#include "frontend/grpc/topic_frames.h"

#include <gtest/gtest.h>

#include "cachepubsub.pb.h"
#include "frontend/grpc/framing.h"

namespace cellar::grpc {
namespace {

namespace pb = cache_client::pubsub;

pb::_SubscriptionItem Decode(std::string_view frame) {
  pb::_SubscriptionItem item;
  EXPECT_GE(frame.size(), 5u);
  EXPECT_EQ(DeclaredLength(frame), frame.size() - 5);
  EXPECT_TRUE(item.ParseFromArray(frame.data() + 5, static_cast<int>(frame.size() - 5)));
  return item;
}

TEST(TopicFrames, ItemsDecodeAsTheSdkSeesThem) {
  for (bool binary : {false, true}) {
    topics::TopicMessage m;
    m.seq = binary ? 2 : 1;
    m.page = (uint64_t{1} << 52) + 7;
    m.binary = binary;
    m.topic = "room";
    m.publisher_id = "token-7";
    m.value = binary ? std::string("\0\xff\r\n", 4) : std::string("hello");
    std::string frame;
    EncodeTopicItem(m, frame);
    const pb::_SubscriptionItem item = Decode(frame);
    ASSERT_TRUE(item.has_item());
    EXPECT_EQ(item.item().topic_sequence_number(), m.seq);
    EXPECT_EQ(item.item().sequence_page(), m.page);
    EXPECT_EQ(item.item().publisher_id(), "token-7");
    if (binary) {
      EXPECT_EQ(item.item().value().binary(), m.value);
    } else {
      EXPECT_EQ(item.item().value().text(), "hello");
    }
  }
  // Zero and empty fields are omitted, as proto3 does; the value is still there.
  topics::TopicMessage bare;
  std::string frame;
  EncodeTopicItem(bare, frame);
  const pb::_SubscriptionItem item = Decode(frame);
  ASSERT_TRUE(item.has_item());
  EXPECT_TRUE(item.item().value().has_text());
  EXPECT_EQ(item.item().topic_sequence_number(), 0u);
}

TEST(TopicFrames, HeartbeatAndDiscontinuity) {
  EXPECT_TRUE(Decode(HeartbeatFrame()).has_heartbeat());
  const pb::_SubscriptionItem disc = Decode(DiscontinuityFrame(4, 9, 77));
  ASSERT_TRUE(disc.has_discontinuity());
  EXPECT_EQ(disc.discontinuity().last_topic_sequence(), 4u);
  EXPECT_EQ(disc.discontinuity().new_topic_sequence(), 9u);
  EXPECT_EQ(disc.discontinuity().new_sequence_page(), 77u);
}

}  // namespace
}  // namespace cellar::grpc
