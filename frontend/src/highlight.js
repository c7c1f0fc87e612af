// Highlights features of the "ecomap" vector source by catalog layer and feature id, without
// needing their geometry: each channel (search result, zone-check overlaps, a chief's
// jurisdiction, an upstream trace) gets filtered overlay layers on the same tiles.

const CHANNELS = {
  selection: { color: '#00e5ff', width: 4 },
  zone: { color: '#ff00c8', width: 3.5 },
  chief: { color: '#ffb300', width: 3.5 },
  upstream: { color: '#7c4dff', width: 5 },
};

const SOURCE = 'ecomap';

function featureIdValue(id) {
  const n = Number(id);
  return Number.isFinite(n) && String(id).trim() !== '' ? n : id;
}

/** Creates the highlighter; `catalog` maps layer id -> catalog layer (for geometry types). */
export function createHighlighter(map, catalog) {
  /** channel -> Map(layer id -> [feature ids]) */
  const active = new Map();

  const layerIds = (channel, layer) => [`hl-${channel}-${layer}-line`, `hl-${channel}-${layer}-circle`];

  /** Adds the overlay layers of one channel/catalog layer, just below the first label layer. */
  function ensureLayers(channel, layer) {
    const [lineId, circleId] = layerIds(channel, layer);
    if (map.getLayer(lineId)) return;
    const { color, width } = CHANNELS[channel];
    const beforeId = map.getStyle().layers.find((l) => l.type === 'symbol' || l.id.startsWith('zone-input'))?.id;
    const isPoint = /Point/.test(catalog.get(layer)?.geometry_type || '');
    const empty = ['in', ['id'], ['literal', []]];
    map.addLayer(
      {
        id: lineId,
        type: 'line',
        source: SOURCE,
        'source-layer': layer,
        filter: empty,
        layout: { 'line-join': 'round', 'line-cap': 'round', visibility: isPoint ? 'none' : 'visible' },
        paint: { 'line-color': color, 'line-width': width, 'line-opacity': 0.95 },
        metadata: { 'ecomap:highlight': channel },
      },
      beforeId,
    );
    map.addLayer(
      {
        id: circleId,
        type: 'circle',
        source: SOURCE,
        'source-layer': layer,
        filter: ['all', ['==', ['geometry-type'], 'Point'], empty],
        layout: { visibility: isPoint ? 'visible' : 'none' },
        paint: {
          'circle-radius': 11,
          'circle-color': 'rgba(0,0,0,0)',
          'circle-stroke-color': color,
          'circle-stroke-width': 3,
        },
        metadata: { 'ecomap:highlight': channel },
      },
      beforeId,
    );
  }

  function apply(channel) {
    const byLayer = active.get(channel) || new Map();
    for (const layer of catalog.keys()) {
      const ids = byLayer.get(layer) || [];
      if (!ids.length && !map.getLayer(layerIds(channel, layer)[0])) continue;
      ensureLayers(channel, layer);
      const match = ['in', ['id'], ['literal', ids]];
      const [lineId, circleId] = layerIds(channel, layer);
      map.setFilter(lineId, match);
      map.setFilter(circleId, ['all', ['==', ['geometry-type'], 'Point'], match]);
    }
  }

  return {
    /** Highlights exactly these features ([{layer, id}]) in `channel`. */
    set(channel, features) {
      const byLayer = new Map();
      for (const { layer, id } of features) {
        if (!catalog.has(layer) || id === null || id === undefined) continue;
        if (!byLayer.has(layer)) byLayer.set(layer, []);
        byLayer.get(layer).push(featureIdValue(id));
      }
      active.set(channel, byLayer);
      apply(channel);
    },
    clear(channel) {
      active.delete(channel);
      apply(channel);
    },
    /** The features currently highlighted in a channel, as [{layer, id}]. */
    get(channel) {
      const out = [];
      for (const [layer, ids] of active.get(channel) || []) for (const id of ids) out.push({ layer, id });
      return out;
    },
  };
}
