// Abuse limits (issue 6, docs/security.md): the per-connection command rate limit (token bucket,
// rate_limited, close 4003 after limits.rate_abuse refusals in a row), subscriptions per connection,
// ping/idle timeouts (close 4004), the HTTP request timeout against slowloris, and size limits on HTTP
// bodies, HTTP headers and WebSocket messages.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, httpRequest, sleep, startServer, withTimeout } from './lib/server.mjs';
import { OP, RawWs, encodeFrame } from './lib/rawws.mjs';
import { rawHttp } from './lib/rawws.mjs';

after(cleanupAll);

// Sends `n` commands as separate frames at once and returns their replies, in id order.
async function burst(c, n, make = () => ({ op: 'ping' })) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const id = c.nextId++;
    ids.push(id);
    c.sendRaw(JSON.stringify({ id, ...make(i) }));
  }
  return Promise.all(ids.map((id) => c.reply(id)));
}

const limited = (replies) => replies.filter((r) => r.error?.code === 'rate_limited');
const oks = (replies) => replies.filter((r) => 'ok' in r);

describe('command rate limit (rate = 50, burst = 50)', () => {
  let server;
  before(async () => {
    server = await startServer({ config: '[limits]\nrate = 50\nburst = 50\nmax_subscriptions = 3\n' });
  });

  test('a burst of 200 commands: the bucket lets 50 through, the rest get rate_limited', async () => {
    const c = await Client.connect(server.wsUrl);
    const replies = await burst(c, 200);
    const ok = oks(replies).length;
    const refused = limited(replies);
    assert.equal(ok + refused.length, 200, 'every command answered, ok or rate_limited');
    assert.ok(ok >= 50, `the burst allowance passes (${ok} ok)`);
    assert.ok(refused.length > 0, 'the rest is refused');
    assert.equal(typeof refused[0].error.message, 'string');
    // The first 50 pass: refusals only start once the bucket is empty.
    assert.ok(replies.slice(0, 50).every((r) => 'ok' in r), 'the first 50 commands pass');
    // Still open (200 - 50 refusals is below rate_abuse = 200), and usable again after a pause.
    assert.equal(c.closeInfo, null);
    await sleep(1100);
    const again = await burst(c, 40);
    assert.equal(oks(again).length, 40, 'the bucket refilled');
    await c.close();
  });

  test('a refused command has no effect', async () => {
    const c = await Client.connect(server.wsUrl);
    const replies = await burst(c, 120, (i) => ({ op: 'pub', ch: 'limited', data: i }));
    const okOffsets = oks(replies).map((r) => r.ok.offset);
    assert.ok(limited(replies).length > 0, 'some publications were refused');
    await sleep(1100);
    const h = await c.call('history', { ch: 'limited', limit: 1000 });
    assert.equal(h.pubs.length, okOffsets.length, 'exactly the acknowledged publications exist');
    assert.deepEqual(h.pubs.map((p) => p.data), replies.flatMap((r, i) => ('ok' in r ? [i] : [])));
    await c.close();
  });

  test('each connection has its own bucket', async () => {
    const a = await Client.connect(server.wsUrl);
    const b = await Client.connect(server.wsUrl);
    assert.ok(limited(await burst(a, 150)).length > 0);
    assert.equal(oks(await burst(b, 40)).length, 40, 'b is not slowed by a');
    await Promise.all([a.close(), b.close()]);
  });

  test('subscriptions per connection are limited (max_subscriptions = 3)', async () => {
    const c = await Client.connect(server.wsUrl);
    for (const ch of ['s1', 's2', 's3']) await c.call('sub', { ch });
    assert.equal((await c.request('sub', { ch: 's4' })).error?.code, 'limit');
    await c.call('unsub', { ch: 's1' });
    await c.call('sub', { ch: 's4' });
    await c.close();
  });
});

describe('rate abuse (rate_abuse = 20)', () => {
  let server;
  before(async () => {
    server = await startServer({ config: '[limits]\nrate = 50\nburst = 50\nrate_abuse = 20\n' });
  });

  test('a flood is closed with bye 4003 and close 4003', async () => {
    const c = await Client.connect(server.wsUrl);
    for (let i = 0; i < 300; i++) c.sendRaw(JSON.stringify({ id: c.nextId++, op: 'ping' }));
    const bye = await c.next('bye');
    assert.equal(bye.code, 4003, JSON.stringify(bye));
    assert.equal((await withTimeout(c.closed, 10_000, 'no close after bye')).code, 4003);
    // Other connections are unaffected.
    const other = await Client.connect(server.wsUrl);
    await other.call('ping');
    await other.close();
  });

  test('refusals must come in a row: bursts separated by pauses are not abuse', async () => {
    const c = await Client.connect(server.wsUrl);
    let refused = 0;
    refused += limited(await burst(c, 60)).length;   // 50 pass, about 10 refused
    await sleep(500);                                  // about 25 tokens back
    refused += limited(await burst(c, 35)).length;   // at most 10 refused in a row
    assert.ok(refused >= 20, `as many refusals as rate_abuse in total (${refused})`);
    assert.equal(c.closeInfo, null, 'still open');
    await sleep(1100);
    await c.call('ping');
    await c.close();
  });
});

describe('ping and idle timeouts (ping_interval = 1, idle_timeout = 2)', () => {
  let server;
  before(async () => {
    server = await startServer({ config: '[limits]\nping_interval = 1\nidle_timeout = 2\n' });
  });

  test('a peer that never answers and sends nothing is pinged, then closed with 4004', async () => {
    const started = Date.now();
    const raw = await RawWs.connect(server.port);
    await raw.readHello();
    const { frames, objects, code } = await raw.expectClose(15_000);
    const elapsed = Date.now() - started;
    assert.ok(frames.some((f) => f.opcode === OP.ping), 'the server pinged first');
    assert.equal(code, 4004);
    assert.equal(objects.find((o) => o.op === 'bye')?.code, 4004, `bye before the close: ${JSON.stringify(objects)}`);
    assert.ok(elapsed >= 1900, `not closed before idle_timeout (${elapsed} ms)`);
  });

  test('a ws client (automatic pongs) stays connected for 5 s without sending a command', async () => {
    const c = await Client.connect(server.wsUrl);
    let pings = 0;
    c.ws.on('ping', () => { pings++; });
    await sleep(5000);
    assert.equal(c.closeInfo, null, 'still connected');
    assert.ok(pings >= 2, `pinged while quiet (${pings})`);
    await c.call('ping');
    await c.close();
  });

  test('a raw client that answers pings stays connected; any frame counts as life', async () => {
    const raw = await RawWs.connect(server.port);
    await raw.readHello();
    const deadline = Date.now() + 4500;
    let answered = 0;
    while (Date.now() < deadline) {
      const f = await raw.nextFrame(3000);
      assert.notEqual(f.opcode, OP.close, 'not closed while answering pings');
      if (f.opcode === OP.ping) { raw.send(OP.pong, f.payload); answered++; }
    }
    assert.ok(answered >= 2);
    raw.send(OP.text, JSON.stringify({ id: 1, op: 'ping' }));
    for (;;) {
      const f = await raw.nextFrame();
      if (f.opcode === OP.text && f.payload.toString().includes('"id":1')) break;
      if (f.opcode === OP.ping) raw.send(OP.pong, f.payload);
    }
    raw.destroy();
  });
});

describe('HTTP and WebSocket size and time limits', () => {
  let server;
  before(async () => {
    server = await startServer({ config: '[limits]\nhttp_timeout = 2\nmax_http_body = 65536\nmax_frame = 4096\n' });
  });

  // Writes `head` then `slow` one byte per second; resolves {closedAfter (ms), sent (bytes of `slow`),
  // response (text received)} once the server closes the socket, or after a non-empty `slow` was sent in
  // full (an empty one: the socket just stays quiet).
  function trickle(head, slow) {
    return new Promise((resolve, reject) => {
      const socket = net.connect(server.port, '127.0.0.1');
      const started = Date.now();
      let sent = 0;
      let response = '';
      let timer;
      socket.on('data', (d) => { response += d.toString('latin1'); });
      socket.on('error', () => {});
      socket.on('close', () => { clearInterval(timer); resolve({ closedAfter: Date.now() - started, sent, response }); });
      socket.on('connect', () => {
        socket.write(head);
        if (slow.length === 0) return;
        timer = setInterval(() => {
          if (slow.length > 0 && sent >= slow.length) { clearInterval(timer); socket.destroy(); return; }
          if (!socket.destroyed) socket.write(slow[sent++]);
        }, 1000);
      });
      setTimeout(() => reject(new Error('trickle: no close within 40 s')), 40_000).unref();
    });
  }

  test('headers sent one byte per second: the connection is closed by http_timeout', async () => {
    const slow = `X-Slow: ${'a'.repeat(30)}\r\n\r\n`;
    const r = await trickle('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n', slow);
    assert.ok(r.sent < slow.length, `closed before the full header (${r.sent} of ${slow.length} bytes)`);
    assert.ok(r.closedAfter >= 1500, `not before the timeout (${r.closedAfter} ms)`);
    assert.ok(r.closedAfter < 8000, `closed after ${r.closedAfter} ms, with http_timeout = 2 s`);
    assert.doesNotMatch(r.response, /^HTTP\/1\.1 200/, 'the request was never served');
  });

  test('a body sent one byte per second is closed too', async () => {
    const r = await trickle(
      'POST /v1/channels/slow/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n',
      `"${'b'.repeat(38)}"`,
    );
    assert.ok(r.sent < 40);
    assert.ok(r.closedAfter >= 1500 && r.closedAfter < 8000, `closed after ${r.closedAfter} ms`);
    assert.doesNotMatch(r.response, /^HTTP\/1\.1 200/);
  });

  test('an upgrade request sent slowly is closed the same way', async () => {
    const r = await trickle('GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n', `Connection: Upgrade${' '.repeat(20)}\r\n\r\n`);
    assert.ok(r.closedAfter < 8000 && r.closedAfter >= 1500, `closed after ${r.closedAfter} ms`);
    assert.doesNotMatch(r.response, /^HTTP\/1\.1 101/);
  });

  test('a connection that sends nothing is closed by http_timeout; an open WebSocket is not', async () => {
    const r = await trickle('', '');
    assert.ok(r.closedAfter >= 1500 && r.closedAfter < 8000, `closed after ${r.closedAfter} ms`);
    const c = await Client.connect(server.wsUrl);
    await sleep(3000);
    assert.equal(c.closeInfo, null, 'http_timeout does not apply after the upgrade');
    await c.call('ping');
    await c.close();
  });

  test('a body over max_http_body is 413; one under it is accepted', async () => {
    const big = JSON.stringify('x'.repeat(70_000));
    const res = await httpRequest(`${server.url}/v1/channels/big/publish`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: big,
    }).catch((e) => ({ status: `error ${e.message}` }));
    assert.equal(res.status, 413, 'the oversized body');
    if (res.json) assert.equal(res.json().error?.code, 'too_large');
    const fine = await httpRequest(`${server.url}/v1/channels/big/publish`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify('x'.repeat(60_000)),
    });
    assert.equal(fine.status, 200, fine.body);
    const h = await httpRequest(`${server.url}/v1/channels/big/history`);
    assert.equal(h.json().pubs.length, 1, 'only the accepted body was published');
  });

  test('a Content-Length over the limit is refused before the body is sent', async () => {
    const res = await rawHttp(server.port,
      'POST /v1/channels/big/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      'Content-Length: 100000000\r\n\r\n', { timeout: 5000 });
    assert.equal(res.status, 413);
  });

  test('a chunked body over the limit is 413', async () => {
    const chunk = 'x'.repeat(16_000);
    const chunks = Array.from({ length: 6 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('');
    const res = await rawHttp(server.port,
      'POST /v1/channels/big/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `Transfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`);
    assert.equal(res.status, 413);
  });

  test('oversized request headers are refused (413) and the server goes on', async () => {
    const res = await rawHttp(server.port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'h'.repeat(100_000)}\r\n\r\n`)
      .catch((e) => ({ status: `error ${e.message}` }));
    assert.equal(res.status, 413);
    const many = Array.from({ length: 5000 }, (_, i) => `X-H${i}: ${'v'.repeat(20)}`).join('\r\n');
    const res2 = await rawHttp(server.port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n${many}\r\n\r\n`)
      .catch((e) => ({ status: `error ${e.message}` }));
    assert.equal(res2.status, 413);
    assert.equal((await httpRequest(`${server.url}/healthz`)).status, 200);
  });

  test('a WebSocket message over max_frame closes 1009; one under it is fine', async () => {
    const c = await Client.connect(server.wsUrl);
    assert.ok('ok' in (await c.request('pub', { ch: 'frames', data: 'y'.repeat(3900) })));
    c.sendRaw(JSON.stringify({ id: 99, op: 'pub', ch: 'frames', data: 'z'.repeat(5000) }));
    assert.equal((await c.next('bye')).code, 1009);
    assert.equal((await c.closed).code, 1009);
    const h = await httpRequest(`${server.url}/v1/channels/frames/history`);
    assert.equal(h.json().pubs.length, 1, 'the oversized message had no effect');
  });

  test('a frame header announcing 1 TB closes 1009 at once, without waiting for the payload', async () => {
    const raw = await RawWs.connect(server.port);
    await raw.readHello();
    const head = Buffer.alloc(14);
    head[0] = 0x81;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(2n ** 40n, 2);
    raw.sendBytes(head);  // mask key: four zero bytes; no payload follows
    const { code } = await raw.expectClose(5000);
    assert.equal(code, 1009);
  });

  test('fragments adding up to more than max_frame close 1009', async () => {
    const raw = await RawWs.connect(server.port);
    await raw.readHello();
    for (let i = 0; i < 3; i++) raw.sendBytes(encodeFrame(i === 0 ? OP.text : OP.cont, 'f'.repeat(2000), { fin: false }));
    const { code } = await raw.expectClose(5000);
    assert.equal(code, 1009);
  });
});
