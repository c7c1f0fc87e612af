// The dock under the map holding the attribute table and the red-line history, opened from the
// header buttons (one at a time); built on first use.

import { t, onLangChange } from './i18n.js';
import { createAttributeTable } from './table.js';
import { createTimeline } from './timeline.js';

const $ = (id) => document.getElementById(id);

/** Wires the header buttons to the dock; returns {table, timeline, show(name), close()}. */
export function setupWorkDock(map, { catalog, highlighter, control }) {
  const dock = $('work-dock');
  const panels = { table: $('table-panel'), timeline: $('timeline-panel') };
  const buttons = { table: $('table-toggle'), timeline: $('timeline-toggle') };
  const titles = { table: 'tableTitle', timeline: 'timelineTitle' };
  const built = {};
  let current = null;

  const title = () => {
    $('work-dock-title').textContent = current ? t(titles[current]) : '';
  };

  function show(name) {
    current = name;
    dock.hidden = false;
    for (const [key, panel] of Object.entries(panels)) {
      panel.hidden = key !== name;
      buttons[key].setAttribute('aria-expanded', String(key === name));
    }
    title();
    if (!built[name]) {
      built[name] = name === 'table'
        ? createAttributeTable(panels.table, map, { catalog, highlighter, control })
        : createTimeline(panels.timeline, map, { catalog, control });
      const first = name === 'table' ? [...catalog.keys()][0] : ['redline', 'protected_area'].find((id) => catalog.has(id));
      if (first) built[name].open(first);
    }
    document.body.classList.add('dock-open');
    map.resize();
    return built[name];
  }

  function close() {
    current = null;
    dock.hidden = true;
    for (const button of Object.values(buttons)) button.setAttribute('aria-expanded', 'false');
    document.body.classList.remove('dock-open');
    map.resize();
  }

  for (const [name, button] of Object.entries(buttons)) {
    button.addEventListener('click', () => (current === name ? close() : show(name)));
  }
  $('work-dock-close').addEventListener('click', close);
  onLangChange(title);
  return { show, close, get table() { return built.table; }, get timeline() { return built.timeline; } };
}
