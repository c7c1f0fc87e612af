// Red-line history: the revisions of a layer with history on a timeline (legal validity date,
// load date, approval document, what changed), the map at any date (tiles `?asof=`, which
// follows validity), and a diff of two revisions drawn in colour (added, removed, changed) with
// the areas gained and lost in km² on the ellipsoid (GET /api/layers/{layer}/diff).

import { formatNumber, onLangChange, pick, t } from './i18n.js';
import { setLayerParam } from './layer-override.js';
import { fitBbox } from './map.js';
import { bboxOf } from './table.js';
import { h, notice, setChildren, toast } from './ui.js';

const HISTORY_LAYERS = ['redline', 'protected_area'];
const COLOURS = { added: '#2e7d32', removed: '#c62828', changed: '#ef6c00' };
const DIFF_SOURCE = 'revision-diff';

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

const day = (iso) => (iso ? iso.slice(0, 10) : '');

function ensureDiffLayers(map) {
  if (map.getSource(DIFF_SOURCE)) return;
  map.addSource(DIFF_SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  const colour = ['match', ['get', 'change'], 'added', COLOURS.added, 'removed', COLOURS.removed, COLOURS.changed];
  map.addLayer({ id: 'revision-diff-fill', type: 'fill', source: DIFF_SOURCE, filter: ['!=', ['get', 'before'], true], paint: { 'fill-color': colour, 'fill-opacity': 0.45 } });
  map.addLayer({ id: 'revision-diff-line', type: 'line', source: DIFF_SOURCE, paint: { 'line-color': colour, 'line-width': 2, 'line-dasharray': ['case', ['==', ['get', 'before'], true], ['literal', [2, 2]], ['literal', [1, 0]]] } });
}

/** Builds the history panel into `root`. */
export function createTimeline(root, map, { catalog, control }) {
  const layers = HISTORY_LAYERS.filter((id) => catalog.has(id));
  const state = { layerId: layers[0] || null, revisions: [], date: '', diff: null };
  const layerSelect = h('select', { id: 'timeline-layer', onchange: () => open(layerSelect.value) });
  const dateInput = h('input', { type: 'date', id: 'timeline-date' });
  const showButton = h('button', { type: 'button', class: 'btn btn-small btn-primary', id: 'timeline-show', onclick: () => showDate(dateInput.value) });
  const todayButton = h('button', { type: 'button', class: 'btn btn-small', id: 'timeline-today', onclick: () => showDate('') });
  const fromSelect = h('select', { id: 'diff-from' });
  const toSelect = h('select', { id: 'diff-to' });
  const compareButton = h('button', { type: 'button', class: 'btn btn-small', id: 'diff-compare', onclick: () => compare(Number(fromSelect.value), Number(toSelect.value)) });
  const clearButton = h('button', { type: 'button', class: 'btn btn-small', id: 'diff-clear', onclick: () => clearDiff() });
  const status = h('p', { class: 'timeline-status', id: 'timeline-status', role: 'status' });
  const list = h('ol', { class: 'timeline-list', id: 'timeline-list' });
  const diffBox = h('div', { class: 'diff-box', id: 'diff-box' });
  const labels = {};
  const label = (key, control_) => (labels[key] = h('label', { class: 'field-label', for: control_.id }));

  function renderStatus() {
    status.textContent = state.date ? t('timelineShowing', { date: state.date }) : t('timelineCurrent');
  }

  function revisionLine(r) {
    const counts = t('revisionCounts', { added: r.features_added ?? 0, removed: r.features_removed ?? 0, changed: r.features_changed ?? 0 });
    return h(
      'li',
      { class: `timeline-item${state.date && r.valid_from <= state.date ? ' in-force' : ''}`, 'data-number': r.number },
      h('button', { type: 'button', class: 'timeline-dot', 'aria-label': t('timelineShowRevision', { n: r.number, date: r.valid_from }), onclick: () => showDate(r.valid_from) }),
      h('div', { class: 'timeline-text' },
        h('strong', {}, t('revisionTitle', { n: r.number })), ' ',
        h('span', { class: 'timeline-valid' }, t('revisionValidFrom', { date: r.valid_from })),
        h('div', { class: 'timeline-meta' }, t('revisionLoaded', { date: day(r.created_at), author: r.author || '' }),
          r.approval_doc ? ` · ${r.approval_doc}` : '', ` · ${counts}`)),
    );
  }

  function renderSelects() {
    const options = (selected) => [h('option', { value: 0, selected: selected === 0 }, t('revisionEmpty')),
      ...state.revisions.slice().reverse().map((r) => h('option', { value: r.number, selected: r.number === selected }, `${t('revisionTitle', { n: r.number })} (${r.valid_from})`))];
    const latest = state.revisions[0]?.number ?? 0;
    setChildren(fromSelect, options(Math.max(0, latest - 1)));
    setChildren(toSelect, options(latest));
  }

  function render() {
    setChildren(layerSelect, layers.map((id) => h('option', { value: id, selected: id === state.layerId }, pick(catalog.get(id).title))));
    layerSelect.setAttribute('aria-label', t('timelineLayer'));
    labels.date.textContent = t('timelineDate');
    labels.from.textContent = t('diffFrom');
    labels.to.textContent = t('diffTo');
    showButton.textContent = t('timelineShow');
    todayButton.textContent = t('timelineToday');
    compareButton.textContent = t('diffCompare');
    clearButton.textContent = t('diffClear');
    renderStatus();
    setChildren(list, state.revisions.map(revisionLine));
    renderSelects();
    renderDiff();
  }

  function renderDiff() {
    const d = state.diff;
    if (!d) return setChildren(diffBox);
    const s = d.summary;
    const km2 = (v) => t('km2', { value: formatNumber(v, 3) });
    setChildren(
      diffBox,
      h('p', { class: 'diff-summary', id: 'diff-summary' },
        t('diffSummary', { from: d.from, to: d.to, added: s.added, removed: s.removed, changed: s.changed })),
      h('dl', { class: 'diff-areas' },
        h('dt', {}, t('diffAreaFrom')), h('dd', {}, km2(s.area_from_km2)),
        h('dt', {}, t('diffAreaTo')), h('dd', {}, km2(s.area_to_km2)),
        h('dt', { style: { color: COLOURS.added } }, t('diffGained')), h('dd', { id: 'diff-gained' }, km2(s.area_gained_km2)),
        h('dt', { style: { color: COLOURS.removed } }, t('diffLost')), h('dd', { id: 'diff-lost' }, km2(s.area_lost_km2))),
      h('p', { class: 'diff-legend' }, Object.entries(COLOURS).map(([change, colour]) =>
        h('span', { class: 'diff-key' }, h('span', { class: 'swatch', style: { background: colour } }), t(`diff_${change}`)))),
      h('ul', { class: 'diff-list' }, d.features.slice(0, 200).map((f) =>
        h('li', { 'data-change': f.change }, h('span', { class: 'swatch', style: { background: COLOURS[f.change] } }),
          `${f.name || `#${f.id}`} · ${t(`diff_${f.change}`)}`,
          f.area_gained_km2 ? ` · +${km2(f.area_gained_km2)}` : '', f.area_lost_km2 ? ` · −${km2(f.area_lost_km2)}` : ''))),
    );
  }

  function showDate(date) {
    state.date = date || '';
    dateInput.value = state.date;
    control?.setVisible(state.layerId, true);
    setLayerParam(map, state.layerId, 'asof', state.date || null);
    root.dataset.asof = state.date;
    render();
  }

  async function features(number) {
    if (number === 0) return [];
    const doc = await getJSON(`api/layers/${encodeURIComponent(state.layerId)}/features?revision=${number}&limit=50000`);
    return doc.features;
  }

  async function compare(from, to) {
    try {
      const [diff, before, after] = await Promise.all([
        getJSON(`api/layers/${encodeURIComponent(state.layerId)}/diff?from=${from}&to=${to}`),
        features(from),
        features(to),
      ]);
      state.diff = diff;
      const change = new Map(diff.features.map((f) => [f.id, f.change]));
      const drawn = [
        ...after.filter((f) => change.get(f.id) === 'added' || change.get(f.id) === 'changed').map((f) => ({ ...f, properties: { change: change.get(f.id) } })),
        ...before.filter((f) => change.get(f.id) === 'removed').map((f) => ({ ...f, properties: { change: 'removed' } })),
        ...before.filter((f) => change.get(f.id) === 'changed').map((f) => ({ ...f, properties: { change: 'changed', before: true } })),
      ];
      ensureDiffLayers(map);
      map.getSource(DIFF_SOURCE).setData({ type: 'FeatureCollection', features: drawn });
      root.dataset.diff = `${from}:${to}:${drawn.length}`;
      const boxes = drawn.map((f) => bboxOf(f.geometry)).filter(Boolean);
      if (boxes.length) fitBbox(map, boxes.reduce((b, x) => [Math.min(b[0], x[0]), Math.min(b[1], x[1]), Math.max(b[2], x[2]), Math.max(b[3], x[3])]));
      renderDiff();
    } catch (err) {
      toast(t('diffFailed', { detail: err.message }), 'error');
    }
  }

  function clearDiff() {
    state.diff = null;
    map.getSource(DIFF_SOURCE)?.setData({ type: 'FeatureCollection', features: [] });
    delete root.dataset.diff;
    renderDiff();
  }

  async function open(layerId) {
    if (state.layerId && state.layerId !== layerId) setLayerParam(map, state.layerId, 'asof', null);
    state.layerId = layerId;
    state.date = '';
    clearDiff();
    try {
      state.revisions = (await getJSON(`api/layers/${encodeURIComponent(layerId)}/revisions`)).revisions;
    } catch (err) {
      setChildren(list, h('li', {}, notice('error', t('timelineFailed', { detail: err.message }))));
      return;
    }
    render();
    root.dataset.loaded = layerId;
  }

  setChildren(
    root,
    h('div', { class: 'table-toolbar' }, layerSelect, status),
    h('div', { class: 'table-toolbar' }, label('date', dateInput), dateInput, showButton, todayButton),
    list,
    h('div', { class: 'table-toolbar' }, label('from', fromSelect), fromSelect, label('to', toSelect), toSelect, compareButton, clearButton),
    diffBox,
  );
  onLangChange(() => render());
  return { open, showDate, compare, clearDiff, state: () => ({ ...state }) };
}
