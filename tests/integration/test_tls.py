"""TLS on the RESP port (redis-py over ssl, and plaintext on the same port on loopback),
`--tls-self-signed`, and certificate reload on SIGHUP without dropping connections.

Run: cd tests/integration && CELLAR_BIN=... /usr/bin/python3 -m unittest -v test_tls
"""

import hashlib
import os
import signal
import socket
import ssl
import subprocess
import time
import unittest

import redis

from harness import CellarServer


def fingerprint(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = CellarServer(["--threads", "2", "--tls-self-signed"]).start()
        cls.cert = os.path.join(cls.s.data_dir, "tls", "cert.pem")
        cls.key = os.path.join(cls.s.data_dir, "tls", "key.pem")
        cls.s.create_cache("tls")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.s.stop()
        finally:
            cls.s.cleanup()

    def tls_client(self):
        c = redis.Redis(host="127.0.0.1", port=self.s.resp_port, ssl=True,
                        ssl_ca_certs=self.cert, ssl_check_hostname=False, socket_timeout=10)
        c.execute_command("AUTH", "tls", self.s.admin_key)
        return c

    def test_self_signed_files_and_modes(self):
        self.assertTrue(os.path.exists(self.cert))
        self.assertEqual(os.stat(self.key).st_mode & 0o777, 0o600)

    def test_tls_and_plaintext_on_the_same_port(self):
        t = self.tls_client()
        t.set("k", "over tls")
        p = redis.Redis(host="127.0.0.1", port=self.s.resp_port, socket_timeout=10)
        p.execute_command("AUTH", "tls", self.s.admin_key)
        self.assertEqual(p.get("k"), b"over tls")

    def test_a_client_that_does_not_trust_the_certificate_fails(self):
        c = redis.Redis(host="127.0.0.1", port=self.s.resp_port, ssl=True,
                        ssl_cert_reqs="required", ssl_ca_certs=None, socket_timeout=5)
        with self.assertRaises(redis.ConnectionError):
            c.ping()

    def test_sighup_reloads_the_certificate_without_dropping_connections(self):
        live = self.tls_client()
        live.set("before", "1")
        old = fingerprint(self.s.resp_port, self.cert)
        # A new certificate and key in place of the old ones, then SIGHUP.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.key, "-out",
                        self.cert, "-days", "1", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        self.s.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        new = old
        while new == old and time.monotonic() < deadline:
            time.sleep(0.05)
            new = fingerprint(self.s.resp_port, self.cert)
        self.assertNotEqual(new, old, "new connections still get the old certificate")
        self.assertEqual(live.get("before"), b"1")  # the old connection lives on
        self.assertEqual(self.tls_client().get("before"), b"1")

    def test_admin_port_speaks_https_and_plain_http_on_loopback(self):
        import urllib.request
        ctx = ssl.create_default_context(cafile=self.cert)
        url = f"https://localhost:{self.s.admin_port}/healthz"
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            self.assertEqual((r.status, r.read()), (200, b"ok\n"))
        self.assertEqual(self.s.admin("GET", "/healthz", auth=False), (200, "ok\n"))

    def test_a_bad_reload_keeps_the_old_certificate(self):
        good = fingerprint(self.s.resp_port, self.cert)
        with open(self.cert) as f:
            saved = f.read()
        with open(self.cert, "w") as f:
            f.write("not a certificate\n")
        failures_before = self.s.log_tail(1 << 20).count("TLS reload failed")
        try:
            self.s.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while (self.s.log_tail(1 << 20).count("TLS reload failed") == failures_before
                   and time.monotonic() < deadline):
                time.sleep(0.05)
        finally:
            with open(self.cert, "w") as f:
                f.write(saved)
        self.assertEqual(self.s.log_tail(1 << 20).count("TLS reload failed"), failures_before + 1)
        self.assertEqual(fingerprint(self.s.resp_port, self.cert), good)


class Refusals(unittest.TestCase):
    def test_beyond_loopback_without_tls_is_refused(self):
        s = CellarServer(["--bind", "0.0.0.0"])
        try:
            with self.assertRaisesRegex(RuntimeError, "without TLS"):
                s.start()
        finally:
            s.kill()
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
