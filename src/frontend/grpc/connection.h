// Connection: one HTTP/2 client connection carrying gRPC calls, framed by nghttp2 on the
// connection's own event loop (no threads of nghttp2's or gRPC's).
//
// A read feeds nghttp2; every stream whose request ended in that read is handed to the
// services in one round: data calls of all those streams go to the gateway in one batch, so
// a client with many streams in flight costs one message per remote shard per round, as RESP
// pipelining does. Replies are queued on their streams and written when nghttp2 (and the
// peer's flow-control window) allows.
//
// Invariant: a Stream's request message and body stay untouched while its calls are in the
// gateway (the calls borrow keys and values from them); a stream the peer resets meanwhile is
// only marked closed and freed when its round returns.
//
// Thread: owned by the loop thread of its GrpcServer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "frontend/grpc/framing.h"
#include "frontend/grpc/services.h"
#include "frontend/net/conn_gate.h"
#include "frontend/net/http1.h"
#include "frontend/net/stream.h"
#include "gateway/gateway.h"
#include "gateway/reply_memory.h"
#include "gateway/scheduler.h"
#include "gateway/pipeline.h"

struct nghttp2_session;

namespace cellar::grpc {

class GrpcServer;

class Connection : public std::enable_shared_from_this<Connection>,
                   public topics::Sink,
                   private gateway::RoundSource {
 public:
  static constexpr size_t kReadBytes = 64 * 1024;     // the most one plaintext read takes
  static constexpr size_t kTlsReadBytes = 16 * 1024;  // a TLS record's plaintext

  Connection(GrpcServer* owner, boost::asio::ip::tcp::socket socket, uint64_t id,
             net::ConnectionGate::Slot slot = {});
  ~Connection();

  void Start();
  // GOAWAY: no new streams; the connection closes once the streams in flight are answered.
  void Shutdown();
  // Closes the socket now.
  void ForceClose() { Close(); }
  // Called by the server's sweep: closes a connection that has made no authenticated call
  // within the pre-auth timeout (TLS handshake and preface included), and sends GOAWAY to one
  // that has been quiet (nothing read, no stream open, no subscription) for the idle timeout.
  void CloseIfTimedOut(uint64_t epoch, int64_t now_ms);

  // Called by the services when a stream's reply (messages in stream.out, final status) is
  // ready. Safe on a stream the peer already closed (the reply is dropped).
  void Respond(Stream& stream);

  // topics::Sink: a Pubsub/Subscribe stream's subscription (on this connection's loop).
  void OnReady(topics::SubId id) override;
  void OnDiscontinuity(topics::SubId id, uint64_t last_seq, uint64_t new_seq,
                       uint64_t new_page) override;
  void OnItem(topics::SubId id, const topics::MessagePtr& message) override;
  void OnItemTagged(topics::SubId id, void* tag, const topics::MessagePtr& message) override;
  void Prefetch(void* tag) const override;
  void OnReplayed(topics::SubId id) override;
  void OnHeartbeat(topics::SubId id) override;
  void OnEnd(topics::SubId id, const Status& why) override;

 private:
  friend struct Callbacks;
  static constexpr size_t kWriteChunk = 256 * 1024;          // bytes gathered per write
  static constexpr size_t kPausedOutput = 8 * 1024 * 1024;   // run no new calls above this
  static constexpr size_t kMaxBufferedBodies = 64 * 1024 * 1024;
  // Before any call authenticated: the token services' small bodies only.
  static constexpr size_t kMaxUnauthenticatedBodies = 64 * 1024;

  void Read();
  // `data`: what was read (in_ over TLS, the loop's buffer in plaintext), used before return.
  void OnRead(const char* data, size_t n);
  // Plaintext: the socket is readable; read it into the loop's buffer.
  void ReadReady();
  void Flush();
  // after_answer: the last answer is written; the peer gets it before the close (net/stream.h).
  void Close(bool after_answer = false);
  void MaybeFinish();
  // Calls are ready, or a round ended: the next round runs when the pipeline's scheduler turn
  // says (gateway/pipeline.h).
  void Continue();
  // gateway::RoundSource.
  size_t RunTurn(size_t limit) override;
  void RefuseTurn() override;
  size_t QueuedTurnWanted() override;
  void AfterTurn() override;
  std::shared_ptr<void> Hold() override { return shared_from_this(); }
  // Prepares at most `limit` ready calls (the rest wait for the next round) and submits them
  // through the pipeline.
  void StartCalls(size_t limit = SIZE_MAX);
  // The round's replies are in: finish each stream's answer.
  void Answer();

  // ---- HTTP/1.1: the web front-end (web.h; web_connection.cc) -------------------------------
  // A connection whose first bytes are not the HTTP/2 preface speaks HTTP/1.1: one request
  // at a time (parsed only once the one before is answered), each turned into a Stream that
  // runs like a gRPC call, answered in its web form (RespondWeb, DrainWeb). A WebSocket
  // upgrade turns the rest of the connection into frames (OnWebSocketData).
  static constexpr size_t kMaxHttp1In = 1 << 20;  // unparsed bytes held before reads pause
  static constexpr size_t kHttp1IdleRead = 2048;   // read size between requests
  static constexpr size_t kMaxHttp1Out = 1 << 20;  // answers unwritten before parsing pauses
  static constexpr uint32_t kMaxWsPublishing = 64;  // a WebSocket's publishes in flight
  void ReadHttp1(const char* data, size_t n);
  void ParseHttp1();
  void PostParseHttp1();
  // The request's head is in (its body may not be): refuses a stranger's large body unread.
  bool OnHttp1Head();
  // What this HTTP/1.1 connection holds of requests still arriving (the body being parsed; on
  // a WebSocket, unparsed frames and a fragmented message) counts toward the process's request
  // bytes being received (ServiceContext::max_buffered_request_bytes), as a gRPC stream's body
  // does: one connection's is bounded by its parser, many connections' together here. Sets the
  // count to `now`; false when that is over the bound (nothing counted then).
  bool CountHttp1Partial(size_t now);
  void UncountHttp1Partial() { (void)CountHttp1Partial(0); }
  void OnHttp1Request();
  // Either transport's request, once complete: CORS, then the route (web_target_: the HTTP/2
  // stream it came on; null on HTTP/1.1).
  void RouteWeb(net::Http1Request& req);
  // HTTP/2: a complete web request's stream (OnFrameRecv), routed after nghttp2's read.
  void RouteH2Web(const std::shared_ptr<Stream>& sp);
  // An HTTP/2 web request's token, as its route will read it (header, or ?token=).
  static std::string WebTokenOf(const Stream& s);
  // HTTP/2 answers of web streams: a whole response.
  void H2Reply(Stream& s, int status, std::string_view content_type, std::string_view body,
               std::string_view extra_headers);
  // The answer's HEADERS; `body`: nghttp2 pulls a body (`out`, or the queue once streaming).
  void H2Headers(Stream& s, int status, std::string_view content_type,
                 std::string_view extra_headers, bool body);
  // A web stream's queued piece as it goes on HTTP/2 (base64, SSE framing) and its last one.
  Stream::Chunk H2Piece(const Stream& s, Stream::Chunk chunk) const;
  void FinishLongPoll(Stream& s);
  void RouteCache(net::Http1Request& req, std::string_view cache, const std::string& token,
                  const std::vector<std::pair<std::string, std::string>>& query);
  void RouteTopic(net::Http1Request& req, std::string_view cache, std::string_view topic,
                  std::string_view tail, const std::string& token,
                  const std::vector<std::pair<std::string, std::string>>& query);
  void RouteGrpcWeb(net::Http1Request& req, WebKind kind);
  void RouteDemo(net::Http1Request& req, const std::vector<std::pair<std::string, std::string>>& query);
  // A web request as a call: runs like a gRPC stream of `path` with this framed body.
  std::shared_ptr<Stream> StartWebCall(WebKind kind, std::string_view path, std::string cache,
                                       std::string token, std::string framed,
                                       int64_t deadline_ms = 0);
  void RespondWeb(Stream& s);
  void WebSubscribed(Stream& s);
  Stream::Chunk WebHeartbeat(const Stream& s) const;
  Stream::Chunk WebDiscontinuity(const Stream& s, uint64_t last, uint64_t next,
                                 uint64_t page) const;
  void FlushHttp1();
  void DrainWeb(Stream& s);
  // One item (a message's encoding `b`, or a frame of its own) in `s`'s wire form, appended to
  // h1_out_ (DrainWeb's step, and Push's when WebItemNow).
  void AppendWebItem(const Stream& s, const topics::TopicMessage* message, std::string_view b);
  bool WebItemNow(const Stream& s) const;
  // The stream's answer is all queued: forget it and go on with the next request.
  void EndWeb(Stream& s);
  // A whole response (Content-Length), with the CORS headers of the request being answered.
  void WebReply(int status, std::string_view content_type, std::string_view body,
                std::string_view extra_headers = {});
  void WebRefuse(WebError e, std::string_view detail = {}, std::string_view extra = {});
  void WebStatusReply(const WireStatus& st);
  // The CORS headers an answer to `req` carries: none for same-origin or an origin not
  // allowed (RouteWeb refuses those; a refusal before routing answers without them).
  std::string CorsGrantFor(const net::Http1Request& req) const;
  // The same from a request's Origin (null: none) and Host.
  std::string CorsGrantFor(const std::string* origin, std::string_view host) const;
  // The request's Origin when it names another origin than this server's (null: none, or
  // the same one).
  const std::string* CrossOrigin(const net::Http1Request& req) const;
  const std::string* CrossOrigin(const std::string* origin, std::string_view host) const;
  void AppendChunk(std::string_view piece);
  void OnWebSocketData();
  void WebSocketMessage(std::string_view payload, bool binary);
  void CloseWebSocket(uint16_t code, std::string_view reason);
  void CheckAuthOnHeaders(Stream& s);

  // nghttp2 callbacks (see connection.cc).
  int OnBeginHeaders(int32_t stream_id);
  int OnHeader(int32_t stream_id, std::string_view name, std::string_view value);
  int OnDataChunk(int32_t stream_id, const uint8_t* data, size_t len);
  int OnFrameRecv(int32_t stream_id, bool end_stream, bool headers);
  // --momento-local: gives a call the fault its metadata asks for. True if the call was
  // taken (answered now, or delayed and run or answered later).
  bool InjectFault(const std::shared_ptr<Stream>& sp);
  int OnStreamClose(int32_t stream_id);
  // A request's headers are in (with or without its end): authenticate before the body.
  void OnRequestHeaders(int32_t stream_id);
  // Forgets a stream's buffered body (this connection's and the process's counts).
  void DropBody(Stream& s);
  // The body, moved out (no longer counted as buffered).
  std::string TakeBody(Stream& s);
  void UncountBody(const Stream& s);  // DropBody's and TakeBody's counts

  std::shared_ptr<Stream> NewStream();
  // Keeps a stream nghttp2 closed and nothing else holds, for reuse (bounded pool).
  void Recycle(std::shared_ptr<Stream>& stream);
  // The cache id of a `cache` header, cached while the registry's generation is unchanged.
  StatusOr<uint32_t> ResolveCache(uint32_t tenant, const std::string& name);
  // The principal of an `authorization` value, cached while it is the same token and still
  // valid (expiry and key revocation are checked on every call).
  StatusOr<const gateway::Principal*> Authenticate(const std::string& token, int64_t now_s);

  // Answers at once (trailers-only) and ignores the rest of the stream's request.
  void Reject(Stream& s, WireStatus status);

  // Subscription streams: queue a frame (cutting the subscriber off past its bound), end the
  // stream with a status after what is queued, and have nghttp2 pull what is queued.
  Stream* SubscriptionStream(topics::SubId id);
  void Push(Stream& s, Stream::Chunk chunk);
  void EndSubscription(Stream& s, WireStatus status);
  void Wake(Stream& s);
  void ScheduleFlush();
  void UnsubscribeAll();

  // What a topic delivery to this connection reads and writes: first, beside the vtable
  // pointer, so the line the hub prefetches (Prefetch) holds it.
  bool reading_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool shutting_down_ = false;
  bool saw_preface_ = false;
  bool flush_posted_ = false;
  bool http1_ = false;          // HTTP/1.1 (web_connection.cc)
  size_t buffered_bodies_ = 0;  // request bytes held by streams
  size_t pending_output_ = 0;   // reply bytes queued on streams, not yet given to nghttp2
  std::string h1_out_;                  // HTTP/1.1 response bytes not yet handed to the socket
  std::shared_ptr<Stream> h1_active_;   // the HTTP/1.1 request being answered

  GrpcServer* owner_;
  net::ConnectionGate::Slot slot_;  // this connection's place under the port's cap
  int64_t created_ms_ = 0;          // wall clock
  uint64_t read_epoch_ = 0;         // the server's sweep epoch at the last read
  bool ever_authed_ = false;        // a call authenticated: the pre-auth timeout is over
  uint64_t write_epoch_ = 0;        // sweep epoch when nothing waited for the peer, or a write ended
  // The round's checks, batch, clock, reply grant (held for the round in flight and replies
  // not yet handed to the socket) and pacing.
  gateway::Pipeline pipeline_;
  bool reply_retried_ = false;   // the round's refused calls already ran again
  void SyncReplyHold();
  // After a round: runs the calls its grant refused again, at once, with the most a round may
  // have (true: Answer comes again); false to answer them "reply too large".
  bool RetryNotRun();
  net::Stream stream_;  // TCP, or TLS told apart by the first byte
  const uint64_t id_;
  nghttp2_session* session_ = nullptr;
  std::string in_;
  std::string out_;

  absl::flat_hash_map<int32_t, std::shared_ptr<Stream>> streams_;  // open streams
  std::vector<std::shared_ptr<Stream>> ready_;     // requests complete, not yet run
  std::vector<std::shared_ptr<Stream>> in_round_;  // streams whose calls are in the gateway
  std::vector<std::shared_ptr<Stream>> round_scratch_;
  std::vector<std::shared_ptr<Stream>> free_streams_;  // recycled, Reset()
  std::string cached_cache_name_;
  uint32_t cached_cache_tenant_ = 0;
  uint32_t cached_cache_id_ = 0;
  std::shared_ptr<gateway::CacheState> cached_cache_state_;
  uint32_t sched_tenant_ = 0;  // the tenant of the last authenticated call (its queue)
  bool refuse_round_ = false;  // the tenant's queue was full: refuse the ready calls
  std::string auth_token_;
  gateway::Principal auth_principal_;
  bool auth_valid_ = false;
  uint64_t cached_generation_ = ~uint64_t{0};
  bool round_in_flight_ = false;
  absl::flat_hash_map<topics::SubId, std::shared_ptr<Stream>> subscriptions_;

  // HTTP/1.1 (web_connection.cc), beside http1_, h1_out_ and h1_active_ above.
  net::Http1Parser h1_parser_;
  bool h1_head_checked_ = false;
  size_t h1_body_counted_ = 0;  // CountHttp1Partial's, in BufferedRequestBytes()
  size_t ws_frame_need_ = 0;    // the whole size of the first unparsed WebSocket frame, once known
  std::string h1_in_;                   // read, not yet parsed
  int32_t h1_next_id_ = 1;
  bool h1_keep_alive_ = true;           // the request being answered allows another after it
  bool h1_close_ = false;               // close once h1_out_ is written
  bool h1_parse_posted_ = false;
  std::string web_cors_;                // CORS response headers of the request being routed
  Stream* web_target_ = nullptr;        // HTTP/2: the stream a web answer goes on
  std::vector<std::shared_ptr<Stream>> h2_web_;  // HTTP/2 web requests complete in this read
  // WebSocket: after the 101 the connection carries frames; its subscription is h1_active_.
  bool ws_ = false;
  std::string ws_accept_, ws_protocol_;  // the 101's headers, sent once subscribed
  std::string ws_cache_, ws_topic_, ws_token_;
  std::string ws_message_;               // a fragmented message so far
  uint8_t ws_opcode_ = 0;                // its opcode (0: none in progress)
  uint32_t ws_publishing_ = 0;           // the client's messages being published
  bool ws_out_paused_ = false;           // frames wait: kMaxHttp1Out unwritten (OnWebSocketData)
};

}  // namespace cellar::grpc
