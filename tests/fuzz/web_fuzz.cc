// libFuzzer target for the web front-end's parsers (frontend/net/http1.h, frontend/grpc/web.h):
// byte 0 picks one (mod 4).
//  0: HTTP/1.1 requests, fed in pieces whose sizes come from byte 1: a request parses the same
//     however its bytes are split, never past its limits; after kDone the next one parses.
//  1: WebSocket client frames one after another: a frame's payload stays inside the input,
//     and the length consumed covers it; no control frame over 125 bytes gets through.
//  2: query strings and percent-decoding: decoded text is never longer than its source.
//  3: base64 as browsers send it: what decodes encodes back to something that decodes to it.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/grpc/web.h"
#include "frontend/net/http1.h"
#include "fuzz_check.h"

namespace {

using cellar::net::Http1Limits;
using cellar::net::Http1Parser;

// Parses every request in `in`, split into pieces of `step` bytes (0: whole); returns a
// description of each request (or error) to compare across splits.
std::string ParseAll(std::string_view in, size_t step) {
  Http1Parser p(Http1Limits{.max_head_bytes = 2048, .max_headers = 32, .max_body_bytes = 4096});
  std::string out;
  std::string pending;
  size_t pos = 0;
  while (pos < in.size() || !pending.empty()) {
    if (pending.empty()) {
      const size_t n = step == 0 ? in.size() - pos : std::min(step, in.size() - pos);
      pending.assign(in.substr(pos, n));
      pos += n;
    }
    size_t used = 0;
    const auto r = p.Feed(pending, &used);
    FUZZ_CHECK(used <= pending.size());
    FUZZ_CHECK(p.request().body.size() <= 4096);
    pending.erase(0, used);
    if (r == Http1Parser::Result::kError) {
      FUZZ_CHECK(p.status() >= 400 && p.status() < 600);
      out += "E" + std::to_string(p.status()) + ";";
      return out;
    }
    if (r == Http1Parser::Result::kDone) {
      const auto& q = p.request();
      out += q.method + " " + q.path + "?" + q.query + " " + std::to_string(q.headers.size()) +
             " " + std::to_string(q.body.size()) + ":" + q.body + ";";
      p.Reset();
      continue;
    }
    FUZZ_CHECK(pending.empty());  // kNeedMore takes everything
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cellar;
  if (size < 2) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0] % 4) {
    case 0: {
      const std::string whole = ParseAll(in, 0);
      const std::string split = ParseAll(in, 1 + data[1] % 17);
      FUZZ_CHECK(whole == split);
      break;
    }
    case 1: {
      std::string buf(in);
      size_t off = 0;
      while (off < buf.size()) {
        net::WsFrame f;
        size_t used = 0;
        uint16_t code = 0;
        const auto r = net::ParseWsFrame(buf.data() + off, buf.size() - off, 1000, &f, &used, &code);
        if (r != net::WsParse::kFrame) {
          if (r == net::WsParse::kError) FUZZ_CHECK(code >= 1000);
          break;
        }
        FUZZ_CHECK(used <= buf.size() - off && used >= f.payload.size() + 6);
        FUZZ_CHECK(net::WsFrameBytes(buf.data() + off, buf.size() - off) == used);
        FUZZ_CHECK(f.payload.data() >= buf.data() + off &&
                   f.payload.data() + f.payload.size() == buf.data() + off + used);
        FUZZ_CHECK(f.payload.size() <= 1000);
        if (f.opcode & 8) FUZZ_CHECK(f.payload.size() <= 125 && f.fin);
        off += used;
      }
      std::string frame;
      net::AppendWsClose(frame, 1000, in);
      FUZZ_CHECK(frame.size() <= 127);
      break;
    }
    case 2: {
      std::string out;
      if (net::PercentDecode(in, &out, data[1] & 1)) FUZZ_CHECK(out.size() <= in.size());
      if (auto q = net::ParseQuery(in)) {
        for (const auto& [k, v] : *q) FUZZ_CHECK(k.size() + v.size() <= in.size());
      }
      (void)net::IsUtf8(in);
      break;
    }
    case 3: {
      auto decoded = grpc::DecodeBase64Lenient(in);
      if (!decoded) break;
      std::string again;
      grpc::AppendBase64(again, *decoded);
      auto round = grpc::DecodeBase64Lenient(again);
      FUZZ_CHECK(round && *round == *decoded);
      break;
    }
  }
  return 0;
}
