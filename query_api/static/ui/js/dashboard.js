// Requests dashboard: totals, charts over time and the top lists, per hostname or all.
import { get } from './api.js';
import { el, fmtBytes, fmtNumber, show, table } from './dom.js';
import { lineChart, stackedBar } from './chart.js';
import { href, setParams } from './route.js';

export const WINDOWS = ['15m', '1h', '6h', '24h', '7d'];
const TOPS = [
  ['paths', 'Top paths (by route)', 'Path'], ['ips', 'Top client IPs', 'Client IP'],
  ['agents', 'Top user agents', 'User agent'], ['referrers', 'Top referrers', 'Referrer'],
  ['not_found', 'Top 404 paths', 'Path'],
];

function card(metric, label, value) {
  return el('div', { class: 'card' }, el('div', { class: 'label' }, label), el('div', { class: 'value', 'data-metric': metric }, value));
}

function topPanel(kind, title, column, body) {
  const link = (v) => (kind === 'ips' ? el('a', { href: href('tail', { ip: v }) }, v) : v);
  const rows = body.items.map((i) => [link(i.value), fmtNumber(i.count)]);
  if (body.other) rows.push([el('span', { class: 'muted' }, 'other (beyond the cap)'), fmtNumber(body.other)]);
  return el('div', { class: 'panel', id: `top-${kind}` }, el('h2', {}, title, ' ', el('span', { class: 'muted' }, `(${body.hostname || 'all hostnames'})`)),
    rows.length ? table([[column], ['Requests', true]], rows) : el('p', { class: 'muted' }, 'nothing in this window'));
}

function slowPanel(body) {
  const rows = body.items.map((i) => [i.route, fmtNumber(i.mean_ms, 1), fmtNumber(i.requests)]);
  return el('div', { class: 'panel', id: 'top-slow_routes' }, el('h2', {}, 'Slowest routes ', el('span', { class: 'muted' }, `(mean, ${body.hostname || 'all hostnames'})`)),
    rows.length ? table([['Route'], ['Mean ms', true], ['Requests', true]], rows) : el('p', { class: 'muted' }, 'nothing in this window'));
}

function controls(params, hostnames) {
  const windowSelect = el('select', { name: 'window', id: 'window' }, WINDOWS.map((w) => el('option', { value: w }, w)));
  windowSelect.value = params.window;
  const hostSelect = el('select', { name: 'hostname', id: 'hostname' }, el('option', { value: '' }, 'all hostnames'),
    hostnames.map((h) => el('option', { value: h }, h)));
  if (params.hostname && !hostnames.includes(params.hostname)) hostSelect.append(el('option', { value: params.hostname }, params.hostname));
  hostSelect.value = params.hostname || '';
  const form = el('form', { class: 'filters' }, el('label', {}, 'Window', windowSelect), el('label', {}, 'Hostname', hostSelect));
  form.addEventListener('change', () => setParams('dashboard', { window: windowSelect.value, hostname: hostSelect.value }));
  return form;
}

function charts(d) {
  const points = d.series.points;
  const times = points.map((p) => p.start);
  const perMinute = d.series.step === 'minute' ? 1 : 60;
  const classes = Object.entries(d.status_classes).map(([k, v]) => ({ label: k, cls: `bar-${k}`, value: v }));
  return el('div', { class: 'panels' },
    el('div', { class: 'panel', id: 'chart-requests' }, el('h2', {}, 'Requests per minute'),
      lineChart(times, [{ label: 'requests/min', cls: 'c-req', values: points.map((p) => p.requests / perMinute) }])),
    el('div', { class: 'panel', id: 'chart-errors' }, el('h2', {}, 'Error rate'),
      lineChart(times, [{ label: '4xx+5xx share', cls: 'c-err', values: points.map((p) => (p.requests ? (p.errors_4xx + p.errors_5xx) / p.requests * 100 : null)) }], '%')),
    el('div', { class: 'panel', id: 'chart-latency' }, el('h2', {}, 'Latency'),
      lineChart(times, [
        { label: 'p50', cls: 'c-p50', values: points.map((p) => p.p50_ms) },
        { label: 'p95', cls: 'c-p95', values: points.map((p) => p.p95_ms) },
        { label: 'p99', cls: 'c-p99', values: points.map((p) => p.p99_ms) }], ' ms')),
    el('div', { class: 'panel', id: 'status-mix' }, el('h2', {}, 'Status classes'), stackedBar(classes),
      el('div', { class: 'legend' }, classes.map((c) => el('span', { 'data-status-class': c.label }, `${c.label}: ${fmtNumber(c.value)}`)))));
}

export async function dashboardView(root, params) {
  const p = { window: WINDOWS.includes(params.window) ? params.window : '1h', hostname: params.hostname || '' };
  show(root, el('p', { class: 'muted' }, 'loading…'));
  let d;
  let tops;
  try {
    [d, ...tops] = await Promise.all([
      get('/logs/dashboard', { window: p.window, hostname: p.hostname }),
      ...TOPS.map(([kind]) => get(`/logs/top/${kind}`, { window: p.window, limit: 10, hostname: p.hostname })),
      get('/logs/top/slow_routes', { window: p.window, limit: 10, hostname: p.hostname }),
    ]);
  } catch (exc) {
    show(root, el('p', { class: 'error', role: 'alert' }, exc.message));
    return;
  }
  const s = d.summary;
  show(root,
    controls(p, d.hostnames),
    el('div', { class: 'grid', id: 'cards' },
      card('requests', 'Requests', fmtNumber(s.requests)),
      card('requests_per_minute', 'Requests / min', fmtNumber(s.requests_per_minute, 2)),
      card('error_rate', 'Error rate', `${fmtNumber(s.error_rate * 100, 2)} %`),
      card('p50_ms', 'p50', `${fmtNumber(s.p50_ms, 1)} ms`),
      card('p95_ms', 'p95', `${fmtNumber(s.p95_ms, 1)} ms`),
      card('p99_ms', 'p99', `${fmtNumber(s.p99_ms, 1)} ms`),
      card('unique_visitors', 'Unique visitors', fmtNumber(s.unique_visitors)),
      card('bytes_sent', 'Bytes sent', fmtBytes(d.bytes_sent))),
    charts(d),
    el('h2', {}, 'Top lists'),
    el('div', { class: 'panels' }, TOPS.map(([kind, title, column], i) => topPanel(kind, title, column, tops[i])), slowPanel(tops[TOPS.length])));
}
