// The PubNub JavaScript SDK 3.7.1 (the 2015 web build, ../shared/pubnub-sdk/pubnub-3.7.1.min.js; npm has
// none) in headless Chromium, on a page rtsync serves (--web), as a 2015-era app runs it: PUBNUB.init,
// subscribe({channel, message, connect, presence}) over subscribe v1, history read in `connect`, publish,
// here_now. Two pages chat. No console error, and no retry loop: every answer is a 200 and the long polls
// do not spin. (JSONP is tested on the wire, tests/integration/pubnub_v1.test.mjs: the SDK's own JSONP
// mode, `jsonp: true`, fails in current browsers before it sends anything, in its lookup of <head>, and
// they use CORS instead.)

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, cleanupAll, httpRequest, startServer, tmpDir } from '../integration/lib/server.mjs';
import { launch, watchErrors } from './lib/browser.mjs';

const SDK = path.resolve(REPO_ROOT, '../shared/pubnub-sdk/pubnub-3.7.1.min.js');
const SDK_FALLBACK = '/work/shared/pubnub-sdk/pubnub-3.7.1.min.js';

// No inline script: rtsync serves pages under a strict CSP (script-src 'self', connect-src 'self'). The
// SDK makes a global PUBNUB client when it loads, which asks PubNub's own servers for the time unless the
// page's <div id="pubnub"> names another origin: an app moved to rtsync names its host there (its CSP
// would block pubsub.pubnub.com, with a console error).
const index = (origin) => `<!doctype html>
<html><head><meta charset="utf-8"><title>SDK 3 on rtsync</title><link rel="icon" href="data:,"></head>
<body><p id="state">loading</p><div id="pubnub" origin="${origin}"></div>
<script src="pubnub-3.7.1.min.js"></script><script src="app.js"></script></body></html>
`;
const APP = `'use strict';
window.app = {
  start: function (uuid, channel, extra) {
    var setup = { publish_key: 'demo', subscribe_key: 'demo', uuid: uuid, origin: location.host, ssl: false };
    for (var k in (extra || {})) setup[k] = extra[k];
    var pn = PUBNUB.init(setup);
    var rec = { pn: pn, connected: 0, history: null, messages: [], presence: [], errors: [] };
    pn.subscribe({
      channel: channel,
      message: function (m, env, ch) { rec.messages.push({ m: m, ch: ch }); },
      presence: function (p) { rec.presence.push({ action: p.action, uuid: p.uuid, occupancy: p.occupancy }); },
      error: function (e) { rec.errors.push(JSON.stringify(e)); },
      connect: function () {
        rec.connected++;
        // What the 2015 apps did: load the history once connected.
        pn.history({ channel: channel, count: 100, callback: function (h) { rec.history = h[0]; } });
      },
    });
    this[uuid] = rec;
  },
  publish: function (uuid, channel, message) {
    var pn = this[uuid].pn;
    return new Promise(function (resolve) { pn.publish({ channel: channel, message: message, callback: resolve }); });
  },
  hereNow: function (uuid, channel) {
    var pn = this[uuid].pn;
    return new Promise(function (resolve) { pn.here_now({ channel: channel, callback: resolve }); });
  },
};
document.getElementById('state').textContent = window.PUBNUB && PUBNUB.init && PUBNUB.uuid ? 'ready' : 'no sdk';
`;

let browser;
let server;

before(async () => {
  const webRoot = tmpDir('rtsync-pn3-web-');
  fs.copyFileSync(fs.existsSync(SDK) ? SDK : SDK_FALLBACK, path.join(webRoot, 'pubnub-3.7.1.min.js'));
  fs.writeFileSync(path.join(webRoot, 'app.js'), APP);
  server = await startServer({ web: webRoot, config: '[pubnub]\nsubscribe_timeout = 5\n' });
  fs.writeFileSync(path.join(webRoot, 'index.html'), index(`${server.host}:${server.port}`));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await cleanupAll();
});

async function openPage(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  watchErrors(page, name, { responses: true });
  page.subscribes = 0;
  page.on('request', (req) => { if (new URL(req.url()).pathname.startsWith('/subscribe/')) page.subscribes++; });
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => document.getElementById('state').textContent === 'ready');
  return page;
}

const waitUntil = (page, fn, arg) => page.waitForFunction(fn, arg, { timeout: 20_000 });

describe('PubNub SDK 3.7.1 in Chromium, served by rtsync', () => {
  test('connect fires, history loads there, two pages chat, presence and here_now work', async () => {
    const ch = `sdk3-${process.pid}`;
    // Something in history before anyone connects.
    const old = await httpRequest(`${server.url}/publish/demo/demo/0/${ch}/0/${encodeURIComponent('{"text":"from before"}')}?uuid=node`);
    assert.equal(old.status, 200);

    const a = await openPage('A');
    await a.evaluate((c) => window.app.start('ann', c), ch);
    await waitUntil(a, () => window.app.ann.connected === 1 && window.app.ann.history !== null);
    assert.deepEqual(await a.evaluate(() => window.app.ann.history), [{ text: 'from before' }]);

    // With a presence callback SDK 3 subscribes to "CH,CH-pnpres", percent-encoded as one segment.
    const b = await openPage('B');
    await b.evaluate((c) => window.app.start('ben', c), ch);
    await waitUntil(b, () => window.app.ben.connected === 1 && window.app.ben.history !== null);
    await waitUntil(a, () => window.app.ann.presence.some((p) => p.action === 'join' && p.uuid === 'ben'));

    const sent = await a.evaluate((c) => window.app.publish('ann', c, { text: 'hi from A' }), ch);
    assert.equal(sent[0], 1);
    assert.equal(sent[1], 'Sent');
    assert.match(String(sent[2]), /^\d{17}$/);
    await waitUntil(b, () => window.app.ben.messages.some((x) => x.m.text === 'hi from A'));
    await b.evaluate((c) => window.app.publish('ben', c, { text: 'hi from B' }), ch);
    await waitUntil(a, () => window.app.ann.messages.some((x) => x.m.text === 'hi from B'));
    const seenByA = await a.evaluate(() => window.app.ann.messages);
    assert.deepEqual(seenByA.map((x) => [x.m.text, x.ch]), [['hi from A', ch], ['hi from B', ch]], 'each once, in order');

    const here = await b.evaluate((c) => window.app.hereNow('ben', c), ch);
    assert.deepEqual(here.uuids.slice().sort(), ['ann', 'ben']);
    assert.equal(here.occupancy, 2);

    // No retry loop: a handful of subscribe requests (handshake, a poll per answer), not one a second.
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(a.subscribes <= 8, `page A sent ${a.subscribes} subscribe requests`);
    assert.deepEqual(await a.evaluate(() => window.app.ann.errors), []);
    assert.deepEqual([...a.errors, ...b.errors], [], 'no console errors, exceptions or failed requests');
    await a.context().close();
    await b.context().close();
  });
});
