"""Differential test: the same seeded random sequence of string commands against Cellar and
against a real redis-server; replies must be identical (errors by full text).

Nondeterministic replies are left out (RANDOMKEY, SCAN order) or reduced to what is
deterministic (TTL/PTTL/EXPIRETIME: -2, -1 or "positive"). Expiry times used are long
(>= 1000 s) or in the past, so nothing expires by the clock during the run.

Run: cd tests/integration && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_resp_vs_redis
Env: DIFF_SEED (default 20240611), DIFF_COMMANDS (default 3000).
"""

import os
import random
import shutil
import unittest

import harness
from harness import RawConn, RespError

SEED = int(os.environ.get("DIFF_SEED", "20240611"))
COUNT = int(os.environ.get("DIFF_COMMANDS", "3000"))
MAX_MISMATCHES = 15

KEYS = [f"k{i}" for i in range(10)] + ["", "\x00bin\xff", "sp ace"]
VALUES = ["0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808",
          "9223372036854775806", "-9223372036854775807", "3.5", "1e3", "abc", "", "xxxxx",
          "  7", "007", "10.50", "-0", "+5", "0.1", "hello world", "\r\n", "\x00\x01\xff"]
INT_ARGS = ["1", "-1", "0", "100", "-100", "9223372036854775807", "-9223372036854775808",
            "x", "1.5", "", " 1"]
FLOAT_ARGS = ["0.1", "1.5", "-2", "1e2", "abc", "3", "-0.5", "5.0e3", "", "inf", "1e-3"]


def gen_commands(rng, n):
    k = lambda: rng.choice(KEYS)  # noqa: E731
    v = lambda: rng.choice(VALUES)  # noqa: E731
    cmds = []
    for _ in range(n):
        c = rng.randrange(40)
        if c < 5:
            args = ["SET", k(), v()]
            opts = []
            exp = rng.choice([None, None, ["EX", "1000"], ["PX", "2000000"], ["KEEPTTL"],
                              ["EXAT", "4102444800"], ["PXAT", "4102444800000"], ["EX", "0"]])
            # (no EXAT in the past: Redis stores such a key and DBSIZE counts it until its
            # lazy/active expiry reclaims it, a Redis artefact rather than semantics)
            if exp:
                opts += exp
            cond = rng.choice([None, None, "NX", "XX"])
            if cond:
                opts.append(cond)
            if rng.random() < 0.3:
                opts.append("GET")
            rng.shuffle(opts) if rng.random() < 0.1 else None  # sometimes scrambled (errors)
            cmds.append(args + opts)
        elif c < 9:
            cmds.append(["GET", k()])
        elif c == 9:
            cmds.append(["SETNX", k(), v()])
        elif c == 10:
            cmds.append(["SETEX", k(), rng.choice(["1000", "0", "-5", "x"]), v()])
        elif c == 11:
            cmds.append(["PSETEX", k(), rng.choice(["1000000", "0", "x"]), v()])
        elif c == 12:
            cmds.append(["GETDEL", k()])
        elif c == 13:
            cmds.append(["GETEX", k()] + rng.choice([[], ["PERSIST"], ["EX", "1000"],
                                                     ["PX", "1000000"], ["EX", "0"],
                                                     ["EXAT", "4102444800"], ["BAD"]]))
        elif c == 14:
            cmds.append(["GETSET", k(), v()])
        elif c == 15:
            cmds.append(["MGET"] + [k() for _ in range(rng.randint(1, 5))])
        elif c == 16:
            pairs = []
            for _ in range(rng.randint(1, 4)):
                pairs += [k(), v()]
            cmds.append(["MSET"] + pairs)
        elif c == 17:
            pairs = []
            for _ in range(rng.randint(1, 3)):
                pairs += [k(), v()]
            cmds.append(["MSETNX"] + pairs)
        elif c == 18:
            cmds.append([rng.choice(["DEL", "UNLINK"])] + [k() for _ in range(rng.randint(1, 3))])
        elif c == 19:
            cmds.append(["EXISTS"] + [k() for _ in range(rng.randint(1, 4))])
        elif c == 20:
            cmds.append(["TYPE", k()])
        elif c < 24:
            op = rng.choice(["INCR", "DECR", "INCRBY", "DECRBY"])
            cmds.append([op, k()] + ([rng.choice(INT_ARGS)] if op.endswith("BY") else []))
        elif c == 24:
            cmds.append(["INCRBYFLOAT", k(), rng.choice(FLOAT_ARGS)])
        elif c == 25:
            cmds.append(["APPEND", k(), v()])
        elif c == 26:
            cmds.append(["STRLEN", k()])
        elif c == 27:
            a = rng.choice(["0", "1", "-1", "-3", "5", "100", "-100", "x"])
            b = rng.choice(["0", "2", "-1", "-2", "10", "100", "-100"])
            cmds.append(["GETRANGE", k(), a, b])
        elif c == 28:
            cmds.append(["SETRANGE", k(), rng.choice(["0", "1", "3", "10", "-1", "x"]), v()])
        elif c == 29:
            cmds.append(["DBSIZE"])
        elif c == 30:
            cmds.append([rng.choice(["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"]), k()])
        elif c == 31:
            cmds.append(["PERSIST", k()])
        elif c == 32:
            cmds.append(["EXPIRE", k(), rng.choice(["1000", "-1", "0", "x", "2000"])]
                        + rng.choice([[], [], ["NX"], ["XX"], ["GT"], ["LT"]]))
        elif c == 33:
            cmds.append(["PEXPIRE", k(), rng.choice(["1000000", "-1", "3000000"])])
        elif c == 34:
            cmds.append([rng.choice(["EXPIREAT", "PEXPIREAT"]), k(),
                         rng.choice(["1", "4102444800", "4102444800000"])])
        elif c == 35:
            # wrong arity / unknown commands: error texts must match too
            cmds.append(rng.choice([["GET"], ["SET", k()], ["INCRBY", k()], ["MGET"],
                                    ["EXISTS"], ["frobnicate", rng.choice(KEYS[:10])],
                                    ["GETRANGE", k(), "0"]]))
        elif c == 36:
            cmds.append(["SET", k(), str(rng.randint(-1000, 1000))])
        elif c == 37:
            cmds.append(["SET", k(), repr(rng.uniform(-100, 100))[:8]])
        elif c == 38:
            cmds.append(["SETRANGE", k(), str(rng.randint(0, 20)), "ab"])
        else:
            cmds.append(["EXISTS", k()])
    return cmds


TTL_CMDS = {"TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"}


def normalize(cmd, reply):
    if cmd[0] in TTL_CMDS and isinstance(reply, int) and reply >= 0:
        return "positive"
    return reply


class DifferentialVsRedis(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("redis-server"):
            raise unittest.SkipTest("redis-server not installed")
        cls.ref = harness.RedisServer().start()
        try:
            cls.cellar = harness.target_under_test(["--threads", "2"]).start()
        except BaseException:
            cls.ref.stop()
            cls.ref.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        for s in (cls.cellar, cls.ref):
            try:
                s.stop()
            finally:
                s.cleanup()

    def run_sequence(self, seed, n, batch):
        rng = random.Random(seed)
        cmds = gen_commands(rng, n)
        a = RawConn.to(self.cellar, "diff")
        b = RawConn.to(self.ref, "diff")
        try:
            a.call("FLUSHDB")
            b.call("FLUSHDB")
            # Keep going after a mismatch (a reply-only difference does not disturb later
            # commands) and report the first few, so one quirk does not hide the next.
            mismatches = []
            for start in range(0, len(cmds), batch):
                chunk = cmds[start:start + batch]
                ra = a.pipeline(chunk)
                rb = b.pipeline(chunk)
                for i, (cmd, x, y) in enumerate(zip(chunk, ra, rb)):
                    x, y = normalize(cmd, x), normalize(cmd, y)
                    if x != y:
                        ctx = cmds[max(0, start + i - 3):start + i]
                        mismatches.append(f"#{start + i} {cmd!r}: cellar {x!r} / redis {y!r}"
                                          f" (after {ctx!r})")
                if len(mismatches) >= MAX_MISMATCHES:
                    break
            if mismatches:
                self.fail(f"seed {seed}: {len(mismatches)} mismatch(es)"
                          f"{' (stopped early)' if len(mismatches) >= MAX_MISMATCHES else ''}:\n  "
                          + "\n  ".join(mismatches[:MAX_MISMATCHES]))
            # Final state, key by key.
            for key in KEYS:
                for probe in (["GET", key], ["TYPE", key], ["STRLEN", key], ["TTL", key]):
                    x, y = a.call(*probe), b.call(*probe)
                    self.assertEqual(normalize(probe, x), normalize(probe, y), probe)
            self.assertEqual(a.call("DBSIZE"), b.call("DBSIZE"))
        finally:
            a.close()
            b.close()

    def test_random_string_commands_pipelined(self):
        self.run_sequence(SEED, COUNT, batch=100)

    def test_random_string_commands_one_by_one(self):
        self.run_sequence(SEED + 1, min(COUNT, 1000), batch=1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
