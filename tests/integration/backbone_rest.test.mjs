// The real Backbone library (npm `backbone`) against the collections REST API (PROTOCOL §5,
// docs/protocol.md §6 "REST (compatible with Backbone's default sync)"). Backbone's default sync calls
// Backbone.ajax with jQuery-style options (url, type, data, contentType, headers, success, error); in Node
// it is replaced by a small fetch-based implementation that behaves like jQuery's for these options (the
// error callback gets an xhr-like object with status, responseText and responseJSON).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Backbone from 'backbone';
import { cleanupAll, cookiePair, httpRequest, startServer, uidSetCookie } from './lib/server.mjs';
import { TODOS, VOTES, config } from './lib/config.mjs';

const CONFIG = config(TODOS, VOTES);

let server;
let cookie;      // the "browser's" identity
let userId;
const calls = []; // every request Backbone made: {type, url, body, headers}

// jQuery.ajax, as much of it as Backbone.sync uses.
function fetchAjax(options) {
  const headers = { Accept: 'application/json', ...(options.headers ?? {}) };
  if (cookie) headers.Cookie = cookie;
  if (options.data !== undefined && options.contentType) headers['Content-Type'] = options.contentType;
  const url = new URL(options.url, server.url).toString();
  calls.push({ type: options.type, url: options.url, body: options.data, headers });
  const xhr = { status: 0, responseText: '', responseJSON: undefined, getResponseHeader: () => null };
  return fetch(url, { method: options.type, headers, body: options.data }).then(async (res) => {
    const text = await res.text();
    xhr.status = res.status;
    xhr.statusText = res.statusText;
    xhr.responseText = text;
    try { xhr.responseJSON = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
    xhr.getResponseHeader = (name) => res.headers.get(name);
    if (res.status >= 200 && res.status < 300) options.success?.(xhr.responseJSON, 'success', xhr);
    else options.error?.(xhr, 'error', res.statusText);
    return xhr;
  }, (e) => {
    options.error?.(xhr, 'error', e.message);
    return xhr;
  });
}

// Promises over Backbone's callback style. Each resolves with what the success callback got, and rejects
// with {model, xhr} from the error callback.
function save(model, attrs, options = {}) {
  return new Promise((resolve, reject) => {
    const r = model.save(attrs, {
      ...options,
      success: (m, resp) => resolve(resp),
      error: (m, xhr) => reject(Object.assign(new Error(`save failed: HTTP ${xhr.status}`), { model: m, xhr })),
    });
    if (r === false) reject(new Error('client-side validation failed'));
  });
}

function fetchOf(entity, options = {}) {
  return new Promise((resolve, reject) => {
    entity.fetch({
      ...options,
      success: (e, resp) => resolve(resp),
      error: (e, xhr) => reject(Object.assign(new Error(`fetch failed: HTTP ${xhr.status}`), { model: e, xhr })),
    });
  });
}

function destroy(model, options = {}) {
  return new Promise((resolve, reject) => {
    const r = model.destroy({
      ...options,
      success: (m, resp) => resolve(resp),
      error: (m, xhr) => reject(Object.assign(new Error(`destroy failed: HTTP ${xhr.status}`), { model: m, xhr })),
    });
    if (r === false) reject(new Error('destroy of a new model'));
  });
}

async function restGet(p) {
  return httpRequest(`${server.url}${p}`, { headers: { Cookie: cookie } });
}

async function restPost(p, body) {
  const res = await httpRequest(`${server.url}${p}`, {
    method: 'POST', headers: { Cookie: cookie, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 201, res.body);
  return res.json();
}

const Todo = Backbone.Model.extend({ urlRoot: '/v1/collections/todos' });
const Todos = Backbone.Collection.extend({ model: Todo, url: '/v1/collections/todos' });
const Vote = Backbone.Model.extend({ urlRoot: '/v1/collections/votes' });

before(async () => {
  server = await startServer({ config: CONFIG });
  const res = await httpRequest(`${server.url}/healthz`);
  cookie = cookiePair(uidSetCookie(res));
  userId = cookie.split('=')[1].split('.')[0];
  Backbone.ajax = fetchAjax;
});
after(cleanupAll);

describe('Backbone against the REST API', () => {
  test('collection.fetch loads every document', async () => {
    const seeded = [];
    for (const title of ['one', 'two', 'three']) seeded.push(await restPost('/v1/collections/todos', { title }));
    const todos = new Todos();
    calls.length = 0;
    const resp = await fetchOf(todos);
    assert.deepEqual(calls.map((c) => [c.type, c.url]), [['GET', '/v1/collections/todos']]);
    assert.ok(Array.isArray(resp));
    assert.equal(todos.length, resp.length);
    for (const doc of seeded) {
      const m = todos.get(doc.id);
      assert.ok(m, `model ${doc.id} is in the collection`);
      assert.deepEqual(m.toJSON(), doc);
      assert.equal(m.isNew(), false);
    }
  });

  test('model.save: POST, then PUT (with _v), then PATCH; fetch of one model', async () => {
    const m = new Todo({ title: 'write tests', done: false });
    assert.equal(m.isNew(), true);
    calls.length = 0;
    await save(m);
    assert.equal(calls[0].type, 'POST');
    assert.equal(calls[0].url, '/v1/collections/todos');
    assert.equal(calls[0].headers['Content-Type'], 'application/json');
    assert.equal(m.isNew(), false, 'the server assigned an id');
    assert.match(m.id, /^[0-9a-f]{16}$/);
    assert.equal(m.get('_v'), 1);
    assert.equal(m.get('_owner'), userId);

    await save(m, { done: true });
    assert.equal(calls[1].type, 'PUT');
    assert.equal(calls[1].url, `/v1/collections/todos/${m.id}`);
    assert.deepEqual(JSON.parse(calls[1].body), { title: 'write tests', done: true, id: m.id, _v: 1, _owner: userId },
                     'Backbone sends back every attribute, id/_v/_owner included');
    assert.equal(m.get('_v'), 2, 'the model took the server\'s new version');
    assert.equal(m.get('done'), true);

    await save(m, { title: 'write more tests' }, { patch: true });
    assert.equal(calls[2].type, 'PATCH');
    assert.deepEqual(JSON.parse(calls[2].body), { title: 'write more tests' });
    assert.equal(m.get('_v'), 3);

    const stored = (await restGet(`/v1/collections/todos/${m.id}`)).json();
    assert.deepEqual(stored, m.toJSON(), 'the model and the server agree');

    const copy = new Todo({ id: m.id });
    await fetchOf(copy);
    assert.deepEqual(copy.toJSON(), stored);
  });

  test('collection.create with wait adds the saved model', async () => {
    const todos = new Todos();
    await fetchOf(todos);
    const before = todos.length;
    const created = await new Promise((resolve, reject) => {
      todos.create({ title: 'via create' }, { wait: true, success: (m) => resolve(m), error: (m, xhr) => reject(xhr) });
    });
    assert.equal(todos.length, before + 1);
    assert.equal(created.get('_v'), 1);
    assert.equal(todos.get(created.id), created);
    const again = new Todos();
    await fetchOf(again);
    assert.deepEqual(again.get(created.id).toJSON(), created.toJSON());
  });

  test('model.destroy: DELETE, removed from its collection and from the server', async () => {
    const doc = await restPost('/v1/collections/todos', { title: 'to delete' });
    const todos = new Todos();
    await fetchOf(todos);
    const m = todos.get(doc.id);
    assert.ok(m);
    calls.length = 0;
    const resp = await destroy(m);
    assert.deepEqual(calls.map((c) => [c.type, c.url]), [['DELETE', `/v1/collections/todos/${doc.id}`]]);
    assert.deepEqual(resp, { v: 1 });
    assert.equal(todos.get(doc.id), undefined, 'removed from the collection');
    assert.equal((await restGet(`/v1/collections/todos/${doc.id}`)).status, 404);

    const gone = new Todo({ id: doc.id });
    const err = await fetchOf(gone).then(() => null, (e) => e);
    assert.ok(err, 'fetching a deleted model fails');
    assert.equal(err.xhr.status, 404);
    assert.equal(err.xhr.responseJSON.error.code, 'not_found');
  });

  test('a 409 conflict reaches the model\'s error callback with the current document', async () => {
    const doc = await restPost('/v1/collections/todos', { title: 'shared', n: 0 });
    const mine = new Todo({ id: doc.id });
    const theirs = new Todo({ id: doc.id });
    await fetchOf(mine);
    await fetchOf(theirs);

    await save(theirs, { n: 1 });
    assert.equal(theirs.get('_v'), 2);

    // `mine` still holds _v 1: the server refuses, and the error callback gets the current document.
    let errorEvent = null;
    mine.on('error', (model, xhr) => { errorEvent = { model, xhr }; });
    const err = await save(mine, { n: 2 }).then(() => null, (e) => e);
    assert.ok(err, 'the stale save fails');
    assert.equal(err.model, mine);
    assert.equal(err.xhr.status, 409);
    assert.deepEqual(err.xhr.responseJSON, theirs.toJSON(), 'the 409 body is the current document');
    assert.ok(errorEvent, 'the model triggered "error"');
    assert.equal(errorEvent.xhr.status, 409);
    assert.deepEqual((await restGet(`/v1/collections/todos/${doc.id}`)).json(), theirs.toJSON(), 'nothing changed');

    // The app resolves the conflict from the body and saves again.
    mine.set(err.xhr.responseJSON);
    await save(mine, { n: 3 });
    assert.equal(mine.get('_v'), 3);
    assert.equal(mine.get('n'), 3);

    // A destroy with a stale If-Match is refused the same way.
    const stale = await destroy(theirs, { headers: { 'If-Match': '"2"' } }).then(() => null, (e) => e);
    assert.ok(stale, 'the stale destroy fails');
    assert.equal(stale.xhr.status, 409);
    assert.deepEqual(stale.xhr.responseJSON, mine.toJSON());
    assert.equal((await restGet(`/v1/collections/todos/${doc.id}`)).status, 200, 'the document is still there');
  });

  test('saving another user\'s document (write = "all") with the default sync: _owner goes back and is accepted', async () => {
    // The document belongs to a second identity; this "browser" fetches it and saves it with every attribute.
    const other = await httpRequest(`${server.url}/healthz`);
    const otherCookie = cookiePair(uidSetCookie(other));
    const res = await httpRequest(`${server.url}/v1/collections/todos`, {
      method: 'POST', headers: { Cookie: otherCookie, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'theirs' }),
    });
    assert.equal(res.status, 201, res.body);
    const doc = res.json();
    assert.notEqual(doc._owner, userId);
    const m = new Todo({ id: doc.id });
    await fetchOf(m);
    calls.length = 0;
    await save(m, { title: 'edited by someone else' });
    assert.equal(calls[0].type, 'PUT');
    assert.equal(JSON.parse(calls[0].body)._owner, doc._owner, 'Backbone sent _owner back');
    assert.equal(m.get('_owner'), doc._owner, 'the owner stays the creator');
    assert.equal(m.get('_v'), 2);
    // An _owner that is not the stored one is refused, and nothing changes.
    const forged = await save(m, { _owner: userId }).then(() => null, (e) => e);
    assert.ok(forged, 'a forged _owner is refused');
    assert.equal(forged.xhr.status, 400);
    assert.equal(forged.xhr.responseJSON.error.code, 'invalid');
    assert.equal((await restGet(`/v1/collections/todos/${doc.id}`)).json()._owner, doc._owner);
  });

  test('a model with a known id is saved with PUT whether or not the document exists (upsert)', async () => {
    const m = new Todo({ id: 'upserted-by-backbone', title: 'first save' });
    assert.equal(m.isNew(), false);
    calls.length = 0;
    await save(m);
    assert.equal(calls[0].type, 'PUT');
    assert.equal(m.get('_v'), 1, 'created by the PUT');
    await save(m, { title: 'second save' });
    assert.equal(m.get('_v'), 2);
  });

  test('a per_user tally model: POST creates the user\'s document, PUT resubmits, the tally follows', async () => {
    const vote = new Vote({ q1: 1, q2: 2 });
    await save(vote);
    assert.equal(vote.id, userId, 'the id is the user id');
    await save(vote, { q1: 3 });
    assert.equal(vote.get('_v'), 2);
    const me = new Vote({ id: 'me' });
    await fetchOf(me);
    assert.equal(me.get('id'), userId);
    assert.equal(me.get('q1'), 3);
    const t = (await restGet('/v1/collections/votes/_tally')).json();
    assert.equal(t.tally.total, 1);
    assert.equal(t.tally.counts.q1['3'], 1);
    assert.equal(t.tally.counts.q2['2'], 1);
    assert.ok(!t.tally.counts.q1['1'], 'the resubmission moved q1 from 1 to 3');

    const bad = await save(vote, { q1: 7 }).then(() => null, (e) => e);
    assert.ok(bad);
    assert.equal(bad.xhr.status, 400);
    assert.equal(bad.xhr.responseJSON.error.code, 'invalid');
  });
});
