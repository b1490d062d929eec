// Abuse suite, amplification: a few bytes from the client that would make the server hold or
// do much more. An HPACK header block that repeats a 4 KiB table entry with one byte per
// repeat (no token needed); a WebSocket client that sends pings and never reads the pongs.
// Both were unbounded (about 950 MB from 239 KB of headers; 2.5 GB of pongs in 8 s).
// Run from tests/abuse: node --test amplification.test.mjs (node:net and node:http2 only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { Server, frame as grpcFrame, getRequest } from '../integration/grpc_wire_helpers.mjs';

const MB = 1 << 20;
let server;

before(async () => {
  server = await new Server().start([]);
  const r = await fetch(`http://127.0.0.1:${server.ports.admin}/v1/caches/c`, {
    method: 'PUT', headers: { authorization: `Bearer ${server.key}` },
  });
  assert.equal(r.status, 201, 'creating cache c');
});
after(async () => { if (server) await server.stop(); });

const rssMiB = () => Number(readFileSync(`/proc/${server.proc.pid}/status`, 'utf8')
  .match(/VmRSS:\s+(\d+)/)[1]) / 1024;

// ---- HTTP/2 frames by hand ------------------------------------------------------------------
const h2frame = (type, flags, id, payload) => {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(id, 5);
  return Buffer.concat([h, payload]);
};
// An HPACK integer with an n-bit prefix (RFC 7541 5.1) after `first`'s high bits.
function hpackInt(first, bits, n) {
  const max = (1 << bits) - 1;
  if (n < max) return [first | n];
  const out = [first | max];
  n -= max;
  while (n >= 128) { out.push((n % 128) + 128); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}
// A literal field with a literal name: 0x00 not indexed, 0x40 added to the dynamic table.
const literal = (name, value, indexed = false) => {
  const k = Buffer.from(name), v = Buffer.from(value);
  return Buffer.concat([Buffer.from([indexed ? 0x40 : 0x00, ...hpackInt(0, 7, k.length)]), k,
                        Buffer.from(hpackInt(0, 7, v.length)), v]);
};

// The frames in `bytes`, as {type, flags, id}.
function frames(bytes) {
  const out = [];
  for (let at = 0; at + 9 <= bytes.length;) {
    const len = bytes.readUIntBE(at, 3);
    out.push({ type: bytes[at + 3], flags: bytes[at + 4], id: bytes.readUInt32BE(at + 5) & 0x7fffffff });
    at += 9 + len;
  }
  return out;
}

test('an HPACK block repeating a 4 KiB entry is cut at 64 KiB decoded: bounded, and answered', async () => {
  // Four streams (a web GET and a gRPC call, twice), no token. Each block: one 4000-byte
  // `origin` into the dynamic table (the first), then 60,000 one-byte references to it
  // (index 62): 240 MB decoded per stream from 60 KB sent.
  const sock = net.connect(server.ports.api, '127.0.0.1');
  const got = [];
  sock.on('data', (d) => got.push(d));
  sock.on('error', () => {});
  await new Promise((resolve) => sock.on('connect', resolve));
  const before = rssMiB();
  sock.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
  sock.write(h2frame(0x4, 0, 0, Buffer.alloc(0)));
  const ids = [1, 3, 5, 7];
  for (const [n, id] of ids.entries()) {
    const web = n % 2 === 0;
    const block = Buffer.concat([
      literal(':method', web ? 'GET' : 'POST'), literal(':scheme', 'http'),
      literal(':path', web ? '/topics/c/t' : '/cache_client.Scs/Get'), literal(':authority', 'x'),
      web ? Buffer.alloc(0) : literal('content-type', 'application/grpc'),
      n === 0 ? literal('origin', 'o'.repeat(4000), true) : Buffer.alloc(0),
      Buffer.alloc(60000, 0xbe),
    ]);
    // HEADERS then CONTINUATIONs of 16 KiB; END_STREAM on HEADERS, END_HEADERS on the last.
    for (let at = 0; at < block.length; at += 16384) {
      const last = at + 16384 >= block.length;
      const type = at === 0 ? 0x1 : 0x9;
      const flags = (at === 0 ? 0x1 : 0) | (last ? 0x4 : 0);
      sock.write(h2frame(type, flags, id, block.subarray(at, at + 16384)));
    }
  }
  const answered = () => {
    const f = frames(Buffer.concat(got));
    return ids.filter((id) => f.some((x) => x.id === id && x.type === 0x1 && (x.flags & 0x1)));
  };
  const end = Date.now() + 10000;
  while (answered().length < ids.length && Date.now() < end) await sleep(20);
  const grown = rssMiB() - before;
  sock.destroy();
  assert.deepEqual(answered(), ids, 'every stream answered (and ended)');
  assert.ok(grown < 64, `server RSS grew ${grown.toFixed(1)} MiB`);
});

test('a header list over 64 KiB is refused: 431 on the web, INVALID_ARGUMENT on gRPC', async () => {
  const session = http2.connect(`http://127.0.0.1:${server.ports.api}`,
                                { maxSendHeaderBlockLength: 1 << 20, maxHeaderListPairs: 1000 });
  session.on('error', () => {});
  const big = {};
  for (let i = 0; i < 6; i++) big[`x-filler-${i}`] = 'f'.repeat(15 * 1024);  // each under 16 KiB
  const ask = (headers) => new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: headers[':method'] === 'GET' });
    let body = '';
    let head = null;
    req.setEncoding('latin1');
    req.on('response', (h) => { head = h; });
    req.on('data', (d) => { body += d; });
    req.on('trailers', (t) => { head = { ...head, ...t }; });
    req.on('end', () => resolve({ head, body }));
    req.on('error', reject);
    if (headers[':method'] === 'POST') req.end(grpcFrame(getRequest(Buffer.from('k'))));
  });
  try {
    const web = await ask({ ':method': 'GET', ':path': '/cache/c?key=k', authorization: server.key, ...big });
    assert.equal(web.head[':status'], 431, JSON.stringify(web.head));
    assert.match(web.body, /headers too large/i);
    const grpc = await ask({ ':method': 'POST', ':path': '/cache_client.Scs/Get', 'content-type': 'application/grpc',
                             te: 'trailers', authorization: server.key, cache: 'c', ...big });
    assert.equal(grpc.head['grpc-status'], '3', JSON.stringify(grpc.head));
    assert.match(decodeURIComponent(grpc.head['grpc-message']), /request headers too large/);
    // Under the bound, the same call is served.
    const ok = await ask({ ':method': 'GET', ':path': '/cache/c?key=k', authorization: server.key,
                           'x-filler': 'f'.repeat(15 * 1024) });
    assert.equal(ok.head[':status'], 404, JSON.stringify(ok.head));  // served: no such key
  } finally {
    session.destroy();
  }
});

test('a WebSocket client that pings and never reads its pongs stops being read', async () => {
  const sock = net.connect(server.ports.api, '127.0.0.1');
  sock.on('error', () => {});
  let upgraded = false;
  sock.on('data', (d) => { if (d.toString('latin1').startsWith('HTTP/1.1 101')) upgraded = true; sock.pause(); });
  sock.write(`GET /topics/c/t/ws?token=${server.key} HTTP/1.1\r\nHost: cellar\r\nUpgrade: websocket\r\n` +
             'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  const end0 = Date.now() + 5000;
  while (!upgraded && Date.now() < end0) await sleep(20);
  assert.ok(upgraded, 'the upgrade');
  // Masked 125-byte pings, 1 MiB at a time, for 3 s or 512 MiB; never reading.
  const ping = Buffer.concat([Buffer.from([0x89, 0x80 | 125, 1, 2, 3, 4]), Buffer.alloc(125, 0x61)]);
  const chunk = Buffer.concat(Array.from({ length: Math.floor(MB / ping.length) }, () => ping));
  const before = rssMiB();
  const end = Date.now() + 3000;
  let offered = 0;
  while (Date.now() < end && offered < 512 * MB) {
    if (sock.writableLength < 4 * MB) {
      sock.write(chunk);
      offered += chunk.length;
    } else {
      await sleep(10);
    }
  }
  const taken = sock.bytesWritten - sock.writableLength;  // what the kernel accepted
  const grown = rssMiB() - before;
  sock.destroy();
  // The server holds at most 1 MiB of frames and 1 MiB of pongs (then the socket buffers
  // fill); it was reading (and answering) as fast as the client sent.
  assert.ok(taken < 64 * MB, `the server took ${(taken / MB).toFixed(1)} MiB of pings`);
  assert.ok(grown < 64, `server RSS grew ${grown.toFixed(1)} MiB`);
  // The server still answers.
  const r = await fetch(`http://127.0.0.1:${server.ports.api}/cache/c?key=after`, { headers: { authorization: server.key } });
  assert.equal(r.status, 404);
});
