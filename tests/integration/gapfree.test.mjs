// Gap-free delivery under load (PROTOCOL §4 guarantees): 4 publishers send 10,000 publications on one
// channel as fast as they can while subscribers join mid-stream (one also disconnects and recovers).
// Every subscriber must see exactly reply.offset+1 ... final, in order, once each, with the acked data.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, cleanupAll, startServer, withTimeout } from './lib/server.mjs';

const TOTAL = 10_000;
const PUBLISHERS = 4;
const WINDOW = 32;            // publications in flight per publisher
const CH = 'gf:stream';
const CONFIG = `
[namespaces.gf]
history_size = 20000
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(cleanupAll);

// A subscriber that records every msg of CH from the moment it subscribes.
class Recorder {
  constructor(name, client) {
    this.name = name;
    this.client = client;
    this.msgs = [];
    this.reply = null;
    client.listeners.push((o) => { if (o.op === 'msg' && o.ch === CH) this.msgs.push(o); });
    client.queueing = false; // not consumed through next()
  }

  async subscribe(since) {
    this.reply = await this.client.call('sub', since ? { ch: CH, since } : { ch: CH });
    return this.reply;
  }

  get last() {
    return this.msgs.length ? this.msgs.at(-1).offset : this.reply?.offset;
  }
}

// Checks that `msgs` are exactly offsets from+1..to in order, with the data acked for each offset.
function checkSequence(name, msgs, from, acked, to = TOTAL) {
  const expected = to - from;
  for (let i = 0; i < Math.min(msgs.length, expected); i++) {
    const want = from + 1 + i;
    if (msgs[i].offset !== want) {
      assert.fail(`${name}: message #${i} has offset ${msgs[i].offset}, expected ${want} ` +
                  `(subscribed at ${from}; neighbours ${msgs.slice(Math.max(0, i - 3), i + 3).map((m) => m.offset)})`);
    }
    assert.deepEqual(msgs[i].data, acked.get(want).data, `${name}: data at offset ${want}`);
    assert.equal(msgs[i].from, acked.get(want).from, `${name}: from at offset ${want}`);
  }
  assert.equal(msgs.length, expected, `${name}: ${msgs.length} messages after offset ${from}, expected ${expected} (up to ${to})`);
}

test('concurrent publishers, subscribers joining mid-stream: no gap, no duplicate, in order',
  { timeout: 110_000 }, async () => {
    const publishers = await Promise.all(Array.from({ length: PUBLISHERS }, () => Client.connect(server.wsUrl)));
    // Subscribers are connected up front so that their `sub` goes out the moment a milestone is reached.
    const recorders = [];
    const early = new Recorder('sub@start', await Client.connect(server.wsUrl));
    const first = await early.subscribe();
    assert.equal(first.offset, 0);
    recorders.push(early);

    const milestones = [300, 1500, 3000, 5000, 7000, 8800, 9900];
    const waiting = await Promise.all(milestones.map(async (m) => new Recorder(`sub@${m}`, await Client.connect(server.wsUrl))));
    const subscribing = [];

    // The recovering subscriber: subscribes at 1000, drops its connection at 2500, recovers at 4000.
    const recovering = { first: new Recorder('recover/first', await Client.connect(server.wsUrl)), second: null };
    let recoveryDone;

    const acked = new Map(); // offset -> {data, from}
    let ackCount = 0;
    const onAck = () => {
      ackCount++;
      const i = milestones.indexOf(ackCount);
      if (i >= 0) {
        const r = waiting[i];
        recorders.push(r);
        subscribing.push(r.subscribe());
      }
      if (ackCount === 1000) {
        recovering.subscribed = recovering.first.subscribe();
        subscribing.push(recovering.subscribed);
      }
      if (ackCount === 2500) recovering.dropped = recovering.subscribed.then(() => recovering.first.client.terminate());
      if (ackCount === 4000) {
        recoveryDone = (async () => {
          await recovering.dropped;
          const lastSeen = recovering.first.last;
          const r = new Recorder('recover/second', await Client.connect(server.wsUrl));
          recovering.second = r;
          const reply = await r.subscribe({ offset: lastSeen, epoch: recovering.first.reply.epoch });
          return { lastSeen, reply };
        })();
      }
    };

    const publish = async (p, index) => {
      const from = p.hello.user;
      let next = 0;
      const count = TOTAL / PUBLISHERS;
      const worker = async () => {
        while (next < count) {
          const n = next++;
          const data = { p: index, n };
          const r = await p.request('pub', { ch: CH, data });
          if (!('ok' in r)) throw new Error(`publisher ${index} pub #${n} failed: ${JSON.stringify(r)}`);
          const o = r.ok.offset;
          if (acked.has(o)) throw new Error(`offset ${o} acked twice: ${JSON.stringify(acked.get(o).data)} and ${JSON.stringify(data)}`);
          acked.set(o, { data, from });
          onAck();
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, worker));
    };
    await Promise.all(publishers.map(publish));

    // Every publication was acked with a distinct offset 1..TOTAL.
    assert.equal(acked.size, TOTAL);
    for (let o = 1; o <= TOTAL; o++) assert.ok(acked.has(o), `offset ${o} was never acked`);

    await Promise.all(subscribing);
    const { lastSeen, reply: recoveryReply } = await recoveryDone;

    // Wait for every subscriber to have received the final offset.
    const all = [...recorders, recovering.second];
    await withTimeout((async () => {
      for (;;) {
        if (all.every((r) => r.last >= TOTAL)) return;
        await new Promise((res) => setTimeout(res, 50));
      }
    })(), 60_000, `not every subscriber reached offset ${TOTAL}: ` +
      all.map((r) => `${r.name} at ${r.last}`).join(', '));
    await Promise.all(all.map((r) => r.client.call('ping')));

    for (const r of recorders) {
      assert.ok(r.reply.offset >= 0 && r.reply.offset <= TOTAL, `${r.name}: reply offset ${r.reply.offset}`);
      assert.deepEqual(r.reply.pubs, [], `${r.name}: no pubs without since`);
      checkSequence(r.name, r.msgs, r.reply.offset, acked);
    }

    // The recovering subscriber: the first connection saw a gap-free prefix, the recovery returned exactly
    // the missed publications, and live delivery continued after them.
    const rf = recovering.first;
    checkSequence(rf.name, rf.msgs, rf.reply.offset, acked, lastSeen);
    assert.equal(recoveryReply.recovered, true, 'history_size 20000 keeps everything: recovery succeeds');
    assert.equal(recoveryReply.epoch, rf.reply.epoch);
    const recoveredThenLive = [...recoveryReply.pubs.map((p) => ({ ...p, ch: CH })), ...recovering.second.msgs];
    checkSequence('recover/second (pubs + live)', recoveredThenLive, lastSeen, acked);

    if (process.env.RTSYNC_TEST_VERBOSE) {
      console.log(recorders.map((r) => `${r.name}@${r.reply.offset}:${r.msgs.length}`).join(' '),
                  `recovery after ${lastSeen}: ${recoveryReply.pubs.length} pubs + ${recovering.second.msgs.length} live`);
    }
    // Some subscribers really did join mid-stream.
    const midStream = recorders.filter((r) => r.reply.offset > 0 && r.reply.offset < TOTAL);
    assert.ok(midStream.length >= 3, `subscribers that joined mid-stream: ${midStream.map((r) => `${r.name}@${r.reply.offset}`)}`);

    await Promise.all([...publishers, ...all.map((r) => r.client)].map((c) => c.close()));
  });
