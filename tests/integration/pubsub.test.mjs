// Pub/sub over WebSocket (PROTOCOL §4): hello, sub/pub/unsub, message shape, batching of several commands
// in one frame, any JSON payload, publisher idempotency keys, ping.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, connectMany, startServer, TIMEOUT, withTimeout } from './lib/server.mjs';

let server;
before(async () => { server = await startServer(); });
after(cleanupAll);

const connect = (opts) => Client.connect(server.wsUrl, opts);

describe('hello', () => {
  test('carries session, user and server "rtsync/<version>"', async () => {
    const c = await connect();
    assert.equal(c.hello.op, 'hello');
    assert.equal(typeof c.hello.session, 'string');
    assert.ok(c.hello.session.length > 0, 'session is not empty');
    assert.equal(typeof c.hello.user, 'string');
    assert.ok(c.hello.user.length > 0, 'user is not empty');
    assert.match(c.hello.server, /^rtsync\/\S+$/);
    await c.close();
  });

  test('every connection gets its own session', async () => {
    const [a, b] = await connectMany(server.wsUrl, 2);
    assert.notEqual(a.hello.session, b.hello.session);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('publish and subscribe', () => {
  test('a subscriber receives {op,ch,offset,data,from,ts} for a publication of another client', async () => {
    const [sub, pub] = await connectMany(server.wsUrl, 2);
    const s = await sub.call('sub', { ch: 'room1' });
    assert.equal(s.offset, 0, 'a new channel starts at offset 0');
    assert.equal(typeof s.epoch, 'string');
    assert.ok(s.epoch.length > 0, 'epoch is not empty');
    assert.equal(s.recovered, false);
    assert.deepEqual(s.pubs, []);

    const before = Date.now();
    const p = await pub.call('pub', { ch: 'room1', data: { text: 'hi', n: 1 } });
    assert.equal(p.offset, 1, 'offsets start at 1');

    const m = await sub.next('msg');
    assert.equal(m.op, 'msg');
    assert.equal(m.ch, 'room1');
    assert.equal(m.offset, 1);
    assert.deepEqual(m.data, { text: 'hi', n: 1 });
    assert.equal(m.from, pub.hello.user);
    assert.equal(typeof m.ts, 'number');
    assert.ok(Number.isInteger(m.ts), 'ts is integer milliseconds');
    assert.ok(Math.abs(m.ts - before) < 10 * 60_000, `ts ${m.ts} is a current Unix time in ms (now ${before})`);
    assert.equal(sub.invalid.length, 0, `server sent non-JSON lines: ${sub.invalid}`);
    await Promise.all([sub.close(), pub.close()]);
  });

  test('offsets grow by one per publication and the publisher, when subscribed, gets its own', async () => {
    const [a, b] = await connectMany(server.wsUrl, 2);
    const sa = await a.call('sub', { ch: 'seq' });
    const sb = await b.call('sub', { ch: 'seq' });
    assert.equal(sa.offset, 0);
    assert.equal(sb.offset, 0);
    const offsets = [];
    for (let i = 0; i < 5; i++) offsets.push((await a.call('pub', { ch: 'seq', data: i })).offset);
    assert.deepEqual(offsets, [1, 2, 3, 4, 5]);
    for (const c of [a, b]) {
      const got = await c.messagesUntil('seq', 5);
      assert.deepEqual(got.map((m) => m.offset), [1, 2, 3, 4, 5]);
      assert.deepEqual(got.map((m) => m.data), [0, 1, 2, 3, 4]);
      assert.ok(got.every((m) => m.from === a.hello.user));
    }
    // A later subscriber's sub reply reports the current offset.
    const c = await connect();
    assert.equal((await c.call('sub', { ch: 'seq' })).offset, 5);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  test('channels are independent: a subscriber gets only its channels', async () => {
    const [a, b] = await connectMany(server.wsUrl, 2);
    await a.call('sub', { ch: 'iso.a' });
    await b.call('sub', { ch: 'iso.b' });
    await a.call('pub', { ch: 'iso.b', data: 'for b' });
    await b.call('pub', { ch: 'iso.a', data: 'for a' });
    const ma = await a.next('msg');
    const mb = await b.next('msg');
    assert.equal(ma.ch, 'iso.a');
    assert.equal(ma.data, 'for a');
    assert.equal(mb.ch, 'iso.b');
    assert.equal(mb.data, 'for b');
    await Promise.all([a.call('ping'), b.call('ping')]);
    assert.deepEqual(a.peek((o) => o.op === 'msg'), []);
    assert.deepEqual(b.peek((o) => o.op === 'msg'), []);
    await Promise.all([a.close(), b.close()]);
  });

  test('unsub stops delivery', async () => {
    const [sub, pub] = await connectMany(server.wsUrl, 2);
    await sub.call('sub', { ch: 'leaving' });
    await sub.call('sub', { ch: 'marker' });
    await pub.call('pub', { ch: 'leaving', data: 'one' });
    assert.equal((await sub.next('msg')).data, 'one');

    const u = await sub.request('unsub', { ch: 'leaving' });
    assert.ok('ok' in u, `unsub ok: ${JSON.stringify(u)}`);
    await pub.call('pub', { ch: 'leaving', data: 'two' });
    await pub.call('pub', { ch: 'marker', data: 'after' });
    // The marker, published after "two", arrives; "two" must not have arrived before or with it.
    const m = await sub.next((o) => o.op === 'msg' && o.ch === 'marker');
    assert.equal(m.data, 'after');
    await sub.call('ping');
    assert.deepEqual(sub.peek((o) => o.op === 'msg' && o.ch === 'leaving'), []);

    // Subscribing again works and resumes delivery from the current offset.
    const again = await sub.call('sub', { ch: 'leaving' });
    assert.equal(again.offset, 2);
    await pub.call('pub', { ch: 'leaving', data: 'three' });
    const m3 = await sub.next((o) => o.op === 'msg' && o.ch === 'leaving');
    assert.equal(m3.offset, 3);
    assert.equal(m3.data, 'three');
    await Promise.all([sub.close(), pub.close()]);
  });

  test('a closed subscriber does not break delivery to the others', async () => {
    const [a, b, p] = await connectMany(server.wsUrl, 3);
    await a.call('sub', { ch: 'closing' });
    await b.call('sub', { ch: 'closing' });
    await a.terminate();
    await p.call('pub', { ch: 'closing', data: 1 });
    await p.call('pub', { ch: 'closing', data: 2 });
    const got = await b.messagesUntil('closing', 2);
    assert.deepEqual(got.map((m) => m.data), [1, 2]);
    await Promise.all([b.close(), p.close()]);
  });
});

describe('framing', () => {
  test('several commands in one frame are all answered, by id', async () => {
    const c = await connect();
    c.sendRaw([
      JSON.stringify({ id: 101, op: 'sub', ch: 'batch' }),
      JSON.stringify({ id: 102, op: 'pub', ch: 'batch', data: { a: 1 } }),
      JSON.stringify({ id: 103, op: 'ping' }),
      JSON.stringify({ id: 104, op: 'pub', ch: 'batch', data: { a: 2 } }),
      JSON.stringify({ id: 105, op: 'history', ch: 'batch' }),
    ].join('\n'));
    const [r1, r2, r3, r4, r5] = await Promise.all([101, 102, 103, 104, 105].map((id) => c.reply(id)));
    assert.equal(r1.id, 101);
    assert.deepEqual(r1.ok.pubs, []);
    assert.equal(r1.ok.offset, 0);
    assert.equal(r2.ok?.offset, 1, JSON.stringify(r2));
    assert.ok('ok' in r3, JSON.stringify(r3));
    assert.equal(r4.ok?.offset, 2, JSON.stringify(r4));
    assert.equal(r5.ok.offset, 2);
    assert.deepEqual(r5.ok.pubs.map((p) => p.data), [{ a: 1 }, { a: 2 }]);
    // Commands of one frame run in order: the sub precedes both pubs, so both are delivered.
    const got = await c.messagesUntil('batch', 2);
    assert.deepEqual(got.map((m) => m.data), [{ a: 1 }, { a: 2 }]);
    await c.close();
  });

  test('a bad line in a batch does not stop the other commands', async () => {
    const c = await connect();
    c.sendRaw(`${JSON.stringify({ id: 1, op: 'ping' })}\nnot json\n${JSON.stringify({ id: 2, op: 'ping' })}`);
    const [r1, r2] = await Promise.all([c.reply(1), c.reply(2)]);
    assert.ok('ok' in r1);
    assert.ok('ok' in r2);
    const err = await c.next((o) => o.error !== undefined);
    assert.equal(err.error.code, 'bad_request');
    await c.close();
  });

  test('the server may batch many pushes per frame, each line being one JSON object', async () => {
    const [sub, pub] = await connectMany(server.wsUrl, 2);
    await sub.call('sub', { ch: 'burst' });
    const replies = [];
    for (let i = 1; i <= 200; i++) replies.push(pub.request('pub', { ch: 'burst', data: { i } }));
    const acks = await Promise.all(replies);
    assert.ok(acks.every((r) => 'ok' in r));
    const got = await sub.messagesUntil('burst', 200);
    assert.deepEqual(got.map((m) => m.offset), Array.from({ length: 200 }, (_, i) => i + 1));
    assert.equal(sub.invalid.length, 0);
    await Promise.all([sub.close(), pub.close()]);
  });
});

describe('payloads', () => {
  const values = [
    null, true, false, 0, -1, 42, 3.5, -0.25, 1e21, 9007199254740991,
    '', 'plain', 'héllo wörld', '日本語テキスト', '🎉 emoji 👩‍👩‍👧', 'quote " backslash \\ slash /',
    'newline\nand\ttab\rcr', 'control \u0000\u0001\u001f', 'separators \u2028\u2029', '\ud83d\ude00',
    [], {}, [1, 'two', null, [3], { four: 4 }],
    { nested: { deep: { deeper: [1, { x: 'y' }] } }, 'key with spaces': 1, 'ключ': 'значение', '': 'empty key' },
    { big: 'x'.repeat(30_000) },
  ];

  test('any JSON value, unicode included, arrives unchanged', async () => {
    const [sub, pub] = await connectMany(server.wsUrl, 2);
    await sub.call('sub', { ch: 'payloads' });
    for (const v of values) await pub.call('pub', { ch: 'payloads', data: v });
    const got = await sub.messagesUntil('payloads', values.length);
    assert.equal(got.length, values.length);
    got.forEach((m, i) => assert.deepEqual(m.data, values[i], `value #${i}`));
    const h = await pub.call('history', { ch: 'payloads' });
    h.pubs.forEach((p, i) => assert.deepEqual(p.data, values[i], `history value #${i}`));
    await Promise.all([sub.close(), pub.close()]);
  });

  test('unicode in a raw frame with escapes and literal characters is equivalent', async () => {
    const c = await connect();
    await c.call('sub', { ch: 'escapes' });
    c.sendRaw('{"id":1,"op":"pub","ch":"escapes","data":"\\u00e9\\ud83d\\ude00 é😀"}');
    assert.ok('ok' in (await c.reply(1)));
    const m = await c.next('msg');
    assert.equal(m.data, 'é😀 é😀');
    await c.close();
  });
});

describe('idempotent publish', () => {
  test('a retry with the same key returns the first offset and publishes once', async () => {
    const c = await connect();
    await c.call('sub', { ch: 'idem' });
    const first = await c.call('pub', { ch: 'idem', data: 'once', key: 'k-1' });
    const retry = await c.call('pub', { ch: 'idem', data: 'once', key: 'k-1' });
    assert.equal(retry.offset, first.offset);
    const other = await c.call('pub', { ch: 'idem', data: 'twice', key: 'k-2' });
    assert.equal(other.offset, first.offset + 1);
    const h = await c.call('history', { ch: 'idem' });
    assert.deepEqual(h.pubs.map((p) => p.data), ['once', 'twice']);
    await c.close();
  });
});

describe('ping', () => {
  test('the ping op answers ok', async () => {
    const c = await connect();
    const r = await c.request('ping');
    assert.equal(r.id, 1);
    assert.ok('ok' in r, JSON.stringify(r));
    await c.close();
  });

  test('a WebSocket ping gets a pong with the same payload', async () => {
    const c = await connect();
    const pong = new Promise((resolve) => c.ws.once('pong', (data) => resolve(data.toString())));
    c.ws.ping('are you there');
    assert.equal(await withTimeout(pong, TIMEOUT, 'no pong'), 'are you there');
    await c.close();
  });
});
