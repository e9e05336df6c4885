// Two rtsync nodes on one Redis and one PostgreSQL behave as one server (docs/scaling.md): what is
// published on either node reaches subscribers on both, once each, in offset order, without a gap; a
// client recovers on the other node from where it left; PubNub endpoints of both nodes see one channel
// space (one history, one timetoken sequence, signals, store=0 messages, ttl expiry); presence is shared;
// in-memory namespaces too.
// Real Redis and PostgreSQL on private ports (lib/cluster.mjs), stopped afterwards.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, connectMany, httpRequest, waitFor } from './lib/server.mjs';
import { cleanupCluster, startNode, startPostgres, startRedis } from './lib/cluster.mjs';

const CONFIG = `
[namespaces.mem]
durable = false
history_size = 50

[pubnub]
subscribe_timeout = 10
`;

let a, b;
before(async () => {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  [a, b] = await Promise.all([startNode({ redis, pg, node: 'a', config: CONFIG }),
                              startNode({ redis, pg, node: 'b', config: CONFIG })]);
});
after(async () => {
  try { await cleanupAll(); } finally { await cleanupCluster(); }
});

let unique = 0;
const name = (prefix) => `${prefix}-${process.pid}-${++unique}`;

// Records every msg push of one channel, and waits until a given offset arrived.
function recorder(client, ch) {
  const r = { msgs: [] };
  client.queueing = false;
  client.listeners.push((o) => { if (o.op === 'msg' && o.ch === ch) r.msgs.push(o); });
  r.until = (offset, message) => waitFor(() => r.msgs.at(-1)?.offset >= offset, { timeout: 60_000, message });
  return r;
}

// `count` publications from each client, `window` in flight per client; resolves with offset -> data.
async function publishAll(clients, ch, count, window = 5) {
  const acked = new Map();
  await Promise.all(clients.map(async (c, ci) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const data = { c: ci, n: next++ };
        const r = await c.call('pub', { ch, data });
        assert.ok(!acked.has(r.offset), `offset ${r.offset} acknowledged twice`);
        acked.set(r.offset, data);
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
  }));
  return acked;
}

function assertGapFree(msgs, from, to, acked, who) {
  assert.deepEqual(msgs.map((m) => m.offset), Array.from({ length: to - from + 1 }, (_, i) => from + i),
                   `${who}: offsets ${from}..${to}, each once, in order`);
  for (const m of msgs) assert.deepEqual(m.data, acked.get(m.offset), `${who}: data at offset ${m.offset}`);
}

describe('publications cross nodes', () => {
  test('subscribers on A and B receive everything published on both, gap-free and in order', { timeout: 110_000 }, async () => {
    const ch = name('news');
    const subs = [...await connectMany(a.wsUrl, 2), ...await connectMany(b.wsUrl, 2)];
    const recs = [];
    for (const s of subs) {
      const r = recorder(s, ch);
      r.reply = await s.call('sub', { ch });
      recs.push(r);
    }
    const epochs = new Set(recs.map((r) => r.reply.epoch));
    assert.equal(epochs.size, 1, 'both nodes report one epoch for the channel');

    const pubs = [...await connectMany(a.wsUrl, 3), ...await connectMany(b.wsUrl, 3)];
    const PER = 60;
    const acked = await publishAll(pubs, ch, PER);
    const total = pubs.length * PER;
    assert.equal(acked.size, total);
    assert.deepEqual([...acked.keys()].sort((x, y) => x - y), Array.from({ length: total }, (_, i) => i + 1),
                     'the two nodes allocated offsets 1..N between them, without collision or gap');
    for (const [i, r] of recs.entries()) {
      await r.until(total, `subscriber ${i} reaching offset ${total}`);
      assertGapFree(r.msgs, 1, total, acked, `subscriber ${i} on node ${i < 2 ? 'a' : 'b'}`);
    }
    await Promise.all([...subs, ...pubs].map((c) => c.close()));
  });

  test('a client that leaves node A recovers on node B from its last offset', { timeout: 60_000 }, async () => {
    const ch = name('recover');
    const pubA = await Client.connect(a.wsUrl);
    const pubB = await Client.connect(b.wsUrl);
    const first = await Client.connect(a.wsUrl);
    const rec = recorder(first, ch);
    const s = await first.call('sub', { ch });
    for (let i = 1; i <= 10; i++) await (i % 2 ? pubA : pubB).call('pub', { ch, data: i });
    await rec.until(10);
    await first.close();
    // Published while the client is away, on both nodes.
    for (let i = 11; i <= 25; i++) await (i % 2 ? pubA : pubB).call('pub', { ch, data: i });

    const again = await Client.connect(b.wsUrl);
    const rec2 = recorder(again, ch);
    const r = await again.call('sub', { ch, since: { offset: 10, epoch: s.epoch } });
    assert.equal(r.recovered, true, 'recovered on the other node');
    assert.deepEqual(r.pubs.map((p) => p.data), Array.from({ length: 15 }, (_, i) => 11 + i));
    await pubA.call('pub', { ch, data: 26 });
    await rec2.until(26);
    assert.deepEqual(rec2.msgs.map((m) => m.data), [26], 'then live, without a duplicate or a gap');
    await Promise.all([pubA.close(), pubB.close(), again.close()]);
  });

  test('in-memory namespaces are one channel across nodes too', { timeout: 60_000 }, async () => {
    const ch = `mem:${name('m')}`;
    const sa = await Client.connect(a.wsUrl);
    const sb = await Client.connect(b.wsUrl);
    const ra = recorder(sa, ch);
    const rb = recorder(sb, ch);
    const ea = (await sa.call('sub', { ch })).epoch;
    const eb = (await sb.call('sub', { ch })).epoch;
    assert.equal(ea, eb, 'one epoch');
    const acked = await publishAll([sa, sb], ch, 20, 2);
    await ra.until(40);
    await rb.until(40);
    assertGapFree(ra.msgs, 1, 40, acked, 'subscriber on a');
    assertGapFree(rb.msgs, 1, 40, acked, 'subscriber on b');
    const h = await sb.call('history', { ch, limit: 100 });
    assert.deepEqual(h.pubs.map((p) => p.offset), Array.from({ length: 40 }, (_, i) => i + 1));
    await Promise.all([sa.close(), sb.close()]);
  });
});

describe('PubNub endpoints', () => {
  const enc = encodeURIComponent;
  const get = async (node, path) => {
    const res = await httpRequest(`${node.url}${path}`);
    assert.equal(res.status, 200, `${path}: ${res.body}`);
    return res.json();
  };
  const publish = (node, ch, msg, uuid) => get(node, `/publish/demo/demo/0/${enc(ch)}/0/${enc(JSON.stringify(msg))}?uuid=${uuid}`);

  test('both nodes see one channel space: history, timetokens and long polls', { timeout: 60_000 }, async () => {
    const ch = name('pn');
    const tts = [];
    for (let i = 0; i < 6; i++) {
      const r = await publish(i % 2 ? b : a, ch, { i }, `u${i % 2}`);
      tts.push(r[2]);
    }
    // Timetokens grow with the offsets, whichever node assigned them.
    for (let i = 1; i < tts.length; i++) assert.ok(BigInt(tts[i]) > BigInt(tts[i - 1]), `timetoken ${i} grows`);
    // A native publication joins the same history.
    const native = await Client.connect(b.wsUrl);
    await native.call('pub', { ch, data: { i: 6 } });

    for (const node of [a, b]) {
      const h = await get(node, `/v2/history/sub-key/demo/channel/${enc(ch)}?include_token=true&stringtoken=true`);
      assert.deepEqual(h[0].map((m) => m.message), Array.from({ length: 7 }, (_, i) => ({ i })), `history on ${node.node}`);
      assert.deepEqual(h[0].slice(0, 6).map((m) => String(m.timetoken)), tts, `timetokens on ${node.node}`);
    }

    // A long poll on A from the last timetoken gets what is published on B next.
    const cursor = (await get(a, `/v2/subscribe/demo/${enc(ch)}/0?uuid=poller`)).t.t;
    const poll = get(a, `/v2/subscribe/demo/${enc(ch)}/0?tt=${cursor}&tr=1&uuid=poller`);
    const sent = await publish(b, ch, { i: 7 }, 'u1');
    const answer = await poll;
    const got = answer.m.filter((m) => m.c === ch);
    assert.deepEqual(got.at(-1).d, { i: 7 });
    assert.equal(String(got.at(-1).p.t), sent[2], 'the same timetoken on both nodes');
    await native.close();
  });

  test('a signal sent to one node reaches a long poll on the other', { timeout: 60_000 }, async () => {
    const ch = name('sig');
    const cursor = (await get(a, `/v2/subscribe/demo/${enc(ch)}/0?uuid=sigpoll`)).t.t;
    const poll = get(a, `/v2/subscribe/demo/${enc(ch)}/0?tt=${cursor}&tr=1&uuid=sigpoll`);
    const sent = await get(b, `/signal/demo/demo/0/${enc(ch)}/0/${enc(JSON.stringify({ typing: true }))}?uuid=u1`);
    const got = (await poll).m.filter((m) => m.c === ch);
    assert.equal(got.length, 1);
    assert.deepEqual(got[0].d, { typing: true });
    assert.equal(got[0].e, 1, 'delivered as a signal');
    assert.equal(String(got[0].p.t), sent[2], 'with the timetoken the sending node gave it');
  });

  test('store=0 crosses nodes as a message, unkept; a ttl expires on both nodes', { timeout: 60_000 }, async () => {
    const ch = name('opts');
    const cursor = (await get(a, `/v2/subscribe/demo/${enc(ch)}/0?uuid=optpoll`)).t.t;
    const poll = get(a, `/v2/subscribe/demo/${enc(ch)}/0?tt=${cursor}&tr=1&uuid=optpoll`);
    const sent = await get(b, `/publish/demo/demo/0/${enc(ch)}/0/${enc('"unkept"')}?uuid=u1&store=0`);
    const got = (await poll).m.filter((m) => m.c === ch);
    assert.equal(got.length, 1);
    assert.equal(got[0].d, 'unkept');
    assert.equal('e' in got[0], false, 'a message, not a signal');
    assert.equal(String(got[0].p.t), sent[2]);
    await get(b, `/publish/demo/demo/0/${enc(ch)}/0/${enc('"short"')}?uuid=u1&ttl=0.0005`);
    await get(b, `/publish/demo/demo/0/${enc(ch)}/0/${enc('"long"')}?uuid=u1&ttl=10`);
    await new Promise((r) => setTimeout(r, 2200));
    for (const node of [a, b]) {
      const h = await get(node, `/v2/history/sub-key/demo/channel/${enc(ch)}`);
      assert.deepEqual(h[0], ['long'], `history on ${node.node}`);
    }
  });
});

describe('presence', () => {
  test('members of both nodes are one presence; joins and leaves cross nodes', { timeout: 60_000 }, async () => {
    const ch = name('room');
    const onA = await Client.connect(a.wsUrl);
    await onA.call('sub', { ch, presence: true });
    const onB = await Client.connect(b.wsUrl);
    await onB.call('sub', { ch, presence: true });
    const join = await onA.next((o) => o.op === 'join' && o.ch === ch);
    assert.equal(join.user, onB.hello.user, 'A is told of the member that joined on B');
    for (const c of [onA, onB]) {
      const p = await waitFor(async () => {
        const r = await c.call('presence', { ch });
        return r.sessions === 2 && r;
      }, { message: 'two members seen from both nodes' });
      assert.deepEqual(p.clients.map((m) => m.user).sort(), [onA.hello.user, onB.hello.user].sort());
    }
    // PubNub's here_now on A counts the member of B.
    const here = (await httpRequest(`${a.url}/v2/presence/sub-key/demo/channel/${ch}`)).json();
    assert.equal(here.occupancy, 2);

    await onB.call('unsub', { ch });
    const leave = await onA.next((o) => o.op === 'leave' && o.ch === ch);
    assert.equal(leave.user, onB.hello.user);
    assert.equal((await onA.call('presence', { ch })).sessions, 1);
    await Promise.all([onA.close(), onB.close()]);
  });
});

describe('shutdown', () => {
  test('a node stops cleanly; its members leave the other node at once', { timeout: 60_000 }, async () => {
    const ch = name('bye');
    const watcher = await Client.connect(a.wsUrl);
    await watcher.call('sub', { ch, presence: true });
    const member = await Client.connect(b.wsUrl);
    await member.call('sub', { ch });
    await watcher.next((o) => o.op === 'join' && o.ch === ch);
    assert.equal(await b.stop(), 0, 'node b exits 0 on SIGTERM');
    await watcher.next((o) => o.op === 'leave' && o.ch === ch);
    assert.equal((await watcher.call('presence', { ch })).sessions, 1);
    await watcher.close();
  });
});
