// Exact tallies across nodes (docs/scaling.md): 200 concurrent submitters, spread over two nodes of one
// cluster, create their per_user submission, change it, some delete it, with idempotent retries mixed in
// (sent to the other node, as a client that reconnected elsewhere would). The final tally, read on either
// node, equals what the test expects and a recount of the stored documents, and tally subscribers on both
// nodes saw every tally publication once, in order, ending at the final one.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, cleanupAll, waitFor } from './lib/server.mjs';
import { perUserTally } from './lib/config.mjs';
import { cleanupCluster, startNode, startPostgres, startRedis } from './lib/cluster.mjs';

after(async () => {
  try { await cleanupAll(); } finally { await cleanupCluster(); }
});

const COLL = 'votes';
const CONFIG = (read) => perUserTally(COLL, { read });

function recount(docs) {
  const t = { total: 0, counts: { q1: { 0: 0, 1: 0, 2: 0, 3: 0 }, q2: { 0: 0, 1: 0, 2: 0, 3: 0 } } };
  for (const d of docs) {
    t.total++;
    for (const f of ['q1', 'q2']) if (d[f] !== undefined) t.counts[f][d[f]]++;
  }
  return t;
}

async function connectN(url, n, concurrency = 20) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await Client.connect(url, { timeout: 60_000 });
    }
  }));
  return out;
}

test('200 concurrent submitters over two nodes: the final tally is exact on both', { timeout: 150_000 }, async (t) => {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  const [a, b] = await Promise.all([startNode({ redis, pg, node: 'a', config: CONFIG('owner') }),
                                    startNode({ redis, pg, node: 'b', config: CONFIG('owner') })]);
  const nodes = [a, b];

  // Tally subscribers on both nodes, recording every push.
  const watchers = [];
  for (const node of nodes) {
    const c = await Client.connect(node.wsUrl);
    const w = { pushes: [], c };
    c.queueing = false;
    c.listeners.push((o) => { if (o.op === 'msg' && o.ch === `tally:${COLL}`) w.pushes.push(o); });
    w.reply = await c.call('sub', { ch: `tally:${COLL}` });
    watchers.push(w);
  }

  const N = 200;
  const [onA, onB] = await Promise.all([connectN(a.wsUrl, N / 2), connectN(b.wsUrl, N / 2)]);
  const clients = onA.map((c, i) => [c, onB[i]]).flat();  // alternate nodes
  const first = (i) => ({ q1: i % 4, q2: Math.floor(i / 4) % 4 });
  const second = (i) => ({ q1: (i + 1) % 4, q2: (i + 3) % 4 });
  const final = new Map();
  const problems = [];

  await Promise.all(clients.map(async (c, i) => {
    const user = c.hello.user;
    const created = (await c.call('create', { coll: COLL, data: first(i), key: `c-${i}` })).doc;
    if (created._v !== 1) problems.push({ i, created });
    final.set(user, first(i));
    const updated = (await c.call('update', { coll: COLL, doc: 'me', data: second(i), key: `u-${i}` })).doc;
    if (updated._v !== 2) problems.push({ i, updated });
    final.set(user, second(i));
    if (i % 5 === 0) {
      await c.call('delete', { coll: COLL, doc: 'me', v: 2, key: `d-${i}` });
      final.delete(user);
    }
    if (i % 10 === 0 || i % 10 === 3) {
      // The same user (its cookie) retries the update through the other node: the first result comes
      // back, and nothing changes (not even for a submission deleted since).
      const cookie = c.upgradeHeaders['set-cookie'][0].split(';')[0];
      const other = await Client.connect(nodes[(i + 1) % 2].wsUrl, { headers: { cookie } });
      if (other.hello.user !== user) problems.push({ i, otherUser: other.hello.user });
      const retry = (await other.call('update', { coll: COLL, doc: 'me', data: first(i), key: `u-${i}` })).doc;
      if (retry._v !== 2 || retry.q1 !== second(i).q1) problems.push({ i, retry });
      await other.close();
    }
  }));
  assert.deepEqual(problems, []);

  const expected = recount([...final.values()]);
  assert.ok(expected.total === N - N / 5, `sanity: ${expected.total} submissions remain`);

  const tallies = [];
  for (const node of nodes) {
    const c = await Client.connect(node.wsUrl);
    tallies.push(await c.call('tally', { coll: COLL }));
    await c.close();
  }
  t.diagnostic(`final tally offset ${tallies[0].offset}, total ${tallies[0].tally.total}`);
  for (const [k, tl] of tallies.entries()) {
    assert.deepEqual(tl.tally, expected, `the tally read on node ${nodes[k].node} is exact`);
  }
  assert.equal(tallies[0].offset, tallies[1].offset, 'both nodes read the tally at the same offset');

  for (const [k, w] of watchers.entries()) {
    await waitFor(() => w.pushes.at(-1)?.offset >= tallies[0].offset,
                  { timeout: 60_000, message: `tally watcher on ${nodes[k].node} reaching the final offset` });
    const offsets = w.pushes.map((p) => p.offset);
    assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, j) => w.reply.offset + 1 + j),
                     `watcher on ${nodes[k].node}: every tally publication once, in order`);
    assert.deepEqual(w.pushes.at(-1).data, expected, `watcher on ${nodes[k].node}: the last push is the final tally`);
  }
  await Promise.all([...clients, ...watchers.map((w) => w.c)].map((c) => c.terminate()));

  // A recount of the stored documents, through a node whose config lets it read them all.
  const reader = await startNode({ redis, pg, node: 'reader', config: CONFIG('all') });
  const r = await Client.connect(reader.wsUrl);
  const list = await r.call('list', { coll: COLL });
  const docs = list.docs.map((d) => Object.fromEntries(Object.entries(d).filter(([k]) => k === 'q1' || k === 'q2')));
  assert.deepEqual(recount(docs), expected, 'the tally equals a recount of the stored documents');
  await r.close();
});
