// Collections as queries (docs/protocol.md §6, "Queries", "Live filtered views"), on both stores: SQLite
// (one node) and PostgreSQL (a cluster node with Redis). 20,000 documents paged at several limits over
// WebSocket and REST while writers create, update, delete and move documents in the order: every
// document that exists and matches throughout comes exactly once, in order (as of the first page); a
// cursor older than the change feed can place is `expired`. A live filtered view driven by concurrent writers ends equal to `list`
// with its `where`, with no duplicate push and no event for a document outside it, and recovers the same
// selection after a reconnect. Bad queries are refused with bad_request naming the problem.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, httpRequest, startServer } from './lib/server.mjs';
import { cleanupCluster, startNode, startPostgres, startRedis } from './lib/cluster.mjs';
import { collection, config } from './lib/config.mjs';

after(async () => {
  try { await cleanupAll(); } finally { await cleanupCluster(); }
});

const CONFIG = config(
  '[limits]\nrate = 0\n',  // the writers here send thousands of commands at once
  // Pages are placed as of the first from the change feed: keep all the changes a paging here overlaps.
  '[channels]\nhistory_size = 100000\n',
  collection('items', 'read = "all"', 'write = "all"', 'indexes = [["team", "-n"], "status"]'),
  collection('mine', 'read = "owner"', 'write = "owner"'),
  collection('churn', 'read = "all"', 'write = "all"'),
);

const BACKENDS = {
  sqlite: async () => startServer({ config: CONFIG }),
  postgres: async () => {
    const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
    return startNode({ redis, pg, node: 'q', config: CONFIG });
  },
};

// Sends many commands without waiting for each; resolves with the replies in order.
async function pipelined(c, commands, window = 400) {
  const out = [];
  for (let i = 0; i < commands.length; i += window) {
    const batch = commands.slice(i, i + window).map(([op, fields]) => c.call(op, fields, { timeout: 120_000 }));
    out.push(...await Promise.all(batch));
  }
  return out;
}

const pad = (i) => String(i).padStart(6, '0');

// The documented type order of one attribute (missing < null < false < true < numbers < strings).
function rank(v) {
  if (v === undefined) return [0];
  if (v === null) return [1];
  if (v === false) return [2];
  if (v === true) return [3];
  if (typeof v === 'number') return [4, v];
  if (typeof v === 'string') return [5, v];
  return [6];
}
function cmpKey(a, b) {
  const ra = rank(a), rb = rank(b);
  if (ra[0] !== rb[0]) return ra[0] - rb[0];
  if (ra.length === 1) return 0;
  if (typeof ra[1] === 'number') return ra[1] - rb[1];
  const ba = Buffer.from(ra[1]), bb = Buffer.from(rb[1]);
  return Buffer.compare(ba, bb);
}
const byId = (a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id));

// What a view with `where` (only scalar equality and gte, as this file uses) holds of a document.
const matches = (where, d) => Object.entries(where).every(([k, v]) => {
  if (v !== null && typeof v === 'object') return typeof d[k] === 'number' && d[k] >= v.gte;
  return d[k] === v;
});

for (const [name, start] of Object.entries(BACKENDS)) {
  describe(`queries on ${name}`, { timeout: 600_000 }, () => {
    let server;
    before(async () => { server = await start(); });

    test('20,000 documents paged at several limits while writers change others: each stable one exactly once',
         { timeout: 400_000 }, async () => {
      const setup = await Client.connect(server.wsUrl);
      const N = 20_000;
      await pipelined(setup, Array.from({ length: N }, (_, i) => ['create', {
        coll: 'items', data: { id: `s${pad(i)}`, team: ['a', 'b', 'c'][i % 3], n: i % 100, status: i % 2 ? 'open' : 'done' },
      }]));
      // Documents the writers create and delete meanwhile, interleaved with the stable ones by id.
      await pipelined(setup, Array.from({ length: 500 }, (_, i) => ['create', { coll: 'items', data: { id: `s${pad(i * 40)}x`, team: 'z' } }]));

      const writer = await Client.connect(server.wsUrl);
      let stop = false;
      let round = 0;
      const churn = (async () => {
        while (!stop) {
          const i = round++ % 500;
          await writer.call('create', { coll: 'items', data: { id: `s${pad(i * 40 + 20)}y`, team: 'z' } });
          await writer.call('delete', { coll: 'items', doc: `s${pad(i * 40)}x` }).catch(() => {});
          await writer.call('patch', { coll: 'items', doc: `s${pad((i * 37) % N)}`, data: { n: round } });
          await writer.call('create', { coll: 'items', data: { id: `s${pad(i * 40)}x`, team: 'z' } }).catch(() => {});
          await writer.call('delete', { coll: 'items', doc: `s${pad(i * 40 + 20)}y` });
        }
      })();

      const reader = await Client.connect(server.wsUrl);
      for (const limit of [1000, 333, 57]) {
        const seen = new Map();
        let after = null;
        let pages = 0;
        let last = null;
        do {
          const page = await reader.call('list', { coll: 'items', limit, after });
          assert.ok(page.docs.length <= limit);
          for (const d of page.docs) {
            if (last) assert.ok(byId(last, d) < 0, `ascending by id: ${last.id} then ${d.id}`);
            last = d;
            seen.set(d.id, (seen.get(d.id) ?? 0) + 1);
          }
          after = page.next;
          pages++;
        } while (after);
        for (let i = 0; i < N; i++) assert.equal(seen.get(`s${pad(i)}`), 1, `limit ${limit}: s${pad(i)} once`);
        for (const [id, n] of seen) assert.equal(n, 1, `limit ${limit}: ${id} returned ${n} times`);
        assert.ok(pages >= Math.ceil(N / limit), `limit ${limit}: ${pages} pages`);
      }

      // In an order that the writer's patches change (n): every s document still comes once, over
      // WebSocket and over REST (through Link headers, with a where and an order an index serves).
      const wsSeen = new Map();
      let after = null;
      do {
        const page = await reader.call('list', { coll: 'items', where: { team: { ne: 'z' } }, order: ['-n'], limit: 250, after });
        for (const d of page.docs) wsSeen.set(d.id, (wsSeen.get(d.id) ?? 0) + 1);
        after = page.next;
      } while (after);
      for (let i = 0; i < N; i++) assert.equal(wsSeen.get(`s${pad(i)}`), 1, `order -n: s${pad(i)} once`);
      assert.equal(wsSeen.size, N);

      const restDocs = [];
      let url = `/v1/collections/items?where=${encodeURIComponent(JSON.stringify({ team: 'b' }))}&order=-n&limit=400`;
      for (let pages = 0; url; pages++) {
        assert.ok(pages < 200, 'REST paging ends');
        const res = await httpRequest(`${server.url}${url}`);
        assert.equal(res.status, 200, res.body);
        for (const d of res.json()) {
          assert.equal(d.team, 'b');
          restDocs.push(d);
        }
        const link = res.headers.link;
        url = link ? link.match(/^<([^>]+)>; rel="next"$/)[1] : null;
        if (url) assert.match(url, /^\/v1\/collections\/items\?.*after=/);
      }
      stop = true;
      await churn;
      assert.ok(round > 10, `the writer ran meanwhile (${round} rounds)`);
      const restSeen = new Map();
      for (const d of restDocs) restSeen.set(d.id, (restSeen.get(d.id) ?? 0) + 1);
      for (let i = 1; i < N; i += 3) assert.equal(restSeen.get(`s${pad(i)}`), 1, `REST: s${pad(i)} once`);
      assert.equal(restSeen.size, restDocs.length, 'REST: no document twice');
      // The documents the writer left alone are where they are now, in order (-n, then id).
      const patched = new Set(Array.from({ length: round }, (_, r) => `s${pad(((r % 500) * 37) % N)}`));
      const still = restDocs.filter((d) => !patched.has(d.id));
      for (let i = 1; i < still.length; i++) {
        const [p, d] = [still[i - 1], still[i]];
        assert.ok(p.n > d.n || (p.n === d.n && byId(p, d) < 0), `REST order: ${p.id} (${p.n}) then ${d.id} (${d.n})`);
      }
      for (const c of [setup, writer, reader]) await c.close();
    });

    test('a live filtered view under concurrent writers ends equal to list with its where', { timeout: 200_000 }, async () => {
      const where = { team: 'v', n: { gte: 5 } };
      const ids = Array.from({ length: 60 }, (_, i) => `v${pad(i)}`);
      const setup = await Client.connect(server.wsUrl);
      await pipelined(setup, ids.slice(0, 30).map((id, i) => ['create', { coll: 'items', data: { id, team: i % 2 ? 'v' : 'w', n: i % 10 } }]));

      const viewer = await Client.connect(server.wsUrl);
      viewer.queueing = false;
      const pushes = [];
      viewer.listeners.push((o) => { if (o.op === 'msg' && o.ch === 'coll:items') pushes.push(o); });
      const first = await viewer.call('list', { coll: 'items', where });
      const view = new Map(first.docs.map((d) => [d.id, d]));
      for (const d of first.docs) assert.ok(matches(where, d));
      const sub = await viewer.call('sub', { ch: 'coll:items', where, since: { offset: first.offset, epoch: first.epoch } });
      assert.equal(sub.recovered, true);
      const apply = (p) => {
        const e = p.data;
        if (e.type === 'upsert') {
          assert.ok(matches(where, e.doc), `an upsert only of a matching document: ${JSON.stringify(e.doc)}`);
          view.set(e.doc.id, e.doc);
        } else {
          assert.ok(['leave', 'delete'].includes(e.type), JSON.stringify(e));
          assert.ok(view.has(e.id), `${e.type} only of a document in the view: ${JSON.stringify(e)}`);
          view.delete(e.id);
        }
      };
      const offsets = new Set();
      for (const p of sub.pubs ?? []) { offsets.add(p.offset); apply(p); }

      const writers = await Promise.all([0, 1, 2].map(() => Client.connect(server.wsUrl)));
      await Promise.all(writers.map(async (w, k) => {
        for (let r = 0; r < 80; r++) {
          const id = ids[(r * 7 + k * 13) % ids.length];
          const step = (r + k) % 4;
          if (step === 3) {
            await w.request('delete', { coll: 'items', doc: id });
          } else {
            await w.call('update', { coll: 'items', doc: id, data: { team: (r + k) % 3 ? 'v' : 'w', n: (r * 3 + k) % 10 } });
          }
        }
      }));
      const done = await writers[0].call('create', { coll: 'items', data: { id: 'v-last', team: 'v', n: 9 } });
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the last change never reached the view')), 30_000);
        const check = () => {
          while (pushes.length) {
            const p = pushes.shift();
            assert.ok(!offsets.has(p.offset), `no duplicate push (offset ${p.offset})`);
            offsets.add(p.offset);
            apply(p);
            if (p.data.type === 'upsert' && p.data.doc.id === done.doc.id) { clearTimeout(t); return resolve(); }
          }
          setTimeout(check, 10);
        };
        check();
      });
      const truth = await setup.call('list', { coll: 'items', where });
      assert.deepEqual([...view.values()].sort(byId), truth.docs.sort(byId));

      // Recovery: a new subscription from the first list's offset gets the same selection.
      const again = await Client.connect(server.wsUrl);
      const rec = await again.call('sub', { ch: 'coll:items', where, since: { offset: first.offset, epoch: first.epoch } });
      assert.equal(rec.recovered, true);
      const live = [...offsets].sort((a, b) => a - b);
      const recovered = (rec.pubs ?? []).map((p) => p.offset).filter((o) => o <= live.at(-1));
      assert.deepEqual(recovered, live, 'recovery returns what the live view received');
      for (const c of [setup, viewer, again, ...writers]) await c.close();
    });

    test('where and order as documented, over WebSocket and REST; bad queries are bad_request', async () => {
      const c = await Client.connect(server.wsUrl);
      const docs = [
        { id: 'o1', kind: 'ord', n: 3, s: 'b' }, { id: 'o2', kind: 'ord', n: 1.5, s: 'a' },
        { id: 'o3', kind: 'ord', s: 'c' }, { id: 'o4', kind: 'ord', n: null }, { id: 'o5', kind: 'ord', n: '7' },
        { id: 'o6', kind: 'ord', n: true }, { id: 'o7', kind: 'ord', n: 10 },
      ];
      for (const data of docs) await c.call('create', { coll: 'items', data });
      const ids = async (q) => (await c.call('list', { coll: 'items', ...q })).docs.map((d) => d.id);
      assert.deepEqual(await ids({ where: { kind: 'ord' }, order: ['n'] }),
                       docs.slice().sort((a, b) => cmpKey(a.n, b.n) || byId(a, b)).map((d) => d.id));
      assert.deepEqual(await ids({ where: { kind: 'ord', n: { gt: 1 } } }), ['o1', 'o2', 'o7']);
      assert.deepEqual(await ids({ where: { kind: 'ord', n: { lt: '9' } } }), ['o5']);
      assert.deepEqual(await ids({ where: { kind: 'ord', n: { exists: false } } }), ['o3']);
      assert.deepEqual(await ids({ where: { kind: 'ord', n: null } }), ['o4']);
      assert.deepEqual(await ids({ where: { kind: 'ord', n: { ne: null } } }), ['o1', 'o2', 'o5', 'o6', 'o7']);
      assert.deepEqual(await ids({ where: { kind: 'ord', n: { in: [3, true, 'x'] } } }), ['o1', 'o6']);
      assert.deepEqual(await ids({ where: { kind: 'ord', s: { gte: 'b' } }, order: ['-s'] }), ['o3', 'o1']);
      assert.deepEqual(await ids({ where: { kind: 'ord', id: { in: ['o2', 'o4'] } } }), ['o2', 'o4']);
      const rest = await httpRequest(`${server.url}/v1/collections/items?where=${encodeURIComponent(JSON.stringify({ kind: 'ord' }))}&order=-n&limit=3`);
      assert.equal(rest.status, 200);
      assert.deepEqual(rest.json().map((d) => d.id), ['o5', 'o7', 'o1']);
      assert.match(rest.headers.link, /rel="next"/);

      const bad = [
        [{ where: [] }, /where/], [{ where: { n: { lt: true } } }, /lt/], [{ where: { n: { near: 1 } } }, /near/],
        [{ where: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`a${i}`, i])) }, /16/],
        [{ order: ['n', 'n'] }, /order/], [{ order: 'n' }, /order/], [{ limit: 0 }, /limit/], [{ limit: 1001 }, /limit/],
        [{ after: 'nonsense' }, /after/], [{ where: { 'a"b': 1 } }, /name|"/],
      ];
      for (const [q, re] of bad) {
        const r = await c.request('list', { coll: 'items', ...q });
        assert.equal(r.error?.code, 'bad_request', JSON.stringify(q));
        assert.match(r.error.message, re, JSON.stringify(q));
      }
      // A cursor of another where is refused; the same cursor with its own where works.
      const page = await c.call('list', { coll: 'items', where: { kind: 'ord' }, limit: 2 });
      assert.ok(page.next);
      assert.equal((await c.request('list', { coll: 'items', where: { kind: 'x' }, after: page.next })).error?.code, 'bad_request');
      assert.deepEqual((await c.call('list', { coll: 'items', where: { kind: 'ord' }, limit: 2, after: page.next })).docs.map((d) => d.id), ['o3', 'o4']);
      for (const target of ['?limit=x', '?where=%7B', '?where=%5B%5D', '?order=a,a']) {
        const res = await httpRequest(`${server.url}/v1/collections/items${target}`);
        assert.equal(res.status, 400, target);
        assert.equal(res.json().error.code, 'bad_request');
      }
      assert.equal((await c.request('sub', { ch: 'news', where: { a: 1 } })).error?.code, 'bad_request');
      assert.equal((await c.request('sub', { ch: 'coll:items', where: { a: { bad: 1 } } })).error?.code, 'bad_request');
      await c.close();
    });

    test('a cursor that the change feed can no longer place is expired, over WebSocket and REST', { timeout: 120_000 }, async () => {
      const c = await Client.connect(server.wsUrl);
      await pipelined(c, ['a', 'b', 'c'].map((id) => ['create', { coll: 'churn', data: { id, n: 0 } }]));
      const first = await c.call('list', { coll: 'churn', limit: 1 });
      assert.ok(first.next);
      // More changes since the first page than a later page reads (10,000).
      await pipelined(c, Array.from({ length: 10_001 }, (_, i) => ['patch', { coll: 'churn', doc: 'c', data: { n: i } }]));
      const r = await c.request('list', { coll: 'churn', limit: 1, after: first.next });
      assert.equal(r.error?.code, 'expired');
      assert.match(r.error.message, /list again from the first page/);
      const res = await httpRequest(`${server.url}/v1/collections/churn?limit=1&after=${encodeURIComponent(first.next)}`);
      assert.equal(res.status, 410);
      assert.equal(res.json().error.code, 'expired');
      // Listing from the first page again pages as before.
      const again = await c.call('list', { coll: 'churn', limit: 1 });
      assert.deepEqual((await c.call('list', { coll: 'churn', limit: 5, after: again.next })).docs.map((d) => d.id), ['b', 'c']);
      await c.close();
    });

    test('read = "owner": queries and filtered views see only the caller\'s documents', async () => {
      const [a, b] = await Promise.all([Client.connect(server.wsUrl), Client.connect(server.wsUrl)]);
      await a.call('create', { coll: 'mine', data: { tag: 't', who: 'a' } });
      const sub = await b.call('sub', { ch: 'coll:mine', where: { tag: 't' } });
      await b.call('create', { coll: 'mine', data: { tag: 't', who: 'b' } });
      await a.call('create', { coll: 'mine', data: { tag: 't', who: 'a2' } });
      const got = await b.messagesUntil('coll:mine', sub.offset + 1);
      assert.deepEqual(got.map((m) => m.data.doc.who), ['b']);
      assert.deepEqual((await b.call('list', { coll: 'mine', where: { tag: 't' } })).docs.map((d) => d.who), ['b']);
      await b.call('ping');
      assert.equal(b.peek((o) => o.op === 'msg' && o.ch === 'coll:mine').length, 0, 'nothing of a\'s documents');
      await a.close();
      await b.close();
    });
  });
}

test('a page is cut to what the connection can take: no reply closes its own connection', { timeout: 120_000 }, async () => {
  const server = await startServer({ config: config('[limits]\nrate = 0\nmax_outbound = 80000\n', collection('big', 'read = "all"', 'write = "all"')) });
  const c = await Client.connect(server.wsUrl);
  const text = 'x'.repeat(300);
  await pipelined(c, Array.from({ length: 1500 }, (_, i) => ['create', { coll: 'big', data: { id: `b${pad(i)}`, text } }]), 50);
  const seen = [];
  let after = null;
  do {
    const page = await c.call('list', { coll: 'big', after });
    assert.ok(page.docs.length > 0 && page.docs.length < 1000, `cut to fit 80,000 bytes: ${page.docs.length}`);
    seen.push(...page.docs.map((d) => d.id));
    after = page.next;
  } while (after);
  assert.deepEqual(seen, Array.from({ length: 1500 }, (_, i) => `b${pad(i)}`));
  assert.equal(c.closeInfo, null, 'the connection is still open');
  await c.close();
});
