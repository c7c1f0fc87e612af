// Draws one catalog layer from its own tiles with query parameters (a CQL2 `filter` from the
// attribute table, `asof` from the red-line timeline): copies of the layer's style layers on a
// source `/tiles/<layer>/{z}/{x}/{y}.pbf?…`, the originals emptied by a filter meanwhile (their
// visibility stays with the layer control, which reaches the copies too). Each caller owns one
// key of the parameters, so the table's filter and the timeline's date combine.

import { styleLayersOf } from './map.js';

const params = new Map(); // layer id -> {key: value}
const savedFilters = new Map(); // original style layer id -> its filter
const NOTHING = ['==', ['id'], -1];

const sourceId = (layerId) => `override-${layerId}`;

function tilesUrl(map, layerId, query) {
  const template = map.getSource('ecomap').tiles[0];
  const url = template.replace(/\/tiles\/[^/]+\//, `/tiles/${encodeURIComponent(layerId)}/`);
  return `${url}?${new URLSearchParams(query).toString()}`;
}

/** The parameters a layer is drawn with now ({} = the plain tiles). */
export function layerParams(layerId) {
  return { ...(params.get(layerId) || {}) };
}

/** Sets (or, with a null or empty value, clears) one parameter of a layer's tiles and redraws it. */
export function setLayerParam(map, layerId, key, value) {
  const current = layerParams(layerId);
  if (value === null || value === undefined || value === '') delete current[key];
  else current[key] = value;
  params.set(layerId, current);
  const layers = map.getStyle().layers;
  for (const layer of layers) if (layer.source === sourceId(layerId)) map.removeLayer(layer.id);
  if (map.getSource(sourceId(layerId))) map.removeSource(sourceId(layerId));
  const originals = styleLayersOf(map, layerId).filter((l) => l.source === 'ecomap');
  const active = Object.keys(current).length > 0;
  for (const layer of originals) {
    if (!savedFilters.has(layer.id)) savedFilters.set(layer.id, layer.filter ?? null);
    // `undefined` for a layer without a filter: MapLibre takes `null` for a change and reloads its tiles.
    map.setFilter(layer.id, active ? NOTHING : (savedFilters.get(layer.id) ?? undefined));
  }
  if (!active) return;
  const source = map.getSource('ecomap');
  map.addSource(sourceId(layerId), {
    type: 'vector',
    tiles: [tilesUrl(map, layerId, current)],
    minzoom: source.minzoom,
    maxzoom: source.maxzoom,
  });
  for (const layer of originals) {
    const order = map.getStyle().layers;
    const beforeId = order[order.findIndex((l) => l.id === layer.id) + 1]?.id;
    const copy = { ...layer, id: `${layer.id}--override`, source: sourceId(layerId) };
    const filter = savedFilters.get(layer.id);
    if (filter) copy.filter = filter;
    else delete copy.filter;
    map.addLayer(copy, beforeId);
  }
}
