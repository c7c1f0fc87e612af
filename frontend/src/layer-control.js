// What the map shows of each catalog layer: visibility, opacity and the label language. The
// layer panel drives this; the URL hash stores the visible layers.

import { styleLayersOf } from './map.js';

const OPACITY_PAINT = {
  fill: ['fill-opacity'],
  line: ['line-opacity'],
  circle: ['circle-opacity', 'circle-stroke-opacity'],
  symbol: ['text-opacity'],
};

function scaled(original, factor) {
  const base = original === undefined ? 1 : original;
  if (typeof base === 'number') return Math.round(base * factor * 1000) / 1000;
  // Zoom expressions must stay at the top level of a property: leave those alone.
  if (JSON.stringify(base).includes('"zoom"')) return base;
  return ['*', factor, base];
}

/**
 * The English label of a layer's features: `name_en` where the feature has one; for a layer
 * whose names exist only in Chinese, the catalog's `label.property_en` (a station's code; a
 * zone's grade, through the English `value_titles` of its codes); else the Chinese label.
 */
export function englishLabel(layer, field) {
  const properties = layer?.properties || [];
  const fallbackName = layer?.style?.label?.property_en;
  const fallbackProperty = properties.find((p) => p.name === fallbackName);
  let fallback = field;
  if (fallbackProperty?.value_titles) {
    const pairs = Object.entries(fallbackProperty.value_titles).flatMap(([code, title]) => [code, title.en]);
    fallback = ['match', ['to-string', ['get', fallbackName]], ...pairs, ['to-string', ['get', fallbackName]]];
  } else if (fallbackProperty) {
    fallback = ['to-string', ['get', fallbackName]];
  }
  return properties.some((p) => p.name === 'name_en') ? ['coalesce', ['get', 'name_en'], fallback] : fallback;
}

/** Creates the controller for the catalog layers (`catalog`: Map of id -> layer). */
export function createLayerControl(map, catalog, { onChange } = {}) {
  const visible = new Set(catalog.keys());
  const opacity = new Map([...catalog.keys()].map((id) => [id, 1]));
  /** style layer id -> {paint property -> original value} */
  const originals = new Map();
  /** symbol style layer id -> original text-field */
  const labelFields = new Map();

  for (const id of catalog.keys()) {
    for (const styleLayer of styleLayersOf(map, id)) {
      const props = {};
      for (const prop of OPACITY_PAINT[styleLayer.type] || []) props[prop] = styleLayer.paint?.[prop];
      originals.set(styleLayer.id, props);
      if (styleLayer.type === 'symbol') labelFields.set(styleLayer.id, styleLayer.layout?.['text-field']);
    }
  }

  const applyVisibility = (id) => {
    for (const styleLayer of styleLayersOf(map, id)) {
      map.setLayoutProperty(styleLayer.id, 'visibility', visible.has(id) ? 'visible' : 'none');
    }
  };

  const applyOpacity = (id) => {
    const factor = opacity.get(id);
    for (const styleLayer of styleLayersOf(map, id)) {
      for (const [prop, original] of Object.entries(originals.get(styleLayer.id) || {})) {
        map.setPaintProperty(styleLayer.id, prop, factor === 1 ? original : scaled(original, factor));
      }
    }
  };

  return {
    catalog,
    isVisible: (id) => visible.has(id),
    visibleIds: () => [...catalog.keys()].filter((id) => visible.has(id)),
    getOpacity: (id) => opacity.get(id),
    setVisible(id, on) {
      if (!catalog.has(id) || visible.has(id) === on) return;
      if (on) visible.add(id);
      else visible.delete(id);
      applyVisibility(id);
      onChange?.('visibility', id);
    },
    /** Shows exactly the given layers (unknown ids are ignored). */
    setVisibleIds(ids) {
      const wanted = new Set(ids.filter((id) => catalog.has(id)));
      for (const id of catalog.keys()) {
        const on = wanted.has(id);
        if (visible.has(id) === on) continue;
        if (on) visible.add(id);
        else visible.delete(id);
        applyVisibility(id);
      }
      onChange?.('visibility', null);
    },
    setOpacity(id, value) {
      if (!catalog.has(id)) return;
      opacity.set(id, Math.max(0, Math.min(1, value)));
      applyOpacity(id);
      onChange?.('opacity', id);
    },
    /** Labels in the interface language: see `englishLabel`. */
    setLabelLanguage(lang) {
      for (const [styleLayerId, field] of labelFields) {
        if (!map.getLayer(styleLayerId) || field === undefined) continue;
        const layer = catalog.get(map.getLayer(styleLayerId).metadata?.['ecomap:layer']);
        map.setLayoutProperty(styleLayerId, 'text-field', lang === 'en' ? englishLabel(layer, field) : field);
      }
    },
  };
}
