// Conformance: Momento v2 API keys, through the SDK's recommended credentials
// (CredentialProvider.fromApiKeyV2 / fromEnvVarV2) over TLS. Those providers accept only a JWT
// whose payload carries "t":"g", and always connect over TLS to cache.<endpoint>,
// control.<endpoint> and token.<endpoint>. The server runs with --tls-self-signed
// --public-endpoint cellar.test, so its development certificate names those three (and
// api.cache.cellar.test); the preload lib/resolve_test_domain.mjs (node --import, as in
// package.json and tests/CMakeLists.txt) resolves *.cellar.test to 127.0.0.1 in this process.
//
// The endpoint handed to the SDK is `cellar.test:<api port>`: the server's port is picked at
// start-up, and the SDK appends no port of its own (grpc-js would use 443). A deployment on
// port 443 gives the bare domain.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import dns from 'node:dns';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// grpc-js reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once, when it is loaded (and the file itself
// at the first TLS channel): point it at where the server will write its certificate, then
// load the SDK. The server is started before any TLS channel exists.
const dataDir = mkdtempSync(join(tmpdir(), 'cellar-momento-apikey-v2-'));
const certPath = join(dataDir, 'tls', 'cert.pem');
process.env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH = certPath;

const {
  AllDataReadWrite, AuthClient, CacheDelete, CacheDictionaryFetch, CacheDictionarySetField,
  CacheGet, CacheSet, CreateCache, CredentialProvider, DisposableTokenScopes, ExpiresIn,
  GenerateApiKey, GenerateDisposableToken, ListCaches, MomentoErrorCode,
} = await import('@gomomento/sdk');
const {
  CellarServer, expectError, expectType, jwtPayload, makeCacheClient, mintToken, uid, v1ApiKey,
  withServer,
} = await import('../lib/harness.mjs');
const {
  closeTopicClient, expectSubscribed, makeTopicClient, publishOk, subscribeRecorded,
} = await import('../lib/topics_helpers.mjs');

const TIMEOUT = { timeout: 30000 };
const DOMAIN = 'cellar.test';

describe('v2 API keys over TLS (fromApiKeyV2, fromEnvVarV2)', () => {
  let server;
  let endpoint; // cellar.test:<api port>
  const clients = [];
  const topicClients = [];

  /** A key minted by the admin API (POST /v1/tokens): {token, endpoint, expires_at}. */
  const mint = (params) => mintToken(server, { tenant: 'default', ...params });
  const v2 = (apiKey) => CredentialProvider.fromApiKeyV2({ apiKey, endpoint });
  async function cacheClient(credentialProvider) {
    const c = await makeCacheClient(credentialProvider);
    clients.push(c);
    return c;
  }

  before(async () => {
    server = await CellarServer.start({
      name: 'apikey-v2', dataDir,
      extraArgs: ['--tls-self-signed', '--public-endpoint', DOMAIN],
    });
    endpoint = `${DOMAIN}:${server.ports.api}`;
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const t of topicClients) closeTopicClient(t);
    if (server) await server.stop();
    server?.cleanup();
  });

  test('the test process resolves *.cellar.test to loopback (the preload), and the development certificate names the three endpoints and api.cache', TIMEOUT,
    withServer(() => [server], async () => {
      assert.equal(globalThis.cellarTestDomainPreload, DOMAIN,
        'run with node --import ./lib/resolve_test_domain.mjs (npm test does)');
      for (const name of ['cache', 'control', 'token'].map((p) => `${p}.${DOMAIN}`)) {
        assert.equal((await dns.promises.lookup(name)).address, '127.0.0.1', name);
      }
      const cert = new X509Certificate(readFileSync(certPath));
      for (const name of ['cache', 'control', 'token', 'api.cache'].map((p) => `${p}.${DOMAIN}`)) {
        assert.equal(cert.checkHost(name), name, `certificate SANs (${cert.subjectAltName}) name ${name}`);
      }
      assert.equal(cert.checkHost(`other.${DOMAIN}`), undefined);
    }));

  test('an admin-API key is a v2 key: fromApiKeyV2 runs the control plane, scalars and a collection over TLS', TIMEOUT,
    withServer(() => [server], async () => {
      const minted = await mint({ super_user: 1 });
      assert.equal(minted.endpoint, DOMAIN, 'the admin API returns --public-endpoint');
      assert.equal(jwtPayload(minted.token).t, 'g', 'the SDK recognises a v2 key by t = "g"');
      const client = await cacheClient(v2(minted.token));

      const cache = uid('v2');
      expectType(await client.createCache(cache), CreateCache.Success, 'createCache via control.cellar.test');
      const listed = expectType(await client.listCaches(), ListCaches.Success, 'listCaches');
      assert.ok(listed.getCaches().some((c) => c.getName() === cache), 'the new cache is listed');
      expectType(await client.set(cache, 'k', 'over v2'), CacheSet.Success, 'set via cache.cellar.test');
      assert.equal(expectType(await client.get(cache, 'k'), CacheGet.Hit, 'get').valueString(), 'over v2');
      expectType(await client.delete(cache, 'k'), CacheDelete.Success, 'delete');
      expectType(await client.get(cache, 'k'), CacheGet.Miss, 'get after delete');
      expectType(await client.dictionarySetField(cache, 'd', 'f', 'v'), CacheDictionarySetField.Success,
        'dictionarySetField');
      const d = expectType(await client.dictionaryFetch(cache, 'd'), CacheDictionaryFetch.Hit, 'dictionaryFetch');
      assert.deepEqual(d.valueRecord(), { f: 'v' });
    }));

  test('topics over TLS with a v2 key: subscribe, publish, receive', TIMEOUT,
    withServer(() => [server], async () => {
      const { token } = await mint({ super_user: 1 });
      const control = await cacheClient(v2(token));
      const cache = uid('v2-topics');
      expectType(await control.createCache(cache), CreateCache.Success);
      const tc = makeTopicClient(v2(token));
      topicClients.push(tc);
      const topic = uid('t');
      const rec = expectSubscribed(await subscribeRecorded(tc, cache, topic), 'subscribe with a v2 key');
      await publishOk(tc, cache, topic, 'hello v2', 'publish with a v2 key');
      await rec.waitItems(1);
      assert.equal(rec.items[0].valueString(), 'hello v2');
      rec.unsubscribe();
    }));

  test('fromEnvVarV2 (MOMENTO_API_KEY and MOMENTO_ENDPOINT) with a CLI-shaped key', TIMEOUT,
    withServer(() => [server], async () => {
      const { token } = await mint({ super_user: 1 });
      const saved = { key: process.env.MOMENTO_API_KEY, ep: process.env.MOMENTO_ENDPOINT };
      let creds;
      try {
        process.env.MOMENTO_API_KEY = token;
        process.env.MOMENTO_ENDPOINT = endpoint;
        creds = CredentialProvider.fromEnvVarV2();
      } finally {
        for (const [k, v] of [['MOMENTO_API_KEY', saved.key], ['MOMENTO_ENDPOINT', saved.ep]]) {
          if (v === undefined) delete process.env[k]; else process.env[k] = v;
        }
      }
      assert.equal(creds.getCacheEndpoint(), `cache.${endpoint}`);
      assert.equal(creds.isEndpointSecure(), true);
      const client = await cacheClient(creds);
      const cache = uid('v2-env');
      expectType(await client.createCache(cache), CreateCache.Success, 'createCache via fromEnvVarV2');
      expectType(await client.set(cache, 'k', 'env'), CacheSet.Success);
      assert.equal((await client.get(cache, 'k')).value(), 'env');
    }));

  test('AuthClient over TLS with a v2 key: generateApiKey returns a v2 key inside the v1 wrapper; generateDisposableToken works', TIMEOUT,
    withServer(() => [server], async () => {
      const { token } = await mint({ super_user: 1 });
      const cache = uid('v2-auth');
      const owner = await cacheClient(v2(token));
      expectType(await owner.createCache(cache), CreateCache.Success);
      expectType(await owner.set(cache, 'cow', 'moo'), CacheSet.Success);

      const auth = new AuthClient({ credentialProvider: v2(token) });
      try {
        const key = expectType(await auth.generateApiKey(AllDataReadWrite, ExpiresIn.minutes(10)),
          GenerateApiKey.Success, 'generateApiKey via control.cellar.test');
        assert.equal(key.endpoint, DOMAIN, 'endpoint: --public-endpoint, bare');
        // The SDK wraps the response into a v1 key: base64(JSON {endpoint, api_key}).
        const wrapped = JSON.parse(Buffer.from(key.apiKey, 'base64').toString('utf8'));
        assert.equal(wrapped.endpoint, DOMAIN);
        assert.equal(jwtPayload(wrapped.api_key).t, 'g', 'api_key is a v2 key');
        // The inner key works with fromApiKeyV2 and the returned endpoint...
        const viaV2 = await cacheClient(CredentialProvider.fromApiKeyV2({
          apiKey: wrapped.api_key, endpoint: `${key.endpoint}:${server.ports.api}`,
        }));
        assert.equal((await viaV2.get(cache, 'cow')).value(), 'moo');
        // ...and the v1 wrapper works as the SDK hands it out (fromString), over TLS too.
        const viaV1 = await cacheClient(CredentialProvider.fromString({
          apiKey: key.apiKey, endpointOverrides: { baseEndpoint: endpoint },
        }));
        assert.equal((await viaV1.get(cache, 'cow')).value(), 'moo');

        const disposable = expectType(await auth.generateDisposableToken(
          DisposableTokenScopes.cacheKeyReadOnly(cache, 'cow'), ExpiresIn.seconds(60)),
        GenerateDisposableToken.Success, 'generateDisposableToken via token.cellar.test');
        assert.equal(disposable.endpoint, DOMAIN);
        // Momento's shape: a v1 key the SDK reads back with fromDisposableToken.
        const inner = JSON.parse(Buffer.from(disposable.authToken, 'base64').toString('utf8')).api_key;
        assert.equal(jwtPayload(inner).t, undefined, 'a disposable token is not a v2 key');
        const dc = await cacheClient(CredentialProvider.fromDisposableToken({
          apiKey: disposable.authToken, endpointOverrides: { baseEndpoint: endpoint },
        }));
        assert.equal((await dc.get(cache, 'cow')).value(), 'moo');
        expectError(await dc.set(cache, 'cow', 'x'), CacheSet.Error, MomentoErrorCode.PERMISSION_ERROR,
          'a read-only disposable token cannot write');
      } finally {
        auth.close?.();
      }
    }));

  test('refused: a tampered v2 key, an expired v2 key (AUTHENTICATION_ERROR); the raw admin key in a v1 wrapper still works over TLS', TIMEOUT,
    withServer(() => [server], async () => {
      const cache = uid('v2-refuse');
      const { token } = await mint({ super_user: 1 });
      expectType(await (await cacheClient(v2(token))).createCache(cache), CreateCache.Success);

      // A read-only key promoted to super-user: still "t":"g", so the SDK sends it; the
      // signature no longer matches.
      const ro = (await mint({ role: 'ro', cache })).token;
      const [h, p, s] = ro.split('.');
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
      claims.p = { su: true };
      const tampered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
      const forged = await cacheClient(v2(tampered));
      expectError(await forged.set(cache, 'k', 'x'), CacheSet.Error, MomentoErrorCode.AUTHENTICATION_ERROR,
        'tampered v2 key');

      // Long enough for the client's TLS set-up and first call on a loaded 2-core machine (a
      // 1 s token once expired before its first call there), then waited out from its own
      // expires_at.
      const short = await mint({ super_user: 1, expires_in: 5 });
      assert.ok(Number.isInteger(short.expires_at), `expires_at: ${JSON.stringify(short)}`);
      const expiring = await cacheClient(v2(short.token));
      expectType(await expiring.set(cache, 'k', 'before'), CacheSet.Success, 'before expiry');
      await new Promise((r) => setTimeout(r, Math.max(0, short.expires_at * 1000 + 1100 - Date.now())));
      expectError(await expiring.get(cache, 'k'), CacheGet.Error, MomentoErrorCode.AUTHENTICATION_ERROR,
        'expired v2 key');

      // The bootstrap admin key (raw hex) wrapped as a v1 key, over TLS to cache.cellar.test.
      const v1 = await cacheClient(CredentialProvider.fromString({
        apiKey: v1ApiKey(server.adminKey, endpoint),
      }));
      assert.equal((await v1.get(cache, 'k')).value(), 'before');
    }));
});
