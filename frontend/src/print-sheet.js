// Composing a printed map sheet in the browser, at print resolution: the current view is drawn
// again by a hidden MapLibre map whose pixel ratio gives the chosen dpi, then placed on a canvas
// of the paper's size with the title, the legend of the visible layers, a scale bar (geodesic,
// CGCS2000 ellipsoid), a north arrow, the date, the data sources and the sample-data notice.
// Every text drawn is also listed (position and size) for the PDF's searchable text layer.

import * as maplibregl from 'maplibre-gl';
import { codeLabel, formatNumber, getLang, pick, t } from './i18n.js';
import { CJK_FONTS } from './map.js';
import { geodesicLength, lengthText } from './measure.js';

/** Paper sizes in millimetres (portrait). */
export const PAPERS = { A4: [210, 297], A3: [297, 420] };
export const MARGIN = 10;
const HEADER = 15;
const FOOTER = 17;
export const GAP = 4;
export const PT = 25.4 / 72; // mm per point
export const FONT = `${CJK_FONTS}, "Noto Sans"`;
const MAP_TIMEOUT_MS = 60_000;

/** The paper's [width, height] in mm. */
export function sheetSize(paper, orientation) {
  const [a, b] = PAPERS[paper] || PAPERS.A4;
  return orientation === 'portrait' ? [a, b] : [b, a];
}

/**
 * Draws the view of `map` again in a hidden map of `widthMm` × `heightMm` at `dpi` (or `view`:
 * {style, bounds, padding} instead of the map's own); resolves with the hidden map.
 */
export async function renderMap(map, widthMm, heightMm, dpi, view = {}) {
  const cssPerMm = 96 / 25.4;
  const container = document.createElement('div');
  Object.assign(container.style, {
    position: 'fixed',
    left: '-30000px',
    top: '0',
    width: `${Math.round(widthMm * cssPerMm)}px`,
    height: `${Math.round(heightMm * cssPerMm)}px`,
  });
  container.setAttribute('aria-hidden', 'true');
  document.body.append(container);
  const printMap = new maplibregl.Map({
    container,
    style: view.style || map.getStyle(),
    bounds: view.bounds || map.getBounds(),
    fitBoundsOptions: { padding: view.padding || 0 },
    bearing: map.getBearing(),
    pixelRatio: dpi / 96,
    maxCanvasSize: [8192, 8192],
    interactive: false,
    attributionControl: false,
    fadeDuration: 0,
    localIdeographFontFamily: CJK_FONTS,
    canvasContextAttributes: { preserveDrawingBuffer: true },
  });
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, MAP_TIMEOUT_MS); // a basemap that never loads does not stop the print
    printMap.once('idle', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { printMap, container };
}

/** A length of 1, 2 or 5 × 10^k metres that is at most `maxM`. */
function niceLength(maxM) {
  const power = 10 ** Math.floor(Math.log10(maxM));
  return [5, 2, 1].map((f) => f * power).find((v) => v <= maxM) || power;
}

/** The sources (attributions) of the style sources that visible layers draw from, as plain text. */
export function dataSources(map) {
  const style = map.getStyle();
  const used = new Set(
    style.layers.filter((l) => l.source && (l.layout?.visibility ?? 'visible') !== 'none').map((l) => l.source),
  );
  const texts = Object.entries(style.sources)
    .filter(([id, source]) => used.has(id) && source.attribution)
    .map(([, source]) => {
      const el = document.createElement('div');
      el.innerHTML = source.attribution;
      return el.textContent.trim();
    });
  return [...new Set(texts)];
}

/** The legend entries of what is visible: [{title, items: [{kind, color, style, label} | {ramp}]}]. */
export function legendEntries({ catalog, control, rasters = [], rasterControl = null }) {
  const entries = [];
  for (const layer of catalog.values()) {
    if (!control.isVisible(layer.id)) continue;
    const style = layer.style || {};
    const property = style.categories && layer.properties?.find((p) => p.name === style.categories.property);
    const items = style.categories
      ? Object.entries(style.categories.colors).map(([value, color]) => ({ style, color, label: codeLabel(property, value) }))
      : [{ style, color: style.color, label: pick(layer.title) }];
    entries.push({ id: layer.id, title: pick(layer.title), items, sample: Boolean(layer.sample_data) });
  }
  const visibleRasters = new Set(rasterControl?.visibleIds() || []);
  for (const raster of rasters) {
    if (!visibleRasters.has(raster.id)) continue;
    const legend = raster.legend || {};
    const items = legend.classes
      ? legend.classes.map((c) => ({ style: { kind: 'fill', opacity: 1 }, color: c.color, label: pick(c.name) || String(c.value) }))
      : [{ ramp: legend.stops || [], min: legend.min, max: legend.max, unit: legend.unit ?? raster.unit ?? '' }];
    entries.push({ id: raster.id, title: pick(raster.title), items, sample: Boolean(raster.is_sample) });
  }
  return entries;
}

/** A 2D canvas context working in millimetres that records every text it writes. */
export function sheetContext(canvas, pxPerMm) {
  const ctx = canvas.getContext('2d');
  ctx.scale(pxPerMm, pxPerMm);
  const texts = [];
  const text = (value, x, y, sizePt, { weight = 'normal', color = '#222', align = 'left', maxWidth } = {}) => {
    if (!value) return 0;
    const size = sizePt * PT;
    ctx.font = `${weight} ${size}px ${FONT}`;
    ctx.fillStyle = color;
    ctx.textAlign = align;
    ctx.textBaseline = 'top';
    let shown = value;
    if (maxWidth) {
      while (shown.length > 1 && ctx.measureText(shown).width > maxWidth) shown = shown.slice(0, -1);
      if (shown !== value) shown = `${shown.slice(0, -1)}…`;
    }
    ctx.fillText(shown, x, y);
    const width = ctx.measureText(shown).width;
    const left = align === 'right' ? x - width : align === 'center' ? x - width / 2 : x;
    texts.push({ text: shown, x: left / PT, y: y / PT, size: sizePt });
    return width;
  };
  return { ctx, text, texts };
}

export function drawSwatch(ctx, { style, color }, x, y, w, hgt) {
  ctx.save();
  if (style.kind === 'line') {
    ctx.strokeStyle = color;
    ctx.lineWidth = Math.max(0.35, Math.min((style.width || 1.5) * 0.26, 1.2));
    if (style.dash) ctx.setLineDash(style.dash.map((d) => d * 0.6));
    ctx.beginPath();
    ctx.moveTo(x, y + hgt / 2);
    ctx.lineTo(x + w, y + hgt / 2);
    ctx.stroke();
  } else if (style.kind === 'circle') {
    ctx.fillStyle = color;
    ctx.strokeStyle = style.outline_color || '#ffffff';
    ctx.lineWidth = 0.3;
    ctx.beginPath();
    ctx.arc(x + w / 2, y + hgt / 2, hgt / 2.6, 0, Math.PI * 2);
    ctx.fill();
    ctx.stroke();
  } else {
    ctx.globalAlpha = Math.max(style.opacity ?? 0.5, 0.3);
    ctx.fillStyle = color;
    ctx.fillRect(x, y, w, hgt);
    ctx.globalAlpha = 1;
    ctx.strokeStyle = style.outline_color || color;
    ctx.lineWidth = 0.3;
    ctx.strokeRect(x, y, w, hgt);
  }
  ctx.restore();
}

export function drawLegend(sheet, entries, x, y, width, bottom) {
  const { ctx, text } = sheet;
  text(t('legend'), x, y, 11, { weight: 'bold' });
  let at = y + 6;
  let left = 0;
  for (const [index, entry] of entries.entries()) {
    if (at + 9 > bottom) {
      left = entries.length - index;
      break;
    }
    const single = entry.items.length === 1 && !entry.items[0].ramp;
    if (single) {
      // One colour: the swatch beside the layer's title.
      drawSwatch(ctx, entry.items[0], x, at + 0.3, 6, 3);
      text(entry.title, x + 8, at, 8.5, { weight: 'bold', maxWidth: width - 8 });
      at += 6;
      continue;
    }
    text(entry.title, x, at, 8.5, { weight: 'bold', maxWidth: width });
    at += 4.4;
    for (const item of entry.items) {
      if (at + 4 > bottom) break;
      if (item.ramp) {
        const gradient = ctx.createLinearGradient(x, 0, x + 30, 0);
        const min = item.min ?? item.ramp[0]?.[0] ?? 0;
        const max = item.max ?? item.ramp.at(-1)?.[0] ?? 1;
        for (const [value, color] of item.ramp) gradient.addColorStop(Math.min(1, Math.max(0, (value - min) / (max - min || 1))), color);
        ctx.fillStyle = gradient;
        ctx.fillRect(x, at, 30, 3);
        const unit = item.unit ? ` ${item.unit}` : '';
        text(`${formatNumber(min)} – ${formatNumber(max)}${unit}`, x + 32, at - 0.2, 7);
      } else {
        drawSwatch(ctx, item, x, at, 6, 3);
        text(item.label, x + 8, at - 0.2, 7, { maxWidth: width - 8 });
      }
      at += 4;
    }
    at += 1.5;
  }
  if (left) text(t('printLegendMore', { n: left }), x, Math.min(at, bottom - 3), 7, { color: '#666' });
}

export function drawNorthArrow(sheet, cx, top, bearing) {
  const { ctx, text } = sheet;
  ctx.save();
  ctx.translate(cx, top + 8);
  ctx.rotate((-bearing * Math.PI) / 180);
  ctx.fillStyle = 'rgba(255,255,255,0.85)';
  ctx.beginPath();
  ctx.arc(0, 0, 6.5, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = '#222';
  ctx.beginPath();
  ctx.moveTo(0, -5.5);
  ctx.lineTo(3, 4);
  ctx.lineTo(0, 2.2);
  ctx.lineTo(-3, 4);
  ctx.closePath();
  ctx.fill();
  ctx.restore();
  text(t('printNorth'), cx, top + 15.5, 7, { align: 'center', weight: 'bold' });
}

export function drawScaleBar(sheet, printMap, frame) {
  const { ctx, text } = sheet;
  // Metres per millimetre of paper across the middle of the frame, along the geodesic.
  const canvas = printMap.getContainer();
  const y = canvas.clientHeight / 2;
  const x0 = canvas.clientWidth / 2 - 50;
  const a = printMap.unproject([x0, y]);
  const b = printMap.unproject([x0 + 100, y]);
  const metresPerCssPx = geodesicLength([[a.lng, a.lat], [b.lng, b.lat]]) / 100;
  const metresPerMm = (metresPerCssPx * 96) / 25.4;
  const length = niceLength(metresPerMm * 40);
  const barMm = length / metresPerMm;
  const left = frame.x + 5;
  const top = frame.y + frame.h - 10;
  ctx.fillStyle = 'rgba(255,255,255,0.85)';
  ctx.fillRect(left - 3, top - 5, barMm + 10, 11);
  for (let i = 0; i < 4; i++) {
    ctx.fillStyle = i % 2 ? '#ffffff' : '#222222';
    ctx.fillRect(left + (barMm / 4) * i, top, barMm / 4, 1.6);
  }
  ctx.strokeStyle = '#222';
  ctx.lineWidth = 0.25;
  ctx.strokeRect(left, top, barMm, 1.6);
  text('0', left, top - 4, 6.5, { align: 'center' });
  text(lengthText(length), left + barMm, top - 4, 6.5, { align: 'center' });
  text(t('printScale', { n: formatNumber(Math.round(metresPerMm * 1000), 0) }), left, top + 2.4, 6.5);
  return metresPerMm;
}

/**
 * Composes the sheet. `options` = {title, paper, orientation, dpi}; `context` = {map, catalog,
 * control, rasters, rasterControl}. Resolves with {canvas, texts, widthMm, heightMm, metresPerMm}.
 */
export async function composeSheet(options, context) {
  const [widthMm, heightMm] = sheetSize(options.paper, options.orientation);
  const pxPerMm = options.dpi / 25.4;
  const legendWidth = options.orientation === 'portrait' ? 50 : 60;
  const frame = {
    x: MARGIN,
    y: MARGIN + HEADER,
    w: widthMm - 2 * MARGIN - legendWidth - GAP,
    h: heightMm - 2 * MARGIN - HEADER - FOOTER,
  };
  const { printMap, container } = await renderMap(context.map, frame.w, frame.h, options.dpi);
  try {
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(widthMm * pxPerMm);
    canvas.height = Math.round(heightMm * pxPerMm);
    const sheet = sheetContext(canvas, pxPerMm);
    const { ctx, text } = sheet;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, widthMm, heightMm);
    text(options.title, MARGIN, MARGIN, 18, { weight: 'bold', maxWidth: widthMm - 2 * MARGIN });
    ctx.drawImage(printMap.getCanvas(), frame.x, frame.y, frame.w, frame.h);
    ctx.strokeStyle = '#444';
    ctx.lineWidth = 0.35;
    ctx.strokeRect(frame.x, frame.y, frame.w, frame.h);
    drawNorthArrow(sheet, frame.x + frame.w - 10, frame.y + 3, printMap.getBearing());
    const metresPerMm = drawScaleBar(sheet, printMap, frame);
    const entries = legendEntries(context);
    drawLegend(sheet, entries, frame.x + frame.w + GAP, frame.y, legendWidth, frame.y + frame.h);

    const footerTop = frame.y + frame.h + 3;
    const date = new Intl.DateTimeFormat(getLang() === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'long' }).format(new Date());
    text(t('printDate', { date }), MARGIN, footerTop, 7.5);
    text(t('printCrs'), widthMm - MARGIN, footerTop, 7.5, { align: 'right', color: '#555' });
    const sources = dataSources(printMap).join(getLang() === 'zh' ? '；' : '; ');
    text(`${t('printSources')}${sources}`, MARGIN, footerTop + 4, 7, { color: '#444', maxWidth: widthMm - 2 * MARGIN });
    if (entries.some((e) => e.sample)) {
      text(t('printSampleNotice'), MARGIN, footerTop + 8, 7.5, { weight: 'bold', color: '#b45309', maxWidth: widthMm - 2 * MARGIN });
    }
    return { canvas, texts: sheet.texts, widthMm, heightMm, metresPerMm, legend: entries };
  } finally {
    printMap.remove();
    container.remove();
  }
}
