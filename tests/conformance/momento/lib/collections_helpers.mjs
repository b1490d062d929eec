// Helpers shared by the collection and leaderboard conformance files: one `--dev-no-auth`
// server per test file, a CacheClient (default TTL 300 s) and a fresh cache, plus small value
// helpers. Built on lib/harness.mjs.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';

import { CacheItemGetTtl, CacheItemGetType, CreateCache } from '@gomomento/sdk';

import {
  CellarServer,
  expectType,
  localCredentials,
  makeCacheClient,
  makeRespClient,
  uid,
  withServer,
} from './harness.mjs';

export const TIMEOUT = { timeout: 20000 };
export const DEFAULT_TTL_SECONDS = 300;

/**
 * Registers before/after hooks that start one dev-mode server, a CacheClient and a cache
 * created for the run. Returns a context whose fields are filled in by the `before` hook, and
 * `it(name, fn)`: a bounded test that prints the server log tail when it fails.
 */
export function devSuite(name) {
  const ctx = {
    server: null,
    client: null,
    cache: null,
    resp: null, // node-redis client AUTHed to ctx.cache (lazy: ctx.respClient())
    it: (title, fn, opts = TIMEOUT) => test(title, opts, withServer(() => ctx.server, fn)),
    async respClient() {
      ctx.resp ??= await makeRespClient(ctx.server, { cache: ctx.cache });
      return ctx.resp;
    },
  };
  before(async () => {
    ctx.server = await CellarServer.start({ devNoAuth: true, name });
    ctx.client = await makeCacheClient(localCredentials(ctx.server), { defaultTtlSeconds: DEFAULT_TTL_SECONDS });
    ctx.cache = uid(name);
    expectType(await ctx.client.createCache(ctx.cache), CreateCache.Success, `createCache(${ctx.cache})`);
  }, { timeout: 30000 });
  after(async () => {
    try { await ctx.resp?.quit(); } catch { ctx.resp?.disconnect?.(); }
    try { ctx.client?.close(); } catch { /* */ }
    if (ctx.server) {
      await ctx.server.stop();
      ctx.server.cleanup();
    }
  });
  return ctx;
}

/** UTF-8 bytes of a string as a Uint8Array. */
export function bytes(s) {
  return new Uint8Array(Buffer.from(s, 'utf8'));
}

/** A sorted copy of an iterable of strings (to compare sets exactly). */
export function sorted(iterable) {
  return [...iterable].sort();
}

/** The remaining TTL in ms of an existing item (asserts an ItemGetTtl Hit). */
export async function remainingTtlMs(client, cache, key) {
  const r = expectType(await client.itemGetTtl(cache, key), CacheItemGetTtl.Hit, `itemGetTtl(${key})`);
  return r.remainingTtlMillis();
}

/**
 * Assert that the item's remaining TTL is in (seconds - slack, seconds] (ms precision).
 * The slack covers the time the test itself takes between the write and the read.
 */
export async function expectTtlAbout(client, cache, key, seconds, what = '', slackMs = 5000) {
  const ms = await remainingTtlMs(client, cache, key);
  assert.ok(ms > seconds * 1000 - slackMs && ms <= seconds * 1000,
    `${what ? `${what}: ` : ''}remaining TTL of ${key} is ${ms} ms, expected about ${seconds} s`);
  return ms;
}

/** Assert that `key` holds nothing any more: itemGetType answers Miss. */
export async function expectGone(client, cache, key, what = '') {
  const r = await client.itemGetType(cache, key);
  expectType(r, CacheItemGetType.Miss, `${what ? `${what}: ` : ''}itemGetType(${key}) after it should be gone`);
}
