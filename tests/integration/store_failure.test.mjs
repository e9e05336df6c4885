// A store that fails while the server runs (PROTOCOL §5 /readyz, docs/security.md): the disk refuses the
// server's writes, made real by lowering the running server's file size limit (RLIMIT_FSIZE, as a full disk
// does: every write past the limit fails). Writes answer `unavailable`, the error is logged (once, not per
// operation), /readyz says 503 until a write commits again, and the server keeps running.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, cleanupAll, httpRequest, sleep, startServer, waitFor } from './lib/server.mjs';

after(cleanupAll);

const run = promisify(execFile);

// The soft limit only, so that it can be raised again without privileges.
const fileSizeLimit = (server, limit) => run('prlimit', ['--pid', String(server.proc.pid), `--fsize=${limit}:`]);
const readyz = async (server) => {
  const r = await httpRequest(`${server.url}/readyz`);
  return { status: r.status, body: r.json() };
};
const storeErrors = (server) => server.stderr().split('\n').filter((l) => /\[error\] store error/.test(l));

test('a disk that refuses writes: unavailable, logged once, /readyz 503 until a write commits', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const c = await Client.connect(server.wsUrl);
  assert.equal((await c.call('pub', { ch: 'disk', data: 'before' })).offset, 1);
  assert.deepEqual(await readyz(server), { status: 200, body: { status: 'ready' } });

  await fileSizeLimit(server, 1);
  for (let i = 0; i < 30; i++) {
    const r = await c.request('pub', { ch: 'disk', data: i });
    assert.equal(r.error?.code, 'unavailable', JSON.stringify(r));
  }
  const rest = await httpRequest(`${server.url}/v1/channels/disk/publish`, { method: 'POST', body: '"rest"' });
  assert.equal(rest.status, 503);
  assert.deepEqual(await readyz(server), { status: 503, body: { status: 'unavailable', reason: 'store' } });
  const logged = storeErrors(server);
  assert.ok(logged.length >= 1, `the failure is logged at error level:\n${server.stderr()}`);
  assert.ok(logged.length <= 2, `31 failures are not 31 log lines:\n${logged.join('\n')}`);
  assert.match(logged[0], /disk I\/O error|database or disk is full/);

  // Reads still work; the disk coming back and one commit make the server ready again.
  assert.equal((await c.call('history', { ch: 'disk' })).offset, 1);
  await fileSizeLimit(server, 'unlimited');
  assert.equal((await c.call('pub', { ch: 'disk', data: 'after' })).offset, 2, 'no offset was lost to the failures');
  assert.deepEqual(await readyz(server), { status: 200, body: { status: 'ready' } });
  assert.match(server.stderr(), /store recovered after \d+ failed operations/);
  await c.close();
  assert.equal(await server.stop(), 0);
});

test('without traffic a failing store is tried again after 5 s: /readyz 200, and 503 at the next failure', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const c = await Client.connect(server.wsUrl);
  await fileSizeLimit(server, 1);
  // The failure happens between the two: the retry is at least 5 s after `sentAt`.
  const sentAt = Date.now();
  assert.equal((await c.request('pub', { ch: 'idle', data: 1 })).error?.code, 'unavailable');
  const failedAt = Date.now();
  assert.equal((await readyz(server)).status, 503);
  await sleep(4000 - (Date.now() - failedAt));
  assert.equal((await readyz(server)).status, 503, 'still failing 4 s after the failure');
  await waitFor(async () => (await readyz(server)).status === 200, { timeout: 5000, message: 'ready again' });
  assert.ok(Date.now() - sentAt >= 5000, 'not before 5 s');
  assert.equal((await c.request('pub', { ch: 'idle', data: 2 })).error?.code, 'unavailable');
  assert.equal((await readyz(server)).status, 503);
  await fileSizeLimit(server, 'unlimited');
  c.terminate();
  assert.equal(await server.stop(), 0);
});
