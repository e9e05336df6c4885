// What a PubNub app asks of a publication or a subscription and must get, not silently something else
// (docs/pubnub.md): `store=0` is delivered but not kept, `fire()` (norep) reaches nobody, `ttl` expires a
// message from history, a subscriber's filter expression passes only what it accepts (a malformed one is
// a 400), hereNow's `state` key only when there is state, and channel lists whose comma is
// percent-encoded (SDKs 3.x-7.x) decoded before they are split. With pubnub@11 and raw HTTP.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import PubNub from 'pubnub';
import { Client, cleanupAll, httpRequest, sleep, startServer } from './lib/server.mjs';
import { pubnubClient } from './lib/pubnub.mjs';

const CONFIG = `
[pubnub]
presence_timeout = 5
subscribe_timeout = 2

[namespaces.mem]
durable = false
`;

let server;
let dataDir;
before(async () => {
  server = await startServer({ config: CONFIG });
  dataDir = server.dataDir;
});
after(async () => {
  for (const c of clients) c.stop();
  await cleanupAll();
});

let unique = 0;
const name = (prefix) => `${prefix}-${process.pid}-${++unique}`;
const clients = [];
const sdk = (userId, options) => {
  const c = pubnubClient(PubNub, server, userId, options);
  clients.push(c);
  return c;
};

async function get(path) {
  const res = await httpRequest(`${server.url}${path}`);
  return { status: res.status, body: res.json() };
}
const publish = (ch, msg, query = '') =>
  get(`/publish/demo/demo/0/${encodeURIComponent(ch)}/0/${encodeURIComponent(JSON.stringify(msg))}?uuid=raw${query}`);
const history = async (ch) => (await get(`/v2/history/sub-key/demo/channel/${encodeURIComponent(ch)}?count=100`)).body[0];
const fetched = async (ch) => (await get(`/v3/history/sub-key/demo/channel/${encodeURIComponent(ch)}?max=100`)).body.channels[ch] ?? [];
const handshake = async (chs, query = '') => (await get(`/v2/subscribe/demo/${chs.join(',')}/0?uuid=raw${query}`)).body;
const receive = (chs, tt, query = '') => get(`/v2/subscribe/demo/${chs.join(',')}/0?tt=${tt}&tr=1&uuid=raw${query}`);

// Both kinds of channel: durable (SQLite) and in memory.
for (const prefix of ['', 'mem:']) {
  const kind = prefix ? 'in memory' : 'durable';

  describe(`store=0 (${kind})`, () => {
    test('a publish with storeInHistory: false reaches the subscriber but not history', async () => {
      const ch = `${prefix}${name('nostore')}`;
      const a = sdk(name('alice'));
      const b = sdk(name('bob'));
      await a.subscribe({ channels: [ch] });
      const kept = await b.pn.publish({ channel: ch, message: 'kept' });
      const gone = await b.pn.publish({ channel: ch, message: 'not kept', storeInHistory: false, meta: { m: 1 } });
      assert.match(gone.timetoken, /^\d{17}$/);
      assert.ok(BigInt(gone.timetoken) > BigInt(kept.timetoken));
      const m = await a.next('message', (e) => e.message === 'not kept');
      assert.equal(m.timetoken, gone.timetoken);
      assert.equal(m.publisher, b.userId);
      assert.deepEqual(m.userMetadata, { m: 1 });
      assert.deepEqual((await b.pn.history({ channel: ch })).messages.map((e) => e.entry), ['kept']);
      assert.deepEqual((await b.pn.fetchMessages({ channels: [ch] })).channels[ch].map((e) => e.message), ['kept']);
      assert.equal((await b.pn.messageCounts({ channels: [ch], timetoken: '1' })).channels[ch], 1);
      a.stop();
      b.stop();
    });

    test('raw: delivered as a message (no "e"), not to native clients, and the cursor passes it', async () => {
      const ch = `${prefix}${name('nostore-raw')}`;
      const ws = await Client.connect(server.wsUrl);
      await ws.call('sub', { ch });
      const hs = await handshake([ch]);
      const sent = await publish(ch, 'transient', '&store=0');
      assert.equal(sent.status, 200);
      const { body } = await receive([ch], hs.t.t);
      assert.equal(body.m.length, 1);
      assert.equal('e' in body.m[0], false, 'a message, not a signal');
      assert.equal(body.m[0].d, 'transient');
      assert.equal(body.t.t, sent.body[2]);
      await publish(ch, 'stored');
      assert.equal((await ws.next((o) => o.op === 'msg')).data, 'stored', 'native clients see only what is kept');
      assert.deepEqual(await history(ch), ['stored']);
      await ws.close();
    });
  });
}

describe('norep (fire)', () => {
  test('fire() is answered, reaches no subscriber and is not stored', async () => {
    const ch = name('fire');
    const a = sdk(name('alice'));
    const b = sdk(name('bob'));
    await a.subscribe({ channels: [ch] });
    await b.pn.fire({ channel: ch, message: 'to functions only' });
    await b.pn.publish({ channel: ch, message: 'after' });
    await a.next('message', (e) => e.message === 'after');
    assert.deepEqual(a.messages(ch), ['after']);
    assert.deepEqual(await history(ch), ['after']);
    a.stop();
    b.stop();
  });

  test('raw: norep with store=0 answers a timetoken; norep with storage is refused, not done differently', async () => {
    const ch = name('norep');
    const fire = await publish(ch, 'x', '&norep=true&store=0');
    assert.equal(fire.status, 200);
    assert.equal(fire.body[0], 1);
    assert.match(fire.body[2], /^\d{17}$/);
    const stored = await publish(ch, 'x', '&norep=true');
    assert.equal(stored.status, 400);
    assert.equal(stored.body[0], 0);
    assert.deepEqual(await history(ch), []);
  });
});

describe('ttl', () => {
  test('a message expires from history, fetch, counts and catch-up after ttl hours; others stay', async () => {
    const ch = name('ttl');
    const b = sdk(name('bob'));
    const hs = await handshake([ch]);
    await b.pn.publish({ channel: ch, message: 'forever' });
    await b.pn.publish({ channel: ch, message: 'short', ttl: 0.0005 });  // 1.8 s
    await b.pn.publish({ channel: ch, message: 'an hour', ttl: 1 });
    await b.pn.publish({ channel: ch, message: 'zero is no expiry', ttl: 0 });
    assert.deepEqual(await history(ch), ['forever', 'short', 'an hour', 'zero is no expiry']);
    await sleep(2500);
    const left = ['forever', 'an hour', 'zero is no expiry'];
    assert.deepEqual((await b.pn.history({ channel: ch })).messages.map((e) => e.entry), left);
    assert.deepEqual((await fetched(ch)).map((e) => e.message), left);
    assert.equal((await b.pn.messageCounts({ channels: [ch], timetoken: '1' })).channels[ch], 3);
    assert.deepEqual((await receive([ch], hs.t.t)).body.m.map((e) => e.d), left);
    // Native history too: an expired message is no history for anyone.
    const ws = await Client.connect(server.wsUrl);
    const native = await ws.call('history', { ch });
    assert.deepEqual(native.pubs.map((p) => p.data), left);
    await ws.close();
    b.stop();
  });

  test('the expiry survives a restart (stored with the message)', async () => {
    const ch = name('ttl-restart');
    await publish(ch, 'short', '&ttl=0.0005');
    await publish(ch, 'long', '&ttl=24');
    await server.stop();
    server = await startServer({ config: CONFIG, dataDir });
    await sleep(2000);
    assert.deepEqual(await history(ch), ['long']);
  });

  test('raw: a ttl that is no number of hours is refused', async () => {
    for (const bad of ['abc', '-1', '1e400']) {
      const res = await publish(name('ttl-bad'), 'x', `&ttl=${bad}`);
      assert.equal(res.status, 400, bad);
      assert.equal(res.body[0], 0);
    }
  });
});

describe('filter expressions', () => {
  for (const ee of [true, false]) {
    test(`a subscriber gets only what its filter passes (${ee ? 'event engine' : 'legacy'})`, async () => {
      const ch = name('filter');
      const a = sdk(name('alice'), { ee, filterExpression: "meta.priority == 'high' && meta.level > 2" });
      const all = sdk(name('all'), { ee });
      const b = sdk(name('bob'));
      await a.subscribe({ channels: [ch], withPresence: true });
      await all.subscribe({ channels: [ch] });
      await b.pn.publish({ channel: ch, message: 'no meta' });
      await b.pn.publish({ channel: ch, message: 'low', meta: { priority: 'low', level: 5 } });
      await b.pn.publish({ channel: ch, message: 'high but 1', meta: { priority: 'high', level: 1 } });
      await b.pn.publish({ channel: ch, message: 'yes', meta: { priority: 'high', level: 3 } });
      await b.pn.signal({ channel: ch, message: 'signal' });
      await b.pn.publish({ channel: ch, message: 'last', meta: { priority: 'high', level: 9 } });
      await a.next('message', (e) => e.message === 'last');
      await all.next('message', (e) => e.message === 'last');
      assert.deepEqual(a.messages(ch), ['yes', 'last']);
      assert.deepEqual(all.messages(ch), ['no meta', 'low', 'high but 1', 'yes', 'last']);
      assert.equal((await a.next('signal')).message, 'signal', 'signals are not filtered');
      assert.ok(a.events.presence.some((p) => p.action === 'join' && p.uuid === all.userId), 'nor presence events');
      a.stop();
      all.stop();
      b.stop();
    });
  }

  test('raw: LIKE, CONTAINS and the first syntax; hidden messages move the cursor', async () => {
    const ch = name('filter-raw');
    const hs = await handshake([ch]);
    await publish(ch, 1, `&meta=${encodeURIComponent(JSON.stringify({ region: 'EU-west', tags: ['a', 'b'] }))}`);
    await publish(ch, 2, `&meta=${encodeURIComponent(JSON.stringify({ region: 'us', tags: ['b'] }))}`);
    const last = await publish(ch, 3, `&meta=${encodeURIComponent(JSON.stringify({ region: 'eu-north', tags: ['c'] }))}`);
    const f = (expr) => `&filter-expr=${encodeURIComponent(expr)}`;
    const like = await receive([ch], hs.t.t, f("meta.region LIKE 'eu*'"));
    assert.deepEqual(like.body.m.map((e) => e.d), [1, 3]);
    const contains = await receive([ch], hs.t.t, f("meta.tags CONTAINS 'b' && !(region == 'us')"));
    assert.deepEqual(contains.body.m.map((e) => e.d), [1]);
    assert.equal(contains.body.t.t, last.body[2], 'the cursor passes what the filter hid');
    // Nothing passes: answered at once, empty, past them (no re-reading them forever).
    const none = await receive([ch], hs.t.t, f("meta.region == 'mars'"));
    assert.deepEqual(none.body.m, []);
    assert.equal(none.body.t.t, last.body[2]);
  });

  test('raw: a hidden delivery does not end a long poll; a passing one does', async () => {
    const ch = name('filter-lp');
    const hs = await handshake([ch]);
    const q = `&filter-expr=${encodeURIComponent("meta.ok == true")}`;
    const pending = receive([ch], hs.t.t, q);
    await sleep(200);
    await publish(ch, 'hidden', `&meta=${encodeURIComponent('{"ok":false}')}`);
    await sleep(200);
    const shown = await publish(ch, 'shown', `&meta=${encodeURIComponent('{"ok":true}')}`);
    const { body } = await pending;
    assert.deepEqual(body.m.map((e) => e.d), ['shown']);
    assert.equal(body.t.t, shown.body[2]);
  });

  test('a malformed expression is a 400, and the SDK reports a bad request', async () => {
    const ch = name('filter-bad');
    const res = await get(`/v2/subscribe/demo/${ch}/0?uuid=raw&filter-expr=${encodeURIComponent("meta.a == 'x")}`);
    assert.equal(res.status, 400);
    assert.equal(res.body.error, true);
    assert.equal(res.body.status, 400);
    assert.equal(res.body.service, 'Subscribe');
    assert.match(res.body.message, /^Invalid filter expression/);
    // The event engine reports a failed handshake as a connection error whose reason is the bad request;
    // the subscription manager reports the bad request with its answer. Neither retries a 400.
    const ee = sdk(name('alice'), { ee: true, filterExpression: 'meta.a ==' });
    ee.pn.subscribe({ channels: [ch] });
    const s1 = await ee.next('status', (e) => e.error);
    assert.deepEqual(s1, { category: 'PNConnectionErrorCategory', error: 'PNBadRequestCategory' });
    const legacy = sdk(name('bob'), { ee: false, filterExpression: 'meta.a ==' });
    legacy.pn.subscribe({ channels: [ch] });
    const s2 = await legacy.next('status', (e) => e.error);
    assert.equal(s2.category, 'PNBadRequestCategory');
    assert.equal(s2.statusCode, 400);
    assert.match(s2.errorData.message, /^Invalid filter expression/);
    ee.stop();
    legacy.stop();
  });
});

describe('hereNow state', () => {
  test('includeState lists uuids; a uuid has a state key only when it has state', async () => {
    const ch = name('state');
    const a = sdk(name('alice'));
    await a.subscribe({ channels: [ch] });
    const here = await a.pn.hereNow({ channels: [ch], includeState: true });
    assert.equal(here.channels[ch].occupants.length, 1);
    assert.equal(here.channels[ch].occupants[0].uuid, a.userId);
    assert.equal(here.channels[ch].occupants[0].state, undefined);
    const raw = await get(`/v2/presence/sub-key/demo/channel/${ch}?state=1&uuid=raw`);
    assert.deepEqual(raw.body.uuids, [{ uuid: a.userId }]);
    const two = await get(`/v2/presence/sub-key/demo/channel/${ch},${name('other')}?state=1&uuid=raw`);
    assert.deepEqual(two.body.payload.channels[ch].uuids, [{ uuid: a.userId }]);
    a.stop();
  });
});

describe('channel lists decoded before they are split (SDKs 3.x-7.x send a%2Cb)', () => {
  test('subscribe, heartbeat, here_now, leave, fetch messages and message counts', async () => {
    const a = name('enc-a');
    const b = name('enc-b');
    const both = `${a}%2C${b}`;
    const hs = await get(`/v2/subscribe/demo/${both}%2C${a}-pnpres/0?uuid=enc`);
    assert.equal(hs.status, 200, JSON.stringify(hs.body));
    assert.equal((await get(`/v2/presence/sub-key/demo/channel/${both}/heartbeat?uuid=enc&heartbeat=60`)).status, 200);
    const here = await get(`/v2/presence/sub-key/demo/channel/${both}?uuid=x`);
    assert.equal(here.body.payload.total_channels, 2);
    assert.equal(here.body.payload.channels[a].occupancy, 1);
    await publish(a, 'to a');
    await publish(b, 'to b');
    const fetchedBoth = await get(`/v3/history/sub-key/demo/channel/${both}?max=25`);
    assert.deepEqual(Object.keys(fetchedBoth.body.channels).sort(), [a, b].sort());
    const counts = await get(`/v3/history/sub-key/demo/message-counts/${both}?timetoken=1`);
    assert.deepEqual(counts.body.channels, { [a]: 1, [b]: 1 });
    const rcv = await get(`/v2/subscribe/demo/${both}/0?tt=${hs.body.t.t}&tr=1&uuid=enc`);
    assert.deepEqual(rcv.body.m.filter((e) => !e.c.endsWith('-pnpres')).map((e) => e.d), ['to a', 'to b']);
    assert.equal((await get(`/v2/presence/sub-key/demo/channel/${both}/leave?uuid=enc`)).status, 200);
    assert.equal((await get(`/v2/presence/sub-key/demo/channel/${both}?uuid=x`)).body.payload.total_occupancy, 0);
    // "%2C" alone is no channels, like ",".
    assert.equal((await get('/v2/subscribe/demo/%2C/0?uuid=enc')).status, 400);
  });
});
