// Conformance: topics (cache_client.pubsub.Pubsub) through the unmodified SDK TopicClient,
// plus raw gRPC where the SDK hides what is checked (heartbeats, pages, discontinuity fields,
// `err` trailers, a reader that stops reading), and RESP clients for cross-protocol delivery.
// Servers:
//   dev:    --dev-no-auth, 200 ms heartbeats, a 64-message replay window
//   limits: --dev-no-auth, 5 publishes/s per cache, 3 subscriptions per cache
//   auth:   tokens (roles, topic-scoped grants, disposable-token publisher ids)
//   slow:   --dev-no-auth, 256 KiB subscriber queues, a 64-message replay window
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';

import {
  AllCaches, AllDataReadWrite, AllTopics, AuthClient, CreateCache, DeleteCache,
  DisposableTokenScopes, ExpiresIn, GenerateApiKey, GenerateDisposableToken, LimitExceededError,
  MomentoErrorCode, TokenScopes, TopicPublish, TopicSubscribe,
} from '@gomomento/sdk';

import {
  CellarServer, allBytes, expectError, expectType, localCredentials, makeCacheClient, sleep,
  tokenCredentials, uid, withServer,
} from '../lib/harness.mjs';
import {
  DEFAULT_MAX_MESSAGE_SIZE, FLAG, LIMIT_WRAPPER_BY_ERR, closeTopicClient, expectSubscribed,
  keyCredentials, makeTopicClient, mintTopicPrefixToken, publishInWorker, publishOk,
  subscribeRecorded, waitUntil, wireConnect, wirePublish, wireSubscribe, workerValue,
} from '../lib/topics_helpers.mjs';

const NOT_FOUND = MomentoErrorCode.NOT_FOUND_ERROR;
const PERMISSION = MomentoErrorCode.PERMISSION_ERROR;
const AUTHENTICATION = MomentoErrorCode.AUTHENTICATION_ERROR;
const LIMIT = MomentoErrorCode.LIMIT_EXCEEDED_ERROR;
const RESOURCE_EXHAUSTED = 8;
const REPLAY_WINDOW = 64;
const HEARTBEAT_MS = 200;

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const bytesOf = (v) => Buffer.from(typeof v === 'string' ? Buffer.from(v, 'utf8') : v);

/** A describe block's server and clients, torn down in `after`. */
function suite(name, startOpts) {
  const ctx = { server: null, topicClients: [], cacheClients: [], sessions: [] };
  ctx.it = (title, fn, timeout = 20000) => test(title, { timeout }, withServer(() => ctx.server, fn));
  ctx.topicClient = (creds = localCredentials(ctx.server), opts = {}) => {
    const tc = makeTopicClient(creds, opts);
    ctx.topicClients.push(tc);
    return tc;
  };
  ctx.cacheClient = async (creds = localCredentials(ctx.server)) => {
    const c = await makeCacheClient(creds);
    ctx.cacheClients.push(c);
    return c;
  };
  ctx.session = async () => {
    const s = await wireConnect(ctx.server.ports.api);
    ctx.sessions.push(s);
    return s;
  };
  before(async () => {
    ctx.server = await CellarServer.start({ name, ...startOpts });
  }, { timeout: 30000 });
  after(async () => {
    for (const s of ctx.sessions) { try { s.destroy(); } catch { /* */ } }
    for (const tc of ctx.topicClients) { try { closeTopicClient(tc); } catch { /* */ } }
    for (const c of ctx.cacheClients) { try { c.close(); } catch { /* */ } }
    if (ctx.server) {
      await ctx.server.stop();
      ctx.server.cleanup();
    }
  });
  return ctx;
}

/** Assert the SDK's wrapper text is the one the `err` trailer names (SDK 1.118.1 table). */
function expectWrapperMatchesErr(resp, err, what) {
  const wrapper = LIMIT_WRAPPER_BY_ERR[err];
  assert.ok(wrapper, `${what}: the err trailer "${err}" names no SDK LimitExceeded wrapper`);
  assert.ok(resp.message().startsWith(`${wrapper}: `),
    `${what}: SDK message should start with "${wrapper}" (err trailer ${err}; SDK 1.118.1 picks the ` +
    `wrapper from the status details text), got: ${resp.message()}`);
}

// =============================================================================================
describe('topics: dev server', () => {
  const ctx = suite('topics-dev', {
    devNoAuth: true,
    extraArgs: [FLAG.heartbeatMs, String(HEARTBEAT_MS), FLAG.replayMessages, String(REPLAY_WINDOW)],
  });
  let cache;
  let pub; // a TopicClient used only to publish

  before(async () => {
    const cc = await ctx.cacheClient();
    cache = uid('topics');
    expectType(await cc.createCache(cache), CreateCache.Success, `createCache(${cache})`);
    pub = ctx.topicClient();
  }, { timeout: 30000 });

  ctx.it('text and binary items arrive in order, numbered 1, 2, 3, ..., to every subscriber of the topic only', async () => {
    const topic = uid('tb');
    const a = expectSubscribed(await subscribeRecorded(ctx.topicClient(), cache, topic), 'first subscriber');
    const b = expectSubscribed(await subscribeRecorded(ctx.topicClient(), cache, topic), 'second subscriber');
    const elsewhere = uid('tb-other');
    const cc = await ctx.cacheClient();
    expectType(await cc.createCache(elsewhere), CreateCache.Success);
    const other = expectSubscribed(await subscribeRecorded(ctx.topicClient(), elsewhere, topic),
      'the same topic name in another cache');
    const otherTopic = expectSubscribed(await subscribeRecorded(ctx.topicClient(), cache, `${topic}-x`),
      'another topic of the cache');

    const values = ['hello', allBytes(), 'h\u00e9llo w\u00f6rld \u2713 \u{1F389}', allBytes(128),
      'x'.repeat(70000), new Uint8Array(50000).fill(0xfe)];
    for (const v of values) await publishOk(pub, cache, topic, v);
    await a.waitItems(values.length);
    await b.waitItems(values.length);
    await sleep(150); // anything extra or misrouted would show up by now
    for (const [who, rec] of [['first', a], ['second', b]]) {
      assert.deepEqual(rec.seqs(), range(1, values.length), `${who} subscriber: sequence numbers`);
      rec.items.forEach((item, i) => {
        const v = values[i];
        if (typeof v === 'string') {
          assert.equal(typeof item.value(), 'string', `${who} #${i + 1}: a text publish arrives as text`);
          assert.equal(item.valueString(), v, `${who} #${i + 1}: text value`);
        } else {
          assert.ok(item.value() instanceof Uint8Array, `${who} #${i + 1}: a binary publish arrives as bytes`);
          assert.ok(Buffer.from(item.valueUint8Array()).equals(Buffer.from(v)), `${who} #${i + 1}: binary value`);
        }
      });
      assert.equal(rec.errors.length, 0, `${who}: no errors (${rec.describe()})`);
      assert.equal(rec.discontinuities.length, 0, `${who}: no discontinuity`);
    }
    assert.equal(other.items.length, 0, 'a subscriber of the same topic name in another cache gets nothing');
    assert.equal(otherTopic.items.length, 0, 'a subscriber of another topic gets nothing');
    for (const r of [a, b, other, otherTopic]) r.unsubscribe();
  });

  ctx.it('publishing to a topic nobody hears succeeds; an unknown cache is NOT_FOUND for publish and subscribe', async () => {
    await publishOk(pub, cache, uid('nobody'), 'into the void');
    const missing = uid('no-such-cache');
    const p = await pub.publish(missing, 't', 'x');
    expectError(p, TopicPublish.Error, NOT_FOUND, 'publish to an unknown cache');
    const s = await subscribeRecorded(ctx.topicClient(), missing, 't');
    expectError(s.response, TopicSubscribe.Error, NOT_FOUND, 'subscribe to an unknown cache');
  });

  ctx.it(`publish payload limit: ${DEFAULT_MAX_MESSAGE_SIZE} bytes pass, one more is LIMIT_EXCEEDED (wrapper as the err trailer says)`, async () => {
    const topic = uid('size');
    const rec = expectSubscribed(await subscribeRecorded(ctx.topicClient(), cache, topic));
    const atLimit = new Uint8Array(DEFAULT_MAX_MESSAGE_SIZE).fill(0x41);
    atLimit[0] = 1;
    atLimit[atLimit.length - 1] = 2;
    await publishOk(pub, cache, topic, atLimit, `${atLimit.length} bytes`);
    await rec.waitItems(1);
    assert.ok(Buffer.from(rec.items[0].valueUint8Array()).equals(Buffer.from(atLimit)), 'the largest message arrives intact');

    const over = new Uint8Array(DEFAULT_MAX_MESSAGE_SIZE + 1).fill(0x42);
    const r = await pub.publish(cache, topic, over);
    expectError(r, TopicPublish.Error, LIMIT, `binary publish of ${over.length} bytes`);
    assert.ok(r.innerException() instanceof LimitExceededError, 'LimitExceededError');
    const rt = await pub.publish(cache, topic, 'a'.repeat(DEFAULT_MAX_MESSAGE_SIZE + 1));
    expectError(rt, TopicPublish.Error, LIMIT, `text publish of ${DEFAULT_MAX_MESSAGE_SIZE + 1} bytes`);

    const w = await wirePublish(await ctx.session(), cache, topic, over);
    assert.equal(w.status, RESOURCE_EXHAUSTED, `raw publish over the limit: ${JSON.stringify(w)}`);
    assert.ok(['request_size_limit_exceeded', 'item_size_limit_exceeded'].includes(w.err),
      `err trailer of an oversized publish: ${JSON.stringify(w)}`);
    expectWrapperMatchesErr(r, w.err, 'oversized publish');
    await sleep(150);
    assert.deepEqual(rec.seqs(), [1], 'refused publishes are not delivered and take no sequence number');
    await publishOk(pub, cache, topic, 'after', 'a publish after the refused ones');
    await rec.waitItems(2);
    assert.deepEqual(rec.seqs(), [1, 2]);
    rec.unsubscribe();
  });

  ctx.it(`an idle subscription gets heartbeats (--topic-heartbeat-ms ${HEARTBEAT_MS})`, async () => {
    const rec = expectSubscribed(await subscribeRecorded(ctx.topicClient(), cache, uid('idle')));
    assert.ok(rec.heartbeats >= 1, 'subscribe() resolved on a first heartbeat');
    const first = rec.heartbeats;
    const waitMs = 1500;
    await sleep(waitMs);
    const periodic = rec.heartbeats - first;
    assert.ok(periodic >= 3, `heartbeats in ${waitMs} ms of idleness: ${periodic} (expected about ${waitMs / HEARTBEAT_MS})`);
    assert.ok(periodic <= waitMs / HEARTBEAT_MS + 2, `too many heartbeats in ${waitMs} ms: ${periodic}`);
    assert.equal(rec.items.length, 0);
    assert.equal(rec.errors.length, 0);
    rec.unsubscribe();
  });

  ctx.it('the SDK drops its first stream at the 5 s deadline and resumes: a publisher every 20 ms for 8 s loses nothing, duplicates nothing', async () => {
    const topic = uid('resume');
    const rec = expectSubscribed(await subscribeRecorded(ctx.topicClient(), cache, topic)); // default 5 s deadline
    const published = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 8000) {
      const v = `resume-${published.length + 1}`;
      await publishOk(pub, cache, topic, v);
      published.push(v);
      await sleep(20);
    }
    await rec.waitItems(published.length, 5000);
    await sleep(200);
    assert.ok(rec.connectionLost >= 1,
      `the SDK should have lost its first stream at its 5 s deadline and resubscribed (${rec.describe()})`);
    assert.equal(rec.discontinuities.length, 0, `no discontinuity expected (${rec.describe()})`);
    assert.equal(rec.errors.length, 0, `no errors (${rec.describe()})`);
    assert.deepEqual(rec.seqs(), range(1, published.length),
      `every sequence number exactly once, in order (${rec.describe()})`);
    assert.deepEqual(rec.items.map((i) => i.valueString()), published, 'values as published');
    rec.unsubscribe();
  }, 30000);

  ctx.it('wire: heartbeat first, replay from (page, seq), a discontinuity past the replay window or on another page', async () => {
    const session = await ctx.session();
    const topic = uid('wire');
    const nonHeartbeats = (s) => s.messages.filter((m) => m.kind !== 'heartbeat');

    const s1 = wireSubscribe(session, cache, topic);
    await s1.waitMessages((m) => m.length >= 1, 5000, 'the first message of a new stream');
    assert.equal(s1.messages[0].kind, 'heartbeat', `the first message is a heartbeat: ${JSON.stringify(s1.messages[0])}`);
    for (let i = 1; i <= 3; i++) await publishOk(pub, cache, topic, `w-${i}`);
    await s1.waitMessages((m) => m.filter((x) => x.kind === 'item').length >= 3, 5000, '3 items');
    const first = s1.items();
    assert.deepEqual(first.map((x) => x.seq), [1, 2, 3]);
    assert.deepEqual(first.map((x) => x.text), ['w-1', 'w-2', 'w-3']);
    const { page } = first[0];
    assert.ok(page > 0, 'items carry a sequence page');
    assert.ok(Number.isSafeInteger(page), `the page must stay below 2^53: the SDK holds it in a JS number and sends it back (got ${page})`);
    assert.ok(first.every((x) => x.page === page), 'one page for the topic');
    s1.cancel();

    const s2 = wireSubscribe(session, cache, topic, { resumeAt: 2, page });
    await s2.waitMessages((m) => m.filter((x) => x.kind === 'item').length >= 2, 5000, 'the replay of 2 and 3');
    await sleep(100);
    assert.deepEqual(nonHeartbeats(s2).map((x) => [x.kind, x.seq, x.text]), [['item', 2, 'w-2'], ['item', 3, 'w-3']],
      'resume at 2 on the same page replays 2 and 3, with no discontinuity');
    s2.cancel();

    const total = 3 + REPLAY_WINDOW + 36; // 103: the ring keeps 40..103
    for (let i = 4; i <= total; i++) await publishOk(pub, cache, topic, `w-${i}`);
    const oldest = total - REPLAY_WINDOW + 1;
    const s3 = wireSubscribe(session, cache, topic, { resumeAt: 4, page });
    await s3.waitMessages((m) => m.filter((x) => x.kind === 'item').length >= REPLAY_WINDOW, 5000, 'the replay');
    await sleep(100);
    const ev3 = nonHeartbeats(s3);
    assert.deepEqual(ev3[0], { kind: 'discontinuity', last: 3, next: oldest - 1, page },
      `resume at 4 with only ${oldest}..${total} kept: a discontinuity (last 3, new ${oldest - 1}) first`);
    assert.deepEqual(ev3.slice(1).map((x) => x.seq), range(oldest, total), 'then the kept messages, in order');
    assert.ok(ev3.slice(1).every((x) => x.kind === 'item' && x.text === `w-${x.seq}` && x.page === page), 'replayed values');
    s3.cancel();

    const otherPage = page === 1 ? 2 : page - 1;
    const s4 = wireSubscribe(session, cache, topic, { resumeAt: 50, page: otherPage });
    await s4.waitMessages((m) => m.some((x) => x.kind !== 'heartbeat'), 5000, 'a discontinuity for another page');
    await publishOk(pub, cache, topic, 'live');
    await s4.waitMessages((m) => m.some((x) => x.kind === 'item'), 5000, 'the live item');
    await sleep(100);
    assert.deepEqual(nonHeartbeats(s4), [
      { kind: 'discontinuity', last: 49, next: total, page },
      { kind: 'item', seq: total + 1, page, publisherId: s4.items()[0].publisherId, text: 'live' },
    ], 'another page: a discontinuity to the latest (with the real page), then live items only');
    s4.cancel();
  });

  ctx.it('300 concurrent subscriptions from one TopicClient (3 stream channels, 100 streams each) each get their topic\'s message', async () => {
    const tc = ctx.topicClient(localCredentials(ctx.server), { streamChannels: 3 });
    const base = uid('many');
    const topics = range(1, 300).map((i) => `${base}-${i}`);
    const recs = await Promise.all(topics.map((t) => subscribeRecorded(tc, cache, t)));
    recs.forEach((r) => expectSubscribed(r));
    for (let i = 0; i < topics.length; i += 50) {
      await Promise.all(topics.slice(i, i + 50).map((t) => publishOk(pub, cache, t, `v:${t}`)));
    }
    await waitUntil(() => recs.every((r) => r.items.length >= 1), 10000, 'one item on each of 300 subscriptions',
      () => `${recs.filter((r) => r.items.length === 0).length} still waiting`);
    await sleep(150);
    for (const r of recs) {
      assert.deepEqual(r.items.map((i) => [i.sequenceNumber(), i.valueString()]), [[1, `v:${r.topic}`]], r.topic);
      assert.equal(r.errors.length, 0, r.describe());
    }
    recs.forEach((r) => r.unsubscribe());
  }, 30000);

  ctx.it('deleting the cache ends its subscriptions: onError NOT_FOUND once, no resubscribe', async () => {
    const cc = await ctx.cacheClient();
    const doomed = uid('doomed');
    expectType(await cc.createCache(doomed), CreateCache.Success);
    const topic = uid('t');
    const rec = expectSubscribed(await subscribeRecorded(ctx.topicClient(), doomed, topic));
    const survivor = expectSubscribed(await subscribeRecorded(ctx.topicClient(), cache, topic));
    await publishOk(pub, doomed, topic, 'before');
    await rec.waitItems(1);
    expectType(await cc.deleteCache(doomed), DeleteCache.Success, 'deleteCache');
    await waitUntil(() => rec.errors.length >= 1, 5000, 'onError after the cache was deleted', rec.describe);
    assert.equal(rec.errors[0].errorCode(), NOT_FOUND, `error: ${rec.errors[0].message()}`);
    assert.equal(rec.subscription.isSubscribed, false, 'the subscription is over');
    await sleep(1000); // past the SDK's 500 ms resubscribe delay
    assert.equal(rec.errors.length, 1, `one error only (${rec.describe()})`);
    assert.ok(rec.ended >= 1, `onSubscriptionEnd was called (${rec.describe()})`);
    const tail = rec.events.slice(rec.events.findIndex((e) => e.kind === 'error') + 1);
    assert.ok(tail.every((e) => e.kind === 'end'), `nothing but the end after the error (${rec.describe()})`);
    expectError(await pub.publish(doomed, topic, 'after'), TopicPublish.Error, NOT_FOUND, 'publish to the deleted cache');
    // Subscriptions of other caches are untouched.
    await publishOk(pub, cache, topic, 'still here');
    await survivor.waitItems(1);
    assert.equal(survivor.errors.length, 0);
    survivor.unsubscribe();
  });

  ctx.it('cross-protocol: an SDK publish reaches `redis-cli subscribe`; a redis-py PUBLISH reaches an SDK subscriber', async () => {
    // --dev-no-auth: RESP connections use cache "default".
    const topic = uid('x');
    const cli = spawn('redis-cli', ['-p', String(ctx.server.ports.resp), 'subscribe', topic],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    cli.stdout.on('data', (d) => { out += d; });
    cli.stderr.on('data', (d) => { out += d; });
    try {
      await waitUntil(() => out.includes(`subscribe\n${topic}\n1\n`), 5000, 'redis-cli subscribed', () => JSON.stringify(out));
      await publishOk(pub, 'default', topic, 'from-sdk \u2713');
      await waitUntil(() => out.includes(`message\n${topic}\nfrom-sdk \u2713\n`), 5000,
        'the SDK publish in redis-cli', () => JSON.stringify(out));
    } finally {
      cli.kill();
    }

    const topic2 = uid('y');
    const rec = expectSubscribed(await subscribeRecorded(ctx.topicClient(), 'default', topic2));
    const script = 'import redis, sys\n' +
      'r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))\n' +
      'print(r.publish(sys.argv[2], "from-redis-py \\u2713".encode()))\n';
    const { stdout } = await promisify(execFile)('/usr/bin/python3',
      ['-c', script, String(ctx.server.ports.resp), topic2], { timeout: 10000 });
    assert.equal(stdout.trim(), '1', 'PUBLISH answers the number of subscriptions that got it (the SDK one)');
    await rec.waitItems(1);
    assert.ok(bytesOf(rec.items[0].value()).equals(Buffer.from('from-redis-py \u2713')),
      `value: ${JSON.stringify(rec.items[0].value())}`);
    assert.equal(rec.items[0].sequenceNumber(), 1);
    rec.unsubscribe();
  });
});

// =============================================================================================
describe('topics: publish rate and subscription limits', () => {
  const RATE = 5;
  const MAX_SUBS = 3;
  const ctx = suite('topics-limits', {
    devNoAuth: true,
    extraArgs: [FLAG.publishRate, String(RATE), FLAG.maxSubscriptions, String(MAX_SUBS)],
  });

  ctx.it(`publishes over --topic-publish-rate ${RATE} are LIMIT_EXCEEDED ("Request rate limit exceeded")`, async () => {
    const cc = await ctx.cacheClient();
    const cache = uid('rate');
    expectType(await cc.createCache(cache), CreateCache.Success);
    const tc = ctx.topicClient();
    const topic = uid('r');
    const t0 = Date.now();
    const results = [];
    for (let i = 0; i < 3 * RATE; i++) results.push(await tc.publish(cache, topic, `r${i}`));
    const elapsed = Date.now() - t0;
    const ok = results.filter((r) => r instanceof TopicPublish.Success).length;
    const refused = results.filter((r) => !(r instanceof TopicPublish.Success));
    assert.ok(results.slice(0, RATE).every((r) => r instanceof TopicPublish.Success),
      `a full bucket of ${RATE} passes first: ${results.slice(0, RATE).map((r) => r.type)}`);
    assert.ok(ok <= RATE + Math.ceil((elapsed / 1000) * RATE) + 1, `${ok} publishes passed in ${elapsed} ms`);
    assert.ok(refused.length >= 1, 'some publishes refused');
    for (const r of refused) expectError(r, TopicPublish.Error, LIMIT, 'publish over the rate');

    let w;
    for (let i = 0; i < 20; i++) {
      w = await wirePublish(await ctx.session(), cache, topic, 'wire');
      if (w.status !== 0) break;
    }
    assert.equal(w.status, RESOURCE_EXHAUSTED, `raw publish over the rate: ${JSON.stringify(w)}`);
    assert.equal(w.err, 'operations_rate_limit_exceeded', `err trailer: ${JSON.stringify(w)}`);
    expectWrapperMatchesErr(refused[0], w.err, 'publish over the rate');

    await sleep(1200);
    await publishOk(tc, cache, topic, 'later', 'after a second the rate allows publishing again');
  });

  ctx.it(`subscriptions over --topic-max-subscriptions ${MAX_SUBS} per cache are LIMIT_EXCEEDED (topic_subscriptions_limit_exceeded)`, async () => {
    const cc = await ctx.cacheClient();
    const cache = uid('subs');
    const other = uid('subs-other');
    expectType(await cc.createCache(cache), CreateCache.Success);
    expectType(await cc.createCache(other), CreateCache.Success);
    const tc = ctx.topicClient();
    const recs = [];
    for (let i = 0; i < MAX_SUBS; i++) recs.push(expectSubscribed(await subscribeRecorded(tc, cache, uid('s')), `subscription ${i + 1}`));
    const over = await subscribeRecorded(tc, cache, uid('s'));
    expectError(over.response, TopicSubscribe.Error, LIMIT, `subscription ${MAX_SUBS + 1}`);
    const w = wireSubscribe(await ctx.session(), cache, uid('s'));
    const end = await w.done;
    assert.equal(end.status, RESOURCE_EXHAUSTED, `raw subscription over the limit: ${JSON.stringify(end)}`);
    assert.equal(end.err, 'topic_subscriptions_limit_exceeded', `err trailer: ${JSON.stringify(end)}`);
    expectWrapperMatchesErr(over.response, end.err, 'subscription over the limit');

    const elsewhere = expectSubscribed(await subscribeRecorded(tc, other, uid('s')), 'the limit is per cache');
    recs[0].unsubscribe();
    // The SDK cancels the stream; the server frees the slot when it sees the cancel.
    let again = null;
    const deadline = Date.now() + 5000;
    while (!again && Date.now() < deadline) {
      const r = await subscribeRecorded(tc, cache, uid('s'));
      if (r.subscription) again = r;
      else expectError(r.response, TopicSubscribe.Error, LIMIT, 'before the freed slot is seen');
      if (!again) await sleep(50);
    }
    assert.ok(again, 'a subscription is possible again once one was given up');
    for (const r of [...recs, elsewhere, again]) r.unsubscribe();
  });
});

// =============================================================================================
describe('topics: tokens (roles, topic grants, publisher ids)', () => {
  const AUTH_RATE = 30; // per cache: the refused-publish test below checks nothing is spent
  // Heartbeat ticks (which also end subscriptions whose token expired) every 500 ms here.
  const ctx = suite('topics-auth', {
    extraArgs: [FLAG.publishRate, String(AUTH_RATE), FLAG.heartbeatMs, '500'],
  });
  let auth; // AuthClient with the admin key
  let admin; // TopicClient with the admin key
  let cache;
  let otherCache;

  before(async () => {
    const cc = await ctx.cacheClient(tokenCredentials(ctx.server, ctx.server.adminKey));
    cache = uid('tok');
    otherCache = uid('tok-other');
    expectType(await cc.createCache(cache), CreateCache.Success);
    expectType(await cc.createCache(otherCache), CreateCache.Success);
    auth = new AuthClient({ credentialProvider: tokenCredentials(ctx.server, ctx.server.adminKey) });
    admin = ctx.topicClient(tokenCredentials(ctx.server, ctx.server.adminKey));
  }, { timeout: 30000 });
  after(() => { auth?.close?.(); });

  async function apiKeyClient(scope) {
    const k = await auth.generateApiKey(scope, ExpiresIn.minutes(10));
    expectType(k, GenerateApiKey.Success, `generateApiKey(${JSON.stringify(scope)})`);
    return ctx.topicClient(keyCredentials(ctx.server, k.apiKey));
  }

  // What `tc` may do on (cache, topic): {publish, subscribe} each true, or an error code.
  async function probe(tc, c, topic) {
    const p = await tc.publish(c, topic, 'probe');
    const s = await subscribeRecorded(tc, c, topic);
    s.unsubscribe();
    const code = (r, okCls) => (r instanceof okCls ? true : r.errorCode?.());
    return { publish: code(p, TopicPublish.Success), subscribe: code(s.response, TopicSubscribe.Subscription) };
  }
  const BOTH = { publish: true, subscribe: true };
  const NEITHER = { publish: PERMISSION, subscribe: PERMISSION };

  ctx.it('TopicItem.tokenId() is the token id of the disposable token that published', async () => {
    const topic = uid('pid');
    const rec = expectSubscribed(await subscribeRecorded(admin, cache, topic));
    const ids = ['myTokenID', `id-${uid('p')}`];
    for (const tokenId of ids) {
      const t = await auth.generateDisposableToken(DisposableTokenScopes.topicPublishSubscribe(cache, topic),
        ExpiresIn.minutes(5), { tokenId });
      expectType(t, GenerateDisposableToken.Success, `generateDisposableToken(tokenId ${tokenId})`);
      await publishOk(ctx.topicClient(keyCredentials(ctx.server, t.authToken)), cache, topic, `from ${tokenId}`);
    }
    await rec.waitItems(2);
    assert.deepEqual(rec.items.map((i) => [i.valueString(), i.tokenId()]), ids.map((id) => [`from ${id}`, id]));
    rec.unsubscribe();
  });

  ctx.it('a subscription ends with AUTHENTICATION_ERROR when its disposable token expires', async () => {
    const topic = uid('exp');
    const t = await auth.generateDisposableToken(DisposableTokenScopes.topicPublishSubscribe(cache, topic),
      ExpiresIn.seconds(2));
    expectType(t, GenerateDisposableToken.Success, 'generateDisposableToken(2 s)');
    const t0 = Date.now();
    const rec = expectSubscribed(await subscribeRecorded(ctx.topicClient(keyCredentials(ctx.server, t.authToken)), cache, topic));
    await publishOk(admin, cache, topic, 'while valid');
    await rec.waitItems(1);
    // The server ends the stream itself (on a heartbeat tick after the expiry), before the
    // SDK's 5 s first-stream deadline would make it reconnect and be refused anyway.
    await waitUntil(() => rec.errors.length >= 1, 9000, 'onError once the token expired', rec.describe);
    const after = Date.now() - t0;
    assert.ok(after < 4500, `ended by the server ${after} ms after subscribing, before the SDK's deadline`);
    // The SDK reports every stream error as a lost connection first, then the error.
    assert.equal(rec.connectionLost, 1, `one stream, ended once (${rec.describe()})`);
    assert.equal(rec.errors[0].errorCode(), AUTHENTICATION, `error: ${rec.errors[0].message()}`);
    await publishOk(admin, cache, topic, 'after expiry');
    await sleep(1000); // past the SDK's 500 ms resubscribe delay: no resubscribe, nothing more
    assert.equal(rec.items.length, 1, `nothing delivered after the expiry (${rec.describe()})`);
    assert.equal(rec.errors.length, 1, `one error only (${rec.describe()})`);
  }, 20000);

  ctx.it('publish-only cannot subscribe, subscribe-only cannot publish (PERMISSION_ERROR); subscribe-only receives', async () => {
    const topic = uid('role');
    const pubOnly = await apiKeyClient(TokenScopes.topicPublishOnly(cache, AllTopics));
    const subOnly = await apiKeyClient(TokenScopes.topicSubscribeOnly(cache, AllTopics));
    assert.deepEqual(await probe(pubOnly, cache, topic), { publish: true, subscribe: PERMISSION }, 'publish-only');
    assert.deepEqual(await probe(subOnly, cache, topic), { publish: PERMISSION, subscribe: true }, 'subscribe-only');
    const rec = expectSubscribed(await subscribeRecorded(subOnly, cache, topic));
    await publishOk(pubOnly, cache, topic, 'from the publish-only token');
    await rec.waitItems(1);
    assert.equal(rec.items[0].valueString(), 'from the publish-only token');
    rec.unsubscribe();
    const denied = await subscribeRecorded(pubOnly, cache, topic);
    assert.ok(denied.response.message().startsWith('Insufficient permissions'), denied.response.message());
  });

  ctx.it(`a refused publish spends nothing of the cache's publish rate (--topic-publish-rate ${AUTH_RATE})`, async () => {
    const cc = await ctx.cacheClient(tokenCredentials(ctx.server, ctx.server.adminKey));
    const c = uid('spend');
    expectType(await cc.createCache(c), CreateCache.Success);
    const topic = uid('t');
    const subOnly = await apiKeyClient(TokenScopes.topicSubscribeOnly(c, AllTopics));
    const pubOnly = await apiKeyClient(TokenScopes.topicPublishOnly(c, AllTopics));
    for (let i = 0; i < 3 * AUTH_RATE; i++) {
      expectError(await subOnly.publish(c, topic, 'no'), TopicPublish.Error, PERMISSION, `refused publish ${i}`);
    }
    // The bucket is still full: a whole second's worth passes at once.
    for (let i = 0; i < AUTH_RATE; i++) await publishOk(pubOnly, c, topic, `yes ${i}`);
  });

  ctx.it('topic-scoped and topic-prefix grants allow only their topics; a grant on another cache allows nothing here', async () => {
    const named = uid('named');
    const one = await apiKeyClient(TokenScopes.topicPublishSubscribe(cache, named));
    assert.deepEqual(await probe(one, cache, named), BOTH, 'the granted topic');
    assert.deepEqual(await probe(one, cache, `${named}-2`), NEITHER, 'a topic extending the granted name');
    assert.deepEqual(await probe(one, cache, 'other'), NEITHER, 'another topic');
    assert.deepEqual(await probe(one, otherCache, named), NEITHER, 'the granted topic name in another cache');

    const prefixKey = await mintTopicPrefixToken(ctx.server, ctx.server.adminKey, { cache, prefix: 'chat-' });
    const pre = ctx.topicClient(keyCredentials(ctx.server, prefixKey));
    assert.deepEqual(await probe(pre, cache, 'chat-1'), BOTH, 'a topic with the prefix');
    assert.deepEqual(await probe(pre, cache, 'chat-'), BOTH, 'the prefix itself');
    assert.deepEqual(await probe(pre, cache, 'chat'), NEITHER, 'shorter than the prefix');
    assert.deepEqual(await probe(pre, cache, 'news-chat-1'), NEITHER, 'the prefix not at the start');
    const preSub = await mintTopicPrefixToken(ctx.server, ctx.server.adminKey, { cache, prefix: 'feed-', role: 'subscribeonly' });
    assert.deepEqual(await probe(ctx.topicClient(keyCredentials(ctx.server, preSub)), cache, 'feed-a'),
      { publish: PERMISSION, subscribe: true }, 'a subscribe-only prefix grant');

    const elsewhere = await apiKeyClient(TokenScopes.topicPublishSubscribe(otherCache, AllTopics));
    assert.deepEqual(await probe(elsewhere, cache, 'any'), NEITHER, 'a topic grant on another cache');
    assert.deepEqual(await probe(elsewhere, otherCache, 'any'), BOTH, 'the same token on its own cache');
  });

  ctx.it('cache-only grants carry no topic permission; AllDataReadWrite does', async () => {
    const topic = uid('cacheonly');
    assert.deepEqual(await probe(await apiKeyClient(TokenScopes.cacheReadWrite(cache)), cache, topic), NEITHER,
      'cacheReadWrite(cache)');
    assert.deepEqual(await probe(await apiKeyClient(TokenScopes.cacheReadOnly(AllCaches)), cache, topic), NEITHER,
      'cacheReadOnly(AllCaches)');
    assert.deepEqual(await probe(await apiKeyClient(AllDataReadWrite), cache, topic), BOTH, 'AllDataReadWrite');
  });
});

// =============================================================================================
describe('topics: slow subscribers', () => {
  const QUEUE = 256 * 1024;
  const ctx = suite('topics-slow', {
    devNoAuth: true,
    extraArgs: [FLAG.subscriberQueue, String(QUEUE), FLAG.replayMessages, String(REPLAY_WINDOW)],
  });
  let cache;

  before(async () => {
    const cc = await ctx.cacheClient();
    cache = uid('slow');
    expectType(await cc.createCache(cache), CreateCache.Success);
  }, { timeout: 30000 });

  ctx.it('wire: a reader that stops reading is cut off (RESOURCE_EXHAUSTED, "fell behind"); the publisher and an SDK subscriber go on', async () => {
    const topic = uid('stall');
    const slow = wireSubscribe(await ctx.session(), cache, topic);
    await slow.waitMessages((m) => m.length >= 1, 5000, 'the first heartbeat');
    slow.pause();
    // 60 s deadline: this subscriber must not resubscribe during the test.
    const good = expectSubscribed(await subscribeRecorded(ctx.topicClient(localCredentials(ctx.server), { timeoutMs: 60000 }),
      cache, topic));
    const pub = ctx.topicClient();
    const N = 400;
    const SIZE = 10 * 1024; // 4 MB in all, 16 times the subscriber queue
    const lat = [];
    const t0 = Date.now();
    for (let i = 1; i <= N; i++) {
      const t = Date.now();
      await publishOk(pub, cache, topic, workerValue(i, SIZE), `publish #${i}`);
      lat.push(Date.now() - t);
    }
    const total = Date.now() - t0;
    await good.waitItems(N, 10000);
    assert.deepEqual(good.seqs(), range(1, N), `the reading subscriber gets everything in order (${good.describe()})`);
    assert.ok(good.items.every((it, i) => it.valueString() === workerValue(i + 1, SIZE)), 'values');
    assert.equal(good.connectionLost, 0, `the reading subscriber was never cut off (${good.describe()})`);
    const maxLat = Math.max(...lat);
    assert.ok(maxLat < 1000, `no publish waits on the stalled reader: slowest ${maxLat} ms (all ${N} in ${total} ms)`);

    slow.resume();
    const end = await Promise.race([slow.done, sleep(10000).then(() => null)]);
    assert.ok(end, `the stalled stream should have ended (got ${slow.items().length} items)`);
    assert.equal(end.status, RESOURCE_EXHAUSTED, `the stalled stream ends with RESOURCE_EXHAUSTED: ${JSON.stringify(end)}`);
    assert.match(end.message ?? '', /behind/i, `and says it fell behind: ${JSON.stringify(end)}`);
    const got = slow.items().map((x) => x.seq);
    assert.ok(got.length < N, `it was cut off before the end (${got.length} of ${N})`);
    assert.deepEqual(got, range(1, got.length), 'what it got before the cut is in order, from 1');
    good.unsubscribe();
  }, 40000);

  // The SDK resubscribes 500 ms after a RESOURCE_EXHAUSTED cut-off, with resume_at = last + 1,
  // for ever. Here the replay window (64 x 4 KiB) is about the size of the subscriber queue,
  // so a server that counts the replay against the cut-off bound cuts every resume off at
  // once and the subscriber never recovers.
  ctx.it('SDK: a subscriber that falls behind is cut off, resumes, hears a discontinuity, and goes on without duplicates', async () => {
    const topic = uid('behind');
    const N = 600;
    const SIZE = 4096; // 2.4 MB while the subscriber's thread is blocked
    const signal = new SharedArrayBuffer(4);
    let blocked = false;
    const rec = expectSubscribed(await subscribeRecorded(ctx.topicClient(), cache, topic, {
      onItem: () => {
        if (blocked) return;
        blocked = true;
        // Block this thread (and so the SDK's reads) until the worker has published all N.
        Atomics.wait(new Int32Array(signal), 0, 0, 20000);
      },
    }));
    const worker = await publishInWorker({ port: ctx.server.ports.api, cache, topic, count: N, size: SIZE, signal });
    assert.equal(worker.published, N, `the worker's publishes: ${JSON.stringify(worker)}`);
    await waitUntil(() => rec.items.at(-1)?.sequenceNumber() === N, 10000, `item ${N} after the resume`, rec.describe);
    await sleep(150);
    assert.ok(rec.connectionLost >= 1, `the subscriber was cut off (${rec.describe()})`);
    assert.ok(rec.discontinuities.length >= 1, `a discontinuity was reported (${rec.describe()})`);
    assert.equal(rec.errors.length, 0, `cut-off is not an error for the SDK user (${rec.describe()})`);
    // Every item follows the previous one, or follows a discontinuity that names the gap.
    let expected = 1;
    for (const e of rec.events) {
      if (e.kind === 'discontinuity') {
        assert.equal(e.last, expected - 1, `discontinuity.last is the last sequence received (${rec.describe()})`);
        assert.ok(e.next >= e.last, `discontinuity.new ${e.next} >= last ${e.last}`);
        assert.ok(e.page > 0 && Number.isSafeInteger(e.page), `discontinuity page ${e.page}`);
        expected = e.next + 1;
      } else if (e.kind === 'item') {
        assert.equal(e.seq, expected, `item sequence (${rec.describe()})`);
        expected += 1;
      }
    }
    assert.equal(expected - 1, N, 'ends at the last published item');
    for (const it of rec.items) assert.equal(it.valueString(), workerValue(it.sequenceNumber(), SIZE), `value of #${it.sequenceNumber()}`);
    rec.unsubscribe();
  }, 40000);
});
