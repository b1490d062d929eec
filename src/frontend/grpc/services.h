// The gRPC services: a table from method path to handler. Data-plane methods (cache_client.Scs)
// turn one request message into gateway calls and, when the calls are back, encode the
// response messages; control-plane methods (control_client.ScsControl) and Ping answer on
// their own. Wire facts (field numbers, ECacheResult, oneofs) follow PROTOCOL.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "auth/permissions.h"
#include "auth/signing_keys.h"
#include "common/arena.h"
#include "common/status.h"
#include "frontend/grpc/errors.h"
#include "frontend/grpc/framing.h"
#include "frontend/grpc/momento_local.h"
#include "frontend/grpc/web.h"
#include "gateway/gateway.h"
#include "gateway/pipeline.h"
#include "topics/topics.h"

namespace cellar::grpc {

struct ServiceContext {
  gateway::Gateway* gateway = nullptr;
  auth::SigningKeyStore* keys = nullptr;  // token minting (auth.Auth, token.Token)
  std::string endpoint;                   // the base endpoint minted keys name
  uint32_t max_disposable_seconds = 3600;
  uint64_t max_item_bytes = 0;     // largest value accepted (item_size_limit_exceeded)
  uint64_t max_request_bytes = 0;  // largest request message (request_size_limit_exceeded)
  // Request bodies being received, all connections together (RESOURCE_EXHAUSTED past it).
  uint64_t max_buffered_request_bytes = 256ull << 20;
  topics::Topics* topics = nullptr;  // pub/sub (cache_client.pubsub.Pubsub)
  // Messages' gRPC frames: topics->RegisterEncoding(EncodeTopicItem) (topic_frames.h).
  topics::EncodingId topic_encoding = 0;
  // --momento-local: calls honour momento-local's fault-injection metadata (momento_local.h).
  bool momento_local = false;
  // Topic messages as JSON (web.h EncodeTopicJson): the long poll's, SSE's and WebSocket's.
  topics::EncodingId topic_json_encoding = 0;
  // Cross-origin browsers allowed (--cors-origins); none beyond same-origin by default.
  CorsPolicy cors;
  // --demo: GET /demo and POST /demo/token (demo.h).
  bool demo = false;
};

struct Method;

// One gRPC call (an HTTP/2 stream): its request headers and body, then its reply.
struct Stream {
  // A server-streaming call (Pubsub/Subscribe) that stays open: frames queued for nghttp2,
  // each a shared message's gRPC encoding or a small frame of its own (heartbeat,
  // discontinuity). Bounded by topics::Options::subscriber_queue_bytes.
  struct Chunk {
    topics::MessagePtr message;  // a message, `wire` its gRPC frame (topic_frames.h), or
    std::string own;
    std::string_view wire;
    std::string_view bytes() const { return message ? wire : std::string_view(own); }
  };
  // A FIFO of chunks that keeps its storage while frames flow (a deque frees and allocates a
  // block every few messages) and gives it back when it drains with much held.
  class ChunkQueue {
   public:
    bool empty() const { return head_ == v_.size(); }
    size_t size() const { return v_.size() - head_; }
    Chunk& front() { return v_[head_]; }
    Chunk& back() { return v_.back(); }
    void push_back(Chunk c) {
      if (head_ > 0 && head_ >= v_.size() / 2 && v_.size() == v_.capacity()) {
        v_.erase(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
      }
      v_.push_back(std::move(c));
    }
    void pop_front() {
      v_[head_++] = Chunk();
      if (head_ == v_.size()) clear();
    }
    void pop_back() {
      v_.pop_back();
      if (head_ == v_.size()) clear();
    }
    void clear() {
      v_.clear();
      head_ = 0;
      if (v_.capacity() > 64) std::vector<Chunk>().swap(v_);
    }
    void release() {
      std::vector<Chunk>().swap(v_);
      head_ = 0;
    }

   private:
    std::vector<Chunk> v_;
    size_t head_ = 0;
  };

  // What a topic delivery reads and writes, first and together (a fan-out touches every
  // subscriber's stream per message: fewer cache lines, fewer misses).
  int32_t id = 0;
  WebKind web = WebKind::kNone;  // its web wire form (web.h); kNone: gRPC over HTTP/2
  bool closed = false;           // nghttp2 closed the stream (done or reset by the peer)
  bool streaming = false;        // response headers sent; frames flow from `queue`
  bool deferred = false;         // nghttp2 is waiting for a frame (resume it on the next)
  bool ending = false;           // once `queue` drains, send the trailers with `status`
  bool replaying = false;        // between OnReady and OnReplayed
  topics::SubId sub_id = 0;      // the subscription this stream carries (0: none)
  ChunkQueue queue;
  size_t queue_bytes = 0;
  size_t head_off = 0;           // bytes of queue.front() already given to nghttp2
  size_t replay_credit = 0;      // queued replay bytes not yet sent: exempt from the bound
  uint64_t fault_messages_left = 0;  // --momento-local: see fault_stream_error below

  std::string path, cache, authorization;
  bool post = false, grpc_content_type = false, compressed_encoding = false;
  bool oversized_header = false;  // a value over 16 KiB, or the list over 64 KiB
  uint32_t header_bytes = 0;       // the header list's size as HTTP/2 counts it (RFC 9113 6.5.2)
  int64_t deadline_ms = 0;  // steady-clock ms; 0: none
  std::string body;         // the request's DATA, framed
  bool ignore_body = false;  // already answered; further DATA is dropped
  bool answered = false;     // a reply was given to nghttp2

  const Method* method = nullptr;
  uint32_t tenant = 1;  // the caller's tenant (control::kDefaultTenant until tokens)
  std::string publisher_id;  // the caller's token id (Pubsub/Publish items carry it)
  // The caller's permissions, during prepare (a prepare that charges a limit checks them
  // first, so a refused call spends nothing); null for the super-user.
  const auth::Permissions* perms = nullptr;
  uint32_t cache_id = 0;
  // The cache's limits, admission buckets and usage (null until the cache is resolved).
  std::shared_ptr<gateway::CacheState> cache_state;
  std::unique_ptr<google::protobuf::MessageLite> request;
  uint32_t first_call = 0, num_calls = 0;  // into the round's batch

  // Arrays the calls borrow beyond the decoded request (api::Request::args, scores, numbers),
  // and, for two-round methods, what the first round's replies left for the second.
  ScratchArena scratch;
  std::vector<std::string> owned;  // bytes kept from the first round (two-round methods)
  uint8_t phase = 0;               // 0: first round; 1: second round of a two-round method

  // An HTTP/2 request for the web front-end (a browser on the API port over TLS: grpc-web,
  // the HTTP API, SSE, the long poll), told by OnHeader and routed as HTTP/1.1 requests are
  // once complete, with these of its headers.
  bool web_h2 = false;
  std::string authority;  // :authority, for the same-origin check
  std::vector<std::pair<std::string, std::string>> web_headers;  // :method, origin, ...
  std::string web_cors;            // the CORS response headers its answer carries
  std::shared_ptr<void> web_timer;  // a long poll's timer (destroying it cancels it)

  std::string out;   // framed response messages
  size_t out_off = 0;
  WireStatus status;  // sent as trailers (trailers-only if there is no message)


  // --momento-local only: the call's fault-injection metadata (null: none), and a
  // subscription's injected end (after fault_messages_left more messages, above).
  std::unique_ptr<local::FaultHeaders> faults;
  std::optional<WireStatus> fault_stream_error;

  // Ready for another call, keeping small buffers and the decoded request object (its
  // strings' capacity is reused when the next call is of the same method).
  void Reset();
};

// Answers a control call later, on the stream's loop.
using Respond = std::function<void()>;

// kAuth: the caller's credential travels in the request body (Momento's auth.Auth and
// token.Token send no authorization header); otherwise like kControl.
// kSubscribe: a server-streaming subscription (the connection serves it with topics::Topics).
enum class MethodKind : uint8_t { kData, kControl, kAuth, kSubscribe };

struct Method {
  std::string_view path;
  MethodKind kind;
  // What a token must allow: on every key of a data call's calls; kControl needs super-user.
  // Ping (kRead, no cache) needs only a valid credential.
  auth::Access access;
  // kData: decode the message, append the calls (keys and values borrowed from
  // stream.request). A non-ok Status is the call's answer; no calls are run then.
  Status (*prepare)(const ServiceContext&, Stream&, std::string_view message,
                    std::vector<gateway::Call>& calls, int64_t now_ms) = nullptr;
  // kData: encode the response from the calls [first_call, first_call + num_calls).
  void (*finish)(const ServiceContext&, Stream&, const gateway::Call* calls) = nullptr;
  // kControl: do the work, fill stream.out / stream.status, then call respond() on `origin`.
  void (*control)(const ServiceContext&, uint32_t origin, Stream&, std::string_view message,
                  Respond respond) = nullptr;
  // Two-round kData methods (SortedSetUnionStore reads its sources, then writes the result):
  // after the first round, `followup` reads its calls' replies, keeps what the second round
  // needs in the stream (owned, scratch) and returns true; the connection then runs
  // `prepare2` in a later round (stream.phase == 1), and `finish` sees that round's calls.
  // Returning false answers with `finish` on the first round's calls.
  bool (*followup)(const ServiceContext&, Stream&, const gateway::Call* calls) = nullptr;
  Status (*prepare2)(const ServiceContext&, Stream&, std::vector<gateway::Call>& calls,
                     int64_t now_ms) = nullptr;
  // Pubsub methods name their cache in the body, not the `cache` header: decode the message
  // into stream.request and set stream.cache before the cache is resolved (prepare then
  // reads stream.request). kSubscribe methods have only this.
  Status (*decode)(Stream&, std::string_view message) = nullptr;
};

// Collection methods, one file per type (collection_util.h), and leaderboard methods
// (leaderboard_services.cc), served beside the scalar ones.
std::span<const Method> DictionaryMethods();
std::span<const Method> SetMethods();
std::span<const Method> ListMethods();
std::span<const Method> SortedSetMethods();
std::span<const Method> LeaderboardMethods();
std::span<const Method> PubsubMethods();  // pubsub_services.cc

// Pubsub/Subscribe's request as decoded by its Method::decode.
struct SubscribeArgs {
  std::string_view topic;
  uint64_t resume_at = 0, page = 0;
};
SubscribeArgs SubscribeRequestOf(const Stream& s);

// nullptr for a path this server does not serve (UNIMPLEMENTED).
const Method* FindMethod(std::string_view path);
// Every method served (for tests and fuzzing).
std::span<const Method> AllMethods();

// The token services (auth_services.cc), one entry each.
void GenerateApiToken(const ServiceContext&, uint32_t, Stream&, std::string_view, Respond);
void RefreshApiToken(const ServiceContext&, uint32_t, Stream&, std::string_view, Respond);
void GenerateDisposableToken(const ServiceContext&, uint32_t, Stream&, std::string_view, Respond);

// Appends one framed message.
void AppendMessage(std::string& out, const google::protobuf::MessageLite& m);

}  // namespace cellar::grpc
