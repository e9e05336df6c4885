// The PCM's page weight, measured from what the server sends (issue 15): headless Chromium opens / with
// an empty cache through a TCP proxy that counts every byte the server sends, until the page is ready and
// live and its service worker has installed the shell. The HTTP bytes of that first load (headers and
// bodies as sent, the service worker's requests included) stay under 100 KB; the WebSocket's are counted
// apart. The script and stylesheet come as Brotli, carry their content's hash in their names and may be
// kept for a year; the page is revalidated on every load; a client that accepts only gzip gets gzip, and
// one that accepts nothing the plain bytes.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { WEB_ROOT } from '../integration/lib/server.mjs';
import { browserSuite } from './lib/browser.mjs';

const FIRST_LOAD_BUDGET = 100 * 1024;
const IMMUTABLE = 'public, max-age=31536000, immutable';
const HASHED = /^\/assets\/(app|chunk)-[A-Z0-9]{8,}\.(js|css)$/;

let browser;
let server;
browserSuite((env) => ({ server, browser } = env));

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

// A TCP proxy to `port` that counts the bytes the server sends, apart for WebSocket connections.
async function countingProxy(port) {
  const sent = { http: 0, ws: 0 };
  const sockets = new Set();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    let kind = null; // known from the connection's first request
    for (const s of [client, upstream]) { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)); }
    client.on('data', (d) => {
      kind = kind || (/^upgrade:\s*websocket/im.test(d.toString('latin1')) ? 'ws' : 'http');
      upstream.write(d);
    });
    upstream.on('data', (d) => { sent[kind || 'http'] += d.length; client.write(d); });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${proxy.address().port}`,
    sent,
    close() { for (const s of sockets) s.destroy(); proxy.close(); },
  };
}

// Loads / in a fresh context (an empty cache) through the counting proxy until the page is ready, live,
// and its service worker has installed the shell. Resolves to the bytes sent and every response the
// browser got, by whom it was asked for (the page or the worker).
async function firstLoad() {
  const proxy = await countingProxy(Number(new URL(server.url).port));
  const context = await browser.newContext();
  const responses = [];
  context.on('response', (response) => {
    const request = response.request();
    responses.push(response.allHeaders().then((headers) => ({
      path: new URL(request.url()).pathname,
      by: request.serviceWorker() ? 'worker' : 'page',
      status: response.status(),
      headers,
    })));
  });
  const page = await context.newPage();
  await page.goto(`${proxy.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('html[data-connection="online"]');
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.waitForLoadState('networkidle');
  const all = await Promise.all(responses);
  await context.close();
  proxy.close();
  return { sent: proxy.sent, responses: all };
}

test('the first load is under 100 KB on the wire, the script and stylesheet as Brotli, hashed and immutable', async (t) => {
  const { sent, responses } = await firstLoad();
  // As the browser saw them: the coding and the body's size as sent. The worker's copies of the shell
  // mostly come from the browser's HTTP cache (the hashed assets always): the proxy counts what was sent.
  for (const r of responses) {
    t.diagnostic(`${r.by.padEnd(6)} ${r.status} ${r.path.padEnd(28)} ${(r.headers['content-encoding'] || '-').padEnd(4)} ` +
      `${(r.headers['content-length'] || '-').padStart(6)} bytes of body`);
  }
  t.diagnostic(`first load: ${kb(sent.http)} sent by the server (${sent.http} bytes, headers included) in ` +
    `${responses.length} responses; then ${kb(sent.ws)} on the WebSocket`);
  assert.ok(sent.http < FIRST_LOAD_BUDGET, `first load ${sent.http} bytes, over ${FIRST_LOAD_BUDGET}`);

  const assets = responses.filter((r) => r.by === 'page' && HASHED.test(r.path));
  assert.deepEqual(assets.map((r) => path.basename(r.path).replace(/-.*\./, '.')).sort(), ['app.css', 'app.js', 'chunk.js'],
    'the page loads the hashed app-HASH.js, the chunk it imports and app-HASH.css; the QR code\'s chunk is not loaded');
  for (const r of assets) {
    assert.equal(r.status, 200, r.path);
    assert.equal(r.headers['content-encoding'], 'br', r.path);
    assert.equal(r.headers['cache-control'], IMMUTABLE, r.path);
    assert.equal(r.headers.vary, 'Accept-Encoding', r.path);
  }
  // The page and the matrix are compressed too, and the page is asked for again on every load.
  const page = responses.find((r) => r.by === 'page' && r.path === '/');
  assert.equal(page.headers['content-encoding'], 'br');
  assert.equal(page.headers['cache-control'], 'no-cache');
  const matrix = responses.find((r) => r.by === 'page' && r.path === '/pcm/matrix.json');
  assert.equal(matrix.headers['content-encoding'], 'br');
});

test('a client that accepts only gzip gets gzip, one that accepts nothing the plain bytes', async (t) => {
  const page = fs.readFileSync(path.join(WEB_ROOT, 'index.html'), 'utf8');
  const assets = [...page.matchAll(/(?:src|href)="(\/assets\/(?:app|chunk)-[^"]+)"/g)].map((m) => m[1]);
  assert.equal(assets.length, 3, 'the built page names the script, the chunk it imports and the stylesheet');
  let gzipped = 0;
  for (const p of ['/', ...assets, '/pcm/matrix.json']) {
    const file = path.join(WEB_ROOT, p === '/' ? 'index.html' : p);
    const gz = await fetch(`${server.url}${p}`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.headers.get('content-encoding'), 'gzip', p);
    assert.equal(gz.headers.get('vary'), 'Accept-Encoding', p);
    assert.equal(gz.headers.get('cache-control'), HASHED.test(p) ? IMMUTABLE : 'no-cache', p);
    gzipped += Number(gz.headers.get('content-length'));
    // Node's fetch decodes the gzip: what it reads is the file itself.
    assert.deepEqual(Buffer.from(await gz.arrayBuffer()), fs.readFileSync(file), `${p}: the same bytes once decoded`);
    const plain = await fetch(`${server.url}${p}`, { headers: { 'accept-encoding': 'identity' } });
    assert.equal(plain.headers.get('content-encoding'), null, p);
    assert.deepEqual(Buffer.from(await plain.arrayBuffer()), fs.readFileSync(file), p);
  }
  t.diagnostic(`gzip only: the page, script, stylesheet and matrix are ${kb(gzipped)} of bodies`);
  assert.ok(gzipped < FIRST_LOAD_BUDGET, `${gzipped} bytes with gzip`);
});
