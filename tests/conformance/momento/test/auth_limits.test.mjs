// Conformance: authentication and size limits.
//  - one `cellar serve` WITHOUT --dev-no-auth (default item size limit): the admin key works
//    through the unmodified SDK, wrong/empty keys give AUTHENTICATION_ERROR, the default
//    item-size and request-size limits give LIMIT_EXCEEDED_ERROR, RESP AUTH sees SDK data;
//  - one `--dev-no-auth --max-item-size 1kib` instance for the exact boundary of the flag.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import {
  AuthenticationError,
  CacheGet,
  CacheGetBatch,
  CacheIncrement,
  CacheSet,
  CacheSetIfAbsent,
  CacheSetWithHash,
  CreateCache,
  DeleteCache,
  LimitExceededError,
  ListCaches,
  MomentoErrorCode,
} from '@gomomento/sdk';

import {
  CellarServer,
  DEFAULT_MAX_ITEM_SIZE,
  expectError,
  expectType,
  emptyTokenCredentials,
  localCredentials,
  makeCacheClient,
  makeRespClient,
  tokenCredentials,
  uid,
  withServer,
} from '../lib/harness.mjs';

const AUTH = MomentoErrorCode.AUTHENTICATION_ERROR;
const LIMIT = MomentoErrorCode.LIMIT_EXCEEDED_ERROR;
const TIMEOUT = { timeout: 20000 };

// =============================================================================================
describe('non-dev server: authentication and default limits', () => {
  let server;
  let admin; // CacheClient with the admin key
  let CACHE;
  const extraClients = [];
  const it = (name, fn) => test(name, TIMEOUT, withServer(() => server, fn));

  before(async () => {
    server = await CellarServer.start({ name: 'auth' });
    admin = await makeCacheClient(tokenCredentials(server, server.adminKey));
    CACHE = uid('auth');
    expectType(await admin.createCache(CACHE), CreateCache.Success, `createCache(${CACHE}) with the admin key`);
  }, { timeout: 30000 });

  after(async () => {
    for (const c of [admin, ...extraClients]) { try { c?.close(); } catch { /* */ } }
    if (server) {
      await server.stop();
      server.cleanup();
    }
  });

  async function clientWithToken(token) {
    const c = await makeCacheClient(tokenCredentials(server, token));
    extraClients.push(c);
    return c;
  }

  it('the admin key (as a v1 API key over plaintext) works for control and data calls', async () => {
    const name = uid('adm');
    expectType(await admin.createCache(name), CreateCache.Success, 'createCache');
    expectType(await admin.createCache(name), CreateCache.AlreadyExists, 'createCache again');
    const l = expectType(await admin.listCaches(), ListCaches.Success, 'listCaches');
    const info = l.getCaches().find((c) => c.getName() === name);
    assert.ok(info, 'listed');
    assert.equal(info.getCacheLimits().maxItemSizeKb, 4883);
    assert.ok(!l.getCaches().some((c) => c.getName() === 'default'), 'no "default" cache without --dev-no-auth');

    const k = uid('k');
    expectType(await admin.set(name, k, 'secret-value'), CacheSet.Success, 'set');
    assert.equal(expectType(await admin.get(name, k), CacheGet.Hit, 'get').valueString(), 'secret-value');
    assert.equal(expectType(await admin.increment(name, uid('n'), 2), CacheIncrement.Success).value(), 2);
    expectType(await admin.deleteCache(name), DeleteCache.Success, 'deleteCache');
  });

  it('a wrong key gives AUTHENTICATION_ERROR on data and control calls', async () => {
    const wrong = await clientWithToken(randomBytes(32).toString('hex'));
    const k = uid('k');
    expectType(await admin.set(CACHE, k, 'v'), CacheSet.Success);

    const g = await wrong.get(CACHE, k);
    expectError(g, CacheGet.Error, AUTH, 'get');
    assert.ok(g.innerException() instanceof AuthenticationError, 'AuthenticationError');
    expectError(await wrong.set(CACHE, k, 'evil'), CacheSet.Error, AUTH, 'set');
    expectError(await wrong.getBatch(CACHE, [k]), CacheGetBatch.Error, AUTH, 'getBatch');
    expectError(await wrong.createCache(uid('evil')), CreateCache.Error, AUTH, 'createCache');
    expectError(await wrong.listCaches(), ListCaches.Error, AUTH, 'listCaches');
    expectError(await wrong.deleteCache(CACHE), DeleteCache.Error, AUTH, 'deleteCache');
    // nothing changed
    assert.equal(expectType(await admin.get(CACHE, k), CacheGet.Hit).valueString(), 'v');
    expectType(await admin.set(CACHE, uid('still'), 'ok'), CacheSet.Success, 'cache still there');
  });

  it('the admin key with one character changed, and a garbage token, are rejected', async () => {
    const flipped = server.adminKey.slice(0, -1) + (server.adminKey.endsWith('0') ? '1' : '0');
    const c1 = await clientWithToken(flipped);
    expectError(await c1.get(CACHE, 'k'), CacheGet.Error, AUTH, 'one character off');
    const c2 = await clientWithToken('not-a-key');
    expectError(await c2.get(CACHE, 'k'), CacheGet.Error, AUTH, 'garbage token');
  });

  it('the empty token of forMomentoLocal is rejected without --dev-no-auth', async () => {
    const c = await makeCacheClient(emptyTokenCredentials(server));
    extraClients.push(c);
    expectError(await c.get(CACHE, 'k'), CacheGet.Error, AUTH, 'get with an empty token');
    expectError(await c.listCaches(), ListCaches.Error, AUTH, 'listCaches with an empty token');
  });

  it('RESP: AUTH <cache> <admin key> sees SDK data, and SDK sees RESP data; a wrong key is refused', async () => {
    const k = uid('x');
    expectType(await admin.set(CACHE, k, 'sdk->resp'), CacheSet.Success);
    const r = await makeRespClient(server, { cache: CACHE });
    try {
      assert.equal(await r.get(k), 'sdk->resp');
      await r.set(`${k}-back`, 'resp->sdk');
    } finally {
      await r.quit();
    }
    assert.equal(expectType(await admin.get(CACHE, `${k}-back`), CacheGet.Hit).valueString(), 'resp->sdk');

    await assert.rejects(makeRespClient(server, { cache: CACHE, key: randomBytes(32).toString('hex') }),
      'RESP AUTH with a wrong key is refused');
  });

  it(`default item size limit: a value of exactly ${DEFAULT_MAX_ITEM_SIZE} bytes is stored, one byte more is LIMIT_EXCEEDED`, async () => {
    const k = uid('max');
    const atLimit = new Uint8Array(DEFAULT_MAX_ITEM_SIZE).fill(0x61);
    expectType(await admin.set(CACHE, k, atLimit), CacheSet.Success, `set of ${atLimit.length} bytes`);
    const h = expectType(await admin.get(CACHE, k), CacheGet.Hit);
    assert.equal(h.valueUint8Array().length, DEFAULT_MAX_ITEM_SIZE);

    const over = new Uint8Array(DEFAULT_MAX_ITEM_SIZE + 1).fill(0x62);
    const r = await admin.set(CACHE, k, over);
    expectError(r, CacheSet.Error, LIMIT, `set of ${over.length} bytes`);
    assert.ok(r.innerException() instanceof LimitExceededError, 'LimitExceededError');
    // SDK 1.118.1 picks this wrapper when the status details mention "item size"
    assert.ok(r.message().includes('Item size limit exceeded for this account'), `message: ${r.message()}`);
    // the previous value is untouched
    const h2 = expectType(await admin.get(CACHE, k), CacheGet.Hit);
    assert.equal(h2.valueUint8Array().length, DEFAULT_MAX_ITEM_SIZE);
    assert.equal(h2.valueUint8Array()[0], 0x61);

    const k2 = uid('over-new');
    expectError(await admin.set(CACHE, k2, over), CacheSet.Error, LIMIT, 'oversized set of a new key');
    expectType(await admin.get(CACHE, k2), CacheGet.Miss, 'nothing stored');
  });

  it('a request over 5 MiB (5.3 MB value) fails with "Request size limit exceeded"', async () => {
    const k = uid('huge');
    const r = await admin.set(CACHE, k, new Uint8Array(5_300_000).fill(0x63));
    expectError(r, CacheSet.Error, LIMIT, 'set of 5.3 MB');
    // What the SDK's own large-messages test checks. NB: in SDK 1.118.1 LimitExceededError picks
    // its wrapper from the status details text only ("request limit" -> this wrapper): its
    // constructor reads the `err` trailer before storing it.
    const text = r.toString();
    assert.ok(text.includes('RESOURCE_EXHAUSTED'), `message: ${text}`);
    assert.ok(text.includes('Request size limit exceeded for this account'), `message: ${text}`);
    expectType(await admin.get(CACHE, k), CacheGet.Miss, 'nothing stored');
    // the connection is still usable afterwards
    expectType(await admin.set(CACHE, k, 'small'), CacheSet.Success, 'set after the rejected request');
  });

  test('server: SIGTERM stops it with exit code 0 within 15 s', TIMEOUT, withServer(() => server, async () => {
    for (const c of [admin, ...extraClients]) c?.close();
    admin = null;
    extraClients.length = 0;
    const r = await server.stop();
    assert.equal(r.killed, false, `needed SIGKILL (${JSON.stringify(r)})`);
    assert.equal(r.signal, null, `exit by signal ${r.signal}`);
    assert.equal(r.code, 0, `exit code ${r.code}`);
  }));
});

// =============================================================================================
describe('--max-item-size 1kib', () => {
  let server;
  let client;
  let CACHE;
  const it = (name, fn) => test(name, TIMEOUT, withServer(() => server, fn));

  before(async () => {
    server = await CellarServer.start({ name: 'small', devNoAuth: true, maxItemSize: '1kib' });
    client = await makeCacheClient(localCredentials(server));
    CACHE = uid('small');
    expectType(await client.createCache(CACHE), CreateCache.Success);
  }, { timeout: 30000 });

  after(async () => {
    try { client?.close(); } catch { /* */ }
    if (server) {
      await server.stop();
      server.cleanup();
    }
  });

  it('1024 bytes are stored; 1025 bytes fail with LIMIT_EXCEEDED (item size) on set, setIfAbsent, setWithHash', async () => {
    const k = uid('b');
    expectType(await client.set(CACHE, k, new Uint8Array(1024).fill(1)), CacheSet.Success, 'set 1024');
    assert.equal(expectType(await client.get(CACHE, k), CacheGet.Hit).valueUint8Array().length, 1024);

    const over = new Uint8Array(1025).fill(2);
    const r = await client.set(CACHE, k, over);
    expectError(r, CacheSet.Error, LIMIT, 'set 1025');
    assert.ok(r.message().includes('Item size limit exceeded for this account'), `message: ${r.message()}`);
    assert.equal(expectType(await client.get(CACHE, k), CacheGet.Hit).valueUint8Array()[0], 1, 'unchanged');

    const k2 = uid('c');
    const r2 = await client.setIfAbsent(CACHE, k2, over);
    expectError(r2, CacheSetIfAbsent.Error, LIMIT, 'setIfAbsent 1025');
    assert.ok(r2.message().includes('Item size limit exceeded for this account'), `message: ${r2.message()}`);
    expectType(await client.get(CACHE, k2), CacheGet.Miss, 'nothing stored by setIfAbsent');

    const r3 = await client.setWithHash(CACHE, k2, over);
    expectError(r3, CacheSetWithHash.Error, LIMIT, 'setWithHash 1025');
    expectType(await client.get(CACHE, k2), CacheGet.Miss, 'nothing stored by setWithHash');
  });
});
