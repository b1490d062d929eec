#!/usr/bin/env bash
# Benchmark: noisy-neighbour isolation (issue 7), long form of tests/integration/test_isolation.py.
# Tenant A floods one event loop (cellar --threads 1) with pipelined SETs from BENCH_CONNS
# connections (pipeline BENCH_PIPELINE), far past its requests_per_second (BENCH_A_LIMIT);
# tenant B sends one GET every BENCH_INTERVAL_MS on its own connection. Printed: B's
# p50/p99/p99.9 alone, with A flooding (scheduler on), and the same with --fair-scheduling off,
# and A's request rate, admitted rate and throttle rate.
#   tests/bench/isolation.sh      (needs build/release/src/bin/cellar, taskset, /usr/bin/python3)
# Env: CELLAR_BIN, BENCH_SECS (seconds per phase, default 10), BENCH_REPS (alone/flooded pairs
#      per mode, default 3), BENCH_CONNS (16), BENCH_PIPELINE (256), BENCH_A_LIMIT (20000),
#      BENCH_INTERVAL_MS (2), BENCH_THREADS (1).
# The server is pinned to CPU 0 and the load generators to CPU 1 (A's at nice 19, so B's
# client wakes ahead of it): B's figures measure the server, not the client's CPU contention.
# Default run: 2 modes x 3 x (10 s alone + 11.5 s flooded) + start-up: about 2.5 minutes.
# --smoke: one 1-second rep per mode, checking what it reads and the mechanism (the test
# suite runs it as bench.isolation.smoke).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
export CELLAR_BIN=${CELLAR_BIN:-$repo/build/release/src/bin/cellar}
[ -x "$CELLAR_BIN" ] || { echo "build first: cmake --preset release && cmake --build build/release" >&2; exit 2; }
exec /usr/bin/python3 "$repo/tests/bench/isolation.py" "$@"
