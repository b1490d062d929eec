// Conformance: tokens and tenants through the unmodified SDK. Tokens are minted through the
// admin API (the Momento AuthClient path comes with the auth services); a CacheClient built
// from each token gets exactly the access it grants.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { CacheGet, CacheSet, CreateCache, MomentoErrorCode } from '@gomomento/sdk';

import {
  adminRequest, CellarServer, expectError, expectType, makeCacheClient, mintToken, tokenCredentials,
  uid, withServer,
} from '../lib/harness.mjs';

const TIMEOUT = { timeout: 20000 };

describe('tokens and tenants over gRPC', () => {
  let server;
  const clients = [];

  const admin = (method, path) => adminRequest(server, method, path);
  const mint = async (params) => (await mintToken(server, params)).token;
  async function client(token) {
    const c = await makeCacheClient(tokenCredentials(server, token));
    clients.push(c);
    return c;
  }

  before(async () => {
    server = await CellarServer.start({ name: 'tokens' });
  });
  after(async () => {
    for (const c of clients) c.close();
    if (server) await server.stop();
  });

  test('two tenants with the same cache name never see each other', TIMEOUT,
    withServer(() => [server], async () => {
      for (const t of ['sdk_a', 'sdk_b']) assert.equal((await admin('POST', `/v1/tenants/${t}`)).status, 201);
      const a = await client(await mint({ tenant: 'sdk_a', super_user: 1 }));
      const b = await client(await mint({ tenant: 'sdk_b', super_user: 1 }));
      expectType(await a.createCache('sessions'), CreateCache.Success, 'tenant a creates');
      expectType(await b.createCache('sessions'), CreateCache.Success, 'tenant b creates the same name');
      expectType(await a.set('sessions', 'user:1', 'alice'), CacheSet.Success);
      expectType(await b.set('sessions', 'user:1', 'bob'), CacheSet.Success);
      assert.equal((await a.get('sessions', 'user:1')).value(), 'alice');
      assert.equal((await b.get('sessions', 'user:1')).value(), 'bob');
      const listed = await a.listCaches();
      assert.deepEqual(listed.getCaches().map((c) => c.getName()), ['sessions']);
    }));

  test('read-only gets but cannot set; write-only sets but cannot get', TIMEOUT,
    withServer(() => [server], async () => {
      await admin('POST', '/v1/tenants/sdk_roles');
      const su = await client(await mint({ tenant: 'sdk_roles', super_user: 1 }));
      const cache = uid('roles');
      expectType(await su.createCache(cache), CreateCache.Success);
      expectType(await su.set(cache, 'k', 'v'), CacheSet.Success);
      const ro = await client(await mint({ tenant: 'sdk_roles', role: 'ro', cache }));
      expectType(await ro.get(cache, 'k'), CacheGet.Hit, 'read-only get');
      expectType(await ro.get(cache, 'missing'), CacheGet.Miss, 'read-only get of a missing key');
      expectError(await ro.set(cache, 'k', 'x'), CacheSet.Error, MomentoErrorCode.PERMISSION_ERROR,
        'read-only set');
      expectError(await ro.createCache(uid('x')), CreateCache.Error, MomentoErrorCode.PERMISSION_ERROR,
        'read-only createCache');
      const wo = await client(await mint({ tenant: 'sdk_roles', role: 'wo', cache }));
      expectType(await wo.set(cache, 'w', 'v'), CacheSet.Success, 'write-only set');
      expectError(await wo.get(cache, 'w'), CacheGet.Error, MomentoErrorCode.PERMISSION_ERROR,
        'write-only get');
      expectError(await wo.get(cache, 'missing'), CacheGet.Error, MomentoErrorCode.PERMISSION_ERROR,
        'write-only get of a missing key');
    }));

  test('a key-prefix token touches only matching keys', TIMEOUT,
    withServer(() => [server], async () => {
      await admin('POST', '/v1/tenants/sdk_prefix');
      const su = await client(await mint({ tenant: 'sdk_prefix', super_user: 1 }));
      const cache = uid('prefix');
      expectType(await su.createCache(cache), CreateCache.Success);
      const pet = await client(await mint({ tenant: 'sdk_prefix', role: 'rw', cache, key_prefix: 'pet' }));
      expectType(await pet.set(cache, 'petunia', 'flower'), CacheSet.Success);
      expectType(await pet.get(cache, 'petunia'), CacheGet.Hit);
      expectError(await pet.set(cache, 'cow', 'moo'), CacheSet.Error, MomentoErrorCode.PERMISSION_ERROR);
      expectError(await pet.get(cache, 'cow'), CacheGet.Error, MomentoErrorCode.PERMISSION_ERROR);
    }));

  test('an expired token and a revoked signing key give AuthenticationError', TIMEOUT,
    withServer(() => [server], async () => {
      await admin('POST', '/v1/tenants/sdk_life');
      const su = await client(await mint({ tenant: 'sdk_life', super_user: 1 }));
      const cache = uid('life');
      expectType(await su.createCache(cache), CreateCache.Success);
      const short = await client(await mint({ tenant: 'sdk_life', role: 'rw', cache, expires_in: 2 }));
      expectType(await short.set(cache, 'k', 'v'), CacheSet.Success);
      await new Promise((r) => setTimeout(r, 2200));
      expectError(await short.get(cache, 'k'), CacheGet.Error, MomentoErrorCode.AUTHENTICATION_ERROR,
        'expired token');
      const rotated = await admin('POST', '/v1/signing-keys/rotate');
      assert.equal(rotated.status, 200);
      const keys = (await admin('GET', '/v1/signing-keys')).body.keys;
      for (const k of keys.filter((k) => k.id !== rotated.body.id && !k.revoked)) {
        assert.equal((await admin('POST', `/v1/signing-keys/${k.id}/revoke`)).status, 200);
      }
      expectError(await su.get(cache, 'k'), CacheGet.Error, MomentoErrorCode.AUTHENTICATION_ERROR,
        'token of a revoked key');
      const fresh = await client(await mint({ tenant: 'sdk_life', super_user: 1 }));
      expectType(await fresh.get(cache, 'k'), CacheGet.Hit, 'a token of the new key');
    }));
});
