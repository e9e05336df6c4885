// Tokens for the security tests: HS256 JWTs signed here with node:crypto and the server's secret (the
// 64 hex characters of DATA_DIR/secret, used as the HMAC key text, as `rtsync token` does), plus
// deliberately broken variants (alg none, other algorithms, wrong secret, tampered payload).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { rawHttp } from './rawws.mjs';

export function readSecret(dataDir) {
  return fs.readFileSync(path.join(dataDir, 'secret'), 'utf8').trim();
}

const b64u = (s) => Buffer.from(s).toString('base64url');
export const nowS = () => Math.floor(Date.now() / 1000);

// signToken({sub, exp, caps, info, ...more}, secret, {header, alg, signWith}) -> compact JWS.
// `exp` defaults to one hour from now; pass exp: null to leave it out. `alg` sets the header's alg (the
// signature is still HMAC-SHA256 unless `signWith` says otherwise: 'none' for an empty signature,
// 'sha384'/'sha512' for the matching HMAC).
export function signToken(claims, secret, { header, alg = 'HS256', signWith = 'sha256' } = {}) {
  const payload = { exp: nowS() + 3600, ...claims };
  if (payload.exp === null) delete payload.exp;
  const head = header ?? { alg, typ: 'JWT' };
  const input = `${b64u(typeof head === 'string' ? head : JSON.stringify(head))}.${b64u(JSON.stringify(payload))}`;
  if (signWith === 'none') return `${input}.`;
  return `${input}.${crypto.createHmac(signWith, secret).update(input).digest('base64url')}`;
}

// The token matrix: name -> {token, valid}. `user` is the sub of every token.
export function tokenMatrix(secret, user) {
  const valid = signToken({ sub: user }, secret);
  const [h, p] = valid.split('.');
  const forged = b64u(JSON.stringify({ sub: 'root', exp: nowS() + 3600 }));
  return {
    valid: { token: valid, valid: true },
    expired: { token: signToken({ sub: user, exp: nowS() - 10 }, secret), valid: false },
    'missing exp': { token: signToken({ sub: user, exp: null }, secret), valid: false },
    'wrong signature': { token: `${h}.${p}.${'A'.repeat(43)}`, valid: false },
    'another secret': { token: signToken({ sub: user }, 'f'.repeat(64)), valid: false },
    'tampered payload': { token: `${h}.${forged}.${valid.split('.')[2]}`, valid: false },
    'alg none, no signature': { token: signToken({ sub: user }, secret, { alg: 'none', signWith: 'none' }), valid: false },
    'alg none, with signature': { token: signToken({ sub: user }, secret, { alg: 'none' }), valid: false },
    'alg HS384': { token: signToken({ sub: user }, secret, { alg: 'HS384', signWith: 'sha384' }), valid: false },
    'alg RS256': { token: signToken({ sub: user }, secret, { alg: 'RS256' }), valid: false },
    garbage: { token: 'not-a-token', valid: false },
  };
}

// A WebSocket upgrade over a raw socket; resolves with {status, headers, body} (101 included).
export async function upgradeStatus(port, { path: target = '/v1/ws', headers = {} } = {}) {
  const lines = [
    `GET ${target} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return rawHttp(port, `${lines.join('\r\n')}\r\n\r\n`);
}
