// Small SVG charts drawn by our own code (no library): lines over time, stacked bars, sparklines.
import { el, svg } from './dom.js';

const W = 600;
const H = 160;
const PAD = { l: 44, r: 8, t: 8, b: 18 };

function scale(values) {
  const max = Math.max(1e-9, ...values.filter((v) => v !== null && v !== undefined));
  return max;
}

/** Lines (series: [{label, cls, values}]) over the x labels ``times`` (epoch ms). */
export function lineChart(times, series, unit = '') {
  const all = series.flatMap((s) => s.values);
  const max = scale(all);
  const n = Math.max(1, times.length - 1);
  const x = (i) => PAD.l + ((W - PAD.l - PAD.r) * i) / n;
  const y = (v) => H - PAD.b - ((H - PAD.t - PAD.b) * v) / max;
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' },
    svg('line', { class: 'axis', x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b }),
    svg('line', { class: 'axis', x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b }),
    svg('text', { x: 2, y: PAD.t + 8 }, `${formatTick(max)}${unit}`),
    svg('text', { x: 2, y: H - PAD.b }, `0${unit}`));
  if (times.length) {
    chart.append(svg('text', { x: PAD.l, y: H - 4 }, new Date(times[0]).toISOString().slice(5, 16).replace('T', ' ')));
    chart.append(svg('text', { x: W - PAD.r - 70, y: H - 4 }, new Date(times[times.length - 1]).toISOString().slice(5, 16).replace('T', ' ')));
  }
  for (const s of series) {
    let d = '';
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += `${d ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    if (d) chart.append(svg('path', { class: s.cls, d }));
  }
  const legend = el('div', { class: 'legend' }, series.map((s) => el('span', { class: s.cls.replace('c-', 'k-') }, `— ${s.label}`)));
  return el('div', {}, chart, legend);
}

function formatTick(v) {
  if (v >= 100) return Math.round(v).toString();
  return v.toPrecision(2);
}

/** One horizontal bar split by parts ([{label, cls, value}]). */
export function stackedBar(parts) {
  const total = parts.reduce((a, p) => a + p.value, 0) || 1;
  let at = 0;
  const bar = svg('svg', { class: 'mix', viewBox: `0 0 ${W} 30`, preserveAspectRatio: 'none', role: 'img' });
  for (const p of parts) {
    const w = (W * p.value) / total;
    bar.append(svg('rect', { class: p.cls, x: at, y: 0, width: w, height: 30 }, svg('title', {}, `${p.label}: ${p.value}`)));
    at += w;
  }
  return bar;
}

/** A tiny bar chart of counts. */
export function sparkline(values) {
  const max = scale(values);
  const w = 120;
  const h = 24;
  const step = w / Math.max(1, values.length);
  const out = svg('svg', { viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: 'img' });
  values.forEach((v, i) => {
    const bh = (h * v) / max;
    out.append(svg('rect', { class: 'bar', x: i * step, y: h - bh, width: Math.max(1, step - 1), height: bh }));
  });
  return out;
}
