// Web access (issue 19) in a real browser: Debian's Chromium (playwright-core) loads a page from
// http://127.0.0.2:<port> (another origin than the API's http://127.0.0.1:<api port>, so every
// call is cross-origin and CORS is exercised), and from there
//   - @gomomento/sdk-web (grpc-web text) sets and gets a key and subscribes to a topic,
//   - a WebSocket and an EventSource subscribe to the same topic,
//   - fetch() uses the HTTP API (/cache) with `Authorization: <token>`,
// while the Node SDK, over gRPC in this process, creates the cache and publishes. A page from a
// third origin (127.0.0.3), not in --cors-origins, must be refused.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  AuthClient, CacheGet, CacheSet, CreateCache, ExpiresIn, GenerateDisposableToken, TopicPublish, TopicRole,
} from '@gomomento/sdk';

import {
  Browser, CellarServer, bundlePage, closeTopicClient, mintToken, nodeCacheClient,
  nodeCredentials, nodeTopicClient, sleep, start, startStaticServer, uid, v1ApiKey, waitInPage,
  withContext,
} from '../lib/harness.mjs';

const HEARTBEAT_MS = 500;
const TEST = { timeout: 90000 };

const ctx = { server: null, browser: null };
let allowed; // static server on the origin in --cors-origins
let foreign; // static server on an origin that is not
let cache;
let pageToken; // a v2 key (admin API): rw on the cache, pubsub on its topics
let nodeCache;
let publisher;
let auth;

const it = (title, fn) => test(title, TEST, withContext(() => ctx, title.split(':')[0], fn));
const api = (path) => `${ctx.server.apiBase}${path}`;
const wsUrl = (topic, token) =>
  `ws://${ctx.server.apiEndpoint}/topics/${encodeURIComponent(cache)}/${encodeURIComponent(topic)}/ws?token=${encodeURIComponent(token)}`;
const sseUrl = (topic, token) =>
  api(`/topics/${encodeURIComponent(cache)}/${encodeURIComponent(topic)}/sse?token=${encodeURIComponent(token)}`);

/** fetch() in `page`; resolves to {status, body, ...} or {error, message}. */
async function pageFetch(page, url, init = {}) {
  const name = uid('fetch');
  await start(page, 'cellarFetch', { name, url, init });
  return waitInPage(page, `fetch ${init.method ?? 'GET'} ${url}`, (c, n) => c.fetches[n], name);
}

describe('web access from Chromium', () => {
  before(async () => {
    const bundle = await bundlePage();
    allowed = await startStaticServer('127.0.0.2', bundle);
    foreign = await startStaticServer('127.0.0.3', bundle);
    ctx.server = await CellarServer.start({
      extraArgs: ['--cors-origins', allowed.origin, '--topic-heartbeat-ms', String(HEARTBEAT_MS), '--demo',
        '--tls-self-signed'],
    });
    const admin = nodeCredentials(ctx.server, ctx.server.adminKey);
    nodeCache = await nodeCacheClient(admin);
    cache = uid('web');
    const created = await nodeCache.createCache(cache);
    assert.ok(created instanceof CreateCache.Success, `createCache: ${created}`);
    publisher = nodeTopicClient(admin);
    auth = new AuthClient({ credentialProvider: admin });
    pageToken = await mintToken(ctx.server, {
      tenant: 'default', role: 'rw', cache, topic_role: 'pubsub', expires_in: 600,
    });
    ctx.browser = await Browser.launch();
  }, { timeout: 60000 });

  after(async () => {
    try { await ctx.browser?.close(); } catch { /* */ }
    closeTopicClient(publisher);
    nodeCache?.close();
    auth?.authClient?.tokenClient?.close?.();
    auth?.authClient?.authClient?.close?.();
    await allowed?.close();
    await foreign?.close();
    if (ctx.server) {
      await ctx.server.stop();
      const exit = ctx.server.exit;
      if (exit?.code !== 0) ctx.server.failed = true;
      ctx.server.cleanup();
      // A clean exit: no crash, and (under ASan) no leak report.
      assert.deepEqual(exit, { code: 0, signal: null }, `cellar's exit:\n${ctx.server.logTail()}`);
    }
  });

  it('sdk-web: CacheClient sets and gets a key over grpc-web', async () => {
    const page = await ctx.browser.newPage('sdk-cache', `${allowed.origin}/`);
    // fromString refuses a v2 key ("t":"g", what the admin API mints) in the browser as in
    // Node, so the page gets it wrapped as a v1 key: base64 {api_key, endpoint}.
    await start(page, 'cellarSdkSetGet', {
      apiBase: ctx.server.apiBase, apiKey: v1ApiKey(pageToken), cache, key: 'sdk-key', value: 'sdk value ✓',
    });
    const r = await waitInPage(page, 'sdk-web set + get', (c) => c.sdk.setGet);
    assert.equal(r.exception, undefined, r.exception);
    assert.match(r.set, /Success/, `set: ${r.set}`);
    assert.match(r.get, /Hit/, `get: ${r.get}`);
    assert.equal(r.value, 'sdk value ✓');
    // It reached the server: the Node SDK (gRPC) reads it back.
    const got = await nodeCache.get(cache, 'sdk-key');
    assert.ok(got instanceof CacheGet.Hit, `node get: ${got}`);
    assert.equal(got.valueString(), 'sdk value ✓');
  });

  it('topics: sdk-web (grpc-web), WebSocket and EventSource get the same items with the same sequence numbers', async () => {
    const topic = uid('topic');
    // The sdk-web subscriber uses what a browser app gets from its backend: a disposable token
    // (AuthClient.generateDisposableToken hands it out as a base64 v1 key), subscribe-only.
    const disposable = await auth.generateDisposableToken(
      { permissions: [{ role: TopicRole.SubscribeOnly, cache, topic }] }, ExpiresIn.minutes(10));
    assert.ok(disposable instanceof GenerateDisposableToken.Success, `generateDisposableToken: ${disposable}`);

    const sdk = await ctx.browser.newPage('sdk-topic', `${allowed.origin}/`);
    const ws = await ctx.browser.newPage('ws', `${allowed.origin}/`);
    const sse = await ctx.browser.newPage('sse', `${allowed.origin}/`);
    await start(sdk, 'cellarSdkSubscribe', { apiBase: ctx.server.apiBase, apiKey: disposable.authToken, cache, topic });
    await start(ws, 'cellarWs', { url: wsUrl(topic, pageToken) });
    await start(sse, 'cellarSse', { url: sseUrl(topic, pageToken) });

    // sdk-web's subscribe() resolves on the stream's first message (a heartbeat); the
    // WebSocket is subscribed once a heartbeat came; the EventSource once open.
    const sub = await waitInPage(sdk, 'sdk-web subscribe() resolves', (c) => c.sdk.subscribe);
    assert.ok(sub.ok, `sdk-web subscribe: ${JSON.stringify(sub)}`);
    await waitInPage(ws, 'WebSocket open with a heartbeat', (c) => c.ws.open && c.ws.heartbeats >= 1);
    await waitInPage(sse, 'EventSource open', (c) => c.sse.open);
    // Two heartbeat periods for the subscriptions to settle: a publish before a subscription
    // is in place would not reach it (a subscription without resume starts at the next item).
    await sleep(2 * HEARTBEAT_MS);

    const binary = Uint8Array.from([0, 1, 2, 127, 128, 254, 255, 10, 13]);
    const sent = ['first', 'second: ünïcødé ✓', binary];
    for (const v of sent) {
      const r = await publisher.publish(cache, topic, v);
      assert.ok(r instanceof TopicPublish.Success, `node publish: ${r}`);
    }
    // A client text frame on the WebSocket publishes its text to the topic.
    const fromWs = 'from the websocket';
    await ws.evaluate((t) => window.cellarWsSend(t), fromWs);

    const want = [
      { text: 'first' },
      { text: 'second: ünïcødé ✓' },
      { binary: Buffer.from(binary).toString('base64') },
      { text: fromWs },
    ];
    const sdkItems = await waitInPage(sdk, 'sdk-web gets 4 items', (c) => c.sdk.items.length >= 4 && c.sdk.items);
    const wsItems = await waitInPage(ws, 'WebSocket gets 4 items', (c) => c.ws.items.length >= 4 && c.ws.items);
    const sseItems = await waitInPage(sse, 'EventSource gets 4 items', (c) => c.sse.items.length >= 4 && c.sse.items);

    assert.deepEqual(sdkItems.map((i) => i.value), want, 'sdk-web values, in order');
    assert.deepEqual(wsItems.map((i) => i.value), want, 'WebSocket values, in order');
    assert.deepEqual(sseItems.map((i) => i.value), want, 'EventSource values, in order');
    const seqs = sdkItems.map((i) => i.seq);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[0] + i, `consecutive sequence numbers: ${seqs}`);
    assert.deepEqual(wsItems.map((i) => i.seq), seqs, 'WebSocket sequence numbers = sdk-web\'s');
    assert.deepEqual(sseItems.map((i) => i.seq), seqs, 'EventSource sequence numbers = sdk-web\'s');
    const page = wsItems[0].page;
    assert.ok(Number.isInteger(page), `sequence_page is a JSON number: ${JSON.stringify(wsItems[0])}`);
    for (const items of [wsItems, sseItems]) {
      assert.deepEqual(items.map((i) => i.page), seqs.map(() => page), 'one sequence_page');
    }
    assert.deepEqual(sseItems.map((i) => i.id), seqs.map((s) => `${page}:${s}`), 'SSE id: <page>:<seq>');

    const final = await ws.evaluate(() => window.cellar.ws);
    assert.deepEqual(final.discontinuities, [], 'no WebSocket discontinuity');
    assert.deepEqual(final.unparsed, [], 'every WebSocket frame is an item, heartbeat or discontinuity');
    assert.equal(final.binaryFrames, 0, 'the server sends text frames only');
    assert.deepEqual(final.closes, [], 'the WebSocket stays open');
    const finalSse = await sse.evaluate(() => window.cellar.sse);
    assert.deepEqual(finalSse.discontinuities, [], 'no SSE discontinuity');
    assert.deepEqual(finalSse.unparsed, [], 'every SSE message is an item');
    assert.equal(finalSse.opens, 1, `the EventSource never reconnected (errors: ${JSON.stringify(finalSse.errors)})`);
    const finalSdk = await sdk.evaluate(() => window.cellar.sdk);
    assert.deepEqual(finalSdk.errors, [], 'no sdk-web subscription error');

    await ws.evaluate(() => window.cellarWsSocket.close(1000, 'done'));
    await sse.evaluate(() => window.cellarEventSource.close());
    await sdk.evaluate(() => window.cellarSdkSubscription?.unsubscribe());
  });

  it('SSE: a text/event-stream whose heartbeats are comment lines', async () => {
    const page = await ctx.browser.newPage('sse-raw', `${allowed.origin}/`);
    await start(page, 'cellarSseRaw', { url: sseUrl(uid('hb'), pageToken), wanted: 2 });
    const r = await waitInPage(page, 'two SSE comment lines read raw', (c) => c.sseRaw.done && c.sseRaw);
    assert.equal(r.error, undefined, r.error);
    assert.equal(r.status, 200);
    assert.match(r.contentType ?? '', /^text\/event-stream/, 'Content-Type');
    assert.ok(r.comments >= 2, `comment lines (heartbeats every ${HEARTBEAT_MS} ms): ${JSON.stringify(r.text)}`);
  });

  it('http: PUT then GET /cache from the page with a raw Authorization token', async () => {
    const page = await ctx.browser.newPage('http', `${allowed.origin}/`);
    const url = api(`/cache/${encodeURIComponent(cache)}?key=k&ttl_seconds=60`);
    const put = await pageFetch(page, url, { method: 'PUT', body: 'v', headers: { Authorization: pageToken } });
    assert.equal(put.error, undefined, `PUT: ${JSON.stringify(put)}`);
    assert.equal(put.status, 204, `PUT: ${JSON.stringify(put)}`);
    const get = await pageFetch(page, url, { headers: { Authorization: pageToken } });
    assert.equal(get.status, 200, `GET: ${JSON.stringify(get)}`);
    assert.equal(get.body, 'v');
    const got = await nodeCache.get(cache, 'k');
    assert.ok(got instanceof CacheGet.Hit, `node get: ${got}`);
    assert.equal(got.valueString(), 'v');
  });

  it('cors: only an origin in --cors-origins may call with an Authorization header', async () => {
    const set = await nodeCache.set(cache, 'cors-k', 'cors-v');
    assert.ok(set instanceof CacheSet.Success, `node set: ${set}`);
    const url = api(`/cache/${encodeURIComponent(cache)}?key=cors-k`);
    const init = { headers: { Authorization: pageToken } };
    const ok = await ctx.browser.newPage('cors-allowed', `${allowed.origin}/`);
    const fromAllowed = await pageFetch(ok, url, init);
    assert.deepEqual([fromAllowed.status, fromAllowed.body], [200, 'cors-v'],
      `from ${allowed.origin}: ${JSON.stringify(fromAllowed)}`);
    const bad = await ctx.browser.newPage('cors-foreign', `${foreign.origin}/`);
    const fromForeign = await pageFetch(bad, url, init);
    assert.equal(fromForeign.error, 'TypeError', `from ${foreign.origin} (not allowed): ${JSON.stringify(fromForeign)}`);
  });

  it('https: sdk-web, fetch and EventSource on the API port over TLS, answered over HTTP/2', async () => {
    const tls = ctx.server.apiBaseTls;
    const page = await ctx.browser.newPage('https', `${allowed.origin}/`);
    // What Chromium negotiated, per response from the API port (DevTools protocol).
    const cdp = await page.context().newCDPSession(page);
    const protocols = [];
    cdp.on('Network.responseReceived', (e) => {
      if (e.response.url.startsWith(tls)) protocols.push(`${e.response.protocol} ${e.response.url}`);
    });
    await cdp.send('Network.enable');
    await start(page, 'cellarSdkSetGet', {
      apiBase: tls, apiKey: v1ApiKey(pageToken), cache, key: 'tls-key', value: 'over HTTP/2',
    });
    const r = await waitInPage(page, 'sdk-web set + get over TLS', (c) => c.sdk.setGet);
    assert.equal(r.exception, undefined, r.exception);
    assert.match(r.get, /Hit/, `get: ${r.get}`);
    assert.equal(r.value, 'over HTTP/2');
    const topic = uid('tls-topic');
    await start(page, 'cellarSdkSubscribe', { apiBase: tls, apiKey: v1ApiKey(pageToken), cache, topic });
    const sub = await waitInPage(page, 'sdk-web subscribe() over TLS', (c) => c.sdk.subscribe);
    assert.ok(sub.ok, `sdk-web subscribe: ${JSON.stringify(sub)}`);
    await start(page, 'cellarSse', {
      url: `${tls}/topics/${encodeURIComponent(cache)}/${encodeURIComponent(topic)}/sse?token=${encodeURIComponent(pageToken)}` });
    await waitInPage(page, 'EventSource open over TLS', (c) => c.sse.open);
    await sleep(2 * HEARTBEAT_MS);
    const pub = await publisher.publish(cache, topic, 'to the TLS subscribers');
    assert.ok(pub instanceof TopicPublish.Success, `node publish: ${pub}`);
    const items = await waitInPage(page, 'sdk-web item over TLS', (c) => c.sdk.items.length >= 1 && c.sdk.items);
    assert.deepEqual(items[0].value, { text: 'to the TLS subscribers' });
    const sseItems = await waitInPage(page, 'SSE item over TLS', (c) => c.sse.items.length >= 1 && c.sse.items);
    assert.equal(sseItems[0].seq, items[0].seq);
    const got = await pageFetch(page, `${tls}/cache/${encodeURIComponent(cache)}?key=tls-key`,
      { headers: { Authorization: pageToken } });
    assert.deepEqual([got.status, got.body], [200, 'over HTTP/2'], JSON.stringify(got));
    assert.ok(protocols.length >= 3, `responses seen: ${protocols}`);
    for (const p of protocols) assert.match(p, /^h2 /, `every answer over HTTP/2: ${protocols.join(', ')}`);
    await page.evaluate(() => window.cellarEventSource.close());
    await page.evaluate(() => window.cellarSdkSubscription?.unsubscribe());
  });

  it('demo: two pages chat over the demo topic and share the counter (--demo, its token vending)', async () => {
    const ready = () => window.demo && window.demo.ready === true;
    const alice = await ctx.browser.newPage('demo-alice', api('/demo?name=alice'), ready);
    const bob = await ctx.browser.newPage('demo-bob', api('/demo?name=bob'), ready);
    const line = `hello from alice ${uid('m')}`;
    await alice.fill('#text', line);
    await alice.click('button:has-text("Send")');
    for (const [name, page] of [['bob', bob], ['alice', alice]]) {
      await page.waitForFunction((t) => window.demo.messages.some((m) => m.text === t && m.from === 'alice'),
        line, { timeout: 20000 }).catch((e) => { throw new Error(`${name} never saw alice's line: ${e.message}`); });
    }
    await bob.fill('#text', 'hi alice');
    await bob.click('button:has-text("Send")');
    await alice.waitForFunction(() => window.demo.messages.some((m) => m.text === 'hi alice' && m.from === 'bob'),
      null, { timeout: 20000 });
    // The counter: bob increments (grpc-web Increment), alice reads it (HTTP API GET).
    await bob.waitForFunction(() => window.demo.count !== null, null, { timeout: 20000 });
    const start = await bob.evaluate(() => window.demo.count);
    await bob.click('#inc');
    await bob.waitForFunction((n) => window.demo.count === n + 1, start, { timeout: 20000 });
    await alice.click('#refresh');
    await alice.waitForFunction((n) => window.demo.count === n + 1, start, { timeout: 20000 });
    assert.deepEqual(await alice.evaluate(() => window.demo.errors), []);
    assert.deepEqual(await bob.evaluate(() => window.demo.errors), []);
    // The token vending is throttled for the whole server: a burst of 20, then 5 a second.
    // 40 requests at once: the first ones get tokens, then 429 saying why (not the bound:
    // the pages above took some and it refills meanwhile).
    const answers = await Promise.all(Array.from({ length: 40 }, () =>
      fetch(api('/demo/token?name=flood'), { method: 'POST' }).then(async (r) => [r.status, await r.text()])));
    const ok = answers.filter(([s]) => s === 200).length;
    const refused = answers.filter(([s, t]) => s === 429 && /demo tokens/.test(t)).length;
    assert.ok(ok >= 1 && ok <= 30, `tokens handed out: ${ok}`);
    assert.equal(ok + refused, 40, JSON.stringify(answers.filter(([s]) => s !== 200 && s !== 429)));
    assert.ok(refused >= 10, `refused: ${refused}`);
    // A page that meets the throttle waits as the 429 says (Retry-After) and asks again. Its
    // first token request is answered with the server's own 429: asked for (and tokens
    // minted) until the bucket the flood above emptied says so.
    const context = ctx.browser.context;
    let busy = null;
    const meetThrottle = async (route) => {
      for (let i = 0; i < 100 && busy === null; i++) {
        const r = await route.fetch();
        if (r.status() === 429) busy = r;
      }
      return busy !== null ? route.fulfill({ response: busy }) : route.continue();
    };
    await context.route('**/demo/token*', meetThrottle, { times: 1 });
    try {
      const carol = await ctx.browser.newPage('demo-carol', api('/demo?name=carol'), ready);
      assert.ok(busy !== null, 'the page met the throttle');
      assert.equal(busy.headers()['retry-after'], '1');
      assert.deepEqual(await carol.evaluate(() => window.demo.errors), []);
    } finally {
      await context.unroute('**/demo/token*', meetThrottle);
    }
  });
});
