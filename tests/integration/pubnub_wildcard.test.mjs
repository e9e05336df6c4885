// PubNub wildcard subscribe on rtsync channel names (docs/pubnub.md, "Wildcard subscribe") with the
// official SDK (pubnub@11), in both of its subscribe loops: `P.*` receives messages and signals of every
// channel under `P.` (any depth), `P.b.*` of those under `P.b.`, with `subscription` the wildcard and
// `channel` the channel; durable and in-memory namespaces; each message once; names that are no pattern
// (PubNub's rules) refused.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, httpRequest, startServer, waitFor } from './lib/server.mjs';
import { MODES, name, sdk, stop, stopAll, subscribed } from './lib/pubnub.mjs';

const CONFIG = `
[pubnub]
subscribe_timeout = 20

[namespaces.mem]
durable = false
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(async () => {
  stopAll();
  await cleanupAll();
});

for (const [ee, mode] of MODES) {
  describe(`wildcard subscribe (${mode})`, () => {
    test('P.* gets every channel under P., with the wildcard as its subscription', async () => {
      const p = name('w');
      const reader = sdk(server, name('reader'), { ee });
      const writer = sdk(server, name('writer'), { ee });
      await subscribed(reader, { channels: [`${p}.*`, `${p}.b.*`] });
      await writer.pn.publish({ channel: `${p}.a`, message: 'one level' });
      await writer.pn.publish({ channel: `${p}.b.c.d`, message: 'deep' });
      await writer.pn.publish({ channel: `${p}x.a`, message: 'not under it' });
      await writer.pn.publish({ channel: p, message: 'the prefix itself' });
      await writer.pn.signal({ channel: `${p}.s`, message: 'typing' });
      // A native publication is relayed as well.
      const ws = await Client.connect(server.wsUrl);
      await ws.call('pub', { ch: `${p}.native`, data: { from: 'ws' } });
      await ws.close();

      const one = await reader.next('message', (e) => e.message === 'one level');
      assert.equal(one.channel, `${p}.a`);
      assert.equal(one.subscription, `${p}.*`);
      assert.equal(one.publisher, writer.userId);
      await reader.next('message', (e) => e.message?.from === 'ws');
      const sig = await reader.next('signal', (e) => e.message === 'typing');
      assert.equal(sig.channel, `${p}.s`);
      assert.equal(sig.subscription, `${p}.*`);
      // `P.b.c.d` matches both patterns: it comes once per subscription that matches it, each its own.
      await waitFor(() => reader.events.message.filter((e) => e.message === 'deep').length === 2, { message: 'deep twice' });
      assert.deepEqual(reader.events.message.filter((e) => e.message === 'deep').map((e) => e.subscription).sort(),
                       [`${p}.*`, `${p}.b.*`]);
      assert.ok(!reader.events.message.some((e) => e.message === 'not under it' || e.message === 'the prefix itself'));
      stop(reader);
      stop(writer);
    });

    test('durable and in-memory namespaces; a burst arrives once each, in order per channel', async () => {
      const p = name('burst');
      const reader = sdk(server, name('reader'), { ee });
      const writer = sdk(server, name('writer'), { ee });
      await subscribed(reader, { channels: [`${p}.*`, `mem:${p}.*`] });
      const sends = [];
      for (let i = 0; i < 30; i++) {
        sends.push(writer.pn.publish({ channel: `${p}.${i % 3}`, message: { i } }));
        sends.push(writer.pn.publish({ channel: `mem:${p}.${i % 3}`, message: { m: i } }));
      }
      await Promise.all(sends);
      await waitFor(() => reader.events.message.length >= 60, { message: '60 messages' });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(reader.events.message.length, 60, 'each once');
      // The SDK sends the publishes concurrently, over several connections, so the server's order is
      // not the loop's: each arrives once, in the channel's publication (timetoken) order.
      for (const ch of [0, 1, 2].flatMap((k) => [`${p}.${k}`, `mem:${p}.${k}`])) {
        const got = reader.events.message.filter((e) => e.channel === ch);
        assert.equal(new Set(got.map((e) => JSON.stringify(e.message))).size, 10, `${ch}: each of its 10 once`);
        const tts = got.map((e) => BigInt(e.timetoken));
        assert.ok(tts.every((t, j) => j === 0 || tts[j - 1] < t), `${ch} in order: ${tts}`);
      }
      assert.ok(reader.events.message.filter((e) => e.channel.startsWith('mem:')).every((e) => e.subscription === `mem:${p}.*`));
      stop(reader);
      stop(writer);
    });
  });
}

test('names that are no wildcard PubNub serves are refused', async () => {
  const p = name('bad');
  for (const ch of [`${p}.b.c.*`, `${p}.*.c`, `*`, `coll:x.*`, `${p}.*-pnpres`, `nodecl:${p}.*`]) {
    const res = await httpRequest(`${server.url}/v2/subscribe/demo/${encodeURIComponent(ch)}/0?uuid=u`);
    assert.ok(res.status === 400 || res.status === 404, `${ch}: ${res.status} ${res.body}`);
    assert.equal(res.json().error, true, ch);
  }
});
