// The Server API (issue 17 item 3, docs/protocol.md section 8): /v1/api/… for the app's backend.
// Authentication only by Authorization: Bearer with an [api] key or a token with "api": true: missing or
// wrong is 401, a user's token 403, and a user's cookie or ?token= never count. Each endpoint's success
// and errors: publish (reaches a subscriber, in history when acked, server-owned channels refused),
// documents (any document whatever the rules, still validated, visible to clients, If-Match), presence,
// disconnect (closes the user's or the session's socket with 4005), tokens (work on the WebSocket; api
// tokens only by a key) and the channel list (paged).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, cookiePair, httpRequest, runToExit, startServer, tmpDir, uidSetCookie } from './lib/server.mjs';
import { NOTES, READONLY, RO_NAMESPACE, VOTES, collection, config, namespace } from './lib/config.mjs';
import { nowS, readSecret, signToken } from './lib/tokens.mjs';

const KEY = 'k'.repeat(16) + '0123456789abcdef-api';
const OTHER_KEY = 'o'.repeat(40);
const CONFIG = config(
  `[api]\nkeys = ["${OTHER_KEY}", "${KEY}"]\n`,
  RO_NAMESPACE, namespace('mem', 'durable = false'), namespace('priv', 'anonymous = false'),
  NOTES, READONLY, VOTES, collection('ballots', 'tally = { choice = [0, 1, 2] }'),
);

let server;
let secret;
let dataDir;
before(async () => {
  dataDir = tmpDir('rtsync-api-');
  server = await startServer({ config: CONFIG, dataDir });
  secret = readSecret(dataDir);
});
after(cleanupAll);

function api(method, path, { key = KEY, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key !== null) h.Authorization = `Bearer ${key}`;
  let text;
  if (body !== undefined) {
    text = typeof body === 'string' ? body : JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  return httpRequest(`${server.url}/v1/api${path}`, { method, headers: h, body: text });
}

function assertError(res, status, code, what = '') {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.body}`);
  const e = res.json().error;
  assert.ok(e, `${what}: an error body: ${res.body}`);
  assert.equal(e.code, code, `${what}: ${res.body}`);
  assert.equal(typeof e.message, 'string');
}

async function newCookie() {
  const set = uidSetCookie(await httpRequest(`${server.url}/healthz`));
  assert.ok(set);
  return cookiePair(set);
}

const userToken = (sub, extra = {}) => signToken({ sub, exp: nowS() + 600, ...extra }, secret);

describe('authentication', () => {
  test('a missing Authorization is 401 with WWW-Authenticate: Bearer', async () => {
    const res = await api('GET', '/channels', { key: null });
    assertError(res, 401, 'permission_denied', 'no key');
    assert.match(res.headers['www-authenticate'], /^Bearer/);
  });

  test('a wrong key, a key of another scheme and a garbage token are 401', async () => {
    assertError(await api('GET', '/channels', { key: KEY.slice(0, -1) + 'X' }), 401, 'permission_denied', 'wrong key');
    assertError(await api('GET', '/channels', { key: `${KEY}x` }), 401, 'permission_denied', 'longer key');
    assertError(await api('GET', '/channels', { key: null, headers: { Authorization: `Basic ${KEY}` } }),
                401, 'permission_denied', 'Basic');
    assertError(await api('GET', '/channels', { key: 'a.b.c' }), 401, 'permission_denied', 'garbage token');
    const expired = signToken({ sub: 'svc', exp: nowS() - 10, api: true }, secret);
    assertError(await api('GET', '/channels', { key: expired }), 401, 'permission_denied', 'expired api token');
  });

  test('every configured key works', async () => {
    assert.equal((await api('GET', '/channels', { key: OTHER_KEY })).status, 200);
    assert.equal((await api('GET', '/channels')).status, 200);
  });

  test("a user's cookie is never accepted, nor does the API set one", async () => {
    const cookie = await newCookie();
    // The cookie is valid: the WebSocket accepts it.
    const ws = await Client.connect(server.wsUrl, { headers: { Cookie: cookie } });
    ws.close();
    const res = await api('GET', '/channels', { key: null, headers: { Cookie: cookie } });
    assertError(res, 401, 'permission_denied', 'cookie');
    assert.equal(uidSetCookie(res), undefined, 'no rtsync_uid cookie from the Server API');
    // Not even with a key as the cookie's value, or a token in the query.
    assertError(await api('POST', '/publish', { key: null, headers: { Cookie: `rtsync_uid=${KEY}` },
                                                body: { channel: 'c', data: 1 } }), 401, 'permission_denied', 'key cookie');
  });

  test('a key or an api token in the query string is not accepted', async () => {
    const apiToken = signToken({ sub: 'svc', exp: nowS() + 600, api: true }, secret);
    for (const q of [`token=${apiToken}`, `key=${KEY}`, `access_token=${apiToken}`]) {
      const res = await httpRequest(`${server.url}/v1/api/channels?${q}`);
      assertError(res, 401, 'permission_denied', q);
    }
  });

  test("a user's token without \"api\" is 403; \"api\": false too", async () => {
    assertError(await api('GET', '/channels', { key: userToken('alice') }), 403, 'permission_denied', 'user token');
    assertError(await api('GET', '/channels', { key: userToken('alice', { api: false }) }), 403, 'permission_denied', 'api false');
  });

  test('a token with "api": true is accepted', async () => {
    const res = await api('POST', '/publish', { key: userToken('backend', { api: true }), body: { channel: 'tok', data: 1 } });
    assert.equal(res.status, 200, res.body);
    const h = await httpRequest(`${server.url}/v1/channels/tok/history`);
    assert.equal(h.json().pubs[0].from, 'backend', 'published as the token\'s sub');
  });

  test('rtsync token --api makes a token the Server API accepts; without --api it is refused', async () => {
    const withApi = await runToExit(['token', '--user', 'cron', '--api', '--data', dataDir]);
    assert.equal(withApi.code, 0, withApi.stderr);
    assert.equal((await api('GET', '/channels', { key: withApi.stdout.trim() })).status, 200);
    const plain = await runToExit(['token', '--user', 'cron', '--data', dataDir]);
    assert.equal(plain.code, 0, plain.stderr);
    assertError(await api('GET', '/channels', { key: plain.stdout.trim() }), 403, 'permission_denied', 'no --api');
  });

  test('an unknown endpoint is 404 and a wrong method 405, after authentication', async () => {
    assertError(await api('GET', '/nothing'), 404, 'not_found');
    assertError(await api('GET', '/nothing', { key: null }), 401, 'permission_denied', 'unauthenticated 404');
    assert.equal((await api('GET', '/publish')).status, 405);
  });
});

describe('publish', () => {
  test('reaches a WebSocket subscriber and is in history when acked', async () => {
    const sub = await Client.connect(server.wsUrl);
    const s = await sub.call('sub', { ch: 'news' });
    const res = await api('POST', '/publish', { body: { channel: 'news', data: { text: 'hi' } } });
    assert.equal(res.status, 200, res.body);
    const out = res.json();
    assert.equal(out.offset, s.offset + 1);
    assert.equal(out.epoch, s.epoch);
    assert.match(out.tt, /^\d+$/);
    // Acked after the commit: history (from the store's channel) already has it.
    const h = await httpRequest(`${server.url}/v1/channels/news/history`);
    assert.deepEqual(h.json().pubs.at(-1).data, { text: 'hi' });
    assert.equal(h.json().pubs.at(-1).offset, out.offset);
    const m = await sub.next((o) => o.op === 'msg' && o.ch === 'news');
    assert.deepEqual(m.data, { text: 'hi' });
    assert.equal(m.offset, out.offset);
    sub.close();
  });

  test('on channels clients may not publish to, and private namespaces', async () => {
    const ws = await Client.connect(server.wsUrl);
    const refused = await ws.request('pub', { ch: 'ro:board', data: 1 });
    assert.equal(refused.error.code, 'permission_denied', 'clients may not');
    ws.close();
    for (const channel of ['ro:board', 'priv:x']) {
      const res = await api('POST', '/publish', { body: { channel, data: 2 } });
      assert.equal(res.status, 200, `${channel}: ${res.body}`);
    }
  });

  test('on an in-memory channel: offset and epoch', async () => {
    const a = (await api('POST', '/publish', { body: { channel: 'mem:x', data: 1 } })).json();
    const b = (await api('POST', '/publish', { body: { channel: 'mem:x', data: 2 } })).json();
    assert.equal(b.offset, a.offset + 1);
    assert.equal(typeof a.epoch, 'string');
    assert.ok(a.epoch.length > 0);
    assert.equal(b.epoch, a.epoch);
  });

  test('an Idempotency-Key publishes once', async () => {
    const body = { channel: 'idem', data: 'once' };
    const first = (await api('POST', '/publish', { body, headers: { 'Idempotency-Key': 'k1' } })).json();
    const again = (await api('POST', '/publish', { body, headers: { 'Idempotency-Key': 'k1' } })).json();
    assert.equal(again.offset, first.offset);
    const h = await httpRequest(`${server.url}/v1/channels/idem/history`);
    assert.equal(h.json().pubs.length, 1);
  });

  test('errors: server-owned channels, bad bodies, bad names, undeclared namespaces', async () => {
    for (const channel of ['coll:notes', 'tally:votes', 'news-pnpres'])
      assertError(await api('POST', '/publish', { body: { channel, data: 1 } }), 403, 'permission_denied', channel);
    assertError(await api('POST', '/publish', { body: 'not json' }), 400, 'bad_request', 'not JSON');
    assertError(await api('POST', '/publish', { body: [1] }), 400, 'bad_request', 'an array');
    assertError(await api('POST', '/publish', { body: { data: 1 } }), 400, 'bad_request', 'no channel');
    assertError(await api('POST', '/publish', { body: { channel: 'x' } }), 400, 'bad_request', 'no data');
    assertError(await api('POST', '/publish', { body: { channel: 'a b', data: 1 } }), 400, 'bad_request', 'bad name');
    assertError(await api('POST', '/publish', { body: { channel: 'nope:x', data: 1 } }), 404, 'not_found', 'namespace');
    assertError(await api('POST', '/publish', { body: { channel: 'big', data: 'x'.repeat(70_000) } }),
                413, 'too_large', 'too large');
  });
});

describe('documents', () => {
  test("writes and reads another user's private document; the owner sees it", async () => {
    const cookie = await newCookie();
    const owner = await Client.connect(server.wsUrl, { headers: { Cookie: cookie } });
    const created = await owner.call('create', { coll: 'notes', data: { text: 'mine' } });
    const id = created.doc.id;
    const got = await api('GET', `/collections/notes/${id}`);
    assert.equal(got.status, 200, got.body);
    assert.equal(got.json().text, 'mine');
    assert.equal(got.headers.etag, '"1"');
    // write = "owner": only the owner, and the backend.
    const put = await api('PUT', `/collections/notes/${id}`, { body: { text: 'edited by the backend' },
                                                               headers: { 'If-Match': '"1"' } });
    assert.equal(put.status, 200, put.body);
    assert.equal(put.json()._v, 2);
    assert.equal(put.json()._owner, owner.hello.user, 'the owner stays');
    const seen = await owner.call('get', { coll: 'notes', doc: id });
    assert.equal(seen.doc.text, 'edited by the backend');
    // A stale If-Match is a conflict with the current document.
    const stale = await api('PATCH', `/collections/notes/${id}`, { body: { text: 'x' }, headers: { 'If-Match': '"1"' } });
    assert.equal(stale.status, 409);
    assert.equal(stale.json()._v, 2);
    const del = await api('DELETE', `/collections/notes/${id}`);
    assert.equal(del.status, 200, del.body);
    assertError(await api('GET', `/collections/notes/${id}`), 404, 'not_found', 'deleted');
    owner.close();
  });

  test('writes where clients may not (write = "none")', async () => {
    const res = await api('PUT', '/collections/readonly/banner', { body: { text: 'from the backend' } });
    assert.equal(res.status, 201, res.body);
    assert.equal(res.headers.location, '/v1/api/collections/readonly/banner');
    const pub = await httpRequest(`${server.url}/v1/collections/readonly/banner`);
    assert.equal(pub.json().text, 'from the backend', 'clients read it');
  });

  test("a per_user document is the user's: the user reads it as \"me\" and the tally counts it", async () => {
    const cookie = await newCookie();
    const ws = await Client.connect(server.wsUrl, { headers: { Cookie: cookie } });
    const user = ws.hello.user;
    const res = await api('PUT', `/collections/votes/${user}`, { body: { q1: 2 } });
    assert.equal(res.status, 201, res.body);
    assert.equal(res.json()._owner, user);
    const mine = await ws.call('get', { coll: 'votes', doc: 'me' });
    assert.equal(mine.doc.q1, 2);
    const { tally } = (await api('GET', '/collections/votes/_tally')).json();
    assert.equal(tally.counts.q1['2'], 1, JSON.stringify(tally));
    assertError(await api('PUT', '/collections/votes/me', { body: { q1: 1 } }), 400, 'bad_request', '"me"');
    ws.close();
  });

  test('values are validated: a bad value is refused and nothing is written', async () => {
    assertError(await api('PUT', '/collections/ballots/b1', { body: { choice: 7 } }), 400, 'invalid', 'not allowed');
    assertError(await api('PUT', '/collections/ballots/b1', { body: { other: 1 } }), 400, 'invalid', 'no such field');
    assertError(await api('PUT', '/collections/ballots/b1', { body: { _secret: 1 } }), 400, 'invalid', 'reserved');
    assertError(await api('PUT', '/collections/ballots/b1', { body: '{' }), 400, 'bad_request', 'not JSON');
    assertError(await api('GET', '/collections/ballots/b1'), 404, 'not_found', 'nothing was written');
    const { tally } = (await api('GET', '/collections/ballots/_tally')).json();
    assert.equal(tally.total, 0, JSON.stringify(tally));
    assertError(await api('GET', '/collections/nope/x'), 404, 'not_found', 'no collection');
    const ok = await api('PUT', '/collections/ballots/b1', { body: { choice: 1 } });
    assert.equal(ok.status, 201, ok.body);
    const after = (await api('GET', '/collections/ballots/_tally')).json().tally;
    assert.equal(after.total, 1);
    assert.equal(after.counts.choice['1'], 1);
  });

  test('a write reaches the change feed', async () => {
    const ws = await Client.connect(server.wsUrl);
    await ws.call('sub', { ch: 'coll:ballots' });
    await api('PUT', '/collections/ballots/b2', { body: { choice: 2 } });
    const m = await ws.next((o) => o.op === 'msg' && o.ch === 'coll:ballots');
    assert.equal(m.data.doc.id, 'b2');
    ws.close();
  });
});

describe('presence', () => {
  test('members with user, session and info, and the occupancy', async () => {
    const a = await Client.connect(server.wsUrl, { headers: { Authorization: `Bearer ${userToken('ann', { info: { name: 'Ann' } })}` } });
    const b = await Client.connect(server.wsUrl);
    await a.call('sub', { ch: 'room' });
    await b.call('sub', { ch: 'room' });
    const res = await api('GET', '/presence/room');
    assert.equal(res.status, 200, res.body);
    const p = res.json();
    assert.equal(p.sessions, 2);
    assert.equal(p.users, 2);
    const ann = p.clients.find((c) => c.user === 'ann');
    assert.deepEqual(ann, { session: a.hello.session, user: 'ann', info: { name: 'Ann' } });
    assert.ok(p.clients.some((c) => c.session === b.hello.session && c.user === b.hello.user));
    // A private namespace too, which anonymous clients may not read.
    assert.equal((await api('GET', '/presence/priv:nobody')).json().sessions, 0);
    a.close();
    b.close();
  });

  test('errors', async () => {
    assertError(await api('GET', '/presence/a%20b'), 400, 'bad_request', 'bad name');
    assertError(await api('GET', '/presence/nope:x'), 404, 'not_found', 'undeclared');
    assert.equal((await api('POST', '/presence/room')).status, 405);
  });
});

describe('disconnect', () => {
  test("closes every connection of a user with 4005, and nobody else's", async () => {
    const token = userToken('mallory');
    const m1 = await Client.connect(server.wsUrl, { headers: { Authorization: `Bearer ${token}` } });
    const m2 = await Client.connect(server.wsUrl, { headers: { Authorization: `Bearer ${token}` } });
    const other = await Client.connect(server.wsUrl);
    const res = await api('POST', '/disconnect', { body: { user: 'mallory' } });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json(), { disconnected: 2 });
    for (const c of [m1, m2]) {
      const info = await c.closed;
      assert.equal(info.code, 4005);
    }
    assert.equal((await other.call('ping')) !== undefined, true, 'others stay connected');
    other.close();
  });

  test('closes one session', async () => {
    const a = await Client.connect(server.wsUrl);
    const b = await Client.connect(server.wsUrl);
    const res = await api('POST', '/disconnect', { body: { session: a.hello.session } });
    assert.deepEqual(res.json(), { disconnected: 1 });
    assert.equal((await a.closed).code, 4005);
    await b.call('ping');
    b.close();
  });

  test('nobody to disconnect is 0; errors', async () => {
    assert.deepEqual((await api('POST', '/disconnect', { body: { user: 'nobody-here' } })).json(), { disconnected: 0 });
    assertError(await api('POST', '/disconnect', { body: {} }), 400, 'bad_request', 'neither');
    assertError(await api('POST', '/disconnect', { body: { user: 'a', session: 'b' } }), 400, 'bad_request', 'both');
    assertError(await api('POST', '/disconnect', { body: { user: '' } }), 400, 'bad_request', 'empty');
    assertError(await api('POST', '/disconnect', { body: { user: 5 } }), 400, 'bad_request', 'number');
  });
});

describe('tokens', () => {
  test('an issued token works on the WebSocket with its caps and info', async () => {
    const res = await api('POST', '/tokens', {
      body: { sub: 'carol', ttl: 120, caps: { sub: ['room*'], pub: [] }, info: { name: 'Carol' } },
    });
    assert.equal(res.status, 200, res.body);
    const { token, expires } = res.json();
    assert.ok(Math.abs(expires - (nowS() + 120)) <= 2, `expires ${expires}`);
    const ws = await Client.connect(`${server.wsUrl}?token=${token}`);
    assert.equal(ws.hello.user, 'carol');
    await ws.call('sub', { ch: 'room9' });
    assert.equal((await ws.request('pub', { ch: 'room9', data: 1 })).error.code, 'permission_denied', 'caps hold');
    assert.equal((await ws.request('sub', { ch: 'elsewhere' })).error.code, 'permission_denied');
    ws.close();
    // It is a user's token, not the backend's.
    assertError(await api('GET', '/channels', { key: token }), 403, 'permission_denied', 'issued user token');
  });

  test('api tokens: issued by a key, refused to an api token', async () => {
    const res = await api('POST', '/tokens', { body: { sub: 'worker', api: true } });
    assert.equal(res.status, 200, res.body);
    const apiToken = res.json().token;
    assert.equal((await api('GET', '/channels', { key: apiToken })).status, 200, 'the new api token works');
    assertError(await api('POST', '/tokens', { key: apiToken, body: { sub: 'worker2', api: true } }),
                403, 'permission_denied', 'an api token minting api tokens');
    const plain = await api('POST', '/tokens', { key: apiToken, body: { sub: 'dave' } });
    assert.equal(plain.status, 200, 'an api token may issue user tokens');
  });

  test('errors', async () => {
    const bad = [
      [{}, 'no sub'], [{ sub: '' }, 'empty sub'], [{ sub: 'x'.repeat(129) }, 'long sub'], [{ sub: 1 }, 'number sub'],
      [{ sub: 'a', ttl: 0 }, 'ttl 0'], [{ sub: 'a', ttl: 1.5 }, 'ttl fraction'], [{ sub: 'a', ttl: 40_000_000 }, 'ttl long'],
      [{ sub: 'a', caps: [] }, 'caps array'], [{ sub: 'a', info: 'x' }, 'info string'], [{ sub: 'a', api: 1 }, 'api number'],
      [{ sub: 'a', exp: 1 }, 'unknown member'],
    ];
    for (const [body, what] of bad) assertError(await api('POST', '/tokens', { body }), 400, 'bad_request', what);
    assertError(await api('POST', '/tokens', { body: { sub: 'a', caps: { sub: 'room' } } }), 400, 'invalid', 'caps not lists');
  });
});

describe('channels', () => {
  test('lists channels in memory with offsets and epochs, by prefix, paged', async () => {
    for (const c of ['list:a', 'list:b', 'list:c']) await api('POST', '/publish', { body: { channel: `ro:${c}`, data: 1 } });
    await api('POST', '/publish', { body: { channel: 'ro:list:b', data: 2 } });
    const all = (await api('GET', '/channels?prefix=ro:list:')).json();
    assert.deepEqual(all.channels.map((c) => c.name), ['ro:list:a', 'ro:list:b', 'ro:list:c']);
    assert.equal(all.next, undefined);
    const b = all.channels[1];
    assert.equal(b.offset, 2);
    assert.equal(b.durable, true);
    assert.equal(typeof b.epoch, 'string');
    const page1 = (await api('GET', '/channels?prefix=ro:list:&limit=2')).json();
    assert.deepEqual(page1.channels.map((c) => c.name), ['ro:list:a', 'ro:list:b']);
    assert.equal(page1.next, 'ro:list:b');
    const page2 = (await api('GET', `/channels?prefix=ro:list:&limit=2&after=${page1.next}`)).json();
    assert.deepEqual(page2.channels.map((c) => c.name), ['ro:list:c']);
    assert.equal(page2.next, undefined);
    const mem = (await api('GET', '/channels?prefix=mem:x')).json().channels[0];
    assert.equal(mem.durable, false);
  });

  test('errors', async () => {
    for (const limit of ['0', '1001', 'x'])
      assertError(await api('GET', `/channels?limit=${limit}`), 400, 'bad_request', `limit ${limit}`);
    assert.equal((await api('POST', '/channels')).status, 405);
  });
});
