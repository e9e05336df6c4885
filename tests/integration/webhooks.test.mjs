// Durable webhooks (issue 17 item 2, docs/hooks.md "Webhooks") with a real HTTP receiver (Node): every
// committed publication and document change arrives, in order per channel, signed (checked by the
// example backend's verifyWebhook); a receiver that fails is retried with backoff; kill -9 of rtsync
// and a receiver that dies in the middle of a stream lose nothing, and repeats come only with an offset
// already seen; entries past max_age become dead letters (metrics, Server API) and are replayed; in a
// two-node cluster exactly one node delivers, and the other takes over when it is killed.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, test } from 'node:test';
import { Client, cleanupAll, httpRequest, sleep, startServer, tmpDir, waitFor } from './lib/server.mjs';
import { cleanupCluster, startNode, startPostgres, startRedis } from './lib/cluster.mjs';
import { collection, config, namespace } from './lib/config.mjs';
import { verifyWebhook } from '../../examples/pcm-backend/verify.mjs';

const SECRET = 'w'.repeat(24) + '-0123456789abcdef';
const API_KEY = 'k'.repeat(40);

after(async () => {
  try { await cleanupAll(); } finally { await cleanupCluster(); }
});

// A receiver that records every delivery; `status(body, headers)` decides its answer (200 by default).
class Receiver {
  constructor() {
    this.got = [];
    this.status = () => 200;
    this.server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => { raw += c; });
      req.on('end', () => {
        const code = this.status(raw, req.headers);
        if (code === 200) this.got.push({ raw, headers: req.headers, body: JSON.parse(raw) });
        res.writeHead(code);
        res.end();
      });
    });
  }
  async listen(port = 0) {
    await new Promise((r) => this.server.listen(port, '127.0.0.1', r));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}/hook`;
    return this;
  }
  // Dies: every connection cut, nothing listening.
  async die() {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
  offsets(ch) { return this.got.filter((g) => g.body.channel === ch).map((g) => g.body.offset); }
}

const webhook = (url, { channels = '["news", "room:*"]', extra = '' } = {}) => `
[webhooks.feed]
url = "${url}"
channels = ${channels}
collections = ["forms"]
secret = "${SECRET}"
timeout_ms = 1000
${extra}
`;
const CONFIG = (url, opts) => config(webhook(url, opts), namespace('room'), collection('forms'), `[api]\nkeys = ["${API_KEY}"]\n`);

const api = (srv, method, path) =>
  httpRequest(`${srv.url}/v1/api${path}`, { method, headers: { Authorization: `Bearer ${API_KEY}` } });
const metric = async (srv, name) => {
  const text = (await httpRequest(`${srv.url}/metrics`)).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{webhook="feed"}`));
  return line ? Number(line.split(' ').at(-1)) : undefined;
};

// The first time each offset arrived, in arrival order; every later arrival must repeat one of them.
function firsts(offsets) {
  const seen = new Set();
  const out = [];
  for (const o of offsets) if (!seen.has(o)) { seen.add(o); out.push(o); }
  return out;
}
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('every publication and document change arrives in order per channel, signed, with its offset', async () => {
  const rx = await new Receiver().listen();
  const server = await startServer({ config: CONFIG(rx.url) });
  const c = await Client.connect(server.wsUrl);
  for (let i = 1; i <= 15; i++) {
    c.sendRaw(JSON.stringify({ id: `n${i}`, op: 'pub', ch: 'news', data: { i } }));
    c.sendRaw(JSON.stringify({ id: `r${i}`, op: 'pub', ch: 'room:1', data: { i } }));
  }
  await c.reply('n15');
  await c.reply('r15');
  await c.call('pub', { ch: 'other', data: 'not followed' });
  const doc = await c.call('create', { coll: 'forms', data: { answer: 42 } });
  await waitFor(() => rx.offsets('news').length >= 15 && rx.offsets('room:1').length >= 15 && rx.offsets('coll:forms').length >= 1);
  assert.deepEqual(firsts(rx.offsets('news')), range(1, 15));
  assert.deepEqual(firsts(rx.offsets('room:1')), range(1, 15));
  assert.equal(rx.offsets('other').length, 0, 'a channel it does not follow');
  for (const g of rx.got) {
    assert.ok(verifyWebhook(g.raw, g.headers, SECRET), 'signed as the example backend checks');
    assert.equal(g.headers['x-rtsync-webhook'], 'feed');
  }
  assert.equal(verifyWebhook(rx.got[0].raw, rx.got[0].headers, 'x'.repeat(40)), false, 'another secret does not verify');
  assert.equal(verifyWebhook(rx.got[0].raw.replace('1', '2'), rx.got[0].headers, SECRET), false, 'nor another body');
  const n = rx.got.find((g) => g.body.channel === 'news' && g.body.offset === 3).body;
  assert.deepEqual(Object.keys(n).sort(), ['channel', 'data', 'epoch', 'from', 'offset', 'ts', 'webhook']);
  assert.deepEqual(n.data, { i: 3 });
  assert.equal(n.from, c.hello.user);
  const change = rx.got.find((g) => g.body.channel === 'coll:forms').body;
  assert.equal(change.data.doc.id, doc.doc.id);
  await waitFor(async () => (await metric(server, 'rtsync_webhook_pending')) === 0);
  assert.ok((await metric(server, 'rtsync_webhook_delivered_total')) >= 31);
  assert.equal(await metric(server, 'rtsync_webhook_delivering'), 1);
  c.close();
  await rx.die();
});

test('a failing receiver is retried with backoff, and the channel waits for it', async () => {
  const rx = await new Receiver().listen();
  let refusals = 2;
  rx.status = (raw) => (JSON.parse(raw).offset === 1 && refusals-- > 0 ? 500 : 200);
  const server = await startServer({ config: CONFIG(rx.url) });
  const c = await Client.connect(server.wsUrl);
  for (let i = 1; i <= 3; i++) await c.call('pub', { ch: 'news', data: { i } });
  await waitFor(() => rx.offsets('news').length >= 3, { timeout: 15_000 });
  assert.deepEqual(rx.offsets('news'), [1, 2, 3], 'offset 1 first, after its two failures; 2 and 3 waited');
  assert.equal(rx.got[0].headers['x-rtsync-attempt'], '3');
  assert.ok((await metric(server, 'rtsync_webhook_failures_total')) >= 2);
  c.close();
  await rx.die();
});

test('kill -9 of rtsync and of the receiver mid-stream: every acked publication arrives, repeats only by offset', async () => {
  const rx = await new Receiver().listen();
  const dataDir = tmpDir('rtsync-webhooks-');
  let server = await startServer({ config: CONFIG(rx.url), dataDir });
  let c = await Client.connect(server.wsUrl);
  const acked = [];
  let stop = false;
  const publishing = (async () => {
    for (let i = 1; !stop; i++) {
      const r = await c.request('pub', { ch: 'room:crash', data: { i } }).catch(() => null);
      if (!r?.ok) return;
      acked.push(r.ok.offset);
    }
  })();
  await waitFor(() => rx.offsets('room:crash').length >= 20);
  await server.kill();
  await publishing;
  assert.ok(acked.length >= 20);
  server = await startServer({ config: CONFIG(rx.url), dataDir });
  await waitFor(() => new Set(rx.offsets('room:crash')).size >= acked.length, { timeout: 20_000 });
  // The receiver dies in the middle of the next stream and comes back on its port.
  c = await Client.connect(server.wsUrl);
  const more = [];
  for (let i = 0; i < 40; i++) {
    more.push((await c.call('pub', { ch: 'room:crash', data: { again: i } })).offset);
    if (i === 10) await rx.die();
  }
  await sleep(500);
  const back = await new Receiver().listen(rx.port);
  back.got = rx.got;  // one record of everything the receiver got
  await waitFor(() => new Set(back.offsets('room:crash')).size >= acked.length + more.length, { timeout: 30_000 });
  const got = back.offsets('room:crash');
  const all = [...acked, ...more];
  for (const o of all) assert.ok(got.includes(o), `acked offset ${o} arrived`);
  assert.deepEqual(firsts(got), range(1, Math.max(...got)), 'nothing skipped');
  c.close();
  await back.die();
});

test('past max_age an entry is a dead letter (metrics, Server API), replayed in order', async () => {
  const rx = await new Receiver().listen();
  rx.status = () => 503;
  const server = await startServer({ config: CONFIG(rx.url, { extra: 'max_age = 1' }) });
  const c = await Client.connect(server.wsUrl);
  for (let i = 1; i <= 3; i++) await c.call('pub', { ch: 'news', data: { i } });
  await waitFor(async () => (await metric(server, 'rtsync_webhook_dead_letters')) === 3, { timeout: 20_000 });
  const listed = await api(server, 'GET', '/webhooks');
  assert.equal(listed.status, 200);
  assert.equal(listed.json().webhooks[0].name, 'feed');
  assert.equal(listed.json().webhooks[0].dead, 3);
  const dead = (await api(server, 'GET', '/webhooks/feed/dead?limit=2')).json();
  assert.deepEqual(dead.dead.map((d) => d.offset), [1, 2]);
  assert.deepEqual(dead.dead[0].body.data, { i: 1 });
  const rest = (await api(server, 'GET', `/webhooks/feed/dead?after=${dead.next}`)).json();
  assert.deepEqual(rest.dead.map((d) => d.offset), [3]);
  assert.equal((await api(server, 'GET', '/webhooks/nope/dead')).status, 404);
  assert.equal((await httpRequest(`${server.url}/v1/api/webhooks`)).status, 401, 'the API key is required');

  rx.status = () => 200;
  const replayed = await api(server, 'POST', '/webhooks/feed/replay');
  assert.deepEqual(replayed.json(), { replayed: 3 });
  await waitFor(() => rx.offsets('news').length >= 3);
  assert.deepEqual(rx.offsets('news'), [1, 2, 3]);
  await waitFor(async () => (await metric(server, 'rtsync_webhook_dead_letters')) === 0);

  rx.status = () => 503;
  await c.call('pub', { ch: 'news', data: { i: 4 } });
  await waitFor(async () => (await api(server, 'GET', '/webhooks')).json().webhooks[0].dead === 1, { timeout: 20_000 });
  assert.deepEqual((await api(server, 'DELETE', '/webhooks/feed/dead')).json(), { discarded: 1 });
  c.close();
  await rx.die();
});

test('in a two-node cluster exactly one node delivers; the other takes over when it is killed', async () => {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  const rx = await new Receiver().listen();
  const cfg = CONFIG(rx.url);
  const a = await startNode({ redis, pg, node: 'a', config: cfg });
  const b = await startNode({ redis, pg, node: 'b', config: cfg });
  const ca = await Client.connect(a.wsUrl);
  const cb = await Client.connect(b.wsUrl);
  for (let i = 1; i <= 10; i++) {
    await ca.call('pub', { ch: 'news', data: { i, via: 'a' } });
    await cb.call('pub', { ch: 'news', data: { i, via: 'b' } });
  }
  await waitFor(() => new Set(rx.offsets('news')).size >= 20);
  assert.deepEqual(firsts(rx.offsets('news')), range(1, 20));
  const delivering = [await metric(a, 'rtsync_webhook_delivering'), await metric(b, 'rtsync_webhook_delivering')];
  assert.deepEqual(delivering.sort(), [0, 1], 'one node holds the lease');
  const holder = (await metric(a, 'rtsync_webhook_delivering')) === 1 ? a : b;
  const other = holder === a ? b : a;
  assert.equal(await metric(other, 'rtsync_webhook_delivered_total'), 0, 'the other delivered nothing');
  assert.equal((await api(other, 'GET', '/webhooks')).json().webhooks[0].delivering, holder.node);

  await holder.kill();
  const c = holder === a ? cb : ca;
  for (let i = 1; i <= 5; i++) await c.call('pub', { ch: 'news', data: { after: i } });
  await waitFor(() => new Set(rx.offsets('news')).size >= 25, { timeout: 30_000 });
  assert.deepEqual(firsts(rx.offsets('news')), range(1, 25));
  assert.equal(await metric(other, 'rtsync_webhook_delivering'), 1);
  ca.terminate();
  cb.terminate();
  await rx.die();
});
