// Helpers for test/topics.test.mjs: SDK TopicClients, a subscription that records every
// callback the SDK makes, raw gRPC Subscribe/Publish over node:http2 (to see fields the SDK
// hides: heartbeats, pages, discontinuity fields, the `err` trailer), topic-scoped tokens the
// SDK cannot ask for (topic-name prefixes), and a publisher running in a worker thread (so it
// keeps publishing while a test blocks the main thread to make an SDK subscriber fall behind).
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import assert from 'node:assert/strict';

import {
  CredentialProvider, TopicClient, TopicConfigurations, TopicPublish, TopicSubscribe,
} from '@gomomento/sdk';

import { V2_MODE, isV2Key, loggerFactory, showResponse, tokenCredentials, v1ApiKey } from './harness.mjs';
import {
  connect, decode, fBytes, fVarint, frame, withTimeout,
} from '../../../integration/grpc_wire_helpers.mjs';

// The server's topic flags (cellar serve --help), in one place.
export const FLAG = {
  replayMessages: '--topic-replay-messages',
  heartbeatMs: '--topic-heartbeat-ms',
  maxMessageSize: '--topic-max-message-size',
  publishRate: '--topic-publish-rate',
  maxSubscriptions: '--topic-max-subscriptions',
  subscriberQueue: '--topic-subscriber-queue',
};

/** The default publish payload limit: 100 KiB (ListCaches' max_publish_message_size_kb). */
export const DEFAULT_MAX_MESSAGE_SIZE = 100 * 1024;

// SDK 1.118.1 LimitExceededError wrappers, by the `err` trailer value that names them.
export const LIMIT_WRAPPER_BY_ERR = {
  topic_subscriptions_limit_exceeded: 'Topic subscriptions limit exceeded for this account',
  operations_rate_limit_exceeded: 'Request rate limit exceeded for this account',
  throughput_rate_limit_exceeded: 'Bandwidth limit exceeded for this account',
  request_size_limit_exceeded: 'Request size limit exceeded for this account',
  item_size_limit_exceeded: 'Item size limit exceeded for this account',
  element_size_limit_exceeded: 'Element size limit exceeded for this account',
};

// ---------------------------------------------------------------------------------------------
// SDK clients

/**
 * A TopicClient on the Default configuration (4 stream and 4 unary channels, 5 s deadline on
 * the first Subscribe call). `timeoutMs` replaces the deadline, for tests that must not see
 * the SDK's resubscribe at 5 s; `streamChannels` the number of subscription channels (the SDK
 * puts at most 100 subscriptions on each).
 */
export function makeTopicClient(credentialProvider, { timeoutMs, streamChannels } = {}) {
  let configuration = TopicConfigurations.Default.latest(loggerFactory);
  if (timeoutMs !== undefined) configuration = configuration.withClientTimeoutMillis(timeoutMs);
  if (streamChannels !== undefined) configuration = configuration.withNumStreamConnections(streamChannels);
  return new TopicClient({ configuration, credentialProvider });
}

/**
 * TopicClient has no close(): close its gRPC channels so the test process can exit. Reaches
 * into SDK 1.118.1 internals (AbstractTopicClient's channel lists), which only this helper does.
 */
export function closeTopicClient(tc) {
  if (!tc) return;
  for (const s of tc.pubsubStreamClients ?? []) s.client?.client?.close?.();
  for (const u of tc.pubsubUnaryClients ?? []) u.client?.close?.();
  tc.webhookClient?.webhookClient?.close?.();
}

/** Credentials sending `rawToken` as is, or an SDK-style v1 key, to the server's API port. */
export function keyCredentials(server, apiKey) {
  if (V2_MODE && isV2Key(apiKey)) return tokenCredentials(server, apiKey);
  const ep = `127.0.0.1:${server.ports.api}`;
  return CredentialProvider.fromString({
    apiKey,
    endpointOverrides: { cacheEndpoint: ep, controlEndpoint: ep, tokenEndpoint: ep, secureConnection: false },
  });
}

/** Poll `pred` until true or `ms` passed; the failure says what was awaited and `show()`. */
export async function waitUntil(pred, ms, what, show = () => '') {
  const deadline = Date.now() + ms;
  for (;;) {
    if (pred()) return;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}${show() ? `: ${show()}` : ''}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Subscribe through the SDK and record every callback. Returns a recorder:
 *   response      what subscribe() resolved to (Subscription or Error)
 *   items         TopicItems in arrival order
 *   events        [{kind: 'item'|'heartbeat'|'discontinuity'|'error'|'lost'|'end', ...}] in order
 *   errors, discontinuities, heartbeats, connectionLost, ended
 *   waitItems(n, ms)  resolves once n items arrived
 * `onItem(item, rec)` runs inside the SDK's callback (may block the thread on purpose).
 */
export async function subscribeRecorded(tc, cache, topic, { onItem } = {}) {
  const rec = {
    cache, topic, items: [], events: [], errors: [], discontinuities: [],
    heartbeats: 0, connectionLost: 0, ended: 0, response: null, subscription: null,
  };
  rec.response = await tc.subscribe(cache, topic, {
    onItem: (item) => {
      rec.items.push(item);
      rec.events.push({ kind: 'item', seq: item.sequenceNumber() });
      onItem?.(item, rec);
    },
    onError: (err) => { rec.errors.push(err); rec.events.push({ kind: 'error', code: err.errorCode() }); },
    onDiscontinuity: (d) => {
      rec.discontinuities.push(d);
      rec.events.push({ kind: 'discontinuity', last: d.lastSequenceNumber(), next: d.newSequenceNumber(),
        page: d.newSequencePage() });
    },
    onHeartbeat: () => { rec.heartbeats += 1; rec.events.push({ kind: 'heartbeat' }); },
    onConnectionLost: () => { rec.connectionLost += 1; rec.events.push({ kind: 'lost' }); },
    onSubscriptionEnd: () => { rec.ended += 1; rec.events.push({ kind: 'end' }); },
  });
  if (rec.response instanceof TopicSubscribe.Subscription) rec.subscription = rec.response;
  rec.seqs = () => rec.items.map((i) => i.sequenceNumber());
  rec.describe = () => `${topic}: ${rec.items.length} items, events ${JSON.stringify(summarizeEvents(rec.events))}`;
  rec.waitItems = (n, ms = 5000) => waitUntil(() => rec.items.length >= n, ms, `${n} items on ${topic}`, rec.describe);
  rec.unsubscribe = () => rec.subscription?.unsubscribe();
  return rec;
}

/** Assert subscribe() gave a Subscription (with the response shown otherwise). */
export function expectSubscribed(rec, what = '') {
  assert.ok(rec.subscription, `${what ? `${what}: ` : ''}subscribe(${rec.topic}) gave ${showResponse(rec.response)}`);
  return rec;
}

// Runs of the same event kind folded (items as seq ranges), to keep failure messages short.
function summarizeEvents(events) {
  const out = [];
  for (const e of events) {
    const last = out.at(-1);
    if (e.kind === 'item' && last?.kind === 'items' && last.to + 1 === e.seq) { last.to = e.seq; continue; }
    if (e.kind === 'item') { out.push({ kind: 'items', from: e.seq, to: e.seq }); continue; }
    if (e.kind === 'heartbeat' && last?.kind === 'heartbeats') { last.n += 1; continue; }
    if (e.kind === 'heartbeat') { out.push({ kind: 'heartbeats', n: 1 }); continue; }
    out.push(e);
  }
  return out.slice(0, 60);
}

/** Publish and assert TopicPublish.Success. */
export async function publishOk(tc, cache, topic, value, what = '') {
  const r = await tc.publish(cache, topic, value);
  assert.ok(r instanceof TopicPublish.Success, `${what ? `${what}: ` : ''}publish to ${topic}: ${showResponse(r)}`);
}

// ---------------------------------------------------------------------------------------------
// Raw gRPC (node:http2) Subscribe and Publish

export const SUBSCRIBE_PATH = '/cache_client.pubsub.Pubsub/Subscribe';
export const PUBLISH_PATH = '/cache_client.pubsub.Pubsub/Publish';

/** _SubscriptionRequest { 1 cache_name, 2 topic, 3 resume_at_topic_sequence_number, 4 sequence_page }. */
export function subscriptionRequest(cache, topic, resumeAt = 0, page = 0) {
  const parts = [fBytes(1, cache), fBytes(2, topic)];
  if (resumeAt) parts.push(fVarint(3, resumeAt));
  if (page) parts.push(fVarint(4, page));
  return Buffer.concat(parts);
}

/** _PublishRequest { 1 cache_name, 2 topic, 3 value { 1 text | 2 binary } }. */
export function publishRequest(cache, topic, value) {
  const v = typeof value === 'string' ? fBytes(1, value) : fBytes(2, Buffer.from(value));
  return Buffer.concat([fBytes(1, cache), fBytes(2, topic), fBytes(3, v)]);
}

/**
 * One _SubscriptionItem as {kind: 'item', seq, page, publisherId, text|binary} |
 * {kind: 'discontinuity', last, next, page} | {kind: 'heartbeat'}. Varints as Numbers (a value
 * past 2^53 shows up as an unsafe integer).
 */
export function decodeSubscriptionItem(buf) {
  const d = decode(buf);
  const kinds = [1, 2, 3].filter((f) => d[f]);
  assert.equal(kinds.length, 1, `a _SubscriptionItem sets exactly one oneof branch, got fields ${Object.keys(d)}`);
  if (d[1]) {
    const it = decode(d[1].at(-1));
    const v = it[2] ? decode(it[2].at(-1)) : {};
    const out = { kind: 'item', seq: it[1]?.at(-1) ?? 0, page: it[4]?.at(-1) ?? 0,
      publisherId: (it[3]?.at(-1) ?? Buffer.alloc(0)).toString('utf8') };
    if (v[1]) out.text = v[1].at(-1).toString('utf8');
    if (v[2]) out.binary = Buffer.from(v[2].at(-1));
    return out;
  }
  if (d[2]) {
    const x = decode(d[2].at(-1));
    return { kind: 'discontinuity', last: x[1]?.at(-1) ?? 0, next: x[2]?.at(-1) ?? 0, page: x[3]?.at(-1) ?? 0 };
  }
  return { kind: 'heartbeat' };
}

/**
 * A raw Subscribe stream on `session`. Messages are decoded as they arrive (`messages`);
 * `done` resolves when the stream closes: {status, message, err, rstCode}.
 * `pause()`/`resume()` stop and restart reading (HTTP/2 flow control then stops the server).
 */
export function wireSubscribe(session, cache, topic, { resumeAt = 0, page = 0, auth = '' } = {}) {
  const req = session.request({
    ':method': 'POST', ':path': SUBSCRIBE_PATH, 'content-type': 'application/grpc', te: 'trailers',
    authorization: auth,
  }, { endStream: false });
  req.end(frame(subscriptionRequest(cache, topic, resumeAt, page)));
  const sub = { req, messages: [], bytes: 0, headers: null, trailers: null };
  let pending = Buffer.alloc(0);
  req.on('response', (h) => { sub.headers = h; });
  req.on('trailers', (t) => { sub.trailers = t; });
  req.on('data', (chunk) => {
    sub.bytes += chunk.length;
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 5) {
      const len = pending.readUInt32BE(1);
      if (pending.length < 5 + len) break;
      assert.equal(pending[0], 0, 'uncompressed gRPC message');
      sub.messages.push(decodeSubscriptionItem(pending.subarray(5, 5 + len)));
      pending = pending.subarray(5 + len);
    }
  });
  sub.done = new Promise((resolve) => {
    req.on('error', (e) => { sub.error = e; });
    req.on('close', () => {
      const st = sub.trailers ?? sub.headers ?? {};
      resolve({
        status: st['grpc-status'] !== undefined ? Number(st['grpc-status']) : undefined,
        message: st['grpc-message'] !== undefined ? decodeURIComponent(st['grpc-message']) : undefined,
        err: st.err, rstCode: req.rstCode, leftover: pending.length, error: sub.error?.message,
      });
    });
  });
  sub.items = () => sub.messages.filter((m) => m.kind === 'item');
  sub.waitMessages = (pred, ms, what) => waitUntil(() => pred(sub.messages), ms, what,
    () => JSON.stringify(sub.messages.slice(-5)));
  sub.pause = () => req.pause();
  sub.resume = () => req.resume();
  sub.cancel = () => { if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL); };
  return sub;
}

/** A raw unary Publish: {status, message, err}. */
export async function wirePublish(session, cache, topic, value, { auth = '' } = {}) {
  const req = session.request({
    ':method': 'POST', ':path': PUBLISH_PATH, 'content-type': 'application/grpc', te: 'trailers',
    authorization: auth,
  }, { endStream: false });
  req.end(frame(publishRequest(cache, topic, value)));
  return withTimeout(new Promise((resolve) => {
    let headers = null;
    let trailers = null;
    req.on('response', (h) => { headers = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', () => {});
    req.on('error', () => {});
    req.on('close', () => {
      const st = trailers ?? headers ?? {};
      resolve({
        status: st['grpc-status'] !== undefined ? Number(st['grpc-status']) : undefined,
        message: st['grpc-message'] !== undefined ? decodeURIComponent(st['grpc-message']) : undefined,
        err: st.err,
      });
    });
  }), 10000, `raw Publish to ${topic}`);
}

export { connect as wireConnect };

// ---------------------------------------------------------------------------------------------
// Topic-name-prefix tokens (the SDK never sends topic_name_prefix)

const require = createRequire(import.meta.url);
const { token: tokenPb } = require('@gomomento/generated-types');
const { permission_messages: pm } = require('@gomomento/generated-types/dist/permissionmessages');
const grpc = require('@grpc/grpc-js');

const TOPIC_ROLE = { publishsubscribe: 1, subscribeonly: 2, publishonly: 3 };

/**
 * token.Token/GenerateDisposableToken with one topic permission whose selector is a topic-name
 * prefix, called with `authToken` (the admin key). Returns an SDK-style v1 key.
 */
export async function mintTopicPrefixToken(server, authToken, { cache, prefix, role = 'publishsubscribe',
  tokenId, validForSeconds = 600 }) {
  const permissions = new pm.Permissions({
    explicit: new pm.ExplicitPermissions({
      permissions: [new pm.PermissionsType({
        topic_permissions: new pm.PermissionsType.TopicPermissions({
          role: TOPIC_ROLE[role],
          cache_selector: new pm.PermissionsType.CacheSelector({ cache_name: cache }),
          topic_selector: new pm.PermissionsType.TopicSelector({ topic_name_prefix: prefix }),
        }),
      })],
    }),
  });
  const request = new tokenPb.token._GenerateDisposableTokenRequest({
    expires: new tokenPb.token._GenerateDisposableTokenRequest.Expires({ valid_for_seconds: validForSeconds }),
    auth_token: authToken,
    permissions,
    token_id: tokenId,
  });
  const client = new tokenPb.token.TokenClient(`127.0.0.1:${server.ports.api}`, grpc.credentials.createInsecure());
  try {
    const resp = await new Promise((resolve, reject) => {
      client.GenerateDisposableToken(request, { deadline: Date.now() + 10000 },
        (err, r) => (err ? reject(err) : resolve(r)));
    });
    return v1ApiKey(resp.api_key, resp.endpoint || 'localhost');
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// A publisher in a worker thread

const SELF = fileURLToPath(import.meta.url);

/**
 * Start a worker that publishes `count` messages of `size` bytes (text: `<i>:` then padding;
 * i from 1) to (cache, topic) one after another through its own SDK TopicClient, then sets
 * Int32 slot 0 of `signal` (a SharedArrayBuffer) to 1 and notifies it. Resolves with
 * {published, failures, ms} when the worker is done.
 */
export function publishInWorker({ port, cache, topic, count, size, signal }) {
  const w = new Worker(SELF, { workerData: { kind: 'topics-publisher', port, cache, topic, count, size, signal } });
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => { if (code !== 0) reject(new Error(`publisher worker exited ${code}`)); });
  });
}

/** The value the worker publishes as message i (1-based). */
export function workerValue(i, size) {
  const head = `${i}:`;
  return head + 'x'.repeat(Math.max(0, size - head.length));
}

if (!isMainThread && workerData?.kind === 'topics-publisher') {
  const { port, cache, topic, count, size, signal } = workerData;
  const flag = new Int32Array(signal);
  const tc = makeTopicClient(CredentialProvider.forMomentoLocal({ hostname: '127.0.0.1', port }));
  const t0 = Date.now();
  let published = 0;
  const failures = [];
  for (let i = 1; i <= count; i++) {
    const r = await tc.publish(cache, topic, workerValue(i, size));
    if (r instanceof TopicPublish.Success) published += 1;
    else if (failures.length < 5) failures.push(`#${i}: ${showResponse(r)}`);
  }
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  closeTopicClient(tc);
  parentPort.postMessage({ published, failures, ms: Date.now() - t0 });
}
