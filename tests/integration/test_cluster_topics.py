"""Issue 18, step 6: topics across the fleet.

One real etcd and three `cellar serve --cluster-etcd` nodes on 127.0.0.1-3, all started here
on free ports. A topic is numbered by the node that owns its slot; the others relay it (one
upstream subscription per topic per node) to their own subscribers. The official Momento SDK
subscribes through node 1 while another SDK client publishes 10,000 messages through node 3,
and redis-py subscribes through node 3 too; meanwhile the node that owns the topic (node 2) is
drained, so the topic's slot moves with its numbering. The subscribers must see every message
once, in order, numbered 1..10,000 on one page, with no discontinuity; no publish is refused.
Then the topic's new owner is killed: the subscribers hear a discontinuity (a gap is always
signalled) and keep receiving from the next owner.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(__file__))
from harness import (REPO_ROOT, cluster_node, cluster_view, poll,  # noqa: E402
                     start_fleet, stop_fleet)

BOUND = 30.0
COUNT = 10000
HOLD = 7000  # the publisher waits here until the slot has moved
etcd = None
nodes = []
NODE = shutil.which("node")
SDK_DIR = os.path.join(REPO_ROOT, "tests", "conformance", "momento")
SDK_TOOL = os.path.join(SDK_DIR, "tools", "cluster_topics.mjs")


def start_node(etcd, i):
    return cluster_node(etcd, i, "topics", "--cluster-lease-ttl", "2",
                        "--cluster-bootstrap-expect", "3")


def setUpModule():
    global etcd
    etcd, started = start_fleet(start_node)
    nodes.extend(started)
    poll(lambda: all(spread(n) for n in nodes), "the slots spread over three nodes", BOUND)


def tearDownModule():
    stop_fleet(nodes, etcd)


def spread(node):
    v = cluster_view(node)
    return v["slot_map"] is not None and len({r[2] for r in v["slot_map"]["ranges"]}) == 3


def owner_of(node, cache, key):
    status, body = node.admin("GET", f"/v1/cluster/slot?cache={cache}&key={key}")
    assert status == 200, (status, body)
    return body["owner"]


def dump_logs():
    for i, n in enumerate(nodes, 1):
        if n.proc is not None:
            print(f"\n---- n{i} ----\n" + n.log_tail(60000), file=sys.stderr)


def metric(node, name):
    return node.metric(name) or 0


class RespSubscriber(threading.Thread):
    """redis-py SUBSCRIBE on one node, collecting message payloads until told to stop."""

    def __init__(self, node, cache, topic):
        super().__init__(daemon=True)
        self.client = node.client(cache, create=False)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(topic)
        self.messages = []
        self.error = None
        self.stop = threading.Event()
        self.subscribed = threading.Event()

    def run(self):
        deadline = time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                m = self.pubsub.get_message(timeout=0.2)
            except redis.ConnectionError as e:  # its node was killed, or the test is over
                self.error = e
                return
            if m is None:
                continue
            if m["type"] == "subscribe":
                self.subscribed.set()
            elif m["type"] == "message":
                self.messages.append(m["data"].decode())

    def close(self):
        self.stop.set()
        self.join(timeout=10)
        self.pubsub.close()


@unittest.skipIf(NODE is None, "node (Node.js) is not installed: scripts/setup.sh")
class TopicsAcrossTheFleet(unittest.TestCase):
    def run(self, result=None):
        # On a failure, the nodes' logs say why (they are deleted with the nodes).
        failures = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > failures:
            dump_logs()
        return out

    def test_a_topic_moves_under_a_publisher_and_then_loses_its_owner(self):
        n1, n2, n3 = nodes
        cache = "topics"
        n1.create_cache(cache, exist_ok=True)
        # A topic numbered by n2: the subscriber's node (n1) and the publisher's (n3) both
        # reach it over the internal port.
        topic = next(f"t{i}" for i in range(10000) if owner_of(n1, cache, f"t{i}") == "n2")
        resp = RespSubscriber(n3, cache, topic)
        resp.start()
        self.assertTrue(resp.subscribed.wait(10), "redis-py subscribed on n3")
        tool = subprocess.Popen(
            [NODE, SDK_TOOL, f"{n1.host}:{n1.api_port}", f"{n3.host}:{n3.api_port}",
             n1.admin_key, cache, topic, str(COUNT), str(HOLD)],
            cwd=SDK_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        lines = []

        def read_until(pred, what, bound=BOUND):
            deadline = time.monotonic() + bound
            while time.monotonic() < deadline:
                line = tool.stdout.readline()
                if not line:
                    break
                msg = json.loads(line)
                lines.append(msg)
                if pred(msg):
                    return msg
            raise AssertionError(f"the SDK tool: no {what} (got {lines[-3:]})")

        try:
            read_until(lambda m: m.get("subscribed"), "subscription")
            read_until(lambda m: m.get("published", 0) >= 1000, "first 1000 publishes")
            # The topic's owner drains: its slots, the topic's among them, move to n1 and n3.
            p = n1.run_cli("--host", n1.host, "--admin-port", str(n1.admin_port), "--key",
                           n1.admin_key, "node", "drain", "n2", "--wait", "--timeout", "120",
                           timeout=150)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            new_owner = owner_of(n1, cache, topic)
            self.assertIn(new_owner, ("n1", "n3"), "the topic's slot left n2")
            self.assertIsNone(tool.poll(), "the publisher was still publishing after the move")
            tool.stdin.write("go\n")
            tool.stdin.flush()
            done = read_until(lambda m: "done" in m, "end", bound=120)["done"]
        finally:
            if tool.poll() is None:
                tool.kill()
            tool.wait(timeout=10)
            tool.stdin.close()
            tool.stdout.close()
        expected = [f"m{i}" for i in range(1, COUNT + 1)]
        self.assertEqual(done["errors"], [], "no subscription error, no refused publish")
        self.assertEqual(done["publishFailures"], 0)
        self.assertEqual(done["discontinuities"], [], "no gap was signalled: there was none")
        values = [v for _, v in done["items"]]
        self.assertEqual(len(values), COUNT, "every message arrived once")
        self.assertEqual(values, expected, "in order")
        self.assertEqual([s for s, _ in done["items"]], list(range(1, COUNT + 1)),
                         "numbered 1..N by the owner, across the move (one page: no gap)")
        poll(lambda: len(resp.messages) >= COUNT, "the RESP subscriber's messages", BOUND)
        self.assertEqual(resp.messages, expected, "redis-py on n3: every message once, in order")
        handovers = metric(n1, "cellar_topic_handovers_total") + \
            metric(n3, "cellar_topic_handovers_total")
        self.assertGreaterEqual(handovers, 1, "the move handed the topic's state over")
        self.assertGreaterEqual(metric(n1, "cellar_topic_relays_opened_total"), 1)
        print(f"\n  {COUNT} messages in {done['publishMs']} ms, topic moved n2 -> {new_owner}; "
              f"relayed to n1: {metric(n1, 'cellar_topic_relayed_items_total')}, "
              f"to n3: {metric(n3, 'cellar_topic_relayed_items_total')}\n", file=sys.stderr)

        # The owner dies without handing the topic over: its slots go to the survivors empty,
        # and the subscriber on the other node hears a discontinuity, then what follows.
        resp.close()
        victim = n1 if new_owner == "n1" else n3
        survivor, survivor_id = (n3, "n3") if victim is n1 else (n1, "n1")
        sub2 = RespSubscriber(survivor, cache, topic)
        sub2.start()
        self.assertTrue(sub2.subscribed.wait(10))
        poll(lambda: metric(survivor, "cellar_topic_relays_opened_total") >= 1,
             "the survivor relays the topic from its owner", BOUND)
        victim.kill()
        poll(lambda: owner_of(survivor, cache, topic) == survivor_id,
             "the dead owner's slots reassigned", BOUND)
        pub = survivor.client(cache, create=False)
        delivered = poll(lambda: pub.publish(topic, "after-death") >= 1 or None,
                         "a publish reaching the survivor's subscriber", BOUND)
        self.assertTrue(delivered)
        poll(lambda: "after-death" in sub2.messages, "the survivor's subscriber gets it", BOUND)
        self.assertGreaterEqual(metric(survivor, "cellar_topic_takeovers_total"), 1)
        sub2.close()
