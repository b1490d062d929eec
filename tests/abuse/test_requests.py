"""Abuse suite, large requests on the RESP port (issue 15 F3's process bound, for RESP):
large commands being received count against one bound for the whole process (a quarter of
the memory limit, at least 64 MiB); past it a connection's command is refused with an error
and the connection closed, so authenticated clients sending many huge commands slowly cannot
take the process's memory.

Run: cd tests/abuse && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_requests
"""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import CellarServer, resp_encode, rss_bytes  # noqa: E402

MB = 1 << 20


class LargeCommands(unittest.TestCase):
    def test_half_sent_large_commands_are_bounded_for_the_process(self):
        with CellarServer(["--threads", "2", "--memory-limit", "256mb"]) as srv:
            token = srv.tenant_with_cache("t_req", "c")
            before = rss_bytes(srv.pid)
            socks, refused = [], 0
            chunk = b"v" * MB
            for _ in range(12):  # 12 x 10 MiB of 15 MiB values, never finished
                s = socket.create_connection(("127.0.0.1", srv.resp_port), timeout=10)
                s.sendall(resp_encode("AUTH", "c", token))
                self.assertEqual(s.recv(100), b"+OK\r\n")
                s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$15000000\r\n")
                try:
                    for _ in range(10):
                        s.sendall(chunk)
                        time.sleep(0.01)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                socks.append(s)
            time.sleep(0.5)
            for s in socks:
                s.settimeout(0.2)
                try:
                    got = s.recv(200)
                    if b"receiving too much request data" in got:
                        refused += 1
                except (socket.timeout, ConnectionResetError):
                    pass
            grown = rss_bytes(srv.pid) - before
            self.assertGreaterEqual(refused, 4, "connections past the 64 MiB bound were refused")
            self.assertLess(grown, 100 * MB, f"RSS grew by {grown >> 20} MiB")
            for s in socks:
                s.close()
            # Once they are gone, a large command goes through again.
            c = srv.authed("c", token, timeout=30)
            self.assertTrue(c.set("k2", b"x" * (4 * MB)))
            c.close()


if __name__ == "__main__":
    unittest.main()
