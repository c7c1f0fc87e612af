// The service's public HTTP API, and nothing else: every request of the UI goes through here.
// Paths are relative so the UI works wherever the service mounts it.

/** An API call that failed; `status` is 0 when the service could not be reached at all. */
export class ApiError extends Error {
  constructor(message, status, url) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.url = url;
  }

  /** True when the endpoint does not exist (yet) on this service. */
  get missing() {
    return this.status === 404 || this.status === 405 || this.status === 501;
  }
}

/** Turns FastAPI's `detail` (a string or a list of validation errors) into one sentence. */
function detailText(detail) {
  if (!detail) return '';
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).join('.')}: ${d.msg}` : JSON.stringify(d))).join('; ');
  }
  return JSON.stringify(detail);
}

async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(`network error (${err.message})`, 0, path);
  }
  if (!response.ok) {
    let detail = '';
    try {
      detail = detailText((await response.json()).detail);
    } catch {
      // Not a JSON error body; the status line says enough.
    }
    const status = `HTTP ${response.status}`;
    throw new ApiError(detail ? `${detail} (${status})` : status, response.status, path);
  }
  return response;
}

async function getJSON(path, options) {
  return (await request(path, options)).json();
}

/** Body of a zone-check request: JSON for a geometry, multipart for an uploaded file. */
function zoneCheckBody({ geometry, file, bufferM = 0 }) {
  if (file) {
    const form = new FormData();
    form.append('file', file, file.name);
    form.append('buffer_m', String(bufferM));
    return { method: 'POST', body: form };
  }
  return {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ geometry, buffer_m: bufferM, crs: 'EPSG:4326' }),
  };
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Headers of a cookie-session write: the CSRF token is the value of the readable ecomap_csrf cookie. */
export function csrfHeaders() {
  const match = document.cookie.match(/(?:^|;\s*)ecomap_csrf=([^;]*)/);
  return match ? { 'X-CSRF-Token': decodeURIComponent(match[1]) } : {};
}

export const api = {
  /** Who the browser is signed in as (`kind: "anonymous"` when not). */
  me: () => getJSON('api/auth/me'),
  /** Password sign-in for the browser: the service sets httpOnly session cookies. */
  signIn: (username, password) =>
    getJSON('api/auth/session', { method: 'POST', body: new URLSearchParams({ username, password }) }),
  /** Renews the session cookies with the refresh cookie (the access cookie lives minutes). */
  refreshSession: () => getJSON('api/auth/refresh', { method: 'POST', headers: csrfHeaders() }),
  signOut: () => request('api/auth/logout', { method: 'POST', headers: csrfHeaders() }),
  /** Whether the browser holds a session's cookies at all (ecomap_csrf lives as long as the session). */
  hasSessionCookie: () => 'X-CSRF-Token' in csrfHeaders(),
  layers: () => getJSON('api/layers'),
  style: () => getJSON('styles/default.json'),
  config: () => getJSON('api/config'),
  /** Raster layers (land cover, terrain): legends and TileJSON URLs. */
  rasters: () => getJSON('api/rasters'),
  search: (q, { limit = 10, signal } = {}) => getJSON(`api/search${query({ q, limit })}`, { signal }),
  zoneCheck: (input) => getJSON('api/zone-check', zoneCheckBody(input)),
  zoneCheckReport: async (input) => (await request('api/zone-check/report', zoneCheckBody(input))).blob(),
  /** What the zone-check report says (its words in both languages), for the printed sheet. */
  zoneCheckReportData: (input) => getJSON('api/zone-check/report?f=json', zoneCheckBody(input)),
  chiefs: (filters = {}) => getJSON(`api/chiefs${query(filters)}`),
  /** Gazetteer places for the basemap's labels (GeoJSON points with their label minzoom). */
  places: (filters = {}) => getJSON(`api/places${query(filters)}`),
  chief: (id) => getJSON(`api/chiefs/${encodeURIComponent(id)}`),
  /** The cross-boundary sections between cities with this month's status (GeoJSON). */
  regionSections: (month) => getJSON(`api/region/sections${query({ month })}`),
  upstream: (riverId) => getJSON(`api/rivers/${encodeURIComponent(riverId)}/upstream`),
  /** A station's latest values with its class or AQI. */
  stationLatest: (id) => getJSON(`api/stations/${encodeURIComponent(id)}/latest`),
  /** Daily (or hourly / monthly) values of one property of a station in [from, to). */
  stationSeries: (id, { property, from, to, step = 'day' }) =>
    getJSON(`api/stations/${encodeURIComponent(id)}/series${query({ property, from, to, step })}`),
  /** Alerts (a chief: those routed to them by default). */
  alerts: (filters = {}) => getJSON(`api/alerts${query(filters)}`),
  /** Issues with filters (chief_id, overdue, open, state…). */
  issues: (filters = {}) => getJSON(`api/issues${query(filters)}`),
  /** The same lists as GeoJSON for the map (`bbox`: the view): issues as points, alerts at their
   * stations, finished patrols' tracks. */
  issueFeatures: (filters = {}) => getJSON(`api/issues${query({ ...filters, f: 'geojson' })}`),
  alertFeatures: (filters = {}) => getJSON(`api/alerts${query({ ...filters, f: 'geojson' })}`),
  patrolFeatures: (filters = {}) => getJSON(`api/patrols${query({ ...filters, f: 'geojson' })}`),
  /** The printable page of the file of a river (one of its segments) or a bay: a link to open. */
  waterFileUrl: (layerId, id) => `api/${layerId === 'bay' ? 'bays' : 'rivers'}/${encodeURIComponent(id)}/file?f=html`,
  /** The assessment workbook of a period: a link to download. */
  assessmentUrl: (since, until) => `api/assessment${query({ since, until, f: 'xlsx' })}`,
  /** Land cover and terrain of one polygon feature (`land_cover`/`terrain`, each null without rasters). */
  featureStats: (layerId, id) => getJSON(`api/layers/${encodeURIComponent(layerId)}/${encodeURIComponent(id)}/stats`),
  /** Raster values (land-cover class, elevation, slope…) at a lon/lat point. */
  rasterValues: (lon, lat, rasters, { signal } = {}) =>
    getJSON(`api/rasters/values${query({ lon, lat, rasters: rasters.join(',') })}`, { signal }),
  /** The names of some features of a layer (ids), as GeoJSON features with only the name properties. */
  featureNames: (layerId, ids, properties) =>
    getJSON(
      `ogc/collections/${encodeURIComponent(layerId)}/items${query({
        filter: `id IN (${ids.map(Number).join(',')})`,
        properties: properties.join(','),
        limit: ids.length,
      })}`,
      { headers: { Accept: 'application/geo+json' } },
    ),
  /** One feature with all its attributes (tiles carry only some of them at low zooms). */
  feature: (layerId, id) =>
    getJSON(`ogc/collections/${encodeURIComponent(layerId)}/items/${encodeURIComponent(id)}`, {
      headers: { Accept: 'application/geo+json' },
    }),
};
