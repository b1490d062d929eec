"""Redis pub/sub over RESP on Cellar's topics: SUBSCRIBE / PSUBSCRIBE / UNSUBSCRIBE /
PUNSUBSCRIBE / PUBLISH / PUBSUB through redis-py, raw sockets and redis-cli; replies compared
byte for byte with a real redis-server (RESP2 and RESP3); cache isolation, token permissions,
a slow consumer that is cut off while the publisher and other subscribers go on, cache
deletion, server shutdown, and the memory an idle subscriber costs.

Run: cd tests/integration && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_resp_pubsub
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import unittest

import redis

from harness import (CellarServer, RedisServer, resp_encode, rss_bytes, signing_keys,
                     stop_server)

SERVER = None  # tokens on (admin key), two loops

SUBSCRIBE_CONTEXT_ERROR = ("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                           "PING / QUIT / RESET are allowed in this context")


def setUpModule():
    global SERVER
    SERVER = CellarServer(["--threads", "2"]).start()


def tearDownModule():
    stop_server(SERVER)


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def get_message(p, timeout=5.0):
    """The next pub/sub message of a redis-py PubSub (confirmations included), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = p.get_message(timeout=max(0.01, deadline - time.monotonic()))
        if m is not None:
            return m
    raise AssertionError("no pub/sub message within %ss" % timeout)


class Frames:
    """Reads whole RESP2/RESP3 frames from a socket and returns their exact bytes."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise AssertionError("no complete frame before the deadline: %r" % self.buf[:200])
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise EOFError("connection closed; buffered %r" % self.buf[:200])
        self.buf += chunk

    def _line(self, pos, deadline):
        while True:
            end = self.buf.find(b"\r\n", pos)
            if end >= 0:
                return end
            self._fill(deadline)

    def _frame_end(self, pos, deadline):
        end = self._line(pos, deadline)
        t, rest = self.buf[pos:pos + 1], self.buf[pos + 1:end]
        after = end + 2
        if t in (b"+", b"-", b":", b"_", b",", b"#", b"(") or (t in (b"$", b"=") and rest == b"-1"):
            return after
        if t in (b"$", b"=", b"!"):
            n = int(rest)
            while len(self.buf) < after + n + 2:
                self._fill(deadline)
            return after + n + 2
        if t in (b"*", b">", b"~", b"%"):
            n = int(rest)
            if n < 0:
                return after
            if t == b"%":
                n *= 2
            for _ in range(n):
                after = self._frame_end(after, deadline)
            return after
        raise AssertionError("bad RESP type %r in %r" % (t, self.buf[pos:pos + 80]))

    def frame(self, timeout=5.0):
        end = self._frame_end(0, time.monotonic() + timeout)
        f, self.buf = self.buf[:end], self.buf[end:]
        return f


def auth_raw(server, cache, secret=None, timeout=10):
    s = server.raw(timeout=timeout)
    s.sendall(resp_encode("AUTH", cache, secret or server.admin_key))
    fr = Frames(s)
    reply = fr.frame()
    if reply != b"+OK\r\n":
        raise AssertionError("AUTH %s: %r" % (cache, reply))
    return s, fr


def conn_loop(client_id):
    return client_id >> 48  # Connection ids carry the loop index in their high bits


def b64(s):
    return base64.b64encode(s.encode()).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint_topic_token(server, grants, tenant="default", token_id="py-topic-token"):
    """A token with topic grants, signed like the server signs them (HS256 with the current
    signing key from the data directory): the admin API mints cache grants only.
    grants: [(role "ps"|"so"|"po", cache or None, topic or None, topic_prefix or None)]."""
    live = [k for k in signing_keys(server.data_dir) if not k[2]]
    kid, secret = live[-1][0], live[-1][1]
    topics = []
    for role, cache, topic, prefix in grants:
        g = {"r": role}
        if cache is not None:
            g["n"] = b64(cache)
        if topic is not None:
            g["t"] = b64(topic)
        if prefix is not None:
            g["tp"] = b64(prefix)
        topics.append(g)
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    payload = {"tn": tenant, "jti": token_id, "k": "api", "iat": int(time.time()),
               "n": b64url(os.urandom(9)), "p": {"c": [], "t": topics}}
    enc = lambda o: b64url(json.dumps(o, separators=(",", ":"), sort_keys=True).encode())
    signing_input = enc(header) + "." + enc(payload)
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


class Base(unittest.TestCase):
    def setUp(self):
        self.cache = "ps_" + self._testMethodName[5:50]
        self.r = SERVER.client(self.cache)

    def pubsub(self, cache=None):
        p = SERVER.client(cache or self.cache).pubsub()
        self.addCleanup(p.close)
        return p

    def numsub(self, channel):
        return dict(self.r.pubsub_numsub(channel)).get(channel.encode(), 0)


class RedisPy(Base):
    def test_subscribe_publish_receive_in_order(self):
        p = self.pubsub()
        p.subscribe("news")
        self.assertEqual(get_message(p), {"type": "subscribe", "pattern": None,
                                          "channel": b"news", "data": 1})
        n = 2000
        pipe = self.r.pipeline(transaction=False)
        for i in range(n):
            pipe.publish("news", "m%05d" % i)
        self.assertEqual(pipe.execute(), [1] * n)
        got = [get_message(p)["data"] for _ in range(n)]
        self.assertEqual(got, [b"m%05d" % i for i in range(n)])
        self.assertIsNone(p.get_message(timeout=0.2))

    def test_binary_and_empty_payloads(self):
        p = self.pubsub()
        p.subscribe(b"bin\x00chan")
        get_message(p)
        payloads = [b"", b"\x00\xff\r\n", os.urandom(4096), b"x" * 100_000]
        for v in payloads:
            self.assertEqual(self.r.publish(b"bin\x00chan", v), 1)
        for v in payloads:
            m = get_message(p)
            self.assertEqual((m["type"], m["channel"], m["data"]), ("message", b"bin\x00chan", v))

    def test_publish_counts_topic_and_pattern_subscriptions_across_loops(self):
        subs, loops = [], set()
        # Connections spread over both loops (SO_REUSEPORT): open until both are used.
        for _ in range(40):
            c = SERVER.client(self.cache)
            loops.add(conn_loop(c.client_id()))
            subs.append(c)
            if len(subs) >= 6 and len(loops) == 2:
                break
        self.assertEqual(loops, {0, 1}, "subscribers should land on both loops")
        ps = []
        for i, c in enumerate(subs):
            p = c.pubsub()
            self.addCleanup(p.close)
            if i % 3 == 2:
                p.psubscribe("cnt.*")
            else:
                p.subscribe("cnt.a")
            get_message(p)
            ps.append(p)
        n_chan = sum(1 for i in range(len(subs)) if i % 3 != 2)
        n_pat = len(subs) - n_chan
        self.assertEqual(self.r.publish("cnt.a", "hi"), n_chan + n_pat)
        self.assertEqual(self.r.publish("cnt.b", "hi"), n_pat)
        self.assertEqual(self.r.publish("other", "hi"), 0)
        for i, p in enumerate(ps):
            m = get_message(p)
            self.assertEqual((m["channel"], m["data"]), (b"cnt.a", b"hi"))
            if i % 3 == 2:
                self.assertEqual((m["type"], m["pattern"]), ("pmessage", b"cnt.*"))
                self.assertEqual(get_message(p)["channel"], b"cnt.b")
            self.assertIsNone(p.get_message(timeout=0.05))
        self.assertEqual(self.r.pubsub_numsub("cnt.a"), [(b"cnt.a", n_chan)])
        self.assertEqual(self.r.pubsub_numpat(), n_pat)

    def test_psubscribe_glob(self):
        p = self.pubsub()
        patterns = ["g.*", "g.?x", "g.[ab]y", r"lit\*"]
        p.psubscribe(*patterns)
        for _ in patterns:
            self.assertEqual(get_message(p)["type"], "psubscribe")
        cases = {"g.1": ["g.*"], "g.zx": ["g.*", "g.?x"], "g.ay": ["g.*", "g.[ab]y"],
                 "g.cy": ["g.*"], "lit*": [r"lit\*"], "litx": [], "h.1": []}
        for ch, want in cases.items():
            self.assertEqual(self.r.publish(ch, "v:" + ch), len(want), ch)
            got = sorted(get_message(p)["pattern"].decode() for _ in want)
            self.assertEqual(got, sorted(want), ch)
        self.assertIsNone(p.get_message(timeout=0.1))

    def test_a_pattern_is_at_most_256_bytes(self):
        # Every publish to the cache is matched against each pattern: their length is bounded.
        p = self.pubsub()
        longest = "L" * 255 + "*"
        p.psubscribe(longest)
        self.assertEqual(get_message(p)["type"], "psubscribe")
        with self.assertRaisesRegex(redis.ResponseError, "257 bytes, over the limit of 256"):
            self.r.execute_command("PSUBSCRIBE", "L" * 256 + "*")
        self.assertEqual(self.r.publish("L" * 255 + "tail", "v"), 1)
        self.assertEqual(get_message(p)["pattern"], longest.encode())

    def test_unsubscribe_all_and_counts(self):
        p = self.pubsub()
        p.subscribe("u1", "u2", "u3")
        p.psubscribe("u*")
        self.assertEqual([get_message(p)["data"] for _ in range(4)], [1, 2, 3, 4])
        p.unsubscribe()
        got = [get_message(p) for _ in range(3)]
        self.assertEqual(sorted(m["channel"] for m in got), [b"u1", b"u2", b"u3"])
        self.assertEqual([m["data"] for m in got], [3, 2, 1])
        self.assertEqual(self.r.pubsub_numsub("u1", "u2"), [(b"u1", 0), (b"u2", 0)])
        self.assertEqual(self.r.publish("u1", "x"), 1)  # the pattern still hears it
        self.assertEqual(get_message(p)["type"], "pmessage")
        p.punsubscribe()
        self.assertEqual(get_message(p)["data"], 0)
        self.assertEqual(self.r.publish("u1", "x"), 0)

    def test_pubsub_channels_numsub_numpat(self):
        p1, p2 = self.pubsub(), self.pubsub()
        p1.subscribe("ch.a", "ch.b")
        p2.subscribe("ch.b", "zz")
        p2.psubscribe("ch.*", "q?")
        for _ in range(2):
            get_message(p1)
        for _ in range(4):
            get_message(p2)
        self.assertEqual(sorted(self.r.pubsub_channels()), [b"ch.a", b"ch.b", b"zz"])
        self.assertEqual(sorted(self.r.pubsub_channels("ch.*")), [b"ch.a", b"ch.b"])
        self.assertEqual(self.r.pubsub_channels("nomatch*"), [])
        self.assertEqual(self.r.pubsub_numsub("ch.a", "ch.b", "zz", "none"),
                         [(b"ch.a", 1), (b"ch.b", 2), (b"zz", 1), (b"none", 0)])
        self.assertEqual(self.r.pubsub_numpat(), 2)
        p2.close()
        wait_until(lambda: self.r.pubsub_numpat() == 0, what="numpat 0 after close")
        self.assertEqual(sorted(self.r.pubsub_channels()), [b"ch.a", b"ch.b"])

    def test_closed_connections_leave_no_subscription(self):
        socks = []
        for _ in range(20):
            s, fr = auth_raw(SERVER, self.cache)
            s.sendall(resp_encode("SUBSCRIBE", "leak") + resp_encode("PSUBSCRIBE", "lea*"))
            fr.frame()
            fr.frame()
            socks.append(s)
        self.assertEqual(self.numsub("leak"), 20)
        self.assertEqual(self.r.pubsub_numpat(), 20)
        for s in socks:
            s.close()
        wait_until(lambda: self.numsub("leak") == 0 and self.r.pubsub_numpat() == 0,
                   what="subscriptions of closed connections to go")
        self.assertEqual(self.r.publish("leak", "x"), 0)


class RawProtocol(Base):
    def test_subscribe_mode_allows_only_pubsub_commands_in_resp2(self):
        s, fr = auth_raw(SERVER, self.cache)
        s.sendall(resp_encode("SUBSCRIBE", "m"))
        fr.frame()
        for cmd, full in ((("GET", "x"), "get"), (("CLIENT", "ID"), "client|id"),
                          (("PUBSUB", "NUMPAT"), "pubsub|numpat"), (("HELLO", "3"), "hello"),
                          (("PUBLISH", "m", "v"), "publish")):
            s.sendall(resp_encode(*cmd))
            self.assertEqual(fr.frame(), b"-" + (SUBSCRIBE_CONTEXT_ERROR % full).encode() + b"\r\n")
        s.sendall(resp_encode("PING") + resp_encode("PING", "hey"))
        self.assertEqual(fr.frame(), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        self.assertEqual(fr.frame(), b"*2\r\n$4\r\npong\r\n$3\r\nhey\r\n")
        # Pipelined: the message published between two commands arrives between their replies.
        s.sendall(resp_encode("UNSUBSCRIBE") + resp_encode("GET", "x"))
        self.assertEqual(fr.frame(), b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nm\r\n:0\r\n")
        self.assertEqual(fr.frame(), b"$-1\r\n")
        s.close()

    def test_resp3_allows_everything_and_uses_pushes(self):
        s, fr = auth_raw(SERVER, self.cache)
        s.sendall(resp_encode("HELLO", "3"))
        fr.frame()
        s.sendall(resp_encode("SUBSCRIBE", "r3") + resp_encode("SET", "k", "v") +
                  resp_encode("GET", "k") + resp_encode("PING"))
        self.assertEqual(fr.frame(), b">3\r\n$9\r\nsubscribe\r\n$2\r\nr3\r\n:1\r\n")
        self.assertEqual(fr.frame(), b"+OK\r\n")
        self.assertEqual(fr.frame(), b"$1\r\nv\r\n")
        self.assertEqual(fr.frame(), b"+PONG\r\n")
        self.assertEqual(self.r.publish("r3", "hello"), 1)
        self.assertEqual(fr.frame(), b">3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$5\r\nhello\r\n")
        s.close()

    def test_pipelined_subscribe_then_publish_reaches_the_subscription(self):
        # The confirmation is only written once the subscription is ready, and a command
        # after a SUBSCRIBE runs after it: a PUBLISH pipelined behind it is heard (RESP3).
        s, fr = auth_raw(SERVER, self.cache)
        s.sendall(resp_encode("HELLO", "3"))
        fr.frame()
        for i in range(30):
            ch = b"pipe%d" % i
            s.sendall(resp_encode("SUBSCRIBE", ch) + resp_encode("PUBLISH", ch, "x"))
            frames = [fr.frame() for _ in range(3)]
            self.assertEqual(frames[0], b">3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:%d\r\n"
                             % (len(ch), ch, i + 1))
            # The push and PUBLISH's reply may come in either order (the push travels
            # through the channel's owner loop).
            self.assertEqual(sorted(frames[1:]),
                             sorted([b":1\r\n", b">3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$1\r\nx\r\n"
                                     % (len(ch), ch)]))
        s.close()

    def test_confirmation_means_later_publishes_arrive(self):
        # A publisher on another connection (maybe another loop) publishes right after the
        # subscriber saw its confirmation: every such message must arrive.
        for i in range(40):
            ch = "ready%d" % i
            s, fr = auth_raw(SERVER, self.cache)
            s.sendall(resp_encode("SUBSCRIBE", ch))
            fr.frame()
            self.assertEqual(self.r.publish(ch, "now"), 1)
            self.assertEqual(fr.frame(), b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$3\r\nnow\r\n"
                             % (len(ch), ch.encode()))
            s.close()

    def test_reset_and_quit_in_subscribe_mode(self):
        s, fr = auth_raw(SERVER, self.cache)
        s.sendall(resp_encode("SUBSCRIBE", "rq") + resp_encode("PSUBSCRIBE", "r*"))
        fr.frame()
        fr.frame()
        s.sendall(resp_encode("RESET"))
        self.assertEqual(fr.frame(), b"+RESET\r\n")
        wait_until(lambda: self.numsub("rq") == 0 and self.r.pubsub_numpat() == 0,
                   what="RESET to drop the subscriptions")
        s.close()
        s, fr = auth_raw(SERVER, self.cache)
        s.sendall(resp_encode("SUBSCRIBE", "rq"))
        fr.frame()
        s.sendall(resp_encode("QUIT"))
        self.assertEqual(fr.frame(), b"+OK\r\n")
        with self.assertRaises(EOFError):
            fr.frame(timeout=5)
        wait_until(lambda: self.numsub("rq") == 0, what="QUIT to drop the subscription")

    @unittest.skipIf(shutil.which("strace") is None or os.environ.get("CELLAR_SANITIZER"),
                     "needs strace (and no sanitizer)")
    def test_messages_delivered_in_one_turn_are_coalesced(self):
        s, fr = auth_raw(SERVER, self.cache)
        s.sendall(resp_encode("SUBSCRIBE", "co"))
        fr.frame()
        pub, pfr = auth_raw(SERVER, self.cache)
        log = os.path.join(SERVER.data_dir, "strace-coalesce.txt")
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-s", "40", "-e", "trace=sendmsg,sendto,write,writev",
                                   "-o", log, "-p", str(SERVER.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)  # attached to every thread
            if tracer.poll() is not None:
                self.skipTest("strace cannot attach here")
            n = 500
            pub.sendall(b"".join(resp_encode("PUBLISH", "co", "%04d" % i) for i in range(n)))
            for _ in range(n):
                self.assertEqual(pfr.frame(), b":1\r\n")
            want = b"".join(b"*3\r\n$7\r\nmessage\r\n$2\r\nco\r\n$4\r\n%04d\r\n" % i
                            for i in range(n))
            got = b"".join(fr.frame() for _ in range(n))
            self.assertEqual(got, want)
            time.sleep(0.3)
        finally:
            tracer.terminate()
            tracer.wait(10)
        with open(log, errors="replace") as f:
            writes = [l for l in f if "message\\r\\n$2\\r\\nco\\r\\n" in l]
        # Every message delivered in one loop turn goes out in one write: a few writes for the
        # 500 (the publisher's rounds are split by its reads), never one per message.
        print("\n  coalescing: %d writes for %d messages" % (len(writes), n))
        self.assertGreater(len(writes), 0, "strace saw no write of the messages")
        self.assertLess(len(writes), n // 10, writes[:5])
        s.close()
        pub.close()

    def test_an_idle_parked_connection_wakes_for_large_commands(self):
        # After a quiet second or two a connection holds no receive buffer; a large
        # pipelined burst must still be read whole.
        s, fr = auth_raw(SERVER, self.cache)
        time.sleep(2.5)
        big = os.urandom(300_000)
        s.sendall(resp_encode("SET", "big", big) + resp_encode("GET", "big"))
        self.assertEqual(fr.frame(), b"+OK\r\n")
        self.assertEqual(fr.frame(), b"$%d\r\n%s\r\n" % (len(big), big))
        s.close()

    def test_tls_subscriber(self):
        srv = CellarServer(["--threads", "2", "--tls-self-signed"]).start()
        try:
            srv.create_cache("tls")
            ctx = ssl.create_default_context(
                cafile=os.path.join(srv.data_dir, "tls", "cert.pem"))
            ctx.check_hostname = False
            raw = socket.create_connection(("127.0.0.1", srv.resp_port), timeout=10)
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            fr = Frames(s)
            s.sendall(resp_encode("AUTH", "tls", srv.admin_key) + resp_encode("SUBSCRIBE", "t"))
            self.assertEqual(fr.frame(), b"+OK\r\n")
            fr.frame()
            time.sleep(1.5)  # idle: the subscriber's small TLS buffer
            pub = redis.Redis(host="127.0.0.1", port=srv.resp_port, username="tls",
                              password=srv.admin_key, socket_timeout=10)
            for i in range(3):
                self.assertEqual(pub.publish("t", "m%d" % i), 1)
            for i in range(3):
                self.assertEqual(fr.frame(), b"*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$2\r\nm%d\r\n" % i)
            s.sendall(resp_encode("PING", "x" * 5000))  # more than the idle buffer holds
            self.assertEqual(fr.frame(), b"*2\r\n$4\r\npong\r\n$5000\r\n" + b"x" * 5000 + b"\r\n")
            pub.close()
            s.close()
        finally:
            try:
                srv.stop()
            finally:
                srv.cleanup()


# The script compared with redis-server: (connection, command). Replies are read up to a
# PING marker, so every frame a command caused (pushes included) is compared.
DIFF_SCRIPT = [
    ("a", ["UNSUBSCRIBE"]), ("a", ["PUNSUBSCRIBE"]),
    ("a", ["SUBSCRIBE", "c1", "c2", "c1"]), ("a", ["PSUBSCRIBE", "c*", "d?"]),
    ("b", ["PUBLISH", "c2", "hello"]), ("a", None),
    ("b", ["PUBLISH", "d1", "x"]), ("b", ["PUBLISH", "zz", "y"]), ("a", None),
    ("a", ["PING"]), ("a", ["PING", "hi"]), ("a", ["GET", "x"]), ("a", ["SET", "a", "b"]),
    ("a", ["FOO"]), ("a", ["SUBSCRIBE"]), ("a", ["PSUBSCRIBE"]),
    ("a", ["UNSUBSCRIBE", "zz", "c1"]), ("a", ["PUNSUBSCRIBE", "d?"]),
    ("b", ["PUBSUB", "NUMSUB", "c1", "c2", "c3"]), ("b", ["PUBSUB", "NUMSUB"]),
    ("b", ["PUBSUB", "CHANNELS"]), ("b", ["PUBSUB", "CHANNELS", "c*"]),
    ("b", ["PUBSUB", "channels", "z*"]), ("b", ["PUBSUB", "NUMPAT"]), ("b", ["PUBSUB", "HELP"]),
    ("b", ["PUBSUB", "FOO"]), ("b", ["PUBSUB", "CHANNELS", "a", "b"]),
    ("b", ["PUBSUB", "NUMPAT", "x"]), ("b", ["PUBSUB", "HELP", "x"]), ("b", ["PUBSUB"]),
    ("b", ["PUBSUB", "SHARDCHANNELS"]), ("b", ["PUBSUB", "SHARDNUMSUB", "s1"]),
    ("b", ["PUBLISH", "c2"]), ("b", ["PUBLISH", "c2", "with\r\nbytes\x00"]), ("a", None),
    ("a", ["PUNSUBSCRIBE"]), ("a", ["UNSUBSCRIBE"]), ("a", ["UNSUBSCRIBE"]),
    ("a", ["GET", "x"]), ("a", ["PSUBSCRIBE", "p1", "p2", "p3"]), ("a", ["PUNSUBSCRIBE"]),
    ("a", ["SUBSCRIBE", "q"]), ("a", ["RESET"]), ("a", ["PING"]),
    ("a", ["SUBSCRIBE", "q"]), ("a", ["QUIT"]),
]


def run_diff_script(server, proto):
    """Runs DIFF_SCRIPT; returns [(step, bytes)] of every reply and push, exactly."""
    conns = {}
    for name in ("a", "b"):
        s = socket.create_connection(("127.0.0.1", server.resp_port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns[name] = (s, Frames(s))
        if proto == 3:
            s.sendall(resp_encode("HELLO", "3"))
            conns[name][1].frame()  # server and version differ: not compared
    out = []
    for step, (who, cmd) in enumerate(DIFF_SCRIPT):
        s, fr = conns[who]
        if cmd is None:
            time.sleep(0.3)  # let the other connection's publishes arrive
        else:
            s.sendall(resp_encode(*cmd))
        if cmd is not None and cmd[0] in ("QUIT",):
            out.append((step, fr.frame()))
            try:
                fr.frame(timeout=5)
                out.append((step, b"<not closed>"))
            except EOFError:
                out.append((step, b"<closed>"))
            continue
        marker = "end%d" % step
        s.sendall(resp_encode("PING", marker))
        subscribed_resp2 = b"*2\r\n$4\r\npong\r\n$%d\r\n%s\r\n" % (len(marker), marker.encode())
        plain = b"$%d\r\n%s\r\n" % (len(marker), marker.encode())
        got = b""
        deadline = time.monotonic() + 10
        while True:
            f = fr.frame(max(0.01, deadline - time.monotonic()))
            got += f
            if f in (plain, subscribed_resp2):
                break
        out.append((step, got))
    for s, _ in conns.values():
        s.close()
    return out


@unittest.skipIf(shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"),
                 "redis-server not installed")
class VsRedis(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer().start()
        cls.cellar = CellarServer(["--threads", "2"], dev_no_auth=True).start()

    @classmethod
    def tearDownClass(cls):
        for s in (cls.redis, cls.cellar):
            try:
                s.stop()
            finally:
                s.cleanup()

    def check(self, proto):
        want = run_diff_script(self.redis, proto)
        got = run_diff_script(self.cellar, proto)
        for (step, w), (_, g) in zip(want, got):
            self.assertEqual(g, w, "RESP%d step %d %r" % (proto, step, DIFF_SCRIPT[step]))
        self.assertEqual(len(got), len(want))

    def test_same_bytes_as_redis_resp2(self):
        self.check(2)

    def test_same_bytes_as_redis_resp3(self):
        self.check(3)


class Isolation(Base):
    def test_two_caches_do_not_see_each_others_channels(self):
        a, b = "iso_a", "iso_b"
        ra, rb = SERVER.client(a), SERVER.client(b)
        pa, pb = self.pubsub(a), self.pubsub(b)
        pa.subscribe("shared")
        pb.subscribe("shared", "only_b")
        pb.psubscribe("*")
        get_message(pa)
        for _ in range(3):
            get_message(pb)
        self.assertEqual(ra.publish("shared", "for a"), 1)
        self.assertEqual(rb.publish("shared", "for b"), 2)
        self.assertEqual(ra.publish("only_b", "lost"), 0)
        self.assertEqual(get_message(pa)["data"], b"for a")
        self.assertIsNone(pa.get_message(timeout=0.2))
        self.assertEqual(sorted(get_message(pb)["data"] for _ in range(2)), [b"for b", b"for b"])
        self.assertIsNone(pb.get_message(timeout=0.2))
        self.assertEqual(sorted(ra.pubsub_channels()), [b"shared"])
        self.assertEqual(sorted(rb.pubsub_channels()), [b"only_b", b"shared"])
        self.assertEqual(ra.pubsub_numsub("shared", "only_b"), [(b"shared", 1), (b"only_b", 0)])
        self.assertEqual((ra.pubsub_numpat(), rb.pubsub_numpat()), (0, 1))


class Permissions(Base):
    @classmethod
    def setUpClass(cls):
        SERVER.create_cache("perm", exist_ok=True)
        SERVER.create_cache("perm_other", exist_ok=True)

    def connect(self, token, cache="perm"):
        c = redis.Redis(host="127.0.0.1", port=SERVER.resp_port, username=cache, password=token,
                        socket_timeout=10)
        self.addCleanup(c.close)
        return c

    def test_publish_only_cannot_subscribe_and_subscribe_only_cannot_publish(self):
        po = self.connect(mint_topic_token(SERVER, [("po", "perm", None, None)]))
        so = self.connect(mint_topic_token(SERVER, [("so", "perm", None, None)]))
        p = so.pubsub()
        self.addCleanup(p.close)
        p.subscribe("t1")
        get_message(p)
        self.assertEqual(po.publish("t1", "from po"), 1)
        self.assertEqual(get_message(p)["data"], b"from po")
        with self.assertRaisesRegex(redis.ResponseError, "^this token has no permission to run 'publish'"):
            so.publish("t1", "x")
        pp = po.pubsub()
        self.addCleanup(pp.close)
        for sub in (lambda: pp.subscribe("t1"), lambda: pp.psubscribe("t*")):
            with self.assertRaisesRegex(redis.ResponseError, "^this token has no permission to run"):
                sub()
                get_message(pp)
        # Neither token reads or writes keys.
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            po.get("k")

    def test_topic_scoped_grants(self):
        tok = mint_topic_token(SERVER, [("ps", "perm", "exact", None), ("ps", "perm", None, "pre.")])
        c = self.connect(tok)
        s, fr = auth_raw(SERVER, "perm", tok)
        s.sendall(resp_encode("SUBSCRIBE", "exact", "pre.x") + resp_encode("PSUBSCRIBE", "pre.*"))
        self.assertEqual([fr.frame()[-4:] for _ in range(3)], [b":1\r\n", b":2\r\n", b":3\r\n"])
        for cmd in (("SUBSCRIBE", "other"), ("SUBSCRIBE", "exact", "other"), ("PSUBSCRIBE", "*"),
                    ("PSUBSCRIBE", "pre*"), ("PSUBSCRIBE", "exact*"), ("PSUBSCRIBE", "ex?ct")):
            s.sendall(resp_encode(*cmd))
            self.assertEqual(fr.frame(), b"-NOPERM this token has no permission to run '%s' on "
                             b"this channel\r\n" % cmd[0].lower().encode())
        # All-or-nothing: the refused SUBSCRIBE exact other subscribed to neither.
        s.sendall(resp_encode("PSUBSCRIBE", r"ex\act"))  # an escaped exact pattern: allowed
        self.assertEqual(fr.frame(), b"*3\r\n$10\r\npsubscribe\r\n$6\r\nex\\act\r\n:4\r\n")
        self.assertEqual(c.publish("pre.x", "v"), 2)
        self.assertEqual(c.publish("exact", "v"), 2)
        with self.assertRaisesRegex(redis.ResponseError, "no permission to run 'publish'"):
            c.publish("other", "v")
        # PUBSUB answers about granted channels only.
        admin = SERVER.client("perm")
        other = self.pubsub("perm")
        other.subscribe("secret")
        get_message(other)
        self.assertIn(b"secret", admin.pubsub_channels())
        self.assertNotIn(b"secret", c.pubsub_channels())
        self.assertEqual(sorted(c.pubsub_channels()), [b"exact", b"pre.x"])
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            c.pubsub_numsub("secret")
        s.close()

    def test_grant_for_another_cache_does_not_apply(self):
        tok = mint_topic_token(SERVER, [("ps", "perm_other", None, None)])
        c = self.connect(tok, cache="perm")
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            c.publish("t", "v")


def recv_all_until_closed(sock, timeout):
    """Everything the peer sends until it closes (or the deadline: then fail)."""
    sock.settimeout(0.5)
    data = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk
    raise AssertionError("connection still open after %ss" % timeout)


def parse_messages(data, channel):
    """Sequence numbers of whole `message` frames at the start of data, and what follows."""
    seqs, pos = [], 0
    head = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$" % (len(channel), channel)
    while data.startswith(head, pos):
        p = pos + len(head)
        nl = data.find(b"\r\n", p)
        if nl < 0:
            break
        n = int(data[p:nl])
        end = nl + 2 + n + 2
        if end > len(data):
            break
        seqs.append(int(data[nl + 2:nl + 2 + 8]))
        pos = end
    return seqs, data[pos:]


class SlowConsumer(unittest.TestCase):
    QUEUE = 256 * 1024

    @classmethod
    def setUpClass(cls):
        cls.s = CellarServer(["--threads", "2", "--topic-subscriber-queue", "256kb"],
                             dev_no_auth=True).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.s.stop()
        finally:
            cls.s.cleanup()

    def slow_socket(self, channel):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", self.s.resp_port))
        s.sendall(resp_encode("SUBSCRIBE", channel))
        self.assertEqual(Frames(s).frame(), b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n"
                         % (len(channel), channel.encode()))
        return s

    def publish_until(self, channel, size, count, stop=None, time_limit=60):
        """Publishes count messages of size bytes (8-digit sequence first), pipelined in
        batches; stop(receivers) may end it early. Returns (published, receivers, seconds)."""
        pub = socket.create_connection(("127.0.0.1", self.s.resp_port), timeout=30)
        pfr = Frames(pub)
        filler = b"p" * (size - 8)
        batch = 64
        started = time.monotonic()
        receivers = []
        sent = 0
        try:
            while sent < count:
                n = min(batch, count - sent)
                pub.sendall(b"".join(resp_encode("PUBLISH", channel, b"%08d" % i + filler)
                                     for i in range(sent, sent + n)))
                for _ in range(n):
                    f = pfr.frame(timeout=30)
                    self.assertTrue(f.startswith(b":"), f)
                sent += n
                receivers.append(int(f[1:-2]))
                self.assertLess(time.monotonic() - started, time_limit, "the publisher was held up")
                if stop is not None and stop(receivers[-1]):
                    break
        finally:
            pub.close()
        return sent, receivers, time.monotonic() - started

    def test_a_reader_that_does_not_keep_up_is_cut_off_others_are_not_slowed(self):
        ch = b"firehose"
        late = self.slow_socket("firehose")  # reads only once it has been cut off
        # A normal subscriber reading as fast as it can, on its own thread.
        good = socket.create_connection(("127.0.0.1", self.s.resp_port), timeout=10)
        good.sendall(resp_encode("SUBSCRIBE", "firehose"))
        Frames(good).frame()
        received = bytearray()
        stop = threading.Event()

        def reader():
            good.settimeout(0.2)
            while not stop.is_set():
                try:
                    chunk = good.recv(1 << 20)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                received.extend(chunk)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        size, total = 16 * 1024, 50 * 1024 * 1024
        count = total // size
        # First until the slow one is cut off (PUBLISH counts one receiver less) ...
        sent, receivers, t1 = self.publish_until(ch, size, count, stop=lambda r: r < 2)
        self.assertEqual(receivers[0], 2)
        self.assertEqual(receivers[-1], 1, "the slow reader was never cut off")
        # ... then it reads: what was on its way, the error, the end.
        late_data, _ = recv_all_until_closed(late, 10)
        seqs, rest = parse_messages(late_data, ch)
        self.assertEqual(seqs, list(range(len(seqs))))
        self.assertTrue(rest.startswith(b"-ERR subscriber fell behind: more than %d bytes"
                                        % self.QUEUE), rest[:200])
        self.assertIn(b"could not keep up", rest)
        self.assertTrue(rest.endswith(b"\r\n") and rest.count(b"\r\n") == 1, rest[:300])
        status, metrics = self.s.admin("GET", "/metrics")
        cutoffs = [l for l in metrics.splitlines() if l.startswith("cellar_topic_slow_subscribers_total")]
        self.assertTrue(cutoffs and int(cutoffs[0].split()[-1]) >= 1, cutoffs)
        # The rest of the 50 MiB.
        filler = b"p" * (size - 8)
        pub = socket.create_connection(("127.0.0.1", self.s.resp_port), timeout=30)
        pfr = Frames(pub)
        started = time.monotonic()
        for first in range(sent, count, 64):
            n = min(64, count - first)
            pub.sendall(b"".join(resp_encode("PUBLISH", ch, b"%08d" % i + filler)
                                 for i in range(first, first + n)))
            for _ in range(n):
                self.assertEqual(pfr.frame(timeout=30), b":1\r\n")
        elapsed = t1 + time.monotonic() - started
        pub.close()
        # The normal subscriber gets every message, in order.
        frame_bytes = len(b"*3\r\n$7\r\nmessage\r\n$8\r\nfirehose\r\n$16384\r\n") + size + 2
        wait_until(lambda: len(received) >= count * frame_bytes, timeout=60, interval=0.1,
                   what="the normal subscriber to receive everything")
        stop.set()
        t.join(5)
        seqs, rest = parse_messages(bytes(received), ch)
        self.assertEqual(seqs, list(range(count)))
        self.assertEqual(rest, b"")
        print("\n  slow consumer: published %d MiB in %.1fs (%.0f MiB/s); the slow one got %d "
              "messages" % (total >> 20, elapsed, (total >> 20) / elapsed, len(parse_messages(late_data, ch)[0])))
        good.close()
        late.close()

    def test_a_reader_that_never_reads_is_closed(self):
        ch = b"neverread"
        never = self.slow_socket("neverread")
        sent, receivers, _ = self.publish_until(ch, 16 * 1024, 40 * 1024 * 1024 // (16 * 1024),
                                                stop=lambda r: r == 0)
        self.assertEqual(receivers[-1], 0, "the reader that never reads was never cut off")
        # It is closed within the grace period even though it reads nothing.
        time.sleep(3)
        data, _ = recv_all_until_closed(never, 30)
        seqs, rest = parse_messages(data, ch)
        self.assertEqual(seqs, list(range(len(seqs))))
        self.assertLess(len(seqs), sent)
        # Then the error, if its last write went through within the grace period; else the
        # start of the message that was being written when the server closed it.
        head = b"*3\r\n$7\r\nmessage\r\n$9\r\nneverread\r\n$16384\r\n%08d" % len(seqs)
        self.assertTrue(rest.startswith(b"-ERR subscriber fell behind") or
                        head.startswith(rest[:len(head)]), rest[:200])
        admin = redis.Redis(host="127.0.0.1", port=self.s.resp_port, socket_timeout=10)
        self.assertEqual(admin.pubsub_numsub("neverread"), [(b"neverread", 0)])
        admin.close()
        never.close()


class Lifecycle(unittest.TestCase):
    def test_cache_deletion_ends_subscriptions_with_an_error(self):
        SERVER.create_cache("doomed", exist_ok=True)
        s, fr = auth_raw(SERVER, "doomed")
        s.sendall(resp_encode("SUBSCRIBE", "x") + resp_encode("PSUBSCRIBE", "y*"))
        fr.frame()
        fr.frame()
        SERVER.delete_cache("doomed")
        ends = sorted(fr.frame(timeout=10) for _ in range(2))
        self.assertEqual(ends, [b"-ERR subscription ended: channel 'x': its cache was deleted\r\n",
                                b"-ERR subscription ended: pattern 'y*': its cache was deleted\r\n"])
        # Its count dropped: the connection is out of subscribe mode.
        s.sendall(resp_encode("PING"))
        self.assertEqual(fr.frame(), b"+PONG\r\n")
        s.close()

    def test_server_stop_tells_subscribers_and_closes(self):
        srv = CellarServer(["--threads", "2"], dev_no_auth=True).start()
        try:
            socks = []
            for i in range(10):
                s = srv.raw()
                s.sendall(resp_encode("SUBSCRIBE", "bye%d" % (i % 3)))
                Frames(s).frame()
                socks.append(s)
            srv.stop()  # SIGTERM; asserts a clean exit (0)
            for s in socks:
                data, _ = recv_all_until_closed(s, 10)
                self.assertTrue(data.startswith(b"-ERR subscription ended: channel 'bye") and
                                data.endswith(b"the server is shutting down\r\n"), data)
        finally:
            srv.cleanup()


@unittest.skipIf(shutil.which("redis-cli") is None, "redis-cli not installed")
class RedisCli(unittest.TestCase):
    def test_redis_cli_subscriber_gets_a_redis_cli_publish(self):
        SERVER.create_cache("cli", exist_ok=True)
        base = ["redis-cli", "-p", str(SERVER.resp_port), "--user", "cli", "--pass",
                SERVER.admin_key, "--no-auth-warning"]
        sub = subprocess.Popen(base + ["subscribe", "clichan"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        try:
            lines = []
            deadline = time.monotonic() + 10

            def read_lines(n):
                while len(lines) < n:
                    if time.monotonic() > deadline:
                        raise AssertionError("redis-cli printed only %r" % lines)
                    line = sub.stdout.readline()
                    if not line:
                        raise AssertionError("redis-cli ended: %r" % lines)
                    lines.append(line.decode().rstrip("\n"))

            read_lines(3)
            self.assertEqual(lines[:3], ["subscribe", "clichan", "1"])
            out = subprocess.run(base + ["publish", "clichan", "hello from cli"],
                                 capture_output=True, timeout=10)
            self.assertEqual(out.stdout.strip(), b"1")
            read_lines(6)
            self.assertEqual(lines[3:6], ["message", "clichan", "hello from cli"])
        finally:
            sub.kill()
            sub.wait(5)


@unittest.skipIf(os.environ.get("CELLAR_SANITIZER"), "RSS is meaningless under sanitizers")
class Memory(unittest.TestCase):
    def test_idle_subscribed_connection_costs_well_under_10_kib(self):
        srv = CellarServer(["--threads", "2"], dev_no_auth=True).start()
        socks = []
        try:
            # Warm-up: first-use allocations of every path (not per connection).
            for i in range(20):
                s = srv.raw()
                s.sendall(resp_encode("SUBSCRIBE", "warm%d" % i))
                Frames(s).frame()
                socks.append(s)
            time.sleep(1)
            before = rss_bytes(srv.pid)
            n = 2000
            fresh = []
            for i in range(n):
                s = srv.raw()
                s.sendall(resp_encode("SUBSCRIBE", "mem%d" % (i % 100)))
                fresh.append(s)
            for s in fresh:
                self.assertTrue(Frames(s).frame().startswith(b"*3\r\n$9\r\nsubscribe"))
            socks += fresh
            time.sleep(2.5)  # a sweep or two: every connection idle
            per = (rss_bytes(srv.pid) - before) / n
            print("\n  idle subscribed RESP connection: %.0f bytes of server RSS each" % per)
            self.assertLess(per, 6 * 1024)
            # They still work.
            pub = redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=10)
            self.assertEqual(pub.publish("mem7", "v"), n // 100)
            pub.close()
        finally:
            for s in socks:
                s.close()
            try:
                srv.stop()
            finally:
                srv.cleanup()


if __name__ == "__main__":
    unittest.main()
