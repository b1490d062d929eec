"""Issue 18, step 2: membership and leadership on etcd.

Three `cellar serve --cluster-etcd` nodes (n1, n2, n3 in zones z1, z2, z3, on 127.0.0.1-3) and
one real etcd, all started here on free ports, with 2-second leases. Every node sees every
member and the same control leader; a leader that leaves hands over to another; a second
process with a live node's id is refused; and a node that cannot keep its lease (etcd down
past the lease's deadline; shorter outages are test_cluster_faults') stops acknowledging
writes (RESP -TRYAGAIN, counted) while it still serves reads, and serves writes again once etcd
is back; a node paused past its lease refuses writes the moment it
resumes, then rejoins.
"""

import os
import signal
import subprocess
import sys
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(__file__))
from harness import (cellar_bin, cluster_node, cluster_view, poll,  # noqa: E402
                     start_fleet, stop_fleet)

TTL = 2
BOUND = 20.0  # seconds any change may take here (lease expiry, rejoin backoff), never slept

etcd = None
nodes = []


def start_node(i, data_dir=None):
    return cluster_node(etcd, i, "members", "--cluster-lease-ttl", str(TTL), data_dir=data_dir,
                        threads=1)


def setUpModule():
    global etcd
    etcd, started = start_fleet(lambda e, i: cluster_node(
        e, i, "members", "--cluster-lease-ttl", str(TTL), threads=1))
    nodes.extend(started)


def tearDownModule():
    stop_fleet(nodes, etcd)


cluster = cluster_view


def eventually(fn, what):
    return poll(fn, what, BOUND)[0]


def healthy():
    """Every node serving, three members, one leader all agree on."""
    views = [cluster(n) for n in nodes]
    leaders = {v["leader"] for v in views}
    ok = (all(v["serving"] for v in views) and all(len(v["members"]) == 3 for v in views) and
          len(leaders) == 1 and None not in leaders and
          sum(v["is_leader"] for v in views) == 1)
    return views if ok else None


class Members(unittest.TestCase):
    def test_every_node_sees_all_members_their_zones_and_one_leader(self):
        views = eventually(healthy, "three members and one leader")
        for n, v in zip(nodes, views):
            self.assertEqual(v["mode"], "cluster")
            self.assertEqual(v["self"], f"n{nodes.index(n) + 1}")
            self.assertEqual(v["zones"], {"z1": ["n1"], "z2": ["n2"], "z3": ["n3"]})
            by_id = {m["node"]: m for m in v["members"]}
            for i, other in enumerate(nodes, 1):
                m = by_id[f"n{i}"]
                self.assertEqual(m["resp"], f"127.0.0.{i}:{other.resp_port}")
                self.assertEqual(m["api"], f"127.0.0.{i}:{other.api_port}")
                self.assertEqual(m["admin"], f"127.0.0.{i}:{other.admin_port}")
                self.assertEqual(m["roles"], "gateway,storage,control")
                self.assertEqual(m["cores"], 1)
        self.assertEqual(nodes[0].metric("cellar_cluster_members"), 3)
        self.assertEqual(nodes[0].metric("cellar_cluster_serving"), 1)
        leaders = sum(n.metric("cellar_cluster_leader") for n in nodes)
        self.assertEqual(leaders, 1)
        self.assertGreater(nodes[0].metric("cellar_etcd_calls_total"), 0)

    def test_a_leader_that_leaves_hands_control_to_another(self):
        views = eventually(healthy, "a healthy cluster")
        leader = views[0]["leader"]
        i = int(leader[1:]) - 1
        old = nodes[i]
        old.stop()  # a clean stop revokes its lease: its keys go at once
        others = [n for n in nodes if n is not old]

        def new_leader():
            vs = [cluster(n) for n in others]
            ls = {v["leader"] for v in vs}
            ok = len(ls) == 1 and None not in ls and leader not in ls and \
                all(len(v["members"]) == 2 for v in vs)
            return vs[0]["leader"] if ok else None
        successor = eventually(new_leader, "a new leader among the two left")
        nodes[i] = start_node(i + 1, data_dir=old.data_dir)
        nodes[i].admin_key = others[0].admin_key
        views = eventually(healthy, "the old leader back as a member")
        self.assertEqual(views[0]["leader"], successor)  # no needless change of leader


class Outage(unittest.TestCase):
    def test_without_etcd_writes_stop_at_the_lease_deadline_reads_go_on_writes_resume(self):
        eventually(healthy, "a healthy cluster")
        nodes[0].create_cache("lease")
        c = nodes[0].client("lease", create=False, socket_timeout=5)
        self.assertTrue(c.set("k", "before"))
        before = nodes[0].metric("cellar_cluster_lease_losses_total")
        etcd.stop()
        acked = []
        try:
            # Writes go on until the lease's deadline (the outage may be short), then stop.
            def refused():
                try:
                    c.set("k", "during")
                    acked.append(1)
                    return False
                except redis.exceptions.ResponseError as e:
                    # TRYAGAIN, as Redis Cluster answers while it cannot serve for a moment.
                    self.assertTrue(str(e).startswith("TRYAGAIN Not serving writes"), str(e))
                    return True
            eventually(refused, "writes refused without etcd")
            # Reads go on, and show the last acknowledged write.
            self.assertEqual(c.get("k"), b"during" if acked else b"before")
            # The refusal may have come from the key's owner, whose deadline can pass a moment
            # before this node's own.
            eventually(lambda: nodes[0].metric("cellar_cluster_serving") == 0,
                       "node 1 past its own deadline")
            self.assertGreater(nodes[0].metric("cellar_cluster_lease_losses_total"), before)
        finally:
            etcd.restart()

        def accepted():
            try:
                return c.set("k", "after")
            except redis.exceptions.ResponseError:
                return False
        eventually(accepted, "writes accepted again with etcd back")
        self.assertEqual(c.get("k"), b"after")
        eventually(healthy, "every node back")


    def test_a_paused_node_refuses_writes_the_moment_it_resumes_then_rejoins(self):
        eventually(healthy, "a healthy cluster")
        node = nodes[2]
        node.create_cache("pause")
        c = node.client("pause", create=False, socket_timeout=10)
        self.assertTrue(c.set("k", "before"))
        os.kill(node.pid, signal.SIGSTOP)
        try:
            # etcd expires its lease (no keepalive for a whole TTL): the others see n3 leave.
            eventually(lambda: "n3" not in {m["node"] for m in cluster(nodes[0])["members"]},
                       "n3 gone from the members")
        finally:
            os.kill(node.pid, signal.SIGCONT)
        # Its deadline passed while it was stopped: the first write after it resumes is refused,
        # whatever its own timers have done yet.
        with self.assertRaises(redis.exceptions.ResponseError) as refused:
            c.set("k", "right after")
        self.assertTrue(str(refused.exception).startswith("TRYAGAIN"), str(refused.exception))
        # Reads go on. (What they find depends on where k's slot is now: n3's slots went to
        # the others, empty, when its lease expired; there are no replicas yet.)
        self.assertIn(c.get("k"), (b"before", None))

        def accepted():
            try:
                return c.set("k", "after")
            except redis.exceptions.ResponseError:
                return False
        eventually(accepted, "n3 rejoined and serving")
        eventually(healthy, "every node back")


class SameId(unittest.TestCase):
    def test_a_second_process_with_a_live_nodes_id_is_refused(self):
        eventually(healthy, "a healthy cluster")
        data = os.path.join(nodes[1].data_dir, "twin")
        start = time.monotonic()
        p = subprocess.run([cellar_bin(), "serve", "--data-dir", data, "--bind", "127.0.0.9",
                            "--resp-port", "0", "--admin-port", "0", "--api-port", "0",
                            "--threads", "1", "--cluster-etcd", etcd.url,
                            "--cluster-name", "members", "--node-id", "n2",
                            "--cluster-lease-ttl", str(TTL)],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("node id n2 is held by a live member", p.stdout + p.stderr)
        # It waited about one lease (a crashed predecessor's would have expired), no more.
        self.assertLess(time.monotonic() - start, 30)
        self.assertEqual(len(cluster(nodes[1])["members"]), 3)


if __name__ == "__main__":
    unittest.main()
