// Cross-site defences (issue 6, docs/security.md): the WebSocket Origin allow-list (same host by default,
// configurable), CORS for /v1/ (answers and preflights), the page headers (CSP, nosniff, Referrer-Policy)
// and the anonymous cookie's attributes (HttpOnly, SameSite=Lax, Secure with [server] cookie_secure).
// Cookie-authenticated writes from other sites (CSRF) are refused on REST and PubNub publish.
// HTTP framing (RFC 9112): request heads a proxy in front could read differently are refused and closed.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, TIMEOUT, cleanupAll, cookiePair, httpRequest, startServer, tmpDir, uidSetCookie, withTimeout } from './lib/server.mjs';
import { readSecret, signToken, upgradeStatus } from './lib/tokens.mjs';

const APP = 'https://app.example';
let plain;    // defaults: allowed_origins = [] (same host only), cookie_secure = false
let listed;   // allowed_origins = [APP], cookie_secure = true
let web;
before(async () => {
  web = tmpDir('rtsync-sec-web-');
  fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>t</title><script src="app.js"></script>\n');
  fs.writeFileSync(path.join(web, 'app.js'), 'console.log(1);\n');
  plain = await startServer({ web, config: '[namespaces.priv]\nanonymous = false\n\n[collections.notes]\n' });
  listed = await startServer({
    web, dataDir: tmpDir('rtsync-sec-http-'),
    config: `[server]\nallowed_origins = ["${APP}"]\ncookie_secure = true\n`,
  });
});
after(cleanupAll);

const preflight = (server, origin, target = '/v1/channels/x/publish') => httpRequest(`${server.url}${target}`, {
  method: 'OPTIONS',
  headers: {
    ...(origin ? { origin } : {}),
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'content-type, authorization',
  },
});

describe('WebSocket Origin', () => {
  test('default (same host only): a foreign Origin is refused with 403, the own host and no Origin are accepted', async () => {
    for (const origin of ['http://evil.example', `http://127.0.0.1:${plain.port + 1}`, 'null', 'http://127.0.0.1']) {
      const res = await upgradeStatus(plain.port, { headers: { origin } });
      assert.equal(res.status, 403, `Origin ${origin}: ${res.statusLine}`);
      await assert.rejects(Client.connect(plain.wsUrl, { headers: { origin } }), /HTTP 403/);
    }
    assert.equal((await upgradeStatus(plain.port, { headers: { origin: `http://127.0.0.1:${plain.port}` } })).status, 101);
    assert.equal((await upgradeStatus(plain.port)).status, 101, 'no Origin: not a browser');
  });

  test('allowed_origins: exactly the listed origins, not the own host', async () => {
    assert.equal((await upgradeStatus(listed.port, { headers: { origin: APP } })).status, 101);
    const c = await Client.connect(listed.wsUrl, { headers: { origin: APP } });
    await c.call('ping');
    await c.close();
    for (const origin of ['http://app.example', 'https://app.example.evil', 'https://evil.example', listed.url]) {
      assert.equal((await upgradeStatus(listed.port, { headers: { origin } })).status, 403, origin);
    }
  });

  test('a refused upgrade carries no session: a valid token does not bypass the Origin check', async () => {
    const token = signToken({ sub: 'victim' }, readSecret(listed.dataDir));
    const res = await upgradeStatus(listed.port, { path: `/v1/ws?token=${token}`, headers: { origin: 'https://evil.example' } });
    assert.equal(res.status, 403);
  });
});

describe('CORS on /v1/', () => {
  test('preflight from a foreign origin: 403 and no Access-Control-Allow-Origin', async () => {
    for (const [server, origin] of [[plain, 'http://evil.example'], [listed, 'https://evil.example'], [listed, 'null']]) {
      const res = await preflight(server, origin);
      assert.equal(res.status, 403, `${origin}: ${res.status}`);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.equal(res.headers['access-control-allow-methods'], undefined);
    }
    assert.equal((await preflight(listed, null)).status, 403, 'a preflight without Origin');
  });

  test('preflight from an allowed origin: 204 with the origin, Vary, methods and headers', async () => {
    for (const [server, origin] of [[listed, APP], [plain, plain.url]]) {
      const res = await preflight(server, origin, '/v1/collections/todos/x');
      assert.equal(res.status, 204, `${origin}: ${res.status} ${res.body}`);
      assert.equal(res.headers['access-control-allow-origin'], origin);
      assert.match(res.headers.vary ?? '', /\bOrigin\b/);
      assert.equal(res.headers['access-control-allow-credentials'], 'true');
      assert.match(res.headers['access-control-allow-methods'] ?? '', /\bPOST\b.*\bDELETE\b|\bDELETE\b.*\bPOST\b/);
      assert.match(res.headers['access-control-allow-headers'] ?? '', /Authorization/i);
      assert.match(res.headers['access-control-allow-headers'] ?? '', /Content-Type/i);
      assert.notEqual(res.headers['access-control-allow-origin'], '*', 'credentials are never allowed for any origin');
    }
  });

  test('answers carry CORS headers for allowed origins only', async () => {
    const ok = await httpRequest(`${listed.url}/v1/channels/c/history`, { headers: { origin: APP } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['access-control-allow-origin'], APP);
    assert.match(ok.headers.vary ?? '', /\bOrigin\b/);
    assert.match(ok.headers['access-control-expose-headers'] ?? '', /ETag/);
    const foreign = await httpRequest(`${listed.url}/v1/channels/c/history`, { headers: { origin: 'https://evil.example' } });
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);
    assert.equal(foreign.headers['access-control-allow-credentials'], undefined);
    // Errors too: an allowed page can read why it was refused, a foreign one cannot.
    const denied = await httpRequest(`${plain.url}/v1/channels/priv:x/publish`, { method: 'POST', body: '1', headers: { origin: plain.url } });
    assert.equal(denied.status, 403);
    assert.equal(denied.headers['access-control-allow-origin'], plain.url);
    const badToken = await httpRequest(`${listed.url}/v1/channels/c/history`, { headers: { origin: APP, authorization: 'Bearer x.y.z' } });
    assert.equal(badToken.status, 401);
    assert.equal(badToken.headers['access-control-allow-origin'], APP);
  });

  test('static files and health checks get no CORS headers', async () => {
    for (const p of ['/', '/app.js', '/healthz']) {
      const res = await httpRequest(`${listed.url}${p}`, { headers: { origin: APP } });
      assert.equal(res.status, 200, p);
      assert.equal(res.headers['access-control-allow-origin'], undefined, p);
    }
  });
});

describe('page headers', () => {
  test('the index page has a strict CSP, nosniff and a Referrer-Policy (GET and HEAD)', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await httpRequest(`${plain.url}/`, { method });
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'], /^text\/html/);
      const csp = res.headers['content-security-policy'] ?? '';
      const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map((d) => [d[0], d.slice(1)]));
      assert.deepEqual(directives['default-src'], ["'self'"], csp);
      assert.deepEqual(directives['script-src'], ["'self'"], 'only the server\'s own scripts, no inline or eval');
      assert.deepEqual(directives['object-src'], ["'none'"]);
      assert.deepEqual(directives['frame-ancestors'], ["'none'"], 'the page cannot be framed');
      assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval') && !/\s\*(\s|;|$)/.test(csp), csp);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(res.headers['referrer-policy'] ?? '', /^(no-referrer|same-origin|strict-origin|strict-origin-when-cross-origin)$/);
    }
  });

  test('other files get nosniff and the Referrer-Policy too', async () => {
    for (const p of ['/app.js', '/nope.html']) {
      const res = await httpRequest(`${plain.url}${p}`);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', p);
      assert.ok(res.headers['referrer-policy'], p);
    }
  });
});

describe('cookies', () => {
  test('the anonymous cookie is HttpOnly, SameSite=Lax, Path=/ and not Secure by default', async () => {
    const c = uidSetCookie(await httpRequest(`${plain.url}/`));
    assert.ok(c, 'a cookie is set');
    const attrs = c.split(';').slice(1).map((a) => a.trim().toLowerCase());
    assert.ok(attrs.includes('httponly'), c);
    assert.ok(attrs.includes('samesite=lax'), c);
    assert.ok(attrs.includes('path=/'), c);
    assert.ok(!attrs.includes('secure'), c);
  });

  test('cookie_secure = true adds Secure, on pages, API answers and the WebSocket upgrade', async () => {
    const pages = uidSetCookie(await httpRequest(`${listed.url}/`));
    const api = uidSetCookie(await httpRequest(`${listed.url}/v1/channels/c/history`));
    const up = await upgradeStatus(listed.port);
    assert.equal(up.status, 101);
    const upgrade = up.headers['set-cookie'];
    for (const [what, c] of [['page', pages], ['api', api], ['upgrade', upgrade]]) {
      assert.ok(c, `${what}: a cookie is set`);
      const attrs = c.split(';').slice(1).map((a) => a.trim().toLowerCase());
      assert.ok(attrs.includes('secure'), `${what}: ${c}`);
      assert.ok(attrs.includes('httponly') && attrs.includes('samesite=lax'), `${what}: ${c}`);
    }
  });
});

// Writes `bytes` on a fresh connection and collects everything the server sends until it closes the
// connection, or until `quiet` ms pass without data while it stays open. Resolves {text, closed}.
function exchange(port, bytes, { quiet = 1500 } = {}) {
  return withTimeout(new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let timer;
    const idle = () => { clearTimeout(timer); timer = setTimeout(() => { socket.destroy(); resolve({ text, closed: false }); }, quiet); };
    socket.on('data', (d) => { text += d.toString('latin1'); idle(); });
    socket.on('end', () => { clearTimeout(timer); socket.destroy(); resolve({ text, closed: true }); });
    socket.on('error', () => {});
    socket.on('connect', () => { socket.write(bytes); idle(); });
  }), TIMEOUT, 'raw exchange timed out');
}

const statuses = (text) => [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));

describe('cross-site writes with the cookie (CSRF)', () => {
  let cookie;
  before(async () => { cookie = cookiePair(uidSetCookie(await httpRequest(`${plain.url}/`))); });
  const post = (server, target, headers, body = '{"x":1}') =>
    httpRequest(`${server.url}${target}`, { method: 'POST', headers: { 'content-type': 'text/plain', ...headers }, body });
  const pubs = async (server, ch) => (await httpRequest(`${server.url}/v1/channels/${ch}/history`)).json().pubs;

  test('a text/plain POST from another origin with the cookie is refused (403), nothing is written', async () => {
    for (const headers of [{ origin: 'http://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }]) {
      const res = await post(plain, '/v1/channels/csrf/publish', { cookie, ...headers });
      assert.equal(res.status, 403, `${JSON.stringify(headers)}: ${res.body}`);
      assert.equal(res.json().error.code, 'permission_denied');
      const doc = await post(plain, '/v1/collections/notes', { cookie, ...headers });
      assert.equal(doc.status, 403, doc.body);
    }
    assert.deepEqual(await pubs(plain, 'csrf'), []);
    assert.deepEqual((await httpRequest(`${plain.url}/v1/collections/notes`)).json(), []);
  });

  test('PUT, PATCH and DELETE are writes too', async () => {
    const created = await post(plain, '/v1/collections/notes', { cookie, origin: plain.url });
    assert.equal(created.status, 201, created.body);
    const id = created.json().id;
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const res = await httpRequest(`${plain.url}/v1/collections/notes/${id}`, {
        method, headers: { cookie, origin: 'http://evil.example', 'content-type': 'text/plain' }, body: '{"x":2}',
      });
      assert.equal(res.status, 403, `${method}: ${res.body}`);
    }
    assert.equal((await httpRequest(`${plain.url}/v1/collections/notes/${id}`)).json().x, 1);
  });

  test('the same writes pass from the own origin, an allowed origin, with a token, or without the cookie', async () => {
    for (const headers of [{ cookie, origin: plain.url }, { cookie, 'sec-fetch-site': 'same-origin' }, { cookie },
                           { origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }]) {
      const res = await post(plain, '/v1/channels/csrf-ok/publish', headers);
      assert.equal(res.status, 200, `${JSON.stringify(headers)}: ${res.body}`);
    }
    const token = signToken({ sub: 'alice' }, readSecret(plain.dataDir));
    const bearer = await post(plain, '/v1/channels/csrf-ok/publish', { cookie, origin: 'http://evil.example', authorization: `Bearer ${token}` });
    assert.equal(bearer.status, 200, 'a token is not sent by the browser on its own');
    const listedCookie = cookiePair(uidSetCookie(await httpRequest(`${listed.url}/`)));
    assert.equal((await post(listed, '/v1/channels/csrf-ok/publish', { cookie: listedCookie, origin: APP })).status, 200);
    assert.equal((await post(listed, '/v1/channels/csrf-ok/publish', { cookie: listedCookie, origin: listed.url })).status, 403,
      'with allowed_origins set, the own host is not implied');
    assert.equal((await pubs(plain, 'csrf-ok')).length, 6);
  });

  test('reads with the cookie stay allowed from anywhere (CORS decides who may see the answer)', async () => {
    const res = await httpRequest(`${plain.url}/v1/channels/csrf/history`, { headers: { cookie, origin: 'http://evil.example' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });

  test('a PubNub GET publish or signal with the cookie from another site is refused [0,"Forbidden"]', async () => {
    const msg = encodeURIComponent(JSON.stringify({ t: 'csrf' }));
    for (const kind of ['publish', 'signal']) {
      const target = `/${kind}/demo/demo/0/pn-csrf/0/${msg}?uuid=u1`;
      for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { origin: 'http://evil.example' }]) {
        const res = await httpRequest(`${plain.url}${target}`, { headers: { cookie, ...headers } });
        assert.equal(res.status, 403, `${kind} ${JSON.stringify(headers)}: ${res.body}`);
        assert.deepEqual(res.json(), [0, 'Forbidden']);
        assert.equal(res.headers['access-control-allow-origin'], '*');
      }
      // The SDK sends no cookies (credentials: omit): from any origin it is anonymous, and accepted.
      const sdk = await httpRequest(`${plain.url}${target}`, { headers: { origin: 'http://elsewhere.example' } });
      assert.equal(sdk.status, 200, sdk.body);
      const same = await httpRequest(`${plain.url}${target}`, { headers: { cookie, 'sec-fetch-site': 'same-origin' } });
      assert.equal(same.status, 200, same.body);
    }
    const post = await httpRequest(`${plain.url}/publish/demo/demo/0/pn-csrf/0?uuid=u1`, {
      method: 'POST', headers: { cookie, origin: 'http://evil.example', 'content-type': 'text/plain' }, body: '"x"',
    });
    assert.equal(post.status, 403);
    assert.equal((await pubs(plain, 'pn-csrf')).length, 2, 'only the anonymous and the same-origin publish');
  });

  test('a WebSocket upgrade without Origin but with Sec-Fetch-Site: cross-site is refused (403)', async () => {
    assert.equal((await upgradeStatus(plain.port, { headers: { 'sec-fetch-site': 'cross-site' } })).status, 403);
    assert.equal((await upgradeStatus(plain.port, { headers: { 'sec-fetch-site': 'same-origin' } })).status, 101);
  });
});

describe('HTTP framing', () => {
  const host = () => `Host: 127.0.0.1:${plain.port}\r\n`;
  const followUp = () => `GET /healthz HTTP/1.1\r\n${host()}\r\n`;

  // Each answered with `status` and the connection closed: the request that follows is never read.
  async function refused(head, status = 400) {
    const r = await exchange(plain.port, head + followUp());
    assert.deepEqual(statuses(r.text), [status], `${JSON.stringify(head)}:\n${r.text}`);
    if (r.text.startsWith('HTTP/1.1')) assert.match(r.text, /^connection: close\r$/im);
    assert.ok(r.closed, 'the server closed the connection');
    return r;
  }

  test('a Transfer-Encoding whose final coding is not chunked is 400 and closes (no smuggled request)', async () => {
    const smuggled = `GET /v1/channels/smuggled/history HTTP/1.1\r\n${host()}\r\n`;
    for (const te of ['gzip', 'chunked, gzip', 'identity', 'chunked;ext=1']) {
      await refused(`POST /v1/channels/smuggled/publish HTTP/1.1\r\n${host()}Content-Type: application/json\r\n` +
                    `Transfer-Encoding: ${te}\r\n\r\n${smuggled}`);
    }
    // Content-Length with a Transfer-Encoding: either could be the body's framing.
    await refused(`POST /v1/channels/smuggled/publish HTTP/1.1\r\n${host()}Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n"a"`);
    // Chunked after another coding is well framed but not supported: 501.
    await refused(`POST /v1/channels/smuggled/publish HTTP/1.1\r\n${host()}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 501);
    await refused(`POST /v1/channels/smuggled/publish HTTP/1.0\r\n${host()}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
    const h = await httpRequest(`${plain.url}/v1/channels/smuggled/history`);
    assert.deepEqual(h.json().pubs, [], 'nothing was published');
  });

  test('a plain chunked body is still accepted, on a connection that stays open', async () => {
    const r = await exchange(plain.port, `POST /v1/channels/chunked/publish HTTP/1.1\r\n${host()}` +
      `Transfer-Encoding: chunked\r\n\r\n3\r\n"a"\r\n0\r\n\r\n${followUp()}`);
    assert.deepEqual(statuses(r.text), [200, 200], r.text);
  });

  test('a missing Host (HTTP/1.1), a doubled or invalid Host are 400 and close', async () => {
    await refused('GET /healthz HTTP/1.1\r\n\r\n');
    await refused(`GET /healthz HTTP/1.1\r\n${host()}${host()}\r\n`);
    await refused(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n`);
    await refused('GET /healthz HTTP/1.1\r\nHost: user@127.0.0.1\r\n\r\n');
    const r = await exchange(plain.port, 'GET /healthz HTTP/1.0\r\n\r\n');
    assert.deepEqual(statuses(r.text), [200], 'HTTP/1.0 predates Host');
  });

  test('a folded header line (obs-fold) is 400 and closes', async () => {
    await refused(`GET /healthz HTTP/1.1\r\n${host()}X-Folded: a\r\n b\r\n\r\n`);
    await refused(`GET /healthz HTTP/1.1\r\nX-Folded: a\r\n\tb\r\n${host()}\r\n`);
    // The classic smuggle: a folded Transfer-Encoding that one parser joins and another does not.
    await refused(`POST /v1/channels/smuggled/publish HTTP/1.1\r\n${host()}Content-Length: 3\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n"a"`);
  });

  const upgradeHead = (version, key, extra = '') => `GET /v1/ws HTTP/${version}\r\n${host()}Upgrade: websocket\r\n` +
    `Connection: Upgrade\r\n${key === null ? '' : `Sec-WebSocket-Key: ${key}\r\n`}Sec-WebSocket-Version: 13\r\n${extra}\r\n`;

  test('an HTTP/1.0 upgrade is 400 and closes', async () => {
    await refused(upgradeHead('1.0', crypto.randomBytes(16).toString('base64')));
  });

  test('a Sec-WebSocket-Key that is not 16 bytes of base64 is 400 and closes', async () => {
    for (const key of ['x', crypto.randomBytes(15).toString('base64'), crypto.randomBytes(17).toString('base64'),
                       crypto.randomBytes(16).toString('base64url'), 'dGhlIHNhbXBsZSBub25jZR==', '!'.repeat(24)]) {
      await refused(upgradeHead('1.1', key));
    }
    const k = crypto.randomBytes(16).toString('base64');
    await refused(upgradeHead('1.1', k, `Sec-WebSocket-Key: ${k}\r\n`));
    const ok = await exchange(plain.port, upgradeHead('1.1', 'dGhlIHNhbXBsZSBub25jZQ=='), { quiet: 500 });
    assert.deepEqual(statuses(ok.text), [101], ok.text);
  });
});
