// Water and air status on the map's popups: the current class a feature's tiles carry (stations,
// river sections, bays: tiles.status), a small chart of a station's last days (from the
// station's series API), and the link to the printable file of a river or bay (一河一档 / 一湾一档).

import { api } from './api.js';
import { formatNumber, t } from './i18n.js';
import { h } from './ui.js';

export const CHART_DAYS = 7;
const FILE_LAYERS = ['river', 'bay'];
const STATUS_LAYERS = ['station', 'river', 'bay'];

/** Whether a layer's features have a file (一河一档 / 一湾一档). */
export const hasWaterFile = (layerId) => FILE_LAYERS.includes(layerId);

/** Rows of the popup table for the live status a feature's tile carries (none when it has none). */
export function statusRows(layerId, props) {
  if (!STATUS_LAYERS.includes(layerId)) return [];
  const rows = [];
  const swatch = props.status_colour ? h('span', { class: 'swatch', style: `background:${props.status_colour}` }) : null;
  if (props.water_class) {
    const meets = props.meets_target === true || props.meets_target === 'true';
    const judged = props.meets_target !== undefined && props.meets_target !== null;
    rows.push(
      h(
        'tr',
        { class: 'status-row', 'data-water-class': props.water_class },
        h('th', { scope: 'row' }, t(layerId === 'station' ? 'statusClass' : 'statusSectionClass')),
        h('td', {}, swatch, props.water_class, judged ? h('span', { class: meets ? 'ok' : 'bad' }, ` · ${t(meets ? 'meetsTarget' : 'missesTarget')}`) : null),
      ),
    );
  }
  if (props.aqi !== undefined && props.aqi !== null) {
    rows.push(h('tr', { class: 'status-row', 'data-aqi': props.aqi }, h('th', { scope: 'row' }, 'AQI'), h('td', {}, swatch, String(props.aqi))));
  }
  return rows;
}

/** The link opening a river's or bay's printable file in a new tab. */
export function waterFileLink(layerId, id) {
  return h(
    'a',
    { class: 'btn small water-file-link', href: api.waterFileUrl(layerId, id), target: '_blank', rel: 'noopener', 'data-file': `${layerId}/${id}` },
    t(layerId === 'bay' ? 'bayFile' : 'riverFile'),
  );
}

/** The property a station's chart shows: the deciding factor of its class, else the first one it measures. */
function chartProperty(latest) {
  const deciding = latest.deciding_factors?.[0]?.code;
  const primary = Array.isArray(latest.primary_pollutant) ? latest.primary_pollutant[0] : null;
  const values = latest.values || [];
  const byCode = (code) => values.find((v) => v.code === code);
  return byCode(deciding) || values.find((v) => primary && v.property?.toLowerCase() === String(primary).toLowerCase()) || values[0] || null;
}

/** The daily means of a station's chart property over the last CHART_DAYS days: {property, unit, points}. */
export async function loadStationChart(stationId, now = new Date()) {
  const latest = await api.stationLatest(stationId);
  const chosen = chartProperty(latest);
  if (!chosen) return null;
  const to = new Date(now.getTime() + 3600_000);
  const from = new Date(to.getTime() - CHART_DAYS * 86400_000);
  const series = await api.stationSeries(stationId, { property: chosen.code, from: from.toISOString(), to: to.toISOString() });
  return { property: chosen.property, unit: chosen.unit, points: series.points || [] };
}

/** A small SVG line chart of daily values (gaps for days without a valid mean). */
export function sparkline(chart, { width = 260, height = 70 } = {}) {
  const valid = chart.points.filter((p) => p.value !== null && p.value !== undefined);
  const title = `${chart.property}${chart.unit && chart.unit !== '1' ? ` (${chart.unit})` : ''}`;
  if (!valid.length) return h('p', { class: 'muted small station-chart-empty' }, t('chartNoData', { property: title }));
  const values = valid.map((p) => p.value);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const pad = 6;
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(1, chart.points.length - 1);
  const y = (v) => height - pad - ((v - low) / span) * (height - 2 * pad);
  const svgNs = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNs, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', t('chartLabel', { property: title, n: CHART_DAYS }));
  let path = '';
  chart.points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    const previous = chart.points[i - 1];
    path += `${path && previous && previous.value != null ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
  });
  const line = document.createElementNS(svgNs, 'path');
  line.setAttribute('d', path);
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', '#1f78b4');
  line.setAttribute('stroke-width', '2');
  svg.append(line);
  chart.points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    const dot = document.createElementNS(svgNs, 'circle');
    dot.setAttribute('cx', x(i).toFixed(1));
    dot.setAttribute('cy', y(p.value).toFixed(1));
    dot.setAttribute('r', '2.5');
    dot.setAttribute('fill', '#1f78b4');
    dot.setAttribute('data-period', p.period);
    dot.setAttribute('data-value', String(p.value));
    svg.append(dot);
  });
  return h(
    'figure',
    { class: 'station-chart', 'data-points': valid.length },
    h('figcaption', { class: 'small' }, t('chartTitle', { property: title, n: CHART_DAYS }), h('span', { class: 'muted' }, ` ${formatNumber(low, 2)}–${formatNumber(high, 2)}`)),
    svg,
  );
}
