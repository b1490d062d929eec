#!/usr/bin/env bash
# Benchmark: what forwarding costs on a fleet (issue 18). kvbench (RESP, 50 connections,
# pipeline 16, 100-byte values, 100k keys) against node 1 of:
#   single   one node, no etcd: every key local
#   fleet2   two nodes sharing the slots through a real etcd: about half the keys are owned
#            by node 2, so node 1 forwards those calls over the internal port
# Both setups run their nodes with --threads 1 pinned to CPU 0 (so the fleet's two processes
# share the single node's core: the table shows the work forwarding adds), kvbench on CPU 1.
# Runs alternate setup by setup, BENCH_REPS times; the table shows medians and fleet/single.
#   tests/bench/cluster.sh [--smoke]     (needs build/release/src/bin/cellar, /usr/bin/etcd,
#                                         redis-cli, cc, taskset)
# Env: CELLAR_BIN, BENCH_REPS (default 3), BENCH_SECS (default 5), KVBENCH_SRC.
# --smoke: 1 s, 1 rep: checks every run answered without errors and that node 1 forwarded
# calls (cellar_forwarded_calls_total), so the script cannot rot.
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

start_etcd
for rep in $(seq 1 "$REPS"); do
  echo "== rep $rep"
  start_node single 127.0.0.1
  for op in set get; do run_kv single 127.0.0.1 "$port" "$op"; done
  no_refusals single "$admin"
  stop_all_but_etcd() { local keep=${all_pids[0]}; local p; for p in "${all_pids[@]:1}"; do stop_pid "$p"; done; all_pids=("$keep"); }
  stop_all_but_etcd
  start_node n2 127.0.0.1 --cluster-etcd "http://127.0.0.1:$etcd_port" --cluster-name "r$rep" \
    --node-id n2 --cluster-bootstrap-expect 2
  start_node n1 127.0.0.1 --cluster-etcd "http://127.0.0.1:$etcd_port" --cluster-name "r$rep" \
    --node-id n1 --cluster-bootstrap-expect 2
  n1_port=$port; n1_admin=$admin
  for _ in $(seq 1 100); do  # both nodes hold the map
    [[ "$(redis-cli -h 127.0.0.1 -p "$n1_port" SET warm 1 2>/dev/null)" == OK ]] && break
    sleep 0.1
  done
  before=$(metric 127.0.0.1 "$n1_admin" cellar_forwarded_calls_total)
  for op in set get; do run_kv fleet2 127.0.0.1 "$n1_port" "$op"; done
  after=$(metric 127.0.0.1 "$n1_admin" cellar_forwarded_calls_total)
  forwarded=$(( ${after:-0} - ${before:-0} ))
  no_refusals fleet2 "$n1_admin"
  echo "  node 1 forwarded $forwarded calls"
  (( forwarded > 0 )) || { echo "FAIL: node 1 forwarded nothing" >&2; exit 1; }
  stop_all_but_etcd
done

echo
printf "%-8s %-4s %12s %10s %12s\n" setup op "ops/s" "p99 us" "vs single"
for op in set get; do
  s=$(median <<<"${SAMPLES_OPS["single $op"]}")
  for setup in single fleet2; do
    o=$(median <<<"${SAMPLES_OPS["$setup $op"]}")
    p=$(median <<<"${SAMPLES_P99["$setup $op"]}")
    printf "%-8s %-4s %12s %10s %12s\n" "$setup" "$op" "$o" "$p" "$(ratio "$o" "$s")"
  done
done
echo "(medians of $REPS runs; both setups on one server core; fleet2: the client on node 1, about half the keys on node 2)"
