"""Issue 18, step 5: slots move with their items while clients write.

As the issue states it: one real etcd and a 3-node cluster (n1, n2, n3, bootstrapped together
with --cluster-bootstrap-expect 3). Writers do SET on unique keys, INCR, HSET, ZADD and LPUSH on
shared keys and RPUSH on a list of their own, through every node the whole time (one writer per
node; n4's starts once n4 is up). A 4th node (n4) joins: the leader moves slots to it in batches
until the four hold a fair share each (within 5%). Then n2 is drained with
`cellar node drain n2 --wait`: every slot moves off it (n2 stays up, and its writer goes on:
a drained node forwards every keyed call to the owner). Afterwards a checker reads everything:
every acknowledged write is present (counters equal the number of acknowledged increments, list
lengths the number of acknowledged pushes), nothing was refused, and the map is balanced within
5% over n1, n3, n4. The moves, the writes and the writers' latency percentiles (the pauses a
write saw while its slot moved) are printed.

Mind the machine: four nodes of 2 threads and four Python writers. Every loop is bounded in
count and time (a writer stops after WRITER_SECONDS or `limit` rounds).
"""

import os
import sys
import threading
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(__file__))
from harness import cluster_node, cluster_view, poll, start_fleet, stop_fleet  # noqa: E402

BOUND = 90.0
WRITER_SECONDS = 200.0  # a writer stops by itself after this (the ctest timeout is 300 s)
etcd = None
nodes = {}


def start_node(e, i):
    return cluster_node(e, i, "moves", "--cluster-lease-ttl", "3",
                        "--cluster-bootstrap-expect", "3")


def setUpModule():
    global etcd
    etcd, started = start_fleet(start_node, count=3)
    for i, n in enumerate(started, 1):
        nodes[f"n{i}"] = n


def tearDownModule():
    stop_fleet(nodes.values(), etcd)


cluster = cluster_view


def eventually(fn, what, bound=BOUND):
    def explain():
        dump_logs()
        print(f"slots as n1 sees them: {slots(nodes['n1'])}", file=sys.stderr)
    return poll(fn, what, bound, interval=0.1, on_timeout=explain)[0]


def move_pauses():
    """cellar_move_pause_seconds summed over the nodes: [(upper bound in s, count)] per bucket
    (not cumulative), and cellar_move_parked_writes_total summed."""
    import re
    import urllib.request
    buckets, parked = {}, 0
    for n in nodes.values():
        if n.proc is None:
            continue
        with urllib.request.urlopen(f"http://{n.host}:{n.admin_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        for le, v in re.findall(r'^cellar_move_pause_seconds_bucket\{le="([^"]+)"\} (\d+)$',
                                text, re.M):
            buckets[le] = buckets.get(le, 0) + int(v)
        parked += n.metric("cellar_move_parked_writes_total") or 0
    bound = lambda le: float("inf") if le == "+Inf" else float(le)  # noqa: E731
    cumulative = sorted(buckets.items(), key=lambda kv: bound(kv[0]))
    out, prev = [], 0
    for le, c in cumulative:
        out.append((bound(le), c - prev))
        prev = c
    return out, parked


def pause_pct(pauses, q):
    total = sum(c for _, c in pauses)
    seen = 0
    for b, c in pauses:
        seen += c
        if total and seen >= q * total:
            return "inf" if b == float("inf") else f"{b * 1000:g} ms"
    return "n/a"


def dump_logs():
    """What the nodes said about maps, moves and leases (on a failure)."""
    for name, n in nodes.items():
        lines = [l for l in n.log_tail(400000).splitlines()
                 if any(w in l for w in ("move", "control write", "level=warn", "slot map",
                                         "lease", "level=error"))]
        refused = [l for l in lines if "keyed call refused" in l]
        print(f"--- {name}\n" + "\n".join(refused[:3] + lines[-40:]), file=sys.stderr)


def slots(node):
    return {m["node"]: m["slots"] for m in cluster(node)["members"]}


def balanced(node, members):
    s = slots(node)
    if set(k for k, v in s.items() if v > 0) != set(members) or sum(s.values()) != 16384:
        return None
    fair = 16384 / len(members)
    return s if all(abs(s[m] - fair) <= 0.05 * fair for m in members) else None


def last_move_id(node):
    m = cluster(node)["migration"]
    return m["id"] if m else 0


class Writer(threading.Thread):
    """Writes through one node until told to stop (bounded: `limit` rounds, WRITER_SECONDS)."""

    def __init__(self, node, tag, limit=100000):
        super().__init__(daemon=True)
        self.client = node.client("moves", create=False, socket_timeout=10)
        self.tag, self.limit = tag, limit
        self.stop = threading.Event()
        self.acked = {}            # unique key -> value
        self.incr = 0              # acknowledged INCRs of the shared counters
        self.hset, self.zadd = set(), set()
        self.lpush = []            # (shared list, element) acknowledged
        self.rpush = 0             # acknowledged RPUSHes to this writer's own lists
        self.errors = []
        self.latencies = []

    def op(self, fn):
        t = time.monotonic()
        try:
            r = fn()
        except redis.exceptions.RedisError as e:
            self.errors.append(repr(e) if len(self.errors) < 20 else "...")
            return None
        self.latencies.append(time.monotonic() - t)
        return r

    def run(self):
        c = self.client
        deadline = time.monotonic() + WRITER_SECONDS
        i = 0
        while not self.stop.is_set() and i < self.limit and time.monotonic() < deadline:
            k, v = f"u:{self.tag}:{i}", f"v{i}"
            if self.op(lambda: c.set(k, v)):
                self.acked[k] = v
            if self.op(lambda: c.incr(f"ctr:{i % 97}")) is not None:
                self.incr += 1
            f = f"{self.tag}:{i}"
            if self.op(lambda: c.hset(f"h:{i % 89}", f, i)) is not None:
                self.hset.add((f"h:{i % 89}", f, str(i)))
            if self.op(lambda: c.zadd(f"z:{i % 83}", {f: i})) is not None:
                self.zadd.add((f"z:{i % 83}", f, float(i)))
            if self.op(lambda: c.lpush(f"l:{i % 79}", f)) is not None:
                self.lpush.append((f"l:{i % 79}", f))
            if self.op(lambda: c.rpush(f"r:{self.tag}:{i % 73}", i)) is not None:
                self.rpush += 1
            i += 1
        self.client.close()


class JoinAndDrain(unittest.TestCase):
    def test_a_4th_node_joins_then_node_2_drains_under_writes_and_no_write_is_lost(self):
        n1, n2, n3 = nodes["n1"], nodes["n2"], nodes["n3"]
        first = ["n1", "n2", "n3"]
        # Every node has the first map (before it a node refuses keyed calls, retryably).
        eventually(lambda: all(balanced(n, first) for n in (n1, n2, n3)),
                   "the first map over n1, n2 and n3, on all three")
        n1.create_cache("moves")
        eventually(lambda: all("moves" in [c["name"] for c in n.list_caches()] for n in (n2, n3)),
                   "the cache on n2 and n3")
        writers = [Writer(n, name) for name, n in nodes.items()]
        for w in writers:
            w.start()
        try:
            time.sleep(2)  # some data before the moves start
            moves_before = last_move_id(n1)
            t0 = time.monotonic()
            nodes["n4"] = start_node(etcd, 4)
            n4 = nodes["n4"]
            n4.admin_key = n1.admin_key
            eventually(lambda: "moves" in [c["name"] for c in n4.list_caches()], "cache on n4")
            writers.append(Writer(n4, "n4"))
            writers[-1].start()
            after_join = eventually(lambda: balanced(n1, ["n1", "n2", "n3", "n4"]),
                                    "n4 given its share (within 5%)")
            t_join = time.monotonic() - t0
            moves_join = last_move_id(n1)
            p = n1.run_cli("--host", n1.host, "--admin-port", str(n1.admin_port), "--key",
                           n1.admin_key, "node", "drain", "n2", "--wait", "--timeout", "120",
                           timeout=150)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("is drained", p.stdout)
            after_drain = eventually(lambda: balanced(n1, ["n1", "n3", "n4"]),
                                     "n2's slots on n1, n3 and n4 (within 5%)")
            t_drain = time.monotonic() - t0 - t_join
            moves_drain = last_move_id(n1)
            time.sleep(0.5)  # the writers go on a little over the final map
        finally:
            for w in writers:
                w.stop.set()
            for w in writers:
                w.join(30)
        self.assertFalse(any(w.is_alive() for w in writers), "a writer did not stop")
        lat = sorted(x for w in writers for x in w.latencies)
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        print(f"\n  join: {moves_join - moves_before} moves in {t_join:.1f} s -> {after_join}\n"
              f"  drain n2: {moves_drain - moves_join} moves in {t_drain:.1f} s -> "
              f"{after_drain}\n"
              f"  {len(lat)} acknowledged writes through {len(writers)} nodes; latency "
              f"p50 {pct(0.5):.2f} ms, p99 {pct(0.99):.2f} ms, p99.9 {pct(0.999):.2f} ms, "
              f"max {lat[-1] * 1000:.1f} ms", file=sys.stderr)
        # The pauses themselves, as the sources measured them (pause to commit, per move).
        pauses, parked = move_pauses()
        self.assertGreaterEqual(sum(c for _, c in pauses),
                                (moves_drain - moves_before) // 2,
                                "most moves paused their writes once (the rest aborted early)")
        print(f"  write pauses over {sum(c for _, c in pauses)} moves: "
              f"p50 <= {pause_pct(pauses, 0.5)}, p99 <= {pause_pct(pauses, 0.99)}, "
              f"max <= {pause_pct(pauses, 1.0)}; {parked} writes waited in one",
              file=sys.stderr)
        errors = [(w.tag, e) for w in writers for e in w.errors]
        if errors:
            dump_logs()
        self.assertEqual(errors, [], "writes were refused")
        # The checker, through n3 (it was there all along; n2 holds nothing now).
        r = n3.client("moves", create=False)
        for w in writers:
            keys = list(w.acked)
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                self.assertEqual(r.mget(chunk), [w.acked[k].encode() for k in chunk])
        total = sum(int(r.get(f"ctr:{i}") or 0) for i in range(97))
        self.assertEqual(total, sum(w.incr for w in writers))
        for w in writers:
            for h, f, v in w.hset:
                self.assertEqual(r.hget(h, f), v.encode(), (h, f))
            for z, m, s in w.zadd:
                self.assertEqual(r.zscore(z, m), s, (z, m))
            lengths = sum(r.llen(f"r:{w.tag}:{i}") for i in range(73))
            self.assertEqual(lengths, w.rpush, w.tag)
        # The shared lists: exactly the acknowledged pushes, each once.
        pushed = {}
        for w in writers:
            for lst, e in w.lpush:
                pushed.setdefault(lst, []).append(e)
        for i in range(79):
            got = [e.decode() for e in r.lrange(f"l:{i}", 0, -1)]
            self.assertEqual(sorted(got), sorted(pushed.get(f"l:{i}", [])), f"l:{i}")
            # One client's pushes keep their order (LPUSH: newest first).
            for w in writers:
                mine = [e for e in got if e.split(":")[0] == w.tag]
                self.assertEqual(mine, [e for lst, e in reversed(w.lpush) if lst == f"l:{i}"],
                                 (w.tag, f"l:{i}"))
        # n2 owns nothing and holds nothing of the cache any more.
        self.assertEqual(slots(n1).get("n2", 0), 0)
        st, body = n2.admin("GET", "/v1/caches")
        self.assertEqual(sum(c["items"] for c in body["caches"] if c["name"] == "moves"), 0)
        r.close()


if __name__ == "__main__":
    unittest.main()
