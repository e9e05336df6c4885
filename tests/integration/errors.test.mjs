// Bad input (PROTOCOL §4): error replies that keep the connection open, and the closes the server
// initiates (always `bye` first, then a close frame with the same code): 1009 too large, 1003 binary,
// 1007 invalid UTF-8, 1002 WebSocket protocol violations. Raw-protocol cases use a hand-made client.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, startServer } from './lib/server.mjs';
import { CHOICE_VOTES, RO_NAMESPACE, SMALL_NAMESPACE, TODOS } from './lib/config.mjs';
import { OP, RawWs, encodeFrame, parseLines } from './lib/rawws.mjs';

const CONFIG = `
${SMALL_NAMESPACE}
${RO_NAMESPACE}
${TODOS}
${CHOICE_VOTES}
[namespaces.nopres]
presence = false

[limits]
max_subscriptions = 5
`;

let server;
before(async () => { server = await startServer({ config: CONFIG }); });
after(cleanupAll);

const connect = () => Client.connect(server.wsUrl);

function assertError(reply, code, what) {
  assert.ok(reply.error, `${what}: expected error ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(reply.error.code, code, `${what}: ${JSON.stringify(reply)}`);
  assert.equal(typeof reply.error.message, 'string', `${what}: error.message`);
  assert.ok(!('ok' in reply), `${what}: no ok next to error`);
}

function assertOk(reply, what) {
  assert.ok(reply.ok !== undefined && reply.error === undefined, `${what}: expected ok, got ${JSON.stringify(reply)}`);
}

async function assertStillOpen(c) {
  const r = await c.request('ping');
  assertOk(r, 'ping after the errors');
  assert.equal(c.closeInfo, null, 'connection still open');
}

describe('lines that are not commands', () => {
  for (const text of ['hello', '{"id":1,"op":', '[1,2,3]', '42', '"a string"', 'null', 'true', '{"id":2 "op":"ping"}']) {
    test(`${JSON.stringify(text)} -> bad_request without id, connection stays open`, async () => {
      const c = await connect();
      c.sendRaw(text);
      const err = await c.next((o) => o.error !== undefined);
      assert.equal(err.error.code, 'bad_request', JSON.stringify(err));
      assert.equal(typeof err.error.message, 'string');
      assert.ok(!('id' in err), `no id in ${JSON.stringify(err)}`);
      await assertStillOpen(c);
      await c.close();
    });
  }

  test('an object with an id but no string op -> bad_request with that id', async () => {
    const c = await connect();
    c.sendRaw('{"id":7}');
    assertError(await c.reply(7), 'bad_request', 'missing op');
    c.sendRaw('{"id":8,"op":5}');
    assertError(await c.reply(8), 'bad_request', 'numeric op');
    c.sendRaw('{"id":9,"op":null}');
    assertError(await c.reply(9), 'bad_request', 'null op');
    c.sendRaw('{"id":10,"op":["sub"]}');
    assertError(await c.reply(10), 'bad_request', 'array op');
    await assertStillOpen(c);
    await c.close();
  });
});

describe('command errors keep the connection open', () => {
  const longest = 'a'.repeat(128);
  const cases = [
    // [name, op, fields, expected code or 'ok']
    ['unknown op', 'frobnicate', {}, 'unknown_op'],
    ['unknown op (case)', 'SUB', { ch: 'x' }, 'unknown_op'],

    ['sub without ch', 'sub', {}, 'bad_request'],
    ['sub with numeric ch', 'sub', { ch: 123 }, 'bad_request'],
    ['sub with null ch', 'sub', { ch: null }, 'bad_request'],
    ['sub with array ch', 'sub', { ch: ['a'] }, 'bad_request'],
    ['sub with empty ch', 'sub', { ch: '' }, 'bad_request'],
    ['sub with 129-char ch', 'sub', { ch: 'a'.repeat(129) }, 'bad_request'],
    ['sub with a space', 'sub', { ch: 'a b' }, 'bad_request'],
    ['sub with a slash', 'sub', { ch: 'a/b' }, 'bad_request'],
    ['sub with non-ASCII', 'sub', { ch: 'caf\u00e9' }, 'bad_request'],
    ['sub with *', 'sub', { ch: 'a*' }, 'bad_request'],
    ['sub with #', 'sub', { ch: 'a#b' }, 'bad_request'],
    ['sub with NUL', 'sub', { ch: 'a\u0000b' }, 'bad_request'],
    ['sub with newline', 'sub', { ch: 'a\nb' }, 'bad_request'],
    ['sub with 128-char ch', 'sub', { ch: longest }, 'ok'],
    ['sub with every allowed character', 'sub', { ch: 'AZaz09_.@-' }, 'ok'],
    ['sub in a declared namespace', 'sub', { ch: 'small:a.b@c-d_e:f' }, 'ok'],

    ['since is a number', 'sub', { ch: 's1', since: 5 }, 'bad_request'],
    ['since is a string', 'sub', { ch: 's2', since: 'x' }, 'bad_request'],
    ['since is an array', 'sub', { ch: 's3', since: [1, 'e'] }, 'bad_request'],
    ['since.offset is a string', 'sub', { ch: 's4', since: { offset: 'x', epoch: 'e' } }, 'bad_request'],
    ['since.offset is negative', 'sub', { ch: 's5', since: { offset: -1, epoch: 'e' } }, 'bad_request'],
    ['since.offset is fractional', 'sub', { ch: 's6', since: { offset: 1.5, epoch: 'e' } }, 'bad_request'],
    ['since without offset', 'sub', { ch: 's7', since: { epoch: 'e' } }, 'bad_request'],
    ['since without epoch', 'sub', { ch: 's8', since: { offset: 1 } }, 'bad_request'],
    ['since.epoch is a number', 'sub', { ch: 's9', since: { offset: 1, epoch: 5 } }, 'bad_request'],
    ['presence is not a bool', 'sub', { ch: 's10', presence: 'yes' }, 'bad_request'],

    ['sub to an undeclared namespace', 'sub', { ch: 'nope:x' }, 'not_found'],
    ['pub to an undeclared namespace', 'pub', { ch: 'nope:x', data: 1 }, 'not_found'],
    ['history of an undeclared namespace', 'history', { ch: 'nope:x' }, 'not_found'],
    ['presence of an undeclared namespace', 'presence', { ch: 'nope:x' }, 'not_found'],

    ['pub without data', 'pub', { ch: 'p1' }, 'bad_request'],
    ['pub without ch', 'pub', { data: 1 }, 'bad_request'],
    ['pub with invalid ch', 'pub', { ch: 'a b', data: 1 }, 'bad_request'],
    ['pub with a non-string key', 'pub', { ch: 'p2', data: 1, key: 5 }, 'bad_request'],
    ['pub of null data', 'pub', { ch: 'p3', data: null }, 'ok'],
    ['pub to coll:', 'pub', { ch: 'coll:todos', data: 1 }, 'permission_denied'],
    ['pub to tally:', 'pub', { ch: 'tally:votes', data: 1 }, 'permission_denied'],
    ['pub to client_publish=false', 'pub', { ch: 'ro:x', data: 1 }, 'permission_denied'],
    ['sub to coll:', 'sub', { ch: 'coll:todos' }, 'ok'],
    ['sub to tally:', 'sub', { ch: 'tally:votes' }, 'ok'],
    ['sub to client_publish=false', 'sub', { ch: 'ro:x' }, 'ok'],

    ['presence where presence=false', 'presence', { ch: 'nopres:x' }, 'permission_denied'],
    ['sub with presence where presence=false', 'sub', { ch: 'nopres:y', presence: true }, 'permission_denied'],
    ['sub without presence where presence=false', 'sub', { ch: 'nopres:z' }, 'ok'],
    ['presence without ch', 'presence', {}, 'bad_request'],

    ['unsub of a channel not subscribed', 'unsub', { ch: 'never' }, 'ok'],
    ['unsub without ch', 'unsub', {}, 'bad_request'],
    ['unsub with invalid ch', 'unsub', { ch: 'a b' }, 'bad_request'],
    ['history without ch', 'history', {}, 'bad_request'],
    ['history with invalid ch', 'history', { ch: '' }, 'bad_request'],
  ];

  let c;
  before(async () => { c = await connect(); });
  after(async () => {
    await assertStillOpen(c);
    await c.close();
  });

  for (const [name, op, fields, expected] of cases) {
    test(`${name} -> ${expected}`, async () => {
      const r = await c.request(op, fields);
      if (expected === 'ok') {
        assertOk(r, name);
        // Keep the subscription count low for the max_subscriptions limit of this server.
        if (op === 'sub') assertOk(await c.request('unsub', { ch: fields.ch }), `unsub after ${name}`);
      } else {
        assertError(r, expected, name);
      }
    });
  }

  test('the reply echoes the id of the command', async () => {
    c.sendRaw('{"id":987654,"op":"frobnicate"}');
    const r = await c.reply(987654);
    assert.equal(r.id, 987654);
    assertError(r, 'unknown_op', 'raw unknown op');
  });
});

describe('subscription rules', () => {
  test('subscribing twice to the same channel -> bad_request, the first subscription stays', async () => {
    const c = await connect();
    assertOk(await c.request('sub', { ch: 'twice' }), 'first sub');
    assertError(await c.request('sub', { ch: 'twice' }), 'bad_request', 'second sub');
    await c.call('pub', { ch: 'twice', data: 'still there' });
    const m = await c.next('msg');
    assert.equal(m.data, 'still there');
    await c.call('ping');
    assert.deepEqual(c.peek((o) => o.op === 'msg'), [], 'delivered once, not twice');
    await c.close();
  });

  test('more than limits.max_subscriptions -> limit; unsub frees a slot', async () => {
    const c = await connect();
    for (let i = 1; i <= 5; i++) assertOk(await c.request('sub', { ch: `lim${i}` }), `sub #${i}`);
    assertError(await c.request('sub', { ch: 'lim6' }), 'limit', 'sub #6');
    assertOk(await c.request('unsub', { ch: 'lim1' }), 'unsub');
    assertOk(await c.request('sub', { ch: 'lim6' }), 'sub #6 after an unsub');
    assertError(await c.request('sub', { ch: 'lim7' }), 'limit', 'sub #7');
    // The limit is per connection.
    const d = await connect();
    assertOk(await d.request('sub', { ch: 'lim7' }), 'another connection');
    await assertStillOpen(c);
    await Promise.all([c.close(), d.close()]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Closes initiated by the server

async function expectByeThenClose(client, code) {
  const closed = await client.closed;
  const bye = client.peek((o) => o.op === 'bye');
  assert.equal(bye.length, 1, `exactly one bye before the close, got ${JSON.stringify(client.queue)}`);
  assert.equal(bye[0].code, code, `bye code: ${JSON.stringify(bye[0])}`);
  assert.equal(typeof bye[0].reason, 'string');
  assert.equal(closed.code, code, `close code (reason ${closed.reason})`);
}

async function expectRawClose(raw, code) {
  const res = await raw.expectClose();
  const bye = res.objects.filter((o) => o.op === 'bye');
  assert.equal(bye.length, 1, `one bye before the close frame; got ${JSON.stringify(res.objects)}`);
  assert.equal(bye[0].code, code, `bye code: ${JSON.stringify(bye[0])}`);
  assert.equal(typeof bye[0].reason, 'string');
  assert.equal(res.code, code, `close frame code (reason "${res.reason}")`);
  assert.deepEqual(raw.protocolErrors, [], 'server frames are well-formed');
  return res;
}

async function rawConnection() {
  const raw = await RawWs.connect(server.port);
  const hello = await raw.readHello();
  assert.equal(hello.op, 'hello');
  return raw;
}

describe('closes via a normal client', () => {
  test('a message over 64 KiB -> bye 1009, close 1009', async () => {
    const c = await connect();
    c.sendRaw(JSON.stringify({ id: 1, op: 'pub', ch: 'big', data: 'x'.repeat(70 * 1024) }));
    await expectByeThenClose(c, 1009);
  });

  test('a message just under 64 KiB is accepted', async () => {
    const c = await connect();
    const r = await c.request('pub', { ch: 'big', data: 'y'.repeat(60 * 1024) });
    assertOk(r, 'a 60 KiB publication');
    await c.close();
  });

  test('a binary frame -> bye 1003, close 1003', async () => {
    const c = await connect();
    c.ws.send(Buffer.from(JSON.stringify({ id: 1, op: 'ping' })), { binary: true });
    await expectByeThenClose(c, 1003);
  });

  test('other connections are unaffected by a close', async () => {
    const [a, b] = await Promise.all([connect(), connect()]);
    await b.call('sub', { ch: 'survivor' });
    a.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await a.closed;
    const p = await connect();
    await p.call('pub', { ch: 'survivor', data: 'alive' });
    assert.equal((await b.next('msg')).data, 'alive');
    await Promise.all([b.close(), p.close()]);
  });
});

describe('closes via raw frames', () => {
  test('invalid UTF-8 in a text frame -> 1007', async () => {
    for (const bad of [[0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xf4, 0x90, 0x80, 0x80]]) {
      const raw = await rawConnection();
      const payload = Buffer.concat([
        Buffer.from('{"id":1,"op":"pub","ch":"utf","data":"'), Buffer.from(bad), Buffer.from('"}'),
      ]);
      raw.send(OP.text, payload);
      await expectRawClose(raw, 1007);
    }
  });

  test('an unmasked client frame -> 1002', async () => {
    const raw = await rawConnection();
    raw.send(OP.text, '{"id":1,"op":"ping"}', { mask: false });
    await expectRawClose(raw, 1002);
  });

  for (const opcode of [0x3, 0x7, 0xb, 0xf]) {
    test(`unknown opcode 0x${opcode.toString(16)} -> 1002`, async () => {
      const raw = await rawConnection();
      raw.send(opcode, 'x');
      await expectRawClose(raw, 1002);
    });
  }

  for (const rsv of [4, 2, 1]) {
    test(`reserved bits ${rsv.toString(2).padStart(3, '0')} set -> 1002`, async () => {
      const raw = await rawConnection();
      raw.send(OP.text, '{"id":1,"op":"ping"}', { rsv });
      await expectRawClose(raw, 1002);
    });
  }

  test('a fragmented control frame -> 1002', async () => {
    const raw = await rawConnection();
    raw.send(OP.ping, 'frag', { fin: false });
    await expectRawClose(raw, 1002);
  });

  test('a control frame over 125 bytes -> 1002', async () => {
    const raw = await rawConnection();
    raw.send(OP.ping, Buffer.alloc(126, 0x61));
    await expectRawClose(raw, 1002);
  });

  test('a continuation frame without a started message -> 1002', async () => {
    const raw = await rawConnection();
    raw.send(OP.cont, '{"id":1,"op":"ping"}');
    await expectRawClose(raw, 1002);
  });

  test('a new data frame inside a fragmented message -> 1002', async () => {
    const raw = await rawConnection();
    raw.send(OP.text, '{"id":1,', { fin: false });
    raw.send(OP.text, '{"id":2,"op":"ping"}');
    await expectRawClose(raw, 1002);
  });

  test('a fragmented message over 64 KiB in total -> 1009', async () => {
    const raw = await rawConnection();
    const data = `{"id":1,"op":"pub","ch":"frag","data":"${'z'.repeat(70 * 1024)}"}`;
    raw.send(OP.text, data.slice(0, 40_000), { fin: false });
    raw.send(OP.cont, data.slice(40_000));
    await expectRawClose(raw, 1009);
  });

  test('a ping gets a pong with the same payload; the connection stays usable', async () => {
    const raw = await rawConnection();
    raw.send(OP.ping, 'ping-payload');
    const f = await raw.nextFrame();
    assert.equal(f.opcode, OP.pong);
    assert.equal(f.payload.toString(), 'ping-payload');
    raw.send(OP.text, '{"id":5,"op":"ping"}');
    const objs = await raw.nextObjects();
    assert.equal(objs[0].id, 5);
    assert.ok('ok' in objs[0]);
    raw.destroy();
  });

  test('a fragmented message (with a ping between fragments) is reassembled', async () => {
    const raw = await rawConnection();
    raw.send(OP.text, '{"id":6,"op":', { fin: false });
    raw.send(OP.ping, 'mid');
    raw.send(OP.cont, '"ping"}');
    const frames = [await raw.nextFrame(), await raw.nextFrame()];
    const pong = frames.find((f) => f.opcode === OP.pong);
    const text = frames.find((f) => f.opcode === OP.text);
    assert.ok(pong, 'pong for the ping between fragments');
    assert.equal(pong.payload.toString(), 'mid');
    assert.ok(text, 'a reply');
    const reply = parseLines(text.payload)[0];
    assert.equal(reply.id, 6);
    assert.ok('ok' in reply, JSON.stringify(reply));
    raw.destroy();
  });

  test('frames split into many TCP segments, and many frames in one segment, are all handled', async () => {
    // Reads land in a buffer the server shares between connections; only an incomplete frame's bytes are
    // kept per connection. Byte-by-byte headers, a large frame in pieces and a burst must all survive that.
    const raw = await rawConnection();
    raw.socket.setNoDelay(true);
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const small = Buffer.concat([encodeFrame(OP.text, '{"id":7,"op":"ping"}'), encodeFrame(OP.ping, 'split')]);
    for (let i = 0; i < small.length; i++) {
      raw.socket.write(small.subarray(i, i + 1));
      await sleep(2);
    }
    const big = encodeFrame(OP.text, JSON.stringify({ id: 8, op: 'ping', pad: 'y'.repeat(50_000) }));
    for (let i = 0; i < big.length; i += 1000) {
      raw.socket.write(big.subarray(i, i + 1000));
      await sleep(1);
    }
    const ids = Array.from({ length: 300 }, (_, i) => 100 + i);
    raw.socket.write(Buffer.concat(ids.map((id) => encodeFrame(OP.text, `{"id":${id},"op":"ping"}`))));

    const want = new Set([7, 8, ...ids]);
    const order = [];
    let pong = null;
    while (want.size || !pong) {
      const f = await raw.nextFrame();
      if (f.opcode === OP.pong) {
        pong = f.payload.toString();
        continue;
      }
      assert.equal(f.opcode, OP.text);
      for (const r of parseLines(f.payload)) {
        assert.ok('ok' in r, JSON.stringify(r));
        assert.ok(want.delete(r.id), `one reply for id ${r.id}`);
        order.push(r.id);
      }
    }
    assert.equal(pong, 'split');
    assert.deepEqual(order, [7, 8, ...ids], 'replies in the order of the commands');
    raw.destroy();
  });

  test('a close from the client is answered with a close frame', async () => {
    const raw = await rawConnection();
    raw.sendBytes(encodeFrame(OP.close, Buffer.from([0x03, 0xe8]))); // 1000
    let f = await raw.nextFrame();
    while (f.opcode !== OP.close) f = await raw.nextFrame(); // data queued before the close may precede it
    assert.equal(f.opcode, OP.close);
    assert.equal(f.payload.readUInt16BE(0), 1000);
    await raw.ended;
  });
});
