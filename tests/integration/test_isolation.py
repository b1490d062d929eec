"""Noisy-neighbour isolation (issue 7), short form: tenant A floods one event loop with
pipelined SETs from a load generator (as many as it can send, over its requests/s limit), while
tenant B sends one GET every 2 ms on a connection of the same loop. In both scheduling modes B is
never throttled nor refused, and A is throttled yet gets its share through. B's p99 alone and
flooded is printed for each mode; the latency criterion (within 1.5x with the fair scheduler)
is a figure for tests/bench/isolation.sh, since a timed assertion depends on a quiet machine.

Measured client-side (raw RESP, see isolation.py). To keep the client's own CPU contention out
of B's figures on a 2-core machine, the server is pinned to CPU 0 and both load generators to
CPU 1, with A's at nice 19 (B's client wakes ahead of it). Phases alternate (alone, flooded,
five times) and the medians of the per-phase p99s are compared, so one noisy phase does not
decide.

Run: cd tests/integration && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_isolation
"""

import json
import os
import statistics
import subprocess
import sys
import time
import unittest

import isolation as iso
from harness import CellarServer

HERE = os.path.dirname(os.path.abspath(__file__))
PHASES = 5
SAMPLES = 500          # per phase, one every INTERVAL
INTERVAL = 0.002
A_LIMIT = 20000        # tenant A's requests/s: it floods far past this
A_CONNS, A_PIPELINE = 16, 512


def pin(pid, cpu):
    subprocess.run(["taskset", "-a", "-pc", str(cpu), str(pid)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)


class Isolation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pinned = (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
        cls.saved_affinity = os.sched_getaffinity(0) if cls.pinned else None
        if cls.pinned:
            os.sched_setaffinity(0, {1})

    @classmethod
    def tearDownClass(cls):
        if cls.saved_affinity:
            os.sched_setaffinity(0, cls.saved_affinity)

    def run_mode(self, scheduling):
        srv = CellarServer(["--threads", "1", "--fair-scheduling", scheduling]).start()
        try:
            if self.pinned:
                pin(srv.pid, 0)
            tokens = {}
            for tenant, cache in (("tenant_a", "a"), ("tenant_b", "b")):
                tokens[cache] = srv.tenant_with_cache(tenant, cache)
            st, body = srv.admin("PATCH", "/v1/caches/a/limits?tenant=tenant_a",
                                 body={"requests_per_second": A_LIMIT})
            self.assertEqual(st, 200, body)

            alone, flooded, b_errors, floods = [], [], [], []
            for _ in range(PHASES):
                lat, err = iso.probe(srv.resp_port, "b", tokens["b"], SAMPLES, INTERVAL)
                alone.append(iso.percentile(lat, 99))
                b_errors += err
                seconds = SAMPLES * INTERVAL + 1.0
                gen = subprocess.Popen(
                    ["nice", "-n", "19", sys.executable, os.path.join(HERE, "isolation.py"),
                     "flood", str(srv.resp_port), "a", tokens["a"], str(A_CONNS),
                     str(A_PIPELINE), str(seconds)],
                    stdout=subprocess.PIPE)
                try:
                    time.sleep(0.4)  # the flood is at full speed before B measures
                    lat, err = iso.probe(srv.resp_port, "b", tokens["b"], SAMPLES, INTERVAL)
                    out, _ = gen.communicate(timeout=seconds + 30)
                finally:
                    if gen.poll() is None:
                        gen.kill()
                        gen.wait()
                self.assertEqual(gen.returncode, 0)
                flooded.append(iso.percentile(lat, 99))
                b_errors += err
                floods.append(json.loads(out))
            # Throttles are counted per cache, by reason: A's, and none of B's.
            st, metrics = srv.admin("GET", "/metrics")
            self.assertEqual(st, 200)
            throttled = {}
            for line in metrics.splitlines():
                if line.startswith("cellar_cache_throttled_total{"):
                    labels, value = line.rsplit(" ", 1)
                    throttled[labels] = float(value)
            a_rate = 'cellar_cache_throttled_total{tenant="tenant_a",cache="a",reason="request_rate"}'
            self.assertGreater(throttled.get(a_rate, 0), 0, throttled)
            self.assertFalse([k for k in throttled if 'cache="b"' in k], throttled)
            return {
                "alone_p99": statistics.median(alone),
                "flooded_p99": statistics.median(flooded),
                "b_errors": b_errors,
                "floods": floods,
                "alone": alone,
                "flooded": flooded,
            }
        finally:
            srv.stop()
            srv.cleanup()

    def test_quiet_tenant_keeps_its_latency_and_the_flooder_is_throttled(self):
        on = self.run_mode("on")
        off = self.run_mode("off")
        ratio_on = on["flooded_p99"] / on["alone_p99"]
        ratio_off = off["flooded_p99"] / off["alone_p99"]
        summary = (
            f"B p99 alone/flooded (us): scheduler on {on['alone_p99']*1e6:.0f}/"
            f"{on['flooded_p99']*1e6:.0f} ({ratio_on:.2f}x), off {off['alone_p99']*1e6:.0f}/"
            f"{off['flooded_p99']*1e6:.0f} ({ratio_off:.2f}x); phases on "
            f"{[round(x*1e6) for x in on['alone']]}/{[round(x*1e6) for x in on['flooded']]}, off "
            f"{[round(x*1e6) for x in off['alone']]}/{[round(x*1e6) for x in off['flooded']]}; "
            f"A (on): {on['floods']}")
        print("\n" + summary, file=sys.stderr)
        # B is never throttled; A is, and still gets its share through.
        self.assertEqual(on["b_errors"], [], summary)
        self.assertEqual(off["b_errors"], [], summary)
        for f in on["floods"] + off["floods"]:
            self.assertGreater(f["throttled"], 0, summary)
            self.assertGreater(f["ok"], 0, summary)
            self.assertEqual(f["other"], 0, summary)
        # The latency ratios above are printed, not asserted: whether B's p99 stays within
        # 1.5x depends on this machine being quiet (a test that fails when CI is busy is a
        # flaky test). tests/bench/isolation.sh holds the figure, with alternating runs and
        # medians; this test checks the mechanism (who is throttled, that B never is).


if __name__ == "__main__":
    unittest.main()
