// Exact tallies under load (issue 3; docs/protocol.md §6): 300 concurrent WebSocket clients each create
// their per_user submission, resubmit other values, some delete (and re-create); idempotent retries are
// mixed in. The final tally equals what the test expects and a recount of the stored documents; every
// tally:NAME subscriber saw strictly increasing offsets ending at that final tally. Then kill -9 while
// 200 clients submit: after a restart every acknowledged write is there and the tally equals a recount.
//
// The recount reads every document: the server is restarted on the same data dir with a config in which
// the same collection has read = "all" (the documents are keyed by collection name).

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, TIMEOUT, cleanupAll, startServer, tmpDir, withTimeout } from './lib/server.mjs';
import { perUserTally } from './lib/config.mjs';

after(cleanupAll);

const COLL = 'votes';
const FIELDS = { q1: [0, 1, 2, 3], q2: [0, 1, 2, 3] };
const CONFIG = perUserTally(COLL); // tallies FIELDS (TALLY_Q1_Q2)
// The same collection, readable by everyone: for the recount after a restart on the same data dir.
const RECOUNT_CONFIG = perUserTally(COLL, { read: 'all' });

// ---------------------------------------------------------------------------------------------------
// Helpers

// Opens n connections, `concurrency` handshakes at a time.
async function connectN(wsUrl, n, concurrency = 20) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await Client.connect(wsUrl, { timeout: 60_000 });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

// The tally of documents' attributes, with zero counts left out.
function recount(docs) {
  const t = { total: 0, counts: {} };
  for (const d of docs) {
    t.total++;
    for (const f of Object.keys(FIELDS)) {
      if (d[f] === undefined || d[f] === null) continue;
      const c = (t.counts[f] ??= {});
      c[String(d[f])] = (c[String(d[f])] ?? 0) + 1;
    }
  }
  return t;
}

// A tally without zero counts (the server may or may not list them).
function norm(t) {
  const counts = {};
  for (const [field, values] of Object.entries(t.counts ?? {})) {
    for (const [value, n] of Object.entries(values)) if (n !== 0) (counts[field] ??= {})[String(value)] = n;
  }
  return { total: t.total, counts };
}

const attrs = (doc) => Object.fromEntries(Object.entries(doc).filter(([k]) => k !== 'id' && !k.startsWith('_')));

// Records every tally:COLL push of a connection, and resolves waits for an offset.
class TallyRecorder {
  constructor(client) {
    this.client = client;
    this.pushes = [];
    this.waits = [];
    client.queueing = false;
    client.listeners.push((o) => {
      if (o.op !== 'msg' || o.ch !== `tally:${COLL}`) return;
      this.pushes.push(o);
      this.waits = this.waits.filter((w) => (o.offset >= w.offset ? (w.resolve(), false) : true));
    });
  }

  async subscribe() {
    this.reply = await this.client.call('sub', { ch: `tally:${COLL}` });
  }

  until(offset, timeout = 60_000) {
    if ((this.pushes.at(-1)?.offset ?? this.reply.offset) >= offset) return Promise.resolve();
    return withTimeout(new Promise((resolve) => this.waits.push({ offset, resolve })), timeout,
                       `tally subscriber did not reach offset ${offset} (last ${this.pushes.at(-1)?.offset})`);
  }
}

// Restarts on `dataDir` with read = "all" and returns {server, client, docs, tally} (tally: the op's reply).
async function recountServer(dataDir) {
  const server = await startServer({ config: RECOUNT_CONFIG, dataDir });
  const client = await Client.connect(server.wsUrl);
  const list = await client.call('list', { coll: COLL });
  const tally = await client.call('tally', { coll: COLL });
  return { server, client, docs: list.docs, tally };
}

// ---------------------------------------------------------------------------------------------------

test('300 concurrent clients: the final tally equals the expected counts and a recount', { timeout: 115_000 }, async (t0) => {
  const N = 300;
  const dataDir = tmpDir('rtsync-tally-');
  const server = await startServer({ config: CONFIG, dataDir });

  const recorders = [];
  for (let i = 0; i < 4; i++) {
    const r = new TallyRecorder(await Client.connect(server.wsUrl));
    await r.subscribe();
    recorders.push(r);
  }
  const clients = await connectN(server.wsUrl, N);
  const users = new Set(clients.map((c) => c.hello.user));
  assert.equal(users.size, N, 'every connection without a cookie is its own user');

  const first = (i) => ({ q1: i % 4, q2: Math.floor(i / 4) % 4 });
  const second = (i) => (i % 3 === 0 ? { q1: (i + 1) % 4 } : { q1: (i + 2) % 4, q2: (i + 3) % 4 });
  const again = (i) => ({ q2: (i + 1) % 4 });
  const final = new Map();   // user -> attributes (absent: deleted)
  const problems = [];
  let changing = 0;          // writes that change the tally (replays excluded)

  await Promise.all(clients.map(async (c, i) => {
    const user = c.hello.user;
    const created = (await c.call('create', { coll: COLL, data: first(i), key: `create-${i}` })).doc;
    if (created.id !== user || created._v !== 1) problems.push({ i, created });
    changing++;

    // Resubmission. Every 10th client sends it twice back to back with the same key (a retry that
    // may share the first's commit): both answers are the first result, applied once.
    const upd = { coll: COLL, doc: 'me', data: second(i), key: `update-${i}` };
    const replies = await Promise.all(i % 10 === 0 ? [c.call('update', upd), c.call('update', upd)] : [c.call('update', upd)]);
    for (const r of replies) {
      if (r.doc._v !== 2 || JSON.stringify(attrs(r.doc)) !== JSON.stringify(second(i))) problems.push({ i, update: r });
    }
    final.set(user, second(i));
    changing++;

    if (i % 6 === 0) {
      const del = await c.call('delete', { coll: COLL, doc: 'me', v: 2, key: `delete-${i}` });
      if (del.v !== 2) problems.push({ i, del });
      final.delete(user);
      changing++;
      if (i % 12 === 0) {
        // Submit again, then retry the old delete: the retry answers as the first time and must not
        // delete the new submission.
        const re = (await c.call('create', { coll: COLL, data: again(i) })).doc;
        if (re._v !== 1) problems.push({ i, re });
        final.set(user, again(i));
        changing++;
        const retry = await c.call('delete', { coll: COLL, doc: 'me', v: 2, key: `delete-${i}` });
        if (retry.v !== 2) problems.push({ i, retry });
      }
    } else if (i % 5 === 0) {
      // A retry of the create after the update: answers with the first result, changes nothing.
      const retry = (await c.call('create', { coll: COLL, data: first(i), key: `create-${i}` })).doc;
      if (retry._v !== 1 || JSON.stringify(attrs(retry)) !== JSON.stringify(first(i))) problems.push({ i, retry });
    }
  }));
  assert.deepEqual(problems, [], 'every acknowledgement is the expected document');

  const expected = recount([...final.values()]);
  assert.ok(expected.total > 200 && expected.total < N, `sanity: ${expected.total} submissions remain`);
  const checker = await Client.connect(server.wsUrl);
  const t = await checker.call('tally', { coll: COLL });
  t0.diagnostic(`${changing} tally-changing writes, ${t.offset} tally publications, total ${t.tally.total}`);
  assert.deepEqual(norm(t.tally), expected, 'the final tally equals the counts the test expects');

  // Each client reads its own document back.
  const gets = await Promise.all(clients.map((c) => c.request('get', { coll: COLL, doc: 'me' })));
  gets.forEach((g, i) => {
    const want = final.get(clients[i].hello.user);
    if (want) assert.deepEqual(attrs(g.ok?.doc ?? {}), want, `client ${i}: its stored document`);
    else assert.equal(g.error?.code, 'not_found', `client ${i}: deleted`);
  });

  // Every tally subscriber: strictly increasing offsets, ending at the final tally.
  for (const [k, r] of recorders.entries()) {
    await r.until(t.offset);
    const offsets = r.pushes.map((p) => p.offset);
    assert.ok(offsets.length > 0, `subscriber ${k} got tally pushes`);
    for (let j = 1; j < offsets.length; j++) {
      assert.ok(offsets[j] > offsets[j - 1], `subscriber ${k}: offsets increase (${offsets[j - 1]} then ${offsets[j]})`);
    }
    assert.equal(offsets[0], r.reply.offset + 1, `subscriber ${k}: the first push follows the sub reply`);
    assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, j) => r.reply.offset + 1 + j),
                     `subscriber ${k}: no gap`);
    assert.equal(offsets.at(-1), t.offset, `subscriber ${k}: the last push is the final tally's offset`);
    assert.deepEqual(r.pushes.at(-1).data, t.tally, `subscriber ${k}: the last push is the final tally`);
    for (const p of r.pushes) {
      for (const f of Object.keys(FIELDS)) {
        const sum = Object.values(p.data.counts?.[f] ?? {}).reduce((a, b) => a + b, 0);
        assert.ok(sum <= p.data.total && p.data.total <= N, `subscriber ${k}: push ${p.offset} is a possible state`);
      }
    }
  }
  // At most one tally publication per tally-changing write (writes sharing a commit share one; a replayed
  // retry publishes nothing).
  assert.ok(t.offset <= changing, `${t.offset} tally publications for ${changing} changing writes`);

  // Recount every stored document with a reader that sees them all.
  await Promise.all(clients.map((c) => c.terminate()));
  for (const r of recorders) await r.client.close();
  await checker.close();
  assert.equal(await server.stop(), 0);
  const rc = await recountServer(dataDir);
  assert.equal(rc.docs.length, final.size, 'one stored document per remaining submission');
  for (const d of rc.docs) {
    assert.ok(final.has(d.id), `stored ${d.id} is a remaining submission`);
    assert.deepEqual(attrs(d), final.get(d.id), `stored ${d.id}`);
    assert.equal(d._owner, d.id);
  }
  assert.deepEqual(norm(rc.tally.tally), recount(rc.docs), 'the tally equals a recount of the stored documents');
  assert.deepEqual(rc.tally.tally, t.tally, 'and is the tally from before the restart');
  assert.equal(rc.tally.offset, t.offset);
  await rc.client.close();
});

// ---------------------------------------------------------------------------------------------------

test('kill -9 while 200 clients submit: every acked write is there; the tally equals a recount', { timeout: 115_000 }, async (t0) => {
  const N = 200;
  const WRITES = 12;         // per client: a create, then updates
  const KILL_AT = 900;       // acknowledged writes before the kill (of N * WRITES)
  const dataDir = tmpDir('rtsync-tally-crash-');
  const server = await startServer({ config: CONFIG, dataDir });
  const clients = await connectN(server.wsUrl, N);
  const value = (i, n) => ({ q1: (i + n) % 4, q2: (i * 3 + n * 7) % 4 });

  const acked = new Array(N).fill(-1);   // the highest n acknowledged per client
  const sent = new Array(N).fill(-1);    // the highest n sent per client
  const errors = [];
  let total = 0;
  await Promise.all(clients.map(async (c, i) => {
    for (let n = 0; n < WRITES; n++) {
      const fields = n === 0
        ? { coll: COLL, data: value(i, n), key: `c-${i}` }
        : { coll: COLL, doc: 'me', v: n, data: value(i, n), key: `u-${i}-${n}` };
      sent[i] = n;
      let r;
      try { r = await c.request(n === 0 ? 'create' : 'update', fields, { timeout: TIMEOUT * 3 }); } catch { return; }
      if (!('ok' in r)) { errors.push({ i, n, r }); return; }
      if (r.ok.doc._v !== n + 1) errors.push({ i, n, v: r.ok.doc._v });
      acked[i] = n;
      if (++total === KILL_AT) server.proc.kill('SIGKILL');
    }
  }));
  await server.exited;
  for (const c of clients) c.terminate();
  assert.deepEqual(errors, [], 'no write failed before the crash');
  assert.ok(total >= KILL_AT, `${total} writes acknowledged`);
  assert.ok(total < N * WRITES, 'the kill cut the submissions short');

  const rc = await recountServer(dataDir);
  const unacked = clients.filter((c, i) => rc.docs.some((d) => d.id === c.hello.user && d._v - 1 > acked[i])).length;
  t0.diagnostic(`${total} writes acked before the kill; ${rc.docs.length} documents stored; ` +
                `${unacked} hold a committed but unacknowledged write; tally total ${rc.tally.tally.total}`);
  const stored = new Map(rc.docs.map((d) => [d.id, d]));
  // Every acknowledged write is there: the stored version is at least the acked one, and its
  // attributes are those of the write with that version (which the client did send).
  const gets = await Promise.all(clients.map((c) => rc.client.request('get', { coll: COLL, doc: c.hello.user })));
  clients.forEach((c, i) => {
    const g = gets[i];
    if (acked[i] < 0) {
      if (g.error) assert.equal(g.error.code, 'not_found', `client ${i}: ${JSON.stringify(g)}`);
      return;
    }
    assert.ok(g.ok, `client ${i}: acked write ${acked[i]} is missing: ${JSON.stringify(g)}`);
    const d = g.ok.doc;
    const n = d._v - 1;
    assert.ok(n >= acked[i], `client ${i}: stored _v ${d._v} < acked ${acked[i] + 1}`);
    assert.ok(n <= sent[i], `client ${i}: stored _v ${d._v} was never sent`);
    assert.deepEqual(attrs(d), value(i, n), `client ${i}: attributes of version ${d._v}`);
    assert.deepEqual(stored.get(c.hello.user), d, `client ${i}: list and get agree`);
  });
  assert.equal(rc.docs.length, stored.size);
  assert.ok(rc.docs.every((d) => clients.some((c) => c.hello.user === d.id)), 'no stray documents');
  assert.deepEqual(norm(rc.tally.tally), recount(rc.docs), 'the tally equals a recount of the stored documents');

  // The tally channel does not lag: its last publication is the tally, at the tally's offset.
  const h = await rc.client.call('history', { ch: `tally:${COLL}`, reverse: true, limit: 1 });
  assert.equal(h.offset, rc.tally.offset);
  assert.equal(h.pubs.length, 1);
  assert.deepEqual(h.pubs[0].data, rc.tally.tally);

  // Writing on after the restart keeps the tally exact (the cached counts were not left stale).
  const w = await Client.connect(rc.server.wsUrl);
  await w.call('create', { coll: COLL, data: { q1: 3, q2: 3 } });
  const after = await w.call('tally', { coll: COLL });
  assert.deepEqual(norm(after.tally), recount([...rc.docs, { q1: 3, q2: 3 }]));
  await w.close();
  await rc.client.close();
});
