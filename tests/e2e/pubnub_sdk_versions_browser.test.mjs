// The web builds of pubnub@4 and pubnub@7 (npm, dist/web/pubnub.min.js; package.json aliases pubnub4 and
// pubnub7) in headless Chromium, on a page rtsync serves: publish, one subscription over several channels
// with presence (the SDK percent-encodes the comma: `a%2Ca-pnpres`), history, with no console error.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, cleanupAll, startServer, tmpDir } from '../integration/lib/server.mjs';
import { launch, watchErrors } from './lib/browser.mjs';

const VERSIONS = [['4', 'pubnub4'], ['7', 'pubnub7']];

const page = (major) => `<!doctype html>
<html><head><meta charset="utf-8"><title>pubnub@${major} on rtsync</title><link rel="icon" href="data:,"></head>
<body><p id="state">loading</p>
<script src="pubnub${major}.min.js"></script><script src="app.js"></script></body></html>
`;
// No inline script: rtsync serves pages under a strict CSP.
const APP = `'use strict';
window.app = {
  start: function (uuid, channels) {
    var pn = new PubNub({ publishKey: 'demo', subscribeKey: 'demo', uuid: uuid, origin: location.host, ssl: false });
    var rec = { pn: pn, messages: [], presence: [], status: [] };
    pn.addListener({
      message: function (m) { rec.messages.push({ channel: m.channel, message: m.message, publisher: m.publisher }); },
      presence: function (p) { rec.presence.push({ channel: p.channel, action: p.action, uuid: p.uuid }); },
      status: function (s) { rec.status.push(s.category); },
    });
    pn.subscribe({ channels: channels, withPresence: true });
    this[uuid] = rec;
  },
  publish: function (uuid, params) {
    return this[uuid].pn.publish(params).then(function (r) { return String(r.timetoken); });
  },
  history: function (uuid, channel) {
    return this[uuid].pn.history({ channel: channel, count: 10 }).then(function (h) {
      return h.messages.map(function (m) { return m.entry; });
    });
  },
};
document.getElementById('state').textContent = typeof PubNub === 'function' ? 'ready' : 'no sdk';
`;

let browser;
let server;

before(async () => {
  const webRoot = tmpDir('rtsync-pn-versions-web-');
  for (const [major, pkg] of VERSIONS) {
    fs.copyFileSync(path.join(REPO_ROOT, `node_modules/${pkg}/dist/web/pubnub.min.js`), path.join(webRoot, `pubnub${major}.min.js`));
    fs.writeFileSync(path.join(webRoot, `v${major}.html`), page(major));
  }
  fs.writeFileSync(path.join(webRoot, 'app.js'), APP);
  server = await startServer({ web: webRoot, config: '[pubnub]\nsubscribe_timeout = 5\n' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await cleanupAll();
});

async function openPage(url, name) {
  const context = await browser.newContext();
  const p = await context.newPage();
  watchErrors(p, name, { responses: true });
  await p.goto(url);
  await p.waitForFunction(() => document.getElementById('state').textContent === 'ready');
  return p;
}

const waitUntil = (p, fn, arg) => p.waitForFunction(fn, arg, { timeout: 20_000 });

for (const [major] of VERSIONS) {
  describe(`pubnub@${major} web build in Chromium, served by rtsync`, () => {
    test('two pages on two channels with presence: publish, messages, joins, history', async () => {
      const chs = [`v${major}-a-${process.pid}`, `v${major}-b-${process.pid}`];
      const a = await openPage(`${server.url}/v${major}.html`, 'A');
      const b = await openPage(`${server.url}/v${major}.html`, 'B');
      await a.evaluate((c) => window.app.start('ann', c), chs);
      await waitUntil(a, () => window.app.ann.status.includes('PNConnectedCategory'));
      await b.evaluate((c) => window.app.start('ben', c), chs);
      await waitUntil(b, () => window.app.ben.status.includes('PNConnectedCategory'));
      await waitUntil(a, (c) => c.every((ch) => window.app.ann.presence.some((p) => p.action === 'join' && p.uuid === 'ben' && p.channel === ch)), chs);

      const tt = await b.evaluate((c) => window.app.publish('ben', { channel: c[0], message: { text: 'on a' } }), chs);
      assert.match(tt, /^\d{17}$/);
      await a.evaluate((c) => window.app.publish('ann', { channel: c[1], message: 'on b' }), chs);
      await waitUntil(a, () => window.app.ann.messages.length === 2);
      await waitUntil(b, () => window.app.ben.messages.length === 2);
      const seen = await a.evaluate(() => window.app.ann.messages);
      assert.deepEqual(seen, [
        { channel: chs[0], message: { text: 'on a' }, publisher: 'ben' },
        { channel: chs[1], message: 'on b', publisher: 'ann' },
      ]);
      assert.deepEqual(await b.evaluate((c) => window.app.history('ben', c[0]), chs), [{ text: 'on a' }]);
      assert.deepEqual([...a.errors, ...b.errors], [], 'no console errors, exceptions or failed requests');
      await a.context().close();
      await b.context().close();
    });
  });
}
