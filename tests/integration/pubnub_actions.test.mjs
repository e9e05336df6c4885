// PubNub message actions (docs/pubnub.md, "Message actions") with the official SDK (pubnub@11), in both
// of its subscribe loops: add, get (limits and paging), remove; the messageAction events subscribers
// get; fetchMessages with includeMessageActions; duplicates refused; in-memory channels refused; kept
// across a restart.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanupAll, startServer, tmpDir } from './lib/server.mjs';
import { MODES, name, sdk, stop, stopAll, subscribed, TT } from './lib/pubnub.mjs';

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
  describe(`message actions (${mode})`, () => {
    test('add, the event, get, fetchMessages with actions, remove', async () => {
      const ch = name('chat');
      const reader = sdk(server, name('reader'), { ee });
      const writer = sdk(server, name('writer'), { ee });
      await subscribed(reader, { channels: [ch] });
      const sent = await writer.pn.publish({ channel: ch, message: 'react to me' });
      const other = await writer.pn.publish({ channel: ch, message: 'not me' });

      const added = await writer.pn.addMessageAction({
        channel: ch, messageTimetoken: sent.timetoken, action: { type: 'reaction', value: 'smile' },
      });
      assert.equal(added.data.type, 'reaction');
      assert.equal(added.data.value, 'smile');
      assert.equal(added.data.uuid, writer.userId);
      assert.equal(added.data.messageTimetoken, sent.timetoken);
      assert.match(added.data.actionTimetoken, TT);
      const event = await reader.next('messageAction', (e) => e.event === 'added');
      assert.equal(event.channel, ch);
      assert.equal(event.publisher, writer.userId);
      assert.deepEqual(event.data, { ...added.data });

      const second = await reader.pn.addMessageAction({
        channel: ch, messageTimetoken: sent.timetoken, action: { type: 'receipt', value: 'read' },
      });
      assert.ok(BigInt(second.data.actionTimetoken) > BigInt(added.data.actionTimetoken));
      const dup = await writer.pn.addMessageAction({
        channel: ch, messageTimetoken: sent.timetoken, action: { type: 'reaction', value: 'smile' },
      }).then(() => assert.fail('the same action was added twice'), (e) => e);
      assert.equal(dup.status.statusCode, 409);

      const all = await reader.pn.getMessageActions({ channel: ch });
      assert.deepEqual(all.data.map((a) => a.value), ['smile', 'read'], 'ascending by action timetoken');
      assert.equal(all.more, undefined);
      const page = await reader.pn.getMessageActions({ channel: ch, limit: 1 });
      assert.deepEqual(page.data.map((a) => a.value), ['read'], 'the newest');
      assert.equal(page.more.start, second.data.actionTimetoken);
      const older = await reader.pn.getMessageActions({ channel: ch, start: page.more.start, limit: 1 });
      assert.deepEqual(older.data.map((a) => a.value), ['smile']);

      const fetched = await reader.pn.fetchMessages({ channels: [ch], includeMessageActions: true });
      const [m1, m2] = fetched.channels[ch];
      assert.equal(m1.message, 'react to me');
      assert.deepEqual(m1.actions, {
        reaction: { smile: [{ uuid: writer.userId, actionTimetoken: added.data.actionTimetoken }] },
        receipt: { read: [{ uuid: reader.userId, actionTimetoken: second.data.actionTimetoken }] },
      });
      assert.equal(m2.timetoken, other.timetoken);
      assert.deepEqual(m2.actions, {});

      await writer.pn.removeMessageAction({
        channel: ch, messageTimetoken: sent.timetoken, actionTimetoken: added.data.actionTimetoken,
      });
      const removed = await reader.next('messageAction', (e) => e.event === 'removed');
      assert.equal(removed.data.value, 'smile');
      assert.equal(removed.data.actionTimetoken, added.data.actionTimetoken);
      assert.deepEqual((await reader.pn.getMessageActions({ channel: ch })).data.map((a) => a.value), ['read']);
      const after = await reader.pn.fetchMessages({ channels: [ch], includeMessageActions: true });
      assert.deepEqual(Object.keys(after.channels[ch][0].actions), ['receipt']);
      stop(reader);
      stop(writer);
    });

    test('an in-memory channel has no message actions', async () => {
      const pn = sdk(server, name('writer'), { ee }).pn;
      const ch = `mem:${name('chat')}`;
      const sent = await pn.publish({ channel: ch, message: 'x' });
      const err = await pn.addMessageAction({ channel: ch, messageTimetoken: sent.timetoken, action: { type: 't', value: 'v' } })
        .then(() => assert.fail('accepted on an in-memory channel'), (e) => e);
      assert.equal(err.status.statusCode, 400);
    });
  });
}

test('message actions survive a restart', async () => {
  const dataDir = tmpDir('rtsync-actions-');
  const first = await startServer({ config: CONFIG, dataDir });
  const ch = name('kept');
  let pn = sdk(first, name('writer')).pn;
  const sent = await pn.publish({ channel: ch, message: 'm' });
  const added = await pn.addMessageAction({ channel: ch, messageTimetoken: sent.timetoken, action: { type: 'reaction', value: 'star' } });
  assert.equal(await first.stop(), 0);
  const again = await startServer({ config: CONFIG, dataDir });
  pn = sdk(again, name('reader')).pn;
  const got = await pn.getMessageActions({ channel: ch });
  assert.deepEqual(got.data.map((a) => [a.value, a.actionTimetoken]), [['star', added.data.actionTimetoken]]);
  const fetched = await pn.fetchMessages({ channels: [ch], includeMessageActions: true });
  assert.deepEqual(Object.keys(fetched.channels[ch][0].actions.reaction), ['star']);
  assert.equal(await again.stop(), 0);
});
