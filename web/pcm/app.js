// The live Programmer Competency Matrix
// =====================================
//
// People rate themselves on each competency, submit, and watch everyone's aggregate change as it
// happens. All state lives on the rtsync server:
//
// * the collection `pcm` (per user: one document per person, readable and writable only by its owner)
//   holds each person's submission, `{row id: level id}`; `mine` lists just the person's own one;
// * its tally, `tally:pcm`, is the live count of every level of every row, and `total`, the number of
//   people who submitted;
// * the channel `pcm-presence` tells who has the page open.
//
// The page keeps two small Backbone models: `selection`, what the person has chosen on screen, and
// `submitted`, what the server holds for them. The two are equal until the person changes something;
// "Submit" writes the selection. Views only listen to models (matrix-view.js, views.js).

import $ from 'jquery';
import _ from 'underscore';
import Backbone from 'backbone';
import RTSync from '../lib/rtsync.js';
import { MatrixView } from './matrix-view.js';
import { ActionsView, StatusView, SummaryView } from './views.js';
import { h, replace } from './dom.js';

Backbone.$ = $;

// The person's submission, and the collection of the person's own documents (at most one).
const Submission = RTSync.Model.extend({});
const Submissions = RTSync.Collection.extend({ model: Submission, collectionName: 'pcm' });

// The level attributes of a document: everything except the server's own fields.
const levelsOf = (attrs) => _.omit(attrs || {}, (v, k) => k === 'id' || k.charAt(0) === '_');

// Replaces a model's attributes with exactly `attrs` (Backbone's `set` only adds and changes).
function setExactly(model, attrs, keep) {
  for (const key of _.keys(model.attributes)) if (!_.has(attrs, key) && !(keep && keep(key))) model.unset(key);
  model.set(attrs);
}

async function loadMatrix() {
  const res = await fetch('/pcm/matrix.json', { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`the matrix could not be loaded (HTTP ${res.status})`);
  return res.json();
}

function showError(container, message) {
  replace(container, h('div', { class: 'alert alert-danger', role: 'alert' }, message));
}

// The app shell works offline (web/public/sw.js); the page works without it too (an old browser, or a
// registration the browser refused).
function keepShell() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js').catch((e) => console.warn('service worker:', e.message));
}

async function main() {
  keepShell();
  const connection = RTSync.connect();
  new StatusView({ el: '#connection', model: connection }).render();

  const container = document.getElementById('matrix');
  let matrix;
  try {
    matrix = await loadMatrix();
  } catch (e) {
    showError(container, `Sorry, ${e.message}. Reload the page to try again.`);
    return;
  }

  const tally = new RTSync.Tally(null, { collectionName: 'pcm' });
  const mine = new Submissions();
  const presence = connection.channel('pcm-presence', { presence: true });
  const selection = new Backbone.Model();
  const submitted = new Backbone.Model();

  // What the server holds for the person becomes `submitted`; the on-screen selection follows it
  // unless the person has unsubmitted changes (another tab of theirs may have submitted).
  const syncSubmitted = () => {
    const doc = mine.first();
    const next = levelsOf(doc && doc.synced());
    const followed = _.isEqual(selection.attributes, submitted.attributes);
    setExactly(submitted, next);
    if (followed) setExactly(selection, next);
  };
  mine.on('add remove reset sync change', syncSubmitted);

  // Submitting writes the selection into the person's document: an update (with its version) when
  // there is one, a create otherwise. A conflict (another tab submitted meanwhile) is settled by the
  // library's default: the on-screen choices are applied on top of the newer version.
  const submit = () => {
    const levels = _.clone(selection.attributes);
    let doc = mine.first();
    if (!doc) {
      doc = new Submission(null, { collection: mine });
      mine.add(doc);
    }
    setExactly(doc, levels, (key) => key === 'id' || key.charAt(0) === '_');
    return doc.save().then(syncSubmitted);
  };

  const grid = new MatrixView({ matrix, selection, submitted, tally });
  replace(container, grid.render().el);
  new SummaryView({ el: '#summary', model: tally, presence }).render();
  new ActionsView({
    el: '#actions', matrix, selection, submitted, submit,
    modal: document.getElementById('confirm'),
    toast: document.getElementById('toast'),
  }).render();

  // Everything loads over the one socket; the page is "ready" once the first answers are in.
  tally.on('error', (model, err) => console.warn('tally:', err.message));
  await Promise.all([tally.fetch(), mine.fetch(), presence.subscribe()]).catch((e) => {
    showError(document.getElementById('summary'), `Could not load the live data: ${e.message}`);
  });
  syncSubmitted();
  document.body.dataset.ready = 'true';
}

main();
