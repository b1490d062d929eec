"""Differential test for the collection commands (hashes, lists, sets, sorted sets): the same
seeded random command sequences go to Cellar and to a real redis-server, and the replies must be
identical (errors by full text), in RESP2 and in RESP3 (HELLO 3).

Eight keys are shared by every type, so collections grow, empty (and disappear) and collide with
each other and with strings (WRONGTYPE in both directions). Member, field and score pools are
small and include binary bytes, empty strings, numbers as strings, inf, "(1" and "abc".

Nondeterministic replies are normalized, never skipped:
- HGETALL pairs, HKEYS, HVALS, SMEMBERS, SINTER, SUNION, SDIFF: sorted (Redis orders small
  hashes by insertion, a big one by its hash table; Cellar need not do either).
- SPOP / SRANDMEMBER: the set is read before (and for SPOP after) on each server; compared are
  the reply's shape (type, element count) and, per server, that every element returned was a
  member (SPOP: that exactly those left the set). After SPOP the key is made equal again on both
  servers from the reference's remaining members (DEL + SADD; both lose any TTL alike).
- HSCAN / SSCAN / ZSCAN: run from cursor 0 to the end on each server; compared is the sorted,
  deduplicated union of the pages (and the error text when the first call fails).
- ZRANGE ... BYLEX: exact when all the sorted set's scores are equal (else Redis documents the
  result as unspecified: then only the reply type / error text is compared).
- TTL: -2, -1 or "positive".
Sorted-set order (ties by member bytes) and score text (Redis 7.0: %.17g) are compared exactly.
After every batch the whole key space is compared (TYPE, TTL, and each type's full read); a key
that differs is reported and then deleted on both servers so the run goes on.

Run:  cd tests/integration && CELLAR_BIN=.../cellar /usr/bin/python3 -m unittest -v \
          test_collections_vs_redis
Env:  DIFF_SEED (default 20240612), DIFF_COMMANDS (default 4000, split over three sequences),
      DIFF_AGAINST_REDIS=1 (or CELLAR_IT_REFERENCE=redis): a second redis-server stands in for
      Cellar, which checks this test's own normalization (must pass with 0 mismatches),
      DIFF_VERBOSE=1: per sequence, how often the reference answered a value / nothing / an
      error for each command (to see what the generator really exercises).
"""

import os
import random
import shutil
import socket
import unittest

import harness
from harness import RawConn, RespError

SEED = int(os.environ.get("DIFF_SEED", "20240612"))
COUNT = int(os.environ.get("DIFF_COMMANDS", "4000"))
AGAINST_REDIS = os.environ.get("DIFF_AGAINST_REDIS") == "1" or harness.reference_mode()
MAX_MISMATCHES = 15  # per random sequence
CASE_MISMATCHES = 4  # per deterministic case
CACHE = "coll"


# ---- RESP2 + RESP3 client ------------------------------------------------------------------

class _Sentinel:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


NIL_ARRAY = _Sentinel("nil-array")  # RESP2 *-1 (distinct from $-1, which reads as None)
NULL3 = _Sentinel("_null")          # RESP3 _


def encode(*args):
    """One command as a RESP array; str arguments are latin-1, so "\\xff" is one byte."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode("latin-1")
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn(RawConn):
    """harness.RawConn with exact RESP3 types: ("map", [(k, v)...]), ("set", [...]),
    ("double", b"1.5"), ("bool", True), ("bignum", b"..."), ("verbatim", b"txt:..."),
    ("push", [...]), NULL3 for _, NIL_ARRAY for *-1, RespError for - and !."""

    def send(self, *cmds):
        self.sock.sendall(b"".join(encode(*c) for c in cmds))

    def _bulk(self, n):
        data = self.f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("connection closed mid-bulk")
        return data[:-2]

    def read(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"connection closed mid-reply: {line!r}")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest
        if t == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._bulk(n)
        if t == b"*":
            n = int(rest)
            return NIL_ARRAY if n < 0 else [self.read() for _ in range(n)]
        if t == b"_":
            return NULL3
        if t == b",":
            return ("double", rest)
        if t == b"#":
            return ("bool", rest == b"t")
        if t == b"(":
            return ("bignum", rest)
        if t == b"=":
            return ("verbatim", self._bulk(int(rest)))
        if t == b"!":
            return RespError(self._bulk(int(rest)).decode("utf-8", "replace"))
        if t == b"%":
            return ("map", [(self.read(), self.read()) for _ in range(int(rest))])
        if t == b"~":
            return ("set", [self.read() for _ in range(int(rest))])
        if t == b">":
            return ("push", [self.read() for _ in range(int(rest))])
        if t == b"|":
            for _ in range(int(rest)):  # attributes: read and drop, then the real reply
                self.read()
                self.read()
            return self.read()
        raise ValueError(f"bad reply type: {line!r}")


def connect(server, proto):
    c = Conn.to(server, CACHE)
    if proto == 3:
        r = c.call("HELLO", "3")
        if not (isinstance(r, tuple) and r[0] == "map"):
            c.close()
            raise AssertionError(f"HELLO 3 did not answer a map: {r!r}")
    return c


# ---- normalization -------------------------------------------------------------------------

def _sort_key(v):
    return (type(v).__name__, repr(v))


def _sorted(items):
    return sorted(items, key=_sort_key)


def sort_unordered(reply):
    """A multi-bulk whose order carries no meaning: sorted, container type kept."""
    if isinstance(reply, list):
        return _sorted(reply)
    if isinstance(reply, tuple) and reply[0] == "set":
        return ("set", _sorted(reply[1]))
    return reply


def sort_pairs(reply):
    """HGETALL: flat RESP2 pairs or a RESP3 map, as sorted (field, value) pairs."""
    if isinstance(reply, list) and len(reply) % 2 == 0:
        return ("flat-pairs", _sorted(zip(reply[0::2], reply[1::2])))
    if isinstance(reply, tuple) and reply[0] == "map":
        return ("map", _sorted(reply[1]))
    return reply


UNORDERED = {"HKEYS", "HVALS", "SMEMBERS", "SINTER", "SUNION", "SDIFF"}


def normalize(cmd, reply):
    name = cmd[0].upper()
    if name == "HGETALL":
        return sort_pairs(reply)
    if name in UNORDERED:
        return sort_unordered(reply)
    if name in ("TTL", "PTTL") and isinstance(reply, int) and reply >= 0:
        return "positive"
    return reply


def elements(reply):
    """Members of an array / RESP3 set reply, or None when it is neither."""
    if isinstance(reply, list):
        return reply
    if isinstance(reply, tuple) and reply[0] == "set":
        return reply[1]
    return None


def short(x, n=400):
    s = ascii(x)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


# ---- command generation --------------------------------------------------------------------

KEYS = ["k0", "k1", "k2", "k3", "k4", "k5", "", "k\x00\xff"]
HOME = {"hash": KEYS[0:2], "list": KEYS[2:4], "set": KEYS[4:6], "zset": KEYS[6:8]}
LEX_KEY = KEYS[7]  # its scores are mostly 0, so BYLEX ranges there are well defined
FIELDS = ["f1", "f2", "f3", "", "1", "-1", "\x00\xff", "long field name"]
VALUES = ["v", "", "0", "1", "-5", "10", "1.5", "abc", "9223372036854775807",
          "-9223372036854775808", "\x00\xff\r\n", "1e3", " 1", "3.0"]
MEMBERS = ["a", "b", "c", "d", "", "0", "1", "-1", "10", "1.5", "x\x00y", "\xff\xfe",
           "hello world", "007"]
SCORES = ["0", "-1", "1.5", "1e10", "inf", "-inf", "+inf", "2", "3", "-0", "0.1", "100",
          "-2.5", "5"]
BAD_SCORES = ["(1", "abc", "", "nan", "1e400", " 1", "1x", "0x10"]  # (Redis takes hex: 0x10 = 16)
INTS = ["0", "1", "-1", "2", "-2", "3", "5", "-5", "100", "-100"]
BAD_INTS = ["x", "1.5", "", " 1", "9223372036854775808"]
HINCR = ["1", "-1", "0", "100", "-7", "9223372036854775807", "-9223372036854775808", "x",
         "1.5", "", " 1"]
HFLOAT = ["0.1", "1.5", "-2", "1e2", "3", "-0.5", "5.0e3", "10", "-1", "abc", "inf", "nan",
          "", "1e400", "0x10", " 1"]
RANGE = ["-inf", "+inf", "inf", "0", "(0", "1.5", "(1.5", "2", "(2", "-1", "(-1", "1e10",
         "(1e10", "-0", "100", "(inf"]
BAD_RANGE = ["abc", "(abc", "nan", "((1", "", "(", "[1", " 1", "1e400"]
LEX = ["-", "+", "[a", "(a", "[b", "(b", "[c", "(d", "[1", "(1.5", "[", "(", "[\xff",
       "[hello world", "[x\x00y"]
BAD_LEX = ["a", "", "x-", "+a", "-b"]
PATTERNS = ["*", "f*", "*1*", "?", "[a-c]*", "", "\\*", "*\x00*", "h*d"]


class Step:
    """kind: cmd (compare replies), srand / spop (shape + membership), scan (full iteration),
    lex (ZRANGE BYLEX: exact only when the scores are all equal)."""

    __slots__ = ("kind", "cmd", "keys")

    def __init__(self, kind, cmd, keys):
        self.kind, self.cmd, self.keys = kind, cmd, keys

    def __repr__(self):
        return repr(self.cmd)


class Gen:
    def __init__(self, rng):
        self.r = rng

    # pools
    def key(self, kind=None):
        if kind and self.r.random() < 0.9:
            return self.r.choice(HOME[kind])
        return self.r.choice(KEYS)

    def pick(self, pool, bad=None, p_bad=0.08):
        if bad and self.r.random() < p_bad:
            return self.r.choice(bad)
        return self.r.choice(pool)

    def some(self, pool, lo=1, hi=3):
        return [self.r.choice(pool) for _ in range(self.r.randint(lo, hi))]

    def idx(self):
        return self.pick(INTS, BAD_INTS, 0.05)

    def score(self, key):
        if key == LEX_KEY and self.r.random() < 0.85:
            return "0"
        return self.pick(SCORES, BAD_SCORES, 0.07)

    # families
    def hash(self):
        r, k = self.r, self.key("hash")
        f, v = (lambda: r.choice(FIELDS)), (lambda: r.choice(VALUES))
        op = r.randrange(22)
        if op < 4:
            name = "HSET" if op < 3 else "HMSET"
            args = []
            for _ in range(r.randint(1, 3)):
                args += [f(), v()]
            if r.random() < 0.04:
                args.pop()  # odd: arity error
            return [Step("cmd", [name, k] + args, [k])]
        if op < 6:
            return [Step("cmd", ["HGET", k, f()], [k])]
        if op == 6:
            return [Step("cmd", ["HMGET", k] + self.some(FIELDS, 1, 4), [k])]
        if op == 7:
            return [Step("cmd", ["HGETALL", k], [k])]
        if op < 10:
            return [Step("cmd", ["HDEL", k] + self.some(FIELDS, 1, 3), [k])]
        if op == 10:
            return [Step("cmd", ["HLEN", k], [k])]
        if op == 11:
            return [Step("cmd", ["HINCRBY", k, f(), r.choice(HINCR)], [k])]
        if op == 12:
            return [Step("cmd", ["HINCRBYFLOAT", k, f(), r.choice(HFLOAT)], [k])]
        if op == 13:
            return [Step("cmd", ["HEXISTS", k, f()], [k])]
        if op == 14:
            return [Step("cmd", ["HKEYS", k], [k])]
        if op == 15:
            return [Step("cmd", ["HVALS", k], [k])]
        if op == 16:
            return [Step("cmd", ["HSETNX", k, f(), v()], [k])]
        if op == 17:
            return [Step("scan", ["HSCAN", k] + self.scan_args(), [k])]
        if op == 18:  # numbers as values so HINCRBY* succeed more often
            return [Step("cmd", ["HSET", k, f(), str(r.randint(-20, 20))], [k])]
        if op == 19:
            return [Step("cmd", r.choice([["HSET", k], ["HSET", k, f()], ["HGET", k],
                                          ["HMGET", k], ["HDEL", k], ["HINCRBY", k, f()],
                                          ["HSETNX", k, f()], ["HLEN", k, "x"],
                                          ["HGETALL"], ["HSCAN", k]]), [k])]
        return [Step("cmd", ["HINCRBYFLOAT", k, f(), r.choice(["1.5", "-0.25", "2", "0.1"])],
                     [k])]

    def scan_args(self):
        r = self.r
        cursor = "0" if r.random() < 0.93 else r.choice(["abc", "", "1x"])
        opts = []
        if r.random() < 0.4:
            opts += ["MATCH", r.choice(PATTERNS)]
        if r.random() < 0.4:
            opts += ["COUNT", r.choice(["1", "2", "3", "10", "0", "-1", "x"])]
        if r.random() < 0.1:
            r.shuffle(opts)
        if r.random() < 0.03:
            opts.append(r.choice(["BOGUS", "MATCH", "COUNT"]))
        return [cursor] + opts

    def list(self):
        r, k = self.r, self.key("list")
        m = lambda: r.choice(MEMBERS)  # noqa: E731
        op = r.randrange(26)
        if op < 5:
            return [Step("cmd", [r.choice(["LPUSH", "RPUSH"]), k] + self.some(MEMBERS), [k])]
        if op == 5:
            return [Step("cmd", [r.choice(["LPUSHX", "RPUSHX"]), k] + self.some(MEMBERS), [k])]
        if op < 8:
            cmd = [r.choice(["LPOP", "RPOP"]), k]
            if r.random() < 0.5:
                cmd.append(r.choice(["0", "1", "2", "5", "-1", "x", "100"]))
            return [Step("cmd", cmd, [k])]
        if op < 10:
            return [Step("cmd", ["LRANGE", k, self.idx(), self.idx()], [k])]
        if op == 10:
            return [Step("cmd", ["LLEN", k], [k])]
        if op == 11:
            return [Step("cmd", ["LINDEX", k, self.idx()], [k])]
        if op == 12:
            return [Step("cmd", ["LSET", k, self.idx(), m()], [k])]
        if op == 13:
            return [Step("cmd", ["LREM", k, r.choice(["0", "1", "-1", "2", "-2", "x"]), m()],
                         [k])]
        if op == 14:
            return [Step("cmd", ["LTRIM", k, self.idx(), self.idx()], [k])]
        if op == 15:
            where = r.choice(["BEFORE", "AFTER", "before", "after", "MIDDLE"])
            return [Step("cmd", ["LINSERT", k, where, m(), m()], [k])]
        if op < 18:
            cmd = ["LPOS", k, m()]
            opts = []
            if r.random() < 0.5:
                opts += ["RANK", r.choice(["1", "-1", "2", "-2", "3", "0", "x"])]
            if r.random() < 0.5:
                opts += ["COUNT", r.choice(["0", "1", "2", "-1"])]
            if r.random() < 0.3:
                opts += ["MAXLEN", r.choice(["0", "1", "3", "-1"])]
            if r.random() < 0.03:
                opts.append(r.choice(["RANK", "BOGUS"]))
            return [Step("cmd", cmd + opts, [k])]
        if op < 21:
            src, dst = self.key("list"), self.key("list")
            ends = ["LEFT", "RIGHT", "left", "right"]
            cmd = ["LMOVE", src, dst, r.choice(ends), r.choice(ends)]
            if r.random() < 0.03:
                cmd[r.choice([3, 4])] = "UP"
            return [Step("cmd", cmd, [src, dst])]
        if op == 21:
            src, dst = self.key("list"), self.key("list")
            return [Step("cmd", ["RPOPLPUSH", src, dst], [src, dst])]
        if op == 22:
            return [Step("cmd", ["RPUSH", k] + self.some(["a", "b", "c", "1"], 2, 5), [k])]
        if op == 23:  # arity errors
            return [Step("cmd", r.choice([["LPUSH", k], ["LRANGE", k, "0"], ["LPOS", k],
                                          ["LSET", k, "0"], ["LINSERT", k, "BEFORE", "a"],
                                          ["LMOVE", k, k, "LEFT"], ["LPOP", k, "1", "2"],
                                          ["RPOPLPUSH", k], ["LREM", k, "0"]]), [k])]
        return [Step("cmd", ["LRANGE", k, "0", "-1"], [k])]

    def set(self):
        r, k = self.r, self.key("set")
        m = lambda: r.choice(MEMBERS)  # noqa: E731
        op = r.randrange(24)
        if op < 5:
            return [Step("cmd", ["SADD", k] + self.some(MEMBERS, 1, 4), [k])]
        if op < 7:
            return [Step("cmd", ["SREM", k] + self.some(MEMBERS, 1, 3), [k])]
        if op == 7:
            return [Step("cmd", ["SMEMBERS", k], [k])]
        if op == 8:
            return [Step("cmd", ["SISMEMBER", k, m()], [k])]
        if op == 9:
            return [Step("cmd", ["SMISMEMBER", k] + self.some(MEMBERS, 1, 4), [k])]
        if op == 10:
            return [Step("cmd", ["SCARD", k], [k])]
        if op < 13:
            cmd = ["SPOP", k]
            if r.random() < 0.5:
                cmd.append(r.choice(["0", "1", "2", "3", "100", "-1", "x"]))
            return [Step("spop", cmd, [k])]
        if op < 15:
            cmd = ["SRANDMEMBER", k]
            if r.random() < 0.7:
                cmd.append(r.choice(["0", "1", "2", "5", "100", "-1", "-3", "-20", "x"]))
            return [Step("srand", cmd, [k])]
        if op < 18:
            keys = [self.key("set") for _ in range(r.randint(1, 3))]
            return [Step("cmd", [r.choice(["SINTER", "SUNION", "SDIFF"])] + keys, keys)]
        if op < 21:
            dst = self.key("set")
            keys = [self.key("set") for _ in range(r.randint(1, 3))]
            name = r.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])
            return [Step("cmd", [name, dst] + keys, [dst] + keys)]
        if op == 21:
            return [Step("scan", ["SSCAN", k] + self.scan_args(), [k])]
        if op == 22:
            return [Step("cmd", r.choice([["SADD", k], ["SREM", k], ["SISMEMBER", k],
                                          ["SMISMEMBER", k], ["SINTERSTORE", k],
                                          ["SPOP", k, "1", "2"], ["SCARD"], ["SUNION"],
                                          ["SRANDMEMBER", k, "1", "2"]]), [k])]
        return [Step("cmd", ["SADD", k] + self.some(["1", "2", "3", "10", "-1"], 1, 3), [k])]

    def zset(self):
        r, k = self.r, self.key("zset")
        m = lambda: r.choice(MEMBERS)  # noqa: E731
        op = r.randrange(35)
        if op >= 33:
            return [self.zrange_step(self.zrange(LEX_KEY, "lex"))]
        if op < 6:
            return [Step("cmd", self.zadd(k), [k])]
        if op < 8:
            return [Step("cmd", ["ZREM", k] + self.some(MEMBERS, 1, 3), [k])]
        if op == 8:
            return [Step("cmd", ["ZSCORE", k, m()], [k])]
        if op == 9:
            return [Step("cmd", ["ZMSCORE", k] + self.some(MEMBERS, 1, 4), [k])]
        if op == 10:
            inc = r.choice(["1", "-1", "0.1", "2.5", "inf", "-inf", "1e10", "abc", "0"])
            return [Step("cmd", ["ZINCRBY", k, inc, m()], [k])]
        if op == 11:
            return [Step("cmd", ["ZCARD", k], [k])]
        if op == 12:
            return [Step("cmd", ["ZCOUNT", k, self.pick(RANGE, BAD_RANGE),
                                 self.pick(RANGE, BAD_RANGE)], [k])]
        if op < 18:
            return [self.zrange_step(self.zrange(k))]
        if op < 20:
            cmd = ["ZRANGEBYSCORE", k, self.pick(RANGE, BAD_RANGE), self.pick(RANGE, BAD_RANGE)]
            opts = []
            if r.random() < 0.4:
                opts.append("WITHSCORES")
            if r.random() < 0.4:
                opts += ["LIMIT", r.choice(["0", "1", "2", "-1"]), r.choice(["1", "2", "-1", "0"])]
            if r.random() < 0.2:
                r.shuffle(opts)
            return [Step("cmd", cmd + opts, [k])]
        if op == 20:
            cmd = ["ZREVRANGE", k, self.idx(), self.idx()]
            if r.random() < 0.5:
                cmd.append(r.choice(["WITHSCORES", "withscores", "BYSCORE"]))
            return [Step("cmd", cmd, [k])]
        if op == 21:
            return [Step("cmd", [r.choice(["ZRANK", "ZREVRANK"]), k, m()], [k])]
        if op < 24:
            cmd = [r.choice(["ZPOPMIN", "ZPOPMAX"]), k]
            if r.random() < 0.5:
                cmd.append(r.choice(["0", "1", "2", "3", "-1", "x", "100"]))
            return [Step("cmd", cmd, [k])]
        if op < 27:
            return [self.zstore()]
        if op == 27:
            return [Step("scan", ["ZSCAN", k] + self.scan_args(), [k])]
        if op == 28:
            return [Step("cmd", r.choice([["ZADD", k], ["ZADD", k, "1"], ["ZADD", k, "NX"],
                                          ["ZSCORE", k], ["ZINCRBY", k, "1"], ["ZRANGE", k, "0"],
                                          ["ZCOUNT", k, "0"], ["ZRANK", k], ["ZMSCORE", k],
                                          ["ZPOPMIN", k, "1", "2"], ["ZUNIONSTORE", k, "1"],
                                          ["ZRANGEBYSCORE", k, "0"]]), [k])]
        if op in (29, 30):  # a lex-friendly zset: all scores 0
            pairs = []
            for x in self.some(MEMBERS, 1, 4):
                pairs += ["0", x]
            return [Step("cmd", ["ZADD", LEX_KEY] + pairs, [LEX_KEY])]
        return [Step("cmd", ["ZADD", k, str(r.randint(-3, 3)), m()], [k])]

    def zadd(self, k):
        r = self.r
        flags = []
        for flag, p in (("NX", 0.07), ("XX", 0.1), ("GT", 0.1), ("LT", 0.07), ("CH", 0.25),
                        ("INCR", 0.08)):
            if r.random() < p:
                flags.append(flag if r.random() < 0.9 else flag.lower())
        r.shuffle(flags)
        n = 1 if "INCR" in [f.upper() for f in flags] and r.random() < 0.9 else r.randint(1, 3)
        pairs = []
        for _ in range(n):
            pairs += [self.score(k), r.choice(MEMBERS)]
        if r.random() < 0.03:
            pairs.pop()
        return ["ZADD", k] + flags + pairs

    @staticmethod
    def zrange_step(cmd):
        lex = any(a.upper() == "BYLEX" for a in cmd)
        return Step("lex" if lex else "cmd", cmd, [cmd[1]])

    def zrange(self, k, mode=None):
        r = self.r
        mode = mode or r.choice(["index", "index", "score", "score", "lex"])
        if mode == "index":
            cmd = ["ZRANGE", k, self.idx(), self.idx()]
        elif mode == "score":
            cmd = ["ZRANGE", k, self.pick(RANGE, BAD_RANGE), self.pick(RANGE, BAD_RANGE), "BYSCORE"]
        else:
            k = LEX_KEY if r.random() < 0.7 else k
            cmd = ["ZRANGE", k, self.pick(LEX, BAD_LEX), self.pick(LEX, BAD_LEX), "BYLEX"]
        opts = []
        if r.random() < 0.35:
            opts.append("REV")
        if r.random() < (0.1 if mode == "index" else 0.45):
            opts += ["LIMIT", r.choice(["0", "1", "2", "-1", "5"]),
                     r.choice(["1", "2", "-1", "0", "10"])]
        if r.random() < (0.1 if mode == "lex" else 0.45):
            opts.append("WITHSCORES")
        if r.random() < 0.03:
            opts.append(r.choice(["BYSCORE", "BYLEX", "LIMIT", "BOGUS"]))
        return cmd + opts

    def zstore(self):
        r = self.r
        dst = self.key("zset")
        n = r.randint(1, 3)
        srcs = [self.key("zset") if r.random() < 0.75 else self.key("set") for _ in range(n)]
        numkeys = str(n) if r.random() < 0.93 else r.choice(["0", "x", str(n + 1), "-1"])
        cmd = [r.choice(["ZUNIONSTORE", "ZINTERSTORE"]), dst, numkeys] + srcs
        if r.random() < 0.4:
            ws = [r.choice(["1", "2", "0", "-1", "1.5", "inf", "0.1"]) for _ in range(n)]
            if r.random() < 0.05:
                ws[-1] = "abc"
            if r.random() < 0.05:
                ws.pop()
            cmd += ["WEIGHTS"] + ws
        if r.random() < 0.4:
            cmd += ["AGGREGATE", r.choice(["SUM", "MIN", "MAX", "min", "AVG"])]
        return Step("cmd", cmd, [dst] + srcs)

    def generic(self):
        r, k = self.r, self.key()
        op = r.randrange(12)
        if op == 0:
            return [Step("cmd", ["TYPE", k], [k])]
        if op == 1:
            keys = [self.key() for _ in range(r.randint(1, 3))]
            return [Step("cmd", ["DEL"] + keys, keys)]
        if op == 2:
            keys = [self.key() for _ in range(r.randint(1, 3))]
            return [Step("cmd", ["EXISTS"] + keys, keys)]
        if op == 3:
            cmd = ["EXPIRE", k, r.choice(["1000", "2000", "0", "-1", "x"])]
            if r.random() < 0.3:
                cmd.append(r.choice(["NX", "XX", "GT", "LT"]))
            return [Step("cmd", cmd, [k])]
        if op < 6:
            return [Step("cmd", ["TTL", k], [k])]
        if op == 6:
            return [Step("cmd", ["SET", k, r.choice(VALUES)], [k])]
        if op < 9:
            return [Step("cmd", ["GET", k], [k])]
        if op == 9:
            return [Step("cmd", ["INCR", k], [k])]
        return [Step("cmd", ["TYPE", k], [k])]

    def recycle(self, kind):
        """DEL of a home key: wrong-type collisions do not pile up for good."""
        k = self.r.choice(HOME[kind])
        return [Step("cmd", ["DEL", k], [k])]

    def steps(self, n):
        out = []
        families = [(self.hash, 24), (self.list, 24), (self.set, 20), (self.zset, 26),
                    (self.generic, 6)]
        total = sum(w for _, w in families)
        while len(out) < n:
            x = self.r.randrange(total)
            for (fn, w), kind in zip(families, ("hash", "list", "set", "zset", None)):
                if x < w:
                    out += self.recycle(kind) if kind and self.r.random() < 0.04 else fn()
                    break
                x -= w
        return out[:n]


def gen_steps(seed, n):
    return Gen(random.Random(seed)).steps(n)


# ---- checks for the nondeterministic commands -----------------------------------------------

def _count_arg(cmd):
    if len(cmd) < 3:
        return None
    try:
        return int(cmd[2])
    except ValueError:
        return None


def srand_shape(cmd, pre, reply):
    """(shape to compare across servers, problem with this server's own reply or None)."""
    if isinstance(reply, RespError) or reply is None or reply is NULL3 or reply is NIL_ARRAY:
        return reply, None
    members = elements(pre)
    if members is None:
        return ("reply", short(reply)), f"SMEMBERS before answered {short(pre)}"
    mset = set(members)
    if isinstance(reply, bytes):
        return "one element", (None if reply in mset else f"{reply!r} was not a member")
    got = elements(reply)
    if got is None:
        return ("unexpected", short(reply)), "not an array"
    tag = "set" if isinstance(reply, tuple) else "array"
    if not set(got) <= mset:
        return (tag, len(got)), f"returned non-members {sorted(set(got) - mset)!r}"
    count = _count_arg(cmd)
    if count is not None and count >= 0 and len(set(got)) != len(got):
        return (tag, len(got)), "repeated elements with a positive count"
    return (tag, len(got)), None


def spop_shape(cmd, pre, reply, post):
    shape, problem = srand_shape(cmd, pre, reply)
    if problem or isinstance(reply, RespError):
        return shape, problem
    before, after = elements(pre), elements(post)
    if before is None:
        return shape, None
    after = [] if after is None else after  # key gone: SMEMBERS answers an empty array
    popped = [] if reply is None or reply is NULL3 or reply is NIL_ARRAY else (
        [reply] if isinstance(reply, bytes) else elements(reply))
    if len(set(popped)) != len(popped):
        return shape, f"popped a member twice: {short(popped)}"
    if sorted(after) != sorted(set(before) - set(popped)):
        return shape, (f"set after pop {short(sorted(after))} is not the set before minus the "
                       f"popped {short(popped)}")
    return shape, None


def all_scores_equal(withscores):
    """ZRANGE k 0 -1 WITHSCORES reply (RESP2 flat or RESP3 pairs) -> whether scores are equal."""
    if not isinstance(withscores, list):
        return False
    if withscores and isinstance(withscores[0], list):
        scores = [p[1] for p in withscores]
    else:
        scores = withscores[1::2]
    return len(set(map(repr, scores))) <= 1


def full_scan(conn, cmd):
    """Iterate a HSCAN/SSCAN/ZSCAN to cursor 0. Returns the first reply if it is an error, else
    ("scan", sorted deduplicated elements; HSCAN/ZSCAN as pairs)."""
    pairs = cmd[0].upper() in ("HSCAN", "ZSCAN")
    seen = set()
    cursor = cmd[2]
    for page in range(1000):  # a few elements per key: a sane scan ends long before
        reply = conn.call(cmd[0], cmd[1], cursor, *cmd[3:])
        if isinstance(reply, RespError):
            return reply if page == 0 else ("error on page", page, reply)
        if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[0], bytes)
                and isinstance(reply[1], list)):
            return ("malformed page", page, short(reply))
        cursor, items = reply
        if pairs:
            if len(items) % 2:
                return ("odd page", page, short(items))
            seen.update(zip(items[0::2], items[1::2]))
        else:
            seen.update(items)
        if cursor == b"0":
            return ("scan", _sorted(seen))
    return ("scan did not end", short(cmd))


STATE_PROBES = [["TYPE"], ["TTL"], ["HGETALL"], ["LRANGE", "0", "-1"], ["SMEMBERS"],
                ["ZRANGE", "0", "-1", "WITHSCORES"], ["GET"]]


def state_cmds():
    return [[p[0], k] + p[1:] for k in KEYS for p in STATE_PROBES]


# ---- the runner -----------------------------------------------------------------------------

class Mismatches(Exception):
    pass


class Runner:
    def __init__(self, test, seed, proto, label):
        self.test, self.seed, self.proto, self.label = test, seed, proto, label
        self.a = connect(test.target, proto)   # Cellar (or the second redis-server)
        self.b = connect(test.ref, proto)      # the reference redis-server
        self.mismatches = []
        self.history = []  # (index, step) already run
        self.stats = {"commands": 0, "lex exact": 0, "lex shape only": 0, "scans": 0,
                      "spop": 0, "srandmember": 0, "state checks": 0}
        self.by_command = {}  # name -> [value, empty/nil/0, error] replies of the reference

    def close(self):
        self.a.close()
        self.b.close()

    def context(self, keys, upto, n=4):
        out = []
        for i, s in reversed(self.history):
            if i < upto and set(s.keys) & set(keys):
                out.append(f"#{i} {short(s.cmd, 120)}")
                if len(out) >= n:
                    break
        return list(reversed(out))

    def report(self, i, step, what):
        ctx = self.context(step.keys, i)
        self.mismatches.append(f"#{i} {short(step.cmd, 200)}: {what}"
                               + (f"\n      after (same keys): {'; '.join(ctx)}" if ctx else ""))
        if len(self.mismatches) >= MAX_MISMATCHES:
            raise Mismatches()

    def differ(self, x, y):
        who = "redis#2" if AGAINST_REDIS else "cellar"
        return f"{who} {short(x)} / redis {short(y)}"

    # A step is a short list of pipelined commands plus a check of the replies.
    def step_cmds(self, step):
        k = step.cmd[1] if len(step.cmd) > 1 else ""
        if step.kind == "cmd":
            return [step.cmd]
        if step.kind == "srand":
            return [["SMEMBERS", k], step.cmd]
        if step.kind == "spop":
            return [["SMEMBERS", k], step.cmd, ["SMEMBERS", k]]
        if step.kind == "lex":
            return [["ZRANGE", k, "0", "-1", "WITHSCORES"], step.cmd]
        raise AssertionError(step.kind)

    def tally(self, cmd, reply):
        """Per command: how often the reference answered an error / nothing / something."""
        if isinstance(reply, RespError):
            what = 2
        elif reply in (None, [], 0, NULL3, NIL_ARRAY, ("set", []), ("map", [])):
            what = 1
        else:
            what = 0
        counts = self.by_command.setdefault(cmd[0].upper(), [0, 0, 0])
        counts[what] += 1

    def check(self, i, step, ra, rb):
        cmd = step.cmd
        self.tally(cmd, rb[-1] if step.kind != "spop" else rb[1])
        if step.kind == "cmd":
            x, y = normalize(cmd, ra[0]), normalize(cmd, rb[0])
            if x != y:
                self.report(i, step, self.differ(x, y))
            return
        if step.kind == "lex":
            if isinstance(ra[1], RespError) or isinstance(rb[1], RespError) or \
                    all_scores_equal(rb[0]):
                self.stats["lex exact"] += 1
                if ra[1] != rb[1]:
                    self.report(i, step, self.differ(ra[1], rb[1]))
            else:
                self.stats["lex shape only"] += 1
                if type(ra[1]) is not type(rb[1]):
                    self.report(i, step, "(mixed scores: type only) " + self.differ(ra[1], rb[1]))
            return
        pre_a, pre_b = normalize(["SMEMBERS"], ra[0]), normalize(["SMEMBERS"], rb[0])
        if pre_a != pre_b:
            self.report(i, step, "set before differs: " + self.differ(pre_a, pre_b))
        if step.kind == "srand":
            self.stats["srandmember"] += 1
            sa, pa = srand_shape(cmd, ra[0], ra[1])
            sb, pb = srand_shape(cmd, rb[0], rb[1])
        else:
            self.stats["spop"] += 1
            sa, pa = spop_shape(cmd, ra[0], ra[1], ra[2])
            sb, pb = spop_shape(cmd, rb[0], rb[1], rb[2])
        if sa != sb:
            self.report(i, step, f"shape differs: {self.differ(sa, sb)} (replies "
                                 f"{short(ra[1])} / {short(rb[1])})")
        if pa:
            self.report(i, step, f"{'redis#2' if AGAINST_REDIS else 'cellar'}: {pa}")
        if pb:
            self.report(i, step, f"redis: {pb}")

    def resync_after_spop(self, step, rb):
        """Both servers get the reference's remaining members (the pops differed)."""
        k = step.cmd[1]
        left = elements(rb[2])
        if left is None:
            return  # not a set (WRONGTYPE): nothing was popped
        cmds = [["DEL", k]] + ([["SADD", k] + left] if left else [])
        self.a.pipeline(cmds)
        self.b.pipeline(cmds)

    def run_scan(self, i, step):
        self.stats["scans"] += 1
        x, y = full_scan(self.a, step.cmd), full_scan(self.b, step.cmd)
        self.tally(step.cmd, y if isinstance(y, RespError) else (
            [] if y == ("scan", []) else y))
        if x != y:
            self.report(i, step, self.differ(x, y))

    def check_state(self, i):
        self.stats["state checks"] += 1
        cmds = state_cmds()
        ra, rb = self.a.pipeline(cmds), self.b.pipeline(cmds)
        bad_keys = []
        for cmd, x, y in zip(cmds, ra, rb):
            x, y = normalize(cmd, x), normalize(cmd, y)
            if x != y:
                if cmd[1] not in bad_keys:
                    bad_keys.append(cmd[1])
                    self.report(i, Step("state", cmd, [cmd[1]]),
                                "key state differs after the commands so far: "
                                + self.differ(x, y))
        for k in bad_keys:  # start that key afresh on both servers
            self.a.call("DEL", k)
            self.b.call("DEL", k)
        if self.a.call("DBSIZE") != self.b.call("DBSIZE"):
            self.report(i, Step("state", ["DBSIZE"], []), "DBSIZE differs")

    def flush(self, batch):
        """Pipelines a batch of steps to both servers and checks every reply."""
        if not batch:
            return
        cmds, spans = [], []
        for i, step in batch:
            c = self.step_cmds(step)
            spans.append((i, step, len(cmds), len(c)))
            cmds += c
        ra, rb = self.a.pipeline(cmds), self.b.pipeline(cmds)
        for i, step, at, n in spans:
            self.history.append((i, step))
            self.stats["commands"] += 1
            self.check(i, step, ra[at:at + n], rb[at:at + n])
            if step.kind == "spop":
                self.resync_after_spop(step, rb[at:at + n])
        batch.clear()

    def run(self, steps, batch_size, state_every):
        self.a.call("FLUSHDB")
        self.b.call("FLUSHDB")
        batch, since_state = [], 0
        current = None
        try:
            for i, step in enumerate(steps):
                current = (i, step)
                if step.kind == "scan":
                    self.flush(batch)
                    self.history.append((i, step))
                    self.stats["commands"] += 1
                    self.run_scan(i, step)
                else:
                    batch.append((i, step))
                    # SPOP changes the two servers differently: resync before anything else.
                    if len(batch) >= batch_size or step.kind == "spop":
                        self.flush(batch)
                since_state += 1
                if since_state >= state_every:
                    self.flush(batch)
                    self.check_state(i)
                    since_state = 0
            self.flush(batch)
            self.check_state(len(steps))
        except Mismatches:
            pass
        except (ConnectionError, OSError, socket.timeout, ValueError) as e:  # ValueError: bad reply
            tail = ""
            if isinstance(self.test.target, harness.CellarServer):
                tail = "\n--- cellar log tail ---\n" + self.test.target.log_tail(2000)
            self.test.fail(f"{self.label} seed {self.seed}: connection failed ({e!r}) at or "
                           f"before step #{current[0] if current else '?'} "
                           f"{short(current[1].cmd) if current else ''}; mismatches so far:\n  "
                           + "\n  ".join(self.mismatches) + tail)
        if self.mismatches:
            more = " (stopped at the limit)" if len(self.mismatches) >= MAX_MISMATCHES else ""
            self.test.fail(
                f"{self.label}, seed {self.seed} (RESP{self.proto}): "
                f"{len(self.mismatches)} mismatch(es){more}. Reproduce with DIFF_SEED={SEED} "
                f"DIFF_COMMANDS={COUNT}.\n  " + "\n  ".join(self.mismatches))


# ---- deterministic cases ----------------------------------------------------------------------

ANY = _Sentinel("ANY")
E = RespError
WRONGTYPE = E("WRONGTYPE Operation against a key holding the wrong kind of value")

# (name, [(command, expected RESP2 reply or ANY)]). Every reply is compared with the reference;
# the expectation is checked against the reference in RESP2 (a check of this file itself).
CASES = [
    ("lmove_between_lists", [
        (["RPUSH", "src", "a", "b", "c"], 3),
        (["RPUSH", "dst", "x"], 1),
        (["LMOVE", "src", "dst", "LEFT", "RIGHT"], b"a"),
        (["LMOVE", "src", "dst", "RIGHT", "LEFT"], b"c"),
        (["LRANGE", "src", "0", "-1"], [b"b"]),
        (["LRANGE", "dst", "0", "-1"], [b"c", b"x", b"a"]),
        (["LMOVE", "src", "dst", "left", "left"], b"b"),
        (["EXISTS", "src"], 0),
        (["LMOVE", "src", "dst", "LEFT", "LEFT"], None),
        (["LMOVE", "dst", "dst", "RIGHT", "LEFT"], b"a"),
        (["LRANGE", "dst", "0", "-1"], [b"a", b"b", b"c", b"x"]),
        (["LMOVE", "dst", "dst", "LEFT", "RIGHT"], b"a"),
        (["LRANGE", "dst", "0", "-1"], [b"b", b"c", b"x", b"a"]),
        (["RPOPLPUSH", "dst", "other"], b"a"),
        (["LRANGE", "other", "0", "-1"], [b"a"]),
        (["LMOVE", "dst", "other", "LEFT", "UP"], E("ERR syntax error")),
        (["LMOVE", "dst", "other", "LEFT"], ANY),
        (["LLEN", "dst"], 3),
    ]),
    ("lmove_wrongtype_destination", [
        (["RPUSH", "src", "1", "2"], 2),
        (["SET", "dst", "str"], b"OK"),
        (["LMOVE", "src", "dst", "LEFT", "LEFT"], WRONGTYPE),
        (["RPOPLPUSH", "src", "dst"], WRONGTYPE),
        (["LRANGE", "src", "0", "-1"], [b"1", b"2"]),
        (["GET", "dst"], b"str"),
        (["HSET", "h", "f", "v"], 1),
        (["LMOVE", "src", "h", "RIGHT", "LEFT"], WRONGTYPE),
        (["LLEN", "src"], 2),
        (["LMOVE", "missing", "dst", "LEFT", "LEFT"], None),  # no source: dest not looked at
        (["LMOVE", "dst", "src", "LEFT", "LEFT"], WRONGTYPE),
        (["LRANGE", "src", "0", "-1"], [b"1", b"2"]),
    ]),
    ("zunionstore_weights_and_set_source", [
        (["ZADD", "z", "1", "a", "2", "b"], 2),
        (["SADD", "s", "a", "c"], 2),
        (["ZUNIONSTORE", "out", "2", "z", "s", "WEIGHTS", "2", "3"], 3),
        (["ZRANGE", "out", "0", "-1", "WITHSCORES"], [b"c", b"3", b"b", b"4", b"a", b"5"]),
        (["ZINTERSTORE", "out", "2", "z", "s", "WEIGHTS", "2", "3", "AGGREGATE", "MAX"], 1),
        (["ZRANGE", "out", "0", "-1", "WITHSCORES"], [b"a", b"3"]),
        (["ZINTERSTORE", "out", "2", "z", "s", "AGGREGATE", "min"], 1),
        (["ZRANGE", "out", "0", "-1", "WITHSCORES"], [b"a", b"1"]),
        (["ZUNIONSTORE", "out", "2", "z", "s", "WEIGHTS", "0.1", "1.5", "AGGREGATE", "SUM"], 3),
        (["ZRANGE", "out", "0", "-1", "WITHSCORES"], ANY),
        (["ZUNIONSTORE", "out", "2", "z", "s", "WEIGHTS", "1"], E("ERR syntax error")),
        (["ZUNIONSTORE", "out", "2", "z", "s", "WEIGHTS", "1", "x"], ANY),
        (["ZUNIONSTORE", "out", "2", "z", "s", "AGGREGATE", "AVG"], E("ERR syntax error")),
        (["ZUNIONSTORE", "out", "0", "z"], ANY),
        (["ZUNIONSTORE", "out", "3", "z", "s"], E("ERR syntax error")),
        (["SET", "str", "x"], b"OK"),
        (["ZUNIONSTORE", "out", "2", "z", "str"], WRONGTYPE),
        (["ZUNIONSTORE", "out", "1", "missing"], 0),
        (["EXISTS", "out"], 0),
        (["ZADD", "zi", "1", "a", "inf", "b"], 2),
        (["ZADD", "zj", "1", "a", "-inf", "b"], 2),
        (["ZUNIONSTORE", "out", "2", "zi", "zj"], 2),
        (["ZSCORE", "out", "b"], b"0"),   # inf + -inf: 0 by convention
        (["ZUNIONSTORE", "out", "1", "zi", "WEIGHTS", "0"], 2),
        (["ZSCORE", "out", "b"], b"0"),   # 0 * inf: 0 by convention
        (["ZINTERSTORE", "str", "2", "z", "s"], 1),  # overwrites the string
        (["TYPE", "str"], b"zset"),
    ]),
    ("sinterstore_overwrites_other_types", [
        (["SET", "dst", "x"], b"OK"),
        (["SADD", "s1", "a", "b", "c"], 3),
        (["SADD", "s2", "b", "c", "d"], 3),
        (["SINTERSTORE", "dst", "s1", "s2"], 2),
        (["TYPE", "dst"], b"set"),
        (["SMEMBERS", "dst"], [b"b", b"c"]),
        (["SINTERSTORE", "dst", "s1", "missing"], 0),
        (["EXISTS", "dst"], 0),
        (["SET", "dst2", "x"], b"OK"),
        (["EXPIRE", "dst2", "1000"], 1),
        (["SUNIONSTORE", "dst2", "s1", "s2"], 4),
        (["TTL", "dst2"], -1),
        (["SDIFFSTORE", "dst3", "s1", "s2"], 1),
        (["SMEMBERS", "dst3"], [b"a"]),
        (["SET", "str", "v"], b"OK"),
        (["SINTERSTORE", "dst", "s1", "str"], WRONGTYPE),
        (["SINTERSTORE", "dst", "missing", "str"], ANY),
        (["SINTER", "missing", "str"], ANY),
        (["SINTERSTORE", "s1", "s1", "s2"], 2),
        (["SMEMBERS", "s1"], [b"b", b"c"]),
        (["RPUSH", "l", "a"], 1),
        (["SUNIONSTORE", "l", "s2"], 3),
        (["TYPE", "l"], b"set"),
        (["SDIFF", "s2", "s1", "missing"], [b"d"]),
    ]),
    ("lpos_rank_count_maxlen", [
        (["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"], 8),
        (["LPOS", "l", "c"], 2),
        (["LPOS", "l", "c", "RANK", "2"], 6),
        (["LPOS", "l", "c", "RANK", "-1"], 7),
        (["LPOS", "l", "c", "RANK", "-2", "COUNT", "0"], [6, 2]),
        (["LPOS", "l", "c", "COUNT", "0"], [2, 6, 7]),
        (["LPOS", "l", "c", "COUNT", "2"], [2, 6]),
        (["LPOS", "l", "c", "MAXLEN", "2"], None),
        (["LPOS", "l", "c", "MAXLEN", "3"], 2),
        (["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7"], [2, 6]),
        (["LPOS", "l", "c", "RANK", "-1", "MAXLEN", "1"], 7),
        (["LPOS", "l", "c", "RANK", "-1", "MAXLEN", "2", "COUNT", "0"], [7, 6]),
        (["LPOS", "l", "c", "RANK", "4"], None),
        (["LPOS", "l", "c", "RANK", "3", "COUNT", "5"], [7]),
        (["LPOS", "l", "x", "COUNT", "2"], []),
        (["LPOS", "l", "c", "RANK", "0"], ANY),
        (["LPOS", "l", "c", "COUNT", "-1"], ANY),
        (["LPOS", "l", "c", "MAXLEN", "-1"], ANY),
        (["LPOS", "l", "c", "RANK", "9223372036854775807"], None),
        (["LPOS", "l", "c", "FOO", "1"], E("ERR syntax error")),
        (["LPOS", "l", "c", "RANK"], ANY),
        (["LPOS", "missing", "c"], None),
        (["LPOS", "missing", "c", "COUNT", "1"], []),
        (["SET", "str", "x"], b"OK"),
        (["LPOS", "str", "c"], WRONGTYPE),
    ]),
    ("zadd_gt_lt_ch", [
        (["ZADD", "z", "1", "a", "2", "b"], 2),
        (["ZADD", "z", "GT", "CH", "3", "a", "1", "b"], 1),
        (["ZADD", "z", "LT", "CH", "0", "a", "5", "b", "1", "c"], 2),
        (["ZRANGE", "z", "0", "-1", "WITHSCORES"], [b"a", b"0", b"c", b"1", b"b", b"2"]),
        (["ZADD", "z", "GT", "10", "d"], 1),
        (["ZADD", "z", "XX", "GT", "CH", "20", "d", "30", "e"], 1),
        (["ZADD", "z", "NX", "100", "a", "4", "f"], 1),
        (["ZADD", "z", "NX", "GT", "1", "a"], ANY),
        (["ZADD", "z", "NX", "XX", "1", "a"], ANY),
        (["ZADD", "z", "GT", "LT", "1", "a"], ANY),
        (["ZADD", "z", "INCR", "1", "a", "2", "b"], ANY),
        (["ZADD", "z", "INCR", "GT", "5", "a"], b"5"),
        (["ZADD", "z", "INCR", "GT", "-1", "a"], None),
        (["ZADD", "z", "INCR", "LT", "-1", "a"], b"4"),
        (["ZADD", "z", "INCR", "NX", "1", "a"], None),
        (["ZADD", "z", "INCR", "XX", "1", "zz"], None),
        (["ZADD", "z", "CH", "4", "a"], 0),
        (["ZADD", "z", "CH", "4.5", "a"], 1),
        (["ZADD", "z", "ch", "gt", "0", "a", "40", "zz"], 1),
        (["ZADD", "z", "1"], E("ERR wrong number of arguments for 'zadd' command")),
        (["ZADD", "z", "1", "a", "2"], E("ERR syntax error")),
        (["ZADD", "z", "abc", "a"], ANY),
        (["ZADD", "z", "nan", "a"], ANY),
        (["ZADD", "z", "(1", "a"], ANY),
        (["ZADD", "z", "INCR", "inf", "a"], b"inf"),
        (["ZADD", "z", "INCR", "-inf", "a"], ANY),
        (["ZINCRBY", "z", "-inf", "a"], ANY),
        (["ZADD", "z", "-0", "m0"], 1),
        (["ZSCORE", "z", "m0"], ANY),
        (["ZADD", "z", "CH", "0", "m0"], 0),
        (["ZADD", "z", "0.1", "m1"], 1),
        (["ZINCRBY", "z", "0.2", "m1"], ANY),
        (["ZADD", "z", "1e10", "m2", "0x10", "m3"], 2),
        (["ZMSCORE", "z", "m1", "m2", "m3", "none"], ANY),
        (["ZRANGE", "z", "0", "-1", "WITHSCORES"], ANY),
    ]),
    ("zrange_bylex_limit_and_bad_combinations", [
        (["ZADD", "z", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"], 5),
        (["ZRANGE", "z", "[b", "(e", "BYLEX"], [b"b", b"c", b"d"]),
        (["ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", "1", "2"], [b"b", b"c"]),
        (["ZRANGE", "z", "+", "-", "BYLEX", "REV", "LIMIT", "0", "2"], [b"e", b"d"]),
        (["ZRANGE", "z", "[c", "-", "BYLEX", "REV"], [b"c", b"b", b"a"]),
        (["ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", "2", "-1"], [b"c", b"d", b"e"]),
        (["ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", "-1", "2"], []),
        (["ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", "1", "0"], []),
        (["ZRANGE", "z", "(e", "+", "BYLEX"], []),
        (["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"], ANY),
        (["ZRANGE", "z", "a", "+", "BYLEX"], ANY),
        (["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"], ANY),
        (["ZRANGE", "z", "(a", "[c", "BYSCORE"], ANY),
        (["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"], ANY),
        (["ZRANGE", "z", "0", "-1", "LIMIT", "0"], ANY),
        (["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2", "WITHSCORES"],
         [b"b", b"0", b"c", b"0"]),
        (["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "0", "2"], [b"e", b"d"]),
        (["ZRANGE", "z", "1", "3", "REV"], [b"d", b"c", b"b"]),
        (["ZRANGEBYSCORE", "z", "0", "0", "LIMIT", "4", "5", "WITHSCORES"], [b"e", b"0"]),
        (["ZREVRANGE", "z", "0", "1", "WITHSCORES"], [b"e", b"0", b"d", b"0"]),
        (["ZRANGE", "z", "", "(", "BYSCORE"], ANY),
    ]),
    ("lpop_rpop_count", [
        (["LPOP", "missing", "0"], NIL_ARRAY),
        (["LPOP", "missing"], None),
        (["RPOP", "missing", "2"], NIL_ARRAY),
        (["RPUSH", "l", "a", "b", "c"], 3),
        (["LPOP", "l", "0"], []),
        (["RPOP", "l", "0"], []),
        (["LPOP", "l", "2"], [b"a", b"b"]),
        (["RPOP", "l", "5"], [b"c"]),
        (["EXISTS", "l"], 0),
        (["LPOP", "l", "-1"], ANY),
        (["LPOP", "l", "x"], ANY),
        (["SET", "s", "x"], b"OK"),
        (["LPOP", "s", "0"], WRONGTYPE),
        (["RPUSH", "l2", "a"], 1),
        (["LPOP", "l2", "1"], [b"a"]),
    ]),
    ("hash_numbers_and_errors", [
        (["HSET", "h", "n", "10", "f", "1.5", "s", "abc", "big", "9223372036854775807"], 4),
        (["HINCRBY", "h", "n", "-3"], 7),
        (["HINCRBY", "h", "new", "5"], 5),
        (["HINCRBY", "h", "f", "1"], E("ERR hash value is not an integer")),
        (["HINCRBY", "h", "big", "1"], ANY),
        (["HINCRBY", "h", "n", "x"], ANY),
        (["HINCRBYFLOAT", "h", "f", "0.1"], b"1.6"),
        (["HINCRBYFLOAT", "h", "n", "1e3"], b"1007"),
        (["HINCRBYFLOAT", "h", "s", "1"], ANY),
        (["HINCRBYFLOAT", "h", "f", "inf"], ANY),
        (["HINCRBYFLOAT", "h", "f", "abc"], ANY),
        (["HINCRBYFLOAT", "h", "nf", "-2.5"], b"-2.5"),
        (["HSET", "h", "odd"], ANY),
        (["HMSET", "h", "a", "1", "b", "2"], b"OK"),
        (["HSETNX", "h", "a", "9"], 0),
        (["HSETNX", "h", "c", "9"], 1),
        (["HMGET", "h", "a", "zz", "c"], [b"1", None, b"9"]),
        (["HDEL", "h", "n", "f", "s", "big", "new", "nf", "a", "b", "c", "zz"], 9),
        (["EXISTS", "h"], 0),
        (["HGETALL", "h"], []),
        (["HSET", "h", "", ""], 1),
        (["HGET", "h", ""], b""),
        (["HLEN", "h"], 1),
    ]),
    ("ttl_survives_collection_writes", [
        (["RPUSH", "l", "a"], 1),
        (["EXPIRE", "l", "1000"], 1),
        (["RPUSH", "l", "b"], 2),
        (["LSET", "l", "0", "z"], b"OK"),
        (["TTL", "l"], "positive"),
        (["LPOP", "l", "2"], [b"z", b"b"]),
        (["TTL", "l"], -2),
        (["RPUSH", "l", "c"], 1),
        (["TTL", "l"], -1),
        (["ZADD", "z", "1", "m"], 1),
        (["EXPIRE", "z", "1000"], 1),
        (["ZINCRBY", "z", "1", "m"], b"2"),
        (["TTL", "z"], "positive"),
        (["EXPIRE", "z", "0"], 1),
        (["EXISTS", "z"], 0),
        (["SADD", "s", "m"], 1),
        (["EXPIRE", "s", "-1"], 1),
        (["TYPE", "s"], b"none"),
    ]),
    ("set_pop_and_random_edges", [
        (["SPOP", "missing"], None),
        (["SPOP", "missing", "2"], []),
        (["SRANDMEMBER", "missing"], None),
        (["SRANDMEMBER", "missing", "2"], []),
        (["SRANDMEMBER", "missing", "-2"], []),
        (["SADD", "s", "a"], 1),
        (["SPOP", "s", "0"], []),
        (["SRANDMEMBER", "s", "0"], []),
        (["SRANDMEMBER", "s", "-3"], [b"a", b"a", b"a"]),
        (["SRANDMEMBER", "s", "5"], [b"a"]),
        (["SPOP", "s", "-1"], ANY),
        (["SPOP", "s", "5"], [b"a"]),
        (["EXISTS", "s"], 0),
        (["SADD", "s", "a"], 1),
        (["SPOP", "s"], b"a"),
        (["EXISTS", "s"], 0),
        (["SMISMEMBER", "missing", "a", "b"], [0, 0]),
        (["SET", "str", "x"], b"OK"),
        (["SPOP", "str"], WRONGTYPE),
        (["SMISMEMBER", "str", "a"], WRONGTYPE),
        (["SCARD", "str"], WRONGTYPE),
    ]),
    ("wrongtype_both_directions", [
        (["HSET", "h", "f", "v"], 1),
        (["RPUSH", "l", "a"], 1),
        (["SADD", "s", "a"], 1),
        (["ZADD", "z", "1", "a"], 1),
        (["GET", "h"], WRONGTYPE),
        (["INCR", "l"], WRONGTYPE),
        (["LPUSH", "h", "x"], WRONGTYPE),
        (["SADD", "z", "x"], WRONGTYPE),
        (["ZADD", "s", "1", "x"], WRONGTYPE),
        (["HGET", "z", "a"], WRONGTYPE),
        (["ZSCORE", "h", "f"], WRONGTYPE),
        (["LLEN", "s"], WRONGTYPE),
        (["SET", "x", "1"], b"OK"),
        (["HLEN", "x"], WRONGTYPE),
        (["ZCARD", "x"], WRONGTYPE),
        (["SMEMBERS", "x"], WRONGTYPE),
        (["LRANGE", "x", "0", "-1"], WRONGTYPE),
        (["SET", "h", "now a string"], b"OK"),
        (["TYPE", "h"], b"string"),
        (["TYPE", "l"], b"list"),
        (["TYPE", "s"], b"set"),
        (["TYPE", "z"], b"zset"),
        (["DEL", "l", "s", "z", "missing"], 3),
        (["HLEN", "missing"], 0),
        (["ZSCORE", "missing", "a"], None),
        (["ZRANGE", "missing", "0", "-1"], []),
        (["HGETALL", "missing"], []),
        (["SMEMBERS", "missing"], []),
    ]),
    ("scan_family_edges", [
        (["HSET", "h", "a", "1", "b", "2"], 2),
        (["HSCAN", "h", "abc"], ANY),
        (["HSCAN", "h", "0", "COUNT", "0"], ANY),
        (["HSCAN", "h", "0", "BOGUS"], ANY),
        (["HSCAN", "missing", "0"], [b"0", []]),
        (["SSCAN", "h", "0"], WRONGTYPE),
        (["ZSCAN", "h", "0"], WRONGTYPE),
        (["SSCAN", "h", "x"], ANY),  # which error comes first: the cursor's or the type's
    ]),
]


# ---- the test -----------------------------------------------------------------------------------

class CollectionsVsRedis(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("redis-server"):
            raise unittest.SkipTest("redis-server not installed")
        cls.ref = harness.RedisServer().start()
        try:
            if AGAINST_REDIS:
                cls.target = harness.RedisServer().start()
            else:
                cls.target = harness.CellarServer(["--threads", "2"]).start()
        except BaseException:
            cls.ref.stop()
            cls.ref.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        for s in (cls.target, cls.ref):
            try:
                s.stop()
            finally:
                s.cleanup()

    def sequence(self, label, seed, n, proto, batch, state_every):
        runner = Runner(self, seed, proto, label)
        try:
            runner.run(gen_steps(seed, n), batch, state_every)
        finally:
            runner.close()
        if os.environ.get("DIFF_VERBOSE"):
            print(f"\n{label}: {runner.stats}\n  reference replies per command "
                  "(value/empty/error): " + ", ".join(
                      f"{k} {v[0]}/{v[1]}/{v[2]}" for k, v in sorted(runner.by_command.items())))

    def test_random_resp2_pipelined(self):
        self.sequence("RESP2 pipelined", SEED, COUNT * 3 // 8, 2, batch=64, state_every=64)

    def test_random_resp3_pipelined(self):
        self.sequence("RESP3 pipelined", SEED + 1, COUNT * 3 // 8, 3, batch=64, state_every=64)

    def test_random_resp2_one_by_one(self):
        self.sequence("RESP2 one by one", SEED + 2, COUNT // 4, 2, batch=1, state_every=40)

    def run_cases(self, proto):
        a, b = connect(self.target, proto), connect(self.ref, proto)
        failures = []
        try:
            for name, steps in CASES:
                a.call("FLUSHDB")
                b.call("FLUSHDB")
                before = len(failures)
                for n, (cmd, expected) in enumerate(steps):
                    if len(failures) - before >= CASE_MISMATCHES:
                        failures.append(f"{name}: (stopped after {CASE_MISMATCHES} mismatches)")
                        break
                    x, y = normalize(cmd, a.call(*cmd)), normalize(cmd, b.call(*cmd))
                    who = "redis#2" if AGAINST_REDIS else "cellar"
                    if x != y:
                        failures.append(f"{name} #{n} {short(cmd, 200)}: {who} {short(x)} / "
                                        f"redis {short(y)}")
                    if proto == 2 and expected is not ANY:
                        want = normalize(cmd, expected)
                        if y != want:
                            failures.append(f"{name} #{n} {short(cmd, 200)}: the reference "
                                            f"redis answered {short(y)}, this test expects "
                                            f"{short(want)} (a bug in the test)")
        finally:
            a.close()
            b.close()
        if failures:
            self.fail(f"RESP{proto} cases: {len(failures)} mismatch(es):\n  "
                      + "\n  ".join(failures))

    def test_cases_resp2(self):
        self.run_cases(2)

    def test_cases_resp3(self):
        self.run_cases(3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
