// PubNub features that the nodes of a cluster share (docs/pubnub.md section 7, docs/scaling.md): presence
// state set on one node is seen, and its state-change told, on the other; channel groups are one
// registry; a wildcard hears the other node's publications; message actions are one store and their
// events cross nodes; messages deleted on one node leave the other's memory too; App Context records are
// one store and their events cross nodes; an Access Manager token granted on one node works on the other,
// and its revocation reaches it. Two nodes on a real Redis and PostgreSQL (lib/cluster.mjs), driven over
// PubNub's REST API (and the SDK for Access Manager, whose requests it signs).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupAll, httpRequest, waitFor } from './lib/server.mjs';
import { cleanupCluster, startNode, startPostgres, startRedis } from './lib/cluster.mjs';
import PubNub from 'pubnub';
import { pubnubClient } from './lib/pubnub.mjs';
import { signToken } from './lib/tokens.mjs';

const SECRET_KEY = 'sec-c-cluster-0123456789';
const CONFIG = `
[pubnub]
subscribe_timeout = 10
publish_key = "demo"
secret_key = "${SECRET_KEY}"
`;

let a, b;
before(async () => {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  [a, b] = await Promise.all([startNode({ redis, pg, node: 'a', config: CONFIG }),
                              startNode({ redis, pg, node: 'b', config: CONFIG })]);
});
after(async () => {
  try { await cleanupAll(); } finally { await cleanupCluster(); }
});

let unique = 0;
const name = (prefix) => `${prefix}-${process.pid}-${++unique}`;
const enc = encodeURIComponent;
async function get(node, path, options) {
  const res = await httpRequest(`${node.url}${path}`, options);
  assert.ok(res.status < 300, `${path}: ${res.status} ${res.body}`);
  return res.json();
}

test('presence state set on one node: getState, hereNow and a state-change on the other', { timeout: 60_000 }, async () => {
  const ch = name('room');
  const feed = `${ch}-pnpres`;
  // A's poll of the feed, from a cursor taken before anything happened.
  const cursor = (await get(a, `/v2/subscribe/demo/${enc(feed)}/0?uuid=watcher`)).t.t;
  await get(b, `/v2/presence/sub-key/demo/channel/${enc(ch)}/heartbeat?uuid=ann&heartbeat=60`);
  await get(b, `/v2/presence/sub-key/demo/channel/${enc(ch)}/uuid/ann/data?uuid=ann&state=${enc('{"mood":"ok"}')}`);

  const state = await waitFor(async () => {
    const r = await get(a, `/v2/presence/sub-key/demo/channel/${enc(ch)}/uuid/ann?uuid=watcher`);
    return r.payload.mood && r.payload;
  }, { message: 'the state on node a' });
  assert.deepEqual(state, { mood: 'ok' });
  const here = await get(a, `/v2/presence/sub-key/demo/channel/${enc(ch)}?state=1&uuid=watcher`);
  assert.deepEqual(here.uuids, [{ uuid: 'ann', state: { mood: 'ok' } }]);

  const events = [];
  let tt = cursor;
  await waitFor(async () => {
    const r = await get(a, `/v2/subscribe/demo/${enc(feed)}/0?uuid=watcher&tt=${tt}&tr=1`);
    tt = r.t.t;
    events.push(...r.m.map((m) => m.d));
    return events.some((e) => e.action === 'state-change');
  }, { timeout: 30_000, message: 'a state-change on node a' });
  assert.deepEqual(events.map((e) => e.action), ['join', 'state-change']);
  assert.deepEqual(events[1].data, { mood: 'ok' });
  assert.equal(events[1].uuid, 'ann');

  await get(b, `/v2/presence/sub-key/demo/channel/${enc(ch)}/leave?uuid=ann`);
  await waitFor(async () => {
    const r = await get(a, `/v2/presence/sub-key/demo/channel/${enc(ch)}/uuid/ann?uuid=watcher`);
    return Object.keys(r.payload).length === 0;
  }, { message: 'the state gone with its uuid on node a' });
});

test('a channel group made on one node is the group of the other: listing and subscribe', { timeout: 60_000 }, async () => {
  const g = name('g');
  const [x, y] = [name('ch'), name('ch')];
  await get(a, `/v1/channel-registration/sub-key/demo/channel-group/${g}?add=${enc(`${x},${y}`)}&uuid=admin`);
  const listed = await get(b, `/v1/channel-registration/sub-key/demo/channel-group/${g}?uuid=admin`);
  assert.deepEqual(listed.payload, { channels: [x, y].sort(), group: g });

  const cursor = (await get(b, `/v2/subscribe/demo/,/0?channel-group=${g}&uuid=reader`)).t.t;
  const poll = get(b, `/v2/subscribe/demo/,/0?channel-group=${g}&uuid=reader&tt=${cursor}&tr=1`);
  await get(a, `/publish/demo/demo/0/${enc(y)}/0/${enc('"hi"')}?uuid=writer`);
  const got = (await poll).m;
  assert.equal(got.length, 1);
  assert.equal(got[0].c, y);
  assert.equal(got[0].b, g);
  assert.equal(got[0].d, 'hi');
});

test('a wildcard subscriber on one node gets what is published on the other', { timeout: 60_000 }, async () => {
  const p = name('wc');
  const cursor = (await get(b, `/v2/subscribe/demo/${p}.*/0?uuid=reader`)).t.t;
  const poll = get(b, `/v2/subscribe/demo/${p}.*/0?uuid=reader&tt=${cursor}&tr=1`);
  await get(a, `/publish/demo/demo/0/${enc(`${p}.x.y`)}/0/${enc('"far"')}?uuid=writer`);
  const got = (await poll).m;
  assert.equal(got.length, 1);
  assert.equal(got[0].c, `${p}.x.y`);
  assert.equal(got[0].b, `${p}.*`);
  assert.equal(got[0].d, 'far');
});

test('a message action added on one node is read, and its event heard, on the other', { timeout: 60_000 }, async () => {
  const ch = name('acts');
  const sent = await get(a, `/publish/demo/demo/0/${enc(ch)}/0/${enc('"m"')}?uuid=writer`);
  const cursor = (await get(b, `/v2/subscribe/demo/${enc(ch)}/0?uuid=reader`)).t.t;
  const poll = get(b, `/v2/subscribe/demo/${enc(ch)}/0?uuid=reader&tt=${cursor}&tr=1`);
  const added = await get(a, `/v1/message-actions/demo/channel/${enc(ch)}/message/${sent[2]}?uuid=ann`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'reaction', value: 'ok' }),
  });
  const event = (await poll).m[0];
  assert.equal(event.e, 3);
  assert.equal(event.i, 'ann');
  assert.equal(event.d.event, 'added');
  assert.equal(event.d.data.actionTimetoken, added.data.actionTimetoken);
  const listed = await get(b, `/v1/message-actions/demo/channel/${enc(ch)}?uuid=reader`);
  assert.deepEqual(listed.data.map((x) => x.value), ['ok']);
});

test('messages deleted through one node are gone from the other, which had them loaded', { timeout: 60_000 }, async () => {
  const ch = name('del');
  const tts = [];
  for (let i = 1; i <= 3; i++) tts.push((await get(a, `/publish/demo/demo/0/${enc(ch)}/0/${enc(`"m${i}"`)}?uuid=w`))[2]);
  const messages = async (node) =>
    (await get(node, `/v3/history/sub-key/demo/channel/${enc(ch)}?uuid=r`)).channels[ch]?.map((m) => m.message) ?? [];
  await waitFor(async () => (await messages(b)).length === 3, { message: 'node b has loaded all three' });
  const token = signToken({ sub: 'editor' }, 'c1'.repeat(32));  // the cluster's secret (lib/cluster.mjs)
  await get(a, `/v3/history/sub-key/demo/channel/${enc(ch)}?start=${tts[0]}&end=${tts[1]}&auth=${token}`, { method: 'DELETE' });
  assert.deepEqual(await messages(a), ['m1', 'm3']);
  await waitFor(async () => (await messages(b)).length === 2, { message: 'm2 gone from node b' });
  assert.deepEqual(await messages(b), ['m1', 'm3']);
});

test('App Context set on one node is read, and its event heard, on the other', { timeout: 60_000 }, async () => {
  const ch = name('ctx');
  const cursor = (await get(b, `/v2/subscribe/demo/${enc(ch)}/0?uuid=reader`)).t.t;
  const poll = get(b, `/v2/subscribe/demo/${enc(ch)}/0?uuid=reader&tt=${cursor}&tr=1`);
  await get(a, `/v2/objects/demo/channels/${enc(ch)}?uuid=ann&include=custom`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Shared', custom: { n: 1 } }),
  });
  const event = (await poll).m[0];
  assert.equal(event.e, 2);
  assert.deepEqual([event.d.source, event.d.event, event.d.type, event.d.data.name], ['objects', 'set', 'channel', 'Shared']);
  const got = await get(b, `/v2/objects/demo/channels/${enc(ch)}?uuid=reader&include=custom`);
  assert.deepEqual(got.data.custom, { n: 1 });
});

test('a token granted on one node works on the other, and its revocation reaches it', { timeout: 60_000 }, async () => {
  const ch = name('pam');
  const boss = pubnubClient(PubNub, a, 'boss', { secretKey: SECRET_KEY });
  const user = pubnubClient(PubNub, b, 'user');
  try {
    const token = await boss.pn.grantToken({ ttl: 5, resources: { channels: { [ch]: { write: true } } } });
    user.pn.setToken(token);
    await user.pn.publish({ channel: ch, message: 'allowed' });
    await boss.pn.revokeToken(token);
    const refusedOnB = await waitFor(async () => {
      try {
        await user.pn.publish({ channel: ch, message: 'after the revocation' });
        return false;
      } catch (e) {
        return e.status?.statusCode === 403;
      }
    }, { timeout: 15_000, interval: 250, message: 'the revocation on node b' });
    assert.ok(refusedOnB);
  } finally {
    boss.stop();
    user.stop();
  }
});
