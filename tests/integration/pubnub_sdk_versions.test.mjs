// Older PubNub SDK generations from npm, in Node (docs/pubnub.md, the support table): pubnub@4 and
// pubnub@7 (package.json aliases pubnub4, pubnub7). They percent-encode the comma between channel names
// (`a%2Ca-pnpres`), send `heartbeat` on every subscribe and parse the same answers as SDK 11: publish,
// one subscription over several channels with presence, history, fetchMessages, hereNow, leave; and
// their App Context and Access Manager v3 calls (grantToken, setToken, revokeToken).
// Their browser builds run in tests/e2e/pubnub_sdk_versions_browser.test.mjs.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import PubNub4 from 'pubnub4';
import PubNub7 from 'pubnub7';
import { cleanupAll, startServer } from './lib/server.mjs';
import { pubnubClient } from './lib/pubnub.mjs';

const SECRET = 'sec-c-versions-0123456789';
const CONFIG = `
[pubnub]
publish_key = "demo"
secret_key = "${SECRET}"
presence_timeout = 10
subscribe_timeout = 5

[namespaces.mem]
durable = false
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
const clients = [];
after(async () => {
  for (const c of clients) c.stop();
  await cleanupAll();
});

let unique = 0;
const name = (prefix) => `${prefix}-${process.pid}-${++unique}`;

for (const [version, PubNub] of [['4.37.0', PubNub4], ['7.6.3', PubNub7]]) {
  const sdk = (userId) => {
    const c = pubnubClient(PubNub, server, userId);
    clients.push(c);
    return c;
  };

  describe(`pubnub@${version} in Node`, () => {
    test('publish, several channels with presence in one subscription, history, hereNow, leave', async () => {
      const a = name('room');
      const b = `mem:${name('room')}`;
      const watcher = sdk(name('watcher'));
      const talker = sdk(name('talker'));
      await watcher.subscribe({ channels: [a, b], withPresence: true });
      await talker.subscribe({ channels: [a, b] });
      const join = await watcher.next('presence', (e) => e.action === 'join' && e.uuid === talker.userId && e.channel === a);
      assert.equal(join.occupancy, 2);
      await watcher.next('presence', (e) => e.action === 'join' && e.uuid === talker.userId && e.channel === b);

      const sent = await talker.pn.publish({ channel: a, message: { text: 'hello a' }, meta: { lang: 'en' } });
      assert.match(String(sent.timetoken), /^\d{17}$/);
      await talker.pn.publish({ channel: b, message: 'hello b' });
      const m = await watcher.next('message', (e) => e.channel === a);
      assert.deepEqual(m.message, { text: 'hello a' });
      assert.equal(m.publisher, talker.userId);
      assert.equal(String(m.timetoken), String(sent.timetoken));
      assert.deepEqual(m.userMetadata, { lang: 'en' });
      assert.equal((await watcher.next('message', (e) => e.channel === b)).message, 'hello b');
      assert.deepEqual(talker.messages(a), [{ text: 'hello a' }], 'the publisher is subscribed too');

      const h = await watcher.pn.history({ channel: a, count: 10 });
      assert.deepEqual(h.messages.map((e) => e.entry), [{ text: 'hello a' }]);
      const f = await watcher.pn.fetchMessages({ channels: [a, b], count: 10 });
      assert.deepEqual(f.channels[a].map((e) => e.message), [{ text: 'hello a' }]);
      assert.deepEqual(f.channels[b].map((e) => e.message), ['hello b']);

      const here = await watcher.pn.hereNow({ channels: [a, b] });
      assert.equal(here.totalChannels, 2);
      assert.equal(here.totalOccupancy, 4);
      assert.deepEqual(here.channels[a].occupants.map((o) => o.uuid).sort(), [talker.userId, watcher.userId].sort());

      talker.pn.unsubscribe({ channels: [a, b] });
      const leave = await watcher.next('presence', (e) => e.action === 'leave' && e.uuid === talker.userId && e.channel === a);
      assert.equal(leave.occupancy, 1);
      await watcher.next('presence', (e) => e.action === 'leave' && e.uuid === talker.userId && e.channel === b);
      assert.equal(watcher.events.message.length, 2, 'each message once');
      const errors = [...watcher.events.status, ...talker.events.status].filter((s) => s.error);
      assert.deepEqual(errors, [], 'no error statuses (no retry loop)');
      watcher.stop();
      talker.stop();
    });
  });
}

for (const [version, PubNub] of [['4.37.0', PubNub4], ['7.6.3', PubNub7]]) {
  test(`pubnub@${version}: App Context, and a token granted, used and revoked`, async () => {
    const [u, ch] = [name('u'), name('ch')];
    const admin = pubnubClient(PubNub, server, name('admin'), { secretKey: SECRET });
    const user = pubnubClient(PubNub, server, u);
    clients.push(admin, user);
    const token = await admin.pn.grantToken({ ttl: 5, authorized_uuid: u,
      resources: { channels: { [ch]: { write: true } }, uuids: { [u]: { get: true, update: true } } } });
    assert.equal(user.pn.parseToken(token).resources.channels[ch].write, true);
    user.pn.setToken(token);
    await user.pn.publish({ channel: ch, message: 'granted' });
    assert.equal((await user.pn.objects.setUUIDMetadata({ data: { name: 'Old SDK' } })).data.name, 'Old SDK');
    const m = await admin.pn.objects.setMemberships({ uuid: u, channels: [ch] });
    assert.deepEqual(m.data.map((x) => x.channel.id), [ch]);
    const other = await user.pn.publish({ channel: name('other'), message: 'no' }).then(() => 'accepted', (e) => e.status?.statusCode);
    assert.equal(other, 403);
    await admin.pn.revokeToken(token);
    const revoked = await user.pn.publish({ channel: ch, message: 'no' }).then(() => 'accepted', (e) => e.status?.statusCode);
    assert.equal(revoked, 403);
  });
}
