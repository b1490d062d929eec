// Pubsub/Subscribe's frames, hand-encoded once per message (a fan-out to many subscribers
// copies them, never encodes): the item encoder topics runs at publish
// (topics::Topics::RegisterEncoding), and the frames of heartbeats and discontinuities.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "topics/topics.h"

namespace cellar::grpc {

// _SubscriptionItem { 1: _TopicItem { 1 seq, 2 _TopicValue { 1 text | 2 binary }, 3 publisher
// id, 4 page } }, framed (5-byte prefix). Zero and empty fields are omitted, as proto3 does.
void EncodeTopicItem(const topics::TopicMessage& m, std::string& out);
// _SubscriptionItem { 3: _Heartbeat {} }, framed.
std::string_view HeartbeatFrame();
// _SubscriptionItem { 2: _Discontinuity { 1 last_topic_sequence, 2 new_topic_sequence,
// 3 new_sequence_page } }, framed.
std::string DiscontinuityFrame(uint64_t last_seq, uint64_t new_seq, uint64_t new_page);

}  // namespace cellar::grpc
