// Shutdown (PROTOCOL §1): on SIGTERM the server stops accepting, sends `bye` (then a close frame, code 1001)
// to every client, flushes the store and exits 0 within 5 s.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, cleanupAll, connectMany, startServer, tmpDir, withTimeout } from './lib/server.mjs';
import { RawWs } from './lib/rawws.mjs';

after(cleanupAll);

test('SIGTERM: every client gets bye 1001 then close 1001; exit 0 within 5 s; acked data survives',
  { timeout: 90_000 }, async () => {
    const dataDir = tmpDir('rtsync-shutdown-');
    const server = await startServer({ dataDir });
    const clients = await connectMany(server.wsUrl, 4);
    const [subscriber, presence, publisher] = clients; // the fourth stays idle
    await subscriber.call('sub', { ch: 'down' });
    await presence.call('sub', { ch: 'down', presence: true });
    const acked = [];
    for (let i = 1; i <= 20; i++) acked.push((await publisher.call('pub', { ch: 'down', data: { i } })).offset);
    await subscriber.messagesUntil('down', acked.at(-1));
    const raw = await RawWs.connect(server.port);
    await raw.readHello();

    const start = Date.now();
    server.proc.kill('SIGTERM');
    const code = await withTimeout(server.exited, 5_000, 'the server did not exit within 5 s of SIGTERM')
      .catch((e) => { throw new Error(`${e.message}\nstderr:\n${server.stderr()}`); });
    const elapsed = Date.now() - start;
    assert.equal(code, 0, `exit code (stderr:\n${server.stderr()})`);
    assert.ok(elapsed <= 5_000, `exited after ${elapsed} ms`);

    for (const [i, c] of clients.entries()) {
      const closed = await c.closed;
      const byes = c.peek((o) => o.op === 'bye');
      assert.equal(byes.length, 1, `client #${i}: one bye, got ${JSON.stringify(c.queue).slice(0, 300)}`);
      assert.equal(byes[0].code, 1001, `client #${i}: bye ${JSON.stringify(byes[0])}`);
      assert.equal(typeof byes[0].reason, 'string');
      assert.equal(closed.code, 1001, `client #${i}: close code (reason ${closed.reason})`);
      // bye is the last thing before the close.
      assert.equal(c.queue.at(-1).op, 'bye', `client #${i}: nothing after bye`);
    }
    const rawClose = await raw.expectClose();
    const rawBye = rawClose.objects.filter((o) => o.op === 'bye');
    assert.equal(rawBye.length, 1, `raw client: ${JSON.stringify(rawClose.objects)}`);
    assert.equal(rawBye[0].code, 1001);
    assert.equal(rawClose.code, 1001);

    // Everything acked before the SIGTERM is there after a restart.
    const again = await startServer({ dataDir });
    const c = await Client.connect(again.wsUrl);
    const h = await c.call('history', { ch: 'down' });
    assert.deepEqual(h.pubs.map((p) => p.offset), acked);
    assert.deepEqual(h.pubs.map((p) => p.data.i), acked.map((_, i) => i + 1));
    await c.close();
    assert.equal(await again.stop(), 0);
  });

test('SIGINT also shuts down cleanly with bye 1001', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const c = await Client.connect(server.wsUrl);
  server.proc.kill('SIGINT');
  const code = await withTimeout(server.exited, 5_000, 'the server did not exit within 5 s of SIGINT');
  assert.equal(code, 0, `exit code (stderr:\n${server.stderr()})`);
  const closed = await c.closed;
  assert.equal(c.peek((o) => o.op === 'bye')[0]?.code, 1001);
  assert.equal(closed.code, 1001);
});

test('an idle server exits 0 on SIGTERM', { timeout: 60_000 }, async () => {
  const server = await startServer();
  assert.equal(await server.stop({ timeout: 5_000 }), 0, server.stderr());
});
