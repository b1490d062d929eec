// Conformance: per-cache limits with tenant defaults (issue 7), through the unmodified SDK.
// Limits are set with the admin HTTP API (PATCH /v1/caches/NAME/limits?tenant=T,
// PATCH /v1/tenants/T/limits) or the --default-limits flag; everything else goes through
// CacheClient only: refusals must come back as the SDK's own error types, codes and wrapper
// texts, and ListCaches must report the limits in force.
//   limits:   one `cellar serve` with the admin key (tenant `default`) and a second tenant
//   defaults: --dev-no-auth --default-limits requests_per_second=20,max_ttl_seconds=1m,...
// Rates are token buckets with a burst of 250 ms of the rate (plus one request when idle), so
// the counts below allow burst + rate x elapsed time, never an exact number.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  CacheDictionarySetField,
  CacheGet,
  CacheIncrement,
  CacheListPushBack,
  CacheSet,
  CacheSetAddElement,
  CacheSortedSetPutElement,
  CacheUpdateTtl,
  CollectionTtl,
  CreateCache,
  InvalidArgumentError,
  LimitExceededError,
  ListCaches,
  MomentoErrorCode,
} from '@gomomento/sdk';

import {
  CellarServer, expectError, expectType, localCredentials, makeCacheClient, showResponse, sleep,
  tokenCredentials, uid, withServer,
} from '../lib/harness.mjs';

const LIMIT = MomentoErrorCode.LIMIT_EXCEEDED_ERROR;
const INVALID = MomentoErrorCode.INVALID_ARGUMENT_ERROR;
const TIMEOUT = { timeout: 10000 };
const KiB = 1024;

// SDK 1.118.1 wrapper texts (LimitExceededMessageWrapper). NB: that version picks the wrapper
// from the status details text, not from the `err` trailer (its constructor reads errCause
// before storing it), so these also check the server's details wording.
const W = {
  rate: 'Request rate limit exceeded for this account',
  bandwidth: 'Bandwidth limit exceeded for this account',
  item: 'Item size limit exceeded for this account',
  element: 'Element size limit exceeded for this account',
};

// The `err` trailer each wrapper goes with (the SDK keeps it as LimitExceededError.errCause).
const ERR_OF = {
  [W.rate]: 'operations_rate_limit_exceeded',
  [W.bandwidth]: 'throughput_rate_limit_exceeded',
  [W.item]: 'item_size_limit_exceeded',
  [W.element]: 'element_size_limit_exceeded',
};

/**
 * Assert a LIMIT_EXCEEDED response whose message is `<wrapper>: <details naming limitName>`
 * and whose `err` trailer is the matching Momento code.
 */
function expectLimit(resp, errCls, wrapper, limitName, what) {
  expectError(resp, errCls, LIMIT, what);
  assert.ok(resp.innerException() instanceof LimitExceededError, `${what}: LimitExceededError`);
  assert.equal(resp.innerException().errCause, ERR_OF[wrapper], `${what}: err trailer`);
  assert.ok(resp.message().startsWith(`${wrapper}: `), `${what}: message should start with "${wrapper}", got: ${resp.message()}`);
  assert.ok(resp.message().includes(`(${limitName})`), `${what}: message should name ${limitName}, got: ${resp.message()}`);
}

/** Run fn(i) for i < n all at once; returns { results, ms }. */
async function burst(n, fn) {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => fn(i)));
  return { results, ms: performance.now() - t0 };
}

/** Split responses into those of `okCls` and the rest. */
function split(results, okCls) {
  const ok = results.filter((r) => r instanceof okCls);
  return { ok, refused: results.filter((r) => !(r instanceof okCls)) };
}

/** Most responses a bucket of `rate`/s can let through in `ms` (burst 250 ms + 1 + slack). */
function maxAdmitted(rate, ms) {
  return Math.floor(rate * 0.25) + 1 + Math.ceil((rate * ms) / 1000) + 1;
}

/** Admin HTTP API of `server` with its admin key. */
function adminApi(server) {
  return async (method, path, body) => {
    const res = await fetch(`http://127.0.0.1:${server.ports.admin}${path}`, {
      method,
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = { raw: text }; }
    return { status: res.status, body: json };
  };
}

// =============================================================================================
describe('per-cache limits (admin API) through the SDK', () => {
  let server;
  let admin; // admin HTTP API
  let client; // CacheClient with the admin key: tenant `default`
  const clients = [];
  const it = (name, fn) => test(name, TIMEOUT, withServer(() => server, fn));

  before(async () => {
    server = await CellarServer.start({ name: 'limits' });
    admin = adminApi(server);
    client = await makeCacheClient(tokenCredentials(server, server.adminKey));
    clients.push(client);
  }, { timeout: 30000 });

  after(async () => {
    for (const c of clients) { try { c.close(); } catch { /* */ } }
    if (server) {
      await server.stop();
      server.cleanup();
    }
  });

  /** PATCH a cache's limits; asserts the answer shows them in force. */
  async function setCacheLimits(cache, limits, tenant = 'default') {
    const r = await admin('PATCH', `/v1/caches/${cache}/limits?tenant=${tenant}`, limits);
    assert.equal(r.status, 200, `PATCH limits of ${cache}: ${JSON.stringify(r.body)}`);
    for (const [k, v] of Object.entries(limits)) {
      assert.equal(r.body.effective?.[k], v, `${k} of ${cache} in force: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.source?.[k], 'cache', `${k} of ${cache} set on the cache`);
    }
    return r.body;
  }

  /** A new cache of tenant `default` with `limits` (if any). */
  async function newCache(prefix, limits, c = client) {
    const name = uid(prefix);
    expectType(await c.createCache(name), CreateCache.Success, `createCache(${name})`);
    if (limits) await setCacheLimits(name, limits);
    return name;
  }

  it('requests_per_second=20: of 200 concurrent gets a few pass, the rest are LIMIT_EXCEEDED (request rate)', async () => {
    const cache = await newCache('rps', { requests_per_second: 20 });
    const { results, ms } = await burst(200, () => client.get(cache, 'k'));
    const { ok, refused } = split(results, CacheGet.Miss);
    assert.ok(ok.length >= 1, `some gets pass (${ok.length} of 200)`);
    assert.ok(ok.length <= maxAdmitted(20, ms), `at most burst + 20/s x ${ms.toFixed(0)} ms pass, got ${ok.length}`);
    assert.ok(refused.length >= 150, `most are refused (${refused.length} of 200)`);
    for (const r of refused) {
      expectLimit(r, CacheGet.Error, W.rate, 'requests_per_second', 'throttled get');
    }
    assert.ok(refused[0].message().includes('this cache allows 20 operations per second'), refused[0].message());
  });

  it('write_bytes_per_second=10kib: a burst of 4 KiB sets is cut to the rate with LIMIT_EXCEEDED (bandwidth)', async () => {
    const cache = await newCache('wbps', { write_bytes_per_second: 10 * KiB });
    const value = new Uint8Array(4 * KiB).fill(0x77);
    const { results, ms } = await burst(20, (i) => client.set(cache, `w${i}`, value));
    const { ok, refused } = split(results, CacheSet.Success);
    assert.ok(ok.length >= 1, `some sets pass (${ok.length} of 20)`);
    // 10 KiB/s of 4 KiB (+ framing) requests: burst 2.5 KiB + one request, then 2.5 a second
    assert.ok(ok.length <= 2 + Math.ceil((2.5 * ms) / 1000) + 1, `sets passed in ${ms.toFixed(0)} ms: ${ok.length}`);
    assert.ok(refused.length >= 10, `most are refused (${refused.length} of 20)`);
    for (const r of refused) {
      expectLimit(r, CacheSet.Error, W.bandwidth, 'write_bytes_per_second', 'throttled set');
    }
    // The refused sets stored nothing. (Lift the limit first: a get's request bytes count as
    // written too, so gets would be refused while the bucket is over. 0 = unlimited.)
    await setCacheLimits(cache, { write_bytes_per_second: 0 });
    for (let i = 0; i < 20; i++) {
      const g = await client.get(cache, `w${i}`);
      expectType(g, results[i] instanceof CacheSet.Success ? CacheGet.Hit : CacheGet.Miss, `w${i} after ${results[i].type}`);
    }
  });

  it('read_bytes_per_second=10kib: a 64 KiB read passes, then the cache is in debt and reads are refused (bandwidth)', async () => {
    const cache = await newCache('rbps');
    const big = new Uint8Array(64 * KiB).fill(0x52);
    expectType(await client.set(cache, 'big', big), CacheSet.Success, 'set 64 KiB before the limit');
    expectType(await client.set(cache, 'small', 's'), CacheSet.Success, 'set a small value');
    await setCacheLimits(cache, { read_bytes_per_second: 10 * KiB });

    // The read is charged after its reply: the first one passes and leaves ~6 s of debt.
    const first = expectType(await client.get(cache, 'big'), CacheGet.Hit, 'first read of 64 KiB');
    assert.equal(first.valueUint8Array().length, 64 * KiB);
    expectLimit(await client.get(cache, 'big'), CacheGet.Error, W.bandwidth, 'read_bytes_per_second', 'second read of 64 KiB');
    // the debt is the cache's: a read of a tiny value is refused as well, and so is a burst
    expectLimit(await client.get(cache, 'small'), CacheGet.Error, W.bandwidth, 'read_bytes_per_second', 'read of a small value');
    const { results } = await burst(20, () => client.get(cache, 'big'));
    for (const r of results) {
      expectLimit(r, CacheGet.Error, W.bandwidth, 'read_bytes_per_second', 'burst of reads in debt');
    }
    assert.ok(results[0].message().includes('this cache allows 10240 bytes read per second'), results[0].message());
  });

  it('max_item_bytes=1kib: 1024 bytes are stored, 1025 and 2048 are LIMIT_EXCEEDED (item size); other caches keep the default', async () => {
    const cache = await newCache('item', { max_item_bytes: KiB });
    const other = await newCache('item-other');
    expectType(await client.set(cache, 'a', new Uint8Array(KiB).fill(1)), CacheSet.Success, 'set 1024 bytes');
    assert.equal(expectType(await client.get(cache, 'a'), CacheGet.Hit).valueUint8Array().length, KiB);
    for (const n of [KiB + 1, 2 * KiB]) {
      expectLimit(await client.set(cache, 'a', new Uint8Array(n).fill(2)), CacheSet.Error, W.item, 'max_item_bytes', `set ${n} bytes`);
      expectLimit(await client.set(cache, `new-${n}`, new Uint8Array(n).fill(2)), CacheSet.Error, W.item, 'max_item_bytes', `set ${n} bytes (new key)`);
      expectType(await client.get(cache, `new-${n}`), CacheGet.Miss, `nothing stored for ${n} bytes`);
    }
    assert.equal(expectType(await client.get(cache, 'a'), CacheGet.Hit).valueUint8Array()[0], 1, 'previous value unchanged');
    expectType(await client.set(other, 'a', new Uint8Array(2 * KiB)), CacheSet.Success, '2 KiB in a cache without the override');
  });

  it('max_element_bytes=1kib: dictionary, set, list and sorted-set elements over it are LIMIT_EXCEEDED (element size)', async () => {
    const cache = await newCache('elem', { max_element_bytes: KiB });
    const small = 'x'.repeat(100);
    const over = 'y'.repeat(2 * KiB);
    const cases = [
      ['dictionarySetField (value)', CacheDictionarySetField, (v) => client.dictionarySetField(cache, 'd', 'f', v)],
      ['dictionarySetField (field)', CacheDictionarySetField, (v) => client.dictionarySetField(cache, 'd', v, 'v')],
      ['setAddElement', CacheSetAddElement, (v) => client.setAddElement(cache, 's', v)],
      ['listPushBack', CacheListPushBack, (v) => client.listPushBack(cache, 'l', v)],
      ['sortedSetPutElement', CacheSortedSetPutElement, (v) => client.sortedSetPutElement(cache, 'z', v, 1)],
    ];
    for (const [what, cls, call] of cases) {
      expectType(await call(small), cls.Success, `${what} with a 100-byte element`);
      const r = await call(over);
      expectLimit(r, cls.Error, W.element, 'max_element_bytes', `${what} with a 2 KiB element`);
    }
    // nothing of the refused writes was stored
    const d = await client.dictionaryFetch(cache, 'd');
    assert.deepEqual(Object.keys(d.valueRecord()).sort(), ['f', small].sort(), 'dictionary fields');
    assert.equal(d.valueRecord().f, small, 'dictionary value unchanged');
    assert.deepEqual((await client.setFetch(cache, 's')).valueArray(), [small]);
    assert.deepEqual((await client.listFetch(cache, 'l')).valueList(), [small]);
  });

  it('max_ttl_seconds=60: ttl 120 s is INVALID_ARGUMENT ("TTL too long"), 30 s and 60 s are stored', async () => {
    const cache = await newCache('ttl', { max_ttl_seconds: 60 });
    const r = await client.set(cache, 'k', 'v', { ttl: 120 });
    expectError(r, CacheSet.Error, INVALID, 'set with ttl 120 s');
    assert.ok(r.innerException() instanceof InvalidArgumentError, 'InvalidArgumentError');
    assert.ok(r.message().includes('TTL too long: this cache allows TTLs of at most 60 seconds (max_ttl_seconds)'),
      `message: ${r.message()}`);
    expectType(await client.get(cache, 'k'), CacheGet.Miss, 'nothing stored');

    expectType(await client.set(cache, 'k', 'v30', { ttl: 30 }), CacheSet.Success, 'set with ttl 30 s');
    assert.equal(expectType(await client.get(cache, 'k'), CacheGet.Hit).valueString(), 'v30');
    expectType(await client.set(cache, 'k60', 'v60', { ttl: 60 }), CacheSet.Success, 'set with ttl 60 s (the limit)');
    // The SDK always sends a TTL: without one it sends the client default (300 s here).
    expectError(await client.set(cache, 'k', 'v'), CacheSet.Error, INVALID, 'set with the client default ttl of 300 s');
    // collection TTLs are capped too
    expectError(await client.dictionarySetField(cache, 'd', 'f', 'v', { ttl: CollectionTtl.of(120) }),
      CacheDictionarySetField.Error, INVALID, 'dictionarySetField with a collection ttl of 120 s');
    expectType(await client.dictionarySetField(cache, 'd', 'f', 'v', { ttl: CollectionTtl.of(30) }),
      CacheDictionarySetField.Success, 'dictionarySetField with a collection ttl of 30 s');
    // and so are the TTL-changing calls
    expectError(await client.increment(cache, 'n', 1, { ttl: 120 }), CacheIncrement.Error, INVALID, 'increment with ttl 120 s');
    expectError(await client.updateTtl(cache, 'k', 120_000), CacheUpdateTtl.Error, INVALID, 'updateTtl to 120 s');
    expectType(await client.updateTtl(cache, 'k', 45_000), CacheUpdateTtl.Set, 'updateTtl to 45 s');
  });

  it('raising requests_per_second from 5 to 100000 at run time lifts the throttling within 1 s', async () => {
    const cache = await newCache('raise', { requests_per_second: 5 });
    const before = split((await burst(50, () => client.get(cache, 'k'))).results, CacheGet.Miss);
    assert.ok(before.refused.length >= 40, `throttled at 5/s: ${before.refused.length} of 50 refused`);
    expectLimit(before.refused[0], CacheGet.Error, W.rate, 'requests_per_second', 'at 5/s');

    const t0 = performance.now();
    await setCacheLimits(cache, { requests_per_second: 100000 });
    let last;
    for (;;) {
      const { results } = await burst(100, () => client.get(cache, 'k'));
      last = split(results, CacheGet.Miss);
      if (last.refused.length === 0) break;
      if (performance.now() - t0 > 1000) break;
      await sleep(50);
    }
    const ms = performance.now() - t0;
    assert.equal(last.refused.length, 0,
      `a burst of 100 gets all pass within 1 s of the change (after ${ms.toFixed(0)} ms: ` +
      `${last.refused.length} refused, e.g. ${showResponse(last.refused[0])})`);
    assert.ok(ms <= 1000, `took ${ms.toFixed(0)} ms`);
  });

  // Server bug (reported): RateBucket::set_rate keeps the bucket's theoretical arrival time,
  // so debt run up at the old rate (a read charged after its reply, or one write bigger than
  // the burst) is still paid off at the old rate after the limit is raised: here ~6 s.
  test('raising read_bytes_per_second lifts a read debt within 1 s',
    // (not wrapped in withServer: an expected failure keeps no data dir and prints no log)
    TIMEOUT,
    async () => {
      const cache = await newCache('rdebt');
      expectType(await client.set(cache, 'big', new Uint8Array(64 * KiB)), CacheSet.Success);
      await setCacheLimits(cache, { read_bytes_per_second: 10 * KiB });
      expectType(await client.get(cache, 'big'), CacheGet.Hit, 'first read of 64 KiB');
      expectLimit(await client.get(cache, 'big'), CacheGet.Error, W.bandwidth, 'read_bytes_per_second', 'in debt');

      const t0 = performance.now();
      await setCacheLimits(cache, { read_bytes_per_second: 256 * 1024 * KiB });
      let r;
      do {
        r = await client.get(cache, 'big');
        if (r instanceof CacheGet.Hit) break;
        await sleep(50);
      } while (performance.now() - t0 < 1000);
      expectType(r, CacheGet.Hit, `a read ${(performance.now() - t0).toFixed(0)} ms after raising the limit to 256 MiB/s`);
    });

  it('ListCaches reports each cache\'s limits in force (cache overrides over server defaults)', async () => {
    const cache = await newCache('list', {
      requests_per_second: 123,
      read_bytes_per_second: 20 * KiB,
      write_bytes_per_second: 40 * KiB,
      max_item_bytes: 2 * KiB,
      max_ttl_seconds: 3600,
      publish_per_second: 7,
      max_subscriptions: 9,
      max_message_bytes: 3 * KiB,
    });
    const plain = await newCache('list-plain');
    const l = expectType(await client.listCaches(), ListCaches.Success, 'listCaches');
    const info = (name) => {
      const c = l.getCaches().find((x) => x.getName() === name);
      assert.ok(c, `${name} listed`);
      return c;
    };
    assert.deepEqual(info(cache).getCacheLimits(),
      { maxTrafficRate: 123, maxThroughputKbps: 20, maxItemSizeKb: 2, maxTtlSeconds: 3600 });
    assert.deepEqual(info(cache).getTopicLimits(),
      { maxPublishRate: 7, maxSubscriptionCount: 9, maxPublishMessageSizeKb: 3 });
    // server defaults: 100000 requests/s, 256 MiB/s, 4883 KiB items, 100000 publishes/s and
    // subscriptions, 100 KiB messages; an unlimited TTL is reported as a huge number, not 0
    const p = info(plain).getCacheLimits();
    assert.equal(p.maxTrafficRate, 100000);
    assert.equal(p.maxThroughputKbps, 256 * 1024);
    assert.equal(p.maxItemSizeKb, 4883);
    assert.ok(p.maxTtlSeconds >= 2 ** 32, `unlimited TTL reported as ${p.maxTtlSeconds}`);
    assert.deepEqual(info(plain).getTopicLimits(),
      { maxPublishRate: 100000, maxSubscriptionCount: 100000, maxPublishMessageSizeKb: 100 });
  });

  it('per-cache buckets: while one cache is throttled, caches of the same tenant are not', async () => {
    const hot = await newCache('hot', { requests_per_second: 20 });
    const twin = await newCache('twin', { requests_per_second: 20 }); // same limit, own bucket
    const plain = await newCache('cool'); // no override
    const [h, t, p] = await Promise.all([
      burst(200, () => client.get(hot, 'k')),
      burst(5, () => client.get(twin, 'k')),
      burst(100, () => client.get(plain, 'k')),
    ]);
    const hs = split(h.results, CacheGet.Miss);
    assert.ok(hs.refused.length >= 150, `the hot cache is throttled (${hs.refused.length} of 200 refused)`);
    for (const r of hs.refused) expectLimit(r, CacheGet.Error, W.rate, 'requests_per_second', 'hot cache');
    for (const r of t.results) expectType(r, CacheGet.Miss, 'a cache with the same limit, its own bucket');
    for (const r of p.results) expectType(r, CacheGet.Miss, 'a cache without an override');
    // and the hot cache's refusals did not use up the others' allowance
    const again = await burst(50, () => client.get(plain, 'k'));
    for (const r of again.results) expectType(r, CacheGet.Miss, 'plain cache after the burst');
  });

  it('tenant defaults: PATCH /v1/tenants/T/limits applies to its caches unless a cache overrides it', async () => {
    const tenant = uid('lt').replace(/-/g, '_');
    assert.equal((await admin('POST', `/v1/tenants/${tenant}`)).status, 201, 'create tenant');
    const minted = await admin('POST', `/v1/tokens?${new URLSearchParams({ tenant, super_user: 1 })}`);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const tc = await makeCacheClient(tokenCredentials(server, minted.body.token));
    clients.push(tc);
    const a = uid('ta');
    const b = uid('tb');
    expectType(await tc.createCache(a), CreateCache.Success);
    expectType(await tc.createCache(b), CreateCache.Success);

    const tr = await admin('PATCH', `/v1/tenants/${tenant}/limits`, { requests_per_second: 77, max_ttl_seconds: 600 });
    assert.equal(tr.status, 200, JSON.stringify(tr.body));
    assert.equal(tr.body.effective.requests_per_second, 77);
    await setCacheLimits(b, { requests_per_second: 33 }, tenant);
    const cr = await admin('GET', `/v1/caches/${b}/limits?tenant=${tenant}`);
    assert.equal(cr.status, 200);
    assert.equal(cr.body.source.max_ttl_seconds, 'tenant');
    assert.equal(cr.body.effective.max_ttl_seconds, 600);

    const l = expectType(await tc.listCaches(), ListCaches.Success, 'listCaches of the tenant');
    const lim = Object.fromEntries(l.getCaches().map((c) => [c.getName(), c.getCacheLimits()]));
    assert.deepEqual(Object.keys(lim).sort(), [a, b].sort());
    assert.equal(lim[a].maxTrafficRate, 77, 'tenant default');
    assert.equal(lim[a].maxTtlSeconds, 600, 'tenant default');
    assert.equal(lim[b].maxTrafficRate, 33, 'cache override wins');
    assert.equal(lim[b].maxTtlSeconds, 600, 'tenant default where the cache sets nothing');

    // enforced: the tenant's TTL cap on both caches
    expectError(await tc.set(a, 'k', 'v', { ttl: 900 }), CacheSet.Error, INVALID, 'ttl 900 s in a');
    expectError(await tc.set(b, 'k', 'v', { ttl: 900 }), CacheSet.Error, INVALID, 'ttl 900 s in b');
    expectType(await tc.set(a, 'k', 'v', { ttl: 600 }), CacheSet.Success, 'ttl 600 s in a');
    // the tenant `default`'s caches are untouched
    const mine = await newCache('untouched');
    expectType(await client.set(mine, 'k', 'v', { ttl: 900 }), CacheSet.Success, 'ttl 900 s in another tenant');
  });
});

// =============================================================================================
describe('--default-limits', () => {
  let server;
  let client;
  const it = (name, fn) => test(name, TIMEOUT, withServer(() => server, fn));

  before(async () => {
    server = await CellarServer.start({
      name: 'default-limits',
      devNoAuth: true,
      extraArgs: ['--default-limits', 'requests_per_second=20,max_ttl_seconds=1m,max_item_bytes=2kib'],
    });
    client = await makeCacheClient(localCredentials(server), { defaultTtlSeconds: 30 });
  }, { timeout: 30000 });

  after(async () => {
    try { client?.close(); } catch { /* */ }
    if (server) {
      await server.stop();
      server.cleanup();
    }
  });

  it('every new cache gets the flag\'s limits: listed, and enforced', async () => {
    const cache = uid('dflt');
    expectType(await client.createCache(cache), CreateCache.Success);
    const l = expectType(await client.listCaches(), ListCaches.Success);
    const c = l.getCaches().find((x) => x.getName() === cache);
    assert.ok(c, 'listed');
    assert.equal(c.getCacheLimits().maxTrafficRate, 20);
    assert.equal(c.getCacheLimits().maxTtlSeconds, 60);
    assert.equal(c.getCacheLimits().maxItemSizeKb, 2);

    expectError(await client.set(cache, 'k', 'v', { ttl: 61 }), CacheSet.Error, INVALID, 'ttl 61 s');
    expectLimit(await client.set(cache, 'k', new Uint8Array(2 * KiB + 1)), CacheSet.Error, W.item, 'max_item_bytes', '2 KiB + 1');
    await sleep(300); // let the bucket refill after the calls above
    const { results, ms } = await burst(100, () => client.get(cache, 'k'));
    const { ok, refused } = split(results, CacheGet.Miss);
    assert.ok(ok.length >= 1 && ok.length <= maxAdmitted(20, ms), `passed: ${ok.length} in ${ms.toFixed(0)} ms`);
    for (const r of refused) expectLimit(r, CacheGet.Error, W.rate, 'requests_per_second', 'throttled get');
  });
});
