// The presenter view of the live Programmer Competency Matrix, at /results
// =======================================================================
//
// For a projector: everyone's aggregate (or one room's, `/results?room=NAME`) as one large chart per
// competency, the number of people, whether the counts are live, how the total moved over time, and a
// CSV of the counts. It only reads: the tally `tally:pcm` (a room's: the group `NAME`, `tally:pcm:NAME`)
// and that channel's history. Nobody's answers are ever on this page; the tally holds counts only.
//
// It is light on purpose: the client library with Backbone and Underscore (models and events only) and
// uPlot for the trend; no jQuery, no Bootstrap, no offline cache (a presenter is online, and shows what
// the server holds now).

import RTSync from '../lib/rtsync.js';
import { CompetencyCharts } from './charts.js';
import { TrendChart } from './trend.js';
import { showConnection } from '../pcm/status.js';
import { loadMatrix } from '../pcm/matrix.js';
import { roomOf } from '../pcm/room.js';
import { csvFileName, resultsCsv } from './csv.js';
import { levelLabel } from '../pcm/stats.js';
import { h, replace } from '../pcm/dom.js';

const $ = (id) => document.getElementById(id);

function fail(message) {
  replace($('board'), h('p', { class: 'error', role: 'alert' }, message, ' ', h('a', { href: '/results' }, 'Show everyone’s results')));
}

// "Download CSV": the file is made here from the tally on screen (csv.js) and handed over as a Blob.
function download(matrix, tally, room) {
  const blob = new Blob([resultsCsv(matrix, tally)], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: csvFileName(room, new Date()), hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000); // a browser may read it after the click returns
}

// The headline: the number of people, and, while the counts are not live, since when they may be behind
// (`body[data-counts=stale]` mutes the charts).
function showTotal(tally, connection) {
  let lostAt = null;
  const render = () => {
    const total = tally.get('total') || 0;
    $('total').textContent = String(total);
    $('total-label').textContent = total === 1 ? 'person has submitted' : 'people have submitted';
    const live = connection.state === 'online';
    if (live) lostAt = null;
    else lostAt = lostAt || Date.now();
    $('stale').textContent = live ? '' : `not live since ${new Date(lostAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
    document.body.dataset.counts = live ? 'live' : 'stale';
  };
  tally.on('change:total', render);
  connection.on('online offline', render);
  render();
}

async function main() {
  const { room, error } = roomOf(location.search);
  const connection = RTSync.connect();
  showConnection($('connection'), connection, $('announce'));
  if (error) {
    fail(error);
    return;
  }
  if (room) {
    $('scope').textContent = `Room ${room}`;
    document.title = `Room ${room} · PCM results · live`;
  }

  let matrix;
  try {
    matrix = await loadMatrix();
  } catch (e) {
    fail(`Sorry, ${e.message}.`);
    return;
  }
  replace($('levels'), matrix.levels.map((level) => h('li', null, h('strong', null, levelLabel(level.id)), ' ', level.name)));

  const tally = new RTSync.Tally(null, { collectionName: 'pcm', group: room || undefined });
  const channel = connection.channel(`tally:pcm${room ? `:${room}` : ''}`);
  const trend = new TrendChart({ el: $('trend-chart'), caption: $('trend-caption'), channel });
  tally.on('error', (model, err) => console.warn('tally:', err.message));
  try {
    await tally.fetch();
  } catch (e) {
    fail(`Could not load the results: ${e.message}.`);
    return;
  }
  showTotal(tally, connection);
  new CompetencyCharts({ el: $('board'), matrix, tally }).render();
  const button = $('download');
  button.addEventListener('click', () => download(matrix, tally, room));
  button.disabled = false;
  await trend.load().catch((e) => { $('trend-caption').textContent = `The trend could not be loaded: ${e.message}`; });
  document.body.dataset.ready = 'true';
}

main();
