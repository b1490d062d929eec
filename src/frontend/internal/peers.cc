#include "frontend/internal/peers.h"

#include <cstring>
#include <deque>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "common/clock.h"
#include "common/hash.h"
#include "common/logging.h"
#include "control/admin_key.h"
#include "frontend/net/listen.h"
#include "gateway/forward_codec.h"

namespace cellar::internal {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

enum Kind : uint8_t { kHello = 1, kHelloOk = 2, kCalls = 3, kReplies = 4, kImport = 5 };
constexpr size_t kHeader = 13;  // u32 length, u8 kind, u64 id

std::string Frame(Kind kind, uint64_t id, std::string_view payload) {
  std::string f(kHeader, '\0');
  const uint32_t len = static_cast<uint32_t>(payload.size());
  std::memcpy(f.data(), &len, 4);
  f[4] = static_cast<char>(kind);
  std::memcpy(f.data() + 5, &id, 8);
  f.append(payload);
  return f;
}

struct Header {
  uint32_t len;
  uint8_t kind;
  uint64_t id;
};
Header ParseHeader(const char* h) {
  Header out{};
  std::memcpy(&out.len, h, 4);
  out.kind = static_cast<uint8_t>(h[4]);
  std::memcpy(&out.id, h + 5, 8);
  return out;
}

// Writes queued frames one after another; owner keeps it alive through shared_from_this.
class Writer {
 public:
  void Push(std::string frame) { out_.push_back(std::move(frame)); }
  bool busy() const { return writing_; }
  bool empty() const { return out_.empty(); }
  template <typename Self>
  void Pump(tcp::socket& sock, std::shared_ptr<Self> self) {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    asio::async_write(sock, asio::buffer(out_.front()),
                      [this, self, &sock](error_code ec, size_t) {
                        writing_ = false;
                        if (ec) return self->Fail("write: " + ec.message());
                        out_.pop_front();
                        Pump(sock, self);
                      });
  }
  void Clear() { out_.clear(); }

 private:
  std::deque<std::string> out_;
  bool writing_ = false;
};

}  // namespace

PeerForwarder::Counters& PeerForwarder::counters() {
  static Counters c;
  return c;
}

// ---------------------------------------------------------------------------------------
// Server side: calls forwarded to this node.

struct PeerServer::Conn : std::enable_shared_from_this<PeerServer::Conn> {
  Conn(PeerServer* s, tcp::socket sock) : server(s), socket(std::move(sock)), hello_timer(s->io_) {}

  PeerServer* server;
  tcp::socket socket;
  asio::steady_timer hello_timer;  // a connection that does not say hello in time is closed
  char header[kHeader];
  std::string payload;
  bool hello = false;
  bool closed = false;
  Writer writer;

  void ReadHeader() {
    auto self = shared_from_this();
    asio::async_read(socket, asio::buffer(header, kHeader), [self](error_code ec, size_t) {
      if (ec) return self->Close();
      const Header h = ParseHeader(self->header);
      // Before the hello only a hello fits: nobody unknown makes us hold a large buffer.
      const size_t limit = self->hello ? self->server->options_.max_frame_bytes : 4096;
      if (h.len > limit) {
        LOG_WARN("msg=\"internal frame too large; closing\" bytes={} hello={}", h.len,
                 self->hello);
        return self->Close();
      }
      self->payload.resize(h.len);
      asio::async_read(self->socket, asio::buffer(self->payload),
                       [self, h](error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->Handle(h);
                       });
    });
  }

  void Handle(const Header& h) {
    if (!hello) {
      if (h.kind != kHello || !control::SecretEquals(payload, server->options_.secret)) {
        LOG_WARN("msg=\"internal connection without the cluster's secret; closing\" peer={}",
                 Peer());
        return Close();
      }
      hello = true;
      hello_timer.cancel();
      Send(Frame(kHelloOk, h.id, {}));
      return ReadHeader();
    }
    if (h.kind != kCalls && h.kind != kImport) return Close();
    std::shared_ptr<gateway::DecodedCalls> d =
        gateway::DecodeCalls(std::move(payload), SteadyMillis());
    payload.clear();
    if (d == nullptr) {
      LOG_WARN("msg=\"undecodable internal frame; closing\" peer={}", Peer());
      return Close();
    }
    // A sender with an older map may send calls for slots this node no longer owns: they are
    // answered without running, and the sender tries again.
    // An import (slots moving here: migrate.h) is for slots this node does not own yet.
    const gateway::Routes* routes =
        h.kind == kImport ? nullptr : server->routes_.RoutesFor(server->loop_);
    for (gateway::Call& c : d->batch.calls) {
      // Only keyed data calls travel between nodes (cache-wide ones and publishes never do).
      if (api::IsCacheWide(c.req.op) || c.req.op == api::Op::kPublish) {
        c.hold = true;
        c.reply.status = Status(Code::kInvalidArgument, "not a call nodes forward");
        continue;
      }
      // Not ours (or no map here yet: the sender's is newer): the sender routes it again.
      if (routes != nullptr && routes->Owner(routing::SlotOf(KeyHash(c.req.cache_id, c.req.key))) !=
                                   gateway::Routes::kLocal) {
        c.hold = true;
        c.moved = true;
        c.reply.status = Status(Code::kUnavailable,
                                "the slot moved to another node; retry (the cluster's map "
                                "changed)");
        PeerForwarder::counters().moved.fetch_add(1, std::memory_order_relaxed);
      }
    }
    PeerForwarder::counters().served.fetch_add(d->batch.calls.size(), std::memory_order_relaxed);
    d->batch.set_local_only(true);
    auto self = shared_from_this();
    const uint64_t id = h.id;
    server->gateway_.Submit(server->loop_, &d->batch, [self, d, id] {
      std::string out;
      gateway::EncodeReplies(d->batch.calls, out);
      self->Send(Frame(kReplies, id, out));
    });
    ReadHeader();  // the next frame may run meanwhile: replies go back by id
  }

  void Send(std::string frame) {
    if (closed) return;
    writer.Push(std::move(frame));
    writer.Pump(socket, shared_from_this());
  }
  void Fail(const std::string&) { Close(); }

  std::string Peer() {
    error_code ec;
    auto ep = socket.remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void Close() {
    if (closed) return;
    closed = true;
    error_code ignored;
    hello_timer.cancel();
    socket.close(ignored);
    writer.Clear();
    server->live_.erase(shared_from_this());
  }
};

PeerServer::PeerServer(asio::io_context& io, uint32_t loop, gateway::Gateway& gateway,
                       gateway::Forwarder& routes, const PeerOptions& options)
    : io_(io), loop_(loop), gateway_(gateway), routes_(routes), options_(options), acceptor_(io) {}

PeerServer::~PeerServer() = default;

void PeerServer::Listen(const std::string& address, uint16_t port, bool first) {
  port_ = net::ListenReusePort(acceptor_, address, port, first, "internal");
  Accept();
}

void PeerServer::Accept() {
  acceptor_.async_accept([this](error_code ec, tcp::socket sock) {
    if (stopping_) return;
    if (!ec) {
      sock.set_option(tcp::no_delay(true), ec);
      auto c = std::make_shared<Conn>(this, std::move(sock));
      live_.insert(c);
      c->hello_timer.expires_after(std::chrono::seconds(5));
      c->hello_timer.async_wait([weak = std::weak_ptr<Conn>(c)](error_code ec) {
        auto c = weak.lock();
        if (!ec && c && !c->hello) c->Close();
      });
      c->ReadHeader();
    }
    Accept();
  });
}

void PeerServer::Stop() {
  stopping_ = true;
  error_code ignored;
  acceptor_.close(ignored);
}

void PeerServer::CloseAll() {
  std::vector<std::shared_ptr<Conn>> all(live_.begin(), live_.end());
  for (auto& c : all) c->Close();
}

// ---------------------------------------------------------------------------------------
// Client side: this node's calls for slots other nodes own.

struct PeerForwarder::Conn : std::enable_shared_from_this<PeerForwarder::Conn> {
  Conn(asio::io_context& io, std::string node, std::string addr, const PeerOptions& o)
      : io(io), socket(io), resolver(io), timer(io), node(std::move(node)),
        addr(std::move(addr)), options(o) {}

  struct Pending {
    gateway::Batch* batch;
    std::vector<uint32_t> indices;
    std::function<void()> done;
    int64_t deadline_ms;  // steady ms: answered with an error past it
    bool has_deadline;
  };

  asio::io_context& io;
  tcp::socket socket;
  tcp::resolver resolver;
  asio::steady_timer timer;
  const std::string node, addr;
  const PeerOptions& options;
  enum { kIdle, kConnecting, kReady, kClosed } state = kIdle;
  Writer writer;
  std::deque<std::string> waiting;  // calls frames written once the hello is answered
  std::map<uint64_t, Pending> pending;
  uint64_t next_id = 1;
  char header[kHeader];
  std::string payload;
  bool sweeping = false;

  void Connect() {
    state = kConnecting;
    const size_t colon = addr.rfind(':');
    auto self = shared_from_this();
    resolver.async_resolve(
        addr.substr(0, colon), colon == std::string::npos ? "" : addr.substr(colon + 1),
        [self](error_code ec, tcp::resolver::results_type eps) {
          if (self->state == kClosed) return;
          if (ec) return self->Fail("resolve: " + ec.message());
          asio::async_connect(self->socket, eps, [self](error_code ec, const tcp::endpoint&) {
            if (self->state == kClosed) return;
            if (ec) return self->Fail("connect: " + ec.message());
            self->socket.set_option(tcp::no_delay(true), ec);
            self->writer.Push(Frame(kHello, 0, self->options.secret));
            self->writer.Pump(self->socket, self);
            self->ReadHeader();
          });
        });
  }

  void Send(gateway::Batch& batch, std::span<const uint32_t> indices,
            std::function<void()> done, Kind kind = kCalls) {
    const int64_t now = SteadyMillis();
    Pending p{&batch, std::vector<uint32_t>(indices.begin(), indices.end()), std::move(done),
              now + options.default_timeout_ms, false};
    for (uint32_t i : indices) {
      const int64_t d = batch.calls[i].deadline_ms;
      if (d != 0 && (!p.has_deadline || d < p.deadline_ms)) {
        p.deadline_ms = d;
        p.has_deadline = true;
      }
    }
    std::string body;
    gateway::EncodeCalls(batch, indices, now, body);
    const uint64_t id = next_id++;
    std::string frame = Frame(kind, id, body);
    pending.emplace(id, std::move(p));
    PeerForwarder::counters().forwarded.fetch_add(indices.size(), std::memory_order_relaxed);
    if (state == kReady) {
      writer.Push(std::move(frame));
      writer.Pump(socket, shared_from_this());
    } else {
      waiting.push_back(std::move(frame));
      if (state == kIdle) Connect();
    }
    Sweep();
  }

  void ReadHeader() {
    auto self = shared_from_this();
    asio::async_read(socket, asio::buffer(header, kHeader), [self](error_code ec, size_t) {
      if (self->state == kClosed) return;
      if (ec) return self->Fail("read: " + ec.message());
      const Header h = ParseHeader(self->header);
      if (h.len > self->options.max_frame_bytes) return self->Fail("reply frame too large");
      self->payload.resize(h.len);
      asio::async_read(self->socket, asio::buffer(self->payload),
                       [self, h](error_code ec, size_t) {
                         if (self->state == kClosed) return;
                         if (ec) return self->Fail("read: " + ec.message());
                         self->Handle(h);
                       });
    });
  }

  void Handle(const Header& h) {
    if (h.kind == kHelloOk && state == kConnecting) {
      state = kReady;
      while (!waiting.empty()) {
        writer.Push(std::move(waiting.front()));
        waiting.pop_front();
      }
      writer.Pump(socket, shared_from_this());
      return ReadHeader();
    }
    if (h.kind != kReplies || state != kReady) return Fail("unexpected frame");
    auto it = pending.find(h.id);
    if (it != pending.end()) {  // else: answered already (timed out)
      Pending p = std::move(it->second);
      pending.erase(it);
      if (!gateway::DecodeReplies(payload, *p.batch, p.indices)) {
        FailOne(p, Status(Code::kInternal, "undecodable reply from node " + node));
        return Fail("undecodable reply");
      }
      p.done();
    }
    ReadHeader();
  }

  static void FailOne(Pending& p, const Status& st) {
    for (uint32_t i : p.indices) {
      p.batch->calls[i].reply = api::Reply();
      p.batch->calls[i].reply.status = st;
    }
    p.done();
  }

  // Answers calls past their deadline (or the default timeout) while the peer is silent.
  void Sweep() {
    if (sweeping || pending.empty() || state == kClosed) return;
    sweeping = true;
    timer.expires_after(std::chrono::milliseconds(50));
    auto self = shared_from_this();
    timer.async_wait([self](error_code) {
      self->sweeping = false;
      if (self->state == kClosed) return;
      const int64_t now = SteadyMillis();
      std::vector<Pending> late;  // failed after the walk: failing runs the caller's code
      for (auto it = self->pending.begin(); it != self->pending.end();) {
        if (now < it->second.deadline_ms) {
          ++it;
          continue;
        }
        late.push_back(std::move(it->second));
        it = self->pending.erase(it);
      }
      for (Pending& p : late) {
        PeerForwarder::counters().timeout.fetch_add(p.indices.size(), std::memory_order_relaxed);
        FailOne(p, p.has_deadline ? Status(Code::kDeadlineExceeded)
                                  : Status(Code::kUnavailable, "node " + self->node +
                                                                   " did not answer in time; "
                                                                   "retry"));
      }
      self->Sweep();
    });
  }

  void Fail(const std::string& why) {
    if (state == kClosed) return;
    if (!pending.empty()) {
      LOG_WARN("msg=\"internal connection failed\" node={} addr={} error=\"{}\" calls={}", node,
               addr, why, pending.size());
    }
    Close(Status(Code::kUnavailable, "node " + node + " unreachable (" + why + "); retry"));
  }

  void Close(const Status& st) {
    state = kClosed;
    error_code ignored;
    timer.cancel();
    resolver.cancel();
    socket.close(ignored);
    writer.Clear();
    waiting.clear();
    auto all = std::move(pending);
    pending.clear();
    for (auto& [id, p] : all) {
      PeerForwarder::counters().unreachable.fetch_add(p.indices.size(),
                                                      std::memory_order_relaxed);
      FailOne(p, st);
    }
  }
};

PeerForwarder::PeerForwarder(std::vector<asio::io_context*> loops, const PeerOptions& options)
    : loops_(std::move(loops)), options_(options), per_loop_(loops_.size()) {}

PeerForwarder::~PeerForwarder() = default;

void PeerForwarder::SetRoutes(std::shared_ptr<const gateway::Routes> routes,
                              std::map<std::string, std::string> addresses) {
  std::lock_guard lock(mu_);
  routes_ = std::move(routes);
  addresses_ = std::move(addresses);
  generation_.fetch_add(1, std::memory_order_release);
}

const gateway::Routes* PeerForwarder::RoutesFor(uint32_t loop) {
  LoopState& s = per_loop_[loop];
  const uint64_t g = generation_.load(std::memory_order_acquire);
  if (g != s.generation) {
    std::lock_guard lock(mu_);
    s.generation = generation_.load(std::memory_order_relaxed);
    s.routes = routes_;
    s.addresses = addresses_;
    // A node gone, or at another address: its connection goes (its calls fail, retryable).
    // Closed after the map is settled: failing a call runs its caller's code, which may
    // forward again (and so add a connection) right away.
    std::vector<std::pair<std::string, std::shared_ptr<Conn>>> gone;
    for (auto it = s.conns.begin(); it != s.conns.end();) {
      auto a = s.addresses.find(it->first);
      if (a == s.addresses.end() || a->second != it->second->addr) {
        gone.emplace_back(it->first, std::move(it->second));
        it = s.conns.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [node, c] : gone) c->Close(Status(Code::kUnavailable, "node " + node + " left; retry"));
  }
  return s.routes.get();
}

void PeerForwarder::Forward(uint32_t origin, const gateway::Routes& routes, int peer,
                            gateway::Batch& batch, std::span<const uint32_t> indices,
                            std::function<void()> done) {
  LoopState& s = per_loop_[origin];
  if (closed_.load(std::memory_order_acquire)) {
    for (uint32_t i : indices) {
      batch.calls[i].reply.status = Status(Code::kUnavailable, "shutting down");
    }
    return done();
  }
  const std::string& node = routes.peers[static_cast<size_t>(peer)];
  auto it = s.conns.find(node);
  if (it == s.conns.end() || it->second->state == Conn::kClosed) {
    auto a = s.addresses.find(node);
    if (a == s.addresses.end()) {
      // The map names a node whose member record has not reached us yet (two watches): the
      // calls were not sent, so they are routed again shortly (Gateway::Resubmit).
      for (uint32_t i : indices) {
        batch.calls[i].moved = true;
        batch.calls[i].reply.status =
            Status(Code::kUnavailable, "node " + node + " has no internal address yet; retry");
      }
      return done();
    }
    auto c = std::make_shared<Conn>(*loops_[origin], node, a->second, options_);
    it = s.conns.insert_or_assign(node, std::move(c)).first;
  }
  it->second->Send(batch, indices, std::move(done));
}

void PeerForwarder::Import(uint32_t origin, const std::string& node, gateway::Batch& batch,
                           std::span<const uint32_t> indices, std::function<void()> done) {
  LoopState& s = per_loop_[origin];
  if (closed_.load(std::memory_order_acquire)) {
    for (uint32_t i : indices) {
      batch.calls[i].reply.status = Status(Code::kUnavailable, "shutting down");
    }
    return done();
  }
  RoutesFor(origin);  // the addresses as of now
  auto it = s.conns.find(node);
  if (it == s.conns.end() || it->second->state == Conn::kClosed) {
    auto a = s.addresses.find(node);
    if (a == s.addresses.end()) {
      for (uint32_t i : indices) {
        batch.calls[i].reply.status = Status(Code::kUnavailable, "no address for node " + node);
      }
      return done();
    }
    it = s.conns.insert_or_assign(node, std::make_shared<Conn>(*loops_[origin], node,
                                                               a->second, options_))
             .first;
  }
  it->second->Send(batch, indices, std::move(done), kImport);
}

void PeerForwarder::CloseAll() {
  closed_.store(true, std::memory_order_release);  // no new connection from now on
  for (size_t l = 0; l < loops_.size(); ++l) {
    asio::post(*loops_[l], [this, l] {
      auto conns = std::move(per_loop_[l].conns);  // failing calls may run code that forwards
      per_loop_[l].conns.clear();
      for (auto& [node, c] : conns) c->Close(Status(Code::kUnavailable, "shutting down"));
    });
  }
}

metrics::Source PeerForwarder::Metrics() const {
  static constexpr const metrics::Def* kDefs[] = {&kForwardedCalls, &kForwardErrors,
                                                  &kServedForwardedCalls};
  return {kDefs, [](metrics::Sink& sink) {
            const Counters& c = counters();
            constexpr auto r = std::memory_order_relaxed;
            sink.Add(kForwardedCalls, "", c.forwarded.load(r));
            sink.Add(kForwardErrors, "reason=\"unreachable\"", c.unreachable.load(r));
            sink.Add(kForwardErrors, "reason=\"timeout\"", c.timeout.load(r));
            sink.Add(kForwardErrors, "reason=\"moved\"", c.moved.load(r));
            sink.Add(kServedForwardedCalls, "", c.served.load(r));
          }};
}

}  // namespace cellar::internal
