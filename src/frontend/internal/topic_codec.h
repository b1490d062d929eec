// The payloads of the internal frames that carry topics between nodes (peers.h): a relay's
// subscription to a topic's owner and what comes back on it, and the topic states a slot move
// hands over (topics/topics.h, Fleet and TopicState). Our own compact format over
// common/wire.h; decoding is strict (a short or long payload, an unknown status: false).
//
//   subscribe:  u32 cache id, u64 resume_at, u64 page, str topic
//   joined:     u64 latest, u64 page
//   gap:        u64 last, u64 next, u64 page
//   item:       u64 seq, u64 page, u8 binary, str publisher id, str value
//   end:        u8 status code, str message
//   states:     u32 count, then per topic: u32 cache id, str topic, u64 page, u64 next_seq,
//               u32 n, then per ring message: u64 seq, u8 binary, str publisher id, str value
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "topics/topics.h"

namespace cellar::internal {

struct RelaySubscribe {
  uint32_t cache_id = 0;
  uint64_t resume_at = 0;
  uint64_t page = 0;
  std::string_view topic;  // into the payload
};
void EncodeSubscribe(const RelaySubscribe& s, std::string& out);
bool DecodeSubscribe(std::string_view in, RelaySubscribe* s);

void EncodeJoined(uint64_t latest, uint64_t page, std::string& out);
bool DecodeJoined(std::string_view in, uint64_t* latest, uint64_t* page);

void EncodeGap(uint64_t last, uint64_t next, uint64_t page, std::string& out);
bool DecodeGap(std::string_view in, uint64_t* last, uint64_t* next, uint64_t* page);

// An item travels without its cache and topic (the relay knows them) and without encodings.
void EncodeItem(const topics::TopicMessage& m, std::string& out);
bool DecodeItem(std::string_view in, topics::TopicMessage* m);

void EncodeEnd(const Status& why, std::string& out);
bool DecodeEnd(std::string_view in, Status* why);

void EncodeStates(const std::vector<topics::TopicState>& states, std::string& out);
// `encoder` (may be null) gives each message its wire forms (Topics::Encode).
bool DecodeStates(std::string_view in, std::vector<topics::TopicState>* states,
                  const topics::Topics* encoder);

}  // namespace cellar::internal
