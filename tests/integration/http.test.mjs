// HTTP surface: static files with ETag/304, health endpoints, no path traversal out of the web root,
// JSON 404 for unknown API paths, the anonymous `rtsync_uid` cookie (PROTOCOL §3) and its link to the
// WebSocket identity, and the WebSocket Origin check (PROTOCOL §2, empty allow-list = same host only).

import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  Client, cleanupAll, cookiePair, httpRequest, startServer, tmpDir, uidSetCookie, WEB_ROOT,
} from './lib/server.mjs';
import { RawWs, rawHttp } from './lib/rawws.mjs';

const SECRET = `TOP-SECRET-${process.pid}-${Date.now()}`;
const INDEX = '<!doctype html>\n<html><head><title>it</title></head><body>rtsync integration</body></html>\n';

let server;
before(async () => {
  // A web root of our own, with a secret file right next to it (outside the root).
  const parent = tmpDir('rtsync-web-');
  const web = path.join(parent, 'web');
  fs.mkdirSync(path.join(web, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(web, 'index.html'), INDEX);
  fs.writeFileSync(path.join(web, 'app.js'), 'console.log("app");\n');
  fs.writeFileSync(path.join(web, 'sub', 'page.html'), '<html><body>sub page</body></html>\n');
  fs.writeFileSync(path.join(parent, 'secret.txt'), `${SECRET}\n`);
  server = await startServer({ web });
});
after(cleanupAll);

const get = (p, headers = {}) => httpRequest(`${server.url}${p}`, { headers });

describe('static files', () => {
  test('GET / serves index.html as HTML with an ETag', async () => {
    const res = await get('/');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /^text\/html/);
    assert.equal(res.body, INDEX);
    assert.ok(res.headers.etag, 'ETag header');
    const again = await get('/');
    assert.equal(again.headers.etag, res.headers.etag, 'the ETag is stable');
  });

  test('If-None-Match with the ETag -> 304 without a body; another tag -> 200', async () => {
    const { headers } = await get('/');
    const res = await get('/', { 'if-none-match': headers.etag });
    assert.equal(res.status, 304);
    assert.equal(res.body, '');
    const other = await get('/', { 'if-none-match': '"definitely-not-the-etag"' });
    assert.equal(other.status, 200);
    assert.equal(other.body, INDEX);
  });

  test('other files get their own type and ETag', async () => {
    const js = await get('/app.js');
    assert.equal(js.status, 200);
    assert.match(js.headers['content-type'] ?? '', /javascript/);
    assert.equal(js.body, 'console.log("app");\n');
    assert.ok(js.headers.etag);
    assert.notEqual(js.headers.etag, (await get('/')).headers.etag);
    const sub = await get('/sub/page.html');
    assert.equal(sub.status, 200);
    assert.equal(sub.body, '<html><body>sub page</body></html>\n');
  });

  test('a missing file is 404', async () => {
    assert.equal((await get('/nope.html')).status, 404);
  });

  test('HEAD / answers like GET without a body', async () => {
    const res = await httpRequest(`${server.url}/`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.body, '');
    assert.ok(res.headers.etag);
  });

  test('the default web root serves the app at / as HTML', async () => {
    const app = await startServer({ web: WEB_ROOT });
    const res = await httpRequest(`${app.url}/`);
    assert.equal(res.status, 200, `GET / on ${WEB_ROOT}`);
    assert.match(res.headers['content-type'] ?? '', /^text\/html/);
    assert.match(res.body, /<html/i);
    assert.ok(res.headers.etag);
    await app.stop();
  });

  test('the app\'s scripts and styles go precompressed to browsers that accept it, the same bytes once decoded', async () => {
    const app = await startServer({ web: WEB_ROOT });
    // The app's names carry their hashes (app-HASH.js): the built page says which they are.
    const page = (await httpRequest(`${app.url}/`)).body;
    const named = [...page.matchAll(/(?:src|href)="(\/assets\/app-[A-Z0-9]+\.(?:js|css))"/g)].map((m) => m[1]);
    assert.equal(named.length, 2, `the page names the app's script and stylesheet: ${named}`);
    for (const asset of [...named, '/assets/rtsync.min.js']) {
      const plain = await httpRequest(`${app.url}${asset}`);
      assert.equal(plain.status, 200, asset);
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(plain.headers.vary, 'Accept-Encoding');
      const br = await httpRequest(`${app.url}${asset}`, { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
      assert.equal(br.headers['content-encoding'], 'br', asset);
      assert.ok(br.raw.length < plain.raw.length / 2, `${asset}: ${br.raw.length} of ${plain.raw.length} bytes`);
      assert.deepEqual(zlib.brotliDecompressSync(br.raw), plain.raw);
      const gz = await httpRequest(`${app.url}${asset}`, { headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(gz.headers['content-encoding'], 'gzip', asset);
      assert.deepEqual(zlib.gunzipSync(gz.raw), plain.raw);
      assert.notEqual(gz.headers.etag, br.headers.etag);
    }
    await app.stop();
  });
});

describe('health', () => {
  for (const p of ['/healthz', '/readyz']) {
    test(`${p} is 200`, async () => {
      assert.equal((await get(p)).status, 200);
    });
  }
});

describe('path traversal', () => {
  const paths = [
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/.%2e/secret.txt',
    '/%2e./secret.txt',
    '/..%2fsecret.txt',
    '/%2e%2e%2fsecret.txt',
    '/..%2Fsecret.txt',
    '/sub/../../secret.txt',
    '/sub/%2e%2e/%2e%2e/secret.txt',
    '/sub/..%2f..%2fsecret.txt',
    '/..\\secret.txt',
    '/%5c..%5csecret.txt',
    '/..%5csecret.txt',
    '/%252e%252e/secret.txt',
    '/../../../../../../../../etc/passwd',
    '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '//etc/passwd',
    '/%2fetc%2fpasswd',
    '/sub/..%00/secret.txt',
    '/secret.txt',
  ];
  for (const p of paths) {
    test(`GET ${p} is refused`, async () => {
      const res = await rawHttp(server.port, `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      assert.ok(res.status === 400 || res.status === 404, `status ${res.statusLine}`);
      assert.ok(!res.body.includes(SECRET), 'the secret next to the web root leaked');
      assert.ok(!/root:.*:0:0:/.test(res.body), '/etc/passwd leaked');
    });
  }

  test('the server still works after the traversal attempts', async () => {
    assert.equal((await get('/')).body, INDEX);
  });
});

describe('API errors', () => {
  test('an unknown API path is 404 with a JSON error', async () => {
    for (const p of ['/v1/nope', '/v1/channels', '/v1/channels/x/nothing', '/v1/']) {
      const res = await get(p);
      assert.equal(res.status, 404, `${p}: ${res.status} ${res.body}`);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/, p);
      const body = res.json();
      assert.equal(body.error?.code, 'not_found', `${p}: ${res.body}`);
      assert.equal(typeof body.error?.message, 'string', p);
    }
  });
});

describe('the rtsync_uid cookie', () => {
  test('is set, HttpOnly and SameSite=Lax, when the request has none', async () => {
    for (const p of ['/', '/healthz', '/v1/nope']) {
      const set = uidSetCookie(await get(p));
      assert.ok(set, `${p} sets rtsync_uid`);
      assert.match(set, /;\s*HttpOnly/i, `${p}: ${set}`);
      assert.match(set, /;\s*SameSite=Lax/i, `${p}: ${set}`);
      assert.match(cookiePair(set), /^rtsync_uid=\S+$/);
    }
  });

  test('every new visitor gets a different id', async () => {
    const a = cookiePair(uidSetCookie(await get('/healthz')));
    const b = cookiePair(uidSetCookie(await get('/healthz')));
    assert.notEqual(a, b);
  });

  test('is not set again when the request sends it back', async () => {
    const cookie = cookiePair(uidSetCookie(await get('/healthz')));
    for (const p of ['/', '/healthz', '/v1/nope']) {
      const res = await get(p, { cookie });
      assert.equal(uidSetCookie(res), undefined, `${p} with the cookie: ${res.headers['set-cookie']}`);
    }
    // Among other cookies too.
    const res = await get('/healthz', { cookie: `theme=dark; ${cookie}; lang=en` });
    assert.equal(uidSetCookie(res), undefined);
  });

  test('a forged cookie is replaced', async () => {
    for (const forged of ['rtsync_uid=mallory', 'rtsync_uid=mallory.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']) {
      const set = uidSetCookie(await get('/healthz', { cookie: forged }));
      assert.ok(set, `${forged} is replaced`);
      assert.ok(!cookiePair(set).includes('mallory'), set);
    }
  });
});

describe('WebSocket identity', () => {
  test('hello.user is the cookie\'s user when the cookie is sent on the upgrade', async () => {
    const cookie = cookiePair(uidSetCookie(await get('/healthz')));
    const a = await Client.connect(server.wsUrl, { headers: { cookie } });
    const b = await Client.connect(server.wsUrl, { headers: { cookie } });
    assert.equal(a.hello.user, b.hello.user, 'the same cookie is the same user');
    assert.notEqual(a.hello.session, b.hello.session);
    assert.ok(cookie.slice('rtsync_uid='.length).includes(a.hello.user),
              `cookie ${cookie} names user ${a.hello.user}`);
    await Promise.all([a.close(), b.close()]);
  });

  test('without a cookie each connection is a different user', async () => {
    const a = await Client.connect(server.wsUrl);
    const b = await Client.connect(server.wsUrl);
    assert.notEqual(a.hello.user, b.hello.user);
    await Promise.all([a.close(), b.close()]);
  });

  test('a forged cookie does not choose the user', async () => {
    const c = await Client.connect(server.wsUrl, { headers: { cookie: 'rtsync_uid=mallory.AAAA' } });
    assert.notEqual(c.hello.user, 'mallory');
    assert.ok(!c.hello.user.includes('mallory'));
    await c.close();
  });

  test('the upgrade response sets the cookie of the connection\'s user', async () => {
    const raw = await RawWs.connect(server.port);
    const hello = await raw.readHello();
    const line = /^set-cookie:\s*(rtsync_uid=.*)$/im.exec(raw.head)?.[1];
    assert.ok(line, `101 response sets rtsync_uid:\n${raw.head}`);
    const cookie = cookiePair(line);
    raw.destroy();
    const again = await Client.connect(server.wsUrl, { headers: { cookie } });
    assert.equal(again.hello.user, hello.user, 'reconnecting with that cookie keeps the identity');
    await again.close();
  });
});

describe('WebSocket Origin', () => {
  test('a foreign Origin is refused when allowed_origins is empty', async () => {
    await assert.rejects(
      Client.connect(server.wsUrl, { headers: { origin: 'http://evil.example.com' } }),
      /upgrade refused|closed|Unexpected|socket hang up/,
    );
  });

  test('the server\'s own origin is accepted', async () => {
    const c = await Client.connect(server.wsUrl, { headers: { origin: server.url } });
    assert.equal(c.hello.op, 'hello');
    await c.close();
  });
});
