// Abuse suite, gRPC replies (issue 15 F1): GetBatch of one large key many times, from a
// client whose flow-control window is 0, no longer builds gigabytes: the batch past the reply
// grant is refused RESOURCE_EXHAUSTED ("reply too large"), what fits waits for the reader, and
// a reader that never opens its window is cut off by the write timeout.
// Run from tests/abuse: node --test replies_grpc.test.mjs (node:http2 only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  Server, call, connect, describe, createCacheRequest, getBatchRequest, setRequest, unframe, withTimeout,
} from '../integration/grpc_wire_helpers.mjs';

const SET = '/cache_client.Scs/Set';
const GET_BATCH = '/cache_client.Scs/GetBatch';
const CREATE_CACHE = '/control_client.ScsControl/CreateCache';
const MB = 1 << 20;
const RESOURCE_EXHAUSTED = 8;

let server;
function rss() {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.proc.pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

before(async () => {
  server = await new Server().start(['--memory-limit', '256mb', '--write-timeout', '3']);
  const s = await connect(server.ports.api);
  const created = await call(s, CREATE_CACHE, createCacheRequest('c'), { cache: null, auth: server.key });
  assert.equal(created.status, 0, 'CreateCache');
  const set = await call(s, SET, setRequest('big', Buffer.alloc(MB, 'x')), { cache: 'c', auth: server.key });
  assert.equal(set.status, 0, 'Set big');
  s.close();
});
after(async () => { if (server) await server.stop(); });

test('GetBatch of a 1 MiB key 1000 times to a zero-window client is refused, memory bounded', async () => {
  const before = rss();
  const s = await connect(server.ports.api, { settings: { initialWindowSize: 0 } });
  const keys = Array(1000).fill('big');
  const r = await call(s, GET_BATCH, getBatchRequest(keys), { cache: 'c', auth: server.key });
  assert.equal(r.status, RESOURCE_EXHAUSTED, `status ${r.status} ${r.message}`);
  assert.match(r.message, /reply too large/);
  assert.ok(rss() - before < 200 * MB, `RSS grew by ${(rss() - before) / MB} MiB`);
  s.close();
});

test('what fits waits for a zero-window reader, which the write timeout cuts off', async () => {
  const before = rss();
  const s = await connect(server.ports.api, { settings: { initialWindowSize: 0 } });
  const keys = Array(20).fill('big');
  // The reply (20 MiB) cannot flow: the stream stays open until the server gives up.
  const pending = call(s, GET_BATCH, getBatchRequest(keys), { cache: 'c', auth: server.key, timeoutMs: 20000 })
    .catch((e) => e);
  await withTimeout(s.closedPromise, 15000, 'the server closes a connection that does not read');
  assert.ok(rss() - before < 200 * MB, `RSS grew by ${(rss() - before) / MB} MiB`);
  await pending;
  // A reader that reads gets the same batch whole.
  const ok = await connect(server.ports.api);
  const r = await call(ok, GET_BATCH, getBatchRequest(keys), { cache: 'c', auth: server.key });
  assert.equal(r.status, 0, describe(r));
  assert.equal(unframe(r.data).length, 20);
  ok.close();
  await sleep(10);
});
