// What the PubNub JavaScript SDK 3.x (2015: PUBNUB.init, subscribe({channel, message, connect, presence}))
// sends, at the wire level (docs/pubnub.md, PROTOCOL §7): subscribe v1
// (/subscribe/{sub}/{channels}/{callback}/{tt}) with its answer [[messages],"tt"(,"channel,…")], the
// handshake at once and the long poll, -pnpres events, JSONP, the `sub_key` presence paths and their
// answers. The SDK itself runs in Chromium in tests/e2e/pubnub_sdk3_browser.test.mjs.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanupAll, cookiePair, httpRequest, startServer, uidSetCookie } from './lib/server.mjs';

const CONFIG = `
[pubnub]
presence_timeout = 5
subscribe_timeout = 2
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(cleanupAll);

let unique = 0;
const name = (prefix) => `${prefix}-${process.pid}-${++unique}`;
// SDK 3 encodes the joined list: encode(channels) with channels = 'a,a-pnpres'.
const list = (chs) => encodeURIComponent(chs.join(','));

async function get(path, opts = {}) {
  const res = await httpRequest(`${server.url}${path}`, opts);
  return { status: res.status, headers: res.headers, text: res.body, body: /json/.test(res.headers['content-type']) ? res.json() : undefined };
}
const publish = (ch, msg, uuid = 'pub3') =>
  get(`/publish/demo/demo/0/${encodeURIComponent(ch)}/0/${encodeURIComponent(JSON.stringify(msg))}?uuid=${uuid}&pnsdk=PubNub-JS-Web%2F3.7.1`);
const sub1 = (chs, tt, query = '') => get(`/subscribe/demo/${list(chs)}/0/${tt}?uuid=u3&pnsdk=PubNub-JS-Web%2F3.7.1${query}`);

describe('subscribe v1', () => {
  test('the handshake (tt 0) answers at once with [[],"tt"]', async () => {
    const ch = name('hs');
    await publish(ch, 'before');
    const t0 = Date.now();
    const { status, body, headers } = await sub1([ch], 0);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(status, 200);
    assert.match(headers['content-type'], /json/);
    assert.equal(headers['access-control-allow-origin'], '*');
    assert.deepEqual(body[0], []);
    assert.equal(typeof body[1], 'string');
    assert.match(body[1], /^\d{17}$/);
    assert.equal(body.length, 2, 'one channel: no channel list');
  });

  test('one channel: [[messages],"tt"], the cursor is the newest timetoken', async () => {
    const ch = name('one');
    const [, tt] = (await sub1([ch], 0)).body;
    const a = await publish(ch, { text: 'a' });
    const b = await publish(ch, 'b');
    const { body } = await sub1([ch], tt);
    assert.deepEqual(body, [[{ text: 'a' }, 'b'], b.body[2]]);
    assert.ok(BigInt(a.body[2]) < BigInt(b.body[2]));
  });

  test('a receive long-polls until a message, and answers empty after the timeout', async () => {
    const ch = name('lp');
    const [, tt] = (await sub1([ch], 0)).body;
    const pending = sub1([ch], tt);
    await new Promise((r) => setTimeout(r, 300));
    await publish(ch, 'late');
    assert.deepEqual((await pending).body[0], ['late']);
    const t0 = Date.now();
    const idle = await sub1([ch], (await sub1([ch], 0)).body[1]);
    assert.ok(Date.now() - t0 >= 1500, 'waited for subscribe_timeout');
    assert.deepEqual(idle.body[0], []);
  });

  test('several channels: a third element names the channel of each message; presence on CH-pnpres', async () => {
    const a = name('multi-a');
    const b = name('multi-b');
    const chs = [a, `${a}-pnpres`, b];
    const hs = await sub1(chs, 0);
    assert.equal(hs.body.length, 3);
    assert.deepEqual(hs.body[0], []);
    await publish(b, 'to b');
    await publish(a, 'to a');
    // The uuid's own join (it was absent before the handshake), then the two messages, oldest first.
    let got = [];
    let where = [];
    let tt = hs.body[1];
    while (got.length < 3) {
      const { body } = await sub1(chs, tt);
      got = got.concat(body[0]);
      where = where.concat(body[0].length ? body[2].split(',') : []);
      tt = body[1];
    }
    assert.deepEqual(where, [`${a}-pnpres`, b, a]);
    assert.equal(got[0].action, 'join');
    assert.equal(got[0].uuid, 'u3');
    assert.equal(got[0].occupancy, 1);
    assert.deepEqual(got.slice(1), ['to b', 'to a']);
  });

  test('channel lists whose comma is percent-encoded are decoded before they are split', async () => {
    const a = name('enc-a');
    const b = name('enc-b');
    const path = `/subscribe/demo/${a}%2C${b}/0/0?uuid=u3`;
    const { status, body } = await get(path);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.length, 3);
  });

  test('signals are not sent to SDK 3, which does not know them; the cursor still passes them', async () => {
    const ch = name('sig');
    const [, tt] = (await sub1([ch], 0)).body;
    const sig = await get(`/signal/demo/demo/0/${ch}/0/${encodeURIComponent('"typing"')}?uuid=s`);
    const { body } = await sub1([ch], tt);
    assert.deepEqual(body, [[], sig.body[2]]);
  });

  test('errors are JSON objects with "error", which SDK 3 reads as an error (not as messages)', async () => {
    const { status, body } = await get('/subscribe/demo/bad%20name/0/0?uuid=u3');
    assert.equal(status, 400);
    assert.equal(body.error, true);
    assert.equal((await get('/subscribe/demo/x/0?uuid=u3')).status, 400, 'no timetoken segment');
    assert.equal((await get('/subscribe/demo/x/0/abc?uuid=u3')).status, 400, 'a timetoken that is no number');
  });
});

describe('JSONP', () => {
  test('a callback in the path or the query wraps the answer as a script', async () => {
    const ch = name('jsonp');
    const hs = await get(`/subscribe/demo/${ch}/cb_12/0?uuid=u3`);
    assert.equal(hs.status, 200);
    assert.match(hs.headers['content-type'], /^text\/javascript/);
    const m = /^cb_12\((.*)\);$/s.exec(hs.text);
    assert.ok(m, hs.text);
    const [msgs, tt] = JSON.parse(m[1]);
    assert.deepEqual(msgs, []);
    const pub = await get(`/publish/demo/demo/0/${ch}/x7/${encodeURIComponent('"hi"')}?uuid=u3`);
    assert.match(pub.text, /^x7\(\[1,"Sent","\d{17}"\]\);$/);
    const rcv = await get(`/subscribe/demo/${ch}/PUBNUB.cb/${tt}?uuid=u3`);
    assert.match(rcv.text, /^PUBNUB\.cb\(\[\["hi"\],"\d{17}"\]\);$/);
    const time = await get('/time/t1');
    assert.match(time.text, /^t1\(\[\d{17}\]\);$/);
    const history = await get(`/v2/history/sub-key/demo/channel/${ch}?stringtoken=true&count=10&reverse=false&callback=h1`);
    assert.match(history.text, /^h1\(\[\["hi"\],"\d{17}","\d{17}"\]\);$/);
    const here = await get(`/v2/presence/sub_key/demo/channel/${ch}?uuid=u3&callback=p1`);
    assert.match(here.text, /^p1\(\{"status":200,/);
  });

  test('"0" is no callback; a callback that is not a plain name is refused', async () => {
    const plain = await get('/time/0');
    assert.match(plain.headers['content-type'], /json/);
    for (const bad of ['alert(1)', '1abc', 'a%20b', 'x'.repeat(200)]) {
      const res = await get(`/time/${bad}`);
      assert.equal(res.status, 400, bad);
      assert.match(res.headers['content-type'], /json/, 'the refusal is no script');
    }
  });

  test('a JSONP read that carries only the visitor\'s cookie, from another site, is refused', async () => {
    const ch = name('xssi');
    const cookie = cookiePair(uidSetCookie(await httpRequest(`${server.url}/healthz`)));
    const path = `/v2/history/sub-key/demo/channel/${ch}?callback=steal`;
    const cross = await get(path, { headers: { Cookie: cookie, 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Dest': 'script' } });
    assert.equal(cross.status, 403);
    assert.doesNotMatch(cross.text, /^steal\(/);
    const same = await get(path, { headers: { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Dest': 'script' } });
    assert.equal(same.status, 200);
    assert.match(same.text, /^steal\(/);
  });
});

describe('presence paths of SDK 3 (sub_key)', () => {
  test('here_now, where_now, leave, heartbeat and state answer the shapes SDK 3 reads', async () => {
    const ch = name('pres');
    await get(`/v2/presence/sub-key/demo/channel/${ch}/heartbeat?uuid=u3&heartbeat=60`);
    const one = await get(`/v2/presence/sub_key/demo/channel/${ch}?uuid=u3`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, { status: 200, message: 'OK', occupancy: 1, uuids: ['u3'], service: 'Presence' });
    const withState = await get(`/v2/presence/sub_key/demo/channel/${ch}?uuid=u3&state=1`);
    assert.deepEqual(withState.body.uuids, [{ uuid: 'u3' }], 'no state key without state');
    const all = await get('/v2/presence/sub_key/demo?uuid=u3');
    assert.equal(all.body.payload.channels[ch].occupancy, 1);
    const where = await get('/v2/presence/sub_key/demo/uuid/u3');
    assert.ok(where.body.payload.channels.includes(ch));
    const state = await get(`/v2/presence/sub-key/demo/channel/${ch}/uuid/u3`);
    assert.deepEqual(state.body, { status: 200, message: 'OK', payload: {}, uuid: 'u3', channel: ch, service: 'Presence' });
    const leave = await get(`/v2/presence/sub_key/demo/channel/${ch}/leave?uuid=u3`);
    assert.deepEqual(leave.body, { status: 200, message: 'OK', action: 'leave', service: 'Presence' });
    assert.equal((await get(`/v2/presence/sub_key/demo/channel/${ch}?uuid=u3`)).body.occupancy, 0);
  });

  test('history as SDK 3 asks for it (stringtoken, count, reverse)', async () => {
    const ch = name('hist');
    await publish(ch, { n: 1 });
    await publish(ch, { n: 2 });
    const { body } = await get(`/v2/history/sub-key/demo/channel/${ch}?stringtoken=true&count=100&reverse=false&uuid=u3`);
    assert.deepEqual(body[0], [{ n: 1 }, { n: 2 }]);
    assert.match(body[1], /^\d{17}$/);
    assert.match(body[2], /^\d{17}$/);
  });
});
