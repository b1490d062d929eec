// `cellar serve`: every role in one process. One event loop thread per core; loop i hosts
// shard i (its Engine), a RESP listener (SO_REUSEPORT), and its connections; loop 0 also hosts
// the admin HTTP server and the signal handler.
#pragma once

namespace cellar::server {

// Runs the server until SIGINT/SIGTERM; returns the process exit code.
int ServeMain(int argc, char** argv);

}  // namespace cellar::server
