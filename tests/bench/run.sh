#!/usr/bin/env bash
# Benchmark: Cellar (release build) against Debian's redis-server, one after the other.
#   tests/bench/run.sh            (from anywhere; needs build/release/src/bin/cellar)
# Env: CELLAR_BIN, BENCH_SECS (measured seconds per kvbench run, default 6),
#      BENCH_WARMUP (default 1), BENCH_REPS (runs per workload and server, default 3; the
#      table shows medians), BENCH_MODES ("pinned unpinned" by default),
#      BENCH_ITEMS (items for the memory test, default 1000000), BENCH_ONLY=memory (skip
#      the throughput runs), BENCH_CELLAR_ARGS (more `cellar serve` flags, e.g.
#      "--fair-scheduling off" to measure the scheduler's cost), BENCH_CELLAR_LIMITS,
#      BENCH_CELLAR_BASE (a second cellar binary, e.g. a build of an older commit: it runs
#      beside the others, alternated with them, and the table gains its column and the
#      new/base ratio; how a refactoring is shown to cost nothing).
#
# Both servers run at once on their own ports and each workload alternates between them,
# rep after rep, so a slow minute on this shared machine hits both alike.
#
# Output: a throughput/latency table (kvbench and redis-benchmark workloads) and the bytes
# per item of 1M keys with 100-byte values, from RSS growth and from INFO used_memory.
#
# Modes:
#   pinned:   each server on CPU 0, the load generator on CPU 1. Same CPU budget for both
#             servers (one core; Redis's main thread is single-threaded anyway), so Cellar
#             runs one event loop (--threads 1).
#   unpinned: nothing pinned, Cellar on its default of one loop per core (--threads 2 here);
#             its loops then compete with the load generator for the two cores.
#
# --smoke: one 1-second rep of each workload, pinned only, a small redis-benchmark and memory
# test (the test suite runs it as bench.run.smoke); the script then exits 1 unless every row
# read a throughput and every server stored every item: what it reads must still exist.
set -euo pipefail
SMOKE=0
[[ ${1:-} == --smoke ]] && SMOKE=1
if ((SMOKE)); then
  : "${BENCH_SECS:=1}" "${BENCH_WARMUP:=0}" "${BENCH_REPS:=1}" "${BENCH_MODES:=pinned}"
  : "${BENCH_ITEMS:=20000}" "${BENCH_RB_REQUESTS:=20000}"
fi
RB_REQUESTS=${BENCH_RB_REQUESTS:-1000000}
# Cellar's per-cache limits (issue 7): high enough never to throttle the load generator, but
# finite, so the admission buckets run as they do in production. BENCH_CELLAR_LIMITS overrides.
CELLAR_LIMITS=${BENCH_CELLAR_LIMITS:-requests_per_second=1000000000,read_bytes_per_second=1tib,write_bytes_per_second=1tib,publish_per_second=1000000000}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
CELLAR_BIN=${CELLAR_BIN:-$repo/build/release/src/bin/cellar}
BASE_BIN=${BENCH_CELLAR_BASE:-}
SERVERS="cellar redis"
if [[ -n "$BASE_BIN" ]]; then
  [[ -x "$BASE_BIN" ]] || { echo "BENCH_CELLAR_BASE: no binary at $BASE_BIN" >&2; exit 2; }
  SERVERS="cellar base redis"
fi
KVBENCH_SRC=${KVBENCH_SRC:-$repo/../shared/tools/kvbench.c}
SECS=${BENCH_SECS:-6}
WARMUP=${BENCH_WARMUP:-1}
REPS=${BENCH_REPS:-3}
MODES=${BENCH_MODES:-pinned unpinned}
THREADS=1
ITEMS=${BENCH_ITEMS:-1000000}
CONNS=50
KEYSPACE=1000000
VALUE=100

for tool in redis-server redis-cli redis-benchmark cc awk; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
[[ -x "$CELLAR_BIN" ]] || { echo "no cellar binary at $CELLAR_BIN (build the release preset)" >&2; exit 2; }

outdir=$repo/build/bench
mkdir -p "$outdir"
cc -O2 -o "$outdir/kvbench" "$KVBENCH_SRC"
KVBENCH=$outdir/kvbench

server_cpu=() client_cpu=()
set_mode() {  # set_mode pinned|unpinned
  if [[ "$1" == pinned ]] && command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
    server_cpu=(taskset -c 0); client_cpu=(taskset -c 1); THREADS=1
  else
    server_cpu=(); client_cpu=(); THREADS=$(nproc)
  fi
}

tmp=$(mktemp -d /tmp/cellar-bench.XXXXXX)
server_pid=""
all_pids=()
stop_server() { stop_pid "$server_pid"; server_pid=""; }
stop_all() { local p; for p in "${all_pids[@]}"; do stop_pid "$p"; done; all_pids=(); server_pid=""; }
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    for f in "$tmp"/cellar.log "$tmp"/base.log "$tmp"/redis.log; do
      [[ -f "$f" ]] && { echo "--- tail of $f"; tail -n 20 "$f"; }
    done
  fi
  stop_all; rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# start_cellar [NAME BIN]: sets server_pid, port (NAME cellar, BIN $CELLAR_BIN by default)
start_cellar() {
  local name=${1:-cellar} bin=${2:-$CELLAR_BIN}
  local data=$tmp/$name-data
  rm -rf "$data"; mkdir -p "$data"
  "${server_cpu[@]}" "$bin" serve --data-dir "$data" --resp-port 0 --admin-port 0 \
    --api-port 0 --memory-limit 2gb --threads "$THREADS" --dev-no-auth --log-level warn \
    --default-limits "$CELLAR_LIMITS" ${BENCH_CELLAR_ARGS:-} \
    >"$tmp/$name.log" 2>&1 &
  server_pid=$!
  all_pids+=("$server_pid")
  for _ in $(seq 1 200); do
    [[ -s "$data/ports.json" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s "$data/ports.json" ]] || { echo "$name: no ports.json" >&2; exit 1; }
  port=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["resp"])' "$data/ports.json")
  wait_pong "$port"
}
start_redis() {
  port=$(free_port)
  "${server_cpu[@]}" redis-server --port "$port" --bind 127.0.0.1 --maxmemory 2gb \
    --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
  server_pid=$!
  all_pids+=("$server_pid")
  wait_pong "$port"
}

declare -A OPS P99
kv() {  # kv NAME PORT OP PIPELINE
  local line
  line=$(timeout $((SECS + WARMUP + 30)) "${client_cpu[@]}" "$KVBENCH" -p "$2" -m resp -o "$3" \
    -c "$CONNS" -d "$4" -t "$SECS" -w "$WARMUP" -r "$KEYSPACE" -v "$VALUE")
  echo "  $1: $line"
  OPS[$1]=$(sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p' <<<"$line")
  P99[$1]=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$line")
}
rb() {  # rb PREFIX PORT PIPELINE REQUESTS -> PREFIX.set / PREFIX.get
  local csv
  csv=$(timeout 300 "${client_cpu[@]}" redis-benchmark -p "$2" -t set,get -d "$VALUE" \
    -r "$KEYSPACE" -c "$CONNS" -P "$3" -n "$4" --csv)
  echo "$csv" | sed 's/^/  /'
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  while IFS=, read -r t rps _ _ _ _ p99 _; do
    t=${t//\"/}; rps=${rps//\"/}; p99=${p99//\"/}
    case "$t" in
      SET|GET) local name="$1.${t,,}"
               OPS[$name]=${rps%.*}
               P99[$name]=$(awk -v v="$p99" 'BEGIN {printf "%d", v * 1000}') ;;
    esac
  done <<<"$csv"
}


# throughput MODE: both servers up; every workload alternates cellar/redis, REPS times.
declare -A SAMPLES_OPS SAMPLES_P99
throughput() {
  local mode=$1 rep w s
  local -A sport
  set_mode "$mode"
  start_cellar; sport[cellar]=$port
  if [[ -n "$BASE_BIN" ]]; then start_cellar base "$BASE_BIN"; sport[base]=$port; fi
  start_redis; sport[redis]=$port
  echo "== $mode: cellar --threads $THREADS on ${server_cpu[*]:-any CPU}, redis $(redis-server --version | awk '{print $3}'); kvbench ${SECS}s + ${WARMUP}s warm-up, $REPS reps"
  for rep in $(seq 1 "$REPS"); do
    for w in "set 1" "set 16" "get 1" "get 16"; do
      set -- $w
      for s in $SERVERS; do
        kv "$mode $s kvbench $1 P$2" "${sport[$s]}" "$1" "$2"
        SAMPLES_OPS["$mode $s kvbench $1 P$2"]+="${OPS["$mode $s kvbench $1 P$2"]} "
        SAMPLES_P99["$mode $s kvbench $1 P$2"]+="${P99["$mode $s kvbench $1 P$2"]} "
      done
    done
  done
  for s in $SERVERS; do
    rb "$mode $s redis-benchmark P16" "${sport[$s]}" 16 "$RB_REQUESTS"
  done
  stop_all
}

memory_test() {  # memory_test SERVER -> MEM_RSS[SERVER], MEM_USED[SERVER]
  local s=$1 rss0 rss1 used0 used1 n
  sleep 0.5
  rss0=$(rss_kb "$server_pid"); used0=$(used_memory "$port")
  # Exactly ITEMS distinct keys "key:%012d" (16 bytes) with 100-byte values.
  awk -v n="$ITEMS" -v vlen="$VALUE" 'BEGIN {
      v = sprintf("%*s", vlen, ""); gsub(/ /, "v", v)
      for (i = 0; i < n; i++) { k = sprintf("key:%012d", i)
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, vlen, v } }' |
    timeout 300 "${client_cpu[@]}" redis-cli -p "$port" --pipe --pipe-timeout 60 | tail -n 1 | sed 's/^/  /'
  n=$(timeout 10 redis-cli -p "$port" DBSIZE)
  sleep 1
  rss1=$(rss_kb "$server_pid"); used1=$(used_memory "$port")
  echo "  $s: DBSIZE=$n RSS ${rss0} kB -> ${rss1} kB, used_memory ${used0:-?} -> ${used1:-?}"
  MEM_N[$s]=$n
  MEM_RSS[$s]=$(awk -v a="$rss0" -v b="$rss1" -v n="$n" 'BEGIN {printf "%.1f", (b - a) * 1024 / n}')
  if [[ -n "$used0" && -n "$used1" ]]; then
    MEM_USED[$s]=$(awk -v a="$used0" -v b="$used1" -v n="$n" 'BEGIN {printf "%.1f", (b - a) / n}')
  else
    MEM_USED[$s]="n/a"
  fi
}
declare -A MEM_N MEM_RSS MEM_USED

if [[ "${BENCH_ONLY:-}" != memory ]]; then
  for mode in $MODES; do throughput "$mode"; done
fi

echo "== memory: $ITEMS keys, ${VALUE}-byte values, fresh servers (cellar --threads $(nproc)) =="
set_mode unpinned
start_cellar; memory_test cellar; stop_all
if [[ -n "$BASE_BIN" ]]; then start_cellar base "$BASE_BIN"; memory_test base; stop_all; fi
start_redis; memory_test redis; stop_all

echo
if [[ "${BENCH_ONLY:-}" != memory ]]; then
  printf '%-9s %-20s %13s %13s %7s %11s %11s\n' mode workload "cellar ops/s" "redis ops/s" ratio \
    "cellar p99" "redis p99"
  for mode in $MODES; do
    for w in "kvbench set P1" "kvbench set P16" "kvbench get P1" "kvbench get P16"; do
      c=$(median 0 <<<"${SAMPLES_OPS["$mode cellar $w"]}") r=$(median 0 <<<"${SAMPLES_OPS["$mode redis $w"]}")
      cp=$(median 0 <<<"${SAMPLES_P99["$mode cellar $w"]}") rp=$(median 0 <<<"${SAMPLES_P99["$mode redis $w"]}")
      ratio=$(awk -v c="$c" -v r="$r" 'BEGIN {if (r > 0) printf "%.2f", c / r; else print "n/a"}')
      printf '%-9s %-20s %13s %13s %7s %9sus %9sus\n' "$mode" "$w" "$c" "$r" "$ratio" "$cp" "$rp"
    done
    for t in set get; do
      c=${OPS["$mode cellar redis-benchmark P16.$t"]:-0} r=${OPS["$mode redis redis-benchmark P16.$t"]:-0}
      ratio=$(awk -v c="$c" -v r="$r" 'BEGIN {if (r > 0) printf "%.2f", c / r; else print "n/a"}')
      printf '%-9s %-20s %13s %13s %7s %9sus %9sus\n' "$mode" "redis-bench $t P16" "$c" "$r" "$ratio" \
        "${P99["$mode cellar redis-benchmark P16.$t"]:-?}" "${P99["$mode redis redis-benchmark P16.$t"]:-?}"
    done
  done
  echo "(medians of $REPS runs for kvbench; redis-benchmark runs once and is CPU-bound on 2 cores)"
  if [[ -n "$BASE_BIN" ]]; then
    echo
    echo "cellar ($CELLAR_BIN) against base ($BASE_BIN), same runs:"
    printf '%-9s %-20s %13s %13s %9s %11s %11s\n' mode workload "cellar ops/s" "base ops/s" \
      new/base "cellar p99" "base p99"
    for mode in $MODES; do
      for w in "kvbench set P1" "kvbench set P16" "kvbench get P1" "kvbench get P16"; do
        c=$(median 0 <<<"${SAMPLES_OPS["$mode cellar $w"]}") b=$(median 0 <<<"${SAMPLES_OPS["$mode base $w"]}")
        cp=$(median 0 <<<"${SAMPLES_P99["$mode cellar $w"]}") bp=$(median 0 <<<"${SAMPLES_P99["$mode base $w"]}")
        ratio=$(awk -v c="$c" -v r="$b" 'BEGIN {if (r > 0) printf "%.3f", c / r; else print "n/a"}')
        printf '%-9s %-20s %13s %13s %9s %9sus %9sus\n' "$mode" "$w" "$c" "$b" "$ratio" "$cp" "$bp"
      done
    done
  fi
fi
echo
printf '%-8s %10s %22s %26s\n' server items "bytes/item (RSS)" "bytes/item (used_memory)"
for s in $SERVERS; do
  printf '%-8s %10s %22s %26s\n' "$s" "${MEM_N[$s]}" "${MEM_RSS[$s]}" "${MEM_USED[$s]}"
done
echo "(key 16 bytes + value ${VALUE} bytes = $((16 + VALUE)) bytes of payload per item)"

if ((SMOKE)); then
  # What the table read must be there: a throughput for every row, every item stored.
  bad=0
  for mode in $MODES; do
    for s in $SERVERS; do
      for w in "kvbench set P1" "kvbench set P16" "kvbench get P1" "kvbench get P16"; do
        v=$(median 0 <<<"${SAMPLES_OPS["$mode $s $w"]:-}")
        [[ "$v" =~ ^[0-9]+$ && "$v" -gt 0 ]] || { echo "smoke: no throughput for $mode $s $w" >&2; bad=1; }
      done
      for t in set get; do
        v=${OPS["$mode $s redis-benchmark P16.$t"]:-0}
        [[ "$v" =~ ^[0-9]+$ && "$v" -gt 0 ]] || { echo "smoke: no redis-benchmark $t for $mode $s" >&2; bad=1; }
      done
    done
  done
  for s in $SERVERS; do
    [[ "${MEM_N[$s]:-}" == "$ITEMS" ]] || { echo "smoke: $s stored ${MEM_N[$s]:-nothing}, not $ITEMS" >&2; bad=1; }
  done
  if ((bad)); then echo "0 passed, 1 failed"; exit 1; fi
  echo "1 passed, 0 failed"
fi
