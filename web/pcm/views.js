// The smaller views around the matrix: the live summary with the heatmap's legend, and the action bar
// with the submit confirmation and its toast.

import _ from 'underscore';
// Bootstrap's modules one by one (its ES sources), so that the bundle holds only the components used.
// Its sources carry no license comment, which the build keeps (app-HASH.js.LEGAL.txt): here it is.
/*!
  * Bootstrap v5.3.9 (https://getbootstrap.com/): its modal, toast and popover, and @popperjs/core v2.11.8
  * Copyright 2011-2026 The Bootstrap Authors (https://github.com/twbs/bootstrap/graphs/contributors)
  * Licensed under MIT (https://github.com/twbs/bootstrap/blob/main/LICENSE); Popper: MIT License
  */
import Modal from 'bootstrap/js/src/modal.js';
import Toast from 'bootstrap/js/src/toast.js';
import { h, replace, people } from './dom.js';
import { View } from './view.js';

// SummaryView
// -----------

// "N people have submitted, M here now", and the legend of the table's colours. M counts distinct
// people on the presence channel (several tabs of one person count once). Counts that may be behind
// (read from this browser's cache, or kept while the connection is down) say so, with their time, and
// the grid is drawn muted (`body[data-counts=stale]`).
export const SummaryView = View.extend({

  // Options: `presence` (a channel), `connection`, `room` (the room's name, or null for everyone's).
  initialize: function(options) {
    this.presence = options.presence;
    this.connection = options.connection;
    this.room = options.room;
    this.lostAt = null; // when the connection went down, if it was online: the counts are as of then
    this.listenTo(this.model, 'change:total', this.renderNumbers);
    this.listenTo(this.model, 'cached sync', this.renderNumbers);
    this.listenTo(this.presence.members, 'update reset', this.renderNumbers);
    // Who is here is only known while the presence channel is live.
    this.listenTo(this.presence, 'subscribe', this.renderNumbers);
    this.listenTo(this.connection, 'offline', () => { this.lostAt = this.lostAt || Date.now(); });
    this.listenTo(this.connection, 'online', () => { this.lostAt = null; });
    this.listenTo(this.connection, 'offline online', this.renderNumbers);
  },

  render: function() {
    this.submittedEl = h('strong', { class: 'num', 'data-stat': 'submitted' });
    this.submittedLabel = h('span');
    this.hereEl = h('strong', { class: 'num', 'data-stat': 'here' });
    this.staleEl = h('span', { class: 'stale-note', 'data-stat': 'counts-at' });
    // Not a live region: it changes on every submission and every arrival, and would be read out each
    // time. The outcome of the person's own submission is announced by the toast.
    const headline = h('p', { class: 'headline' },
      this.submittedEl, ' ', this.submittedLabel, ', ', this.hereEl, ' here now', this.staleEl);
    const swatches = [0, 0.25, 0.5, 0.75, 1].map((share) => {
      const sw = h('span', { class: 'swatch heat' });
      sw.style.setProperty('--share', String(share));
      return sw;
    });
    const legend = h('div', { class: 'legend', 'aria-label': 'Legend' },
      h('span', { class: 'legend-item' },
        h('span', { class: 'legend-title' }, 'Share of answers'),
        h('span', { class: 'scale' }, h('span', { class: 'tick' }, '0%'), swatches, h('span', { class: 'tick' }, '100%'))),
      h('span', { class: 'legend-item' }, h('span', { class: 'swatch choice' }), 'your choice'),
      h('span', { class: 'legend-item' }, h('span', { class: 'swatch-mine' }, 'yours'), 'submitted'));
    replace(this.el, headline, legend);
    this.renderNumbers();
    return this;
  },

  // The time the counts are from when they may be behind, else null.
  countsAt: function() {
    if (this.model.cachedAt != null) return this.model.cachedAt;
    return this.connection.state === 'online' ? null : this.lostAt;
  },

  renderNumbers: function() {
    if (!this.submittedEl) return;
    const total = this.model.get('total') || 0;
    this.submittedEl.textContent = String(total);
    this.submittedLabel.textContent = (total === 1 ? 'person has submitted' : 'people have submitted')
      + (this.room ? ' in this room' : '');
    const here = _.uniq(this.presence.members.pluck('user')).length;
    const live = this.presence.state === 'subscribed' && this.connection.state === 'online';
    this.hereEl.textContent = live ? String(here) : '–';
    const at = this.countsAt();
    this.staleEl.textContent = at == null ? '' : ` · counts as of ${when(at)}, not live`;
    document.body.dataset.counts = at == null ? 'live' : 'stale';
  },
});

// "14:05", or "3 Dec, 14:05" for another day.
function when(at) {
  const date = new Date(at);
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { day: 'numeric', month: 'short' })}, ${time}`;
}

// ActionsView
// -----------

// The bar at the bottom: progress, the state of the person's submission, "Undo changes" and "Submit".
// Submitting asks for confirmation in a modal first; the outcome shows in a toast. Offline, a submission
// is saved on the device and the bar says so (no spinner): it is sent when the connection is back.
export const ActionsView = View.extend({

  events: {
    'click [data-action=submit]': 'confirmSubmit',
    'click [data-action=withdraw]': 'confirmWithdraw',
    'click [data-action=revert]': 'revert',
    'click [data-action=next]': 'next',
  },

  // Options: `matrix`, `selection`, `submitted` (Backbone models of row -> level), `placed` (`room`:
  // where the submission counts), `room` (this page's, or null), `submit` and `withdraw` (functions
  // returning a promise), `nextUnrated` (moves to the next row without a choice), `connection` (its
  // outbox's `pending` count), `modal` and `toast` (elements).
  initialize: function(options) {
    _.extend(this, _.pick(options, 'matrix', 'selection', 'submitted', 'placed', 'room', 'submit', 'withdraw',
      'nextUnrated', 'connection'));
    this.modal = Modal.getOrCreateInstance(options.modal);
    this.modalEl = options.modal;
    this.toastEl = options.toast;
    this.toast = Toast.getOrCreateInstance(options.toast, { delay: 4000 });
    this.modalEl.querySelector('[data-action=confirm]').addEventListener('click', () => this.send());
    this.modalEl.addEventListener('shown.bs.modal', () => this.modalEl.querySelector('[data-action=confirm]').focus());
    // The dialog gives focus back to the button that opened it; the bar may have been drawn again
    // meanwhile, so it goes to that button's successor (or Submit), never to <body>.
    this.modalEl.addEventListener('hidden.bs.modal', () => this.refocus(this.asking));
    this.listenTo(this.selection, 'change', this.render);
    this.listenTo(this.submitted, 'change', this.render);
    this.listenTo(this.placed, 'change', this.render);
    this.listenTo(this.connection, 'pending online', this.render);
    // Going offline mid-submit: the submission is safe on the device, not stuck.
    this.listenTo(this.connection, 'offline', () => { this.sending = false; this.render(); });
    // A submission the server refused (made on this page or another, now or before a reload) has been
    // rolled back in the models; the person is told why.
    this.listenTo(this.connection, 'rejected', (c, info) => {
      if (info.coll === 'pcm') this.notify(`Your submission was not saved: ${info.error.message}`, 'danger');
    });
  },

  rated: function() {
    return _.size(this.selection.attributes);
  },

  // In a room, a submission that counts in another room (or in none) is still to be moved here.
  elsewhere: function() {
    return !!this.room && !_.isEmpty(this.submitted.attributes) && this.placed.get('room') !== this.room;
  },

  edited: function() {
    return !_.isEqual(this.selection.attributes, this.submitted.attributes);
  },

  dirty: function() {
    return this.edited() || this.elsewhere();
  },

  // What the bar says of the submission. `submitted` includes one saved here and not yet sent.
  status: function(hasSubmission) {
    if (this.sending) return this.sending === 'withdraw' ? 'Withdrawing…' : 'Submitting…';
    if (this.elsewhere()) {
      const there = this.placed.get('room');
      return there ? `Your answers count in room “${there}”: submit to move them here`
        : 'Your answers are not counted in this room yet: submit to count them here';
    }
    if (this.edited()) return hasSubmission ? 'Changes not submitted yet' : 'Not submitted yet';
    if (this.connection.pending()) {
      return this.connection.state === 'online' ? 'Sending your changes…'
        : 'Saved on this device: it is sent when the connection is back';
    }
    return hasSubmission ? 'Submitted: this is what counts for you' : 'Choose a level in each row you can rate';
  },

  // Buttons that cannot act now stay focusable (`aria-disabled`, not `disabled`): a disabled button
  // drops the keyboard's focus to <body>.
  button: function(action, cls, enabled, ...content) {
    return h('button', { type: 'button', class: `btn ${cls}` + (enabled ? '' : ' disabled'), 'data-action': action,
      'aria-disabled': enabled ? null : 'true' }, ...content);
  },

  render: function() {
    const focused = this.el.contains(document.activeElement) && document.activeElement.dataset.action;
    const total = this.matrix.rows.length;
    const hasSubmission = !_.isEmpty(this.submitted.attributes);
    const status = this.status(hasSubmission);
    replace(this.el,
      h('div', { class: 'container-xl actions-inner' },
        h('div', { class: 'progress-text' },
          h('strong', { 'data-stat': 'rated' }, `${this.rated()} of ${total}`), ' rated',
          h('span', { class: 'status', 'data-stat': 'status' }, status)),
        h('div', { class: 'buttons' },
          this.rated() < total ? this.button('next', 'btn-outline-secondary btn-next', true, 'Next', h('span', { class: 'wide' }, ' unrated')) : null,
          hasSubmission && !this.sending
            ? this.button('withdraw', 'btn-outline-danger', true, 'Withdraw', h('span', { class: 'wide' }, ' my answers')) : null,
          hasSubmission && this.edited() && !this.sending
            ? this.button('revert', 'btn-outline-secondary', true, 'Undo', h('span', { class: 'wide' }, ' changes')) : null,
          this.button('submit', 'btn-primary', !this.sending && this.rated() > 0 && this.dirty(),
            this.sending ? h('span', { class: 'spinner-border spinner-border-sm me-2', 'aria-hidden': 'true' }) : null,
            hasSubmission ? 'Resubmit' : 'Submit'))));
    if (focused) this.refocus(focused);
    return this;
  },

  // Focus on the bar's button for `action` when there is one, else Submit, if the focus was lost.
  refocus: function(action) {
    if (document.activeElement && document.activeElement !== document.body && document.contains(document.activeElement)) return;
    const el = (action && this.el.querySelector(`[data-action=${action}]`)) || this.el.querySelector('[data-action=submit]');
    if (el) el.focus();
  },

  enabled: (button) => button.getAttribute('aria-disabled') !== 'true',

  // The confirmation dialog, for `action` (`submit` or `withdraw`).
  ask: function(action, title, button, ...paragraphs) {
    this.asking = action;
    this.modalEl.querySelector('.modal-title').textContent = title;
    const confirm = this.modalEl.querySelector('[data-action=confirm]');
    confirm.textContent = button;
    confirm.className = `btn ${action === 'withdraw' ? 'btn-danger' : 'btn-primary'}`;
    replace(this.modalEl.querySelector('[data-role=body]'), paragraphs);
    this.modal.show();
  },

  confirmSubmit: function(e, button) {
    if (!this.enabled(button)) return;
    const n = this.rated();
    const total = this.matrix.rows.length;
    const replacing = !_.isEmpty(this.submitted.attributes);
    this.ask('submit', 'Submit your ratings?', 'Submit',
      h('p', null, `You rated ${n} of ${total} competencies.` + (n < total ? ' Rows you left empty are not counted.' : '')),
      this.room ? h('p', null, this.elsewhere() && this.placed.get('room')
        ? `They will count in room “${this.room}” instead of room “${this.placed.get('room')}”, and in everyone’s matrix.`
        : `They count in room “${this.room}” and in everyone’s matrix.`) : null,
      h('p', { class: 'mb-0 text-body-secondary' }, replacing
        ? 'Your earlier submission will be replaced; nobody is counted twice.'
        : 'Only the totals are shown to others, never your individual answers.'));
  },

  confirmWithdraw: function() {
    this.ask('withdraw', 'Withdraw your answers?', 'Withdraw',
      h('p', null, 'Your submission is deleted and no longer counted in anyone’s totals.'),
      h('p', { class: 'mb-0 text-body-secondary' }, 'You can rate and submit again at any time.'));
  },

  send: function() {
    const action = this.asking;
    this.modal.hide();
    const online = this.connection.state === 'online';
    this.sending = online && action;
    this.render();
    if (!online) this.notify('Saved on this device. It is sent when the connection is back.', 'secondary');
    const done = action === 'withdraw' ? 'Withdrawn. You are no longer counted.'
      : 'Submitted. Everyone’s totals now include your ratings.';
    (action === 'withdraw' ? this.withdraw() : this.submit()).then(() => {
      this.sending = false;
      this.render();
      this.notify(done, 'success');
    }, (err) => {
      this.sending = false;
      this.render();
      this.notify(`Could not ${action}: ${(err && err.message) || 'unknown error'}`, 'danger');
    });
  },

  next: function() {
    this.nextUnrated();
  },

  revert: function() {
    this.selection.clear({ silent: true });
    this.selection.set(this.submitted.attributes);
    this.selection.trigger('change', this.selection);
  },

  notify: function(text, kind) {
    this.toastEl.className = `toast align-items-center border-0 text-bg-${kind}`;
    replace(this.toastEl.querySelector('[data-role=text]'), text);
    this.toast.show();
  },
});
