// The public report (公众参与): anyone, signed in or not, reports pollution at a place with a
// photo; it enters the workflow as 上报 (reported) and the answer's tracking code — shown once —
// follows it (GET api/public-reports/{code}). Sent while online only: the code comes back in
// the answer, and a report re-sent after a lost answer is refused (it has a code already).

import { csrfHeaders } from '../api.js';
import { pick, t } from '../i18n.js';
import { h, notice, setChildren } from '../ui.js';
import { categorySelect, loadWorkflow, locationPicker, openDialog, photoPicker } from './forms.js';
import { newKey } from './store.js';

async function answerOf(response) {
  try {
    const data = await response.json();
    return { data, detail: typeof data.detail === 'string' ? data.detail : JSON.stringify(data.detail ?? '') };
  } catch {
    return { data: null, detail: `HTTP ${response.status}` };
  }
}

function receipt(data) {
  const code = h('output', { class: 'field-code', id: 'public-report-code' }, data.tracking_code);
  const status = h('p', { class: 'muted', id: 'public-report-state' }, t('publicState', { state: pick(data.label) }));
  return h(
    'div',
    { class: 'field-receipt', id: 'public-report-receipt' },
    notice('info', t('publicThanks')),
    h('p', {}, t('publicCodeIntro')),
    code,
    h('p', { class: 'muted small' }, t('publicCodeKeep')),
    status,
    h(
      'button',
      {
        type: 'button',
        class: 'btn field-btn',
        id: 'public-report-follow',
        onclick: async () => {
          try {
            const response = await fetch(`api/public-reports/${encodeURIComponent(data.tracking_code)}`);
            const answer = await answerOf(response);
            status.textContent = response.ok ? t('publicState', { state: pick(answer.data.label) }) : answer.detail;
          } catch {
            status.textContent = t('fieldNoNetwork');
          }
        },
      },
      t('publicFollow'),
    ),
  );
}

/** Opens the public report form over the map; `pickOnMap(callback)` lets the user tap a point. */
export async function openPublicReport({ pickOnMap }) {
  let codes;
  try {
    codes = await loadWorkflow();
  } catch (err) {
    return openDialog({ id: 'public-report', title: t('publicTitle'), body: notice('error', t('fieldWorkflowFailed', { detail: err.message })) });
  }
  const key = newKey('public');
  const photo = photoPicker('public-photo');
  let dialog = null;
  const location = locationPicker({
    latestFix: () => null,
    pickOnMap: (done) => {
      dialog.setHidden(true);
      pickOnMap((point) => {
        dialog.setHidden(false);
        if (point) done(point);
      });
    },
  });
  const message = h('div', { class: 'field-form-error', 'aria-live': 'assertive' });
  let sending = false;
  async function submit(event) {
    event.preventDefault();
    if (sending) return;
    const form = event.target;
    const geometry = location.get();
    if (!geometry) return setChildren(message, notice('error', t('fieldNeedLocation')));
    const body = new FormData();
    body.append('title', form.elements.title.value.trim());
    body.append('category', form.elements.category.value);
    body.append('description', form.elements.description.value.trim());
    if (form.elements.contact.value.trim()) body.append('contact', form.elements.contact.value.trim());
    body.append('lon', String(geometry.coordinates[0]));
    body.append('lat', String(geometry.coordinates[1]));
    body.append('idempotency_key', key);
    const file = photo.get();
    if (file) body.append('photo', file, file.name || 'photo.jpg');
    sending = true;
    form.elements.send.disabled = true;
    setChildren(message, notice('info', t('publicSending')));
    let response;
    try {
      response = await fetch('api/public-reports', { method: 'POST', body, headers: csrfHeaders(), credentials: 'same-origin' });
    } catch {
      response = null;
    }
    sending = false;
    form.elements.send.disabled = false;
    if (!response) return setChildren(message, notice('error', t('publicOffline')));
    const answer = await answerOf(response);
    if (!response.ok) return setChildren(message, notice('error', t('publicRefused', { detail: answer.detail })));
    setChildren(form, receipt(answer.data));
  }
  dialog = openDialog({
    id: 'public-report',
    title: t('publicTitle'),
    body: h(
      'form',
      { class: 'field-form', id: 'public-report-form', onsubmit: submit },
      h('p', { class: 'muted small' }, t('publicIntro')),
      h('label', { for: 'public-title' }, t('publicWhat')),
      h('input', { id: 'public-title', name: 'title', required: true, maxlength: 200, class: 'field-input' }),
      h('label', { for: 'public-category' }, t('fieldCategory')),
      categorySelect('public-category', codes),
      h('label', { for: 'public-description' }, t('fieldNote')),
      h('textarea', { id: 'public-description', name: 'description', rows: 3, maxlength: 4000, class: 'field-input' }),
      h('label', { for: 'public-contact' }, t('publicContact')),
      h('input', { id: 'public-contact', name: 'contact', maxlength: 200, autocomplete: 'tel', class: 'field-input' }),
      photo.element,
      location.element,
      message,
      h(
        'div',
        { class: 'field-actions' },
        h('button', { type: 'button', class: 'btn field-btn', onclick: () => dialog.close() }, t('fieldCancel')),
        h('button', { type: 'submit', name: 'send', class: 'btn primary field-btn', id: 'public-report-send' }, t('publicSend')),
      ),
    ),
  });
  return dialog;
}
