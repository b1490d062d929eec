// The binary form of calls and replies between nodes (a node forwards the calls whose slot
// another node owns: gateway/forward.h). Our own compact format, little-endian, length-
// prefixed strings; both ends run the same build of Cellar (checked at the connection's
// hello), so it carries no versioned schema.
//
//   calls:   u32 count, then per call: u8 op, i16 shard (-1: the key's; a cache-wide call's
//            shard on the receiving node), u32 flags, u32 cache id, i64 expire_at (Unix ms),
//            i64 ms left before its deadline (-1: none), str key, value, pattern, check,
//            params (u8 variant index, then its fields), u32 n + str args, u32 n + f64 scores,
//            u32 n + i64 numbers
//   replies: u32 count, then per reply: u8 status code, str message, u8 found, u8 flags
//            (1 not_run, 2 moved),
//            i64 integer, str value, u32 n + str keys, u32 n + i64 numbers, u32 n + str items,
//            u32 n + f64 scores, i64 length
//   str:     u32 length, bytes
//
// Decoding is strict: a length past the end, an unknown op, status or params index, or bytes
// left over make the whole frame invalid (nullopt): it came from a peer, but a peer can be
// buggy or a stray connection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/request.h"
#include "gateway/gateway.h"

namespace cellar::gateway {

// Appends the calls batch.calls[indices] to out. now_ms: steady ms (deadlines travel as what
// is left, since steady clocks differ between machines). shard_base: subtracted from the
// fleet shard of cache-wide calls (Routes::FleetShards), giving the receiver's own shard.
void EncodeCalls(const Batch& batch, std::span<const uint32_t> indices, int64_t now_ms,
                 std::string& out, int32_t shard_base = 0);

// Calls decoded from a frame. The requests' string_views point into `frame` (which this owns)
// and into its own argument arrays; keep it alive until the replies are encoded.
struct DecodedCalls {
  std::string frame;
  Batch batch;  // calls in frame order; deadline_ms on the receiver's steady clock
  std::vector<std::unique_ptr<std::vector<std::string_view>>> args;
  std::vector<std::unique_ptr<std::vector<double>>> scores;
  std::vector<std::unique_ptr<std::vector<int64_t>>> numbers;
};
std::unique_ptr<DecodedCalls> DecodeCalls(std::string frame, int64_t now_ms);

// Appends the replies of calls (in order) to out.
void EncodeReplies(std::span<const Call> calls, std::string& out);
// Fills batch.calls[indices[i]].reply (and not_run) from the frame's i-th reply. False when
// the frame is invalid or holds another number of replies (nothing may then be trusted).
bool DecodeReplies(std::string_view frame, Batch& batch, std::span<const uint32_t> indices);

}  // namespace cellar::gateway
