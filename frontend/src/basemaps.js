// Basemaps drawn below the catalog layers, chosen from what GET /api/config offers. The default,
// "none", makes no external request at all: it draws the sea (the bay units partition Xiamen's
// waters), the rivers and a hillshade of the DEM from the service's own tiles over a neutral
// background, so land outside Xiamen is never painted as sea. "vector" is the deployment's own PMTiles archive (Protomaps
// basemap schema), read by range requests through the `pmtiles` protocol and styled with the
// pinned @protomaps/basemaps package. The others are raster tile services on the internet.

import { layers as protomapsLayers, namedFlavor } from '@protomaps/basemaps';
import * as maplibregl from 'maplibre-gl';
import { Protocol } from 'pmtiles';
import { getLang, t } from './i18n.js';

maplibregl.addProtocol('pmtiles', new Protocol().tile);

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

/** One raster style layer over its own source. */
function rasterLayer(id, source) {
  return { id, source, layers: [{ id, type: 'raster' }] };
}

/**
 * Hillshade of the service's elevation raster, when it has one: translucent tiles the service
 * shades from the DEM (drawn as they arrive, with no shading pass on the device).
 */
function hillshadeGroup(dem) {
  if (!dem) return [];
  const source = { type: 'raster', tiles: [dem.tiles], tileSize: 256, minzoom: dem.minzoom, maxzoom: 13 };
  if (dem.bounds) source.bounds = dem.bounds;
  const paint = { 'raster-opacity': 0.8, 'raster-fade-duration': 0, 'raster-resampling': 'linear' };
  return [{ id: 'hillshade', source, layers: [{ id: 'hillshade', type: 'raster', paint }] }];
}

/**
 * The zoom from which each kind of place is labelled comes with the place (`minzoom`, from
 * GET /api/places). A filter cannot compare a feature's value with the zoom, so there is one
 * symbol layer per band of minzoom, each with that layer minzoom; the most prominent band is on
 * top, so it wins collisions (and within a band, `rank`: districts before villages).
 */
const PLACE_BANDS = [13.5, 13, 12.5, 12, 11, 10, 9];
const WATER_KINDS = ['lake', 'reservoir', 'bay'];

function placeLabelLayers() {
  const english = getLang() !== 'zh';
  return PLACE_BANDS.map((band, index) => {
    const upper = PLACE_BANDS[index - 1];
    return {
      id: `z${String(band).replace('.', '_')}`,
      type: 'symbol',
      minzoom: band,
      filter: ['all', ['>=', ['get', 'minzoom'], band], ...(upper ? [['<', ['get', 'minzoom'], upper]] : [])],
      layout: {
        'text-field': english ? ['coalesce', ['get', 'name_en'], ['get', 'name_zh']] : ['get', 'name_zh'],
        'text-font': ['Noto Sans Regular'],
        'text-size': ['match', ['get', 'kind'], 'district', 14, ['bay', 'island', 'mountain', 'lake', 'reservoir'], 12.5, 11.5],
        'text-max-width': 8,
        'text-padding': 4,
        'symbol-sort-key': ['get', 'rank'],
      },
      paint: {
        'text-color': ['match', ['get', 'kind'], WATER_KINDS, '#2f6d94', 'mountain', '#7a5a35', '#4f5b63'],
        'text-halo-color': 'rgba(255,255,255,0.9)',
        'text-halo-width': 1.4,
      },
    };
  });
}

/**
 * The offline basemap: hillshade from the DEM, the sea and the rivers from the service's own
 * tiles ("ecomap" source), and place labels.
 */
function offlineLayers(config) {
  const own = { source: 'ecomap' };
  return [
    ...hillshadeGroup(config.hillshade),
    {
      id: 'local',
      layers: [
        { id: 'sea', type: 'fill', ...own, 'source-layer': 'bay', paint: { 'fill-color': '#c3dced' } },
        {
          id: 'sea-shore',
          type: 'line',
          ...own,
          'source-layer': 'bay',
          paint: { 'line-color': '#c3dced', 'line-width': 0.8 },
        },
        {
          id: 'river',
          type: 'line',
          ...own,
          'source-layer': 'river',
          minzoom: 9,
          paint: { 'line-color': '#a7c8e0', 'line-width': ['interpolate', ['linear'], ['zoom'], 9, 0.6, 14, 2] },
        },
      ],
    },
    {
      // Place names of the gazetteer (GET /api/places; set again by showPlaceLabels). Drawn over
      // the thematic fills (a label under a zone's fill is washed out), below their labels.
      id: 'places',
      overLayers: true,
      source: { type: 'geojson', data: { type: 'FeatureCollection', features: config.places || [] } },
      layers: placeLabelLayers(),
    },
  ];
}

/**
 * The deployment's PMTiles basemap drawn with the Protomaps style of its flavor (its background
 * is the sea colour: the archive's earth polygons are the land). Labels use the one glyph stack
 * the service builds; icons are left out (the style has no sprite), and layers that are only icons.
 */
function vectorLayers(vector) {
  const url = new URL(vector.url, window.location.href).href;
  const source = { type: 'vector', url: `pmtiles://${url}`, attribution: vector.attribution };
  const lang = getLang() === 'zh' ? 'zh-Hans' : 'en';
  const styled = protomapsLayers('pm', namedFlavor(vector.flavor || 'light'), { lang })
    .filter((layer) => !(layer.layout?.['icon-image'] && !layer.layout?.['text-field']))
    .map(({ source: _source, ...layer }) => {
      if (!layer.layout) return layer;
      const { 'icon-image': _icon, ...layout } = layer.layout;
      if (layout['text-font']) layout['text-font'] = ['Noto Sans Regular'];
      return { ...layer, layout };
    });
  return [{ id: 'pm', source, layers: styled }];
}

/**
 * The basemap choices. `layers(config)` returns [{id, source, layers}] groups, bottom first (a
 * group without a source draws from the style's own); `needsKey` means a Tianditu key is
 * required, `needsVector` a configured PMTiles archive; `warning` is an i18n key shown while the
 * basemap is on.
 */
export const BASEMAPS = [
  { id: 'none', label: 'basemapNone', offline: true, layers: offlineLayers },
  { id: 'vector', label: 'basemapVector', offline: true, needsVector: true, layers: (config) => vectorLayers(config.vector) },
  {
    id: 'osm',
    label: 'basemapOsm',
    layers: () => [
      rasterLayer(
        'osm',
        raster(
          ['https://tile.openstreetmap.org/{z}/{x}/{y}.png'],
          '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
          19,
        ),
      ),
    ],
  },
  {
    id: 'tianditu-vec',
    label: 'basemapTiandituVec',
    needsKey: true,
    layers: ({ tiandituKey }) => [
      rasterLayer('tdt-vec', raster(tiandituTiles('vec', tiandituKey), TIANDITU_ATTRIBUTION)),
      rasterLayer('tdt-cva', raster(tiandituTiles('cva', tiandituKey), TIANDITU_ATTRIBUTION)),
    ],
  },
  {
    id: 'tianditu-img',
    label: 'basemapTiandituImg',
    needsKey: true,
    layers: ({ tiandituKey }) => [
      rasterLayer('tdt-img', raster(tiandituTiles('img', tiandituKey), TIANDITU_ATTRIBUTION)),
      rasterLayer('tdt-cia', raster(tiandituTiles('cia', tiandituKey), TIANDITU_ATTRIBUTION)),
    ],
  },
  {
    id: 'amap',
    label: 'basemapAmap',
    warning: 'amapWarning',
    layers: () => [
      rasterLayer(
        'amap',
        raster(
          [1, 2, 3, 4].map(
            (i) => `https://webrd0${i}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}`,
          ),
          '© 高德地图 AMap (GCJ-02)',
        ),
      ),
    ],
  },
];

const PREFIX = 'basemap-';

/** Whether basemap `basemap` can be used with this configuration (keys, archive). */
export function basemapUsable(basemap, config) {
  return (!basemap.needsKey || Boolean(config.tiandituKey)) && (!basemap.needsVector || Boolean(config.vector));
}

/** The basemaps usable with this configuration. */
export function availableBasemaps(config) {
  return BASEMAPS.filter((b) => basemapUsable(b, config));
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
  // Groups drawn over the catalog's fills go right below its first label layer.
  const labelsBeforeId = layers.find((l) => l.type === 'symbol' && l.metadata?.['ecomap:layer'])?.id;
  for (const group of basemap.layers(config)) {
    if (group.source) map.addSource(PREFIX + group.id, group.source);
    for (const layer of group.layers) {
      const source = layer.type === 'background' ? undefined : group.source ? PREFIX + group.id : layer.source;
      const id = layer.id === group.id ? PREFIX + group.id : `${PREFIX}${group.id}-${layer.id}`;
      map.addLayer({ ...layer, id, ...(source ? { source } : {}) }, group.overLayers ? labelsBeforeId : beforeId);
    }
  }
  return basemap;
}

/**
 * Puts place names on the offline basemap: `features` are GeoJSON points with `name_zh`,
 * `name_en`, `kind`, `minzoom` and `rank` properties (GET /api/places). `config.places` keeps
 * them for the next time the basemap is drawn (a language switch draws it again).
 */
export function showPlaceLabels(map, features, config = null) {
  if (config) config.places = features;
  map.getSource(`${PREFIX}places`)?.setData({ type: 'FeatureCollection', features });
}

/** The style layer ids of the offline basemap's place labels. */
export function placeLabelLayerIds(map) {
  return map.getStyle().layers.filter((l) => l.id.startsWith(`${PREFIX}places-`)).map((l) => l.id);
}

/**
 * Says on the map when the chosen basemap's tiles fail to load (offline, blocked, a wrong key),
 * in the current language, instead of leaving the map silently grey. `banner` is the element to
 * fill; `current()` gives the basemap in use. Returns {reset()} to call when the basemap changes.
 */
export function watchBasemapErrors(map, { banner, current }) {
  let shown = null;
  const hide = () => {
    shown = null;
    banner.hidden = true;
    banner.replaceChildren();
  };
  map.on('error', (event) => {
    if (!event.sourceId?.startsWith(PREFIX)) return;
    const basemap = current();
    if (!basemap || basemap.id === 'none' || shown === basemap.id) return;
    shown = basemap.id;
    const text = document.createElement('span');
    text.textContent = t('basemapFailed', { name: t(basemap.label) });
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'btn small';
    close.textContent = t('close');
    close.addEventListener('click', () => {
      banner.hidden = true;
    });
    banner.replaceChildren(text, close);
    banner.hidden = false;
  });
  return { reset: hide };
}
