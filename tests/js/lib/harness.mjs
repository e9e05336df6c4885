// Helpers for the client library's tests (tests/js) and the browser tests (tests/e2e): the library in
// Node over the `ws` package, anonymous identities that survive reconnects, and a server that can be
// restarted on the same port and data directory (what a browser tab sees when rtsync restarts), and a TCP
// proxy that can go silent (a dead link).
//
// The server itself is started with the integration tests' harness (tests/integration/lib/server.mjs).

import { spawn } from 'node:child_process';
import net from 'node:net';
import WebSocket from 'ws';
import RTSync from '../../../web/lib/rtsync.js';
import { BIN, TIMEOUT, WEB_ROOT, cookiePair, httpRequest, uidSetCookie, withTimeout } from '../../integration/lib/server.mjs';

export { RTSync };

// An anonymous identity: the `rtsync_uid` cookie that any HTTP response hands out. A connection that
// sends it keeps the same user id across reconnects and server restarts (the secret is in the data dir).
export async function newIdentity(server) {
  const res = await httpRequest(`${server.url}/healthz`);
  const set = uidSetCookie(res);
  if (!set) throw new Error('the server did not set an rtsync_uid cookie');
  return cookiePair(set);
}

// A WebSocket class for the library that sends `cookie`, and lets a test look at (and tamper with)
// the traffic: `hooks.sent(text)` sees every outgoing frame; `hooks.received(text, ws)` may return
// `false` to swallow an incoming frame, and hand it over later with `ws.deliver(text)`.
export function webSocketClass({ cookie, hooks = {} } = {}) {
  return class TestWebSocket extends WebSocket {
    constructor(url) {
      super(url, cookie ? { headers: { Cookie: cookie } } : {});
      const self = this;
      const originalSend = this.send.bind(this);
      this.send = (text) => { hooks.sent?.(text, self); return originalSend(text); };
      let handler = null;
      this.deliver = (text) => { if (handler && this.readyState === WebSocket.OPEN) handler({ data: text }); };
      Object.defineProperty(this, 'onmessage', {
        get: () => handler,
        set: (fn) => {
          handler = fn;
          this.removeAllListeners('message');
          this.on('message', (data, isBinary) => {
            const text = isBinary ? data : data.toString('utf8');
            if (hooks.received?.(text, self) === false) return;
            fn({ data: text });
          });
        },
      });
    }
  };
}

// A slow link between the library and the server, under the test's control (pass `link.hooks` to
// `connect`). It records every object the library sends (`link.sent`), and makes the server's replies
// late on demand: after `link.holdReplies(op)`, the first frame holding a reply to an `op` request,
// and every frame after it, wait in order (as on a congested network) until `link.release()` hands
// them over, or `link.cut()` kills the socket with them unread (the network died).
export function slowLink() {
  const ops = new Map(); // request id -> op
  const watchers = [];
  const link = {
    sent: [],
    held: [],
    socket: null,
    holding: null,
    hooks: {
      sent(text, ws) {
        link.socket = ws;
        for (const line of text.split('\n')) {
          const obj = JSON.parse(line);
          link.sent.push(obj);
          if (obj.id != null) ops.set(obj.id, obj.op);
          for (const w of watchers.slice()) if (w.pred(obj)) { watchers.splice(watchers.indexOf(w), 1); w.resolve(obj); }
        }
      },
      received(text, ws) {
        if (link.held.length) { link.held.push([text, ws]); return false; }
        if (!link.holding) return true;
        const hit = text.split('\n').some((line) => {
          try { const obj = JSON.parse(line); return obj.id != null && ops.get(obj.id) === link.holding; } catch { return false; }
        });
        if (!hit) return true;
        link.held.push([text, ws]);
        return false;
      },
    },
    holdReplies(op) { link.holding = op; },
    // Hands the held frames over, in order, and stops holding.
    release() {
      const frames = link.held;
      link.held = [];
      link.holding = null;
      for (const [text, ws] of frames) ws.deliver(text);
    },
    // Kills the socket; the held frames are lost with it.
    cut() {
      link.held = [];
      link.holding = null;
      link.socket?.terminate();
    },
    // Resolves with the first object the library sent (already, or from now on) that matches `pred`.
    whenSent(pred, timeout = TIMEOUT) {
      const seen = link.sent.find(pred);
      if (seen) return Promise.resolve(seen);
      return withTimeout(new Promise((resolve) => watchers.push({ pred, resolve })), timeout, 'no matching request sent');
    },
    // The objects sent with `op`.
    sentOps(op) { return link.sent.filter((o) => o.op === op); },
  };
  return link;
}

// Opens a library connection to `server` (or to whatever `urlFn()` returns) and waits until it is online.
export async function connect(server, { cookie, hooks, urlFn, ...options } = {}) {
  const connection = new RTSync.Connection({
    url: urlFn || (() => server.wsUrl),
    WebSocket: webSocketClass({ cookie, hooks }),
    minDelay: 50,
    maxDelay: 400,
    timeout: 15_000,
    ...options,
  });
  const online = once(connection, 'online');
  connection.open();
  await online;
  return connection;
}

// Resolves with the arguments of the next `event` on a Backbone.Events object.
export function once(emitter, event, timeout = TIMEOUT) {
  return withTimeout(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))), timeout,
    `no "${event}" event within ${timeout} ms`);
}

// ---------------------------------------------------------------------------------------------------
// A server on a fixed port, to be killed and started again where it was.

const fixed = new Set();

// Starts `rtsync serve` on 127.0.0.1:`port` with `dataDir`; resolves once it listens. Retries for a
// while if the port is still held by the previous process.
export async function startServerAt({ port, dataDir, web = WEB_ROOT, config }) {
  const argv = ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--web', web];
  if (config) argv.push('--config', config);
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    try {
      return await spawnListening(argv, port, dataDir);
    } catch (e) {
      if (Date.now() > deadline || !/exited/.test(e.message)) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function spawnListening(argv, port, dataDir) {
  const proc = spawn(BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { stderr += d; });
  const server = {
    proc, port, dataDir,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    exitCode: undefined,
    stderr: () => stderr,
  };
  server.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    server.exitCode = code ?? signal;
    fixed.delete(server);
    resolve(server.exitCode);
  }));
  server.kill = async () => { if (server.exitCode === undefined) proc.kill('SIGKILL'); return server.exited; };
  server.stop = async () => {
    if (server.exitCode === undefined) proc.kill('SIGTERM');
    return withTimeout(server.exited, TIMEOUT, 'server did not stop');
  };
  fixed.add(server);
  started.add(server);
  return withTimeout(new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => {
      stdout += d;
      if (/^rtsync listening on http:\/\/\S+:\d+\r?$/m.test(stdout)) resolve(server);
    });
    proc.on('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${stderr}`)));
  }), TIMEOUT, 'server did not listen');
}

const SANITIZER_REPORT = /ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:/;
const started = new Set();

// Kills the fixed-port servers still running and fails when any of them printed a sanitizer report.
export async function killFixedServers() {
  for (const s of Array.from(fixed)) await s.kill();
  const reports = [...started].filter((s) => SANITIZER_REPORT.test(s.stderr())).map((s) => s.stderr());
  started.clear();
  if (reports.length) throw new Error(`sanitizer reports from the server:\n${reports.join('\n')}`);
}

// A TCP proxy to `port`: `silence()` drops every byte both ways and keeps every socket open (a dead
// Wi-Fi, a proxy that lost its upstream); new connections are accepted and go nowhere. `resume()`
// forwards again (connections whose bytes were lost stay broken, as after a real outage).
export async function silentProxy(port) {
  let silent = false;
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)); }
    client.on('data', (d) => { if (!silent) upstream.write(d); });
    upstream.on('data', (d) => { if (!silent) client.write(d); });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${server.address().port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${server.address().port}`,
    silence() { silent = true; },
    resume() { silent = false; },
    close() { for (const s of sockets) s.destroy(); server.close(); },
  };
}
