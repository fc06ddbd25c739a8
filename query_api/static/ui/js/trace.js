// Trace: every record of one trace in time order, with its offset from the first.
import { get } from './api.js';
import { el, show } from './dom.js';
import { recordRow, remember } from './records.js';

export async function traceView(root, traceId) {
  show(root, el('p', { class: 'muted' }, 'loading…'));
  let page;
  try {
    page = await get(`/logs/trace/${encodeURIComponent(traceId)}`, { limit: 1000, hours: 24 * 7 });
  } catch (exc) {
    show(root, el('p', { class: 'error', role: 'alert' }, exc.message));
    return;
  }
  const records = [...page.records].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp)
    || (a.kind === b.kind ? 0 : a.kind === 'request' ? -1 : 1));
  records.forEach(remember);
  const t0 = records.length ? Date.parse(records[0].timestamp) : 0;
  const micro = (iso) => {
    const frac = /\.(\d+)/.exec(iso);
    return frac ? Number(`0.${frac[1]}`) * 1000 % 1 : 0;
  };
  const first = records.length ? micro(records[0].timestamp) : 0;
  show(root,
    el('h1', {}, 'Trace ', el('code', {}, traceId)),
    el('p', { class: 'muted' }, `${records.length} records`),
    el('div', { class: 'records', id: 'trace-records' }, records.map((r) => {
      const offset = Date.parse(r.timestamp) - t0 + micro(r.timestamp) - first;
      return recordRow(r, el('span', { class: 'rt offset' }, `+${offset.toFixed(3)} ms`));
    })));
}
