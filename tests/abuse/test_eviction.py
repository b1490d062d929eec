"""Abuse suite, eviction (issue 15 F8): a tenant within its share loses nothing while another
exceeds its own, even when the other's values are large (few items, rarely sampled).

Run: cd tests/abuse && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_eviction
"""

import os
import sys
import unittest

import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import CellarServer  # noqa: E402


class LargeValues(unittest.TestCase):
    def test_a_tenant_writing_large_values_evicts_its_own(self):
        # The finding: A writes 200 x 4 MB under a 256 MiB limit; B holds 1,000 small keys.
        with CellarServer(["--threads", "2", "--memory-limit", "256mb"]) as srv:
            a_token = srv.tenant_with_cache("t_big", "a")
            b_token = srv.tenant_with_cache("t_small", "b")
            status, body = srv.admin("PATCH", "/v1/caches/a/limits?tenant=t_big",
                                     body={"write_bytes_per_second": 0})
            self.assertEqual(status, 200, body)
            a = redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=30)
            a.execute_command("AUTH", "a", a_token)
            b = redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=30)
            b.execute_command("AUTH", "b", b_token)
            p = b.pipeline(transaction=False)
            for i in range(1000):
                p.set(f"b:{i}", "x" * 40)
            p.execute()
            big = b"y" * (4 << 20)
            for round_ in range(2):
                for i in range(200):
                    a.set(f"a:{round_}:{i}", big)
                p = b.pipeline(transaction=False)
                for i in range(1000):
                    p.exists(f"b:{i}")
                alive = sum(p.execute())
                self.assertEqual(alive, 1000, f"round {round_}: B lost {1000 - alive} keys")
            self.assertLess(a.dbsize(), 200, "A was evicted down to its share")
            a.close()
            b.close()


if __name__ == "__main__":
    unittest.main()
