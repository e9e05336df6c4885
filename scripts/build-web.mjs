#!/usr/bin/env node
// Builds the browser assets into web/public/assets/ (gitignored), which `rtsync serve` serves at /assets/:
//
//   rtsync.esm.js, rtsync.esm.min.js  the client library as an ES module (imports backbone, underscore)
//   rtsync.js, rtsync.min.js          the same as a plain script: global `RTSync`, needs global Backbone, _
//   rtsync-offline.esm(.min).js       the offline module (durable outbox, cache) as an ES module that
//                                     imports ./rtsync.esm(.min).js
//   rtsync-offline(.min).js           the same as a plain script, after rtsync(.min).js: extends `RTSync`
//   app-HASH.js, app-HASH.css         the PCM app: Backbone, Underscore, the library and the Bootstrap 5
//                                     components it uses (no jQuery), bundled, minified, with source maps
//   results-HASH.js, results-HASH.css the PCM presenter view (/results): the library, Backbone,
//                                     Underscore and uPlot, without jQuery or Bootstrap
//
// The library keeps its plain names, which other apps link to. The pages' assets carry their content's
// hash (esbuild's `[name]-[hash]`), so that the server lets browsers keep them for a year (`immutable`);
// the build then writes the pages (web/public/index.html, web/public/results/index.html) and the service
// worker (web/public/sw.js) from their templates in web/pcm/ and web/results/ with those names. Every script and stylesheet, the page, the worker and
// the matrix (web/public/pcm/matrix.json) get precompressed copies (.gz, .br), which the server sends by
// Accept-Encoding.
//
// Prints every size with its gzip and Brotli sizes, and fails when a build passes its budget: 23 KB
// minified for the library, 16 KB for the offline module (outbox, cache and tabs) (an application that
// keeps nothing on the device loads only the library; one that works offline loads both), and 64 KB
// Brotli (72 KB gzip) for the app's script and stylesheet together, what a first visit downloads besides
// the page and the matrix (tests/e2e/pcm_weight.test.mjs measures the whole first load: under 100 KB).
// Usage: node scripts/build-web.mjs (or `npm run build`).

import * as esbuild from 'esbuild';
import * as sass from 'sass';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'web/public/assets');
const lib = path.join(root, 'web/lib/rtsync.js');
const offline = path.join(root, 'web/lib/rtsync-offline.js');
// The library's budget went from 22 to 23 KB with the seams of the offline module and with paging placed
// as of the first page (feed documents past the loaded pages wait for them): both are in every app.
const BUDGETS = {
  'rtsync.esm.min.js': 23 * 1024, 'rtsync.min.js': 23 * 1024,
  'rtsync-offline.esm.min.js': 16 * 1024, 'rtsync-offline.min.js': 16 * 1024,
};
// The PCM app's script and stylesheet together, compressed (gzip for the clients that only take gzip).
const APP_BUDGET = { gzip: 72 * 1024, br: 64 * 1024 };
const target = ['es2020'];

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

// For the plain-script build, `import Backbone from 'backbone'` and `import _ from 'underscore'` read
// the globals that the page's own <script> tags define.
const globals = {
  name: 'globals',
  setup(build) {
    const names = { backbone: 'Backbone', underscore: '_', './rtsync.js': 'RTSync' };
    build.onResolve({ filter: /^(backbone|underscore)$/ }, (args) => ({ path: args.path, namespace: 'global' }));
    // The offline module's plain script extends the library's: `window.RTSync`.
    build.onResolve({ filter: /^\.\/rtsync\.js$/ }, (args) =>
      (args.importer === offline ? { path: args.path, namespace: 'global' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'global' }, (args) => ({
      contents: `module.exports = globalThis.${names[args.path]};`,
      loader: 'js',
    }));
  },
};

// `@import "./bootstrap.scss"` in the app's CSS: Bootstrap's Sass compiled to CSS, with its source map
// inline so that esbuild's map leads back to the partials. Bootstrap 5.3 is written with `@import`, which
// Dart Sass 1.x warns about (it goes in 3.0); the warnings from Bootstrap's own files are quieted.
const scss = {
  name: 'scss',
  setup(build) {
    build.onLoad({ filter: /\.scss$/ }, (args) => {
      const result = sass.compile(args.path, {
        loadPaths: [path.join(root, 'node_modules')],
        quietDeps: true,
        silenceDeprecations: ['import'],
        sourceMap: true,
        sourceMapIncludeSources: true,
      });
      const map = Buffer.from(JSON.stringify(result.sourceMap)).toString('base64');
      return {
        contents: `${result.css}\n/*# sourceMappingURL=data:application/json;base64,${map} */\n`,
        loader: 'css',
        watchFiles: result.loadedUrls.map((url) => fileURLToPath(url)),
      };
    });
  },
};

// Backbone asks for jQuery when it is bundled (`try { $ = require('jquery') } catch`); the app's views
// work on the DOM itself (web/pcm/view.js), so it gets nothing and jQuery stays out of the bundle.
const noJquery = {
  name: 'no-jquery',
  setup(build) {
    build.onResolve({ filter: /^jquery$/ }, () => ({ path: 'jquery', namespace: 'none' }));
    build.onLoad({ filter: /.*/, namespace: 'none' }, () => ({ contents: 'module.exports = undefined;', loader: 'js' }));
  },
};

const banner = { js: '/* rtsync.js 0.1.0, MIT license. Source: web/lib/rtsync.js */' };

// The library as an ES module, readable and minified.
for (const minify of [false, true]) {
  await esbuild.build({
    entryPoints: [lib],
    outfile: path.join(out, minify ? 'rtsync.esm.min.js' : 'rtsync.esm.js'),
    bundle: true,
    format: 'esm',
    external: ['backbone', 'underscore'],
    minify,
    target,
    banner,
    legalComments: 'none',
  });
}

// The library as a plain script: `window.RTSync`.
for (const minify of [false, true]) {
  await esbuild.build({
    stdin: {
      contents: "module.exports = require('./web/lib/rtsync.js').default;",
      resolveDir: root,
      sourcefile: 'rtsync-global.js',
    },
    outfile: path.join(out, minify ? 'rtsync.min.js' : 'rtsync.js'),
    bundle: true,
    format: 'iife',
    globalName: 'RTSync',
    plugins: [globals],
    minify,
    target,
    banner,
    legalComments: 'none',
  });
}

// The offline module, importing the library's build of the same kind.
for (const minify of [false, true]) {
  const suffix = minify ? '.min.js' : '.js';
  await esbuild.build({
    entryPoints: [offline],
    outfile: path.join(out, 'rtsync-offline.esm' + suffix),
    bundle: true,
    format: 'esm',
    external: ['backbone', 'underscore'],
    plugins: [{
      name: 'library',
      setup(build) {
        build.onResolve({ filter: /^\.\/rtsync\.js$/ }, () => ({ path: './rtsync.esm' + suffix, external: true }));
      },
    }],
    minify,
    target,
    banner: { js: '/* rtsync-offline.js 0.1.0, MIT license. Source: web/lib/rtsync-offline.js */' },
    legalComments: 'none',
  });
  await esbuild.build({
    stdin: { contents: "require('./web/lib/rtsync-offline.js');", resolveDir: root, sourcefile: 'rtsync-offline-global.js' },
    outfile: path.join(out, 'rtsync-offline' + suffix),
    bundle: true,
    format: 'iife',
    plugins: [globals],
    minify,
    target,
    banner: { js: '/* rtsync-offline.js 0.1.0, MIT license. Source: web/lib/rtsync-offline.js */' },
    legalComments: 'none',
  });
}

// The app and the presenter view: one script and one stylesheet each, everything bundled, each named
// after its content's hash (app-HASH.js), so that the server lets browsers keep it for a year without
// asking again.
const app = {};
const chunks = []; // the app's chunks, which the service worker keeps too
const preload = []; // those of them that the app's script imports statically
for (const [name, script, style] of [['app', 'web/pcm/app.js', 'web/pcm/app.css'],
  ['results', 'web/results/app.js', 'web/results/results.css']]) {
  for (const [ext, entry, options] of [
    // The app is an ES module, so that what only some visits use (the room's QR code) is a chunk of its
    // own, loaded by `import()` when needed.
    ['.js', script, name === 'app' ? { format: 'esm', splitting: true, chunkNames: '[name]-[hash]', target, plugins: [noJquery] }
      : { format: 'iife', target, plugins: [noJquery] }],
    ['.css', style, { plugins: [scss] }],
  ]) {
    const result = await esbuild.build({
      entryPoints: { [name]: path.join(root, entry) },
      outdir: out,
      entryNames: '[name]-[hash]',
      bundle: true,
      minify: true,
      sourcemap: true,
      legalComments: 'linked',
      metafile: true,
      ...options,
    });
    const outputs = Object.entries(result.metafile.outputs).filter(([f]) => !f.endsWith('.map'));
    app[`${name}${ext}`] = path.basename(outputs.find(([, o]) => o.entryPoint)[0]);
    if (name === 'app' && ext === '.js') {
      chunks.push(...outputs.map(([f]) => path.basename(f)).filter((f) => f !== app['app.js']));
      // The chunks the app imports statically: the page asks for them with the script, not after it.
      const [, entryOutput] = outputs.find(([, o]) => o.entryPoint);
      preload.push(...entryOutput.imports.filter((i) => i.kind === 'import-statement').map((i) => path.basename(i.path)));
    }
  }
}

// The pages and the service worker, written from their templates into web/public/ (all gitignored):
// `{{app.js}}`, `{{results.css}}`… become the hashed names, `{{chunks}}` the app's chunks (for the
// service worker's list), `{{preload}}` the page's `modulepreload` links, and `{{version}}` the app's two hashes, which name the service worker's
// cache, so that a new version of the app replaces the old shell.
const values = {
  ...app,
  version: [app['app.js'], app['app.css']].map((n) => n.split(/[-.]/)[1]).join('-'),
  chunks: chunks.map((n) => `'/assets/${n}', `).join(''),
  preload: preload.map((n) => `<link rel="modulepreload" href="/assets/${n}">`).join('\n'),
};
const pages = {
  'web/pcm/index.html': 'web/public/index.html',
  'web/pcm/sw.js': 'web/public/sw.js',
  'web/results/index.html': 'web/public/results/index.html',
};
for (const [template, target] of Object.entries(pages)) {
  const text = fs.readFileSync(path.join(root, template), 'utf8').replace(/\{\{([\w.]+)\}\}/g, (m, name) => {
    if (!(name in values)) throw new Error(`${template}: no value for ${m}`);
    return values[name];
  });
  fs.mkdirSync(path.dirname(path.join(root, target)), { recursive: true });
  fs.writeFileSync(path.join(root, target), text);
}

// Precompressed copies (FILE.gz, FILE.br) of every script and stylesheet, of the page and the service
// worker, and of the matrix the page loads, which the server sends to browsers that accept them:
// compressed once here at the highest levels, never per request.
const served = [...Object.values(pages).map((p) => path.join(root, p)), path.join(root, 'web/public/pcm/matrix.json')];
const compressed = [...fs.readdirSync(out).filter((n) => /\.(js|css)$/.test(n)).map((n) => path.join(out, n)), ...served];
for (const file of compressed) {
  const data = fs.readFileSync(file);
  fs.writeFileSync(`${file}.gz`, zlib.gzipSync(data, { level: 9 }));
  fs.writeFileSync(`${file}.br`, zlib.brotliCompressSync(data, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  }));
}

// Sizes, and the budgets. The app's budget is on what a browser downloads of its script and
// stylesheet together, compressed: with the page and the matrix, the first load stays under 100 KB
// (tests/e2e/pcm_weight.test.mjs measures it).
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const sizes = (file) => [fs.statSync(file).size, fs.statSync(`${file}.gz`).size, fs.statSync(`${file}.br`).size];
let failed = false;
console.log('web assets in web/public/assets/ (and the page, the service worker and the matrix):');
const listed = [
  ...['rtsync.esm.min.js', 'rtsync.min.js', 'rtsync.esm.js', 'rtsync-offline.esm.min.js', 'rtsync-offline.min.js',
    'rtsync-offline.esm.js', app['app.js'], app['app.css'], app['results.js'], app['results.css']].map((n) => path.join(out, n)),
  ...served,
];
for (const file of listed) {
  const name = path.basename(file);
  const [size, gz, br] = sizes(file);
  const budget = BUDGETS[name];
  let note = '';
  if (budget) {
    note = size <= budget ? `  (budget ${kb(budget)}: ok, ${size} bytes)` : `  (over the ${kb(budget)} budget: ${size} bytes)`;
    if (size > budget) failed = true;
  }
  console.log(`  ${name.padEnd(26)} ${kb(size).padStart(9)}   gzip ${kb(gz).padStart(8)}   brotli ${kb(br).padStart(8)}${note}`);
}
const [, jsGz, jsBr] = sizes(path.join(out, app['app.js']));
const [, cssGz, cssBr] = sizes(path.join(out, app['app.css']));
const appOk = jsGz + cssGz <= APP_BUDGET.gzip && jsBr + cssBr <= APP_BUDGET.br;
console.log(`  ${'app script + stylesheet'.padEnd(26)} ${''.padStart(9)}   gzip ${kb(jsGz + cssGz).padStart(8)}   brotli ${kb(jsBr + cssBr).padStart(8)}` +
  `  (budget gzip ${kb(APP_BUDGET.gzip)}, brotli ${kb(APP_BUDGET.br)}: ${appOk ? 'ok' : 'over'})`);
if (!appOk) failed = true;
if (failed) {
  console.error('build-web: a build is over its size budget');
  process.exit(1);
}
