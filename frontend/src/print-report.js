// The zone-check report as a printed sheet, composed like the map print (print-sheet.js): the
// site on a map with the layers it overlaps (drawn again at print resolution on the offline or
// chosen basemap), the legend, a scale bar, a north arrow, then the verdict, the reasons and the
// overlap table, the responsible chiefs, the date, the data sources and the sample-data notice.
// The words come from the service (POST /api/zone-check/report?f=json), the same as its HTML
// report: relations from DE-9IM, codes as titles, an area for zones and a length for lines.

import { formatNumber, getLang, pick, t } from './i18n.js';
import { catalogLayerOf } from './map.js';
import {
  dataSources,
  drawLegend,
  drawNorthArrow,
  drawScaleBar,
  FONT,
  GAP,
  legendEntries,
  MARGIN,
  PT,
  renderMap,
  sheetContext,
  sheetSize,
} from './print-sheet.js';

const VERDICT_COLORS = { prohibited: '#b10026', restricted: '#e6550d', caution: '#d4a106', clear: '#238b45' };
const SITE_MARGIN_M = 200;

/** The map's view of the site: its box widened by the buffer (at least 300 m) and 200 m. */
function siteBounds(result) {
  const [x0, y0, x1, y1] = result.input.bbox;
  const metres = Math.max(result.input.buffer_m || 0, 300) + SITE_MARGIN_M;
  const dy = metres / 111_000;
  const dx = metres / (111_320 * Math.cos((((y0 + y1) / 2) * Math.PI) / 180));
  return [
    [x0 - dx, y0 - dy],
    [x1 + dx, y1 + dy],
  ];
}

/** The catalog layers the report's map draws: those the check found, and the stations when one is in view. */
function reportLayers(data, result, bounds) {
  const ids = new Set(data.overlaps.map((o) => o.layer));
  const [[x0, y0], [x1, y1]] = bounds;
  if ((result.stations || []).some((s) => s.lon >= x0 && s.lon <= x1 && s.lat >= y0 && s.lat <= y1)) ids.add('station');
  return ids;
}

/** A copy of the map's style drawing only the report's catalog layers and the zone highlight. */
function reportStyle(map, layers) {
  const style = structuredClone(map.getStyle());
  for (const layer of style.layers) {
    const catalogId = catalogLayerOf(layer);
    const channel = layer.metadata?.['ecomap:highlight'];
    if (catalogId) layer.layout = { ...layer.layout, visibility: layers.has(catalogId) ? 'visible' : 'none' };
    else if (channel && channel !== 'zone') layer.layout = { ...layer.layout, visibility: 'none' };
  }
  return style;
}

/** Lines of `text` no wider than `maxWidth` mm at `sizePt` (breaks at spaces, or anywhere in CJK). */
function wrap(ctx, text, maxWidth, sizePt, weight = 'normal') {
  ctx.font = `${weight} ${sizePt * PT}px ${FONT}`;
  const lines = [];
  let line = '';
  for (const token of String(text).match(/[\u2e80-\u9fff\uff00-\uffef]|[^\s\u2e80-\u9fff\uff00-\uffef]+|\s+/g) || []) {
    const next = line + token;
    if (line && ctx.measureText(next).width > maxWidth) {
      lines.push(line.trimEnd());
      line = token.trimStart();
    } else {
      line = next;
    }
  }
  if (line.trim()) lines.push(line.trimEnd());
  return lines;
}

function shareText(share) {
  return share == null ? '' : `${formatNumber(share * 100, 1)}%`;
}

/** The overlap table's columns: i18n key, share of the width, cell text, alignment. */
const COLUMNS = [
  ['colLayer', 0.14, (o) => pick(o.layer_title)],
  ['colFeature', 0.22, (o) => o.name || ''],
  ['colClassZone', 0.19, (o) => [pick(o.category_title), pick(o.zone_title)].filter(Boolean).join(' · ')],
  ['colRelation', 0.15, (o) => pick(o.relation_title)],
  ['colOverlapAmount', 0.21, (o) => o.amount || '—', 'right'],
  ['colShare', 0.09, (o) => shareText(o.share), 'right'],
];

const ROW_H = 4.3;
const LINE_H = 3.6;

/** The reasons as [{line}] lines of the sheet's width (at most three lines each). */
function reasonLines(ctx, reasons, width) {
  const list = reasons.length ? reasons : [{ message: { zh: t('reportNoReasons'), en: t('reportNoReasons') } }];
  return list.map((reason) => wrap(ctx, `${reason.title ? `[${pick(reason.title)}] ` : ''}${pick(reason.message)}`, width, 7.5).slice(0, 3));
}

/** The height (mm) of what goes under the map: the site line, reasons, overlap table and chiefs. */
function textBlockHeight(reasons, data) {
  const reasonsH = reasons.reduce((sum, lines) => sum + lines.length * LINE_H + 0.6, 0);
  const tableH = data.overlaps.length ? (data.overlaps.length + 1) * ROW_H : 5;
  const chiefsH = data.chiefs?.length ? 5 + data.chiefs.length * 3.8 : 0;
  return 4 + 5 + 5 + reasonsH + 2 + 5 + tableH + 2 + chiefsH + 4;
}

function drawTable(sheet, rows, x, y, width, bottom) {
  const { ctx, text } = sheet;
  const rowH = ROW_H;
  const size = 7;
  ctx.fillStyle = '#eeeeee';
  ctx.fillRect(x, y, width, rowH);
  let left = x;
  const cells = COLUMNS.map(([key, share, value, align]) => {
    const cell = { key, x: left, w: share * width, value, align };
    left += cell.w;
    return cell;
  });
  for (const cell of cells) {
    const at = cell.align === 'right' ? cell.x + cell.w - 1 : cell.x + 1;
    text(t(cell.key), at, y + 0.8, size, { weight: 'bold', align: cell.align || 'left', maxWidth: cell.w - 2 });
  }
  let at = y + rowH;
  let shown = 0;
  for (const row of rows) {
    if (at + rowH > bottom) break;
    if (shown % 2) {
      ctx.fillStyle = '#f7f7f7';
      ctx.fillRect(x, at, width, rowH);
    }
    for (const cell of cells) {
      const tx = cell.align === 'right' ? cell.x + cell.w - 1 : cell.x + 1;
      text(cell.value(row), tx, at + 0.8, size, { align: cell.align || 'left', maxWidth: cell.w - 2 });
    }
    at += rowH;
    shown += 1;
  }
  ctx.strokeStyle = '#bbbbbb';
  ctx.lineWidth = 0.2;
  ctx.strokeRect(x, y, width, at - y);
  if (shown < rows.length) {
    text(t('reportRowsMore', { n: rows.length - shown }), x, at + 1, 7, { color: '#666' });
    at += 4.5;
  }
  return at;
}

/** The legend: the site and the highlight of what it overlaps, then the layers drawn. */
function reportLegend(context, layers, data) {
  const point = /Point/.test(data.site.geometry_type);
  const site = {
    id: 'site',
    title: t('reportSite'),
    items: [
      {
        style: point ? { kind: 'circle', outline_color: '#ffffff' } : { kind: 'fill', opacity: 0.3, outline_color: '#e65100' },
        color: '#ff6f00',
        label: t('reportSite'),
      },
    ],
  };
  const highlight = {
    id: 'highlight',
    title: t('reportHighlight'),
    items: [{ style: { kind: 'line', width: 3.5 }, color: '#ff00c8', label: t('reportHighlight') }],
  };
  const drawn = legendEntries({ ...context, control: { isVisible: (id) => layers.has(id) } });
  return [site, ...(data.overlaps.some((o) => o.distance_m == null) ? [highlight] : []), ...drawn];
}

/**
 * Composes the report sheet. `options` = {title, paper, orientation, dpi}; `context` = the print
 * tool's ({map, catalog, control, rasters, rasterControl}); `report` = {data, result}: the
 * service's words (f=json) and the zone-check answer. Resolves like composeSheet.
 */
export async function composeReportSheet(options, context, { data, result }) {
  const [widthMm, heightMm] = sheetSize(options.paper, options.orientation);
  const pxPerMm = options.dpi / 25.4;
  const portrait = options.orientation === 'portrait';
  const legendWidth = portrait ? 52 : 62;
  const top = MARGIN + 14;
  const footerTop = heightMm - MARGIN - 13;
  // The map takes what the words below it leave, within limits.
  const reasons = reasonLines(document.createElement('canvas').getContext('2d'), data.reasons, widthMm - 2 * MARGIN - 3);
  const available = footerTop - 2 - top;
  const mapH = Math.min(available * (portrait ? 0.6 : 0.62), Math.max(available * 0.35, available - textBlockHeight(reasons, data)));
  const frame = { x: MARGIN, y: top, w: widthMm - 2 * MARGIN - legendWidth - GAP, h: mapH };
  const bounds = siteBounds(result);
  const layers = reportLayers(data, result, bounds);
  const { printMap, container } = await renderMap(context.map, frame.w, frame.h, options.dpi, {
    style: reportStyle(context.map, layers),
    bounds,
    padding: 10,
  });
  try {
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(widthMm * pxPerMm);
    canvas.height = Math.round(heightMm * pxPerMm);
    const sheet = sheetContext(canvas, pxPerMm);
    const { ctx, text } = sheet;
    const contentW = widthMm - 2 * MARGIN;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, widthMm, heightMm);

    // Title, verdict and when the check was made (local time).
    text(options.title, MARGIN, MARGIN, 16, { weight: 'bold', maxWidth: contentW });
    const verdict = t(`verdict_${data.verdict}`);
    ctx.font = `bold ${9 * PT}px ${FONT}`;
    const badgeW = ctx.measureText(`${t('verdict')}：${verdict}`).width + 4;
    ctx.fillStyle = VERDICT_COLORS[data.verdict] || '#555';
    ctx.fillRect(MARGIN, MARGIN + 7.5, badgeW, 5);
    text(`${t('verdict')}${getLang() === 'zh' ? '：' : ': '}${verdict}`, MARGIN + 2, MARGIN + 8.2, 9, { weight: 'bold', color: '#ffffff' });
    text(
      t('reportComputed', { time: data.computed_local, zone: pick(data.timezone) }),
      MARGIN + badgeW + 3,
      MARGIN + 8.4,
      8,
      { color: '#444', maxWidth: contentW - badgeW - 3 },
    );

    // The map with its furniture and the legend beside it.
    ctx.drawImage(printMap.getCanvas(), frame.x, frame.y, frame.w, frame.h);
    ctx.strokeStyle = '#444';
    ctx.lineWidth = 0.35;
    ctx.strokeRect(frame.x, frame.y, frame.w, frame.h);
    drawNorthArrow(sheet, frame.x + frame.w - 10, frame.y + 3, printMap.getBearing());
    const metresPerMm = drawScaleBar(sheet, printMap, frame);
    const entries = reportLegend(context, layers, data);
    drawLegend(sheet, entries, frame.x + frame.w + GAP, frame.y, legendWidth, frame.y + frame.h);

    // The site, the reasons, the overlaps and the chiefs.
    let y = frame.y + frame.h + 4;
    const site = data.site;
    // "面 · 面积 …"; in English the polygon's type and its measure are both "Area": said once.
    const kind = pick(site.geometry_title);
    const measure = site.measure ? `${pick(site.measure)} ${site.measure.value}` : null;
    const siteParts = [measure && kind.toLowerCase() === pick(site.measure).toLowerCase() ? null : kind, measure];
    if (site.buffer_m) siteParts.push(t('reportBuffer', { m: formatNumber(site.buffer_m, 0) }));
    text(`${t('reportSite')}${getLang() === 'zh' ? '：' : ': '}${siteParts.filter(Boolean).join(' · ')}`, MARGIN, y, 8, { maxWidth: contentW });
    y += 5;
    text(t('reasons'), MARGIN, y, 10, { weight: 'bold' });
    y += 5;
    for (const lines of reasons) {
      for (const line of lines) {
        text(line, MARGIN + 2, y, 7.5, { maxWidth: contentW - 2 });
        y += LINE_H;
      }
      y += 0.6;
      if (y > footerTop - 30) break;
    }
    y += 2;
    text(t('overlaps'), MARGIN, y, 10, { weight: 'bold' });
    y += 5;
    const chiefs = data.chiefs || [];
    const chiefSpace = chiefs.length ? 7 + Math.min(chiefs.length, 4) * 3.8 : 0;
    if (data.overlaps.length) {
      y = drawTable(sheet, data.overlaps, MARGIN, y, contentW, footerTop - 2 - chiefSpace) + 2;
    } else {
      text(t('noOverlaps'), MARGIN, y, 8);
      y += 5;
    }
    if (chiefs.length && y + 8 < footerTop) {
      text(t('chiefs'), MARGIN, y, 10, { weight: 'bold' });
      y += 5;
      for (const [index, chief] of chiefs.entries()) {
        if (y + 3.8 > footerTop - 1) {
          text(t('reportRowsMore', { n: chiefs.length - index }), MARGIN + 2, y, 7, { color: '#666' });
          break;
        }
        const parts = [chief.name, pick(chief.post), chief.title, chief.contact];
        if (chief.units?.length) parts.push(t('responsibleFor', { units: chief.units.join(t('listSeparator')) }));
        text(parts.filter(Boolean).join(' · '), MARGIN + 2, y, 7.5, { maxWidth: contentW - 2 });
        y += 3.8;
      }
    }

    // Footer: date, coordinates, sources, the sample-data notice and the disclaimer.
    ctx.strokeStyle = '#cccccc';
    ctx.lineWidth = 0.2;
    ctx.beginPath();
    ctx.moveTo(MARGIN, footerTop - 1);
    ctx.lineTo(widthMm - MARGIN, footerTop - 1);
    ctx.stroke();
    // The date in Xiamen's time, like the check's time above.
    const date = new Intl.DateTimeFormat(getLang() === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'long', timeZone: 'Asia/Shanghai' }).format(new Date());
    text(t('printDate', { date }), MARGIN, footerTop, 7.5);
    text(t('printCrs'), widthMm - MARGIN, footerTop, 7.5, { align: 'right', color: '#555' });
    const sources = dataSources(printMap).join(getLang() === 'zh' ? '；' : '; ');
    text(`${t('printSources')}${sources}`, MARGIN, footerTop + 3.6, 7, { color: '#444', maxWidth: contentW });
    if (data.sample_data || entries.some((e) => e.sample)) {
      text(t('printSampleNotice'), MARGIN, footerTop + 7.2, 7.5, { weight: 'bold', color: '#b45309', maxWidth: contentW });
    }
    text(pick(data.disclaimer), MARGIN, footerTop + 10.8, 6.5, { color: '#666', maxWidth: contentW });
    return { canvas, texts: sheet.texts, widthMm, heightMm, metresPerMm, legend: entries };
  } finally {
    printMap.remove();
    container.remove();
  }
}
