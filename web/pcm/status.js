// The connection indicator, shared by the matrix and the presenter view: "Live", "Connecting…" or
// "Offline · retrying in N s" with a button to retry at once. The state is also put on
// <html data-connection="…"> for the styles and the tests. Screen readers hear only a change between
// live and not live (`announce`, a polite live region), not the countdown nor every attempt. A plain
// function rather than a view: it delegates no events, and the presenter view has no Backbone views.

import { h, replace } from './dom.js';

const TITLES = {
  online: 'Connected: changes appear as they happen',
  offline: 'The connection was lost; it is tried again by itself',
  connecting: 'Connecting to the server',
};

// `el` the indicator, `connection` an RTSync.Connection, `announce` the page's live region; options:
// `lost` (what is announced when the connection goes), `retryClass` (the class of "Retry now").
export function showConnection(el, connection, announce, { lost = 'Connection lost: the counts are not live.', retryClass = 'link' } = {}) {
  let ticker = null;
  let wasLive = null; // null until the first time it is live: connecting at load is no news

  const render = () => {
    clearInterval(ticker);
    const state = connection.state === 'closed' ? 'connecting' : connection.state;
    const live = state === 'online';
    if (wasLive != null && live !== wasLive) announce.textContent = live ? 'Connected again: the counts are live.' : lost;
    if (wasLive != null || live) wasLive = live;
    document.documentElement.dataset.connection = state;
    el.className = `conn conn-${state}`;
    el.title = TITLES[state];
    const dot = h('span', { class: 'dot', 'aria-hidden': 'true' });
    const label = h('span', { class: 'label' });
    if (state === 'offline') {
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((connection.retryAt - Date.now()) / 1000));
        label.textContent = seconds ? `Offline · retrying in ${seconds} s` : 'Offline · retrying…';
      };
      tick();
      ticker = setInterval(tick, 500);
      const retry = h('button', { type: 'button', class: retryClass }, 'Retry now');
      retry.addEventListener('click', () => connection.reconnect());
      replace(el, dot, label, retry);
    } else {
      label.textContent = live ? 'Live' : 'Connecting…';
      replace(el, dot, label);
    }
  };

  connection.on('connecting online offline', render);
  render();
}
