#include "frontend/resp/topic_pushes.h"

#include <gtest/gtest.h>

namespace cellar::resp {
namespace {

TEST(TopicPushes, MessageAndPMessageInBothProtocols) {
  topics::TopicMessage m;
  m.topic = "room";
  m.value = std::string("he\r\nllo\0", 8);
  std::string tail;
  EncodeTopicTail(m, tail);
  EXPECT_EQ(tail, std::string("$4\r\nroom\r\n$8\r\nhe\r\nllo\0\r\n", 24));
  std::string push(MessageHeader(2));
  push.append(tail);
  EXPECT_EQ(push, std::string("*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$8\r\nhe\r\nllo\0\r\n", 41));
  EXPECT_EQ(MessageHeader(3), ">3\r\n$7\r\nmessage\r\n");
  std::string pm;
  AppendPMessageHeader(pm, 3, "r*");
  EXPECT_EQ(pm, ">4\r\n$8\r\npmessage\r\n$2\r\nr*\r\n");
  pm.clear();
  AppendPMessageHeader(pm, 2, "r*");
  EXPECT_EQ(pm, "*4\r\n$8\r\npmessage\r\n$2\r\nr*\r\n");
}

}  // namespace
}  // namespace cellar::resp
