#include "frontend/resp/topic_pushes.h"

#include "common/numbers.h"

namespace cellar::resp {

namespace {
void AppendBulk(std::string& out, std::string_view s) {
  out.push_back('$');
  AppendInt(out, static_cast<int64_t>(s.size()));
  out.append("\r\n");
  out.append(s);
  out.append("\r\n");
}
}  // namespace

void EncodeTopicTail(const topics::TopicMessage& m, std::string& out) {
  out.reserve(m.topic.size() + m.value.size() + 32);
  AppendBulk(out, m.topic);
  AppendBulk(out, m.value);
}

std::string_view MessageHeader(int proto) {
  return proto >= 3 ? std::string_view(">3\r\n$7\r\nmessage\r\n")
                    : std::string_view("*3\r\n$7\r\nmessage\r\n");
}

void AppendPMessageHeader(std::string& out, int proto, std::string_view pattern) {
  out.append(proto >= 3 ? ">4\r\n$8\r\npmessage\r\n" : "*4\r\n$8\r\npmessage\r\n");
  AppendBulk(out, pattern);
}

}  // namespace cellar::resp
