// libFuzzer target for the admin HTTP server's request path (cellar::server::ParseHttpRequest:
// the connection's Beast parser, limits and checks, without a socket).
//
// The input is the byte stream a client sends on one connection before closing it. Requests are
// parsed one after another, as a keep-alive connection reads them, until one is refused, the
// bytes run out, or a request asks to close. Checked:
//   * parsing never crashes, and a refusal is one of the server's fixed answers (400, 413, 431
//     with their fixed texts; or 0, nothing to answer, when the bytes end mid-request);
//   * an accepted request consumed between 1 byte and what was left, and its body is within
//     kAdminBodyLimit; its path starts with '/';
//   * framing, judged again from the raw header bytes by a scanner independent of Beast: an
//     accepted request never carries both Transfer-Encoding and Content-Length, never a
//     Transfer-Encoding other than one line that reads exactly `chunked` (any case, optional
//     whitespace), never one in HTTP/1.0, and never a folded header line;
//   * a request ends where its own bytes end: parsing only its `consumed` bytes gives the same
//     request (so what follows it can never change how it is framed).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "server/admin_http.h"

namespace {

using cellar::server::kAdminBodyLimit;
using cellar::server::ParsedHttpRequest;
using cellar::server::ParseHttpRequest;
using cellar::server::RefusalHttpStatus;

// A keep-alive connection may carry any number; this bounds the work per input.
constexpr int kMaxRequests = 64;

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// What the raw header says about framing, read line by line without Beast.
struct RawFraming {
  bool complete = false;  // a blank line ended the header
  bool http10 = false;
  bool folded = false;  // a line after the request line starts with a space or tab
  int transfer_encodings = 0;
  int content_lengths = 0;
  std::string_view transfer_encoding;  // the last one's value
};

RawFraming ScanHeader(std::string_view bytes) {
  RawFraming raw;
  bool first = true;
  while (!bytes.empty()) {
    std::size_t eol = bytes.find('\n');
    if (eol == std::string_view::npos) return raw;
    std::string_view line = bytes.substr(0, eol);
    bytes.remove_prefix(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      first = false;
      raw.http10 = line.size() >= 8 && line.substr(line.size() - 8) == "HTTP/1.0";
      continue;
    }
    if (line.empty()) {
      raw.complete = true;
      return raw;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      raw.folded = true;
      continue;
    }
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    if (IEquals(name, "transfer-encoding")) {
      ++raw.transfer_encodings;
      raw.transfer_encoding = TrimSpace(line.substr(colon + 1));
    } else if (IEquals(name, "content-length")) {
      ++raw.content_lengths;
    }
  }
  return raw;
}

bool SameRequest(const ParsedHttpRequest& a, const ParsedHttpRequest& b) {
  return a.request.method == b.request.method && a.request.target == b.request.target &&
         a.request.path == b.request.path && a.request.query == b.request.query &&
         a.request.authorization == b.request.authorization && a.request.body == b.request.body &&
         a.keep_alive == b.keep_alive && a.consumed == b.consumed;
}

void CheckRefusal(const cellar::Status& st) {
  const int http = RefusalHttpStatus(st);
  if (http == 0) {
    FUZZ_CHECK(st.code() == cellar::Code::kUnavailable);
    return;
  }
  static const std::string_view k400[] = {
      "malformed HTTP request",
      "request target must be a path",
      "invalid percent-encoding in path",
      "obsolete line folding in request header",
      "request has both Transfer-Encoding and Content-Length",
      "unsupported transfer coding (only chunked is accepted)",
      "Transfer-Encoding in an HTTP/1.0 request",
  };
  if (http == 400) {
    bool known = false;
    for (std::string_view m : k400) known = known || st.message() == m;
    FUZZ_CHECK(known);
  } else if (http == 413) {
    FUZZ_CHECK(st.message() == "request body larger than 1 MiB");
  } else {
    FUZZ_CHECK(http == 431);
    FUZZ_CHECK(st.message() == "request header larger than 16 KiB");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int i = 0; i < kMaxRequests && !rest.empty(); ++i) {
    auto parsed = ParseHttpRequest(rest);
    if (!parsed.ok()) {
      CheckRefusal(parsed.status());
      return 0;  // the connection closes after a refusal: nothing further is read
    }
    FUZZ_CHECK(parsed->consumed > 0 && parsed->consumed <= rest.size());
    FUZZ_CHECK(parsed->request.body.size() <= kAdminBodyLimit);
    FUZZ_CHECK(!parsed->request.path.empty() && parsed->request.path.front() == '/');

    const std::string_view own = rest.substr(0, parsed->consumed);
    const RawFraming raw = ScanHeader(own);
    FUZZ_CHECK(raw.complete);
    FUZZ_CHECK(!raw.folded);
    FUZZ_CHECK(raw.transfer_encodings == 0 || raw.content_lengths == 0);
    if (raw.transfer_encodings > 0) {
      FUZZ_CHECK(raw.transfer_encodings == 1);
      FUZZ_CHECK(IEquals(raw.transfer_encoding, "chunked"));
      FUZZ_CHECK(!raw.http10);
    }

    auto alone = ParseHttpRequest(own);
    FUZZ_CHECK(alone.ok() && SameRequest(*alone, *parsed));

    if (!parsed->keep_alive) return 0;
    rest.remove_prefix(parsed->consumed);
  }
  return 0;
}
