// The data directory (PROTOCOL §1, docs/security.md): one server per data dir (DATA/lock), a database that
// fails its integrity check or lost its secret stops the start with a message naming the file, and the
// files are private to the server's user.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  BIN, Client, TIMEOUT, WEB_ROOT, cleanupAll, httpRequest, runToExit, startServer, tmpDir, withTimeout,
} from './lib/server.mjs';

after(cleanupAll);

const PAGE = 4096;  // SQLite's default page size

// Runs `rtsync serve` on `dataDir` until it exits or listens: a server that wrongly starts is killed at once
// (instead of running until a timeout) and reported as {code: 'listening'}.
async function serveOrExit(dataDir) {
  const proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data', dataDir, '--web', WEB_ROOT],
                     { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (c, s) => resolve(c ?? s)));
  const listening = new Promise((resolve) => {
    proc.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      if (/rtsync listening on/.test(stdout)) resolve('listening');
    });
  });
  const code = await withTimeout(Promise.race([exited, listening]), TIMEOUT, 'rtsync serve neither exited nor listened');
  if (code === 'listening') {
    proc.kill('SIGKILL');
    await exited;
  }
  return { code, stderr };
}

const mode = (file) => fs.statSync(file).mode & 0o777;

// A data dir whose database holds enough publications to span several pages, after a clean shutdown.
async function populated() {
  const server = await startServer();
  const c = await Client.connect(server.wsUrl);
  for (let i = 0; i < 40; i++) await c.call('pub', { ch: `page-${i % 4}`, data: { i, pad: 'x'.repeat(500) } });
  await c.close();
  assert.equal(await server.stop(), 0);
  const db = path.join(server.dataDir, 'rtsync.db');
  assert.ok(fs.statSync(db).size >= 4 * PAGE, 'the database spans several pages');
  return { dir: server.dataDir, db };
}

function overwrite(file, offset, length) {
  const fd = fs.openSync(file, 'r+');
  const garbage = Buffer.alloc(length);
  for (let i = 0; i < length; i++) garbage[i] = (i * 131 + 17) & 0xff;
  fs.writeSync(fd, garbage, 0, length, offset);
  fs.closeSync(fd);
}

describe('one server per data dir', () => {
  test('a second server on the same data dir exits 1 naming the dir; after kill -9 a new one starts', async () => {
    const first = await startServer();
    const dir = first.dataDir;
    const second = await serveOrExit(dir);
    assert.equal(second.code, 1, `the second server exits 1 (stderr: ${second.stderr})`);
    assert.match(second.stderr, /in use by another rtsync server/);
    assert.ok(second.stderr.includes(dir), `the message names ${dir}: ${second.stderr}`);
    assert.match(second.stderr, new RegExp(`pid ${first.proc.pid}\\b`), 'and the pid holding it');

    // The first one is unaffected, and `rtsync token` (a reader of the secret) works meanwhile.
    const c = await Client.connect(first.wsUrl);
    assert.equal((await c.call('pub', { ch: 'lock', data: 1 })).offset, 1);
    const token = await runToExit(['token', '--user', 'alice', '--data', dir]);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    c.terminate();

    // A crash leaves no stale lock: the kernel released it with the process.
    await first.kill();
    const again = await startServer({ dataDir: dir });
    const c2 = await Client.connect(again.wsUrl);
    assert.equal((await c2.call('pub', { ch: 'lock', data: 2 })).offset, 2);
    await c2.close();
    assert.equal(await again.stop(), 0);
  });
});

describe('start-up checks of the data dir', () => {
  test('garbage over the pages of rtsync.db: the start fails its integrity check and names the file', async () => {
    const { dir, db } = await populated();
    overwrite(db, PAGE, fs.statSync(db).size - PAGE);
    const r = await serveOrExit(dir);
    assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
    assert.ok(r.stderr.includes(db), `the message names ${db}: ${r.stderr}`);
    assert.match(r.stderr, /integrity check failed/);
  });

  test('garbage over the header of rtsync.db: the start fails and names the file', async () => {
    const { dir, db } = await populated();
    overwrite(db, 0, PAGE);
    const r = await serveOrExit(dir);
    assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
    assert.ok(r.stderr.includes(db), `the message names ${db}: ${r.stderr}`);
  });

  test('a missing secret beside an existing database stops the start (and `rtsync token`)', async () => {
    const { dir } = await populated();
    const secret = path.join(dir, 'secret');
    fs.unlinkSync(secret);
    const r = await serveOrExit(dir);
    assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
    assert.ok(r.stderr.includes(secret), `the message names ${secret}: ${r.stderr}`);
    assert.match(r.stderr, /missing/);
    const token = await runToExit(['token', '--user', 'alice', '--data', dir]);
    assert.notEqual(token.code, 0);
    assert.ok(token.stderr.includes(secret), token.stderr);
    assert.ok(!fs.existsSync(secret), 'no new secret was made');
  });

  test('a fresh data dir gets a private dir, secret, lock and database (WAL and SHM too)', async () => {
    const dir = path.join(tmpDir('rtsync-modes-'), 'data');
    const server = await startServer({ dataDir: dir });
    const c = await Client.connect(server.wsUrl);
    await c.call('pub', { ch: 'modes', data: 1 });
    assert.equal(mode(dir), 0o700, 'data dir');
    for (const f of ['secret', 'lock', 'rtsync.db', 'rtsync.db-wal', 'rtsync.db-shm']) {
      assert.equal(mode(path.join(dir, f)), 0o600, `${f} is 0600, not 0${mode(path.join(dir, f)).toString(8)}`);
    }
    await c.close();
    assert.equal(await server.stop(), 0);
  });

  test('a secret that group or others can read starts with a warning naming it', async () => {
    const { dir } = await populated();
    const secret = path.join(dir, 'secret');
    fs.chmodSync(secret, 0o644);
    const server = await startServer({ dataDir: dir });
    assert.match(server.stderr(), /warn/);
    assert.ok(server.stderr().includes(`${secret} is readable by group or others`), server.stderr());
    const ready = await httpRequest(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(await server.stop(), 0);
  });
});
