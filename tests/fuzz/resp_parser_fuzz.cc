// libFuzzer target for cellar::resp::RespParser.
//
// Input layout: byte 0 seeds the chunking and compaction choices, byte 1 picks small
// ParserLimits (so the limits are reached), the rest is the byte stream a client sends.
//
// The stream is fed to the parser in chunks of 1..64 bytes the way a connection reads it:
// append to a buffer, call Next until kNeedMore or kError, and now and then compact the buffer
// (memmove the consumed bytes out, then Shift) as Connection does. Checked:
//   * consumed() <= buffer size, never moves backwards, and advances on every kCommand;
//   * every argument lies inside the command just consumed; multibulk arguments are followed
//     by CRLF and obey max_args / max_bulk_bytes; inline arguments hold no '\n';
//   * compaction never changes what is parsed: the commands equal those of a parser given the
//     whole stream at once (except when an inline line is cut by max_inline_bytes only
//     because it had not fully arrived yet, where Redis also differs by read timing);
//   * kError leaves a non-empty error().
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "frontend/resp/parser.h"

namespace {

using cellar::resp::ParserLimits;
using cellar::resp::RespParser;


constexpr std::string_view kInlineTooBig = "Protocol error: too big inline request";

struct Outcome {
  std::vector<std::vector<std::string>> commands;
  bool error = false;
  std::string error_message;
};

// A small deterministic generator for chunk sizes and compaction points.
class Rng {
 public:
  explicit Rng(uint8_t seed) : s_(0x9E3779B97F4A7C15ull * (seed + 1)) {}
  uint32_t Next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return static_cast<uint32_t>(s_ >> 32);
  }

 private:
  uint64_t s_;
};

ParserLimits LimitsFrom(uint8_t b) {
  ParserLimits l;
  l.max_bulk_bytes = 1 + (b & 0x0F) * 3;        // 1..46
  l.max_args = 1 + ((b >> 4) & 0x07);           // 1..8
  l.max_inline_bytes = 8 + ((b >> 7) ? 56 : 0);  // 8 or 64
  return l;
}

// An independent model of what the parser skips before a command: "*N\r\n" headers with
// N <= 0 and blank inline lines. Returns where the command after them starts and its kind.
size_t SkipEmpty(std::string_view buf, size_t q, bool* multibulk, int64_t* declared) {
  for (;;) {
    FUZZ_CHECK(q < buf.size());
    if (buf[q] == '*') {
      size_t i = q + 1;
      bool neg = i < buf.size() && buf[i] == '-';
      if (neg) ++i;
      int64_t v = 0;
      while (i < buf.size() && buf[i] >= '0' && buf[i] <= '9') v = v * 10 + (buf[i++] - '0');
      FUZZ_CHECK(i + 1 < buf.size() && buf[i] == '\r' && buf[i + 1] == '\n');
      if (neg) v = -v;
      if (v > 0) {
        *multibulk = true;
        *declared = v;
        return q;
      }
      q = i + 2;
      continue;
    }
    const size_t nl = buf.find('\n', q);
    FUZZ_CHECK(nl != std::string_view::npos);
    size_t line_end = (nl > q && buf[nl - 1] == '\r') ? nl - 1 : nl;
    bool blank = true;
    for (size_t i = q; i < line_end; ++i) blank = blank && (buf[i] == ' ' || buf[i] == '\t');
    if (!blank) {
      *multibulk = false;
      *declared = -1;
      return q;
    }
    q = nl + 1;
  }
}

// Validates one kCommand. `before` is consumed() before the Next call that returned it.
std::vector<std::string> CheckCommand(const RespParser& p, std::string_view buf, size_t before,
                                      const ParserLimits& limits) {
  const size_t end = p.consumed();
  FUZZ_CHECK(end > before);
  FUZZ_CHECK(end <= buf.size());
  FUZZ_CHECK(!p.args().empty());
  bool multibulk = false;
  int64_t declared = -1;
  const size_t start = SkipEmpty(buf, before, &multibulk, &declared);
  FUZZ_CHECK(start < end);
  if (multibulk) {
    FUZZ_CHECK(p.args().size() <= limits.max_args);
    FUZZ_CHECK(static_cast<int64_t>(p.args().size()) == declared);
    FUZZ_CHECK(buf[end - 2] == '\r' && buf[end - 1] == '\n');
  } else {
    // The line ends at the first '\n' after its start.
    FUZZ_CHECK(buf.find('\n', start) == end - 1);
  }
  std::vector<std::string> out;
  size_t prev_end = start;
  for (size_t i = 0; i < p.args().size(); ++i) {
    const RespParser::Arg a = p.args()[i];
    FUZZ_CHECK(a.offset > start || (!multibulk && a.offset == start));
    FUZZ_CHECK(static_cast<size_t>(a.offset) + a.length <= end);
    FUZZ_CHECK(a.offset >= prev_end);  // in order, not overlapping
    prev_end = a.offset + a.length;
    std::string_view arg = p.ArgAt(buf, i);
    if (multibulk) {
      FUZZ_CHECK(a.length <= limits.max_bulk_bytes);
      FUZZ_CHECK(static_cast<size_t>(a.offset) + a.length + 2 <= end);
      FUZZ_CHECK(buf[a.offset + a.length] == '\r' && buf[a.offset + a.length + 1] == '\n');
      FUZZ_CHECK(buf[a.offset - 1] == '\n' && buf[a.offset - 2] == '\r');
    } else {
      FUZZ_CHECK(arg.find('\n') == std::string_view::npos);
      // Unquoted arguments hold no separators; quoted ones are delimited by their quotes.
      const bool quoted = a.offset > start &&
                          (buf[a.offset - 1] == '"' || buf[a.offset - 1] == '\'') &&
                          buf[a.offset + a.length] == buf[a.offset - 1];
      if (!quoted) {
        FUZZ_CHECK(arg.find(' ') == std::string_view::npos);
        FUZZ_CHECK(arg.find('\t') == std::string_view::npos);
        FUZZ_CHECK(!arg.empty());
      }
    }
    out.emplace_back(arg);
  }
  return out;
}

// The whole stream in one buffer, no compaction.
Outcome ParseWhole(std::string_view data, const ParserLimits& limits) {
  Outcome o;
  RespParser p(limits);
  for (;;) {
    const size_t before = p.consumed();
    RespParser::Result r = p.Next(data);
    FUZZ_CHECK(p.consumed() >= before && p.consumed() <= data.size());
    if (r == RespParser::Result::kCommand) {
      o.commands.push_back(CheckCommand(p, data, before, limits));
      continue;
    }
    if (r == RespParser::Result::kError) {
      FUZZ_CHECK(!p.error().empty());
      o.error = true;
      o.error_message = p.error();
    } else {
      FUZZ_CHECK(r == RespParser::Result::kNeedMore);
    }
    return o;
  }
}

// The stream trickling in by chunks, with compaction as Connection does it.
Outcome ParseChunked(std::string_view data, const ParserLimits& limits, Rng& rng) {
  Outcome o;
  RespParser p(limits);
  std::string buf;
  size_t fed = 0;
  size_t dropped = 0;  // bytes compacted away so far (absolute position of buf[0])
  size_t abs_consumed = 0;
  while (fed < data.size()) {
    const size_t chunk = std::min<size_t>(data.size() - fed, 1 + rng.Next() % 64);
    buf.append(data.substr(fed, chunk));
    fed += chunk;
    for (;;) {
      const size_t before = p.consumed();
      FUZZ_CHECK(before + dropped == abs_consumed);
      RespParser::Result r = p.Next(buf);
      FUZZ_CHECK(p.consumed() >= before);
      FUZZ_CHECK(p.consumed() <= buf.size());
      abs_consumed = p.consumed() + dropped;
      if (r == RespParser::Result::kError) {
        FUZZ_CHECK(!p.error().empty());
        o.error = true;
        o.error_message = p.error();
        return o;
      }
      if (r == RespParser::Result::kCommand) {
        FUZZ_CHECK(p.consumed() > before);
        o.commands.push_back(CheckCommand(p, buf, before, limits));
      } else {
        FUZZ_CHECK(r == RespParser::Result::kNeedMore);
      }
      // Compact now and then, in any parser state, as Connection does between rounds: most
      // often in the middle of a command, where Shift must move the partial state.
      if (p.consumed() > 0 && rng.Next() % (r == RespParser::Result::kNeedMore ? 2 : 4) == 0) {
        const size_t n = p.consumed();
        std::memmove(buf.data(), buf.data() + n, buf.size() - n);
        buf.resize(buf.size() - n);
        p.Shift(n);
        dropped += n;
        FUZZ_CHECK(p.consumed() == 0);
      }
      if (r == RespParser::Result::kNeedMore) break;
    }
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Rng rng(data[0]);
  const ParserLimits limits = LimitsFrom(data[1]);
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome whole = ParseWhole(stream, limits);
  const Outcome chunked = ParseChunked(stream, limits, rng);

  const bool timing_dependent = (whole.error && whole.error_message == kInlineTooBig) ||
                                (chunked.error && chunked.error_message == kInlineTooBig);
  if (!timing_dependent) {
    FUZZ_CHECK(whole.commands == chunked.commands);
    FUZZ_CHECK(whole.error == chunked.error);
    FUZZ_CHECK(whole.error_message == chunked.error_message);
  } else {
    const size_t n = std::min(whole.commands.size(), chunked.commands.size());
    for (size_t i = 0; i < n; ++i) FUZZ_CHECK(whole.commands[i] == chunked.commands[i]);
  }
  return 0;
}
