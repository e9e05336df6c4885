// History (PROTOCOL §4 `history`, §5 channel REST): the history op, GET /v1/channels/CH/history with
// since/limit/reverse, and POST /v1/channels/CH/publish.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, httpRequest, startServer } from './lib/server.mjs';
import { CHOICE_VOTES, RO_NAMESPACE, SMALL_NAMESPACE, TODOS, config } from './lib/config.mjs';

const CONFIG = config(SMALL_NAMESPACE, RO_NAMESPACE, TODOS, CHOICE_VOTES);

let server;
let c;
before(async () => {
  server = await startServer({ config: CONFIG });
  c = await Client.connect(server.wsUrl);
  // Channel "h": 20 publications with data {i: 1..20}.
  for (let i = 1; i <= 20; i++) await c.call('pub', { ch: 'h', data: { i } });
});
after(async () => {
  await c?.close();
  await cleanupAll();
});

const range = (from, to) => {
  const out = [];
  if (from <= to) for (let i = from; i <= to; i++) out.push(i);
  else for (let i = from; i >= to; i--) out.push(i);
  return out;
};
const offsets = (pubs) => pubs.map((p) => p.offset);

async function restHistory(ch, query = '') {
  const res = await httpRequest(`${server.url}/v1/channels/${ch}/history${query}`);
  return res;
}

describe('history op', () => {
  test('returns every publication ascending, with offset, data, from and ts', async () => {
    const h = await c.call('history', { ch: 'h' });
    assert.equal(h.offset, 20);
    assert.equal(typeof h.epoch, 'string');
    assert.ok(h.epoch.length > 0);
    assert.deepEqual(offsets(h.pubs), range(1, 20));
    h.pubs.forEach((p, i) => {
      assert.deepEqual(p.data, { i: i + 1 });
      assert.equal(p.from, c.hello.user);
      assert.equal(typeof p.ts, 'number');
    });
  });

  test('the epoch equals the one a subscriber sees', async () => {
    const h = await c.call('history', { ch: 'h' });
    const other = await Client.connect(server.wsUrl);
    const s = await other.call('sub', { ch: 'h' });
    assert.equal(s.epoch, h.epoch);
    assert.equal(s.offset, h.offset);
    await other.close();
  });

  test('since is exclusive', async () => {
    const h = await c.call('history', { ch: 'h', since: 15 });
    assert.deepEqual(offsets(h.pubs), range(16, 20));
    assert.equal(h.offset, 20);
    assert.deepEqual((await c.call('history', { ch: 'h', since: 0 })).pubs.length, 20);
    assert.deepEqual((await c.call('history', { ch: 'h', since: 20 })).pubs, []);
    assert.deepEqual((await c.call('history', { ch: 'h', since: 500 })).pubs, []);
  });

  test('limit keeps the oldest matching publications', async () => {
    assert.deepEqual(offsets((await c.call('history', { ch: 'h', limit: 5 })).pubs), range(1, 5));
    assert.deepEqual(offsets((await c.call('history', { ch: 'h', since: 5, limit: 3 })).pubs), [6, 7, 8]);
    assert.deepEqual((await c.call('history', { ch: 'h', limit: 0 })).pubs, []);
    assert.deepEqual(offsets((await c.call('history', { ch: 'h', limit: 1000 })).pubs), range(1, 20));
  });

  test('reverse returns newest first', async () => {
    assert.deepEqual(offsets((await c.call('history', { ch: 'h', reverse: true })).pubs), range(20, 1));
    assert.deepEqual(offsets((await c.call('history', { ch: 'h', reverse: true, limit: 3 })).pubs), [20, 19, 18]);
    assert.deepEqual(offsets((await c.call('history', { ch: 'h', reverse: true, since: 17 })).pubs), [20, 19, 18]);
    assert.deepEqual(offsets((await c.call('history', { ch: 'h', reverse: true, since: 5, limit: 2 })).pubs), [20, 19]);
    assert.deepEqual(offsets((await c.call('history', { ch: 'h', reverse: false, limit: 2 })).pubs), [1, 2]);
  });

  test('the default limit is 100', async () => {
    const p = await Client.connect(server.wsUrl);
    const acks = [];
    for (let i = 1; i <= 120; i++) acks.push(p.request('pub', { ch: 'many', data: i }));
    assert.ok((await Promise.all(acks)).every((r) => 'ok' in r));
    const h = await p.call('history', { ch: 'many' });
    assert.equal(h.offset, 120);
    assert.deepEqual(offsets(h.pubs), range(1, 100));
    const rev = await p.call('history', { ch: 'many', reverse: true });
    assert.deepEqual(offsets(rev.pubs), range(120, 21));
    await p.close();
  });

  test('an unknown channel has offset 0 and no publications', async () => {
    const h = await c.call('history', { ch: 'never-published' });
    assert.equal(h.offset, 0);
    assert.deepEqual(h.pubs, []);
    assert.equal(typeof h.epoch, 'string');
  });

  test('only history_size publications are kept', async () => {
    for (let i = 1; i <= 25; i++) await c.call('pub', { ch: 'small:trim', data: i });
    const h = await c.call('history', { ch: 'small:trim' });
    assert.equal(h.offset, 25);
    assert.deepEqual(offsets(h.pubs), range(16, 25));
    assert.deepEqual(h.pubs.map((p) => p.data), range(16, 25));
  });

  test('bad limits and since are bad_request', async () => {
    for (const fields of [
      { limit: 1001 }, { limit: -1 }, { limit: '5' }, { limit: 2.5 },
      { since: 'abc' }, { since: -1 }, { since: '3' }, { since: 1.5 }, { since: { offset: 1 } },
      { reverse: 'yes' },
    ]) {
      const r = await c.request('history', { ch: 'h', ...fields });
      assert.equal(r.error?.code, 'bad_request', `${JSON.stringify(fields)} -> ${JSON.stringify(r)}`);
    }
  });

  test('history of an undeclared namespace is not_found', async () => {
    const r = await c.request('history', { ch: 'nope:x' });
    assert.equal(r.error?.code, 'not_found', JSON.stringify(r));
  });
});

describe('REST history', () => {
  test('GET /v1/channels/CH/history answers the same JSON as the history op', async () => {
    for (const [query, fields] of [
      ['', {}],
      ['?since=15', { since: 15 }],
      ['?limit=5', { limit: 5 }],
      ['?since=5&limit=3', { since: 5, limit: 3 }],
      ['?reverse=true', { reverse: true }],
      ['?reverse=true&limit=3', { reverse: true, limit: 3 }],
      ['?since=17&reverse=true', { since: 17, reverse: true }],
      ['?limit=0', { limit: 0 }],
    ]) {
      const res = await restHistory('h', query);
      assert.equal(res.status, 200, `${query}: ${res.body}`);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      const ws = await c.call('history', { ch: 'h', ...fields });
      assert.deepEqual(res.json(), ws, `REST ${query} equals the op with ${JSON.stringify(fields)}`);
    }
  });

  test('the REST query selects the same publications (spot checks)', async () => {
    assert.deepEqual(offsets((await restHistory('h', '?since=15')).json().pubs), range(16, 20));
    assert.deepEqual(offsets((await restHistory('h', '?reverse=true&limit=2')).json().pubs), [20, 19]);
    assert.equal((await restHistory('h')).json().offset, 20);
  });

  test('bad parameters are 400 with a JSON error', async () => {
    for (const query of ['?since=abc', '?limit=5000', '?limit=-1', '?limit=x', '?since=-3']) {
      const res = await restHistory('h', query);
      assert.equal(res.status, 400, `${query}: ${res.status} ${res.body}`);
      const body = res.json();
      assert.equal(typeof body.error?.code, 'string', res.body);
      assert.equal(typeof body.error?.message, 'string', res.body);
      assert.equal(body.error.code, 'bad_request');
    }
  });

  test('an undeclared namespace is 404, an invalid channel name 400', async () => {
    const nf = await restHistory('nope:x');
    assert.equal(nf.status, 404, nf.body);
    assert.equal(typeof nf.json().error?.code, 'string');
    const bad = await restHistory('bad!name');
    assert.equal(bad.status, 400, bad.body);
    assert.equal(typeof bad.json().error?.code, 'string');
  });
});

describe('REST publish', () => {
  const publish = (ch, body, headers = { 'content-type': 'application/json' }) =>
    httpRequest(`${server.url}/v1/channels/${ch}/publish`, { method: 'POST', body, headers });

  test('POST /v1/channels/CH/publish publishes the JSON body and answers {"offset":N}', async () => {
    const sub = await Client.connect(server.wsUrl);
    await sub.call('sub', { ch: 'rest.pub' });
    const res = await publish('rest.pub', JSON.stringify({ hello: 'wörld', list: [1, 2] }));
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json(), { offset: 1 });
    const m = await sub.next('msg');
    assert.equal(m.ch, 'rest.pub');
    assert.equal(m.offset, 1);
    assert.deepEqual(m.data, { hello: 'wörld', list: [1, 2] });
    assert.equal(typeof m.from, 'string');

    const res2 = await publish('rest.pub', '"just a string"');
    assert.equal(res2.status, 200, res2.body);
    assert.equal(res2.json().offset, 2);
    assert.equal((await sub.next('msg')).data, 'just a string');

    const h = await sub.call('history', { ch: 'rest.pub' });
    assert.deepEqual(h.pubs.map((p) => p.data), [{ hello: 'wörld', list: [1, 2] }, 'just a string']);
    await sub.close();
  });

  test('REST and WebSocket publications share one offset sequence', async () => {
    await c.call('pub', { ch: 'mixed', data: 'ws' });
    const res = await publish('mixed', '{"via":"rest"}');
    assert.equal(res.json().offset, 2);
    assert.equal((await c.call('pub', { ch: 'mixed', data: 'ws again' })).offset, 3);
  });

  test('a body that is not JSON is 400 with a JSON error', async () => {
    for (const body of ['not json', '{"a":', '']) {
      const res = await publish('rest.bad', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.status} ${res.body}`);
      assert.equal(typeof res.json().error?.code, 'string', res.body);
      assert.equal(typeof res.json().error?.message, 'string', res.body);
    }
    const h = await c.call('history', { ch: 'rest.bad' });
    assert.equal(h.offset, 0, 'nothing was published');
  });

  test('an undeclared namespace is 404', async () => {
    const res = await publish('nope:x', '1');
    assert.equal(res.status, 404, res.body);
    assert.equal(typeof res.json().error?.code, 'string');
  });

  test('coll:, tally: and client_publish=false namespaces are 403', async () => {
    for (const ch of ['coll:todos', 'tally:votes', 'ro:x']) {
      const res = await publish(ch, '{"x":1}');
      assert.equal(res.status, 403, `${ch}: ${res.status} ${res.body}`);
      assert.equal(typeof res.json().error?.code, 'string');
    }
    assert.equal((await c.call('history', { ch: 'ro:x' })).offset, 0, 'nothing was published on ro:x');
  });
});
