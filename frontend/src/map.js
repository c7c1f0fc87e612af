// The MapLibre map: built from the service's style, with controls, the cursor coordinates and
// the helpers other modules use to find the style layers of a catalog layer.

import * as maplibregl from 'maplibre-gl';
import workerUrl from 'maplibre-gl/dist/maplibre-gl-worker.mjs?url';
import 'maplibre-gl/dist/maplibre-gl.css';
import { formatNumber, mapLocale, t } from './i18n.js';

// Bundled, the worker is no longer next to maplibre's module: point it at the copied file.
maplibregl.setWorkerUrl(workerUrl);

export const XIAMEN_CENTER = [118.1, 24.6];
export const XIAMEN_ZOOM = 10;

// Chinese characters are drawn with a local CJK font, so no CJK glyph PBFs are needed.
const CJK_FONTS = [
  'Noto Sans CJK SC',
  'Noto Sans SC',
  'Source Han Sans SC',
  'PingFang SC',
  'Microsoft YaHei',
  'WenQuanYi Micro Hei',
  'sans-serif',
].join(', ');

/** The catalog layer id a style layer draws, from its `ecomap:layer` metadata. */
export function catalogLayerOf(styleLayer) {
  return styleLayer?.metadata?.['ecomap:layer'] ?? null;
}

/** The style layers (objects) drawing catalog layer `layerId`, in style order. */
export function styleLayersOf(map, layerId) {
  return map.getStyle().layers.filter((l) => catalogLayerOf(l) === layerId);
}

/** Ids of the style layers a pointer can pick features from (fills, lines, circles). */
export function interactiveLayerIds(map) {
  return map
    .getStyle()
    .layers.filter((l) => catalogLayerOf(l) && ['fill', 'line', 'circle'].includes(l.type))
    .map((l) => l.id);
}

/** Adds the GeoJSON source + layers that show the zone-check input (point, drawn polygon, file). */
function addZoneInputLayers(style) {
  style.sources['zone-input'] = { type: 'geojson', data: { type: 'FeatureCollection', features: [] } };
  const polygons = ['match', ['geometry-type'], ['Polygon', 'MultiPolygon'], true, false];
  style.layers.push(
    {
      id: 'zone-input-fill',
      type: 'fill',
      source: 'zone-input',
      filter: polygons,
      paint: { 'fill-color': '#ff6f00', 'fill-opacity': 0.18 },
    },
    {
      id: 'zone-input-line',
      type: 'line',
      source: 'zone-input',
      filter: ['!=', ['geometry-type'], 'Point'],
      paint: { 'line-color': '#e65100', 'line-width': 2.5, 'line-dasharray': [2, 1] },
    },
    {
      id: 'zone-input-point',
      type: 'circle',
      source: 'zone-input',
      filter: ['==', ['geometry-type'], 'Point'],
      paint: {
        'circle-radius': ['case', ['boolean', ['get', 'vertex'], false], 4, 7],
        'circle-color': '#ff6f00',
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': 2,
      },
    },
  );
}

/**
 * Creates the map from the service style (a parsed style object) at `view` ({center, zoom}).
 * Resolves once the style has loaded.
 */
export function createMap({ container, style, view }) {
  const prepared = structuredClone(style);
  addZoneInputLayers(prepared);
  const map = new maplibregl.Map({
    container,
    style: prepared,
    center: view.center || prepared.center || XIAMEN_CENTER,
    zoom: view.zoom ?? prepared.zoom ?? XIAMEN_ZOOM,
    localIdeographFontFamily: CJK_FONTS,
    attributionControl: { compact: true },
    locale: mapLocale(),
    maxPitch: 0,
    dragRotate: false,
    cooperativeGestures: false,
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric', maxWidth: 120 }), 'bottom-left');
  window.ecomapMap = map;
  // Timing marks for bench/frontend_bench.py: first complete render.
  map.once('load', () => performance.mark('ecomap:load'));
  map.once('idle', () => performance.mark('ecomap:first-idle'));
  return new Promise((resolve, reject) => {
    map.once('load', () => {
      // Start with the compact attribution folded: it covers the scale bar on phones.
      map.getContainer().querySelector('.maplibregl-ctrl-attrib')?.classList.remove('maplibregl-compact-show');
      resolve(map);
    });
    map.once('error', (event) => {
      if (!map.loaded()) reject(event.error);
    });
  });
}

/** Shows the longitude/latitude under the cursor (or map centre on touch) and the zoom. */
export function setupCoordinates(map, element) {
  let last = map.getCenter();
  const render = () => {
    element.textContent =
      `${t('coordinates')} ${last.lng.toFixed(5)}°E, ${last.lat.toFixed(5)}°N · ` +
      `${t('zoom')} ${formatNumber(map.getZoom(), 1)}`;
  };
  map.on('mousemove', (event) => {
    last = event.lngLat;
    render();
  });
  map.on('moveend', () => {
    if (!matchMedia('(hover: hover)').matches) last = map.getCenter();
    render();
  });
  render();
  return { render };
}

/** Fits a [minx, miny, maxx, maxy] box (zooming in no further than `maxZoom`). */
export function fitBbox(map, bbox, { maxZoom = 15, padding = 60 } = {}) {
  if (!bbox || bbox.length < 4 || !bbox.every(Number.isFinite)) return;
  const [minx, miny, maxx, maxy] = bbox;
  const pad = Math.min(padding, map.getContainer().clientWidth / 6, map.getContainer().clientHeight / 6);
  if (minx === maxx && miny === maxy) {
    map.flyTo({ center: [minx, miny], zoom: Math.max(map.getZoom(), Math.min(maxZoom, 14)) });
    return;
  }
  map.fitBounds(
    [
      [minx, miny],
      [maxx, maxy],
    ],
    { padding: pad, maxZoom, duration: 800 },
  );
}
