// Small DOM helpers shared by the panels: element builder, notices, tabs and the phone's bottom sheet.

import { onLangChange, t } from './i18n.js';

/**
 * Builds an element: `h('button', {class: 'btn', onclick: fn, 'aria-label': 'x'}, 'text', child)`.
 * Attributes starting with "on" become listeners; null/false attributes are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  appendChildren(el, children);
  return el;
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's content with the given children. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  appendChildren(el, children);
}

/** A notice box (kind: info | warn | error) for panels; `role=alert` for errors. */
export function notice(kind, text) {
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

let toastTimer = null;

/** Shows a short message at the bottom of the screen (announced to screen readers). */
export function toast(text, kind = 'info', ms = 4000) {
  const box = document.getElementById('toast');
  if (!box) return;
  box.textContent = text;
  box.className = `toast toast-${kind} visible`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove('visible'), ms);
}

const PHONE_QUERY = window.matchMedia('(max-width: 768px)');

/** True on a phone-sized screen, where the side panel is a drawer. */
export function isPhone() {
  return PHONE_QUERY.matches;
}

const SNAPS = ['peek', 'half', 'full'];

/** Height in px of the bottom sheet at a snap point, in a body `available` px tall. */
function snapHeight(snap, available) {
  if (snap === 'peek') return Math.min(132, available);
  if (snap === 'half') return Math.round(available * 0.45);
  if (snap === 'full') return available - 8;
  return 0;
}

/**
 * The side panel. On desktops a fixed column. On phones a bottom sheet over the map with three
 * snap points (peek: the tabs and a line of the panel; half; full), dragged by its handle or
 * stepped with the handle's button; the map above it stays visible and usable. The menu button
 * opens it at half height and closes it; Esc closes it. `onToggle(open, snap)` follows it.
 */
export function setupDrawer({ button, drawer, onToggle }) {
  let snap = 'closed';
  const handle = h(
    'div',
    { class: 'sheet-handle', id: 'sheet-handle' },
    h('span', { class: 'sheet-grip', 'aria-hidden': 'true' }),
    h('button', {
      type: 'button',
      class: 'sheet-step',
      id: 'sheet-step',
      onclick: () => set(SNAPS[(SNAPS.indexOf(snap) + 1) % SNAPS.length]),
    }),
  );
  drawer.prepend(handle);
  const stepButton = handle.querySelector('button');
  const available = () => drawer.parentElement.clientHeight;

  const labelStep = () => {
    const next = SNAPS[(SNAPS.indexOf(snap) + 1) % SNAPS.length];
    stepButton.setAttribute('aria-label', t(`sheet_${next}`));
    stepButton.title = t(`sheet_${next}`);
    stepButton.dataset.next = next;
  };

  function set(next) {
    snap = next;
    const open = next !== 'closed';
    drawer.classList.toggle('open', open);
    drawer.dataset.sheet = next;
    drawer.style.removeProperty('--sheet-drag');
    drawer.style.setProperty('--sheet-height', `${snapHeight(next, available())}px`);
    button.setAttribute('aria-expanded', String(open));
    document.body.classList.toggle('drawer-open', open);
    document.body.dataset.sheet = isPhone() ? next : '';
    labelStep();
    onToggle?.(open, next);
  }

  // Dragging the handle: the sheet follows the finger and snaps to the nearest point on release.
  let drag = null;
  handle.addEventListener('pointerdown', (event) => {
    if (!isPhone() || event.target === stepButton) return;
    drag = { y: event.clientY, height: snapHeight(snap, available()), moved: false };
    try {
      handle.setPointerCapture(event.pointerId); // keep the drag when the finger leaves the handle
    } catch {
      // A synthetic pointer (or one already gone) cannot be captured: the drag still works on the handle.
    }
    drawer.classList.add('dragging');
  });
  handle.addEventListener('pointermove', (event) => {
    if (!drag) return;
    const height = Math.max(0, Math.min(available() - 8, drag.height + drag.y - event.clientY));
    drag.moved = drag.moved || Math.abs(event.clientY - drag.y) > 4;
    drag.current = height;
    drawer.style.setProperty('--sheet-height', `${height}px`);
  });
  const endDrag = () => {
    if (!drag) return;
    drawer.classList.remove('dragging');
    const { current, moved } = drag;
    drag = null;
    if (!moved || current === undefined) {
      set(snap);
      return;
    }
    const candidates = ['closed', ...SNAPS];
    const nearest = candidates.reduce((best, s) =>
      Math.abs(snapHeight(s, available()) - current) < Math.abs(snapHeight(best, available()) - current) ? s : best,
    );
    set(nearest);
  };
  handle.addEventListener('pointerup', endDrag);
  handle.addEventListener('pointercancel', endDrag);

  button.addEventListener('click', () => set(drawer.classList.contains('open') ? 'closed' : 'half'));
  drawer.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && isPhone() && drawer.classList.contains('open')) {
      set('closed');
      button.focus();
    }
  });
  window.addEventListener('resize', () => set(snap));
  onLangChange(labelStep);
  set('closed');
  return {
    open: (at = 'half') => set(isPhone() && (snap === 'half' || snap === 'full') ? snap : at),
    close: () => set('closed'),
    /** On phones, lowers the sheet to its peek so the map is in view (after an action on the map). */
    closeOnPhone: () => isPhone() && snap !== 'closed' && set('peek'),
    /** Sets a snap point ('closed', 'peek', 'half', 'full'). */
    snapTo: (next) => set(next),
    get snap() {
      return snap;
    },
    /** Pixels of the map the sheet covers (0 on desktops). */
    coveredHeight: () => (isPhone() && snap !== 'closed' ? snapHeight(snap, available()) : 0),
  };
}

/** Accessible tabs: arrow keys move between tabs, the selected panel is shown. */
export function setupTabs(tablist, onSelect) {
  const tabs = [...tablist.querySelectorAll('[role="tab"]')];
  const select = (tab, focus = false) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute('aria-selected', String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute('aria-controls')).hidden = !selected;
    }
    if (focus) tab.focus();
    onSelect?.(tab.dataset.tab);
  };
  for (const tab of tabs) {
    tab.addEventListener('click', () => select(tab));
    tab.addEventListener('keydown', (event) => {
      const i = tabs.indexOf(tab);
      if (event.key === 'ArrowRight' || event.key === 'ArrowDown') select(tabs[(i + 1) % tabs.length], true);
      else if (event.key === 'ArrowLeft' || event.key === 'ArrowUp') select(tabs[(i - 1 + tabs.length) % tabs.length], true);
      else return;
      event.preventDefault();
    });
  }
  return {
    select: (name) => select(tabs.find((t) => t.dataset.tab === name) || tabs[0]),
    /** Withdraws a tab (a tool the service refuses this user); another one is shown if it was. */
    hide(name) {
      const tab = tabs.find((t) => t.dataset.tab === name);
      if (!tab || tab.hidden) return;
      const wasSelected = tab.getAttribute('aria-selected') === 'true';
      tab.hidden = true;
      tab.style.display = 'none';
      tabs.splice(tabs.indexOf(tab), 1);
      document.getElementById(tab.getAttribute('aria-controls')).hidden = true;
      if (wasSelected) select(tabs[0]);
    },
  };
}

/** Triggers a download of a Blob under the given file name. */
export function downloadBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
