// Crash safety (PROTOCOL §4): on a durable channel a `pub` ack means committed. After kill -9 and a restart
// on the same data dir, history holds every acked publication at its acked offset, with its data, and the
// epoch is unchanged (history was not lost).

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, cleanupAll, connectMany, startServer, tmpDir } from './lib/server.mjs';

after(cleanupAll);

const CHANNELS = ['crash.a', 'crash.b'];

// Publishes `perClient` publications from each client, alternating channels, `window` in flight per
// client. Calls onAck(total acked so far) synchronously on every ack. Resolves with
// {acked: Map ch -> Map offset -> {data, from}, errors}; pubs cut off by the crash count as unacked.
async function burst(clients, perClient, window, onAck) {
  const acked = new Map(CHANNELS.map((ch) => [ch, new Map()]));
  const errors = [];
  let total = 0;
  await Promise.all(clients.map(async (c, ci) => {
    let next = 0;
    const worker = async () => {
      while (next < perClient) {
        const n = next++;
        const ch = CHANNELS[n % CHANNELS.length];
        const data = { c: ci, n, pad: `payload-${ci}-${n}` };
        let r;
        try { r = await c.request('pub', { ch, data }); } catch { return; } // connection gone: unacked
        if (!('ok' in r)) { errors.push(r); continue; }
        const m = acked.get(ch);
        if (m.has(r.ok.offset)) errors.push({ duplicateOffset: r.ok.offset, ch });
        m.set(r.ok.offset, { data, from: c.hello.user });
        onAck(++total);
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
  }));
  return { acked, errors };
}

async function epochs(c) {
  const out = {};
  for (const ch of CHANNELS) {
    await c.call('pub', { ch, data: 'first' });  // offset 1, before the burst
    out[ch] = (await c.call('history', { ch })).epoch;
  }
  return out;
}

function checkHistory(ch, h, acked, { exactEnd }) {
  const byOffset = new Map(h.pubs.map((p) => [p.offset, p]));
  for (const [offset, { data, from }] of acked) {
    const p = byOffset.get(offset);
    assert.ok(p, `${ch}: acked offset ${offset} missing after the crash (history offset ${h.offset})`);
    assert.deepEqual(p.data, data, `${ch}: data at acked offset ${offset}`);
    assert.equal(p.from, from, `${ch}: from at acked offset ${offset}`);
  }
  // Offsets stay contiguous: 1..h.offset, nothing missing in between.
  assert.deepEqual(h.pubs.map((p) => p.offset), Array.from({ length: h.offset }, (_, i) => i + 1),
                   `${ch}: history offsets are 1..${h.offset}`);
  const maxAcked = Math.max(...acked.keys());
  if (exactEnd) assert.equal(h.offset, maxAcked, `${ch}: nothing beyond the last ack`);
  else assert.ok(h.offset >= maxAcked, `${ch}: offset ${h.offset} >= last ack ${maxAcked}`);
}

test('kill -9 right after the last ack: every acked publication is in history', { timeout: 110_000 }, async () => {
  const dataDir = tmpDir('rtsync-crash-');
  const server = await startServer({ dataDir });
  const clients = await connectMany(server.wsUrl, 5);
  const before = await epochs(clients[0]);
  const TOTAL = 5 * 100;
  const { acked, errors } = await burst(clients, 100, 10, (n) => { if (n === TOTAL) server.proc.kill('SIGKILL'); });
  assert.deepEqual(errors, []);
  assert.equal([...acked.values()].reduce((s, m) => s + m.size, 0), TOTAL, 'every publication was acked');
  await server.exited;
  for (const c of clients) c.terminate();

  const again = await startServer({ dataDir });
  const c = await Client.connect(again.wsUrl);
  for (const ch of CHANNELS) {
    const m = acked.get(ch);
    m.set(1, { data: 'first', from: clients[0].hello.user });
    const h = await c.call('history', { ch, limit: 1000 });
    assert.equal(h.epoch, before[ch], `${ch}: the epoch is unchanged after the crash`);
    checkHistory(ch, h, m, { exactEnd: true });
    const p = await c.call('pub', { ch, data: 'after the crash' });
    assert.equal(p.offset, h.offset + 1, `${ch}: offsets continue`);
  }
  await c.close();
});

test('kill -9 in the middle of a burst: acked publications survive, no gap', { timeout: 110_000 }, async () => {
  const dataDir = tmpDir('rtsync-crash-mid-');
  const server = await startServer({ dataDir });
  const clients = await connectMany(server.wsUrl, 4);
  const before = await epochs(clients[0]);
  // 4 x 150 sent; the crash comes after 300 acks while the rest is in flight.
  const { acked, errors } = await burst(clients, 150, 10, (n) => { if (n === 300) server.proc.kill('SIGKILL'); });
  assert.deepEqual(errors, []);
  await server.exited;
  for (const c of clients) c.terminate();
  assert.ok([...acked.values()].reduce((s, m) => s + m.size, 0) >= 300);

  const again = await startServer({ dataDir });
  const c = await Client.connect(again.wsUrl);
  for (const ch of CHANNELS) {
    const m = acked.get(ch);
    m.set(1, { data: 'first', from: clients[0].hello.user });
    const h = await c.call('history', { ch, limit: 1000 });
    assert.equal(h.epoch, before[ch], `${ch}: the epoch is unchanged after the crash`);
    checkHistory(ch, h, m, { exactEnd: false });
    const s = await c.call('sub', { ch, since: { offset: 1, epoch: before[ch] } });
    assert.equal(s.recovered, true, `${ch}: recovery across the crash`);
    assert.equal(s.offset, h.offset);
  }
  await c.close();
});
