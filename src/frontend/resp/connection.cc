#include "frontend/resp/connection.h"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "common/clock.h"
#include "common/logging.h"
#include "control/cache_registry.h"
#include "frontend/resp/metrics.h"
#include "frontend/resp/resp_server.h"

namespace cellar::resp {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr size_t kReadChunk = 16 * 1024;
}  // namespace

Connection::Connection(RespServer* owner, asio::ip::tcp::socket socket, uint64_t id)
    : owner_(owner), stream_(std::move(socket)), parser_(kPreAuthLimits) {
  state_.id = id;
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
  owner_->conns_.erase(this);
  RespServer::LiveConnections().fetch_sub(1, std::memory_order_relaxed);
  Bump(MetricsOf(owner_->thread_).connections_closed);
}

void Connection::Start() {
  stream_.Start(owner_->tls_, [self = shared_from_this()](bool ok) {
    if (!ok) return self->Close();
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
  if (!busy_) Close();
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  stream_.Close();
}

void Connection::Read() {
  if (closing_) return Close();
  // Grow toward what the parser says the current command needs, but at most doubling per
  // read: memory follows the bytes that arrive, not the lengths a client announces.
  size_t want = std::max(kReadChunk, std::min(parser_.Wanted(), std::max(in_len_, kReadChunk)));
  if (in_.size() - in_len_ < want) in_.resize(in_len_ + want);
  reading_ = true;
  stream_.AsyncReadSome(asio::buffer(in_.data() + in_len_, in_.size() - in_len_),
                        [self = shared_from_this()](error_code ec, size_t n) {
                            self->reading_ = false;
                            if (ec) return self->Close();
                            self->OnRead(n);
                          });
}

void Connection::OnRead(size_t n) {
  in_len_ += n;
  Bump(MetricsOf(owner_->thread_).bytes_in, n);
  ProcessRound();
}

CommandContext Connection::MakeContext(ReplyWriter& local, std::vector<gateway::Call>& calls,
                                       const Pending& p) {
  CommandContext ctx(state_, *owner_->server_, owner_->thread_, round_now_ms_, calls, local,
                     scratch_);
  ctx.args = std::span<const std::string_view>(args_.data() + p.first_arg, p.num_args);
  ctx.spec = p.spec;
  return ctx;
}

void Connection::PrepareOne(Pending& p) {
  ReplyWriter w(&local_, state_.proto);
  std::string_view name = args_[p.first_arg];
  const CommandSpec* spec = FindCommand(name);
  p.spec = spec;
  if (spec == nullptr) {
    std::string detail;
    detail.append("'").append(name.substr(0, 128)).append("', with args beginning with: ");
    for (uint32_t i = 1; i < p.num_args && detail.size() < 256; ++i) {
      detail.append("'").append(args_[p.first_arg + i].substr(0, 128)).append("' ");
    }
    WriteError(w, RespError::kUnknownCommand, detail);
  } else if ((spec->arity > 0 && static_cast<int>(p.num_args) != spec->arity) ||
             (spec->arity < 0 && static_cast<int>(p.num_args) < -spec->arity)) {
    WriteError(w, RespError::kWrongArity, spec->name);
  } else if (!(spec->flags & kNoAuth) && !state_.authed) {
    WriteError(w, RespError::kNoAuth);
  } else if (!(spec->flags & kNoAuth) && !PrincipalStillValid(w)) {
    // written by PrincipalStillValid; the connection is unauthenticated again
  } else {
    CommandContext ctx = MakeContext(w, batch_.calls, p);
    spec->prepare(ctx);
    p.proto = w.proto();  // HELLO switches protocol for its own reply
    if (!(spec->flags & kNoAuth) && !Permitted(*spec, p)) {
      // Nothing of a refused command runs or is answered but the error.
      batch_.calls.resize(p.first_call);
      local_.resize(p.local_off);
      WriteError(w, RespError::kNoPerm, spec->name);
    }
  }
  p.local_len = static_cast<uint32_t>(local_.size() - p.local_off);
  p.num_calls = static_cast<uint32_t>(batch_.calls.size() - p.first_call);
  state_.commands++;
}

bool Connection::PrincipalStillValid(ReplyWriter& w) {
  Status st = owner_->server_->gateway->StillValid(state_.principal, round_now_ms_ / 1000);
  if (st.ok()) return true;
  state_.authed = false;
  parser_.set_limits(Limits());
  WriteError(w, RespError::kTokenExpired, st.message());
  return false;
}

namespace {

// What a RESP command needs of a token: reads, blind writes (which a write-only token may do),
// or writes that read or depend on what is there (which it may not).
auth::Access AccessOf(const CommandSpec& spec, std::span<const std::string_view> args) {
  if (!(spec.flags & kWrite)) return auth::Access::kRead;
  const std::string_view n = spec.name;
  if (n == "setex" || n == "psetex" || n == "mset" || n == "del" || n == "unlink") {
    return auth::Access::kWrite;
  }
  if (n == "set") {
    for (size_t i = 3; i < args.size(); ++i) {
      if (EqualsIgnoreCase(args[i], "nx") || EqualsIgnoreCase(args[i], "xx") ||
          EqualsIgnoreCase(args[i], "get") || EqualsIgnoreCase(args[i], "keepttl")) {
        return auth::Access::kConditionalWrite;
      }
    }
    return auth::Access::kWrite;
  }
  return auth::Access::kConditionalWrite;
}

}  // namespace

bool Connection::Permitted(const CommandSpec& spec, const Pending& p) {
  return CallsPermitted(spec, p, std::span<const gateway::Call>(batch_.calls).subspan(p.first_call));
}

bool Connection::CallsPermitted(const CommandSpec& spec, const Pending& p,
                                std::span<const gateway::Call> calls) {
  const auth::Permissions& perms = state_.principal.perms;
  if (perms.super_user) return true;
  const auth::Access access =
      AccessOf(spec, std::span<const std::string_view>(args_).subspan(p.first_arg, p.num_args));
  // Keyless calls (SCAN, DBSIZE, FLUSHDB, ...) ask with the empty key: only a grant on every
  // item of the cache allows them, so a key-scoped token cannot list or flush other keys.
  for (const gateway::Call& c : calls) {
    if (!auth::Allows(perms, state_.cache_name, c.req.key, access)) return false;
  }
  return true;
}

void Connection::ProcessRound() {
  batch_.calls.clear();
  pending_.clear();
  local_.clear();
  args_.clear();
  scratch_.Reset();
  std::string_view buf(in_.data(), in_len_);
  round_now_ms_ = SystemClock::Get()->NowMillis();
  while (pending_.size() < kMaxRound && batch_.calls.size() < kMaxRoundCalls &&
         !state_.close_after_reply) {
    RespParser::Result r = parser_.Next(buf);
    if (r == RespParser::Result::kNeedMore) break;
    if (r == RespParser::Result::kError) {
      Pending p{nullptr, static_cast<uint32_t>(batch_.calls.size()), 0,
                static_cast<uint32_t>(local_.size()), 0, 0, 0, state_.proto};
      ReplyWriter(&local_, state_.proto).Error("ERR " + parser_.error());
      p.local_len = static_cast<uint32_t>(local_.size() - p.local_off);
      pending_.push_back(p);
      protocol_error_ = true;
      Bump(MetricsOf(owner_->thread_).protocol_errors);
      break;
    }
    Pending p{nullptr, static_cast<uint32_t>(batch_.calls.size()), 0,
              static_cast<uint32_t>(local_.size()), 0, static_cast<uint32_t>(args_.size()),
              static_cast<uint32_t>(parser_.args().size()), state_.proto};
    for (size_t i = 0; i < parser_.args().size(); ++i) args_.push_back(parser_.ArgAt(buf, i));
    const bool was_authed = state_.authed;
    PrepareOne(p);
    if (state_.authed != was_authed) parser_.set_limits(Limits());
    pending_.push_back(p);
    if (p.spec != nullptr && (p.spec->flags & kEndsRound) && p.num_calls > 0) break;
  }
  if (pending_.empty()) {
    // Nothing complete: drop consumed bytes and wait for more.
    Compact();
    if (in_.size() > 4 * kReadChunk && in_len_ < kReadChunk) {
      in_.resize(kReadChunk);  // give back the memory of a past large command
      in_.shrink_to_fit();
    }
    return Read();
  }
  busy_ = true;
  round_start_ns_ = MonotonicNanos();
  if (batch_.calls.empty()) return FinishRound();
  owner_->server_->gateway->Submit(owner_->thread_, &batch_,
                                   [self = shared_from_this()] { self->FinishRound(); });
}

void Connection::FinishRound() { FinishFrom(0); }

void Connection::FinishFrom(size_t index) {
  // One clock read for the commands finished now (not one per command).
  round_elapsed_us_ = (MonotonicNanos() - round_start_ns_) / 1000;
  for (size_t i = index; i < pending_.size(); ++i) {
    const Pending& p = pending_[i];
    const size_t before = out_.size();
    if (p.local_len > 0 || p.spec == nullptr || p.spec->finish == nullptr) {
      out_.append(local_, p.local_off, p.local_len);
    } else if (p.spec->followup != nullptr) {
      // Only a round's last command has a follow-up (kEndsRound).
      ReplyWriter unused(&local_, p.proto);
      std::span<gateway::Call> first(batch_.calls.data() + p.first_call, p.num_calls);
      followup_.calls.clear();
      CommandContext ctx = MakeContext(unused, followup_.calls, p);
      const bool second = p.spec->followup(ctx, first);
      if (second && !(p.spec->flags & kNoAuth) &&
          !CallsPermitted(*p.spec, p, std::span<const gateway::Call>(followup_.calls))) {
        // The second round's keys (a STORE destination, LMOVE's target) need the grant too.
        ReplyWriter w(&out_, p.proto);
        WriteError(w, RespError::kNoPerm, p.spec->name);
        CountCommand(p, before);
        continue;
      }
      if (second) {
        owner_->server_->gateway->Submit(
            owner_->thread_, &followup_, [self = shared_from_this(), i] {
              const Pending& q = self->pending_[i];
              ReplyWriter w(&self->out_, q.proto);
              ReplyWriter unused2(&self->local_, q.proto);
              CommandContext c2 = self->MakeContext(unused2, self->followup_.calls, q);
              const size_t before = self->out_.size();
              self->round_elapsed_us_ = (MonotonicNanos() - self->round_start_ns_) / 1000;
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
      CommandContext ctx = MakeContext(unused, batch_.calls, p);
      p.spec->finish(ctx, std::span<gateway::Call>(batch_.calls.data() + p.first_call, p.num_calls), w);
    }
    CountCommand(p, before);
  }
  Write();
}

void Connection::CountCommand(const Pending& p, size_t reply_start) {
  if (p.spec == nullptr) return;
  ThreadMetrics& m = MetricsOf(owner_->thread_);
  const uint64_t elapsed_us = round_elapsed_us_;
  size_t bucket = 0;
  while (kLatencyBoundsUs[bucket] < elapsed_us) ++bucket;
  const size_t id = p.spec->id % kMaxCommandIds;
  Bump(m.calls[id]);
  if (out_.size() > reply_start && out_[reply_start] == '-') Bump(m.errors[id]);
  Bump(m.latency[bucket]);
  Bump(m.latency_sum_us, elapsed_us);
}

void Connection::Write() {
  if (out_.empty()) return AfterWrite();
  Bump(MetricsOf(owner_->thread_).bytes_out, out_.size());
  stream_.AsyncWrite(asio::buffer(out_), [self = shared_from_this()](error_code ec, size_t) {
    if (ec) {
      self->busy_ = false;
      return self->Close();
    }
    self->AfterWrite();
  });
}

void Connection::AfterWrite() {
  out_.clear();
  ReleaseLargeBuffers();
  busy_ = false;
  if (protocol_error_ || state_.close_after_reply || closing_) return Close();
  // The round's borrowed bytes are free now: drop them and go on with what is buffered.
  Compact();
  ProcessRound();
}

void Connection::ReleaseLargeBuffers() {
  // One huge command (MGET of a million keys) must not pin its memory to an idle connection.
  constexpr size_t kKeepCalls = 4096, kKeepBytes = 1 << 20;
  if (batch_.calls.capacity() > kKeepCalls) std::vector<gateway::Call>().swap(batch_.calls);
  if (followup_.calls.capacity() > kKeepCalls) std::vector<gateway::Call>().swap(followup_.calls);
  if (args_.capacity() > kKeepCalls) std::vector<std::string_view>().swap(args_);
  if (out_.capacity() > kKeepBytes) std::string().swap(out_);
  if (local_.capacity() > kKeepBytes) std::string().swap(local_);
}

void Connection::Compact() {
  size_t consumed = parser_.consumed();
  if (consumed == 0) return;
  std::memmove(in_.data(), in_.data() + consumed, in_len_ - consumed);
  in_len_ -= consumed;
  parser_.Shift(consumed);
}

}  // namespace cellar::resp
