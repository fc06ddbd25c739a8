// Errors grouped by exception type and message fingerprint, with counts per hour and the latest one.
import { get } from './api.js';
import { el, fmtNumber, show, table } from './dom.js';
import { sparkline } from './chart.js';
import { href, setParams } from './route.js';
import { WINDOWS } from './dashboard.js';

export async function errorsView(root, params) {
  const win = WINDOWS.includes(params.window) ? params.window : '24h';
  show(root, el('p', { class: 'muted' }, 'loading…'));
  let body;
  try {
    body = await get('/logs/error_groups', { window: win, limit: 100 });
  } catch (exc) {
    show(root, el('p', { class: 'error', role: 'alert' }, exc.message));
    return;
  }
  const select = el('select', { name: 'window', id: 'window' }, WINDOWS.map((w) => el('option', { value: w }, w)));
  select.value = win;
  select.addEventListener('change', () => setParams('errors', { window: select.value }));
  const rows = body.groups.map((g) => {
    const latest = g.latest || {};
    return [
      el('code', {}, latest.type || '?'),
      latest.message || '',
      fmtNumber(g.count),
      sparkline(g.per_hour.map((h) => h.count)),
      latest.ts ? new Date(latest.ts).toISOString().replace('T', ' ').slice(0, 19) : '',
      latest.trace_id ? el('a', { href: href('trace', {}, latest.trace_id) }, 'trace') : '',
    ];
  });
  show(root,
    el('form', { class: 'filters' }, el('label', {}, 'Window', select)),
    el('p', { class: 'muted' }, `${fmtNumber(body.total)} errors in ${body.groups.length} groups`,
      body.other ? `, ${fmtNumber(body.other)} beyond the group cap` : ''),
    rows.length
      ? table([['Type'], ['Latest message'], ['Count', true], ['Per hour'], ['Latest (UTC)'], ['']], rows, { id: 'error-groups' })
      : el('p', { class: 'muted' }, 'no errors in this window'));
}
