// The chiefs' work on the map (signed-in staff only, as the service decides): open issues and
// alerts as one clustered GeoJSON source — cluster circles with counts at low zoom, issues
// coloured by severity (overdue ringed red and flagged) and alerts at their stations at high
// zoom — and finished patrol tracks. Both are read for the map's view (`bbox`) from the lists'
// `f=geojson` answers (GET /api/issues, /api/alerts, /api/patrols), again after each move.
// A chief sees their own issues and the alerts routed to them, as their lists do.

import * as maplibregl from 'maplibre-gl';
import { api } from './api.js';
import { formatNumber, getLang, onLangChange, pick, t } from './i18n.js';
import { h } from './ui.js';
import { waterFileLink } from './water-status.js';

const ITEMS = 'work-items';
const TRACKS = 'work-patrols';
export const WORK_LAYERS = {
  issues: ['work-clusters', 'work-cluster-count', 'work-issue-points', 'work-alert-points', 'work-flags'],
  patrols: ['work-patrol-lines'],
};
const CLICKABLE = ['work-clusters', 'work-issue-points', 'work-alert-points', 'work-patrol-lines'];
const LIMIT = 500;
const MAX_POPUP = 4;
export const SEVERITY_COLOURS = { low: '#4575b4', medium: '#fdae61', high: '#f46d43', critical: '#a50026' };
const OVERDUE = '#d7191c';
const PATROL = '#7b3294';
const SEVERITY = ['match', ['get', 'severity'], ...Object.entries(SEVERITY_COLOURS).flat(), '#888888'];

const empty = () => ({ type: 'FeatureCollection', features: [] });

/** The map view as a bbox the service accepts (WGS84, clamped, 5 decimals). */
export function viewBbox(bounds) {
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const round = (v) => Math.round(v * 1e5) / 1e5;
  return [
    round(clamp(bounds.getWest(), -180, 180)),
    round(clamp(bounds.getSouth(), -90, 90)),
    round(clamp(bounds.getEast(), -180, 180)),
    round(clamp(bounds.getNorth(), -90, 90)),
  ].join(',');
}

/** Issues and alerts in one collection for the clustered source: a string key per feature (ids
 * of the two kinds overlap) and flat properties the style reads. */
export function mergeItems(issues, alerts) {
  const features = [];
  for (const feature of [...(issues?.features || []), ...(alerts?.features || [])]) {
    const p = feature.properties;
    features.push({
      type: 'Feature',
      geometry: feature.geometry,
      properties: { key: `${p.kind}-${p.id}`, kind: p.kind, id: p.id, severity: p.severity, overdue: p.overdue === true, state: p.state },
    });
  }
  return { type: 'FeatureCollection', features };
}

function when(iso, withTime = true) {
  if (!iso) return '';
  const options = withTime ? { dateStyle: 'short', timeStyle: 'short' } : { dateStyle: 'medium' };
  return new Date(iso).toLocaleString(getLang() === 'en' ? 'en-GB' : 'zh-CN', options);
}

const row = (label, value) => (value === null || value === undefined || value === '' ? null : h('tr', {}, h('th', { scope: 'row' }, label), h('td', {}, value)));

function issuePopup(p, canReadFiles) {
  const file = p.river_id != null ? ['river', p.river_id] : p.bay_id != null ? ['bay', p.bay_id] : null;
  return h(
    'section',
    { class: 'popup-feature work-popup', 'data-kind': 'issue', 'data-id': p.id },
    h(
      'header',
      {},
      h('div', { class: 'popup-layer' }, t('workIssue')),
      h('h3', { class: 'popup-name' }, `#${p.id} ${p.title}`),
      p.overdue ? h('span', { class: 'badge badge-overdue', 'data-overdue': 'true' }, t('workOverdue')) : null,
    ),
    h(
      'table',
      { class: 'attr-table' },
      h(
        'tbody',
        {},
        row(t('workState'), pick(p.state_label) || p.state),
        row(t('workCategory'), pick(p.category_label) || p.category),
        row(t('workSeverity'), pick(p.severity_label) || p.severity),
        row(t('workDepartment'), p.department),
        row(t('workDeadline'), when(p.deadline)),
        row(t('workReported'), when(p.created_at)),
        p.area ? row(t('workWhere'), t('workArea')) : null,
      ),
    ),
    canReadFiles() && file ? waterFileLink(...file) : null,
  );
}

function alertPopup(p) {
  return h(
    'section',
    { class: 'popup-feature work-popup', 'data-kind': 'alert', 'data-id': p.id },
    h(
      'header',
      {},
      h('div', { class: 'popup-layer' }, t('workAlert')),
      h('h3', { class: 'popup-name' }, pick(p.rule_label) || p.rule),
    ),
    h(
      'table',
      { class: 'attr-table' },
      h(
        'tbody',
        {},
        row(t('workStation'), `${p.station_code || ''} ${p.station_name || ''}`.trim()),
        row(t('workFactor'), p.measure),
        row(t('workSeverity'), pick(p.severity_label) || p.severity),
        row(t('workSince'), when(p.since)),
        row(t('workPeak'), p.peak != null ? formatNumber(p.peak, 3) : null),
        row(t('workAlertIssue'), p.issue_id != null ? `#${p.issue_id}` : null),
      ),
    ),
  );
}

function patrolPopup(p) {
  const minutes = p.duration_s != null ? Math.round(p.duration_s / 60) : null;
  return h(
    'section',
    { class: 'popup-feature work-popup', 'data-kind': 'patrol', 'data-id': p.id },
    h('header', {}, h('div', { class: 'popup-layer' }, t('workPatrol')), h('h3', { class: 'popup-name' }, p.chief_name || `#${p.chief_id}`)),
    h(
      'table',
      { class: 'attr-table' },
      h(
        'tbody',
        {},
        row(t('workDate'), p.date),
        row(t('workLength'), p.length_m != null ? t('workKm', { d: formatNumber(p.length_m / 1000, 2, 2) }) : null),
        row(t('workDuration'), minutes != null ? t('workMinutes', { n: minutes }) : null),
      ),
    ),
  );
}

function addLayers(map) {
  map.addSource(ITEMS, {
    type: 'geojson',
    data: empty(),
    cluster: true,
    clusterRadius: 48,
    clusterMaxZoom: 13,
    clusterProperties: {
      alerts: ['+', ['case', ['==', ['get', 'kind'], 'alert'], 1, 0]],
      overdue: ['+', ['case', ['get', 'overdue'], 1, 0]],
    },
  });
  map.addSource(TRACKS, { type: 'geojson', data: empty() });
  const hidden = { visibility: 'none' };
  map.addLayer({
    id: 'work-patrol-lines',
    type: 'line',
    source: TRACKS,
    layout: { ...hidden, 'line-cap': 'round', 'line-join': 'round' },
    paint: { 'line-color': PATROL, 'line-width': ['interpolate', ['linear'], ['zoom'], 9, 2, 15, 5], 'line-opacity': 0.85, 'line-dasharray': [2, 1] },
  });
  map.addLayer({
    id: 'work-clusters',
    type: 'circle',
    source: ITEMS,
    filter: ['has', 'point_count'],
    layout: hidden,
    paint: {
      'circle-color': ['case', ['>', ['+', ['get', 'alerts'], ['get', 'overdue']], 0], '#d7301f', '#fc8d59'],
      'circle-radius': ['step', ['get', 'point_count'], 14, 10, 18, 50, 24],
      'circle-stroke-color': '#ffffff',
      'circle-stroke-width': 2,
      'circle-opacity': 0.9,
    },
  });
  map.addLayer({
    id: 'work-cluster-count',
    type: 'symbol',
    source: ITEMS,
    filter: ['has', 'point_count'],
    layout: { ...hidden, 'text-field': ['get', 'point_count_abbreviated'], 'text-font': ['Noto Sans Regular'], 'text-size': 13, 'text-allow-overlap': true },
    paint: { 'text-color': '#ffffff' },
  });
  map.addLayer({
    id: 'work-issue-points',
    type: 'circle',
    source: ITEMS,
    filter: ['all', ['!', ['has', 'point_count']], ['==', ['get', 'kind'], 'issue']],
    layout: hidden,
    paint: {
      'circle-color': SEVERITY,
      'circle-radius': 8,
      'circle-opacity': ['match', ['get', 'state'], ['handled', 'verified'], 0.55, 1],
      'circle-stroke-color': ['case', ['get', 'overdue'], OVERDUE, '#ffffff'],
      'circle-stroke-width': ['case', ['get', 'overdue'], 4, 2],
    },
  });
  map.addLayer({
    id: 'work-alert-points',
    type: 'circle',
    source: ITEMS,
    filter: ['all', ['!', ['has', 'point_count']], ['==', ['get', 'kind'], 'alert']],
    layout: hidden,
    paint: { 'circle-color': SEVERITY, 'circle-radius': 10, 'circle-stroke-color': '#1a1a1a', 'circle-stroke-width': 3 },
  });
  map.addLayer({
    id: 'work-flags',
    type: 'symbol',
    source: ITEMS,
    filter: ['all', ['!', ['has', 'point_count']], ['any', ['==', ['get', 'kind'], 'alert'], ['get', 'overdue']]],
    layout: { ...hidden, 'text-field': '!', 'text-font': ['Noto Sans Regular'], 'text-size': 14, 'text-allow-overlap': true },
    paint: { 'text-color': '#ffffff', 'text-halo-color': '#1a1a1a', 'text-halo-width': 1 },
  });
}

/**
 * The work layers on `map` for the signed-in `me`. `onChange(what)` is called when availability or
 * visibility changes (the layer panel redraws, the link follows); `isClickCaptured()` says a tool takes map clicks. Returns {available(kind), isVisible(kind),
 * setVisible(kind, on), hit(point), panelSection(), ready} — `ready` resolves once the service
 * said whether this user may read them.
 */
export function createWorkLayers(map, { me, canReadFiles = () => false, onChange = () => {}, isClickCaptured = () => false }) {
  const state = { issues: { available: false, on: false }, patrols: { available: false, on: false } };
  const data = { items: new Map(), patrols: new Map() };
  let sequence = 0;
  let moveTimer = null;
  const popup = new maplibregl.Popup({ maxWidth: '320px', focusAfterOpen: false, className: 'ecomap-popup work-layers-popup' });
  addLayers(map);

  // A chief's map shows their own issues (the alerts list already defaults to theirs).
  const own = () => (me?.role === 'chief' && me.chief_id != null ? { chief_id: me.chief_id } : {});

  async function load() {
    const wanted = ['issues', 'patrols'].filter((kind) => state[kind].on);
    if (!wanted.length) return;
    const mine = ++sequence;
    const bbox = viewBbox(map.getBounds());
    try {
      if (state.issues.on) {
        const [issues, alerts] = await Promise.all([
          api.issueFeatures({ open: true, bbox, limit: LIMIT, ...own() }),
          api.alertFeatures({ state: 'open', bbox, limit: LIMIT }),
        ]);
        if (mine !== sequence) return;
        data.items = new Map([...issues.features, ...alerts.features].map((f) => [`${f.properties.kind}-${f.properties.id}`, f.properties]));
        map.getSource(ITEMS).setData(mergeItems(issues, alerts));
      }
      if (state.patrols.on) {
        const patrols = await api.patrolFeatures({ bbox, limit: LIMIT });
        if (mine !== sequence) return;
        data.patrols = new Map(patrols.features.map((f) => [f.properties.id, f.properties]));
        map.getSource(TRACKS).setData(patrols);
      }
    } catch (err) {
      console.warn('work layers unavailable:', err.message);
    }
  }

  map.on('moveend', () => {
    clearTimeout(moveTimer);
    moveTimer = setTimeout(load, 250);
  });

  function setVisible(kind, on) {
    if (!state[kind].available) on = false;
    if (state[kind].on === on) return;
    state[kind].on = on;
    for (const id of WORK_LAYERS[kind]) map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
    if (!on) popup.remove();
    load();
    onChange('visibility');
  }

  const visibleClickable = () => CLICKABLE.filter((id) => map.getLayoutProperty(id, 'visibility') === 'visible');
  const hitAt = (point) => {
    const layers = visibleClickable();
    if (!layers.length) return [];
    const box = [
      [point.x - 5, point.y - 5],
      [point.x + 5, point.y + 5],
    ];
    return map.queryRenderedFeatures(box, { layers });
  };

  map.on('click', async (event) => {
    if (isClickCaptured()) return; // a tool waits for a point (site check, a finding's location)
    const hits = hitAt(event.point);
    const [top] = hits;
    if (!top) return;
    if (top.layer.id === 'work-clusters') {
      const zoom = await map.getSource(ITEMS).getClusterExpansionZoom(top.properties.cluster_id);
      map.easeTo({ center: top.geometry.coordinates, zoom: Math.min(zoom, 18) });
      return;
    }
    // Every issue, alert and track under the click (issues reported at the same spot stack up).
    const seen = new Set();
    const sections = [];
    for (const feature of hits) {
      if (feature.layer.id === 'work-clusters') continue;
      const key = feature.layer.id === 'work-patrol-lines' ? `patrol-${feature.properties.id}` : feature.properties.key;
      if (seen.has(key) || sections.length >= MAX_POPUP) continue;
      seen.add(key);
      if (feature.layer.id === 'work-patrol-lines') {
        const p = data.patrols.get(feature.properties.id);
        if (p) sections.push(patrolPopup(p));
      } else {
        const p = data.items.get(key);
        if (p) sections.push(p.kind === 'alert' ? alertPopup(p) : issuePopup(p, canReadFiles));
      }
    }
    if (!sections.length) return;
    const at = top.geometry.type === 'Point' ? top.geometry.coordinates : event.lngLat;
    const count = sections.length > 1 ? h('p', { class: 'popup-count' }, t('popupCount', { n: sections.length })) : null;
    const label = sections.length > 1 ? t('featureCount', { n: sections.length }) : sections[0].querySelector('h3')?.textContent;
    popup.setLngLat(at).setDOMContent(h('div', { class: 'popup-body', role: 'dialog', 'aria-label': label }, count, sections)).addTo(map);
  });
  map.on('mousemove', (event) => {
    if (hitAt(event.point).length) map.getCanvas().style.cursor = 'pointer';
  });
  onLangChange(() => popup.remove());

  // Whether the service lets this user read them: only signed-in people are asked at all.
  const ready = (async () => {
    if (!me?.role) return;
    const probe = (request) => request.then(() => true).catch(() => false);
    const [issues, patrols] = await Promise.all([
      probe(api.issueFeatures({ limit: 1, open: true })),
      probe(api.patrolFeatures({ limit: 1 })),
    ]);
    state.issues.available = issues;
    state.patrols.available = patrols;
    onChange('availability');
  })();

  function legend() {
    const dot = (colour, ring = '#ffffff', width = 2) =>
      h('span', { class: 'work-dot', style: { background: colour, borderColor: ring, borderWidth: `${width}px` }, 'aria-hidden': 'true' });
    return h(
      'ul',
      { class: 'legend work-legend', 'aria-label': `${t('legend')}: ${t('workIssuesLayer')}` },
      Object.entries(SEVERITY_COLOURS).map(([severity, colour]) => h('li', {}, dot(colour), h('span', {}, t(`workSeverity_${severity}`)))),
      h('li', {}, dot('#fdae61', OVERDUE, 4), h('span', {}, t('workLegendOverdue'))),
      h('li', {}, dot('#f46d43', '#1a1a1a', 3), h('span', {}, t('workLegendAlert'))),
      h('li', {}, dot('#fc8d59'), h('span', {}, t('workLegendCluster'))),
    );
  }

  function item(kind, label, extra) {
    const id = `layer-toggle-work-${kind}`;
    return h(
      'li',
      { class: 'layer-item work-layer', 'data-layer': `work-${kind}` },
      h(
        'div',
        { class: 'layer-head' },
        h('input', { type: 'checkbox', id, checked: state[kind].on, 'aria-label': t('toggleLayer', { name: t(label) }), onchange: (e) => setVisible(kind, e.target.checked) }),
        h('label', { for: id, class: 'layer-title' }, t(label)),
      ),
      extra,
    );
  }

  /** The layer panel's group of the work layers, or null when this user may read neither. */
  function panelSection() {
    const items = [];
    if (state.issues.available) items.push(item('issues', 'workIssuesLayer', legend()));
    if (state.patrols.available) {
      const line = h('span', { class: 'work-line', style: { borderColor: PATROL }, 'aria-hidden': 'true' });
      items.push(item('patrols', 'workPatrolsLayer', h('ul', { class: 'legend' }, h('li', {}, line, h('span', {}, t('workLegendPatrol'))))));
    }
    if (!items.length) return null;
    return h('section', { class: 'layer-group', 'data-group': 'work' }, h('h3', { class: 'group-title' }, t('workGroup')), h('ul', { class: 'layer-list' }, items));
  }

  const KINDS = ['issues', 'patrols'];
  return {
    ready,
    available: (kind) => state[kind].available,
    isVisible: (kind) => state[kind].on,
    setVisible,
    /** The link's ids of the visible work layers (`work-issues`, `work-patrols`). */
    visibleIds: () => KINDS.filter((kind) => state[kind].on).map((kind) => `work-${kind}`),
    /** Shows the work layers the link lists (once the service has said they may be read). */
    setVisibleIds(ids) {
      ready.then(() => {
        for (const kind of KINDS) setVisible(kind, ids.includes(`work-${kind}`));
      });
    },
    /** True when a click at `point` lands on a work feature (the feature popups leave it to us). */
    hit: (point) => hitAt(point).length > 0,
    panelSection,
    reload: load,
  };
}
