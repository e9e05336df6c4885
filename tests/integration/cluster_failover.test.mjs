// Failures in a cluster (docs/scaling.md, "Failure modes"), with real Redis and PostgreSQL:
// - kill -9 of a node under load: its clients reconnect to the other node and recover everything, gap-free;
//   its presence members time out there once its liveness key expires;
// - Redis restarted under load: publishing goes on (acks need only the store), nothing acknowledged is
//   lost, the nodes reconnect, subscribers on both nodes catch up gap-free and in order, and presence is
//   shared again.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, cleanupAll, connectMany, sleep, waitFor } from './lib/server.mjs';
import { cleanupCluster, startNode, startPostgres, startRedis } from './lib/cluster.mjs';

after(async () => {
  try { await cleanupAll(); } finally { await cleanupCluster(); }
});

// A subscriber that follows a channel across reconnections: everything it got, in order, from the
// subscribe replies (recovered pubs) and pushes.
class Follower {
  constructor(ch) {
    this.ch = ch;
    this.got = [];
  }

  // Subscribes through `url`, from the last offset it got when it had subscribed before.
  async attach(url) {
    const since = this.epoch ? { offset: this.last(), epoch: this.epoch } : undefined;
    const client = await Client.connect(url, { timeout: 60_000 });
    this.client = client;
    client.queueing = false;
    const early = [];  // pushes handled before the reply's continuation runs
    let ready = false;
    client.listeners.push((o) => {
      if (o.op !== 'msg' || o.ch !== this.ch) return;
      (ready ? this.got : early).push(o);
    });
    const r = await client.call('sub', { ch: this.ch, ...(since ? { since } : {}) }, { timeout: 60_000 });
    if (since) assert.equal(r.recovered, true, `recovered from offset ${since.offset} on ${url}`);
    this.epoch = r.epoch;
    this.got.push(...r.pubs, ...early);
    ready = true;
    return r;
  }

  last() {
    return this.got.length ? this.got.at(-1).offset : 0;
  }

  until(offset) {
    return waitFor(() => this.last() >= offset, { timeout: 60_000, message: `follower reaching offset ${offset} (at ${this.last()})` });
  }

  check(final, acked, who) {
    assert.deepEqual(this.got.map((m) => m.offset), Array.from({ length: final }, (_, i) => i + 1),
                     `${who}: offsets 1..${final}, each once, in order`);
    for (const m of this.got) if (acked.has(m.offset)) assert.deepEqual(m.data, acked.get(m.offset), `${who}: data at ${m.offset}`);
  }
}

// Publishes `count` messages through `urls[0]`, moving to the next URL when the connection breaks
// (a publication whose ack was lost may or may not be committed: it is not counted as acked).
async function publisher(urls, ch, tag, count, acked, onAck) {
  let u = 0;
  let client = await Client.connect(urls[u]);
  for (let n = 0; n < count;) {
    const data = { tag, n };
    let r;
    try {
      r = await client.request('pub', { ch, data });
    } catch {
      client.terminate();
      u = Math.min(u + 1, urls.length - 1);
      client = await Client.connect(urls[u], { timeout: 60_000 });
      n++;
      continue;
    }
    assert.ok('ok' in r, `pub failed: ${JSON.stringify(r)}`);
    assert.ok(!acked.has(r.ok.offset), `offset ${r.ok.offset} acknowledged twice`);
    acked.set(r.ok.offset, data);
    n++;
    onAck?.(acked.size);
  }
  await client.close();
}

test('kill -9 of a node: its clients reconnect to the other node and recover everything', { timeout: 150_000 }, async () => {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  const [a, b] = await Promise.all([startNode({ redis, pg, node: 'a' }), startNode({ redis, pg, node: 'b' })]);
  const ch = 'failover';

  const watcher = await Client.connect(a.wsUrl);
  await watcher.call('sub', { ch, presence: true });
  const followers = [new Follower(ch), new Follower(ch), new Follower(ch)];
  for (const f of followers) await f.attach(b.wsUrl);
  const onA = new Follower(ch);
  await onA.attach(a.wsUrl);
  const bSessions = followers.map((f) => f.client.hello.session);
  await waitFor(async () => (await watcher.call('presence', { ch })).sessions === 5, { message: 'five members seen from a' });

  const acked = new Map();
  let killed;
  const killAt = 150;
  const publishers = [
    publisher([a.wsUrl], ch, 'a1', 120, acked),
    publisher([a.wsUrl], ch, 'a2', 120, acked),
    ...['b1', 'b2'].map((tag) => publisher([b.wsUrl, a.wsUrl], ch, tag, 120, acked, (n) => {
      if (n >= killAt && !killed) killed = { done: b.kill() };  // (not a bare promise: waitFor awaits it)
    })),
  ];
  const all = Promise.all(publishers);
  await Promise.race([all, waitFor(() => killed, { timeout: 60_000, message: 'the kill' })]);
  assert.ok(killed, `the publishers stopped before the kill (${acked.size} acks)`);
  await killed.done;
  for (const f of followers) await f.client.closed;
  // The clients of b come back through a; each recovers from the last offset it got on b.
  for (const f of followers) await f.attach(a.wsUrl);
  await all;

  const reader = await Client.connect(a.wsUrl);
  const h = await reader.call('history', { ch, limit: 1000 });
  for (const [offset, data] of acked) {
    assert.deepEqual(h.pubs.find((p) => p.offset === offset)?.data, data, `acked offset ${offset} is in history`);
  }
  assert.deepEqual(h.pubs.map((p) => p.offset), Array.from({ length: h.offset }, (_, i) => i + 1), 'history has no gap');
  for (const [i, f] of [...followers, onA].entries()) {
    await f.until(h.offset);
    f.check(h.offset, acked, i < 3 ? `client ${i} of b` : 'client of a');
  }

  // b's sessions time out of presence on a (its liveness key expires after presence_ttl).
  const p = await waitFor(async () => {
    const r = await watcher.call('presence', { ch });
    return !r.clients.some((m) => bSessions.includes(m.session)) && r;
  }, { timeout: 30_000, message: "b's members timing out" });
  assert.equal(p.sessions, 5, 'the watcher, the client of a and the three reconnected clients');
  await Promise.all([watcher, reader, onA.client, ...followers.map((f) => f.client)].map((c) => c.close()));
});

test('Redis restarted under load: nothing acknowledged is lost and subscribers catch up', { timeout: 150_000 }, async () => {
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  const [a, b] = await Promise.all([startNode({ redis, pg, node: 'a' }), startNode({ redis, pg, node: 'b' })]);
  const ch = 'blip';
  const followers = [new Follower(ch), new Follower(ch), new Follower(ch), new Follower(ch)];
  for (const [i, f] of followers.entries()) await f.attach(i % 2 ? b.wsUrl : a.wsUrl);

  const acked = new Map();
  let restarted;
  const publishers = ['a1', 'a2', 'b1', 'b2'].map((tag) =>
    publisher([tag.startsWith('a') ? a.wsUrl : b.wsUrl], ch, tag, 150, acked, (n) => {
      if (n >= 200 && !restarted) restarted = { done: redis.restart() };
    }));
  const all = Promise.all(publishers);
  await Promise.race([all, waitFor(() => restarted, { timeout: 60_000, message: 'the restart' })]);
  assert.ok(restarted, `the publishers stopped before the restart (${acked.size} acks)`);
  await restarted.done;
  // While the nodes reconnect, a client moves from a to b and recovers there.
  const moving = followers[0];
  await moving.client.close();
  await moving.attach(b.wsUrl);
  await all;
  assert.equal(acked.size, 600, 'every publication was acknowledged: acks need only the store');

  const reader = await Client.connect(b.wsUrl);
  const h = await reader.call('history', { ch, limit: 1000 });
  assert.equal(h.offset, 600);
  for (const [offset, data] of acked) assert.deepEqual(h.pubs[offset - 1]?.data, data, `acked offset ${offset} in history`);
  for (const [i, f] of followers.entries()) {
    await f.until(600);
    f.check(600, acked, `subscriber ${i}`);
  }

  // The nodes are connected again: a new publication on a reaches b through Redis, and a member that
  // joins on a after the restart is seen on b.
  const pubA = await Client.connect(a.wsUrl);
  await waitFor(async () => {
    const r = await pubA.call('pub', { ch, data: 'after' });
    await sleep(200);
    return followers[1].last() >= r.offset;
  }, { timeout: 30_000, interval: 200, message: 'a publication on a reaching b' });
  const room = 'after-restart';
  const member = await Client.connect(a.wsUrl);
  await member.call('sub', { ch: room });
  await waitFor(async () => (await reader.call('presence', { ch: room })).sessions === 1,
                { timeout: 30_000, message: 'the member of a seen from b' });
  await Promise.all([reader, pubA, member, ...followers.map((f) => f.client)].map((c) => c.close()));
});
