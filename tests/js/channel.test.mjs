// RTSync.Connection and RTSync.Channel against the real server: publish and subscribe, history,
// presence, request timeouts, a `sub` answered after its timeout (the channel and the server still
// agree), and a stream of publications that survives the server being killed and restarted in the
// middle: every publication arrives once, in order, none lost, none duplicated.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { Client, cleanupAll, sleep, startServer, waitFor } from '../integration/lib/server.mjs';
import { RTSync, connect, killFixedServers, newIdentity, once, slowLink, startServerAt } from './lib/harness.mjs';

// Resolves once every thread of process `pid` is stopped (state T in /proc), as after SIGSTOP.
async function stopped(pid) {
  for (;;) {
    const tasks = fs.readdirSync(`/proc/${pid}/task`);
    const states = tasks.map((t) => {
      const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    });
    if (states.every((st) => st === 'T' || st === 't')) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

after(async () => { await killFixedServers(); await cleanupAll(); });

describe('Channel', () => {
  test('publish and subscribe, in order, exactly once', async () => {
    const server = await startServer();
    const a = await connect(server);
    const b = await connect(server);
    const chA = a.channel('room');
    const got = [];
    chA.on('message', (data, pub) => got.push([pub.offset, data]));
    const reply = await chA.subscribe();
    assert.equal(reply.offset, 0);
    assert.equal(chA.state, 'subscribed');

    const chB = b.channel('room');
    const acks = await Promise.all([1, 2, 3, 4, 5].map((n) => chB.publish({ n })));
    assert.deepEqual(acks.map((x) => x.offset).sort(), [1, 2, 3, 4, 5]);
    await waitFor(() => got.length === 5, { message: '5 messages' });
    assert.deepEqual(got.map(([o]) => o), [1, 2, 3, 4, 5]);
    assert.deepEqual(got.map(([, d]) => d.n), acks.map((_, i) => i + 1).sort());

    const history = await chB.history({ limit: 2, reverse: true });
    assert.deepEqual(history.pubs.map((p) => p.offset), [5, 4]);
    a.close();
    b.close();
  });

  test('the same channel object per name; subscribe twice is one subscription', async () => {
    const server = await startServer();
    const a = await connect(server);
    assert.equal(a.channel('x'), a.channel('x'));
    const [r1, r2] = await Promise.all([a.channel('x').subscribe(), a.channel('x').subscribe()]);
    assert.equal(r1, r2);
    await a.channel('x').unsubscribe();
    assert.equal(a.channel('x').state, 'idle');
    await a.channel('x').subscribe();
    a.close();
  });

  test('subscribe errors end the subscription and fire `error`', async () => {
    const server = await startServer();
    const a = await connect(server);
    const ch = a.channel('coll:nosuchcollection');
    const errored = once(ch, 'error');
    await assert.rejects(ch.subscribe(), (e) => e instanceof RTSync.Error && e.code === 'not_found');
    await errored;
    assert.equal(ch.state, 'idle');
    await assert.rejects(a.channel('coll:pcm').publish({}), (e) => e.code === 'permission_denied' || e.code === 'not_found');
    a.close();
  });

  test('presence: members, join and leave', async () => {
    const server = await startServer();
    const a = await connect(server);
    const chA = a.channel('lobby', { presence: true });
    await chA.subscribe();
    await waitFor(() => chA.members.length === 1, { message: 'own membership' });
    assert.equal(chA.members.first().get('session'), a.session);

    const b = await connect(server);
    const joined = once(chA, 'join');
    await b.channel('lobby').subscribe();
    const [member] = await joined;
    assert.equal(member.get('user'), b.user);
    assert.equal(chA.members.length, 2);

    const p = await chA.presence();
    assert.equal(p.sessions, 2);

    const left = once(chA, 'leave');
    b.close();
    const [gone] = await left;
    assert.equal(gone.get('session'), b.session);
    assert.equal(chA.members.length, 1);
    a.close();
  });

  test('a request without a reply times out; the connection notices a dead server', async () => {
    const server = await startServer();
    const a = await connect(server, { timeout: 400 });
    const offline = once(a, 'offline');
    server.proc.kill('SIGSTOP');
    // kill() only queues the stop: a server thread already running could still answer a request sent now.
    await stopped(server.proc.pid);
    try {
      await assert.rejects(a.channel('t').history(), (e) => e.code === 'timeout');
      await offline; // the ping that followed the timeout went unanswered too
    } finally {
      server.proc.kill('SIGCONT');
    }
    await once(a, 'online');
    assert.ok((await a.channel('t').history()).pubs);
    a.close();
  });

  test('events connecting, online, offline; a closed connection refuses requests', async () => {
    const server = await startServer();
    const conn = new RTSync.Connection({ url: server.wsUrl, WebSocket: (await import('ws')).default });
    const seen = [];
    conn.on('connecting online offline', function () { seen.push(arguments[0] === conn); });
    conn.on('all', (name) => seen.push(name));
    const online = once(conn, 'online');
    conn.open();
    const [, info] = await online;
    assert.match(info.user, /^anon-/);
    assert.equal(info.resumed, false);
    assert.ok(seen.includes('connecting') && seen.includes('online'));
    conn.close();
    assert.equal(conn.state, 'closed');
    await assert.rejects(conn.request('ping', {}), (e) => e.code === 'closed');
  });
});

// The library's timeout is short and the link holds the `sub` reply back until the library, past that
// timeout, pings the server. The ping is answered at once after the release, so normally the socket
// stays up and the late reply itself must do the work. On a machine so loaded that even the ping misses
// its timeout, the socket is dropped and the channel subscribes again: the end state is the same.
describe('a `sub` answered after the timeout', () => {
  const TIMEOUT_MS = 500;

  // The library's own presence, as the server sees it.
  async function sessionsOn(server, ch) {
    const probe = await Client.connect(server.wsUrl);
    try {
      return (await probe.call('presence', { ch })).sessions;
    } finally {
      probe.close();
    }
  }

  // A server; `a`, the library over a slow link, with the channel `name` and the offsets it delivers;
  // `b`, a plain connection to publish with. `offline()` counts a's socket closes.
  async function setup(name) {
    const server = await startServer();
    const link = slowLink();
    const a = await connect(server, { hooks: link.hooks, timeout: TIMEOUT_MS });
    const b = await connect(server);
    let closes = 0;
    a.on('offline', () => closes++);
    const ch = a.channel(name);
    const got = [];
    ch.on('message', (data, pub) => got.push(pub.offset));
    return { server, link, a, b, ch, got, offline: () => closes };
  }

  test('still subscribes the channel: it was `subscribing` all along, and delivers what follows', async () => {
    const { server, link, a, b, ch, got, offline } = await setup('late');
    const slow = [];
    a.on('slow', (conn, info) => slow.push(info.op));

    link.holdReplies('sub');
    const subscribed = ch.subscribe().then(() => 'ok', (e) => e.code);
    const sub = await link.whenSent((o) => o.op === 'sub');
    await link.whenSent((o) => o.op === 'ping' && o.id > sub.id); // the timeout passed
    assert.equal(ch.state, 'subscribing', 'not given up while the socket is alive');
    assert.deepEqual(slow, ['sub']);
    link.release();

    const outcome = await subscribed;
    if (offline() === 0) {
      assert.equal(outcome, 'ok', 'the late reply completed the subscription');
      assert.equal(link.sentOps('sub').length, 1, 'one `sub`: the server was not asked twice');
    } else {
      assert.ok(outcome === 'ok' || outcome === 'disconnected', outcome); // the ping missed too: resubscribed
    }
    await waitFor(() => ch.state === 'subscribed', { message: 'subscribed' });
    await b.channel('late').publish({ n: 1 });
    await b.channel('late').publish({ n: 2 });
    await waitFor(() => got.length >= 2, { message: 'the publications after the late reply' });
    await sleep(100);
    assert.deepEqual(got, [1, 2]);
    assert.equal(await sessionsOn(server, 'late'), 1);
    a.close();
    b.close();
  });

  test('unsubscribe and subscribe again meanwhile: one subscription, the late reply changes nothing', async () => {
    const { server, link, a, b, ch, got, offline } = await setup('again');
    let subscribeEvents = 0;
    ch.on('subscribe', () => subscribeEvents++);
    const errors = [];
    ch.on('error', (c, e) => errors.push(e.code));

    link.holdReplies('sub');
    const first = ch.subscribe().then(() => 'ok', (e) => e.code);
    const sub = await link.whenSent((o) => o.op === 'sub');
    await link.whenSent((o) => o.op === 'ping' && o.id > sub.id);
    ch.unsubscribe().catch(() => {}); // its reply waits behind the held `sub` reply
    const second = ch.subscribe().then(() => 'ok', (e) => e.code);
    await link.whenSent((o) => o.op === 'sub' && o.id > sub.id);
    link.release();

    const outcomes = [await first, await second];
    assert.deepEqual(errors, [], 'no `sub` was refused (the server never saw a second one for the channel)');
    await waitFor(() => ch.state === 'subscribed', { message: 'subscribed' });
    if (offline() === 0) {
      assert.deepEqual(outcomes, ['ok', 'ok']);
      assert.equal(link.sentOps('sub').length, 2);
      assert.equal(link.sentOps('unsub').length, 1, 'the first `sub` was undone');
      assert.equal(subscribeEvents, 1, 'only the current `sub` reply counts');
    }
    await b.channel('again').publish({ n: 1 });
    await waitFor(() => got.length >= 1, { message: 'the publication' });
    await sleep(100);
    assert.deepEqual(got, [1]);
    assert.equal(await sessionsOn(server, 'again'), 1, 'the server holds one subscription');
    await ch.unsubscribe();
    await waitFor(async () => (await sessionsOn(server, 'again')) === 0, { message: 'server and client agree: unsubscribed' });
    a.close();
    b.close();
  });
});

describe('kill and restart during a stream of publications', () => {
  test('nothing lost, nothing duplicated, in order', async (t) => {
    const first = await startServer();
    const { port, dataDir } = first;
    let server = first;
    const urlFn = () => `ws://127.0.0.1:${port}/v1/ws`;
    // Both sides keep their identity across the restart: the publisher's resent publications are
    // deduplicated by the server per user and key.
    const pubCookie = await newIdentity(server);
    let pubLines = 0;
    const hooks = { sent: (text) => { pubLines += text.split('\n').filter((l) => l.includes('"op":"pub"')).length; } };
    const publisher = await connect(server, { cookie: pubCookie, urlFn, hooks });
    const subscriber = await connect(server, { cookie: await newIdentity(server), urlFn });

    const received = [];
    const ch = subscriber.channel('stream');
    ch.on('message', (data, pub) => received.push({ offset: pub.offset, n: data.n }));
    const stale = [];
    ch.on('stale', () => stale.push(true));
    await ch.subscribe();

    const N = 400;
    const out = publisher.channel('stream');
    const acks = [];
    let offlineSeen = 0;
    subscriber.on('offline', () => offlineSeen++);
    const sending = (async () => {
      for (let n = 1; n <= N; n++) {
        acks.push(out.publish({ n }));
        if (n % 10 === 0) await sleep(15); // the stream lasts longer than the first quarter
      }
      return Promise.all(acks);
    })();

    // Kill the server in the middle of the stream, then start it again on the same port and data.
    await waitFor(() => received.length >= N / 4, { message: 'a quarter of the stream' });
    await server.kill();
    await sleep(300);
    server = await startServerAt({ port, dataDir });

    const results = await sending;
    await waitFor(() => received.length >= N, { message: `${N} publications (got ${received.length})`, timeout: 30_000 });
    await sleep(300); // anything extra would show up now

    assert.ok(offlineSeen >= 1, 'the subscriber went offline');
    assert.deepEqual(stale, [], 'the durable channel recovered');
    const offsets = received.map((r) => r.offset);
    assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, i) => i + 1), 'offsets 1..N, in order, no gap');
    const ns = received.map((r) => r.n).sort((x, y) => x - y);
    assert.deepEqual(ns, Array.from({ length: N }, (_, i) => i + 1), 'every publication exactly once');
    assert.equal(new Set(results.map((r) => r.offset)).size, N, 'one offset per publication');

    t.diagnostic(`${N} publications, ${pubLines - N} resent after the restart`);
    publisher.close();
    subscriber.close();
    await server.stop();
  });
});
