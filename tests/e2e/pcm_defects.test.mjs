// The PCM app's defects of issue 15, each as people met it, in headless Chromium against the real
// server: two tabs of one person submitting different rows; a popover that stayed open and took the
// next click; focus lost after a keyboard submit; no way to withdraw; contrast and chatty live regions;
// the small ones (median of an even count, percentages that sum to 99 or 101, End, "Click" on a touch
// screen, n² shouted as N², text through the action bar). And axe-core over the page at desktop and
// phone width, in light and dark mode.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { browserSuite } from './lib/browser.mjs';
import * as pcm from './lib/pcm.mjs';
import { DESKTOP, PHONE, axeViolations, cell, marked, stat, submit, submittedIs } from './lib/pcm.mjs';

let browser;
let server;
browserSuite((env) => ({ server, browser } = env));

const person = (options) => pcm.person(browser, server, options);
const submitFromNode = (docs) => pcm.submitFromNode(server, docs);

describe('PCM defects', () => {
  test('1. two tabs of one person: each submits the rows it changed, neither undoes the other', async () => {
    const context = await browser.newContext({ viewport: DESKTOP });
    const one = await pcm.open(server, context);
    await cell(one, 'databases', 1).click();
    await cell(one, 'domain', 1).click();
    await submit(one);
    const two = await pcm.open(server, context);
    assert.deepEqual(await marked(two), { databases: 1, domain: 1 });

    await cell(one, 'databases', 3).click();
    await cell(two, 'domain', 2).click();
    await submit(one);
    // Tab two keeps its own change and takes tab one's submission in the row it did not touch.
    await two.waitForFunction(() => document.querySelector('tr[data-id="databases"] td.cell[data-level="3"]').classList.contains('submitted'));
    assert.equal(await cell(two, 'databases', 3).evaluate((td) => td.classList.contains('chosen')), true);
    assert.equal(await cell(two, 'domain', 2).evaluate((td) => td.classList.contains('chosen')), true);
    await submit(two);
    await one.waitForFunction(() => document.querySelector('tr[data-id="domain"] td.cell[data-level="2"]').classList.contains('submitted'));

    const fresh = await pcm.open(server, context); // reads the server (cache caught up)
    await fresh.waitForFunction(() => document.body.dataset.counts === 'live');
    assert.deepEqual(await marked(fresh), { databases: 3, domain: 2 });
    assert.deepEqual([...one.errors, ...two.errors, ...fresh.errors], []);
    await context.close();
  });

  test('2. the popover shows on hover and keyboard focus only, and never takes a click meant for a cell', async () => {
    const page = await person();
    const below = cell(page, 'algorithms', 1);
    const above = cell(page, 'data_structures', 1);
    await below.click();
    await page.mouse.move(5, 5);
    await page.waitForSelector('.popover', { state: 'detached' }); // focused by the click, yet closed

    // Hovering a cell shows its popover, over the cell above; a click there chooses that cell.
    await below.hover();
    await page.waitForSelector('.popover.show');
    const box = await above.boundingBox();
    const pop = await page.locator('.popover').boundingBox();
    const x = box.x + box.width / 2;
    const y = Math.max(box.y + 2, pop.y + pop.height / 2);
    await page.mouse.click(x, y);
    assert.equal(await above.evaluate((td) => td.classList.contains('chosen')), true, 'the click reached the cell above');

    // Out and straight back in, within the hide's fade: it stays shown.
    await below.hover();
    await page.waitForSelector('.popover.show');
    await page.mouse.move(5, 5);
    await below.hover();
    await page.waitForTimeout(600);
    assert.equal(await page.locator('.popover.show').count(), 1, 'shown again after the fade');

    // Keyboard focus shows it too.
    await page.mouse.move(5, 5);
    await page.keyboard.press('ArrowDown');
    await page.waitForSelector('.popover.show');
    await page.context().close();

    // A phone: a tap chooses the level, and no popover opens over the card above (it would stay there,
    // with nothing to hover off).
    const phone = await person({ viewport: PHONE, hasTouch: true, isMobile: true });
    await cell(phone, 'algorithms', 1).tap();
    assert.equal(await cell(phone, 'algorithms', 1).evaluate((td) => td.classList.contains('chosen')), true);
    await phone.waitForTimeout(500); // a popover would show within Bootstrap's 150 ms fade
    assert.equal(await phone.locator('.popover').count(), 0);
    await phone.context().close();
  });

  test('4. after submitting with the keyboard, focus is on the action bar, not lost', async () => {
    const page = await person();
    await cell(page, 'tools', 2).click();
    await page.locator('[data-action="submit"]').focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#confirm.show');
    await page.waitForFunction(() => document.activeElement.matches('#confirm [data-action="confirm"]'));
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('[data-stat="status"]').textContent.startsWith('Submitted'));
    await page.waitForSelector('.modal-backdrop', { state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.dataset.action), 'submit');
    // Submit cannot act now (nothing changed) but keeps the focus: aria-disabled, and a press does nothing.
    assert.equal(await page.getAttribute('[data-action="submit"]', 'aria-disabled'), 'true');
    await page.keyboard.press('Enter');
    assert.equal(await page.locator('#confirm.show').count(), 0);
    await page.context().close();
  });

  test('5. a submission can be withdrawn, after a confirmation', async () => {
    const watcher = await person();
    const page = await person();
    const before = Number(await stat(watcher, 'submitted'));
    await cell(page, 'reading', 1).click();
    await submit(page);
    await submittedIs(watcher, before + 1);

    await page.click('[data-action="withdraw"]');
    await page.waitForSelector('#confirm.show');
    assert.match(await page.locator('#confirm .modal-title').textContent(), /Withdraw/);
    await page.locator('#confirm [data-action="confirm"]').click();
    await submittedIs(watcher, before);
    await page.waitForFunction(() => document.querySelectorAll('td.cell.submitted').length === 0);
    await page.waitForFunction(() => document.querySelector('[data-stat="status"]').textContent.startsWith('Choose a level'));
    assert.equal(await page.locator('[data-action="withdraw"]').count(), 0);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.locator('td.cell.submitted').count(), 0, 'gone on the server too');
    await watcher.context().close();
    await page.context().close();
  });

  test('6. every count is readable at every share (4.5:1), and live regions announce only changes that matter', async () => {
    const page = await person();
    const ratios = await page.evaluate(() => {
      const lum = (rgb) => {
        const [r, g, b] = rgb.match(/[\d.]+/g).slice(0, 3).map((v) => {
          const c = Number(v) / 255;
          return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const contrast = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
      const td = document.querySelector('tr[data-id="algorithms"] td.cell[data-level="1"]');
      const count = td.querySelector('.count');
      const out = [];
      for (const cls of ['', 'in-range', 'chosen']) {
        if (cls) td.classList.add(cls);
        for (let share = 0; share <= 1.0001; share += 0.05) {
          td.style.setProperty('--share', share.toFixed(3));
          const style = getComputedStyle(count);
          // The count's own background must be opaque: text on the heat ramp itself fails in the middle.
          const opaque = !/rgba\(.*, 0(\.\d+)?\)$/.test(style.backgroundColor) && style.backgroundColor !== 'transparent';
          out.push({ cls, share, opaque, ratio: contrast(style.color, style.backgroundColor) });
        }
      }
      return out;
    });
    for (const r of ratios) {
      assert.ok(r.opaque, `count background opaque (${r.cls} ${r.share})`);
      assert.ok(r.ratio >= 4.5, `contrast ${r.ratio.toFixed(2)} at share ${r.share.toFixed(2)} ${r.cls}`);
    }
    // The headline (changes with every arrival) and the indicator (its countdown ticks) are not live
    // regions; one polite region says when the counts stop or start being live.
    assert.equal(await page.locator('.summary .headline[aria-live]').count(), 0);
    assert.equal(await page.locator('#connection[aria-live], #connection [aria-live]').count(), 0);
    assert.equal(await page.getAttribute('#announce', 'aria-live'), 'polite');
    await page.context().close();
  });

  test('8. even medians, percentages that sum to 100, End, touch wording, n², the action bar is opaque and fits a phone', async () => {
    await submitFromNode([{ years: 1, shipped: 0 }, { years: 2, shipped: 1 }, { shipped: 2 }]);
    const page = await person();
    // years: L1 and L2, an even count: the median is between them, not the lower one.
    assert.match(await page.locator('tr[data-id="years"] .cap-median').textContent(), /median L1–L2/);
    // shipped: three people, a third each: 34 + 33 + 33, not 33 × 3 = 99.
    const shares = await page.locator('tr[data-id="shipped"] td.cell .count').evaluateAll(
      (els) => els.map((el) => (el.textContent.split(' · ')[1] || '0%')));
    assert.equal(shares.reduce((sum, p) => sum + parseInt(p, 10), 0), 100, shares.join(' '));

    // End goes to the row's last level, not to the chart after it.
    await cell(page, 'years', 0).click();
    await page.keyboard.press('End');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.level), '3');

    // Opaque action bar: nothing shows through.
    assert.equal(await page.locator('#actions').evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(255, 255, 255)');
    await page.context().close();

    // A phone: "Tap", and level names keep their case (n², not N²).
    const phone = await person({ viewport: PHONE, hasTouch: true, isMobile: true });
    const help = await phone.locator('#grid-help').innerText();
    assert.match(help, /^Tap a cell/);
    assert.doesNotMatch(help, /Click|click/);
    const label = await cell(phone, 'years', 1).evaluate((td) => {
      const style = getComputedStyle(td, '::before');
      return { content: style.content, transform: style.textTransform };
    });
    assert.match(label.content, /n²/);
    assert.equal(label.transform, 'none');
    // After a submission and a change, the bar's four buttons fit the phone's width.
    await cell(phone, 'years', 1).tap();
    await submit(phone);
    await cell(phone, 'years', 2).tap();
    assert.equal(await phone.locator('#actions button').count(), 4);
    const bar = await phone.locator('#actions').evaluate((el) => ({ scroll: el.scrollWidth, width: el.clientWidth,
      right: Math.max(...[...el.querySelectorAll('button')].map((b) => b.getBoundingClientRect().right)) }));
    assert.ok(bar.scroll <= bar.width && bar.right <= PHONE.width, JSON.stringify(bar));
    await phone.context().close();
  });

  for (const [name, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    for (const colorScheme of ['light', 'dark']) {
      test(`axe-core finds no violations (${name}, ${colorScheme})`, async () => {
        const page = await person({ viewport, colorScheme, bypassCSP: true });
        await cell(page, 'algorithms', 2).click();
        assert.deepEqual(await axeViolations(page), []);
        assert.deepEqual(page.errors, []);
        await page.context().close();
      });
    }
  }
});
