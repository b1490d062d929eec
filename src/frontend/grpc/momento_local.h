// momento-local parity (`cellar serve --momento-local`): the per-call fault injection that
// Momento's local test server honours, so that SDK users can test their retry and outage
// handling against Cellar. Off unless that mode is on (ServiceContext::momento_local), which
// only serves loopback. The metadata of a call:
//   request-id                  groups one test's calls: the counts below are kept per id
//   return-error                a status name (errors.h GrpcCodeNamed: "unavailable", "not-found"...)
//   error-rpcs                  space-separated RPC names (RpcName: "get", "dictionary-set",
//                               "topic-publish", "topic-subscribe"...) that answer it
//   error-count                 only the first N matching calls of the id fail (none: all)
//   delay-rpcs, delay-ms        matching calls are answered delay-ms later (with the error,
//   delay-count                 if they also get one); only the first N (none: all)
//   stream-error-rpcs           "topic-subscribe": the stream ends with stream-error after
//   stream-error                stream-error-message-limit messages (heartbeats and items)
//   stream-error-message-limit
// Metadata that names an unknown status or is not a number is INVALID_ARGUMENT, saying which.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>

#include "frontend/grpc/errors.h"

namespace cellar::grpc::local {

// The fault-injection metadata of one call, as sent.
struct FaultHeaders {
  std::string request_id, return_error, error_rpcs, error_count, delay_rpcs, delay_ms,
      delay_count, stream_error_rpcs, stream_error, stream_error_limit;
  // Keeps the header if it is one of the above; false if it is not.
  bool Take(std::string_view name, std::string_view value);
};

// What to do to one call.
struct Fault {
  int64_t delay_ms = 0;              // answer (or run) it this much later
  std::optional<WireStatus> error;   // answer this instead of running it
  std::optional<WireStatus> stream_error;  // a subscription: end it with this...
  uint64_t stream_messages = 0;            // ...once this many messages were sent
};

// The name momento-local gives the method at `path`, "" if it has none.
std::string_view RpcName(std::string_view path);

class FaultInjector {
 public:
  static FaultInjector& Get();
  // The fault for a call of the method at `path` carrying `h`, counted against h's
  // request-id. Thread-safe (every loop asks).
  Fault Decide(std::string_view path, const FaultHeaders& h);

 private:
  struct Counts {
    uint64_t errors = 0, delays = 0;
  };
  // Request ids remembered at most; past it they are forgotten (their counts restart).
  static constexpr size_t kMaxIds = 100000;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Counts> counts_ ABSL_GUARDED_BY(mu_);
};

// GET /block and /unblock on the admin port: while blocked, the API port's connections are
// closed and new ones are closed as they are accepted, as if the network were down.
std::atomic<bool>& Blocked();

}  // namespace cellar::grpc::local
