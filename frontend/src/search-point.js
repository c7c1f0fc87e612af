// The point a search found (a gazetteer place, typed coordinates): a marker with its name (an
// HTML label: no glyphs to fetch), flown to at street scale.

import * as maplibregl from 'maplibre-gl';
import { h } from './ui.js';

const SOURCE = 'search-point';
let marker = null;

/** Marks `result` (with a point bbox) on the map under `label` and flies there. */
export function showSearchPoint(map, result, label) {
  const [lon, lat] = result.bbox || [result.lon, result.lat];
  const data = {
    type: 'FeatureCollection',
    features: [{ type: 'Feature', geometry: { type: 'Point', coordinates: [lon, lat] }, properties: { label } }],
  };
  if (map.getSource(SOURCE)) map.getSource(SOURCE).setData(data);
  else {
    map.addSource(SOURCE, { type: 'geojson', data });
    map.addLayer({
      id: 'search-point-circle',
      type: 'circle',
      source: SOURCE,
      paint: { 'circle-radius': 8, 'circle-color': '#00b8d4', 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 3 },
    });
  }
  marker?.remove();
  marker = new maplibregl.Marker({ element: h('div', { class: 'search-point-label' }, label), anchor: 'top', offset: [0, 12] })
    .setLngLat([lon, lat])
    .addTo(map);
  map.flyTo({ center: [lon, lat], zoom: Math.max(map.getZoom(), result.layer === 'place' ? 13 : 15) });
}
