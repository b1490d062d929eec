"""Reusable harness for Cellar integration tests.

Starts `cellar serve` on free ports with a temporary data directory, reads
DATA_DIR/ports.json and DATA_DIR/admin.key, talks to the admin HTTP API with
urllib and hands out redis-py clients bound to a cache through
`AUTH <cache> <admin key>` (redis-py sends exactly that when given
username=<cache>, password=<key>, on every pooled connection).

Binary: $CELLAR_BIN, else build/release/src/bin/cellar relative to the repo.
Run with the Debian interpreter (/usr/bin/python3), which has redis-py.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_BIN = os.path.join(REPO_ROOT, "build", "release", "src", "bin", "cellar")
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def cellar_bin():
    path = os.environ.get("CELLAR_BIN") or DEFAULT_BIN
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise FileNotFoundError(f"cellar binary not found at {path} (set CELLAR_BIN)")
    return path


def stop_server(server):
    """A test module's tearDownModule: stops its server (checking it exits cleanly) and
    removes its data dir. None (a set-up that failed early) is fine."""
    if server is None:
        return
    try:
        server.stop()
    finally:
        server.cleanup()


def free_port():
    """A port that was free a moment ago (for servers that need an explicit port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    """VmRSS of a process in bytes (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                parts = line.split()
                return int(parts[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class AdminError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.body = body


class CellarServer:
    """One `cellar serve` process. Use as a context manager or call start()/stop()."""

    def __init__(self, extra_args=(), data_dir=None, dev_no_auth=False, preexec_fn=None):
        self.extra_args = list(extra_args)
        self.preexec_fn = preexec_fn  # run in the child before exec (e.g. to set rlimits)
        if dev_no_auth and "--dev-no-auth" not in self.extra_args:
            self.extra_args.append("--dev-no-auth")
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="cellar-it-")
        self.proc = None
        self.ports = None
        self.admin_key = None
        self._log_path = os.path.join(self.data_dir, "server.log")
        self._log = None
        self._clients = []

    # ---- lifecycle -------------------------------------------------------
    def start(self):
        ports_path = os.path.join(self.data_dir, "ports.json")
        # A stale ports.json from a previous run in the same dir must not be mistaken for ours.
        try:
            os.unlink(ports_path)
        except FileNotFoundError:
            pass
        argv = [cellar_bin(), "serve", "--data-dir", self.data_dir, "--resp-port", "0",
                "--admin-port", "0", "--api-port", "0"] + self.extra_args
        self._log = open(self._log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=self.preexec_fn)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cellar exited with {self.proc.returncode} before ready:\n"
                                   + self.log_tail())
            if os.path.exists(ports_path):
                try:
                    with open(ports_path) as f:
                        ports = json.load(f)
                    if ports.get("pid") in (None, self.proc.pid):
                        self.ports = ports
                        break
                except (ValueError, OSError):
                    pass  # renamed into place atomically per contract; retry anyway
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"no ports.json within {READY_TIMEOUT}s:\n" + self.log_tail())
            time.sleep(0.02)
        key_path = os.path.join(self.data_dir, "admin.key")
        if os.path.exists(key_path):
            with open(key_path) as f:
                self.admin_key = f.read().strip()
        return self

    def stop(self, timeout=STOP_TIMEOUT, check=True):
        """SIGTERM, wait; kill on timeout. Returns the exit code. check: assert it is 0."""
        self.close_clients()
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"cellar did not exit within {timeout}s of SIGTERM:\n"
                                   + self.log_tail())
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        if check and rc != 0:
            raise RuntimeError(f"cellar exited with {rc} after SIGTERM:\n" + self.log_tail())
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None

    def cleanup(self):
        self.kill()
        if self._log:
            self._log.close()
            self._log = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if self.proc is not None:
                self.stop(check=exc[0] is None)
        finally:
            self.cleanup()

    def log_tail(self, n=4000):
        try:
            if self._log:
                self._log.flush()
            with open(self._log_path, "rb") as f:
                data = f.read()
            return data[-n:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    # ---- addresses -------------------------------------------------------
    @property
    def pid(self):
        return self.proc.pid

    @property
    def host(self):
        return self.ports.get("bind", "127.0.0.1") if self.ports else "127.0.0.1"

    @property
    def resp_port(self):
        return self.ports["resp"]

    @property
    def admin_port(self):
        return self.ports["admin"]

    @property
    def api_port(self):
        return self.ports["api"]

    # ---- admin HTTP ------------------------------------------------------
    def admin(self, method, path, body=None, auth=True, key=None, raw=None,
              content_type="application/json"):
        """Returns (status, parsed JSON or text). Does not raise on HTTP errors. `body` is sent
        as JSON; `raw` (bytes or str) is sent as it is, with `content_type`."""
        url = f"http://{self.host}:{self.admin_port}{path}"
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        else:
            data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if auth:
            k = key if key is not None else self.admin_key
            if k:
                req.add_header("Authorization", f"Bearer {k}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def run_cli(self, *args, text=True, timeout=30):
        """Runs the `cellar` CLI against this server (it finds the ports and key in the data
        dir); returns the CompletedProcess (stdout and stderr captured)."""
        return subprocess.run([cellar_bin(), "--data-dir", self.data_dir] + list(args),
                              capture_output=True, text=text, timeout=timeout)

    def metric(self, name, labels=""):
        """The value of one /metrics sample, e.g. metric("cellar_x_total", 'port="resp"');
        None when absent."""
        import re
        with urllib.request.urlopen(f"http://{self.host}:{self.admin_port}/metrics",
                                    timeout=10) as r:
            text = r.read().decode()
        sample = name + ("{" + labels + "}" if labels else "")
        m = re.search(r"^" + re.escape(sample) + r" (\d+)$", text, re.M)
        return int(m.group(1)) if m else None

    def authed(self, cache, token, timeout=10):
        """A redis-py client bound to `cache` with `token` (AUTH <cache> <token>)."""
        import redis
        c = redis.Redis(host=self.host, port=self.resp_port, socket_timeout=timeout)
        c.execute_command("AUTH", cache, token)
        return c

    def tenant_with_cache(self, tenant, cache):
        """Creates tenant `tenant` with cache `cache` and mints a super-user token of it;
        returns the token (RESP: AUTH <cache> <token>)."""
        status, body = self.admin("POST", "/v1/tenants/" + tenant)
        if status != 201:
            raise AssertionError(f"creating tenant {tenant}: {status} {body}")
        status, body = self.admin("PUT", f"/v1/caches/{cache}?tenant={tenant}")
        if status != 201:
            raise AssertionError(f"creating cache {cache}: {status} {body}")
        query = urllib.parse.urlencode(dict(tenant=tenant, super_user=1))
        status, body = self.admin("POST", "/v1/tokens?" + query)
        if status != 201:
            raise AssertionError(f"minting a token of {tenant}: {status} {body}")
        return body["token"]

    def create_cache(self, name, exist_ok=False):
        status, body = self.admin("PUT", "/v1/caches/" + urllib.parse.quote(name, safe=""))
        if status == 201 or (exist_ok and status == 409):
            return body
        raise AdminError(status, body)

    def delete_cache(self, name):
        status, body = self.admin("DELETE", "/v1/caches/" + urllib.parse.quote(name, safe=""))
        if status != 200:
            raise AdminError(status, body)
        return body

    def list_caches(self):
        status, body = self.admin("GET", "/v1/caches")
        if status != 200:
            raise AdminError(status, body)
        return body["caches"]

    # ---- RESP clients ----------------------------------------------------
    def client(self, cache=None, create=True, **kwargs):
        """redis-py client; with cache, every connection sends AUTH <cache> <admin key>."""
        import redis  # imported lazily so the harness loads without redis-py
        if cache is not None and create:
            self.create_cache(cache, exist_ok=True)
        opts = dict(host=self.host, port=self.resp_port, socket_timeout=30,
                    socket_connect_timeout=10)
        if cache is not None:
            opts.update(username=cache, password=self.admin_key)
        opts.update(kwargs)
        c = redis.Redis(**opts)
        self._clients.append(c)
        return c

    def close_clients(self):
        for c in self._clients:
            try:
                c.close()
                c.connection_pool.disconnect()
            except Exception:
                pass
        self._clients = []

    def raw(self, timeout=10):
        """A plain TCP socket to the RESP port."""
        s = socket.create_connection((self.host, self.resp_port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def info(self, client, section=None):
        return client.info(section) if section else client.info()


def resp_encode(*args):
    """Encode one command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def recv_until_closed(sock, timeout=5.0, limit=1 << 20):
    """Read until EOF or timeout. Returns (data, closed)."""
    sock.settimeout(0.2)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(buf) < limit:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return buf, True
        if not chunk:
            return buf, True
        buf += chunk
    return buf, False


def recv_reply_line(sock, timeout=5.0):
    """Read one CRLF-terminated line (enough for simple/error/integer replies)."""
    sock.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


class Timeout:
    """Run fn in a thread with a deadline (for 'does this block?' checks)."""

    @staticmethod
    def run(fn, seconds):
        result = {}

        def target():
            try:
                result["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - reported to the caller
                result["error"] = e

        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join(seconds)
        if t.is_alive():
            raise TimeoutError(f"operation did not finish within {seconds}s")
        if "error" in result:
            raise result["error"]
        return result.get("value")


class RedisServer:
    """A real redis-server on a free port (the reference for differential tests).

    Offers the subset of CellarServer's interface the semantic tests use: client(cache)
    maps each distinct cache name to its own logical database, so namespaces stay apart.
    """

    def __init__(self, extra_args=()):
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.admin_key = None
        self._dbs = {}
        self._clients = []
        self.data_dir = tempfile.mkdtemp(prefix="redis-ref-")

    def start(self):
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.data_dir] + self.extra_args,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            return self
                except OSError:
                    time.sleep(0.05)
            self.kill()  # port race or slow start: try another port
        raise RuntimeError("redis-server did not start")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def stop(self, timeout=STOP_TIMEOUT, check=True):
        for c in self._clients:
            try:
                c.connection_pool.disconnect()
            except Exception:
                pass
        self._clients = []
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            self.cleanup()

    host = "127.0.0.1"

    @property
    def pid(self):
        return self.proc.pid

    @property
    def resp_port(self):
        return self.port

    def create_cache(self, name, exist_ok=False):
        self._dbs.setdefault(name, len(self._dbs) % 16)

    def client(self, cache=None, create=True, **kwargs):
        import redis
        db = 0
        if cache is not None:
            # 16 logical databases: reused round-robin (tests flush their own at start).
            db = self._dbs.setdefault(cache, len(self._dbs) % 16)
        opts = dict(host="127.0.0.1", port=self.port, db=db, socket_timeout=30)
        opts.update(kwargs)
        c = redis.Redis(**opts)
        self._clients.append(c)
        return c

    def raw(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


def target_under_test(extra_args=()):
    """CellarServer, or a real redis-server when CELLAR_IT_REFERENCE=redis (to check the
    tests' own expectations against Redis itself)."""
    if os.environ.get("CELLAR_IT_REFERENCE") == "redis":
        return RedisServer()
    return CellarServer(extra_args)


def reference_mode():
    return os.environ.get("CELLAR_IT_REFERENCE") == "redis"


class RespError(Exception):
    """An error reply, with its full text (e.g. 'ERR wrong number of arguments ...')."""

    def __eq__(self, other):
        return isinstance(other, RespError) and self.args == other.args

    def __hash__(self):
        return hash(self.args)

    def __repr__(self):
        return f"RespError({self.args[0]!r})"


class RawConn:
    """Minimal RESP2 client over a socket: exact replies, nothing parsed away.

    call() returns bytes (bulk/simple), int, None (nil), list, or a RespError instance
    (returned, not raised, so replies can be compared as data)."""

    def __init__(self, host, port, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")

    @classmethod
    def to(cls, server, cache=None, timeout=10):
        c = cls(server.host, server.resp_port, timeout)
        if cache is not None and isinstance(server, CellarServer):
            server.create_cache(cache, exist_ok=True)
            r = c.call("AUTH", cache, server.admin_key)
            if r != b"OK":
                raise RuntimeError(f"AUTH {cache} failed: {r!r}")
        elif cache is not None and isinstance(server, RedisServer):
            server.create_cache(cache)
            r = c.call("SELECT", server._dbs[cache])
            if r != b"OK":
                raise RuntimeError(f"SELECT failed: {r!r}")
        return c

    def send(self, *cmds):
        self.sock.sendall(b"".join(resp_encode(*c) for c in cmds))

    def call(self, *args):
        self.send(args)
        return self.read()

    def pipeline(self, cmds):
        self.send(*cmds)
        return [self.read() for _ in cmds]

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
            if n < 0:
                return None
            data = self.f.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionError("connection closed mid-bulk")
            return data[:-2]
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        raise ValueError(f"bad reply type: {line!r}")

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EtcdServer:
    """A single-member etcd (Debian's etcd-server: /usr/bin/etcd, or $CELLAR_ETCD_BIN) on two
    free loopback ports with its data in a temp dir, for cluster tests. Ready when its health
    endpoint answers; stopped (SIGTERM, then SIGKILL) by stop()."""

    def __init__(self):
        self.exe = os.environ.get("CELLAR_ETCD_BIN") or "/usr/bin/etcd"
        self.data_dir = tempfile.mkdtemp(prefix="cellar-etcd-")
        self.proc = None
        self.client_port = None
        self._log = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.client_port}"

    def start(self):
        if not os.access(self.exe, os.X_OK):
            raise FileNotFoundError(f"etcd not found at {self.exe}: apt-get install etcd-server "
                                    "(scripts/setup.sh does)")
        # A port picked here may be taken before etcd binds it: then etcd exits, and we retry.
        for _ in range(5):
            self.client_port, self.peer_port = free_port(), free_port()
            if self._launch():
                return self
            self.stop()
        raise RuntimeError("etcd did not start: see " + os.path.join(self.data_dir, "etcd.log"))

    def restart(self):
        """Stops etcd and starts it again on the same ports with the same data."""
        self.stop()
        if not self._launch():
            self.stop()
            raise RuntimeError("etcd did not restart: see " +
                               os.path.join(self.data_dir, "etcd.log"))
        return self

    def _launch(self):
        """Starts etcd on the chosen ports; True once it answers /health (bounded)."""
        peer = self.peer_port
        self._log = open(os.path.join(self.data_dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            [self.exe, "--name", "it", "--data-dir", os.path.join(self.data_dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"it=http://127.0.0.1:{peer}", "--unsafe-no-fsync"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if b'"true"' in r.read():
                        return True
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def get(self, key):
        """A key's value through etcd's JSON gateway (None when absent)."""
        import base64
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        req = urllib.request.Request(self.url + "/v3/kv/range", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            kvs = json.loads(r.read()).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def signing_keys(data_dir):
    """The signing keys of a single node, read from its metadata file (DATA_DIR/metadata.tsv:
    a header line, then <mod revision> TAB <key> TAB <value>), oldest first:
    [(kid, secret bytes, revoked)]. For tests that sign tokens the admin API cannot mint."""
    keys = []
    with open(os.path.join(data_dir, "metadata.tsv")) as f:
        next(f)
        for line in f:
            _, key, value = line.rstrip("\n").split("\t", 2)
            if key.startswith("signing-keys/"):
                v = json.loads(value.replace("\\\\", "\\"))
                keys.append((v["created_ms"], key[len("signing-keys/"):],
                             bytes.fromhex(v["secret"]), v["revoked"]))
    keys.sort()
    return [(kid, secret, revoked) for _, kid, secret, revoked in keys]


# ---- fleets (the cluster tests) ------------------------------------------------------------

def cluster_node(etcd, i, cluster_name, *extra, data_dir=None, threads=2, named=True):
    """A started `cellar serve` node of a fleet on `etcd`, bound to 127.0.0.<i>; named: node id
    n<i> in zone z<i> (else the node makes its own id, DATA_DIR/node.id). `extra`: more flags."""
    args = ["--bind", f"127.0.0.{i}", "--threads", str(threads), "--cluster-etcd", etcd.url,
            "--cluster-name", cluster_name]
    if named:
        args += ["--node-id", f"n{i}", "--zone", f"z{i}"]
    return CellarServer(data_dir=data_dir, extra_args=args + list(extra)).start()


def start_fleet(start, count=3):
    """A cluster module's setUpModule: a fresh etcd, then start(etcd, i) for i in 1..count
    (e.g. a cluster_node). Every node gets node 1's admin key (node 1 made the fleet's key; the
    others only know its hash). Returns (etcd, nodes); stops what started if one fails."""
    etcd = EtcdServer().start()
    nodes = []
    try:
        for i in range(1, count + 1):
            nodes.append(start(etcd, i))
    except Exception:
        stop_fleet(nodes, etcd)
        raise
    for n in nodes[1:]:
        n.admin_key = nodes[0].admin_key
    return etcd, nodes


def stop_fleet(nodes, etcd):
    """A cluster module's tearDownModule: stops every node (checking each exits cleanly), then
    etcd. Either may be partly started (a set-up that failed early). A node that does not exit
    cleanly does not stop the others from being stopped: everything started goes, then the
    first failure is raised."""
    failure = None
    for n in nodes:
        try:
            n.stop()
        except Exception as e:  # noqa: BLE001 - reported after the rest is stopped
            failure = failure or e
        finally:
            n.cleanup()
    if etcd is not None:
        etcd.cleanup()
    if failure is not None:
        raise failure


def cluster_view(node):
    """GET /v1/cluster of a node (its view of the fleet)."""
    status, body = node.admin("GET", "/v1/cluster")
    assert status == 200, (status, body)
    return body


def poll(fn, what, bound, interval=0.05, on_timeout=None):
    """Calls fn() until it returns a true value; returns (value, seconds taken). Past `bound`
    seconds: on_timeout() if given, then AssertionError naming `what`."""
    start = time.monotonic()
    while True:
        v = fn()
        if v:
            return v, time.monotonic() - start
        if time.monotonic() - start > bound:
            if on_timeout is not None:
                on_timeout()
            raise AssertionError(f"not within {bound}s: {what}")
        time.sleep(interval)
