//     rtsync.js 0.1.0
//     The Backbone client of rtsync, a self-hosted real-time sync server.
//     Released under the MIT license.
//
// rtsync keeps the state on the server and pushes every change to the pages that follow it. This file
// gives a Backbone application the whole of it over one WebSocket:
//
// * **RTSync.Connection**: the socket. Requests carry an `id`; a slow reply makes the connection check
//   the socket, and fails a read but never a subscription or a write, which may still be carried out.
//   The socket reconnects with exponential backoff and full jitter, resubscribes every channel where it
//   left off, and resends the writes that were not acknowledged.
// * **RTSync.Channel**: publish, subscribe, history and presence on one channel.
// * **RTSync.Collection** and **RTSync.Model**: Backbone classes whose `sync` speaks rtsync's collection
//   operations and whose contents follow the server's change feed.
// * **RTSync.Tally**: a Backbone model holding the live aggregate of a tally collection.
//
// Offline persistence (a durable outbox and a cache in IndexedDB) is the separate module
// `rtsync-offline.js`; it plugs into two seams here, `connection.outbox` and `connection.cache`.
//
// The wire protocol is described in `docs/protocol.md`; this library is described in `docs/client.md`.

import BackboneModule from 'backbone';
import underscore from 'underscore';

// Local names for the two dependencies: the plain-script build reaches an imported default through a
// property (`module.default`) at every use, a local only once, which keeps that build in its budget.
const Backbone = BackboneModule;
const _ = underscore;

// Initial Setup
// -------------

// Everything hangs off one object, like `Backbone` itself: the ES module exports it by default and the
// plain-script build puts it on `window.RTSync`.
const RTSync = { VERSION: '0.1.0' };

// The WebSocket implementation. Browsers have one; in Node, inject one (the `ws` package) either here,
// for every connection, or per connection with the `WebSocket` option.
RTSync.WebSocket = typeof WebSocket !== 'undefined' ? WebSocket : null;

// The connection that channels, collections and tallies use when they are not given one. It is created
// by the first `RTSync.connect()`, or on demand with the default options.
RTSync.connection = null;

// Helpers
// -------

const noop = () => {};
// Where the `online`/`offline` events come from (a test may put an EventTarget there).
const browser = () => (typeof window !== 'undefined' ? window : globalThis);

// Attributes that belong to the server: the document id, and every name starting with `_` (`_v`, the
// version, and `_owner`). They are never sent as data: the server refuses reserved names.
const reserved = (model, key) => key === model.idAttribute || key.charAt(0) === '_';

// A write's idempotency key: a random prefix per page load and a counter. The server remembers a key
// for 24 hours per user, so a write resent after a reconnect is applied once.
const keyPrefix = (() => {
  const bytes = new Uint8Array(9);
  if (globalThis.crypto && globalThis.crypto.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
})();
let keyCounter = 0;
RTSync.key = () => keyPrefix + '-' + (++keyCounter).toString(36);

// The socket's address when none is given: `/v1/ws` on the page's own host.
const defaultUrl = () => {
  const loc = globalThis.location;
  if (!loc) throw new Error('rtsync: no page location; pass the `url` option');
  return (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/v1/ws';
};

// The UTF-8 length of a line, to keep frames under the server's limit.
const encoder = typeof TextEncoder !== 'undefined' ? new TextEncoder() : null;
const byteLength = (s) => (encoder ? encoder.encode(s).length : s.length * 3);

// The promise a request returns is also reported through callbacks and events, so a rejection nobody
// awaits must not surface as an "unhandled rejection" (a console error in a browser). Like a jqXHR, the
// promise is there for whoever wants it.
const quiet = (promise) => {
  promise.catch(noop);
  return promise;
};

// The collection an object reads and writes: its `collectionName`, or its collection's.
const collectionNameOf = (obj) => _.result(obj, 'collectionName') || (obj.collection && _.result(obj.collection, 'collectionName'));

// Queries
// -------

// The server's rules for `where` and `order` (`docs/protocol.md`, section 6, *Queries*), so that a view
// keeps the order `list` returns and can tell whether a document belongs to it.

// Strings compare by their UTF-8 bytes, which is code point order, and only up to a first U+0000.
const codePoints = (s) => Array.from(s.split('\0')[0], (c) => c.codePointAt(0));
const compareStrings = (a, b) => {
  const x = codePoints(a), y = codePoints(b);
  for (let i = 0; ; i++) {
    if (i === x.length || i === y.length) return x.length - y.length;
    if (x[i] !== y[i]) return x[i] - y[i];
  }
};

// Missing < null < false < true < numbers < strings < arrays and objects (all equal to each other).
const rank = (v) => [undefined, null, false, true].indexOf(v) + 1 || (typeof v === 'number' ? 5 : typeof v === 'string' ? 6 : 7);
const compareValues = (a, b) => {
  const r = rank(a);
  return r - rank(b) || (r === 5 ? a - b : r === 6 ? compareStrings(a, b) : 0);
};

// An attribute of a model or a document (`undefined` when missing).
const valueOf = (x, name) => {
  const attrs = x instanceof Backbone.Model ? x.attributes : x;
  return _.has(attrs, name) ? attrs[name] : undefined;
};

// A Backbone comparator (two arguments: models or plain documents) that sorts as `list` with this
// `order` does (`["-created", "title"]`; ties by id); without an order, by id.
RTSync.comparator = (order) => {
  const keys = [];
  for (const name of (order || []).concat('id')) {
    keys.push(name);
    if (name.replace(/^-/, '') === 'id') break; // names after `id` never decide
  }
  return (a, b) => {
    for (const key of keys) {
      const attr = key.replace(/^-/, '');
      const c = compareValues(valueOf(a, attr), valueOf(b, attr));
      if (c) return attr === key ? c : -c;
    }
    return 0;
  };
};

const scalarEquals = (v, x) => (typeof x === 'string' ? typeof v === 'string' && !compareStrings(v, x) : v === x);
const inRange = (test) => (v, x) => typeof v === typeof x && test(compareValues(v, x));
const operators = {
  eq: scalarEquals,
  ne: (v, x) => v !== undefined && !scalarEquals(v, x),
  lt: inRange((c) => c < 0),
  lte: inRange((c) => c <= 0),
  gt: inRange((c) => c > 0),
  gte: inRange((c) => c >= 0),
  in: (v, xs) => _.some(xs, (x) => scalarEquals(v, x)),
  exists: (v, x) => (v !== undefined) === x,
};

// Whether a document (or a model) matches `where`, as the server judges it.
RTSync.matches = (where, doc) => _.every(where, (cond, name) => {
    const v = valueOf(doc, name);
    return _.isObject(cond) // operators (an array is refused by the server)
      ? _.every(cond, (x, op) => operators[op] && operators[op](v, x))
      : scalarEquals(v, cond);
  });

const emptyToNull = (x) => (_.isEmpty(x) ? null : x);

// RTSync.Error
// ------------

// Every failure is an `RTSync.Error` with the server's `code` (`not_found`, `conflict`, …) or one of the
// client's own: `timeout` (a read without a reply in time; see `Connection#_onTimeout`), `disconnected`
// (the socket closed before the reply, and the request cannot be resent safely) and `closed` (the
// connection was closed on purpose). A `conflict` also carries `doc`, the server's current version of
// the document (or `null`).
RTSync.Error = class RTSyncError extends Error {
  constructor(code, message, details) {
    super(message || code);
    this.name = 'RTSyncError';
    this.code = code;
    if (details && details.doc !== undefined) this.doc = details.doc;
  }
};

// RTSync.Connection
// -----------------

// One WebSocket per page carries every channel, collection and tally: requests are multiplexed by `id`,
// pushes are routed by channel name. Options:
//
// * `url`: the socket's address, or a function returning it (called before each attempt); defaults to
//   `/v1/ws` on the page's host.
// * `WebSocket`: the WebSocket constructor (defaults to `RTSync.WebSocket`).
// * `timeout`: milliseconds after which a sent request counts as slow (10 s): a read fails, anything
//   else keeps waiting, and the connection checks itself with a ping (see `_onTimeout`).
// * `minDelay`, `maxDelay`: the reconnect backoff's base and cap (250 ms, 10 s).
// * `heartbeat`: after this many quiet milliseconds the connection pings the server (6 s), and
//   `probe`: the ping's own deadline (5 s); an unanswered ping means a dead socket, which is dropped
//   and reopened. The server's pings are WebSocket control frames a page never sees, so only our own
//   probe tells a live link from a proxy that silently drops traffic: quiet for 6 s, no pong 5 s
//   later, and the page knows within 12 s (the check runs every second) that it is not "live".
// * `retryTimeout`: the deadline of an attempt after such a silent failure (750 ms). While the browser
//   says it is online, a silent link is retried at once with this short deadline, so the connection is
//   back within about a second of the network returning; after `fastFor` ms (60 s) of that, the
//   normal backoff and `timeout` take over again (a server that accepts but never answers is not
//   hammered for long). A server that refuses or closes always gets the normal backoff.
// * `maxFrame`: bytes per outgoing frame (60,000: the server accepts 64 KiB by default).
//
// Events: `connecting` (attempt), `online` (info: `user`, `session`, `resumed`), `offline` (info: `code`,
// `reason`, `delay` until the next attempt), `bye` (the server's notice before it closes), `slow` (info:
// `op`, `id`, `waited`: a request that changes state passed its timeout and keeps waiting), `error`.
const Connection = RTSync.Connection = function(options) {
  options = options || {};
  this.url = options.url || defaultUrl;
  this.WebSocket = options.WebSocket || RTSync.WebSocket;
  _.extend(this, _.pick(options, 'timeout', 'minDelay', 'maxDelay', 'heartbeat', 'probe', 'retryTimeout', 'fastFor', 'maxFrame'));
  this.state = 'closed';
  this.user = this.session = null;
  this.attempt = 0;
  this._seq = 0;
  this._requests = new Map();
  this._channels = {};
  this._lines = [];
  this.initialize.apply(this, arguments);
};

// Opens the default connection (or another one) and returns it.
RTSync.connect = function(options) {
  const connection = new Connection(options).open();
  if (!RTSync.connection) RTSync.connection = connection;
  return connection;
};

// `unfollow` of a Collection and of a Tally: stops listening to the feed channel and unsubscribes it.
function unfollowFeed() {
  if (!this._feed) return this;
  this.stopListening(this._feed);
  this._feed.unsubscribe();
  this._feed = null;
  return this;
}

// The connection an object should use: its own, its collection's, or the default one.
const connectionOf = (obj) => {
  const own = obj && (obj.connection || (obj.collection && obj.collection.connection));
  return own || RTSync.connection || RTSync.connect();
};

_.extend(Connection.prototype, Backbone.Events, {

  timeout: 10000,
  minDelay: 250,
  maxDelay: 10000,
  heartbeat: 6000,
  probe: 5000,
  retryTimeout: 750,
  fastFor: 60000,
  maxFrame: 60000,

  // Initialize is an empty function by default. Override it with your own initialization logic.
  initialize: function() {},

  // Starts connecting, unless already connected or connecting. Returns the connection.
  open: function() {
    this._stopped = false;
    if (this.state === 'closed' || this.state === 'offline') this._connect();
    const w = browser();
    if (!this._onNet && w.addEventListener) {
      // The browser knows before any timer: `offline` means no socket can be live (drop it, say so,
      // and wait), `online` means try now, or probe a socket that may have died meanwhile.
      this._onNet = (event) => {
        this._netDown = event.type === 'offline';
        if (this._netDown) { clearTimeout(this._retryTimer); this.retryAt = null; this._drop(4000, 'browser offline'); }
        else if (this.state === 'online') this._ping();
        else if (this.state !== 'closed') { this.attempt = 0; this._drop(4000, 'browser online'); this._connect(); }
      };
      w.addEventListener('online', this._onNet);
      w.addEventListener('offline', this._onNet);
    }
    return this;
  },

  // Closes the socket for good: pending requests fail with `closed`, nothing reconnects.
  close: function() {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    if (this._onNet) {
      browser().removeEventListener('online', this._onNet);
      browser().removeEventListener('offline', this._onNet);
    }
    this._onNet = null;
    if (this.ws) this._drop(1000, 'closed by the client');
    for (const req of this._requests.values()) this._settle(req, new RTSync.Error('closed', 'connection closed'));
    this.state = 'closed';
    return this;
  },

  // While offline, skips the rest of the backoff and tries now.
  reconnect: function() {
    if (this.state === 'offline' && !this._stopped) this._connect();
    return this;
  },

  // The backoff before attempt number `attempt` (0, 1, …): "full jitter", a random delay between zero
  // and an exponentially growing cap, so that a crowd of clients does not come back in lockstep after
  // a server restart.
  backoff: function(attempt) {
    return Math.random() * Math.min(this.maxDelay, this.minDelay * Math.pow(2, attempt));
  },

  // How many writes wait in the durable outbox (`rtsync-offline.js`); none without one.
  pending: function() {
    return this.outbox ? this.outbox.pending() : 0;
  },

  // The channel object for `name` on this connection (one per name; created on first use).
  channel: function(name, options) {
    return this._channels[name] || (this._channels[name] = new Channel(name, _.extend({}, options, { connection: this })));
  },

  // ### Requests

  // Sends `{op, id, …fields}` and returns a promise of the reply's `ok` object; an error reply rejects
  // it with an `RTSync.Error`. While the connection is not online the request waits in order and goes
  // out as soon as it is. The timeout counts from the moment the request is sent; what it does depends
  // on `options.wait` (see `_onTimeout`): by default reads fail with `timeout`, and everything that
  // changes state on the server (`sub`, `unsub`, writes, `auth`, …) keeps waiting for its reply.
  //
  // When the socket closes before the reply, a request that is safe to repeat (every read, and every
  // write carrying an idempotency `key`) stays queued and is sent again after the reconnect; the others
  // fail with `disconnected`. `options.retry` overrides that choice.
  request: function(op, fields, options) {
    options = options || {};
    const id = ++this._seq;
    const req = {
      id,
      op,
      line: JSON.stringify(_.extend({ id, op }, fields)),
      timeout: options.timeout || this.timeout,
      retry: options.retry != null ? options.retry : op !== 'sub' && op !== 'unsub' && op !== 'ping' &&
        (!writeOps[op] || (fields && fields.key != null)),
      wait: op !== 'ping' && (options.wait != null ? !!options.wait : !readOps[op]),
    };
    const promise = new Promise((resolve, reject) => { req.resolve = resolve; req.reject = reject; });
    if (this._stopped) return Promise.reject(new RTSync.Error('closed', 'connection closed'));
    this._requests.set(id, req);
    if (this.state === 'online') this._send(req);
    else if (this.state === 'closed' && !this._stopped) this.open();
    return promise;
  },

  // Writes the request's line and starts its timer.
  _send: function(req) {
    req.sent = true;
    req.sentAt = Date.now();
    req.slow = false;
    this._write(req.line);
    req.timer = setTimeout(() => this._onTimeout(req), req.timeout);
  },

  // Lines written in the same tick leave together, as one frame of `\n`-separated objects (split when
  // a frame would pass `maxFrame`). The server takes the commands of one connection in order, so a
  // `sub` followed by a `list` is one round trip without a race.
  _write: function(line) {
    this._lines.push(line);
    if (this._lines.length === 1) queueMicrotask(() => this._flush());
  },

  _flush: function() {
    const lines = this._lines;
    this._lines = [];
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return; // the close handler decides what is resent
    let frame = '', size = 0;
    for (const line of lines) {
      const n = byteLength(line) + 1;
      if (frame && size + n > this.maxFrame) { ws.send(frame); frame = ''; size = 0; }
      frame = frame ? frame + '\n' + line : line;
      size += n;
    }
    if (frame) ws.send(frame);
  },

  // A request without a reply in time. **A timeout is a question about the socket, not a verdict on the
  // request**: the server answers every command of a connection, in order, so while the socket is alive
  // a late reply is still coming (a `sub` that waits for the store to load a durable channel, a commit
  // on a loaded machine). Giving up on a request the server may still carry out would leave the two
  // sides disagreeing: a `sub` forgotten here leaves the channel offline while the server pushes to it,
  // a write forgotten here may be applied anyway, and a retry with a new key would apply it twice. So:
  //
  // * Reads (and `wait: false`) fail with `timeout`: they change nothing, the caller may simply ask
  //   again, and their late reply is ignored (`_onReply`).
  // * Everything else keeps waiting while the socket lives, and fires `slow` once per send so that a
  //   page can say "still saving…". If the socket dies instead, the close handler resends it (a keyed
  //   write: same key, applied once), fails it with `disconnected` (a channel then resubscribes after
  //   the reconnect), or the connection's `close()` fails it with `closed`.
  //
  // Either way a silent server may mean a dead socket that has not noticed yet, so the connection checks
  // itself with a ping; an unanswered ping drops the socket and the reconnect sorts everything out.
  _onTimeout: function(req) {
    if (req.op === 'ping') {
      this._settle(req, new RTSync.Error('timeout', `no reply to "ping" within ${req.timeout} ms`));
      this._drop(4000, 'ping timeout', true);
      return;
    }
    if (req.wait) {
      req.timer = setTimeout(() => this._onTimeout(req), req.timeout);
      if (!req.slow) {
        req.slow = true;
        this.trigger('slow', this, { op: req.op, id: req.id, waited: Date.now() - req.sentAt });
      }
    } else {
      this._settle(req, new RTSync.Error('timeout', `no reply to "${req.op}" within ${req.timeout} ms`));
    }
    this._ping();
  },

  // One ping at a time: many slow requests need a single answer about the socket.
  _ping: function() {
    if (this.state !== 'online' || this._pinging) return;
    const done = () => { if (this._pinging === ping) this._pinging = null; };
    const ping = this._pinging = this.request('ping', {}, { retry: false, timeout: this.probe });
    ping.then(done, done);
  },

  // Resolves or rejects a request and forgets it.
  _settle: function(req, error, ok) {
    clearTimeout(req.timer);
    this._requests.delete(req.id);
    if (error) req.reject(error);
    else req.resolve(ok);
  },

  // ### The socket's life

  // Opens a socket. Everything happens in its handlers; a handler of a socket that has since been
  // replaced does nothing.
  _connect: function() {
    clearTimeout(this._retryTimer);
    this.state = 'connecting';
    this.trigger('connecting', this, { attempt: this.attempt });
    let ws;
    try {
      const url = typeof this.url === 'function' ? this.url() : this.url;
      ws = this.ws = new this.WebSocket(url);
    } catch (e) {
      this.ws = null;
      this._onClose(null, { code: 1006, reason: e.message });
      return;
    }
    // A socket that opens but never says hello is as good as dead.
    this._helloTimer = setTimeout(() => this.ws === ws && this._drop(4000, 'no hello', true),
      this._fast() ? this.retryTimeout : this.timeout);
    ws.onmessage = (event) => this.ws === ws && this._onFrame(event.data);
    ws.onclose = (event) => this._onClose(ws, event);
    ws.onerror = noop; // a close event always follows
  },

  // Every frame holds one or more JSON objects separated by `\n`: replies (they carry our `id`) and
  // pushes (`msg`, `join`, `leave`, `bye`), in the order the server sent them.
  _onFrame: function(data) {
    this._seen = Date.now();
    if (typeof data !== 'string') return;
    for (const line of data.split('\n')) {
      if (!line) continue;
      let obj;
      try { obj = JSON.parse(line); } catch (e) { continue; }
      if (!obj || typeof obj !== 'object') continue;
      if (obj.op === 'hello') this._onHello(obj);
      else if (obj.id != null && (obj.ok !== undefined || obj.error !== undefined)) this._onReply(obj);
      else if (obj.op === 'bye') this.trigger('bye', this, obj);
      else if (obj.ch != null && this._channels[obj.ch]) this._channels[obj.ch]._onPush(obj);
      else if (obj.error) this.trigger('error', this, new RTSync.Error(obj.error.code, obj.error.message));
    }
  },

  _onReply: function(obj) {
    const req = this._requests.get(obj.id);
    if (!req) return; // a read that timed out meanwhile: its answer changes nothing
    if (obj.error) this._settle(req, new RTSync.Error(obj.error.code, obj.error.message, obj.error));
    else this._settle(req, null, obj.ok);
  },

  // The server's `hello` makes the connection usable. First every channel resubscribes where it left
  // off, then the requests that waited (or are resent) go out in their original order: a collection's
  // change feed is back before its resent writes are answered.
  _onHello: function(hello) {
    clearTimeout(this._helloTimer);
    const resumed = this.user != null;
    this.user = hello.user;
    this.session = hello.session;
    this.state = 'online';
    this.attempt = 0;
    this._silentAt = null;
    this._seen = Date.now();
    for (const name in this._channels) this._channels[name]._onOnline();
    for (const req of this._requests.values()) if (!req.sent) this._send(req);
    clearInterval(this._beat);
    this._beat = setInterval(() => {
      if (Date.now() - this._seen >= this.heartbeat) this._ping();
    }, Math.min(1000, this.heartbeat / 2));
    this.trigger('online', this, { user: hello.user, session: hello.session, resumed });
  },

  // Closes the socket from our side and acts on it at once (a dead socket may take minutes to report
  // its own close).
  // `silent`: the link said nothing (no pong, no hello), as opposed to a close or a refusal.
  _drop: function(code, reason, silent) {
    const ws = this.ws;
    if (!ws) return;
    if (silent) this._silentAt = this._silentAt || Date.now();
    try { ws.close(code === 1000 ? 1000 : 4000, reason); } catch (e) { /* already closing */ }
    this._onClose(ws, { code: 1006, reason }, silent);
  },

  // Retrying fast: only after a silent failure, for `fastFor` ms, while the browser says it is online.
  _fast: function() {
    return this._silentAt != null && Date.now() - this._silentAt < this.fastFor && !this._netDown;
  },

  // After a close: requests sent and not answered are resent later or fail (see `request`), channels go
  // quiet, and unless the connection was closed on purpose the next attempt is scheduled.
  _onClose: function(ws, event, silent) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearTimeout(this._helloTimer);
    clearInterval(this._beat);
    for (const req of Array.from(this._requests.values())) {
      if (!req.sent) continue;
      clearTimeout(req.timer);
      req.sent = false;
      if (!req.retry) this._settle(req, new RTSync.Error('disconnected', `connection lost before the reply to "${req.op}"`));
    }
    for (const name in this._channels) this._channels[name]._onOffline();
    if (this._stopped) { this.state = 'closed'; return; }
    this.state = 'offline';
    if (ws && !silent) this._silentAt = null; // a socket that closed: the server is reachable, maybe down
    // Offline browser: no attempt until its `online` event.
    const delay = this._netDown ? null : this._fast() ? 0 : this.backoff(this.attempt++);
    this.retryAt = delay == null ? null : Date.now() + delay;
    clearTimeout(this._retryTimer);
    if (delay != null) this._retryTimer = setTimeout(() => this._connect(), delay);
    this.trigger('offline', this, { code: event && event.code, reason: event && event.reason, delay });
  },
});

// The operations that change state: without an idempotency key they are not resent.
const writeOps = { pub: 1, create: 1, update: 1, patch: 1, delete: 1 };

// The operations that only read: they may fail with `timeout` (see `_onTimeout`).
const readOps = { list: 1, get: 1, tally: 1, history: 1, presence: 1, ping: 1 };

// RTSync.Channel
// --------------

// A channel: an ordered, numbered stream of publications, with history and (where the namespace
// enables it) presence. Create one with `connection.channel(name)` or `new RTSync.Channel(name,
// {connection, presence})`; `presence: true` keeps `channel.members`, a Backbone collection of the
// sessions subscribed to it (`{session, user, info}`), up to date.
//
// Events: `message` (data, publication, channel) for every publication after the subscription, exactly
// once and in order, also across reconnects; `subscribe` (channel, {offset, epoch, recovered, resumed});
// `stale` (channel) when a resubscription could not recover what was missed, so state derived from
// the channel must be reloaded; `join` and `leave` (member, channel); `error` (channel, error).
//
// On a `coll:NAME` channel, `setWhere(where)` makes the subscription a live filtered
// view: the server then sends only the changes of documents that match it before or after the change
// (`docs/protocol.md`, *Live filtered views*). Such offsets jump: only offsets at or below the position
// count as seen, a jump is never a gap.
const Channel = RTSync.Channel = function(name, options) {
  options = options || {};
  this.name = name;
  this.connection = options.connection || connectionOf(null);
  this.withPresence = !!options.presence;
  this.position = null; // {offset, epoch} of the last publication seen
  this.state = 'idle';  // idle | subscribing | subscribed | offline
  this.members = new Backbone.Collection(null, { model: Member });
  this.initialize.apply(this, arguments);
};

// A presence member is one session of one user.
const Member = Backbone.Model.extend({ idAttribute: 'session' });

_.extend(Channel.prototype, Backbone.Events, {

  initialize: function() {},

  // Subscribes (once; repeated calls return the same subscription) and returns a promise of the `sub`
  // reply. The subscription lasts until `unsubscribe`, across reconnects. A `position` set before the
  // first `subscribe` starts it after that position, as a resubscription would: the publications since
  // then come first (`recovered`), or the channel fires `stale`.
  subscribe: function() {
    if (this._wanted) return this._subscribing || Promise.resolve(this._reply);
    this._wanted = true;
    this.connection._channels[this.name] = this;
    return this._subscribe();
  },

  // Stops the subscription and forgets the position. A `sub` still waiting for its reply is answered
  // first (the server takes a connection's commands in order), so the `unsub` sent here undoes it too;
  // its reply, when it comes, is ignored (see `_subscribe`).
  unsubscribe: function() {
    const was = this.state;
    this._wanted = false;
    this._subscribing = null;
    this._attempt = null;
    this._buffer = null;
    if (this.connection._channels[this.name] === this) delete this.connection._channels[this.name];
    this.state = 'idle';
    this.position = null;
    this.members.reset();
    if (was !== 'subscribed' && was !== 'subscribing') return Promise.resolve({});
    return quiet(this.connection.request('unsub', { ch: this.name }));
  },

  // Changes the filter of a `coll:` channel. The server cannot change a subscription's filter, so a
  // subscribed channel sends `unsub` and subscribes again from its position with the new `where` (one
  // frame, applied in order: nothing is missed); one still waiting for its `sub` reply does so after it.
  setWhere: function(where) {
    where = emptyToNull(where);
    if (!_.isEqual(where, this.where)) {
      this.where = where;
      // idle or offline: the next `sub` carries it
      if (this.state === 'subscribed') this._resubscribe();
      else this._refilter = this.state === 'subscribing';
    }
  },

  _resubscribe: function() {
    this._refilter = false;
    this.connection.request('unsub', { ch: this.name }).catch(noop);
    this._subscribe().catch(noop);
  },

  // Publishes `data` (any JSON) and returns a promise of `{offset}`. Publications carry an idempotency
  // key (give your own with `options.key`), so one lost on a dropped socket is resent and published once.
  publish: function(data, options) {
    const outbox = this.connection.outbox;
    if (outbox) return outbox.publish(this.name, data);
    const key = (options && options.key) || RTSync.key();
    return this.connection.request('pub', { ch: this.name, data, key });
  },

  // The kept publications: `options` are `limit`, `since` (offset, exclusive) and `reverse`.
  history: function(options) {
    return this.connection.request('history', _.extend({ ch: this.name }, _.pick(options || {}, 'limit', 'since', 'reverse')));
  },

  // Who is here now: `{clients: [{session, user, info}], users, sessions}`.
  presence: function() {
    return this.connection.request('presence', { ch: this.name });
  },

  // Sends `sub`, from where the channel left off if it has a position. Publications pushed before the
  // reply is processed wait in `_buffer`, so they come out after the recovered ones, in order.
  //
  // Server and channel must agree on whether this connection is subscribed, so the `sub` never fails
  // with `timeout` (see `Connection#_onTimeout`): it stays `subscribing` until the server answers, or
  // until the socket closes, which ends the server's subscription as well (`disconnected`: the channel
  // is `offline` and subscribes again after the reconnect). Each `sub` is one attempt; only the
  // current one may change the channel. An attempt becomes stale only through `unsubscribe`, which
  // sends `unsub` behind it when it was in flight: its late reply is then dropped here and the server,
  // which answers in order, has already undone it. At most one `sub` per channel is in flight on a
  // socket, so the server never sees a second `sub` for a channel it already serves.
  _subscribe: function() {
    const since = this.position;
    const fields = { ch: this.name };
    if (since) fields.since = since;
    if (this.withPresence) fields.presence = true;
    if (this.where) fields.where = this.where;
    this.state = 'subscribing';
    this._buffer = [];
    const attempt = this._attempt = {};
    const promise = this.connection.request('sub', fields)
      .then((ok) => this._onSubscribed(ok, since, attempt), (err) => this._onSubscribeError(err, attempt));
    this._subscribing = promise;
    return quiet(promise);
  },

  _onSubscribed: function(ok, since, attempt) {
    if (attempt !== this._attempt) return ok;
    this._attempt = null;
    this._subscribing = null;
    this._reply = ok;
    this.state = 'subscribed';
    const recovered = !!(since && ok.recovered);
    if (recovered) {
      // Exactly the publications after our position: deliver them first.
      this.position = { offset: since.offset, epoch: ok.epoch };
      for (const pub of ok.pubs || []) this._deliver(pub);
    }
    this.position = { offset: Math.max(ok.offset, recovered ? this.position.offset : 0), epoch: ok.epoch };
    const info = { offset: ok.offset, epoch: ok.epoch, recovered, resumed: !!since };
    this.trigger('subscribe', this, info);
    if (since && !recovered) this.trigger('stale', this);
    const buffered = this._buffer;
    this._buffer = null;
    for (const pub of buffered) this._deliver(pub);
    if (this.withPresence) {
      this.presence().then((p) => this.members.set(p.clients), (err) => this.trigger('error', this, err));
    }
    if (this._refilter) this._resubscribe();
    return ok;
  },

  // A subscription lost to a closed socket is renewed when the connection is back; any other error
  // ends it.
  _onSubscribeError: function(err, attempt) {
    if (attempt !== this._attempt) throw err;
    this._attempt = null;
    this._subscribing = null;
    this._buffer = null;
    if (err.code === 'disconnected') {
      this.state = 'offline';
    } else {
      this._wanted = false;
      this.state = 'idle';
      if (this.connection._channels[this.name] === this) delete this.connection._channels[this.name];
      this.trigger('error', this, err);
    }
    throw err;
  },

  // Pushes for this channel, routed here by the connection.
  _onPush: function(obj) {
    if (obj.op === 'msg') {
      if (this._buffer) this._buffer.push(obj);
      else if (this.state === 'subscribed') this._deliver(obj);
    } else if (obj.op === 'join') {
      const member = this.members.add(_.pick(obj, 'session', 'user', 'info'), { merge: true });
      this.trigger('join', member, this);
    } else if (obj.op === 'leave') {
      const member = this.members.get(obj.session) || new Member(_.pick(obj, 'session', 'user', 'info'));
      this.members.remove(obj.session);
      this.trigger('leave', member, this);
    }
  },

  // Offsets only grow: anything at or below the position was seen already (a recovery overlapping a
  // buffered push, say) and is dropped, so every publication comes out exactly once.
  _deliver: function(pub) {
    if (this.position && pub.offset <= this.position.offset) return;
    if (this.position) this.position.offset = pub.offset;
    this.trigger('message', pub.data, pub, this);
  },

  _onOnline: function() {
    if (this._wanted && !this._subscribing) this._subscribe().catch(noop);
  },

  _onOffline: function() {
    if (this._wanted && this.state !== 'subscribing') this.state = 'offline';
  },
});

Connection.extend = Channel.extend = Backbone.Model.extend;

// RTSync.sync
// -----------

// The persistence seam, in the shape of `Backbone.sync`: `(method, model, options)` maps Backbone's
// methods onto rtsync's collection operations, and `connection.request` is the transport behind it.
// A collection's `read` is `list` (every page, or one with `options.limit`), a model's is `get`, a
// tally's is `tally`; writes are `create`, `update`, `patch` and `delete`, each with an idempotency
// `key` and, once the model has one, its version `v`.
//
// It unwraps the replies itself, so plain `Backbone.Model` and `Backbone.Collection` classes need no
// `parse`: `options.success` gets the documents of a `list` (an array), the document of a `get` or a
// write, `{v}` for a delete. The whole reply is left in `options.reply` (a `list`'s with `offset` and
// `epoch` of its first page and `next` of its last). It returns a promise of the model or collection,
// settled after `success` or `error` ran, so `fetch`, `save` and `destroy` return promises.
RTSync.sync = function(method, model, options) {
  options = options || {};
  const connection = connectionOf(model);
  const coll = collectionNameOf(model);
  if (!coll) throw new Error('rtsync: a "collectionName" property must be specified');
  let promise;
  if (method === 'read') {
    const how = { wait: options.wait };
    if (model instanceof RTSync.Tally) promise = connection.request('tally', { coll, group: model.group }, how);
    else if (model instanceof Backbone.Collection) promise = list(connection, coll, model, options, how);
    else promise = connection.request('get', { coll, doc: model.id }, how);
  } else {
    // The offline seam: with a durable outbox the write is stored first, sent by it, applied once.
    promise = connection.outbox ? connection.outbox.write(method, model, options, coll) : write(method, model, options, connection, coll);
  }
  model.trigger('request', model, promise, options);
  return quiet(promise.then((reply) => {
    options.reply = reply;
    if (options.success) options.success(unwrap(reply, model));
    return model;
  }, (err) => {
    if (options.error) options.error(err);
    throw err;
  }));
};

// `{docs}` → the documents, `{doc}` → the document; a tally's reply stays whole (`Tally#parse` keeps
// its offset).
const unwrap = (reply, model) => (model instanceof RTSync.Tally ? reply : reply.docs || ('doc' in reply ? reply.doc : reply));

// A collection's `list`: `where` and `order` from the collection's `query` (an `RTSync.Collection`'s
// `fetch` has just set it) or from the options (any other Backbone collection). With
// `limit`, one page; without, every page, put together as one reply with the first page's `offset` and
// `epoch`: a change after that offset comes on the feed, and one that a later page already shows comes
// again with the same version. A paging whose cursor `expired` (the collection changed too much
// meanwhile) starts over, a few times.
function list(connection, coll, collection, options, how) {
  const fields = _.extend({ coll, limit: options.limit }, collection.query || _.pick(options, 'where', 'order'));
  let docs = [];
  let first;
  const page = (after, restarts) => connection.request('list', _.extend({ after }, fields), how).then((reply) => {
    first = first || reply;
    docs.push(...reply.docs);
    if (reply.next != null && options.limit == null) return page(reply.next, restarts);
    return _.extend({}, first, { docs, next: reply.next });
  }, (err) => {
    if (err.code !== 'expired' || after === options.after || restarts >= 3) throw err;
    docs = [];
    first = null;
    return page(options.after, restarts + 1);
  });
  return page(options.after, 0);
}

// How often a write is retried after conflicts, each time on top of the newer server version.
RTSync.maxConflictRetries = 3;

// One write. A model's writes go out one after the other (a `save` right after a `create` becomes an
// `update` of the created document, with its new version, instead of a second document). The data is
// what the model holds when the write goes out. While a write is in flight the model's collection holds
// back its change feed, so the server's echo of our own write never shows up as a second `add`.
function write(method, model, options, connection, coll) {
  const captured = options.wait ? model.toJSON(options) : null; // `wait` attributes exist only now
  const patch = method === 'patch' ? _.clone(options.attrs) : null;
  const collection = model.collection && model.collection._hold ? model.collection : null;
  if (collection) collection._hold();

  const attempt = (retries, data) => {
    let op = method;
    if (op === 'create' && !model.isNew()) op = 'update';
    const fields = { coll, key: RTSync.key() };
    if (op !== 'create') {
      fields.doc = model.id;
      if (model.has('_v')) fields.v = model.get('_v');
    }
    if (op === 'patch') fields.data = data || patch;
    else if (op !== 'delete') fields.data = data || model.toJSON(options);
    if (fields.data) fields.data = _.omit(fields.data, (v, k) => reserved(model, k));
    return connection.request(op, fields).catch((err) => {
      if (err.code !== 'conflict') throw err;
      if (op === 'delete' && !err.doc) return { v: model.get('_v') }; // gone already: that is what we wanted
      if (!model._onConflict) throw err; // a plain Backbone.Model: no conflict policy
      if (op === 'delete') {
        model._onConflict(err, options, true);
        throw err;
      }
      if (retries >= RTSync.maxConflictRetries || !model._onConflict(err, options, false)) throw err;
      return attempt(retries + 1, op === 'patch' ? patch : null);
    });
  };

  const previous = model._writing || Promise.resolve();
  const run = () => attempt(0, method === 'patch' ? patch : captured);
  const promise = previous.then(run, run);
  const done = model._writing = promise.then(noop, noop);
  done.then(() => {
    if (model._writing === done) model._writing = null;
    if (collection) collection._release();
  });
  return promise;
}

// RTSync.Model
// ------------

const invalid = (model) => quiet(Promise.reject(new RTSync.Error('invalid', model.validationError)));

// A document of an rtsync collection. Its attributes are the document's, with `id`, `_v` (the version)
// and `_owner` from the server. The model remembers the last version it got from the server, so it
// knows which attributes the user changed since (`localChanges`): updates from elsewhere never wipe
// out those edits, and they are what a conflict re-applies.
//
// A model outside a collection names its collection with `collectionName`. Events, besides Backbone's:
// `conflict` (model, {local, server, changed, error}, options).
RTSync.Model = Backbone.Model.extend({

  sync: RTSync.sync,

  constructor: function(attributes, options) {
    if (options && options.connection) this.connection = options.connection;
    if (options && options.collectionName) this.collectionName = options.collectionName;
    Backbone.Model.apply(this, arguments);
  },

  // Backbone's `save`, except that it always returns a promise: **a save that would change nothing on
  // the server sends nothing** (a model that exists there, with no write in flight, whose attributes,
  // with `attrs` set, equal the last version it saw, or with `patch`, whose `attrs` do) and resolves at
  // once with the model (`success` is called, no `request` or `sync` event); a save that fails
  // validation rejects with an `invalid` error (the `invalid` event fires as usual). `force: true`
  // writes anyway.
  save: function(key, val, options) {
    let attrs = key;
    if (key == null || typeof key === 'object') options = val;
    else (attrs = {})[key] = val;
    options = _.extend({ validate: true, parse: true }, options);
    const server = this._server;
    const target = options.patch ? attrs || {} : _.extend({}, this.attributes, attrs);
    if (server && !this.isNew() && !this._writing && !options.force &&
        _.every(_.union(_.keys(target), options.patch ? [] : _.keys(server)), (k) => reserved(this, k) || _.isEqual(target[k], server[k]))) {
      if (attrs && !this.set(attrs, options)) return invalid(this);
      if (options.success) options.success.call(options.context, this, this.synced(), options);
      return Promise.resolve(this);
    }
    return Backbone.Model.prototype.save.call(this, attrs, options) || invalid(this);
  },

  // Backbone's `destroy`, always returning a promise (Backbone returns `false` for a model never saved).
  destroy: function(options) {
    return Backbone.Model.prototype.destroy.call(this, options) || Promise.resolve(this);
  },

  // The version of the document this model last saw, 0 if none.
  version: function() {
    return this.get('_v') || 0;
  },

  // The attributes that differ from the last version seen from the server: `{name: value}`, and
  // `{name: undefined}` for an attribute the user removed. All of them while the model is new.
  localChanges: function() {
    const server = this._server || {};
    const changes = {};
    _.each(this.attributes, (value, key) => {
      if (!reserved(this, key) && !_.isEqual(value, server[key])) changes[key] = value;
    });
    _.each(server, (value, key) => {
      if (!reserved(this, key) && !_.has(this.attributes, key)) changes[key] = undefined;
    });
    return changes;
  },

  hasLocalChanges: function() {
    return !_.isEmpty(this.localChanges());
  },

  // A copy of the last version the model got from the server (`null` while it has none).
  synced: function() {
    return this._server ? _.clone(this._server) : null;
  },

  // Every document from the server comes through here: replies (`{doc}`), `list` entries and change
  // feed upserts. A version older than the one the model has is ignored (replies and pushes can cross).
  // The result is the server's document with the user's unsaved changes on top. An attribute the
  // server no longer has is removed right here, since `set` can add and change but not remove.
  parse: function(resp) {
    const doc = resp && resp.doc !== undefined && resp._v === undefined ? resp.doc : resp;
    if (!doc || typeof doc !== 'object') return doc;
    if (this._server && doc._v < this._server._v) return null;
    const changes = this.localChanges();
    this._server = _.clone(doc);
    const attrs = _.omit(_.extend({}, doc, changes), _.isUndefined);
    for (const key of _.keys(this.attributes)) if (!_.has(attrs, key)) this.unset(key);
    return attrs;
  },

  // The conflict policy. `server` is the document as the server has it now (`null` if it was deleted),
  // `local` the model's attributes, `changed` the attributes the user changed since the last version
  // the model saw. Return the attributes to write again (on top of the server's version), or `false`
  // to give up, which fails the save with the `conflict` error.
  //
  // **The default re-applies the user's changes on top of the server's version**: attributes the user
  // did not touch take the server's values, the ones the user changed keep the user's values. A deleted
  // document is not brought back.
  resolveConflict: function(server, local, changed) {
    if (!server || this.conflicts === 'reject') return false; // the opt-in: the losing write fails
    return _.omit(_.extend({}, server, changed), _.isUndefined);
  },

  // A write met a newer version. Tell the world, ask `resolveConflict`, and when it answers, make the
  // server's version the model's base and show the resolved attributes. Returns whether to retry.
  _onConflict: function(err, options, deleting) {
    const server = err.doc || null;
    const changed = this.localChanges();
    this.trigger('conflict', this, { local: this.toJSON(), server, changed, error: err }, options);
    const attrs = deleting ? server : this.resolveConflict(server, this.toJSON(), changed);
    if (!attrs) {
      if (!server && this.collection) this.collection.remove(this);
      return false;
    }
    this._server = _.clone(server);
    this.set(attrs);
    for (const key of _.keys(this.attributes)) if (!_.has(attrs, key)) this.unset(key);
    return true;
  },
});

// RTSync.Collection
// -----------------

// A live collection: `fetch` lists the documents and then follows the change feed `coll:NAME`, so adds,
// changes and removals made anywhere arrive as Backbone's `add`, `change` and `remove` events. Set
// `collectionName` (or pass it as an option); `live: false` makes `fetch` a plain one-off `list`.
//
// The feed and the list are put together by offset: `list` returns the feed offset of its snapshot and
// only later changes are applied. After a reconnect the feed resumes where it stopped; if the server
// could not recover the gap, the collection lists again and merges with `set` (no `reset`, no flicker).
//
// **Views.** With `where` (a class property or an option, or given to `fetch`) the collection is a live
// filtered view: it lists only the matching documents and follows the feed with the same filter, so a
// document that stops matching leaves it (`remove`) and one that starts matching joins it (`add`). With
// `order` it keeps itself sorted as `list` returns it (a comparator from `RTSync.comparator(order)`);
// without, the models stay in the order they came: `list`'s (by id), then live additions at the end.
// The current filter and order are `collection.query` (`where` there, since `collection.where()` stays
// Backbone's method).
//
// **Pages.** `fetch()` reads every page; `fetch({limit})` only the first, then `hasMore()` and
// `fetchNext()` add the following ones (infinite scroll). While pages remain, a document that arrives
// on the feed and sorts after the last one loaded waits until the pages reach it (the server places
// every page as of the first, so a later page does not bring what was created or moved since).
RTSync.Collection = Backbone.Collection.extend({

  model: RTSync.Model,
  sync: RTSync.sync,
  live: true,
  _gen: 0,

  constructor: function(models, options) {
    options = options || {};
    _.extend(this, _.pick(options, 'connection', 'collectionName', 'live'));
    // A class's `where: {…}` would hide Backbone's `where()` method: it becomes `query.where`.
    const where = _.isFunction(this.where) ? null : this.where;
    if (where) this.where = Backbone.Collection.prototype.where;
    this._holds = 0;
    this._changes = [];
    this._later = {}; // by id: feed documents past the last page loaded, until the pages reach them
    this._setQuery(_.defaults(_.pick(options, 'where', 'order'), { where, order: this.order }));
    Backbone.Collection.apply(this, arguments);
  },

  // `RTSync.sync` hands over the documents; a `{docs}` reply (another sync) is unwrapped here. A page
  // that a newer `fetch` overtook adds nothing, nor does a document the outbox is about to delete.
  parse: function(resp, options) {
    if (options && options.gen < this._gen) return [];
    const docs = resp && resp.docs ? resp.docs : resp;
    return _.isArray(docs) ? _.reject(docs, (doc) => this._pendingOp(doc.id) === 'delete') : docs;
  },

  // The last write the outbox holds for a document (`create`, `update`, `patch`, `delete`), if any.
  _pendingOp: function(id) {
    const outbox = this.live && connectionOf(this).outbox;
    return outbox ? outbox.holds(collectionNameOf(this), String(id)) : undefined;
  },

  // Lists the documents and merges them in: documents that are gone are removed, new ones added,
  // changed ones updated; models not yet created on the server stay. Subscribes to the feed first (both
  // requests leave in one frame, in order), and holds the feed back until the list is in.
  //
  // `where` and `order` become the collection's `query` (and the feed's filter); `limit` reads only the
  // first page of that many documents (`hasMore`, `fetchNext`). Resolves with the collection.
  fetch: function(options) {
    options = _.extend({ remove: false }, options);
    const more = options.gen != null; // a next page, from fetchNext
    // The offline seam: a cached copy of the whole view answers at once, then the feed catches up.
    const cache = !more && this.live && options.limit == null && options.cache !== false && connectionOf(this).cache;
    if (cache) return cache.fetch(this, options);
    if (!more) {
      this._setQuery(_.defaults(_.pick(options, 'where', 'order'), this.query));
      this._gen++;
      this._later = {};
      if (this.live) this._follow();
    }
    const success = options.success;
    options.success = (collection, resp, opts) => {
      if (options.gen < this._gen) return;
      const docs = this.parse(resp) || [];
      const reply = opts.reply || {};
      if (!more) {
        if (!options.reset) {
          const ids = new Set(_.map(docs, (doc) => String(doc.id)));
          this.remove(this.filter((m) => !m.isNew() && !ids.has(String(m.id)) && !this._pendingOp(m.id)), opts);
        }
        if (reply.offset != null) {
          this._offset = reply.offset;
          this._epoch = reply.epoch;
        }
        this._limit = options.limit;
        persist(this, { docs: reply.docs || docs }); // with those the outbox is about to delete
      }
      this._next = reply.next;
      if (docs.length) this._end = _.last(docs);
      this._reach();
      if (success) success.call(options.context, collection, resp, opts);
    };
    this._hold();
    const promise = Backbone.Collection.prototype.fetch.call(this, options);
    const release = () => this._release();
    promise.then(release, release);
    return promise;
  },

  // Whether `fetch({limit})` left pages to read.
  hasMore: function() {
    return this._next != null;
  },

  // Adds the next page (of the same `where`, `order` and `limit`) with `set` and resolves with the
  // collection; at once when there is none. Calls made while a page is on its way get that page's
  // promise. A `fetch` meanwhile starts over: the page it overtook is dropped. When the paging has
  // `expired`, the collection lists again as many as it holds, then pages on from there.
  fetchNext: function(options) {
    if (!this._page && this.hasMore()) {
      const done = () => { this._page = null; }; // only one page is on its way at a time
      const next = this.fetch(_.extend({}, options, { limit: this._limit, after: this._next, gen: this._gen }));
      this._page = next.catch((err) => {
        if (err.code !== 'expired') throw err;
        return this._refetch();
      });
      this._page.then(done, done);
    }
    return this._page || Promise.resolve(this);
  },

  // Adds the feed documents that the pages have now reached (all of them after the last page).
  _reach: function() {
    _.each(_.keys(this._later), (id) => {
      const doc = this._later[id];
      if (this.hasMore() && this._compare(doc, this._end) > 0) return;
      delete this._later[id];
      const model = this.get(id);
      if (!model || (model.get('_v') || 0) < doc._v) this.add(doc, { merge: true, parse: true, remote: true });
    });
  },

  // Sets `query` and, unless the collection has a comparator of its own, the comparator of its order.
  _setQuery: function(query) {
    const order = emptyToNull(query.order);
    this.query = { where: emptyToNull(query.where), order };
    this._compare = RTSync.comparator(order);
    if (!this.comparator || this.comparator === this._derived) {
      this.comparator = this._derived = order && this._compare;
      if (order && this.models) this.sort();
    }
    if (this._feed) this._feed.setWhere(feedWhere(this._feed));
  },

  // Subscribes to the change feed (once) and resolves with the collection when it is caught up. After
  // `unfollow`, it catches up on what it missed: `sub` from the last offset it saw, or, when the server
  // cannot recover that (or another view of this connection already holds the subscription), a `fetch`.
  follow: function() {
    return this._follow(this._epoch != null && { offset: this._offset, epoch: this._epoch });
  },

  _follow: function(since) {
    if (this._feed) return this._following;
    const feed = this._feed = connectionOf(this).channel('coll:' + collectionNameOf(this));
    const shared = feed._wanted;
    (feed._views = feed._views || []).push(this);
    this.listenTo(feed, 'message', this._onChange);
    this.listenTo(feed, 'stale', this._refetch);
    this.listenTo(feed, 'error', (channel, err) => this.trigger('error', this, err, {}));
    feed.setWhere(feedWhere(feed));
    if (!shared && since) feed.position = since;
    const caughtUp = feed.subscribe().then(() => (since && shared ? this._refetch() : this._relist));
    return this._following = quiet(caughtUp.then(() => this));
  },

  // Stops following the feed (the subscription ends with the connection's last view of it).
  unfollow: function() {
    const feed = this._feed;
    if (feed) {
      this.stopListening(feed);
      this._feed = null;
      feed._views = _.without(feed._views, this);
      if (feed._views.length) feed.setWhere(feedWhere(feed));
      else feed.unsubscribe();
    }
    return this;
  },

  // The feed could not recover what it missed: list again (when paging, as many as are loaded, in one
  // page). Nobody would repeat this fetch after a `timeout`: it waits for its reply while the socket lives.
  _refetch: function() {
    if (!this._relist) {
      const limit = this._limit && Math.min(1000, Math.max(this._limit, this.length));
      const done = () => { this._relist = null; }; // only one at a time
      this._relist = this.fetch({ wait: true, limit, cache: false });
      this._relist.then(done, done);
    }
    return this._relist;
  },

  // Feed changes wait while a `list` or one of our own writes is in flight, then apply in order.
  _hold: function() {
    this._holds++;
  },

  _release: function() {
    this._holds--;
    while (!this._holds && this._changes.length) this._apply.apply(this, this._changes.shift());
  },

  _onChange: function(change, pub) {
    if (this._holds) this._changes.push([change, pub]);
    else this._apply(change, pub);
  },

  // One change from the feed: `{type: "upsert", doc}`, `{type: "leave", id, _v}` (out of the filter) or
  // `{type: "delete", id, _v}`. Changes the list already contained, and versions the model already has
  // (our own writes' echoes, a page that showed it), change nothing. An upsert that does not match the
  // view's `where` (a feed shared with other views) is a leave. While pages remain, a new document that
  // sorts after the last one loaded waits in `_later` until the pages reach it.
  _apply: function(change, pub) {
    if (this._offset != null && pub.offset <= this._offset) return;
    this._offset = pub.offset;
    const doc = change && change.doc;
    const id = doc ? doc.id : change && change.id;
    const model = change && this.get(id);
    const v = model ? model.get('_v') || 0 : -1;
    delete this._later[id]; // this change is newer
    let kept = {};
    if (doc && v < doc._v && RTSync.matches(this.query.where, doc)) {
      const deleting = this._pendingOp(doc.id) === 'delete';
      if (model || !(this.hasMore() && this._compare(doc, this._end) > 0 || deleting)) this.add(doc, { merge: true, parse: true, remote: true });
      else if (!deleting) this._later[id] = doc;
      kept = { doc };
    } else if (model ? (doc ? v < doc._v : v <= change._v) : id != null) {
      // A delete, a leave, or an upsert out of the filter. Without the model (our own delete removed it
      // already) the cache may still hold the document: it goes there too.
      if (model) this.remove(model, { remote: true });
      kept = { gone: id };
    }
    persist(this, kept);
  },
});

// The offline seam: what the server sent (`{docs}` of a whole list, `{doc}`, `{gone: id}`, or just a
// new offset, `{}`) goes to the connection's cache, if it has one.
const persist = (obj, what) => {
  const cache = connectionOf(obj).cache;
  if (cache) cache.persist(obj, what);
};

// The filter that serves every view of a feed on one connection: their `where` when they all have the
// same, none otherwise (each view then keeps to its own).
const feedWhere = (feed) => {
  const wheres = _.uniq(_.map(feed._views, (view) => JSON.stringify(view.query.where)));
  return wheres.length === 1 ? feed._views[0].query.where : null;
};

// RTSync.Tally
// ------------

// The live aggregate of a tally collection: attributes `total` (how many documents) and `counts`
// (`{field: {value: count}}`), refreshed whole from the channel `tally:NAME` after every change. Each
// publication carries the entire tally, so the newest one (by offset) simply wins. `fetch` gets the
// current tally and starts following; listen to `change:counts` and `change:total`. With the option
// `group` (a collection with a `tally_group`), it is that group's tally, from `tally:NAME:GROUP`.
RTSync.Tally = Backbone.Model.extend({

  defaults: function() {
    return { total: 0, counts: {} };
  },

  constructor: function(attributes, options) {
    options = options || {};
    _.extend(this, _.pick(options, 'connection', 'collectionName', 'group'));
    this._offset = null;
    Backbone.Model.apply(this, arguments);
  },

  sync: function(method, model, options) {
    if (method !== 'read') throw new Error('rtsync: a tally is read-only');
    return RTSync.sync(method, model, options);
  },

  // `{tally, offset, epoch}` from the `tally` op, or a bare tally from the channel.
  parse: function(resp) {
    if (resp && resp.tally) {
      if (this._offset != null && resp.offset < this._offset) return null;
      this._offset = resp.offset;
      this._epoch = resp.epoch;
      return resp.tally;
    }
    return resp;
  },

  // With the offline module's cache, a cached tally answers at once and the channel catches up.
  fetch: function(options) {
    const cache = !(options && options.cache === false) && connectionOf(this).cache;
    if (cache) return cache.fetch(this, options || {});
    this.follow();
    return Backbone.Model.prototype.fetch.call(this, options);
  },

  set: function() {
    Backbone.Model.prototype.set.apply(this, arguments);
    if (this._offset != null) persist(this, {});
    return this;
  },

  // Follows `tally:NAME`; `since` (a position) starts after it, as a resubscription would.
  follow: function(since) {
    if (this._feed) return this;
    const name = 'tally:' + _.result(this, 'collectionName') + (this.group ? ':' + this.group : '');
    const feed = this._feed = connectionOf(this).channel(name);
    if (since && !feed._wanted) feed.position = since;
    this.listenTo(feed, 'message', (tally, pub) => {
      if (this._offset != null && pub.offset <= this._offset) return;
      this._offset = pub.offset;
      this._epoch = feed.position.epoch;
      this.set(tally);
    });
    // Nobody would repeat this fetch after a `timeout`: it waits for its reply while the socket lives.
    this.listenTo(feed, 'stale', () => this.fetch({ wait: true, cache: false }));
    feed.subscribe().catch(noop);
    return this;
  },

  unfollow: unfollowFeed,

  // How many documents have `value` in `field`.
  count: function(field, value) {
    const counts = (this.get('counts') || {})[field];
    return (counts && counts[value]) || 0;
  },

  // How many documents have any value in `field`.
  answered: function(field) {
    return _.reduce((this.get('counts') || {})[field] || {}, (sum, n) => sum + n, 0);
  },
});

export default RTSync;
