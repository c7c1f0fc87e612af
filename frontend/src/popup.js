// Feature popups: click a feature to see its attributes, titled in the current language.
// Hovering a feature highlights it through feature-state (the style reacts to `hover`).

import * as maplibregl from 'maplibre-gl';
import { catalogLayerOf, interactiveLayerIds } from './map.js';
import { codeLabel, formatNumber, onLangChange, pick, t } from './i18n.js';
import { api } from './api.js';
import { landSummary, pointValues } from './land-stats.js';
import { remoteSourceText } from './remote.js';
import { h } from './ui.js';
import { hasWaterFile, loadStationChart, sparkline, statusRows, waterFileLink } from './water-status.js';

const SOURCE = 'ecomap';
const MAX_FEATURES = 4;
const STATS_CACHE_SIZE = 50;

/** True for a layer whose features have an area, so the service can measure the land they cover. */
export function isPolygonLayer(layer) {
  return layer?.geometry_type === 'Polygon' || layer?.geometry_type === 'MultiPolygon';
}

/** A feature's display name: the catalog's name property, English name in English if present. */
export function featureName(layer, properties, lang) {
  if (lang === 'en' && properties.name_en) return properties.name_en;
  const key = layer?.name_property || 'name';
  return properties[key] ?? properties.name ?? properties.name_zh ?? '';
}

/** The display name of a referenced feature (a segment's `name segment`), in `lang`. */
export function referenceName(layer, properties, lang) {
  const name = featureName(layer, properties, lang);
  return properties.segment ? `${name} ${properties.segment}` : name;
}

/** A cell value; `names` maps "layer/id" to the referenced feature's properties (missing: still
 * loading, null: unknown or not readable, so the row is left out rather than showing a raw id). */
function formatValue(property, value, names, catalog, lang) {
  if (value === null || value === undefined || value === '') return null;
  if (property.references) {
    const key = `${property.references}/${Number(value)}`;
    if (!names?.has(key)) return '…';
    const target = names.get(key);
    return target ? referenceName(catalog.get(property.references), target, lang) || null : null;
  }
  if (property.type === 'boolean') return value === true || value === 'true' ? t('yes') : t('no');
  if (property.type === 'number') return formatNumber(value, 2);
  return codeLabel(property, value);
}

/** The popup body for a list of rendered features (top-most first), and the visible rasters'
 * values at the clicked point (`here`, from GET /api/rasters/values) when there are some. */
export function popupContent(features, catalog, lang, here = null, names = null) {
  const sections = features.map((feature, index) => {
    const layer = catalog.get(feature.layerId);
    const props = feature.properties || {};
    const rows = statusRows(feature.layerId, props);
    for (const property of layer?.properties || []) {
      if (property.name === 'is_sample' || property.name === 'name_en') continue;
      const value = formatValue(property, props[property.name], names, catalog, lang);
      if (value === null) continue;
      rows.push(h('tr', {}, h('th', { scope: 'row' }, pick(property.title)), h('td', {}, value)));
    }
    const sample = props.is_sample === true || props.is_sample === 'true' || (layer?.sample_data && props.is_sample == null);
    return h(
      'section',
      { class: 'popup-feature', 'data-layer': feature.layerId, 'data-id': feature.id },
      h(
        'header',
        {},
        h(
          'div',
          { class: 'popup-layer' },
          features.length > 1 ? h('span', { class: 'popup-index' }, `${index + 1}/${features.length} · `) : null,
          pick(layer?.title) || feature.layerId,
        ),
        h('h3', { class: 'popup-name' }, featureName(layer, props, lang) || `#${feature.id}`),
        sample ? h('span', { class: 'badge badge-sample', title: t('sampleBadgeTitle') }, t('sampleBadge')) : null,
        layer?.remote ? h('p', { class: 'popup-source muted', title: layer.remote.url }, remoteSourceText(layer)) : null,
      ),
      feature.fileLink && hasWaterFile(feature.layerId) && feature.id !== undefined ? waterFileLink(feature.layerId, feature.id) : null,
      feature.chart ? sparkline(feature.chart) : null,
      rows.length ? h('table', { class: 'attr-table' }, h('tbody', {}, rows)) : null,
      feature.stats ? landSummary(feature.stats) : null,
    );
  });
  const label = features.length ? t('featureCount', { n: features.length }) : t('popupHere');
  // Several features under the click: say how many before listing them.
  const count = features.length > 1 ? h('p', { class: 'popup-count', id: 'popup-count' }, t('popupCount', { n: features.length })) : null;
  return h('div', { class: 'popup-body', role: 'dialog', 'aria-label': label }, count, sections, here ? pointValues(here) : null);
}

/**
 * Wires hover highlighting and click popups. `isClickCaptured(event?)` lets a tool (zone check)
 * or an overlay with popups of its own (the work layers) take map clicks for itself; `getVisibleRasters()` lists the raster layers shown, whose values
 * at the clicked point the popup adds. Returns {showAt(lngLat, features), close()}.
 */
export function setupFeatureInteraction(
  map,
  catalog,
  { isClickCaptured, getLang, getVisibleRasters = () => [], canReadFiles = () => false },
) {
  let hovered = null;
  const popup = new maplibregl.Popup({ maxWidth: '340px', focusAfterOpen: false, className: 'ecomap-popup' });
  let popupFeatures = null;
  let popupHere = null;
  let hereRequest = null;

  const setHover = (feature) => {
    if (hovered && (!feature || hovered.id !== feature.id || hovered.sourceLayer !== feature.sourceLayer)) {
      map.setFeatureState({ source: SOURCE, sourceLayer: hovered.sourceLayer, id: hovered.id }, { hover: false });
      hovered = null;
    }
    if (feature && feature.id !== undefined && !hovered) {
      hovered = { id: feature.id, sourceLayer: feature.sourceLayer };
      map.setFeatureState({ source: SOURCE, sourceLayer: hovered.sourceLayer, id: hovered.id }, { hover: true });
    }
  };

  const pickFeatures = (point, tolerance) => {
    const box = [
      [point.x - tolerance, point.y - tolerance],
      [point.x + tolerance, point.y + tolerance],
    ];
    const layers = interactiveLayerIds(map).filter((id) => map.getLayoutProperty(id, 'visibility') !== 'none');
    const seen = new Set();
    const out = [];
    for (const feature of map.queryRenderedFeatures(box, { layers })) {
      const layerId = catalogLayerOf(feature.layer);
      const key = `${layerId}/${feature.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ layerId, id: feature.id, sourceLayer: feature.sourceLayer, properties: feature.properties });
    }
    return out;
  };

  map.on('mousemove', (event) => {
    if (isClickCaptured()) {
      setHover(null);
      return;
    }
    const [top] = pickFeatures(event.point, 3);
    setHover(top || null);
    map.getCanvas().style.cursor = top ? 'pointer' : '';
  });
  map.getCanvas().addEventListener('mouseleave', () => setHover(null));

  // Pan the map so the whole popup is on screen (MapLibre places it at the feature even when
  // it then overflows the edge, e.g. after a tap near the side of a phone screen).
  const keepInView = () =>
    requestAnimationFrame(() => {
      const element = popup.getElement();
      if (!popup.isOpen() || !element) return;
      const box = element.getBoundingClientRect();
      const frame = map.getContainer().getBoundingClientRect();
      const margin = 8;
      const shift = (low, high, frameLow, frameHigh) => {
        if (low < frameLow + margin) return low - frameLow - margin;
        if (high > frameHigh - margin) return Math.min(high - frameHigh + margin, low - frameLow - margin);
        return 0;
      };
      const dx = shift(box.left, box.right, frame.left, frame.right);
      const dy = shift(box.top, box.bottom, frame.top, frame.bottom);
      if (dx || dy) map.panBy([dx, dy], { duration: 200 });
    });

  const render = () => {
    popup.setDOMContent(popupContent(popupFeatures, catalog, getLang(), popupHere, names));
    keepInView();
  };

  // Names of the features that id properties refer to (所在河段, 下游河段, 所属流域): fetched once
  // per feature, through the public API, so only what the caller may read is named.
  const names = new Map();
  const resolveReferences = async (features) => {
    const wanted = new Map(); // layer -> Set(ids)
    for (const feature of features) {
      for (const property of catalog.get(feature.layerId)?.properties || []) {
        const value = feature.properties?.[property.name];
        if (!property.references || value === null || value === undefined || value === '') continue;
        const key = `${property.references}/${Number(value)}`;
        if (names.has(key)) continue;
        if (!wanted.has(property.references)) wanted.set(property.references, new Set());
        wanted.get(property.references).add(Number(value));
      }
    }
    await Promise.all(
      [...wanted].map(async ([layerId, idSet]) => {
        const ids = [...idSet];
        const layer = catalog.get(layerId);
        if (!layer) {
          for (const id of ids) names.set(`${layerId}/${id}`, null);
          return;
        }
        const fields = [layer.name_property || 'name', 'name_en', 'segment'].filter((p) =>
          (layer.properties || []).some((prop) => prop.name === p),
        );
        try {
          const answer = await api.featureNames(layerId, ids, fields);
          for (const id of ids) names.set(`${layerId}/${id}`, null);
          for (const feature of answer.features || []) {
            names.set(`${layerId}/${Number(feature.id)}`, feature.properties || {});
          }
        } catch {
          for (const id of ids) names.set(`${layerId}/${id}`, null);
        }
      }),
    );
    if (names.size > 500) names.clear();
    if (popup.isOpen() && popupFeatures === features) render();
  };

  // Low-zoom tiles carry only the attributes needed to draw; fetch the rest by feature id.
  const completeAttributes = async (features) => {
    await Promise.all(
      features.map(async (feature) => {
        const layer = catalog.get(feature.layerId);
        // Remote layers' tiles carry every kept property (and the OGC routes serve our own layers only).
        if (feature.id === undefined || feature.complete || !layer || layer.remote) return;
        try {
          const full = await api.feature(feature.layerId, feature.id);
          feature.properties = { ...feature.properties, ...(full.properties || {}) };
          feature.complete = true;
        } catch {
          // Keep what the tile had: the popup still shows the drawn attributes.
        }
      }),
    );
    if (popup.isOpen() && popupFeatures === features) render();
    resolveReferences(features);
  };

  // The land a polygon covers (land cover, elevation, slope): measured by the service on demand,
  // so fetched after the popup opens; kept for a while so clicking the same feature again is free.
  const statsCache = new Map();
  const loadStats = async (features) => {
    await Promise.all(
      features.map(async (feature) => {
        const layer = catalog.get(feature.layerId);
        // Remote layers (partners' copies) are not measured here: the stats route reads our own layers.
        if (feature.id === undefined || feature.stats !== undefined || !isPolygonLayer(layer) || layer?.remote) return;
        const key = `${feature.layerId}/${feature.id}`;
        if (!statsCache.has(key)) {
          // A failure (no such endpoint, a feature too large to measure) just leaves the section out.
          const request = api.featureStats(feature.layerId, feature.id).catch(() => {
            statsCache.delete(key); // try again next time: the failure may pass
            return null;
          });
          statsCache.set(key, request);
          if (statsCache.size > STATS_CACHE_SIZE) statsCache.delete(statsCache.keys().next().value);
        }
        feature.stats = await statsCache.get(key);
      }),
    );
    if (popup.isOpen() && popupFeatures === features) render();
  };

  // The visible rasters' values at the clicked point (land-cover class, elevation, slope).
  const loadHere = async (lngLat, features, rasters) => {
    hereRequest?.abort();
    if (!rasters.length) return;
    hereRequest = new AbortController();
    try {
      const answer = await api.rasterValues(lngLat.lng.toFixed(6), lngLat.lat.toFixed(6), rasters, {
        signal: hereRequest.signal,
      });
      if (popup.isOpen() && popupFeatures === features) {
        popupHere = answer;
        render();
      }
    } catch {
      // Leave the section out: the features (if any) are what was asked for.
    }
  };

  // A station's last days as a small chart (its series API); left out when it cannot be had.
  const loadCharts = async (features) => {
    await Promise.all(
      features.map(async (feature) => {
        if (feature.layerId !== 'station' || feature.id === undefined || feature.chart !== undefined) return;
        feature.chart = await loadStationChart(feature.id).catch(() => null);
      }),
    );
    if (popup.isOpen() && popupFeatures === features) render();
  };

  const show = (lngLat, features, rasters = getVisibleRasters()) => {
    for (const feature of features) feature.fileLink = canReadFiles();
    popupFeatures = features;
    popupHere = null;
    popup.setLngLat(lngLat);
    popup.addTo(map);
    render();
    completeAttributes(features);
    loadStats(features);
    loadCharts(features);
    loadHere(lngLat, features, rasters);
  };

  map.on('click', (event) => {
    if (isClickCaptured(event)) return;
    // Points and lines are hard to hit with a finger: search a wider box on touch screens.
    const tolerance = matchMedia('(pointer: coarse)').matches ? 10 : 4;
    let features = pickFeatures(event.point, tolerance);
    // Districts cover all land: list them only when nothing more specific was hit.
    const specific = features.filter((f) => catalog.get(f.layerId)?.group !== 'admin');
    if (specific.length) features = specific;
    features = features.slice(0, MAX_FEATURES);
    const rasters = getVisibleRasters();
    if (!features.length && !rasters.length) {
      popup.remove();
      return;
    }
    show(event.lngLat, features, rasters);
  });

  onLangChange(() => {
    if (popup.isOpen() && popupFeatures) render();
  });

  return {
    showAt: show,
    close: () => popup.remove(),
  };
}
