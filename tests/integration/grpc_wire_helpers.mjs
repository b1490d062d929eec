// Helpers for grpc_wire.test.mjs: a hand-rolled protobuf codec, gRPC message framing, a raw
// node:http2 unary/streaming caller, and a Cellar server process wrapper. Built-in modules only.
import http2 from 'node:http2';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(here, '..', '..');
export const CELLAR_BIN = process.env.CELLAR_BIN ?? join(REPO_ROOT, 'build', 'release', 'src', 'bin', 'cellar');

// ---- protobuf ------------------------------------------------------------------------------

export function varint(v) {
  let n = BigInt(v);
  const out = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  return Buffer.from(out);
}

const asBuf = (v) => (Buffer.isBuffer(v) ? v : Buffer.from(v));

export function fBytes(field, value) {
  const b = asBuf(value);
  return Buffer.concat([varint((field << 3) | 2), varint(b.length), b]);
}

export function fVarint(field, value) {
  return Buffer.concat([varint((field << 3) | 0), varint(value)]);
}

// Decodes one message into { fieldNumber: [values...] } (varints as Numbers, bytes as Buffers).
export function decode(buf) {
  const out = {};
  let i = 0;
  const readVarint = () => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
      shift += 7n;
    }
    return result;
  };
  while (i < buf.length) {
    const key = Number(readVarint());
    const field = key >> 3;
    const wire = key & 7;
    let val;
    if (wire === 0) val = Number(readVarint());
    else if (wire === 2) {
      const len = Number(readVarint());
      if (i + len > buf.length) throw new Error('truncated bytes field');
      val = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) { val = buf.subarray(i, i + 8); i += 8; }
    else if (wire === 5) { val = buf.subarray(i, i + 4); i += 4; }
    else throw new Error(`unsupported wire type ${wire}`);
    (out[field] ??= []).push(val);
  }
  return out;
}

export const Result = { Invalid: 0, Ok: 1, Hit: 2, Miss: 3 };

export const getRequest = (key) => fBytes(1, key);
export const setRequest = (key, body, ttlMs = 600000) =>
  Buffer.concat([fBytes(1, key), fBytes(2, body), fVarint(3, ttlMs)]);
export const getBatchRequest = (keys) => Buffer.concat(keys.map((k) => fBytes(1, getRequest(k))));
export const createCacheRequest = (name) => fBytes(1, name);

export function decodeGetResponse(msg) {
  const d = decode(msg);
  return { result: d[1]?.at(-1) ?? 0, body: d[2]?.at(-1) ?? Buffer.alloc(0) };
}

// ---- gRPC framing --------------------------------------------------------------------------

export function frame(msg, flag = 0) {
  const p = Buffer.alloc(5);
  p[0] = flag;
  p.writeUInt32BE(msg.length, 1);
  return Buffer.concat([p, msg]);
}

// Splits a response body into its length-prefixed messages; throws on leftovers.
export function unframe(buf) {
  const msgs = [];
  let i = 0;
  while (i < buf.length) {
    if (buf.length - i < 5) throw new Error(`dangling ${buf.length - i} bytes after ${msgs.length} messages`);
    const flag = buf[i];
    const len = buf.readUInt32BE(i + 1);
    if (flag !== 0) throw new Error(`response message ${msgs.length} has flag ${flag}`);
    if (i + 5 + len > buf.length) throw new Error(`response message ${msgs.length} truncated`);
    msgs.push(buf.subarray(i + 5, i + 5 + len));
    i += 5 + len;
  }
  return msgs;
}

// ---- http2 ---------------------------------------------------------------------------------

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// Connects and resolves once the server's SETTINGS arrived. Records GOAWAYs and errors.
export async function connect(port, options = {}) {
  const session = http2.connect(`http://127.0.0.1:${port}`, options);
  session.goaways = [];
  session.errors = [];
  session.on('goaway', (code, lastStreamId, data) => session.goaways.push({ code, lastStreamId, data }));
  session.on('error', (e) => session.errors.push(e));
  session.closedPromise = new Promise((resolve) => session.once('close', resolve));
  // Both the server's SETTINGS and its ACK of ours (so localSettings are in force).
  await withTimeout(Promise.all([
    new Promise((resolve, reject) => { session.once('remoteSettings', resolve); session.once('error', reject); }),
    new Promise((resolve, reject) => { session.once('localSettings', resolve); session.once('error', reject); }),
  ]), 5000, 'http2 connect + SETTINGS exchange');
  return session;
}

// Opens a gRPC stream. Returns { req, done } where done resolves to
// { status, message, err, headers, trailers, trailersOnly, data, rstCode } when the stream closes.
export function open(session, path, { cache = 'default', auth = '', headers = {}, timeoutMs = 15000 } = {}) {
  const h = {
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: auth,
    ...headers,
  };
  if (cache !== null) h.cache = cache;
  const req = session.request(h, { endStream: false });
  const done = withTimeout(new Promise((resolve, reject) => {
    const r = { headers: null, trailers: null, trailersOnly: false, chunks: [], rstCode: null };
    req.on('response', (hdrs, flags) => {
      r.headers = hdrs;
      r.trailersOnly = (flags & 0x1) !== 0; // END_STREAM on the response HEADERS
    });
    req.on('trailers', (t) => { r.trailers = t; });
    req.on('data', (d) => r.chunks.push(d));
    req.on('error', (e) => { r.error = e; });
    req.on('close', () => {
      r.rstCode = req.rstCode;
      r.data = Buffer.concat(r.chunks);
      delete r.chunks;
      const st = r.trailersOnly ? r.headers : r.trailers;
      if (!r.headers) return reject(new Error(`stream ${path} closed without response headers (rstCode ${req.rstCode}, error ${r.error?.message})`));
      r.status = st?.['grpc-status'] !== undefined ? Number(st['grpc-status']) : undefined;
      r.message = st?.['grpc-message'] !== undefined ? decodeURIComponent(st['grpc-message']) : undefined;
      r.err = st?.err;
      resolve(r);
    });
  }), timeoutMs, `gRPC call ${path}`);
  return { req, done };
}

// A unary call: one framed message (or raw body bytes if rawBody), then END_STREAM.
export function call(session, path, msg, opts = {}) {
  const { req, done } = open(session, path, opts);
  req.end(opts.rawBody ?? frame(msg));
  return done;
}

export function describe(r) {
  return JSON.stringify({ headers: r.headers, trailers: r.trailers, trailersOnly: r.trailersOnly,
    status: r.status, message: r.message, err: r.err, dataBytes: r.data?.length, rstCode: r.rstCode });
}

// ---- server process ------------------------------------------------------------------------

export class Server {
  async start(extra = []) {
    this.dir = mkdtempSync(join(tmpdir(), 'cellar-grpc-wire-'));
    this.logPath = join(this.dir, 'cellar.log');
    const args = ['serve', '--data-dir', this.dir, '--resp-port', '0', '--admin-port', '0',
      '--api-port', '0', '--threads', '2', ...extra];
    // The binary may be briefly missing (or busy) while it is being rebuilt: retry for a while.
    const spawnDeadline = Date.now() + 60000;
    for (;;) {
      if (existsSync(CELLAR_BIN)) {
        const fd = openSync(this.logPath, 'a');
        try {
          this.proc = spawn(CELLAR_BIN, args, { stdio: ['ignore', fd, fd] });
          await new Promise((resolve, reject) => { this.proc.once('spawn', resolve); this.proc.once('error', reject); });
          break;
        } catch (e) {
          if (Date.now() > spawnDeadline) throw e;
        } finally {
          closeSync(fd);
        }
      } else if (Date.now() > spawnDeadline) {
        throw new Error(`no cellar binary at ${CELLAR_BIN}`);
      }
      await sleep(500);
    }
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    const portsFile = join(this.dir, 'ports.json');
    const deadline = Date.now() + 20000;
    for (;;) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`cellar exited early (${this.proc.exitCode ?? this.proc.signalCode}):\n${this.logTail()}`);
      }
      if (existsSync(portsFile)) {
        try {
          const p = JSON.parse(readFileSync(portsFile, 'utf8'));
          if (p.pid === this.proc.pid && p.api) { this.ports = p; break; }
        } catch { /* partially visible? retry */ }
      }
      if (Date.now() > deadline) {
        this.proc.kill('SIGKILL');
        throw new Error(`no ports.json within 20 s:\n${this.logTail()}`);
      }
      await sleep(20);
    }
    this.key = readFileSync(join(this.dir, 'admin.key'), 'utf8').trim();
    return this;
  }

  logTail(bytes = 4000) {
    try {
      const s = readFileSync(this.logPath, 'utf8');
      return s.slice(-bytes);
    } catch (e) {
      return `(no log: ${e.message})`;
    }
  }

  alive() { return this.proc && this.proc.exitCode === null && this.proc.signalCode === null; }

  // SIGTERM, then SIGKILL after 15 s. Resolves to { code, signal, ms }.
  async stop({ keepDir = false } = {}) {
    if (!this.proc) return { code: null, signal: null, ms: 0 };
    const t0 = Date.now();
    if (this.alive()) this.proc.kill('SIGTERM');
    let killed = false;
    const timer = setTimeout(() => { killed = true; this.proc.kill('SIGKILL'); }, 15000);
    const res = await this.exited;
    clearTimeout(timer);
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
    return { ...res, ms: Date.now() - t0, killed };
  }
}
