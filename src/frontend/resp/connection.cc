#include "frontend/resp/connection.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <absl/strings/string_view.h>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "common/clock.h"
#include "common/logging.h"
#include "control/cache_registry.h"
#include "frontend/net/listen.h"
#include "frontend/resp/metrics.h"
#include "frontend/resp/resp_server.h"
#include "frontend/resp/topic_pushes.h"
#include "gateway/reply_memory.h"

namespace cellar::resp {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr size_t kReadChunk = 16 * 1024;
// Reads start this small and double (to kReadChunk) each time a read fills what was offered:
// a request-reply client never needs more, a pipelining one gets there in a few reads.
constexpr size_t kMinReadChunk = 1024;
// A subscribed TLS connection's idle read buffer (TLS cannot wait for readability without
// one: OpenSSL may already hold decrypted bytes).
constexpr size_t kTlsIdleChunk = 1024;
// Pushes copied into one write at most; the rest wait for the next write.
constexpr size_t kPushWriteBytes = 256 * 1024;
// How long a subscriber cut off for falling behind has to take its last bytes and the error.
constexpr int64_t kFellBehindGraceMs = 2000;

// Commands whose Redis "full name" (in errors) includes the subcommand: "client|id".
bool HasSubcommands(std::string_view name) {
  return name == "client" || name == "command" || name == "config" || name == "pubsub";
}
}  // namespace

Connection::Connection(RespServer* owner, asio::ip::tcp::socket socket, uint64_t id,
                       net::ConnectionGate::Slot slot)
    : owner_(owner),
      slot_(std::move(slot)),
      pipeline_(*owner->server_->gateway, owner->thread_, *this,
                gateway::Pipeline::Pacing::kOneRoundAhead),
      stream_(std::move(socket)),
      parser_(kPreAuthLimits) {
  state_.id = id;
  read_epoch_ = owner_->sweep_epoch_;
  // Not 0: a first write that blocks before any sweep saw this connection would otherwise
  // count as stalled since the server started (closed at once past --write-timeout of uptime).
  write_epoch_ = owner_->sweep_epoch_;
  read_chunk_ = kMinReadChunk;
  state_.created_ms = SystemClock::Get()->NowMillis();
  error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) state_.peer = ep.address().to_string() + ":" + std::to_string(ep.port());
  stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  if (owner_->server_->gateway->options().dev_no_auth) {
    auto cache = owner_->server_->gateway->ResolveCache(control::kDefaultTenant, "default");
    if (cache.ok()) {
      state_.authed = true;
      state_.cache_id = *cache;
      state_.cache_name = "default";
      state_.principal.perms.super_user = true;
    }
  }
  parser_.set_limits(Limits());
  owner_->conns_.insert(this);
  RespServer::LiveConnections().fetch_add(1, std::memory_order_relaxed);
  Bump(MetricsOf(owner_->thread_).connections_opened);
}

Connection::~Connection() {
  ResizeIn(0);          // gives back its count of large receive bytes
  DropSubscriptions();  // the hub refers to this sink by a raw pointer
  owner_->conns_.erase(this);
  RespServer::LiveConnections().fetch_sub(1, std::memory_order_relaxed);
  Bump(MetricsOf(owner_->thread_).connections_closed);
}

void Connection::Start() {
  stream_.Start(owner_->tls_, [self = shared_from_this()](bool ok) {
    if (!ok) return self->Close();
    if (!self->stream_.is_tls()) {
      // Reads after a readability wait (a wake-up may be spurious) and push writes that try
      // the socket first must never block the loop.
      error_code ec;
      self->stream_.socket().non_blocking(true, ec);
    }
    self->Read();
  });
}

ParserLimits Connection::Limits() const {
  // Before AUTH only small commands are accepted (AUTH, HELLO, PING...), as Redis does for
  // unauthenticated clients, so a stranger cannot make the server buffer large commands.
  return state_.authed ? owner_->limits_ : kPreAuthLimits;
}

void Connection::Shutdown() {
  closing_ = true;
  if (busy_ || writing_) return;  // closed once that is written
  // Pushes still queued (the notice that the server is stopping) go first.
  FlushPushes();
}

void Connection::Close(bool after_answer) {
  if (closed_) return;
  closed_ = true;
  pipeline_.reply_grant().ReleaseAll();
  DropSubscriptions();
  pushes_.clear();
  pushes_head_ = 0;
  if (grace_) grace_->cancel();
  if (after_answer) {
    stream_.CloseAfterAnswer(shared_from_this());
  } else {
    stream_.Close();
  }
}

void Connection::ResizeIn(size_t n) {
  if (n == in_size_) return;
  // Receive buffers past kReadChunk (a large command being received) count against the
  // process's bound on request bytes (ServerContext::max_buffered_request_bytes).
  const auto excess = [](size_t size) { return size > kReadChunk ? size - kReadChunk : 0; };
  std::atomic<uint64_t>& large = RespServer::LargeReceiveBytes();
  large.fetch_add(excess(n), std::memory_order_relaxed);
  large.fetch_sub(excess(in_size_), std::memory_order_relaxed);
  if (n == 0) {
    in_.reset();
  } else {
    char* p = static_cast<char*>(std::realloc(in_.get(), n));
    if (p == nullptr) throw std::bad_alloc();
    (void)in_.release();  // realloc took it
    in_.reset(p);
  }
  in_size_ = n;
}

void Connection::Read() {
  if (closing_) return Close();
  if (in_len_ == 0 && !stream_.is_tls() && (subs_ != nullptr || in_size_ == 0)) {
    // A subscriber (which mostly listens) or a connection that was parked: no buffer while
    // waiting. A pipelining client has often sent more already: try before waiting.
    if (in_size_ > 0) {
      error_code ec;
      size_t n = stream_.socket().read_some(asio::buffer(in_.get(), in_size_), ec);
      read_offer_ = in_size_;
      if (!ec) return OnRead(n);
      if (ec != asio::error::would_block && ec != asio::error::try_again) return Close();
    }
    return WaitReadable();
  }
  if (in_len_ == 0 && subs_ != nullptr) {
    // An idle TLS subscriber: a small buffer (grown when a command does not fit).
    ReleaseIdleBuffers();
    ResizeIn(kTlsIdleChunk);
  } else {
    // Grow toward what the parser says the current command needs, but at most doubling per
    // read: memory follows the bytes that arrive, not the lengths a client announces.
    size_t want = std::max(read_chunk_, std::min(parser_.Wanted(), std::max(in_len_, kReadChunk)));
    if (in_size_ - in_len_ < want) {
      const size_t grow = in_len_ + want - in_size_;
      if (in_len_ + want > kReadChunk &&
          RespServer::LargeReceiveBytes().load(std::memory_order_relaxed) + grow >
              owner_->server_->max_buffered_request_bytes) {
        // Every connection's large commands together are past the process's bound: this one
        // is refused (the command cannot be read in part), and the connection closed. The line
        // goes out only in plaintext (a TLS peer would read it as a broken record).
        if (!stream_.is_tls()) {
          net::SendLineNow(stream_.socket(), ErrorLine(RespError::kServerBodiesFull));
        }
        Bump(MetricsOf(owner_->thread_).protocol_errors);
        return Close(/*after_answer=*/true);
      }
      ResizeIn(in_len_ + want);
    }
    read_offer_ = in_size_ - in_len_;
  }
  reading_ = true;
  buffered_read_ = true;
  stream_.AsyncReadSome(asio::buffer(in_.get() + in_len_, in_size_ - in_len_),
                        [self = shared_from_this()](error_code ec, size_t n) {
                          self->reading_ = false;
                          self->buffered_read_ = false;
                          const bool parked = std::exchange(self->parking_, false);
                          if (ec == asio::error::operation_aborted && parked && !self->closed_) {
                            return self->WaitReadable();
                          }
                          if (ec) return self->Close();
                          self->OnRead(n);
                        });
}

void Connection::ParkIfIdle(uint64_t epoch) {
  if (!buffered_read_ || parking_ || closed_ || writing_ || in_len_ != 0 ||
      stream_.is_tls() || read_epoch_ + 1 >= epoch) {
    return;
  }
  parking_ = true;
  error_code ec;
  stream_.socket().cancel(ec);  // the read ends with operation_aborted, then WaitReadable
}

void Connection::CloseIfTimedOut(uint64_t epoch, int64_t now_ms) {
  if (closed_) return;
  if (state_.authed) ever_authed_ = true;
  if (!writing_) write_epoch_ = epoch;
  net::SweepView v;
  v.authed = ever_authed_;
  v.age_ms = now_ms - state_.created_ms;
  v.quiet_ms = static_cast<int64_t>(epoch - read_epoch_) * RespServer::kSweepMs;
  v.stalled_ms = static_cast<int64_t>(epoch - write_epoch_) * RespServer::kSweepMs;
  v.idle_ok = !busy_ && !writing_ && in_len_ == 0 && SubscriptionCount() == 0;
  const net::TimeoutKind kind = net::PastTimeout(net::ConnectionGate::options(), v);
  if (kind == net::TimeoutKind::kCount) return;
  net::ConnectionGate::Of(net::Port::kResp).CountTimeout(kind);
  LOG_DEBUG("msg=\"connection timed out\" reason={} conn={} peer={}", net::TimeoutName(kind),
            state_.id, state_.peer);
  Close();
}

void Connection::WaitReadable() {
  // Nothing is buffered: hold no receive buffer (nor other scratch) while the client is quiet.
  ReleaseIdleBuffers();
  reading_ = true;
  stream_.socket().async_wait(asio::ip::tcp::socket::wait_read,
                              [self = shared_from_this()](error_code ec) {
                                self->reading_ = false;
                                if (ec) return self->Close();
                                self->ReadAvailable();
                              });
}

void Connection::ReadAvailable() {
  if (closing_) return Close();
  char* wake = owner_->WakeReadBuffer();
  error_code ec;
  size_t n = stream_.socket().read_some(asio::buffer(wake, RespServer::kWakeReadBytes), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return WaitReadable();
  if (ec) return Close();
  // A connection that sends little (a subscriber, a slow client) gets a buffer of what it
  // sent; one that fills the read gets a full one (it has more to send).
  if (n == RespServer::kWakeReadBytes) read_chunk_ = kReadChunk;
  ResizeIn(n == RespServer::kWakeReadBytes ? kReadChunk : n);
  read_offer_ = 0;
  std::memcpy(in_.get(), wake, n);
  OnRead(n);
}

void Connection::OnRead(size_t n) {
  if (n == read_offer_ && read_chunk_ < kReadChunk) read_chunk_ *= 2;
  in_len_ += n;
  read_epoch_ = owner_->sweep_epoch_;
  Bump(MetricsOf(owner_->thread_).bytes_in, n);
  // A push write is in flight: the round starts when it is done (one write at a time).
  if (writing_) return;
  Continue();
}

void Connection::Continue() {
  // Nothing buffered: nothing to be fair about (ProcessRound goes back to reading).
  pipeline_.Schedule(state_.authed ? state_.principal.tenant : 0,
                     in_len_ == 0 || closed_ ? 0 : kMaxRound);
}

size_t Connection::RunTurn(size_t limit) {
  round_limit_ = std::min(limit, kMaxRound);  // cut to the quantum while tenants compete
  ProcessRound();
  round_limit_ = kMaxRound;
  return pending_.size();
}

void Connection::RefuseTurn() {
  refuse_round_ = true;  // answered at once with the overload error
  ProcessRound();
}

size_t Connection::QueuedTurnWanted() {
  // A round (or a push write) started meanwhile; its end schedules what is buffered.
  return closed_ || busy_ || writing_ ? 0 : kMaxRound;
}

CommandContext Connection::MakeContext(ReplyWriter& local, std::vector<gateway::Call>& calls,
                                       const Pending& p) {
  CommandContext ctx(state_, *owner_->server_, owner_->thread_, pipeline_.now_ms(), calls, local,
                     scratch_);
  ctx.pipeline = &pipeline_;
  ctx.args = std::span<const std::string_view>(args_.data() + p.first_arg, p.num_args);
  ctx.spec = p.spec;
  return ctx;
}

void Connection::PrepareNext(Pending& p) {
  ReplyWriter w(&local_, state_.proto);
  std::string_view name = args_[p.first_arg];
  const CommandSpec* spec = FindCommand(name);
  p.spec = spec;
  if (spec == nullptr) {
    WriteUnknownCommand(w,
                        std::span<const std::string_view>(args_.data() + p.first_arg, p.num_args));
  } else if ((spec->arity > 0 && static_cast<int>(p.num_args) != spec->arity) ||
             (spec->arity < 0 && static_cast<int>(p.num_args) < -spec->arity)) {
    WriteError(w, RespError::kWrongArity, spec->name);
  } else if (!(spec->flags & kNoAuth) && !state_.authed) {
    WriteError(w, RespError::kNoAuth);
  } else if (!(spec->flags & kNoAuth) && !PrincipalStillValid(w)) {
    // written by PrincipalStillValid; the connection is unauthenticated again
  } else if (state_.proto == 2 && !(spec->flags & kPubSubContext) && SubscriptionCount() > 0) {
    // A RESP2 connection with subscriptions is a stream of pushes (as Redis).
    std::string full(spec->name);
    if (HasSubcommands(spec->name) && p.num_args >= 2) {
      full.append("|").append(Lower(args_[p.first_arg + 1]));
    }
    WriteError(w, RespError::kSubscribeContext, full);
  } else {
    if (state_.authed && (state_.cache_state == nullptr || state_.cache_state->id != state_.cache_id)) {
      gateway::Tenancy* tenancy = owner_->server_->gateway->tenancy();
      state_.cache_state = tenancy != nullptr ? tenancy->Find(state_.cache_id) : nullptr;
    }
    CommandContext ctx = MakeContext(w, pipeline_.calls(), p);
    ctx.port = this;
    spec->prepare(ctx);
    if (awaiting_ready_ > 0 && !round_waits_ready_) {
      // A SUBSCRIBE: its confirmations go out once its subscriptions are ready.
      round_waits_ready_ = true;
      ++round_waits_;
      keep_alive_ = shared_from_this();
    }
    p.proto = w.proto();  // HELLO switches protocol for its own reply
    if (!(spec->flags & kNoAuth)) Verify(p, w);
  }
  p.local_len = static_cast<uint32_t>(local_.size() - p.local_off);
  p.num_calls = static_cast<uint32_t>(pipeline_.calls().size() - p.first_call);
  state_.commands++;
}

bool Connection::PrincipalStillValid(ReplyWriter& w) {
  Status st = pipeline_.StillValid(state_.principal);
  if (st.ok()) return true;
  state_.authed = false;
  parser_.set_limits(Limits());
  WriteError(w, RespError::kTokenExpired, st.message());
  return false;
}

void Connection::Verify(const Pending& p, ReplyWriter& w) {
  // The pipeline's checks of the command's calls: permission, the TTL cap, admission.
  // Nothing of a refused command runs or is answered but the error.
  const std::span<const std::string_view> args(args_.data() + p.first_arg, p.num_args);
  uint64_t bytes = 0;
  for (uint32_t i = 1; i < p.num_args; ++i) bytes += args[i].size();
  gateway::CacheState* c = state_.cache_state.get();
  switch (pipeline_.Verify(state_.principal, state_.cache_name, c, p.first_call,
                           p.spec->Access(args), bytes)) {
    case gateway::Verdict::kAllowed:
      return;
    case gateway::Verdict::kDenied:
      local_.resize(p.local_off);
      return WriteError(w, RespError::kNoPerm, p.spec->name);
    case gateway::Verdict::kRefused:
      local_.resize(p.local_off);
      return WriteRefusal(w, pipeline_, *c, pipeline_.refusal());
  }
}

bool CheckValueSize(CommandContext& ctx, size_t size, bool element) {
  gateway::CacheState* c = ctx.conn.cache_state.get();
  const gateway::Refusal r =
      gateway::CheckValueSize(c, size, element, ctx.server.max_item_bytes);
  if (r == gateway::Refusal::kNone) return true;
  if (c == nullptr) {
    WriteError(ctx.local, RespError::kValueTooLarge);
  } else {
    WriteRefusal(ctx.local, *ctx.pipeline, *c, r);
  }
  return false;
}


void Connection::ProcessRound() {
  resumed_at_ = SIZE_MAX;
  resume_alone_ = false;
  pipeline_.Begin();
  pending_.clear();
  local_.clear();
  args_.clear();
  scratch_.Reset();
  std::string_view buf(in_.get(), in_len_);
  round_read_bytes_ = 0;
  // Prepare's own count: an answer that comes inline cannot finish the round early.
  round_waits_ = 1;
  preparing_ = true;
  while (pending_.size() < round_limit_ && pipeline_.calls().size() < kMaxRoundCalls &&
         !state_.close_after_reply) {
    RespParser::Result r = parser_.Next(buf);
    if (r == RespParser::Result::kNeedMore) break;
    if (r == RespParser::Result::kError) {
      Pending p{nullptr, static_cast<uint32_t>(pipeline_.calls().size()), 0,
                static_cast<uint32_t>(local_.size()), 0, 0, 0, state_.proto};
      ReplyWriter w(&local_, state_.proto);
      WriteError(w, RespError::kProtocol, parser_.error());
      p.local_len = static_cast<uint32_t>(local_.size() - p.local_off);
      pending_.push_back(p);
      protocol_error_ = true;
      Bump(MetricsOf(owner_->thread_).protocol_errors);
      break;
    }
    Pending p{nullptr, static_cast<uint32_t>(pipeline_.calls().size()), 0,
              static_cast<uint32_t>(local_.size()), 0, static_cast<uint32_t>(args_.size()),
              static_cast<uint32_t>(parser_.args().size()), state_.proto};
    for (size_t i = 0; i < parser_.args().size(); ++i) args_.push_back(parser_.ArgAt(buf, i));
    if (refuse_round_) {
      // Overload: the tenant's queue on this loop is full. Refused without running.
      ReplyWriter w(&local_, state_.proto);
      WriteError(w, RespError::kOverloaded);
      gateway::Pipeline::CountOverloaded(state_.cache_state.get());
      p.local_len = static_cast<uint32_t>(local_.size() - p.local_off);
      pending_.push_back(p);
      continue;
    }
    const bool was_authed = state_.authed;
    PrepareNext(p);
    if (state_.authed != was_authed) parser_.set_limits(Limits());
    pending_.push_back(p);
    if (p.spec != nullptr && (p.spec->flags & kEndsRound) && p.num_calls > 0) break;
    // A command that answers later ends the round: what follows it may depend on it (a
    // PUBLISH after a SUBSCRIBE must reach the subscription).
    if (round_waits_ > 1) break;
  }
  preparing_ = false;
  refuse_round_ = false;
  if (pending_.empty()) {
    round_waits_ = 0;
    // Nothing complete: drop consumed bytes and wait for more.
    Compact();
    if (in_size_ > 4 * kReadChunk && in_len_ < kReadChunk) {
      ResizeIn(kReadChunk);  // give back the memory of a past large command
    }
    Read();
    if (HasPushes() && !busy_ && !writing_ && !closed_) FlushPushes();
    return;
  }
  busy_ = true;
  // Pushes that came before this round go out before its replies.
  writing_push_bytes_ += SerializePushes(SIZE_MAX);
  if (!pipeline_.calls().empty()) {
    ++round_waits_;
    // To the shards with a grant of reply memory, paced if it published (gateway/pipeline.h).
    pipeline_.Submit(state_.authed ? state_.principal.tenant : 0,
                     [self = shared_from_this()] { self->RoundPartDone(); });
  }
  RoundPartDone();
}

void Connection::RoundPartDone() {
  if (--round_waits_ > 0) return;
  FinishFrom(0);
}

void Connection::FinishFrom(size_t index) {
  // One clock read for the commands finished now (not one per command).
  pipeline_.Finishing();
  std::vector<gateway::Call>& calls = pipeline_.calls();
  for (size_t i = index; i < pending_.size(); ++i) {
    const Pending& p = pending_[i];
    const size_t before = out_.size();
    if (p.local_len == 0 && p.num_calls > 0 && NotRun(p)) {
      // The round's reply budget ran out before this command's calls (reply_memory.h): the
      // replies so far go out first, and the rest of the round runs once they are written
      // (ResumeRound), so a pipeline waits for its reader instead of piling up replies. A
      // command that does not fit a budget of its own is answered "reply too large".
      if (i > index || !resume_alone_) {
        resume_from_ = i;
        break;
      }
      resume_alone_ = false;
    }
    if (p.local_len > 0 || p.spec == nullptr || p.spec->finish == nullptr) {
      out_.append(local_, p.local_off, p.local_len);
    } else if (p.spec->followup != nullptr) {
      // Only a round's last command has a follow-up (kEndsRound).
      ReplyWriter unused(&local_, p.proto);
      std::span<gateway::Call> first(calls.data() + p.first_call, p.num_calls);
      followup_.calls.clear();
      CommandContext ctx = MakeContext(unused, followup_.calls, p);
      const bool second = p.spec->followup(ctx, first);
      if (second && !(p.spec->flags & kNoAuth) &&
          !gateway::Pipeline::Permitted(
              state_.principal, state_.cache_name, followup_.calls,
              p.spec->Access(std::span<const std::string_view>(args_).subspan(p.first_arg,
                                                                              p.num_args)))) {
        // The second round's keys (a STORE destination, LMOVE's target) need the grant too.
        ReplyWriter w(&out_, p.proto);
        WriteError(w, RespError::kNoPerm, p.spec->name);
        CountCommand(p, before);
        continue;
      }
      if (second) {
        pipeline_.SubmitFollowup(followup_, [self = shared_from_this(), i] {
              const Pending& q = self->pending_[i];
              ReplyWriter w(&self->out_, q.proto);
              ReplyWriter unused2(&self->local_, q.proto);
              CommandContext c2 = self->MakeContext(unused2, self->followup_.calls, q);
              const size_t before = self->out_.size();
              self->pipeline_.Finishing();
              q.spec->finish(c2, std::span<gateway::Call>(self->followup_.calls), w);
              self->CountCommand(q, before);
              self->FinishFrom(i + 1);
            });
        return;
      }
      ReplyWriter w(&out_, p.proto);
      p.spec->finish(ctx, first, w);
    } else {
      ReplyWriter w(&out_, p.proto);
      ReplyWriter unused(&local_, p.proto);
      CommandContext ctx = MakeContext(unused, calls, p);
      p.spec->finish(ctx, std::span<gateway::Call>(calls.data() + p.first_call, p.num_calls), w);
    }
    CountCommand(p, before);
  }
  // Bytes answered and latency to the cache's usage.
  pipeline_.ChargeRound(state_.cache_state.get(), round_read_bytes_);
  round_read_bytes_ = 0;
  // The replies are in out_ now: free the calls' copies (unless the round resumes), and
  // hold of the grant only what waits to be written.
  gateway::ReplyGrant& grant = pipeline_.reply_grant();
  if (resume_from_ == SIZE_MAX) calls.clear();
  followup_.calls.clear();
  uint64_t keep = out_.size();
  // The next round asks for about what this one took (a resumed one, for the most).
  grant.Learn(keep, resume_from_ != SIZE_MAX);
  if (resume_from_ != SIZE_MAX) {
    for (size_t c = pending_[resume_from_].first_call; c < calls.size(); ++c) {
      if (!calls[c].not_run) keep += calls[c].reply.footprint();
    }
  }
  grant.Keep(keep);
  Write();
}

void Connection::CountCommand(const Pending& p, size_t reply_start) {
  if (p.spec == nullptr) return;
  if (p.num_calls > 0) round_read_bytes_ += out_.size() - reply_start;
  ThreadMetrics& m = MetricsOf(owner_->thread_);
  const uint64_t elapsed_us = pipeline_.elapsed_us();
  size_t bucket = 0;
  while (kLatencyBoundsUs[bucket] < elapsed_us) ++bucket;
  const size_t id = p.spec->id % kMaxCommandIds;
  Bump(m.calls[id]);
  if (out_.size() > reply_start && out_[reply_start] == '-') Bump(m.errors[id]);
  Bump(m.latency[bucket]);
  Bump(m.latency_sum_us, elapsed_us);
}

void Connection::Write() {
  if (closed_) {
    busy_ = false;
    return;
  }
  // Pushes that came while the round was in flight follow its replies.
  writing_push_bytes_ += SerializePushes(kPushWriteBytes);
  if (out_.empty()) return AfterWrite();
  Bump(MetricsOf(owner_->thread_).bytes_out, out_.size());
  writing_ = true;
  stream_.AsyncWrite(asio::buffer(out_), [self = shared_from_this()](error_code ec, size_t) {
    self->writing_ = false;
    if (ec) {
      self->busy_ = false;
      return self->Close();
    }
    self->AfterWrite();
  });
}

void Connection::AfterWrite() {
  write_epoch_ = owner_->sweep_epoch_;
  const uint64_t written = out_.size();
  queued_bytes_ -= writing_push_bytes_;
  writing_push_bytes_ = 0;
  out_.clear();
  if (resume_from_ == SIZE_MAX) {
    pipeline_.reply_grant().ReleaseAll();
    ReleaseLargeBuffers();
  } else {
    pipeline_.reply_grant().Release(written);  // what the resumed commands' calls that ran hold stays
  }
  busy_ = false;
  if (protocol_error_ || state_.close_after_reply) return Close(/*after_answer=*/true);
  if (closing_) return FlushPushes();  // closes once the queued pushes are out
  if (resume_from_ != SIZE_MAX) return ResumeRound();
  // The round's borrowed bytes are free now: drop them and go on with what is buffered.
  Compact();
  Continue();
}

bool Connection::NotRun(const Pending& p) const {
  for (uint32_t c = p.first_call; c < p.first_call + p.num_calls; ++c) {
    if (pipeline_.calls()[c].not_run) return true;
  }
  return false;
}

void Connection::ResumeRound() {
  // The calls refused for the budget run again with a new grant: from the first unanswered
  // command on; or, when that command was already resumed with others and still did not
  // fit, its calls alone (then it fits or is answered "reply too large"). The input buffer is
  // untouched meanwhile, so the calls' borrowed bytes are still valid.
  const size_t from = std::exchange(resume_from_, SIZE_MAX);
  resume_alone_ = from == resumed_at_;
  resumed_at_ = from;
  const uint32_t first = pending_[from].first_call;
  const uint32_t end = resume_alone_ ? first + pending_[from].num_calls
                                     : static_cast<uint32_t>(pipeline_.calls().size());
  busy_ = true;
  pipeline_.RestartClock();
  auto done = [self = shared_from_this(), from] { self->FinishFrom(from); };
  if (!pipeline_.Resubmit(first, end, /*largest=*/false, done)) done();
}

void Connection::ReleaseLargeBuffers() {
  // One huge command (MGET of a million keys) must not pin its memory to an idle connection.
  constexpr size_t kKeepCalls = 4096, kKeepBytes = 1 << 20;
  if (pipeline_.calls().capacity() > kKeepCalls) std::vector<gateway::Call>().swap(pipeline_.calls());
  if (followup_.calls.capacity() > kKeepCalls) std::vector<gateway::Call>().swap(followup_.calls);
  if (args_.capacity() > kKeepCalls) std::vector<std::string_view>().swap(args_);
  if (out_.capacity() > kKeepBytes) std::string().swap(out_);
  if (local_.capacity() > kKeepBytes) std::string().swap(local_);
}

void Connection::Compact() {
  size_t consumed = parser_.consumed();
  if (consumed == 0) return;
  std::memmove(in_.get(), in_.get() + consumed, in_len_ - consumed);
  in_len_ -= consumed;
  parser_.Shift(consumed);
}


void Connection::ReleaseIdleBuffers() {
  ResizeIn(0);
  // Any connection drops what one large command left; a subscriber, which may idle for
  // hours, drops the rest too (the memory target is per subscriber).
  constexpr size_t kKeepBytes = 4096, kKeepItems = 64;
  const bool all = subs_ != nullptr;
  if (!writing_ && (all || out_.capacity() > kKeepBytes)) std::string().swap(out_);
  if (all || local_.capacity() > kKeepBytes) std::string().swap(local_);
  if (all || args_.capacity() > kKeepItems) std::vector<std::string_view>().swap(args_);
  if (all || pending_.capacity() > kKeepItems) std::vector<Pending>().swap(pending_);
  if (all) {
    std::vector<gateway::Call>().swap(pipeline_.calls());
    std::vector<gateway::Call>().swap(followup_.calls);
    scratch_ = ScratchArena();
  }
  if (!HasPushes() && pushes_.capacity() > 0) std::vector<Push>().swap(pushes_);
}

// ---- Deferred replies -------------------------------------------------------------------------

DeferredReply Connection::Defer() {
  ++round_waits_;
  return DeferredReply(std::shared_ptr<DeferredReply::Target>(
                           shared_from_this(), static_cast<DeferredReply::Target*>(this)),
                       state_.proto);
}

void Connection::DeferredDone() {
  // The deferred command is the round's last (it ended the round); while it is still being
  // prepared its length is measured when Prepare returns.
  if (!preparing_) {
    Pending& p = pending_.back();
    p.local_len = static_cast<uint32_t>(local_.size() - p.local_off);
  }
  RoundPartDone();
}

// ---- Subscriptions ------------------------------------------------------------------------------

size_t Connection::SubscriptionCount() const {
  return subs_ == nullptr ? 0 : subs_->channels.size() + subs_->patterns.size();
}

bool Connection::IsSubscribed(std::string_view name, bool pattern) const {
  if (subs_ == nullptr) return false;
  const auto& m = pattern ? subs_->patterns : subs_->channels;
  return m.contains(absl::string_view(name.data(), name.size()));
}

Status Connection::AddSubscription(std::string_view name, bool pattern) {
  topics::Topics* t = owner_->server_->topics;
  subscribing_ = true;
  StatusOr<topics::SubId> id =
      pattern ? t->PSubscribe(owner_->thread_, this, state_.cache_id, name,
                              state_.principal.expires_at)
              : t->Subscribe(owner_->thread_, this, state_.cache_id, name, 0, 0, false,
                             nullptr, state_.principal.expires_at);
  subscribing_ = false;
  const bool ready_already =
      id.ok() && std::find(early_ready_.begin(), early_ready_.end(), *id) != early_ready_.end();
  early_ready_.clear();
  if (!id.ok()) return id.status();
  if (subs_ == nullptr) subs_ = std::make_unique<SubState>();
  Sub s{std::string(name), pattern, !ready_already, subs_->next_order++,
        pattern ? std::make_shared<const std::string>(name) : nullptr};
  if (s.awaited) ++awaiting_ready_;
  subs_->by_id.emplace(*id, std::move(s));
  (pattern ? subs_->patterns : subs_->channels).emplace(std::string(name), *id);
  return Status::Ok();
}

bool Connection::RemoveSubscription(std::string_view name, bool pattern) {
  if (subs_ == nullptr) return false;
  auto& m = pattern ? subs_->patterns : subs_->channels;
  auto it = m.find(absl::string_view(name.data(), name.size()));
  if (it == m.end()) return false;
  const topics::SubId id = it->second;
  owner_->server_->topics->Unsubscribe(owner_->thread_, id);
  if (auto s = subs_->by_id.find(id); s != subs_->by_id.end()) Unready(s->second);
  Forget(id);
  return true;
}

std::vector<std::string> Connection::SubscriptionNames(bool pattern) const {
  std::vector<std::pair<uint64_t, const std::string*>> found;
  if (subs_ != nullptr) {
    for (const auto& [id, s] : subs_->by_id) {
      if (s.pattern == pattern) found.emplace_back(s.order, &s.name);
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> names;
  names.reserve(found.size());
  for (const auto& f : found) names.push_back(*f.second);
  return names;
}

void Connection::DropSubscriptions() {
  if (subs_ == nullptr) return;
  std::unique_ptr<SubState> subs = std::move(subs_);
  topics::Topics* t = owner_->server_->topics;
  for (auto& [id, s] : subs->by_id) {
    t->Unsubscribe(owner_->thread_, id);
    Unready(s);
  }
}

void Connection::Forget(topics::SubId id) {
  auto it = subs_->by_id.find(id);
  if (it == subs_->by_id.end()) return;
  auto& m = it->second.pattern ? subs_->patterns : subs_->channels;
  m.erase(it->second.name);
  subs_->by_id.erase(it);
  if (subs_->by_id.empty()) subs_.reset();  // a connection that left pub/sub keeps nothing of it
}

void Connection::Unready(Sub& s) {
  if (!s.awaited) return;
  s.awaited = false;
  if (--awaiting_ready_ > 0 || !round_waits_ready_) return;
  round_waits_ready_ = false;
  // Posted: this runs inside a hub callback (which may not Subscribe, as a next round could)
  // or inside Close; the keep-alive moves into the handler.
  asio::post(owner_->io_, [self = std::move(keep_alive_)] { self->RoundPartDone(); });
}

void Connection::OnReady(topics::SubId id) {
  if (subs_ == nullptr || !subs_->by_id.contains(id)) {
    if (subscribing_) early_ready_.push_back(id);
    return;
  }
  Unready(subs_->by_id.find(id)->second);
}

void Connection::OnItem(topics::SubId id, const topics::MessagePtr& message) {
  if (subs_ == nullptr) return;
  auto it = subs_->by_id.find(id);
  if (it == subs_->by_id.end()) return;
  const Sub& s = it->second;
  // The bytes this push will take in the output (near enough: the header's length digits).
  const size_t header =
      s.pattern ? 32 + s.pattern_name->size() : MessageHeader(state_.proto).size();
  const size_t bytes = header + message->wire(owner_->server_->topic_encoding).size();
  Enqueue(Push{message, s.pattern ? s.pattern_name : nullptr, static_cast<uint32_t>(bytes)},
          bytes);
}

void Connection::OnItemTagged(topics::SubId id, void* tag, const topics::MessagePtr& message) {
  (void)id;
  (void)tag;
  // The bound's count (as OnItem's, near enough): a "message" push's header is as long in
  // RESP2 as in RESP3, so the protocol (in state_, another cache line) is not read here.
  const size_t bytes =
      MessageHeader(2).size() + message->wire(owner_->server_->topic_encoding).size();
  Enqueue(Push{message, nullptr, static_cast<uint32_t>(bytes)}, bytes);
}

void Connection::Prefetch(void* tag) const {
  (void)tag;
  if (pushes_.size() < pushes_.capacity()) __builtin_prefetch(pushes_.data() + pushes_.size(), 1);
}

void Connection::OnEnd(topics::SubId id, const Status& why) {
  if (subs_ == nullptr) return;
  auto it = subs_->by_id.find(id);
  if (it == subs_->by_id.end()) return;
  Sub& s = it->second;
  std::string frame;
  ReplyWriter w(&frame, state_.proto);
  WriteSubscriptionEnded(w, s.pattern, s.name, why);
  Unready(s);
  Forget(id);
  // Notices are not counted against the queue bound: a cache with many subscriptions on this
  // connection ends them all at once.
  pushes_.push_back(Push{nullptr, std::make_shared<const std::string>(std::move(frame)), 0});
  if (why.code() == Code::kUnavailable) closing_ = true;  // closed once the notice is out
  ScheduleFlush();
}

void Connection::Enqueue(Push push, size_t bytes) {
  if (closed_ || fell_behind_) return;
  const uint64_t limit = owner_->server_->topics->options().subscriber_queue_bytes;
  // Falling behind is messages piling up behind a write the socket has not taken (its
  // buffers are full). A burst that arrives while the socket keeps up is written, not held
  // against the reader; it is still bounded (four times the limit), as memory must be.
  if (limit != 0 && queued_bytes_ + bytes > (writing_ ? limit : 4 * limit)) return FellBehind();
  queued_bytes_ += bytes;
  pushes_.push_back(std::move(push));
  if (!busy_ && !writing_ && queued_bytes_ >= kPushWriteBytes) return FlushPushes();  // a full write
  ScheduleFlush();
}

size_t Connection::SerializePushes(size_t limit) {
  size_t moved = 0;
  const size_t start = out_.size();
  while (HasPushes() && out_.size() - start < limit) {
    Push& p = pushes_[pushes_head_++];
    if (p.message == nullptr) {
      out_.append(*p.text);
    } else {
      if (p.text != nullptr) {
        AppendPMessageHeader(out_, state_.proto, *p.text);
      } else {
        out_.append(MessageHeader(state_.proto));
      }
      out_.append(p.message->wire(owner_->server_->topic_encoding));
    }
    moved += p.bytes;
    p = Push{};  // the message is copied: let it go now
  }
  if (!HasPushes()) {
    pushes_.clear();
    pushes_head_ = 0;
  } else if (pushes_head_ >= 64 && pushes_head_ * 2 >= pushes_.size()) {
    pushes_.erase(pushes_.begin(), pushes_.begin() + static_cast<ptrdiff_t>(pushes_head_));
    pushes_head_ = 0;
  }
  return moved;
}

void Connection::ScheduleFlush() {
  // Busy or writing: the round's write or the write's completion takes the pushes.
  if (flush_posted_ || busy_ || writing_ || closed_) return;
  flush_posted_ = true;
  // Posted, so that every message delivered in this loop turn goes out in one write.
  asio::post(owner_->io_, [self = shared_from_this()] { self->FlushPushes(); });
}

void Connection::FlushPushes() {
  flush_posted_ = false;
  if (closed_ || busy_ || writing_) return;
  while (HasPushes()) {
    writing_push_bytes_ = SerializePushes(kPushWriteBytes);
    Bump(MetricsOf(owner_->thread_).bytes_out, out_.size());
    if (!stream_.is_tls()) {
      // Written now while the socket takes it all: a write is left pending (and the queue
      // bound applies) only once the socket's buffer is full.
      error_code ec;
      const size_t n = stream_.socket().write_some(asio::buffer(out_), ec);
      if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return Close();
      if (!ec && n == out_.size()) {
        queued_bytes_ -= writing_push_bytes_;
        writing_push_bytes_ = 0;
        out_.clear();
        continue;
      }
      if (!ec) out_.erase(0, n);
    }
    writing_ = true;
    stream_.AsyncWrite(asio::buffer(out_), [self = shared_from_this()](error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->Close();
      self->AfterPushWrite();
    });
    return;
  }
  if (out_.capacity() > kPushWriteBytes * 2) std::string().swap(out_);
  if (closing_) Close();  // what was left to say is said
}

void Connection::AfterPushWrite() {
  queued_bytes_ -= writing_push_bytes_;
  writing_push_bytes_ = 0;
  out_.clear();
  if (closed_) return;
  if (closing_) return FlushPushes();
  // Input that arrived during the write was left for now (reading_ is false): process it.
  if (!reading_) return Continue();
  FlushPushes();
}

void Connection::FellBehind() {
  if (fell_behind_) return;
  fell_behind_ = true;
  closing_ = true;
  const uint64_t limit = owner_->server_->topics->options().subscriber_queue_bytes;
  // What is queued is dropped; what is in the write in flight still goes, then the error.
  pushes_.clear();
  pushes_head_ = 0;
  queued_bytes_ = writing_push_bytes_;
  std::string frame;
  ReplyWriter w(&frame, state_.proto);
  WriteError(w, RespError::kFellBehind, limit);
  pushes_.push_back(Push{nullptr, std::make_shared<const std::string>(std::move(frame)), 0});
  owner_->server_->topics->NoteSlowSubscriber();  // cellar_topic_slow_subscribers_total
  LOG_INFO("msg=resp_subscriber_fell_behind conn={} peer={} limit_bytes={}", state_.id,
           state_.peer, limit);
  // A reader that takes nothing more is closed after a grace period, error or not.
  grace_ = std::make_unique<asio::steady_timer>(owner_->io_);
  grace_->expires_after(std::chrono::milliseconds(kFellBehindGraceMs));
  grace_->async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->Close();
  });
  DropSubscriptions();
  ScheduleFlush();
}

}  // namespace cellar::resp
