"""Cellar RESP integration tests through redis-py (and a raw socket where exact bytes matter).

Run: cd tests/integration && CELLAR_BIN=/path/to/cellar /usr/bin/python3 -m unittest -v test_resp_redis_py
With CELLAR_IT_REFERENCE=redis the protocol-semantics tests run against a real redis-server
instead (a check of the tests' own expectations); Cellar-only tests are skipped then.
"""

import os
import random
import socket
import threading
import time
import unittest

import redis

import harness
from harness import CellarServer, RawConn, RespError, reference_mode, stop_server

SERVER = None


def setUpModule():
    global SERVER
    SERVER = harness.target_under_test(["--threads", "2", "--memory-limit", "512mb"])
    SERVER.start()


def tearDownModule():
    stop_server(SERVER)


cellar_only = unittest.skipIf(reference_mode(), "Cellar-specific (admin API, AUTH, flags)")


class Base(unittest.TestCase):
    """Each test gets its own cache (namespace) on the shared server, empty at start."""

    def setUp(self):
        self.cache = "t_" + self._testMethodName[:60]
        self.r = SERVER.client(self.cache)
        self.r.flushdb()

    def raw(self, cache=None):
        c = RawConn.to(SERVER, cache if cache is not None else self.cache)
        self.addCleanup(c.close)
        return c


class PipelineAndBinary(Base):
    def test_pipeline_10000_set_then_get(self):
        n = 10000
        p = self.r.pipeline(transaction=False)
        for i in range(n):
            p.set(f"key:{i}", f"value:{i}:" + "x" * (i % 50))
        for i in range(n):
            p.get(f"key:{i}")
        replies = p.execute()
        self.assertEqual(len(replies), 2 * n)
        for i in range(n):
            self.assertIs(replies[i], True, f"SET #{i}")
        for i in range(n):
            self.assertEqual(replies[n + i], f"value:{i}:".encode() + b"x" * (i % 50), f"GET #{i}")
        self.assertEqual(self.r.dbsize(), n)

    def test_raw_pipeline_10000_in_one_write(self):
        # One sendall of 10,000 commands; replies must come back complete and in order.
        c = self.raw()
        cmds = []
        for i in range(5000):
            cmds.append(("SET", f"p{i}", str(i)))
            cmds.append(("GET", f"p{i}"))
        replies = c.pipeline(cmds)
        for i in range(5000):
            self.assertEqual(replies[2 * i], b"OK")
            self.assertEqual(replies[2 * i + 1], str(i).encode())

    def test_all_byte_values_in_keys_and_values(self):
        p = self.r.pipeline(transaction=False)
        for b in range(256):
            p.set(b"k" + bytes([b]) + b"k", bytes([b]) * 3)
        all_bytes = bytes(range(256))
        p.set(all_bytes, all_bytes[::-1])
        p.set(b"crlf\r\nkey", b"\r\n$5\r\n*1\r\n")
        p.set(b"\x00", b"")
        p.set(b"", b"empty key")
        p.execute()
        for b in range(256):
            self.assertEqual(self.r.get(b"k" + bytes([b]) + b"k"), bytes([b]) * 3, f"byte {b}")
        self.assertEqual(self.r.get(all_bytes), all_bytes[::-1])
        self.assertEqual(self.r.get(b"crlf\r\nkey"), b"\r\n$5\r\n*1\r\n")
        self.assertEqual(self.r.get(b"\x00"), b"")
        self.assertEqual(self.r.get(b""), b"empty key")
        self.assertEqual(self.r.strlen(all_bytes), 256)
        self.assertEqual(self.r.dbsize(), 256 + 4)
        # Every key comes back byte-exact from SCAN as well.
        keys = set(self.r.scan_iter(count=100))
        self.assertIn(all_bytes, keys)
        self.assertIn(b"", keys)
        self.assertEqual(len(keys), 260)

    def test_one_mib_value(self):
        v = os.urandom(1 << 20)
        self.assertTrue(self.r.set("big", v))
        self.assertEqual(self.r.get("big"), v)
        self.assertEqual(self.r.strlen("big"), 1 << 20)
        self.assertEqual(self.r.getrange("big", (1 << 20) - 10, -1), v[-10:])
        # Several in one pipeline
        vals = [os.urandom(1 << 20) for _ in range(4)]
        p = self.r.pipeline(transaction=False)
        for i, x in enumerate(vals):
            p.set(f"big{i}", x)
        for i in range(len(vals)):
            p.get(f"big{i}")
        out = p.execute()
        self.assertEqual(out[4:], vals)


class Expiry(Base):
    def test_set_px_expires(self):
        self.assertTrue(self.r.set("k", "v", px=300))
        self.assertEqual(self.r.get("k"), b"v")
        pttl = self.r.pttl("k")
        self.assertTrue(0 < pttl <= 300, pttl)
        time.sleep(0.6)
        self.assertIsNone(self.r.get("k"))
        self.assertEqual(self.r.exists("k"), 0)
        self.assertEqual(self.r.ttl("k"), -2)

    def test_ttl_family(self):
        r = self.r
        self.assertEqual(r.ttl("missing"), -2)
        self.assertEqual(r.pttl("missing"), -2)
        self.assertEqual(r.expire("missing", 100), False)
        self.assertEqual(r.persist("missing"), False)
        self.assertEqual(r.execute_command("EXPIRETIME", "missing"), -2)
        r.set("k", "v")
        self.assertEqual(r.ttl("k"), -1)
        self.assertEqual(r.pttl("k"), -1)
        self.assertEqual(r.execute_command("EXPIRETIME", "k"), -1)
        self.assertEqual(r.persist("k"), False)
        self.assertEqual(r.expire("k", 100), True)
        self.assertIn(r.ttl("k"), (99, 100))
        self.assertTrue(99000 < r.pttl("k") <= 100000)
        now = int(time.time())
        et = r.execute_command("EXPIRETIME", "k")
        self.assertTrue(now + 98 <= et <= now + 101, (now, et))
        pet = r.execute_command("PEXPIRETIME", "k")
        self.assertTrue(abs(pet - et * 1000) < 1000, (pet, et))
        self.assertEqual(r.pexpire("k", 50000), True)
        self.assertTrue(49000 < r.pttl("k") <= 50000)
        self.assertEqual(r.persist("k"), True)
        self.assertEqual(r.ttl("k"), -1)
        # EXPIREAT / PEXPIREAT in the future, then in the past (deletes).
        self.assertEqual(r.expireat("k", now + 1000), True)
        self.assertTrue(998 <= r.ttl("k") <= 1000)
        self.assertEqual(r.execute_command("EXPIRETIME", "k"), now + 1000)
        self.assertEqual(r.pexpireat("k", (now + 2000) * 1000), True)
        self.assertEqual(r.execute_command("PEXPIRETIME", "k"), (now + 2000) * 1000)
        self.assertEqual(r.expireat("k", now - 10), True)
        self.assertEqual(r.exists("k"), 0)
        # EXPIRE with 0 / negative deletes at once.
        r.set("k2", "v")
        self.assertEqual(r.expire("k2", 0), True)
        self.assertIsNone(r.get("k2"))
        r.set("k3", "v")
        self.assertEqual(r.pexpire("k3", -5), True)
        self.assertIsNone(r.get("k3"))
        # SET without KEEPTTL clears the TTL; with KEEPTTL keeps it.
        r.set("k4", "v", ex=100)
        r.set("k4", "w")
        self.assertEqual(r.ttl("k4"), -1)
        r.set("k4", "v", ex=100)
        r.set("k4", "w", keepttl=True)
        self.assertIn(r.ttl("k4"), (99, 100))
        # APPEND / SETRANGE / INCR keep the TTL.
        r.append("k4", "x")
        r.setrange("k4", 0, "z")
        self.assertIn(r.ttl("k4"), (99, 100))
        r.set("n", 1, ex=100)
        r.incr("n")
        self.assertIn(r.ttl("n"), (99, 100))
        # Error cases
        with self.assertRaisesRegex(redis.ResponseError, "not an integer or out of range"):
            r.execute_command("EXPIRE", "n", "abc")
        with self.assertRaisesRegex(redis.ResponseError, "invalid expire time in 'set' command"):
            r.set("k5", "v", ex=0)
        with self.assertRaisesRegex(redis.ResponseError, "invalid expire time in 'set' command"):
            r.execute_command("SET", "k5", "v", "PX", "-1")

    def test_expire_options_nx_xx_gt_lt(self):
        r = self.r
        r.set("k", "v")
        self.assertEqual(r.execute_command("EXPIRE", "k", 100, "XX"), 0)
        self.assertEqual(r.execute_command("EXPIRE", "k", 100, "NX"), 1)
        self.assertEqual(r.execute_command("EXPIRE", "k", 200, "NX"), 0)
        self.assertEqual(r.execute_command("EXPIRE", "k", 50, "GT"), 0)
        self.assertEqual(r.execute_command("EXPIRE", "k", 200, "GT"), 1)
        self.assertEqual(r.execute_command("EXPIRE", "k", 300, "LT"), 0)
        self.assertEqual(r.execute_command("EXPIRE", "k", 150, "LT"), 1)
        self.assertIn(r.ttl("k"), (149, 150))

    def test_many_keys_expire(self):
        p = self.r.pipeline(transaction=False)
        for i in range(2000):
            p.set(f"e{i}", "v", px=200)
        for i in range(100):
            p.set(f"keep{i}", "v")
        p.execute()
        time.sleep(0.7)
        p = self.r.pipeline(transaction=False)
        for i in range(2000):
            p.get(f"e{i}")
        self.assertEqual(set(p.execute()), {None})
        self.assertEqual(self.r.exists(*[f"keep{i}" for i in range(100)]), 100)
        # Expired keys are not visible through SCAN either.
        self.assertEqual(sorted(self.r.scan_iter(count=500)),
                         sorted(f"keep{i}".encode() for i in range(100)))


class StringCommands(Base):
    def test_set_options(self):
        r = self.r
        self.assertTrue(r.set("k", "v1"))
        self.assertIsNone(r.set("k", "v2", nx=True))
        self.assertEqual(r.get("k"), b"v1")
        self.assertTrue(r.set("k", "v2", xx=True))
        self.assertIsNone(r.set("nope", "v", xx=True))
        self.assertEqual(r.exists("nope"), 0)
        self.assertEqual(r.set("k", "v3", get=True), b"v2")
        self.assertIsNone(r.set("new", "v", get=True))
        self.assertEqual(r.get("new"), b"v")
        now = int(time.time())
        r.set("a", "v", ex=100)
        self.assertIn(r.ttl("a"), (99, 100))
        r.set("a", "v", px=100000)
        self.assertTrue(99000 < r.pttl("a") <= 100000)
        r.set("a", "v", exat=now + 500)
        self.assertEqual(r.execute_command("EXPIRETIME", "a"), now + 500)
        r.set("a", "v", pxat=(now + 600) * 1000)
        self.assertEqual(r.execute_command("PEXPIRETIME", "a"), (now + 600) * 1000)
        c = self.raw()
        # NX + GET is allowed since Redis 7.0
        self.assertEqual(c.call("SET", "a", "z", "NX", "GET"), b"v")
        self.assertEqual(c.call("GET", "a"), b"v")
        self.assertEqual(c.call("SET", "a", "v", "NX", "XX"), RespError("ERR syntax error"))
        self.assertEqual(c.call("SET", "a", "v", "EX", "10", "PX", "100"),
                         RespError("ERR syntax error"))
        self.assertEqual(c.call("SET", "a", "v", "EX", "10", "KEEPTTL"),
                         RespError("ERR syntax error"))
        self.assertEqual(c.call("SET", "a", "v", "BOGUS"), RespError("ERR syntax error"))
        self.assertEqual(c.call("SET", "a", "v", "EX", "abc"),
                         RespError("ERR value is not an integer or out of range"))
        self.assertEqual(c.call("SET", "a", "v", "EX"), RespError("ERR syntax error"))
        # Option words are case-insensitive.
        self.assertEqual(c.call("set", "ci", "v", "nx", "ex", "100"), b"OK")
        self.assertEqual(c.call("SeT", "ci", "v", "xX", "GeT"), b"v")

    def test_setnx_setex_psetex(self):
        r = self.r
        self.assertEqual(r.setnx("k", "a"), True)
        self.assertEqual(r.setnx("k", "b"), False)
        self.assertEqual(r.get("k"), b"a")
        self.assertTrue(r.setex("s", 100, "v"))
        self.assertIn(r.ttl("s"), (99, 100))
        self.assertTrue(r.psetex("p", 100000, "v"))
        self.assertTrue(99000 < r.pttl("p") <= 100000)
        c = self.raw()
        self.assertEqual(c.call("SETEX", "s", "0", "v"),
                         RespError("ERR invalid expire time in 'setex' command"))
        self.assertEqual(c.call("PSETEX", "s", "-1", "v"),
                         RespError("ERR invalid expire time in 'psetex' command"))
        self.assertEqual(c.call("SETEX", "s", "x", "v"),
                         RespError("ERR value is not an integer or out of range"))

    def test_getdel_getex_getset(self):
        r = self.r
        r.set("k", "v")
        self.assertEqual(r.getdel("k"), b"v")
        self.assertIsNone(r.getdel("k"))
        self.assertEqual(r.exists("k"), 0)
        r.set("k", "v")
        self.assertEqual(r.getex("k", ex=100), b"v")
        self.assertIn(r.ttl("k"), (99, 100))
        self.assertEqual(r.getex("k", px=50000), b"v")
        self.assertTrue(49000 < r.pttl("k") <= 50000)
        self.assertEqual(r.getex("k", persist=True), b"v")
        self.assertEqual(r.ttl("k"), -1)
        self.assertEqual(r.getex("k"), b"v")
        now = int(time.time())
        self.assertEqual(r.getex("k", exat=now + 300), b"v")
        self.assertEqual(r.execute_command("EXPIRETIME", "k"), now + 300)
        self.assertEqual(r.getex("k", pxat=(now + 400) * 1000), b"v")
        self.assertEqual(r.execute_command("PEXPIRETIME", "k"), (now + 400) * 1000)
        self.assertIsNone(r.getex("missing", ex=10))
        self.assertEqual(r.getset("k", "w"), b"v")
        self.assertEqual(r.ttl("k"), -1)  # GETSET discards the TTL
        self.assertIsNone(r.getset("fresh", "x"))
        self.assertEqual(r.get("fresh"), b"x")
        c = self.raw()
        self.assertEqual(c.call("GETEX", "k", "EX", "0"),
                         RespError("ERR invalid expire time in 'getex' command"))
        self.assertEqual(c.call("GETEX", "k", "PERSIST", "EX", "10"),
                         RespError("ERR syntax error"))

    def test_mget_mset_msetnx(self):
        r = self.r
        self.assertTrue(r.mset({"a": "1", "b": "2", "c": "3"}))
        self.assertEqual(r.mget("a", "b", "missing", "c"), [b"1", b"2", None, b"3"])
        self.assertEqual(r.msetnx({"c": "x", "d": "4"}), False)
        self.assertEqual(r.exists("d"), 0)
        self.assertEqual(r.get("c"), b"3")
        self.assertEqual(r.msetnx({"d": "4", "e": "5"}), True)
        self.assertEqual(r.mget("d", "e"), [b"4", b"5"])
        # Later duplicate wins in MSET.
        r.execute_command("MSET", "dup", "1", "dup", "2")
        self.assertEqual(r.get("dup"), b"2")
        c = self.raw()
        self.assertEqual(c.call("MSET", "a"),
                         RespError("ERR wrong number of arguments for 'mset' command"))
        self.assertEqual(c.call("MSET", "a", "1", "b"),
                         RespError("ERR wrong number of arguments for 'mset' command"))
        self.assertEqual(c.call("MSETNX", "a", "1", "b"),
                         RespError("ERR wrong number of arguments for 'msetnx' command"))
        self.assertEqual(c.call("MGET"),
                         RespError("ERR wrong number of arguments for 'mget' command"))
        # Many keys across shards in one MGET / MSET
        kv = {f"m{i}": str(i) for i in range(1000)}
        self.assertTrue(r.mset(kv))
        self.assertEqual(r.mget(list(kv)), [v.encode() for v in kv.values()])

    def test_del_unlink_exists_type(self):
        r = self.r
        r.mset({"a": "1", "b": "2", "c": "3"})
        self.assertEqual(r.exists("a", "a", "b", "zz"), 3)  # repeats count
        self.assertEqual(r.type("a"), b"string")
        self.assertEqual(r.type("zz"), b"none")
        self.assertEqual(r.delete("a", "zz", "a"), 1)
        self.assertEqual(r.unlink("b", "c", "q"), 2)
        self.assertEqual(r.dbsize(), 0)

    def test_incr_decr(self):
        r = self.r
        self.assertEqual(r.incr("n"), 1)
        self.assertEqual(r.incrby("n", 10), 11)
        self.assertEqual(r.decr("n"), 10)
        self.assertEqual(r.decrby("n", 20), -10)
        self.assertEqual(r.get("n"), b"-10")
        self.assertEqual(r.decr("fresh"), -1)
        r.set("big", "9223372036854775806")
        self.assertEqual(r.incr("big"), 9223372036854775807)
        c = self.raw()
        overflow = RespError("ERR increment or decrement would overflow")
        notint = RespError("ERR value is not an integer or out of range")
        self.assertEqual(c.call("INCR", "big"), overflow)
        self.assertEqual(c.call("GET", "big"), b"9223372036854775807")
        c.call("SET", "small", "-9223372036854775808")
        self.assertEqual(c.call("DECR", "small"), overflow)
        self.assertEqual(c.call("DECRBY", "small", "1"), overflow)
        self.assertEqual(c.call("INCRBY", "small", "-1"), overflow)
        # DECRBY of INT64_MIN: Redis says "decrement would overflow"
        self.assertEqual(c.call("DECRBY", "n", "-9223372036854775808"),
                         RespError("ERR decrement would overflow"))
        for bad in ["abc", "1.5", " 1", "1 ", "+1", "01", "", "9223372036854775808", "0x10"]:
            c.call("SET", "s", bad)
            self.assertEqual(c.call("INCR", "s"), notint, repr(bad))
            self.assertEqual(c.call("GET", "s"), bad.encode(), repr(bad))
        self.assertEqual(c.call("INCRBY", "n", "abc"), notint)
        self.assertEqual(c.call("INCRBY", "n", "9223372036854775808"), notint)
        self.assertEqual(c.call("DECRBY", "n", "1.0"), notint)
        c.call("SET", "neg0", "-0")
        self.assertEqual(c.call("INCR", "neg0"), notint)

    def test_incrbyfloat(self):
        c = self.raw()
        self.assertEqual(c.call("SET", "f", "10.5"), b"OK")
        self.assertEqual(c.call("INCRBYFLOAT", "f", "0.1"), b"10.6")
        self.assertEqual(c.call("INCRBYFLOAT", "f", "-5"), b"5.6")
        self.assertEqual(c.call("INCRBYFLOAT", "e", "5.0e3"), b"5000")
        self.assertEqual(c.call("INCRBYFLOAT", "g", "3"), b"3")
        self.assertEqual(c.call("INCRBYFLOAT", "g", "-3"), b"0")
        self.assertEqual(c.call("GET", "g"), b"0")
        self.assertEqual(c.call("INCRBYFLOAT", "h", "1.5e-3"), b"0.0015")
        self.assertEqual(c.call("SET", "i", "7"), b"OK")
        self.assertEqual(c.call("INCRBYFLOAT", "i", "0.25"), b"7.25")
        self.assertEqual(c.call("INCRBYFLOAT", "i", "abc"),
                         RespError("ERR value is not a valid float"))
        c.call("SET", "s", "abc")
        self.assertEqual(c.call("INCRBYFLOAT", "s", "1"),
                         RespError("ERR value is not a valid float"))
        self.assertEqual(c.call("INCRBYFLOAT", "i", "inf"),
                         RespError("ERR increment would produce NaN or Infinity"))
        # INCR on a float-looking value is not an integer
        self.assertEqual(c.call("INCR", "i"),
                         RespError("ERR value is not an integer or out of range"))

    def test_append_strlen_getrange_setrange(self):
        c = self.raw()
        self.assertEqual(c.call("APPEND", "a", "Hello"), 5)
        self.assertEqual(c.call("APPEND", "a", " World"), 11)
        self.assertEqual(c.call("STRLEN", "a"), 11)
        self.assertEqual(c.call("STRLEN", "missing"), 0)
        self.assertEqual(c.call("GETRANGE", "a", "0", "4"), b"Hello")
        self.assertEqual(c.call("GETRANGE", "a", "-5", "-1"), b"World")
        self.assertEqual(c.call("GETRANGE", "a", "0", "-1"), b"Hello World")
        self.assertEqual(c.call("GETRANGE", "a", "5", "3"), b"")
        self.assertEqual(c.call("GETRANGE", "a", "-100", "100"), b"Hello World")
        self.assertEqual(c.call("GETRANGE", "a", "20", "30"), b"")
        self.assertEqual(c.call("GETRANGE", "missing", "0", "-1"), b"")
        self.assertEqual(c.call("GETRANGE", "a", "x", "1"),
                         RespError("ERR value is not an integer or out of range"))
        self.assertEqual(c.call("SETRANGE", "a", "6", "Redis"), 11)
        self.assertEqual(c.call("GET", "a"), b"Hello Redis")
        self.assertEqual(c.call("SETRANGE", "pad", "5", "x"), 6)
        self.assertEqual(c.call("GET", "pad"), b"\x00\x00\x00\x00\x00x")
        self.assertEqual(c.call("SETRANGE", "a", "20", ""), 11)  # empty value: no change
        self.assertEqual(c.call("SETRANGE", "none", "3", ""), 0)
        self.assertEqual(c.call("EXISTS", "none"), 0)
        self.assertEqual(c.call("SETRANGE", "a", "-1", "x"),
                         RespError("ERR offset is out of range"))
        # Redis's limit is proto-max-bulk-len (512 MB); Cellar's is --max-item-size, with its
        # own wording. Either way an error, and the value is unchanged.
        too_big = c.call("SETRANGE", "a", "536870912", "x")
        self.assertIsInstance(too_big, RespError)
        self.assertTrue(too_big.args[0] in (
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            "ERR value exceeds the item size limit",
            "ERR string exceeds the item size limit"), too_big)
        self.assertEqual(c.call("GET", "a"), b"Hello Redis")

    def test_scan_match_count_each_key_once(self):
        r = self.r
        n = 5000
        p = r.pipeline(transaction=False)
        for i in range(n):
            p.set(f"user:{i}", "v")
        for i in range(500):
            p.set(f"other:{i}", "v")
        p.execute()
        for count in (1, 10, 100, 1000):
            seen = []
            cursor = 0
            rounds = 0
            while True:
                cursor, keys = r.scan(cursor, count=count)
                seen.extend(keys)
                rounds += 1
                self.assertLess(rounds, 100000)
                if cursor == 0:
                    break
            self.assertEqual(len(seen), len(set(seen)), f"duplicates with COUNT {count}")
            self.assertEqual(len(seen), n + 500, f"COUNT {count}")
        seen = []
        cursor = 0
        while True:
            cursor, keys = r.scan(cursor, match="user:1*", count=200)
            seen.extend(keys)
            if cursor == 0:
                break
        expect = {f"user:{i}".encode() for i in range(n) if str(i).startswith("1")}
        self.assertEqual(len(seen), len(set(seen)))
        self.assertEqual(set(seen), expect)
        # TYPE filter
        cursor, keys = r.scan(0, match="nomatch*", count=10)
        self.assertIsInstance(keys, list)
        c = self.raw()
        self.assertEqual(c.call("SCAN", "abc"), RespError("ERR invalid cursor"))
        self.assertEqual(c.call("SCAN", "0", "COUNT", "0"), RespError("ERR syntax error"))

    def test_scan_stable_under_writes(self):
        # Keys present for the whole iteration must each be returned (at least once).
        r = self.r
        p = r.pipeline(transaction=False)
        for i in range(3000):
            p.set(f"stable:{i}", "v")
        p.execute()
        seen = set()
        cursor = 0
        j = 0
        while True:
            cursor, keys = r.scan(cursor, count=50)
            seen.update(keys)
            for _ in range(20):
                r.set(f"churn:{j}", "v")
                j += 1
            if cursor == 0:
                break
        expect = {f"stable:{i}".encode() for i in range(3000)}
        self.assertEqual(expect - seen, set())

    def test_randomkey_dbsize_flushdb(self):
        r = self.r
        self.assertIsNone(r.randomkey())
        self.assertEqual(r.dbsize(), 0)
        r.mset({f"k{i}": "v" for i in range(50)})
        self.assertEqual(r.dbsize(), 50)
        for _ in range(20):
            self.assertIn(r.randomkey(), {f"k{i}".encode() for i in range(50)})
        self.assertTrue(r.flushdb())
        self.assertEqual(r.dbsize(), 0)
        self.assertIsNone(r.randomkey())
        r.set("x", "y")
        self.assertTrue(r.flushdb(asynchronous=True))
        self.assertEqual(r.dbsize(), 0)

    def test_ping_echo_case_insensitive(self):
        c = self.raw()
        self.assertEqual(c.call("PING"), b"PONG")
        self.assertEqual(c.call("ping", "hi"), b"hi")
        self.assertEqual(c.call("ECHO", "x\r\ny"), b"x\r\ny")
        self.assertEqual(c.call("sEt", "k", "v"), b"OK")
        self.assertEqual(c.call("gEt", "k"), b"v")


class Errors(Base):
    def test_arity_and_unknown_command_texts(self):
        c = self.raw()
        self.assertEqual(c.call("GET"),
                         RespError("ERR wrong number of arguments for 'get' command"))
        self.assertEqual(c.call("get", "a", "b"),
                         RespError("ERR wrong number of arguments for 'get' command"))
        self.assertEqual(c.call("SET", "a"),
                         RespError("ERR wrong number of arguments for 'set' command"))
        self.assertEqual(c.call("INCRBY", "a"),
                         RespError("ERR wrong number of arguments for 'incrby' command"))
        self.assertEqual(c.call("foo"),
                         RespError("ERR unknown command 'foo', with args beginning with: "))
        self.assertEqual(c.call("foo", "a", "b"),
                         RespError("ERR unknown command 'foo', with args beginning with: 'a' 'b' "))
        self.assertEqual(c.call("GET", "a"), None)  # connection still usable

    def test_unknown_command_error_keeps_framing(self):
        # Arguments echoed in the error must not break the one-line error reply: Redis
        # replaces CR and LF with spaces. The next reply must still parse.
        c = self.raw()
        c.send(("foo", "a\r\nb"), ("PING",))
        err = c.read()
        self.assertIsInstance(err, RespError)
        self.assertTrue(err.args[0].startswith("ERR unknown command 'foo'"), err)
        self.assertEqual(c.read(), b"PONG")
        c.send(("GET", "a\r\nb", "extra"), ("PING",))
        self.assertEqual(c.read(),
                         RespError("ERR wrong number of arguments for 'get' command"))
        self.assertEqual(c.read(), b"PONG")

    def test_set_exat_in_the_past(self):
        c = self.raw()
        self.assertEqual(c.call("SET", "p", "v", "EXAT", "1000"), b"OK")
        self.assertIsNone(c.call("GET", "p"))
        self.assertEqual(c.call("EXISTS", "p"), 0)

    def test_wrong_arity_through_redis_py(self):
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.execute_command("GET")
        self.assertIn("wrong number of arguments for 'get' command", str(cm.exception))

    def test_malformed_resp_closes_connection_other_client_ok(self):
        other = self.raw()
        self.assertEqual(other.call("SET", "alive", "1"), b"OK")
        cases = [
            b"*1\r\n$abc\r\n",
            b"*1\r\n$10000000000\r\n",
            b"*1\r\n$-5\r\n",
            b"*abc\r\n",
        ]
        for payload in cases:
            with self.subTest(payload=payload):
                s = SERVER.raw()
                try:
                    s.sendall(payload)
                    data, closed = harness.recv_until_closed(s, timeout=5)
                finally:
                    s.close()
                self.assertTrue(data.startswith(b"-ERR Protocol error"), data)
                self.assertTrue(data.endswith(b"\r\n"), data)
                self.assertTrue(closed, f"connection not closed after {payload!r}: {data!r}")
                self.assertEqual(other.call("GET", "alive"), b"1")
        # Same on an authenticated connection
        c = self.raw()
        c.sock.sendall(b"*1\r\n$10000000000\r\n")
        data, closed = harness.recv_until_closed(c.sock, timeout=5)
        self.assertTrue(data.startswith(b"-ERR Protocol error"), data)
        self.assertTrue(closed)
        self.assertEqual(other.call("GET", "alive"), b"1")

    def test_half_command_does_not_block_others(self):
        stalled = []
        try:
            # Several stallers so that each event loop (shard) has at least one.
            for i in range(8):
                s = RawConn.to(SERVER, self.cache)
                s.sock.sendall(b"*3\r\n$3\r\nSET\r\n$6\r\nhalf:" + str(i).encode() + b"\r\n$10\r\nabc")
                stalled.append(s)
            for j in range(5):
                def work():
                    c = RawConn.to(SERVER, self.cache)
                    try:
                        out = c.pipeline([("SET", f"w{k}", "v") for k in range(100)]
                                         + [("GET", "w99")])
                        return out[-1]
                    finally:
                        c.close()
                self.assertEqual(harness.Timeout.run(work, 5), b"v")
            # Finish the stalled commands: each completes normally.
            for i, s in enumerate(stalled):
                s.sock.sendall(b"defghij\r\n")
                self.assertEqual(s.read(), b"OK")
                self.assertEqual(s.call("GET", f"half:{i}"), b"abcdefghij")
        finally:
            for s in stalled:
                s.close()

    def test_byte_at_a_time_command(self):
        c = self.raw()
        payload = harness.resp_encode("SET", "slow", "value") + harness.resp_encode("GET", "slow")
        for b in payload:
            c.sock.sendall(bytes([b]))
            time.sleep(0.001)
        self.assertEqual(c.read(), b"OK")
        self.assertEqual(c.read(), b"value")


@cellar_only
class AuthAndNamespaces(Base):
    def test_two_caches_are_isolated(self):
        a = SERVER.client("iso_a")
        b = SERVER.client("iso_b")
        a.flushdb()
        b.flushdb()
        a.set("same", "in a")
        b.set("same", "in b")
        a.set("only_a", "1")
        self.assertEqual(a.get("same"), b"in a")
        self.assertEqual(b.get("same"), b"in b")
        self.assertIsNone(b.get("only_a"))
        self.assertEqual(a.dbsize(), 2)
        self.assertEqual(b.dbsize(), 1)
        self.assertEqual(sorted(b.scan_iter()), [b"same"])
        a.incr("ctr")
        self.assertIsNone(b.get("ctr"))
        a.flushdb()
        self.assertEqual(a.dbsize(), 0)
        self.assertEqual(b.get("same"), b"in b")
        # A connection can re-AUTH to another cache.
        c = self.raw("iso_a")
        self.assertEqual(c.call("SET", "x", "a"), b"OK")
        self.assertEqual(c.call("AUTH", "iso_b", SERVER.admin_key), b"OK")
        self.assertIsNone(c.call("GET", "x"))
        self.assertEqual(c.call("GET", "same"), b"in b")
        # Admin listing reflects per-cache item counts.
        caches = {x["name"]: x for x in SERVER.list_caches()}
        self.assertEqual(caches["iso_b"]["items"], 1)

    def test_noauth_before_auth(self):
        c = RawConn(SERVER.host, SERVER.resp_port)
        self.addCleanup(c.close)
        noauth = RespError("NOAUTH Authentication required.")
        self.assertEqual(c.call("GET", "k"), noauth)
        self.assertEqual(c.call("SET", "k", "v"), noauth)
        self.assertEqual(c.call("DBSIZE"), noauth)
        self.assertEqual(c.call("FLUSHDB"), noauth)
        # Wrong key / unknown cache: an error, still not authenticated
        self.assertIsInstance(c.call("AUTH", self.cache, "0" * 64), RespError)
        self.assertEqual(c.call("GET", "k"), noauth)
        self.assertIsInstance(c.call("AUTH", "no_such_cache_xyz", SERVER.admin_key), RespError)
        self.assertEqual(c.call("GET", "k"), noauth)
        self.assertEqual(c.call("AUTH", self.cache, SERVER.admin_key), b"OK")
        self.assertIsNone(c.call("GET", "k"))
        # redis-py without credentials
        anon = SERVER.client()
        with self.assertRaises(redis.AuthenticationError):
            anon.get("k")

    def test_hello3_auth(self):
        c = RawConn(SERVER.host, SERVER.resp_port)
        self.addCleanup(c.close)
        c.send(("HELLO", "3", "AUTH", self.cache, SERVER.admin_key))
        # RESP3 map reply: just check it is not an error and the connection works after.
        first = c.f.readline()
        self.assertTrue(first[:1] in (b"%", b"*"), first)


@cellar_only
class ServerLifecycle(unittest.TestCase):
    def test_cache_list_survives_restart(self):
        with CellarServer(["--threads", "2"]) as s:
            key = s.admin_key
            self.assertRegex(key, r"^[0-9a-f]{64}$")
            names = ["alpha", "beta-1", "with.dots_and~x"]
            for n in names:
                s.create_cache(n)
            s.client("alpha").set("k", "v")
            st, _ = s.admin("PUT", "/v1/caches/alpha")
            self.assertEqual(st, 409)
            s.restart()
            self.assertEqual(s.admin_key, key, "admin key must persist across restarts")
            listed = {c["name"] for c in s.list_caches()}
            self.assertTrue(set(names) <= listed, listed)
            for n in names:
                with RawConn.to(s, n) as c:  # AUTH succeeds for each cache
                    self.assertEqual(c.call("SET", "after", "restart"), b"OK")
                    self.assertEqual(c.call("GET", "after"), b"restart")
            s.delete_cache("beta-1")
            s.restart()
            listed = {c["name"] for c in s.list_caches()}
            self.assertNotIn("beta-1", listed)
            self.assertIn("alpha", listed)

    def test_sigterm_with_connected_client_answers_inflight(self):
        s = CellarServer(["--threads", "2"])
        try:
            s.start()
            idle = s.client("c")  # an idle, connected, authenticated client
            idle.ping()
            c = RawConn.to(s, "c")
            n = 10000
            cmds = []
            for i in range(n // 2):
                cmds.append(("SET", f"k{i}", "v" * 20))
                cmds.append(("GET", f"k{i}"))
            c.send(*cmds)
            time.sleep(0.3)  # all requests are now in the server's socket buffer
            s.proc.send_signal(15)
            replies = []
            for i in range(n):
                try:
                    replies.append(c.read())
                except (ConnectionError, OSError) as e:
                    self.fail(f"only {len(replies)} of {n} replies before close: {e}")
            for i in range(n // 2):
                self.assertEqual(replies[2 * i], b"OK")
                self.assertEqual(replies[2 * i + 1], b"v" * 20)
            rc = s.proc.wait(timeout=15)
            self.assertEqual(rc, 0, s.log_tail())
            # After shutdown the connection is closed.
            data, closed = harness.recv_until_closed(c.sock, timeout=3)
            self.assertTrue(closed)
            c.close()
        finally:
            s.cleanup()

    def test_sigterm_with_stalled_half_command(self):
        with CellarServer(["--threads", "2"]) as s:
            c = RawConn.to(s, "c")
            c.sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
            idle = RawConn(s.host, s.resp_port)  # connected, never authenticated
            t0 = time.monotonic()
            s.stop()  # asserts exit code 0 (raises otherwise)
            self.assertLess(time.monotonic() - t0, 15)
            c.close()
            idle.close()


@cellar_only
class Eviction(unittest.TestCase):
    def test_small_memory_limit_evicts_and_stays_bounded(self):
        with CellarServer(["--memory-limit", "8mb", "--threads", "2"]) as s:
            r = s.client("ev")
            r.ping()
            time.sleep(0.2)
            baseline = harness.rss_bytes(s.pid)
            info = r.info("memory")
            limit = int(info.get("maxmemory") or 0) or 8 * 1024 * 1024
            self.assertIn(limit, (8 * 1000 * 1000, 8 * 1024 * 1024), info.get("maxmemory"))
            value_size = 1000
            total = 50 * 1000 * 1000
            n = total // value_size
            batch = 1000
            max_used = 0
            max_rss = 0
            for start in range(0, n, batch):
                p = r.pipeline(transaction=False)
                for i in range(start, min(n, start + batch)):
                    p.set(f"key:{i:08d}", os.urandom(value_size // 2).hex())
                out = p.execute()
                self.assertEqual(out, [True] * len(out), f"SETs failed near {start}")
                if (start // batch) % 5 == 0 or start + batch >= n:
                    used = int(r.info("memory")["used_memory"])
                    max_used = max(max_used, used)
                    max_rss = max(max_rss, harness.rss_bytes(s.pid))
            self.assertLessEqual(max_used, limit, f"used_memory peaked at {max_used}")
            allowance = 40 * 1024 * 1024
            if "thread" in os.environ.get("CELLAR_SANITIZER", ""):
                # TSan keeps shadow memory for every heap address ever touched, so RSS
                # measures TSan here; used_memory above is still checked.
                print(f"RSS bound not checked under TSan (RSS {max_rss})")
            else:
                self.assertLess(max_rss, baseline + limit + allowance,
                                f"RSS {max_rss} vs baseline {baseline} + limit {limit} + 40 MiB")
            dbsize = r.dbsize()
            self.assertLess(dbsize, n, "nothing evicted?")
            self.assertGreater(dbsize, 0)
            # The most recent write is present (eviction takes old items first).
            self.assertIsNotNone(r.get(f"key:{n - 1:08d}"))
            # Still serving normally.
            self.assertTrue(r.set("after", "ok"))
            self.assertEqual(r.get("after"), b"ok")
            info = r.info()
            if "evicted_keys" in info:
                self.assertGreater(int(info["evicted_keys"]), 0)

    def test_value_over_max_item_size_rejected(self):
        with CellarServer(["--max-item-size", "64kib", "--threads", "1"]) as s:
            c = RawConn.to(s, "m")
            self.assertEqual(c.call("SET", "ok", b"x" * (64 * 1024)), b"OK")
            # Expected: an error reply for this request; the connection stays usable (like
            # any other rejected write), and the value is not stored.
            try:
                reply = c.call("SET", "big", b"x" * (64 * 1024 + 1))
                after = c.call("PING")
            except (ConnectionError, OSError) as e:
                self.fail(f"server closed the connection on an over-size value: {e}")
            self.assertIsInstance(reply, RespError)
            self.assertEqual(after, b"PONG")
            self.assertIsNone(c.call("GET", "big"))
            # APPEND / SETRANGE past the limit are refused as well.
            self.assertIsInstance(c.call("APPEND", "ok", "y"), RespError)
            self.assertIsInstance(c.call("SETRANGE", "ok", str(64 * 1024), "y"), RespError)
            self.assertEqual(c.call("STRLEN", "ok"), 64 * 1024)
            c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
