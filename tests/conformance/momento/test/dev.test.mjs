// Conformance: the unmodified Momento Node SDK (@gomomento/sdk 1.118.1) against one
// `cellar serve --dev-no-auth` instance (plaintext gRPC, empty token, cache "default" exists).
// Control plane, scalar get/set/delete, every conditional set, hashes, increment, TTLs,
// key existence, batches, expiry, NOT_FOUND and RESP <-> SDK cross-protocol checks.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  CacheDecreaseTtl,
  CacheDelete,
  CacheFlush,
  CacheGet,
  CacheGetBatch,
  CacheGetWithHash,
  CacheIncreaseTtl,
  CacheIncrement,
  CacheItemGetTtl,
  CacheItemGetType,
  CacheKeyExists,
  CacheKeysExist,
  CacheNotFoundError,
  CacheSet,
  CacheSetBatch,
  CacheSetIfAbsent,
  CacheSetIfAbsentOrEqual,
  CacheSetIfAbsentOrHashEqual,
  CacheSetIfAbsentOrHashNotEqual,
  CacheSetIfEqual,
  CacheSetIfNotEqual,
  CacheSetIfNotExists,
  CacheSetIfPresent,
  CacheSetIfPresentAndHashEqual,
  CacheSetIfPresentAndHashNotEqual,
  CacheSetIfPresentAndNotEqual,
  CacheSetWithHash,
  CacheUpdateTtl,
  CreateCache,
  DeleteCache,
  FailedPreconditionError,
  ItemType,
  ListCaches,
  MomentoErrorCode,
  CacheGetResponse,
} from '@gomomento/sdk';
import { commandOptions } from 'redis';

import {
  CellarServer,
  allBytes,
  expectError,
  expectType,
  localCredentials,
  makeCacheClient,
  makeRespClient,
  sleep,
  uid,
  withServer,
} from '../lib/harness.mjs';

const NOT_FOUND = MomentoErrorCode.NOT_FOUND_ERROR; // "NOT_FOUND_ERROR"
const TIMEOUT = { timeout: 20000 };

let server;
const DEFAULT_TTL_SECONDS = 300;
let client; // CacheClient, defaultTtlSeconds DEFAULT_TTL_SECONDS
let CACHE; // a cache created for this run
const servers = () => server;
const it = (name, fn, opts = TIMEOUT) => test(name, opts, withServer(servers, fn));

before(async () => {
  server = await CellarServer.start({ devNoAuth: true, name: 'dev' });
  client = await makeCacheClient(localCredentials(server), { defaultTtlSeconds: DEFAULT_TTL_SECONDS });
  CACHE = uid('conf');
  const r = await client.createCache(CACHE);
  expectType(r, CreateCache.Success, `createCache(${CACHE})`);
}, { timeout: 30000 });

after(async () => {
  try { client?.close(); } catch { /* */ }
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

// Small helpers bound to the run's cache -----------------------------------------------------

async function getHit(key, cache = CACHE) {
  const r = await client.get(cache, key);
  return expectType(r, CacheGet.Hit, `get(${cache}, ${fmtKey(key)})`);
}
async function getString(key, cache = CACHE) {
  return (await getHit(key, cache)).valueString();
}
async function expectMiss(key, cache = CACHE) {
  const r = await client.get(cache, key);
  expectType(r, CacheGet.Miss, `get(${cache}, ${fmtKey(key)})`);
  assert.equal(r.type, CacheGetResponse.Miss);
}
async function put(key, value, opts) {
  expectType(await client.set(CACHE, key, value, opts), CacheSet.Success, `set(${fmtKey(key)})`);
}
async function hashOf(key) {
  const r = expectType(await client.getWithHash(CACHE, key), CacheGetWithHash.Hit, `getWithHash(${fmtKey(key)})`);
  return r.hashUint8Array();
}
function fmtKey(k) {
  return typeof k === 'string' ? JSON.stringify(k) : `bytes[${k.length}]`;
}
async function remainingTtl(key) {
  const r = expectType(await client.itemGetTtl(CACHE, key), CacheItemGetTtl.Hit, `itemGetTtl(${fmtKey(key)})`);
  return r.remainingTtlMillis();
}

// ---------------------------------------------------------------------------------------------
describe('control plane', () => {
  it('createCache: Success, then AlreadyExists; listCaches lists it with the default limits', async () => {
    const name = uid('cc');
    const r1 = await client.createCache(name);
    expectType(r1, CreateCache.Success, 'first createCache');
    const r2 = await client.createCache(name);
    expectType(r2, CreateCache.AlreadyExists, 'second createCache');

    const l = expectType(await client.listCaches(), ListCaches.Success, 'listCaches');
    const info = l.getCaches().find((c) => c.getName() === name);
    assert.ok(info, `listCaches contains ${name}; got ${l.getCaches().map((c) => c.getName()).join(',')}`);
    // The server's defaults (control/limits.cc), at least as generous as Momento's
    // (500 requests/s, 10240 KiB/s, 4883 KiB items, 86400 s TTL); an unlimited TTL is reported
    // as the largest integer a JavaScript number holds exactly.
    assert.deepEqual({ ...info.getCacheLimits() }, {
      maxTrafficRate: 100000,
      maxThroughputKbps: 262144,
      maxItemSizeKb: 4883,
      maxTtlSeconds: Number.MAX_SAFE_INTEGER,
    }, 'cache limits');
    // The limits the server enforces (cellar serve --topic-* defaults).
    assert.deepEqual({ ...info.getTopicLimits() }, {
      maxPublishRate: 100000,
      maxSubscriptionCount: 100000,
      maxPublishMessageSizeKb: 100,
    }, 'topic limits');
    expectType(await client.deleteCache(name), DeleteCache.Success, 'deleteCache');
  });

  it('dev mode: the cache "default" exists and is listed', async () => {
    const l = expectType(await client.listCaches(), ListCaches.Success, 'listCaches');
    assert.ok(l.getCaches().some((c) => c.getName() === 'default'), 'listCaches contains "default"');
    const k = uid('dflt');
    expectType(await client.get('default', k), CacheGet.Miss, 'get on default');
  });

  it('flushCache removes every item and keeps the cache', async () => {
    const name = uid('fl');
    expectType(await client.createCache(name), CreateCache.Success);
    const keys = ['a', 'b', 'c'].map((s) => uid(s));
    for (const k of keys) expectType(await client.set(name, k, `v-${k}`), CacheSet.Success);
    for (const k of keys) await getHit(k, name);
    expectType(await client.flushCache(name), CacheFlush.Success, 'flushCache');
    for (const k of keys) await expectMiss(k, name);
    // still usable after the flush
    expectType(await client.set(name, keys[0], 'again'), CacheSet.Success, 'set after flush');
    assert.equal(await getString(keys[0], name), 'again');
    expectType(await client.deleteCache(name), DeleteCache.Success);
  });

  it('deleteCache: Success; the cache is gone (get -> NOT_FOUND, not listed, delete again -> NOT_FOUND)', async () => {
    const name = uid('del');
    expectType(await client.createCache(name), CreateCache.Success);
    const k = uid('k');
    expectType(await client.set(name, k, 'v'), CacheSet.Success);
    expectType(await client.deleteCache(name), DeleteCache.Success, 'deleteCache');

    const g = await client.get(name, k);
    expectError(g, CacheGet.Error, NOT_FOUND, 'get on deleted cache');
    assert.ok(g.innerException() instanceof CacheNotFoundError, 'inner exception is CacheNotFoundError');

    const l = expectType(await client.listCaches(), ListCaches.Success);
    assert.ok(!l.getCaches().some((c) => c.getName() === name), 'deleted cache not listed');

    expectError(await client.deleteCache(name), DeleteCache.Error, NOT_FOUND, 'deleteCache twice');
    // it can be created again, and starts empty
    expectType(await client.createCache(name), CreateCache.Success, 'recreate');
    expectType(await client.get(name, k), CacheGet.Miss, 'recreated cache is empty');
    expectType(await client.deleteCache(name), DeleteCache.Success);
  });

  it('a never-created cache gives NOT_FOUND_ERROR on every call', async () => {
    const name = uid('never');
    const k = 'k';
    expectError(await client.get(name, k), CacheGet.Error, NOT_FOUND, 'get');
    expectError(await client.set(name, k, 'v'), CacheSet.Error, NOT_FOUND, 'set');
    expectError(await client.delete(name, k), CacheDelete.Error, NOT_FOUND, 'delete');
    expectError(await client.setIfAbsent(name, k, 'v'), CacheSetIfAbsent.Error, NOT_FOUND, 'setIfAbsent');
    expectError(await client.getWithHash(name, k), CacheGetWithHash.Error, NOT_FOUND, 'getWithHash');
    expectError(await client.setWithHash(name, k, 'v'), CacheSetWithHash.Error, NOT_FOUND, 'setWithHash');
    expectError(await client.increment(name, k, 1), CacheIncrement.Error, NOT_FOUND, 'increment');
    expectError(await client.itemGetTtl(name, k), CacheItemGetTtl.Error, NOT_FOUND, 'itemGetTtl');
    expectError(await client.itemGetType(name, k), CacheItemGetType.Error, NOT_FOUND, 'itemGetType');
    expectError(await client.updateTtl(name, k, 1000), CacheUpdateTtl.Error, NOT_FOUND, 'updateTtl');
    expectError(await client.keysExist(name, [k]), CacheKeysExist.Error, NOT_FOUND, 'keysExist');
    expectError(await client.getBatch(name, [k, 'k2']), CacheGetBatch.Error, NOT_FOUND, 'getBatch');
    expectError(await client.setBatch(name, [{ key: k, value: 'v' }]), CacheSetBatch.Error, NOT_FOUND, 'setBatch');
    expectError(await client.flushCache(name), CacheFlush.Error, NOT_FOUND, 'flushCache');
    expectError(await client.deleteCache(name), DeleteCache.Error, NOT_FOUND, 'deleteCache');
    const g = await client.get(name, k);
    assert.ok(g.innerException() instanceof CacheNotFoundError, 'get: inner exception is CacheNotFoundError');
  });
});

// ---------------------------------------------------------------------------------------------
describe('get / set / delete', () => {
  it('string key and value: set, get Hit, overwrite, delete, get Miss, delete of an absent key', async () => {
    const k = uid('str');
    await expectMiss(k);
    await put(k, 'hello');
    const h = await getHit(k);
    assert.equal(h.type, CacheGetResponse.Hit);
    assert.equal(h.value(), 'hello');
    assert.equal(h.valueString(), 'hello');
    assert.deepEqual(Buffer.from(h.valueUint8Array()), Buffer.from('hello'));
    await put(k, 'world');
    assert.equal(await getString(k), 'world', 'overwritten');
    expectType(await client.delete(CACHE, k), CacheDelete.Success, 'delete');
    await expectMiss(k);
    expectType(await client.delete(CACHE, k), CacheDelete.Success, 'delete of an absent key');
  });

  it('unicode string values and keys round-trip as UTF-8', async () => {
    const k = uid('ünï-κλειδί-🔑');
    const v = 'grüße, 世界 🌍 \u0000 nul';
    await put(k, v);
    assert.equal(await getString(k), v);
    assert.deepEqual(Buffer.from((await getHit(Buffer.from(k, 'utf8'))).valueUint8Array()), Buffer.from(v, 'utf8'),
      'the same key given as UTF-8 bytes finds the item');
  });

  it('binary key and value with all 256 byte values', async () => {
    const key = new Uint8Array([...Buffer.from(uid('bin')), ...allBytes(7)]);
    const value = allBytes();
    await put(key, value);
    const got = (await getHit(key)).valueUint8Array();
    assert.equal(got.length, 256);
    assert.deepEqual(Buffer.from(got), Buffer.from(value));

    // a key that differs in one byte is a different item
    const other = Uint8Array.from(key);
    other[other.length - 1] ^= 0x01;
    await expectMiss(other);

    const value2 = allBytes(128);
    await put(key, value2);
    assert.deepEqual(Buffer.from((await getHit(key)).valueUint8Array()), Buffer.from(value2));
    expectType(await client.delete(CACHE, key), CacheDelete.Success);
    await expectMiss(key);
  });

  it('empty value (string and Uint8Array) is stored and read back as a Hit of length 0', async () => {
    const k1 = uid('empty-s');
    await put(k1, '');
    const h1 = await getHit(k1);
    assert.equal(h1.valueString(), '');
    assert.equal(h1.valueUint8Array().length, 0);

    const k2 = uid('empty-b');
    await put(k2, new Uint8Array(0));
    assert.equal((await getHit(k2)).valueUint8Array().length, 0);
  });

  it('600 concurrent sets then 600 concurrent gets (multiplexed on the SDK\'s 6 channels) all succeed', async () => {
    const prefix = uid('par');
    const n = 600;
    const sets = await Promise.all(Array.from({ length: n }, (_, i) => client.set(CACHE, `${prefix}-${i}`, `v${i}`)));
    sets.forEach((r, i) => expectType(r, CacheSet.Success, `set #${i}`));
    const gets = await Promise.all(Array.from({ length: n }, (_, i) => client.get(CACHE, `${prefix}-${i}`)));
    gets.forEach((r, i) => assert.equal(expectType(r, CacheGet.Hit, `get #${i}`).valueString(), `v${i}`));
  });

  it('a 1 MB value round-trips intact', async () => {
    const k = uid('big');
    const v = Buffer.alloc(1 << 20);
    for (let i = 0; i < v.length; i++) v[i] = (i * 31 + (i >> 8)) & 0xff;
    await put(k, new Uint8Array(v));
    const got = (await getHit(k)).valueUint8Array();
    assert.equal(got.length, v.length);
    assert.ok(Buffer.from(got).equals(v), 'content equal');
  });
});

// ---------------------------------------------------------------------------------------------
describe('conditional sets', () => {
  it('setIfAbsent: Stored when absent, NotStored when present', async () => {
    const k = uid('sia');
    expectType(await client.setIfAbsent(CACHE, k, 'one'), CacheSetIfAbsent.Stored, 'absent');
    assert.equal(await getString(k), 'one');
    expectType(await client.setIfAbsent(CACHE, k, 'two'), CacheSetIfAbsent.NotStored, 'present');
    assert.equal(await getString(k), 'one', 'unchanged');
  });

  it('setIfNotExists: Stored when absent, NotStored when present', async () => {
    const k = uid('sine');
    expectType(await client.setIfNotExists(CACHE, k, 'one'), CacheSetIfNotExists.Stored, 'absent');
    assert.equal(await getString(k), 'one');
    expectType(await client.setIfNotExists(CACHE, k, 'two'), CacheSetIfNotExists.NotStored, 'present');
    assert.equal(await getString(k), 'one', 'unchanged');
  });

  it('setIfPresent: NotStored when absent (stays absent), Stored when present', async () => {
    const k = uid('sip');
    expectType(await client.setIfPresent(CACHE, k, 'one'), CacheSetIfPresent.NotStored, 'absent');
    await expectMiss(k);
    await put(k, 'zero');
    expectType(await client.setIfPresent(CACHE, k, 'one'), CacheSetIfPresent.Stored, 'present');
    assert.equal(await getString(k), 'one');
  });

  it('setIfEqual: stored only when present and equal', async () => {
    const k = uid('sie');
    expectType(await client.setIfEqual(CACHE, k, 'new', 'old'), CacheSetIfEqual.NotStored, 'absent');
    await expectMiss(k);
    await put(k, 'old');
    expectType(await client.setIfEqual(CACHE, k, 'new', 'other'), CacheSetIfEqual.NotStored, 'present, differs');
    assert.equal(await getString(k), 'old');
    expectType(await client.setIfEqual(CACHE, k, 'new', 'old'), CacheSetIfEqual.Stored, 'present, equal');
    assert.equal(await getString(k), 'new');
  });

  it('setIfNotEqual: stored when absent or different, not when equal', async () => {
    const k = uid('sine2');
    expectType(await client.setIfNotEqual(CACHE, k, 'v1', 'x'), CacheSetIfNotEqual.Stored, 'absent');
    assert.equal(await getString(k), 'v1');
    expectType(await client.setIfNotEqual(CACHE, k, 'v2', 'v1'), CacheSetIfNotEqual.NotStored, 'present, equal');
    assert.equal(await getString(k), 'v1');
    expectType(await client.setIfNotEqual(CACHE, k, 'v3', 'x'), CacheSetIfNotEqual.Stored, 'present, differs');
    assert.equal(await getString(k), 'v3');
  });

  it('setIfPresentAndNotEqual: stored only when present and different', async () => {
    const k = uid('sipne');
    expectType(await client.setIfPresentAndNotEqual(CACHE, k, 'v1', 'x'), CacheSetIfPresentAndNotEqual.NotStored, 'absent');
    await expectMiss(k);
    await put(k, 'v0');
    expectType(await client.setIfPresentAndNotEqual(CACHE, k, 'v1', 'v0'), CacheSetIfPresentAndNotEqual.NotStored, 'present, equal');
    assert.equal(await getString(k), 'v0');
    expectType(await client.setIfPresentAndNotEqual(CACHE, k, 'v2', 'x'), CacheSetIfPresentAndNotEqual.Stored, 'present, differs');
    assert.equal(await getString(k), 'v2');
  });

  it('setIfAbsentOrEqual: stored when absent or equal, not when different', async () => {
    const k = uid('siaoe');
    expectType(await client.setIfAbsentOrEqual(CACHE, k, 'v1', 'x'), CacheSetIfAbsentOrEqual.Stored, 'absent');
    assert.equal(await getString(k), 'v1');
    expectType(await client.setIfAbsentOrEqual(CACHE, k, 'v2', 'x'), CacheSetIfAbsentOrEqual.NotStored, 'present, differs');
    assert.equal(await getString(k), 'v1');
    expectType(await client.setIfAbsentOrEqual(CACHE, k, 'v3', 'v1'), CacheSetIfAbsentOrEqual.Stored, 'present, equal');
    assert.equal(await getString(k), 'v3');
  });

  it('conditional sets compare bytes exactly (binary values) and apply the given ttl', async () => {
    const k = uid('sibin');
    const a = allBytes();
    const b = allBytes(1);
    expectType(await client.setIfAbsent(CACHE, k, a, { ttl: 30 }), CacheSetIfAbsent.Stored);
    const ttl1 = await remainingTtl(k);
    assert.ok(ttl1 > 25000 && ttl1 <= 30000, `ttl after setIfAbsent ttl=30 s: ${ttl1} ms`);
    expectType(await client.setIfEqual(CACHE, k, b, b), CacheSetIfEqual.NotStored, 'equal-to b (stored is a)');
    expectType(await client.setIfEqual(CACHE, k, b, a, { ttl: 40 }), CacheSetIfEqual.Stored, 'equal-to a');
    assert.deepEqual(Buffer.from((await getHit(k)).valueUint8Array()), Buffer.from(b));
    const ttl2 = await remainingTtl(k);
    assert.ok(ttl2 > 35000 && ttl2 <= 40000, `ttl after setIfEqual ttl=40 s: ${ttl2} ms`);
  });
});

// ---------------------------------------------------------------------------------------------
describe('hashes', () => {
  it('setWithHash returns the hash getWithHash reports; a different value has a different hash', async () => {
    const k = uid('h');
    expectType(await client.getWithHash(CACHE, k), CacheGetWithHash.Miss, 'getWithHash on a missing key');

    const s1 = expectType(await client.setWithHash(CACHE, k, 'alpha'), CacheSetWithHash.Stored, 'setWithHash alpha');
    const h1 = Buffer.from(s1.hashUint8Array());
    assert.ok(h1.length > 0, 'hash is not empty');
    const g1 = expectType(await client.getWithHash(CACHE, k), CacheGetWithHash.Hit, 'getWithHash');
    assert.equal(g1.valueString(), 'alpha');
    assert.deepEqual(Buffer.from(g1.hashUint8Array()), h1, 'getWithHash hash == setWithHash hash');

    const s2 = expectType(await client.setWithHash(CACHE, k, 'beta'), CacheSetWithHash.Stored, 'setWithHash beta');
    const h2 = Buffer.from(s2.hashUint8Array());
    assert.notDeepEqual(h2, h1, 'different value, different hash');
    assert.deepEqual(Buffer.from((await client.getWithHash(CACHE, k)).hashUint8Array()), h2);

    // the same value (on another key, via plain set) has the same hash
    const k2 = uid('h2');
    await put(k2, 'alpha');
    assert.deepEqual(Buffer.from(await hashOf(k2)), h1, 'same value, same hash');
    // binary values
    const k3 = uid('h3');
    const s3 = expectType(await client.setWithHash(CACHE, k3, allBytes()), CacheSetWithHash.Stored);
    const g3 = expectType(await client.getWithHash(CACHE, k3), CacheGetWithHash.Hit);
    assert.deepEqual(Buffer.from(g3.valueUint8Array()), Buffer.from(allBytes()));
    assert.deepEqual(Buffer.from(g3.hashUint8Array()), Buffer.from(s3.hashUint8Array()));
  });

  // Reference hashes of two values, computed by the server on scratch keys.
  async function refHashes() {
    const ka = uid('ref-a');
    const kb = uid('ref-b');
    const ha = expectType(await client.setWithHash(CACHE, ka, 'A'), CacheSetWithHash.Stored).hashUint8Array();
    const hb = expectType(await client.setWithHash(CACHE, kb, 'B'), CacheSetWithHash.Stored).hashUint8Array();
    assert.notDeepEqual(Buffer.from(ha), Buffer.from(hb));
    return { ha, hb };
  }

  it('setIfPresentAndHashEqual: stored only when present with an equal hash', async () => {
    const { ha, hb } = await refHashes();
    const k = uid('sipahe');
    expectType(await client.setIfPresentAndHashEqual(CACHE, k, 'new', ha), CacheSetIfPresentAndHashEqual.NotStored, 'absent');
    await expectMiss(k);
    await put(k, 'A');
    expectType(await client.setIfPresentAndHashEqual(CACHE, k, 'new', hb), CacheSetIfPresentAndHashEqual.NotStored, 'hash differs');
    assert.equal(await getString(k), 'A');
    const r = expectType(await client.setIfPresentAndHashEqual(CACHE, k, 'new', ha), CacheSetIfPresentAndHashEqual.Stored, 'hash equal');
    assert.equal(await getString(k), 'new');
    assert.deepEqual(Buffer.from(r.hashUint8Array()), Buffer.from(await hashOf(k)), 'returned hash is the new value\'s');
  });

  it('setIfPresentAndHashNotEqual: stored only when present with a different hash', async () => {
    const { ha, hb } = await refHashes();
    const k = uid('sipahne');
    expectType(await client.setIfPresentAndHashNotEqual(CACHE, k, 'new', hb), CacheSetIfPresentAndHashNotEqual.NotStored, 'absent');
    await expectMiss(k);
    await put(k, 'A');
    expectType(await client.setIfPresentAndHashNotEqual(CACHE, k, 'new', ha), CacheSetIfPresentAndHashNotEqual.NotStored, 'hash equal');
    assert.equal(await getString(k), 'A');
    const r = expectType(await client.setIfPresentAndHashNotEqual(CACHE, k, 'new', hb), CacheSetIfPresentAndHashNotEqual.Stored, 'hash differs');
    assert.equal(await getString(k), 'new');
    assert.deepEqual(Buffer.from(r.hashUint8Array()), Buffer.from(await hashOf(k)));
  });

  it('setIfAbsentOrHashEqual: stored when absent or hash equal, not when different', async () => {
    const { ha, hb } = await refHashes();
    const k = uid('siaohe');
    expectType(await client.setIfAbsentOrHashEqual(CACHE, k, 'A', hb), CacheSetIfAbsentOrHashEqual.Stored, 'absent');
    assert.equal(await getString(k), 'A');
    expectType(await client.setIfAbsentOrHashEqual(CACHE, k, 'new', hb), CacheSetIfAbsentOrHashEqual.NotStored, 'hash differs');
    assert.equal(await getString(k), 'A');
    expectType(await client.setIfAbsentOrHashEqual(CACHE, k, 'new', ha), CacheSetIfAbsentOrHashEqual.Stored, 'hash equal');
    assert.equal(await getString(k), 'new');
  });

  it('setIfAbsentOrHashNotEqual: stored when absent or hash different, not when equal', async () => {
    const { ha, hb } = await refHashes();
    const k = uid('siaohne');
    expectType(await client.setIfAbsentOrHashNotEqual(CACHE, k, 'A', ha), CacheSetIfAbsentOrHashNotEqual.Stored, 'absent');
    assert.equal(await getString(k), 'A');
    expectType(await client.setIfAbsentOrHashNotEqual(CACHE, k, 'new', ha), CacheSetIfAbsentOrHashNotEqual.NotStored, 'hash equal');
    assert.equal(await getString(k), 'A');
    expectType(await client.setIfAbsentOrHashNotEqual(CACHE, k, 'new', hb), CacheSetIfAbsentOrHashNotEqual.Stored, 'hash differs');
    assert.equal(await getString(k), 'new');
  });
});

// ---------------------------------------------------------------------------------------------
describe('increment', () => {
  it('a new key starts from 0; existing keys add; negative amounts subtract; stored as decimal text', async () => {
    const k = uid('inc');
    const r1 = expectType(await client.increment(CACHE, k, 5), CacheIncrement.Success, 'new key');
    assert.equal(r1.value(), 5);
    assert.equal(await getString(k), '5');
    assert.equal(expectType(await client.increment(CACHE, k, 10), CacheIncrement.Success).value(), 15);
    assert.equal(expectType(await client.increment(CACHE, k, -20), CacheIncrement.Success).value(), -5);
    assert.equal(await getString(k), '-5');

    const k2 = uid('inc-set');
    await put(k2, '41');
    assert.equal(expectType(await client.increment(CACHE, k2, 1), CacheIncrement.Success).value(), 42);

    // an increment by 0 of a new key yields 0 (proto3 omits the zero on the wire)
    const k3 = uid('inc-zero');
    assert.equal(expectType(await client.increment(CACHE, k3, 0), CacheIncrement.Success, 'by 0').value(), 0);
    assert.equal(await getString(k3), '0');

    const t = expectType(await client.itemGetType(CACHE, k), CacheItemGetType.Hit);
    assert.equal(t.itemType(), ItemType.SCALAR, 'a counter is a scalar');
  });

  it('a non-integer value fails with FAILED_PRECONDITION_ERROR and is left unchanged', async () => {
    for (const bad of ['abc', '1.5', '12x']) {
      const k = uid('inc-bad');
      await put(k, bad);
      const r = await client.increment(CACHE, k, 1);
      expectError(r, CacheIncrement.Error, MomentoErrorCode.FAILED_PRECONDITION_ERROR, `increment of "${bad}"`);
      assert.ok(r.innerException() instanceof FailedPreconditionError, 'FailedPreconditionError');
      assert.equal(await getString(k), bad, 'unchanged');
    }
  });

  it('a counter created with ttl 1 s expires', async () => {
    const k = uid('inc-ttl');
    assert.equal(expectType(await client.increment(CACHE, k, 3, { ttl: 1 }), CacheIncrement.Success).value(), 3);
    const ttl = await remainingTtl(k);
    assert.ok(ttl > 0 && ttl <= 1000, `remaining ttl ${ttl} ms`);
    await getHit(k);
    await sleep(1500);
    await expectMiss(k);
  });

  it('increment sets its ttl on an existing item too, as Momento does', async () => {
    const k = uid('inc-ttl-existing');
    await put(k, '10', { ttl: 600 });
    assert.ok((await remainingTtl(k)) > 590000);
    assert.equal(expectType(await client.increment(CACHE, k, 10, { ttl: 2 }), CacheIncrement.Success).value(), 20);
    const ttl = await remainingTtl(k);
    assert.ok(ttl > 0 && ttl <= 2000, `remaining ttl ${ttl} ms after increment with ttl 2 s`);
    // No ttl given: the SDK sends the client's default, which the item then gets.
    await put(k, '1', { ttl: 600 });
    assert.equal(expectType(await client.increment(CACHE, k, 1), CacheIncrement.Success).value(), 2);
    const def = await remainingTtl(k);
    assert.ok(def <= DEFAULT_TTL_SECONDS * 1000 && def > DEFAULT_TTL_SECONDS * 1000 - 5000,
              `remaining ttl ${def} ms, the client default is ${DEFAULT_TTL_SECONDS} s`);
  });
});

// ---------------------------------------------------------------------------------------------
describe('ttl and type', () => {
  it('itemGetTtl: remaining close to the ttl given (and to the client default); Miss on a missing key', async () => {
    const k = uid('ttl');
    await put(k, 'v', { ttl: 60 });
    const rem = await remainingTtl(k);
    assert.ok(rem > 55000 && rem <= 60000, `remaining ${rem} ms for ttl 60 s`);

    const k2 = uid('ttl-default');
    await put(k2, 'v'); // the client's defaultTtlSeconds (300)
    const rem2 = await remainingTtl(k2);
    assert.ok(rem2 > 295000 && rem2 <= 300000, `remaining ${rem2} ms for the default ttl 300 s`);

    expectType(await client.itemGetTtl(CACHE, uid('nope')), CacheItemGetTtl.Miss, 'missing key');
  });

  it('updateTtl overwrites the ttl (up or down); Miss on a missing key', async () => {
    const k = uid('upd');
    await put(k, 'v', { ttl: 60 });
    expectType(await client.updateTtl(CACHE, k, 10000), CacheUpdateTtl.Set, 'down to 10 s');
    let rem = await remainingTtl(k);
    assert.ok(rem > 8000 && rem <= 10000, `remaining ${rem} ms after updateTtl 10 s`);
    expectType(await client.updateTtl(CACHE, k, 120000), CacheUpdateTtl.Set, 'up to 120 s');
    rem = await remainingTtl(k);
    assert.ok(rem > 115000 && rem <= 120000, `remaining ${rem} ms after updateTtl 120 s`);
    assert.equal(await getString(k), 'v', 'value untouched');
    expectType(await client.updateTtl(CACHE, uid('nope'), 10000), CacheUpdateTtl.Miss, 'missing key');
  });

  it('increaseTtl only raises the ttl (NotSet otherwise); Miss on a missing key', async () => {
    const k = uid('incttl');
    await put(k, 'v', { ttl: 60 });
    expectType(await client.increaseTtl(CACHE, k, 30000), CacheIncreaseTtl.NotSet, 'lower');
    let rem = await remainingTtl(k);
    assert.ok(rem > 55000 && rem <= 60000, `unchanged: ${rem} ms`);
    expectType(await client.increaseTtl(CACHE, k, 120000), CacheIncreaseTtl.Set, 'higher');
    rem = await remainingTtl(k);
    assert.ok(rem > 115000 && rem <= 120000, `raised: ${rem} ms`);
    expectType(await client.increaseTtl(CACHE, uid('nope'), 10000), CacheIncreaseTtl.Miss, 'missing key');
  });

  it('decreaseTtl only lowers the ttl (NotSet otherwise); Miss on a missing key', async () => {
    const k = uid('decttl');
    await put(k, 'v', { ttl: 60 });
    expectType(await client.decreaseTtl(CACHE, k, 120000), CacheDecreaseTtl.NotSet, 'higher');
    let rem = await remainingTtl(k);
    assert.ok(rem > 55000 && rem <= 60000, `unchanged: ${rem} ms`);
    expectType(await client.decreaseTtl(CACHE, k, 30000), CacheDecreaseTtl.Set, 'lower');
    rem = await remainingTtl(k);
    assert.ok(rem > 25000 && rem <= 30000, `lowered: ${rem} ms`);
    expectType(await client.decreaseTtl(CACHE, uid('nope'), 10000), CacheDecreaseTtl.Miss, 'missing key');
  });

  it('itemGetType is SCALAR for a set item; Miss on a missing key', async () => {
    const k = uid('type');
    await put(k, 'v');
    const t = expectType(await client.itemGetType(CACHE, k), CacheItemGetType.Hit);
    assert.equal(t.itemType(), ItemType.SCALAR);
    expectType(await client.itemGetType(CACHE, uid('nope')), CacheItemGetType.Miss, 'missing key');
  });

  it('expiry: set with ttl 1 s is a Hit now and a Miss after 1.5 s', async () => {
    const k = uid('exp');
    const kb = new Uint8Array([...Buffer.from(uid('expb')), 0, 255]);
    await put(k, 'short', { ttl: 1 });
    await put(kb, allBytes(), { ttl: 1 });
    assert.equal(await getString(k), 'short');
    await getHit(kb);
    await sleep(1500);
    await expectMiss(k);
    await expectMiss(kb);
    assert.equal(expectType(await client.keyExists(CACHE, k), CacheKeyExists.Success).exists(), false, 'keyExists after expiry');
    expectType(await client.itemGetTtl(CACHE, k), CacheItemGetTtl.Miss, 'itemGetTtl after expiry');
    expectType(await client.setIfAbsent(CACHE, k, 'again'), CacheSetIfAbsent.Stored, 'setIfAbsent after expiry');
  });
});

// ---------------------------------------------------------------------------------------------
describe('key existence and batches', () => {
  it('keyExists and keysExist (order preserved, binary keys too)', async () => {
    const [a, b, c] = [uid('ke-a'), uid('ke-b'), uid('ke-c')];
    const bin = new Uint8Array([...Buffer.from(uid('ke-bin')), 0, 1, 254, 255]);
    await put(a, '1');
    await put(c, '3');
    await put(bin, 'b');
    assert.equal(expectType(await client.keyExists(CACHE, a), CacheKeyExists.Success).exists(), true);
    assert.equal(expectType(await client.keyExists(CACHE, b), CacheKeyExists.Success).exists(), false);
    assert.equal(expectType(await client.keyExists(CACHE, bin), CacheKeyExists.Success).exists(), true);

    const m1 = uid('ke-m1');
    const m2 = uid('ke-m2');
    const r = expectType(await client.keysExist(CACHE, [m1, a, b, c, m2]), CacheKeysExist.Success);
    assert.deepEqual(r.exists(), [false, true, false, true, false]);
    assert.deepEqual(r.valueRecord(), { [m1]: false, [a]: true, [b]: false, [c]: true, [m2]: false });
    const r2 = expectType(await client.keysExist(CACHE, [c, m1, a]), CacheKeysExist.Success);
    assert.deepEqual(r2.exists(), [true, false, true]);
    const rb = expectType(await client.keysExist(CACHE, [bin, Buffer.from(b)]), CacheKeysExist.Success);
    assert.deepEqual(rb.exists(), [true, false]);
  });

  it('setBatch of 100 items, then getBatch of them mixed with 100 misses, in order', async () => {
    const prefix = uid('batch');
    const items = [];
    for (let i = 0; i < 100; i++) items.push({ key: `${prefix}-${i}`, value: `value-${i}-${'x'.repeat(i)}` });
    const s = expectType(await client.setBatch(CACHE, items, { ttl: 120 }), CacheSetBatch.Success, 'setBatch');
    assert.equal(s.results().length, 100, 'one result per item');
    s.results().forEach((r, i) => expectType(r, CacheSet.Success, `setBatch result ${i}`));

    // interleave present and absent keys
    const keys = [];
    const expected = [];
    for (let i = 0; i < 100; i++) {
      keys.push(`${prefix}-missing-${i}`);
      expected.push(undefined);
      keys.push(items[99 - i].key);
      expected.push(items[99 - i].value);
    }
    const g = expectType(await client.getBatch(CACHE, keys), CacheGetBatch.Success, 'getBatch');
    const res = g.results();
    assert.equal(res.length, 200, 'one result per key');
    res.forEach((r, i) => {
      if (expected[i] === undefined) expectType(r, CacheGet.Miss, `getBatch[${i}] ${keys[i]}`);
      else assert.equal(expectType(r, CacheGet.Hit, `getBatch[${i}] ${keys[i]}`).valueString(), expected[i]);
    });
    const rec = g.valuesRecord();
    assert.equal(Object.keys(rec).length, 100, 'valuesRecord holds the hits only');
    for (const it2 of items) assert.equal(rec[it2.key], it2.value);

    const rem = await remainingTtl(items[0].key);
    assert.ok(rem > 115000 && rem <= 120000, `setBatch ttl applied: ${rem} ms`);
  });

  it('setBatch / getBatch with binary keys and values (Map form)', async () => {
    const m = new Map();
    for (let i = 0; i < 10; i++) {
      m.set(new Uint8Array([...Buffer.from(uid('bb')), i, 0, 255]), allBytes(i));
    }
    const s = expectType(await client.setBatch(CACHE, m), CacheSetBatch.Success);
    assert.equal(s.results().length, 10);
    s.results().forEach((r) => expectType(r, CacheSet.Success));
    const keys = [...m.keys()];
    const g = expectType(await client.getBatch(CACHE, keys), CacheGetBatch.Success);
    g.results().forEach((r, i) => {
      const h = expectType(r, CacheGet.Hit, `getBatch[${i}]`);
      assert.deepEqual(Buffer.from(h.valueUint8Array()), Buffer.from(allBytes(i)));
    });
  });
});

// ---------------------------------------------------------------------------------------------
describe('RESP <-> SDK (dev mode: RESP without AUTH uses cache "default")', () => {
  let resp;
  before(async () => { resp = await makeRespClient(server); });
  after(async () => { try { await resp?.quit(); } catch { resp?.disconnect?.(); } });

  it('set via the SDK, read via RESP; set via RESP, read via the SDK', async () => {
    const k1 = uid('x-sdk');
    expectType(await client.set('default', k1, 'from-sdk', { ttl: 30 }), CacheSet.Success);
    assert.equal(await resp.get(k1), 'from-sdk');
    const pttl = await resp.pTTL(k1);
    assert.ok(pttl > 25000 && pttl <= 30000, `RESP PTTL of an SDK item with ttl 30 s: ${pttl}`);

    const k2 = uid('x-resp');
    assert.equal(await resp.set(k2, 'from-resp', { EX: 100 }), 'OK');
    const h = expectType(await client.get('default', k2), CacheGet.Hit, 'SDK get of a RESP item');
    assert.equal(h.valueString(), 'from-resp');
    const t = expectType(await client.itemGetTtl('default', k2), CacheItemGetTtl.Hit);
    assert.ok(t.remainingTtlMillis() > 95000 && t.remainingTtlMillis() <= 100000, `ttl ${t.remainingTtlMillis()}`);

    expectType(await client.delete('default', k2), CacheDelete.Success);
    assert.equal(await resp.get(k2), null, 'deleted via the SDK, gone for RESP');
  });

  it('binary values with all 256 byte values cross both ways', async () => {
    const k1 = uid('xb-sdk');
    expectType(await client.set('default', k1, allBytes()), CacheSet.Success);
    const got = await resp.get(commandOptions({ returnBuffers: true }), k1);
    assert.ok(Buffer.isBuffer(got));
    assert.deepEqual(got, Buffer.from(allBytes()));

    const k2 = Buffer.concat([Buffer.from(uid('xb-resp')), Buffer.from([0, 255, 10, 13])]);
    await resp.set(k2, Buffer.from(allBytes(3)));
    const h = expectType(await client.get('default', new Uint8Array(k2)), CacheGet.Hit);
    assert.deepEqual(Buffer.from(h.valueUint8Array()), Buffer.from(allBytes(3)));
  });

  it('counters are shared: SDK increment, RESP INCRBY, SDK increment', async () => {
    const k = uid('xinc');
    assert.equal(expectType(await client.increment('default', k, 7), CacheIncrement.Success).value(), 7);
    assert.equal(await resp.get(k), '7');
    assert.equal(await resp.incrBy(k, 3), 10);
    assert.equal(expectType(await client.increment('default', k, 1), CacheIncrement.Success).value(), 11);
  });

  it('a cache created via the SDK is reachable over RESP with AUTH <cache> <admin key>', async () => {
    const k = uid('xauth');
    expectType(await client.set(CACHE, k, 'in-named-cache'), CacheSet.Success);
    const r2 = await makeRespClient(server, { cache: CACHE });
    try {
      assert.equal(await r2.get(k), 'in-named-cache');
      await r2.set(`${k}-2`, 'back');
    } finally {
      await r2.quit();
    }
    assert.equal(await getString(`${k}-2`), 'back');
    // and the item is not in "default"
    assert.equal(await resp.get(k), null);
  });
});

// ---------------------------------------------------------------------------------------------
test('server: SIGTERM stops it with exit code 0 within 15 s', TIMEOUT, withServer(servers, async () => {
  client.close();
  client = null;
  const r = await server.stop();
  assert.equal(r.killed, false, `needed SIGKILL after 15 s (${JSON.stringify(r)})`);
  assert.equal(r.signal, null, `exit by signal ${r.signal}`);
  assert.equal(r.code, 0, `exit code ${r.code}`);
}));
