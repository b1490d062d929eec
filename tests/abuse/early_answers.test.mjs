// Abuse suite, answers given before the request was read: a refused upload, a RESP protocol
// error, an HTTP/2 GOAWAY. The server answers, then closes while the client is still sending.
// Closing a socket with bytes unread makes the kernel reset the connection, and the reset makes
// the client's kernel drop the answer before the client reads it: the client sees EPIPE or
// ECONNRESET instead of why. The server must close so that the answer arrives (a FIN after it;
// the rest of what the client sends read and dropped for a while).
// Run from tests/abuse: node --test early_answers.test.mjs (node:net only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { Server } from '../integration/grpc_wire_helpers.mjs';

const ROUNDS = 10;
let server;

before(async () => { server = await new Server().start([]); });
after(async () => { if (server) await server.stop(); });

// Connects to `port`, writes `head`, then keeps writing 1 MiB chunks (64 at most) until the
// server closes; resolves with all that was read and the socket error, if any.
function sendUntilClosed(port, head) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let error = null;
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => { error = e.code; });
    sock.on('close', () => resolve({ bytes: Buffer.concat(chunks), error }));
    sock.write(head);
    const chunk = Buffer.alloc(1 << 20, 'x');
    let sent = 0;
    const pump = () => {
      while (sent < 64 && !sock.destroyed) {
        sent++;
        if (!sock.write(chunk)) return void sock.once('drain', pump);
      }
      if (!sock.destroyed) sock.end();
    };
    pump();
  });
}

test('a refused upload gets its 413 while the client is still sending', async () => {
  for (let i = 0; i < ROUNDS; i++) {
    const r = await sendUntilClosed(server.ports.api,
      `PUT /cache/c?key=k&ttl_seconds=60 HTTP/1.1\r\nHost: cellar\r\nAuthorization: ${server.key}\r\n` +
      `Content-Length: ${100 << 20}\r\n\r\n`);
    const text = r.bytes.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 413 /, `round ${i}: ${JSON.stringify(text.slice(0, 100))} ${r.error}`);
    assert.match(text, /\r\nConnection: close\r\n/);
  }
});

test('a RESP protocol error reaches a client that is still sending', async () => {
  for (let i = 0; i < ROUNDS; i++) {
    const r = await sendUntilClosed(server.ports.resp, '*1\r\n$x\r\n');
    const text = r.bytes.toString('latin1');
    assert.match(text, /^-ERR Protocol error/, `round ${i}: ${JSON.stringify(text.slice(0, 100))} ${r.error}`);
  }
});

// The frames in `bytes` (HTTP/2), as [type, payload].
function frames(bytes) {
  const out = [];
  for (let at = 0; at + 9 <= bytes.length;) {
    const len = bytes.readUIntBE(at, 3);
    out.push([bytes[at + 3], bytes.subarray(at + 9, at + 9 + len)]);
    at += 9 + len;
  }
  return out;
}

test('an HTTP/2 GOAWAY for a protocol error reaches a client that is still sending', async () => {
  // The preface and empty SETTINGS, then a DATA frame on stream 0 (a connection error,
  // PROTOCOL_ERROR), then the rest.
  const head = Buffer.concat([
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
    Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]),
    Buffer.from([0, 0, 1, 0x0, 0, 0, 0, 0, 0, 0x61]),
  ]);
  for (let i = 0; i < ROUNDS; i++) {
    const r = await sendUntilClosed(server.ports.api, head);
    const goaway = frames(r.bytes).find(([type]) => type === 0x7);
    assert.ok(goaway, `round ${i}: no GOAWAY in ${r.bytes.length} bytes (${r.error})`);
    assert.equal(goaway[1].readUInt32BE(4), 0x1, 'PROTOCOL_ERROR');
  }
});
