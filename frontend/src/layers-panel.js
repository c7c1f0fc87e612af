// The layer panel: basemap choice, then the catalog layers grouped as the service orders them,
// each with a toggle, an opacity slider, a legend drawn from its style and a sample-data badge.
// Raster layers (land cover, terrain) join the list the same way, with their own legends.

import { BASEMAPS } from './basemaps.js';
import { codeLabel, onLangChange, pick, t } from './i18n.js';
import { rasterLegend } from './raster-legend.js';
import { remoteSourceText } from './remote.js';
import { h, notice, setChildren } from './ui.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/** A 28x16 legend swatch for one colour of a layer style. */
export function legendSwatch(style, color) {
  const box = svg('svg', { width: 28, height: 16, viewBox: '0 0 28 16', 'aria-hidden': 'true', class: 'swatch' });
  const dash = style.dash ? style.dash.map((d) => d * Math.max(1, style.width || 1)).join(' ') : null;
  if (style.kind === 'fill') {
    box.append(
      svg('rect', {
        x: 1.5,
        y: 1.5,
        width: 25,
        height: 13,
        rx: 2,
        fill: color,
        'fill-opacity': Math.max(style.opacity ?? 0.5, 0.25),
        stroke: style.outline_color || color,
        'stroke-width': Math.min(style.width || 1, 2.5),
        'stroke-dasharray': dash,
      }),
    );
  } else if (style.kind === 'line') {
    box.append(
      svg('line', {
        x1: 2,
        y1: 8,
        x2: 26,
        y2: 8,
        stroke: color,
        'stroke-width': Math.max(1.5, Math.min(style.width || 1.5, 5)),
        'stroke-opacity': style.opacity ?? 1,
        'stroke-dasharray': dash,
        'stroke-linecap': 'round',
      }),
    );
  } else {
    box.append(
      svg('circle', {
        cx: 14,
        cy: 8,
        r: Math.max(3, Math.min(style.radius || 5, 7)),
        fill: color,
        'fill-opacity': style.opacity ?? 1,
        stroke: style.outline_color || '#ffffff',
        'stroke-width': 1.5,
      }),
    );
  }
  return box;
}

/** The legend list of one layer: one entry per category colour, or a single entry. */
export function legendFor(layer) {
  const style = layer.style || {};
  const categories = style.categories;
  const items = categories
    ? Object.entries(categories.colors).map(([value, color]) =>
        h('li', {}, legendSwatch(style, color), h('span', {}, codeLabel(layer.properties?.find((p) => p.name === categories.property), value))),
      )
    : [h('li', {}, legendSwatch(style, style.color), h('span', {}, pick(layer.title)))];
  const legend = h('ul', { class: 'legend', 'aria-label': `${t('legend')}: ${pick(layer.title)}` }, items);
  if (!style.status?.length) return legend;
  // Live class colours (GB 3838 / GB 3097 / AQI) the tiles carry: one row of swatches per scale.
  const scales = style.status.map((scale) =>
    h(
      'div',
      { class: 'status-legend', 'data-scale': scale.title.en },
      h('span', { class: 'small muted' }, `${t('statusLegend')} · ${pick(scale.title)}`),
      h(
        'ul',
        { class: 'status-scale' },
        Object.entries(scale.colors).map(([name, color]) =>
          h('li', {}, legendSwatch(style, color), h('span', {}, scale.value_titles?.[name] ? pick(scale.value_titles[name]) : name)),
        ),
      ),
    ),
  );
  return h('div', { class: 'legend-group' }, legend, scales);
}

function basemapSection(state) {
  const { current, config, onSelect } = state;
  const offered = BASEMAPS.filter((basemap) => !basemap.needsVector || config.vector);
  const options = offered.map((basemap) => {
    const disabled = basemap.needsKey && !config.tiandituKey;
    const id = `basemap-${basemap.id}`;
    return h(
      'label',
      { class: `radio${disabled ? ' disabled' : ''}`, for: id, title: disabled ? t('basemapNeedsKey') : null },
      h('input', {
        type: 'radio',
        name: 'basemap',
        id,
        value: basemap.id,
        checked: basemap.id === current,
        disabled,
        onchange: () => onSelect(basemap.id),
      }),
      h(
        'span',
        { class: 'radio-text' },
        t(basemap.label),
        basemap.offline ? null : h('small', { class: 'muted' }, disabled ? t('basemapNeedsKey') : t('basemapOnline')),
      ),
    );
  });
  const active = BASEMAPS.find((b) => b.id === current);
  return h(
    'fieldset',
    { class: 'basemaps' },
    h('legend', {}, t('basemap')),
    options,
    active?.warning ? notice('warn', t(active.warning)) : null,
  );
}

function layerItem(layer, control, map) {
  const title = pick(layer.title);
  const checkboxId = `layer-toggle-${layer.id}`;
  const opacityValue = Math.round(control.getOpacity(layer.id) * 100);
  const zoomHint =
    map.getZoom() < layer.minzoom ? h('small', { class: 'muted zoom-hint' }, t('zoomIn', { zoom: layer.minzoom })) : null;
  return h(
    'li',
    { class: 'layer-item', 'data-layer': layer.id },
    h(
      'div',
      { class: 'layer-head' },
      h('input', {
        type: 'checkbox',
        id: checkboxId,
        checked: control.isVisible(layer.id),
        'aria-label': t('toggleLayer', { name: title }),
        onchange: (event) => control.setVisible(layer.id, event.target.checked),
      }),
      h('label', { for: checkboxId, class: 'layer-title', title: pick(layer.description) || null }, title),
      layer.sample_data ? h('span', { class: 'badge badge-sample', title: t('sampleBadgeTitle') }, t('sampleBadge')) : null,
      layer.remote ? h('span', { class: 'badge badge-remote', title: t('remoteBadgeTitle') }, t('remoteBadge')) : null,
    ),
    layer.remote ? h('small', { class: 'muted remote-source', title: layer.remote.url }, remoteSourceText(layer)) : null,
    zoomHint,
    opacitySlider(layer.id, title, opacityValue, (value) => control.setOpacity(layer.id, value)),
    legendFor(layer),
  );
}

/** The opacity slider of a layer or raster (0–100 %, reported to onChange as 0–1). */
function opacitySlider(id, title, opacityValue, onChange) {
  return h(
    'div',
    { class: 'layer-opacity' },
    h('input', {
      type: 'range',
      id: `layer-opacity-${id}`,
      min: 0,
      max: 100,
      step: 5,
      value: opacityValue,
      'aria-label': t('opacity', { name: title }),
      'aria-valuetext': `${opacityValue}%`,
      oninput: (event) => {
        event.target.setAttribute('aria-valuetext', `${event.target.value}%`);
        event.target.nextSibling.textContent = `${event.target.value}%`;
        onChange(Number(event.target.value) / 100);
      },
    }),
    h('output', { 'aria-hidden': 'true' }, `${opacityValue}%`),
  );
}

/** One raster of /api/rasters: toggle, opacity (its own, starting at the catalog default), legend. */
function rasterItem(raster, rasterControl, map) {
  const title = pick(raster.title);
  const checkboxId = `layer-toggle-${raster.id}`;
  const on = rasterControl.isVisible(raster.id);
  const opacityValue = Math.round(rasterControl.getOpacity(raster.id) * 100);
  const zoomHint =
    on && raster.minzoom != null && map.getZoom() < raster.minzoom
      ? h('small', { class: 'muted zoom-hint' }, t('zoomIn', { zoom: raster.minzoom }))
      : null;
  return h(
    'li',
    { class: `layer-item raster-item${on ? ' on' : ''}`, 'data-layer': raster.id, 'data-kind': 'raster' },
    h(
      'div',
      { class: 'layer-head' },
      h('input', {
        type: 'checkbox',
        id: checkboxId,
        checked: on,
        'aria-label': t('toggleLayer', { name: title }),
        onchange: (event) => rasterControl.setVisible(raster.id, event.target.checked),
      }),
      h('label', { for: checkboxId, class: 'layer-title', title: pick(raster.description) || null }, title),
      raster.is_sample ? h('span', { class: 'badge badge-sample', title: t('sampleBadgeTitle') }, t('sampleBadge')) : null,
    ),
    zoomHint,
    opacitySlider(raster.id, title, opacityValue, (value) => rasterControl.setOpacity(raster.id, value)),
    rasterLegend(raster),
  );
}

/** The panel's group title of the rasters' group (a {zh, en} title or a group id). */
function rasterGroupTitle(group, groupTitles) {
  if (group && typeof group === 'object') return group;
  return groupTitles.get(group) || t('rasterGroup');
}

/**
 * Renders the panel into `root` from the /api/layers answer. `basemap` = {current, config,
 * onSelect}; `extraSection()` gives a group shown before the catalog's (the work layers) or
 * null. Returns {render()} to redraw after a language or state change.
 */
export function createLayersPanel(root, { layersDoc, control, map, basemap, rasterControl = null, extraSection = () => null }) {
  const render = () => {
    const byGroup = new Map(layersDoc.groups.map((g) => [g.id, []]));
    const groupTitles = new Map(layersDoc.groups.map((g) => [g.id, g.title]));
    for (const layer of layersDoc.layers) {
      if (!byGroup.has(layer.group)) byGroup.set(layer.group, []);
      byGroup.get(layer.group).push(layer);
    }
    // Rasters go in their group (after the vector groups unless the service lists it).
    const isRaster = (layer) => Boolean(rasterControl?.has(layer.id) && layer === rasterControl.get(layer.id));
    for (const raster of rasterControl?.rasters || []) {
      const groupId = typeof raster.group === 'string' ? raster.group : 'land';
      if (!groupTitles.has(groupId)) groupTitles.set(groupId, rasterGroupTitle(raster.group, groupTitles));
      if (!byGroup.has(groupId)) byGroup.set(groupId, []);
      byGroup.get(groupId).push(raster);
    }
    const controlOf = (layer) => (isRaster(layer) ? rasterControl : control);
    const sections = [];
    for (const [groupId, layers] of byGroup) {
      if (!layers.length) continue;
      layers.sort((a, b) => (b.order ?? 0) - (a.order ?? 0));
      const groupTitle = pick(groupTitles.get(groupId)) || groupId;
      const allOn = layers.every((l) => controlOf(l).isVisible(l.id));
      const someOn = layers.some((l) => controlOf(l).isVisible(l.id));
      const groupToggle = h('input', {
        type: 'checkbox',
        id: `group-toggle-${groupId}`,
        checked: allOn,
        'aria-label': t('toggleGroup', { name: groupTitle }),
        onchange: (event) => {
          for (const l of layers) controlOf(l).setVisible(l.id, event.target.checked);
          render();
        },
      });
      groupToggle.indeterminate = someOn && !allOn;
      // A group of one layer needs no second checkbox: its heading is just a heading.
      const heading =
        layers.length > 1
          ? h('h3', { class: 'group-title' }, groupToggle, h('label', { for: `group-toggle-${groupId}` }, groupTitle))
          : h('h3', { class: 'group-title' }, groupTitle);
      sections.push(
        h(
          'section',
          { class: 'layer-group', 'data-group': groupId },
          heading,
          h(
            'ul',
            { class: 'layer-list' },
            layers.map((layer) => (isRaster(layer) ? rasterItem(layer, rasterControl, map) : layerItem(layer, control, map))),
          ),
        ),
      );
    }
    // Re-rendering must not lose the keyboard user's place.
    const focusedId = root.contains(document.activeElement) ? document.activeElement.id : null;
    setChildren(root, basemapSection(basemap), h('h2', { class: 'panel-title' }, t('layers')), extraSection(), sections);
    if (focusedId) document.getElementById(focusedId)?.focus();
  };
  render();
  onLangChange(render);
  // Zoom hints ("visible from zoom N") follow the map.
  let lastZoomBucket = Math.floor(map.getZoom());
  map.on('zoomend', () => {
    const bucket = Math.floor(map.getZoom());
    if (bucket !== lastZoomBucket) {
      lastZoomBucket = bucket;
      render();
    }
  });
  return { render };
}
