// Connection: one RESP client. Reads into a growable buffer, parses a round of up to
// kMaxRound pipelined commands, prepares them, submits their calls to the gateway in one
// batch, and when all replies are in, writes every reply in order with one write.
//
// Invariant: while a round is in flight the receive buffer is neither read into nor moved,
// because the calls borrow their keys and values from it.
//
// Thread: owned by the loop thread of its RespServer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "frontend/net/stream.h"
#include "frontend/resp/commands.h"
#include "frontend/resp/parser.h"
#include "gateway/gateway.h"

namespace cellar::resp {

class RespServer;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(RespServer* owner, boost::asio::ip::tcp::socket socket, uint64_t id);
  ~Connection();

  void Start();
  // Closes now if idle (waiting for input), else after the current round's replies.
  void Shutdown();
  // Closes the socket now; pending reads and writes end with an error.
  void ForceClose() { Close(); }

 private:
  static constexpr size_t kMaxRound = 1024;        // commands prepared per round
  static constexpr size_t kMaxRoundCalls = 16384;  // calls per round (a command may exceed it)

  struct Pending {
    const CommandSpec* spec;  // null for an unknown command or a protocol error
    uint32_t first_call, num_calls;
    uint32_t local_off, local_len;  // reply written during Prepare, if any
    uint32_t first_arg, num_args;   // into args_
    int proto;
  };

  void Read();
  void OnRead(size_t n);
  void ProcessRound();
  void PrepareOne(Pending& p);
  // Token checks: still valid (else writes the error and unbinds), and allowed to run the
  // calls a command prepared.
  bool PrincipalStillValid(ReplyWriter& w);
  bool Permitted(const CommandSpec& spec, const Pending& p);
  bool CallsPermitted(const CommandSpec& spec, const Pending& p,
                      std::span<const gateway::Call> calls);
  // Drops the bytes of commands already answered from the front of the receive buffer.
  void Compact();
  void ReleaseLargeBuffers();
  // Counts a finished command in the loop's metrics; its reply starts at out_[reply_start].
  void CountCommand(const Pending& p, size_t reply_start);
  ParserLimits Limits() const;

  static constexpr ParserLimits kPreAuthLimits{.max_bulk_bytes = 16 * 1024,
                                                .max_args = 16,
                                                .max_inline_bytes = 16 * 1024,
                                                .max_command_bytes = 64 * 1024};
  void FinishRound();
  void RunFollowup(size_t index);
  void FinishFrom(size_t index);
  void Write();
  void AfterWrite();
  void Close();
  CommandContext MakeContext(ReplyWriter& local, std::vector<gateway::Call>& calls, const Pending& p);

  RespServer* owner_;
  net::Stream stream_;  // TCP, or TLS told apart by the first byte
  ConnState state_;
  RespParser parser_;
  std::string in_;     // receive buffer; bytes [0, in_len_) are valid
  size_t in_len_ = 0;
  std::string out_;    // replies of the current round
  std::string local_;  // replies written during Prepare
  std::vector<std::string_view> args_;
  ScratchArena scratch_;  // arrays the round's Requests borrow  // every argument of the round, into in_
  std::vector<Pending> pending_;
  gateway::Batch batch_;
  gateway::Batch followup_;
  uint64_t round_start_ns_ = 0;
  uint64_t round_elapsed_us_ = 0;  // at the latest FinishFrom: what CountCommand records
  int64_t round_now_ms_ = 0;  // wall clock read once per round
  bool reading_ = false;
  bool busy_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool protocol_error_ = false;
};

}  // namespace cellar::resp
