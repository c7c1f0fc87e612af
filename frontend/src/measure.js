// Measuring on the ellipsoid: lengths and areas of lon/lat geometries as geodesics on GRS80, the
// ellipsoid of CGCS2000 (a = 6378137 m, f = 1/298.257222101), with GeographicLib
// (geographiclib-geodesic, Karney's algorithms, accurate to nanometres). The site-check panel
// shows them while a line or an area is drawn and for uploaded GeoJSON.

import geodesic from 'geographiclib-geodesic';
import { formatNumber, t } from './i18n.js';

/** CGCS2000's ellipsoid (GRS80): semi-major axis in metres and flattening. */
export const CGCS2000 = { a: 6378137, f: 1 / 298.257222101 };

const GRS80 = new geodesic.Geodesic.Geodesic(CGCS2000.a, CGCS2000.f);

/** Length in metres of a line through `coords` ([[lon, lat], ...]), along geodesics. */
export function geodesicLength(coords) {
  if (coords.length < 2) return 0;
  const line = GRS80.Polygon(true);
  for (const [lon, lat] of coords) line.AddPoint(lat, lon);
  return line.Compute(false, true).perimeter;
}

/** Area (m²) and perimeter (m) of a ring [[lon, lat], ...] (closed or not), geodesic edges. */
function ringMeasure(ring) {
  const open = ring.length > 1 && ring[0][0] === ring.at(-1)[0] && ring[0][1] === ring.at(-1)[1] ? ring.slice(0, -1) : ring;
  if (open.length < 3) return { area: 0, perimeter: 0 };
  const polygon = GRS80.Polygon(false);
  for (const [lon, lat] of open) polygon.AddPoint(lat, lon);
  const result = polygon.Compute(false, true);
  return { area: Math.abs(result.area), perimeter: result.perimeter };
}

/**
 * The measures of a GeoJSON geometry: {kind: 'length', length} for lines, {kind: 'area', area,
 * perimeter} for polygons (holes subtracted; the perimeter counts every ring), null for points.
 */
export function measureGeometry(geometry) {
  if (!geometry) return null;
  const { type, coordinates } = geometry;
  if (type === 'LineString') return { kind: 'length', length: geodesicLength(coordinates) };
  if (type === 'MultiLineString') return { kind: 'length', length: coordinates.reduce((s, l) => s + geodesicLength(l), 0) };
  const polygons = type === 'Polygon' ? [coordinates] : type === 'MultiPolygon' ? coordinates : null;
  if (polygons) {
    let area = 0;
    let perimeter = 0;
    for (const [outer, ...holes] of polygons) {
      const shell = ringMeasure(outer);
      area += shell.area - holes.reduce((s, hole) => s + ringMeasure(hole).area, 0);
      perimeter += shell.perimeter + holes.reduce((s, hole) => s + ringMeasure(hole).perimeter, 0);
    }
    return { kind: 'area', area, perimeter };
  }
  if (type === 'GeometryCollection') {
    const parts = geometry.geometries.map(measureGeometry).filter(Boolean);
    const areas = parts.filter((p) => p.kind === 'area');
    if (areas.length) {
      return { kind: 'area', area: areas.reduce((s, p) => s + p.area, 0), perimeter: areas.reduce((s, p) => s + p.perimeter, 0) };
    }
    if (parts.length) return { kind: 'length', length: parts.reduce((s, p) => s + p.length, 0) };
  }
  return null;
}

/** A length for people: metres below 1 km, else kilometres. */
export function lengthText(m) {
  return m < 1000 ? `${formatNumber(m, 1)} ${t('unitM')}` : `${formatNumber(m / 1000, 3)} ${t('unitKm')}`;
}

/** An area for people: m² and hectares, or km² for large areas. */
export function areaMeasureText(m2) {
  if (m2 >= 1_000_000) return `${formatNumber(m2 / 1_000_000, 3)} ${t('unitKm2')} (${formatNumber(m2 / 10_000, 1)} ${t('unitHa')})`;
  return `${formatNumber(m2, 0)} ${t('unitM2')} (${formatNumber(m2 / 10_000, 2)} ${t('unitHa')})`;
}

/** The readout of a measure (one line), with the ellipsoid it is measured on. */
export function measureText(measure) {
  if (!measure) return '';
  if (measure.kind === 'length') return t('measureLength', { length: lengthText(measure.length) });
  return t('measureArea', { area: areaMeasureText(measure.area), perimeter: lengthText(measure.perimeter) });
}
