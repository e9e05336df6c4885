// The offline module against the real server's side of issue 14:
// `hello` with `client` and `settled` is accepted, writes carry `seq` instead of a key, and a write
// whose answer was lost is sent again with the same `seq` and applied once.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import { cleanupAll, startServer, waitFor } from '../integration/lib/server.mjs';
import { TODOS } from '../integration/lib/config.mjs';
import { newIdentity, slowLink, webSocketClass } from './lib/harness.mjs';
import RTSync from '../../web/lib/rtsync-offline.js';

after(cleanupAll);

const Todos = RTSync.Collection.extend({ collectionName: 'todos' });

// One page: a connection (its identity in `cookie`) with an outbox in `indexedDB`. `reachable()` says
// whether the server can be reached (else the socket goes to a port nobody listens on).
const pages = [];
after(() => { for (const p of pages) p.close(); });
function page(server, { indexedDB, cookie, hooks, reachable = () => true }) {
  const connection = new RTSync.Connection({
    url: () => (reachable() ? server.wsUrl : 'ws://127.0.0.1:9/v1/ws'),
    WebSocket: webSocketClass({ cookie, hooks }),
    minDelay: 20, maxDelay: 100, timeout: 15_000,
  });
  const outbox = RTSync.offline(connection, { indexedDB, name: `rtsync-${cookie}` });
  connection.open();
  const p = { connection, outbox, rejected: [], close() { outbox.close(); connection.close(); } };
  connection.on('rejected', (c, info) => p.rejected.push(info));
  pages.push(p);
  return p;
}

async function list(p, coll = 'todos') {
  return (await p.connection.request('list', { coll })).docs;
}

describe('applied once with client and seq, against the server', () => {
  test('hello with client and settled is accepted; writes carry seq and a resend is replayed', async () => {
    const server = await startServer({ config: TODOS });
    const cookie = await newIdentity(server);
    const link = slowLink();
    const p = page(server, { indexedDB: new IDBFactory(), cookie, hooks: link.hooks });
    const todos = new Todos(null, { connection: p.connection });
    await todos.fetch();
    await waitFor(() => p.outbox._shook, { message: 'hello answered' });
    assert.equal(p.outbox.seqs, true, 'the server accepted hello with client and settled');
    link.holdReplies('create');
    const m = todos.create({ title: 'seq' });
    await link.whenSent((o) => o.op === 'create');
    await new Promise((r) => setTimeout(r, 200));
    link.cut();
    await m._writing;
    const creates = link.sentOps('create');
    assert.equal(creates.length, 2);
    assert.equal(creates[0].seq, creates[1].seq);
    assert.equal(creates[0].key, undefined);
    assert.equal((await list(p)).length, 1);
  });
});
