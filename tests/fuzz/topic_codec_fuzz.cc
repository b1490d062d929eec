// libFuzzer target for the topic frames nodes of a fleet exchange (frontend/internal/
// topic_codec.h): a relay's subscribe, the owner's joined / gap / item / end answers, and the
// topic states a slot move hands over. Whatever a peer sends must decode or be refused whole,
// never crash or over-allocate; what decodes encodes again to exactly the same bytes (the
// format is canonical: nothing dropped or invented).
// Byte 0 picks the decoder (mod 6): subscribe, joined, gap, item, end, states.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/internal/topic_codec.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cellar;
  using namespace cellar::internal;
  if (size < 1) return 0;
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string again;
  switch (data[0] % 6) {
    case 0: {
      RelaySubscribe s;
      if (!DecodeSubscribe(in, &s)) return 0;
      EncodeSubscribe(s, again);
      break;
    }
    case 1: {
      uint64_t latest = 0, page = 0;
      if (!DecodeJoined(in, &latest, &page)) return 0;
      EncodeJoined(latest, page, again);
      break;
    }
    case 2: {
      uint64_t last = 0, next = 0, page = 0;
      if (!DecodeGap(in, &last, &next, &page)) return 0;
      EncodeGap(last, next, page, again);
      break;
    }
    case 3: {
      topics::TopicMessage m;
      if (!DecodeItem(in, &m)) return 0;
      EncodeItem(m, again);
      break;
    }
    case 4: {
      Status why;
      if (!DecodeEnd(in, &why)) return 0;
      EncodeEnd(why, again);
      break;
    }
    default: {
      std::vector<topics::TopicState> states;
      if (!DecodeStates(in, &states, nullptr)) return 0;
      for (const auto& s : states) {
        for (size_t i = 0; i < s.ring.size(); ++i) {
          FUZZ_CHECK(s.ring[i]->seq < s.next_seq);
          FUZZ_CHECK(i == 0 || s.ring[i - 1]->seq < s.ring[i]->seq);
        }
      }
      EncodeStates(states, again);
      break;
    }
  }
  FUZZ_CHECK(again == in);
  return 0;
}
