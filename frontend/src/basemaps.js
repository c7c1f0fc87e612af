// Basemaps drawn below the catalog layers. The default, "none", makes no external request at
// all: the style's own background, districts and coastline are the map. The others are raster
// tile services on the internet, added only while selected.

const TIANDITU_HOSTS = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `https://t${i}.tianditu.gov.cn`);

/** WMTS GetTile URLs of one Tianditu Web Mercator layer (vec/cva/img/cia). */
function tiandituTiles(layer, key) {
  const params =
    `SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=${layer}&STYLE=default&TILEMATRIXSET=w` +
    `&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=${encodeURIComponent(key)}`;
  return TIANDITU_HOSTS.map((host) => `${host}/${layer}_w/wmts?${params}`);
}

function raster(tiles, attribution, maxzoom = 18) {
  return { type: 'raster', tiles, tileSize: 256, maxzoom, attribution };
}

const TIANDITU_ATTRIBUTION = '© 天地图 Tianditu, 国家地理信息公共服务平台';

/**
 * The basemap choices. `layers(key)` returns [{id, source}] pairs, bottom first; `needsKey` means
 * a Tianditu key is required; `warning` is an i18n key shown while the basemap is on.
 */
export const BASEMAPS = [
  { id: 'none', label: 'basemapNone', offline: true, layers: () => [] },
  {
    id: 'osm',
    label: 'basemapOsm',
    layers: () => [
      {
        id: 'osm',
        source: raster(
          ['https://tile.openstreetmap.org/{z}/{x}/{y}.png'],
          '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
          19,
        ),
      },
    ],
  },
  {
    id: 'tianditu-vec',
    label: 'basemapTiandituVec',
    needsKey: true,
    layers: (key) => [
      { id: 'tdt-vec', source: raster(tiandituTiles('vec', key), TIANDITU_ATTRIBUTION) },
      { id: 'tdt-cva', source: raster(tiandituTiles('cva', key), TIANDITU_ATTRIBUTION) },
    ],
  },
  {
    id: 'tianditu-img',
    label: 'basemapTiandituImg',
    needsKey: true,
    layers: (key) => [
      { id: 'tdt-img', source: raster(tiandituTiles('img', key), TIANDITU_ATTRIBUTION) },
      { id: 'tdt-cia', source: raster(tiandituTiles('cia', key), TIANDITU_ATTRIBUTION) },
    ],
  },
  {
    id: 'amap',
    label: 'basemapAmap',
    warning: 'amapWarning',
    layers: () => [
      {
        id: 'amap',
        source: raster(
          [1, 2, 3, 4].map(
            (i) => `https://webrd0${i}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}`,
          ),
          '© 高德地图 AMap (GCJ-02)',
        ),
      },
    ],
  },
];

const PREFIX = 'basemap-';

/** The basemap ids usable with this configuration (Tianditu only with a key). */
export function availableBasemaps(config) {
  return BASEMAPS.filter((b) => !b.needsKey || config.tiandituKey);
}

/**
 * Shows basemap `id` on the map, below every catalog layer, removing the previous one.
 * Returns the basemap definition actually applied (falls back to "none").
 */
export function applyBasemap(map, id, config) {
  const basemap = availableBasemaps(config).find((b) => b.id === id) || BASEMAPS[0];
  const style = map.getStyle();
  for (const layer of style.layers) {
    if (layer.id.startsWith(PREFIX)) map.removeLayer(layer.id);
  }
  for (const sourceId of Object.keys(style.sources)) {
    if (sourceId.startsWith(PREFIX)) map.removeSource(sourceId);
  }
  // Insert right above the background layer, i.e. below the first catalog layer.
  const layers = map.getStyle().layers;
  const backgroundIndex = layers.findIndex((l) => l.type === 'background');
  const beforeId = layers[backgroundIndex + 1]?.id;
  for (const { id: layerId, source } of basemap.layers(config.tiandituKey)) {
    map.addSource(PREFIX + layerId, source);
    map.addLayer({ id: PREFIX + layerId, type: 'raster', source: PREFIX + layerId }, beforeId);
  }
  return basemap;
}
