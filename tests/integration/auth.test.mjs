// Token identity (PROTOCOL §3): `rtsync token` signs a JWT with the data dir's secret; the token is
// accepted as ?token=, as Authorization: Bearer and in the `auth` op; `caps` restrict sub/pub; a
// namespace with anonymous = false needs a token.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, runToExit, sleep, startServer, tmpDir } from './lib/server.mjs';

const CONFIG = `
[namespaces.priv]
anonymous = false
`;

let server;
let dataDir;
before(async () => {
  dataDir = tmpDir('rtsync-auth-');
  server = await startServer({ config: CONFIG, dataDir });
});
after(cleanupAll);

async function token(user, extra = [], dir = dataDir) {
  const { code, stdout, stderr } = await runToExit(['token', '--user', user, '--data', dir, ...extra]);
  assert.equal(code, 0, `rtsync token failed: ${stderr}`);
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `one line: ${stdout}`);
  return lines[0].trim();
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

describe('rtsync token', () => {
  test('prints an HS256 JWT with sub and exp', async () => {
    const jwt = await token('alice');
    assert.match(jwt, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const header = JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'));
    assert.equal(header.alg, 'HS256');
    const c = claims(jwt);
    assert.equal(c.sub, 'alice');
    assert.equal(typeof c.exp, 'number');
    assert.ok(c.exp > Date.now() / 1000, 'not yet expired');
  });

  test('--caps ends up in the claims', async () => {
    const caps = { sub: ['news.*'], pub: ['chat.*'] };
    assert.deepEqual(claims(await token('bob', ['--caps', JSON.stringify(caps)])).caps, caps);
  });
});

describe('identity from a token', () => {
  test('?token= on the WebSocket URL', async () => {
    const c = await Client.connect(`${server.wsUrl}?token=${await token('alice')}`);
    assert.equal(c.hello.user, 'alice');
    await c.call('sub', { ch: 'who' });
    await c.call('pub', { ch: 'who', data: 1 });
    assert.equal((await c.next('msg')).from, 'alice');
    await c.close();
  });

  test('Authorization: Bearer on the upgrade', async () => {
    const c = await Client.connect(server.wsUrl, { headers: { authorization: `Bearer ${await token('carol')}` } });
    assert.equal(c.hello.user, 'carol');
    await c.close();
  });

  test('the auth op switches an anonymous connection to the token\'s user', async () => {
    const c = await Client.connect(server.wsUrl);
    assert.notEqual(c.hello.user, 'dave');
    const r = await c.call('auth', { token: await token('dave') });
    assert.equal(r.user, 'dave');
    await c.call('sub', { ch: 'who2' });
    await c.call('pub', { ch: 'who2', data: 1 });
    assert.equal((await c.next('msg')).from, 'dave');
    await c.close();
  });

  test('a bad token in the auth op is an error and changes nothing', async () => {
    const c = await Client.connect(server.wsUrl);
    const otherDir = tmpDir('rtsync-other-');
    const other = await startServer({ dataDir: otherDir });  // creates another secret
    const foreign = await token('eve', [], otherDir);
    await other.stop();
    const valid = await token('eve');
    const tampered = `${valid.split('.').slice(0, 2).join('.')}.${'A'.repeat(43)}`;
    for (const bad of ['garbage', foreign, tampered, '']) {
      const r = await c.request('auth', { token: bad });
      assert.ok(r.error, `token ${bad.slice(0, 20)}… is refused: ${JSON.stringify(r)}`);
    }
    assert.equal((await c.request('auth', { token: 5 })).error?.code, 'bad_request');
    await c.call('sub', { ch: 'who3' });
    await c.call('pub', { ch: 'who3', data: 1 });
    assert.equal((await c.next('msg')).from, c.hello.user, 'still the anonymous user');
    await c.close();
  });

  test('an expired token is refused', async () => {
    const jwt = await token('frank', ['--ttl', '1s']);
    const exp = claims(jwt).exp;
    while (Date.now() / 1000 < exp + 1) await sleep(200);
    const c = await Client.connect(server.wsUrl);
    const r = await c.request('auth', { token: jwt });
    assert.ok(r.error, `expired token refused: ${JSON.stringify(r)}`);
    await c.close();
  });
});

describe('capabilities and anonymous = false', () => {
  test('caps restrict sub and pub to their patterns', async () => {
    const jwt = await token('gina', ['--caps', JSON.stringify({ sub: ['news.*'], pub: ['chat.*'] })]);
    const c = await Client.connect(`${server.wsUrl}?token=${jwt}`);
    assert.ok('ok' in (await c.request('sub', { ch: 'news.today' })));
    assert.equal((await c.request('sub', { ch: 'sports.today' })).error?.code, 'permission_denied');
    assert.ok('ok' in (await c.request('pub', { ch: 'chat.room', data: 1 })));
    assert.equal((await c.request('pub', { ch: 'news.today', data: 1 })).error?.code, 'permission_denied');
    await c.close();
  });

  test('anonymous clients may not sub or pub in an anonymous = false namespace', async () => {
    const anon = await Client.connect(server.wsUrl);
    assert.equal((await anon.request('sub', { ch: 'priv:room' })).error?.code, 'permission_denied');
    assert.equal((await anon.request('pub', { ch: 'priv:room', data: 1 })).error?.code, 'permission_denied');
    const named = await Client.connect(`${server.wsUrl}?token=${await token('hank')}`);
    assert.ok('ok' in (await named.request('sub', { ch: 'priv:room' })));
    assert.ok('ok' in (await named.request('pub', { ch: 'priv:room', data: 1 })));
    // After auth, the same anonymous connection may.
    await anon.call('auth', { token: await token('ivy') });
    assert.ok('ok' in (await anon.request('sub', { ch: 'priv:room' })));
    await Promise.all([anon.close(), named.close()]);
  });
});
