// The search box: a combobox over GET /api/search. Choosing a feature flies to its bbox, makes
// sure its layer is visible and highlights it; a gazetteer place or a coordinate flies there
// and marks the point (search-point.js).

import { api } from './api.js';
import { getLang, onLangChange, pick, t } from './i18n.js';
import { fitBbox } from './map.js';
import { showSearchPoint } from './search-point.js';
import { h, setChildren } from './ui.js';

const DEBOUNCE_MS = 250;

/**
 * Wires the search form. `onSelect(result)` is told after the map moved (the drawer closes on
 * phones, for instance); `onChief(id)` when the result is a river/bay chief.
 */
export function setupSearch({ input, list, status, map, catalog, control, highlighter, onSelect, onChief }) {
  let results = [];
  let active = -1;
  let timer = null;
  let controller = null;

  const close = () => {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  };

  const message = (text) => {
    setChildren(list, h('li', { class: 'search-message', role: 'presentation' }, text));
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    status.textContent = text;
  };

  const resultName = (r) => (getLang() === 'en' && r.name_en ? r.name_en : r.name);
  const layerTitle = (r) => {
    if (r.layer === 'chief') return t('tabChief');
    if (r.layer === 'place') return t(`placeKind_${r.detail}`);
    if (r.layer === 'coordinate') return t('searchCoordinate');
    return pick(catalog.get(r.layer)?.title) || r.layer;
  };
  const detailText = (r) => {
    if (r.layer === 'place') return r.approximate ? t('searchApproximate') : null;
    if (r.layer === 'coordinate') {
      const how = { 'lon,lat': 'lonlat', 'lat,lon': 'latlon', dms: 'dms' }[r.detail];
      return [how ? t(`searchReadAs_${how}`) : r.detail, r.inside ? null : t('searchOutside')].filter(Boolean).join(' · ');
    }
    return r.detail;
  };

  const renderResults = () => {
    setChildren(
      list,
      results.map((r, i) =>
        h(
          'li',
          {
            id: `search-option-${i}`,
            role: 'option',
            class: 'search-option',
            'aria-selected': String(i === active),
            onmousedown: (event) => event.preventDefault(),
            onclick: () => choose(i),
          },
          h(
            'span',
            { class: 'search-text' },
            h('span', { class: 'search-name' }, resultName(r) || `#${r.id}`),
            detailText(r) ? h('span', { class: 'search-detail' }, detailText(r)) : null,
          ),
          h('span', { class: 'search-layer', 'data-layer': r.layer }, layerTitle(r)),
        ),
      ),
    );
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    if (active >= 0) input.setAttribute('aria-activedescendant', `search-option-${active}`);
    else input.removeAttribute('aria-activedescendant');
    status.textContent = t('featureCount', { n: results.length });
  };

  const run = async (q) => {
    controller?.abort();
    controller = new AbortController();
    message(t('searching'));
    try {
      const answer = await api.search(q, { limit: 10, signal: controller.signal });
      if (input.value.trim() !== q) return;
      results = answer.results || [];
      active = results.length ? 0 : -1;
      if (results.length) renderResults();
      else message(t('searchNoResults', { q }));
    } catch (err) {
      if (err.name === 'AbortError') return;
      results = [];
      message(t('searchUnavailable', { detail: err.message }));
    }
  };

  function choose(i) {
    const result = results[i];
    if (!result) return;
    input.value = resultName(result) || input.value;
    close();
    if (result.layer === 'chief') {
      // Chiefs are people, not map features: open the chief view instead.
      onChief?.(result.id);
      return;
    }
    if (result.layer === 'place' || result.layer === 'coordinate') {
      highlighter.clear('selection');
      showSearchPoint(map, result, resultName(result));
      onSelect?.(result);
      return;
    }
    control.setVisible(result.layer, true);
    highlighter.set('selection', [{ layer: result.layer, id: result.id }]);
    fitBbox(map, result.bbox, { maxZoom: 15 });
    onSelect?.(result);
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) {
      close();
      highlighter.clear('selection');
      return;
    }
    timer = setTimeout(() => run(q), DEBOUNCE_MS);
  });

  input.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      if (!results.length) return;
      event.preventDefault();
      const step = event.key === 'ArrowDown' ? 1 : -1;
      active = (active + step + results.length) % results.length;
      renderResults();
      document.getElementById(`search-option-${active}`)?.scrollIntoView({ block: 'nearest' });
    } else if (event.key === 'Enter') {
      event.preventDefault();
      clearTimeout(timer);
      const q = input.value.trim();
      if (!list.hidden && active >= 0) choose(active);
      else if (q) run(q);
    } else if (event.key === 'Escape') {
      close();
    }
  });

  input.addEventListener('blur', () => setTimeout(close, 150));
  input.addEventListener('focus', () => {
    if (results.length && input.value.trim()) renderResults();
  });
  onLangChange(() => {
    if (!list.hidden && results.length) renderResults();
  });
}
