"""Fair eviction (issue 7) through RESP: under memory pressure, eviction takes first from the
tenants above their share of each shard's memory, so one tenant flooding the cache evicts its
own items, not a quiet neighbour's working set.

Every test starts its own small server (`--memory-limit 32mb --threads 2`) with two tenants:
tenant_b (cache b) writes a working set of ~20% of the memory limit (1 KiB values), then
tenant_a (cache a) writes 10x the memory limit of distinct keys, and b reads its set back:
  - fairness on: b keeps > 95% of its set, a evicts its own early keys, memory stays bounded,
    nothing is refused with OOM;
  - `--fair-eviction off` (plain sampled LRU): b loses most of its set (the control, showing
    the mechanism rather than a roomy machine);
  - b reading slices of its set between a's batches: still > 95% with fairness on;
  - the same with `--fair-eviction off`: b's sparse reads alone do not keep its set (control);
  - an explicit `tenant_memory_share_bytes` (or a cache's `memory_share_bytes`) below b's set:
    a's flood evicts b down to about its share, not below (and not to nothing).
Rate limits are lifted (--default-limits) so the flood is never throttled; any error reply
fails a test. Loops are bounded in count, and each phase in time.

Run: cd tests/integration && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_fair_eviction
"""

import os
import sys
import time
import unittest

import redis

from harness import CellarServer, rss_bytes

SANITIZED = bool(os.environ.get("CELLAR_SANITIZER"))
MiB = 1024 * 1024
LIMIT = 32 * MiB
THREADS = 2
VALUE = 1024
# An item of a 1 KiB value and a short key takes about 1064 allocation bytes (+ index):
# ~6100 keys are ~20% of the limit.
B_KEYS = int(0.20 * LIMIT) // (VALUE + 64)
A_KEYS = 10 * LIMIT // VALUE          # 10x the limit in values alone (327680 keys)
BATCH = 500                           # keys per pipeline round trip
A_MSET = 50                           # a's flood: pipelines of BATCH // A_MSET MSETs
B_SLICE = 100                         # interleaved test: b's reads after each a batch
MEM_SAMPLE_EVERY = 16                 # a batches between memory samples
PHASE_SECONDS = 120.0 if SANITIZED else 60.0  # each write or read phase must end by then
UNLIMITED = ("requests_per_second=unlimited,read_bytes_per_second=unlimited,"
             "write_bytes_per_second=unlimited")


def b_key(i):
    return b"b:%d" % i


def b_value(i):
    return (b"b:%d|" % i).ljust(VALUE, b"b")


def a_key(i):
    return b"a:%d" % i


A_VALUE = b"a" * VALUE


def parse_metrics(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def log(msg):
    sys.stderr.write("\n    " + msg + "\n    ")
    sys.stderr.flush()


class FairEviction(unittest.TestCase):
    # ---- fixture -----------------------------------------------------------
    def start(self, fair="on"):
        srv = CellarServer(["--memory-limit", "32mb", "--threads", str(THREADS),
                            "--fair-eviction", fair, "--default-limits", UNLIMITED])
        self.addCleanup(srv.cleanup)
        srv.start()
        self.addCleanup(srv.stop)  # runs before cleanup (LIFO)
        self.srv = srv
        self.clients = {}
        for tenant, cache in (("tenant_a", "a"), ("tenant_b", "b")):
            token = srv.tenant_with_cache(tenant, cache)
            c = redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=30,
                            socket_connect_timeout=10, username=cache, password=token)
            self.addCleanup(c.close)
            self.clients[cache] = c
        self.mem_samples = []
        self.rss_samples = []
        return srv

    def metrics(self):
        st, text = self.srv.admin("GET", "/metrics")
        self.assertEqual(st, 200)
        return parse_metrics(text)

    def sample_memory(self):
        # The process's memory is the operator's figure (/metrics; a tenant's INFO shows its
        # cache's own).
        m = self.metrics()
        self.assertEqual(m["cellar_memory_limit_bytes"], LIMIT)
        self.mem_samples.append(m["cellar_memory_used_bytes"])
        self.rss_samples.append(rss_bytes(self.srv.pid))

    def deadline(self, what):
        end = time.monotonic() + PHASE_SECONDS

        def check():
            if time.monotonic() > end:
                self.fail(f"{what} did not finish within {PHASE_SECONDS}s")
        return check

    # ---- workloads -----------------------------------------------------------
    def write_b(self):
        c, check = self.clients["b"], self.deadline("b's writes")
        for start in range(0, B_KEYS, BATCH):
            check()
            p = c.pipeline(transaction=False)
            for i in range(start, min(start + BATCH, B_KEYS)):
                p.set(b_key(i), b_value(i))
            replies = p.execute(raise_on_error=False)
            bad = [r for r in replies if r is not True]
            self.assertEqual(bad, [], "b's writes refused")
        m = self.metrics()
        self.assertEqual(m['cellar_tenant_items{tenant="tenant_b"}'], B_KEYS)
        self.assertEqual(m['cellar_evictions_total'], 0)
        b_bytes = m['cellar_tenant_bytes{tenant="tenant_b"}']
        self.assertTrue(0.15 * LIMIT < b_bytes < 0.25 * LIMIT, b_bytes)
        return b_bytes

    def read_b(self, indices):
        """(hits, misses) over b's keys at indices; a wrong value fails the test."""
        c = self.clients["b"]
        hits = misses = 0
        for start in range(0, len(indices), BATCH):
            chunk = indices[start:start + BATCH]
            p = c.pipeline(transaction=False)
            for i in chunk:
                p.get(b_key(i))
            for i, r in zip(chunk, p.execute(raise_on_error=False)):
                if r is None:
                    misses += 1
                elif r == b_value(i):
                    hits += 1
                else:
                    self.fail(f"b:{i} read back {r!r:.80}")
        return hits, misses

    def read_all_b(self):
        check = self.deadline("b's reads")
        hits, misses = self.read_b(list(range(B_KEYS)))
        check()
        self.assertEqual(hits + misses, B_KEYS)
        return hits / B_KEYS

    def flood_a(self, between=None):
        """a writes A_KEYS distinct keys; `between()` runs after every batch. Returns seconds."""
        c, check = self.clients["a"], self.deadline("a's flood")
        t0 = time.monotonic()
        errors = []
        for n, start in enumerate(range(0, A_KEYS, BATCH)):
            check()
            p = c.pipeline(transaction=False)
            end = min(start + BATCH, A_KEYS)
            for s in range(start, end, A_MSET):
                p.mset({a_key(i): A_VALUE for i in range(s, min(s + A_MSET, end))})
            errors += [r for r in p.execute(raise_on_error=False) if r is not True]
            self.assertLess(len(errors), 10, f"a's writes refused: {errors[:3]}")
            if between is not None:
                between()
            if n % MEM_SAMPLE_EVERY == 0:
                self.sample_memory()
        seconds = time.monotonic() - t0
        self.sample_memory()
        self.assertEqual(errors, [], "a's writes refused (OOM?)")
        return seconds

    def present(self, client, keys):
        p = client.pipeline(transaction=False)
        for k in keys:
            p.exists(k)
        return sum(p.execute())

    # ---- shared checks -------------------------------------------------------------
    def check_bounded_and_a_evicted(self, m):
        """Memory stayed under the limit, nothing was refused, a evicted its own old keys."""
        self.assertLessEqual(max(self.mem_samples), LIMIT)
        self.assertGreater(max(self.mem_samples), 0.9 * LIMIT)  # it really was under pressure
        self.assertEqual(m["cellar_oom_refusals_total"], 0)
        self.assertLessEqual(m["cellar_memory_used_bytes"], LIMIT)
        if not SANITIZED:  # allocator slack only; the limit covers item and index bytes
            self.assertLess(max(self.rss_samples), 2 * LIMIT + 32 * MiB)
        a_evictions = m['cellar_cache_evictions_total{tenant="tenant_a",cache="a"}']
        # At most ~LIMIT / 1 KiB of a's keys can still be there: the rest were evicted.
        self.assertGreater(a_evictions, A_KEYS - LIMIT // VALUE)
        a = self.clients["a"]
        early = self.present(a, [a_key(i) for i in range(2000)])
        late = self.present(a, [a_key(i) for i in range(A_KEYS - 1000, A_KEYS)])
        self.assertLessEqual(early, 100, "a's oldest keys should be gone")
        self.assertGreaterEqual(late, 900, "a's newest keys should be there")
        return a_evictions, early, late

    def report(self, name, hit, m, seconds, extra=""):
        b_ev = m['cellar_cache_evictions_total{tenant="tenant_b",cache="b"}']
        a_ev = m['cellar_cache_evictions_total{tenant="tenant_a",cache="a"}']
        b_bytes = m['cellar_tenant_bytes{tenant="tenant_b"}']
        log(f"{name}: b hit rate {hit:.1%} of {B_KEYS}; evictions a={a_ev:.0f} b={b_ev:.0f}; "
            f"b bytes {b_bytes / MiB:.2f} MiB; "
            f"peak used {max(self.mem_samples) / MiB:.2f}/{LIMIT / MiB:.0f} MiB, "
            f"peak rss {max(self.rss_samples) / MiB:.0f} MiB; "
            f"flood {A_KEYS} keys in {seconds:.1f}s{extra}")

    # ---- tests -------------------------------------------------------------------
    def test_flood_evicts_the_flooder_not_the_quiet_tenant(self):
        self.start("on")
        self.write_b()
        seconds = self.flood_a()
        hit = self.read_all_b()
        m = self.metrics()
        self.report("fair on", hit, m, seconds)
        self.assertGreater(hit, 0.95)
        self.check_bounded_and_a_evicted(m)
        b_ev = m['cellar_cache_evictions_total{tenant="tenant_b",cache="b"}']
        self.assertLess(b_ev, 0.05 * B_KEYS)

    def test_without_fair_eviction_the_flood_evicts_the_quiet_tenant(self):
        self.start("off")
        self.write_b()
        seconds = self.flood_a()
        hit = self.read_all_b()
        m = self.metrics()
        self.report("fair off", hit, m, seconds)
        self.assertLess(hit, 0.5)
        self.check_bounded_and_a_evicted(m)
        b_ev = m['cellar_cache_evictions_total{tenant="tenant_b",cache="b"}']
        self.assertGreater(b_ev, 0.5 * B_KEYS)

    def flood_with_b_reading(self, fair):
        """a floods while b reads B_SLICE keys of its set (cycling) after each a batch: b's
        set comes round every B_KEYS / B_SLICE batches (~31k of a's items, more than the ~24k
        that fit), so recency alone does not keep it. Returns (hit rate during, after)."""
        self.start(fair)
        self.write_b()
        cursor = [0]
        counts = [0, 0]

        def b_reads():
            idx = [(cursor[0] + k) % B_KEYS for k in range(B_SLICE)]
            cursor[0] = (cursor[0] + B_SLICE) % B_KEYS
            h, mi = self.read_b(idx)
            counts[0] += h
            counts[1] += mi

        seconds = self.flood_a(between=b_reads)
        during = counts[0] / (counts[0] + counts[1])
        hit = self.read_all_b()
        m = self.metrics()
        self.report(f"fair {fair}, b reading", hit, m, seconds,
                    f"; b hit rate during the flood {during:.1%} of {sum(counts)} reads")
        self.check_bounded_and_a_evicted(m)
        return during, hit

    def test_quiet_tenant_reading_during_the_flood_keeps_its_set(self):
        during, hit = self.flood_with_b_reading("on")
        self.assertGreater(during, 0.95)
        self.assertGreater(hit, 0.95)

    def test_reading_alone_does_not_keep_the_set_without_fair_eviction(self):
        # The control for the test above: b's reads are too sparse for plain LRU to save it.
        during, hit = self.flood_with_b_reading("off")
        self.assertLess(during, 0.5)
        self.assertLess(hit, 0.5)

    def flood_with_b_share(self, path, limit, label):
        """b's set (~20% of the limit) under an explicit share of 5% of the limit (set at
        `path` as `limit`): a's flood evicts b down to about its share, and no further."""
        srv = self.start("on")
        share = LIMIT // 20  # 5% of the limit, a quarter of b's working set
        st, body = srv.admin("PATCH", path, body={limit: share})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["effective"][limit], share)
        b_bytes = self.write_b()
        seconds = self.flood_a()
        hit = self.read_all_b()
        m = self.metrics()
        kept = m['cellar_tenant_bytes{tenant="tenant_b"}']
        expected = share / b_bytes  # the fraction of b's set that fits in its share
        self.report(label, hit, m, seconds,
                    f"; share {share / MiB:.2f} MiB, expected hit rate ~{expected:.1%}")
        self.check_bounded_and_a_evicted(m)
        # Shares are per process, split evenly over the shards: each shard evicts b while it
        # holds more than share / THREADS, so b ends at most an item per shard under it.
        self.assertLessEqual(kept, share)
        self.assertGreater(kept, 0.8 * share)
        self.assertLess(hit, 0.5)
        self.assertGreater(hit, 0.7 * expected)
        self.assertLess(hit, 1.2 * expected)

    def test_explicit_tenant_share_is_honoured(self):
        self.flood_with_b_share("/v1/tenants/tenant_b/limits", "tenant_memory_share_bytes",
                                "tenant share 5%")

    def test_explicit_cache_share_is_honoured(self):
        self.flood_with_b_share("/v1/caches/b/limits?tenant=tenant_b", "memory_share_bytes",
                                "cache share 5%")


if __name__ == "__main__":
    unittest.main()
