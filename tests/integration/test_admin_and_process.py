"""The admin HTTP API, /metrics, and the process contract of `cellar serve`
(ports.json, admin.key, config file, flags, refusals), through real clients:
urllib for HTTP, redis-py for RESP.

Run: CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_admin_and_process
"""

import json
import os
import re
import stat
import subprocess
import tempfile
import unittest
import urllib.parse

import redis

from harness import (CellarServer, cellar_bin, recv_reply_line, recv_until_closed,
                     resp_encode)


def metric(text, name, labels=""):
    """Value of one sample line `name{labels} value` (labels exact, '' for none)."""
    want = name + ("{" + labels + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


class AdminApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = CellarServer(["--threads", "2"]).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.s.stop()
        finally:
            cls.s.cleanup()

    def test_cli_get_prints_a_newline_and_raw_the_exact_bytes(self):
        def cli(*args):
            p = self.s.run_cli(*args, text=False)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout
        cli("cache", "create", "cli_get")
        cli("set", "--cache", "cli_get", "k", "hello")
        self.assertEqual(cli("get", "--cache", "cli_get", "k"), b"hello\n")
        self.assertEqual(cli("get", "--cache", "cli_get", "--raw", "k"), b"hello")

    def test_healthz_needs_no_key(self):
        status, body = self.s.admin("GET", "/healthz", auth=False)
        self.assertEqual((status, body), (200, "ok\n"))

    def test_v1_needs_the_admin_key(self):
        self.assertEqual(self.s.admin("GET", "/v1/caches", auth=False)[0], 401)
        status, body = self.s.admin("GET", "/v1/caches", key="0" * 64)
        self.assertEqual(status, 403)
        self.assertIn("error", body)
        self.assertEqual(self.s.admin("PUT", "/v1/caches/x", key="nope")[0], 403)

    def test_create_list_flush_delete(self):
        status, body = self.s.admin("PUT", "/v1/caches/adm1")
        self.assertEqual((status, body), (201, {"name": "adm1"}))
        status, body = self.s.admin("PUT", "/v1/caches/adm1")
        self.assertEqual(status, 409)
        self.assertIn("exists", body["error"])
        c = self.s.client("adm1", create=False)
        for i in range(100):
            c.set(f"k{i}", "v" * 50)
        caches = {x["name"]: x for x in self.s.list_caches()}
        self.assertEqual(caches["adm1"]["items"], 100)
        self.assertGreater(caches["adm1"]["bytes"], 100 * 50)
        status, body = self.s.admin("POST", "/v1/caches/adm1/flush")
        self.assertEqual((status, body), (200, {"name": "adm1", "flushed": 100}))
        self.assertEqual(c.dbsize(), 0)
        self.assertEqual(self.s.admin("DELETE", "/v1/caches/adm1")[0], 200)
        self.assertNotIn("adm1", {x["name"] for x in self.s.list_caches()})
        self.assertEqual(self.s.admin("DELETE", "/v1/caches/adm1")[0], 404)
        self.assertEqual(self.s.admin("POST", "/v1/caches/adm1/flush")[0], 404)

    def test_cache_names_are_validated(self):
        for bad in ["has space", "x" * 256, "tab\there", "caf\u00e9"]:
            status, body = self.s.admin("PUT", "/v1/caches/" + urllib.parse.quote(bad, safe=""))
            self.assertEqual(status, 400, bad)
            self.assertIn("cache name", body["error"])
        # Every printable ASCII character but space is allowed, 255 bytes at most.
        odd = "a/b?c#d%e{f}\"g'h"
        self.assertEqual(self.s.admin("PUT", "/v1/caches/" + urllib.parse.quote(odd, safe=""))[0],
                         201)
        self.assertIn(odd, {x["name"] for x in self.s.list_caches()})
        self.assertEqual(self.s.admin("PUT", "/v1/caches/" + "y" * 255)[0], 201)

    def test_deleting_a_cache_ends_its_use_on_bound_connections(self):
        self.s.create_cache("adm_del")
        c = self.s.client("adm_del", create=False)
        c.set("a", "1")
        self.s.delete_cache("adm_del")
        with self.assertRaises(redis.ResponseError) as e:
            c.get("a")
        self.assertIn("cache not found", str(e.exception))
        # Multi-key replies stay well framed when the cache is gone (error, not a half array).
        self.s.create_cache("adm_del")
        sock = self.s.raw()
        sock.sendall(resp_encode("AUTH", "adm_del", self.s.admin_key))
        self.assertEqual(recv_reply_line(sock), b"+OK\r\n")
        self.s.delete_cache("adm_del")
        sock.sendall(resp_encode("MGET", "a", "b", "c") + resp_encode("PING"))
        self.assertEqual(recv_reply_line(sock), b"-ERR cache not found\r\n")
        self.assertEqual(recv_reply_line(sock), b"+PONG\r\n")
        sock.close()
        # A new cache with the same name is a new, empty namespace.
        self.s.create_cache("adm_del")
        c2 = self.s.client("adm_del", create=False)
        self.assertIsNone(c2.get("a"))

    def test_unauthenticated_clients_cannot_send_large_commands(self):
        with self.s.raw() as sock:
            sock.sendall(b"*1\r\n$16777216\r\n")  # announces 16 MiB, sends nothing more
            self.assertIn(b"Protocol error", recv_reply_line(sock))
            self.assertEqual(recv_until_closed(sock), (b"", True))
        with self.s.raw() as sock:
            sock.sendall(resp_encode(*(["ECHO"] * 40)))
            self.assertIn(b"Protocol error", recv_reply_line(sock))
        # After AUTH the normal limits apply.
        c = self.s.client("adm_big")
        self.assertTrue(c.set("big", b"x" * (1 << 20)))
        self.assertEqual(len(c.get("big")), 1 << 20)

    def test_msetnx_and_setrange_edges(self):
        c = self.s.client("adm_edge")
        self.assertEqual(c.execute_command("SETRANGE", "k", 999999999, ""), 0)
        self.assertTrue(c.msetnx({"n1": "1", "n2": "2"}))
        self.assertFalse(c.msetnx({"n2": "x", "n3": "3"}))
        self.assertIsNone(c.get("n3"))
        status, text = self.s.admin("GET", "/metrics", auth=False)
        self.assertEqual(metric(text, "cellar_commands_total", 'command="msetnx"'), 2)

    def test_metrics(self):
        self.s.create_cache("adm_m")
        c = self.s.client("adm_m", create=False)
        c.set("hit", "1")
        for _ in range(3):
            c.get("hit")
        for _ in range(2):
            c.get("miss")
        c.set("hit_not_int", "x")
        with self.assertRaises(redis.ResponseError):
            c.incr("hit_not_int")
        status, text = self.s.admin("GET", "/metrics", auth=False)
        self.assertEqual(status, 200)
        self.assertGreaterEqual(metric(text, "cellar_commands_total", 'command="get"'), 5)
        self.assertGreaterEqual(metric(text, "cellar_command_errors_total", 'command="incrby"'), 1)  # redis-py's incr() sends INCRBY
        self.assertEqual(metric(text, "cellar_cache_items", 'tenant="default",cache="adm_m"'), 2)
        self.assertEqual(metric(text, "cellar_cache_hits_total", 'tenant="default",cache="adm_m"'), 3)
        self.assertEqual(metric(text, "cellar_cache_misses_total", 'tenant="default",cache="adm_m"'), 2)
        self.assertGreaterEqual(metric(text, "cellar_cache_operations_total", 'tenant="default",cache="adm_m"'), 8)
        self.assertGreaterEqual(metric(text, "cellar_connections", 'protocol="resp"'), 1)
        self.assertGreater(metric(text, "cellar_memory_used_bytes"), 0)
        self.assertGreater(metric(text, "cellar_memory_limit_bytes"), 0)
        self.assertIsNotNone(metric(text, "cellar_evictions_total"))
        self.assertIsNotNone(metric(text, "cellar_expirations_total"))
        inf = metric(text, "cellar_command_latency_seconds_bucket", 'le="+Inf"')
        self.assertEqual(inf, metric(text, "cellar_command_latency_seconds_count"))
        self.assertGreaterEqual(inf, 8)
        # Every series has HELP and TYPE lines (Prometheus text format).
        for name in ["cellar_commands_total", "cellar_cache_items", "cellar_items"]:
            self.assertIn(f"# TYPE {name} ", text)
            self.assertIn(f"# HELP {name} ", text)

    def test_auth_refusals_are_counted(self):
        before = self.s.metric("cellar_auth_refusals_total", 'reason="invalid"')
        self.assertIsNotNone(before, "cellar_auth_refusals_total{reason=\"invalid\"} is exported")
        for token in ("not-a-key", "a.b.c"):
            with self.assertRaises(redis.ResponseError):
                self.s.authed("default", token)
        self.assertEqual(self.s.metric("cellar_auth_refusals_total", 'reason="invalid"'), before + 2)
        self.assertIsNotNone(self.s.metric("cellar_auth_refusals_total", 'reason="expired"'))

    def test_info_sections(self):
        c = self.s.client("adm_info")
        c.set("x", "y")
        info = c.info()
        for key in ["redis_version", "cellar_version", "connected_clients", "used_memory",
                    "maxmemory", "keyspace_hits", "total_commands_processed", "db0"]:
            self.assertIn(key, info)
        self.assertEqual(info["db0"]["keys"], 1)
        self.assertEqual(set(c.info("memory")) & {"connected_clients"}, set())
        self.assertEqual(c.config_get("maxmemory-policy"), {"maxmemory-policy": "allkeys-lru"})
        with self.assertRaises(redis.ResponseError):
            c.config_set("maxmemory", "1")


class ProcessContract(unittest.TestCase):
    def test_admin_key_file_and_ports_json(self):
        with CellarServer() as s:
            path = os.path.join(s.data_dir, "admin.key")
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            self.assertRegex(s.admin_key, r"^[0-9a-f]{64}$")
            self.assertIn(s.admin_key, s.log_tail(100000))  # printed once, on first start
            with open(os.path.join(s.data_dir, "ports.json")) as f:
                ports = json.load(f)
            self.assertEqual(ports["bind"], "127.0.0.1")
            self.assertEqual(ports["pid"], s.pid)
            for p in ("resp", "admin"):
                self.assertIsInstance(ports[p], int)
                self.assertGreater(ports[p], 0)
            log_before = len(s.log_tail(1 << 20))
            s.restart()
            # Same key after a restart, and not printed again.
            with open(path) as f:
                self.assertEqual(f.read().strip(), s.admin_key)
            self.assertNotIn(s.admin_key, s.log_tail(1 << 20)[log_before:])

    def test_config_file(self):
        d = tempfile.mkdtemp(prefix="cellar-cfg-")
        cfg = os.path.join(d, "cellar.toml")
        with open(cfg, "w") as f:
            f.write('memory-limit = "16mb"\nmax-item-size = "1kb"\nthreads = 1\n')
        with CellarServer(["--config", cfg]) as s:
            c = s.client("cfg")
            info = c.info("memory")
            self.assertEqual(info["maxmemory"], 16 << 20)
            with self.assertRaises(redis.ResponseError):
                c.set("big", "x" * 1025)
            self.assertTrue(c.set("ok", "x" * 1024))

    def run_serve(self, *args):
        d = tempfile.mkdtemp(prefix="cellar-flags-")
        return subprocess.run([cellar_bin(), "serve", "--data-dir", d, "--resp-port", "0",
                               "--admin-port", "0", *args],
                              capture_output=True, text=True, timeout=20)

    def test_refusals(self):
        r = self.run_serve("--bind", "0.0.0.0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("without TLS", r.stdout + r.stderr)
        r = self.run_serve("--bind", "0.0.0.0", "--dev-no-auth")
        self.assertEqual(r.returncode, 2)
        self.assertIn("loopback only", r.stdout + r.stderr)
        r = self.run_serve("--memory-limit", "lots")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--memory-limit", r.stderr)
        r = self.run_serve("--no-such-flag")
        self.assertNotEqual(r.returncode, 0)

    def test_port_in_use_is_a_clear_error(self):
        with CellarServer() as s:
            for flag, port in (("--admin-port", s.admin_port), ("--resp-port", s.resp_port)):
                # The RESP listeners use SO_REUSEPORT among their own loops; a second server
                # must still not be able to join the port of a running one.
                other = "--resp-port" if flag == "--admin-port" else "--admin-port"
                r = subprocess.run([cellar_bin(), "serve", "--data-dir", tempfile.mkdtemp(),
                                    other, "0", flag, str(port)],
                                   capture_output=True, text=True, timeout=20)
                self.assertEqual(r.returncode, 1, flag)
                self.assertIn(str(port), r.stderr)
                self.assertIn("in use", r.stderr)

    def test_dev_no_auth_uses_default_cache(self):
        with CellarServer(dev_no_auth=True) as s:
            c = redis.Redis(host=s.host, port=s.resp_port, socket_timeout=10)
            self.assertTrue(c.set("k", "v"))
            self.assertIn("default", {x["name"] for x in s.list_caches()})
            self.assertIn("DEVELOPMENT MODE", s.log_tail(100000))

    def test_noauth_without_dev_mode(self):
        with CellarServer() as s:
            c = redis.Redis(host=s.host, port=s.resp_port, socket_timeout=10)
            with self.assertRaises(redis.AuthenticationError):
                c.set("k", "v")


if __name__ == "__main__":
    unittest.main(verbosity=2)
