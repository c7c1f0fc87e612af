// The chief view (河长/湾长): pick a chief (or open /#chief={id}) to frame their jurisdiction,
// list the stations, outfalls, red lines and protected areas in it, and trace a river segment
// upstream.

import { api } from './api.js';
import { codeLabel, formatNumber, getLang, onLangChange, t } from './i18n.js';
import { fitBbox } from './map.js';
import { h, notice, setChildren } from './ui.js';
import { hasWaterFile, waterFileLink } from './water-status.js';

const ROLES = ['river', 'bay'];
const LEVELS = ['city', 'district', 'town', 'village'];

/** A chief's post in words: "镇（街）级河长", "Town river chief". */
export function chiefPost(chief) {
  const level = LEVELS.includes(chief.level) ? t(`level_${chief.level}`) : chief.level || '';
  return ROLES.includes(chief.role) ? t(`chiefPost_${chief.role}`, { level }).trim() : level;
}

/** What a chief's jurisdiction holds, e.g. "流域 6" or "河段 2 · 海湾 1" (only the kinds they have). */
export function chiefUnits(counts) {
  const parts = [
    ['rivers', 'unitsRivers'],
    ['bays', 'unitsBays'],
    ['watersheds', 'unitsWatersheds'],
  ]
    .filter(([key]) => (counts[key] ?? 0) > 0)
    .map(([key, label]) => t(counts[key] === 1 ? `${label}One` : label, { n: counts[key] }));
  return parts.length ? parts.join(' · ') : t('unitsNone');
}

/** A contact to dial: a tel: link for a full number, plain text for a masked one (138****1234). */
export function contactEntry(contact) {
  const dialable = /^\+?[\d\s()-]{5,}$/.test(contact) && !/[*xX•]/.test(contact);
  return dialable ? h('a', { href: `tel:${contact.replace(/[\s()-]/g, '')}` }, contact) : h('span', { class: 'masked' }, contact);
}

/** An item's name in the interface language (English where the data has it). */
function localName(item) {
  return (getLang() === 'en' && item.name_en) || item.name || '';
}

/** A {zh, en} label in the interface language. */
function pickLabel(label) {
  return (getLang() === 'en' ? label.en : label.zh) || label.zh || label.en || '';
}

/** The lon/lat of a GeoJSON point (or the first vertex of another geometry), for zooming to an issue. */
function pointOf(geometry) {
  let coords = geometry?.coordinates;
  while (Array.isArray(coords) && Array.isArray(coords[0])) coords = coords[0];
  return Array.isArray(coords) ? { lon: coords[0], lat: coords[1] } : {};
}

/** The month before this one, YYYY-MM (China time is close enough for a default). */
function previousMonth(now = new Date()) {
  const d = new Date(now.getFullYear(), now.getMonth() - 1, 1);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

function bboxOfAll(boxes) {
  const valid = boxes.filter((b) => Array.isArray(b) && b.length >= 4);
  if (!valid.length) return null;
  return [
    Math.min(...valid.map((b) => b[0])),
    Math.min(...valid.map((b) => b[1])),
    Math.max(...valid.map((b) => b[2])),
    Math.max(...valid.map((b) => b[3])),
  ];
}

/**
 * Builds the chief panel in `root`. `onChiefChange(id|null)` keeps the URL hash in step.
 * Returns {open(id), showList()}.
 */
export function createChiefView(root, map, { highlighter, control, onChiefChange, drawerUi, banner, canReadFiles = () => false }) {
  const filters = { role: '', level: '' };
  let view = 'list';
  let chiefs = null;
  let listError = null;
  let detail = null;
  let detailError = null;
  let upstream = null; // {segment, data} or {segment, error}
  let work = null; // the chief's open alerts and overdue issues: {alerts, issues} or {error}
  let assessmentMonth = previousMonth();
  let loadingId = null;

  const select = (id, label, values, key) =>
    h(
      'label',
      { class: 'field', for: id },
      h('span', {}, t(label)),
      h(
        'select',
        {
          id,
          onchange: (event) => {
            filters[key] = event.target.value;
            loadList();
          },
        },
        h('option', { value: '' }, t('chiefAll')),
        values.map((v) =>
          h('option', { value: v, selected: filters[key] === v }, key === 'level' ? t(`level_${v}`) : t(`role_chief_${v}`)),
        ),
      ),
    );

  async function loadList() {
    listError = null;
    render();
    try {
      chiefs = (await api.chiefs(filters)).chiefs || [];
    } catch (err) {
      chiefs = null;
      listError = t('chiefUnavailable', { detail: err.message });
    }
    render();
  }

  function renderList() {
    const items =
      chiefs === null
        ? listError
          ? notice('error', listError)
          : notice('info', t('loading'))
        : chiefs.length
          ? h(
              'ul',
              { class: 'chief-list', 'aria-label': t('chiefList') },
              chiefs.map((c) =>
                h(
                  'li',
                  {},
                  h(
                    'button',
                    { type: 'button', class: 'link-btn', 'data-chief': c.id, onclick: () => open(c.id) },
                    h('strong', {}, c.name),
                    h('span', { class: 'muted' }, ` ${chiefPost(c)}`),
                    c.title ? h('span', { class: 'muted small' }, ` · ${c.title}`) : null,
                    c.rivers != null || c.bays != null || c.watersheds != null
                      ? h('span', { class: 'muted small chief-counts' }, chiefUnits(c))
                      : null,
                  ),
                ),
              ),
            )
          : h('p', { class: 'muted' }, t('chiefNone'));
    return [
      h('p', { class: 'intro' }, t('chiefIntro')),
      canReadFiles() ? renderAssessment() : null,
      h('div', { class: 'filter-row' }, select('chief-role', 'chiefRole', ROLES, 'role'), select('chief-level', 'chiefLevel', LEVELS, 'level')),
      h('h3', { class: 'panel-title' }, t('chiefList')),
      items,
    ];
  }

  /** The bbox of a listed item: its own bbox, or its point. */
  const itemBbox = (item) =>
    item.bbox || (Number.isFinite(item.lon) && Number.isFinite(item.lat) ? [item.lon, item.lat, item.lon, item.lat] : null);

  /** A list entry that zooms to the item and highlights it, when the answer locates it. */
  function zoomButton(item, layer, label = localName(item)) {
    const bbox = itemBbox(item);
    if (!bbox) return h('span', {}, label);
    return h(
      'button',
      {
        type: 'button',
        class: 'link-btn',
        'aria-label': t('zoomTo', { name: label }),
        onclick: () => {
          fitBbox(map, bbox, { maxZoom: 15 });
          control.setVisible(layer, true);
          highlighter.set('selection', [{ layer, id: item.id }]);
          drawerUi.closeOnPhone();
        },
      },
      label,
    );
  }

  function simpleList(title, items, format) {
    return [
      h('h4', {}, title, h('span', { class: 'count' }, ` (${items.length})`)),
      items.length ? h('ul', { class: 'plain-list' }, items.map((item) => h('li', {}, format(item)))) : h('p', { class: 'muted' }, t('none')),
    ];
  }

  const stationKind = () => control.catalog.get('station')?.properties?.find((p) => p.name === 'kind');
  const stationLabel = (st) => `${st.code ? `${st.code} ` : ''}${st.name}`;
  const stationEntry = (st) => [
    zoomButton(st, 'station', stationLabel(st)),
    h(
      'span',
      { class: 'muted small' },
      [
        st.kind ? ` · ${codeLabel(stationKind(), st.kind)}` : '',
        st.distance_km != null ? ` · ${t('upstreamAlong', { d: formatNumber(st.distance_km, 2, 2) })}` : '',
      ].join(''),
    ),
  ];

  function renderUpstream() {
    if (!upstream) return null;
    const title = h('h4', {}, t('upstreamOf', { name: localName(upstream.segment) }));
    if (upstream.error) return [title, notice('error', upstream.error)];
    if (!upstream.data) return [title, notice('info', t('loading'))];
    const d = upstream.data;
    const segments = d.segments || [];
    return h(
      'section',
      { class: 'upstream', id: 'chief-upstream' },
      title,
      d.total_length_km != null
        ? h(
            'p',
            { class: 'upstream-total', id: 'upstream-total', 'data-km': d.total_length_km },
            t(segments.length === 1 ? 'upstreamLengthOne' : 'upstreamLength', {
              d: formatNumber(d.total_length_km, 2, 2),
              n: segments.length,
            }),
          )
        : null,
      segments.length ? h('p', { class: 'muted small' }, t('upstreamExplain')) : null,
      simpleList(t('upstreamSegments'), segments, (seg) => [
        zoomButton(seg, 'river', `${localName(seg)}${seg.segment ? ` ${seg.segment}` : ''}`),
        h(
          'span',
          { class: 'muted small upstream-figures', 'data-length-km': seg.length_km, 'data-distance-km': seg.distance_km },
          [
            seg.length_km != null ? ` · ${t('segmentLength', { d: formatNumber(seg.length_km, 2, 2) })}` : '',
            seg.distance_km != null ? ` · ${t('upstreamAlong', { d: formatNumber(seg.distance_km, 2, 2) })}` : '',
          ].join(''),
        ),
      ]),
      simpleList(t('upstreamWatersheds'), d.watersheds || [], (w) => zoomButton(w, 'watershed')),
      simpleList(t('stations'), d.stations || [], stationEntry),
      simpleList(t('outfalls'), d.outfalls || [], stationEntry),
    );
  }

  async function traceUpstream(segment) {
    upstream = { segment };
    render();
    try {
      const data = await api.upstream(segment.id);
      upstream = { segment, data };
      highlighter.set('upstream', [
        ...(data.segments || []).map((seg) => ({ layer: 'river', id: seg.id })),
        ...[...(data.stations || []), ...(data.outfalls || [])].map((st) => ({ layer: 'station', id: st.id })),
      ]);
      control.setVisible('river', true);
      const bbox = bboxOfAll([segment.bbox, ...[...(data.watersheds || []), ...(data.stations || [])].map(itemBbox)]);
      if (bbox) fitBbox(map, bbox, { maxZoom: 14 });
    } catch (err) {
      upstream = { segment, error: t('upstreamUnavailable', { detail: err.message }) };
    }
    render();
    root.querySelector('#chief-upstream, .upstream')?.scrollIntoView?.({ block: 'nearest' });
  }

  function renderDetail() {
    const back = h('button', { type: 'button', class: 'btn', id: 'chief-back', onclick: showList }, `← ${t('chiefBack')}`);
    if (detailError) return [back, notice('error', detailError)];
    if (!detail) return [back, notice('info', t('loading'))];
    const c = detail.chief;
    return [
      back,
      h(
        'section',
        { class: 'chief-card', id: 'chief-detail', 'data-chief': c.id },
        h('h3', {}, c.name, h('span', { class: 'muted' }, ` ${chiefPost(c)}`)),
        c.title ? h('p', {}, c.title) : null,
        c.contact ? h('p', {}, `${t('contact')}: `, contactEntry(c.contact)) : null,
      ),
      renderWork(),
      h('h4', {}, t('jurisdiction')),
      h(
        'ul',
        { class: 'plain-list' },
        (detail.jurisdiction || []).map((j) =>
          h(
            'li',
            {},
            zoomButton(j, j.layer),
            canReadFiles() && hasWaterFile(j.layer) ? [' ', waterFileLink(j.layer, j.id)] : null,
            j.layer === 'river'
              ? h(
                  'button',
                  { type: 'button', class: 'btn small', 'data-upstream': j.id, onclick: () => traceUpstream(j) },
                  t('upstream'),
                )
              : null,
          ),
        ),
      ),
      simpleList(t('stations'), detail.stations || [], stationEntry),
      simpleList(t('outfalls'), detail.outfalls || [], stationEntry),
      simpleList(t('redlines'), detail.redlines || [], (r) => zoomButton(r, 'redline')),
      simpleList(t('protectedAreas'), detail.protected_areas || [], (p) => zoomButton(p, 'protected_area')),
      renderUpstream(),
    ];
  }

  /** The month's assessment workbook (考核), one click: the previous month unless another is picked. */
  function renderAssessment() {
    const [year, month] = assessmentMonth.split('-').map(Number);
    const since = `${assessmentMonth}-01T00:00:00+08:00`;
    const next = month === 12 ? `${year + 1}-01` : `${year}-${String(month + 1).padStart(2, '0')}`;
    const until = `${next}-01T00:00:00+08:00`;
    return h(
      'section',
      { class: 'assessment-row', id: 'chief-assessment' },
      h(
        'label',
        { class: 'field', for: 'assessment-month' },
        h('span', {}, t('assessmentMonth')),
        h('input', {
          type: 'month',
          id: 'assessment-month',
          value: assessmentMonth,
          onchange: (event) => {
            if (/^\d{4}-\d{2}$/.test(event.target.value)) assessmentMonth = event.target.value;
            render();
          },
        }),
      ),
      h('a', { class: 'btn', id: 'assessment-download', href: api.assessmentUrl(since, until), download: `assessment-${assessmentMonth}.xlsx` }, t('assessmentDownload')),
    );
  }

  /** The chief's open alerts and overdue issues, shown first: what needs them now. */
  function renderWork() {
    if (!canReadFiles()) return null;
    const title = h('h4', {}, t('chiefWork'));
    if (!work) return h('section', { class: 'chief-work', id: 'chief-work' }, title, notice('info', t('loading')));
    if (work.error) return h('section', { class: 'chief-work', id: 'chief-work' }, title, notice('error', work.error));
    const when = (iso) => (iso ? new Date(iso).toLocaleString(getLang() === 'en' ? 'en-GB' : 'zh-CN', { dateStyle: 'short', timeStyle: 'short' }) : '');
    return h(
      'section',
      { class: 'chief-work', id: 'chief-work' },
      title,
      simpleList(t('alertsOpen'), work.alerts, (a) => [
        h('span', { class: 'bad', 'data-alert': a.id }, a.rule_label ? pickLabel(a.rule_label) : a.rule),
        h('span', { class: 'muted small' }, ` · ${a.station_code || ''} ${a.station_name || ''} · ${when(a.opened_at)}`),
      ]),
      simpleList(t('issuesOverdue'), work.issues, (i) => [
        zoomButton({ ...pointOf(i.geometry), id: i.river_id ?? i.bay_id }, i.river_id != null ? 'river' : 'bay', `#${i.id} ${i.title}`),
        h('span', { class: 'muted small', 'data-issue': i.id }, ` · ${when(i.deadline)}`),
      ]),
    );
  }

  async function loadWork(id) {
    if (!canReadFiles()) return;
    work = null;
    try {
      const [alerts, issues] = await Promise.all([
        api.alerts({ chief_id: id, state: 'open', limit: 20 }),
        api.issues({ chief_id: id, overdue: true, limit: 20 }),
      ]);
      if (loadingId !== String(id)) return;
      work = { alerts: alerts.alerts || [], issues: issues.issues || [] };
    } catch (err) {
      if (loadingId !== String(id)) return;
      work = { error: t('chiefWorkUnavailable', { detail: err.message }) };
    }
    render();
  }

  /** The banner on the map saying whose jurisdiction is shown (and a way back to the whole map). */
  function renderBanner() {
    if (!banner) return;
    const c = detail?.chief;
    if (view !== 'detail' || !c) {
      banner.hidden = true;
      setChildren(banner);
      return;
    }
    banner.hidden = false;
    setChildren(
      banner,
      h('span', { class: 'chief-banner-text' }, t('chiefBanner', { name: c.name, post: chiefPost(c) })),
      h('button', { type: 'button', class: 'banner-close', 'aria-label': t('chiefBannerClose'), title: t('chiefBannerClose'), onclick: showList }, '×'),
    );
  }

  function render() {
    setChildren(root, view === 'list' ? renderList() : renderDetail());
    root.dataset.lang = getLang();
    renderBanner();
  }

  /** Opens chief `id`: frames the jurisdiction and highlights it. */
  async function open(id) {
    view = 'detail';
    detail = null;
    detailError = null;
    upstream = null;
    loadingId = String(id);
    highlighter.clear('upstream');
    onChiefChange?.(String(id));
    render();
    loadWork(id);
    try {
      const data = await api.chief(id);
      if (loadingId !== String(id)) return;
      detail = data;
      const jurisdiction = data.jurisdiction || [];
      highlighter.set('chief', jurisdiction.map((j) => ({ layer: j.layer, id: j.id })));
      for (const layer of new Set(jurisdiction.map((j) => j.layer))) control.setVisible(layer, true);
      const bbox = data.bbox || bboxOfAll(jurisdiction.map((j) => j.bbox));
      if (bbox) fitBbox(map, bbox, { maxZoom: 14 });
    } catch (err) {
      if (loadingId !== String(id)) return;
      // A 404 with FastAPI's bare "Not Found" means the route itself is missing.
      const unknownChief = err.status === 404 && !/^Not Found/i.test(err.message);
      detailError = unknownChief ? t('chiefNotFound', { id }) : t('chiefUnavailable', { detail: err.message });
    }
    render();
  }

  function showList() {
    view = 'list';
    detail = null;
    upstream = null;
    loadingId = null;
    highlighter.clear('chief');
    highlighter.clear('upstream');
    onChiefChange?.(null);
    render();
    if (chiefs === null && !listError) loadList();
  }

  onLangChange(render);
  render();
  return {
    open,
    showList,
    /** Loads the list the first time the tab is shown. */
    activate() {
      if (view === 'list' && chiefs === null) loadList();
    },
  };
}
