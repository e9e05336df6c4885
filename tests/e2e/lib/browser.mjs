// What the browser tests share: headless Chromium (Debian's, through playwright-core) with the flags
// this machine needs, the PCM app's built assets, and the hooks that start both with the real server.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';
import { REPO_ROOT, WEB_ROOT, cleanupAll, startServer } from '../../integration/lib/server.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

export const launch = () => chromium.launch({ executablePath: CHROMIUM, args: ARGS });

// The page needs the built assets; builds them if this checkout has none yet (the built page,
// web/public/index.html, names the hashed script and stylesheet that the same build wrote).
export function ensureAssets() {
  if (!fs.existsSync(path.join(WEB_ROOT, 'index.html'))) {
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts/build-web.mjs')], { stdio: 'inherit' });
  }
}

// Gathers `page`'s console errors and uncaught exceptions into `page.errors`, each named after `name`;
// with `responses`, HTTP answers of 400 and above too.
export function watchErrors(page, name, { responses = false } = {}) {
  page.errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(`${name}: console: ${msg.text()}`); });
  page.on('pageerror', (err) => page.errors.push(`${name}: exception: ${err.message}`));
  if (responses) page.on('response', (res) => { if (res.status() >= 400) page.errors.push(`${name}: HTTP ${res.status()} ${res.url()}`); });
  return page;
}

// The hooks of a browser test file: before its tests, the built assets, the real server serving them
// and Chromium, handed to `ready({server, browser})`; after them, all of it closed (`cleanup` first).
export function browserSuite(ready, { cleanup } = {}) {
  let browser;
  before(async () => {
    ensureAssets();
    const server = await startServer({ web: WEB_ROOT });
    browser = await launch();
    ready({ server, browser });
  });
  after(async () => {
    await browser?.close();
    if (cleanup) await cleanup();
    await cleanupAll();
  });
}
