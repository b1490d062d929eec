#!/usr/bin/env bash
# Benchmark: the web front-end on Cellar's API port (HTTP/1.1, web.h) against the same work
# over RESP and gRPC on the same Cellar (release build), in one run.
#   tests/bench/web.sh            (from anywhere; needs build/release/src/bin/cellar, cc,
#                                  libnghttp2-dev, h2load (nghttp2-client), redis-cli, curl,
#                                  taskset, /usr/bin/time; raises ulimit -n to 30000 or to the
#                                  hard limit, which must be at least the largest N + 100)
# Env: CELLAR_BIN, BENCH_RUNS (runs per row and protocol, default 3; the tables show medians),
#      BENCH_SECS / BENCH_WARMUP (measured / unmeasured whole seconds per run, default 5 / 1),
#      BENCH_ONLY=kv|fanout|memory (one part), BENCH_CONNS (connections of the key-value
#      part, default 50, one request in flight on each), BENCH_SUBS (subscriber counts N,
#      default "1000 10000"), BENCH_RATES (deliveries/s offered, default "100000 1000000":
#      the publisher sends RATE / N messages/s), BENCH_GOAL (1, the default: also the issue's
#      goal row, 10,000 subscribers of a 1,000 msg/s topic = 10M deliveries/s offered; 0: not),
#      BENCH_DRAIN (seconds grpcsub waits after a run for what is still owed, default 10),
#      BENCH_IDLE_SUBS (subscribers in the memory test, default 10000), BENCH_THREADS
#      (cellar --threads, default 1), KVBENCH_SRC (default ../shared/tools/kvbench.c).
# Default run: about 8 minutes (BENCH_RUNS=1: 3).
#
# Servers on CPU 0 (cellar --threads 1), load generators on CPU 1, one at a time; the
# protocols alternate within each run (their order rotates from run to run), so whatever
# else the machine does falls on all of them alike.
#
# Part 1, key-value (BENCH_ONLY=kv): 100-byte values, one key ("key:000000000000", on every
# protocol, as grpc_vs_resp.sh: h2load sends one body), C connections with one request in
# flight on each, SECS measured after WARMUP:
#   web   tests/bench/webkv.c (built here): HTTP/1.1 keep-alive GET /cache/default?key=K and
#         PUT /cache/default?key=K&ttl_seconds=3600 (Momento's HTTP API).
#   RESP  ../shared/tools/kvbench -c C -d 1 -r 1: GET / SET on the RESP port.
#   gRPC  h2load -c C -m 1: cache_client.Scs/Get and /Set (ttl 3600 s) over h2c, bodies by
#         tests/bench/grpc/grpc_body.py, as grpc_vs_resp.sh.
#   PUT runs before GET, so every GET is a hit. Checks: web and RESP no errors and no misses
#   (webkv: GET 200 with the 100-byte value, PUT 204; anything else is an error); gRPC every
#   h2load request succeeded, /metrics counted no miss and h2load's DATA bytes equal
#   requests x the size of a correct reply (an error reply carries no message). Before the
#   runs curl does one PUT and GET on the HTTP API and one Set and Get over gRPC.
#   Columns: ops/s, p50 / p99 in us (webkv and kvbench: per request, send -> answer; h2load:
#   its --log-file), "srv%" the server's CPU over the client's whole run (warm-up included)
#   and "cli%" the load generator's, in % of one core.
#
# Part 2, fan-out (BENCH_ONLY=fanout): N subscribers of one topic, 100-byte messages whose
# first 20 bytes are the send time (CLOCK_MONOTONIC ns), published at a fixed rate (RATE / N
# messages/s, open loop, up to 1000 in flight) over RESP PUBLISH on the RESP port by
# tests/bench/grpcsub.c for every kind of subscriber, so only the subscribers differ:
#   ws    grpcsub -m ws: N WebSockets (GET /topics/default/ch:0/ws), one per connection, as
#         N browsers; items are JSON text frames.
#   gRPC  grpcsub -m grpc: N Subscribe streams, 100 per h2c connection (as the Momento SDK).
#   RESP  grpcsub -m resp: N connections, SUBSCRIBE ch:0 each.
# (topics.sh's fixed-rate rows, with the publisher over RESP here for all three.) After each
# run grpcsub stops publishing and waits up to BENCH_DRAIN s for every delivery PUBLISH's
# answers promise, so a lost message shows as undelivered. Lost / duplicated counts are by
# topic_sequence_number (ws and gRPC; RESP has none). A run that lost, duplicated or owed
# messages, saw errors (a subscriber cut off for falling behind, say), or whose fan-out in
# the window was off N by more than 5%, keeps its figures and is flagged "!" with a note.
# Columns: deliveries/s (all subscribers together), p50/p99/p99.9 publish-to-receive in us.
#
# Part 3, memory (BENCH_ONLY=memory): a fresh server per case, VmRSS before and after
# grpcsub -i connects BENCH_IDLE_SUBS idle subscribers (3 s after the last confirmation),
# divided by the subscribers: ws (one connection each), gRPC (100 streams per connection),
# gRPC with one stream per connection (what a per-subscriber connection costs on the API
# port), RESP. Kernel socket buffers are not in it.
#
# Targets (the issue): under 10 KiB per idle WebSocket subscriber; 10,000 WebSocket
# subscribers of a 1,000 msg/s topic with p99 under 50 ms (the goal row; 10M deliveries/s,
# likely beyond a 2-core machine for any server: the row reports what is reached). The web
# key-value rows are reported against RESP and gRPC, with no threshold.
# --smoke: one 1-second run of each part's rows with 50 subscribers at 10,000 deliveries/s
# offered, 200 idle subscribers, no goal row (the test suite runs it as bench.web.smoke);
# exits 1 if a check failed: a run's tool failed or printed no figures, zero ops or
# deliveries, errors, misses, lost / duplicated / owed messages, or no memory figure.
set -euo pipefail
SMOKE=0
[[ ${1:-} == --smoke ]] && SMOKE=1
if ((SMOKE)); then
  : "${BENCH_RUNS:=1}" "${BENCH_SECS:=1}" "${BENCH_WARMUP:=0}" "${BENCH_SUBS:=50}"
  : "${BENCH_RATES:=10000}" "${BENCH_DRAIN:=3}" "${BENCH_IDLE_SUBS:=200}" "${BENCH_GOAL:=0}"
fi
CELLAR_LIMITS=${BENCH_CELLAR_LIMITS:-requests_per_second=1000000000,read_bytes_per_second=1tib,write_bytes_per_second=1tib,publish_per_second=1000000000}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
CELLAR_BIN=${CELLAR_BIN:-$repo/build/release/src/bin/cellar}
KVBENCH_SRC=${KVBENCH_SRC:-$repo/../shared/tools/kvbench.c}
BODY=$here/grpc/grpc_body.py
PY=/usr/bin/python3
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECS:-5}
WARMUP=${BENCH_WARMUP:-1}
ONLY=${BENCH_ONLY:-}
CONNS=${BENCH_CONNS:-50}
SUBS=${BENCH_SUBS:-1000 10000}
RATES=${BENCH_RATES:-100000 1000000}
GOAL=${BENCH_GOAL:-1}
DRAIN=${BENCH_DRAIN:-10}
IDLE_SUBS=${BENCH_IDLE_SUBS:-10000}
THREADS=${BENCH_THREADS:-1}
VALUE=100
PAYLOAD=100
TTL_S=3600
KEY='key:000000000000'
GOAL_N=10000 GOAL_RATE=10000000
RATE_INFLIGHT=1000
CLK_TCK=$(getconf CLK_TCK)

case $ONLY in
  "" | kv | fanout | memory) ;;
  *) echo "BENCH_ONLY must be kv, fanout or memory, not '$ONLY'" >&2; exit 2 ;;
esac
for tool in cc curl h2load redis-cli awk taskset timeout; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "missing: /usr/bin/time" >&2; exit 2; }
[[ -f /usr/include/nghttp2/nghttp2.h ]] || { echo "missing: libnghttp2-dev" >&2; exit 2; }
[[ -f "$KVBENCH_SRC" ]] || { echo "missing: $KVBENCH_SRC (set KVBENCH_SRC)" >&2; exit 2; }
[[ -x "$CELLAR_BIN" ]] || { echo "no cellar binary at $CELLAR_BIN (build the release preset)" >&2; exit 2; }

max_subs=$IDLE_SUBS
for n in $SUBS; do ((n > max_subs)) && max_subs=$n; done
((GOAL && GOAL_N > max_subs)) && max_subs=$GOAL_N
ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < max_subs + 100)); then
  echo "ulimit -n is $(ulimit -n): $max_subs subscribers need $((max_subs + 100))" >&2; exit 2
fi

tmp=$(mktemp -d /tmp/cellar-web-bench.XXXXXX)
# A private copy: a rebuild during the run changes nothing. A copy taken while the linker
# writes the binary does not run: try again for up to a minute.
for _ in $(seq 1 30); do
  cp "$CELLAR_BIN" "$tmp/cellar" 2>/dev/null && "$tmp/cellar" --help >/dev/null 2>&1 && break
  rm -f "$tmp/cellar"; echo "waiting for a runnable $CELLAR_BIN" >&2; sleep 2
done
[[ -x "$tmp/cellar" ]] || { echo "cannot run a copy of $CELLAR_BIN" >&2; exit 2; }
cc -O2 -o "$tmp/kvbench" "$KVBENCH_SRC" || { echo "cannot build $KVBENCH_SRC" >&2; exit 2; }
cc -O2 -Wall -Wextra -o "$tmp/webkv" "$here/webkv.c" || { echo "cannot build webkv.c" >&2; exit 2; }
cc -O2 -Wall -Wextra -o "$tmp/grpcsub" "$here/grpcsub.c" -lnghttp2 ||
  { echo "cannot build grpcsub.c" >&2; exit 2; }

if [[ $(nproc) -ge 2 ]]; then
  server_cpu=(taskset -c 0); client_cpu=(taskset -c 1)
else
  server_cpu=(); client_cpu=()
fi

all_pids=()
SPID="" RPORT="" APORT="" MPORT=""
cleanup() {
  local rc=$?
  trap '' PIPE
  stop_all
  if [[ $rc -ne 0 && -s "$tmp/cellar.log" ]]; then
    { echo "--- tail of $tmp/cellar.log"; tail -n 20 "$tmp/cellar.log"; } >&2 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

field() {  # field KEY LINE: the value of KEY=... in a key=value line
  awk -v k="$1" '{for (i = 1; i <= NF; i++) {n = index($i, "="); if (substr($i, 1, n - 1) == k) {print substr($i, n + 1); exit}}}' <<<"$2"
}
json_port() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

start_cellar() {  # -> SPID, RPORT, APORT, MPORT
  local data=$tmp/cellar-data
  stop_all
  rm -rf "$data"; mkdir -p "$data"
  "${server_cpu[@]}" "$tmp/cellar" serve --data-dir "$data" --resp-port 0 --admin-port 0 \
    --api-port 0 --memory-limit 2gb --threads "$THREADS" --dev-no-auth --log-level warn \
    --max-connections $((max_subs + 1000)) --default-limits "$CELLAR_LIMITS" \
    >"$tmp/cellar.log" 2>&1 &
  SPID=$!
  all_pids+=("$SPID")
  for _ in $(seq 1 200); do
    [[ -s "$data/ports.json" ]] && break
    kill -0 "$SPID" 2>/dev/null || { cat "$tmp/cellar.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s "$data/ports.json" ]] || { echo "cellar: no ports.json" >&2; exit 1; }
  RPORT=$(json_port "$data/ports.json" resp)
  APORT=$(json_port "$data/ports.json" api)
  MPORT=$(json_port "$data/ports.json" admin)
  wait_pong "$RPORT"
}
metric() {  # metric NAME -> value (0 if absent)
  timeout 10 curl -s "http://127.0.0.1:$MPORT/metrics" |
    awk -v n="$1" '$1 == n {v = $2} END {printf "%d", v + 0}'
}
short() { awk -v n="$1" 'BEGIN {if (n % 1000000 == 0) print n / 1000000 "M"; else if (n % 1000 == 0) print n / 1000 "k"; else print n}'; }
# rotate RUN A B C: the protocols in this run's order (each goes first once in three runs)
rotate() {
  local r=$1; shift
  local a=("$@") i n=$#
  for ((i = 0; i < n; i++)); do printf '%s ' "${a[$(((i + r) % n))]}"; done
}

declare -A S NOTE ERR   # S["key|field"]="v1 v2 ..."; NOTE/ERR["key"]: the first problem
FAILS=0  # runs with a problem the smoke mode fails on
flag() {  # flag KEY TEXT: a run with a problem
  [[ -z "${NOTE[$1]:-}" ]] && NOTE[$1]=$2
  FAILS=$((FAILS + 1))
  return 0
}

# ---- Part 1: key-value ------------------------------------------------------------------
GRPC_HDR=(-H 'content-type: application/grpc' -H 'te: trailers' -H 'cache: default')
declare -A REPLY_SIZE
verify_kv() {
  local out op Op hdr
  out=$(timeout 10 curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "$(printf 'x%.0s' $(seq 1 $VALUE))" \
    "http://127.0.0.1:$APORT/cache/default?key=$KEY&ttl_seconds=$TTL_S")
  [[ $out == 204 ]] || { echo "HTTP API PUT answered $out, want 204" >&2; exit 1; }
  out=$(timeout 10 curl -s -w ' %{http_code}' "http://127.0.0.1:$APORT/cache/default?key=$KEY")
  [[ $out == "$(printf 'x%.0s' $(seq 1 $VALUE)) 200" ]] || { echo "HTTP API GET answered '$out'" >&2; exit 1; }
  "$PY" "$BODY" set "$KEY" "$VALUE" $((TTL_S * 1000)) >"$tmp/set.bin"
  "$PY" "$BODY" get "$KEY" >"$tmp/get.bin"
  for op in set get; do
    Op=${op^}
    timeout 10 curl -s --http2-prior-knowledge -D "$tmp/$op.hdr" "${GRPC_HDR[@]}" -H 'authorization;' \
      --data-binary @"$tmp/$op.bin" -o "$tmp/$op.reply" "http://127.0.0.1:$APORT/cache_client.Scs/$Op"
    hdr=$(tr -d '\r' <"$tmp/$op.hdr")
    grep -qx 'grpc-status: 0' <<<"$hdr" || { echo "gRPC $Op: no grpc-status 0: $hdr" >&2; exit 1; }
    if [[ $op == set ]]; then "$PY" "$BODY" check-set <"$tmp/$op.reply"
    else "$PY" "$BODY" check-get "$VALUE" <"$tmp/$op.reply"; fi
    REPLY_SIZE[$op]=$(stat -c %s "$tmp/$op.reply")
  done
  echo "  check: curl PUT/GET /cache/default (204, 200 with the value), gRPC Set/Get (grpc-status 0, Ok, Hit)"
}

# kv_run OP PROTO: one run; figures into S["kv|OP|PROTO|..."]
kv_run() {
  local op=$1 proto=$2 k="kv|$1|$2" out rc=0 t0 t1 ct wall ops p50 p99 err="" miss0 miss1 hits0 hits1
  t0=$(cpu_ticks "$SPID")
  case $proto in
    web)
      out=$(timeout $((SECS + WARMUP + 60)) /usr/bin/time -f '%U %S %e' -o "$tmp/client.time" \
        "${client_cpu[@]}" "$tmp/webkv" -p "$APORT" -o "$op" -c "$CONNS" -t "$SECS" -w "$WARMUP" \
        -r 1 -v "$VALUE" -T "$TTL_S" 2>"$tmp/err") || rc=$?
      ops=$(field ops_per_s "$out"); p50=$(field p50_us "$out"); p99=$(field p99_us "$out")
      local e m b c
      e=$(field errors "$out"); m=$(field misses "$out"); b=$(field bad_len "$out"); c=$(field closed "$out")
      [[ ${e:-x} == 0 && ${m:-x} == 0 && ${b:-x} == 0 && ${c:-x} == 0 ]] ||
        err="errors=$e misses=$m bad_len=$b closed=$c $(head -c 200 "$tmp/err")"
      ;;
    resp)
      out=$(timeout $((SECS + WARMUP + 60)) /usr/bin/time -f '%U %S %e' -o "$tmp/client.time" \
        "${client_cpu[@]}" "$tmp/kvbench" -p "$RPORT" -m resp -o "$op" -c "$CONNS" -d 1 \
        -t "$SECS" -w "$WARMUP" -r 1 -v "$VALUE" 2>"$tmp/err") || rc=$?
      ops=$(field ops_per_s "$out"); p50=$(field p50_us "$out"); p99=$(field p99_us "$out")
      [[ $(field misses "$out") == 0 ]] || err="misses=$(field misses "$out")"
      ;;
    grpc)
      local Op=${op^} done_ ok data want slack dops ops0 ops1
      ops0=$(metric 'cellar_cache_operations_total{tenant="default",cache="default"}')
      hits0=$(metric cellar_hits_total) miss0=$(metric cellar_misses_total)
      out=$(timeout $((SECS + WARMUP + 60)) /usr/bin/time -f '%U %S %e' -o "$tmp/client.time" \
        "${client_cpu[@]}" h2load -t 1 -c "$CONNS" -m 1 -D "$SECS" --warm-up-time "$WARMUP" \
        "${GRPC_HDR[@]}" -d "$tmp/$op.bin" --log-file "$tmp/h2load.log" \
        "http://127.0.0.1:$APORT/cache_client.Scs/$Op" 2>&1) || rc=$?
      ops1=$(metric 'cellar_cache_operations_total{tenant="default",cache="default"}')
      hits1=$(metric cellar_hits_total) miss1=$(metric cellar_misses_total)
      ops=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out"); ops=${ops%.*}
      read -r done_ ok < <(sed -n 's/^requests: .* \([0-9]*\) done, \([0-9]*\) succeeded.*/\1 \2/p' <<<"$out") || true
      data=$(sed -n 's/^traffic: .*(\([0-9]*\)) data.*/\1/p' <<<"$out")
      read -r p50 p99 < <(awk -F'\t' '$2 == 200 {h[$3 + 0]++; n++; if ($3 + 0 > mx) mx = $3 + 0}
        END {a = n * 0.5; b = n * 0.99; for (i = 0; i <= mx; i++) if (i in h) {s += h[i];
             if (!p50 && s >= a) p50 = i; if (s >= b) {print p50 + 0, i; exit}} print "0 0"}' "$tmp/h2load.log")
      dops=$((ops1 - ops0))
      want=$((dops * REPLY_SIZE[$op])) slack=$((CONNS * REPLY_SIZE[$op]))
      if [[ -z "$ops" || -z "${done_:-}" ]]; then err="no h2load summary"
      elif [[ $ok -ne $done_ ]]; then err="$((done_ - ok)) of $done_ requests failed"
      elif ((dops < done_)); then err="engine ops $dops < responses $done_"
      elif [[ $op == get ]] && ((miss1 != miss0 || hits1 - hits0 != dops)); then
        err="get: $((hits1 - hits0)) hits, $((miss1 - miss0)) misses of $dops ops"
      elif ((data > want || data < want - slack)); then err="DATA $data bytes, want $want (- up to $slack)"
      fi
      ;;
  esac
  t1=$(cpu_ticks "$SPID")
  if [[ $rc -ne 0 || -z "$ops" ]]; then
    flag "$k" "$proto exit $rc: $(tr '\n' ' ' <"$tmp/err" 2>/dev/null | head -c 160)"
    printf '  %-4s %-5s ERROR: %s\n' "$op" "$proto" "${NOTE[$k]}"
    return 0
  fi
  ((${ops%.*} > 0)) || err="no ops ${err}"
  [[ -n "$err" ]] && flag "$k" "$err"
  read -r ct wall < <(awk '{print $1 + $2, $3}' "$tmp/client.time")
  S["$k|ops"]+="${ops%.*} "; S["$k|p50"]+="$p50 "; S["$k|p99"]+="$p99 "
  S["$k|scpu"]+="$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v w="$wall" 'BEGIN {printf "%d", (w > 0 ? t * 100 / hz / w : 0)}') "
  S["$k|ccpu"]+="$(awk -v t="$ct" -v w="$wall" 'BEGIN {printf "%d", (w > 0 ? t * 100 / w : 0)}') "
  printf '  %-4s %-5s %8s ops/s  p50 %5s p99 %5s us%s\n' "$op" "$proto" "${ops%.*}" "$p50" "$p99" "${err:+  ERROR: $err}"
}

kv_part() {
  local rep op proto
  start_cellar
  echo "== key-value: cellar --threads $THREADS on ${server_cpu[*]:-any CPU}, clients on" \
    "${client_cpu[*]:-any CPU}; $CONNS connections x 1 in flight, ${SECS}s + ${WARMUP}s warm-up," \
    "$RUNS runs, key '$KEY', ${VALUE}-byte values"
  verify_kv
  for rep in $(seq 1 "$RUNS"); do
    for op in set get; do
      for proto in $(rotate "$rep" web resp grpc); do kv_run "$op" "$proto"; done
    done
  done
  stop_all
}

# ---- Part 2: fan-out --------------------------------------------------------------------
# fan_run PROTO N RATE: one grpcsub run (publisher: RESP PUBLISH at RATE / N messages/s)
declare -A DEAD  # DEAD["proto"]: its probe failed; its rows are not run
fan_run() {
  local proto=$1 n=$2 rate=$3 k="fan|$1|$2|$3" port=$APORT out rc=0 d e v note="" fan
  [[ -n "${DEAD[$proto]:-}" ]] && return 0
  [[ $proto == resp ]] && port=$RPORT
  out=$(timeout $((SECS + WARMUP + DRAIN + 200)) "${client_cpu[@]}" "$tmp/grpcsub" -p "$port" \
    -m "$proto" -q resp -P "$RPORT" -k 100 -s "$n" -c 1 -d "$RATE_INFLIGHT" \
    -r "$(awk -v r="$rate" -v n="$n" 'BEGIN {printf "%g", r / n}')" -t "$SECS" -w "$WARMUP" \
    -v "$PAYLOAD" -D "$DRAIN" -S 120 -C "$SPID" 2>"$tmp/err") || rc=$?
  d=$(field deliveries_per_s "$out")
  if [[ $rc -ne 0 || -z "$d" ]]; then
    flag "$k" "grpcsub exit $rc: $(tr '\n' ' ' <"$tmp/err" | head -c 200)"
    ERR[$k]=1
    printf '  %-5s %6s @%-5s ERROR: %s\n' "$proto" "$(short "$n")" "$(short "$rate")/s" "${NOTE[$k]}"
    return 0
  fi
  for e in pub_errors sub_errors lost dups undelivered excess; do
    v=$(field "$e" "$out")
    [[ -z "$v" || "$v" == 0 ]] || note+="$e=$v "
  done
  fan=$(field fanout "$out")
  awk -v f="$fan" -v n="$n" 'BEGIN {exit !(f >= 0.95 * n && f <= 1.05 * n)}' ||
    note+="fan-out $fan of $n in the window "
  ((${d%.*} > 0)) || note+="no deliveries "
  [[ -n "$note" && -s "$tmp/err" ]] && note+="($(tr '\n' ' ' <"$tmp/err" | head -c 150))"
  if [[ -n "$note" ]]; then
    [[ -z "${NOTE[$k]:-}" ]] && NOTE[$k]=$note
    FLAGGED[$k]=$(( ${FLAGGED[$k]:-0} + 1 ))
  fi
  S["$k|d"]+="${d%.*} "; S["$k|p50"]+="$(field p50_us "$out") "; S["$k|p99"]+="$(field p99_us "$out") "
  S["$k|p999"]+="$(field p999_us "$out") "; S["$k|scpu"]+="$(field srv_cpu_pct "$out") "
  S["$k|ccpu"]+="$(field cpu_pct "$out") "; S["$k|late"]+="$(field late_pubs "$out") "
  printf '  %-5s %6s @%-5s %9s deliveries/s  p50 %7s p99 %8s p99.9 %8s us  lost %s dups %s  srv %3s%% cli %3s%%  %s\n' \
    "$proto" "$(short "$n")" "$(short "$rate")/s" "${d%.*}" "$(field p50_us "$out")" \
    "$(field p99_us "$out")" "$(field p999_us "$out")" "$(field lost "$out")" "$(field dups "$out")" \
    "$(field srv_cpu_pct "$out")" "$(field cpu_pct "$out")" "$note"
}
declare -A FLAGGED

probe() {  # probe PROTO: 4 subscribers, a second of publishing
  local proto=$1 port=$APORT out rc=0
  [[ $proto == resp ]] && port=$RPORT
  out=$(timeout 60 "${client_cpu[@]}" "$tmp/grpcsub" -p "$port" -m "$proto" -q resp -P "$RPORT" \
    -s 4 -d 1 -t 1 -w 0 -D 3 -S 15 2>"$tmp/err") || rc=$?
  if [[ $rc -ne 0 || -z "$(field deliveries_per_s "$out")" || "$(field deliveries_per_s "$out")" == 0 ||
        "$(field sub_errors "$out")" != 0 || "$(field undelivered "$out")" != 0 ]]; then
    DEAD[$proto]="probe failed (exit $rc): $(tr '\n' ' ' <"$tmp/err" | head -c 200) $out"
    flag "probe|$proto" "${DEAD[$proto]}"
    echo "  probe $proto: ${DEAD[$proto]}"
  else
    echo "  probe $proto: ok"
  fi
}

fan_part() {
  local rep n rate proto
  start_cellar
  echo "== fan-out: 1 topic, ${PAYLOAD}-byte messages published over RESP at RATE / N msgs/s," \
    "${SECS}s + ${WARMUP}s warm-up, up to ${DRAIN}s drain, $RUNS runs; rates $RATES deliveries/s" \
    "$( ((GOAL)) && echo "and the goal row ($(short $GOAL_N) subscribers @$(short $GOAL_RATE)/s)")"
  for proto in ws grpc resp; do probe "$proto"; done
  for rep in $(seq 1 "$RUNS"); do
    for n in $SUBS; do
      for rate in $RATES; do
        for proto in $(rotate "$rep" ws grpc resp); do fan_run "$proto" "$n" "$rate"; done
      done
    done
    if ((GOAL)); then
      for proto in $(rotate "$rep" ws grpc resp); do fan_run "$proto" "$GOAL_N" "$GOAL_RATE"; done
    fi
  done
  stop_all
}

# ---- Part 3: memory ---------------------------------------------------------------------
declare -A MEM MEMERR
mem_case() {  # mem_case NAME PROTO STREAMS_PER_CONN
  local name=$1 proto=$2 k=$3 port rss0 rss1 cpid ready=""
  start_cellar
  port=$APORT; [[ $proto == resp ]] && port=$RPORT
  sleep 1
  rss0=$(rss_kb "$SPID")
  timeout 600 "${client_cpu[@]}" "$tmp/grpcsub" -p "$port" -m "$proto" -k "$k" -s "$IDLE_SUBS" \
    -i 300 -S 120 >"$tmp/idle.out" 2>"$tmp/idle.err" &
  cpid=$!
  all_pids+=("$cpid")
  for _ in $(seq 1 1300); do
    grep -q '^ready' "$tmp/idle.out" 2>/dev/null && { ready=1; break; }
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$ready" ]]; then
    MEMERR[$name]="subscribers not set up: $(tr '\n' ' ' <"$tmp/idle.err" | head -c 200)"
    flag "mem|$name" "${MEMERR[$name]}"
    echo "  $name: ${MEMERR[$name]}"
    stop_all; return 0
  fi
  sleep 3  # a heartbeat round and any deferred frees
  rss1=$(rss_kb "$SPID")
  kill -0 "$cpid" 2>/dev/null || { MEMERR[$name]="the idle client exited early: $(head -c 200 "$tmp/idle.err")"; flag "mem|$name" "${MEMERR[$name]}"; }
  stop_all
  if [[ -z "$rss0" || -z "$rss1" ]]; then
    MEMERR[$name]="no VmRSS"; flag "mem|$name" "no VmRSS"; return 0
  fi
  MEM[$name]=$(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE_SUBS" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}')
  echo "  $name: $(head -n 1 "$tmp/idle.out"); RSS $rss0 kB -> $rss1 kB (${MEM[$name]} B per subscriber)"
}
mem_part() {
  echo "== memory: a fresh cellar per case, $IDLE_SUBS idle subscribers"
  mem_case ws ws 1
  mem_case grpc grpc 100
  mem_case grpc-1/conn grpc 1
  mem_case resp resp 1
}

# ---- Run and report ---------------------------------------------------------------------
start_s=$(date +%s)
echo "web front-end benchmark: $(nproc) CPUs, ulimit -n $(ulimit -n), load average at start" \
  "$(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every protocol alike, as runs alternate)"
[[ -z $ONLY || $ONLY == kv ]] && kv_part
[[ -z $ONLY || $ONLY == fanout ]] && fan_part
[[ -z $ONLY || $ONLY == memory ]] && mem_part

echo
declare -A M
med() { median <<<"${S["$1"]:-}"; }
if [[ -z $ONLY || $ONLY == kv ]]; then
  echo "key-value: $CONNS connections x 1 in flight, ${VALUE}-byte values, medians of $RUNS runs;" \
    "web = HTTP API (webkv), RESP = kvbench, gRPC = h2load; latency in us; ! = see notes"
  printf '%-4s %10s %10s %10s %7s %7s %17s %17s %11s %11s %s\n' op "web ops/s" "RESP ops/s" \
    "gRPC ops/s" web/RESP web/gRPC "p50 web/RESP/gRPC" "p99 web/RESP/gRPC" "srv% w/r/g" "cli% w/r/g" notes
  for op in set get; do
    notes=""
    for p in web resp grpc; do
      for f in ops p50 p99 scpu ccpu; do M[$p$f]=$(med "kv|$op|$p|$f"); done
      [[ -n "${NOTE["kv|$op|$p"]:-}" ]] && notes+="$p: ${NOTE["kv|$op|$p"]:0:150} "
    done
    printf '%-4s %10s %10s %10s %7s %7s %17s %17s %11s %11s %s\n' "${op^^}$([[ -n $notes ]] && echo '!')" \
      "${M[webops]}" "${M[respops]}" "${M[grpcops]}" "$(ratio "${M[webops]}" "${M[respops]}")" \
      "$(ratio "${M[webops]}" "${M[grpcops]}")" "${M[webp50]}/${M[respp50]}/${M[grpcp50]}" \
      "${M[webp99]}/${M[respp99]}/${M[grpcp99]}" "${M[webscpu]}/${M[respscpu]}/${M[grpcscpu]}" \
      "${M[webccpu]}/${M[respccpu]}/${M[grpcccpu]}" "$notes"
  done
  echo
fi
fan_rows() {
  local n rate
  for n in $SUBS; do for rate in $RATES; do echo "$n $rate"; done; done
  ((GOAL)) && echo "$GOAL_N $GOAL_RATE"
  return 0
}
if [[ -z $ONLY || $ONLY == fanout ]]; then
  echo "fan-out: 1 topic, publisher RESP PUBLISH at RATE/N msgs/s; deliveries/s, latency" \
    "publish-to-receive in us, medians of $RUNS runs; ! = runs flagged (see notes)"
  printf '%-14s %10s %10s %10s %7s %7s %23s %23s %23s %12s %s\n' "N @offered" "ws msg/s" "gRPC msg/s" \
    "RESP msg/s" ws/gRPC ws/RESP "ws p50/p99/p99.9" "gRPC p50/p99/p99.9" "RESP p50/p99/p99.9" \
    "srv% w/g/r" notes
  while read -r n rate; do
    notes="" mark=""
    for p in ws grpc resp; do
      k="fan|$p|$n|$rate"
      for f in d p50 p99 p999 scpu; do M[$p$f]=$(med "$k|$f"); done
      if [[ -n "${NOTE[$k]:-}" ]]; then
        notes+="$p ${FLAGGED[$k]:-all} of $RUNS: ${NOTE[$k]:0:160} "; mark="!"
      fi
    done
    printf '%-14s %10s %10s %10s %7s %7s %23s %23s %23s %12s %s\n' "$(short "$n") @$(short "$rate")/s$mark" \
      "${M[wsd]}" "${M[grpcd]}" "${M[respd]}" "$(ratio "${M[wsd]}" "${M[grpcd]}")" "$(ratio "${M[wsd]}" "${M[respd]}")" \
      "${M[wsp50]}/${M[wsp99]}/${M[wsp999]}" "${M[grpcp50]}/${M[grpcp99]}/${M[grpcp999]}" \
      "${M[respp50]}/${M[respp99]}/${M[respp999]}" "${M[wsscpu]}/${M[grpcscpu]}/${M[respscpu]}" "$notes"
  done < <(fan_rows)
  echo
fi
if [[ -z $ONLY || $ONLY == memory ]]; then
  echo "memory per idle subscriber ($IDLE_SUBS subscribers; VmRSS delta / subscribers, bytes)"
  for c in ws grpc grpc-1/conn resp; do printf '  %-12s %8s %s\n' "$c" "${MEM[$c]:--}" "${MEMERR[$c]:-}"; done
  echo
fi

# Targets.
if [[ -z $ONLY || $ONLY == memory ]]; then
  v=${MEM[ws]:-}
  if [[ -z $v ]]; then echo "target memory per idle WebSocket subscriber: no figure"
  elif ((v < 10240)); then echo "target memory per idle WebSocket subscriber: PASS ($v B < 10240 B)"
  else echo "target memory per idle WebSocket subscriber: FAIL ($v B >= 10240 B)"; fi
fi
if ((GOAL)) && [[ -z $ONLY || $ONLY == fanout ]]; then
  k="fan|ws|$GOAL_N|$GOAL_RATE"
  d=$(med "$k|d"); p=$(med "$k|p99")
  if [[ $d == - ]]; then echo "target $(short $GOAL_N) WebSocket subscribers @$(short $GOAL_RATE)/s: no figures"
  elif [[ -z "${NOTE[$k]:-}" ]] && awk -v d="$d" -v p="$p" -v r="$GOAL_RATE" 'BEGIN {exit !(d >= 0.95 * r && p < 50000)}'; then
    echo "target $(short $GOAL_N) WebSocket subscribers @$(short $GOAL_RATE)/s: PASS ($d deliveries/s, p99 $p us)"
  else
    echo "target $(short $GOAL_N) WebSocket subscribers @$(short $GOAL_RATE)/s: FAIL ($d of $GOAL_RATE deliveries/s," \
      "p99 $p us; want >= 95% delivered, p99 < 50000 us, nothing lost$([[ -n "${NOTE[$k]:-}" ]] && echo "; flagged: ${NOTE[$k]:0:120}"))"
  fi
fi
echo "(total $(( $(date +%s) - start_s ))s, load average at end $(cut -d' ' -f1-3 /proc/loadavg))"

if ((SMOKE)); then
  bad=$FAILS
  for k in "${!FLAGGED[@]}"; do
    echo "smoke: $k: ${NOTE[$k]}" >&2; bad=$((bad + 1))
  done
  for k in "${!NOTE[@]}"; do [[ -n "${FLAGGED[$k]:-}" ]] || echo "smoke: $k: ${NOTE[$k]}" >&2; done
  # Every row must have figures.
  if [[ -z $ONLY || $ONLY == kv ]]; then
    for op in set get; do for p in web resp grpc; do
      [[ $(med "kv|$op|$p|ops") =~ ^[1-9][0-9]*$ ]] || { echo "smoke: no $op figures for $p" >&2; bad=$((bad + 1)); }
    done; done
  fi
  if [[ -z $ONLY || $ONLY == fanout ]]; then
    while read -r n rate; do for p in ws grpc resp; do
      [[ $(med "fan|$p|$n|$rate|d") =~ ^[1-9][0-9]*$ ]] ||
        { echo "smoke: no fan-out figures for $p $n @$rate" >&2; bad=$((bad + 1)); }
    done; done < <(fan_rows)
  fi
  if [[ -z $ONLY || $ONLY == memory ]]; then
    for c in ws grpc grpc-1/conn resp; do
      [[ ${MEM[$c]:-} =~ ^-?[0-9]+$ ]] || { echo "smoke: no memory figure for $c" >&2; bad=$((bad + 1)); }
    done
  fi
  if ((bad)); then echo "0 passed, 1 failed"; exit 1; fi
  echo "1 passed, 0 failed"
fi
