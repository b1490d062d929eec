"""Abuse suite, topics (issue 15 F4): subscription state is bounded. Topic (channel) names
and patterns have a length limit, checked before anything is kept; and a tenant has a
subscription cap over all its caches (tenant_max_subscriptions) beside each cache's.

Run: cd tests/abuse && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_topics
"""

import os
import socket
import sys
import time
import unittest

import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import CellarServer, resp_encode, rss_bytes, stop_server  # noqa: E402

SERVER = None


def setUpModule():
    global SERVER
    SERVER = CellarServer(["--threads", "2"]).start()


def tearDownModule():
    stop_server(SERVER)


def read_reply(sock, want):
    got = b""
    while want not in got:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


class Names(unittest.TestCase):
    def test_long_channel_names_and_patterns_are_refused_and_not_kept(self):
        token = SERVER.tenant_with_cache("t_names", "c")
        before = rss_bytes(SERVER.pid)
        s = socket.create_connection(("127.0.0.1", SERVER.resp_port), timeout=30)
        s.sendall(resp_encode("AUTH", "c", token))
        self.assertEqual(s.recv(100), b"+OK\r\n")
        big = b"n" * (10 << 20)
        for i in range(20):  # the finding: 20 subscriptions with 10 MB names took +1 GB
            cmd = "SUBSCRIBE" if i % 2 == 0 else "PSUBSCRIBE"
            s.sendall(resp_encode(cmd, big + str(i).encode()))
            line = read_reply(s, b"\r\n")
            self.assertTrue(line.startswith(b"-ERR"), line[:200])
            # A pattern's own bound is lower (it is matched against every publish).
            self.assertIn(b"over the limit of 4096" if cmd == "SUBSCRIBE" else b"over the limit of 256",
                          line)
        s.sendall(resp_encode("PUBLISH", big, "x"))
        line = read_reply(s, b"\r\n")
        self.assertTrue(line.startswith(b"-ERR") and b"over the limit" in line, line[:200])
        # The connection is still usable, and a name at the limit is fine.
        s.sendall(resp_encode("SUBSCRIBE", "n" * 4096))
        self.assertIn(b":1\r\n", read_reply(s, b":1\r\n"))
        s.close()
        grown = rss_bytes(SERVER.pid) - before
        self.assertLess(grown, 100 << 20, f"RSS grew by {grown} bytes")


class Charged(unittest.TestCase):
    def test_subscription_state_counts_as_the_caches_memory(self):
        token = SERVER.tenant_with_cache("t_subbytes", "c")

        def cache_bytes():
            status, body = SERVER.admin("GET", "/v1/caches?tenant=t_subbytes")
            self.assertEqual(status, 200, body)
            return next(c["bytes"] for c in body["caches"] if c["name"] == "c")

        before = cache_bytes()
        s = socket.create_connection(("127.0.0.1", SERVER.resp_port), timeout=30)
        s.sendall(resp_encode("AUTH", "c", token))
        self.assertEqual(s.recv(100), b"+OK\r\n")
        names = [("%04d" % i) + "n" * 4000 for i in range(200)]
        s.sendall(resp_encode("SUBSCRIBE", *names))
        read_reply(s, b":200\r\n")
        during = cache_bytes()
        # 200 names of 4 KB, each kept twice, and the fixed part: about 1.6 MB.
        self.assertGreater(during - before, 200 * 8000, (before, during))
        s.sendall(resp_encode("UNSUBSCRIBE"))
        read_reply(s, b":0\r\n")
        s.close()
        for _ in range(50):
            if cache_bytes() == before:
                break
            time.sleep(0.05)
        self.assertEqual(cache_bytes(), before, "given back when they end")


class TenantCap(unittest.TestCase):
    def test_a_tenant_cannot_exceed_its_subscriptions_over_all_its_caches(self):
        token = SERVER.tenant_with_cache("t_subcap", "a")
        status, body = SERVER.admin("PUT", "/v1/caches/b?tenant=t_subcap")
        self.assertEqual(status, 201, body)
        status, body = SERVER.admin("PATCH", "/v1/tenants/t_subcap/limits",
                                    body={"tenant_max_subscriptions": 3})
        self.assertEqual(status, 200, body)
        subs = []
        for cache, channel in (("a", "x"), ("b", "y"), ("a", "z")):
            c = redis.Redis(host="127.0.0.1", port=SERVER.resp_port, socket_timeout=5)
            c.execute_command("AUTH", cache, token)
            p = c.pubsub()
            p.subscribe(channel)
            self.assertEqual(p.get_message(timeout=5)["type"], "subscribe")
            subs.append((c, p))
        c = redis.Redis(host="127.0.0.1", port=SERVER.resp_port, socket_timeout=5)
        c.execute_command("AUTH", "b", token)
        p = c.pubsub()
        with self.assertRaisesRegex(redis.ResponseError, "tenant_max_subscriptions"):
            p.subscribe("w")
            p.get_message(timeout=5)
        # Another tenant is not affected.
        other = SERVER.tenant_with_cache("t_subcap_other", "a")
        o = redis.Redis(host="127.0.0.1", port=SERVER.resp_port, socket_timeout=5)
        o.execute_command("AUTH", "a", other)
        op = o.pubsub()
        op.subscribe("x")
        self.assertEqual(op.get_message(timeout=5)["type"], "subscribe")
        for c, p in subs + [(o, op)]:
            p.close()
            c.close()


if __name__ == "__main__":
    unittest.main()
