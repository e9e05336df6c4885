//     rtsync-offline.js 0.1.0
//     The offline part of rtsync.js: a durable outbox and a cache in IndexedDB.
//     Released under the MIT license.
//
// `RTSync.offline(connection)` gives a connection a **durable outbox**: every write (`create`,
// `update`, `patch`, `delete`, `pub`) is stored in IndexedDB before it is sent, survives a reload or a
// closed tab, is sent in order when the connection is online, and leaves the outbox when the server has
// answered. A write the server refuses is rolled back in the models and reported with `rejected`.
//
// It also gives the connection a **cache**: what the server sent of every collection and tally that
// follows its feed (the documents, the tally, the feed's offset and epoch). `fetch()` of a cached one
// resolves at once from IndexedDB (event `cached`) and then catches up with `sub` `since` the cached
// offset: the changes missed when the server still has them, a fresh `list` when not. A reload costs one
// round trip instead of a refetch of everything, and a page opened offline shows what it last saw.
//
// **Applied once, however old.** The outbox has a durable client id (random, stored with it, per origin
// and user) and numbers its writes (`seq`: 1, 2, … in the order they were made). On every connect it
// tells the server who it is with `hello` (`client`, and `settled`: every `seq` up to it has its answer
// and is never sent again, so the server may forget those), and each write carries its `seq`: the
// server applies a (user, client, seq) once, however late it comes again, and answers a resend with the
// first result. A server without this (`hello` is `unknown_op`) gets idempotency keys instead,
// `client.seq`, which it remembers for 24 hours.
//
// **Tabs agree.** The tabs of one browser share the database. A write made in one tab is shown in the
// others at once (BroadcastChannel), and exactly one tab sends the outbox: the one holding the Web Lock
// `rtsync:NAME`; when it closes, the next tab takes the lock and sends what is left, once, since every
// write keeps its `seq`. Answers and refusals are told to every tab, so each rolls back, resolves and
// counts alike.
//
// It is a module of its own, not part of `rtsync.js`: storing a person's data on the device is a choice
// an application makes (a shared computer, a kiosk), and an application that does not make it should
// not pay for the code. It plugs into the seam `connection.outbox` of `rtsync.js`, which `RTSync.sync`
// and `Channel#publish` hand their writes to.

import BackboneModule from 'backbone';
import underscore from 'underscore';
import RTSync from './rtsync.js';

const Backbone = BackboneModule;
const _ = underscore;

// Storage
// -------

// One IndexedDB database per origin (IndexedDB is per origin by itself), named `rtsync` unless told
// otherwise. Bump `SCHEMA` when a store changes shape: an older database is then emptied and built
// again, which costs a refetch and, for the outbox, is never done silently (see `upgrade`).
const SCHEMA = 1;

// Stores: `meta` (one record: the user, this outbox's client id, the last sequence number given out),
// `outbox` (the writes, by `id`: the order they were made in), `views` (per cached collection view or
// tally: its offset, epoch, time and, for a tally, the counts) and `docs` (the documents of each view).
function upgrade(db) {
  for (const name of Array.from(db.objectStoreNames)) db.deleteObjectStore(name);
  db.createObjectStore('meta');
  db.createObjectStore('outbox', { keyPath: 'id' });
  db.createObjectStore('views', { keyPath: 'view' });
  db.createObjectStore('docs', { keyPath: ['view', 'id'] }).createIndex('view', 'view');
}

// A view's key: a tally by its collection and group, a collection by its name and query (one record per
// filter).
const viewKey = (obj) => (obj instanceof RTSync.Tally ? 'tally:' + _.result(obj, 'collectionName') + (obj.group ? ':' + obj.group : '')
  : 'coll:' + _.result(obj, 'collectionName') + ' ' + JSON.stringify(obj.query));

const request = (req) => new Promise((resolve, reject) => {
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error);
});

// Runs `body(stores)` in one transaction and resolves with its result once the transaction has
// committed: a write is durable only then.
function transact(db, names, mode, body) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(names, mode);
    const stores = {};
    for (const name of names) stores[name] = tx.objectStore(name);
    let result;
    Promise.resolve(body(stores)).then((r) => { result = r; }, (e) => { try { tx.abort(); } catch (x) { /* done */ } reject(e); });
    tx.oncomplete = () => resolve(result);
    tx.onerror = tx.onabort = () => reject(tx.error || new RTSync.Error('unavailable', 'IndexedDB transaction aborted'));
  });
}

// 16 random bytes in URL-safe base64: the client id of an outbox (`[A-Za-z0-9_-]`, 22 characters).
const randomId = () => {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

// A document id made here, so that a document created offline can be updated and deleted before the
// server has seen it: 16 hex digits, as the server's own.
RTSync.id = () => {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
};

// Helpers
// -------

const noop = () => {};
const quiet = (promise) => { promise.catch(noop); return promise; };

// The user's attributes of a document or model state: without `id` and the server's `_` names.
const own = (attrs) => _.omit(attrs || {}, (v, k) => k === 'id' || k.charAt(0) === '_');

// What turns `from` into `to`: changed and new attributes with their values, removed ones as `undefined`.
const diff = (to, from) => {
  const out = {};
  for (const k in to) if (!_.isEqual(to[k], from[k])) out[k] = to[k];
  for (const k in from) if (!_.has(to, k)) out[k] = undefined;
  return out;
};

// `attrs` with `changes` laid over (an `undefined` removes the attribute).
const apply = (attrs, changes) => _.omit(_.extend({}, attrs, changes), _.isUndefined);

// Errors that say "not now" rather than "no": the write stays at the head of the outbox and is sent
// again later. Every other error is the server's answer to this write and settles it.
const transient = { unavailable: 1, rate_limited: 1, timeout: 1, limit: 1 };

// RTSync.Offline
// --------------

// The outbox of one connection. Options: `name` (the database, `rtsync`), `indexedDB` (the factory,
// `globalThis.indexedDB`), `locks` (a Web Locks manager, `navigator.locks`; without one this tab sends
// the outbox whatever other tabs do), `BroadcastChannel` (the constructor, the global one), `retryDelay`
// (ms before a write answered `unavailable` or `rate_limited` is tried again, 1000).
//
// Events, on the connection: `pending` (connection, n) whenever the number of writes waiting changes;
// `rejected` (connection, info) when the server refused a write: info is `{op, coll, doc, ch, changes,
// local, server, error}` with `local` the document as this write made it, `server` the server's document
// (`null` when there is none), and the same
// `rejected` (model, info) on the model that made it, if it is still there.
const Offline = RTSync.Offline = function(connection, options) {
  options = options || {};
  this.connection = connection;
  this.name = options.name || 'rtsync';
  this.retryDelay = options.retryDelay || 1000;
  this.entries = [];        // the outbox, in the order the writes were made
  this._flight = new Set(); // ids of the writes sent and not answered on the current socket
  this._waiting = new Map(); // id -> {resolve, reject, model} of the writes made by this page
  this._closed = false;
  this._dirty = new Map();  // view key -> what to write to the cache on the next flush
  this._fromCache = new Set(); // what this page showed from the cache: reloaded if the user changes
  connection.outbox = connection.cache = this;
  this.listenTo(connection, 'online', this._onOnline);
  this.listenTo(connection, 'offline', () => { this._flight.clear(); this._shook = false; });
  const factory = options.indexedDB || globalThis.indexedDB;
  if (!factory) throw new Error('rtsync: no IndexedDB; pass the `indexedDB` option');
  this.ready = quiet(this._open(factory).then(() => this._reload()).then(() => this._drain()));
  const BC = options.BroadcastChannel || globalThis.BroadcastChannel;
  if (BC) {
    this._tabs = new BC('rtsync:' + this.name);
    this._tabs.onmessage = (event) => this.ready.then(() => this._onTab(event.data));
  }
  const locks = options.locks || (globalThis.navigator && globalThis.navigator.locks);
  if (!locks) this._leading = true;
  else {
    locks.request('rtsync:' + this.name, () => new Promise((resign) => {
      this._resign = resign;
      if (this._closed) return resign();
      this._leading = true;
      if (connection.state === 'online') this._onOnline(connection, { user: connection.user });
    })).catch(noop);
  }
};

// Gives `connection` (the default one if none) a durable outbox and returns it.
RTSync.offline = (connection, options) => new Offline(connection || RTSync.connection || RTSync.connect(), options);

_.extend(Offline.prototype, Backbone.Events, {

  // Opens the database and reads the meta record (creating it: a new client id).
  _open: function(factory) {
    return new Promise((resolve, reject) => {
      const req = factory.open(this.name, SCHEMA);
      req.onupgradeneeded = () => upgrade(req.result);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = noop; // another tab holds an older schema open; it closes on `versionchange`
    }).then((db) => {
      this.db = db;
      db.onversionchange = () => db.close();
      return transact(db, ['meta'], 'readwrite', (s) => request(s.meta.get('meta')).then((meta) => {
        this.meta = meta || { user: null, client: randomId(), seq: 0 };
        if (!meta) s.meta.put(this.meta, 'meta');
      }));
    });
  },

  // How many writes wait for the server's answer.
  pending: function() {
    return this.entries.length;
  },

  // The last write waiting for `coll`/`id`, as its op (`create`, `update`, `patch`, `delete`).
  holds: function(coll, id) {
    let op;
    for (const e of this.entries) if (e.coll === coll && e.doc === id) op = e.op;
    return op;
  },

  // ### Writing

  // The seam of `RTSync.sync`: one write of `model`. Returns a promise of the server's reply (`{doc}`,
  // or `{v}` for a delete), settled when the server has answered, however many reloads later.
  //
  // The write is stored as what it changes (`changes`, over the attributes the model's previous write
  // left, or its server version), on top of `base`, the server's document it was made on. It is sent
  // on top of the newest server document known by then, so a write made after another one of the same
  // document, and a write sent again after a conflict, carry the right version and only their own
  // changes. A document created here gets its id here (`RTSync.id()`), so that it can be changed and
  // deleted before the server has seen it.
  write: function(method, model, options, coll) {
    if (method === 'create' && model.isNew()) model.set(model.idAttribute, RTSync.id());
    const id = String(model.id);
    const server = model._server ? own(model._server) : null;
    const before = model._written || server || {};
    let changes = null;
    if (method === 'patch') changes = own(options.attrs);
    else if (method !== 'delete') changes = diff(own(model.toJSON(options)), method === 'create' ? {} : before);
    model._written = method === 'delete' ? null : apply(before, changes);
    const entry = {
      op: method, coll, doc: id, changes,
      base: model._server ? _.clone(model._server) : null,
      v: model.has('_v') ? model.get('_v') : undefined,
      conflicts: model.conflicts, // kept with the write: it decides after a reload too
      at: Date.now(),
    };
    const promise = this._add(entry, model);
    const done = model._writing = quiet(promise).then(noop, noop);
    done.then(() => {
      if (model._writing === done) model._writing = null;
      if (!this.holds(coll, id)) model._written = null;
    });
    return promise;
  },

  // The seam of `Channel#publish`: a publication, stored and sent like the other writes. Resolves with
  // `{offset}`.
  publish: function(ch, data) {
    return this._add({ op: 'pub', ch, data, at: Date.now() }, null);
  },

  // Stores a write (giving it the next sequence number, and, when an earlier write of the same document
  // is still waiting, `after`: its id) and resolves when the server has answered it.
  _add: function(entry, model) {
    return new Promise((resolve, reject) => {
      this.ready.then(() => this._store(entry)).then((stored) => {
        this._waiting.set(stored.id, { resolve, reject, model });
        this._tell({ type: 'write', id: stored.id });
        return this._reload().then(() => this._drain());
      }).catch(reject);
    });
  },

  _store: function(entry) {
    return transact(this.db, ['meta', 'outbox'], 'readwrite', (s) => Promise.all([
      request(s.meta.get('meta')), request(s.outbox.getAll()),
    ]).then(([meta, all]) => {
      meta.seq++;
      entry.id = entry.seq = meta.seq;
      const earlier = entry.doc != null && _.filter(all, (e) => e.coll === entry.coll && e.doc === entry.doc).pop();
      if (earlier) {
        entry.after = earlier.id;
        entry.base = null; // it is the earlier write's answer
      }
      s.meta.put(meta, 'meta');
      s.outbox.put(entry);
      this.meta = meta;
      return entry;
    }));
  },

  // Reads the outbox again (another tab may have changed it) and reports a changed count.
  _reload: function() {
    return transact(this.db, ['outbox'], 'readonly', (s) => request(s.outbox.getAll())).then((all) => {
      const before = this.entries.length;
      this.entries = _.sortBy(all, 'id');
      if (this.entries.length !== before) this.connection.trigger('pending', this.connection, this.entries.length);
    });
  },

  // ### Sending

  // Every socket starts with `hello`, before any write goes out on it, and only once the outbox knows
  // that the stored writes belong to the user the server says this is.
  _onOnline: function(connection, info) {
    this._flight.clear();
    this._shook = false;
    const ws = connection.ws;
    this.ready.then(() => this._adopt(info.user)).then(() => this._settled()).then((settled) => {
      if (connection.ws !== ws || this._closed || !this._leading) return null;
      return connection.request('hello', { client: this.meta.client, settled }, { retry: false }).then(() => true, (err) => {
        if (err.code === 'disconnected' || err.code === 'closed') return null;
        if (err.code !== 'unknown_op') connection.trigger('error', connection, err);
        return false; // a server without sequences: idempotency keys
      }).then((seqs) => {
        if (seqs == null || connection.ws !== ws) return;
        this.seqs = seqs;
        this._shook = true;
        this._drain();
      });
    }).catch((err) => connection.trigger('error', connection, err));
  },

  // The outbox belongs to the user that made its writes (the first user a server named, for writes
  // made before). When the server names another user, those writes must not be sent as this one: they
  // are dropped and reported (`rejected`, error `user_changed`), and the outbox starts over with a new
  // client id.
  _adopt: function(user) {
    return transact(this.db, ['meta', 'outbox', 'views', 'docs'], 'readwrite', (s) => Promise.all([
      request(s.meta.get('meta')), request(s.outbox.getAll()),
    ]).then(([meta, all]) => {
      let dropped = null;
      if (meta.user == null) meta.user = user;
      else if (meta.user !== user) {
        dropped = all;
        for (const name of ['outbox', 'views', 'docs']) s[name].clear();
        meta = { user, client: randomId(), seq: 0 };
      }
      s.meta.put(meta, 'meta');
      this.meta = meta;
      return dropped;
    })).then((dropped) => this._reload().then(() => {
      if (!dropped) return;
      for (const entry of dropped) this._report(entry, null, new RTSync.Error('user_changed', 'written by another user'));
      // What this page showed from the cache was the other user's: read it again.
      for (const obj of this._fromCache) {
        if (obj instanceof RTSync.Tally) obj.fetch({ wait: true, cache: false });
        else obj._refetch();
      }
    }));
  },

  // What `hello` says is settled: every sequence number below the smallest one still waiting.
  _settled: function() {
    return transact(this.db, ['meta', 'outbox'], 'readonly', (s) => Promise.all([
      request(s.meta.get('meta')), request(s.outbox.getAll()),
    ])).then(([meta, all]) => (all.length ? _.min(_.pluck(all, 'seq')) - 1 : meta.seq));
  },

  // Sends what can be sent, in order: every write not yet in flight, up to the first one that waits for
  // the answer to an earlier write of the same document (it is built on that answer).
  _drain: function() {
    if (this._closed || !this._shook || this.connection.state !== 'online' || Date.now() < (this._pauseUntil || 0)) return;
    for (const entry of this.entries) {
      if (this._flight.has(entry.id)) continue;
      if (entry.after != null) break;
      this._send(entry);
    }
  },

  // The request for a write: its data laid over the newest server document known, with that
  // document's version.
  _fields: function(e) {
    const once = this.seqs ? { seq: e.seq } : { key: this.meta.client + '.' + e.seq }; // the same after a reload
    if (e.op === 'pub') return _.extend({ ch: e.ch, data: e.data }, once);
    const fields = _.extend({ coll: e.coll }, once);
    const v = e.base ? e.base._v : e.v;
    if (e.op === 'create') fields.data = _.extend(apply({}, e.changes), { id: e.doc });
    else {
      fields.doc = e.doc;
      if (v != null) fields.v = v;
      if (e.op === 'update') fields.data = apply(own(e.base), e.changes);
      else if (e.op === 'patch') fields.data = _.mapObject(e.changes, (x) => (x === undefined ? null : x));
    }
    return fields;
  },

  _send: function(entry) {
    this._flight.add(entry.id);
    this.connection.request(entry.op, this._fields(entry), { retry: false })
      .then((ok) => this._answered(entry, ok), (err) => this._failed(entry, err))
      .catch((err) => this.connection.trigger('error', this.connection, err));
  },

  // A write the server applied (or had applied: a resend is answered with the first result). It
  // leaves the outbox, and the next write of its document is built on the document it returned, in
  // the same transaction.
  _answered: function(entry, ok) {
    const doc = entry.op === 'delete' || entry.op === 'pub' ? null : ok.doc;
    return this._settle(entry, doc).then(() => {
      this._tell({ type: 'answered', entry, ok });
      this._confirm(entry, doc);
      const waiting = this._waiting.get(entry.id);
      this._waiting.delete(entry.id);
      if (waiting) waiting.resolve(ok);
    });
  },

  // A failed write stays in flight until it is settled, so that nothing sends it again meanwhile.
  _failed: function(entry, err) {
    if (err.code === 'disconnected' || err.code === 'closed') return null; // sent again once online
    if (transient[err.code]) {
      this._flight.delete(entry.id);
      this._pauseUntil = Date.now() + this.retryDelay;
      setTimeout(() => this._drain(), this.retryDelay);
      return null;
    }
    // A delete of a document that is gone already did what it was meant to.
    if (entry.op === 'delete' && (err.code === 'not_found' || (err.code === 'conflict' && !err.doc))) {
      return this._answered(entry, { v: entry.base ? entry.base._v : entry.v });
    }
    const changes = err.code === 'conflict' && this._resolve(entry, err);
    return changes ? this._rebase(entry, err.doc, changes) : this._refuse(entry, err);
  },

  // A write met a newer version. The model that made it (if it is still on this page) fires `conflict`
  // and its `resolveConflict` decides, as without an outbox; otherwise the default decides: the
  // write's own changes on top of the server's version. Returns the changes to write again, or
  // nothing to refuse the write. A create or a delete is never forced over the server's document.
  _resolve: function(entry, err) {
    const server = err.doc;
    if (!server || entry.conflicts === 'reject' || entry.op === 'create' || entry.op === 'delete' ||
        (entry.tries || 0) >= RTSync.maxConflictRetries) return null;
    const waiting = this._waiting.get(entry.id);
    const model = this._models(entry, waiting && waiting.model)[0];
    if (!model || !model.resolveConflict) return entry.changes;
    model.trigger('conflict', model, { local: model.toJSON(), server, changed: entry.changes, error: err }, {});
    const attrs = model.resolveConflict(server, model.toJSON(), entry.changes);
    if (!attrs) return null;
    return entry.op === 'patch' ? entry.changes : diff(own(attrs), own(server));
  },

  // Writes `entry` again on top of `server`, as a new write (a new sequence number: the old one has
  // its answer) in the same place of the outbox. The models take the server's version under their
  // changes.
  _rebase: function(entry, server, changes) {
    return transact(this.db, ['meta', 'outbox'], 'readwrite', (s) => request(s.meta.get('meta')).then((meta) => {
      meta.seq++;
      _.extend(entry, { seq: meta.seq, base: server, changes, tries: (entry.tries || 0) + 1 });
      s.meta.put(meta, 'meta');
      s.outbox.put(entry);
      this.meta = meta;
    })).then(() => {
      this._tell({ type: 'answered', entry, ok: { doc: server } });
      this._confirm(entry, server);
      this._flight.delete(entry.id);
      return this._reload();
    }).then(() => this._drain());
  },

  // A write the server refused: it leaves the outbox, the models show the server's version again (with
  // the writes still waiting on top), and `rejected` says so. The next write of the document is built on
  // the server's document: the one the error carries, or else the one a `get` returns (a refused
  // write may have been applied before: an `expired` one).
  _refuse: function(entry, err) {
    return this._current(entry, err).then((server) => this._settle(entry, server).then(() => {
      this._tell({ type: 'refused', entry, server, error: _.pick(err, 'code', 'message', 'doc') });
      this._report(entry, server, err);
    }));
  },

  // Rolls a refused write back and tells the page.
  _report: function(entry, server, err) {
    const waiting = this._waiting.get(entry.id);
    this._waiting.delete(entry.id);
    const models = this._models(entry, waiting && waiting.model);
    const local = models.length ? models[0].toJSON() : entry.coll && apply(own(entry.base), entry.changes);
    const info = { op: entry.op, coll: entry.coll, doc: entry.doc, ch: entry.ch, changes: entry.changes || entry.data, local, server, error: err };
    this._rollback(entry, server, models);
    for (const model of models) model.trigger('rejected', model, info);
    this.connection.trigger('rejected', this.connection, info);
    if (waiting) waiting.reject(err);
  },

  // The server's document after a refused write: `null` when there is none, the write's base when it
  // cannot be read.
  _current: function(entry, err) {
    if (err.doc !== undefined || !entry.coll) return Promise.resolve(err.doc === undefined ? null : err.doc);
    return this.connection.request('get', { coll: entry.coll, doc: entry.doc }, { wait: true })
      .then((ok) => ok.doc, (e) => (e.code === 'not_found' ? null : entry.base));
  },

  // Removes an answered write and hands `doc` (what the server holds now) to the next write of its
  // document as its base.
  _settle: function(entry, doc) {
    return transact(this.db, ['outbox'], 'readwrite', (s) => request(s.outbox.getAll()).then((all) => {
      s.outbox.delete(entry.id);
      for (const next of all) {
        if (next.after !== entry.id) continue;
        next.after = null;
        next.base = doc;
        s.outbox.put(next);
      }
    })).then(() => {
      this._flight.delete(entry.id);
      return this._reload();
    }).then(() => this._drain());
  },

  // ### Tabs

  _tell: function(message) {
    if (this._tabs && !this._closed) this._tabs.postMessage(message);
  },

  // What another tab did with the shared outbox: a new write (shown here at once; the sending tab picks
  // it up), an answer (confirmed here, and the promise of a write made here resolved), a refusal (rolled
  // back and reported here too).
  _onTab: function(message) {
    if (this._closed) return null;
    return this._reload().then(() => {
      const entry = message.entry || _.findWhere(this.entries, { id: message.id });
      if (message.type === 'write') {
        if (entry && entry.coll) this._overlay(entry, this._views(entry.coll));
        this._drain();
      } else if (message.type === 'answered') {
        this._confirm(entry, message.ok.doc);
        const waiting = this._waiting.get(entry.id);
        if (waiting && !_.findWhere(this.entries, { id: entry.id })) { // not a conflict written again
          this._waiting.delete(entry.id);
          waiting.resolve(message.ok);
        }
      } else if (message.type === 'refused') {
        const e = message.error;
        this._report(entry, message.server, new RTSync.Error(e.code, e.message, e));
      }
    });
  },

  // ### The models

  // The collections of this page that follow `coll`.
  _views: function(coll) {
    const feed = this.connection._channels['coll:' + coll];
    return (feed && feed._views) || [];
  },

  // The live models of a document on this page: in every collection following it, and the one that made
  // the write.
  _models: function(entry, model) {
    const models = model ? [model] : [];
    if (entry.coll) {
      const feed = this.connection._channels['coll:' + entry.coll];
      for (const view of (feed && feed._views) || []) {
        const m = view.get(entry.doc);
        if (m && !_.contains(models, m)) models.push(m);
      }
    }
    return models;
  },

  // The server's answer confirms the write: each model takes the document as its server version (the
  // writes still waiting stay on top, see `RTSync.Model#parse`).
  _confirm: function(entry, doc) {
    if (!doc) return;
    for (const model of this._models(entry)) {
      const attrs = model.parse(doc);
      if (attrs) model.set(attrs);
      if (!this.holds(entry.coll, entry.doc)) model._written = null;
    }
  },

  // Undoes a refused write: the attributes it changed take the server's values again, unless a later
  // write still waiting changes them. A document that does not exist (a refused create, or one deleted
  // meanwhile) leaves its collections; a refused delete brings the server's document back.
  _rollback: function(entry, server, models) {
    const later = _.filter(this.entries, (e) => e.coll === entry.coll && e.doc === entry.doc);
    const kept = {};
    for (const e of later) _.extend(kept, e.changes);
    if (entry.op === 'delete' && server) {
      const feed = this.connection._channels['coll:' + entry.coll];
      for (const view of (feed && feed._views) || []) {
        if (!view.get(entry.doc) && RTSync.matches(view.query.where, server)) view.add(server, { parse: true });
      }
    }
    for (const model of models) {
      if (!server) {
        if (model.collection && !later.length) model.collection.remove(model);
        continue;
      }
      model._server = _.clone(server);
      const attrs = entry.op === 'delete' ? _.clone(server) : { _v: server._v };
      if (entry.op !== 'delete') for (const k of _.keys(entry.changes)) if (!_.has(kept, k)) attrs[k] = server[k];
      for (const k of _.keys(attrs)) if (attrs[k] === undefined) { model.unset(k); delete attrs[k]; }
      model.set(attrs);
      model._written = later.length ? apply(own(server), kept) : null;
    }
  },

  // Shows a waiting write in the models of this page: after a reload, and for a write of another tab.
  _overlay: function(entry, views) {
    for (const view of views) {
      const model = view.get(entry.doc);
      if (entry.op === 'delete') {
        if (model) view.remove(model);
      } else if (model) {
        for (const k in entry.changes) if (entry.changes[k] === undefined) model.unset(k);
        model.set(apply({}, entry.changes));
        model._written = apply(model._written || own(model._server), entry.changes);
      } else if (entry.op !== 'patch') {
        const attrs = _.extend(apply(own(entry.base), entry.changes), { id: entry.doc });
        if (RTSync.matches(view.query.where, attrs)) view.add(attrs)._written = own(attrs);
      }
    }
  },

  // ### The cache

  // The seam of `Collection#fetch` and `Tally#fetch`: the cached copy, at once, then the feed from its
  // offset. Without a cached copy, the usual fetch. Resolves with the collection or tally.
  fetch: function(obj, options) {
    const tally = obj instanceof RTSync.Tally;
    if (!tally) obj._setQuery(_.defaults(_.pick(options, 'where', 'order'), obj.query));
    const key = viewKey(obj);
    return this.ready.then(() => transact(this.db, ['views', 'docs'], 'readonly', (s) => Promise.all([
      request(s.views.get(key)), request(s.docs.index('view').getAll(key)),
    ]))).then(([view, docs]) => {
      if (!view) return obj.fetch(_.extend({}, options, { cache: false }));
      const since = view.epoch != null ? { offset: view.offset, epoch: view.epoch } : null;
      obj.cachedAt = view.at;
      this._fromCache.add(obj);
      // Up to date with the server from here on: `sync`, as a fetch from the server would end.
      const caughtUp = () => {
        obj.cachedAt = null;
        obj.trigger('sync', obj, null, options);
      };
      if (tally) {
        obj._offset = view.offset;
        obj._epoch = view.epoch;
        obj.set(view.tally);
        obj.follow(since);
        obj.listenToOnce(obj._feed, 'subscribe', caughtUp);
      } else {
        obj._gen++;
        const ids = new Set(_.map(docs, (d) => d.id));
        obj.remove(obj.filter((m) => !m.isNew() && !ids.has(String(m.id)) && !obj._pendingOp(m.id)));
        obj.set(_.pluck(docs, 'doc'), { parse: true, remove: false });
        obj._offset = view.offset;
        obj._epoch = view.epoch;
        obj._limit = obj._next = null;
        for (const entry of this.entries) if (entry.coll === _.result(obj, 'collectionName')) this._overlay(entry, [obj]);
        obj._follow(since).then(caughtUp, noop);
      }
      obj.trigger('cached', obj, { at: view.at });
      if (options.success) options.success.call(options.context, obj, view, options);
      return obj;
    });
  },

  // The seam through which collections and tallies report what the server sent (see `persist` in
  // rtsync.js). Writes are gathered and go to IndexedDB together, in one transaction, a moment later.
  // Only whole views are kept: a collection read by pages is not.
  persist: function(obj, what) {
    if (!(obj instanceof RTSync.Tally) && (obj._limit != null || !obj._feed)) return;
    const key = viewKey(obj);
    const dirty = this._dirty.get(key) || { obj, docs: null, put: new Map(), gone: new Set() };
    if (what.docs) _.extend(dirty, { docs: what.docs, put: new Map(), gone: new Set() });
    if (what.doc) { dirty.put.set(what.doc.id, what.doc); dirty.gone.delete(what.doc.id); }
    if (what.gone != null) { dirty.gone.add(String(what.gone)); dirty.put.delete(String(what.gone)); }
    this._dirty.set(key, dirty);
    if (!this._flushing) this._flushing = setTimeout(() => this._flush(), 0);
  },

  // One transaction for what was gathered. A view another tab has written further (a higher offset of
  // the same epoch) is left as it is.
  _flush: function() {
    this._flushing = null;
    const dirty = this._dirty;
    this._dirty = new Map();
    if (this._closed || !dirty.size) return Promise.resolve();
    return this.ready.then(() => transact(this.db, ['views', 'docs'], 'readwrite', (s) => Promise.all(
      Array.from(dirty, ([key, d]) => request(s.views.get(key)).then((old) => {
        const obj = d.obj;
        const epoch = obj._epoch != null ? obj._epoch : obj._feed && obj._feed.position && obj._feed.position.epoch;
        if (old && old.epoch === epoch && old.offset > obj._offset) return null;
        const view = { view: key, offset: obj._offset, epoch, at: Date.now() };
        if (obj instanceof RTSync.Tally) view.tally = _.pick(obj.attributes, 'total', 'counts');
        s.views.put(view);
        const puts = () => {
          for (const doc of d.docs || []) s.docs.put({ view: key, id: String(doc.id), doc });
          for (const [id, doc] of d.put) s.docs.put({ view: key, id: String(id), doc });
          for (const id of d.gone) s.docs.delete([key, id]);
        };
        if (!d.docs) return puts();
        return request(s.docs.index('view').getAllKeys(key)).then((keys) => {
          for (const k of keys) s.docs.delete(k);
          puts();
        });
      }))))).catch((err) => this.connection.trigger('error', this.connection, err));
  },

  // Stops sending and closes the database; the outbox stays stored for the next page.
  close: function() {
    this.stopListening();
    if (this._resign) this._resign();
    if (this.connection.outbox === this) this.connection.outbox = this.connection.cache = null;
    clearTimeout(this._flushing);
    const flushed = this._flush();
    this._closed = true;
    if (this._tabs) this._tabs.close();
    return flushed.then(() => this.ready).then(() => this.db.close(), noop);
  },
});

export default RTSync;
