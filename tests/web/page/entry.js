// The test page's script, bundled by esbuild (lib/harness.mjs bundlePage) into one IIFE for
// Chromium. It only starts things: each window.cellar* function records what happens in
// window.cellar (plain JSON-able data), and the test reads that with page.waitForFunction.
// Nothing here awaits on the test's behalf, so every wait is the test's own, bounded one.
import {
  CacheClient,
  CacheGet,
  Configurations,
  CredentialProvider,
  TopicClient,
  TopicConfigurations,
  TopicSubscribe,
} from '@gomomento/sdk-web';

const state = {
  sdk: { setGet: null, subscribe: null, items: [], errors: [] },
  ws: null,
  sse: null,
  sseRaw: null,
  fetches: {},
};
window.cellar = state;

/** Standard padded base64 of bytes (what the JSON forms carry for binary values). */
function base64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** A topic value as the JSON forms write it: {text} or {binary: base64}. */
function valueJson(v) {
  return typeof v === 'string' ? { text: v } : { binary: base64(v) };
}

/** An SDK response as text: class name, type, and the error's code and message if any. */
function show(resp) {
  if (resp === null || resp === undefined) return String(resp);
  let s = `${resp.constructor?.name ?? typeof resp}{type=${resp.type}}`;
  if (typeof resp.errorCode === 'function') {
    try { s += ` errorCode=${resp.errorCode()} message=${JSON.stringify(resp.message())}`; } catch { /* */ }
  }
  return s;
}

/**
 * The SDK's credentials for the API port: `apiKey` goes through CredentialProvider.fromString,
 * which takes a base64 v1 key ({api_key, endpoint}: the inner api_key is what is sent as the
 * `authorization` metadata) or a legacy JWT, but refuses a v2 key (payload "t":"g") outright.
 * With all three endpoint overrides, the grpc-web base URL is the endpoint itself
 * (web-client-utils.ts: no "web." prefix, an http:// prefix is kept).
 */
function credentials(apiBase, apiKey) {
  return CredentialProvider.fromString({
    apiKey,
    endpointOverrides: { cacheEndpoint: apiBase, controlEndpoint: apiBase, tokenEndpoint: apiBase },
  });
}

/** CacheClient.set then get; the outcome lands in cellar.sdk.setGet. */
window.cellarSdkSetGet = ({ apiBase, apiKey, cache, key, value }) => {
  (async () => {
    const client = new CacheClient({
      configuration: Configurations.Browser.latest(),
      credentialProvider: credentials(apiBase, apiKey),
      defaultTtlSeconds: 60,
    });
    const set = await client.set(cache, key, value);
    const get = await client.get(cache, key);
    state.sdk.setGet = {
      set: show(set),
      get: show(get),
      value: get instanceof CacheGet.Hit ? get.valueString() : null,
    };
    client.close();
  })().catch((e) => { state.sdk.setGet = { exception: String(e && e.stack || e) }; });
};

/** TopicClient.subscribe; items land in cellar.sdk.items, the subscribe() outcome in .subscribe. */
window.cellarSdkSubscribe = ({ apiBase, apiKey, cache, topic }) => {
  const s = state.sdk;
  const client = new TopicClient({
    configuration: TopicConfigurations.Browser.latest(),
    credentialProvider: credentials(apiBase, apiKey),
  });
  client.subscribe(cache, topic, {
    onItem: (item) => s.items.push({ seq: item.sequenceNumber(), value: valueJson(item.value()) }),
    onError: (err) => s.errors.push(show(err)),
  }).then((r) => {
    s.subscribe = { ok: r instanceof TopicSubscribe.Subscription, show: show(r) };
    window.cellarSdkSubscription = r;
  }).catch((e) => { s.subscribe = { ok: false, exception: String(e && e.stack || e) }; });
};

/** One item/heartbeat/discontinuity JSON object of the WebSocket and SSE forms, recorded. */
function record(into, text, extra = {}) {
  let o;
  try {
    o = JSON.parse(text);
  } catch {
    into.unparsed.push(text);
    return;
  }
  if (o && o.item) {
    into.items.push({
      seq: o.item.topic_sequence_number, page: o.item.sequence_page, value: o.item.value, ...extra,
    });
  } else if (o && o.heartbeat) {
    into.heartbeats += 1;
  } else if (o && o.discontinuity) {
    into.discontinuities.push(o.discontinuity);
  } else {
    into.unparsed.push(text);
  }
}

/** A WebSocket subscription: ws://<api>/topics/<cache>/<topic>/ws?token=... */
window.cellarWs = ({ url }) => {
  const w = state.ws = {
    open: false, items: [], heartbeats: 0, discontinuities: [], unparsed: [], binaryFrames: 0,
    closes: [], errors: 0, protocol: null,
  };
  const sock = new WebSocket(url);
  window.cellarWsSocket = sock;
  sock.onopen = () => { w.open = true; w.protocol = sock.protocol; };
  sock.onmessage = (e) => {
    if (typeof e.data !== 'string') { w.binaryFrames += 1; return; }
    record(w, e.data);
  };
  sock.onerror = () => { w.errors += 1; };
  sock.onclose = (e) => { w.open = false; w.closes.push({ code: e.code, reason: e.reason, wasClean: e.wasClean }); };
};

/** A client text frame: published to the topic. */
window.cellarWsSend = (text) => window.cellarWsSocket.send(text);

/** An EventSource subscription: http://<api>/topics/<cache>/<topic>/sse?token=... */
window.cellarSse = ({ url }) => {
  const s = state.sse = {
    open: false, opens: 0, items: [], heartbeats: 0, discontinuities: [], unparsed: [], errors: [],
  };
  const es = new EventSource(url);
  window.cellarEventSource = es;
  es.onopen = () => { s.open = true; s.opens += 1; };
  // Items have no `event:` field, so they are "message" events; `id:` is in lastEventId.
  es.onmessage = (e) => record(s, e.data, { id: e.lastEventId });
  es.addEventListener('discontinuity', (e) => {
    try { s.discontinuities.push({ ...JSON.parse(e.data), id: e.lastEventId }); } catch { s.unparsed.push(e.data); }
  });
  es.onerror = () => { s.errors.push({ readyState: es.readyState, at: Date.now() }); };
};

/**
 * The same SSE URL read raw through fetch (EventSource hides comment lines): the status,
 * Content-Type and text until `wanted` comment lines (`:`-prefixed: heartbeats) have been seen,
 * or 64 KiB. Lands in cellar.sseRaw.
 */
window.cellarSseRaw = ({ url, wanted = 2 }) => {
  const r = state.sseRaw = { status: null, contentType: null, text: '', comments: 0, done: false };
  const ctl = new AbortController();
  (async () => {
    const res = await fetch(url, { signal: ctl.signal });
    r.status = res.status;
    r.contentType = res.headers.get('content-type');
    r.cacheControl = res.headers.get('cache-control');
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      r.text += dec.decode(value, { stream: true });
      r.comments = r.text.split(/\r\n|\r|\n/).filter((l) => l.startsWith(':')).length;
      if (r.comments >= wanted || r.text.length > 65536) break;
    }
    r.done = true;
    ctl.abort();
  })().catch((e) => { r.error = `${e.name}: ${e.message}`; r.done = true; });
};

/** fetch(url, init); lands in cellar.fetches[name] as {status, body, ...} or {error}. */
window.cellarFetch = ({ name, url, init }) => {
  state.fetches[name] = null;
  (async () => {
    const res = await fetch(url, init);
    state.fetches[name] = {
      status: res.status,
      statusText: res.statusText,
      contentType: res.headers.get('content-type'),
      body: await res.text(),
    };
  })().catch((e) => { state.fetches[name] = { error: e.name, message: e.message }; });
};

window.cellarReady = true;
