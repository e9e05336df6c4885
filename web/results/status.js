// The presenter view's connection indicator: "Live", "Connecting…" or "Offline · retrying in N s" with
// "Retry now", the state on <html data-connection="…"> (for the styles and the tests), and one polite
// announcement when the counts stop or start being live. It follows the main page's StatusView
// (web/pcm/views.js) without being a Backbone.View, which needs jQuery: this page loads neither jQuery
// nor Bootstrap.

import { h, replace } from '../pcm/dom.js';

// `el` the indicator, `connection` an RTSync.Connection, `announce` the page's live region.
export function showConnection(el, connection, announce) {
  let ticker = null;
  let wasLive = null; // null until the first time it is live: connecting at load is no news

  const render = () => {
    clearInterval(ticker);
    const state = connection.state === 'closed' ? 'connecting' : connection.state;
    const live = state === 'online';
    if (wasLive != null && live !== wasLive) {
      announce.textContent = live ? 'Connected again: the counts are live.' : 'Connection lost: the counts are not live.';
    }
    if (wasLive != null || live) wasLive = live;
    document.documentElement.dataset.connection = state;
    el.className = `conn conn-${state}`;
    const dot = h('span', { class: 'dot', 'aria-hidden': 'true' });
    const label = h('span', { class: 'label' });
    if (state === 'offline') {
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((connection.retryAt - Date.now()) / 1000));
        label.textContent = seconds ? `Offline · retrying in ${seconds} s` : 'Offline · retrying…';
      };
      tick();
      ticker = setInterval(tick, 500);
      const retry = h('button', { type: 'button', class: 'link' }, 'Retry now');
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
