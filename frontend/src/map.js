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
export const CJK_FONTS = [
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
 * Resolves once the style has loaded (before the first tiles are drawn).
 */
export function createMap({ container, style, view }) {
  const prepared = structuredClone(style);
  addZoneInputLayers(prepared);
  const map = new maplibregl.Map({
    container,
    style: prepared,
    ...initialCamera(prepared, view),
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
  map.once('idle', () => performance.mark('ecomap:first-idle'));
  map.once('load', () => {
    performance.mark('ecomap:load');
    // Start with the compact attribution folded: it covers the scale bar on phones.
    map.getContainer().querySelector('.maplibregl-ctrl-attrib')?.classList.remove('maplibregl-compact-show');
  });
  // Resolves once the style is in (not at 'load', the first complete render): the basemap, labels
  // and work layers the app adds then load with the service's tiles in one round instead of after them.
  return new Promise((resolve, reject) => {
    let ready = false;
    map.once('style.load', () => {
      ready = true;
      resolve(map);
    });
    map.once('error', (event) => {
      if (!ready) reject(event.error);
    });
  });
}

/**
 * Shows the longitude/latitude under the cursor (or the map centre on touch screens and when
 * the pointer is off the map) and the exact zoom, in a control beside the attribution so it
 * never sits over a popup. The position under a resting cursor follows the map while it flies.
 */
export function setupCoordinates(map, element) {
  let pointer = null; // the cursor's pixel on the map, while it is over it
  const render = () => {
    const at = pointer ? map.unproject(pointer) : map.getCenter();
    element.textContent =
      `${t('coordinates')} ${at.lng.toFixed(5)}°E, ${at.lat.toFixed(5)}°N · ` +
      `${t('zoom')} ${formatNumber(map.getZoom(), 2, 2)}`;
  };
  map.on('mousemove', (event) => {
    if (!matchMedia('(hover: hover)').matches) return;
    pointer = event.point;
    render();
  });
  map.getCanvas().addEventListener('mouseleave', () => {
    pointer = null;
    render();
  });
  map.on('move', render);
  map.on('moveend', render);
  map.addControl(
    {
      onAdd: () => element,
      onRemove: () => element.remove(),
    },
    'bottom-right',
  );
  element.classList.add('maplibregl-ctrl');
  render();
  return { render };
}

/** Pixels at the bottom of the map hidden by the phone's bottom sheet (0 elsewhere). */
let bottomOcclusion = () => 0;

/** Tells fitBbox how much of the map's bottom the panel covers (a function giving pixels). */
export function setBottomOcclusion(fn) {
  bottomOcclusion = fn;
}

/** The initial view: the hash's, else the region's bounds (the style source's), else the style's centre. */
export function initialCamera(style, view) {
  if (view.center && view.zoom != null) return { center: view.center, zoom: view.zoom };
  const bounds = Object.values(style.sources || {}).find((s) => Array.isArray(s.bounds))?.bounds;
  if (bounds && bounds.length === 4 && bounds.every(Number.isFinite)) {
    return { bounds: [[bounds[0], bounds[1]], [bounds[2], bounds[3]]], fitBoundsOptions: { padding: 16 } };
  }
  return { center: style.center || XIAMEN_CENTER, zoom: style.zoom ?? XIAMEN_ZOOM };
}

/**
 * Puts MapLibre's own strings (scale bar units, control tooltips) into the current language
 * after a switch: the scale bar reads them at each redraw, the buttons' labels are set here.
 */
export function applyMapLocale(map) {
  const locale = mapLocale();
  Object.assign(map._locale, locale);
  const container = map.getContainer();
  const label = (selector, key) => {
    for (const el of container.querySelectorAll(selector)) {
      el.title = locale[key];
      el.setAttribute('aria-label', locale[key]);
    }
  };
  label('.maplibregl-ctrl-zoom-in', 'NavigationControl.ZoomIn');
  label('.maplibregl-ctrl-zoom-out', 'NavigationControl.ZoomOut');
  label('.maplibregl-ctrl-attrib-button', 'AttributionControl.ToggleAttribution');
  label('.maplibregl-popup-close-button', 'Popup.Close');
  container.querySelector('.maplibregl-canvas')?.setAttribute('aria-label', locale['Map.Title']);
  map.fire('move'); // the scale bar redraws with the new units
}

/** Fits a [minx, miny, maxx, maxy] box (zooming in no further than `maxZoom`). */
export function fitBbox(map, bbox, { maxZoom = 15, padding = 60 } = {}) {
  if (!bbox || bbox.length < 4 || !bbox.every(Number.isFinite)) return;
  const [minx, miny, maxx, maxy] = bbox;
  const container = map.getContainer();
  const covered = Math.min(bottomOcclusion(), container.clientHeight * 0.7);
  const pad = Math.min(padding, container.clientWidth / 6, (container.clientHeight - covered) / 6);
  const paddingBox = { top: pad, left: pad, right: pad, bottom: pad + covered };
  if (minx === maxx && miny === maxy) {
    map.flyTo({
      center: [minx, miny],
      zoom: Math.max(map.getZoom(), Math.min(maxZoom, 14)),
      offset: [0, -covered / 2],
    });
    return;
  }
  map.fitBounds(
    [
      [minx, miny],
      [maxx, maxy],
    ],
    { padding: paddingBox, maxZoom, duration: 800 },
  );
}
