// PubNub Access Manager v3 (docs/pubnub.md, "Access Manager") with the official SDK (pubnub@11), in both
// of its subscribe loops: grantToken signed with the secret key gives a token the SDK's parseToken reads;
// a client with it (setToken) may do exactly what it grants (channels, patterns, groups and their
// channels, uuids, the authorized uuid) and gets Access Manager's 403 for anything else; the secret key's
// holder may do anything; revokeToken refuses the token from then on, after a restart too; grants without
// the signature, with a wrong one, or on a server without a secret key are refused.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanupAll, httpRequest, startServer, tmpDir } from './lib/server.mjs';
import { MODES, name, sdk, stop, stopAll, subscribed } from './lib/pubnub.mjs';

const KEYS = { publishKey: 'pub-c-rtsync', subscribeKey: 'sub-c-rtsync' };
const SECRET = 'sec-c-rtsync-0123456789';
const CONFIG = `
[pubnub]
publish_key = "${KEYS.publishKey}"
subscribe_key = "${KEYS.subscribeKey}"
secret_key = "${SECRET}"
subscribe_timeout = 20

[namespaces.ro]
client_publish = false
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(async () => {
  stopAll();
  await cleanupAll();
});

const admin = (srv, options = {}) => sdk(srv, name('admin'), { ...KEYS, secretKey: SECRET, ...options });
const client = (srv, userId, token, options = {}) => {
  const c = sdk(srv, userId, { ...KEYS, ...options });
  if (token) c.pn.setToken(token);
  return c;
};
// The HTTP status a refused call gets (a test failure if it is accepted).
const refused = (promise) => promise.then(() => assert.fail('accepted'), (e) => e.status?.statusCode ?? e);

for (const [ee, mode] of MODES) {
  describe(`Access Manager (${mode})`, () => {
    test('a token allows exactly what it grants', async () => {
      const [ann, ch, other, g, inGroup] = [name('ann'), name('chat'), name('other'), name('g'), name('gch')];
      const boss = admin(server, { ee });
      const token = await boss.pn.grantToken({
        ttl: 5,
        authorized_uuid: ann,
        resources: {
          channels: { [ch]: { read: true, write: true }, [`ro:${ch}`]: { read: true, write: true } },
          groups: { [g]: { read: true } },
          uuids: { [ann]: { get: true, update: true } },
        },
        patterns: { channels: { '^pat-.*$': { read: true } } },
        meta: { plan: 'pro' },
      });
      const parsed = boss.pn.parseToken(token);
      assert.equal(parsed.version, 2);
      assert.equal(parsed.ttl, 5);
      assert.equal(parsed.authorized_uuid, ann);
      assert.deepEqual(parsed.resources.channels[ch], { read: true, write: true, manage: false, delete: false, get: false, update: false, join: false });
      assert.equal(parsed.resources.groups[g].read, true);
      assert.equal(parsed.resources.uuids[ann].update, true);
      assert.equal(parsed.patterns.channels['^pat-.*$'].read, true);
      assert.deepEqual(parsed.meta, { plan: 'pro' });
      assert.ok(Math.abs(parsed.timestamp - Date.now() / 1000) < 60);

      const me = client(server, ann, token, { ee });
      // Channels: read and write where granted, by name or pattern; namespace rules still hold.
      await me.pn.publish({ channel: ch, message: 'granted' });
      assert.equal(await refused(me.pn.publish({ channel: other, message: 'no' })), 403);
      assert.equal(await refused(me.pn.publish({ channel: `ro:${ch}`, message: 'no' })), 403, 'clients never publish there');
      assert.deepEqual((await me.pn.fetchMessages({ channels: [ch] })).channels[ch].map((m) => m.message), ['granted']);
      assert.ok(await me.pn.fetchMessages({ channels: [`pat-${ann}`] }), 'read through a pattern');
      assert.equal(await refused(me.pn.publish({ channel: `pat-${ann}`, message: 'no' })), 403, 'the pattern grants read only');
      assert.equal(await refused(me.pn.fetchMessages({ channels: [other] })), 403);

      await subscribed(me, { channels: [ch] });
      await boss.pn.publish({ channel: ch, message: 'live' });
      assert.equal((await me.next('message', (m) => m.message === 'live')).channel, ch);
      me.pn.unsubscribeAll();

      // A group's read covers its channels, which need no grant of their own; changing it is manage.
      await boss.pn.channelGroups.addChannels({ channelGroup: g, channels: [inGroup] });
      assert.deepEqual((await me.pn.channelGroups.listChannels({ channelGroup: g })).channels, [inGroup]);
      assert.equal(await refused(me.pn.channelGroups.addChannels({ channelGroup: g, channels: [other] })), 403);
      assert.equal(await refused(me.pn.channelGroups.listGroups()), 403);
      await subscribed(me, { channelGroups: [g] });
      await boss.pn.publish({ channel: inGroup, message: 'via the group' });
      assert.equal((await me.next('message', (m) => m.message === 'via the group')).subscription, g);

      // App Context: the uuid's get and update, nothing else.
      await boss.pn.objects.setUUIDMetadata({ uuid: `bob-${ann}`, data: { name: 'Bob' } });
      await me.pn.objects.setUUIDMetadata({ data: { name: 'Ann' } });
      assert.equal((await me.pn.objects.getUUIDMetadata()).data.name, 'Ann');
      assert.equal(await refused(me.pn.objects.removeUUIDMetadata()), 403, 'no delete');
      assert.equal(await refused(me.pn.objects.getUUIDMetadata({ uuid: `bob-${ann}` })), 403);
      assert.equal(await refused(me.pn.objects.setChannelMetadata({ channel: ch, data: { name: 'x' } })), 403, 'no update');
      assert.equal(await refused(me.pn.objects.setMemberships({ channels: [ch] })), 403, 'no join');
      const listed = await me.pn.objects.getAllUUIDMetadata({ filter: `id LIKE "*${ann}"` });
      assert.deepEqual(listed.data.map((u) => u.id), [ann], 'only what it may get');

      // The refusal is Access Manager's, naming the resource.
      const raw = await httpRequest(`${server.url}/v2/objects/${KEYS.subscribeKey}/uuids/${enc(`bob-${ann}`)}?uuid=${enc(ann)}&auth=${token}`);
      assert.equal(raw.status, 403);
      assert.deepEqual(raw.json(), { message: 'Forbidden', payload: { uuids: [`bob-${ann}`] }, error: true, service: 'Access Manager', status: 403 });

      // Another uuid may not use it; the secret key's holder may do anything.
      const thief = client(server, name('mallory'), token, { ee });
      assert.equal(await refused(thief.pn.publish({ channel: ch, message: 'stolen' })), 403);
      await boss.pn.objects.removeUUIDMetadata({ uuid: ann });
      stop(me);
      stop(thief);
      stop(boss);
    });
  });
}

test('removing on a channel (messages, message actions, files) is a token\'s delete, not its write', async () => {
  const [ann, ch] = [name('ann'), name('rm')];
  const boss = admin(server);
  const grant = (bits) => boss.pn.grantToken({ ttl: 5, authorized_uuid: ann, resources: { channels: { [ch]: bits } } });
  const writer = client(server, ann, await grant({ read: true, write: true }));
  const sent = await writer.pn.publish({ channel: ch, message: 'keep me' });
  const action = await writer.pn.addMessageAction({ channel: ch, messageTimetoken: sent.timetoken, action: { type: 'r', value: 'x' } });
  const file = await writer.pn.sendFile({ channel: ch, file: { data: Buffer.from('bytes'), name: 'f.txt' } });
  const remove = (c) => [
    c.pn.removeMessageAction({ channel: ch, messageTimetoken: sent.timetoken, actionTimetoken: action.data.actionTimetoken }),
    c.pn.deleteFile({ channel: ch, id: file.id, name: 'f.txt' }),
    c.pn.deleteMessages({ channel: ch, start: String(BigInt(sent.timetoken) - 1n), end: sent.timetoken }),
  ];
  for (const status of await Promise.all(remove(writer).map(refused))) assert.equal(status, 403, 'write does not remove');
  assert.equal((await writer.pn.listFiles({ channel: ch })).data.length, 1);

  const deleter = client(server, ann, await grant({ read: true, delete: true }));
  await Promise.all(remove(deleter));
  assert.equal((await deleter.pn.listFiles({ channel: ch })).data.length, 0);
  const left = (await deleter.pn.fetchMessages({ channels: [ch], includeMessageActions: true })).channels[ch];
  assert.deepEqual(left.map((m) => m.messageType), [4], 'the message is gone, the file\'s message stays');
  for (const c of [boss, writer, deleter]) stop(c);
});

const enc = encodeURIComponent;

test('revokeToken refuses the token from then on, after a restart too', async () => {
  const dataDir = tmpDir('rtsync-pam-');
  let srv = await startServer({ config: CONFIG, dataDir });
  const [ann, ch] = [name('ann'), name('chat')];
  const grant = (s) => admin(s).pn.grantToken({ ttl: 10, resources: { channels: { [ch]: { write: true } } } });
  const [revoked, kept] = [await grant(srv), await grant(srv)];
  await client(srv, ann, revoked).pn.publish({ channel: ch, message: 1 });
  await admin(srv).pn.revokeToken(revoked);
  assert.equal(await refused(client(srv, ann, revoked).pn.publish({ channel: ch, message: 2 })), 403);
  await admin(srv).pn.revokeToken(revoked);  // twice is fine
  assert.equal(await srv.stop(), 0);

  srv = await startServer({ config: CONFIG, dataDir });
  const after = await refused(client(srv, ann, revoked).pn.publish({ channel: ch, message: 3 }));
  assert.equal(after, 403, 'still revoked after the restart');
  await client(srv, ann, kept).pn.publish({ channel: ch, message: 4 }).catch((e) => assert.fail(JSON.stringify(e.status)));
  const bogus = await httpRequest(`${srv.url}/v3/pam/${KEYS.subscribeKey}/grant/not-a-token`, { method: 'DELETE' });
  assert.equal(bogus.status, 403, 'unsigned');
  assert.equal(await refused(admin(srv).pn.revokeToken('bm90LWEtdG9rZW4')), 400, 'not a token of this server');
  assert.equal(await srv.stop(), 0);
});

test('grants need the secret key\'s signature, and a server with one', async () => {
  const body = JSON.stringify({ ttl: 5, permissions: { resources: { channels: { a: 1 } } } });
  const unsigned = await httpRequest(`${server.url}/v3/pam/${KEYS.subscribeKey}/grant?uuid=x`,
    { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  assert.equal(unsigned.status, 403);
  assert.equal(unsigned.json().service, 'Access Manager');
  const forged = await refused(admin(server, { secretKey: 'not-the-secret-key' }).pn.grantToken({
    ttl: 5, resources: { channels: { a: { read: true } } } }));
  assert.equal(forged, 403);
  const stale = await httpRequest(`${server.url}/v3/pam/${KEYS.subscribeKey}/grant?uuid=x&timestamp=1&signature=v2.abc`,
    { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  assert.equal(stale.status, 403);
  const badTtl = await refused(admin(server).pn.grantToken({ ttl: 50000, resources: { channels: { a: { read: true } } } }));
  assert.equal(badTtl, 400);
  // A token from elsewhere (or forged) is refused, not ignored.
  const t = await admin(server).pn.grantToken({ ttl: 5, resources: { channels: { a: { read: true } } } });
  const bent = t.slice(0, -10) + (t[t.length - 10] === 'A' ? 'B' : 'A') + t.slice(-9);  // in its signature
  const c = client(server, 'u', bent);
  assert.equal(await refused(c.pn.fetchMessages({ channels: ['a'] })), 403);

  const open = await startServer({ config: '[pubnub]\npublish_key = "p"\n' });
  const off = await refused(sdk(open, 'admin', { publishKey: 'p', subscribeKey: 's', secretKey: SECRET }).pn.grantToken({
    ttl: 5, resources: { channels: { a: { read: true } } } }));
  assert.equal(off, 403, 'Access Manager is off without a secret key');
});
