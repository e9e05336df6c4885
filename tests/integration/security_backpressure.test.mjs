// Backpressure (issue 6): one subscriber stops reading while 50 MB are published on its channel by
// several publishers. It is closed as a slow consumer (4001: the server's log says so; the bye cannot be
// read by a peer that never reads), the other subscribers receive every publication in order, and the
// server's memory stays bounded (its outbound queue per connection is limited to limits.max_outbound).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { Client, cleanupAll, startServer, tmpDir, waitFor } from './lib/server.mjs';
import { OP, RawWs, parseLines } from './lib/rawws.mjs';
import { readSecret, signToken } from './lib/tokens.mjs';

const CONFIG = `
[namespaces.mem]
durable = false
history_size = 16
presence = false
`;

const TOTAL_BYTES = 50 * 1024 * 1024;
const PAYLOAD = 32 * 1024;
const PUBLISHERS = 4;
const FAST_SUBSCRIBERS = 3;
// Publications not yet received by every fast subscriber. Well under max_outbound (1 MiB) in bytes, so
// the fast subscribers can never be the slow ones, however the two cores are shared.
const WINDOW = 16;
// Peak growth of the server's RSS allowed while 50 MB flow through it (a queue that grew with the slow
// consumer's backlog would pass 50 MB).
const RSS_BOUND = 32 * 1024 * 1024;
const CH = 'mem:flood';

let server;
let secret;
before(async () => {
  const dataDir = tmpDir('rtsync-sec-bp-');
  // AddressSanitizer keeps freed memory in a quarantine (256 MB by default), which would look like
  // growth; a small quarantine still catches use-after-free of recent frees.
  const asan = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=4', 'thread_local_quarantine_size_kb=256']
    .filter(Boolean).join(':');
  server = await startServer({ config: CONFIG, dataDir, env: { ASAN_OPTIONS: asan } });
  secret = readSecret(dataDir);
});
after(cleanupAll);

function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

test('a subscriber that stops reading is closed with 4001; the others get everything; memory stays bounded', async (t) => {
  const n = Math.ceil(TOTAL_BYTES / PAYLOAD);
  const perPublisher = Math.ceil(n / PUBLISHERS);
  const total = perPublisher * PUBLISHERS;

  // The slow consumer: a raw socket that subscribes and then stops reading.
  const slow = await RawWs.connect(server.port, {
    headers: { authorization: `Bearer ${signToken({ sub: 'slowpoke' }, secret)}` },
  });
  await slow.readHello();
  slow.send(OP.text, JSON.stringify({ id: 1, op: 'sub', ch: CH }));
  const subReply = (await slow.nextObjects()).find((o) => o.id === 1);
  assert.ok(subReply?.ok, `slow sub: ${JSON.stringify(subReply)}`);
  const start = subReply.ok.offset;
  slow.socket.pause();

  // Fast subscribers check order and completeness as the pushes arrive (nothing is queued in the test).
  const fast = [];
  for (let i = 0; i < FAST_SUBSCRIBERS; i++) {
    const c = await Client.connect(server.wsUrl);
    const { offset } = await c.call('sub', { ch: CH });
    const state = { c, next: offset + 1, received: 0, lastSeq: new Map(), errors: [] };
    c.queueing = false;
    c.listeners.push((o) => {
      if (o.op !== 'msg' || o.ch !== CH) {
        if (o.op === 'bye') state.errors.push(`bye ${JSON.stringify(o)}`);
        return;
      }
      if (o.offset !== state.next) state.errors.push(`offset ${o.offset}, expected ${state.next}`);
      state.next = o.offset + 1;
      const { p, s, pad } = o.data;
      if ((state.lastSeq.get(p) ?? -1) + 1 !== s) state.errors.push(`publisher ${p}: seq ${s} after ${state.lastSeq.get(p)}`);
      if (pad.length !== PAYLOAD - 64) state.errors.push(`payload of ${pad.length} bytes`);
      state.lastSeq.set(p, s);
      state.received++;
      wake();
    });
    fast.push(state);
  }

  // Progress gate shared by the publishers.
  let sent = 0;
  let waiters = [];
  function wake() {
    const ready = waiters.filter((w) => sent - Math.min(...fast.map((f) => f.received)) < WINDOW);
    waiters = waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w();
  }
  const room = () => (sent - Math.min(...fast.map((f) => f.received)) < WINDOW
    ? Promise.resolve()
    : new Promise((resolve) => waiters.push(resolve)));

  const publishers = [];
  for (let i = 0; i < PUBLISHERS; i++) publishers.push(await Client.connect(server.wsUrl));

  const pid = server.proc.pid;
  const baseline = rssBytes(pid);
  let peak = baseline;
  const sampler = setInterval(() => { try { peak = Math.max(peak, rssBytes(pid)); } catch { /* exited */ } }, 25);

  const pad = 'x'.repeat(PAYLOAD - 64);
  const acks = [];
  await Promise.all(publishers.map(async (c, p) => {
    for (let s = 0; s < perPublisher; s++) {
      await room();
      sent++;
      acks.push(c.request('pub', { ch: CH, data: { p, s, pad } }, { timeout: 60_000 }));
    }
  }));
  const replies = await Promise.all(acks);
  assert.deepEqual(replies.filter((r) => !r.ok).slice(0, 3), [], 'every publication acknowledged');
  await waitFor(() => fast.every((f) => f.received === total), { timeout: 60_000, message: 'fast subscribers to catch up' });
  peak = Math.max(peak, rssBytes(pid));
  clearInterval(sampler);

  // Everyone but the slow consumer got everything, in order, and is still connected.
  for (const [i, f] of fast.entries()) {
    assert.deepEqual(f.errors.slice(0, 5), [], `fast subscriber ${i}`);
    assert.equal(f.received, total, `fast subscriber ${i} count`);
    assert.equal(f.next, start + total + 1);
    assert.equal(f.c.closeInfo, null, `fast subscriber ${i} still connected`);
    await f.c.call('ping');
  }

  // Memory: the backlog of the slow consumer is not kept anywhere.
  const growth = peak - baseline;
  assert.ok(growth < RSS_BOUND,
    `server RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB (baseline ${(baseline / 2 ** 20).toFixed(1)} MiB) ` +
    `while ${(TOTAL_BYTES / 2 ** 20).toFixed(0)} MiB were published`);

  // The slow one was closed as a slow consumer.
  await waitFor(() => /ws close session=\S+ user=slowpoke code=4001 /.test(server.stderr()), {
    timeout: 30_000, message: 'the server to log the slow consumer\'s close with code 4001',
  });

  // Reading again, the slow consumer gets what the kernel buffered, then the end of the connection: a
  // prefix of the stream in order, far from all of it, and a bye/close with 4001 if any made it out.
  slow.socket.resume();
  await slow.ended;
  const msgs = [];
  let bye = null;
  let closeCode = null;
  for (const f of slow.frames) {
    if (f.opcode === OP.close) closeCode = f.payload.readUInt16BE(0);
    if (f.opcode !== OP.text) continue;
    let objs;
    try { objs = parseLines(f.payload); } catch { continue; }  // a frame cut by the close
    for (const o of objs) {
      if (o.op === 'msg') msgs.push(o.offset);
      if (o.op === 'bye') bye = o;
    }
  }
  assert.ok(msgs.length < total, `the slow consumer cannot have received all ${total} (got ${msgs.length})`);
  msgs.forEach((off, i) => assert.equal(off, start + 1 + i, 'what it got is an in-order prefix'));
  t.diagnostic(`published ${total} x ${PAYLOAD} bytes; RSS ${(baseline / 2 ** 20).toFixed(1)} -> peak ` +
    `${(peak / 2 ** 20).toFixed(1)} MiB; the slow consumer got ${msgs.length} messages, bye ${bye?.code ?? 'unread'}, ` +
    `close ${closeCode ?? 'unread'}`);
  if (bye) assert.equal(bye.code, 4001, JSON.stringify(bye));
  if (closeCode !== null) assert.equal(closeCode, 4001);

  await Promise.all([...fast.map((f) => f.c.close()), ...publishers.map((c) => c.close())]);
});
