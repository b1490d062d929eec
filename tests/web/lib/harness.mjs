// Harness of the browser test: the real `cellar` binary on free ports, static HTTP servers for
// the test page on other loopback addresses (so the page's origin is not the API's and CORS is
// exercised), the page's script bundled by esbuild, and Debian's Chromium driven by
// playwright-core.
//
// Environment:
//   CELLAR_BIN           the binary under test (default <repo>/build/release/src/bin/cellar)
//   CELLAR_CHROMIUM      the browser (default /usr/bin/chromium, Debian package chromium)
//   CELLAR_ARTIFACT_DIR  where web-*.png screenshots go (default: the build dir of CELLAR_BIN,
//                        else <tmp>/cellar-web-artifacts)
//   CELLAR_KEEP_DATA     1 = keep the server's data dir (log included) even when all tests pass
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import {
  CacheClient, Configurations, CredentialProvider, DefaultMomentoLoggerFactory,
  DefaultMomentoLoggerLevel, TopicClient, TopicConfigurations,
} from '@gomomento/sdk';

const here = dirname(fileURLToPath(import.meta.url));
export const WEB_DIR = resolve(here, '..');
export const REPO_ROOT = resolve(WEB_DIR, '..', '..');
export const CELLAR_BIN =
  process.env.CELLAR_BIN ?? join(REPO_ROOT, 'build', 'release', 'src', 'bin', 'cellar');
export const CHROMIUM = process.env.CELLAR_CHROMIUM ?? '/usr/bin/chromium';

/** Every wait of the suite is at most this long. */
export const WAIT_MS = 20000;

let counter = 0;
const runTag = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
/** A name unique to this run and call: `<prefix>-<run tag>-<n>`. */
export function uid(prefix = 'w') {
  counter += 1;
  return `${prefix}-${runTag}-${counter}`;
}

// ---------------------------------------------------------------------------------------------
// The server (the same start-up contract as tests/conformance/momento/lib/harness.mjs: port 0
// everywhere, then DATA_DIR/ports.json with our pid, and DATA_DIR/admin.key)

export class CellarServer {
  /** `cellar serve` on free ports in a fresh data dir, plus `extraArgs`. */
  static async start({ extraArgs = [], threads = 2 } = {}) {
    if (!existsSync(CELLAR_BIN)) {
      throw new Error(`cellar binary not found at ${CELLAR_BIN} (set CELLAR_BIN or build the release preset)`);
    }
    const s = new CellarServer();
    s.dir = mkdtempSync(join(tmpdir(), 'cellar-web-'));
    s.logPath = join(s.dir, 'cellar.log');
    s.args = ['serve', '--data-dir', s.dir, '--resp-port', '0', '--admin-port', '0', '--api-port', '0',
      '--threads', String(threads), ...extraArgs];
    const fd = openSync(s.logPath, 'a');
    try {
      s.proc = spawn(CELLAR_BIN, s.args, { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    s.exit = null;
    s.exited = new Promise((res) => {
      s.proc.on('exit', (code, signal) => res(s.exit = { code, signal }));
      s.proc.on('error', (error) => res(s.exit = { error: error.message }));
    });
    const portsFile = join(s.dir, 'ports.json');
    const deadline = Date.now() + 15000;
    while (!s.ports) {
      if (s.exit) throw new Error(`cellar exited during start-up (${JSON.stringify(s.exit)})\n${s.logTail()}`);
      try {
        const p = JSON.parse(readFileSync(portsFile, 'utf8'));
        if (p.pid === s.proc.pid) s.ports = p;
      } catch { /* not there yet, or partially written */ }
      if (!s.ports && Date.now() > deadline) {
        s.proc.kill('SIGKILL');
        throw new Error(`cellar: no ports.json with pid ${s.proc.pid} within 15 s\n${s.logTail()}`);
      }
      if (!s.ports) await sleep(25);
    }
    s.adminKey = readFileSync(join(s.dir, 'admin.key'), 'utf8').trim();
    s.failed = false;
    return s;
  }

  get alive() { return this.exit === null; }
  get apiEndpoint() { return `127.0.0.1:${this.ports.api}`; }
  /** The origin the page talks to: plaintext HTTP/1.1 on the API port. */
  get apiBase() { return `http://${this.apiEndpoint}`; }
  /** The same port over TLS (with --tls-self-signed): a browser speaks HTTP/2 to it (ALPN). */
  get apiBaseTls() { return `https://${this.apiEndpoint}`; }

  logTail(lines = 40) {
    try {
      const tail = readFileSync(this.logPath, 'utf8').split('\n').slice(-lines - 1).join('\n');
      return `--- cellar log tail (${this.logPath}) ---\n${tail}\n--- end of log ---`;
    } catch (e) {
      return `(no cellar log: ${e.message})`;
    }
  }

  /** SIGTERM, SIGKILL after 15 s. */
  async stop() {
    if (!this.proc) return;
    if (this.exit === null) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(timer);
  }

  cleanup() {
    if (this.failed || process.env.CELLAR_KEEP_DATA === '1') {
      process.stderr.write(`cellar data dir kept: ${this.dir}\n`);
      return;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** An admin-API request with the bootstrap key: {status, body}. */
export async function adminRequest(server, method, path) {
  const res = await fetch(`http://127.0.0.1:${server.ports.admin}${path}`, {
    method, headers: { authorization: `Bearer ${server.adminKey}` },
  });
  return { status: res.status, body: await res.json() };
}

/** POST /v1/tokens (docs/interfaces.md): a Momento v2 API key (a JWT, payload "t":"g"). */
export async function mintToken(server, params) {
  const r = await adminRequest(server, 'POST', `/v1/tokens?${new URLSearchParams(params)}`);
  assert.equal(r.status, 201, `POST /v1/tokens: ${JSON.stringify(r.body)}`);
  return r.body.token;
}

/** A v1 Momento API key: base64(JSON {api_key, endpoint}); SDKs send api_key as is. */
export function v1ApiKey(rawToken, endpoint = 'localhost') {
  return Buffer.from(JSON.stringify({ api_key: rawToken, endpoint })).toString('base64');
}

// ---------------------------------------------------------------------------------------------
// The Node SDK (gRPC over h2c to the same API port): creates caches, publishes

export const loggerFactory = new DefaultMomentoLoggerFactory(DefaultMomentoLoggerLevel.ERROR);

/** Node SDK credentials sending `rawToken` to the server's API port over h2c. */
export function nodeCredentials(server, rawToken) {
  const ep = server.apiEndpoint;
  return CredentialProvider.fromString({
    apiKey: v1ApiKey(rawToken),
    endpointOverrides: { cacheEndpoint: ep, controlEndpoint: ep, tokenEndpoint: ep, secureConnection: false },
  });
}

export function nodeCacheClient(credentialProvider) {
  return CacheClient.create({
    configuration: Configurations.Laptop.v1(loggerFactory),
    credentialProvider,
    defaultTtlSeconds: 300,
    eagerConnectTimeout: 10,
  });
}

export function nodeTopicClient(credentialProvider) {
  return new TopicClient({ configuration: TopicConfigurations.Default.latest(loggerFactory), credentialProvider });
}

/** TopicClient has no close(): close its gRPC channels (SDK 1.118.1 internals, as the
 * conformance suite's closeTopicClient does) so the test process can exit. */
export function closeTopicClient(tc) {
  if (!tc) return;
  for (const s of tc.pubsubStreamClients ?? []) s.client?.client?.close?.();
  for (const u of tc.pubsubUnaryClients ?? []) u.client?.close?.();
  tc.webhookClient?.webhookClient?.close?.();
}

// ---------------------------------------------------------------------------------------------
// The page: bundled once, served by static servers on other loopback addresses

/** esbuild --bundle --platform=browser --format=iife --target=es2020 of page/entry.js. */
export async function bundlePage() {
  const r = await esbuild.build({
    entryPoints: [join(WEB_DIR, 'page', 'entry.js')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2020',
    write: false,
    logLevel: 'silent',
  });
  assert.equal(r.errors.length, 0, JSON.stringify(r.errors));
  return r.outputFiles[0].text;
}

export const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>cellar web test</title></head>
<body><h1>cellar web test</h1><pre id="state"></pre>
<script src="/bundle.js"></script>
<script>window.cellarShow = () => {
  document.getElementById('state').textContent = JSON.stringify(window.cellar, null, 1);
};
setInterval(window.cellarShow, 250);</script>
</body></html>
`;

/**
 * A static server on `host`:<free port> serving the page at / and its bundle at /bundle.js.
 * Returns {origin, close(), requests}.
 */
export async function startStaticServer(host, bundle) {
  const requests = [];
  const srv = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE_HTML);
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else if (req.url === '/bundle.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      res.end(bundle);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((res, rej) => { srv.once('error', rej); srv.listen(0, host, res); });
  return {
    origin: `http://${host}:${srv.address().port}`,
    requests,
    close: () => new Promise((res) => { srv.closeAllConnections?.(); srv.close(() => res()); }),
  };
}

// ---------------------------------------------------------------------------------------------
// The browser

export function artifactDir() {
  if (process.env.CELLAR_ARTIFACT_DIR) return process.env.CELLAR_ARTIFACT_DIR;
  // <build dir>/src/bin/cellar -> <build dir>, when that is a CMake build dir.
  const build = resolve(dirname(CELLAR_BIN), '..', '..');
  if (existsSync(join(build, 'CMakeCache.txt'))) return build;
  return join(tmpdir(), 'cellar-web-artifacts');
}

/**
 * Debian's Chromium, headless, one context. A test's pages (newPage() between beginTest() and
 * endTest()) record their console errors and warnings, page errors, failed requests and HTTP
 * errors in `log`; endTest() saves each as <artifact dir>/web-<label>-<page>.png (every test,
 * passed or failed: the artefacts to look at) and closes them.
 */
export class Browser {
  static async launch() {
    const b = new Browser();
    b.browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--disable-dev-shm-usage', '--disable-gpu'],
      timeout: WAIT_MS,
    });
    // The server's development certificate (--tls-self-signed) is not in Chromium's store.
    b.context = await b.browser.newContext({ ignoreHTTPSErrors: true });
    b.beginTest();
    return b;
  }

  beginTest() {
    this.pages = new Map();
    this.log = [];
  }

  /** Screenshots every page (a test's artefacts, failed or not) and closes them; returns the
   * screenshots' paths. */
  async endTest(label) {
    const saved = await this.#screenshots(label);
    for (const page of this.pages.values()) {
      try { await page.close(); } catch { /* */ }
    }
    this.pages = new Map();
    return saved;
  }

  /** A page named `name` at `url`, once `ready` holds in it (default: its bundle has run,
   * window.cellarReady). */
  async newPage(name, url, ready = () => window.cellarReady === true) {
    const page = await this.context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    this.pages.set(name, page);
    const note = (line) => this.log.push(`[${name}] ${line}`);
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') note(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => note(`pageerror: ${e.stack || e.message}`));
    page.on('requestfailed', (r) => {
      // ERR_ABORTED: the page's own abort (a raw SSE read stops once it has what it wants).
      const why = r.failure()?.errorText;
      if (why !== 'net::ERR_ABORTED') note(`requestfailed: ${r.method()} ${r.url()}: ${why}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) note(`response ${r.status()}: ${r.request().method()} ${r.url()}`);
    });
    await page.goto(url, { timeout: WAIT_MS });
    await page.waitForFunction(ready, null, { timeout: WAIT_MS });
    return page;
  }

  async #screenshots(label) {
    const dir = artifactDir();
    mkdirSync(dir, { recursive: true });
    const saved = [];
    for (const [name, page] of this.pages) {
      if (page.isClosed()) continue;
      const path = join(dir, `web-${label}-${name}.png`.replace(/[^A-Za-z0-9._/-]+/g, '_'));
      try {
        await page.evaluate(() => window.cellarShow?.()).catch(() => {});
        await page.screenshot({ path, fullPage: true, timeout: 5000 });
        saved.push(path);
      } catch (e) {
        saved.push(`(${name}: no screenshot: ${e.message})`);
      }
    }
    return saved;
  }

  async close() {
    await this.browser?.close();
  }
}

/** Start window[fn](arg) in the page; it records its outcome in window.cellar, never awaited. */
export async function start(page, fn, arg) {
  await page.evaluate(([f, a]) => { window[f](a); }, [fn, arg]);
}

/** window.cellar as JSON (for failure messages). */
export async function pageState(page) {
  try {
    return JSON.stringify(await page.evaluate(() => window.cellar), null, 1);
  } catch (e) {
    return `(page state unavailable: ${e.message})`;
  }
}

/**
 * Wait (at most `timeout`, ≤ WAIT_MS) until `predicate(window.cellar, arg)` is truthy in the
 * page; returns its value. On timeout, the error names `what` and carries window.cellar.
 */
export async function waitInPage(page, what, predicate, arg, timeout = WAIT_MS) {
  assert.ok(timeout <= WAIT_MS);
  try {
    const h = await page.waitForFunction(
      `(${predicate.toString()})(window.cellar, ${JSON.stringify(arg ?? null)})`, null, { timeout });
    return await h.jsonValue();
  } catch (e) {
    throw new Error(`${what}: not within ${timeout} ms (${e.message.split('\n')[0]})\npage state: ${await pageState(page)}`);
  }
}

/**
 * Wrap a test body: on failure, the error message gets the server's state and log tail, the
 * browser's console/page errors, and the screenshots' paths.
 */
export function withContext(getCtx, label, fn) {
  return async (t) => {
    getCtx().browser?.beginTest();
    let failed = true;
    try {
      await fn(t);
      failed = false;
    } catch (err) {
      const { server, browser } = getCtx();
      const extra = [];
      if (server) {
        server.failed = true;
        extra.push(`cellar is ${server.alive ? 'still running' : `NOT RUNNING (${JSON.stringify(server.exit)})`}`);
        extra.push(server.logTail(25));
      }
      if (browser) {
        extra.push(`browser log:\n${browser.log.length ? browser.log.join('\n') : '(nothing)'}`);
        extra.push(`screenshots: ${(await browser.endTest(label)).join(', ') || '(no page)'}`);
      }
      err.message = `${err.message}\n\n${extra.join('\n\n')}`;
      throw err;
    } finally {
      if (!failed) await getCtx().browser?.endTest(label);
    }
  };
}

export { sleep };
