// Command line and config (PROTOCOL §1-2): the listening line, flags overriding the file, and startup
// errors that name the offending key.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Client, cleanupAll, runToExit, startServer, tmpDir } from './lib/server.mjs';

after(cleanupAll);

function configFile(text) {
  const file = path.join(tmpDir('rtsync-conf-'), 'bad.toml');
  fs.writeFileSync(file, text);
  return file;
}

describe('startup', () => {
  test('prints exactly one listening line with the real port', async () => {
    const server = await startServer();
    const lines = server.stdout().split('\n').filter((l) => l.startsWith('rtsync listening on'));
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^rtsync listening on http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(server.port, 0);
    const c = await Client.connect(server.wsUrl);
    assert.equal(c.hello.op, 'hello');
    await c.close();
    assert.equal(await server.stop(), 0);
  });

  test('command-line flags override the config file', async () => {
    const unusable = path.join(tmpDir('rtsync-unused-'), 'not-a-dir-file');
    fs.writeFileSync(unusable, 'a file where a directory would be');
    const config = `[server]\nlisten = "127.0.0.1:1"\ndata = "${unusable}/data"\n`;
    const server = await startServer({ config });  // adds --listen 127.0.0.1:0 --data <fresh dir>
    assert.notEqual(server.port, 1);
    const c = await Client.connect(server.wsUrl);
    assert.equal((await c.call('pub', { ch: 'flags', data: 1 })).offset, 1);
    await c.close();
    assert.ok(fs.readdirSync(server.dataDir).length > 0, 'the --data directory is used');
    assert.equal(await server.stop(), 0);
  });
});

describe('config errors stop the start and name the key', () => {
  const cases = [
    ['an unknown key', '[channels]\nhistroy_size = 5\n', /histroy_size/],
    ['an unknown key in a namespace', '[namespaces.cursor]\ndurabel = false\n', /durabel/],
    ['an unknown server key', '[server]\nlisten_addr = "127.0.0.1:0"\n', /listen_addr/],
    ['a wrong type', '[channels]\nhistory_size = "many"\n', /history_size/],
    ['a wrong boolean type', '[namespaces.x]\ndurable = "yes"\n', /durable/],
    ['a wrong limits type', '[limits]\nmax_subscriptions = true\n', /max_subscriptions/],
  ];
  for (const [name, text, key] of cases) {
    test(name, async () => {
      const data = tmpDir('rtsync-data-');
      const { code, stdout, stderr } = await runToExit(
        ['serve', '--listen', '127.0.0.1:0', '--data', data, '--config', configFile(text)]);
      assert.notEqual(code, 0, `exit code for ${JSON.stringify(text)}`);
      assert.ok(!stdout.includes('rtsync listening on'), 'it never listened');
      assert.match(stdout + stderr, key, `the error names the key:\n${stderr}`);
    });
  }
});
