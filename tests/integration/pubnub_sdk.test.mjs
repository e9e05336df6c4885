// PubNub compatibility (PROTOCOL §7, docs/pubnub.md) proven with the official PubNub JavaScript SDK
// (pubnub@11.0.2), pointed at rtsync with `origin: 'HOST:PORT', ssl: false`. Every scenario runs twice:
// in the SDK's default event-engine mode and with `enableEventEngine: false` (the subscription manager
// of SDK versions 8-10). Interop with native WebSocket clients, and the `restore` catch-up across a
// server restart, are here too.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import PubNub from 'pubnub';
import { BIN, Client, cleanupAll, sleep, startServer, TIMEOUT, tmpDir, waitFor, withTimeout } from './lib/server.mjs';
import { pubnubClient } from './lib/pubnub.mjs';

// A short heartbeat window and long-poll timeout, so timeouts and empty long-poll answers happen within
// the test. `mem:` channels are in memory, the others durable.
const CONFIG = `
[pubnub]
presence_timeout = 3
subscribe_timeout = 5

[namespaces.mem]
durable = false
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(async () => {
  for (const c of clients) c.pn.destroy(true);
  clients.length = 0;
  await cleanupAll();
});

// ---------------------------------------------------------------------------------------------------
// An SDK client whose listener events are recorded, with waits on them.

const clients = [];
let unique = 0;
const name = (prefix) => `${prefix}-${process.pid}-${++unique}`;

function sdk(srv, userId, { ee = true, ...options } = {}) {
  const c = pubnubClient(PubNub, srv, userId, { ee, ...options });
  clients.push(c);
  return c;
}

// Subscribes and waits until the subscription is live on the server (the connected status in both
// modes; a later change in the event engine says "subscription changed").
async function subscribed(c, params) {
  const before = c.events.status.length;
  c.pn.subscribe(params);
  await c.next('status', (s) => c.events.status.indexOf(s) >= before &&
    (s.category === 'PNConnectedCategory' || s.category === 'PNSubscriptionChangedCategory'));
  // The receive long poll follows the handshake answer: give it a moment to be registered.
  await sleep(150);
}

function stop(c) {
  c.pn.destroy(true);
  clients.splice(clients.indexOf(c), 1);
}

const TT = /^\d{17}$/;

// ---------------------------------------------------------------------------------------------------

for (const ee of [true, false]) {
  const mode = ee ? 'event engine' : 'legacy subscription manager';

  describe(`PubNub SDK (${mode})`, () => {
    test('publish from one client reaches the subscriber of another, with its timetoken and meta', async () => {
      const ch = name('chat');
      const a = sdk(server, name('alice'), { ee });
      const b = sdk(server, name('bob'), { ee });
      await subscribed(a, { channels: [ch] });
      const sent = await b.pn.publish({ channel: ch, message: { text: 'hello' }, meta: { lang: 'en' } });
      assert.match(sent.timetoken, TT, 'publish answers a 17-digit string timetoken');
      const m = await a.next('message', (e) => e.channel === ch);
      assert.deepEqual(m.message, { text: 'hello' });
      assert.equal(m.publisher, b.userId);
      assert.equal(m.timetoken, sent.timetoken);
      assert.equal(m.subscription, ch);
      assert.deepEqual(m.userMetadata, { lang: 'en' });
      // POST with a deflated body (sendByPost) arrives the same way, and in order.
      const second = await b.pn.publish({ channel: ch, message: ['by', 'post'], sendByPost: true });
      assert.ok(BigInt(second.timetoken) > BigInt(sent.timetoken), 'timetokens grow');
      await a.next('message', (e) => e.channel === ch && e.timetoken === second.timetoken);
      assert.deepEqual(a.messages(ch), [{ text: 'hello' }, ['by', 'post']]);
      stop(a);
      stop(b);
    });

    test('one subscription over several channels, durable and in memory', async () => {
      const chans = [name('multi'), name('multi'), `mem:${name('multi')}`];
      const a = sdk(server, name('alice'), { ee });
      const b = sdk(server, name('bob'), { ee });
      await subscribed(a, { channels: chans });
      for (const [i, ch] of chans.entries()) await b.pn.publish({ channel: ch, message: { i } });
      for (const [i, ch] of chans.entries()) {
        const m = await a.next('message', (e) => e.channel === ch);
        assert.deepEqual(m.message, { i });
      }
      // Adding a channel to a live subscription (the SDK aborts its long poll and polls again).
      const extra = name('multi');
      await subscribed(a, { channels: [extra] });
      await b.pn.publish({ channel: extra, message: 'late' });
      assert.equal((await a.next('message', (e) => e.channel === extra)).message, 'late');
      assert.equal(a.events.message.length, 4, 'each message once');
      stop(a);
      stop(b);
    });

    test('signals reach subscribers and stay out of history', async () => {
      const ch = name('sig');
      const a = sdk(server, name('alice'), { ee });
      const b = sdk(server, name('bob'), { ee });
      await subscribed(a, { channels: [ch] });
      const sent = await b.pn.signal({ channel: ch, message: 'typing' });
      const s = await a.next('signal', (e) => e.channel === ch);
      assert.equal(s.message, 'typing');
      assert.equal(s.publisher, b.userId);
      assert.equal(s.timetoken, sent.timetoken);
      assert.equal(a.events.message.length, 0, 'a signal is no message');
      const h = await b.pn.history({ channel: ch });
      assert.deepEqual(h.messages, []);
      stop(a);
      stop(b);
    });

    test('presence: join, here_now, where_now, leave', async () => {
      const ch = name('room');
      const watcher = sdk(server, name('watcher'), { ee });
      const joiner = sdk(server, name('joiner'), { ee });
      await subscribed(watcher, { channels: [ch], withPresence: true });
      await subscribed(joiner, { channels: [ch] });
      const join = await watcher.next('presence', (e) => e.action === 'join' && e.uuid === joiner.userId);
      assert.equal(join.channel, ch);
      assert.equal(join.subscription, `${ch}-pnpres`);
      assert.equal(join.occupancy, 2);
      assert.equal(typeof join.timestamp, 'number');
      assert.match(join.timetoken, TT);

      const here = await joiner.pn.hereNow({ channels: [ch] });
      assert.equal(here.totalOccupancy, 2);
      assert.deepEqual(here.channels[ch].occupants.map((o) => o.uuid).sort(), [joiner.userId, watcher.userId].sort());
      const other = name('empty');
      const several = await joiner.pn.hereNow({ channels: [ch, other], includeUUIDs: false });
      assert.equal(several.totalChannels, 2);
      assert.equal(several.channels[ch].occupancy, 2);
      assert.equal(several.channels[other].occupancy, 0);
      assert.deepEqual(several.channels[ch].occupants, []);
      const everywhere = await joiner.pn.hereNow({});
      assert.equal(everywhere.channels[ch].occupancy, 2, 'global here_now lists the channel');
      assert.deepEqual((await joiner.pn.whereNow({ uuid: joiner.userId })).channels, [ch]);

      joiner.pn.unsubscribe({ channels: [ch] });
      const leave = await watcher.next('presence', (e) => e.action === 'leave' && e.uuid === joiner.userId);
      assert.equal(leave.occupancy, 1);
      assert.equal((await watcher.pn.hereNow({ channels: [ch] })).totalOccupancy, 1);
      assert.deepEqual((await joiner.pn.whereNow({ uuid: joiner.userId })).channels, []);
      stop(watcher);
      stop(joiner);
    });

    test('presence: a client that vanishes without leaving times out after the heartbeat window', async () => {
      const ch = name('room');
      const watcher = sdk(server, name('watcher'), { ee });
      const ghost = sdk(server, name('ghost'), { ee });
      await subscribed(watcher, { channels: [ch], withPresence: true });
      await subscribed(ghost, { channels: [ch] });
      await watcher.next('presence', (e) => e.action === 'join' && e.uuid === ghost.userId);
      // Its pending long poll keeps it present past the 3 s window...
      await sleep(3500);
      assert.equal(watcher.events.presence.filter((e) => e.uuid === ghost.userId && e.action !== 'join').length, 0);
      assert.equal((await watcher.pn.hereNow({ channels: [ch] })).totalOccupancy, 2);
      // ...until it goes away without a leave (offline): its long poll's connection closes, and after
      // the window its uuid times out.
      const gone = Date.now();
      stop(ghost);
      const timeout = await watcher.next('presence', (e) => e.uuid === ghost.userId && e.action !== 'join', 15_000);
      assert.equal(timeout.action, 'timeout');
      assert.equal(timeout.occupancy, 1);
      const took = Date.now() - gone;
      assert.ok(took >= 2500 && took < 9000, `timed out ${took} ms after it went away (window 3 s)`);
      stop(watcher);
    });

    test('history: newest with count 1, reverse, start/end, meta', async () => {
      const ch = name('hist');
      const p = sdk(server, name('writer'), { ee });
      const tts = [];
      for (let i = 1; i <= 6; i++) tts.push((await p.pn.publish({ channel: ch, message: { n: i }, meta: { i } })).timetoken);
      const entries = (h) => h.messages.map((m) => m.entry.n);

      const newest = await p.pn.history({ channel: ch, count: 1, stringifiedTimeToken: true });
      assert.deepEqual(entries(newest), [6]);
      assert.equal(newest.messages[0].timetoken, tts[5]);
      assert.deepEqual(entries(await p.pn.history({ channel: ch })), [1, 2, 3, 4, 5, 6], 'oldest first');
      assert.deepEqual(entries(await p.pn.history({ channel: ch, count: 2, reverse: true })), [1, 2]);
      assert.deepEqual(entries(await p.pn.history({ channel: ch, count: 2, reverse: false })), [5, 6]);
      // start is exclusive, end inclusive.
      const range = await p.pn.history({ channel: ch, start: tts[4], end: tts[1], stringifiedTimeToken: true });
      assert.deepEqual(entries(range), [2, 3, 4]);
      assert.equal(range.startTimeToken, tts[1]);
      assert.equal(range.endTimeToken, tts[3]);
      assert.deepEqual(entries(await p.pn.history({ channel: ch, start: tts[2] })), [1, 2]);
      assert.deepEqual(entries(await p.pn.history({ channel: ch, end: tts[4] })), [5, 6]);
      const withMeta = await p.pn.history({ channel: ch, count: 1, includeMeta: true });
      assert.deepEqual(withMeta.messages[0].meta, { i: 6 });
      assert.deepEqual((await p.pn.history({ channel: name('nothing') })).messages, []);
      stop(p);
    });

    test('fetchMessages over several channels, and messageCounts', async () => {
      const [x, y, z] = [name('fx'), name('fy'), name('fz')];
      const p = sdk(server, name('writer'), { ee });
      const first = await p.pn.publish({ channel: x, message: 'x1' });
      await p.pn.publish({ channel: y, message: 'y1', meta: { tag: 'm' } });
      await p.pn.publish({ channel: x, message: 'x2', customMessageType: 'text-msg' });
      const f = await p.pn.fetchMessages({ channels: [x, y, z], includeMeta: true, includeCustomMessageType: true });
      assert.deepEqual(f.channels[x].map((m) => m.message), ['x1', 'x2']);
      assert.deepEqual(f.channels[y].map((m) => m.message), ['y1']);
      assert.equal(f.channels[z], undefined, 'a channel without messages is left out');
      assert.equal(f.channels[x][0].timetoken, first.timetoken);
      assert.equal(f.channels[x][0].uuid, p.userId);
      assert.equal(f.channels[x][0].messageType, -1, 'null message_type: an ordinary message');
      assert.equal(f.channels[x][1].customMessageType, 'text-msg');
      assert.deepEqual(f.channels[y][0].meta, { tag: 'm' });
      const one = await p.pn.fetchMessages({ channels: [x], count: 1 });
      assert.deepEqual(one.channels[x].map((m) => m.message), ['x2'], 'count keeps the newest');
      const paged = await p.pn.fetchMessages({ channels: [x], start: f.channels[x][1].timetoken });
      assert.deepEqual(paged.channels[x].map((m) => m.message), ['x1'], 'start pages back');

      const counts = await p.pn.messageCounts({ channels: [x, y, z], timetoken: first.timetoken });
      assert.deepEqual(counts.channels, { [x]: 1, [y]: 1, [z]: 0 });
      const per = await p.pn.messageCounts({ channels: [x, y], channelTimetokens: ['1', first.timetoken] });
      assert.deepEqual(per.channels, { [x]: 2, [y]: 1 });
      stop(p);
    });

    test('unicode and 30 KB payloads, GET and POST; over 32 KiB refused with the SDK error', async () => {
      const ch = name('big');
      const a = sdk(server, name('alice'), { ee });
      const b = sdk(server, name('bob'), { ee });
      await subscribed(a, { channels: [ch] });
      const payloads = [
        [{ text: 'héllo wörld ✓ 日本語 🎉', rtl: 'مرحبا', esc: 'q"\\/\n\t' }, false],
        ['x'.repeat(30_000), false],                           // 30 KB in the URL of a GET
        [{ poem: '🎉日本語'.repeat(2_300) }, true],            // 30 KB of 3- and 4-byte UTF-8, deflated POST
      ];
      for (const [message, sendByPost] of payloads) await b.pn.publish({ channel: ch, message, sendByPost });
      await waitFor(() => a.events.message.filter((m) => m.channel === ch).length === payloads.length,
        { message: 'three messages' });
      assert.deepEqual(a.messages(ch), payloads.map(([m]) => m));
      const h = await b.pn.fetchMessages({ channels: [ch] });
      assert.deepEqual(h.channels[ch].map((m) => m.message), payloads.map(([m]) => m), 'history has them intact');

      for (const sendByPost of [false, true]) {
        const err = await b.pn.publish({ channel: ch, message: 'y'.repeat(33 * 1024), sendByPost }).then(
          () => assert.fail('a message over 32 KiB was accepted'), (e) => e);
        assert.equal(err.status.statusCode, 413);
        assert.equal(err.status.errorData, 'Request Entity Too Large');
        assert.equal(err.status.operation, 'PNPublishOperation');
        assert.equal(err.status.error, true);
      }
      stop(a);
      stop(b);
    });

    test('interop with a native WebSocket client, both ways, presence included', async () => {
      const ch = name('interop');
      const pn = sdk(server, name('pn-user'), { ee });
      const ws = await Client.connect(server.wsUrl);
      try {
        const subbed = await ws.call('sub', { ch, presence: true });
        await subscribed(pn, { channels: [ch], withPresence: true });
        // The PubNub uuid is a member: a native join push and an entry in native presence.
        const join = await ws.next((o) => o.op === 'join' && o.ch === ch);
        assert.equal(join.user, pn.userId);
        assert.equal(join.session, `pubnub:${pn.userId}`);
        const p = await ws.call('presence', { ch });
        assert.deepEqual(p.clients.map((cl) => cl.user).sort(), [ws.hello.user, pn.userId].sort());
        // ...and the native user is in PubNub's here_now.
        const here = await pn.pn.hereNow({ channels: [ch] });
        assert.deepEqual(here.channels[ch].occupants.map((o) => o.uuid).sort(), [ws.hello.user, pn.userId].sort());

        // PubNub -> native: an ordinary publication with the next offset.
        const sent = await pn.pn.publish({ channel: ch, message: { from: 'pubnub' } });
        const msg = await ws.next((o) => o.op === 'msg' && o.ch === ch);
        assert.deepEqual(msg.data, { from: 'pubnub' });
        assert.equal(msg.offset, subbed.offset + 1);

        // native -> PubNub: the publisher is the native user id.
        const ack = await ws.call('pub', { ch, data: { from: 'native' } });
        assert.equal(ack.offset, msg.offset + 1);
        const got = await pn.next('message', (e) => e.channel === ch && e.message?.from === 'native');
        assert.equal(got.publisher, ws.hello.user);
        assert.ok(BigInt(got.timetoken) > BigInt(sent.timetoken));

        // One history: native sees the PubNub publication, PubNub sees the native one.
        const h = await ws.call('history', { ch });
        assert.deepEqual(h.pubs.map((x) => x.data), [{ from: 'pubnub' }, { from: 'native' }]);
        const f = await pn.pn.history({ channel: ch });
        assert.deepEqual(f.messages.map((x) => x.entry), [{ from: 'pubnub' }, { from: 'native' }]);

        // The native session's leave reaches PubNub presence listeners.
        await ws.close();
        const left = await pn.next('presence', (e) => e.action === 'leave' && e.uuid === ws.hello.user);
        assert.equal(left.channel, ch);
      } finally {
        if (!ws.closeInfo) await ws.close();
        stop(pn);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Restart: durable history and timetokens survive, and the SDK's `restore` catches up from its cursor.

// The harness always starts on port 0; a restarted server must come back on the same port, since the SDK
// keeps its origin.
async function serveOn(port, dataDir) {
  const proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--config', configFile],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)));
  await withTimeout(new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => { out += d; if (/rtsync listening on/.test(out)) resolve(); });
    proc.on('exit', (code) => reject(new Error(`server exited (${code}): ${stderr}`)));
  }), TIMEOUT, 'restarted server did not listen');
  return {
    host: '127.0.0.1',
    port,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    stderr: () => stderr,
    async stop() { proc.kill('SIGTERM'); return exited; },
    async kill() { proc.kill('SIGKILL'); return exited; },
  };
}

let configFile;
const restarted = [];
after(async () => {
  for (const s of restarted) await s.kill();
  for (const s of restarted) assert.doesNotMatch(s.stderr(), /ERROR: \w+Sanitizer|runtime error:/);
});

for (const ee of [true, false]) {
  const mode = ee ? 'event engine' : 'legacy subscription manager';
  test(`restore catches up after the server restarted (${mode})`, async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    configFile = path.join(tmpDir('rtsync-pn-conf-'), 'rtsync.toml');
    fs.writeFileSync(configFile, CONFIG);
    const dataDir = tmpDir('rtsync-pn-data-');
    const first = await startServer({ config: CONFIG, dataDir });
    const ch = name('durable');
    const reader = sdk(first, name('reader'), { ee, restore: true });
    const writer = sdk(first, name('writer'), { ee });
    await subscribed(reader, { channels: [ch] });
    const before = await writer.pn.publish({ channel: ch, message: 'before' });
    await reader.next('message', (e) => e.message === 'before');

    assert.equal(await first.stop(), 0);
    const again = await serveOn(first.port, dataDir);
    restarted.push(again);
    // Published at once by a native client, while the SDK is still backing off: it gets them from
    // history with its old cursor, not live.
    const ws = await Client.connect(again.wsUrl);
    for (const data of ['after-1', 'after-2', 'after-3']) await ws.call('pub', { ch, data });
    await ws.close();
    await waitFor(() => reader.messages(ch).length === 4, { timeout: 30_000, message: 'the catch-up' });
    assert.deepEqual(reader.messages(ch), ['before', 'after-1', 'after-2', 'after-3'], 'each once, in order');
    const tts = reader.events.message.filter((m) => m.channel === ch).map((m) => BigInt(m.timetoken));
    assert.equal(tts[0], BigInt(before.timetoken));
    for (let i = 1; i < tts.length; i++) assert.ok(tts[i] > tts[i - 1], 'timetokens keep growing after the restart');
    // History came back from the store with the same timetokens.
    const h = await writer.pn.history({ channel: ch, stringifiedTimeToken: true });
    assert.deepEqual(h.messages.map((m) => m.timetoken), tts.map(String));
    stop(reader);
    stop(writer);
    assert.equal(await again.stop(), 0);
  });
}
