// Recovery (PROTOCOL §4): `sub` with `since {offset, epoch}` returns the missed publications with
// recovered:true, or recovered:false when the epoch differs or history was trimmed; a durable channel keeps
// its offsets and epoch across a restart, a non-durable one gets a new epoch.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, startServer, tmpDir } from './lib/server.mjs';
import { SMALL_NAMESPACE } from './lib/config.mjs';

const CONFIG = `
[namespaces.cursor]
durable = false
history_size = 10

${SMALL_NAMESPACE}`;

after(cleanupAll);

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('recovery within one server run', () => {
  let server;
  let pub;
  before(async () => {
    server = await startServer({ config: CONFIG });
    pub = await Client.connect(server.wsUrl);
  });
  after(() => pub?.close());

  test('50 missed publications come back with recovered:true, then live delivery continues', async () => {
    const a = await Client.connect(server.wsUrl);
    const s = await a.call('sub', { ch: 'rec.50' });
    for (let n = 1; n <= 5; n++) await pub.call('pub', { ch: 'rec.50', data: { n } });
    const seen = await a.messagesUntil('rec.50', 5);
    const last = seen.at(-1).offset;
    assert.equal(last, 5);
    await a.close();

    for (let n = 6; n <= 55; n++) await pub.call('pub', { ch: 'rec.50', data: { n } });

    const b = await Client.connect(server.wsUrl);
    const r = await b.call('sub', { ch: 'rec.50', since: { offset: last, epoch: s.epoch } });
    assert.equal(r.recovered, true);
    assert.equal(r.epoch, s.epoch);
    assert.equal(r.offset, 55);
    assert.equal(r.pubs.length, 50);
    assert.deepEqual(r.pubs.map((p) => p.offset), range(6, 55));
    r.pubs.forEach((p) => {
      assert.deepEqual(p.data, { n: p.offset });
      assert.equal(p.from, pub.hello.user);
      assert.equal(typeof p.ts, 'number');
    });

    await pub.call('pub', { ch: 'rec.50', data: { n: 56 } });
    const live = await b.next('msg');
    assert.equal(live.offset, 56, 'the first live message follows the recovered ones');
    assert.deepEqual(live.data, { n: 56 });
    assert.deepEqual(b.peek((o) => o.op === 'msg'), [], 'no recovered publication is pushed again');
    await b.close();
  });

  test('since at the current offset recovers nothing, successfully', async () => {
    const c = await Client.connect(server.wsUrl);
    for (let n = 1; n <= 3; n++) await pub.call('pub', { ch: 'rec.now', data: n });
    const h = await c.call('history', { ch: 'rec.now' });
    const r = await c.call('sub', { ch: 'rec.now', since: { offset: 3, epoch: h.epoch } });
    assert.equal(r.recovered, true);
    assert.deepEqual(r.pubs, []);
    assert.equal(r.offset, 3);
    await c.close();
  });

  test('since offset 0 with the right epoch recovers the whole history', async () => {
    const c = await Client.connect(server.wsUrl);
    for (let n = 1; n <= 4; n++) await pub.call('pub', { ch: 'rec.zero', data: n });
    const h = await c.call('history', { ch: 'rec.zero' });
    const r = await c.call('sub', { ch: 'rec.zero', since: { offset: 0, epoch: h.epoch } });
    assert.equal(r.recovered, true);
    assert.deepEqual(r.pubs.map((p) => p.data), [1, 2, 3, 4]);
    await c.close();
  });

  test('since beyond the current offset is not recovered', async () => {
    const c = await Client.connect(server.wsUrl);
    for (let n = 1; n <= 3; n++) await pub.call('pub', { ch: 'rec.ahead', data: n });
    const h = await c.call('history', { ch: 'rec.ahead' });
    const r = await c.call('sub', { ch: 'rec.ahead', since: { offset: 10, epoch: h.epoch } });
    assert.equal(r.recovered, false);
    assert.equal(r.offset, 3);
    await c.close();
  });

  test('another epoch is not recovered; the reply carries the real epoch and offset', async () => {
    const c = await Client.connect(server.wsUrl);
    for (let n = 1; n <= 3; n++) await pub.call('pub', { ch: 'rec.epoch', data: n });
    const h = await c.call('history', { ch: 'rec.epoch' });
    const wrong = `${h.epoch}-other`;
    const r = await c.call('sub', { ch: 'rec.epoch', since: { offset: 1, epoch: wrong } });
    assert.equal(r.recovered, false);
    assert.equal(r.epoch, h.epoch);
    assert.equal(r.offset, 3);
    // Still subscribed from the reply's offset on.
    await pub.call('pub', { ch: 'rec.epoch', data: 4 });
    const m = await c.next('msg');
    assert.equal(m.offset, 4);
    await c.close();
  });

  test('history trimmed past since is not recovered; since within the kept window is', async () => {
    const c = await Client.connect(server.wsUrl);
    const s = await c.call('sub', { ch: 'small:trim' });
    for (let n = 1; n <= 25; n++) await pub.call('pub', { ch: 'small:trim', data: n });
    await c.messagesUntil('small:trim', 25);
    await c.call('unsub', { ch: 'small:trim' });

    // Kept: 16..25. Recovering after 15 needs exactly those.
    const ok = await c.call('sub', { ch: 'small:trim', since: { offset: 15, epoch: s.epoch } });
    assert.equal(ok.recovered, true);
    assert.deepEqual(ok.pubs.map((p) => p.offset), range(16, 25));
    assert.deepEqual(ok.pubs.map((p) => p.data), range(16, 25));
    await c.call('unsub', { ch: 'small:trim' });

    // After 14 needs 15, which is gone.
    const gone = await c.call('sub', { ch: 'small:trim', since: { offset: 14, epoch: s.epoch } });
    assert.equal(gone.recovered, false);
    assert.equal(gone.offset, 25);
    await c.call('unsub', { ch: 'small:trim' });

    const old = await c.call('sub', { ch: 'small:trim', since: { offset: 5, epoch: s.epoch } });
    assert.equal(old.recovered, false);
    await c.close();
  });
});

describe('recovery across a restart', () => {
  const dataDir = tmpDir('rtsync-restart-');
  let before1;  // {epoch, offset} of "dur" before the restart
  let cursorEpoch;
  let server2;
  let lastSeen;

  before(async () => {
    const server1 = await startServer({ config: CONFIG, dataDir });
    const p = await Client.connect(server1.wsUrl);
    const watcher = await Client.connect(server1.wsUrl);
    const w = await watcher.call('sub', { ch: 'dur' });
    for (let n = 1; n <= 10; n++) await p.call('pub', { ch: 'dur', data: { n, text: `durable ${n}` } });
    lastSeen = (await watcher.messagesUntil('dur', 10)).at(-1).offset;
    for (let n = 1; n <= 3; n++) await p.call('pub', { ch: 'cursor:a', data: { x: n } });
    const h = await p.call('history', { ch: 'dur' });
    before1 = { epoch: h.epoch, offset: h.offset };
    assert.equal(w.epoch, h.epoch);
    cursorEpoch = (await p.call('history', { ch: 'cursor:a' })).epoch;
    assert.equal(await server1.stop(), 0, 'clean exit on SIGTERM');
    server2 = await startServer({ config: CONFIG, dataDir });
  });

  test('a durable channel keeps its epoch, offset and history', async () => {
    const c = await Client.connect(server2.wsUrl);
    const h = await c.call('history', { ch: 'dur' });
    assert.equal(h.epoch, before1.epoch);
    assert.equal(h.offset, 10);
    assert.deepEqual(h.pubs.map((p) => p.offset), range(1, 10));
    h.pubs.forEach((p) => assert.deepEqual(p.data, { n: p.offset, text: `durable ${p.offset}` }));
    await c.close();
  });

  test('a subscriber of the previous run recovers', async () => {
    const c = await Client.connect(server2.wsUrl);
    const r = await c.call('sub', { ch: 'dur', since: { offset: 5, epoch: before1.epoch } });
    assert.equal(r.recovered, true);
    assert.equal(r.epoch, before1.epoch);
    assert.equal(r.offset, 10);
    assert.deepEqual(r.pubs.map((p) => p.offset), [6, 7, 8, 9, 10]);
    assert.deepEqual(r.pubs.map((p) => p.data.n), [6, 7, 8, 9, 10]);
    await c.close();

    const d = await Client.connect(server2.wsUrl);
    const r2 = await d.call('sub', { ch: 'dur', since: { offset: lastSeen, epoch: before1.epoch } });
    assert.equal(r2.recovered, true);
    assert.deepEqual(r2.pubs, []);
    await d.close();
  });

  test('offsets continue after the restart', async () => {
    const c = await Client.connect(server2.wsUrl);
    const s = await c.call('sub', { ch: 'dur' });
    assert.equal(s.offset, 10);
    const p = await c.call('pub', { ch: 'dur', data: 'after restart' });
    assert.equal(p.offset, 11);
    const m = await c.next('msg');
    assert.equal(m.offset, 11);
    const h = await c.call('history', { ch: 'dur', since: 9 });
    assert.deepEqual(h.pubs.map((x) => x.offset), [10, 11]);
    assert.equal(h.epoch, before1.epoch);
    await c.close();
  });

  test('a non-durable namespace gets a new epoch and cannot recover', async () => {
    const c = await Client.connect(server2.wsUrl);
    const r = await c.call('sub', { ch: 'cursor:a', since: { offset: 3, epoch: cursorEpoch } });
    assert.equal(typeof r.epoch, 'string');
    assert.notEqual(r.epoch, cursorEpoch, 'history was lost, so the epoch changed');
    assert.equal(r.recovered, false);
    const h = await c.call('history', { ch: 'cursor:a' });
    assert.deepEqual(h.pubs, [], 'non-durable history does not survive a restart');
    await c.close();
  });
});
