// Abuse suite, request bodies on the web front-end (HTTP/1.1 on the API port): a body, or a
// WebSocket's partial frames, count toward the process's bound on request bytes being received
// while they arrive, not only once complete, as a gRPC stream's body does. Without that, clients holding a valid token could park
// a 16 MiB partial body on each of many connections, and the server would buffer all of them.
// Run from tests/abuse: node --test bodies_web.test.mjs (node:net only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { Server, withTimeout } from '../integration/grpc_wire_helpers.mjs';

const MB = 1 << 20;
const DECLARED = 15 * MB;  // under the parser's 16 MiB per connection, over the item limit
const SENT = 12 * MB;      // sent at once; the rest only later
const ORIGIN = 'http://app.example';
let server;

// Resolves once `done()` holds, checked every 20 ms; rejects after `ms` (and stops checking).
async function until(done, ms, what) {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(20);
  }
}

before(async () => {
  // --memory-limit 256mb: request bodies being received are bounded at 64 MiB together.
  // A page of ORIGIN (allowed) sends the bodies: the refusal must be readable by it (CORS).
  server = await new Server().start(['--memory-limit', '256mb', '--cors-origins', ORIGIN]);
  const r = await fetch(`http://127.0.0.1:${server.ports.admin}/v1/caches/c`, {
    method: 'PUT', headers: { authorization: `Bearer ${server.key}` },
  });
  assert.equal(r.status, 201, 'creating cache c');
});
after(async () => { if (server) await server.stop(); });

// A raw connection that sends a PUT's head and the first `sent` bytes of its body; `answer`
// resolves with whatever the server wrote once it closes or `settle` is called.
function partialPut(i, sent) {
  const sock = net.connect(server.ports.api, '127.0.0.1');
  const chunks = [];
  let closed = false;
  sock.on('data', (d) => chunks.push(d));
  sock.on('error', () => {});  // the server may close while we still write: expected
  const gone = new Promise((resolve) => sock.on('close', () => { closed = true; resolve(); }));
  sock.write(`PUT /cache/c?key=k${i}&ttl_seconds=60 HTTP/1.1\r\nHost: cellar\r\nAuthorization: ${server.key}\r\n` +
             `Origin: ${ORIGIN}\r\nContent-Length: ${DECLARED}\r\n\r\n`);
  sock.write(Buffer.alloc(sent, 'b'));
  return {
    sock, gone,
    text: () => Buffer.concat(chunks).toString('latin1'),
    isClosed: () => closed,
    finish: () => sock.write(Buffer.alloc(DECLARED - sent, 'b')),
  };
}

async function answered(c) {
  await until(() => /\r\n\r\n/.test(c.text()) || c.isClosed(), 20000, 'an answer to a complete body');
  return c.text();
}

test('partial bodies on many connections are bounded together; the bound is given back', async () => {
  // Six connections park 12 MiB each: 72 MiB, over the 64 MiB bound. The one whose bytes
  // cross it is answered (and closed) without the rest of its body being read; the other five
  // (60 MiB at most) never reach the bound.
  const conns = [];
  for (let i = 0; i < 6; i++) conns.push(partialPut(i, SENT));
  const refused = () => conns.filter((c) => /too much request data right now/.test(c.text()));
  await until(() => refused().length > 0, 20000, 'a refusal once the partial bodies passed 64 MiB');
  const [first] = refused();
  // The server is busy, not the request wrong: 503, and when to try again.
  assert.match(first.text(), /^HTTP\/1\.1 503 /, first.text().slice(0, 200));
  assert.match(first.text(), /\r\nRetry-After: 1\r\n/, first.text().slice(0, 300));
  assert.match(first.text(), new RegExp(`\r\nAccess-Control-Allow-Origin: ${ORIGIN}\r\n`),
               first.text().slice(0, 400));
  assert.match(first.text(), /\r\nAccess-Control-Expose-Headers: [^\r]*retry-after/,
               first.text().slice(0, 400));
  await withTimeout(first.gone, 5000, 'the refused connection closed');
  // The others are being read: each sent whole in turn (at most 63 MiB at once) gets the
  // item-size refusal (15 MiB is over the request limit), which only a complete body gets.
  const kept = conns.filter((c) => c !== first);
  for (const c of kept) {
    assert.equal(c.text(), '', 'no answer before the body is complete');
    c.finish();
    const text = await answered(c);
    assert.match(text, /^HTTP\/1\.1 413 /, text.slice(0, 300));
    assert.doesNotMatch(text, /right now/, 'refused for its size, not for the bound');
    c.sock.destroy();
  }
  assert.equal(refused().length, 1);
  // Everything was given back: four new connections park 48 MiB and each is read to its end.
  await sleep(200);  // the closed connections' counts go when the server sees them close
  const again = [];
  for (let i = 10; i < 14; i++) again.push(partialPut(i, SENT));
  for (const c of again) {
    c.finish();
    const text = await answered(c);
    assert.match(text, /^HTTP\/1\.1 413 /, text.slice(0, 300));
    assert.doesNotMatch(text, /right now/, 'the bound was given back');
    c.sock.destroy();
  }
  // A small request still works.
  const r = await fetch(`http://127.0.0.1:${server.ports.api}/cache/c?key=small&ttl_seconds=60`, {
    method: 'PUT', headers: { authorization: server.key }, body: 'v',
  });
  assert.equal(r.status, 204, await r.text());
});

// A WebSocket parking most of a large frame: the first `sent` bytes of a `declared`-byte one.
function partialWsFrame(sent, declared) {
  return new Promise((resolve) => {
    const sock = net.connect(server.ports.api, '127.0.0.1');
    const chunks = [];
    let closed = false;
    sock.on('error', () => {});
    const gone = new Promise((r) => sock.on('close', () => { closed = true; r(); }));
    const state = {
      sock, gone,
      text: () => Buffer.concat(chunks).toString('latin1'),
      isClosed: () => closed,
    };
    sock.on('data', (d) => {
      chunks.push(d);
      if (chunks.length === 1) {
        // Upgraded (the 101 and the first heartbeat): a binary frame's header, mask, and most
        // of its payload.
        const head = Buffer.from([0x82, 0xff, 0, 0, 0, 0,
          (declared >>> 24) & 0xff, (declared >>> 16) & 0xff, (declared >>> 8) & 0xff,
          declared & 0xff, 1, 2, 3, 4]);
        sock.write(head);
        sock.write(Buffer.alloc(sent, 'w'));
        resolve(state);
      }
    });
    sock.write(`GET /topics/c/t/ws?token=${server.key} HTTP/1.1\r\nHost: cellar\r\n` +
               'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
               'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  });
}

test('WebSockets parking large partial frames are bounded together, with close 1013', async () => {
  // 4 MiB frames (under the 5 MiB request limit), 3.5 MiB of each sent: 18 of them hold
  // 63 MiB, the 19th passes the 64 MiB bound and is closed (1013, try again later).
  const socks = [];
  for (let i = 0; i < 19; i++) {
    socks.push(await withTimeout(partialWsFrame(3.5 * MB, 4 * MB), 5000, 'a WebSocket'));
  }
  const closedWith1013 = () => socks.filter((s) => s.text().includes('\x88') &&
                                          /\x88.\x03\xf5/s.test(s.text()));
  const seen = () => socks.map((s) => `${s.isClosed() ? 'closed' : 'open'} ` +
                                JSON.stringify(s.text().slice(-60))).join('\n');
  await until(() => closedWith1013().length > 0, 20000, 'a WebSocket closed once the partial frames passed 64 MiB')
    .catch((e) => { for (const s of socks) s.sock.destroy(); throw new Error(`${e.message}\n${seen()}`); });
  const cut = closedWith1013();
  assert.equal(cut.length, 1);
  assert.match(cut[0].text(), /receiving too much data right now/);
  for (const s of socks) s.sock.destroy();
  // Given back: a small PUT is read and answered.
  await sleep(200);
  const r = await fetch(`http://127.0.0.1:${server.ports.api}/cache/c?key=after&ttl_seconds=60`, {
    method: 'PUT', headers: { authorization: server.key }, body: 'v',
  });
  assert.equal(r.status, 204, await r.text());
});

test('over HTTP/2 too, the stream whose bytes cross the bound is answered 503 with Retry-After', async () => {
  // The HTTP API over h2c (prior knowledge) on the API port: eight sessions each send 8.5 MiB
  // of a 9 MiB PUT, 68 MiB together, over the 64 MiB bound.
  const http2 = await import('node:http2');
  const declared = 9 * MB;
  const sent = 8.5 * MB;
  const puts = [];
  for (let i = 0; i < 8; i++) {
    const session = http2.connect(`http://127.0.0.1:${server.ports.api}`);
    session.on('error', () => {});
    const req = session.request({
      ':method': 'PUT', ':path': `/cache/c?key=h${i}&ttl_seconds=60`, authorization: server.key,
      origin: ORIGIN, 'content-length': String(declared),
    });
    req.on('error', () => {});
    const put = { session, req, headers: null, body: '' };
    req.on('response', (h) => { put.headers = h; });
    req.setEncoding('latin1');
    req.on('data', (d) => { put.body += d; });
    req.write(Buffer.alloc(sent, 'h'));
    puts.push(put);
  }
  try {
    const answered = () => puts.filter((p) => p.headers !== null);
    await until(() => answered().length > 0, 20000, 'an HTTP/2 answer once the partial bodies passed 64 MiB');
    await sleep(300);  // any other answer would have come by now
    const [first] = answered();
    assert.equal(answered().length, 1, 'one stream crossed the bound');
    assert.equal(first.headers[':status'], 503, JSON.stringify(first.headers));
    assert.equal(first.headers['retry-after'], '1');
    assert.equal(first.headers['access-control-allow-origin'], ORIGIN);
    assert.match(first.headers['access-control-expose-headers'] ?? '', /retry-after/);
    await until(() => /too much request data right now/.test(first.body), 5000, 'the 503 says why');
  } finally {
    for (const p of puts) p.session.destroy();
  }
  // Given back: a small PUT over HTTP/1.1 is read and answered.
  await sleep(200);
  const r = await fetch(`http://127.0.0.1:${server.ports.api}/cache/c?key=h2after&ttl_seconds=60`, {
    method: 'PUT', headers: { authorization: server.key }, body: 'v',
  });
  assert.equal(r.status, 204, await r.text());
});
