// Verifies that a webhook delivery comes from rtsync (docs/hooks.md, "Webhooks"): the signature header is
// "v1=" + the hex HMAC-SHA256 of "TIMESTAMP.BODY" with the webhook's secret, over the body exactly as it
// arrived, and the timestamp is recent (a replayed old request is refused). `headers` as Node gives them
// (lowercased names); `body` the raw body, a string or a Buffer.
import { createHmac, timingSafeEqual } from 'node:crypto';

export function verifyWebhook(body, headers, secret, { toleranceS = 300, nowMs = Date.now() } = {}) {
  const timestamp = headers['x-rtsync-timestamp'];
  const signature = headers['x-rtsync-signature'];
  if (typeof timestamp !== 'string' || !/^\d+$/.test(timestamp) || typeof signature !== 'string') return false;
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > toleranceS) return false;
  const expected = `v1=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
  const a = Buffer.from(signature);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
