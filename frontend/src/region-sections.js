// The cross-boundary sections (地市交接断面) on the map: a button shows or hides them, drawn from
// GET /api/region/sections (the last complete month's class against the target, who pays whom by the demo
// compensation rules), coloured by water class and ringed green (meets its target), red (misses
// it) or grey (not enough data). Fetched only when first shown.

import * as maplibregl from 'maplibre-gl';
import { api } from './api.js';
import { formatNumber, onLangChange, pick, t } from './i18n.js';
import { h, toast } from './ui.js';

const SOURCE = 'region-sections';
const LAYER = 'region-sections-circle';
const RING = ['case', ['==', ['get', 'meets_target'], true], '#1a9850', ['==', ['get', 'meets_target'], false], '#d73027', '#757575'];

/** A {zh, en} property as the map gives it back (nested objects come out as JSON text). */
function named(value) {
  if (typeof value !== 'string') return pick(value);
  try {
    return pick(JSON.parse(value));
  } catch {
    return value;
  }
}

function describe(p) {
  const lines = [
    h('strong', {}, p.name),
    h('div', {}, t('regionFlow', { up: named(p.upstream_name) || p.upstream_city, down: named(p.downstream_name) || p.downstream_city })),
    h('div', {}, p.water_class ? t('regionClass', { klass: p.water_class, target: p.water_target }) : t('regionNoData')),
  ];
  if (p.payer && p.amount > 0) {
    const payer = p.payer === p.upstream_city ? p.upstream_name : p.downstream_name;
    const payee = p.payee === p.upstream_city ? p.upstream_name : p.downstream_name;
    lines.push(h('div', {}, t('regionPays', { payer: named(payer), payee: named(payee), amount: formatNumber(p.amount, 2) })));
  }
  return h('div', { class: 'region-section-popup' }, lines);
}

/** A map control (a button) that toggles the cross-boundary sections overlay. */
export class RegionSectionsControl {
  onAdd(map) {
    this.map = map;
    this.shown = false;
    this.button = h('button', { type: 'button', class: 'region-sections-toggle', 'aria-pressed': 'false', onclick: () => this.toggle() });
    this.label();
    onLangChange(() => this.label());
    this.container = h('div', { class: 'maplibregl-ctrl maplibregl-ctrl-group' }, this.button);
    return this.container;
  }

  onRemove() {
    this.container.remove();
  }

  label() {
    this.button.textContent = t('regionSections');
    this.button.title = t('regionSectionsToggle');
    this.button.setAttribute('aria-label', t('regionSectionsToggle'));
  }

  async toggle() {
    this.shown = !this.shown;
    this.button.setAttribute('aria-pressed', String(this.shown));
    if (this.map.getLayer(LAYER)) {
      this.map.setLayoutProperty(LAYER, 'visibility', this.shown ? 'visible' : 'none');
      return;
    }
    if (!this.shown) return;
    let data;
    try {
      data = await api.regionSections();
    } catch (err) {
      toast(t('regionLoadFailed', { detail: err.message }), 'error');
      this.shown = false;
      this.button.setAttribute('aria-pressed', 'false');
      return;
    }
    this.map.addSource(SOURCE, { type: 'geojson', data });
    this.map.addLayer({
      id: LAYER,
      type: 'circle',
      source: SOURCE,
      paint: { 'circle-radius': 9, 'circle-color': ['get', 'colour'], 'circle-stroke-width': 4, 'circle-stroke-color': RING },
    });
    this.map.on('click', LAYER, (event) => {
      const feature = event.features?.[0];
      if (!feature) return;
      new maplibregl.Popup({ closeButton: true }).setLngLat(feature.geometry.coordinates).setDOMContent(describe(feature.properties)).addTo(this.map);
    });
  }
}
