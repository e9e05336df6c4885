// The permission matrix (issue 6, PROTOCOL §2, §4, §5): every rule on every path. The same scenarios run
// over WebSocket and over REST, through an "actor" that speaks one path and reports {ok} or {error: code}
// (REST statuses are checked against their codes): anonymous = false namespaces, the read-only coll: and
// tally: channels, client_publish = false, and the collection rules read = "owner", write = "owner" /
// "none", per_user. Channel rules also run over the PubNub REST subset. A mixed test checks that what
// one path wrote is protected on the other. Replies never carry a document the caller may not read
// (conflicts, writes to read = "owner" documents), and token caps reach collections too.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, cleanupAll, httpRequest, startServer, tmpDir } from './lib/server.mjs';
import { NOTES, READONLY, RO_NAMESPACE, SHARED, TODOS, collection, config, perUserTally } from './lib/config.mjs';
import { readSecret, signToken } from './lib/tokens.mjs';

const CONFIG = `
[namespaces.priv]
anonymous = false

${config(RO_NAMESPACE, TODOS, NOTES, SHARED, READONLY, perUserTally('votes', { tally: 'tally = { q = [0, 1, 2] }' }),
         collection('dropbox', 'read = "owner"', 'write = "all"'))}`;

let server;
let secret;
before(async () => {
  const dataDir = tmpDir('rtsync-sec-perm-');
  server = await startServer({ config: CONFIG, dataDir });
  secret = readSecret(dataDir);
});
after(cleanupAll);

const STATUS = { bad_request: 400, invalid: 400, permission_denied: 403, not_found: 404, conflict: 409, too_large: 413 };

// ---------------------------------------------------------------------------------------------------
// Actors: one user on one path. Every method resolves with {ok: value} or {error: code}.

class WsActor {
  static async open(user, caps) {
    const headers = user ? { authorization: `Bearer ${signToken({ sub: user, caps }, secret)}` } : {};
    const a = new WsActor();
    a.c = await Client.connect(server.wsUrl, { headers });
    a.user = a.c.hello.user;
    a.path = 'ws';
    return a;
  }

  async #do(op, fields) {
    const r = await this.c.request(op, fields);
    return 'ok' in r ? { ok: r.ok } : { error: r.error.code, body: JSON.stringify(r.error) };
  }

  pub(ch, data) { return this.#do('pub', { ch, data }); }
  // A write with the version the caller believes current.
  write(op, coll, id, data, v) {
    return this.#do(op === 'remove' ? 'delete' : op, { coll, doc: id, v, ...(op === 'remove' ? {} : { data }) })
      .then((r) => (r.ok ? { ok: r.ok.doc ?? r.ok } : r));
  }
  // `dataText` is put into the command as is (JSON that JavaScript cannot produce, e.g. 1e400).
  async pubRaw(ch, dataText) {
    const id = this.c.nextId++;
    this.c.sendRaw(`{"id":${id},"op":"pub","ch":${JSON.stringify(ch)},"data":${dataText}}`);
    const r = await this.c.reply(id);
    return 'ok' in r ? { ok: r.ok } : { error: r.error.code };
  }
  async createRaw(coll, dataText) {
    const id = this.c.nextId++;
    this.c.sendRaw(`{"id":${id},"op":"create","coll":${JSON.stringify(coll)},"data":${dataText}}`);
    const r = await this.c.reply(id);
    return 'ok' in r ? { ok: r.ok.doc } : { error: r.error.code };
  }
  history(ch) { return this.#do('history', { ch }); }
  async read(ch) {
    const r = await this.#do('sub', { ch });
    if (r.ok) await this.c.call('unsub', { ch });
    return r;
  }
  create(coll, data) { return this.#do('create', { coll, data }).then((r) => (r.ok ? { ok: r.ok.doc } : r)); }
  get(coll, id) { return this.#do('get', { coll, doc: id }).then((r) => (r.ok ? { ok: r.ok.doc } : r)); }
  list(coll) { return this.#do('list', { coll }).then((r) => (r.ok ? { ok: r.ok.docs } : r)); }
  update(coll, id, data) { return this.#do('update', { coll, doc: id, data }).then((r) => (r.ok ? { ok: r.ok.doc } : r)); }
  patch(coll, id, data) { return this.#do('patch', { coll, doc: id, data }).then((r) => (r.ok ? { ok: r.ok.doc } : r)); }
  remove(coll, id) { return this.#do('delete', { coll, doc: id }); }
  tally(coll) { return this.#do('tally', { coll }); }
  close() { return this.c.close(); }
}

class RestActor {
  // Named users carry a Bearer token; the anonymous one sends nothing (a fresh anonymous id per request).
  static async open(user, caps) {
    const a = new RestActor();
    a.token = user ? signToken({ sub: user, caps }, secret) : null;
    a.user = user;
    a.path = 'rest';
    return a;
  }

  async #do(method, path, body, raw = false, extra = {}) {
    const headers = { ...extra };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const text = body === undefined || raw ? body : JSON.stringify(body);
    const res = await httpRequest(`${server.url}${path}`, { method, headers, body: text });
    if (res.status < 300) return { ok: res.body === '' ? null : res.json() };
    const code = res.status === 409 ? 'conflict' : res.json().error?.code;
    assert.equal(res.status, STATUS[code], `${method} ${path}: HTTP ${res.status} for ${code}: ${res.body}`);
    return { error: code, body: res.body };
  }

  pub(ch, data) { return this.#do('POST', `/v1/channels/${ch}/publish`, data); }
  write(op, coll, id, data, v) {
    const method = { update: 'PUT', patch: 'PATCH', remove: 'DELETE' }[op];
    return this.#do(method, `/v1/collections/${coll}/${id}`, op === 'remove' ? undefined : data, false, { 'if-match': `"${v}"` });
  }
  pubRaw(ch, dataText) { return this.#do('POST', `/v1/channels/${ch}/publish`, dataText, true); }
  createRaw(coll, dataText) { return this.#do('POST', `/v1/collections/${coll}`, dataText, true); }
  history(ch) { return this.#do('GET', `/v1/channels/${ch}/history`); }
  read(ch) { return this.history(ch); }  // REST reads a channel through its history
  create(coll, data) { return this.#do('POST', `/v1/collections/${coll}`, data); }
  get(coll, id) { return this.#do('GET', `/v1/collections/${coll}/${id}`); }
  list(coll) { return this.#do('GET', `/v1/collections/${coll}`); }
  update(coll, id, data) { return this.#do('PUT', `/v1/collections/${coll}/${id}`, data); }
  patch(coll, id, data) { return this.#do('PATCH', `/v1/collections/${coll}/${id}`, data); }
  remove(coll, id) { return this.#do('DELETE', `/v1/collections/${coll}/${id}`); }
  tally(coll) { return this.#do('GET', `/v1/collections/${coll}/_tally`); }
  close() {}
}

// The PubNub REST subset (PROTOCOL §7) reaches channels only: publish, subscribe (the handshake with
// tt=0 answers at once) and history. Named users carry their JWT as PubNub's `auth` key.
class PubnubActor {
  static async open(user, caps) {
    const a = new PubnubActor();
    a.token = user ? signToken({ sub: user, caps }, secret) : null;
    a.user = user;
    a.path = 'pubnub';
    return a;
  }

  async #do(path, query = {}) {
    const q = new URLSearchParams({ uuid: this.user ?? 'anon', ...query });
    if (this.token) q.set('auth', this.token);
    const res = await httpRequest(`${server.url}${path}?${q}`);
    if (res.status === 200) return { ok: res.json() };
    const code = { 400: 'bad_request', 403: 'permission_denied', 404: 'not_found' }[res.status] ?? `HTTP ${res.status}`;
    return { error: code, body: res.body };
  }

  pub(ch, data) { return this.pubRaw(ch, JSON.stringify(data)); }
  pubRaw(ch, dataText) { return this.#do(`/publish/demo/demo/0/${ch}/0/${encodeURIComponent(dataText)}`); }
  read(ch) { return this.#do(`/v2/subscribe/demo/${ch}/0`, { tt: '0' }); }
  async history(ch) {
    const r = await this.#do(`/v2/history/sub-key/demo/channel/${ch}`);
    if (r.error) return r;
    return { ok: { pubs: r.ok[0].map((m) => ({ data: m })) } };
  }
  close() {}
}

const PATHS = { ws: WsActor, rest: RestActor, pubnub: PubnubActor };

function ok(r, what) {
  assert.ok(r.ok !== undefined && r.error === undefined, `${what}: expected ok, got ${JSON.stringify(r).slice(0, 300)}`);
  return r.ok;
}
function denied(r, what, code = 'permission_denied') {
  assert.equal(r.error, code, `${what}: expected ${code}, got ${JSON.stringify(r).slice(0, 300)}`);
}

let unique = 0;
const name = (prefix) => `${prefix}${Date.now().toString(36)}${unique++}`;

// ---------------------------------------------------------------------------------------------------

for (const [path, Actor] of Object.entries(PATHS)) {
  describe(`channels over ${path}`, () => {
    test('anonymous = false: anonymous callers may not read, publish or fetch history; token holders may', async () => {
      const anon = await Actor.open(null);
      const alice = await Actor.open(`alice-${path}`);
      const ch = `priv:${name('room')}`;
      denied(await anon.pub(ch, { x: 1 }), 'anonymous pub');
      denied(await anon.read(ch), 'anonymous read');
      denied(await anon.history(ch), 'anonymous history');
      ok(await alice.pub(ch, { x: 2 }), 'token pub');
      ok(await alice.read(ch), 'token read');
      const h = ok(await alice.history(ch), 'token history');
      assert.deepEqual(h.pubs.map((p) => p.data), [{ x: 2 }], 'only the token holder\'s publication exists');
      await Promise.all([anon.close(), alice.close()]);
    });

    test('coll: and tally: are read-only for every client', async () => {
      const alice = await Actor.open(`alice-${path}`);
      const anon = await Actor.open(null);
      for (const who of [alice, anon]) {
        denied(await who.pub('coll:todos', { type: 'upsert', doc: { id: 'x' } }), `${who.user} pub coll:todos`);
        denied(await who.pub('tally:votes', { total: 99 }), `${who.user} pub tally:votes`);
        ok(await who.read('coll:todos'), 'read coll:todos');
        ok(await who.read('tally:votes'), 'read tally:votes');
      }
      const h = ok(await alice.history('tally:votes'), 'tally history');
      assert.ok(h.pubs.every((p) => p.data.total !== 99), 'nothing forged on tally:votes');
      await Promise.all([anon.close(), alice.close()]);
    });

    test('client_publish = false refuses every publisher but allows reading', async () => {
      const alice = await Actor.open(`alice-${path}`);
      const anon = await Actor.open(null);
      const ch = `ro:${name('feed')}`;
      denied(await alice.pub(ch, 1), 'token pub');
      denied(await anon.pub(ch, 1), 'anonymous pub');
      ok(await anon.read(ch), 'read');
      assert.deepEqual(ok(await alice.history(ch), 'history').pubs, []);
      await Promise.all([anon.close(), alice.close()]);
    });

    test('token caps: reading follows caps.sub, publishing follows caps.pub', async () => {
      const capped = await Actor.open(`capped-${path}`, { sub: ['in.*', 'both.*'], pub: ['out.*', 'both.*'] });
      const tag = name('');
      ok(await capped.read(`in.${tag}`), 'read in.*');
      ok(await capped.read(`both.${tag}`), 'read both.*');
      denied(await capped.read(`out.${tag}`), 'read out.* (pub-only)');
      denied(await capped.history(`else.${tag}`), 'history of an unlisted channel');
      ok(await capped.pub(`out.${tag}`, 1), 'pub out.*');
      ok(await capped.pub(`both.${tag}`, 1), 'pub both.*');
      denied(await capped.pub(`in.${tag}`, 1), 'pub in.* (sub-only)');
      denied(await capped.pub(`else.${tag}`, 1), 'pub an unlisted channel');
      await capped.close();
    });

    test('numbers beyond the double range are refused: they would reach readers as invalid JSON', async () => {
      const alice = await Actor.open(`alice-${path}`);
      const ch = name('poison');
      ok(await alice.pub(ch, { fine: 1.5e308 }), 'a large finite number');
      for (const text of ['1e400', '{"a":[1,-1e999]}', '{"deep":{"x":[{"y":2e308}]}}']) {
        const r = await alice.pubRaw(ch, text);
        assert.equal(r.error, 'bad_request', `pub ${text}: ${JSON.stringify(r)}`);
      }
      if (alice.createRaw) {
        const r = await alice.createRaw('todos', '{"title":"t","n":1e400}');
        assert.equal(r.error, 'bad_request', `create: ${JSON.stringify(r)}`);
        const all = await httpRequest(`${server.url}/v1/collections/todos`);
        assert.doesNotThrow(() => all.json(), 'the collection still lists as JSON');
      }
      // Every reader still gets valid JSON: the history holds only the finite publication.
      const res = await httpRequest(`${server.url}/v1/channels/${ch}/history`);
      assert.doesNotMatch(res.body, /Infinity/);
      assert.deepEqual(res.json().pubs.map((p) => p.data), [{ fine: 1.5e308 }]);
      await alice.close();
    });

    test('data may nest 32 levels on every path; 33 is refused', async () => {
      const alice = await Actor.open(`alice-${path}`);
      const ch = name('deep');
      const nested = (levels) => '['.repeat(levels) + ']'.repeat(levels);
      ok(await alice.pubRaw(ch, nested(32)), '32 levels');
      assert.equal((await alice.pubRaw(ch, nested(33))).error, 'bad_request', '33 levels');
      if (alice.createRaw) {
        const doc = `{"a":${nested(31)}}`;  // the document object is the first level
        ok(await alice.createRaw('todos', doc), 'a document of 32 levels');
        assert.equal((await alice.createRaw('todos', `{"a":${nested(32)}}`)).error, 'bad_request', 'a document of 33');
      }
      await alice.close();
    });

    test('undeclared namespaces and collections do not exist', async () => {
      const alice = await Actor.open(`alice-${path}`);
      denied(await alice.pub('nowhere:x', 1), 'undeclared namespace', 'not_found');
      denied(await alice.pub('coll:nosuch', 1), 'coll: of an undeclared collection', 'not_found');
      if (alice.create) denied(await alice.create('nosuch', { a: 1 }), 'undeclared collection', 'not_found');
      await alice.close();
    });
  });

  if (!Actor.prototype.create) continue;  // PubNub has no collections
  describe(`collections over ${path}`, () => {
    let alice;
    let bob;
    let anon;
    before(async () => {
      alice = await Actor.open(`alice-${path}`);
      bob = await Actor.open(`bob-${path}`);
      anon = await Actor.open(null);
    });
    after(async () => { await Promise.all([alice.close(), bob.close(), anon.close()]); });

    test('read = "all", write = "all": everyone reads and writes every document', async () => {
      const doc = ok(await alice.create('todos', { title: 'a' }), 'create');
      assert.equal(doc._owner, alice.user);
      assert.equal(ok(await bob.get('todos', doc.id), 'bob get').title, 'a');
      assert.ok(ok(await bob.list('todos'), 'bob list').some((d) => d.id === doc.id));
      const upd = ok(await bob.update('todos', doc.id, { title: 'b' }), 'bob update');
      assert.equal(upd._owner, alice.user, 'the owner stays the creator');
      ok(await anon.patch('todos', doc.id, { done: true }), 'anonymous patch');
      ok(await bob.remove('todos', doc.id), 'bob delete');
    });

    test('read = "owner", write = "owner": others neither see nor change a document', async () => {
      const doc = ok(await alice.create('notes', { secret: 'alice-only' }), 'create');
      denied(await bob.get('notes', doc.id), 'bob get');
      denied(await anon.get('notes', doc.id), 'anonymous get');
      const listed = ok(await bob.list('notes'), 'bob list');
      assert.ok(!listed.some((d) => d.id === doc.id || d.secret === 'alice-only'), `bob's list leaks: ${JSON.stringify(listed)}`);
      denied(await bob.update('notes', doc.id, { secret: 'bob' }), 'bob update');
      denied(await bob.patch('notes', doc.id, { secret: 'bob' }), 'bob patch');
      denied(await bob.remove('notes', doc.id), 'bob delete');
      denied(await anon.remove('notes', doc.id), 'anonymous delete');
      // Nothing changed, and the owner keeps full access.
      const mine = ok(await alice.get('notes', doc.id), 'alice get');
      assert.equal(mine.secret, 'alice-only');
      assert.equal(mine._v, 1, 'no write went through');
      assert.ok(ok(await alice.list('notes'), 'alice list').some((d) => d.id === doc.id));
      ok(await alice.patch('notes', doc.id, { secret: 'still alice' }), 'alice patch');
      ok(await alice.remove('notes', doc.id), 'alice delete');
    });

    test('read = "owner": the change feed history shows others nothing', async () => {
      const doc = ok(await alice.create('notes', { secret: 'feed' }), 'create');
      const bobView = ok(await bob.history('coll:notes'), 'bob history of coll:notes');
      assert.ok(!JSON.stringify(bobView.pubs).includes(doc.id), 'alice\'s change is not in bob\'s history');
      const aliceView = ok(await alice.history('coll:notes'), 'alice history of coll:notes');
      assert.ok(JSON.stringify(aliceView.pubs).includes(doc.id), 'alice sees her own change');
    });

    test('read = "all", write = "owner": others read but may not change', async () => {
      const doc = ok(await alice.create('shared', { v: 1 }), 'create');
      assert.equal(ok(await bob.get('shared', doc.id), 'bob get').v, 1);
      denied(await bob.update('shared', doc.id, { v: 2 }), 'bob update');
      denied(await bob.patch('shared', doc.id, { v: 2 }), 'bob patch');
      denied(await bob.remove('shared', doc.id), 'bob delete');
      assert.equal(ok(await alice.get('shared', doc.id), 'alice get')._v, 1);
      // Anyone may create (and owns what they create).
      const bobs = ok(await bob.create('shared', { v: 3 }), 'bob create');
      assert.equal(bobs._owner, bob.user);
      denied(await alice.remove('shared', bobs.id), 'alice deletes bob\'s');
    });

    test('write = "none": clients never write', async () => {
      for (const who of [alice, bob, anon]) {
        denied(await who.create('readonly', { a: 1 }), `${who.user} create`);
        denied(await who.update('readonly', 'x', { a: 1 }), `${who.user} update`);
        denied(await who.patch('readonly', 'x', { a: 1 }), `${who.user} patch`);
        denied(await who.remove('readonly', 'x'), `${who.user} delete`);
      }
      assert.deepEqual(ok(await alice.list('readonly'), 'list'), []);
    });

    test('per_user: one document per user, nobody writes or reads another\'s', async () => {
      const mine = ok(await alice.create('votes', { q: 1 }), 'alice create');
      assert.equal(mine.id, alice.user, 'the id is the user id');
      // Bob cannot write alice's document, by id or by naming it in the data.
      denied(await bob.update('votes', alice.user, { q: 2 }), 'bob update alice\'s');
      denied(await bob.patch('votes', alice.user, { q: 2 }), 'bob patch alice\'s');
      denied(await bob.remove('votes', alice.user), 'bob delete alice\'s');
      denied(await bob.create('votes', { id: alice.user, q: 2 }), 'bob create with alice\'s id');
      denied(await bob.get('votes', alice.user), 'bob get alice\'s');
      assert.equal(ok(await alice.get('votes', 'me'), 'alice get me').q, 1, 'unchanged');
      // Bob's own document works through "me", and the tally is public.
      const his = ok(await bob.create('votes', { q: 2 }), 'bob create');
      assert.equal(his.id, bob.user);
      ok(await bob.patch('votes', 'me', { q: 0 }), 'bob patch me');
      const t = ok(await anon.tally('votes'), 'anonymous tally');
      assert.ok((t.tally ?? t).total >= 2, JSON.stringify(t));
      denied(await alice.patch('votes', 'me', { q: 7 }), 'value outside the tally', 'invalid');
    });

    test('read = "owner": a conflict tells another user only that the id is taken', async () => {
      const id = name('taken');
      ok(await alice.create('notes', { id, secret: 'alice-private' }), 'alice create');
      const r = await bob.create('notes', { id, other: 1 });
      denied(r, 'bob creates the same id', 'conflict');
      assert.doesNotMatch(r.body, /alice-private|_owner/, `the conflict leaks the document: ${r.body}`);
      assert.match(r.body, /already exists/);
      // The owner's own conflict still carries the document (a client reconciles with it).
      const mine = await alice.create('notes', { id, again: 1 });
      denied(mine, 'alice creates it again', 'conflict');
      assert.match(mine.body, /alice-private/);
    });

    test('read = "owner", write = "all": writes by others carry no document back', async () => {
      const doc = ok(await alice.create('dropbox', { secret: 'in-the-box', keep: 1 }), 'alice create');
      for (const op of ['update', 'patch', 'remove']) {
        const r = await bob.write(op, 'dropbox', doc.id, { note: 'bob' }, 99);
        denied(r, `${op} with a stale v`, 'conflict');
        assert.doesNotMatch(r.body, /in-the-box|_owner/, `${op}: the conflict leaks the document: ${r.body}`);
      }
      const patched = ok(await bob.patch('dropbox', doc.id, {}), 'bob patches with {}');
      assert.deepEqual(patched, { id: doc.id, _v: 2 }, 'only the id and the new version');
      const updated = ok(await bob.update('dropbox', doc.id, { note: 'bob' }), 'bob update');
      assert.deepEqual(updated, { id: doc.id, _v: 3 });
      const mine = ok(await alice.get('dropbox', doc.id), 'alice get');
      assert.equal(mine.note, 'bob');
      assert.equal(mine._owner, alice.user, 'the owner stays the creator');
      // The owner's own writes still answer with the document.
      assert.equal(ok(await alice.patch('dropbox', doc.id, { keep: 2 }), 'alice patch').note, 'bob');
    });

    test('token caps reach collections: read and write by name pattern; caps naming none reach none', async () => {
      const chatOnly = await Actor.open(`chat-${path}`, { sub: ['chat:*'], pub: ['chat:lobby'] });
      const reader = await Actor.open(`reader-${path}`, { read: ['todo*'] });
      const writer = await Actor.open(`writer-${path}`, { read: ['todos'], write: ['todos'] });
      const empty = await Actor.open(`empty-${path}`, {});
      const doc = ok(await alice.create('todos', { title: 'capped' }), 'uncapped create');
      for (const [who, label] of [[chatOnly, 'channel-only caps'], [empty, 'empty caps']]) {
        denied(await who.list('todos'), `${label}: list`);
        denied(await who.get('todos', doc.id), `${label}: get`);
        denied(await who.create('todos', { title: 'x' }), `${label}: create`);
        denied(await who.update('todos', doc.id, { title: 'x' }), `${label}: update`);
        denied(await who.remove('todos', doc.id), `${label}: delete`);
        denied(await who.tally('votes'), `${label}: tally`);
        denied(await who.read('coll:todos'), `${label}: the change feed`);
      }
      assert.ok(ok(await reader.list('todos'), 'reader list').some((d) => d.id === doc.id));
      assert.equal(ok(await reader.get('todos', doc.id), 'reader get').title, 'capped');
      ok(await reader.read('coll:todos'), 'caps.read covers the collection\'s feed');
      denied(await reader.create('todos', { title: 'x' }), 'reader create');
      denied(await reader.patch('todos', doc.id, { title: 'x' }), 'reader patch');
      denied(await reader.tally('votes'), 'reader tally of an unlisted collection');
      const w = ok(await writer.create('todos', { title: 'by writer' }), 'writer create');
      ok(await writer.patch('todos', w.id, { done: true }), 'writer patch');
      ok(await writer.remove('todos', w.id), 'writer delete');
      denied(await writer.create('notes', { n: 1 }), 'writer create in an unlisted collection');
      await Promise.all([chatOnly.close(), reader.close(), writer.close(), empty.close()]);
    });
  });
}

describe('rules hold across paths', () => {
  test('a document written over WebSocket is protected over REST, and the reverse', async () => {
    const wsAlice = await WsActor.open('carol');
    const restAlice = await RestActor.open('carol');
    const wsBob = await WsActor.open('dan');
    const restBob = await RestActor.open('dan');
    const a = ok(await wsAlice.create('notes', { n: 'ws' }), 'ws create');
    denied(await restBob.get('notes', a.id), 'rest get of a ws doc');
    denied(await restBob.update('notes', a.id, { n: 'x' }), 'rest update of a ws doc');
    assert.equal(ok(await restAlice.get('notes', a.id), 'owner over rest').n, 'ws');
    const b = ok(await restAlice.create('notes', { n: 'rest' }), 'rest create');
    denied(await wsBob.get('notes', b.id), 'ws get of a rest doc');
    denied(await wsBob.remove('notes', b.id), 'ws delete of a rest doc');
    assert.equal(ok(await wsAlice.get('notes', b.id), 'owner over ws').n, 'rest');
    await Promise.all([wsAlice.close(), wsBob.close()]);
  });
});
