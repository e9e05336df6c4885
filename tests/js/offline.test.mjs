// The offline module (web/lib/rtsync-offline.js) in Node: IndexedDB from npm `fake-indexeddb` (a fresh
// IDBFactory is a fresh browser profile), the server an in-memory fake that keeps the wire contract
// (tests/js/lib/fake_server.mjs), since here the client's logic is the point. The same against the real
// server: tests/js/offline_server.test.mjs.
//
// A "page" is one connection with its outbox; a crash is a page dropped with whatever it had stored,
// and a reload is a new page on the same IndexedDB.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import RTSync from '../../web/lib/rtsync-offline.js';
import { FakeServer } from './lib/fake_server.mjs';

const Todos = RTSync.Collection.extend({ collectionName: 'todos' });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, message = 'condition', timeout = 5000) {
  const deadline = Date.now() + timeout;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}`);
    await sleep(5);
  }
}

// The Web Locks of one browser (Node has none): `request(name, fn)` grants the lock to one caller at a
// time, in order, for as long as the promise `fn` returns is pending.
function lockManager() {
  const tails = new Map();
  return {
    request(name, fn) {
      const granted = (tails.get(name) || Promise.resolve()).then(() => fn());
      tails.set(name, granted.then(() => {}, () => {}));
      return granted;
    },
  };
}

// One IndexedDB factory is one browser profile: its pages share a BroadcastChannel name and the locks.
const browsers = new WeakMap();
const browserOf = (indexedDB) => {
  if (!browsers.has(indexedDB)) browsers.set(indexedDB, { name: `rtsync-test-${Math.random().toString(36).slice(2)}`, locks: lockManager() });
  return browsers.get(indexedDB);
};

const pages = [];
after(() => { for (const p of pages) p.close(); });
function page(server, indexedDB, options = {}) {
  const connection = new RTSync.Connection({ url: 'ws://fake/v1/ws', WebSocket: server.WebSocket, minDelay: 5, maxDelay: 20 });
  const outbox = RTSync.offline(connection, { indexedDB, ...browserOf(indexedDB), ...options });
  connection.open();
  const p = {
    connection, outbox,
    todos: new Todos(null, { connection }),
    events: [],
    close() { outbox.close(); connection.close(); },
  };
  for (const name of ['pending', 'rejected']) connection.on(name, (c, info) => p.events.push([name, info]));
  pages.push(p);
  return p;
}

// The server's writes, as [op, doc or ch] in the order received.
const writesOf = (server) => server.log.filter((c) => /^(create|update|patch|delete|pub)$/.test(c.op));

describe('durable outbox', () => {
  test('a write is stored before it is sent, shows at once, and leaves the outbox when answered', async () => {
    const server = new FakeServer();
    server.down = true;
    const a = page(server, new IDBFactory());
    const model = a.todos.add({ title: 'buy milk' });
    const saved = model.save();
    assert.equal(a.todos.length, 1, 'in the collection at once');
    assert.match(model.id, /^[0-9a-f]{16}$/, 'an id made here');
    await waitFor(() => a.connection.pending() === 1, 'the write stored');
    assert.equal(server.applied, 0);
    server.down = false;
    await saved;
    assert.equal(a.connection.pending(), 0);
    assert.deepEqual(a.events.filter(([n]) => n === 'pending').map(([, n]) => n), [1, 0]);
    assert.deepEqual(server.coll('todos').get(model.id), model.toJSON());
    assert.equal(model.get('_v'), 1);
    assert.equal(server.applied, 1);
    a.close();
  });

  test('a crash between storing and sending loses nothing: the next page sends it, once, in order', async () => {
    const server = new FakeServer();
    server.down = true;
    const idb = new IDBFactory();
    const a = page(server, idb);
    const model = a.todos.add({ title: 'x' });
    model.save().catch(() => {});
    model.save({ done: true }).catch(() => {});
    a.connection.channel('room').publish({ hi: 1 }).catch(() => {});
    await waitFor(() => a.connection.pending() === 3, 'three writes stored');
    a.close(); // the tab is gone before it could send anything

    const b = page(server, idb);
    await b.outbox.ready;
    assert.equal(b.connection.pending(), 3, 'the next page finds the writes');
    server.down = false;
    await waitFor(() => b.connection.pending() === 0, 'the outbox sent');
    assert.deepEqual(writesOf(server).map((c) => c.op), ['create', 'update', 'pub']);
    assert.equal(writesOf(server)[1].v, 1, 'the update is built on the create\'s answer');
    assert.deepEqual(server.coll('todos').get(model.id), { id: model.id, title: 'x', done: true, _v: 2, _owner: 'u1' });
    assert.deepEqual(server.feed('room').pubs.map((p) => p.data), [{ hi: 1 }]);
    assert.equal(server.applied, 3);
    b.close();
  });

  test('an answer lost with the socket: the write is sent again and applied once (key, within 24 h)', async () => {
    const server = new FakeServer();
    const idb = new IDBFactory();
    const a = page(server, idb);
    await a.outbox.ready;
    server.dropReplies = 1;
    const model = a.todos.add({ title: 'once' });
    const saved = model.save();
    await saved;
    assert.equal(server.applied, 1);
    assert.equal(writesOf(server).length, 2, 'sent twice');
    assert.equal(writesOf(server)[0].key, writesOf(server)[1].key, 'with the same key');
    assert.equal(model.get('_v'), 1);
    a.close();
  });

  test('writes of several documents go in the order made; a refused one is rolled back and reported', async () => {
    const server = new FakeServer();
    server.coll('todos').set('t1', { id: 't1', title: 'old', n: 1, _v: 3, _owner: 'u1' });
    const a = page(server, new IDBFactory());
    await a.todos.fetch();
    const t1 = a.todos.get('t1');
    server.down = true;
    server.kill();
    await waitFor(() => a.connection.state === 'offline', 'offline');
    server.refuse = (cmd) => (cmd.op === 'patch' && cmd.doc === 't1' ? { code: 'permission_denied' } : null);
    const rejectedOnModel = [];
    t1.on('rejected', (m, info) => rejectedOnModel.push(info));
    const results = [];
    const track = (name, promise) => promise.then(() => results.push([name, 'ok']), (e) => results.push([name, e.code]));
    track('patch t1', t1.save({ title: 'mine' }, { patch: true }));
    const t2 = a.todos.add({ title: 'new' });
    track('create t2', t2.save());
    track('update t2', t2.save({ n: 2 }));
    track('delete t2', t2.destroy());
    assert.equal(t1.get('title'), 'mine', 'shown at once');
    await waitFor(() => a.connection.pending() === 4, 'stored');
    server.down = false;
    await waitFor(() => results.length === 4, 'every write answered');
    assert.deepEqual(writesOf(server).map((c) => `${c.op} ${c.doc || c.data.id}`),
      ['patch t1', `create ${t2.id}`, `update ${t2.id}`, `delete ${t2.id}`]);
    assert.deepEqual(Object.fromEntries(results), { 'patch t1': 'permission_denied', 'create t2': 'ok', 'update t2': 'ok', 'delete t2': 'ok' });
    assert.equal(t1.get('title'), 'old', 'rolled back');
    assert.equal(t1.hasLocalChanges(), false);
    assert.equal(rejectedOnModel.length, 1);
    assert.deepEqual(rejectedOnModel[0].server, { id: 't1', title: 'old', n: 1, _v: 3, _owner: 'u1' });
    assert.equal(rejectedOnModel[0].error.code, 'permission_denied');
    assert.deepEqual(a.events.filter(([n]) => n === 'rejected').length, 1);
    assert.equal(server.coll('todos').has(t2.id), false);
    assert.equal(a.connection.pending(), 0);
    a.close();
  });

  test('a conflict: by default the write\'s own changes are written again on the newer version', async () => {
    const server = new FakeServer();
    server.coll('todos').set('t1', { id: 't1', title: 'a', n: 1, _v: 1, _owner: 'u1' });
    const a = page(server, new IDBFactory());
    await a.todos.fetch();
    const t1 = a.todos.get('t1');
    a.todos.unfollow(); // so that the other writer's change is not seen before ours is sent
    server.writeAs('todos', { id: 't1', title: 'a', n: 5 });
    const conflicts = [];
    t1.on('conflict', (m, info) => conflicts.push(info));
    await t1.save({ title: 'b' });
    assert.deepEqual(server.coll('todos').get('t1'), { id: 't1', title: 'b', n: 5, _v: 3, _owner: 'u1' });
    assert.deepEqual(t1.toJSON(), server.coll('todos').get('t1'));
    assert.equal(conflicts.length, 1);
    const [first, second] = writesOf(server);
    assert.ok(second.key !== first.key, 'written again as a new write');
    assert.equal(second.v, 2);
    assert.deepEqual(a.events.filter(([n]) => n === 'rejected'), []);
    a.close();
  });

  test('a delete of a document someone else deleted succeeds; a refused create leaves the collection', async () => {
    const server = new FakeServer();
    server.coll('todos').set('t1', { id: 't1', _v: 1, _owner: 'u1' });
    const a = page(server, new IDBFactory());
    await a.todos.fetch();
    const t1 = a.todos.get('t1');
    server.coll('todos').delete('t1');
    await t1.destroy();
    server.refuse = (cmd) => (cmd.op === 'create' ? { code: 'invalid', message: 'bad title' } : null);
    const bad = a.todos.add({ title: 7 });
    await assert.rejects(bad.save(), (e) => e.code === 'invalid');
    assert.equal(a.todos.length, 0);
    const [[, info]] = a.events.filter(([n]) => n === 'rejected');
    assert.equal(info.server, null);
    assert.equal(info.op, 'create');
    assert.deepEqual(info.changes, { title: 7 });
    a.close();
  });

  test('a server without sequences gets durable idempotency keys', async () => {
    const server = new FakeServer({ seqs: false });
    const a = page(server, new IDBFactory());
    await a.todos.create({ title: 'k' })._writing;
    const hello = server.log.find((c) => c.op === 'hello');
    assert.ok(hello, 'hello was tried');
    const [create] = writesOf(server);
    assert.equal(create.seq, undefined);
    assert.equal(create.key, `${hello.client}.1`);
    a.close();
  });

  test('the user changed: the writes of the previous one are dropped, reported, and never sent', async () => {
    const server = new FakeServer({ user: 'alice' });
    const idb = new IDBFactory();
    const a = page(server, idb);
    await waitFor(() => server.log.some((c) => c.op === 'hello'), 'the outbox adopted alice');
    server.down = true;
    server.kill();
    await waitFor(() => a.connection.state === 'offline', 'offline');
    a.todos.create({ title: 'by alice' });
    await waitFor(() => a.connection.pending() === 1, 'stored');
    a.close();
    server.user = 'bob';
    server.down = false;
    const b = page(server, idb);
    await waitFor(() => b.events.some(([n]) => n === 'rejected'), 'rejected');
    const [[, info]] = b.events.filter(([n]) => n === 'rejected');
    assert.equal(info.error.code, 'user_changed');
    assert.equal(b.connection.pending(), 0);
    await sleep(20);
    assert.deepEqual(writesOf(server), []);
    b.close();
  });
});

describe('applied once, however old (client and seq)', () => {
  test('hello carries the client id and what is settled; writes carry seq instead of a key', async () => {
    const server = new FakeServer({ seqs: true });
    const a = page(server, new IDBFactory());
    const m = a.todos.create({ title: 's' });
    await m._writing;
    await m.save({ title: 't' });
    const hellos = server.log.filter((c) => c.op === 'hello');
    assert.match(hellos[0].client, /^[A-Za-z0-9_-]{16,64}$/);
    assert.equal(hellos[0].settled, 0);
    assert.deepEqual(writesOf(server).map((c) => [c.op, c.seq, c.key]), [['create', 1, undefined], ['update', 2, undefined]]);
    server.kill();
    await waitFor(() => server.log.filter((c) => c.op === 'hello').length === 2, 'hello again after the reconnect');
    const again = server.log.filter((c) => c.op === 'hello')[1];
    assert.equal(again.client, hellos[0].client, 'the same client');
    assert.equal(again.settled, 2, 'both writes settled');
    a.close();
  });

  test('a write whose answer was lost, sent again more than 24 h later, is applied once', async () => {
    const server = new FakeServer({ seqs: true });
    const idb = new IDBFactory();
    const a = page(server, idb);
    await waitFor(() => a.connection.state === 'online', 'online');
    server.dropReplies = 1;
    server.down = true; // the network goes with the answer
    a.todos.create({ title: 'late' });
    await waitFor(() => server.applied === 1, 'applied');
    a.close(); // and the tab is closed

    server.now += 25 * 3600e3; // a key would be forgotten by now
    server.down = false;
    const b = page(server, idb);
    await b.todos.fetch();
    await waitFor(() => b.connection.pending() === 0, 'the outbox sent');
    const creates = writesOf(server).filter((c) => c.op === 'create');
    assert.equal(creates.length, 2, 'sent twice');
    assert.equal(creates[1].seq, creates[0].seq, 'with the same seq');
    assert.equal(server.applied, 1, 'applied once');
    assert.equal(server.coll('todos').size, 1);
    assert.equal(b.todos.length, 1);
    assert.deepEqual(b.events.filter(([n]) => n === 'rejected'), []);
    b.close();
  });

  test('expired: a client the server forgot; its writes are rolled back to what the server holds', async () => {
    const server = new FakeServer({ seqs: true });
    server.coll('todos').set('t1', { id: 't1', title: 'server', _v: 4, _owner: 'u1' });
    const idb = new IDBFactory();
    const a = page(server, idb);
    await a.todos.fetch();
    await waitFor(() => server.clients.size === 1, 'the server knows the client');
    server.down = true;
    server.kill();
    await waitFor(() => a.connection.state === 'offline', 'offline');
    a.todos.get('t1').save({ title: 'mine' }).catch(() => {});
    await waitFor(() => a.connection.pending() === 1, 'stored');
    a.close();

    server.now += server.retention + 1; // the server dropped this client's records
    server.down = false;
    const b = page(server, idb);
    await b.todos.fetch();
    await waitFor(() => b.events.some(([n]) => n === 'rejected'), 'rejected');
    const [[, info]] = b.events.filter(([n]) => n === 'rejected');
    assert.equal(info.error.code, 'expired');
    assert.deepEqual(info.server, { id: 't1', title: 'server', _v: 4, _owner: 'u1' });
    assert.equal(b.todos.get('t1').get('title'), 'server');
    assert.equal(b.connection.pending(), 0);
    assert.equal(server.applied, 0);
    b.close();
  });
});

describe('optimistic writes', () => {
  test('a local write shows at once; the echo, another writer\'s change, a conflict and the answer never revert it', async () => {
    const server = new FakeServer({ seqs: true });
    server.coll('todos').set('t1', { id: 't1', title: 'a', n: 1, _v: 1, _owner: 'u1' });
    const a = page(server, new IDBFactory());
    await a.todos.fetch();
    const t1 = a.todos.get('t1');
    const seen = { title: [], n: [] };
    t1.on('change:title', (m, x) => seen.title.push(x));
    t1.on('change:n', (m, x) => seen.n.push(x));
    const saved = t1.save({ title: 'b' });
    assert.equal(t1.get('title'), 'b', 'at once');
    server.writeAs('todos', { id: 't1', title: 'a', n: 5 }); // lands before ours: ours conflicts
    await waitFor(() => t1.get('n') === 5, 'the other change shown');
    assert.equal(t1.get('title'), 'b', 'ours stays on top of it');
    await saved;
    await sleep(20); // the feed's echo of our write
    assert.deepEqual(seen, { title: ['b'], n: [5] }, 'each attribute changed once');
    assert.deepEqual(t1.toJSON(), { id: 't1', title: 'b', n: 5, _v: 3, _owner: 'u1' });
    assert.deepEqual(server.coll('todos').get('t1'), t1.toJSON());
    assert.equal(a.todos.length, 1);
    a.close();
  });
});

describe('cache', () => {
  // A page that has seen three documents and the tally, then closed.
  async function seenBefore(server, idb) {
    for (const id of ['d1', 'd2', 'd3']) server.writeAs('todos', { id, title: id });
    const a = page(server, idb);
    const tally = new RTSync.Tally(null, { collectionName: 'todos', connection: a.connection });
    await Promise.all([a.todos.fetch(), tally.fetch()]);
    server.writeAs('todos', { id: 'd1', title: 'd1 again' });
    await waitFor(() => a.todos.get('d1').get('title') === 'd1 again' && tally.get('total') === 3, 'the change followed');
    await a.close();
    return a;
  }

  test('a page opened offline shows what it last saw; back online, only the changes missed come', async () => {
    const server = new FakeServer({ seqs: true });
    const idb = new IDBFactory();
    await seenBefore(server, idb);
    server.writeAs('todos', { id: 'd4', title: 'while away' });
    server.down = true;
    const b = page(server, idb);
    const tally = new RTSync.Tally(null, { collectionName: 'todos', connection: b.connection });
    const cached = [];
    b.todos.on('cached', (c, info) => cached.push(info));
    await Promise.all([b.todos.fetch(), tally.fetch()]);
    assert.equal(b.connection.state !== 'online', true, 'no server involved');
    assert.deepEqual(b.todos.pluck('title'), ['d1 again', 'd2', 'd3']);
    assert.equal(tally.get('total'), 3);
    assert.equal(cached.length, 1);
    assert.ok(b.todos.cachedAt > 0 && tally.cachedAt > 0, 'the time of the cached copy');

    const before = server.log.length;
    server.down = false;
    await b.todos.follow();
    await waitFor(() => tally.get('total') === 4, 'the tally caught up');
    assert.deepEqual(b.todos.pluck('title'), ['d1 again', 'd2', 'd3', 'while away']);
    const sent = server.log.slice(before);
    assert.deepEqual(sent.filter((c) => c.op === 'list' || c.op === 'tally'), [], 'nothing read again');
    const subs = sent.filter((c) => c.op === 'sub');
    assert.deepEqual(subs.map((c) => [c.ch, c.since && c.since.offset]), [['coll:todos', 4], ['tally:todos', 4]]);
    assert.equal(b.todos.cachedAt, null);
    await waitFor(() => tally.cachedAt === null, 'the tally is live');
    await b.close();
  });

  test('a cache the server cannot catch up (a new epoch) is listed again, and merged without a reset', async () => {
    const server = new FakeServer({ seqs: true });
    const idb = new IDBFactory();
    await seenBefore(server, idb);
    server.feed('coll:todos').epoch = 'e2'; // e.g. the server lost its database
    server.coll('todos').delete('d2');
    const b = page(server, idb);
    const resets = [];
    b.todos.on('reset', () => resets.push(1));
    await b.todos.fetch();
    assert.equal(b.todos.length, 3, 'the cached copy first');
    await b.todos.follow();
    await waitFor(() => b.todos.length === 2, 'listed again');
    assert.deepEqual(b.todos.pluck('id'), ['d1', 'd3']);
    assert.deepEqual(resets, []);
    assert.equal(server.log.filter((c) => c.op === 'list').length, 2);
    await b.close();
  });

  test('writes still waiting are shown on top of the cached copy after a reload', async () => {
    const server = new FakeServer({ seqs: true });
    const idb = new IDBFactory();
    await seenBefore(server, idb);
    server.down = true;
    const b = page(server, idb);
    await b.todos.fetch();
    b.todos.get('d2').save({ title: 'edited offline' });
    b.todos.get('d3').destroy();
    const created = b.todos.create({ title: 'made offline' });
    await waitFor(() => b.connection.pending() === 3, 'stored');
    await b.close();

    const c = page(server, idb);
    await c.todos.fetch();
    assert.deepEqual(c.todos.pluck('title'), ['d1 again', 'edited offline', 'made offline']);
    assert.equal(c.todos.get(created.id).isNew(), false);
    server.down = false;
    await waitFor(() => c.connection.pending() === 0, 'sent');
    await c.todos.follow();
    await sleep(20);
    assert.deepEqual(c.todos.pluck('title'), ['d1 again', 'edited offline', 'made offline']);
    assert.deepEqual([...server.coll('todos').values()].map((d) => d.title).sort(), ['d1 again', 'edited offline', 'made offline']);
    await c.close();
  });
});

describe('tabs', () => {
  test('a write in one tab shows in the other before the server answers; one tab sends the outbox, once', async () => {
    const server = new FakeServer({ seqs: true });
    const idb = new IDBFactory();
    const a = page(server, idb);
    const b = page(server, idb);
    await Promise.all([a.todos.fetch(), b.todos.fetch()]);
    assert.equal(a.outbox._leading, true);
    assert.equal(b.outbox._leading, undefined, 'the lock is taken');
    server.down = true;
    server.kill();
    await waitFor(() => a.connection.state === 'offline' && b.connection.state === 'offline', 'offline');

    const made = b.todos.create({ title: 'from b' });
    await waitFor(() => a.todos.length === 1, 'shown in the other tab');
    assert.equal(a.todos.first().get('title'), 'from b');
    assert.equal(a.todos.first().id, made.id);
    await waitFor(() => a.connection.pending() === 1 && b.connection.pending() === 1, 'both count it');

    server.down = false;
    await made._writing;
    await waitFor(() => a.connection.pending() === 0 && b.connection.pending() === 0, 'sent');
    await waitFor(() => a.connection.state === 'online' && b.connection.state === 'online', 'both online');
    await sleep(30);
    assert.equal(writesOf(server).length, 1, 'sent once');
    assert.equal(made.get('_v'), 1);
    await waitFor(() => a.todos.first().get('_v') === 1, 'confirmed in the other tab');
    assert.equal(a.todos.length, 1);
    a.close();
    b.close();
  });

  test('the sending tab closes with writes waiting: the next one takes over and sends each once', async () => {
    const server = new FakeServer({ seqs: true });
    const idb = new IDBFactory();
    const a = page(server, idb);
    const b = page(server, idb);
    await Promise.all([a.todos.fetch(), b.todos.fetch()]);
    server.dropReplies = 1; // applied, the answer lost with a's socket
    server.down = true;
    const first = a.todos.create({ title: 'one' });
    await waitFor(() => server.applied === 1, 'applied');
    a.todos.create({ title: 'two' });
    await waitFor(() => b.connection.pending() === 2, 'stored');
    await a.close();
    server.down = false;
    await waitFor(() => b.connection.pending() === 0, 'the other tab sent them');
    assert.equal(b.outbox._leading, true);
    assert.equal(server.applied, 2, 'each applied once');
    assert.deepEqual(b.todos.pluck('title').sort(), ['one', 'two']);
    assert.equal(b.todos.get(first.id).get('_v'), 1);
    b.close();
  });
});

describe('conflicts people are told about', () => {
  test('conflicts: "reject": the losing write is rolled back and reported with both versions, also after a reload', async () => {
    const Strict = RTSync.Model.extend({ conflicts: 'reject' });
    const StrictTodos = Todos.extend({ model: Strict });
    const server = new FakeServer({ seqs: true });
    server.coll('todos').set('t1', { id: 't1', title: 'a', n: 1, _v: 1, _owner: 'u1' });
    const idb = new IDBFactory();
    const a = page(server, idb);
    const todos = new StrictTodos(null, { connection: a.connection });
    await todos.fetch();
    server.down = true;
    server.kill();
    await waitFor(() => a.connection.state === 'offline', 'offline');
    todos.get('t1').save({ title: 'mine' }).catch(() => {});
    await waitFor(() => a.connection.pending() === 1, 'stored');
    await a.close();
    server.writeAs('todos', { id: 't1', title: 'theirs', n: 1 });

    server.down = false;
    const b = page(server, idb); // a reload: the policy comes with the stored write
    await waitFor(() => b.events.some(([n]) => n === 'rejected'), 'rejected');
    const [[, info]] = b.events.filter(([n]) => n === 'rejected');
    assert.equal(info.error.code, 'conflict');
    assert.equal(info.local.title, 'mine');
    assert.deepEqual(info.server, { id: 't1', title: 'theirs', n: 1, _v: 2, _owner: 'u1' });
    assert.equal(server.coll('todos').get('t1').title, 'theirs', 'nothing forced over it');
    assert.equal(writesOf(server).filter((c) => c.op === 'update').length, 1, 'not written again');
    b.close();
  });

  test('conflicts: "reject" without an outbox: the save fails with the server\'s document', async () => {
    const server = new FakeServer();
    server.coll('todos').set('t1', { id: 't1', title: 'a', _v: 1, _owner: 'u1' });
    const connection = new RTSync.Connection({ url: 'ws://fake/v1/ws', WebSocket: server.WebSocket }).open();
    const Strict = RTSync.Model.extend({ conflicts: 'reject' });
    const todos = new (Todos.extend({ model: Strict }))(null, { connection });
    await todos.fetch({ live: false });
    server.writeAs('todos', { id: 't1', title: 'theirs' });
    const conflicts = [];
    todos.get('t1').on('conflict', (m, info) => conflicts.push(info));
    await assert.rejects(todos.get('t1').save({ title: 'mine' }), (e) => e.code === 'conflict' && e.doc.title === 'theirs');
    assert.equal(conflicts[0].local.title, 'mine');
    assert.equal(server.coll('todos').get('t1').title, 'theirs');
    connection.close();
  });
});

