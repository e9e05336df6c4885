// The offline module (web/lib/rtsync-offline.js) against the real server, IndexedDB from npm
// `fake-indexeddb`: a write stored while the server cannot be reached and the tab closed is applied
// once by the next page; an answer lost with its socket, resent by the next page, is applied once; a
// refused write is rolled back; a document deleted by a page is gone from the next page's cache; the
// tallies of two groups are cached apart; `hello` with `client` and `settled` is accepted, writes carry
// `seq` instead of a key, and a write whose answer was lost is sent again with the same `seq` and applied
// once.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import { cleanupAll, startServer, waitFor } from '../integration/lib/server.mjs';
import { READONLY, TODOS, collection, config } from '../integration/lib/config.mjs';
import { connect, newIdentity, slowLink, webSocketClass } from './lib/harness.mjs';
import RTSync from '../../web/lib/rtsync-offline.js';

after(cleanupAll);

const Todos = RTSync.Collection.extend({ collectionName: 'todos' });

// One page: a connection (its identity in `cookie`) with an outbox in `indexedDB`. `reachable()` says
// whether the server can be reached (else the socket goes to a port nobody listens on).
const pages = [];
after(() => { for (const p of pages) p.close(); });
function page(server, { indexedDB, cookie, hooks, reachable = () => true }) {
  const connection = new RTSync.Connection({
    url: () => (reachable() ? server.wsUrl : 'ws://127.0.0.1:9/v1/ws'),
    WebSocket: webSocketClass({ cookie, hooks }),
    minDelay: 20, maxDelay: 100, timeout: 15_000,
  });
  const outbox = RTSync.offline(connection, { indexedDB, name: `rtsync-${cookie}` });
  connection.open();
  const p = { connection, outbox, rejected: [], close() { outbox.close(); connection.close(); } };
  connection.on('rejected', (c, info) => p.rejected.push(info));
  pages.push(p);
  return p;
}

async function list(p, coll = 'todos') {
  return (await p.connection.request('list', { coll })).docs;
}

describe('offline outbox against the server', () => {
  test('stored while the server is out of reach, the tab closed: the next page applies it once', async () => {
    const server = await startServer({ config: TODOS });
    const cookie = await newIdentity(server);
    const indexedDB = new IDBFactory();
    let reachable = true;
    const a = page(server, { indexedDB, cookie, reachable: () => reachable });
    const todos = new Todos(null, { connection: a.connection });
    await todos.fetch();
    reachable = false;
    a.connection.reconnect();
    a.connection.ws?.close();
    await waitFor(() => a.connection.state !== 'online', { message: 'out of reach' });
    const m = todos.create({ title: 'offline' });
    m.save({ done: true }).catch(() => {});
    await waitFor(() => a.connection.pending() === 2, { message: 'stored' });
    a.close();

    reachable = true;
    const b = page(server, { indexedDB, cookie });
    await b.outbox.ready; // the stored writes are read first: until then nothing is pending
    await waitFor(() => b.connection.pending() === 0 && b.connection.state === 'online', { message: 'sent' });
    const docs = await list(b);
    assert.equal(docs.length, 1);
    assert.deepEqual({ ...docs[0], _owner: undefined }, { id: m.id, title: 'offline', done: true, _v: 2, _owner: undefined });
    assert.deepEqual(b.rejected, []);
  });

  test('a document this page deleted is gone from the cache: the next page does not show it', async () => {
    const server = await startServer({ config: TODOS });
    const cookie = await newIdentity(server);
    const indexedDB = new IDBFactory();
    const a = page(server, { indexedDB, cookie });
    const todos = new Todos(null, { connection: a.connection });
    await todos.fetch();
    const kept = todos.create({ title: 'kept' });
    const gone = todos.create({ title: 'gone' });
    await waitFor(() => a.connection.pending() === 0 && !kept.isNew() && !gone.isNew(), { message: 'created' });
    await gone.destroy();
    // The feed's delete arrives after our own removal; the cache follows it.
    await waitFor(() => todos._offset >= 3, { message: 'the delete seen on the feed' });
    await a.outbox._flush();
    a.close();

    const b = page(server, { indexedDB, cookie });
    const again = new Todos(null, { connection: b.connection });
    let cached;
    again.once('cached', () => { cached = again.pluck('title'); });
    await again.fetch();
    assert.deepEqual(cached, ['kept'], 'the cached copy, before the server answers');
    assert.deepEqual(again.pluck('title'), ['kept']);
  });

  test('the tallies of two groups are cached apart: each page shows its own group\'s counts', async () => {
    const rooms = collection('rooms', 'per_user = true', 'read = "owner"', 'write = "owner"', 'tally = { q1 = [0, 1, 2] }',
      'tally_group = "room"');
    const server = await startServer({ config: config(rooms) });
    const Rooms = RTSync.Collection.extend({ collectionName: 'rooms' });
    for (const room of ['a', 'a', 'b']) {
      const node = await connect(server, { cookie: await newIdentity(server) });
      const mine = new Rooms(null, { connection: node });
      await mine.fetch();
      await mine.create({ q1: 1, room })._writing;
      node.close();
    }
    const cookie = await newIdentity(server);
    const indexedDB = new IDBFactory();
    const group = (p, name) => new RTSync.Tally(null, { collectionName: 'rooms', group: name, connection: p.connection });
    const a = page(server, { indexedDB, cookie });
    const [ta, tb] = [group(a, 'a'), group(a, 'b')];
    await Promise.all([ta.fetch(), tb.fetch()]);
    assert.deepEqual([ta.get('total'), tb.get('total')], [2, 1]);
    await a.outbox._flush();
    a.close();

    const b = page(server, { indexedDB, cookie });
    const cached = {};
    const [ca, cb] = [group(b, 'a'), group(b, 'b')];
    ca.once('cached', () => { cached.a = ca.get('total'); });
    cb.once('cached', () => { cached.b = cb.get('total'); });
    await Promise.all([ca.fetch(), cb.fetch()]);
    assert.deepEqual(cached, { a: 2, b: 1 });
  });

  test('an answer lost with its socket, resent by the next page, is applied once', async () => {
    const server = await startServer({ config: TODOS });
    const cookie = await newIdentity(server);
    const indexedDB = new IDBFactory();
    const link = slowLink();
    let reachable = true;
    const a = page(server, { indexedDB, cookie, hooks: link.hooks, reachable: () => reachable });
    const todos = new Todos(null, { connection: a.connection });
    await todos.fetch();
    link.holdReplies('create');
    todos.create({ title: 'once' });
    await link.whenSent((o) => o.op === 'create');
    await waitFor(async () => (await list(page(server, { indexedDB: new IDBFactory(), cookie }))).length === 1,
      { message: 'committed' });
    reachable = false;
    link.cut(); // the answer is lost, and the tab is closed before it could send again
    a.close();

    reachable = true;
    const b = page(server, { indexedDB, cookie });
    await b.outbox.ready;
    await waitFor(() => b.connection.pending() === 0 && b.connection.state === 'online', { message: 'sent again' });
    assert.equal((await list(b)).length, 1, 'applied once');
  });

  test('a refused write is rolled back and reported with the server\'s answer', async () => {
    const server = await startServer({ config: config(TODOS, READONLY) });
    const cookie = await newIdentity(server);
    const p = page(server, { indexedDB: new IDBFactory(), cookie });
    const ro = new (RTSync.Collection.extend({ collectionName: 'readonly' }))(null, { connection: p.connection });
    await ro.fetch();
    const m = ro.add({ title: 'not allowed' });
    await assert.rejects(m.save(), (e) => e.code === 'permission_denied');
    assert.equal(ro.length, 0, 'rolled back');
    assert.equal(p.rejected.length, 1);
    assert.equal(p.rejected[0].server, null);
    assert.equal(p.connection.pending(), 0);
  });
});

describe('applied once with client and seq, against the server', () => {
  test('hello with client and settled is accepted; writes carry seq and a resend is replayed', async () => {
    const server = await startServer({ config: TODOS });
    const cookie = await newIdentity(server);
    const link = slowLink();
    const p = page(server, { indexedDB: new IDBFactory(), cookie, hooks: link.hooks });
    const todos = new Todos(null, { connection: p.connection });
    await todos.fetch();
    await waitFor(() => p.outbox._shook, { message: 'hello answered' });
    assert.equal(p.outbox.seqs, true, 'the server accepted hello with client and settled');
    link.holdReplies('create');
    const m = todos.create({ title: 'seq' });
    await link.whenSent((o) => o.op === 'create');
    await new Promise((r) => setTimeout(r, 200));
    link.cut();
    await m._writing;
    const creates = link.sentOps('create');
    assert.equal(creates.length, 2);
    assert.equal(creates[0].seq, creates[1].seq);
    assert.equal(creates[0].key, undefined);
    assert.equal((await list(p)).length, 1);
  });
});
