// --demo: a page at /demo (a chat room on a topic, a shared counter in a cache) and the
// token-vending endpoint it gets its disposable token from. A pattern to copy into a backend,
// not a production endpoint: anyone who can reach the port gets a token (docs/web.md).
#include "frontend/grpc/demo.h"

#include <algorithm>
#include <chrono>
#include <mutex>

#include "auth/token.h"
#include "common/clock.h"
#include "common/json.h"

namespace cellar::grpc {

namespace {

// Tokens handed out, the whole server together: a burst of kBurst, then kPerSecond a second.
// Anyone can ask; without a bound a loop of requests would mint (sign) as fast as it can.
constexpr double kBurst = 20, kPerSecond = 5;

bool TakeDemoToken() {
  static std::mutex mu;
  static double tokens = kBurst;
  static auto last = std::chrono::steady_clock::now();
  std::lock_guard lock(mu);
  const auto now = std::chrono::steady_clock::now();
  tokens = std::min(kBurst, tokens + std::chrono::duration<double>(now - last).count() * kPerSecond);
  last = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

}  // namespace

StatusOr<DemoToken> MintDemoToken(const ServiceContext& ctx, std::string_view name) {
  if (ctx.keys == nullptr) return Error(GrpcError::kTokensDisabled);
  if (!TakeDemoToken()) {
    return Error(GrpcError::kDemoTokensThrottled, static_cast<uint64_t>(kPerSecond),
                 static_cast<uint64_t>(kBurst));
  }
  // The name is shown to the room (it is the token id, which items carry as publisher_id).
  std::string id;
  for (char c : name) {
    if (id.size() >= 24) break;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == ' ') {
      id.push_back(c);
    }
  }
  if (id.empty()) id = "guest";
  const int64_t now_s = SystemClock::Get()->NowMillis() / 1000;
  auth::Claims c;
  c.tenant = "default";
  c.kind = auth::TokenKind::kDisposable;
  c.issued_at = now_s;
  c.expires_at = now_s + kDemoTokenSeconds;
  c.token_id = id;
  auth::CacheGrant counter;
  counter.role = auth::CacheRole::kReadWrite;
  counter.cache = std::string(kDemoCache);
  counter.key = std::string(kDemoCounterKey);
  c.perms.caches.push_back(std::move(counter));
  auth::TopicGrant chat;
  chat.role = auth::TopicRole::kPublishSubscribe;
  chat.cache = std::string(kDemoCache);
  chat.topic = std::string(kDemoTopic);
  c.perms.topics.push_back(std::move(chat));
  auto token = auth::Mint(*ctx.keys, c);
  if (!token.ok()) return token.status();
  DemoToken t;
  t.json = R"({"token":")" + *token + R"(","expires_at":)" + std::to_string(c.expires_at) +
           R"(,"name":")" + JsonEscape(id) + R"(","cache":")" + std::string(kDemoCache) +
           R"(","topic":")" + std::string(kDemoTopic) + R"(","key":")" +
           std::string(kDemoCounterKey) + R"("})";
  return t;
}

std::string_view DemoPageHtml() {
  return R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cellar demo: chat and a shared counter</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.4em} section{border:1px solid #ccc;border-radius:8px;padding:1em;margin:1em 0}
#log{height:240px;overflow-y:auto;background:#fafafa;border:1px solid #eee;padding:.5em}
#log div{margin:.15em 0} .who{font-weight:600;margin-right:.4em} .seq{color:#999;font-size:.8em}
.sys{color:#777;font-style:italic} #count{font-size:2.2em;font-weight:700;margin:0 .5em}
input[type=text]{width:60%;padding:.4em} button{padding:.4em 1em} #status{color:#555}
</style></head><body>
<h1>Cellar demo</h1>
<p id="status">Getting a token…</p>
<section><h2>Chat room <small>(topic <code>chat</code>, over a WebSocket)</small></h2>
<div id="log"></div>
<form id="send"><input id="text" type="text" placeholder="Say something" autocomplete="off" maxlength="500">
<button>Send</button></form></section>
<section><h2>Shared counter <small>(key <code>counter</code>, grpc-web Increment)</small></h2>
<button id="inc">+1</button><span id="count">?</span><button id="refresh">Refresh</button></section>
<p><small>This page got a disposable token from <code>POST /demo/token</code>, which exists only
with <code>--demo</code>: it may use only cache <code>demo</code>'s key <code>counter</code> and its
topic <code>chat</code>, for 10 minutes. A real application mints such tokens in its own backend.</small></p>
<script>
'use strict';
const params = new URLSearchParams(location.search);
const me = params.get('name') || ('guest-' + Math.floor(Math.random() * 1000));
let token = null;
let expiresAt = 0;  // Unix seconds
window.demo = { messages: [], count: null, ready: false, errors: [] };
const $ = (id) => document.getElementById(id);
function line(html, cls) {
  const d = document.createElement('div');
  if (cls) d.className = cls;
  d.innerHTML = html;
  $('log').appendChild(d);
  $('log').scrollTop = $('log').scrollHeight;
}
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
// grpc-web by hand: a 5-byte frame prefix, protobuf varints, base64 text mode.
function varint(n) { const b = []; n = BigInt(n); while (n >= 128n) { b.push(Number(n & 127n) | 128); n >>= 7n; } b.push(Number(n)); return b; }
function frame(bytes) { const n = bytes.length; return new Uint8Array([0, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, ...bytes]); }
function b64(u8) { let s = ''; for (const x of u8) s += String.fromCharCode(x); return btoa(s); }
function unb64(text) {
  const out = [];
  for (const piece of text.match(/[^=]+=*/g) || []) { const s = atob(piece); for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i)); }
  return new Uint8Array(out);
}
async function increment() {
  await ensureToken();
  const key = new TextEncoder().encode('counter');
  const msg = [0x0a, ...varint(key.length), ...key, 0x10, ...varint(1), 0x18, ...varint(86400000)];
  const r = await fetch('/cache_client.Scs/Increment', { method: 'POST', body: b64(frame(msg)),
    headers: { 'content-type': 'application/grpc-web-text', 'x-grpc-web': '1', authorization: token, cache: 'demo' } });
  if (r.headers.get('grpc-status') && r.headers.get('grpc-status') !== '0') throw new Error(decodeURIComponent(r.headers.get('grpc-message') || 'error'));
  const bytes = unb64(await r.text());
  // The first frame's message: field 1 (varint) is the new value.
  let i = 5, v = 0n, shift = 0n;
  if (bytes[0] !== 0 || bytes[i] !== 0x08) return 0;
  i++;
  for (;;) { const b = bytes[i++]; v |= BigInt(b & 127) << shift; shift += 7n; if (b < 128) break; }
  return Number(v);
}
async function readCount() {
  await ensureToken();
  const r = await fetch('/cache/demo?key=counter', { headers: { authorization: token } });
  if (r.status === 404) return 0;
  if (!r.ok) throw new Error(r.status + ' ' + await r.text());
  return Number(await r.text());
}
function show(n) { window.demo.count = n; $('count').textContent = n; }
function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(proto + '//' + location.host + '/topics/demo/chat/ws?token=' + encodeURIComponent(token));
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.heartbeat && !window.demo.ready) { window.demo.ready = true; line('connected as ' + esc(me), 'sys'); $('status').textContent = 'Connected.'; }
    if (m.item) {
      const text = m.item.value.text ?? '(binary)';
      window.demo.messages.push({ from: m.item.publisher_id, text, seq: m.item.topic_sequence_number });
      line('<span class="who">' + esc(m.item.publisher_id || '?') + '</span>' + esc(text) + ' <span class="seq">#' + m.item.topic_sequence_number + '</span>');
    }
    if (m.discontinuity) line('(some messages were missed)', 'sys');
    if (m.error) line('error: ' + esc(m.error.message), 'sys');
  };
  ws.onclose = (e) => {
    window.demo.ready = false;
    line('disconnected (' + e.code + '); reconnecting…', 'sys');
    setTimeout(async () => {
      try { await ensureToken(); } catch (err) { window.demo.errors.push(String(err)); line('error: ' + esc(err.message), 'sys'); }
      connect();
    }, 1000);
  };
  window.demo.ws = ws;
}
// A token, asked for again a minute before it expires. A busy server (429, 503) says when to
// ask again (Retry-After); anything else is an error to show.
async function ensureToken() {
  if (token && Date.now() / 1000 < expiresAt - 60) return;
  for (let attempt = 1; ; attempt++) {
    const r = await fetch('/demo/token?name=' + encodeURIComponent(me), { method: 'POST' });
    if (r.ok) {
      const j = await r.json();
      token = j.token;
      expiresAt = j.expires_at;
      return;
    }
    if ((r.status !== 429 && r.status !== 503) || attempt === 10) {
      throw new Error('token: ' + r.status + ' ' + await r.text());
    }
    const wait = Math.max(1, Number(r.headers.get('retry-after')) || 1);
    $('status').textContent = 'The server is busy; asking for a token again in ' + wait + ' s…';
    await new Promise((done) => setTimeout(done, wait * 1000));
  }
}
async function start() {
  try {
    await ensureToken();
    $('status').textContent = 'Token for ' + me + ' received; connecting…';
    connect();
    show(await readCount());
    setInterval(async () => { try { show(await readCount()); } catch (e) { /* next time */ } }, 2000);
  } catch (e) { window.demo.errors.push(String(e)); $('status').textContent = String(e); }
}
$('send').onsubmit = (e) => {
  e.preventDefault();
  const t = $('text').value.trim();
  if (t && window.demo.ws && window.demo.ws.readyState === 1) { window.demo.ws.send(t); $('text').value = ''; }
};
$('inc').onclick = async () => { try { show(await increment()); } catch (e) { window.demo.errors.push(String(e)); line('error: ' + esc(e.message), 'sys'); } };
$('refresh').onclick = async () => show(await readCount());
start();
</script></body></html>
)HTML";
}

}  // namespace cellar::grpc
