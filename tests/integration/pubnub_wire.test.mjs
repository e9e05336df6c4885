// PubNub compatibility at the wire level (PROTOCOL §7, ../shared/PUBNUB.md): the exact answers the SDK
// parses, the pitfalls that silently break it (region, no "e" on messages, string timetokens, JSON on
// every answer), CORS, long-poll behaviour (handshake at once, catch-up, timeout, 100 per answer, clients
// that go away, thousands of polls without blocking publishers), keys, tokens and the -pnpres feed.

import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, httpRequest, runToExit, sleep, startServer, tmpDir, waitFor } from './lib/server.mjs';

const CONFIG = `
[pubnub]
presence_timeout = 2
subscribe_timeout = 2

[namespaces.mem]
durable = false

[namespaces.priv]
anonymous = false
`;

let server;
let dataDir;
before(async () => {
  dataDir = tmpDir('rtsync-pnw-');
  server = await startServer({ config: CONFIG, dataDir });
});
after(cleanupAll);

let unique = 0;
const name = (prefix) => `${prefix}-${process.pid}-${++unique}`;
const enc = (v) => encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v));  // names; JSON otherwise
const json = (v) => encodeURIComponent(JSON.stringify(v));                              // a message

async function get(path, opts = {}) {
  const res = await httpRequest(`${server.url}${path}`, opts);
  assert.match(res.headers['content-type'] ?? '', /json/, `JSON content type for ${opts.method ?? 'GET'} ${path}`);
  assert.equal(res.headers['access-control-allow-origin'], '*', `CORS for ${path}`);
  return { status: res.status, headers: res.headers, body: res.json() };
}

const publish = (ch, msg, query = '') => get(`/publish/demo/demo/0/${enc(ch)}/0/${json(msg)}?uuid=wire${query}`);
const handshake = async (chs, query = '') => (await get(`/v2/subscribe/demo/${chs.map(enc).join(',')}/0?uuid=wire${query}`)).body;
const receive = (chs, tt, query = '', opts) => get(`/v2/subscribe/demo/${chs.map(enc).join(',')}/0?tt=${tt}&tr=1&uuid=wire${query}`, opts);

// A long poll whose request can be dropped by the client.
function pendingPoll(path, srv = server) {
  const req = http.request(`${srv.url}${path}`, { agent: false });
  const done = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d) => { text += d; }).on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    req.on('error', reject);
  });
  req.end();
  return { done, abort: () => req.destroy() };
}

describe('answers', () => {
  test('time is a one-element array with a 17-digit timetoken', async () => {
    const { status, body } = await get('/time/0?uuid=x&pnsdk=test');
    assert.equal(status, 200);
    assert.equal(body.length, 1);
    assert.match(String(body[0]), /^\d{17}$/);
    assert.ok(Math.abs(body[0] / 1e4 - Date.now()) < 60_000, 'timetokens are 100-ns ticks since the epoch');
  });

  test('publish answers [1,"Sent","<timetoken string>"]', async () => {
    const { status, body } = await publish(name('p'), { a: 1 });
    assert.equal(status, 200);
    assert.equal(body[0], 1);
    assert.equal(body[1], 'Sent');
    assert.match(body[2], /^\d{17}$/);
  });

  test('handshake answers at once: string cursor, non-zero region, no messages', async () => {
    const ch = name('hs');
    await publish(ch, 'old');
    const t0 = Date.now();
    const hs = await handshake([ch]);
    assert.ok(Date.now() - t0 < 1000);
    assert.match(hs.t.t, /^\d{17}$/);
    assert.notEqual(hs.t.r, 0);
    assert.deepEqual(hs.m, []);
    // Also without tt=0 being "0": the legacy first request sends tt=0.
    const legacy = await get(`/v2/subscribe/demo/${ch}/0?tt=0&uuid=wire&heartbeat=300`);
    assert.deepEqual(legacy.body.m, []);
  });

  test('envelopes: "c", "b", "d", "i", "p", "k", "u", "cmt"; no "e" on messages, "e":1 on signals', async () => {
    const ch = name('env');
    const hs = await handshake([ch]);
    await publish(ch, { text: 'hi' }, `&meta=${enc({ m: 1 })}&custom_message_type=chat-text`);
    await get(`/signal/demo/demo/0/${ch}/0/${json('typing')}?uuid=sig`);
    const { body } = await receive([ch], hs.t.t);
    assert.equal(body.m.length, 2);
    const [msg, sig] = body.m;
    assert.equal('e' in msg, false, 'an explicit "e":0 would be read as a file event');
    assert.equal(msg.c, ch);
    assert.equal(msg.b, ch);
    assert.deepEqual(msg.d, { text: 'hi' });
    assert.equal(msg.i, 'wire');
    assert.equal(msg.k, 'demo');
    assert.deepEqual(msg.u, { m: 1 });
    assert.equal(msg.cmt, 'chat-text');
    assert.match(msg.p.t, /^\d{17}$/);
    assert.notEqual(msg.p.r, 0);
    assert.equal(sig.e, 1);
    assert.equal(sig.d, 'typing');
    assert.equal(sig.i, 'sig');
    assert.equal(body.t.t, sig.p.t, 'the cursor is the newest timetoken answered');
    assert.ok(BigInt(sig.p.t) > BigInt(msg.p.t));
  });

  test('errors and APIs rtsync does not offer answer JSON, never HTML', async () => {
    const cases = [
      ['/v2/objects/demo/uuids/u', 404],  // App Context: no such uuid
      ['/v3/objects/demo/uuids', 404],
      ['/v1/files/demo/channels/c/nothing', 400],
      ['/v1/push/sub-key/demo/devices/x', 400],
      ['/v2/auth/grant/sub-key/demo', 400],
      ['/v3/pam/demo/grant', 403],  // Access Manager is off without [pubnub] secret_key
      ['/subscribe/demo/c/0', 400],  // subscribe v1 without its timetoken
      ['/v2/subscribe/demo/bad%20name/0', 400],
      ['/publish/demo/demo/0/bad%20name/0/1', 400],
      ['/publish/demo/demo/0/c/0/not-json', 400],
      ['/publish/demo/demo/0/c/0/%7B%22n%22%3A1e999%7D', 400],
      ['/v2/history/sub-key/demo/channel/bad%20name', 400],
      ['/v3/history/sub-key/demo/channel/bad%20name', 400],
      ['/v3/history/sub-key/demo/message-counts/c', 400],
      ['/v2/presence/sub-key/demo/channel/c/heartbeat', 400],
      ['/v2/nothing-here', 404],
      ['/v3/history/sub-key/demo/channel/c?start=soon', 400],
    ];
    for (const [path, status] of cases) {
      const res = await get(path);
      assert.equal(res.status, status, `${path}: ${JSON.stringify(res.body)}`);
      const b = res.body;
      assert.ok(Array.isArray(b) ? b[0] === 0 : b.error === true || b.status >= 400, `${path}: PubNub error shape`);
    }
    // deleteMessages without a token (pubnub_delete.test.mjs has the rest).
    const del = await get('/v3/history/sub-key/demo/channel/c?start=1&end=2', { method: 'DELETE' });
    assert.equal(del.status, 403);
    assert.equal(del.body.error, true);
    const post = await get('/time/0', { method: 'POST', body: '' });
    assert.equal(post.status, 405);
  });

  test('CORS preflight for POST publish and DELETE', async () => {
    for (const [method, path] of [['POST', '/publish/demo/demo/0/c/0'], ['DELETE', '/v3/history/sub-key/demo/channel/c']]) {
      const res = await get(path, {
        method: 'OPTIONS',
        headers: { Origin: 'http://elsewhere.example', 'Access-Control-Request-Method': method,
                   'Access-Control-Request-Headers': 'content-type,content-encoding' },
      });
      assert.equal(res.status, 200);
      assert.match(res.headers['access-control-allow-methods'], new RegExp(method));
      assert.match(res.headers['access-control-allow-headers'], /content-encoding/i);
    }
  });

  test('POST publish: zlib, gzip and plain bodies; a corrupt one is refused', async () => {
    const ch = name('post');
    const hs = await handshake([ch]);
    const send = (body, encoding) => get(`/publish/demo/demo/0/${ch}/0?uuid=p`, {
      method: 'POST', body, headers: { 'Content-Type': 'application/json', ...(encoding ? { 'Content-Encoding': encoding } : {}) },
    });
    assert.equal((await send(zlib.deflateSync(JSON.stringify({ z: 'zlib ✓' })), 'deflate')).status, 200);
    assert.equal((await send(zlib.gzipSync(JSON.stringify({ z: 'gzip' })), 'gzip')).status, 200);
    assert.equal((await send(JSON.stringify({ z: 'plain' }))).status, 200);
    const bad = await send(Buffer.from('definitely not zlib'), 'deflate');
    assert.equal(bad.status, 400);
    assert.equal(bad.body[0], 0);
    const bomb = await send(zlib.deflateSync(JSON.stringify('z'.repeat(200_000))), 'deflate');
    assert.equal(bomb.status, 413);
    assert.deepEqual(bomb.body, [0, 'Request Entity Too Large']);
    const { body } = await receive([ch], hs.t.t);
    assert.deepEqual(body.m.map((e) => e.d), [{ z: 'zlib ✓' }, { z: 'gzip' }, { z: 'plain' }]);
  });
});

describe('long polls', () => {
  test('a receive waits, and the first publication answers it', async () => {
    const ch = name('lp');
    const hs = await handshake([ch, 'other']);
    const poll = pendingPoll(`/v2/subscribe/demo/other,${ch}/0?tt=${hs.t.t}&tr=1&uuid=lp`);
    await sleep(700);
    const ws = await Client.connect(server.wsUrl);
    const t0 = Date.now();
    await ws.call('pub', { ch, data: { native: true } });
    const { body } = await poll.done;
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(body.m.length, 1);
    assert.deepEqual(body.m[0].d, { native: true });
    assert.equal(body.m[0].i, ws.hello.user);
    assert.equal(body.t.t, body.m[0].p.t);
    await ws.close();
  });

  test('an idle receive answers empty with the same cursor after subscribe_timeout', async () => {
    const ch = name('idle');
    const hs = await handshake([ch]);
    const t0 = Date.now();
    const { body } = await receive([ch], hs.t.t);
    const took = Date.now() - t0;
    assert.ok(took >= 1800 && took < 5000, `answered after ${took} ms (timeout 2 s)`);
    assert.deepEqual(body, { t: { t: hs.t.t, r: 1 }, m: [] });
  });

  test('catch-up from an old cursor, at most 100 messages per answer, across channels in order', async () => {
    const a = `mem:${name('many')}`;
    const b = name('many');
    const hs = await handshake([a, b]);
    const ws = await Client.connect(server.wsUrl);
    const sent = [];
    for (let i = 0; i < 150; i++) {
      const ch = i % 3 === 0 ? b : a;
      sent.push([ch, i]);
      await ws.call('pub', { ch, data: i });
    }
    await ws.close();
    const first = (await receive([a, b], hs.t.t)).body;
    assert.equal(first.m.length, 100);
    const second = (await receive([a, b], first.t.t)).body;
    assert.equal(second.m.length, 50);
    const all = [...first.m, ...second.m];
    assert.deepEqual(all.map((e) => [e.c, e.d]), sent, 'every message once, in publication order');
    const tts = all.map((e) => BigInt(e.p.t));
    for (let i = 1; i < tts.length; i++) assert.ok(tts[i] > tts[i - 1]);
    assert.equal(first.t.t, first.m[99].p.t);
  });

  test('a client that drops its long poll is not kept present', async () => {
    const ch = name('drop');
    await handshake([ch], '&heartbeat=60');
    const hs = await handshake([ch]);
    const poll = pendingPoll(`/v2/subscribe/demo/${ch}/0?tt=${hs.t.t}&tr=1&uuid=dropper`);
    poll.done.catch(() => {});
    await waitFor(async () => (await get(`/v2/presence/sub-key/demo/channel/${ch}`)).body.uuids.includes('dropper'),
      { message: 'dropper present' });
    poll.abort();
    // The window is 2 s from the moment the poll ended (far less than the poll's own 2 s + 2 s).
    const t0 = Date.now();
    await waitFor(async () => !(await get(`/v2/presence/sub-key/demo/channel/${ch}`)).body.uuids.includes('dropper'),
      { timeout: 10_000, interval: 100, message: 'dropper timed out' });
    assert.ok(Date.now() - t0 < 5000, `timed out after ${Date.now() - t0} ms (window 2 s, poll timeout 2 s)`);
  });

  test('hundreds of pending long polls do not hold back publishing', async () => {
    // Its own server, with the default 280 s long polls: none of them may time out meanwhile.
    const crowd = await startServer({ config: '[namespaces.mem]\ndurable = false\n' });
    const ch = `mem:${name('crowd')}`;
    const at = (path) => httpRequest(`${crowd.url}${path}`).then((r) => r.json());
    const hs = await at(`/v2/subscribe/demo/${ch}/0`);
    const n = 300;
    const polls = [];
    for (let i = 0; i < n; i++) polls.push(pendingPoll(`/v2/subscribe/demo/${ch}/0?tt=${hs.t.t}&tr=1&uuid=u${i}`, crowd));
    await waitFor(async () => (await at(`/v2/presence/sub-key/demo/channel/${ch}?disable_uuids=1`)).occupancy === n,
      { message: `${n} polls pending`, interval: 50 });
    const t0 = Date.now();
    assert.equal((await at(`/publish/demo/demo/0/${ch}/0/${json('to everyone')}`))[1], 'Sent');
    const answers = await Promise.all(polls.map((p) => p.done));
    assert.ok(Date.now() - t0 < 5000, `all answered within ${Date.now() - t0} ms`);
    for (const a of answers) assert.deepEqual(a.body.m.map((e) => e.d), ['to everyone']);
    await crowd.stop();
  });
});

describe('presence', () => {
  test('heartbeat joins, leave leaves, the -pnpres feed tells native and PubNub subscribers', async () => {
    const ch = name('feed');
    const ws = await Client.connect(server.wsUrl);
    await ws.call('sub', { ch: `${ch}-pnpres` });
    const hs = await handshake([`${ch}-pnpres`]);
    const hb = await get(`/v2/presence/sub-key/demo/channel/${ch}/heartbeat?heartbeat=60&uuid=hb-user`);
    assert.deepEqual(hb.body, { status: 200, message: 'OK', service: 'Presence' });
    const join = await ws.next((o) => o.op === 'msg' && o.ch === `${ch}-pnpres`);
    assert.deepEqual({ ...join.data, timestamp: 0 }, { action: 'join', timestamp: 0, uuid: 'hb-user', occupancy: 1 });
    assert.deepEqual((await get('/v2/presence/sub-key/demo/uuid/hb-user')).body.payload.channels, [ch]);
    const lv = await get(`/v2/presence/sub-key/demo/channel/${ch}/leave?uuid=hb-user`);
    assert.deepEqual(lv.body, { status: 200, message: 'OK', action: 'leave', service: 'Presence' });
    const leave = await ws.next((o) => o.op === 'msg' && o.ch === `${ch}-pnpres`);
    assert.equal(leave.data.action, 'leave');
    assert.equal(leave.data.occupancy, 0);
    const { body } = await receive([`${ch}-pnpres`], hs.t.t);
    assert.deepEqual(body.m.map((e) => [e.c, e.d.action, 'e' in e]), [[`${ch}-pnpres`, 'join', false], [`${ch}-pnpres`, 'leave', false]]);
    // The feed is the server's: nobody publishes there.
    assert.equal((await publish(`${ch}-pnpres`, 'x')).status, 403);
    assert.equal((await ws.request('pub', { ch: `${ch}-pnpres`, data: 1 })).error.code, 'permission_denied');
    await ws.close();
  });

  test('a heartbeat timeout after the window, shortened by the client\'s heartbeat', async () => {
    const ch = name('hbt');
    const t0 = Date.now();
    await get(`/v2/presence/sub-key/demo/channel/${ch}/heartbeat?heartbeat=1&uuid=short`);
    await get(`/v2/presence/sub-key/demo/channel/${ch}/heartbeat?heartbeat=300&uuid=long`);
    const here = (await get(`/v2/presence/sub-key/demo/channel/${ch}?state=1`)).body;
    assert.deepEqual(here.uuids, [{ uuid: 'long' }, { uuid: 'short' }]);
    const uuids = async () => (await get(`/v2/presence/sub-key/demo/channel/${ch}`)).body.uuids;
    await waitFor(async () => !(await uuids()).includes('short'), { interval: 50, message: 'short timed out' });
    const first = Date.now() - t0;
    assert.ok(first >= 900, `a 1 s window, gone after ${first} ms`);
    if (first < 1900) assert.deepEqual(await uuids(), ['long'], 'the other uuid has the 2 s window of the config');
    await waitFor(async () => (await uuids()).length === 0, { interval: 50, message: 'long timed out' });
    const second = Date.now() - t0;
    assert.ok(second >= 1900, `the config's 2 s window (heartbeat=300 asked for more), gone after ${second} ms`);
  });

  test('where_now shows only the channels the caller may subscribe to', async () => {
    const { stdout } = await runToExit(['token', '--user', 'pn-where', '--data', dataDir]);
    const jwt = stdout.trim();
    const open = name('where-open');
    const priv = `priv:${name('where')}`;
    const hb = await get(`/v2/presence/sub-key/demo/channel/${enc(priv)},${enc(open)}/heartbeat?uuid=pn-where&auth=${jwt}`);
    assert.equal(hb.status, 200);
    const anonymous = (await get('/v2/presence/sub-key/demo/uuid/pn-where')).body;
    assert.deepEqual(anonymous.payload.channels, [open], 'an anonymous caller does not learn the private channel');
    const withToken = (await get(`/v2/presence/sub-key/demo/uuid/pn-where?auth=${jwt}`)).body;
    assert.deepEqual(withToken.payload.channels.sort(), [open, priv].sort());
    await get(`/v2/presence/sub-key/demo/channel/${enc(priv)},${enc(open)}/leave?uuid=pn-where&auth=${jwt}`);
  });

  test('a heartbeat, leave, here_now or history names at most limits.max_subscriptions channels', async () => {
    const small = await startServer({ config: '[limits]\nmax_subscriptions = 3\n' });
    const req = async (path) => {
      const r = await httpRequest(`${small.url}${path}`);
      return { status: r.status, body: r.json() };
    };
    const four = ['a', 'b', 'c', 'd'].map((c) => name(c)).join(',');
    const three = four.split(',').slice(0, 3).join(',');
    for (const path of [`/v2/presence/sub-key/demo/channel/${four}/heartbeat?uuid=many`,
                        `/v2/presence/sub-key/demo/channel/${four}/leave?uuid=many`,
                        `/v2/presence/sub-key/demo/channel/${four}`,
                        `/v3/history/sub-key/demo/channel/${four}`]) {
      const r = await req(path);
      assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
      assert.match(JSON.stringify(r.body), /Too many channels/);
    }
    assert.equal((await req(`/v2/presence/sub-key/demo/channel/${three}/heartbeat?uuid=many`)).status, 200);
    const here = (await req(`/v2/presence/sub-key/demo/channel/${three}`)).body;
    assert.equal(here.payload.total_occupancy, 3, 'the heartbeat within the limit joined all three');
    await small.stop();
  });
});

describe('keys and tokens', () => {
  test('configured keys are required; others are refused with PubNub\'s error', async () => {
    const keyed = await startServer({ config: '[pubnub]\npublish_key = "pub-c-1"\nsubscribe_key = "sub-c-1"\n' });
    const req = async (path) => {
      const r = await httpRequest(`${keyed.url}${path}`);
      assert.match(r.headers['content-type'], /json/);
      return { status: r.status, body: r.json() };
    };
    assert.equal((await req('/publish/pub-c-1/sub-c-1/0/k/0/1')).status, 200);
    assert.deepEqual(await req('/publish/demo/sub-c-1/0/k/0/1'), {
      status: 400, body: { message: 'Invalid Publish Key', error: true, service: 'Access Manager', status: 400 } });
    assert.equal((await req('/publish/pub-c-1/demo/0/k/0/1')).body.message, 'Invalid Subscribe Key');
    assert.equal((await req('/v2/subscribe/demo/k/0')).body.message, 'Invalid Subscribe Key');
    assert.equal((await req('/v2/history/sub-key/demo/channel/k')).status, 400);
    assert.equal((await req('/v2/subscribe/sub-c-1/k/0')).status, 200);
    await keyed.stop();
  });

  test('an rtsync token in PubNub\'s auth parameter opens token-only namespaces', async () => {
    const { code, stdout } = await runToExit(['token', '--user', 'pn-alice', '--data', dataDir]);
    assert.equal(code, 0);
    const jwt = stdout.trim();
    const ch = `priv:${name('room')}`;
    assert.deepEqual((await publish(ch, 1)).body, [0, 'Forbidden']);
    assert.equal((await get(`/v2/subscribe/demo/${ch}/0?uuid=x`)).status, 403);
    const ok = await publish(ch, 2, `&auth=${jwt}`);
    assert.equal(ok.status, 200);
    const h = await get(`/v3/history/sub-key/demo/channel/${enc(ch)}?auth=${jwt}`);
    assert.deepEqual(h.body.channels[ch].map((m) => [m.message, m.uuid]), [[2, 'wire']]);
    const forged = await publish(ch, 3, `&auth=${jwt.slice(0, -4)}AAAA`);
    assert.equal(forged.status, 403);
    assert.equal(forged.body.error, true);
    // A PAM-style auth key that is no JWT is ignored, as PubNub ignores it without Access Manager.
    assert.equal((await publish(name('open'), 4, '&auth=some-pam-key')).status, 200);
  });
});

test('durable history and timetokens survive a restart; a receive with an old cursor catches up', async () => {
  const ch = name('restart');
  const mem = `mem:${name('restart')}`;
  const hs = await handshake([ch, mem]);
  const tts = [];
  for (const m of ['a', 'b']) tts.push((await publish(ch, m)).body[2]);
  await publish(mem, 'gone');
  assert.equal(await server.stop(), 0);
  server = await startServer({ config: CONFIG, dataDir });
  tts.push((await publish(ch, 'c')).body[2]);
  assert.ok(BigInt(tts[2]) > BigInt(tts[1]));
  const { body } = await receive([ch, mem], hs.t.t);
  assert.deepEqual(body.m.map((e) => [e.d, e.p.t]), [['a', tts[0]], ['b', tts[1]], ['c', tts[2]]],
    'the in-memory channel lost its history; the durable one kept its timetokens');
  const counts = (await get(`/v3/history/sub-key/demo/message-counts/${ch}?timetoken=${tts[0]}`)).body;
  assert.deepEqual(counts.channels, { [ch]: 2 });
});
