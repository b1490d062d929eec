"""Issue 18, step 1: the control plane's metadata on etcd, shared by every node.

Three `cellar serve --cluster-etcd` nodes (on 127.0.0.1, .2 and .3) and one real etcd, all
started here on free ports: the admin key is one for the fleet; a cache, a tenant, a limit or a
token made on one node is usable on every other; a signing key revoked on one node fails its
tokens everywhere; concurrent creates on three nodes never share an id or a name; a restarted
node reads everything back from etcd; a node that cannot reach etcd refuses to start, saying why.

Items are not shared yet (slots and forwarding come next), so nothing here reads one node's
items on another.
"""

import base64
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

import redis

sys.path.insert(0, os.path.dirname(__file__))
from harness import (EtcdServer, cellar_bin, cluster_node, free_port, poll,  # noqa: E402
                     stop_fleet)

SEEN_WITHIN = 5.0  # bound on waiting for a change to reach another node (measured: ms)

etcd = None
nodes = []


def setUpModule():
    global etcd
    etcd = EtcdServer().start()
    try:
        for i in (1, 2, 3):
            # Unnamed: each node makes its own id (DATA_DIR/node.id).
            nodes.append(cluster_node(etcd, i, "it", named=False))
    except Exception:
        tearDownModule()
        raise
    # Node 1 started first and made the fleet's admin key; the others only know its hash.
    for n in nodes[1:]:
        n.admin_key = nodes[0].admin_key


def tearDownModule():
    stop_fleet(nodes, etcd)


def wait_until(fn, what):
    """Polls fn() until it returns a true value; returns (value, seconds taken)."""
    return poll(fn, what, SEEN_WITHIN, interval=0.005)


def auth_ok(node, cache, secret):
    c = redis.Redis(host=node.host, port=node.resp_port, socket_timeout=5)
    try:
        c.execute_command("AUTH", cache, secret)
        return True
    except redis.exceptions.ResponseError:
        return False
    finally:
        c.close()


def caches_of(node, tenant=None):
    path = "/v1/caches" + ("?tenant=" + tenant if tenant else "")
    status, body = node.admin("GET", path)
    assert status == 200, (status, body)
    return {c["name"]: c["id"] for c in body["caches"]}


class AdminKey(unittest.TestCase):
    def test_one_admin_key_opens_every_node_and_etcd_holds_only_its_hash(self):
        key = nodes[0].admin_key
        self.assertTrue(key and len(key) == 64)
        for n in nodes[1:]:
            self.assertFalse(os.path.exists(os.path.join(n.data_dir, "admin.key")),
                             "a node that joined made a key of its own")
        for n in nodes:
            self.assertEqual(n.admin("GET", "/v1/caches", key=key)[0], 200)
            self.assertEqual(n.admin("GET", "/v1/caches", key="0" * 64)[0], 403)
        stored = etcd.get("/cellar/v1/it/admin/key-sha256")
        self.assertIsNotNone(stored)
        self.assertNotIn(key, stored)
        import hashlib
        self.assertEqual(json.loads(stored)["sha256"], hashlib.sha256(key.encode()).hexdigest())


class Catalog(unittest.TestCase):
    def test_a_cache_created_on_one_node_is_usable_on_every_node(self):
        nodes[0].create_cache("shared-1")
        key = nodes[0].admin_key
        delays = []
        for n in nodes[1:]:
            _, took = wait_until(lambda: auth_ok(n, "shared-1", key), "cache on " + n.host)
            delays.append(took)
        print(f"\n  cache created on node 1 usable on nodes 2, 3 after "
              f"{', '.join(f'{d * 1000:.1f} ms' for d in delays)}", file=sys.stderr)
        ids = {n.host: caches_of(n)["shared-1"] for n in nodes}
        self.assertEqual(len(set(ids.values())), 1, ids)
        # Each node's shards know the cache: a write works and is counted under it.
        c = nodes[2].client("shared-1", create=False)
        self.assertTrue(c.set("k", "v"))
        self.assertEqual(c.get("k"), b"v")
        # Deleted on node 3: AUTH fails on node 1 too.
        nodes[2].delete_cache("shared-1")
        wait_until(lambda: not auth_ok(nodes[0], "shared-1", key), "deletion on node 1")
        self.assertNotIn("shared-1", caches_of(nodes[1]))

    def test_tenants_limits_and_tokens_travel_between_nodes(self):
        # Tenant, cache and token made on node 2; the token works on node 3.
        token = nodes[1].tenant_with_cache("acme", "orders")
        wait_until(lambda: auth_ok(nodes[2], "orders", token), "token of node 2 on node 3")
        c = nodes[2].authed("orders", token)
        self.assertTrue(c.set("x", "1"))
        c.close()
        # A limit set on node 2 is in force on node 3.
        status, body = nodes[1].admin("PUT", "/v1/caches/orders/limits?tenant=acme",
                                      body={"max_item_bytes": 100})
        self.assertEqual(status, 200, body)

        def limited():
            st, b = nodes[2].admin("GET", "/v1/caches/orders/limits?tenant=acme")
            return st == 200 and b.get("overrides", {}).get("max_item_bytes") == 100
        wait_until(limited, "limit on node 3")
        c = nodes[2].authed("orders", token)
        with self.assertRaises(redis.exceptions.ResponseError):
            c.set("big", "x" * 200)
        c.close()
        # The token's signing key revoked on node 1: refused on node 3 (and 2).
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        kid = header["kid"]
        self.assertEqual(nodes[0].admin("POST", "/v1/signing-keys/rotate")[0], 200)
        self.assertEqual(nodes[0].admin("POST", f"/v1/signing-keys/{kid}/revoke")[0], 200)
        wait_until(lambda: not auth_ok(nodes[2], "orders", token), "revocation on node 3")
        self.assertFalse(auth_ok(nodes[1], "orders", token))
        st, keys = nodes[2].admin("GET", "/v1/signing-keys")
        self.assertEqual(st, 200)
        self.assertTrue(any(k["id"] == kid and k["revoked"] for k in keys["keys"]), keys)
        # A token minted after the rotation, on node 3, works on node 1.
        q = urllib.parse.urlencode(dict(tenant="acme", super_user=1))
        st, body = nodes[2].admin("POST", "/v1/tokens?" + q)
        self.assertEqual(st, 201, body)
        self.assertTrue(auth_ok(nodes[0], "orders", body["token"]))

    def test_concurrent_creates_on_three_nodes_share_no_id_and_no_name(self):
        results = {}

        def create(n, names):
            for name in names:
                st, body = n.admin("PUT", "/v1/caches/" + name)
                results.setdefault(name, []).append(st)

        threads = []
        for i, n in enumerate(nodes):
            # 20 names of its own, and 10 names every node tries at once.
            names = [f"own-{i}-{j}" for j in range(20)] + [f"race-{j}" for j in range(10)]
            threads.append(threading.Thread(target=create, args=(n, names)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for name, statuses in results.items():
            if name.startswith("race-"):
                self.assertEqual(sorted(statuses), [201, 409, 409], (name, statuses))
            else:
                self.assertEqual(statuses, [201], (name, statuses))
        # Every node lists the same 90 caches with the same ids, no id twice.
        def same():
            lists = [caches_of(n) for n in nodes]
            return lists if all(l == lists[0] for l in lists) else None
        lists, _ = wait_until(same, "the same cache list on every node")
        mine = {k: v for k, v in lists[0].items() if k.startswith(("own-", "race-"))}
        self.assertEqual(len(mine), 70)
        self.assertEqual(len(set(mine.values())), 70)


class Restart(unittest.TestCase):
    def test_a_restarted_node_reads_the_catalog_back_from_etcd(self):
        nodes[0].create_cache("kept")
        wait_until(lambda: "kept" in caches_of(nodes[1]), "cache on node 2")
        nodes[1].restart()
        self.assertIn("kept", caches_of(nodes[1]))
        self.assertTrue(auth_ok(nodes[1], "kept", nodes[0].admin_key))

    def test_a_node_that_cannot_reach_etcd_refuses_to_start_and_says_why(self):
        port = free_port()  # nothing listens there
        data = os.path.join(nodes[0].data_dir, "unreachable")
        start = time.monotonic()
        p = subprocess.run([cellar_bin(), "serve", "--data-dir", data, "--resp-port", "0",
                            "--admin-port", "0", "--api-port", "0",
                            "--cluster-etcd", f"http://127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("etcd", p.stdout + p.stderr)
        self.assertLess(time.monotonic() - start, 30)

    def test_bad_cluster_flags_are_refused(self):
        for args, what in ((["--cluster-etcd", "127.0.0.1:2379"], "http://host:port"),
                           (["--cluster-etcd", etcd.url, "--cluster-name", "Bad/Name"],
                            "--cluster-name")):
            p = subprocess.run([cellar_bin(), "serve", "--data-dir", "/nonexistent"] + args,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(what, p.stderr)


if __name__ == "__main__":
    unittest.main()
