// Conformance: the SDK's AuthClient against auth.Auth and token.Token. Keys it returns are
// used through CacheClients (endpoint overrides to this server) and get exactly their scope.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  AllCaches, AllDataReadWrite, AuthClient, CacheGet, CacheSet, CreateCache, CredentialProvider,
  DisposableTokenScopes, ExpiresIn, GenerateApiKey, GenerateDisposableToken, MomentoErrorCode,
  RefreshApiKey, TokenScopes,
} from '@gomomento/sdk';

import { createRequire } from 'node:module';

import {
  CellarServer, expectError, expectType, makeCacheClient, tokenCredentials, uid, withServer,
} from '../lib/harness.mjs';

const TIMEOUT = { timeout: 30000 };
// The SDK's own super-user scope (what Momento's console mints), not exported at top level.
const { InternalSuperUserPermissions } = createRequire(import.meta.url)(
  '@gomomento/sdk-core/dist/src/internal/utils/auth.js');

describe('AuthClient: API keys and disposable tokens', () => {
  let server;
  let authClient;
  const clients = [];

  // A key as the SDK returns it (a v1 key naming our endpoint), pointed at this server.
  function keyCredentials(apiKey) {
    const ep = `127.0.0.1:${server.ports.api}`;
    return CredentialProvider.fromString({
      apiKey,
      endpointOverrides: { cacheEndpoint: ep, controlEndpoint: ep, tokenEndpoint: ep, secureConnection: false },
    });
  }
  async function cacheClientFor(apiKey) {
    const c = await makeCacheClient(keyCredentials(apiKey));
    clients.push(c);
    return c;
  }

  before(async () => {
    server = await CellarServer.start({ name: 'authclient' });
    authClient = new AuthClient({ credentialProvider: tokenCredentials(server, server.adminKey) });
  });
  after(async () => {
    for (const c of clients) c.close();
    authClient?.close?.();
    if (server) await server.stop();
  });

  test('generateApiKey: AllDataReadWrite and read-only keys work as scoped; endpoint returned',
    TIMEOUT, withServer(() => [server], async () => {
      const all = await authClient.generateApiKey(AllDataReadWrite, ExpiresIn.minutes(30));
      expectType(all, GenerateApiKey.Success, 'generateApiKey AllDataReadWrite');
      assert.equal(all.endpoint, server.publicEndpoint);
      assert.ok(all.expiresAt.doesExpire());
      const rw = await cacheClientFor(all.apiKey);
      const cache = uid('authc');
      // AllDataReadWrite has no control grant: cache management is refused.
      expectError(await rw.createCache(cache), CreateCache.Error, MomentoErrorCode.PERMISSION_ERROR,
        'AllDataReadWrite createCache');
      const admin = await makeCacheClient(tokenCredentials(server, server.adminKey));
      clients.push(admin);
      expectType(await admin.createCache(cache), CreateCache.Success);
      expectType(await rw.set(cache, 'k', 'v'), CacheSet.Success, 'AllDataReadWrite set');
      expectType(await rw.get(cache, 'k'), CacheGet.Hit, 'AllDataReadWrite get');

      const roKey = await authClient.generateApiKey(TokenScopes.cacheReadOnly(AllCaches), ExpiresIn.never());
      expectType(roKey, GenerateApiKey.Success, 'generateApiKey read-only, never expiring');
      assert.equal(roKey.expiresAt.doesExpire(), false);
      const ro = await cacheClientFor(roKey.apiKey);
      expectType(await ro.get(cache, 'k'), CacheGet.Hit, 'read-only get');
      expectError(await ro.set(cache, 'k', 'x'), CacheSet.Error, MomentoErrorCode.PERMISSION_ERROR,
        'read-only set');

      // A non-super-user key may not mint API keys.
      const sub = new AuthClient({ credentialProvider: keyCredentials(all.apiKey) });
      expectError(await sub.generateApiKey(AllDataReadWrite, ExpiresIn.minutes(5)),
        GenerateApiKey.Error, MomentoErrorCode.PERMISSION_ERROR, 'AllDataReadWrite minting');
      sub.close?.();
    }));

  test('generateApiKey super-user: only the bootstrap key may mint one', TIMEOUT,
    withServer(() => [server], async () => {
      const su = await authClient.generateApiKey(new InternalSuperUserPermissions(), ExpiresIn.minutes(10));
      expectType(su, GenerateApiKey.Success, 'the admin key mints a super-user key');
      const c = await cacheClientFor(su.apiKey);
      expectType(await c.createCache(uid('su')), CreateCache.Success, 'a super-user key manages caches');
      const sub = new AuthClient({ credentialProvider: keyCredentials(su.apiKey) });
      expectError(await sub.generateApiKey(new InternalSuperUserPermissions(), ExpiresIn.minutes(5)),
        GenerateApiKey.Error, MomentoErrorCode.PERMISSION_ERROR, 'a super-user key minting super-user');
      expectType(await sub.generateApiKey(AllDataReadWrite, ExpiresIn.minutes(5)), GenerateApiKey.Success,
        'a super-user key mints AllDataReadWrite');
      sub.close?.();
    }));

  test('refreshApiKey returns a new working key', TIMEOUT, withServer(() => [server], async () => {
    const first = await authClient.generateApiKey(AllDataReadWrite, ExpiresIn.seconds(600));
    expectType(first, GenerateApiKey.Success);
    const refresher = new AuthClient({ credentialProvider: keyCredentials(first.apiKey) });
    const refreshed = await refresher.refreshApiKey(first.refreshToken);
    refresher.close?.();
    expectType(refreshed, RefreshApiKey.Success, 'refreshApiKey');
    assert.notEqual(refreshed.apiKey, first.apiKey);
    const c = await cacheClientFor(refreshed.apiKey);
    expectError(await c.get(uid('nope'), 'k'), CacheGet.Error, MomentoErrorCode.NOT_FOUND_ERROR,
      'the refreshed key authenticates (cache not found, not auth error)');
  }));

  test('generateDisposableToken: key and key-prefix scopes, expiry enforced', TIMEOUT,
    withServer(() => [server], async () => {
      const admin = await makeCacheClient(tokenCredentials(server, server.adminKey));
      clients.push(admin);
      const cache = uid('disp');
      expectType(await admin.createCache(cache), CreateCache.Success);
      expectType(await admin.set(cache, 'cow', 'moo'), CacheSet.Success);
      expectType(await admin.set(cache, 'horse', 'neigh'), CacheSet.Success);

      const keyTok = await authClient.generateDisposableToken(
        DisposableTokenScopes.cacheKeyReadOnly(cache, 'cow'), ExpiresIn.seconds(60), { tokenId: 'myTokenID' });
      expectType(keyTok, GenerateDisposableToken.Success, 'disposable key-scoped');
      const k = await cacheClientFor(keyTok.authToken ?? keyTok.apiKey);
      expectType(await k.get(cache, 'cow'), CacheGet.Hit, 'the granted key');
      expectError(await k.get(cache, 'horse'), CacheGet.Error, MomentoErrorCode.PERMISSION_ERROR, 'another key');
      expectError(await k.set(cache, 'cow', 'x'), CacheSet.Error, MomentoErrorCode.PERMISSION_ERROR, 'read-only');

      const prefTok = await authClient.generateDisposableToken(
        DisposableTokenScopes.cacheKeyPrefixReadWrite(cache, 'pet'), ExpiresIn.seconds(2));
      expectType(prefTok, GenerateDisposableToken.Success, 'disposable prefix-scoped');
      const p = await cacheClientFor(prefTok.authToken ?? prefTok.apiKey);
      expectType(await p.set(cache, 'petunia', 'flower'), CacheSet.Success, 'matching prefix');
      expectError(await p.set(cache, 'cow', 'x'), CacheSet.Error, MomentoErrorCode.PERMISSION_ERROR, 'other key');
      await new Promise((r) => setTimeout(r, 2300));
      expectError(await p.get(cache, 'petunia'), CacheGet.Error, MomentoErrorCode.AUTHENTICATION_ERROR,
        'expired disposable token');

      // Expiry over the maximum (1 hour by default) is refused.
      expectError(await authClient.generateDisposableToken(
        DisposableTokenScopes.cacheKeyReadOnly(cache, 'cow'), ExpiresIn.hours(2)),
      GenerateDisposableToken.Error, MomentoErrorCode.INVALID_ARGUMENT_ERROR, 'too long a lifetime');
    }));

  test('a token signed by a revoked key is refused', TIMEOUT, withServer(() => [server], async () => {
    const key = await authClient.generateApiKey(AllDataReadWrite, ExpiresIn.minutes(10));
    expectType(key, GenerateApiKey.Success);
    const c = await cacheClientFor(key.apiKey);
    expectError(await c.get(uid('none'), 'k'), CacheGet.Error, MomentoErrorCode.NOT_FOUND_ERROR, 'before');
    const adminFetch = (method, path) => fetch(`http://127.0.0.1:${server.ports.admin}${path}`,
      { method, headers: { authorization: `Bearer ${server.adminKey}` } }).then((r) => r.json());
    const rotated = await adminFetch('POST', '/v1/signing-keys/rotate');
    const { keys } = await adminFetch('GET', '/v1/signing-keys');
    for (const k of keys.filter((k) => k.id !== rotated.id && !k.revoked)) {
      await adminFetch('POST', `/v1/signing-keys/${k.id}/revoke`);
    }
    expectError(await c.get(uid('none'), 'k'), CacheGet.Error, MomentoErrorCode.AUTHENTICATION_ERROR,
      'after its signing key was revoked');
  }));
});
