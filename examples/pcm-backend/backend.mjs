// An example backend for the PCM app (docs/hooks.md), in Node without a framework:
// - POST /login {"name":"…"} starts a session of the backend's own (cookie pcm_session, HttpOnly);
// - POST /rtsync/connect is rtsync's connect hook: it names the WebSocket's user from that cookie (an
//   unknown or missing session keeps rtsync's anonymous identity);
// - POST /rtsync/webhook is a webhook following the pcm collection: each verified delivery of a
//   submission is appended to a file as one JSON line, a repeat (same channel, epoch and offset) once.
// Serve it on the same site as rtsync (one reverse proxy in front of both) so that the browser sends the
// cookie with the WebSocket upgrade.
import fs from 'node:fs';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { verifyWebhook } from './verify.mjs';

export function createBackend({ secret, file }) {
  const sessions = new Map();  // session id -> user name
  const seen = new Set();      // "channel/epoch/offset" of what the file holds
  if (fs.existsSync(file)) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
      const s = JSON.parse(line);
      seen.add(`${s.channel}/${s.epoch}/${s.offset}`);
    }
  }
  const json = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  return http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { raw += c; });
    req.on('end', () => {
      if (req.method !== 'POST') return json(res, 405, { error: 'POST only' });
      if (req.url === '/login') {
        let name;
        try { name = JSON.parse(raw).name; } catch { name = undefined; }
        if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) return json(res, 400, { error: 'name: 1-64 of A-Za-z0-9_-' });
        const id = randomBytes(16).toString('hex');
        sessions.set(id, name);
        return json(res, 200, { user: name }, { 'Set-Cookie': `pcm_session=${id}; HttpOnly; SameSite=Lax; Path=/` });
      }
      if (req.url === '/rtsync/connect') {
        const hook = JSON.parse(raw);
        const name = sessions.get(hook.cookies?.pcm_session);
        return json(res, 200, name ? { sub: name, info: { name } } : {});
      }
      if (req.url === '/rtsync/webhook') {
        if (!verifyWebhook(raw, req.headers, secret)) return json(res, 401, { error: 'bad signature' });
        const d = JSON.parse(raw);
        const key = `${d.channel}/${d.epoch}/${d.offset}`;
        if (!seen.has(key) && d.data?.type === 'upsert') {
          // Written before the 2xx: a crash in between makes rtsync send it again, and `seen` drops it.
          fs.appendFileSync(file, `${JSON.stringify({ channel: d.channel, epoch: d.epoch, offset: d.offset, user: d.from, doc: d.data.doc })}\n`);
        }
        seen.add(key);
        return json(res, 200, {});
      }
      json(res, 404, { error: 'not found' });
    });
  });
}

// node examples/pcm-backend/backend.mjs: listens on 127.0.0.1:9000 with WEBHOOK_SECRET from the environment.
if (import.meta.url === `file://${process.argv[1]}`) {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret || secret.length < 32) throw new Error('set WEBHOOK_SECRET (32+ characters), as in rtsync.toml');
  createBackend({ secret, file: process.env.SUBMISSIONS ?? 'submissions.jsonl' })
    .listen(9000, '127.0.0.1', () => console.log('pcm backend on http://127.0.0.1:9000'));
}
