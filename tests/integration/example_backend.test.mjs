// The example backend of docs/hooks.md (examples/pcm-backend) with its rtsync.toml: the connect hook
// names the WebSocket's user from the backend's own session cookie, and the webhook appends each PCM
// submission to its file once; the example config declares the pcm collection as the app's matrix does.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { Client, REPO_ROOT, cleanupAll, httpRequest, startServer, tmpDir, waitFor } from './lib/server.mjs';
import { createBackend } from '../../examples/pcm-backend/backend.mjs';

after(cleanupAll);

const EXAMPLE = path.join(REPO_ROOT, 'examples/pcm-backend/rtsync.toml');
const MATRIX = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'web/public/pcm/matrix.json'), 'utf8'));

test('the example config declares the pcm collection as the matrix does', () => {
  const levels = MATRIX.levels.map((l) => l.id).join(', ');
  const tally = `tally = { ${MATRIX.rows.map((r) => `${r.id} = [${levels}]`).join(', ')} }`;
  assert.ok(fs.readFileSync(EXAMPLE, 'utf8').split('\n').includes(tally), 'the tally line follows web/public/pcm/matrix.json');
});

test('the connect hook names the user from the backend\'s cookie; the webhook files each submission once', async () => {
  const toml = fs.readFileSync(EXAMPLE, 'utf8');
  const secret = toml.match(/^secret = "([^"]+)"/m)[1];
  const file = path.join(tmpDir('pcm-backend-'), 'submissions.jsonl');
  const backend = createBackend({ secret, file });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  const port = backend.address().port;
  const server = await startServer({ config: toml.replaceAll('127.0.0.1:9000', `127.0.0.1:${port}`) });

  const login = await httpRequest(`http://127.0.0.1:${port}/login`, { method: 'POST', body: JSON.stringify({ name: 'ada' }) });
  assert.equal(login.status, 200);
  const cookie = login.headers['set-cookie'][0].split(';')[0];
  const ada = await Client.connect(server.wsUrl, { headers: { Cookie: cookie } });
  assert.equal(ada.hello.user, 'ada');
  const anon = await Client.connect(server.wsUrl);
  assert.match(anon.hello.user, /^anon-/, 'no session: rtsync\'s anonymous identity');

  await ada.call('update', { coll: 'pcm', doc: 'me', data: { algorithms: 2 } });
  await anon.call('update', { coll: 'pcm', doc: 'me', data: { algorithms: 1 } });
  const lines = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  await waitFor(() => lines().length >= 2);
  const [first, second] = lines();
  assert.equal(first.user, 'ada');
  assert.equal(first.doc.id, 'ada');
  assert.equal(first.doc.algorithms, 2);
  assert.equal(second.user, anon.hello.user);
  assert.deepEqual(lines().map((l) => l.offset), [1, 2]);
  ada.close();
  anon.close();
  await new Promise((r) => { backend.closeAllConnections(); backend.close(r); });
});
