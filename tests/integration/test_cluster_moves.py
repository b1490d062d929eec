"""Issue 18, step 5: slots move with their items while clients write.

One real etcd, two nodes (n1, n2) sharing the slots, and writers doing SET on unique keys and
INCR, HSET, ZADD, RPUSH on shared keys through both nodes the whole time. A third node (n3)
joins: the leader moves slots to it in batches until the three hold a fair share each (within
5%). Then n2 is drained with `cellar node drain n2 --wait`: every slot moves off it. Afterwards
a checker reads everything through n1: every acknowledged write is present (counters equal the
number of acknowledged increments), nothing was refused, and the map is balanced. The writers'
latency percentiles (the pauses a write saw while its slot moved) are printed.
"""

import os
import sys
import threading
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(__file__))
from harness import EtcdServer, cluster_node, cluster_view, poll, stop_fleet  # noqa: E402

BOUND = 90.0
etcd = None
nodes = {}


def start_node(i):
    return cluster_node(etcd, i, "moves", "--cluster-lease-ttl", "3",
                        "--cluster-bootstrap-expect", "2")


def setUpModule():
    global etcd
    etcd = EtcdServer().start()
    try:
        nodes["n1"] = start_node(1)
        nodes["n2"] = start_node(2)
    except Exception:
        tearDownModule()
        raise
    nodes["n2"].admin_key = nodes["n1"].admin_key


def tearDownModule():
    stop_fleet(nodes.values(), etcd)


cluster = cluster_view


def eventually(fn, what, bound=BOUND):
    def explain():
        dump_logs()
        print(f"slots as n1 sees them: {slots(nodes['n1'])}", file=sys.stderr)
    return poll(fn, what, bound, interval=0.1, on_timeout=explain)[0]


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


class Writer(threading.Thread):
    """Writes through one node until told to stop (bounded: at most `limit` rounds)."""

    def __init__(self, node, tag, limit=200000):
        super().__init__(daemon=True)
        self.client = node.client("moves", create=False, socket_timeout=10)
        self.tag, self.limit = tag, limit
        self.stop = threading.Event()
        self.acked = {}            # unique key -> value
        self.incr = 0              # acknowledged INCRs of the shared counters
        self.hset, self.zadd, self.rpush = set(), set(), 0
        self.errors = []
        self.latencies = []

    def op(self, fn):
        t = time.monotonic()
        try:
            r = fn()
        except redis.exceptions.RedisError as e:
            if len(self.errors) < 20:
                self.errors.append(repr(e))
            else:
                self.errors.append("...")
            return None
        self.latencies.append(time.monotonic() - t)
        return r

    def run(self):
        c = self.client
        i = 0
        while not self.stop.is_set() and i < self.limit:
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
            if self.op(lambda: c.rpush(f"l:{self.tag}:{i % 79}", i)) is not None:
                self.rpush += 1
            i += 1


class JoinAndDrain(unittest.TestCase):
    def test_join_then_drain_under_writes_loses_no_acknowledged_write(self):
        n1, n2 = nodes["n1"], nodes["n2"]
        # Both nodes have the first map (before it a node refuses keyed calls, retryably).
        eventually(lambda: balanced(n1, ["n1", "n2"]) and balanced(n2, ["n1", "n2"]),
                   "the first map over n1 and n2, on both")
        n1.create_cache("moves")
        eventually(lambda: "moves" in [c["name"] for c in n2.list_caches()], "cache on n2")
        writers = [Writer(n1, "a"), Writer(n2, "b")]
        for w in writers:
            w.start()
        time.sleep(1)  # some data before the moves start
        nodes["n3"] = start_node(3)
        nodes["n3"].admin_key = n1.admin_key
        after_join = eventually(lambda: balanced(n1, ["n1", "n2", "n3"]), "n3 given its share")
        p = n1.run_cli("--host", n1.host, "--admin-port", str(n1.admin_port), "--key",
                       n1.admin_key, "node", "drain", "n2", "--wait", "--timeout", "120",
                       timeout=150)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("is drained", p.stdout)
        after_drain = eventually(lambda: balanced(n1, ["n1", "n3"]), "n2's slots on n1 and n3")
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(30)
        moves = cluster(n1)["migration"]
        lat = sorted(x for w in writers for x in w.latencies)
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        print(f"\n  after join {after_join}, after drain {after_drain}; last move {moves}\n"
              f"  {len(lat)} acknowledged writes; latency p50 {pct(0.5):.2f} ms, "
              f"p99 {pct(0.99):.2f} ms, p99.9 {pct(0.999):.2f} ms, max {lat[-1] * 1000:.1f} ms",
              file=sys.stderr)
        errors = [(w.tag, e) for w in writers for e in w.errors]
        if errors:
            dump_logs()
        self.assertEqual(errors, [], "writes were refused")
        # The checker, through n1 (n2 holds nothing now; n3 joined in the middle).
        r = n1.client("moves", create=False)
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
            lengths = sum(r.llen(f"l:{w.tag}:{i}") for i in range(79))
            self.assertEqual(lengths, w.rpush)
        # n2 owns nothing and holds nothing of the cache any more.
        self.assertEqual(slots(n1).get("n2", 0), 0)
        st, body = n2.admin("GET", "/v1/caches")
        self.assertEqual(sum(c["items"] for c in body["caches"] if c["name"] == "moves"), 0)


if __name__ == "__main__":
    unittest.main()
