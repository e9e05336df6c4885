// The PCM presenter view (/results) end to end: the real server, headless Chromium. People submit from
// Node (known counts); the page shows them per competency with percentages and medians, without a flash
// on load; it follows another submission live; its trend has a point per kept publication of the tally
// channel; "Download CSV" gives exactly the expected lines and nobody's user id; axe-core finds nothing
// at projector and phone size; it fits 1920×1080, and neither 1280×720 nor a phone scrolls sideways.
// Rooms (`?room=NAME`) run against a second server whose config groups the pcm tally by `room`.
// No console errors anywhere (the page runs under a strict CSP, so a violation would be one).
//
// RTSYNC_DOCS_IMG=1 also writes docs/img/pcm-results.png (a fuller board, for docs/pcm.md).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, WEB_ROOT, startServer, tmpDir } from '../integration/lib/server.mjs';
import { RTSync, connect, killFixedServers, newIdentity, startServerAt } from '../js/lib/harness.mjs';
import { browserSuite } from './lib/browser.mjs';
import { percents } from '../../web/pcm/stats.js';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const PROJECTOR = { width: 1920, height: 1080 };
const SMALL_PROJECTOR = { width: 1280, height: 720 };
const PHONE = { width: 390, height: 844 };
const MATRIX = JSON.parse(fs.readFileSync(path.join(WEB_ROOT, 'pcm/matrix.json'), 'utf8'));

let browser;
let server;
browserSuite((env) => ({ server, browser } = env), { cleanup: killFixedServers });

// People submitting from Node, each with an identity of their own; returns their user ids.
async function submitFromNode(to, docs) {
  const users = [];
  for (const data of docs) {
    const node = await connect(to, { cookie: await newIdentity(to) });
    const coll = new (RTSync.Collection.extend({ collectionName: 'pcm' }))(null, { connection: node });
    await coll.fetch();
    await coll.create(data)._writing;
    users.push(node.user);
    node.close();
  }
  return users;
}

// The kept publications of a tally channel, read from Node.
async function history(from, ch) {
  const node = await connect(from);
  const reply = await node.channel(ch).history({ limit: 1000 });
  node.close();
  return reply.pubs;
}

// The presenter view in a fresh browser context, recording console errors, and from the first byte on,
// every text the total showed and whether anything flashed before the page was ready.
async function openResults(at, query = '', { viewport = PROJECTOR, ...options } = {}) {
  const context = await browser.newContext({ viewport, reducedMotion: 'no-preference', ...options });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => page.errors.push(`exception: ${err.message}`));
  await page.addInitScript(() => {
    const seen = window.seenOnLoad = { totals: [], flashes: 0, firstCards: null };
    new MutationObserver(() => {
      if (document.body && document.body.dataset.ready) return;
      const total = document.getElementById('total');
      if (total && total.textContent !== seen.totals.at(-1)) seen.totals.push(total.textContent);
      seen.flashes += document.querySelectorAll('.flash').length;
      const card = document.querySelector('.comp');
      if (card && !seen.firstCards) seen.firstCards = card.querySelector('.cols').textContent;
    }).observe(document, { childList: true, subtree: true, characterData: true, attributes: true });
  });
  await page.goto(`${at.url}/results${query}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('html[data-connection="online"]');
  return page;
}

const stat = (page, name) => page.locator(`[data-stat="${name}"]`).textContent();

// What a card shows: per level its count and percentage, which levels are marked as the median, the
// median's text and the number who rated it.
const card = (page, row) => page.locator(`.comp[data-id="${row}"]`).evaluate((el) => ({
  counts: [...el.querySelectorAll('.col .count')].map((e) => Number(e.textContent)),
  shares: [...el.querySelectorAll('.col .pct')].map((e) => e.textContent),
  heights: [...el.querySelectorAll('.col .bar')].map((e) => Number(e.style.getPropertyValue('--share'))),
  medianCols: [...el.querySelectorAll('.col.median')].map((e) => Number(e.dataset.level)),
  median: el.querySelector('.foot .median').textContent,
  answers: el.querySelector('.foot .answers').textContent,
  flashing: [...el.querySelectorAll('.col.flash')].map((e) => Number(e.dataset.level)),
}));

// The counts of `docs` per row and level, and the CSV lines they give (csv.js, docs/pcm.md).
function expectedCsv(docs) {
  const lines = ['competency,group,level,count,percent'];
  for (const row of MATRIX.rows) {
    const counts = MATRIX.levels.map((level) => docs.filter((d) => d[row.id] === level.id).length);
    const shares = percents(counts);
    MATRIX.levels.forEach((level, i) => lines.push(`${row.name},${row.group},${level.id},${counts[i]},${shares[i]}`));
  }
  lines.push(`total,,,${docs.length},`);
  return lines;
}

async function downloadCsv(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  return { name: download.suggestedFilename(), text: fs.readFileSync(await download.path(), 'utf8') };
}

const noHorizontalScroll = (page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

describe('PCM presenter view', () => {
  const docs = [
    { data_structures: 2, algorithms: 1, years: 0 },
    { data_structures: 3, algorithms: 1 },
    { data_structures: 2, years: 3 },
  ];
  let users;
  let page;

  before(async () => {
    users = await submitFromNode(server, docs);
  });

  test('shows the counts submitted from Node per competency, with percentages and medians, without a flash on load', async () => {
    page = await openResults(server);
    assert.equal(await stat(page, 'total'), '3');
    assert.match(await page.locator('#total-label').textContent(), /people have submitted/);
    assert.equal(await page.title(), 'PCM results · live');
    assert.equal(await page.locator('#scope').textContent(), 'Everyone');
    assert.equal(await page.locator('#connection').textContent(), 'Live');

    assert.deepEqual(await card(page, 'data_structures'), {
      counts: [0, 0, 2, 1], shares: ['0%', '0%', '67%', '33%'], heights: [0, 0, 1, 0.5], medianCols: [2], median: 'median L2',
      answers: '3 rated', flashing: [],
    });
    // years: L0 and L3, an even count: the median is between L1 and L2, and its mark between them.
    const years = await card(page, 'years');
    assert.deepEqual(years.counts, [1, 0, 0, 1]);
    assert.deepEqual(years.medianCols, [1, 2]);
    assert.equal(years.median, 'median L1–L2');
    assert.equal(await page.locator('.comp[data-id="years"] .median-mark').evaluate((el) => el.style.getPropertyValue('--at')), '0.5');
    // Nobody rated security: zeros, no median.
    assert.deepEqual(await card(page, 'security'), {
      counts: [0, 0, 0, 0], shares: ['0%', '0%', '0%', '0%'], heights: [0, 0, 0, 0], medianCols: [], median: '',
      answers: 'No answers yet', flashing: [],
    });
    assert.equal(await page.locator('.comp').count(), MATRIX.rows.length);

    // From the first byte to ready: the total went from the placeholder to 3, never through 0, the
    // cards appeared with their counts, and nothing flashed.
    const seen = await page.evaluate(() => window.seenOnLoad);
    assert.deepEqual(seen.totals.filter((t) => t !== '–'), ['3']);
    assert.equal(seen.firstCards.replace(/\s+/g, ''), await page.locator('.comp[data-id="data_structures"] .cols').evaluate((el) => el.textContent.replace(/\s+/g, '')));
    assert.equal(seen.flashes, 0);
    assert.deepEqual(page.errors, []);
  });

  test('the trend has a point for every kept publication of tally:pcm', async () => {
    const pubs = await history(server, 'tally:pcm');
    assert.equal(pubs.length, docs.length, 'one commit, one tally publication, per submission');
    assert.equal(await page.locator('#trend-chart').getAttribute('data-points'), String(pubs.length));
    assert.equal(await page.locator('#trend-chart canvas').count(), 1, 'uPlot drew it');
    assert.match(await stat(page, 'trend'), /^3 people at .+, since /);
    assert.match(await page.locator('#trend-chart').getAttribute('aria-label'), /^People who submitted, over time: 3 people at /);
  });

  test('follows another submission live, without reloading: counts, the changed bars flash, one more trend point', async () => {
    await page.evaluate(() => { window.notReloaded = true; });
    const more = { data_structures: 0, security: 1 };
    const t0 = Date.now();
    users.push(...await submitFromNode(server, [more]));
    docs.push(more);
    await page.waitForFunction(() => document.getElementById('total').textContent === '4', null, { polling: 'raf' });
    console.log(`the presenter view updated ${Date.now() - t0} ms after the submission started`);
    const ds = await card(page, 'data_structures');
    assert.deepEqual(ds.counts, [1, 0, 2, 1]);
    assert.deepEqual(ds.shares, ['25%', '0%', '50%', '25%']);
    assert.deepEqual(ds.flashing, [0], 'only the bar whose count changed flashes');
    assert.equal(ds.median, 'median L2');
    const security = await card(page, 'security');
    assert.deepEqual(security.counts, [0, 1, 0, 0]);
    assert.equal(security.median, 'median L1');
    await page.waitForFunction(() => document.getElementById('trend-chart').dataset.points === '4');
    assert.match(await stat(page, 'trend'), /^4 people at /);
    assert.equal(await page.evaluate(() => window.notReloaded), true);
    assert.deepEqual(page.errors, []);
  });

  test('Download CSV: exactly the expected lines of aggregate counts, and no user id', async () => {
    const { name, text } = await downloadCsv(page);
    assert.match(name, /^pcm-results-\d{4}-\d\d-\d\d-\d{4}\.csv$/);
    assert.ok(text.endsWith('\r\n'));
    const lines = text.slice(0, -2).split('\r\n');
    assert.equal(lines.length, 1 + MATRIX.rows.length * MATRIX.levels.length + 1);
    assert.deepEqual(lines, expectedCsv(docs));
    assert.equal(users.length, docs.length);
    for (const user of users) assert.ok(!text.includes(user), `the CSV does not name user ${user}`);
    assert.deepEqual(page.errors, []);
  });

  test('fits a 1920×1080 projector: every competency and the trend on one screen, nothing sideways', async () => {
    const box = await page.evaluate(() => {
      const bottom = (el) => el.getBoundingClientRect().bottom;
      return {
        cards: Math.max(...[...document.querySelectorAll('.comp')].map(bottom)),
        trend: bottom(document.getElementById('trend')),
        height: window.innerHeight,
      };
    });
    assert.ok(box.cards <= box.height && box.trend <= box.height, JSON.stringify(box));
    assert.equal(await noHorizontalScroll(page), true);
    if (process.env.RTSYNC_DOCS_IMG !== '1') return;
    // A fuller board for the docs: 18 more people, each rating most rows.
    const crowd = Array.from({ length: 18 }, (_, i) => Object.fromEntries(MATRIX.rows
      .filter((row, j) => (i + j) % 5)
      .map((row, j) => [row.id, Math.min(3, Math.floor(((i * 7 + j * 3) % 10) / 2.5))])));
    await submitFromNode(server, crowd);
    docs.push(...crowd);
    await page.waitForFunction((n) => document.getElementById('total').textContent === String(n), docs.length);
    await page.waitForTimeout(1800); // the flashes fade
    fs.mkdirSync(path.join(REPO_ROOT, 'docs/img'), { recursive: true });
    await page.screenshot({ path: path.join(REPO_ROOT, 'docs/img/pcm-results.png') });
  });

  test('a 1280×720 projector and a phone do not scroll sideways', async () => {
    for (const viewport of [SMALL_PROJECTOR, PHONE]) {
      const small = await openResults(server, '', { viewport });
      assert.equal(await noHorizontalScroll(small), true, `${viewport.width}×${viewport.height}`);
      assert.deepEqual(small.errors, []);
      await small.context().close();
    }
  });

  for (const [name, viewport] of [['1920×1080', PROJECTOR], ['390×844', PHONE]]) {
    test(`axe-core finds no violations (${name})`, async () => {
      // axe is injected as a script, which the page's CSP would refuse: this context bypasses it.
      const checked = await openResults(server, '', { viewport, bypassCSP: true });
      await checked.addScriptTag({ path: AXE });
      const result = await checked.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
      const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.length} × ${v.nodes[0].target.join(' ')}`);
      assert.deepEqual(found, []);
      await checked.context().close();
    });
  }

  after(() => page?.context().close());
});

// Rooms need the pcm collection's tally grouped by `room`; the default config declares it without
// (for now), so this server declares it itself: the same rows and levels, `tally_group = "room"`.
describe('PCM presenter view of a room', () => {
  let rooms;
  const levels = MATRIX.levels.map((l) => l.id).join(', ');
  const config = path.join(tmpDir('rtsync-conf-'), 'rtsync.toml');
  fs.writeFileSync(config, ['[collections.pcm]', 'per_user = true', 'read = "owner"', 'write = "owner"', 'tally_group = "room"',
    `tally = { ${MATRIX.rows.map((row) => `${row.id} = [${levels}]`).join(', ')} }`, ''].join('\n'));

  before(async () => {
    rooms = await startServer({ web: WEB_ROOT, args: ['--config', config] });
    await submitFromNode(rooms, [
      { room: 'team-a', algorithms: 3 }, { room: 'team-a', algorithms: 2 }, { room: 'team-b', algorithms: 0 }, { algorithms: 1 },
    ]);
  });

  test('?room=NAME shows that room only, titled with its name, live, with its own trend and CSV', async () => {
    const page = await openResults(rooms, '?room=team-a');
    assert.equal(await page.locator('#scope').textContent(), 'Room team-a');
    assert.equal(await page.title(), 'Room team-a · PCM results · live');
    assert.equal(await stat(page, 'total'), '2');
    assert.deepEqual((await card(page, 'algorithms')).counts, [0, 0, 1, 1]);
    assert.equal(await page.locator('#trend-chart').getAttribute('data-points'), String((await history(rooms, 'tally:pcm:team-a')).length));
    assert.equal(await page.locator('#trend-chart').getAttribute('data-points'), '2');

    // Another room's submission changes nothing here; this room's does, live.
    await submitFromNode(rooms, [{ room: 'team-b', algorithms: 3 }, { room: 'team-a', algorithms: 0 }]);
    await page.waitForFunction(() => document.getElementById('total').textContent === '3');
    assert.deepEqual((await card(page, 'algorithms')).counts, [1, 0, 1, 1]);
    await page.waitForFunction(() => document.getElementById('trend-chart').dataset.points === '3');

    const { name, text } = await downloadCsv(page);
    assert.match(name, /^pcm-results-team-a-\d{4}-\d\d-\d\d-\d{4}\.csv$/);
    const lines = text.trim().split('\r\n');
    assert.equal(lines.at(-1), 'total,,,3,');
    assert.deepEqual(lines.filter((l) => l.startsWith('Algorithms,')),
      // a third each: the point left over goes to the first of the equal remainders (stats.js, percents)
      ['Algorithms,Computer science,0,1,34', 'Algorithms,Computer science,1,0,0', 'Algorithms,Computer science,2,1,33', 'Algorithms,Computer science,3,1,33']);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('without room, everyone: every room and no room', async () => {
    const page = await openResults(rooms);
    assert.equal(await stat(page, 'total'), '6');
    assert.deepEqual((await card(page, 'algorithms')).counts, [2, 1, 1, 2]);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('a malformed room name is refused on the page, with a way back', async () => {
    const context = await browser.newContext({ viewport: PROJECTOR });
    const page = await context.newPage();
    const errors = [];
    page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
    await page.goto(`${rooms.url}/results?room=${encodeURIComponent('no spaces allowed')}`);
    await page.waitForSelector('[role="alert"]');
    assert.match(await page.locator('[role="alert"]').textContent(), /is not a room name/);
    assert.equal(await page.locator('[role="alert"] a').getAttribute('href'), '/results');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('the server restarts: "Offline", not live and muted; then live again by itself, following', async () => {
    const page = await openResults(rooms, '?room=team-a');
    await rooms.stop();
    await page.waitForSelector('html[data-connection="offline"]');
    assert.match(await page.locator('#connection').textContent(), /^Offline · retrying/);
    assert.match(await stat(page, 'stale'), /^not live since \d\d:\d\d/);
    assert.equal(await page.evaluate(() => document.body.dataset.counts), 'stale');
    assert.equal(await page.locator('#announce').textContent(), 'Connection lost: the counts are not live.');

    rooms = await startServerAt({ port: rooms.port, dataDir: rooms.dataDir, config });
    await page.waitForSelector('html[data-connection="online"]', { timeout: 20_000 });
    assert.equal(await stat(page, 'stale'), '');
    assert.equal(await page.evaluate(() => document.body.dataset.counts), 'live');
    await submitFromNode(rooms, [{ room: 'team-a', algorithms: 1 }]);
    await page.waitForFunction(() => document.getElementById('total').textContent === '4');
    await page.waitForFunction(() => document.getElementById('trend-chart').dataset.points === '4');
    // While the server was down, the browser itself logs the failed WebSocket attempts; nothing else.
    assert.deepEqual(page.errors.filter((e) => !/WebSocket connection to .* failed/.test(e)), []);
    await page.context().close();
  });
});

