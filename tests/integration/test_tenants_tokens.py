"""Tenants and tokens through RESP (redis-py) and the admin API: tenant isolation, token
roles and key scopes, expiry on a long-lived connection, signing-key revocation.

Run: cd tests/integration && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_tenants_tokens
"""

import socket
import time
import unittest
import urllib.parse

import redis

from harness import CellarServer, stop_server

SERVER = None


def setUpModule():
    global SERVER
    SERVER = CellarServer(["--threads", "2"]).start()


def tearDownModule():
    stop_server(SERVER)


def mint(tenant, **params):
    query = urllib.parse.urlencode(dict(tenant=tenant, **params))
    status, body = SERVER.admin("POST", "/v1/tokens?" + query)
    if status != 201:
        raise AssertionError(f"minting failed: {status} {body}")
    return body["token"]


def ensure_tenant(name):
    status, body = SERVER.admin("POST", "/v1/tenants/" + name)
    assert status in (201, 409), (status, body)


def ensure_cache(tenant, cache):
    status, body = SERVER.admin("PUT", f"/v1/caches/{cache}?tenant={tenant}")
    assert status in (201, 409), (status, body)


def connect(cache, token):
    c = redis.Redis(host="127.0.0.1", port=SERVER.resp_port, socket_timeout=10)
    c.execute_command("AUTH", cache, token)
    return c


class Tenants(unittest.TestCase):
    def test_two_tenants_same_cache_name_never_meet(self):
        ensure_tenant("t_iso_a")
        ensure_tenant("t_iso_b")
        ensure_cache("t_iso_a", "sessions")
        ensure_cache("t_iso_b", "sessions")
        a = connect("sessions", mint("t_iso_a", super_user=1))
        b = connect("sessions", mint("t_iso_b", super_user=1))
        a.set("user:1", "alice")
        b.set("user:1", "bob")
        self.assertEqual(a.get("user:1"), b"alice")
        self.assertEqual(b.get("user:1"), b"bob")
        self.assertEqual(a.dbsize(), 1)
        self.assertEqual(sorted(a.keys("*")), [b"user:1"])
        b.flushdb()
        self.assertEqual(a.get("user:1"), b"alice")
        # The admin key belongs to tenant `default`: no cache "sessions" there unless made.
        status, caches = SERVER.admin("GET", "/v1/caches?tenant=t_iso_a")
        self.assertEqual((status, [c["name"] for c in caches["caches"]]), (200, ["sessions"]))

    def test_a_token_reaches_only_its_tenants_caches(self):
        ensure_tenant("t_only")
        ensure_cache("t_only", "mine")
        ensure_cache("default", "theirs")
        token = mint("t_only", super_user=1)
        with self.assertRaisesRegex(redis.ResponseError, "cache not found"):
            connect("theirs", token)
        self.assertEqual(connect("mine", token).ping(), True)

    def test_unknown_tenant_is_refused_when_minting(self):
        status, _ = SERVER.admin("POST", "/v1/tokens?tenant=nobody&super_user=1")
        self.assertEqual(status, 404)


class Roles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_tenant("t_roles")
        ensure_cache("t_roles", "farm")
        cls.admin = connect("farm", mint("t_roles", super_user=1))
        cls.admin.set("cow", "moo")
        cls.admin.set("petunia", "flower")
        cls.admin.set("horse", "neigh")

    def test_read_only(self):
        ro = connect("farm", mint("t_roles", role="ro", cache="farm"))
        self.assertEqual(ro.get("cow"), b"moo")
        self.assertEqual(ro.mget("cow", "horse"), [b"moo", b"neigh"])
        self.assertGreaterEqual(ro.dbsize(), 3)  # other tests add keys too
        for cmd in (("SET", "cow", "x"), ("DEL", "cow"), ("INCR", "n"), ("EXPIRE", "cow", "10"),
                    ("FLUSHDB",)):
            with self.assertRaisesRegex(redis.ResponseError, "^this token has no permission"):
                ro.execute_command(*cmd)
        self.assertEqual(self.admin.get("cow"), b"moo")

    def test_write_only_blind_writes_only(self):
        wo = connect("farm", mint("t_roles", role="wo", cache="farm"))
        self.assertTrue(wo.set("wo:new", "v"))
        self.assertTrue(wo.mset({"wo:a": "1", "wo:b": "2"}))
        for cmd in (("GET", "cow"), ("SET", "wo:new", "v", "NX"), ("SET", "wo:new", "v", "GET"),
                    ("INCR", "wo:n"), ("GETDEL", "cow"), ("EXISTS", "cow")):
            with self.assertRaisesRegex(redis.ResponseError, "^this token has no permission"):
                wo.execute_command(*cmd)
        self.assertEqual(self.admin.get("wo:new"), b"v")

    def test_topic_grants_minted_by_the_admin_api(self):
        # Subscribe-only on topics starting with "news." of farm; no cache grant at all.
        # Pub/sub opens its own connections: they AUTH with the client's credentials.
        sub = redis.Redis(host="127.0.0.1", port=SERVER.resp_port, socket_timeout=10,
                          username="farm",
                          password=mint("t_roles", topic_role="subscribe", cache="farm",
                                        topic_prefix="news."))
        p = sub.pubsub()
        p.subscribe("news.cows")
        self.assertEqual(p.get_message(timeout=5)["type"], "subscribe")
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            sub.publish("news.cows", "x")
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            sub.get("cow")
        other = sub.pubsub()
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            other.subscribe("gossip")
            other.get_message(timeout=5)
        # Publish-only plus read-only on the cache, in one token.
        pub = connect("farm", mint("t_roles", role="ro", topic_role="publish", cache="farm"))
        self.assertEqual(pub.get("cow"), b"moo")
        self.assertEqual(pub.publish("news.cows", "moo"), 1)
        msg = p.get_message(timeout=5)
        self.assertEqual((msg["channel"], msg["data"]), (b"news.cows", b"moo"))
        status, body = SERVER.admin("POST", "/v1/tokens?tenant=t_roles&topic_role=shout")
        self.assertEqual(status, 400, body)
        status, body = SERVER.admin("POST", "/v1/tokens?tenant=t_roles&cache=farm")
        self.assertEqual(status, 400, body)
        p.close()
        other.close()

    def test_subscription_ends_when_the_token_expires(self):
        token = mint("t_roles", topic_role="subscribe", cache="farm", expires_in=2)
        with socket.create_connection(("127.0.0.1", SERVER.resp_port), timeout=10) as s:
            s.sendall(b"AUTH farm " + token.encode() + b"\r\nSUBSCRIBE news.x\r\n")
            got = b""
            deadline = time.monotonic() + 10  # expiry (2 s) + one heartbeat tick (3 s) + slack
            while b"subscription ended" not in got and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            self.assertIn(b"+OK\r\n*3\r\n$9\r\nsubscribe\r\n$6\r\nnews.x\r\n:1\r\n", got)
            self.assertIn(b"subscription ended: channel 'news.x': token expired", got)

    def test_key_and_prefix_scopes(self):
        key_tok = connect("farm", mint("t_roles", role="rw", cache="farm", key="cow"))
        self.assertEqual(key_tok.get("cow"), b"moo")
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            key_tok.get("horse")
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            key_tok.mget("cow", "horse")  # one key outside the grant refuses the command
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            key_tok.keys("*")  # listing needs a grant on every key
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            key_tok.dbsize()
        pre = connect("farm", mint("t_roles", role="rw", cache="farm", key_prefix="pet"))
        self.assertEqual(pre.get("petunia"), b"flower")
        pre.set("pet:1", "dog")
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            pre.set("cow", "x")
        # A refused command in a pipeline does not stop the others.
        p = pre.pipeline(transaction=False)
        p.get("petunia")
        p.get("cow")
        p.get("pet:1")
        out = p.execute(raise_on_error=False)
        self.assertEqual(out[0], b"flower")
        self.assertIsInstance(out[1], redis.ResponseError)
        self.assertEqual(out[2], b"dog")

    def test_collections_under_key_scopes_and_roles(self):
        pre = connect("farm", mint("t_roles", role="rw", cache="farm", key_prefix="pet"))
        self.assertEqual(pre.sadd("pets:a", "cat", "dog"), 2)
        self.assertEqual(pre.hset("pets:h", "name", "rex"), 1)
        self.assertEqual(pre.sunionstore("pets:u", ["pets:a"]), 2)
        self.admin.sadd("barn", "hay")
        # A STORE whose destination or any source lies outside the grant is refused whole,
        # and nothing is written.
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            pre.sunionstore("barn", ["pets:a"])
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            pre.sunionstore("pets:v", ["pets:a", "barn"])
        self.assertEqual(self.admin.smembers("barn"), {b"hay"})
        self.assertEqual(self.admin.exists("pets:v"), 0)
        self.admin.rpush("pets:l", "x")
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            pre.lmove("pets:l", "barnlist", "LEFT", "RIGHT")
        self.assertEqual(self.admin.lrange("pets:l", 0, -1), [b"x"])  # not popped
        ro = connect("farm", mint("t_roles", role="ro", cache="farm"))
        self.assertEqual(ro.smembers("pets:a"), {b"cat", b"dog"})
        self.assertEqual(ro.hget("pets:h", "name"), b"rex")
        for cmd in (("SADD", "pets:a", "x"), ("HSET", "pets:h", "f", "v"), ("LPOP", "pets:l"),
                    ("ZADD", "pets:z", "1", "m"), ("SPOP", "pets:a")):
            with self.assertRaisesRegex(redis.ResponseError, "^this token has no permission"):
                ro.execute_command(*cmd)

    def test_cache_scope(self):
        ensure_cache("t_roles", "other")
        tok = mint("t_roles", role="rw", cache="farm")
        c = connect("other", tok)  # AUTH binds; every command is then refused
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            c.get("x")


class InfoScope(unittest.TestCase):
    def test_a_tenant_sees_its_cache_in_info_and_the_operator_the_process(self):
        ensure_tenant("t_info")
        ensure_cache("t_info", "mine")
        ensure_cache("default", "busy")
        op = connect("busy", SERVER.admin_key)
        for i in range(300):
            op.set(f"k{i}", "x" * 1000)
            op.get(f"k{i}")
        tenant = connect("mine", mint("t_info", super_user=1))
        tenant.set("only", "v")
        mine = tenant.info("all")
        self.assertEqual(mine["cache_used_memory"], mine["used_memory"])
        self.assertLess(mine["used_memory"], 300 * 1000)  # not the other tenant's 300 KB
        self.assertEqual(mine["db0"]["keys"], 1)
        for hidden in ("process_id", "total_commands_processed", "keyspace_hits",
                       "connected_clients", "used_memory_rss", "maxmemory"):
            self.assertNotIn(hidden, mine)
        whole = op.info("all")
        self.assertGreaterEqual(whole["keyspace_hits"], 300)
        self.assertGreaterEqual(whole["used_memory"], 300 * 1000)
        self.assertIn("process_id", whole)


class Lifetimes(unittest.TestCase):
    def test_expired_token_refused_at_auth_and_on_a_live_connection(self):
        ensure_tenant("t_life")
        ensure_cache("t_life", "c")
        tok = mint("t_life", role="rw", cache="c", expires_in=2)
        c = connect("c", tok)
        c.set("k", "v")
        time.sleep(2.2)
        # NOAUTH, which redis-py raises as AuthenticationError.
        with self.assertRaisesRegex(redis.AuthenticationError, "token expired"):
            c.get("k")
        with self.assertRaisesRegex(redis.AuthenticationError, "Authentication required"):
            c.get("k")  # unbound now
        with self.assertRaisesRegex(redis.ResponseError, "WRONGPASS token expired"):
            connect("c", tok)

    def test_a_lifetime_past_what_a_token_can_hold_is_refused_not_wrapped(self):
        ensure_tenant("t_life")
        ensure_cache("t_life", "c")
        for secs in ("9223372036854775807", "4294967296", "0", "-1", "x"):
            status, body = SERVER.admin(
                "POST", "/v1/tokens?" + urllib.parse.urlencode(
                    dict(tenant="t_life", role="rw", cache="c", expires_in=secs)))
            self.assertEqual(status, 400, (secs, body))
            self.assertIn("expires_in must be", str(body))
        status, body = SERVER.admin("POST", "/v1/tokens?" + urllib.parse.urlencode(
            dict(tenant="t_life", role="rw", cache="c", expires_in="4294967295")))
        self.assertEqual(status, 201, body)
        self.assertGreater(body["expires_at"], time.time() + 4294967295 - 60)
        connect("c", body["token"]).set("k", "v")  # a working token

    def test_revoked_signing_key_stops_its_tokens_at_once(self):
        ensure_tenant("t_rev")
        ensure_cache("t_rev", "c")
        old = mint("t_rev", super_user=1)
        live = connect("c", old)
        live.set("k", "v")
        status, body = SERVER.admin("POST", "/v1/signing-keys/rotate")
        self.assertEqual(status, 200)
        new = mint("t_rev", super_user=1)
        self.assertEqual(live.get("k"), b"v")  # rotation alone keeps old tokens working
        status, keys = SERVER.admin("GET", "/v1/signing-keys")
        old_ids = [k["id"] for k in keys["keys"] if k["id"] != body["id"] and not k["revoked"]]
        for kid in old_ids:
            self.assertEqual(SERVER.admin("POST", f"/v1/signing-keys/{kid}/revoke")[0], 200)
        with self.assertRaisesRegex(redis.AuthenticationError, "revoked"):
            live.get("k")
        with self.assertRaisesRegex(redis.ResponseError, "WRONGPASS"):
            connect("c", old)
        self.assertEqual(connect("c", new).get("k"), b"v")
        self.assertEqual(SERVER.admin("POST", "/v1/signing-keys/knope/revoke")[0], 404)

    def test_garbage_tokens_get_a_clear_error_without_the_secret(self):
        ensure_cache("default", "g")
        for bad in ("x", "a.b.c", "e30.e30.e30", "not-a-token-at-all-but-long-enough"):
            with self.assertRaises(redis.ResponseError) as cm:
                connect("g", bad)
            self.assertTrue(str(cm.exception).startswith("WRONGPASS"), str(cm.exception))
            if len(bad) > 8:
                self.assertNotIn(bad, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
