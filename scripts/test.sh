#!/usr/bin/env bash
# Runs the whole test suite: installs what it needs, builds the release and the ASan/UBSan
# presets, and runs unit, integration (real binary, real clients) and fuzz-corpus tests in both.
# Usage: scripts/test.sh [--quick | --with-tsan]
#   --quick:     release preset only
#   --with-tsan: also the ThreadSanitizer preset (the threaded parts: loops, gateway, shutdown)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# ccache: paths relative to the checkout, so another clone of the same commit hits the cache.
export CCACHE_BASEDIR="$root"
"$root/scripts/setup.sh"
for d in tests/clients tests/conformance/momento tests/deploy tests/web; do
  (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
done

presets=(release asan)
case "${1:-}" in
  --quick) presets=(release) ;;
  --with-tsan) presets=(release asan tsan); export TSAN_OPTIONS="halt_on_error=1" ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--quick | --with-tsan]" >&2; exit 2 ;;
esac

status=0
for preset in "${presets[@]}"; do
  echo "=== preset $preset: build" >&2
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  echo "=== preset $preset: test" >&2
  # Integration tests start their own servers on free ports, so they may run in parallel.
  if ! ctest --preset "$preset" -j2 --timeout 600; then status=1; fi
done
exit $status
