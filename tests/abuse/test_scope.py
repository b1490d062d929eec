"""Abuse suite, token scope (issue 15 F6): a token scoped to keys never reaches the rest of
the cache. Keyless commands (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHDB, INFO) need a grant on the
whole cache, and an empty key or prefix is not a selector at all: it is refused at minting.

Run: cd tests/abuse && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_scope
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
import unittest
import urllib.parse

import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import CellarServer, signing_keys, stop_server  # noqa: E402

SERVER = None
ADMIN = None  # a redis-py client of the tenant's super-user token on cache "vault"


def setUpModule():
    global SERVER, ADMIN
    SERVER = CellarServer(["--threads", "2"]).start()
    token = SERVER.tenant_with_cache("t_scope", "vault")
    ADMIN = connect("vault", token)


def tearDownModule():
    stop_server(SERVER)


def mint_status(**params):
    query = urllib.parse.urlencode(dict(tenant="t_scope", **params))
    return SERVER.admin("POST", "/v1/tokens?" + query)


def mint(**params):
    status, body = mint_status(**params)
    if status != 201:
        raise AssertionError(f"minting failed: {status} {body}")
    return body["token"]


def connect(cache, token):
    return SERVER.authed(cache, token)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(grants):
    """A token signed with the server's own signing key, as an older Cellar (which accepted
    an empty key selector) would have minted it: {"c": [grant...]} in the "p" claim."""
    kid, secret, _ = signing_keys(SERVER.data_dir)[0]
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    payload = {"tn": "t_scope", "jti": "", "k": "api", "iat": int(time.time()), "n": "x",
               "p": {"c": grants, "t": []}}
    enc = lambda o: b64url(json.dumps(o, separators=(",", ":"), sort_keys=True).encode())
    signing_input = enc(header) + "." + enc(payload)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


KEYLESS = [
    ("KEYS", "*"), ("SCAN", "0"), ("SCAN", "0", "MATCH", "*", "COUNT", "1000"), ("DBSIZE",),
    ("RANDOMKEY",), ("FLUSHDB",), ("INFO", "keyspace"),
]


class ScopeTest(unittest.TestCase):
    def setUp(self):
        # Every test starts from the same 20 keys (a failing one may have flushed them).
        ADMIN.flushdb()
        for i in range(20):
            ADMIN.set(f"k{i}", f"v{i}")


class EmptySelectors(ScopeTest):
    def test_empty_key_or_prefix_is_refused_at_minting(self):
        for params in (dict(role="rw", cache="vault", key=""),
                       dict(role="ro", cache="vault", key=""),
                       dict(role="rw", cache="vault", key_prefix=""),
                       dict(topic_role="pubsub", cache="vault", topic=""),
                       dict(topic_role="subscribe", cache="vault", topic_prefix=""),
                       dict(role="rw", cache="")):
            status, body = mint_status(**params)
            self.assertEqual(status, 400, f"{params}: {status} {body}")
            self.assertIn("empty", str(body), params)
        self.assertEqual(ADMIN.dbsize(), 20)

    def test_a_token_with_an_empty_key_selector_is_refused(self):
        cache_b64 = base64.b64encode(b"vault").decode()
        # The forging is right: the same token with key "k1" authenticates and reads k1.
        ok = connect("vault", forge([{"r": "rw", "n": cache_b64, "k": "azE="}]))
        self.assertEqual(ok.get("k1"), b"v1")
        for grant in ({"r": "rw", "n": cache_b64, "k": ""}, {"r": "ro", "n": cache_b64, "k": ""},
                      {"r": "rw", "n": cache_b64, "kp": ""}):
            c = redis.Redis(host="127.0.0.1", port=SERVER.resp_port, socket_timeout=10)
            with self.assertRaises(redis.ResponseError, msg=str(grant)):
                c.execute_command("AUTH", "vault", forge([grant]))
                # Today's hole, had AUTH passed: the whole cache listed and flushed.
                c.keys("*")
                c.flushdb()
            c.close()
        self.assertEqual(ADMIN.dbsize(), 20)


class KeylessCommands(ScopeTest):
    def check_refused(self, client, what):
        for cmd in KEYLESS:
            with self.assertRaisesRegex(redis.ResponseError, "no permission",
                                        msg=f"{what}: {cmd}"):
                client.execute_command(*cmd)
        self.assertEqual(ADMIN.dbsize(), 20, f"{what}: the cache is intact")

    def test_key_scoped_tokens_cannot_list_count_or_flush(self):
        for role in ("rw", "ro", "wo"):
            self.check_refused(connect("vault", mint(role=role, cache="vault", key="k1")),
                               f"{role} key=k1")
            self.check_refused(connect("vault", mint(role=role, cache="vault", key_prefix="k")),
                               f"{role} key_prefix=k")

    def test_whole_cache_grants_still_list_and_count(self):
        ro = connect("vault", mint(role="ro", cache="vault"))
        self.assertEqual(ro.dbsize(), 20)
        self.assertEqual(len(ro.keys("*")), 20)
        self.assertIsNotNone(ro.randomkey())
        with self.assertRaisesRegex(redis.ResponseError, "no permission"):
            ro.flushdb()  # a write
        self.assertEqual(ADMIN.dbsize(), 20)


if __name__ == "__main__":
    unittest.main()
