// Land cover and terrain as the service measures them (the `rasters` of a zone check, or
// GET /api/layers/{layer}/{id}/stats): the pieces the site check's tables and the popup's compact
// summary share, so a class looks the same everywhere (swatch, name, % with a bar).

import { formatNumber, pick, t } from './i18n.js';
import { h } from './ui.js';

/** km² with enough decimals to show small sites (0.0123 km²) without noise on large ones. */
export function km2Text(km2) {
  if (km2 === null || km2 === undefined) return '';
  const v = Math.abs(km2);
  return formatNumber(km2, v >= 100 ? 1 : v >= 1 ? 2 : v >= 0.01 ? 3 : 4);
}

/** A share in percent, one decimal: "42.5%"; a share too small for that reads "<0.1%", not "0.0%". */
export function percentText(percent) {
  if (percent > 0 && percent < 0.05) return `<${formatNumber(0.1, 1)}%`;
  return `${formatNumber(percent, 1)}%`;
}

/** Slope grades of the Chinese land survey (≤2°, 2–6°, 6–15°, 15–25°, >25°): an i18n key. */
export function slopeGrade(degrees) {
  if (degrees <= 2) return 'slope_flat';
  if (degrees <= 6) return 'slope_gentle';
  if (degrees <= 15) return 'slope_moderate';
  if (degrees <= 25) return 'slope_steep';
  return 'slope_very_steep';
}

/** A land-cover class's colour swatch and name (in the current language). */
export function classLabel(landClass) {
  return [
    h('span', { class: 'class-swatch', style: { background: landClass.color }, 'aria-hidden': 'true' }),
    h('span', { class: 'class-name' }, pick(landClass.name) || String(landClass.value)),
  ];
}

/** A small horizontal bar, `percent` wide, in the class colour. */
export function shareBar(percent, color) {
  const width = Math.max(0, Math.min(100, percent || 0));
  return h('span', { class: 'share-bar', 'aria-hidden': 'true' }, h('span', { style: { width: `${width}%`, background: color } }));
}

/** The part of a land-cover answer without data (sea, outside the raster), in % of the whole. */
export function nodataPercent(landCover) {
  const total = landCover?.area_km2 || 0;
  const nodata = landCover?.nodata_km2 > 0 ? landCover.nodata_km2 : 0;
  return nodata && total ? (100 * nodata) / total : 0;
}

/**
 * The popup's compact summary of a feature's land: the `top` largest land-cover classes (swatch,
 * name, bar, %), one muted line for the other classes and the part without data, and one line
 * with the mean elevation and slope. Null when there is nothing to show.
 */
export function landSummary(rasters, { top = 4 } = {}) {
  const landCover = rasters?.land_cover;
  const terrain = rasters?.terrain;
  const classes = [...(landCover?.classes || [])].sort((a, b) => (b.percent || 0) - (a.percent || 0));
  const elevation = terrain?.elevation?.mean;
  const slope = terrain?.slope?.mean;
  const hasTerrain = elevation != null || slope != null;
  if (!classes.length && !hasTerrain) return null;

  const shown = classes.slice(0, top);
  const rest = classes.slice(top);
  const restPercent = rest.reduce((sum, c) => sum + (c.percent || 0), 0);
  const nodata = nodataPercent(landCover);
  const notes = [];
  if (rest.length && restPercent >= 0.05) notes.push(t('popupLandOther', { percent: percentText(restPercent) }));
  if (nodata >= 0.05) notes.push(`${t('noData')} ${percentText(nodata)}`);

  const terrainParts = [];
  if (elevation != null) terrainParts.push(t('popupElevation', { m: formatNumber(elevation, 0) }));
  if (slope != null) terrainParts.push(t('popupSlope', { deg: formatNumber(slope, 1) }));

  return h(
    'section',
    { class: 'popup-land' },
    h('div', { class: 'popup-land-title' }, t('zoneLand')),
    shown.length
      ? h(
          'ul',
          { class: 'popup-land-classes' },
          shown.map((c) =>
            h(
              'li',
              { 'data-value': c.value, 'data-percent': c.percent },
              classLabel(c),
              shareBar(c.percent, c.color),
              h('span', { class: 'popup-land-percent' }, percentText(c.percent)),
            ),
          ),
        )
      : null,
    notes.length ? h('p', { class: 'popup-land-note' }, notes.join(t('listSeparator'))) : null,
    terrainParts.length
      ? h(
          'p',
          { class: 'popup-terrain', title: slope != null ? t(slopeGrade(slope)) : null },
          terrainParts.join(' · '),
        )
      : null,
  );
}

/**
 * The popup's "at this point" section: each visible raster's value in the clicked cell
 * (GET /api/rasters/values) — the class (swatch and name) of land cover, the number and unit
 * of elevation or slope, "no data" where a raster has none. Null when there is nothing to show.
 */
export function pointValues(answer) {
  const values = answer?.values || [];
  if (!values.length) return null;
  const cell = (v) => {
    if (v.value === null || v.value === undefined) return h('span', { class: 'muted' }, t('noData'));
    if (v.class) return classLabel(v.class);
    return `${formatNumber(v.value, Number.isInteger(v.value) ? 0 : 1)}${v.unit ? ` ${v.unit}` : ''}`;
  };
  return h(
    'section',
    { class: 'popup-here' },
    h('div', { class: 'popup-land-title' }, t('popupHere')),
    h(
      'table',
      { class: 'attr-table' },
      h(
        'tbody',
        {},
        values.map((v) =>
          h('tr', { 'data-raster': v.raster }, h('th', { scope: 'row' }, pick(v.title)), h('td', {}, cell(v))),
        ),
      ),
    ),
  );
}
