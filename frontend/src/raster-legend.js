// Legends of the raster layers, drawn from the `legend` of /api/rasters: colour swatches with
// class names for categorical rasters (land cover), a gradient bar with its range and unit for
// continuous ones (elevation, slope). The same legend shows in the layer panel and, for every
// visible raster, in a collapsible box on the map (the panel is a closed drawer on phones).

import { formatNumber, onLangChange, pick, t } from './i18n.js';
import { h, isPhone, setChildren } from './ui.js';

function categoricalLegend(raster, legend) {
  return h(
    'ul',
    { class: 'legend raster-legend raster-legend-classes', 'data-raster': raster.id, 'aria-label': `${t('legend')}: ${pick(raster.title)}` },
    (legend.classes || []).map((c) =>
      h(
        'li',
        { 'data-value': c.value },
        h('span', { class: 'class-swatch', style: { background: c.color }, 'aria-hidden': 'true' }),
        h('span', {}, pick(c.name) || String(c.value)),
      ),
    ),
  );
}

/** A CSS linear-gradient from [[value, colour], ...] stops placed on the [min, max] range. */
export function gradientCss(stops, min, max) {
  if (!stops?.length) return 'transparent';
  const span = max - min || 1;
  const parts = stops.map(([value, color]) => {
    const at = Math.max(0, Math.min(100, ((value - min) / span) * 100));
    return `${color} ${Math.round(at * 10) / 10}%`;
  });
  return `linear-gradient(to right, ${parts.join(', ')})`;
}

function continuousLegend(raster, legend) {
  const stops = legend.stops || [];
  const min = legend.min ?? stops[0]?.[0] ?? 0;
  const max = legend.max ?? stops[stops.length - 1]?.[0] ?? 1;
  const unit = legend.unit ?? raster.unit ?? '';
  const digits = Math.abs(max - min) < 10 ? 1 : 0;
  const label = (v) => `${formatNumber(v, digits)}${unit ? (unit === '°' ? unit : ` ${unit}`) : ''}`;
  const meaning = pick(raster.band_meaning);
  return h(
    'div',
    {
      class: 'legend raster-legend raster-legend-ramp',
      'data-raster': raster.id,
      role: 'img',
      'aria-label': `${t('legend')}: ${pick(raster.title)}, ${label(min)} – ${label(max)}`,
    },
    meaning ? h('div', { class: 'ramp-caption' }, unit ? `${meaning} (${unit})` : meaning) : null,
    h('div', { class: 'ramp-bar', style: { background: gradientCss(stops, min, max) } }),
    h('div', { class: 'ramp-labels' }, h('span', { class: 'ramp-min' }, label(min)), h('span', { class: 'ramp-max' }, label(max))),
  );
}

/** The legend element of one raster (from its /api/rasters entry). */
export function rasterLegend(raster) {
  const legend = raster.legend || {};
  if (legend.type === 'categorical' || (raster.categorical && legend.classes)) return categoricalLegend(raster, legend);
  return continuousLegend(raster, legend);
}

/**
 * A MapLibre control (bottom left, above the scale bar) showing the legend of every visible
 * raster; hidden while none is visible. Collapsible, and folded at first on phones.
 */
export class RasterLegendControl {
  constructor(rasterControl) {
    this.rasters = rasterControl;
    this.details = null;
  }

  onAdd() {
    this.summary = h('summary', {}, t('legend'));
    this.body = h('div', { class: 'map-legend-body' });
    this.details = h('details', { class: 'map-legend', id: 'map-legend', open: !isPhone() }, this.summary, this.body);
    this.container = h('div', { class: 'maplibregl-ctrl map-legend-ctrl' }, this.details);
    this.unsubscribe = onLangChange(() => this.render());
    this.render();
    return this.container;
  }

  onRemove() {
    this.unsubscribe?.();
    this.container.remove();
  }

  render() {
    if (!this.details) return;
    // Top first, like the layer panel: the raster drawn above the others leads.
    const visible = this.rasters
      .visibleIds()
      .map((id) => this.rasters.get(id))
      .sort((a, b) => (b.order ?? 0) - (a.order ?? 0));
    this.container.hidden = visible.length === 0;
    this.summary.textContent = t('legend');
    setChildren(
      this.body,
      visible.map((raster) =>
        h('section', { class: 'map-legend-item', 'data-raster': raster.id }, h('h4', {}, pick(raster.title)), rasterLegend(raster)),
      ),
    );
  }
}
