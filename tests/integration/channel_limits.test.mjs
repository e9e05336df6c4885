// Channel memory and size limits (docs/security.md, docs/protocol.md): one payload limit for every front
// end (limits.max_publication), so that no publication is larger than what a subscriber may queue; history
// and recovery answers bounded by what the connection can still queue (truncated, paged with `since`);
// history bounded in bytes per channel (history_bytes); idle channels unloaded (limits.channel_idle) and
// loaded again with their epoch and offsets.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, httpRequest, startServer, waitFor } from './lib/server.mjs';

after(cleanupAll);

const post = (server, ch, body) => httpRequest(`${server.url}/v1/channels/${ch}/publish`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body,
});

// A JSON string whose compact text is exactly `bytes` long.
const jsonOf = (bytes, fill = 'x') => JSON.stringify(fill.repeat(bytes - 2));

async function metric(server, name) {
  const res = await httpRequest(`${server.url}/metrics`);
  const line = res.body.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line.split(' ')[1]);
}

// Reads a channel's publications after `since` with `history`, page by page while answers are truncated.
async function pageAll(c, ch, since) {
  const pubs = [];
  let pages = 0;
  for (;;) {
    const h = await c.call('history', { ch, since, limit: 1000 });
    pages++;
    pubs.push(...h.pubs);
    if (!h.truncated) return { pubs, pages, offset: h.offset };
    assert.ok(h.pubs.length > 0, 'a truncated page on an idle connection still makes progress');
    since = h.pubs.at(-1).offset;
  }
}

describe('one payload limit for every front end (defaults: max_publication 64 KiB)', () => {
  let server;
  before(async () => {
    server = await startServer({ config: '[limits]\nmax_frame = 1048576\n' });
  });

  test('a REST publication of max_http_body (1 MiB) is too_large and cuts nobody off', async () => {
    const sub = await Client.connect(server.wsUrl);
    await sub.call('sub', { ch: 'poison' });
    const res = await post(server, 'poison', jsonOf(1024 * 1024 - 16));
    assert.equal(res.status, 413);
    assert.equal(res.json().error.code, 'too_large');
    assert.match(res.json().error.message, /limits\.max_publication is 65536/);
    // Exactly at the limit is accepted, delivered, and kept: the subscriber keeps up.
    const fine = await post(server, 'poison', jsonOf(64 * 1024));
    assert.equal(fine.status, 200, fine.body);
    const m = await sub.next('msg');
    assert.equal(JSON.stringify(m.data).length, 64 * 1024);
    assert.equal((await post(server, 'poison', jsonOf(64 * 1024 + 1))).status, 413);
    assert.equal(sub.closeInfo, null);
    const again = await Client.connect(server.wsUrl);
    const r = await again.call('sub', { ch: 'poison', since: { offset: 0, epoch: (await sub.call('history', { ch: 'poison' })).epoch } });
    assert.equal(r.recovered, true);
    assert.deepEqual(r.pubs.map((p) => p.offset), [1]);
    await Promise.all([sub.close(), again.close()]);
  });

  test('a WebSocket pub over the limit is too_large; the connection goes on', async () => {
    const c = await Client.connect(server.wsUrl);
    const r = await c.request('pub', { ch: 'ws-big', data: 'y'.repeat(70_000) });
    assert.equal(r.error?.code, 'too_large');
    assert.equal((await c.call('pub', { ch: 'ws-big', data: 1 })).offset, 1);
    await c.close();
  });

});

describe('PubNub publish and signal (max_publication = 20000)', () => {
  let server;
  before(async () => {
    server = await startServer({ config: '[limits]\nmax_publication = 20000\n' });
  });

  test('the limit counts meta too, and answers in PubNub\'s error shape', async () => {
    const at = (path) => httpRequest(`${server.url}${path}`);
    const meta = encodeURIComponent(JSON.stringify({ m: 'm'.repeat(12_000) }));
    const message = encodeURIComponent(JSON.stringify('d'.repeat(12_000)));
    for (const kind of ['publish', 'signal']) {
      const small = await at(`/${kind}/demo/demo/0/pn-big/0/${message}`);
      assert.equal(small.status, 200, `${kind} of 12 KB`);
      const big = await at(`/${kind}/demo/demo/0/pn-big/0/${message}?meta=${meta}`);
      assert.equal(big.status, 413, `${kind} with meta, over 20000 bytes together`);
      assert.deepEqual(big.json(), [0, 'Request Entity Too Large']);
    }
  });
});

describe('history and recovery answers fit the connection (max_outbound 128 KiB)', () => {
  let server;
  const N = 20;
  const SIZE = 60 * 1024;
  before(async () => {
    server = await startServer({ config: '[limits]\nmax_outbound = 131072\n' });
    for (let i = 1; i <= N; i++) assert.equal((await post(server, 'big', jsonOf(SIZE, String(i % 10)))).status, 200);
  });

  test('history is truncated instead of cutting its connection off, and pages to the end', async () => {
    const c = await Client.connect(server.wsUrl);
    const first = await c.call('history', { ch: 'big', limit: 1000 });
    assert.equal(first.truncated, true);
    assert.ok(first.pubs.length >= 1 && first.pubs.length < N, `${first.pubs.length} publications in the first page`);
    const { pubs, pages } = await pageAll(c, 'big', 0);
    assert.deepEqual(pubs.map((p) => p.offset), Array.from({ length: N }, (_, i) => i + 1), 'every one, once, in order');
    assert.ok(pages > 1);
    assert.equal(c.closeInfo, null);
    // The last page is complete.
    const last = await c.call('history', { ch: 'big', since: N - 1 });
    assert.equal(last.truncated, undefined);
    await c.close();
  });

  test('REST history is bounded the same way', async () => {
    const res = await httpRequest(`${server.url}/v1/channels/big/history?limit=1000`);
    assert.equal(res.status, 200);
    assert.ok(res.body.length <= 131072, `${res.body.length} bytes`);
    assert.equal(res.json().truncated, true);
  });

  test('a recovery too large to send says so; history then gets every publication', async () => {
    const c = await Client.connect(server.wsUrl);
    const { epoch } = await c.call('history', { ch: 'big', limit: 0 });
    const r = await c.call('sub', { ch: 'big', since: { offset: 0, epoch } });
    assert.equal(r.recovered, false);
    assert.equal(r.truncated, true);
    assert.deepEqual(r.pubs, []);
    assert.equal(r.offset, N);
    assert.equal(c.closeInfo, null, 'not cut off by its own recovery');
    const { pubs } = await pageAll(c, 'big', 0);
    assert.equal(pubs.length, N);
    // Live publications follow on from the sub's offset.
    await post(server, 'big', '"live"');
    const m = await c.next('msg');
    assert.equal(m.offset, N + 1);
    // A recovery that fits is inline, as always.
    const d = await Client.connect(server.wsUrl);
    const small = await d.call('sub', { ch: 'big', since: { offset: N - 1, epoch } });
    assert.equal(small.recovered, true);
    assert.deepEqual(small.pubs.map((p) => p.offset), [N, N + 1]);
    await Promise.all([c.close(), d.close()]);
  });
});

describe('history is bounded in bytes per channel (history_bytes)', () => {
  let server;
  before(async () => {
    server = await startServer({ config: '[namespaces.b]\nhistory_bytes = 100000\n' });
  });

  test('the newest publications within the byte limit are kept; older offsets are not recoverable', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await post(server, 'b:ch', jsonOf(30_000))).status, 200);
    const c = await Client.connect(server.wsUrl);
    const h = await c.call('history', { ch: 'b:ch', limit: 1000 });
    assert.deepEqual(h.pubs.map((p) => p.offset), [8, 9, 10]);
    assert.equal((await c.call('sub', { ch: 'b:ch', since: { offset: 5, epoch: h.epoch } })).recovered, false);
    await c.call('unsub', { ch: 'b:ch' });
    assert.equal((await c.call('sub', { ch: 'b:ch', since: { offset: 7, epoch: h.epoch } })).recovered, true);
    await c.close();
  });
});

describe('idle channels are unloaded (channel_idle = 1 s)', () => {
  let server;
  before(async () => {
    server = await startServer({ config: '[limits]\nchannel_idle = 1\n[namespaces.mem]\ndurable = false\n' });
  });

  test('history reads of many new names: the channel count goes up, then back down', async () => {
    const baseline = await metric(server, 'rtsync_channels');
    const names = Array.from({ length: 300 }, (_, i) => `fresh-${i}`);
    for (let i = 0; i < names.length; i += 30) {
      const batch = await Promise.all(names.slice(i, i + 30).map((n) => httpRequest(`${server.url}/v1/channels/${n}/history`)));
      for (const res of batch) assert.deepEqual(res.json().pubs, []);
    }
    // The last batch was read within the idle time: it is still loaded.
    assert.ok(await metric(server, 'rtsync_channels') >= baseline + 30, 'loaded while read');
    await waitFor(async () => (await metric(server, 'rtsync_channels')) <= baseline, { message: 'channels unloaded' });
  });

  test('a subscribed channel stays; an unloaded durable one comes back with its epoch and offsets', async () => {
    const kept = await Client.connect(server.wsUrl);
    await kept.call('sub', { ch: 'kept' });
    const c = await Client.connect(server.wsUrl);
    for (let i = 1; i <= 3; i++) await c.call('pub', { ch: 'durable', data: i });
    const { epoch } = await c.call('history', { ch: 'durable', limit: 0 });
    await c.close();
    await waitFor(async () => (await metric(server, 'rtsync_channels')) === 1, { message: 'only "kept" left' });
    const d = await Client.connect(server.wsUrl);
    const r = await d.call('sub', { ch: 'durable', since: { offset: 1, epoch } });
    assert.equal(r.recovered, true);
    assert.equal(r.epoch, epoch);
    assert.deepEqual(r.pubs.map((p) => p.data), [2, 3]);
    assert.equal((await d.call('pub', { ch: 'durable', data: 4 })).offset, 4);
    await post(server, 'kept', '"still here"');
    assert.equal((await kept.next('msg')).data, 'still here');
    await Promise.all([kept.close(), d.close()]);
  });

  test('an unloaded in-memory channel starts over with a new epoch, which tells clients to reload', async () => {
    const c = await Client.connect(server.wsUrl);
    await c.call('pub', { ch: 'mem:x', data: 1 });
    const { epoch } = await c.call('history', { ch: 'mem:x', limit: 0 });
    await c.close();
    await waitFor(async () => (await metric(server, 'rtsync_channels')) === 0, { message: 'unloaded' });
    const d = await Client.connect(server.wsUrl);
    const r = await d.call('sub', { ch: 'mem:x', since: { offset: 1, epoch } });
    assert.notEqual(r.epoch, epoch);
    assert.equal(r.recovered, false);
    assert.equal(r.offset, 0);
    await d.close();
  });
});
