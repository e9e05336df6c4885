// PubNub App Context (docs/pubnub.md, "App Context") with the official SDK (pubnub@11), in both of its
// subscribe loops: uuid and channel metadata set (merged), got, listed (paging forwards and backwards,
// filter, sort, include, totalCount) and removed, If-Match (412); memberships and members from both sides;
// the App Context events a subscriber gets on the channels the records name; rtsync's channel rules
// without Access Manager; and everything kept across a restart.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanupAll, httpRequest, startServer, tmpDir } from './lib/server.mjs';
import { MODES, name, sdk, stop, stopAll, subscribed } from './lib/pubnub.mjs';

const CONFIG = `
[pubnub]
subscribe_timeout = 20

[namespaces.priv]
anonymous = false

[namespaces.ro]
client_publish = false
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(async () => {
  stopAll();
  await cleanupAll();
});

const refusal = (promise) => promise.then(() => assert.fail('accepted'), (e) => e);

for (const [ee, mode] of MODES) {
  describe(`App Context (${mode})`, () => {
    test('uuid metadata: set merges, get, include, If-Match, remove', async () => {
      const me = name('ann');
      const pn = sdk(server, me, { ee }).pn;
      const set = await pn.objects.setUUIDMetadata({
        data: { name: 'Ann', email: 'ann@example.com', custom: { team: 'red', level: 3 }, status: 'active', type: 'admin' },
      });
      assert.equal(set.status, 200);
      assert.equal(set.data.id, me, 'the caller\'s uuid by default');
      assert.equal(set.data.name, 'Ann');
      assert.deepEqual(set.data.custom, { team: 'red', level: 3 });
      assert.equal(set.data.status, 'active');
      assert.match(set.data.updated, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.ok(set.data.eTag);

      // Fields not sent stay; custom is replaced whole.
      const more = await pn.objects.setUUIDMetadata({ data: { profileUrl: 'https://x/ann.png', custom: { team: 'blue' } } });
      assert.equal(more.data.name, 'Ann');
      assert.equal(more.data.profileUrl, 'https://x/ann.png');
      assert.deepEqual(more.data.custom, { team: 'blue' });
      assert.notEqual(more.data.eTag, set.data.eTag);

      const got = await pn.objects.getUUIDMetadata({ uuid: me });
      assert.deepEqual(got.data, more.data);
      const bare = await pn.objects.getUUIDMetadata({ uuid: me, include: { customFields: false } });
      assert.equal(bare.data.custom, undefined, 'custom only when included');
      assert.equal(bare.data.email, 'ann@example.com');

      const stale = await refusal(pn.objects.setUUIDMetadata({ data: { name: 'Nope' }, ifMatchesEtag: set.data.eTag }));
      assert.equal(stale.status.statusCode, 412);
      assert.equal((await pn.objects.getUUIDMetadata()).data.name, 'Ann');
      const fresh = await pn.objects.setUUIDMetadata({ data: { name: 'Anne' }, ifMatchesEtag: more.data.eTag });
      assert.equal(fresh.data.name, 'Anne');

      const bad = await refusal(pn.objects.setUUIDMetadata({ data: { custom: { nested: { no: 1 } } } }));
      assert.equal(bad.status.statusCode, 400);

      assert.equal((await pn.objects.removeUUIDMetadata()).status, 200);
      const gone = await refusal(pn.objects.getUUIDMetadata());
      assert.equal(gone.status.statusCode, 404);
    });

    test('listings: paging both ways, filter, sort, totalCount', async () => {
      const tag = name('t');
      const pn = sdk(server, name('lister'), { ee }).pn;
      const people = [['Dora', 31], ['alan', 25], ['Bea', 40], ['Carl', 19], ['Eve', 52]];
      for (const [n, age] of people) {
        await pn.objects.setUUIDMetadata({ uuid: `${tag}-${n}`, data: { name: n, custom: { tag, age } } });
      }
      const mine = `custom.tag == "${tag}"`;
      const all = await pn.objects.getAllUUIDMetadata({ filter: mine, include: { totalCount: true, customFields: true } });
      assert.equal(all.totalCount, 5);
      assert.deepEqual(all.data.map((u) => u.name), ['Bea', 'Carl', 'Dora', 'Eve', 'alan'], 'by id');
      assert.equal(all.data[0].custom.age, 40);

      const older = await pn.objects.getAllUUIDMetadata({ filter: `${mine} && (custom.age > 30 || name LIKE "c*")`, sort: { name: 'asc' } });
      assert.deepEqual(older.data.map((u) => u.name), ['Bea', 'Carl', 'Dora', 'Eve']);
      assert.equal(older.data[0].custom, undefined, 'custom only when included');

      const pages = [];
      let page = await pn.objects.getAllUUIDMetadata({ filter: mine, sort: { 'custom.age': 'desc' }, limit: 2 });
      pages.push(page.data.map((u) => u.name));
      assert.equal(page.prev, undefined);
      const second = await pn.objects.getAllUUIDMetadata({ filter: mine, sort: { 'custom.age': 'desc' }, limit: 2, page: { next: page.next } });
      pages.push(second.data.map((u) => u.name));
      page = await pn.objects.getAllUUIDMetadata({ filter: mine, sort: { 'custom.age': 'desc' }, limit: 2, page: { next: second.next } });
      pages.push(page.data.map((u) => u.name));
      assert.deepEqual(pages, [['Eve', 'Bea'], ['Dora', 'alan'], ['Carl']]);
      assert.equal(page.next, undefined, 'the last page');
      const back = await pn.objects.getAllUUIDMetadata({ filter: mine, sort: { 'custom.age': 'desc' }, limit: 2, page: { prev: page.prev } });
      assert.deepEqual(back.data.map((u) => u.name), ['Dora', 'alan']);

      const badFilter = await refusal(pn.objects.getAllUUIDMetadata({ filter: 'name ==' }));
      assert.equal(badFilter.status.statusCode, 400);
    });

    test('channel metadata, and rtsync\'s channel rules', async () => {
      const ch = name('room');
      const pn = sdk(server, name('owner'), { ee }).pn;
      const set = await pn.objects.setChannelMetadata({ channel: ch, data: { name: 'Room', description: 'a room', custom: { floor: 2 } } });
      assert.equal(set.data.id, ch);
      assert.equal(set.data.description, 'a room');
      assert.deepEqual((await pn.objects.getChannelMetadata({ channel: ch })).data.custom, { floor: 2 });
      const listed = await pn.objects.getAllChannelMetadata({ filter: `id == "${ch}"`, include: { totalCount: true } });
      assert.equal(listed.totalCount, 1);
      assert.equal(listed.data[0].name, 'Room');

      const badName = await refusal(pn.objects.setChannelMetadata({ channel: 'no spaces', data: { name: 'x' } }));
      assert.equal(badName.status.statusCode, 400);
      const priv = await refusal(pn.objects.setChannelMetadata({ channel: `priv:${ch}`, data: { name: 'x' } }));
      assert.equal(priv.status.statusCode, 403, 'a namespace that needs a token');
      const ro = await refusal(pn.objects.setChannelMetadata({ channel: `ro:${ch}`, data: { name: 'x' } }));
      assert.equal(ro.status.statusCode, 403, 'a namespace clients do not publish on');
      assert.equal((await pn.objects.getChannelMetadata({ channel: `ro:${ch}` }).catch((e) => e)).status.statusCode, 404,
        'reading is subscribing: allowed, and there is none');

      await pn.objects.removeChannelMetadata({ channel: ch });
      assert.equal((await refusal(pn.objects.getChannelMetadata({ channel: ch }))).status.statusCode, 404);
    });

    test('memberships and members, from both sides', async () => {
      const [ann, bob] = [name('ann'), name('bob')];
      const [c1, c2, c3] = [name('c1'), name('c2'), name('c3')];
      const pn = sdk(server, ann, { ee }).pn;
      await pn.objects.setChannelMetadata({ channel: c1, data: { name: 'First', custom: { k: 'v' } } });
      await pn.objects.setUUIDMetadata({ uuid: bob, data: { name: 'Bob' } });

      const set = await pn.objects.setMemberships({
        channels: [c2, { id: c1, custom: { role: 'admin' }, status: 'active' }, c3],
        include: { customFields: true, channelFields: true, customChannelFields: true, totalCount: true },
      });
      assert.equal(set.totalCount, 3);
      assert.deepEqual(set.data.map((m) => m.channel.id), [c1, c2, c3]);
      assert.equal(set.data[0].channel.name, 'First');
      assert.deepEqual(set.data[0].channel.custom, { k: 'v' });
      assert.deepEqual(set.data[0].custom, { role: 'admin' });
      assert.deepEqual(set.data[1].channel, { id: c2 }, 'no metadata: its id');

      const page = await pn.objects.getMemberships({ limit: 2, include: { statusField: true } });
      assert.deepEqual(page.data.map((m) => m.channel.id), [c1, c2]);
      assert.equal(page.data[0].status, 'active');
      assert.equal(page.data[0].channel.name, undefined, 'channel fields only when included');
      const rest = await pn.objects.getMemberships({ limit: 2, page: { next: page.next } });
      assert.deepEqual(rest.data.map((m) => m.channel.id), [c3]);
      const admins = await pn.objects.getMemberships({ filter: 'custom.role == "admin" || channel.name == "none"', include: { customFields: true } });
      assert.deepEqual(admins.data.map((m) => m.channel.id), [c1]);
      const desc = await pn.objects.getMemberships({ sort: { 'channel.id': 'desc' } });
      assert.deepEqual(desc.data.map((m) => m.channel.id), [c3, c2, c1]);

      const members = await pn.objects.setChannelMembers({ channel: c1, uuids: [{ id: bob, custom: { seat: 4 } }],
        include: { UUIDFields: true, customFields: true } });
      assert.deepEqual(members.data.map((m) => m.uuid.id), [ann, bob]);
      assert.equal(members.data[1].uuid.name, 'Bob');
      assert.deepEqual(members.data[1].custom, { seat: 4 });
      assert.deepEqual((await pn.objects.getMemberships({ uuid: bob })).data.map((m) => m.channel.id), [c1]);

      await pn.objects.removeMemberships({ channels: [c2] });
      assert.deepEqual((await pn.objects.getMemberships()).data.map((m) => m.channel.id), [c1, c3]);
      await pn.objects.removeChannelMembers({ channel: c1, uuids: [ann] });
      assert.deepEqual((await pn.objects.getChannelMembers({ channel: c1 })).data.map((m) => m.uuid.id), [bob]);

      const priv = await refusal(pn.objects.setMemberships({ channels: [`priv:${c1}`] }));
      assert.equal(priv.status.statusCode, 403, 'joining needs the right to subscribe');
    });

    test('App Context events on the channels the records name', async () => {
      const [me, ch] = [name('ev'), name('evroom')];
      const watcher = sdk(server, name('watcher'), { ee });
      const actor = sdk(server, me, { ee });
      await subscribed(watcher, { channels: [me, ch] });

      await actor.pn.objects.setUUIDMetadata({ data: { name: 'Eve', custom: { a: 1 } } });
      const uuidSet = await watcher.next('objects', (e) => e.message.type === 'uuid' && e.message.event === 'set');
      assert.equal(uuidSet.channel, me, 'on the channel named like the uuid');
      assert.equal(uuidSet.message.source, 'objects');
      assert.equal(uuidSet.message.version, '2.0');
      assert.equal(uuidSet.message.data.id, me);
      assert.equal(uuidSet.message.data.name, 'Eve');
      assert.deepEqual(uuidSet.message.data.custom, { a: 1 });
      assert.ok(uuidSet.message.data.eTag);
      assert.match(uuidSet.timetoken, /^\d{17}$/);
      // The same again changes nothing: no event (the next one comes first).
      await actor.pn.objects.setUUIDMetadata({ data: { name: 'Eve' } });
      await actor.pn.objects.setChannelMetadata({ channel: ch, data: { name: 'Events' } });
      const chSet = await watcher.next('objects', (e) => e.message.type === 'channel');
      assert.equal(chSet.channel, ch);
      assert.equal(chSet.message.data.name, 'Events');
      assert.equal(watcher.events.objects.filter((e) => e.message.type === 'uuid').length, 1);

      await actor.pn.objects.setMemberships({ channels: [ch] });
      const onUuid = await watcher.next('objects', (e) => e.message.type === 'membership' && e.channel === me);
      const onChannel = await watcher.next('objects', (e) => e.message.type === 'membership' && e.channel === ch);
      for (const e of [onUuid, onChannel]) {
        assert.equal(e.message.event, 'set');
        assert.deepEqual(e.message.data.uuid, { id: me });
        assert.deepEqual(e.message.data.channel, { id: ch });
      }
      await actor.pn.objects.removeMemberships({ channels: [ch] });
      await watcher.next('objects', (e) => e.message.type === 'membership' && e.message.event === 'delete' && e.channel === ch);
      await actor.pn.objects.removeUUIDMetadata();
      const del = await watcher.next('objects', (e) => e.message.type === 'uuid' && e.message.event === 'delete');
      assert.deepEqual(del.message.data, { id: me });
      assert.equal(watcher.events.message.length, 0, 'events are not messages');
      stop(watcher);
      stop(actor);
    });
  });
}

test('App Context errors are in its shape', async () => {
  for (const [path, method, status] of [
    ['/v2/objects/demo/uuids/x/nope', 'GET', 400], ['/v2/objects/demo/things', 'GET', 400],
    ['/v2/objects/demo/uuids?limit=101', 'GET', 400], ['/v2/objects/demo/uuids?start=junk', 'GET', 400],
    ['/v2/objects/demo/uuids?sort=name:up', 'GET', 400], ['/v2/objects/demo/uuids', 'POST', 405],
  ]) {
    const res = await httpRequest(`${server.url}${path}`, { method });
    assert.equal(res.status, status, `${method} ${path}`);
    assert.equal(res.json().error.source, 'objects');
  }
  const res = await httpRequest(`${server.url}/v2/objects/demo/uuids/x`, { method: 'PATCH', body: '[1]', headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 400);
});

test('App Context survives a restart', async () => {
  const dataDir = tmpDir('rtsync-objects-');
  const first = await startServer({ config: CONFIG, dataDir });
  const [u, ch] = [name('kept'), name('keptroom')];
  let pn = sdk(first, u).pn;
  const set = await pn.objects.setUUIDMetadata({ data: { name: 'Kept' } });
  await pn.objects.setChannelMetadata({ channel: ch, data: { name: 'Kept room' } });
  await pn.objects.setMemberships({ channels: [{ id: ch, custom: { n: 1 } }] });
  assert.equal(await first.stop(), 0);
  const again = await startServer({ config: CONFIG, dataDir });
  pn = sdk(again, u).pn;
  assert.deepEqual((await pn.objects.getUUIDMetadata()).data, set.data);
  assert.equal((await pn.objects.getChannelMetadata({ channel: ch })).data.name, 'Kept room');
  const m = await pn.objects.getMemberships({ include: { customFields: true, channelFields: true } });
  assert.deepEqual(m.data.map((x) => [x.channel.name, x.custom]), [['Kept room', { n: 1 }]]);
  assert.equal(await again.stop(), 0);
});
