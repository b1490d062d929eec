// `cellar serve`: every role in one process. One event loop thread per core; loop i hosts
// shard i (its Engine), a RESP listener (SO_REUSEPORT), and its connections; loop 0 also hosts
// the admin HTTP server and the signal handler.
#pragma once

#include <memory>

#include "server/config.h"

namespace cellar::server {

// One serving process: the control plane's state, the loops with their shards and listeners,
// the gateway, topics, tenancy, usage and the admin port.
class Process {
 public:
  explicit Process(Config cfg);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Makes everything and starts listening (ports.json written, the "ready" line printed);
  // SIGINT and SIGTERM will Stop it. Returns 0, or an exit code for a refused configuration
  // (2: --dev-no-auth or plaintext beyond loopback). Throws when it cannot start.
  int Start();
  // Runs the loops (this thread is loop 0) until a Stop has drained them.
  void Run();
  // Shuts down, from any thread: stops accepting, lets busy connections finish their replies
  // (at most 10 s), closes the rest; then Run returns.
  void Stop();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// `cellar serve`: runs a Process until SIGINT/SIGTERM; returns the process exit code.
int ServeMain(int argc, char** argv);

}  // namespace cellar::server
