// A finding on patrol (巡查发现): category, severity, a note, a photo and where — queued as an
// issue (source "patrol") and its photo, uploaded in order when the network allows.

import { pick, t } from '../i18n.js';
import { h, notice } from '../ui.js';
import { categorySelect, loadWorkflow, locationPicker, openDialog, photoPicker, severityChoice } from './forms.js';
import { newKey, outbox } from './store.js';

const TITLE_CHARS = 60;

/** Opens the finding form; `onSaved(point)` once it is queued. */
export async function openFindingForm({ actor, latestFix, pickOnMap, schedule, onSaved }) {
  let codes;
  try {
    codes = await loadWorkflow();
  } catch (err) {
    const dialog = openDialog({ id: 'finding-dialog', title: t('fieldFindingTitle'), body: notice('error', t('fieldWorkflowFailed', { detail: err.message })) });
    return dialog;
  }
  const photo = photoPicker('finding-photo');
  let dialog = null;
  const location = locationPicker({
    latestFix,
    pickOnMap: (done) => {
      dialog.setHidden(true);
      pickOnMap((point) => {
        dialog.setHidden(false);
        if (point) done(point);
      });
    },
  });
  const error = h('div', { class: 'field-form-error', 'aria-live': 'assertive' });
  async function submit(event) {
    event.preventDefault();
    const form = event.target;
    const geometry = location.get();
    if (!geometry) {
      error.replaceChildren(notice('error', t('fieldNeedLocation')));
      return;
    }
    const category = form.elements.category.value;
    const note = form.elements.note.value.trim();
    const title = (note.split('\n')[0] || pick(codes.categories[category])).slice(0, TITLE_CHARS);
    const key = newKey('issue');
    const issue = {
      title,
      description: note,
      category,
      severity: form.elements.severity.value,
      source: 'patrol',
      geometry,
    };
    await outbox.add({ actor, kind: 'issue', key, title, issue });
    const file = photo.get();
    if (file) await outbox.add({ actor, kind: 'photo', key, title, blob: file, fileName: file.name || 'photo.jpg' });
    schedule(0);
    dialog.close();
    onSaved(geometry.coordinates);
  }
  dialog = openDialog({
    id: 'finding-dialog',
    title: t('fieldFindingTitle'),
    body: h(
      'form',
      { class: 'field-form', id: 'finding-form', onsubmit: submit },
      h('label', { for: 'finding-category' }, t('fieldCategory')),
      categorySelect('finding-category', codes),
      severityChoice(codes),
      h('label', { for: 'finding-note' }, t('fieldNote')),
      h('textarea', { id: 'finding-note', name: 'note', rows: 3, maxlength: 4000, class: 'field-input', placeholder: t('fieldNoteHint') }),
      photo.element,
      location.element,
      error,
      h(
        'div',
        { class: 'field-actions' },
        h('button', { type: 'button', class: 'btn field-btn', onclick: () => dialog.close() }, t('fieldCancel')),
        h('button', { type: 'submit', class: 'btn primary field-btn', id: 'finding-save' }, t('fieldSave')),
      ),
    ),
  });
  if (latestFix()) location.useCurrent();
  return dialog;
}
