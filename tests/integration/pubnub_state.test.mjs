// PubNub presence state (docs/pubnub.md, "Presence state") with the official SDK (pubnub@11), in both of
// its subscribe loops: setState and getState, state on heartbeats, state-change events on -pnpres,
// hereNow with includeState, and the state gone with its uuid on leave and on timeout.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanupAll, sleep, startServer } from './lib/server.mjs';
import { MODES, name, sdk, stop, stopAll, subscribed } from './lib/pubnub.mjs';

// A short heartbeat window, so a vanished client times out within the test.
const CONFIG = `
[pubnub]
presence_timeout = 3
subscribe_timeout = 5
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(async () => {
  stopAll();
  await cleanupAll();
});

const occupant = (here, ch, uuid) => here.channels[ch].occupants.find((o) => o.uuid === uuid);

for (const [ee, mode] of MODES) {
  describe(`presence state (${mode})`, () => {
    test('setState, state-change events, getState, hereNow with state, cleared on leave', async () => {
      const [ch, other] = [name('room'), name('room')];
      const watcher = sdk(server, name('watcher'), { ee });
      const member = sdk(server, name('member'), { ee });
      await subscribed(watcher, { channels: [ch], withPresence: true });
      await subscribed(member, { channels: [ch, other] });
      await watcher.next('presence', (e) => e.action === 'join' && e.uuid === member.userId);

      const set = await member.pn.setState({ channels: [ch], state: { mood: 'happy', n: 1 } });
      assert.deepEqual(set.state, { mood: 'happy', n: 1 });
      const change = await watcher.next('presence', (e) => e.action === 'state-change' && e.uuid === member.userId);
      assert.equal(change.channel, ch);
      assert.deepEqual(change.state, { mood: 'happy', n: 1 });
      assert.equal(change.occupancy, 2);

      // Anyone may read it; one channel answers its state, several answer a state per channel.
      const one = await watcher.pn.getState({ uuid: member.userId, channels: [ch] });
      assert.deepEqual(one.channels, { [ch]: { mood: 'happy', n: 1 } });
      const both = await watcher.pn.getState({ uuid: member.userId, channels: [ch, other] });
      assert.deepEqual(both.channels, { [ch]: { mood: 'happy', n: 1 }, [other]: {} });

      const here = await watcher.pn.hereNow({ channels: [ch], includeState: true });
      assert.deepEqual(occupant(here, ch, member.userId).state, { mood: 'happy', n: 1 });
      assert.equal(occupant(here, ch, watcher.userId).state ?? null, null, 'no state: none listed');
      const several = await watcher.pn.hereNow({ channels: [ch, other], includeState: true });
      assert.deepEqual(occupant(several, ch, member.userId).state, { mood: 'happy', n: 1 });
      const plain = await watcher.pn.hereNow({ channels: [ch] });
      assert.equal(occupant(plain, ch, member.userId).state ?? null, null, 'without includeState, no state');

      // Setting the same state again is no change; another one is.
      await member.pn.setState({ channels: [ch], state: { mood: 'happy', n: 1 } });
      await member.pn.setState({ channels: [ch], state: { mood: 'busy' } });
      await watcher.next('presence', (e) => e.action === 'state-change' && e.state?.mood === 'busy');
      assert.equal(watcher.events.presence.filter((e) => e.action === 'state-change').length, 2);

      // Leaving takes the state with the uuid.
      member.pn.unsubscribe({ channels: [ch] });
      await watcher.next('presence', (e) => e.action === 'leave' && e.uuid === member.userId);
      assert.deepEqual((await watcher.pn.getState({ uuid: member.userId, channels: [ch] })).channels, { [ch]: {} });
      assert.equal(occupant(await watcher.pn.hereNow({ channels: [ch], includeState: true }), ch, member.userId), undefined);
      stop(watcher);
      stop(member);
    });

    test('state sent with a heartbeat, and gone when its uuid times out', async () => {
      const ch = name('room');
      const watcher = sdk(server, name('watcher'), { ee });
      const ghost = sdk(server, name('ghost'), { ee });
      await subscribed(watcher, { channels: [ch], withPresence: true });
      await subscribed(ghost, { channels: [ch] });
      // withHeartbeat: the SDK sends the state as the `state` parameter of a heartbeat.
      await ghost.pn.setState({ channels: [ch], state: { typing: true }, withHeartbeat: true });
      const change = await watcher.next('presence', (e) => e.action === 'state-change' && e.uuid === ghost.userId);
      assert.deepEqual(change.state, { typing: true });
      assert.deepEqual((await watcher.pn.getState({ uuid: ghost.userId, channels: [ch] })).channels[ch], { typing: true });

      stop(ghost);  // no leave: its long poll's connection closes, and it times out after the window
      await watcher.next('presence', (e) => e.action === 'timeout' && e.uuid === ghost.userId, 15_000);
      assert.deepEqual((await watcher.pn.getState({ uuid: ghost.userId, channels: [ch] })).channels[ch], {});
      stop(watcher);
    });

    test('a malformed state is refused with the SDK error, and the state stays', async () => {
      const ch = name('room');
      const c = sdk(server, name('member'), { ee });
      await subscribed(c, { channels: [ch] });
      await c.pn.setState({ channels: [ch], state: { ok: 1 } });
      const err = await c.pn.setState({ channels: [ch], state: ['not', 'an', 'object'] }).then(
        () => assert.fail('an array was accepted as a state'), (e) => e);
      assert.equal(err.status.statusCode, 400);
      await sleep(50);
      assert.deepEqual((await c.pn.getState({ channels: [ch] })).channels[ch], { ok: 1 });
      stop(c);
    });
  });
}
