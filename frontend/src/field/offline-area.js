// Keeps a chief's jurisdiction for offline use: the map's vector tiles over its bounding box
// (zoom by zoom while the count stays under MAX_TILES), the chief's file and the glyphs, in the
// Cache Storage the service worker answers from when the network is gone (sw.js: TILE_CACHE,
// DATA_CACHE).

import { tilesCovering } from './geo.js';

export const TILE_CACHE = 'ecomap-tiles';
export const DATA_CACHE = 'ecomap-data';
const MAX_TILES = 3000;
const MAX_ZOOM = 16;
const PARALLEL = 6;
const SAVED_KEY = 'ecomap.offlineArea';

/** The vector tile URL templates of the map's style (the composite catalog source). */
function tileTemplates(map) {
  return Object.values(map.getStyle().sources)
    .filter((source) => source.type === 'vector' && Array.isArray(source.tiles))
    .map((source) => ({ template: source.tiles[0], minzoom: source.minzoom ?? 0, maxzoom: source.maxzoom ?? 14 }));
}

/** The tiles to keep: every zoom from the map's first to the deepest under MAX_TILES. */
export function planTiles(map, bbox) {
  const urls = [];
  for (const { template, minzoom, maxzoom } of tileTemplates(map)) {
    for (let z = Math.max(0, minzoom); z <= Math.min(maxzoom, MAX_ZOOM); z++) {
      const tiles = tilesCovering(bbox, z);
      if (urls.length + tiles.length > MAX_TILES) break;
      for (const [tz, x, y] of tiles) {
        urls.push(template.replace('{z}', tz).replace('{x}', x).replace('{y}', y));
      }
    }
  }
  return urls;
}

/** What was kept last time: {at, tiles, bbox} or null. */
export function savedArea() {
  try {
    return JSON.parse(localStorage.getItem(SAVED_KEY) || 'null');
  } catch {
    return null;
  }
}

/** Fetches and keeps the tiles and data; `onProgress(done, total)`. Resolves to the summary. */
export async function saveArea(map, { bbox, dataUrls, onProgress }) {
  const urls = planTiles(map, bbox);
  const tiles = await caches.open(TILE_CACHE);
  const data = await caches.open(DATA_CACHE);
  let done = 0;
  let failed = 0;
  const queue = [...urls];
  async function worker() {
    while (queue.length) {
      const url = queue.shift();
      try {
        const response = await fetch(url, { credentials: 'same-origin' });
        if (response.ok) await tiles.put(url, response);
        else failed += 1;
      } catch {
        failed += 1;
      }
      done += 1;
      onProgress?.(done, urls.length);
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  for (const url of dataUrls) {
    try {
      const response = await fetch(url, { credentials: 'same-origin' });
      if (response.ok) await data.put(new URL(url, document.baseURI).href, response);
    } catch {
      failed += 1;
    }
  }
  const summary = { at: new Date().toISOString(), tiles: urls.length - failed, failed, bbox };
  localStorage.setItem(SAVED_KEY, JSON.stringify(summary));
  return summary;
}
