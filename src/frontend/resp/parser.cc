#include "frontend/resp/parser.h"

#include <cstring>

namespace cellar::resp {

RespParser::Result RespParser::Fail(std::string msg) {
  error_ = std::move(msg);
  return Result::kError;
}

void RespParser::Shift(size_t n) {
  consumed_ -= n;
  if (expected_ >= 0) {
    pos_ -= n;
    for (auto& a : args_) a.offset -= static_cast<uint32_t>(n);
  }
}

bool RespParser::ReadLength(std::string_view buf, size_t& pos, int64_t& out, bool& bad) {
  // Digits up to "\r\n"; at most 20 characters so a stream of digits cannot grow unbounded.
  size_t p = pos;
  bool neg = false;
  if (p < buf.size() && buf[p] == '-') {
    neg = true;
    ++p;
  }
  int64_t v = 0;
  size_t digits = 0;
  while (p < buf.size() && buf[p] >= '0' && buf[p] <= '9') {
    if (++digits > 18) {
      bad = true;
      return false;
    }
    v = v * 10 + (buf[p] - '0');
    ++p;
  }
  if (p >= buf.size()) return false;
  if (buf[p] != '\r' || digits == 0) {
    bad = true;
    return false;
  }
  if (p + 1 >= buf.size()) return false;
  if (buf[p + 1] != '\n') {
    bad = true;
    return false;
  }
  out = neg ? -v : v;
  pos = p + 2;
  return true;
}

RespParser::Result RespParser::Next(std::string_view buf) {
  // Empty commands ("*0", blank inline lines) are skipped in a loop, never by recursion, so a
  // flood of them cannot exhaust the stack.
  for (;;) {
    Result r = NextOrSkip(buf);
    if (r != Result::kSkipped) return r;
  }
}

RespParser::Result RespParser::NextOrSkip(std::string_view buf) {
  if (consumed_ >= buf.size()) return Result::kNeedMore;
  if (expected_ < 0) {
    args_.clear();
    if (buf[consumed_] != '*') return ParseInline(buf);
    size_t p = consumed_ + 1;
    int64_t n = 0;
    bool bad = false;
    if (!ReadLength(buf, p, n, bad)) {
      if (bad) return Fail("Protocol error: invalid multibulk length");
      if (buf.size() - consumed_ > 32) return Fail("Protocol error: invalid multibulk length");
      wanted_ = 1;
      return Result::kNeedMore;
    }
    if (n > static_cast<int64_t>(limits_.max_args)) {
      return Fail("Protocol error: invalid multibulk length");
    }
    if (n <= 0) {  // "*0" and "*-1" are empty commands: skip them as Redis does
      consumed_ = p;
      return Result::kSkipped;
    }
    expected_ = n;
    pos_ = p;
    args_.reserve(static_cast<size_t>(std::min<int64_t>(n, 1024)));
  }
  while (static_cast<int64_t>(args_.size()) < expected_) {
    size_t p = pos_;
    if (p >= buf.size()) {
      wanted_ = 1;
      return Result::kNeedMore;
    }
    if (buf[p] != '$') {
      return Fail(std::string("Protocol error: expected '$', got '") + buf[p] + "'");
    }
    ++p;
    int64_t len = 0;
    bool bad = false;
    if (!ReadLength(buf, p, len, bad)) {
      if (bad || buf.size() - pos_ > 32) return Fail("Protocol error: invalid bulk length");
      wanted_ = 1;
      return Result::kNeedMore;
    }
    if (len < 0 || static_cast<uint64_t>(len) > limits_.max_bulk_bytes) {
      return Fail("Protocol error: invalid bulk length");
    }
    const size_t need = p + static_cast<size_t>(len) + 2;
    if (need - consumed_ > limits_.max_command_bytes) {
      return Fail("Protocol error: command exceeds the size limit");
    }
    if (buf.size() < need) {
      wanted_ = need - buf.size();
      return Result::kNeedMore;
    }
    if (buf[need - 2] != '\r' || buf[need - 1] != '\n') {
      return Fail("Protocol error: bulk string not terminated by CRLF");
    }
    args_.push_back({static_cast<uint32_t>(p), static_cast<uint32_t>(len)});
    pos_ = need;
  }
  consumed_ = pos_;
  expected_ = -1;
  wanted_ = 0;
  return Result::kCommand;
}

RespParser::Result RespParser::ParseInline(std::string_view buf) {
  const char* start = buf.data() + consumed_;
  const size_t avail = buf.size() - consumed_;
  const void* nl = std::memchr(start, '\n', avail);
  if (nl == nullptr) {
    if (avail > limits_.max_inline_bytes) return Fail("Protocol error: too big inline request");
    wanted_ = 1;
    return Result::kNeedMore;
  }
  size_t line_len = static_cast<const char*>(nl) - start;
  size_t end = consumed_ + line_len;  // index of '\n'
  size_t line_end = (line_len > 0 && buf[end - 1] == '\r') ? end - 1 : end;
  // Split on spaces and tabs; "double" and 'single' quotes group words as redis-cli does.
  // Quoted arguments must not contain escapes we would have to rewrite (args are views).
  size_t p = consumed_;
  while (p < line_end) {
    while (p < line_end && (buf[p] == ' ' || buf[p] == '\t')) ++p;
    if (p >= line_end) break;
    char q = buf[p];
    if (q == '"' || q == '\'') {
      size_t close = buf.find(q, p + 1);
      if (close == std::string_view::npos || close >= line_end) {
        return Fail("Protocol error: unbalanced quotes in request");
      }
      args_.push_back({static_cast<uint32_t>(p + 1), static_cast<uint32_t>(close - p - 1)});
      p = close + 1;
      if (p < line_end && buf[p] != ' ' && buf[p] != '\t') {
        return Fail("Protocol error: unbalanced quotes in request");
      }
    } else {
      size_t s = p;
      while (p < line_end && buf[p] != ' ' && buf[p] != '\t') ++p;
      args_.push_back({static_cast<uint32_t>(s), static_cast<uint32_t>(p - s)});
    }
  }
  consumed_ = end + 1;
  if (args_.empty()) return Result::kSkipped;  // blank line
  return Result::kCommand;
}

}  // namespace cellar::resp
