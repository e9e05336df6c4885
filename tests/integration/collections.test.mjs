// Collections and tallies (PROTOCOL §5, docs/protocol.md §6): CRUD over WebSocket and REST, versions and
// conflicts, per_user and read/write rules, the change feed coll:NAME (shapes, per-owner audience in
// pushes, recovery and history, list-then-sub without gap or duplicate), tally:NAME, validation of tally
// values, idempotency keys (also across a restart) and the default config's `pcm` collection.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  Client, WEB_ROOT, cleanupAll, cookiePair, httpRequest, startServer, tmpDir, uidSetCookie,
} from './lib/server.mjs';
import { NOTES, READONLY, SHARED, TODOS, VOTES, collection, config, openCollection, perUserTally } from './lib/config.mjs';

const CONFIG = config(
  TODOS, NOTES, SHARED, READONLY, openCollection('feed'),
  VOTES, perUserTally('ballot'), perUserTally('strict'),
  openCollection('idem'), perUserTally('idemvotes'),
  collection('rooms', 'per_user = true', 'read = "owner"', 'write = "owner"', 'tally = { q1 = [0, 1, 2] }',
             'tally_group = "room"'),
);

after(cleanupAll);

// ---------------------------------------------------------------------------------------------------
// Helpers

// A fresh anonymous identity: the signed cookie from any HTTP response.
async function newCookie(server) {
  const res = await httpRequest(`${server.url}/healthz`);
  const set = uidSetCookie(res);
  assert.ok(set, 'the server sets rtsync_uid on a request without it');
  return cookiePair(set);
}

// A user with one cookie, a WebSocket connection under it, and its user id.
async function newUser(server) {
  const cookie = await newCookie(server);
  const ws = await Client.connect(server.wsUrl, { headers: { Cookie: cookie } });
  return { cookie, ws, id: ws.hello.user };
}

async function rest(server, method, p, { cookie, body, headers = {} } = {}) {
  const h = { ...headers };
  if (cookie) h.Cookie = cookie;
  let text;
  if (body !== undefined) {
    text = typeof body === 'string' ? body : JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  return httpRequest(`${server.url}${p}`, { method, headers: h, body: text });
}

function assertError(reply, code, what = '') {
  assert.ok(reply.error, `${what}: expected error ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(reply.error.code, code, `${what}: ${JSON.stringify(reply)}`);
  assert.equal(typeof reply.error.message, 'string');
}

function assertRestError(res, status, code, what = '') {
  assert.equal(res.status, status, `${what}: HTTP ${res.status} ${res.body}`);
  const body = res.json();
  assert.equal(body.error?.code, code, `${what}: ${res.body}`);
}

// A tally without zero counts, so equal tallies compare equal whether or not zeros are listed.
function norm(t) {
  const counts = {};
  for (const [field, values] of Object.entries(t.counts ?? {})) {
    for (const [value, n] of Object.entries(values)) {
      if (n !== 0) (counts[field] ??= {})[String(value)] = n;
    }
  }
  return { total: t.total, counts };
}

// The tally of a set of attribute objects (fields q1/q2).
function expectedTally(docs) {
  const t = { total: 0, counts: {} };
  for (const d of docs) {
    t.total++;
    for (const f of ['q1', 'q2']) {
      if (d[f] === undefined || d[f] === null) continue;
      (t.counts[f] ??= {})[String(d[f])] = ((t.counts[f] ?? {})[String(d[f])] ?? 0) + 1;
    }
  }
  return t;
}

const byId = (docs) => Object.fromEntries(docs.map((d) => [d.id, d]));

// ---------------------------------------------------------------------------------------------------

describe('collections', () => {
  let server;
  before(async () => { server = await startServer({ config: CONFIG }); });

  // -------------------------------------------------------------------------------------------------
  describe('CRUD over WebSocket', () => {
    test('create, get, update, patch, list, delete', async () => {
      const c = await Client.connect(server.wsUrl);
      const user = c.hello.user;

      const created = (await c.call('create', { coll: 'todos', data: { title: 'buy milk', done: false } })).doc;
      assert.match(created.id, /^[0-9a-f]{16}$/, 'the server assigns a 16-hex id');
      assert.deepEqual(created, { id: created.id, _v: 1, _owner: user, title: 'buy milk', done: false });

      assert.deepEqual((await c.call('get', { coll: 'todos', doc: created.id })).doc, created);

      const updated = (await c.call('update', { coll: 'todos', doc: created.id, v: 1, data: { title: 'buy bread' } })).doc;
      assert.deepEqual(updated, { id: created.id, _v: 2, _owner: user, title: 'buy bread' },
                       'update replaces the attributes');

      const patched = (await c.call('patch', { coll: 'todos', doc: created.id, v: 2, data: { done: true, n: 3 } })).doc;
      assert.deepEqual(patched, { id: created.id, _v: 3, _owner: user, title: 'buy bread', done: true, n: 3 },
                       'patch merges top-level attributes');

      const nulled = (await c.call('patch', { coll: 'todos', doc: created.id, data: { n: null } })).doc;
      assert.deepEqual(nulled, { id: created.id, _v: 4, _owner: user, title: 'buy bread', done: true },
                       'null deletes an attribute; without v the write is unconditional');

      const list = await c.call('list', { coll: 'todos' });
      assert.ok(Array.isArray(list.docs));
      assert.deepEqual(byId(list.docs)[created.id], nulled);
      assert.equal(typeof list.offset, 'number');
      assert.ok(list.offset >= 4, `coll:todos offset ${list.offset} counts the 4 writes`);
      assert.equal(typeof list.epoch, 'string');
      assert.ok(list.epoch.length > 0);

      assert.deepEqual(await c.call('delete', { coll: 'todos', doc: created.id, v: 4 }), { v: 4 });
      assertError(await c.request('get', { coll: 'todos', doc: created.id }), 'not_found', 'get after delete');
      assertError(await c.request('delete', { coll: 'todos', doc: created.id }), 'not_found', 'delete again');
      assertError(await c.request('patch', { coll: 'todos', doc: created.id, data: { a: 1 } }), 'not_found',
                  'patch of a deleted document');
      assert.ok(!(await c.call('list', { coll: 'todos' })).docs.some((d) => d.id === created.id));
      // An update without a version creates the document again (an upsert), from version 1.
      const again = (await c.call('update', { coll: 'todos', doc: created.id, data: { a: 1 } })).doc;
      assert.deepEqual([again.id, again._v, again.a], [created.id, 1, 1]);
      await c.close();
    });

    test('create with an id uses it; creating it again is a conflict carrying the document', async () => {
      const c = await Client.connect(server.wsUrl);
      const doc = (await c.call('create', { coll: 'todos', data: { id: 'fixed-id.1', a: 1 } })).doc;
      assert.deepEqual(doc, { id: 'fixed-id.1', _v: 1, _owner: c.hello.user, a: 1 });
      const again = await c.request('create', { coll: 'todos', data: { id: 'fixed-id.1', a: 2 } });
      assertError(again, 'conflict', 'create of an existing id');
      assert.deepEqual(again.error.doc, doc);
      assertError(await c.request('create', { coll: 'todos', data: { id: 'bad id', a: 2 } }), 'bad_request', 'bad id');
      assertError(await c.request('get', { coll: 'todos', doc: 'bad/id' }), 'bad_request', 'get with a bad id');
      await c.close();
    });

    test('reserved attributes: _v and own _owner/id accepted, others invalid', async () => {
      const c = await Client.connect(server.wsUrl);
      const doc = (await c.call('create', { coll: 'todos', data: { a: 1 } })).doc;
      // Sending back what was fetched (id, _v, _owner) works, _v acting as the expected version.
      const echoed = (await c.call('update', { coll: 'todos', doc: doc.id, data: { ...doc, a: 2 } })).doc;
      assert.deepEqual(echoed, { ...doc, _v: 2, a: 2 });
      const stale = await c.request('update', { coll: 'todos', doc: doc.id, data: { ...doc, a: 3 } });
      assertError(stale, 'conflict', '_v in data is the expected version');
      assert.deepEqual(stale.error.doc, echoed);
      // v wins over _v.
      const vWins = (await c.call('patch', { coll: 'todos', doc: doc.id, v: 2, data: { _v: 1, b: 1 } })).doc;
      assert.equal(vWins._v, 3);
      for (const data of [{ _owner: 'anon-0000000000000000' }, { _x: 1 }, { id: 'other' }]) {
        assertError(await c.request('patch', { coll: 'todos', doc: doc.id, data }), 'invalid', JSON.stringify(data));
      }
      assertError(await c.request('create', { coll: 'todos', data: { _secret: 1 } }), 'invalid', '_secret');
      assert.deepEqual((await c.call('get', { coll: 'todos', doc: doc.id })).doc, vWins, 'nothing changed');
      await c.close();
    });

    test('a pipelined read sees the writes sent before it (read your writes)', async () => {
      const c = await Client.connect(server.wsUrl);
      const id = `ryw-${c.hello.session}`;
      const [create, get, list] = await Promise.all([
        c.request('create', { coll: 'todos', data: { id, n: 1 } }),
        c.request('get', { coll: 'todos', doc: id }),
        c.request('list', { coll: 'todos' }),
      ]);
      assert.equal(create.ok?.doc?._v, 1, JSON.stringify(create));
      assert.deepEqual(get.ok?.doc, create.ok.doc, 'get sees the create sent before it');
      assert.deepEqual(byId(list.ok?.docs ?? [])[id], create.ok.doc, 'list sees the create sent before it');

      const V = await newUser(server);
      const [vote, tally] = await Promise.all([
        V.ws.request('create', { coll: 'votes', data: { q2: 3 } }),
        V.ws.request('tally', { coll: 'votes' }),
      ]);
      assert.ok(vote.ok, JSON.stringify(vote));
      assert.ok((tally.ok?.tally?.counts?.q2?.['3'] ?? 0) >= 1, `the tally sees the vote sent before it: ${JSON.stringify(tally)}`);
      await c.close();
      await V.ws.close();
    });

    test('a pipelined read does not see the writes sent after it (commands take effect in order)', async () => {
      // docs/protocol.md §4: "commands of a connection take effect in the order sent".
      const c = await Client.connect(server.wsUrl);
      const id = `order-${c.hello.session}`;
      const created = (await c.call('create', { coll: 'todos', data: { id, n: 1 } })).doc;
      // One frame, so the server has every command before it answers any.
      const cmds = [
        ['get1', { op: 'get', coll: 'todos', doc: id }],
        ['list1', { op: 'list', coll: 'todos' }],
        ['update', { op: 'update', coll: 'todos', doc: id, v: 1, data: { n: 2 } }],
        ['get2', { op: 'get', coll: 'todos', doc: id }],
        ['delete', { op: 'delete', coll: 'todos', doc: id, v: 2 }],
        ['get3', { op: 'get', coll: 'todos', doc: id }],
      ];
      const order = [];
      c.sendRaw(cmds.map(([name, cmd]) => JSON.stringify({ id: `o-${name}`, ...cmd })).join('\n'));
      const [get1, list1, update, get2, del, get3] = await Promise.all(
        cmds.map(([name]) => c.reply(`o-${name}`).then((r) => { order.push(name); return r; })));
      const trace = `replies arrived as ${order.join(', ')}; get1 ${JSON.stringify(get1)}; list1 offset ${list1.ok?.offset}`;
      assert.equal(update.ok?.doc?._v, 2, JSON.stringify(update));
      assert.deepEqual(del.ok, { v: 2 });
      assert.deepEqual(get1.ok?.doc, created, `get sent before the update and the delete sees version 1: ${trace}`);
      assert.deepEqual(byId(list1.ok?.docs ?? [])[id], created, `list sent before the update sees version 1: ${trace}`);
      assert.deepEqual(get2.ok?.doc, update.ok.doc, `get sent between the update and the delete sees version 2: ${trace}`);
      assertError(get3, 'not_found', 'get after the delete');
      await c.close();
    });

    test('malformed commands are bad_request', async () => {
      const c = await Client.connect(server.wsUrl);
      assertError(await c.request('create', { coll: 'todos' }), 'bad_request', 'no data');
      assertError(await c.request('create', { coll: 'todos', data: [1] }), 'bad_request', 'array data');
      assertError(await c.request('update', { coll: 'todos', data: {} }), 'bad_request', 'no doc');
      assertError(await c.request('get', { coll: 'todos' }), 'bad_request', 'get without doc');
      assertError(await c.request('list', {}), 'bad_request', 'no coll');
      assertError(await c.request('update', { coll: 'todos', doc: 'x', data: {}, v: 'one' }), 'bad_request', 'v string');
      assertError(await c.request('create', { coll: 'todos', data: {}, key: '' }), 'bad_request', 'empty key');
      assertError(await c.request('update', { coll: 'todos', doc: 'me', data: { a: 1 } }), 'bad_request',
                  '"me" outside per_user');
      await c.call('ping');
      await c.close();
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('CRUD over REST', () => {
    test('POST 201 + Location + ETag, GET, PUT/PATCH with If-Match "N", N and W/"N", DELETE', async () => {
      const cookie = await newCookie(server);
      const post = await rest(server, 'POST', '/v1/collections/todos', { cookie, body: { title: 'rest', done: false } });
      assert.equal(post.status, 201, post.body);
      assert.match(post.headers['content-type'], /^application\/json/);
      const doc = post.json();
      assert.equal(doc._v, 1);
      assert.equal(doc.title, 'rest');
      assert.equal(post.headers.location, `/v1/collections/todos/${doc.id}`);
      assert.equal(post.headers.etag, '"1"');

      const get = await rest(server, 'GET', post.headers.location, { cookie });
      assert.equal(get.status, 200);
      assert.deepEqual(get.json(), doc);
      assert.equal(get.headers.etag, '"1"');

      const put = await rest(server, 'PUT', `/v1/collections/todos/${doc.id}`,
                             { cookie, body: { title: 'put' }, headers: { 'If-Match': '"1"' } });
      assert.equal(put.status, 200, put.body);
      assert.deepEqual(put.json(), { id: doc.id, _v: 2, _owner: doc._owner, title: 'put' });
      assert.equal(put.headers.etag, '"2"');

      const patch = await rest(server, 'PATCH', `/v1/collections/todos/${doc.id}`,
                               { cookie, body: { done: true }, headers: { 'If-Match': '2' } });
      assert.equal(patch.status, 200, patch.body);
      assert.deepEqual(patch.json(), { id: doc.id, _v: 3, _owner: doc._owner, title: 'put', done: true });
      assert.equal(patch.headers.etag, '"3"');

      const weak = await rest(server, 'PUT', `/v1/collections/todos/${doc.id}`,
                              { cookie, body: { title: 'weak' }, headers: { 'If-Match': 'W/"3"' } });
      assert.equal(weak.status, 200, weak.body);
      assert.equal(weak.json()._v, 4);
      assert.equal(weak.headers.etag, '"4"');

      // Backbone sends the fetched attributes back: _v in the body is the expected version.
      const body = { ...weak.json(), title: 'backbone' };
      const bb = await rest(server, 'PUT', `/v1/collections/todos/${doc.id}`, { cookie, body });
      assert.equal(bb.status, 200, bb.body);
      assert.equal(bb.json()._v, 5);

      const del = await rest(server, 'DELETE', `/v1/collections/todos/${doc.id}`, { cookie, headers: { 'If-Match': '"5"' } });
      assert.equal(del.status, 200, del.body);
      assert.deepEqual(del.json(), { v: 5 });
      assertRestError(await rest(server, 'GET', `/v1/collections/todos/${doc.id}`, { cookie }), 404, 'not_found', 'GET deleted');
      assertRestError(await rest(server, 'DELETE', `/v1/collections/todos/${doc.id}`, { cookie }), 404, 'not_found',
                      'DELETE deleted');
      assertRestError(await rest(server, 'PATCH', `/v1/collections/todos/${doc.id}`, { cookie, body: { a: 1 } }), 404,
                      'not_found', 'PATCH deleted');
      // PUT creates what does not exist (201, its version 1), except with If-None-Match: * when it exists.
      const recreated = await rest(server, 'PUT', `/v1/collections/todos/${doc.id}`, { cookie, body: { a: 1 } });
      assert.equal(recreated.status, 201);
      assert.equal(recreated.headers.location, `/v1/collections/todos/${doc.id}`);
      assert.equal(recreated.headers.etag, '"1"');
      const exists = await rest(server, 'PUT', `/v1/collections/todos/${doc.id}`,
                                { cookie, body: { a: 2 }, headers: { 'if-none-match': '*' } });
      assert.equal(exists.status, 409, 'PUT If-None-Match: * of an existing document');
      assert.deepEqual(exists.json(), recreated.json(), 'the 409 carries the current document');
      const fresh = await rest(server, 'PUT', '/v1/collections/todos/put-created',
                               { cookie, body: { a: 3 }, headers: { 'if-none-match': '*' } });
      assert.equal(fresh.status, 201);
      assertRestError(await rest(server, 'PUT', '/v1/collections/todos/put-created',
                                 { cookie, body: { a: 3 }, headers: { 'if-none-match': '"1"' } }), 400, 'bad_request',
                      'If-None-Match other than *');
    });

    test('GET the collection: the array with X-Rtsync-Offset and X-Rtsync-Epoch matching list', async () => {
      const c = await Client.connect(server.wsUrl);
      const doc = (await c.call('create', { coll: 'todos', data: { listed: true } })).doc;
      const res = await rest(server, 'GET', '/v1/collections/todos');
      const list = await c.call('list', { coll: 'todos' });
      assert.equal(res.status, 200);
      const docs = res.json();
      assert.ok(Array.isArray(docs));
      assert.deepEqual(byId(docs)[doc.id], doc);
      assert.deepEqual(byId(docs), byId(list.docs), 'REST and WebSocket list the same documents');
      assert.equal(res.headers['x-rtsync-offset'], String(list.offset));
      assert.equal(res.headers['x-rtsync-epoch'], list.epoch);
      await c.close();
    });

    test('400 for a bad body, a bad If-Match and an invalid attribute; 404 for an unknown document', async () => {
      const cookie = await newCookie(server);
      assertRestError(await rest(server, 'POST', '/v1/collections/todos', { cookie, body: 'not json' }), 400,
                      'bad_request', 'non-JSON body');
      assertRestError(await rest(server, 'POST', '/v1/collections/todos', { cookie, body: [1, 2] }), 400,
                      'bad_request', 'array body');
      assertRestError(await rest(server, 'POST', '/v1/collections/todos', { cookie, body: { _x: 1 } }), 400,
                      'invalid', 'reserved attribute');
      const doc = (await rest(server, 'POST', '/v1/collections/todos', { cookie, body: { a: 1 } })).json();
      assertRestError(await rest(server, 'PUT', `/v1/collections/todos/${doc.id}`,
                                 { cookie, body: { a: 2 }, headers: { 'If-Match': 'abc' } }), 400, 'bad_request', 'If-Match abc');
      assertRestError(await rest(server, 'GET', '/v1/collections/todos/no-such-doc', { cookie }), 404, 'not_found',
                      'unknown document');
      assert.deepEqual((await rest(server, 'GET', `/v1/collections/todos/${doc.id}`, { cookie })).json(), doc,
                       'nothing changed');
    });

    test('a method an endpoint does not take is 405', async () => {
      for (const [method, p] of [['PUT', '/v1/collections/todos'], ['DELETE', '/v1/collections/todos'],
        ['POST', '/v1/collections/todos/some-id'], ['POST', '/v1/collections/votes/_tally']]) {
        const res = await rest(server, method, p, { body: method === 'DELETE' ? undefined : {} });
        assert.equal(res.status, 405, `${method} ${p}: ${res.status} ${res.body}`);
      }
    });

    test('a document over 64 KiB is 413 / too_large', async () => {
      const cookie = await newCookie(server);
      const big = { text: 'x'.repeat(70 * 1024) };
      assertRestError(await rest(server, 'POST', '/v1/collections/todos', { cookie, body: big }), 413, 'too_large', 'big POST');
    });

    test('a PATCH that makes a document larger than 64 KiB is 413 and changes nothing', async () => {
      // docs/protocol.md §6: "Documents are at most 64 KiB of JSON (too_large)" — the merged document
      // counts, not only the attributes a patch sends.
      const cookie = await newCookie(server);
      const posted = await rest(server, 'POST', '/v1/collections/todos', { cookie, body: { a: 'x'.repeat(40_000) } });
      assert.equal(posted.status, 201, posted.body.slice(0, 200));
      const doc = posted.json();
      const res = await rest(server, 'PATCH', `/v1/collections/todos/${doc.id}`, { cookie, body: { b: 'y'.repeat(40_000) } });
      const now = await rest(server, 'GET', `/v1/collections/todos/${doc.id}`, { cookie });
      assert.equal(res.status, 413, `PATCH answered ${res.status}; the stored document is now ${now.body.length} bytes`);
      assert.deepEqual(now.json(), doc, 'nothing changed');
    });

    test('an Idempotency-Key longer than 256 characters is 400, as the WebSocket key', async () => {
      // docs/protocol.md §6: keys are 1-256 characters; `Idempotency-Key` is the `key`.
      const c = await Client.connect(server.wsUrl);
      const long = 'k'.repeat(257);
      assertError(await c.request('create', { coll: 'idem', data: { long: 1 }, key: long }), 'bad_request', 'WebSocket');
      const res = await rest(server, 'POST', '/v1/collections/idem', { body: { long: 2 }, headers: { 'Idempotency-Key': long } });
      assertRestError(res, 400, 'bad_request', 'REST Idempotency-Key of 257 characters');
      await c.close();
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('conflicts', () => {
    test('WebSocket: stale v is conflict carrying the current doc; nothing changes', async () => {
      const c = await Client.connect(server.wsUrl);
      const doc = (await c.call('create', { coll: 'todos', data: { n: 1 } })).doc;
      const v2 = (await c.call('patch', { coll: 'todos', doc: doc.id, v: 1, data: { n: 2 } })).doc;
      for (const [op, extra] of [['update', { data: { n: 9 } }], ['patch', { data: { n: 9 } }], ['delete', {}]]) {
        const r = await c.request(op, { coll: 'todos', doc: doc.id, v: 1, ...extra });
        assertError(r, 'conflict', `${op} with a stale v`);
        assert.deepEqual(r.error.doc, v2, `${op}: the conflict carries the current document`);
      }
      assert.deepEqual((await c.call('get', { coll: 'todos', doc: doc.id })).doc, v2);
      // A version for a document that no longer exists: conflict with doc null.
      await c.call('delete', { coll: 'todos', doc: doc.id, v: 2 });
      const gone = await c.request('update', { coll: 'todos', doc: doc.id, v: 2, data: { n: 3 } });
      assertError(gone, 'conflict', 'update of a deleted document with v');
      assert.equal(gone.error.doc, null);
      await c.close();
    });

    test('REST: 409 with the current document as the body', async () => {
      const cookie = await newCookie(server);
      const doc = (await rest(server, 'POST', '/v1/collections/todos', { cookie, body: { n: 1 } })).json();
      const v2 = (await rest(server, 'PATCH', `/v1/collections/todos/${doc.id}`,
                             { cookie, body: { n: 2 }, headers: { 'If-Match': '"1"' } })).json();
      assert.equal(v2._v, 2);
      for (const [method, opts] of [
        ['PUT', { body: { n: 9 }, headers: { 'If-Match': '"1"' } }],
        ['PATCH', { body: { n: 9 }, headers: { 'If-Match': 'W/"1"' } }],
        ['PUT', { body: { n: 9, _v: 1 } }],
        ['DELETE', { headers: { 'If-Match': '1' } }],
      ]) {
        const res = await rest(server, method, `/v1/collections/todos/${doc.id}`, { cookie, ...opts });
        assert.equal(res.status, 409, `${method} ${JSON.stringify(opts)}: ${res.body}`);
        assert.deepEqual(res.json(), v2, `${method}: the 409 body is the current document`);
      }
      assert.deepEqual((await rest(server, 'GET', `/v1/collections/todos/${doc.id}`, { cookie })).json(), v2);
      // A version for a document that no longer exists: 409 with null.
      assert.equal((await rest(server, 'DELETE', `/v1/collections/todos/${doc.id}`, { cookie })).status, 200);
      const gone = await rest(server, 'PUT', `/v1/collections/todos/${doc.id}`,
                              { cookie, body: { n: 3 }, headers: { 'If-Match': '"2"' } });
      assert.equal(gone.status, 409, gone.body);
      assert.equal(gone.json(), null);
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('read = "owner" and per_user isolation', () => {
    test('A cannot get, list, update, patch or delete B\'s document (WebSocket and REST)', async () => {
      const A = await newUser(server);
      const B = await newUser(server);
      assert.notEqual(A.id, B.id);

      // per_user tally collection: the id is the user id; `me` names it.
      const bVote = (await B.ws.call('create', { coll: 'votes', data: { q1: 1, q2: 2 } })).doc;
      assert.equal(bVote.id, B.id);
      assert.equal(bVote._owner, B.id);
      // Upsert: an update of one's own document that does not exist yet creates it; v = 0 is "create only".
      assertError(await A.ws.request('update', { coll: 'votes', doc: 'me', v: 1, data: { q1: 3 } }), 'conflict',
                  'update with v > 0 of a document that does not exist');
      const aCreated = (await A.ws.call('update', { coll: 'votes', doc: 'me', v: 0, data: { q1: 0 } })).doc;
      assert.equal(aCreated.id, A.id);
      assert.equal(aCreated._v, 1);
      assertError(await A.ws.request('update', { coll: 'votes', doc: 'me', v: 0, data: { q1: 1 } }), 'conflict',
                  'create-only update of a document that exists');
      const second = await A.ws.request('create', { coll: 'votes', data: { q1: 2 } });
      assertError(second, 'conflict', 'second create');
      assert.deepEqual(second.error.doc, aCreated, 'the conflict carries the existing document');
      assertError(await A.ws.request('create', { coll: 'votes', data: { id: B.id, q1: 2 } }), 'permission_denied',
                  'create B\'s document');
      const tallyBefore = (await A.ws.call('tally', { coll: 'votes' })).tally;

      // notes: read/write owner, not per_user.
      const bNote = (await B.ws.call('create', { coll: 'notes', data: { text: 'secret of B' } })).doc;
      const aNote = (await A.ws.call('create', { coll: 'notes', data: { text: 'note of A' } })).doc;

      for (const [coll, doc] of [['votes', bVote], ['notes', bNote]]) {
        assertError(await A.ws.request('get', { coll, doc: doc.id }), 'permission_denied', `${coll}: get`);
        const data = coll === 'votes' ? { q1: 0 } : { text: 'hacked' };
        assertError(await A.ws.request('update', { coll, doc: doc.id, data }), 'permission_denied', `${coll}: update`);
        assertError(await A.ws.request('patch', { coll, doc: doc.id, data }), 'permission_denied', `${coll}: patch`);
        assertError(await A.ws.request('delete', { coll, doc: doc.id }), 'permission_denied', `${coll}: delete`);
        assertError(await A.ws.request('update', { coll, doc: doc.id, v: 1, data }), 'permission_denied',
                    `${coll}: update with v`);

        const url = `/v1/collections/${coll}/${doc.id}`;
        assertRestError(await rest(server, 'GET', url, { cookie: A.cookie }), 403, 'permission_denied', `${coll}: REST GET`);
        assertRestError(await rest(server, 'PUT', url, { cookie: A.cookie, body: data }), 403, 'permission_denied',
                        `${coll}: REST PUT`);
        assertRestError(await rest(server, 'PATCH', url, { cookie: A.cookie, body: data }), 403, 'permission_denied',
                        `${coll}: REST PATCH`);
        assertRestError(await rest(server, 'DELETE', url, { cookie: A.cookie }), 403, 'permission_denied',
                        `${coll}: REST DELETE`);

        const aList = await A.ws.call('list', { coll });
        assert.ok(!aList.docs.some((d) => d.id === doc.id), `${coll}: B's document is not in A's list`);
        assert.ok(aList.docs.every((d) => d._owner === A.id), `${coll}: A lists only its own documents`);
        const aRest = (await rest(server, 'GET', `/v1/collections/${coll}`, { cookie: A.cookie })).json();
        assert.deepEqual(byId(aRest), byId(aList.docs), `${coll}: REST list = WebSocket list`);

        // B still has its document, unchanged.
        assert.deepEqual((await B.ws.call('get', { coll, doc: doc.id })).doc, doc, `${coll}: B's document unchanged`);
        assert.ok((await B.ws.call('list', { coll })).docs.some((d) => d.id === doc.id), `${coll}: B lists it`);
      }
      assert.ok((await A.ws.call('list', { coll: 'notes' })).docs.some((d) => d.id === aNote.id));
      assert.deepEqual((await A.ws.call('tally', { coll: 'votes' })).tally, tallyBefore, 'the tally did not move');

      // `me` over REST names the caller's own document.
      const meRest = await rest(server, 'GET', '/v1/collections/votes/me', { cookie: A.cookie });
      assert.equal(meRest.status, 200, meRest.body);
      assert.deepEqual(meRest.json(), aCreated);
      assert.deepEqual((await B.ws.call('get', { coll: 'votes', doc: 'me' })).doc, bVote);
      const put = await rest(server, 'PUT', '/v1/collections/votes/me', { cookie: A.cookie, body: { q1: 2 } });
      assert.equal(put.status, 200, put.body);
      assert.equal(put.json().id, A.id);
      await A.ws.close();
      await B.ws.close();
    });

    test('A\'s coll: subscription never receives B\'s changes (pushes, recovery, history)', async () => {
      const A = await newUser(server);
      const B = await newUser(server);
      const stranger = await Client.connect(server.wsUrl);
      const subs = {};
      for (const coll of ['notes', 'votes']) {
        subs[coll] = await A.ws.call('sub', { ch: `coll:${coll}` });
        await stranger.call('sub', { ch: `coll:${coll}` });
      }

      // B: a full life cycle in both collections, acknowledged before A's marker writes.
      const bNote = (await B.ws.call('create', { coll: 'notes', data: { text: 'b1' } })).doc;
      await B.ws.call('update', { coll: 'notes', doc: bNote.id, data: { text: 'b2' } });
      await B.ws.call('patch', { coll: 'notes', doc: bNote.id, data: { extra: 1 } });
      await B.ws.call('delete', { coll: 'notes', doc: bNote.id });
      const bNote2 = (await B.ws.call('create', { coll: 'notes', data: { text: 'b3' } })).doc;
      await B.ws.call('create', { coll: 'votes', data: { q1: 1 } });
      await B.ws.call('patch', { coll: 'votes', doc: 'me', data: { q2: 3 } });

      // A's own writes: their pushes come after B's in channel order.
      const aNote = (await A.ws.call('create', { coll: 'notes', data: { text: 'a1' } })).doc;
      const aVote = (await A.ws.call('create', { coll: 'votes', data: { q2: 1 } })).doc;
      const aNoteMsg = await A.ws.next((o) => o.op === 'msg' && o.ch === 'coll:notes' && o.data.doc?.id === aNote.id);
      const aVoteMsg = await A.ws.next((o) => o.op === 'msg' && o.ch === 'coll:votes' && o.data.doc?.id === aVote.id);
      assert.deepEqual(aNoteMsg.data, { type: 'upsert', doc: aNote });
      assert.deepEqual(aVoteMsg.data, { type: 'upsert', doc: aVote });
      const leaked = A.ws.peek((o) => o.op === 'msg');
      assert.deepEqual(leaked, [], 'A received no change of B\'s documents');
      assert.ok(aNoteMsg.offset >= subs.notes.offset + 6, 'B\'s 5 changes took offsets before A\'s');

      // B received its own changes (so the test would see a leak if there were one).
      const bHist = await B.ws.call('history', { ch: 'coll:notes', since: subs.notes.offset });
      assert.deepEqual(bHist.pubs.map((p) => p.data.type), ['upsert', 'upsert', 'upsert', 'delete', 'upsert']);
      assert.deepEqual(bHist.pubs.at(-1).data.doc, bNote2);
      assert.deepEqual(bHist.pubs[3].data, { type: 'delete', id: bNote.id, _v: 3 });

      // History and recovery as A: only A's own.
      for (const [coll, mine] of [['notes', aNote], ['votes', aVote]]) {
        const h = await A.ws.call('history', { ch: `coll:${coll}`, since: subs[coll].offset });
        assert.deepEqual(h.pubs.map((p) => p.data), [{ type: 'upsert', doc: mine }], `${coll}: A's history`);
        const A2 = await Client.connect(server.wsUrl, { headers: { Cookie: A.cookie } });
        const rec = await A2.call('sub', { ch: `coll:${coll}`, since: { offset: subs[coll].offset, epoch: subs[coll].epoch } });
        assert.equal(rec.recovered, true);
        assert.deepEqual(rec.pubs.map((p) => p.data), [{ type: 'upsert', doc: mine }], `${coll}: A's recovery`);
        const restH = await rest(server, 'GET', `/v1/channels/coll:${coll}/history?since=${subs[coll].offset}`,
                                 { cookie: A.cookie });
        assert.equal(restH.status, 200, restH.body);
        assert.deepEqual(restH.json().pubs.map((p) => p.data), [{ type: 'upsert', doc: mine }], `${coll}: REST history`);
        await A2.close();
      }
      // Someone else sees none of it.
      await stranger.call('ping');
      assert.deepEqual(stranger.peek((o) => o.op === 'msg'), [], 'a third user received nothing');
      const sh = await stranger.call('history', { ch: 'coll:notes', since: subs.notes.offset });
      assert.deepEqual(sh.pubs, []);
      await Promise.all([A.ws.close(), B.ws.close(), stranger.close()]);
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('write rules', () => {
    test('write = "all": anyone updates and deletes; the owner stays the creator', async () => {
      const a = await Client.connect(server.wsUrl);
      const b = await Client.connect(server.wsUrl);
      const doc = (await a.call('create', { coll: 'todos', data: { t: 1 } })).doc;
      const byB = (await b.call('update', { coll: 'todos', doc: doc.id, data: { t: 2 } })).doc;
      assert.equal(byB._owner, a.hello.user);
      assert.equal(byB._v, 2);
      const patched = (await b.call('patch', { coll: 'todos', doc: doc.id, data: { u: 1 } })).doc;
      assert.equal(patched._owner, a.hello.user);
      assert.deepEqual(await b.call('delete', { coll: 'todos', doc: doc.id }), { v: 3 });
      await a.close();
      await b.close();
    });

    test('write = "owner": others read but cannot change; they create their own', async () => {
      const a = await newUser(server);
      const b = await newUser(server);
      const doc = (await a.ws.call('create', { coll: 'shared', data: { t: 1 } })).doc;
      assert.deepEqual((await b.ws.call('get', { coll: 'shared', doc: doc.id })).doc, doc, 'read = "all"');
      for (const [op, extra] of [['update', { data: { t: 2 } }], ['patch', { data: { t: 2 } }], ['delete', {}]]) {
        assertError(await b.ws.request(op, { coll: 'shared', doc: doc.id, ...extra }), 'permission_denied', op);
      }
      assertRestError(await rest(server, 'PUT', `/v1/collections/shared/${doc.id}`, { cookie: b.cookie, body: { t: 3 } }),
                      403, 'permission_denied', 'REST PUT by another');
      assertRestError(await rest(server, 'DELETE', `/v1/collections/shared/${doc.id}`, { cookie: b.cookie }),
                      403, 'permission_denied', 'REST DELETE by another');
      const own = (await b.ws.call('create', { coll: 'shared', data: { t: 9 } })).doc;
      assert.equal(own._owner, b.id);
      assert.deepEqual((await a.ws.call('get', { coll: 'shared', doc: doc.id })).doc, doc, 'unchanged');
      assert.equal((await a.ws.call('patch', { coll: 'shared', doc: doc.id, data: { t: 4 } })).doc._v, 2, 'owner writes');
      await a.ws.close();
      await b.ws.close();
    });

    test('write = "none": clients never write', async () => {
      const c = await Client.connect(server.wsUrl);
      assertError(await c.request('create', { coll: 'readonly', data: { a: 1 } }), 'permission_denied', 'create');
      assertError(await c.request('update', { coll: 'readonly', doc: 'x', data: { a: 1 } }), 'permission_denied', 'update');
      assertError(await c.request('patch', { coll: 'readonly', doc: 'x', data: { a: 1 } }), 'permission_denied', 'patch');
      assertError(await c.request('delete', { coll: 'readonly', doc: 'x' }), 'permission_denied', 'delete');
      assertRestError(await rest(server, 'POST', '/v1/collections/readonly', { body: { a: 1 } }), 403,
                      'permission_denied', 'REST POST');
      assert.deepEqual((await c.call('list', { coll: 'readonly' })).docs, [], 'reading works, nothing was written');
      const res = await rest(server, 'GET', '/v1/collections/readonly');
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), []);
      await c.close();
    });

    test('an undeclared collection is not_found / 404', async () => {
      const c = await Client.connect(server.wsUrl);
      for (const [op, fields] of [
        ['list', {}], ['get', { doc: 'x' }], ['create', { data: {} }], ['update', { doc: 'x', data: {} }],
        ['patch', { doc: 'x', data: {} }], ['delete', { doc: 'x' }], ['tally', {}],
      ]) {
        assertError(await c.request(op, { coll: 'nope', ...fields }), 'not_found', op);
      }
      assertError(await c.request('sub', { ch: 'coll:nope' }), 'not_found', 'sub coll:nope');
      assertError(await c.request('sub', { ch: 'tally:nope' }), 'not_found', 'sub tally:nope');
      assertError(await c.request('tally', { coll: 'todos' }), 'not_found', 'tally of a collection without one');
      for (const [method, p] of [['GET', '/v1/collections/nope'], ['POST', '/v1/collections/nope'],
        ['GET', '/v1/collections/nope/x'], ['PUT', '/v1/collections/nope/x'], ['DELETE', '/v1/collections/nope/x'],
        ['GET', '/v1/collections/nope/_tally']]) {
        assertRestError(await rest(server, method, p, { body: method === 'PUT' || method === 'POST' ? {} : undefined }),
                        404, 'not_found', `${method} ${p}`);
      }
      await c.close();
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('change feed', () => {
    test('upsert and delete shapes; pub on coll: and tally: is refused', async () => {
      const c = await Client.connect(server.wsUrl);
      const s = await c.call('sub', { ch: 'coll:todos' });
      const doc = (await c.call('create', { coll: 'todos', data: { feed: 1 } })).doc;
      const upd = (await c.call('patch', { coll: 'todos', doc: doc.id, data: { feed: 2 } })).doc;
      await c.call('delete', { coll: 'todos', doc: doc.id });
      const msgs = await c.messagesUntil('coll:todos', s.offset + 3);
      assert.deepEqual(msgs.map((m) => m.offset), [s.offset + 1, s.offset + 2, s.offset + 3]);
      assert.deepEqual(msgs.map((m) => m.data), [
        { type: 'upsert', doc },
        { type: 'upsert', doc: upd },
        { type: 'delete', id: doc.id, _v: 2 },
      ]);
      for (const m of msgs) assert.equal(typeof m.ts, 'number');

      for (const ch of ['coll:todos', 'tally:votes', 'coll:nope']) {
        const r = await c.request('pub', { ch, data: { type: 'upsert', doc: { id: 'forged' } } });
        assert.ok(r.error, `pub on ${ch} refused`);
        assert.ok(['permission_denied', 'not_found'].includes(r.error.code), JSON.stringify(r));
        if (!ch.endsWith('nope')) assert.equal(r.error.code, 'permission_denied', ch);
      }
      const restPub = await rest(server, 'POST', '/v1/channels/coll:todos/publish', { body: { type: 'upsert' } });
      assertRestError(restPub, 403, 'permission_denied', 'REST publish on coll:');
      assertRestError(await rest(server, 'POST', '/v1/channels/tally:votes/publish', { body: { total: 0 } }), 403,
                      'permission_denied', 'REST publish on tally:');
      // Nothing was forged into the feed.
      const h = await c.call('history', { ch: 'coll:todos', since: s.offset });
      assert.equal(h.offset, s.offset + 3);
      await c.close();
    });

    test('list then sub with since = list\'s offset: no gap, no duplicate, while another client writes', async () => {
      const writer = await Client.connect(server.wsUrl);
      const reader = await Client.connect(server.wsUrl);
      const OPS = 240;
      const ids = [];
      let acked = 0;
      let readerStarted;
      const readerGo = new Promise((r) => { readerStarted = r; });
      const writing = (async () => {
        let n = 0;
        const worker = async () => {
          while (n < OPS) {
            const i = n++;
            if (i < 60 || ids.length === 0) {
              const d = (await writer.call('create', { coll: 'feed', data: { i } })).doc;
              ids.push(d.id);
            } else if (i % 5 === 0 && ids.length > 1) {
              const id = ids.shift();
              await writer.call('delete', { coll: 'feed', doc: id });
            } else {
              await writer.call('patch', { coll: 'feed', doc: ids[i % ids.length], data: { i } });
            }
            if (++acked === 30) readerStarted();
          }
        };
        await Promise.all(Array.from({ length: 6 }, worker));
      })();

      await readerGo;
      const list = await reader.call('list', { coll: 'feed' });
      const sub = await reader.call('sub', { ch: 'coll:feed', since: { offset: list.offset, epoch: list.epoch } });
      assert.equal(sub.recovered, true, 'everything after the list is still kept');
      await writing;
      const final = await reader.call('list', { coll: 'feed' });
      assert.ok(final.offset > list.offset + 50, `writes continued after the list (${list.offset} -> ${final.offset})`);

      const changes = [...sub.pubs];
      if (sub.offset < final.offset) changes.push(...await reader.messagesUntil('coll:feed', final.offset));
      assert.deepEqual(changes.map((p) => p.offset),
                       Array.from({ length: final.offset - list.offset }, (_, k) => list.offset + 1 + k),
                       'every change after the list exactly once, in order');
      const state = byId(list.docs);
      for (const p of changes) {
        if (p.data.type === 'upsert') state[p.data.doc.id] = p.data.doc;
        else if (p.data.type === 'delete') {
          assert.ok(state[p.data.id], `delete of a document the reader knows: ${p.data.id}`);
          assert.equal(state[p.data.id]._v, p.data._v, 'the delete names the last version the reader saw');
          delete state[p.data.id];
        } else assert.fail(`unexpected change ${JSON.stringify(p.data)}`);
      }
      assert.deepEqual(state, byId(final.docs), 'list + changes = the final list');
      assert.deepEqual(Object.keys(state).sort(), [...ids].sort(), 'and what the writer left');
      await writer.close();
      await reader.close();
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('tallies', () => {
    test('tally op, REST _tally and tally:NAME pushes follow create, resubmit, patch and delete', async () => {
      const watcher = await Client.connect(server.wsUrl);
      const t0 = await watcher.call('tally', { coll: 'ballot' });
      assert.deepEqual(norm(t0.tally), { total: 0, counts: {} });
      assert.equal(typeof t0.offset, 'number');
      assert.equal(typeof t0.epoch, 'string');
      const s = await watcher.call('sub', { ch: 'tally:ballot' });
      assert.equal(s.offset, t0.offset);
      assert.equal(s.epoch, t0.epoch);

      const users = [];
      for (let i = 0; i < 3; i++) users.push(await newUser(server));
      const docs = new Map();   // user id -> attributes
      const steps = [
        [0, 'create', { q1: 1, q2: 2 }],
        [1, 'create', { q1: 1 }],
        [2, 'create', { q2: 0 }],
        [0, 'update', { q1: 3 }],          // resubmission: q1 moves 1 -> 3, q2 is dropped
        [1, 'patch', { q2: 3 }],           // adds q2
        [1, 'patch', { q1: null }],        // removes q1
        [2, 'delete'],
        [2, 'create', { q1: 0, q2: 0 }],   // again after the delete
      ];
      let offset = s.offset;
      for (const [u, op, data] of steps) {
        const U = users[u];
        const fields = { coll: 'ballot', ...(op === 'create' ? {} : { doc: 'me' }), ...(data ? { data } : {}) };
        await U.ws.call(op, fields);
        if (op === 'delete') docs.delete(U.id);
        else if (op === 'patch') {
          const cur = { ...docs.get(U.id) };
          for (const [k, v] of Object.entries(data)) { if (v === null) delete cur[k]; else cur[k] = v; }
          docs.set(U.id, cur);
        } else docs.set(U.id, { ...data });
        const expected = expectedTally([...docs.values()]);
        const push = await watcher.next((o) => o.op === 'msg' && o.ch === 'tally:ballot');
        assert.equal(push.offset, offset + 1, `${op}: one tally publication per (sequential) write`);
        offset = push.offset;
        assert.deepEqual(norm(push.data), expected, `tally:ballot after ${op} ${JSON.stringify(data)}`);
        assert.deepEqual(norm((await watcher.call('tally', { coll: 'ballot' })).tally), expected, `tally op after ${op}`);
      }
      const res = await rest(server, 'GET', '/v1/collections/ballot/_tally');
      assert.equal(res.status, 200, res.body);
      const body = res.json();
      assert.deepEqual(norm(body.tally), expectedTally([...docs.values()]));
      assert.equal(body.offset, offset);
      assert.equal(body.epoch, s.epoch);
      assert.deepEqual(norm(body.tally), { total: 3, counts: { q1: { 3: 1, 0: 1 }, q2: { 3: 1, 0: 1 } } },
                       'the hand-computed final tally');
      for (const U of users) await U.ws.close();
      await watcher.close();
    });

    test('invalid tally values change nothing: no document change, no tally change, no publication', async () => {
      const U = await newUser(server);
      const watcher = await Client.connect(server.wsUrl);
      const doc = (await U.ws.call('create', { coll: 'strict', data: { q1: 2, q2: 1 } })).doc;
      const sT = await watcher.call('sub', { ch: 'tally:strict' });
      const sC = await U.ws.call('sub', { ch: 'coll:strict' });
      const before = (await watcher.call('tally', { coll: 'strict' })).tally;

      const bad = [{ q1: 4 }, { q1: -1 }, { q2: '1' }, { q1: 1.5 }, { q1: true }, { q3: 1 }, { q1: 1, comment: 'x' }];
      for (const data of bad) {
        for (const op of ['update', 'patch']) {
          assertError(await U.ws.request(op, { coll: 'strict', doc: 'me', data }), 'invalid', `${op} ${JSON.stringify(data)}`);
        }
        assertRestError(await rest(server, 'PUT', '/v1/collections/strict/me', { cookie: U.cookie, body: data }), 400,
                        'invalid', `REST PUT ${JSON.stringify(data)}`);
        assertRestError(await rest(server, 'PATCH', '/v1/collections/strict/me', { cookie: U.cookie, body: data }), 400,
                        'invalid', `REST PATCH ${JSON.stringify(data)}`);
      }
      assertError(await U.ws.request('update', { coll: 'strict', doc: 'me', data: { q1: null } }), 'invalid',
                  'null in an update');
      const V = await newUser(server);
      assertError(await V.ws.request('create', { coll: 'strict', data: { q1: 9 } }), 'invalid', 'create with 9');
      assertRestError(await rest(server, 'POST', '/v1/collections/strict', { cookie: V.cookie, body: { q2: 4 } }), 400,
                      'invalid', 'REST POST with 4');
      assertError(await V.ws.request('get', { coll: 'strict', doc: 'me' }), 'not_found', 'V has no document');

      assert.deepEqual((await U.ws.call('get', { coll: 'strict', doc: 'me' })).doc, doc, 'the document is unchanged');
      assert.deepEqual((await watcher.call('tally', { coll: 'strict' })).tally, before, 'the tally is unchanged');
      // The next valid write takes the very next offsets: nothing was published in between.
      const good = (await U.ws.call('patch', { coll: 'strict', doc: 'me', data: { q2: 3 } })).doc;
      const tPush = await watcher.next((o) => o.op === 'msg' && o.ch === 'tally:strict');
      assert.equal(tPush.offset, sT.offset + 1);
      assert.deepEqual(norm(tPush.data), { total: 1, counts: { q1: { 2: 1 }, q2: { 3: 1 } } });
      const cPush = await U.ws.next((o) => o.op === 'msg' && o.ch === 'coll:strict');
      assert.equal(cPush.offset, sC.offset + 1);
      assert.deepEqual(cPush.data, { type: 'upsert', doc: good });
      await Promise.all([U.ws.close(), V.ws.close(), watcher.close()]);
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('grouped tallies', () => {
    test('each group has its own exact tally, live on tally:NAME:GROUP, over WebSocket and REST', async () => {
      const watcher = await Client.connect(server.wsUrl);
      const first = await watcher.call('tally', { coll: 'rooms', group: 'red' });
      assert.deepEqual(first.tally, { total: 0, counts: { q1: { 0: 0, 1: 0, 2: 0 } } });
      await watcher.call('sub', { ch: 'tally:rooms:red', since: { offset: first.offset, epoch: first.epoch } });
      const U = await newUser(server);
      const V = await newUser(server);
      await U.ws.call('update', { coll: 'rooms', doc: 'me', data: { room: 'red', q1: 1 } });
      let push = await watcher.next((o) => o.op === 'msg' && o.ch === 'tally:rooms:red');
      assert.deepEqual(push.data, { total: 1, counts: { q1: { 0: 0, 1: 1, 2: 0 } } });
      await V.ws.call('update', { coll: 'rooms', doc: 'me', data: { room: 'blue', q1: 2 } });
      // U moves to blue: red's tally changes in the same commit.
      await U.ws.call('patch', { coll: 'rooms', doc: 'me', data: { room: 'blue' } });
      push = await watcher.next((o) => o.op === 'msg' && o.ch === 'tally:rooms:red');
      assert.deepEqual(push.data, { total: 0, counts: { q1: { 0: 0, 1: 0, 2: 0 } } });
      assert.deepEqual((await watcher.call('tally', { coll: 'rooms', group: 'blue' })).tally,
                       { total: 2, counts: { q1: { 0: 0, 1: 1, 2: 1 } } });
      assert.deepEqual((await watcher.call('tally', { coll: 'rooms' })).tally, { total: 2, counts: { q1: { 0: 0, 1: 1, 2: 1 } } });
      const rest = await httpRequest(`${server.url}/v1/collections/rooms/_tally?group=blue`);
      assert.equal(rest.status, 200);
      assert.equal(rest.json().tally.total, 2);

      // Bad groups: on a write (invalid), in a read or a channel name (bad_request / not_found).
      assertError(await U.ws.request('patch', { coll: 'rooms', doc: 'me', data: { room: 'no spaces' } }), 'invalid', 'group with a space');
      assertError(await U.ws.request('patch', { coll: 'rooms', doc: 'me', data: { room: 7 } }), 'invalid', 'group not a string');
      assertError(await U.ws.request('patch', { coll: 'rooms', doc: 'me', data: { room: 'x'.repeat(33) } }), 'invalid', 'group too long');
      assertError(await watcher.request('tally', { coll: 'rooms', group: 'a b' }), 'bad_request', 'read of a bad group');
      assertError(await watcher.request('tally', { coll: 'votes', group: 'red' }), 'bad_request', 'not grouped');
      assertError(await watcher.request('sub', { ch: 'tally:votes:red' }), 'not_found', 'channel of an ungrouped tally');
      assertError(await watcher.request('pub', { ch: 'tally:rooms:red', data: 1 }), 'permission_denied', 'server-owned');
      assert.equal((await httpRequest(`${server.url}/v1/collections/rooms/_tally?group=`)).status, 400);
      await Promise.all([watcher.close(), U.ws.close(), V.ws.close()]);
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('idempotency keys', () => {
    test('WebSocket: a retry with the same key returns the first result and applies nothing', async () => {
      const U = await newUser(server);
      const c1 = (await U.ws.call('create', { coll: 'idem', data: { a: 1 }, key: 'create-1' })).doc;
      const before = await U.ws.call('list', { coll: 'idem' });
      // Retry on the same connection, then from a new connection of the same user (a reconnect).
      const r1 = (await U.ws.call('create', { coll: 'idem', data: { a: 1 }, key: 'create-1' })).doc;
      const ws2 = await Client.connect(server.wsUrl, { headers: { Cookie: U.cookie } });
      assert.equal(ws2.hello.user, U.id);
      const r2 = (await ws2.call('create', { coll: 'idem', data: { a: 1 }, key: 'create-1' })).doc;
      assert.deepEqual(r1, c1);
      assert.deepEqual(r2, c1);
      const after1 = await U.ws.call('list', { coll: 'idem' });
      assert.equal(after1.docs.length, before.docs.length, 'no second document');
      assert.equal(after1.offset, before.offset, 'no second change published');

      const u1 = (await U.ws.call('patch', { coll: 'idem', doc: c1.id, data: { n: 1 }, key: 'patch-1' })).doc;
      assert.equal(u1._v, 2);
      const u2 = (await ws2.call('patch', { coll: 'idem', doc: c1.id, data: { n: 1 }, key: 'patch-1' })).doc;
      assert.deepEqual(u2, u1);
      assert.equal((await U.ws.call('get', { coll: 'idem', doc: c1.id })).doc._v, 2, 'applied once');

      const d1 = await U.ws.call('delete', { coll: 'idem', doc: c1.id, key: 'delete-1' });
      assert.deepEqual(d1, { v: 2 });
      assert.deepEqual(await ws2.call('delete', { coll: 'idem', doc: c1.id, key: 'delete-1' }), { v: 2 },
                       'a retried delete answers as the first did, not not_found');

      // A failed write is not remembered: the same key works once the write can succeed.
      const d = (await U.ws.call('create', { coll: 'idem', data: { a: 1 } })).doc;
      assertError(await U.ws.request('update', { coll: 'idem', doc: d.id, v: 7, data: { a: 2 }, key: 'retry-after-fail' }),
                  'conflict', 'stale v');
      const ok = (await U.ws.call('update', { coll: 'idem', doc: d.id, v: 1, data: { a: 2 }, key: 'retry-after-fail' })).doc;
      assert.equal(ok._v, 2);

      // Keys belong to a user: another user's same key is a different write.
      const other = await newUser(server);
      const o1 = (await other.ws.call('create', { coll: 'idem', data: { a: 1 }, key: 'create-1' })).doc;
      assert.notEqual(o1.id, c1.id);
      assert.equal(o1._owner, other.id);
      await Promise.all([U.ws.close(), ws2.close(), other.ws.close()]);
    });

    test('WebSocket outbox: hello names the client; a write with seq applies once, however resent; bad ones are bad_request', async () => {
      const U = await newUser(server);
      const client = 'outbox-' + Math.random().toString(36).slice(2).padEnd(12, 'x');
      assertError(await U.ws.request('create', { coll: 'idem', data: {}, seq: 1 }), 'bad_request', 'seq before hello');
      assert.deepEqual(await U.ws.call('hello', { client, settled: 0 }), {});
      const c1 = (await U.ws.call('create', { coll: 'idem', data: { o: 1 }, seq: 1 })).doc;
      const p1 = await U.ws.call('pub', { ch: 'outboxes', data: { o: 1 }, seq: 2 });
      const before = await U.ws.call('list', { coll: 'idem' });
      // Sent again on a new connection of the same user (a reload): the first results, nothing applied.
      const ws2 = await Client.connect(server.wsUrl, { headers: { Cookie: U.cookie } });
      await ws2.call('hello', { client, settled: 0 });
      assert.deepEqual((await ws2.call('create', { coll: 'idem', data: { o: 1 }, seq: 1 })).doc, c1);
      assert.deepEqual(await ws2.call('pub', { ch: 'outboxes', data: { o: 1 }, seq: 2 }), p1);
      const after1 = await ws2.call('list', { coll: 'idem' });
      assert.equal(after1.offset, before.offset, 'no second change');
      assert.equal((await ws2.call('history', { ch: 'outboxes' })).pubs.length, 1, 'one publication');
      // Settled seqs are never applied again; a new one is.
      await ws2.call('hello', { client, settled: 2 });
      assertError(await ws2.request('create', { coll: 'idem', data: { o: 1 }, seq: 2 }), 'bad_request', 'settled seq');
      assert.equal((await ws2.call('patch', { coll: 'idem', doc: c1.id, data: { o: 2 }, seq: 3 })).doc._v, 2);
      // Another user's same client and seq is a write of its own.
      const other = await newUser(server);
      await other.ws.call('hello', { client });
      assert.notEqual((await other.ws.call('create', { coll: 'idem', data: { o: 1 }, seq: 1 })).doc.id, c1.id);

      for (const [fields, what] of [
        [{}, 'no client'], [{ client: 'short' }, 'short client'], [{ client: 'x'.repeat(65) }, 'long client'],
        [{ client: 'bad/client-id-1234' }, 'a slash'], [{ client, settled: -1 }, 'negative settled'],
        [{ client, settled: 2 ** 53 }, 'settled past 2^53-1'],
      ]) assertError(await U.ws.request('hello', fields), 'bad_request', what);
      for (const [fields, what] of [
        [{ seq: 0 }, 'seq 0'], [{ seq: 2 ** 53 }, 'seq past 2^53-1'], [{ seq: 1.5 }, 'fraction'], [{ seq: '4' }, 'a string'],
        [{ seq: 4, key: 'k' }, 'seq with key'],
      ]) assertError(await U.ws.request('create', { coll: 'idem', data: {}, ...fields }), 'bad_request', what);
      await Promise.all([U.ws.close(), ws2.close(), other.ws.close()]);
    });

    test('REST Idempotency-Key: the same 201 and document, one document', async () => {
      const cookie = await newCookie(server);
      const headers = { 'Idempotency-Key': 'rest-create-1' };
      const first = await rest(server, 'POST', '/v1/collections/idem', { cookie, body: { rest: 1 }, headers });
      assert.equal(first.status, 201, first.body);
      const again = await rest(server, 'POST', '/v1/collections/idem', { cookie, body: { rest: 1 }, headers });
      assert.equal(again.status, 201, again.body);
      assert.deepEqual(again.json(), first.json());
      const all = (await rest(server, 'GET', '/v1/collections/idem')).json();
      assert.equal(all.filter((d) => d.rest === 1).length, 1, 'one document');
      const id = first.json().id;
      const p1 = await rest(server, 'PATCH', `/v1/collections/idem/${id}`,
                            { cookie, body: { n: 1 }, headers: { 'Idempotency-Key': 'rest-patch-1' } });
      const p2 = await rest(server, 'PATCH', `/v1/collections/idem/${id}`,
                            { cookie, body: { n: 1 }, headers: { 'Idempotency-Key': 'rest-patch-1' } });
      assert.equal(p1.status, 200);
      assert.deepEqual(p2.json(), p1.json());
      assert.equal((await rest(server, 'GET', `/v1/collections/idem/${id}`, { cookie })).json()._v, 2);
    });

    test('a retried tally write counts once', async () => {
      const U = await newUser(server);
      const watcher = await Client.connect(server.wsUrl);
      const s = await watcher.call('sub', { ch: 'tally:idemvotes' });
      await U.ws.call('create', { coll: 'idemvotes', data: { q1: 2 }, key: 'vote-1' });
      await U.ws.call('create', { coll: 'idemvotes', data: { q1: 2 }, key: 'vote-1' });
      await U.ws.call('patch', { coll: 'idemvotes', doc: 'me', data: { q2: 1 }, key: 'vote-2' });
      const resend = await rest(server, 'PATCH', '/v1/collections/idemvotes/me',
                                { cookie: U.cookie, body: { q2: 1 }, headers: { 'Idempotency-Key': 'vote-2' } });
      assert.equal(resend.status, 200, resend.body);
      const t = await watcher.call('tally', { coll: 'idemvotes' });
      assert.deepEqual(norm(t.tally), { total: 1, counts: { q1: { 2: 1 }, q2: { 1: 1 } } });
      assert.equal(t.offset, s.offset + 2, 'two tally publications, not four');
      await U.ws.close();
      await watcher.close();
    });
  });
});

// ---------------------------------------------------------------------------------------------------

test('idempotency keys survive a restart', { timeout: 90_000 }, async () => {
  const dataDir = tmpDir('rtsync-idem-');
  const s1 = await startServer({ config: CONFIG, dataDir });
  const U = await newUser(s1);
  const doc = (await U.ws.call('create', { coll: 'idem', data: { a: 1 }, key: 'restart-1' })).doc;
  const vote = (await U.ws.call('create', { coll: 'idemvotes', data: { q1: 3 }, key: 'restart-2' })).doc;
  const posted = await rest(s1, 'POST', '/v1/collections/idem',
                            { cookie: U.cookie, body: { b: 1 }, headers: { 'Idempotency-Key': 'restart-3' } });
  assert.equal(posted.status, 201);
  await U.ws.close();
  assert.equal(await s1.stop(), 0);

  const s2 = await startServer({ config: CONFIG, dataDir });
  const ws = await Client.connect(s2.wsUrl, { headers: { Cookie: U.cookie } });
  assert.equal(ws.hello.user, U.id, 'the cookie still names the same user after the restart');
  const before = await ws.call('list', { coll: 'idem' });
  const tBefore = await ws.call('tally', { coll: 'idemvotes' });
  assert.deepEqual((await ws.call('create', { coll: 'idem', data: { a: 1 }, key: 'restart-1' })).doc, doc);
  assert.deepEqual((await ws.call('create', { coll: 'idemvotes', data: { q1: 3 }, key: 'restart-2' })).doc, vote);
  const again = await rest(s2, 'POST', '/v1/collections/idem',
                           { cookie: U.cookie, body: { b: 1 }, headers: { 'Idempotency-Key': 'restart-3' } });
  assert.equal(again.status, 201, again.body);
  assert.deepEqual(again.json(), posted.json());
  const after = await ws.call('list', { coll: 'idem' });
  assert.deepEqual(after.docs, before.docs, 'no document added');
  assert.equal(after.offset, before.offset, 'nothing published');
  const tAfter = await ws.call('tally', { coll: 'idemvotes' });
  assert.deepEqual(tAfter, tBefore, 'the tally counted the vote once');
  assert.deepEqual(norm(tAfter.tally), { total: 1, counts: { q1: { 3: 1 } } });
  await ws.close();
});

// ---------------------------------------------------------------------------------------------------

test('the default config declares pcm: per_user, read/write owner, a tally over every row id, grouped by room', { timeout: 90_000 }, async () => {
  let web = WEB_ROOT;
  if (!fs.existsSync(path.join(WEB_ROOT, 'pcm', 'matrix.json'))) {
    web = tmpDir('rtsync-web-');
    fs.mkdirSync(path.join(web, 'pcm'));
    fs.writeFileSync(path.join(web, 'pcm', 'matrix.json'), JSON.stringify({
      levels: [{ id: 0, name: 'Level 0' }, { id: 1, name: 'Level 1' }, { id: 2, name: 'Level 2' }, { id: 3, name: 'Level 3' }],
      rows: [
        { id: 'algorithms', group: 'Computer Science', name: 'Algorithms', cells: ['a', 'b', 'c', 'd'] },
        { id: 'data_structures', group: 'Computer Science', name: 'Data structures', cells: ['a', 'b', 'c', 'd'] },
        { id: 'version_control', group: 'Software Engineering', name: 'Version control', cells: ['a', 'b', 'c', 'd'] },
      ],
    }));
  }
  const matrix = JSON.parse(fs.readFileSync(path.join(web, 'pcm', 'matrix.json'), 'utf8'));
  const levels = matrix.levels.map((l) => l.id);
  const rows = matrix.rows.map((r) => r.id);
  assert.ok(rows.length > 0 && levels.length > 0);

  const server = await startServer({ web }); // no --config
  const served = await httpRequest(`${server.url}/pcm/matrix.json`);
  assert.equal(served.status, 200);
  assert.deepEqual(served.json(), matrix);

  const A = await newUser(server);
  const B = await newUser(server);
  const t0 = await A.ws.call('tally', { coll: 'pcm' });
  assert.deepEqual(norm(t0.tally), { total: 0, counts: {} });
  const s = await B.ws.call('sub', { ch: 'tally:pcm' });

  // Every row id is a field; every level id is an allowed value.
  const maxLevel = levels[levels.length - 1];
  const mine = Object.fromEntries(rows.map((r, i) => [r, levels[i % levels.length]]));
  const created = (await A.ws.call('create', { coll: 'pcm', data: mine })).doc;
  assert.equal(created.id, A.id, 'per_user: the id is the user id');
  const push = await B.ws.next((o) => o.op === 'msg' && o.ch === 'tally:pcm');
  assert.equal(push.offset, s.offset + 1);
  const expected = { total: 1, counts: {} };
  for (const [r, l] of Object.entries(mine)) expected.counts[r] = { [String(l)]: 1 };
  assert.deepEqual(norm(push.data), expected);
  const top = Object.fromEntries(rows.map((r) => [r, maxLevel]));
  assert.equal((await A.ws.call('update', { coll: 'pcm', doc: 'me', data: top })).doc._v, 2);
  const t1 = await B.ws.call('tally', { coll: 'pcm' });
  assert.deepEqual(norm(t1.tally), { total: 1, counts: Object.fromEntries(rows.map((r) => [r, { [String(maxLevel)]: 1 }])) });
  for (const l of levels) {
    assert.equal((await A.ws.call('patch', { coll: 'pcm', doc: 'me', data: { [rows[0]]: l } })).doc[rows[0]], l);
  }

  // Not a level, not a row, another user's document, reading another user's answers.
  const notALevel = Math.max(...levels) + 1;
  assertError(await A.ws.request('patch', { coll: 'pcm', doc: 'me', data: { [rows[0]]: notALevel } }), 'invalid', 'level');
  assertError(await A.ws.request('patch', { coll: 'pcm', doc: 'me', data: { no_such_row: levels[0] } }), 'invalid', 'row');
  assertError(await B.ws.request('patch', { coll: 'pcm', doc: A.id, data: { [rows[0]]: levels[0] } }),
              'permission_denied', 'B writes A\'s document');
  assertError(await B.ws.request('get', { coll: 'pcm', doc: A.id }), 'permission_denied', 'B reads A\'s document');
  assert.deepEqual((await B.ws.call('list', { coll: 'pcm' })).docs, [], 'read = "owner"');
  const own = await rest(server, 'GET', '/v1/collections/pcm/me', { cookie: A.cookie });
  assert.equal(own.status, 200, own.body);
  assert.equal(own.json().id, A.id);
  // Rooms: grouped by `room`, each room's tally its own.
  await A.ws.call('patch', { coll: 'pcm', doc: 'me', data: { room: 'team-a' } });
  const room = await B.ws.call('tally', { coll: 'pcm', group: 'team-a' });
  assert.equal(room.tally.total, 1);
  assert.equal((await B.ws.call('tally', { coll: 'pcm', group: 'team-b' })).tally.total, 0);
  assertError(await A.ws.request('patch', { coll: 'pcm', doc: 'me', data: { room: 'no spaces' } }), 'invalid', 'room name');
  await A.ws.close();
  await B.ws.close();
});
