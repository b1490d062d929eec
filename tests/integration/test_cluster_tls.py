"""Issue 18: a fleet whose nodes run TLS talks to itself in TLS.

One real etcd and two `cellar serve --tls-self-signed --cluster-etcd` nodes on 127.0.0.1-2.
Their internal port takes TLS only; each node dials the other in TLS, and its hello proves the
cluster's secret (an HMAC bound to the TLS session) instead of sending it. Checked: keyed calls
forwarded both ways, a topic relayed, cache-wide calls across both nodes; a plaintext hello
with the real secret is refused, and so is the bare secret inside TLS (it is not the proof).
"""

import json
import os
import socket
import ssl
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (cluster_node, cluster_view, poll, start_fleet,  # noqa: E402
                     stop_fleet)

BOUND = 20.0
etcd = None
nodes = []


def setUpModule():
    global etcd
    etcd, started = start_fleet(lambda e, i: cluster_node(
        e, i, "tls", "--tls-self-signed", "--cluster-bootstrap-expect", "2"), count=2)
    nodes.extend(started)
    poll(lambda: all(len({r[2] for r in (cluster_view(n)["slot_map"] or {"ranges": []})["ranges"]})
                     == 2 for n in nodes), "the slots spread over two nodes", BOUND)


def tearDownModule():
    stop_fleet(nodes, etcd)


def internal_of(node, node_id):
    member = next(m for m in cluster_view(node)["members"] if m["node"] == node_id)
    host, port = member["internal"].rsplit(":", 1)
    return host, int(port)


def hello(secret):
    return len(secret).to_bytes(4, "little") + b"\x01" + (0).to_bytes(8, "little") + secret


class TlsFleet(unittest.TestCase):
    def test_calls_topics_and_cache_wide_calls_cross_in_tls(self):
        n1, n2 = nodes
        n1.create_cache("tls", exist_ok=True)
        c1 = n1.client("tls", create=False)
        c2 = n2.client("tls", create=False)
        sub = c1.pubsub()
        sub.subscribe("news")
        self.assertEqual(sub.get_message(timeout=5)["type"], "subscribe")
        for i in range(200):
            c1.set(f"k{i}", f"v{i}")
        self.assertEqual([c2.get(f"k{i}") for i in range(200)],
                         [f"v{i}".encode() for i in range(200)])
        self.assertEqual(c2.dbsize(), 200)
        items = []
        for n in nodes:
            st, body = n.admin("GET", "/v1/caches")
            items.append(sum(c["items"] for c in body["caches"] if c["name"] == "tls"))
        self.assertTrue(all(x > 0 for x in items), f"keys on both nodes: {items}")
        # Publish through n2 whatever node owns the topic; the subscriber on n1 hears it.
        poll(lambda: c2.publish("news", "over tls") >= 0 and
             (sub.get_message(timeout=0.2) or {}).get("data") == b"over tls",
             "a message relayed to n1", BOUND)
        sub.close()
        self.assertGreater(n1.metric("cellar_forwarded_calls_total"), 0)
        self.assertGreater(n2.metric("cellar_forwarded_calls_served_total"), 0)

    def test_plaintext_and_the_bare_secret_are_refused(self):
        host, port = internal_of(nodes[0], "n2")
        secret = json.loads(etcd.get("/cellar/v1/tls/internal/secret"))["secret"].encode()
        # Plaintext, even with the right secret: the port takes TLS only.
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(hello(secret))
            self.assertEqual(s.recv(100), b"")
        # TLS, but the secret itself rather than the proof bound to the session.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((host, port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(hello(secret))
                try:
                    answer = s.recv(100)
                except (ssl.SSLError, ConnectionResetError):
                    answer = b""
                self.assertEqual(answer, b"")


if __name__ == "__main__":
    unittest.main()
