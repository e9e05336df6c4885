#!/usr/bin/env node
// Takes the screenshots of the PCM app's main states that docs/pcm.md shows (docs/img/pcm-*.png): the
// matrix at desktop width in light and dark mode, a popover, a room with its QR code, a phone, and the
// counts kept while offline. It starts the real server on a fresh data dir with 24 people's answers
// submitted from Node, like the browser tests. Not a test: run it by hand after a visible change,
// `npm run docs-img` (after `make build-test`, which builds the server and the assets).

import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, WEB_ROOT, cleanupAll, startServer } from '../tests/integration/lib/server.mjs';
import { ensureAssets, launch } from '../tests/e2e/lib/browser.mjs';
import { DESKTOP, PHONE, cell, person, submitFromNode } from '../tests/e2e/lib/pcm.mjs';

const OUT = path.join(REPO_ROOT, 'docs/img');
const matrix = JSON.parse(fs.readFileSync(path.join(WEB_ROOT, 'pcm/matrix.json'), 'utf8'));

// 24 people, most rating most rows, spread over the levels; 8 of them in room "team-a".
const crowd = Array.from({ length: 24 }, (_, i) => ({
  ...Object.fromEntries(matrix.rows.filter((row, j) => (i + j) % 6)
    .map((row, j) => [row.id, Math.min(3, Math.floor(((i * 7 + j * 3) % 11) / 2.75))])),
  ...(i % 3 === 0 ? { room: 'team-a' } : {}),
}));

ensureAssets();
fs.mkdirSync(OUT, { recursive: true });
const server = await startServer({ web: WEB_ROOT });
const browser = await launch();
try {
  await submitFromNode(server, crowd);
  const shot = (page, name, options) => page.screenshot({ path: path.join(OUT, `pcm-${name}.png`), ...options });
  const choose = async (page) => {
    for (const [row, level] of [['algorithms', 2], ['data_structures', 3], ['systems_programming', 1], ['databases', 2]]) {
      await cell(page, row, level).click();
    }
  };

  for (const colorScheme of ['light', 'dark']) {
    const page = await person(browser, server, { viewport: DESKTOP, colorScheme });
    await choose(page);
    await page.mouse.move(0, 0);
    await page.evaluate(() => window.scrollTo({ top: 0, behavior: 'instant' }));
    await page.waitForTimeout(1800); // the flashes fade
    await shot(page, `desktop-${colorScheme}`);
    if (colorScheme === 'light') {
      await cell(page, 'algorithms', 1).hover();
      await page.waitForSelector('.popover.show');
      await shot(page, 'popover', { clip: { x: 0, y: 180, width: DESKTOP.width, height: 420 } });
    }
    await page.context().close();
  }

  const room = await person(browser, server, { viewport: DESKTOP, path: '/?room=team-a' });
  await room.click('[data-action="show-qr"]');
  await shot(room, 'room', { clip: { x: 0, y: 0, width: DESKTOP.width, height: 520 } });
  await room.context().close();

  const phone = await person(browser, server, { viewport: PHONE, hasTouch: true, isMobile: true });
  await cell(phone, 'algorithms', 2).tap();
  await phone.waitForTimeout(1800);
  await shot(phone, 'phone');
  await phone.context().close();

  // The counts kept while the connection is down: muted, with their time.
  const offline = await person(browser, server, { viewport: DESKTOP });
  await offline.context().setOffline(true);
  await offline.evaluate(() => window.dispatchEvent(new Event('offline')));
  await offline.waitForSelector('body[data-counts="stale"]');
  await shot(offline, 'offline', { clip: { x: 0, y: 0, width: DESKTOP.width, height: 520 } });
  await offline.context().close();
  console.log(`screenshots in ${path.relative(REPO_ROOT, OUT)}/pcm-*.png`);
} finally {
  await browser.close();
  await cleanupAll();
}
