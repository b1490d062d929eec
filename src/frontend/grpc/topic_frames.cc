#include "frontend/grpc/topic_frames.h"

#include "frontend/grpc/framing.h"

namespace cellar::grpc {

namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// tag + length + bytes of a length-delimited field.
size_t FieldSize(size_t len) { return 1 + VarintSize(len) + len; }

}  // namespace

void EncodeTopicItem(const topics::TopicMessage& m, std::string& out) {
  const std::string_view value = m.value;
  const size_t value_msg = FieldSize(value.size());
  size_t item = FieldSize(value_msg);
  if (m.seq != 0) item += 1 + VarintSize(m.seq);
  if (!m.publisher_id.empty()) item += FieldSize(m.publisher_id.size());
  if (m.page != 0) item += 1 + VarintSize(m.page);
  const size_t total = FieldSize(item);
  out.reserve(5 + total);
  AppendPrefix(out, total);
  out.push_back(0x0a);  // item
  PutVarint(out, item);
  if (m.seq != 0) {
    out.push_back(0x08);
    PutVarint(out, m.seq);
  }
  out.push_back(0x12);  // value
  PutVarint(out, value_msg);
  out.push_back(m.binary ? 0x12 : 0x0a);
  PutVarint(out, value.size());
  out.append(value);
  if (!m.publisher_id.empty()) {
    out.push_back(0x1a);
    PutVarint(out, m.publisher_id.size());
    out.append(m.publisher_id);
  }
  if (m.page != 0) {
    out.push_back(0x20);
    PutVarint(out, m.page);
  }
}

std::string_view HeartbeatFrame() {
  static constexpr char kFrame[] = {0, 0, 0, 0, 2, 0x1a, 0};
  return std::string_view(kFrame, sizeof(kFrame));
}

std::string DiscontinuityFrame(uint64_t last_seq, uint64_t new_seq, uint64_t new_page) {
  std::string body;
  if (last_seq != 0) {
    body.push_back(0x08);
    PutVarint(body, last_seq);
  }
  if (new_seq != 0) {
    body.push_back(0x10);
    PutVarint(body, new_seq);
  }
  if (new_page != 0) {
    body.push_back(0x18);
    PutVarint(body, new_page);
  }
  std::string out;
  AppendPrefix(out, FieldSize(body.size()));
  out.push_back(0x12);  // discontinuity
  PutVarint(out, body.size());
  out.append(body);
  return out;
}

}  // namespace cellar::grpc
