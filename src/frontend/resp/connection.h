// Connection: one RESP client. Reads into a growable buffer, parses a round of up to
// kMaxRound pipelined commands, prepares them, submits their calls to the gateway in one
// batch, and when all replies are in, writes every reply in order with one write.
//
// Invariant: while a round is in flight the receive buffer is neither read into nor moved,
// because the calls borrow their keys and values from it.
//
// A round finishes when everything it waits for is in (round_waits_): the gateway batch,
// the subscriptions its SUBSCRIBE started becoming ready, or a deferred reply (PUBSUB
// NUMSUB); each is one count, and Prepare holds one itself so that an answer arriving inline
// cannot finish a round that is still being prepared.
//
// Pub/sub: the connection is the topics::Sink of its subscriptions. Messages are queued as
// shared pointers (pushes_) and copied into out_ only when written. One write is in flight at
// a time. While idle, pushes are flushed once per loop turn (every message delivered in that
// turn goes out in one write; sooner once a full write's worth is queued), tried on the
// socket at once (plain TCP) so that a write stays pending only while the socket's buffer is
// full. While a round is in flight pushes wait and go out with its replies: those queued
// before the round, then the replies, then those that came during it. A round does not start
// while a push write is in flight. A reader falls behind, and is cut off, when the pushes
// queued behind a pending write pass topics' subscriber_queue_bytes (four times that while
// no write is pending: a burst is bounded even when the socket keeps up).
//
// Memory: a connection with nothing buffered holds no receive buffer while it waits for
// readability (plain TCP): a subscriber at once, any other connection once the server's
// sweep finds it quiet (busy ones keep theirs between reads); a subscriber also drops its
// round scratch. TLS subscribers keep a small buffer (OpenSSL may hold decrypted bytes).
//
// Thread: owned by the loop thread of its RespServer.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "frontend/net/conn_gate.h"
#include "frontend/net/stream.h"
#include "frontend/resp/commands.h"
#include "frontend/resp/parser.h"
#include "gateway/gateway.h"
#include "gateway/pipeline.h"
#include "topics/topics.h"

namespace cellar::resp {

class RespServer;

class Connection : public std::enable_shared_from_this<Connection>,
                   private gateway::RoundSource,
                   private ConnectionPort,
                   private DeferredReply::Target,
                   private topics::Sink {
 public:
  Connection(RespServer* owner, boost::asio::ip::tcp::socket socket, uint64_t id,
             net::ConnectionGate::Slot slot = {});
  ~Connection();

  void Start();
  // Closes now if idle (waiting for input), else after the current round's replies or the
  // pushes still queued (a subscriber hears why its subscriptions ended).
  void Shutdown();
  // Closes the socket now; pending reads and writes end with an error.
  void ForceClose() { Close(); }
  // Called by the server's sweep: a plain TCP connection that has read nothing since the
  // sweep before last and has nothing buffered trades its pending read (and receive buffer)
  // for a readability wait.
  void ParkIfIdle(uint64_t epoch);
  // Called by the server's sweep: closes a connection that has not authenticated within the
  // pre-auth timeout (TLS handshake included), or an authenticated one that has been quiet
  // (nothing read, nothing in flight, no subscription) for the idle timeout
  // (net::ConnectionOptions).
  void CloseIfTimedOut(uint64_t epoch, int64_t now_ms);

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
  // Plain TCP with nothing buffered: wait for readability holding no buffer, then read.
  void WaitReadable();
  void ReadAvailable();
  void OnRead(size_t n);
  // Input is buffered, or a round ended: the next round runs when the pipeline's scheduler
  // turn says (gateway/pipeline.h).
  void Continue();
  // gateway::RoundSource.
  size_t RunTurn(size_t limit) override;
  void RefuseTurn() override;
  size_t QueuedTurnWanted() override;
  std::shared_ptr<void> Hold() override { return shared_from_this(); }
  void ProcessRound();
  void PrepareNext(Pending& p);
  // The token still holds (else writes the error and unbinds).
  bool PrincipalStillValid(ReplyWriter& w);
  // The pipeline's checks of a command's calls; a refusal is written as its reply.
  void Verify(const Pending& p, ReplyWriter& w);
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
  // One of the things the round waits for is in.
  void RoundPartDone();
  void FinishFrom(size_t index);
  void Write();
  void AfterWrite();
  // after_answer: the last answer is written; the peer gets it before the close (net/stream.h).
  void Close(bool after_answer = false);
  CommandContext MakeContext(ReplyWriter& local, std::vector<gateway::Call>& calls, const Pending& p);
  void ReleaseIdleBuffers();

  // ---- Pub/sub ----------------------------------------------------------------------------
  struct Sub {
    std::string name;
    bool pattern;
    bool awaited;  // the round waits for it to be ready
    uint64_t order;  // subscription order (UNSUBSCRIBE without arguments goes oldest first)
    // pmessage pushes queued for it keep the pattern even if it is unsubscribed meanwhile
    std::shared_ptr<const std::string> pattern_name;
  };
  struct Push {
    topics::MessagePtr message;  // null: `text` is a whole frame (an error line)
    std::shared_ptr<const std::string> text;  // the pattern of a pmessage, or the frame
    uint32_t bytes = 0;  // counted against the queue bound (0 for notices)
  };
  struct SubState {
    absl::flat_hash_map<topics::SubId, Sub> by_id;
    absl::flat_hash_map<std::string, topics::SubId> channels, patterns;
    uint64_t next_order = 0;
  };

  // ConnectionPort.
  size_t SubscriptionCount() const override;
  bool IsSubscribed(std::string_view name, bool pattern) const override;
  Status AddSubscription(std::string_view name, bool pattern) override;
  bool RemoveSubscription(std::string_view name, bool pattern) override;
  std::vector<std::string> SubscriptionNames(bool pattern) const override;
  void DropSubscriptions() override;
  DeferredReply Defer() override;
  // DeferredReply::Target.
  std::string& DeferredBuffer() override { return local_; }
  void DeferredDone() override;
  // topics::Sink.
  void OnReady(topics::SubId id) override;
  void OnDiscontinuity(topics::SubId, uint64_t, uint64_t, uint64_t) override {}
  void OnItem(topics::SubId id, const topics::MessagePtr& message) override;
  // A channel subscription's item (patterns' come through OnItem): the hub delivers only to
  // live subscriptions, so no lookup of its record.
  void OnItemTagged(topics::SubId id, void* tag, const topics::MessagePtr& message) override;
  void Prefetch(void* tag) const override;
  void OnEnd(topics::SubId id, const Status& why) override;

  // Forgets a subscription's bookkeeping (the hub side is already gone or removed by the caller).
  void Forget(topics::SubId id);
  void Enqueue(Push push, size_t bytes);
  // Moves queued pushes into out_ (at most `limit` bytes of them); returns the bytes moved.
  size_t SerializePushes(size_t limit);
  bool HasPushes() const { return pushes_head_ < pushes_.size(); }
  void ScheduleFlush();
  void FlushPushes();
  void AfterPushWrite();
  // The reader did not keep up: drop its subscriptions and queue, say why, close.
  void FellBehind();
  // The round no longer waits for `s` (ready, ended or dropped).
  void Unready(Sub& s);

  RespServer* owner_;
  // What a topic delivery reads and writes, first among the members: the hub prefetches the
  // start of the Sink subobject (just before them), then Prefetch the push slot.
  bool busy_ = false;
  bool writing_ = false;  // a write (a round's or pushes') is in flight
  bool closed_ = false;
  bool flush_posted_ = false;
  bool fell_behind_ = false;
  uint64_t queued_bytes_ = 0;  // pushes accepted and not yet written to the socket
  std::vector<Push> pushes_;   // accepted, not yet in out_; [pushes_head_, end) are live
  size_t pushes_head_ = 0;
  net::ConnectionGate::Slot slot_;  // this connection's place under the port's cap
  bool ever_authed_ = false;        // authenticated at some point: the pre-auth timeout is over
  uint64_t write_epoch_ = 0;        // sweep epoch when no write was pending, or one ended
  // The round's checks, batch, clock, reply grant and pacing.
  gateway::Pipeline pipeline_;
  // A round the reply budget cut short: the first command not answered yet (SIZE_MAX: none),
  // the command the last resumption started at, and whether it ran alone.
  size_t resume_from_ = SIZE_MAX;
  size_t resumed_at_ = SIZE_MAX;
  bool resume_alone_ = false;
  bool NotRun(const Pending& p) const;
  void ResumeRound();
  net::Stream stream_;  // TCP, or TLS told apart by the first byte
  ConnState state_;
  RespParser parser_;
  // Receive buffer: bytes [0, in_len_) of in_size_ are valid. Plain malloc memory, so that
  // growing it (again after an idle wait freed it) does not zero what the read will fill.
  struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, FreeDeleter> in_;
  size_t in_size_ = 0;
  size_t in_len_ = 0;
  void ResizeIn(size_t n);
  std::string out_;    // replies of the current round
  std::string local_;  // replies written during Prepare
  std::vector<std::string_view> args_;  // every argument of the round, into in_
  ScratchArena scratch_;                 // arrays the round's Requests borrow
  std::vector<Pending> pending_;
  gateway::Batch followup_;
  uint64_t round_read_bytes_ = 0;   // reply bytes of the round's data commands
  size_t round_limit_ = kMaxRound;  // commands this round may take (the scheduler's quantum)
  bool refuse_round_ = false;       // the tenant's queue was full: answer the round with errors
  uint32_t round_waits_ = 0;
  uint64_t read_epoch_ = 0;   // the server's sweep epoch at the last read
  size_t read_chunk_;         // the least a buffered read offers (grows with the traffic)
  size_t read_offer_ = 0;     // what the pending read offered
  bool buffered_read_ = false;  // the pending read is a buffered async_read_some
  bool parking_ = false;        // it was cancelled to wait for readability instead
  bool preparing_ = false;
  bool reading_ = false;
  bool closing_ = false;
  bool protocol_error_ = false;

  // Pub/sub (subs_ exists from the first subscription on).
  std::unique_ptr<SubState> subs_;
  uint32_t awaiting_ready_ = 0;  // subscriptions the round waits for
  bool round_waits_ready_ = false;
  uint64_t writing_push_bytes_ = 0;  // of those, the ones in out_ now
  std::unique_ptr<boost::asio::steady_timer> grace_;  // closes a cut-off reader that never reads
  // Held while the round waits for subscriptions to be ready (nothing else refers to the
  // connection then: the hub holds it as a raw Sink pointer).
  std::shared_ptr<Connection> keep_alive_;
  bool subscribing_ = false;                // inside Topics::(P)Subscribe
  std::vector<topics::SubId> early_ready_;  // OnReady heard inside it
};

}  // namespace cellar::resp
