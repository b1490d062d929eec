// gRPC message framing and header values, independent of HTTP/2 (so they are unit-tested and
// fuzzed alone): the 5-byte length prefix, grpc-timeout, grpc-message percent-encoding. The
// status-to-wire table (GrpcCode, WireStatus, ToWire) is errors.h, included here for callers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "frontend/grpc/errors.h"

namespace cellar::grpc {

// The largest request message the SDK sends (its max_send_message_length).
inline constexpr size_t kMaxWireMessage = 10'486'000;
inline constexpr size_t kPrefixBytes = 5;

// A request body must hold exactly one message: flag byte 0 (uncompressed), a 4-byte
// big-endian length, then that many bytes. Anything else is an error whose Status says what.
// A compressed message (flag 1) is refused: we advertise only the identity encoding.
StatusOr<std::string_view> UnaryMessage(std::string_view body);

// The declared length of the first message once its prefix has arrived (for refusing an
// oversized message before it is buffered); nullopt while fewer than 5 bytes are in.
std::optional<uint32_t> DeclaredLength(std::string_view body_start);

// Appends the 5-byte prefix for a message of `len` bytes.
void AppendPrefix(std::string& out, size_t len);

// grpc-timeout: 1 to 8 ASCII digits and a unit (H M S m u n). Returns milliseconds (rounded
// up, so 1n is 1 ms), or nullopt if malformed.
std::optional<int64_t> ParseTimeoutMillis(std::string_view v);

// grpc-message is percent-encoded: bytes outside 0x20..0x7E and '%' become %XX.
std::string PercentEncode(std::string_view s);

}  // namespace cellar::grpc
