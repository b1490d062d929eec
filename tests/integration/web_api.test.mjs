// The API port's web front-end through plain HTTP clients: Node's fetch (undici), raw sockets
// for what fetch hides (WebSocket frames, a client that never reads), and curl. Momento's HTTP
// API (/cache, /topics), the long poll, SSE, WebSocket, CORS and bad input.
// Run from the repo root: node --test tests/integration/web_api.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Server, withTimeout } from './grpc_wire_helpers.mjs';

const ORIGIN = 'http://127.0.0.2:4000';
let server;
let base;
let adminBase;
let key;   // the admin key: super-user
let anyFailure = false;

function webTest(name, fn) {
  test(name, { timeout: 30000 }, async () => {
    try {
      await fn();
    } catch (e) {
      anyFailure = true;
      try { e.message = `${e.message}\n--- server log (tail) ---\n${server.logTail(3000)}`; } catch { /* */ }
      throw e;
    }
  });
}

async function admin(method, path, body) {
  const r = await fetch(adminBase + path, {
    method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.status < 300, `admin ${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

async function mint(query) {
  return (await admin('POST', `/v1/tokens?${query}`)).token;
}

const auth = (token) => ({ authorization: token });

before(async () => {
  server = new Server();
  await server.start(['--cors-origins', ORIGIN, '--max-item-size', '65536',
    '--topic-subscriber-queue', '262144']);
  base = `http://127.0.0.1:${server.ports.api}`;
  adminBase = `http://127.0.0.1:${server.ports.admin}`;
  key = server.key;
  for (const c of ['web', 'limited', 'other']) await admin('PUT', `/v1/caches/${c}`);
});

after(async () => {
  if (!server) return;
  const r = await server.stop({ keepDir: anyFailure });
  // A clean exit: no crash, and (under ASan) no leak report.
  assert.equal(r.signal, null, `cellar died by ${r.signal}:\n${server.logTail()}`);
  assert.equal(r.code, 0, `cellar exit code ${r.code}:\n${server.logTail()}`);
});

webTest('cache: PUT 204, GET 200 with the bytes, a miss 404 "Key Not Found", DELETE 204 (also of a missing key)', async () => {
  let r = await fetch(`${base}/cache/web?key=greeting&ttl_seconds=60`, { method: 'PUT', headers: auth(key), body: 'hello' });
  assert.equal(r.status, 204);
  r = await fetch(`${base}/cache/web?key=greeting`, { headers: auth(key) });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  assert.equal(await r.text(), 'hello');
  r = await fetch(`${base}/cache/web?key=nobody`, { headers: auth(key) });
  assert.equal(r.status, 404);
  assert.equal(r.statusText, 'Not Found');
  assert.equal(await r.text(), 'Key Not Found');
  r = await fetch(`${base}/cache/web?key=greeting`, { method: 'DELETE', headers: auth(key) });
  assert.equal(r.status, 204);
  r = await fetch(`${base}/cache/web?key=greeting`, { method: 'DELETE', headers: auth(key) });
  assert.equal(r.status, 204);
  r = await fetch(`${base}/cache/web?key=greeting`, { headers: auth(key) });
  assert.equal(r.status, 404);
  // Unknown parameters are ignored (Momento's own test sends a junk value=).
  r = await fetch(`${base}/cache/web?key=j&ttl_seconds=5&value=junk`, {
    method: 'PUT', headers: { ...auth(key), 'content-type': 'application/json' }, body: '{"a":1}' });
  assert.equal(r.status, 204);
});

webTest('cache: binary keys through key_base64 (URL-safe unpadded or standard), the same item as gRPC/RESP sees', async () => {
  const k = Buffer.from([0xff, 0x00, 0xfe, 0x2f]);
  const url = k.toString('base64url');
  const std = encodeURIComponent(k.toString('base64'));
  const value = randomBytes(300);
  let r = await fetch(`${base}/cache/web?key_base64=${url}&ttl_seconds=60`, { method: 'PUT', headers: auth(key), body: value });
  assert.equal(r.status, 204);
  r = await fetch(`${base}/cache/web?key_base64=${std}`, { headers: auth(key) });
  assert.equal(r.status, 200);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), value);
  // A text key and its base64 name the same item.
  await fetch(`${base}/cache/web?key=${encodeURIComponent('a b/ü')}&ttl_seconds=60`, { method: 'PUT', headers: auth(key), body: 'x' });
  r = await fetch(`${base}/cache/web?key_base64=${Buffer.from('a b/ü').toString('base64url')}`, { headers: auth(key) });
  assert.equal(await r.text(), 'x');
});

webTest('the token: ?token= works, both given is 400, none or a bad one 401, a wrong cache 404 "Cache Not Found"', async () => {
  let r = await fetch(`${base}/cache/web?key=t1&ttl_seconds=60&token=${key}`, { method: 'PUT', body: 'v' });
  assert.equal(r.status, 204);
  r = await fetch(`${base}/cache/web?key=t1&token=${key}`, { headers: auth(key) });
  assert.equal(r.status, 400);
  assert.match(await r.text(), /only one value must be set/);
  r = await fetch(`${base}/cache/web?key=t1`);
  assert.equal(r.status, 401);
  r = await fetch(`${base}/cache/web?key=t1`, { headers: auth('not-a-token') });
  assert.equal(r.status, 401);
  assert.ok((await r.text()).length > 0, 'a 401 says why');
  r = await fetch(`${base}/cache/nonesuch?key=t1`, { headers: auth(key) });
  assert.equal(r.status, 404);
  assert.equal(await r.text(), 'Cache Not Found');
});

webTest('bad requests are 400 with a reason: no key, both keys, bad base64, no or bad ttl, bad escapes; unknown paths 404, wrong methods 405', async () => {
  const cases = [
    [`/cache/web`, 'GET', /key/],
    [`/cache/web?key=a&key_base64=YQ`, 'GET', /either key or key_base64/],
    [`/cache/web?key_base64=%25%25`, 'GET', /not valid base64/],
    [`/cache/web?key_base64=a`, 'GET', /not valid base64/],
    [`/cache/web?key=a`, 'PUT', /ttl_seconds/],
    [`/cache/web?key=a&ttl_seconds=-3`, 'PUT', /ttl_seconds/],
    [`/cache/web?key=a&ttl_seconds=0`, 'PUT', /ttl_seconds/],
    [`/topics/web/t?sequence_number=x`, 'GET', /sequence_number/],
  ];
  for (const [path, method, re] of cases) {
    const r = await fetch(base + path, { method, headers: auth(key), body: method === 'PUT' ? 'v' : undefined });
    assert.equal(r.status, 400, `${method} ${path}`);
    assert.match(await r.text(), re, `${method} ${path}`);
  }
  let r = await fetch(`${base}/nowhere`, { headers: auth(key) });
  assert.equal(r.status, 404);
  assert.match(await r.text(), /No such path/);
  r = await fetch(`${base}/cache/web?key=a`, { method: 'POST', headers: auth(key), body: 'v' });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET, PUT, DELETE');
});

webTest('permissions as on gRPC: a disposable token for one key is refused (403) on another key, and on topics', async () => {
  const one = await mint('tenant=default&role=rw&cache=limited&key=mine&expires_in=300');
  let r = await fetch(`${base}/cache/limited?key=mine&ttl_seconds=60`, { method: 'PUT', headers: auth(one), body: 'ok' });
  assert.equal(r.status, 204);
  r = await fetch(`${base}/cache/limited?key=mine`, { headers: auth(one) });
  assert.equal(await r.text(), 'ok');
  r = await fetch(`${base}/cache/limited?key=yours`, { headers: auth(one) });
  assert.equal(r.status, 403);
  assert.ok((await r.text()).length > 0);
  r = await fetch(`${base}/cache/other?key=mine`, { headers: auth(one) });
  assert.equal(r.status, 403);
  r = await fetch(`${base}/topics/limited/chat`, { method: 'POST', headers: auth(one), body: 'hi' });
  assert.equal(r.status, 403);
  r = await fetch(`${base}/topics/limited/chat?sequence_number=0`, { headers: auth(one) });
  assert.equal(r.status, 403);
  const ro = await mint('tenant=default&role=ro&cache=limited&expires_in=300');
  r = await fetch(`${base}/cache/limited?key=mine&ttl_seconds=60`, { method: 'PUT', headers: auth(ro), body: 'no' });
  assert.equal(r.status, 403);
});

webTest('limits as on gRPC: a value over the item limit is 413, a cache over its request rate 429', async () => {
  let r = await fetch(`${base}/cache/web?key=big&ttl_seconds=60`, { method: 'PUT', headers: auth(key), body: Buffer.alloc(70000, 1) });
  assert.equal(r.status, 413);
  assert.ok((await r.text()).length > 0);
  await admin('PATCH', '/v1/caches/other/limits', { requests_per_second: 2 });
  const statuses = [];
  for (let i = 0; i < 20; i++) {
    r = await fetch(`${base}/cache/other?key=k${i}`, { headers: auth(key) });
    statuses.push(r.status);
    await r.arrayBuffer();
  }
  assert.ok(statuses.includes(429), `some refused with 429: ${statuses}`);
  assert.ok(statuses.every((s) => s === 404 || s === 429), `only misses and refusals: ${statuses}`);
  await admin('PATCH', '/v1/caches/other/limits', { requests_per_second: 'none' });
});

webTest('topics: the long poll waits, returns on publish, and resumes from sequence_number + sequence_page', async () => {
  const topic = `t-${Date.now()}`;
  let settled = false;
  const poll = fetch(`${base}/topics/web/${topic}?sequence_number=0`, { headers: auth(key) })
    .then(async (r) => { settled = true; return { status: r.status, body: await r.json() }; });
  await sleep(400);
  assert.equal(settled, false, 'the long poll waits for a message');
  let r = await fetch(`${base}/topics/web/${topic}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'text/plain' }, body: 'first' });
  assert.equal(r.status, 204);
  const got = await withTimeout(poll, 5000, 'the long poll');
  assert.equal(got.status, 200);
  assert.equal(got.body.items.length, 1);
  const item = got.body.items[0].item;
  assert.equal(item.value.text, 'first');
  assert.equal(item.topic_sequence_number, 1);
  assert.ok(item.sequence_page > 0);
  // Two more while nobody polls; the next poll gets both, binary as base64.
  await fetch(`${base}/topics/web/${topic}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'text/plain; charset=utf-8' }, body: 'second' });
  await fetch(`${base}/topics/web/${topic}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/octet-stream' }, body: Buffer.from([0, 1, 255]) });
  r = await fetch(`${base}/topics/web/${topic}?sequence_number=${item.topic_sequence_number + 1}&sequence_page=${item.sequence_page}`, { headers: auth(key) });
  const next = await r.json();
  assert.deepEqual(next.items.map((i) => i.item.topic_sequence_number), [2, 3]);
  assert.equal(next.items[0].item.value.text, 'second');
  assert.deepEqual(Buffer.from(next.items[1].item.value.binary, 'base64'), Buffer.from([0, 1, 255]));
  // A page that is not the topic's: a discontinuity naming the real one.
  r = await fetch(`${base}/topics/web/${topic}?sequence_number=2&sequence_page=12345`, { headers: auth(key) });
  const gap = await r.json();
  assert.ok(gap.items[0].discontinuity, JSON.stringify(gap));
  assert.equal(gap.items[0].discontinuity.new_sequence_page, item.sequence_page);
  // A missing cache and a text body that is not UTF-8.
  r = await fetch(`${base}/topics/nonesuch/${topic}`, { method: 'POST', headers: auth(key), body: 'x' });
  assert.equal(r.status, 404);
  r = await fetch(`${base}/topics/web/${topic}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'text/plain' }, body: Buffer.from([0xff]) });
  assert.equal(r.status, 400);
});

webTest('SSE: ids are page:seq, Last-Event-ID resumes, heartbeats are comments', async () => {
  const topic = `sse-${Date.now()}`;
  const ctl = new AbortController();
  const r = await fetch(`${base}/topics/web/${topic}/sse?token=${key}`, { signal: ctl.signal });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  const readUntil = async (re) => withTimeout((async () => {
    while (!re.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended: ${text}`);
      text += dec.decode(value, { stream: true });
    }
  })(), 5000, `SSE ${re}`);
  await readUntil(/: heartbeat\n\n/);
  for (const m of ['a', 'b']) {
    await fetch(`${base}/topics/web/${topic}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'text/plain' }, body: m });
  }
  await readUntil(/"text":"b"/);
  const ids = [...text.matchAll(/^id: (\d+):(\d+)$/gm)].map((m) => [m[1], Number(m[2])]);
  assert.deepEqual(ids.map((i) => i[1]), [1, 2]);
  ctl.abort();
  // Reconnect as EventSource does, after id 1: message 2 is replayed.
  const again = await fetch(`${base}/topics/web/${topic}/sse?token=${key}`, { headers: { 'last-event-id': `${ids[0][0]}:1` } });
  const rd = again.body.getReader();
  let t2 = '';
  await withTimeout((async () => {
    while (!/"text":"b"/.test(t2)) {
      const { value, done } = await rd.read();
      if (done) break;
      t2 += dec.decode(value, { stream: true });
    }
  })(), 5000, 'SSE resume');
  assert.match(t2, new RegExp(`^id: ${ids[0][0]}:2$`, 'm'));
  assert.doesNotMatch(t2, /"text":"a"/);
  await rd.cancel();
});

// ---- WebSocket over a raw socket -------------------------------------------------------------

function wsFrame(opcode, payload, { mask = true, fin = true } = {}) {
  const p = Buffer.from(payload);
  const head = [(fin ? 0x80 : 0) | opcode];
  if (p.length < 126) head.push((mask ? 0x80 : 0) | p.length);
  else if (p.length < 65536) head.push((mask ? 0x80 : 0) | 126, p.length >> 8, p.length & 0xff);
  else {
    head.push((mask ? 0x80 : 0) | 127, 0, 0, 0, 0);
    for (let shift = 24; shift >= 0; shift -= 8) head.push((p.length >>> shift) & 0xff);
  }
  const key = randomBytes(4);
  const body = mask ? Buffer.from(p.map((b, i) => b ^ key[i % 4])) : p;
  return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body]);
}

// Opens a WebSocket by hand; resolves to { sock, frames(): parsed server frames so far, closed }.
function openWs(path, { protocols } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(server.ports.api, '127.0.0.1');
    const wsKey = randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const state = { sock, frames: [], closed: false, head: '' };
    sock.on('connect', () => sock.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${wsKey}\r\n` +
      (protocols ? `Sec-WebSocket-Protocol: ${protocols}\r\n` : '') + '\r\n'));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        state.head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        upgraded = true;
        if (!state.head.startsWith('HTTP/1.1 101')) return resolve(state);
        const accept = createHash('sha1').update(wsKey + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        if (!state.head.includes(`Sec-WebSocket-Accept: ${accept}`)) return reject(new Error(`bad accept: ${state.head}`));
        resolve(state);
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        state.frames.push({ opcode: buf[0] & 0x0f, payload: buf.subarray(off, off + len) });
        buf = buf.subarray(off + len);
      }
    });
    sock.on('close', () => { state.closed = true; if (!upgraded) resolve(state); });
    sock.on('error', () => { state.closed = true; });
  }), 5000, `WebSocket ${path}`);
}

async function waitFor(pred, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const texts = (ws) => ws.frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload.toString()));
const closeOf = (ws) => {
  const f = ws.frames.find((x) => x.opcode === 8);
  return f ? f.payload.readUInt16BE(0) : null;
};

webTest('WebSocket: token as a subprotocol, heartbeat first, items as JSON, publishing on the socket, ping answered', async () => {
  const topic = `ws-${Date.now()}`;
  const ws = await openWs(`/topics/web/${topic}/ws`, { protocols: `token.${key}` });
  assert.match(ws.head, /^HTTP\/1\.1 101/);
  assert.match(ws.head, new RegExp(`Sec-WebSocket-Protocol: token\\.${key}`));
  await waitFor(() => texts(ws).length >= 1, 'the first heartbeat');
  assert.deepEqual(texts(ws)[0], { heartbeat: {} });
  ws.sock.write(wsFrame(1, 'over the socket'));
  ws.sock.write(wsFrame(2, Buffer.from([9, 8, 7])));
  ws.sock.write(wsFrame(9, 'are you there'));
  await waitFor(() => texts(ws).filter((m) => m.item).length >= 2, 'two items back');
  const items = texts(ws).filter((m) => m.item).map((m) => m.item);
  assert.equal(items[0].value.text, 'over the socket');
  assert.deepEqual(Buffer.from(items[1].value.binary, 'base64'), Buffer.from([9, 8, 7]));
  assert.deepEqual(items.map((i) => i.topic_sequence_number), [1, 2]);
  const pong = ws.frames.find((f) => f.opcode === 10);
  assert.equal(pong?.payload.toString(), 'are you there');
  ws.sock.write(wsFrame(8, Buffer.from([0x03, 0xe8])));
  await waitFor(() => ws.closed, 'the close');
  assert.equal(closeOf(ws), 1000);
});

webTest('WebSocket: a 3 MiB frame is read whole and refused by the topic limit; a fragmented message is published whole', async () => {
  const topic = `ws-big-${Date.now()}`;
  const ws = await openWs(`/topics/web/${topic}/ws?token=${key}`);
  await waitFor(() => texts(ws).length >= 1, 'subscribed');
  // One frame larger than what the connection holds unparsed between reads (1 MiB), under the
  // frame bound (the request limit): read to its end, then refused as a publish (topics take
  // 100 KiB messages), with the socket kept.
  ws.sock.write(wsFrame(2, randomBytes(3 * 1024 * 1024)));
  await waitFor(() => texts(ws).some((m) => m.error), 'the refusal of the 3 MiB message', 15000);
  const error = texts(ws).find((m) => m.error).error;
  assert.equal(error.status, 413, JSON.stringify(error));
  assert.match(error.message, /3145728 bytes/);
  // 96 KiB in four fragments: one message, published whole.
  const msg = randomBytes(96 * 1024);
  const quarter = msg.length / 4;
  for (let i = 0; i < 4; i++) {
    ws.sock.write(wsFrame(i === 0 ? 2 : 0, msg.subarray(i * quarter, (i + 1) * quarter),
                          { fin: i === 3 }));
  }
  await waitFor(() => texts(ws).some((m) => m.item), 'the item back', 15000);
  const item = texts(ws).find((m) => m.item).item;
  assert.ok(Buffer.from(item.value.binary, 'base64').equals(msg), 'the published bytes');
  assert.equal(ws.closed, false);
  ws.sock.destroy();
});

webTest('WebSocket: bad frames close with the RFC code, a refused token gets an HTTP status and no upgrade', async () => {
  let ws = await openWs(`/topics/web/x/ws?token=${key}`);
  await waitFor(() => texts(ws).length >= 1, 'subscribed');
  ws.sock.write(wsFrame(1, 'unmasked', { mask: false }));
  await waitFor(() => ws.closed, 'closed after an unmasked frame');
  assert.equal(closeOf(ws), 1002);

  ws = await openWs(`/topics/web/x/ws?token=${key}`);
  await waitFor(() => texts(ws).length >= 1, 'subscribed');
  ws.sock.write(wsFrame(1, Buffer.from([0xc3, 0x28])));
  await waitFor(() => ws.closed, 'closed after text that is not UTF-8');
  assert.equal(closeOf(ws), 1007);

  ws = await openWs(`/topics/web/x/ws?token=${key}`);
  await waitFor(() => texts(ws).length >= 1, 'subscribed');
  ws.sock.write(wsFrame(0, 'continuation of nothing'));
  await waitFor(() => ws.closed, 'closed after a stray continuation');
  assert.equal(closeOf(ws), 1002);

  ws = await openWs('/topics/web/x/ws?token=bogus');
  assert.match(ws.head, /^HTTP\/1\.1 401/);
  ws.sock.destroy();
  const one = await mint('tenant=default&role=rw&cache=limited&key=mine&expires_in=300');
  ws = await openWs(`/topics/limited/x/ws?token=${one}`);
  assert.match(ws.head, /^HTTP\/1\.1 403/);
  ws.sock.destroy();
});

async function slowSubscribers() {
  const t = await (await fetch(`${adminBase}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
  const m = t.match(/^cellar_topic_slow_subscribers_total(?:\{[^}]*\})? (\d+)/m);
  return m ? Number(m[1]) : 0;
}

webTest('a WebSocket client that never reads is cut off (1013 queued, counted), the publisher never waits', async () => {
  const topic = `slow-${Date.now()}`;
  const metric = slowSubscribers;
  const before = await metric();
  const ws = await openWs(`/topics/web/${topic}/ws?token=${key}`);
  await waitFor(() => texts(ws).length >= 1, 'subscribed');
  ws.sock.pause();  // never reads again
  const payload = 'x'.repeat(32 * 1024);
  const t0 = Date.now();
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${base}/topics/web/${topic}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'text/plain' }, body: payload });
    assert.equal(r.status, 204);
  }
  assert.ok(Date.now() - t0 < 20000, 'publishing went on');
  const deadline = Date.now() + 10000;
  let after = await metric();
  while (after <= before && Date.now() < deadline) { await sleep(100); after = await metric(); }
  assert.ok(after > before, `the slow reader was counted: ${before} -> ${after}`);
  ws.sock.destroy();
});

webTest('an SSE client that never reads is cut off and counted, the publisher never waits', async () => {
  const topic = `slow-sse-${Date.now()}`;
  const before = await slowSubscribers();
  const sock = net.connect(server.ports.api, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => { if (got.length < 65536) got += d.toString('latin1'); });
  sock.on('error', () => {});
  sock.write(`GET /topics/web/${topic}/sse?token=${key} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
    'Accept: text/event-stream\r\n\r\n');
  await waitFor(() => got.startsWith('HTTP/1.1 200'), 'the event stream');
  const publish = async (body) => {
    const r = await fetch(`${base}/topics/web/${topic}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'text/plain' }, body });
    assert.equal(r.status, 204);
  };
  for (let i = 0; i < 50 && !got.includes('data: '); i++) { await publish('first'); await sleep(50); }
  assert.match(got, /\nid: \d+:1\ndata: /, 'an event arrived');
  sock.pause();  // never reads again
  const payload = 'x'.repeat(32 * 1024);
  const t0 = Date.now();
  for (let i = 0; i < 200; i++) await publish(payload);
  assert.ok(Date.now() - t0 < 20000, 'publishing went on');
  const deadline = Date.now() + 10000;
  let after = await slowSubscribers();
  while (after <= before && Date.now() < deadline) { await sleep(100); after = await slowSubscribers(); }
  assert.ok(after > before, `the slow reader was counted: ${before} -> ${after}`);
  sock.destroy();
});

webTest('CORS: preflight for an allowed origin echoes its headers; a disallowed origin is refused 403; responses expose grpc-status', async () => {
  let r = await fetch(`${base}/cache/web?key=a`, { method: 'OPTIONS', headers: {
    origin: ORIGIN, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization, content-type' } });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN);
  assert.match(r.headers.get('access-control-allow-methods'), /PUT/);
  assert.equal(r.headers.get('access-control-allow-headers'), 'authorization, content-type');
  r = await fetch(`${base}/cache/web?key=a`, { headers: { origin: ORIGIN, ...auth(key) } });
  assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN);
  assert.match(r.headers.get('access-control-expose-headers'), /grpc-status/);
  r = await fetch(`${base}/cache/web?key=a`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET' } });
  assert.equal(r.status, 403);
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  r = await fetch(`${base}/cache/web?key=a`, { headers: { origin: 'http://evil.example', ...auth(key) } });
  assert.equal(r.status, 403);
  // Same-origin pages need no grant.
  r = await fetch(`${base}/cache/web?key=a`, { headers: { origin: base, ...auth(key) } });
  assert.equal(r.status, 404);
});

webTest('grpc-web (text and binary) answers a Get with its frames and trailers; errors are trailers-only in the headers', async () => {
  const req = Buffer.concat([Buffer.from([0, 0, 0, 0, 7, 0x0a, 5]), Buffer.from('hello')]);
  await fetch(`${base}/cache/web?key=hello&ttl_seconds=60`, { method: 'PUT', headers: auth(key), body: 'world' });
  let r = await fetch(`${base}/cache_client.Scs/Get`, { method: 'POST', headers: {
    'content-type': 'application/grpc-web-text', 'x-grpc-web': '1', authorization: key, cache: 'web' }, body: req.toString('base64') });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/grpc-web-text');
  // Each frame is its own padded base64 piece (as grpc-web clients decode it, piece by piece).
  const body = Buffer.concat((await r.text()).split(/(?<==)(?=[^=])/).map((p) => Buffer.from(p, 'base64')));
  assert.equal(body[0], 0);
  const len = body.readUInt32BE(1);
  assert.ok(body.subarray(5, 5 + len).includes(Buffer.from('world')));
  assert.equal(body[5 + len], 0x80);
  assert.match(body.subarray(10 + len).toString(), /^grpc-status:0\r\n/);
  r = await fetch(`${base}/cache_client.Scs/Get`, { method: 'POST', headers: {
    'content-type': 'application/grpc-web+proto', authorization: key, cache: 'web' }, body: req });
  const bin = Buffer.from(await r.arrayBuffer());
  assert.equal(bin[0], 0);
  r = await fetch(`${base}/cache_client.Scs/Get`, { method: 'POST', headers: {
    'content-type': 'application/grpc-web-text', authorization: key, cache: 'nonesuch' }, body: req.toString('base64') });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('grpc-status'), '5');
  assert.match(decodeURIComponent(r.headers.get('grpc-message')), /cache not found/);
  r = await fetch(`${base}/cache_client.Scs/Get`, { method: 'POST', headers: {
    'content-type': 'application/grpc-web-text', authorization: key, cache: 'web' }, body: '!!!' });
  assert.equal(r.status, 400);
});

webTest('bad input on the wire: oversized bodies, oversized heads, smuggling framing, a stranger\'s large body refused unread', async () => {
  const raw = (bytes) => withTimeout(new Promise((resolve) => {
    const sock = net.connect(server.ports.api, '127.0.0.1');
    const chunks = [];
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {});
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    setTimeout(() => sock.end(), 1500);
  }), 8000, 'raw request');
  let t = await raw('GET /cache/web?key=a HTTP/1.1\r\nHost: x\r\nX-Big: ' + 'a'.repeat(20000) + '\r\n\r\n');
  assert.match(t, /^HTTP\/1\.1 431 /);
  t = await raw('PUT /cache/web?key=a&ttl_seconds=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc');
  assert.match(t, /^HTTP\/1\.1 400 /);
  t = await raw(`PUT /cache/web?key=a&ttl_seconds=5 HTTP/1.1\r\nHost: x\r\nAuthorization: ${key}\r\nContent-Length: 99999999999\r\n\r\n`);
  assert.match(t, /^HTTP\/1\.1 413 /);
  // No token and a 1 MB body: 401 at once, the body is not read.
  t = await raw('PUT /cache/web?key=a&ttl_seconds=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
  assert.match(t, /^HTTP\/1\.1 401 /);
  assert.match(t, /Connection: close/);
  // The same with a token, written "Bearer <token>" as the API tolerates: the body is read,
  // and judged by the cache's item limit (64 KiB), not refused as a stranger's (401).
  t = await raw(`PUT /cache/web?key=bearer&ttl_seconds=5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n${'b'.repeat(100000)}`);
  assert.match(t, /^HTTP\/1\.1 413 [\s\S]*err: item_size_limit_exceeded/);
  // A chunked body is de-chunked.
  t = await raw(`PUT /cache/web?key=chunky&ttl_seconds=50 HTTP/1.1\r\nHost: x\r\nAuthorization: ${key}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n`);
  assert.match(t, /^HTTP\/1\.1 204 /);
  const r = await fetch(`${base}/cache/web?key=chunky`, { headers: auth(key) });
  assert.equal(await r.text(), 'abcde');
  // Pipelined requests are answered in order.
  t = await raw(`GET /cache/web?key=chunky HTTP/1.1\r\nHost: x\r\nAuthorization: ${key}\r\n\r\nGET /cache/web?key=nope HTTP/1.1\r\nHost: x\r\nAuthorization: ${key}\r\nConnection: close\r\n\r\n`);
  assert.match(t, /^HTTP\/1\.1 200 OK[\s\S]*abcde[\s\S]*HTTP\/1\.1 404 /);
  // The server is still fine.
  assert.equal((await fetch(`${base}/cache/web?key=chunky`, { headers: auth(key) })).status, 200);
});

webTest('curl speaks to it too', async () => {
  let out;
  try {
    out = execFileSync('curl', ['-s', '-w', '%{http_code}', '-X', 'PUT', '--data-binary', 'from curl',
      '-H', `Authorization: ${key}`, `${base}/cache/web?key=curl&ttl_seconds=30`], { encoding: 'utf8' });
  } catch (e) {
    if (e.code === 'ENOENT') return;  // no curl here: fetch covered the same
    throw e;
  }
  assert.equal(out, '204');
  out = execFileSync('curl', ['-s', '-H', `Authorization: ${key}`, `${base}/cache/web?key=curl`], { encoding: 'utf8' });
  assert.equal(out, 'from curl');
});

// ---- TLS: HTTP/2 on the API port (what browsers negotiate), HTTP/1.1 on --web-port ---------

webTest('over TLS the API port answers web requests over HTTP/2 (ALPN h2), and --web-port over HTTP/1.1', async () => {
  const tls = new Server();
  await tls.start(['--tls-self-signed', '--web-port', '0', '--cors-origins', ORIGIN]);
  try {
    const ca = readFileSync(join(tls.dir, 'tls', 'cert.pem'));
    const tkey = tls.key;
    const adm = await fetch(`http://127.0.0.1:${tls.ports.admin}/v1/caches/tls`, { method: 'PUT', headers: { authorization: `Bearer ${tkey}` } });
    assert.equal(adm.status, 201);
    // HTTP/2 to the API port.
    const session = http2.connect(`https://127.0.0.1:${tls.ports.api}`, { ca, servername: 'localhost' });
    try {
      const h2 = (headers, body) => withTimeout(new Promise((resolve, reject) => {
        const req = session.request(headers);
        const chunks = [];
        let head;
        req.on('response', (h) => { head = h; });
        req.on('data', (d) => chunks.push(d));
        req.on('end', () => resolve({ headers: head, body: Buffer.concat(chunks).toString() }));
        req.on('error', reject);
        req.end(body);
      }), 5000, `h2 ${headers[':method']} ${headers[':path']}`);
      let r = await h2({ ':method': 'PUT', ':path': '/cache/tls?key=k&ttl_seconds=60', authorization: tkey, 'content-type': 'text/plain' }, 'over h2');
      assert.equal(session.alpnProtocol, 'h2');
      assert.equal(r.headers[':status'], 204);
      r = await h2({ ':method': 'GET', ':path': '/cache/tls?key=k', authorization: tkey, origin: ORIGIN });
      assert.equal(r.headers[':status'], 200);
      assert.equal(r.body, 'over h2');
      assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
      r = await h2({ ':method': 'OPTIONS', ':path': '/cache_client.Scs/Get', origin: ORIGIN,
        'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,cache' });
      assert.equal(r.headers[':status'], 204);
      assert.equal(r.headers['access-control-allow-headers'], 'authorization,cache');
      r = await h2({ ':method': 'GET', ':path': '/cache/tls?key=k', authorization: 'bogus' });
      assert.equal(r.headers[':status'], 401);
      r = await h2({ ':method': 'GET', ':path': '/cache/tls?key=k', authorization: tkey, origin: 'http://evil.example' });
      assert.equal(r.headers[':status'], 403);
      // A long poll and a publish on one HTTP/2 connection, at once.
      const poll = h2({ ':method': 'GET', ':path': '/topics/tls/t?sequence_number=0', authorization: tkey });
      await sleep(300);
      r = await h2({ ':method': 'POST', ':path': '/topics/tls/t', authorization: tkey, 'content-type': 'text/plain' }, 'multiplexed');
      assert.equal(r.headers[':status'], 204);
      const got = await poll;
      assert.equal(JSON.parse(got.body).items[0].item.value.text, 'multiplexed');
      // grpc-web over HTTP/2: a Get of the item set above.
      const req = Buffer.concat([Buffer.from([0, 0, 0, 0, 3, 0x0a, 1]), Buffer.from('k')]);
      r = await h2({ ':method': 'POST', ':path': '/cache_client.Scs/Get', 'content-type': 'application/grpc-web-text', authorization: tkey, cache: 'tls' }, req.toString('base64'));
      assert.equal(r.headers['content-type'], 'application/grpc-web-text');
      assert.ok(Buffer.from(r.body.split('=')[0], 'base64').includes(Buffer.from('over h2')), r.body);
      // gRPC itself is unchanged on the same connection's port: a plain gRPC call without a token.
      r = await h2({ ':method': 'POST', ':path': '/cache_client.Scs/Get', 'content-type': 'application/grpc', cache: 'tls' }, Buffer.concat([Buffer.from([0, 0, 0, 0, 3, 0x0a, 1]), Buffer.from('k')]));
      assert.equal(r.headers['grpc-status'], '16');
    } finally {
      session.close();
    }
    // A connection that never authenticated may not send a large body: refused as HTTP (not
    // as a gRPC status), before the body is held.
    const stranger = http2.connect(`https://127.0.0.1:${tls.ports.api}`, { ca, servername: 'localhost' });
    try {
      const refused = await withTimeout(new Promise((resolve, reject) => {
        const req = stranger.request({ ':method': 'PUT', ':path': '/cache/tls?key=big&ttl_seconds=60', 'content-type': 'application/octet-stream' });
        let head;
        const chunks = [];
        req.on('response', (h) => { head = h; });
        req.on('data', (d) => chunks.push(d));
        req.on('end', () => resolve({ headers: head, body: Buffer.concat(chunks).toString() }));
        req.on('error', reject);
        req.end(Buffer.alloc(200 * 1024, 1));
      }), 5000, 'a stranger\'s large h2 body');
      assert.ok(refused.headers[':status'] >= 400, `status ${refused.headers[':status']}`);
      assert.match(String(refused.headers['content-type']), /^text\/plain/);
      assert.ok(refused.body.length > 0);
    } finally {
      stranger.close();
    }
    // With a valid token the same body goes through on a fresh connection (its headers
    // authenticate before the body arrives).
    const known = http2.connect(`https://127.0.0.1:${tls.ports.api}`, { ca, servername: 'localhost' });
    try {
      const put = await withTimeout(new Promise((resolve, reject) => {
        const req = known.request({ ':method': 'PUT', ':path': `/cache/tls?key=big&ttl_seconds=60&token=${tkey}` });
        req.on('response', (h) => resolve(h[':status']));
        req.on('error', reject);
        req.end(Buffer.alloc(200 * 1024, 1));
      }), 5000, 'a large h2 body with a token');
      assert.equal(put, 204);
    } finally {
      known.close();
    }
    // HTTP/1.1 over TLS on the web port (ALPN http/1.1).
    const web = await withTimeout(new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: tls.ports.web, path: '/cache/tls?key=k', ca, servername: 'localhost',
        headers: { authorization: tkey }, ALPNProtocols: ['h2', 'http/1.1'] }, (res) => {
        let body = '';
        const alpn = res.socket.alpnProtocol;
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, body, alpn, version: res.httpVersion }));
      });
      req.on('error', reject);
      req.end();
    }), 5000, 'https on the web port');
    assert.deepEqual([web.status, web.body, web.alpn, web.version], [200, 'over h2', 'http/1.1', '1.1']);
  } finally {
    const r = await tls.stop({ keepDir: anyFailure });
    assert.equal(r.code, 0, `the TLS server's exit code ${r.code} (${r.signal}):\n${tls.logTail()}`);
  }
});

webTest('a new connection whose first answer waits for its reader is not taken for a stalled one', async () => {
  // The write timeout counts from the last write that ended, or the last sweep that found
  // none pending. A connection whose very first answer blocked before any sweep saw it used
  // to count as stalled since the server started: past --write-timeout of uptime, it was
  // closed at the next sweep (within a second), mid-answer. The answer here (a grpc-web
  // GetBatch of three 9 MiB items) is more than loopback's socket buffers take at once, so
  // its first write blocks.
  const s2 = new Server();
  await s2.start(['--write-timeout', '3', '--max-item-size', '16mb']);
  try {
    const k2 = s2.key;
    const api2 = `http://127.0.0.1:${s2.ports.api}`;
    let r = await fetch(`http://127.0.0.1:${s2.ports.admin}/v1/caches/w`, { method: 'PUT', headers: { authorization: `Bearer ${k2}` } });
    assert.equal(r.status, 201);
    const value = Buffer.alloc(9 << 20, 0x61);
    r = await fetch(`${api2}/cache/w?key=big&ttl_seconds=600`, { method: 'PUT', headers: { authorization: k2 }, body: value });
    assert.equal(r.status, 204);
    await sleep(5000);  // uptime past the write timeout
    const item = Buffer.from([0x0a, 5, 0x0a, 3, ...Buffer.from('big')]);  // items { cache_key: "big" }
    const msg = Buffer.concat([item, item, item]);
    const body = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
    const sock = net.connect(s2.ports.api, '127.0.0.1');
    await new Promise((res) => sock.on('connect', res));
    sock.pause();
    sock.write(`POST /cache_client.Scs/GetBatch HTTP/1.1\r\nHost: x\r\nAuthorization: ${k2}\r\n` +
      `Cache: w\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: ${body.length}\r\n\r\n`);
    sock.write(body);
    await sleep(1800);  // over a sweep, under the 3 s timeout
    let total = 0;
    let closed = false;
    sock.on('data', (d) => { total += d.length; });
    sock.on('close', () => { closed = true; });
    sock.resume();
    const want = 3 * value.length;
    const deadline = Date.now() + 10000;
    while (total <= want && !closed && Date.now() < deadline) await sleep(20);
    assert.ok(total > want, `the whole answer (${want} bytes of values and framing): got ${total}${closed ? ', then closed' : ''}`);
    sock.destroy();
    // And a PUT over the request limit is 413 (the gRPC wire limit, checked before the call).
    r = await fetch(`${api2}/cache/w?key=huge&ttl_seconds=600`, { method: 'PUT', headers: { authorization: k2 }, body: Buffer.alloc(12 << 20, 1) });
    assert.equal(r.status, 413);
    assert.match(await r.text(), /Request too large/);
  } finally {
    const r = await s2.stop({ keepDir: anyFailure });
    assert.equal(r.code, 0, `exit code ${r.code} (${r.signal})`);
  }
});

webTest('a client that pipelines requests and does not read: parsing waits for it, then every answer comes, in order', async () => {
  const value = Buffer.alloc(60000, 0x62);
  let r = await fetch(`${base}/cache/web?key=pipe&ttl_seconds=600`, { method: 'PUT', headers: auth(key), body: value });
  assert.equal(r.status, 204);
  const gets = async () => {
    const t = await (await fetch(`${adminBase}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
    const m = t.match(/^cellar_grpc_calls_total\{method="\/cache_client\.Scs\/Get"\} (\d+)/m);
    return m ? Number(m[1]) : 0;
  };
  const N = 1000;  // 60 MB of answers
  const before = await gets();
  const sock = net.connect(server.ports.api, '127.0.0.1');
  await new Promise((res) => sock.on('connect', res));
  sock.pause();
  let reqs = '';
  for (let i = 0; i < N; i++) reqs += `GET /cache/web?key=${i === N - 1 ? 'nokey' : 'pipe'} HTTP/1.1\r\nHost: x\r\nAuthorization: ${key}\r\n\r\n`;
  sock.write(reqs);
  await sleep(1500);
  const whilePaused = (await gets()) - before;
  // What the socket buffers hold, plus at most 1 MiB of answers queued: far from all of them.
  assert.ok(whilePaused < N / 2, `${whilePaused} of ${N} answered while the client read nothing`);
  const chunks = [];
  let tail = '';
  sock.on('data', (d) => {
    chunks.push(d);
    tail = (tail + d.toString('latin1', Math.max(0, d.length - 64))).slice(-64);
  });
  sock.resume();
  const deadline = Date.now() + 20000;
  while (!tail.endsWith('Key Not Found') && Date.now() < deadline) await sleep(50);
  const text = Buffer.concat(chunks).toString('latin1');
  const statuses = {};
  for (const m of text.matchAll(/HTTP\/1\.1 (\d+)[^\r]*\r\n/g)) statuses[m[1]] = (statuses[m[1]] || 0) + 1;
  assert.equal((text.match(/HTTP\/1\.1 200 OK/g) || []).length, N - 1, JSON.stringify(statuses));
  assert.ok(text.endsWith('Key Not Found'), 'the last request answered last');
  sock.destroy();
});

webTest('a long poll whose client goes away leaves nothing behind: its place under --max-connections is free at once', async () => {
  // Its timer (55 s) used to hold the connection, and so its place under the cap, and the
  // server's shutdown, until it fired.
  const s3 = new Server();
  await s3.start(['--max-connections', '5']);
  try {
    const k3 = s3.key;
    const r = await fetch(`http://127.0.0.1:${s3.ports.admin}/v1/caches/lp`, { method: 'PUT', headers: { authorization: `Bearer ${k3}` } });
    assert.equal(r.status, 201);
    const socks = [];
    for (let i = 0; i < 5; i++) {
      const sock = net.connect(s3.ports.api, '127.0.0.1');
      await new Promise((res) => sock.on('connect', res));
      sock.on('error', () => {});
      sock.write(`GET /topics/lp/gone-${i}?sequence_number=0 HTTP/1.1\r\nHost: x\r\nAuthorization: ${k3}\r\n\r\n`);
      socks.push(sock);
    }
    await sleep(300);  // five long polls waiting: the cap is reached
    for (const s of socks) s.destroy();
    await sleep(300);
    // A new client gets in (refused at once, were the five still held).
    const got = await withTimeout(fetch(`http://127.0.0.1:${s3.ports.api}/cache/lp?key=k`, { headers: { authorization: k3 } })
      .then((x) => x.status, (e) => `refused: ${e.cause?.code ?? e.message}`), 5000, 'a sixth client');
    assert.equal(got, 404);
  } finally {
    const t0 = Date.now();
    const r = await s3.stop({ keepDir: anyFailure });
    assert.equal(r.signal, null, 'a clean stop, not a kill');
    assert.equal(r.code, 0);
    assert.ok(Date.now() - t0 < 10000, `stopped in ${Date.now() - t0} ms`);
  }
});
