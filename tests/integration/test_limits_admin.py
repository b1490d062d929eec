"""Limits, stats, metrics and usage through the admin API and the CLI: tenant and cache limits
(set, shown with their sources, refused when wrong, kept across a restart), per-cache and
per-tenant /metrics with the cardinality cap, `cellar stats`, and per-minute usage (API, CLI,
usage.tsv).

Run: cd tests/integration && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_limits_admin
"""

import json
import os
import re
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import redis

from harness import CellarServer, stop_server

MAX_CACHES = 3
# A usage "minute" of 2 s (a testing flag), so closed minutes reach usage.tsv quickly.
SERVER_ARGS = ["--threads", "2", "--metrics-max-caches", str(MAX_CACHES),
               "--metrics-max-tenants", "2", "--usage-minute-seconds", "2"]
SERVER = None


def setUpModule():
    global SERVER
    SERVER = CellarServer(SERVER_ARGS).start()


def tearDownModule():
    stop_server(SERVER)


def q(s):
    return urllib.parse.quote(s, safe="")


def send(server, method, path, data=None, content_type="application/json"):
    """Admin request with a raw body (bytes or str). Returns (status, JSON or text)."""
    return server.admin(method, path, raw=data, content_type=content_type)


def cli(server, *args, timeout=30):
    """Runs the `cellar` CLI against the server; returns (exit code, stdout, stderr)."""
    p = server.run_cli(*args, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def ensure_tenant(server, name):
    status, body = server.admin("POST", "/v1/tenants/" + q(name))
    assert status in (201, 409), (status, body)


def ensure_cache(server, tenant, cache):
    status, body = server.admin("PUT", f"/v1/caches/{q(cache)}?tenant={q(tenant)}")
    assert status in (201, 409), (status, body)


def mint(server, tenant):
    status, body = server.admin("POST", f"/v1/tokens?tenant={q(tenant)}&super_user=1")
    assert status == 201, (status, body)
    return body["token"]


def metric_samples(text, name):
    """{labels string: value} of every sample of `name` (exactly that name)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'^' + re.escape(name) + r'(\{[^}]*\})? (\S+)$', line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


def metrics(server):
    status, text = server.admin("GET", "/metrics", auth=False)
    assert status == 200, status
    return text


def traffic(server, cache, n, value=b"v" * 100):
    r = server.client(cache)
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"k{i}", value)
        pipe.get(f"k{i}")
        pipe.get(f"missing{i}")
    pipe.execute()
    return r


class LimitsApi(unittest.TestCase):
    def test_the_table_lists_every_limit(self):
        status, body = SERVER.admin("GET", "/v1/limits")
        self.assertEqual(status, 200, body)
        names = {l["name"]: l for l in body["limits"]}
        for n in ["requests_per_second", "read_bytes_per_second", "write_bytes_per_second",
                  "max_item_bytes", "max_ttl_seconds", "max_element_bytes",
                  "publish_per_second", "max_subscriptions", "max_message_bytes",
                  "memory_share_bytes", "tenant_requests_per_second",
                  "tenant_read_bytes_per_second", "tenant_write_bytes_per_second",
                  "tenant_memory_share_bytes"]:
            self.assertIn(n, names)
            self.assertIn(names[n]["unit"], ("count", "bytes", "seconds"))
            self.assertTrue(names[n]["help"])
            self.assertEqual(body["server"][n], names[n]["default"])
        self.assertTrue(names["tenant_requests_per_second"]["tenant_only"])
        self.assertFalse(names["max_item_bytes"]["tenant_only"])
        # --max-item-size's default (4883 KiB) is the server default of max_item_bytes.
        self.assertEqual(names["max_item_bytes"]["default"], 4883 * 1024)

    def test_tenant_limits_merge_and_show_sources(self):
        ensure_tenant(SERVER, "lim_t")
        status, body = send(SERVER, "PUT", "/v1/tenants/lim_t/limits",
                            json.dumps({"requests_per_second": 500, "max_ttl_seconds": "1d"}))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["overrides"], {"requests_per_second": 500, "max_ttl_seconds": 86400})
        self.assertEqual(body["effective"]["requests_per_second"], 500)
        self.assertEqual(body["source"]["requests_per_second"], "tenant")
        self.assertEqual(body["source"]["max_item_bytes"], "server")
        self.assertEqual(body["human"]["max_ttl_seconds"], "1 d")
        # PATCH merges; the text form works too; "default" (or null) clears one override.
        status, body = send(SERVER, "PATCH", "/v1/tenants/lim_t/limits",
                            "tenant_requests_per_second=2000,max_ttl_seconds=default",
                            "text/plain")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["overrides"],
                         {"requests_per_second": 500, "tenant_requests_per_second": 2000})
        status, body = send(SERVER, "PATCH", "/v1/tenants/lim_t/limits",
                            json.dumps({"tenant_requests_per_second": None}))
        self.assertEqual(body["overrides"], {"requests_per_second": 500})
        status, got = SERVER.admin("GET", "/v1/tenants/lim_t/limits")
        self.assertEqual((status, got["overrides"]), (200, {"requests_per_second": 500}))

    def test_cache_limits_layer_over_the_tenant(self):
        ensure_tenant(SERVER, "lim_c")
        ensure_cache(SERVER, "lim_c", "sess")
        send(SERVER, "PATCH", "/v1/tenants/lim_c/limits",
             json.dumps({"requests_per_second": 700, "max_item_bytes": "1mib"}))
        status, body = send(SERVER, "PATCH", "/v1/caches/sess/limits?tenant=lim_c",
                            json.dumps({"max_item_bytes": "64kib"}))
        self.assertEqual(status, 200, body)
        status, body = SERVER.admin("GET", "/v1/caches/sess/limits?tenant=lim_c")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["cache"], "sess")
        self.assertEqual(body["tenant"], "lim_c")
        self.assertEqual(body["overrides"], {"max_item_bytes": 65536})
        self.assertEqual(body["effective"]["max_item_bytes"], 65536)
        self.assertEqual(body["source"]["max_item_bytes"], "cache")
        self.assertEqual(body["effective"]["requests_per_second"], 700)
        self.assertEqual(body["source"]["requests_per_second"], "tenant")
        self.assertEqual(body["source"]["publish_per_second"], "server")
        self.assertEqual(body["human"]["max_item_bytes"], "64 KiB")

    def test_errors_are_400_and_404_with_a_reason(self):
        SERVER.create_cache("lim_err", exist_ok=True)
        cases = [
            ('{"requests_per_minute": 5}', "unknown limit 'requests_per_minute'"),
            ('{"max_item_bytes": "lots"}', "bad value 'lots' for max_item_bytes"),
            ('{"max_item_bytes": -4}', "bad value"),
            ('{"tenant_requests_per_second": 5}', "tenant-wide"),
            ('{"max_item_bytes": 5', "bad JSON body"),
            ("max_item_bytes", "name=value"),
            ("", "empty body"),
        ]
        for data, want in cases:
            status, body = send(SERVER, "PATCH", "/v1/caches/lim_err/limits", data)
            self.assertEqual(status, 400, (data, body))
            self.assertIn(want, body["error"], data)
        status, body = SERVER.admin("GET", "/v1/caches/nope_nope/limits")
        self.assertEqual((status, body["error"]), (404, "cache not found"))
        status, body = SERVER.admin("GET", "/v1/tenants/nope_nope/limits")
        self.assertEqual((status, body["error"]), (404, "tenant not found"))
        status, body = send(SERVER, "PATCH", "/v1/caches/lim_err/limits?tenant=nope_nope",
                            "{}")
        self.assertEqual(status, 404)
        status, _ = SERVER.admin("GET", "/v1/caches/lim_err/limits", auth=False)
        self.assertEqual(status, 401)

    def test_a_cache_named_like_a_route_stays_a_cache(self):
        name = "odd/limits"
        SERVER.create_cache(name, exist_ok=True)
        status, body = SERVER.admin("GET", f"/v1/caches/{q(name)}/limits")
        self.assertEqual((status, body["cache"]), (200, name))


class LimitsCli(unittest.TestCase):
    def test_set_and_show(self):
        ensure_tenant(SERVER, "cli_t")
        ensure_cache(SERVER, "cli_t", "web")
        rc, out, err = cli(SERVER, "limits", "set", "--tenant", "cli_t",
                           "requests_per_second=500", "max_ttl_seconds=1d")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"requests_per_second\s+500\s+tenant")
        rc, out, err = cli(SERVER, "limits", "set", "--tenant", "cli_t", "--cache", "web",
                           "max_item_bytes=64kib")
        self.assertEqual(rc, 0, err)
        rc, out, err = cli(SERVER, "limits", "show", "--tenant", "cli_t", "--cache", "web")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"max_item_bytes\s+64 KiB\s+cache")
        self.assertRegex(out, r"requests_per_second\s+500\s+tenant")
        self.assertRegex(out, r"max_ttl_seconds\s+1 d\s+tenant")
        self.assertRegex(out, r"publish_per_second\s+\S+\s+server")

    def test_errors_and_help(self):
        SERVER.create_cache("cli_err", exist_ok=True)
        rc, out, err = cli(SERVER, "limits", "set", "--cache", "cli_err", "bogus=1")
        self.assertEqual(rc, 1)
        self.assertIn("unknown limit 'bogus'", err)
        rc, out, err = cli(SERVER, "limits", "set", "--cache", "cli_err", "max_item_bytes=lots")
        self.assertEqual(rc, 1)
        self.assertIn("bad value 'lots'", err)
        rc, out, err = cli(SERVER, "limits", "show", "--cache", "no_such_cache")
        self.assertEqual(rc, 1)
        self.assertIn("cache not found", err)
        rc, out, err = cli(SERVER, "limits", "--help")
        self.assertEqual(rc, 0)
        for n in ["requests_per_second", "max_ttl_seconds", "tenant_memory_share_bytes"]:
            self.assertIn(n, out)
        rc, out, err = cli(SERVER, "limits", "defaults")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"max_item_bytes\s+4883 KiB\s+cache")
        self.assertRegex(out, r"tenant_requests_per_second\s+unlimited\s+tenant")


class Restart(unittest.TestCase):
    def test_limits_and_usage_survive_a_restart(self):
        with CellarServer(["--threads", "1", "--usage-minute-seconds", "2"]) as s:
            ensure_tenant(s, "keep")
            ensure_cache(s, "keep", "c")
            send(s, "PATCH", "/v1/tenants/keep/limits", '{"requests_per_second": 321}')
            send(s, "PATCH", "/v1/caches/c/limits?tenant=keep", '{"max_item_bytes": "2kib"}')
            r = redis.Redis(host=s.host, port=s.resp_port, socket_timeout=10)
            r.execute_command("AUTH", "c", mint(s, "keep"))
            for i in range(20):
                r.set(f"k{i}", "v")
            r.close()
            s.restart()  # the minute in progress is written at shutdown
            status, body = s.admin("GET", "/v1/caches/c/limits?tenant=keep")
            self.assertEqual(status, 200, body)
            self.assertEqual(body["overrides"], {"max_item_bytes": 2048})
            self.assertEqual(body["effective"]["requests_per_second"], 321)
            self.assertEqual(body["source"]["requests_per_second"], "tenant")
            with open(os.path.join(s.data_dir, "usage.tsv")) as f:
                lines = [l.rstrip("\n").split("\t") for l in f if "\tkeep\tc\t" in l]
            self.assertEqual(sum(int(l[3]) for l in lines), 20, lines)
            # Read back at start: the API still reports those minutes.
            status, body = s.admin("GET", "/v1/usage?tenant=keep")
            self.assertEqual(status, 200, body)
            self.assertEqual(sum(u["requests"] for u in body["usage"]), 20, body)


class Metrics(unittest.TestCase):
    def test_per_cache_and_per_tenant_series(self):
        traffic(SERVER, "met_a", 40)
        text = metrics(SERVER)
        # The busiest caches are listed on their own: make met_a one of them.
        traffic(SERVER, "met_a", 400)
        text = metrics(SERVER)
        lab = '{tenant="default",cache="met_a"}'
        self.assertGreaterEqual(metric_samples(text, "cellar_cache_requests_total")[lab], 1320)
        self.assertGreaterEqual(metric_samples(text, "cellar_cache_operations_total")[lab], 1320)
        self.assertEqual(metric_samples(text, "cellar_cache_hits_total")[lab], 440)
        self.assertEqual(metric_samples(text, "cellar_cache_misses_total")[lab], 440)
        self.assertGreater(metric_samples(text, "cellar_cache_bytes_in_total")[lab], 400 * 100)
        self.assertGreater(metric_samples(text, "cellar_cache_bytes_out_total")[lab], 400 * 100)
        self.assertEqual(metric_samples(text, "cellar_cache_items")[lab], 400)
        self.assertGreater(metric_samples(text, "cellar_cache_bytes")[lab], 400 * 100)
        self.assertIn(lab, metric_samples(text, "cellar_cache_evictions_total"))
        count = metric_samples(text, "cellar_cache_latency_seconds_count")[lab]
        self.assertGreater(count, 0)
        buckets = metric_samples(text, "cellar_cache_latency_seconds_bucket")
        self.assertEqual(buckets['{tenant="default",cache="met_a",le="+Inf"}'], count)
        self.assertIn(lab, metric_samples(text, "cellar_cache_latency_seconds_sum"))
        self.assertIn("# TYPE cellar_cache_latency_seconds histogram", text)
        tenants = metric_samples(text, "cellar_tenant_requests_total")
        self.assertGreaterEqual(tenants['{tenant="default"}'], 1320)
        self.assertIn('{tenant="default"}', metric_samples(text, "cellar_tenant_latency_seconds_count"))
        self.assertIn('{tenant="default"}', metric_samples(text, "cellar_tenant_caches"))

    def test_the_cardinality_cap_folds_the_rest_into_other(self):
        for i in range(MAX_CACHES + 3):
            traffic(SERVER, f"card_{i}", 5 + i)
        text = metrics(SERVER)
        series = metric_samples(text, "cellar_cache_requests_total")
        caches = [k for k in series if 'cache="_other"' not in k]
        self.assertEqual(len(caches), MAX_CACHES, series)
        self.assertIn('{tenant="_other",cache="_other"}', series)
        self.assertGreater(series['{tenant="_other",cache="_other"}'], 0)
        self.assertGreaterEqual(metric_samples(text, "cellar_metrics_folded_caches")[""], 3)
        # Every cache counted once: the series sum to the tenants' totals.
        tenants = metric_samples(text, "cellar_tenant_requests_total")
        self.assertEqual(sum(series.values()), sum(tenants.values()))
        # Tenants are capped too (--metrics-max-tenants 2).
        for t in ("card_t1", "card_t2", "card_t3"):
            ensure_tenant(SERVER, t)
            ensure_cache(SERVER, t, "x")
        tenants = metric_samples(metrics(SERVER), "cellar_tenant_requests_total")
        self.assertEqual(len([k for k in tenants if "_other" not in k]), 2, tenants)
        self.assertIn('{tenant="_other"}', tenants)

    def test_throttles_are_counted_by_reason(self):
        SERVER.create_cache("met_throttle", exist_ok=True)
        send(SERVER, "PATCH", "/v1/caches/met_throttle/limits", "requests_per_second=5",
             "text/plain")
        r = SERVER.client("met_throttle")
        refused = 0
        for i in range(200):
            try:
                r.set(f"k{i}", "v")
            except redis.ResponseError:
                refused += 1
        self.assertGreater(refused, 0)
        text = metrics(SERVER)
        lab = '{tenant="default",cache="met_throttle",reason="request_rate"}'
        got = metric_samples(text, "cellar_cache_throttled_total").get(lab, 0)
        self.assertGreaterEqual(got, refused)
        status, body = SERVER.admin("GET", "/v1/stats?cache=met_throttle")
        self.assertEqual(body["caches"][0]["throttled"]["request_rate"], got)
        status, body = SERVER.admin("GET", "/v1/usage?tenant=default&cache=met_throttle")
        self.assertEqual(sum(u["throttled"] for u in body["usage"]), got)
        # Lifting the limit takes effect at once.
        send(SERVER, "PATCH", "/v1/caches/met_throttle/limits", '{"requests_per_second": null}')
        for i in range(200):
            r.set(f"k{i}", "v")


class Stats(unittest.TestCase):
    def test_stats_endpoint(self):
        traffic(SERVER, "st_api", 10)
        status, body = SERVER.admin("GET", "/v1/stats?tenant=default&cache=st_api")
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["caches"]), 1)
        c = body["caches"][0]
        self.assertEqual((c["tenant"], c["cache"]), ("default", "st_api"))
        self.assertEqual((c["hits"], c["misses"], c["items"]), (10, 10, 10))
        self.assertGreaterEqual(c["requests"], 30)
        self.assertEqual(len(c["latency"]), len(body["latency_bounds_us"]) + 1)
        self.assertEqual(sum(c["latency"]), c["latency_count"])
        status, body = SERVER.admin("GET", "/v1/stats")
        self.assertIn("st_api", [x["cache"] for x in body["caches"]])
        self.assertEqual(SERVER.admin("GET", "/v1/stats?cache=nope_nope")[0], 404)
        self.assertEqual(SERVER.admin("GET", "/v1/stats?tenant=nope_nope")[0], 404)

    def test_cli_stats_shows_the_cache(self):
        traffic(SERVER, "st_cli", 5)
        rc, out, err = cli(SERVER, "stats", "--cache", "st_cli", "--count", "2",
                           "--interval", "1")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.count("OPS/S"), 2, out)
        self.assertRegex(out, r"default\s+st_cli\s")
        for col in ("HIT%", "IN/S", "OUT/S", "ITEMS", "MEMORY", "P50", "P99", "THROTTLED/S"):
            self.assertIn(col, out)


class Usage(unittest.TestCase):
    def test_usage_shows_the_current_minute_then_the_file_gets_it(self):
        traffic(SERVER, "use_a", 25)
        status, body = SERVER.admin("GET", "/v1/usage?tenant=default&cache=use_a")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["minute_seconds"], 2)
        rows = body["usage"]
        self.assertTrue(rows, body)
        self.assertEqual(sum(r["requests"] for r in rows), 75)
        self.assertGreater(sum(r["bytes_in"] for r in rows), 25 * 100)
        self.assertGreater(sum(r["bytes_out"] for r in rows), 25 * 100)
        for r in rows:
            self.assertEqual((r["tenant"], r["cache"]), ("default", "use_a"))
            self.assertIn("partial", r)
        # A finished "minute" (2 s here) is appended to DATA_DIR/usage.tsv.
        path = os.path.join(SERVER.data_dir, "usage.tsv")
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    lines = [l.rstrip("\n").split("\t") for l in f if "\tdefault\tuse_a\t" in l]
                if sum(int(l[3]) for l in lines) == 75:
                    break
            time.sleep(0.2)
        self.assertEqual(sum(int(l[3]) for l in lines), 75, lines)
        for l in lines:
            self.assertEqual(len(l), 7)
            self.assertEqual(int(l[0]) % 2, 0)
        status, body = SERVER.admin("GET", "/v1/usage?tenant=default&cache=use_a")
        self.assertFalse(any(r["partial"] for r in body["usage"]))
        # from/to select minutes.
        first = min(int(l[0]) for l in lines)
        status, body = SERVER.admin("GET", f"/v1/usage?cache=use_a&from={first + 1000}")
        self.assertEqual(body["usage"], [])

    def test_cli_usage(self):
        traffic(SERVER, "use_cli", 3)
        rc, out, err = cli(SERVER, "usage", "--tenant", "default", "--cache", "use_cli")
        self.assertEqual(rc, 0, err)
        self.assertIn("MINUTE (UTC)", out)
        self.assertIn("BYTES OUT", out)
        # 9 requests, in one row or split over two 2-second "minutes".
        rows = re.findall(r"default\s+use_cli\s+(\d+)\s", out)
        self.assertEqual(sum(int(n) for n in rows), 9, out)
        rc, out, err = cli(SERVER, "usage", "--cache", "use_cli", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(sum(u["requests"] for u in doc["usage"]), 9)

    def test_bad_parameters(self):
        self.assertEqual(SERVER.admin("GET", "/v1/usage?from=yesterday")[0], 400)
        self.assertEqual(SERVER.admin("GET", "/v1/usage?tenant=nope_nope")[0], 404)
        self.assertEqual(SERVER.admin("POST", "/v1/usage")[0], 405)


if __name__ == "__main__":
    unittest.main()
