// PubNub channel groups (docs/pubnub.md, "Channel groups") with the official SDK (pubnub@11), in both of
// its subscribe loops: the channel registry (add, list, remove, list groups, delete), subscribing to a
// group (every channel's messages with `subscription` the group, a channel added while subscribed),
// a group's presence (`GROUP-pnpres`), and presence through a group (join, hereNow, leave).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanupAll, httpRequest, startServer, waitFor } from './lib/server.mjs';
import { MODES, name, sdk, stop, stopAll, subscribed } from './lib/pubnub.mjs';

const CONFIG = `
[pubnub]
presence_timeout = 5
subscribe_timeout = 20
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(async () => {
  stopAll();
  await cleanupAll();
});

for (const [ee, mode] of MODES) {
  describe(`channel groups (${mode})`, () => {
    test('add, list, remove channels; list groups; delete a group', async () => {
      const [g, other] = [name('g'), name('g')];
      const [a, b, c] = [name('ch'), name('ch'), `x.${name('ch')}`];
      const pn = sdk(server, name('admin'), { ee }).pn;
      await pn.channelGroups.addChannels({ channelGroup: g, channels: [b, a] });
      await pn.channelGroups.addChannels({ channelGroup: g, channels: [c, a] });
      await pn.channelGroups.addChannels({ channelGroup: other, channels: [a] });
      assert.deepEqual((await pn.channelGroups.listChannels({ channelGroup: g })).channels, [a, b, c].sort());
      const groups = (await pn.channelGroups.listGroups()).groups;
      assert.ok(groups.includes(g) && groups.includes(other), `${groups} lists both groups`);
      await pn.channelGroups.removeChannels({ channelGroup: g, channels: [a, 'never-there'] });
      assert.deepEqual((await pn.channelGroups.listChannels({ channelGroup: g })).channels, [b, c].sort());
      await pn.channelGroups.deleteGroup({ channelGroup: g });
      assert.deepEqual((await pn.channelGroups.listChannels({ channelGroup: g })).channels, []);
      assert.ok(!(await pn.channelGroups.listGroups()).groups.includes(g));
      assert.deepEqual((await pn.channelGroups.listChannels({ channelGroup: other })).channels, [a]);

      const bad = await pn.channelGroups.addChannels({ channelGroup: g, channels: ['bad name'] }).then(
        () => assert.fail('an invalid channel name was added'), (e) => e);
      assert.equal(bad.status.statusCode, 400);
    });

    test('a subscription to a group gets every channel of it, one added meanwhile too', async () => {
      const g = name('g');
      const [a, b, late] = [name('ch'), name('ch'), name('ch')];
      const reader = sdk(server, name('reader'), { ee });
      const writer = sdk(server, name('writer'), { ee });
      await writer.pn.channelGroups.addChannels({ channelGroup: g, channels: [a, b] });
      await subscribed(reader, { channelGroups: [g] });
      await writer.pn.publish({ channel: a, message: 'to a' });
      await writer.pn.publish({ channel: b, message: 'to b' });
      const ma = await reader.next('message', (e) => e.channel === a);
      assert.equal(ma.message, 'to a');
      assert.equal(ma.subscription, g, 'the group is the subscription (envelope b)');
      assert.equal((await reader.next('message', (e) => e.channel === b)).subscription, g);

      // Added while the reader's long poll waits: it polls again with the group's new channels.
      await writer.pn.channelGroups.addChannels({ channelGroup: g, channels: [late] });
      await waitFor(async () => {
        await writer.pn.publish({ channel: late, message: 'to late' });
        return reader.events.message.some((e) => e.channel === late);
      }, { timeout: 10_000, interval: 300, message: 'a message on the channel added to the group' });
      // Removed: no more of it.
      await writer.pn.channelGroups.removeChannels({ channelGroup: g, channels: [a] });
      await writer.pn.publish({ channel: b, message: 'b again' });
      await reader.next('message', (e) => e.message === 'b again');
      await writer.pn.publish({ channel: a, message: 'a after removal' });
      await writer.pn.publish({ channel: b, message: 'b last' });
      await reader.next('message', (e) => e.message === 'b last');
      assert.ok(!reader.events.message.some((e) => e.message === 'a after removal'), 'a removed channel is not heard');
      stop(reader);
      stop(writer);
    });

    test("a group's presence, and presence through a group", async () => {
      const g = name('g');
      const ch = name('room');
      const watcher = sdk(server, name('watcher'), { ee });
      const member = sdk(server, name('member'), { ee });
      await watcher.pn.channelGroups.addChannels({ channelGroup: g, channels: [ch] });
      await subscribed(watcher, { channelGroups: [g], withPresence: true });
      await subscribed(member, { channelGroups: [g] });
      const join = await watcher.next('presence', (e) => e.action === 'join' && e.uuid === member.userId);
      assert.equal(join.channel, ch);
      assert.equal(join.subscription, `${g}-pnpres`);
      const here = await watcher.pn.hereNow({ channelGroups: [g] });
      assert.deepEqual(here.channels[ch].occupants.map((o) => o.uuid).sort(), [member.userId, watcher.userId].sort());
      assert.deepEqual((await watcher.pn.whereNow({ uuid: member.userId })).channels, [ch]);

      member.pn.unsubscribe({ channelGroups: [g] });
      const leave = await watcher.next('presence', (e) => e.action === 'leave' && e.uuid === member.userId);
      assert.equal(leave.subscription, `${g}-pnpres`);
      stop(watcher);
      stop(member);
    });
  });
}

test('registry errors are JSON in PubNub\'s shape', async () => {
  const base = `${server.url}/v1/channel-registration/sub-key/demo/channel-group`;
  for (const [path, status] of [[`/bad%20group?add=a`, 400], [`/g-pnpres?add=a`, 400], [`/g?add=a-pnpres`, 400]]) {
    const res = await httpRequest(`${base}${path}`);
    assert.equal(res.status, status, path);
    assert.equal(res.json().error, true);
    assert.equal(res.json().service, 'channel-registry');
  }
});
