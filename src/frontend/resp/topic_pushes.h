// RESP pushes of topic messages. A push is a header (`message`, or `pmessage` with its
// pattern) and the message's tail in RESP's wire form (EncodeTopicTail, the topics::Encoder
// the server registers: made once per message at publish). The tail holds a copy of the
// value, so that a delivery is two appends (measured: with the value appended apart, a
// 1,000-subscriber fan-out delivered about 6% fewer messages per second).
#pragma once

#include <string>
#include <string_view>

#include "topics/topics.h"

namespace cellar::resp {

// "$<n>\r\n<topic>\r\n$<m>\r\n<value>\r\n": what follows the header in both push kinds.
void EncodeTopicTail(const topics::TopicMessage& m, std::string& out);
//   message:  "*3\r\n$7\r\nmessage\r\n" (RESP2) / ">3\r\n$7\r\nmessage\r\n" (RESP3)
std::string_view MessageHeader(int proto);
//   pmessage: "*4\r\n$8\r\npmessage\r\n$<p>\r\n<pattern>\r\n" (">4..." in RESP3)
void AppendPMessageHeader(std::string& out, int proto, std::string_view pattern);
}  // namespace cellar::resp
