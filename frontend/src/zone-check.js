// The site check (选址核查): pick a point, draw an area or upload a file, POST it to
// /api/zone-check and show the verdict, the overlapped zones (highlighted on the map), the land
// it takes (land-cover composition, elevation and slope, when the service has raster layers), the
// responsible chiefs and nearby stations, with a link to the printable report.

import { api } from './api.js';
import { chiefPost, contactEntry } from './chief.js';
import { createDrawer } from './draw.js';
import { measureGeometry, measureText } from './measure.js';
import { codeLabel, formatNumber, getLang, layerCodeLabel, onLangChange, pick, t } from './i18n.js';
import { classLabel, km2Text, nodataPercent, percentText, shareBar, slopeGrade } from './land-stats.js';
import { fitBbox } from './map.js';
import { downloadBlob, h, notice, setChildren, toast } from './ui.js';

const VERDICTS = ['prohibited', 'restricted', 'caution', 'clear'];

function shareText(share) {
  if (share === null || share === undefined) return '';
  const percent = share <= 1 ? share * 100 : share;
  return `${formatNumber(percent, 1)}%`;
}

/**
 * What an overlapping feature covers of the site: an area for a zone inside an area site, a
 * length for a line (a river) inside an area site or for a line site inside a zone; nothing for
 * a point site or a feature only near the site.
 */
function overlapText(o) {
  if (o.distance_m) return '–';
  if (o.overlap_length_m != null) return lengthText(o.overlap_length_m);
  if (o.overlap_m2 > 0) return `${formatNumber(o.overlap_m2, 0)} m²`;
  return '–';
}

function overlapKind(o) {
  if (o.overlap_length_m != null) return 'length';
  return o.overlap_m2 > 0 ? 'area' : 'none';
}

/** A length in m (km from 1 km on). */
function lengthText(m) {
  return m >= 1000 ? `${formatNumber(m / 1000, 2)} km` : `${formatNumber(m, 0)} m`;
}

function areaText(m2) {
  if (m2 === null || m2 === undefined) return '';
  const ha = m2 / 10_000;
  return `${formatNumber(m2, 0)} m² (${formatNumber(ha, ha < 10 ? 2 : 1)} ha)`;
}

/** The share cell: the percentage and a small bar in the class colour. */
function shareCell(percent, color) {
  return h('td', { class: 'num' }, h('div', { class: 'share-cell' }, h('span', {}, percentText(percent)), shareBar(percent, color)));
}

/**
 * The land-cover composition of the site: class (swatch), km², % with a bar; the part without
 * data (sea, outside the raster) as its own row so the shares add up to 100%. For a point or a
 * line (`measure` count or length) the shares are of the points or of the length.
 */
function landCoverTable(landCover, measure = 'area') {
  const classes = landCover.classes || [];
  if (!classes.length) return h('p', { class: 'muted' }, t('landCoverEmpty'));
  const byArea = measure === 'area';
  const amountHead = byArea ? 'colAreaKm2' : measure === 'length' ? 'colLengthM' : 'colPoints';
  const amount = (c) => (byArea ? km2Text(c.area_km2) : measure === 'length' ? formatNumber(c.length_m, 0) : formatNumber(c.points, 0));
  const total = landCover.area_km2 || 0;
  const nodata = byArea && landCover.nodata_km2 > 0 ? landCover.nodata_km2 : 0;
  const nodataShare = nodata ? nodataPercent(landCover) : 0;
  const totalPercent = classes.reduce((sum, c) => sum + (c.percent || 0), 0) + nodataShare;
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'data-table landcover-table', id: 'zone-landcover', 'data-measure': measure },
      h('caption', { class: 'visually-hidden' }, t('landCover')),
      h('thead', {}, h('tr', {}, ['colClass', amountHead, 'colPercent'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h(
        'tbody',
        {},
        classes.map((c) =>
          h(
            'tr',
            { 'data-value': c.value, 'data-percent': c.percent },
            h('td', {}, classLabel(c)),
            h('td', { class: 'num' }, amount(c)),
            shareCell(c.percent, c.color),
          ),
        ),
        nodata
          ? h(
              'tr',
              { class: 'nodata-row', 'data-value': 'nodata', 'data-percent': nodataShare },
              h('td', {}, h('span', { class: 'class-swatch nodata', 'aria-hidden': 'true' }), h('span', {}, t('noData'))),
              h('td', { class: 'num' }, km2Text(nodata)),
              shareCell(nodataShare, '#b0bec5'),
            )
          : null,
      ),
      byArea
        ? h(
            'tfoot',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, t('total')),
              h('td', { class: 'num' }, km2Text(total)),
              h('td', { class: 'num' }, percentText(totalPercent)),
            ),
          )
        : null,
    ),
  );
}

/** What the statistics were measured over: the site, its buffer, the points or the line. */
function rasterBasis(zone) {
  if (!zone) return null;
  if (zone.basis === 'buffer') return t('basisBuffer', { m: formatNumber(zone.buffer_m, 0) });
  if (zone.measure === 'count') return t('basisPoints');
  if (zone.measure === 'length') return t('basisLine');
  return t('basisSite');
}

/** Elevation min/mean/max (m) and slope mean/max (°), with the slope grade in words. */
function terrainTable(terrain) {
  const elevation = terrain.elevation;
  const slope = terrain.slope;
  if (!elevation && !slope) return h('p', { class: 'muted' }, t('terrainEmpty'));
  return [
    slope?.mean != null
      ? h(
          'p',
          { class: `slope-summary slope-${slopeGrade(slope.mean).slice(6)}`, id: 'zone-slope' },
          t('slopeSummary', { slope: formatNumber(slope.mean, 1), grade: t(slopeGrade(slope.mean)) }),
        )
      : null,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'data-table terrain-table', id: 'zone-terrain' },
        h('caption', { class: 'visually-hidden' }, t('terrain')),
        h(
          'thead',
          {},
          h('tr', {}, h('td', {}), ['colMin', 'colMean', 'colMax'].map((k) => h('th', { scope: 'col' }, t(k)))),
        ),
        h(
          'tbody',
          {},
          statRow('elevation', t('elevationM'), elevation, 0),
          statRow('slope', t('slopeDeg'), slope, 1),
        ),
      ),
    ),
  ];
}

/** A terrain table row (min, mean, max) of one statistic; nothing when it is missing. */
function statRow(key, label, stat, digits) {
  if (!stat) return null;
  const cell = (v) => h('td', { class: 'num' }, v === null || v === undefined ? '–' : formatNumber(v, digits));
  return h('tr', { 'data-stat': key }, h('th', { scope: 'row' }, label), ['min', 'mean', 'max'].map((k) => cell(stat[k])));
}

/** The `rasters` part of a zone-check answer; nothing when the service sends none. */
function rasterSection(rasters) {
  if (!rasters || (!rasters.land_cover && !rasters.terrain)) return null;
  return h(
    'section',
    { class: 'zone-rasters', id: 'zone-rasters', 'aria-label': t('zoneLand') },
    rasterBasis(rasters.zone) ? h('p', { class: 'muted small', id: 'zone-raster-basis' }, rasterBasis(rasters.zone)) : null,
    rasters.land_cover ? [h('h4', {}, t('landCover')), landCoverTable(rasters.land_cover, rasters.zone?.measure)] : null,
    rasters.terrain ? [h('h4', {}, t('terrain')), terrainTable(rasters.terrain)] : null,
  );
}

/** Reads a GeoJSON file to draw it on the map (the service does the real parsing). */
async function geojsonGeometries(file) {
  if (!/\.(geo)?json$/i.test(file.name)) return [];
  try {
    const doc = JSON.parse(await file.text());
    if (doc.type === 'FeatureCollection') return doc.features.filter((f) => f?.geometry);
    if (doc.type === 'Feature') return [doc];
    if (doc.type && doc.coordinates) return [doc];
  } catch {
    // Not valid JSON: the service will say what is wrong with it.
  }
  return [];
}

/** The banner text on the map while the tool takes clicks, by mode. */
const HINTS_ON_MAP = { point: 'zonePointHintMap', polygon: 'zonePolygonHintMap', line: 'zoneLineHintMap' };

/**
 * Builds the panel in `root`. `ui` = {catalog, highlighter, drawer: {open, closeOnPhone}}.
 * Returns {isCapturing()} so popups stay quiet while the tool takes map clicks.
 */
export function createZoneCheck(root, map, { catalog, highlighter, drawerUi, hint: hintBanner = null, onPrint = null }) {
  const draw = createDrawer(map);
  let mode = null;
  let input = null; // {geometry} or {file}
  let lastResult = null;
  let lastError = null;
  let busy = false;
  let corners = 0;

  const bufferInput = h('input', {
    type: 'number',
    id: 'zone-buffer',
    min: 0,
    max: 10000,
    step: 10,
    value: 0,
    inputmode: 'numeric',
  });
  const fileInput = h('input', {
    type: 'file',
    id: 'zone-file',
    accept: '.geojson,.json,.zip,.kml,application/geo+json,application/json,application/zip,application/vnd.google-earth.kml+xml',
    onchange: async () => {
      const file = fileInput.files?.[0];
      if (!file) return;
      input = { file };
      const geometries = await geojsonGeometries(file);
      draw.show(geometries);
      fileMeasure(geometries);
      run();
    },
  });
  const resultBox = h('div', { class: 'zone-result', 'aria-live': 'polite' });
  // The geodesic length or area of what is drawn or uploaded (CGCS2000 ellipsoid), live.
  const measureBox = h('p', { class: 'measure-readout', id: 'measure-readout', 'aria-live': 'polite', hidden: true });
  const showMeasure = (geometry) => {
    const measure = measureGeometry(geometry);
    measureBox.hidden = !measure;
    measureBox.textContent = measureText(measure);
    measureBox.dataset.kind = measure?.kind || '';
    measureBox.dataset.value = measure ? String(measure.kind === 'length' ? measure.length : measure.area) : '';
    measureBox.dataset.perimeter = measure?.perimeter != null ? String(measure.perimeter) : '';
  };
  const sketchGeometry = (kind) => (coords) =>
    showMeasure(
      kind === 'line'
        ? { type: 'LineString', coordinates: coords }
        : { type: 'Polygon', coordinates: [[...coords, coords[0]]] },
    );
  const fileMeasure = (geometries) => {
    const parts = geometries.map((g) => (g.type === 'Feature' ? g.geometry : g)).filter(Boolean);
    showMeasure(parts.length === 1 ? parts[0] : { type: 'GeometryCollection', geometries: parts });
  };
  const controls = h('div', { class: 'zone-controls' });

  const bufferM = () => Math.max(0, Number(bufferInput.value) || 0);

  function setMode(next) {
    mode = next;
    draw.cancel();
    corners = 0;
    if (next) showMeasure(null);
    if (next === 'point') {
      drawerUi.closeOnPhone();
      draw.pickPoint((geometry) => {
        input = { geometry };
        mode = null;
        run();
      });
    } else if (next === 'polygon' || next === 'line') {
      drawerUi.closeOnPhone();
      draw.drawPolygon({
        kind: next,
        onChange: (n) => {
          corners = n;
          renderControls();
        },
        onSketch: sketchGeometry(next),
        onFinish: (geometry) => {
          input = { geometry };
          mode = null;
          showMeasure(geometry);
          run();
        },
      });
    }
    renderControls();
  }

  function modeButton(name, label) {
    return h(
      'button',
      {
        type: 'button',
        class: `btn toggle${mode === name ? ' active' : ''}`,
        'aria-pressed': String(mode === name),
        onclick: () => setMode(mode === name ? null : name),
      },
      t(label),
    );
  }

  /** While the tool takes map clicks, a banner on the map says so (the panel may be lowered on phones). */
  function renderHintBanner() {
    if (!hintBanner) return;
    const picking = mode === 'point' || mode === 'polygon' || mode === 'line';
    hintBanner.hidden = !picking;
    hintBanner.dataset.mode = picking ? mode : '';
    if (!picking) {
      setChildren(hintBanner);
      return;
    }
    setChildren(
      hintBanner,
      h('span', { class: 'tool-hint-text' }, t(HINTS_ON_MAP[mode], { n: corners })),
      (mode === 'polygon' && corners >= 3) || (mode === 'line' && corners >= 2)
        ? h('button', { type: 'button', class: 'btn small primary', onclick: finishPolygon }, t('zoneFinish'))
        : null,
      h('button', { type: 'button', class: 'btn small', id: 'tool-hint-cancel', onclick: () => setMode(null) }, t('zoneCancel')),
    );
  }

  function renderControls() {
    renderHintBanner();
    const hint =
      mode === 'point'
        ? t('zonePointHint')
        : mode === 'polygon'
          ? t('zonePolygonHint')
          : mode === 'line'
            ? t('zoneLineHint')
            : mode === 'file'
              ? t('zoneFileHint')
              : null;
    setChildren(
      controls,
      h(
        'div',
        { class: 'btn-row', role: 'group', 'aria-label': t('tabZone') },
        modeButton('point', 'zoneModePoint'),
        modeButton('polygon', 'zoneModePolygon'),
        modeButton('line', 'zoneModeLine'),
        modeButton('file', 'zoneModeFile'),
      ),
      hint ? h('p', { class: 'hint' }, hint) : null,
      mode === 'polygon' || mode === 'line'
        ? h(
            'div',
            { class: 'btn-row' },
            h('button', { type: 'button', class: 'btn primary', disabled: corners < (mode === 'line' ? 2 : 3), onclick: finishPolygon }, t('zoneFinish')),
            h('button', { type: 'button', class: 'btn', disabled: corners < 1, onclick: () => { corners = draw.undo(); renderControls(); } }, t('zoneUndo')),
            h('button', { type: 'button', class: 'btn', onclick: () => setMode(null) }, t('zoneCancel')),
          )
        : null,
      mode === 'file' ? h('label', { class: 'file-label', for: 'zone-file' }, t('zoneFileLabel')) : null,
      mode === 'file' ? fileInput : null,
      measureBox,
      h('label', { class: 'field', for: 'zone-buffer' }, h('span', {}, t('zoneBuffer')), bufferInput),
      h(
        'div',
        { class: 'btn-row' },
        h('button', { type: 'button', class: 'btn primary', id: 'zone-run', disabled: busy, onclick: () => run() }, busy ? t('zoneChecking') : t('zoneRun')),
        h('button', { type: 'button', class: 'btn', id: 'zone-clear', onclick: clear }, t('zoneClear')),
      ),
    );
  }

  function finishPolygon() {
    if (!draw.finish()) toast(t('zoneTooFewPoints'), 'warn');
  }

  function clear() {
    setMode(null);
    draw.clear();
    input = null;
    lastResult = null;
    lastError = null;
    fileInput.value = '';
    showMeasure(null);
    highlighter.clear('zone');
    renderResult();
  }

  async function run() {
    if (!input) {
      lastError = t('zoneNeedGeometry');
      renderResult();
      return;
    }
    busy = true;
    lastError = null;
    renderControls();
    setChildren(resultBox, notice('info', t('zoneChecking')));
    drawerUi.open();
    try {
      lastResult = await api.zoneCheck({ ...input, bufferM: bufferM() });
      highlighter.set('zone', [
        ...(lastResult.overlaps || []).map((o) => ({ layer: o.layer, id: o.id })),
        ...(lastResult.stations || []).map((s) => ({ layer: 'station', id: s.id })),
      ]);
      if (lastResult.input?.bbox) fitBbox(map, lastResult.input.bbox, { maxZoom: 15 });
    } catch (err) {
      lastResult = null;
      highlighter.clear('zone');
      lastError = err.missing ? t('zoneUnavailable', { detail: err.message }) : t('zoneFailed', { detail: err.message });
    } finally {
      busy = false;
      renderControls();
      renderResult();
    }
  }

  async function openReport() {
    // Open the tab now, inside the click, so popup blockers allow it; fill it when the HTML is in.
    const win = window.open('', '_blank');
    if (win) win.document.title = t('report');
    try {
      const blob = await api.zoneCheckReport({ ...input, bufferM: bufferM() });
      const url = URL.createObjectURL(new Blob([blob], { type: 'text/html;charset=utf-8' }));
      if (win && !win.closed) {
        win.location.href = url;
        toast(t('reportOpened'));
      } else {
        downloadBlob(blob, 'zone-check-report.html');
      }
      setTimeout(() => URL.revokeObjectURL(url), 120_000);
    } catch (err) {
      win?.close();
      toast(t('reportFailed', { detail: err.message }), 'error', 8000);
    }
  }

  function overlapsTable(overlaps) {
    if (!overlaps.length) return h('p', { class: 'muted' }, t('noOverlaps'));
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'data-table', id: 'zone-overlaps' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['colName', 'colOverlap', 'colShare', 'colDistance'].map((k) => h('th', { scope: 'col' }, t(k))),
          ),
        ),
        h(
          'tbody',
          {},
          overlaps.map((o) =>
            h(
              'tr',
              { 'data-layer': o.layer, 'data-id': o.id },
              h(
                'td',
                {},
                h('div', { class: 'cell-name' }, o.name || `#${o.id}`),
                h(
                  'div',
                  { class: 'cell-sub' },
                  [pick(catalog.get(o.layer)?.title) || o.layer, ...[o.category, o.zone].filter(Boolean).map((v) => layerCodeLabel(catalog.get(o.layer), v))].join(' · '),
                ),
              ),
              h('td', { class: 'num', 'data-overlap': overlapKind(o) }, overlapText(o)),
              h('td', { class: 'num' }, shareText(o.share)),
              h('td', { class: 'num' }, o.distance_m ? formatNumber(o.distance_m, 0) : '0'),
            ),
          ),
        ),
      ),
    );
  }

  /** The responsible chiefs, each once, with the overlapped units they answer for (by name). */
  function chiefList(chiefs, overlaps) {
    if (!chiefs.length) return null;
    const unitName = (c) => overlaps.find((o) => o.layer === c.layer && o.id === c.feature_id)?.name;
    const byChief = new Map();
    for (const c of chiefs) {
      if (!byChief.has(c.id)) byChief.set(c.id, { ...c, units: [] });
      const name = unitName(c);
      if (name && !byChief.get(c.id).units.includes(name)) byChief.get(c.id).units.push(name);
    }
    return [
      h('h4', {}, t('chiefs')),
      h(
        'ul',
        { class: 'plain-list', id: 'zone-chiefs' },
        [...byChief.values()].map((c) =>
          h(
            'li',
            { 'data-chief': c.id },
            h('a', { href: `#chief=${encodeURIComponent(c.id)}` }, c.name),
            ` · ${chiefPost(c)}`,
            c.title ? ` · ${c.title}` : '',
            c.contact ? [' · ', contactEntry(c.contact)] : '',
            c.units.length ? h('span', { class: 'muted small' }, ` · ${t('responsibleFor', { units: c.units.join(t('listSeparator')) })}`) : null,
          ),
        ),
      ),
    ];
  }

  function stationList(stations) {
    return [
      h('h4', {}, t('nearbyStations')),
      stations.length
        ? h(
            'ul',
            { class: 'plain-list' },
            stations.map((s) =>
              h('li', {}, `${s.code ? `${s.code} ` : ''}${s.name} · ${codeLabel(catalog.get('station')?.properties?.find((p) => p.name === 'kind'), s.kind)} · ${formatNumber(s.distance_m, 0)} m`),
            ),
          )
        : h('p', { class: 'muted' }, t('noStations')),
    ];
  }

  function renderResult() {
    if (lastError) {
      setChildren(resultBox, notice('error', lastError));
      return;
    }
    if (!lastResult) {
      setChildren(resultBox);
      return;
    }
    const r = lastResult;
    const verdict = VERDICTS.includes(r.verdict) ? r.verdict : 'caution';
    const lang = getLang();
    setChildren(
      resultBox,
      h(
        'div',
        { class: `verdict verdict-${verdict}`, id: 'zone-verdict', 'data-verdict': verdict, role: 'status' },
        h('span', { class: 'verdict-label' }, t('verdict')),
        h('strong', {}, t(`verdict_${verdict}`)),
      ),
      r.reasons?.length
        ? h(
            'ul',
            { class: 'reasons', 'aria-label': t('reasons') },
            r.reasons.map((reason) =>
              h(
                'li',
                { class: reason.verdict ? `reason-${reason.verdict}` : null },
                pick(reason.message) || reason.rule,
                reason.allowed_activities?.length
                  ? h(
                      'details',
                      { class: 'allowed' },
                      h('summary', {}, t('allowedActivities', { n: reason.allowed_activities.length })),
                      h('ul', {}, reason.allowed_activities.map((a) => h('li', {}, pick(a)))),
                    )
                  : null,
              ),
            ),
          )
        : null,
      r.input?.area_m2 ? h('p', {}, `${t('inputArea')}: ${areaText(r.input.area_m2)}`) : null,
      h('h4', {}, t('overlaps')),
      overlapsTable(r.overlaps || []),
      rasterSection(r.rasters),
      chiefList(r.chiefs || [], r.overlaps || []),
      stationList(r.stations || []),
      h(
        'div',
        { class: 'btn-row' },
        onPrint
          ? h(
              'button',
              {
                type: 'button',
                class: 'btn primary',
                id: 'zone-print',
                onclick: () => onPrint({ input: { ...input, bufferM: bufferM() }, result: lastResult }),
              },
              t('reportPrint'),
            )
          : null,
        h('button', { type: 'button', class: 'btn', id: 'zone-report', onclick: openReport }, t('report')),
      ),
    );
    resultBox.dataset.lang = lang;
  }

  setChildren(root, h('p', { class: 'intro' }, t('zoneIntro')), controls, resultBox);
  renderControls();
  onLangChange(() => {
    root.querySelector('.intro').textContent = t('zoneIntro');
    renderControls();
    renderResult();
  });

  return {
    isCapturing: () => draw.active,
    /** Runs a check for a geometry directly (used by tests and deep links). */
    checkGeometry(geometry, buffer = 0) {
      bufferInput.value = String(buffer);
      input = { geometry };
      draw.show([geometry]);
      showMeasure(geometry);
      return run();
    },
  };
}
