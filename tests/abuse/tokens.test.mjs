// Abuse suite, tokens (issue 15 F6, F7), through the unmodified Momento Node SDK:
//   - a disposable token asking for the empty key (or prefix) is refused at minting, so no
//     token can reach keyless calls through an item selector;
//   - a disposable token mints nothing (Momento's tokens reach the data plane only);
//   - a token minted by an expiring key never outlives it, and neither do its refreshes.
// Run from tests/abuse: node --test tokens.test.mjs (the SDK comes from
// tests/conformance/momento/node_modules: run npm ci there first).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  CellarServer, expectError, expectType, makeCacheClient, tokenCredentials, uid, withServer,
} from '../conformance/momento/lib/harness.mjs';

const require = createRequire(new URL('../conformance/momento/package.json', import.meta.url));
const {
  AllDataReadWrite, AuthClient, CacheGet, CacheSet, CreateCache, CredentialProvider,
  DisposableTokenScopes, ExpiresIn, GenerateApiKey, GenerateDisposableToken, MomentoErrorCode,
  RefreshApiKey,
} = require('@gomomento/sdk');
const { InternalSuperUserPermissions } = require('@gomomento/sdk-core/dist/src/internal/utils/auth.js');

const TIMEOUT = { timeout: 30000 };
const nowS = () => Math.floor(Date.now() / 1000);

describe('abuse: token scope and lifetime', () => {
  let server;
  let adminAuth;
  let cache;
  const closers = [];

  function credentialsOf(apiKey) {
    const ep = server.apiEndpoint;
    return CredentialProvider.fromString({
      apiKey,
      endpointOverrides: { cacheEndpoint: ep, controlEndpoint: ep, tokenEndpoint: ep, secureConnection: false },
    });
  }
  function authClientOf(apiKey) {
    const a = new AuthClient({ credentialProvider: credentialsOf(apiKey) });
    closers.push(a);
    return a;
  }
  async function cacheClientOf(apiKey) {
    const c = await makeCacheClient(credentialsOf(apiKey));
    closers.push(c);
    return c;
  }
  const tokenOf = (r) => r.authToken ?? r.apiKey;

  before(async () => {
    server = await CellarServer.start({ name: 'abuse-tokens' });
    adminAuth = new AuthClient({ credentialProvider: tokenCredentials(server, server.adminKey) });
    closers.push(adminAuth);
    const admin = await makeCacheClient(tokenCredentials(server, server.adminKey));
    closers.push(admin);
    cache = uid('abuse');
    expectType(await admin.createCache(cache), CreateCache.Success);
    expectType(await admin.set(cache, 'k1', 'v1'), CacheSet.Success);
  });
  after(async () => {
    for (const c of closers) c.close?.();
    if (server) await server.stop();
  });

  test('F6: an empty key or key prefix is not a selector (INVALID_ARGUMENT at minting)', TIMEOUT,
    withServer(() => [server], async () => {
      for (const [what, scope] of [
        ['key ""', DisposableTokenScopes.cacheKeyReadWrite(cache, '')],
        ['read-only key ""', DisposableTokenScopes.cacheKeyReadOnly(cache, '')],
        ['key prefix ""', DisposableTokenScopes.cacheKeyPrefixReadWrite(cache, '')],
      ]) {
        const r = await adminAuth.generateDisposableToken(scope, ExpiresIn.seconds(60));
        expectError(r, GenerateDisposableToken.Error, MomentoErrorCode.INVALID_ARGUMENT_ERROR, what);
      }
    }));

  test('F7: a disposable token cannot mint tokens', TIMEOUT, withServer(() => [server], async () => {
    const d1 = await adminAuth.generateDisposableToken(
      DisposableTokenScopes.cacheReadWrite(cache), ExpiresIn.seconds(5));
    expectType(d1, GenerateDisposableToken.Success, 'D1');
    const asD1 = authClientOf(tokenOf(d1));
    expectError(await asD1.generateDisposableToken(
      DisposableTokenScopes.cacheReadWrite(cache), ExpiresIn.seconds(3600)),
    GenerateDisposableToken.Error, MomentoErrorCode.PERMISSION_ERROR, 'D1 minting D2');
    expectError(await asD1.generateDisposableToken(
      DisposableTokenScopes.cacheKeyReadOnly(cache, 'k1'), ExpiresIn.seconds(1)),
    GenerateDisposableToken.Error, MomentoErrorCode.PERMISSION_ERROR, 'even a narrower, shorter one');
    // D1 itself still works for data.
    expectType(await (await cacheClientOf(tokenOf(d1))).get(cache, 'k1'), CacheGet.Hit, 'D1 reads');
  }));

  test('F7: a token minted by an expiring key ends when the key ends', TIMEOUT,
    withServer(() => [server], async () => {
      const parent = await adminAuth.generateApiKey(AllDataReadWrite, ExpiresIn.seconds(3));
      expectType(parent, GenerateApiKey.Success, 'a 3 s key');
      const parentEnd = parent.expiresAt.epoch();
      const child = await authClientOf(parent.apiKey).generateDisposableToken(
        DisposableTokenScopes.cacheReadWrite(cache), ExpiresIn.seconds(3600));
      expectType(child, GenerateDisposableToken.Success, 'child asking for an hour');
      assert.ok(child.expiresAt.epoch() <= parentEnd,
        `child expires at ${child.expiresAt.epoch()}, after its parent (${parentEnd})`);
      const c = await cacheClientOf(tokenOf(child));
      expectType(await c.get(cache, 'k1'), CacheGet.Hit, 'child works while the parent lives');
      while (nowS() < parentEnd + 1) await sleep(100);
      expectError(await c.get(cache, 'k1'), CacheGet.Error, MomentoErrorCode.AUTHENTICATION_ERROR,
        'the child after its parent expired');
    }));

  test('F7: an expiring super-user key mints and refreshes nothing that outlives it', TIMEOUT,
    withServer(() => [server], async () => {
      const su = await adminAuth.generateApiKey(new InternalSuperUserPermissions(), ExpiresIn.seconds(4));
      expectType(su, GenerateApiKey.Success, 'an expiring super-user key');
      const suEnd = su.expiresAt.epoch();
      const asSu = authClientOf(su.apiKey);
      const forever = await asSu.generateApiKey(AllDataReadWrite, ExpiresIn.never());
      expectType(forever, GenerateApiKey.Success, 'a "never" key asked by an expiring key');
      assert.ok(forever.expiresAt.doesExpire(), 'the "never" key ends with its parent');
      assert.ok(forever.expiresAt.epoch() <= suEnd, `${forever.expiresAt.epoch()} > ${suEnd}`);
      const long = await asSu.generateApiKey(AllDataReadWrite, ExpiresIn.days(30));
      expectType(long, GenerateApiKey.Success);
      assert.ok(long.expiresAt.epoch() <= suEnd, `${long.expiresAt.epoch()} > ${suEnd}`);
      // Refreshing before the end keeps the end; after it, the refresh is refused.
      const refreshed = await authClientOf(long.apiKey).refreshApiKey(long.refreshToken);
      expectType(refreshed, RefreshApiKey.Success, 'refresh before the end');
      assert.ok(refreshed.expiresAt.epoch() <= suEnd, `${refreshed.expiresAt.epoch()} > ${suEnd}`);
      while (nowS() < suEnd + 1) await sleep(100);
      const late = await authClientOf(refreshed.apiKey).refreshApiKey(refreshed.refreshToken);
      expectError(late, RefreshApiKey.Error, MomentoErrorCode.AUTHENTICATION_ERROR,
        'refresh after the parent ended');
    }));
});
