// PubNub files (docs/pubnub.md, section 7.6) with the official SDK (pubnub@11), in both subscribe loops:
// sendFile uploads to rtsync and publishes the file's message, which subscribers get as a `file` event
// with a URL that downloads the bytes; listFiles pages; downloadFile; deleteFile; history types it 4; the
// file and its message survive a restart. Raw requests for what the SDK would refuse to send: a file over
// max_file_size (413), an unknown or spent upload id (404), a malformed body (400), a file message naming
// no such file (400), a download that is never rendered as a page.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanupAll, httpRequest, startServer, tmpDir } from './lib/server.mjs';
import { MODES, name, sdk, stopAll, subscribed } from './lib/pubnub.mjs';

const CONFIG = `
[pubnub]
subscribe_timeout = 20
max_file_size = 100000

[namespaces.mem]
durable = false
`;

let server;
const dataDir = tmpDir();
before(async () => { server = await startServer({ config: CONFIG, dataDir }); });
after(async () => {
  stopAll();
  await cleanupAll();
});

const bytes = (n, seed = 7) => Buffer.from(Array.from({ length: n }, (_, i) => (i * seed + 3) % 256));

for (const [ee, mode] of MODES) {
  describe(`files (${mode})`, () => {
    test('sendFile: the subscriber gets the file event, its URL downloads the bytes, history types it 4', async () => {
      const ch = name('files');
      const reader = sdk(server, name('reader'), { ee });
      const writer = sdk(server, name('writer'), { ee });
      await subscribed(reader, { channels: [ch] });
      const data = bytes(3000);
      const sent = await writer.pn.sendFile({
        channel: ch, message: { note: 'the report' }, file: { data, name: 'report v1.bin', mimeType: 'application/x-test' },
      });
      assert.match(sent.id, /^[0-9a-f]{32}$/);
      assert.equal(sent.name, 'report v1.bin');
      assert.match(String(sent.timetoken), /^\d{17}$/);
      const ev = await reader.next('file', (e) => e.file?.id === sent.id);
      assert.equal(ev.channel, ch);
      assert.equal(ev.publisher, writer.userId);
      assert.deepEqual(ev.message, { note: 'the report' });
      assert.equal(ev.file.name, 'report v1.bin');
      const got = await httpRequest(ev.file.url);
      assert.equal(got.status, 200);
      assert.equal(got.headers['content-type'], 'application/octet-stream', 'SDK 11 in Node sends no other type');
      assert.equal(got.headers['content-disposition'], 'attachment');
      assert.equal(got.headers['x-content-type-options'], 'nosniff');
      assert.equal(reader.events.message.filter((m) => m.channel === ch).length, 0, 'a file is no message event');

      const file = await reader.pn.downloadFile({ channel: ch, id: sent.id, name: sent.name });
      assert.ok(Buffer.from(await file.toArrayBuffer()).equals(data), 'the same bytes');

      const hist = await reader.pn.fetchMessages({ channels: [ch], includeMessageType: true });
      const [entry] = hist.channels[ch];
      assert.equal(entry.messageType, 4);
      assert.equal(entry.message.file.id, sent.id);
      assert.deepEqual(entry.message, { message: { note: 'the report' }, file: { id: sent.id, name: sent.name } });
    });

    test('listFiles pages oldest first; deleteFile removes one', async () => {
      const ch = name('list');
      const c = sdk(server, name('lister'), { ee });
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await c.pn.sendFile({ channel: ch, file: { data: bytes(10 + i), name: `f${i}.txt` } })).id);
      const first = await c.pn.listFiles({ channel: ch, limit: 3 });
      assert.deepEqual(first.data.map((f) => f.id), ids.slice(0, 3));
      assert.equal(first.count, 3);
      assert.ok(first.next);
      assert.equal(first.data[1].size, 11);
      assert.match(first.data[1].created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const rest = await c.pn.listFiles({ channel: ch, limit: 3, next: first.next });
      assert.deepEqual(rest.data.map((f) => f.id), ids.slice(3));
      assert.equal(rest.next, undefined);
      await c.pn.deleteFile({ channel: ch, id: ids[1], name: 'f1.txt' });
      const after = await c.pn.listFiles({ channel: ch });
      assert.deepEqual(after.data.map((f) => f.id), [ids[0], ...ids.slice(2)]);
      const gone = await httpRequest(c.pn.getFileUrl({ channel: ch, id: ids[1], name: 'f1.txt' }));
      assert.equal(gone.status, 404);
      await assert.rejects(c.pn.deleteFile({ channel: ch, id: ids[1], name: 'f1.txt' }));
    });
  });
}

test('a file and its message survive a restart', async () => {
  const ch = name('kept');
  const c = sdk(server, name('keeper'));
  const sent = await c.pn.sendFile({ channel: ch, file: { data: bytes(500, 11), name: 'kept.bin' } });
  await server.stop();
  server = await startServer({ config: CONFIG, dataDir });
  const d = sdk(server, name('after'));
  const list = await d.pn.listFiles({ channel: ch });
  assert.deepEqual(list.data.map((f) => [f.id, f.name, f.size]), [[sent.id, 'kept.bin', 500]]);
  const file = await d.pn.downloadFile({ channel: ch, id: sent.id, name: 'kept.bin' });
  assert.ok(Buffer.from(await file.toArrayBuffer()).equals(bytes(500, 11)));
  const hist = await d.pn.fetchMessages({ channels: [ch], includeMessageType: true });
  assert.equal(hist.channels[ch][0].messageType, 4);
});

describe('raw', () => {
  const base = () => `${server.url}/v1/files/demo/channels`;
  const reserve = async (ch, fileName = 'x.bin') => {
    const res = await httpRequest(`${base()}/${ch}/generate-upload-url?uuid=raw`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: fileName }),
    });
    assert.equal(res.status, 200, res.body);
    return res.json();
  };
  const multipart = (fields, file, boundary = 'XyZ123', type = 'application/octet-stream') => {
    let s = '';
    for (const [k, v] of fields) s += `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
    const head = Buffer.from(`${s}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\nContent-Type: ${type}\r\n\r\n`);
    return { body: Buffer.concat([head, file, Buffer.from(`\r\n--${boundary}--\r\n`)]), type: `multipart/form-data; boundary=${boundary}` };
  };
  const upload = (url, { body, type }) => httpRequest(url, { method: 'POST', headers: { 'content-type': type }, body });

  test('the upload URL is this server, spent by its upload; a file over max_file_size is a 413', async () => {
    const ch = name('raw');
    const r = await reserve(ch);
    assert.equal(r.file_upload_request.method, 'POST');
    assert.ok(r.file_upload_request.url.startsWith(`${server.url}/v1/files/demo/channels/${ch}/upload/`));
    assert.ok(r.file_upload_request.form_fields.length > 0);
    const ok = await upload(r.file_upload_request.url, multipart([['id', r.data.id]], bytes(100), 'XyZ123', 'text/plain'));
    assert.equal(ok.status, 204, ok.body);
    const dl = await httpRequest(`${base()}/${ch}/files/${r.data.id}/x.bin`);
    assert.equal(dl.headers['content-type'], 'text/plain', "the file part's type");
    const again = await upload(r.file_upload_request.url, multipart([['id', r.data.id]], bytes(100)));
    assert.equal(again.status, 404, 'an upload id is spent once');
    const unknown = await upload(`${base()}/${ch}/upload/${'0'.repeat(32)}`, multipart([], bytes(10)));
    assert.equal(unknown.status, 404);
    const big = await reserve(ch);
    const tooBig = await upload(big.file_upload_request.url, multipart([], bytes(100001)));
    assert.equal(tooBig.status, 413);
    const bad = await reserve(ch);
    const malformed = await upload(bad.file_upload_request.url, { body: Buffer.from('--XyZ123\r\nno end'), type: 'multipart/form-data; boundary=XyZ123' });
    assert.equal(malformed.status, 400);
    const notMultipart = await upload(bad.file_upload_request.url, { body: Buffer.from('{}'), type: 'application/json' });
    assert.equal(notMultipart.status, 400);
  });

  test('bad names, unknown files and file messages naming no file are refused', async () => {
    const ch = name('refused');
    for (const bad of ['', '..', 'a/b', 'x'.repeat(256), 'tab\there']) {
      const res = await httpRequest(`${base()}/${ch}/generate-upload-url?uuid=raw`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: bad }),
      });
      assert.equal(res.status, 400, JSON.stringify(bad));
    }
    const msg = encodeURIComponent(JSON.stringify({ file: { id: 'f'.repeat(32), name: 'nope.bin' } }));
    const pub = await httpRequest(`${server.url}/v1/files/publish-file/demo/demo/0/${ch}/0/${msg}?uuid=raw`);
    assert.equal(pub.status, 400);
    const dl = await httpRequest(`${base()}/${ch}/files/${'f'.repeat(32)}/nope.bin`);
    assert.equal(dl.status, 404);
    assert.equal(dl.json().error, true);
  });
});
