#!/usr/bin/env bash
# Drives a live `cellar serve` with Debian's redis-cli and with the `cellar` CLI.
# Usage: CELLAR_BIN=/path/to/cellar tests/integration/redis_cli_test.sh
# Exit status 0 when every check passes; prints one line per check.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
CELLAR_BIN=${CELLAR_BIN:-$repo/build/release/src/bin/cellar}
REDIS_CLI=${REDIS_CLI:-redis-cli}

for tool in "$CELLAR_BIN" "$REDIS_CLI" jq timeout; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/cellar-cli-test.XXXXXX)
data="$tmp/data"
mkdir -p "$data"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
# check_eq NAME EXPECTED ACTUAL
check_eq() {
  if [[ "$2" == "$3" ]]; then pass "$1"; else
    fail "$1"; printf '  expected: %q\n  got:      %q\n' "$2" "$3"; fi
}
# check_contains NAME NEEDLE HAYSTACK
check_contains() {
  if [[ "$3" == *"$2"* ]]; then pass "$1"; else
    fail "$1"; printf '  expected to contain: %q\n  got: %q\n' "$2" "$3"; fi
}
check_rc() {  # NAME EXPECTED_RC ACTUAL_RC [output]
  if [[ "$2" == "$3" ]]; then pass "$1"; else
    fail "$1"; echo "  exit code: expected $2, got $3"; [[ -n "${4:-}" ]] && echo "  output: $4"; fi
}

# ---- start the server -------------------------------------------------------
"$CELLAR_BIN" serve --data-dir "$data" --resp-port 0 --admin-port 0 --api-port 0 \
  --threads 2 >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do  # 20 s
  [[ -s "$data/ports.json" ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ ! -s "$data/ports.json" ]]; then
  echo "server did not write ports.json within 20 s"; cat "$tmp/server.log"; exit 1
fi
port=$(jq -r .resp "$data/ports.json")
admin_port=$(jq -r .admin "$data/ports.json")
key=$(cat "$data/admin.key")
echo "cellar pid=$server_pid resp=$port admin=$admin_port"
rcli() { timeout 60 "$REDIS_CLI" -h 127.0.0.1 -p "$port" "$@"; }
cellar() { timeout 30 "$CELLAR_BIN" "$@"; }

# ---- cellar CLI: cache create / list, set / get ---------------------------------
out=$(cellar cache create clitest --data-dir "$data" 2>&1); rc=$?
check_rc "cellar cache create clitest" 0 "$rc" "$out"
out=$(cellar cache create clitest --data-dir "$data" 2>&1); rc=$?
if [[ $rc -ne 0 ]]; then pass "cellar cache create of an existing cache fails"; else
  fail "cellar cache create of an existing cache fails"; echo "  output: $out"; fi
out=$(cellar cache list --data-dir "$data" 2>&1); rc=$?
check_rc "cellar cache list" 0 "$rc" "$out"
check_contains "cellar cache list shows clitest" "clitest" "$out"
out=$(cellar set --cache clitest --data-dir "$data" k "value from cli" 2>&1); rc=$?
check_rc "cellar set" 0 "$rc" "$out"
out=$(cellar get --cache clitest --data-dir "$data" k 2>&1); rc=$?
check_rc "cellar get" 0 "$rc" "$out"
check_eq "cellar get returns the value" "value from cli" "$out"
out=$(cellar get --cache clitest --data-dir "$data" missing 2>&1); rc=$?
if [[ $rc -ne 0 || -z "$out" || "$out" == *nil* || "$out" == *"not found"* ]]; then
  pass "cellar get of a missing key reports a miss"
else fail "cellar get of a missing key reports a miss"; echo "  rc=$rc output: $out"; fi

# ---- redis-cli: one connection AUTHs then reads/writes (here-doc) -----------
out=$(rcli 2>&1 <<EOF
GET k
AUTH clitest $key
GET k
SET greeting "hello world"
GET greeting
INCR counter
INCRBY counter 41
STRLEN greeting
EXISTS k greeting nope
GET nope
EOF
)
# (redis-cli prints an error reply followed by an empty line when stdout is not a tty)
expected=$(cat <<'EOF'
NOAUTH Authentication required.

OK
value from cli
OK
hello world
1
42
11
2

EOF
)
check_eq "redis-cli here-doc session (AUTH, SET, GET, INCR)" "$expected" "$out"

# redis-cli's own ACL-style auth sends AUTH <user> <pass> = AUTH <cache> <key>
out=$(rcli --no-auth-warning --user clitest -a "$key" GET greeting 2>&1)
check_eq "redis-cli --user CACHE -a KEY GET" "hello world" "$out"
out=$(rcli --no-auth-warning --user clitest -a "wrong" GET greeting 2>&1)
if [[ "$out" != "hello world" ]]; then pass "redis-cli with a wrong key is refused"; else
  fail "redis-cli with a wrong key is refused"; fi

# ---- redis-cli --pipe mass insert of 10,000 keys ------------------------------
cellar cache create bulk --data-dir "$data" >/dev/null 2>&1 ||
  curl -fsS -X PUT -H "Authorization: Bearer $key" "http://127.0.0.1:$admin_port/v1/caches/bulk" >/dev/null
gen_resp() {  # RESP-encode: AUTH, then 10,000 SETs of key:N -> value:N
  awk -v key="$key" 'function bulk(s) { printf "$%d\r\n%s\r\n", length(s), s }
    BEGIN {
      printf "*3\r\n"; bulk("AUTH"); bulk("bulk"); bulk(key)
      for (i = 0; i < 10000; i++) {
        printf "*3\r\n"; bulk("SET"); bulk("key:" i); bulk("value:" i)
      }
    }'
}
gen_resp >"$tmp/mass.resp"
out=$(rcli --pipe --pipe-timeout 30 <"$tmp/mass.resp" 2>&1); rc=$?
check_rc "redis-cli --pipe exit code" 0 "$rc" "$out"
check_contains "redis-cli --pipe: no errors, 10001 replies" "errors: 0, replies: 10001" "$out"
out=$(rcli --no-auth-warning --user bulk -a "$key" DBSIZE 2>&1)
check_eq "DBSIZE after --pipe" "10000" "$out"
out=$(rcli --no-auth-warning --user bulk -a "$key" GET key:9999 2>&1)
check_eq "GET key:9999 after --pipe" "value:9999" "$out"
out=$(rcli --no-auth-warning --user bulk -a "$key" MGET key:0 key:5000 nokey 2>&1)
check_eq "MGET after --pipe" $'value:0\nvalue:5000' "$out"
out=$(rcli --no-auth-warning --user clitest -a "$key" DBSIZE 2>&1)
check_eq "the other cache is untouched (DBSIZE clitest: k, greeting, counter)" "3" "$out"
# --scan walks every key exactly once
rcli --no-auth-warning --user bulk -a "$key" --scan >"$tmp/scan.txt" 2>&1
check_eq "redis-cli --scan returns 10000 keys" "10000" "$(wc -l <"$tmp/scan.txt" | tr -d ' ')"
check_eq "redis-cli --scan: 10000 distinct keys" "10000" "$(sort -u "$tmp/scan.txt" | wc -l | tr -d ' ')"
out=$(rcli --no-auth-warning --user bulk -a "$key" --scan --pattern 'key:999*' | sort | tr '\n' ' ')
check_eq "redis-cli --scan --pattern" "key:999 key:9990 key:9991 key:9992 key:9993 key:9994 key:9995 key:9996 key:9997 key:9998 key:9999 " "$out"

# ---- cellar cache delete ------------------------------------------------------
out=$(cellar cache delete clitest --data-dir "$data" 2>&1); rc=$?
check_rc "cellar cache delete clitest" 0 "$rc" "$out"
out=$(cellar cache list --data-dir "$data" 2>&1)
if [[ "$out" != *clitest* && "$out" == *bulk* ]]; then pass "cache list after delete"; else
  fail "cache list after delete"; echo "  got: $out"; fi
out=$(cellar cache delete clitest --data-dir "$data" 2>&1); rc=$?
if [[ $rc -ne 0 ]]; then pass "deleting an unknown cache fails"; else
  fail "deleting an unknown cache fails"; fi
out=$(rcli --no-auth-warning --user clitest -a "$key" GET greeting 2>&1)
if [[ "$out" != "hello world" ]]; then pass "AUTH to a deleted cache is refused"; else
  fail "AUTH to a deleted cache is refused"; echo "  got: $out"; fi

# ---- tenants and tokens through the CLI, used by redis-cli -----------------------
out=$(cellar --data-dir "$data" tenant create clitenant 2>&1); rc=$?
check_rc "cellar tenant create" 0 "$rc" "$out"
out=$(cellar --data-dir "$data" tenant list 2>&1)
check_contains "cellar tenant list shows it" "clitenant" "$out"
su=$(cellar --data-dir "$data" key create --tenant clitenant --super-user 2>&1); rc=$?
check_rc "cellar key create --super-user" 0 "$rc" "$su"
ro=$(cellar --data-dir "$data" key create --tenant clitenant --role ro --cache tc --expires-in 600 2>&1); rc=$?
check_rc "cellar key create --role ro" 0 "$rc" "$ro"
out=$(rcli --no-auth-warning --user tc -a "$su" GET x 2>&1)
check_contains "a tenant token cannot reach a cache its tenant lacks" "cache not found" "$out"
out=$(curl -s -X PUT -H "Authorization: Bearer $key" "http://127.0.0.1:$admin_port/v1/caches/tc?tenant=clitenant")
check_contains "admin API creates a cache in the tenant" '"tc"' "$out"
out=$(rcli --no-auth-warning --user tc -a "$su" SET x tenant-value 2>&1)
check_eq "super-user token writes" "OK" "$out"
out=$(rcli --no-auth-warning --user tc -a "$ro" GET x 2>&1)
check_eq "read-only token reads" "tenant-value" "$out"
out=$(rcli --no-auth-warning --user tc -a "$ro" SET x other 2>&1)
check_contains "read-only token cannot write" "NOPERM" "$out"
# A Momento v2 API key: a JWT whose payload has "t":"g"; --format env adds the endpoint.
payload=$(echo "$su" | cut -d. -f2 | tr '_-' '/+'); while (( ${#payload} % 4 )); do payload+="="; done
check_contains "cellar key create mints a v2 key (\"t\":\"g\")" '"t":"g"' "$(echo "$payload" | base64 -d 2>/dev/null)"
out=$(cellar --data-dir "$data" key create --tenant clitenant --super-user --format env 2>&1); rc=$?
check_rc "cellar key create --format env" 0 "$rc" "$out"
check_contains "--format env names the key" "MOMENTO_API_KEY=ey" "$out"
check_contains "--format env names the endpoint" "MOMENTO_ENDPOINT=127.0.0.1:" "$out"
out=$(cellar --data-dir "$data" key create --tenant clitenant --super-user --format v1 2>&1); rc=$?
check_rc "cellar key create refuses an unknown --format" 2 "$rc" "$out"
out=$(cellar --data-dir "$data" key create --tenant clitenant --role zz 2>&1); rc=$?
check_rc "cellar key create refuses a bad role" 2 "$rc" "$out"
out=$(cellar --data-dir "$data" signing-key list 2>&1)
kid=$(echo "$out" | awk 'NR==2 {print $1}')
out=$(cellar --data-dir "$data" signing-key rotate 2>&1); rc=$?
check_rc "cellar signing-key rotate" 0 "$rc" "$out"
out=$(cellar --data-dir "$data" signing-key revoke "$kid" 2>&1); rc=$?
check_rc "cellar signing-key revoke" 0 "$rc" "$out"
out=$(rcli --no-auth-warning --user tc -a "$ro" GET x 2>&1)
check_contains "a revoked key's token is refused" "revoked" "$out"

# ---- SIGTERM: clean exit --------------------------------------------------------
kill -TERM "$server_pid"
rc=124
for _ in $(seq 1 150); do  # 15 s
  if ! kill -0 "$server_pid" 2>/dev/null; then wait "$server_pid"; rc=$?; break; fi
  sleep 0.1
done
check_rc "SIGTERM exits 0" 0 "$rc"
server_pid=""

# ---- redis-cli --tls against a --tls-self-signed server --------------------------
tls_data="$tmp/tlsdata"
mkdir -p "$tls_data"
"$CELLAR_BIN" serve --data-dir "$tls_data" --resp-port 0 --admin-port 0 --api-port 0 \
  --threads 1 --tls-self-signed >"$tmp/tls_server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do
  [[ -s "$tls_data/ports.json" ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
tls_port=$(jq -r .resp "$tls_data/ports.json")
tls_admin=$(jq -r .admin "$tls_data/ports.json")
tls_key=$(cat "$tls_data/admin.key")
curl -fsS -X PUT -H "Authorization: Bearer $tls_key" "http://127.0.0.1:$tls_admin/v1/caches/t" >/dev/null
tcli() { timeout 30 "$REDIS_CLI" --tls --cacert "$tls_data/tls/cert.pem" -h 127.0.0.1 -p "$tls_port" \
  --no-auth-warning --user t -a "$tls_key" "$@"; }
out=$(tcli SET greeting "over tls" 2>&1)
check_eq "redis-cli --tls SET" "OK" "$out"
out=$(tcli GET greeting 2>&1)
check_eq "redis-cli --tls GET" "over tls" "$out"
out=$(timeout 30 "$REDIS_CLI" --tls -h 127.0.0.1 -p "$tls_port" --no-auth-warning --user t \
  -a "$tls_key" GET greeting 2>&1)
check_contains "redis-cli --tls without the CA is refused" "certificate" "$out"
kill -TERM "$server_pid"; wait "$server_pid"; rc=$?
check_rc "TLS server SIGTERM exits 0" 0 "$rc"
server_pid=""

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed; server log tail:"; tail -n 30 "$tmp/server.log"
  exit 1
fi
echo "all redis-cli / cellar CLI checks passed"
