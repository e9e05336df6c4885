#!/usr/bin/env node
// Builds the browser assets into web/public/assets/ (gitignored), which `rtsync serve` serves at /assets/:
//
//   rtsync.esm.js, rtsync.esm.min.js  the client library as an ES module (imports backbone, underscore)
//   rtsync.js, rtsync.min.js          the same as a plain script: global `RTSync`, needs global Backbone, _
//   rtsync-offline.esm(.min).js       the offline module (durable outbox, cache) as an ES module that
//                                     imports ./rtsync.esm(.min).js
//   rtsync-offline(.min).js           the same as a plain script, after rtsync(.min).js: extends `RTSync`
//   app.js, app.css                   the PCM app: Backbone, Underscore, the Bootstrap 5 components it
//                                     uses and the library bundled, minified, with source maps
//
// Each script and stylesheet also gets its precompressed copies (.gz, .br). Prints every size with its
// gzip and Brotli sizes, and fails when a minified build passes its budget: 23 KB for the library, 16 KB
// for the offline module (outbox, cache and tabs) (an application that keeps nothing on the device loads
// only the library; one that works offline loads both).
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

// The app: one script and one stylesheet, everything bundled.
await esbuild.build({
  entryPoints: { app: path.join(root, 'web/pcm/app.js') },
  outdir: out,
  bundle: true,
  format: 'iife',
  minify: true,
  sourcemap: true,
  target,
  legalComments: 'linked',
  plugins: [noJquery],
});
await esbuild.build({
  entryPoints: { app: path.join(root, 'web/pcm/app.css') },
  outdir: out,
  bundle: true,
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  plugins: [scss],
});

// Precompressed copies of every script and stylesheet (FILE.gz, FILE.br), which the server sends to
// browsers that accept them: compressed once here at the highest levels, never per request.
for (const name of fs.readdirSync(out).filter((n) => /\.(js|css)$/.test(n))) {
  const data = fs.readFileSync(path.join(out, name));
  fs.writeFileSync(path.join(out, `${name}.gz`), zlib.gzipSync(data, { level: 9 }));
  fs.writeFileSync(path.join(out, `${name}.br`), zlib.brotliCompressSync(data, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  }));
}

// Sizes.
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
let failed = false;
console.log('web assets in web/public/assets/:');
for (const name of ['rtsync.esm.min.js', 'rtsync.min.js', 'rtsync.esm.js', 'rtsync-offline.esm.min.js',
  'rtsync-offline.min.js', 'rtsync-offline.esm.js', 'app.js', 'app.css']) {
  const data = fs.readFileSync(path.join(out, name));
  const gz = fs.statSync(path.join(out, `${name}.gz`)).size;
  const br = fs.statSync(path.join(out, `${name}.br`)).size;
  const budget = BUDGETS[name];
  let note = '';
  if (budget) {
    note = data.length <= budget ? `  (budget ${kb(budget)}: ok, ${data.length} bytes)` : `  (over the ${kb(budget)} budget: ${data.length} bytes)`;
    if (data.length > budget) failed = true;
  }
  console.log(`  ${name.padEnd(26)} ${kb(data.length).padStart(9)}   gzip ${kb(gz).padStart(8)}   brotli ${kb(br).padStart(8)}${note}`);
}
if (failed) {
  console.error('build-web: a minified build is over its size budget');
  process.exit(1);
}
