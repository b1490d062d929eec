// Conformance: the API port over TLS (ALPN h2) with the unmodified SDK, and h2c on the same
// port. A throwaway self-signed certificate for localhost/127.0.0.1 is made with openssl; the
// SDK (grpc-js) trusts it through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http2 from 'node:http2';

// grpc-js reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once, when it is loaded: make the certificate
// and set the variable first, then load the SDK (and the harness, which imports it).
const certDir = mkdtempSync(join(tmpdir(), 'cellar-tls-'));
const certPath = join(certDir, 'cert.pem');
const keyPath = join(certDir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
  'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1',
  '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
{ stdio: 'ignore' });
process.env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH = certPath;

const { CacheGet, CacheSet, CreateCache, CredentialProvider } = await import('@gomomento/sdk');
const {
  CellarServer, expectType, makeCacheClient, tokenCredentials, uid, v1ApiKey, withServer,
} = await import('../lib/harness.mjs');

const TIMEOUT = { timeout: 20000 };

describe('API port over TLS', () => {
  let server;
  const clients = [];

  before(async () => {
    server = await CellarServer.start({
      name: 'tls', extraArgs: ['--tls-cert', certPath, '--tls-key', keyPath],
    });
  });

  after(async () => {
    for (const c of clients) c.close();
    if (server) await server.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  const tlsCredentials = (token) => {
    const ep = `localhost:${server.ports.api}`;
    return CredentialProvider.fromString({
      apiKey: v1ApiKey(token),
      endpointOverrides: { cacheEndpoint: ep, controlEndpoint: ep, tokenEndpoint: ep, secureConnection: true },
    });
  };

  test('the SDK over TLS: create a cache, set and get', TIMEOUT, withServer(() => [server], async () => {
    const client = await makeCacheClient(tlsCredentials(server.adminKey));
    clients.push(client);
    const cache = uid('tls-cache');
    expectType(await client.createCache(cache), CreateCache.Success, 'createCache over TLS');
    expectType(await client.set(cache, 'k', 'over-tls'), CacheSet.Success, 'set over TLS');
    const got = await client.get(cache, 'k');
    expectType(got, CacheGet.Hit, 'get over TLS');
    assert.equal(got.valueString(), 'over-tls');

    // The same port still speaks h2c with prior knowledge, and sees the same data.
    const plain = await makeCacheClient(tokenCredentials(server, server.adminKey));
    clients.push(plain);
    const again = await plain.get(cache, 'k');
    expectType(again, CacheGet.Hit, 'get over h2c on the TLS-enabled port');
    assert.equal(again.valueString(), 'over-tls');
  }));

  test('ALPN picks h2 and a gRPC call answers over it', TIMEOUT, withServer(() => [server], async () => {
    const session = http2.connect(`https://localhost:${server.ports.api}`, {
      ca: readFileSync(certPath), ALPNProtocols: ['h2', 'http/1.1'],
    });
    try {
      await new Promise((res, rej) => { session.once('connect', res); session.once('error', rej); });
      assert.equal(session.alpnProtocol, 'h2');
      const req = session.request({
        ':method': 'POST', ':path': '/cache_client.Ping/Ping', 'content-type': 'application/grpc',
        te: 'trailers', authorization: server.adminKey,
      });
      req.end(Buffer.from([0, 0, 0, 0, 0]));
      const status = await new Promise((res, rej) => {
        let s = null;
        req.on('response', (h) => { if (h['grpc-status'] !== undefined) s = h['grpc-status']; });
        req.on('trailers', (t) => { s = t['grpc-status']; });
        req.on('data', () => {});
        req.on('end', () => res(s));
        req.on('error', rej);
      });
      assert.equal(status, '0');
    } finally {
      session.close();
    }
  }));
});
