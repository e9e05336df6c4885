// Tokens over the wire (issue 6, PROTOCOL §3): the same token matrix (valid, expired, no exp, wrong
// signature, another server's secret, tampered payload, alg none with and without a signature, HS384,
// RS256, garbage) on every path that takes a token: ?token= and Authorization: Bearer on the WebSocket
// upgrade, the `auth` op, and Bearer on the REST channel and collection endpoints. Then expiry while
// connected (bye 4002), refreshing with `auth` in time, and caps (missing and wrong) on each path.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, httpRequest, runToExit, sleep, startServer, tmpDir } from './lib/server.mjs';
import { TODOS } from './lib/config.mjs';
import { nowS, readSecret, signToken, tokenMatrix, upgradeStatus } from './lib/tokens.mjs';

const CONFIG = `
[namespaces.priv]
anonymous = false

${TODOS}`;

let server;
let secret;
before(async () => {
  const dataDir = tmpDir('rtsync-sec-tokens-');
  server = await startServer({ config: CONFIG, dataDir });
  secret = readSecret(dataDir);
});
after(cleanupAll);

const bearer = (token) => ({ authorization: `Bearer ${token}` });

function rest(method, path, { token, body, headers = {} } = {}) {
  return httpRequest(`${server.url}${path}`, {
    method,
    headers: { ...(token !== undefined ? bearer(token) : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// Every invalid token is refused with 401 + WWW-Authenticate: Bearer and an error body, never downgraded
// to an anonymous identity.
function assertUnauthorized(res, what) {
  assert.equal(res.status, 401, `${what}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
  assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/, `${what}: WWW-Authenticate`);
  assert.equal(res.json().error?.code, 'permission_denied', `${what}: ${res.body}`);
  assert.equal(res.headers['set-cookie'], undefined, `${what}: no anonymous cookie handed out`);
}

describe('token matrix on the WebSocket upgrade', () => {
  for (const where of ['?token=', 'Bearer']) {
    describe(where, () => {
      // The matrix is built at test time: the secret exists only once the server started.
      const names = Object.keys(tokenMatrix('x'.repeat(64), 'u'));
      for (const name of names) {
        test(name, async () => {
          const { token, valid } = tokenMatrix(secret, 'wsuser')[name];
          const opts = where === 'Bearer' ? { headers: bearer(token) } : {};
          const url = where === 'Bearer' ? server.wsUrl : `${server.wsUrl}?token=${encodeURIComponent(token)}`;
          if (valid) {
            const c = await Client.connect(url, opts);
            assert.equal(c.hello.user, 'wsuser');
            // The identity is the token's for everything: a token-only namespace works.
            await c.call('sub', { ch: 'priv:tokens' });
            await c.call('pub', { ch: 'priv:tokens', data: 1 });
            assert.equal((await c.next('msg')).from, 'wsuser');
            await c.close();
          } else {
            const res = await upgradeStatus(server.port, where === 'Bearer'
              ? { headers: bearer(token) }
              : { path: `/v1/ws?token=${encodeURIComponent(token)}` });
            assert.equal(res.status, 401, `${name}: ${res.statusLine}`);
            assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/);
            assert.equal(res.headers['set-cookie'], undefined, 'not downgraded to an anonymous identity');
            await assert.rejects(Client.connect(url, opts), /HTTP 401/);
          }
        });
      }
    });
  }

  test('a Bearer header wins over ?token= (and an invalid one is not rescued by a valid ?token=)', async () => {
    const good = signToken({ sub: 'good' }, secret);
    const other = signToken({ sub: 'other' }, secret);
    const c = await Client.connect(`${server.wsUrl}?token=${other}`, { headers: bearer(good) });
    assert.equal(c.hello.user, 'good');
    await c.close();
    const res = await upgradeStatus(server.port, { path: `/v1/ws?token=${good}`, headers: bearer('nope') });
    assert.equal(res.status, 401);
  });

  test('a valid cookie does not rescue an invalid token', async () => {
    const first = await httpRequest(`${server.url}/healthz`);
    const cookie = (first.headers['set-cookie'] ?? []).find((c) => c.startsWith('rtsync_uid='))?.split(';')[0];
    assert.ok(cookie, 'an anonymous cookie to send back');
    const res = await upgradeStatus(server.port, { headers: { cookie, ...bearer(tokenMatrix(secret, 'x').expired.token) } });
    assert.equal(res.status, 401);
  });
});

describe('token matrix in the auth op', () => {
  test('each invalid token is an error, the connection stays open and keeps its identity', async () => {
    const c = await Client.connect(server.wsUrl);
    const anon = c.hello.user;
    assert.match(anon, /^anon-/);
    for (const [name, { token, valid }] of Object.entries(tokenMatrix(secret, 'authuser'))) {
      if (valid) continue;
      const r = await c.request('auth', { token });
      assert.equal(r.error?.code, 'permission_denied', `${name}: ${JSON.stringify(r)}`);
      assert.match(r.error.message, /token/, name);
    }
    // Still anonymous: the token-only namespace refuses, a publication is from the anonymous id.
    assert.equal((await c.request('sub', { ch: 'priv:authop' })).error?.code, 'permission_denied');
    await c.call('sub', { ch: 'authop' });
    await c.call('pub', { ch: 'authop', data: 'x' });
    assert.equal((await c.next('msg')).from, anon);
    // The valid token switches the identity (no subscriptions may be held while switching).
    await c.call('unsub', { ch: 'authop' });
    assert.deepEqual(await c.call('auth', { token: tokenMatrix(secret, 'authuser').valid.token }), { user: 'authuser' });
    await c.call('sub', { ch: 'priv:authop' });
    await c.call('pub', { ch: 'priv:authop', data: 'y' });
    assert.equal((await c.next('msg')).from, 'authuser');
    assert.equal(c.closeInfo, null);
    await c.close();
  });

  test('switching users while subscribed is refused; refreshing the same user is not', async () => {
    const c = await Client.connect(`${server.wsUrl}?token=${signToken({ sub: 'sw' }, secret)}`);
    await c.call('sub', { ch: 'switch' });
    assert.equal((await c.request('auth', { token: signToken({ sub: 'sw2' }, secret) })).error?.code, 'bad_request');
    assert.deepEqual(await c.call('auth', { token: signToken({ sub: 'sw' }, secret) }), { user: 'sw' });
    await c.call('pub', { ch: 'switch', data: 1 });
    assert.equal((await c.next('msg')).from, 'sw');
    await c.close();
  });

  test('a token with an absurd exp is accepted and does not hurt the server', async () => {
    for (const exp of [1e19, 1e20, 2 ** 62, 99999999999999, 1e300]) {
      const token = signToken({ sub: `far${String(exp).length}`, exp }, secret);
      const c = await Client.connect(`${server.wsUrl}?token=${token}`);
      const r = await c.request('auth', { token });
      assert.ok('ok' in r, `exp ${exp}: ${JSON.stringify(r)}`);
      await c.call('ping');
      await c.close();
    }
    assert.equal((await httpRequest(`${server.url}/healthz`)).status, 200);
    assert.equal(server.exitCode, undefined, 'server still running');
  });
});

describe('token matrix on REST', () => {
  for (const [label, method, path, body] of [
    ['POST /v1/channels/CH/publish', 'POST', '/v1/channels/priv:rest/publish', { n: 1 }],
    ['GET /v1/channels/CH/history', 'GET', '/v1/channels/priv:rest/history'],
    ['POST /v1/collections/todos', 'POST', '/v1/collections/todos', { title: 't' }],
    ['GET /v1/collections/todos', 'GET', '/v1/collections/todos'],
  ]) {
    test(label, async () => {
      for (const [name, { token, valid }] of Object.entries(tokenMatrix(secret, 'restuser'))) {
        const res = await rest(method, path, { token, body });
        if (!valid) {
          assertUnauthorized(res, `${label} with ${name}`);
          continue;
        }
        assert.ok(res.status === 200 || res.status === 201, `${label} valid: ${res.status} ${res.body}`);
        if (path.endsWith('/publish')) {
          const h = (await rest('GET', '/v1/channels/priv:rest/history?limit=1&reverse=true', { token })).json();
          assert.equal(h.pubs[0].from, 'restuser', 'published as the token\'s user');
        }
        if (method === 'POST' && path.includes('collections')) assert.equal(res.json()._owner, 'restuser');
      }
    });
  }

  test('?token= works on REST too, and an invalid one is refused', async () => {
    const ok = await rest('POST', `/v1/channels/priv:restq/publish?token=${signToken({ sub: 'q' }, secret)}`, { body: 1 });
    assert.equal(ok.status, 200, ok.body);
    assertUnauthorized(await rest('POST', `/v1/channels/priv:restq/publish?token=${tokenMatrix(secret, 'q').expired.token}`, { body: 1 }), 'expired ?token=');
  });

  test('anonymous REST (no token) is refused where a token is required, allowed elsewhere', async () => {
    assert.equal((await rest('POST', '/v1/channels/priv:anon/publish', { body: 1 })).status, 403);
    assert.equal((await rest('POST', '/v1/channels/open/publish', { body: 1 })).status, 200);
  });
});

describe('expiry while connected', () => {
  test('a token that expires gets bye 4002 and a close 4002', async () => {
    const exp = nowS() + 2;
    const c = await Client.connect(`${server.wsUrl}?token=${signToken({ sub: 'shortlived', exp }, secret)}`);
    await c.call('sub', { ch: 'expiry' });
    const bye = await c.next('bye', 10_000);
    assert.ok(Date.now() >= exp * 1000 - 50, `bye only once exp passed (${Date.now()} vs ${exp * 1000})`);
    assert.equal(bye.code, 4002, JSON.stringify(bye));
    assert.equal(typeof bye.reason, 'string');
    const info = await c.closed;
    assert.equal(info.code, 4002);
  });

  test('rtsync token --ttl 2s: same result with the CLI\'s token', async () => {
    const { code, stdout, stderr } = await runToExit(['token', '--user', 'cli', '--ttl', '2s', '--data', server.dataDir]);
    assert.equal(code, 0, stderr);
    const c = await Client.connect(`${server.wsUrl}?token=${stdout.trim()}`);
    assert.equal(c.hello.user, 'cli');
    assert.equal((await c.next('bye', 10_000)).code, 4002);
    assert.equal((await c.closed).code, 4002);
  });

  test('an identity gained by the auth op expires the same way', async () => {
    const c = await Client.connect(server.wsUrl);
    await c.call('auth', { token: signToken({ sub: 'viaauth', exp: nowS() + 2 }, secret) });
    assert.equal((await c.next('bye', 10_000)).code, 4002);
    assert.equal((await c.closed).code, 4002);
  });

  test('refreshing with auth before exp keeps the connection and its subscriptions', async () => {
    const exp = nowS() + 2;
    const c = await Client.connect(`${server.wsUrl}?token=${signToken({ sub: 'refresher', exp }, secret)}`);
    const other = await Client.connect(server.wsUrl);
    await c.call('sub', { ch: 'refresh' });
    assert.deepEqual(await c.call('auth', { token: signToken({ sub: 'refresher', exp: exp + 60 }, secret) }), { user: 'refresher' });
    while (Date.now() < exp * 1000 + 1500) await sleep(100);
    assert.equal(c.closeInfo, null, 'still open after the first token expired');
    assert.equal(c.peek((o) => o.op === 'bye').length, 0, 'no bye');
    await c.call('ping');
    await other.call('pub', { ch: 'refresh', data: 'after' });
    assert.equal((await c.next('msg')).data, 'after', 'subscription kept');
    // A refresh with an expired or invalid token changes nothing: the refreshed expiry still holds.
    assert.equal((await c.request('auth', { token: signToken({ sub: 'refresher', exp: nowS() - 1 }, secret) })).error?.code,
      'permission_denied');
    await c.call('ping');
    await Promise.all([c.close(), other.close()]);
  });

  test('a refresh to a shorter token moves the deadline earlier', async () => {
    const c = await Client.connect(`${server.wsUrl}?token=${signToken({ sub: 'shorter', exp: nowS() + 600 }, secret)}`);
    await c.call('auth', { token: signToken({ sub: 'shorter', exp: nowS() + 2 }, secret) });
    assert.equal((await c.next('bye', 10_000)).code, 4002);
  });
});

describe('caps: missing and wrong', () => {
  const CAPS = { sub: ['news.*', 'priv:room*'], pub: ['chat.*', 'priv:room1'] };

  test('WebSocket: sub/history/presence follow caps.sub, pub follows caps.pub', async () => {
    const c = await Client.connect(`${server.wsUrl}?token=${signToken({ sub: 'capped', caps: CAPS }, secret)}`);
    const denied = async (op, fields) => {
      const r = await c.request(op, fields);
      assert.equal(r.error?.code, 'permission_denied', `${op} ${JSON.stringify(fields)}: ${JSON.stringify(r)}`);
    };
    const ok = async (op, fields) => {
      const r = await c.request(op, fields);
      assert.ok('ok' in r, `${op} ${JSON.stringify(fields)}: ${JSON.stringify(r)}`);
    };
    await ok('sub', { ch: 'news.today' });
    await ok('sub', { ch: 'priv:room7' });
    await ok('history', { ch: 'news.today' });
    await ok('presence', { ch: 'news.today' });
    await denied('sub', { ch: 'chat.lobby' });         // pub-only
    await denied('sub', { ch: 'news' });               // pattern needs the dot
    await denied('history', { ch: 'sports.today' });
    await denied('presence', { ch: 'sports.today' });
    await ok('pub', { ch: 'chat.lobby', data: 1 });
    await ok('pub', { ch: 'priv:room1', data: 1 });
    await denied('pub', { ch: 'priv:room2', data: 1 });
    await denied('pub', { ch: 'news.today', data: 1 });  // sub-only
    await c.close();
  });

  test('caps with only sub allow no pub; empty caps allow nothing; no caps allow everything', async () => {
    const subOnly = await Client.connect(`${server.wsUrl}?token=${signToken({ sub: 's1', caps: { sub: ['*'] } }, secret)}`);
    assert.ok('ok' in (await subOnly.request('sub', { ch: 'any.thing' })));
    assert.equal((await subOnly.request('pub', { ch: 'any.thing', data: 1 })).error?.code, 'permission_denied');
    const none = await Client.connect(`${server.wsUrl}?token=${signToken({ sub: 's2', caps: {} }, secret)}`);
    assert.equal((await none.request('sub', { ch: 'any.thing' })).error?.code, 'permission_denied');
    assert.equal((await none.request('pub', { ch: 'any.thing', data: 1 })).error?.code, 'permission_denied');
    const free = await Client.connect(`${server.wsUrl}?token=${signToken({ sub: 's3' }, secret)}`);
    assert.ok('ok' in (await free.request('sub', { ch: 'any.thing' })));
    assert.ok('ok' in (await free.request('pub', { ch: 'any.thing', data: 1 })));
    await Promise.all([subOnly.close(), none.close(), free.close()]);
  });

  test('caps are enforced after the auth op too', async () => {
    const c = await Client.connect(server.wsUrl);
    await c.call('auth', { token: signToken({ sub: 'capauth', caps: { sub: ['a.*'], pub: [] } }, secret) });
    assert.equal((await c.request('sub', { ch: 'b.x' })).error?.code, 'permission_denied');
    assert.equal((await c.request('pub', { ch: 'a.x', data: 1 })).error?.code, 'permission_denied');
    assert.ok('ok' in (await c.request('sub', { ch: 'a.x' })));
    await c.close();
  });

  test('a refresh whose caps no longer allow a subscribed channel is refused until it is unsubscribed', async () => {
    const c = await Client.connect(server.wsUrl);
    await c.call('auth', { token: signToken({ sub: 'narrow', caps: { sub: ['a.*', 'b.*'], pub: ['a.*'] } }, secret) });
    await c.call('sub', { ch: 'a.kept' });
    await c.call('sub', { ch: 'b.dropped' });
    const narrower = signToken({ sub: 'narrow', caps: { sub: ['a.*'], pub: [] } }, secret);
    const refused = await c.request('auth', { token: narrower });
    assert.equal(refused.error?.code, 'permission_denied', JSON.stringify(refused));
    assert.match(refused.error.message, /b\.dropped/);
    // Nothing changed: the old caps still hold (publishing on a.* is still allowed).
    assert.ok('ok' in (await c.request('pub', { ch: 'a.kept', data: 1 })));
    await c.call('unsub', { ch: 'b.dropped' });
    assert.deepEqual(await c.call('auth', { token: narrower }), { user: 'narrow' });
    assert.equal((await c.request('pub', { ch: 'a.kept', data: 2 })).error?.code, 'permission_denied');
    await c.close();
  });

  test('malformed caps make the token invalid', async () => {
    for (const caps of [['*'], { sub: '*' }, { pub: [1] }]) {
      const res = await upgradeStatus(server.port, { headers: bearer(signToken({ sub: 'bad', caps }, secret)) });
      assert.equal(res.status, 401, JSON.stringify(caps));
    }
  });

  test('REST history follows caps.sub', async () => {
    const token = signToken({ sub: 'restcap', caps: CAPS }, secret);
    assert.equal((await rest('GET', '/v1/channels/news.x/history', { token })).status, 200);
    assert.equal((await rest('GET', '/v1/channels/sports.x/history', { token })).status, 403);
    assert.equal((await rest('GET', '/v1/channels/chat.x/history', { token })).status, 403);
  });

  test('REST publish follows caps.pub', async () => {
    const token = signToken({ sub: 'restcap', caps: CAPS }, secret);
    const allowed = await rest('POST', '/v1/channels/chat.x/publish', { token, body: 1 });
    assert.equal(allowed.status, 200, allowed.body);
    for (const ch of ['news.x', 'sports.x', 'priv:room2']) {
      const res = await rest('POST', `/v1/channels/${ch}/publish`, { token, body: 1 });
      assert.equal(res.status, 403, `publish on ${ch} with caps.pub ${JSON.stringify(CAPS.pub)}: HTTP ${res.status} ${res.body}`);
      assert.equal(res.json().error?.code, 'permission_denied');
    }
    // Nothing was published where the token may not publish.
    const h = await rest('GET', '/v1/channels/news.x/history', { token });
    assert.deepEqual(h.json().pubs, [], 'no publication slipped through on news.x');
  });
});
