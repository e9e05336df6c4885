// The PCM app's service worker: it keeps the app shell (the page, its script and stylesheet, the icon and
// the matrix) so that the app opens with no network; the live data comes from rtsync.js's own cache.
//
// Written by hand rather than generated (Workbox): five files and one strategy, network first, so that a
// new version shows at once when online, and the cached copy when the network fails or hangs (a dead
// link can leave a request unanswered for a long time). It answers only for the shell's own paths, so
// other apps served from the same origin are left alone.
//
// This is the template: scripts/build-web.mjs writes web/public/sw.js from it with the hashed names of the
// app's script and stylesheet, and a cache named after their hashes. A new build is a new worker, whose
// cache replaces the old one (`activate`).

const CACHE = 'rtsync-pcm-shell-{{version}}';
const SHELL = ['/', '/assets/{{app.js}}', '/assets/{{app.css}}', {{chunks}}'/favicon.svg', '/pcm/matrix.json'];
const PATIENCE_MS = 3000; // how long the network may take before the cached copy answers

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('rtsync-pcm-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// The shell path a request is for ("/" for the page under any query), or null.
function shellPath(request) {
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return null;
  const path = url.pathname === '/index.html' ? '/' : url.pathname;
  return SHELL.includes(path) ? path : null;
}

self.addEventListener('fetch', (event) => {
  const path = shellPath(event.request);
  if (path) event.respondWith(networkFirst(event.request, path));
});

async function networkFirst(request, path) {
  const cache = await caches.open(CACHE);
  const network = fetch(request).then((response) => {
    if (response.ok) cache.put(path, response.clone());
    return response;
  });
  const patience = new Promise((resolve) => { setTimeout(resolve, PATIENCE_MS, null); });
  try {
    const first = await Promise.race([network, patience]);
    if (first) return first;
  } catch (err) {
    const cached = await cache.match(path);
    if (cached) return cached;
    throw err;
  }
  // The network is slow: the cached copy if there is one, else keep waiting for it.
  return (await cache.match(path)) || network;
}
