// Shared harness for the Momento conformance suite: starts the real `cellar` binary on free
// ports, builds unmodified @gomomento/sdk clients against it, and talks RESP to the same caches.
//
// Environment:
//   CELLAR_BIN        path to the cellar binary (default: <repo>/build/release/src/bin/cellar)
//   CELLAR_KEEP_DATA  1 = keep every server's data dir (log included) even when all tests pass
//   CELLAR_SDK_LOG    SDK log level: trace|debug|info|warn|error (default: error)
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import {
  CacheClient,
  Configurations,
  CredentialProvider,
  DefaultMomentoLoggerFactory,
  DefaultMomentoLoggerLevel,
} from '@gomomento/sdk';
import { createClient } from 'redis';

const here = dirname(fileURLToPath(import.meta.url));
// tests/conformance/momento/lib -> repository root
export const REPO_ROOT = resolve(here, '..', '..', '..', '..');
export const CELLAR_BIN =
  process.env.CELLAR_BIN ?? join(REPO_ROOT, 'build', 'release', 'src', 'bin', 'cellar');

const START_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 15000;

/** Default item size limit: 4883 KiB of value. */
export const DEFAULT_MAX_ITEM_SIZE = 4883 * 1024; // 5,000,192

// ---------------------------------------------------------------------------------------------
// Unique names

let counter = 0;
const runTag = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
/** A name unique to this run and call: `<prefix>-<run tag>-<n>`. */
export function uid(prefix = 'k') {
  counter += 1;
  return `${prefix}-${runTag}-${counter}`;
}

// ---------------------------------------------------------------------------------------------
// The server process

export class CellarServer {
  /**
   * Start `cellar serve` on free ports in a fresh data dir and wait for ports.json.
   * `dataDir`: use this (existing, empty) directory instead of a fresh one, e.g. to know where
   * --tls-self-signed will write DATA_DIR/tls/cert.pem before the SDK is loaded.
   * @param {{devNoAuth?: boolean, maxItemSize?: string|number, threads?: number, extraArgs?: string[], name?: string, dataDir?: string}} opts
   */
  static async start(opts = {}) {
    const s = new CellarServer();
    await s.#start(opts);
    return s;
  }

  async #start({ devNoAuth = false, maxItemSize, threads = 2, extraArgs = [], name = 'server', dataDir }) {
    this.name = name;
    if (!existsSync(CELLAR_BIN)) {
      throw new Error(`cellar binary not found at ${CELLAR_BIN} (set CELLAR_BIN or build the release preset)`);
    }
    this.dir = dataDir ?? mkdtempSync(join(tmpdir(), `cellar-momento-${name}-`));
    this.logPath = join(this.dir, 'cellar.log');
    const args = ['serve', '--data-dir', this.dir, '--resp-port', '0', '--admin-port', '0',
      '--api-port', '0', '--threads', String(threads)];
    if (devNoAuth) args.push('--dev-no-auth');
    if (maxItemSize !== undefined) args.push('--max-item-size', String(maxItemSize));
    args.push(...extraArgs);
    const ownTls = extraArgs.some((a) => a.startsWith('--tls-') || a === '--public-endpoint');
    if (V2_MODE && !ownTls) {
      const tls = process.env.CELLAR_V2_TLS_DIR;
      assert.ok(tls, 'CELLAR_CREDENTIALS=v2 needs the preload lib/resolve_test_domain.mjs (node --import)');
      args.push('--tls-cert', join(tls, 'cert.pem'), '--tls-key', join(tls, 'key.pem'),
        '--public-endpoint', 'cellar.test');
    }
    this.args = args;
    const logFd = openSync(this.logPath, 'a');
    try {
      this.proc = spawn(CELLAR_BIN, args, { stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    this.exit = null;
    this.exited = new Promise((res) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        res(this.exit);
      });
      this.proc.on('error', (err) => {
        this.exit = { code: null, signal: null, error: err };
        res(this.exit);
      });
    });

    const portsFile = join(this.dir, 'ports.json');
    const deadline = Date.now() + START_TIMEOUT_MS;
    let last = '';
    for (;;) {
      if (this.exit) {
        throw new Error(`cellar (${name}) exited during start-up (${fmtExit(this.exit)})\n${this.logTail()}`);
      }
      if (existsSync(portsFile)) {
        try {
          last = readFileSync(portsFile, 'utf8');
          const p = JSON.parse(last);
          if (p.pid === this.proc.pid) {
            this.ports = p;
            break;
          }
        } catch { /* partially visible or stale: retry */ }
      }
      if (Date.now() > deadline) {
        this.proc.kill('SIGKILL');
        throw new Error(`cellar (${name}): no ports.json with pid ${this.proc.pid} within ${START_TIMEOUT_MS} ms ` +
          `(last content: ${last || 'none'})\n${this.logTail()}`);
      }
      await sleep(25);
    }
    for (const k of ['resp', 'api', 'admin']) {
      if (!Number.isInteger(this.ports[k]) || this.ports[k] <= 0) {
        const msg = `cellar (${name}): ports.json has no usable "${k}" port: ${JSON.stringify(this.ports)}\n${this.logTail()}`;
        await this.stop();
        throw new Error(msg);
      }
    }
    this.adminKey = readFileSync(join(this.dir, 'admin.key'), 'utf8').trim();
    assert.match(this.adminKey, /^[0-9a-f]{64}$/, 'admin.key holds 64 hex chars');
    if (V2_MODE && !ownTls) {
      // What localCredentials hands the SDK in v2 mode: a super-user key of tenant default.
      this.v2Key = (await mintToken(this, { tenant: 'default', super_user: '1' })).token;
      assert.ok(isV2Key(this.v2Key), `minted a v2 key: ${this.v2Key}`);
    }
    this.failed = false;
  }

  get apiEndpoint() { return `127.0.0.1:${this.ports.api}`; }
  /** The endpoint keys minted here name: --public-endpoint in v2 mode, else bind:api-port. */
  get publicEndpoint() { return this.v2Key ? 'cellar.test' : this.apiEndpoint; }

  /** Whether the child is still running. */
  get alive() { return this.exit === null; }

  /** The last `lines` lines of the server's combined stdout/stderr. */
  logTail(lines = 40) {
    try {
      if (!existsSync(this.logPath)) return '(no cellar log)';
      const size = statSync(this.logPath).size;
      const text = readFileSync(this.logPath, 'utf8');
      const tail = text.split('\n').slice(-lines - 1).join('\n');
      return `--- cellar (${this.name}) log tail: ${this.logPath} (${size} bytes) ---\n${tail}\n--- end of log ---`;
    } catch (e) {
      return `(could not read cellar log: ${e})`;
    }
  }

  /** SIGTERM and wait (SIGKILL after the timeout). Idempotent. Returns {code, signal, ms}. */
  async stop() {
    if (!this.proc) return null;
    const t0 = Date.now();
    if (this.exit === null) this.proc.kill('SIGTERM');
    let killed = false;
    const timer = setTimeout(() => { killed = true; this.proc.kill('SIGKILL'); }, STOP_TIMEOUT_MS);
    const res = await this.exited;
    clearTimeout(timer);
    this.stopResult ??= { ...res, ms: Date.now() - t0, killed };
    return this.stopResult;
  }

  /** Remove the data dir unless something failed or CELLAR_KEEP_DATA is set. */
  cleanup() {
    if (this.failed || process.env.CELLAR_KEEP_DATA === '1') {
      process.stderr.write(`cellar (${this.name}) data dir kept: ${this.dir}\n`);
      return;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function fmtExit(e) {
  if (e.error) return `spawn error: ${e.error.message}`;
  return e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
}

/**
 * Wrap a test body so that a failure prints the server log tail (and whether the server died),
 * and keeps the data dir for inspection.
 */
export function withServer(getServers, fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      for (const s of [].concat(getServers()).filter(Boolean)) {
        s.failed = true;
        const state = s.alive ? 'still running' : `NOT RUNNING (${fmtExit(s.exit)})`;
        t.diagnostic(`cellar (${s.name}) is ${state}`);
        for (const line of s.logTail(25).split('\n')) t.diagnostic(line);
      }
      throw err;
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Admin API

/** An admin-API request with the bootstrap key: {status, body (parsed JSON)}. */
export async function adminRequest(server, method, path) {
  const res = await fetch(`http://127.0.0.1:${server.ports.admin}${path}`, {
    method, headers: { authorization: `Bearer ${server.adminKey}` },
  });
  return { status: res.status, body: await res.json() };
}

/** POST /v1/tokens with `params`; asserts 201 and returns {token, endpoint, expires_at}. */
export async function mintToken(server, params) {
  const r = await adminRequest(server, 'POST', `/v1/tokens?${new URLSearchParams(params)}`);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

// ---------------------------------------------------------------------------------------------
// SDK clients

const LOG_LEVELS = {
  trace: DefaultMomentoLoggerLevel.TRACE,
  debug: DefaultMomentoLoggerLevel.DEBUG,
  info: DefaultMomentoLoggerLevel.INFO,
  warn: DefaultMomentoLoggerLevel.WARN,
  error: DefaultMomentoLoggerLevel.ERROR,
};
export const loggerFactory = new DefaultMomentoLoggerFactory(
  LOG_LEVELS[(process.env.CELLAR_SDK_LOG ?? 'error').toLowerCase()] ?? DefaultMomentoLoggerLevel.ERROR);

// CELLAR_CREDENTIALS=v2 (ctest conformance.momento_sdk_v2): the suite runs again through the
// SDK's v2 credentials. Every server serves TLS with the preload's certificate for
// *.cellar.test (--public-endpoint cellar.test), and every v2 key (a JWT whose payload has
// "t":"g": what Cellar mints) reaches the SDK through CredentialProvider.fromApiKeyV2 over TLS
// to cache./control./token.cellar.test:<port>; a --dev-no-auth server's calls carry a v2
// super-user key minted at start instead of forMomentoLocal's empty one. Keys that are not v2
// (the hex admin key, garbage on purpose) go the v1 way as before.
export const V2_MODE = process.env.CELLAR_CREDENTIALS === 'v2';

/** The JSON payload of a JWT (no signature check: what the SDK's jwt-decode reads). */
export function jwtPayload(jwt) {
  return JSON.parse(Buffer.from(String(jwt).split('.')[1], 'base64url').toString('utf8'));
}

/** Whether `token` is a Momento v2 API key: a JWT whose payload carries "t":"g". */
export function isV2Key(token) {
  try {
    return jwtPayload(token).t === 'g';
  } catch {
    return false;
  }
}

function v2Credentials(server, apiKey) {
  return CredentialProvider.fromApiKeyV2({ apiKey, endpoint: `cellar.test:${server.ports.api}` });
}

/** Credentials sending the empty token, as momento-local's (plaintext), in every mode. */
export function emptyTokenCredentials(server) {
  return CredentialProvider.forMomentoLocal({ hostname: '127.0.0.1', port: server.ports.api });
}

/** Credentials for a --dev-no-auth server: plaintext, empty token (v2 mode: see V2_MODE). */
export function localCredentials(server) {
  if (V2_MODE && server.v2Key) return v2Credentials(server, server.v2Key);
  return CredentialProvider.forMomentoLocal({ hostname: '127.0.0.1', port: server.ports.api });
}

/**
 * A v1 Momento API key (what GenerateApiKey hands out): base64(JSON {api_key, endpoint}).
 * The SDK sends `api_key` verbatim as the `authorization` header.
 */
export function v1ApiKey(rawToken, endpoint = 'localhost') {
  return Buffer.from(JSON.stringify({ api_key: rawToken, endpoint })).toString('base64');
}

/**
 * Credentials that make the unmodified SDK send `rawToken` as the authorization header over
 * plaintext h2c to the server's API port (cache, control and token endpoints all the same).
 */
export function tokenCredentials(server, rawToken) {
  if (V2_MODE && isV2Key(rawToken)) return v2Credentials(server, rawToken);
  const ep = server.apiEndpoint;
  return CredentialProvider.fromString({
    apiKey: v1ApiKey(rawToken),
    endpointOverrides: { cacheEndpoint: ep, controlEndpoint: ep, tokenEndpoint: ep, secureConnection: false },
  });
}

/**
 * A connected CacheClient (Laptop config: 5 s deadline). The caller must close() it, or the
 * gRPC channels keep the test process alive.
 */
export async function makeCacheClient(credentialProvider, { defaultTtlSeconds = 300 } = {}) {
  return CacheClient.create({
    configuration: Configurations.Laptop.v1(loggerFactory),
    credentialProvider,
    defaultTtlSeconds,
    eagerConnectTimeout: 10,
  });
}

// ---------------------------------------------------------------------------------------------
// RESP

/**
 * A node-redis client on the server's RESP port. With `cache`, every (re)connection sends
 * AUTH <cache> <key>; without, none (a --dev-no-auth server then uses cache "default").
 */
export async function makeRespClient(server, { cache, key } = {}) {
  const opts = { socket: { host: '127.0.0.1', port: server.ports.resp, reconnectStrategy: false } };
  if (cache !== undefined) {
    opts.username = cache;
    opts.password = key ?? server.adminKey;
  }
  const c = createClient(opts);
  c.on('error', () => {});
  await c.connect();
  return c;
}

// ---------------------------------------------------------------------------------------------
// Assertions on SDK responses

/** Human-readable description of any SDK response (type + error details). */
export function showResponse(resp) {
  if (resp === null || resp === undefined) return String(resp);
  const cls = resp.constructor?.name ?? typeof resp;
  let s = `${cls}{type=${resp.type}}`;
  if (typeof resp.errorCode === 'function') {
    try { s += ` errorCode=${resp.errorCode()} message=${JSON.stringify(resp.message())}`; } catch { /* */ }
  }
  return s;
}

/** Assert that `resp` is an instance of `cls` (e.g. CacheGet.Hit) and its `.type` matches. */
export function expectType(resp, cls, what = '') {
  if (!(resp instanceof cls)) {
    assert.fail(`${what ? `${what}: ` : ''}expected ${cls.name} response, got ${showResponse(resp)}`);
  }
  return resp;
}

/** Assert an SDK error response with the given MomentoErrorCode; returns it. */
export function expectError(resp, errorClassOfResponse, code, what = '') {
  expectType(resp, errorClassOfResponse, what);
  assert.equal(resp.errorCode(), code, `${what ? `${what}: ` : ''}errorCode (${showResponse(resp)})`);
  return resp;
}

/** Uint8Array with every byte value 0..255 (in order), optionally rotated. */
export function allBytes(rotate = 0) {
  const b = new Uint8Array(256);
  for (let i = 0; i < 256; i++) b[i] = (i + rotate) & 0xff;
  return b;
}

export { sleep };
