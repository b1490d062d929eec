// HTTP/1.1 and WebSocket wire pieces for the web front-end (browsers, edge runtimes, curl):
// an incremental request parser with hard limits, query strings, percent-decoding, and
// RFC 6455 framing. No sockets here, so each piece is unit-tested and fuzzed alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.h"

namespace cellar::net {

struct Http1Request {
  std::string method;   // as sent (methods are case-sensitive)
  std::string path;     // the target before '?', still percent-encoded
  std::string query;    // after '?', without it
  int minor = 1;        // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;     // de-chunked
  bool keep_alive = true;

  // The first header of that (lower-case) name, or null.
  const std::string* Header(std::string_view name) const;
  // Whether a comma-separated header (Connection, Upgrade) lists `token` (case-insensitive).
  bool HeaderHas(std::string_view name, std::string_view token) const;
  // Calls fn on each item of the comma-separated lists of every `name` field, in order and
  // trimmed (empty items skipped; fields of one name are one list, RFC 9110 5.3). Stops and
  // returns true once fn does.
  bool AnyListItem(std::string_view name, const std::function<bool(std::string_view)>& fn) const;
};

struct Http1Limits {
  size_t max_head_bytes = 16 * 1024;  // request line and headers
  size_t max_headers = 100;
  size_t max_body_bytes = 16 << 20;
};

// Parses requests one at a time from a byte stream. Feed it what was read; it answers
// kNeedMore (every byte was taken), kDone (request() is complete; `consumed` bytes of this
// feed were used, the rest belongs to the next request) or kError (status() and reason()
// say what to answer; the connection is then closed).
class Http1Parser {
 public:
  enum class Result : uint8_t { kNeedMore, kDone, kError };

  explicit Http1Parser(Http1Limits limits = {}) : limits_(limits) {}

  Result Feed(std::string_view bytes, size_t* consumed);
  Http1Request& request() { return req_; }
  // After kDone or kError: ready for the next request (keeps buffers' capacity).
  void Reset();
  // Whether the request's head is complete (its body may not be).
  bool head_done() const { return state_ != State::kHead; }
  // Body bytes taken so far (for the caller's accounting of buffered requests).
  size_t body_bytes() const { return req_.body.size(); }
  int status() const { return status_; }
  const std::string& reason() const { return reason_; }

 private:
  enum class State : uint8_t { kHead, kBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers,
                               kDone };
  Result Fail(int status, std::string reason);
  Result ParseHead();

  Http1Limits limits_;
  Http1Request req_;
  State state_ = State::kHead;
  std::string head_;        // the head so far
  std::string line_;        // a chunk-size or trailer line so far
  uint64_t remaining_ = 0;  // body or chunk bytes still to come
  size_t trailer_bytes_ = 0;
  int status_ = 0;
  std::string reason_;
};

// Percent-decodes a URL component; `plus_space`: '+' is a space (query strings, as
// URLSearchParams writes them). False on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out, bool plus_space = false);

// The query's parameters, decoded, in order. nullopt on a malformed escape.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view q);

// Appends standard base64 with padding (RFC 4648 §4).
void AppendBase64(std::string& out, std::string_view bytes);

// The standard reason phrase of a status code ("Not Found").
std::string_view ReasonPhrase(int status);

// ---- WebSocket (RFC 6455) -------------------------------------------------------------------

inline constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
std::string WebSocketAccept(std::string_view key);

enum class WsOpcode : uint8_t {
  kContinuation = 0, kText = 1, kBinary = 2, kClose = 8, kPing = 9, kPong = 10,
};

struct WsFrame {
  bool fin = false;
  uint8_t opcode = 0;
  std::string_view payload;  // unmasked, in the caller's buffer
};

// Close codes.
inline constexpr uint16_t kWsNormal = 1000;
inline constexpr uint16_t kWsGoingAway = 1001;
inline constexpr uint16_t kWsProtocolError = 1002;
inline constexpr uint16_t kWsUnsupported = 1003;
inline constexpr uint16_t kWsBadData = 1007;
inline constexpr uint16_t kWsPolicy = 1008;
inline constexpr uint16_t kWsTooBig = 1009;
inline constexpr uint16_t kWsInternal = 1011;
inline constexpr uint16_t kWsTryAgainLater = 1013;

// Parses one client frame at the front of [data, data + size), unmasking its payload in
// place. kNeedMore: not all of it is here. kError: `close_code` says why (unmasked or
// reserved bits, a bad opcode, a control frame over 125 bytes or fragmented, a payload over
// max_payload).
enum class WsParse : uint8_t { kNeedMore, kFrame, kError };
// The whole size of the client frame that starts at `data` (header, mask and payload) once
// its header is in; 0 before. For a reader deciding how much to hold for one frame.
size_t WsFrameBytes(const char* data, size_t size);
WsParse ParseWsFrame(char* data, size_t size, size_t max_payload, WsFrame* frame,
                     size_t* consumed, uint16_t* close_code);

// Appends one unmasked (server) frame, FIN set.
void AppendWsFrame(std::string& out, WsOpcode opcode, std::string_view payload);
// Appends a close frame with a code and a reason (cut to fit 125 bytes).
void AppendWsClose(std::string& out, uint16_t code, std::string_view reason);

// Whether `s` is well-formed UTF-8 (text frames and JSON text values must be): common/json.h's.
using ::cellar::IsUtf8;

// The close code to answer a client's close frame with (RFC 6455 5.5.1, 7.4): its own code
// when well-formed; 1000 when it gave none; 1002 for a 1-byte payload or a code a peer may
// not send (under 1000, 1004-1006, 1015, 1016-2999 unassigned, 5000 and up); 1007 when its
// reason is not UTF-8.
uint16_t WsCloseReply(std::string_view close_payload);

}  // namespace cellar::net
