// The shareable view lives in the URL hash:
//   #map=ZOOM/LAT/LON&layers=redline,river&opacity=redline:40,landcover:25&basemap=none&lang=en&chief=12
// (`opacity` lists, in percent, only the layers and rasters not at their default opacity).
// Unknown keys are kept, so other deep links survive a map move.

const ORDER = ['map', 'layers', 'opacity', 'basemap', 'lang', 'chief'];

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
  // Commas, slashes and colons stay readable in the hash.
  const enc = (s) => encodeURIComponent(s).replace(/%2C/gi, ',').replace(/%2F/gi, '/').replace(/%3A/gi, ':');
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
  let opacity = null;
  if (params.has('opacity')) {
    opacity = {};
    for (const item of params.get('opacity').split(',')) {
      const [id, percent] = item.split(':');
      const value = Number(percent);
      if (id && percent !== undefined && Number.isFinite(value)) opacity[id] = Math.max(0, Math.min(100, value)) / 100;
    }
  }
  return {
    center,
    zoom,
    layers,
    opacity,
    basemap: params.get('basemap') || null,
    lang: params.get('lang') || null,
    chief: params.get('chief') || null,
  };
}

/**
 * Merges `changes` into the hash without adding a history entry. Keys: center+zoom, layers
 * (array), opacity ({id: 0..1}), basemap, lang, chief; a null value (or no opacity) removes the key.
 */
export function writeViewState(changes) {
  const params = parse(window.location.hash);
  if (changes.center && changes.zoom != null) {
    const [lng, lat] = changes.center;
    params.set('map', `${changes.zoom.toFixed(2)}/${lat.toFixed(5)}/${lng.toFixed(5)}`);
  }
  if ('opacity' in changes) {
    const entries = Object.entries(changes.opacity || {});
    if (entries.length) params.set('opacity', entries.map(([id, v]) => `${id}:${Math.round(v * 100)}`).join(','));
    else params.delete('opacity');
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
