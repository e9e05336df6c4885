// Proxy hooks (issue 17 item 1, docs/hooks.md) against a real HTTP backend (Node): connect names the
// user from the backend's own cookie (with caps), or refuses with its close code, and what a slow,
// down or garbling backend does under each on_failure policy; subscribe decides per channel once per
// connection (HTTP reads of its channels refused); publish and collection writes refused or replaced on
// every front end, in order on a connection however slow the answers; rpc answered by the backend; a
// slow hook stalls no other connection; the Server API is never asked about.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Client, cleanupAll, httpRequest, sleep, startServer, waitFor } from './lib/server.mjs';
import { collection, config, namespace } from './lib/config.mjs';

// A backend whose answer to each hook is a function of the request: {status, body} (body: an object
// sent as JSON, or a string sent as it is), after `delay` ms. Every request is recorded.
class Backend {
  constructor() {
    this.requests = [];
    this.answer = {};  // hook -> (request) => ({status, body, delay})
    this.server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (c) => { text += c; });
      req.on('end', async () => {
        const body = JSON.parse(text);
        this.requests.push({ path: req.url, headers: req.headers, body });
        const a = (this.answer[body.hook] ?? (() => ({ body: {} })))(body) ?? { body: {} };
        if (a.delay) await sleep(a.delay);
        if (a.hangUp) return req.socket.destroy();
        const out = typeof a.body === 'string' ? a.body : JSON.stringify(a.body ?? {});
        res.writeHead(a.status ?? 200, { 'Content-Type': 'application/json' });
        res.end(out);
      });
    });
  }
  async start() {
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }
  of(hook) { return this.requests.filter((r) => r.body.hook === hook).map((r) => r.body); }
  stop() { this.server.closeAllConnections(); return new Promise((r) => this.server.close(r)); }
}

const hooks = (url, { onFailure = 'refuse', timeout = 2000 } = {}) => `
[hooks.connect]
url = "${url}/connect"
timeout_ms = ${timeout}
on_failure = "${onFailure}"

[hooks.subscribe]
url = "${url}/subscribe"
channels = ["room:*"]
timeout_ms = ${timeout}
on_failure = "${onFailure}"

[hooks.publish]
url = "${url}/publish"
channels = ["room:*", "mod"]
timeout_ms = ${timeout}
on_failure = "${onFailure}"

[hooks.write]
url = "${url}/write"
collections = ["forms"]
timeout_ms = ${timeout}
on_failure = "${onFailure}"

[hooks.rpc]
url = "${url}/rpc"
timeout_ms = ${timeout}
`;
const API_KEY = 'a'.repeat(40);
const CONFIG = (url, options) => config(hooks(url, options), namespace('room'), collection('forms', 'tally = { q1 = [0, 1, 2] }'),
  collection('free'), `[api]\nkeys = ["${API_KEY}"]\n`);

// Opens a WebSocket and resolves with its close {code, reason} or its hello, whichever comes first.
function open(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('message', (d) => {
      const m = JSON.parse(String(d).split('\n')[0]);
      if (m.op === 'hello') { ws.terminate(); resolve({ hello: m }); }
    });
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) }));
    ws.on('error', reject);
  });
}

after(cleanupAll);

describe('proxy hooks', () => {
  let backend;
  let server;
  before(async () => {
    backend = await new Backend().start();
    server = await startServer({ config: CONFIG(backend.url, { timeout: 10000 }) });
  });
  after(() => { if (process.env.HOOKS_DEBUG) console.error(server.stderr()); return backend.stop(); });

  test('connect: the backend names the user from its own session cookie, with caps and info', async () => {
    backend.answer.connect = (r) => (r.cookies.sid === 'alice-session'
      ? { body: { sub: 'alice', info: { name: 'Alice' }, caps: { sub: ['*'], pub: ['room:*'], read: ['*'], write: ['*'] } } }
      : { body: {} });
    const c = await Client.connect(server.wsUrl, { headers: { Cookie: 'theme=dark; sid=alice-session', 'X-App': 'pcm' } });
    assert.equal(c.hello.user, 'alice');
    const req = backend.of('connect').at(-1);
    assert.equal(req.transport, 'websocket');
    assert.equal(req.remote, '127.0.0.1');
    assert.deepEqual(req.cookies, { theme: 'dark', sid: 'alice-session' });
    assert.equal(req.headers['x-app'], 'pcm');
    assert.equal(req.anonymous, true, 'rtsync\'s own identity was the anonymous cookie\'s');
    assert.match(req.user, /^anon-/);
    // The caps hold: publishing outside room:* is refused by rtsync itself.
    backend.answer.publish = () => ({ body: {} });
    const refused = await c.request('pub', { ch: 'news', data: 1 });
    assert.equal(refused.error.code, 'permission_denied');
    // An empty answer keeps rtsync's identity.
    const anon = await Client.connect(server.wsUrl);
    assert.match(anon.hello.user, /^anon-/);
    c.close();
    anon.close();
  });

  test('connect: a refusal closes the socket with the backend\'s code and message, before hello', async () => {
    backend.answer.connect = () => ({ body: { error: { code: 4401, message: 'log in first' } } });
    assert.deepEqual(await open(server.wsUrl), { code: 4401, reason: 'log in first' });
    backend.answer.connect = () => ({ body: { error: { code: 1000, message: 'not an app code' } } });
    assert.deepEqual(await open(server.wsUrl), { code: 4403, reason: 'not an app code' }, 'outside 4100-4499: 4403');
    backend.answer.connect = () => ({ body: {} });
  });

  test('a slow connect hook stalls no other connection', async () => {
    backend.answer.connect = (r) => (r.headers['x-slow'] ? { body: {}, delay: 3000 } : { body: {} });
    let slowDone = false;
    const slow = open(server.wsUrl, { 'X-Slow': '1' }).then((r) => { slowDone = true; return r; });
    await waitFor(() => backend.of('connect').some((r) => r.headers['x-slow']));
    const others = await Promise.all([1, 2, 3].map(() => Client.connect(server.wsUrl)));
    for (const o of others) assert.ok((await o.call('pub', { ch: 'plain', data: 'x' })).offset >= 1);
    assert.equal(slowDone, false, 'the others were served while the slow hook was pending');
    assert.ok((await slow).hello, 'and the slow one connects once answered');
    for (const o of others) o.close();
    backend.answer.connect = () => ({ body: {} });
  });

  test('subscribe: decided per channel, once per connection; HTTP reads of its channels refused', async () => {
    backend.answer.subscribe = (r) => (r.channel === 'room:secret'
      ? { body: { error: { message: 'members only' } } } : { body: {} });
    const c = await Client.connect(server.wsUrl);
    const before = backend.of('subscribe').length;
    await c.call('sub', { ch: 'room:a' });
    await c.call('history', { ch: 'room:a' });
    await c.call('presence', { ch: 'room:a' });
    assert.equal(backend.of('subscribe').length, before + 1, 'asked once for room:a on this connection');
    assert.deepEqual(backend.of('subscribe').at(-1), { hook: 'subscribe', user: c.hello.user, anonymous: true, channel: 'room:a' });
    const refused = await c.request('sub', { ch: 'room:secret' });
    assert.deepEqual(refused.error, { code: 'refused', message: 'members only' });
    const hist = await c.request('history', { ch: 'room:secret' });
    assert.equal(hist.error.code, 'refused');
    await c.call('sub', { ch: 'lobby' });
    assert.equal(backend.of('subscribe').filter((r) => r.channel === 'lobby').length, 0, 'not a channel it decides');
    const rest = await httpRequest(`${server.url}/v1/channels/room:a/history`);
    assert.equal(rest.status, 403);
    assert.match(rest.json().error.message, /subscribe hook/);
    c.close();
  });

  test('publish: refused, or replaced, on the WebSocket and REST; in order however slow the answers', async () => {
    backend.answer.subscribe = () => ({ body: {} });
    backend.answer.publish = (r) => {
      if (r.data?.bad) return { body: { error: { message: 'no swearing' } } };
      if (r.data?.slow) return { body: {}, delay: 400 };
      if (r.data?.censor) return { body: { data: { text: '***' } } };
      return { body: {} };
    };
    const reader = await Client.connect(server.wsUrl);
    await reader.call('sub', { ch: 'room:pub' });
    const writer = await Client.connect(server.wsUrl);
    const bad = await writer.request('pub', { ch: 'room:pub', data: { bad: true } });
    assert.deepEqual(bad.error, { code: 'refused', message: 'no swearing' });
    // Sent back to back: the slow one is answered last by the backend but still comes first.
    const ids = [writer.nextId, writer.nextId + 1];
    writer.nextId += 2;
    writer.sendRaw([JSON.stringify({ id: ids[0], op: 'pub', ch: 'room:pub', data: { slow: 1 } }),
      JSON.stringify({ id: ids[1], op: 'pub', ch: 'room:pub', data: { censor: 1, text: 'darn' } })].join('\n'));
    const [a, b] = await Promise.all(ids.map((id) => writer.reply(id)));
    assert.ok(a.ok.offset < b.ok.offset, 'offsets in the order sent');
    const got = await reader.messagesUntil('room:pub', b.ok.offset);
    assert.deepEqual(got.map((m) => m.data), [{ slow: 1 }, { text: '***' }], 'the refused one never published, the censored one replaced');
    const restBad = await httpRequest(`${server.url}/v1/channels/mod/publish`, { method: 'POST', body: JSON.stringify({ bad: true }), headers: { 'Content-Type': 'application/json' } });
    assert.equal(restBad.status, 403);
    assert.equal(restBad.json().error.code, 'refused');
    const restOk = await httpRequest(`${server.url}/v1/channels/mod/publish`, { method: 'POST', body: JSON.stringify({ censor: 1 }), headers: { 'Content-Type': 'application/json' } });
    assert.equal(restOk.status, 200);
    const pubnub = await httpRequest(`${server.url}/publish/pub/sub/0/mod/0/${encodeURIComponent('{"bad":true}')}?uuid=u1`);
    assert.equal(pubnub.status, 403, 'PubNub publishes are asked too');
    const hist = await httpRequest(`${server.url}/v1/channels/mod/history`);
    assert.deepEqual(hist.json().pubs.map((p) => p.data), [{ text: '***' }]);
    reader.close();
    writer.close();
  });

  test('write: a collection write refused, or its data replaced and checked by the rules again', async () => {
    backend.answer.write = (r) => {
      if (r.data?.q1 === 2) return { body: { error: { message: 'q1 = 2 is closed' } } };
      if (r.data?.q1 === 0) return { body: { data: { q1: 1 } } };
      if (r.data?.q1 === 1 && r.op === 'patch') return { body: { data: { q1: 9 } } };
      return { body: {} };
    };
    const c = await Client.connect(server.wsUrl);
    const refused = await c.request('create', { coll: 'forms', data: { q1: 2 } });
    assert.deepEqual(refused.error, { code: 'refused', message: 'q1 = 2 is closed' });
    const fixed = await c.call('create', { coll: 'forms', doc: 'f1', data: { q1: 0 } });
    assert.equal(fixed.doc.q1, 1, 'the backend\'s data was stored');
    const req = backend.of('write').at(-1);
    assert.equal(req.op, 'create');
    assert.equal(req.collection, 'forms');
    assert.equal(req.doc, 'f1');
    const broken = await c.request('patch', { coll: 'forms', doc: 'f1', data: { q1: 1 } });
    assert.equal(broken.error.code, 'invalid', 'the replacement passes the tally rules too');
    const tally = await c.call('tally', { coll: 'forms' });
    assert.equal(tally.tally.total, 1, 'the refused create is not counted');
    assert.equal(tally.tally.counts.q1['1'], 1, 'the accepted document counts with the backend\'s value');
    const rest = await httpRequest(`${server.url}/v1/collections/forms`, { method: 'POST', body: JSON.stringify({ q1: 2 }), headers: { 'Content-Type': 'application/json' } });
    assert.equal(rest.status, 403);
    const before = backend.of('write').length;
    await c.call('create', { coll: 'free', data: { x: 1 } });
    assert.equal(backend.of('write').length, before, 'not a collection it decides');
    const del = await c.call('delete', { coll: 'forms', doc: 'f1' });
    assert.ok(del.v >= 1);
    assert.equal(backend.of('write').at(-1).op, 'delete');
    c.close();
  });

  test('rpc: the backend answers a call; its refusal is the client\'s error', async () => {
    backend.answer.rpc = (r) => (r.method === 'sum'
      ? { body: { data: { sum: r.data.a + r.data.b } } } : { body: { error: { message: `no method ${r.method}` } } });
    const c = await Client.connect(server.wsUrl);
    assert.deepEqual(await c.call('rpc', { method: 'sum', data: { a: 2, b: 3 } }), { data: { sum: 5 } });
    assert.deepEqual(backend.of('rpc').at(-1), { hook: 'rpc', user: c.hello.user, anonymous: true, method: 'sum', data: { a: 2, b: 3 } });
    assert.deepEqual((await c.request('rpc', { method: 'nope' })).error, { code: 'refused', message: 'no method nope' });
    assert.equal((await c.request('rpc', { method: '' })).error.code, 'bad_request');
    c.close();
  });

  test('the Server API is the backend itself: never asked about', async () => {
    const before = backend.requests.length;
    const res = await httpRequest(`${server.url}/v1/api/publish`, {
      method: 'POST', body: JSON.stringify({ channel: 'room:api', data: { bad: true } }), headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(backend.requests.length, before);
  });
});

describe('a backend that fails', () => {
  // Down (nothing listening), slow (past timeout_ms), answering garbage, or hanging up: the same failure.
  const failures = {
    down: null,
    slow: () => ({ body: {}, delay: 1500 }),
    garbage: () => ({ body: 'this is not JSON' }),
    'HTTP 500': () => ({ status: 500, body: {} }),
    'hang-up': () => ({ hangUp: true }),
    'a bad refusal': () => ({ body: { error: 'no' } }),
  };
  for (const [what, answer] of Object.entries(failures)) {
    test(`${what}: refuse refuses (4503, unavailable); allow lets it through unchanged`, async () => {
      const backend = await new Backend().start();
      const url = answer ? backend.url : 'http://127.0.0.1:1';
      for (const hook of ['connect', 'subscribe', 'publish', 'write', 'rpc']) backend.answer[hook] = answer;
      const refusing = await startServer({ config: CONFIG(url, { timeout: 300 }) });
      const closed = await open(refusing.wsUrl);
      assert.equal(closed.code, 4503);
      assert.match(closed.reason, /^the app's backend is unavailable/);
      const pub = await httpRequest(`${refusing.url}/v1/channels/room:x/publish`, { method: 'POST', body: '1', headers: { 'Content-Type': 'application/json' } });
      assert.equal(pub.status, 503);
      assert.equal(pub.json().error.code, 'unavailable');
      assert.match(pub.json().error.message, /publish hook/);

      const allowing = await startServer({ config: CONFIG(url, { timeout: 300, onFailure: 'allow' }) });
      const c = await Client.connect(allowing.wsUrl);
      assert.match(c.hello.user, /^anon-/);
      await c.call('sub', { ch: 'room:x' });
      const ack = await c.call('pub', { ch: 'room:x', data: { kept: true } });
      const msg = await c.next((m) => m.op === 'msg' && m.offset === ack.offset);
      assert.deepEqual(msg.data, { kept: true });
      assert.ok((await c.call('create', { coll: 'forms', data: { q1: 1 } })).doc.id);
      const rpc = await c.request('rpc', { method: 'm' });
      assert.equal(rpc.error.code, 'unavailable', 'an rpc has nothing to let through');
      c.close();
      await backend.stop();
    });
  }
});
