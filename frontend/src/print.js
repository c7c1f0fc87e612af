// Printing the current view: a map control opens a dialog (title, paper A4/A3, orientation,
// PDF or PNG, resolution); the sheet is composed in the browser (print-sheet.js) and saved.
//
// Why in the browser: the map is already there with the user's own access, the tiles are cached,
// nothing leaves the machine (works offline), and the service needs no headless browser of its own.

import { api } from './api.js';
import { onLangChange, t } from './i18n.js';
import { pdfWithImage, pngWithDpi } from './print-file.js';
import { composeReportSheet } from './print-report.js';
import { composeSheet } from './print-sheet.js';
import { h, setChildren } from './ui.js';

const PT_PER_MM = 72 / 25.4;

function canvasBlob(canvas, type, quality) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('canvas could not be encoded'))), type, quality),
  );
}

/** The composed sheet as a file: {blob, name}. */
async function sheetFile(sheet, options) {
  const stamp = new Date().toISOString().slice(0, 10);
  const base = `ecomap-${options.report ? 'zone-check-' : ''}${options.paper}-${options.orientation}-${stamp}`;
  if (options.format === 'png') {
    const png = new Uint8Array(await (await canvasBlob(sheet.canvas, 'image/png')).arrayBuffer());
    return { blob: new Blob([pngWithDpi(png, options.dpi)], { type: 'image/png' }), name: `${base}.png` };
  }
  const jpeg = new Uint8Array(await (await canvasBlob(sheet.canvas, 'image/jpeg', 0.92)).arrayBuffer());
  const blob = pdfWithImage({
    widthPt: sheet.widthMm * PT_PER_MM,
    heightPt: sheet.heightMm * PT_PER_MM,
    jpeg: { bytes: jpeg, width: sheet.canvas.width, height: sheet.canvas.height },
    texts: sheet.texts,
    title: options.title,
  });
  return { blob, name: `${base}.pdf` };
}

function select(id, options, value) {
  return h(
    'select',
    { id, class: 'print-select' },
    options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)),
  );
}

/**
 * Adds the print button to the map and builds its dialog. `context` = {map, catalog, control,
 * rasters, rasterControl}. Returns {print(options)} (the same as the dialog's button; for tests
 * and the benchmark), which resolves with {blob, name, sheet}, and {lastTexts()}: the words the
 * last sheet shows. `openReport(report)` opens the same dialog for the zone-check report
 * (`report` = {input, result}: what was checked and its answer; see print-report.js).
 */
export function createPrintTool(context) {
  const { map } = context;
  let busy = false;
  let lastUrl = null;
  let lastTexts = [];
  let report = null; // the zone check being printed, or null for the current view
  const status = h('p', { class: 'print-status', id: 'print-status', role: 'status', 'aria-live': 'polite' });
  const result = h('div', { class: 'print-result', id: 'print-result' });
  const fields = h('div', { class: 'print-fields' });
  const dialog = h('dialog', { class: 'print-dialog', id: 'print-dialog', 'aria-labelledby': 'print-heading' });
  const button = h('button', {
    type: 'button',
    class: 'print-open',
    id: 'print-open',
    onclick: () => {
      report = null;
      renderFields();
      dialog.showModal();
    },
  });
  button.innerHTML =
    '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path fill="currentColor" d="M7 3h10v4H7zM5 9h14a2 2 0 0 1 2 2v6h-4v4H7v-4H3v-6a2 2 0 0 1 2-2zm4 7v3h6v-3z"/></svg>';

  let values = { title: '', paper: 'A4', orientation: 'landscape', format: 'pdf', dpi: 200 };

  function renderFields() {
    button.title = t('print');
    button.setAttribute('aria-label', t('print'));
    const defaultTitle = t(report ? 'reportTitleDefault' : 'printTitleDefault');
    const title = h('input', { id: 'print-title', type: 'text', value: values.title || defaultTitle, maxlength: 80 });
    const paper = select('print-paper', [['A4', 'A4'], ['A3', 'A3']], values.paper);
    const orientation = select('print-orientation', [['landscape', t('printLandscape')], ['portrait', t('printPortrait')]], values.orientation);
    const format = select('print-format', [['pdf', 'PDF'], ['png', 'PNG']], values.format);
    const dpi = select('print-dpi', [['150', '150 dpi'], ['200', '200 dpi'], ['300', '300 dpi']], String(values.dpi));
    const read = () => ({
      title: title.value.trim() || defaultTitle,
      paper: paper.value,
      orientation: orientation.value,
      format: format.value,
      dpi: Number(dpi.value),
    });
    const field = (label, input) => h('label', { class: 'field', for: input.id }, h('span', {}, label), input);
    setChildren(
      dialog,
      h('h2', { id: 'print-heading' }, t(report ? 'reportPrintHeading' : 'printHeading')),
      h('p', { class: 'muted small' }, t(report ? 'reportPrintIntro' : 'printIntro')),
      h(
        'form',
        {
          method: 'dialog',
          class: 'print-form',
          onsubmit: (event) => {
            event.preventDefault();
            values = read();
            print({ ...values, report }).catch(() => {});
          },
        },
        field(t('printTitle'), title),
        h('div', { class: 'print-row' }, field(t('printPaper'), paper), field(t('printOrientation'), orientation)),
        h('div', { class: 'print-row' }, field(t('printFormat'), format), field(t('printDpi'), dpi)),
        h(
          'div',
          { class: 'btn-row' },
          h('button', { type: 'submit', class: 'btn primary', id: 'print-run', disabled: busy }, busy ? t('printWorking') : t('printRun')),
          h('button', { type: 'button', class: 'btn', id: 'print-close', onclick: () => dialog.close() }, t('close')),
        ),
      ),
      status,
      result,
    );
  }

  /**
   * Composes and saves a sheet with `options` ({title, paper, orientation, format, dpi}, and
   * `report` for a zone-check report: its words are asked of the service first).
   */
  async function print(options) {
    busy = true;
    renderFields();
    status.textContent = t('printWorking');
    setChildren(result);
    performance.mark('ecomap:print-start');
    try {
      const sheet = options.report
        ? await composeReportSheet(options, context, {
            data: await api.zoneCheckReportData(options.report.input),
            result: options.report.result,
          })
        : await composeSheet(options, context);
      lastTexts = sheet.texts.map((item) => item.text);
      const file = await sheetFile(sheet, options);
      performance.measure('ecomap:print', 'ecomap:print-start');
      if (lastUrl) URL.revokeObjectURL(lastUrl);
      lastUrl = URL.createObjectURL(file.blob);
      const link = h('a', { href: lastUrl, download: file.name, class: 'btn primary', id: 'print-download' }, t('printDownload', { name: file.name }));
      const preview = h('img', { src: sheet.canvas.toDataURL('image/jpeg', 0.6), alt: t('printPreview'), class: 'print-preview', id: 'print-preview' });
      setChildren(result, link, preview);
      status.textContent = t('printDone', { w: sheet.canvas.width, h: sheet.canvas.height });
      link.click(); // start the download; the link stays for another try
      return { ...file, sheet };
    } catch (err) {
      status.textContent = t('printFailed', { detail: err.message || String(err) });
      throw err;
    } finally {
      busy = false;
      const run = dialog.querySelector('#print-run');
      if (run) {
        run.disabled = false;
        run.textContent = t('printRun');
      }
    }
  }

  map.addControl(
    {
      onAdd: () => h('div', { class: 'maplibregl-ctrl maplibregl-ctrl-group' }, button),
      onRemove: () => button.parentElement?.remove(),
    },
    'top-right',
  );
  document.body.append(dialog);
  renderFields();
  onLangChange(() => {
    values = { ...values, title: '' };
    renderFields();
  });
  /** Opens the dialog for the zone-check report ({input, result}); portrait paper by default. */
  function openReport(next) {
    report = next;
    values = { ...values, title: '', orientation: 'portrait' };
    renderFields();
    if (!dialog.open) dialog.showModal();
  }
  return { print, openReport, lastTexts: () => lastTexts };
}
