#!/usr/bin/env bash
# Soak: every attack of issue 15 at once against one server while a well-behaved tenant works
# (tests/bench/abuse.py). Prints the probe's p50/p99/max latency and errors, the server's peak
# RSS, and whether the probe's data is intact.
#   tests/bench/abuse.sh            ABUSE_SECS seconds (default 120); needs the release build
#   tests/bench/abuse.sh --smoke    3 seconds (run by the test suite: ctest bench.abuse.smoke)
# Env: CELLAR_BIN (default build/release/src/bin/cellar).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "$here/abuse.py" "$@"
