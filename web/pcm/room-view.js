// Rooms: `/?room=NAME` gives a team its own counts (the tally of group NAME, `tally:pcm:NAME`), while
// everyone's matrix keeps counting all. The room bar says which room this is and shares it: the link,
// a button that copies it, and a QR code drawn in the page (qr.js). Outside a room it offers to open one.

import { h, s, replace } from './dom.js';
import { ROOM_RULE, roomUrl, validRoom } from './room.js';
import { View } from './view.js';

export const RoomView = View.extend({

  events: {
    'click [data-action=copy-link]': 'copy',
    'click [data-action=show-qr]': 'toggleQr',
    'submit form': 'open',
  },

  // Options: `room` (a name, or null for everyone's matrix).
  initialize: function(options) {
    this.room = options.room;
  },

  render: function() {
    if (!this.room) {
      this.input = h('input', { class: 'form-control form-control-sm', id: 'room-name', name: 'room', required: true,
        maxlength: 32, autocomplete: 'off', placeholder: 'e.g. team-berlin', 'aria-describedby': 'room-rule' });
      this.feedback = h('span', { class: 'room-rule', id: 'room-rule' }, `For your team’s own counts: ${ROOM_RULE}.`);
      replace(this.el, h('form', { class: 'room-open', novalidate: true },
        h('label', { for: 'room-name' }, 'Open a room'), this.input,
        h('button', { type: 'submit', class: 'btn btn-sm' }, 'Open'),
        this.feedback,
        h('a', { class: 'room-results', href: '/results' }, 'Presenter view')));
      return this;
    }
    const url = roomUrl(location.origin, this.room);
    this.qr = h('figure', { class: 'room-qr', hidden: true }, h('figcaption', null, 'Scan to open this room'));
    replace(this.el,
      h('div', { class: 'room-head' },
        h('h2', null, 'Room ', h('span', { class: 'room-name', 'data-stat': 'room' }, this.room)),
        h('p', null, 'The counts below are this room’s only. Everyone’s matrix counts every room: ',
          h('a', { href: '/' }, 'see everyone’s'), '.')),
      h('div', { class: 'room-share' },
        h('label', { class: 'visually-hidden', for: 'room-link' }, 'Link to this room'),
        h('input', { class: 'form-control form-control-sm', id: 'room-link', readonly: true, value: url }),
        h('button', { type: 'button', class: 'btn btn-sm', 'data-action': 'copy-link' }, 'Copy link'),
        h('button', { type: 'button', class: 'btn btn-sm', 'data-action': 'show-qr',
          'aria-expanded': 'false' }, 'QR code'),
        h('a', { class: 'room-results', href: `/results?room=${encodeURIComponent(this.room)}` }, 'Presenter view'),
        h('span', { class: 'room-copied', role: 'status' })),
      this.qr);
    return this;
  },

  copy: function() {
    const said = this.el.querySelector('.room-copied');
    const input = this.el.querySelector('#room-link');
    // The Clipboard API needs a secure context (https or localhost); elsewhere the link is selected
    // for the person to copy.
    const copied = navigator.clipboard ? navigator.clipboard.writeText(input.value) : Promise.reject(new Error('no clipboard'));
    copied.then(() => { said.textContent = 'Copied'; }, () => {
      input.select();
      said.textContent = 'Selected: copy it with Ctrl+C';
    });
  },

  // The code is drawn the first time it is shown.
  toggleQr: function(e, button) {
    const show = this.qr.hidden;
    const drawn = this.qr.querySelector('svg') ? Promise.resolve() : import('./qr.js').then(({ qrPath }) => {
      // Black on white in dark mode too, so that cameras read it; the colours are attributes, so that the
      // SVG is whole on its own.
      const { size, d } = qrPath(this.el.querySelector('#room-link').value);
      this.qr.prepend(s('svg', { class: 'qr', viewBox: `0 0 ${size} ${size}`, role: 'img',
        'aria-label': `QR code of the link to room ${this.room}`, 'shape-rendering': 'crispEdges' },
      s('rect', { width: size, height: size, fill: '#fff' }), s('path', { d, fill: '#000' })));
    });
    drawn.then(() => {
      this.qr.hidden = !show;
      button.setAttribute('aria-expanded', String(show));
    }, (err) => console.warn('QR code:', err.message));
  },

  open: function(e) {
    e.preventDefault();
    const name = this.input.value.trim();
    if (!validRoom(name)) {
      this.input.setAttribute('aria-invalid', 'true');
      this.feedback.textContent = `“${name}” cannot be a room: ${ROOM_RULE}.`;
      this.feedback.classList.add('room-rule-error');
      this.input.focus();
      return;
    }
    location.assign(roomUrl(location.origin, name));
  },
});
