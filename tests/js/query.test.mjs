// Queries and views in the client library against the real server: fetch pages through a collection
// of more than 1000 documents, `fetch({limit})` with `hasMore`/`fetchNext`, `where`/`order` equal to the
// server's `list` (and `RTSync.comparator`/`RTSync.matches` agreeing with it), live filtered views driven
// by another client (no duplicate add, no document from outside the filter), `follow` after `unfollow`
// catching up, `save` with no change sending nothing, and plain Backbone classes with `RTSync.sync`.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Backbone from 'backbone';
import { Client, cleanupAll, sleep, startServer, waitFor } from '../integration/lib/server.mjs';
import { TODOS, config } from '../integration/lib/config.mjs';
import { RTSync, connect, killFixedServers, slowLink } from './lib/harness.mjs';

after(async () => { await killFixedServers(); await cleanupAll(); });

const Todos = RTSync.Collection.extend({ collectionName: 'todos' });

// Every page of a raw `list` (the server's own answer), with `where` and `order`.
async function rawListAll(server, fields = {}) {
  const c = await Client.connect(server.wsUrl);
  try {
    const docs = [];
    let after = null;
    do {
      const page = await c.call('list', { coll: 'todos', ...fields, ...(after ? { after } : {}) });
      docs.push(...page.docs);
      after = page.next;
    } while (after);
    return docs;
  } finally {
    c.close();
  }
}

// Creates documents through a raw connection, `batch` requests in flight at a time.
async function seed(server, datas, batch = 500) {
  const c = await Client.connect(server.wsUrl);
  try {
    const docs = [];
    for (let i = 0; i < datas.length; i += batch) {
      const replies = await Promise.all(datas.slice(i, i + batch).map((data) => c.call('create', { coll: 'todos', data })));
      docs.push(...replies.map((r) => r.doc));
    }
    return docs;
  } finally {
    c.close();
  }
}

// Records the ids of every `add`, and fails on an `add` of an id already present.
function addLog(collection) {
  const log = { ids: [], duplicates: [] };
  const seen = new Set();
  collection.on('add', (model) => {
    if (model.isNew()) return;
    if (seen.has(model.id)) log.duplicates.push(model.id);
    seen.add(model.id);
    log.ids.push(model.id);
  });
  // A model created locally gets its id later: count it then.
  collection.on('change:id', (model) => { if (!seen.has(model.id)) { seen.add(model.id); log.ids.push(model.id); } });
  collection.on('remove', (model) => seen.delete(model.id));
  return log;
}

const ids = (docs) => docs.map((d) => d.id);
const w = (m) => m._writing;

describe('paging', () => {
  test('fetch() reads every page of 2,500 documents; fetch({limit}) then fetchNext gets each document once', async (t) => {
    const server = await startServer({ config: TODOS });
    await seed(server, Array.from({ length: 2500 }, (_, i) => ({ n: i })));
    const link = slowLink();
    const a = await connect(server, { hooks: link.hooks });
    t.after(() => a.close());

    const all = new Todos(null, { connection: a });
    const returned = await all.fetch();
    assert.equal(returned, all, 'fetch resolves with the collection');
    assert.equal(all.length, 2500);
    assert.equal(new Set(all.pluck('id')).size, 2500);
    assert.equal(all.hasMore(), false);
    assert.ok(link.sentOps('list').length >= 3, 'paged through');
    assert.deepEqual(all.pluck('id'), ids(await rawListAll(server)), 'in the server\'s order (by id)');

    const pages = new Todos(null, { connection: a, live: false });
    const log = addLog(pages);
    await pages.fetch({ limit: 100 });
    assert.equal(pages.length, 100);
    assert.equal(pages.hasMore(), true);
    let calls = 1;
    while (pages.hasMore()) {
      const before = pages.length;
      await pages.fetchNext();
      calls++;
      assert.ok(pages.length > before || !pages.hasMore());
    }
    assert.ok(calls === 25 || calls === 26, `${calls} pages`); // a full last page may still say `next`
    assert.equal(pages.length, 2500);
    assert.deepEqual(log.duplicates, []);
    assert.equal(log.ids.length, 2500, 'each document added once');
    assert.deepEqual(pages.pluck('id'), all.pluck('id'));
    assert.equal(await pages.fetchNext(), pages, 'nothing more: resolves at once');

    // fetch({limit}) again starts over with the first page.
    await pages.fetch({ limit: 10 });
    assert.deepEqual(pages.pluck('id'), all.pluck('id').slice(0, 10));
    assert.equal(pages.hasMore(), true);
  });
});

describe('paging while others write', () => {
  test('a live paged view in an order that others change ends equal to the server\'s list, each document added once', async (t) => {
    const server = await startServer({ config: config(TODOS, '[channels]\nhistory_size = 100000\n') });
    await seed(server, Array.from({ length: 600 }, (_, i) => ({ n: i })));
    const a = await connect(server);
    t.after(() => a.close());
    const view = new Todos(null, { connection: a, order: ['n'] });
    const log = addLog(view);
    await view.fetch({ limit: 50 });

    // Another client moves documents both ways across the pages and creates ones that sort past them.
    const w = await Client.connect(server.wsUrl);
    t.after(() => w.close());
    const moved = (await rawListAll(server)).filter((d, i) => i % 7 === 3);
    const writes = [];
    for (const [k, d] of moved.entries()) {
      writes.push(w.call('patch', { coll: 'todos', doc: d.id, data: { n: k % 2 ? d.n + 400 : d.n - 400 } }));
      writes.push(w.call('create', { coll: 'todos', data: { n: 10_000 + k } }));
    }
    while (view.hasMore()) await view.fetchNext();
    await Promise.all(writes);
    const truth = await rawListAll(server, { order: ['n'] });
    await waitFor(() => view.length === truth.length, { timeout: 10_000, message: "every document in the view" });
    assert.deepEqual(view.pluck('id'), ids(truth));
    assert.deepEqual(view.map((m) => m.get('n')), truth.map((d) => d.n));
    assert.deepEqual(log.duplicates, []);
  });

  test('fetchNext after the paging expired lists again and pages on', async (t) => {
    const server = await startServer({ config: config(TODOS, '[channels]\nhistory_size = 20\n') });
    await seed(server, Array.from({ length: 300 }, (_, i) => ({ n: i })));
    const a = await connect(server);
    t.after(() => a.close());
    const view = new Todos(null, { connection: a, live: false });
    await view.fetch({ limit: 100 });
    const w = await Client.connect(server.wsUrl);
    t.after(() => w.close());
    const first = view.first().id;
    for (let i = 0; i < 25; i++) await w.call('patch', { coll: 'todos', doc: first, data: { n: -i } });
    const raw = await w.request('list', { coll: 'todos', limit: 100, after: view._next });
    assert.equal(raw.error?.code, 'expired', 'the cursor has expired');
    while (view.hasMore()) await view.fetchNext();
    assert.deepEqual(view.pluck('id'), ids(await rawListAll(server)));
    assert.equal(view.get(first).get('n'), -24);
  });
});

// Values of every type, to compare the library's order and filter with the server's.
const VALUES = [undefined, null, false, true, -1.5, 0, 2, 10, 1e6, '', 'Z', 'a', 'ab', 'é', '\uffff', '😀', 'a\u0000z', [1], { x: 1 }];

describe('where and order', () => {
  test('fetch({where, order}) equals the server\'s list; RTSync.comparator and RTSync.matches agree with it', async (t) => {
    const server = await startServer({ config: TODOS });
    const datas = [];
    VALUES.forEach((v, i) => {
      const data = { i, p: i % 3 };
      if (v !== undefined) data.v = v;
      datas.push(data, { ...data, p: (i + 1) % 3 });
    });
    await seed(server, datas);
    const a = await connect(server);
    t.after(() => a.close());

    const queries = [
      { order: ['v'] },
      { order: ['-v', 'p'] },
      { order: ['p', '-v'] },
      { order: ['-id'] },
      { order: ['p', 'id', 'v'] },
      { where: { v: { gt: 0 } }, order: ['-v'] },
      { where: { v: { gte: 'a' } }, order: ['v'] },
      { where: { v: { lt: 'é' } } },
      { where: { v: { ne: null } }, order: ['v'] },
      { where: { v: null } },
      { where: { v: { exists: false } } },
      { where: { v: { exists: true }, p: { in: [0, 2] } }, order: ['p', 'v'] },
      { where: { v: { in: ['a', 2, true, null] } } },
      { where: { v: 'a' } },
      { where: { v: 'a\u0000y' } },
      { where: { v: { lte: '\uffff' } }, order: ['-v'] },
      { where: { v: { gt: '\uffff' } } },
      { where: { v: { eq: 1e6 } } },
      { where: { v: false } },
      { where: { p: 1, v: { ne: 'Z' } }, order: ['-p', '-v'] },
    ];
    const everything = await rawListAll(server);
    for (const query of queries) {
      const expected = await rawListAll(server, query);
      const view = new Todos(null, { connection: a, live: false });
      await view.fetch(query);
      const what = JSON.stringify(query);
      assert.deepEqual(view.toJSON(), expected, `fetch ${what}`);
      assert.deepEqual(view.query, { where: query.where || null, order: query.order || null });
      if (query.order) {
        // The comparator: sorting the server's documents gives the server's order.
        const sorted = expected.slice().reverse().sort(RTSync.comparator(query.order));
        assert.deepEqual(ids(sorted), ids(expected), `comparator ${what}`);
        view.sort();
        assert.deepEqual(view.pluck('id'), ids(expected), `the view keeps the order ${what}`);
      }
      if (query.where) {
        const matching = everything.filter((d) => RTSync.matches(query.where, d));
        assert.deepEqual(ids(matching).sort(), ids(expected).sort(), `matches ${what}`);
      }
    }
  });
});

describe('live filtered views', () => {
  test('a view driven by another client ends equal to the server\'s list: no duplicate add, no outside document', async (t) => {
    const server = await startServer({ config: TODOS });
    const link = slowLink();
    const a = await connect(server, { hooks: link.hooks });
    const b = await connect(server);
    t.after(() => { a.close(); b.close(); });
    const query = { where: { status: 'open' }, order: ['-priority', 'title'] };

    // A class with `where` and `order`, and an instance with the options: two views of `todos`.
    const Open = Todos.extend(query);
    const open = new Open(null, { connection: a });
    assert.equal(typeof open.where, 'function', 'Backbone\'s where() stays a method');
    assert.deepEqual(open.query, query);
    const writer = new Todos(null, { connection: b });
    await writer.fetch();
    const first = await Promise.all([
      writer.create({ title: 'a', status: 'open', priority: 1 }, { wait: true }),
      writer.create({ title: 'b', status: 'done', priority: 2 }, { wait: true }),
    ].map((m) => m._writing.then(() => m)));
    await open.fetch();
    assert.deepEqual(open.pluck('title'), ['a']);
    const sub = link.sentOps('sub').find((o) => o.ch === 'coll:todos');
    assert.deepEqual(sub.where, query.where, 'the feed is filtered by the server');

    const log = addLog(open);
    const outside = new Set();   // ids of documents that never matched
    const models = {};
    const create = async (title, status, priority) => {
      const m = writer.create({ title, status, priority });
      await m._writing;
      models[title] = m;
      if (status !== 'open') outside.add(m.id);
      return m;
    };
    await create('c', 'open', 5);         // created in the filter
    await create('d', 'done', 9);         // created outside
    await create('e', 'open', 3);
    await create('f', 'archived', 1);     // outside, and stays outside
    await models.c.save({ priority: 0 }); // changed within: moves in the order
    await models.e.save({ status: 'done' }); // leaves the filter
    await models.d.save({ status: 'open' }); // moves into the filter
    outside.delete(models.d.id);
    await models.f.save({ priority: 7 }); // outside, changed: nothing for the view
    await models.e.save({ status: 'open', priority: 4 }); // comes back
    await models.c.destroy();             // deleted in the filter
    await first[1].destroy();             // deleted outside
    const last = await create('g', 'open', 4); // ties with e on priority: ordered by title

    const expected = await rawListAll(server, query);
    await waitFor(() => _equalIds(open, expected), { message: 'the view equal to the server\'s list' });
    await sleep(200); // any straggling push has arrived by now
    assert.deepEqual(open.toJSON(), await rawListAll(server, query), 'same documents, same order');
    assert.deepEqual(open.pluck('title'), ['d', 'e', 'g', 'a']);
    assert.deepEqual(log.duplicates, [], 'no duplicate add');
    assert.deepEqual(log.ids.filter((id) => outside.has(id)), [], 'no add of a document outside the filter');
    assert.ok(log.ids.includes(last.id));

    // Our own write takes a document out of the filter: the server's `leave` removes it here too.
    const removed = [];
    open.on('remove', (m) => removed.push(m.get('title')));
    await open.get(last.id).save({ status: 'done' });
    await waitFor(() => !open.get(last.id), { message: 'our own document left the view' });
    assert.deepEqual(removed, ['g']);
    assert.equal(open.findWhere({ title: 'a' }).get('priority'), 1, 'Backbone\'s findWhere still works');
  });

  test('two views of one collection on one connection (different filters) and a paged view stay right', async (t) => {
    const server = await startServer({ config: TODOS });
    const a = await connect(server);
    const b = await connect(server);
    t.after(() => { a.close(); b.close(); });
    await seed(server, Array.from({ length: 20 }, (_, i) => ({ n: 10 + i * 10, even: i % 2 === 0 })));
    const even = new Todos(null, { connection: a, where: { even: true }, order: ['n'] });
    const odd = new Todos(null, { connection: a, where: { even: false }, order: ['n'] });
    const paged = new Todos(null, { connection: a, where: { even: true }, order: ['n'] });
    await Promise.all([even.fetch(), odd.fetch(), paged.fetch({ limit: 3 })]);
    assert.equal(even.length, 10);
    assert.equal(odd.length, 10);
    assert.deepEqual(paged.pluck('n'), [10, 30, 50]);
    const logs = [even, odd, paged].map(addLog);

    const writer = new Todos(null, { connection: b });
    await writer.fetch();
    const w = (m) => m._writing;
    await w(writer.create({ n: 5, even: true }));     // before the paged view's last: it joins
    await w(writer.create({ n: 999, even: true }));   // after it: left for its page
    await w(writer.create({ n: 7, even: false }));
    const flip = writer.find((m) => m.get('n') === 20);
    await flip.save({ even: true });                  // odd -> even
    const gone = writer.find((m) => m.get('n') === 30);
    await gone.destroy();

    for (const [view, query] of [[even, { where: { even: true } }], [odd, { where: { even: false } }]]) {
      const expected = await rawListAll(server, { ...query, order: ['n'] });
      await waitFor(() => _equalIds(view, expected), { message: `view ${JSON.stringify(query)}` });
      assert.deepEqual(view.toJSON(), expected);
    }
    await waitFor(() => paged.pluck('n').join() === '5,10,20,50', { message: 'the paged view' });
    while (paged.hasMore()) await paged.fetchNext();
    assert.deepEqual(paged.toJSON(), await rawListAll(server, { where: { even: true }, order: ['n'] }));
    for (const log of logs) assert.deepEqual(log.duplicates, []);
    assert.equal(logs[2].ids.filter((id) => paged.get(id)?.get('n') === 999).length, 1, 'the far document came once, with its page');
  });
});

// Whether a collection holds exactly these documents' ids, in this order.
function _equalIds(collection, docs) {
  return collection.pluck('id').join() === ids(docs).join() && collection.every((m, i) => m.get('_v') === docs[i]._v);
}

describe('follow after unfollow', () => {
  test('catches up on what it missed: from the feed when the server still has it, by a list when not', async (t) => {
    const server = await startServer({ config: config(TODOS, '[channels]\nhistory_size = 10\n') });
    const link = slowLink();
    const a = await connect(server, { hooks: link.hooks });
    const b = await connect(server);
    t.after(() => { a.close(); b.close(); });
    const query = { where: { open: true }, order: ['n'] };
    const todos = new Todos(null, { connection: a, ...query });
    const writer = new Todos(null, { connection: b });
    await Promise.all([todos.fetch(), writer.fetch()]);
    const kept = writer.create({ n: 1, open: true });
    const other = writer.create({ n: 2, open: true });
    await Promise.all([kept._writing, other._writing]);
    await waitFor(() => todos.length === 2, { message: 'followed' });

    todos.unfollow();
    await a.request('ping');
    await kept.save({ n: 10 });
    await other.save({ open: false });
    await w(writer.create({ n: 3, open: true }));
    await w(writer.create({ n: 4, open: false }));
    const lists = link.sentOps('list').length;
    assert.equal(await todos.follow(), todos, 'resolves with the collection');
    assert.deepEqual(todos.toJSON(), await rawListAll(server, query), 'caught up when follow resolves');
    const sub = link.sentOps('sub').at(-1);
    assert.ok(sub.since, 'resubscribed from where it stopped');
    assert.deepEqual(sub.where, { open: true });
    assert.equal(link.sentOps('list').length, lists, 'from the feed, no list');

    // More changes than the feed keeps: the server cannot recover them, the collection lists again.
    todos.unfollow();
    await a.request('ping');
    for (let i = 0; i < 15; i++) await w(writer.create({ n: 100 + i, open: i % 2 === 0 }));
    await kept.destroy();
    await todos.follow();
    assert.deepEqual(todos.toJSON(), await rawListAll(server, query), 'caught up by a list');
    assert.equal(link.sentOps('list').length, lists + 1);

    // And it follows again.
    await w(writer.create({ n: 1000, open: true }));
    await waitFor(async () => _equalIds(todos, await rawListAll(server, query)), { message: 'followed again' });
  });
});

describe('save and the Backbone seam', () => {
  test('save() with no change sends nothing and resolves with the model; save, fetch and destroy return promises', async (t) => {
    const server = await startServer({ config: TODOS });
    const link = slowLink();
    const a = await connect(server, { hooks: link.hooks });
    t.after(() => a.close());
    const todos = new Todos(null, { connection: a });
    await todos.fetch();
    const m = todos.create({ title: 'x', tags: ['a'] });
    await m._writing;
    const writes = () => link.sent.filter((o) => ['create', 'update', 'patch', 'delete'].includes(o.op)).length;
    const before = writes();

    const p = m.save();
    assert.ok(p instanceof Promise);
    assert.equal(await p, m, 'resolves with the model');
    assert.equal(await m.save({ title: 'x', tags: ['a'] }), m);
    assert.equal(await m.save('title', 'x'), m);
    assert.equal(await m.save({ tags: ['a'] }, { patch: true }), m);
    let succeeded = 0;
    await m.save(null, { success: () => succeeded++ });
    assert.equal(succeeded, 1, 'success is called');
    await a.request('ping');
    assert.equal(writes(), before, 'no write sent');
    assert.equal(m.get('_v'), 1);

    // A change, and a change undone before saving.
    m.set({ title: 'y' });
    m.set({ title: 'x' });
    await m.save();
    assert.equal(writes(), before);
    assert.ok((await m.save({ title: 'z' })) === m);
    assert.equal(writes(), before + 1);
    assert.equal(m.get('_v'), 2);
    assert.equal(await m.save(null, { force: true }), m);
    assert.equal(m.get('_v'), 3, 'force writes anyway');

    // Every one of them is a promise: fetch, a failed validation, destroy of a new model.
    assert.ok(m.fetch() instanceof Promise);
    const Strict = RTSync.Model.extend({ collectionName: 'todos', validate: (attrs) => (attrs.title ? undefined : 'no title') });
    const strict = new Strict({}, { connection: a });
    await assert.rejects(strict.save(), (e) => e instanceof RTSync.Error && e.code === 'invalid' && e.message === 'no title');
    const fresh = new RTSync.Model({ n: 1 }, { collectionName: 'todos', connection: a });
    const destroyed = fresh.destroy();
    assert.ok(destroyed instanceof Promise);
    assert.equal(await destroyed, fresh);
    assert.ok(m.destroy() instanceof Promise);
  });

  test('plain Backbone.Model and Backbone.Collection with RTSync.sync, no parse', async (t) => {
    const server = await startServer({ config: TODOS });
    const a = await connect(server);
    t.after(() => a.close());
    const Todo = Backbone.Model.extend({ collectionName: 'todos', sync: RTSync.sync, connection: a });
    const PlainTodos = Backbone.Collection.extend({ model: Todo, collectionName: 'todos', sync: RTSync.sync, connection: a });

    const todo = new Todo({ title: 'plain' });
    assert.equal(await todo.save(), todo);
    assert.match(todo.id, /^[0-9a-f]{16}$/);
    assert.deepEqual(Object.keys(todo.attributes).sort(), ['_owner', '_v', 'id', 'title'], 'the document, unwrapped');
    assert.equal(todo.get('_v'), 1);
    await todo.save({ title: 'changed' });
    assert.equal(todo.get('_v'), 2);

    const again = new Todo({ id: todo.id });
    await again.fetch();
    assert.deepEqual(again.toJSON(), todo.toJSON());

    await seed(server, Array.from({ length: 1200 }, (_, i) => ({ n: i })));
    const plain = new PlainTodos();
    assert.equal(await plain.fetch(), plain);
    assert.equal(plain.length, 1201, 'every page');
    assert.deepEqual(plain.get(todo.id).toJSON(), todo.toJSON());
    const page = new PlainTodos();
    await page.fetch({ where: { n: { lt: 5 } }, order: ['-n'], limit: 3 });
    assert.deepEqual(page.pluck('n'), [4, 3, 2]);

    const created = plain.create({ title: 'via the collection' });
    await created._writing;
    assert.match(created.id, /^[0-9a-f]{16}$/);
    await again.destroy();
    assert.deepEqual((await rawListAll(server, { where: { title: { exists: true } } })).map((d) => d.title), ['via the collection']);
  });
});
