// The PCM app's shell offline (web/public/sw.js), in headless Chromium: once the page has been open, it
// opens again with no network, from the service worker's cache: the matrix is drawn, the connection
// indicator says it is not connected, and nothing says "live". The service worker answers only for the
// shell's paths.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { browserSuite } from './lib/browser.mjs';


let browser;
let server;
browserSuite((env) => ({ server, browser } = env));

test('opened with no network, the page shows the matrix from the service worker and says it is offline', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('html[data-connection="online"]');
  assert.equal(await page.locator('.navbar-brand .tag').evaluate((el) => getComputedStyle(el).visibility), 'visible');
  // The worker is installed and controls the page once it has claimed it.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);

  await context.setOffline(true);
  await page.reload();
  await page.waitForSelector('table.pcm-grid tbody tr[role="row"]');
  const rows = await page.locator('table.pcm-grid tbody tr.group-row').count();
  assert.ok(rows > 0, 'the matrix is drawn');
  await page.waitForSelector('html:not([data-connection="online"])');
  assert.equal(await page.locator('.navbar-brand .tag').evaluate((el) => getComputedStyle(el).visibility), 'hidden',
               'nothing says live');
  assert.doesNotMatch(await page.locator('#connection').innerText(), /Live/);

  // Only the shell is the worker's: another path of the origin fails offline as it would without it.
  const other = await page.evaluate(() => fetch('/healthz').then(() => 'answered', () => 'failed'));
  assert.equal(other, 'failed');

  // Back online, the page reconnects by itself.
  await context.setOffline(false);
  await page.waitForSelector('html[data-connection="online"]', { timeout: 30_000 });
  await context.close();
});
