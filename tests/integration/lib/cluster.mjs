// Harness for the cluster tests (docs/scaling.md): a real Redis and a real PostgreSQL, each on a private
// port of 127.0.0.1 with its files in a fresh directory under the build directory, and rtsync nodes wired
// to them with [cluster]. Everything is stopped by cleanupCluster() (register it with after()).
//
// Redis runs as this user (redis-server, no persistence); PostgreSQL through tests/cluster/pg.sh, which
// runs it as the `postgres` system user when we are root. Both come from scripts/deps.sh: a missing one is
// a failure, never a skip.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { BIN, REPO_ROOT, TIMEOUT, startServer, withTimeout } from './server.mjs';

const run = promisify(execFile);
const started = [];  // {stop()} of every Redis and PostgreSQL, stopped in reverse order
const dirs = [];

// A fresh directory under the build directory (next to the binary under test).
export function buildDir(prefix) {
  const root = path.join(path.dirname(BIN), 'cluster-test');
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, prefix));
  dirs.push(dir);
  return dir;
}

// A port nobody listens on right now (the OS picks it; the server binds it a moment later).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function whichRedis() {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (fs.existsSync(p)) return p;
  throw new Error('redis-server is not installed (run scripts/deps.sh)');
}

// Starts redis-server on a free port. The returned object can stop, kill (-9) and restart it on the same
// port; `url` is what [cluster] broker takes.
export async function startRedis() {
  const dir = buildDir('redis-');
  const port = await freePort();
  const redis = { port, url: `redis://127.0.0.1:${port}`, proc: null, log: '' };
  redis.start = async () => {
    const proc = spawn(whichRedis(), [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--daemonize', 'no', '--protected-mode', 'no',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    redis.proc = proc;
    proc.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)));
    await withTimeout(new Promise((resolve, reject) => {
      proc.stdout.setEncoding('utf8').on('data', (d) => {
        redis.log += d;
        if (/Ready to accept connections/.test(redis.log)) resolve();
      });
      proc.on('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${redis.log}`)));
    }), TIMEOUT, `redis-server did not start on ${port}:\n${redis.log}`);
  };
  redis.stop = async () => {
    if (!redis.proc || redis.proc.exitCode !== null || redis.proc.signalCode !== null) return;
    redis.proc.kill('SIGTERM');
    await redis.proc.exited;
  };
  redis.kill = async () => {
    if (!redis.proc || redis.proc.exitCode !== null || redis.proc.signalCode !== null) return;
    redis.proc.kill('SIGKILL');
    await redis.proc.exited;
  };
  redis.restart = async () => {
    await redis.kill();
    redis.log = '';
    await redis.start();
  };
  // A command through redis-cli-free RESP over a socket (for checks).
  redis.command = (...args) => resp(port, args);
  await redis.start();
  started.push(redis);
  return redis;
}

// One RESP command; resolves with the reply (string, number, array or null).
function resp(port, args) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseResp(buf, 0);
      if (r) { sock.end(); resolve(r.value); }
    });
    sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join(''));
  }), TIMEOUT, `redis command ${args[0]} timed out`);
}

function parseResp(buf, i) {
  const nl = buf.indexOf('\r\n', i);
  if (nl < 0) return null;
  const line = buf.toString('utf8', i + 1, nl);
  const next = nl + 2;
  switch (String.fromCharCode(buf[i])) {
    case '+': return { value: line, end: next };
    case '-': return { value: new Error(line), end: next };
    case ':': return { value: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      const out = [];
      let at = next;
      for (let k = 0; k < n; k++) {
        const r = parseResp(buf, at);
        if (!r) return null;
        out.push(r.value);
        at = r.end;
      }
      return { value: out, end: at };
    }
    default: throw new Error(`bad RESP: ${line}`);
  }
}

// Starts a private PostgreSQL (tests/cluster/pg.sh) on a free port; `url` is what [cluster] store takes.
export async function startPostgres() {
  const dir = buildDir('pg-');
  fs.chmodSync(dir, 0o755);  // the server runs as `postgres` when we are root
  const port = await freePort();
  const script = path.join(REPO_ROOT, 'tests/cluster/pg.sh');
  await run('bash', [script, 'start', dir, String(port)], { timeout: 120_000 });
  const pg = { port, url: `postgres://postgres@127.0.0.1:${port}/rtsync` };
  pg.stop = async () => { await run('bash', [script, 'stop', dir], { timeout: 120_000 }); };
  started.push(pg);
  return pg;
}

const SECRET = 'c1'.repeat(32);  // every node of a cluster signs cookies and tokens with the same secret

// Starts one node of the cluster. `config` is appended to the [cluster] table's TOML.
export async function startNode({ redis, pg, node, config = '', presenceTtl = 2, dataDir } = {}) {
  dataDir ??= buildDir(`node-${node}-`);
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(path.join(dataDir, 'secret'), SECRET, { mode: 0o600 });
  const toml = `[cluster]
broker = "${redis.url}"
store = "${pg.url}"
node = "${node}"
presence_ttl = ${presenceTtl}

${config}
`;
  const server = await startServer({ config: toml, dataDir });
  server.node = node;
  server.dataDir = dataDir;
  return server;
}

// Stops Redis and PostgreSQL (the nodes are stopped by cleanupAll of server.mjs, which runs first).
export async function cleanupCluster() {
  const errors = [];
  while (started.length) {
    try { await started.pop().stop(); } catch (e) { errors.push(e); }
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  if (errors.length) throw errors[0];
}
