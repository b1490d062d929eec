#!/usr/bin/env bash
# Builds Cellar if needed and starts `cellar serve` on its embedded single-node default
# (127.0.0.1, RESP 6379, admin 9090, metadata in ./cellar-data). Extra arguments go to serve.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cmake --preset release -S "$root" >/dev/null
cmake --build "$root/build/release" --target cellar
exec "$root/build/release/src/bin/cellar" serve "$@"
