// Abuse suite, request bodies on the API port (issue 15 F3): a stream is authenticated on its
// headers, before its body is read, so strangers' bodies are never buffered; a connection
// that has not authenticated a call may hold only a token request's worth; and request bodies
// being received are bounded for the whole process.
// Run from tests/abuse: node --test bodies_grpc.test.mjs (node:http2 only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  Server, call, connect, createCacheRequest, getRequest, open, setRequest, withTimeout,
} from '../integration/grpc_wire_helpers.mjs';

const SET = '/cache_client.Scs/Set';
const GET = '/cache_client.Scs/Get';
const CREATE_CACHE = '/control_client.ScsControl/CreateCache';
const GENERATE_DISPOSABLE = '/token.Token/GenerateDisposableToken';
const MB = 1 << 20;
const UNAUTHENTICATED = 16;

let server;
function rss() {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.proc.pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}
// A gRPC message prefix declaring `n` bytes, then `n` bytes are to follow.
function prefix(n) {
  const p = Buffer.alloc(5);
  p.writeUInt32BE(n, 1);
  return p;
}

before(async () => {
  server = await new Server().start(['--memory-limit', '256mb']);
  const s = await connect(server.ports.api);
  const created = await call(s, CREATE_CACHE, createCacheRequest('c'), { cache: null, auth: server.key });
  assert.equal(created.status, 0, 'CreateCache');
  s.close();
});
after(async () => { if (server) await server.stop(); });

test('strangers streaming 5 MB bodies without end are refused on their headers, nothing buffered', async () => {
  const before = rss();
  const sessions = [];
  const answers = [];
  const chunk = Buffer.alloc(256 * 1024, 'z');
  for (let c = 0; c < 8; c++) {  // the finding: 8 connections x 13 streams x 5 MB declared
    const s = await connect(server.ports.api);
    sessions.push(s);
    for (let i = 0; i < 13; i++) {
      const { req, done } = open(s, SET, { cache: 'c', auth: '', timeoutMs: 20000 });
      req.write(prefix(5_000_000));
      for (let k = 0; k < 4; k++) req.write(chunk);  // 1 MB of it, never ending the stream
      answers.push(done);
    }
  }
  const results = await withTimeout(Promise.all(answers), 20000, 'answers to 104 streams');
  for (const r of results) {
    assert.equal(r.status, UNAUTHENTICATED, `status ${r.status} ${r.message}`);
  }
  await sleep(200);
  const grown = rss() - before;
  assert.ok(grown < 64 * MB, `RSS grew by ${(grown / MB).toFixed(1)} MiB`);
  for (const s of sessions) s.close();
});

test('an authenticated call still streams its body; token requests still work unauthenticated', async () => {
  const s = await connect(server.ports.api);
  const value = Buffer.alloc(3 * MB, 'v');
  const { req, done } = open(s, SET, { cache: 'c', auth: server.key });
  const msg = setRequest('k', value);
  req.write(prefix(msg.length));
  for (let off = 0; off < msg.length; off += MB) req.write(msg.subarray(off, off + MB));
  req.end();
  assert.equal((await done).status, 0);
  const got = await call(s, GET, getRequest('k'), { cache: 'c', auth: server.key });
  assert.equal(got.status, 0);
  s.close();
  // A fresh connection (never authenticated) may still call the token service, whose token
  // is in the body: refused for its bad token, not for being unauthenticated on headers.
  const t = await connect(server.ports.api);
  const r = await call(t, GENERATE_DISPOSABLE, Buffer.from([0x12, 0x03, 0x62, 0x61, 0x64]), { cache: null, auth: '' });
  assert.equal(r.status, UNAUTHENTICATED);
  assert.doesNotMatch(r.message ?? '', /too much request data/);
  t.close();
});
