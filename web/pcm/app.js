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
// In a room (`/?room=NAME`, room-view.js) the person's document carries `room: NAME`, the counts are the
// room's (`tally:pcm:NAME`, a group of the tally) and presence is the room's (`pcm-presence.NAME`);
// everyone's matrix still counts them. A person's answers count in one room at a time.
//
// The page keeps two small Backbone models: `selection`, what the person has chosen on screen, and
// `submitted`, their submission as this browser knows it (the server's, or one saved on this device and
// not sent yet). The two are equal until the person changes something; "Submit" writes the rows they
// changed. Views only listen to models (matrix-view.js, views.js).
//
// It works offline (rtsync-offline.js): the last submission and counts come from IndexedDB at once, a
// submission made offline waits in the durable outbox and is counted once when the network is back,
// and the tabs of one browser share both. This keeps a person's answers on the device, which suits a
// page about one's own skills on one's own computer; an app for shared computers would not call it.

import _ from 'underscore';
import Backbone from 'backbone';
import RTSync from '../lib/rtsync-offline.js';
import { MatrixView } from './matrix-view.js';
import { ActionsView, SummaryView } from './views.js';
import { RoomView } from './room-view.js';
import { roomOf } from './room.js';
import { loadMatrix } from './matrix.js';
import { showConnection } from './status.js';
import { h, replace } from './dom.js';

// The person's submission, and the collection of the person's own documents (at most one).
const Submission = RTSync.Model.extend({});
const Submissions = RTSync.Collection.extend({ model: Submission, collectionName: 'pcm' });

// The level attributes of a document: everything except its room and the server's own fields (and the
// rows a patch cleared, `null` until the server's answer drops them).
const levelsOf = (attrs) => _.omit(attrs || {}, (v, k) => v == null || k === 'id' || k === 'room' || k.charAt(0) === '_');

// The rows where `next` differs from `base`: `{row: level}`, `null` for a row cleared.
function changedRows(next, base) {
  const changed = {};
  for (const key of _.union(_.keys(next), _.keys(base))) {
    if (next[key] !== base[key]) changed[key] = _.has(next, key) ? next[key] : null;
  }
  return changed;
}

// Replaces a model's attributes with exactly `attrs` (Backbone's `set` only adds and changes).
function setExactly(model, attrs, keep) {
  for (const key of _.keys(model.attributes)) if (!_.has(attrs, key) && !(keep && keep(key))) model.unset(key);
  model.set(attrs);
}

function showError(container, message) {
  replace(container, h('div', { class: 'alert alert-danger', role: 'alert' }, message));
}

// The app shell works offline (the service worker, web/pcm/sw.js); the page works without it too (an old browser, or a
// registration the browser refused).
function keepShell() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js').catch((e) => console.warn('service worker:', e.message));
}

async function main() {
  keepShell();
  const connection = RTSync.connect();
  const offline = RTSync.offline(connection);
  showConnection(document.getElementById('connection'), connection, document.getElementById('announce'), {
    lost: 'Connection lost: the counts are not live; your changes are kept and sent when it is back.',
    retryClass: 'btn btn-link btn-sm',
  });

  const container = document.getElementById('matrix');
  const { room, error } = roomOf(location.search);
  if (error) {
    showError(document.getElementById('room'), error);
    document.getElementById('room').append(h('a', { href: '/' }, 'Open everyone’s matrix'));
    replace(container);
    return;
  }
  new RoomView({ el: '#room', room }).render();
  let matrix;
  try {
    matrix = await loadMatrix();
  } catch (e) {
    showError(container, `Sorry, ${e.message}. Reload the page to try again.`);
    return;
  }

  const tally = new RTSync.Tally(null, { collectionName: 'pcm', group: room || undefined });
  const mine = new Submissions();
  const presence = connection.channel(room ? `pcm-presence.${room}` : 'pcm-presence', { presence: true });
  const selection = new Backbone.Model();
  const submitted = new Backbone.Model();
  const placed = new Backbone.Model({ room: null }); // the room the submission counts in

  // The person's document becomes `submitted`. The on-screen selection follows it, keeping the rows the
  // person changed and has not submitted: another tab of theirs may have submitted other rows meanwhile.
  const syncSubmitted = () => {
    const doc = mine.first();
    const edits = changedRows(selection.attributes, submitted.attributes);
    placed.set('room', (doc && doc.get('room')) || null);
    setExactly(submitted, levelsOf(doc && doc.attributes));
    setExactly(selection, levelsOf(_.extend({}, submitted.attributes, edits)));
  };
  mine.on('add remove reset sync change', syncSubmitted);

  // The id of the person's document is their user id (`per_user`): known once the server has said
  // hello, on this page or, offline, on an earlier one (the outbox keeps it).
  const ownId = () => offline.ready.then(() => connection.user || offline.meta.user
    || new Promise((resolve) => connection.once('online', () => resolve(connection.user))));

  // Submitting writes only the rows the person changed, as a patch of their document (two tabs that
  // changed different rows both count), or the whole selection when there is no document yet (an
  // `update`, which creates it); in a room, also the room when the answers counted elsewhere (they
  // move here). Everyone's matrix leaves the room as it is. The write goes to the outbox: stored on the
  // device first, sent when the connection is online, applied once however often it is sent.
  const submit = () => {
    const doc = mine.first();
    const move = room && placed.get('room') !== room ? { room } : {};
    if (doc) return doc.save(_.extend(changedRows(selection.attributes, submitted.attributes), move), { patch: true });
    const levels = _.extend(_.clone(selection.attributes), move);
    return ownId().then((id) => mine.add({ id }).save(levels));
  };

  // Withdrawing deletes the document: the person is counted nowhere, and may submit again.
  const withdraw = () => mine.first().destroy();

  const grid = new MatrixView({ matrix, selection, submitted, tally });
  replace(container, grid.render().el);
  new SummaryView({ el: '#summary', model: tally, presence, connection, room }).render();
  new ActionsView({
    el: '#actions', matrix, selection, submitted, placed, room, submit, withdraw, connection,
    nextUnrated: () => grid.nextUnrated(),
    modal: document.getElementById('confirm'),
    toast: document.getElementById('toast'),
  }).render();

  // Everything loads over the one socket, or from the cache at once; the page is "ready" once the
  // counts and the person's submission are in. Who is here is only known online: it does not wait.
  tally.on('error', (model, err) => console.warn('tally:', err.message));
  presence.subscribe().catch((e) => console.warn('presence:', e.message));
  await Promise.all([tally.fetch(), mine.fetch()]).catch((e) => {
    showError(document.getElementById('summary'), `Could not load the live data: ${e.message}`);
  });
  syncSubmitted();
  document.body.dataset.ready = 'true';
}

main();
