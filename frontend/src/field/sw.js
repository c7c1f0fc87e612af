// The map's service worker (hand-written; vite.config.js fills in PRECACHE and VERSION at
// build time). It keeps the app shell — the page, its scripts, styles, MapLibre's worker,
// icons — so the map opens without network, and answers from Cache Storage when the network
// is gone:
//   - the page (navigations): network first, the cached page offline;
//   - the built files (assets/, fonts/, icons): cache first (their names change with content);
//   - what the map and the field app read at start (who is signed in, the catalog, the style,
//     the workflow's codes, a chief's file): network first, the last answer offline;
//   - vector tiles: network first, offline the tiles kept for the jurisdiction (offline-area.js);
//   - everything else (writes, other API calls): straight to the network.
// Signing out (POST api/auth/logout) empties the data and tile caches: they held what that
// user could see.
/* eslint-env serviceworker */

const PRECACHE = self.__ECOMAP_PRECACHE;
const VERSION = self.__ECOMAP_VERSION;
const SHELL_CACHE = `ecomap-shell-${VERSION}`;
const STATIC_CACHE = 'ecomap-static';
const DATA_CACHE = 'ecomap-data'; // same names as field/offline-area.js
const TILE_CACHE = 'ecomap-tiles';
const START_DATA = ['api/auth/me', 'api/config', 'api/layers', 'api/rasters', 'styles/default.json', 'api/workflow'];
const DATA_PATHS = [/^api\/auth\/me$/, /^api\/config$/, /^api\/layers$/, /^api\/rasters$/, /^api\/workflow$/, /^api\/chiefs(\/\d+)?$/, /^styles\//];
const STATIC_PATHS = [/^assets\//, /^fonts\//, /^icons\//, /^favicon\.svg$/, /^manifest\.webmanifest$/];

const scopePath = new URL(self.registration.scope).pathname;
const relative = (url) => (url.pathname.startsWith(scopePath) ? url.pathname.slice(scopePath.length) : null);

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const shell = await caches.open(SHELL_CACHE);
      await shell.addAll(PRECACHE);
      const data = await caches.open(DATA_CACHE);
      // What the first page load read before this worker controlled it.
      await Promise.all(START_DATA.map((path) => data.add(path).catch(() => undefined)));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('ecomap-shell-') && name !== SHELL_CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

/** Network first, the cached answer when the network fails. `keep`: 'always' stores every good
 * answer, 'refresh' only renews one already kept (tiles outside the saved area are not kept),
 * 'never' stores nothing (the page: its cached copy matches the cached scripts). */
async function networkFirst(request, cacheName, { keep = 'always', fallback } = {}) {
  const cache = await caches.open(cacheName);
  try {
    const response = await fetch(request);
    const renew = keep === 'always' || (keep === 'refresh' && (await cache.match(request)));
    if (response.ok && renew) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const cached = (await cache.match(request)) || (fallback && (await fallback()));
    if (cached) return cached;
    throw err;
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) (await caches.open(STATIC_CACHE)).put(request, response.clone());
  return response;
}

async function signOut(request) {
  const response = await fetch(request);
  await caches.delete(DATA_CACHE);
  await caches.delete(TILE_CACHE);
  return response;
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const path = relative(url);
  if (path === null) return;
  if (request.method === 'POST' && path === 'api/auth/logout') {
    event.respondWith(signOut(request));
    return;
  }
  if (request.method !== 'GET') return;
  if (request.mode === 'navigate') {
    const shellPage = async () => (await caches.open(SHELL_CACHE)).match('./');
    event.respondWith(networkFirst(request, SHELL_CACHE, { keep: 'never', fallback: shellPage }));
  } else if (STATIC_PATHS.some((re) => re.test(path))) {
    event.respondWith(cacheFirst(request));
  } else if (DATA_PATHS.some((re) => re.test(path))) {
    event.respondWith(networkFirst(request, DATA_CACHE));
  } else if (path.startsWith('tiles/')) {
    event.respondWith(networkFirst(request, TILE_CACHE, { keep: 'refresh' }));
  }
});
