// The attribute table of any layer: every feature's attributes and bbox (paged from the OGC
// items API with `skipGeometry=true`) in a virtualised list (only the rows in view are in the
// DOM, so 10,000+ rows scroll smoothly), sortable by any column, narrowed by a filter builder
// that writes CQL2. The same filter draws the map (tiles `?filter=`), fills the table and is
// sent with the export; selecting rows highlights and frames the features (by their bbox),
// clicking the map selects the row.

import { codeLabel, formatNumber, onLangChange, pick, t } from './i18n.js';
import { layerParams, setLayerParam } from './layer-override.js';
import { fitBbox, styleLayersOf } from './map.js';
import { downloadBlob, h, setChildren, toast } from './ui.js';

const ROW_HEIGHT = 30;
const OVERSCAN = 8;
const PAGE = 10000;
const FORMATS = ['gpkg', 'geojson', 'shp', 'csv', 'kml'];
const CRSS = ['EPSG:4326', 'EPSG:4490', 'EPSG:4527', 'EPSG:4548'];
const OPERATORS = {
  string: ['=', '<>', 'LIKE', 'IS NULL'],
  number: ['=', '<>', '>', '>=', '<', '<=', 'IS NULL'],
  integer: ['=', '<>', '>', '>=', '<', '<=', 'IS NULL'],
  date: ['=', '>', '>=', '<', '<=', 'IS NULL'],
  boolean: ['='],
};

/** A CQL2 text literal of a value for a property of this type. */
function literal(type, raw) {
  if (type === 'number' || type === 'integer') return String(Number(raw));
  if (type === 'boolean') return raw === 'true' ? 'TRUE' : 'FALSE';
  if (type === 'date') return `DATE('${raw}')`;
  return `'${String(raw).replace(/'/g, "''")}'`;
}

/** CQL2 text of the builder's conditions ({property, op, value}) joined by AND or OR. */
export function cql2Text(layer, conditions, join = 'AND') {
  const parts = [];
  for (const c of conditions) {
    const prop = (layer.properties || []).find((p) => p.name === c.property);
    if (!prop) continue;
    if (c.op === 'IS NULL') parts.push(`${prop.name} IS NULL`);
    else if (c.value !== '' && c.value != null) {
      const value = c.op === 'LIKE' ? `'%${String(c.value).replace(/'/g, "''")}%'` : literal(prop.type, c.value);
      parts.push(`${prop.name} ${c.op} ${value}`);
    }
  }
  return parts.join(` ${join} `);
}

/** The [west, south, east, north] of a GeoJSON geometry (null without one). */
export function bboxOf(geometry) {
  if (!geometry) return null;
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      box[0] = Math.min(box[0], c[0]);
      box[1] = Math.min(box[1], c[1]);
      box[2] = Math.max(box[2], c[0]);
      box[3] = Math.max(box[3], c[1]);
    } else c.forEach(walk);
  };
  if (geometry.type === 'GeometryCollection') geometry.geometries.forEach((g) => walk(g.coordinates));
  else walk(geometry.coordinates);
  return box;
}

function compare(a, b) {
  if (a == null) return b == null ? 0 : 1;
  if (b == null) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), 'zh-CN');
}

/** Builds the table into `root`; `layers` are the catalog entries (vector layers). */
export function createAttributeTable(root, map, { catalog, highlighter, control }) {
  const state = { layerId: null, rows: [], view: [], sort: null, selected: new Set(), filter: '', conditions: [] };
  let join = 'AND';
  let loadToken = 0;

  const layer = () => catalog.get(state.layerId);
  const columns = () => (layer()?.properties || []).filter((p) => p.name !== 'is_sample');

  const layerSelect = h('select', { id: 'table-layer', 'aria-label': t('tableLayer'), onchange: () => open(layerSelect.value) });
  const count = h('span', { class: 'table-count', id: 'table-count', role: 'status' });
  const filterLabel = h('span', { class: 'filter-label' });
  const conditionsBox = h('div', { class: 'filter-conditions' });
  const joinSelect = h('select', { 'aria-label': t('filterJoin'), onchange: () => (join = joinSelect.value) });
  const cqlInput = h('textarea', { id: 'table-cql', rows: 1, 'aria-label': t('filterCql'), spellcheck: false });
  const formatSelect = h('select', { id: 'table-format', 'aria-label': t('exportFormat') }, FORMATS.map((f) => h('option', { value: f }, f.toUpperCase())));
  const crsSelect = h('select', { id: 'table-crs', 'aria-label': t('exportCrs') }, CRSS.map((c) => h('option', { value: c }, c)));
  const head = h('div', { class: 'table-head', role: 'row' });
  const spacer = h('div', { class: 'table-spacer' });
  const body = h('div', { class: 'table-body', id: 'table-body', role: 'rowgroup', tabindex: 0 }, spacer);
  const grid = h('div', { class: 'attr-table', role: 'table', 'aria-label': t('tableTitle') }, head, body);
  const buttons = {
    addCondition: h('button', { type: 'button', class: 'btn btn-small', onclick: () => addCondition() }),
    apply: h('button', { type: 'button', class: 'btn btn-small btn-primary', id: 'table-apply', onclick: () => applyFilter(cqlInput.value.trim()) }),
    clear: h('button', { type: 'button', class: 'btn btn-small', id: 'table-clear', onclick: () => clearFilter() }),
    exportAll: h('button', { type: 'button', class: 'btn btn-small', id: 'table-export', onclick: () => exportRows(false) }),
    exportSelected: h('button', { type: 'button', class: 'btn btn-small', id: 'table-export-selection', onclick: () => exportRows(true) }),
  };

  function renderLabels() {
    layerSelect.setAttribute('aria-label', t('tableLayer'));
    setChildren(layerSelect, [...catalog.values()].map((l) => h('option', { value: l.id, selected: l.id === state.layerId }, pick(l.title))));
    setChildren(joinSelect, h('option', { value: 'AND', selected: join === 'AND' }, t('filterAll')), h('option', { value: 'OR', selected: join === 'OR' }, t('filterAny')));
    cqlInput.placeholder = t('filterCqlPlaceholder');
    filterLabel.textContent = t('filterTitle');
    buttons.addCondition.textContent = t('filterAdd');
    buttons.apply.textContent = t('filterApply');
    buttons.clear.textContent = t('filterClear');
    buttons.exportAll.textContent = t('exportFiltered');
    buttons.exportSelected.textContent = t('exportSelection');
    renderConditions();
    renderHead();
    renderCount();
    renderRows(true);
  }

  function renderCount() {
    const text = t('tableCount', { n: formatNumber(state.view.length) });
    count.textContent = state.selected.size ? `${text} · ${t('tableSelected', { n: formatNumber(state.selected.size) })}` : text;
    buttons.exportSelected.disabled = state.selected.size === 0;
  }

  function renderConditions() {
    setChildren(
      conditionsBox,
      state.conditions.map((c, i) => {
        const prop = columns().find((p) => p.name === c.property) || columns()[0];
        const ops = OPERATORS[prop?.type] || OPERATORS.string;
        const update = () => {
          cqlInput.value = cql2Text(layer(), state.conditions, join);
        };
        const valueInput = prop?.values?.length
          ? h('select', { 'aria-label': t('filterValue'), onchange: (e) => ((c.value = e.target.value), update()) },
              h('option', { value: '' }, ''),
              prop.values.map((v) => h('option', { value: v, selected: String(c.value) === String(v) }, codeLabel(prop, v))))
          : h('input', {
              'aria-label': t('filterValue'),
              type: prop?.type === 'date' ? 'date' : prop?.type === 'number' || prop?.type === 'integer' ? 'number' : 'text',
              value: c.value ?? '',
              oninput: (e) => ((c.value = e.target.value), update()),
            });
        return h(
          'div',
          { class: 'cql-row' },
          h('select', { 'aria-label': t('filterProperty'), onchange: (e) => ((c.property = e.target.value), (c.value = ''), renderConditions(), update()) },
            columns().map((p) => h('option', { value: p.name, selected: p.name === c.property }, pick(p.title) || p.name))),
          h('select', { 'aria-label': t('filterOperator'), onchange: (e) => ((c.op = e.target.value), update()) },
            ops.map((op) => h('option', { value: op, selected: op === c.op }, op === 'LIKE' ? t('filterContains') : op))),
          valueInput,
          h('button', { type: 'button', class: 'icon-btn', 'aria-label': t('filterRemove'), onclick: () => (state.conditions.splice(i, 1), renderConditions(), update()) }, '×'),
        );
      }),
    );
  }

  function addCondition() {
    const first = columns()[0];
    if (!first) return;
    state.conditions.push({ property: first.name, op: '=', value: '' });
    renderConditions();
  }

  function renderHead() {
    setChildren(
      head,
      h('span', { class: 'cell cell-id', role: 'columnheader' }, 'id'),
      columns().map((p) =>
        h('button', {
          type: 'button', class: 'cell', role: 'columnheader', 'data-property': p.name,
          'aria-sort': state.sort?.key === p.name ? (state.sort.desc ? 'descending' : 'ascending') : 'none',
          onclick: () => sortBy(p.name),
        }, pick(p.title) || p.name, state.sort?.key === p.name ? (state.sort.desc ? ' ▼' : ' ▲') : ''),
      ),
    );
  }

  function cellText(prop, value) {
    if (value == null) return '';
    if (prop.value_titles) return codeLabel(prop, value);
    if (typeof value === 'number') return formatNumber(value, 3);
    if (typeof value === 'boolean') return value ? t('yes') : t('no');
    return String(value);
  }

  let rendered = '';
  function renderRows(force = false) {
    const first = Math.max(0, Math.floor(body.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const visible = Math.ceil((body.clientHeight || 300) / ROW_HEIGHT) + 2 * OVERSCAN;
    const last = Math.min(state.view.length, first + visible);
    const key = `${first}:${last}:${state.view.length}`;
    if (!force && key === rendered) return;
    rendered = key;
    spacer.style.height = `${state.view.length * ROW_HEIGHT}px`;
    const cols = columns();
    const rows = [];
    for (let i = first; i < last; i += 1) {
      const row = state.view[i];
      rows.push(
        h('div', {
          class: `table-row${state.selected.has(row.id) ? ' selected' : ''}`, role: 'row', 'data-id': row.id,
          'aria-selected': String(state.selected.has(row.id)), style: { top: `${i * ROW_HEIGHT}px` },
          onclick: (event) => selectRow(row.id, event.ctrlKey || event.metaKey || event.shiftKey),
        },
        h('span', { class: 'cell cell-id', role: 'cell' }, String(row.id)),
        cols.map((p) => h('span', { class: 'cell', role: 'cell' }, cellText(p, row.properties[p.name])))),
      );
    }
    setChildren(body, spacer, rows);
  }

  function applySort() {
    if (!state.sort) return;
    const { key, desc } = state.sort;
    state.view.sort((a, b) => (desc ? -1 : 1) * compare(a.properties[key], b.properties[key]) || a.id - b.id);
  }

  function sortBy(key) {
    state.sort = state.sort?.key === key ? { key, desc: !state.sort.desc } : { key, desc: false };
    applySort();
    renderHead();
    renderRows(true);
  }

  function showSelection({ frame = true } = {}) {
    const chosen = state.rows.filter((r) => state.selected.has(r.id));
    highlighter.set('selection', chosen.map((r) => ({ layer: state.layerId, id: r.id })));
    if (frame && chosen.length) {
      const box = chosen.reduce((b, r) => (r.bbox ? [Math.min(b[0], r.bbox[0]), Math.min(b[1], r.bbox[1]), Math.max(b[2], r.bbox[2]), Math.max(b[3], r.bbox[3])] : b), [Infinity, Infinity, -Infinity, -Infinity]);
      fitBbox(map, box, { maxZoom: 15 });
    }
    renderCount();
    renderRows(true);
  }

  function selectRow(id, add) {
    if (add) state.selected.has(id) ? state.selected.delete(id) : state.selected.add(id);
    else state.selected = new Set([id]);
    showSelection();
  }

  /** Selects the row of a feature clicked on the map and scrolls it into view. */
  function selectFromMap(id) {
    state.selected = new Set([id]);
    const index = state.view.findIndex((r) => r.id === id);
    if (index >= 0) body.scrollTop = Math.max(0, index * ROW_HEIGHT - body.clientHeight / 2);
    showSelection({ frame: false });
  }

  /** Loads the rows of the layer (all pages) and draws them; records the `ecomap:table`
   * measure from `started` (the open or filter) to the first frame showing the rows, its
   * detail splitting the time (server answer, body read + JSON parse, rows built, drawn). */
  async function load(started = performance.now()) {
    const token = ++loadToken;
    const rows = [];
    const timing = { layer: state.layerId, rows: 0, pages: 0, answerMs: 0, bodyMs: 0, buildMs: 0, drawMs: 0 };
    count.textContent = t('loading');
    // Attributes only: each feature's bbox (to frame the selection) stands in for its geometry,
    // which the map draws from tiles (a page of 10,000 rivers is 3 MB so, 24 MB with the lines).
    const query = { limit: PAGE, skipGeometry: 'true', ...(state.filter ? { filter: state.filter } : {}) };
    let url = `ogc/collections/${encodeURIComponent(state.layerId)}/items?${new URLSearchParams(query)}`;
    try {
      while (url) {
        let at = performance.now();
        const response = await fetch(url, { headers: { Accept: 'application/geo+json' } });
        timing.answerMs += performance.now() - at;
        at = performance.now();
        const page = await response.json();
        timing.bodyMs += performance.now() - at;
        if (!response.ok) throw new Error(page.detail || `HTTP ${response.status}`);
        if (token !== loadToken) return;
        at = performance.now();
        for (const f of page.features) rows.push({ id: f.id, properties: f.properties || {}, bbox: f.bbox || bboxOf(f.geometry) });
        timing.buildMs += performance.now() - at;
        timing.pages += 1;
        url = (page.links || []).find((l) => l.rel === 'next')?.href || null;
      }
    } catch (err) {
      toast(t('tableLoadFailed', { detail: err.message }), 'error');
      count.textContent = t('tableLoadFailed', { detail: err.message });
      return;
    }
    const at = performance.now();
    state.rows = rows;
    state.view = rows.slice();
    applySort();
    state.selected = new Set([...state.selected].filter((id) => rows.some((r) => r.id === id)));
    body.scrollTop = 0;
    root.dataset.loaded = `${state.layerId}:${rows.length}`;
    renderCount();
    renderRows(true);
    timing.drawMs = performance.now() - at;
    timing.rows = rows.length;
    // The rows are on screen once this frame is painted: a task queued from its animation
    // frame callback runs after the paint.
    requestAnimationFrame(() => setTimeout(() => {
      if (token === loadToken) performance.measure('ecomap:table', { start: started, end: performance.now(), detail: timing });
    }));
  }

  function applyFilter(text) {
    const started = performance.now();
    state.filter = text;
    cqlInput.value = text;
    // The map is redrawn only for a new filter (the same one, or clearing none, would reload
    // every layer's tiles for nothing).
    if ((layerParams(state.layerId).filter || '') !== text) setLayerParam(map, state.layerId, 'filter', text || null);
    return load(started);
  }

  function clearFilter() {
    state.conditions = [];
    renderConditions();
    return applyFilter('');
  }

  async function exportRows(selectionOnly) {
    const params = { format: formatSelect.value, crs: crsSelect.value === 'EPSG:4326' ? '' : crsSelect.value };
    if (state.filter) params.filter = state.filter;
    if (selectionOnly) params.ids = [...state.selected].join(',');
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== ''));
    const url = `api/layers/${encodeURIComponent(state.layerId)}/export?${query}`;
    root.dataset.lastExport = url;
    try {
      const response = await fetch(url);
      if (!response.ok) throw new Error((await response.json()).detail || `HTTP ${response.status}`);
      const name = /filename\*?=(?:UTF-8'')?"?([^";]+)/.exec(response.headers.get('content-disposition') || '')?.[1];
      downloadBlob(await response.blob(), decodeURIComponent(name || `${state.layerId}.${formatSelect.value}`));
      toast(t('exportDone', { n: formatNumber(Number(response.headers.get('x-feature-count'))) }));
    } catch (err) {
      toast(t('exportFailed', { detail: err.message }), 'error');
    }
  }

  /** Shows a layer's table (its filter starts empty). */
  function open(layerId) {
    const started = performance.now();
    // Only a filter the table set is cleared: clearing nothing would still make the map reload
    // and re-parse the tiles of every layer (their shared source) while the rows load.
    if (state.layerId && state.layerId !== layerId && layerParams(state.layerId).filter) {
      setLayerParam(map, state.layerId, 'filter', null);
    }
    state.layerId = layerId;
    state.filter = '';
    state.conditions = [];
    state.sort = null;
    state.selected = new Set();
    cqlInput.value = '';
    control?.setVisible(layerId, true);
    renderLabels();
    return load(started);
  }

  body.addEventListener('scroll', () => requestAnimationFrame(() => renderRows()));
  map.on('click', (event) => {
    if (root.hidden || !state.layerId) return;
    const ids = styleLayersOf(map, state.layerId).filter((l) => ['fill', 'line', 'circle'].includes(l.type)).map((l) => l.id);
    const hit = map.queryRenderedFeatures(event.point, { layers: ids })[0];
    if (hit && hit.id != null) selectFromMap(Number(hit.id));
  });
  onLangChange(() => renderLabels());

  setChildren(
    root,
    // Two rows of tools (layer and export; filter), the builder's conditions under them, so the
    // rows keep most of the dock.
    h('div', { class: 'table-toolbar' }, layerSelect, count, h('span', { class: 'toolbar-gap' }), formatSelect, crsSelect, buttons.exportAll, buttons.exportSelected),
    h('div', { class: 'table-filter' }, filterLabel, joinSelect, buttons.addCondition, cqlInput, buttons.apply, buttons.clear),
    conditionsBox,
    grid,
  );

  return {
    open,
    applyFilter,
    clearFilter,
    /** For tests: the ids in table order, the selection, the filter. */
    state: () => ({ layer: state.layerId, ids: state.view.map((r) => r.id), selected: [...state.selected], filter: state.filter }),
    select: (ids) => ((state.selected = new Set(ids)), showSelection()),
  };
}
