// Record detail: every field, the stack trace, copy as JSON, and links to the related views.
import { ApiError, get } from './api.js';
import { el, show } from './dom.js';
import { bodyText, recordRow, seen } from './records.js';
import { href } from './route.js';

const STACK = 'exception.stacktrace';

function fields(record) {
  const rows = [];
  for (const [name, value] of Object.entries(record)) {
    if (name === 'attributes' || name === 'resource' || value === null || value === undefined) continue;
    rows.push([name, name === 'body' ? bodyText(value) : typeof value === 'object' ? JSON.stringify(value) : String(value)]);
  }
  for (const group of ['attributes', 'resource']) {
    for (const [name, value] of Object.entries(record[group] || {})) {
      if (name === STACK) continue;
      rows.push([`${group}.${name}`, typeof value === 'object' ? JSON.stringify(value) : String(value)]);
    }
  }
  return el('dl', { class: 'fields', id: 'fields' }, rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function links(r) {
  const out = [];
  if (r.trace_id) out.push(el('a', { href: href('trace', {}, r.trace_id), id: 'link-trace' }, 'trace'));
  const ip = r.client_ip || (r.attributes || {}).client_ip;
  if (ip) out.push(el('a', { href: href('tail', { ip }), id: 'link-ip' }, `IP ${ip}`));
  const user = r.user_id || (r.attributes || {}).user_id;
  if (user) out.push(el('a', { href: href('tail', { user }), id: 'link-user' }, `user ${user}`));
  if (r.path) out.push(el('a', { href: href('tail', { path: r.route || r.path }), id: 'link-path' }, `path ${r.route || r.path}`));
  return el('p', { class: 'toolbar' }, out);
}

export async function detailView(root, id) {
  show(root, el('p', { class: 'muted' }, 'loading…'));
  let record = seen.get(id);
  if (!record) {
    // a shared link: fetch the record by its key (encoded, since request keys may hold %XX escapes)
    try {
      record = await get(`/logs/record/${encodeURIComponent(id)}`);
    } catch (exc) {
      const text = exc instanceof ApiError && exc.status === 404 ? `No stored record ${id}: it expired or never existed.` : exc.message;
      show(root, el('p', { class: 'error', role: 'alert', id: 'record-error' }, text));
      return;
    }
  }
  const json = JSON.stringify(record, null, 2);
  const copied = el('span', { class: 'muted' });
  const copy = el('button', { type: 'button', id: 'copy-json' }, 'Copy as JSON');
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(json); copied.textContent = 'copied'; } catch (_) { copied.textContent = 'copy failed: select the JSON below'; }
  });
  const share = el('a', { href: href('record', {}, record.id), target: '_blank', rel: 'noopener', id: 'record-link' }, 'Link to this record');
  const stack = (record.attributes || {})[STACK];
  show(root,
    el('h1', {}, record.kind === 'request' ? 'Request' : 'Log record'),
    recordRow(record),
    links(record),
    el('p', {}, copy, ' ', copied, ' ', share),
    fields(record),
    stack ? [el('h2', {}, 'Stack trace'), el('pre', { class: 'stack', id: 'stack' }, String(stack))] : null,
    el('details', {}, el('summary', {}, 'JSON'), el('pre', { id: 'json' }, json)));
}
