// Honest connection state (issue 14, item 6), against the real server through a TCP proxy that can go
// silent: a link that drops every byte in both directions without closing is noticed within 15 s with
// the library's defaults, the connection is back within about a second of the link returning, and a
// publication made meanwhile arrives after the reconnect. The browser's `offline`/`online` events
// (from a fake EventTarget on `window`) take the connection offline at once and back at once.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { cleanupAll, sleep, startServer, waitFor } from '../integration/lib/server.mjs';
import { connect, once, silentProxy, slowLink } from './lib/harness.mjs';

after(async () => { await cleanupAll(); });

// The library's own defaults (the harness shortens the backoff and lengthens the timeout).
const DEFAULTS = { minDelay: 250, maxDelay: 10_000, timeout: 10_000 };

const portOf = (server) => Number(new URL(server.wsUrl).port);

describe('Connection liveness', () => {
  test('a silent link: offline within 15 s, online within 1.5 s of its return, nothing missed', async () => {
    const server = await startServer();
    const proxy = await silentProxy(portOf(server));
    const a = await connect(server, { urlFn: () => proxy.url, ...DEFAULTS });
    const b = await connect(server);
    const got = [];
    a.channel('live').on('message', (data) => got.push(data.n));
    await a.channel('live').subscribe();
    await b.channel('live').publish({ n: 0 });
    await waitFor(() => got.length === 1, { message: 'the first publication' });

    const measured = [];
    for (let round = 1; round <= 2; round++) {
      proxy.silence();
      const silentAt = Date.now();
      await once(a, 'offline', 20_000);
      const noticed = Date.now() - silentAt;
      assert.notEqual(a.state, 'online');
      await b.channel('live').publish({ n: round }); // made while `a` cannot hear it
      await sleep(500 + Math.random() * 2000); // the link returns at any moment of the retries
      const online = once(a, 'online', 10_000);
      proxy.resume();
      const resumedAt = Date.now();
      await online;
      const back = Date.now() - resumedAt;
      measured.push({ noticed, back });
      assert.ok(noticed <= 15_000, `noticed after ${noticed} ms`);
      assert.ok(back <= 1_500, `back after ${back} ms`);
      await waitFor(() => got.length === round + 1, { message: `publication ${round} after the reconnect` });
    }
    assert.deepEqual(got, [0, 1, 2]);
    console.log('liveness measured (ms):', JSON.stringify(measured));
    a.close();
    b.close();
    proxy.close();
  });

  test("the browser's offline and online events: offline at once, no attempts, back at once", async () => {
    const server = await startServer();
    const b = await connect(server); // another device: opened before `window` exists, deaf to its events
    globalThis.window = new EventTarget();
    try {
      const link = slowLink();
      const a = await connect(server, { hooks: link.hooks, ...DEFAULTS });
      const got = [];
      a.channel('net').on('message', (data) => got.push(data.n));
      await a.channel('net').subscribe();
      const attempts = [];
      a.on('connecting', () => attempts.push(Date.now()));

      const offline = once(a, 'offline');
      window.dispatchEvent(new Event('offline'));
      assert.equal(a.state, 'offline', 'offline at once');
      const [, info] = await offline;
      assert.equal(info.delay, null, 'no attempt while the browser is offline');
      await b.channel('net').publish({ n: 1 });
      await sleep(1500);
      assert.deepEqual(attempts, [], 'no attempt while the browser is offline');

      const online = once(a, 'online', 5_000);
      const t0 = Date.now();
      window.dispatchEvent(new Event('online'));
      assert.equal(a.state, 'connecting', 'an attempt at once');
      await online;
      const back = Date.now() - t0;
      assert.ok(back <= 1_000, `back after ${back} ms`);
      await waitFor(() => got.length === 1, { message: 'the publication made while offline' });

      // `online` while a socket is believed open: it is probed at once.
      const lastId = Math.max(0, ...link.sent.map((o) => o.id || 0));
      window.dispatchEvent(new Event('online'));
      await link.whenSent((o) => o.op === 'ping' && o.id > lastId, 1_000);
      assert.equal(a.state, 'online');
      console.log('browser online -> online (ms):', back);
      a.close();
      b.close();
    } finally {
      delete globalThis.window;
    }
  });
});
