// The raster layers of `GET /api/rasters` (land cover, elevation, slope): each one a MapLibre
// raster source + layer from its TileJSON, off by default, added to the map the first time it is
// switched on. They are drawn above the basemap and the land fill of the offline map (the
// districts' translucent fill, which would otherwise wash them out) and below every other
// catalog layer, so red lines, rivers and the district borders stay readable on top.

const PREFIX = 'raster-';

/** The style layer id that draws raster `id`. */
export function rasterStyleLayerId(id) {
  return `${PREFIX}${id}`;
}

/** The raster id a style layer draws, from its `ecomap:raster` metadata. */
export function rasterOf(styleLayer) {
  return styleLayer?.metadata?.['ecomap:raster'] ?? null;
}

/**
 * The style layer new raster layers go below: the first catalog layer above the fills that paint
 * the land of the offline map (the admin group's area fills). `catalog`: Map of vector layer id ->
 * /api/layers entry.
 */
function insertionPoint(map, catalog) {
  for (const layer of map.getStyle().layers) {
    if (layer.type === 'background' || layer.id.startsWith('basemap-') || rasterOf(layer)) continue;
    const owner = catalog.get(layer.metadata?.['ecomap:layer']);
    const land = layer.type === 'fill' && owner?.group === 'admin';
    if (!land) return layer.id;
  }
  return undefined;
}

/** The source of one raster: its TileJSON (tiles, bounds, zooms), or the tile template without one. */
function sourceOf(raster) {
  const common = { type: 'raster', tileSize: 256 };
  if (raster.tilejson) return { ...common, url: raster.tilejson };
  return {
    ...common,
    tiles: [raster.tiles],
    minzoom: raster.minzoom ?? 0,
    maxzoom: raster.maxzoom ?? 22,
    ...(raster.bounds ? { bounds: raster.bounds } : {}),
  };
}

/**
 * Creates the controller of the raster layers (`rasters`: the /api/rasters list, `catalog`: the
 * vector catalog Map, used to find where rasters go in the layer stack).
 */
export function createRasterControl(map, rasters, { catalog, onChange } = {}) {
  const byId = new Map(rasters.map((r) => [r.id, r]));
  const visible = new Set();
  const opacity = new Map(rasters.map((r) => [r.id, clamp(r.opacity ?? 0.8)]));
  // Bottom to top: a raster with a higher `order` is drawn above one with a lower order.
  const stackOrder = [...rasters].sort((a, b) => (a.order ?? 0) - (b.order ?? 0)).map((r) => r.id);

  function ensureLayer(id) {
    const layerId = rasterStyleLayerId(id);
    if (map.getLayer(layerId)) return;
    const raster = byId.get(id);
    if (!map.getSource(layerId)) map.addSource(layerId, sourceOf(raster));
    // Above the rasters lower in the stack that are already on the map, below the higher ones.
    const higher = stackOrder.slice(stackOrder.indexOf(id) + 1).map(rasterStyleLayerId).find((l) => map.getLayer(l));
    map.addLayer(
      {
        id: layerId,
        type: 'raster',
        source: layerId,
        metadata: { 'ecomap:raster': id },
        layout: { visibility: 'none' },
        paint: {
          'raster-opacity': opacity.get(id),
          // Class colours stay crisp when zoomed past the data; continuous ramps are smoothed.
          'raster-resampling': raster.categorical ? 'nearest' : 'linear',
          'raster-fade-duration': 0,
        },
      },
      higher || insertionPoint(map, catalog || new Map()),
    );
  }

  function apply(id) {
    if (visible.has(id)) ensureLayer(id);
    const layerId = rasterStyleLayerId(id);
    if (map.getLayer(layerId)) map.setLayoutProperty(layerId, 'visibility', visible.has(id) ? 'visible' : 'none');
  }

  return {
    rasters,
    has: (id) => byId.has(id),
    get: (id) => byId.get(id),
    isVisible: (id) => visible.has(id),
    /** Visible raster ids, in the order of the /api/rasters list. */
    visibleIds: () => rasters.map((r) => r.id).filter((id) => visible.has(id)),
    getOpacity: (id) => opacity.get(id),
    setVisible(id, on) {
      if (!byId.has(id) || visible.has(id) === on) return;
      if (on) visible.add(id);
      else visible.delete(id);
      apply(id);
      onChange?.('visibility', id);
    },
    /** Shows exactly the rasters among `ids` (ids of vector layers or unknown ones are ignored). */
    setVisibleIds(ids) {
      const wanted = new Set(ids.filter((id) => byId.has(id)));
      let changed = false;
      for (const id of byId.keys()) {
        if (visible.has(id) === wanted.has(id)) continue;
        if (wanted.has(id)) visible.add(id);
        else visible.delete(id);
        apply(id);
        changed = true;
      }
      if (changed) onChange?.('visibility', null);
    },
    setOpacity(id, value) {
      if (!byId.has(id)) return;
      opacity.set(id, clamp(value));
      const layerId = rasterStyleLayerId(id);
      if (map.getLayer(layerId)) map.setPaintProperty(layerId, 'raster-opacity', opacity.get(id));
      onChange?.('opacity', id);
    },
  };
}

function clamp(value) {
  return Math.max(0, Math.min(1, Number(value)));
}
