// Conformance: `cellar serve --momento-local`, a drop-in for Momento's local test server, as
// SDK users drive it to test their retry and outage handling. The unmodified SDK sends the
// fault-injection metadata with its own ExperimentalMomentoLocalTestConfigMiddleware; its own
// retry strategies and eligibility rules decide what is retried. Each test counts the attempts
// that reached the wire with a late middleware (one onRequestBody per attempt, after the
// SDK's retry interceptor), and checks the mechanism (attempts, codes, callbacks), never a
// duration beyond "at least the delay asked for".
// Servers:
//   local: --momento-local (free ports: the tests never depend on 8080/9090 being free),
//          200 ms heartbeats
//   plain: --dev-no-auth without --momento-local: the same metadata is ignored
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

import {
  CacheClient, CacheGet, CacheIncrement, CacheSet, Configurations, MomentoErrorCode,
  TopicConfigurations, TopicClient, TopicPublish, TopicSubscribe,
} from '@gomomento/sdk';

import {
  CellarServer, expectError, expectType, localCredentials, loggerFactory, sleep, uid, withServer,
} from '../lib/harness.mjs';
import { closeTopicClient, subscribeRecorded, waitUntil } from '../lib/topics_helpers.mjs';

// The SDK's own middleware and RPC names, not re-exported from its index (SDK 1.118.1 paths).
const require = createRequire(import.meta.url);
const { ExperimentalMomentoLocalTestConfigMiddleware } = require(
  '@gomomento/sdk/dist/src/config/middleware/experimental-momento-local-test-config-middleware.js');
const { MomentoRPCMethod } = require('@gomomento/sdk/dist/src/config/retry/momento-rpc-method.js');

const UNAVAILABLE = MomentoErrorCode.SERVER_UNAVAILABLE;
const TIMEOUT = MomentoErrorCode.TIMEOUT_ERROR;
const NOT_FOUND = MomentoErrorCode.NOT_FOUND_ERROR;
const INVALID = MomentoErrorCode.INVALID_ARGUMENT_ERROR;

/** A late middleware counting the attempts that reach the wire, by request message type. */
class AttemptCounter {
  shouldLoadLate = true;
  counts = new Map();
  of(name) { return this.counts.get(name) ?? 0; }
  onNewRequest() {
    const counts = this.counts;
    return {
      onRequestMetadata: async (m) => m,
      onRequestBody: async (r) => {
        counts.set(r.constructorName(), (counts.get(r.constructorName()) ?? 0) + 1);
        return r;
      },
      onResponseMetadata: async (m) => m,
      onResponseBody: async (r) => r,
      onResponseStatus: async (s) => s,
    };
  }
}

/** The fault metadata of one test: a fresh request-id, the rest as given. */
function faults(meta) {
  return new ExperimentalMomentoLocalTestConfigMiddleware({ requestId: randomUUID(), ...meta });
}

function credentials(server) {
  return localCredentials(server); // 127.0.0.1:<api port>, plaintext, empty token
}

describe('momento-local', () => {
  let local;
  let plain;
  const clients = [];
  const topicClients = [];

  before(async () => {
    [local, plain] = await Promise.all([
      CellarServer.start({ name: 'momento-local', extraArgs: ['--momento-local', '--topic-heartbeat-ms', '200'] }),
      CellarServer.start({ name: 'plain', devNoAuth: true }),
    ]);
    for (const s of [local, plain]) {
      const c = await cacheClient(s, []);
      expectType(await c.createCache('t'), (await import('@gomomento/sdk')).CreateCache.Success);
    }
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const tc of topicClients) closeTopicClient(tc);
    await Promise.all([local?.stop(), plain?.stop()]);
  });

  async function cacheClient(server, middlewares, { timeoutMs } = {}) {
    let configuration = Configurations.Laptop.v1(loggerFactory).withMiddlewares(middlewares);
    if (timeoutMs !== undefined) configuration = configuration.withClientTimeoutMillis(timeoutMs);
    const c = await CacheClient.create({
      configuration, credentialProvider: credentials(server), defaultTtlSeconds: 60, eagerConnectTimeout: 10,
    });
    clients.push(c);
    return c;
  }
  function topicClient(server, middlewares, { timeoutMs } = {}) {
    let configuration = TopicConfigurations.Default.latest(loggerFactory).withMiddlewares(middlewares);
    if (timeoutMs !== undefined) configuration = configuration.withClientTimeoutMillis(timeoutMs);
    const tc = new TopicClient({ configuration, credentialProvider: credentials(server) });
    topicClients.push(tc);
    return tc;
  }
  const it = (title, fn, timeout = 20000) => test(title, { timeout }, withServer(() => local, fn));

  it('a retryable call (get) under a full outage: 4 attempts (the SDK retries 3 times), then SERVER_UNAVAILABLE', async () => {
    const n = new AttemptCounter();
    const c = await cacheClient(local, [faults({ returnError: UNAVAILABLE, errorRpcs: [MomentoRPCMethod.Get] }), n]);
    expectError(await c.get('t', uid()), CacheGet.Error, UNAVAILABLE, 'get');
    assert.equal(n.of('_GetRequest'), 4);
    // Only the RPCs named fail: a set with the same metadata is served.
    expectType(await c.set('t', uid(), 'v'), CacheSet.Success);
  });

  it('a non-idempotent call (increment) is not retried: 1 attempt', async () => {
    const n = new AttemptCounter();
    const c = await cacheClient(local, [faults({ returnError: UNAVAILABLE, errorRpcs: [MomentoRPCMethod.Increment] }), n]);
    expectError(await c.increment('t', uid(), 1), CacheIncrement.Error, UNAVAILABLE, 'increment');
    assert.equal(n.of('_IncrementRequest'), 1);
  });

  it('error-count 2: the first two attempts fail, the third is served (a Miss)', async () => {
    const n = new AttemptCounter();
    const c = await cacheClient(local, [faults({ returnError: UNAVAILABLE, errorRpcs: [MomentoRPCMethod.Get], errorCount: 2 }), n]);
    expectType(await c.get('t', uid()), CacheGet.Miss);
    assert.equal(n.of('_GetRequest'), 3);
    // The count belongs to the request-id: later calls of this client are served at once.
    expectType(await c.get('t', uid()), CacheGet.Miss);
    assert.equal(n.of('_GetRequest'), 4);
  });

  it('a status the SDK does not retry (not-found) is answered once, as NOT_FOUND', async () => {
    const n = new AttemptCounter();
    const c = await cacheClient(local, [faults({ returnError: MomentoErrorCode.NOT_FOUND_ERROR, errorRpcs: [MomentoRPCMethod.Get] }), n]);
    expectError(await c.get('t', uid()), CacheGet.Error, NOT_FOUND, 'get');
    assert.equal(n.of('_GetRequest'), 1);
  });

  it('delay-ms: a call is answered no sooner than asked; past the client deadline it is a TIMEOUT_ERROR', async () => {
    const slow = await cacheClient(local, [faults({ delayRpcs: [MomentoRPCMethod.Get], delayMs: 300 })]);
    const t0 = Date.now();
    expectType(await slow.get('t', uid()), CacheGet.Miss);
    assert.ok(Date.now() - t0 >= 300, `answered after ${Date.now() - t0} ms, asked for 300`);
    const late = await cacheClient(local, [faults({ delayRpcs: [MomentoRPCMethod.Get], delayMs: 3000 })], { timeoutMs: 500 });
    expectError(await late.get('t', uid()), CacheGet.Error, TIMEOUT, 'get past its deadline');
  });

  it('delay and error together, each counted: one slow failure, then a retry that is served', async () => {
    const n = new AttemptCounter();
    const c = await cacheClient(local, [faults({
      returnError: UNAVAILABLE, errorRpcs: [MomentoRPCMethod.Get], errorCount: 1,
      delayRpcs: [MomentoRPCMethod.Get], delayMs: 200, delayCount: 1,
    }), n]);
    const t0 = Date.now();
    expectType(await c.get('t', uid()), CacheGet.Miss);
    assert.ok(Date.now() - t0 >= 200);
    assert.equal(n.of('_GetRequest'), 2);
  });

  it('metadata momento-local would not understand is INVALID_ARGUMENT, saying which', async () => {
    const n = new AttemptCounter();
    const bad = new ExperimentalMomentoLocalTestConfigMiddleware({ requestId: randomUUID(), errorRpcs: [MomentoRPCMethod.Get] });
    // No return-error with error-rpcs: nothing to return.
    const c = await cacheClient(local, [bad, n]);
    const e = expectError(await c.get('t', uid()), CacheGet.Error, INVALID, 'get');
    assert.match(e.message(), /return-error/);
    assert.equal(n.of('_GetRequest'), 1);
  });

  it('publish is never retried; a delayed publish past the deadline is a TIMEOUT_ERROR', async () => {
    const n = new AttemptCounter();
    const tc = topicClient(local, [faults({ returnError: UNAVAILABLE, errorRpcs: [MomentoRPCMethod.TopicPublish] }), n]);
    expectError(await tc.publish('t', 'topic', 'x'), TopicPublish.Error, UNAVAILABLE, 'publish');
    assert.equal(n.of('_PublishRequest'), 1);
    const slow = topicClient(local, [faults({ delayRpcs: [MomentoRPCMethod.TopicPublish], delayMs: 2000 })], { timeoutMs: 500 });
    expectError(await slow.publish('t', 'topic', 'x'), TopicPublish.Error, TIMEOUT, 'publish past its deadline');
  });

  it('a mid-stream UNAVAILABLE: the SDK reconnects by itself, no onError, and resumes without a gap', async () => {
    // Every stream of this subscription ends after 3 messages (a heartbeat first, then items):
    // the five items arrive over several streams, each resuming after the last item seen.
    const topic = uid('topic');
    const tc = topicClient(local, [faults({
      streamErrorRpcs: [MomentoRPCMethod.TopicSubscribe], streamError: 'unavailable', streamErrorMessageLimit: 3,
    })]);
    const publisher = topicClient(local, []);
    const rec = await subscribeRecorded(tc, 't', topic);
    assert.ok(rec.subscription, `subscribe gave ${rec.response}`);
    for (let i = 0; i < 5; i++) expectType(await publisher.publish('t', topic, `m${i}`), TopicPublish.Success);
    await rec.waitItems(5, 10000);
    assert.deepEqual(rec.items.map((x) => x.value()), ['m0', 'm1', 'm2', 'm3', 'm4']);
    assert.deepEqual(rec.seqs(), [1, 2, 3, 4, 5], 'in order, each once');
    assert.ok(rec.connectionLost >= 2, `the streams ended ${rec.connectionLost} times (5 items, 3 messages a stream)`);
    assert.equal(rec.errors.length, 0, 'UNAVAILABLE is resubscribed, not reported');
    assert.equal(rec.discontinuities.length, 0, 'resumed where it left off');
    rec.unsubscribe();
  });

  it('a mid-stream NOT_FOUND ends the subscription through onError', async () => {
    const tc = topicClient(local, [faults({
      streamErrorRpcs: [MomentoRPCMethod.TopicSubscribe], streamError: 'not-found', streamErrorMessageLimit: 3,
    })]);
    const rec = await subscribeRecorded(tc, 't', uid('topic'));
    assert.ok(rec.subscription, `subscribe gave ${rec.response}`);
    await waitUntil(() => rec.errors.length >= 1, 5000, 'onError', rec.describe);
    assert.equal(rec.errors[0].errorCode(), NOT_FOUND);
    await waitUntil(() => rec.ended >= 1, 5000, 'onSubscriptionEnd', rec.describe);
    await sleep(1000);
    assert.equal(rec.errors.length, 1, 'not resubscribed');
  });

  it('a subscribe delayed past the client deadline is a TIMEOUT_ERROR', async () => {
    const tc = topicClient(local, [faults({ delayRpcs: [MomentoRPCMethod.TopicSubscribe], delayMs: 3000 })], { timeoutMs: 500 });
    const r = await tc.subscribe('t', uid('topic'), { onItem: () => {}, onError: () => {} });
    assert.ok(r instanceof TopicSubscribe.Error, `subscribe gave ${r}`);
    assert.equal(r.errorCode(), TIMEOUT);
  });

  it('GET /block: calls fail and subscriptions lose their connection until GET /unblock', async () => {
    const topic = uid('topic');
    const c = await cacheClient(local, [], { timeoutMs: 2000 });
    const tc = topicClient(local, []);
    const rec = await subscribeRecorded(tc, 't', topic);
    assert.ok(rec.subscription);
    await waitUntil(() => rec.heartbeats >= 2, 5000, 'heartbeats', rec.describe);
    const admin = `http://127.0.0.1:${local.ports.admin}`;
    try {
      assert.equal((await fetch(`${admin}/block`)).status, 200);
      await waitUntil(() => rec.connectionLost >= 1, 5000, 'onConnectionLost', rec.describe);
      const r = await c.get('t', uid());
      assert.ok(r instanceof CacheGet.Error, `a get while blocked gave ${r}`);
      assert.ok([UNAVAILABLE, TIMEOUT].includes(r.errorCode()), r.errorCode());
      const beats = rec.heartbeats;
      await sleep(600);
      assert.equal(rec.heartbeats, beats, 'no heartbeats while blocked');
    } finally {
      assert.equal((await fetch(`${admin}/unblock`)).status, 200);
    }
    const beats = rec.heartbeats;
    await waitUntil(() => rec.heartbeats > beats, 10000, 'heartbeats after /unblock', rec.describe);
    expectType(await c.get('t', uid()), CacheGet.Miss);
    assert.equal(rec.errors.length, 0);
    rec.unsubscribe();
  }, 30000);

  test('a server without --momento-local ignores the fault metadata and has no /block', { timeout: 20000 },
    withServer(() => plain, async () => {
      const n = new AttemptCounter();
      const c = await cacheClient(plain, [faults({ returnError: UNAVAILABLE, errorRpcs: [MomentoRPCMethod.Get] }), n]);
      expectType(await c.get('t', uid()), CacheGet.Miss);
      assert.equal(n.of('_GetRequest'), 1);
      assert.equal((await fetch(`http://127.0.0.1:${plain.ports.admin}/block`)).status, 404);
    }));
});
