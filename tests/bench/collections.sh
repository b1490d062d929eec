#!/usr/bin/env bash
# Benchmark: collections (hashes, lists, sets, sorted sets), Cellar (release build) against
# Debian's redis-server, both in one run.
#   tests/bench/collections.sh    (from anywhere; needs build/release/src/bin/cellar,
#                                  redis-server, redis-cli, cc, /usr/bin/time)
# Env: CELLAR_BIN, BENCH_REPS (runs per workload and server, default 3; the table shows
#      medians), BENCH_MODES ("pinned" by default; "pinned unpinned" as in run.sh),
#      BENCH_PIPELINES (default "1 16"), BENCH_CLIENT (collbench, the default: our lean
#      load generator tests/bench/collbench.c, built into the temp dir with cc -O2; or
#      redis-benchmark, which at -c 50 -P 1 used ~100% of its core on the 2-core machine and
#      so capped both servers), BENCH_SECS / BENCH_WARMUP (collbench: measured and warm-up
#      seconds per run, default 2 / 0.5), BENCH_N1 / BENCH_N16 (redis-benchmark: requests
#      per run at -P 1 / at -P > 1, default 50000 / 300000), BENCH_KEYSPACE (elements in the
#      pre-filled collections and the -r range, default 100000), BENCH_VALUE (bytes of the
#      hash values and list elements, default 16), BENCH_CMDS (subset of
#      "hset hget lpush lpop sadd sismember zadd zrange"), BENCH_ITEMS (elements of the big
#      hash and the big sorted set in the memory test, default 1000000), BENCH_SMALL_KEYS x
#      BENCH_SMALL_FIELDS (the small-hashes shape, default 10000 x 100), BENCH_ONLY=throughput
#      or memory, BENCH_ONLY_REDIS=1 (no Cellar: the Redis half alone).
# Default run: about 3 minutes on the 2-core machine with redis-benchmark (176 s measured,
# load average ~7); with collbench the throughput part takes 96 runs x 2.5 s, ~5 minutes.
#
# Throughput: 50 connections, pipeline 1 and 16 (a batch of P requests sent at once, all P
# replies awaited, latency from the batch's send to each reply), with
#   collbench -c 50 -d P -t BENCH_SECS -w BENCH_WARMUP -r KEYSPACE -- <command line>
# or redis-benchmark -c 50 -P P -n N -r KEYSPACE -d VALUE, built-in tests where they exist
# (they send the same commands, values VALUE bytes of 'x'), the command line otherwise:
#   hset       -t hset      HSET myhash element:__rand_int__ <VALUE bytes>
#   hget                    HGET myhash element:__rand_int__
#   lpush      -t lpush     LPUSH mylist <VALUE bytes>
#   lpop       -t lpop      LPOP mylist              (runs right after lpush, the list never
#                                                     empties: redis-benchmark pops as many as
#                                                     lpush pushed; collbench gets -n LLEN, the
#                                                     list topped up to KEYSPACE before and
#                                                     trimmed to KEYSPACE after)
#   sadd       -t sadd      SADD myset element:__rand_int__
#   sismember               SISMEMBER myset element:__rand_int__
#   zadd       -t zadd      ZADD myzset __rand_int__ element:__rand_int__
#   zrange                  ZRANGE myzset 0 9        (10 members per reply)
# Before the runs each server gets myhash, myset and myzset with fields/members
# element:000000000000 .. element:<KEYSPACE-1> (zset score = index) and mylist with KEYSPACE
# elements, loaded with redis-cli --pipe, and the replies are checked (HLEN/SCARD/ZCARD/LLEN,
# HGET, SISMEMBER, ZRANGE). Every read is a hit; every write touches an existing element
# (HSET overwrites, SADD finds the member, ZADD moves it to a new score). __rand_int__ is
# uniform in [0, KEYSPACE). Both servers run at once; each workload alternates between them,
# rep after rep, so a slow minute on this shared machine hits both alike. An error reply
# (which stops redis-benchmark; collbench counts them) marks the row and the workload is not
# repeated on that server; collbench's nil replies (an HGET miss, an LPOP on an empty list)
# are noted in the row. The table's "cli %cpu" and "srv %cpu" are the load generator's and
# the server process's CPU time over the client's wall time (warm-up included), in % of one
# core: a client near 100 was the limit; a pinned server near 100 was.
#
# Memory: a fresh server per shape and server (unpinned, Cellar --threads nproc, as run.sh's
# memory test), loaded with redis-cli --pipe, 100 elements per command:
#   hash       one hash, BENCH_ITEMS fields field:%010d -> value:%010d (16 + 16 bytes)
#   zset       one sorted set, BENCH_ITEMS members member:%09d (16 bytes), scores a
#              scrambled permutation of the index (inserted in random score order)
#   smallhash  BENCH_SMALL_KEYS hashes hash:%06d of BENCH_SMALL_FIELDS fields each (Redis
#              keeps these in its compact listpack encoding: <= 128 fields of <= 64 bytes)
# Bytes per element from each server's own accounting (INFO memory used_memory on the RESP
# port, which both answer; the method of run.sh), before and after, and from RSS growth.
#
# Modes (as in run.sh):
#   pinned:   each server on CPU 0 (Cellar --threads 1), the load generator on CPU 1.
#   unpinned: nothing pinned, Cellar on one loop per core.
#
# --smoke: one 1-second run of every workload at P16, small fills and memory shapes (the test
# suite runs it as bench.collections.smoke); the script then exits 1 if any row or fill
# failed, a count was wrong or a figure is missing: what it reads must still exist.
set -euo pipefail
SMOKE=0
[[ ${1:-} == --smoke ]] && SMOKE=1
if ((SMOKE)); then
  : "${BENCH_REPS:=1}" "${BENCH_SECS:=1}" "${BENCH_WARMUP:=0}" "${BENCH_PIPELINES:=16}"
  : "${BENCH_KEYSPACE:=2000}" "${BENCH_ITEMS:=20000}" "${BENCH_SMALL_KEYS:=200}"
  : "${BENCH_MODES:=pinned}"
fi
# Cellar's per-cache limits (issue 7): high enough never to throttle the load generator, but
# finite, so the admission buckets run as they do in production. BENCH_CELLAR_LIMITS overrides.
CELLAR_LIMITS=${BENCH_CELLAR_LIMITS:-requests_per_second=1000000000,read_bytes_per_second=1tib,write_bytes_per_second=1tib,publish_per_second=1000000000}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
CELLAR_BIN=${CELLAR_BIN:-$repo/build/release/src/bin/cellar}
PY=/usr/bin/python3
REPS=${BENCH_REPS:-3}
MODES=${BENCH_MODES:-pinned}
PIPELINES=${BENCH_PIPELINES:-1 16}
CLIENT=${BENCH_CLIENT:-collbench}
SECS=${BENCH_SECS:-2}
WARMUP=${BENCH_WARMUP:-0.5}
N1=${BENCH_N1:-50000}
N16=${BENCH_N16:-300000}
KEYSPACE=${BENCH_KEYSPACE:-100000}
VALUE=${BENCH_VALUE:-16}
CMDS=${BENCH_CMDS:-hset hget lpush lpop sadd sismember zadd zrange}
ITEMS=${BENCH_ITEMS:-1000000}
SMALL_KEYS=${BENCH_SMALL_KEYS:-10000}
SMALL_FIELDS=${BENCH_SMALL_FIELDS:-100}
ONLY=${BENCH_ONLY:-}
ONLY_REDIS=${BENCH_ONLY_REDIS:-0}
CONNS=50
CLK_TCK=$(getconf CLK_TCK)
RUN_TIMEOUT=180
THREADS=1

case $CLIENT in
  collbench) client_tool=cc ;;
  redis-benchmark) client_tool=redis-benchmark ;;
  *) echo "BENCH_CLIENT must be collbench or redis-benchmark, not '$CLIENT'" >&2; exit 2 ;;
esac
[[ $ONLY == memory ]] && client_tool=
for tool in redis-server redis-cli $client_tool awk taskset; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "missing: /usr/bin/time" >&2; exit 2; }
SIDES="cellar redis"
if [[ $ONLY_REDIS == 1 ]]; then
  SIDES="redis"
else
  [[ -x "$CELLAR_BIN" ]] || { echo "no cellar binary at $CELLAR_BIN (build the release preset," \
    "or BENCH_ONLY_REDIS=1)" >&2; exit 2; }
fi

tmp=$(mktemp -d /tmp/cellar-coll-bench.XXXXXX)
# Run a private copy, so a rebuild during the run changes nothing halfway.
[[ $ONLY_REDIS == 1 ]] || cp "$CELLAR_BIN" "$tmp/cellar"
if [[ $CLIENT == collbench && $ONLY != memory ]]; then
  cc -O2 -Wall -Wextra -o "$tmp/collbench" "$here/collbench.c" ||
    { echo "cannot build $here/collbench.c" >&2; exit 2; }
fi

server_cpu=() client_cpu=()
set_mode() {  # set_mode pinned|unpinned
  if [[ "$1" == pinned ]] && [[ $(nproc) -ge 2 ]]; then
    server_cpu=(taskset -c 0); client_cpu=(taskset -c 1); THREADS=1
  else
    server_cpu=(); client_cpu=(); THREADS=$(nproc)
  fi
}

declare -A PORT PID
all_pids=()
cleanup() {
  local rc=$?
  trap '' PIPE  # the output may be gone: stop the servers first, then try to print
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

cli() { timeout 20 redis-cli -p "$@" 2>&1 | tr -d '\r'; }  # cli PORT ARGS...

start_cellar() {  # -> PORT[cellar], PID[cellar]
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
  wait_pong "${PORT[cellar]}"
}
start_redis() {  # -> PORT[redis], PID[redis]
  local port pid
  port=$(free_port)
  "${server_cpu[@]}" redis-server --port "$port" --bind 127.0.0.1 --maxmemory 2gb \
    --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
  pid=$!
  all_pids+=("$pid"); PID[redis]=$pid; PORT[redis]=$port
  wait_pong "$port"
}
start_side() { if [[ $1 == cellar ]]; then start_cellar; else start_redis; fi; }

# pipe_load PORT: RESP commands on stdin -> redis-cli --pipe; prints its summary and sets
# PIPE_ERRORS (-1: no summary).
pipe_load() {
  local out
  out=$(timeout 600 "${client_cpu[@]}" redis-cli -p "$1" --pipe --pipe-timeout 60 2>&1 | tail -n 1) || true
  echo "    $out"
  PIPE_ERRORS=$(sed -n 's/^errors: \([0-9]*\),.*/\1/p' <<<"$out")
  PIPE_ERRORS=${PIPE_ERRORS:--1}
}

# ---- Throughput -------------------------------------------------------------------------

# Fill myhash, myset, myzset (KEYSPACE elements element:%012d, the names __rand_int__ makes)
# and mylist (KEYSPACE elements), 100 per command.
gen_fill() {
  awk -v n="$KEYSPACE" -v vlen="$VALUE" -v b=100 '
    function bulk(s) { printf "$%d\r\n%s\r\n", length(s), s }
    BEGIN {
      v = sprintf("%*s", vlen, ""); gsub(/ /, "v", v)
      for (i = 0; i < n; i += b) {
        m = (n - i < b) ? n - i : b
        printf "*%d\r\n", 2 + 2 * m; bulk("HSET"); bulk("myhash")
        for (j = i; j < i + m; j++) { bulk(sprintf("element:%012d", j)); bulk(v) }
        printf "*%d\r\n", 2 + m; bulk("SADD"); bulk("myset")
        for (j = i; j < i + m; j++) bulk(sprintf("element:%012d", j))
        printf "*%d\r\n", 2 + 2 * m; bulk("ZADD"); bulk("myzset")
        for (j = i; j < i + m; j++) { bulk(j); bulk(sprintf("element:%012d", j)) }
        printf "*%d\r\n", 2 + m; bulk("RPUSH"); bulk("mylist")
        for (j = i; j < i + m; j++) bulk(v)
      } }'
}

# fill_and_check SIDE: load the collections, then check sizes and one reply of each read.
declare -A CHECK_FAIL
fill_and_check() {
  local s=$1 p=${PORT[$1]} got want fails=() v
  pipe_load "$p" < <(gen_fill)
  [[ $PIPE_ERRORS == 0 ]] || fails+=("fill: $PIPE_ERRORS error replies")
  for c in "HLEN myhash" "SCARD myset" "ZCARD myzset" "LLEN mylist"; do
    got=$(cli "$p" $c)
    [[ $got == "$KEYSPACE" ]] || fails+=("$c -> '${got:0:120}' (want $KEYSPACE)")
  done
  v=$(printf '%*s' "$VALUE" '' | tr ' ' v)
  got=$(cli "$p" HGET myhash element:000000000007)
  [[ $got == "$v" ]] || fails+=("HGET -> '${got:0:120}'")
  got=$(cli "$p" SISMEMBER myset element:000000000007)
  [[ $got == 1 ]] || fails+=("SISMEMBER -> '${got:0:120}'")
  got=$(cli "$p" ZRANGE myzset 0 9 | tr '\n' ' ')
  want=$(for i in $(seq 0 9); do printf 'element:%012d ' "$i"; done)
  [[ $got == "$want" ]] || fails+=("ZRANGE myzset 0 9 -> '${got:0:120}'")
  if ((${#fails[@]})); then
    CHECK_FAIL[$s]=1
    echo "  $s: CHECK FAILED:"; printf '    %s\n' "${fails[@]}"
  else
    echo "  $s: filled and checked (HLEN/SCARD/ZCARD/LLEN = $KEYSPACE, HGET, SISMEMBER, ZRANGE 0 9)"
  fi
}

value=$(printf '%*s' "$VALUE" '' | tr ' ' x)  # redis-benchmark -d fills its values with 'x'
rb_args() {  # rb_args WORKLOAD -> RB_ARGS (redis-benchmark: test or command line), CB_ARGS
  case $1 in
    hset) RB_ARGS=(-t hset); CB_ARGS=(HSET myhash element:__rand_int__ "$value") ;;
    hget) RB_ARGS=(HGET myhash element:__rand_int__); CB_ARGS=("${RB_ARGS[@]}") ;;
    lpush) RB_ARGS=(-t lpush); CB_ARGS=(LPUSH mylist "$value") ;;
    lpop) RB_ARGS=(-t lpop); CB_ARGS=(LPOP mylist) ;;
    sadd) RB_ARGS=(-t sadd); CB_ARGS=(SADD myset element:__rand_int__) ;;
    sismember) RB_ARGS=(SISMEMBER myset element:__rand_int__); CB_ARGS=("${RB_ARGS[@]}") ;;
    zadd) RB_ARGS=(-t zadd); CB_ARGS=(ZADD myzset __rand_int__ element:__rand_int__) ;;
    zrange) RB_ARGS=(ZRANGE myzset 0 9); CB_ARGS=("${RB_ARGS[@]}") ;;
    *) echo "unknown workload $1 (BENCH_CMDS)" >&2; exit 2 ;;
  esac
}
for w in $CMDS; do rb_args "$w"; done

# top_up_list SIDE: RPUSH mylist back to KEYSPACE elements if LPOP took more than LPUSH
# added; sets LIST_LEN (the length after).
top_up_list() {
  local p=${PORT[$1]} n
  n=$(cli "$p" LLEN mylist)
  [[ $n =~ ^[0-9]+$ ]] || { LIST_LEN=0; return 0; }
  if ((n < KEYSPACE)); then
    pipe_load "$p" >/dev/null < <(awk -v n=$((KEYSPACE - n)) -v v="$value" -v b=100 '
      function bulk(s) { printf "$%d\r\n%s\r\n", length(s), s }
      BEGIN { for (i = 0; i < n; i += b) { m = (n - i < b) ? n - i : b
                printf "*%d\r\n", 2 + m; bulk("RPUSH"); bulk("mylist")
                for (j = 0; j < m; j++) bulk(v) } }')
    n=$(cli "$p" LLEN mylist)
    [[ $n =~ ^[0-9]+$ ]] || n=0
  fi
  LIST_LEN=$n
}
# trim_list SIDE: after an LPOP run, LTRIM mylist back to KEYSPACE elements, so what LPUSH
# added beyond LPOP's pops does not pile up rep after rep.
trim_list() {
  local p=${PORT[$1]} n got
  n=$(cli "$p" LLEN mylist)
  if [[ $n =~ ^[0-9]+$ ]] && ((n > KEYSPACE)); then
    got=$(cli "$p" LTRIM mylist 0 $((KEYSPACE - 1)))
    [[ $got == OK ]] || echo "  $1: LTRIM mylist 0 $((KEYSPACE - 1)) -> '${got:0:80}'"
  fi
}

declare -A S ERR NOTE  # S["mode|P|workload|side|field"]="v1 v2 ...", ERR/NOTE["mode|P|workload|side"]
# rb MODE SIDE PIPE WORKLOAD: one load generator run, samples into S, an error into ERR.
rb() {
  local mode=$1 s=$2 pipe=$3 w=$4 k="$1|$3|$4|$2" n=$N1 out rc=0 rps p99 ct wall err="" \
    errs nils extra=() what cpu scpu t0
  ((pipe > 1)) && n=$N16
  rb_args "$w"
  [[ $CLIENT == collbench && $w == lpop ]] && top_up_list "$s"
  t0=$(cpu_ticks "${PID[$s]}")
  if [[ $CLIENT == collbench ]]; then
    [[ $w == lpop ]] && ((LIST_LEN > 0)) && extra=(-n "$LIST_LEN")
    what="${SECS}+${WARMUP} s"
    out=$(/usr/bin/time -f '%U %S %e' -o "$tmp/client.time" timeout "$RUN_TIMEOUT" \
      "${client_cpu[@]}" "$tmp/collbench" -p "${PORT[$s]}" -c "$CONNS" -d "$pipe" -t "$SECS" \
      -w "$WARMUP" -r "$KEYSPACE" "${extra[@]}" -- "${CB_ARGS[@]}" 2>"$tmp/rb.err") || rc=$?
    # cmd=.. ops=.. ops_per_s=.. errors=.. nils=.. p50_us=.. p90_us=.. p99_us=.. ...
    read -r rps p99 errs nils < <(awk '{for (i = 1; i <= NF; i++) {split($i, a, "="); v[a[1]] = a[2]}
      print v["ops_per_s"], v["p99_us"], v["errors"], v["nils"]}' <<<"$out") || true
    if [[ -n "$errs" && "$errs" != 0 ]]; then
      err="$errs error replies: $(sed -n 's/^collbench: first error reply: //p' "$tmp/rb.err" | head -c 100)"
    fi
    [[ -z "$err" && $rc -ne 0 ]] && err="collbench exit $rc: $(head -c 100 "$tmp/rb.err")"
    [[ -z "$err" && -z "$rps" ]] && err="no collbench summary"
    if [[ -n "$nils" && "$nils" != 0 ]]; then
      NOTE[$k]="nil replies"; what+=", $nils nil replies"
    fi
  else
    what="$n requests"
    out=$(/usr/bin/time -f '%U %S %e' -o "$tmp/client.time" timeout "$RUN_TIMEOUT" \
      "${client_cpu[@]}" redis-benchmark -p "${PORT[$s]}" -c "$CONNS" -P "$pipe" -n "$n" \
      -r "$KEYSPACE" -d "$VALUE" --csv "${RB_ARGS[@]}" 2>"$tmp/rb.err") || rc=$?
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    IFS=, read -r _ rps _ _ _ _ p99 _ < <(sed -n 2p <<<"$out") || true
    rps=${rps//\"/}; p99=${p99//\"/}
    err=$(grep -m1 -i 'error' "$tmp/rb.err" || true)
    [[ -z "$err" && $rc -ne 0 ]] && err="redis-benchmark exit $rc"
    [[ -z "$err" && -z "$rps" ]] && err="no redis-benchmark summary"
    [[ -n "$err" ]] || p99=$(awk -v v="$p99" 'BEGIN {printf "%d", v * 1000}')
  fi
  [[ $CLIENT == collbench && $w == lpop ]] && trim_list "$s"
  if [[ -n "$err" ]]; then
    ERR[$k]=$err
    printf '  %-8s P%-3s %-10s %-6s ERROR: %s\n' "$mode" "$pipe" "$w" "$s" "$err"
    return 0
  fi
  read -r ct wall < <(awk '{print $1 + $2, $3}' "$tmp/client.time")
  cpu=$(awk -v t="$ct" -v w="$wall" 'BEGIN {printf "%d", (w > 0 ? t * 100 / w : 0)}')
  scpu=$(awk -v a="$t0" -v b="$(cpu_ticks "${PID[$s]}")" -v hz="$CLK_TCK" -v w="$wall" \
    'BEGIN {printf "%d", (w > 0 ? (b - a) * 100 / hz / w : 0)}')
  S["$k|ops"]+="${rps%.*} "; S["$k|p99"]+="$p99 "; S["$k|ccpu"]+="$cpu "; S["$k|scpu"]+="$scpu "
  printf '  %-8s P%-3s %-10s %-6s %9s req/s  p99 %6sus  cli %3s%%  srv %3s%%  (%s)\n' "$mode" \
    "$pipe" "$w" "$s" "${rps%.*}" "$p99" "$cpu" "$scpu" "$what"
}

throughput() {  # throughput MODE: both servers up at once
  local mode=$1 rep pipe w s
  set_mode "$mode"
  for s in $SIDES; do start_side "$s"; done
  local how="-n $N1 at P1 / $N16 at P>1"
  [[ $CLIENT == collbench ]] && how="-t $SECS -w $WARMUP"
  echo "== $mode: servers on ${server_cpu[*]:-any CPU} (cellar --threads $THREADS), $CLIENT" \
    "on ${client_cpu[*]:-any CPU}; -c $CONNS, $how, -r $KEYSPACE, values of $VALUE bytes," \
    "$REPS reps"
  for s in $SIDES; do fill_and_check "$s"; done
  for rep in $(seq 1 "$REPS"); do
    for pipe in $PIPELINES; do
      for w in $CMDS; do
        for s in $SIDES; do
          [[ -n "${ERR["$mode|$pipe|$w|$s"]:-}" ]] && continue  # failed once: not again
          rb "$mode" "$s" "$pipe" "$w"
        done
      done
    done
  done
  for s in $SIDES; do
    echo "  $s after the runs: HLEN $(cli "${PORT[$s]}" HLEN myhash | head -c 80)," \
      "SCARD $(cli "${PORT[$s]}" SCARD myset | head -c 80), ZCARD $(cli "${PORT[$s]}" ZCARD myzset | head -c 80)," \
      "LLEN $(cli "${PORT[$s]}" LLEN mylist | head -c 80)"
  done
  stop_all
}

# ---- Memory -----------------------------------------------------------------------------

gen_shape() {  # gen_shape SHAPE -> RESP commands
  awk -v shape="$1" -v n="$ITEMS" -v keys="$SMALL_KEYS" -v per="$SMALL_FIELDS" -v b=100 '
    function bulk(s) { printf "$%d\r\n%s\r\n", length(s), s }
    BEGIN {
      if (shape == "hash") {
        for (i = 0; i < n; i += b) {
          m = (n - i < b) ? n - i : b
          printf "*%d\r\n", 2 + 2 * m; bulk("HSET"); bulk("bighash")
          for (j = i; j < i + m; j++) { bulk(sprintf("field:%010d", j)); bulk(sprintf("value:%010d", j)) }
        }
      } else if (shape == "zset") {
        for (i = 0; i < n; i += b) {
          m = (n - i < b) ? n - i : b
          printf "*%d\r\n", 2 + 2 * m; bulk("ZADD"); bulk("bigzset")
          # score: the index scrambled (Knuth multiplicative hash), so inserts land anywhere
          for (j = i; j < i + m; j++) { bulk((j * 2654435761) % 4294967296); bulk(sprintf("member:%09d", j)) }
        }
      } else {
        for (k = 0; k < keys; k++)
          for (i = 0; i < per; i += b) {
            m = (per - i < b) ? per - i : b
            printf "*%d\r\n", 2 + 2 * m; bulk("HSET"); bulk(sprintf("hash:%06d", k))
            for (j = i; j < i + m; j++) { bulk(sprintf("field:%010d", j)); bulk(sprintf("value:%010d", j)) }
          }
      } }'
}

count_shape() {  # count_shape SHAPE PORT -> elements the server holds
  case $1 in
    hash) cli "$2" HLEN bighash ;;
    zset) cli "$2" ZCARD bigzset ;;
    smallhash)
      awk -v keys="$SMALL_KEYS" 'BEGIN {for (k = 0; k < keys; k++) printf "HLEN hash:%06d\n", k}' |
        timeout 120 redis-cli -p "$2" 2>&1 | tr -d '\r' |
        awk '/^[0-9]+$/ {s += $1; next} {bad++} END {if (bad) print "errors"; else print s + 0}' ;;
  esac
}

declare -A MEM  # MEM["shape|side|n" / "|rss" / "|used" / "|err"]
memory_test() {  # memory_test SHAPE SIDE: fresh server, load, measure
  local shape=$1 s=$2 p pid rss0 rss1 used0 used1 n want
  set_mode unpinned
  start_side "$s"; p=${PORT[$s]} pid=${PID[$s]}
  sleep 0.5
  rss0=$(rss_kb "$pid"); used0=$(used_memory "$p")
  pipe_load "$p" < <(gen_shape "$shape")
  [[ $PIPE_ERRORS == 0 ]] || MEM["$shape|$s|err"]="$PIPE_ERRORS error replies while loading"
  sleep 2  # let Redis finish incremental rehashing
  rss1=$(rss_kb "$pid"); used1=$(used_memory "$p")
  n=$(count_shape "$shape" "$p")
  want=$ITEMS; [[ $shape == smallhash ]] && want=$((SMALL_KEYS * SMALL_FIELDS))
  echo "  $shape $s: elements $n (want $want), RSS ${rss0} kB -> ${rss1} kB," \
    "used_memory ${used0:-?} -> ${used1:-?}"
  stop_all
  if [[ ! $n =~ ^[0-9]+$ || $n -ne $want ]]; then
    MEM["$shape|$s|err"]+="${MEM["$shape|$s|err"]:+; }element count '${n:0:80}', want $want"
  fi
  [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || n=$want
  MEM["$shape|$s|n"]=$n
  MEM["$shape|$s|rss"]=$(awk -v a="$rss0" -v b="$rss1" -v n="$n" 'BEGIN {printf "%.1f", (b - a) * 1024 / n}')
  if [[ -n "$used0" && -n "$used1" ]]; then
    MEM["$shape|$s|used"]=$(awk -v a="$used0" -v b="$used1" -v n="$n" 'BEGIN {printf "%.1f", (b - a) / n}')
  else
    MEM["$shape|$s|used"]="n/a"
  fi
}

# ---- Run and report ---------------------------------------------------------------------


start_s=$(date +%s)
echo "collections benchmark: $(redis-server --version | awk '{print $1, $2, $3}'), $(nproc) CPUs," \
  "load average at start $(cut -d' ' -f1-3 /proc/loadavg)$([[ $ONLY_REDIS == 1 ]] && echo ', redis only')"
if [[ $ONLY != memory ]]; then
  for mode in $MODES; do throughput "$mode"; done
fi
SHAPES="hash zset smallhash"
if [[ $ONLY != throughput ]]; then
  echo "== memory: fresh servers, unpinned (cellar --threads $(nproc)), redis-cli --pipe, 100 elements per command"
  for shape in $SHAPES; do
    for s in $SIDES; do memory_test "$shape" "$s"; done
  done
fi

echo
if [[ $ONLY != memory ]]; then
  echo "Throughput: $CLIENT -c $CONNS, medians of $REPS runs (req/s, p99 in us; cli %cpu:" \
    "$CLIENT's CPU use in % of one core, near 100 = the client was the limit; srv %cpu: the" \
    "server's, both over the client's run, cellar/redis)"
  printf '%-9s %-4s %-10s %12s %12s %6s %10s %10s %12s %12s %s\n' mode P command "cellar req/s" \
    "redis req/s" ratio "cellar p99" "redis p99" "cli %cpu c/r" "srv %cpu c/r" notes
  for mode in $MODES; do
    for pipe in $PIPELINES; do
      for w in $CMDS; do
        unset M; declare -A M; notes=""
        for s in cellar redis; do
          k="$mode|$pipe|$w|$s"
          for f in ops p99 ccpu scpu; do M[$s$f]=$(median <<<"${S["$k|$f"]:-}"); done
          [[ -n "${ERR[$k]:-}" ]] && notes+="$s: ${ERR[$k]:0:90} "
          [[ -n "${NOTE[$k]:-}" ]] && notes+="$s: ${NOTE[$k]} "
          [[ $s == cellar && $ONLY_REDIS == 1 ]] && M[cellarops]="-" M[cellarp99]="-" \
            M[cellarccpu]="-" M[cellarscpu]="-"
        done
        printf '%-9s P%-3s %-10s %12s %12s %6s %8sus %8sus %5s/%-6s %5s/%-6s %s\n' "$mode" \
          "$pipe" "$w" "${M[cellarops]}" "${M[redisops]}" \
          "$(ratio "${M[cellarops]}" "${M[redisops]}")" "${M[cellarp99]}" "${M[redisp99]}" \
          "${M[cellarccpu]}" "${M[redisccpu]}" "${M[cellarscpu]}" "${M[redisscpu]}" "$notes"
      done
    done
  done
  for s in $SIDES; do
    [[ -n "${CHECK_FAIL[$s]:-}" ]] && echo "  ($s failed the fill check: see above)"
  done
  echo
fi
if [[ $ONLY != throughput ]]; then
  echo "Memory: bytes per element (used_memory = INFO memory delta / elements; RSS = VmRSS delta / elements)"
  printf '%-10s %-30s %9s %13s %13s %6s %11s %11s %6s %s\n' shape layout elements "cellar used" \
    "redis used" ratio "cellar RSS" "redis RSS" ratio notes
  for shape in $SHAPES; do
    case $shape in
      hash) layout="1 hash x $ITEMS fields" ;;
      zset) layout="1 zset x $ITEMS members" ;;
      smallhash) layout="$SMALL_KEYS hashes x $SMALL_FIELDS fields" ;;
    esac
    notes=""
    for s in cellar redis; do
      [[ -n "${MEM["$shape|$s|err"]:-}" ]] && notes+="$s: ${MEM["$shape|$s|err"]} "
    done
    cu=${MEM["$shape|cellar|used"]:--} ru=${MEM["$shape|redis|used"]:--}
    cr=${MEM["$shape|cellar|rss"]:--} rr=${MEM["$shape|redis|rss"]:--}
    printf '%-10s %-30s %9s %13s %13s %6s %11s %11s %6s %s\n' "$shape" "$layout" \
      "${MEM["$shape|redis|n"]:-${MEM["$shape|cellar|n"]:-}}" "$cu" "$ru" "$(ratio "$cu" "$ru")" \
      "$cr" "$rr" "$(ratio "$cr" "$rr")" "$notes"
  done
  echo "(payload per element: hash field 16 + value 16 = 32 bytes; zset member 16 + score 8 = 24" \
    "bytes; smallhash 32 bytes + an 11-byte key per $SMALL_FIELDS fields)"
fi
echo "(total $(( $(date +%s) - start_s ))s, load average at end $(cut -d' ' -f1-3 /proc/loadavg))"

if ((SMOKE)); then
  # What the tables read must be there: no failed row or fill, every figure present.
  bad=0
  for k in "${!ERR[@]}"; do echo "smoke: $k: ${ERR[$k]}" >&2; bad=1; done
  for k in "${!CHECK_FAIL[@]}"; do echo "smoke: $k failed the fill check" >&2; bad=1; done
  if [[ $ONLY != memory ]]; then
    for mode in $MODES; do
      for pipe in $PIPELINES; do
        for w in $CMDS; do
          for s in $SIDES; do
            [[ "${S["$mode|$pipe|$w|$s|ops"]:-}" =~ [1-9] ]] ||
              { echo "smoke: no throughput for $mode P$pipe $w $s" >&2; bad=1; }
          done
        done
      done
    done
  fi
  if [[ $ONLY != throughput ]]; then
    for shape in $SHAPES; do
      for s in $SIDES; do
        [[ -z "${MEM["$shape|$s|err"]:-}" ]] ||
          { echo "smoke: $shape $s: ${MEM["$shape|$s|err"]}" >&2; bad=1; }
        [[ "${MEM["$shape|$s|used"]:-}" =~ ^[0-9] ]] ||
          { echo "smoke: no used_memory figure for $shape $s" >&2; bad=1; }
      done
    done
  fi
  if ((bad)); then echo "0 passed, 1 failed"; exit 1; fi
  echo "1 passed, 0 failed"
fi
