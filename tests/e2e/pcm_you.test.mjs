// The person against everyone, in headless Chromium against the real server: each row says where the
// person's level sits among everyone's answers (below, the same, above), live; and on a phone, where the
// matrix is a long page of cards, "Next unrated" takes them to the next row they have not rated.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { browserSuite } from './lib/browser.mjs';
import * as pcm from './lib/pcm.mjs';
import { PHONE, cell, submittedIs } from './lib/pcm.mjs';

let browser;
let server;
browserSuite((env) => ({ server, browser } = env));

const person = (options) => pcm.person(browser, server, options);
const standing = (page, row) => page.locator(`tr[data-id="${row}"] [data-stat="standing"]`).textContent();

describe('PCM: you against everyone', () => {
  test('each row says where your level sits among everyone\'s answers, live', async () => {
    // algorithms: L0, L1, L1, L2, L3, L3, L3 (7 answers).
    await pcm.submitFromNode(server, [0, 1, 1, 2, 3, 3, 3].map((level) => ({ algorithms: level })));
    const page = await person();
    assert.equal(await standing(page, 'algorithms'), '', 'nothing before a level is chosen');
    await cell(page, 'algorithms', 2).click();
    // Below L2: 3 of 7 (42.9%), the same: 1 (14.3%), above: 3 (42.9%); largest remainder: 43 + 14 + 43.
    assert.equal(await standing(page, 'algorithms'), '43% below you, 43% above');
    assert.match(await page.locator('tr[data-id="algorithms"] td.dist').getAttribute('aria-description'),
      /43% of the answers are below yours, 14% the same, 43% above/);
    await cell(page, 'algorithms', 0).click();
    assert.equal(await standing(page, 'algorithms'), '0% below you, 86% above');
    // Another answer arrives: the standing follows the live counts.
    await pcm.submitFromNode(server, [{ algorithms: 3 }]);
    await submittedIs(page, 8);
    // 0 below, 1 the same (12.5%), 7 above (87.5%): the tied remainder goes to the first.
    assert.equal(await standing(page, 'algorithms'), '0% below you, 87% above');
    assert.equal(await standing(page, 'years'), '', 'a row without answers says nothing');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('on a phone, "Next unrated" goes to the next row without a level, and is gone once all are rated', async () => {
    const page = await person({ viewport: PHONE, hasTouch: true, isMobile: true });
    const rows = await page.locator('tr.comp').evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
    await cell(page, rows[1], 1).tap();
    await cell(page, rows[0], 1).tap();
    await page.evaluate(() => window.scrollTo(0, 0));
    const focusedRow = () => page.evaluate(() => document.activeElement.closest('tr')?.dataset.id);
    await page.locator('[data-action="next"]').tap();
    assert.equal(await focusedRow(), rows[2], 'from the row last rated, past the rated ones');
    // Scrolled to it (smoothly: Bootstrap's `scroll-behavior`).
    const inView = () => page.waitForFunction(() => {
      const r = document.activeElement.getBoundingClientRect();
      return r.top >= 0 && r.bottom <= window.innerHeight;
    });
    await inView();
    await page.locator('[data-action="next"]').tap();
    assert.equal(await focusedRow(), rows[3]);
    await inView();
    // Rate everything: the button goes away.
    for (const row of rows) await cell(page, row, 1).tap();
    assert.equal(await page.locator('[data-action="next"]').count(), 0);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
});
