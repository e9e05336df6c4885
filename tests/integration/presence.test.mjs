// Presence (PROTOCOL §4): every subscriber of a presence-enabled channel is a member; `presence` lists
// them; subscribers that asked with presence:true get join/leave pushes for the others.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, cookiePair, httpRequest, startServer, uidSetCookie } from './lib/server.mjs';

const CONFIG = `
[namespaces.nopres]
presence = false
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(cleanupAll);

const connect = (opts) => Client.connect(server.wsUrl, opts);
const sessionsOf = (p) => p.clients.map((c) => c.session).sort();

function assertPresencePush(push, op, ch, client) {
  assert.equal(push.op, op);
  assert.equal(push.ch, ch);
  assert.equal(push.session, client.hello.session, `${op} names the session`);
  assert.equal(push.user, client.hello.user, `${op} names the user`);
  assert.ok('info' in push, `${op} carries info: ${JSON.stringify(push)}`);
}

describe('join, leave and the member list', () => {
  const CH = 'lobby';
  let a; let b; let c; let d;

  before(async () => {
    [a, b, c, d] = await Promise.all([connect(), connect(), connect(), connect()]);
  });
  after(() => Promise.all([a, b, c].map((x) => x.close())));

  test('a presence subscriber is told when another session subscribes', async () => {
    await a.call('sub', { ch: CH, presence: true });
    await b.call('sub', { ch: CH });
    assertPresencePush(await a.next('join'), 'join', CH, b);
  });

  test('a session is not told of its own join, only of later ones', async () => {
    await c.call('sub', { ch: CH, presence: true });
    assertPresencePush(await a.next('join'), 'join', CH, c);
    await d.call('sub', { ch: CH });
    assertPresencePush(await a.next('join'), 'join', CH, d);
    // C's first join push is D's: a join of C itself would have come first.
    assertPresencePush(await c.next('join'), 'join', CH, d);
    assert.deepEqual(c.peek((o) => o.op === 'join' && o.session === c.hello.session), []);
  });

  test('subscribers without presence:true get no join/leave pushes', async () => {
    await b.call('ping');
    assert.deepEqual(b.peek((o) => o.op === 'join' || o.op === 'leave'), []);
    assert.deepEqual(d.peek((o) => o.op === 'join' || o.op === 'leave'), []);
  });

  test('presence lists every subscriber, presence:true or not', async () => {
    const p = await a.call('presence', { ch: CH });
    assert.deepEqual(sessionsOf(p), [a, b, c, d].map((x) => x.hello.session).sort());
    for (const x of [a, b, c, d]) {
      const entry = p.clients.find((e) => e.session === x.hello.session);
      assert.equal(entry.user, x.hello.user);
      assert.ok('info' in entry, `info in ${JSON.stringify(entry)}`);
    }
    assert.equal(p.sessions, 4);
    assert.equal(p.users, 4, 'four anonymous connections are four users');
  });

  test('unsub is a leave', async () => {
    await b.call('unsub', { ch: CH });
    assertPresencePush(await a.next('leave'), 'leave', CH, b);
    assertPresencePush(await c.next('leave'), 'leave', CH, b);
    const p = await c.call('presence', { ch: CH });
    assert.deepEqual(sessionsOf(p), [a, c, d].map((x) => x.hello.session).sort());
    assert.equal(p.sessions, 3);
    assert.equal(p.users, 3);
  });

  test('a dropped connection is a leave', async () => {
    await d.terminate();
    assertPresencePush(await a.next('leave'), 'leave', CH, d);
    assertPresencePush(await c.next('leave'), 'leave', CH, d);
    const p = await a.call('presence', { ch: CH });
    assert.deepEqual(sessionsOf(p), [a, c].map((x) => x.hello.session).sort());
  });

  test('a closed connection is a leave', async () => {
    const e = await connect();
    await e.call('sub', { ch: CH });
    assertPresencePush(await a.next('join'), 'join', CH, e);
    assertPresencePush(await c.next('join'), 'join', CH, e);
    await e.close();
    assertPresencePush(await a.next('leave'), 'leave', CH, e);
    assertPresencePush(await c.next('leave'), 'leave', CH, e);
  });

  test('the leaving session itself is not told of its leave, and pushes stop after unsub', async () => {
    await a.call('unsub', { ch: CH });
    assertPresencePush(await c.next('leave'), 'leave', CH, a);
    const f = await connect();
    await f.call('sub', { ch: CH });
    assertPresencePush(await c.next('join'), 'join', CH, f);
    await a.call('ping');
    assert.deepEqual(a.peek((o) => o.op === 'leave' || o.op === 'join'), [], 'a got nothing after its unsub');
    await f.close();
  });
});

describe('counting', () => {
  test('two sessions of one user: users 1, sessions 2', async () => {
    const res = await httpRequest(`${server.url}/healthz`);
    const set = uidSetCookie(res);
    assert.ok(set, 'the response set rtsync_uid');
    const headers = { cookie: cookiePair(set) };
    const [x, y] = await Promise.all([connect({ headers }), connect({ headers })]);
    assert.equal(x.hello.user, y.hello.user);
    assert.notEqual(x.hello.session, y.hello.session);
    await x.call('sub', { ch: 'duo' });
    await y.call('sub', { ch: 'duo' });
    const z = await connect();
    await z.call('sub', { ch: 'duo' });
    const p = await z.call('presence', { ch: 'duo' });
    assert.equal(p.sessions, 3);
    assert.equal(p.users, 2);
    assert.equal(p.clients.length, 3);
    assert.equal(p.clients.filter((e) => e.user === x.hello.user).length, 2);
    await Promise.all([x.close(), y.close(), z.close()]);
  });

  test('a channel without members has an empty presence', async () => {
    const c = await connect();
    const p = await c.call('presence', { ch: 'empty.room' });
    assert.deepEqual(p.clients, []);
    assert.equal(p.users, 0);
    assert.equal(p.sessions, 0);
    await c.close();
  });

  test('presence is per channel', async () => {
    const [x, y] = await Promise.all([connect(), connect()]);
    await x.call('sub', { ch: 'room.x', presence: true });
    await y.call('sub', { ch: 'room.y' });
    const p = await x.call('presence', { ch: 'room.x' });
    assert.deepEqual(sessionsOf(p), [x.hello.session]);
    await x.call('ping');
    assert.deepEqual(x.peek((o) => o.op === 'join'), [], 'no join for another channel');
    await Promise.all([x.close(), y.close()]);
  });
});

describe('presence = false', () => {
  test('the presence op and sub with presence:true are permission_denied', async () => {
    const c = await connect();
    const p = await c.request('presence', { ch: 'nopres:room' });
    assert.equal(p.error?.code, 'permission_denied', JSON.stringify(p));
    const s = await c.request('sub', { ch: 'nopres:room', presence: true });
    assert.equal(s.error?.code, 'permission_denied', JSON.stringify(s));
    await c.close();
  });
});
