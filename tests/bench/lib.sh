# Helpers the bench scripts share (sourced: `. "$here/lib.sh"`). Each script keeps what is its
# own (how it starts its servers, its workloads, its table); what they all did alike is here.
# Callers keep the PIDs they start in the array `all_pids` (stop_all stops them).

# stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL; reaps it.
stop_pid() {
  local pid=$1
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
stop_all() { local p; for p in "${all_pids[@]}"; do stop_pid "$p"; done; all_pids=(); }

# A TCP port free on 127.0.0.1 now (no test depends on a fixed port being free).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_pong PORT: up to 20 s for a RESP server there to answer PING.
wait_pong() {
  for _ in $(seq 1 200); do
    [[ "$(timeout 2 redis-cli -p "$1" PING 2>/dev/null)" == PONG ]] && return 0
    sleep 0.1
  done
  echo "server on port $1 not answering PING" >&2; return 1
}

# Process figures: user+sys CPU ticks, resident kB (empty if the process is gone).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
# used_memory PORT: INFO memory's used_memory (Redis's own accounting; Cellar answers it too).
used_memory() {
  timeout 10 redis-cli -p "$1" INFO memory 2>/dev/null | tr -d '\r' |
    awk -F: '$1=="used_memory" {print $2}' || true
}

# median [EMPTY] < "v1 v2 ...": the median sample (the upper one of an even count), or EMPTY
# ("-" by default) when there is none.
median() {
  tr ' ' '\n' | awk 'NF' | sort -g |
    awk -v e="${1:--}" '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : e)}'
}
# ratio A B: A/B to two decimals, "-" unless both are numbers and B > 0.
ratio() { awk -v c="$1" -v r="$2" 'BEGIN {if (c ~ /^[0-9.]+$/ && r ~ /^[0-9.]+$/ && r > 0) printf "%.2f", c / r; else print "-"}'; }
