// The shareable view lives in the URL hash:
//   #map=ZOOM/LAT/LON&layers=redline,river&basemap=none&lang=en&chief=12
// Unknown keys are kept, so other deep links survive a map move.

const ORDER = ['map', 'layers', 'basemap', 'lang', 'chief'];

function parse(hash) {
  const params = new Map();
  for (const part of hash.replace(/^#/, '').split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    params.set(key, value);
  }
  return params;
}

function serialize(params) {
  const keys = [...params.keys()].sort((a, b) => {
    const ia = ORDER.indexOf(a);
    const ib = ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });
  // Commas and slashes stay readable in the hash.
  const enc = (s) => encodeURIComponent(s).replace(/%2C/gi, ',').replace(/%2F/gi, '/');
  return keys.map((k) => `${enc(k)}=${enc(params.get(k))}`).join('&');
}

/** The view stored in the current hash; missing parts are null. */
export function readViewState(hash = window.location.hash) {
  const params = parse(hash);
  let center = null;
  let zoom = null;
  const mapParts = (params.get('map') || '').split('/').map(Number);
  if (mapParts.length === 3 && mapParts.every(Number.isFinite)) {
    [zoom] = mapParts;
    center = [mapParts[2], mapParts[1]];
  }
  const layers = params.has('layers') ? params.get('layers').split(',').filter(Boolean) : null;
  return {
    center,
    zoom,
    layers,
    basemap: params.get('basemap') || null,
    lang: params.get('lang') || null,
    chief: params.get('chief') || null,
  };
}

/**
 * Merges `changes` into the hash without adding a history entry. Keys: center+zoom, layers
 * (array), basemap, lang, chief; a null value removes the key.
 */
export function writeViewState(changes) {
  const params = parse(window.location.hash);
  if (changes.center && changes.zoom != null) {
    const [lng, lat] = changes.center;
    params.set('map', `${changes.zoom.toFixed(2)}/${lat.toFixed(5)}/${lng.toFixed(5)}`);
  }
  for (const key of ['layers', 'basemap', 'lang', 'chief']) {
    if (!(key in changes)) continue;
    const value = changes[key];
    if (value === null || value === undefined) params.delete(key);
    else params.set(key, Array.isArray(value) ? value.join(',') : String(value));
  }
  const next = `#${serialize(params)}`;
  if (next !== window.location.hash) {
    window.history.replaceState(window.history.state, '', `${window.location.pathname}${window.location.search}${next}`);
  }
}
