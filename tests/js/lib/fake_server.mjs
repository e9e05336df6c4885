// An in-memory rtsync server behind a fake WebSocket class, for the unit tests of the offline module
// (tests/js/offline.test.mjs), where the client's logic is the point and the real server is not: it
// keeps the wire contract of docs/protocol.md for what those tests use (hello, ping, sub with recovery,
// list, tally, the collection writes with versions and conflicts, pub), idempotency keys for 24 hours
// of its own clock (`server.now`), and, with `seqs: true`, the per-client sequence numbers of issue 14
// (`hello` with `client` and `settled`, writes with `seq`, `expired` for a client it forgot).
//
// Control: `server.down = true` refuses new sockets; `server.kill()` closes every socket;
// `server.dropReplies = n` applies the next n writes but closes the socket instead of answering;
// `server.refuse = (cmd) => error | null` answers a write with an error instead of applying it.

let sessions = 0;

export class FakeServer {
  constructor({ seqs = false, user = 'u1' } = {}) {
    this.seqs = seqs;
    this.user = user;
    this.now = Date.now();
    this.docs = new Map();   // coll -> Map(id -> doc)
    this.feeds = new Map();  // channel -> {epoch, pubs: [{offset, data}]}
    this.keys = new Map();   // key -> {at, ok}
    this.clients = new Map(); // client -> {seen, results: Map(seq -> ok)}
    this.sockets = new Set();
    this.log = [];           // every command received, in order
    this.applied = 0;        // writes applied (not replayed)
    this.down = false;
    this.dropReplies = 0;
    this.refuse = null;
    this.retention = 30 * 24 * 3600e3; // a client's records, kept this long after its last hello
    const server = this;
    this.WebSocket = class FakeWebSocket {
      constructor() {
        this.readyState = 0;
        setTimeout(() => {
          if (server.down) { this.readyState = 3; this.onclose?.({ code: 1006, reason: 'refused' }); return; }
          this.readyState = 1;
          server.sockets.add(this);
          this.session = `s${++sessions}`;
          this._push({ op: 'hello', session: this.session, user: server.user, server: 'fake' });
        }, 1);
      }
      send(text) {
        if (this.readyState !== 1) return;
        for (const line of text.split('\n')) server._handle(this, JSON.parse(line));
      }
      close() { server._close(this); }
      _push(obj) {
        setTimeout(() => { if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(obj) }); }, 1);
      }
    };
  }

  kill() { for (const ws of Array.from(this.sockets)) this._close(ws); }

  _close(ws) {
    if (ws.readyState === 3) return;
    ws.readyState = 3;
    this.sockets.delete(ws);
    setTimeout(() => ws.onclose?.({ code: 1006, reason: 'gone' }), 1);
  }

  feed(ch) {
    if (!this.feeds.has(ch)) this.feeds.set(ch, { epoch: 'e1', pubs: [], subs: new Set() });
    return this.feeds.get(ch);
  }

  coll(name) {
    if (!this.docs.has(name)) this.docs.set(name, new Map());
    return this.docs.get(name);
  }

  publish(ch, data) {
    const f = this.feed(ch);
    const offset = f.pubs.length + 1;
    f.pubs.push({ offset, data });
    for (const ws of f.subs) if (this.sockets.has(ws)) ws._push({ op: 'msg', ch, offset, data, from: this.user, ts: this.now });
    return offset;
  }

  // Applies a write as another user would (no key, no seq), e.g. to make a conflict.
  writeAs(coll, doc) {
    const docs = this.coll(coll);
    const old = docs.get(doc.id);
    const next = { ...doc, _v: (old ? old._v : 0) + 1, _owner: old ? old._owner : 'other' };
    docs.set(doc.id, next);
    this.publish(`coll:${coll}`, { type: 'upsert', doc: next });
    this.publish(`tally:${coll}`, this.tally(coll));
    return next;
  }

  _handle(ws, cmd) {
    this.log.push(cmd);
    const reply = (body) => ws._push({ id: cmd.id, ...body });
    const error = (code, message, extra) => reply({ error: { code, message, ...extra } });
    switch (cmd.op) {
      case 'ping': return reply({ ok: {} });
      case 'hello': {
        if (!this.seqs) return error('unknown_op', 'unknown op "hello"');
        if (!/^[A-Za-z0-9_-]{16,64}$/.test(cmd.client) || !(Number.isInteger(cmd.settled) && cmd.settled >= 0)) {
          return error('bad_request', 'bad hello');
        }
        const c = this.clients.get(cmd.client);
        if (c && this.now - c.seen > this.retention) this.clients.set(cmd.client, { seen: this.now, results: new Map(), expired: true });
        const client = this.clients.get(cmd.client) || { seen: this.now, results: new Map() };
        client.seen = this.now;
        for (const seq of client.results.keys()) if (seq <= cmd.settled) client.results.delete(seq);
        this.clients.set(cmd.client, client);
        ws.client = cmd.client;
        return reply({ ok: {} });
      }
      case 'sub': {
        const f = this.feed(cmd.ch);
        f.subs.add(ws);
        const offset = f.pubs.length;
        const since = cmd.since;
        const recovered = !!since && since.epoch === f.epoch && since.offset <= offset;
        const pubs = recovered ? f.pubs.filter((p) => p.offset > since.offset).map((p) => ({ ...p, ch: cmd.ch })) : [];
        return reply({ ok: { offset, epoch: f.epoch, recovered, pubs } });
      }
      case 'unsub': this.feed(cmd.ch).subs.delete(ws); return reply({ ok: {} });
      case 'list': {
        const docs = [...this.coll(cmd.coll).values()].sort((a, b) => (a.id < b.id ? -1 : 1));
        const f = this.feed(`coll:${cmd.coll}`);
        return reply({ ok: { docs, offset: f.pubs.length, epoch: f.epoch, next: null } });
      }
      case 'tally': {
        const f = this.feed(`tally:${cmd.coll}`);
        return reply({ ok: { tally: this.tally(cmd.coll), offset: f.pubs.length, epoch: f.epoch } });
      }
      case 'pub': case 'create': case 'update': case 'patch': case 'delete':
        return this._write(ws, cmd, reply, error);
      default: return error('unknown_op', `unknown op "${cmd.op}"`);
    }
  }

  tally(coll) {
    const counts = {};
    for (const doc of this.coll(coll).values()) {
      for (const [k, v] of Object.entries(doc)) {
        if (k === 'id' || k.startsWith('_')) continue;
        counts[k] ??= {};
        counts[k][v] = (counts[k][v] || 0) + 1;
      }
    }
    return { total: this.coll(coll).size, counts };
  }

  _write(ws, cmd, reply, error) {
    // At most once: by (client, seq) when this server knows sequences, else by key for 24 hours.
    let record = null;
    if (this.seqs && cmd.seq != null) {
      const client = this.clients.get(ws.client);
      if (!client) return error('bad_request', 'seq without a client');
      if (client.expired) return error('expired', 'the records of this client were dropped');
      if (client.results.has(cmd.seq)) return reply({ ok: { ...client.results.get(cmd.seq), replayed: true } });
      record = (ok) => client.results.set(cmd.seq, ok);
    } else if (cmd.key != null) {
      const seen = this.keys.get(cmd.key);
      if (seen && this.now - seen.at < 24 * 3600e3) return reply({ ok: { ...seen.ok, replayed: true } });
      record = (ok) => this.keys.set(cmd.key, { at: this.now, ok });
    }
    const refused = this.refuse?.(cmd);
    if (refused) return error(refused.code, refused.message || refused.code, refused.doc !== undefined ? { doc: refused.doc } : {});
    let ok;
    if (cmd.op === 'pub') {
      ok = { offset: this.publish(cmd.ch, cmd.data) };
    } else {
      const docs = this.coll(cmd.coll);
      const id = cmd.op === 'create' ? cmd.data.id : cmd.doc;
      const old = docs.get(id);
      if (cmd.op === 'create' && old) return error('conflict', 'exists', { doc: old });
      if ((cmd.op === 'patch' || cmd.op === 'delete') && !old) return error('not_found', 'no such document');
      if (cmd.v != null && (old ? old._v : 0) !== cmd.v) return error('conflict', 'version', { doc: old || null });
      const v = (old ? old._v : 0) + 1;
      if (cmd.op === 'delete') {
        docs.delete(id);
        ok = { v: old._v };
        this.publish(`coll:${cmd.coll}`, { type: 'delete', id, _v: v });
      } else {
        let attrs = cmd.op === 'patch' ? { ...old, ...cmd.data } : { ...cmd.data };
        attrs = Object.fromEntries(Object.entries(attrs).filter(([k, x]) => x !== null && k !== 'id' && !k.startsWith('_')));
        const doc = { ...attrs, id, _v: v, _owner: old ? old._owner : this.user };
        docs.set(id, doc);
        ok = { doc };
        this.publish(`coll:${cmd.coll}`, { type: 'upsert', doc });
      }
      this.publish(`tally:${cmd.coll}`, this.tally(cmd.coll));
    }
    this.applied++;
    record?.(ok);
    if (this.dropReplies > 0) { this.dropReplies--; this._close(ws); return; }
    reply({ ok });
  }
}
