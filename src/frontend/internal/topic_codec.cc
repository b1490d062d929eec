#include "frontend/internal/topic_codec.h"

#include <memory>

#include "common/wire.h"

namespace cellar::internal {

using wire::Put;
using wire::PutStr;
using wire::Reader;

void EncodeSubscribe(const RelaySubscribe& s, std::string& out) {
  Put(out, s.cache_id);
  Put(out, s.resume_at);
  Put(out, s.page);
  PutStr(out, s.topic);
}

bool DecodeSubscribe(std::string_view in, RelaySubscribe* s) {
  Reader r(in);
  return r.Get(&s->cache_id) && r.Get(&s->resume_at) && r.Get(&s->page) && r.Str(&s->topic) &&
         r.done();
}

void EncodeJoined(uint64_t latest, uint64_t page, std::string& out) {
  Put(out, latest);
  Put(out, page);
}

bool DecodeJoined(std::string_view in, uint64_t* latest, uint64_t* page) {
  Reader r(in);
  return r.Get(latest) && r.Get(page) && r.done();
}

void EncodeGap(uint64_t last, uint64_t next, uint64_t page, std::string& out) {
  Put(out, last);
  Put(out, next);
  Put(out, page);
}

bool DecodeGap(std::string_view in, uint64_t* last, uint64_t* next, uint64_t* page) {
  Reader r(in);
  return r.Get(last) && r.Get(next) && r.Get(page) && r.done();
}

void EncodeItem(const topics::TopicMessage& m, std::string& out) {
  Put(out, m.seq);
  Put(out, m.page);
  Put<uint8_t>(out, m.binary ? 1 : 0);
  PutStr(out, m.publisher_id);
  PutStr(out, m.value);
}

namespace {
bool GetMessageBody(Reader& r, topics::TopicMessage* m) {
  uint8_t binary = 0;
  std::string_view publisher, value;
  if (!r.Get(&binary) || binary > 1 || !r.Str(&publisher) || !r.Str(&value)) return false;
  m->binary = binary != 0;
  m->publisher_id.assign(publisher);
  m->value.assign(value);
  return true;
}
}  // namespace

bool DecodeItem(std::string_view in, topics::TopicMessage* m) {
  Reader r(in);
  return r.Get(&m->seq) && r.Get(&m->page) && GetMessageBody(r, m) && r.done();
}

void EncodeEnd(const Status& why, std::string& out) {
  Put<uint8_t>(out, static_cast<uint8_t>(why.code()));
  PutStr(out, why.message());
}

bool DecodeEnd(std::string_view in, Status* why) {
  Reader r(in);
  uint8_t code = 0;
  std::string_view message;
  if (!r.Get(&code) || code > static_cast<uint8_t>(Code::kInternal) || !r.Str(&message) ||
      !r.done()) {
    return false;
  }
  *why = Status(static_cast<Code>(code), std::string(message));
  return true;
}

void EncodeStates(const std::vector<topics::TopicState>& states, std::string& out) {
  Put<uint32_t>(out, static_cast<uint32_t>(states.size()));
  for (const topics::TopicState& s : states) {
    Put(out, s.cache_id);
    PutStr(out, s.topic);
    Put(out, s.page);
    Put(out, s.next_seq);
    Put<uint32_t>(out, static_cast<uint32_t>(s.ring.size()));
    for (const topics::MessagePtr& m : s.ring) {
      Put(out, m->seq);
      Put<uint8_t>(out, m->binary ? 1 : 0);
      PutStr(out, m->publisher_id);
      PutStr(out, m->value);
    }
  }
}

bool DecodeStates(std::string_view in, std::vector<topics::TopicState>* states,
                  const topics::Topics* encoder) {
  Reader r(in);
  uint32_t n = 0;
  // A state is at least 28 bytes (an empty name and ring), a message at least 17.
  if (!r.Count(&n, 28)) return false;
  states->clear();
  states->reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    topics::TopicState& s = states->emplace_back();
    std::string_view topic;
    uint32_t count = 0;
    if (!r.Get(&s.cache_id) || !r.Str(&topic) || !r.Get(&s.page) || !r.Get(&s.next_seq) ||
        !r.Count(&count, 17)) {
      return false;
    }
    s.topic.assign(topic);
    s.ring.reserve(count);
    uint64_t prev = 0;
    for (uint32_t k = 0; k < count; ++k) {
      auto m = std::make_shared<topics::TopicMessage>();
      if (!r.Get(&m->seq) || !GetMessageBody(r, m.get())) return false;
      // A ring is in order, and below the next number.
      if (m->seq <= prev || m->seq >= s.next_seq) return false;
      prev = m->seq;
      m->cache_id = s.cache_id;
      m->page = s.page;
      m->topic = s.topic;
      if (encoder != nullptr) encoder->Encode(*m);
      s.ring.push_back(std::move(m));
    }
  }
  return r.done();
}

}  // namespace cellar::internal
