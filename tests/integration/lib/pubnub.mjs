// PubNub SDK clients for the tests of rtsync's PubNub features (pubnub@11, pointed at a test server with
// `origin: 'HOST:PORT', ssl: false`): every listener event recorded, with waits on them. The same helper
// as the one pubnub_sdk.test.mjs defines for itself, plus message-action events; the test files that
// import it run each scenario in both of the SDK's subscribe loops (`ee` true and false).

import PubNub from 'pubnub';
import { sleep, TIMEOUT, withTimeout } from './server.mjs';

const clients = [];
let unique = 0;

// A name unique to this process and call.
export const name = (prefix) => `${prefix}-${process.pid}-${++unique}`;

export const TT = /^\d{17}$/;

export const MODES = [[true, 'event engine'], [false, 'legacy subscription manager']];

export function sdk(srv, userId, { ee = true, ...options } = {}) {
  const pn = new PubNub({
    publishKey: 'demo',
    subscribeKey: 'demo',
    userId,
    origin: `${srv.host}:${srv.port}`,
    ssl: false,
    enableEventEngine: ee,
    ...options,
  });
  const kinds = ['message', 'presence', 'signal', 'status', 'messageAction'];
  const c = { pn, userId, events: Object.fromEntries(kinds.map((k) => [k, []])), waiters: [] };
  const record = (kind) => (e) => {
    c.events[kind].push(e);
    for (const w of [...c.waiters]) {
      if (w.kind === kind && w.pred(e)) {
        c.waiters.splice(c.waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  };
  pn.addListener(Object.fromEntries(kinds.map((k) => [k, record(k)])));
  // The first recorded `kind` event matching `pred`, past or future.
  c.next = (kind, pred = () => true, timeout = TIMEOUT) => {
    const seen = c.events[kind].find(pred);
    if (seen) return Promise.resolve(seen);
    return withTimeout(new Promise((resolve) => c.waiters.push({ kind, pred, resolve })), timeout,
      `${userId}: no ${kind} event matching ${pred} within ${timeout} ms; got ${JSON.stringify(c.events[kind]).slice(0, 600)}`);
  };
  c.messages = (channel) => c.events.message.filter((m) => m.channel === channel).map((m) => m.message);
  clients.push(c);
  return c;
}

// Subscribes and waits until the subscription is live on the server (the connected status in both
// modes; a later change in the event engine says "subscription changed").
export async function subscribed(c, params) {
  const before = c.events.status.length;
  c.pn.subscribe(params);
  await c.next('status', (s) => c.events.status.indexOf(s) >= before &&
    (s.category === 'PNConnectedCategory' || s.category === 'PNSubscriptionChangedCategory'));
  // The receive long poll follows the handshake answer: give it a moment to be registered.
  await sleep(150);
}

export function stop(c) {
  c.pn.destroy(true);
  clients.splice(clients.indexOf(c), 1);
}

// Destroys every client still open (register with after()).
export function stopAll() {
  for (const c of clients) c.pn.destroy(true);
  clients.length = 0;
}
