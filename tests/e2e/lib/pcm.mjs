// What the PCM app's browser tests share: a person's page (console errors gathered), the cell and
// summary locators, a confirmed submission, people submitting from Node, and axe-core's findings.

import { createRequire } from 'node:module';
import { RTSync, connect, newIdentity } from '../../js/lib/harness.mjs';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
export const DESKTOP = { width: 1360, height: 900 };
export const PHONE = { width: 390, height: 844 };

export const cell = (page, row, level) => page.locator(`tr[data-id="${row}"] td.cell[data-level="${level}"]`);
export const stat = (page, name) => page.locator(`[data-stat="${name}"]`).textContent();

// A page of `context` at `path`, once the app is ready and live.
export async function open(server, context, path = '/') {
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(msg.text()); });
  page.on('pageerror', (err) => page.errors.push(err.message));
  await page.goto(`${server.url}${path}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('html[data-connection="online"]');
  return page;
}

// A new person (a browser context of their own) on `path`.
export const person = async (browser, server, { path, ...options } = {}) =>
  open(server, await browser.newContext({ viewport: DESKTOP, ...options }), path);

// Submit, confirm, and wait for the bar to say it is done.
export async function submit(page) {
  await page.click('[data-action="submit"]');
  await page.waitForSelector('#confirm.show');
  await page.locator('#confirm [data-action="confirm"]').click();
  await page.waitForSelector('.modal-backdrop', { state: 'detached' });
  await page.waitForFunction(() => document.querySelector('[data-stat="status"]').textContent.startsWith('Submitted'));
}

// Waits until the page's headline counts `n` submissions.
export const submittedIs = (page, n) => page.waitForFunction(
  (k) => document.querySelector('[data-stat="submitted"]').textContent === String(k), n);

// People submitting from Node, one document each, so that the counts have a known shape.
export async function submitFromNode(server, docs) {
  for (const data of docs) {
    const node = await connect(server, { cookie: await newIdentity(server) });
    const coll = new (RTSync.Collection.extend({ collectionName: 'pcm' }))(null, { connection: node });
    await coll.fetch();
    await coll.create(data)._writing;
    node.close();
  }
}

// axe-core's violations on the page, one line each ("id (impact): n × selector"). The page's context
// must bypass the CSP (`bypassCSP: true`), which would refuse the injected script.
export async function axeViolations(page) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.length} × ${v.nodes[0].target.join(' ')}`);
}

// What counts for the person, as their page shows it: the levels marked "yours", by row.
export const marked = (page) => page.locator('td.cell.submitted').evaluateAll(
  (tds) => Object.fromEntries(tds.map((td) => [td.closest('tr').dataset.id, Number(td.dataset.level)])));
