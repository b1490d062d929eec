#!/usr/bin/env bash
# Benchmark: topics fan-out (issue 6). One publisher, N subscribers of one topic, 100-byte
# messages: Cellar (release build; RESP SUBSCRIBE and gRPC Pubsub/Subscribe) against Debian's
# redis-server (RESP) in the same run, and memory per idle subscriber.
#   tests/bench/topics.sh         (from anywhere; needs build/release/src/bin/cellar,
#                                  redis-server, redis-cli, cc, libnghttp2-dev, taskset,
#                                  /usr/bin/time; raises ulimit -n to 30000 or to the hard
#                                  limit, which must be at least the largest N + 100)
# Env: CELLAR_BIN, BENCH_RUNS (runs per row and server, default 3; the table shows medians),
#      BENCH_SECS / BENCH_WARMUP (measured / unmeasured whole seconds per run, default 5 / 1),
#      BENCH_SUBS (subscriber counts N, default "1000 10000"), BENCH_ONLY=resp|grpc|memory
#      (one part; grpc still runs Redis's RESP rows, its reference), BENCH_INFLIGHT
#      (publishes in flight in the "max" rows, default 16), BENCH_RATES (deliveries/s offered
#      in the fixed-rate rows, default "100000 1000000": the publisher sends RATE / N
#      messages/s), BENCH_DRAIN (seconds grpcsub waits after a run for what is still owed,
#      default 10), BENCH_STREAMS (gRPC Subscribe streams per h2c connection, default 100, as
#      the Momento SDK), BENCH_IDLE_SUBS (subscribers in the memory test, default 10000),
#      BENCH_THREADS (cellar --threads, default 1: one core, as Redis's one thread),
#      BENCH_ONLY_REDIS=1 (no Cellar: the Redis half alone).
# Default run: 3 runs x 2 N x 3 loads x 3 (server, protocol) pairs of ~7-10 s plus the memory
# test: about 8 minutes.
#
# Targets (issue 6): at 10,000 subscribers at least 1.0x Redis's delivered messages/s with a
# p99 no worse, and under 10 KiB per idle subscriber. PASS/FAIL lines follow the table (the
# "max" rows at the largest N; RESP against Redis with the same subscribers, gRPC against
# the same Redis RESP figures, the only reference there is; a row with flagged runs fails).
#
# Load generators, single-threaded (epoll), pinned to CPU 1, the servers to CPU 0:
#   ../shared/tools/psbench (RESP "max" rows): N subscriber connections, SUBSCRIBE ch:0, one
#     publisher connection keeping D PUBLISHes in flight (an answer sends the next).
#   tests/bench/grpcsub.c (built here, cc -O2 -lnghttp2): the same workload over RESP or
#     gRPC (N Subscribe streams, 100 per h2c connection; unary Publish calls), at a fixed
#     rate too, and the idle subscribers of the memory test. After each run it stops
#     publishing and waits for every delivery the answered publishes promise, so a lost
#     message is counted (undelivered), not taken for a backlog. See its header.
# Every payload carries its send time (CLOCK_MONOTONIC ns) in its first 20 bytes: latency
# is publish-to-receive, per delivery, when the subscriber reads it.
#
# Rows, for each N:
#   RESP N max       psbench -s N -c 1 -d BENCH_INFLIGHT on both servers: the most each
#                    delivers. Closed loop: a server that answers PUBLISH sooner gets the
#                    next one sooner. Redis answers in the event-loop round that writes the
#                    subscribers, so D bounds its backlog; a server that answers before it
#                    writes can take publishes faster than it delivers them, and its queues
#                    (and latency) grow through the run: the row then notes a fan-out (per
#                    publish, in the measured window) below N. D = 16: Redis writes each
#                    subscriber once per round with every message queued since, so its
#                    deliveries/s grow with D (measured at N = 10,000: 0.18M/s at D = 1,
#                    0.64M at 4, 1.3-1.6M at 16, 2.8M at 64) and so does its latency; 16 is
#                    where p99 is still ~0.25 s at 10,000 subscribers.
#   RESP N @R/s      grpcsub -m resp -r R/N on both: the same offered load (open loop, up to
#                    1000 in flight), so latencies compare at equal work. 100k/s leaves both
#                    servers headroom; 1M/s is near Redis's limit at N = 10,000.
#   gRPC N max, gRPC N @R/s   grpcsub -m grpc on Cellar, the same loads over gRPC, shown
#                    next to Redis's RESP rows.
# Checks per run: every subscription confirmed (else grpcsub exits 1 with the server's
# error and the row is not run again on that server); then, noted in the row with the
# count of runs: errors, lost or duplicated sequence numbers (gRPC), undelivered or excess
# deliveries after the drain, a fan-out in the window off N by more than 5%, or PUBLISH
# answers other than N. A run with notes keeps its figures; a "!" marks Cellar's. Before
# the runs each server and protocol gets a 4-subscriber probe: a Cellar whose SUBSCRIBE or
# Subscribe does not work is reported and its rows left empty; the Redis half still runs.
#
# Memory: a fresh server per case (cellar RESP, cellar gRPC, redis RESP), VmRSS before and
# after grpcsub -i connects BENCH_IDLE_SUBS subscribers that stay idle (gRPC: 100 streams
# per connection, heartbeats read), divided by the subscribers; Redis also by INFO
# used_memory. Kernel socket buffers are in neither.
#
# Columns: deliveries/s (messages read by subscribers, all of them together), p50/p99/p99.9
# in microseconds, "srv%" the server process's CPU and "cli%" the load generator's, in % of
# one core (grpcsub: over the measured window; psbench: over its whole run, set-up
# included). A pinned server near 100 was the limit; a client near 100 was.
# --smoke: one 1-second run of each row with 100 subscribers, 200 idle ones for the memory
# test (the test suite runs it as bench.topics.smoke); the script then exits 1 if a probe or
# a row failed, a run lost, duplicated or owed messages or saw errors, or the memory test
# could not set up: what it reads must still exist. Throughput targets are not judged.
set -euo pipefail
SMOKE=0
[[ ${1:-} == --smoke ]] && SMOKE=1
if ((SMOKE)); then
  : "${BENCH_RUNS:=1}" "${BENCH_SECS:=1}" "${BENCH_WARMUP:=0}" "${BENCH_SUBS:=100}"
  : "${BENCH_RATES:=10000}" "${BENCH_DRAIN:=3}" "${BENCH_IDLE_SUBS:=200}"
fi
# Cellar's per-cache limits (issue 7): high enough never to throttle the load generator, but
# finite, so the admission buckets run as they do in production. BENCH_CELLAR_LIMITS overrides.
CELLAR_LIMITS=${BENCH_CELLAR_LIMITS:-requests_per_second=1000000000,read_bytes_per_second=1tib,write_bytes_per_second=1tib,publish_per_second=1000000000}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
CELLAR_BIN=${CELLAR_BIN:-$repo/build/release/src/bin/cellar}
PSBENCH_SRC=${PSBENCH_SRC:-$repo/../shared/tools/psbench.c}
PY=/usr/bin/python3
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECS:-5}
WARMUP=${BENCH_WARMUP:-1}
SUBS=${BENCH_SUBS:-1000 10000}
ONLY=${BENCH_ONLY:-}
INFLIGHT=${BENCH_INFLIGHT:-16}
RATES=${BENCH_RATES:-100000 1000000}
DRAIN=${BENCH_DRAIN:-10}
STREAMS=${BENCH_STREAMS:-100}
IDLE_SUBS=${BENCH_IDLE_SUBS:-10000}
THREADS=${BENCH_THREADS:-1}
ONLY_REDIS=${BENCH_ONLY_REDIS:-0}
PAYLOAD=100
RATE_INFLIGHT=1000
CLK_TCK=$(getconf CLK_TCK)

case $ONLY in
  "" | resp | grpc | memory) ;;
  *) echo "BENCH_ONLY must be resp, grpc or memory, not '$ONLY'" >&2; exit 2 ;;
esac
for tool in redis-server redis-cli cc awk taskset timeout; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "missing: /usr/bin/time" >&2; exit 2; }
[[ -f /usr/include/nghttp2/nghttp2.h ]] || { echo "missing: libnghttp2-dev" >&2; exit 2; }
[[ -f "$PSBENCH_SRC" ]] || { echo "missing: $PSBENCH_SRC" >&2; exit 2; }
SIDES="cellar redis"
if [[ $ONLY_REDIS == 1 ]]; then
  SIDES="redis"
else
  [[ -x "$CELLAR_BIN" ]] || { echo "no cellar binary at $CELLAR_BIN (build the release preset," \
    "or BENCH_ONLY_REDIS=1)" >&2; exit 2; }
fi

# 10,000 subscriber connections need as many descriptors in the client and in each server.
max_subs=$IDLE_SUBS
for n in $SUBS; do ((n > max_subs)) && max_subs=$n; done
ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < max_subs + 100)); then
  echo "ulimit -n is $(ulimit -n): $max_subs subscribers need $((max_subs + 100))" >&2; exit 2
fi

tmp=$(mktemp -d /tmp/cellar-topics-bench.XXXXXX)
# Run a private copy, so a rebuild during the run changes nothing halfway.
[[ $ONLY_REDIS == 1 ]] || cp "$CELLAR_BIN" "$tmp/cellar"
cc -O2 -o "$tmp/psbench" "$PSBENCH_SRC" || { echo "cannot build $PSBENCH_SRC" >&2; exit 2; }
cc -O2 -Wall -Wextra -o "$tmp/grpcsub" "$here/grpcsub.c" -lnghttp2 ||
  { echo "cannot build $here/grpcsub.c" >&2; exit 2; }

if [[ $(nproc) -ge 2 ]]; then
  server_cpu=(taskset -c 0); client_cpu=(taskset -c 1)
else
  server_cpu=(); client_cpu=()
fi

declare -A PORT PID  # PORT[cellar] (RESP), PORT[cellar-grpc], PORT[redis]
all_pids=()
cleanup() {
  local rc=$?
  trap '' PIPE
  stop_all
  if [[ $rc -ne 0 ]]; then
    for f in "$tmp"/cellar.log "$tmp"/redis.log; do
      [[ -s "$f" ]] && { echo "--- tail of $f"; tail -n 20 "$f"; } >&2 2>/dev/null || true
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

field() {  # field KEY LINE: the value of KEY=... in a key=value line
  awk -v k="$1" '{for (i = 1; i <= NF; i++) {n = index($i, "="); if (substr($i, 1, n - 1) == k) {print substr($i, n + 1); exit}}}' <<<"$2"
}

start_cellar() {  # -> PORT[cellar], PORT[cellar-grpc], PID[cellar]
  local data=$tmp/cellar-data pid
  rm -rf "$data"; mkdir -p "$data"
  "${server_cpu[@]}" "$tmp/cellar" serve --data-dir "$data" --resp-port 0 --admin-port 0 \
    --api-port 0 --memory-limit 2gb --threads "$THREADS" --dev-no-auth --log-level warn \
    --default-limits "$CELLAR_LIMITS" \
    >"$tmp/cellar.log" 2>&1 &
  pid=$!
  all_pids+=("$pid"); PID[cellar]=$pid
  for _ in $(seq 1 200); do
    [[ -s "$data/ports.json" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/cellar.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s "$data/ports.json" ]] || { echo "cellar: no ports.json" >&2; exit 1; }
  PORT[cellar]=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["resp"])' "$data/ports.json")
  PORT[cellar-grpc]=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"])' "$data/ports.json")
  wait_pong "${PORT[cellar]}"
}
start_redis() {  # -> PORT[redis], PID[redis]
  local port pid
  port=$(free_port)
  "${server_cpu[@]}" redis-server --port "$port" --bind 127.0.0.1 --maxmemory 2gb \
    --maxclients 20000 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
  pid=$!
  all_pids+=("$pid"); PID[redis]=$pid; PORT[redis]=$port
  wait_pong "$port"
}
start_side() { if [[ $1 == cellar ]]; then start_cellar; else start_redis; fi; }
# port_of SIDE PROTO
port_of() { if [[ $1 == cellar && $2 == grpc ]]; then echo "${PORT[cellar-grpc]}"; else echo "${PORT[$1]}"; fi; }

# ---- Runs -------------------------------------------------------------------------------
# S["row|side|field"]="v1 v2 ...", ERR/NOTE/FLAGGED["row|side"], PROBE["side|proto"]; a row
# is "PROTO|N|max" or "PROTO|N|<deliveries/s offered>".
declare -A S ERR NOTE FLAGGED PROBE

# probe SIDE PROTO: 4 subscribers, a second of publishing; sets PROBE[SIDE|PROTO] to "ok" or
# to what went wrong.
probe() {
  local s=$1 proto=$2 out rc=0 d pe se
  out=$(timeout 40 "${client_cpu[@]}" "$tmp/grpcsub" -p "$(port_of "$s" "$proto")" -m "$proto" \
    -s 4 -d 1 -t 1 -w 0 -S 15 2>"$tmp/probe.err") || rc=$?
  d=$(field deliveries_per_s "$out")
  pe=$(field pub_errors "$out"); se=$(field sub_errors "$out")
  if [[ $rc -ne 0 ]]; then
    PROBE[$s|$proto]="grpcsub exit $rc: $(tr '\n' ' ' <"$tmp/probe.err" | head -c 200)"
  elif [[ -z "$d" || "$d" == 0 ]]; then
    PROBE[$s|$proto]="no deliveries: $(tr '\n' ' ' <"$tmp/probe.err" | head -c 200)"
  elif [[ ${pe:-0} != 0 || ${se:-0} != 0 ]]; then
    PROBE[$s|$proto]="errors: $(tr '\n' ' ' <"$tmp/probe.err" | head -c 200)"
  else
    PROBE[$s|$proto]=ok
  fi
  printf '  probe %-6s %-4s %s\n' "$s" "$proto" "${PROBE[$s|$proto]}"
}

# bench ROW SIDE N TOOL ARGS...: one load generator run. Its figures go into S; a run with
# no figures (the tool failed) into ERR, and that row is not run again on that server; a
# run with figures but something wrong (errors, lost, undelivered or duplicated messages,
# a fan-out off N) is kept and its note goes into NOTE (and FLAGGED counts such runs).
bench() {
  local row=$1 s=$2 n=$3 tool=$4 k="$1|$2" out rc=0 t0 ct wall cpu scpu d fan e v note=""
  shift 4
  t0=$(cpu_ticks "${PID[$s]}")
  out=$(/usr/bin/time -f '%U %S %e' -o "$tmp/client.time" \
    timeout $((SECS + WARMUP + 150)) "${client_cpu[@]}" "$tmp/$tool" "$@" 2>"$tmp/bench.err") || rc=$?
  d=$(field deliveries_per_s "$out")
  if [[ $rc -ne 0 || -z "$d" ]]; then
    ERR[$k]="$tool exit $rc: $(tr '\n' ' ' <"$tmp/bench.err" | head -c 160)"
    printf '  %-16s %-6s ERROR: %s\n' "$(label "$row")" "$s" "${ERR[$k]}"
    return 0
  fi
  for e in pub_errors sub_errors lost dups undelivered excess; do
    v=$(field "$e" "$out")
    [[ -z "$v" || "$v" == 0 ]] || note+="$e=$v "
  done
  fan=$(field fanout "$out")
  if ! awk -v f="$fan" -v n="$n" 'BEGIN {exit !(f >= 0.95 * n && f <= 1.05 * n)}'; then
    note+="fan-out $fan of $n in the window "
  fi
  v=$(field pub_reply_min "$out")
  [[ -z "$v" || "$v" == -1 || "$v" == "$n" ]] || note+="PUBLISH answered $v..$(field pub_reply_max "$out"), want $n "
  [[ -n "$note" && -s "$tmp/bench.err" ]] && note+="($(tr '\n' ' ' <"$tmp/bench.err" | head -c 150))"
  if [[ -n "$note" ]]; then
    # The table shows one note per row: the first, unless a later one reports lost messages
    # or errors and it does not.
    local bad='(errors|lost|dups|undelivered|excess)='
    if [[ -z "${NOTE[$k]:-}" ]] || { [[ $note =~ $bad ]] && ! [[ ${NOTE[$k]} =~ $bad ]]; }; then
      NOTE[$k]=$note
    fi
    FLAGGED[$k]=$(( ${FLAGGED[$k]:-0} + 1 ))
  fi
  cpu=$(field cpu_pct "$out"); scpu=$(field srv_cpu_pct "$out")
  if [[ -z "$cpu" || -z "$scpu" || "$scpu" == -1 ]]; then  # psbench: over its whole run
    read -r ct wall < <(awk '{print $1 + $2, $3}' "$tmp/client.time")
    cpu=$(awk -v t="$ct" -v w="$wall" 'BEGIN {printf "%d", (w > 0 ? t * 100 / w : 0)}')
    scpu=$(awk -v a="$t0" -v b="$(cpu_ticks "${PID[$s]}")" -v hz="$CLK_TCK" -v w="$wall" \
      'BEGIN {printf "%d", (w > 0 ? (b - a) * 100 / hz / w : 0)}')
  fi
  S["$k|d"]+="${d%.*} "; S["$k|pub"]+="$(field publishes_per_s "$out") "
  S["$k|p50"]+="$(field p50_us "$out") "; S["$k|p99"]+="$(field p99_us "$out") "
  S["$k|p999"]+="$(field p999_us "$out") "; S["$k|ccpu"]+="$cpu "; S["$k|scpu"]+="$scpu "
  v=$(field late_pubs "$out"); [[ -n "$v" ]] && S["$k|late"]+="$v "
  printf '  %-16s %-6s %9s deliveries/s %7s pub/s  p50 %7s p99 %7s p99.9 %7s us  srv %3s%% cli %3s%%  %s\n' \
    "$(label "$row")" "$s" "${d%.*}" "$(field publishes_per_s "$out")" "$(field p50_us "$out")" \
    "$(field p99_us "$out")" "$(field p999_us "$out")" "$scpu" "$cpu" \
    "$([[ -n "$v" && $v != 0 ]] && echo "late_pubs=$v ")$note"
}

ok_side() {  # ok_side SIDE PROTO ROW: the probe passed and the row has not failed
  [[ "${PROBE[$1|$2]:-}" == ok && -z "${ERR["$3|$1"]:-}" ]]
}
short() { awk -v n="$1" 'BEGIN {if (n % 1000000 == 0) print n / 1000000 "M"; else if (n % 1000 == 0) print n / 1000 "k"; else print n}'; }
label() {  # label ROW ("RESP|10000|max" -> "RESP 10k max", "gRPC|10000|100000" -> "gRPC 10k @100k/s")
  local proto n what; IFS='|' read -r proto n what <<<"$1"
  if [[ $what == max ]]; then echo "$proto $(short "$n") max"; else echo "$proto $(short "$n") @$(short "$what")/s"; fi
}

# run_row PROTO N WHAT SIDE: one run of a row (WHAT: max, or deliveries/s offered).
run_row() {
  local proto=$1 n=$2 what=$3 s=$4 row="$1|$2|$3" port args
  local lc=${proto,,}
  ok_side "$s" "$lc" "$row" || return 0
  port=$(port_of "$s" "$lc")
  if [[ $proto == RESP && $what == max ]]; then
    bench "$row" "$s" "$n" psbench -p "$port" -s "$n" -c 1 -d "$INFLIGHT" -t "$SECS" -w "$WARMUP" -v "$PAYLOAD"
    return 0
  fi
  if [[ $what == max ]]; then
    args=(-d "$INFLIGHT")
  else
    args=(-d "$RATE_INFLIGHT" -r "$(awk -v r="$what" -v n="$n" 'BEGIN {printf "%g", r / n}')")
  fi
  bench "$row" "$s" "$n" grpcsub -p "$port" -m "$lc" -k "$STREAMS" -s "$n" -c 1 "${args[@]}" \
    -t "$SECS" -w "$WARMUP" -v "$PAYLOAD" -D "$DRAIN" -C "${PID[$s]}"
}

throughput() {
  local rep n s what
  for s in $SIDES; do start_side "$s"; done
  echo "== servers on ${server_cpu[*]:-any CPU} (cellar --threads $THREADS), load generators on" \
    "${client_cpu[*]:-any CPU}; 1 topic, $PAYLOAD-byte messages, ${SECS}s + ${WARMUP}s warm-up," \
    "$RUNS runs; max rows: $INFLIGHT publishes in flight; rate rows: $RATES deliveries/s offered"
  for s in $SIDES; do
    [[ $ONLY != grpc || $s == redis ]] && probe "$s" resp
    [[ $ONLY != resp && $s == cellar ]] && probe "$s" grpc
  done
  for rep in $(seq 1 "$RUNS"); do
    for n in $SUBS; do
      for what in max $RATES; do
        # Redis's RESP rows are also the reference of the gRPC rows.
        for s in $SIDES; do
          [[ $ONLY == grpc && $s == cellar ]] || run_row RESP "$n" "$what" "$s"
        done
        [[ $ONLY == resp || $ONLY_REDIS == 1 ]] || run_row gRPC "$n" "$what" cellar
      done
    done
  done
  stop_all
}

# ---- Memory -----------------------------------------------------------------------------
declare -A MEM  # MEM["side|proto|rss"], MEM["side|proto|used"], MEM["side|proto|err"]
memory_test() {  # memory_test SIDE PROTO: fresh server, N idle subscribers, RSS delta / N
  local s=$1 proto=$2 k="$1|$2" pid rss0 rss1 used0 used1 cpid ready=""
  start_side "$s"; pid=${PID[$s]}
  sleep 1
  rss0=$(rss_kb "$pid"); used0=$(used_memory "${PORT[$s]}")
  timeout 600 "${client_cpu[@]}" "$tmp/grpcsub" -p "$(port_of "$s" "$proto")" -m "$proto" \
    -k "$STREAMS" -s "$IDLE_SUBS" -i 300 -S 120 >"$tmp/idle.out" 2>"$tmp/idle.err" &
  cpid=$!
  for _ in $(seq 1 1300); do
    grep -q '^ready' "$tmp/idle.out" 2>/dev/null && { ready=1; break; }
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$ready" ]]; then
    MEM["$k|err"]="subscribers not set up: $(tr '\n' ' ' <"$tmp/idle.err" | head -c 200)"
    echo "  $s $proto: ${MEM["$k|err"]}"
    stop_pid "$cpid"; stop_all; return 0
  fi
  sleep 3  # a heartbeat round (gRPC) and any deferred frees
  rss1=$(rss_kb "$pid"); used1=$(used_memory "${PORT[$s]}")
  kill -0 "$cpid" 2>/dev/null || MEM["$k|err"]="the idle client exited early: $(head -c 200 "$tmp/idle.err")"
  stop_pid "$cpid"
  stop_all
  MEM["$k|rss"]=$(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE_SUBS" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}')
  if [[ -n "$used0" && -n "$used1" && $s == redis ]]; then
    MEM["$k|used"]=$(awk -v a="$used0" -v b="$used1" -v n="$IDLE_SUBS" 'BEGIN {printf "%.0f", (b - a) / n}')
  fi
  echo "  $s $proto: $(head -c 80 "$tmp/idle.out" | head -n 1); RSS $rss0 kB -> $rss1 kB" \
    "(${MEM["$k|rss"]} B per subscriber)$([[ $s == redis ]] && echo ", used_memory $used0 -> $used1")"
}

# ---- Run and report ---------------------------------------------------------------------

start_s=$(date +%s)
echo "topics fan-out benchmark: $(redis-server --version | awk '{print $1, $2, $3}'), $(nproc) CPUs," \
  "ulimit -n $(ulimit -n), load average at start $(cut -d' ' -f1-3 /proc/loadavg)$([[ $ONLY_REDIS == 1 ]] && echo ', redis only')"
[[ $ONLY != memory ]] && throughput
if [[ -z $ONLY || $ONLY == memory ]]; then
  echo "== memory: fresh servers, $IDLE_SUBS idle subscribers each"
  for s in $SIDES; do
    memory_test "$s" resp
    [[ $s == cellar ]] && memory_test cellar grpc
  done
fi

echo
declare -A M
if [[ $ONLY != memory ]]; then
  echo "topics fan-out ($PAYLOAD-byte messages, 1 topic, medians of $RUNS; deliveries/s; latency" \
    "publish-to-receive in us; gRPC rows: Cellar gRPC against Redis RESP; ! = see notes)"
  printf '%-17s %12s %12s %6s %24s %24s %9s %9s %s\n' row "cellar msg/s" "redis msg/s" ratio \
    "cellar p50/p99/p99.9" "redis p50/p99/p99.9" "srv% c/r" "cli% c/r" notes
  for n in $SUBS; do
    for proto in RESP gRPC; do
      [[ $ONLY == resp && $proto == gRPC ]] && continue
      [[ $ONLY == grpc && $proto == RESP ]] && continue
      [[ $ONLY_REDIS == 1 && $proto == gRPC ]] && continue
      for what in max $RATES; do
        row="$proto|$n|$what"; notes=""; mark=""
        for s in cellar redis; do
          k="$row|$s"; [[ $s == redis ]] && k="RESP|$n|$what|redis"
          for f in d p50 p99 p999 ccpu scpu late; do M[$s$f]=$(median <<<"${S["$k|$f"]:-}"); done
          [[ -n "${ERR[$k]:-}" ]] && notes+="$s: ${ERR[$k]:0:120} "
          if [[ -n "${NOTE[$k]:-}" ]]; then
            notes+="$s, ${FLAGGED[$k]} of $RUNS runs flagged, e.g.: ${NOTE[$k]:0:200} "
            [[ $s == cellar ]] && mark="!"
          fi
          [[ ${M[${s}late]} != - && ${M[${s}late]} != 0 ]] && notes+="$s late_pubs ${M[${s}late]} "
        done
        if [[ $ONLY_REDIS != 1 && "${PROBE[cellar|${proto,,}]:-ok}" != ok ]]; then
          notes+="cellar ${proto,,}: ${PROBE[cellar|${proto,,}]:0:120} "
        fi
        printf '%-17s %12s %12s %6s %24s %24s %9s %9s %s\n' "$(label "$row")$mark" "${M[cellard]}" \
          "${M[redisd]}" "$(ratio "${M[cellard]}" "${M[redisd]}")" \
          "${M[cellarp50]}/${M[cellarp99]}/${M[cellarp999]}" \
          "${M[redisp50]}/${M[redisp99]}/${M[redisp999]}" \
          "${M[cellarscpu]}/${M[redisscpu]}" "${M[cellarccpu]}/${M[redisccpu]}" "$notes"
      done
    done
  done
  echo
fi
if [[ -z $ONLY || $ONLY == memory ]]; then
  echo "memory per idle subscriber ($IDLE_SUBS subscribers; bytes; RSS = VmRSS delta / subscribers)"
  printf '  %-14s %10s %18s %s\n' case RSS used_memory notes
  for c in "cellar|resp" "cellar|grpc" "redis|resp"; do
    [[ $SIDES == *"${c%|*}"* ]] || continue
    printf '  %-14s %10s %18s %s\n' "${c/|/ }" "${MEM["$c|rss"]:--}" "${MEM["$c|used"]:--}" \
      "${MEM["$c|err"]:-}"
  done
  echo
fi

# Targets (issue 6), at the largest N.
if [[ $ONLY_REDIS != 1 ]]; then
  big=$(tr ' ' '\n' <<<"$SUBS" | awk 'NF' | sort -n | tail -n 1)
  verdict() {  # verdict ROW
    local row=$1 ref="RESP|${1#*|}" cd rd cp rp
    cd=$(median <<<"${S["$row|cellar|d"]:-}"); rd=$(median <<<"${S["$ref|redis|d"]:-}")
    cp=$(median <<<"${S["$row|cellar|p99"]:-}"); rp=$(median <<<"${S["$ref|redis|p99"]:-}")
    if [[ $cd == - || $rd == - ]]; then
      echo "target $(label "$row"): no figures"
    elif [[ -n "${FLAGGED["$row|cellar"]:-}" ]]; then
      echo "target $(label "$row"): FAIL ($(ratio "$cd" "$rd")x Redis's deliveries/s, p99 $cp us vs" \
        "$rp us, but ${FLAGGED["$row|cellar"]} of $RUNS runs flagged: ${NOTE["$row|cellar"]:0:200})"
    elif awk -v a="$cd" -v b="$rd" -v c="$cp" -v d="$rp" 'BEGIN {exit !(a >= b && c <= d)}'; then
      echo "target $(label "$row"): PASS ($(ratio "$cd" "$rd")x Redis's deliveries/s, p99 $cp us vs $rp us)"
    else
      echo "target $(label "$row"): FAIL ($(ratio "$cd" "$rd")x Redis's deliveries/s, p99 $cp us vs $rp us;" \
        "want >= 1.00x and p99 no worse)"
    fi
  }
  [[ $ONLY == "" || $ONLY == resp ]] && verdict "RESP|$big|max"
  [[ $ONLY == "" || $ONLY == grpc ]] && verdict "gRPC|$big|max"
  if [[ -z $ONLY || $ONLY == memory ]]; then
    for p in resp grpc; do
      v=${MEM["cellar|$p|rss"]:-}
      if [[ -z $v ]]; then echo "target memory per idle $p subscriber: no figure"
      elif ((v < 10240)); then echo "target memory per idle $p subscriber: PASS ($v B < 10240 B)"
      else echo "target memory per idle $p subscriber: FAIL ($v B >= 10240 B)"; fi
    done
  fi
fi
echo "(total $(( $(date +%s) - start_s ))s, load average at end $(cut -d' ' -f1-3 /proc/loadavg))"

if ((SMOKE)); then
  bad=0 measured=0
  for k in "${!PROBE[@]}"; do
    [[ ${PROBE[$k]} == ok ]] || { echo "smoke: probe $k: ${PROBE[$k]}" >&2; bad=1; }
  done
  for k in "${!ERR[@]}"; do echo "smoke: $k: ${ERR[$k]}" >&2; bad=1; done
  for k in "${!NOTE[@]}"; do
    [[ ${NOTE[$k]} =~ (errors|lost|dups|undelivered|excess)= ]] &&
      { echo "smoke: $k: ${NOTE[$k]}" >&2; bad=1; }
  done
  for k in "${!S[@]}"; do [[ $k == *"|d" && ${S[$k]} =~ [1-9] ]] && measured=1; done
  [[ $ONLY == memory ]] || ((measured)) || { echo "smoke: no row measured deliveries" >&2; bad=1; }
  for k in "${!MEM[@]}"; do
    [[ $k == *"|err" && -n ${MEM[$k]} ]] && { echo "smoke: memory $k: ${MEM[$k]}" >&2; bad=1; }
  done
  if ((bad)); then echo "0 passed, 1 failed"; exit 1; fi
  echo "1 passed, 0 failed"
fi
