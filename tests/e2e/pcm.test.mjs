// The PCM app end to end: the real server, headless Chromium (/usr/bin/chromium through playwright-core),
// two independent browser contexts (two identities). A submits; B sees the counts and the heatmap change
// within a second without reloading; A reloads and gets its submission back; A resubmits and nothing is
// counted twice; B submits with the keyboard only; the page survives a server restart and catches up.
// No console errors along the way (the page runs under a strict CSP, so a violation would be one).
//
// Screenshots go to $RTSYNC_ARTIFACTS (ctest sets it to build/test/screenshots) or build/test/screenshots.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, WEB_ROOT, cleanupAll, startServer } from '../integration/lib/server.mjs';
import { RTSync, connect, killFixedServers, newIdentity, startServerAt } from '../js/lib/harness.mjs';
import { ensureAssets, launch } from './lib/browser.mjs';

const SHOTS = process.env.RTSYNC_ARTIFACTS || path.join(REPO_ROOT, 'build/test/screenshots');
const DESKTOP = { width: 1360, height: 900 };

let browser;
let server;

before(async () => {
  ensureAssets();
  fs.mkdirSync(SHOTS, { recursive: true });
  server = await startServer({ web: WEB_ROOT });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await killFixedServers();
  await cleanupAll();
});

// A page in its own browser context (its own cookies: its own rtsync identity), recording console
// errors and uncaught exceptions.
async function openPerson(name, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, reducedMotion: 'no-preference' });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(`${name}: console: ${msg.text()}`); });
  page.on('pageerror', (err) => page.errors.push(`${name}: exception: ${err.message}`));
  page.person = name;
  await page.goto(`${server.url}/`);
  await ready(page);
  return page;
}

async function ready(page) {
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('html[data-connection="online"]');
}

const top = (page) => page.evaluate(() => window.scrollTo(0, 0));
const shot = (page, name, options = {}) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), ...options });
const cell = (page, row, level) => page.locator(`tr[data-id="${row}"] td.cell[data-level="${level}"]`);
const stat = (page, name) => page.locator(`[data-stat="${name}"]`).textContent();

// What a page shows for one cell: its count label and its heat (the --share variable).
const cellState = (page, row, level) => cell(page, row, level).evaluate((td) => ({
  count: td.querySelector('.count').textContent,
  share: td.style.getPropertyValue('--share'),
  flash: td.classList.contains('flash'),
  chosen: td.classList.contains('chosen'),
  submitted: td.classList.contains('submitted'),
  inRange: td.classList.contains('in-range'),
}));

// The sum of the counts the page shows in one row.
const rowSum = (page, row) => page.locator(`tr[data-id="${row}"] td.cell .count`).evaluateAll(
  (els) => els.reduce((sum, el) => sum + Number(el.textContent.split(' ')[0]), 0));

async function submitWithMouse(page) {
  await page.click('[data-action="submit"]');
  await page.waitForSelector('#confirm.show');
  await page.locator('#confirm [data-action="confirm"]').click();
}

describe('Programmer Competency Matrix in the browser', () => {
  let a;
  let b;
  const first = { data_structures: 2, algorithms: 1, concurrency: 3, version_control: 2, debugging: 1, years: 0 };

  test('A chooses levels: the cells up to each choice are shaded', async () => {
    a = await openPerson('A');
    b = await openPerson('B');
    assert.equal(await stat(a, 'submitted'), '0');
    for (const [row, level] of Object.entries(first)) await cell(a, row, level).click();
    for (const [row, level] of Object.entries(first)) {
      for (let l = 0; l <= 3; l++) {
        const s = await cellState(a, row, l);
        assert.equal(s.inRange, l <= level, `${row}/${l} shaded up to ${level}`);
        assert.equal(s.chosen, l === level);
      }
    }
    // The row name clears the row.
    await cell(a, 'security', 3).click();
    await a.locator('tr[data-id="security"] th.rowname').click();
    assert.equal((await cellState(a, 'security', 3)).chosen, false);
    assert.equal(await stat(a, 'rated'), `${Object.keys(first).length} of 26`);
    await top(a);
    await shot(a, 'a-choosing');
  });

  test('A submits; B sees the counts and the heatmap change live, without reloading', async () => {
    const initial = await cellState(b, 'concurrency', 3);
    assert.equal(initial.count, '0');
    await a.click('[data-action="submit"]');
    await a.waitForSelector('#confirm.show');
    await a.waitForFunction(() => document.activeElement.matches('#confirm [data-action="confirm"]'));
    await shot(a, 'a-confirm');
    const t0 = Date.now();
    await a.locator('#confirm [data-action="confirm"]').click();
    await b.waitForFunction(() => document.querySelector('[data-stat="submitted"]').textContent === '1', null,
      { polling: 'raf', timeout: 5000 });
    const elapsed = Date.now() - t0;
    const updated = await cellState(b, 'concurrency', 3);
    // The "within a second" of the issue is a speed target, so it is reported, not asserted: on a loaded
    // CI machine running the ASan build, a timed assertion would fail for reasons that are not bugs.
    // (Measured here: well under 100 ms on an idle machine.)
    console.log(`B updated ${elapsed} ms after A confirmed`);
    assert.equal(updated.count, '1 · 100%');
    assert.equal(updated.share, '1.000');
    assert.equal(updated.flash, true, 'the changed cell flashes');
    assert.equal((await cellState(b, 'concurrency', 2)).share, '0.000');
    await shot(b, 'b-live-update');
    await a.waitForSelector('.toast.show');
    await a.waitForSelector('.modal-backdrop', { state: 'detached' });
    await a.waitForTimeout(300); // the toast's fade-in
    assert.match(await stat(a, 'status'), /^Submitted/);
    await top(a);
    await shot(a, 'a-submitted');

    // The popover on hover: "k of N people, p%".
    await cell(b, 'data_structures', 2).hover();
    const popover = b.locator('.popover');
    await b.waitForSelector('.popover.show');
    await b.waitForTimeout(250); // the fade-in
    assert.equal(await popover.locator('.popover-body').textContent(), '1 of 1 person, 100%');
    await shot(b, 'b-popover');
    await b.mouse.move(5, 5);
  });

  test('A reloads and sees its own submission, marked; no cell flashes as if it had just changed', async () => {
    await a.reload();
    await ready(a);
    // The first tally is what is there, not a change (a flash lasts 1.6 s).
    assert.equal(await a.locator('td.flash').count(), 0, 'no cell flashes on load');
    for (const [row, level] of Object.entries(first)) {
      const s = await cellState(a, row, level);
      assert.equal(s.submitted, true, `${row}: level ${level} marked as submitted`);
      assert.equal(s.chosen, true, `${row}: level ${level} chosen again`);
    }
    assert.equal(await stat(a, 'rated'), `${Object.keys(first).length} of 26`);
    assert.match(await stat(a, 'status'), /^Submitted/);
    await shot(a, 'a-reloaded');
  });

  test('A resubmits other levels: the counts move, nothing is counted twice', async () => {
    const t0 = Date.now();
    await cell(a, 'algorithms', 3).click();
    await cell(a, 'years', 2).click();
    await a.locator('tr[data-id="debugging"] th.rowname').click(); // cleared: counted nowhere
    assert.match(await stat(a, 'status'), /not submitted/);
    await submitWithMouse(a);
    await b.waitForFunction(() => document.querySelector('tr[data-id="algorithms"] td.cell[data-level="3"] .count')
      .textContent.startsWith('1'), null, { polling: 'raf', timeout: 5000 });
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(await stat(b, 'submitted'), '1');
    assert.equal((await cellState(b, 'algorithms', 1)).count, '0 · 0%');
    assert.equal((await cellState(b, 'years', 2)).count, '1 · 100%');
    assert.equal(await rowSum(b, 'algorithms'), 1);
    assert.equal(await rowSum(b, 'years'), 1);
    assert.equal(await rowSum(b, 'debugging'), 0);
    assert.equal(await rowSum(b, 'data_structures'), 1);
  });

  test('B submits with the keyboard only', async () => {
    await b.bringToFront();
    // Tab into the grid: the skip link first, then the grid's one tab stop.
    for (let i = 0; i < 5; i++) {
      await b.keyboard.press('Tab');
      if (await b.evaluate(() => document.activeElement.matches('.pcm-grid [tabindex="0"]'))) break;
    }
    const focused = () => b.evaluate(() => {
      const el = document.activeElement;
      return { row: el.closest('tr').dataset.id, col: Number(el.dataset.col) };
    });
    assert.deepEqual(await focused(), { row: 'data_structures', col: 1 });
    await b.keyboard.press('ArrowRight');
    await b.keyboard.press('ArrowRight');
    await b.keyboard.press('Enter');          // data_structures: level 2 (column 3)
    await b.keyboard.press('ArrowDown');
    await b.keyboard.press('ArrowRight');
    await b.keyboard.press(' ');              // algorithms: level 3
    await b.keyboard.press('ArrowDown');
    await b.keyboard.press('Home');
    await b.keyboard.press('ArrowRight');
    await b.keyboard.press('Enter');          // systems_programming: level 0
    assert.deepEqual(await focused(), { row: 'systems_programming', col: 1 });
    const outline = await b.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.equal(outline, 'solid', 'the focused cell has a visible outline');
    await b.keyboard.press('ArrowUp');
    await shot(b, 'b-keyboard');
    assert.equal((await cellState(b, 'data_structures', 2)).chosen, true);
    assert.equal((await cellState(b, 'algorithms', 3)).chosen, true);
    assert.equal((await cellState(b, 'systems_programming', 0)).chosen, true);

    // Tab out of the grid to the Submit button, Enter, then Enter on the confirmation.
    for (let i = 0; i < 6; i++) {
      await b.keyboard.press('Tab');
      if (await b.evaluate(() => document.activeElement.matches('[data-action="submit"]'))) break;
    }
    assert.ok(await b.evaluate(() => document.activeElement.matches('[data-action="submit"]')), 'Submit reached by Tab');
    await b.keyboard.press('Enter');
    await b.waitForSelector('#confirm.show');
    await b.waitForFunction(() => document.activeElement.matches('#confirm [data-action="confirm"]'));
    await b.keyboard.press('Enter');
    await a.waitForFunction(() => document.querySelector('[data-stat="submitted"]').textContent === '2', null,
      { polling: 'raf', timeout: 5000 });
    assert.equal((await cellState(a, 'algorithms', 3)).count, '2 · 100%');
    assert.equal(await rowSum(a, 'data_structures'), 2);
    assert.equal(await rowSum(a, 'systems_programming'), 1);
    await top(a);
    await shot(a, 'a-after-b');
  });

  test('presence: "M here now" counts the open pages', async () => {
    await a.waitForFunction(() => document.querySelector('[data-stat="here"]').textContent === '2');
    const c = await openPerson('C');
    await a.waitForFunction(() => document.querySelector('[data-stat="here"]').textContent === '3');
    await c.context().close();
    await a.waitForFunction(() => document.querySelector('[data-stat="here"]').textContent === '2');
  });

  test('at phone width the matrix becomes a list of cards', async () => {
    const phone = await openPerson('phone', { width: 390, height: 844 });
    await cell(phone, 'data_structures', 1).click();
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scrolling (${width}px)`);
    await shot(phone, 'phone');
    await phone.locator('tr[data-id="algorithms"]').scrollIntoViewIfNeeded();
    await shot(phone, 'phone-cards');
    assert.deepEqual(phone.errors, []);
    await phone.context().close();
  });

  test('no console errors so far', () => {
    assert.deepEqual([...a.errors, ...b.errors], []);
  });

  test('after a server restart the page reconnects and catches up by itself', async () => {
    const { port, dataDir } = server;
    await server.stop();
    await a.waitForSelector('html[data-connection="offline"]');
    await top(a);
    await shot(a, 'a-offline', { clip: { x: 0, y: 0, width: DESKTOP.width, height: 300 } });
    const restarted = await startServerAt({ port, dataDir, web: WEB_ROOT });
    await a.waitForSelector('html[data-connection="online"]', { timeout: 20_000 });

    // Someone submits from Node while A only listens: A's totals follow.
    const node = await connect(restarted, { cookie: await newIdentity(restarted) });
    const theirs = new (RTSync.Collection.extend({ collectionName: 'pcm' }))(null, { connection: node });
    await theirs.fetch();
    await theirs.create({ algorithms: 0 })._writing;
    await a.waitForFunction(() => document.querySelector('[data-stat="submitted"]').textContent === '3', null,
      { polling: 'raf', timeout: 5000 });
    assert.equal((await cellState(a, 'algorithms', 0)).count, '1 · 33%');
    await shot(a, 'a-after-restart');
    node.close();
    // While the server was down, the browser itself logs the failed WebSocket attempts; nothing else.
    const unexpected = [...a.errors, ...b.errors].filter((e) => !/WebSocket connection to .* failed/.test(e));
    assert.deepEqual(unexpected, []);
    await restarted.stop();
  });
});
