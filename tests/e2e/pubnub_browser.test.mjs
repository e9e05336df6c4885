// The PubNub SDK's web build (node_modules/pubnub/dist/web/pubnub.min.js, pubnub@11.0.2) in headless
// Chromium against rtsync: fetch transport, browser headers, the deflated POST publish (CompressionStream),
// the page's CSP. First served by rtsync itself, like a PubNub app moved onto rtsync; then from another
// origin, which needs rtsync's CORS answers (simple GETs, a preflight for the POST).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, REPO_ROOT, cleanupAll, startServer, tmpDir } from '../integration/lib/server.mjs';
import { launch, watchErrors } from './lib/browser.mjs';

const SDK = path.join(REPO_ROOT, 'node_modules/pubnub/dist/web/pubnub.min.js');

// The page: the SDK and a small app (no inline script: rtsync serves pages under a strict CSP). The app
// records what the SDK's listeners see and lets the test drive clients through window.app.
const INDEX = `<!doctype html>
<html><head><meta charset="utf-8"><title>PubNub on rtsync</title><link rel="icon" href="data:,"></head>
<body><p id="state">loading</p>
<script src="pubnub.min.js"></script><script src="app.js"></script></body></html>
`;
const APP = `'use strict';
window.app = {
  clients: {},
  start(userId, extra) {
    const pn = new PubNub(Object.assign({
      publishKey: 'demo', subscribeKey: 'demo', userId: userId,
      origin: window.PN_ORIGIN || location.host, ssl: false,
    }, extra || {}));
    const rec = { pn: pn, messages: [], presence: [], status: [] };
    pn.addListener({
      message: function (m) { rec.messages.push({ channel: m.channel, message: m.message, publisher: m.publisher, timetoken: m.timetoken }); },
      presence: function (p) { rec.presence.push({ channel: p.channel, action: p.action, uuid: p.uuid, occupancy: p.occupancy }); },
      status: function (s) { rec.status.push(s.category); },
    });
    this.clients[userId] = rec;
  },
  subscribe(userId, params) { this.clients[userId].pn.subscribe(params); },
  publish(userId, params) {
    return this.clients[userId].pn.publish(params).then(function (r) { return { timetoken: r.timetoken }; },
      function (e) { return { error: e.status ? { statusCode: e.status.statusCode, errorData: e.status.errorData } : String(e) }; });
  },
  history(userId, params) {
    return this.clients[userId].pn.history(params).then(function (h) { return h.messages.map(function (m) { return m.entry; }); });
  },
  hereNow(userId, channel) {
    return this.clients[userId].pn.hereNow({ channels: [channel] }).then(function (h) {
      return h.channels[channel].occupants.map(function (o) { return o.uuid; }).sort();
    });
  },
};
document.getElementById('state').textContent = typeof PubNub === 'function' ? 'ready' : 'no sdk';
`;

let browser;
let server;
let webRoot;

before(async () => {
  webRoot = tmpDir('rtsync-pn-web-');
  fs.copyFileSync(SDK, path.join(webRoot, 'pubnub.min.js'));
  fs.writeFileSync(path.join(webRoot, 'index.html'), INDEX);
  fs.writeFileSync(path.join(webRoot, 'app.js'), APP);
  server = await startServer({ web: webRoot });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await cleanupAll();
});

async function openPage(url, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  watchErrors(page, name);
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('state').textContent === 'ready');
  return page;
}

const waitUntil = (page, fn, arg) => page.waitForFunction(fn, arg, { timeout: 20_000 });
const connected = (page, id) => waitUntil(page, (u) => window.app.clients[u].status.includes('PNConnectedCategory'), id);

describe('the SDK\'s web build, served by rtsync', () => {
  test('two browsers and a native client chat on one channel, with presence and history', async () => {
    const ch = `browser-${process.pid}`;
    const a = await openPage(`${server.url}/`, 'A');
    const b = await openPage(`${server.url}/`, 'B');
    await a.evaluate((c) => { window.app.start('ann'); window.app.subscribe('ann', { channels: [c], withPresence: true }); }, ch);
    await connected(a, 'ann');
    await b.evaluate((c) => { window.app.start('ben', { enableEventEngine: false }); window.app.subscribe('ben', { channels: [c] }); }, ch);
    await connected(b, 'ben');
    await waitUntil(a, () => window.app.clients.ann.presence.some((p) => p.action === 'join' && p.uuid === 'ben'));

    // B publishes with GET; A with POST, its body deflated by the browser's CompressionStream.
    const fromB = await b.evaluate((c) => window.app.publish('ben', { channel: c, message: { text: 'hi from B ✓' } }), ch);
    assert.match(fromB.timetoken, /^\d{17}$/);
    const fromA = await a.evaluate((c) => window.app.publish('ann', { channel: c, message: { text: 'hi from A 🎉' }, sendByPost: true }), ch);
    assert.match(fromA.timetoken, /^\d{17}$/, JSON.stringify(fromA));
    await waitUntil(a, () => window.app.clients.ann.messages.length === 2);
    await waitUntil(b, () => window.app.clients.ben.messages.length === 2);
    const seenByB = await b.evaluate(() => window.app.clients.ben.messages);
    assert.deepEqual(seenByB.map((m) => [m.message.text, m.publisher]), [['hi from B ✓', 'ben'], ['hi from A 🎉', 'ann']]);

    // A native WebSocket client in the same channel, both ways.
    const ws = await Client.connect(server.wsUrl);
    await ws.call('sub', { ch });
    await ws.call('pub', { ch, data: { text: 'hi from native' } });
    await waitUntil(a, () => window.app.clients.ann.messages.some((m) => m.message.text === 'hi from native'));
    await b.evaluate((c) => window.app.publish('ben', { channel: c, message: { text: 'to native' } }), ch);
    assert.deepEqual((await ws.next((o) => o.op === 'msg' && o.data.text === 'to native')).data, { text: 'to native' });

    assert.deepEqual(await a.evaluate((c) => window.app.hereNow('ann', c), ch), [ws.hello.user, 'ann', 'ben'].sort());
    assert.deepEqual(await b.evaluate((c) => window.app.history('ben', { channel: c, count: 1 }), ch), [{ text: 'to native' }]);

    // Too large: the SDK's error, also in the browser.
    const big = await a.evaluate((c) => window.app.publish('ann', { channel: c, message: 'z'.repeat(33 * 1024) }), ch);
    assert.deepEqual(big, { error: { statusCode: 413, errorData: 'Request Entity Too Large' } });

    await b.evaluate((c) => window.app.clients.ben.pn.unsubscribe({ channels: [c] }), ch);
    await waitUntil(a, () => window.app.clients.ann.presence.some((p) => p.action === 'leave' && p.uuid === 'ben'));
    await ws.close();
    // 413 is an expected error answer; the browser logs failed requests as console errors.
    const errors = [...a.errors, ...b.errors].filter((e) => !/status of 413/.test(e));
    assert.deepEqual(errors, [], 'no console errors or exceptions (CSP included)');
    await a.context().close();
    await b.context().close();
  });
});

describe('the SDK\'s web build on another origin (CORS)', () => {
  let other;
  before(async () => {
    // A plain static server on another port: the page's origin is not rtsync's.
    other = http.createServer((req, res) => {
      const file = req.url === '/' ? 'index.html' : req.url.slice(1);
      if (file === 'origin.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        return res.end(`window.PN_ORIGIN = ${JSON.stringify(`${server.host}:${server.port}`)};`);
      }
      const full = path.join(webRoot, path.basename(file));
      if (!fs.existsSync(full)) { res.writeHead(404); return res.end(); }
      res.writeHead(200, { 'Content-Type': file.endsWith('.js') ? 'text/javascript' : 'text/html' });
      let body = fs.readFileSync(full, 'utf8');
      if (file === 'index.html') body = body.replace('<script src="app.js">', '<script src="origin.js"></script><script src="app.js">');
      res.end(body);
    });
    await new Promise((resolve) => other.listen(0, '127.0.0.1', resolve));
  });
  after(() => new Promise((resolve) => other.close(resolve)));

  test('subscribe, GET and POST publish and history work across origins', async () => {
    const ch = `cors-${process.pid}`;
    const page = await openPage(`http://localhost:${other.address().port}/`, 'C');
    assert.notEqual(new URL(page.url()).origin, server.url);
    await page.evaluate((c) => { window.app.start('cat'); window.app.subscribe('cat', { channels: [c] }); }, ch);
    await connected(page, 'cat');
    const get = await page.evaluate((c) => window.app.publish('cat', { channel: c, message: 'by get' }), ch);
    const post = await page.evaluate((c) => window.app.publish('cat', { channel: c, message: 'by post', sendByPost: true }), ch);
    assert.ok(get.timetoken && post.timetoken, JSON.stringify({ get, post }));
    await waitUntil(page, () => window.app.clients.cat.messages.length === 2);
    assert.deepEqual(await page.evaluate((c) => window.app.history('cat', { channel: c }), ch), ['by get', 'by post']);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
});
