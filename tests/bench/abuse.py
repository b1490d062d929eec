"""Soak: every attack of issue 15 at once against one server, while a well-behaved tenant
works beside them. Prints the probe's latency (p50, p99, max) and error count, the server's
peak RSS against its memory limit, and whether the probe's data is intact.

  tests/bench/abuse.sh              minutes of it (ABUSE_SECS, default 120)
  tests/bench/abuse.sh --smoke      a few seconds, one round of each attack (the test suite)

The figures are for reading, not asserting (this machine is shared and noisy); the script
fails only on what does not depend on timing: probe errors, lost probe data, a server that
died, or an attack that could not run at all.
"""

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import redis  # noqa: E402

from harness import CellarServer, resp_encode, rss_bytes  # noqa: E402

MB = 1 << 20
MEMORY_LIMIT = 256 * MB


class Attack(threading.Thread):
    """Runs `fn(stop)` in a loop until `stop` is set, counting rounds and failures to start."""

    def __init__(self, name, fn, stop):
        super().__init__(daemon=True, name=name)
        self.fn, self.stop, self.rounds, self.broken = fn, stop, 0, None

    def run(self):
        while not self.stop.is_set():
            try:
                self.fn(self.stop)
                self.rounds += 1
            except Exception as e:  # an attack being refused is expected; note the last
                self.broken = repr(e)[:200]
                time.sleep(0.05)


def probe_main(port, token, secs):
    """The well-behaved tenant, in a process of its own (the attack threads' GIL and CPU must
    not show up as its latency): GET/SET every 2 ms, timing each; prints JSON."""
    import json
    probe = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    probe.execute_command("AUTH", "p", token)
    lat, errors = [], []
    deadline = time.monotonic() + secs
    i = 0
    while time.monotonic() < deadline:
        k = f"k:{i % 1000}"
        t0 = time.perf_counter()
        try:
            if i % 10 == 0:
                probe.set(k, f"v:{i % 1000}")
            elif probe.get(k) != f"v:{i % 1000}".encode():
                errors.append(f"wrong value for {k}")
        except Exception as e:
            errors.append(repr(e)[:200])
        lat.append(time.perf_counter() - t0)
        i += 1
        time.sleep(0.002)
    print(json.dumps({"lat": lat, "errors": errors}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--secs", type=float, default=float(os.environ.get("ABUSE_SECS", 120)))
    ap.add_argument("--probe", nargs=3, metavar=("PORT", "TOKEN", "SECS"))
    args = ap.parse_args()
    if args.probe:
        probe_main(int(args.probe[0]), args.probe[1], float(args.probe[2]))
        return 0
    secs = 3.0 if args.smoke else args.secs

    srv = CellarServer(["--threads", "2", "--memory-limit", "256mb", "--preauth-timeout", "2",
                        "--write-timeout", "5"]).start()
    stop = threading.Event()
    failures = []
    try:
        probe_token = srv.tenant_with_cache("probe", "p")
        evil_token = srv.tenant_with_cache("evil", "e")
        st, body = srv.admin("PATCH", "/v1/caches/e/limits?tenant=evil",
                             body={"requests_per_second": 0, "write_bytes_per_second": 0,
                                   "read_bytes_per_second": 0})
        assert st == 200, body

        def evil(timeout=10):
            c = redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=timeout)
            c.execute_command("AUTH", "e", evil_token)
            return c

        setup = evil()
        setup.set("big", b"x" * MB)
        setup.hset("h", "f", b"y" * MB)
        setup.sadd("s", b"z" * 1000)
        setup.set("a" * 100_000, "long key")
        setup.close()

        # The probe: its own data, then GET/SET at a steady pace, timing each.
        probe = redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=10)
        probe.execute_command("AUTH", "p", probe_token)
        for i in range(1000):
            probe.set(f"k:{i}", f"v:{i}")

        def raw_evil():
            s = socket.create_connection(("127.0.0.1", srv.resp_port), timeout=10)
            s.sendall(resp_encode("AUTH", "e", evil_token))
            s.recv(100)
            return s

        # F1: replies that are never read, and amplification.
        def unread_replies(stop):
            socks = [raw_evil() for _ in range(4)]
            for s in socks:
                s.sendall(resp_encode("MGET", *(["big"] * 1000)))
                s.sendall(resp_encode("HMGET", "h", *(["f"] * 500)))
                s.sendall(resp_encode("SRANDMEMBER", "s", "-500000"))
            stop.wait(2)
            for s in socks:
                s.close()

        # F2: the worst patterns.
        def patterns(stop):
            c = evil()
            for p in ("*" + "a" * 4000 + "b", "*" + "a" * 10_000 + "b"):
                try:
                    c.keys(p)
                    c.scan(0, match=p, count=1000)
                except redis.ResponseError:
                    pass
            c.close()

        # F3: strangers streaming bodies on the API port (node:http2).
        grpc_script = f"""
import http2 from 'node:http2';
const s = http2.connect('http://127.0.0.1:{srv.api_port}');
s.on('error', () => {{}});
const p = Buffer.alloc(5); p.writeUInt32BE(5000000, 1);
for (let i = 0; i < 13; i++) {{
  const r = s.request({{':method': 'POST', ':path': '/cache_client.Scs/Set',
    'content-type': 'application/grpc', te: 'trailers', authorization: '', cache: 'e'}});
  r.on('error', () => {{}}); r.on('response', () => {{}}); r.resume();
  r.write(p); r.write(Buffer.alloc(1 << 20));
}}
setTimeout(() => {{ s.destroy(); process.exit(0); }}, 1500);
"""

        def bodies(stop):
            procs = [subprocess.Popen(["node", "--input-type=module", "-e", grpc_script],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for _ in range(4)]
            for p in procs:
                p.wait(timeout=30)

        # F4: long channel names, many subscriptions.
        def subscriptions(stop):
            s = raw_evil()
            for i in range(10):
                s.sendall(resp_encode("SUBSCRIBE", b"n" * (1 << 20) + str(i).encode()))
            s.sendall(resp_encode("PSUBSCRIBE", "*" + "a" * 4000 + "b"))
            stop.wait(0.5)
            s.close()

        # F5: silent connections.
        def silent(stop):
            socks = []
            for port in (srv.resp_port, srv.api_port):
                for _ in range(150):
                    try:
                        socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
                    except OSError:
                        break
            stop.wait(2.5)  # past the pre-auth timeout (2 s)
            for s in socks:
                s.close()

        # F6/F7: tokens past their scope.
        def tokens(stop):
            st, _ = srv.admin("POST", "/v1/tokens?tenant=evil&role=rw&cache=e&key=")
            if st != 400:
                failures.append(f"an empty key selector was minted ({st})")
            stop.wait(0.2)

        # F8: large values past the tenant's share.
        def large_values(stop):
            c = evil(30)
            v = b"w" * (4 * MB)
            for i in range(40):
                c.set(f"w:{random.randrange(400)}", v)
            c.close()

        attacks = [Attack(n, f, stop) for n, f in (
            ("replies", unread_replies), ("patterns", patterns), ("bodies", bodies),
            ("subscriptions", subscriptions), ("silent", silent), ("tokens", tokens),
            ("large_values", large_values))]
        peak = [rss_bytes(srv.pid)]

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], rss_bytes(srv.pid))
                except Exception:
                    return
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for a in attacks:
            a.start()
        import json
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe",
                              str(srv.resp_port), probe_token, str(secs)],
                             capture_output=True, text=True, timeout=secs + 120)
        try:
            result = json.loads(out.stdout)
        except ValueError:
            result = {"lat": [0.0], "errors": [f"probe failed: {out.stderr[-500:]}"]}
        lat, errors = result["lat"], result["errors"]
        stop.set()
        for a in attacks:
            a.join(60)
        sampler.join(5)
        intact = sum(probe.get(f"k:{j}") == f"v:{j}".encode() for j in range(1000))
        alive = srv.proc.poll() is None
        lat.sort()
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
        print(f"abuse soak: {secs:.0f} s, {len(lat)} probe requests: p50 {p(0.5):.2f} ms, "
              f"p99 {p(0.99):.2f} ms, max {lat[-1] * 1000:.1f} ms, "
              f"over 100 ms: {sum(x > 0.1 for x in lat)}, errors: {len(errors)}")
        print(f"server: peak RSS {peak[0] / MB:.0f} MiB (memory limit {MEMORY_LIMIT / MB:.0f} "
              f"MiB), alive: {alive}; probe data intact: {intact}/1000")
        for a in attacks:
            print(f"  attack {a.name}: {a.rounds} rounds"
                  + (f" (last exception: {a.broken})" if a.broken else ""))
        if errors:
            failures.append(f"probe errors: {errors[:3]}")
        if intact != 1000:
            failures.append(f"probe data lost: {1000 - intact} keys")
        if not alive:
            failures.append("the server died")
        failures += [f"attack {a.name} never completed a round" for a in attacks
                     if a.rounds == 0]
    finally:
        stop.set()
        srv.stop(check=False)
        srv.cleanup()
    for f in failures:
        print("FAIL: " + f)
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
