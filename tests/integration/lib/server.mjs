// Test harness for the black-box integration tests: start the real rtsync binary on port 0 with a fresh
// data directory, talk to it over WebSocket (the `ws` package) and HTTP, and clean everything up.
//
// Every test file imports from here, registers `after(cleanupAll)` and stays independent of the others:
// servers and temp directories are tracked per process (node --test runs each file in its own process).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.RTSYNC_BIN
  ? path.resolve(REPO_ROOT, process.env.RTSYNC_BIN)
  : path.join(REPO_ROOT, 'build/test/rtsync');
export const WEB_ROOT = path.join(REPO_ROOT, 'web/public');

// Generous: the binary under test is an ASan build sharing two cores with other test files.
export const TIMEOUT = 20_000;

const servers = new Set();
const dirs = new Set();

// ---------------------------------------------------------------------------------------------------
// Temp directories and cleanup

export function tmpDir(prefix = 'rtsync-it-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

const SANITIZER_REPORT = /ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:/;

// Kills every server still running, removes every temp directory, and fails (throws) when a server
// printed a sanitizer report at any point: a memory error is a bug even if the test's checks passed.
export async function cleanupAll() {
  const reports = [];
  for (const s of servers) {
    if (s.exitCode === undefined) await s.kill();
    if (SANITIZER_REPORT.test(s.stderr())) reports.push(`server ${s.url}:\n${s.stderr()}`);
  }
  servers.clear();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs.clear();
  if (reports.length) throw new Error(`sanitizer reports from the server:\n${reports.join('\n')}`);
}

// ---------------------------------------------------------------------------------------------------
// Starting the server

// startServer({config, dataDir, web, args, env, prefix}) spawns
//   [...prefix] RTSYNC_BIN serve --listen 127.0.0.1:0 --data DIR --web WEB [--config FILE] [...args]
// and resolves once stdout says `rtsync listening on http://HOST:PORT`. `prefix` is a command that execs
// the server in its own process (e.g. `prlimit --nofile=64`), so the pid is still the server's.
export async function startServer({ config, dataDir, web = WEB_ROOT, args = [], env = {}, prefix = [] } = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (set RTSYNC_BIN)`);
  dataDir ??= tmpDir('rtsync-data-');
  const argv = ['serve', '--listen', '127.0.0.1:0', '--data', dataDir, '--web', web];
  if (config !== undefined) {
    const file = path.join(tmpDir('rtsync-conf-'), 'rtsync.toml');
    fs.writeFileSync(file, config);
    argv.push('--config', file);
  }
  argv.push(...args);

  const [command, ...commandArgs] = [...prefix, BIN, ...argv];
  const proc = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { stderr += d; });

  const server = {
    proc,
    dataDir,
    exitCode: undefined, // set on exit: the exit code, or the signal name
    stderr: () => stderr,
    stdout: () => stdout,
  };
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      server.exitCode = code ?? signal;
      resolve(server.exitCode);
    });
  });
  server.exited = exited;
  servers.add(server);

  const listening = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not print its listening line within ${TIMEOUT} ms\n` +
                       `stdout:\n${stdout}\nstderr:\n${stderr}`));
    }, TIMEOUT);
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = /^rtsync listening on http:\/\/(\S+):(\d+)\r?$/m.exec(stdout);
      if (m) { clearTimeout(timer); resolve({ host: m[1], port: Number(m[2]) }); }
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    });
  });

  Object.assign(server, {
    host: listening.host,
    port: listening.port,
    url: `http://${listening.host}:${listening.port}`,
    wsUrl: `ws://${listening.host}:${listening.port}/v1/ws`,
    // SIGTERM, then wait for the exit; resolves with the exit code (or the signal name).
    async stop({ timeout = TIMEOUT } = {}) {
      if (server.exitCode !== undefined) return server.exitCode;
      proc.kill('SIGTERM');
      const code = await withTimeout(exited, timeout, `server did not exit within ${timeout} ms of SIGTERM`)
        .catch((e) => { proc.kill('SIGKILL'); throw new Error(`${e.message}\nstderr:\n${stderr}`); });
      return code;
    },
    // SIGKILL (a crash); resolves once the process is gone.
    async kill() {
      if (server.exitCode !== undefined) return server.exitCode;
      proc.kill('SIGKILL');
      return exited;
    },
  });
  return server;
}

// Waits until a spawned server exits (e.g. for a bad config) and returns {code, stdout, stderr}.
export async function runToExit(argv, { timeout = TIMEOUT } = {}) {
  const proc = spawn(BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
  proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
  const code = await withTimeout(
    new Promise((resolve) => proc.on('exit', (c, s) => resolve(c ?? s))), timeout,
    `\`rtsync ${argv.join(' ')}\` did not exit within ${timeout} ms`,
  ).catch((e) => { proc.kill('SIGKILL'); throw e; });
  return { code, stdout, stderr };
}

// ---------------------------------------------------------------------------------------------------
// Small async helpers

export function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `fn` until it returns a truthy value (event-driven waits where no event exists).
export async function waitFor(fn, { timeout = TIMEOUT, interval = 20, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}`);
    await sleep(interval);
  }
}

// ---------------------------------------------------------------------------------------------------
// WebSocket client

const PUSH_OPS = new Set(['msg', 'join', 'leave', 'bye']);

// A protocol client over `ws`. Incoming frames are split on "\n" into JSON objects. Replies (objects with
// an `id`) resolve the matching request; everything else (pushes, id-less errors) goes to a queue read
// with next(predicate).
export class Client {
  constructor(ws) {
    this.ws = ws;
    this.hello = null;
    this.nextId = 1;
    this.pending = new Map();   // id -> {resolve, reject, timer}
    this.unclaimed = new Map(); // id -> reply that arrived with nobody waiting (raw sends)
    this.queue = [];            // pushes and id-less replies, in arrival order
    this.waiters = [];          // {pred, resolve, reject, timer}
    this.listeners = [];        // fn(obj) for every push (bulk consumers)
    this.queueing = true;       // false: pushes only go to the listeners (keeps memory flat)
    this.invalid = [];          // lines the server sent that were not JSON objects
    this.frames = 0;            // number of text frames received
    this.closeInfo = null;      // {code, reason} once closed
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        const err = new Error(`connection closed (${code} ${reason})`);
        for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(err); }
        this.pending.clear();
        resolve(this.closeInfo);
      });
    });
    ws.on('error', (e) => { this.lastError = e; });
    ws.on('message', (data, isBinary) => this.#onFrame(data, isBinary));
  }

  // Opens a connection and resolves after the server's `hello`.
  static async connect(wsUrl, { headers = {}, timeout = TIMEOUT, ...options } = {}) {
    const ws = new WebSocket(wsUrl, { headers, maxPayload: 64 * 1024 * 1024, ...options });
    const client = new Client(ws);
    client.upgradeHeaders = null;
    ws.on('upgrade', (res) => { client.upgradeHeaders = res.headers; });
    const opened = new Promise((resolve, reject) => {
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
      ws.once('close', (code) => reject(new Error(`closed (${code}) before hello`)));
      client.helloResolve = resolve;
    });
    await withTimeout(opened, timeout, `no hello within ${timeout} ms from ${wsUrl}`)
      .catch((e) => { ws.terminate(); throw e; });
    return client;
  }

  #onFrame(data, isBinary) {
    if (isBinary) { this.invalid.push({ binary: data }); return; }
    this.frames++;
    for (const line of data.toString('utf8').split('\n')) {
      if (line === '') continue;
      let obj;
      try { obj = JSON.parse(line); } catch { this.invalid.push(line); continue; }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) { this.invalid.push(line); continue; }
      this.#onObject(obj);
    }
  }

  #onObject(obj) {
    if (this.hello === null && obj.op === 'hello') {
      this.hello = obj;
      this.helloResolve?.(obj);
      return;
    }
    if (obj.id !== undefined && !PUSH_OPS.has(obj.op)) {
      const p = this.pending.get(obj.id);
      if (p) {
        this.pending.delete(obj.id);
        clearTimeout(p.timer);
        p.resolve(obj);
      } else {
        this.unclaimed.set(obj.id, obj);
      }
      return;
    }
    for (const l of this.listeners) l(obj);
    if (!this.queueing) return;
    const i = this.waiters.findIndex((w) => w.pred(obj));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(obj);
      return;
    }
    this.queue.push(obj);
  }

  // Sends one command and resolves with the whole reply ({id, ok} or {id, error}).
  request(op, fields = {}, { timeout = TIMEOUT } = {}) {
    const id = this.nextId++;
    this.sendRaw(JSON.stringify({ id, op, ...fields }));
    return this.reply(id, { timeout, what: op });
  }

  // Same as request, but rejects unless the reply is ok; resolves with the `ok` object.
  async call(op, fields = {}, opts) {
    const r = await this.request(op, fields, opts);
    if (!('ok' in r)) throw new Error(`${op} ${JSON.stringify(fields).slice(0, 200)} failed: ${JSON.stringify(r)}`);
    return r.ok;
  }

  // Waits for the reply carrying `id` (for commands sent with sendRaw).
  reply(id, { timeout = TIMEOUT, what = `id ${id}` } = {}) {
    if (this.unclaimed.has(id)) {
      const r = this.unclaimed.get(id);
      this.unclaimed.delete(id);
      return Promise.resolve(r);
    }
    if (this.closeInfo) return Promise.reject(new Error(`connection closed (${this.closeInfo.code})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply to ${what} (id ${id}) within ${timeout} ms`));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  // Sends one text frame as is.
  sendRaw(text) {
    this.ws.send(text);
  }

  // Resolves with (and removes) the first queued object matching `pred`, waiting up to `timeout`.
  next(pred = () => true, timeout = TIMEOUT) {
    if (typeof pred === 'string') { const op = pred; pred = (o) => o.op === op; }
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no matching push within ${timeout} ms; queued: ${JSON.stringify(this.queue).slice(0, 500)}`));
      }, timeout);
      this.waiters.push(w);
    });
  }

  // Collects the `msg` pushes of channel `ch` until one with offset >= `offset` arrived.
  async messagesUntil(ch, offset, timeout = TIMEOUT) {
    const got = [];
    for (;;) {
      const m = await this.next((o) => o.op === 'msg' && o.ch === ch, timeout);
      got.push(m);
      if (m.offset >= offset) return got;
    }
  }

  // Everything queued right now that matches `pred` (without removing it).
  peek(pred = () => true) {
    return this.queue.filter(pred);
  }

  close(code = 1000) {
    this.ws.close(code);
    return this.closed;
  }

  terminate() {
    this.ws.terminate();
    return this.closed;
  }
}

// Connects `n` clients in parallel.
export function connectMany(wsUrl, n, opts) {
  return Promise.all(Array.from({ length: n }, () => Client.connect(wsUrl, opts)));
}

// ---------------------------------------------------------------------------------------------------
// HTTP

// One HTTP request without connection reuse. Resolves with {status, headers, body (string), json()}.
// `localAddress` (e.g. 127.0.0.2: all of 127/8 is loopback) makes the request come from another address.
export function httpRequest(url, { method = 'GET', headers = {}, body, timeout = TIMEOUT, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: text,
          raw, // the bytes as sent (a compressed body stays compressed)
          json() {
            try { return JSON.parse(text); } catch { throw new Error(`not JSON (HTTP ${res.statusCode}): ${text.slice(0, 300)}`); }
          },
        });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`HTTP ${method} ${url} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// The `rtsync_uid` Set-Cookie header of a response, or undefined.
export function uidSetCookie(res) {
  return (res.headers['set-cookie'] ?? []).find((c) => /^\s*rtsync_uid=/.test(c));
}

// "rtsync_uid=VALUE; HttpOnly; ..." -> "rtsync_uid=VALUE" (what a browser sends back).
export function cookiePair(setCookie) {
  return setCookie.split(';')[0].trim();
}
