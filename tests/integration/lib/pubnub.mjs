// A PubNub SDK client pointed at a test server, whose listener events are recorded with waits on them.
// Works with every SDK generation on npm that takes `new PubNub({...})` and `addListener` (4.x to 11):
// pass the constructor. Below it, the helpers of the tests of rtsync's PubNub features on pubnub@11
// (`sdk`, `subscribed`, `stop`, run in both of its subscribe loops: MODES).

import PubNub from 'pubnub';
import { TIMEOUT, withTimeout } from './server.mjs';

// `PubNub`: the SDK's constructor; `options` go to it (an `ee` option sets enableEventEngine, which SDKs
// before 8 do not know and ignore).
export function pubnubClient(PubNub, srv, userId, { ee, ...options } = {}) {
  const config = {
    publishKey: 'demo',
    subscribeKey: 'demo',
    uuid: userId,  // SDKs before 7 know only `uuid`; later ones accept it too
    origin: `${srv.host}:${srv.port}`,
    ssl: false,
    ...options,
  };
  if (ee !== undefined) config.enableEventEngine = ee;
  const pn = new PubNub(config);
  const kinds = ['message', 'presence', 'signal', 'status', 'messageAction', 'file', 'objects'];  // older SDKs ignore the last three
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
  // Subscribes and waits for the connected status (or, in the event engine, the subscription change).
  c.subscribe = async (params) => {
    const before = c.events.status.length;
    pn.subscribe(params);
    await c.next('status', (s) => c.events.status.indexOf(s) >= before &&
      (s.category === 'PNConnectedCategory' || s.category === 'PNSubscriptionChangedCategory'));
    // The receive long poll follows the handshake answer: give it a moment to be registered.
    await new Promise((r) => setTimeout(r, 150));
  };
  c.stop = () => {
    if (typeof pn.destroy === 'function') pn.destroy(true);
    else pn.stop();
  };
  return c;
}

// ---------------------------------------------------------------------------------------------------
// pubnub@11, in both subscribe loops.

const clients = [];
let unique = 0;

// A name unique to this process and call.
export const name = (prefix) => `${prefix}-${process.pid}-${++unique}`;

export const TT = /^\d{17}$/;

export const MODES = [[true, 'event engine'], [false, 'legacy subscription manager']];

export function sdk(srv, userId, { ee = true, ...options } = {}) {
  const c = pubnubClient(PubNub, srv, userId, { ee, ...options });
  clients.push(c);
  return c;
}

export const subscribed = (c, params) => c.subscribe(params);

export function stop(c) {
  c.stop();
  clients.splice(clients.indexOf(c), 1);
}

// Stops every client still open (register with after()).
export function stopAll() {
  for (const c of clients) c.stop();
  clients.length = 0;
}
