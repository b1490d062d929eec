// Cellar's own etcd v3 client: gRPC over one HTTP/2 connection (h2c, nghttp2) on a Boost.Asio
// io_context. The groundwork of the cluster (issue 18): agreement lives in etcd, and this is
// how Cellar talks to it. No C++ etcd client is packaged in Debian, so we speak the wire: our
// own subset of etcd's rpc.proto/kv.proto (proto/etcd/), the gRPC length prefix, grpc-timeout,
// grpc-status trailers.
//
// What it offers:
//  - unary calls (KV Range/Put/DeleteRange/Txn/Compact, Lease Grant/Revoke), each with a
//    deadline sent as grpc-timeout and enforced locally, answered by exactly one callback with
//    a StatusOr (etcd's gRPC status mapped to a Code, its message kept);
//  - Watch: one HTTP/2 stream per watch, responses delivered in order, its end reported once
//    (a compacted start revision, a broken connection, a cancel by etcd): never a silent hang;
//  - KeepAlive: one stream per lease, a keepalive every TTL/3, "lost" reported once when etcd
//    answers TTL <= 0, the stream breaks, or no answer came for a whole TTL.
// Watch and keepalive streams carry the metadata `hasleader: true`, so a member that lost its
// leader refuses them instead of going quiet.
//
// Threading: not thread-safe. Every call, and every callback, runs on the io_context's thread
// (one thread runs it). Callbacks are posted, never run inside a call or an nghttp2 callback,
// so a callback may issue new calls or Close() the client.
//
// Connection: opened on the first call, to the first endpoint that accepts (in order, starting
// from the one that worked last); when it breaks every open call and stream ends with
// kUnavailable, and the next call reconnects. Re-watching and re-granting are the caller's.
//
// Bounds: request and response message sizes, calls in flight (pending ones included), bytes
// queued per stream, unacknowledged keepalives; each refusal is a Status saying which bound.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "etcd/kv.pb.h"
#include "etcd/rpc.pb.h"

namespace cellar::cluster {

// The client's metrics (EtcdClient::Metrics()); readable from any thread.
inline constexpr metrics::Def kEtcdCalls{
    "cellar_etcd_calls_total", metrics::Type::kCounter,
    "etcd calls and streams started (unary calls, watches, keepalives).", ""};
inline constexpr metrics::Def kEtcdCallErrors{
    "cellar_etcd_call_errors_total", metrics::Type::kCounter,
    "etcd calls and streams that ended with an error (a cancel by the caller is not one), by "
    "status code.",
    "code"};
inline constexpr metrics::Def kEtcdConnects{"cellar_etcd_connects_total", metrics::Type::kCounter,
                                            "HTTP/2 connections to etcd established.", ""};
inline constexpr metrics::Def kEtcdConnectFailures{
    "cellar_etcd_connect_failures_total", metrics::Type::kCounter,
    "Connects to an etcd endpoint that failed or timed out (the next endpoint is tried).", ""};
inline constexpr metrics::Def kEtcdConnectionsLost{
    "cellar_etcd_connections_lost_total", metrics::Type::kCounter,
    "etcd connections that broke; each ended every call and stream open on it.", ""};
inline constexpr metrics::Def kEtcdOpenCalls{
    "cellar_etcd_open_calls", metrics::Type::kGauge,
    "etcd calls and streams open or waiting for the connection.", ""};

struct EtcdOptions {
  // "http://127.0.0.1:2379" style URLs (h2c; no TLS yet). Tried in order on connect.
  std::vector<std::string> endpoints;
  // One TCP connect attempt to one endpoint.
  std::chrono::milliseconds connect_timeout{2000};
  // etcd's own default --max-request-bytes is 1.5 MiB; larger requests are refused here,
  // before they are sent, with kTooLarge.
  size_t max_request_bytes = 1536 * 1024;
  // A response message above this is refused (kResourceExhausted) and its stream reset.
  size_t max_response_bytes = 16u << 20;
  // Unary calls plus streams open or waiting for the connection.
  size_t max_calls = 1024;
  // Bytes queued to send on one stream (watch or keepalive requests) and not yet written.
  size_t max_stream_queue_bytes = 64 * 1024;
};

// The caller's end of a watch or keepalive stream: Cancel() ends it without a callback, and so
// does dropping the last reference (keep the handle as long as the stream should run).
class EtcdStream {
 public:
  virtual ~EtcdStream() = default;
  virtual void Cancel() = 0;
};

struct WatchOptions {
  std::string key;
  std::string range_end;       // empty: the one key; PrefixEnd(key): a prefix
  int64_t start_revision = 0;  // <= 0: from now
  bool prev_kv = false;
  // etcd must confirm the watch (created) within this, or it ends with kDeadlineExceeded.
  std::chrono::milliseconds create_timeout{5000};
};

// Why a watch ended. status is never OK. compact_revision > 0: the start revision was
// compacted (status kFailedPrecondition); re-read the prefix, then watch from the read's
// header.revision + 1.
struct WatchEnd {
  Status status;
  int64_t compact_revision = 0;
};

struct KeepAliveOptions {
  int64_t lease_id = 0;
  int64_t ttl_seconds = 0;  // the granted TTL: the keepalive period is TTL/3
};

// Called on each keepalive answer with TTL > 0: the lease is known alive until
// `alive_until` (the send time of the answered request + TTL, on the steady clock).
using KeepAliveAck =
    std::function<void(int64_t ttl, std::chrono::steady_clock::time_point alive_until)>;

class EtcdClient {
 public:
  using Duration = std::chrono::milliseconds;
  template <typename T>
  using Done = std::function<void(StatusOr<T>)>;

  static std::shared_ptr<EtcdClient> Create(boost::asio::io_context& io, EtcdOptions options);
  ~EtcdClient();

  // Ends the connection and every call and stream (callbacks: kUnavailable "client closed";
  // cancelled streams stay silent). Further calls answer the same. The destructor closes.
  void Close();

  // ---- KV ----
  void Range(etcdserverpb::RangeRequest req, Duration timeout,
             Done<etcdserverpb::RangeResponse> done);
  void Put(etcdserverpb::PutRequest req, Duration timeout, Done<etcdserverpb::PutResponse> done);
  void DeleteRange(etcdserverpb::DeleteRangeRequest req, Duration timeout,
                   Done<etcdserverpb::DeleteRangeResponse> done);
  void Txn(etcdserverpb::TxnRequest req, Duration timeout, Done<etcdserverpb::TxnResponse> done);
  void Compact(etcdserverpb::CompactionRequest req, Duration timeout,
               Done<etcdserverpb::CompactionResponse> done);

  // ---- Lease ----
  void LeaseGrant(etcdserverpb::LeaseGrantRequest req, Duration timeout,
                  Done<etcdserverpb::LeaseGrantResponse> done);
  void LeaseRevoke(etcdserverpb::LeaseRevokeRequest req, Duration timeout,
                   Done<etcdserverpb::LeaseRevokeResponse> done);

  // ---- Streams ----
  // on_response sees every response but the last, in order (the first has created = true);
  // on_end is called exactly once unless the caller cancels first.
  std::shared_ptr<EtcdStream> Watch(
      WatchOptions options, std::function<void(const etcdserverpb::WatchResponse&)> on_response,
      std::function<void(WatchEnd)> on_end);
  // Keeps a lease alive until cancelled; on_lost is called once when it cannot.
  std::shared_ptr<EtcdStream> KeepAlive(KeepAliveOptions options, KeepAliveAck on_ack,
                                        std::function<void(Status)> on_lost);

  // ---- Observability ----
  uint64_t connects() const;  // HTTP/2 connections established so far
  size_t open_calls() const;
  // The kEtcd* metrics above; the source holds the client weakly (no samples once it is gone).
  metrics::Source Metrics() const;

  struct Impl;

 private:
  explicit EtcdClient(boost::asio::io_context& io, EtcdOptions options);
  std::shared_ptr<Impl> impl_;  // shared with its pending asynchronous operations
};

// The range_end that selects every key starting with `prefix` (etcd's "prefix + 1").
std::string PrefixEnd(std::string_view prefix);

// etcd's gRPC status as our Status: the code by the gRPC code table, and a message naming the
// method and keeping etcd's text (for example "etcdserver: requested lease not found").
Status FromGrpcStatus(int grpc_code, std::string_view grpc_message, std::string_view method);

}  // namespace cellar::cluster
