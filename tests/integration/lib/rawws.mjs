// A hand-made WebSocket client over a plain TCP socket, for the cases `ws` refuses to produce: unmasked
// frames, reserved bits, unknown opcodes, oversized or fragmented control frames, invalid UTF-8.
// Also a raw HTTP/1.1 request helper for paths that URL parsers would normalise (/../).

import crypto from 'node:crypto';
import net from 'node:net';
import { TIMEOUT, withTimeout } from './server.mjs';

export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa };
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// Builds one frame. `mask` false sends it unmasked (a protocol violation from a client).
export function encodeFrame(opcode, payload = Buffer.alloc(0), { fin = true, rsv = 0, mask = true } = {}) {
  if (typeof payload === 'string') payload = Buffer.from(payload, 'utf8');
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (!mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

export class RawWs {
  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.upgraded = false;
    this.frames = [];        // parsed server frames not yet consumed
    this.waiters = [];
    this.protocolErrors = []; // problems with what the server sent (masked frames, bad lengths)
    this.ended = new Promise((resolve) => socket.on('close', () => { this.isEnded = true; resolve(); this.#wake(); }));
    socket.on('error', (e) => { this.socketError = e; });
    socket.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.#parse(); });
  }

  // Opens a TCP connection, performs the upgrade, and checks the 101 answer.
  static async connect(port, { path = '/v1/ws', headers = {}, host = '127.0.0.1' } = {}) {
    const socket = net.connect(port, host);
    await withTimeout(new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }), TIMEOUT, 'TCP connect timed out');
    const raw = new RawWs(socket);
    const key = crypto.randomBytes(16).toString('base64');
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: ${host}:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    const head = await withTimeout(new Promise((resolve, reject) => {
      raw.headResolve = resolve;
      socket.once('close', () => reject(new Error('connection closed during the upgrade')));
    }), TIMEOUT, 'no upgrade response');
    const status = /^HTTP\/1\.1 (\d{3})/.exec(head);
    if (!status || status[1] !== '101') throw new Error(`upgrade failed:\n${head}`);
    const accept = /^sec-websocket-accept:\s*(\S+)\s*$/im.exec(head)?.[1];
    const expected = crypto.createHash('sha1').update(key + GUID).digest('base64');
    if (accept !== expected) throw new Error(`bad Sec-WebSocket-Accept ${accept}, expected ${expected}`);
    raw.head = head;
    return raw;
  }

  #parse() {
    if (!this.upgraded) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      this.buf = this.buf.subarray(end + 4);
      this.upgraded = true;
      this.headResolve?.(head);
    }
    for (;;) {
      if (this.buf.length < 2) break;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) break;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) break;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) { this.protocolErrors.push('server sent a masked frame'); off += 4; }
      if (this.buf.length < off + len) break;
      let payload = Buffer.from(this.buf.subarray(off, off + len));
      if (masked) {
        const key = this.buf.subarray(off - 4, off);
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      }
      this.buf = this.buf.subarray(off + len);
      this.frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, payload });
    }
    this.#wake();
  }

  #wake() {
    while (this.waiters.length && (this.frames.length || this.isEnded)) {
      const w = this.waiters.shift();
      if (this.frames.length) w.resolve(this.frames.shift());
      else w.reject(new Error('connection closed by the server (no more frames)'));
    }
  }

  // The next frame from the server.
  nextFrame(timeout = TIMEOUT) {
    if (this.frames.length) return Promise.resolve(this.frames.shift());
    if (this.isEnded) return Promise.reject(new Error('connection closed by the server (no more frames)'));
    const p = new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    return withTimeout(p, timeout, `no frame from the server within ${timeout} ms`);
  }

  // The JSON objects of the next text frame.
  async nextObjects(timeout = TIMEOUT) {
    const f = await this.nextFrame(timeout);
    if (f.opcode !== OP.text) throw new Error(`expected a text frame, got opcode ${f.opcode}`);
    return parseLines(f.payload);
  }

  // Reads and checks the hello push.
  async readHello() {
    const objs = await this.nextObjects();
    if (objs[0]?.op !== 'hello') throw new Error(`expected hello, got ${JSON.stringify(objs)}`);
    this.hello = objs[0];
    return objs[0];
  }

  send(opcode, payload, opts) {
    this.socket.write(encodeFrame(opcode, payload, opts));
  }

  sendBytes(buf) {
    this.socket.write(buf);
  }

  // Reads frames until the server's close frame. Returns {objects (JSON from text frames before it),
  // frames (all frames before it), code, reason}, answers the close, and waits for the TCP close.
  async expectClose(timeout = TIMEOUT) {
    const objects = [];
    const frames = [];
    for (;;) {
      const f = await this.nextFrame(timeout);
      if (f.opcode === OP.close) {
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
        const reason = f.payload.subarray(2).toString('utf8');
        if (!this.socket.destroyed) {
          try { this.socket.write(encodeFrame(OP.close, f.payload.subarray(0, 2))); } catch { /* closed */ }
        }
        await withTimeout(this.ended, timeout, 'server did not close the TCP connection after its close frame');
        return { objects, frames, code, reason };
      }
      frames.push(f);
      if (f.opcode === OP.text) objects.push(...parseLines(f.payload));
    }
  }

  destroy() {
    this.socket.destroy();
  }
}

export function parseLines(payload) {
  return payload.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

// Sends `request` (a complete HTTP/1.1 request head, e.g. with a path a URL parser would normalise) and
// resolves with {status, headers (lower-case names), body} once the server closes or the body is complete.
export function rawHttp(port, request, { timeout = TIMEOUT } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const body = buf.subarray(end + 4);
      const len = headers['content-length'];
      if (len !== undefined && body.length < Number(len) && !socket.destroyed && !socket.readableEnded) return;
      done = true;
      socket.destroy();
      resolve({ status: Number(statusLine.split(' ')[1]), statusLine, headers, body: body.toString('latin1') });
    };
    socket.on('data', (d) => { buf = Buffer.concat([buf, d]); finish(); });
    socket.on('end', () => { finish(); if (!done) reject(new Error(`incomplete HTTP response: ${buf.toString('latin1').slice(0, 300)}`)); });
    socket.on('error', (e) => { if (!done) reject(e); });
    socket.write(request);
  }), timeout, 'raw HTTP request timed out');
}
