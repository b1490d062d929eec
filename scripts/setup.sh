#!/usr/bin/env bash
# Installs what building and testing Cellar needs, from Debian's packages only.
# Idempotent: runs apt-get only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost-dev libabsl-dev libspdlog-dev libfmt-dev libcli11-dev libxxhash-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libnghttp2-dev protobuf-compiler libprotobuf-dev nghttp2-client libjansson-dev
  clang libclang-rt-14-dev
  redis-server redis-tools python3 python3-redis
  etcd-server etcd-client
  # The browser test (tests/web, ctest web.browser) drives Debian's Chromium through npm
  # playwright-core; no browser is ever downloaded.
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js and npm run the Node test clients; any Debian-packaged Node 18+ will do.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
# kubectl renders the Kubernetes manifests offline (`kubectl kustomize`, tests/deploy). Any
# kubectl will do, so an installed one is kept; else Debian's kubernetes-client (1.20, whose
# kustomize is old: deploy/kubernetes is written for both).
if ! command -v kubectl >/dev/null 2>&1; then
  missing+=(kubernetes-client)
fi

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
