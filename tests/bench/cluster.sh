#!/usr/bin/env bash
# Benchmark: what forwarding costs on a fleet (issue 18). kvbench (RESP, 50 connections,
# pipeline 16, 100-byte values, 100k keys) against:
#   owner      n1 of a two-node fleet on a real etcd, n1 owning every slot: every call local
#   forwarder  n2 of the same fleet, owning none (drained as it joins): every call forwarded
#              to n1 over the internal port
#   single     one node without etcd, for reference
# Every node runs --threads 1 pinned to CPU 0 (so the fleet's two processes share one core:
# the ratio shows the work forwarding adds), kvbench on CPU 1. Owner and forwarder alternate
# op by op within each of BENCH_REPS runs; the table shows medians, forwarder/owner, and the
# CPU both fleet nodes spent per op (from /proc), the figure a scaling estimate starts from.
#   tests/bench/cluster.sh [--smoke]     (needs build/release/src/bin/cellar, /usr/bin/etcd,
#                                         redis-cli, cc, taskset)
# Env: CELLAR_BIN, BENCH_REPS (default 3), BENCH_SECS (default 5), KVBENCH_SRC.
# --smoke: 1 s, 1 rep: checks every run answered without errors, that n2 ended up with no
# slots and forwarded calls (cellar_forwarded_calls_total), so the script cannot rot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
CELLAR_BIN=${CELLAR_BIN:-$repo/build/release/src/bin/cellar}
REPS=${BENCH_REPS:-3}
SECS=${BENCH_SECS:-5}
if (( SMOKE )); then REPS=1; SECS=1; fi
KVBENCH_SRC=${KVBENCH_SRC:-$repo/../shared/tools/kvbench.c}
# The default per-cache limits would refuse most of this load (and kvbench counts refusals as
# answers): lifted, as tests/bench/run.sh does; a refusal fails the run (checked below).
LIMITS=requests_per_second=1000000000,read_bytes_per_second=1tib,write_bytes_per_second=1tib
tmp=$(mktemp -d /tmp/cellar-bench-cluster.XXXXXX)
all_pids=()
trap 'stop_all; rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/kvbench" "$KVBENCH_SRC"
server=(taskset -c 0)
client=(taskset -c 1)
[[ $(nproc) -ge 2 ]] || { server=(); client=(); }

start_etcd() {
  etcd_port=$(free_port); local peer; peer=$(free_port)
  /usr/bin/etcd --name b --data-dir "$tmp/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "b=http://127.0.0.1:$peer" >"$tmp/etcd.log" 2>&1 &
  all_pids+=("$!")
  for _ in $(seq 1 150); do
    curl -s "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q true && return 0
    sleep 0.1
  done
  echo "etcd did not start" >&2; cat "$tmp/etcd.log" >&2; exit 1
}

# start_node NAME BIND [cluster flags...]: sets port (RESP) and admin
start_node() {
  local name=$1 bind=$2; shift 2
  local data=$tmp/$name
  rm -rf "$data"; mkdir -p "$data"
  "${server[@]}" "$CELLAR_BIN" serve --data-dir "$data" --bind "$bind" --resp-port 0 \
    --admin-port 0 --api-port 0 --threads 1 --memory-limit 1gb --dev-no-auth \
    --default-limits "$LIMITS" --log-level warn "$@" >"$tmp/$name.log" 2>&1 &
  all_pids+=("$!")
  for _ in $(seq 1 200); do [[ -s "$data/ports.json" ]] && break; sleep 0.1; done
  [[ -s "$data/ports.json" ]] || { echo "$name did not start" >&2; cat "$tmp/$name.log" >&2; exit 1; }
  port=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["resp"])' "$data/ports.json")
  admin=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' "$data/ports.json")
}

metric() {  # metric HOST ADMIN NAME: the sum of its samples
  curl -s "http://$1:$2/metrics" | awk -v n="$3" '$1 == n || index($1, n "{") == 1 {s += $2} END {print s + 0}'
}
no_refusals() {  # no_refusals SETUP ADMIN
  local r; r=$(metric 127.0.0.1 "$2" cellar_cache_throttled_total)
  [[ "$r" == 0 ]] || { echo "FAIL: $1: $r calls were refused (limits), not served" >&2; exit 1; }
}

declare -A SAMPLES_OPS SAMPLES_P99
run_kv() {  # run_kv SETUP HOST PORT OP (kvbench dials 127.0.0.1: HOST is for the log)
  local line ops p99 errors
  line=$(timeout $((SECS + 40)) "${client[@]}" "$tmp/kvbench" -p "$3" -m resp -o "$4" \
    -c 50 -d 16 -t "$SECS" -w 1 -r 100000 -v 100 2>&1 || true)
  echo "  $1 $4: $line"
  ops=$(sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p' <<<"$line")
  p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$line")
  errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$line")
  if [[ -z "$ops" || "$ops" == 0 || ( -n "$errors" && "$errors" != 0 ) ]]; then
    echo "FAIL: $1 $4 answered nothing or with errors" >&2; exit 1
  fi
  SAMPLES_OPS["$1 $4"]+="$ops "
  SAMPLES_P99["$1 $4"]+="$p99 "
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))
declare -A SAMPLES_CPU
# run_measured SETUP PORT OP: run_kv, plus the CPU the fleet's nodes spent per op (us)
run_measured() {
  local a0 b0 a1 b1 ops
  a0=$(cpu_ticks "$n1_pid"); b0=$(cpu_ticks "$n2_pid")
  run_kv "$1" 127.0.0.1 "$2" "$3"
  a1=$(cpu_ticks "$n1_pid"); b1=$(cpu_ticks "$n2_pid")
  ops=$(awk '{print $NF}' <<<"${SAMPLES_OPS["$1 $3"]}")
  SAMPLES_CPU["$1 $3"]+="$(awk -v t=$(( (a1 - a0 + b1 - b0) * TICK_US )) -v o="$ops" -v s="$SECS" \
    'BEGIN {printf "%.2f", t / (o * s)}') "
}

start_etcd
for rep in $(seq 1 "$REPS"); do
  echo "== rep $rep"
  start_node single 127.0.0.1
  for op in set get; do run_kv single 127.0.0.1 "$port" "$op"; done
  no_refusals single "$admin"
  stop_all_but_etcd() { local keep=${all_pids[0]}; local p; for p in "${all_pids[@]:1}"; do stop_pid "$p"; done; all_pids=("$keep"); }
  stop_all_but_etcd
  # A fleet of two where n1 owns every slot and n2 none (drained as it joins): a client on n1
  # is served locally, one on n2 has every call forwarded to n1.
  start_node n1 127.0.0.1 --cluster-etcd "http://127.0.0.1:$etcd_port" --cluster-name "r$rep" \
    --node-id n1 --cluster-bootstrap-expect 1
  n1_port=$port; n1_admin=$admin; n1_pid=${all_pids[-1]}
  start_node n2 127.0.0.1 --cluster-etcd "http://127.0.0.1:$etcd_port" --cluster-name "r$rep" \
    --node-id n2
  n2_port=$port; n2_admin=$admin; n2_pid=${all_pids[-1]}
  drained=0
  for _ in $(seq 1 300); do
    curl -s -X POST "http://127.0.0.1:$n1_admin/v1/nodes/n2/drain" >/dev/null 2>&1 || true
    if /usr/bin/python3 -c '
import json, sys, urllib.request
v = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/cluster", timeout=5))
nodes = {m["node"]: m for m in v["members"]}
ok = v["slot_map"] and nodes.get("n2", {}).get("slots", 1) == 0 and nodes["n1"]["slots"] == 16384 \
    and not (v["migration"] or {}).get("phase") in ("prepare", "copy", "ready")
sys.exit(0 if ok else 1)' "$n1_admin" 2>/dev/null; then drained=1; break; fi
    sleep 0.1
  done
  (( drained )) || { echo "FAIL: n2 did not end up with no slots" >&2; cat "$tmp/n1.log" >&2; exit 1; }
  for _ in $(seq 1 100); do  # n2 has the map and reaches n1
    [[ "$(redis-cli -h 127.0.0.1 -p "$n2_port" SET warm 1 2>/dev/null)" == OK ]] && break
    sleep 0.1
  done
  before=$(metric 127.0.0.1 "$n2_admin" cellar_forwarded_calls_total)
  for op in set get; do
    run_measured owner "$n1_port" "$op"
    run_measured forwarder "$n2_port" "$op"
  done
  after=$(metric 127.0.0.1 "$n2_admin" cellar_forwarded_calls_total)
  forwarded=$(( ${after:-0} - ${before:-0} ))
  no_refusals owner "$n1_admin"
  no_refusals forwarder "$n2_admin"
  echo "  n2 forwarded $forwarded calls"
  (( forwarded > 0 )) || { echo "FAIL: n2 forwarded nothing" >&2; exit 1; }
  stop_all_but_etcd
done

echo
printf "%-10s %-4s %12s %10s %10s %14s\n" setup op "ops/s" "p99 us" "vs owner" "fleet cpu us/op"
for op in set get; do
  s=$(median <<<"${SAMPLES_OPS["owner $op"]}")
  for setup in single owner forwarder; do
    o=$(median <<<"${SAMPLES_OPS["$setup $op"]}")
    p=$(median <<<"${SAMPLES_P99["$setup $op"]}")
    c=-
    [[ -n "${SAMPLES_CPU["$setup $op"]:-}" ]] && c=$(median <<<"${SAMPLES_CPU["$setup $op"]}")
    printf "%-10s %-4s %12s %10s %10s %14s\n" "$setup" "$op" "$o" "$p" "$(ratio "$o" "$s")" "$c"
  done
done
echo "(medians of $REPS runs; every server process on one core; owner: the client on the node"
echo " owning every key; forwarder: the client on a node owning none, each call forwarded;"
echo " fleet cpu: both nodes' CPU time per op; single: one node without etcd, for reference)"
