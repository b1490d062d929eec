// RespParser: an incremental parser of RESP2/RESP3 requests (arrays of bulk strings) and
// inline commands, over a receive buffer that the connection owns.
//
// The parser never copies arguments: a parsed command is a list of (offset, length) pairs
// into the buffer, so it stays valid while the buffer is not compacted. Parsing resumes where
// it stopped when more bytes arrive, so a large command trickling in is not re-scanned.
// Limits are checked before anything is allocated for them.
//
// Thread: belongs to one connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cellar::resp {

struct ParserLimits {
  uint64_t max_bulk_bytes = 512ull * 1024 * 1024;  // largest single argument
  uint64_t max_args = 1024 * 1024;                 // arguments in one command
  uint64_t max_inline_bytes = 64 * 1024;           // an inline command line
  uint64_t max_command_bytes = 64ull * 1024 * 1024;  // one whole command on the wire
};

class RespParser {
 public:
  enum class Result {
    kCommand,     // one command is ready: args() describe it
    kNeedMore,    // the buffer ends inside a command: read more, call again
    kError,       // protocol error: error() says what; the connection must be closed
    kSkipped,     // internal: an empty command was skipped (never returned by Next)
  };
  struct Arg {
    uint32_t offset;  // from the start of the buffer passed to Next
    uint32_t length;
  };

  explicit RespParser(ParserLimits limits = {}) : limits_(limits) {}
  // New limits apply from the next argument on (a connection widens them after AUTH).
  void set_limits(ParserLimits limits) { limits_ = limits; }

  // Parses the next command of buf starting at consumed(). After kCommand, consumed() is past
  // the command; after kNeedMore it is unchanged and the state is kept for the next call
  // (which must pass the same bytes, possibly with more appended).
  Result Next(std::string_view buf);
  const std::vector<Arg>& args() const { return args_; }
  std::string_view ArgAt(std::string_view buf, size_t i) const {
    return buf.substr(args_[i].offset, args_[i].length);
  }
  const std::string& error() const { return error_; }
  size_t consumed() const { return consumed_; }
  // The caller dropped the first `n` bytes of the buffer (n <= consumed()).
  void Shift(size_t n);
  // Bytes the current partial command still needs at least (to size the next read).
  size_t Wanted() const { return wanted_; }

 private:
  Result NextOrSkip(std::string_view buf);
  Result ParseInline(std::string_view buf);
  Result Fail(std::string msg);
  // Reads a "\r\n"-terminated integer line at pos (after the type byte). Returns false if the
  // line is incomplete; sets error_ on malformed input.
  bool ReadLength(std::string_view buf, size_t& pos, int64_t& out, bool& bad);

  ParserLimits limits_;
  std::vector<Arg> args_;
  std::string error_;
  size_t consumed_ = 0;  // start of the command being parsed
  // Resume state inside a multibulk command.
  size_t pos_ = 0;          // next unparsed byte
  int64_t expected_ = -1;   // argument count, -1 when the header is not read yet
  size_t wanted_ = 0;
};

}  // namespace cellar::resp
