// The PCM app offline (issue 14), in headless Chromium against the real server: a submission made
// offline survives the tab's closing and is counted once when the network is back; a reload with no
// network shows the grid and the last counts from the cache, marked with their time; two tabs of one
// browser share the outbox (a submission in one shows in the other before the server has it, and it is
// sent once); a link that silently drops traffic is reported within 15 s and the page is live again
// right after it returns.
//
// Each test uses its own browser context: its own cookie (identity), IndexedDB and service worker.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sleep } from '../integration/lib/server.mjs';
import { silentProxy } from '../js/lib/harness.mjs';
import { browserSuite } from './lib/browser.mjs';


let browser;
let server;
browserSuite((env) => ({ server, browser } = env));

const cell = (page, row, level) => page.locator(`tr[data-id="${row}"] td.cell[data-level="${level}"]`);
const stat = (page, name) => page.locator(`[data-stat="${name}"]`).textContent();
const submitted = (page, row, level) => cell(page, row, level).evaluate((td) => td.classList.contains('submitted'));

// A page that records its console errors and the writes it sends on its WebSockets.
async function open(context, url = server.url) {
  const page = await context.newPage();
  page.errors = [];
  page.writes = [];
  page.on('console', (msg) => {
    // Chromium itself logs a WebSocket that could not connect while the network is down.
    if (msg.type() === 'error' && !/WebSocket connection to .* failed/.test(msg.text())) page.errors.push(msg.text());
  });
  page.on('pageerror', (err) => page.errors.push(err.message));
  page.on('websocket', (ws) => ws.on('framesent', ({ payload }) => {
    for (const line of String(payload).split('\n')) { // the library coalesces requests, one per line
      const request = JSON.parse(line);
      if (['create', 'update', 'patch', 'delete'].includes(request.op)) page.writes.push(request);
    }
  }));
  await page.goto(`${url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  return page;
}

const online = (page, timeout) => page.waitForSelector('html[data-connection="online"]', { timeout });
const notOnline = (page, timeout) => page.waitForSelector('html:not([data-connection="online"])', { timeout });
const total = (page) => stat(page, 'submitted').then(Number);

async function submit(page) {
  await page.click('[data-action="submit"]');
  await page.waitForSelector('#confirm.show');
  await page.locator('#confirm [data-action="confirm"]').click();
  await page.waitForSelector('.modal-backdrop', { state: 'detached' });
}

// The server's count, from a page of another person (a fresh context): what everyone else sees.
async function serverTotal() {
  const context = await browser.newContext();
  const page = await open(context);
  await online(page);
  const n = await total(page);
  await context.close();
  return n;
}

describe('the PCM app offline', () => {
  test('a submission made offline survives closing the tab and is counted once when the network is back', async () => {
    const before = await serverTotal();
    const context = await browser.newContext();
    const first = await open(context);
    await online(first);

    await context.setOffline(true);
    await notOnline(first);
    await cell(first, 'algorithms', 2).click();
    await cell(first, 'debugging', 1).click();
    await submit(first);
    // Saved on the device, said in words; no spinner that would turn forever.
    assert.match(await stat(first, 'status'), /^Saved on this device/);
    assert.equal(await first.locator('[data-action="submit"] .spinner-border').count(), 0);
    await first.waitForSelector('.toast.show');
    assert.match(await first.locator('#toast [data-role="text"]').textContent(), /Saved on this device/);
    assert.equal(await submitted(first, 'algorithms', 2), true, 'shown as the submission at once');
    assert.deepEqual(first.writes, [], 'nothing went out');
    await first.close();

    await context.setOffline(false);
    const second = await open(context);
    await online(second);
    await second.waitForFunction((n) => document.querySelector('[data-stat="submitted"]').textContent === String(n),
      before + 1, { timeout: 10_000 });
    await second.waitForFunction(() => document.querySelector('[data-stat="status"]').textContent.startsWith('Submitted'));
    assert.equal(await submitted(second, 'algorithms', 2), true);
    assert.equal(await submitted(second, 'debugging', 1), true);
    assert.equal(second.writes.length, 1, 'the stored submission was sent once');
    assert.equal(await serverTotal(), before + 1, 'counted once');
    assert.deepEqual(second.errors, []);
    await context.close();
  });

  test('reloaded with no network, the page shows the grid and the last counts from the cache, with their time', async () => {
    const context = await browser.newContext();
    const page = await open(context);
    await online(page);
    await cell(page, 'concurrency', 3).click();
    await submit(page);
    await page.waitForFunction(() => document.querySelector('[data-stat="status"]').textContent.startsWith('Submitted'));
    const counted = await total(page);
    const count = await cell(page, 'concurrency', 3).locator('.count').textContent();
    assert.equal(await page.evaluate(() => document.body.dataset.counts), 'live');
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await sleep(200); // the cache is written a moment after what it keeps arrives

    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await notOnline(page);
    assert.equal(await total(page), counted, 'the last total');
    assert.equal(await cell(page, 'concurrency', 3).locator('.count').textContent(), count, 'the last counts');
    assert.equal(await submitted(page, 'concurrency', 3), true, 'the person’s submission');
    assert.equal(await page.evaluate(() => document.body.dataset.counts), 'stale');
    assert.match(await stat(page, 'counts-at'), /counts as of \d{1,2}:\d{2}.*, not live/);
    assert.equal(await page.locator('.navbar-brand .tag').evaluate((el) => getComputedStyle(el).visibility), 'hidden');

    // Rated and submitted offline, then the network returns: counted, and the counts are live again.
    await cell(page, 'security', 1).click();
    await submit(page);
    assert.match(await stat(page, 'status'), /^Saved on this device/);
    await context.setOffline(false);
    await online(page, 20_000);
    await page.waitForFunction(() => document.querySelector('[data-stat="status"]').textContent.startsWith('Submitted'));
    await page.waitForFunction(() => document.body.dataset.counts === 'live');
    assert.equal(await stat(page, 'counts-at'), '');
    assert.equal(await cell(page, 'security', 1).locator('.count').textContent().then((t) => t.startsWith('1')), true);
    assert.equal(await total(page), counted, 'a resubmission: nobody is counted twice');
    assert.deepEqual(page.errors, []);
    await context.close();
  });

  test('two tabs: a submission in one shows in the other before the server has it, and is sent once', async () => {
    const before = await serverTotal();
    const context = await browser.newContext();
    const one = await open(context);
    const two = await open(context);
    await Promise.all([online(one), online(two)]);

    await context.setOffline(true); // the server cannot answer: what tab two shows came from tab one
    await Promise.all([notOnline(one), notOnline(two)]);
    await cell(one, 'automated_testing', 3).click();
    await submit(one);
    await two.waitForFunction(() => document.querySelector('tr[data-id="automated_testing"] td.cell[data-level="3"]')
      .classList.contains('submitted'), null, { timeout: 5000 });
    assert.match(await stat(two, 'status'), /^Saved on this device/);
    assert.equal(await two.locator('tr[data-id="automated_testing"] td.cell.chosen').getAttribute('data-level'), '3');

    await context.setOffline(false);
    await Promise.all([online(one, 20_000), online(two, 20_000)]);
    for (const page of [one, two]) {
      await page.waitForFunction((n) => document.querySelector('[data-stat="submitted"]').textContent === String(n),
        before + 1, { timeout: 10_000 });
      await page.waitForFunction(() => document.querySelector('[data-stat="status"]').textContent.startsWith('Submitted'));
    }
    await sleep(500); // time for a second send, were there one
    assert.equal(one.writes.length + two.writes.length, 1, 'exactly one tab sent it, once');
    assert.equal(await serverTotal(), before + 1);
    assert.deepEqual([...one.errors, ...two.errors], []);
    await context.close();
  });

  test('a link that drops traffic is reported within 15 s, and the page is live again right after it returns', async () => {
    const proxy = await silentProxy(Number(new URL(server.url).port));
    const context = await browser.newContext();
    const page = await open(context, proxy.httpUrl);
    await online(page);
    await page.locator('tr[data-id="algorithms"]').waitFor();

    proxy.silence();
    const silentAt = Date.now();
    await notOnline(page, 15_000); // the heartbeat's 6 s, then its probe's 5 s
    const noticed = Date.now() - silentAt;
    assert.doesNotMatch(await page.locator('#connection').innerText(), /Live/);
    await sleep(1000 + Math.random() * 2000); // the link returns at any moment of the retries

    proxy.resume();
    const resumedAt = Date.now();
    // By design, within one attempt's `retryTimeout` (750 ms) and a handshake; 1.5 s leaves room for a
    // loaded machine, as the library's own liveness test does.
    await online(page, 1500);
    console.log(`offline noticed after ${noticed} ms; online ${Date.now() - resumedAt} ms after the link returned`);
    assert.deepEqual(page.errors, []);
    await context.close();
    proxy.close();
  });
});
