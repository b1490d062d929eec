"""Abuse suite, connections (issue 15 F5): silent connections cannot take the server's
descriptors. Each port has a connection cap with a clear refusal, the process keeps a reserve
of descriptors (the admin port and /healthz always answer), connections that do not
authenticate in time are closed, and so are authenticated ones that stay idle.

Run: cd tests/abuse && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_connections
"""

import os
import resource
import select
import socket
import sys
import time
import unittest
import urllib.request

import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import CellarServer, resp_encode  # noqa: E402

FD_LIMIT = 300


def limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def healthz(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.admin_port}/healthz", timeout=5) as r:
        return r.status


def silent(port, n):
    """n TCP connections that never send a byte."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
    return socks


def closed_by_server(sock, timeout=10.0):
    """Reads until the server closes the socket; returns what it sent (None: still open)."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return got
            got += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        return got


def closed_now(socks, wait=1.0):
    """The sockets the server has closed (or written to) within `wait` seconds."""
    time.sleep(wait)
    readable, _, _ = select.select(socks, [], [], 0)
    return readable


class SilentFlood(unittest.TestCase):
    """400 silent connections against a 300-descriptor process (the finding's numbers)."""

    def setUp(self):
        self.server = CellarServer(["--threads", "2", "--max-connections", "100",
                                    "--preauth-timeout", "2"], preexec_fn=limit_fds).start()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.server.stop()
        self.server.cleanup()

    def test_flood_is_refused_then_timed_out_and_health_checks_answer(self):
        srv = self.server
        token = srv.tenant_with_cache("t_flood", "c")
        # Past the cap (100 per port) connections are accepted and closed with Redis's words.
        self.socks += silent(srv.resp_port, 200)
        self.socks += silent(srv.api_port, 200)
        self.assertEqual(healthz(srv), 200, "the admin port answers during the flood")
        refused = closed_now(self.socks[:200])
        self.assertGreaterEqual(len(refused), 100, "RESP connections past the cap are closed")
        self.assertLessEqual(len(refused), 110, "and only those (the pre-auth timeout is 2 s)")
        self.assertGreaterEqual(len(closed_now(self.socks[200:], 0)), 100, "the same on the API")
        s = socket.create_connection(("127.0.0.1", srv.resp_port), timeout=5)
        self.assertEqual(closed_by_server(s, 5), b"-ERR max number of clients reached\r\n")
        s.close()
        self.assertGreaterEqual(srv.metric("cellar_connections_refused_total", 'port="resp"'), 101)
        self.assertGreaterEqual(srv.metric("cellar_connections_refused_total", 'port="api"'), 100)
        # The silent ones are closed once the pre-auth timeout (2 s) passes...
        for sock in self.socks:
            self.assertIsNotNone(closed_by_server(sock, 10), "a silent connection was closed")
        self.assertGreaterEqual(
            srv.metric("cellar_connections_timed_out_total", 'port="resp",reason="preauth"'), 99)
        self.assertGreaterEqual(
            srv.metric("cellar_connections_timed_out_total", 'port="api",reason="preauth"'), 99)
        # ...and a client that authenticates gets in and works.
        c = redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=5)
        c.execute_command("AUTH", "c", token)
        self.assertTrue(c.set("k", "v"))
        self.assertEqual(c.get("k"), b"v")
        c.close()
        self.assertEqual(healthz(srv), 200)

    def test_an_authenticated_client_is_not_cut_by_the_preauth_timeout(self):
        srv = self.server
        token = srv.tenant_with_cache("t_auth", "c")
        s = socket.create_connection(("127.0.0.1", srv.resp_port), timeout=5)
        s.sendall(resp_encode("AUTH", "c", token))
        self.assertEqual(s.recv(100), b"+OK\r\n")
        time.sleep(3.5)  # past the pre-auth timeout (2 s), well before the idle one (1 h)
        s.sendall(resp_encode("PING"))
        self.assertEqual(s.recv(100), b"+PONG\r\n")
        s.close()


class IdleTimeout(unittest.TestCase):
    def setUp(self):
        self.server = CellarServer(["--threads", "2", "--idle-timeout", "2"]).start()

    def tearDown(self):
        self.server.stop()
        self.server.cleanup()

    def test_idle_clients_are_closed_subscribers_are_not(self):
        srv = self.server
        token = srv.tenant_with_cache("t_idle", "c")
        idle = socket.create_connection(("127.0.0.1", srv.resp_port), timeout=5)
        idle.sendall(resp_encode("AUTH", "c", token))
        self.assertEqual(idle.recv(100), b"+OK\r\n")
        sub = socket.create_connection(("127.0.0.1", srv.resp_port), timeout=5)
        sub.sendall(resp_encode("AUTH", "c", token) + resp_encode("SUBSCRIBE", "news"))
        got = b""
        while b"news" not in got:
            got += sub.recv(4096)
        busy = redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=5)
        busy.execute_command("AUTH", "c", token)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:  # keeps talking: never idle
            busy.ping()
            time.sleep(0.2)
        self.assertEqual(closed_by_server(idle, 5), b"", "the idle connection was closed")
        self.assertEqual(busy.ping(), True, "the busy one was not")
        # The subscriber heard nothing for 5 s and is still subscribed.
        busy.publish("news", "hello")
        sub.settimeout(5)
        got = b""
        while b"hello" not in got:
            chunk = sub.recv(4096)
            self.assertTrue(chunk, "the subscriber was closed")
            got += chunk
        self.assertGreaterEqual(
            srv.metric("cellar_connections_timed_out_total", 'port="resp",reason="idle"'), 1)
        sub.close()
        busy.close()
        idle.close()


if __name__ == "__main__":
    unittest.main()
