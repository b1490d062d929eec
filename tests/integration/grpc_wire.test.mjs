// Cellar's gRPC API port on the wire: raw HTTP/2 (h2c, prior knowledge) through node:http2,
// with hand-encoded protobuf (grpc_wire_helpers.mjs). Node built-ins only, no npm packages.
// Run from the repo root: node --test tests/integration/grpc_wire.test.mjs
// The binary: $CELLAR_BIN, default build/release/src/bin/cellar.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Server, connect, open, call, frame, unframe, decode, describe, withTimeout,
  getRequest, setRequest, getBatchRequest, createCacheRequest, decodeGetResponse, Result,
} from './grpc_wire_helpers.mjs';

const GET = '/cache_client.Scs/Get';
const SET = '/cache_client.Scs/Set';
const GET_BATCH = '/cache_client.Scs/GetBatch';
const CREATE_CACHE = '/control_client.ScsControl/CreateCache';
const PING = '/cache_client.Ping/Ping';

const OK = 0, INVALID_ARGUMENT = 3, DEADLINE_EXCEEDED = 4, NOT_FOUND = 5, RESOURCE_EXHAUSTED = 8,
  UNIMPLEMENTED = 12, UNAUTHENTICATED = 16;

let server;      // the shared --dev-no-auth server
let session;     // one shared h2 session to it
const extraServers = [];
let anyFailure = false;

// Wraps a test so a failure carries the tail of the server logs.
function wireTest(name, fn, opts = {}) {
  test(name, { timeout: 30000, ...opts }, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      anyFailure = true;
      const logs = [server, ...extraServers].filter(Boolean)
        .map((s) => `--- ${s.logPath} (tail) ---\n${s.logTail(2500)}`).join('\n');
      try { e.message = `${e.message}\n${logs}`; } catch { /* read-only message */ }
      throw e;
    }
  });
}

async function startServer(extra) {
  const s = new Server();
  extraServers.push(s);
  await s.start(extra);
  return s;
}

function assertStatus(r, code, what) {
  assert.equal(r.status, code, `${what}: expected grpc-status ${code}, got ${describe(r)}`);
}

function assertOkUnary(r, what) {
  assertStatus(r, OK, what);
  assert.equal(r.headers[':status'], 200, `${what}: HTTP status`);
  assert.match(String(r.headers['content-type']), /^application\/grpc/, `${what}: content-type`);
  assert.equal(r.trailersOnly, false, `${what}: an OK reply carries data then trailers`);
  const msgs = unframe(r.data);
  assert.equal(msgs.length, 1, `${what}: exactly one response message`);
  return msgs[0];
}

function assertTrailersOnly(r, code, what) {
  assertStatus(r, code, what);
  assert.equal(r.headers[':status'], 200, `${what}: HTTP status`);
  assert.match(String(r.headers['content-type']), /^application\/grpc/, `${what}: content-type`);
  assert.equal(r.trailersOnly, true, `${what}: error must be trailers-only (grpc-status in HEADERS + END_STREAM): ${describe(r)}`);
  assert.equal(r.data.length, 0, `${what}: no DATA in a trailers-only reply`);
}

async function set(sess, key, value, opts = {}) {
  const r = await call(sess, SET, setRequest(key, value), opts);
  const m = assertOkUnary(r, `Set ${key}`);
  assert.equal(decode(m)[1]?.[0], Result.Ok, `Set ${key}: _SetResponse.result must be Ok`);
}

async function get(sess, key, opts = {}) {
  const r = await call(sess, GET, getRequest(key), opts);
  return decodeGetResponse(assertOkUnary(r, `Get ${key}`));
}

function pattern(n, seed = 1) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

before(async () => {
  server = new Server();
  await server.start(['--dev-no-auth']);
  session = await connect(server.ports.api);
});

after(async () => {
  if (session && !session.closed && !session.destroyed) session.destroy();
  const results = [];
  for (const s of extraServers) results.push(['extra', s, await s.stop({ keepDir: anyFailure })]);
  if (server) results.push(['main', server, await server.stop({ keepDir: anyFailure })]);
  if (anyFailure) {
    for (const [, s] of results) console.error(`--- ${s.logPath} (tail) ---\n${s.logTail(4000)}`);
  }
  for (const [which, s, r] of results) {
    assert.equal(r.signal, null, `${which} cellar died by ${r.signal}:\n${s.logTail()}`);
    assert.equal(r.code, 0, `${which} cellar exit code ${r.code}:\n${s.logTail()}`);
  }
});

// 1 ------------------------------------------------------------------------------------------
wireTest('unary Set then Get (Hit, exact bytes); missing key is Miss; Ping', async () => {
  const value = Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe]), Buffer.from('héllo wire')]);
  await set(session, 'u:key1', value);
  const hit = await get(session, 'u:key1');
  assert.equal(hit.result, Result.Hit);
  assert.deepEqual(hit.body, value);

  const miss = await get(session, 'u:missing');
  assert.equal(miss.result, Result.Miss);
  assert.equal(miss.body.length, 0);

  const ping = await call(session, PING, Buffer.alloc(0), { cache: null });
  const pm = assertOkUnary(ping, 'Ping');
  assert.equal(pm.length, 0, 'Ping: empty _PingResponse');
});

// 2 ------------------------------------------------------------------------------------------
wireTest('150 concurrent streams on one session, all in flight at once', async () => {
  const max = session.remoteSettings.maxConcurrentStreams;
  assert.ok(max >= 100, `SETTINGS_MAX_CONCURRENT_STREAMS is ${max}, want >= 100`);
  const N = 150;

  // Opens every stream and writes its whole message but holds END_STREAM, so the server cannot
  // answer any of them; then ends them all. Every stream is open at the server at once.
  async function burst(makeCall) {
    const calls = [];
    for (let i = 0; i < N; i++) {
      const { path, msg, check } = makeCall(i);
      const c = open(session, path);
      c.req.write(frame(msg));
      c.answeredEarly = false;
      c.req.once('response', () => { c.answeredEarly = !c.ended; });
      c.check = check;
      calls.push(c);
    }
    await sleep(100);
    const early = calls.filter((c) => c.answeredEarly).length;
    assert.equal(early, 0, `${early} streams answered before their request ended`);
    for (const c of calls) { c.ended = true; c.req.end(); }
    const replies = await withTimeout(Promise.all(calls.map((c) => c.done)), 15000, `${N} concurrent replies`);
    replies.forEach((r, i) => calls[i].check(r, i));
  }

  await burst((i) => ({
    path: SET,
    msg: setRequest(`conc:${i}`, `value-${i}-${'x'.repeat(i)}`),
    check: (r, j) => assert.equal(decode(assertOkUnary(r, `Set conc:${j}`))[1]?.[0], Result.Ok),
  }));
  await burst((i) => ({
    path: GET,
    msg: getRequest(`conc:${i}`),
    check: (r, j) => {
      const g = decodeGetResponse(assertOkUnary(r, `Get conc:${j}`));
      assert.equal(g.result, Result.Hit, `Get conc:${j}`);
      assert.equal(g.body.toString(), `value-${j}-${'x'.repeat(j)}`, `Get conc:${j} body`);
    },
  }));
  assert.equal(session.goaways.length, 0, 'no GOAWAY');
});

// 3 ------------------------------------------------------------------------------------------
wireTest('keepalive: pings on an idle session, then a call works', async () => {
  const s = await connect(server.ports.api);
  try {
    const ping = () => withTimeout(new Promise((resolve, reject) => {
      const ok = s.ping((err, duration) => (err ? reject(err) : resolve(duration)));
      if (!ok) reject(new Error('session.ping() returned false'));
    }), 3000, 'PING ack');
    for (let i = 0; i < 4; i++) {
      await ping();
      await sleep(250);
    }
    await ping();
    await sleep(5000);
    await ping();
    assert.equal(s.goaways.length, 0, `GOAWAY received: ${JSON.stringify(s.goaways)}`);
    assert.equal(s.closed, false, 'session closed');
    assert.equal(s.destroyed, false, 'session destroyed');
    const g = await get(s, 'keepalive:none');
    assert.equal(g.result, Result.Miss);
    assert.equal(s.goaways.length, 0, 'no GOAWAY after the call');
    assert.deepEqual(s.errors, []);
  } finally {
    s.destroy();
  }
});

// 4 ------------------------------------------------------------------------------------------
wireTest('4 MiB Set over many DATA frames, then Get returns it exactly', async () => {
  const value = pattern(4 * 1024 * 1024, 4);
  await set(session, 'big:4m', value);
  const g = await get(session, 'big:4m');
  assert.equal(g.result, Result.Hit);
  assert.equal(g.body.length, value.length);
  assert.ok(g.body.equals(value), '4 MiB value round-trips byte for byte');
});

wireTest('a body written in small pieces with delays (split prefix and frames) decodes', async () => {
  const value = pattern(200, 9);
  const body = frame(setRequest('split:1', value));
  const { req, done } = open(session, SET);
  const sizes = [1, 3, 7, 2, 5, 11];
  let off = 0;
  for (let i = 0; off < body.length; i++) {
    const n = sizes[i % sizes.length];
    req.write(body.subarray(off, off + n));
    off += n;
    await sleep(10);
  }
  req.end();
  const r = await done;
  assert.equal(decode(assertOkUnary(r, 'split Set'))[1]?.[0], Result.Ok);
  const g = await get(session, 'split:1');
  assert.equal(g.result, Result.Hit);
  assert.ok(g.body.equals(value));

  // A Get split the same way.
  const gb = frame(getRequest('split:1'));
  const c = open(session, GET);
  for (let o = 0; o < gb.length; o += 2) { c.req.write(gb.subarray(o, o + 2)); await sleep(5); }
  c.req.end();
  const g2 = decodeGetResponse(assertOkUnary(await c.done, 'split Get'));
  assert.equal(g2.result, Result.Hit);
  assert.ok(g2.body.equals(value));
});

// 5 ------------------------------------------------------------------------------------------
wireTest('grpc-timeout passed before the call runs → DEADLINE_EXCEEDED, Set not applied', async () => {
  const { req, done } = open(session, SET, { headers: { 'grpc-timeout': '50m' } });
  await sleep(200);
  req.end(frame(setRequest('deadline:1', 'must-not-be-stored')));
  const r = await done;
  assertStatus(r, DEADLINE_EXCEEDED, 'Set after its 50 ms deadline');
  const g = await get(session, 'deadline:1');
  assert.equal(g.result, Result.Miss, 'the expired Set must not have been applied');

  // Control: a generous deadline works.
  await set(session, 'deadline:2', 'ok', { headers: { 'grpc-timeout': '5S' } });
  const g2 = await get(session, 'deadline:2', { headers: { 'grpc-timeout': '100000u' } });
  assert.equal(g2.result, Result.Hit);
});

// 6 ------------------------------------------------------------------------------------------
wireTest('unknown method and unknown service → UNIMPLEMENTED, trailers-only', async () => {
  const r1 = await call(session, '/cache_client.Scs/Nope', getRequest('k'));
  assertTrailersOnly(r1, UNIMPLEMENTED, 'unknown method');
  const r2 = await call(session, '/nope.Service/Get', getRequest('k'));
  assertTrailersOnly(r2, UNIMPLEMENTED, 'unknown service');
});

// 7 ------------------------------------------------------------------------------------------
wireTest('compressed flag → UNIMPLEMENTED; malformed protobuf / truncated prefix → INVALID_ARGUMENT', async () => {
  const c = await call(session, GET, null, { rawBody: frame(getRequest('k'), 1) });
  assertStatus(c, UNIMPLEMENTED, 'compressed flag');
  assert.match(c.message ?? '', /compress/i, `grpc-message should mention compression: ${describe(c)}`);

  const c2 = await call(session, GET, null, { rawBody: frame(getRequest('k'), 1), headers: { 'grpc-encoding': 'gzip' } });
  assertStatus(c2, UNIMPLEMENTED, 'compressed flag with grpc-encoding: gzip');
  assert.match(c2.message ?? '', /compress/i);

  // Field 1 (bytes) claims 5 bytes but only 1 follows.
  const bad = await call(session, GET, Buffer.from([0x0a, 0x05, 0x61]));
  assertTrailersOnly(bad, INVALID_ARGUMENT, 'malformed protobuf');
  // A lone 0xff byte: a varint key that never ends.
  const bad2 = await call(session, SET, Buffer.from([0xff]));
  assertTrailersOnly(bad2, INVALID_ARGUMENT, 'malformed protobuf (unterminated varint)');

  const trunc = await call(session, GET, null, { rawBody: Buffer.from([0, 0, 0]) });
  assertTrailersOnly(trunc, INVALID_ARGUMENT, 'truncated 3-byte prefix');
});

// 8 ------------------------------------------------------------------------------------------
wireTest('missing cache header / unknown cache → NOT_FOUND without err', async () => {
  const r1 = await call(session, GET, getRequest('k'), { cache: null });
  assertTrailersOnly(r1, NOT_FOUND, 'missing cache header');
  assert.equal(r1.err, undefined, `no err trailer: ${describe(r1)}`);
  const r2 = await call(session, GET, getRequest('k'), { cache: 'no-such-cache-xyz' });
  assertTrailersOnly(r2, NOT_FOUND, 'unknown cache');
  assert.equal(r2.err, undefined, `no err trailer: ${describe(r2)}`);
});

// 9 ------------------------------------------------------------------------------------------
wireTest('message declared 6,000,000 bytes → RESOURCE_EXHAUSTED request_size_limit_exceeded', async () => {
  // Only the prefix and a few bytes are sent.
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(6_000_000, 1);
  const r = await call(session, SET, null, { rawBody: Buffer.concat([prefix, Buffer.alloc(100, 7)]) });
  assertStatus(r, RESOURCE_EXHAUSTED, 'declared 6,000,000 bytes');
  assert.equal(r.err, 'request_size_limit_exceeded', describe(r));

  // The whole 6,000,000-byte message actually sent.
  let msg = setRequest('toolarge:req', Buffer.alloc(6_000_000 - 40, 1));
  msg = setRequest('toolarge:req', Buffer.alloc(6_000_000 - 40 + (6_000_000 - msg.length), 1));
  assert.equal(msg.length, 6_000_000);
  const whole = frame(msg);
  const r2 = await call(session, SET, null, { rawBody: whole });
  assertStatus(r2, RESOURCE_EXHAUSTED, 'whole 6,000,000-byte message');
  assert.equal(r2.err, 'request_size_limit_exceeded', describe(r2));

  // The session is still usable and nothing was stored.
  assert.equal((await get(session, 'toolarge:req')).result, Result.Miss);
});

wireTest('5,100,000-byte value → RESOURCE_EXHAUSTED item_size_limit_exceeded', async () => {
  const r = await call(session, SET, setRequest('toolarge:item', Buffer.alloc(5_100_000, 3)));
  assertStatus(r, RESOURCE_EXHAUSTED, '5,100,000-byte value');
  assert.equal(r.err, 'item_size_limit_exceeded', describe(r));
  assert.equal((await get(session, 'toolarge:item')).result, Result.Miss);
});

// 10 -----------------------------------------------------------------------------------------
wireTest('GetBatch of 50 keys → 50 messages in order, then grpc-status 0', async () => {
  const keys = Array.from({ length: 50 }, (_, i) => `batch:${i}`);
  await Promise.all(keys.map((k, i) => (i % 3 === 0 ? Promise.resolve() : set(session, k, `bv-${i}`))));
  const r = await call(session, GET_BATCH, getBatchRequest(keys));
  assertStatus(r, OK, 'GetBatch');
  assert.equal(r.trailersOnly, false);
  assert.ok(r.trailers, 'grpc-status travels in trailers after the data');
  const msgs = unframe(r.data);
  assert.equal(msgs.length, 50, 'one gRPC message per key');
  msgs.forEach((m, i) => {
    const g = decodeGetResponse(m);
    if (i % 3 === 0) {
      assert.equal(g.result, Result.Miss, `item ${i}`);
    } else {
      assert.equal(g.result, Result.Hit, `item ${i}`);
      assert.equal(g.body.toString(), `bv-${i}`, `item ${i} body`);
    }
  });
});

// 11 -----------------------------------------------------------------------------------------
wireTest('HTTP/1.1 on the API port → the web front-end answers (404 for an unknown path); h2 still served', async () => {
  const text = await withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(server.ports.api, '127.0.0.1');
    const chunks = [];
    sock.on('connect', () => sock.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  }), 5000, 'HTTP/1.1 reply and close');
  assert.match(text, /^HTTP\/1\.1 404 Not Found\r\n/, `reply: ${JSON.stringify(text.slice(0, 200))}`);
  assert.match(text, /Connection: close\r\n/, 'the close asked for is said');

  const s = await connect(server.ports.api);
  try {
    assert.equal((await get(s, 'h1:after')).result, Result.Miss);
  } finally {
    s.destroy();
  }
  assert.equal((await get(session, 'h1:after')).result, Result.Miss);
});

// 13 -----------------------------------------------------------------------------------------
wireTest('tiny client window (1024): a 1 MiB Get reply still arrives complete', async () => {
  const value = pattern(1024 * 1024, 13);
  await set(session, 'fc:1m', value);
  const s = await connect(server.ports.api, { settings: { initialWindowSize: 1024 } });
  try {
    assert.equal(s.localSettings.initialWindowSize, 1024);
    const { req, done } = open(s, GET, { timeoutMs: 20000 });
    let largest = 0, pieces = 0;
    req.on('data', (d) => { pieces++; largest = Math.max(largest, d.length); });
    req.end(frame(getRequest('fc:1m')));
    const g = decodeGetResponse(assertOkUnary(await done, 'Get fc:1m with a 1024-byte window'));
    // The window was binding: the reply came in window-sized pieces.
    assert.ok(largest <= 1024 && pieces >= 1024, `DATA pieces: ${pieces}, largest ${largest}`);
    assert.equal(g.result, Result.Hit);
    assert.equal(g.body.length, value.length);
    assert.ok(g.body.equals(value), '1 MiB reply byte for byte');
    assert.equal(s.goaways.length, 0);
  } finally {
    s.destroy();
  }
});

// 14 -----------------------------------------------------------------------------------------
wireTest('without --dev-no-auth: wrong key → UNAUTHENTICATED; admin key works', async () => {
  const srv = await startServer([]);
  const s = await connect(srv.ports.api);
  try {
    const created = await call(s, CREATE_CACHE, createCacheRequest('authcache'), { cache: null, auth: srv.key });
    assertOkUnary(created, 'CreateCache with the admin key');

    const wrong = await call(s, GET, getRequest('k'), { cache: 'authcache', auth: 'wrong' });
    assertTrailersOnly(wrong, UNAUTHENTICATED, 'Get with authorization "wrong"');
    const empty = await call(s, GET, getRequest('k'), { cache: 'authcache', auth: '' });
    assertTrailersOnly(empty, UNAUTHENTICATED, 'Get with an empty authorization');
    const ctlWrong = await call(s, CREATE_CACHE, createCacheRequest('other'), { cache: null, auth: 'wrong' });
    assertTrailersOnly(ctlWrong, UNAUTHENTICATED, 'CreateCache with authorization "wrong"');

    const g = await get(s, 'k', { cache: 'authcache', auth: srv.key });
    assert.equal(g.result, Result.Miss);
    await set(s, 'k', 'v', { cache: 'authcache', auth: srv.key });
    const g2 = await get(s, 'k', { cache: 'authcache', auth: srv.key });
    assert.equal(g2.result, Result.Hit);
    assert.equal(g2.body.toString(), 'v');
  } finally {
    s.destroy();
  }
});

// 12 -----------------------------------------------------------------------------------------
wireTest('SIGTERM with an idle open session → GOAWAY, session closed, exit 0 within 15 s', async () => {
  const srv = await startServer(['--dev-no-auth']);
  const s = await connect(srv.ports.api);
  assert.equal((await get(s, 'shutdown:k')).result, Result.Miss);
  const goaway = new Promise((resolve) => s.once('goaway', (code, last) => resolve({ code, last })));
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  const g = await withTimeout(goaway, 15000, 'GOAWAY after SIGTERM');
  assert.equal(g.code, 0, 'GOAWAY with NO_ERROR');
  await withTimeout(s.closedPromise, 15000, 'session close after GOAWAY');
  assert.ok(s.closed || s.destroyed, 'session closed');
  const exit = await withTimeout(srv.exited, Math.max(1, 15000 - (Date.now() - t0)), 'process exit within 15 s of SIGTERM');
  assert.equal(exit.signal, null, `died by ${exit.signal}`);
  assert.equal(exit.code, 0, `exit code ${exit.code}`);
});
