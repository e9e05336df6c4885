// Rooms in the PCM app, in headless Chromium against the real server: `/?room=NAME` shows that room's
// own exact counts, live, while everyone's matrix counts every room; a person's answers move to the
// room they submit in; the room's link is shared by a button and by a QR code that decodes to it; a
// name the server would refuse is explained, never sent.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { browserSuite } from './lib/browser.mjs';
import * as pcm from './lib/pcm.mjs';
import { axeViolations, cell, stat, submit, submittedIs } from './lib/pcm.mjs';

const JSQR = createRequire(import.meta.url).resolve('jsqr/dist/jsQR.js');

let browser;
let server;
browserSuite((env) => ({ server, browser } = env));

const person = (options) => pcm.person(browser, server, options);
const count = (page, row, level) => cell(page, row, level).locator('.count').textContent();

describe('PCM rooms', () => {
  test('a room counts its own answers, live; everyone\'s matrix counts every room', async () => {
    await pcm.submitFromNode(server, [
      { algorithms: 2, room: 'team-a' }, { algorithms: 3, room: 'team-a' },
      { algorithms: 1, room: 'team-b' }, { algorithms: 0 },
    ]);
    const roomA = await person({ path: '/?room=team-a' });
    const roomB = await person({ path: '/?room=team-b' });
    const everyone = await person();
    assert.equal(await stat(roomA, 'room'), 'team-a');
    assert.equal(await stat(roomA, 'submitted'), '2');
    assert.match(await roomA.locator('.summary .headline').textContent(), /people have submitted in this room/);
    assert.equal(await count(roomA, 'algorithms', 2), '1 · 50%');
    assert.equal(await count(roomA, 'algorithms', 1), '0 · 0%');
    assert.equal(await stat(roomB, 'submitted'), '1');
    assert.equal(await stat(everyone, 'submitted'), '4');
    assert.equal(await everyone.locator('[data-stat="room"]').count(), 0);

    // A person joins room A and submits: room A and everyone's count them, room B does not.
    const me = await person({ path: '/?room=team-a' });
    await cell(me, 'algorithms', 3).click();
    await submit(me);
    await submittedIs(roomA, 3);
    await submittedIs(everyone, 5);
    assert.equal(await count(roomA, 'algorithms', 3), '2 · 67%');
    assert.equal(await stat(roomB, 'submitted'), '1');

    // The same person opens room B: their answers count in A until they submit here, then move.
    const there = await pcm.open(server, me.context(), '/?room=team-b');
    assert.equal(await stat(there, 'status'), 'Your answers count in room “team-a”: submit to move them here');
    assert.equal(await there.getAttribute('[data-action="submit"]', 'aria-disabled'), null);
    assert.equal(await there.locator('td.cell.submitted').count(), 1, 'their answers are shown');
    await there.click('[data-action="submit"]');
    await there.waitForSelector('#confirm.show');
    assert.match(await there.locator('#confirm [data-role="body"]').textContent(), /in room “team-b” instead of room “team-a”/);
    await there.locator('#confirm [data-action="confirm"]').click();
    await there.waitForFunction(() => document.querySelector('[data-stat="status"]').textContent.startsWith('Submitted'));
    await submittedIs(roomB, 2);
    await submittedIs(roomA, 2);
    assert.equal(await stat(everyone, 'submitted'), '5', 'moving is not a new answer');
    // Everyone's matrix leaves the room as it is: a change made there keeps them in room B.
    const home = await pcm.open(server, me.context(), '/');
    assert.equal(await stat(home, 'status'), 'Submitted: this is what counts for you');
    await cell(home, 'algorithms', 1).click();
    await submit(home);
    await roomB.waitForFunction(() => document.querySelector('tr[data-id="algorithms"] td.cell[data-level="1"] .count')
      .textContent.startsWith('2 '));
    assert.equal(await stat(roomB, 'submitted'), '2');
    for (const page of [roomA, roomB, everyone, me, there, home]) assert.deepEqual(page.errors, []);
    for (const page of [roomA, roomB, everyone, me]) await page.context().close();
  });

  test('the room\'s link: copied by a button, and a QR code that decodes to it', async () => {
    // The QR code is read back in the page by jsQR, a script the page's CSP would refuse.
    const page = await person({ path: '/?room=qr.team@x', bypassCSP: true, permissions: ['clipboard-read', 'clipboard-write'] });
    const link = `${server.url}/?room=qr.team%40x`;
    assert.equal(await page.inputValue('#room-link'), link);
    await page.click('[data-action="copy-link"]');
    await page.waitForFunction(() => document.querySelector('.room-copied').textContent === 'Copied');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);

    assert.equal(await page.locator('.room-qr').isVisible(), false);
    await page.click('[data-action="show-qr"]');
    // The encoder is a chunk loaded on the first click: the code shows once it is in.
    await page.waitForSelector('[data-action="show-qr"][aria-expanded="true"]');
    assert.equal(await page.locator('.room-qr svg').isVisible(), true);
    await page.addScriptTag({ path: JSQR });
    const decoded = await page.evaluate(async () => {
      const svg = document.querySelector('.room-qr svg');
      const img = new Image();
      img.src = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(svg)], { type: 'image/svg+xml' }));
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = 400;
      const g = canvas.getContext('2d');
      g.imageSmoothingEnabled = false;
      g.drawImage(img, 0, 0, 400, 400);
      const code = window.jsQR(g.getImageData(0, 0, 400, 400).data, 400, 400);
      return code && code.data;
    });
    assert.equal(decoded, link);
    assert.equal(await page.getAttribute('.room-results', 'href'), '/results?room=qr.team%40x');
    assert.deepEqual(await axeViolations(page), []);
    await page.context().close();
  });

  test('a name the server would refuse is explained, in the address and in the form', async () => {
    const context = await browser.newContext({ viewport: pcm.DESKTOP });
    const page = await context.newPage();
    await page.goto(`${server.url}/?room=${encodeURIComponent('no spaces!')}`);
    await page.waitForSelector('#room .alert');
    assert.match(await page.locator('#room .alert').textContent(), /“no spaces!” is not a room name: a room name is 1–32 letters/);
    assert.equal(await page.locator('#matrix table').count(), 0, 'nothing to submit into');

    const home = await pcm.open(server, context, '/');
    await home.fill('#room-name', 'far too long a name for any room at all');
    await home.click('.room-open button[type="submit"]');
    assert.match(await home.locator('#room-rule').textContent(), /cannot be a room/);
    assert.equal(await home.getAttribute('#room-name', 'aria-invalid'), 'true');
    assert.equal(new URL(home.url()).search, '');
    await home.fill('#room-name', 'design-team');
    await home.click('.room-open button[type="submit"]');
    await home.waitForURL(/\?room=design-team$/);
    await home.waitForSelector('body[data-ready="true"]');
    assert.equal(await stat(home, 'room'), 'design-team');
    assert.equal(await stat(home, 'submitted'), '0');
    await context.close();
  });
});
