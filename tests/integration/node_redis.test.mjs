// Cellar through the `redis` npm client (node-redis v4, RESP2), with node's test runner.
// Run: (cd tests/clients && npm ci) && CELLAR_BIN=/path/to/cellar node --test tests/integration/node_redis.test.mjs
// The client library is resolved from tests/clients/node_modules (pinned by its lockfile).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
const clientsDir = process.env.CELLAR_NODE_CLIENTS ?? join(here, '..', 'clients');
const require = createRequire(join(clientsDir, 'package.json'));
const { createClient, commandOptions } = require('redis');

const CELLAR_BIN = process.env.CELLAR_BIN ?? join(here, '..', '..', 'build', 'release', 'src', 'bin', 'cellar');

class Server {
  async start(extra = []) {
    this.dir = mkdtempSync(join(tmpdir(), 'cellar-node-'));
    this.log = [];
    this.proc = spawn(CELLAR_BIN, ['serve', '--data-dir', this.dir, '--resp-port', '0',
      '--admin-port', '0', '--api-port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    for (const s of [this.proc.stdout, this.proc.stderr]) s.on('data', (d) => this.log.push(d.toString()));
    const portsFile = join(this.dir, 'ports.json');
    const deadline = Date.now() + 20000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`cellar exited early:\n${this.log.join('')}`);
      if (existsSync(portsFile)) {
        try { this.ports = JSON.parse(readFileSync(portsFile, 'utf8')); break; } catch { /* retry */ }
      }
      if (Date.now() > deadline) {
        this.proc.kill('SIGKILL');
        throw new Error(`no ports.json within 20 s:\n${this.log.join('')}`);
      }
      await sleep(20);
    }
    this.key = readFileSync(join(this.dir, 'admin.key'), 'utf8').trim();
    return this;
  }

  async createCache(name) {
    const r = await fetch(`http://127.0.0.1:${this.ports.admin}/v1/caches/${encodeURIComponent(name)}`, {
      method: 'PUT', headers: { Authorization: `Bearer ${this.key}` },
    });
    if (r.status !== 201 && r.status !== 409) throw new Error(`create cache ${name}: HTTP ${r.status} ${await r.text()}`);
  }

  // A client whose every (re)connection sends AUTH <cache> <admin key>.
  async client(cache) {
    await this.createCache(cache);
    const c = createClient({ socket: { host: '127.0.0.1', port: this.ports.resp, reconnectStrategy: false },
      username: cache, password: this.key });
    c.on('error', () => {});
    await c.connect();
    return c;
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
    const res = await this.exited;
    clearTimeout(timer);
    rmSync(this.dir, { recursive: true, force: true });
    return res;
  }
}

let server;
let c;

before(async () => {
  server = await new Server().start(['--threads', '2']);
  c = await server.client('node');
  await c.flushDb();
});

after(async () => {
  if (c?.isOpen) await c.quit().catch(() => {});
  if (server) {
    const { code, signal } = await server.stop();
    assert.equal(signal, null, `cellar died by ${signal}`);
    assert.equal(code, 0, `cellar exit code ${code}:\n${server.log.join('').slice(-2000)}`);
  }
});

test('explicit AUTH via sendCommand, NOAUTH before it', async () => {
  await server.createCache('node_explicit');
  const raw = createClient({ socket: { host: '127.0.0.1', port: server.ports.resp, reconnectStrategy: false } });
  raw.on('error', () => {});
  await raw.connect();
  try {
    await assert.rejects(raw.get('x'), /NOAUTH Authentication required/);
    assert.equal(await raw.sendCommand(['AUTH', 'node_explicit', server.key]), 'OK');
    assert.equal(await raw.set('x', 'y'), 'OK');
    assert.equal(await raw.get('x'), 'y');
    // The other cache does not see it.
    assert.equal(await c.get('x'), null);
  } finally {
    await raw.quit().catch(() => {});
  }
});

test('pipelining 10,000 commands (auto-pipelined batch)', async () => {
  const n = 10000;
  const sets = [];
  for (let i = 0; i < n; i++) sets.push(c.set(`pipe:${i}`, `value:${i}`));
  const setReplies = await Promise.all(sets);
  assert.ok(setReplies.every((r) => r === 'OK'));
  const gets = [];
  for (let i = 0; i < n; i++) gets.push(c.get(`pipe:${i}`));
  const values = await Promise.all(gets);
  for (let i = 0; i < n; i++) assert.equal(values[i], `value:${i}`, `GET pipe:${i}`);
  // Mixed SET/GET in one batch, replies in order.
  const mixed = [];
  for (let i = 0; i < n / 2; i++) {
    mixed.push(c.set(`mix:${i}`, String(i)));
    mixed.push(c.get(`mix:${i}`));
  }
  const out = await Promise.all(mixed);
  for (let i = 0; i < n / 2; i++) {
    assert.equal(out[2 * i], 'OK');
    assert.equal(out[2 * i + 1], String(i));
  }
  // multi-command batch via the client's pipeline API (no MULTI)
  const batch = c.multi();
  for (let i = 0; i < 100; i++) batch.incr('pipe:counter');
  const counts = await batch.execAsPipeline();
  assert.deepEqual(counts, Array.from({ length: 100 }, (_, i) => i + 1));
});

test('binary keys and values with all 256 byte values', async () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const reversed = Buffer.from(all).reverse();
  assert.equal(await c.set(all, reversed), 'OK');
  const got = await c.get(commandOptions({ returnBuffers: true }), all);
  assert.ok(Buffer.isBuffer(got));
  assert.ok(got.equals(reversed));
  const puts = [];
  for (let b = 0; b < 256; b++) puts.push(c.set(Buffer.from([0x6b, b]), Buffer.from([b, b, 0x0d, 0x0a, b])));
  await Promise.all(puts);
  const reads = [];
  for (let b = 0; b < 256; b++) reads.push(c.get(commandOptions({ returnBuffers: true }), Buffer.from([0x6b, b])));
  const vals = await Promise.all(reads);
  for (let b = 0; b < 256; b++) assert.ok(vals[b].equals(Buffer.from([b, b, 0x0d, 0x0a, b])), `byte ${b}`);
  assert.equal(await c.strLen(all), 256);
});

test('1 MiB value round trip', async () => {
  const v = randomBytes(1 << 20);
  assert.equal(await c.set('big', v), 'OK');
  const got = await c.get(commandOptions({ returnBuffers: true }), 'big');
  assert.equal(got.length, 1 << 20);
  assert.ok(got.equals(v));
  assert.equal(await c.strLen('big'), 1 << 20);
});

test('TTL expiry', async () => {
  assert.equal(await c.set('ttl', 'v', { PX: 300 }), 'OK');
  assert.equal(await c.get('ttl'), 'v');
  const pttl = await c.pTTL('ttl');
  assert.ok(pttl > 0 && pttl <= 300, `PTTL ${pttl}`);
  await sleep(600);
  assert.equal(await c.get('ttl'), null);
  assert.equal(await c.exists('ttl'), 0);
  assert.equal(await c.ttl('ttl'), -2);
  await c.set('ttl2', 'v', { EX: 100 });
  assert.ok([99, 100].includes(await c.ttl('ttl2')));
  assert.equal(await c.persist('ttl2'), true);
  assert.equal(await c.ttl('ttl2'), -1);
  assert.equal(await c.expire('ttl2', 1), true);
  await sleep(1300);
  assert.equal(await c.get('ttl2'), null);
});

test('string commands through typed helpers', async () => {
  assert.equal(await c.incrBy('n', 5), 5);
  assert.equal(await c.incrByFloat('n', '0.5'), '5.5');
  await assert.rejects(c.incr('n'), /ERR value is not an integer or out of range/);
  assert.deepEqual(await c.mGet(['n', 'nope']), ['5.5', null]);
  assert.equal(await c.append('s', 'ab'), 2);
  assert.equal(await c.getRange('s', 0, 0), 'a');
  assert.equal(await c.getDel('s'), 'ab');
  await assert.rejects(c.sendCommand(['GET']), /ERR wrong number of arguments for 'get' command/);
});

test('RESP3: not supported by redis@4 (RESP2 only); HELLO 2 answers or errors cleanly', async () => {
  // node-redis v4 speaks RESP2 only. We check the server answers HELLO 2 without breaking the
  // connection (a map/array reply, or an error), then the connection still works.
  try {
    const r = await c.sendCommand(['HELLO', '2']);
    assert.ok(Array.isArray(r), `HELLO 2 reply ${JSON.stringify(r)}`);
  } catch (e) {
    assert.match(String(e), /ERR|NOPROTO/);
  }
  assert.equal(await c.ping(), 'PONG');
});
