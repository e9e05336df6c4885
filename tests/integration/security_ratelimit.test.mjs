// The HTTP rate limit (docs/security.md, [limits] http_*): a token bucket per client address and one per
// user (token or cookie), 429 with Retry-After in the REST and PubNub error shapes, WebSocket upgrades not
// counted, X-Forwarded-For only from trusted proxies, idle buckets evicted, counted in /metrics. Requests
// come from several loopback addresses (127.0.0.N) to be different clients.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, cookiePair, httpRequest, sleep, startServer, uidSetCookie } from './lib/server.mjs';
import { readSecret, signToken } from './lib/tokens.mjs';

const LIMITS = '[limits]\nhttp_rate = 2\nhttp_burst = 5\nhttp_user_rate = 1\nhttp_user_burst = 3\n';
let limited;  // X-Forwarded-For not trusted
let proxied;  // trusted_proxies = ["127.0.0.1"]
before(async () => {
  limited = await startServer({ config: LIMITS });
  proxied = await startServer({ config: `[server]\ntrusted_proxies = ["127.0.0.1"]\n${LIMITS}` });
});
after(cleanupAll);

let nextAddress = 2;
const freshAddress = () => `127.0.0.${nextAddress++}`;
const get = (server, target, options = {}) => httpRequest(`${server.url}${target}`, options);

// Sends `n` requests one after the other; resolves with their statuses.
async function statuses(n, fn) {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await fn(i)).status);
  return out;
}

async function metric(server, name) {
  const text = (await get(server, '/metrics', { localAddress: freshAddress() })).body;
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
}

describe('per client address', () => {
  test('the burst passes, then 429 with Retry-After and a JSON error; other addresses are not affected', async () => {
    const localAddress = freshAddress();
    const origin = limited.url;
    assert.deepEqual(await statuses(5, () => get(limited, '/v1/channels/rl/history', { localAddress })), [200, 200, 200, 200, 200]);
    const res = await get(limited, '/v1/channels/rl/history', { localAddress, headers: { origin } });
    assert.equal(res.status, 429);
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(res.json().error.code, 'rate_limited');
    assert.equal(res.headers['access-control-allow-origin'], origin, 'an allowed page can read why');
    for (const target of ['/', '/healthz', '/v1/collections/none']) {
      assert.equal((await get(limited, target, { localAddress })).status, 429, `${target}: every request counts`);
    }
    assert.equal((await get(limited, '/v1/channels/rl/history', { localAddress: freshAddress() })).status, 200);
    await sleep(1000 * Number(res.headers['retry-after']));
    assert.equal((await get(limited, '/v1/channels/rl/history', { localAddress })).status, 200, 'after Retry-After');
  });

  test('WebSocket upgrades are not counted (a connection has its own command bucket)', async () => {
    const localAddress = freshAddress();
    await statuses(6, () => get(limited, '/healthz', { localAddress }));
    assert.equal((await get(limited, '/healthz', { localAddress })).status, 429);
    const clients = [];
    for (let i = 0; i < 8; i++) clients.push(await Client.connect(limited.wsUrl, { localAddress }));
    await clients[7].call('ping');
    await Promise.all(clients.map((c) => c.close()));
  });

  test('PubNub endpoints answer 429 in their own error shapes, with Retry-After and CORS', async () => {
    const localAddress = freshAddress();
    await statuses(5, () => get(limited, '/time/0', { localAddress }));
    const publish = await get(limited, `/publish/demo/demo/0/rl/0/${encodeURIComponent('"x"')}?uuid=u`, { localAddress });
    assert.equal(publish.status, 429);
    assert.deepEqual(publish.json(), [0, 'Too Many Requests']);
    assert.ok(Number(publish.headers['retry-after']) >= 1);
    assert.equal(publish.headers['access-control-allow-origin'], '*');
    const fetch = await get(limited, '/v3/history/sub-key/demo/channel/rl', { localAddress });
    assert.equal(fetch.status, 429);
    assert.deepEqual(fetch.json(), { status: 429, error: true, error_message: 'Too Many Requests', channels: {} });
    const hereNow = await get(limited, '/v2/presence/sub-key/demo/channel/rl', { localAddress });
    assert.equal(hereNow.status, 429);
    assert.deepEqual(hereNow.json(), { message: 'Too Many Requests', error: true, service: 'Balancer', status: 429 });
    assert.equal((await get(limited, '/v1/channels/rl/history')).json().pubs.length, 0, 'the refused publish did nothing');
  });
});

describe('per user', () => {
  test('a cookie user has one bucket across addresses', async () => {
    const cookie = cookiePair(uidSetCookie(await get(limited, '/v1/channels/u/history', { localAddress: freshAddress() })));
    // The request that issued the cookie was a fresh identity: not counted for the user.
    assert.deepEqual(await statuses(3, () => get(limited, '/v1/channels/u/history', { localAddress: freshAddress(), headers: { cookie } })),
      [200, 200, 200]);
    const res = await get(limited, '/v1/channels/u/history', { localAddress: freshAddress(), headers: { cookie } });
    assert.equal(res.status, 429, 'a fresh address, the same user');
    assert.equal(res.json().error.code, 'rate_limited');
    assert.equal((await get(limited, '/v1/channels/u/history', { localAddress: freshAddress() })).status, 200, 'without the cookie');
  });

  test('a token user too: Authorization: Bearer, and PubNub auth', async () => {
    const token = signToken({ sub: 'rl-bob' }, readSecret(limited.dataDir));
    const headers = { authorization: `Bearer ${token}` };
    assert.deepEqual(await statuses(3, () => get(limited, '/v1/channels/t/history', { localAddress: freshAddress(), headers })),
      [200, 200, 200]);
    assert.equal((await get(limited, '/v1/channels/t/history', { localAddress: freshAddress(), headers })).status, 429);
    const other = signToken({ sub: 'rl-carol' }, readSecret(limited.dataDir));
    const hereNow = (i) => get(limited, `/v2/presence/sub-key/demo/channel/t?uuid=u${i}&auth=${other}`, { localAddress: freshAddress() });
    assert.deepEqual(await statuses(4, hereNow), [200, 200, 200, 429]);
    const res = await hereNow(5);
    assert.deepEqual(res.json(), { message: 'Too Many Requests', error: true, service: 'Balancer', status: 429 });
    assert.ok(Number(res.headers['retry-after']) >= 1);
  });
});

describe('behind a proxy', () => {
  test('X-Forwarded-For names the client only when the peer is a trusted proxy', async () => {
    const from = (xff, server = proxied) => get(server, '/healthz', { localAddress: '127.0.0.1', headers: { 'x-forwarded-for': xff } });
    assert.deepEqual(await statuses(6, () => from('203.0.113.1')), [200, 200, 200, 200, 200, 429]);
    assert.equal((await from('203.0.113.2')).status, 200, 'another client behind the same proxy');
    assert.equal((await from('198.51.100.9, 203.0.113.1')).status, 429, 'what the client claims before the proxy is not trusted');
    const localAddress = freshAddress();
    const untrusted = (i) => get(limited, '/healthz', { localAddress, headers: { 'x-forwarded-for': `203.0.113.${i}` } });
    assert.deepEqual(await statuses(6, untrusted), [200, 200, 200, 200, 200, 429], 'ignored from anyone else');
  });
});

describe('the limiter itself', () => {
  test('idle buckets are evicted; refusals and buckets are in /metrics', async () => {
    const before = await metric(proxied, 'rtsync_http_rate_limit_clients');
    for (let i = 0; i < 200; i++) {
      await get(proxied, '/healthz', { localAddress: '127.0.0.1', headers: { 'x-forwarded-for': `198.18.${i >> 8}.${i & 255}` } });
    }
    assert.ok(await metric(proxied, 'rtsync_http_rate_limit_clients') >= before + 200);
    await sleep(3000);  // 5 tokens at 2 per second: every bucket is full again, as good as absent
    // Each request, refused or not, drops up to two of them.
    for (let i = 0; i < 110; i++) {
      await get(proxied, '/healthz', { localAddress: '127.0.0.1', headers: { 'x-forwarded-for': '198.19.0.1' } });
    }
    const after = await metric(proxied, 'rtsync_http_rate_limit_clients');
    assert.ok(after < 20, `buckets left: ${after}`);
    assert.ok(await metric(limited, 'rtsync_http_rate_limited_total') >= 10);
  });
});
