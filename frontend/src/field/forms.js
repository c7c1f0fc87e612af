// Pieces the finding form and the public report form share: the workflow's categories and
// severities, a photo taken with the camera (or picked from the files), and the location —
// where the phone is (GPS) or a point tapped on the map.

import { formatNumber, pick, t } from '../i18n.js';
import { h, setChildren } from '../ui.js';

let workflowCodes = null;

/** GET api/workflow (the service worker keeps a copy for offline use). */
export async function loadWorkflow() {
  if (workflowCodes) return workflowCodes;
  const response = await fetch('api/workflow', { credentials: 'same-origin' });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  workflowCodes = await response.json();
  return workflowCodes;
}

/** A <select> of the workflow's categories. */
export function categorySelect(id, codes, selected = '') {
  return h(
    'select',
    { id, name: 'category', required: true, class: 'field-input' },
    h('option', { value: '' }, t('fieldChoose')),
    Object.entries(codes.categories).map(([value, label]) => h('option', { value, selected: value === selected }, pick(label))),
  );
}

/** Radio buttons of the severities, finger-sized. */
export function severityChoice(codes, selected = 'medium') {
  return h(
    'fieldset',
    { class: 'field-choice', id: 'finding-severity' },
    h('legend', {}, t('fieldSeverity')),
    Object.entries(codes.severities).map(([value, label]) =>
      h(
        'label',
        { class: 'field-option' },
        h('input', { type: 'radio', name: 'severity', value, checked: value === selected }),
        h('span', {}, pick(label)),
      ),
    ),
  );
}

/** The photo input: the camera on a phone, a file elsewhere; shows a preview. `get()` the file. */
export function photoPicker(id) {
  let file = null;
  const preview = h('div', { class: 'field-photo-preview', id: `${id}-preview` });
  const input = h('input', {
    id,
    type: 'file',
    accept: 'image/jpeg,image/png,image/webp',
    capture: 'environment',
    class: 'visually-hidden',
    onchange: () => {
      file = input.files?.[0] || null;
      if (!file) return setChildren(preview);
      const url = URL.createObjectURL(file);
      setChildren(preview, h('img', { src: url, alt: t('fieldPhotoPreview'), onload: () => URL.revokeObjectURL(url) }), h('span', {}, file.name));
    },
  });
  const element = h(
    'div',
    { class: 'field-photo' },
    h('label', { for: id, class: 'btn field-btn field-photo-btn' }, t('fieldPhoto')),
    input,
    preview,
  );
  return { element, get: () => file };
}

const CURRENT = 'current';
const TAPPED = 'tapped';

/**
 * The location of a report: `current` asks the phone (or takes the patrol's latest fix,
 * `latestFix()`), `tapped` lets the user tap the map (`pickOnMap(callback)`). `get()` gives
 * a GeoJSON Point or null; `describe` is shown under the buttons.
 */
export function locationPicker({ latestFix, pickOnMap }) {
  let point = null;
  let accuracy = null;
  let how = null;
  let error = null;
  const status = h('p', { class: 'field-location-status', id: 'field-location-status', 'aria-live': 'polite' });
  const render = () => {
    if (error) status.textContent = error;
    else if (!point) status.textContent = t('fieldLocationNone');
    else {
      const [lon, lat] = point;
      const where = `${formatNumber(lon, 5, 5)}, ${formatNumber(lat, 5, 5)}`;
      status.textContent =
        how === CURRENT && accuracy != null
          ? t('fieldLocationGps', { where, m: formatNumber(accuracy, 0) })
          : t('fieldLocationTapped', { where });
    }
    status.dataset.set = point ? how : '';
  };
  const useCurrent = () => {
    error = null;
    const fix = latestFix?.();
    if (fix) {
      [point, accuracy, how] = [[fix.lon, fix.lat], fix.accuracy, CURRENT];
      return render();
    }
    status.textContent = t('fieldLocating');
    navigator.geolocation.getCurrentPosition(
      (position) => {
        point = [position.coords.longitude, position.coords.latitude];
        accuracy = position.coords.accuracy;
        how = CURRENT;
        render();
      },
      (err) => {
        error = err.code === 1 ? t('fieldGeoDenied') : t('fieldGeoFailed', { detail: err.message });
        render();
      },
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 10000 },
    );
  };
  const element = h(
    'fieldset',
    { class: 'field-choice field-location' },
    h('legend', {}, t('fieldLocation')),
    h('button', { type: 'button', class: 'btn field-btn', id: 'field-location-here', onclick: useCurrent }, `◎ ${t('fieldLocationHere')}`),
    h(
      'button',
      {
        type: 'button',
        class: 'btn field-btn',
        id: 'field-location-tap',
        onclick: () =>
          pickOnMap(([lon, lat]) => {
            [point, accuracy, how, error] = [[lon, lat], null, TAPPED, null];
            render();
          }),
      },
      `✚ ${t('fieldLocationTap')}`,
    ),
    status,
  );
  render();
  return { element, useCurrent, get: () => (point ? { type: 'Point', coordinates: point } : null) };
}

/** A dialog over the map (a bottom sheet on phones) holding one form; `close()` removes it. */
export function openDialog({ id, title, body, onClose }) {
  const close = () => {
    dialog.remove();
    onClose?.();
  };
  const dialog = h(
    'section',
    { class: 'field-dialog', id, role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': `${id}-title` },
    h(
      'header',
      { class: 'field-dialog-head' },
      h('h2', { id: `${id}-title` }, title),
      h('button', { type: 'button', class: 'field-close', 'aria-label': t('close'), title: t('close'), onclick: close }, '×'),
    ),
    body,
  );
  dialog.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') close();
  });
  document.body.append(dialog);
  dialog.querySelector('input, select, textarea, button:not(.field-close)')?.focus();
  return {
    element: dialog,
    close,
    /** Hidden while the user taps the map, then back. */
    setHidden: (hidden) => dialog.classList.toggle('field-dialog-away', hidden),
  };
}
