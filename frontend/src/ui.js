// Small DOM helpers shared by the panels: element builder, notices, tabs and the phone drawer.

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

/** Wires the menu button to open/close the side panel drawer (phones) and Esc to close it. */
export function setupDrawer({ button, drawer, onToggle }) {
  const set = (open) => {
    drawer.classList.toggle('open', open);
    button.setAttribute('aria-expanded', String(open));
    document.body.classList.toggle('drawer-open', open);
    onToggle?.(open);
  };
  button.addEventListener('click', () => set(!drawer.classList.contains('open')));
  drawer.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && isPhone() && drawer.classList.contains('open')) {
      set(false);
      button.focus();
    }
  });
  return {
    open: () => set(true),
    close: () => set(false),
    /** Closes the drawer on phones only (after an action that needs the map in view). */
    closeOnPhone: () => isPhone() && set(false),
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
