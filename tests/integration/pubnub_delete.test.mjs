// PubNub deleteMessages (docs/pubnub.md, "Deleting messages") with the official SDK (pubnub@11), in both
// of its subscribe loops, on a durable channel: deleted publications are gone from history, fetch
// messages, message counts, a subscriber's catch-up and native history; a native subscriber recovering
// over the range gets the publications that remain, under their offsets; and all of that again after the
// server stopped and started on the same data directory. Deleting needs a token that may publish there.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, cleanupAll, httpRequest, startServer, tmpDir } from './lib/server.mjs';
import { MODES, name, sdk, stop, stopAll } from './lib/pubnub.mjs';
import { readSecret, signToken } from './lib/tokens.mjs';

after(async () => {
  stopAll();
  await cleanupAll();
});

// What the channel shows every reader: PubNub history, fetch, counts, a catch-up long poll from before
// the first message, and native history and recovery from offset 1.
async function shown(server, ch, tts) {
  const pn = sdk(server, name('reader'));
  const history = (await pn.pn.history({ channel: ch })).messages.map((m) => m.entry);
  const fetched = (await pn.pn.fetchMessages({ channels: [ch] })).channels[ch]?.map((m) => m.message) ?? [];
  const counted = (await pn.pn.messageCounts({ channels: [ch], timetoken: '1' })).channels[ch];
  const before = (BigInt(tts[0]) - 1n).toString();
  const poll = (await httpRequest(`${server.url}/v2/subscribe/demo/${ch}/0?uuid=r&tt=${before}&tr=1`)).json();
  const caught = poll.m.map((m) => m.d);
  const ws = await Client.connect(server.wsUrl);
  const native = (await ws.call('history', { ch })).pubs.map((p) => [p.offset, p.data]);
  const head = await ws.call('history', { ch, limit: 1 });
  const recovered = await ws.call('sub', { ch, since: { offset: 1, epoch: head.epoch } });
  await ws.close();
  stop(pn);
  return { history, fetched, counted, caught, native, recovered: recovered.recovered,
           recoveredPubs: (recovered.pubs ?? []).map((p) => [p.offset, p.data]) };
}

for (const [ee, mode] of MODES) {
  test(`deleteMessages takes messages out of every read, also after a restart (${mode})`, async () => {
    const dataDir = tmpDir('rtsync-delete-');
    let server = await startServer({ dataDir });
    const token = signToken({ sub: 'editor', caps: { sub: ['*'], pub: ['*'] } }, readSecret(dataDir));
    const ch = name('chat');
    const writer = sdk(server, name('writer'), { ee, authKey: token });
    const tts = [];
    for (let i = 1; i <= 5; i++) tts.push((await writer.pn.publish({ channel: ch, message: `m${i}` })).timetoken);

    // Without a token: refused, nothing deleted.
    const anon = sdk(server, name('anon'), { ee });
    const refused = await anon.pn.deleteMessages({ channel: ch, start: tts[0], end: tts[2] }).then(
      () => assert.fail('an anonymous client deleted messages'), (e) => e);
    assert.equal(refused.status.statusCode, 403);
    stop(anon);

    // PubNub's range: start exclusive, end inclusive: m2 and m3.
    await writer.pn.deleteMessages({ channel: ch, start: tts[0], end: tts[2] });
    const expected = {
      history: ['m1', 'm4', 'm5'],
      fetched: ['m1', 'm4', 'm5'],
      counted: 3,
      caught: ['m1', 'm4', 'm5'],
      native: [[1, 'm1'], [4, 'm4'], [5, 'm5']],
      recovered: true,
      recoveredPubs: [[4, 'm4'], [5, 'm5']],
    };
    assert.deepEqual(await shown(server, ch, tts), expected, 'after the deletion');
    stop(writer);

    assert.equal(await server.stop(), 0);
    server = await startServer({ dataDir });
    assert.deepEqual(await shown(server, ch, tts), expected, 'after a restart on the same data directory');

    // The offsets go on after the last one, never reusing a deleted one.
    const ws = await Client.connect(server.wsUrl);
    assert.equal((await ws.call('pub', { ch, data: 'm6' })).offset, 6);
    await ws.close();
    // One message by its own timetoken (PubNub's example: start = tt - 1, end = tt).
    const again = sdk(server, name('writer'), { ee, authKey: token });
    await again.pn.deleteMessages({ channel: ch, start: (BigInt(tts[3]) - 1n).toString(), end: tts[3] });
    assert.deepEqual((await again.pn.fetchMessages({ channels: [ch] })).channels[ch].map((m) => m.message), ['m1', 'm5', 'm6']);
    stop(again);
    assert.equal(await server.stop(), 0);
  });
}

test('an in-memory channel cannot have its messages deleted', async () => {
  const server = await startServer({ config: '[namespaces.mem]\ndurable = false\n' });
  const token = signToken({ sub: 'editor' }, readSecret(server.dataDir));
  const pn = sdk(server, name('writer'), { authKey: token });
  const err = await pn.pn.deleteMessages({ channel: `mem:${name('c')}` }).then(() => assert.fail('deleted'), (e) => e);
  assert.equal(err.status.statusCode, 400);
});
