// Out of file descriptors (docs/security.md): with RLIMIT_NOFILE = 64 and 80 idle TCP connections, the
// acceptor must not spin on EMFILE. It closes what it cannot serve at once (keeping a spare descriptor
// for that), pauses between attempts, warns once per interval, counts it in /metrics, and serves again
// as soon as descriptors are free.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, test } from 'node:test';
import { cleanupAll, httpRequest, sleep, startServer, waitFor } from './lib/server.mjs';

after(cleanupAll);

const LIMIT = 64;
const CONNECTIONS = 80;

// CPU seconds (user + system) the process has used so far.
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;  // utime, stime in clock ticks (USER_HZ = 100)
}

// UBSan checks the dynamic type of an object the first time it sees it, and that check opens a pipe: with
// no descriptor left it fails and reports a false "invalid vptr" (an error_category's, when a socket error
// is first seen). So the error paths of the test (a closed and a reset connection) run once beforehand.
async function warmUp(port) {
  for (const end of [(s) => s.end(), (s) => s.resetAndDestroy()]) {
    await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { end(s); setTimeout(resolve, 200); });
      s.on('error', () => {});
    });
  }
}

test(`at RLIMIT_NOFILE ${LIMIT} with ${CONNECTIONS} idle connections: no busy loop, bounded log, counted, then served again`, async () => {
  const server = await startServer({ prefix: ['prlimit', `--nofile=${LIMIT}`], args: ['--io-threads', '1'] });
  assert.equal((await httpRequest(`${server.url}/healthz`)).status, 200);
  await warmUp(server.port);
  const sockets = await Promise.all(Array.from({ length: CONNECTIONS }, () => new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1');
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  })));
  const closedByServer = () => sockets.filter((s) => s.readableEnded || s.destroyed).length;
  sockets.forEach((s) => s.on('end', () => s.destroy()));

  // Connections beyond the limit are closed unserved rather than left to time out in the backlog.
  await waitFor(() => closedByServer() > 0, { message: 'the server closes connections it has no descriptor for' });
  const lines = server.stderr().split('\n').length;
  const cpu0 = cpuSeconds(server.proc.pid);
  await sleep(2000);
  const cpu = cpuSeconds(server.proc.pid) - cpu0;
  assert.ok(cpu < 0.5, `the server used ${cpu.toFixed(2)} s of CPU in 2 s while out of descriptors (a busy loop)`);
  const warnings = server.stderr().split('\n').filter((l) => /accept failed/.test(l));
  assert.ok(warnings.length >= 1 && warnings.length <= 2, `accept warnings: ${warnings.length}\n${warnings.slice(0, 3).join('\n')}`);
  assert.ok(server.stderr().split('\n').length - lines <= 2, 'the log stays quiet while the condition lasts');
  assert.match(warnings[0], /Too many open files/);

  const shedSeen = closedByServer();
  for (const s of sockets) s.destroy();
  // Descriptors are free again: the next request is served (within the 100 ms pause).
  const health = await waitFor(() => httpRequest(`${server.url}/healthz`, { timeout: 2000 }).catch(() => null),
                               { message: '/healthz answers once the connections are closed' });
  assert.equal(health.status, 200);
  const metrics = (await httpRequest(`${server.url}/metrics`)).body;
  const value = (name) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1]);
  assert.ok(value('rtsync_accept_exhausted_total') >= 1, metrics);
  const shed = value('rtsync_connections_shed_total');
  assert.ok(shed >= shedSeen && shed <= CONNECTIONS, `shed ${shed}, seen closed by the server ${shedSeen}`);
});
