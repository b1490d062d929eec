"""Noisy-neighbour load over RESP, shared by test_isolation.py (short form) and
tests/bench/isolation.sh (long form).

- flood: tenant A's load generator. CONNS connections each send PIPELINE SETs, wait for every
  reply, and go again, as fast as the server answers, for SECONDS. Prints one JSON line:
  requests sent, OK replies, throttled replies (the limit errors), other errors.
- probe: tenant B's steady client. One connection sends one GET every INTERVAL seconds (on a
  fixed schedule, so a slow reply does not lower the offered rate) COUNT times and records each
  round trip. Returns the latencies (seconds) and the error replies.

Both authenticate with `AUTH <cache> <token>` and talk raw RESP on 127.0.0.1: nothing here is
in the way of measuring the server.

Run as a script: isolation.py flood PORT CACHE TOKEN CONNS PIPELINE SECONDS
"""

import json
import selectors
import socket
import sys
import time


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def connect(port, cache, token, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(resp("AUTH", cache, token))
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed during AUTH")
        line += chunk
    if not line.startswith(b"+OK"):
        raise RuntimeError(f"AUTH failed: {line!r}")
    return s


def flood(port, cache, token, conns, pipeline, seconds, value_size=32):
    """A closed loop of pipelined SETs on `conns` connections; returns counts."""
    value = b"x" * value_size
    batch = b"".join(resp(b"SET", b"flood:%d" % i, value) for i in range(pipeline))
    sel = selectors.DefaultSelector()
    state = {}
    for _ in range(conns):
        s = connect(port, cache, token)
        s.setblocking(False)
        state[s] = {"want": 0, "buf": b""}
        sel.register(s, selectors.EVENT_READ)
    sent = ok = throttled = other = 0
    deadline = time.monotonic() + seconds
    for s, st in state.items():
        s.sendall(batch)
        st["want"] = pipeline
        sent += pipeline
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            st = state[s]
            try:
                chunk = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise ConnectionError("server closed a flood connection")
            # Counted with bytes.count (C speed): the generator must outrun the server. Every
            # reply is one line; a line split across reads is counted once its end arrives.
            data = st["buf"] + chunk
            last = data.rfind(b"\r\n")
            end = last + 2 if last >= 0 else 0
            done, st["buf"] = data[:end], data[end:]
            lines = done.count(b"\r\n")
            good = done.count(b"+OK\r\n")
            limited = done.count(b"limit exceeded") + done.count(b"overloaded")
            ok += good
            throttled += limited
            other += lines - good - limited
            st["want"] -= lines
            if st["want"] <= 0 and time.monotonic() < deadline:
                s.setblocking(True)
                s.sendall(batch)
                s.setblocking(False)
                st["want"] += pipeline
                sent += pipeline
    for s in state:
        s.close()
    return {"sent": sent, "ok": ok, "throttled": throttled, "other": other}


def probe(port, cache, token, count, interval):
    """`count` GETs of an existing one-byte value, one every `interval` seconds."""
    s = connect(port, cache, token)
    s.sendall(resp("SET", "probe", "v"))
    assert s.recv(64) == b"+OK\r\n"
    req = resp("GET", "probe")
    expected = b"$1\r\nv\r\n"
    latencies, errors = [], []
    next_at = time.perf_counter()
    for _ in range(count):
        now = time.perf_counter()
        if next_at > now:
            time.sleep(next_at - now)
        next_at += interval
        t0 = time.perf_counter()
        s.sendall(req)
        buf = b""
        while True:
            buf += s.recv(4096)
            if buf == expected or (buf.startswith(b"-") and buf.endswith(b"\r\n")):
                break
            if len(buf) > len(expected) and not buf.startswith(b"-"):
                raise AssertionError(f"unexpected reply {buf!r}")
        latencies.append(time.perf_counter() - t0)
        if buf != expected:
            errors.append(buf.decode(errors="replace").strip())
    s.close()
    return latencies, errors


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


if __name__ == "__main__":
    if len(sys.argv) != 8 or sys.argv[1] != "flood":
        sys.exit("usage: isolation.py flood PORT CACHE TOKEN CONNS PIPELINE SECONDS")
    _, _, port, cache, token, conns, pipeline, seconds = sys.argv
    print(json.dumps(flood(int(port), cache, token, int(conns), int(pipeline), float(seconds))),
          flush=True)
