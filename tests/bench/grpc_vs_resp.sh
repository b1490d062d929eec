#!/usr/bin/env bash
# Benchmark: one Cellar (release build), its gRPC API port (h2c, Momento's cache_client.Scs
# unary Get/Set, driven by h2load) against its own RESP port (GET/SET, driven by
# redis-benchmark) at the same concurrency, in the same run.
#   tests/bench/grpc_vs_resp.sh   (from anywhere; needs build/release/src/bin/cellar, h2load
#                                  from Debian's nghttp2-client, redis-benchmark, curl)
# Env: CELLAR_BIN, BENCH_SECS (measured seconds per run, default 3), BENCH_WARMUP (h2load
#      warm-up seconds, default 1), BENCH_REPS (runs per workload and protocol, default 3;
#      the table shows medians), BENCH_MODES ("pinned unpinned" by default, as in run.sh),
#      BENCH_PAIRS (connections x in-flight, default "50x1 4x32"),
#      BENCH_RESP_CLIENT (redis-benchmark, the default, or kvbench from ../shared/tools:
#      at 50x1 pinned redis-benchmark uses ~95% of its core and holds Cellar's RESP port to
#      ~90k ops/s where kvbench reaches ~150k; watch the "cli %cpu" column),
#      BENCH_TTL_MS (ttl_milliseconds in the gRPC SetRequest, default 0 = no TTL, like SET).
# Target (the issue): gRPC >= 0.6x RESP ops/s and gRPC p99 < 2x RESP p99.
#
# Pairing ("CxM"): both load generators are single-threaded, sit on the same CPU and open C
# connections with M requests in flight on each:
#   h2load -c C -m M          C h2c connections, M concurrent unary streams each; a stream
#                             that ends is replaced at once (a window of M).
#   redis-benchmark -c C -P M C connections, M pipelined commands each; a batch of M is sent
#                             and all M replies awaited (kvbench -c C -d M does the same).
#   50x1: many connections, one request at a time (latency-bound, one syscall pair per op).
#   4x32: few connections, deep in-flight window (throughput-bound, batched I/O).
# Latency is per request on both sides: h2load from a stream's start to the end of its
# response (--log-file gives each one; p99 is computed from that), redis-benchmark from the
# batch's send to the reply (--csv p99_latency_ms).
#
# Keys: h2load sends the same body every time, so each gRPC run uses one key; the RESP side
# is given the same single key (redis-benchmark without -r uses "key:__rand_int__" verbatim;
# kvbench -r 1 uses "key:000000000000"), so both protocols hit the same item and shard.
# Values are 100 bytes of 'x' on both. Set runs before Get, so every Get is a hit.
#
# Checks, since h2load only sees HTTP 200: once per mode, curl sends the exact bodies and the
# script requires grpc-status 0 in the trailers and decodes the replies (Set -> Ok, Get -> Hit
# with the 100-byte value). Every h2load run is then checked against the server's /metrics:
# the engine must have done at least as many operations as h2load counted responses, no
# misses, and h2load's DATA bytes must equal operations x the size of a correct reply (within
# the C x M responses still in flight when -D ends). An error reply (trailers only, no data)
# or a miss breaks that; such a row is marked "!" and its counts printed.
#
# Modes (as in run.sh):
#   pinned:   Cellar on CPU 0 with --threads 1, the load generator on CPU 1.
#   unpinned: nothing pinned, Cellar on one loop per core (--threads 2 here).
# Columns besides ops/s and p99: server CPU time per operation (from /proc/PID/stat over the
# whole run, ops from /metrics; a protocol-cost figure independent of the client) and the
# server's and the client's CPU use in % of one core during the run (client near 100%
# means the load generator, not the server, was the limit).
set -euo pipefail
# Cellar's per-cache limits (issue 7): high enough never to throttle the load generator, but
# finite, so the admission buckets run as they do in production. BENCH_CELLAR_LIMITS overrides.
CELLAR_LIMITS=${BENCH_CELLAR_LIMITS:-requests_per_second=1000000000,read_bytes_per_second=1tib,write_bytes_per_second=1tib,publish_per_second=1000000000}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
CELLAR_BIN=${CELLAR_BIN:-$repo/build/release/src/bin/cellar}
KVBENCH_SRC=${KVBENCH_SRC:-$repo/../shared/tools/kvbench.c}
BODY=$here/grpc/grpc_body.py
PY=/usr/bin/python3
# --smoke: one short rep of each workload, pinned only (the test suite runs it as
# bench.grpc_vs_resp.smoke); the script then exits 1 if any row was flagged (a wrong count
# of engine ops, protocol errors, no client summary): what it reads must still exist.
SMOKE=0
[[ ${1:-} == --smoke ]] && SMOKE=1
if ((SMOKE)); then
  : "${BENCH_SECS:=1}" "${BENCH_WARMUP:=0}" "${BENCH_REPS:=1}" "${BENCH_MODES:=pinned}"
fi
SECS=${BENCH_SECS:-3}
WARMUP=${BENCH_WARMUP:-1}
REPS=${BENCH_REPS:-3}
MODES=${BENCH_MODES:-pinned unpinned}
PAIRS=${BENCH_PAIRS:-50x1 4x32}
RESP_CLIENT=${BENCH_RESP_CLIENT:-redis-benchmark}
TTL_MS=${BENCH_TTL_MS:-0}
THREADS=1
VALUE=100

for tool in h2load redis-cli curl awk taskset "$RESP_CLIENT"; do
  [[ $tool == kvbench ]] && tool=cc
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "missing: /usr/bin/time" >&2; exit 2; }
for _ in $(seq 1 60); do [[ -x "$CELLAR_BIN" ]] && break; echo "waiting for $CELLAR_BIN" >&2; sleep 2; done
[[ -x "$CELLAR_BIN" ]] || { echo "no cellar binary at $CELLAR_BIN (build the release preset)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/cellar-grpc-bench.XXXXXX)
# Run a private copy, so a rebuild during the run changes nothing halfway.
cp "$CELLAR_BIN" "$tmp/cellar"

case $RESP_CLIENT in
  redis-benchmark) KEY='key:__rand_int__' ;;
  kvbench) KEY='key:000000000000'
           cc -O2 -o "$tmp/kvbench" "$KVBENCH_SRC" ;;
  *) echo "BENCH_RESP_CLIENT must be redis-benchmark or kvbench" >&2; exit 2 ;;
esac
"$PY" "$BODY" set "$KEY" "$VALUE" "$TTL_MS" >"$tmp/set.bin"
"$PY" "$BODY" get "$KEY" >"$tmp/get.bin"

server_cpu=() client_cpu=()
set_mode() {  # set_mode pinned|unpinned
  if [[ "$1" == pinned ]] && [[ $(nproc) -ge 2 ]]; then
    server_cpu=(taskset -c 0); client_cpu=(taskset -c 1); THREADS=1
  else
    server_cpu=(); client_cpu=(); THREADS=$(nproc)
  fi
}

server_pid=""
stop_server() {
  local pid=$server_pid
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  local rc=$?
  trap '' PIPE  # the output may be gone: stop the server first, then try to print
  stop_server
  if [[ $rc -ne 0 && -f "$tmp/cellar.log" ]]; then
    { echo "--- tail of cellar.log"; tail -n 20 "$tmp/cellar.log"; } >&2 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE  # cleanup (the EXIT trap) also when the output pipe closes

json_port() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# start_cellar: sets server_pid, rport, aport, mport
start_cellar() {
  local data=$tmp/cellar-data
  rm -rf "$data"; mkdir -p "$data"
  "${server_cpu[@]}" "$tmp/cellar" serve --data-dir "$data" --resp-port 0 --admin-port 0 \
    --api-port 0 --memory-limit 2gb --threads "$THREADS" --dev-no-auth --log-level warn \
    --default-limits "$CELLAR_LIMITS" \
    >"$tmp/cellar.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    [[ -s "$data/ports.json" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/cellar.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s "$data/ports.json" ]] || { echo "cellar: no ports.json" >&2; exit 1; }
  rport=$(json_port "$data/ports.json" resp)
  aport=$(json_port "$data/ports.json" api)
  mport=$(json_port "$data/ports.json" admin)
  wait_pong "$rport"
}

metric() {  # metric NAME -> value (0 if absent)
  timeout 10 curl -s "http://127.0.0.1:$mport/metrics" |
    awk -v n="$1" '$1 == n {v = $2} END {printf "%d", v + 0}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
now_ns() { date +%s%N; }

GRPC_HDR=(-H 'content-type: application/grpc' -H 'te: trailers' -H 'cache: default')
# h2load rejects a header with an empty value ("authorization: "); under --dev-no-auth a
# missing authorization header is the same as an empty one, so it is left out.

# verify_grpc: one Set and one Get with curl; trailers must carry grpc-status 0 and the
# replies must decode. Sets REPLY_SIZE[set|get] (bytes of DATA per correct reply).
declare -A REPLY_SIZE
verify_grpc() {
  local op hdr
  for op in set get; do
    local Op=${op^}
    timeout 10 curl -s --http2-prior-knowledge -D "$tmp/$op.hdr" "${GRPC_HDR[@]}" -H 'authorization;' \
      --data-binary @"$tmp/$op.bin" -o "$tmp/$op.reply" "http://127.0.0.1:$aport/cache_client.Scs/$Op"
    hdr=$(tr -d '\r' <"$tmp/$op.hdr")
    if ! grep -qx 'grpc-status: 0' <<<"$hdr"; then
      echo "gRPC $Op: no grpc-status 0 in the reply:" >&2; echo "$hdr" >&2; exit 1
    fi
    if [[ $op == set ]]; then "$PY" "$BODY" check-set <"$tmp/$op.reply"
    else "$PY" "$BODY" check-get "$VALUE" <"$tmp/$op.reply"; fi
    REPLY_SIZE[$op]=$(stat -c %s "$tmp/$op.reply")
  done
  echo "  check: curl Set/Get on /cache_client.Scs: grpc-status 0, Set -> Ok, Get -> Hit with" \
    "${VALUE} bytes (replies ${REPLY_SIZE[set]}/${REPLY_SIZE[get]} bytes of DATA)"
}


declare -A S  # samples: S["mode|pair|op|proto|field"]="v1 v2 ..."
add() { S["$1|$2"]+="$3 "; }  # add KEY FIELD VALUE
declare -A BAD
NBAD=0  # runs flagged (BAD may stay empty, which set -u cannot count)

# run_grpc MODE C M OP
run_grpc() {
  local mode=$1 c=$2 m=$3 op=$4 Op=${4^} k="$1|$2x$3|$4|grpc"
  local ops0 hits0 miss0 t0 w0 out ops1 hits1 miss1 t1 w1 rps done_ ok fail data p99 dops ct
  ops0=$(metric 'cellar_cache_operations_total{tenant="default",cache="default"}')
  hits0=$(metric cellar_hits_total) miss0=$(metric cellar_misses_total)
  t0=$(cpu_ticks) w0=$(now_ns)
  out=$(timeout $((SECS + WARMUP + 30)) /usr/bin/time -f '%U %S %e' -o "$tmp/client.time" \
    "${client_cpu[@]}" h2load -t 1 -c "$c" -m "$m" -D "$SECS" --warm-up-time "$WARMUP" \
    "${GRPC_HDR[@]}" -d "$tmp/$op.bin" --log-file "$tmp/h2load.log" \
    "http://127.0.0.1:$aport/cache_client.Scs/$Op" 2>&1)
  t1=$(cpu_ticks) w1=$(now_ns)
  ops1=$(metric 'cellar_cache_operations_total{tenant="default",cache="default"}')
  hits1=$(metric cellar_hits_total) miss1=$(metric cellar_misses_total)
  rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
  read -r done_ ok fail < <(sed -n 's/^requests: .* \([0-9]*\) done, \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1 \2 \3/p' <<<"$out") || true
  data=$(sed -n 's/^traffic: .*(\([0-9]*\)) data.*/\1/p' <<<"$out")
  # p99 of the measured requests' latencies (us; column 3 of --log-file), by histogram.
  p99=$(awk -F'\t' '$2 == 200 {h[$3 + 0]++; n++; if ($3 + 0 > mx) mx = $3 + 0}
        END {t = n * 0.99; for (i = 0; i <= mx; i++) if (i in h && (s += h[i]) >= t) {print i; exit}
             print 0}' "$tmp/h2load.log")
  dops=$((ops1 - ops0))
  # Correctness: all engine ops are hits for Get, DATA == ops x correct reply size.
  local want=$((dops * REPLY_SIZE[$op])) slack=$((c * m * REPLY_SIZE[$op])) err=""
  [[ -z "$rps" || -z "$done_" ]] && err="no h2load summary"
  [[ -z "$err" && $ok -ne $done_ ]] && err="$fail failed"
  [[ -z "$err" && $dops -lt $done_ ]] && err="engine ops $dops < responses $done_"
  [[ -z "$err" && $op == get && ( $((miss1 - miss0)) -ne 0 || $((hits1 - hits0)) -ne $dops ) ]] &&
    err="get: $((hits1 - hits0)) hits, $((miss1 - miss0)) misses of $dops ops"
  [[ -z "$err" && ( $data -gt $want || $data -lt $((want - slack)) ) ]] &&
    err="DATA $data bytes, want $want (- up to $slack) for $dops ops"
  ct=$(awk '{print $1 + $2}' "$tmp/client.time")
  add "$k" ops "${rps%.*}"; add "$k" p99 "$p99"
  add "$k" usop "$(awk -v t=$((t1 - t0)) -v n="$dops" 'BEGIN {printf "%.2f", n ? t * 10000 / n : 0}')"
  add "$k" scpu "$(awk -v t=$((t1 - t0)) -v w=$((w1 - w0)) 'BEGIN {printf "%d", t * 1e9 / w}')"
  add "$k" ccpu "$(awk -v t="$ct" -v w=$((w1 - w0)) 'BEGIN {printf "%d", t * 1e11 / w}')"
  printf '  %-8s %-5s %-4s grpc h2load: %8s req/s p99 %5sus  (%s responses, engine ops %s)%s\n' \
    "$mode" "${c}x$m" "$op" "${rps%.*}" "$p99" "$done_" "$dops" "${err:+  ERROR: $err}"
  [[ -n "$err" ]] && { BAD[$k]=1; NBAD=$((NBAD + 1)); echo "$out" | sed 's/^/    /' | tail -n 12; }
  return 0
}

# run_resp MODE C M OP: redis-benchmark (count-bound; N calibrated per workload to ~SECS s)
# or kvbench (time-bound, SECS + WARMUP)
declare -A RB_N
run_resp() {
  local mode=$1 c=$2 m=$3 op=$4 k="$1|$2x$3|$4|resp"
  local ops0 perr0 t0 w0 out ops1 perr1 t1 w1 rps p99 dops ct err=""
  ops0=$(metric 'cellar_cache_operations_total{tenant="default",cache="default"}')
  perr0=$(metric 'cellar_protocol_errors_total{protocol="resp"}')
  t0=$(cpu_ticks) w0=$(now_ns)
  if [[ $RESP_CLIENT == redis-benchmark ]]; then
    out=$(timeout $((SECS * 5 + 30)) /usr/bin/time -f '%U %S %e' -o "$tmp/client.time" "${client_cpu[@]}" \
      redis-benchmark -p "$rport" -t "$op" -d "$VALUE" -c "$c" -P "$m" -n "${RB_N[$c.$m.$op]}" --csv)
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    IFS=, read -r _ rps _ _ _ _ p99 _ < <(grep -i "^\"$op\"" <<<"$out") || true
    rps=${rps//\"/}; p99=$(awk -v v="${p99//\"/}" 'BEGIN {printf "%d", v * 1000}')
  else
    out=$(timeout $((SECS + WARMUP + 30)) /usr/bin/time -f '%U %S %e' -o "$tmp/client.time" \
      "${client_cpu[@]}" "$tmp/kvbench" -p "$rport" -m resp -o "$op" -c "$c" -d "$m" \
      -t "$SECS" -w "$WARMUP" -r 1 -v "$VALUE")
    rps=$(sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p' <<<"$out")
    p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$out")
    [[ $op == get && $(sed -n 's/.* misses=\([0-9]*\).*/\1/p' <<<"$out") != 0 ]] && err="misses"
  fi
  t1=$(cpu_ticks) w1=$(now_ns)
  ops1=$(metric 'cellar_cache_operations_total{tenant="default",cache="default"}')
  perr1=$(metric 'cellar_protocol_errors_total{protocol="resp"}')
  dops=$((ops1 - ops0))
  [[ -z "$rps" ]] && err="no client summary"
  [[ $perr1 -ne $perr0 ]] && err="$((perr1 - perr0)) RESP protocol errors"
  [[ $RESP_CLIENT == redis-benchmark && $dops -lt ${RB_N[$c.$m.$op]} ]] &&
    err="engine ops $dops < ${RB_N[$c.$m.$op]} requests"
  ct=$(awk '{print $1 + $2}' "$tmp/client.time")
  add "$k" ops "${rps%.*}"; add "$k" p99 "$p99"
  add "$k" usop "$(awk -v t=$((t1 - t0)) -v n="$dops" 'BEGIN {printf "%.2f", n ? t * 10000 / n : 0}')"
  add "$k" scpu "$(awk -v t=$((t1 - t0)) -v w=$((w1 - w0)) 'BEGIN {printf "%d", t * 1e9 / w}')"
  add "$k" ccpu "$(awk -v t="$ct" -v w=$((w1 - w0)) 'BEGIN {printf "%d", t * 1e11 / w}')"
  printf '  %-8s %-5s %-4s resp %s: %8s ops/s p99 %5sus  (engine ops %s)%s\n' \
    "$mode" "${c}x$m" "$op" "$RESP_CLIENT" "${rps%.*}" "$p99" "$dops" "${err:+  ERROR: $err}"
  [[ -n "$err" ]] && { BAD[$k]=1; NBAD=$((NBAD + 1)); echo "$out" | sed 's/^/    /' | tail -n 5; }
  return 0
}

# calibrate_rb C M OP: one discarded redis-benchmark run (also the RESP side's warm-up); the
# measured runs then get N = its rate x SECS requests.
calibrate_rb() {
  local c=$1 m=$2 op=$3 n rps
  n=$((c * m * 400)); ((n < 20000)) && n=20000
  rps=$(timeout 120 "${client_cpu[@]}" redis-benchmark -p "$rport" -t "$op" -d "$VALUE" -c "$c" \
    -P "$m" -n "$n" --csv | grep -i "^\"$op\"" | cut -d, -f2 | tr -d '"' || true)
  n=$(awk -v r="${rps:-0}" -v s="$SECS" 'BEGIN {n = int(r * s); if (n < 10000) n = 10000;
        if (n > 5000000) n = 5000000; print n}')
  RB_N[$c.$m.$op]=$n
}

bench_mode() {
  local mode=$1 pair c m op
  set_mode "$mode"
  start_cellar
  echo "== $mode: cellar --threads $THREADS on ${server_cpu[*]:-any CPU}, clients on" \
    "${client_cpu[*]:-any CPU}; h2load ${SECS}s + ${WARMUP}s warm-up, $RESP_CLIENT, $REPS reps," \
    "key '$KEY', ${VALUE}-byte values"
  verify_grpc
  for pair in $PAIRS; do
    c=${pair%x*} m=${pair#*x}
    for op in set get; do
      [[ $RESP_CLIENT == redis-benchmark ]] && calibrate_rb "$c" "$m" "$op"
      for _ in $(seq 1 "$REPS"); do
        run_grpc "$mode" "$c" "$m" "$op"
        run_resp "$mode" "$c" "$m" "$op"
      done
    done
  done
  stop_server
}

start_s=$(date +%s)
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; other work on the machine skews both protocols alike, as runs alternate)"
for mode in $MODES; do bench_mode "$mode"; done

echo
pflag=-P; [[ $RESP_CLIENT == kvbench ]] && pflag=-d
echo "gRPC = h2load -c C -m M on /cache_client.Scs/{Set,Get}; RESP = $RESP_CLIENT -c C $pflag M;" \
  "medians of $REPS runs"
printf '%-9s %-5s %-4s %11s %11s %6s %9s %9s %6s %13s %11s %11s %s\n' mode CxM op "gRPC ops/s" \
  "RESP ops/s" ratio "gRPC p99" "RESP p99" "p99 x" "srv us/op g/r" "srv %cpu g/r" "cli %cpu g/r" target
for mode in $MODES; do
  for pair in $PAIRS; do
    for op in set get; do
      g="$mode|$pair|$op|grpc" r="$mode|$pair|$op|resp"
      unset M; declare -A M
      for f in ops p99 usop scpu ccpu; do
        M[g$f]=$(median 0 <<<"${S["$g|$f"]:-}"); M[r$f]=$(median 0 <<<"${S["$r|$f"]:-}")
      done
      ratio=$(awk -v a="${M[gops]}" -v b="${M[rops]}" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')
      pr=$(awk -v a="${M[gp99]}" -v b="${M[rp99]}" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')
      verdict=$(awk -v r="$ratio" -v p="$pr" 'BEGIN {print (r + 0 >= 0.6 ? "ops ok" : "ops LOW") ", " (p + 0 < 2 && p != "n/a" ? "p99 ok" : "p99 HIGH")}')
      flag=""; [[ -n "${BAD[$g]:-}${BAD[$r]:-}" ]] && flag=" !errors"
      printf '%-9s %-5s %-4s %11s %11s %6s %7sus %7sus %6s %6s/%-6s %5s/%-5s %5s/%-5s %s%s\n' \
        "$mode" "$pair" "$op" "${M[gops]}" "${M[rops]}" "$ratio" "${M[gp99]}" "${M[rp99]}" "$pr" \
        "${M[gusop]}" "${M[rusop]}" "${M[gscpu]}" "${M[rscpu]}" "${M[gccpu]}" "${M[rccpu]}" "$verdict" "$flag"
    done
  done
done
echo "(target: gRPC/RESP ops >= 0.6, p99 x < 2; srv us/op = server CPU time per engine op over the" \
  "whole run; %cpu of one core; total $(( $(date +%s) - start_s ))s, load average at end" \
  "$(cut -d' ' -f1-3 /proc/loadavg))"
if ((NBAD)); then
  echo "grpc_vs_resp: $NBAD runs flagged with errors (see above)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
((SMOKE)) && echo "1 passed, 0 failed"
exit 0
