"""Abuse suite, glob patterns (issue 15 F2): a pattern cannot hold an event loop. Patterns are
at most 4096 bytes (KEYS, SCAN/HSCAN/SSCAN/ZSCAN MATCH, PUBSUB CHANNELS; PSUBSCRIBE through the
topic-name limit), the matcher never backtracks (src/common/glob.cc: linear in the text), and
KEYS sweeps in slices of bounded work, so other clients' commands run in between.

Run: cd tests/abuse && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_glob
"""

import os
import sys
import threading
import time
import unittest

import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import CellarServer, stop_server  # noqa: E402

SERVER = None
TOKEN = None
LONG_KEY = "a" * 100_000


def setUpModule():
    global SERVER, TOKEN
    SERVER = CellarServer(["--threads", "1"]).start()
    TOKEN = SERVER.tenant_with_cache("t_glob", "c")
    c = client()
    c.set(LONG_KEY, "v")
    c.hset("h", LONG_KEY, "v")
    for i in range(2000):
        c.set(f"k:{i}", i)
    c.close()


def tearDownModule():
    stop_server(SERVER)


def client(timeout=10, cache="c"):
    return SERVER.authed(cache, TOKEN, timeout=timeout)


class Patterns(unittest.TestCase):
    def test_patterns_over_the_limit_are_refused(self):
        c = client()
        too_long = "*" + "a" * 10_000 + "b"  # the finding's pattern
        for cmd in (["KEYS", too_long], ["SCAN", "0", "MATCH", too_long],
                    ["HSCAN", "h", "0", "MATCH", too_long], ["PUBSUB", "CHANNELS", too_long]):
            with self.assertRaisesRegex(redis.ResponseError, "over the limit of 4096",
                                        msg=cmd[0]):
                c.execute_command(*cmd)
        p = c.pubsub()
        with self.assertRaisesRegex(redis.ResponseError, "over the limit"):
            p.psubscribe(too_long)
            p.get_message(timeout=5)
        c.close()

    def test_the_worst_patterns_at_the_limit_still_answer_right(self):
        c = client()
        worst = "*" + "a" * 4000 + "b"  # no backtracking matcher: linear in the key
        self.assertEqual(c.keys(worst), [])
        self.assertEqual(c.keys("*" + "a" * 4000), [LONG_KEY.encode()])
        cursor, keys = 0, []
        while True:
            cursor, batch = c.scan(cursor, match=worst, count=1000)
            keys += batch
            if cursor == 0:
                break
        self.assertEqual(keys, [])
        self.assertEqual(c.hscan("h", 0, match="*" + "a" * 4000)[1], {LONG_KEY.encode(): b"v"})
        self.assertEqual(len(c.keys("k:*")), 2000)
        self.assertEqual(len(c.keys("*")), 2002)  # and the hash
        c.close()

    def test_keys_is_sliced_and_others_are_served_meanwhile(self):
        # KEYS of a costly pattern over a larger cache runs in many slices (about 0.3 s in
        # all here); GETs sent while it runs are answered in between, not after it. Checked by
        # order: on one loop without slices none could complete before the sweep's end.
        status, body = SERVER.admin("PUT", "/v1/caches/big?tenant=t_glob")
        self.assertEqual(status, 201, body)
        status, body = SERVER.admin("PATCH", "/v1/caches/big/limits?tenant=t_glob",
                                    body={"requests_per_second": 0})
        self.assertEqual(status, 200, body)
        c = client(timeout=60, cache="big")
        pipe = c.pipeline(transaction=False)
        for i in range(60_000):
            pipe.set(f"big:{i}:" + "a" * 1000, 1)
        pipe.execute()
        worst = "*" + "a" * 4000 + "b"
        keys_client = client(timeout=60, cache="big")
        result = {}

        def run_keys():
            result["sent"] = time.monotonic()
            result["keys"] = keys_client.keys(worst)
            result["done"] = time.monotonic()

        probe = client()  # another cache, same loop (--threads 1)
        t = threading.Thread(target=run_keys)
        t.start()
        during = 0
        deadline = time.monotonic() + 30
        while "done" not in result and time.monotonic() < deadline:
            sent = time.monotonic()
            self.assertEqual(probe.get("k:1"), b"1")
            if "sent" in result and sent > result["sent"] + 0.02 and "done" not in result:
                during += 1
        t.join(60)
        self.assertEqual(result.get("keys"), [])
        self.assertGreater(result["done"] - result["sent"], 0.05, "KEYS ran long enough to tell")
        self.assertGreater(during, 3, result)
        probe.close()
        keys_client.close()
        c.close()


if __name__ == "__main__":
    unittest.main()
