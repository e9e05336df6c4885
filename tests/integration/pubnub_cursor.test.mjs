// A PubNub subscribe cursor resumes exactly (server/pubnub_subscribe.cpp, service/pubnub_cursors.hpp):
// a client that polls in a loop with the cursor of each answer gets every message once, over channels
// whose timetokens race each other (a durable publication is stamped in the store's transaction and
// appended after the commit, an in-memory one at once), directly and through wildcards, under concurrent
// publishers. With the cursor's timetoken alone, the durable publications that land between two polls
// behind an in-memory one of a later timetoken are lost.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, cleanupAll, httpRequest, startServer, waitFor } from './lib/server.mjs';

const CONFIG = `
[limits]
http_rate = 0
http_user_rate = 0

[pubnub]
subscribe_timeout = 5

[namespaces.mem]
durable = false
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(cleanupAll);

const PER_CHANNEL = 400;

// Polls `channels` with each answer's cursor, a few milliseconds apart, until stopped; every envelope's payload, in arrival order.
function pollLoop(channels, uuid) {
  const got = [];
  let stopped = false;
  const path = `/v2/subscribe/demo/${channels.map(encodeURIComponent).join(',')}/0?uuid=${uuid}`;
  const done = (async () => {
    let res = await httpRequest(`${server.url}${path}`);
    let cursor = res.json().t.t;
    while (!stopped) {
      res = await httpRequest(`${server.url}${path}&tt=${cursor}&tr=1`);
      assert.equal(res.status, 200, res.body);
      const body = res.json();
      for (const e of body.m) got.push(e.d);
      cursor = body.t.t;
      // A client across a network polls again a round trip later: commits land meanwhile.
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  let failed = null;
  done.catch((e) => { failed = e; });
  const check = () => { if (failed) throw failed; };
  return { got, check, stop: () => { stopped = true; return done; } };
}

async function flood(channel, tag) {
  const ws = await Client.connect(server.wsUrl);
  // In small bursts, so that the channels' streams overlap for the whole run.
  for (let i = 0; i < PER_CHANNEL; i += 4) {
    const burst = [];
    for (let j = i; j < i + 4; j++) burst.push(ws.call('pub', { ch: channel, data: { tag, i: j } }));
    await Promise.all(burst);
  }
  await ws.close();
}

function assertEachOnce(got, tags) {
  for (const tag of tags) {
    const seen = got.filter((d) => d.tag === tag).map((d) => d.i);
    const missing = [...Array(PER_CHANNEL).keys()].filter((i) => !seen.includes(i));
    assert.deepEqual(missing, [], `${tag}: none missing`);
    assert.equal(seen.length, PER_CHANNEL, `${tag}: none twice`);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b), `${tag}: in order`);
  }
}

test('a poll loop over racing durable and in-memory channels, and wildcards, gets each message once', async () => {
  const p = `race${process.pid}`;
  const direct = pollLoop([`${p}-d`, `mem:${p}-m`], 'direct');
  const wild = pollLoop([`w${p}.*`, `mem:w${p}.*`], 'wild');
  await new Promise((r) => setTimeout(r, 300));
  await Promise.all([
    flood(`${p}-d`, 'd'), flood(`mem:${p}-m`, 'm'),
    flood(`w${p}.a`, 'wa'), flood(`w${p}.b`, 'wb'), flood(`mem:w${p}.c`, 'wc'),
  ]);
  await waitFor(() => {
    direct.check();
    wild.check();
    return direct.got.length >= 2 * PER_CHANNEL && wild.got.length >= 3 * PER_CHANNEL;
  },
    { message: `every message (direct ${direct.got.length}, wild ${wild.got.length}: ${JSON.stringify(tally(direct.got))} ${JSON.stringify(tally(wild.got))})`, timeout: 10_000 });
  await new Promise((r) => setTimeout(r, 300));
  await Promise.all([direct.stop(), wild.stop()]);
  assertEachOnce(direct.got, ['d', 'm']);
  assertEachOnce(wild.got, ['wa', 'wb', 'wc']);
});

test('an idle receive keeps its cursor; two uuids answered alike share the timetoken', async () => {
  const ch = `idle${process.pid}`;
  const hs = (await httpRequest(`${server.url}/v2/subscribe/demo/${ch}/0?uuid=a`)).json();
  const idle = (await httpRequest(`${server.url}/v2/subscribe/demo/${ch}/0?uuid=a&tt=${hs.t.t}&tr=1`)).json();
  assert.deepEqual(idle, { t: { t: hs.t.t, r: 1 }, m: [] });
  const ws = await Client.connect(server.wsUrl);
  await ws.call('pub', { ch, data: 'x' });
  await ws.close();
  const a = (await httpRequest(`${server.url}/v2/subscribe/demo/${ch}/0?uuid=a&tt=${hs.t.t}&tr=1`)).json();
  const b = (await httpRequest(`${server.url}/v2/subscribe/demo/${ch}/0?uuid=b&tt=${hs.t.t}&tr=1`)).json();
  assert.equal(a.t.t, a.m[0].p.t, 'the cursor is the message timetoken');
  assert.equal(b.t.t, a.t.t);
});

function tally(got) {
  const t = {};
  for (const d of got) t[d.tag] = (t[d.tag] ?? 0) + 1;
  return t;
}
