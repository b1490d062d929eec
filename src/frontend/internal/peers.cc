#include "frontend/internal/peers.h"

#include <cstring>
#include <deque>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/logging.h"
#include "control/admin_key.h"
#include "frontend/net/listen.h"
#include "frontend/net/stream.h"
#include "frontend/internal/topic_codec.h"
#include "gateway/forward_codec.h"

namespace cellar::internal {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

enum Kind : uint8_t {
  kHello = 1,
  kHelloOk = 2,
  kCalls = 3,
  kReplies = 4,
  kImport = 5,
  // Topics (topic_codec.h), by relay id.
  kSubscribe = 6,
  kUnsubscribe = 7,
  kJoined = 8,
  kGap = 9,
  kItem = 10,
  kReplayed = 11,
  kEnd = 12,
  kStates = 13,
  kStatesOk = 14,
  // Metadata changed at a revision (payload: u8 part, i64 revision): answered once the
  // receiver applied it.
  kMetadata = 15,
  kMetadataOk = 16,
};
// How long a node that changed the metadata waits for the others to apply it, and how long a
// receiver waits for its watch before it re-reads that part itself.
constexpr int64_t kMetadataSyncMs = 2'000;
constexpr int64_t kMetadataWatchWaitMs = 500;
constexpr size_t kHeader = 13;  // u32 length, u8 kind, u64 id
// A node relays each topic once per loop: more relays than this on one connection is a bug.
constexpr size_t kMaxRelaysPerConnection = 100'000;

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
  void Push(std::string frame) {
    bytes_ += frame.size();
    out_.push_back(std::move(frame));
  }
  size_t bytes() const { return bytes_; }  // queued, not yet written
  bool busy() const { return writing_; }
  bool empty() const { return out_.empty(); }
  template <typename Self>
  void Pump(net::Stream& sock, std::shared_ptr<Self> self) {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    sock.AsyncWrite(asio::buffer(out_.front()),
                      [this, self, &sock, epoch = epoch_](error_code ec, size_t) {
                        writing_ = false;
                        if (epoch != epoch_) {  // cleared (closed) while this write was out
                          out_.clear();
                          return;
                        }
                        if (ec) return self->Fail("write: " + ec.message());
                        bytes_ -= out_.front().size();
                        out_.pop_front();
                        Pump(sock, self);
                      });
  }
  // Drops what is queued. A write already out keeps its frame until its handler runs (which
  // then sees the clear, even if the write had completed before it).
  void Clear() {
    ++epoch_;
    if (writing_ && !out_.empty()) {
      std::string in_flight = std::move(out_.front());
      out_.clear();
      out_.push_back(std::move(in_flight));
    } else {
      out_.clear();
    }
    bytes_ = 0;
  }

 private:
  std::deque<std::string> out_;
  size_t bytes_ = 0;
  uint64_t epoch_ = 0;
  bool writing_ = false;
};

// Over TLS, a hello (and its answer) carries HMAC-SHA256(secret, keying material exported from
// this TLS session) in hex: it proves the sender knows the cluster's secret without sending it,
// and cannot be replayed on another connection (each session exports its own material). Empty
// if the material cannot be had (the hello is then refused).
// Each side proves it under its own label, so one side's proof is no use to the other.
constexpr std::string_view kClientProof = "EXPORTER-cellar-internal-hello";
constexpr std::string_view kServerProof = "EXPORTER-cellar-internal-hello-ok";
std::string HelloProof(const std::string& secret, net::Stream& stream, std::string_view label) {
  const std::string ekm = stream.ExportKeyingMaterial(label);
  if (ekm.empty()) return {};
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(ekm.data()), ekm.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

}  // namespace

PeerForwarder::Counters& PeerForwarder::counters() {
  static Counters c;
  return c;
}

// ---------------------------------------------------------------------------------------
// Server side: calls forwarded to this node.

struct PeerServer::Conn : std::enable_shared_from_this<PeerServer::Conn> {
  Conn(PeerServer* s, tcp::socket sock)
      : server(s), socket(std::move(sock)), hello_timer(s->io_), relays(this) {}

  // Other nodes' relays on this connection: subscriptions of this node's topics, whose events
  // go back as frames by relay id.
  struct Relays final : topics::Sink {
    explicit Relays(Conn* c) : conn(c) {}
    Conn* conn;
    std::map<topics::SubId, uint64_t> by_sub;    // subscription -> relay id
    std::map<uint64_t, topics::SubId> by_relay;

    uint64_t RelayOf(topics::SubId id) const {
      auto it = by_sub.find(id);
      return it == by_sub.end() ? 0 : it->second;
    }
    void OnJoined(topics::SubId id, uint64_t latest, uint64_t page) override {
      std::string p;
      EncodeJoined(latest, page, p);
      conn->Send(Frame(kJoined, RelayOf(id), p));
    }
    void OnReady(topics::SubId) override {}
    void OnDiscontinuity(topics::SubId id, uint64_t last, uint64_t next, uint64_t page) override {
      std::string p;
      EncodeGap(last, next, page, p);
      conn->Send(Frame(kGap, RelayOf(id), p));
    }
    void OnItem(topics::SubId id, const topics::MessagePtr& m) override {
      const uint64_t relay = RelayOf(id);
      if (conn->writer.bytes() > conn->server->options_.max_relay_queue_bytes) {
        // The relaying node (or the network to it) fell behind: it resumes from its last item.
        return conn->EndRelay(relay, Status(Code::kResourceExhausted,
                                            "the relay fell behind; resume"));
      }
      std::string p;
      EncodeItem(*m, p);
      conn->Send(Frame(kItem, relay, p));
    }
    void OnReplayed(topics::SubId id) override { conn->Send(Frame(kReplayed, RelayOf(id), {})); }
    void OnEnd(topics::SubId id, const Status& why) override {
      const uint64_t relay = RelayOf(id);
      by_sub.erase(id);
      by_relay.erase(relay);
      std::string p;
      EncodeEnd(why, p);
      conn->Send(Frame(kEnd, relay, p));
    }
  };

  PeerServer* server;
  net::Stream socket;  // TLS when the node runs TLS (see peers.h)
  asio::steady_timer hello_timer;  // a connection that does not say hello in time is closed
  char header[kHeader];
  std::string payload;
  bool hello = false;
  bool closed = false;
  Writer writer;
  Relays relays;

  void ReadHeader() {
    auto self = shared_from_this();
    self->socket.AsyncRead(asio::buffer(header, kHeader), [self](error_code ec, size_t) {
      if (ec || self->closed) return self->Close();
      const Header h = ParseHeader(self->header);
      // Before the hello only a hello fits: nobody unknown makes us hold a large buffer.
      const size_t limit = self->hello ? self->server->options_.max_frame_bytes : 4096;
      if (h.len > limit) {
        LOG_WARN("msg=\"internal frame too large; closing\" bytes={} hello={}", h.len,
                 self->hello);
        return self->Close();
      }
      self->payload.resize(h.len);
      self->socket.AsyncRead(asio::buffer(self->payload), [self, h](error_code ec, size_t) {
                         if (ec || self->closed) return self->Close();
                         self->Handle(h);
                       });
    });
  }

  void Handle(const Header& h) {
    if (!hello) {
      // Over TLS the hello proves the secret without showing it (HelloProof); in plaintext it
      // is the secret itself.
      const std::string expected = socket.is_tls()
                                       ? HelloProof(server->options_.secret, socket, kClientProof)
                                       : server->options_.secret;
      if (h.kind != kHello || expected.empty() || !control::SecretEquals(payload, expected)) {
        LOG_WARN("msg=\"internal connection without the cluster's secret; closing\" peer={}",
                 Peer());
        return Close();
      }
      hello = true;
      hello_timer.cancel();
      // Over TLS the answer proves the secret too (the client may not verify our certificate).
      Send(Frame(kHelloOk, h.id,
                 socket.is_tls() ? HelloProof(server->options_.secret, socket, kServerProof)
                                 : std::string()));
      return ReadHeader();
    }
    if (h.kind == kSubscribe || h.kind == kUnsubscribe || h.kind == kStates) {
      if (!HandleTopics(h)) {
        LOG_WARN("msg=\"undecodable internal topic frame; closing\" peer={} kind={}", Peer(),
                 h.kind);
        return Close();
      }
      return ReadHeader();
    }
    if (h.kind == kMetadata) {
      if (payload.size() != 9 || static_cast<uint8_t>(payload[0]) > 1) {
        LOG_WARN("msg=\"undecodable internal metadata frame; closing\" peer={}", Peer());
        return Close();
      }
      const auto part = static_cast<gateway::MetadataPart>(payload[0]);
      int64_t revision = 0;
      std::memcpy(&revision, payload.data() + 1, 8);
      payload.clear();
      CatchUpWith(part, revision, h.id);
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
      // Keyed calls (data and publishes), and cache-wide ones for one shard of this node.
      if (c.req.shard >= 0 || api::IsCacheWide(c.req.op)) {
        if (!api::IsCacheWide(c.req.op) || c.req.shard < 0 ||
            static_cast<uint32_t>(c.req.shard) >= server->gateway_.num_shards()) {
          c.hold = true;
          c.reply.status = Status(Code::kInvalidArgument, "not a call nodes forward");
        }
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
      if (!self->RunAgainOnceCaught(d, id)) self->Reply(*d, id);
    });
    ReadHeader();  // the next frame may run meanwhile: replies go back by id
  }

  // Another node committed a metadata change at `revision`: answered once this node applied
  // it (its watch brings it within milliseconds; if not within kMetadataWatchWaitMs, or never:
  // a revision the watch skips, this node re-reads that part from the store).
  void CatchUpWith(gateway::MetadataPart part, int64_t revision, uint64_t id) {
    struct Once {
      std::atomic<bool> done{false};
      asio::steady_timer timer;
      explicit Once(asio::io_context& io) : timer(io) {}
    };
    auto once = std::make_shared<Once>(server->io_);
    auto self = shared_from_this();
    auto answer = [self, once, id] {
      if (once->done.exchange(true)) return;
      once->timer.cancel();
      self->Send(Frame(kMetadataOk, id, {}));
    };
    once->timer.expires_after(std::chrono::milliseconds(kMetadataWatchWaitMs));
    once->timer.async_wait([self, once, answer, part](error_code ec) {
      if (ec || once->done.load()) return;
      self->server->gateway_.CatchUpMetadata(
          part, [answer, &io = self->server->io_] { asio::post(io, answer); });
    });
    server->gateway_.WhenMetadataSeen(
        part, revision, [answer, &io = server->io_] { asio::post(io, answer); });
  }

  void Reply(const gateway::DecodedCalls& d, uint64_t id) {
    std::string out;
    gateway::EncodeReplies(d.batch.calls, out);
    Send(Frame(kReplies, id, out));
  }

  // Calls answered NOT_FOUND: their shard did not hold the cache (the only NOT_FOUND a shard
  // gives). The sender knew the cache, so it was committed, and this node's watch had not
  // brought it yet. They run again (the others held) once this node knows it, after
  // re-reading the catalog from the store if the watch has still not brought it; the reply
  // goes then. Once only: a cache still unknown after the read (deleted meanwhile, or the
  // store unreachable) is answered NOT_FOUND. False: nothing to run again.
  bool RunAgainOnceCaught(const std::shared_ptr<gateway::DecodedCalls>& d, uint64_t id) {
    gateway::Gateway& gw = server->gateway_;
    size_t again = 0;
    bool unknown = false;
    for (gateway::Call& c : d->batch.calls) {
      if (!c.hold && c.reply.status.code() == Code::kNotFound) {
        ++again;
        if (!unknown && !gw.KnowsCache(c.req.cache_id)) unknown = true;
        c.reply = api::Reply{};
        c.not_run = false;
      } else {
        c.hold = true;  // ran (or was refused): its reply stands
      }
    }
    if (again == 0) return false;
    PeerForwarder::counters().unknown_cache.fetch_add(again, std::memory_order_relaxed);
    auto run = [self = shared_from_this(), d, id] {
      self->server->gateway_.Submit(self->server->loop_, &d->batch,
                                    [self, d, id] { self->Reply(*d, id); });
    };
    if (!unknown) {
      asio::post(server->io_, std::move(run));  // the watch came meanwhile
    } else {
      gw.CatchUpMetadata(gateway::MetadataPart::kCatalog,
                         [run = std::move(run), &io = server->io_]() mutable {
                           asio::post(io, std::move(run));
                         });
    }
    return true;
  }

  // A relay opens or ends, or a move hands topic states over. False: undecodable.
  bool HandleTopics(const Header& h) {
    topics::Topics* topics = server->topics_;
    if (h.kind == kSubscribe) {
      RelaySubscribe sub;
      if (!DecodeSubscribe(payload, &sub) || h.id == 0 || relays.by_relay.contains(h.id)) {
        return false;
      }
      if (topics == nullptr || relays.by_relay.size() >= kMaxRelaysPerConnection) {
        std::string p;
        EncodeEnd(topics == nullptr
                      ? Status(Code::kUnimplemented, "topics are not served here")
                      : Status(Code::kResourceExhausted, "too many relays on one connection"),
                  p);
        Send(Frame(kEnd, h.id, p));
        return true;
      }
      auto id = topics->SubscribeRelay(server->loop_, &relays, sub.cache_id, sub.topic,
                                       sub.resume_at, sub.page, nullptr);
      if (!id.ok()) {
        std::string p;
        EncodeEnd(id.status(), p);
        Send(Frame(kEnd, h.id, p));
        return true;
      }
      relays.by_sub[*id] = h.id;
      relays.by_relay[h.id] = *id;
      return true;
    }
    if (h.kind == kUnsubscribe) {
      if (!payload.empty()) return false;
      auto it = relays.by_relay.find(h.id);
      if (it != relays.by_relay.end()) {
        topics->Unsubscribe(server->loop_, it->second);
        relays.by_sub.erase(it->second);
        relays.by_relay.erase(it);
      }
      return true;
    }
    // kStates: a move hands over the topics of slots coming here.
    std::vector<topics::TopicState> states;
    if (!DecodeStates(payload, &states, topics)) return false;
    payload.clear();
    if (topics == nullptr) {
      Send(Frame(kStatesOk, h.id, {}));
      return true;
    }
    auto self = shared_from_this();
    topics->ImportStates(server->loop_, std::move(states),
                         [self, id = h.id] { self->Send(Frame(kStatesOk, id, {})); });
    return true;
  }

  void EndRelay(uint64_t relay, const Status& why) {
    auto it = relays.by_relay.find(relay);
    if (it == relays.by_relay.end()) return;
    server->topics_->Unsubscribe(server->loop_, it->second);
    relays.by_sub.erase(it->second);
    relays.by_relay.erase(it);
    std::string p;
    EncodeEnd(why, p);
    Send(Frame(kEnd, relay, p));
  }

  void Send(std::string frame) {
    if (closed) return;
    writer.Push(std::move(frame));
    writer.Pump(socket, shared_from_this());
  }
  void Fail(const std::string&) { Close(); }

  std::string Peer() {
    error_code ec;
    auto ep = socket.socket().remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void Close() {
    if (closed) return;
    closed = true;
    for (auto& [sub, relay] : relays.by_sub) server->topics_->Unsubscribe(server->loop_, sub);
    relays.by_sub.clear();
    relays.by_relay.clear();
    error_code ignored;
    hello_timer.cancel();
    socket.Close();
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
      // With TLS configured the connection must be TLS (a fleet's nodes all run it or none).
      c->socket.Start(options_.tls, [c](bool ok) {
        if (c->closed) return;
        if (!ok) {
          LOG_WARN("msg=\"internal connection without TLS (or a failed handshake); closing\" "
                   "peer={}",
                   c->Peer());
          return c->Close();
        }
        c->ReadHeader();
      });
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
  net::Stream socket;
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
  // Relays to topics this peer owns (topics::Fleet), by relay id (the handle).
  struct Relay {
    topics::Sink* sink;
    uint32_t cache;
    std::string topic;
  };
  std::map<uint64_t, Relay> relays;
  struct Op {  // a topic-state hand-over or a catalog change waiting for its ok
    std::function<void(Status)> done;
    int64_t deadline_ms;
  };
  std::map<uint64_t, Op> ops;
  topics::Topics* topics = nullptr;  // gives relayed messages their wire forms
  bool quiet = false;                // shutting down: relays end without a word to their sinks

  void SendFrame(std::string frame) {
    if (state == kReady) {
      writer.Push(std::move(frame));
      writer.Pump(socket, shared_from_this());
    } else {
      waiting.push_back(std::move(frame));
      if (state == kIdle) Connect();
    }
  }

  void OpenRelay(uint64_t id, topics::Sink* sink, uint32_t cache, const std::string& topic,
                 uint64_t resume_at, uint64_t page) {
    relays[id] = Relay{sink, cache, topic};
    std::string p;
    EncodeSubscribe(RelaySubscribe{cache, resume_at, page, topic}, p);
    SendFrame(Frame(kSubscribe, id, p));
  }

  bool CloseRelay(uint64_t id) {
    if (relays.erase(id) == 0) return false;
    if (state == kReady || state == kConnecting) SendFrame(Frame(kUnsubscribe, id, {}));
    return true;
  }

  void SendStates(std::string payload, std::function<void(Status)> done) {
    SendOp(kStates, std::move(payload), options.default_timeout_ms, std::move(done));
  }
  // A frame answered by an ok of the same id (kStatesOk, kMetadataOk), or failed by Sweep.
  void SendOp(Kind kind, std::string payload, int64_t timeout_ms,
              std::function<void(Status)> done) {
    const uint64_t id = next_id++;
    ops[id] = Op{std::move(done), SteadyMillis() + timeout_ms};
    SendFrame(Frame(kind, id, payload));
    Sweep();
  }

  // The owner's answers on a relay. False: undecodable.
  bool HandleRelay(const Header& h) {
    auto it = relays.find(h.id);
    const bool known = it != relays.end();
    switch (h.kind) {
      case kJoined: {
        uint64_t latest = 0, page = 0;
        if (!DecodeJoined(payload, &latest, &page)) return false;
        if (known) {
          it->second.sink->OnJoined(h.id, latest, page);
          if (relays.contains(h.id)) it->second.sink->OnReady(h.id);
        }
        return true;
      }
      case kGap: {
        uint64_t last = 0, next = 0, page = 0;
        if (!DecodeGap(payload, &last, &next, &page)) return false;
        if (known) it->second.sink->OnDiscontinuity(h.id, last, next, page);
        return true;
      }
      case kItem: {
        auto m = std::make_shared<topics::TopicMessage>();
        if (!DecodeItem(payload, m.get())) return false;
        if (!known) return true;
        m->cache_id = it->second.cache;
        m->topic = it->second.topic;
        if (topics != nullptr) topics->Encode(*m);
        it->second.sink->OnItem(h.id, std::move(m));
        return true;
      }
      case kReplayed:
        if (!payload.empty()) return false;
        if (known) it->second.sink->OnReplayed(h.id);
        return true;
      case kEnd: {
        Status why;
        if (!DecodeEnd(payload, &why)) return false;
        if (known) {
          topics::Sink* sink = it->second.sink;
          relays.erase(it);
          sink->OnEnd(h.id, why);
        }
        return true;
      }
      default:
        return false;
    }
  }

  void Connect() {
    state = kConnecting;
    const size_t colon = addr.rfind(':');
    auto self = shared_from_this();
    resolver.async_resolve(
        addr.substr(0, colon), colon == std::string::npos ? "" : addr.substr(colon + 1),
        [self](error_code ec, tcp::resolver::results_type eps) {
          if (self->state == kClosed) return;
          if (ec) return self->Fail("resolve: " + ec.message());
          asio::async_connect(self->socket.socket(), eps, [self](error_code ec, const tcp::endpoint&) {
            if (self->state == kClosed) return;
            if (ec) return self->Fail("connect: " + ec.message());
            self->socket.socket().set_option(tcp::no_delay(true), ec);
            if (self->options.client_tls == nullptr) return self->Hello();
            const size_t colon = self->addr.rfind(':');
            self->socket.StartClient(self->options.client_tls, self->addr.substr(0, colon),
                                     [self](bool ok) {
                                       if (self->state == kClosed) return;
                                       if (!ok) return self->Fail("TLS handshake failed");
                                       self->Hello();
                                     });
          });
        });
  }

  // The first frame: the secret, or over TLS a proof of it bound to this session.
  void Hello() {
    writer.Push(Frame(kHello, 0,
                      socket.is_tls() ? HelloProof(options.secret, socket, kClientProof)
                                      : options.secret));
    writer.Pump(socket, shared_from_this());
    ReadHeader();
  }

  void Send(gateway::Batch& batch, std::span<const uint32_t> indices,
            std::function<void()> done, Kind kind = kCalls, int32_t shard_base = 0) {
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
    gateway::EncodeCalls(batch, indices, now, body, shard_base);
    const uint64_t id = next_id++;
    std::string frame = Frame(kind, id, body);
    pending.emplace(id, std::move(p));
    PeerForwarder::counters().forwarded.fetch_add(indices.size(), std::memory_order_relaxed);
    SendFrame(std::move(frame));
    Sweep();
  }

  void ReadHeader() {
    auto self = shared_from_this();
    socket.AsyncRead(asio::buffer(header, kHeader), [self](error_code ec, size_t) {
      if (self->state == kClosed) return;
      if (ec) return self->Fail("read: " + ec.message());
      const Header h = ParseHeader(self->header);
      if (h.len > self->options.max_frame_bytes) return self->Fail("reply frame too large");
      self->payload.resize(h.len);
      self->socket.AsyncRead(asio::buffer(self->payload), [self, h](error_code ec, size_t) {
                         if (self->state == kClosed) return;
                         if (ec) return self->Fail("read: " + ec.message());
                         self->Handle(h);
                       });
    });
  }

  void Handle(const Header& h) {
    if (h.kind == kHelloOk && state == kConnecting) {
      // Over TLS the peer proves it knows the cluster's secret before anything is sent to it.
      if (socket.is_tls()) {
        const std::string expected = HelloProof(options.secret, socket, kServerProof);
        if (expected.empty() || !control::SecretEquals(payload, expected)) {
          return Fail("the peer did not prove the cluster's secret");
        }
      }
      state = kReady;
      while (!waiting.empty()) {
        writer.Push(std::move(waiting.front()));
        waiting.pop_front();
      }
      writer.Pump(socket, shared_from_this());
      return ReadHeader();
    }
    if (state != kReady) return Fail("unexpected frame");
    if (h.kind >= kJoined && h.kind <= kEnd) {
      if (!HandleRelay(h)) return Fail("undecodable relay frame");
      if (state != kClosed) ReadHeader();
      return;
    }
    if (h.kind == kStatesOk || h.kind == kMetadataOk) {
      auto op = ops.find(h.id);
      if (op != ops.end()) {
        auto done = std::move(op->second.done);
        ops.erase(op);
        done(Status::Ok());
      }
      if (state != kClosed) ReadHeader();
      return;
    }
    if (h.kind != kReplies) return Fail("unexpected frame");
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
    if (sweeping || (pending.empty() && ops.empty()) || state == kClosed) return;
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
      std::vector<std::function<void(Status)>> late_ops;
      for (auto it = self->ops.begin(); it != self->ops.end();) {
        if (now < it->second.deadline_ms) {
          ++it;
          continue;
        }
        late_ops.push_back(std::move(it->second.done));
        it = self->ops.erase(it);
      }
      for (auto& done : late_ops) {
        done(Status(Code::kDeadlineExceeded, "node " + self->node + " did not answer in time"));
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
    socket.Close();
    writer.Clear();
    waiting.clear();
    auto all = std::move(pending);
    pending.clear();
    auto ended = std::move(relays);
    relays.clear();
    auto all_ops = std::move(ops);
    ops.clear();
    for (auto& [id, p] : all) {
      PeerForwarder::counters().unreachable.fetch_add(p.indices.size(),
                                                      std::memory_order_relaxed);
      FailOne(p, st);
    }
    for (auto& [id, op] : all_ops) op.done(st);
    if (!quiet) {
      for (auto& [id, r] : ended) r.sink->OnEnd(id, st);
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
    // Posted: closing runs callers' code (failed calls, ended relays), which must not run
    // inside RoutesFor (its caller may be in the middle of something).
    if (!gone.empty()) {
      asio::post(*loops_[loop], [gone = std::move(gone)] {
        for (auto& [node, c] : gone) {
          c->Close(Status(Code::kUnavailable, "node " + node + " left; retry"));
        }
      });
    }
  }
  return s.routes.get();
}

void PeerForwarder::Forward(uint32_t origin, const gateway::Routes& routes, int peer,
                            gateway::Batch& batch, std::span<const uint32_t> indices,
                            std::function<void()> done) {
  if (closed_.load(std::memory_order_acquire)) {
    for (uint32_t i : indices) {
      batch.calls[i].reply.status = Status(Code::kUnavailable, "shutting down");
    }
    return done();
  }
  const std::string& node = routes.peers[static_cast<size_t>(peer)];
  std::shared_ptr<Conn> c = ConnTo(origin, node);
  if (c == nullptr) {
    // The map names a node whose member record has not reached us yet (two watches): the
    // calls were not sent, so they are routed again shortly (Gateway::Resubmit).
    for (uint32_t i : indices) {
      batch.calls[i].moved = true;
      batch.calls[i].reply.status =
          Status(Code::kUnavailable, "node " + node + " has no internal address yet; retry");
    }
    return done();
  }
  // Cache-wide calls name a fleet shard: the peer's own is what is left past its base.
  const int32_t base = static_cast<int32_t>(loops_.size() + routes.ShardBase(static_cast<size_t>(peer)));
  c->Send(batch, indices, std::move(done), kCalls, base);
}

// This loop's connection to `node` (made if there is none, or it closed); null if its address
// is not known.
std::shared_ptr<PeerForwarder::Conn> PeerForwarder::ConnTo(uint32_t loop, const std::string& node) {
  LoopState& s = per_loop_[loop];
  auto it = s.conns.find(node);
  if (it != s.conns.end() && it->second->state != Conn::kClosed) return it->second;
  auto a = s.addresses.find(node);
  if (a == s.addresses.end()) return nullptr;
  auto c = std::make_shared<Conn>(*loops_[loop], node, a->second, options_);
  c->topics = topics_;
  s.conns.insert_or_assign(node, c);
  return c;
}

topics::Fleet::Owner PeerForwarder::OwnerOf(uint32_t loop, uint32_t cache_id,
                                            std::string_view topic) {
  const gateway::Routes* routes = RoutesFor(loop);
  if (routes == nullptr) return Owner::kHere;
  const int owner = routes->Owner(routing::SlotOf(KeyHash(cache_id, topic)));
  if (owner == gateway::Routes::kLocal) return Owner::kHere;
  return owner == gateway::Routes::kNoMap ? Owner::kUnknown : Owner::kElsewhere;
}

uint64_t PeerForwarder::OpenRelay(uint32_t loop, topics::Sink* sink, uint32_t cache_id,
                                  const std::string& topic, uint64_t resume_at, uint64_t page) {
  LoopState& s = per_loop_[loop];
  const uint64_t id = s.next_relay++;
  const gateway::Routes* routes = RoutesFor(loop);
  std::shared_ptr<Conn> c;
  if (routes != nullptr && !closed_.load(std::memory_order_acquire)) {
    const int owner = routes->Owner(routing::SlotOf(KeyHash(cache_id, topic)));
    if (owner >= 0) c = ConnTo(loop, routes->peers[static_cast<size_t>(owner)]);
  }
  if (c == nullptr) {
    // Nowhere to send it yet: it ends (after this call, as Fleet promises).
    s.failing[id] = sink;
    asio::post(*loops_[loop], [this, loop, id] {
      LoopState& st = per_loop_[loop];
      auto it = st.failing.find(id);
      if (it == st.failing.end()) return;
      topics::Sink* sk = it->second;
      st.failing.erase(it);
      sk->OnEnd(id, Status(Code::kUnavailable, "the topic's owner is not known here yet"));
    });
    return id;
  }
  c->OpenRelay(id, sink, cache_id, topic, resume_at, page);
  return id;
}

void PeerForwarder::CloseRelay(uint32_t loop, uint64_t handle) {
  LoopState& s = per_loop_[loop];
  if (s.failing.erase(handle) != 0) return;
  for (auto& [node, c] : s.conns) {
    if (c->CloseRelay(handle)) return;
  }
}

void PeerForwarder::SendTopicStates(uint32_t origin, const std::string& node,
                                    std::string payload, std::function<void(Status)> done) {
  if (closed_.load(std::memory_order_acquire)) {
    return done(Status(Code::kUnavailable, "shutting down"));
  }
  RoutesFor(origin);  // the addresses as of now
  std::shared_ptr<Conn> c = ConnTo(origin, node);
  if (c == nullptr) return done(Status(Code::kUnavailable, "no address for node " + node));
  c->SendStates(std::move(payload), std::move(done));
}

void PeerForwarder::SyncMetadata(uint32_t origin, gateway::MetadataPart part, int64_t revision,
                                 std::function<void()> done) {
  if (closed_.load(std::memory_order_acquire)) return done();
  RoutesFor(origin);  // the members as of now
  std::vector<std::shared_ptr<Conn>> conns;
  for (const auto& [node, addr] : per_loop_[origin].addresses) {
    if (auto c = ConnTo(origin, node)) conns.push_back(std::move(c));
  }
  if (conns.empty()) return done();
  std::string payload(9, '\0');
  payload[0] = static_cast<char>(part);
  std::memcpy(payload.data() + 1, &revision, 8);
  auto left = std::make_shared<size_t>(conns.size());
  auto all = std::make_shared<std::function<void()>>(std::move(done));
  for (auto& c : conns) {
    // Each answer (or failure) comes on this loop, the connection's.
    c->SendOp(kMetadata, payload, kMetadataSyncMs, [left, all, node = c->node](Status st) {
      if (st.ok()) {
        counters().metadata_confirmed.fetch_add(1, std::memory_order_relaxed);
      } else {
        counters().metadata_unconfirmed.fetch_add(1, std::memory_order_relaxed);
        LOG_WARN("msg=\"a node did not confirm a metadata change; it catches up by its watch\" "
                 "node={} error=\"{}\"",
                 node, st.message());
      }
      if (--*left == 0) (*all)();
    });
  }
}

void PeerForwarder::Import(uint32_t origin, const std::string& node, gateway::Batch& batch,
                           std::span<const uint32_t> indices, std::function<void()> done) {
  if (closed_.load(std::memory_order_acquire)) {
    for (uint32_t i : indices) {
      batch.calls[i].reply.status = Status(Code::kUnavailable, "shutting down");
    }
    return done();
  }
  RoutesFor(origin);  // the addresses as of now
  std::shared_ptr<Conn> c = ConnTo(origin, node);
  if (c == nullptr) {
    for (uint32_t i : indices) {
      batch.calls[i].reply.status = Status(Code::kUnavailable, "no address for node " + node);
    }
    return done();
  }
  c->Send(batch, indices, std::move(done), kImport);
}

void PeerForwarder::CloseAll() {
  closed_.store(true, std::memory_order_release);  // no new connection from now on
  for (size_t l = 0; l < loops_.size(); ++l) {
    asio::post(*loops_[l], [this, l] {
      auto conns = std::move(per_loop_[l].conns);  // failing calls may run code that forwards
      per_loop_[l].conns.clear();
      per_loop_[l].failing.clear();
      for (auto& [node, c] : conns) {
        c->quiet = true;  // the topics stopped first; their relays' sinks may be gone
        c->Close(Status(Code::kUnavailable, "shutting down"));
      }
    });
  }
}

metrics::Source PeerForwarder::Metrics() const {
  static constexpr const metrics::Def* kDefs[] = {&kForwardedCalls, &kForwardErrors,
                                                  &kServedForwardedCalls,
                                                  &kForwardedUnknownCache, &kMetadataSyncs};
  return {kDefs, [](metrics::Sink& sink) {
            const Counters& c = counters();
            constexpr auto r = std::memory_order_relaxed;
            sink.Add(kForwardedCalls, "", c.forwarded.load(r));
            sink.Add(kForwardErrors, "reason=\"unreachable\"", c.unreachable.load(r));
            sink.Add(kForwardErrors, "reason=\"timeout\"", c.timeout.load(r));
            sink.Add(kForwardErrors, "reason=\"moved\"", c.moved.load(r));
            sink.Add(kServedForwardedCalls, "", c.served.load(r));
            sink.Add(kForwardedUnknownCache, "", c.unknown_cache.load(r));
            sink.Add(kMetadataSyncs, "result=\"confirmed\"", c.metadata_confirmed.load(r));
            sink.Add(kMetadataSyncs, "result=\"unconfirmed\"", c.metadata_unconfirmed.load(r));
          }};
}

}  // namespace cellar::internal
